"""Synthesises the small speech corpus shipped in mel_ae/corpus.

The competition data cannot be redistributed, so tests, examples and smoke
runs use this stand-in: one espeak-ng speaker, power mels as librosa makes
them, scaled to the competition's range (max about 420), with noisy
versions mixed in the audio domain. A second held-out set uses another voice
and noise recipes that never appear in the corpus, to measure generalisation.

Regenerate (byte-identical for the same seed, espeak-ng 1.51; the FLAC files
sample for sample) from the repo root with:

  .venv/bin/python -m experiments.make_corpus --overwrite

Splits (ids are unique across all of them):
  train/NNN.npy               clean, 100 utterances
  noisy/noised_NNN.npy        noisy, 20 other sentences, no clean pair
  test/{noisy,clean}/...      30 pairs: noised_NNN.npy <-> NNN.npy
  <heldout_out>/{noisy,clean} 20 pairs, voice and noises unseen above
The 2020 competition's noise, an i.i.d. per-bin gain (GAIN_RANGE) on the
stored clean mel, on the same sentences:
  gain/noisy/noised_NNN.npy       the 20 unpaired sentences of noisy/
  gain/test/noisy/noised_NNN.npy  the 30 test sentences; clean in test/clean
The additive test pairs as audio too (16-bit FLAC on the corpus scale, so
they re-analyse to the stored mels), in a folder of their own because files
pair by stem within a folder:
  audio/test/{noisy,clean}/...    noised_NNN.flac <-> NNN.flac
"""
import dataclasses
import json
import os
import subprocess
import sys
import tempfile

from absl import app
from absl import flags
import numpy as np
import soundfile

from mel_ae import audio
from mel_ae import mel_io
from mel_ae import noise

SPEC = audio.MelSpec()
PEAK = 420.0            # Corpus max of the clean training mels.
FLOOR_MEL = 0.01        # Mean mel power of the recording noise floor.
F16_MIN = 1e-4          # Safely above float16's smallest normal, 6.1e-5.
LEAD_S = 0.15           # Silence before speech; espeak starts at once.
MIN_S, MAX_S = 2.5, 6.0
MAIN_VOICE = ('en-us', 160, 50)          # (voice, words/min, pitch)
HELDOUT_VOICE = ('en-gb-x-rp+f3', 150, 65)
BABBLE_VOICES = (('en-us+m3', 175, 35), ('en-us+f2', 170, 70),
                 ('en-us+m1', 150, 45), ('en-us+f4', 185, 60))
SPLITS = (('train', 100), ('noisy', 20), ('test', 30), ('heldout', 20))
MAIN_NOISES = ('white', 'pink', 'brown', 'hum', 'babble')
HELDOUT_NOISES = ('blue', 'band', 'bursts', 'clicks', 'tones')
N_BABBLE = 12
GAIN_RANGE = (0.001, 2.0)  # uniform per-bin gain of the gain/ family
PCM_SCALE = 32768       # int16 full scale: soundfile reads int16 / 32768.

_WORDS = {
    'adj': 'quiet bright heavy narrow golden sudden ancient gentle broken '
           'distant careful crowded simple frozen silver patient'.split(),
    'noun': 'river window teacher garden market engine letter village bridge '
            'kitchen doctor basket harbour forest ladder station candle '
            'painter blanket mountain'.split(),
    'verb': 'carried painted opened followed repaired watched finished '
            'borrowed measured cleaned visited noticed'.split(),
    'name': 'Anna Peter Maria James Linda Oscar Helen Victor Clara '
            'Thomas'.split(),
    'prep': 'near behind beside across under above'.split(),
    'adv': 'slowly quickly carefully quietly twice again'.split(),
    'num': 'two three five seven eleven twenty'.split(),
    'time': ['this morning', 'last winter', 'after dinner', 'before sunrise',
             'on Monday', 'at midnight', 'in April'],
}
_TEMPLATES = (
    'The {adj} {noun} {verb} the {noun2} {prep} the {noun3}.',
    '{name} {verb} a {adj} {noun} {time}.',
    'Did {name} see the {adj} {noun} {prep} the {noun2} {time}?',
    'We {verb} {num} {noun}s and {verb2} the {adj} {noun2} {adv}.',
    'When the {noun} was {adj}, {name} {verb} the {noun2} {adv}.',
    'My friend {name} says the {noun} {prep} the {noun2} is too {adj}.',
    'Nobody {verb} the {adj} {noun} {time}, so {name} {verb2} it {adv}.',
    '{time}, the {adj} {noun} {verb} the {noun2} and the {noun3}.',
)


def sentences(rng: np.random.Generator):
  """Endless unique sentences from templates and word lists."""
  seen = set()
  while True:
    template = _TEMPLATES[rng.integers(len(_TEMPLATES))]
    slots = {k: rng.choice(v) for k, v in _WORDS.items()}
    slots.update(noun2=rng.choice(_WORDS['noun']),
                 noun3=rng.choice(_WORDS['noun']),
                 verb2=rng.choice(_WORDS['verb']))
    text = template.format(**slots)
    text = text[0].upper() + text[1:]
    if text not in seen:
      seen.add(text)
      yield text


