"""The Trace: the one record of a forward pass.

A Trace stores the Jacobian *factors* — the vectors φ'(a_t) and a reference to
W_hh — rather than T dense (n, n) matrices. Dense Jacobians are built on
demand, and products with them cost one scaled matrix product:

    P J_t = (P diag(φ'(a_t))) W_hh = (P * dphi_t[None, :]) @ W_hh

Steps are numbered t = 1 … T; ``h[:, t]`` is h_t (``h[:, 0]`` is h_0) while
``a[:, t-1]`` and ``dphi[:, t-1]`` belong to step t.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .activations import Activation


@dataclass(frozen=True)
class Trace:
    """Record of a vanilla-RNN forward pass over a batch.

    Attributes
    ----------
    x : (B, T, d) float or (B, T) int
        Inputs (token ids when integer).
    a : (B, T, n)
        Pre-activations a_t.
    h : (B, T + 1, n)
        States h_0 … h_T.
    dphi : (B, T, n)
        φ'(a_t), the diagonal of each step Jacobian's first factor.
    W_hh : (n, n)
        The recurrent matrix (shared, not copied).
    activation : Activation
    """

    x: np.ndarray
    a: np.ndarray
    h: np.ndarray
    dphi: np.ndarray
    W_hh: np.ndarray
    activation: Activation

    @property
    def B(self) -> int:
        return self.a.shape[0]

    @property
    def T(self) -> int:
        return self.a.shape[1]

    @property
    def n(self) -> int:
        return self.a.shape[2]

    @property
    def state_size(self) -> int:
        """Size of the state whose Jacobians are analysed (n for a vanilla RNN)."""
        return self.n

    def jacobian(self, t: int) -> np.ndarray:
        """Dense step Jacobian J_t = ∂h_t/∂h_{t-1} = diag(φ'(a_t)) W_hh, (B, n, n)."""
        return self.dphi[:, t - 1, :, None] * self.W_hh

    def right_multiply(self, P: np.ndarray, t: int) -> np.ndarray:
        """P J_t for a batch P of shape (B, r, n), without forming J_t."""
        return (P * self.dphi[:, t - 1, None, :]) @ self.W_hh

    def vjp(self, v: np.ndarray, t: int) -> np.ndarray:
        """Row-vector product v J_t = (J_tᵀ v)ᵀ for v of shape (B, n)."""
        return (v * self.dphi[:, t - 1]) @ self.W_hh
