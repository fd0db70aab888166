"""The fast σ_max path of ``jacobian_norms`` against slow, obviously-correct versions.

``method="subspace"`` (warm-started block Krylov with certified bounds) must
agree with ``method="svd"`` (a full SVD per pair) and with dense numpy
products ``numpy.linalg.norm(J_t … J_{k+1}, 2)`` to 1e-10 relative, over
random networks and over the cases that break naive power iteration:
repeated or nearly repeated top singular values, exactly-zero rows (ReLU),
a warm start orthogonal to the top direction, and huge or tiny scales.
"""
from __future__ import annotations

import importlib
import threading
import time
from concurrent.futures import CancelledError

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradlab as gl
from gradlab.analysis._pipeline import Pipeline
from gradlab.errors import GradlabError

jn = importlib.import_module("gradlab.analysis.jacobian_norms")   # the module (the package exports the function)
RTOL = 1e-10


def rel_diff(a, b):
    """max |e^(a − b) − 1| over finite entries; −inf (exact zeros) must coincide."""
    a, b = np.asarray(a), np.asarray(b)
    assert np.array_equal(np.isneginf(a), np.isneginf(b))
    assert np.all(np.isfinite(a[~np.isneginf(a)]))
    keep = np.isfinite(b)
    return float(np.max(np.abs(np.expm1(a[keep] - b[keep])), initial=0.0))


def make_trace(n, T, B=2, init="gaussian", activation="tanh", radius=1.0, seed=0, input_scale=1.0):
    rng = np.random.default_rng(seed)
    params = gl.init_params(n=n, d=3, init=init, radius=radius, rng=rng)
    return gl.forward(params, input_scale * rng.standard_normal((B, T, 3)), activation)


@pytest.mark.parametrize("init", ["gaussian", "orthogonal", "identity"])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "linear"])
@pytest.mark.parametrize("radius", [0.6, 1.0, 3.0])
def test_subspace_matches_svd_reference(init, activation, radius):
    tr = make_trace(24, 45, init=init, activation=activation, radius=radius, input_scale=2.0,
                    seed=sum(map(ord, init + activation)) + int(10 * radius))
    for pairs in ("last", "stride:8"):
        fast = gl.jacobian_norms(tr, pairs, method="subspace")
        slow = gl.jacobian_norms(tr, pairs, method="svd")
        assert np.array_equal(fast.t, slow.t) and np.array_equal(fast.k, slow.k)
        assert rel_diff(fast.log_norm, slow.log_norm) < RTOL, (init, activation, radius, pairs)


@pytest.mark.parametrize("pairs", ["last", "all", "stride:5"])
def test_subspace_matches_dense_numpy_products(pairs):
    """Independent of gradlab's product code: dense J_t from φ'(a_t) and W_hh, multiplied out."""
    tr = make_trace(32, 24, B=2, radius=1.3, seed=7)
    got = gl.jacobian_norms(tr, pairs, method="subspace")
    for b in range(tr.B):
        want = []
        for t in sorted(set(got.t.tolist())):
            P = np.eye(tr.n)
            for k in range(t - 1, -1, -1):
                P = P @ (tr.dphi[b, k][:, None] * tr.W_hh)          # ∂h_t/∂h_k = J_t … J_{k+1}
                want.append(np.log(np.linalg.norm(P, 2)))
        assert rel_diff(got.log_norm[b], want) < RTOL


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), radius=st.floats(0.3, 4.0),
       activation=st.sampled_from(["tanh", "relu", "sigmoid"]), n=st.integers(17, 40), T=st.integers(2, 70))
def test_subspace_matches_svd_random_networks(seed, radius, activation, n, T):
    tr = make_trace(n, T, B=1, activation=activation, radius=radius, seed=seed, input_scale=3.0)
    fast = gl.jacobian_norms(tr, "last", method="subspace")
    slow = gl.jacobian_norms(tr, "last", method="svd")
    assert rel_diff(fast.log_norm, slow.log_norm) < RTOL


