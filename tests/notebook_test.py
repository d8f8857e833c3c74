"""experiments/explore.ipynb runs top to bottom on a tiny checkpoint."""
import os

import nbclient
import nbformat

from conftest import ROOT
from mel_ae import train


def test_explore_notebook_executes(tiny_config, tmp_path, monkeypatch):
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(tiny_config, workdir)
  monkeypatch.setenv('MEL_AE_WORKDIR', workdir)
  notebook = nbformat.read(os.path.join(ROOT, 'experiments', 'explore.ipynb'),
                           as_version=4)
  nbclient.NotebookClient(
      notebook, timeout=300, kernel_name='python3',
      resources={'metadata': {'path': os.path.join(ROOT, 'experiments')}}
  ).execute()
  outputs = [o for cell in notebook.cells if cell.cell_type == 'code'
             for o in cell.outputs]
  assert not [o for o in outputs if o.output_type == 'error']
  text = ''.join(o.get('text', '') for o in outputs)
  assert 'competition MSE' in text
  assert any('image/png' in o.get('data', {}) for o in outputs)
  assert any('text/html' in o.get('data', {}) and 'audio' in
             o['data']['text/html'] for o in outputs)
