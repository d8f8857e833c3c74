"""Denoising with a trained model: chunked, fixed-shape, bounded memory.

A mel of any length is cut into windows of `chunk_frames` output frames,
each seen with `margin_frames` of context on both sides, so every model call
has the same shape (one compilation) and memory does not grow with length.
With the margin at least the model's receptive radius, the result equals
running the model over the whole file at once.
"""
import functools
from typing import Any, Dict, List, Sequence

import flax.linen as nn
import jax
import numpy as np

from mel_ae import features
from mel_ae import input_pipeline


@functools.partial(jax.jit, static_argnums=0)
def _apply(model: nn.Module, variables: Dict[str, Any], x: jax.Array):
  return model.apply(variables, x, train=False)


def _windows(z: np.ndarray, chunk: int, margin: int) -> np.ndarray:
  """(n_windows, n_mels, chunk + 2 margin) views of a zero-padded mel."""
  n = -(-z.shape[1] // chunk)
  padded = np.pad(z, ((0, 0), (margin, n * chunk - z.shape[1] + margin)))
  return np.stack([padded[:, i * chunk:i * chunk + chunk + 2 * margin]
                   for i in range(n)])


def denoise_model_domain(model: nn.Module, variables: Dict[str, Any],
                         mels: Sequence[np.ndarray], chunk: int, margin: int,
                         batch_size: int) -> List[np.ndarray]:
  """Runs the model over model-domain mels (n_mels, T) of any lengths."""
  if not mels:
    return []
  per_file = [_windows(z, chunk, margin) for z in mels]
  windows = np.concatenate(per_file)[..., None]
  outputs = []
  for (batch,) in input_pipeline.batches([windows], batch_size):
    outputs.append(np.asarray(_apply(model, variables, batch)))
  centres = np.concatenate(outputs)[:len(windows), :, margin:margin + chunk, 0]
  results, start = [], 0
  for z, w in zip(mels, per_file):
    flat = np.concatenate(list(centres[start:start + len(w)]), axis=1)
    results.append(flat[:, :z.shape[1]])
    start += len(w)
  return results


def denoise_power(model: nn.Module, variables: Dict[str, Any],
                  normalizer: features.Normalizer,
                  mels: Sequence[np.ndarray], infer_config) -> List[np.ndarray]:
  """Power mels in, power mels out (float32), through the model domain."""
  outs = denoise_model_domain(
      model, variables, [normalizer.forward(m) for m in mels],
      infer_config.chunk_frames, infer_config.margin_frames,
      infer_config.batch_size)
  return [normalizer.inverse(o).astype(np.float32) for o in outs]
