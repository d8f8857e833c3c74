r"""The 2020 competition winner's recipe as a PyTorch peer, on our batches.

  python -m experiments.recipe.winner --config=configs/denoise.py \
      --workdir=runs/winner --noisy=mel_ae/corpus/test/noisy
  python -m experiments.compare --preds=winner:runs/winner/denoised \
      --noisy=mel_ae/corpus/test/noisy --clean=mel_ae/corpus/test/clean

The recipe is that of the 1st place solution, github.com/h4nyu/bdn-audio
(app/models.py, train.py, dataset.py, pipeline.py); this code is our own.
What it keeps: the network sees log power and predicts a log-domain gain,
output = exp(net(log x) + log x), so it can only scale what is there; the
loss is the MSE in power (theirs divided power by MAX_POWER = 420 first, a
constant factor); a U-Net with batch norm and skip connections; random
crops with random time flips; AdamW; and predictions averaged with those
of the time-reversed input, in power.

Shrunk for a 2-core CPU, and other choices made here:
- The U-Net has plain double 3x3 conv + BN + ReLU blocks, `--channels` per
  level (theirs: SE-ResNeXt bottlenecks, LeakyReLU, base 32; their forward
  passes `up1(n1, n0)`, so its deepest level went unused).
- Training pairs are exactly our sampler's (`mel_ae.training_data.make_sampler`:
  the config's noise, crops, batch size and time flips, which the recipe
  needs, so config.data.time_flip must be on; short files zero-padded, not
  tiled), turned back into power. Theirs mixed their own multiplicative
  masking noise into batches of 32 crops of 128 x 32.
- A one-cycle schedule over config.train.num_steps (theirs: ReduceLROnPlateau
  on the epoch loss over thousands of epochs, which has no shrunk form).
- log(x + log_eps) instead of log(x), with the gain applied to x itself:
  out = x * exp(net(log(x + eps))), the same function for eps = 0, and no
  -inf on a zero bin. Our files bottom out at 1e-4; eps 1e-6 lies below.
- Whole files are padded in time with their edge frames to a multiple of
  the pooling and cropped back (theirs padded inside the decoder). Only the
  time flip is averaged (their last version also averaged a frequency
  flip, which maps low bands onto high ones), and there is one model, not
  an ensemble of folds.
torch is only in the `bench` extra.
"""
import dataclasses
import math
import os
import sys
import time
from typing import Dict, List, Sequence, Tuple

from absl import app
from absl import flags
from absl import logging
import ml_collections
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mel_ae import cli
from mel_ae import fit_noise
from mel_ae import logs
from mel_ae import mel_io
from mel_ae import settings
from mel_ae import train as train_lib
from mel_ae import training_data

WEIGHTS = 'winner.pt'


@dataclasses.dataclass(frozen=True)
class Recipe:
  """The recipe's own hyper-parameters (flags of the same names)."""
  channels: Tuple[int, ...] = (16, 32, 64)  # one U-Net level each
  learning_rate: float = 1e-3  # peak of the one-cycle schedule
  weight_decay: float = 1e-2  # AdamW's, torch's default as they used
  schedule: str = 'onecycle'  # or 'constant'
  log_eps: float = 1e-6  # raw power added before the log


