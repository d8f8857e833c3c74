"""Denoising with a trained model: a checkpoint loaded (`load`,
`load_pretrained`) as a `Denoiser`, which denoises whole files through
mel_ae/whole_file.py and says where a voice seems unknown to the model.
"""
import dataclasses
from typing import Any, Dict, List, Optional, Sequence, Union

from absl import logging
import flax.linen as nn
import ml_collections
import numpy as np

from mel_ae import audio
from mel_ae import backends
from mel_ae import checkpointing
from mel_ae import features
from mel_ae import mel_io
from mel_ae import metrics
from mel_ae import output_forms
from mel_ae import pretrained
from mel_ae import recipes
from mel_ae import waveform
from mel_ae import whole_file


def _tuples(value):
  """JSON gives lists back; configs hold tuples (ml_collections overrides)."""
  if isinstance(value, dict):
    return {k: _tuples(v) for k, v in value.items()}
  return tuple(value) if isinstance(value, list) else value


# The voice check flags a file whose clear speech lost this many dB more
# than all but 5 % of the model's own validation windows did: its own voice
# in real noise loses a little more than in validation's. Chosen on the
# validation voices: the largest round margin that leaves every harmed
# file the check flags flagged (experiments/voices/README.md).
VOICE_CHECK_MARGIN_DB = 0.25


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
    return recipes.Recipe.of(self.config, self.output_mode).module(
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
    outs = whole_file.denoise_power(self.model, self.variables,
                                    self.normalizer, checked,
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
    """Per input, the dB of its clear speech removed where that is over
    `voice_check_limit_db` (speech it takes for noise: a voice it was not
    trained on); else None."""
    limit = self.voice_check_limit_db
    if limit is None:
      return [None] * len(noisy)
    losses = [metrics.clear_speech_loss_db(n, d)
              for n, d in zip(noisy, denoised)]
    return [l if l > limit else None for l in losses]

  @property
  def voice_check_limit_db(self) -> Optional[float]:
    """The clear speech a file may lose before the voice check flags it:
    what the validation windows lost plus VOICE_CHECK_MARGIN_DB; None: no
    check."""
    if self.val_clear_speech_loss_db is None:
      return None
    return self.val_clear_speech_loss_db + VOICE_CHECK_MARGIN_DB

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
            f'{self.val_clear_speech_loss_db:.2f} dB there (the check allows '
            f'{self.voice_check_limit_db:.2f}): a voice it was '
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
  config = ml_collections.ConfigDict(_tuples(meta['config']))
  try:  # A study's output form is known once its module is imported.
    output_forms.form_class(config.model.name, meta['output_mode'])
  except output_forms.UnknownFormError as e:
    raise checkpointing.CheckpointError(f'{workdir}: {e}') from None
  return Denoiser(config, variables,
                  features.Normalizer.from_dict(meta['normalizer']),
                  step, conv_impl, meta['output_mode'],
                  meta[checkpointing.VOICE_CHECK_KEY])


def load_spec(spec: str) -> Denoiser:
  """`mel_ae.load` of 'WORKDIR' (latest checkpoint), 'WORKDIR@STEP' or
  'WORKDIR@best'."""
  workdir, _, step = spec.partition('@')
  return load(workdir, parse_step(step))


def parse_step(text: str):
  """'' -> None (the latest), 'best' -> 'best', '1000' -> 1000."""
  if text in ('', 'best'):
    return text or None
  if not text.isdigit():
    raise checkpointing.CheckpointError(
        f'checkpoint step {text!r}: give a number or best')
  return int(text)


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
