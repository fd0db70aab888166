"""Clipping invariants over many thresholds (Pascanu et al. 2013, Algorithm 1; optax-style tests)."""
import numpy as np
import pytest

from gradlab import GradlabError
from gradlab.training.clipping import chain, clip_by_global_norm, clip_by_value, get_clipping, global_norm, no_clipping

THRESHOLDS = np.geomspace(1e-4, 1e4, 41)


def random_grads(seed: int, scale: float = 1.0) -> dict:
    rng = np.random.default_rng(seed)
    shapes = {"W_xh": (5, 3), "W_hh": (5, 5), "b_h": (5,), "W_hy": (2, 5), "b_y": (2,)}
    return {k: scale * rng.standard_normal(s) for k, s in shapes.items()}


def flat(grads: dict) -> np.ndarray:
    return np.concatenate([g.ravel() for g in grads.values()])


def test_global_norm_is_the_norm_of_all_parameters_stacked():
    g = random_grads(0)
    assert global_norm(g) == pytest.approx(np.linalg.norm(flat(g)), rel=1e-14)


@pytest.mark.parametrize("tau", THRESHOLDS)
@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_norm_clipping_caps_the_norm_at_tau_and_keeps_the_direction(tau, scale):
    g = random_grads(int(tau * 1e4) % 1000, scale)
    c = clip_by_global_norm(tau)(g)
    norm = np.linalg.norm(flat(g))
    if norm > tau:
        assert np.linalg.norm(flat(c)) == pytest.approx(tau, rel=1e-12)
        assert np.allclose(flat(c), flat(g) * (tau / norm), rtol=1e-13, atol=0)   # same direction
    else:
        assert all(np.array_equal(c[k], g[k]) for k in g)


@pytest.mark.parametrize("tau", THRESHOLDS)
def test_norm_clipping_twice_equals_once(tau):
    clip = clip_by_global_norm(tau)
    once = clip(random_grads(1, 10.0))
    twice = clip(once)
    assert all(np.allclose(twice[k], once[k], rtol=1e-14, atol=0) for k in once)


@pytest.mark.parametrize("c", THRESHOLDS)
def test_value_clipping_bounds_entries_and_is_idempotent(c):
    g = random_grads(2, 3.0)
    once = clip_by_value(c)(g)
    x, y = flat(g), flat(once)
    assert np.all(np.abs(y) <= c)
    inside = np.abs(x) <= c
    assert np.array_equal(y[inside], x[inside])                       # small entries untouched
    assert np.array_equal(y[~inside], np.sign(x[~inside]) * c)        # large ones on the boundary
    twice = clip_by_value(c)(once)
    assert all(np.array_equal(twice[k], once[k]) for k in once)


def test_clippings_do_not_modify_their_input():
    g = random_grads(3, 100.0)
    before = {k: v.copy() for k, v in g.items()}
    for clip in (clip_by_global_norm(0.1), clip_by_value(0.1), no_clipping()):
        clip(g)
    assert all(np.array_equal(g[k], before[k]) for k in g)


def test_no_clipping_is_the_identity_and_chain_applies_in_order():
    g = random_grads(4, 5.0)
    assert all(np.array_equal(no_clipping()(g)[k], g[k]) for k in g)
    both = chain(clip_by_value(1.0), clip_by_global_norm(0.5))(g)
    by_hand = clip_by_global_norm(0.5)(clip_by_value(1.0)(g))
    assert all(np.array_equal(both[k], by_hand[k]) for k in g)


def test_norm_clipping_leaves_non_finite_gradients_for_the_caller_to_skip():
    g = random_grads(5)
    g["W_hh"][0, 0] = np.inf
    c = clip_by_global_norm(1.0)(g)
    assert not np.isfinite(global_norm(c))


@pytest.mark.parametrize("name, threshold", [("norm", 0.0), ("value", -1.0), ("norm", float("nan"))])
def test_bad_thresholds_are_refused(name, threshold):
    with pytest.raises(GradlabError, match="threshold"):
        get_clipping(name, threshold)


def test_unknown_clipping_name_is_refused():
    with pytest.raises(GradlabError, match="'clamp'"):
        get_clipping("clamp", 1.0)


@pytest.mark.parametrize("seed", range(5))
def test_norm_and_value_clipping_match_torchs_clip_grad_functions(torch, seed):
    """An independent implementation: torch.nn.utils.clip_grad_norm_ / clip_grad_value_ on the same gradients.

    torch divides by ‖g‖ + 1e-6, so its clipped gradients differ from τ g/‖g‖ by ~1e-6/‖g‖ relative.
    """
    rng = np.random.default_rng(seed)
    g = random_grads(seed, scale=10 ** rng.uniform(-1, 2))
    tau = float(10 ** rng.uniform(-1, 1))
    for clip, torch_clip in ((clip_by_global_norm(tau), lambda ps: torch.nn.utils.clip_grad_norm_(ps, tau)),
                             (clip_by_value(0.3), lambda ps: torch.nn.utils.clip_grad_value_(ps, 0.3))):
        params = [torch.zeros(v.shape, dtype=torch.float64, requires_grad=True) for v in g.values()]
        for p, v in zip(params, g.values()):
            p.grad = torch.tensor(v)
        total = torch_clip(params)
        if total is not None:
            assert float(total) == pytest.approx(global_norm(g), rel=1e-13)
        ours = clip(g)
        for p, k in zip(params, g):
            np.testing.assert_allclose(ours[k], p.grad.numpy(), rtol=1e-5 / global_norm(g), atol=0)
