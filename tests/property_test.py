"""Property tests: bad input gives a valid result or the documented error.

Arbitrary shapes, dtypes and values (NaN, inf, negative, huge, denormal) and
damaged files (truncated, random bytes, lying headers, wrong extension, empty)
go through the loaders every file passes; an oracle written from the
documented contract (not from the loader) says which arrays and audio files
are usable, and the loaders must accept exactly those and refuse the rest
with the documented message. The transforms must round-trip.
Run with -s to see how many inputs were tried.
"""
import collections
import io
import itertools
import math
import os
import re

from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
import jax
import numpy as np
import pytest
import soundfile

from mel_ae import audio
from mel_ae import features
from mel_ae import inference
from mel_ae import mel_io
from mel_ae import models

_TRIED = collections.Counter()
_SPEC = audio.MelSpec()
_N_MELS = _SPEC.n_mels
_SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope='module', autouse=True)
def _report():
  yield
  print(f'\nproperty tests tried {sum(_TRIED.values())} inputs: '
        f'{dict(sorted(_TRIED.items()))}')


_SPECIAL = st.sampled_from([np.nan, np.inf, -np.inf, -1.0, -0.0, -1e-45,
                            1e-45, 5e-324, 1e38, 3.5e38, 1e300])
_ANY_DTYPE = st.one_of(
    hnp.floating_dtypes(endianness='?'), hnp.integer_dtypes(endianness='?'),
    hnp.unsigned_integer_dtypes(endianness='?'), hnp.boolean_dtypes(),
    hnp.complex_number_dtypes(), hnp.byte_string_dtypes(max_len=4))
_FLOAT_DTYPES = (np.float16, np.float32, np.float64, '>f4')


@st.composite
def _any_array(draw):
  """Any shape and dtype, elements anywhere in the dtype's range."""
  shape = draw(st.one_of(
      hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
      st.tuples(st.just(_N_MELS), st.integers(0, 40))))
  return draw(hnp.arrays(draw(_ANY_DTYPE), shape))


@st.composite
def _mel_like(draw, max_frames=40, dtypes=_FLOAT_DTYPES):
  """(n_mels, T) non-negative floats, sometimes with one special value."""
  dtype = np.dtype(draw(st.sampled_from(dtypes)))
  limit = float(np.finfo(dtype).max)
  mel = draw(hnp.arrays(dtype, (_N_MELS, draw(st.integers(1, max_frames))),
                        elements=st.floats(0, limit, width=dtype.itemsize * 8,
                                           allow_subnormal=True)))
  if draw(st.booleans()):
    with np.errstate(over='ignore', invalid='ignore'):
      mel[draw(st.integers(0, _N_MELS - 1)),
          draw(st.integers(0, mel.shape[1] - 1))] = draw(_SPECIAL)
  return mel


_USABLE_DTYPES = (np.float16, np.float32, np.float64, '>f4', '>f8', np.int8,
                  np.int16, np.int32, np.int64, '>i4', np.uint8, np.uint16,
                  np.uint32, np.uint64)
# float64 values from here up round to inf in float32 (half an ulp above
# float32's max, ties to even); negative values down to -2**-150 round to
# -0.0, which is not below zero.
_F32_OVERFLOW = 2.0**128 - 2.0**103
_F32_ZERO = 2.0**-150


def _problems(mel):
  """Oracle: [] for a usable array, else patterns of the documented errors.

  Usable (mel_io.validate_mel's docstring and the README): a numpy array of
  integers or floats, shaped (n_mels, T >= 1), every value finite, inside
  float32's range and >= 0 once stored as float32 (what loaders return).
  """
  if not isinstance(mel, np.ndarray) or mel.dtype.kind not in 'iuf':
    return ['expected a numeric array, got ']
  problems = []
  if mel.ndim != 2:
    problems.append(re.escape(f'expected a 2-D (n_mels, frames) array, got '
                              f'shape {mel.shape}'))
  else:
    if mel.shape[0] != _N_MELS:
      problems.append(f'has {mel.shape[0]} mel bands, expected {_N_MELS}')
    if mel.shape[1] < 1:
      problems.append(f'too short, {mel.shape[1]} frames, need at least 1')
  values = [float(v) for v in mel.ravel().tolist()]  # Python floats: exact.
  bad = sum(not math.isfinite(v) for v in values)
  if bad:
    problems.append(f'holds {bad} NaN or infinite values')
  if any(math.isfinite(v) and abs(v) >= _F32_OVERFLOW for v in values):
    problems.append('holds values beyond the float32 range')
  if any(v < -_F32_ZERO for v in values):
    problems.append(r'holds negative values \(min -.*\); a power mel is >= 0')
  return problems


