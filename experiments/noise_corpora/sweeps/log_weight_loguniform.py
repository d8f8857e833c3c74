"""The log-spectral term's weight (train.loss_log_weight) on a log-uniform
per-bin gain (every gain at most 1, most far below), where the recipe ends
only 2.8 % below the winner's recipe: a log term pulls the output towards
the geometric mean of what the noisy bin allows, below the arithmetic mean
that the raw-power MSE wants, and the wider the gain's spread the further.
2,000 steps (the recipe's), seed 0; chosen on val_power_mse (held-out
training files with the fitted gain). The 0.62 point (the recipe's) is the
corpus' quality run, the same config. The corpus comes from
`python -m experiments.noise_corpora --out=runs/noise_corpora
--names=gain_loguniform_float32_level+0dB_floor-70dB`."""
import os

from experiments.sweeps import common

CORPUS = os.path.join(common.REPO, 'runs', 'noise_corpora',
                      'gain_loguniform_float32_level+0dB_floor-70dB')


def get_sweep():
  return {
      'name': 'log_weight_loguniform',
      'config': 'configs/denoise.py',
      'overrides': {'data.train_dir': os.path.join(CORPUS, 'train'),
                    'data.noisy_dir': os.path.join(CORPUS, 'noisy'),
                    'data.test_noisy_dir': os.path.join(CORPUS, 'test', 'noisy'),
                    'data.test_clean_dir': os.path.join(CORPUS, 'test', 'clean')},
      'grid': {'train.loss_log_weight': [0.0, 0.62]},
  }
