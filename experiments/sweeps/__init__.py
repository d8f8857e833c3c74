"""Sweep definitions for experiments/sweep.py: one module per study."""
