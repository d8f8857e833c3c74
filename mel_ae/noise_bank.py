"""Noise for denoising-mode training, in the power-mel domain.

A bank maps each noise kind to a corruption of a clean crop. Independent
signals add in power, so most kinds mix a noise "texture" into the clean
crop at a random SNR (optionally with a random cross-term, the
|S||N|cos(phase) part that averages out over a mel band): synthetic noise
(white, pink, brown, hum), babble made of other clean training utterances,
and noise estimated from the unpaired noisy files themselves (their quietest
frames). 'gain' multiplies every bin by an i.i.d. random gain (the 2020
competition's noise), and 'fitted' draws from a noise model fitted to the
unpaired noisy files (`noise_model.fit`). Nothing here ever sees a test
set's clean references: the bank is built only from the training folder and
the unpaired noisy folder.
"""
import dataclasses
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from absl import logging
import numpy as np

from mel_ae import audio
from mel_ae import noise
from mel_ae import noise_model

SYNTHETIC = ('white', 'pink', 'brown', 'hum')
KINDS = SYNTHETIC + ('babble', 'estimated', 'gain', 'fitted')
NEEDS_NOISY = ('estimated', 'fitted')  # kinds made from unpaired noisy files
# clean crop (n_mels, T), rng -> noisy crop (n_mels, T) float64
Corruption = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def check_config(n) -> List[Tuple[bool, str]]:
  """(ok, message) pairs for the noise settings (`settings.section(config,
  'noise')`)."""
  pair = lambda name: (len(n[name]) == 2 and 0 < n[name][0] <= n[name][1],
                       f'noise.{name} must be (low, high) with 0 < low <= high')
  return [
      (set(n.kinds) <= set(KINDS) and set(n.additive_kinds) <= set(KINDS),
       f'noise.kinds and noise.additive_kinds must be among {KINDS}'),
      (len(n.snr_db) == 2 and n.snr_db[0] <= n.snr_db[1],
       'noise.snr_db must be (low, high)'),
      (len(n.level_db) == 2 and n.level_db[0] <= n.level_db[1],
       'noise.level_db must be (low, high)'),
      pair('babble_freq_scale'), pair('gain_range'),
      (n.gain_distribution in noise_model.GAIN_DISTRIBUTIONS,
       f'noise.gain_distribution must be one of '
       f'{noise_model.GAIN_DISTRIBUTIONS}'),
      (n.texture_levels in ('fitted', 'own'),
       "noise.texture_levels must be 'fitted' or 'own'"),
      (n.fitted_weight > 0, 'noise.fitted_weight must be > 0'),
      (n.cross_std >= 0 and n.val_cross_std >= 0,
       'noise.cross_std and noise.val_cross_std must be >= 0'),
      (0 < n.val_noise_fraction < 1 and n.val_draws >= 1,
       'noise.val_noise_fraction must be in (0, 1) and noise.val_draws >= 1'),
      (n.model_db_window[0] < n.model_loud_db < n.model_db_window[1]
       and n.model_db_step > 0,
       'noise.model_db_window must be (low, high) with low < '
       'noise.model_loud_db < high, and noise.model_db_step > 0'),
      (n.model_tolerance >= 0, 'noise.model_tolerance must be >= 0'),
  ]


def available_kinds(noise_config, noisy_dir: str,
                    noisy: Sequence[np.ndarray]) -> Tuple[str, ...]:
  """noise.kinds, or noise.additive_kinds where every kind needs unpaired
  noisy files and there are none (from `noisy_dir`), said in one line."""
  kinds = tuple(noise_config.kinds)
  if noisy or not set(kinds) <= set(NEEDS_NOISY):
    return kinds
  logging.warning('No unpaired noisy files (data.noisy_dir=%r) for noise '
                  'kinds %s: training on the synthetic noise bank %s '
                  'instead.', noisy_dir, kinds,
                  tuple(noise_config.additive_kinds))
  return tuple(noise_config.additive_kinds)


