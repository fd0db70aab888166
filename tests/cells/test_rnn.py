"""The cell, the forward pass and the Trace's step Jacobians."""
import numpy as np
import pytest

import gradlab as gl
from gradlab.cells.rnn import input_drive
from conftest import make_model

ACTIVATIONS = list(gl.ACTIVATIONS)


def make_trace(activation, tokens=False, B=2, T=5, n=4, d=3):
    p, x = make_model(activation, n, d, 2, B, T, tokens)
    return p, gl.forward(p, x, activation)


@pytest.mark.parametrize("tokens", [False, True])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_step_jacobian_matches_finite_differences(activation, tokens):
    """J_t = ∂h_t/∂h_{t−1}: perturb h_{t−1}, recompute one step with rnn_cell."""
    p, tr = make_trace(activation, tokens)
    act, U, eps = gl.get_activation(activation), input_drive(p.W_xh, tr.x), 1e-6
    for t in range(1, tr.T + 1):
        J = tr.jacobian(t)
        assert J.shape == (tr.B, tr.n, tr.n)
        fd = np.empty_like(J)
        for j in range(tr.n):
            e = np.zeros(tr.n)
            e[j] = eps
            h_plus = gl.rnn_cell(p.W_hh, p.b_h, act, tr.h[:, t - 1] + e, U[:, t - 1])[1]
            h_minus = gl.rnn_cell(p.W_hh, p.b_h, act, tr.h[:, t - 1] - e, U[:, t - 1])[1]
            fd[:, :, j] = (h_plus - h_minus) / (2 * eps)  # column j: ∂h_t/∂h_{t−1}[j]
        np.testing.assert_allclose(J, fd, rtol=0, atol=1e-8 * np.abs(J).max())


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_right_multiply_and_vjp_agree_with_dense_jacobian(activation):
    _, tr = make_trace(activation, B=3)
    rng = np.random.default_rng(1)
    for t in range(1, tr.T + 1):
        J = tr.jacobian(t)
        P = rng.standard_normal((tr.B, 2, tr.n))
        v = rng.standard_normal((tr.B, tr.n))
        np.testing.assert_allclose(tr.right_multiply(P, t), P @ J, rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(tr.vjp(v, t), np.einsum("bi,bij->bj", v, J), rtol=1e-13, atol=1e-14)


def test_jacobian_has_no_transpose():
    """diag(φ'(a_t)) W_hh, not W_hhᵀ diag(...): row i is scaled by φ'(a_t)[i]."""
    _, tr = make_trace("tanh")
    J = tr.jacobian(2)
    np.testing.assert_allclose(J[0], tr.dphi[0, 1][:, None] * tr.W_hh, rtol=1e-15)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_trace_records_consistent_states(activation):
    p, tr = make_trace(activation)
    act = gl.get_activation(activation)
    assert tr.h.shape == (tr.B, tr.T + 1, tr.n) and tr.a.shape == tr.dphi.shape == (tr.B, tr.T, tr.n)
    np.testing.assert_array_equal(tr.h[:, 0], 0.0)
    for t in range(1, tr.T + 1):  # a_t = W_hh h_{t-1} + W_xh x_t + b, written out per sequence
        for b in range(tr.B):
            a_t = p.W_hh @ tr.h[b, t - 1] + p.W_xh @ tr.x[b, t - 1] + p.b_h
            np.testing.assert_allclose(tr.a[b, t - 1], a_t, rtol=1e-13, atol=1e-14)
    np.testing.assert_array_equal(tr.h[:, 1:], act(tr.a))
    np.testing.assert_array_equal(tr.dphi, act.derivative(tr.a))


def test_token_inputs_equal_one_hot_inputs():
    """U x_t with a one-hot x_t is the column U[:, x_t] (the tutorial's language model)."""
    p, ids = make_model("tanh", 4, 6, 6, B=2, T=7, tokens=True)
    one_hot = np.eye(6)[ids]
    tr_ids, tr_hot = gl.forward(p, ids, "tanh"), gl.forward(p, one_hot, "tanh")
    np.testing.assert_allclose(tr_ids.h, tr_hot.h, rtol=1e-14, atol=1e-15)


def test_initial_state_is_used():
    rng = np.random.default_rng(4)
    p = make_model("tanh", 3, 2, 2, B=1, T=1)[0]
    x, h0 = rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 3))
    tr = gl.forward(p, x, "tanh", h0=h0)
    np.testing.assert_array_equal(tr.h[:, 0], h0)
    np.testing.assert_allclose(tr.h[:, 1], np.tanh(h0 @ p.W_hh.T + x[:, 0] @ p.W_xh.T + p.b_h), rtol=1e-14)


def test_unbatched_inputs_mean_one_sequence():
    rng = np.random.default_rng(5)
    p = make_model("tanh", 3, 2, 2, B=1, T=1)[0]
    x = rng.standard_normal((6, 2))
    np.testing.assert_array_equal(gl.forward(p, x).h, gl.forward(p, x[None]).h)
    ids = np.array([0, 1, 1, 0])
    np.testing.assert_array_equal(gl.forward(p, ids).h, gl.forward(p, ids[None]).h)


@pytest.mark.parametrize("x, message", [
    (np.zeros((2, 5, 3)), r"inputs must have shape \(T, 2\) or \(B, T, 2\), got \(2, 5, 3\)"),
    (np.zeros((2, 2, 5, 2)), r"got \(2, 2, 5, 2\)"),
    (np.array([[0, 1, 2]]), r"token ids must lie in \[0, 2\), got range \[0, 2\]"),
    (np.array([[-1, 0]]), r"got range \[-1, 0\]"),
    (np.zeros((1, 2, 3), dtype=int), r"token inputs must have shape \(T,\) or \(B, T\), got \(1, 2, 3\)"),
    (np.full((1, 3, 2), np.nan), r"non-finite"),
    (np.zeros((1, 0, 2)), r"empty"),
])
def test_bad_inputs_are_rejected_with_the_bad_value(x, message):
    p = make_model("tanh", 3, 2, 2, B=1, T=1)[0]
    with pytest.raises(gl.GradlabError, match=message):
        gl.forward(p, x)
