"""Training and evaluation of mel autoencoders; knows nothing of argv."""
import dataclasses
import functools
import os
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from absl import logging
from flax.training import train_state
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from mel_ae import audio
from mel_ae import backends
from mel_ae import checkpointing
from mel_ae import features
from mel_ae import inference
from mel_ae import input_pipeline
from mel_ae import metrics
from mel_ae import models
from mel_ae import noise_bank
from mel_ae import report
from mel_ae import writers


class TrainState(train_state.TrainState):
  batch_stats: Any


class ConfigError(ValueError):
  """A config value that cannot work; the message names the field."""


def _train_checks(t, noise):
  return [
      (t.num_steps >= 1 and t.batch_size >= 1,
       'train.num_steps and train.batch_size must be >= 1'),
      (t.batch_size % jax.device_count() == 0,
       f'train.batch_size={t.batch_size} is not a multiple of the '
       f'{jax.device_count()} devices'),
      (min(t.log_every, t.eval_every, t.checkpoint_every) >= 1,
       'train.log_every, eval_every and checkpoint_every must be >= 1'),
      (t.lr_schedule in ('constant', 'cosine'),
       "train.lr_schedule must be 'constant' or 'cosine'"),
      (t.mode in ('autoencoder', 'denoise'),
       "train.mode must be 'autoencoder' or 'denoise'"),
      (t.best_metric in ('val_power_mse', 'val_mse'),
       "train.best_metric must be 'val_power_mse' or 'val_mse'"),
      (set(noise.kinds) <= set(noise_bank.KINDS),
       f'noise.kinds must be among {noise_bank.KINDS}'),
      (len(noise.snr_db) == 2 and noise.snr_db[0] <= noise.snr_db[1],
       'noise.snr_db must be (low, high)'),
  ] + [(len(noise[name]) == 2 and 0 < noise[name][0] <= noise[name][1],
         f'noise.{name} must be (low, high) with 0 < low <= high')
        for name in ('freq_scale', 'babble_freq_scale')]


