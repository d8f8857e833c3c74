"""Audio <-> power mel, numerically identical to librosa.

The project's data are librosa power mels, so any audio that enters (a wav to
denoise, the synthetic corpus) must go through the same filterbank and STFT.
This module re-implements just that path in numpy/scipy so that librosa stays
a test-only dependency, and adds a Griffin-Lim inverse for listening. The
defaults are librosa's; `pad_mode`, `htk` and `norm` reproduce the other
settings of `librosa.feature.melspectrogram` that mel files are made with
(librosa <= 0.9 padded the signal's ends by reflection, not zeros).
"""
import dataclasses
import functools
import math
import os
from typing import List, Optional, Tuple

import numpy as np
import scipy.sparse
import soundfile

from mel_ae import mel_io

_FRAME_BLOCK = 2048  # STFT frames per block: bounds memory for long audio.
_NNLS_ITERS = 200
PAD_MODES = ('constant', 'reflect')
NORMS = ('slaney', None)


def _norm(value: Optional[str]) -> Optional[str]:
  """Config spelling of MelSpec.norm: 'none' (or '') is None, as a
  ConfigDict field cannot be overridden to None from the command line."""
  return None if value in (None, '', 'none', 'None') else str(value)


@dataclasses.dataclass(frozen=True)
class MelSpec:
  """Parameters of a power mel; defaults are librosa's (power 2, 128 bands)."""
  sr: int = 22050
  n_fft: int = 2048
  hop_length: int = 512
  n_mels: int = 128
  fmin: float = 0.0
  fmax: float = -1.0    # <= 0 means sr / 2, as librosa's fmax=None.
  power: float = 2.0
  griffin_lim_iters: int = 32
  # How the signal's ends are padded for centred frames: 'constant' (zeros,
  # librosa >= 0.10) or 'reflect' (librosa <= 0.9).
  pad_mode: str = 'constant'
  htk: bool = False  # HTK mel scale instead of Slaney's
  norm: Optional[str] = 'slaney'  # triangles of equal area; None: peak 1

  def __post_init__(self):
    for ok, message in check_config(dataclasses.asdict(self)):
      if not ok:
        raise ValueError(message)

  @property
  def fmax_hz(self) -> float:
    return float(self.fmax) if self.fmax > 0 else self.sr / 2.0

  @classmethod
  def from_config(cls, cfg) -> 'MelSpec':
    """Builds a spec from a ConfigDict or dict (config.audio): a field it
    leaves out takes the default above; unknown keys are ignored."""
    cast = lambda f: _norm if f.name == 'norm' else f.type
    return cls(**{f.name: cast(f)(cfg[f.name]) for f in dataclasses.fields(cls)
                  if f.name in cfg})


def check_config(audio_config) -> List[Tuple[bool, str]]:
  """(ok, message) for `config.audio` (a ConfigDict or dict); a field it
  leaves out is MelSpec's default."""
  spec = {f.name: f.default for f in dataclasses.fields(MelSpec)}
  spec.update(audio_config)
  return [
      (spec['pad_mode'] in PAD_MODES,
       f'audio.pad_mode must be one of {PAD_MODES}'),
      (_norm(spec['norm']) in NORMS,
       "audio.norm must be 'slaney' or 'none'"),
  ]


def _hz_to_mel(hz: np.ndarray, htk: bool = False) -> np.ndarray:
  """Slaney mel scale (linear below 1 kHz, logarithmic above) or HTK's."""
  hz = np.asarray(hz, np.float64)
  if htk:
    return 2595.0 * np.log10(1.0 + hz / 700.0)
  mel = hz / (200.0 / 3)
  log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27)
  return np.where(hz >= 1000.0, log_part, mel)


def _mel_to_hz(mel: np.ndarray, htk: bool = False) -> np.ndarray:
  mel = np.asarray(mel, np.float64)
  if htk:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
  log_part = 1000.0 * np.exp((np.log(6.4) / 27) * (mel - 15.0))
  return np.where(mel >= 15.0, log_part, mel * (200.0 / 3))


def _band_edges_hz(spec: MelSpec) -> np.ndarray:
  """n_mels + 2 frequencies, equally spaced in mel: the triangles' corners."""
  return _mel_to_hz(np.linspace(_hz_to_mel(spec.fmin, spec.htk),
                                _hz_to_mel(spec.fmax_hz, spec.htk),
                                spec.n_mels + 2), spec.htk)


def band_centres_hz(spec: MelSpec) -> np.ndarray:
  """(n_mels,) centre frequency of each mel band, ascending."""
  return _band_edges_hz(spec)[1:-1]


