"""Gradient checks: BPTT against central finite differences, and truncated
BPTT against the exact gradient.

The relative error of a parameter is the largest entrywise difference divided
by the largest entry of the two gradients,

    err(θ) = max_i |g_i − f_i| / max(max_i |g_i|, max_i |f_i|),

which does not blow up on entries that are zero or vanishingly small (as
many are when gradients vanish), yet still flags any entry that is off by a
meaningful fraction of the gradient's scale.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .bptt import loss_and_grads, loss_value
from ..cells.params import PARAM_NAMES, RNNParams

FD_EPS = 1e-5


def finite_difference_grads(params: RNNParams, x, y, activation="tanh", loss="mse",
                            loss_steps="all", eps: float = FD_EPS) -> dict[str, np.ndarray]:
    """Central differences (L(θ + ε e_i) − L(θ − ε e_i)) / 2ε for every entry of every parameter."""
    grads = {}
    for name in PARAM_NAMES:
        theta = getattr(params, name)
        g = np.empty_like(theta)
        for i in np.ndindex(theta.shape):
            plus, minus = theta.copy(), theta.copy()
            plus[i] += eps
            minus[i] -= eps
            g[i] = (loss_value(params.replace(**{name: plus}), x, y, activation, loss, loss_steps)
                    - loss_value(params.replace(**{name: minus}), x, y, activation, loss, loss_steps)) / (2 * eps)
        grads[name] = g
    return grads


def relative_error(g: np.ndarray, f: np.ndarray) -> float:
    """max |g − f| / max(max |g|, max |f|); 0 when both are zero, NaN when either is not finite."""
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(f))):
        return float("nan")
    scale = max(np.max(np.abs(g)), np.max(np.abs(f)))
    return float(np.max(np.abs(g - f)) / scale) if scale > 0 else 0.0


def gradient_check(params: RNNParams, x, y, activation="tanh", loss="mse", loss_steps="all",
                   truncate: int | None = None) -> pd.DataFrame:
    """Compare BPTT with finite differences, parameter by parameter.

    Returns a table with one row per parameter: ``parameter``, ``entries``,
    ``bptt_vs_fd`` (relative error of exact BPTT). With ``truncate=K`` also
    ``truncated_vs_full`` (how far the truncated gradient is from the true
    one) and ``truncated_vs_fd`` (what the tutorial's gradient check reports).
    """
    full = loss_and_grads(params, x, y, activation, loss, loss_steps).grads
    fd = finite_difference_grads(params, x, y, activation, loss, loss_steps)
    rows = {name: {"parameter": name, "entries": full[name].size,
                   "bptt_vs_fd": relative_error(full[name], fd[name])} for name in PARAM_NAMES}
    if truncate is not None:
        trunc = loss_and_grads(params, x, y, activation, loss, loss_steps, truncate=truncate).grads
        for name in PARAM_NAMES:
            rows[name]["truncated_vs_full"] = relative_error(trunc[name], full[name])
            rows[name]["truncated_vs_fd"] = relative_error(trunc[name], fd[name])
    return pd.DataFrame(list(rows.values()))


def truncation_errors(params: RNNParams, x, y, truncations, activation="tanh", loss="mse",
                      loss_steps="all") -> pd.DataFrame:
    """Relative error of truncated BPTT against the exact gradient, per K.

    Returns a long table ``truncate, parameter, rel_error`` with
    rel_error = ‖g_K − g‖_F / ‖g‖_F per parameter, and a row per K for
    ``parameter = "all"`` (all parameters stacked).
    """
    full = loss_and_grads(params, x, y, activation, loss, loss_steps).grads
    full_all = np.concatenate([full[n].ravel() for n in PARAM_NAMES])
    rows = []
    for K in truncations:
        trunc = loss_and_grads(params, x, y, activation, loss, loss_steps, truncate=int(K)).grads
        for name in PARAM_NAMES:
            rows.append({"truncate": int(K), "parameter": name,
                         "rel_error": _frobenius_rel(trunc[name], full[name])})
        trunc_all = np.concatenate([trunc[n].ravel() for n in PARAM_NAMES])
        rows.append({"truncate": int(K), "parameter": "all", "rel_error": _frobenius_rel(trunc_all, full_all)})
    return pd.DataFrame(rows)


def _frobenius_rel(g: np.ndarray, ref: np.ndarray) -> float:
    norm = np.linalg.norm(ref)
    return float(np.linalg.norm(g - ref) / norm) if norm > 0 else float(np.linalg.norm(g))
