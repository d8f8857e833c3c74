"""What each piece of configs/denoise.py buys on the 2020 competition's
noise: trained on the clean files and the gain family's unpaired noisy
files (mel_ae/corpus/gain/noisy), scored on its test set. One piece
changed per point, 500 steps each (a third of the recipe's budget):
- the recipe: log power in, output chosen by the fitted noise ('kernel'
  here), raw-power MSE, time flips;
- a per-bin gain output ('residual' in log power) instead of 'kernel';
- the MSE of log power (the model domain) instead of raw power;
- no time flips;
- a log-spectral term beside the raw-power loss (train.loss_log_weight);
- root-16 power in (the seed's domain), the U-Net's output taken as is.
Flip-averaged inference is measured on the recipe's own run
(experiments/recipe/README.md)."""
import os

from experiments.sweeps import common


def get_sweep():
  return {
      'name': 'recipe_gain',
      'config': 'configs/denoise.py',
      'overrides': {'train.num_steps': 500, 'train.eval_every': 250,
                    'train.checkpoint_every': 250, 'train.log_every': 50,
                    'data.noisy_dir': os.path.join(common.GAIN, 'noisy'),
                    'data.test_noisy_dir': os.path.join(common.GAIN, 'test',
                                                        'noisy'),
                    # The weights as swept: in absolute power.
                    'train.loss_power_unit': 'absolute'},
      'grid': {('model.output_mode', 'data.transform', 'train.loss',
                'data.time_flip', 'train.loss_log_weight'): [
                    ('fitted', 'log', 'power', True, 0.0),
                    ('fitted', 'log', 'power', True, 0.3),
                    ('fitted', 'log', 'power', True, 1.0),
                    ('residual', 'log', 'power', True, 0.0),
                    ('fitted', 'log', 'model', True, 0.0),
                    ('fitted', 'log', 'power', False, 0.0),
                    ('image', 'root', 'power', True, 0.0)]},
  }