def jacobian_trace(W_hh, dphi, activation="relu"):
    """A Trace with given φ'(a_t) (B, T, n): Jacobians without running (and overflowing) a forward pass."""
    B, T, n = dphi.shape
    zeros = np.zeros((B, T, n))
    return gl.Trace(x=zeros, a=zeros, h=np.zeros((B, T + 1, n)), dphi=dphi, W_hh=W_hh,
                    activation=gl.get_activation(activation))


def test_long_exploding_and_vanishing_products_stay_finite_and_exact():
    rng = np.random.default_rng(3)
    for radius in (3.0, 1 / 3):
        W = gl.init_recurrent(20, "gaussian", radius, rng)
        dphi = (rng.random((1, 900, 20)) < 0.9).astype(float)          # ReLU: 10 % of units off
        tr = jacobian_trace(W, dphi)
        fast = gl.jacobian_norms(tr, "last", method="subspace")
        slow = gl.jacobian_norms(tr, "last", method="svd")
        assert np.abs(fast.log_norm[np.isfinite(fast.log_norm)]).max() > 710   # e^710 overflows float64
        assert rel_diff(fast.log_norm, slow.log_norm) < RTOL


@pytest.mark.parametrize("n", [8, 30, 60])
def test_exact_method_matches_svd_reference(n):
    """method="exact" (√λ_max(P Pᵀ) per pair) against a full SVD per pair."""
    tr = make_trace(n, 40, B=2, radius=1.5, seed=n)
    for pairs in ("last", "all"):
        exact = gl.jacobian_norms(tr, pairs, method="exact")
        svd = gl.jacobian_norms(tr, pairs, method="svd")
        assert rel_diff(exact.log_norm, svd.log_norm) < 1e-12


def test_workers_do_not_change_the_result():
    tr = make_trace(40, 60, B=1, seed=11)
    for pairs in ("last", "all"):
        one = gl.jacobian_norms(tr, pairs, method="subspace", workers=1).log_norm
        two = gl.jacobian_norms(tr, pairs, method="subspace", workers=2).log_norm
        assert np.array_equal(one, two)


def test_workers_do_not_change_the_result_when_memory_limits_the_groups(monkeypatch):
    """Lags per group are capped by STACK_BYTES / (buffers in flight · B r² · 8): the cap, and so the
    grouping and the warm starts, must not depend on whether a second thread bounds the groups
    (it bound at n > 512 for B = 1, n > 482 for B = 3; a smaller STACK_BYTES makes it bind here)."""
    n, B = 32, 3
    tr = make_trace(n, 60, B=B, seed=12)
    monkeypatch.setattr(jn, "STACK_BYTES", 4 * B * n * n * 8 * 2)     # 2 lags of 4 buffers, or 4 of 2
    one = gl.jacobian_norms(tr, "last", method="subspace", workers=1).log_norm
    two = gl.jacobian_norms(tr, "last", method="subspace", workers=2).log_norm
    assert np.array_equal(one, two)


@pytest.mark.parametrize("workers", [1, 2])
def test_an_error_in_a_sigma_job_surfaces_as_the_first_one_and_leaves_no_thread(monkeypatch, workers):
    """Six groups of 8 lags, every one from lag 17 on failing: the error is the first failing group's
    (groups are bounded in order), whatever groups the buffers hold at the end, and no thread stays."""
    import threading

    run = jn._SigmaStage.run

    def failing(self, group, first, lag0, *args):
        if lag0 >= 17:
            raise ValueError(f"group from lag {lag0}")
        return run(self, group, first, lag0, *args)

    monkeypatch.setattr(jn._SigmaStage, "run", failing)
    tr = make_trace(16, 48, B=1, seed=1)
    threads = threading.active_count()
    with pytest.raises(ValueError, match="^group from lag 17$"):
        gl.jacobian_norms(tr, "last", method="subspace", workers=workers)
    assert threading.active_count() == threads


