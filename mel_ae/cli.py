"""What the command-line entry points share."""
import logging

from mel_ae import checkpointing
from mel_ae import inference


def _quiet(record: logging.LogRecord) -> bool:
  return record.levelno >= logging.WARNING or not any(
      lib in record.pathname for lib in ('/orbax/', '/jax/', '/jax_'))


def quiet_library_logs() -> None:
  """Keeps orbax's and JAX's INFO chatter out of our commands' output."""
  logging.getLogger('absl').addFilter(_quiet)


def load_model(spec: str) -> inference.Denoiser:
  """`mel_ae.load` of 'WORKDIR' (latest checkpoint), 'WORKDIR@STEP' or
  'WORKDIR@best'."""
  workdir, _, step = spec.partition('@')
  return inference.load(workdir, parse_step(step))


def parse_step(text: str):
  """'' -> None (the latest), 'best' -> 'best', '1000' -> 1000."""
  if text in ('', 'best'):
    return text or None
  if not text.isdigit():
    raise checkpointing.CheckpointError(
        f'checkpoint step {text!r}: give a number or best')
  return int(text)
