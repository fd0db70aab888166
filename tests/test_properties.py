"""Invariants over random networks (hypothesis): the bound, norm preservation, log space."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradlab as gl
from conftest import dense_product

SETTINGS = settings(max_examples=25, deadline=None)


@st.composite
def networks(draw, activations=tuple(gl.ACTIVATIONS), inits=("gaussian", "orthogonal", "identity")):
    """A random small RNN, its inputs and a forward trace."""
    n = draw(st.integers(1, 6))
    d = draw(st.integers(1, 3))
    B = draw(st.integers(1, 2))
    T = draw(st.integers(1, 10))
    activation = draw(st.sampled_from(activations))
    init = draw(st.sampled_from(inits))
    radius = draw(st.floats(0.1, 3.0))
    scale_by = draw(st.sampled_from(["radius", "sigma_max"]))
    input_scale = draw(st.floats(0.1, 3.0))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    p = gl.init_params(n, d, init=init, radius=radius, rng=rng, scale_by=scale_by, input_scale=input_scale)
    p = p.replace(b_h=rng.standard_normal(n))
    x = rng.standard_normal((B, T, d))
    return p, gl.forward(p, x, activation)


@SETTINGS
@given(networks())
def test_bound_holds_for_every_pair(net):
    """‖∂h_t/∂h_k‖₂ ≤ (σ_max γ_h)^(t−k) for every t > k (Pascanu et al. 2013)."""
    p, tr = net
    jn = gl.jacobian_norms(tr, "all")
    log_bound = jn.lag * np.log(gl.sigma_max(p.W_hh) * tr.activation.gamma)
    slack = 1e-10 * (1 + np.abs(log_bound))  # rounding only: the bound is tight for ρ·orthogonal, linear
    assert np.all(jn.log_norm <= log_bound + slack)


@SETTINGS
@given(n=st.integers(1, 8), T=st.integers(1, 30), B=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_orthogonal_linear_rnn_keeps_every_norm_at_one(n, T, B, seed):
    rng = np.random.default_rng(seed)
    p = gl.init_params(n, 2, init="orthogonal", radius=1.0, rng=rng)
    tr = gl.forward(p, rng.standard_normal((B, T, 2)), "linear")
    jn = gl.jacobian_norms(tr, "all")
    np.testing.assert_allclose(jn.log_norm, 0.0, atol=1e-12)


@SETTINGS
@given(networks())
def test_log_space_norms_equal_direct_products(net):
    p, tr = net
    jn = gl.jacobian_norms(tr, "all")
    for i, (t, k) in enumerate(zip(jn.t, jn.k)):
        for b in range(tr.B):
            direct = np.linalg.norm(dense_product(p.W_hh, tr.dphi[b], t, k), 2)
            if direct == 0:
                assert jn.log_norm[b, i] == -np.inf
            elif 1e-250 < direct < 1e250:  # where the direct product neither under- nor overflows
                assert np.exp(jn.log_norm[b, i]) == pytest.approx(direct, rel=1e-10)


@SETTINGS
@given(n=st.integers(1, 5), T=st.integers(1, 25), c=st.floats(0.05, 20.0), seed=st.integers(0, 2**32 - 1))
def test_scaling_W_adds_lag_log_c_in_a_linear_rnn(n, T, c, seed):
    """∂h_t/∂h_k = W^(t−k) for a linear RNN, so (cW)^(t−k) adds (t − k) ln c to every log-norm."""
    rng = np.random.default_rng(seed)
    p = gl.init_params(n, 1, radius=1.0, rng=rng)
    x = rng.standard_normal((1, T, 1))
    base = gl.jacobian_norms(gl.forward(p, x, "linear"), "all")
    scaled = gl.jacobian_norms(gl.forward(p.replace(W_hh=c * p.W_hh), x, "linear"), "all")
    np.testing.assert_allclose(scaled.log_norm, base.log_norm + base.lag * np.log(c),
                               atol=1e-10 * (1 + np.abs(base.lag * np.log(c)).max()))


@SETTINGS
@given(networks(activations=("tanh", "sigmoid", "linear")), st.integers(0, 12))
def test_truncated_bptt_is_exact_once_K_reaches_the_first_step(net, extra):
    p, tr = net
    B, T = tr.B, tr.T
    y = np.random.default_rng(T).standard_normal((B, T, p.m))
    full = gl.loss_and_grads(p, tr.x, y, tr.activation).grads
    trunc = gl.loss_and_grads(p, tr.x, y, tr.activation, truncate=T - 1 + extra).grads
    for name in gl.PARAM_NAMES:
        np.testing.assert_allclose(trunc[name], full[name], rtol=1e-12, atol=1e-14 * (1 + np.abs(full[name]).max()))
