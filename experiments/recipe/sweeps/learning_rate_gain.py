"""The one-cycle schedule's peak learning rate for configs/denoise.py on
the 2020 competition's noise (trained on the clean files and the gain
family's unpaired noisy files, scored on its test set; the fit picks the
'kernel' output, so train.output_forms.kernel.learning_rate is the rate),
1,000 steps each (half the recipe's budget), seed 0. Chosen on
val_power_mse: the held-out training files with fitted noise."""
import os

from experiments.sweeps import common

STEPS = 1000


def get_sweep():
  return {
      'name': 'learning_rate_gain',
      'config': 'configs/denoise.py',
      'overrides': {'train.num_steps': STEPS, 'train.eval_every': STEPS // 2,
                    'data.noisy_dir': os.path.join(common.GAIN, 'noisy'),
                    'data.test_noisy_dir': os.path.join(common.GAIN, 'test',
                                                        'noisy')},
      'grid': {'train.output_forms.kernel.learning_rate': [
          1e-3, 3e-3, 6e-3, 1.2e-2, 2.4e-2]},
  }
