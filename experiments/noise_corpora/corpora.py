"""Mel sets with known noise, unlike the embedded corpus in dtype, level and
floor, for testing the noise fit (mel_ae/noise_model.py) and for measuring
the recipe on them.

A corpus is made from clean power mels (the embedded corpus' train/ and
test/clean, or one voice of experiments/voices synthesised afresh by
espeak-ng or Festival, `voice_mels`): their own quiet floor (white noise at
-20 dB mean mel power) is taken away and replaced by one at `floor_db`
(None: none, true zeros); then the unpaired noisy files and the test pairs
get the recipe's noise; then everything is shifted by `level_db` and stored
as `dtype`. What was drawn, and the truth the fit should find, go into the
corpus' manifest.
"""
import dataclasses
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from experiments.voices import make_voices
from mel_ae import audio
from mel_ae import input_pipeline
from mel_ae import noise
from mel_ae import noise_bank
from mel_ae import noise_model

SPEC = audio.MelSpec()
ADDITIVE = ('white', 'pink', 'brown', 'hum', 'babble')
# Per-bin gains: the 2020 competition's, and a log-uniform one.
GAINS = {'gain_uniform': ('uniform', (0.001, 2.0)),
         'gain_loguniform': ('loguniform', (0.01, 1.0))}
NOISES = ('none',) + ADDITIVE + ('mixed',) + tuple(GAINS) + ('both',)
SNR_DB = (0.0, 15.0)  # additive noise: a global SNR per file, uniform
CROSS_STD = 0.4  # the speech x noise cross term of mixing in the waveform
_OWN_FLOOR_SUBTRACTED = 4.0  # times the corpus' own floor taken away
_QUIET_FRACTION = 0.3  # frames that measure the corpus' own floor
VOICE_TRAIN_FILES, VOICE_TEST_FILES = 100, 30  # utterances of a voice
VOICES = {v[0]: v for v in make_voices.TRAIN_VOICES + make_voices.VAL_VOICES}
_WHITE_FRAMES = 2048  # the new floor: frames of one white noise mel
_SEED_TAG = 0xC0A


@dataclasses.dataclass(frozen=True)
class Recipe:
  """One corpus of the family: its noise, dtype, level and floor."""
  noise: str  # one of NOISES; 'mixed': the ADDITIVE kinds in turn
  dtype: str = 'float32'  # or 'float16'
  level_db: float = 0.0  # every value times 10^(level_db / 10)
  floor_db: Optional[float] = -70.0  # the clean floor's mean mel power, dB
  voice: Optional[str] = None  # a make_voices tag; None: the embedded voice

  @property
  def name(self) -> str:
    floor = 'zeros' if self.floor_db is None else f'{self.floor_db:+.0f}dB'
    voice = f'{self.voice}_' if self.voice else ''
    return (f'{voice}{self.noise}_{self.dtype}_level{self.level_db:+.0f}dB_'
            f'floor{floor}')

  @property
  def additive(self) -> Tuple[str, ...]:
    """The additive kinds, in turn over the files; () for none."""
    if self.noise in ADDITIVE:
      return (self.noise,)
    return ADDITIVE if self.noise in ('mixed', 'both') else ()

  @property
  def gain(self) -> Optional[Tuple[str, Tuple[float, float]]]:
    """(distribution, range) of the per-bin gain, or None."""
    return GAINS['gain_uniform'] if self.noise == 'both' else GAINS.get(
        self.noise)


def family(voice: Optional[str] = None) -> List[Recipe]:
  """Every noise on the default float32 set, and the dtype, level and floor
  variants, one axis at a time, of no noise, mixed additive noise, the
  competition's gain and both; all on one voice."""
  recipes = [Recipe(n, voice=voice) for n in NOISES]
  for n in ('none', 'mixed', 'gain_uniform', 'both'):
    recipes += [Recipe(n, dtype='float16', voice=voice)]
    recipes += [Recipe(n, level_db=level, voice=voice)
                for level in (-20.0, 20.0)]
    recipes += [Recipe(n, floor_db=floor, voice=voice)
                for floor in (-100.0, -40.0, None)]
  return recipes


def voice_mels(tag: str, seed: int = 0) -> List[np.ndarray]:
  """Clean power mels of one make_voices voice (training or validation):
  VOICE_TRAIN_FILES then VOICE_TEST_FILES utterances, synthesised now,
  scaled to the embedded corpus' peak, with the synthesiser's own silence
  (no recording floor)."""
  rng = np.random.default_rng([seed, _SEED_TAG, *tag.encode()])
  speech, _ = make_voices.scaled_speech(
      VOICES[tag], VOICE_TRAIN_FILES + VOICE_TEST_FILES, rng)
  return [audio.audio_to_mel(wave, SPEC) for _, wave in speech]


def speech(voice: Optional[str] = None, source: str = 'mel_ae/corpus',
           seed: int = 0) -> Tuple[List[np.ndarray], List[np.ndarray]]:
  """(training, test) clean mels: a voice's (`voice_mels`, its sentences
  drawn by `seed`), or the embedded corpus' train/ and test/clean under
  `source`."""
  if voice:
    mels = voice_mels(voice, seed)
    return mels[:VOICE_TRAIN_FILES], mels[VOICE_TRAIN_FILES:]
  load = lambda *parts: list(input_pipeline.load_folder(
      os.path.join(source, *parts), SPEC, 1).mels)
  return load('train'), load('test', 'clean')


def own_floor(mels: Sequence[np.ndarray]) -> np.ndarray:
  """(n_mels, 1): the clean files' own floor per band (median over files of
  their quiet frames' mean power)."""
  quiet = [noise_model.quiet_frames(np.asarray(m, np.float64),
                                    _QUIET_FRACTION).mean(axis=1)
           for m in mels]
  return np.median(quiet, axis=0)[:, None]


