r"""Training and denoising speed of the seed model: JAX beside PyTorch and Keras.

  python -m experiments.benchmarks.benchmark                 # the README table
  python -m experiments.benchmarks.benchmark --batches=32 --windows=3 --no-e2e
  python -m experiments.benchmarks.benchmark --batches=16 --models=seed,unet \
      --frameworks=jax,torch --no-e2e --denoise_minutes=0 --no-first_step_check \
      --peer_host_memory     # configs/denoise.py's U-Net rows too

`--models=unet` adds configs/denoise.py's U-Net with its 'residual' and its
'kernel' output (JAX: train.train_step of the recipe; PyTorch: unet_peer.py),
taking turns with the seed in the same rounds, in its own table; the time to
the first step, `--e2e` and denoising stay the seed's.

Each framework trains in its own worker process (so peak RSS is its own and
no thread pool competes with another), on one fixed random batch held on the
device, synchronising every step. The parent makes them take turns in short
windows (JAX, torch, Keras, JAX, ...) and reports the median window, because
the machine is shared and noisy. `--e2e` adds the real training command
(`python -m mel_ae.main`, data pipeline, logging and checkpoints included),
run in segments between the rounds; its rate is read from metrics.jsonl.
Compile time is timed inside the JAX worker; time to the first step (from
process start, imports included) is timed twice with one fresh compilation
cache: cold, then warm. The peers need the `bench` extra (torch, tensorflow,
keras); a framework that is not installed is skipped, and the output says so.

`--compute_dtype=float32,bfloat16` (the default) times each framework in
both precisions where it has them: JAX with train.compute_dtype, PyTorch
under `torch.autocast('cpu', dtype=torch.bfloat16)`; Keras runs float32
only. The 1-minute load average is recorded beside every round.
"""
import argparse
import functools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
FRAMEWORKS = ('jax', 'torch', 'keras')
COMPUTE_DTYPES = ('float32', 'bfloat16')
# The frameworks timed in bfloat16 (PyTorch: autocast).
BF16_FRAMEWORKS = ('jax', 'torch')
_NAMES = {'jax': 'JAX', 'torch': 'PyTorch', 'keras': 'Keras/TF'}
_MATMUL_N = 2048


# The seed; configs/denoise.py's U-Net with each output form its noise
# stage may decide ('unet' on the command line: both).
MODELS = ('seed', 'unet_residual', 'unet_kernel')
UNET_FRAMEWORKS = ('jax', 'torch')
# What runtime.reuse_host_memory does in JAX (mel_ae/backends/host_memory.py),
# as environment for the peers (--peer_host_memory).
HOST_MEMORY_ENV = {'MALLOC_ARENA_MAX': '1', 'MALLOC_MMAP_MAX_': '0',
                   'MALLOC_TRIM_THRESHOLD_': str(2**31 - 1)}


def row_key(framework: str, compute_dtype: str) -> str:
  """'jax', 'jax_bf16', 'torch', 'torch_bf16', 'keras'."""
  return framework + ('_bf16' if compute_dtype == 'bfloat16' else '')


def entry_key(model: str, framework: str, compute_dtype: str) -> str:
  """The seed's row_key as before (so its results keep their keys); a
  U-Net's prefixed, e.g. 'unet_kernel:jax_bf16'."""
  key = row_key(framework, compute_dtype)
  return key if model == 'seed' else f'{model}:{key}'


def _unet_form(model: str) -> str:
  return model[len('unet_'):]


def train_gflop_per_example(model_config, n_mels: int, frames: int) -> float:
  """Naive FLOPs of one training example: conv MACs x 2 (FLOP) x 3 (fwd+bwd).

  Counted at the plain formulation (upsample then full-resolution conv), so
  faster reformulations show up as a higher fraction of the ceiling.
  """
  h, w = n_mels // model_config.pool, frames // model_config.pool
  k2 = model_config.kernel_size ** 2
  chans = (1,) + tuple(model_config.encoder_channels)
  macs = sum(h * w * k2 * a * b for a, b in zip(chans, chans[1:]))
  h, w = n_mels, frames
  chans = chans[-1:] + tuple(model_config.decoder_channels)
  macs += sum(h * w * k2 * a * b for a, b in zip(chans, chans[1:]))
  macs += h * w * model_config.output_kernel_size ** 2 * chans[-1]
  return 6 * macs / 1e9


