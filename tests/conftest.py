"""Shared fixtures for the gradlab test suite.

* ``torch``: the PyTorch module for the independent float64 reference. When
  torch is missing the test is skipped — unless ``GRADLAB_REQUIRE_TORCH=1``
  (set by ``.ci/run``), where a missing torch is a failure, so CI can never go
  green by silently skipping the cross-checks.
* BLAS is pinned to one thread for the whole session: on 2-core machines
  OpenBLAS with 2 threads is many times slower on the tiny matrices used here.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import gradlab as gl


@pytest.fixture(scope="session", autouse=True)
def _one_blas_thread():
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="session")
def torch():
    """The torch module, or skip (fail under ``GRADLAB_REQUIRE_TORCH=1``)."""
    try:
        import torch as torch_module
    except ImportError as e:
        if os.environ.get("GRADLAB_REQUIRE_TORCH") == "1":
            pytest.fail(f"GRADLAB_REQUIRE_TORCH=1 but torch cannot be imported ({e}); "
                        "install it with `pip install torch==2.13.0`", pytrace=False)
        pytest.skip("torch is not installed; the PyTorch cross-checks need it")
    return torch_module


def draw_inputs(params: gl.RNNParams, activation: str, B: int, T: int, tokens: bool, seed: int,
                h0=None, margin: float = 1e-3) -> np.ndarray:
    """Inputs whose pre-activations all stay at least ``margin`` away from 0.

    ReLU has a kink at a = 0, where finite differences (and autograd) disagree
    with any one-sided derivative; drawing inputs until every |a_t| > margin
    keeps the comparisons about BPTT rather than about the kink. Deterministic:
    tries seeds ``seed, seed + 1, ...``.
    """
    for s in range(seed, seed + 200):
        rng = np.random.default_rng(s)
        x = rng.integers(0, params.d, size=(B, T)) if tokens else rng.standard_normal((B, T, params.d))
        a = gl.forward(params, x, activation, h0).a
        if np.min(np.abs(a)) > margin:
            return x
    raise RuntimeError("no inputs found away from the kink; change the test's sizes")


def draw_targets(rng: np.random.Generator, loss: str, loss_steps: str, B: int, T: int, m: int) -> np.ndarray:
    """Targets for ``loss``: class ids for xent, N(0, 1) values for mse."""
    shape = (B, T) if loss_steps == "all" else (B,)
    return rng.integers(0, m, size=shape) if loss == "xent" else rng.standard_normal(shape + (m,))


def random_params(rng: np.random.Generator, n: int, d: int, m: int, radius: float = 1.2,
                  init: str = "gaussian") -> gl.RNNParams:
    """Parameters with every entry non-zero (biases too), so every gradient is exercised."""
    p = gl.init_params(n=n, d=d, m=m, init=init, radius=radius, rng=rng)
    return p.replace(b_h=0.3 * rng.standard_normal(n), b_y=0.3 * rng.standard_normal(m))


def dense_product(W_hh: np.ndarray, dphi: np.ndarray, t: int, k: int) -> np.ndarray:
    """Brute force ∂h_t/∂h_k = J_t … J_{k+1} for one sequence, J_j = diag(φ'(a_j)) W_hh.

    ``dphi`` is (T, n) with row j − 1 belonging to step j.
    """
    P = np.eye(W_hh.shape[0])
    for j in range(t, k, -1):
        P = P @ (np.diag(dphi[j - 1]) @ W_hh)
    return P
