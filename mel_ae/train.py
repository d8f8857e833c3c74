"""Training and evaluation of mel autoencoders; knows nothing of argv.

Reads what the noise stage wrote (mel_ae/fit_noise.py) and leaves its
checkpoints and metrics, and what the test-set report (mel_ae/report.py)
needs, to the stages after it; it imports none of them.
"""
import dataclasses
import functools
import os
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from absl import logging
import flax.linen as nn
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
from mel_ae import fit_noise
from mel_ae import input_pipeline
from mel_ae import logs
from mel_ae import metrics
from mel_ae import models
from mel_ae import noise_bank
from mel_ae import pretrained
from mel_ae import recipes
from mel_ae import settings
from mel_ae import training_data
from mel_ae import whole_file
from mel_ae import writers


class TrainState(train_state.TrainState):
  batch_stats: Any


class ConfigError(ValueError):
  """A config value that cannot work; the message names the field."""


LR_SCHEDULES = ('constant', 'one_cycle')
ADAM_EPS = 1e-7  # Keras' default, as in the seed
# The share of its own validation windows whose clear speech loss
# (metrics.clear_speech_loss_db) the voice check lets exceed the limit it
# saves: the rate at which it may flag files of the voice a model knows.
VOICE_CHECK_SHARE = 0.05


def _train_checks(config) -> List[Tuple[bool, str]]:
  """The loop's own settings; the loss's are the recipe's (`recipes`)."""
  t = settings.section(config, 'train')
  return [
      (t.num_steps >= 1 and t.batch_size >= 1,
       'train.num_steps and train.batch_size must be >= 1'),
      (t.batch_size % jax.device_count() == 0,
       f'train.batch_size={t.batch_size} is not a multiple of the '
       f'{jax.device_count()} devices'),
      (min(t.log_every, t.eval_every, t.checkpoint_every) >= 1,
       'train.log_every, eval_every and checkpoint_every must be >= 1'),
      (t.lr_schedule in LR_SCHEDULES,
       f'train.lr_schedule must be one of {LR_SCHEDULES}'),
      (t.mode in ('autoencoder', 'denoise'),
       "train.mode must be 'autoencoder' or 'denoise'"),
      (t.best_metric in ('val_power_mse', 'val_mse'),
       "train.best_metric must be 'val_power_mse' or 'val_mse'"),
      (t.compute_dtype in backends.COMPUTE_DTYPES,
       f'train.compute_dtype must be one of {backends.COMPUTE_DTYPES}'),
  ]


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Rejects impossible settings before anything loads or compiles."""
  stride = models.stride(config.model)
  checks = (recipes.Recipe.checks(config)
            + backends.check_config(config.runtime)
            + input_pipeline.check_config(config.data, stride)
            + whole_file.check_config(settings.section(config, 'infer'),
                                      stride)
            + noise_bank.check_config(settings.section(config, 'noise'))
            + audio.check_config(config.audio)
            + _train_checks(config))
  for ok, message in checks:
    if not ok:
      raise ConfigError(message)


def create_optimizer(t: ml_collections.ConfigDict
                     ) -> optax.GradientTransformation:
  """Adam (AdamW with train.weight_decay > 0) on the configured schedule;
  `t`: the train settings of the model's output form (`Recipe.train`)."""
  lr = peak = float(t.learning_rate)
  if t.lr_schedule == 'one_cycle':
    lr = optax.cosine_onecycle_schedule(t.num_steps, peak)
  if t.weight_decay:
    return optax.adamw(lr, eps=ADAM_EPS, weight_decay=t.weight_decay)
  return optax.adam(lr, eps=ADAM_EPS)


def build_model(recipe: recipes.Recipe) -> nn.Module:
  """The recipe's module, computed as this run's runtime and compute dtype
  say (mel_ae/backends): the same function and parameters either way."""
  config = recipe.config
  return recipe.module(**backends.layers_for(config.runtime,
                                             config.train.compute_dtype))


