"""Times the seed's full-resolution 16->8 5x5 conv against the same conv on
space-to-depth tensors (a negative result, kept so it can be rerun).

A stride-1 SAME conv at full resolution equals one conv at 1/factor
resolution on space-to-depth tensors: factor**2 * in channels in,
factor**2 * out channels out, with a kernel (3x3 for 5x5 and factor 2)
gathered from the original one. More MACs (zero taps), but wider channels,
which GEMM-based convolutions usually like. Forward + both gradients,
variants taking turns (`conv_microbench.time_windows`), medians reported.

  python -m experiments.benchmarks.space_to_depth_microbench [--seconds 20]
"""
import argparse
import statistics

import jax
import jax.numpy as jnp
import numpy as np

from experiments.benchmarks import conv_microbench
from mel_ae import layers


def s2d_kernel(kernel: jax.Array, factor: int):
  """The space-to-depth kernel of a SAME conv and its low-res padding."""
  k = kernel.shape[0]
  lo = layers.same_padding(k)[0]
  offsets = np.arange(factor)[:, None] + np.arange(k)[None, :] - lo  # (a, d)
  first, last = offsets.min() // factor, offsets.max() // factor
  taps = np.zeros((last - first + 1, factor, factor, k), np.float32)
  for a in range(factor):
    for d in range(k):
      o = offsets[a, d]
      taps[o // factor - first, a, o % factor, d] = 1
  w = jnp.einsum('sacy,tbdx,yxio->stcdiabo', taps, taps, kernel)
  n, cin, cout = w.shape[0], kernel.shape[2], kernel.shape[3]
  w = w.reshape(n, n, factor * factor * cin, factor * factor * cout)
  return w, ((-first, last), (-first, last))


def space_to_depth(x: jax.Array, factor: int) -> jax.Array:
  b, h, w, c = x.shape
  x = x.reshape(b, h // factor, factor, w // factor, factor, c)
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(
      b, h // factor, w // factor, factor * factor * c)


def conv(x, kernel, padding):
  return jax.lax.conv_general_dilated(
      x, kernel, (1, 1), padding, dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--batch', type=int, default=16)
  p.add_argument('--size', type=int, default=128, help='full-res H = W')
  p.add_argument('--cin', type=int, default=16)
  p.add_argument('--cout', type=int, default=8)
  p.add_argument('--kernel', type=int, default=5)
  p.add_argument('--factor', type=int, default=2)
  p.add_argument('--seconds', type=float, default=20.0)
  a = p.parse_args()
  kx, kw = jax.random.split(jax.random.key(0))
  x = jax.random.normal(kx, (a.batch, a.size, a.size, a.cin))
  kernel = jax.random.normal(kw, (a.kernel, a.kernel, a.cin, a.cout)) * 0.05
  pad = layers.same_padding(a.kernel)

  def plain(x, k):
    return conv(x, k, (pad, pad))

  def s2d(xs, k):
    w, padding = s2d_kernel(k, a.factor)
    return conv(xs, w, padding)

  xs = space_to_depth(x, a.factor)
  np.testing.assert_allclose(space_to_depth(plain(x, kernel), a.factor),
                             s2d(xs, kernel), atol=1e-4)
  grads = lambda f: jax.jit(jax.grad(lambda x, k: jnp.sum(f(x, k) ** 2),
                                     argnums=(0, 1)))
  calls = {'plain fwd': (jax.jit(plain), x), 's2d fwd': (jax.jit(s2d), xs),
           'plain fwd+bwd': (grads(plain), x), 's2d fwd+bwd': (grads(s2d), xs)}
  steps = {name: lambda fn=fn, inp=inp: fn(inp, kernel)
           for name, (fn, inp) in calls.items()}
  times = conv_microbench.time_windows(steps, (), a.seconds)
  for name, ts in times.items():
    print(f'{name:14s} {statistics.median(ts) * 1e3:7.1f} ms '
          f'({len(ts)} windows)')
  print(f'{jax.devices()[0].device_kind}, jax {jax.__version__}, B={a.batch} '
        f'{a.size}x{a.size}x{a.cin} -> {a.cout}, k={a.kernel}, '
        f'factor {a.factor}')


if __name__ == '__main__':
  main()
