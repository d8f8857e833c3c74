"""Denoising whole files of any length: chunked, fixed-shape, bounded memory.

A mel of any length is cut into windows of `chunk_frames` output frames,
each seen with `margin_frames` of context on both sides, so model calls take
a few shapes (a few compilations) and memory per call does not grow with
length; a mel shorter than a chunk gets a narrower window.
With the margin at least the model's receptive radius, the result equals
running the model over the whole file at once, extended past its ends with
silence or with its own frames mirrored (`infer.edge_padding`).

Training's evaluation (mel_ae/train.py) and inference (mel_ae/inference.py)
both denoise through it; it knows neither.
"""
import functools
import math
from typing import Any, Dict, List, Sequence, Tuple

import flax.linen as nn
import jax
import numpy as np

from mel_ae import baselines
from mel_ae import features
from mel_ae import settings


# What lies past a file's ends: zero power, or the file mirrored at its
# first and last frame (np.pad's 'reflect'): training crops never end, so
# a model trained on them has only seen the second.
EDGE_PADDINGS = ('silence', 'reflect')


def check_config(infer, stride: int) -> List[Tuple[bool, str]]:
  """(ok, message) pairs for config.infer; `stride` is the model's."""
  return [(infer.chunk_frames % stride == 0 and infer.margin_frames % stride == 0
           and infer.chunk_frames > 0 and infer.margin_frames >= 0,
           'infer.chunk_frames and infer.margin_frames must be multiples of '
           f"the model's stride {stride}"),
          (infer.batch_size >= 1, 'infer.batch_size must be >= 1'),
          (infer.edge_padding in EDGE_PADDINGS,
           f'infer.edge_padding must be one of {EDGE_PADDINGS}'),
          (0.0 <= infer.spectral_subtraction_weight <= 1.0,
           'infer.spectral_subtraction_weight must be in [0, 1]'),
          (infer.spectral_subtraction_factor >= 0,
           'infer.spectral_subtraction_factor must be >= 0')]


@functools.partial(jax.jit, static_argnums=0)
def _apply(model: nn.Module, variables: Dict[str, Any], x: jax.Array):
  return model.apply(variables, x, train=False)


def extend_ends(z: np.ndarray, before: int, after: int, silence: float,
                edge_padding: str) -> np.ndarray:
  """A model-domain mel with `before` and `after` frames past its ends:
  silence (zero power in the model domain) or its mirror image."""
  widths = ((0, 0), (before, after))
  return (np.pad(z, widths, mode='reflect') if edge_padding == 'reflect'
          else np.pad(z, widths, constant_values=silence))


def _extended(z: np.ndarray, width: int, margin: int, silence: float,
              edge_padding: str) -> np.ndarray:
  """A model-domain mel extended past its ends (`extend_ends`) for windows
  of `width` output frames and `margin` of context on either side."""
  n = -(-z.shape[1] // width)
  return extend_ends(z, margin, n * width - z.shape[1] + margin, silence,
                     edge_padding)


def _windows(z: np.ndarray, chunk: int, margin: int, silence: float,
             edge_padding: str) -> np.ndarray:
  """(n_windows, n_mels, chunk + 2 margin) windows of a mel extended past
  its ends, as `denoise_model_domain` cuts them."""
  padded = _extended(z, chunk, margin, silence, edge_padding)
  return np.stack([padded[:, i:i + chunk + 2 * margin]
                   for i in range(0, padded.shape[1] - 2 * margin, chunk)])


def _batches(slots: List[Tuple[int, int]], batch_size: int):
  """Full batches of (file, window) slots, then the rest one by one: two
  shapes to compile, and no padded rows computed."""
  full = len(slots) - len(slots) % batch_size
  yield from (slots[i:i + batch_size] for i in range(0, full, batch_size))
  yield from ([slot] for slot in slots[full:])


def denoise_model_domain(model: nn.Module, variables: Dict[str, Any],
                         mels: Sequence[np.ndarray], chunk: int, margin: int,
                         batch_size: int, silence: float = 0.0,
                         edge_padding: str = 'silence') -> List[np.ndarray]:
  """Runs the model over model-domain mels (n_mels, T) of any lengths;
  `silence` is zero power in that domain (`Normalizer.silence`).

  Windows are cut a batch at a time: memory beyond the mels is one batch.
  A mel shorter than `chunk` is seen as one window just wide enough for it:
  gcd(chunk, margin) (a stride multiple, as both are) times 2^k or 3 * 2^k
  frames. A few seconds of speech do not pay for a window of `chunk` frames,
  and about 2 log2(chunk / gcd) widths are compiled at most.
  """
  step = math.gcd(chunk, margin)
  sizes = [chunk] + [step * m << k for m in (1, 3)
                     for k in range(chunk.bit_length()) if step * m << k < chunk]
  widths = [min(w for w in sizes if w >= min(z.shape[1], chunk)) for z in mels]
  outs = [np.empty(z.shape, np.float32) for z in mels]
  for width in set(widths):
    files = [i for i, w in enumerate(widths) if w == width]
    padded = {i: _extended(mels[i], width, margin, silence, edge_padding)
              for i in files}
    slots = [(i, j) for i in files
             for j in range(0, mels[i].shape[1], width)]
    for batch in _batches(slots, batch_size):
      windows = np.stack([padded[i][:, j:j + width + 2 * margin]
                          for i, j in batch])
      result = np.asarray(_apply(model, variables, windows[..., None]))
      for (i, j), frames in zip(batch, result[..., margin:margin + width, 0]):
        stop = min(j + width, mels[i].shape[1])
        outs[i][:, j:stop] = frames[:, :stop - j]
  return outs


def denoise_power(model: nn.Module, variables: Dict[str, Any],
                  normalizer: features.Normalizer,
                  mels: Sequence[np.ndarray], infer_config) -> List[np.ndarray]:
  """Power mels in, power mels out (float32), through the model domain.

  With infer.flip_average, the mean (in power) of the denoised mel and of
  the denoised time reversal, reversed back; with a spectral subtraction
  weight w, each output p becomes p^(1-w) s^w, s the input's spectral
  subtraction. `infer_config`: config.infer, what a recipe leaves out
  filled in (`settings.fill`).
  """
  infer_config = settings.fill('infer', infer_config)
  def run(model_domain):
    outs = denoise_model_domain(
        model, variables, model_domain, infer_config.chunk_frames,
        infer_config.margin_frames, infer_config.batch_size,
        normalizer.silence, infer_config.edge_padding)
    return [normalizer.inverse(o).astype(np.float32) for o in outs]
  z = [normalizer.forward(m) for m in mels]
  power = run(z)
  if infer_config.flip_average:
    flipped = run([x[:, ::-1] for x in z])
    power = [(p + f[:, ::-1]) / 2 for p, f in zip(power, flipped)]
  weight = infer_config.spectral_subtraction_weight
  if weight:
    factor = infer_config.spectral_subtraction_factor
    power = [log_power_mean(p, baselines.spectral_subtraction(
        np.asarray(m, np.float64), over_subtraction=factor),
                            weight).astype(np.float32)
             for p, m in zip(power, mels)]
  return power


def log_power_mean(p: np.ndarray, s: np.ndarray, weight: float) -> np.ndarray:
  """p^(1-weight) s^weight in float64: the two powers' weighted mean in log
  power (zero where either is)."""
  return (np.asarray(p, np.float64) ** (1.0 - weight)
          * np.asarray(s, np.float64) ** weight)