def test_a_failing_lane_stops_the_other_at_once(monkeypatch):
    """With workers=2 the end steps of 'all' pairs are shared by two lanes (threads), each growing
    its products one lag at a time (120 lags here). When one fails, or Ctrl-C reaches it, the
    other must stop at its next group instead of finishing its half while the caller waits."""
    import collections
    import threading

    calls = collections.Counter()
    advance = jn.ScaledFactors.advance

    def interrupted_at_lag_20(self, P, out, steps):
        me = threading.get_ident()
        calls[me] += 1
        if calls[me] == 20 and len(calls) == 2 and calls.most_common(1)[0][0] == me:
            raise KeyboardInterrupt
        advance(self, P, out, steps)

    monkeypatch.setattr(jn.ScaledFactors, "advance", interrupted_at_lag_20)
    tr = make_trace(16, 120, B=1, seed=2)
    threads = threading.active_count()
    with pytest.raises(KeyboardInterrupt):
        gl.jacobian_norms(tr, "all", method="subspace", workers=2)
    assert threading.active_count() == threads
    assert len(calls) == 2 and max(calls.values()) < 60, calls


@pytest.mark.parametrize("workers", [1, 2])
def test_one_end_step_bounds_its_groups_on_a_second_thread_only_with_two_workers(monkeypatch, workers):
    """The point of the pipeline ('last' pairs: one lane): σ_max off the calling thread with workers=2."""
    where = set()
    run = jn._SigmaStage.run

    def recording(self, *args):
        where.add(threading.get_ident())
        return run(self, *args)

    monkeypatch.setattr(jn._SigmaStage, "run", recording)
    gl.jacobian_norms(make_trace(16, 40, B=1, seed=3), "last", method="subspace", workers=workers)
    assert len(where) == 1 and (threading.get_ident() in where) == (workers == 1)


class OpaqueTrace(gl.StateTrace):
    """A trace seen only through the protocol's required methods (no norm bound, no stacked product)."""

    def __init__(self, trace):
        self._trace, self.h = trace, trace.h

    @property
    def state_size(self):
        return self._trace.n

    def right_multiply(self, P, t):
        return self._trace.right_multiply(P, t)


def test_generic_trace_interface_gives_the_same_norms():
    tr = make_trace(24, 30, B=2, radius=1.5, seed=5)
    generic = gl.jacobian_norms(OpaqueTrace(tr), "stride:4", method="subspace")
    direct = gl.jacobian_norms(tr, "stride:4", method="svd")
    assert rel_diff(generic.log_norm, direct.log_norm) < RTOL


@pytest.mark.parametrize("workers", [1, 2])
def test_a_zero_product_without_a_factor_bound_is_exactly_zero_and_warns_nothing(workers):
    """An LSTM's forget-gate chain diag(f_t) with every f exactly 0 at one step (z_f ≈ −3000): gated
    cells have no bound on ‖J‖ (inf), and the prior 0 · inf must not become nan (a RuntimeWarning,
    an error under this suite's filter) but 0: the longer products are exactly zero."""
    rng = np.random.default_rng(0)
    n = 12
    params = gl.init_gated_params("lstm", n=n, d=3, rng=rng)
    W_ih = params.W_ih.copy()
    W_ih[n:2 * n] = -1.0                                   # forget-gate pre-activation −Σ x
    x = rng.standard_normal((2, 30, 3))
    x[0, 10] = 1000.0                                      # sequence 0: every f_11 underflows to 0
    chain = gl.cell_state_trace(gl.forward_lstm(params.replace(W_ih=W_ih), x), "forget")
    got = gl.jacobian_norms(chain, "last", method="subspace", workers=workers).log_norm
    want = gl.jacobian_norms(chain, "last", method="svd").log_norm
    assert np.isneginf(got[0, 19:]).all() and np.isfinite(got[0, :19]).all()    # lags ≥ 20 pass step 11
    assert rel_diff(got, want) < RTOL


