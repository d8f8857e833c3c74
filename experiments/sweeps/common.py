"""The step budget of the seed's ablation sweeps, and paths the sweeps of
several studies share.

The sweeps ran on 2 shared CPU cores, so every point trains for a fraction
of configs/base.py's 1000 steps, evaluating and checkpointing only at the end
(first 60 steps, then extended in place to 400).
All of them use the same budget so their base point (kernel 5, pool 2, root
16, BatchNorm on, crop 128, seed 0) is one run, copied between sweeps.
"""
import os

NUM_STEPS = 400

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

# The embedded corpus' gain family (the 2020 competition's per-bin gain).
GAIN = os.path.join(REPO, 'mel_ae', 'corpus', 'gain')

SHORT = {
    'train.num_steps': NUM_STEPS,
    'train.eval_every': NUM_STEPS,
    'train.checkpoint_every': NUM_STEPS,
    'train.log_every': 20,
}
