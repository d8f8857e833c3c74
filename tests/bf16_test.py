"""Mixed precision (train.compute_dtype='bfloat16'): every back-end's bf16
convolutions against the float32 reference, float32 state in a bf16 run,
bf16 activations where they should be, one trace per step function, and
checkpoints that move freely between float32 and bfloat16 runs."""
import functools
import logging
import os
import re
import subprocess
import sys

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import base
from conftest import ROOT
from mel_ae import backends
from mel_ae import layers
from mel_ae import models
from mel_ae import train
from mel_ae import whole_file
import mel_ae
from mel_ae.backends import conv_matmul
from mel_ae.backends import onednn

_ONEDNN = onednn.unavailable_reason()
_ONEDNN_BF16 = onednn.bf16_unavailable_reason()
_CONVS = {'xla': layers.lax_convs, 'matmul_grad': conv_matmul.where_wide,
          'onednn': onednn.convs}
needs_onednn_bf16 = pytest.mark.skipif(
    bool(_ONEDNN_BF16), reason=_ONEDNN_BF16 or 'available')
_BF16_IMPLS = ['xla', 'matmul_grad', pytest.param(
    'onednn', marks=needs_onednn_bf16)]


def _random(shape, seed, dtype=jnp.bfloat16):
  return jax.random.normal(jax.random.key(seed), shape).astype(dtype)


def _assert_bf16_close(ours, reference):
  """bf16 keeps 8 bits of mantissa: outputs and gradients rounded once
  (oneDNN and XLA accumulate in float32) are within ~0.4% of their scale;
  2% of the largest reference value leaves room for a few roundings."""
  ours, reference = (np.asarray(a, np.float32) for a in (ours, reference))
  scale = np.abs(reference).max()
  np.testing.assert_allclose(ours, reference, rtol=2e-2, atol=2e-2 * scale)
  # ...and the comparison could fail: bf16 noise is visible, but small.
  assert np.abs(ours - reference).max() < 2e-2 * scale


@functools.partial(jax.jit, static_argnums=(0, 1))
def _outputs_and_grads(convs, paddings, x, kernels, cotangents):
  def loss(x, kernels):
    ys = convs(x, kernels, paddings)
    return sum(jnp.vdot(y.astype(jnp.float32), g.astype(jnp.float32))
               for y, g in zip(ys, cotangents)), ys
  return jax.grad(loss, (0, 1), has_aux=True)(x, kernels)


@pytest.mark.parametrize('conv_impl', _BF16_IMPLS)
@pytest.mark.parametrize('x_shape, kernel_shapes, paddings', [
    # >= 16 channels in and out: 'matmul_grad' takes its patch-matmul path.
    ((2, 12, 10, 16), [(5, 5, 16, 32)], [((2, 2), (2, 2))]),
    # The four phase convs of a 2x upsample + 5x5 conv: one input, several
    # kernels, input gradients summed.
    ((3, 6, 5, 16), [(3, 3, 16, 16)] * 4,
     [((1, 1), (1, 1)), ((1, 1), (2, 0)), ((2, 0), (1, 1)),
      ((2, 0), (2, 0))]),
    ((2, 7, 9, 1), [(3, 3, 1, 8)], [((1, 1), (1, 1))]),
], ids=['5x5_16_to_32', 'phase_convs', 'one_input_channel'])
def test_bf16_convs_match_the_float32_reference(conv_impl, x_shape,
                                                kernel_shapes, paddings):
  """Outputs, input and kernel gradients of bf16 convs against float32
  `lax` convs of the same (bf16-representable) values."""
  paddings = tuple(tuple(map(tuple, p)) for p in paddings)
  x = _random(x_shape, 0)
  kernels = [_random(s, i + 1) for i, s in enumerate(kernel_shapes)]
  outs = layers.lax_convs(x, kernels, paddings)
  cotangents = [_random(y.shape, 10 + i) for i, y in enumerate(outs)]
  (grads, ys) = _outputs_and_grads(_CONVS[conv_impl], paddings, x, kernels,
                                   cotangents)
  f32 = lambda tree: jax.tree.map(lambda a: a.astype(jnp.float32), tree)
  (ref_grads, ref_ys) = _outputs_and_grads(
      layers.lax_convs, paddings, *f32((x, kernels, cotangents)))
  for got, want in zip(ys, ref_ys):
    assert got.dtype == jnp.bfloat16
    _assert_bf16_close(got, want)
  assert grads[0].dtype == jnp.bfloat16
  _assert_bf16_close(grads[0], ref_grads[0])
  for got, want in zip(grads[1], ref_grads[1]):
    assert got.dtype == jnp.bfloat16
    _assert_bf16_close(got, want)


