"""Orbax checkpoints in WORKDIR/checkpoints, and what to do with damaged ones.

A step holds the train state and a JSON 'meta' item with the config, the
output form the model was built with, the normaliser and digests of the
values, so a checkpoint alone is enough to denoise, and values that read
back differently from how they were saved are caught on every read
(resume, `mel_ae.load`, `mel_ae.denoise`). The newest `keep` steps are
kept, and the best by a validation metric beside them.

The meta carries its format's `config_version`; every read brings an older
one to the current version (`upgrade`), so the rest of mel_ae reads today's
fields only and knows nothing of old checkpoints.
"""
import copy
import dataclasses
import hashlib
import json
import logging as std_logging
import os
import time
from typing import Any, Dict, List, Optional, Tuple, Union

from absl import logging
import jax
from jax.experimental import multihost_utils
import numpy as np
import orbax.checkpoint as ocp

from mel_ae import settings

ITEMS = ('state', 'meta')
# What reading a damaged or half-written step raises (json, tensorstore and
# orbax decode errors, a missing item, our digest check). Anything else (a
# library bug, the machine's I/O failing) says nothing about the step and is
# raised as it is, so good steps are never moved aside for it.
_DAMAGE = (ValueError, KeyError, FileNotFoundError)
# What a resumed run may not change: the model, the features, the objective.
FIXED_FIELDS = ('model', 'audio', 'data.transform', 'data.root',
                'train.mode')

# The format of the meta `save` writes. 1: a complete config, and beside it
# 'output_mode', 'digest', 'variables_digest', 'val_loud_change_db' (None:
# not measured). A meta without the field is version 0: every checkpoint
# written before it, each with the config fields of its day. 2: configs
# split by recipe (configs/base.py and mel_ae/settings.py): a config holds
# what its recipe sets, the per-output-form tables became
# train.output_forms, and fields no recipe used are gone (_DROPPED_FIELDS).
# 3: the noise fit's window relative to the data (_REFIT_FIELDS), and
# VOICE_CHECK_KEY in place of 'val_loud_change_db'.
CONFIG_VERSION = 3
# What its validation's clear speech lost, 95th percentile over windows
# (mel_ae/train.py, metrics.clear_speech_loss_db): the voice check's limit
# (None: not measured, no check).
VOICE_CHECK_KEY = 'val_clear_speech_loss_db_p95'
# Config fields saved under another name before (old: current).
_RENAMED_FIELDS = {'model.conv_impl': 'runtime.conv_impl',
                   'model.phase_upsample': 'runtime.phase_upsample',
                   'noise.fallback_kinds': 'noise.additive_kinds'}
# Config fields added since the first checkpoint that mel_ae/settings.py
# does not give the old value of: fields of configs/base.py, the model's,
# its output forms' (those of experiments/subtract's too) and MelSpec's, each
# with the value that keeps the behaviour of a config saved
# before it (where the field came with a default that changed it, the value
# before: no cache, no host memory reuse), and recipe fields whose value
# then differs from the one that leaves them off today (no validation cross
# term).
_LEGACY_VALUES = {
    'compilation_cache_dir': '',
    'init_from': '',
    'audio.pad_mode': 'constant',
    'audio.htk': False,
    'audio.norm': 'slaney',
    'data.log_eps': 1e-6,
    'data.crop_past_ends': 0,
    'model.name': 'autoencoder',
    'model.output_mode': 'image',
    'model.mask_exponent': 1.0,
    'model.noise_radius': 32,
    'model.noise_estimate': 'minimum',
    'model.noise_smooth': 5,
    'model.noise_quiet_fraction': 0.3,
    'model.max_subtraction': 4.0,
    'model.skip_channels': 0,
    'model.kernel_window': (3, 7),
    'runtime.conv_impl': 'xla',
    'runtime.reuse_host_memory': False,
    'train.output_loss_border_frames': {},
    'train.output_learning_rates': {},
    'train.compute_dtype': 'float32',
    'train.best_metric': 'val_power_mse',
    'noise.freq_scale': (1.0, 1.0),
    'noise.val_cross_std': 0.0,
}
# What a config saved before a field existed gets: every recipe field at
# the value that leaves it off today (mel_ae/settings.py), which a config
# without it is read with anyway, but for the legacy values.
# noise.val_noise_fraction and val_draws replaced validation's noise with
# one no value reproduces: they too take today's.
_ADDED_FIELDS = {
    **{f'{section}.{name}': value
       for section, fields in settings.RECIPE_FIELDS.items()
       for name, value in fields.items()},
    **_LEGACY_VALUES,
}


