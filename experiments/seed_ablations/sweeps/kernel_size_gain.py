"""The seed's own kernel-size study on the seed's own noise: configs/base.py
(trained on the clean files only, as the seed was) at its full 1000-step
budget, three seeds, scored on the gain-noise test set
(mel_ae/corpus/gain/test, the 2020 competition's per-bin gain). Does 5x5
win where the seed's author measured it?"""
import os

from experiments.sweeps import common


def get_sweep():
  return {
      'name': 'kernel_size_gain',
      'config': 'configs/base.py',
      'overrides': {'train.eval_every': 500, 'train.checkpoint_every': 500,
                    'train.log_every': 100,
                    'data.test_noisy_dir': os.path.join(common.GAIN, 'test',
                                                        'noisy')},
      'grid': {'model.kernel_size': [2, 3, 5, 7], 'seed': [0, 1, 2]},
  }
