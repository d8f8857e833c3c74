"""The noise stage: fits the noise model to the unpaired noisy files, once,
before training, and decides the model's output form from it.

  python -m mel_ae.fit_noise --config=configs/denoise.py --workdir=runs/denoise

`python -m mel_ae.main` runs it first where a config needs it (`needed`:
denoise mode with noise kind 'fitted' or model.output_mode='fitted'), and
training reads what it wrote (`read`): training never fits, and the config
a run was started with is the config it saves, its output form beside it.

WORKDIR/noise_model.json holds the noise kinds the bank is built of, the
fitted model (null where no kind is fitted), the output form the noise
decides and a digest of what the fit read (config.noise, config.audio, the
seed, the clean training and unpaired noisy files); noise_model.png the
fit's histograms. A rerun reuses a file fitted to the same; one fitted to
anything else is refused in one line, never overwritten.
"""
import dataclasses
import hashlib
import json
import os
import sys
from typing import Any, Dict, Optional, Sequence, Tuple

from absl import app
from absl import flags
from absl import logging
import jax
from jax.experimental import multihost_utils
import ml_collections
import numpy as np

from mel_ae import audio
from mel_ae import checkpointing
from mel_ae import input_pipeline
from mel_ae import logs
from mel_ae import mel_io
from mel_ae import models
from mel_ae import noise_bank
from mel_ae import noise_model
from mel_ae import settings

FILE = 'noise_model.json'
FLAGS = flags.FLAGS


class NoiseFitError(ValueError):
  """The noise cannot be fitted, or the workdir's fit is not of these files
  and config; one line."""


@dataclasses.dataclass(frozen=True)
class NoiseFit:
  """What the stage decided: the noise kinds the bank is built of, the
  fitted model (None where no kind is fitted), the output form the noise
  asks for ('kernel' where any corruption scales the power per bin, with
  added power or not: a learned weighted mean of neighbouring bins undoes
  gains that scatter each bin on its own; 'residual', a gain per bin, where
  noise only adds power) and the digest of what it was fitted to."""
  kinds: Tuple[str, ...]
  model: Optional[noise_model.NoiseModel]
  output_mode: str
  inputs: str

  def to_dict(self) -> Dict[str, Any]:
    return {'inputs': self.inputs, 'kinds': list(self.kinds),
            'output_mode': self.output_mode,
            'noise_model': self.model.to_dict() if self.model else None}

  @classmethod
  def from_dict(cls, values: Dict[str, Any]) -> 'NoiseFit':
    model = values['noise_model']
    return cls(tuple(values['kinds']),
               noise_model.NoiseModel.from_dict(model) if model else None,
               values['output_mode'], values['inputs'])


def needed(config: ml_collections.ConfigDict) -> bool:
  """Whether a run trains on fitted noise or lets the noise pick its output."""
  return config.train.mode == 'denoise' and (
      'fitted' in settings.section(config, 'noise').kinds
      or config.model.output_mode == models.FITTED)


def _digest(config: ml_collections.ConfigDict, clean: Sequence[np.ndarray],
            noisy: Sequence[np.ndarray]) -> str:
  """sha256 of what a fit reads: the noise and audio settings (as filled in:
  `settings.section`, audio.MelSpec), the seed and the files."""
  read = json.dumps([settings.section(config, 'noise').to_dict(),
                     dataclasses.asdict(audio.MelSpec.from_config(config.audio)),
                     config.seed, len(clean), len(noisy)], sort_keys=True)
  files = checkpointing.digest((clean, noisy))
  return hashlib.sha256((read + files).encode()).hexdigest()


def _fit(config: ml_collections.ConfigDict, clean: Sequence[np.ndarray],
         noisy: Sequence[np.ndarray]
         ) -> Tuple[NoiseFit, noise_bank.NoiseBank]:
  """The fit and the bank it makes (whether any of its kinds scales the
  power per bin decides the output form)."""
  noise_config = settings.section(config, 'noise')
  kinds = noise_bank.available_kinds(noise_config, config.data.noisy_dir,
                                     noisy)
  try:
    bank = noise_bank.build_noise_bank(
        noise_config, audio.MelSpec.from_config(config.audio), clean, noisy,
        config.seed, kinds=kinds)
  except noise_model.NoiseModelError as e:
    raise NoiseFitError(f'data.noisy_dir {config.data.noisy_dir}: {e}'
                        ) from None
  if bank.model is not None:
    logging.info('%s', bank.model.summary())
  # 'kernel' for a gain with additive noise too: on validation, 1.30
  # against 'residual''s 4.46 (experiments/noise_corpora/README.md).
  mode = 'kernel' if bank.scales else 'residual'
  effect = ('scales the power per bin' if bank.scales else 'adds power'
            if bank.additive else 'changes nothing: the model learns to '
            'hand its input back')
  logging.info('The noise decides the output form %r (the training noise '
               '%s).', mode, effect)
  return NoiseFit(kinds, bank.model, mode, _digest(config, clean, noisy)), bank


