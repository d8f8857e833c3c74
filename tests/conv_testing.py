"""Shared checks that a conv implementation computes XLA's function."""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from configs import base
from mel_ae import backends
from mel_ae import layers
from mel_ae import models
from mel_ae.backends import phase


def assert_close(a, b):
  """float32 tolerance, scaled: grads sum thousands of terms."""
  np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * (1 + np.abs(b).max()))


def random(shape, seed):
  return jax.random.normal(jax.random.key(seed), shape)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _outputs_and_grads(convs, paddings, x, kernels, cotangents):
  def loss(x, kernels):
    ys = convs(x, kernels, paddings)
    return sum(jnp.vdot(y, g) for y, g in zip(ys, cotangents)), ys
  return jax.grad(loss, (0, 1), has_aux=True)(x, kernels)


def check_convs(convs, x_shape, kernel_shapes, paddings):
  """Outputs and grads (input and kernels) of `convs` equal lax_convs'."""
  x = random(x_shape, 0)
  kernels = [random(s, i + 1) for i, s in enumerate(kernel_shapes)]
  outs = layers.lax_convs(x, kernels, paddings)
  cotangents = [random(y.shape, 10 + i) for i, y in enumerate(outs)]
  paddings = tuple(tuple(map(tuple, p)) for p in paddings)
  ours, theirs = [_outputs_and_grads(c, paddings, x, kernels, cotangents)
                  for c in (convs, layers.lax_convs)]
  jax.tree.map(assert_close, ours, theirs)


def check_upsample_conv_phase(convs, channels: int, kernel_size: int):
  """2x upsample + conv through `convs`: value and grads equal lax_convs'."""
  x = random((2, 4, 5, channels), 0)
  kernel = random((kernel_size, kernel_size, channels, channels), 1)
  g = random((2, 8, 10, channels), 2)

  def value_and_grads(convs):
    f = lambda x, k: jnp.vdot(
        phase.upsample_conv_phase(x, k, 2, convs), g)
    return jax.jit(jax.value_and_grad(f, (0, 1)))(x, kernel)
  jax.tree.map(assert_close, value_and_grads(convs),
               value_and_grads(layers.lax_convs))


def check_model_matches_xla(conv_impl: str):
  """The seed at a small size, training mode, with `conv_impl` and 'xla':
  same parameter tree and init; loss, grads and batch stats to tolerance."""
  config = base.get_config()
  x = jax.random.uniform(jax.random.key(0), (2, 16, 24, 1))
  results = []
  for impl in ('xla', conv_impl):
    config.runtime.conv_impl = impl
    model = models.build_model(config.model,
                               **backends.layers_for(config.runtime))
    variables = jax.jit(functools.partial(model.init, train=False))(
        jax.random.key(0), x)

    def loss(params, model=model, variables=variables):
      y, updates = model.apply({**variables, 'params': params}, x,
                               train=True, mutable=['batch_stats'])
      return jnp.mean((y - x) ** 2), updates
    results.append((variables, jax.jit(jax.value_and_grad(
        loss, has_aux=True))(variables['params'])))
  (v1, r1), (v2, r2) = results
  assert models.count_params(v1['params']) == 32_513
  jax.tree.map(np.testing.assert_array_equal, v1, v2)
  jax.tree.map(assert_close, r2, r1)