@dataclasses.dataclass(frozen=True)
class Additive:
  """Textures (power mels of mean 1) mixed in at an SNR drawn per crop."""
  textures: Tuple[np.ndarray, ...]
  snr_db: Tuple[float, float]
  cross_std: float = 0.0

  def __call__(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return mix(clean, _texture_crop(self.textures, clean.shape[1], rng),
               rng.uniform(*self.snr_db), self.cross_std, rng)


def _texture_crop(textures: Sequence[np.ndarray], frames: int,
                  rng: np.random.Generator) -> np.ndarray:
  """`frames` frames of a random texture (looped if shorter), random start."""
  return _crop(textures[rng.integers(len(textures))], frames, rng)


def _crop(texture: np.ndarray, frames: int,
          rng: np.random.Generator) -> np.ndarray:
  """`frames` frames of `texture` (looped if shorter) from a random start."""
  if texture.shape[1] < frames:
    texture = np.tile(texture, (1, -(-frames // texture.shape[1])))
  start = rng.integers(texture.shape[1] - frames + 1)
  return texture[:, start:start + frames]


@dataclasses.dataclass(frozen=True)
class Fitted:
  """Draws from a fitted noise model (`noise_model.NoiseModel`).

  Where the model's chosen hypothesis has additive noise, the floor is
  made of the noisy files' own quiet frames (`textures`, mean 1: their
  colour and structure, hum lines, babble) at the fitted levels, rather
  than the model's stationary floor: real noise is seldom stationary. With
  `levels` (one mean power per texture), each texture at its own file's
  level instead. With `cross_std` > 0, the floor mixes in
  with a random speech x noise cross term (`add_noise`), as audio mixed
  in the waveform does. Without textures, the model's simulation.
  """
  model: noise_model.NoiseModel
  textures: Tuple[np.ndarray, ...] = ()
  levels: Tuple[float, ...] = ()
  cross_std: float = 0.0

  def __call__(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if not self.textures:
      return self.model.simulate(clean, rng)
    m = self.model
    gain = noise_model.gain_from_uniform(m.gain_distribution, m.gain_range,
                                         rng.random(clean.shape))
    # Drawn with own levels too: the same random stream either way.
    level_db = m.floor_median_db + m.file_std_db * rng.standard_normal()
    index = rng.integers(len(self.textures))
    floor = _crop(self.textures[index], clean.shape[1], rng)
    level = self.levels[index] if self.levels else 10 ** (level_db / 10)
    speech = gain * np.asarray(clean, np.float64)
    return add_noise(speech, level * floor, self.cross_std, rng)


@dataclasses.dataclass(frozen=True)
class Gain:
  """clean * g, with g i.i.d. per bin."""
  distribution: str  # one of noise_model.GAIN_DISTRIBUTIONS
  gain_range: Tuple[float, float]

  def __post_init__(self):
    low, high = self.gain_range
    if (self.distribution not in noise_model.GAIN_DISTRIBUTIONS
        or not 0 < low <= high):
      raise ValueError(
          f'noise.gain_distribution must be one of '
          f'{noise_model.GAIN_DISTRIBUTIONS} and noise.gain_range (low, high) '
          f'with 0 < low <= high; got {self.distribution!r}, {self.gain_range}')

  def __call__(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.asarray(clean, np.float64) * noise_model.gain_from_uniform(
        self.distribution, self.gain_range, rng.random(clean.shape))


@dataclasses.dataclass(frozen=True)
class NoiseBank:
  """Corruptions by kind, the fitted noise model if one was used, whether
  any corruption adds power (False: per-bin gains alone), whether any
  scales the power per bin (with added power or not), the noise to
  validate on (None: the whole bank), and the kinds' relative weights
  (empty: uniform)."""
  corruptions: Dict[str, Corruption]
  model: Optional[noise_model.NoiseModel] = None
  additive: bool = True
  scales: bool = False
  validation: Optional[Corruption] = None
  weights: Tuple[float, ...] = ()

  def corrupt(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """clean (n_mels, T) through a kind chosen by weight; float64, >= 0."""
    kinds = list(self.corruptions)
    if self.weights:
      kind = kinds[rng.choice(len(kinds), p=np.divide(self.weights,
                                                      sum(self.weights)))]
    else:  # The uniform draw as it always was: the same random stream.
      kind = kinds[rng.integers(len(kinds))]
    return self.corruptions[kind](clean, rng)

  def corrupt_validation(self, clean: np.ndarray,
                         rng: np.random.Generator) -> np.ndarray:
    """clean through the validation noise: the fitted noise, made of the
    noisy files' held-out quiet frames, where there is one; else `corrupt`."""
    if self.validation is None:
      return self.corrupt(clean, rng)
    return self.validation(clean, rng)


def _unit_mean(mel: np.ndarray) -> np.ndarray:
  mel = np.asarray(mel, np.float64)
  return mel / max(float(mel.mean()), 1e-30)


def synthetic_textures(kind: str, spec: audio.MelSpec, seconds: float,
                       rng: np.random.Generator) -> List[np.ndarray]:
  """Power mels of generated noise; hum at both mains frequencies."""
  n = int(seconds * spec.sr)
  if kind == 'hum':
    waves = [noise.hum(n, spec.sr, rng, base=b) for b in (50.0, 60.0)]
  else:
    waves = [getattr(noise, kind)(n, rng)]
  return [_unit_mean(audio.audio_to_mel(w.astype(np.float32), spec))
          for w in waves]


def babble_textures(clean: Sequence[np.ndarray], count: int, talkers: int,
                    frames: int, rng: np.random.Generator,
                    freq_scale: Tuple[float, float] = (1.0, 1.0),
                    centres_hz=None) -> List[np.ndarray]:
  """Sums of `talkers` shifted, looped clean training utterances.

  With freq_scale != (1, 1), each talker's frequencies are scaled by a
  log-uniform factor from that range (`audio.warp_frequency`): other
  voices made from the one speaker we have.
  """
  log_low, log_high = np.log(freq_scale)
  textures = []
  for _ in range(count):
    total = np.zeros((clean[0].shape[0], frames))
    for i in rng.choice(len(clean), size=talkers, replace=False):
      talker = _unit_mean(clean[i])
      if log_low != 0 or log_high != 0:
        talker = audio.warp_frequency(
            talker, np.exp(rng.uniform(log_low, log_high)), centres_hz)
      looped = np.resize(talker, (talker.shape[0], frames))
      total += np.roll(looped, rng.integers(frames), axis=1)
    textures.append(_unit_mean(total))
  return textures


def estimated_textures(noisy: Sequence[np.ndarray],
                       quiet_fraction: float) -> List[np.ndarray]:
  """The quietest frames of each unpaired noisy file: mostly noise alone."""
  return [_unit_mean(noise_model.quiet_frames(mel, quiet_fraction))
          for mel in noisy]


def split_textures(textures: Sequence[np.ndarray], fraction: float
                   ) -> Tuple[Tuple[np.ndarray, ...], Tuple[np.ndarray, ...]]:
  """(train, validation): each texture's last `fraction` of frames (at least
  one) held out, so validation noise is the data's own but never trained on."""
  cuts = [t.shape[1] - max(1, int(round(fraction * t.shape[1])))
          for t in textures]
  return (tuple(t[:, :c] if c > 0 else t for t, c in zip(textures, cuts)),
          tuple(t[:, c:] for t, c in zip(textures, cuts)))


def _textures(kind: str, noise_config, spec: audio.MelSpec,
              clean: Sequence[np.ndarray], noisy: Sequence[np.ndarray],
              rng: np.random.Generator) -> Optional[List[np.ndarray]]:
  """An additive kind's textures; None where the kind has no source here."""
  if kind in SYNTHETIC:
    return synthetic_textures(kind, spec, noise_config.seconds, rng)
  if kind == 'babble':
    return babble_textures(
        clean, noise_config.babble_textures,
        min(noise_config.babble_talkers, len(clean)),
        noise_config.babble_frames, rng, noise_config.babble_freq_scale,
        audio.band_centres_hz(spec))
  if kind == 'estimated' and noisy:
    return estimated_textures(noisy, noise_config.quiet_fraction)
  return None


def _additive(kinds: Sequence[str], noise_config, spec: audio.MelSpec,
              clean: Sequence[np.ndarray], noisy: Sequence[np.ndarray],
              rng: np.random.Generator) -> Dict[str, Corruption]:
  """Additive corruptions of the kinds that have a source here."""
  corruptions = {}
  for kind in kinds:
    textures = _textures(kind, noise_config, spec, clean, noisy, rng)
    if textures is not None:
      corruptions[kind] = Additive(tuple(textures), tuple(noise_config.snr_db),
                                   noise_config.cross_std)
  return corruptions


def build_noise_bank(
    noise_config, spec: audio.MelSpec, clean: Sequence[np.ndarray],
    noisy: Sequence[np.ndarray], seed: int,
    model: Optional[noise_model.NoiseModel] = None,
    kinds: Optional[Sequence[str]] = None) -> NoiseBank:
  """The bank of `kinds` (default noise.kinds), from training and unpaired
  noisy files.

  'estimated' needs unpaired noisy files, and so does 'fitted' unless a
  fitted `model` is given; it is fitted here otherwise (NoiseModelError if
  the files cannot be fitted) and returned as `bank.model`. Where the fit
  finds an additive floor, 'fitted' brings noise.additive_kinds along: the
  fit decides between the families, the prior fills in environmental noise
  that a few noisy files cannot show in full.
  """
  rng = np.random.default_rng([seed, 0xB0A7])
  corruptions, gains = {}, set()  # gains: kinds that only scale the power
  scales = False  # whether any kind scales the power per bin
  validation = None
  for kind in noise_config.kinds if kinds is None else kinds:
    if kind == 'gain':
      corruptions[kind] = Gain(noise_config.gain_distribution,
                               tuple(noise_config.gain_range))
      gains.add(kind)
      scales = True
    elif kind == 'fitted':
      if model is None and noisy:
        model = noise_model.fit(clean, noisy, noise_config, spec, seed)
      if model is not None:
        additive = bool(noisy) and model.additive
        quiet = [noise_model.quiet_frames(mel, noise_config.quiet_fraction)
                 for mel in (noisy if additive else ())]
        textures, held_out = split_textures([_unit_mean(q) for q in quiet],
                                            noise_config.val_noise_fraction)
        levels = tuple(float(q.mean()) for q in quiet
                       if noise_config.texture_levels == 'own')
        corruptions[kind] = Fitted(model, textures, levels,
                                   noise_config.cross_std)
        scales = scales or model.scales
        # The held-out quiet frames at the levels training draws them at.
        validation = Fitted(model, held_out, levels,
                            cross_std=noise_config.val_cross_std)
        if additive:  # Environmental noise: the synthetic prior beside it.
          corruptions.update(_additive(noise_config.additive_kinds,
                                       noise_config, spec, clean, noisy, rng))
        else:
          gains.add(kind)
    else:
      corruptions.update(_additive((kind,), noise_config, spec, clean, noisy,
                                   rng))
  if not corruptions:
    raise ValueError(f'no noise source available for kinds {noise_config.kinds}')
  weights = ()  # One kind alone (a gain): no draw, as before.
  if ('fitted' in corruptions and len(corruptions) > 1
      and noise_config.fitted_weight != 1):
    weights = tuple(noise_config.fitted_weight if kind == 'fitted' else 1.0
                    for kind in corruptions)
  return NoiseBank(corruptions, model, additive=not set(corruptions) <= gains,
                   scales=scales, validation=validation, weights=weights)


def mix(clean: np.ndarray, noise_mel: np.ndarray, snr_db: float,
        cross_std: float = 0.0, rng=None) -> np.ndarray:
  """clean + g * noise, g set so 10 log10(mean clean / mean g noise) = snr_db.

  With cross_std > 0, adds 2 sqrt(clean g noise) * N(0, cross_std): the
  phase-dependent cross-term of |S + N|^2, averaged over a mel band.
  """
  clean = np.asarray(clean, np.float64)
  gain = clean.mean() / (max(float(noise_mel.mean()), 1e-30)
                         * 10.0 ** (snr_db / 10.0))
  return add_noise(clean, gain * noise_mel, cross_std, rng)


def add_noise(clean: np.ndarray, noise_mel: np.ndarray, cross_std: float,
              rng: np.random.Generator) -> np.ndarray:
  """clean + noise_mel (float64 powers), with cross_std > 0 plus
  2 sqrt(clean noise) * N(0, cross_std); floored at 0. No draw without."""
  noisy = clean + noise_mel
  if cross_std > 0:
    noisy += (2.0 * np.sqrt(clean * noise_mel)
              * rng.normal(0.0, cross_std, clean.shape))
  return np.maximum(noisy, 0.0)
