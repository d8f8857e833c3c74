r"""Scores a folder of denoised mels or recordings against clean references.

  python -m mel_ae.evaluate --pred=DIR --ref=DIR [--noisy=DIR] \
      [--json=PATH [--overwrite]] [--root=16]

Where the references are audio (.wav, .flac, .ogg), so are the predictions:
they are scored by PESQ-WB, STOI and SI-SDR (mel_ae/audio_metrics.py) and,
re-analysed into power mels as the corpus' files were made (MelSpec()), by
the mel metrics.

Files are matched by key: the file name without `.npy` and without a leading
run of non-digits, so `noised_012.npy` and `pred_012.npy` both match
`012.npy` (a name with no digits is its own key). Every reference needs a
prediction (and a noisy input with --noisy) of the same shape; all problems
are listed before exiting with status 1. Predictions without a reference are
ignored. Nothing is written unless --json is given. Flags are defined only
when run as a script, so other tools can import `evaluate_dirs` freely.
"""
import json
import os
import sys
from typing import Dict, List, Optional, Tuple

from absl import app
from absl import flags
import numpy as np

from mel_ae import audio
from mel_ae import audio_metrics
from mel_ae import metrics
from mel_ae.features import Normalizer, fit_normalizer
from mel_ae.mel_io import (AUDIO_SUFFIXES, MEL_SUFFIX, MelFileError,
                           list_files, load_mel, refuse_overwrite, stem_key)


def _index(directory: str, problems: List[str],
           suffixes=(MEL_SUFFIX,)) -> Dict[str, str]:
  """Key -> path of a folder's data files, noting keys held by two files."""
  index = {}
  for path in list_files(directory, suffixes=suffixes):
    key = stem_key(path)
    if key in index:
      problems.append(f'{path}: same key {key!r} as {index[key]}')
    index[key] = path
  return index


def _load_matched(ref: str, indexes: Dict[str, Tuple[str, Dict[str, str]]],
                  problems: List[str], load=load_mel
                  ) -> Optional[Dict[str, np.ndarray]]:
  """Role -> mel of a reference and its matches; None after any problem."""
  key, paths = stem_key(ref), {'ref': ref}
  for role, (directory, index) in indexes.items():
    if key in index:
      paths[role] = index[key]
    else:
      problems.append(f'{ref}: no {role} file with key {key!r} in {directory}')
  mels = {}
  for role, path in paths.items():
    try:
      mels[role] = load(path)
    except MelFileError as e:
      problems.append(str(e))
  if len(mels) <= len(indexes):  # Something missing or unreadable.
    return None
  wrong = [f'{paths[r]}: shape {m.shape}, but {ref} has {mels["ref"].shape}'
           for r, m in mels.items() if m.shape != mels['ref'].shape]
  problems.extend(wrong)
  return None if wrong else mels


def evaluate_dirs(pred_dir: str, ref_dir: str, noisy_dir: Optional[str] = None,
                  normalizer: Optional[Normalizer] = None,
                  root: float = 16.0) -> Tuple[List[dict], dict]:
  """Per-file metrics rows and their mean.

  Without `normalizer`, the normalised-domain MSE uses a root-`root`
  normaliser whose scale is fitted on the references (as training fits it on
  its clean files), so the score does not depend on the predictions.

  Raises:
    MelFileError: listing every missing, unreadable or mis-shaped file.
  """
  problems = []
  indexes = {role: (d, _index(d, problems))
             for role, d in (('pred', pred_dir), ('noisy', noisy_dir)) if d}
  loaded = [(os.path.basename(ref), _load_matched(ref, indexes, problems))
            for ref in list_files(ref_dir, suffixes=('.npy',))]
  if problems:
    raise MelFileError(f'{len(problems)} problem(s) with the files:\n  '
                       + '\n  '.join(problems))
  if normalizer is None:
    normalizer = fit_normalizer((m['ref'] for _, m in loaded), root=root)
  rows = [{'file': name, **metrics.file_metrics(
      m['pred'], m['ref'], normalizer, m.get('noisy'))} for name, m in loaded]
  return rows, metrics.summarize(rows)


