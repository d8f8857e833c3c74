"""What the command-line entry points share, and their logging set up for
notebooks and plain scripts."""
import logging
import sys

from absl import logging as absl_logging

from mel_ae import checkpointing
from mel_ae import inference


def _quiet(record: logging.LogRecord) -> bool:
  return record.levelno >= logging.WARNING or not any(
      lib in record.pathname for lib in ('/orbax/', '/jax/', '/jax_'))


def quiet_library_logs() -> None:
  """Keeps orbax's and JAX's INFO chatter out of our commands' output."""
  logging.getLogger('absl').addFilter(_quiet)


def _logging_configured() -> bool:
  """False while the root logger holds nothing but, perhaps, the bare stderr
  handler that absl's first log call adds with logging.basicConfig()."""
  root = logging.getLogger()
  bare = lambda h: (
      type(h) is logging.StreamHandler  # pylint: disable=unidiomatic-typecheck
      and h.stream is sys.stderr and h.level == logging.NOTSET
      and getattr(h.formatter, '_fmt', None) == logging.BASIC_FORMAT)
  return (root.level != logging.WARNING or
          not all(bare(h) for h in root.handlers))


def show_progress_logs() -> None:
  """Makes absl's INFO lines (training progress) visible where nobody set
  logging up: a notebook, a plain script, where absl's verbosity is WARNING.
  Raises it to INFO and installs absl's handler (which takes the place of
  that bare stderr handler), keeping orbax's and JAX's INFO chatter out.
  Does nothing where logging is configured (absl's app.run, which the
  command-line tools use; logging.basicConfig with a level or a format;
  pytest), so those print what they did before."""
  if _logging_configured():
    return
  absl_logging.use_absl_handler()
  absl_logging.set_verbosity(absl_logging.INFO)
  # On the handler, not the 'absl' logger: JAX's own loggers reach the root
  # logger, whose level is now INFO, without passing the absl logger.
  absl_logging.get_absl_handler().addFilter(_quiet)


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
