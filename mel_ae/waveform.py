"""Audio in, audio out, with the recording's own phase.

Any mel denoiser (a trained model, a classical method) says how much of each
band's power to keep in each frame: the mel gain, denoised / noisy. Spread
over the STFT bins each band is made of, it scales the noisy STFT, and the
inverse STFT is the denoised recording: the phase stays the recording's, so
what one hears is the denoiser, not a resynthesis (Griffin-Lim is left for
mels that come without audio).

The mel is the model's (spec.sr, 22050 Hz by default): a recording at another
rate is resampled to it, and what the gain removes there is resampled back and
subtracted from the recording, so the result has the input's rate, length and
channels, and content above spec.sr / 2 passes untouched.
"""
from typing import Callable, List, Optional, Sequence

import numpy as np

from mel_ae import audio

MelDenoiser = Callable[[Sequence[np.ndarray]], List[np.ndarray]]

# How a band gain reaches the STFT bins, and its ceiling: chosen on
# validation audio made from held-out training sentences
# (experiments/audio_gain/README.md).
BIN_GAIN = 'transpose'
MAX_GAIN = 1.0


def min_gain(max_attenuation_db: Optional[float]) -> float:
  """The least power gain that `max_attenuation_db` allows (0: no bound)."""
  if max_attenuation_db is None:
    return 0.0
  if not max_attenuation_db >= 0:
    raise ValueError(f'max_attenuation_db must be >= 0, got '
                     f'{max_attenuation_db}')
  return 10.0 ** (-max_attenuation_db / 10.0)


def limit_attenuation(denoised: np.ndarray, noisy: np.ndarray,
                      max_attenuation_db: Optional[float]) -> np.ndarray:
  """A denoised power mel turned down at most `max_attenuation_db` below
  the noisy one in any bin (None: unbounded)."""
  if max_attenuation_db is None:
    return denoised
  floor = np.asarray(noisy, np.float64) * min_gain(max_attenuation_db)
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
                 bin_gain: str = BIN_GAIN,
                 max_gain: Optional[float] = MAX_GAIN):
  """A recording (n,) or (n, channels) at `sr`, denoised channel by channel.

  Returns (the denoised recording, same shape, float32; the denoised power
  mels of its channels at spec.sr).
  """
  wave = np.asarray(wave, np.float32)
  if wave.ndim not in (1, 2) or wave.size == 0:
    raise ValueError(f'expected a waveform (n,) or (n, channels), got shape '
                     f'{wave.shape}')
  floor = min_gain(max_attenuation_db)
  channels = wave.T if wave.ndim == 2 else wave[None]
  at_spec = [audio.resample(c, sr, spec.sr) for c in channels]
  noisy = [audio.audio_to_mel(c, spec) for c in at_spec]
  denoised = [limit_attenuation(d, n, max_attenuation_db)
              for d, n in zip(denoise_mels(noisy), noisy)]
  out = []
  for original, x, n, d in zip(channels, at_spec, noisy, denoised):
    y = audio.apply_mel_gain(x, mel_gain(d, n, max_gain), spec, bin_gain,
                             floor)
    if sr != spec.sr:
      removed = audio.resample(x - y, spec.sr, sr)
      y = original - _fit_length(removed, len(original))
    out.append(y)
  result = np.stack(out, axis=1) if wave.ndim == 2 else out[0]
  return result.astype(np.float32), denoised


def _fit_length(x: np.ndarray, n: int) -> np.ndarray:
  """`x` cut or zero-padded to `n` samples (resampling rounds lengths)."""
  return np.pad(x[:n], (0, max(0, n - len(x))))
