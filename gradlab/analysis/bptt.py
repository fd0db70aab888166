"""Backpropagation through time for any cell: the exact gradient and the truncated one.

Exact BPTT carries the adjoint λ_t = ∂L/∂s_t backwards in one O(T) loop
through the trace protocol (:mod:`gradlab.cells.base`)::

    λ_T = direct_T,     λ_{t−1} = λ_t J_t + direct_{t−1}         (direct_t = W_hyᵀ ∂L/∂o_t at h_t)

and each cell turns the adjoints into its parameter gradients
(``trace.param_grads``: for the vanilla RNN, sums over steps of outer
products with ∂L/∂a_t = φ'(a_t) ⊙ λ_t). Truncated BPTT follows the WildML
tutorial's ``bptt_truncate = K``: the error of the output at step t is sent
back through steps t, t−1, …, t−K only. It is *not* the gradient of the
loss: for T > K + 1 a finite-difference check of it typically fails
(Williams & Peng 1990; see :func:`gradlab.analysis.gradcheck.gradient_check`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..cells.base import StateTrace, sum_outer
from ..cells.rnn import RNNCell, RNNParams
from ..errors import GradlabError
from .losses import check_loss, check_targets, loss_and_output_grad

if TYPE_CHECKING:
    from ..cells.activations import Activation
    from ..cells.base import Cell


@dataclass(frozen=True)
class Gradients:
    """Result of one forward/backward pass.

    Attributes
    ----------
    loss : float
        Σ over loss steps of L_t, averaged over the batch.
    grads : dict[str, numpy.ndarray]
        ∂L/∂θ for every parameter (the cell's, then ``W_hy``, ``b_y``),
        shaped like the parameters; may hold inf/nan when the gradient explodes.
    dL_ds : (B, T + 1, s) or None
        ∂L/∂s_k for k = 0 … T (total derivative through all later steps; the
        state s is h for the RNN and GRU, (h, C) for the LSTM); None for
        truncated BPTT, where no such quantity is computed.
    trace : StateTrace
    """

    loss: float
    grads: dict[str, np.ndarray]
    dL_ds: np.ndarray | None
    trace: StateTrace

    @property
    def dL_dh(self) -> np.ndarray | None:
        """∂L/∂h_k for k = 0 … T, (B, T + 1, n): the hidden part of :attr:`dL_ds`."""
        return None if self.dL_ds is None else self.dL_ds[..., :self.trace.n]


def gradients(cell: Cell, params: Any, x: np.ndarray, y: np.ndarray, loss: str = "mse", loss_steps: str = "all",
              truncate: int | None = None, s0: np.ndarray | None = None) -> Gradients:
    """Loss and BPTT gradients of every parameter of any cell.

    Parameters
    ----------
    cell : Cell
        E.g. ``RNNCell("tanh")``, ``LSTMCell()`` (:data:`gradlab.cells.CELLS`).
    params
        The cell's parameters (with the read-out ``W_hy``, ``b_y``).
    x : (B, T, d) float or (B, T) int token ids
    y : targets, see :func:`gradlab.analysis.losses.check_targets`
    loss : {"mse", "xent"}
    loss_steps : {"all", "last"}
    truncate : int, optional
        ``None`` for the exact gradient; K ≥ 0 for the tutorial's truncated
        BPTT (each output's error goes back through at most K + 1 steps).
    s0 : (B, s), optional
        Initial state (zeros by default).
    """
    check_loss(loss, loss_steps)
    if truncate is not None and (isinstance(truncate, bool) or not isinstance(truncate, (int, np.integer)) or truncate < 0):
        raise GradlabError(f"truncate must be a whole number ≥ 0, got {truncate!r}")
    tr = cell.forward(params, x, s0)
    L, g_o, direct = output_errors(params, tr, y, loss, loss_steps)
    steps = loss_step_indices(loss_steps, tr.T)
    direct = tr.embed_h(direct)
    if truncate is None:
        lam = adjoints(tr, direct)
    else:
        lam = truncated_adjoints(tr, direct, steps, truncate)
    grads = tr.param_grads(lam)
    grads["W_hy"] = sum_outer(g_o, tr.h[:, steps])
    grads["b_y"] = g_o.sum(axis=(0, 1))
    return Gradients(loss=L, grads=grads, dL_ds=lam if truncate is None else None, trace=tr)


def loss_and_grads(
    params: RNNParams,
    x: np.ndarray,
    y: np.ndarray,
    activation: str | Activation = "tanh",
    loss: str = "mse",
    loss_steps: str = "all",
    truncate: int | None = None,
    h0: np.ndarray | None = None,
) -> Gradients:
    """Loss and BPTT gradients of every parameter of a vanilla RNN (:func:`gradients` with ``RNNCell``).

    Parameters
    ----------
    params : RNNParams
    x : (B, T, d) float or (B, T) int token ids
    y : targets, see :func:`gradlab.analysis.losses.check_targets`
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
    return gradients(RNNCell(activation), params, x, y, loss, loss_steps, truncate, h0)


def loss_step_indices(loss_steps: str, T: int) -> np.ndarray:
    """Steps t whose output enters the loss."""
    return np.arange(1, T + 1) if loss_steps == "all" else np.array([T])


def output_errors(params: Any, tr: StateTrace, y: np.ndarray, loss: str,
                  loss_steps: str) -> tuple[float, np.ndarray, np.ndarray]:
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


def adjoints(trace, direct: np.ndarray) -> np.ndarray:
    """Exact BPTT for any cell: λ_t = ∂L/∂s_t for t = 0 … T, (B, T + 1, s).

    One O(T) backward loop through the trace protocol (:mod:`gradlab.cells.base`)::

        λ_T = direct_T,     λ_{t−1} = λ_t J_t + direct_{t−1}

    ``direct`` (B, T + 1, s) is the error injected at each state through its
    own output (:func:`output_errors`, placed in the state layout).
    ``trace.param_grads(adjoints(trace, direct))`` is then the exact gradient
    of every cell parameter.
    """
    lam = np.empty_like(direct)
    lam[:, trace.T] = direct[:, trace.T]
    for t in range(trace.T, 0, -1):
        lam[:, t - 1] = trace.vjp(lam[:, t], t) + direct[:, t - 1]
    return lam


def truncated_adjoints(trace, direct: np.ndarray, steps: np.ndarray, K: int) -> np.ndarray:
    """The tutorial's truncated BPTT for any cell: the adjoint sums λ̃_j, (B, T + 1, s).

    The error of the output at each loss step t is sent back through steps
    t, t − 1, …, t − K only (``bptt_truncate = K``)::

        λ̃_j = Σ_{t ∈ steps, t − K ≤ j ≤ t} direct_t J_t J_{t−1} ⋯ J_{j+1}

    so ``trace.param_grads(λ̃)`` is the truncated gradient. Not the gradient
    of the loss once T > K + 1 (Williams & Peng 1990).
    """
    lam = np.zeros_like(direct)
    for t in steps:
        v = direct[:, t]
        for j in range(t, max(1, t - K) - 1, -1):
            lam[:, j] += v
            if j > 1:
                v = trace.vjp(v, j)
    return lam


def cell_loss(cell: Cell, params: Any, x: np.ndarray, y: np.ndarray, loss: str = "mse", loss_steps: str = "all",
              s0: np.ndarray | None = None) -> float:
    """The loss alone (a forward pass, no backward): for finite differences."""
    return output_errors(params, cell.forward(params, x, s0), y, loss, loss_steps)[0]


def loss_value(params: RNNParams, x: np.ndarray, y: np.ndarray, activation: str | Activation = "tanh",
               loss: str = "mse", loss_steps: str = "all", h0: np.ndarray | None = None) -> float:
    """The loss of a vanilla RNN alone (:func:`cell_loss` with ``RNNCell``)."""
    return cell_loss(RNNCell(activation), params, x, y, loss, loss_steps, h0)
