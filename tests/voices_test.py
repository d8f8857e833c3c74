"""The multi-voice corpus the general model trains on (experiments/voices)."""
import os
import shutil

import numpy as np
import pytest
import soundfile

from experiments import make_corpus
from experiments.voices import general_both
from experiments.voices import make_voices
from experiments.voices import real_voices
from mel_ae import audio
from mel_ae import models
from mel_ae import noise_bank
from mel_ae import settings


def test_voices_are_many_both_sexes_several_languages_and_held_out():
  train, val = make_voices.TRAIN_VOICES, make_voices.VAL_VOICES
  assert len(train) >= 20
  for voices in (train, val):
    assert {sex for *_, sex in voices} == {'f', 'm'}
  assert len({language for *_, language, _ in train}) >= 5
  tags = [v[0] for v in train + val]
  names = [v[2] for v in train + val]
  assert len(set(tags)) == len(tags) and len(set(names)) == len(names)
  assert not {v[2] for v in val} & {v[2] for v in train}
  # Never the embedded test voice, nor the held-out set's.
  embedded = '{}:{}:{}'.format(*make_corpus.MAIN_VOICE)
  heldout = make_corpus.HELDOUT_VOICE[0]
  for name in names:
    assert name != embedded and not name.startswith(heldout)


def test_sentences_are_the_languages_own_then_english_and_deterministic():
  texts = lambda: make_voices.texts('de', 10, np.random.default_rng(4))
  first = texts()
  assert first == texts() and len(set(first)) == 10
  assert first[:6] == make_voices._NATIVE['de']  # pylint: disable=protected-access
  assert make_voices.texts('en', 3, np.random.default_rng(4))[0] not in (
      make_voices._NATIVE['de'])  # pylint: disable=protected-access


@pytest.mark.skipif(shutil.which('espeak-ng') is None, reason='no espeak-ng')
def test_a_voice_is_scaled_to_the_corpus_peak_with_its_own_floor():
  voice = ('t', 'espeak', 'en-us+f3:165:60', 'en', 'f')
  waves = make_voices.voice_waves(voice, 2, seed=0, index=0)
  mels = [audio.audio_to_mel(w, make_voices.SPEC) for _, w in waves]
  assert max(m.max() for m in mels) == pytest.approx(make_corpus.PEAK,
                                                     rel=0.02)
  floors = [np.quantile(m, 0.05) for m in mels]
  assert floors[0] != pytest.approx(floors[1], rel=0.05)


def test_the_both_families_study_trains_the_gain_beside_the_additive_bank():
  config = general_both.get_config()
  assert set(config.noise.kinds) == set(config.noise.additive_kinds) | {'gain'}
  assert config.model.output_mode == 'kernel'  # A gain needs it.
  assert all(ok for ok, _ in models.check_config(config))
  assert all(ok for ok, _ in noise_bank.check_config(
      settings.section(config, 'noise')))


def test_real_voices_pairs_each_recording_with_each_noise(tmp_path):
  rng = np.random.default_rng(0)
  source = tmp_path / 'recordings'
  source.mkdir()
  for name in ('a.wav', 'b.wav', 'Noise.wav'):
    soundfile.write(str(source / name), 0.1 * rng.standard_normal(16000),
                    16000)
  paths = real_voices.recordings([str(source)])
  assert [os.path.basename(p) for p in paths] == ['a.wav', 'b.wav']
  manifest = real_voices.build(str(tmp_path / 'set'), paths, seed=0)
  noisy = sorted(os.listdir(tmp_path / 'set' / 'noisy'))
  assert len(noisy) == 2 * len(make_corpus.MAIN_NOISES)
  for name in noisy:
    clean = np.load(tmp_path / 'set' / 'clean' / name[len('noised_'):],
                    allow_pickle=False)
    mixed = np.load(tmp_path / 'set' / 'noisy' / name, allow_pickle=False)
    assert mixed.shape == clean.shape and not np.allclose(mixed, clean)
    assert manifest[f'noisy/{name}']['noise'] in make_corpus.MAIN_NOISES
  peak = np.load(tmp_path / 'set' / 'clean' / noisy[0][len('noised_'):],
                 allow_pickle=False).max()
  assert peak == pytest.approx(make_corpus.PEAK, rel=1e-3)
