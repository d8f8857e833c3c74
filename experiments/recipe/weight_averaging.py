r"""Does averaging a run's last checkpoints help it, on validation?

  python -m mel_ae.main --config=configs/denoise.py --workdir=W \
      --config.train.checkpoint_every=100 --config.train.keep_checkpoints=25
  python -m experiments.recipe.weight_averaging --workdir=W

Averaging the weights of the last steps of a run (stochastic weight
averaging) often lands nearer the middle of a flat minimum than the last
step does. Scores the mean of the last K checkpoints' parameters and
BatchNorm statistics on the run's validation files, denoised whole as the
test set is (experiments/recipe/time_shifts.py), for several K.
"""
from absl import app
from absl import flags
import jax
import numpy as np

from experiments.recipe import time_shifts
from mel_ae import checkpointing
from mel_ae import whole_file

FLAGS = time_shifts.FLAGS  # --workdir, defined there
flags.DEFINE_list('last', ['1', '2', '3', '5', '10'],
                  'How many of the newest checkpoints to average.')


def averaged(trees):
  """The mean of several checkpoints' variables."""
  return jax.tree_util.tree_map(lambda *xs: np.mean(xs, axis=0), *trees)


def main(argv):
  del argv
  denoiser, noisy, clean = time_shifts.load_with_validation(FLAGS.workdir)
  with checkpointing.create_manager(FLAGS.workdir, read_only=True) as manager:
    steps = sorted(manager.all_steps())
  lasts = [int(k) for k in FLAGS.last]
  # Each checkpoint read (and verified) once, newest first.
  trees = [checkpointing.read_for_inference(FLAGS.workdir, s)[2]
           for s in steps[::-1][:max(lasts)]]
  print('| checkpoints averaged | steps | val competition MSE | val LSD (dB) |\n'
        '|---|---|---:|---:|')
  for k in lasts:
    chosen = steps[-k:]
    preds = whole_file.denoise_power(
        denoiser.model, averaged(trees[:k]), denoiser.normalizer, noisy,
        denoiser.config.infer)
    mse, lsd = time_shifts.scores(preds, clean)
    print(f'| {len(chosen)} | {chosen[0]}-{chosen[-1]} | {mse:.4f} | '
          f'{lsd:.2f} |', flush=True)


if __name__ == '__main__':
  flags.mark_flag_as_required('workdir')
  app.run(main)
