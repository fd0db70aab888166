"""Shared fixtures for the gradlab test suite.

* ``torch``: the PyTorch module for the independent float64 reference, and
  ``dask_distributed`` for the Dask sweep backend. When one is missing its
  tests are skipped — unless ``GRADLAB_REQUIRE_OPTIONAL=1`` (set by
  ``.ci/run``), where a missing module is a failure, so CI can never go green
  by silently skipping the cross-checks or the cluster path.
* BLAS is pinned to one thread for the whole session: on 2-core machines
  OpenBLAS with 2 threads is many times slower on the tiny matrices used here.
"""
from __future__ import annotations

import importlib
import os

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import gradlab as gl


@pytest.fixture(scope="session", autouse=True)
def _one_blas_thread():
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def optional_module(name: str, install: str):
    """Import ``name``, or skip the test (fail under ``GRADLAB_REQUIRE_OPTIONAL=1``)."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        if os.environ.get("GRADLAB_REQUIRE_OPTIONAL") == "1":
            pytest.fail(f"GRADLAB_REQUIRE_OPTIONAL=1 but {name} cannot be imported ({e}); "
                        f"install it with `{install}`", pytrace=False)
        pytest.skip(f"{name} is not installed ({install})")


@pytest.fixture(scope="session")
def torch():
    """PyTorch, the independent float64 reference."""
    return optional_module("torch", "pip install torch==2.13.0")


@pytest.fixture(scope="session")
def dask_distributed():
    """dask.distributed, the cluster backend of sweeps."""
    return optional_module("dask.distributed", 'pip install -e ".[distributed]"')


def make_model(activation: str, n: int, d: int, m: int, B: int, T: int, tokens: bool = False,
               seed: int = 0, radius: float = 1.3, margin: float = 1e-3):
    """Parameters (every entry non-zero) and inputs with every |a_t| > ``margin``.

    ReLU has a kink at a = 0, where finite differences (and autograd) disagree
    with any one-sided derivative; keeping every pre-activation clear of 0
    keeps the comparisons about BPTT rather than about the kink. For ReLU,
    some unit must be on (a > 0) at every step and a third of them overall, or
    a dead net would make gradients zero and the comparisons vacuous. Deterministic: tries
    seeds ``seed, seed + 1, ...``.

    Returns
    -------
    params : RNNParams, x : (B, T, d) float or (B, T) int
    """
    for s in range(seed, seed + 500):
        rng = np.random.default_rng(s)
        p = gl.init_params(n=n, d=d, m=m, radius=radius, rng=rng)
        p = p.replace(b_h=0.3 * rng.standard_normal(n), b_y=0.3 * rng.standard_normal(m))
        x = rng.integers(0, d, size=(B, T)) if tokens else rng.standard_normal((B, T, d))
        a = gl.forward(p, x, activation).a
        alive = np.all(np.any(a > 0, axis=2)) and np.mean(a > 0) > 1 / 3  # some unit on at every step
        if np.min(np.abs(a)) > margin and (activation != "relu" or alive):
            return p, x
    raise RuntimeError("no kink-free model found; change the test's sizes")


def draw_targets(rng: np.random.Generator, loss: str, loss_steps: str, B: int, T: int, m: int) -> np.ndarray:
    """Targets for ``loss``: class ids for xent, N(0, 1) values for mse."""
    shape = (B, T) if loss_steps == "all" else (B,)
    return rng.integers(0, m, size=shape) if loss == "xent" else rng.standard_normal(shape + (m,))


def dense_product(W_hh: np.ndarray, dphi: np.ndarray, t: int, k: int) -> np.ndarray:
    """Brute force ∂h_t/∂h_k = J_t … J_{k+1} for one sequence, J_j = diag(φ'(a_j)) W_hh.

    ``dphi`` is (T, n) with row j − 1 belonging to step j.
    """
    P = np.eye(W_hh.shape[0])
    for j in range(t, k, -1):
        P = P @ (np.diag(dphi[j - 1]) @ W_hh)
    return P
