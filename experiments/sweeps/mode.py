"""Autoencoder (clean -> clean, the seed) vs denoise (noisy -> clean) mode.

PENDING: train.mode only accepts 'autoencoder' until the denoising mode
lands; this definition is committed but has not been run.
"""
from experiments.sweeps import common


def get_sweep():
  return {
      'name': 'mode',
      'config': 'configs/base.py',
      'overrides': dict(common.SHORT),
      'grid': {'train.mode': ['autoencoder', 'denoise'], 'seed': [0, 1]},
  }
