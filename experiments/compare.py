r"""Scores trained models beside the classical baselines on a paired test set.

  python -m experiments.compare --workdirs=seed:runs/base,denoise:runs/denoise \
      --noisy=mel_ae/corpus/test/noisy --clean=mel_ae/corpus/test/clean

A workdir may name a checkpoint step, `name:workdir@1000`; the default is
the latest. Prints a markdown table (competition MSE in raw power,
normalised MSE, LSD, improvement over the noisy input), means over files;
the normalised domain is root 16 fitted on the clean references, the same
for every method.
"""
from absl import app
from absl import flags

from mel_ae import audio
from mel_ae import baselines
from mel_ae import cli
from mel_ae import features
from mel_ae import input_pipeline
from mel_ae import report

flags.DEFINE_list('workdirs', [], 'name:workdir[@step] of trained models.')
flags.DEFINE_string('noisy', None, 'Folder of noisy test mels.')
flags.DEFINE_string('clean', None, 'Folder of clean references (same stems).')
flags.mark_flags_as_required(['noisy', 'clean'])
FLAGS = flags.FLAGS


def main(argv):
  del argv
  cli.quiet_library_logs()
  noisy, clean = input_pipeline.load_pairs(FLAGS.noisy, FLAGS.clean,
                                           audio.MelSpec(), 1)
  outputs = {}
  for entry in FLAGS.workdirs:
    name, workdir = entry.split(':', 1)
    outputs[name] = cli.load_model(workdir).denoise_batch(noisy.mels)
  outputs.update({m: [baselines.apply(m, x) for x in noisy.mels]
                  for m in baselines.METHODS})
  table = report.method_table(outputs, noisy.mels, clean.mels,
                              features.fit_normalizer(clean.mels))
  print(f'{len(clean.mels)} files: {FLAGS.noisy}')
  print('\n'.join(report.markdown_table(table)))


if __name__ == '__main__':
  app.run(main)
