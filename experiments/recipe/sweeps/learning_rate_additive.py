"""learning_rate_gain.py's study on the additive family (configs/denoise.py's
default data: the embedded clean files, noisy/ and test/), where the fit
picks the 'residual' output, which trains at train.learning_rate.
Measured (results/learning_rate_additive.md) before validation held out a
quarter of each noisy file's quiet frames, before the textures were
drawn at their own levels and before the speech x noise cross term (in
training and validation): a rerun trains and validates today's recipe."""
from experiments.recipe.sweeps import learning_rate_gain


def get_sweep():
  steps = learning_rate_gain.STEPS
  return {
      'name': 'learning_rate_additive',
      'config': 'configs/denoise.py',
      'overrides': {'train.num_steps': steps, 'train.eval_every': steps // 2},
      'grid': {'train.learning_rate': [5e-4, 1e-3, 2e-3, 6e-3, 1.2e-2]},
  }
