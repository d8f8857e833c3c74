"""fitted_weight.py's study again, on validation at the noisy files' own
levels (the levels training draws them at; fitted_weight.py validated at
the fitted levels). 1,000 steps, seeds 0 and 1; the reference, 5 (the
recipe), is babble_prior.py's (8, (1, 1)) point of each seed: the same
config and validation."""
from experiments.training_noise.sweeps import babble_prior


def get_sweep():
  sweep = babble_prior.get_sweep()
  return {**sweep, 'name': 'fitted_weight_own_levels',
          'grid': {'noise.fitted_weight': [1.0, 2.5], 'seed': [0, 1]}}
