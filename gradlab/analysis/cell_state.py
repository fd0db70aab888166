"""The LSTM's cell-state chain C_0 → C_1 → … → C_T, measured three ways (``cell_state.csv``).

* ``full``: the product of the four-term cell-to-cell Jacobians of the seed
  derivation, ∂C_t/∂C_{t−1} = diag(f_t) + M_t diag(k_{t−1})
  (:func:`gradlab.cells.lstm.cell_state_trace`);
* ``forget``: the forget-gate-only approximation diag(f_t);
* ``exact``: the total derivative ‖∂C_t/∂C_k‖, through the output gates as
  well (:func:`exact_cell_state_norms`).

An LSTM's run adds this table (:mod:`gradlab.analysis.extra_tables`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..cells.lstm import cell_state_trace
from .jacobian_norms import JacobianNorms, end_steps, jacobian_norms, largest_gram_eigenvalue, renormalise
from .tables import LOG10_E, norms_table

if TYPE_CHECKING:
    from ..cells.lstm import LSTMTrace


def exact_cell_state_norms(trace: LSTMTrace, pairs: str = "last") -> JacobianNorms:
    """ln‖∂C_t/∂C_k‖₂ of an LSTM trace, the exact total derivative, for the pairs of ``pairs``.

    ∂C_t/∂C_k = R_C (J_t ⋯ J_{k+1}) [diag(k_k); I]: the C rows of the full-state
    product, grown backwards one (n × 2n)·J_j product per lag, times the 2n × n
    matrix through which C_k also moves h_k = o_k ⊙ tanh(C_k) (k_0 = 0: h_0 is
    given). Unlike the product of the four-term factors (:func:`~gradlab.cells.lstm.cell_state_trace`)
    this keeps the path through the output gates. σ_max of each n × n block is
    exact (√λ_max of its Gram matrix); the rows are rescaled every lag and the
    log of the scale carried, so long products stay finite.

    Returns
    -------
    JacobianNorms
        Same pairs and order as :func:`gradlab.jacobian_norms` (by t, then lag).
    """
    n, B = trace.n, trace.B
    ends = end_steps(pairs, trace.T)
    R_C = np.broadcast_to(np.eye(2 * n)[n:], (B, n, 2 * n))
    cols = []
    for t in ends:
        Q, log_q = trace.right_multiply(R_C, int(t)), np.zeros(B)     # R_C J_t
        out = np.empty((B, t))
        for k in range(t - 1, -1, -1):
            block = Q[..., n:] if k == 0 else Q[..., :n] * trace.k[:, k - 1, None, :] + Q[..., n:]
            flat = block.reshape(B, n, n)
            with np.errstate(divide="ignore"):             # an exactly zero block has ln 0 = −inf
                out[:, t - 1 - k] = 0.5 * np.log(largest_gram_eigenvalue(flat)) + log_q
            if k > 0:
                Q, log_q = renormalise(trace.right_multiply(Q, k), log_q)
        cols.append(out)
    return JacobianNorms(t=np.concatenate([np.full(t, t) for t in ends]),
                         k=np.concatenate([np.arange(t - 1, -1, -1) for t in ends]),
                         log_norm=np.concatenate(cols, axis=1))


def cell_state_table(trace, pairs: str) -> pd.DataFrame:
    """``seq, t, k, lag, log10_norm_full, log10_norm_forget, log10_norm_exact`` of an LSTM trace."""
    full, forget = (jacobian_norms(cell_state_trace(trace, w), pairs) for w in ("full", "forget"))
    table = norms_table(full, 1.0, 1.0)[["seq", "t", "k", "lag"]]
    table["log10_norm_full"] = full.log_norm.ravel() * LOG10_E
    table["log10_norm_forget"] = forget.log_norm.ravel() * LOG10_E
    table["log10_norm_exact"] = exact_cell_state_norms(trace, pairs).log_norm.ravel() * LOG10_E
    return table
