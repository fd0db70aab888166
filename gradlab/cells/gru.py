"""The GRU cell (PyTorch ``nn.GRU`` convention) and its exact step Jacobian.

One step, column vectors, gates in PyTorch's order r, z, n (σ = logistic)::

    r_t = σ(W_ir x_t + b_ir + W_hr h_{t−1} + b_hr)
    z_t = σ(W_iz x_t + b_iz + W_hz h_{t−1} + b_hz)
    m_t = W_hn h_{t−1} + b_hn                          (kept: r multiplies it)
    n_t = tanh(W_in x_t + b_in + r_t ⊙ m_t)
    h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}

The state is h_t, so J_t = ∂h_t/∂h_{t−1} is n × n::

    J_t = diag(z_t) + diag(e_r) W_hr + diag(e_z) W_hz + diag(e_n) W_hn
    e_r = (1 − z) ⊙ tanh'(·) ⊙ m ⊙ σ'(r-pre)      e_z = (h_{t−1} − n) ⊙ σ'(z-pre)
    e_n = (1 − z) ⊙ tanh'(·) ⊙ r

Only e_t = (e_r, e_z, e_n) and the gates (r, z, n) are stored; P J_t costs one
(r × 3n)·(3n × n) product.

A row P on h_t pulls back to the two stacks of pre-activations the gates
read, the recurrent one W_hh h_{t−1} + b_hh and the input one W_ih x_t + b_ih
(:func:`gru_adjoints`). They differ in the n block only, because r_t
multiplies m_t = W_hn h_{t−1} + b_hn but not W_in x_t + b_in; with
dn_t = (1 − z_t) ⊙ tanh'(·)::

    dH = P ∂h_t/∂(W_hh h_{t−1} + b_hh) = (P ⊙ e_r, P ⊙ e_z, P ⊙ e_n)
    dU = P ∂h_t/∂(W_ih x_t + b_ih)     = (P ⊙ e_r, P ⊙ e_z, P ⊙ dn)

    P J_t = P ⊙ z_t + dH W_hh       P K_t = P ∂h_t/∂x_t = dU W_ih

With P = λ_t = ∂L/∂h_t (exact BPTT), for all steps at once::

    ∂L/∂W_hh = Σ_t dH_t h_{t−1}ᵀ     ∂L/∂b_hh = Σ_t dH_t
    ∂L/∂W_ih = Σ_t dU_t x_tᵀ         ∂L/∂b_ih = Σ_t dU_t

so ∂L/∂b_hn = Σ λ ⊙ dn ⊙ r differs from ∂L/∂b_in = Σ λ ⊙ dn by the reset gate.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .base import StateTrace, check_inputs, initial_state, input_drive, input_weight_grad, sum_outer
from .gated import GatedParams
# shared with the LSTM (see the integration notes: to move to gated.py / base.py)
from .lstm import GatedCell, check_adjoints, check_real_inputs, rows_matmul, sigmoid, step_factor


def gru_cell(W_hh: np.ndarray, b_hh: np.ndarray, h_prev: np.ndarray, u_t: np.ndarray,
             out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One GRU step and the factors of its Jacobian.

    Parameters
    ----------
    W_hh : (3n, n)
    b_hh : (3n,)
    h_prev : (B, n) h_{t−1}
    u_t : (B, 3n) input drive W_ih x_t + b_ih
    out : tuple of arrays (h, gates, e) shaped as returned, optional
        Where to write the results (the forward pass's trace buffers).

    Returns
    -------
    h : (B, n) h_t
    gates : (B, 3n) r, z, n
    e : (B, 3n) (e_r, e_z, e_n)
    """
    B, n = h_prev.shape
    h, gates, e = (np.empty((B, n)), np.empty((B, 3 * n)), np.empty((B, 3 * n))) if out is None else out
    gh = h_prev @ W_hh.T
    gh += b_hh
    rz = np.add(u_t[:, :2 * n], gh[:, :2 * n], out=gates[:, :2 * n])
    sigmoid(rz, out=rz)
    r, z = gates[:, :n], gates[:, n:2 * n]
    m = gh[:, 2 * n:]
    nn = np.multiply(r, m, out=gates[:, 2 * n:])
    nn += u_t[:, 2 * n:]
    np.tanh(nn, out=nn)
    dh = h_prev - nn
    np.multiply(z, dh, out=h)
    h += nn                                   # h = n + z ⊙ (h_{t−1} − n), PyTorch's form
    # local derivatives, beside the values they differentiate
    dn = nn * nn
    np.subtract(1.0, dn, out=dn)
    dn -= z * dn                              # (1 − z) tanh'(·)
    s_r = np.subtract(1.0, r, out=e[:, :n])
    s_r *= r
    s_r *= m
    s_r *= dn                                 # e_r = dn m σ'(r-pre)
    e_z = np.subtract(1.0, z, out=e[:, n:2 * n])
    e_z *= z
    e_z *= dh                                 # e_z = (h_{t−1} − n) σ'(z-pre)
    np.multiply(dn, r, out=e[:, 2 * n:])      # e_n = dn r
    return h, gates, e


