"""Pascanu et al.'s (2013) regulariser Ω: brute force, finite differences with δ frozen, torch autograd."""
import dataclasses

import numpy as np
import pytest

from gradlab.analysis.bptt import gradients, loss_and_grads
from gradlab.cells import cell_class
from gradlab.cells.activations import Activation
from gradlab.cells.rnn import forward, init_params
from gradlab.errors import GradlabError
from gradlab.training.regulariser import omega, omega_and_grads, omega_grads, second_derivative

GRAD_NAMES = ("W_xh", "W_hh", "b_h")
ACTIVATIONS = ("tanh", "sigmoid", "relu", "linear")


def make_model(activation: str, tokens: bool = False, seed: int = 0, n=3, d=2, m=2, B=2, T=5):
    """Small RNN, inputs and mse targets; for ReLU every |a_t| > 0.05 and some units on (no kinks in reach)."""
    for s in range(seed, seed + 500):
        rng = np.random.default_rng(s)
        p = init_params(n, d, m, radius=1.2, rng=rng)
        p = p.replace(b_h=0.3 * rng.standard_normal(n))
        x = rng.integers(0, d, size=(B, T)) if tokens else rng.standard_normal((B, T, d))
        y = rng.standard_normal((B, T, m))
        a = forward(p, x, activation).a
        if activation != "relu" or (np.min(np.abs(a)) > 0.05 and np.all(np.any(a > 0, axis=2))):
            return p, x, y
    raise RuntimeError("no kink-free model found")


def adjoints_of(p, x, y, activation):
    g = loss_and_grads(p, x, y, activation, "mse", "all")
    return g.trace, g.dL_dh


def brute_force_omega(trace, lam, squared=False, bound=1e-20):
    """Eq. 9 from dense Jacobians, one (sequence, step) pair at a time, averaged as in RNN.py."""
    terms = []
    for b in range(trace.B):
        for t in range(1, trace.T + 1):
            delta = lam[b, t]
            if delta @ delta < bound:
                continue
            r = np.linalg.norm(delta @ trace.jacobian(t)[b]) / np.linalg.norm(delta)
            terms.append((r * r - 1) ** 2 if squared else (r - 1) ** 2)
    return float(np.mean(terms)) if terms else 0.0


def relative_error(ours: dict, theirs: dict) -> float:
    scale = max(np.max(np.abs(theirs[k])) for k in theirs)
    return max(np.max(np.abs(ours[k] - theirs[k])) for k in theirs) / scale


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("squared", [False, True])
def test_omega_is_the_mean_over_pairs_of_the_norm_ratio_penalty(activation, squared):
    p, x, y = make_model(activation, B=3, T=6)
    trace, lam = adjoints_of(p, x, y, activation)
    value = omega(trace, lam, squared)
    assert value == pytest.approx(brute_force_omega(trace, lam, squared), rel=1e-12)
    assert value > 1e-3                                    # not a vacuous zero


def test_negligible_errors_are_left_out_of_the_mean():
    p, x, y = make_model("tanh", B=3, T=6)
    trace, lam = adjoints_of(p, x, y, "tanh")
    lam = lam.copy()
    lam[0, 2] = 0.0
    lam[2, 5] = 1e-11                                      # ‖δ‖² = 3e-22 < bound 1e-20
    full = brute_force_omega(trace, lam)
    assert omega(trace, lam) == pytest.approx(full, rel=1e-12)
    kept = [(b, t) for b in range(3) for t in range(1, 7) if (b, t) not in ((0, 2), (2, 5))]
    r = [np.linalg.norm(lam[b, t] @ trace.jacobian(t)[b]) / np.linalg.norm(lam[b, t]) for b, t in kept]
    assert full == pytest.approx(np.mean((np.array(r) - 1) ** 2), rel=1e-12)   # a mean over 16 pairs, not 18


def test_no_error_anywhere_gives_zero_and_zero_gradient():
    p, x, y = make_model("tanh")
    trace, lam = adjoints_of(p, x, y, "tanh")
    value, grads = omega_and_grads(p, trace, np.zeros_like(lam))      # no 0/0 warning either (they are errors)
    assert value == 0.0
    assert all(not np.any(grads[k]) and grads[k].shape == getattr(p, k).shape for k in GRAD_NAMES)


@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("freeze_dphi", [False, True])
def test_orthogonal_linear_network_has_zero_omega_and_zero_gradient(squared, freeze_dphi):
    """φ = id and W_hh orthogonal: ‖δ W‖ = ‖δ‖ for every δ, so every r_t = 1."""
    rng = np.random.default_rng(1)
    p = init_params(4, 2, 2, init="orthogonal", rng=rng)
    np.testing.assert_allclose(p.W_hh @ p.W_hh.T, np.eye(4), atol=1e-14)
    trace, lam = adjoints_of(p, rng.standard_normal((2, 6, 2)), rng.standard_normal((2, 6, 2)), "linear")
    value, grads = omega_and_grads(p, trace, lam, squared, freeze_dphi)
    assert value < 1e-28
    assert all(np.max(np.abs(grads[k])) < 1e-14 for k in GRAD_NAMES)


