r"""Where a run's config travels: the mel_ae files its functions enter.

  python -m experiments.config_walk --config=configs/denoise.py --workdir=/tmp/walk \
      --config.train.num_steps=4 --config.train.eval_every=4 --config.train.checkpoint_every=4

Runs `mel_ae.main`'s stages (`run_stages`: checks, the noise stage where the
config needs it, training, the report) with the same flags, and records
every call of a function in mel_ae/ that is handed a config or any section
or derived settings of it (any ConfigDict argument, positional, keyword or
variadic, or a `self` that holds one as `.config`). A *stop* is such a call
in another file than the previous one; a *return* a stop in a file entered
before. Printed: the files in order of first entry with their entries, the
stops and the returns; the fewer, the fewer places a reader follows the
config through.
"""
import collections
import inspect
import os
import sys
import threading
from typing import List

from absl import app
from absl import flags
import ml_collections

from mel_ae import cli
from mel_ae import main as stages

FLAGS = flags.FLAGS
_PACKAGE = os.path.dirname(os.path.abspath(stages.__file__))


def _holds_config(frame) -> bool:
  """Whether the called function was handed a ConfigDict."""
  info = inspect.getargvalues(frame)
  values = [info.locals.get(name) for name in info.args]
  for name in (info.varargs, info.keywords):
    if name:
      packed = info.locals.get(name)
      values += list(packed.values() if isinstance(packed, dict) else packed)
  values += [getattr(v, 'config', None) for v in values[:1]]
  return any(isinstance(v, ml_collections.ConfigDict) for v in values)


def walk(config: ml_collections.ConfigDict, workdir: str) -> List[str]:
  """The mel_ae files entered with the config, one entry per stop."""
  stops = []

  def profile(frame, event, arg):
    del arg
    path = frame.f_code.co_filename
    if event == 'call' and path.startswith(_PACKAGE) and _holds_config(frame):
      name = os.path.relpath(path, os.path.dirname(_PACKAGE))
      if not stops or stops[-1] != name:
        stops.append(name)

  sys.setprofile(profile)
  threading.setprofile(profile)
  try:
    stages.run_stages(config, workdir)
  finally:
    sys.setprofile(None)
    threading.setprofile(None)
  return stops


def main(argv):
  del argv
  stops = walk(FLAGS.config, FLAGS.workdir)
  entries = collections.Counter(stops)
  print(f'{len(entries)} files, {len(stops)} stops, '
        f'{len(stops) - len(entries)} returns to a file entered before')
  for name in dict.fromkeys(stops):
    print(f'  {name}: entered {entries[name]}x')


if __name__ == '__main__':
  flags.mark_flags_as_required(['config', 'workdir'])
  app.run(main, flags_parser=cli.parse_flags)