def gru_adjoints(P: np.ndarray, e: np.ndarray, gates: np.ndarray | None = None):
    """A row P on h_t pulled back to the recurrent (and, given the gates, the input) pre-activations.

    Parameters
    ----------
    P : (..., n)
    e : (..., 3n) (e_r, e_z, e_n), broadcast against P's leading axes
    gates : (..., 3n) (r, z, n), optional; needed for dU only

    Returns
    -------
    dH : (..., 3n) (P e_r, P e_z, P e_n), the row on W_hh h_{t−1} + b_hh
    dU : (..., 3n) (P e_r, P e_z, P dn) with dn = (1 − z)(1 − n²), the row on
        W_ih x_t + b_ih; None without ``gates``
    """
    n = P.shape[-1]
    E = e.reshape(e.shape[:-1] + (3, n))
    dH = (E * P[..., None, :]).reshape(np.broadcast_shapes(E.shape[:-2], P.shape[:-1]) + (3 * n,))
    if gates is None:
        return dH, None
    z, nn = gates[..., n:2 * n], gates[..., 2 * n:]
    dU = dH.copy()
    dU[..., 2 * n:] = P * ((1 - z) * (1 - nn * nn))          # r does not multiply W_in x + b_in
    return dH, dU


@dataclass(frozen=True)
class GRUTrace(StateTrace):
    """Record of a GRU forward pass; the state is h_t, size n.

    Attributes
    ----------
    x : (B, T, d) float or (B, T) int
    gates : (B, T, 3n) r, z, n of step t at index t − 1
    h : (B, T + 1, n) h_0 … h_T
    e : (B, T, 3n) Jacobian factors (see the module docstring)
    W_hh : (3n, n), W_ih : (3n, d)
        The weights (shared, not copied); W_ih gives the input Jacobian.

    :meth:`GRUCell.forward` stores the per-step arrays time-major and passes
    (B, T, ·) views of them, so step t's factors are one contiguous block.
    """

    x: np.ndarray
    gates: np.ndarray
    h: np.ndarray
    e: np.ndarray
    W_hh: np.ndarray
    W_ih: np.ndarray

    @property
    def state_size(self) -> int:
        return self.n

    def states(self) -> np.ndarray:
        """s_t = h_t for t = 0 … T: (B, T + 1, n)."""
        return self.h

    def right_multiply(self, P: np.ndarray, t: int) -> np.ndarray:
        """P J_t = P diag(z_t) + (P e_r, P e_z, P e_n) W_hh for P of shape (B, r, n) (or (B, n))."""
        n, nd = self.n, P.ndim
        dH, _ = gru_adjoints(P, step_factor(self.e, t, nd))
        return P * step_factor(self.gates, t, nd)[..., n:2 * n] + rows_matmul(dH, self.W_hh)

    def vjp(self, v: np.ndarray, t: int) -> np.ndarray:
        """v J_t for v of shape (B, n): one (B, 3n)·(3n, n) product (the BPTT step λ_{t−1} = λ_t J_t)."""
        return self.right_multiply(v, t)

    def input_right_multiply(self, P: np.ndarray, t: int) -> np.ndarray:
        """P K_t = P ∂h_t/∂x_t = (P e_r, P e_z, P dn) W_ih for P of shape (B, r, n): (B, r, d)."""
        check_real_inputs(self.x)
        _, dU = gru_adjoints(P, step_factor(self.e, t, P.ndim), step_factor(self.gates, t, P.ndim))
        return rows_matmul(dU, self.W_ih)

    def param_grads(self, dS: np.ndarray) -> dict[str, np.ndarray]:
        """Σ_t (∂h_t/∂θ)ᵀ λ_t for θ = W_ih, W_hh, b_ih, b_hh from the adjoints λ_t = dS[:, t].

        ∂L/∂W_hh = Σ_t dH_t h_{t−1}ᵀ, ∂L/∂b_hh = Σ_t dH_t, ∂L/∂W_ih = Σ_t dU_t x_tᵀ,
        ∂L/∂b_ih = Σ_t dU_t, with dH, dU (module docstring) for all steps at
        once; each sum is one BLAS product.

        Parameters
        ----------
        dS : (B, T + 1, n) λ_t at index t (index 0 unused)

        Returns
        -------
        dict with ``W_ih`` (3n, d), ``W_hh`` (3n, n), ``b_ih``, ``b_hh`` (3n,)
        """
        dS = check_adjoints(self, dS)
        # time-major (T, B, ·), the layout the forward pass stores, so no factor is copied
        dH, dU = gru_adjoints(dS[:, 1:].swapaxes(0, 1), self.e.swapaxes(0, 1), self.gates.swapaxes(0, 1))
        return {"W_ih": input_weight_grad(dU, self.x.swapaxes(0, 1), self.W_ih.shape[1]),
                "W_hh": sum_outer(dH, self.h.swapaxes(0, 1)[:-1]),
                "b_ih": dU.sum(axis=(0, 1)), "b_hh": dH.sum(axis=(0, 1))}


