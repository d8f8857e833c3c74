r"""Several runs scored on the validation set of each of them, whole files.

  python -m experiments.recipe.common_validation --workdirs=before:W1,after:W2

A change to the noise model also changes the validation noise drawn from
it, so two runs' own validation scores do not compare. Rebuilds the
validation set of every listed run (held-out training files with its
noise, experiments/recipe/time_shifts.py; the runs must share a seed, hence the
held-out files) and scores every run on each, denoised whole as the test
set is: competition MSE / LSD.
"""
from absl import app
from absl import flags

from experiments.recipe import time_shifts
from mel_ae import inference
from mel_ae import logs
from mel_ae import whole_file
from mel_ae.backends import host_memory

flags.DEFINE_list('workdirs', None, 'name:workdir pairs, same seed.')
flags.mark_flag_as_required('workdirs')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  host_memory.reuse_freed_memory()
  logs.quiet_library_logs()
  runs = dict(pair.split(':', 1) for pair in FLAGS.workdirs)
  denoisers = {name: inference.load(workdir) for name, workdir in runs.items()}
  print('| run | ' + ' | '.join(f'on the validation of {name}'
                                 for name in runs) + ' |\n'
        '|---|' + '---:|' * len(runs))
  scores = {name: [] for name in runs}
  for reference in denoisers.values():
    # As power: each run denoises them with its own normaliser.
    noisy, clean = time_shifts.noisy_validation_power(reference)
    for name, denoiser in denoisers.items():
      preds = whole_file.denoise_power(denoiser.model, denoiser.variables,
                                       denoiser.normalizer, noisy,
                                       denoiser.config.infer)
      scores[name].append('%.4f / %.2f dB' % time_shifts.scores(preds, clean))
  for name, row in scores.items():
    print(f'| {name} | ' + ' | '.join(row) + ' |', flush=True)


if __name__ == '__main__':
  app.run(main)
