"""Two JAX processes on one machine (CPU, gloo) train like one process with
the same global batch, write each file once, and stop, then resume, when one
of them is killed.

Every run is real `python -m mel_ae.main` processes on configs/tiny.py. The
coordinator binds to 127.0.0.1 on a port free when the test starts; gloo
connects the processes through the address of this machine's host name.
"""
# The private helpers of reliability_test and sharding_test serve here too.
# pylint: disable=protected-access
import os
import signal
import socket
import subprocess
import sys
import time

from flax import traverse_util
import numpy as np
import pytest

from conftest import ROOT
from conftest import write_corpus
from mel_ae import checkpointing
from mel_ae import writers
import reliability_test
import sharding_test

_STEPS = 6
_RUN_FLAGS = (f'--config.train.num_steps={_STEPS}',
              '--config.train.log_every=1', '--config.train.eval_every=3',
              '--config.train.checkpoint_every=2',
              # 'auto' picks by device count: the same convs for 1 and 2.
              '--config.runtime.conv_impl=matmul_grad')
_HEARTBEAT_S = 10  # A process silent this long stops the run.
_TIMEOUT_S = 240  # Far beyond a run's time: only a hang gets there.


@pytest.fixture(scope='module')
def data_flags(tmp_path_factory):
  corpus = write_corpus(str(tmp_path_factory.mktemp('corpus')))
  return [f'--config.data.train_dir={corpus["train"]}',
          '--config.data.noisy_dir=',
          f'--config.data.test_noisy_dir={corpus["test_noisy"]}',
          f'--config.data.test_clean_dir={corpus["test_clean"]}']


def _command(workdir, data_flags, launch=()):
  return ([sys.executable, '-m', 'mel_ae.main', '--config=configs/tiny.py',
           f'--workdir={workdir}'] + data_flags + list(_RUN_FLAGS) +
          list(launch))


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _launch(process_id: int, port: int, slurm: bool):
  """(flags, environment) of one process: the coordinator named by flags,
  or found by JAX in the variables srun sets (--config.distributed=True)."""
  env = dict(os.environ, JAX_PLATFORMS='cpu',
             JAX_COORDINATOR_BIND_ADDRESS=f'127.0.0.1:{port}')
  if slurm:
    env.update(SLURM_JOB_ID='1', SLURM_STEP_NODELIST='127.0.0.1',
               SLURM_NTASKS='2', SLURM_PROCID=str(process_id),
               SLURM_LOCALID=str(process_id), JAX_COORDINATOR_PORT=str(port))
    return ['--config.distributed=True'], env
  return [f'--coordinator_address=127.0.0.1:{port}', '--num_processes=2',
          f'--process_id={process_id}'], env


def _start(workdir, data_flags, logs, slurm=False):
  """Starts processes 0 and 1 of a run, each logging to its file in `logs`."""
  port, procs = _free_port(), []
  for i, log in enumerate(logs):
    launch, env = _launch(i, port, slurm)
    with open(log, 'w') as f:
      procs.append(subprocess.Popen(
          _command(workdir, data_flags,
                   launch + [f'--heartbeat_timeout_seconds={_HEARTBEAT_S}']),
          cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=f))
  return procs


def _stop(procs):
  for p in procs:
    if p.poll() is None:
      p.kill()
    p.wait()


def _run(workdir, data_flags, tmp_path, name, slurm=False):
  """Runs both processes to the end; returns their logs."""
  logs = [tmp_path / f'{name}_{i}.log' for i in range(2)]
  procs = _start(workdir, data_flags, logs, slurm)
  try:
    codes = [p.wait(timeout=_TIMEOUT_S) for p in procs]
  finally:
    _stop(procs)
  texts = [log.read_text() for log in logs]
  assert codes == [0, 0], [t[-3000:] for t in texts]
  return texts


