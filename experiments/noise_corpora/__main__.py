"""Writes the family of noise corpora (corpora.family()) to --out.

  python -m experiments.noise_corpora --out=runs/noise_corpora
  python -m experiments.noise_corpora --out=DIR \
      --names=mixed_float32_level+0dB_floor-70dB
  python -m experiments.noise_corpora --out=DIR --clean_voice=slt \
      --names=slt_mixed_float32_level+0dB_floor-70dB

Each corpus is a folder as the embedded corpus is laid out: train/ (clean),
noisy/ (unpaired), test/clean and test/noisy (pairs by stem), and
manifest.json (the recipe, what was drawn, the truth). Train on one with
--config.data.train_dir=DIR/NAME/train --config.data.noisy_dir=DIR/NAME/noisy
--config.data.test_noisy_dir=DIR/NAME/test/noisy
--config.data.test_clean_dir=DIR/NAME/test/clean.
"""
import json
import os
import subprocess
import sys

from absl import app
from absl import flags

from experiments.noise_corpora import corpora
from mel_ae import mel_io

_OUT = flags.DEFINE_string('out', None, 'Folder the corpora go in.')
_NAMES = flags.DEFINE_list('names', [], 'Corpora to make (default: all).')
_SOURCE = flags.DEFINE_string('source', 'mel_ae/corpus', 'Embedded corpus: '
                              'its train/ and test/clean are the speech.')
_VOICE = flags.DEFINE_enum(
    'clean_voice', None, sorted(corpora.VOICES), 'A voice of '
    'experiments/voices (needs espeak-ng or Festival) as the speech instead '
    'of --source.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the noise.')
_UNPAIRED = 20  # the last this many clean training files become noisy/


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  recipes = [r for r in corpora.family(_VOICE.value)
             if not _NAMES.value or r.name in _NAMES.value]
  unknown = set(_NAMES.value) - {r.name for r in recipes}
  if unknown:
    sys.exit(f'error: no corpus named {", ".join(sorted(unknown))}')
  try:
    train, test = corpora.speech(_VOICE.value, _SOURCE.value,
                                 _SEED.value)
  except (OSError, subprocess.CalledProcessError) as e:
    sys.exit(f'error: --clean_voice={_VOICE.value}: {e}')
  for recipe in recipes:
    root = os.path.join(_OUT.value, recipe.name)
    if os.path.exists(os.path.join(root, 'manifest.json')):
      sys.exit(f'error: {root} holds a corpus already')
    files, manifest = corpora.make(recipe, train[:-_UNPAIRED],
                                   train[-_UNPAIRED:], test, _SEED.value)
    for split, mels in files.items():
      os.makedirs(os.path.join(root, split), exist_ok=True)
      prefix = 'noised_' if split.endswith('noisy') else ''
      for i, mel in enumerate(mels):
        mel_io.save_mel(os.path.join(root, split, f'{prefix}{i:03d}.npy'), mel)
    with open(os.path.join(root, 'manifest.json'), 'w') as f:
      json.dump(manifest, f, indent=1)
      f.write('\n')
    print(f'{root}: {manifest["truth"]}')


if __name__ == '__main__':
  flags.mark_flags_as_required(['out'])
  app.run(main)