def warp_frequency(mel: np.ndarray, factor: float,
                   centres_hz: np.ndarray) -> np.ndarray:
  """The mel of the same sound with every frequency scaled by `factor`.

  Pitch and formants move together, as from a higher or lower voice: band m
  takes the power found at centres_hz[m] / factor, linearly interpolated
  between band centres (the edge bands repeat beyond the range).
  """
  source = np.interp(centres_hz / factor, centres_hz,
                     np.arange(len(centres_hz), dtype=np.float64))
  low = np.minimum(np.floor(source).astype(np.int64), len(centres_hz) - 2)
  frac = (source - low)[:, None].astype(mel.dtype)
  return (1 - frac) * mel[low] + frac * mel[low + 1]


@functools.lru_cache(maxsize=8)
def mel_filterbank(spec: MelSpec) -> np.ndarray:
  """(n_mels, 1 + n_fft // 2) float32 weights = librosa.filters.mel.

  Triangles on the Slaney (or, with spec.htk, HTK) mel scale, of equal area
  with spec.norm='slaney', else of peak 1. The result is cached and
  read-only.
  """
  fft_freqs = np.fft.rfftfreq(spec.n_fft, 1.0 / spec.sr)
  edges = _band_edges_hz(spec)
  widths = np.diff(edges)
  ramps = edges[:, None] - fft_freqs[None, :]
  lower = -ramps[:-2] / widths[:-1, None]
  upper = ramps[2:] / widths[1:, None]
  weights = np.maximum(0.0, np.minimum(lower, upper)).astype(np.float32)
  if spec.norm == 'slaney':
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
  weights.setflags(write=False)
  return weights


def stft_window(spec: MelSpec) -> np.ndarray:
  # scipy.signal costs ~1 s to import: only the audio paths pay for it.
  import scipy.signal  # pylint: disable=g-import-not-at-top
  return scipy.signal.get_window('hann', spec.n_fft, fftbins=True)


def _frames(wave: np.ndarray, spec: MelSpec) -> np.ndarray:
  """(T, n_fft) view of the padded signal (librosa center=True)."""
  pad = spec.n_fft // 2
  padded = np.pad(np.asarray(wave, np.float32), (pad, pad), spec.pad_mode)
  view = np.lib.stride_tricks.sliding_window_view(padded, spec.n_fft)
  return view[::spec.hop_length]


def _stft(wave: np.ndarray, spec: MelSpec) -> np.ndarray:
  """Complex STFT (1 + n_fft // 2, T), as librosa.stft (hann window,
  centred frames, the ends padded as spec.pad_mode says)."""
  return np.fft.rfft(_frames(wave, spec) * stft_window(spec), axis=1).T


def audio_to_mel(wave: np.ndarray, spec: MelSpec) -> np.ndarray:
  """Power mel (n_mels, 1 + len // hop) float32 = librosa melspectrogram."""
  return mel_of_frames(_frames(wave, spec), spec)


def mel_of_frames(frames: np.ndarray, spec: MelSpec) -> np.ndarray:
  """Power mel (n_mels, T) float32 of (T, n_fft) frames of a signal."""
  window = stft_window(spec)
  basis = mel_filterbank(spec).astype(np.float64)
  mel = np.empty((spec.n_mels, len(frames)), np.float32)
  for start in range(0, len(frames), _FRAME_BLOCK):
    block = np.fft.rfft(frames[start:start + _FRAME_BLOCK] * window, axis=1)
    power = block.real ** 2 + block.imag ** 2  # |X|^2 without a sqrt.
    if spec.power != 2:
      power **= spec.power / 2
    mel[:, start:start + len(block)] = basis @ power.T
  return mel


