"""The log-spectral term's weight (train.loss_log_weight) in the additive
family's loss: less of it leaves more to the raw-power MSE, the
competition metric, where the LSD has room (2.3-2.6 dB against spectral
subtraction's 9.4-9.7). 1,000 steps, seeds 0 and 1; the reference, 1
(the recipe then), is babble_prior.py's (8, (1, 1)) point of each seed: the
same config and validation."""
from experiments.training_noise.sweeps import babble_prior


def get_sweep():
  sweep = babble_prior.get_sweep()
  return {**sweep, 'name': 'log_weight_additive',
          'grid': {'train.loss_log_weight': [0.1, 0.3], 'seed': [0, 1]}}
