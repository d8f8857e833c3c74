"""Shared fixtures: a small synthetic corpus in the competition layout."""
import os
import sys

import jax
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # configs/ is imported as a package by the tests.

# Tests check wiring and numerics, not speed: compile faster.
jax.config.update('jax_disable_most_optimizations', True)


def fake_mel(rng: np.random.Generator, frames: int) -> np.ndarray:
  """A power mel with harmonic-like bands and a quiet floor, values 0..~400."""
  bands = np.exp(-((np.arange(128)[:, None] % 16) - 4.0) ** 2)
  envelope = np.abs(np.sin(np.linspace(0, 3 * np.pi, frames)))[None, :]
  noise = rng.random((128, frames))
  return (400 * bands * envelope * noise + 1e-4).astype(np.float32)


def write_corpus(root: str, seed: int = 0, n_train: int = 10,
                 n_test: int = 3) -> dict:
  """train/ (clean), test/noisy/noised_NNN.npy and test/clean/NNN.npy."""
  rng = np.random.default_rng(seed)
  dirs = {k: os.path.join(root, *k.split('_')) for k in
          ('train', 'test_noisy', 'test_clean')}
  for d in dirs.values():
    os.makedirs(d, exist_ok=True)
  for i in range(n_train):
    np.save(os.path.join(dirs['train'], f'{i:03d}.npy'),
            fake_mel(rng, int(rng.integers(40, 120))))
  for i in range(n_test):
    clean = fake_mel(rng, 70)
    np.save(os.path.join(dirs['test_clean'], f'{i:03d}.npy'), clean)
    np.save(os.path.join(dirs['test_noisy'], f'noised_{i:03d}.npy'),
            clean + rng.exponential(2.0, clean.shape).astype(np.float32))
  return dirs


@pytest.fixture
def corpus(tmp_path):
  return write_corpus(str(tmp_path / 'corpus'))


def make_tiny_config(corpus: dict):
  """configs/tiny.py pointed at a `write_corpus` corpus, with every noise
  setting filled in (mel_ae/settings.py), so a test may change any."""
  from configs import tiny  # pylint: disable=g-import-not-at-top
  from mel_ae import settings  # pylint: disable=g-import-not-at-top
  config = tiny.get_config()
  config.noise = settings.fill('noise', None)
  config.data.train_dir = corpus['train']
  config.data.noisy_dir = ''
  config.data.test_noisy_dir = corpus.get('test_noisy', '')
  config.data.test_clean_dir = corpus.get('test_clean', '')
  return config


def as_denoise(config, kinds=None):
  """A tiny config in denoise mode: noise from the bank (of `kinds`, default
  the config's), 2 s textures, a residual output."""
  config.train.mode = 'denoise'
  config.model.output_mode = 'residual'
  config.noise.seconds = 2.0
  if kinds is not None:
    config.noise.kinds = kinds
  return config


@pytest.fixture(scope='session')
def tiny_run(tmp_path_factory) -> str:
  """The workdir of a trained configs/tiny.py run beside its `write_corpus`
  corpus (ROOT/run, ROOT/corpus); tests only read it."""
  root = tmp_path_factory.mktemp('tiny_run')
  corpus = write_corpus(str(root / 'corpus'))
  from mel_ae import train  # pylint: disable=g-import-not-at-top
  train.train_and_evaluate(make_tiny_config({'train': corpus['train']}),
                           str(root / 'run'))
  return str(root / 'run')


@pytest.fixture
def tiny_config(corpus):
  return make_tiny_config(corpus)
