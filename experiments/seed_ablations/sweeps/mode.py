"""Autoencoder (clean -> clean, the seed) vs denoise (noisy -> clean) mode,
everything else as in configs/base.py (configs/denoise.py also switches to a
learned-subtraction output and a skip connection; this sweep isolates
train.mode).
"""
from experiments.sweeps import common


def get_sweep():
  return {
      'name': 'mode',
      'config': 'configs/base.py',
      'overrides': dict(common.SHORT),
      'grid': {'train.mode': ['autoencoder', 'denoise'], 'seed': [0, 1]},
  }
