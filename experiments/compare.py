r"""Scores trained models beside the classical baselines on a paired test set.

  python -m experiments.compare --workdirs=seed:runs/base,denoise:runs/denoise \
      --noisy=mel_ae/corpus/test/noisy --clean=mel_ae/corpus/test/clean

A workdir may name a checkpoint step, `name:workdir@1000`; the default is
the latest. `--preds=name:folder,...` adds folders of precomputed
predictions (one .npy per noisy file, same stem; e.g.
experiments/recipe/winner.py writes them). Prints a markdown table (competition MSE in raw power,
normalised MSE, LSD, improvement over the noisy input), means over files;
the normalised domain is root 16 fitted on the clean references, the same
for every method. With `--manifest` (the corpus' manifest.json, which names
each noisy file's noise) it also prints the competition MSE per noise kind.
"""
import json
import os
from typing import Dict, List, Sequence

from absl import app
from absl import flags
import numpy as np

# The studies' output forms registered, so their workdirs load.
from experiments.subtract import output_form  # pylint: disable=unused-import
from experiments.voices import floor_form  # pylint: disable=unused-import
from mel_ae import audio
from mel_ae import baselines
from mel_ae import features
from mel_ae import inference
from mel_ae import input_pipeline
from mel_ae import logs
from mel_ae import mel_io
from mel_ae import report

flags.DEFINE_list('workdirs', [], 'name:workdir[@step] of trained models.')
flags.DEFINE_list('preds', [], 'name:folder of precomputed predictions, '
                  'matched to the noisy files by stem.')
flags.DEFINE_string('noisy', None, 'Folder of noisy test mels.')
flags.DEFINE_string('clean', None, 'Folder of clean references (same stems).')
flags.DEFINE_string('manifest', None, 'Optional manifest.json naming the '
                    'noise of each noisy file (keys: paths relative to it): '
                    'adds a per-noise table.')
flags.mark_flags_as_required(['noisy', 'clean'])
FLAGS = flags.FLAGS


def noise_table(outputs: Dict[str, Sequence], clean: Sequence,
                noisy_paths: Sequence[str], manifest: str) -> List[str]:
  """Markdown: mean competition MSE per method (rows) and noise kind."""
  with open(manifest) as f:
    files = json.load(f)['files']
  keys = [os.path.relpath(p, os.path.dirname(manifest)) for p in noisy_paths]
  missing = [k for k in keys if k not in files]
  if missing:
    raise SystemExit(f'{manifest} does not list {missing[0]} (keys are paths '
                     'relative to the manifest)')
  return report.kind_table(outputs, clean, [files[k]['noise'] for k in keys])


def load_predictions(folder: str,
                     noisy: input_pipeline.MelFolder) -> List[np.ndarray]:
  """The .npy files of `folder` in the order of the noisy files, by stem."""
  paths = mel_io.match_by_stem(mel_io.list_files(folder, (mel_io.MEL_SUFFIX,)),
                               noisy.paths)
  preds = [mel_io.load_mel(p) for p in paths]
  for pred, mel, path in zip(preds, noisy.mels, paths):
    if pred.shape != mel.shape:
      raise mel_io.MelFileError(f'{path}: shape {pred.shape} differs from '
                                f'its noisy input {mel.shape}')
  return preds


def main(argv):
  del argv
  logs.quiet_library_logs()
  noisy, clean = input_pipeline.load_pairs(FLAGS.noisy, FLAGS.clean,
                                           audio.MelSpec(), 1)
  outputs = {}
  for entry in FLAGS.workdirs:
    name, workdir = entry.split(':', 1)
    outputs[name] = inference.load_spec(workdir).denoise_batch(noisy.mels)
  for entry in FLAGS.preds:
    name, folder = entry.split(':', 1)
    try:
      outputs[name] = load_predictions(folder, noisy)
    except mel_io.MelFileError as e:
      raise SystemExit(f'error: {e}') from None
  outputs.update({m: [baselines.apply(m, x) for x in noisy.mels]
                  for m in baselines.METHODS})
  table = report.method_table(outputs, noisy.mels, clean.mels,
                              features.fit_normalizer(clean.mels))
  print(f'{len(clean.mels)} files: {FLAGS.noisy}')
  print('\n'.join(report.markdown_table(table)))
  if FLAGS.manifest:
    print('\nCompetition MSE per noise kind:')
    print('\n'.join(noise_table(outputs, clean.mels, noisy.paths,
                                FLAGS.manifest)))


if __name__ == '__main__':
  app.run(main)
