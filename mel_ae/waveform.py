"""Audio in, audio out, with the recording's own phase, in bounded memory.

Any mel denoiser (a trained model, a classical method) says how much of each
band's power to keep in each frame: the mel gain, denoised / noisy. Spread
over the STFT bins each band is made of, it scales the noisy STFT, and the
inverse STFT is the denoised recording: the phase stays the recording's, so
what one hears is the denoiser, not a resynthesis (Griffin-Lim is left for
mels that come without audio).

The mel is the model's (spec.sr, 22050 Hz by default): a recording at another
rate is resampled for it, but the gain is applied to an STFT at the
recording's own rate (`audio.stft_at`), so the result has the input's rate,
length and channels, and bins above the mel's top band take its gain.

A recording is read twice, `block` frames at a time (a `Reader`: from a file
or an array): once for its mels, once to apply their gains, the output
handed on as it is finished. Only the mels (a quarter of the samples at
22050 Hz, per channel) are held whole; every block gives exactly the samples
one pass gives (resampling and framing see the context they need).
"""
import math
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from mel_ae import audio

MelDenoiser = Callable[[Sequence[np.ndarray]], List[np.ndarray]]
# (start, stop) -> samples start..stop-1, (stop - start, channels) float32.
Reader = Callable[[int, int], np.ndarray]

# The gain's ceiling: 1, never amplifying; none scored the same for the
# model on validation recordings (experiments/audio/README.md).
MAX_GAIN = 1.0
BLOCK_FRAMES = 2048  # STFT frames per block: about 47 s at 22050 Hz.


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


def _padded(read: Reader, n: int, lo: int, hi: int, pad_mode: str
            ) -> np.ndarray:
  """Samples lo..hi-1 of a recording of n samples extended past its ends as
  np.pad's `pad_mode` ('constant': zeros; 'reflect': mirrored)."""
  if pad_mode == 'reflect' and (-lo >= n or hi - n >= n):
    pad = max(-lo, hi - n, 0)  # Shorter than the pad: np.pad's repeats.
    return np.pad(read(0, n), ((pad, pad), (0, 0)), 'reflect')[
        lo + pad:hi + pad]
  index = np.arange(lo, hi)
  if pad_mode == 'reflect':
    index = np.abs(index)
    index = np.where(index > n - 1, 2 * (n - 1) - index, index)
  inside = (index >= 0) & (index < n)  # Never empty: blocks overlap 0..n.
  first, last = int(index[inside].min()), int(index[inside].max()) + 1
  core = read(first, last)
  out = np.zeros((hi - lo, core.shape[1]), np.float32)
  out[inside] = core[index[inside] - first]
  return out


