"""Reading, validating and writing power mel files.

Every file that enters the project passes through `load_mel`, so a bad file
fails here with one line naming the file and the problem, instead of deep
inside numpy or JAX.
"""
import os
import re
from typing import List, Optional, Sequence

import numpy as np

MEL_SUFFIX = '.npy'
AUDIO_SUFFIXES = ('.wav', '.flac', '.ogg')


class MelFileError(ValueError):
  """A data file that cannot be used; the message names the file and why."""


def validate_mel(mel: np.ndarray, name: str, n_mels: Optional[int] = None,
                 min_frames: int = 1) -> np.ndarray:
  """Checks a power mel of shape (n_mels, T) and returns it as float32."""
  if not isinstance(mel, np.ndarray) or mel.dtype.kind not in 'fiu':
    raise MelFileError(f'{name}: expected a numeric array, got '
                       f'{getattr(mel, "dtype", type(mel).__name__)}')
  if mel.ndim != 2:
    raise MelFileError(f'{name}: expected a 2-D (n_mels, frames) array, got '
                       f'shape {mel.shape}')
  if n_mels is not None and mel.shape[0] != n_mels:
    raise MelFileError(f'{name}: has {mel.shape[0]} mel bands, expected '
                       f'{n_mels} (shape {mel.shape})')
  if mel.shape[1] < max(min_frames, 1):
    raise MelFileError(f'{name}: too short, {mel.shape[1]} frames, need at '
                       f'least {max(min_frames, 1)}')
  if not np.all(np.isfinite(mel)):
    bad = int(np.size(mel) - np.count_nonzero(np.isfinite(mel)))
    raise MelFileError(f'{name}: holds {bad} NaN or infinite values')
  with np.errstate(over='ignore'):
    mel = mel.astype(np.float32, copy=False)
  if not np.all(np.isfinite(mel)):
    raise MelFileError(f'{name}: holds values beyond the float32 range')
  if np.any(mel < 0):
    raise MelFileError(f'{name}: holds negative values (min {mel.min():.3g});'
                       ' a power mel is >= 0')
  return mel


def read_npy(path: str) -> np.ndarray:
  """Loads a .npy file as data only (no pickles), with a one-line error.

  Memory-mapping first checks the header's shape against the file size, so a
  damaged header cannot make numpy allocate what the file does not hold.
  """
  try:
    data = np.load(path, mmap_mode='r', allow_pickle=False)
    return np.array(data) if isinstance(data, np.ndarray) else data
  except FileNotFoundError:
    raise MelFileError(f'{path}: no such file') from None
  # A damaged header raises ValueError, EOFError, OverflowError, TokenError...
  except Exception as e:  # pylint: disable=broad-except
    first_line = str(e).splitlines()[0] if str(e) else type(e).__name__
    raise MelFileError(f'{path}: not a readable numpy file ({first_line})'
                       ) from None


def stored_dtype(path: str) -> np.dtype:
  """The dtype a .npy file stores (float32 for audio), read from its header."""
  if not path.lower().endswith(MEL_SUFFIX):
    return np.dtype(np.float32)
  return np.load(path, mmap_mode='r', allow_pickle=False).dtype


def load_mel(path: str, n_mels: Optional[int] = None,
             min_frames: int = 1) -> np.ndarray:
  """Loads and validates one power mel (.npy), returned as float32."""
  return validate_mel(read_npy(path), path, n_mels, min_frames)


def list_files(directory: str, suffixes=(MEL_SUFFIX,) + AUDIO_SUFFIXES):
  """Sorted data files of a folder; a missing or empty folder is an error."""
  if not os.path.isdir(directory):
    raise MelFileError(f'{directory}: data folder does not exist')
  names = sorted(f for f in os.listdir(directory)
                 if f.lower().endswith(tuple(suffixes)) and not f.startswith('.'))
  if not names:
    raise MelFileError(f'{directory}: no {"/".join(suffixes)} files in folder')
  return [os.path.join(directory, f) for f in names]


def refuse_overwrite(path: str, overwrite: bool) -> None:
  if os.path.exists(path) and not overwrite:
    raise MelFileError(f'{path}: exists already (pass --overwrite to replace)')


def save_mel(path: str, mel: np.ndarray, overwrite: bool = False) -> None:
  """Writes a mel atomically; refuses to replace an existing file by default."""
  refuse_overwrite(path, overwrite)
  tmp = path + '.tmp.npy'
  np.save(tmp, mel, allow_pickle=False)
  os.replace(tmp, path)


def stem_key(path: str) -> str:
  """The name that pairs files: `noised_012.npy` and `012.wav` both give '012'.

  The extension and a leading run of non-digits are dropped; a name with no
  digits is its own key.
  """
  stem = os.path.splitext(os.path.basename(path))[0]
  return re.sub(r'^\D+', '', stem) or stem


def match_by_stem(paths: Sequence[str], ref_paths: Sequence[str]) -> List[str]:
  """For each reference file, the file of `paths` with the same stem key."""
  by_key = {}
  for p in paths:
    if stem_key(p) in by_key:
      raise MelFileError(f'{p}: same stem as {by_key[stem_key(p)]}')
    by_key[stem_key(p)] = p
  missing = [r for r in ref_paths if stem_key(r) not in by_key]
  if missing:
    raise MelFileError(f'{missing[0]}: no matching file (stem '
                       f'{stem_key(missing[0])!r}); {len(missing)} missing')
  return [by_key[stem_key(r)] for r in ref_paths]
