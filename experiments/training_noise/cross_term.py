r"""How large is the speech x noise cross term of audio mixed in the waveform?

  python -m experiments.training_noise.cross_term  # needs espeak-ng

A power mel of speech S plus noise N is not S + N: each band also holds
2 sqrt(S N) cos(phase) summed over its STFT bins. Training mixes made in
power draw it as 2 sqrt(S N) * N(0, noise.cross_std). This measures that
std: new sentences of the corpus voice (not corpus files), each noise
recipe of make_corpus at an SNR drawn from 0-15 dB, the std of
(Y - S - N) / (2 sqrt(S N)) over bins where speech and noise both lie
within 40 dB of the speech's peak, in three band ranges. Prints markdown.
"""
import itertools

from absl import app
from absl import flags
import numpy as np

from experiments import make_corpus
from mel_ae import audio
from mel_ae import noise

flags.DEFINE_integer('sentences', 6, 'Utterances of the corpus voice.')
FLAGS = flags.FLAGS

_BANDS = ((0, 40), (40, 80), (80, 128))  # below ~1 kHz, 1-4 kHz, above
_KINDS = ('white', 'pink', 'brown', 'hum', 'babble')
_SEED = 123  # not a corpus seed: other sentences than the corpus'
_MIN_BINS = 200  # fewer bins with both speech and noise: '-'


def cross_ratios(speech: np.ndarray, scaled_noise: np.ndarray) -> np.ndarray:
  """(Y - S - N) / (2 sqrt(S N)) per bin; NaN where either is negligible."""
  s, n, y = (audio.audio_to_mel(x.astype(np.float32), make_corpus.SPEC)
             .astype(np.float64) for x in (speech, scaled_noise,
                                           speech + scaled_noise))
  both = (s > 1e-4 * s.max()) & (n > 1e-4 * s.max())
  return np.where(both, (y - s - n) / (2 * np.sqrt(s * n) + 1e-30), np.nan)


def main(argv):
  del argv
  rng = np.random.default_rng(_SEED)
  texts = list(itertools.islice(make_corpus.sentences(rng),
                                2 * FLAGS.sentences))
  speech = [make_corpus.synthesise(t, make_corpus.MAIN_VOICE)
            for t in texts[:FLAGS.sentences]]
  crowd = [make_corpus.synthesise(t, v) for t, v in zip(
      texts[FLAGS.sentences:], itertools.cycle(make_corpus.BABBLE_VOICES))]
  print('| noise | ' + ' | '.join(f'mel bands {lo}-{hi - 1}'
                                   for lo, hi in _BANDS) + ' |')
  print('|---|' + '---:|' * len(_BANDS))
  for kind in _KINDS:
    ratios = np.concatenate([cross_ratios(s, noise.scale_to_snr(
        s, make_corpus.make_noise(kind, len(s), rng, crowd),
        rng.uniform(0, 15))) for s in speech], axis=1)
    stds = [np.nanstd(ratios[lo:hi])
            if np.isfinite(ratios[lo:hi]).sum() >= _MIN_BINS else np.nan
            for lo, hi in _BANDS]
    print(f'| {kind} | ' + ' | '.join(
        '-' if np.isnan(v) else f'{v:.2f}' for v in stds) + ' |')


if __name__ == '__main__':
  app.run(main)
