r"""configs/denoise.py's U-Net training step, layer by layer: JAX beside PyTorch.

  python -m experiments.benchmarks.unet_profile                  # float32
  python -m experiments.benchmarks.unet_profile --compute_dtype=bfloat16
  python -m experiments.benchmarks.unet_profile --trace=/tmp/unet_trace

Every layer of the step at the recipe's shapes (batch 16, 128x128 crops),
timed alone: each conv's forward, input gradient and weight (+ bias)
gradient; BatchNorm (training mode) + ReLU, the 2x2 max pool, the nearest
upsample (PyTorch; JAX's phase upsample computes it inside its four
low-resolution convs, the `up` rows) and the skip concatenation, each
forward and backward; the output head, the loss with its border slicing,
and the optimizer update (AdamW on the one-cycle schedule). JAX: each piece
jitted on its own, with the layers `runtime.conv_impl='auto'` picks (the
oneDNN custom calls here) and `train.compute_dtype`; a backward piece is the
jitted pullback of `jax.vjp`, so it holds no forward work. PyTorch: eager,
channels_last (bfloat16: the step's autocast); a backward piece is
`torch.autograd.grad` on a graph built once (retain_graph).

Each framework runs in its own worker process (no two thread pools
competing); the parent has them take turns piece by piece in short windows
for `--rounds` rounds and reports medians. Then: `per step` = a piece's time
times how often the step runs it, their sum against the whole step timed
the same way (the difference is what fusion, scheduling and copies between
pieces add or save), both output forms. `--trace DIR` also writes a
jax.profiler trace of a few whole JAX steps and sums its XLA ops by name.
Takes about 8 minutes with the defaults on a quiet 2-core CPU (most of
it compiling and warming up ~80 pieces).
"""
import argparse
import collections
import functools
import glob
import gzip
import json
import os
import re
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Tuple

import numpy as np

from experiments.benchmarks import benchmark
from experiments.benchmarks import unet_peer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
FRAMEWORKS = ('jax', 'torch')


