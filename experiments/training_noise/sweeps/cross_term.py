"""The speech x noise cross term in the additive family's training mixes
(noise.cross_std: 2 sqrt(S N) times N(0, std) in every additive mix, the
fitted floor's and the prior's), 1,000 steps, seeds 0 and 1, on
configs/denoise.py as it is (textures at their own levels). 0 (powers
add) is the recipe before this study. Every point validates on the same
noise: held-out textures mixed in with noise.val_cross_std=0.4, what
mixing in the waveform gives (tests/noise_bank_test.py)."""
from experiments.recipe.sweeps import learning_rate_additive


def get_sweep():
  sweep = learning_rate_additive.get_sweep()
  return {**sweep, 'name': 'cross_term',
          'grid': {'noise.cross_std': [0.0, 0.2, 0.4], 'seed': [0, 1]}}
