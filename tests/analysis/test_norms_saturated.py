"""‖∂h_t/∂h_k‖ when every unit is saturated: per-step Jacobian norms of 1e-13 and below.

A sigmoid RNN whose pre-activations all sit near −30 (or −60) has
φ'(a_t) ≈ 1e-13 (1e-26) at every step, so ‖∂h_t/∂h_k‖ falls by ~30 (60) nats
per step: a finite log-norm, e^-770 at lag 13, which the log-space product
must report like any other. The reference below is independent of
gradlab.analysis.jacobian_norms: dense J_t = diag(φ'(a_t)) W_hh multiplied one by one,
the product divided by its σ_max (full SVD) after every factor and the log of
the scale carried.

Both σ_max methods must get these right: the factors are divided by a bound
on their norm before they are multiplied (so neither an exploding nor a
saturated product leaves the float64 range within a group of lags), and
the Krylov iteration works on P Pᵀ / ‖P‖_F² (so squared Ritz residuals do
not underflow to a falsely certified 0). The same holds for per-step norms
of 1e±200, far beyond what a forward pass can produce.
"""
import numpy as np
import pytest

import gradlab as gl

def renormalised_log_norms(W, dphi, t):
    """ln‖J_t … J_{k+1}‖₂ for k = t−1 … 0 (lag 1 … t), renormalising the dense product after every factor."""
    P, log_scale, out = np.eye(W.shape[0]), 0.0, []
    for j in range(t, 0, -1):
        P = P @ (dphi[j - 1][:, None] * W)
        s = np.linalg.svd(P, compute_uv=False)[0]
        out.append(np.log(s) + log_scale if s > 0 else -np.inf)
        if s > 0:
            P, log_scale = P / s, log_scale + np.log(s)
    return np.array(out)


def saturated_sigmoid_trace(n, bias, T=40):
    rng = np.random.default_rng(0)
    p = gl.init_params(n, 2, radius=1.0, rng=rng).replace(b_h=np.full(n, bias))
    return gl.forward(p, rng.standard_normal((1, T, 2)), "sigmoid")


def check(trace, method):
    got = gl.jacobian_norms(trace, "last", method=method).log_norm[0]
    want = renormalised_log_norms(trace.W_hh, trace.dphi[0], trace.T)
    assert np.all(np.isfinite(want))                       # no product here is exactly zero
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=0)


@pytest.mark.parametrize("n, bias, method", [(40, -30.0, "svd"), (8, -60.0, "svd"), (40, -100.0, "svd"),
                                             (40, -30.0, "subspace"), (40, -30.0, "auto"),   # auto: n ≥ 16, mean lag 20.5
                                             (8, -60.0, "subspace"), (40, -100.0, "subspace")])
def test_norms_are_exact_on_saturated_networks(n, bias, method):
    check(saturated_sigmoid_trace(n, bias), method)


@pytest.mark.parametrize("method", ["svd", "subspace"])
@pytest.mark.parametrize("step_norm", [1e-200, 1e200])
def test_norms_are_exact_for_extreme_step_norms(method, step_norm):
    """J_t = diag(φ'_t) W_hh with ‖J_t‖ ~ 1e±200: a product of two already leaves float64."""
    rng = np.random.default_rng(1)
    n, T = 24, 30
    W = gl.init_recurrent(n, "gaussian", 1.0, rng)
    dphi = step_norm * rng.uniform(0.5, 1.0, (1, T, n))
    trace = gl.Trace(x=np.zeros((1, T, 1)), a=np.zeros((1, T, n)), h=np.zeros((1, T + 1, n)), dphi=dphi,
                     W_hh=W, activation=gl.get_activation("linear"))
    check(trace, method)
