r"""How good can power subtraction get? Oracles that know the noise.

  python -m experiments.oracles.oracle   # needs espeak-ng, like make_corpus

Regenerates the corpus mixtures in memory (the stored noisy files are
checked to be byte-identical), so the noise that was added to each test file
is known, and scores, beside the noisy input and spectral subtraction:

- `known noise power`: max(Y - N, 0) with N the mel of the noise itself,
  bin by bin and frame by frame. Its error is only the cross term
  2 sqrt(S N) cos(phase) of speech and noise, which no method that sees
  power alone can know. A reference point, not a bound: an estimator that
  also shrinks toward likely speech can beat it where the cross term
  dominates (a learned model does on hum).
- `known noise spectrum`: max(Y - mean_t N, 0), the noise's mean power per
  band of each file, subtracted once.

Prints, per test set, the mean over files and the competition MSE per noise
kind (markdown).
"""
from typing import Dict

from absl import app
import numpy as np

from experiments import make_corpus
from mel_ae import audio
from mel_ae import baselines
from mel_ae import features
from mel_ae import mel_io
from mel_ae import report

_SETS = {'test': 'mel_ae/corpus/test/noisy/noised_{:03d}.npy',
         'heldout': 'experiments/data/heldout/noisy/noised_{:03d}.npy'}
_TITLES = {'test': 'Embedded test set (mel_ae/corpus/test)',
           'heldout': 'Held-out test set (experiments/data/heldout)'}


def estimates(noisy: np.ndarray, noise_mel: np.ndarray) -> Dict[str, np.ndarray]:
  floor = make_corpus.F16_MIN
  spectrum = noise_mel.mean(axis=1, keepdims=True)
  return {
      'identity': noisy,
      'spectral subtraction': baselines.spectral_subtraction(noisy),
      'known noise spectrum': np.maximum(noisy - spectrum, floor),
      'known noise power': np.maximum(noisy - noise_mel, floor),
  }


def main(argv):
  del argv
  sets = {name: {'outputs': {}, 'clean': [], 'noisy': [], 'kinds': []}
          for name in _SETS}
  for split, uid, entry, clean, noise in make_corpus.mixtures(0):
    if split not in _SETS:
      continue
    path = _SETS[split].format(uid)
    stored = mel_io.read_npy(path)
    if not np.array_equal(make_corpus.to_mel(clean + noise), stored):
      raise SystemExit(f'{path}: differs from the regenerated mixture')
    found = sets[split]
    found['clean'].append(make_corpus.to_mel(clean).astype(np.float64))
    noisy = stored.astype(np.float64)
    found['noisy'].append(noisy)
    found['kinds'].append(entry['noise'])
    noise_mel = audio.audio_to_mel(noise, make_corpus.SPEC)
    for method, est in estimates(noisy, noise_mel).items():
      found['outputs'].setdefault(method, []).append(est)
  for name, found in sets.items():
    table = report.method_table(found['outputs'], found['noisy'],
                                found['clean'],
                                features.fit_normalizer(found['clean']))
    print(f'\n## {_TITLES[name]}: {len(found["clean"])} files\n')
    print('\n'.join(report.markdown_table(table)))
    print('\nCompetition MSE per noise kind:\n')
    print('\n'.join(report.kind_table(found['outputs'], found['clean'],
                                      found['kinds'])))


if __name__ == '__main__':
  app.run(main)
