r"""Where a run's config travels: the files its functions are entered in.

  python -m experiments.config_walk --workdir=/tmp/walk            # configs/denoise.py, 4 steps
  python -m experiments.config_walk --workdir=/tmp/walk --config=configs/base.py

Runs what `python -m mel_ae.main` runs (the noise stage where the config
needs it, training, the report) on a few steps, and records every call of
a function in mel_ae/ that receives the config or one of its sections as
an argument. A *stop* is such a call in another file than the previous
one; a *return* a stop in a file already entered before. Printed: the files
in order of first entry, the stops, the returns and each file's entries;
the smaller, the fewer places a reader follows the config through.
"""
import argparse
import collections
import os
import sys

import ml_collections

from configs import denoise
from mel_ae import fit_noise
from mel_ae import report
from mel_ae import train

_PACKAGE = os.path.dirname(os.path.abspath(fit_noise.__file__))


def _sections(config: ml_collections.ConfigDict) -> set:
  """ids of the config and every ConfigDict inside it."""
  ids = {id(config)}
  for value in config.values():
    if isinstance(value, ml_collections.ConfigDict):
      ids |= _sections(value)
  return ids


def walk(config: ml_collections.ConfigDict, workdir: str) -> list:
  """The mel_ae files entered with the config, one entry per stop."""
  watched, stops = _sections(config), []

  def profile(frame, event, arg):
    del arg
    path = frame.f_code.co_filename
    if event != 'call' or not path.startswith(_PACKAGE):
      return
    code = frame.f_code
    args = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
    if any(id(frame.f_locals.get(a)) in watched for a in args):
      name = os.path.relpath(path, os.path.dirname(_PACKAGE))
      if not stops or stops[-1] != name:
        stops.append(name)

  sys.setprofile(profile)
  try:
    train.validate_config(config)
    if fit_noise.needed(config):
      fit_noise.fit(config, workdir)
    report.write_after_training(workdir, train.run(config, workdir), config)
  finally:
    sys.setprofile(None)
  return stops


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--workdir', required=True)
  parser.add_argument('--config', default='configs/denoise.py',
                      help="'configs/denoise.py' or 'configs/base.py'")
  parser.add_argument('--steps', type=int, default=4)
  args = parser.parse_args()
  if args.config == 'configs/base.py':
    from configs import base  # pylint: disable=g-import-not-at-top
    config = base.get_config()
  else:
    config = denoise.get_config()
  config.train.num_steps = args.steps
  config.train.eval_every = config.train.checkpoint_every = args.steps
  stops = walk(config, args.workdir)
  files = list(dict.fromkeys(stops))
  returns = len(stops) - len(files)
  print(f'{args.config}: {len(files)} files, {len(stops)} stops, '
        f'{returns} returns to a file already entered')
  for name, count in collections.Counter(stops).most_common():
    print(f'  {name}: entered {count}x')
  print('  order:', ' -> '.join(stops))


if __name__ == '__main__':
  main()
