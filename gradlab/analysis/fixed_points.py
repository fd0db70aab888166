"""Fixed and slow points of a recurrent cell under a constant input (Sussillo & Barak 2013).

With the input held at a constant x, one step of any cell is a map of the
state, s ↦ F(s, x) (:class:`gradlab.cells.base.Cell`; s is h for the RNN and
GRU, (h, C) for the LSTM). A *fixed point* s* has F(s*, x) = s*; a *slow
point* is where the speed

    q(s) = ½ ‖F(s, x) − s‖²,        ∇q(s) = (J(s) − I)ᵀ (F(s, x) − s),   J = ∂F/∂s,

has a small non-zero minimum. Linearised around either, the dynamics is
δ_t = J δ_{t−1}: discrete time, so a mode is stable when |λ| < 1.

Method (Sussillo & Barak 2013; Golub & Sussillo 2018, ``fixed-point-finder``)
--------------------------------------------------------------------------
1. **Starts** are states sampled from recorded trajectories, optionally
   with Gaussian noise (:func:`sample_starts`).
2. **Joint minimisation.** Σ_b q(s_b) over all B starts is separable, so its
   minimiser is every start's own minimiser, and one call
   ``cell.forward(params, x (B, 1, d), s0=S)`` evaluates F for all of them;
   the gradient is one vector-Jacobian product, ``trace.vjp(r, 1) − r`` with
   r = F(s) − s (no finite differences). scipy's L-BFGS-B minimises it.
3. **Newton polish.** Starts that reached q ≤ ``fixed_tol`` take up to
   ``newton_steps`` Newton steps on F(s) − s = 0, (J − I) δ = −r, each kept
   only where it lowers q, which locates fixed points to rounding
   (quasi-Newton stalls near q ~ 1e-20).
4. **Per start**, a status: ``fixed`` (q ≤ fixed_tol), ``slow``
   (fixed_tol < q ≤ slow_tol), ``not_converged`` (q > slow_tol) or
   ``non_finite`` (the optimiser left the finite numbers). Every start is
   reported and counted; none is dropped.
5. **De-duplication.** Fixed and slow points are taken in increasing q; one
   within Euclidean distance ``unique_tol`` of a point already kept joins it
   (``n_starts`` counts how many starts found each point).
6. **Stability** from the eigenvalues λ of J at each point:
   ``stable`` (all |λ| < 1), ``saddle`` (0 < n_unstable < s) or ``unstable``
   (every mode, a repeller); n_unstable = #{i : |λ_i| > 1}.
7. **PCA.** The principal axes of the recorded states (the trajectories the
   starts came from); points, and trajectories with :func:`trajectory_table`,
   are given in the top three.

Tables (:class:`FixedPoints`)
-----------------------------
* ``fixed_points``: ``point_id, kind, q, speed, n_starts, n_unstable,
  stability, max_abs_eigenvalue, pc1, pc2, pc3, s0 … s{s−1}``
  (kind ``fixed``/``slow``; speed = ‖F(s) − s‖ = √(2q); pcK is nan when the
  state has fewer than K dimensions).
* ``eigenvalues``: ``point_id, index, real, imag, abs`` (index 1 … s by
  decreasing |λ|).
* ``starts``: ``start_id, status, q, grad_norm, point_id, distance``
  (point_id −1 when the start found no point; distance moved from the start).

Cost: per L-BFGS iteration one forward step of B states and one vjp; per
point one dense J (s right-multiplies' worth) and an s × s eigenvalue problem.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from ..errors import GradlabError, check_positive_int, check_positive_number

if TYPE_CHECKING:
    from ..cells.base import Cell

STATUSES = ("fixed", "slow", "not_converged", "non_finite")
STABILITIES = ("stable", "saddle", "unstable")
N_COMPONENTS = 3


@dataclass(frozen=True)
class PCA:
    """Principal axes of recorded states: z = (s − mean) · componentsᵀ.

    Attributes
    ----------
    mean : (s,)
    components : (c, s), c = min(3, s, N): orthonormal rows by decreasing variance;
        each row's largest-magnitude entry is positive (a deterministic sign)
    explained : (c,) fraction of the total variance along each axis
    """

    mean: np.ndarray
    components: np.ndarray
    explained: np.ndarray

    def project(self, states: np.ndarray) -> np.ndarray:
        """Coordinates of states (..., s) on the axes, padded with nan to (..., 3)."""
        z = (np.asarray(states, dtype=np.float64) - self.mean) @ self.components.T
        pad = np.full(z.shape[:-1] + (N_COMPONENTS - z.shape[-1],), np.nan)
        return np.concatenate([z, pad], axis=-1)


def compute_pca(states: np.ndarray) -> PCA:
    """The top three principal axes of states (N, s) or (B, T + 1, s), by SVD of the centred data."""
    X = _as_rows(states, "states")
    mean = X.mean(axis=0)
    _, sv, Vt = np.linalg.svd(X - mean, full_matrices=False)
    c = min(N_COMPONENTS, Vt.shape[0])
    Vt = Vt[:c]
    signs = np.sign(Vt[np.arange(c), np.argmax(np.abs(Vt), axis=1)])
    Vt = Vt * np.where(signs == 0, 1.0, signs)[:, None]
    total = np.sum(sv * sv)
    explained = (sv[:c] ** 2) / total if total > 0 else np.zeros(c)
    return PCA(mean, Vt, explained)


@dataclass(frozen=True)
class FixedPoints:
    """What :func:`find_fixed_points` found.

    Attributes
    ----------
    fixed_points, eigenvalues, starts : pandas.DataFrame
        The tables of the module docstring.
    points : (U, s)
        The de-duplicated fixed and slow points, in ``point_id`` order.
    jacobians : (U, s, s)
        J at each point.
    pca : PCA
        The axes ``pc1 … pc3`` are taken along.
    final : (B, s)
        Where each start ended (after the optimiser and the Newton polish).
    x : (d,) float or int
        The constant input.
    message : str
        The optimiser's final message.
    iterations : int
        L-BFGS-B iterations (shared by all starts).
    counts : dict
        Number of starts per status (``fixed``, ``slow``, ``not_converged``, ``non_finite``).
    """

    fixed_points: pd.DataFrame
    eigenvalues: pd.DataFrame
    starts: pd.DataFrame
    points: np.ndarray
    jacobians: np.ndarray
    pca: PCA
    final: np.ndarray
    x: object
    message: str = ""
    iterations: int = 0
    counts: dict = field(default_factory=dict)


def sample_starts(states: np.ndarray, n_starts: int, rng: np.random.Generator, noise: float = 0.0) -> np.ndarray:
    """Initial guesses: ``n_starts`` recorded states, drawn uniformly, plus N(0, noise²) per coordinate.

    Parameters
    ----------
    states : (N, s) or (B, T + 1, s)
        Recorded states, e.g. ``trace.states()``.
    n_starts : int
        Drawn without replacement when n_starts ≤ N, with replacement otherwise.
    rng : numpy.random.Generator
    noise : float
        Standard deviation of the added noise (0: the states themselves).

    Returns
    -------
    (n_starts, s)
    """
    X = _as_rows(states, "states")
    check_positive_int(n_starts, "n_starts")
    if not (np.isfinite(noise) and noise >= 0):
        raise GradlabError(f"noise must be a non-negative number, got {noise!r}")
    rows = rng.choice(len(X), size=n_starts, replace=n_starts > len(X))
    starts = X[rows]
    if noise > 0:
        starts = starts + noise * rng.standard_normal(starts.shape)
    return starts


def find_fixed_points(cell: Cell, params: Any, x: np.ndarray | int, starts: np.ndarray,
                      states: np.ndarray | None = None, *,
                      fixed_tol: float = 1e-12, slow_tol: float = 1e-6, unique_tol: float = 1e-3,
                      max_iter: int = 2000, gtol: float = 1e-14, newton_steps: int = 5) -> FixedPoints:
    """Fixed and slow points of s ↦ F(s, x) from many starts (module docstring).

    Parameters
    ----------
    cell : Cell
        Anything whose ``forward(params, x, s0)`` records a trace with
        ``states()``, ``vjp(v, t)`` and ``jacobian(t)``
        (:class:`gradlab.cells.base.Cell`).
    params
        The cell's parameters (with input size ``params.d``).
    x : (d,) float, or int
        The constant input (a token id for token-input cells).
    starts : (B, s)
        Initial guesses (:func:`sample_starts`); all B are optimised in one batch.
    states : (N, s) or (B', T + 1, s), optional
        Recorded states for the principal axes (default: the starts).
    fixed_tol, slow_tol : float
        q thresholds of a fixed (q ≤ fixed_tol) and a slow (q ≤ slow_tol) point.
    unique_tol : float
        Points closer than this (Euclidean) are the same point.
    max_iter : int
        L-BFGS-B iterations (shared by all starts).
    gtol : float
        L-BFGS-B stops when every gradient component is below this.
    newton_steps : int
        Newton refinements of the fixed points (0: none).

    Returns
    -------
    FixedPoints

    Notes
    -----
    Minimises Σ_b q(s_b), q(s) = ½‖F(s, x) − s‖², with the exact gradient
    ∇q = (J − I)ᵀ(F(s, x) − s) (Sussillo & Barak 2013). A Newton
    step solves (J − I) δ = −(F(s, x) − s).

    Examples
    --------
    A linear RNN s ↦ W s + b has one fixed point, (I − W)⁻¹ b:

    >>> import numpy as np
    >>> from gradlab.cells.rnn import RNNCell, RNNParams
    >>> W, b = np.array([[0.5, 0.2], [0.0, -0.3]]), np.array([1.0, 2.0])
    >>> p = RNNParams(W_xh=np.zeros((2, 1)), W_hh=W, b_h=b, W_hy=np.zeros((1, 2)), b_y=np.zeros(1))
    >>> rng = np.random.default_rng(0)
    >>> fp = find_fixed_points(RNNCell("linear"), p, np.zeros(1), rng.standard_normal((8, 2)))
    >>> fp.fixed_points[["point_id", "kind", "n_starts", "stability"]].to_dict("records")
    [{'point_id': 0, 'kind': 'fixed', 'n_starts': 8, 'stability': 'stable'}]
    >>> np.allclose(fp.points[0], np.linalg.solve(np.eye(2) - W, b), rtol=0, atol=1e-12)
    True
    """
    for name, value in (("fixed_tol", fixed_tol), ("slow_tol", slow_tol), ("unique_tol", unique_tol),
                        ("gtol", gtol)):
        check_positive_number(value, name)
    if slow_tol < fixed_tol:
        raise GradlabError(f"slow_tol must be at least fixed_tol = {fixed_tol!r}, got {slow_tol!r}")
    check_positive_int(max_iter, "max_iter")
    check_positive_int(newton_steps, "newton_steps", minimum=0)
    x_one = _constant_input(x, params)
    s = cell.forward(params, _repeat(x_one, 1)).state_size
    if np.ndim(starts) != 2 or np.shape(starts)[1] != s or np.shape(starts)[0] < 1:
        raise GradlabError(f"starts must have shape (B, {s}), got {np.shape(starts)}")
    S0 = _as_rows(starts, "starts", s)
    pca = compute_pca(S0 if states is None else _as_rows(states, "states", s))
    B = len(S0)
    X = _repeat(x_one, B)
    q, grad = _speed_and_gradient(cell, params, X, S0)
    # a start where the very first step is not finite is reported as such, and kept out of
    # the joint objective (whose sum it would make non-finite for every start)
    active = np.flatnonzero(np.isfinite(q) & np.all(np.isfinite(grad), axis=1))
    S = S0.copy()
    message, iterations = "no finite start", 0
    if active.size:
        S[active], message, iterations = _minimise(cell, params, x_one, S0[active], max_iter, gtol)
        q[active], grad[active] = _speed_and_gradient(cell, params, _repeat(x_one, active.size), S[active])
    S, q, grad = _newton_polish(cell, params, x_one, S, q, grad, fixed_tol, newton_steps)

    finite = np.isfinite(q) & np.all(np.isfinite(S), axis=1)
    status = np.where(~finite, "non_finite",
                      np.where(q <= fixed_tol, "fixed", np.where(q <= slow_tol, "slow", "not_converged")))
    point_of, reps = _deduplicate(S, q, status, unique_tol)
    points = S[reps]
    jac = _jacobians(cell, params, x_one, points, s)
    eig = np.linalg.eigvals(jac) if len(points) else np.zeros((0, s), complex)
    order = np.argsort(-np.abs(eig), axis=1, kind="stable")
    eig = np.take_along_axis(eig, order, axis=1)

    fixed_points = _points_table(points, q[reps], status[reps], point_of, eig, pca)
    eigen_table = pd.DataFrame({
        "point_id": np.repeat(np.arange(len(points)), s), "index": np.tile(np.arange(1, s + 1), len(points)),
        "real": eig.real.ravel(), "imag": eig.imag.ravel(), "abs": np.abs(eig).ravel()})
    with np.errstate(all="ignore"):
        distance = np.linalg.norm(S - S0, axis=1)
    start_table = pd.DataFrame({"start_id": np.arange(B), "status": status, "q": q,
                                "grad_norm": np.linalg.norm(grad, axis=1), "point_id": point_of,
                                "distance": distance})
    counts = {k: int(np.sum(status == k)) for k in STATUSES}
    return FixedPoints(fixed_points, eigen_table, start_table, points, jac, pca, S, x_one, message, iterations,
                       counts)


def fixed_point_analysis(cell: Cell, params: Any, x_record: np.ndarray, x: np.ndarray | int, n_starts: int,
                         rng: np.random.Generator, noise: float = 0.0, s0: np.ndarray | None = None,
                         **options: Any) -> tuple[FixedPoints, pd.DataFrame]:
    """Record trajectories on ``x_record``, draw starts from them and find the fixed points under ``x``.

    Parameters
    ----------
    cell, params
        As for :func:`find_fixed_points`.
    x_record : (B, T, d) float or (B, T) int
        Inputs whose trajectories (states s_0 … s_T) give the starts and the PCA axes.
    x : (d,) float, or int
        The constant input of the fixed-point search (e.g. zeros: no pulse).
    n_starts : int
    rng : numpy.random.Generator
        Draws the starts and their noise.
    noise : float
        Standard deviation of the noise added to the starts.
    s0 : (B, s), optional
        Initial state of the recording.
    **options
        Passed to :func:`find_fixed_points`.

    Returns
    -------
    (FixedPoints, trajectories) where trajectories is :func:`trajectory_table`
    of the recorded states.
    """
    states = cell.forward(params, x_record, s0).states()
    starts = sample_starts(states, n_starts, rng, noise)
    result = find_fixed_points(cell, params, x, starts, states, **options)
    return result, trajectory_table(states, result.pca)


def trajectory_table(states: np.ndarray, pca: PCA) -> pd.DataFrame:
    """Recorded states (B, T + 1, s) on the principal axes: ``sequence, t, pc1, pc2, pc3``."""
    states = np.asarray(states, dtype=np.float64)
    if states.ndim != 3:
        raise GradlabError(f"states must have shape (B, T + 1, s), got {states.shape}")
    B, T1, _ = states.shape
    z = pca.project(states).reshape(B * T1, N_COMPONENTS)
    return pd.DataFrame({"sequence": np.repeat(np.arange(B), T1), "t": np.tile(np.arange(T1), B),
                         "pc1": z[:, 0], "pc2": z[:, 1], "pc3": z[:, 2]})


# ---------------------------------------------------------------- helpers

def _constant_input(x, params):
    """x as a (d,) float vector, or an int token id in [0, d)."""
    d = params.d
    arr = np.asarray(x)
    if np.issubdtype(arr.dtype, np.integer) and arr.ndim == 0:
        if not 0 <= int(arr) < d:
            raise GradlabError(f"constant token input must lie in [0, {d}), got {int(arr)}")
        return int(arr)
    arr = np.asarray(x, dtype=np.float64)
    if arr.shape != (d,):
        raise GradlabError(f"constant input x must have shape ({d},), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise GradlabError("constant input x contains non-finite values (nan or inf)")
    return arr


def _repeat(x_one, B: int) -> np.ndarray:
    """The constant input for one step of B states: (B, 1, d) floats or (B, 1) token ids."""
    if isinstance(x_one, int):
        return np.full((B, 1), x_one, dtype=np.int64)
    return np.broadcast_to(x_one, (B, 1, x_one.shape[0])).copy()


def _as_rows(states, name: str, s: int | None = None) -> np.ndarray:
    """States (N, s) or (B, T + 1, s) as finite (N, s) rows, with a one-line error otherwise."""
    X = np.asarray(states, dtype=np.float64)
    if X.ndim == 3:
        X = X.reshape(-1, X.shape[-1])
    want = f"(N, {s})" if s is not None else "(N, s)"
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1 or (s is not None and X.shape[1] != s):
        raise GradlabError(f"{name} must have shape {want} (or (B, T + 1, s)), got {np.asarray(states).shape}")
    if not np.all(np.isfinite(X)):
        raise GradlabError(f"{name} contain non-finite values (nan or inf)")
    return X


def _minimise(cell, params, x_one, S0, max_iter, gtol):
    """L-BFGS-B on Σ_b q(s_b) from S0 (B, s): the minimiser, the optimiser's message and its iterations."""
    B, s = S0.shape
    X = _repeat(x_one, B)

    def objective(z):
        S = z.reshape(B, s)
        with np.errstate(all="ignore"):
            tr = cell.forward(params, X, S)
            r = tr.states()[:, 1] - S
            f = 0.5 * float(np.sum(r * r))
            grad = tr.vjp(r, 1) - r                    # ∇q = (J − I)ᵀ r, as a row: r J − r
        if not (np.isfinite(f) and np.all(np.isfinite(grad))):
            return np.inf, np.zeros_like(z)            # the line search steps back
        return f, grad.ravel()

    with np.errstate(all="ignore"):
        opt = minimize(objective, S0.ravel(), jac=True, method="L-BFGS-B",
                       options={"maxiter": max_iter, "maxfun": 4 * max_iter, "ftol": 0.0, "gtol": gtol,
                                "maxcor": 20})
    return opt.x.reshape(B, s), str(opt.message), int(opt.nit)


def _speed_and_gradient(cell, params, X, S):
    """q(s_b) (B,) and ∇q(s_b) (B, s); non-finite where the step overflowed."""
    with np.errstate(all="ignore"):
        tr = cell.forward(params, X, np.nan_to_num(S))
        r = tr.states()[:, 1] - S
        q = 0.5 * np.sum(r * r, axis=1)
        grad = tr.vjp(np.nan_to_num(r), 1) - r
    bad = ~np.all(np.isfinite(S), axis=1)
    q[bad] = np.nan
    return q, grad


def _newton_polish(cell, params, x_one, S, q, grad, fixed_tol, steps):
    """Newton steps (J − I) δ = −(F(s) − s) on the starts with q ≤ fixed_tol, kept where q falls."""
    S, q, grad = S.copy(), q.copy(), grad.copy()
    idx = np.flatnonzero(np.isfinite(q) & (q <= fixed_tol) & (q > 0))
    s = S.shape[1]
    for _ in range(steps):
        if idx.size == 0:
            break
        X = _repeat(x_one, idx.size)
        with np.errstate(all="ignore"):
            tr = cell.forward(params, X, S[idx])
            r = tr.states()[:, 1] - S[idx]
            A = tr.jacobian(1) - np.eye(s)
            delta = _solve_each(A, -r)
        trial = S[idx] + delta
        q_new, g_new = _speed_and_gradient(cell, params, X, trial)
        better = np.isfinite(q_new) & (q_new < q[idx])
        S[idx[better]], q[idx[better]], grad[idx[better]] = trial[better], q_new[better], g_new[better]
        idx = idx[better & (q_new > 0)]
    return S, q, grad


def _solve_each(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve A_i δ_i = b_i for each i; a singular A_i gives δ_i = nan (the step is then refused)."""
    try:
        return np.linalg.solve(A, b[..., None])[..., 0]
    except np.linalg.LinAlgError:
        out = np.full(b.shape, np.nan)
        for i in range(len(A)):
            try:
                out[i] = np.linalg.solve(A[i], b[i])
            except np.linalg.LinAlgError:
                pass
        return out


def _deduplicate(S, q, status, tol):
    """point_id of each start (−1 for none) and the start index representing each point, in q order."""
    point_of = np.full(len(S), -1)
    reps: list[int] = []
    candidates = np.flatnonzero((status == "fixed") | (status == "slow"))
    for b in candidates[np.argsort(q[candidates], kind="stable")]:
        if reps:
            dist = np.linalg.norm(S[reps] - S[b], axis=1)
            j = int(np.argmin(dist))
            if dist[j] <= tol:
                point_of[b] = j
                continue
        point_of[b] = len(reps)
        reps.append(int(b))
    return point_of, np.array(reps, dtype=int)


def _jacobians(cell, params, x_one, points, s) -> np.ndarray:
    if len(points) == 0:
        return np.zeros((0, s, s))
    return cell.forward(params, _repeat(x_one, len(points)), points).jacobian(1)


def _points_table(points, q, status, point_of, eig, pca) -> pd.DataFrame:
    U, s = points.shape if points.ndim == 2 else (0, eig.shape[1])
    mod = np.abs(eig)
    n_unstable = np.sum(mod > 1, axis=1)
    stability = np.where(n_unstable == 0, "stable", np.where(n_unstable < s, "saddle", "unstable"))
    z = pca.project(points) if U else np.zeros((0, N_COMPONENTS))
    table = pd.DataFrame({
        "point_id": np.arange(U), "kind": status, "q": q, "speed": np.sqrt(2 * q),
        "n_starts": np.bincount(point_of[point_of >= 0], minlength=U)[:U] if U else np.zeros(0, int),
        "n_unstable": n_unstable, "stability": stability,
        "max_abs_eigenvalue": mod.max(axis=1) if U else np.zeros(0),
        "pc1": z[:, 0], "pc2": z[:, 1], "pc3": z[:, 2]})
    coords = pd.DataFrame(points.reshape(U, s), columns=[f"s{i}" for i in range(s)])
    return pd.concat([table, coords], axis=1)
