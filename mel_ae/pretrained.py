"""Models that ship in the package, and training runs that start from one.

`general` is configs/general.py's best checkpoint: a denoiser for voices it
never saw (many synthetic voices x the additive noise bank). A training run
with `config.init_from` ('general', or any training workdir) starts from
that model's variables wherever their shapes match its own, in that
model's domain (its normaliser), so fine-tuning continues what it learned.
"""
import os
from typing import Any, Dict, Tuple

from flax import traverse_util
import jax
import numpy as np

from mel_ae import checkpointing
from mel_ae import features

_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                     'pretrained_models')
# checkpointing.digest of each shipped model's variables: what was trained
# by the command in README.md, bit for bit.
DIGESTS = {
    'general':
        '44ec8e818c0869fef64224c32f3992b13f08e5a683b901b84324a87cf725510d',
}


class PretrainedError(ValueError):
  """An unknown pretrained name or an incompatible start; one line."""


def workdir(name: str) -> str:
  """The folder of a shipped model, or `name` itself if it is a workdir."""
  if name in DIGESTS:
    return os.path.join(_ROOT, name)
  if os.path.isdir(name):
    return name
  raise PretrainedError(f'{name!r}: neither a shipped model '
                        f'({", ".join(sorted(DIGESTS))}) nor a folder')


def read(name: str) -> Tuple[Dict[str, Any], Dict[str, Any]]:
  """(meta, variables) of a shipped model or workdir's best checkpoint
  (its latest where it tracked no validation metric)."""
  folder = workdir(name)
  try:
    _, meta, variables = checkpointing.read_for_inference(folder, 'best')
  except checkpointing.CheckpointError:
    _, meta, variables = checkpointing.read_for_inference(folder)
  return meta, variables


def _merged(own: Any, start: Any) -> Tuple[Any, int, int]:
  """`own` with every leaf that `start` has at the same path and shape
  replaced by it; (tree, values copied, values in all)."""
  flat_start = traverse_util.flatten_dict(start)
  merged, copied, total = {}, 0, 0
  for path, leaf in traverse_util.flatten_dict(own).items():
    total += leaf.size
    other = flat_start.get(path)
    if other is not None and np.shape(other) == leaf.shape:
      leaf = jax.device_put(np.asarray(other, leaf.dtype), leaf.sharding)
      copied += leaf.size
    merged[path] = leaf
  return traverse_util.unflatten_dict(merged), copied, total


def initialize(state: Any, name: str, transform: str
               ) -> Tuple[Any, features.Normalizer, str]:
  """A fresh TrainState started from model `name`: (state, the normaliser
  its weights expect, one line saying what was copied)."""
  meta, variables = read(name)
  normalizer = features.Normalizer.from_dict(meta['normalizer'])
  if normalizer.kind != transform:
    raise PretrainedError(
        f'init_from {name!r}: its model reads data.transform='
        f'{normalizer.kind!r}, this config {transform!r}')
  params, copied, total = _merged(state.params, variables['params'])
  batch_stats, *_ = _merged(state.batch_stats, variables['batch_stats'])
  if not copied:
    raise PretrainedError(f'init_from {name!r}: no parameter has the shape '
                          "of this config's model; use init_from=''")
  rest = ', the rest fresh' if copied < total else ''
  line = (f'Started from {name!r}: {copied:,} of {total:,} parameters '
          f'({copied / total:.0%}){rest}; its normaliser kept.')
  return (state.replace(params=params, batch_stats=batch_stats), normalizer,
          line)
