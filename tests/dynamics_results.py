"""Shared by the tests of the dynamical-systems view: toy sweeps of the kinds lyapunov_spectrum and fixed_points,
weights files with known answers, and the budget hook their configs need."""
from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest

from gradlab.cells import make_cell
from gradlab.cells.rnn import RNNParams
from gradlab.experiments import budget
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


@contextlib.contextmanager
def budget_hook():
    """A sweep checks each run's budget with ``budget.estimate(config)``, which knows the run, train, truncation and
    lyapunov configs by type. The configs of these kinds carry their own ``estimate(what)``; until budget.estimate
    asks a config for it, this does (and does nothing once it does)."""
    from gradlab.experiments.chaos import SpectrumConfig

    original = budget.estimate
    try:
        original(SpectrumConfig(hidden=2, steps=2, warmup=0, burn=0), "probe")
        yield
        return
    except AttributeError:
        pass

    def estimate(config, what=None, **kwargs):
        if hasattr(config, "estimate") and callable(config.estimate):
            return config.estimate(what) if what else config.estimate()
        return original(config, what, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(budget, "estimate", estimate)
        yield


@pytest.fixture(autouse=True)
def budget_asks_the_config():
    with budget_hook():
        yield


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
