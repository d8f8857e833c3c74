"""How often the additive family's training draws the data's own noise
(noise.fitted_weight: the fitted kind's weight against 1 for each of the
prior's five kinds; 1 = a sixth of the crops, 2.5 a third, 5 a half),
1,000 steps, seeds 0 and 1. The reference, 1 (the recipe), is
cross_term.py's 0.4 point of each seed: the same config otherwise (its
training draws are the same: weight 1 keeps the uniform draw) and the
same validation."""
from experiments.training_noise.sweeps import cross_term


def get_sweep():
  sweep = cross_term.get_sweep()
  return {**sweep, 'name': 'fitted_weight',
          'grid': {'noise.fitted_weight': [2.5, 5.0], 'seed': [0, 1]}}
