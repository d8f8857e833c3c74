"""Trains a mel autoencoder:

  python -m mel_ae.main --config=configs/base.py --workdir=runs/base

Kept short on purpose: the logic lives in `train.py`, importable from a
notebook. Any config field can be overridden, e.g. --config.model.kernel_size=3.
"""
import os
import sys

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from mel_ae import checkpointing
from mel_ae import cli
from mel_ae import mel_io
from mel_ae import train

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'Where checkpoints and logs go; rerun '
                    'the same command to resume.')
config_flags.DEFINE_config_file('config', None, 'Training config file.',
                                lock_config=True)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  cli.quiet_library_logs()
  if FLAGS.config.distributed:  # Multi-host: coordinator from the environment.
    jax.distributed.initialize()
  if FLAGS.config.compilation_cache_dir:
    jax.config.update('jax_compilation_cache_dir',
                      os.path.expanduser(FLAGS.config.compilation_cache_dir))
    jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.5)
  logging.info('JAX devices: %s', jax.devices())
  try:
    train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except (train.ConfigError, mel_io.MelFileError, checkpointing.CheckpointError,
          FloatingPointError) as e:
    sys.exit(f'error: {e}')


if __name__ == '__main__':
  flags.mark_flags_as_required(['config', 'workdir'])
  app.run(main)
