"""Mean-field theory of a random RNN: fixed-point variance q*, χ₁ and the largest Lyapunov exponent.

Network (Poole et al. 2016; Schoenholz et al. 2017, applied to a recurrent
weight matrix as in Sompolinsky, Crisanti & Sommers 1988)::

    a_t = W_hh h_{t−1} + W_xh x_t + b,    h_t = φ(a_t),
    (W_hh)_ij ~ N(0, g²/n) i.i.d.,   b_i ~ N(0, σ_b²),   Var(W_xh x_t)_i = σ_x².

For large n the pre-activations a_{t,i} across units are Gaussian with mean 0
(W_hh has mean zero, whatever the mean of h) and variance

    q_t = g² · (1/n) Σ_j h_{t−1,j}² + σ_b² + σ_x²  =  g² E_z[φ(√q_{t−1} z)²] + σ_b² + σ_x²,

z ~ N(0, 1). Note E[φ²] = Var φ + (E φ)²: the *mean* of h enters. For sigmoid
(φ(0) = ½) most of q is that mean, acting as a per-unit offset
(Σ_j W_ij)·E[φ] which is frozen in time but, across units, Gaussian with the
same variance — which is all χ₁ needs. The fixed point q* and

    χ₁ = g² E_z[φ'(√q* z)²],        λ = ½ ln χ₁

give the mean-field largest Lyapunov exponent λ (nats per step): a tangent
vector's squared norm is multiplied by (1/n) Σ_i φ'(a_i)² g² ≈ χ₁ per step.
λ < 0 is the ordered phase (gradients vanish), λ > 0 chaos (they explode);
the transition is where χ₁(q*) = 1 (tanh: g = 1; ReLU: g = √2).

Expectations E_z[f(√q z)] are computed by composite Gauss–Legendre
quadrature in z over [−10, 10] (the Gaussian tail beyond holds < 2e-23 of
the mass), with 16 nodes per panel, panel width min(½, 1/√q) and a panel edge
at z = 0. Plain Gauss–Hermite quadrature fails here for large q: its nodes
near z = 0 are ~π/√N apart, while φ'(√q z)² for tanh or sigmoid is a bump of
width ~1/√q (at q* ≈ 65, sigmoid's transition region, 200 Gauss–Hermite
nodes are off by 1 %). Panels scaled to 1/√q keep the poles of tanh and
the logistic (at a distance ≥ π/(2√q) from the real z axis) several panel
half-widths away, so the error falls like 6^(−32) per panel; the edge at
z = 0 puts the ReLU kink on a panel boundary. The tests compare with
``scipy.integrate.quad``.

Two limits are taken explicitly:

* q* = 0 (tanh below g = 1, ReLU below √2, no input): χ₁ is the limit
  q → 0⁺ of g² E[φ'(√q z)²] — g² for tanh, g²/2 for ReLU (an infinitesimal
  state still has a random sign pattern, so half the units are on).
* q* = ∞ (ReLU or linear above the transition: the state grows without
  bound): φ' is scale-free for these, so χ₁ = g² E[φ'(z)²] at any q.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.optimize import brentq

from ..cells.activations import Activation, get_activation
from ..errors import GradlabError, check_positive_int

NODES = 16           # Gauss–Legendre nodes per panel
Z_MAX = 10.0         # integrate z over [−Z_MAX, Z_MAX]
MAX_PANELS = 1000    # per side: panels track 1/√q up to q = 1e4 (tanh/sigmoid up to g ≈ 100)
_Q_TINY = 1e-60      # q → 0⁺ stand-in (and the smallest q* told apart from 0): √q z keeps its sign
_Q_HUGE = 1e12       # past this an unbounded φ's q is taken as diverging


@lru_cache(maxsize=4)
def legendre_nodes(nodes: int = NODES) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes and weights on [0, 1]."""
    x, w = np.polynomial.legendre.leggauss(nodes)
    return (x + 1.0) / 2.0, w / 2.0


def gaussian_expectation(f, q: float, nodes: int = NODES) -> float:
    """E_z[f(√q z)] for z ~ N(0, 1): composite Gauss–Legendre, panels of width min(½, 1/√q).

    ``f`` is a vectorised function of the pre-activation a = √q z.
    """
    check_positive_int(nodes, "nodes")
    s = np.sqrt(q)
    panels_per_side = min(MAX_PANELS, int(np.ceil(Z_MAX / min(0.5, 1.0 / s))))
    width = Z_MAX / panels_per_side
    x, w = legendre_nodes(nodes)
    left = np.arange(-panels_per_side, panels_per_side) * width          # edges, one at z = 0
    z = (left[:, None] + width * x[None, :]).ravel()
    weights = (width * w[None, :] * np.ones_like(left)[:, None]).ravel() * np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)
    return float(weights @ f(s * z))


def variance_map(q: float, g: float, activation, sigma_b: float = 0.0, sigma_x: float = 0.0,
                 nodes: int = NODES) -> float:
    """One step of the variance recursion: g² E[φ(√q z)²] + σ_b² + σ_x²."""
    act = get_activation(activation)
    return g * g * gaussian_expectation(lambda a: act(a) ** 2, q, nodes) + sigma_b ** 2 + sigma_x ** 2


