"""What the command-line entry points share."""
import logging

from mel_ae import inference


def _quiet(record: logging.LogRecord) -> bool:
  return record.levelno >= logging.WARNING or not any(
      lib in record.pathname for lib in ('/orbax/', '/jax/', '/jax_'))


def quiet_library_logs() -> None:
  """Keeps orbax's and JAX's INFO chatter out of our commands' output."""
  logging.getLogger('absl').addFilter(_quiet)


def load_model(spec: str) -> inference.Denoiser:
  """`mel_ae.load` of 'WORKDIR' (latest checkpoint) or 'WORKDIR@STEP'."""
  workdir, _, step = spec.partition('@')
  return inference.load(workdir, int(step) if step else None)