def _double_conv(cin: int, cout: int) -> nn.Sequential:
  layers = []
  for c in (cin, cout):
    layers += [nn.Conv2d(c, cout, 3, padding=1, bias=False),
               nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
  return nn.Sequential(*layers)


class LogGainUNet(nn.Module):
  """x * exp(U-Net(log(x + eps))): a gain that can only scale what is there."""

  def __init__(self, channels: Sequence[int], log_eps: float):
    super().__init__()
    self.channels, self.log_eps = tuple(channels), log_eps
    self.multiple = 2 ** (len(channels) - 1)  # frames and bands, for pooling
    ins = (1,) + self.channels[:-1]
    self.down = nn.ModuleList(_double_conv(a, b) for a, b in zip(ins, channels))
    pairs = list(zip(channels[1:], channels[:-1]))[::-1]
    self.up = nn.ModuleList(nn.ConvTranspose2d(a, b, 2, stride=2)
                            for a, b in pairs)
    self.merge = nn.ModuleList(_double_conv(2 * b, b) for _, b in pairs)
    self.head = nn.Conv2d(channels[0], 1, 1)

  def log_gain(self, x: torch.Tensor) -> torch.Tensor:
    h = torch.log(x + self.log_eps)
    skips = []
    for i, block in enumerate(self.down):
      h = block(F.max_pool2d(h, 2) if i else h)
      skips.append(h)
    for up, merge, skip in zip(self.up, self.merge, skips[-2::-1]):
      h = merge(torch.cat([skip, up(h)], dim=1))
    return self.head(h)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return x * torch.exp(self.log_gain(x))


def _to_torch(batch: np.ndarray) -> torch.Tensor:
  """(B, H, W, 1) numpy -> (B, 1, H, W) float32, channels_last."""
  x = torch.from_numpy(np.ascontiguousarray(np.moveaxis(batch, -1, 1),
                                            np.float32))
  return x.contiguous(memory_format=torch.channels_last)


def power_batch(sampler, normalizer, step: int) -> List[torch.Tensor]:
  """Our batch `step`, input and target, in raw power."""
  batch = sampler(step)
  return [_to_torch(normalizer.inverse(batch[k])) for k in ('input', 'target')]


def _schedule(opt, recipe: Recipe, num_steps: int):
  if recipe.schedule == 'onecycle':
    return torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=recipe.learning_rate, total_steps=num_steps)
  if recipe.schedule == 'constant':
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
  raise train_lib.ConfigError("schedule must be 'onecycle' or 'constant', "
                              f'got {recipe.schedule!r}')


def _check(config: ml_collections.ConfigDict, recipe: Recipe) -> None:
  train_lib.validate_config(config)
  multiple = 2 ** (len(recipe.channels) - 1)
  if config.train.mode != 'denoise':
    raise train_lib.ConfigError("needs --config.train.mode='denoise'")
  if not settings.section(config, 'data').time_flip:
    raise train_lib.ConfigError('the recipe flips crops in time: needs '
                                '--config.data.time_flip=True')
  if config.data.crop_frames % multiple or config.audio.n_mels % multiple:
    raise train_lib.ConfigError(
        f'data.crop_frames={config.data.crop_frames} and audio.n_mels='
        f'{config.audio.n_mels} must be multiples of the U-Net pooling '
        f'{multiple} (2 ** (levels - 1))')


