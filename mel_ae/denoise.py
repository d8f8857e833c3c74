r"""Denoises files into the competition's submission format, and audio.

  python -m mel_ae.denoise --workdir=runs/base --input=NOISY_DIR --output=OUT
  python -m mel_ae.denoise --pretrained=general --input=NOISY_DIR --output=OUT
  python -m mel_ae.denoise --method=spectral_subtraction --input=F.npy \
      --output=OUT [--audio] [--plots --clean=CLEAN_DIR]

One power mel `.npy` per input (same file name, shape and dtype). An audio
input (.wav, .flac, .ogg) also gives `<stem>.wav`: the recording with each
STFT bin scaled by the denoiser's mel gain, its phase kept
(mel_ae/waveform.py), at its own rate, length and channels, 16-bit PCM for
16-bit input, float otherwise; its `<stem>.npy` is the denoised mel (the
mean of its channels'). --audio adds a Griffin-Lim `<stem>.wav` for mel
inputs, which have no phase. --max_attenuation_db bounds how far any bin is
turned down. Inputs are never modified, the output folder must differ from
the input folder, and existing outputs are kept unless --overwrite. A bad file
is reported and skipped; the failures are listed at the end and the exit
status is 1.
"""
import collections
import os
import sys
import time
from typing import List, Optional

from absl import app
from absl import flags
import numpy as np
import soundfile

from mel_ae import audio
from mel_ae import baselines
from mel_ae import checkpointing
from mel_ae import inference
from mel_ae import logs
from mel_ae import mel_io
from mel_ae import plots
from mel_ae import pretrained
from mel_ae import waveform

_METHODS = ['model'] + sorted(baselines.METHODS)


def _define_flags() -> None:
  flags.DEFINE_string('input', None, 'A file or a folder of .npy / audio.')
  flags.DEFINE_string('output', None, 'Folder for the denoised .npy files.')
  flags.DEFINE_enum('method', 'model', _METHODS, 'Denoiser to run.')
  flags.DEFINE_string('workdir', None, 'Training workdir (for --method=model,'
                      ' and for the mel parameters of audio inputs).')
  flags.DEFINE_string('pretrained', None, "A model shipped in the package "
                      "instead of --workdir: 'general' (any voice).")
  flags.DEFINE_string('step', '', "Checkpoint step, or 'best' (the least "
                      'validation metric); default: the latest.')
  flags.DEFINE_bool('audio', False, 'Also write a Griffin-Lim <stem>.wav for'
                    ' mel inputs (audio inputs always give <stem>.wav).')
  flags.DEFINE_float('max_attenuation_db', None, 'Turn no bin down by more '
                     'than this many dB (default: no bound).', lower_bound=0)
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


def _stem(path: str, args) -> str:
  return os.path.join(args.output, os.path.splitext(os.path.basename(path))[0])


def _write(path: str, mel: np.ndarray, noisy: np.ndarray, spec, args,
           clean: Optional[str]) -> None:
  stem = _stem(path, args)
  mel_io.save_mel(stem + '.npy', mel, args.overwrite)
  if args.audio and path.lower().endswith(mel_io.MEL_SUFFIX):
    mel_io.refuse_overwrite(stem + '.wav', args.overwrite)
    audio.save_wav(stem + '.wav', audio.mel_to_audio(mel, spec), spec.sr)
  if args.plots:
    panels = {'noisy input': noisy, f'denoised ({args.method})': mel}
    if clean:
      panels['clean reference'] = mel_io.load_mel(clean)
    plots.save(plots.spectrogram_panels(panels, spec, os.path.basename(path)),
               stem + '.png')


class _VoiceLosses:
  """The model's `speech_losses` of every input, by file, for one warning
  at the end; `files`: the inputs of the next call (or its one file)."""

  def __init__(self):
    self.losses, self.names, self.files = [], [], []

  def add(self, losses) -> None:
    self.losses.extend(losses)
    self.names.extend(self.files if len(self.files) == len(losses)
                      else self.files[:1] * len(losses))


def _mel_denoiser(denoiser, args, voice: _VoiceLosses) -> waveform.MelDenoiser:
  """Power mels -> denoised power mels, by the model or a classical method
  (waveform.denoise_wave bounds the attenuation of both)."""
  if args.method == 'model':
    def denoise(mels):
      outs = denoiser.denoise_batch(mels, warn=False)
      voice.add(denoiser.speech_losses(mels, outs))
      return outs
    return denoise
  params = baselines.params_from_flags(args.method)
  return lambda mels: [baselines.apply(args.method, m, **params) for m in mels]


def _denoise_mel_files(paths, denoise_mels, spec, args, clean, failures,
                       voice: _VoiceLosses):
  """Denoises .npy inputs a group at a time; returns their seconds of audio."""
  frames = 0
  for i in range(0, len(paths), args.files_per_batch):
    loaded = []
    for path in paths[i:i + args.files_per_batch]:
      try:
        mel_io.refuse_overwrite(_stem(path, args) + '.npy', args.overwrite)
        loaded.append((path, audio.load_input(path, spec)))
      except mel_io.MelFileError as e:
        failures.append(str(e))
    voice.files = [path for path, _ in loaded]
    outs = denoise_mels([m for _, m in loaded])
    for (path, noisy), out in zip(loaded, outs):
      out = waveform.limit_attenuation(out, noisy, args.max_attenuation_db,
                                       spec.power)
      try:
        _write(path, out.astype(mel_io.stored_dtype(path)), noisy, spec, args,
               clean.get(mel_io.stem_key(path)))
        frames += noisy.shape[1]
      except mel_io.MelFileError as e:
        failures.append(str(e))
  return frames * spec.hop_length / spec.sr