def conv_layers(size: int = 128) -> List[Tuple[str, int, int, int, int, int]]:
  """(name, input size, cin, cout, kernel, upsample factor) of every conv,
  in the order the forward pass runs them; `size` the crop's."""
  c, out = unet_peer.CHANNELS, []
  for level, ch in enumerate(c):
    s, cin = size >> level, (1,) + c
    out += [(f'enc{level}a', s, cin[level], ch, 3, 1),
            (f'enc{level}b', s, ch, ch, 3, 1)]
  for level in range(len(c) - 2, -1, -1):
    s = size >> level
    out += [(f'up{level}', s // 2, c[level + 1], c[level], 3, 2),
            (f'dec{level}a', s, 2 * c[level], c[level], 3, 1),
            (f'dec{level}b', s, c[level], c[level], 3, 1)]
  return out


def pieces(batch: int, size: int) -> List[Tuple[str, str, tuple, int]]:
  """(name, kind, shape args, times per step) of every timed piece."""
  c, out = unet_peer.CHANNELS, []
  for name, s, cin, cout, k, f in conv_layers(size):
    for part in ('fwd', 'bwd_data', 'bwd_weights'):
      if name == 'enc0a' and part == 'bwd_data':
        continue  # The step needs no gradient of its input.
      out.append((f'{name} {part}', 'conv', (batch, s, cin, cout, k, f, part),
                  1))
  taps = unet_peer.KERNEL_WINDOW[0] * unet_peer.KERNEL_WINDOW[1]
  for form, cout in (('residual', 1), ('kernel', taps + 1)):
    for part in ('fwd', 'bwd_data', 'bwd_weights'):
      out.append((f'out[{form}] {part}', 'conv',
                  (batch, size, c[0], cout, 1, 1, part), 1))
  for level, ch in enumerate(c):
    s = size >> level
    n = 2 if level == len(c) - 1 else 4  # two convs down, two up
    for part in ('fwd', 'bwd'):
      out.append((f'bn+relu {ch}@{s} {part}', 'bn_relu', (batch, s, ch, part),
                  n))
    if level:
      for part in ('fwd', 'bwd'):
        out.append((f'maxpool {c[level - 1]}@{2 * s} {part}', 'pool',
                    (batch, 2 * s, c[level - 1], part), 1))
  for level in range(len(c) - 1):
    s, ch = size >> level, c[level]
    for part in ('fwd', 'bwd'):
      out.append((f'upsample {c[level + 1]}@{s // 2} {part}', 'upsample',
                  (batch, s // 2, c[level + 1], part), 1))
      out.append((f'relu {ch}@{s} {part}', 'relu', (batch, s, ch, part), 1))
      out.append((f'concat {ch}+{ch}@{s} {part}', 'concat',
                  (batch, s, ch, part), 1))
  for form in unet_peer.OUTPUT_FORMS:
    for part in ('fwd', 'bwd'):
      out.append((f'head[{form}] {part}', 'head', (batch, size, form, part), 1))
      out.append((f'loss[{form}] {part}', 'loss', (batch, size, form, part), 1))
    out.append((f'optimizer[{form}]', 'optimizer', (form,), 1))
  return out


def in_step(name: str, form: str) -> bool:
  """Whether the `form` ('residual' / 'kernel') step runs piece `name`."""
  other = [f for f in unet_peer.OUTPUT_FORMS if f != form][0]
  return f'[{other}]' not in name


# ------------------------------------------------------------------- JAX


class JaxPieces:
  """Jitted JAX pieces, built as the step builds its layers."""

  def __init__(self, compute_dtype: str):
    import jax  # pylint: disable=g-import-not-at-top
    import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
    from configs import denoise  # pylint: disable=g-import-not-at-top
    from mel_ae import backends  # pylint: disable=g-import-not-at-top
    self.jax, self.jnp = jax, jnp
    config = denoise.get_config()
    config.train.compute_dtype = compute_dtype
    self.config = config
    self.conv_impl = backends.resolve(config.runtime.conv_impl)
    self.dtype = backends.resolve_dtype(self.conv_impl, compute_dtype)
    self.layers = backends.layers_for(config.runtime, compute_dtype)
    self.cdtype = jnp.dtype(self.dtype)
    self.rng = np.random.default_rng(0)

  def _x(self, *shape, dtype=None):
    return self.jnp.asarray(self.rng.normal(size=shape), dtype or self.cdtype)

  def _timed_parts(self, f, args, wrt, part):
    """part 'fwd': jit(f); otherwise the jitted pullback w.r.t. args[i]
    for i in wrt (the rest closed over)."""
    jax = self.jax
    if part == 'fwd':
      fn = jax.jit(f)
      return lambda: fn(*args)
    closed = lambda *diff: f(*[diff[wrt.index(i)] if i in wrt else a
                               for i, a in enumerate(args)])
    y, pullback = jax.vjp(closed, *[args[i] for i in wrt])
    g = self.jnp.asarray(self.rng.normal(size=y.shape), y.dtype)
    fn = jax.jit(lambda p, g: p(g))
    return lambda: fn(pullback, g)

  def build(self, kind: str, spec: tuple) -> Callable[[], object]:
    jax, jnp = self.jax, self.jnp
    import flax.linen as nn  # pylint: disable=g-import-not-at-top
    from mel_ae import output_forms  # pylint: disable=g-import-not-at-top
    if kind == 'conv':
      b, s, cin, cout, k, factor, part = spec
      if factor > 1:
        module = self.layers['upsample_conv'](cout, k, factor)
      elif k == 1:  # The output conv: float32 whatever the compute dtype.
        module = self.layers['conv'](cout, (1, 1), dtype=jnp.float32)
      else:
        module = self.layers['conv'](cout, (k, k))
      x = self._x(b, s, s, cin, dtype=jnp.float32 if k == 1 else None)
      params = module.init(jax.random.PRNGKey(0), x)
      return self._timed_parts(module.apply, (params, x),
                               (1,) if part == 'bwd_data' else (0,), part)
    if kind == 'bn_relu':
      b, s, ch, part = spec
      bn = self.layers['norm'](use_running_average=False, momentum=0.9,
                               epsilon=1e-5)
      x = self._x(b, s, s, ch)
      variables = bn.init(jax.random.PRNGKey(0), x)
      f = lambda p, x: nn.relu(bn.apply(
          {'params': p, 'batch_stats': variables['batch_stats']}, x,
          mutable=['batch_stats'])[0])
      return self._timed_parts(f, (variables['params'], x), (0, 1), part)
    if kind == 'pool':
      b, s, ch, part = spec
      f = lambda x: self.layers['max_pool'](x, 2)
      return self._timed_parts(f, (self._x(b, s, s, ch),), (0,), part)
    if kind == 'upsample':  # Not in JAX's step: phase upsample instead.
      return None
    if kind == 'relu':
      b, s, ch, part = spec
      return self._timed_parts(nn.relu, (self._x(b, s, s, ch),), (0,), part)
    if kind == 'concat':
      b, s, ch, part = spec
      f = lambda a, c: jnp.concatenate([a, c], axis=-1)
      return self._timed_parts(f, (self._x(b, s, s, ch), self._x(b, s, s, ch)),
                               (0, 1), part)
    if kind == 'head':
      b, s, form, part = spec
      taps = int(np.prod(unet_peer.KERNEL_WINDOW))
      z = self._x(b, s, s, 1, dtype=jnp.float32)
      logits = self._x(b, s, s, taps + 1 if form == 'kernel' else 1,
                       dtype=jnp.float32) * 0.1
      if form == 'kernel':
        f = lambda z, l: output_forms.kernel_output(
            z, l, tuple(unet_peer.KERNEL_WINDOW))
      else:
        f = lambda z, l: z + l
      return self._timed_parts(f, (z, logits), (1,), part)
    if kind == 'loss':
      from mel_ae import recipes  # pylint: disable=g-import-not-at-top
      b, s, form, part = spec
      batch, normalizer = unet_peer.synthetic_batch(b, (s, s))
      config = self.config.copy_and_resolve_references()
      config.model.output_mode = form
      loss = recipes.Recipe.of(config).loss(normalizer)
      args = tuple(jnp.asarray(batch[k]) for k in ('input', 'target'))
      return self._timed_parts(loss, args, (0,), part)
    if kind == 'optimizer':
      return self._optimizer(spec[0])
    raise ValueError(kind)

  def _optimizer(self, form: str):
    """state.apply_gradients of the step: AdamW + one-cycle, all params."""
    jax = self.jax
    from mel_ae import train  # pylint: disable=g-import-not-at-top
    config = self.config.copy_and_resolve_references()
    config.model.output_mode = form
    state = train.create_train_state(jax.random.PRNGKey(0), config,
                                     (16, 128, 128, 1))
    grads = jax.tree_util.tree_map(lambda p: p * 1e-3 + 1e-4, state.params)
    fn = jax.jit(lambda s, g: s.apply_gradients(grads=g))
    return lambda: fn(state, grads)

  def whole_step(self, batch: int, size: int, form: str):
    from experiments.benchmarks import benchmark  # pylint: disable=g-import-not-at-top
    step, _ = benchmark.jax_unet_trainer(batch, size, form,
                                         compute_dtype=self.config.train.compute_dtype)
    return step

  def describe(self) -> str:
    return (f'jax {self.jax.__version__}, conv_impl {self.conv_impl}, '
            f'compute {self.dtype}')

  def block(self, out) -> None:
    self.jax.block_until_ready(out)


# ---------------------------------------------------------------- PyTorch


class TorchPieces:
  """Eager PyTorch pieces, channels_last, as unet_peer's step runs them."""

  def __init__(self, compute_dtype: str):
    import torch  # pylint: disable=g-import-not-at-top
    self.torch = torch
    self.bf16 = compute_dtype == 'bfloat16'
    self.gen = torch.Generator().manual_seed(0)

  def _x(self, b, s, ch, bf16=None):
    t = self.torch
    x = t.randn(b, ch, s, s, generator=self.gen).contiguous(
        memory_format=t.channels_last)
    return x.to(t.bfloat16) if (self.bf16 if bf16 is None else bf16) else x

  def _autocast(self, enabled=True):
    return self.torch.autocast('cpu', dtype=self.torch.bfloat16,
                               enabled=self.bf16 and enabled)

  def _timed_parts(self, f, args, wrt, part, autocast=True):
    """'fwd': f under the step's autocast, no graph; otherwise
    torch.autograd.grad of a graph built once w.r.t. args[i], i in wrt."""
    t = self.torch
    if part == 'fwd':
      def fwd():
        with t.no_grad(), self._autocast(autocast):
          return f(*args)
      return fwd
    args = [a.detach().requires_grad_(i in wrt) if a.is_floating_point()
            else a for i, a in enumerate(args)]
    with self._autocast(autocast):
      y = f(*args)
    g = t.randn(y.shape, generator=self.gen).to(y.dtype).contiguous(
        memory_format=t.channels_last if y.dim() == 4 else
        t.contiguous_format)
    inputs = [args[i] for i in wrt]
    return lambda: t.autograd.grad(y, inputs, g, retain_graph=True)

  def build(self, kind: str, spec: tuple) -> Callable[[], object]:
    t = self.torch
    F = t.nn.functional
    if kind == 'conv':
      b, s, cin, cout, k, factor, part = spec
      conv = t.nn.Conv2d(cin, cout, k, padding='same').to(
          memory_format=t.channels_last)
      out = k == 1  # float32, outside autocast (unet_peer)
      x = self._x(b, s, cin, bf16=False if out else None)
      w, bias = conv.weight.detach(), conv.bias.detach()
      up = (lambda x: F.interpolate(x, scale_factor=factor, mode='nearest')
            ) if factor > 1 else (lambda x: x)
      f = lambda x, w, bias: F.conv2d(up(x), w, bias, padding='same')
      return self._timed_parts(f, (x, w, bias),
                               (0,) if part == 'bwd_data' else (1, 2), part,
                               autocast=not out)
    if kind == 'bn_relu':
      b, s, ch, part = spec
      bn = t.nn.BatchNorm2d(ch, eps=1e-5, momentum=0.1).train()
      f = lambda x, w, bias: F.relu(F.batch_norm(
          x, bn.running_mean, bn.running_var, w, bias, True, 0.1, 1e-5))
      return self._timed_parts(
          f, (self._x(b, s, ch), bn.weight.detach(), bn.bias.detach()),
          (0, 1, 2), part)
    if kind == 'pool':
      b, s, ch, part = spec
      return self._timed_parts(lambda x: F.max_pool2d(x, 2),
                               (self._x(b, s, ch),), (0,), part)
    if kind == 'upsample':
      b, s, ch, part = spec
      return self._timed_parts(
          lambda x: F.interpolate(x, scale_factor=2, mode='nearest'),
          (self._x(b, s, ch),), (0,), part)
    if kind == 'relu':
      b, s, ch, part = spec
      return self._timed_parts(F.relu, (self._x(b, s, ch),), (0,), part)
    if kind == 'concat':
      b, s, ch, part = spec
      return self._timed_parts(lambda a, c: t.cat([a, c], dim=1),
                               (self._x(b, s, ch), self._x(b, s, ch)),
                               (0, 1), part)
    if kind == 'head':
      b, s, form, part = spec
      taps = int(np.prod(unet_peer.KERNEL_WINDOW))
      z = self._x(b, s, 1, bf16=False)
      logits = self._x(b, s, taps + 1 if form == 'kernel' else 1,
                       bf16=False) * 0.1
      f = unet_peer.kernel_output if form == 'kernel' else (
          lambda z, l: z + l)
      return self._timed_parts(f, (z, logits), (1,), part, autocast=False)
    if kind == 'loss':
      b, s, form, part = spec
      batch, normalizer = unet_peer.synthetic_batch(b, (s, s))
      loss = unet_peer.power_loss(normalizer, unet_peer.BORDER_FRAMES[form])
      nchw = lambda a: t.from_numpy(a).permute(0, 3, 1, 2).contiguous(
          memory_format=t.channels_last)
      return self._timed_parts(loss, (nchw(batch['input']),
                                      nchw(batch['target'])), (0,), part,
                               autocast=False)
    if kind == 'optimizer':
      s = unet_peer.torch_setup(16, (128, 128), spec[0])
      for p in s.model.parameters():
        p.grad = p.detach() * 1e-3 + 1e-4

      def update():
        s.optimizer.step()
        s.scheduler.step()
      return update
    raise ValueError(kind)

  def whole_step(self, batch: int, size: int, form: str):
    return unet_peer.make_torch_trainer(batch, (size, size), form,
                                        bf16_autocast=self.bf16)

  def describe(self) -> str:
    return (f'torch {self.torch.__version__}, channels_last' +
            (', bf16 autocast' if self.bf16 else ''))

  def block(self, out) -> None:
    del out  # eager CPU: done when it returns


# ----------------------------------------------------------------- worker


def worker(framework: str, batch: int, size: int, compute_dtype: str,
           trace: str) -> None:
  """Builds every piece, then answers 'run NAME SECONDS' (median per-call
  seconds of that window) and 'quit' on stdin/stdout, one JSON line each."""
  if framework == 'jax':
    from mel_ae.backends import host_memory  # pylint: disable=g-import-not-at-top
    host_memory.reuse_freed_memory()  # As the training step runs.
    impl = JaxPieces(compute_dtype)
  else:
    impl = TorchPieces(compute_dtype)
  fns = {}
  for name, kind, spec, _ in pieces(batch, size):
    fn = impl.build(kind, spec)
    if fn is not None:
      impl.block(fn())  # compile / warm up
      fns[name] = fn
  for form in unet_peer.OUTPUT_FORMS:
    step = impl.whole_step(batch, size, form)
    step()
    fns[f'whole step[{form}]'] = step
  traced = _trace_jax(fns, trace) if trace and framework == 'jax' else None
  _reply({'ready': True, 'framework': impl.describe(), 'trace': traced})
  for line in sys.stdin:
    cmd, *args = line.split('\t')
    if cmd != 'run':
      return
    fn, seconds = fns.get(args[0]), float(args[1])
    if fn is None:
      _reply({'seconds': None})
      continue
    times, end = [], time.perf_counter() + seconds
    while not times or time.perf_counter() < end:
      t0 = time.perf_counter()
      impl.block(fn())
      times.append(time.perf_counter() - t0)
    _reply({'seconds': statistics.median(times)})


def _trace_jax(fns, directory: str, steps: int = 5) -> Dict[str, dict]:
  """A jax.profiler trace of `steps` whole steps of each output form; the
  time of the step's XLA ops (events named after the compiled HLO's
  instructions) summed by what they compute (`_hlo_labels`), ms per step,
  and the sum of all of them beside the step's wall time."""
  import jax  # pylint: disable=g-import-not-at-top
  out = {}
  for form in unet_peer.OUTPUT_FORMS:
    step = fns[f'whole step[{form}]']
    labels = _hlo_labels(step.compiled.as_text())
    path = os.path.join(directory, form)
    t0 = time.perf_counter()
    with jax.profiler.trace(path, create_perfetto_trace=True):
      for _ in range(steps):
        step()
      wall = (time.perf_counter() - t0) / steps
    files = glob.glob(os.path.join(path, '**', '*perfetto_trace.json.gz'),
                      recursive=True)
    if not files:
      out[form] = {'error': f'no perfetto trace under {path}'}
      continue
    with gzip.open(sorted(files)[-1]) as f:
      events = json.load(f)
    if isinstance(events, dict):
      events = events.get('traceEvents', [])
    total = collections.Counter()
    for e in events:
      if e.get('ph') == 'X' and e.get('name') in labels:
        total[labels[e['name']]] += e.get('dur', 0) / 1e3 / steps
    out[form] = {'wall_ms_per_step (traced)': wall * 1e3,
                 'xla_ops_ms_per_step': sum(total.values()),
                 'onednn_ms_per_step': sum(
                     v for k, v in total.items()
                     if k.split()[0].startswith(('Forward', 'Backward'))),
                 'ops': dict(total.most_common(60))}
  return out


def _hlo_labels(text: str) -> Dict[str, str]:
  """HLO instruction name -> 'what, fwd/bwd/update, module': the oneDNN
  target (Forward, BackwardData, ...) or the opcode (a fusion by its kind),
  where the instruction's op_name metadata puts it."""
  labels = {}
  for line in text.splitlines():
    m = re.match(r'\s*(?:ROOT )?%([\w.\-]+) = .*? ([\w\-]+)\(', line)
    if not m or line.lstrip().startswith('ROOT %tuple'):
      continue
    name, op = m.groups()
    target = re.search(r'custom_call_target="mel_ae_conv_(\w+)"', line)
    kind = re.search(r'kind=(k\w+)', line)
    what = (target.group(1) if target else
            f'{op}:{kind.group(1)}' if op == 'fusion' and kind else op)
    meta = re.search(r'op_name="([^"]*)"', line)
    where = meta.group(1) if meta else ''
    direction = ('bwd' if 'transpose(jvp' in where else
                 'fwd' if 'jvp(' in where else 'other')
    module = re.findall(r'(?:Conv|BatchNorm|UpsampleConv)_\d+', where)
    tail = where.rsplit('/', 1)[-1] if where else ''
    labels[name] = (f'{what} {direction} ' +
                    (module[-1] if module else tail)).strip()
  return labels


def _reply(obj) -> None:
  sys.stdout.write(json.dumps(obj) + '\n')
  sys.stdout.flush()


# ----------------------------------------------------------------- parent


class Worker(benchmark.LineWorker):
  """One framework's pieces, timed in its own process on request."""

  def __init__(self, framework: str, args):
    super().__init__(
        ['experiments.benchmarks.unet_profile', '--worker', framework,
         '--batch', str(args.batch), '--size', str(args.size),
         '--compute_dtype', args.compute_dtype, '--trace', args.trace],
        dict(os.environ, PYTHONPATH=REPO), framework)

  def close(self) -> None:
    self._proc.stdin.write('quit\n')
    self._proc.stdin.close()
    self._proc.wait()


def _ms(v) -> str:
  return '–' if v is None else f'{v * 1e3:.2f}'


def report(medians: Dict[str, Dict[str, float]], info: Dict[str, dict],
           args) -> str:
  names = [(n, count) for n, _, _, count in pieces(args.batch, args.size)]
  lines = [
      f'U-Net step pieces, B={args.batch}, {args.size}x{args.size}, '
      f'{args.compute_dtype}; median ms per call over {args.rounds} rounds '
      f'of {args.seconds:g}-s windows.',
      'JAX: ' + info['jax']['framework'] + '; PyTorch: ' +
      info['torch']['framework'] + '.', '',
      '| piece | per step | JAX ms | PyTorch ms | JAX / PyTorch time | JAX - '
      'PyTorch per step (ms) |', '|---|---:|---:|---:|---:|---:|']
  for name, count in names:
    j, t = medians['jax'].get(name), medians['torch'].get(name)
    gap = (j or 0) * count - (t or 0) * count if j or t else None
    lines.append(f'| {name} | {count} | {_ms(j)} | {_ms(t)} | ' +
                 (f'{j / t:.2f}' if j and t else '–') +
                 f' | {_ms(gap)} |')
  lines += ['', '| step | JAX sum of pieces | JAX whole step | PyTorch sum of '
            'pieces | PyTorch whole step | JAX speed / PyTorch (whole step) |',
            '|---|---:|---:|---:|---:|---:|']
  for form in unet_peer.OUTPUT_FORMS:
    row = []
    for fw in FRAMEWORKS:
      total = sum((medians[fw].get(n) or 0) * c for n, c in names
                  if in_step(n, form))
      row += [total, medians[fw].get(f'whole step[{form}]')]
    ratio = f'{row[3] / row[1]:.2f}x' if row[1] and row[3] else '–'
    lines.append(f'| {form} | ' + ' | '.join(_ms(v) for v in row) +
                 f' | {ratio} |')
  lines += [
      '',
      "Sums: each piece's time x how often the step runs it (the step does "
      "not take its input's gradient). JAX's upsample is inside its `up` "
      'convs (phase upsample), so its upsample rows are empty; PyTorch\'s '
      '`up` convs include its upsample (F.interpolate) as well, and its '
      'upsample rows are listed apart for reference but not summed twice: '
      'subtract them from its sum when reading it.']
  trace = info['jax'].get('trace')
  for form, t in (trace or {}).items():
    if 'error' in t:
      lines += ['', f'jax.profiler trace, {form}: {t["error"]}']
      continue
    lines += ['', f'jax.profiler trace of the JAX {form} step: XLA ops by '
              'what they compute and where (oneDNN target or HLO opcode, '
              'fwd / bwd / other = loss and optimizer, flax module), ms per '
              f'step; all ops {t["xla_ops_ms_per_step"]:.1f} ms (the oneDNN '
              f'calls {t["onednn_ms_per_step"]:.1f}) against '
              f'{t["wall_ms_per_step (traced)"]:.1f} ms of wall time per '
              'traced step (ops on two threads overlap; the rest is idle '
              'or outside XLA).', '', '| ops | ms per step |', '|---|---:|']
    lines += [f'| `{k}` | {v:.2f} |' for k, v in t['ops'].items()]
  return '\n'.join(lines)


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--batch', type=int, default=16)
  p.add_argument('--size', type=int, default=128, help='crop bands = frames')
  p.add_argument('--compute_dtype', default='float32',
                 choices=('float32', 'bfloat16'))
  p.add_argument('--rounds', type=int, default=5)
  p.add_argument('--seconds', type=float, default=0.4, help='per window')
  p.add_argument('--trace', default='', help='directory for a '
                 'jax.profiler trace of whole JAX steps ("": none)')
  p.add_argument('--out', default='', help='write the markdown and json '
                 'here (path without extension)')
  p.add_argument('--worker', help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  if args.worker:
    return worker(args.worker, args.batch, args.size, args.compute_dtype,
                  args.trace)
  print(f'load average {os.getloadavg()}', flush=True)
  workers = {f: Worker(f, args) for f in FRAMEWORKS}
  names = [n for n, _, _, _ in pieces(args.batch, args.size)] + [
      f'whole step[{f}]' for f in unet_peer.OUTPUT_FORMS]
  times = {f: collections.defaultdict(list) for f in FRAMEWORKS}
  for r in range(args.rounds):
    for name in names:
      for f, w in workers.items():
        s = w.ask(f'run\t{name}\t{args.seconds}')['seconds']
        if s is not None:
          times[f][name].append(s)
    print(f'round {r + 1}/{args.rounds} (load {os.getloadavg()[0]:.2f})',
          flush=True)
  medians = {f: {n: statistics.median(v) for n, v in t.items()}
             for f, t in times.items()}
  info = {f: w.info for f, w in workers.items()}
  for w in workers.values():
    w.close()
  text = report(medians, info, args)
  load = os.getloadavg()
  text += (f'\n\nLoad average at the end: {load[0]:.1f} / {load[1]:.1f} / '
           f'{load[2]:.1f} (1 / 5 / 15 min), {os.cpu_count()} cores.')
  print(text)
  if args.out:
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + '.md', 'w') as f:
      f.write(text + '\n')
    with open(args.out + '.json', 'w') as f:
      json.dump({'args': vars(args), 'info': info, 'median_s': medians,
                 'windows_s': times}, f, indent=1)


if __name__ == '__main__':
  main()
