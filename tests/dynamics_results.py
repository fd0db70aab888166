"""Shared by the tests of the dynamical-systems view: toy sweeps of the kinds lyapunov_spectrum and fixed_points,
and weights files with known answers."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from gradlab.cells import make_cell
from gradlab.cells.rnn import RNNParams
from gradlab.experiments.sweep import parse_spec, run_sweep

SPECTRUM_SWEEP = """
kind = "lyapunov_spectrum"
[grid]
g = [0.5, 2.5]
seed = [0, 1]
[fixed]
activation = "tanh"
hidden = 12
steps = 120
warmup = 20
burn = 30
window = 25
local_leading = 3
"""

FIXED_POINT_SWEEP = """
kind = "fixed_points"
[grid]
seed = [0, 1]
[fixed]
hidden = 6
steps = 20
updates = 20
eval_every = 20
eval_batch = 16
record_batch = 4
record_steps = 30
starts = 24
"""


def sweep(text: str, out: Path, **kwargs):
    return run_sweep(parse_spec(text, "test"), out, **kwargs)


def rnn_weights(path: Path, W_hh: np.ndarray, W_xh: np.ndarray | None = None, b: np.ndarray | None = None,
                nonlinearity: str = "tanh") -> Path:
    """A vanilla-RNN weights file (PyTorch names; the bias split as b_ih = b, b_hh = 0)."""
    n = W_hh.shape[0]
    params = RNNParams(W_xh=np.zeros((n, 3)) if W_xh is None else W_xh, W_hh=W_hh,
                       b_h=np.zeros(n) if b is None else b, W_hy=np.zeros((3, n)), b_y=np.zeros(3))
    np.savez(path, **make_cell("rnn", nonlinearity).state_dict(params), nonlinearity=nonlinearity)
    return path
