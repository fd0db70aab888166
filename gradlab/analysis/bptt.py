"""Backpropagation through time: the exact gradient and the truncated one.

Full BPTT carries δ_t = ∂L/∂h_t backwards in one O(T) loop:

    δ_T = W_hyᵀ ∂L/∂o_T
    ∂L/∂a_t = φ'(a_t) ⊙ δ_t
    δ_{t-1} = W_hhᵀ ∂L/∂a_t + W_hyᵀ ∂L/∂o_{t-1}          (direct term)

and the parameter gradients are sums over steps of outer products with
∂L/∂a_t. Truncated BPTT follows the WildML tutorial's ``bptt_truncate = K``:
the error of the output at step t is sent back through steps t, t−1, …, t−K
only. It is *not* the gradient of the loss: for T > K + 1 a finite-difference
check of it fails (Williams & Peng 1990; see :func:`gradlab.gradcheck.gradient_check`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import GradlabError
from .losses import check_loss, check_targets, loss_and_output_grad
from ..cells.params import RNNParams
from ..cells.rnn import forward
from ..cells.trace import Trace


@dataclass(frozen=True)
class Gradients:
    """Result of one forward/backward pass.

    Attributes
    ----------
    loss : float
        Σ over loss steps of L_t, averaged over the batch.
    grads : dict[str, numpy.ndarray]
        ∂L/∂θ for every parameter (keys :data:`gradlab.params.PARAM_NAMES`),
        shaped like the parameters; may hold inf/nan when the gradient explodes.
    dL_dh : (B, T + 1, n) or None
        ∂L/∂h_k for k = 0 … T (total derivative through all later steps);
        None for truncated BPTT, where no such quantity is computed.
    trace : Trace
    """

    loss: float
    grads: dict[str, np.ndarray]
    dL_dh: np.ndarray | None
    trace: Trace


def loss_and_grads(
    params: RNNParams,
    x: np.ndarray,
    y: np.ndarray,
    activation="tanh",
    loss: str = "mse",
    loss_steps: str = "all",
    truncate: int | None = None,
    h0: np.ndarray | None = None,
) -> Gradients:
    """Loss and BPTT gradients of every parameter.

    Parameters
    ----------
    params : RNNParams
    x : (B, T, d) float or (B, T) int token ids
    y : targets, see :func:`gradlab.losses.check_targets`
    activation : str
    loss : {"mse", "xent"}
    loss_steps : {"all", "last"}
    truncate : int, optional
        ``None`` for the exact gradient; K ≥ 0 for the tutorial's truncated
        BPTT (each output's error goes back through at most K + 1 steps).
    h0 : (B, n), optional

    Examples
    --------
    >>> import numpy as np, gradlab as gl
    >>> rng = np.random.default_rng(0)
    >>> p = gl.init_params(n=4, d=3, rng=rng)
    >>> g = gl.loss_and_grads(p, np.array([[0, 1, 2]]), np.array([[1, 2, 0]]), loss="xent")
    >>> g.grads["W_hh"].shape
    (4, 4)
    """
    check_loss(loss, loss_steps)
    if truncate is not None and (isinstance(truncate, bool) or not isinstance(truncate, (int, np.integer)) or truncate < 0):
        raise GradlabError(f"truncate must be a whole number ≥ 0, got {truncate!r}")
    tr = forward(params, x, activation, h0)
    L, g_o, direct = output_errors(params, tr, y, loss, loss_steps)
    B, T, n = tr.a.shape
    h_out = tr.h[:, loss_step_indices(loss_steps, T)]
    dW_hy = _sum_outer(g_o, h_out)
    db_y = g_o.sum(axis=(0, 1))

    if truncate is None:
        dA, dL_dh = _backward_full(tr, direct)
    else:
        dA, dL_dh = _backward_truncated(tr, direct, loss_step_indices(loss_steps, T), truncate), None

    dW_hh = _sum_outer(dA, tr.h[:, :-1])
    if np.issubdtype(tr.x.dtype, np.integer):
        dW_xh = np.zeros_like(params.W_xh)
        np.add.at(dW_xh.T, tr.x.ravel(), dA.reshape(-1, n))  # column x_t gets ∂L/∂a_t
    else:
        dW_xh = _sum_outer(dA, tr.x)
    grads = {"W_xh": dW_xh, "W_hh": dW_hh, "b_h": dA.sum(axis=(0, 1)), "W_hy": dW_hy, "b_y": db_y}
    return Gradients(loss=L, grads=grads, dL_dh=dL_dh, trace=tr)


def _sum_outer(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Σ over batch and steps of the outer products u_t v_tᵀ: (B, S, p), (B, S, q) → (p, q).

    One BLAS matrix product; ``np.einsum`` without BLAS was half the cost of a
    training update at n = 128 (benchmarks/bench_training.py).
    """
    return u.reshape(-1, u.shape[-1]).T @ v.reshape(-1, v.shape[-1])


def loss_step_indices(loss_steps: str, T: int) -> np.ndarray:
    """Steps t whose output enters the loss."""
    return np.arange(1, T + 1) if loss_steps == "all" else np.array([T])


def output_errors(params: RNNParams, tr: Trace, y: np.ndarray, loss: str, loss_steps: str):
    """Loss and the error injected at each state through its output.

    Returns
    -------
    L : float
        Σ_t L_t averaged over the batch.
    g_o : (B, S, m)
        ∂L/∂o_t at the S loss steps.
    direct : (B, T + 1, n)
        W_hyᵀ ∂L/∂o_t at each h_t (zero where the loss does not look).
    """
    check_loss(loss, loss_steps)
    B, T, n = tr.h.shape[0], tr.h.shape[1] - 1, tr.h.shape[2]   # any trace with h: RNN, LSTM, GRU
    y = check_targets(y, loss, loss_steps, B, T, params.m)
    steps = loss_step_indices(loss_steps, T)
    o = tr.h[:, steps] @ params.W_hy.T + params.b_y
    L, g_o = loss_and_output_grad(o, y if loss_steps == "all" else y[:, None], loss)
    g_o /= B
    direct = np.zeros((B, T + 1, n))
    direct[:, steps] = g_o @ params.W_hy
    return float(L.sum() / B), g_o, direct


def _backward_full(tr: Trace, direct: np.ndarray):
    """Exact BPTT: returns ∂L/∂a_t (B, T, n) and ∂L/∂h_k (B, T + 1, n)."""
    B, T, n = tr.a.shape
    dA = np.empty((B, T, n))
    dL_dh = np.empty((B, T + 1, n))
    delta = direct[:, T].copy()
    for t in range(T, 0, -1):
        dL_dh[:, t] = delta
        dA[:, t - 1] = delta * tr.dphi[:, t - 1]
        delta = dA[:, t - 1] @ tr.W_hh + direct[:, t - 1]
    dL_dh[:, 0] = delta
    return dA, dL_dh


def _backward_truncated(tr: Trace, direct: np.ndarray, steps: np.ndarray, K: int):
    """The tutorial's truncated BPTT: output t reaches a_t … a_{t−K} only."""
    B, T, n = tr.a.shape
    dA = np.zeros((B, T, n))
    for t in steps:
        da = direct[:, t] * tr.dphi[:, t - 1]
        for j in range(t, max(1, t - K) - 1, -1):
            dA[:, j - 1] += da
            if j > 1:
                da = (da @ tr.W_hh) * tr.dphi[:, j - 2]
    return dA


def loss_value(params: RNNParams, x, y, activation="tanh", loss="mse", loss_steps="all", h0=None) -> float:
    """The loss alone (a forward pass, no backward): for finite differences."""
    return output_errors(params, forward(params, x, activation, h0), y, loss, loss_steps)[0]
