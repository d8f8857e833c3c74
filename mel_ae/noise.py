"""Audio-domain noise, used to build the synthetic corpus.

Each generator returns a float64 signal of unit RMS (zero-mean, except the
sparse bursts and clicks whose silences stay exactly zero), so that only
`mix_at_snr` sets the level. All randomness comes from the `np.random.Generator`
passed in, which keeps the corpus reproducible from one seed.
"""
from typing import Sequence

import numpy as np


def _unit_rms(x: np.ndarray, centre: bool = True) -> np.ndarray:
  """Scales to RMS 1; centre=False keeps the exact zeros of sparse noise."""
  if centre:
    x = x - x.mean()
  rms = np.sqrt(np.mean(x ** 2))
  return x / rms if rms > 0 else x


def power(x: np.ndarray) -> float:
  """Mean power over the whole signal."""
  return float(np.mean(np.asarray(x, np.float64) ** 2))


def white(n: int, rng: np.random.Generator) -> np.ndarray:
  return _unit_rms(rng.standard_normal(n))


def coloured(n: int, rng: np.random.Generator, alpha: float) -> np.ndarray:
  """Noise with power spectral density ~ 1 / f**alpha (shaped white noise).

  alpha 1 is pink, 2 brown, -1 blue; the DC bin is dropped.
  """
  spectrum = np.fft.rfft(rng.standard_normal(n))
  freqs = np.fft.rfftfreq(n)
  gain = np.zeros_like(freqs)
  gain[1:] = freqs[1:] ** (-alpha / 2.0)
  return _unit_rms(np.fft.irfft(spectrum * gain, n=n))


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
  return coloured(n, rng, 1.0)


def brown(n: int, rng: np.random.Generator) -> np.ndarray:
  return coloured(n, rng, 2.0)


def blue(n: int, rng: np.random.Generator) -> np.ndarray:
  return coloured(n, rng, -1.0)


def band_limited(n: int, sr: int, rng: np.random.Generator, low_hz: float,
                 high_hz: float) -> np.ndarray:
  """White noise kept only between low_hz and high_hz (brick-wall in FFT)."""
  spectrum = np.fft.rfft(rng.standard_normal(n))
  freqs = np.fft.rfftfreq(n, 1.0 / sr)
  spectrum[(freqs < low_hz) | (freqs > high_hz)] = 0
  return _unit_rms(np.fft.irfft(spectrum, n=n))


def tones(n: int, sr: int, rng: np.random.Generator,
          freqs_hz: Sequence[float]) -> np.ndarray:
  """Equal-amplitude sinusoids at freqs_hz with random phases."""
  t = np.arange(n) / sr
  phases = rng.uniform(0, 2 * np.pi, len(freqs_hz))
  waves = np.sin(2 * np.pi * np.outer(freqs_hz, t) + phases[:, None])
  return _unit_rms(waves.sum(axis=0))


def hum(n: int, sr: int, rng: np.random.Generator, base: float = 50.0,
        harmonics: int = 8) -> np.ndarray:
  """Mains hum: `base` Hz and its harmonics, amplitude falling as 1/k."""
  t = np.arange(n) / sr
  k = np.arange(1, harmonics + 1)
  k = k[k * base < sr / 2]  # Harmonics above Nyquist would alias.
  phases = rng.uniform(0, 2 * np.pi, len(k))
  waves = np.sin(2 * np.pi * base * np.outer(k, t) + phases[:, None])
  return _unit_rms((waves / k[:, None]).sum(axis=0))


def bursts(n: int, sr: int, rng: np.random.Generator, rate_hz: float = 2.0,
           burst_s: float = 0.05) -> np.ndarray:
  """Intermittent white-noise bursts (Hann-shaped) at random times.

  Most of the signal is silent, so at a given overall SNR the bursts are far
  louder than the speech where they occur.
  """
  envelope = np.zeros(n)
  width = max(int(burst_s * sr), 2)
  count = max(rng.poisson(rate_hz * n / sr), 1)
  for start in rng.integers(0, max(n - width, 1), count):
    envelope[start:start + width] += np.hanning(width)[:n - start]
  return _unit_rms(envelope * rng.standard_normal(n), centre=False)


def clicks(n: int, rng: np.random.Generator, count: int = 20) -> np.ndarray:
  """Sparse impulses of random sign and size (crackle, bad cables)."""
  x = np.zeros(n)
  x[rng.integers(0, n, count)] = rng.uniform(0.3, 1.0, count) * rng.choice(
      [-1.0, 1.0], count)
  return _unit_rms(x, centre=False)


def babble(waves: Sequence[np.ndarray], n: int, rng: np.random.Generator,
           talkers: int = 4) -> np.ndarray:
  """Sum of `talkers` utterances, each looped and randomly shifted to n."""
  picks = rng.choice(len(waves), size=talkers, replace=talkers > len(waves))
  total = np.zeros(n)
  for i in picks:
    looped = np.resize(np.asarray(waves[i], np.float64), n)
    total += _unit_rms(np.roll(looped, rng.integers(0, n)))
  return _unit_rms(total)


def scale_to_snr(clean: np.ndarray, noise: np.ndarray,
                 snr_db: float) -> np.ndarray:
  """g * noise with 10 log10(P_clean / P_(g noise)) == snr_db.

  Powers are means over the whole signal, so the SNR is global, not per frame.
  """
  clean = np.asarray(clean, np.float64)
  noise = np.asarray(noise, np.float64)
  if clean.shape != noise.shape:
    raise ValueError(f'clean {clean.shape} and noise {noise.shape} differ')
  if power(noise) == 0:
    raise ValueError('noise is silent: no gain reaches a finite SNR')
  return np.sqrt(power(clean) / (power(noise) * 10.0 ** (snr_db / 10.0))) * noise


def mix_at_snr(clean: np.ndarray, noise: np.ndarray,
               snr_db: float) -> np.ndarray:
  """clean + the noise scaled to snr_db (see `scale_to_snr`)."""
  return np.asarray(clean, np.float64) + scale_to_snr(clean, noise, snr_db)
