"""What the command-line entry points share: the --config flag, its
mistakes said in one line, and loading a model named on the command line
(their logging set up: mel_ae/logs.py)."""
import ast
import difflib
import glob
import os
import re
import sys
from typing import List, Optional, Tuple

from absl import app
from absl import flags
import ml_collections
from ml_collections import config_flags


# The --config flag defined by `define_config_flag` belongs to the command
# that calls it (its --help lists it), not to this module.
flags.disclaim_key_flags()
_CONFIGS = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'configs')


def shipped_configs() -> List[Tuple[str, str]]:
  """(path from the repository root, the first line of its docstring) of
  every config in configs/."""
  shipped = []
  for path in sorted(glob.glob(os.path.join(_CONFIGS, '[!_]*.py'))):
    with open(path) as f:
      doc = ast.get_docstring(ast.parse(f.read())) or ''
    shipped.append((f'configs/{os.path.basename(path)}',
                    doc.strip().split('\n')[0]))
  return shipped


def define_config_flag() -> None:
  """--config, as every command takes it; its --help lists the shipped
  configs and says how to see and override their fields."""
  listing = '\n'.join(f'{path}: {line}' for path, line in shipped_configs())
  config_flags.DEFINE_config_file('config', None, (
      'The config file, one of:\n'
      f'{listing}\n'
      'Any field can be overridden: --config.train.num_steps=100. A '
      "config's fields and values: python -c 'from configs import base; "
      "print(base.get_config())'."), lock_config=True)


def parse_flags(argv: List[str]) -> List[str]:
  """absl's flag parsing (app.run's flags_parser), but a missing config
  file or an override of a field the config lacks ends the command with
  one line naming it and the nearest field, not a traceback."""
  try:
    rest = app.parse_flags_with_usage(argv)
  except (KeyError, AttributeError, OSError):  # ml_collections', on a path
    _exit_if_mistaken(argv)
    raise
  # ml_collections defers a missing file's error to the config's first use.
  if not isinstance(flags.FLAGS['config'].value, ml_collections.ConfigDict):
    _exit_if_mistaken(argv)
  return rest


def _exit_if_mistaken(argv: List[str]) -> None:
  if mistake := _config_mistake(argv):
    sys.exit(f'error: {mistake}')


def _config_mistake(argv: List[str]) -> Optional[str]:
  """What is wrong with --config or one of its --config.FIELD overrides."""
  argv = flags.FLAGS.read_flags_from_files(argv, force_gnu=False)
  path = _config_path(argv)
  if path is None:
    return None
  if not os.path.isfile(path.split(':', 1)[0]):
    return (f'--config={path}: no such file; the shipped configs: ' +
            ', '.join(p for p, _ in shipped_configs()))
  config = flags.FLAGS['config'].parser.parse(path)
  for arg in argv:
    if re.match(r'-{1,2}(no)?config\.', arg):
      field = arg.split('=', 1)[0].split('.', 1)[1]
      if mistake := _field_mistake(config, field):
        return f'--config.{field}: {mistake}'
  return None


def _config_path(argv: List[str]) -> Optional[str]:
  """--config's value, given as --config=PATH or --config PATH (the last
  one, as absl takes it)."""
  path = None
  for arg, following in zip(argv, argv[1:] + [None]):
    if match := re.match(r'-{1,2}config(=|$)', arg):
      path = arg[match.end():] if match.group(1) else following
  return path


def _field_mistake(config: ml_collections.ConfigDict,
                   field: str) -> Optional[str]:
  """Why `field` ('train.num_steps') names no field of `config`, with the
  nearest name that does; None where it does."""
  node, walked = config, []
  for name in field.split('.'):
    where = '.'.join(walked) or 'the config'
    if not isinstance(node, ml_collections.ConfigDict):
      return f'{where} is a value ({type(node).__name__}), not a section'
    if name not in node:
      near = difflib.get_close_matches(name, list(node.keys()), n=1)
      hint = f'; did you mean {".".join(walked + near)}?' if near else ''
      return f'no field {name!r} in {where}{hint}'
    node = node[name]
    walked.append(name)
  return None