# Version 1 fields gone in version 2, each with the one value mel_ae still
# trains with. Inference never read them (the normaliser is saved beside
# the config); a run saved with another value is refused on resume.
_DROPPED_FIELDS = {
    'data.top_db': 80.0,
    'data.log_eps': 1e-6,
    'data.crop_past_ends': 0,
    'train.eval_batch_size': None,  # validation batches: train.batch_size
    'train.adam_eps': 1e-7,
    'train.warmup_steps': None,  # only read by the 'cosine' schedule
    'train.grad_clip_norm': 0.0,
    'noise.freq_scale': [1.0, 1.0],
}


class CheckpointError(ValueError):
  """A workdir's checkpoints cannot be used as asked; one line says why."""


class IntegrityError(CheckpointError):
  """Values read back differ from the digest saved with them."""


def checkpoint_dir(workdir: str) -> str:
  # Orbax requires an absolute path (it fails in its writer thread otherwise).
  return os.path.join(os.path.abspath(workdir), 'checkpoints')


def _selection_metric(root: str, step: int) -> Optional[float]:
  """The validation metric a step was saved with, or None (none, or a
  damaged meta: a reader must never fail on a step it only ranks)."""
  try:
    with open(os.path.join(root, str(step), 'meta', 'metadata')) as f:
      return float(json.load(f)['selection']['value'])
  except (OSError, ValueError, KeyError, TypeError):
    return None


def best_step(root: str, steps) -> Optional[int]:
  """Of `steps` in checkpoint folder `root`, the least validation metric."""
  scored = {s: _selection_metric(root, s) for s in steps}
  scored = {s: v for s, v in scored.items() if v is not None}
  return min(scored, key=scored.get) if scored else None


@dataclasses.dataclass
class NewestAndBest:
  """Orbax preservation policy: the newest `keep` steps and the best one.

  The best is read from the steps' own meta, so a damaged step never stops
  the manager from opening (orbax's metrics-based BestN reads every
  step's metrics when the manager is created, and fails on a damaged one).
  """
  root: str
  keep: int

  def should_preserve(self, checkpoints, *, context) -> List[bool]:
    del context
    steps = [c.step for c in checkpoints]
    newest = set(sorted(steps)[-self.keep:])
    best = best_step(self.root, steps)
    return [s in newest or s == best for s in steps]


def _not_read_only_notice(record: std_logging.LogRecord) -> bool:
  return not record.getMessage().startswith('Given directory is read only')


def create_manager(workdir: str, keep: int = 3,
                   read_only: bool = False) -> ocp.CheckpointManager:
  """Keeps the newest `keep` steps and the best by validation; saves happen
  when asked."""
  root = checkpoint_dir(workdir)
  options = ocp.CheckpointManagerOptions(
      read_only=read_only, preservation_policy=NewestAndBest(root, keep),
      enable_async_checkpointing=not read_only,
      # What read_only implies, said here, else orbax warns it sets them.
      save_interval_steps=0 if read_only else 1, create=not read_only,
      # A save killed midway leaves only a tmp folder; clear it on restart.
      cleanup_tmp_directories=not read_only)
  # Nor a warning that the manager opened read-only is read-only.
  orbax_logger = std_logging.getLogger('absl')
  orbax_logger.addFilter(_not_read_only_notice)
  try:
    return ocp.CheckpointManager(root, item_names=ITEMS, options=options)
  finally:
    orbax_logger.removeFilter(_not_read_only_notice)


