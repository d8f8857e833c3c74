"""Training data: folders of power mels, deterministic crops, eval windows.

Everything is held in memory in the model domain (the corpus is small), and
batch `k` is a pure function of `(seed, k)`, so a resumed run sees exactly
the batches an uninterrupted one would have seen.
"""
import dataclasses
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np

from mel_ae import audio
from mel_ae import features
from mel_ae import mel_io
from mel_ae import noise_bank


def check_config(d, stride: int) -> List[Tuple[bool, str]]:
  """(ok, message) pairs for config.data; `stride` is the model's."""
  checks = [
      (d.crop_frames >= stride and d.crop_frames % stride == 0,
       f'data.crop_frames={d.crop_frames} is not a multiple of the model\'s '
       f'stride {stride}'),
      (d.transform in features.KINDS,
       f'data.transform must be one of {features.KINDS}'),
      (0 <= d.val_fraction < 1, 'data.val_fraction must be in [0, 1)'),
      (bool(d.train_dir), 'data.train_dir is empty: training (and adapting '
       'a model to a speaker) needs clean speech; noisy files alone cannot '
       'teach a model what the speaker sounds like. Without clean files, '
       'denoise with the general model as it is: python -m mel_ae.denoise '
       '--pretrained=general --input=NOISY --output=OUT'),
      (not d.train_dir or os.path.isdir(d.train_dir),
       f'data.train_dir {d.train_dir} does not exist'),
      (bool(d.test_noisy_dir) == bool(d.test_clean_dir),
       'set both data.test_noisy_dir and data.test_clean_dir, or neither'),
  ]
  for folder in ('noisy_dir', 'test_noisy_dir', 'test_clean_dir'):
    checks.append((not d[folder] or os.path.isdir(d[folder]),
                   f'data.{folder} {d[folder]} does not exist'))
  # Training may read the clean and the unpaired noisy folders, never the
  # clean references of the test set.
  refs = d.test_clean_dir and os.path.realpath(d.test_clean_dir)
  for folder in ('train_dir', 'noisy_dir'):
    checks.append((not (refs and d[folder])
                   or os.path.realpath(d[folder]) != refs,
                   f"data.{folder} is the test set's clean references"))
  return checks


@dataclasses.dataclass(frozen=True)
class MelFolder:
  paths: Tuple[str, ...]
  mels: Tuple[np.ndarray, ...]  # power mels (n_mels, T), float32


def load_folder(directory: str, spec: audio.MelSpec,
                min_frames: int) -> MelFolder:
  """Loads and validates every .npy / audio file of a folder."""
  paths = mel_io.list_files(directory)
  return MelFolder(tuple(paths), tuple(
      audio.load_input(p, spec, min_frames) for p in paths))


def load_pairs(noisy_dir: str, clean_dir: str, spec: audio.MelSpec,
               min_frames: int) -> Tuple[MelFolder, MelFolder]:
  """A paired test set: noisy and clean files matched by stem."""
  clean = load_folder(clean_dir, spec, min_frames)
  noisy_paths = mel_io.match_by_stem(mel_io.list_files(noisy_dir),
                                     clean.paths)
  noisy = MelFolder(tuple(noisy_paths), tuple(
      audio.load_input(p, spec, min_frames) for p in noisy_paths))
  for n, c, path in zip(noisy.mels, clean.mels, noisy.paths):
    if n.shape != c.shape:
      raise mel_io.MelFileError(
          f'{path}: shape {n.shape} differs from its clean reference {c.shape}')
  return noisy, clean


def split_validation(n: int, fraction: float,
                     seed: int) -> Tuple[np.ndarray, np.ndarray]:
  """Indices of training and held-out files; at least one of each if n > 1."""
  n_val = min(max(int(round(fraction * n)), 1 if fraction > 0 else 0), n - 1)
  order = np.random.default_rng([seed, 0x5EED]).permutation(n)
  return np.sort(order[n_val:]), np.sort(order[:n_val])


def load_split(d, spec: audio.MelSpec, min_frames: int, seed: int
               ) -> Tuple[Tuple[np.ndarray, ...], Tuple[np.ndarray, ...]]:
  """The clean folder `d.train_dir` (config.data) as (training, held-out)
  files by `split_validation`, the same wherever it is loaded."""
  mels = load_folder(d.train_dir, spec, min_frames).mels
  train, val = split_validation(len(mels), d.val_fraction, seed)
  return tuple(mels[i] for i in train), tuple(mels[i] for i in val)


