"""Backpropagation through time against finite differences and the WildML tutorial.

* The exact gradient of every parameter agrees with central differences for
  every activation, loss, loss_steps and input kind.
* ∂L/∂h_k agrees with finite differences with respect to the state itself and
  with the log-space recurrence of :func:`gradlab.log_loss_grad_norms`, which
  stays finite where plain BPTT overflows or underflows.
* Truncated BPTT is the tutorial's ``bptt_truncate``: it equals the tutorial's
  own code (transcribed below from the seed text), equals the exact gradient
  for K ≥ T − 1 and differs from it for T > K + 1, and reproduces the failing
  gradient check a reader of the tutorial reported, to the printed digits.
"""
import itertools

import numpy as np
import pytest
from scipy.special import log_softmax, softmax

import gradlab as gl
from gradlab.analysis.bptt import output_errors
from gradlab.analysis.losses import loss_and_output_grad
from conftest import draw_targets, make_model

ACTIVATIONS = list(gl.ACTIVATIONS)
CASES = list(itertools.product(ACTIVATIONS, ["mse", "xent"], ["all", "last"], [False, True]))


def make_problem(activation, loss, loss_steps, tokens, n=3, d=3, m=3, B=2, T=5, seed=0):
    p, x = make_model(activation, n, d, m, B, T, tokens, seed)
    y = draw_targets(np.random.default_rng(seed), loss, loss_steps, B, T, m)
    return p, x, y


def assert_close_to_scale(g, ref, rel, name=""):
    """max|g − ref| ≤ rel · max|ref|: entrywise, judged on the gradient's scale."""
    scale = np.abs(ref).max()
    assert scale > 0, f"{name}: the reference gradient is zero, the test would prove nothing"
    err = np.abs(g - ref).max() / scale
    assert err <= rel, f"{name}: relative error {err:.3g} > {rel:g}"


@pytest.mark.parametrize("activation, loss, loss_steps, tokens", CASES)
def test_full_bptt_matches_finite_differences(activation, loss, loss_steps, tokens):
    p, x, y = make_problem(activation, loss, loss_steps, tokens)
    g = gl.loss_and_grads(p, x, y, activation, loss, loss_steps)
    fd = gl.finite_difference_grads(p, x, y, activation, loss, loss_steps)
    assert g.loss == pytest.approx(gl.loss_value(p, x, y, activation, loss, loss_steps), rel=1e-15)
    for name in gl.PARAM_NAMES:
        assert g.grads[name].shape == getattr(p, name).shape
        # Central differences with ε = 1e-5 are good to ~1e-10 of the scale here.
        assert_close_to_scale(g.grads[name], fd[name], 1e-7, name)


@pytest.mark.parametrize("loss", ["mse", "xent"])
@pytest.mark.parametrize("loss_steps", ["all", "last"])
def test_loss_is_the_documented_sum_over_steps_averaged_over_the_batch(loss, loss_steps):
    p, x, y = make_problem("tanh", loss, loss_steps, False, m=4, B=3, T=4)
    h = gl.forward(p, x, "tanh").h
    o = h[:, 1:] @ p.W_hy.T + p.b_y                     # (B, T, m), o_t = W_hy h_t + b_y
    if loss_steps == "last":
        o, y = o[:, -1:], y[:, None]
    if loss == "xent":                                   # −log softmax(o_t)[y_t]
        per_step = -np.take_along_axis(log_softmax(o, axis=-1), y[..., None], axis=-1)[..., 0]
    else:                                                # ‖o_t − y_t‖² / m
        per_step = np.mean((o - y) ** 2, axis=-1)
    expected = per_step.sum() / x.shape[0]
    assert gl.loss_value(p, x, y if loss_steps == "all" else y[:, 0], "tanh", loss, loss_steps) == \
        pytest.approx(expected, rel=1e-14)