@st.composite
def _usable_mel(draw, max_frames=40):
  """Arrays the loaders must accept: any integer or float dtype, values
  anywhere from 0 (or -0.0) to the top of float32's range."""
  dtype = np.dtype(draw(st.sampled_from(_USABLE_DTYPES)))
  if dtype.kind == 'f':
    wide = dtype.itemsize == 8
    elements = st.floats(0, _F32_OVERFLOW if wide else float(
        np.finfo(dtype).max), exclude_max=wide, width=dtype.itemsize * 8,
                         allow_subnormal=True) | st.just(-0.0)
  else:
    elements = st.integers(0, int(np.iinfo(dtype).max))
  return draw(hnp.arrays(dtype, (_N_MELS, draw(st.integers(1, max_frames))),
                         elements=elements))


def _check_mel(mel, source, name):
  """The usable float32 power mel equal to the input, or the documented
  error for one of the problems the oracle finds."""
  problems = _problems(mel)
  try:
    out = mel_io.validate_mel(mel, name, _N_MELS)
  except mel_io.MelFileError as e:
    assert str(e).startswith(f'{name}: ') and '\n' not in str(e)
    assert problems, f'usable array refused: {e}'
    assert any(re.fullmatch(f'{re.escape(name)}: {p}.*', str(e))
               for p in problems), (str(e), problems)
    return 'error'
  assert not problems, f'accepted an array with {problems}'
  assert out.dtype == np.float32 and out.shape == mel.shape
  assert out.shape[0] == _N_MELS and out.shape[1] >= 1
  assert np.all(np.isfinite(out)) and np.all(out >= 0)
  np.testing.assert_array_equal(out, np.asarray(source).astype(np.float32))
  return 'valid'


@_SETTINGS
@given(st.one_of(_any_array(), _mel_like(), _usable_mel()))
def test_validate_mel_accepts_exactly_the_usable_arrays(mel):
  _TRIED[f'array:{_check_mel(mel, mel, "x")}'] += 1


@pytest.mark.parametrize('value, outcome', [
    (float(np.finfo(np.float32).max), 'valid'),
    (np.nextafter(_F32_OVERFLOW, 0), 'valid'),  # Rounds down to the max.
    (_F32_OVERFLOW, 'error'),
    (-_F32_ZERO, 'valid'),  # Rounds to -0.0.
    (np.nextafter(-_F32_ZERO, -1), 'error'),
    (5e-324, 'valid'),
])
def test_validate_mel_at_the_edges_of_float32(value, outcome):
  mel = np.full((_N_MELS, 2), value, np.float64)
  assert _check_mel(mel, mel, 'x') == outcome


def _npy(array) -> bytes:
  buffer = io.BytesIO()
  np.save(buffer, array, allow_pickle=array.dtype == object)
  return buffer.getvalue()


def _header(shape, descr) -> bytes:
  buffer = io.BytesIO()
  np.lib.format.write_array_header_1_0(
      buffer, {'descr': descr, 'fortran_order': False, 'shape': shape})
  return buffer.getvalue()


@st.composite
def _wav(draw):
  samples = draw(hnp.arrays(np.float32, st.integers(0, 3000),
                            elements=st.floats(width=32)))
  buffer = io.BytesIO()
  soundfile.write(buffer, samples, draw(st.sampled_from([8000, 22050, 44100])),
                  format='WAV', subtype=draw(st.sampled_from(['FLOAT',
                                                              'PCM_16'])))
  return buffer.getvalue()


def _cut(content_and_fraction) -> bytes:
  content, fraction = content_and_fraction
  return content[:int(len(content) * fraction)]


# (kind, bytes, the suffix such a file would normally have).
_FILES = st.one_of(
    st.one_of(_any_array(), _mel_like()).map(
        lambda a: ('npy', _npy(a), '.npy')),
    st.tuples(_mel_like().map(_npy), st.floats(0, 1)).map(
        lambda c: ('truncated', _cut(c), '.npy')),
    st.tuples(st.tuples(st.integers(-2, 2**45), st.integers(-2, 2**45)),
              st.sampled_from(['<f4', '>f8', '|u1', 'zz', '|O']),
              st.binary(max_size=64)).map(
                  lambda h: ('lying-header', _header(h[0], h[1]) + h[2],
                             '.npy')),
    st.binary(max_size=64).map(
        lambda b: ('npy-magic+garbage', b'\x93NUMPY\x01\x00' + b, '.npy')),
    st.binary(max_size=4096).map(lambda b: ('random-bytes', b, '.npy')),
    st.just(('pickle', _npy(np.array([{'a': 1}], dtype=object)), '.npy')),
    st.just(('empty', b'', '.npy')),
    _wav().map(lambda b: ('wav', b, '.wav')),
    st.tuples(_wav(), st.floats(0, 1)).map(
        lambda c: ('truncated-wav', _cut(c), '.wav')),
)
_SUFFIXES = st.sampled_from(['.npy', '.NPY', '.wav', '.flac', '.ogg', '.txt',
                             ''])
