"""The kernel-size study at configs/base.py's full budget (1000 steps), one
seed: at the shared 400-step budget every model is still near the
predict-silence level in the competition metric
(experiments/seed_ablations/README.md)."""


def get_sweep():
  return {
      'name': 'kernel_size_full',
      'config': 'configs/base.py',
      'overrides': {'train.eval_every': 500, 'train.checkpoint_every': 500,
                    'train.log_every': 100},
      'grid': {'model.kernel_size': [2, 3, 5, 7], 'seed': [0]},
  }