def synthesise(text: str, voice) -> np.ndarray:
  """espeak-ng speech at SPEC.sr, with LEAD_S of silence in front."""
  name, rate, pitch = voice
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, 'utt.wav')
    subprocess.run(['espeak-ng', '-v', name, '-s', str(rate), '-p',
                    str(pitch), '-w', path, text], check=True)
    wave = audio.load_audio(path, SPEC.sr).astype(np.float64)
  return np.pad(wave, (int(LEAD_S * SPEC.sr), 0))


def voice_of(split: str, index: int, speaker=MAIN_VOICE):
  if split == 'heldout':
    return HELDOUT_VOICE
  if split == 'babble':  # A crowd: several voices, none of them the speaker.
    return BABBLE_VOICES[index % len(BABBLE_VOICES)]
  return speaker


def utterances(rng: np.random.Generator, speaker=MAIN_VOICE):
  """{split: [(text, voice, wave)]} with durations in [MIN_S, MAX_S]."""
  pool = sentences(rng)
  out = {}
  for split, count in SPLITS + (('babble', N_BABBLE),):
    out[split] = []
    while len(out[split]) < count:
      voice, text = voice_of(split, len(out[split]), speaker), next(pool)
      wave = synthesise(text, voice)
      if MIN_S <= len(wave) / SPEC.sr <= MAX_S:
        out[split].append((text, voice, wave))
  return out


def make_noise(kind: str, n: int, rng: np.random.Generator, babble_waves):
  """One unit-RMS noise of the named recipe, with its own random settings."""
  sr = SPEC.sr
  if kind in ('white', 'pink', 'brown', 'blue'):
    return getattr(noise, kind)(n, rng)
  if kind == 'hum':
    return noise.hum(n, sr, rng, base=float(rng.choice([50, 60])))
  if kind == 'babble':
    return noise.babble(babble_waves, n, rng, talkers=int(rng.integers(3, 7)))
  if kind == 'band':
    low = rng.uniform(300, 3000)
    return noise.band_limited(n, sr, rng, low, low * rng.uniform(1.3, 2.0))
  if kind == 'bursts':
    return noise.bursts(n, sr, rng, rate_hz=rng.uniform(1, 4))
  if kind == 'clicks':
    return noise.clicks(n, rng, count=int(rng.integers(10, 40)))
  if kind == 'tones':
    return noise.tones(n, sr, rng, rng.uniform(420, 4200, rng.integers(1, 4)))
  raise ValueError(f'unknown noise {kind!r}')


def stored(mel: np.ndarray) -> np.ndarray:
  """float16, kept inside float16's normal range (no subnormals)."""
  return np.maximum(mel, F16_MIN).astype(np.float16)


def to_mel(wave: np.ndarray) -> np.ndarray:
  """Stored form of a wave: its float16 power mel."""
  return stored(audio.audio_to_mel(wave, SPEC))


def pcm16(wave: np.ndarray) -> np.ndarray:
  """16-bit samples of a wave on the corpus scale, unscaled, so the audio
  re-analyses to the stored mels' level.

  Rounded here rather than by libsndfile, so the samples do not depend on its
  float conversion; a sample outside [-1, 1) raises instead of clipping.
  """
  samples = np.round(wave * PCM_SCALE)
  if samples.min() < -PCM_SCALE or samples.max() >= PCM_SCALE:
    raise ValueError(f'peak {np.abs(wave).max():.3f} does not fit 16 bits')
  return samples.astype(np.int16)


def gain_noised(clean_mel: np.ndarray, seed: int, uid: int) -> np.ndarray:
  """A stored clean mel times a gain drawn from U(GAIN_RANGE) per bin."""
  rng = np.random.default_rng([seed, uid, 2])
  return stored(clean_mel.astype(np.float64)
                * rng.uniform(*GAIN_RANGE, clean_mel.shape))


def floor_sigma(gain: float) -> float:
  """Std of white noise whose mel (after `gain`) has mean FLOOR_MEL.

  For white noise every STFT bin has power sigma^2 * sum(window^2), which is
  3/8 n_fft for a Hann window; the mel adds bins with the filterbank weights.
  """
  window_energy = 0.375 * SPEC.n_fft
  per_band = window_energy * audio.mel_filterbank(SPEC).sum(axis=1).mean()
  return float(np.sqrt(FLOOR_MEL / (gain * per_band)))


