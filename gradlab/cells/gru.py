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

Only e_t = (e_r, e_z, e_n) and z_t are stored; P J_t costs one
(r × 3n)·(3n × n) product.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from .gated import GatedParams, GatedTrace
from .rnn import check_inputs, input_drive


def gru_cell(W_hh, b_hh, h_prev, u_t):
    """One GRU step and the factors of its Jacobian.

    Parameters
    ----------
    W_hh : (3n, n)
    b_hh : (3n,)
    h_prev : (B, n) h_{t−1}
    u_t : (B, 3n) input drive W_ih x_t + b_ih

    Returns
    -------
    h : (B, n) h_t
    gates : (B, 3n) r, z, n
    e : (B, 3n) (e_r, e_z, e_n)
    """
    n = h_prev.shape[1]
    gh = h_prev @ W_hh.T + b_hh
    r = expit(u_t[:, :n] + gh[:, :n])
    z = expit(u_t[:, n:2 * n] + gh[:, n:2 * n])
    m = gh[:, 2 * n:]
    nn = np.tanh(u_t[:, 2 * n:] + r * m)
    h = (1 - z) * nn + z * h_prev
    # local derivatives, beside the values they differentiate
    dn = (1 - z) * (1 - nn * nn)
    e = np.concatenate([dn * m * r * (1 - r), (h_prev - nn) * z * (1 - z), dn * r], axis=1)
    return h, np.concatenate([r, z, nn], axis=1), e


@dataclass(frozen=True)
class GRUTrace(GatedTrace):
    """Record of a GRU forward pass; the state is h_t, size n.

    Attributes
    ----------
    x : (B, T, d) float or (B, T) int
    gates : (B, T, 3n) r, z, n of step t at index t − 1
    h : (B, T + 1, n) h_0 … h_T
    e : (B, T, 3n) Jacobian factors (see the module docstring)
    W_hh : (3n, n)
    """

    x: np.ndarray
    gates: np.ndarray
    h: np.ndarray
    e: np.ndarray
    W_hh: np.ndarray

    @property
    def state_size(self) -> int:
        return self.n

    def right_multiply(self, P: np.ndarray, t: int) -> np.ndarray:
        """P J_t = P diag(z_t) + (P e_r, P e_z, P e_n) W_hh for P of shape (B, r, n)."""
        n = self.n
        z = self.gates[:, t - 1, None, n:2 * n]
        G = np.concatenate([P, P, P], axis=-1) * self.e[:, t - 1, None, :]
        return P * z + G @ self.W_hh


def forward_gru(params: GatedParams, x: np.ndarray, h0=None) -> GRUTrace:
    """Run a GRU over a batch and record a :class:`GRUTrace`.

    Parameters
    ----------
    params : GatedParams with ``cell == "gru"``
    x : (B, T, d) float, or (B, T) int token ids; (T, d) / (T,) mean B = 1
    h0 : (B, n), optional; zeros by default

    Examples
    --------
    >>> import numpy as np, gradlab as gl
    >>> rng = np.random.default_rng(0)
    >>> p = gl.init_gated_params("gru", n=8, d=3, rng=rng)
    >>> gl.forward_gru(p, rng.standard_normal((2, 50, 3))).jacobian(50).shape
    (2, 8, 8)
    """
    x = check_inputs(x, params.d)
    U = input_drive(params.W_ih, x) + params.b_ih
    B, T, _ = U.shape
    n = params.n
    gates, e = np.empty((B, T, 3 * n)), np.empty((B, T, 3 * n))
    h = np.empty((B, T + 1, n))
    h[:, 0] = 0.0 if h0 is None else h0
    for t in range(1, T + 1):
        h[:, t], gates[:, t - 1], e[:, t - 1] = gru_cell(params.W_hh, params.b_hh, h[:, t - 1], U[:, t - 1])
    return GRUTrace(x=x, gates=gates, h=h, e=e, W_hh=params.W_hh)
