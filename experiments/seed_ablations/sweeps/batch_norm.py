"""BatchNorm after each encoder/decoder conv (seed) or none."""
from experiments.sweeps import common


def get_sweep():
  return {
      'name': 'batch_norm',
      'config': 'configs/base.py',
      'overrides': dict(common.SHORT),
      'grid': {'model.batch_norm': [True, False], 'seed': [0]},
  }