def pad_frames(mel: np.ndarray, frames: int, fill: float = 0.0) -> np.ndarray:
  """Right-pads with silence (`fill`: zero power in the mel's domain, see
  `Normalizer.silence`) to at least `frames` frames."""
  missing = frames - mel.shape[-1]
  return (np.pad(mel, ((0, 0), (0, missing)), constant_values=fill)
          if missing > 0 else mel)


class CropSampler:
  """Random fixed-width crops; batch `step` is a function of (seed, step)."""

  def __init__(self, mels: Sequence[np.ndarray], crop_frames: int,
               batch_size: int, seed: int, fill: float = 0.0):
    if not mels:
      raise ValueError('no training files left after the validation split')
    self._mels = [pad_frames(m, crop_frames, fill) for m in mels]
    self._crop = crop_frames
    self._batch_size = batch_size
    self._seed = seed

  def __call__(self, step: int) -> np.ndarray:
    """Crops of shape (batch, n_mels, crop_frames, 1), float32."""
    rng = np.random.default_rng([self._seed, step])
    files = rng.integers(len(self._mels), size=self._batch_size)
    crops = []
    for f in files:
      mel = self._mels[f]
      start = rng.integers(mel.shape[1] - self._crop + 1)
      crops.append(mel[:, start:start + self._crop])
    return np.stack(crops)[..., None]


def tile_windows(mels: Sequence[np.ndarray], width: int,
                 fill: float = 0.0) -> Tuple[np.ndarray, np.ndarray]:
  """Cuts mels into non-overlapping windows (the last one padded with
  `fill`, silence in the mels' domain).

  Returns windows (N, n_mels, width, 1) and a mask (N, 1, width, 1) that is 1
  on real frames, so padding never counts in a metric.
  """
  windows, masks = [], []
  for mel in mels:
    t = mel.shape[1]
    padded = pad_frames(mel, -(-t // width) * width, fill)
    for start in range(0, padded.shape[1], width):
      windows.append(padded[:, start:start + width])
      masks.append((np.arange(start, start + width) < t)[None, :])
  return (np.stack(windows)[..., None],
          np.stack(masks)[..., None].astype(np.float32))


def batches(arrays: List[np.ndarray], batch_size: int,
            fill: Optional[float] = 0.0):
  """Yields fixed-size batches; the last is padded with `fill` rows."""
  n = len(arrays[0])
  for start in range(0, n, batch_size):
    chunk = [a[start:start + batch_size] for a in arrays]
    missing = batch_size - len(chunk[0])
    if missing:
      chunk = [np.concatenate([c, np.full((missing,) + c.shape[1:], fill,
                                          c.dtype)]) for c in chunk]
    yield chunk


class NoisyCropSampler:
  """Denoising pairs: clean crops corrupted by a noise bank (in power), both
  mapped to the model domain. Batch `step` depends on (seed, step) only."""

  def __init__(self, clean_power: Sequence[np.ndarray],
               bank: noise_bank.NoiseBank, normalizer,
               crop_frames: int, batch_size: int, seed: int,
               level_db: Tuple[float, float] = (0.0, 0.0)):
    self._crops = CropSampler(clean_power, crop_frames, batch_size, seed)
    self._bank = bank
    self._normalizer = normalizer
    self._seed = seed
    self._level_db = tuple(level_db)

  def _levels(self, count: int, step: int) -> Optional[np.ndarray]:
    """A random level factor per crop: noise.level_db's range, uniform in
    dB (a model for anyone's recordings meets any loudness); None: off."""
    low, high = self._level_db
    if low == high == 0:
      return None
    rng = np.random.default_rng([self._seed, step, 4])
    return 10 ** (rng.uniform(low, high, count) / 10)

  def __call__(self, step: int) -> dict:
    """{'input', 'target'} and, with level augmentation, each crop's level
    factor ('level', which the loss divides out)."""
    clean = self._crops(step)[..., 0]
    levels = self._levels(len(clean), step)
    if levels is not None:
      clean = clean * levels[:, None, None]
    rng = np.random.default_rng([self._seed, step, 1])
    noisy = np.stack([self._bank.corrupt(c, rng) for c in clean])
    batch = {'input': self._normalizer.forward(noisy)[..., None],
             'target': self._normalizer.forward(clean)[..., None]}
    if levels is not None:
      batch['level'] = levels[:, None, None, None].astype(np.float32)
    return batch