@pytest.mark.parametrize("bound", ["known", "unknown"])
def test_rescaled_long_products_are_identical_for_both_workers_and_exact(bound):
    """B = 3 'last' products over 700 lags, rescaled by e^c on the main thread while the σ thread
    bounds earlier groups: scaled ReLU factors (‖J/c‖ ≤ 1, groups of 3 lags) vanish past e^−64
    (c < 0); without a bound on ‖J‖ (generic trace, one lag per group) a linear ρ = 3 product
    explodes past e^64 (c > 0). Both thread counts give the same bits, and the SVD's norms."""
    rng = np.random.default_rng(8)
    W = gl.init_recurrent(16, "gaussian", 3.0, rng)
    if bound == "known":
        tr = jacobian_trace(W, (rng.random((3, 700, 16)) < 0.8).astype(float))     # ReLU, 20 % off
    else:
        tr = OpaqueTrace(jacobian_trace(W, np.ones((3, 700, 16)), "linear"))
    factors = jn.ScaledFactors.of(tr)
    one = gl.jacobian_norms(tr, "last", method="subspace", workers=1).log_norm
    two = gl.jacobian_norms(tr, "last", method="subspace", workers=2).log_norm
    assert np.array_equal(one, two)
    scaled = one - np.cumsum(factors.log_c[:, ::-1], axis=1)            # ln ‖product of J_t / c_t‖
    assert (scaled.min(axis=1) < -320).all() if bound == "known" else (scaled.max(axis=1) > 320).all()   # ≥ 5 rescales
    slow = gl.jacobian_norms(tr, "last", method="svd").log_norm
    assert rel_diff(one, slow) < RTOL


@pytest.mark.parametrize("method", ["subspace", "exact"])
@pytest.mark.parametrize("workers", [1, 2])
def test_a_product_vanishing_by_e120_per_step_is_rescaled_after_every_factor(method, workers):
    """W = [[ε, 1], [0, ε]] with ε = e^-120: ‖W^k‖ = k ε^(k-1) (to ε²), so each factor shrinks the
    product by e^-120 although ‖W‖ = σ_max ≈ 1 (its scaling bound). Eight lags to a group would
    pass e^-708 (underflow to 0, log-norm −inf) before a rescale between groups could act."""
    eps = np.exp(-120.0)
    W = np.array([[eps, 1.0], [0.0, eps]])
    tr = jacobian_trace(W, np.ones((1, 30, 2)), "linear")
    got = gl.jacobian_norms(tr, "last", method=method, workers=workers)
    lag = got.lag.astype(float)
    expected = np.log(lag) + (lag - 1) * np.log(eps)          # down to −3477
    np.testing.assert_allclose(got.log_norm[0], expected, rtol=1e-13, atol=1e-12)


def test_unknown_method_is_a_gradlab_error():
    with pytest.raises(GradlabError, match="fast"):
        gl.jacobian_norms(make_trace(4, 3), "last", method="fast")


# ------------------------------------------------------------------ the σ_max solver itself

def hard_matrices(rng, n=40):
    """Matrices that defeat naive power iteration, with a warm start for each."""
    Q1, Q2 = (np.linalg.qr(rng.standard_normal((n, n)))[0] for _ in range(2))
    s = np.sort(rng.uniform(0.1, 1.0, n))[::-1]
    near = s.copy()
    near[1] = near[0] * (1 - 1e-9)                       # nearly repeated σ_max
    tied = s.copy()
    tied[:3] = 1.0                                       # exactly repeated σ_max
    diag = np.diag(np.linspace(0.2, 1.0, n))             # top direction e_{n−1}
    relu = Q1 @ np.diag(s) @ Q2.T
    relu[rng.random(n) < 0.4] = 0.0                      # rows of units that are off
    cases = {
        "nearly repeated": Q1 @ np.diag(near) @ Q2.T,
        "repeated": Q1 @ np.diag(tied) @ Q2.T,
        "orthogonal": Q1,
        "hidden top": diag,
        "relu rows": relu,
        "rank one": np.outer(rng.standard_normal(n), rng.standard_normal(n)),
        "zero": np.zeros((n, n)),
        # ‖P‖_F² ~ 1e∓240: not rescaled, but the squared Ritz residuals (~1e-480) would underflow
        "small": 1e-120 * (Q1 @ np.diag(s) @ Q2.T),
        "large": 1e120 * (Q1 @ np.diag(s) @ Q2.T),
        "huge": 1e150 * (Q1 @ np.diag(s) @ Q2.T),
        "tiny": 1e-150 * (Q1 @ np.diag(s) @ Q2.T),
        "near overflow": 1e300 * (Q1 @ np.diag(s) @ Q2.T) / n,
        "subnormal scale": 1e-300 * (Q1 @ np.diag(s) @ Q2.T),
    }
    # Warm starts: the leading coordinate vectors, which miss the diagonal's top direction.
    U = np.eye(n)[:, :8]
    return cases, U


