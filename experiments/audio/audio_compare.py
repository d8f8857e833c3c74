r"""A trained model beside the denoisers users would install, same recordings.

Every method denoises each noisy recording of --noisy; its outputs go to
OUT/<method>/<stem>.wav (float) and are scored by mel_ae.evaluate against
--clean: the mel metrics of the recordings re-analysed as the corpus' mels
were made, and PESQ-WB, STOI, SI-SDR. The methods: the untouched input;
spectral subtraction and each --workdir model through mel_ae/waveform.py
(the noisy STFT times the mel gain); the peers of
experiments/audio/audio_peers.py.

Real-time factor = seconds spent / seconds of audio, on this machine, in this
run, one method after another. Each method denoises the folder twice: the
first pass, plus loading the model, is 'load included' (a fresh process:
reading the checkpoint, compiling, loading a library); the second is 'load
excluded'. Then each denoises the folder's recordings joined into one long
recording, timed the second time (DFN3 makes a fresh state, reading its
model, for every recording: one long recording shows what it costs without
that). Each --workdir model is also timed on the same audio as mel files
(the recordings' mels, analysis not counted): `mel_ae.denoise` on .npy.

  python -m experiments.audio.audio_compare --workdir=runs/denoise \
      --noisy=mel_ae/corpus/audio/test/noisy \
      --clean=mel_ae/corpus/audio/test/clean --out=runs/audio_compare
"""
import os
import time
from typing import Callable, Dict, List, Tuple

from absl import app
from absl import flags
import numpy as np

import mel_ae
from experiments.audio import audio_peers
from mel_ae import audio
from mel_ae import baselines
from mel_ae import evaluate
from mel_ae import mel_io
from mel_ae import waveform

Denoise = Callable[[np.ndarray, int], np.ndarray]
COLUMNS = (('competition_mse', 'competition MSE', '.4g'),
           ('lsd_db', 'LSD dB', '.2f'), ('pesq_wb', 'PESQ-WB', '.2f'),
           ('stoi', 'STOI', '.3f'), ('si_sdr', 'SI-SDR dB', '.2f'))


def _mel_method(mel_fn) -> Denoise:
  spec = audio.MelSpec()
  return lambda wave, sr: waveform.denoise_wave(
      wave, sr, lambda mels: [mel_fn(m) for m in mels], spec)[0]


def _define_flags() -> None:
  flags.DEFINE_list('workdir', [], 'Training runs to compare (NAME=WORKDIR '
                    'or WORKDIR).')
  flags.DEFINE_string('noisy', None, 'Folder of noisy recordings.')
  flags.DEFINE_string('clean', None, 'Folder of clean references.')
  flags.DEFINE_string('out', None, 'Folder for the outputs (new).')
  flags.DEFINE_list('peers', list(audio_peers.PEERS),
                    'Peers to run (experiments/audio/audio_peers.py).')
  flags.mark_flags_as_required(['noisy', 'clean', 'out'])


def named_workdirs(entries: List[str]) -> Dict[str, str]:
  """NAME=WORKDIR or WORKDIR entries as name -> workdir."""
  named = {}
  for entry in entries:
    name, _, workdir = entry.rpartition('=')
    named[name or f'mel_ae {workdir}'] = workdir
  return named


def methods(workdirs, peers) -> Dict[str, Tuple[Callable[[], Denoise], str]]:
  """Name -> (loader returning the denoiser, what it is)."""
  table = {
      'noisy input': (lambda: lambda wave, sr: wave, 'untouched'),
      'spectral subtraction': (
          lambda: _mel_method(baselines.spectral_subtraction),
          'mel_ae.baselines, through the mel gain'),
  }
  for name, workdir in named_workdirs(workdirs).items():
    table[name] = (lambda w=workdir: mel_ae.load(w).denoise_audio,
                   f'checkpoint {workdir}')
  for peer in peers:
    table[peer] = (lambda p=peer: audio_peers.PEERS[p],
                   'experiments/audio/audio_peers')
  return table


def _denoise_folder(denoise: Denoise, recordings, folder: str) -> float:
  """Denoises and writes every recording; returns the seconds spent
  denoising (reading and writing files not counted)."""
  spent = 0.0
  for path, wave, sr in recordings:
    start = time.perf_counter()
    out = denoise(wave, sr)
    spent += time.perf_counter() - start
    name = os.path.splitext(os.path.basename(path))[0] + '.wav'
    audio.save_wav(os.path.join(folder, name), out, sr, pcm16=False)
  return spent


