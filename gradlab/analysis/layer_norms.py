"""Which layer of a stack loses the gradient first: the per-layer blocks ‖∂h^l_t/∂h^l_k‖ (``layers.csv``).

For stacked layers (:mod:`gradlab.cells.stacked`) the full-state product
∂s_t/∂s_k = J_t ⋯ J_{k+1} mixes the layers; the block of layer l's hidden
state, ∂h^l_t/∂h^l_k, is the h^l rows and columns of it. Each is grown
backwards from the rows R_l of h^l_t, one (n × s)·J_j product per lag, and
its σ_max taken exactly (√λ_max of the Gram matrix); rows are rescaled every
lag with the log of the scale carried, so long products stay finite.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .jacobian_norms import end_steps, largest_gram_eigenvalue, renormalise
from .tables import LOG10_E


def layer_block_norms(trace, pairs: str = "last") -> pd.DataFrame:
    """``seq, layer, t, k, lag, log10_norm`` with ‖∂h^l_t/∂h^l_k‖₂ for every layer l (1 = the lowest).

    Parameters
    ----------
    trace : StackedTrace
    pairs : {"last", "all", "stride:K"}
        Which end steps t (every k < t for each).
    """
    B, S = trace.B, trace.state_size
    frames = []
    for l, (o, n) in enumerate(zip(trace.offsets, (tr.n for tr in trace.layers)), start=1):
        R = np.broadcast_to(np.eye(S)[o:o + n], (B, n, S))
        for t in end_steps(pairs, trace.T):
            Q, log_q = R, np.zeros(B)
            out = np.empty((B, t))
            for k in range(t - 1, -1, -1):
                Q, log_q = renormalise(trace.right_multiply(Q, k + 1), log_q)    # R_l J_t ⋯ J_{k+1}
                with np.errstate(divide="ignore"):                              # an exactly zero block: −inf
                    out[:, t - 1 - k] = 0.5 * np.log(largest_gram_eigenvalue(Q[..., o:o + n].copy())) + log_q
            lags = np.arange(1, t + 1)
            frames.append(pd.DataFrame({"seq": np.repeat(np.arange(B), t), "layer": l, "t": t,
                                        "k": np.tile(t - lags, B), "lag": np.tile(lags, B),
                                        "log10_norm": out.ravel() * LOG10_E}))
    return pd.concat(frames, ignore_index=True)