def _peak_rss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rate(step, batch_size: int, seconds: float) -> Dict[str, float]:
  n, t0 = 0, time.perf_counter()
  while n == 0 or time.perf_counter() - t0 < seconds:
    step()
    n += 1
  return {'examples_per_sec': n * batch_size / (time.perf_counter() - t0)}


def _best_gflops(matmul) -> float:
  """float32 GFLOP/s of an N x N matmul, best of a few."""
  matmul()
  best = min(_timed(matmul) for _ in range(5))
  return 2 * _MATMUL_N ** 3 / best / 1e9


def _timed(fn) -> float:
  t0 = time.perf_counter()
  fn()
  return time.perf_counter() - t0


# ----------------------------------------------------------------- JAX side


def _jax_config(batch_size: int, crop: int, conv_impl: str = '',
                compute_dtype: str = 'float32'):
  from configs import base  # pylint: disable=g-import-not-at-top
  config = base.get_config()
  config.train.batch_size = batch_size
  config.data.crop_frames = crop
  config.runtime.conv_impl = conv_impl or config.runtime.conv_impl
  config.train.compute_dtype = compute_dtype
  return config


def _jax_trainer(batch_size: int, crop: int, conv_impl: str,
                 compute_dtype: str = 'float32'):
  """The seed's jitted training step on a fixed batch; returns (step, info)."""
  import jax  # pylint: disable=g-import-not-at-top
  config = _jax_config(batch_size, crop, conv_impl, compute_dtype)
  shape = (batch_size, config.audio.n_mels, crop, 1)
  batch = {'input': np.asarray(jax.random.uniform(jax.random.PRNGKey(1),
                                                  shape))}
  step, info, _ = _jax_step(config, batch)
  return step, info


def jax_unet_trainer(batch_size: int, crop: int, output_form: str,
                     conv_impl: str = '', compute_dtype: str = 'float32',
                     return_state: bool = False):
  """configs/denoise.py's jitted training step (train.train_step with its
  loss), output_mode forced to `output_form` ('residual' or 'kernel'), on
  the synthetic batch both frameworks train on (unet_peer.synthetic_batch).
  Returns (step, info), and the initial state with `return_state` (the
  first step donates it)."""
  from configs import denoise  # pylint: disable=g-import-not-at-top
  from experiments.benchmarks import unet_peer  # pylint: disable=g-import-not-at-top
  from mel_ae import recipes  # pylint: disable=g-import-not-at-top
  config = denoise.get_config()
  config.model.output_mode = output_form
  config.train.batch_size = batch_size
  config.data.crop_frames = crop
  config.runtime.conv_impl = conv_impl or config.runtime.conv_impl
  config.train.compute_dtype = compute_dtype
  batch, normalizer = unet_peer.synthetic_batch(
      batch_size, (config.audio.n_mels, crop))
  step, info, state = _jax_step(config, batch,
                                recipes.Recipe.of(config).loss(normalizer))
  return (step, info, state) if return_state else (step, info)


def _jax_step(config, batch: Dict[str, np.ndarray], loss=None):
  """train.train_step (with `loss`, or its default) jitted and compiled as
  the training loop does, on `batch` held on the device; returns (step,
  info, initial state)."""
  import jax  # pylint: disable=g-import-not-at-top
  from mel_ae import backends  # pylint: disable=g-import-not-at-top
  from mel_ae import models  # pylint: disable=g-import-not-at-top
  from mel_ae import train  # pylint: disable=g-import-not-at-top

  replicated, data_sharding = train._shardings()  # pylint: disable=protected-access
  shape = batch['input'].shape
  init = functools.partial(train.create_train_state, jax.random.PRNGKey(0),
                           config, shape)
  state = train.init_train_state(init, replicated)
  batch = {k: jax.device_put(v, data_sharding) for k, v in batch.items()}
  step_fn = jax.jit(
      train.train_step if loss is None else functools.partial(
          train.train_step, loss=loss),
      in_shardings=(replicated, data_sharding),
      out_shardings=(replicated, replicated), donate_argnums=0)
  t0 = time.perf_counter()
  compiled = step_fn.lower(state, batch).compile()
  conv_impl = backends.resolve(config.runtime.conv_impl)
  compute = backends.resolve_dtype(conv_impl, config.train.compute_dtype)
  info = {'compile_s': time.perf_counter() - t0,
          'params': models.count_params(state.params),
          'framework': f'jax {jax.__version__} ({jax.default_backend()}, '
                       f'{jax.device_count()} device(s), conv_impl '
                       f'{conv_impl}, compute {compute})'}
  holder = [state]

  def step() -> float:
    holder[0], metrics = compiled(holder[0], batch)
    return float(metrics['loss'])
  step.compiled = compiled  # For its HLO (unet_profile.py --trace).
  return step, info, state