def create_train_state(rng: jax.Array, config: ml_collections.ConfigDict,
                       input_shape: Tuple[int, ...],
                       fitted_mode: Optional[str] = None) -> TrainState:
  """The config's model (with the noise stage's `fitted_mode` for output
  'fitted') initialised, and its optimizer."""
  recipe = recipes.Recipe.of(config, fitted_mode)
  # Parameters, optimizer state and BatchNorm statistics are float32 in any
  # compute dtype, so checkpoints do not depend on it.
  model = build_model(recipe)
  variables = model.init(rng, jnp.zeros(input_shape, jnp.float32), train=False)
  return TrainState.create(apply_fn=model.apply, params=variables['params'],
                           batch_stats=variables.get('batch_stats', {}),
                           tx=create_optimizer(recipe.train))


# Initialisation runs once and does next to no arithmetic, yet XLA's backend
# optimisation of it took 5 s of a 17.5 s cold start on the 2-core CPU
# (0.8 s without); the values are the same bits either way (tested).
_INIT_COMPILER_OPTIONS = {'xla_backend_optimization_level': 0}


def init_train_state(init: Callable[[], TrainState], sharding) -> TrainState:
  """Runs `init` (no arguments) jitted, compiled for speed of compilation."""
  return jax.jit(init, out_shardings=sharding).lower().compile(
      compiler_options=_INIT_COMPILER_OPTIONS)()


def train_step(state: TrainState, batch: Dict[str, jax.Array],
               loss=recipes.mse):
  """One Adam step on loss(model(input), target, level); target defaults to
  input, level (the crops' level augmentation) to none."""
  target = batch.get('target', batch['input'])

  def loss_fn(params):
    recon, updates = state.apply_fn(
        {'params': params, 'batch_stats': state.batch_stats}, batch['input'],
        train=True, mutable=['batch_stats'])
    # The loss in float32 whatever the compute dtype (train.compute_dtype).
    args = (recon.astype(jnp.float32), target) + (
        (batch['level'],) if 'level' in batch else ())
    return loss(*args), updates

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


def _local_variables(state: TrainState) -> Dict[str, Any]:
  """This process's copy of the replicated model variables: a computation
  on it needs no other process."""
  return jax.tree_util.tree_map(
      lambda x: x.addressable_data(0),
      {'params': state.params, 'batch_stats': state.batch_stats})


def _denoise_test(model, state: TrainState, data: training_data.Data,
                  config) -> List[np.ndarray]:
  """The paired test set's noisy files denoised by the current model."""
  return whole_file.denoise_power(model, _local_variables(state),
                                  data.normalizer, data.test[0].mels,
                                  config.infer)


def _validation_metrics(recon: np.ndarray, val: training_data.Validation,
                        normalizer: features.Normalizer) -> Dict[str, float]:
  """MSE in the model domain and in raw power (comparable across transforms:
  the competition's domain), and LSD, over real frames only; and how much
  of its clear speech the model removes (`metrics.clear_speech_loss_db`),
  which inference compares a file with to tell a voice it does not know."""
  weight = np.broadcast_to(val.mask, val.targets.shape)
  pred, ref = normalizer.inverse(recon), normalizer.inverse(val.targets)
  real = val.mask[:, 0, :, 0] > 0
  lsd = [metrics.lsd_db(p[:, m], r[:, m]) for p, r, m in zip(
      pred[..., 0], ref[..., 0], real) if m.any()]
  # Each window as a file of its own (its own noise floor); the most that
  # all but VOICE_CHECK_SHARE of them lost is what a file may lose.
  clear_loss = [metrics.clear_speech_loss_db(n[:, m], p[:, m]) for n, p, m in
                zip(normalizer.inverse(val.inputs)[..., 0], pred[..., 0], real)
                if m.any()]
  return {'val_mse': float(np.average((recon - val.targets) ** 2,
                                      weights=weight)),
          'val_power_mse': float(np.average((pred - ref) ** 2,
                                            weights=weight)),
          'val_lsd_db': float(np.mean(lsd)),
          # What the model removes from the clear speech of the voice it knows.
          checkpointing.VOICE_CHECK_KEY: float(np.quantile(clear_loss,
                                            1 - VOICE_CHECK_SHARE))}