def digest(tree: Any) -> str:
  """sha256 of a pytree's leaves (dtype, shape, bytes) in tree order."""
  h = hashlib.sha256()
  for leaf in jax.tree_util.tree_leaves(tree):
    leaf = np.asarray(jax.device_get(leaf))
    h.update(f'{leaf.dtype.str}{leaf.shape}'.encode())
    h.update(np.ascontiguousarray(leaf).tobytes())
  return h.hexdigest()


def _variables(state: Any) -> Dict[str, Any]:
  """The model variables of a TrainState or of its restored dict form."""
  get = state.get if isinstance(state, dict) else lambda k: getattr(state, k)
  return {'params': get('params'), 'batch_stats': get('batch_stats')}


def save(manager: ocp.CheckpointManager, step: int, state: Any,
         meta: Dict[str, Any], metric: Optional[Tuple[str, float]] = None
         ) -> None:
  """Saves asynchronously; meta carries digests of the state and of the
  model variables (orbax reads some flipped bits back as other values
  without an error; the digests tell), and `metric` (name, value), the
  validation metric that ranks steps."""
  meta = {**meta, 'config_version': CONFIG_VERSION, 'unsupported': [],
          'digest': digest(state),
          'variables_digest': digest(_variables(state))}
  if metric:
    meta['selection'] = {'name': metric[0], 'value': float(metric[1])}
  manager.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
               force=True)


def _field(config: Dict[str, Any], name: str) -> Tuple[Dict[str, Any], str]:
  """(section, key) of a dotted config field, its sections made if absent."""
  *sections, key = name.split('.')
  for section in sections:
    config = config.setdefault(section, {})
  return config, key


def _upgrade_v0(config: Dict[str, Any]) -> None:
  """Version 0 -> 1: renamed fields under today's names, and each field it
  lacks with the value that keeps how it was trained and denoises."""
  for old, new in _RENAMED_FIELDS.items():
    section, key = _field(config, old)
    if key in section:
      target, new_key = _field(config, new)
      target.setdefault(new_key, section.pop(key))
  for name, value in _ADDED_FIELDS.items():
    section, key = _field(config, name)
    section.setdefault(key, copy.deepcopy(value))


def _upgrade_v1(config: Dict[str, Any]) -> List[str]:
  """Version 1 -> 2: the per-output-form tables as train.output_forms, and
  the dropped fields removed; returns 'field=value' for each that held a
  value mel_ae no longer trains with."""
  train = config['train']
  forms = {}
  for table, field in (('output_learning_rates', 'learning_rate'),
                       ('output_loss_border_frames', 'loss_border_frames')):
    for form, value in train.pop(table, {}).items():
      forms.setdefault(form, {})[field] = value
  train['output_forms'] = forms
  unsupported = []
  for name, kept in _DROPPED_FIELDS.items():
    section, key = _field(config, name)
    if key in section:
      value = section.pop(key)
      if kept is not None and json.loads(json.dumps(value)) != kept:
        unsupported.append(f'{name}={value!r}')
  if train.get('lr_schedule') == 'cosine':
    unsupported.append("train.lr_schedule='cosine'")
  return unsupported


# Version 2 fields of the noise fit gone in version 3 (its window relative
# to the data, its hypotheses chosen within a tolerance). Only the fit read
# them: a run that fitted noise is refused on resume by the fit's digest
# (mel_ae.fit_noise), whose one line says to fit again.
_REFIT_FIELDS = ('noise.model_db_range', 'noise.model_min_log_gain_std',
                 'noise.fitted_textures_above_db')


def _upgrade_v2(meta: Dict[str, Any]) -> None:
  """Version 2 -> 3: the old noise fit's fields removed; the voice check's
  limit None where it was not measured (the loudest bins' power change
  before it measured something else, and no check reads it)."""
  meta.pop('val_loud_change_db', None)
  meta.setdefault(VOICE_CHECK_KEY, None)
  for name in _REFIT_FIELDS:
    section, key = _field(meta['config'], name)
    section.pop(key, None)


