"""Denoising with a trained model: chunked, fixed-shape, bounded memory.

A mel of any length is cut into windows of `chunk_frames` output frames,
each seen with `margin_frames` of context on both sides, so model calls take
a few shapes (a few compilations) and memory per call does not grow with
length; a mel shorter than a chunk gets a narrower window.
With the margin at least the model's receptive radius, the result equals
running the model over the whole file at once, extended past its ends with
silence or with its own frames mirrored (`infer.edge_padding`).
"""
import dataclasses
import functools
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from absl import logging
import flax.linen as nn
import jax
import ml_collections
import numpy as np

from mel_ae import audio
from mel_ae import backends
from mel_ae import checkpointing
from mel_ae import features
from mel_ae import mel_io
from mel_ae import metrics
from mel_ae import models
from mel_ae import pretrained
from mel_ae import settings
from mel_ae import waveform


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
           f'infer.edge_padding must be one of {EDGE_PADDINGS}')]


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
  the denoised time reversal, reversed back. `infer_config`: config.infer,
  what a recipe leaves out filled in (`settings.fill`).
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
  return power


def _tuples(value):
  """JSON gives lists back; configs hold tuples (ml_collections overrides)."""
  if isinstance(value, dict):
    return {k: _tuples(v) for k, v in value.items()}
  return tuple(value) if isinstance(value, list) else value


@dataclasses.dataclass
class Denoiser:
  """A trained model ready for inference: no optimizer, no TrainState.

  `config` is the run's as it was started; `output_mode` the output form
  its model was built with (what the noise stage decided for 'fitted').
  `conv_impl` says how this machine computes it (mel_ae/backends); the
  checkpoint does not depend on it.
  """
  config: ml_collections.ConfigDict
  variables: Dict[str, Any]
  normalizer: features.Normalizer
  step: int
  conv_impl: str = 'auto'
  output_mode: Optional[str] = None
  # The most its validation windows' clear speech lost, but for the 5 %
  # that lost more (`metrics.clear_speech_loss_db`, mel_ae/train.py):
  # what a file may lose before the voice check flags it; None: not
  # measured (saved before the check), no check.
  val_clear_speech_loss_db: Optional[float] = None

  @property
  def model(self) -> nn.Module:
    runtime = ml_collections.ConfigDict({'conv_impl': self.conv_impl,
                                         'phase_upsample': True})
    return models.build_model(self.config.model, self.output_mode,
                              **backends.layers_for(runtime))

  @property
  def spec(self) -> audio.MelSpec:
    return audio.MelSpec.from_config(self.config.audio)

  def denoise_batch(self, mels: Sequence[np.ndarray],
                    max_attenuation_db: Optional[float] = None,
                    warn: bool = True) -> List[np.ndarray]:
    """Power mels (n_mels, T) of any lengths -> same shapes and dtypes, no
    bin turned down more than `max_attenuation_db` (None: unbounded); with
    `warn`, one warning line where a voice seems unknown to the model
    (`unknown_voices`)."""
    checked = [mel_io.validate_mel(np.asarray(m), f'input {i}',
                                   self.config.audio.n_mels)
               for i, m in enumerate(mels)]
    outs = denoise_power(self.model, self.variables, self.normalizer, checked,
                         self.config.infer)
    outs = [waveform.limit_attenuation(o, c, max_attenuation_db,
                                       self.spec.power).astype(
        np.asarray(m).dtype) for o, c, m in zip(outs, checked, mels)]
    if warn:
      line = self.unknown_voices(self.speech_losses(checked, outs))
      if line:
        logging.warning(line)
    return outs

  def speech_losses(self, noisy: Sequence[np.ndarray],
                    denoised: Sequence[np.ndarray]) -> List[Optional[float]]:
    """Per input, the dB of its clear speech removed where that is more
    than all but 5 % of the model's own validation windows lost (speech it
    takes for noise: a voice it was not trained on); else None."""
    if self.val_clear_speech_loss_db is None:
      return [None] * len(noisy)
    losses = [metrics.clear_speech_loss_db(n, d)
              for n, d in zip(noisy, denoised)]
    return [l if l > self.val_clear_speech_loss_db else None for l in losses]

  def unknown_voices(self, losses: Sequence[Optional[float]],
                     names: Optional[Sequence[str]] = None) -> Optional[str]:
    """One warning line where inputs lost more of their clear speech than
    the model's own voice does (`losses` from `speech_losses`); None where
    none did."""
    lost = [(l, i) for i, l in enumerate(losses) if l is not None]
    if not lost:
      return None
    worst, index = max(lost)
    name = names[index] if names else f'input {index}'
    return (f'warning: {len(lost)} of {len(losses)} inputs lost up to '
            f'{worst:.2f} dB of their clear speech power ({name}); on its '
            'training voice this model loses at most '
            f'{self.val_clear_speech_loss_db:.2f} dB there: a voice it was '
            'not trained on? `--pretrained=general` denoises any voice.')

  def denoise(self, mel: np.ndarray,
              max_attenuation_db: Optional[float] = None) -> np.ndarray:
    return self.denoise_batch([mel], max_attenuation_db)[0]

  def denoise_audio(self, wave: np.ndarray, sr: int,
                    max_attenuation_db: Optional[float] = None) -> np.ndarray:
    """A recording (n,) or (n, channels) at `sr` -> the same shape and
    rate, float32: its STFT times the model's gain (mel_ae/waveform.py)."""
    return waveform.denoise_wave(wave, sr, self.denoise_batch, self.spec,
                                 max_attenuation_db)[0]

  def __repr__(self) -> str:
    return (f'Denoiser(step={self.step}, model={self.config.model.name!r}, '
            f'output_mode={self.output_mode!r}, conv_impl={self.conv_impl!r})')


def load(workdir: str, step: Union[None, int, str] = None,
         conv_impl: str = 'auto') -> Denoiser:
  """A training workdir's checkpoint, ready to denoise.

  Args:
    workdir: the training run's --workdir.
    step: a step number, 'best' (least validation metric) or None (the
      latest; a damaged latest step falls back to an older one, with a
      warning). The values are checked against the digest saved with them.
    conv_impl: how this machine computes the model (see mel_ae/backends).
  """
  step, meta, variables = checkpointing.read_for_inference(workdir, step)
  return Denoiser(ml_collections.ConfigDict(_tuples(meta['config'])),
                  variables, features.Normalizer.from_dict(meta['normalizer']),
                  step, conv_impl, meta['output_mode'],
                  meta[checkpointing.VOICE_CHECK_KEY])


def load_pretrained(name: str = 'general', conv_impl: str = 'auto'
                    ) -> Denoiser:
  """A model shipped in the package (mel_ae/pretrained.py), ready to
  denoise; its variables checked against the digest it shipped with."""
  denoiser = load(pretrained.workdir(name), conv_impl=conv_impl)
  if name in pretrained.DIGESTS and checkpointing.digest(
      denoiser.variables) != pretrained.DIGESTS[name]:
    raise checkpointing.CheckpointError(
        f'pretrained {name!r}: its files do not match the digest it '
        'shipped with (reinstall mel_ae)')
  return denoiser
