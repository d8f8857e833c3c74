"""plots.py: Figures without pyplot or a backend switch, axes in Hz and
seconds, a saving helper and TensorBoard's picture strips."""
import os
import subprocess
import sys

import matplotlib.figure
import numpy as np
import pytest

from conftest import ROOT
from conftest import fake_mel
from mel_ae import audio
from mel_ae import plots

_PNG = b'\x89PNG\r\n\x1a\n'
_SMALL = audio.MelSpec(sr=16000, n_fft=1024, hop_length=256, n_mels=64,
                       fmin=50.0, fmax=7000.0)

# Every drawing path, as report.py, denoise.py, sweep.py and noise_model.py
# use them, under a backend that is not Agg; afterwards the backend must be
# the same and pyplot never imported.
_SCRIPT = '''
import sys
import matplotlib
import numpy as np
from mel_ae import audio, plots
mel = np.random.default_rng(0).random((128, 50)).astype(np.float32) + 1e-3
out = sys.argv[1]
plots.save(plots.spectrogram_panels({'a': mel, 'b': mel}, audio.MelSpec()),
           out + '/panels.png')
plots.save(plots.training_curves([{'step': 1, 'train_loss': 1.0},
                                  {'step': 2, 'train_loss': 0.5}]),
           out + '/curves.png')
fig, axes = plots.subplots(1, 2, figsize=(6, 2), squeeze=False)
axes[0, 0].plot([1, 2])
fig.tight_layout()
plots.save(fig, out + '/subplots.png')
assert plots.spectrogram_strip([mel, mel]).dtype == np.uint8
assert plots.training_curves([])._repr_png_().startswith(b'\\x89PNG')
print(matplotlib.get_backend(auto_select=False),
      'matplotlib.pyplot' in sys.modules)
'''


def test_drawing_never_switches_the_backend_nor_imports_pyplot(tmp_path):
  env = dict(os.environ, MPLBACKEND='pdf')  # Anything but Agg.
  result = subprocess.run([sys.executable, '-c', _SCRIPT, str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.split() == ['pdf', 'False']
  for name in ('panels', 'curves', 'subplots'):
    with open(tmp_path / f'{name}.png', 'rb') as f:
      assert f.read(8) == _PNG, name


@pytest.mark.parametrize('spec', [audio.MelSpec(), audio.MelSpec(htk=True),
                                  _SMALL], ids=['slaney', 'htk', 'small'])
def test_spectrogram_axes_are_seconds_and_band_centres_in_hz(spec):
  mels = {'noisy': fake_mel(np.random.default_rng(0), 90)[:spec.n_mels],
          'clean': fake_mel(np.random.default_rng(1), 90)[:spec.n_mels]}
  fig = plots.spectrogram_panels(mels, spec, 'title')
  assert isinstance(fig, matplotlib.figure.Figure)
  axes = [ax for ax in fig.axes if ax.get_title(loc='left') in mels]
  assert len(axes) == 2
  for ax in axes:
    assert ax.get_xlim() == pytest.approx((0, 90 * spec.hop_length / spec.sr))
    assert ax.get_ylim() == (0, spec.n_mels)
    positions = ax.get_yticks()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) >= 4 and all(l.endswith(('Hz', 'kHz')) for l in labels)
    assert '1 kHz' in labels
    # Band m spans rows [m, m + 1): a tick sits where the bands' centre
    # frequencies (this spec's mel scale) pass its label.
    hz = [float(l.split()[0]) * (1000 if l.endswith('kHz') else 1)
          for l in labels]
    at = np.interp(positions, np.arange(spec.n_mels) + 0.5,
                   audio.band_centres_hz(spec))
    np.testing.assert_allclose(at, hz, rtol=1e-6)
  assert axes[-1].get_xlabel() == 'time (s)'


def test_save_writes_the_returned_figure_and_it_shows_in_jupyter(tmp_path):
  rows = [{'step': s, 'train_loss': 1.0 / s, 'test_mse': 2.0 / s,
           'test_noisy_mse': 3.0} for s in (1, 2, 3)]
  fig = plots.training_curves(rows)
  assert [ax.get_title() for ax in fig.axes] == ['train_loss', 'test_mse']
  path = plots.save(fig, str(tmp_path / 'curves.png'))
  with open(path, 'rb') as f:
    assert f.read(8) == _PNG
  assert os.path.getsize(path) > 5000
  assert fig._repr_png_().startswith(_PNG)  # pylint: disable=protected-access


def test_strip_puts_panels_side_by_side_low_frequencies_at_the_bottom():
  quiet = np.full((128, 20), 1e-6, np.float32)
  low, high = quiet.copy(), quiet.copy()
  low[0], high[-1] = 100.0, 100.0
  strip = plots.spectrogram_strip([low, quiet, high], scale=2, gap=2)
  assert strip.shape == (256, 2 * (3 * 20 + 2 * 2), 3)
  assert strip.dtype == np.uint8
  brightness = strip.astype(int).sum(axis=2)
  panel = lambda i: brightness[:, 2 * i * 22:2 * (i * 22 + 20)]
  assert panel(0)[-2:].min() > 600 and panel(0)[:-2].max() < 100
  assert panel(1).max() < 100  # 80 dB below the peak: the darkest colour.
  assert panel(2)[:2].min() > 600 and panel(2)[2:].max() < 100
  assert (strip[:, 40:44] == 255).all()  # The gap.