def upgrade(meta: Dict[str, Any]) -> Dict[str, Any]:
  """A step's meta at CONFIG_VERSION: the one place that knows history.

  Version 0 (`_upgrade_v0`) gets beside the config the output form its
  model was built with (before the noise stage training wrote it into
  model.output_mode) and None for what it never recorded; version 1
  (`_upgrade_v1`) the split configs' fields, version 2 (`_upgrade_v2`)
  loses the old noise fit's. A config field of a recipe
  that a saved config lacks is read as today's code reads it
  (mel_ae/settings.py); 'unsupported' lists the dropped fields whose value
  resuming cannot keep (inference never read them). The meta given is
  left as it is.
  """
  if meta.get('config_version') == CONFIG_VERSION:
    return meta
  meta = copy.deepcopy(meta)
  config = meta['config']
  if not meta.get('config_version'):
    _upgrade_v0(config)
    meta.setdefault('output_mode', config['model']['output_mode'])
    for key in ('digest', 'variables_digest'):
      meta.setdefault(key, None)
  if meta.get('config_version', 0) < 2:
    meta['unsupported'] = _upgrade_v1(config)
  _upgrade_v2(meta)
  meta['config_version'] = CONFIG_VERSION
  return meta


def restore_meta(manager: ocp.CheckpointManager, step: int) -> Dict[str, Any]:
  """A step's meta, brought to CONFIG_VERSION (`upgrade`)."""
  return upgrade(manager.restore(step, args=ocp.args.Composite(
      meta=ocp.args.JsonRestore())).meta)


def _verify(step: int, values: Any, expected: Optional[str]) -> None:
  """IntegrityError where `values` differ from the digest `expected` (None:
  a step saved before digests, nothing to check)."""
  if expected and digest(values) != expected:
    raise IntegrityError(f'checkpoint step {step}: the values read back do '
                         'not match the digest saved with them (corrupted '
                         'files)')


def restore_state(manager: ocp.CheckpointManager, step: int,
                  abstract_state: Any, meta: Dict[str, Any]) -> Any:
  """Restores into the structure (and shardings) of `abstract_state`,
  checked against meta['digest']."""
  state = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract_state))).state
  _verify(step, state, meta['digest'])
  return state


def restore_variables(manager: ocp.CheckpointManager, step: int,
                      meta: Dict[str, Any]) -> Dict[str, Any]:
  """Model variables only, on the default device, without a TrainState;
  checked against meta['variables_digest'] (None: not recorded)."""
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  state = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(fallback_sharding=device))).state
  variables = _variables(state)
  _verify(step, variables, meta['variables_digest'])
  return variables


def _first_line(error: Exception) -> str:
  text = str(error).splitlines()[0][:200] if str(error) else ''
  return f'{type(error).__name__}: {text}'


def read_for_inference(workdir: str, step: Union[None, int, str] = None
                       ) -> Tuple[int, Dict[str, Any], Dict[str, Any]]:
  """(step, meta, variables) of a workdir's checkpoint, verified.

  `step` is a number, 'best' (the least tracked validation metric) or None
  for the latest; only for the latest does a damaged step fall back, with
  a warning, to the next older one. Raises CheckpointError in one line.
  """
  with create_manager(workdir, read_only=True) as manager:
    steps = sorted(manager.all_steps(), reverse=True)
    if not steps:
      raise CheckpointError(f'{workdir}: no checkpoint in '
                            f'{checkpoint_dir(workdir)}')
    wanted = (best_step(checkpoint_dir(workdir), steps) if step == 'best'
              else step)
    if step == 'best' and wanted is None:
      raise CheckpointError(f'{workdir}: no checkpoint was saved with a '
                            'validation metric, so none is the best')
    if wanted is not None and wanted not in steps:
      raise CheckpointError(f'{workdir}: no checkpoint for step {step} '
                            f'(have {sorted(steps)})')
    for candidate in [wanted] if wanted is not None else steps:
      try:
        meta = restore_meta(manager, candidate)
        return candidate, meta, restore_variables(manager, candidate, meta)
      except _DAMAGE as e:
        if isinstance(e, IntegrityError) and wanted is not None:
          raise
        if wanted is not None:
          raise CheckpointError(f'{workdir}: checkpoint step {candidate} is '
                                f'damaged ({_first_line(e)})') from None
        logging.warning('%s: checkpoint step %d is damaged (%s); trying an '
                        'older one', workdir, candidate, _first_line(e))
  raise CheckpointError(f'{workdir}: every checkpoint is damaged')


