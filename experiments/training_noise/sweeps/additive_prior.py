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
from experiments.recipe.sweeps import learning_rate_additive

FULL = ('white', 'pink', 'brown', 'hum', 'babble')


def get_sweep():
  sweep = learning_rate_additive.get_sweep()
  # As measured: before configs/denoise.py drew textures at their own levels.
  overrides = {**sweep['overrides'], 'noise.texture_levels': 'fitted',
               # The weights as swept: in absolute power.
               'train.loss_power_unit': 'absolute'}
  return {**sweep, 'name': 'additive_prior', 'overrides': overrides,
          'grid': {('noise.additive_kinds', 'train.loss_log_weight'): [
                       (FULL, 1.0), (FULL[:4], 1.0), ((), 1.0), (FULL, 0.0)],
                   'seed': [0, 1]}}