@pytest.mark.parametrize("c", [0.5, 0.9, 1.5])
def test_scaled_orthogonal_linear_network_has_known_value_and_slope(c):
    """W_hh = c Q, φ = id: r_t = c, so Ω = (c − 1)² (or (c² − 1)²) and dΩ/dc = ⟨∇_W Ω, Q⟩."""
    rng = np.random.default_rng(2)
    p = init_params(4, 2, 2, init="orthogonal", rng=rng)
    Q = p.W_hh
    p = p.replace(W_hh=c * Q)
    trace, lam = adjoints_of(p, rng.standard_normal((3, 5, 2)), rng.standard_normal((3, 5, 2)), "linear")
    value, grads = omega_and_grads(p, trace, lam)
    assert value == pytest.approx((c - 1) ** 2, rel=1e-12)
    assert np.vdot(grads["W_hh"], Q) == pytest.approx(2 * (c - 1), rel=1e-12)
    value, grads = omega_and_grads(p, trace, lam, squared=True)
    assert value == pytest.approx((c * c - 1) ** 2, rel=1e-12)
    assert np.vdot(grads["W_hh"], Q) == pytest.approx(4 * c * (c * c - 1), rel=1e-12)
    assert not np.any(grads["W_xh"]) and not np.any(grads["b_h"])    # φ'' = 0: no trajectory term


def omega_with_frozen_delta(p, x, activation, lam, squared, freeze_dphi, trace0):
    """Ω at perturbed weights, δ kept at its unperturbed value (Pascanu et al.'s convention)."""
    if freeze_dphi:                          # φ'(a_t) frozen too: only the explicit W_hh in J_t moves
        return omega(dataclasses.replace(trace0, W_hh=p.W_hh), lam, squared)
    return omega(forward(p, x, activation), lam, squared)


@pytest.mark.parametrize("activation, tokens, squared, freeze_dphi, drop", [
    ("tanh", False, False, False, False),
    ("tanh", False, True, False, False),
    ("tanh", True, False, False, False),
    ("tanh", False, False, False, True),
    ("tanh", False, True, True, False),
    ("sigmoid", False, False, False, False),
    ("sigmoid", True, True, False, True),
    ("sigmoid", False, False, True, False),
    ("relu", False, False, False, False),
    ("linear", False, True, False, False),
])
def test_gradient_matches_central_differences_with_delta_frozen(activation, tokens, squared, freeze_dphi, drop):
    p, x, y = make_model(activation, tokens)
    trace, lam = adjoints_of(p, x, y, activation)
    if drop:                                     # a pair left out of the mean is left out of the gradient
        lam = lam.copy()
        lam[1, 3] = 0.0
    grads = omega_grads(p, trace, lam, squared, freeze_dphi)
    eps = 1e-6
    for name in GRAD_NAMES:
        fd = np.zeros_like(grads[name])
        for i in np.ndindex(fd.shape):
            values = []
            for sign in (1, -1):
                w = getattr(p, name).copy()
                w[i] += sign * eps
                values.append(omega_with_frozen_delta(p.replace(**{name: w}), x, activation, lam, squared,
                                                      freeze_dphi, trace))
            fd[i] = (values[0] - values[1]) / (2 * eps)
        assert np.max(np.abs(fd - grads[name])) <= 1e-7 * max(1.0, np.max(np.abs(fd))), name
    assert np.max(np.abs(grads["W_hh"])) > 1e-3
    if activation in ("tanh", "sigmoid") and not freeze_dphi:
        assert np.max(np.abs(grads["W_xh"])) > 1e-4           # the trajectory term is really there


