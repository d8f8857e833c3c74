"""The additive family's noise textures at their own files' levels
(noise.texture_levels='own': each texture at its noisy file's quiet-frame
power) instead of the fitted model's log-normal level, 1,000 steps, seeds
0 and 1. The reference, 'fitted' (the recipe), is additive_prior.py's
full-prior point of each seed: the same config otherwise and the same
validation noise (held-out textures at the fitted levels)."""
from experiments.training_noise.sweeps import additive_prior


def get_sweep():
  sweep = additive_prior.get_sweep()
  overrides = dict(sweep['overrides'])
  del overrides['noise.texture_levels']
  return {**sweep, 'name': 'texture_levels', 'overrides': overrides,
          'grid': {'noise.texture_levels': ['own'], 'seed': [0, 1]}}
