r"""The mel gain on recordings, chosen on validation recordings.

mel_ae/waveform.py scales each STFT bin of a recording by the denoiser's mel
gain (denoised / noisy power per band), spread over the bins by the
filterbank. This study scores the gain's ceiling (1, or none) for the model,
beside the oracle gain (clean / noisy mel), spectral subtraction's gain and
the untouched input.

Validation, never the test set: the clean training sentences a run held out
(its data.val_fraction and seed), synthesised again as the corpus was made
(espeak-ng 1.51, experiments/make_corpus.py: their mels are checked against
the stored ones), each mixed with every additive kind of the corpus at an SNR
from U(0, 15) dB, drawn from a random stream the corpus does not use.

  python -m experiments.audio.audio_gain --workdir=runs/denoise \
      [--table=experiments/audio/results/audio_gain.md]
"""
import itertools
import os
from typing import Callable, Dict, List, Tuple

from absl import app
from absl import flags
import numpy as np

import mel_ae
from experiments import make_corpus
from mel_ae import audio
from mel_ae import audio_metrics
from mel_ae import baselines
from mel_ae import input_pipeline
from mel_ae import mel_io
from mel_ae import metrics
from mel_ae import noise
from mel_ae import waveform


SPEC = make_corpus.SPEC
CORPUS = os.path.join(os.path.dirname(mel_ae.__file__), 'corpus')
VALIDATION_STREAM = 7  # make_corpus seeds streams 0-2 per file id.

_WORKDIR = flags.DEFINE_string('workdir', None, 'A configs/denoise.py run on '
                               'the embedded corpus.')
_TABLE = flags.DEFINE_string('table', None,
                             'Optional markdown file of the table.')
COLUMNS = ('competition_mse', 'lsd_db', 'pesq_wb', 'stoi', 'si_sdr')


def validation_pairs(val_fraction: float, seed: int,
                     corpus_seed: int = 0) -> List[Tuple[str, np.ndarray,
                                                         np.ndarray]]:
  """(name, clean, noisy) recordings of the held-out training sentences."""
  utts = make_corpus.utterances(np.random.default_rng(corpus_seed))
  babble = [w for _, _, w in utts['babble']]
  train = [(uid, clean) for uid, _, _, clean in
           make_corpus.add_floor_and_gain(utts, corpus_seed)['train']]
  _, val_idx = input_pipeline.split_validation(len(train), val_fraction, seed)
  pairs = []
  for i, kind in itertools.product(val_idx, make_corpus.MAIN_NOISES):
    uid, clean = train[i]
    stored = mel_io.load_mel(os.path.join(CORPUS, 'train', f'{uid:03d}.npy'))
    np.testing.assert_allclose(make_corpus.to_mel(clean), stored, rtol=1e-3)
    rng = np.random.default_rng([corpus_seed, uid, VALIDATION_STREAM])
    n = len(clean)
    scaled = noise.scale_to_snr(
        clean, make_corpus.make_noise(kind, n, rng, babble),
        rng.uniform(0, 15))
    pairs.append((f'{uid:03d}_{kind}', clean.astype(np.float32),
                  (clean + scaled).astype(np.float32)))
  return pairs


def variants(denoiser) -> Dict[str, Callable]:
  """Name -> f(noisy recording, clean recording) -> denoised recording."""
  def through(mel_fn, max_gain):
    def run(noisy, clean):
      fixed = lambda mels: [mel_fn(mels[0], audio.audio_to_mel(clean, SPEC))]
      return waveform.denoise_wave(noisy, SPEC.sr, fixed, SPEC,
                                   max_gain=max_gain)[0]
    return run
  model = lambda noisy_mel, _: denoiser.denoise(noisy_mel)
  oracle = lambda _, clean_mel: clean_mel
  subtract = lambda noisy_mel, _: baselines.spectral_subtraction(noisy_mel)
  table = {'noisy input': lambda noisy, _: noisy}
  for max_gain in (1.0, None):
    ceiling = 'none' if max_gain is None else f'{max_gain:g}'
    table[f'model, ceiling {ceiling}'] = through(model, max_gain)
    table[f'oracle, ceiling {ceiling}'] = through(oracle, max_gain)
  table['spectral subtraction, ceiling 1'] = through(subtract, 1.0)
  return table


def markdown(means: Dict[str, Dict[str, float]], n: int) -> str:
  lines = [f'Validation recordings: {n} (held-out training sentences x the '
           'additive kinds), means.', '',
           '| method | ' + ' | '.join(COLUMNS) + ' |',
           '|---|' + '---:|' * len(COLUMNS)]
  for name, row in means.items():
    lines.append(f'| {name} | ' + ' | '.join(
        f'{row.get(c, float("nan")):.4g}' for c in COLUMNS) + ' |')
  return '\n'.join(lines) + '\n'


def main(argv):
  del argv
  denoiser = mel_ae.load(_WORKDIR.value)
  pairs = validation_pairs(denoiser.config.data.val_fraction,
                           denoiser.config.seed)
  means = {}
  for name, run in variants(denoiser).items():
    rows = [audio_metrics.score_recording(run(noisy, clean), clean, SPEC)
            for _, clean, noisy in pairs]
    means[name] = metrics.summarize(rows)
    print(name, {k: round(v, 4) for k, v in means[name].items()}, flush=True)
  table = markdown(means, len(pairs))
  print(table)
  if _TABLE.value:
    with open(_TABLE.value, 'w') as f:
      f.write(table)


if __name__ == '__main__':
  flags.mark_flag_as_required('workdir')
  app.run(main)