def _jax_matmul_gflops() -> float:
  import jax  # pylint: disable=g-import-not-at-top
  a = jax.random.normal(jax.random.PRNGKey(0), (_MATMUL_N, _MATMUL_N))
  mm = jax.jit(lambda a: a @ a)
  return _best_gflops(lambda: mm(a).block_until_ready())


def _torch_matmul_gflops() -> float:
  import torch  # pylint: disable=g-import-not-at-top
  a = torch.randn(_MATMUL_N, _MATMUL_N)
  return _best_gflops(lambda: a @ a)


def _denoise_speed(crop: int, long_minutes: float,
                   conv_impl: str) -> Dict[str, float]:
  """Seconds of audio denoised per second: one long file, the test folder."""
  import jax  # pylint: disable=g-import-not-at-top
  from mel_ae import audio  # pylint: disable=g-import-not-at-top
  from mel_ae import features  # pylint: disable=g-import-not-at-top
  from mel_ae import inference  # pylint: disable=g-import-not-at-top
  from mel_ae import input_pipeline  # pylint: disable=g-import-not-at-top
  from mel_ae import train  # pylint: disable=g-import-not-at-top

  config = _jax_config(1, crop, conv_impl)
  spec = audio.MelSpec.from_config(config.audio)
  folder = input_pipeline.load_folder(config.data.test_noisy_dir, spec, 1).mels
  state = train.create_train_state(jax.random.PRNGKey(0), config,
                                   (1, config.audio.n_mels, crop, 1))
  denoiser = inference.Denoiser(
      config, {'params': state.params, 'batch_stats': state.batch_stats},
      features.fit_normalizer(folder), 0)
  frames_per_s = spec.sr / spec.hop_length
  long_file = np.random.default_rng(0).exponential(
      1.0, (config.audio.n_mels, int(long_minutes * 60 * frames_per_s)))
  long_file = long_file.astype(np.float32)
  out = {}
  for name, mels in (('long_file', [long_file]), ('folder', list(folder))):
    denoiser.denoise_batch(mels[:1])  # compile
    seconds = _timed(lambda: denoiser.denoise_batch(mels))  # pylint: disable=cell-var-from-loop
    audio_s = sum(m.shape[1] for m in mels) / frames_per_s
    out[f'denoise_{name}_audio_s'] = audio_s
    out[f'denoise_{name}_x_realtime'] = audio_s / seconds
  return out


# ---------------------------------------------------------------- the peers


def _peer_trainer(framework: str, batch_size: int, crop: int,
                  compute_dtype: str = 'float32', model: str = 'seed'):
  from experiments.benchmarks import peers  # pylint: disable=g-import-not-at-top
  from experiments.benchmarks import unet_peer  # pylint: disable=g-import-not-at-top
  if model == 'seed':
    make = {'torch': peers.make_torch_trainer,
            'keras': peers.make_keras_trainer}[framework]
  else:  # Only PyTorch has the U-Net (_rows).
    make = functools.partial(unet_peer.make_torch_trainer,
                             output_form=_unet_form(model))
  if compute_dtype == 'bfloat16':
    make = functools.partial(make, bf16_autocast=True)
  t0 = time.perf_counter()
  trainer = make(batch_size, (128, crop))
  trainer()  # Graph building / first-call overheads.
  return trainer, {'compile_s': time.perf_counter() - t0,
                   'params': trainer.param_count(),
                   'framework': trainer.framework}


# ------------------------------------------------------------- worker side


