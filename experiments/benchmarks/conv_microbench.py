"""Times the seed's dominant layer (2x nearest upsample + 5x5 conv 32->16).

Forward + backward (grads w.r.t. input and kernel, as inside the model) of
  plain:  jnp.repeat upsample, then SAME conv at 128x128;
  phase:  mel_ae.backends.phase: four per-phase 3x3 convs at low resolution,
          interleaved;
  wide:   the same as ONE low-res 3x3 conv with 4 * 16 output channels
          (the alternative `phase` was chosen over);
  phase_onednn: `phase` with oneDNN's convolutions (mel_ae/backends/onednn.py),
          when they build here.
Variants run interleaved in short windows; the median window is reported,
because the machine is shared and noisy.

  python -m experiments.benchmarks.conv_microbench [--seconds 20] [--kernel 5]
"""
import argparse
import statistics
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from mel_ae import layers
from mel_ae.backends import onednn
from mel_ae.backends import phase


def wide(x: jax.Array, kernel: jax.Array, factor: int) -> jax.Array:
  """All phases as ONE low-res conv with f*f*out channels, then interleave.

  The combined kernel spans the union of the phases' offsets (zeros where a
  phase has no tap); output channels are ordered (a, b, out).
  """
  k = kernel.shape[0]
  phases = _phases(k, factor)
  lo, hi = _span(phases)
  taps = np.zeros((factor, hi - lo + 1, k), np.float32)
  for a, (t, l) in enumerate(phases):
    taps[a, l - lo:l - lo + len(t)] = t
  k2 = jnp.einsum('asy,btx,yxio->stiabo', taps, taps, kernel)
  n, cin, cout = k2.shape[0], kernel.shape[2], kernel.shape[3]
  k2 = k2.reshape(n, n, cin, factor * factor * cout)
  y = jax.lax.conv_general_dilated(
      x, k2, (1, 1), ((-lo, hi), (-lo, hi)),
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  b, h, w, _ = y.shape
  y = y.reshape(b, h, w, factor, factor, cout).transpose(0, 1, 3, 2, 4, 5)
  return y.reshape(b, h * factor, w * factor, cout)


def _phases(kernel_size: int, factor: int) -> list[tuple[np.ndarray, int]]:
  return [phase.phase_taps(kernel_size, factor, a) for a in range(factor)]


def _span(phases: list[tuple[np.ndarray, int]]) -> tuple[int, int]:
  """First and last low-res offset read by any phase."""
  return (min(lo for _, lo in phases),
          max(len(t) - 1 + lo for t, lo in phases))


def fwd_bwd(fn: Callable, factor: int) -> Callable:
  """Jitted grads of <fn(x, w), g> w.r.t. x and w (g: a fixed cotangent)."""
  def loss(x, w, g):
    return jnp.vdot(fn(x, w, factor), g)
  return jax.jit(jax.grad(loss, argnums=(0, 1)))


def time_windows(steps: dict[str, Callable], args: tuple, seconds: float,
                 window: float = 1.0) -> dict[str, list[float]]:
  """Per-call seconds of each window, the variants taking turns."""
  for step in steps.values():  # compile + warm up
    jax.block_until_ready(step(*args))
    jax.block_until_ready(step(*args))
  times = {name: [] for name in steps}
  end = time.perf_counter() + seconds
  while time.perf_counter() < end:
    for name, step in steps.items():
      n, t0 = 0, time.perf_counter()
      while n == 0 or time.perf_counter() - t0 < window:
        jax.block_until_ready(step(*args))
        n += 1
      times[name].append((time.perf_counter() - t0) / n)
  return times


def executed_fraction(kernel_size: int, factor: int) -> dict[str, float]:
  """MACs each variant executes, relative to the full-resolution conv."""
  phases = _phases(kernel_size, factor)
  lo, hi = _span(phases)
  taps = sum(len(t) for t, _ in phases)
  full = (factor * kernel_size) ** 2
  return {'plain': 1.0, 'phase': taps ** 2 / full,
          'wide': (factor * (hi - lo + 1)) ** 2 / full,
          'phase_onednn': taps ** 2 / full}


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--batch', type=int, default=32)
  p.add_argument('--size', type=int, default=64, help='low-res H = W')
  p.add_argument('--cin', type=int, default=32)
  p.add_argument('--cout', type=int, default=16)
  p.add_argument('--kernel', type=int, default=5)
  p.add_argument('--factor', type=int, default=2)
  p.add_argument('--seconds', type=float, default=20.0)
  a = p.parse_args()
  kx, kw, kg = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(kx, (a.batch, a.size, a.size, a.cin))
  w = jax.random.normal(kw, (a.kernel, a.kernel, a.cin, a.cout)) * 0.05
  full = a.size * a.factor
  g = jax.random.normal(kg, (a.batch, full, full, a.cout))
  steps = {'plain': fwd_bwd(layers.upsample_then_conv, a.factor),
           'phase': fwd_bwd(phase.upsample_conv_phase, a.factor),
           'wide': fwd_bwd(wide, a.factor)}
  if not onednn.unavailable_reason():
    steps['phase_onednn'] = fwd_bwd(
        lambda x, k, f: phase.upsample_conv_phase(x, k, f, onednn.convs),
        a.factor)
  times = time_windows(steps, (x, w, g), a.seconds)
  # Nominal FLOPs of the full-resolution layer: 2 per MAC, x3 for fwd+bwd.
  gflop = 6 * a.batch * full * full * a.kernel ** 2 * a.cin * a.cout / 1e9
  base = statistics.median(times['plain'])
  print(f'{jax.devices()[0].device_kind}, jax {jax.__version__}, '
        f'B={a.batch} {a.size}x{a.size}x{a.cin} -> {full}x{full}x{a.cout}, '
        f'k={a.kernel}, {gflop:.1f} nominal GFLOP per fwd+bwd')
  frac = executed_fraction(a.kernel, a.factor)
  for name, ts in times.items():
    t = statistics.median(ts)
    print(f'{name:12s} {t * 1e3:7.1f} ms (min {min(ts) * 1e3:6.1f}, '
          f'{len(ts)} windows)  nominal {gflop / t:5.1f} GFLOP/s, '
          f'executed {frac[name] * gflop / t:5.1f} GFLOP/s  '
          f'speedup {base / t:.2f}x')


if __name__ == '__main__':
  main()