@pytest.mark.skipif(bool(_ONEDNN), reason=_ONEDNN or 'available')
@pytest.mark.parametrize('dtype', [
    jnp.float32, pytest.param(jnp.bfloat16, marks=needs_onednn_bf16)])
def test_onednn_bias_inside_the_conv(dtype):
  """`onednn.convs(..., bias=)`: each output plus the (float32) bias, and
  the bias gradient from the kernel gradient's primitive, against lax."""
  pads = (((1, 1), (1, 1)), ((1, 1), (2, 0)), ((2, 0), (1, 1)))
  x = _random((3, 6, 5, 16), 0, dtype)
  kernels = [_random((3, 3, 16, 8), i + 1, dtype) for i in range(3)]
  bias = _random((8,), 9, jnp.float32)
  gs = [_random((3, 6, 5, 8), 10 + i, dtype) for i in range(3)]

  def value_and_grads(convs, x, kernels, bias, gs):
    def f(x, kernels, bias):
      ys = convs(x, kernels, pads, bias)
      return sum(jnp.vdot(y.astype(jnp.float32), g.astype(jnp.float32))
                 for y, g in zip(ys, gs)), ys
    (_, ys), grads = jax.value_and_grad(f, (0, 1, 2), has_aux=True)(
        x, kernels, bias)
    return ys, grads

  def lax_with_bias(x, kernels, paddings, bias):
    return [y + bias for y in layers.lax_convs(x, kernels, paddings)]
  ours = jax.jit(functools.partial(value_and_grads, onednn.convs))(
      x, kernels, bias, gs)
  f32 = lambda tree: jax.tree.map(lambda a: a.astype(jnp.float32), tree)
  ref = jax.jit(functools.partial(value_and_grads, lax_with_bias))(
      *f32((x, kernels, bias, gs)))
  assert ours[1][2].dtype == jnp.float32  # the bias gradient
  close = (_assert_bf16_close if dtype == jnp.bfloat16 else
           lambda a, b: np.testing.assert_allclose(
               a, b, rtol=1e-5, atol=1e-5 * np.abs(b).max()))
  jax.tree.map(close, ours, ref)


@needs_onednn_bf16
@pytest.mark.parametrize('with_bias', [False, True])
def test_onednn_runs_bf16_itself(with_bias):
  """bf16 convs reach oneDNN's custom calls (not XLA's fallback), forward
  and both gradients, with bf16 operands."""
  pads = (((2, 2), (2, 2)),)
  x, k = _random((2, 8, 8, 16), 0), _random((5, 5, 16, 16), 1)
  bias = jnp.zeros((16,)) if with_bias else None
  f = lambda x, k: jnp.sum(onednn.convs(x, [k], pads, bias)[0].astype(
      jnp.float32))
  hlo = jax.jit(jax.value_and_grad(f, (0, 1))).lower(x, k).as_text()
  suffix = 'Bias' if with_bias else ''
  for target in (f'Forward{suffix}', 'BackwardData',
                 f'BackwardWeights{suffix}'):
    call = re.search(rf'custom_call @mel_ae_conv_{target}\(.*', hlo)
    assert call and 'bf16' in call.group(0), target
  assert 'convolution' not in hlo


def _conv_dtypes(hlo: str):
  """(operand element type, output channels) of each conv in StableHLO
  text, XLA's or oneDNN's forward custom call."""
  ops = re.findall(r'(?:stablehlo\.convolution|custom_call @mel_ae_conv_'
                   r'Forward(?:Bias)?).*:\s*\(tensor<[0-9x]*x(\w+)>.*->\s*'
                   r'tensor<[0-9x]*x(\d+)x\w+>', hlo)
  return [(dtype, int(channels)) for dtype, channels in ops]


@pytest.mark.parametrize('conv_impl', ['xla', pytest.param(
    'onednn', marks=needs_onednn_bf16)])
def test_bf16_computes_in_bf16_but_the_output_layer(tiny_config, conv_impl):
  """Every conv runs on bf16 operands except the 1-channel output layer,
  which is float32 (as are the model's output and the parameters)."""
  tiny_config.runtime.conv_impl = conv_impl
  model = models.build_model(tiny_config.model, **backends.layers_for(
      tiny_config.runtime, 'bfloat16'))
  x = jnp.zeros((2, 128, 32, 1))
  variables = model.init(jax.random.key(0), x)
  assert {a.dtype for a in jax.tree.leaves(variables)} == {
      jnp.dtype(jnp.float32)}
  apply = jax.jit(functools.partial(model.apply, train=False))
  assert apply(variables, x).dtype == jnp.float32
  convs = _conv_dtypes(apply.lower(variables, x).as_text())
  # 2 encoder convs, 4 phase convs of the upsampling one, the output conv.
  assert len(convs) == 7, convs
  assert [c for c in convs if c[0] != 'bf16'] == [('f32', 1)], convs