def torch_omega_and_grads(torch, p, x, y, activation, squared, freeze_dphi, bound=1e-20):
    """Ω and its gradient by autograd: δ = ∂L/∂h_t by autograd, then detached; δ J_t as a vjp (double backward)."""
    f64 = torch.float64
    P = {k: torch.tensor(v, dtype=f64, requires_grad=True) for k, v in p.as_dict().items()}
    phi = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu, "linear": lambda a: 1.0 * a}[activation]
    X, Y = torch.tensor(x, dtype=f64), torch.tensor(y, dtype=f64)
    B, T = x.shape[:2]
    hs, pre = [torch.zeros(B, p.n, dtype=f64, requires_grad=True)], []
    for t in range(T):
        pre.append(hs[-1] @ P["W_hh"].T + X[:, t] @ P["W_xh"].T + P["b_h"])
        hs.append(phi(pre[-1]))
    o = torch.stack(hs[1:], 1) @ P["W_hy"].T + P["b_y"]
    L = ((o - Y) ** 2).sum(dim=(1, 2)).mean() / p.m                 # gradlab's mse, summed over steps
    delta = torch.stack(torch.autograd.grad(L, hs[1:], retain_graph=True), 1).detach()
    if freeze_dphi:
        dphi = [torch.autograd.grad(hs[t].sum(), pre[t - 1], retain_graph=True)[0].detach() for t in range(1, T + 1)]
        v = torch.stack([(delta[:, t - 1] * dphi[t - 1]) @ P["W_hh"] for t in range(1, T + 1)], 1)
    else:
        v = torch.stack([torch.autograd.grad(hs[t], hs[t - 1], grad_outputs=delta[:, t - 1], create_graph=True)[0]
                         for t in range(1, T + 1)], 1)
    pp = (delta ** 2).sum(-1)
    kept = pp >= bound
    ratio2 = (v ** 2).sum(-1)[kept] / pp[kept]
    terms = (ratio2 - 1) ** 2 if squared else (ratio2.sqrt() - 1) ** 2
    value = terms.sum() / kept.sum()
    grads = torch.autograd.grad(value, [P[k] for k in GRAD_NAMES], allow_unused=True)
    return float(value.detach()), delta.numpy(), {k: np.zeros(p.as_dict()[k].shape) if g is None else g.numpy()
                                          for k, g in zip(GRAD_NAMES, grads)}


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("squared, freeze_dphi", [(False, False), (True, False), (True, True), (False, True)])
def test_gradient_matches_torch_autograd_with_delta_detached(torch, activation, squared, freeze_dphi):
    p, x, y = make_model(activation, B=3, T=6, seed=7)
    trace, lam = adjoints_of(p, x, y, activation)
    value, grads = omega_and_grads(p, trace, lam, squared, freeze_dphi)
    t_value, t_delta, t_grads = torch_omega_and_grads(torch, p, x, y, activation, squared, freeze_dphi)
    np.testing.assert_allclose(lam[:, 1:], t_delta, rtol=1e-12, atol=1e-15)     # the same δ to begin with
    assert value == pytest.approx(t_value, rel=1e-12)
    assert relative_error(grads, t_grads) <= 1e-12
    if freeze_dphi:
        assert not np.any(grads["W_xh"]) and not np.any(grads["b_h"])


@pytest.mark.parametrize("activation", ["relu", "linear"])
def test_piecewise_linear_activations_need_no_trajectory_term(activation):
    """φ'' = 0 (ReLU away from its kink): freezing φ'(a_t) changes nothing."""
    p, x, y = make_model(activation)
    trace, lam = adjoints_of(p, x, y, activation)
    full, frozen = omega_grads(p, trace, lam), omega_grads(p, trace, lam, freeze_dphi=True)
    for k in GRAD_NAMES:
        np.testing.assert_array_equal(full[k], frozen[k])


def test_batch_omega_and_gradient_are_means_over_sequences():
    p, x, y = make_model("tanh", B=4, T=5, seed=3)
    trace, lam = adjoints_of(p, x, y, "tanh")
    value, grads = omega_and_grads(p, trace, lam)
    singles = [omega_and_grads(p, forward(p, x[b:b + 1], "tanh"), lam[b:b + 1]) for b in range(4)]
    assert value == pytest.approx(np.mean([s[0] for s in singles]), rel=1e-12)
    for k in GRAD_NAMES:
        np.testing.assert_allclose(grads[k], np.mean([s[1][k] for s in singles], axis=0), rtol=1e-11, atol=1e-15)
    # a sequence twice in the batch changes nothing: a mean, not a sum
    twice = omega(forward(p, np.concatenate([x, x]), "tanh"), np.concatenate([lam, lam]))
    assert twice == pytest.approx(value, rel=1e-12)


def test_value_works_for_gated_cells_and_the_gradient_is_refused():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((2, 5, 2)), rng.standard_normal((2, 5, 2))
    for name in ("lstm", "gru"):
        cell = cell_class(name)()
        p = cell.init_params(3, 2, 2, rng=rng)
        g = gradients(cell, p, x, y)
        assert omega(g.trace, g.dL_ds) == pytest.approx(brute_force_omega(g.trace, g.dL_ds), rel=1e-12)
        with pytest.raises(GradlabError, match="vanilla RNN only"):
            omega_grads(p, g.trace, g.dL_ds)


def test_bad_inputs_are_one_line_errors():
    p, x, y = make_model("tanh")
    trace, lam = adjoints_of(p, x, y, "tanh")
    with pytest.raises(GradlabError, match=r"adjoints λ must have shape \(2, 6, 3\)"):
        omega(trace, lam[:, 1:])
    odd = Activation("softsign", lambda a: (a / (1 + abs(a)), 1 / (1 + abs(a)) ** 2), 1.0)
    with pytest.raises(GradlabError, match="no second derivative for activation 'softsign'"):
        omega_grads(p, dataclasses.replace(trace, activation=odd), lam)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_second_derivative_matches_differences_of_the_first(activation):
    from gradlab.cells.activations import ACTIVATIONS as ACTS
    act = ACTS[activation]
    a = np.linspace(-4, 4, 41)
    fd = (act.derivative(a + 1e-6) - act.derivative(a - 1e-6)) / 2e-6
    np.testing.assert_allclose(second_derivative(act, a), fd, rtol=0, atol=1e-9)
