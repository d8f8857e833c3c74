"""Training crop width in frames (the seed uses 128; files are 111-226)."""
from experiments.sweeps import common


def get_sweep():
  return {
      'name': 'crop',
      'config': 'configs/base.py',
      'overrides': dict(common.SHORT),
      'grid': {'data.crop_frames': [32, 64, 128], 'seed': [0]},
  }
