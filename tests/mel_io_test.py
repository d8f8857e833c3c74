"""Bad input: each case is one clear error naming the file."""
import os

import numpy as np
import pytest

from mel_ae import mel_io


def _save(tmp_path, name, array):
  path = str(tmp_path / name)
  np.save(path, array)
  return path


@pytest.mark.parametrize('array, message', [
    (np.zeros((128,)), '2-D'),
    (np.zeros((128, 4, 1)), '2-D'),
    (np.zeros((64, 10)), '64 mel bands, expected 128'),
    (np.full((128, 10), np.nan), 'NaN'),
    (np.full((128, 10), np.inf), 'infinite'),
    (-np.ones((128, 10)), 'negative'),
    (np.zeros((128, 1)), 'too short'),
    (np.array([['a'] * 3] * 128), 'numeric'),
])
def test_bad_arrays_name_file_and_problem(tmp_path, array, message):
  path = _save(tmp_path, 'bad.npy', array)
  with pytest.raises(mel_io.MelFileError, match=message) as e:
    mel_io.load_mel(path, n_mels=128, min_frames=2)
  assert str(e.value).startswith(path)
  assert '\n' not in str(e.value)


@pytest.mark.parametrize('content', [b'', b'not a numpy file at all',
                                     b'\x93NUMPY\x01\x00garbage'])
def test_unreadable_files(tmp_path, content):
  path = str(tmp_path / 'x.npy')
  with open(path, 'wb') as f:
    f.write(content)
  with pytest.raises(mel_io.MelFileError, match='not a readable numpy file'):
    mel_io.load_mel(path)


def test_pickled_object_arrays_are_refused(tmp_path):
  path = str(tmp_path / 'obj.npy')
  np.save(path, np.array([{'a': 1}], dtype=object), allow_pickle=True)
  with pytest.raises(mel_io.MelFileError, match='not a readable'):
    mel_io.load_mel(path)


def test_empty_and_missing_folders(tmp_path):
  with pytest.raises(mel_io.MelFileError, match='no .npy'):
    mel_io.list_files(str(tmp_path))
  with pytest.raises(mel_io.MelFileError, match='does not exist'):
    mel_io.list_files(str(tmp_path / 'nope'))


def test_valid_mel_loads_as_float32(tmp_path):
  path = _save(tmp_path, 'ok.npy', np.ones((128, 5), np.float64))
  mel = mel_io.load_mel(path, 128)
  assert mel.dtype == np.float32 and mel.shape == (128, 5)


def test_stem_matching_and_missing_partner(tmp_path):
  refs = ['/r/001.npy', '/r/002.npy']
  assert mel_io.match_by_stem(['/n/noised_002.npy', '/n/noised_001.npy'],
                              refs) == ['/n/noised_001.npy', '/n/noised_002.npy']
  with pytest.raises(mel_io.MelFileError, match='002.npy: no matching'):
    mel_io.match_by_stem(['/n/noised_001.npy'], refs)


def test_save_never_overwrites_by_default(tmp_path):
  path = str(tmp_path / 'out.npy')
  mel_io.save_mel(path, np.ones((2, 2)))
  with pytest.raises(mel_io.MelFileError, match='exists'):
    mel_io.save_mel(path, np.zeros((2, 2)))
  np.testing.assert_array_equal(np.load(path), 1.0)
  mel_io.save_mel(path, np.zeros((2, 2)), overwrite=True)
  assert not os.path.exists(path + '.tmp.npy')