_NAMES = itertools.count()


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
  return str(tmp_path_factory.mktemp('files'))


@_SETTINGS
@given(_FILES, st.booleans(), _SUFFIXES)
def test_any_file_loads_or_fails_in_one_line(folder, content, wrong_suffix,
                                             suffix):
  kind, data, natural_suffix = content
  suffix = suffix if wrong_suffix else natural_suffix
  path = os.path.join(folder, f'f{next(_NAMES)}{suffix}')
  with open(path, 'wb') as f:
    f.write(data)
  try:
    mel = audio.load_input(path, _SPEC)
  except mel_io.MelFileError as e:
    assert str(e).startswith(f'{path}: ') and '\n' not in str(e), str(e)
    outcome = 'error'
  else:
    assert mel.dtype == np.float32 and mel.shape[0] == _N_MELS
    assert mel.shape[1] >= 1 and np.all(np.isfinite(mel)) and np.all(mel >= 0)
    outcome = 'valid'
  finally:
    os.remove(path)
  _TRIED[f'file:{kind}:{outcome}'] += 1


def _write(folder, data: bytes, suffix: str) -> str:
  path = os.path.join(folder, f'f{next(_NAMES)}{suffix}')
  with open(path, 'wb') as f:
    f.write(data)
  return path


@_SETTINGS
@given(_usable_mel(), st.sampled_from(['.npy', '.NPY']))
def test_usable_arrays_load_from_npy_files_unchanged(folder, mel, suffix):
  path = _write(folder, _npy(mel), suffix)
  try:
    out = audio.load_input(path, _SPEC)
  finally:
    os.remove(path)
  assert out.dtype == np.float32
  np.testing.assert_array_equal(out, mel.astype(np.float32))
  _TRIED['npy:usable'] += 1


_AUDIO_FORMATS = (  # What the loaders take: .wav, .flac, .ogg, 16 bits up.
    ('WAV', '.wav', ('PCM_16', 'PCM_24', 'PCM_32', 'FLOAT', 'DOUBLE')),
    ('FLAC', '.flac', ('PCM_16', 'PCM_24')),
    ('OGG', '.ogg', ('VORBIS',)))
# Any rate: load_audio resamples to the model's rate.
_RATES = st.sampled_from([8000, 16000, 22050, 44100, 48000]) | st.integers(
    1000, 192000)


@st.composite
def _audio_file(draw, min_frames=1, max_frames=3000, formats=_AUDIO_FORMATS):
  """(bytes, suffix, frames, rate) of a real audio file, 1 or 2 channels."""
  container, suffix, subtypes = draw(st.sampled_from(formats))
  rate = draw(_RATES)
  if container == 'FLAC' and rate > 65535:  # FLAC's streamable subset.
    rate -= rate % 10
  samples = draw(hnp.arrays(np.float32, (
      draw(st.integers(min_frames, max_frames)), draw(st.integers(1, 2))),
                            elements=st.floats(-1, 1, width=32)))
  buffer = io.BytesIO()
  soundfile.write(buffer, samples, rate, format=container,
                  subtype=draw(st.sampled_from(subtypes)))
  return buffer.getvalue(), suffix, len(samples), rate


