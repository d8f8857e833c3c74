"""experiments/explore.ipynb runs top to bottom on a tiny checkpoint, and
shows mel_ae.plots' Figures inline without touching matplotlib's backend."""
import os

import nbclient
import nbformat

from conftest import ROOT
from mel_ae import train

# Run in the kernel before and after the notebook: the backend as selected
# (None: not yet), without selecting one, and whether pyplot was imported.
_PROBE = ('import sys, matplotlib\n'
          "print('backend:', matplotlib.get_backend(auto_select=False),"
          " 'pyplot:', 'matplotlib.pyplot' in sys.modules)")


def test_explore_notebook_executes(tiny_config, tmp_path, monkeypatch):
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(tiny_config, workdir)
  monkeypatch.setenv('MEL_AE_WORKDIR', workdir)
  notebook = nbformat.read(os.path.join(ROOT, 'experiments', 'explore.ipynb'),
                           as_version=4)
  figure_cells = [c for c in notebook.cells if 'plots.' in c.source
                  and c.cell_type == 'code']
  notebook.cells.insert(0, nbformat.v4.new_code_cell(_PROBE))
  notebook.cells.append(nbformat.v4.new_code_cell(_PROBE))
  nbclient.NotebookClient(
      notebook, timeout=300, kernel_name='python3',
      resources={'metadata': {'path': os.path.join(ROOT, 'experiments')}}
  ).execute()
  outputs = [o for cell in notebook.cells if cell.cell_type == 'code'
             for o in cell.outputs]
  assert not [o for o in outputs if o.output_type == 'error']
  text = ''.join(o.get('text', '') for o in outputs)
  assert 'competition MSE' in text
  # The spectrogram and the training curves: each cell's returned Figure
  # is shown as a picture, not as '<Figure size ...>'.
  assert len(figure_cells) == 2
  for cell in figure_cells:
    assert [o for o in cell.outputs if o.output_type == 'execute_result'
            and 'image/png' in o.data], cell.source
  assert any('text/html' in o.get('data', {}) and 'audio' in
             o['data']['text/html'] for o in outputs)
  before, after = (c.outputs[0]['text'] for c in
                   (notebook.cells[0], notebook.cells[-1]))
  assert before == after, (before, after)
  assert 'pyplot: False' in after
