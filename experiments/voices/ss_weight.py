"""How much of spectral subtraction the shipped general model takes beside
its network: competition MSE and LSD of p^(1-w) s^w on the validation voices
(`infer.spectral_subtraction_weight`), over w and the subtraction's
over-subtraction factor; the network runs once.

  python -m experiments.voices.ss_weight \
      --out=experiments/voices/results/ss_weight.md
"""
import os

from absl import app
from absl import flags
import numpy as np

from mel_ae import audio
from mel_ae import baselines
from mel_ae import inference
from mel_ae import input_pipeline
from mel_ae import metrics
from mel_ae import whole_file

_VAL = flags.DEFINE_string(
    'val', '~/.cache/mel_ae/voices/val', 'Folder with noisy/ and clean/ '
    '(python -m experiments.voices.make_voices).')
_WEIGHTS = flags.DEFINE_list('weights', ['0', '0.3', '0.4', '0.5', '0.6',
                                         '0.7'], 'Values of w.')
_FACTORS = flags.DEFINE_list('factors', ['1', '1.5', '2', '3'],
                             'Over-subtraction factors.')
_OUT = flags.DEFINE_string('out', None, 'Markdown table to write.')


def main(argv):
  del argv
  folder = os.path.expanduser(_VAL.value)
  noisy, clean = (f.mels for f in input_pipeline.load_pairs(
      os.path.join(folder, 'noisy'), os.path.join(folder, 'clean'),
      audio.MelSpec(), 1))
  denoiser = inference.load_pretrained('general')
  denoiser.config.infer.spectral_subtraction_weight = 0.0  # The network.
  alone = [np.asarray(p, np.float64)
           for p in denoiser.denoise_batch(noisy, warn=False)]
  lines = [f'{len(noisy)} files: {folder}/noisy; the shipped general model\'s '
           'network p, spectral subtraction s, p^(1-w) s^w.', '',
           '| over-subtraction | w | competition MSE | LSD dB |',
           '|---:|---:|---:|---:|']
  for factor in map(float, _FACTORS.value):
    subtracted = [baselines.spectral_subtraction(
        np.asarray(m, np.float64), over_subtraction=factor) for m in noisy]
    for w in map(float, _WEIGHTS.value):
      outs = [whole_file.log_power_mean(p, s, w)
              for p, s in zip(alone, subtracted)]
      mse = np.mean([metrics.competition_mse(o, c)
                     for o, c in zip(outs, clean)])
      lsd = np.mean([metrics.lsd_db(o, c) for o, c in zip(outs, clean)])
      lines.append(f'| {factor:g} | {w:g} | {mse:.4f} | {lsd:.2f} |')
      print(lines[-1], flush=True)
  with open(_OUT.value, 'w') as f:
    f.write('\n'.join(lines) + '\n')


if __name__ == '__main__':
  flags.mark_flags_as_required(['out'])
  app.run(main)
