"""Does the voice check flag the files a speaker model harms, and only those?

  python -m experiments.voices.voice_check --workdir=runs/speaker \
      --sets=own:mel_ae/corpus/test,val:~/.cache/mel_ae/voices/val \
      --margins=0,0.5,1,2,3

Each set is a folder with noisy/ and clean/ (paired by stem). Per set: the
model's and the noisy input's competition MSE, how many files the model
makes worse than its input, and, for each margin, how many files the check
(`Denoiser.loud_changes`: the loudest bins lose more than the model's own
validation ever lost, plus the margin) flags. A margin is right where it
flags the other voices' files the model harms and not its own voice's.
"""
import os

from absl import app
from absl import flags
import numpy as np

from mel_ae import inference
from mel_ae import mel_io
from mel_ae import metrics

_WORKDIR = flags.DEFINE_string('workdir', None, 'Speaker model workdir.')
_SETS = flags.DEFINE_list('sets', None, 'name:folder with noisy/ and clean/.')
_MARGINS = flags.DEFINE_list('margins', ['0', '0.5', '1', '2', '3'],
                             'Margins (dB) to try.')
_OUT = flags.DEFINE_string('out', None, 'Markdown file for the table.')


def _pairs(folder: str):
  clean_paths = mel_io.list_files(os.path.join(folder, 'clean'))
  noisy_paths = mel_io.match_by_stem(
      mel_io.list_files(os.path.join(folder, 'noisy')), clean_paths)
  return ([mel_io.load_mel(p) for p in noisy_paths],
          [mel_io.load_mel(p) for p in clean_paths])


def rows(denoiser: inference.Denoiser, sets, margins):
  """One dict per set: MSEs, files harmed, files flagged per margin."""
  out = []
  for name, folder in sets:
    noisy, clean = _pairs(os.path.expanduser(folder))
    denoised = denoiser.denoise_batch(noisy, warn=False)
    changes = np.array([metrics.loud_power_change_db(n, d)
                        for n, d in zip(noisy, denoised)])
    model = np.array([metrics.competition_mse(d, c)
                      for d, c in zip(denoised, clean)])
    before = np.array([metrics.competition_mse(n, c)
                       for n, c in zip(noisy, clean)])
    row = {'set': name, 'files': len(noisy), 'noisy MSE': before.mean(),
           'model MSE': model.mean(), 'harmed': int((model > before).sum()),
           'loud change dB (min/median)':
               f'{changes.min():.2f} / {np.median(changes):.2f}'}
    for margin in margins:
      limit = denoiser.val_loud_change_db - margin
      row[f'flagged @{margin:g} dB'] = int((changes < limit).sum())
    out.append(row)
  return out


def markdown(table, denoiser) -> str:
  head = list(table[0])
  lines = [f'Model validation lost at most {-denoiser.val_loud_change_db:.2f} '
           'dB in its loudest bins.', '',
           '| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for row in table:
    lines.append('| ' + ' | '.join(
        f'{v:.4g}' if isinstance(v, float) else str(v)
        for v in row.values()) + ' |')
  return '\n'.join(lines) + '\n'


def main(argv):
  del argv
  denoiser = inference.load(_WORKDIR.value, 'best')
  if denoiser.val_loud_change_db is None:
    raise app.UsageError(f'{_WORKDIR.value}: trained before the voice check')
  sets = [tuple(s.split(':', 1)) for s in _SETS.value]
  text = markdown(rows(denoiser, sets, [float(m) for m in _MARGINS.value]),
                  denoiser)
  print(text)
  if _OUT.value:
    with open(_OUT.value, 'w') as f:
      f.write(text)


if __name__ == '__main__':
  flags.mark_flags_as_required(['workdir', 'sets'])
  app.run(main)
