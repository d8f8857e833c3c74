r"""How much of clean speech a trained model keeps when there is no noise.

  python -m experiments.passthrough --workdir=runs/denoise \
      --clean=experiments/data/heldout/clean,mel_ae/corpus/test/clean

A denoiser should leave clean input alone. For each folder of clean mels,
prints the share of the power of loud bins (clean power > --loud) that the
model's output keeps, overall and per band range, and the competition MSE
against the input. A model that removes a voice it was not trained on shows
it here without any noise to blame.
"""
from absl import app
from absl import flags
import numpy as np

# Its output form registered, so workdirs of the earlier recipe load.
from experiments.subtract import output_form  # pylint: disable=unused-import
from mel_ae import audio
from mel_ae import inference
from mel_ae import input_pipeline
from mel_ae import logs

flags.DEFINE_string('workdir', None, 'Training workdir (optionally @step).')
flags.DEFINE_list('clean', None, 'Folders of clean mels.')
flags.DEFINE_float('loud', 10.0, 'A bin is loud above this raw power.')
flags.DEFINE_list('band_edges', ['0', '8', '16', '32', '64', '128'],
                  'Mel band ranges reported separately.')
flags.mark_flags_as_required(['workdir', 'clean'])
FLAGS = flags.FLAGS


def kept_share(clean: np.ndarray, output: np.ndarray, loud: np.ndarray):
  """Output power over input power on the loud bins (nan where none)."""
  total = clean[loud].sum()
  return float(output[loud].sum() / total) if total > 0 else float('nan')


def main(argv):
  del argv
  logs.quiet_library_logs()
  model = inference.load_spec(FLAGS.workdir)
  edges = [int(e) for e in FLAGS.band_edges]
  print(f'| clean folder | MSE vs input | loud power kept | '
        + ' | '.join(f'bands {a}-{b - 1}' for a, b in zip(edges, edges[1:]))
        + ' |')
  print('|---|---:|---:|' + '---:|' * (len(edges) - 1))
  for folder in FLAGS.clean:
    mels = input_pipeline.load_folder(folder, audio.MelSpec(), 1).mels
    clean = np.concatenate(mels, axis=1)
    output = np.concatenate(model.denoise_batch(mels), axis=1)
    loud = clean > FLAGS.loud
    bands = [kept_share(clean[a:b], output[a:b], loud[a:b])
             for a, b in zip(edges, edges[1:])]
    print(f'| {folder} | {np.mean((output - clean) ** 2):.4g} | '
          f'{kept_share(clean, output, loud):.3f} | '
          + ' | '.join(f'{b:.3f}' for b in bands) + ' |')


if __name__ == '__main__':
  app.run(main)