def decide(config: ml_collections.ConfigDict, clean: Sequence[np.ndarray],
           noisy: Sequence[np.ndarray]) -> Optional[NoiseFit]:
  """The stage's result for these files, computed here and written nowhere
  (studies of finished runs); None where the config needs no stage."""
  return _fit(config, clean, noisy)[0] if needed(config) else None


def _read(path: str, inputs: str) -> NoiseFit:
  """The fit at `path`, which must have been made from `inputs`."""
  try:
    with open(path) as f:
      fit = NoiseFit.from_dict(json.load(f))
  except FileNotFoundError:
    raise NoiseFitError(f'{path}: no noise fit; run python -m '
                        'mel_ae.fit_noise with the same --config and '
                        '--workdir first (mel_ae.main does)') from None
  except (ValueError, KeyError, TypeError):
    fit = None  # Not this stage's file, e.g. one written before it.
  if fit is None or fit.inputs != inputs:
    raise NoiseFitError(
        f'{path} was fitted to other files or another config.noise, '
        'config.audio or seed (or by an older mel_ae): use a new --workdir, '
        'or move it away to fit again')
  return fit


def read(config: ml_collections.ConfigDict, workdir: str,
         clean: Sequence[np.ndarray],
         noisy: Sequence[np.ndarray]) -> Optional[NoiseFit]:
  """What the stage wrote to WORKDIR for this config and these clean
  training and unpaired noisy files (None where the config needs no
  stage); NoiseFitError in one line where it is missing or of others."""
  if not needed(config):
    return None
  return _read(os.path.join(workdir, FILE), _digest(config, clean, noisy))


def _check_config(config: ml_collections.ConfigDict) -> None:
  """Rejects settings of what the stage reads before anything loads."""
  checks = (models.check_config(config)
            + input_pipeline.check_config(config.data,
                                          models.stride(config.model))
            + noise_bank.check_config(settings.section(config, 'noise'))
            + audio.check_config(config.audio))
  for ok, message in checks:
    if not ok:
      raise NoiseFitError(message)
  if not needed(config):
    raise NoiseFitError(
        "nothing to fit: the noise stage serves train.mode='denoise' with "
        "noise.kinds 'fitted' or model.output_mode='fitted'")


def _write(workdir: str, config: ml_collections.ConfigDict,
           clean: Sequence[np.ndarray], noisy: Sequence[np.ndarray]) -> None:
  """Fits, and writes noise_model.png, then noise_model.json (its presence
  says the stage finished)."""
  fit, bank = _fit(config, clean, noisy)
  os.makedirs(workdir, exist_ok=True)
  if fit.model is not None:
    noise_model.plot(os.path.join(workdir, 'noise_model.png'), fit.model,
                     clean, noisy, settings.section(config, 'noise'),
                     config.seed,
                     bank.corruptions['fitted'])
  path = os.path.join(workdir, FILE)
  with open(path + '.tmp', 'w') as f:
    json.dump(fit.to_dict(), f, indent=1)
    f.write('\n')
  os.replace(path + '.tmp', path)


def fit(config: ml_collections.ConfigDict, workdir: str) -> NoiseFit:
  """The stage: fits the noise to the clean training files (validation's
  held out, as training holds them out) and the unpaired noisy files,
  writes WORKDIR/noise_model.json (+ .png), and returns what it holds.

  Process 0 alone fits and writes, the others wait and read. A file that
  is there already is reused where it was fitted to the same files and
  config, else refused (NoiseFitError, one line).
  """
  _check_config(config)
  spec = audio.MelSpec.from_config(config.audio)
  d = config.data
  clean, _ = input_pipeline.load_split(d, spec, models.stride(config.model),
                                       config.seed)
  noisy = input_pipeline.load_folder(d.noisy_dir, spec, 1).mels if (
      d.noisy_dir) else ()
  path = os.path.join(workdir, FILE)
  existed = os.path.exists(path)
  if jax.process_index() == 0 and not existed:
    _write(workdir, config, clean, noisy)
  multihost_utils.sync_global_devices('noise fit written')
  result = read(config, workdir, clean, noisy)
  if existed:
    logging.info('Noise fit: reusing %s (of the same files and config).',
                 path)
  return result


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  logs.quiet_library_logs()
  try:
    fit(FLAGS.config, FLAGS.workdir)
  except (NoiseFitError, mel_io.MelFileError) as e:
    sys.exit(f'error: {e}')


if __name__ == '__main__':
  # The command line's helpers only when run as a command: training imports
  # this module, and nothing after it in the flow. The flags are defined
  # here, not at import, where mel_ae.main defines its own.
  from mel_ae import cli  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string('workdir', None, 'Where noise_model.json goes: the '
                      "training run's --workdir.")
  cli.define_config_flag()
  flags.mark_flags_as_required(['config', 'workdir'])
  app.run(main, flags_parser=cli.parse_flags)
