"""What a newcomer meets first at every command that takes --config: a
mistake in it said in one line with the nearest valid name, and a --help
that lists the shipped configs and says how to see and change their
fields."""
import subprocess
import sys

import pytest

from conftest import ROOT
from mel_ae import cli

_COMMANDS = ('mel_ae.main', 'mel_ae.fit_noise')


def _command(module, *flags):
  return subprocess.run([sys.executable, '-m', module, *flags], cwd=ROOT,
                        capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize('module', _COMMANDS)
@pytest.mark.parametrize('flags, said', [
    (['--config=configs/tiny.py', '--config.train.num_step=5'],
     "--config.train.num_step: no field 'num_step' in train; did you mean "
     'train.num_steps?'),
    (['--config', 'configs/tiny.py', '--config.trian.num_steps=5'],
     "--config.trian.num_steps: no field 'trian' in the config; did you mean "
     'train?'),
    (['--config=configs/tiny.py', '--config.train.num_steps.x=5'],
     '--config.train.num_steps.x: train.num_steps is a value (int), not a '
     'section'),
    (['--config=configs/tni.py'],
     '--config=configs/tni.py: no such file; the shipped configs: '
     'configs/base.py, configs/denoise.py, configs/general.py, '
     'configs/tiny.py'),
])
def test_a_config_mistake_is_one_line_naming_the_nearest_field(
    module, flags, said, tmp_path):
  result = _command(module, f'--workdir={tmp_path}', *flags)
  assert result.returncode == 1
  assert result.stderr.splitlines() == [f'error: {said}'], result.stderr
  assert not list(tmp_path.iterdir())


@pytest.mark.parametrize('module', _COMMANDS)
def test_help_lists_the_configs_and_how_to_see_and_override_fields(module):
  help_text = ' '.join(_command(module, '--help').stdout.split())
  shipped = cli.shipped_configs()
  assert [path for path, _ in shipped] == [
      'configs/base.py', 'configs/denoise.py', 'configs/general.py',
      'configs/tiny.py']
  for path, line in shipped:
    assert f'{path}: {line}' in help_text
  assert 'The 2020 seed autoencoder on the embedded corpus' in help_text
  assert '--config.train.num_steps=100' in help_text
  show = 'from configs import base; print(base.get_config())'
  assert f"python -c '{show}'" in help_text
  fields = subprocess.run([sys.executable, '-c', show], cwd=ROOT, text=True,
                          capture_output=True, timeout=60, check=True).stdout
  assert 'num_steps: 1000' in fields