def _count_traces(monkeypatch, names=('train_step', 'eval_step')):
  counts = {}
  for name in names:
    fn = getattr(train, name)

    def counting(*args, _fn=fn, _name=name, **kwargs):
      counts[_name] = counts.get(_name, 0) + 1
      return _fn(*args, **kwargs)
    monkeypatch.setattr(train, name, counting)
  return counts


def _float_dtypes(tree):
  return {str(a.dtype) for a in jax.tree.leaves(tree)
          if jnp.issubdtype(a.dtype, jnp.floating)}


def _step(conv_impl, dtype, x):
  """The seed's variables, and loss, batch stats and flat gradients of a
  training step, with `conv_impl` computing in `dtype`."""
  config = base.get_config()
  config.runtime.conv_impl = conv_impl
  model = models.build_model(config.model,
                             **backends.layers_for(config.runtime, dtype))
  variables = jax.jit(functools.partial(model.init, train=False))(
      jax.random.key(0), x)

  def loss(params):
    y, updates = model.apply({**variables, 'params': params}, x, train=True,
                             mutable=['batch_stats'])
    return jnp.mean((y - x) ** 2), updates['batch_stats']
  (value, stats), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(
      variables['params'])
  # The biases of convs before a BatchNorm get no gradient but rounding
  # noise, in either precision: left out.
  grads = {k: v for k, v in flax.traverse_util.flatten_dict(grads).items()
           if not (k[-1] == 'bias' and k[0] != 'Conv_4')}
  return variables, value, stats, grads


@pytest.mark.parametrize('conv_impl', ['xla', 'matmul_grad', pytest.param(
    'onednn', marks=needs_onednn_bf16)])
def test_bf16_model_is_the_float32_model(conv_impl):
  """The seed at a small size in bf16: float32 XLA's parameter tree and
  initial values; loss and batch statistics within bf16 precision; the
  gradient pointing the same way (through five BatchNorms, bf16 rounding
  moves each of its parts by ~10-18% of its scale at initialisation, in
  XLA's bf16 as in oneDNN's: measured), and the back-end's gradient within
  bf16 precision of XLA's own bf16 one (~0.7% of each part's scale, seen)."""
  x = jax.random.uniform(jax.random.key(0), (4, 32, 32, 1))
  v32, loss32, stats32, grads32 = _step('xla', 'float32', x)
  v16, loss16, stats16, grads16 = _step(conv_impl, 'bfloat16', x)
  jax.tree.map(np.testing.assert_array_equal, v16, v32)
  assert models.count_params(v16['params']) == 32_513
  np.testing.assert_allclose(loss16, loss32, rtol=1e-2)
  jax.tree.map(_assert_bf16_close, stats16, stats32)
  flat = lambda g: np.concatenate([np.ravel(g[k]) for k in sorted(g)])
  a, b = flat(grads16), flat(grads32)
  assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) > 0.98
  if conv_impl != 'xla':
    _, _, _, grads_xla16 = _step('xla', 'bfloat16', x)
    jax.tree.map(_assert_bf16_close, grads16, grads_xla16)


@pytest.mark.parametrize('conv_impl', ['matmul_grad', 'auto'])
def test_bf16_run_keeps_float32_state_and_traces_once(
    tiny_config, tmp_path, monkeypatch, conv_impl):
  tiny_config.model.encoder_channels = (16, 16)  # matmul_grad's patch path
  tiny_config.runtime.conv_impl = conv_impl
  tiny_config.train.compute_dtype = 'bfloat16'
  counts = _count_traces(monkeypatch)
  state = train.train_and_evaluate(tiny_config, str(tmp_path / 'run'))
  assert int(state.step) == tiny_config.train.num_steps
  assert counts == {'train_step': 1, 'eval_step': 1}
  for part in (state.params, state.opt_state, state.batch_stats):
    assert _float_dtypes(part) == {'float32'}
  assert all(np.isfinite(a).all() for a in jax.tree.leaves(state.params))


