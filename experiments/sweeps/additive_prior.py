"""What the synthetic prior buys beside the fitted noise on the additive
family (configs/denoise.py's default data: the embedded clean files,
noisy/ and test/), 1,000 steps each (half the recipe's budget), seeds 0
and 1. Chosen on val_power_mse: held-out clean files with the fitted noise
made of the noisy files' held-out quiet frames (noise.val_noise_fraction,
noise.val_draws draws per window), the same validation noise for every
point of a seed, never trained on.
- the full prior (noise.additive_kinds: white, pink, brown, hum, babble);
- without babble (the bank's babble is the training speaker's own voice);
- no prior: the fitted noise alone;
- the full prior, raw-power loss alone (no log-spectral term)."""
from experiments.sweeps import learning_rate_gain

FULL = ('white', 'pink', 'brown', 'hum', 'babble')


def get_sweep():
  steps = learning_rate_gain.STEPS
  return {
      'name': 'additive_prior',
      'config': 'configs/denoise.py',
      'overrides': {'train.num_steps': steps, 'train.eval_every': steps // 2},
      'grid': {('noise.additive_kinds', 'train.loss_log_weight'): [
                   (FULL, 1.0), (FULL[:4], 1.0), ((), 1.0), (FULL, 0.0)],
               'seed': [0, 1]},
  }