def evaluate(state: TrainState, data: training_data.Data,
             val: Optional[training_data.Validation], config, eval_fn,
             data_sharding, model):
  """Validation metrics and the test set's competition MSE of `model`
  with the state's variables.

  Returns the metrics and the denoised test files (None without a test set).
  Every process takes part in validation; only process 0, which writes the
  metrics and the report, denoises the test set.
  """
  results, denoised = {}, None
  if val is not None:
    recon = np.concatenate([
        np.asarray(eval_fn(state, _to_global(w, data_sharding)))
        for (w,) in input_pipeline.batches([val.inputs],
                                           config.train.batch_size)
    ])[:len(val.inputs)]
    results.update(_validation_metrics(recon, val, data.normalizer))
  if data.test and jax.process_index() == 0:
    noisy, clean = data.test
    denoised = _denoise_test(model, state, data, config)
    results['test_mse'] = float(np.mean([
        metrics.competition_mse(p, c) for p, c in zip(denoised, clean.mels)]))
    results['test_noisy_mse'] = float(np.mean([
        metrics.competition_mse(n, c) for n, c in zip(noisy.mels, clean.mels)]))
  return results, denoised


def _examples(model, state: TrainState, data: training_data.Data,
              val: Optional[training_data.Validation], test_outputs, config):
  """(noisy, denoised, clean) power mels of a few fixed examples for
  TensorBoard: the first test files as `evaluate` denoised them or, without
  a test set, validation windows free of padding (evenly spread), denoised
  here by this process alone."""
  if data.test:
    return data.test[0].mels, test_outputs, data.test[1].mels
  if val is None:
    return [], [], []
  whole = np.flatnonzero(val.mask.min(axis=(1, 2, 3)) > 0)
  whole = whole if len(whole) else np.arange(len(val.inputs))
  pick = whole[np.unique(np.linspace(0, len(whole) - 1, writers.EXAMPLES
                                     ).astype(int))]
  noisy = list(data.normalizer.inverse(val.inputs[pick, ..., 0]))
  return (noisy, whole_file.denoise_power(model, _local_variables(state),
                                          data.normalizer, noisy,
                                          config.infer),
          list(data.normalizer.inverse(val.targets[pick, ..., 0])))


def _log_progress(step: int, num_steps: int, loss: float, rate: float,
                  batch_size: int) -> None:
  eta = (num_steps - step) * batch_size / max(rate, 1e-9)
  logging.info('step %d/%d  loss %.5f  %.1f examples/s  ETA %dm%02ds', step,
               num_steps, loss, rate, eta // 60, eta % 60)


def _log_evaluation(row: Dict[str, float]) -> None:
  """A row's validation figures, then its test set's, one line each, named
  as in metrics.jsonl."""
  for split in ('val_', 'test_'):
    figures = [f'{k} {v:.4g}' for k, v in row.items() if k.startswith(split)]
    if figures:
      logging.info('  %s', '  '.join(figures))


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


@dataclasses.dataclass(frozen=True)
class Trained:
  """What a finished run leaves the test-set report (mel_ae/report.py),
  the stage after it, beside its workdir."""
  state: TrainState
  normalizer: features.Normalizer  # of the model domain it trained in
  # The paired test set (noisy, clean) and its noisy files denoised by the
  # last state; None without a test set, and on every process but 0.
  test: Optional[Tuple[input_pipeline.MelFolder, input_pipeline.MelFolder]]
  test_outputs: Optional[List[np.ndarray]]
  best_step: Optional[int]  # by train.best_metric; None: none tracked


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str) -> TrainState:
  """Trains (resuming from WORKDIR/checkpoints if any) and evaluates:
  `run`, returning the last state."""
  return run(config, workdir).state


