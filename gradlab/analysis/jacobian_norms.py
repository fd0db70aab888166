"""Norms of Jacobian products ‖∂h_t/∂h_k‖₂ in log space.

∂h_t/∂h_k = J_t J_{t−1} … J_{k+1} (t − k factors). For each end step t the
product is grown backwards, P ← P J_k, one factor per lag, so every k < t
costs one (n × n)·(n × n) product. Every factor is divided by a bound on its
norm (:class:`ScaledFactors`), P is rescaled whenever it drifts far from unit
norm, and the logs of the scales are accumulated: the product of a thousand
exploding (or vanishing) Jacobians stays representable and every log-norm is
finite. A product that is
exactly zero (every ReLU unit off at some step) has log-norm −inf, which is
the true value.

σ_max of each product
---------------------
``method="svd"`` (the reference) calls a full SVD per pair: about eight times
the cost of the product itself. ``method="exact"`` takes the top eigenvalue
of P Pᵀ instead (exact to rounding, cheaper: see
:func:`largest_gram_eigenvalue`). ``method="subspace"`` finds σ_max by block
Krylov iteration on P Pᵀ (blocks of p = 8 vectors), warm-started from the
previous lag: adding a factor on the right moves the leading *left* singular
vectors of P only a little (they converge with the lag, as Oseledets' theorem
says), so one or two blocks (O(n² p) each) usually suffice. A product is
accepted only when rigorous bounds (Poincaré below; trace, Kato–Temple and
‖P J‖ ≤ ‖P‖ ‖J‖ above, see :func:`top_singular_values`), not a change in the
estimate, put σ_max within ``RTOL`` = 1e-11 relative; otherwise it gets an
exact σ_max, the top eigenvalue of P Pᵀ (typically the first few lags, whose
spectra are flat). The products of a few consecutive lags are bounded together
(fewer, larger calls). With ``workers=2`` two threads share the end steps; a
single end step instead has its σ_max found on the second thread, group after
group, while the first forms the products a few groups ahead (a two-stage
producer/consumer, :mod:`gradlab.analysis._pipeline`).
``method="auto"`` uses ``"exact"`` where that is faster (small states, short
lags; :func:`choose_method`, crossovers measured by
``benchmarks/bench_norm_methods.py``).

Pairs
-----
``"last"``      t = T and every k < T           (T values)
``"all"``       every 0 ≤ k < t ≤ T             (T (T + 1) / 2 values)
``"stride:K"``  t ∈ {T, T − K, T − 2K, …} and every k < t

Products that end at different t but have the same lag are grown together,
as one stack (one per lane, see ``LANES``), so the Python overhead per lag
does not grow with the number of end steps.
"""
from __future__ import annotations

import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.linalg

from ..errors import GradlabError
from ._pipeline import Pipeline

if TYPE_CHECKING:
    from ..cells.base import StateTrace

METHODS = ("auto", "subspace", "exact", "svd")
BLOCK = 8            # p: Krylov block size (converges with the gap σ_1 vs σ_{p+1})
RTOL = 1e-11         # relative error of σ_max certified by the subspace method
ORTHO_TOL = 1e-14    # largest |qᵢ · q_j| accepted between Krylov blocks (the bounds assume 0)
GROUP = 8            # lags whose products are bounded together (when the stack is smaller)
MAX_DEPTH = 8        # Krylov blocks per product before falling back to an exact σ_max
SUBSPACE_MIN_WORK = 2.5e5   # "auto" iterates when r² · mean lag reaches this (measured crossover)
EVR_MIN = 80         # from this size on, LAPACK's evr (top eigenvalue only) beats one batched eigvalsh
STACK_BYTES = 64 << 20   # largest stack of products grown at once (bounds memory for "all")
SEED = 20131130      # start blocks are random but reproducible (the same norms on every call)
LANES = 2            # independent stacks of end steps (one per thread with workers=2)
BUFFERS = 4          # groups of products in flight with a second thread: formed, queued or being bounded


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


