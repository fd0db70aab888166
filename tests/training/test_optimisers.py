"""Optimisers against their torch.optim twins (float64), and the invariants of pure factories."""
import copy

import numpy as np
import pytest

from gradlab.errors import GradlabError
from gradlab.training.optimisers import (OPTIMISERS, AdamState, RMSPropState, SGDState, adam, apply_updates,
                                         get_optimiser, rmsprop, sgd)

SHAPES = {"W_xh": (4, 3), "W_hh": (4, 4), "b_h": (4,)}
STEPS = 25

# (gradlab name, hyperparameters as gradlab takes them) — torch's names follow in torch_twin
SETTINGS = [
    ("sgd", dict(lr=0.1)),
    ("sgd", dict(lr=0.05, momentum=0.9)),
    ("sgd", dict(lr=1e-3, momentum=0.5)),
    ("adam", dict(lr=1e-3)),
    ("adam", dict(lr=0.1, b1=0.5, b2=0.9, eps=1e-6)),
    ("adam", dict(lr=0.01, b1=0.0, b2=0.99)),
    ("rmsprop", dict(lr=1e-2)),
    ("rmsprop", dict(lr=1e-3, alpha=0.9, eps=1e-6, momentum=0.9)),
    ("rmsprop", dict(lr=0.05, alpha=0.5, momentum=0.3)),
]


def gradient_sequence(seed: int, steps: int = STEPS) -> list[dict]:
    """Random gradients whose scale changes by orders of magnitude between steps (adaptivity matters)."""
    rng = np.random.default_rng(seed)
    return [{k: 10.0 ** rng.uniform(-3, 2) * rng.standard_normal(s) for k, s in SHAPES.items()}
            for _ in range(steps)]


def torch_twin(torch, name: str, hyper: dict, tensors):
    if name == "sgd":
        return torch.optim.SGD(tensors, lr=hyper["lr"], momentum=hyper.get("momentum", 0.0))
    if name == "adam":
        return torch.optim.Adam(tensors, lr=hyper["lr"], betas=(hyper.get("b1", 0.9), hyper.get("b2", 0.999)),
                                eps=hyper.get("eps", 1e-8))
    return torch.optim.RMSprop(tensors, lr=hyper["lr"], alpha=hyper.get("alpha", 0.99),
                               eps=hyper.get("eps", 1e-8), momentum=hyper.get("momentum", 0.0))


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("name, hyper", SETTINGS)
def test_optimiser_follows_its_torch_twin_step_by_step(torch, name, hyper):
    """Every update u_t, over 25 steps, equals torch.optim's to 1e-12 relative.

    None of these steps reads θ (no weight decay), so torch's parameter is
    reset to 0 before each step and afterwards *is* torch's update, exactly:
    comparing θ_t − θ_{t−1} instead would measure the cancellation of O(1)
    weights, not the optimiser.
    """
    shapes = SHAPES.items()
    tensors = {k: torch.zeros(s, dtype=torch.float64, requires_grad=True) for k, s in shapes}
    twin = torch_twin(torch, name, hyper, list(tensors.values()))
    opt = get_optimiser(name, **hyper)
    state = opt.init({k: np.zeros(s) for k, s in shapes})
    for g in gradient_sequence(SETTINGS.index((name, hyper))):
        updates, state = opt.update(g, state)
        with torch.no_grad():
            for k, t in tensors.items():
                t.zero_()
                t.grad = torch.tensor(g[k], dtype=torch.float64)
        twin.step()
        for k, t in tensors.items():
            assert relative_error(updates[k], t.detach().numpy()) <= 1e-12, k


def test_sgd_is_torch_sgd_rescaled_velocity():
    """v_t = −η b_t for constant η: gradlab's velocity is torch's buffer times −η."""
    lr, mu = 0.07, 0.8
    opt = sgd(lr, mu)
    state = opt.init({k: np.zeros(s) for k, s in SHAPES.items()})
    b = {k: np.zeros(s) for k, s in SHAPES.items()}
    for g in gradient_sequence(3):
        _, state = opt.update(g, state)
        b = {k: mu * b[k] + g[k] for k in g}
        for k in g:
            np.testing.assert_allclose(state.velocity[k], -lr * b[k], rtol=1e-12, atol=0)


def test_adam_first_step_has_length_lr_whatever_the_gradient_scale():
    """Bias correction (Kingma & Ba 2015, §3): u_1 = −α g/(|g| + ε), ≈ −α sign(g) for |g| ≫ ε."""
    for scale in (1e-3, 1.0, 1e3):
        g = {k: scale * v for k, v in gradient_sequence(4, 1)[0].items()}
        u, _ = adam(0.01, eps=1e-12).update(g, adam(0.01).init(g))
        for k in g:
            np.testing.assert_allclose(u[k], -0.01 * g[k] / (np.abs(g[k]) + 1e-12), rtol=1e-13, atol=0)
            big = np.abs(g[k]) > 1e-4
            np.testing.assert_allclose(np.abs(u[k][big]), 0.01, rtol=1e-7)


def test_rmsprop_without_momentum_is_the_scaled_gradient():
    g = gradient_sequence(5, 1)[0]
    u, state = rmsprop(0.01, alpha=0.9, eps=1e-300).update(g, rmsprop(0.01).init(g))
    for k in g:
        np.testing.assert_allclose(u[k], -0.01 * np.sign(g[k]) / np.sqrt(0.1), rtol=1e-12, atol=0)
        np.testing.assert_allclose(state.nu[k], 0.1 * g[k] ** 2, rtol=1e-15, atol=0)


