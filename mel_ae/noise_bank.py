"""Noise for denoising-mode training, in the power-mel domain.

Independent signals add in power, so a noisy training input is the clean
crop plus a scaled noise mel (optionally with a random cross-term, the
|S||N|cos(phase) part that averages out over a mel band). The bank holds
noise "textures": power mels of synthetic noise (white, pink, brown, hum),
babble made of other clean training utterances, and noise estimated from
the unpaired noisy files themselves (their quietest frames). Nothing here
ever sees a test set's clean references: the bank is built only from the
training folder and the unpaired noisy folder.
"""
import dataclasses
from typing import Dict, List, Sequence, Tuple

import numpy as np

from mel_ae import audio
from mel_ae import noise

KINDS = ('white', 'pink', 'brown', 'hum', 'babble', 'estimated')


@dataclasses.dataclass(frozen=True)
class NoiseBank:
  """Noise textures by kind; each texture is a power mel of mean 1."""
  textures: Dict[str, Tuple[np.ndarray, ...]]

  def sample(self, rng: np.random.Generator, frames: int) -> np.ndarray:
    """A (n_mels, frames) noise crop from a kind chosen uniformly."""
    kind = list(self.textures)[rng.integers(len(self.textures))]
    options = self.textures[kind]
    texture = options[rng.integers(len(options))]
    if texture.shape[1] < frames:
      texture = np.tile(texture, (1, -(-frames // texture.shape[1])))
    start = rng.integers(texture.shape[1] - frames + 1)
    return texture[:, start:start + frames]


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
  textures = []
  for mel in noisy:
    n = max(1, int(round(quiet_fraction * mel.shape[1])))
    quiet = np.sort(np.argsort(mel.sum(axis=0), kind='stable')[:n])
    textures.append(_unit_mean(mel[:, quiet]))
  return textures


def build_noise_bank(noise_config, spec: audio.MelSpec,
                     clean: Sequence[np.ndarray], noisy: Sequence[np.ndarray],
                     seed: int) -> NoiseBank:
  """The bank the config asks for; 'estimated' needs unpaired noisy files."""
  rng = np.random.default_rng([seed, 0xB0A7])
  textures = {}
  for kind in noise_config.kinds:
    if kind in ('white', 'pink', 'brown', 'hum'):
      textures[kind] = synthetic_textures(kind, spec, noise_config.seconds, rng)
    elif kind == 'babble':
      textures[kind] = babble_textures(
          clean, noise_config.babble_textures, min(noise_config.babble_talkers,
                                                   len(clean)),
          noise_config.babble_frames, rng, noise_config.babble_freq_scale,
          audio.band_centres_hz(spec))
    elif kind == 'estimated' and noisy:
      textures[kind] = estimated_textures(noisy, noise_config.quiet_fraction)
  if not textures:
    raise ValueError(f'no noise source available for kinds {noise_config.kinds}')
  return NoiseBank({k: tuple(v) for k, v in textures.items()})


def mix(clean: np.ndarray, noise_mel: np.ndarray, snr_db: float,
        cross_std: float = 0.0, rng=None) -> np.ndarray:
  """clean + g * noise, g set so 10 log10(mean clean / mean g noise) = snr_db.

  With cross_std > 0, adds 2 sqrt(clean g noise) * N(0, cross_std): the
  phase-dependent cross-term of |S + N|^2, averaged over a mel band.
  """
  clean = np.asarray(clean, np.float64)
  gain = clean.mean() / (max(float(noise_mel.mean()), 1e-30)
                         * 10.0 ** (snr_db / 10.0))
  noisy = clean + gain * noise_mel
  if cross_std > 0:
    noisy += (2.0 * np.sqrt(clean * gain * noise_mel)
              * rng.normal(0.0, cross_std, clean.shape))
  return np.maximum(noisy, 0.0)
