"""The 'kernel' output's window (model.kernel_window: the bands x frames
of noisy neighbours whose weighted power, times a gain, is the output) on
a log-uniform per-bin gain, where the recipe ends only 2.8 % below the
winner's recipe. The window (3, 7) was set, never swept; a gain with
this much spread (log-std 1.33) leaves each bin little of its own
power, so more neighbours may tell more. 2,000 steps, seed 0; chosen on
val_power_mse (held-out training files with the fitted gain). The
(3, 7) point is log_weight_loguniform.py's 0.62 point (the same run)."""
from experiments.noise_corpora.sweeps import log_weight_loguniform


def get_sweep():
  sweep = log_weight_loguniform.get_sweep()
  return {**sweep, 'name': 'kernel_window_loguniform',
          'config': 'experiments/noise_corpora/kernel_window_config.py',
          'grid': {'model.kernel_window': [(3, 7), (5, 9), (3, 11)]}}
