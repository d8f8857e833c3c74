"""Times the seed's dominant layer (2x nearest upsample + 5x5 conv 32->16).

Forward + backward (grads w.r.t. input and kernel, as inside the model) of
  plain:  jnp.repeat upsample, then SAME conv at 128x128;
  phase:  mel_ae.upsample_conv (one low-res 3x3 conv, 64 channels, interleave);
  phase4: four separate per-phase 3x3 convs at low resolution, stacked
          (the alternative `phase` was chosen over).
Variants run interleaved in short windows; the median window is reported,
because the machine is shared and noisy.

  PYTHONPATH=. python experiments/conv_microbench.py [--seconds 20] [--kernel 5]
"""
import argparse
import statistics
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from mel_ae import upsample_conv as uc


def phase4(x: jax.Array, kernel: jax.Array, factor: int) -> jax.Array:
  """f*f separate low-res convs, each with its own tight kernel and padding."""
  taps, lo = uc.phase_taps(kernel.shape[0], factor)
  rows = []
  for a in range(factor):
    cols = []
    for b in range(factor):
      ta, tb = _tight(taps[a]), _tight(taps[b])
      k = jnp.einsum('sy,tx,yxio->stio', ta[0], tb[0], kernel)
      pad = [(-(lo + t[1]), t[0].shape[0] - 1 + lo + t[1]) for t in (ta, tb)]
      cols.append(jax.lax.conv_general_dilated(
          x, k, (1, 1), pad, dimension_numbers=('NHWC', 'HWIO', 'NHWC')))
    rows.append(jnp.stack(cols, axis=3))  # (B, H, W, f_b, C)
  y = jnp.stack(rows, axis=2)  # (B, H, f_a, W, f_b, C)
  n, h, _, w, _, c = y.shape
  return y.reshape(n, h * factor, w * factor, c)


def _tight(taps_a: np.ndarray) -> tuple[jax.Array, int]:
  """Drops the all-zero offsets of one phase: (rows kept, first kept row)."""
  used = np.flatnonzero(taps_a.any(axis=1))
  return jnp.asarray(taps_a[used[0]:used[-1] + 1]), int(used[0])


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
  steps = {'plain': fwd_bwd(uc.upsample_conv_plain, a.factor),
           'phase': fwd_bwd(uc.upsample_conv_phase, a.factor),
           'phase4': fwd_bwd(phase4, a.factor)}
  times = time_windows(steps, (x, w, g), a.seconds)
  # Nominal FLOPs of the full-resolution layer: 2 per MAC, x3 for fwd+bwd.
  gflop = 6 * a.batch * full * full * a.kernel ** 2 * a.cin * a.cout / 1e9
  base = statistics.median(times['plain'])
  print(f'{jax.devices()[0].device_kind}, jax {jax.__version__}, '
        f'B={a.batch} {a.size}x{a.size}x{a.cin} -> {full}x{full}x{a.cout}, '
        f'k={a.kernel}, {gflop:.1f} nominal GFLOP per fwd+bwd')
  for name, ts in times.items():
    t = statistics.median(ts)
    print(f'{name:7s} {t * 1e3:8.1f} ms  (min {min(ts) * 1e3:.1f}, '
          f'{len(ts)} windows)  {gflop / t:6.1f} nominal GFLOP/s  '
          f'speedup {base / t:.2f}x')


if __name__ == '__main__':
  main()