@pytest.mark.parametrize("seed", range(3))
def test_top_singular_values_on_hard_matrices(seed):
    rng = np.random.default_rng(seed)
    cases, U = hard_matrices(rng)
    P = np.stack(list(cases.values()))
    U0 = np.broadcast_to(U, (len(P),) + U.shape).copy()
    U0[:, :, -1] = rng.standard_normal((len(P), U.shape[0]))      # as jacobian_norms does
    U0 = jn.orthonormal_basis(U0)
    sigma, upper, U_next, log_s = jn.top_singular_values(P, U0)
    true = np.linalg.svd(P, compute_uv=False)[:, 0]
    got, bound = sigma * np.exp(log_s), upper * np.exp(log_s)
    for name, g, b, s in zip(cases, got, bound, true):
        if s == 0:
            assert g == 0 and b == 0, name
            continue
        assert abs(g / s - 1) < RTOL, name
        assert g <= s * (1 + 1e-13), name                 # the Ritz value never overshoots
        assert b >= s * (1 - 1e-13), name                 # the certified bound holds
    # The next warm start is one power step on the Ritz vectors: finite, of full rank, and it
    # holds the top left singular vector wherever σ_1 stands clear of σ_2 (here "rank one").
    assert np.isfinite(U_next).all()
    basis = jn.orthonormal_basis(U_next)
    np.testing.assert_allclose(basis.transpose(0, 2, 1) @ basis, np.broadcast_to(np.eye(U.shape[1]), (len(P),) + (U.shape[1],) * 2), atol=1e-12)
    u1 = np.linalg.svd(cases["rank one"])[0][:, 0]
    in_span = basis[list(cases).index("rank one")].T @ u1
    assert np.linalg.norm(in_span) == pytest.approx(1.0, abs=1e-12)


def test_prior_bound_certifies_repeated_singular_values_without_svd(monkeypatch):
    """An orthogonal product has σ_1 = … = σ_n: Ritz bounds cannot close, ‖P J‖ ≤ ‖P‖‖J‖ can."""
    rng = np.random.default_rng(0)
    P = np.linalg.qr(rng.standard_normal((1, 30, 30)))[0]
    U = np.linalg.qr(rng.standard_normal((1, 30, 8)))[0]
    monkeypatch.setattr(jn, "largest_gram_eigenvalue", lambda P: pytest.fail("fell back to an exact σ_max"))
    sigma, upper, _, _ = jn.top_singular_values(P, U, prior=np.array([1.0]))
    assert abs(sigma[0] - 1) < 1e-13 and upper[0] == pytest.approx(1.0, abs=1e-13)


def test_next_block_stays_orthogonal_to_the_basis_when_ill_conditioned():
    """A block whose columns are nearly parallel (cond ~ 1e5: a converging Krylov block)
    passes the rank test, but Householder QR of it multiplies the rounding left along
    span(Q) by the condition number: the Rayleigh–Ritz bounds assume an exactly
    orthonormal basis, so that leak must be projected out again."""
    rng = np.random.default_rng(5)
    M, r, k, p = 20, 128, 16, 8
    Q = np.linalg.qr(rng.standard_normal((M, r, k))).Q
    parallel = rng.standard_normal((M, r, 1)) + 1e-5 * rng.standard_normal((M, r, p))
    Z = Q @ rng.standard_normal((M, k, p)) + parallel
    basis = jn.orthonormal_basis(Z, Q)
    assert np.abs(Q.transpose(0, 2, 1) @ basis).max() < 1e-14
    np.testing.assert_allclose(basis.transpose(0, 2, 1) @ basis, np.broadcast_to(np.eye(p), (M, p, p)), atol=1e-14)
    # and it spans the new part of Z (known to rounding of Z's size, ~1e-16)
    new = Z - Q @ (Q.transpose(0, 2, 1) @ Z)
    assert np.abs(new - basis @ (basis.transpose(0, 2, 1) @ new)).max() < 1e-13