def test_softmax_cross_entropy_gradient_is_prediction_minus_target():
    """∂L/∂o = ŷ − onehot(y) (Goodfellow et al. eq. 10.18), against the formula itself."""
    o = np.random.default_rng(0).standard_normal((5, 4)) * 3
    y = np.array([0, 3, 1, 1, 2])
    _, g = loss_and_output_grad(o, y, "xent")
    np.testing.assert_allclose(g, softmax(o, axis=-1) - np.eye(4)[y], rtol=1e-14, atol=1e-16)


def test_batch_gradient_is_the_mean_of_per_sequence_gradients():
    p, x, y = make_problem("tanh", "mse", "all", False, B=3)
    g = gl.loss_and_grads(p, x, y).grads
    singles = [gl.loss_and_grads(p, x[b:b + 1], y[b:b + 1]).grads for b in range(3)]
    for name in gl.PARAM_NAMES:
        np.testing.assert_allclose(g[name], np.mean([s[name] for s in singles], axis=0), rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------- ∂L/∂h_k

def loss_as_function_of_state(p, x, y, activation, loss, loss_steps, k, h_k):
    """The batch loss with h_k set to ``h_k`` and every later state recomputed from it.

    Losses at steps < k do not depend on h_k; the loss at step k depends on it
    through o_k only; steps k + 1 … T through the recurrence.
    """
    B, T = x.shape[:2]
    L = 0.0
    if k < T:
        L += gl.loss_value(p, x[:, k:], y[:, k:] if loss_steps == "all" else y, activation, loss, loss_steps, h0=h_k)
    if k >= 1 and (loss_steps == "all" or k == T):
        o_k = h_k @ p.W_hy.T + p.b_y
        L += loss_and_output_grad(o_k, y[:, k - 1] if loss_steps == "all" else y, loss)[0].sum() / B
    return L


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
@pytest.mark.parametrize("loss, loss_steps", [("mse", "all"), ("xent", "all"), ("mse", "last"), ("xent", "last")])
def test_dL_dh_matches_finite_differences_with_respect_to_each_state(activation, loss, loss_steps):
    p, x, y = make_problem(activation, loss, loss_steps, False, n=3, B=2, T=4)
    g = gl.loss_and_grads(p, x, y, activation, loss, loss_steps)
    h, eps = g.trace.h, 1e-5
    assert g.dL_dh.shape == h.shape
    for k in range(x.shape[1] + 1):  # k = 0 is the initial state h0
        fd = np.empty_like(h[:, k])
        for b, i in np.ndindex(fd.shape):
            plus, minus = h[:, k].copy(), h[:, k].copy()
            plus[b, i] += eps
            minus[b, i] -= eps
            fd[b, i] = (loss_as_function_of_state(p, x, y, activation, loss, loss_steps, k, plus)
                        - loss_as_function_of_state(p, x, y, activation, loss, loss_steps, k, minus)) / (2 * eps)
        assert_close_to_scale(g.dL_dh[:, k], fd, 1e-7, f"dL/dh_{k}")


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss_steps", ["all", "last"])
def test_dL_dh_matches_log_space_recurrence(activation, loss_steps):
    p, x, y = make_problem(activation, "mse", loss_steps, False, n=4, B=3, T=12)
    g = gl.loss_and_grads(p, x, y, activation, "mse", loss_steps)
    _, _, direct = output_errors(p, g.trace, y, "mse", loss_steps)
    log_norms = gl.log_loss_grad_norms(g.trace, direct)
    np.testing.assert_allclose(log_norms, np.log(np.linalg.norm(g.dL_dh, axis=2)), rtol=0, atol=1e-12)


def tent_map_relu_net(mu=1.9):
    """A 2-unit ReLU RNN whose state is the tent map p ← μ min(p, 1 − p).

    p_t = relu(μ p − 2μ q), q_t = relu(μ p − 2μ q − 1/2) = relu(p_t − 1/2), so
    the state stays in [0, 1] while ‖∂h_t/∂h_k‖ grows like μ^(t−k): an
    exploding gradient with a perfectly tame forward pass.
    """
    return gl.RNNParams(W_xh=np.zeros((2, 1)), W_hh=np.array([[mu, -2 * mu], [mu, -2 * mu]]),
                        b_h=np.array([0.0, -0.5]), W_hy=np.array([[1.0, 0.0]]), b_y=np.zeros(1))


def row_norms(v):
    """‖v_i‖₂ of each row without squaring overflow/underflow: m ‖v / m‖ with m = max|v_i|."""
    m = np.max(np.abs(v), axis=-1, keepdims=True)
    with np.errstate(all="ignore"):  # rows of inf/nan are reported as inf
        scaled = np.where((m > 0) & np.isfinite(m), v / m, 0.0)
        return np.where(np.isfinite(m[..., 0]), m[..., 0] * np.linalg.norm(scaled, axis=-1), np.inf)


def test_log_loss_grad_norms_stay_finite_where_plain_bptt_overflows():
    mu, T = 1.9, 2000
    p = tent_map_relu_net(mu)
    x, y, h0 = np.zeros((1, T, 1)), np.zeros((1, 1)), np.array([[0.3, 0.0]])
    tr = gl.forward(p, x, "relu", h0)
    assert np.all(np.abs(tr.h) <= 1) and np.min(np.abs(tr.a)) > 0  # bounded, never on the kink
    with np.errstate(over="raise"), pytest.raises(FloatingPointError, match="overflow"):
        gl.loss_and_grads(p, x, y, "relu", "mse", "last", h0=h0)
    with np.errstate(over="ignore", invalid="ignore"):
        exploded = gl.loss_and_grads(p, x, y, "relu", "mse", "last", h0=h0).dL_dh
    assert not np.all(np.isfinite(exploded[:, 0]))

    _, _, direct = output_errors(p, tr, y, "mse", "last")
    log_norms = gl.log_loss_grad_norms(tr, direct)
    assert np.all(np.isfinite(log_norms))
    assert log_norms[0, 0] > 1000  # e^1000: far beyond float64
    # Every step back multiplies the gradient by μ (|tent'| = μ everywhere).
    slope = np.polyfit(np.arange(T + 1), log_norms[0], 1)[0]
    assert slope == pytest.approx(-np.log(mu), abs=1e-3)
    # Where plain BPTT is still finite the two agree.
    plain = row_norms(exploded[0])
    finite = np.isfinite(plain)
    assert finite.sum() > 500
    np.testing.assert_allclose(log_norms[0, finite], np.log(plain[finite]), rtol=0, atol=1e-9)


@pytest.mark.parametrize("loss_steps", ["all", "last"])
def test_log_loss_grad_norms_stay_finite_where_plain_bptt_underflows(loss_steps):
    """A vanishing sigmoid net (γ_h = 1/4): ‖∂L/∂h_0‖ ≈ e^-2000, below the smallest float64."""
    rng = np.random.default_rng(0)
    p = gl.init_params(8, 2, 1, radius=1.0, rng=rng)
    T = 2000
    x = rng.standard_normal((1, T, 2))
    y = draw_targets(rng, "mse", loss_steps, 1, T, 1)
    g = gl.loss_and_grads(p, x, y, "sigmoid", "mse", loss_steps)
    _, _, direct = output_errors(p, g.trace, y, "mse", loss_steps)
    log_norms = gl.log_loss_grad_norms(g.trace, direct)
    assert np.all(np.isfinite(log_norms))
    plain = row_norms(g.dL_dh[0])
    if loss_steps == "last":
        assert plain[0] == 0.0 and log_norms[0, 0] < -745  # plain BPTT underflowed to exactly 0
    ok = plain > 1e-290  # normal floats: full precision
    np.testing.assert_allclose(log_norms[0, ok], np.log(plain[ok]), rtol=0, atol=1e-9)


# ---------------------------------------------------------------- truncated BPTT

@pytest.mark.parametrize("loss_steps", ["all", "last"])
@pytest.mark.parametrize("tokens", [False, True])
def test_truncated_equals_full_when_K_reaches_the_first_step(loss_steps, tokens):
    p, x, y = make_problem("tanh", "xent", loss_steps, tokens, T=6)
    T = x.shape[1]
    full = gl.loss_and_grads(p, x, y, "tanh", "xent", loss_steps)
    for K in (T - 1, T, T + 3):
        trunc = gl.loss_and_grads(p, x, y, "tanh", "xent", loss_steps, truncate=K)
        assert trunc.dL_dh is None and trunc.loss == full.loss
        for name in gl.PARAM_NAMES:
            np.testing.assert_allclose(trunc.grads[name], full.grads[name], rtol=1e-13, atol=1e-16)


@pytest.mark.parametrize("loss_steps", ["all", "last"])
def test_truncated_differs_from_full_when_T_exceeds_K_plus_one(loss_steps):
    p, x, y = make_problem("tanh", "mse", loss_steps, False, T=6)
    full = gl.loss_and_grads(p, x, y, "tanh", "mse", loss_steps).grads
    for K in range(0, x.shape[1] - 1):
        trunc = gl.loss_and_grads(p, x, y, "tanh", "mse", loss_steps, truncate=K).grads
        # W_xh and b_h need the error sent back through time. So does W_hh, but step 1's
        # share of it is ∂L/∂a_1 h_0ᵀ = 0 (h_0 = 0), so it differs only from K = T − 3 down.
        for name in ("W_xh", "b_h") + (("W_hh",) if K <= x.shape[1] - 3 else ()):
            diff = np.abs(trunc[name] - full[name]).max() / np.abs(full[name]).max()
            assert diff > 1e-6, f"K={K}: truncated {name} equals the full gradient"
        for name in ("W_hy", "b_y"):          # the read-out never goes back in time
            np.testing.assert_array_equal(trunc[name], full[name])


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_bad_truncation_is_rejected(bad):
    p, x, y = make_problem("tanh", "mse", "all", False)
    with pytest.raises(gl.GradlabError, match=r"truncate must be a whole number ≥ 0, got " + repr(bad).replace(".", r"\.")):
        gl.loss_and_grads(p, x, y, truncate=bad)


# -------------------------------------- the WildML tutorial, independently

def tutorial_weights(word_dim=8, hidden_dim=2, seed=10):
    """RNNNumpy's initialisation, in its order, with the legacy global seed it used."""
    state = np.random.RandomState(seed)
    U = state.uniform(-np.sqrt(1.0 / word_dim), np.sqrt(1.0 / word_dim), (hidden_dim, word_dim))
    V = state.uniform(-np.sqrt(1.0 / hidden_dim), np.sqrt(1.0 / hidden_dim), (word_dim, hidden_dim))
    W = state.uniform(-np.sqrt(1.0 / hidden_dim), np.sqrt(1.0 / hidden_dim), (hidden_dim, hidden_dim))
    return U, V, W


def tutorial_bptt(U, V, W, x, y, bptt_truncate):
    """The tutorial's ``bptt`` (seed text), transcribed line by line: dL/dU, dL/dV, dL/dW."""
    T = len(y)
    s = np.zeros((T + 1, W.shape[0]))  # s[-1] is the zero initial state
    o = np.zeros((T, V.shape[0]))
    for t in np.arange(T):
        s[t] = np.tanh(U[:, x[t]] + W.dot(s[t - 1]))
        o[t] = softmax(V.dot(s[t]))
    dLdU, dLdV, dLdW = np.zeros(U.shape), np.zeros(V.shape), np.zeros(W.shape)
    delta_o = o
    delta_o[np.arange(len(y)), y] -= 1.0
    for t in np.arange(T)[::-1]:
        dLdV += np.outer(delta_o[t], s[t].T)
        delta_t = V.T.dot(delta_o[t]) * (1 - (s[t] ** 2))
        for bptt_step in np.arange(max(0, t - bptt_truncate), t + 1)[::-1]:
            dLdW += np.outer(delta_t, s[bptt_step - 1])
            dLdU[:, x[bptt_step]] += delta_t
            delta_t = W.T.dot(delta_t) * (1 - s[bptt_step - 1] ** 2)
    return dLdU, dLdV, dLdW


def tutorial_problem():
    U, V, W = tutorial_weights()
    params = gl.RNNParams(W_xh=U, W_hh=W, b_h=np.zeros(2), W_hy=V, b_y=np.zeros(8))
    return (U, V, W), params, np.arange(7), np.arange(1, 8)


@pytest.mark.parametrize("K", range(0, 9))
def test_truncated_bptt_is_the_tutorials_bptt_truncate(K):
    (U, V, W), p, x, y = tutorial_problem()
    dU, dV, dW = tutorial_bptt(U, V, W, x, y, K)
    g = gl.loss_and_grads(p, x[None], y[None], "tanh", "xent", "all", truncate=K).grads
    np.testing.assert_allclose(g["W_xh"], dU, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(g["W_hy"], dV, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(g["W_hh"], dW, rtol=1e-13, atol=1e-16)


def test_reproduces_the_tutorials_failing_gradient_check():
    """Vocabulary 8, hidden 2, bptt_truncate=4, x = [0..6], y = [1..7], np.random.seed(10).

    A reader reported (seed text 000): "+h Loss: 14.451545254711402,
    −h Loss: 14.452114350897709, Estimated_gradient: −0.28454809315370255,
    Backpropagation gradient: −0.2721150178481872, Relative Error:
    0.022335008481410117" for U[0, 0], and that bptt_truncate > 5 passes.
    """
    (U, V, W), p, x, y = tutorial_problem()
    x, y = x[None], y[None]
    h = 0.001  # the tutorial's step
    U_plus, U_minus = U.copy(), U.copy()
    U_plus[0, 0] += h
    U_minus[0, 0] -= h
    L_plus = gl.loss_value(p.replace(W_xh=U_plus), x, y, "tanh", "xent")
    L_minus = gl.loss_value(p.replace(W_xh=U_minus), x, y, "tanh", "xent")
    assert L_plus == pytest.approx(14.451545254711402, rel=1e-14)
    assert L_minus == pytest.approx(14.452114350897709, rel=1e-14)
    estimated = (L_plus - L_minus) / (2 * h)
    assert estimated == pytest.approx(-0.28454809315370255, rel=1e-9)

    truncated = gl.loss_and_grads(p, x, y, "tanh", "xent", truncate=4).grads["W_xh"][0, 0]
    exact = gl.loss_and_grads(p, x, y, "tanh", "xent").grads["W_xh"][0, 0]
    assert truncated == pytest.approx(-0.2721150178481872, rel=1e-13)
    rel = abs(truncated - estimated) / (abs(truncated) + abs(estimated))  # the tutorial's measure
    assert rel == pytest.approx(0.022335008481410117, rel=1e-6) and rel > 0.01  # fails its 1 % threshold
    # The exact gradient agrees with the estimate up to the O(h²) error of the tutorial's step.
    assert exact == pytest.approx(estimated, rel=1e-5)

    table = gl.gradient_check(p, x, y, "tanh", "xent", truncate=4).set_index("parameter")
    assert table["bptt_vs_fd"].max() < 1e-7                      # exact BPTT passes
    assert 0.01 < table.loc["W_xh", "truncated_vs_fd"] < 0.2        # truncated fails by a few percent
    for K in (6, 7):                                               # "bptt_truncate > 5 ... is ok"
        table_K = gl.gradient_check(p, x, y, "tanh", "xent", truncate=K)
        assert table_K["truncated_vs_fd"].max() < 1e-7
    assert gl.gradient_check(p, x, y, "tanh", "xent", truncate=5)["truncated_vs_fd"].max() > 1e-3
