"""Audio in, audio out, with the recording's own phase.

Any mel denoiser (a trained model, a classical method) says how much of each
band's power to keep in each frame: the mel gain, denoised / noisy. Spread
over the STFT bins each band is made of, it scales the noisy STFT, and the
inverse STFT is the denoised recording: the phase stays the recording's, so
what one hears is the denoiser, not a resynthesis (Griffin-Lim is left for
mels that come without audio).

The mel is the model's (spec.sr, 22050 Hz by default): a recording at another
rate is resampled for it, but the gain is applied to an STFT at the
recording's own rate (`audio.apply_mel_gain`), so the result has the input's
rate, length and channels, and bins above the mel's top band take its gain.
"""
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from mel_ae import audio

MelDenoiser = Callable[[Sequence[np.ndarray]], List[np.ndarray]]

# The gain's ceiling: 1, never amplifying; none scored the same for the
# model on validation recordings (experiments/README.md, audio).
MAX_GAIN = 1.0


def min_gain(max_attenuation_db: Optional[float], power: float = 2.0
             ) -> float:
  """The least gain on a mel of |STFT| ** `power` that turns no bin down by
  more than `max_attenuation_db` (None: 0, no bound)."""
  if max_attenuation_db is None:
    return 0.0
  if not max_attenuation_db >= 0:
    raise ValueError(f'max_attenuation_db must be >= 0, got '
                     f'{max_attenuation_db}')
  return 10.0 ** (-max_attenuation_db * power / 20.0)


def limit_attenuation(denoised: np.ndarray, noisy: np.ndarray,
                      max_attenuation_db: Optional[float],
                      power: float = 2.0) -> np.ndarray:
  """A denoised mel turned down at most `max_attenuation_db` below the noisy
  one in any bin (None: unbounded)."""
  if max_attenuation_db is None:
    return denoised
  floor = np.asarray(noisy, np.float64) * min_gain(max_attenuation_db, power)
  return np.maximum(denoised, floor).astype(np.asarray(denoised).dtype)


def mel_gain(denoised: np.ndarray, noisy: np.ndarray,
             max_gain: Optional[float] = MAX_GAIN) -> np.ndarray:
  """Per band and frame, denoised / noisy power (1 where both are silent),
  at most `max_gain` (None: no ceiling)."""
  noisy = np.asarray(noisy, np.float64)
  gain = np.divide(denoised, noisy, out=np.ones_like(noisy),
                   where=noisy > 0)
  return gain if max_gain is None else np.minimum(gain, max_gain)


def denoise_wave(wave: np.ndarray, sr: int, denoise_mels: MelDenoiser,
                 spec: audio.MelSpec,
                 max_attenuation_db: Optional[float] = None,
                 max_gain: Optional[float] = MAX_GAIN
                 ) -> Tuple[np.ndarray, List[np.ndarray], List[np.ndarray]]:
  """A recording (n,) or (n, channels) at `sr`, denoised channel by channel.

  Returns the denoised recording (same shape, float32), and the noisy and
  denoised mels of its channels (by `spec`, at spec.sr).
  """
  wave = np.asarray(wave, np.float32)
  if wave.ndim not in (1, 2) or wave.size == 0:
    raise ValueError(f'expected a waveform (n,) or (n, channels), got shape '
                     f'{wave.shape}')
  channels = wave.T if wave.ndim == 2 else wave[None]
  noisy = [audio.audio_to_mel(audio.resample(c, sr, spec.sr), spec)
           for c in channels]
  denoised = [limit_attenuation(d, n, max_attenuation_db, spec.power)
              for d, n in zip(denoise_mels(noisy), noisy)]
  floor = min_gain(max_attenuation_db, spec.power)
  out = [audio.apply_mel_gain(c, sr, mel_gain(d, n, max_gain), spec, floor)
         for c, n, d in zip(channels, noisy, denoised)]
  result = np.stack(out, axis=1) if wave.ndim == 2 else out[0]
  return result, noisy, denoised