def worker(framework: str, batch_size: int, crop: int, conv_impl: str,
           compute_dtype: str = 'float32', model: str = 'seed') -> None:
  """Line protocol on stdin/stdout: 'run SECONDS', 'matmul', 'denoise
  MINUTES', 'quit'; one JSON object answers each line. `model`: 'seed' or
  'unet_<output form>' (MODELS)."""
  if framework == 'jax':
    from mel_ae.backends import host_memory  # pylint: disable=g-import-not-at-top
    host_memory.reuse_freed_memory()  # as python -m mel_ae.main does
    if model == 'seed':
      step, info = _jax_trainer(batch_size, crop, conv_impl, compute_dtype)
    else:
      step, info = jax_unet_trainer(batch_size, crop, _unet_form(model),
                                    conv_impl, compute_dtype)
      info['framework'] += f', U-Net {_unet_form(model)}'
  else:
    step, info = _peer_trainer(framework, batch_size, crop, compute_dtype,
                               model)
  step()
  _reply({'ready': True, **info})
  matmul = {'jax': _jax_matmul_gflops, 'torch': _torch_matmul_gflops}
  for line in sys.stdin:
    cmd, *args = line.split()
    if cmd == 'run':
      _reply(_rate(step, batch_size, float(args[0])))
    elif cmd == 'matmul':
      _reply({'matmul_gflops': matmul[framework]() if framework in matmul
              else None})
    elif cmd == 'denoise':
      _reply(_denoise_speed(crop, float(args[0]), conv_impl))
    else:
      _reply({'peak_rss_mb': _peak_rss_mb()})
      return


def _reply(obj) -> None:
  sys.stdout.write(json.dumps(obj) + '\n')
  sys.stdout.flush()


def first_step(batch_size: int, crop: int, cache_dir: str,
               conv_impl: str) -> None:
  """Prints the wall time at which the first training step finished."""
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update('jax_compilation_cache_dir', cache_dir)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.5)
  step, info = _jax_trainer(batch_size, crop, conv_impl)
  step()
  _reply({'done_at': time.time(), 'compile_s': info['compile_s']})


# ------------------------------------------------------------- parent side


class LineWorker:
  """A child process (`python -m` argv, in the repository) that answers
  each request line with one JSON line; its first line is `info`."""

  def __init__(self, argv: List[str], env: dict, name: str):
    self.name = name
    self._proc = subprocess.Popen(
        [sys.executable, '-m', *argv], cwd=REPO, env=env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    self.info = self._read()

  def ask(self, line: str) -> dict:
    self._proc.stdin.write(line + '\n')
    self._proc.stdin.flush()
    return self._read()

  def _read(self) -> dict:
    line = self._proc.stdout.readline()
    if not line:
      raise RuntimeError(f'{self.name} worker died (exit '
                         f'{self._proc.wait()})')
    return json.loads(line)


class Worker(LineWorker):
  """A model training in one framework in its own process, driven line by
  line. `peer_env`: extra environment for a peer (not JAX, which sets its
  own host memory up)."""

  def __init__(self, framework: str, batch_size: int, crop: int,
               conv_impl: str, compute_dtype: str = 'float32',
               model: str = 'seed', peer_env: Optional[dict] = None):
    self.framework, self.model = framework, model
    self.key = entry_key(model, framework, compute_dtype)
    env = dict(os.environ, PYTHONPATH=REPO, KERAS_BACKEND='tensorflow',
               TF_CPP_MIN_LOG_LEVEL='2')
    if framework != 'jax':
      env.update(peer_env or {})
    super().__init__(
        ['experiments.benchmarks.benchmark', '--worker', framework,
         '--batches', str(batch_size), '--crop', str(crop),
         f'--conv_impl={conv_impl}', f'--compute_dtype={compute_dtype}',
         f'--models={model}'], env, self.key)

  def close(self) -> float:
    rss = self.ask('quit')['peak_rss_mb']
    self._proc.wait()
    return rss


def _time_to_first_step(batch_size: int, crop: int,
                        conv_impl: str) -> Dict[str, float]:
  """Cold then warm, with one fresh persistent compilation cache."""
  out = {}
  with tempfile.TemporaryDirectory() as cache:
    for run in ('cold', 'warm'):
      t0 = time.time()
      result = json.loads(subprocess.run(
          [sys.executable, '-m', 'experiments.benchmarks.benchmark',
           '--first_step', '--batches', str(batch_size), '--crop', str(crop), '--cache_dir',
           cache, f'--conv_impl={conv_impl}'], cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO),
          check=True, capture_output=True, text=True).stdout.splitlines()[-1])
      out[f'first_step_{run}_s'] = result['done_at'] - t0
      out[f'compile_{run}_s'] = result['compile_s']
  return out


