r"""Denoises files into the competition's submission format.

  python -m mel_ae.denoise --workdir=runs/base --input=NOISY_DIR --output=OUT
  python -m mel_ae.denoise --method=spectral_subtraction --input=F.npy \
      --output=OUT [--audio] [--plots --clean=CLEAN_DIR]

One power mel `.npy` per input (same file name, shape and dtype; audio inputs
give `<stem>.npy`). Inputs are never modified, the output folder must differ
from the input folder, and existing outputs are kept unless --overwrite. A bad
file is reported and skipped; the failures are listed at the end and the exit
status is 1.
"""
import os
import sys
import time
from typing import List, Optional

from absl import app
from absl import flags
import numpy as np

from mel_ae import audio
from mel_ae import baselines
from mel_ae import checkpointing
from mel_ae import cli
from mel_ae import inference
from mel_ae import mel_io
from mel_ae import plots

_METHODS = ['model'] + sorted(baselines.METHODS)


def _define_flags() -> None:
  flags.DEFINE_string('input', None, 'A file or a folder of .npy / audio.')
  flags.DEFINE_string('output', None, 'Folder for the denoised .npy files.')
  flags.DEFINE_enum('method', 'model', _METHODS, 'Denoiser to run.')
  flags.DEFINE_string('workdir', None, 'Training workdir (for --method=model,'
                      ' and for the mel parameters of audio inputs).')
  flags.DEFINE_string('step', '', "Checkpoint step, or 'best' (the least "
                      'validation metric); default: the latest.')
  flags.DEFINE_bool('audio', False, 'Also write a Griffin-Lim <stem>.wav.')
  flags.DEFINE_bool('plots', False, 'Also write a <stem>.png spectrogram.')
  flags.DEFINE_string('clean', None, 'Folder of clean references, matched '
                      'by stem, shown in the plots.')
  flags.DEFINE_bool('overwrite', False, 'Replace existing outputs.')
  flags.DEFINE_integer('files_per_batch', 16, 'Files loaded and denoised '
                       'together: amortises model calls, bounds memory.',
                       lower_bound=1)
  flags.mark_flags_as_required(['input', 'output'])
  baselines.define_flags()


def _inputs(path: str) -> List[str]:
  if os.path.isdir(path):
    return mel_io.list_files(path)
  if not os.path.isfile(path):
    raise mel_io.MelFileError(f'{path}: no such file or folder')
  return [path]


def _check_output(inputs: List[str], output: str) -> None:
  out = os.path.realpath(output)
  if any(os.path.dirname(os.path.realpath(p)) == out for p in inputs):
    raise mel_io.MelFileError(f'{output}: is the input folder; choose another '
                              '--output so no input is overwritten')


def _write(path: str, mel: np.ndarray, noisy: np.ndarray, spec, args,
           clean: Optional[str]) -> None:
  stem = os.path.join(args.output, os.path.splitext(os.path.basename(path))[0])
  mel_io.save_mel(stem + '.npy', mel, args.overwrite)
  if args.audio:
    mel_io.refuse_overwrite(stem + '.wav', args.overwrite)
    audio.save_wav(stem + '.wav', audio.mel_to_audio(mel, spec), spec.sr)
  if args.plots:
    panels = {'noisy input': noisy, f'denoised ({args.method})': mel}
    if clean:
      panels['clean reference'] = mel_io.load_mel(clean)
    plots.save(plots.spectrogram_panels(panels, spec, os.path.basename(path)),
               stem + '.png')


def _load_group(paths, spec, args, failures):
  """(path, mel, dtype) for each readable input whose outputs may be written."""
  loaded = []
  for path in paths:
    stem = os.path.splitext(os.path.basename(path))[0]
    try:
      mel_io.refuse_overwrite(os.path.join(args.output, stem + '.npy'),
                              args.overwrite)
      mel = audio.load_input(path, spec)
      loaded.append((path, mel, mel_io.stored_dtype(path)))
    except mel_io.MelFileError as e:
      failures.append(str(e))
  return loaded


def run(args) -> List[str]:
  """Denoises every input; returns the one-line failures."""
  denoiser = (inference.load(args.workdir, cli.parse_step(args.step))
              if args.method == 'model' or args.workdir else None)
  spec = denoiser.spec if denoiser else audio.MelSpec()
  inputs = _inputs(args.input)
  _check_output(inputs, args.output)
  clean = ({mel_io.stem_key(p): p for p in mel_io.list_files(args.clean)}
           if args.clean else {})
  params = ({} if args.method == 'model'
            else baselines.params_from_flags(args.method))
  os.makedirs(args.output, exist_ok=True)
  failures, frames, start = [], 0, time.perf_counter()
  group = args.files_per_batch
  for i in range(0, len(inputs), group):
    loaded = _load_group(inputs[i:i + group], spec, args, failures)
    mels = [m for _, m, _ in loaded]
    outs = (denoiser.denoise_batch(mels) if args.method == 'model' else
            [baselines.apply(args.method, m, **params) for m in mels])
    for (path, noisy, dtype), out in zip(loaded, outs):
      try:
        _write(path, out.astype(dtype), noisy, spec, args,
               clean.get(mel_io.stem_key(path)))
        frames += noisy.shape[1]
      except mel_io.MelFileError as e:
        failures.append(str(e))
  seconds = frames * spec.hop_length / spec.sr
  elapsed = time.perf_counter() - start
  print(f'{args.method}: {len(inputs) - len(failures)} of {len(inputs)} files,'
        f' {seconds:.1f} s of audio in {elapsed:.2f} s '
        f'({seconds / max(elapsed, 1e-9):.1f} s of audio per second)')
  return failures


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  cli.quiet_library_logs()
  try:
    failures = run(flags.FLAGS)
  except (mel_io.MelFileError, checkpointing.CheckpointError) as e:
    sys.exit(f'error: {e}')
  if failures:
    print(f'{len(failures)} file(s) failed:', file=sys.stderr)
    for failure in failures:
      print(f'  {failure}', file=sys.stderr)
    sys.exit(1)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
