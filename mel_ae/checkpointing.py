"""Orbax checkpoints in WORKDIR/checkpoints: the train state plus a JSON
'meta' item holding the config and the normaliser, so a checkpoint alone is
enough to denoise."""
import hashlib
import os
import time
from typing import Any, Dict, Optional

import jax
import numpy as np
import orbax.checkpoint as ocp

ITEMS = ('state', 'meta')


def checkpoint_dir(workdir: str) -> str:
  # Orbax requires an absolute path (it fails in its writer thread otherwise).
  return os.path.join(os.path.abspath(workdir), 'checkpoints')


def create_manager(workdir: str, keep: int = 3,
                   read_only: bool = False) -> ocp.CheckpointManager:
  """A manager keeping the newest `keep` steps; saves happen when asked."""
  options = ocp.CheckpointManagerOptions(
      read_only=read_only,
      preservation_policy=ocp.checkpoint_managers.LatestN(keep),
      enable_async_checkpointing=not read_only,
      # A save killed midway leaves only a tmp folder; clear it on restart.
      cleanup_tmp_directories=not read_only)
  return ocp.CheckpointManager(checkpoint_dir(workdir), item_names=ITEMS,
                               options=options)


def digest(tree: Any) -> str:
  """sha256 of a pytree's leaves (dtype, shape, bytes) in tree order."""
  h = hashlib.sha256()
  for leaf in jax.tree_util.tree_leaves(tree):
    leaf = np.asarray(jax.device_get(leaf))
    h.update(f'{leaf.dtype.str}{leaf.shape}'.encode())
    h.update(np.ascontiguousarray(leaf).tobytes())
  return h.hexdigest()


def save(manager: ocp.CheckpointManager, step: int, state: Any,
         meta: Dict[str, Any]) -> None:
  """Saves asynchronously; meta carries the state's digest.

  Orbax reads some flipped bits back as other values without an error; the
  digest lets a restore tell.
  """
  meta = {**meta, 'digest': digest(state)}
  manager.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
               force=True)


def restore_meta(manager: ocp.CheckpointManager, step: int) -> Dict[str, Any]:
  return manager.restore(step, args=ocp.args.Composite(
      meta=ocp.args.JsonRestore())).meta


def restore_state(manager: ocp.CheckpointManager, step: int,
                  abstract_state: Any, expected_digest: Optional[str] = None
                  ) -> Any:
  """Restores into the structure (and shardings) of `abstract_state`.

  With `expected_digest` (meta['digest']), values that differ from the saved
  ones raise ValueError.
  """
  state = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract_state))).state
  if expected_digest and digest(state) != expected_digest:
    raise ValueError(f'step {step}: the restored values do not match the '
                     'digest saved with them (corrupted files)')
  return state


def restore_variables(manager: ocp.CheckpointManager,
                      step: int) -> Dict[str, Any]:
  """Model variables only, on the default device, without a TrainState."""
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  state = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(fallback_sharding=device))).state
  return {'params': state['params'], 'batch_stats': state['batch_stats']}


def quarantine(manager: ocp.CheckpointManager, step: int) -> str:
  """Moves a damaged step out of the manager's sight, keeping its files."""
  root = str(manager.directory)
  target = os.path.join(os.path.dirname(root), 'damaged_checkpoints',
                        f'{step}-{int(time.time())}')
  os.makedirs(os.path.dirname(target), exist_ok=True)
  os.replace(os.path.join(root, str(step)), target)
  manager.reload()
  return target