class EndToEnd:
  """`python -m mel_ae.main` in segments; each adds `steps` to one run."""

  def __init__(self, batch_size: int, crop: int, steps: int, log_every: int,
               root: str, conv_impl: str, compute_dtype: str = 'float32'):
    self._batch_size, self._crop = batch_size, crop
    self._steps, self._log_every = steps, log_every
    self._workdir = os.path.join(root, f'b{batch_size}')
    self._cache = os.path.join(root, 'xla_cache')
    self._done = 0
    self._conv_impl = conv_impl
    self._compute_dtype = compute_dtype
    self.rates: List[float] = []

  def segment(self) -> None:
    start, self._done = self._done, self._done + self._steps
    overrides = {
        'train.batch_size': self._batch_size,
        'data.crop_frames': self._crop,
        'train.num_steps': self._done,
        'train.log_every': self._log_every,
        'train.eval_every': 10 ** 9,  # only the forced eval at the end
        'train.checkpoint_every': self._steps // 2,
        'compilation_cache_dir': self._cache,
        'train.compute_dtype': self._compute_dtype,
    }
    if self._conv_impl:
      overrides['runtime.conv_impl'] = self._conv_impl
    subprocess.run(
        [sys.executable, '-m', 'mel_ae.main', '--config=configs/base.py',
         f'--workdir={self._workdir}'] +
        [f'--config.{k}={v}' for k, v in overrides.items()],
        cwd=REPO, check=True, capture_output=True)
    with open(os.path.join(self._workdir, 'metrics.jsonl')) as f:
      rows = [json.loads(l) for l in f if l.strip()]
    # The first window of a segment holds its compilation.
    self.rates += [r['examples_per_sec'] for r in rows
                   if r['step'] > start + self._log_every]


def _median(values: List[float]) -> Optional[float]:
  return statistics.median(values) if values else None


def bench_batch(args, batch_size: int, rows, root: str) -> dict:
  """All measurements for one batch size; `rows` (model, framework, dtype)
  take turns, every model in the same rounds, and the 1-minute load average
  is read after every round."""
  peer_env = HOST_MEMORY_ENV if args.peer_host_memory else None
  workers = {}
  for m, f, d in rows:
    w = Worker(f, batch_size, args.crop, args.conv_impl, d, m, peer_env)
    workers[w.key] = w
  e2e = (EndToEnd(batch_size, args.crop, args.e2e_steps, args.e2e_log_every,
                  root, args.conv_impl, args.e2e_compute_dtype)
         if args.e2e and any(m == 'seed' for m, _, _ in rows) else None)
  rates = {f: [] for f in workers}
  loads = []
  for r in range(args.windows):
    for f, w in workers.items():
      rates[f].append(w.ask(f'run {args.seconds}')['examples_per_sec'])
    if e2e and r < (args.e2e_segments or args.windows):
      e2e.segment()
    loads.append(os.getloadavg()[0])
    print(f'  B={batch_size} round {r + 1}: ' + '  '.join(
        f'{f} {rates[f][-1]:.1f}' for f in workers) +
          f'  (load {loads[-1]:.2f})', flush=True)
  result = {'batch_size': batch_size,
            'jax_e2e': _median(e2e.rates) if e2e else None,
            'load_windows': loads}
  for f, w in workers.items():
    result[f] = _median(rates[f])
    result[f'{f}_windows'] = rates[f]
    result[f'{f}_compile_s'] = w.info['compile_s']
    result[f'{f}_framework'] = w.info['framework']
    result[f'{f}_params'] = w.info['params']
    # Once per framework: a float32 matmul (the ceiling), JAX's denoising
    # (the seed's).
    if batch_size == args.batches[0] and w is next(
        v for v in workers.values() if v.framework == w.framework):
      replies = [w.ask('matmul')]
      if f == 'jax' and w.model == 'seed' and args.denoise_minutes:
        replies.append(w.ask(f'denoise {args.denoise_minutes}'))
      for reply in replies:
        result.update({f'{w.framework}_{k}': v for k, v in reply.items()})
  for f, w in workers.items():
    result[f'{f}_peak_rss_mb'] = w.close()
  return result


def _fmt(value, spec: str = '.1f') -> str:
  return '–' if value is None else format(value, spec)


def _ratio(a, b) -> str:
  return '–' if a is None or b is None else f'{a / b:.2f}x'


