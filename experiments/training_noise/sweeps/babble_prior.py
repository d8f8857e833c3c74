"""The synthetic prior's babble in the additive family (babble carries most
of the test error): more textures (noise.babble_textures) and talkers at
other pitches and formants (noise.babble_freq_scale, log-uniform), against
the recipe's 8 textures of the training voice as it is. 1,000 steps, seeds
0 and 1, configs/denoise.py otherwise, with the log-spectral weight it
had then (train.loss_log_weight=1; 0.3 since log_weight_additive.py);
every point validates on the same noise: the noisy files' held-out quiet
frames at their own levels, with the cross term (noise.val_cross_std)."""
from experiments.recipe.sweeps import learning_rate_additive


def get_sweep():
  sweep = learning_rate_additive.get_sweep()
  return {**sweep, 'name': 'babble_prior',
          'overrides': {**sweep['overrides'], 'train.loss_log_weight': 1.0,
                        # The weights as swept: in absolute power.
                        'train.loss_power_unit': 'absolute'},
          'grid': {('noise.babble_textures', 'noise.babble_freq_scale'): [
              (8, (1.0, 1.0)), (32, (1.0, 1.0)), (32, (0.75, 1.35))],
                   'seed': [0, 1]}}