def _denoise_in(dtype, denoiser, mels):
  """A loaded checkpoint's denoising, computed in `dtype`."""
  runtime = denoiser.config.runtime
  model = models.build_model(denoiser.config.model,
                             **backends.layers_for(runtime, dtype))
  return whole_file.denoise_power(model, denoiser.variables,
                                  denoiser.normalizer, mels,
                                  denoiser.config.infer)


def _assert_same_denoising(a, b):
  """float32 vs bfloat16 inference of one checkpoint: equal to bf16
  precision (power is the model value ** 16 here; the output layer is
  float32 in both, so ~1% apart at most was measured on the tiny model)."""
  for x, y in zip(a, b):
    assert np.isfinite(x).all() and np.isfinite(y).all()
    np.testing.assert_allclose(x, y, rtol=0.05, atol=1e-3 * np.abs(y).max())


def test_checkpoints_move_between_float32_and_bfloat16(
    tiny_config, tmp_path, caplog):
  """bf16-trained: loads and denoises in float32 (and bf16), resumes in
  float32; float32-trained: denoises in bf16, resumes in bf16."""
  caplog.set_level(logging.INFO)
  noisy = [np.load(os.path.join(tiny_config.data.test_noisy_dir, f))
           for f in sorted(os.listdir(tiny_config.data.test_noisy_dir))]
  steps = tiny_config.train.num_steps
  for trained, resumed in (('bfloat16', 'float32'), ('float32', 'bfloat16')):
    workdir = str(tmp_path / trained)
    tiny_config.train.compute_dtype = trained
    tiny_config.train.num_steps = steps
    train.train_and_evaluate(tiny_config, workdir)

    denoiser = mel_ae.load(workdir)  # inference in float32, the default
    f32 = denoiser.denoise_batch(noisy)
    np.testing.assert_array_equal(f32[0], _denoise_in('float32', denoiser,
                                                      noisy)[0])
    _assert_same_denoising(f32, _denoise_in('bfloat16', denoiser, noisy))

    caplog.clear()
    tiny_config.train.compute_dtype = resumed
    tiny_config.train.num_steps = steps + 2
    state = train.train_and_evaluate(tiny_config, workdir)
    assert f'Resumed from step {steps}' in caplog.text
    assert int(state.step) == steps + 2
    for part in (state.params, state.opt_state, state.batch_stats):
      assert _float_dtypes(part) == {'float32'}


def test_compute_dtype_is_checked(tiny_config):
  tiny_config.train.compute_dtype = 'float16'
  with pytest.raises(train.ConfigError, match='train.compute_dtype'):
    train.validate_config(tiny_config)


def test_xla_runs_bf16_anywhere():
  assert backends.resolve_dtype('xla', 'bfloat16') == 'bfloat16'
  assert backends.resolve_dtype('matmul_grad', 'bfloat16') == 'bfloat16'
  assert backends.resolve_dtype('onednn', 'float32') == 'float32'


@pytest.mark.skipif(bool(_ONEDNN), reason=_ONEDNN or 'available')
def test_onednn_without_native_bf16_runs_float32_and_says_so_once():
  """oneDNN capped below AVX512_BF16 (its ONEDNN_MAX_CPU_ISA) only emulates
  bf16: the run computes float32, with one warning, and does not fail,
  even with MEL_AE_REQUIRE_ONEDNN=1 (the build is fine; the CPU lacks it)."""
  code = '\n'.join([
      'import jax, jax.numpy as jnp, ml_collections',
      'from configs import base',
      'from mel_ae import backends, models',
      'from mel_ae.backends import onednn',
      'print("REASON", onednn.bf16_unavailable_reason())',
      'runtime = ml_collections.ConfigDict({"conv_impl": "onednn", '
      '"phase_upsample": True})',
      'for _ in range(3):',
      '  modules = backends.layers_for(runtime, "bfloat16")',
      'model = models.build_model(base.get_config().model, **modules)',
      'x = jnp.zeros((2, 16, 16, 1))',
      'v = model.init(jax.random.key(0), x)',
      'hlo = jax.jit(model.apply).lower(v, x).as_text()',
      'print("BF16", "bf16" in hlo, "ONEDNN", "mel_ae_conv_Forward" in hlo)',
  ])
  env = {**os.environ, 'ONEDNN_MAX_CPU_ISA': 'AVX512_CORE',
         onednn.REQUIRE_ENV: '1', 'PYTHONPATH': ROOT}
  result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'REASON this CPU has no native bfloat16' in result.stdout or (
      'REASON oneDNN has no bfloat16' in result.stdout), result.stdout
  assert 'BF16 False ONEDNN True' in result.stdout
  assert result.stderr.count('running float32') == 1, result.stderr[-3000:]