def table(results: List[dict], extra: dict, gflop: float,
          ceiling_gflops: float) -> str:
  """The markdown written into the README: a column per row that ran."""
  ceiling = ceiling_gflops / gflop
  keys = [row_key(f, d) for f in FRAMEWORKS for d in COMPUTE_DTYPES
          if any(row_key(f, d) in r for r in results)]
  name = lambda k: _NAMES[k.split('_')[0]] + (' bf16' if k.endswith(
      '_bf16') else (' f32' if row_key(k, 'bfloat16') in keys else ''))
  jax_keys = [k for k in keys if k.startswith('jax')]
  peer_keys = [k for k in keys if not k.startswith('jax')]
  lines = [
      '| batch | ' + ' | '.join(name(k) for k in jax_keys) +
      ' | JAX end to end | ' + ' | '.join(name(k) for k in peer_keys) +
      ' | best JAX / fastest peer | e2e / fastest peer | JAX f32 / ceiling | '
      f'compile (s) {" / ".join(map(name, keys))} | '
      f'peak RSS (MB) {" / ".join(map(name, keys))} | load (1 min) |',
      '|---' * (len(keys) + 8) + '|']
  for r in results:
    peer = max((r[k] for k in peer_keys if r.get(k)), default=None)
    best = max((r[k] for k in jax_keys if r.get(k)), default=None)
    jax_f32 = r.get('jax')
    loads = r.get('load_windows') or []
    lines.append(
        f"| {r['batch_size']} | " +
        ' | '.join(_fmt(r.get(k)) for k in jax_keys) +
        f" | {_fmt(r['jax_e2e'])} | " +
        ' | '.join(_fmt(r.get(k)) for k in peer_keys) +
        f" | {_ratio(best, peer)} | {_ratio(r['jax_e2e'], peer)} | "
        f"{_fmt(jax_f32 and jax_f32 / ceiling * 100, '.0f')}% | " +
        ' / '.join(_fmt(r.get(f'{k}_compile_s')) for k in keys) + ' | ' +
        ' / '.join(_fmt(r.get(f'{k}_peak_rss_mb'), '.0f') for k in keys) +
        f" | {_fmt(min(loads, default=None), '.1f')}–"
        f"{_fmt(max(loads, default=None), '.1f')} |")
  lines += [
      '',
      f'examples/s, median of the interleaved windows; the load column is '
      f'the range of the 1-minute load average over the rounds. One example '
      f'costs {gflop:.2f} GFLOP to train at the naive count; the float32 '
      f'matmul ceiling is {ceiling_gflops:.0f} GFLOP/s (the faster of JAX\'s '
      f'and torch\'s {_MATMUL_N}^3 matmuls), i.e. {ceiling:.0f} examples/s.']
  frameworks = {r.get(f'{k}_framework') for r in results for k in keys}
  lines.append('Rows: ' + '; '.join(sorted(f for f in frameworks if f)) + '.')
  if extra:
    lines.append(
        f"Time to the first JAX step (process start to step done, B="
        f"{results[0]['batch_size']}): cold cache {extra['first_step_cold_s']:.1f}"
        f" s (compile {extra['compile_cold_s']:.1f} s), warm cache "
        f"{extra['first_step_warm_s']:.1f} s (compile "
        f"{extra['compile_warm_s']:.1f} s).")
  r = results[0]
  if r.get('jax_denoise_long_file_x_realtime'):
    lines.append(
        f"Denoising (JAX, eval mode): one {r['jax_denoise_long_file_audio_s']:.0f}"
        f" s file at {r['jax_denoise_long_file_x_realtime']:.0f} s of audio per"
        f" second; the {r['jax_denoise_folder_audio_s']:.0f} s test folder at "
        f"{r['jax_denoise_folder_x_realtime']:.0f} s/s.")
  return '\n'.join(lines)