def jacobian_norms(trace: StateTrace, pairs: str = "last", method: str = "auto", workers: int = 2) -> JacobianNorms:
    """ln ‖∂h_t/∂h_k‖₂ for the requested pairs, every sequence of the batch.

    Parameters
    ----------
    trace : StateTrace
        The trace of any cell (the protocol of :mod:`gradlab.cells.base`).
    pairs : {"last", "all", "stride:K"}
    method : {"auto", "subspace", "exact", "svd"}
        How σ_max of each product is found: warm-started block Krylov
        iteration with a certified error below 1e-11 relative (``"subspace"``),
        the top eigenvalue of P Pᵀ per pair (``"exact"``), a full SVD per
        pair (``"svd"``, the slow reference), or ``"auto"`` (whichever is
        faster for this size; see the module docstring).
    workers : {1, 2}
        Threads (numpy releases the GIL in BLAS/LAPACK). With 2, the end
        steps are shared between two threads, each forming its products and
        their σ_max; with a single end step (``"last"``), σ_max of one group
        of lags is found in the second thread while the first forms the next
        products. Results are identical for either value.

    Returns
    -------
    JacobianNorms
        Pairs ordered by end step t, then by lag (k = t − 1, t − 2, …, 0).

    Notes
    -----
    Cost: one (n × n)·(n × n) product per pair plus, for ``"subspace"``,
    O(n² p) per Krylov block; ``"exact"`` and ``"svd"`` add an O(n³)
    eigen- or singular-value decomposition per pair.
    Memory: a few (n × n) products per sequence ("last"), at most
    ``STACK_BYTES`` of stacked products ("all", "stride:K").

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
    cols = grow_log_norms(trace, ends, method, workers)
    ts = [np.full(t, t) for t in ends]
    ks = [np.arange(t - 1, -1, -1) for t in ends]
    return JacobianNorms(t=np.concatenate(ts), k=np.concatenate(ks), log_norm=np.concatenate(cols, axis=1))


def product_log_norms(trace, t: int, method: str = "auto", workers: int = 2) -> np.ndarray:
    """ln ‖J_t … J_{k+1}‖₂ for k = t−1, t−2, …, 0: (B, t), lag increasing."""
    return grow_log_norms(trace, np.array([t]), method, workers)[0]


def grow_log_norms(trace, ends: np.ndarray, method: str = "auto", workers: int = 2) -> list[np.ndarray]:
    """ln ‖J_t … J_{t−lag+1}‖₂ for every end step t in ``ends`` and lag = 1 … t.

    Parameters
    ----------
    trace : Trace
    ends : (E,) int, increasing, each in 1 … T
    method : {"auto", "subspace", "exact", "svd"}
    workers : {1, 2} threads (see :func:`jacobian_norms`)

    Returns
    -------
    list of E arrays, the e-th of shape (B, ends[e]), column lag − 1.
    """
    if method not in METHODS:
        raise GradlabError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if workers not in (1, 2):
        raise GradlabError(f"workers must be 1 or 2, got {workers!r}")
    r = trace.state_size
    if method == "auto":
        method = choose_method(r, ends)
    p = min(BLOCK, r)
    factors = ScaledFactors.of(trace)
    ends = np.asarray(ends)
    # Independent end steps are dealt to LANES interleaved lanes (equal work: a product
    # ending at t has t lags), each with its own random stream, so the result does not
    # depend on ``workers``: with 2 the lanes run on two threads, each forming its own
    # products and σ_max. A single end step instead pipelines its σ_max on a second thread.
    lanes = [ends[i::LANES] for i in range(min(LANES, len(ends)))]
    # Chunks of end steps whose stacks of products fit in STACK_BYTES (shared by the lanes).
    chunk = max(1, STACK_BYTES // (len(lanes) * trace.B * r * (r + p) * 8))

    stop = threading.Event()        # set when one lane fails or is interrupted: the others end too
    threaded = workers > 1 and len(lanes) == 1      # a single lane bounds its groups on the second thread

    def grow_lane(i: int) -> list[np.ndarray]:
        rng = np.random.default_rng([SEED, i])
        lane, cols = lanes[i], []
        for j in range(0, len(lane), chunk):
            cols.extend(_grow_chunk(factors, lane[j:j + chunk], method, p, rng, threaded, stop))
        return cols

    if workers > 1 and len(lanes) > 1:
        with ThreadPoolExecutor(len(lanes)) as pool:
            running = [pool.submit(grow_lane, i) for i in range(len(lanes))]
            try:
                for lane in wait(running, return_when=FIRST_EXCEPTION).done:
                    lane.result()           # raises a failed lane's error before the others end
                by_lane = [lane.result() for lane in running]
            except BaseException:   # Ctrl-C or a failed lane: don't wait for the other to finish
                stop.set()
                raise
    else:
        by_lane = [grow_lane(i) for i in range(len(lanes))]
    out = [None] * len(ends)
    for i, cols in enumerate(by_lane):
        out[i::LANES] = cols
    return out


def mean_lag(ends: np.ndarray) -> float:
    """Mean lag of the pairs ending at ``ends`` (every lag 1 … t for each t)."""
    ends = np.asarray(ends, dtype=float)
    return float((ends * (ends + 1) / 2).sum() / ends.sum())


def choose_method(r: int, ends: np.ndarray) -> str:
    """The faster σ_max method for state size r and these end steps (``method="auto"``).

    An exact σ_max costs O(r³) per pair; the Krylov iteration costs O(r²)
    per block but cannot certify the flat spectra of short lags cheaply, so
    it pays for large r and long lags: ``"subspace"`` when r² · mean lag ≥
    ``SUBSPACE_MIN_WORK`` (e.g. r = 128 from a mean lag of 15, r = 64 from
    61, r = 32 from 244), else ``"exact"``. Crossover measured with
    ``benchmarks/bench_norm_methods.py`` (``benchmarks/RESULTS.md``).
    """
    return "subspace" if r * r * mean_lag(ends) >= SUBSPACE_MIN_WORK else "exact"


def _grow_chunk(factors, ends, method, p, rng, threaded=False, stop=None):
    """:func:`grow_log_norms` for one chunk of end steps, grown as one stack.

    The products of ``g`` consecutive lags (a *group*) are kept and their
    σ_max found together, so the per-call overhead of the small linear
    algebra is shared by g · E · B matrices; all start from the block of the
    last lag of the previous group. Two stages
    (:class:`~gradlab.analysis._pipeline.Pipeline`): this thread forms the
    groups and :meth:`_SigmaStage.run` bounds them in order, each warm-started
    from the one before. With ``threaded`` the bounding runs on a second
    thread while this one forms up to ``BUFFERS`` − 1 groups ahead (numpy
    releases the GIL in BLAS and LAPACK). A set ``stop`` event ends the chunk
    at the next group (CancelledError).
    """
    trace = factors.trace
    B, r, E = trace.B, trace.state_size, len(ends)
    m = 1                                               # lags per group
    if method == "subspace" and np.isfinite(factors.bound).all():
        # The cap counts BUFFERS groups even when they are bounded inline: the groups, and so
        # the norms, must not depend on ``workers``.
        m = int(np.clip(-(-GROUP // (E * B)), 1, max(1, STACK_BYTES // (BUFFERS * E * B * r * r * 8))))
    # Groups in flight: BUFFERS with a second thread; inline, the newest and the one it grows from.
    buffers = np.empty((BUFFERS if threaded else 2, m, E, B, r, r))
    stage = _SigmaStage(factors, ends, method, p, rng)
    log_scale = np.zeros((E, B))                        # ln of the scale divided out of the newest product
    first, lag0 = 0, 1                                  # first end step still growing; lag of the next group
    live = None                                         # (E, B, r, r) view of the newest product
    with Pipeline(stage.run, len(buffers), threaded, stop) as pipe:
        while lag0 <= ends[-1]:
            b = pipe.next_buffer()                      # free; the previous one (``live``) is left alone
            while ends[first] < lag0:
                first += 1
            g = min(m, ends[first] - lag0 + 1)          # no product finishes inside a group
            steps = ends[first:] - (lag0 + np.arange(g))[:, None] + 1         # (g, Ea): factor added
            group = buffers[b, :g, first:]
            if lag0 == 1:
                group[0] = factors.first(ends)
            c = np.zeros(group.shape[:3])               # ln of the rescaling carried by each member
            for j in range(g):
                if lag0 + j > 1:
                    factors.advance(group[j - 1] if j else live[first:], group[j], steps[j])
                c[j] = (c[j - 1] if j else 0.0) + _rescale(group[j])
            live = buffers[b, g - 1]
            # ln of the scale of each member: the newest product's, those of the factors added,
            # and the rescaling.
            added = np.cumsum(factors.log_c[:, steps - 1].transpose(1, 2, 0), axis=0)    # (g, Ea, B)
            ls = log_scale[first:] + added + c
            log_scale[first:] = ls[-1]
            pipe.put(b, group, first, lag0, steps, ls, c)
            lag0 += g
    return stage.out


def _rescale(P: np.ndarray) -> np.ndarray:
    """Divide each product of a stack (..., r, r) that drifted beyond e^±64 by its largest |entry|.

    The scaled factors have norm ≤ 1, so a vanishing product would underflow
    after enough lags (and one without a known bound could overflow); checked
    after every factor, at ~2 % of the product's cost. Returns the ln of the
    divisor (0 where nothing was done).
    """
    with np.errstate(divide="ignore"):
        size = np.log(np.maximum(P.max(axis=(-2, -1)), -P.min(axis=(-2, -1))))
    c = np.where(np.isfinite(size) & (np.abs(size) > 64), size, 0.0)
    if c.any():
        P /= np.exp(c)[..., None, None]
    return c


class _SigmaStage:
    """σ_max of the groups of one chunk, in order, each warm-started from the last.

    Holds the results (``out``) and the state carried from one group to the
    next: the start block ``U`` and the certified bound ``upper`` of the
    newest product of each end step.
    """

    def __init__(self, factors, ends, method, p, rng):
        B = factors.trace.B
        self.factors, self.method, self.p, self.rng = factors, method, p, rng
        self.out = [np.empty((B, t)) for t in ends]
        self.ends = ends
        self.U = None
        self.upper = np.ones((len(ends), B))            # bound on σ_max of the newest product / its J

    def run(self, group, first, lag0, steps, ls, c):
        """σ_max of one group (g, Ea, B, r, r) of stored products; writes their log-norms.

        ``steps`` (g, Ea): factor added to each member; ``ls`` (g, Ea, B): ln
        of the scale divided out of each; ``c`` (g, Ea, B): the part of ``ls``
        that :func:`_rescale` divided out since the previous group.
        """
        g, Ea, B, r, _ = group.shape
        P = group.reshape(-1, r, r)
        if self.method != "subspace":
            sigma, log_s = EXACT_SIGMA[self.method](P)
        else:
            sigma, log_s = self._iterate(P, first, lag0, steps, c)
        with np.errstate(divide="ignore"):
            log_norm = (np.log(sigma) + log_s).reshape(g, Ea, B) + ls
        for e in range(first, len(self.ends)):
            self.out[e][:, lag0 - 1:lag0 - 1 + g] = log_norm[:, e - first].T

    def _iterate(self, P, first, lag0, steps, c):
        g, Ea = steps.shape
        B, r, p = self.upper.shape[1], P.shape[-1], self.p
        rng, bound = self.rng, self.factors.bound
        if lag0 == 1:                                   # range finder start
            self.U = np.linalg.qr(P.reshape(g, Ea, B, r, r)[0] @ rng.standard_normal((Ea, B, r, p))).Q
        U, upper = self.U[first:], self.upper[first:]
        # ‖P J‖ ≤ ‖P‖ ‖J‖: a bound on σ_max of every member (0 once a factor or the product is
        # exactly 0, also where ‖J‖ has no bound: 0 · inf).
        growth = np.cumprod(bound[:, steps - 1].transpose(1, 2, 0), axis=0)       # (g, Ea, B)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):     # e^-c may overflow: no bound
            prior = np.where((growth > 0) & (upper > 0), np.exp(np.log(upper * growth) - c), 0.0)
        # Warm start, with one random column: a block exactly orthogonal to the new top
        # direction (e.g. a diagonal product whose largest entry moved) would hide it.
        U0 = np.broadcast_to(U, (g,) + U.shape).reshape(-1, r, p).copy()
        U0[:, :, -1] = rng.standard_normal((len(U0), r))
        U0 = orthonormal_basis(U0)          # U is one power step, not yet orthonormalised
        sigma, up, Um, log_s = top_singular_values(P, U0, prior.reshape(-1))
        U[...] = Um.reshape(g, Ea, B, r, p)[-1]
        upper[...] = (up * np.exp(log_s)).reshape(g, Ea, B)[-1]
        return sigma, log_s


@dataclass(frozen=True)
class ScaledFactors:
    """The step Jacobians of a trace, each divided by a bound on its norm: J_t / c_t.

    With c_t ≥ ‖J_t‖₂ a product of scaled factors has norm ≤ 1, so it cannot
    overflow, and the factors of a saturated network (‖J_t‖ ~ 1e-13) do not
    drive a product into underflow within a few lags; Σ ln c_t is added back
    to every log-norm. c_t comes from ``trace.step_norm_bounds()`` (the Cell
    protocol, :mod:`gradlab.cells.base`); c_t = 1 where no bound is known
    (gated cells) or J_t = 0.

    Attributes
    ----------
    trace : StateTrace
    c : (B, T) c_t;  log_c : (B, T) ln c_t
    bound : (B, T) bound on ‖J_t / c_t‖₂: 1, 0 (J_t = 0) or inf (unknown)
    """

    trace: object
    c: np.ndarray
    log_c: np.ndarray
    bound: np.ndarray

    @classmethod
    def of(cls, trace) -> "ScaledFactors":
        J_norm = trace.step_norm_bounds()
        c = np.where(np.isfinite(J_norm) & (J_norm > 0), J_norm, 1.0)
        return cls(trace, c, np.log(c), J_norm / c)

    def first(self, ends: np.ndarray) -> np.ndarray:
        """J_t / c_t for each end step: (E, B, r, r), without multiplying an identity."""
        return self.trace.scaled_jacobians(ends, self.c[:, ends - 1].T)

    def advance(self, P: np.ndarray, out: np.ndarray, steps: np.ndarray) -> None:
        """out[e] ← P[e] J_{steps[e]} / c for P, out of shape (E, B, r, r) (may be the same array)."""
        self.trace.right_multiply_many(P, steps, self.c[:, steps - 1].T, out)


def _svd_sigma(P):
    """σ_max by full SVD after scaling by the largest |entry|: (σ, ln scale)."""
    P, log_s = renormalise(P, np.zeros(len(P)))
    return largest_singular_value(P), log_s


def _gram_sigma(P):
    """σ_max as √λ_max(P Pᵀ) after scaling by the largest |entry|: (σ, ln scale)."""
    P, log_s = renormalise(P, np.zeros(len(P)))
    return np.sqrt(largest_gram_eigenvalue(P)), log_s


EXACT_SIGMA = {"svd": _svd_sigma, "exact": _gram_sigma}     # σ_max of every pair, no iteration


def top_singular_values(P: np.ndarray, U: np.ndarray, prior: np.ndarray | None = None,
                        rtol: float = RTOL, max_depth: int = MAX_DEPTH):
    """σ_max of each matrix in a stack by warm-started block Krylov iteration.

    Parameters
    ----------
    P : (M, r, r)
    U : (M, r, p) orthonormal columns: start block, ideally the leading left
        singular vectors of a nearby matrix (e.g. the previous lag's product).
    prior : (M,), optional
        Known upper bounds on σ_max(P) (e.g. σ_max of the previous product
        times ‖J‖); inf where none.
    rtol : relative error of σ_max to certify
    max_depth : Krylov blocks before the exact σ_max is computed instead

    Returns
    -------
    sigma : (M,) σ_max(P) / e^{log_s}; 0 for a zero matrix
    upper : (M,) certified upper bound on σ_max(P) / e^{log_s}
    U : (M, r, p) warm start for the next, nearby matrix
    log_s : (M,) ln of the scale divided out of P (0 unless P has entries near
        overflow or underflow)

    Notes
    -----
    Rayleigh–Ritz of A = P Pᵀ on the block Krylov space
    span(U, A U, A² U, …) gives Ritz values θ_1 ≥ θ_2 ≥ … with residuals
    ρ_i = ‖A y_i − θ_i y_i‖ (Parlett, *The Symmetric Eigenvalue Problem*,
    ch. 11). With λ_1 = σ_max²:

    * θ_1 ≤ λ_1 (Poincaré), so the estimate never overshoots;
    * λ_1 ≤ tr A − Σ_{i≥2} θ_i, since every λ_i ≥ θ_i;
    * λ_2 ≤ α = min(θ_2 + ρ_2, tr A − θ_1 − Σ_{i≥3} θ_i) (the first term
      when the eigenvalue within ρ_2 of θ_2 is λ_2, the second always), and
      then, if θ_1 > α, λ_1 ≤ θ_1 + ρ_1² / (θ_1 − α) (Kato–Temple);
    * σ_max ≤ ``prior``.

    A matrix is done when the smallest of these upper bounds is within
    2·rtol of θ_1 (rtol in σ). One more block is added while it is not; after
    ``max_depth`` blocks (a nearly repeated σ_max, or a start block that
    misses the top direction) it gets the exact σ_max² = λ_max(P Pᵀ). The next start block is
    one power step, A y_i / θ_i, on the top p Ritz vectors.
    """
    M, r, p = U.shape
    max_depth = max(1, min(max_depth, r // p))          # the Krylov basis has at most r columns
    fro2 = np.einsum("mij,mij->m", P, P)
    log_s = np.zeros(M)
    prior = np.full(M, np.inf) if prior is None else np.asarray(prior, dtype=float).copy()
    wild = ~((fro2 > 1e-280) & (fro2 < 1e280))
    if wild.any():           # entries near over/underflow: scale them to ≤ 1 first
        P = P.copy()
        P[wild], log_s[wild] = renormalise(P[wild], log_s[wild])
        fro2[wild] = np.einsum("mij,mij->m", P[wild], P[wild])
        prior[wild] /= np.exp(log_s[wild])
    # Iterate on A / ‖P‖_F² (trace 1), so Ritz values, residuals and their squares
    # stay O(1) (no underflow to a falsely certified 0) whatever the scale of P.
    inv_norm = 1 / np.sqrt(np.where(fro2 > 0, fro2, 1.0))
    theta, upper = np.zeros(M), np.zeros(M)
    U_next = U.copy()
    todo = np.flatnonzero(fro2 > 0)        # a zero product has σ_max = 0 exactly
    Q, AQ, last_gap = U[todo], None, np.full(todo.size, np.inf)
    exact = []                             # items given up on: exact λ_max(P Pᵀ)
    for depth in range(1, (max_depth + 1) if todo.size else 1):
        AQ_new = _gram_times(P, todo, Q[:, :, -p:], inv_norm[todo])
        AQ = AQ_new if AQ is None else np.concatenate([AQ, AQ_new], axis=2)
        H = Q.transpose(0, 2, 1) @ AQ
        lam, S = np.linalg.eigh((H + H.transpose(0, 2, 1)) / 2)
        lam = np.maximum(lam[:, ::-1], 0.0)                         # θ_1 ≥ θ_2 ≥ … ≥ 0
        S = np.ascontiguousarray(S[:, :, :-p - 1:-1])               # top p Ritz vectors (BLAS-able)
        X, AX = Q @ S, AQ @ S
        res = np.linalg.norm(AX[:, :, :2] - X[:, :, :2] * lam[:, None, :2], axis=1)
        lam_up = ritz_upper_bound(lam, res, 1.0, prior[todo] * inv_norm[todo])
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = (lam_up - lam[:, 0]) / lam[:, 0]
            # Blocks still needed if the bound keeps shrinking at its last rate.
            need = np.log(2 * rtol / gap) / np.log(gap / last_gap)
        done = gap <= 2 * rtol
        hopeless = ~done & ((depth == max_depth) | (np.isfinite(need) & (depth + need > max_depth + 0.5))
                            | (np.isfinite(last_gap) & (gap >= last_gap)))
        stop = done | hopeless
        if stop.any():
            idx = todo[stop]
            theta[idx], upper[idx] = lam[stop, 0] * fro2[idx], lam_up[stop] * fro2[idx]
            U_next[idx] = power_step(X[stop], AX[stop], lam[stop, :p])
            exact.append(todo[hopeless])
        if stop.all():
            break
        keep = ~stop
        todo, Q, AQ, last_gap = todo[keep], Q[keep], AQ[keep], gap[keep]
        Q = np.concatenate([Q, next_block(Q, AQ[:, :, -p:])], axis=2)
    exact = np.concatenate(exact) if exact else []
    if len(exact):                         # not certified: exact σ_max² as λ_max(P Pᵀ)
        theta[exact] = upper[exact] = largest_gram_eigenvalue(P[exact])
    return np.sqrt(theta), np.sqrt(upper), U_next, log_s


def _gram_times(P: np.ndarray, rows: np.ndarray, V: np.ndarray, c: np.ndarray) -> np.ndarray:
    """c_i² P_i P_iᵀ V_i for i in ``rows``: (len(rows), r, p), without copying P[rows].

    Each factor c_i is applied to one thin product, so with c_i = 1/‖P_i‖_F
    nothing of the size of ‖P_i‖² is ever formed.
    """
    c = c[:, None, None]
    if rows.size == len(P):
        return (P @ ((P.transpose(0, 2, 1) @ V) * c)) * c
    return np.stack([(P[i] @ ((P[i].T @ v) * ci)) * ci for i, v, ci in zip(rows, V, c)])


def ritz_upper_bound(lam: np.ndarray, res: np.ndarray, tr: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Upper bound on λ_1 from Ritz values and residuals (see :func:`top_singular_values`).

    lam : (M, k) Ritz values θ_1 ≥ … ≥ θ_k of A = P Pᵀ; res : (M, 2) residuals
    ρ_1, ρ_2; tr : (M,) or scalar, tr A = ‖P‖_F²; prior : (M,) known bound on σ_max.
    """
    total = lam.sum(axis=1)
    with np.errstate(over="ignore"):                                # a huge prior bounds nothing
        bound = np.minimum(tr - total + lam[:, 0], prior ** 2)      # trace bound, prior
    if lam.shape[1] > 1:
        alpha = tr - total + lam[:, 1]          # λ_2 ≤ tr A − θ_1 − Σ_{i≥3} θ_i
        gap = lam[:, 0] - alpha
        with np.errstate(divide="ignore", invalid="ignore"):
            kato_temple = np.where(gap > 0, lam[:, 0] + res[:, 0] ** 2 / gap, np.inf)
        bound = np.minimum(bound, kato_temple)
    return np.maximum(bound, lam[:, 0])


def power_step(X: np.ndarray, AX: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """A y_i / θ_i, one power step on Ritz vectors y_i: (M, r, p), not orthonormalised.

    The caller orthonormalises it once, after swapping in a random column.
    Dividing by θ_i keeps the columns near orthonormal, so the small ones keep
    their direction; a column with θ_i ≤ 1e-8 θ_1, where A y_i is mostly
    rounding error, keeps y_i.
    """
    big = lam > 1e-8 * lam[:, :1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(big[:, None, :], AX / np.where(big, lam, 1.0)[:, None, :], X)


def next_block(Q: np.ndarray, AQ_last: np.ndarray) -> np.ndarray:
    """The next orthonormal Krylov block: A Q_last with span(Q) projected out."""
    return orthonormal_basis(AQ_last, Q)


def orthonormal_basis(Z: np.ndarray, Q: np.ndarray | None = None) -> np.ndarray:
    """Orthonormal columns spanning Z (M, r, k), orthogonal to span(Q) if given.

    Gram–Schmidt against Q twice ("twice is enough"), then Householder QR.
    When Z is nearly rank-deficient or nearly inside span(Q) — a low-rank
    product (ReLU units off) — the columns left after Gram–Schmidt are mostly
    rounding error and need not be orthogonal to Q, so Householder QR of
    [Q, Z] is used instead: the Rayleigh–Ritz bounds need an exactly
    orthonormal basis, not a Krylov one.
    """
    W = Z
    if Q is not None:
        for _ in range(2):
            W = W - Q @ (Q.transpose(0, 2, 1) @ W)
    with np.errstate(invalid="ignore"):
        basis, R = np.linalg.qr(W)
    if Q is None:
        return basis
    # |R_ii| is the part of column i new to Q and to the columns before it.
    new = np.abs(np.diagonal(R, axis1=1, axis2=2))
    if not np.all(new > 1e-6 * np.linalg.norm(Z, axis=1)):
        return np.linalg.qr(np.concatenate([Q, Z], axis=2)).Q[:, :, Q.shape[2]:]
    # basis = W R⁻¹ multiplies what is left of Q in W by up to cond(R) (1e6 passes the test
    # above): project once more where that leaves more than ORTHO_TOL, as the bounds assume 0.
    leak = Q.transpose(0, 2, 1) @ basis
    bad = np.abs(leak).max(axis=(1, 2)) > ORTHO_TOL
    if bad.any():
        basis[bad] = np.linalg.qr(basis[bad] - Q[bad] @ leak[bad]).Q
    return basis


def renormalise(P: np.ndarray, log_scale: np.ndarray):
    """Divide each matrix of the batch by its largest |entry|; carry the log.

    A zero matrix keeps scale 1 (its norm is exactly 0 and stays 0).
    """
    s = np.max(np.abs(P), axis=(1, 2))
    s = np.where(s > 0, s, 1.0)
    return P / s[:, None, None], log_scale + np.log(s)


def largest_gram_eigenvalue(P: np.ndarray) -> np.ndarray:
    """σ_max² of each matrix in a batch (M, r, r) as the top eigenvalue of P Pᵀ.

    Exact like an SVD (backward stable: relative error ~ε in σ_max²) but
    cheaper: from r = EVR_MIN on, LAPACK's MRRR solver (``evr``) computes
    only the top eigenvalue of the tridiagonal form (~1.3–2× faster than the
    SVD at r = 96–128); below, one batched call for all eigenvalues has less
    overhead (~1.3× faster than the SVD at r = 32–64).
    """
    r = P.shape[-1]
    P, log_s = renormalise(P, np.zeros(len(P)))  # entries ≤ 1: squares stay clear of underflow
    gram = P @ P.transpose(0, 2, 1)
    if r < EVR_MIN:
        top = np.linalg.eigvalsh(gram)[:, -1]
    else:
        top = np.array([scipy.linalg.eigh(g, eigvals_only=True, subset_by_index=[r - 1, r - 1],
                                          driver="evr", check_finite=False)[0] for g in gram])
    return np.maximum(top, 0.0) * np.exp(2 * log_s)


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
