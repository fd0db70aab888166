"""Mean-field theory: quadrature against scipy.integrate.quad, the fixed point, the known closed
forms and transitions, and the variance of a simulated large network (with sigmoid's non-zero mean)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

import gradlab as gl
from gradlab.cells.activations import get_activation
from gradlab.analysis.mean_field import chi1, fixed_point_variance, gaussian_expectation, variance_map


def quad_expectation(f, q):
    """E_z[f(√q z)] by adaptive quadrature, z over [−12, 12] split at 0 (the ReLU kink)."""
    g = lambda z: f(np.sqrt(q) * np.array([z]))[0] * np.exp(-z * z / 2) / np.sqrt(2 * np.pi)  # noqa: E731
    return sum(quad(g, a, b, epsabs=0, epsrel=1e-13, limit=1000)[0] for a, b in ((-12, 0), (0, 12)))


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "relu"])
@pytest.mark.parametrize("q", [1e-6, 0.3, 1.0, 6.3, 65.0, 2500.0])
def test_quadrature_matches_scipy_quad(name, q):
    act = get_activation(name)
    for f in (lambda a: act(a) ** 2, lambda a: act.derivative(a) ** 2):
        ours, ref = gaussian_expectation(f, q), quad_expectation(f, q)
        assert ours == pytest.approx(ref, rel=1e-11, abs=1e-300)


@pytest.mark.parametrize("name,g", [("tanh", 1.5), ("tanh", 3.0), ("sigmoid", 2.0), ("sigmoid", 12.0)])
def test_fixed_point_is_a_fixed_point_and_where_iteration_goes(name, g):
    q = fixed_point_variance(g, name, sigma_b=0.1, sigma_x=0.2)
    assert variance_map(q, g, name, 0.1, 0.2) == pytest.approx(q, rel=1e-13)
    q_iter = 50.0
    for _ in range(2000):
        q_iter = variance_map(q_iter, g, name, 0.1, 0.2)
    assert q_iter == pytest.approx(q, rel=1e-9)


def test_closed_forms():
    # tanh below the transition: q* = 0, χ₁ = g², λ = ln g
    for g in (0.3, 0.7, 1.0):
        mf = gl.compute_mean_field(g, "tanh")
        assert mf.q_star == 0 and mf.lyapunov == pytest.approx(np.log(g), abs=1e-14)
    assert gl.compute_mean_field(1.2, "tanh").q_star > 0
    # ReLU: E[relu'²] = ½ at any q, so λ = ln g − ½ ln 2; q* = 0 below √2, ∞ above (no input)
    for g in (0.5, 1.0, 2.0, 3.0):
        mf = gl.compute_mean_field(g, "relu")
        assert mf.lyapunov == pytest.approx(np.log(g) - 0.5 * np.log(2), abs=1e-13)
        assert mf.q_star == (0.0 if g < np.sqrt(2) else np.inf)
    # ReLU with bias variance below the transition: q* = σ_b² / (1 − g²/2)
    assert gl.compute_mean_field(1.0, "relu", sigma_b=0.5).q_star == pytest.approx(0.25 / 0.5, rel=1e-12)
    # linear with input: q* = σ_x² / (1 − g²), χ₁ = g²
    mf = gl.compute_mean_field(0.6, "linear", sigma_x=1.0)
    assert mf.q_star == pytest.approx(1 / (1 - 0.36), rel=1e-12) and mf.chi1 == pytest.approx(0.36, rel=1e-13)


def test_transitions():
    assert gl.critical_gain("tanh") == pytest.approx(1.0, abs=1e-6)
    assert gl.critical_gain("relu") == pytest.approx(np.sqrt(2), abs=1e-10)
    gc = gl.critical_gain("sigmoid")
    assert chi1(fixed_point_variance(gc, "sigmoid"), gc, "sigmoid") == pytest.approx(1.0, abs=1e-10)
    assert gc == pytest.approx(independent_sigmoid_transition(), rel=1e-8)


def independent_sigmoid_transition():
    """g_c of sigmoid without gradlab's quadrature, fixed-point search or critical_gain.

    q*(g) is the one root of g² E[σ(√q z)²] − q (E[σ²] rises from ¼ to ½, so
    the root lies in [g²/4, g²/2]); χ₁ = g² E[σ'(√q* z)²]; g_c solves χ₁ = 1.
    Expectations by scipy.integrate.quad.
    """
    from scipy.optimize import brentq
    from scipy.special import expit

    def chi(g):
        q = brentq(lambda q: g * g * quad_expectation(lambda a: expit(a) ** 2, q) - q, g * g / 4, g * g / 2,
                   xtol=1e-14, rtol=1e-14)
        return g * g * quad_expectation(lambda a: (expit(a) * (1 - expit(a))) ** 2, q)
    return brentq(lambda g: chi(g) - 1, 5.0, 20.0, xtol=1e-12, rtol=1e-12)


def test_sigmoid_variance_includes_the_mean_of_h():
    """A simulated n = 2000 sigmoid network: (1/n)Σ a_i² settles at q* = g² E[σ²], not g² Var σ."""
    g, n = 2.0, 2000
    rng = np.random.default_rng(0)
    W = g * rng.standard_normal((n, n)) / np.sqrt(n)
    h = 1 / (1 + np.exp(-rng.standard_normal(n)))
    second = []
    for t in range(60):
        a = W @ h
        h = 1 / (1 + np.exp(-a))
        if t >= 30:
            second.append(np.mean(a * a))
    q_star = fixed_point_variance(g, "sigmoid")
    var_only = g * g * gaussian_expectation(lambda a: (1 / (1 + np.exp(-a)) - 0.5) ** 2, q_star)
    assert np.mean(second) == pytest.approx(q_star, rel=0.05)      # finite-n (quenched W) spread: a few %
    assert abs(np.mean(second) - var_only) > 0.5 * q_star


def test_bad_gain_is_named():
    with pytest.raises(gl.GradlabError, match="g must be a positive number, got -1"):
        gl.compute_mean_field(-1.0, "tanh")
    with pytest.raises(gl.GradlabError, match="unknown activation"):
        gl.compute_mean_field(1.0, "swish")