def add_floor_and_gain(utts, seed: int):
  """{split: [(uid, text, voice, clean wave)]} on the corpus power scale.

  Every wave gets a quiet white floor (a real microphone's self-noise), sized
  from a speech-only gain; the final global gain includes the floor, so the
  clean training maximum is exactly PEAK. Ids run on across the splits.
  """
  speech_gain = PEAK / max(audio.audio_to_mel(w, SPEC).max()
                           for _, _, w in utts['train'])
  sigma = floor_sigma(speech_gain)
  out, uid = {}, 0
  for split, _ in SPLITS:
    out[split] = []
    for text, voice, wave in utts[split]:
      rng = np.random.default_rng([seed, uid, 0])
      out[split].append(
          (uid, text, voice, wave + sigma * rng.standard_normal(len(wave))))
      uid += 1
  gain = PEAK / max(audio.audio_to_mel(w, SPEC).max()
                    for *_, w in out['train'])
  return {split: [(*u[:3], np.sqrt(gain) * u[3]) for u in items]
          for split, items in out.items()}


def mixtures(seed: int, speaker=MAIN_VOICE):
  """Yields (split, uid, manifest entry, clean wave, scaled noise wave).

  The noise is None for the training split; a noisy file is clean + noise.
  """
  utts = utterances(np.random.default_rng(seed), speaker)
  babble_waves = [w for _, _, w in utts['babble']]
  for split, items in add_floor_and_gain(utts, seed).items():
    kinds = HELDOUT_NOISES if split == 'heldout' else MAIN_NOISES
    for i, (uid, text, voice, clean) in enumerate(items):
      entry = {'text': text, 'espeak': '-v {} -s {} -p {}'.format(*voice)}
      if split == 'train':
        yield split, uid, entry, clean, None
        continue
      rng = np.random.default_rng([seed, uid, 1])
      kind, snr = kinds[i % len(kinds)], round(rng.uniform(0, 15), 1)
      entry.update(noise=kind, snr_db=snr)
      yield split, uid, entry, clean, noise.scale_to_snr(
          clean, make_noise(kind, len(clean), rng, babble_waves), snr)


def build(seed: int, speaker=MAIN_VOICE):
  """Yields (relative path, data, manifest entry) for every file.

  The data is a float16 mel for a .npy path, int16 samples for a .flac path.
  """
  for split, uid, entry, clean, scaled_noise in mixtures(seed, speaker):
    if split == 'train':
      yield f'train/{uid:03d}.npy', to_mel(clean), entry
      continue
    folder = 'noisy' if split == 'noisy' else f'{split}/noisy'
    yield f'{folder}/noised_{uid:03d}.npy', to_mel(clean + scaled_noise), entry
    clean_mel = to_mel(clean)
    if split != 'noisy':
      yield f'{split}/clean/{uid:03d}.npy', clean_mel, entry
    if split == 'test':
      yield (f'audio/test/noisy/noised_{uid:03d}.flac',
             pcm16(clean + scaled_noise), entry)
      yield f'audio/test/clean/{uid:03d}.flac', pcm16(clean), entry
    if split in ('noisy', 'test'):
      gain_entry = {'text': entry['text'], 'espeak': entry['espeak'],
                    'noise': 'gain', 'gain_range': list(GAIN_RANGE)}
      yield (f'gain/{folder}/noised_{uid:03d}.npy',
             gain_noised(clean_mel, seed, uid), gain_entry)


def _define_flags() -> None:
  """Only when run: the corpus' helpers are imported by other commands,
  whose own flags these names would clash with."""
  flags.DEFINE_string('out', 'mel_ae/corpus', 'Corpus folder.')
  flags.DEFINE_string('heldout_out', 'experiments/data/heldout',
                      'Folder of the second held-out test set.')
  flags.DEFINE_integer('seed', 0, 'Seed of sentences and noise.')
  flags.DEFINE_bool('overwrite', False, 'Replace existing files.')
  flags.DEFINE_list(
      'voice', ['en-us', '160', '50'],
      'espeak-ng voice, words/min and pitch of the speaker (train, noisy and '
      'test splits); another voice makes a development corpus of its own.')


def main(argv):
  del argv
  args = flags.FLAGS
  manifests = {args.out: {}, args.heldout_out: {}}
  for root in manifests:
    if os.path.exists(os.path.join(root, 'manifest.json')) and (
        not args.overwrite):
      sys.exit(f'{root}: holds a corpus already (pass --overwrite)')
  name, rate, pitch = args.voice
  for rel, data, entry in build(args.seed, (name, int(rate), int(pitch))):
    root = args.heldout_out if rel.startswith('heldout/') else args.out
    rel = rel.removeprefix('heldout/')
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if rel.endswith('.flac'):
      soundfile.write(path, data, SPEC.sr, format='FLAC', subtype='PCM_16')
      manifests[root][rel] = {**entry, 'samples': len(data)}
    else:
      mel_io.save_mel(path, data, overwrite=True)
      manifests[root][rel] = {**entry, 'frames': data.shape[1]}
  params = {'seed': args.seed, 'peak': PEAK, 'floor_mel': FLOOR_MEL,
            'dtype': 'float16', **dataclasses.asdict(SPEC)}
  for root, files in manifests.items():
    with open(os.path.join(root, 'manifest.json'), 'w') as f:
      json.dump({'params': params, 'files': files}, f, indent=1,
                sort_keys=True)
      f.write('\n')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
