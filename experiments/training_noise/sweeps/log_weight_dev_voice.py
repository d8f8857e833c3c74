"""log_weight_additive.py's study on the other voice's development corpus
(not shipped; made by `python -m experiments.make_corpus
--out=runs/dev_voice/corpus --heldout_out=runs/dev_voice/heldout
--voice=en-gb-scotland+m7,140,30 --seed=1`): trained and validated on its
own clean and unpaired noisy files (additive family), 1,000 steps, seeds
0 and 1, train.loss_log_weight 1 (before) and 0.3 (the recipe)."""
import os

from experiments.training_noise.sweeps import babble_prior
from experiments.sweeps import common

CORPUS = os.path.join(common.REPO, 'runs', 'dev_voice', 'corpus')


def get_sweep():
  sweep = babble_prior.get_sweep()
  data = {'data.train_dir': os.path.join(CORPUS, 'train'),
          'data.noisy_dir': os.path.join(CORPUS, 'noisy'),
          'data.test_noisy_dir': os.path.join(CORPUS, 'test', 'noisy'),
          'data.test_clean_dir': os.path.join(CORPUS, 'test', 'clean')}
  return {**sweep, 'name': 'log_weight_dev_voice',
          'overrides': {**sweep['overrides'], **data},
          'grid': {'train.loss_log_weight': [1.0, 0.3], 'seed': [0, 1]}}