@settings(_SETTINGS, max_examples=50)
@given(_audio_file())
def test_audio_at_any_sample_rate_loads_at_the_model_rate(folder, audio_file):
  data, suffix, frames, rate = audio_file
  path = _write(folder, data, suffix)
  try:
    wave = audio.load_audio(path, _SPEC.sr)
    mel = audio.load_input(path, _SPEC)
  finally:
    os.remove(path)
  assert wave.dtype == np.float32 and wave.ndim == 1
  assert abs(len(wave) - frames * _SPEC.sr / rate) <= 1  # Same duration.
  assert np.all(np.isfinite(wave))
  if rate == _SPEC.sr:  # Nothing to resample: the channels' mean.
    stored = soundfile.read(io.BytesIO(data), dtype='float32',
                            always_2d=True)[0]
    np.testing.assert_allclose(wave, stored.mean(axis=1), rtol=1e-6,
                               atol=1e-7)
  assert mel.dtype == np.float32
  assert mel.shape == (_N_MELS, 1 + len(wave) // _SPEC.hop_length)
  _TRIED[f'audio:{suffix}'] += 1


# (bytes, suffix, documented message): audio with no samples (soundfile
# writes an empty FLAC as no bytes at all), and bytes that no audio format
# starts with.
_UNUSABLE_AUDIO = st.one_of(
    _audio_file(min_frames=0, max_frames=0, formats=(
        _AUDIO_FORMATS[0], _AUDIO_FORMATS[2])).map(
        lambda a: (a[0], a[1], 'holds no audio samples')),
    st.tuples(st.binary(max_size=512), st.sampled_from(
        [s for _, s, _ in _AUDIO_FORMATS])).map(
            lambda b: (b'JUNK' + b[0], b[1],
                       r'not a readable audio file \(.+\)')))


@settings(_SETTINGS, max_examples=50)
@given(_UNUSABLE_AUDIO)
def test_unusable_audio_is_refused_with_the_documented_message(folder, bad):
  data, suffix, message = bad
  path = _write(folder, data, suffix)
  try:
    with pytest.raises(mel_io.MelFileError) as e:
      audio.load_audio(path, _SPEC.sr)
  finally:
    os.remove(path)
  assert re.fullmatch(f'{re.escape(path)}: {message}', str(e.value)), str(
      e.value)
  _TRIED['audio:unusable'] += 1


# Transforms see validated mels: float32, finite, >= 0.
_VALID_MELS = _mel_like(max_frames=20, dtypes=(np.float32,)).filter(
    lambda m: np.all(np.isfinite(m)))


@_SETTINGS
@given(_VALID_MELS)
def test_root_transform_round_trips(mel):
  power = np.clip(mel.astype(np.float64), 0, None)
  try:
    normalizer = features.fit_normalizer([power], 'root', 16.0)
  except ValueError as e:  # The documented error for an all-zero corpus.
    assert not np.any(power > 0) and 'all zero' in str(e)
    _TRIED['root:all-zero'] += 1
    return
  z = normalizer.forward(power)
  assert z.dtype == np.float32 and np.all((z >= 0) & (z <= 1))
  np.testing.assert_allclose(normalizer.inverse(z), power, rtol=2e-6, atol=0)
  _TRIED['root:round-trip'] += 1


@_SETTINGS
@given(_VALID_MELS, st.floats(10, 120))
def test_db_transform_round_trips_above_its_floor(mel, top_db):
  power = np.clip(mel.astype(np.float64), 0, None)
  normalizer = features.fit_normalizer([power], 'db', top_db=top_db)
  z = normalizer.forward(power)
  assert z.dtype == np.float32 and np.all((z >= 0) & (z <= 1 + 1e-6))
  back = normalizer.inverse(z)
  kept = z > 0
  np.testing.assert_allclose(back[kept], power[kept], rtol=1e-5, atol=1e-15)
  floor = normalizer.inverse(np.zeros(1))[0]  # Quieter values end here.
  assert np.all(back[~kept] == floor) and np.all(power[~kept] <= floor * 1.001)
  _TRIED['db:round-trip'] += 1


@_SETTINGS
@given(hnp.arrays(np.float32, st.integers(0, 5000),
                  elements=st.floats(-1e3, 1e3, width=32)))
def test_audio_to_mel_is_a_valid_mel_for_any_finite_wave(wave):
  mel = audio.audio_to_mel(wave, _SPEC)
  assert mel.shape == (_N_MELS, 1 + len(wave) // _SPEC.hop_length)
  assert np.all(np.isfinite(mel)) and np.all(mel >= 0)
  _TRIED['audio_to_mel'] += 1


@pytest.fixture(scope='module')
def denoiser():
  """An untrained tiny model: shapes and dtypes do not depend on training."""
  from configs import tiny  # pylint: disable=g-import-not-at-top
  config = tiny.get_config()
  variables = models.build_model(config.model).init(
      jax.random.PRNGKey(0), np.zeros((1, _N_MELS, 32, 1), np.float32),
      train=False)
  return inference.Denoiser(config, variables,
                            features.Normalizer(scale=2.0), step=0)


@settings(_SETTINGS, max_examples=30)
@given(st.lists(_mel_like(max_frames=300), min_size=1, max_size=3))
def test_denoise_batch_keeps_shape_and_dtype_or_fails_clearly(denoiser, mels):
  try:
    outs = denoiser.denoise_batch(mels)
  except mel_io.MelFileError as e:
    assert str(e).startswith('input ') and '\n' not in str(e)
    _TRIED['denoise:error'] += 1
    return
  for mel, out in zip(mels, outs):
    assert out.shape == mel.shape and out.dtype == mel.dtype
    assert np.all(np.isfinite(out.astype(np.float64))) and np.all(out >= 0)
  _TRIED['denoise:valid'] += 1