def fixed_point_variance(g: float, activation, sigma_b: float = 0.0, sigma_x: float = 0.0,
                         nodes: int = NODES) -> float:
    """q*, the fixed point of :func:`variance_map` that the recursion reaches from a large q.

    Returns 0 when the only fixed point is q = 0 and ``inf`` when q grows
    without bound (an unbounded φ above its transition).

    Notes
    -----
    For tanh, sigmoid, ReLU and linear, E[φ(√q z)²] increases with q, so the
    map F is increasing and iterating it from any q_hi with F(q_hi) < q_hi
    decreases monotonically to the largest fixed point below q_hi. Rather
    than iterate (which slows to a crawl near the transition: q_t ~ 1/t at
    tanh's g = 1), that root is bracketed on a geometric grid below q_hi and
    solved by Brent's method to machine precision.
    """
    act = get_activation(activation)
    _check_gain(g, sigma_b, sigma_x)
    F = lambda q: variance_map(q, g, act, sigma_b, sigma_x, nodes) - q  # noqa: E731
    q_hi = 1.0
    while F(q_hi) >= 0:
        q_hi *= 100.0
        if q_hi > _Q_HUGE:
            return float("inf")
    # Roots are sought of F(q) − 64 ε q: near q = 0 (tanh at g = 1) F(q) ≈ −2q² is below the
    # rounding of q itself and would otherwise yield spurious tiny roots.
    H = lambda q: F(q) - 64 * np.finfo(float).eps * q  # noqa: E731
    q_lo = q_hi
    while q_lo > _Q_TINY:
        q_next = q_lo / 16.0
        if H(q_next) > 0:
            if H(q_lo) == 0:
                return q_lo
            return float(brentq(H, q_next, q_lo, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500))
        q_lo = q_next
    return 0.0


def chi1(q: float, g: float, activation, nodes: int = NODES) -> float:
    """χ₁ = g² E[φ'(√q z)²], with the limits of the module docstring at q = 0 and q = ∞."""
    act = get_activation(activation)
    if q == 0:
        q = _Q_TINY
    elif not np.isfinite(q):
        q = 1.0
    return g * g * gaussian_expectation(lambda a: act.derivative(a) ** 2, q, nodes)


@dataclass(frozen=True)
class MeanField:
    """Mean-field prediction for one gain.

    Attributes
    ----------
    g : float
    q_star : float   fixed-point variance of the pre-activations (0 or inf at the limits)
    chi1 : float     g² E[φ'(√q* z)²]
    lyapunov : float ½ ln χ₁, nats per step
    """

    g: float
    q_star: float
    chi1: float
    lyapunov: float


def compute_mean_field(g: float, activation: str | Activation = "tanh", sigma_b: float = 0.0, sigma_x: float = 0.0,
               nodes: int = NODES) -> MeanField:
    """q*, χ₁ and the mean-field largest Lyapunov exponent λ = ½ ln χ₁.

    Parameters
    ----------
    g : float
        Gain: W_hh entries are N(0, g²/n).
    activation : str or Activation
    sigma_b, sigma_x : float
        Standard deviations of the bias and of the input drive per unit.
    nodes : int
        Gauss–Legendre nodes per panel.

    Examples
    --------
    >>> import gradlab as gl
    >>> gl.compute_mean_field(0.5, "tanh").lyapunov        # ordered: q* = 0, λ = ln g
    -0.6931471805599453
    >>> import math
    >>> math.isclose(gl.compute_mean_field(2.0, "relu").lyapunov, 0.5 * math.log(2.0))   # χ₁ = g²/2
    True
    """
    q = fixed_point_variance(g, activation, sigma_b, sigma_x, nodes)
    c = chi1(q, g, activation, nodes)
    with np.errstate(divide="ignore"):
        lam = 0.5 * float(np.log(c))
    return MeanField(float(g), q, c, lam)


def critical_gain(activation: str | Activation, sigma_b: float = 0.0, sigma_x: float = 0.0, g_max: float = 100.0,
                  nodes: int = NODES) -> float:
    """The gain g_c where χ₁(q*(g)) = 1: the order-to-chaos transition (tanh 1, ReLU √2).

    Found by Brent's method on ln χ₁ over (0, g_max]; nan when there is no
    transition there.
    """
    act = get_activation(activation)
    f = lambda g: np.log(compute_mean_field(g, act, sigma_b, sigma_x, nodes).chi1)  # noqa: E731
    lo, hi = 1e-3, g_max
    if not (f(lo) < 0 < f(hi)):
        return float("nan")
    return float(brentq(f, lo, hi, xtol=1e-12, maxiter=500))


def _check_gain(g, sigma_b, sigma_x):
    for name, value in (("g", g), ("sigma_b", sigma_b), ("sigma_x", sigma_x)):
        if not np.isfinite(value) or value < 0 or (name == "g" and value == 0):
            raise GradlabError(f"{name} must be a {'positive' if name == 'g' else 'non-negative'} number, got {value!r}")
