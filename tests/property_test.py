"""Property tests: bad input gives a valid result or the documented error.

Arbitrary shapes, dtypes and values (NaN, inf, negative, huge, denormal) and
damaged files (truncated, random bytes, lying headers, wrong extension, empty)
go through the loaders every file passes; the transforms must round-trip.
Run with -s to see how many inputs were tried.
"""
import collections
import io
import itertools
import os

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


def _check_mel(mel, source, name):
  """Either a usable float32 power mel that equals the input, or the error."""
  try:
    out = mel_io.validate_mel(mel, name, _N_MELS)
  except mel_io.MelFileError as e:
    assert str(e).startswith(f'{name}: ') and '\n' not in str(e)
    return 'error'
  assert out.dtype == np.float32 and out.shape == mel.shape
  assert out.shape[0] == _N_MELS and out.shape[1] >= 1
  assert np.all(np.isfinite(out)) and np.all(out >= 0)
  np.testing.assert_array_equal(out, np.asarray(source).astype(np.float32))
  return 'valid'


@_SETTINGS
@given(st.one_of(_any_array(), _mel_like()))
def test_validate_mel_accepts_exactly_the_usable_arrays(mel):
  _TRIED[f'array:{_check_mel(mel, mel, "x")}'] += 1


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