def _denoise_audio_file(path, denoise_mels, spec, args, clean,
                        voice: _VoiceLosses) -> float:
  """Writes <stem>.wav and <stem>.npy of one recording, read and written a
  block at a time (mel_ae/waveform.py); returns its seconds."""
  stem = _stem(path, args)
  voice.files = [path]
  for suffix in ('.npy', '.wav'):
    mel_io.refuse_overwrite(stem + suffix, args.overwrite)
  info = audio.audio_info(path)
  with soundfile.SoundFile(path) as recording:
    def read(start: int, stop: int) -> np.ndarray:
      recording.seek(start)
      return recording.read(stop - start, dtype='float32', always_2d=True)
    try:
      blocks, noisy, denoised = waveform.denoise_stream(
          read, info.frames, info.samplerate, denoise_mels, spec,
          args.max_attenuation_db)
      audio.write_wav(stem + '.wav', blocks, info.samplerate, info.channels,
                      pcm16=info.subtype == 'PCM_16')
    except ValueError as e:  # NaN samples, or a mel that overflows
      raise mel_io.MelFileError(f'{path}: {e}') from None
  _write(path, np.mean(denoised, axis=0).astype(np.float32),
         np.mean(noisy, axis=0), spec, args, clean)
  return info.frames / info.samplerate


def _unique_stems(inputs: List[str], failures: List[str]) -> List[str]:
  """The inputs, less any whose outputs would take another input's names."""
  seen, kept = {}, []
  for path in inputs:
    stem = os.path.splitext(os.path.basename(path))[0]
    if stem in seen:
      failures.append(f'{path}: its outputs would replace those of '
                      f'{seen[stem]} ({stem}.*); rename one')
    else:
      seen[stem] = path
      kept.append(path)
  return kept


def _note_mixed_rates(paths: List[str]) -> None:
  """One line per recording whose rate differs from most of the folder's."""
  rates = {}
  for path in paths:
    try:
      rates[path] = soundfile.info(path).samplerate
    except Exception:  # pylint: disable=broad-except
      pass  # Reported when the file is read.
  if len(set(rates.values())) > 1:
    common = collections.Counter(rates.values()).most_common(1)[0][0]
    for path, rate in rates.items():
      if rate != common:
        print(f'note: {path}: {rate} Hz, unlike the {common} Hz of most '
              'inputs; written at its own rate', file=sys.stderr)


def _load_denoiser(args) -> Optional[inference.Denoiser]:
  if args.pretrained and args.workdir:
    raise mel_io.MelFileError('give --workdir or --pretrained, not both')
  if args.pretrained:
    return inference.load_pretrained(args.pretrained)
  if args.method == 'model' or args.workdir:
    return inference.load(args.workdir, inference.parse_step(args.step))
  return None


def run(args) -> List[str]:
  """Denoises every input; returns the one-line failures."""
  denoiser = _load_denoiser(args)
  spec = denoiser.spec if denoiser else audio.MelSpec()
  inputs = _inputs(args.input)
  _check_output(inputs, args.output)
  clean = ({mel_io.stem_key(p): p for p in mel_io.list_files(args.clean)}
           if args.clean else {})
  voice = _VoiceLosses()
  denoise_mels = _mel_denoiser(denoiser, args, voice)
  os.makedirs(args.output, exist_ok=True)
  failures, start = [], time.perf_counter()
  inputs_kept = _unique_stems(inputs, failures)
  recordings = [p for p in inputs_kept
                if p.lower().endswith(mel_io.AUDIO_SUFFIXES)]
  seconds = _denoise_mel_files([p for p in inputs_kept if p not in recordings],
                               denoise_mels, spec, args, clean, failures,
                               voice)
  _note_mixed_rates(recordings)
  for path in recordings:
    try:
      seconds += _denoise_audio_file(path, denoise_mels, spec, args,
                                     clean.get(mel_io.stem_key(path)), voice)
    except mel_io.MelFileError as e:
      failures.append(str(e))
    except (OSError, RuntimeError, MemoryError) as e:  # writing, libsndfile
      failures.append(f'{path}: {type(e).__name__}: {e}'.splitlines()[0])
  elapsed = time.perf_counter() - start
  print(f'{args.method}: {len(inputs) - len(failures)} of {len(inputs)} files,'
        f' {seconds:.1f} s of audio in {elapsed:.2f} s '
        f'(real-time factor {elapsed / max(seconds, 1e-9):.4f})')
  warning = denoiser and denoiser.unknown_voices(voice.losses, voice.names)
  if warning:
    print(warning, file=sys.stderr)
  return failures


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  logs.quiet_library_logs()
  try:
    failures = run(flags.FLAGS)
  except (mel_io.MelFileError, checkpointing.CheckpointError,
          pretrained.PretrainedError) as e:
    sys.exit(f'error: {e}')
  if failures:
    print(f'{len(failures)} file(s) failed:', file=sys.stderr)
    for failure in failures:
      print(f'  {failure}', file=sys.stderr)
    sys.exit(1)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
