"""Norms of Jacobian products ‖∂h_t/∂h_k‖₂ in log space.

∂h_t/∂h_k = J_t J_{t−1} … J_{k+1} (t − k factors). For each end step t the
product is grown backwards, P ← P J_k, one factor per lag, so every k < t
costs one scaled matrix product. After each product P is divided by its
largest entry and the log of that scale is accumulated: the product of a
thousand exploding (or vanishing) Jacobians stays representable and every
log-norm is finite. A product that is exactly zero (every ReLU unit off at
some step) has log-norm −inf, which is the true value.

Pairs
-----
``"last"``      t = T and every k < T           (T values)
``"all"``       every 0 ≤ k < t ≤ T             (T (T + 1) / 2 values)
``"stride:K"``  t ∈ {T, T − K, T − 2K, …} and every k < t
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import GradlabError


@dataclass(frozen=True)
class JacobianNorms:
    """Log-norms of Jacobian products for a batch of sequences.

    Attributes
    ----------
    t, k : (P,) int
        End and start step of each pair; ``lag = t − k``.
    log_norm : (B, P)
        ln ‖∂h_t/∂h_k‖₂ per sequence and pair (natural log).
    """

    t: np.ndarray
    k: np.ndarray
    log_norm: np.ndarray

    @property
    def lag(self) -> np.ndarray:
        return self.t - self.k


def end_steps(pairs: str, T: int) -> np.ndarray:
    """The end steps t selected by a ``pairs`` spec, in increasing order."""
    if pairs == "last":
        return np.array([T])
    if pairs == "all":
        return np.arange(1, T + 1)
    if isinstance(pairs, str) and pairs.startswith("stride:"):
        try:
            K = int(pairs.split(":", 1)[1])
        except ValueError:
            K = 0
        if K >= 1:
            return np.arange(T, 0, -K)[::-1]
    raise GradlabError(f"unknown pairs {pairs!r}; use 'last', 'all' or 'stride:K' with K ≥ 1")


def jacobian_norms(trace, pairs: str = "last") -> JacobianNorms:
    """ln ‖∂h_t/∂h_k‖₂ for the requested pairs, every sequence of the batch.

    Parameters
    ----------
    trace : Trace
        Any object with ``B``, ``T``, ``state_size`` and ``right_multiply(P, t)``
        (the vanilla :class:`~gradlab.trace.Trace`, or a gated cell's trace).
    pairs : {"last", "all", "stride:K"}

    Returns
    -------
    JacobianNorms

    Notes
    -----
    Cost: one (n × n)·(n × n) product and one largest-singular-value
    computation per pair.

    Examples
    --------
    >>> import numpy as np, gradlab as gl
    >>> rng = np.random.default_rng(0)
    >>> p = gl.init_params(n=16, d=2, radius=2.0, rng=rng)
    >>> tr = gl.forward(p, rng.standard_normal((1, 40, 2)), "tanh")
    >>> jn = gl.jacobian_norms(tr, "last")
    >>> jn.log_norm.shape
    (1, 40)
    """
    ends = end_steps(pairs, trace.T)
    ts, ks, cols = [], [], []
    for t in ends:
        log_norm = product_log_norms(trace, int(t))      # (B, t): k = t−1 … 0
        ts.append(np.full(t, t))
        ks.append(np.arange(t - 1, -1, -1))
        cols.append(log_norm)
    return JacobianNorms(t=np.concatenate(ts), k=np.concatenate(ks), log_norm=np.concatenate(cols, axis=1))


def product_log_norms(trace, t: int) -> np.ndarray:
    """ln ‖J_t … J_{k+1}‖₂ for k = t−1, t−2, …, 0: (B, t), lag increasing."""
    B, r = trace.B, trace.state_size
    P = np.broadcast_to(np.eye(r), (B, r, r))
    log_scale = np.zeros(B)
    out = np.empty((B, t))
    for lag in range(1, t + 1):
        P = trace.right_multiply(P, t - lag + 1)
        P, log_scale = renormalise(P, log_scale)
        with np.errstate(divide="ignore"):
            out[:, lag - 1] = np.log(largest_singular_value(P)) + log_scale
    return out


def renormalise(P: np.ndarray, log_scale: np.ndarray):
    """Divide each matrix of the batch by its largest |entry|; carry the log.

    A zero matrix keeps scale 1 (its norm is exactly 0 and stays 0).
    """
    s = np.max(np.abs(P), axis=(1, 2))
    s = np.where(s > 0, s, 1.0)
    return P / s[:, None, None], log_scale + np.log(s)


def largest_singular_value(P: np.ndarray) -> np.ndarray:
    """σ_max of each matrix in a batch (B, r, c) → (B,)."""
    return np.linalg.svd(P, compute_uv=False)[:, 0]


def fit_growth_rate(lag: np.ndarray, log_norm: np.ndarray) -> float:
    """Least-squares slope of ln‖∂h_t/∂h_k‖ against lag: nats per step.

    ``log_norm`` may be (P,) or (B, P) with ``lag`` (P,); non-finite values
    (exactly-zero products) are left out. Returns nan with fewer than two
    distinct lags.
    """
    lag = np.broadcast_to(np.asarray(lag, dtype=float), np.shape(log_norm)).ravel()
    y = np.asarray(log_norm, dtype=float).ravel()
    keep = np.isfinite(y)
    if np.unique(lag[keep]).size < 2:
        return float("nan")
    return float(np.polyfit(lag[keep], y[keep], 1)[0])