def resampled(read: Reader, n: int, sr: int, to_sr: int) -> Tuple[Reader,
                                                                   int]:
  """A reader of the recording at `to_sr`, and its length: the samples
  `audio.resample` gives for the whole, block by block.

  Each block is resampled from a span starting on the polyphase grid (a
  multiple of the decimation) with the filter's reach on both sides.
  """
  if sr == to_sr:
    return read, n
  g = math.gcd(sr, to_sr)
  up, down = to_sr // g, sr // g
  # resample_poly's filter reaches 10 * max(up, down) taps at the up rate.
  reach = 10 * max(up, down) // up + 2

  def read_out(start: int, stop: int) -> np.ndarray:
    first = max(0, (start * down // up - reach) // down * down)
    last = min(n, -(-stop * down // up) + reach)
    span = read(first, last)
    out = np.stack([audio.resample(c, sr, to_sr) for c in span.T], axis=1)
    offset = first * up // down
    return out[start - offset:stop - offset]

  return read_out, -(-n * up // down)


def noisy_mels(read: Reader, n: int, sr: int, spec: audio.MelSpec,
               block: int = BLOCK_FRAMES) -> List[np.ndarray]:
  """The power mels by `spec` of each channel (resampled to spec.sr), equal
  to `audio.audio_to_mel` of the whole, made `block` frames at a time."""
  read, n = resampled(read, n, sr, spec.sr)
  hop, half = spec.hop_length, spec.n_fft // 2
  frames = 1 + n // hop
  mels = None
  for start in range(0, frames, block):
    stop = min(frames, start + block)
    span = _padded(read, n, start * hop - half, (stop - 1) * hop + half,
                   spec.pad_mode)
    if not np.all(np.isfinite(span)):
      raise ValueError('holds NaN or infinite samples')
    if mels is None:
      mels = [np.empty((spec.n_mels, frames), np.float32) for _ in span.T]
    for mel, channel in zip(mels, span.T):
      view = np.lib.stride_tricks.sliding_window_view(channel, spec.n_fft)
      mel[:, start:stop] = audio.mel_of_frames(view[::hop], spec)
  return mels


def apply_gains(read: Reader, n: int, sr: int, gains: Sequence[np.ndarray],
                spec: audio.MelSpec, min_gain_: float = 0.0,
                block: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
  """The recording with each STFT bin's power scaled by its channel's band
  gains (n_mels, T of its mel by `spec`), never below `min_gain_`; phase
  kept. Yields (k, channels) float32 blocks in order, n samples in all.

  The STFT at the recording's rate (`audio.stft_at`) is made and inverted
  `block` frames at a time; samples no later frame reaches are handed on,
  the rest carried. A gain of 1 gives the recording back.
  """
  import scipy.fft  # pylint: disable=g-import-not-at-top
  native = audio.stft_at(spec, sr)
  hop, size, half = native.hop_length, native.n_fft, native.n_fft // 2
  window = audio.stft_window(native).astype(np.float32)
  spread = audio.bin_gain_matrix(spec, sr)
  frames = 1 + n // hop
  out = np.zeros((0, len(gains)))
  norm = np.zeros(0)
  base = 0  # Padded-signal index of out[0]: the next sample to hand on.
  for start in range(0, frames, block):
    stop = min(frames, start + block)
    span = _padded(read, n, start * hop - half, (stop - 1) * hop + half,
                   native.pad_mode)
    reach = start * hop + size + hop * (stop - start - 1) - base
    out = np.concatenate([out, np.zeros((reach - len(out), len(gains)))])
    norm = np.concatenate([norm, np.zeros(reach - len(norm))])
    at = slice(start * hop - base, reach)
    index = np.arange(start, stop)
    for c, (gain, channel) in enumerate(zip(gains, span.T)):
      band = audio.gain_at_frames(np.asarray(gain, np.float32), spec, native,
                                  index)
      bins = np.maximum(band.T @ spread.T, min_gain_) ** (1 / spec.power)
      view = np.lib.stride_tricks.sliding_window_view(channel, size)[::hop]
      stft = scipy.fft.rfft(view * window, axis=1)
      pieces = scipy.fft.irfft(stft * bins, size, axis=1) * window
      out[at, c] += audio.overlap_add(pieces, hop)
    norm[at] += audio.overlap_add(
        np.broadcast_to(window ** 2, (stop - start, size)), hop)
    done = (stop * hop if stop < frames else len(out) + base) - base
    yield from _finished(out[:done], norm[:done], base, half, n)
    out, norm, base = out[done:], norm[done:], base + done


def _finished(out: np.ndarray, norm: np.ndarray, base: int, half: int,
              n: int) -> Iterator[np.ndarray]:
  """The samples of the original recording among padded positions base..,
  normalised by the windows' overlap (float32)."""
  first, last = max(base, half), min(base + len(out), half + n)
  if last > first:
    piece = out[first - base:last - base]
    weight = norm[first - base:last - base]
    nonzero = weight > np.finfo(np.float32).tiny
    piece[nonzero] /= weight[nonzero, None]
    yield piece.astype(np.float32)


def denoise_stream(read: Reader, n: int, sr: int, denoise_mels: MelDenoiser,
                   spec: audio.MelSpec,
                   max_attenuation_db: Optional[float] = None,
                   max_gain: Optional[float] = MAX_GAIN,
                   block: int = BLOCK_FRAMES):
  """A recording of n samples at `sr`, read by `read`, denoised channel by
  channel.

  Returns (an iterator of its denoised (k, channels) float32 blocks, the
  noisy and the denoised mels of its channels by `spec`). The mels are made
  at once; the blocks as they are taken.
  """
  noisy = noisy_mels(read, n, sr, spec, block)
  denoised = [limit_attenuation(d, m, max_attenuation_db, spec.power)
              for d, m in zip(denoise_mels(noisy), noisy)]
  gains = [mel_gain(d, m, max_gain) for d, m in zip(denoised, noisy)]
  blocks = apply_gains(read, n, sr, gains, spec,
                       min_gain(max_attenuation_db, spec.power), block)
  return blocks, noisy, denoised


def denoise_wave(wave: np.ndarray, sr: int, denoise_mels: MelDenoiser,
                 spec: audio.MelSpec,
                 max_attenuation_db: Optional[float] = None,
                 max_gain: Optional[float] = MAX_GAIN,
                 block: int = BLOCK_FRAMES
                 ) -> Tuple[np.ndarray, List[np.ndarray], List[np.ndarray]]:
  """A recording (n,) or (n, channels) at `sr` in memory, denoised channel
  by channel: (the same shape, float32; its noisy and denoised mels)."""
  wave = np.asarray(wave, np.float32)
  if wave.ndim not in (1, 2) or wave.size == 0:
    raise ValueError(f'expected a waveform (n,) or (n, channels), got shape '
                     f'{wave.shape}')
  columns = wave.reshape(len(wave), -1)
  blocks, noisy, denoised = denoise_stream(
      lambda start, stop: columns[start:stop], len(wave), sr, denoise_mels,
      spec, max_attenuation_db, max_gain, block)
  out = np.concatenate(list(blocks))
  return (out[:, 0] if wave.ndim == 1 else out), noisy, denoised
