"""Lyapunov exponents from the recorded step Jacobians of a trace.

The Lyapunov exponents λ_1 ≥ λ_2 ≥ … of a trajectory are the growth rates
(nats per step) of the singular values of the Jacobian product

    ∂s_T/∂s_0 = J_T J_{T−1} … J_1,        λ_i = lim (1/T) ln σ_i(J_T … J_1).

λ_1 is therefore the asymptotic per-step growth rate of ‖∂s_t/∂s_k‖ against
lag: vanishing gradients when λ_1 < 0, exploding when λ_1 > 0.

Method (Benettin et al. 1980; Shimada & Nagashima 1979). Because a product
and its transpose have the same singular values, the vectors are propagated
with row-vector products u ← u J_t, i.e. backwards from t = T, which is all
the trace protocol needs (``right_multiply``): the same recursion as BPTT.

* largest exponent: one vector, renormalised every step; λ_1 is the mean of
  the logs of the renormalisation factors.
* leading k exponents: k vectors, re-orthonormalised every step by a QR
  factorisation; λ_i is the mean of ln |R_ii|.

The first ``warmup`` products (t = T, …, T − warmup + 1) only align the
vectors with the leading directions and are not counted. (A transient of the
*trajectory* itself, e.g. from h_0 = 0, is removed by running the network
before recording; see :func:`gradlab.chaos.autonomous_trace`.)
"""
from __future__ import annotations

import numpy as np

from ..errors import GradlabError, check_positive_int


def lyapunov_exponents(trace, k: int = 1, warmup: int = 0, rng: np.random.Generator | None = None) -> np.ndarray:
    """The leading ``k`` Lyapunov exponents of each sequence, nats per step.

    Parameters
    ----------
    trace : Trace, LSTMTrace, GRUTrace, ...
        Anything with ``B``, ``T``, ``state_size`` and ``right_multiply(P, t)``.
    k : int
        Number of exponents, 1 ≤ k ≤ state size.
    warmup : int
        Products used only to align the vectors, 0 ≤ warmup < T.
    rng : numpy.random.Generator, optional
        Draws the random initial vectors (default: a fixed seed, so the
        result is a function of the trace).

    Returns
    -------
    (B, k) exponents, largest first; −inf where the product is exactly zero.

    Notes
    -----
    Cost per step: one (k × s)·J_t product (what ``right_multiply`` costs) and,
    for k > 1, a QR factorisation of an (s × k) matrix. For k = 1 no QR is
    done, only a norm.

    Examples
    --------
    >>> import numpy as np, gradlab as gl
    >>> rng = np.random.default_rng(0)
    >>> p = gl.init_params(n=50, d=1, init="orthogonal", radius=0.9, rng=rng)
    >>> tr = gl.forward(p, np.zeros((1, 200, 1)), "linear")
    >>> np.round(gl.lyapunov_exponents(tr, k=3), 6)   # ln 0.9 = -0.105361
    array([[-0.105361, -0.105361, -0.105361]])
    """
    B, T, s = trace.B, trace.T, trace.state_size
    check_positive_int(k, "k (number of exponents)")
    if k > s:
        raise GradlabError(f"k (number of exponents) must be at most the state size {s}, got {k}")
    check_positive_int(warmup, "warmup", minimum=0)
    if warmup >= T:
        raise GradlabError(f"warmup must be smaller than the number of steps T = {T}, got {warmup}")
    rng = np.random.default_rng(0) if rng is None else rng
    Q, _ = np.linalg.qr(rng.standard_normal((B, s, k)))
    Q = np.ascontiguousarray(np.swapaxes(Q, 1, 2))          # (B, k, s): orthonormal rows
    total = np.zeros((B, k))
    for t in range(T, 0, -1):
        Q, log_growth = reorthonormalise(trace.right_multiply(Q, t))
        if T - t >= warmup:
            total += log_growth
    return total / (T - warmup)


def largest_lyapunov(trace, warmup: int = 0, rng: np.random.Generator | None = None) -> np.ndarray:
    """The largest Lyapunov exponent λ_1 of each sequence, (B,), nats per step.

    One vector propagated and renormalised; see :func:`lyapunov_exponents`.
    """
    return lyapunov_exponents(trace, 1, warmup, rng)[:, 0]


def reorthonormalise(P: np.ndarray):
    """Orthonormalise the rows of each (k, s) matrix of a batch; return them and ln|R_ii|.

    For k = 1 this is a renormalisation (no QR). A zero vector stays zero and
    gives −inf (the product is exactly zero: e.g. every ReLU unit off).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        if P.shape[1] == 1:
            norm = np.linalg.norm(P, axis=2)                # (B, 1)
            return P / np.where(norm > 0, norm, 1.0)[..., None], np.log(norm)
        Q, R = np.linalg.qr(np.swapaxes(P, 1, 2))           # P^T = Q R, Q (B, s, k)
        diag = np.diagonal(R, axis1=1, axis2=2)
        # QR's sign convention is arbitrary; |R_ii| is what grows.
        return np.swapaxes(Q, 1, 2), np.log(np.abs(diag))
