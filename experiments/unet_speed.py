"""Where configs/denoise.py's training step spends its time: examples/s of
the jitted step on one fixed batch, with one piece of the recipe changed.

  python -m experiments.unet_speed                 # every variant
  python -m experiments.unet_speed residual xla    # some of them

Host memory is kept for reuse as in python -m mel_ae.main; batch 16 of
128x128 crops, 30 timed steps after 3 warm-up ones.
"""
import functools
import sys
import time

import jax
import numpy as np

from configs import denoise
from mel_ae import features
from mel_ae import mel_io
from mel_ae import train
from mel_ae.backends import host_memory

VARIANTS = {
    'recipe': {},  # the 'kernel' output that the gain family gets
    'residual': {'model.output_mode': 'residual'},
    'model_domain_loss': {'train.loss': 'model'},
    'no_batch_norm': {'model.batch_norm': False},
    'xla': {'runtime.conv_impl': 'xla'},
    'no_phase_upsample': {'runtime.phase_upsample': False},
}
_BATCH, _STEPS = 16, 30


def examples_per_second(overrides) -> float:
  config = denoise.get_config()
  config.model.output_mode = 'kernel'
  for key, value in overrides.items():
    section, field = key.split('.')
    config[section][field] = value
  mels = [mel_io.load_mel(p) for p in mel_io.list_files(config.data.train_dir)]
  normalizer = features.fit_normalizer(mels, kind='log')
  shape = (_BATCH, config.audio.n_mels, config.data.crop_frames, 1)
  state = train.create_train_state(jax.random.PRNGKey(0), config, shape)
  step = jax.jit(functools.partial(
      train.train_step, loss=train.make_loss(config.train, normalizer)),
                 donate_argnums=0)
  long_enough = [m for m in mels if m.shape[1] >= shape[2]][:_BATCH]
  clean = np.stack([normalizer.forward(m[:, :shape[2]])
                    for m in long_enough])[..., None].astype(np.float32)
  batch = {'input': clean, 'target': clean}
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
  for name in names or VARIANTS:
    print(f'{name}: {examples_per_second(VARIANTS[name]):.1f} examples/s',
          flush=True)


if __name__ == '__main__':
  main(sys.argv[1:])