@dataclass(frozen=True)
class GRUCell(GatedCell):
    """The GRU as a :class:`~gradlab.cells.base.Cell`: state s = h, size n.

    Examples
    --------
    >>> import numpy as np
    >>> from gradlab.cells.gru import GRUCell
    >>> rng = np.random.default_rng(0)
    >>> cell = GRUCell()
    >>> p = cell.init_params(n=8, d=3, rng=rng)
    >>> sorted(cell.recurrent_blocks(p))
    ['W_hn', 'W_hr', 'W_hz']
    """

    name: ClassVar[str] = "gru"

    def forward(self, params: GatedParams, x: np.ndarray, s0: np.ndarray | None = None) -> GRUTrace:
        """Run over a batch and record a :class:`GRUTrace`.

        Parameters
        ----------
        params : GatedParams with ``cell == "gru"``
        x : (B, T, d) float, or (B, T) int token ids; (T, d) / (T,) mean B = 1
        s0 : (B, n) or (n,), optional
            Initial state h_0; zeros by default.
        """
        self.check_params(params)
        x = check_inputs(x, params.d)
        n = params.n
        # time-major buffers (T, B, ·), as for the LSTM: contiguous per step; the trace holds (B, T, ·) views
        U = input_drive(params.W_ih, x.swapaxes(0, 1))
        U += params.b_ih
        T, B, _ = U.shape
        gates, e = np.empty((T, B, 3 * n)), np.empty((T, B, 3 * n))
        h = np.empty((T + 1, B, n))
        h[0] = initial_state(s0, B, n)
        for t in range(1, T + 1):
            gru_cell(params.W_hh, params.b_hh, h[t - 1], U[t - 1], out=(h[t], gates[t - 1], e[t - 1]))
        h, gates, e = (a.swapaxes(0, 1) for a in (h, gates, e))
        return GRUTrace(x=x, gates=gates, h=h, e=e, W_hh=params.W_hh, W_ih=params.W_ih)


def forward_gru(params: GatedParams, x: np.ndarray, h0: np.ndarray | None = None) -> GRUTrace:
    """Run a GRU over a batch from h0 and record a :class:`GRUTrace` (:meth:`GRUCell.forward`).

    Parameters
    ----------
    params : GatedParams with ``cell == "gru"``
    x : (B, T, d) float, or (B, T) int token ids; (T, d) / (T,) mean B = 1
    h0 : (B, n) or (n,), optional; zeros by default

    Examples
    --------
    >>> import numpy as np, gradlab as gl
    >>> rng = np.random.default_rng(0)
    >>> p = gl.init_gated_params("gru", n=8, d=3, rng=rng)
    >>> gl.forward_gru(p, rng.standard_normal((2, 50, 3))).jacobian(50).shape
    (2, 8, 8)
    """
    return GRUCell().forward(params, x, h0)
