r"""What the CPU back-ends' BatchNorm and max-pool drop-ins buy the recipe's
step: configs/denoise.py's U-Net trained on one fixed batch with flax's
BatchNorm and XLA's max pool, with only the max pool's masked gradient, and
with both drop-ins (mel_ae/layers.py), every variant interleaved.

  python -m experiments.benchmarks.cpu_layers                       # float32 and bfloat16
  python -m experiments.benchmarks.cpu_layers --dtypes=float32 --rounds=3

Host memory kept for reuse as in python -m mel_ae.main; batch 16 of 128x128
crops; examples/s, the median of `--rounds` windows of `--steps` steps.
"""
import argparse
import functools
import statistics
import time

from mel_ae.backends import host_memory

host_memory.reuse_freed_memory()  # Before JAX starts its threads.

# pylint: disable=g-import-not-at-top,wrong-import-position
import flax.linen as nn
import jax

from experiments.benchmarks import unet_speed
from mel_ae import backends
from mel_ae import layers
from mel_ae import recipes
from mel_ae import train
from mel_ae import training_data

# Which of flax's / XLA's own layers each variant puts back.
VARIANTS = {
    'flax BatchNorm, XLA max pool': ('norm', 'max_pool'),
    'flax BatchNorm, masked max pool': ('norm',),
    'both drop-ins (what runs)': (),
}
_REFERENCE = {'norm': nn.BatchNorm, 'max_pool': layers.max_pool}


def _layers(runtime, dtype: str, reference) -> dict:
  chosen = dict(backends.layers_for(runtime, dtype))
  for name in reference:
    chosen[name] = _REFERENCE[name]
  if 'norm' in reference and dtype != 'float32':
    chosen['norm'] = functools.partial(nn.BatchNorm, dtype=jax.numpy.dtype(
        dtype))
  return chosen


def _step(data, dtype: str, form: str, reference):
  """A compiled, warmed-up step and its state, for the variant."""
  config = unet_speed.recipe_config()
  config.model.output_mode = form
  config.train.compute_dtype = dtype
  recipe = recipes.Recipe.of(config)
  model = recipe.module(**_layers(config.runtime, dtype, reference))
  shape = (16, config.audio.n_mels, config.data.crop_frames, 1)
  variables = model.init(jax.random.PRNGKey(0), jax.numpy.zeros(shape),
                         train=False)
  state = train.TrainState.create(
      apply_fn=model.apply, params=variables['params'],
      batch_stats=variables['batch_stats'],
      tx=train.create_optimizer(recipe.train))
  step = jax.jit(functools.partial(train.train_step,
                                   loss=recipe.loss(data.normalizer)),
                 donate_argnums=0)
  batch = unet_speed.one_batch(data, shape[2])
  for _ in range(3):
    state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  return step, state, batch


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--dtypes', default='float32,bfloat16')
  parser.add_argument('--rounds', type=int, default=5)
  parser.add_argument('--steps', type=int, default=10)
  args = parser.parse_args()
  data = training_data.load_data(unet_speed.recipe_config())
  runs = {(dtype, form, name): list(_step(data, dtype, form, reference))
          for dtype in args.dtypes.split(',')
          for form in ('residual', 'kernel')
          for name, reference in VARIANTS.items()}
  rates = {key: [] for key in runs}
  for _ in range(args.rounds):
    for key, run in runs.items():
      step, state, batch = run
      start = time.perf_counter()
      for _ in range(args.steps):
        state, metrics = step(state, batch)
      jax.block_until_ready(metrics)
      run[1] = state
      rates[key].append(16 * args.steps / (time.perf_counter() - start))
  print('| compute | output | layers | examples/s (median) | windows |')
  print('|---|---|---|---:|---|')
  for (dtype, form, name), values in rates.items():
    print(f'| {dtype} | {form} | {name} | {statistics.median(values):.1f} | '
          + ' '.join(f'{v:.1f}' for v in values) + ' |')


if __name__ == '__main__':
  main()