@pytest.fixture(scope='module')
def reference(tmp_path_factory, data_flags):
  """An uninterrupted two-process run, started as srun would start it."""
  tmp = tmp_path_factory.mktemp('reference')
  workdir = str(tmp / 'run')
  return workdir, _run(workdir, data_flags, tmp, 'reference', slurm=True)


def _flat_variables(workdir):
  return traverse_util.flatten_dict(
      checkpointing.read_for_inference(workdir, _STEPS)[2], sep='/')


def test_two_processes_train_like_one_and_write_each_file_once(
    reference, data_flags, tmp_path):
  workdir, logs = reference
  one_process = str(tmp_path / 'one')
  result = subprocess.run(_command(one_process, data_flags), cwd=ROOT,
                          text=True, capture_output=True, timeout=_TIMEOUT_S)
  assert result.returncode == 0, result.stderr[-3000:]
  rows = writers.read_metrics(workdir)
  assert [r['step'] for r in rows] == list(range(1, _STEPS + 1))
  np.testing.assert_allclose(
      [r['train_loss'] for r in rows],
      [r['train_loss'] for r in writers.read_metrics(one_process)], rtol=1e-5)
  assert [('Test-set report' in log) for log in logs] == [True, False]
  assert os.path.isfile(os.path.join(workdir, 'report.md'))
  assert len(os.listdir(os.path.join(workdir, 'tensorboard'))) == 1
  two, one = _flat_variables(workdir), _flat_variables(one_process)
  assert sorted(two) == sorted(one)
  # Biases BatchNorm cancels follow rounding noise (sharding_test).
  checked = set(one) - sharding_test._noise_driven(one)
  assert len(checked) > 10 and any('batch_stats' in k for k in checked)
  for key in sorted(checked):
    np.testing.assert_allclose(two[key], one[key], rtol=1e-4, atol=1e-4,
                               err_msg=key)


def _kill_process_1_after_step(procs, checkpoints, step):
  """SIGKILLs process 1 once `step` is saved, before the next save ends
  (both frozen to check); returns the saved steps then."""
  saved = lambda: {int(n) for n in os.listdir(checkpoints) if n.isdigit()}
  deadline = time.monotonic() + _TIMEOUT_S
  while time.monotonic() < deadline and procs[0].poll() is None:
    if os.path.isdir(checkpoints) and step in saved():
      for p in procs:
        p.send_signal(signal.SIGSTOP)
      at_kill = saved()
      procs[1].kill()
      procs[0].send_signal(signal.SIGCONT)
      return at_kill
    time.sleep(0.005)
  raise AssertionError(f'the run ended or hung before step {step} was saved')


def test_a_killed_process_stops_the_other_and_both_rerun_to_the_same_end(
    reference, data_flags, tmp_path):
  workdir = str(tmp_path / 'run')
  checkpoints = checkpointing.checkpoint_dir(workdir)
  logs = [tmp_path / f'killed_{i}.log' for i in range(2)]
  procs = _start(workdir, data_flags, logs)
  try:
    assert _kill_process_1_after_step(procs, checkpoints, 4) == {2, 4}
    # Raises TimeoutExpired if process 0 hangs.
    assert procs[0].wait(timeout=_HEARTBEAT_S + 30) != 0
  finally:
    _stop(procs)
  assert 'another task died' in logs[0].read_text()
  # The newest step damaged as well: both processes must skip it.
  reliability_test._truncate_state(os.path.join(checkpoints, '4'))
  logs = _run(workdir, data_flags, tmp_path, 'rerun')
  for log in logs:
    assert 'Resumed from step 2 ' in log
  assert [('Checkpoint step 4 is damaged' in log) for log in logs] == [
      True, False]
  assert len(os.listdir(os.path.join(workdir, 'damaged_checkpoints'))) == 1
  reliability_test._assert_bitwise_equal(_flat_variables(workdir),
                                         _flat_variables(reference[0]))
  assert (reliability_test._losses(workdir) ==
          reliability_test._losses(reference[0]))
