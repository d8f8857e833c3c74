"""The seed's claim that 5x5 kernels are best: kernel sizes 2, 3, 5, 7."""
from experiments.sweeps import common


def get_sweep():
  return {
      'name': 'kernel_size',
      'config': 'configs/base.py',
      'overrides': dict(common.SHORT),
      'grid': {'model.kernel_size': [2, 3, 5, 7], 'seed': [0, 1, 2]},
  }
