"""Trains a mel autoencoder:

  python -m mel_ae.main --config=configs/base.py --workdir=runs/base

Kept short on purpose: the logic lives in its stages, each importable from
a notebook: `fit_noise.py` (the noise stage, run first where the config
trains on fitted noise), `train.py`, then `report.py` (the test-set report,
WORKDIR/report.md). Any config field can be overridden, e.g.
--config.model.kernel_size=3.

Several processes train as one data-parallel run (the global batch split
between them) when each is started with --coordinator_address=HOST:PORT
--num_processes=N --process_id=I, or under SLURM with
--config.distributed=True (tests/multiprocess_test.py).
"""
import os
import sys

from absl import app
from absl import flags
from absl import logging
import jax

from mel_ae import checkpointing
from mel_ae import cli
from mel_ae import fit_noise
from mel_ae import logs
from mel_ae import mel_io
from mel_ae import pretrained
from mel_ae import report
from mel_ae import train
from mel_ae import training_data
from mel_ae.backends import host_memory

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'Where checkpoints and logs go; rerun '
                    'the same command to resume.')
cli.define_config_flag()
# A multi-process run without a cluster manager names its coordinator; with
# --config.distributed=True and none of these, JAX detects it (SLURM, MPI).
_COORDINATOR = ('coordinator_address', 'num_processes', 'process_id')
flags.DEFINE_string('coordinator_address', None, 'HOST:PORT on which process '
                    '0 serves the JAX coordinator.')
flags.DEFINE_integer('num_processes', None, 'Processes in the run.')
flags.DEFINE_integer('process_id', None, 'This process: 0 .. '
                     'num_processes - 1.')
flags.DEFINE_integer('heartbeat_timeout_seconds', 100, 'A multi-process run '
                     'stops when one process is silent this long.')
flags.register_multi_flags_validator(
    _COORDINATOR, lambda f: len({v is None for v in f.values()}) == 1,
    message='give all of --coordinator_address, --num_processes and '
    '--process_id, or none')


def _initialize_distributed(detect: bool) -> None:
  """Joins a multi-process run: the coordinator from the flags, or (with
  `detect`) from the environment; else a one-process run."""
  if FLAGS.coordinator_address is None and not detect:
    return
  # CPU processes exchange gradients through gloo (the default in jax
  # 0.10.2; named so a changed default cannot break CPU runs).
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  jax.distributed.initialize(
      FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id,
      heartbeat_timeout_seconds=FLAGS.heartbeat_timeout_seconds)


def run_stages(config, workdir: str) -> None:
  """The stages in their order: the config checked (all of it, before the
  noise fit), the noise fitted where the config trains on it, training,
  then the test report."""
  train.validate_config(config)
  if fit_noise.needed(config):
    fit_noise.fit(config, workdir)
  report.write_after_training(workdir, train.run(config, workdir), config)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  if FLAGS.config.runtime.reuse_host_memory:
    host_memory.reuse_freed_memory()  # Before JAX starts its threads.
  logs.quiet_library_logs()
  _initialize_distributed(FLAGS.config.distributed)
  if FLAGS.config.compilation_cache_dir:
    jax.config.update('jax_compilation_cache_dir',
                      os.path.expanduser(FLAGS.config.compilation_cache_dir))
    jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.5)
  logging.info('JAX devices: %s', jax.devices())
  try:
    run_stages(FLAGS.config, FLAGS.workdir)
  except (train.ConfigError, training_data.DataError, mel_io.MelFileError,
          fit_noise.NoiseFitError, checkpointing.CheckpointError,
          pretrained.PretrainedError, FloatingPointError) as e:
    sys.exit(f'error: {e}')


if __name__ == '__main__':
  flags.mark_flags_as_required(['config', 'workdir'])
  app.run(main, flags_parser=cli.parse_flags)
