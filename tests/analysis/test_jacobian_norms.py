"""Jacobian-product norms ‖∂h_t/∂h_k‖₂ in log space, against brute force."""
import warnings

import numpy as np
import pytest

import gradlab as gl
from gradlab.analysis.jacobian_norms import end_steps
from conftest import dense_product, make_model


def brute_force_norms(trace, t, k):
    """‖J_t … J_{k+1}‖₂ for every sequence: dense products and numpy.linalg.norm(P, 2)."""
    return np.array([np.linalg.norm(dense_product(trace.W_hh, trace.dphi[b], t, k), 2) for b in range(trace.B)])


@pytest.mark.parametrize("n", [5, 30])  # small and large states (σ_max may be found differently)
@pytest.mark.parametrize("pairs", ["last", "all", "stride:3"])
@pytest.mark.parametrize("activation", list(gl.ACTIVATIONS))
def test_log_norms_match_brute_force_dense_products(activation, pairs, n):
    p, x = make_model(activation, n=n, d=2, m=2, B=2, T=9, radius=1.4)
    tr = gl.forward(p, x, activation)
    jn = gl.jacobian_norms(tr, pairs)
    assert jn.log_norm.shape == (tr.B, jn.t.size)
    for i, (t, k) in enumerate(zip(jn.t, jn.k)):
        np.testing.assert_allclose(np.exp(jn.log_norm[:, i]), brute_force_norms(tr, t, k), rtol=1e-10)


@pytest.mark.parametrize("pairs, T, expected_ends", [
    ("last", 7, [7]),
    ("all", 7, [1, 2, 3, 4, 5, 6, 7]),
    ("stride:3", 7, [1, 4, 7]),
    ("stride:1", 4, [1, 2, 3, 4]),
    ("stride:10", 4, [4]),
])
def test_pairs_select_every_k_below_each_end_step(pairs, T, expected_ends):
    p, x = make_model("tanh", n=3, d=2, m=2, B=1, T=T)
    jn = gl.jacobian_norms(gl.forward(p, x), pairs)
    got = sorted(zip(jn.t.tolist(), jn.k.tolist()))
    assert got == sorted((t, k) for t in expected_ends for k in range(t))  # each pair exactly once
    np.testing.assert_array_equal(jn.lag, jn.t - jn.k)


@pytest.mark.parametrize("bad", ["first", "stride:0", "stride:-2", "stride:x", "stride:", ""])
def test_unknown_pairs_are_rejected_with_the_value(bad):
    with pytest.raises(gl.GradlabError, match=f"unknown pairs {bad!r}"):
        end_steps(bad, 10)


def linear_trace(W, T, B=1):
    """A linear RNN with zero input: every state is 0, every Jacobian is exactly W."""
    n = W.shape[0]
    p = gl.RNNParams(W_xh=np.zeros((n, 1)), W_hh=W, b_h=np.zeros(n), W_hy=np.zeros((1, n)), b_y=np.zeros(1))
    return gl.forward(p, np.zeros((B, T, 1)), "linear")


@pytest.mark.parametrize("n, T", [(4, 2000), (30, 1000)])
def test_exploding_product_of_2000_steps_stays_finite(n, T):
    """Radius 3: ‖W^2000‖ ≈ 3^2000 ≈ 10^954. The direct product overflows; the log-space one is exact."""
    radius = 3.0
    rng = np.random.default_rng(0)
    W_orth = gl.init_recurrent(n, "orthogonal", radius, rng)   # normal: ‖W^k‖ = 3^k exactly
    W_gauss = gl.init_recurrent(n, "gaussian", radius, rng)    # non-normal: ‖W^k‖^(1/k) → 3
    with np.errstate(over="raise"), pytest.raises(FloatingPointError, match="overflow"):
        np.linalg.matrix_power(W_gauss, T)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow, no invalid value, nothing
        orth = gl.jacobian_norms(linear_trace(W_orth, T), "last")
        gauss = gl.jacobian_norms(linear_trace(W_gauss, T), "last")
    assert np.all(np.isfinite(orth.log_norm)) and np.all(np.isfinite(gauss.log_norm))
    np.testing.assert_allclose(orth.log_norm[0], orth.lag * np.log(radius), rtol=1e-12)
    # Gelfand: ln‖W^k‖ / k → ln ρ; at k = 2000 the transient is a few nats out of ~2200.
    assert gauss.log_norm[0, -1] / T == pytest.approx(np.log(radius), abs=5e-3)
    # Where the direct power is still finite, the two agree.
    k = np.array([1, 10, 100, 500])
    direct = [np.linalg.norm(np.linalg.matrix_power(W_gauss, int(j)), 2) for j in k]
    np.testing.assert_allclose(gauss.log_norm[0, k - 1], np.log(direct), rtol=1e-10)


