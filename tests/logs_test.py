"""Training progress shows where nobody set logging up (a plain script, a
notebook), and nothing changes where somebody did (absl's app.run, as in
`python -m mel_ae.main`; logging.basicConfig)."""
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

_TRAIN = '''
import sys
sys.path.insert(0, 'tests')
from conftest import make_tiny_config, write_corpus
from mel_ae import train
train.train_and_evaluate(make_tiny_config(write_corpus(sys.argv[1])),
                         sys.argv[2])
'''
# absl's format: I<mmdd> <time> <thread> <file>:<line>] <message>
_ABSL_INFO = re.compile(r'^I\d{4} [\d:.]+ +\d+ (\S+):\d+\] (.*)$', re.M)


def _python(*args, timeout=300):
  """Imports this checkout's mel_ae, also from a script outside it."""
  return subprocess.run([sys.executable, *args], cwd=ROOT, timeout=timeout,
                        capture_output=True, text=True,
                        env={**os.environ, 'PYTHONPATH': ROOT})


def test_plain_script_shows_progress_without_library_chatter(tmp_path):
  result = _python('-c', _TRAIN, str(tmp_path / 'corpus'),
                   str(tmp_path / 'run'))
  assert result.returncode == 0, result.stderr[-3000:]
  lines = _ABSL_INFO.findall(result.stderr)
  steps = [m.split()[1] for _, m in lines if m.startswith('step ')]
  assert steps == ['2/6', '3/6', '4/6', '6/6'], result.stderr[-3000:]
  assert any('trainable parameters' in m for _, m in lines)
  # Said before the silence of the first compile, not after it.
  messages = [m for _, m in lines]
  first_step = next(i for i, m in enumerate(messages) if m.startswith('step '))
  assert ('Training steps 1 to 6: compiling, then a line every 2 steps.'
          in messages[:first_step])
  # At each evaluation (steps 3 and 6), validation then test, one line each.
  after_steps = [messages[i + 1:i + 3] for i, m in enumerate(messages)
                 if m.startswith(('step 3/6', 'step 6/6'))]
  for val, test in after_steps:
    assert re.fullmatch(r'  val_mse \S+  val_power_mse \S+  val_lsd_db \S+'
                        r'  val_clear_speech_loss_db_p95 \S+',
                        val), val
    assert re.fullmatch(r'  test_mse \S+  test_noisy_mse \S+', test), test
  assert len(after_steps) == 2
  # Orbax's and JAX's INFO lines (checkpoint_manager.py, ...) stay out.
  ours = {f for f in os.listdir(os.path.join(ROOT, 'mel_ae'))
          if f.endswith('.py')}
  assert {f for f, _ in lines} <= ours, {f for f, _ in lines} - ours


_PROBE = '''
import logging
{setup}
from absl import logging as absl_logging
from mel_ae import logs
before = list(logging.getLogger().handlers)
logs.show_progress_logs()
absl_logging.info('probe')
print(list(logging.getLogger().handlers) == before)
'''


@pytest.mark.parametrize('setup, shown', [
    # Set up by the script: its level and format stay.
    ("logging.basicConfig(level=logging.WARNING, format='%(message)s')", []),
    ('logging.basicConfig(level=logging.INFO)', ['INFO:absl:probe']),
])
def test_configured_logging_is_left_alone(setup, shown):
  result = _python('-c', _PROBE.format(setup=setup), timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.split() == ['True']
  assert [l for l in result.stderr.splitlines() if 'probe' in l] == shown


_APP = '''
import logging
from absl import app
from absl import logging as absl_logging
from mel_ae import logs

def main(_):
  before = list(logging.getLogger().handlers)
  logs.show_progress_logs()
  absl_logging.info('probe')
  print(list(logging.getLogger().handlers) == before)

app.run(main)
'''


_COMMAND = '''
from absl import app
from absl import logging as absl_logging
import jax
from mel_ae import logs

def main(_):
  logs.quiet_library_logs()
  jax.devices()  # JAX logs each backend it cannot start (tpu) at INFO.
  absl_logging.info('probe')

app.run(main)
'''


def test_commands_show_their_lines_without_jax_chatter(tmp_path):
  """As `python -m mel_ae.main` after logs.quiet_library_logs()."""
  script = tmp_path / 'command.py'
  script.write_text(_COMMAND)
  result = _python(str(script), timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  assert _ABSL_INFO.findall(result.stderr) == [('command.py', 'probe')], (
      result.stderr)


@pytest.mark.parametrize('flags, probes', [([], 1), (['--verbosity=-1'], 0)])
def test_absl_app_keeps_its_flags(tmp_path, flags, probes):
  """As `python -m mel_ae.main`: app.run set logging up, its flags rule."""
  script = tmp_path / 'app.py'
  script.write_text(_APP)
  result = _python(str(script), *flags, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.split() == ['True']
  assert len([m for _, m in _ABSL_INFO.findall(result.stderr)
              if m == 'probe']) == probes
  assert 'before flag parsing' not in result.stderr