@pytest.mark.parametrize("name, hyper", SETTINGS)
def test_update_and_apply_never_modify_their_inputs(name, hyper):
    opt = get_optimiser(name, **hyper)
    grads = gradient_sequence(6, 2)
    params = {k: np.ones(s) for k, s in SHAPES.items()}
    _, state = opt.update(grads[0], opt.init(params))          # a non-trivial state
    kept = copy.deepcopy((params, grads[1], state))
    updates, new_state = opt.update(grads[1], state)
    new_params = apply_updates(params, updates)
    np.testing.assert_equal(params, kept[0])
    np.testing.assert_equal(grads[1], kept[1])
    np.testing.assert_equal(state._asdict(), kept[2]._asdict())
    # and nothing returned aliases an input, so mutating an output cannot reach back
    inputs = [*params.values(), *grads[1].values(), *(a for f in state if isinstance(f, dict) for a in f.values())]
    outputs = [*new_params.values(), *updates.values(),
               *(a for f in new_state if isinstance(f, dict) for a in f.values())]
    assert not any(np.shares_memory(a, b) for a in inputs for b in outputs)


@pytest.mark.parametrize("name, state_type, fields", [("sgd", SGDState, ("velocity",)),
                                                      ("adam", AdamState, ("mu", "nu")),
                                                      ("rmsprop", RMSPropState, ("nu", "velocity"))])
def test_initial_state_is_zeros_shaped_like_the_parameters(name, state_type, fields):
    params = {k: np.full(s, 3.0) for k, s in SHAPES.items()}
    state = get_optimiser(name, 0.1).init(params)
    assert isinstance(state, state_type)
    for field in fields:
        moments = getattr(state, field)
        assert moments.keys() == params.keys()
        for k in params:
            assert moments[k].shape == params[k].shape and moments[k].dtype == np.float64
            assert not np.any(moments[k])
    if name == "adam":
        assert state.count == 0
        _, state = get_optimiser(name, 0.1).update(gradient_sequence(7, 1)[0], state)
        assert state.count == 1


def test_apply_updates_adds_and_checks_the_keys():
    params = {"a": np.array([1.0, 2.0]), "b": np.array(3.0)}
    new = apply_updates(params, {"a": np.array([0.5, -2.0]), "b": np.array(-3.0)})
    np.testing.assert_equal(new, {"a": np.array([1.5, 0.0]), "b": np.array(0.0)})
    with pytest.raises(GradlabError, match="updates are for"):
        apply_updates(params, {"a": np.zeros(2)})


def test_registry_builds_the_factories():
    assert set(OPTIMISERS) == {"sgd", "adam", "rmsprop"}
    g = gradient_sequence(8, 1)[0]
    for name, factory in OPTIMISERS.items():
        a, _ = get_optimiser(name, 0.01).update(g, get_optimiser(name, 0.01).init(g))
        b, _ = factory(0.01).update(g, factory(0.01).init(g))
        np.testing.assert_equal(a, b)


@pytest.mark.parametrize("call, message", [
    (lambda: get_optimiser("adagrad", 0.1), "unknown optimiser 'adagrad'; choose one of sgd, adam, rmsprop"),
    (lambda: get_optimiser("sgd", 0.0), "learning rate lr must be a positive number, got 0.0"),
    (lambda: get_optimiser("adam", -1e-3), "learning rate lr must be a positive number"),
    (lambda: get_optimiser("rmsprop", float("nan")), "learning rate lr must be a positive number, got nan"),
    (lambda: get_optimiser("sgd", float("inf")), "learning rate lr must be a positive number, got inf"),
    (lambda: get_optimiser("sgd", True), "learning rate lr must be a positive number, got True"),
    (lambda: get_optimiser("sgd", 0.1, momentum=1.0), r"momentum must be a number in \[0, 1\), got 1.0"),
    (lambda: get_optimiser("rmsprop", 0.1, momentum=-0.1), r"momentum must be a number in \[0, 1\)"),
    (lambda: get_optimiser("sgd", 0.1, momentum=float("nan")), r"momentum must be a number in \[0, 1\), got nan"),
    (lambda: get_optimiser("sgd", 0.1, momentum="0.9"), r"momentum must be a number in \[0, 1\)"),
    (lambda: get_optimiser("adam", 0.1, momentum=0.9), "optimiser 'adam' takes no momentum; it takes lr, b1, b2, eps"),
    (lambda: get_optimiser("sgd", 0.1, b1=0.9), "optimiser 'sgd' takes no b1; it takes lr, momentum"),
    (lambda: get_optimiser("adam", 0.1, b1=1.0), r"b1 must be a number in \[0, 1\), got 1.0"),
    (lambda: get_optimiser("adam", 0.1, b2=-0.5), r"b2 must be a number in \[0, 1\)"),
    (lambda: get_optimiser("adam", 0.1, eps=0.0), "eps must be a positive number, got 0.0"),
    (lambda: get_optimiser("rmsprop", 0.1, alpha=1.0), r"alpha must be a number in \[0, 1\), got 1.0"),
    (lambda: sgd(-0.1), "learning rate lr must be a positive number"),
])
def test_bad_hyperparameters_are_one_line_errors(call, message):
    with pytest.raises(GradlabError, match=message) as e:
        call()
    assert "\n" not in str(e.value)
