r"""What should a trained model see past a file's ends? On validation.

  python -m experiments.recipe.edge_padding --workdir=runs/denoise

Training crops lie inside the files, so a model never sees a file end;
denoising a whole file, something must stand beyond it. Rebuilds the
run's validation set as experiments/recipe/time_shifts.py does (held-out
training files, the fitted noise, denoised whole as the test set is) and
prints the competition MSE and LSD with each `infer.edge_padding`, the
run's other inference settings unchanged, and the MSE on the 32 frames
at either end beside that of the rest.
"""
from absl import app
from absl import flags
import numpy as np

from experiments.recipe import time_shifts
from mel_ae import settings
from mel_ae import whole_file

FLAGS = time_shifts.FLAGS  # --workdir, defined there

_END = 32  # frames at either end of a file


def _ends_and_middle(pred: np.ndarray, clean: np.ndarray):
  err = (np.asarray(pred, np.float64) - clean) ** 2
  return (np.mean(np.concatenate([err[:, :_END], err[:, -_END:]], axis=1)),
          np.mean(err[:, _END:-_END]))


def main(argv):
  del argv
  denoiser, noisy, clean = time_shifts.load_with_validation(FLAGS.workdir)
  print('| infer.edge_padding | val competition MSE | val LSD (dB) | '
        f'MSE, {_END} frames at the ends | MSE, the rest |\n'
        '|---|---:|---:|---:|---:|')
  for padding in whole_file.EDGE_PADDINGS:
    infer = settings.fill('infer', denoiser.config.infer)
    infer.edge_padding = padding
    preds = whole_file.denoise_power(denoiser.model, denoiser.variables,
                                     denoiser.normalizer, noisy, infer)
    mse, lsd = time_shifts.scores(preds, clean)
    ends, middle = np.mean([_ends_and_middle(p, c)
                            for p, c in zip(preds, clean)], axis=0)
    print(f'| {padding} | {mse:.4f} | {lsd:.2f} | {ends:.4f} | {middle:.4f} |',
          flush=True)


if __name__ == '__main__':
  flags.mark_flag_as_required('workdir')
  app.run(main)
