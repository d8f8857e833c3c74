"""Compression of the power mel before the model: x ** (1/root) for root
1 (raw power), 2, 4, 16 (seed), or dB (top_db 80; data.root then unused)."""
from experiments.sweeps import common


def get_sweep():
  return {
      'name': 'compression',
      'config': 'configs/base.py',
      'overrides': dict(common.SHORT),
      'grid': {('data.transform', 'data.root'): [
          ('root', 1.0), ('root', 2.0), ('root', 4.0), ('root', 16.0),
          ('db', 16.0)], 'seed': [0]},
  }