def overlap_add(frames: np.ndarray, hop: int) -> np.ndarray:
  """Sums (T, n) frames spaced `hop` apart, one hop-sized segment at a time."""
  n_frames, n = frames.shape
  n_seg = -(-n // hop)
  segs = np.pad(frames, ((0, 0), (0, n_seg * hop - n)))
  segs = segs.reshape(n_frames, n_seg, hop)
  out = np.zeros((n_frames + n_seg - 1, hop), frames.dtype)
  for k in range(n_seg):
    out[k:k + n_frames] += segs[:, k]
  return out.ravel()[:n + hop * (n_frames - 1)]


def _istft(stft: np.ndarray, spec: MelSpec) -> np.ndarray:
  """Inverse of `_stft` (librosa.istft, center=True, length hop * (T - 1))."""
  window = stft_window(spec)
  frames = np.fft.irfft(stft, n=spec.n_fft, axis=0).T * window
  wave = overlap_add(frames, spec.hop_length)
  wss = overlap_add(np.broadcast_to(window ** 2, frames.shape),
                     spec.hop_length)
  nonzero = wss > np.finfo(np.float32).tiny
  wave[nonzero] /= wss[nonzero]
  pad = spec.n_fft // 2
  return wave[pad:len(wave) - pad]


@functools.lru_cache(maxsize=8)
def bin_gain_matrix(spec: MelSpec, sr: int) -> np.ndarray:
  """(1 + n_fft // 2, n_mels) weights, rows summing to 1, that spread the
  per-band gains of `spec`'s mel over the bins of `stft_at(spec, sr)`.

  A bin takes the mean of the gains of the bands it falls in, weighted by
  the filterbank's triangles (its transpose); bins no band covers (0 Hz,
  above fmax) take the nearest band's. Linear interpolation between band
  centres differs by at most 0.008 in any weight and scored the same.
  """
  native = stft_at(spec, sr)
  bands = dataclasses.replace(native, fmax=spec.fmax_hz, n_mels=spec.n_mels)
  weights = mel_filterbank(bands).T.astype(np.float64)
  freqs = np.fft.rfftfreq(native.n_fft, 1.0 / sr)
  empty = weights.sum(axis=1) == 0
  nearest = np.abs(freqs[empty, None] - band_centres_hz(spec)[None, :])
  weights[np.flatnonzero(empty), nearest.argmin(axis=1)] = 1.0
  weights /= weights.sum(axis=1, keepdims=True)
  weights.setflags(write=False)
  return weights.astype(np.float32)


def stft_at(spec: MelSpec, sr: int) -> MelSpec:
  """`spec`'s STFT for a recording at `sr`: the same window and hop in
  seconds (n_fft even, hop a quarter of it), so its frames are as long."""
  n_fft = 2 * max(2, round(spec.n_fft * sr / spec.sr / 2))
  hop = spec.hop_length * n_fft // spec.n_fft
  return dataclasses.replace(spec, sr=int(sr), n_fft=n_fft, hop_length=hop)


def gain_at_frames(gain: np.ndarray, spec: MelSpec, native: MelSpec,
                    frames: np.ndarray) -> np.ndarray:
  """The (n_mels, T) gain of `spec`'s frames, linearly interpolated in time
  at the centres of `native`'s frames (identity when the two agree)."""
  position = frames * (native.hop_length / native.sr) / (
      spec.hop_length / spec.sr)
  low = np.clip(np.floor(position).astype(np.int64), 0, gain.shape[1] - 1)
  high = np.minimum(low + 1, gain.shape[1] - 1)
  frac = np.clip(position - low, 0.0, 1.0).astype(np.float32)
  return gain[:, low] * (1 - frac) + gain[:, high] * frac


def mel_to_stft_magnitude(mel: np.ndarray, spec: MelSpec) -> np.ndarray:
  """Non-negative linear magnitude S with filterbank @ S**power ~= mel.

  Lee-Seung multiplicative updates solve the non-negative least squares of
  librosa.feature.inverse.mel_to_stft for all frames at once, without a
  per-frame solver; they keep every bin >= 0 by construction.
  """
  basis = scipy.sparse.csr_array(mel_filterbank(spec), dtype=np.float64)
  target = np.asarray(mel, np.float64)
  numer = basis.T @ target
  power = numer / np.maximum(basis.sum(axis=0) ** 2, 1e-12)[:, None]
  for _ in range(_NNLS_ITERS):
    power *= numer / (basis.T @ (basis @ power) + 1e-12)
  return power ** (1.0 / spec.power)


def griffin_lim(magnitude: np.ndarray, spec: MelSpec, n_iter: int,
                seed: int = 0) -> np.ndarray:
  """Fast Griffin-Lim (momentum 0.99, random start) as librosa.griffinlim."""
  rng = np.random.default_rng(seed)
  angles = magnitude * np.exp(2j * np.pi * rng.random(magnitude.shape))
  prev = None
  for _ in range(n_iter):
    rebuilt = _stft(_istft(angles, spec), spec)
    angles = rebuilt if prev is None else rebuilt - (0.99 / 1.99) * prev
    angles = magnitude * angles / (np.abs(angles) + 1e-16)
    prev = rebuilt
  return _istft(angles, spec).astype(np.float32)


def mel_to_audio(mel: np.ndarray, spec: MelSpec, n_iter: int | None = None,
                 seed: int = 0) -> np.ndarray:
  """Waveform whose power mel approximates `mel`; for listening only.

  The inverse of `audio_to_mel` with the same spec: the same filterbank
  (mel scale, normalisation) and STFT padding, as librosa's mel_to_audio
  with the same arguments.
  """
  n_iter = spec.griffin_lim_iters if n_iter is None else n_iter
  return griffin_lim(mel_to_stft_magnitude(mel, spec), spec, n_iter, seed)


# Sample rates a recording can have; outside them a header is damaged.
MIN_SR, MAX_SR = 1000, 768000
_TOO_COARSE = ('PCM_S8', 'PCM_U8', 'ULAW', 'ALAW')


@dataclasses.dataclass(frozen=True)
class Recording:
  """An audio file's samples (n, channels) float32, its rate and subtype."""
  wave: np.ndarray
  sr: int
  subtype: str


def audio_info(path: str):
  """soundfile's info of a usable audio file; else MelFileError, one line."""
  if not os.path.isfile(path):
    raise mel_io.MelFileError(f'{path}: no such file')
  try:
    info = soundfile.info(path)
  except (soundfile.SoundFileError, RuntimeError, OSError, ValueError) as e:
    first_line = str(e).splitlines()[0] if str(e) else type(e).__name__
    raise mel_io.MelFileError(
        f'{path}: not a readable audio file ({first_line})') from None
  if info.frames <= 0:
    raise mel_io.MelFileError(f'{path}: holds no audio samples')
  if not MIN_SR <= info.samplerate <= MAX_SR:
    raise mel_io.MelFileError(f'{path}: sample rate {info.samplerate} Hz is '
                              f'outside {MIN_SR}-{MAX_SR} Hz')
  if info.subtype in _TOO_COARSE:
    raise mel_io.MelFileError(f'{path}: {info.subtype} audio (8 bits) is too '
                              'coarse to denoise; convert it to 16-bit PCM')
  return info


def read_audio(path: str) -> Recording:
  """All channels of an audio file; unusable files raise MelFileError."""
  info = audio_info(path)
  try:
    wave, sr = soundfile.read(path, dtype='float32', always_2d=True)
  except (soundfile.SoundFileError, RuntimeError, OSError, ValueError) as e:
    first_line = str(e).splitlines()[0] if str(e) else type(e).__name__
    raise mel_io.MelFileError(
        f'{path}: not a readable audio file ({first_line})') from None
  if wave.size == 0:
    raise mel_io.MelFileError(f'{path}: holds no audio samples')
  if not np.all(np.isfinite(wave)):
    raise mel_io.MelFileError(f'{path}: holds NaN or infinite samples')
  return Recording(wave, int(sr), info.subtype)


def load_audio(path: str, sr: int) -> np.ndarray:
  """Mono float32 waveform at `sr`; unusable files raise MelFileError."""
  recording = read_audio(path)
  return resample(recording.wave.mean(axis=1), recording.sr, sr)


def resample(wave: np.ndarray, from_sr: int, to_sr: int) -> np.ndarray:
  """Polyphase resampling (float32); a no-op when the rates agree."""
  if from_sr != to_sr:
    import scipy.signal  # pylint: disable=g-import-not-at-top
    g = math.gcd(int(from_sr), int(to_sr))
    wave = scipy.signal.resample_poly(wave, int(to_sr) // g, int(from_sr) // g)
  return np.asarray(wave, np.float32)


def save_wav(path: str, wave: np.ndarray, sr: int, pcm16: bool = True) -> None:
  """Writes (n,) or (n, channels) as a WAV atomically (`write_wav`)."""
  wave = np.asarray(wave)
  write_wav(path, [wave.reshape(len(wave), -1)], sr,
            1 if wave.ndim == 1 else wave.shape[1], pcm16)


def write_wav(path: str, blocks, sr: int, channels: int,
              pcm16: bool = True) -> None:
  """Writes (k, channels) blocks as one WAV, under a temporary name moved
  into place at the end (never half a file under `path`): 16-bit PCM,
  samples outside [-1, 1] clipped, not wrapped; or 32-bit float as they are.
  """
  tmp = path + '.tmp'
  try:
    with soundfile.SoundFile(tmp, 'w', sr, channels, format='WAV',
                             subtype='PCM_16' if pcm16 else 'FLOAT') as f:
      for block in blocks:
        f.write(np.clip(block, -1.0, 1.0) if pcm16
                else np.asarray(block, np.float32))
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
  os.replace(tmp, path)


def load_input(path: str, spec: MelSpec, min_frames: int = 1) -> np.ndarray:
  """Validated float32 power mel from a .npy mel or an audio file."""
  suffix = os.path.splitext(path)[1].lower()
  if suffix == mel_io.MEL_SUFFIX:
    return mel_io.load_mel(path, spec.n_mels, min_frames)
  if suffix in mel_io.AUDIO_SUFFIXES:
    mel = audio_to_mel(load_audio(path, spec.sr), spec)
    return mel_io.validate_mel(mel, path, spec.n_mels, min_frames)
  raise mel_io.MelFileError(
      f'{path}: unsupported file type {suffix or "(none)"!r}, expected '
      f'{mel_io.MEL_SUFFIX} or one of {", ".join(mel_io.AUDIO_SUFFIXES)}')
