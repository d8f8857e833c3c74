"""The seed autoencoder in PyTorch and Keras, for side-by-side benchmarks.

Same architecture as the Flax seed (32,513 trainable params):
MaxPool 2x2 -> Conv 8, 16, 32 (5x5, same, BN, ReLU) -> nearest 2x upsample ->
Conv 16, 8 (5x5, same, BN, ReLU) -> Conv 1 (3x3) -> sigmoid.
Each peer runs in its fastest float32 configuration measured here
(PERF_NOTES.md): PyTorch eager with channels_last, Keras 3 on TensorFlow with
`jit_compile=False`; PyTorch also in mixed precision, the same model under
`torch.autocast('cpu', dtype=torch.bfloat16)` (convs in bf16 on oneDNN,
parameters and optimizer float32, the MSE in float32 by autocast's rules).
A trainer trains on one fixed random batch held on the
device and synchronises at the end of every step, so timing calls is fair.
torch / tensorflow are imported lazily: this module imports without them.

  python -m experiments.benchmarks.peers   # param counts and a quick timing
"""
import functools
import os
import time
from typing import Callable

ENCODER = (8, 16, 32)  # 5x5 convs after the 2x2 max-pool
DECODER = (16, 8)      # 5x5 convs after the 2x nearest upsample
SEED_PARAMS = 32_513


class PeerTrainer:
  """A callable that runs one training step and returns the loss."""

  def __init__(self, framework: str, step: Callable[[], float],
               n_params: int):
    self.framework = framework
    self._step = step
    self._n_params = n_params

  def __call__(self) -> float:
    return self._step()

  def param_count(self) -> int:
    """Trainable parameters (BatchNorm's running statistics excluded)."""
    return self._n_params


def make_torch_trainer(batch_size: int, crop: tuple[int, int] = (128, 128),
                       seed: int = 0, bf16_autocast: bool = False
                       ) -> PeerTrainer:
  """PyTorch eager, channels_last, float32 (or bfloat16 autocast); MSE +
  Adam(1e-3)."""
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top

  torch.manual_seed(seed)
  model = _torch_model(nn).to(memory_format=torch.channels_last)
  opt = torch.optim.Adam(model.parameters(), lr=1e-3)
  x = torch.rand(batch_size, 1, *crop).to(memory_format=torch.channels_last)
  model.train()

  def step() -> float:
    opt.zero_grad(set_to_none=True)
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16_autocast):
      loss = nn.functional.mse_loss(model(x), x)
    loss.backward()
    opt.step()
    return loss.item()  # synchronises

  n = sum(p.numel() for p in model.parameters() if p.requires_grad)
  name = f'torch {torch.__version__}' + (
      ' bf16 autocast' if bf16_autocast else '')
  return PeerTrainer(name, step, n)


def _torch_model(nn):
  """Keras-like init and BN constants, so the peers train the same model."""
  def block(cin, cout):
    conv = nn.Conv2d(cin, cout, 5, padding='same')
    nn.init.xavier_uniform_(conv.weight)
    nn.init.zeros_(conv.bias)
    # Keras BN: momentum 0.99 (running = 0.99 old + 0.01 new), eps 1e-3.
    return [conv, nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01), nn.ReLU()]

  chans = (1,) + ENCODER
  layers = [nn.MaxPool2d(2)]
  for cin, cout in zip(chans, chans[1:]):
    layers += block(cin, cout)
  layers.append(nn.Upsample(scale_factor=2, mode='nearest'))
  chans = ENCODER[-1:] + DECODER
  for cin, cout in zip(chans, chans[1:]):
    layers += block(cin, cout)
  head = nn.Conv2d(DECODER[-1], 1, 3, padding='same')
  nn.init.xavier_uniform_(head.weight)
  nn.init.zeros_(head.bias)
  return nn.Sequential(*layers, head, nn.Sigmoid())


def make_keras_trainer(batch_size: int, crop: tuple[int, int] = (128, 128),
                       seed: int = 0) -> PeerTrainer:
  """Keras 3 on TensorFlow, graph mode without XLA; MSE + Adam(1e-3)."""
  os.environ.setdefault('KERAS_BACKEND', 'tensorflow')
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  if keras.backend.backend() != 'tensorflow':
    raise RuntimeError(f'Keras runs on {keras.backend.backend()}; set '
                       'KERAS_BACKEND=tensorflow before importing keras')
  keras.utils.set_random_seed(seed)
  model = _keras_model(keras, crop)
  # XLA (Keras' default 'auto') is ~3x slower on this CPU (PERF_NOTES.md).
  model.compile(optimizer=keras.optimizers.Adam(1e-3), loss='mse',
                jit_compile=False)
  x = tf.random.uniform((batch_size, *crop, 1), seed=seed)

  def step() -> float:
    return float(model.train_on_batch(x, x))  # a host float: synchronised

  n = sum(int(w.shape.num_elements()) for w in model.trainable_weights)
  return PeerTrainer(f'keras {keras.__version__} / tf {tf.__version__}',
                     step, n)


def _keras_model(keras, crop):
  layers = keras.layers

  def block(cout):
    return [layers.Conv2D(cout, 5, padding='same'),
            layers.BatchNormalization(), layers.ReLU()]

  stack = [layers.Input((*crop, 1)), layers.MaxPooling2D(2)]
  for cout in ENCODER:
    stack += block(cout)
  stack.append(layers.UpSampling2D(2))  # nearest by default
  for cout in DECODER:
    stack += block(cout)
  stack.append(layers.Conv2D(1, 3, padding='same', activation='sigmoid'))
  return keras.Sequential(stack)


def examples_per_second(trainer: PeerTrainer, batch_size: int,
                        seconds: float = 3.0) -> float:
  """Quick steady-state rate after two warm-up steps (not a benchmark)."""
  trainer()
  trainer()
  n, t0 = 0, time.perf_counter()
  while time.perf_counter() - t0 < seconds:
    trainer()
    n += 1
  return n * batch_size / (time.perf_counter() - t0)


def main() -> None:
  batch = 32
  for make in (make_torch_trainer,
               functools.partial(make_torch_trainer, bf16_autocast=True),
               make_keras_trainer):
    try:
      trainer = make(batch)
    except ImportError as e:  # torch or tensorflow not installed
      print(f'skipped: {e}')
      continue
    count = trainer.param_count()
    assert count == SEED_PARAMS, (trainer.framework, count)
    rate = examples_per_second(trainer, batch)
    print(f'{trainer.framework}: {count} params, {rate:.1f} examples/s')


if __name__ == '__main__':
  main()
