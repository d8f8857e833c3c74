"""What the sweep definitions of several studies share (common.py); the
definitions live in each study's sweeps/ folder."""
