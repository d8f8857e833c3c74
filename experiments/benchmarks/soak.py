r"""Soak test of `python -m mel_ae.denoise`: many files, flat memory.

  nice python -m experiments.benchmarks.soak                 # 1,000 files
  nice python -m experiments.benchmarks.soak --files=200 --workdir=runs/tiny

Trains configs/tiny.py on the embedded corpus into a temporary workdir (unless
--workdir names a trained one), writes --files power mels of random lengths
with one truncated .npy in the middle, and denoises the folder in one
process while sampling that process's resident memory from /proc. Prints the
peak RSS once 100, 250, 500, 750 and all files are written, the wall time,
the exit status and the failure list, and checks that every good file has an
output of its shape.
"""
import os
import re
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Tuple

from absl import app
from absl import flags
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

FLAGS = flags.FLAGS
flags.DEFINE_integer('files', 1000, 'Noisy files to denoise.')
flags.DEFINE_integer('max_frames', 1200, 'Lengths are uniform in [1, this].')
flags.DEFINE_integer('seed', 0, 'Seed of the lengths and the values.')
flags.DEFINE_string('workdir', None, 'A trained workdir; default: train '
                    'configs/tiny.py into a temporary one.')
flags.DEFINE_float('sample_every', 0.1, 'Seconds between RSS samples.')


def _train(workdir: str) -> None:
  subprocess.run([sys.executable, '-m', 'mel_ae.main',
                  '--config=configs/tiny.py', f'--workdir={workdir}'],
                 cwd=REPO, check=True, capture_output=True)


def write_inputs(folder: str, n: int, max_frames: int, seed: int) -> str:
  """n power mels of random lengths; the middle one is a truncated .npy."""
  rng = np.random.default_rng(seed)
  os.makedirs(folder, exist_ok=True)
  for i in range(n):
    frames = int(rng.integers(1, max_frames + 1))
    mel = rng.gamma(0.5, 50.0, (128, frames)).astype(np.float32)
    np.save(os.path.join(folder, f'{i:04d}.npy'), mel)
  damaged = os.path.join(folder, f'{n // 2:04d}.npy')
  os.truncate(damaged, os.path.getsize(damaged) // 2)
  return damaged


def _status(pid: int) -> Dict[str, int]:
  """VmRSS and VmHWM (peak RSS) of a live process, in KiB."""
  with open(f'/proc/{pid}/status') as f:
    return {k: int(v.split()[0]) for k, v in
            (line.split(':', 1) for line in f) if k in ('VmRSS', 'VmHWM')}


def denoise_sampled(workdir: str, inputs: str, output: str, every: float):
  """Runs the denoise command; returns (result, [(seconds, files, status)])."""
  proc = subprocess.Popen(
      [sys.executable, '-m', 'mel_ae.denoise', f'--workdir={workdir}',
       f'--input={inputs}', f'--output={output}'], cwd=REPO,
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  samples, start = [], time.perf_counter()
  while proc.poll() is None:
    try:
      status = _status(proc.pid)
    except (FileNotFoundError, ProcessLookupError, ValueError):
      break  # Exited between poll() and the read.
    written = sum(n.endswith('.npy') and '.tmp' not in n
                  for n in os.listdir(output)) if os.path.isdir(output) else 0
    samples.append((time.perf_counter() - start, written, status))
    time.sleep(every)
  out, err = proc.communicate()
  return (proc.returncode, out, err, time.perf_counter() - start), samples


def peak_at(samples: List[Tuple[float, int, Dict[str, int]]],
            files: int) -> float:
  """Peak RSS (MiB) of the process up to the first sample with `files` out."""
  for _, written, status in samples:
    if written >= files:
      return status['VmHWM'] / 1024
  return samples[-1][2]['VmHWM'] / 1024


def check_outputs(inputs: str, output: str, damaged: str) -> int:
  """Every readable input has an output of its shape; returns their count."""
  count = 0
  for name in sorted(os.listdir(inputs)):
    if os.path.join(inputs, name) == damaged:
      assert not os.path.exists(os.path.join(output, name)), name
      continue
    shape = np.load(os.path.join(inputs, name), mmap_mode='r').shape
    assert np.load(os.path.join(output, name), mmap_mode='r').shape == shape
    count += 1
  return count


def main(argv):
  del argv
  with tempfile.TemporaryDirectory(prefix='mel_ae_soak_') as tmp:
    workdir = FLAGS.workdir or os.path.join(tmp, 'train')
    if not FLAGS.workdir:
      print(f'training configs/tiny.py into {workdir} ...', flush=True)
      _train(workdir)
    inputs, output = os.path.join(tmp, 'noisy'), os.path.join(tmp, 'out')
    damaged = write_inputs(inputs, FLAGS.files, FLAGS.max_frames, FLAGS.seed)
    print(f'{FLAGS.files} inputs in {inputs}, damaged: {damaged}', flush=True)
    (code, out, err, seconds), samples = denoise_sampled(
        workdir, inputs, output, FLAGS.sample_every)
    print(out.strip())
    marks = sorted({m for m in (100, 250, 500, 750) if m < FLAGS.files}
                   | {FLAGS.files - 1})  # The damaged file has no output.
    for m in marks:
      print(f'peak RSS once {m:5d} files were written: '
            f'{peak_at(samples, m):7.1f} MiB')
    print(f'final RSS {samples[-1][2]["VmRSS"] / 1024:.1f} MiB, '
          f'{len(samples)} samples, wall {seconds:.1f} s, exit status {code}')
    failures = [l.strip() for l in err.splitlines() if re.match(r'\s+\S', l)]
    print(f'failures ({len(failures)}):', *failures, sep='\n  ')
    print(f'outputs checked: {check_outputs(inputs, output, damaged)}')


if __name__ == '__main__':
  app.run(main)
