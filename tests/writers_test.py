"""TensorBoard logs: what TensorBoard shows of a resumed run equals
metrics.jsonl; the config as text; pictures and audio at evaluations."""
import io
import json
import os
import shutil
import struct

import numpy as np
from PIL import Image
import soundfile
from tensorboardX.proto import event_pb2

from conftest import fake_mel
from mel_ae import audio
from mel_ae import train
from mel_ae import writers


def _events(logdir):
  """Every Event of the logdir's files, in name (= time) order, read as
  TensorBoard reads them: records of u64 length, u32 crc, data, u32 crc."""
  events = []
  for name in sorted(os.listdir(logdir)):
    with open(os.path.join(logdir, name), 'rb') as f:
      data = f.read()
    position = 0
    while position < len(data):
      (length,) = struct.unpack('<Q', data[position:position + 8])
      position += 12
      events.append(event_pb2.Event.FromString(
          data[position:position + length]))
      position += length + 4
  return events


def _shown(logdir):
  """{tag: [(step, Summary.Value)]} as TensorBoard shows them: a
  SessionLog.START at step s (tensorboardX's purge_step) hides the events
  read before it at steps >= s (EventAccumulator's restart purge)."""
  seen = []
  for event in _events(logdir):
    if (event.HasField('session_log') and
        event.session_log.status == event_pb2.SessionLog.START):
      seen = [(step, v) for step, v in seen if step < event.step]
    seen += [(event.step, v) for v in event.summary.value]
  shown = {}
  for step, value in seen:
    shown.setdefault(value.tag, []).append((step, value))
  return shown


def _scalars(logdir):
  return {tag: [(step, v.simple_value) for step, v in points]
          for tag, points in _shown(logdir).items()
          if points[0][1].WhichOneof('value') == 'simple_value'}


def test_resumed_writer_hides_the_interrupted_runs_later_points(tmp_path):
  workdir = str(tmp_path)
  first = writers.MetricWriter(workdir, 0)
  for step in range(1, 7):
    first.write(step, {'loss': float(step), 'rate': np.float32(10.0)})
  first.close()  # "Interrupted" after step 6; its last checkpoint was 3.
  resumed = writers.MetricWriter(workdir, 3)
  for step in (4, 5):  # And this time it stops at 5.
    resumed.write(step, {'loss': 100.0 + step, 'rate': 20.0})
  resumed.close()
  assert len(os.listdir(os.path.join(workdir, 'tensorboard'))) == 2
  expected = [(1, 1.0), (2, 2.0), (3, 3.0), (4, 104.0), (5, 105.0)]
  assert _scalars(os.path.join(workdir, 'tensorboard'))['loss'] == expected
  assert [(r['step'], r['loss']) for r in writers.read_metrics(workdir)] == (
      expected)


def test_config_is_logged_as_text_once_per_start(tiny_config, tmp_path):
  writers.MetricWriter(str(tmp_path), 0, tiny_config).close()
  writers.MetricWriter(str(tmp_path), 3, tiny_config).close()
  texts = _shown(str(tmp_path / 'tensorboard'))['config/text_summary']
  assert [step for step, _ in texts] == [0, 3]
  markdown = texts[0][1].tensor.string_val[0].decode()
  assert all(line.startswith('    ') for line in markdown.splitlines())
  assert json.loads(markdown) == json.loads(tiny_config.to_json_best_effort())


def test_examples_are_pictures_and_griffin_lim_audio(tiny_config, tmp_path):
  rng = np.random.default_rng(0)
  clean = [fake_mel(rng, frames) for frames in (200, 40, 60, 80)]
  noisy = [c + 1.0 for c in clean]
  denoised = [c + 0.1 for c in clean]
  writer = writers.MetricWriter(str(tmp_path), 0, tiny_config)
  writer.write_examples(3, noisy, denoised, clean)
  writer.write_examples(6, noisy, denoised, clean)
  writer.write_examples(9, [], [], [])  # Nothing to show: nothing written.
  writer.close()
  shown = _shown(str(tmp_path / 'tensorboard'))
  clip = int(writers.CLIP_SECONDS * 22050 / 512)  # 129 frames: 2.99 s
  widths = [min(200, clip), 40, 60]  # The first EXAMPLES, cut to the clip.
  for i, width in enumerate(widths):
    points = shown[f'noisy_denoised_clean/{i}']
    assert [step for step, _ in points] == [3, 6]
    picture = Image.open(io.BytesIO(points[0][1].image.encoded_image_string))
    assert picture.size == (2 * (3 * width + 2 * 2), 2 * 128)
  assert 'noisy_denoised_clean/3' not in shown
  assert [s for s, _ in shown['audio/denoised']] == [3, 6]
  assert [s for s, _ in shown['audio/noisy']] == [3]  # References: once.
  assert [s for s, _ in shown['audio/clean']] == [3]
  wave, sr = soundfile.read(io.BytesIO(
      shown['audio/denoised'][0][1].audio.encoded_audio_string))
  spec = audio.MelSpec.from_config(tiny_config.audio)
  assert sr == spec.sr and len(wave) == spec.hop_length * (clip - 1)
  expected = np.clip(audio.mel_to_audio(denoised[0][:, :clip], spec), -1, 1)
  np.testing.assert_allclose(wave, expected, atol=2 / 2 ** 15)  # 16 bits


def test_resumed_training_shows_in_tensorboard_as_in_metrics_jsonl(
    tiny_config, tmp_path):
  """A run whose last checkpoint is damaged resumes from step 3; what
  TensorBoard shows then equals metrics.jsonl (the uninterrupted run's
  steps, each once), pictures and audio only at evaluations (3, 6)."""
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(tiny_config, workdir)
  shutil.rmtree(os.path.join(workdir, 'checkpoints', '6', 'meta'))
  train.train_and_evaluate(tiny_config, workdir)
  rows = writers.read_metrics(workdir)
  assert [r['step'] for r in rows] == [2, 3, 4, 6]
  logdir = os.path.join(workdir, 'tensorboard')
  assert len(os.listdir(logdir)) == 2  # Both runs wrote.
  scalars = _scalars(logdir)
  assert set(scalars) == {k for r in rows for k in r if k != 'step'}
  for tag, points in scalars.items():
    assert points == [(r['step'], np.float32(r[tag])) for r in rows
                      if tag in r], tag
  shown = _shown(logdir)
  for tag in ('noisy_denoised_clean/0', 'noisy_denoised_clean/2',
              'audio/denoised'):
    assert [step for step, _ in shown[tag]] == [3, 6], tag
  assert [step for step, _ in shown['config/text_summary']] == [0, 3]


def test_validation_examples_without_a_test_set(tiny_config, tmp_path):
  tiny_config.data.test_noisy_dir = tiny_config.data.test_clean_dir = ''
  tiny_config.train.num_steps = 3
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(tiny_config, workdir)
  shown = _shown(os.path.join(workdir, 'tensorboard'))
  crop = tiny_config.data.crop_frames
  for i in range(writers.EXAMPLES):
    (step, value), = shown[f'noisy_denoised_clean/{i}']
    picture = Image.open(io.BytesIO(value.image.encoded_image_string))
    assert step == 3 and picture.size == (2 * (3 * crop + 2 * 2), 2 * 128)
  assert [s for s, _ in shown['audio/denoised']] == [3]