def train_model(config: ml_collections.ConfigDict,
                recipe: Recipe) -> Tuple[LogGainUNet, Dict[str, float]]:
  """Trains on the batches our JAX model sees; returns the model and timing."""
  _check(config, recipe)
  t = config.train
  torch.manual_seed(config.seed)
  data = training_data.load_data(config)
  # The noise stage's fit and bank, as training reads them.
  bank = training_data.make_noise_bank(config, data, fit_noise.decide(
      config, data.train_power, data.noisy))
  sampler = training_data.make_sampler(config, data, bank)
  model = LogGainUNet(recipe.channels, recipe.log_eps).to(
      memory_format=torch.channels_last)
  opt = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate,
                          weight_decay=recipe.weight_decay)
  schedule = _schedule(opt, recipe, t.num_steps)
  model.train()
  losses, start = [], time.perf_counter()
  for step in range(1, t.num_steps + 1):
    x, y = power_batch(sampler, data.normalizer, step)
    loss = F.mse_loss(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    schedule.step()
    losses.append(loss.item())
    if step % t.log_every == 0 or step == t.num_steps:
      mean = float(np.mean(losses))
      if not math.isfinite(mean):
        raise FloatingPointError(f'non-finite loss by step {step}')
      rate = step * t.batch_size / (time.perf_counter() - start)
      logging.info('step %d/%d  loss %.5f  %.1f examples/s', step,
                   t.num_steps, mean, rate)
      losses = []
  wall = time.perf_counter() - start
  timing = {'train_seconds': wall,
            'examples_per_sec': t.num_steps * t.batch_size / wall}
  logging.info('trained %d steps of %d in %.1f s: %.1f examples/s',
               t.num_steps, t.batch_size, wall, timing['examples_per_sec'])
  return model, timing


def save_model(model: LogGainUNet, path: str) -> None:
  tmp = path + '.tmp'
  torch.save({'channels': model.channels, 'log_eps': model.log_eps,
              'state_dict': model.state_dict()}, tmp)
  os.replace(tmp, path)


def load_model(path: str) -> LogGainUNet:
  if not os.path.exists(path):
    raise train_lib.ConfigError(f'{path}: no such file (train first, '
                                'without --skip_train)')
  saved = torch.load(path, weights_only=True)
  model = LogGainUNet(saved['channels'], saved['log_eps'])
  model.load_state_dict(saved['state_dict'])
  return model.to(memory_format=torch.channels_last)


def denoise(model: nn.Module, mel: np.ndarray, multiple: int) -> np.ndarray:
  """The mean of the model on a whole file and on it reversed in time.

  Time is padded with the edge frames to a multiple of the pooling (any
  padding value would reach the log as power) and cropped back.
  """
  frames = mel.shape[1]
  padded = np.pad(mel, ((0, 0), (0, -frames % multiple)), mode='edge')
  x = _to_torch(padded[None, :, :, None])
  model.eval()
  with torch.no_grad():
    y = model(torch.cat([x, x.flip(-1)]))
  mean = (y[0] + y[1].flip(-1)) / 2
  return mean[0, :, :frames].numpy()


def output_paths(noisy_dir: str, out_dir: str,
                 overwrite: bool) -> List[Tuple[str, str]]:
  """(noisy file, output file) pairs; refuses existing outputs up front."""
  if os.path.realpath(out_dir) == os.path.realpath(noisy_dir):
    raise mel_io.MelFileError(f'{out_dir}: is the noisy folder; choose '
                              'another --out')
  pairs = [(p, os.path.join(out_dir, os.path.basename(p)))
           for p in mel_io.list_files(noisy_dir, (mel_io.MEL_SUFFIX,))]
  for _, out in pairs:
    mel_io.refuse_overwrite(out, overwrite)
  return pairs


def run(config: ml_collections.ConfigDict, workdir: str, noisy_dir: str,
        out_dir: str, recipe: Recipe, skip_train: bool = False,
        overwrite: bool = False) -> None:
  """Trains (unless skip_train), saves WORKDIR/winner.pt, denoises a folder."""
  weights = os.path.join(workdir, WEIGHTS)
  mel_io.refuse_overwrite(weights, overwrite or skip_train)  # Read if skipped.
  pairs = output_paths(noisy_dir, out_dir, overwrite)
  if skip_train:
    model = load_model(weights)
  else:
    model, _ = train_model(config, recipe)
    os.makedirs(workdir, exist_ok=True)
    save_model(model, weights)
  os.makedirs(out_dir, exist_ok=True)
  for src, dst in pairs:
    mel = mel_io.load_mel(src, config.audio.n_mels)
    mel_io.save_mel(dst, denoise(model, mel, model.multiple), overwrite)
  logging.info('%d files denoised into %s', len(pairs), out_dir)


def _define_flags() -> None:
  default = Recipe()
  flags.DEFINE_string('workdir', None, f'Where {WEIGHTS} goes.')
  flags.DEFINE_string('noisy', None, 'Folder of noisy .npy power mels.')
  flags.DEFINE_string('out', None, 'Output folder; default WORKDIR/denoised.')
  flags.DEFINE_bool('skip_train', False,
                    f'Only denoise, with WORKDIR/{WEIGHTS}.')
  flags.DEFINE_bool('overwrite', False, 'Replace existing weights and outputs.')
  flags.DEFINE_list('channels', [str(c) for c in default.channels],
                    'U-Net channels per level.')
  flags.register_validator(
      'channels', lambda v: bool(v) and all(c.isdigit() and int(c) for c in v),
      '--channels must be positive integers')
  flags.DEFINE_float('learning_rate', default.learning_rate, 'AdamW peak lr.')
  flags.DEFINE_float('weight_decay', default.weight_decay, 'AdamW decay.')
  flags.DEFINE_enum('schedule', default.schedule, ['onecycle', 'constant'],
                    'Learning-rate schedule over config.train.num_steps.')
  flags.DEFINE_float('log_eps', default.log_eps, 'Power added before the log.')
  cli.define_config_flag()
  flags.mark_flags_as_required(['config', 'workdir', 'noisy'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  logs.quiet_library_logs()
  torch.set_num_threads(len(os.sched_getaffinity(0)))
  args = flags.FLAGS
  recipe = Recipe(tuple(int(c) for c in args.channels), args.learning_rate,
                  args.weight_decay, args.schedule, args.log_eps)
  try:
    run(args.config, args.workdir, args.noisy,
        args.out or os.path.join(args.workdir, 'denoised'), recipe,
        args.skip_train, args.overwrite)
  except (train_lib.ConfigError, training_data.DataError, mel_io.MelFileError,
          fit_noise.NoiseFitError, FloatingPointError) as e:
    sys.exit(f'error: {e}')


if __name__ == '__main__':
  _define_flags()
  app.run(main, flags_parser=cli.parse_flags)