def run(config: ml_collections.ConfigDict, workdir: str) -> Trained:
  """Trains (resuming from WORKDIR/checkpoints if any) and evaluates.

  Where the config needs it, on the noise fitted by the noise stage
  (mel_ae/fit_noise.py, run before: mel_ae.main does), read from WORKDIR:
  the noise bank of its fit, the model of the output form it decided.
  """
  logs.show_progress_logs()  # Progress lines also in a notebook.
  validate_config(config)
  t = config.train
  os.makedirs(workdir, exist_ok=True)
  data = training_data.load_data(config)
  noise = fit_noise.read(config, workdir, data.train_power, data.noisy)
  bank = training_data.make_noise_bank(config, data, noise)
  fitted_mode = noise.output_mode if noise else None
  recipe = recipes.Recipe.of(config, fitted_mode)
  logging.info('Peak learning rate %g, %d frames at either crop edge out of '
               'the loss (output form %r).', recipe.train.learning_rate,
               recipe.train.loss_border_frames, recipe.output_mode)
  manager = checkpointing.create_manager(workdir, t.keep_checkpoints)
  replicated, data_sharding = _shardings()
  input_shape = (t.batch_size, config.audio.n_mels, config.data.crop_frames, 1)
  init = functools.partial(create_train_state, jax.random.PRNGKey(config.seed),
                           config, input_shape, fitted_mode)
  abstract = jax.tree_util.tree_map(
      lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated),
      jax.eval_shape(init))
  start, state, meta = checkpointing.resume(
      manager, workdir, config.to_dict(), abstract, recipe.output_mode)
  if meta:  # Resuming: the run's own normaliser, whatever the files say now.
    data = data.with_normalizer(
        features.Normalizer.from_dict(meta['normalizer']))
  if state is None:
    state = init_train_state(init, replicated)
    if config.init_from:  # The start's own domain: its weights expect it.
      state, normalizer, line = pretrained.initialize(
          state, config.init_from, config.data.transform)
      data = data.with_normalizer(normalizer)
      logging.info(line)
  logging.info('Model: %d trainable parameters',
               models.count_params(state.params))
  step_fn = jax.jit(functools.partial(train_step,
                                      loss=recipe.loss(data.normalizer)),
                    in_shardings=(replicated, data_sharding),
                    out_shardings=(replicated, replicated), donate_argnums=0)
  # Replicated reconstructions: every process can read all of them.
  eval_fn = jax.jit(eval_step, in_shardings=(replicated, data_sharding),
                    out_shardings=replicated)
  sampler = training_data.make_sampler(config, data, bank)
  val = training_data.make_validation(config, data, bank,
                                      recipe.train.loss_border_frames)
  model = build_model(recipe)
  # Every process computes the same rows; process 0 alone writes files.
  primary = jax.process_index() == 0
  writer = writers.MetricWriter(workdir, start, config) if primary else None
  # The config as started; the output form it was built with beside it.
  meta = {'config': config.to_dict(), 'output_mode': recipe.output_mode,
          'normalizer': data.normalizer.to_dict(),
          # Until a validation measures it.
          checkpointing.VOICE_CHECK_KEY: None}
  pending, last_saved, test_outputs = [], start, None
  window_start, window_step = time.perf_counter(), start
  steps = range(int(state.step) + 1, t.num_steps + 1)
  if steps:  # The first progress line is a compile and log_every steps away.
    logging.info('Training steps %d to %d: compiling, then a line every %d '
                 'steps.', steps[0], steps[-1], t.log_every)
  try:
    for step in steps:
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
        results, test_outputs = evaluate(state, data, val, config, eval_fn,
                                         data_sharding, model)
        row.update(results)
        if t.best_metric in results:
          metric = (t.best_metric, results[t.best_metric])
        if checkpointing.VOICE_CHECK_KEY in results:
          key = checkpointing.VOICE_CHECK_KEY
          meta[key] = results[key]
      if writer:
        writer.write(step, row)
        if step % t.eval_every == 0 or is_last:
          writer.write_examples(step, *_examples(model, state, data, val,
                                                 test_outputs, config))
      _log_progress(step, t.num_steps, row['train_loss'],
                    row['examples_per_sec'], t.batch_size)
      _log_evaluation(row)  # Nothing between evaluations.
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
  if writer:
    writer.close()
  best = checkpointing.best_step(str(manager.directory), manager.all_steps())
  if data.test and primary and test_outputs is None:  # No step ran.
    test_outputs = _denoise_test(model, state, data, config)
  return Trained(state, data.normalizer, data.test, test_outputs, best)