def test_vanishing_product_of_2000_steps_stays_finite():
    T = 2000
    W = gl.init_recurrent(4, "orthogonal", 1 / 3, np.random.default_rng(1))
    with np.errstate(under="ignore"):
        assert np.linalg.norm(np.linalg.matrix_power(W, T), 2) == 0.0  # 3^-2000 underflows to 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jn = gl.jacobian_norms(linear_trace(W, T), "last")
    np.testing.assert_allclose(jn.log_norm[0], -jn.lag * np.log(3), rtol=1e-12)


def test_exactly_zero_relu_products_are_minus_infinity_not_nan():
    """At step 3 every ReLU unit is off, so any product through J_3 is exactly 0."""
    n, T, off = 3, 6, 3
    rng = np.random.default_rng(2)
    p = gl.RNNParams(W_xh=10 * np.eye(n), W_hh=gl.init_recurrent(n, "gaussian", 0.9, rng),
                     b_h=np.zeros(n), W_hy=np.ones((1, n)), b_y=np.zeros(1))
    x = np.abs(rng.standard_normal((1, T, n))) + 0.5   # every unit on ...
    x[0, off - 1] = -100.0                              # ... except at step 3
    tr = gl.forward(p, x, "relu")
    assert np.all(tr.dphi[0, off - 1] == 0) and np.all(np.delete(tr.dphi[0], off - 1, axis=0) == 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jn = gl.jacobian_norms(tr, "all")
    through = (jn.k < off) & (jn.t >= off)              # J_t … J_{k+1} contains J_3
    assert not np.any(np.isnan(jn.log_norm))
    assert np.all(jn.log_norm[0, through] == -np.inf)
    assert np.all(np.isfinite(jn.log_norm[0, ~through]))
    rate = gl.fit_growth_rate(jn.lag, jn.log_norm)      # −inf values are left out of the fit
    assert np.isfinite(rate)


def test_fit_growth_rate_recovers_the_slope_of_a_line():
    lag = np.arange(1, 51)
    assert gl.fit_growth_rate(lag, 0.37 * lag - 2.0) == pytest.approx(0.37, rel=1e-12)
    # (B, P) values with a shared lag, and noise: least squares over all points.
    noise = np.random.default_rng(3).normal(0, 0.1, size=(4, lag.size))
    slope = gl.fit_growth_rate(lag, -0.2 * lag + 1.0 + noise)
    se = 0.1 / np.sqrt(4 * np.sum((lag - lag.mean()) ** 2))  # standard error of the slope
    assert abs(slope + 0.2) < 5 * se
    # −inf values (exactly-zero products) are left out, not fitted.
    y = 0.5 * lag.astype(float)
    y[::7] = -np.inf
    assert gl.fit_growth_rate(lag, y) == pytest.approx(0.5, rel=1e-12)


def test_fit_growth_rate_is_nan_with_fewer_than_two_lags():
    assert np.isnan(gl.fit_growth_rate(np.array([3, 3]), np.array([1.0, 2.0])))
    assert np.isnan(gl.fit_growth_rate(np.array([1, 2]), np.array([1.0, -np.inf])))


@pytest.mark.parametrize("radius", [0.5, 1.0, 1.7])
def test_linear_rnn_with_normal_W_grows_at_log_rho(radius):
    """W = ρ Q (Q orthogonal) is normal: ‖W^k‖ = ρ^k, so the growth rate is exactly ln ρ."""
    W = gl.init_recurrent(6, "orthogonal", radius, np.random.default_rng(4))
    jn = gl.jacobian_norms(linear_trace(W, 40, B=2), "all")
    np.testing.assert_allclose(jn.log_norm, np.broadcast_to(jn.lag * np.log(radius), jn.log_norm.shape),
                               atol=1e-11)
    assert gl.fit_growth_rate(jn.lag, jn.log_norm) == pytest.approx(np.log(radius), abs=1e-12)


def test_saturating_tanh_grows_slower_than_its_linearisation():
    """φ' ≤ 1 shrinks every factor: the tanh net's norms sit below the linear net's ρ^lag."""
    W = gl.init_recurrent(8, "orthogonal", 1.5, np.random.default_rng(5))
    p = gl.RNNParams(W_xh=np.eye(8)[:, :2], W_hh=W, b_h=np.zeros(8), W_hy=np.zeros((1, 8)), b_y=np.zeros(1))
    x = np.random.default_rng(6).standard_normal((1, 60, 2))
    jn = gl.jacobian_norms(gl.forward(p, x, "tanh"), "last")
    assert np.all(jn.log_norm[0] <= jn.lag * np.log(1.5) + 1e-12)
    assert gl.fit_growth_rate(jn.lag, jn.log_norm) < np.log(1.5) - 0.05