@pytest.fixture
def exact_calls(monkeypatch):
    """Stack sizes handed to the exact fallback λ_max(P Pᵀ), recorded as jacobian_norms runs."""
    calls = []
    exact = jn.largest_gram_eigenvalue
    monkeypatch.setattr(jn, "largest_gram_eigenvalue", lambda P: calls.append(len(P)) or exact(P))
    return calls


def test_most_products_are_certified_without_an_svd(exact_calls):
    """The point of the fast path: past the first lags, no SVD is needed (not a timing test)."""
    tr = make_trace(48, 200, B=1, radius=1.0, seed=2)
    gl.jacobian_norms(tr, "last", method="subspace")
    assert sum(exact_calls) < 0.1 * tr.T


@pytest.mark.parametrize("n", [40, 64])          # one batched eigvalsh below EVR_MIN, LAPACK evr from it on
@pytest.mark.parametrize("scale", [1e-140, 1e-3, 1.0, 1e140])
def test_exact_fallback_equals_the_svd(scale, n):
    """λ_max(P Pᵀ), the fallback, is σ_max² to rounding: flat, low-rank, zero and huge/tiny matrices."""
    rng = np.random.default_rng(3)
    flat = np.linalg.qr(rng.standard_normal((n, n)))[0] * (1 + 1e-9 * rng.standard_normal(n))
    low_rank = np.outer(rng.standard_normal(n), rng.standard_normal(n))
    P = np.stack([rng.standard_normal((n, n)), flat, low_rank, np.zeros((n, n))]) * scale
    sigma = np.linalg.svd(P, compute_uv=False)[:, 0]
    np.testing.assert_allclose(np.sqrt(jn.largest_gram_eigenvalue(P)), sigma, rtol=1e-13, atol=0)  # a few ε · n


def test_the_fallback_is_really_used_for_flat_short_lag_products(exact_calls):
    """Guards the two tests above: they watch the function the fallback actually calls."""
    tr = make_trace(48, 60, B=1, radius=1.0, seed=2)
    gl.jacobian_norms(tr, "all", method="subspace")
    assert sum(exact_calls) > 0


def test_auto_iterates_only_for_large_states_and_long_lags():
    """choose_method's crossover (measured in benchmarks/bench_norm_methods.py): r² · mean lag ≥ 2.5e5."""
    assert jn.choose_method(128, jn.end_steps("last", 100)) == "subspace"    # mean lag 50.5
    assert jn.choose_method(128, jn.end_steps("all", 20)) == "exact"         # mean lag 7.3
    assert jn.choose_method(64, jn.end_steps("last", 100)) == "exact"         # 4096 · 50.5 < 2.5e5
    assert jn.choose_method(32, jn.end_steps("last", 500)) == "subspace"     # mean lag 250.5
    assert jn.mean_lag(np.array([3])) == 2.0                                 # lags 1, 2, 3


# ------------------------------------------------------------------ the two-stage pipeline itself

def run_pipeline(consume, items, buffers=3, threaded=True, stop=None, form=None):
    """Put ``items`` through a Pipeline; ``form(b, item)`` runs in the producer before each put."""
    with Pipeline(consume, buffers, threaded, stop) as pipe:
        for item in items:
            b = pipe.next_buffer()
            if form is not None:
                form(b, item)
            pipe.put(b, b, item)


@pytest.mark.parametrize("threaded", [False, True])
def test_pipeline_consumes_every_item_in_order_on_the_expected_thread(threaded):
    rng = np.random.default_rng(0)
    delays = rng.uniform(0, 2e-3, 40)           # a consumer sometimes slower, sometimes faster
    done, where = [], set()

    def consume(b, item):
        time.sleep(delays[item])
        done.append(item)
        where.add(threading.get_ident())

    threads = threading.active_count()
    run_pipeline(consume, range(40), threaded=threaded)
    assert done == list(range(40))              # all of them, in order, finished on leaving the block
    assert (threading.get_ident() in where) != threaded and len(where) == 1
    assert threading.active_count() == threads