def _time_mels(workdir: str, recordings, seconds: float) -> Dict[str, float]:
  """Real-time factors of a model on the recordings' mels (their analysis
  not counted): load plus a first pass, a second pass, and the mels joined
  into one (timed the second time)."""
  start = time.perf_counter()
  denoiser = mel_ae.load(workdir)
  loading = time.perf_counter() - start
  spec = denoiser.spec
  mels = [audio.audio_to_mel(audio.resample(w, sr, spec.sr), spec)
          for _, w, sr in recordings]
  passes = []
  for _ in range(2):
    start = time.perf_counter()
    for mel in mels:
      denoiser.denoise(mel)
    passes.append(time.perf_counter() - start)
  joined = np.concatenate(mels, axis=1)
  denoiser.denoise(joined)
  start = time.perf_counter()
  denoiser.denoise(joined)
  return {'mels_rtf': passes[1] / seconds,
          'mels_rtf_load': (loading + passes[0]) / seconds,
          'mels_rtf_joined': (time.perf_counter() - start) / seconds}


def run(args) -> List[dict]:
  """Denoises, times and scores every method; one row of means each."""
  recordings = []
  for path in mel_io.list_files(args.noisy, mel_io.AUDIO_SUFFIXES):
    recording = audio.read_audio(path)
    recordings.append((path, recording.wave.mean(axis=1), recording.sr))
  seconds = sum(len(w) / sr for _, w, sr in recordings)
  rate = recordings[0][2]
  joined_wave = np.concatenate([audio.resample(w, sr, rate)
                                for _, w, sr in recordings])
  rows = []
  for name, (loader, what) in methods(args.workdir, args.peers).items():
    folder = os.path.join(args.out, name.replace(' ', '_').replace('/', '_'))
    os.makedirs(folder)
    start = time.perf_counter()
    denoise = loader()
    loading = time.perf_counter() - start
    cold = _denoise_folder(denoise, recordings, folder)
    warm = _denoise_folder(denoise, recordings, folder)
    _, mean = evaluate.evaluate_audio_dirs(folder, args.clean, args.noisy)
    denoise(joined_wave, rate)  # Compiles its window widths.
    start = time.perf_counter()
    denoise(joined_wave, rate)
    joined = time.perf_counter() - start
    rows.append({'method': name, 'what': what, **mean,
                 'rtf': warm / seconds, 'rtf_load': (loading + cold) / seconds,
                 'rtf_joined': joined / seconds})
    workdir = named_workdirs(args.workdir).get(name)
    if workdir:
      rows[-1].update(_time_mels(workdir, recordings, seconds))
    print(name, {k: round(v, 4) for k, v in rows[-1].items()
                 if isinstance(v, float)}, flush=True)
  return rows


def markdown(rows: List[dict], args) -> str:
  head = [label for _, label, _ in COLUMNS] + [
      'real-time factor', 'with load', 'one long recording']
  n_files = len(mel_io.list_files(args.noisy, mel_io.AUDIO_SUFFIXES))
  lines = [f'{n_files} recordings of {args.noisy}, scored against '
           f'{args.clean}; means.', '',
           '| method | ' + ' | '.join(head) + ' |',
           '|---|' + '---:|' * len(head)]
  for row in rows:
    cells = [format(row[key], fmt) for key, _, fmt in COLUMNS]
    rtf = ['-'] * 3 if row['method'] == 'noisy input' else [
        f'{row[k]:.4f}' for k in ('rtf', 'rtf_load', 'rtf_joined')]
    lines.append(f'| {row["method"]} | ' + ' | '.join(cells + rtf) + ' |')
  mel_rows = [row for row in rows if 'mels_rtf' in row]
  if mel_rows:
    lines += ['', 'The same audio as mel files (`mel_ae.denoise` on .npy; '
              'analysis not counted):', '',
              '| model | real-time factor | with load | one long mel |',
              '|---|---:|---:|---:|']
    lines += [f'| {row["method"]} | ' + ' | '.join(
        f'{row[k]:.4f}' for k in ('mels_rtf', 'mels_rtf_load',
                                  'mels_rtf_joined')) + ' |'
              for row in mel_rows]
  return '\n'.join(lines) + '\n'


def main(argv):
  del argv
  args = flags.FLAGS
  if os.path.exists(args.out):
    raise app.UsageError(f'{args.out}: exists already; choose a new --out')
  table = markdown(run(args), args)
  print(table)
  with open(os.path.join(args.out, 'table.md'), 'w') as f:
    f.write(table)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
