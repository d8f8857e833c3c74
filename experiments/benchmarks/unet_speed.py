"""Where configs/denoise.py's training step spends its time: examples/s of
the jitted step on one fixed batch, with one piece of the recipe changed.

  python -m experiments.benchmarks.unet_speed                 # every variant
  python -m experiments.benchmarks.unet_speed residual xla    # some of them

Host memory is kept for reuse as in python -m mel_ae.main; batch 16 of
128x128 crops, 30 timed steps after 3 warm-up ones.
"""
import functools
import sys
import time

import jax
import numpy as np

from configs import denoise
from mel_ae import recipes
from mel_ae import train
from mel_ae import training_data
from mel_ae.backends import host_memory

VARIANTS = {
    'recipe': {},  # the 'kernel' output that the gain family gets
    'residual': {'model.output_mode': 'residual'},
    'residual_whole_crops': {'model.output_mode': 'residual',
                             'train.output_forms.residual.loss_border_frames': 0},
    'model_domain_loss': {'train.loss': 'model'},
    'no_batch_norm': {'model.batch_norm': False},
    'xla': {'runtime.conv_impl': 'xla'},
    'no_phase_upsample': {'runtime.phase_upsample': False},
}
_BATCH, _STEPS = 16, 30


def recipe_config():
  config = denoise.get_config()
  config.model.output_mode = 'kernel'
  return config


def one_batch(data: training_data.Data, frames: int) -> dict:
  """The first _BATCH training files long enough, cropped, model domain."""
  crops = [m[:, :frames] for m in data.train if m.shape[1] >= frames]
  clean = np.stack(crops[:_BATCH])[..., None].astype(np.float32)
  return {'input': clean, 'target': clean}


def examples_per_second(overrides, data: training_data.Data) -> float:
  config = recipe_config()
  config.update_from_flattened_dict(overrides)
  shape = (_BATCH, config.audio.n_mels, config.data.crop_frames, 1)
  state = train.create_train_state(jax.random.PRNGKey(0), config, shape)
  step = jax.jit(functools.partial(
      train.train_step, loss=recipes.Recipe.of(config).loss(data.normalizer)),
                 donate_argnums=0)
  batch = one_batch(data, shape[2])
  for _ in range(3):
    state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  start = time.perf_counter()
  for _ in range(_STEPS):
    state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  return _BATCH * _STEPS / (time.perf_counter() - start)


def main(names) -> None:
  host_memory.reuse_freed_memory()  # Before JAX starts its threads.
  data = training_data.load_data(recipe_config())
  for name in names or VARIANTS:
    print(f'{name}: {examples_per_second(VARIANTS[name], data):.1f} '
          'examples/s', flush=True)


if __name__ == '__main__':
  main(sys.argv[1:])
