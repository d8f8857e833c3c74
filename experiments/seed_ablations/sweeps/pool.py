"""Pooling factor: 1 (no bottleneck in time/frequency), 2 (seed), 4."""
from experiments.sweeps import common


def get_sweep():
  return {
      'name': 'pool',
      'config': 'configs/base.py',
      'overrides': dict(common.SHORT),
      'grid': {'model.pool': [1, 2, 4], 'seed': [0]},
  }
