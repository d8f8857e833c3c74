"""configs/denoise.py's U-Net in PyTorch, for side-by-side benchmarks.

An exact port of mel_ae/models.py `UNet` as configs/denoise.py builds it:
levels of 16, 32, 64 channels, two 3x3 convs (bias, BatchNorm momentum 0.9
in flax's convention = 0.1 in PyTorch's, eps 1e-5, ReLU) per level, 2x2 max
pools down, a nearest 2x upsample + 3x3 conv (bias, ReLU, no BatchNorm) up,
the level's encoder output concatenated after it, and a zero-initialised 1x1
output conv in float32: 'residual' adds one channel to the input, 'kernel'
(`output_forms.kernel_output`) weighs a 3x7 window of the input's neighbours with
21 softmax logits and a gain. The loss is recipes.Recipe.loss's 'power' loss
(raw-power MSE + 0.3 x log-spectral MSE, 16 border frames out for
'residual'), the optimizer AdamW (eps 1e-7, weight decay 1e-2 on every
parameter, as optax's) on optax's cosine one-cycle schedule. PyTorch eager,
channels_last, float32 or `torch.autocast('cpu', dtype=torch.bfloat16)`
(the output conv and the loss in float32 either way, as in JAX).

Both frameworks train on `synthetic_batch`: model-domain (log power) noisy
inputs and clean targets, numpy, the same bits for both.

  python -m experiments.benchmarks.unet_peer   # param counts, one JAX vs
                                               # PyTorch step from the same
                                               # weights (needs JAX too)
"""
import dataclasses
import math
import sys
from typing import Dict, Tuple

import numpy as np

from experiments.benchmarks.peers import PeerTrainer
from mel_ae import features

CHANNELS = (16, 32, 64)
KERNEL_WINDOW = (3, 7)
OUTPUT_FORMS = ('residual', 'kernel')
# train.output_forms of configs/denoise.py over its train section.
PEAK_LR = {'residual': 1e-3, 'kernel': 1.2e-2}
BORDER_FRAMES = {'residual': 16, 'kernel': 0}
LOG_WEIGHT = 0.3
WEIGHT_DECAY = 1e-2
ADAM_EPS = 1e-7
NUM_STEPS = 2000  # configs/denoise.py's train.num_steps: the schedule's length
LSD_TOP_DB = 80.0  # mel_ae/metrics.py
MAX_LOG_GAIN = 30.0  # mel_ae/features.py


def synthetic_batch(batch_size: int, crop: Tuple[int, int] = (128, 128),
                    seed: int = 1) -> Tuple[Dict[str, np.ndarray],
                                            features.Normalizer]:
  """({'input', 'target'} NHWC float32 in the model domain, normaliser).

  Clean power with a few tens of dB of spread, noisy = clean + a noise floor;
  the log normaliser is fitted on the clean power as training fits it.
  """
  rng = np.random.default_rng(seed)
  shape = (batch_size, *crop)
  clean = np.exp(rng.normal(-6.0, 2.0, shape)) * rng.exponential(1.0, shape)
  noisy = clean + 1e-4 * rng.exponential(1.0, shape)
  normalizer = features.fit_normalizer(list(clean), kind='log')
  batch = {'input': normalizer.forward(noisy)[..., None],
           'target': normalizer.forward(clean)[..., None]}
  return batch, normalizer


def one_cycle(peak: float, steps: int = NUM_STEPS, pct_start: float = 0.3,
              div_factor: float = 25.0, final_div_factor: float = 1e4):
  """step -> learning rate: optax.cosine_onecycle_schedule (its defaults),
  constant past the end as optax's is (torch's OneCycleLR raises there)."""
  init, final = peak / div_factor, peak / div_factor / final_div_factor
  rise = int(pct_start * steps)

  def lr(step: int) -> float:
    if step < rise:
      t, a, b = step / rise, init, peak
    else:
      t, a, b = min(1.0, (step - rise) / (steps - rise)), peak, final
    return b + (a - b) * 0.5 * (1 + math.cos(math.pi * t))
  return lr