def unet_table(results: List[dict], unets: List[str],
               peer_host_memory: bool) -> str:
  """configs/denoise.py's U-Net: a row per batch size and output form."""
  keys = [row_key(f, d) for f in UNET_FRAMEWORKS for d in COMPUTE_DTYPES]
  keys = [k for k in keys if any(f'{m}:{k}' in r for r in results
                                 for m in unets)]
  name = lambda k: _NAMES[k.split('_')[0]] + (
      ' bf16' if k.endswith('_bf16') else ' f32')
  ratios = [(row_key('jax', d), row_key('torch', d)) for d in COMPUTE_DTYPES]
  ratios = [(a, b) for a, b in ratios if a in keys and b in keys]
  lines = [
      '| batch | U-Net output | ' + ' | '.join(name(k) for k in keys) + ' | ' +
      ''.join(f'{name(a)} / {name(b)} | ' for a, b in ratios) +
      f'compile (s) {" / ".join(map(name, keys))} | '
      f'peak RSS (MB) {" / ".join(map(name, keys))} | load (1 min) |',
      '|---' * (len(keys) + len(ratios) + 5) + '|']
  for r in results:
    loads = r.get('load_windows') or []
    for m in unets:
      get = lambda k, suffix='': r.get(f'{m}:{k}{suffix}')  # pylint: disable=cell-var-from-loop
      lines.append(
          f"| {r['batch_size']} | {_unet_form(m)} | " +
          ' | '.join(_fmt(get(k)) for k in keys) + ' | ' +
          ''.join(f'{_ratio(get(a), get(b))} | ' for a, b in ratios) +
          ' / '.join(_fmt(get(k, '_compile_s')) for k in keys) + ' | ' +
          ' / '.join(_fmt(get(k, '_peak_rss_mb'), '.0f') for k in keys) +
          f" | {_fmt(min(loads, default=None), '.1f')}–"
          f"{_fmt(max(loads, default=None), '.1f')} |")
  params = '; '.join(
      f'{_unet_form(m)}: ' + ', '.join(
          f'{_NAMES[f]} {r[f"{m}:{f}_params"]}' for f in UNET_FRAMEWORKS
          if f'{m}:{f}_params' in r) for m in unets for r in results[:1])
  frameworks = sorted({r.get(f'{m}:{k}_framework') for r in results
                       for m in unets for k in keys} - {None})
  lines += [
      '',
      "configs/denoise.py's U-Net, one training step on a fixed synthetic "
      'batch (experiments/benchmarks/unet_peer.py): examples/s, median of '
      'the interleaved windows; the target is JAX >= 1.2x PyTorch '
      'in each precision. Peers with JAX\'s host-memory setting: '
      f"{'yes' if peer_host_memory else 'no'}. Trainable parameters "
      f'({results[0]["batch_size"]}, float32 rows): {params}.',
      'Rows: ' + '; '.join(frameworks) + '.']
  return '\n'.join(lines)


def _parse(argv) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--batches', type=lambda s: [int(b) for b in s.split(',')],
                 default=[16, 32, 64])
  p.add_argument('--crop', type=int, default=128, help='frames per crop')
  p.add_argument('--frameworks', default=','.join(FRAMEWORKS))
  p.add_argument('--models', default='seed',
                 help="comma-separated: 'seed' (the README's table), 'unet' "
                 "(configs/denoise.py's U-Net with the 'residual' and the "
                 "'kernel' output, JAX and PyTorch only), or 'unet_residual' "
                 "/ 'unet_kernel'; all take turns in the same rounds")
  p.add_argument('--peer_host_memory', action=argparse.BooleanOptionalAction,
                 default=False, help='run the peers with the host-memory '
                 'setting JAX uses (glibc: one arena, no mmap, no trimming; '
                 'the same as MALLOC_ARENA_MAX=1 MALLOC_MMAP_MAX_=0 '
                 'MALLOC_TRIM_THRESHOLD_=2147483647 in their environment)')
  p.add_argument('--windows', type=int, default=5, help='rounds of turns')
  p.add_argument('--seconds', type=float, default=3.0, help='per window')
  p.add_argument('--e2e', action=argparse.BooleanOptionalAction, default=True)
  p.add_argument('--e2e_segments', type=int, default=0,
                 help='rounds followed by an end-to-end segment (0: every '
                 'round, so it samples the same machine states as the step)')
  p.add_argument('--e2e_steps', type=int, default=40)
  p.add_argument('--e2e_log_every', type=int, default=10)
  p.add_argument('--denoise_minutes', type=float, default=10.0,
                 help='length of the long file; 0 skips denoising')
  p.add_argument('--first_step_check', action=argparse.BooleanOptionalAction,
                 default=True, help='time the first step, cold and warm')
  p.add_argument('--out', default=os.path.join(
      REPO, 'experiments', 'benchmarks', 'results', 'benchmark'))
  p.add_argument('--conv_impl', default='',
                 help="JAX's runtime.conv_impl (default: the config's, 'auto')")
  p.add_argument('--compute_dtype', default=','.join(COMPUTE_DTYPES),
                 help='precisions to time, comma-separated: float32 (every '
                 'framework), bfloat16 (JAX train.compute_dtype, PyTorch '
                 'autocast)')
  p.add_argument('--e2e_compute_dtype', default='float32',
                 choices=COMPUTE_DTYPES, help='train.compute_dtype of --e2e')
  p.add_argument('--worker', help=argparse.SUPPRESS)
  p.add_argument('--first_step', action='store_true', help=argparse.SUPPRESS)
  p.add_argument('--cache_dir', help=argparse.SUPPRESS)
  return p.parse_args(argv)


