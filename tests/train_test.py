"""End-to-end training on the tiny config: loss, checkpoints, resume, CLI."""
import ast
import functools
import importlib
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from conftest import ROOT
from mel_ae import checkpointing
from mel_ae import input_pipeline
from mel_ae import recipes
from mel_ae import train
from mel_ae import training_data


def _leaves_equal(a, b):
  return all(np.array_equal(x, y) for x, y in
             zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


@pytest.mark.parametrize('name, output_mode', [
    ('base', 'image'), ('denoise', 'kernel'), ('denoise', 'residual')])
def test_fast_compiled_init_gives_the_same_bits(name, output_mode):
  """init_train_state skips XLA's backend optimisation: same values."""
  config = importlib.import_module(f'configs.{name}').get_config()
  config.model.output_mode = output_mode  # denoise.py's, as training decides
  init = functools.partial(train.create_train_state, jax.random.PRNGKey(3),
                           config, (2, 128, 32, 1))
  sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  fast = train.init_train_state(init, sharding)
  plain = jax.jit(init)()
  assert _leaves_equal(fast.params, plain.params)
  assert _leaves_equal(fast.batch_stats, plain.batch_stats)
  assert _leaves_equal(fast.opt_state, plain.opt_state)


def test_a_few_steps_lower_the_loss_on_a_fixed_batch(tiny_config):
  data = training_data.load_data(tiny_config)
  batch = input_pipeline.CropSampler(data.train, 32, 4, 0)(1)
  state = train.create_train_state(jax.random.PRNGKey(0), tiny_config,
                                   batch.shape)
  step = jax.jit(train.train_step)
  losses = []
  for _ in range(15):
    state, m = step(state, {'input': batch})
    losses.append(float(m['loss']))
  assert losses[-1] < 0.5 * losses[0]


def test_train_writes_metrics_and_checkpoints(tiny_config, tmp_path):
  workdir = str(tmp_path / 'run')
  state = train.train_and_evaluate(tiny_config, workdir)
  assert int(state.step) == 6
  rows = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
  assert [r['step'] for r in rows] == [2, 3, 4, 6]
  assert all({'train_loss', 'examples_per_sec'} <= set(r) for r in rows)
  assert {'val_mse', 'test_mse', 'test_noisy_mse'} <= set(rows[-1])
  assert os.listdir(os.path.join(workdir, 'tensorboard'))
  manager = checkpointing.create_manager(workdir, read_only=True)
  assert manager.all_steps() == [3, 6]
  meta = checkpointing.restore_meta(manager, 6)
  assert meta['config']['model']['encoder_channels'] == [4, 8]
  assert meta['normalizer']['root'] == 16.0
  abstract = jax.eval_shape(lambda: state)
  restored = checkpointing.restore_state(manager, 6, abstract, meta)
  for part in ('params', 'batch_stats', 'opt_state', 'step'):
    assert _leaves_equal(getattr(restored, part), getattr(state, part)), part


def test_rerun_resumes_at_the_next_step_and_matches(tiny_config, tmp_path):
  full = train.train_and_evaluate(tiny_config, str(tmp_path / 'full'))
  workdir = str(tmp_path / 'split')
  tiny_config.train.num_steps = 3
  train.train_and_evaluate(tiny_config, workdir)
  tiny_config.train.num_steps = 6
  resumed = train.train_and_evaluate(tiny_config, workdir)
  rows = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
  assert [r['step'] for r in rows] == [2, 3, 4, 6]
  assert _leaves_equal(resumed.params, full.params)
  assert _leaves_equal(resumed.batch_stats, full.batch_stats)


def test_an_output_form_with_its_own_learning_rate_trains_at_it():
  """configs/denoise.py: the 'kernel' output at its own peak, others at
  train.learning_rate, which the optimizer takes (Adam's first step on a
  constant schedule is about the learning rate)."""
  config = importlib.import_module('configs.denoise').get_config()
  rates = {}
  for mode in ('kernel', 'residual'):
    rates[mode] = recipes.Recipe.of(config, mode).train.learning_rate
  assert rates == {'kernel': config.train.output_forms.kernel.learning_rate,
                   'residual': config.train.learning_rate}
  assert rates['kernel'] != rates['residual']
  config.train.lr_schedule = 'constant'
  config.train.weight_decay = 0.0
  tx = train.create_optimizer(recipes.Recipe.of(config, 'residual').train)
  params = {'w': np.zeros(3, np.float32)}
  updates, _ = tx.update({'w': np.ones(3, np.float32)}, tx.init(params), params)
  np.testing.assert_allclose(-updates['w'], rates['residual'], rtol=1e-3)


def test_the_residual_output_leaves_crop_edges_out_of_its_loss():
  config = importlib.import_module('configs.denoise').get_config()
  borders = {}
  for mode in ('kernel', 'residual'):
    borders[mode] = recipes.Recipe.of(config, mode).train.loss_border_frames
  assert borders == {'kernel': 0, 'residual': 16}
  config.train.output_forms.residual.loss_border_frames = 64
  with pytest.raises(train.ConfigError, match='output_forms'):
    train.validate_config(config)


@pytest.mark.parametrize('field, value, message', [
    ('model.kernel_size', 0, 'kernel_size must be >= 1'),
    ('model.encoder_channels', (), 'encoder_channels is empty'),
    ('data.crop_frames', 33, "not a multiple of the model's stride 2"),
    ('model.name', 'transformer', 'model.name must be one of'),
    ('train.loss', 'l1', 'train.loss must be one of'),
    ('noise.gain_range', (2.0, 1.0), 'noise.gain_range must be'),
    ('infer.margin_frames', 3, 'multiples of'),
    ('data.train_dir', '/no/such/dir', 'does not exist'),
    ('model.output_mode', 'kernel', "output_mode must be one of .* for "
     "'autoencoder'"),
    ('train.learning_rate', 0.0, r'train.learning_rate \(and each'),
])
def test_invalid_config_fails_before_compiling(tiny_config, field, value,
                                               message):
  section, name = field.split('.')
  tiny_config[section][name] = value
  with pytest.raises(train.ConfigError, match=message):
    train.validate_config(tiny_config)


def _main(args, **kwargs):
  return subprocess.run(
      [sys.executable, '-m', 'mel_ae.main', '--config=configs/tiny.py'] + args,
      cwd=ROOT, capture_output=True, text=True, timeout=300, **kwargs)


def _data_flags(corpus):
  return [f'--config.data.train_dir={corpus["train"]}',
          '--config.data.noisy_dir=', '--config.data.test_noisy_dir=',
          '--config.data.test_clean_dir=']


def test_command_line_override_reaches_the_model(corpus, tmp_path):
  workdir = str(tmp_path / 'k3')
  result = _main([f'--workdir={workdir}', '--config.model.kernel_size=3',
                  '--config.train.num_steps=2'] + _data_flags(corpus))
  assert result.returncode == 0, result.stderr[-2000:]
  assert 'trainable parameters' in result.stderr
  _, _, variables = checkpointing.read_for_inference(workdir, 2)
  assert variables['params']['Conv_0']['kernel'].shape[:2] == (3, 3)


@pytest.mark.parametrize('bad, message', [
    (np.zeros((64, 40), np.float32), 'has 64 mel bands, expected 128'),
    (np.full((128, 40), np.nan, np.float32), 'NaN'),
    (-np.ones((128, 40), np.float32), 'negative'),
    (np.zeros((128, 1), np.float32), 'too short'),
])
def test_bad_training_file_is_one_line_error(corpus, tmp_path, bad, message):
  path = os.path.join(corpus['train'], 'zz_bad.npy')
  np.save(path, bad)
  result = _main([f'--workdir={tmp_path / "w"}'] + _data_flags(corpus))
  assert result.returncode == 1
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith(f'error: {path}: ') and message in last
  assert 'Traceback' not in result.stderr


def _is_main_guard(node: ast.AST) -> bool:
  return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
          and isinstance(node.test.left, ast.Name)
          and node.test.left.id == '__name__')