def quarantine(manager: ocp.CheckpointManager, step: int) -> Optional[str]:
  """Moves a damaged step out of the manager's sight, keeping its files.

  Called by every process of a run: process 0 moves the step and returns
  where to (the others None); all reload after the move.
  """
  root = str(manager.directory)
  target = None
  if jax.process_index() == 0:
    target = os.path.join(os.path.dirname(root), 'damaged_checkpoints',
                          f'{step}-{int(time.time())}')
    os.makedirs(os.path.dirname(target), exist_ok=True)
    os.replace(os.path.join(root, str(step)), target)
  multihost_utils.sync_global_devices(f'quarantine step {step}')
  manager.reload()
  return target


def _on_every_process(ok: bool) -> bool:
  """Whether `ok` holds on all processes, so they agree on a verdict."""
  return bool(np.all(multihost_utils.process_allgather(np.int32(ok))))


def incompatible_fields(saved: Dict[str, Any], current: Dict[str, Any],
                        prefix: str = '') -> List[str]:
  """'field: saved -> current' for each fixed field a new config changes."""
  changes = []
  # Saved configs hold today's fields (`upgrade`); only fields both hold
  # are compared, so a caller may pass part of a config.
  for key in sorted(set(saved) & set(current)):
    name = prefix + key
    old, new = saved[key], current[key]
    if not any(name == f or name.startswith(f + '.') or f.startswith(name + '.')
               for f in FIXED_FIELDS):
      continue
    if isinstance(old, dict) and isinstance(new, dict):
      changes += incompatible_fields(old, new, name + '.')
    elif json.loads(json.dumps(old)) != json.loads(json.dumps(new)):
      changes.append(f'{name}: {old!r} -> {new!r}')
  return changes


def _as_built(config: Dict[str, Any],
              output_mode: Optional[str]) -> Dict[str, Any]:
  """A config dict with model.output_mode as its model was built, so that
  'fitted' and the form it was decided to be compare equal."""
  if output_mode is None:
    return config
  return {**config, 'model': {**config['model'], 'output_mode': output_mode}}


def resume(manager: ocp.CheckpointManager, workdir: str,
           config: Dict[str, Any], abstract_state: Any,
           output_mode: Optional[str] = None
           ) -> Tuple[int, Any, Optional[Dict[str, Any]]]:
  """(step, state, meta) of the newest good checkpoint, or (0, None, None).

  A damaged step is reported in one line and moved aside (never deleted);
  older steps are tried next. A config that changes a fixed field of the
  saved run, or a model built with another output form (`output_mode`,
  None: the config's own), raises CheckpointError. The processes of a
  multi-process run resume from the same step: one damaged anywhere is
  damaged everywhere.
  """
  for step in sorted(manager.all_steps(), reverse=True):
    error = None
    try:
      meta = restore_meta(manager, step)
      changes = incompatible_fields(
          _as_built(meta['config'], meta['output_mode']),
          _as_built(config, output_mode))
    except _DAMAGE as e:
      error = e
    else:
      changes += [f'{field} (no longer supported)'
                  for field in meta['unsupported']]
      if changes:
        raise CheckpointError(
            f'{workdir} holds a run with another model or features '
            f'({"; ".join(changes)}); use a new --workdir')
      try:
        state = restore_state(manager, step, abstract_state, meta)
      except _DAMAGE as e:
        error = e
    if _on_every_process(error is None):
      logging.info('Resumed from step %d in %s', step, workdir)
      return step, state, meta
    moved = quarantine(manager, step)
    if moved:
      reason = _first_line(error) if error else 'unreadable by another process'
      logging.warning('Checkpoint step %d is damaged (%s); moved to %s, '
                      'trying an older one', step, reason, moved)
  return 0, None, None