def _data_checks(d, pool: int, infer):
  checks = [
      (d.crop_frames >= pool and d.crop_frames % pool == 0,
       f'data.crop_frames={d.crop_frames} is not a multiple of model.pool={pool}'),
      (d.transform in ('root', 'db'), "data.transform must be 'root' or 'db'"),
      (0 <= d.val_fraction < 1, 'data.val_fraction must be in [0, 1)'),
      (infer.chunk_frames % pool == 0 and infer.margin_frames % pool == 0,
       'infer.chunk_frames and infer.margin_frames must be multiples of '
       'model.pool'),
      (os.path.isdir(d.train_dir), f'data.train_dir {d.train_dir} does not exist'),
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


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Rejects impossible settings before anything loads or compiles."""
  checks = (models.check_config(config)
            + backends.check_config(config.runtime)
            + _train_checks(config.train, config.noise)
            + _data_checks(config.data, config.model.pool, config.infer))
  for ok, message in checks:
    if not ok:
      raise ConfigError(message)


def create_optimizer(t: ml_collections.ConfigDict) -> optax.GradientTransformation:
  lr = t.learning_rate
  if t.lr_schedule == 'cosine':
    lr = optax.warmup_cosine_decay_schedule(
        0.0, t.learning_rate, max(t.warmup_steps, 1), t.num_steps)
  adam = optax.adam(lr, eps=t.adam_eps)
  if t.grad_clip_norm > 0:
    return optax.chain(optax.clip_by_global_norm(t.grad_clip_norm), adam)
  return adam


def create_train_state(rng: jax.Array, config: ml_collections.ConfigDict,
                       input_shape: Tuple[int, ...]) -> TrainState:
  model = models.build_model(config.model,
                             **backends.layers_for(config.runtime))
  variables = model.init(rng, jnp.zeros(input_shape, jnp.float32), train=False)
  return TrainState.create(apply_fn=model.apply, params=variables['params'],
                           batch_stats=variables.get('batch_stats', {}),
                           tx=create_optimizer(config.train))


# Initialisation runs once and does next to no arithmetic, yet XLA's backend
# optimisation of it took 5 s of a 17.5 s cold start on the 2-core CPU
# (0.8 s without); the values are the same bits either way (tested).
_INIT_COMPILER_OPTIONS = {'xla_backend_optimization_level': 0}


def init_train_state(init: Callable[[], TrainState], sharding) -> TrainState:
  """Runs `init` (no arguments) jitted, compiled for speed of compilation."""
  return jax.jit(init, out_shardings=sharding).lower().compile(
      compiler_options=_INIT_COMPILER_OPTIONS)()


def mse(pred: jax.Array, target: jax.Array) -> jax.Array:
  return jnp.mean((pred - target) ** 2)


def make_loss(train_config, normalizer: features.Normalizer):
  """MSE in the model domain, weighted toward the raw-power metric.

  The weight 1 + w * P'(target)^2 is the first-order expansion of the MSE in
  raw power P around the target: loud bins, where the competition metric
  lives, count more, with none of the blow-up of taking P of a prediction.
  """
  weight = train_config.loss_power_weight
  if not weight:
    return mse

  def loss(pred, target):
    power = functools.partial(normalizer.inverse, xp=jnp)
    _, slope = jax.jvp(power, (target,), (jnp.ones_like(target),))
    return jnp.mean((1.0 + weight * slope ** 2) * (pred - target) ** 2)
  return loss


def train_step(state: TrainState, batch: Dict[str, jax.Array], loss=mse):
  """One Adam step on loss(model(input), target); target defaults to input."""
  target = batch.get('target', batch['input'])

  def loss_fn(params):
    recon, updates = state.apply_fn(
        {'params': params, 'batch_stats': state.batch_stats}, batch['input'],
        train=True, mutable=['batch_stats'])
    return loss(recon, target), updates

  (loss, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params)
  state = state.apply_gradients(grads=grads,
                                batch_stats=updates.get('batch_stats', {}))
  return state, {'loss': loss}


def eval_step(state: TrainState, windows: jax.Array) -> jax.Array:
  """Reconstructions with the running BatchNorm statistics."""
  return state.apply_fn({'params': state.params,
                         'batch_stats': state.batch_stats}, windows,
                        train=False)


@dataclasses.dataclass(frozen=True)
class Data:
  """What training reads. `train`/`val` are in the model domain;
  `train_power` and `noisy` (unpaired noisy files) in raw power."""
  normalizer: features.Normalizer
  train: Tuple[np.ndarray, ...]
  val: Tuple[np.ndarray, ...]
  test: Optional[Tuple[input_pipeline.MelFolder, input_pipeline.MelFolder]]
  train_power: Tuple[np.ndarray, ...]
  noisy: Tuple[np.ndarray, ...]


def load_data(config: ml_collections.ConfigDict,
              normalizer: Optional[features.Normalizer] = None) -> Data:
  """Loads the clean files, splits off validation, fits the normaliser."""
  d = config.data
  spec = audio.MelSpec.from_config(config.audio)
  clean = input_pipeline.load_folder(d.train_dir, spec, config.model.pool)
  train_idx, val_idx = input_pipeline.split_validation(
      len(clean.mels), d.val_fraction, config.seed)
  if normalizer is None:
    try:
      normalizer = features.fit_normalizer(
          [clean.mels[i] for i in train_idx], d.transform, d.root, d.top_db)
    except ValueError as e:  # All-zero files: a data problem, one line.
      raise ConfigError(f'data.train_dir {d.train_dir}: {e}') from None
  test = None
  if d.test_noisy_dir:
    test = input_pipeline.load_pairs(d.test_noisy_dir, d.test_clean_dir, spec,
                                     config.model.pool)
  noisy = ()
  if d.noisy_dir and config.train.mode == 'denoise':
    noisy = input_pipeline.load_folder(d.noisy_dir, spec, 1).mels
  train_power = tuple(clean.mels[i] for i in train_idx)
  return Data(normalizer, tuple(normalizer.forward(m) for m in train_power),
              tuple(normalizer.forward(clean.mels[i]) for i in val_idx), test,
              train_power, noisy)


def make_sampler(config: ml_collections.ConfigDict, data: Data):
  """step -> batch dict of numpy arrays, for the configured training mode."""
  d, t = config.data, config.train
  if t.mode == 'autoencoder':
    crops = input_pipeline.CropSampler(data.train, d.crop_frames, t.batch_size,
                                       config.seed)
    return lambda step: {'input': crops(step)}
  spec = audio.MelSpec.from_config(config.audio)
  bank = noise_bank.build_noise_bank(config.noise, spec, data.train_power,
                                     data.noisy, config.seed)
  return input_pipeline.NoisyCropSampler(
      data.train_power, bank, data.normalizer, d.crop_frames, t.batch_size,
      config.seed, config.noise, audio.band_centres_hz(spec))


def _shardings():
  mesh = jax.make_mesh((jax.device_count(),), ('data',),
                       axis_types=(jax.sharding.AxisType.Auto,))
  return (jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()),
          jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('data')))


def _to_global(batch: np.ndarray, sharding) -> jax.Array:
  """This process's rows of a global batch, as one sharded array."""
  rows = len(batch) // jax.process_count()
  local = batch[jax.process_index() * rows:(jax.process_index() + 1) * rows]
  return jax.make_array_from_process_local_data(sharding, local)


def _denoise_test(state: TrainState, data: Data, config) -> List[np.ndarray]:
  """The paired test set's noisy files denoised by the current model."""
  variables = {'params': state.params, 'batch_stats': state.batch_stats}
  model = models.build_model(config.model,
                             **backends.layers_for(config.runtime))
  return inference.denoise_power(model, variables, data.normalizer,
                                 data.test[0].mels, config.infer)


def evaluate(state: TrainState, data: Data, config, eval_fn, data_sharding):
  """Validation MSEs and the test set's competition MSE.

  Returns the metrics and the denoised test files (None without a test set).
  """
  results, denoised = {}, None
  if data.val:
    windows, mask = input_pipeline.tile_windows(data.val, config.data.crop_frames)
    recon = np.concatenate([
        np.asarray(eval_fn(state, _to_global(w, data_sharding)))
        for (w,) in input_pipeline.batches([windows],
                                           config.train.eval_batch_size)
    ])[:len(windows)]
    weight = np.broadcast_to(mask, windows.shape)
    results['val_mse'] = float(np.average((recon - windows) ** 2,
                                          weights=weight))
    # In raw power, comparable across transforms (the competition's domain).
    results['val_power_mse'] = float(np.average(
        (data.normalizer.inverse(recon) - data.normalizer.inverse(windows))**2,
        weights=weight))
  if data.test:
    noisy, clean = data.test
    denoised = _denoise_test(state, data, config)
    results['test_mse'] = float(np.mean([
        metrics.competition_mse(p, c) for p, c in zip(denoised, clean.mels)]))
    results['test_noisy_mse'] = float(np.mean([
        metrics.competition_mse(n, c) for n, c in zip(noisy.mels, clean.mels)]))
  return results, denoised


def _log_progress(step: int, num_steps: int, loss: float, rate: float,
                  batch_size: int) -> None:
  eta = (num_steps - step) * batch_size / max(rate, 1e-9)
  logging.info('step %d/%d  loss %.5f  %.1f examples/s  ETA %dm%02ds', step,
               num_steps, loss, rate, eta // 60, eta % 60)


def _fetch_losses(pending, step: int, last_saved: Optional[int]) -> float:
  """Mean of the losses since the last fetch; stops on a non-finite one."""
  losses = np.asarray(jax.device_get(pending))
  if not np.all(np.isfinite(losses)):
    raise FloatingPointError(
        f'non-finite loss by step {step}; last good checkpoint: '
        f'{last_saved or "none"}')
  return float(losses.mean())


def _check_finite(state: TrainState, step: int, last_saved) -> None:
  """No checkpoint holding NaN or inf is ever written."""
  finite = jax.tree_util.tree_map(lambda x: jnp.all(jnp.isfinite(x)),
                                  (state.params, state.batch_stats))
  if not all(jax.device_get(jax.tree_util.tree_leaves(finite))):
    raise FloatingPointError(
        f'non-finite parameters at step {step}; last good checkpoint: '
        f'{last_saved if last_saved else "none"}')


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str) -> TrainState:
  """Trains (resuming from WORKDIR/checkpoints if any) and evaluates."""
  validate_config(config)
  t = config.train
  os.makedirs(workdir, exist_ok=True)
  manager = checkpointing.create_manager(workdir, t.keep_checkpoints)
  replicated, data_sharding = _shardings()
  input_shape = (t.batch_size, config.audio.n_mels, config.data.crop_frames, 1)
  init = functools.partial(create_train_state, jax.random.PRNGKey(config.seed),
                           config, input_shape)
  abstract = jax.tree_util.tree_map(
      lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated),
      jax.eval_shape(init))
  start, state, meta = checkpointing.resume(manager, workdir,
                                            config.to_dict(), abstract)
  data = load_data(config, meta and features.Normalizer.from_dict(
      meta['normalizer']))
  if state is None:
    state = init_train_state(init, replicated)
  logging.info('Model: %d trainable parameters',
               models.count_params(state.params))
  step_fn = jax.jit(functools.partial(train_step, loss=make_loss(
      t, data.normalizer)), in_shardings=(replicated, data_sharding),
                    out_shardings=(replicated, replicated), donate_argnums=0)
  eval_fn = jax.jit(eval_step)
  sampler = make_sampler(config, data)
  writer = writers.MetricWriter(workdir, start)
  meta = {'config': config.to_dict(), 'normalizer': data.normalizer.to_dict()}
  pending, last_saved, test_outputs = [], start, None
  window_start, window_step = time.perf_counter(), start
  try:
    for step in range(int(state.step) + 1, t.num_steps + 1):
      batch = {k: _to_global(v, data_sharding)
               for k, v in sampler(step).items()}
      state, step_metrics = step_fn(state, batch)
      pending.append(step_metrics['loss'])
      is_last = step == t.num_steps
      if step % t.log_every and step % t.eval_every and (
          step % t.checkpoint_every and not is_last):
        continue
      row = {'train_loss': _fetch_losses(pending, step, last_saved)}
      pending = []
      now = time.perf_counter()
      row['examples_per_sec'] = (step - window_step) * t.batch_size / (
          now - window_start)
      metric = None
      if step % t.eval_every == 0 or is_last:
        results, test_outputs = evaluate(state, data, config, eval_fn,
                                         data_sharding)
        row.update(results)
        if t.best_metric in results:
          metric = (t.best_metric, results[t.best_metric])
      writer.write(step, row)
      _log_progress(step, t.num_steps, row['train_loss'],
                    row['examples_per_sec'], t.batch_size)
      if step % t.checkpoint_every == 0 or is_last:
        _check_finite(state, step, last_saved)
        checkpointing.save(manager, step, state, meta, metric)
        last_saved = step
      window_start, window_step = time.perf_counter(), step
  finally:
    # Also when stopping on an error: the checkpoint a message names as
    # the last good one must be complete, not abandoned mid-save.
    manager.wait_until_finished()
    manager.close()
  writer.close()
  best = checkpointing.best_step(str(manager.directory), manager.all_steps())
  if data.test:
    path = report.write_report(
        workdir, int(state.step),
        test_outputs or _denoise_test(state, data, config), data.test,
        data.normalizer, audio.MelSpec.from_config(config.audio),
        f'The best checkpoint by {t.best_metric} is step {best}: '
        f"`mel_ae.load(workdir, step='best')`." if best else '')
    logging.info('Test-set report: %s', path)
  return state