@pytest.mark.parametrize("threaded", [False, True])
@pytest.mark.parametrize("slow", ["consumer", "producer"])
def test_pipeline_never_hands_out_a_buffer_still_in_use(threaded, slow):
    """Each item is written into its buffer; the consumer finds it intact however long it takes, the
    producer finds the previous item intact while forming the next (rotation), and no more items
    than buffers are ever in flight."""
    n = 3
    buffers = np.full(n, -1)
    in_flight, most = [0], [0]
    lock = threading.Lock()

    def form(b, item):
        assert b == item % n                                    # handed out in rotation
        if item:
            assert buffers[(b - 1) % n] == item - 1             # the previous item is left alone
        if slow == "producer":
            time.sleep(1e-3)
        buffers[b] = item
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])

    def consume(b, item):
        if slow == "consumer":
            time.sleep(1e-3)
        assert buffers[b] == item                               # not overwritten while in use
        with lock:
            in_flight[0] -= 1

    run_pipeline(consume, range(30), buffers=n, threaded=threaded, form=form)
    assert in_flight[0] == 0 and most[0] <= n
    if not threaded:
        assert most[0] == 1                                     # consumed inside put
    elif slow == "consumer":
        assert most[0] == n                                     # the producer ran ahead as far as allowed


@pytest.mark.parametrize("threaded", [False, True])
@pytest.mark.parametrize("fail_from", [4, 19])      # in the middle, and the last item (raised on leaving)
def test_pipeline_raises_the_consumers_first_error_and_consumes_nothing_after_it(threaded, fail_from):
    done = []

    def consume(b, item):
        if item in (fail_from, fail_from + 1):          # two errors: the first one is raised
            time.sleep(0.01)                            # meanwhile the producer fills every buffer
            raise ValueError(f"item {item}")
        done.append(item)

    threads = threading.active_count()
    with pytest.raises(ValueError, match=f"^item {fail_from}$"):
        run_pipeline(consume, range(20), threaded=threaded)
    assert done == list(range(fail_from))
    assert threading.active_count() == threads


@pytest.mark.parametrize("threaded", [False, True])
def test_pipeline_stops_at_the_next_item_when_the_event_is_set(threaded):
    """Another pipeline (a lane) sets the shared event: this one ends without consuming the rest."""
    stop, done = threading.Event(), []

    def consume(b, item):
        done.append(item)
        if item == 5:
            stop.set()

    threads = threading.active_count()
    with pytest.raises(CancelledError):
        run_pipeline(consume, range(100), threaded=threaded, stop=stop)
    assert done == list(range(6))
    assert threading.active_count() == threads


def test_pipeline_set_while_the_producer_waits_for_a_buffer_ends_the_wait():
    """Every buffer in flight, the consumer stuck in a long item: setting the event frees the producer
    as soon as that item ends, and the waiting items are skipped."""
    stop, gate, done = threading.Event(), threading.Event(), []

    def cancel():
        stop.set()
        gate.set()

    timer = threading.Timer(0.2, cancel)

    def consume(b, item):
        if item == 0:
            timer.start()                           # the event is set while item 0 runs
        gate.wait()                                 # item 0 runs until the event is set
        done.append(item)

    with pytest.raises(CancelledError):
        run_pipeline(consume, range(10), buffers=2, stop=stop)
    timer.join()
    assert done == [0]


def test_pipeline_interrupted_in_the_producer_skips_the_rest_and_leaves_no_thread():
    """Ctrl-C in the producer while the consumer works on item 0: items 1, 2 are never consumed."""
    started, gate, done = threading.Event(), threading.Event(), []

    def consume(b, item):
        started.set()
        gate.wait()
        done.append(item)

    threads = threading.active_count()
    timer = threading.Timer(0.3, gate.set)          # item 0 ends after the interrupt reached the pipeline
    with pytest.raises(KeyboardInterrupt):
        with Pipeline(consume, 4, threaded=True) as pipe:
            for item in range(3):
                b = pipe.next_buffer()
                pipe.put(b, b, item)
            assert started.wait(10)                 # the consumer is inside item 0 (a busy machine may be slow)
            timer.start()
            raise KeyboardInterrupt
    timer.join()
    assert done == [0]
    assert threading.active_count() == threads
