"""‖∂L/∂h_k‖ for every step, in log space.

The same backward recurrence as exact BPTT (:mod:`gradlab.bptt`),

    δ_{k-1} = J_kᵀ δ_k + W_hyᵀ ∂L/∂o_{k-1},

but δ is carried as e^L · v with v renormalised at every step, so the norm of
an exploding gradient thousands of steps back is a finite log rather than inf.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..cells.base import StateTrace


def log_loss_grad_norms(trace: StateTrace, direct: np.ndarray) -> np.ndarray:
    """ln ‖∂L/∂h_k‖₂ for k = 0 … T.

    Parameters
    ----------
    trace : Trace
        Any trace with ``vjp(v, t)`` returning v J_t (the row form of J_tᵀ v).
    direct : (B, T + 1, s)
        The error injected at each state through its own output
        (:func:`gradlab.bptt.output_errors`).

    Returns
    -------
    (B, T + 1) natural logs; −inf where the gradient is exactly zero.
    """
    B, T = trace.B, trace.T
    out = np.empty((B, T + 1))
    v = direct[:, T].copy()
    L = np.zeros(B)
    with np.errstate(divide="ignore"):
        out[:, T] = np.log(np.linalg.norm(v, axis=1))
        for t in range(T, 0, -1):
            w, c = trace.vjp(v, t), direct[:, t - 1]
            log_w = np.log(np.max(np.abs(w), axis=1)) + L
            log_c = np.log(np.max(np.abs(c), axis=1))
            L_new = np.maximum(log_w, log_c)
            L_new = np.where(np.isfinite(L_new), L_new, 0.0)  # δ = 0 exactly
            # New v = δ_{t-1} / e^L_new: every entry ≤ 2 in size.
            # Mask the exponent, not the result: e^(−L_new) of an unused term can overflow.
            w_scale = np.exp(np.where(np.isfinite(log_w), L - L_new, -np.inf))
            c_scale = np.exp(np.where(np.isfinite(log_c), -L_new, -np.inf))
            v = w * w_scale[:, None] + c * c_scale[:, None]
            L = L_new
            out[:, t - 1] = np.log(np.linalg.norm(v, axis=1)) + L
    return out
