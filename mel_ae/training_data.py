"""What training reads: the clean files split and normalised, the unpaired
noisy files, the noise bank (of the noise stage's fit, mel_ae/fit_noise.py,
where there is one), batches and the validation set.

Nothing here sees the paired test set's clean references except to score
them (`Data.test`); the noise bank is built from the training and unpaired
noisy files only (tests/leak_test.py).
"""
import dataclasses
from typing import Dict, Optional, Tuple

import ml_collections
import numpy as np

from mel_ae import audio
from mel_ae import features
from mel_ae import fit_noise
from mel_ae import input_pipeline
from mel_ae import models
from mel_ae import noise_bank
from mel_ae import settings


class DataError(ValueError):
  """Training or unpaired noisy files that cannot be used; one line."""


@dataclasses.dataclass(frozen=True)
class Data:
  """What training reads: the clean training and validation files and the
  unpaired noisy files in raw power, the paired test set, and the training
  and validation files in the model domain of `normalizer`."""
  test: Optional[Tuple[input_pipeline.MelFolder, input_pipeline.MelFolder]]
  train_power: Tuple[np.ndarray, ...]
  val_power: Tuple[np.ndarray, ...]
  noisy: Tuple[np.ndarray, ...]
  normalizer: Optional[features.Normalizer] = None
  train: Tuple[np.ndarray, ...] = ()
  val: Tuple[np.ndarray, ...] = ()

  def with_normalizer(self, normalizer: features.Normalizer) -> 'Data':
    """The same files in `normalizer`'s domain (e.g. a resumed run's own)."""
    return dataclasses.replace(
        self, normalizer=normalizer,
        train=tuple(normalizer.forward(m) for m in self.train_power),
        val=tuple(normalizer.forward(m) for m in self.val_power))


def load_data(config: ml_collections.ConfigDict) -> Data:
  """Loads the clean files, splits off validation, fits the normaliser."""
  d = config.data
  spec = audio.MelSpec.from_config(config.audio)
  stride = models.stride(config.model)
  train_power, val_power = input_pipeline.load_split(d, spec, stride,
                                                     config.seed)
  try:
    normalizer = features.fit_normalizer(list(train_power), d.transform,
                                         d.root)
  except ValueError as e:  # All-zero files: a data problem, one line.
    raise DataError(f'data.train_dir {d.train_dir}: {e}') from None
  test = None
  if d.test_noisy_dir:
    test = input_pipeline.load_pairs(d.test_noisy_dir, d.test_clean_dir, spec,
                                     stride)
  noisy = ()
  if d.noisy_dir and config.train.mode == 'denoise':
    noisy = input_pipeline.load_folder(d.noisy_dir, spec, 1).mels
  return Data(test, train_power, val_power, noisy).with_normalizer(normalizer)


def make_noise_bank(config: ml_collections.ConfigDict, data: Data,
                    noise: Optional[fit_noise.NoiseFit] = None
                    ) -> Optional[noise_bank.NoiseBank]:
  """The denoising noise bank (None in autoencoder mode).

  Where the config needs the noise stage (`fit_noise.needed`), built of
  its kinds and fitted model (`noise`, from `fit_noise.read`): the same
  bank as the stage's, never fitted again here. Else of noise.kinds, or
  noise.additive_kinds where none of those has unpaired noisy files.
  """
  if config.train.mode != 'denoise':
    return None
  if noise is None and fit_noise.needed(config):
    raise ValueError("this config trains on the noise stage's fit: pass "
                     'fit_noise.read(...) (mel_ae/fit_noise.py)')
  noise_config = settings.section(config, 'noise')
  kinds = noise.kinds if noise else noise_bank.available_kinds(
      noise_config, config.data.noisy_dir, data.noisy)
  return noise_bank.build_noise_bank(
      noise_config, audio.MelSpec.from_config(config.audio), data.train_power,
      data.noisy, config.seed, model=noise.model if noise else None,
      kinds=kinds)


def _time_flipped(sampler, seed: int):
  """`sampler` with each example reversed in time with probability 1/2
  (input and target together), seeded by (seed, step)."""
  def flipped(step: int) -> Dict[str, np.ndarray]:
    batch = sampler(step)
    rows = len(next(iter(batch.values())))
    flip = np.random.default_rng([seed, step, 3]).random(rows) < 0.5
    return {k: np.where(flip[:, None, None, None], v[:, :, ::-1], v)
            for k, v in batch.items()}
  return flipped


def make_sampler(config: ml_collections.ConfigDict, data: Data,
                 bank: Optional[noise_bank.NoiseBank] = None):
  """step -> batch dict of numpy arrays, for the configured training mode."""
  d, t = settings.section(config, 'data'), config.train
  if t.mode == 'autoencoder':
    crops = input_pipeline.CropSampler(
        data.train, d.crop_frames, t.batch_size, config.seed,
        data.normalizer.silence)
    sampler = lambda step: {'input': crops(step)}
  else:
    sampler = input_pipeline.NoisyCropSampler(
        data.train_power, bank or make_noise_bank(config, data),
        data.normalizer, d.crop_frames, t.batch_size, config.seed,
        settings.section(config, 'noise').level_db)
  return _time_flipped(sampler, config.seed) if d.time_flip else sampler


@dataclasses.dataclass(frozen=True)
class Validation:
  """Model-domain windows of the held-out clean files: `inputs` (in
  denoise mode corrupted by the bank's validation noise, noise.val_draws
  times over, the same draws at every eval),
  `targets` and a `mask` of the frames scored: real (not padding), and
  not among the train.loss_border_frames at a window's edges."""
  inputs: np.ndarray
  targets: np.ndarray
  mask: np.ndarray


def make_validation(config, data: Data,
                    bank: Optional[noise_bank.NoiseBank],
                    border_frames: int = 0) -> Optional[Validation]:
  """`border_frames`: the frames at either crop edge that the loss leaves
  out (the output form's train.loss_border_frames), scored neither."""
  if not data.val:
    return None
  windows, mask = input_pipeline.tile_windows(
      data.val, config.data.crop_frames, data.normalizer.silence)
  if border_frames:  # Scores the frames the loss trains.
    mask[:, :, :border_frames] = mask[:, :, -border_frames:] = 0
  if bank is None:
    return Validation(windows, windows, mask)
  # noise.val_draws draws of the noise per window, one block of windows
  # after another: noise levels are heavy-tailed, and one draw per window
  # made the validation MSE hinge on a few loud draws.
  draws = settings.section(config, 'noise').val_draws
  windows, mask = (np.tile(a, (draws, 1, 1, 1)) for a in (windows, mask))
  rng = np.random.default_rng([config.seed, 0x7A1])
  noisy = [bank.corrupt_validation(p, rng)
           for p in data.normalizer.inverse(windows[..., 0])]
  return Validation(data.normalizer.forward(np.stack(noisy))[..., None],
                    windows, mask)