def _noise_mel(kind: str, frames: int, rng: np.random.Generator,
               babble: Sequence[np.ndarray]) -> np.ndarray:
  """`frames` frames of an additive kind's power mel, mean 1."""
  if kind == 'babble':
    texture = babble[rng.integers(len(babble))]
    start = rng.integers(texture.shape[1] - frames + 1)
    mel = texture[:, start:start + frames]
  else:
    wave = (noise.hum(frames * SPEC.hop_length, SPEC.sr, rng,
                      base=float(rng.choice([50.0, 60.0])))
            if kind == 'hum'
            else getattr(noise, kind)(frames * SPEC.hop_length, rng))
    mel = audio.audio_to_mel(wave.astype(np.float32), SPEC)[:, :frames]
  return mel / mel.mean()


def refloored(mel: np.ndarray, floor: np.ndarray, floor_db: Optional[float],
              white: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """The mel without its own floor (true zeros there) and with a white one
  (frames of `white`, mean 1) at floor_db mean power instead (None: none),
  float64."""
  speech = np.maximum(mel - _OWN_FLOOR_SUBTRACTED * floor, 0.0)
  if floor_db is None:
    return speech
  start = rng.integers(white.shape[1] - mel.shape[1] + 1)
  return speech + 10 ** (floor_db / 10) * white[:, start:start + mel.shape[1]]


def corrupted(recipe: Recipe, clean: np.ndarray, index: int,
              rng: np.random.Generator,
              babble: Sequence[np.ndarray]) -> Tuple[np.ndarray, Dict]:
  """The recipe's noise on one clean mel (float64), and what was drawn."""
  drawn = {}
  noisy = np.asarray(clean, np.float64)
  if recipe.gain:
    distribution, gain_range = recipe.gain
    noisy = noisy * noise_model.gain_from_uniform(distribution, gain_range,
                                                  rng.random(noisy.shape))
  if recipe.additive:
    kind = recipe.additive[index % len(recipe.additive)]
    snr = float(rng.uniform(*SNR_DB))
    texture = _noise_mel(kind, noisy.shape[1], rng, babble)
    scale = noisy.mean() / 10 ** (snr / 10)
    noisy = noise_bank.add_noise(noisy, scale * texture, CROSS_STD, rng)
    drawn = {'kind': kind, 'snr_db': round(snr, 2),
             'noise_db': float(10 * np.log10(scale))}
  return noisy, drawn


def stored(recipe: Recipe, mel: np.ndarray, name: str) -> np.ndarray:
  """The mel at the recipe's level and dtype; float16 overflow refused."""
  shifted = mel * 10 ** (recipe.level_db / 10)
  if recipe.dtype == 'float16' and shifted.max() > np.finfo(np.float16).max:
    raise ValueError(f'{recipe.name}/{name}: peak {shifted.max():.3g} '
                     'overflows float16')
  return shifted.astype(recipe.dtype)


def truth(recipe: Recipe, drawn: Sequence[Dict]) -> Dict:
  """What the fit should find: the gain's log-std, and the additive floor's
  median power (dB, at the stored level; None where there is none)."""
  gain_std = noise_model.log_gain_std(*recipe.gain) if recipe.gain else 0.0
  floor = (float(np.median([d['noise_db'] for d in drawn])) + recipe.level_db
           if recipe.additive else None)
  return {'kind': ('both' if recipe.gain and recipe.additive else
                   'gain' if recipe.gain else
                   'additive' if recipe.additive else 'none'),
          'log_gain_std': gain_std, 'floor_db': floor}


def make(recipe: Recipe, train: Sequence[np.ndarray],
         unpaired: Sequence[np.ndarray], test: Sequence[np.ndarray],
         seed: int = 0) -> Tuple[Dict[str, List[np.ndarray]], Dict]:
  """({'train', 'noisy', 'test/clean', 'test/noisy': mels}, manifest) of a
  corpus from clean mels: `train` stays clean, `unpaired` become the noisy
  files without a clean pair, `test` the paired test set."""
  # A stream per split: the unpaired files do not depend on the test set.
  streams = {split: np.random.default_rng([seed, _SEED_TAG, i])
             for i, split in enumerate(('train', 'unpaired', 'test'))}
  rng = streams['train']
  floor = own_floor(train)
  white = _noise_mel('white', _WHITE_FRAMES, rng, ())
  clean = {split: [refloored(m, floor, recipe.floor_db, white, streams[split])
                   for m in mels]
           for split, mels in (('train', train), ('unpaired', unpaired),
                               ('test', test))}
  babble = noise_bank.babble_textures(clean['train'], 8, 4, 512, rng)
  noisy, drawn = {}, {}
  for split in ('unpaired', 'test'):
    pairs = [corrupted(recipe, m, i, streams[split], babble)
             for i, m in enumerate(clean[split])]
    noisy[split] = [p[0] for p in pairs]
    drawn[split] = [p[1] for p in pairs]
  files = {'train': clean['train'], 'noisy': noisy['unpaired'],
           'test/clean': clean['test'], 'test/noisy': noisy['test']}
  files = {split: [stored(recipe, m, f'{split}/{i}') for i, m in
                   enumerate(mels)] for split, mels in files.items()}
  manifest = {'recipe': dataclasses.asdict(recipe), 'seed': seed,
              'truth': truth(recipe, drawn['unpaired']),
              'noisy': drawn['unpaired'], 'test_noisy': drawn['test']}
  return files, manifest