def evaluate_audio_dirs(pred_dir: str, ref_dir: str,
                        noisy_dir: Optional[str] = None,
                        spec: audio.MelSpec = audio.MelSpec(),
                        root: float = 16.0) -> Tuple[List[dict], dict]:
  """Per-file metrics rows of recordings, and their mean.

  Every recording is read at spec.sr (mono); the mel metrics score its power
  mel, the waveform metrics the samples (`audio_metrics.waveform_scores`).

  Raises:
    MelFileError: listing every missing, unreadable or mis-shaped file.
  """
  problems = []
  indexes = {role: (d, _index(d, problems, AUDIO_SUFFIXES))
             for role, d in (('pred', pred_dir), ('noisy', noisy_dir)) if d}
  load = lambda path: audio.load_audio(path, spec.sr)
  loaded = [(os.path.basename(ref), _load_matched(ref, indexes, problems, load))
            for ref in list_files(ref_dir, suffixes=AUDIO_SUFFIXES)]
  if problems:
    raise MelFileError(f'{len(problems)} problem(s) with the files:\n  '
                       + '\n  '.join(problems))
  mels = [{role: audio.audio_to_mel(w, spec) for role, w in m.items()}
          for _, m in loaded]
  normalizer = fit_normalizer((m['ref'] for m in mels), root=root)
  rows = []
  for (name, waves), mel in zip(loaded, mels):
    row = {'file': name, **metrics.file_metrics(mel['pred'], mel['ref'],
                                                normalizer, mel.get('noisy'))}
    row.update(audio_metrics.waveform_scores(waves['pred'], waves['ref'],
                                             spec.sr))
    if 'noisy' in waves:
      row.update(audio_metrics.waveform_scores(waves['noisy'], waves['ref'],
                                               spec.sr, prefix='noisy_'))
    rows.append(row)
  return rows, metrics.summarize(rows)


def is_audio_dir(directory: str) -> bool:
  """Whether a folder holds recordings (scored as such) rather than mels."""
  return os.path.isdir(directory) and any(
      name.lower().endswith(AUDIO_SUFFIXES) for name in os.listdir(directory))


def format_table(rows: List[dict], summary: dict) -> str:
  """Aligned text table of the rows and a final `mean` row."""
  columns = list(rows[0])
  cells = [columns] + [
      [str(row[c]) if c == 'file' else f'{row[c]:.5g}' for c in columns]
      for row in rows + [{'file': 'mean', **summary}]]
  widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
  return '\n'.join(
      '  '.join(cell.ljust(w) if i == 0 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(line, widths)))
      for line in cells)


def write_json(path: str, report: dict, overwrite: bool = False) -> None:
  """Writes the report atomically; refuses to replace a file by default."""
  refuse_overwrite(path, overwrite)
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(report, f, indent=2)
  os.replace(tmp, path)


def _define_flags() -> None:
  flags.DEFINE_string('pred', None, 'Folder of denoised .npy mels, or of '
                      'recordings where --ref holds recordings.')
  flags.DEFINE_string('ref', None, 'Folder of clean .npy mels or recordings.')
  flags.DEFINE_string('noisy', None, 'Optional folder of noisy inputs, to '
                      'report the improvement over them.')
  flags.DEFINE_string('json', None, 'Optional path of a JSON report.')
  flags.DEFINE_bool('overwrite', False, 'Replace an existing --json file.')
  flags.DEFINE_float('root', 16.0, 'Compression root of the normalised '
                     'domain; its scale is fitted on the --ref files.',
                     lower_bound=1.0)
  flags.mark_flags_as_required(['pred', 'ref'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  args = flags.FLAGS
  try:
    if args.json:  # Fail before the slow part, not after it.
      refuse_overwrite(args.json, args.overwrite)
    if is_audio_dir(args.ref):
      if audio_metrics.missing():
        print(f'{", ".join(audio_metrics.missing())} skipped: their packages '
              "are not installed (pip install -e '.[eval]')", file=sys.stderr)
      rows, summary = evaluate_audio_dirs(args.pred, args.ref, args.noisy,
                                          root=args.root)
    else:
      rows, summary = evaluate_dirs(args.pred, args.ref, args.noisy,
                                    root=args.root)
    print(format_table(rows, summary))
    if args.json:
      report = {'pred': args.pred, 'ref': args.ref, 'noisy': args.noisy,
                'root': args.root, 'files': rows, 'mean': summary}
      write_json(args.json, report, args.overwrite)
  except (MelFileError, OSError) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