def torch_unet(output_form: str):
  """The U-Net as an nn.Module (NCHW), flax's initialisers."""
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  F = nn.functional

  def conv(cin, cout, k=3, zero=False):
    c = nn.Conv2d(cin, cout, k, padding='same')
    # flax: xavier_uniform kernels (zeros for the output conv), zero biases.
    (nn.init.zeros_ if zero else nn.init.xavier_uniform_)(c.weight)
    nn.init.zeros_(c.bias)
    return c

  def block(cin, cout):
    return nn.Sequential(
        conv(cin, cout), nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1),
        nn.ReLU(), conv(cout, cout),
        nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1), nn.ReLU())

  class UNet(nn.Module):
    """mel_ae.models.UNet(encoder_channels=(16, 32, 64), kernel_size=3,
    output_kernel_size=1)."""

    def __init__(self):
      super().__init__()
      ins = (1,) + CHANNELS[:-1]
      self.down = nn.ModuleList(block(a, b) for a, b in zip(ins, CHANNELS))
      ups = list(zip(CHANNELS[:0:-1], CHANNELS[-2::-1]))  # (64, 32), (32, 16)
      self.up = nn.ModuleList(conv(a, b) for a, b in ups)
      self.up_blocks = nn.ModuleList(block(2 * b, b) for _, b in ups)
      taps = KERNEL_WINDOW[0] * KERNEL_WINDOW[1]
      self.out = conv(CHANNELS[0], taps + 1 if output_form == 'kernel' else 1,
                      k=1, zero=True)

    def forward(self, inputs):
      skips, x = [], inputs
      for level, blk in enumerate(self.down):
        if level:
          x = F.max_pool2d(x, 2)
        x = blk(x)
        skips.append(x)
      for up, blk, skip in zip(self.up, self.up_blocks, skips[-2::-1]):
        x = F.relu(up(F.interpolate(x, scale_factor=2, mode='nearest')))
        x = blk(torch.cat([x, skip], dim=1))
      with torch.autocast('cpu', enabled=False):  # float32, as in JAX
        x = self.out(x.float())
      if output_form == 'kernel':
        return kernel_output(inputs.float(), x)
      return inputs + x

  return UNet()


def kernel_output(z, logits):
  """mel_ae.output_forms.kernel_output, NCHW."""
  import torch  # pylint: disable=g-import-not-at-top
  fh, fw = KERNEL_WINDOW
  zp = torch.nn.functional.pad(
      z[:, :1], (fw // 2, fw - 1 - fw // 2, fh // 2, fh - 1 - fh // 2),
      mode='replicate')
  h, w = z.shape[2:]
  shifted = torch.cat([zp[:, :, i:i + h, j:j + w]
                       for i in range(fh) for j in range(fw)], dim=1)
  weights = logits[:, :-1]
  mean = (torch.logsumexp(weights + shifted, dim=1, keepdim=True)
          - torch.logsumexp(weights, dim=1, keepdim=True))
  return logits[:, -1:] + mean


def power_loss(normalizer: features.Normalizer, border: int):
  """recipes.Recipe.loss for the 'power' loss (model-domain NCHW pred, target),
  frames on the last axis."""
  import torch  # pylint: disable=g-import-not-at-top
  n = normalizer

  def power(z):
    c = torch.clamp(z * n.scale + n.offset, max=n.offset + MAX_LOG_GAIN)
    return torch.clamp(torch.exp(c) - n.log_eps, min=0.0)

  def loss(pred, target):
    if border:
      pred, target = pred[..., border:-border], target[..., border:-border]
    p, q = power(pred), power(target)
    peak = torch.amax(q, dim=(1, 2, 3), keepdim=True)
    floor = torch.clamp(peak * 10.0 ** (-LSD_TOP_DB / 10.0), min=1e-10)
    log = lambda x: torch.log(torch.maximum(x, floor))
    return (torch.mean((p - q) ** 2)
            + LOG_WEIGHT * torch.mean((log(p) - log(q)) ** 2))
  return loss


@dataclasses.dataclass
class TorchUNetSetup:
  model: object
  optimizer: object
  scheduler: object
  loss: object
  x: object
  target: object


def torch_setup(batch_size: int, crop: Tuple[int, int], output_form: str,
                seed: int = 0) -> TorchUNetSetup:
  """Model (channels_last, training mode), AdamW, schedule, loss, batch."""
  import torch  # pylint: disable=g-import-not-at-top
  torch.manual_seed(seed)
  model = torch_unet(output_form).to(memory_format=torch.channels_last)
  model.train()
  opt = torch.optim.AdamW(model.parameters(), lr=PEAK_LR[output_form],
                          eps=ADAM_EPS, weight_decay=WEIGHT_DECAY)
  lr = one_cycle(PEAK_LR[output_form])
  sched = torch.optim.lr_scheduler.LambdaLR(
      opt, lambda step: lr(step) / PEAK_LR[output_form])
  batch, normalizer = synthetic_batch(batch_size, crop)
  nchw = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).contiguous(
      memory_format=torch.channels_last)
  return TorchUNetSetup(model, opt, sched,
                        power_loss(normalizer, BORDER_FRAMES[output_form]),
                        nchw(batch['input']), nchw(batch['target']))


