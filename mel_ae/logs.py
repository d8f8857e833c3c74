"""Logging set up for our commands, notebooks and plain scripts: training's
progress lines shown where nobody set logging up, and JAX's and orbax's INFO
chatter kept out. Beneath every stage, so that training shows its progress
in a notebook without importing the command line (mel_ae/cli.py)."""
import logging
import sys

from absl import logging as absl_logging


def _quiet(record: logging.LogRecord) -> bool:
  return record.levelno >= logging.WARNING or not any(
      lib in record.pathname for lib in ('/orbax/', '/jax/', '/jax_'))


def quiet_library_logs() -> None:
  """Keeps orbax's and JAX's INFO chatter out of our commands' output (JAX's
  "Unable to initialize backend 'tpu'" on every machine without one). On
  absl's handler: JAX's loggers reach it without passing the absl logger."""
  absl_logging.get_absl_handler().addFilter(_quiet)


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
  quiet_library_logs()
