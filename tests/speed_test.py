"""No recompilation: the training loop traces each jitted function once."""
import functools

import pytest

from mel_ae import train
from mel_ae import whole_file


def _counting(fn, counts, name):
  """fn, counting how often JAX traces it (Python runs only when tracing)."""
  @functools.wraps(fn)
  def wrapper(*args, **kwargs):
    counts[name] = counts.get(name, 0) + 1
    return fn(*args, **kwargs)
  return wrapper


@pytest.mark.parametrize('conv_impl', ['xla', 'matmul_grad', 'auto'])
def test_each_step_function_is_traced_once(tiny_config, tmp_path, monkeypatch,
                                           conv_impl):
  # Channels >= 16 so that 'matmul_grad' really takes the patch-matmul path.
  tiny_config.model.encoder_channels = (16, 16)
  tiny_config.runtime.conv_impl = conv_impl
  counts = {}
  for name in ('train_step', 'eval_step'):
    monkeypatch.setattr(train, name, _counting(getattr(train, name), counts,
                                               name))
  whole_file._apply.clear_cache()  # pylint: disable=protected-access
  state = train.train_and_evaluate(tiny_config, str(tmp_path / 'run'))
  assert int(state.step) == tiny_config.train.num_steps
  # Steps 1..6 with evals at 3 and 6, and the test set denoised twice.
  assert counts == {'train_step': 1, 'eval_step': 1}
  # One window width: full batches and the last windows one by one.
  assert whole_file._apply._cache_size() == 2  # pylint: disable=protected-access