def make_torch_trainer(batch_size: int, crop: Tuple[int, int] = (128, 128),
                       output_form: str = 'residual', seed: int = 0,
                       bf16_autocast: bool = False,
                       setup: TorchUNetSetup = None) -> PeerTrainer:
  """One training step per call on the fixed synthetic batch; returns the
  loss (a host float: synchronised)."""
  import torch  # pylint: disable=g-import-not-at-top
  s = setup or torch_setup(batch_size, crop, output_form, seed)

  def step() -> float:
    s.optimizer.zero_grad(set_to_none=True)
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16_autocast):
      loss = s.loss(s.model(s.x), s.target)
    loss.backward()
    s.optimizer.step()
    s.scheduler.step()
    return loss.item()

  n = sum(p.numel() for p in s.model.parameters() if p.requires_grad)
  name = f'torch {torch.__version__} U-Net {output_form}' + (
      ' bf16 autocast' if bf16_autocast else '')
  return PeerTrainer(name, step, n)


def load_flax_variables(model, variables) -> None:
  """Copies flax UNet variables ({'params', 'batch_stats'}) into the port.

  Flax names modules by class and order of creation: Conv_0..5 / BatchNorm_0..5
  down, then per level up UpsampleConv_i, two Convs and two BatchNorms, and
  the output Conv last."""
  import torch  # pylint: disable=g-import-not-at-top
  params, stats = variables['params'], variables.get('batch_stats', {})
  convs, norms = [], []
  for blk in list(model.down) + list(model.up_blocks):
    convs += [blk[0], blk[3]]
    norms += [blk[1], blk[4]]
  # Flax's order: down convs, then (up blocks') convs, then the output.
  pairs = [(f'Conv_{i}', c) for i, c in enumerate(convs + [model.out])]
  pairs += [(f'UpsampleConv_{i}', c) for i, c in enumerate(model.up)]
  t = lambda a: torch.from_numpy(np.asarray(a, np.float32).copy())
  with torch.no_grad():
    for name, conv in pairs:
      conv.weight.copy_(t(params[name]['kernel']).permute(3, 2, 0, 1))
      conv.bias.copy_(t(params[name]['bias']))
    for i, norm in enumerate(norms):
      name = f'BatchNorm_{i}'
      norm.weight.copy_(t(params[name]['scale']))
      norm.bias.copy_(t(params[name]['bias']))
      if name in stats:
        norm.running_mean.copy_(t(stats[name]['mean']))
        norm.running_var.copy_(t(stats[name]['var']))


def main(argv) -> None:
  """Param counts of both; losses of a few steps of each from the same
  initial weights on the same batch (JAX: train.train_step of
  configs/denoise.py)."""
  from experiments.benchmarks import benchmark  # pylint: disable=g-import-not-at-top
  steps = int(argv[0]) if argv else 3
  batch_size, crop = 4, (128, 128)
  for form in OUTPUT_FORMS:
    step, info, state = benchmark.jax_unet_trainer(
        batch_size, crop[1], form, return_state=True)
    s = torch_setup(batch_size, crop, form)
    load_flax_variables(s.model, {'params': state.params,
                                  'batch_stats': state.batch_stats})
    trainer = make_torch_trainer(batch_size, crop, form, setup=s)
    print(f'{form}: params JAX {info["params"]}, PyTorch '
          f'{trainer.param_count()}', flush=True)
    for i in range(steps):
      a, b = step(), trainer()
      print(f'  step {i + 1}: loss JAX {a:.7g}  PyTorch {b:.7g}  relative '
            f'difference {abs(a - b) / max(abs(a), 1e-30):.2e}', flush=True)


if __name__ == '__main__':
  main(sys.argv[1:])