def _available(frameworks: List[str]) -> List[str]:
  """JAX and the peers whose packages are installed (the `bench` extra);
  says which are skipped."""
  modules = {'jax': ('jax',), 'torch': ('torch',),
             'keras': ('keras', 'tensorflow')}
  import importlib.util  # pylint: disable=g-import-not-at-top
  available = []
  for f in frameworks:
    missing = [m for m in modules[f] if not importlib.util.find_spec(m)]
    if missing:
      print(f'skipping {f}: {", ".join(missing)} not installed (pip install '
            "'.[bench]')", flush=True)
    else:
      available.append(f)
  return available


def _models(names: str) -> List[str]:
  """--models: 'seed', 'unet' (both output forms) or 'unet_<form>'."""
  models = []
  for name in names.split(','):
    expanded = [m for m in MODELS if m.startswith('unet_')] if (
        name == 'unet') else [name]
    if any(m not in MODELS for m in expanded):
      raise SystemExit(f'--models: {name!r} is not one of '
                       f'{("unet",) + MODELS}')
    models += [m for m in expanded if m not in models]
  return models


def _rows(frameworks: List[str], dtypes: List[str],
          models: Sequence[str] = ('seed',)):
  """(model, framework, compute dtype) to time; says which are skipped."""
  rows = []
  for d in dtypes:
    if d not in COMPUTE_DTYPES:
      raise SystemExit(f'--compute_dtype: {d!r} is not one of '
                       f'{COMPUTE_DTYPES}')
  for m in models:
    for f in frameworks:
      if m != 'seed' and f not in UNET_FRAMEWORKS:
        print(f'skipping {f} for {m}: no U-Net in it here', flush=True)
        continue
      for d in dtypes:
        if d == 'bfloat16' and f not in BF16_FRAMEWORKS:
          print(f'skipping {f} in bfloat16: no mixed-precision peer for it '
                'here', flush=True)
        else:
          rows.append((m, f, d))
  return rows


def main(argv=None) -> None:
  args = _parse(argv)
  if args.worker:
    return worker(args.worker, args.batches[0], args.crop, args.conv_impl,
                  args.compute_dtype, args.models)
  if args.first_step:
    return first_step(args.batches[0], args.crop, args.cache_dir,
                      args.conv_impl)
  models = _models(args.models)
  frameworks = _available(args.frameworks.split(','))
  rows = _rows(frameworks, args.compute_dtype.split(','), models)
  print(f'load average {os.getloadavg()}; rows '
        f'{[entry_key(*r) for r in rows]}', flush=True)
  from configs import base  # pylint: disable=g-import-not-at-top
  config = base.get_config()
  gflop = train_gflop_per_example(config.model, config.audio.n_mels,
                                  args.crop)
  # The time to the first step, the end-to-end run and denoising are the
  # seed's (configs/base.py).
  extra = (_time_to_first_step(args.batches[0], args.crop, args.conv_impl)
           if args.first_step_check and 'seed' in models else {})
  with tempfile.TemporaryDirectory() as root:
    results = [bench_batch(args, b, rows, root) for b in args.batches]
  first = results[0]
  ceiling = max(v for k, v in first.items()
                if k.endswith('matmul_gflops') and v)
  parts = []
  if 'seed' in models:
    parts.append(table(results, extra, gflop, ceiling))
  unets = [m for m in models if m != 'seed']
  if unets:
    parts.append(unet_table(results, unets, args.peer_host_memory))
  text = '\n\n'.join(parts)
  load = os.getloadavg()
  text += (f'\nLoad average at the end: {load[0]:.1f} / {load[1]:.1f} / '
           f'{load[2]:.1f} (1 / 5 / 15 min), {os.cpu_count()} cores.')
  print(text)
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out + '.md', 'w') as f:
    f.write(text + '\n')
  with open(args.out + '.json', 'w') as f:
    json.dump({'results': results, **extra, 'gflop_per_example': gflop,
               'matmul_ceiling_gflops': ceiling}, f, indent=1)


if __name__ == '__main__':
  main()