def _imported(path: str) -> set:
  """The mel_ae modules a file imports anywhere (inside functions too), but
  under `if __name__ == '__main__':`, which importing it never runs."""
  names, todo = set(), [ast.parse(open(path).read())]
  while todo:
    node = todo.pop()
    if isinstance(node, ast.ImportFrom) and node.module == 'mel_ae':
      names |= {alias.name for alias in node.names}
    elif isinstance(node, ast.Import):
      names |= {alias.name.split('.')[1] for alias in node.names
                if alias.name.startswith('mel_ae.')}
    if not _is_main_guard(node):
      todo.extend(ast.iter_child_nodes(node))
  return names


def _imports(module: str) -> set:
  """The mel_ae modules `module` imports, and theirs, transitively (the
  package's own __init__, the notebook's API, aside)."""
  seen, todo = set(), [module]
  while todo:
    path = os.path.join(ROOT, 'mel_ae', todo.pop() + '.py')
    if not os.path.exists(path):
      continue  # A package (backends): below everything.
    for name in _imported(path) - seen:
      seen.add(name)
      todo.append(name)
  return seen


def test_training_imports_nothing_above_it_in_the_flow():
  """Training reads what the stages before it wrote; inference, the report
  and the commands (and their flag helpers, cli) come after it. A stage's
  command imports cli under `if __name__ == '__main__':`, which importing
  the stage never runs."""
  assert not _imports('train') & {'inference', 'report', 'denoise', 'main',
                                  'cli'}
