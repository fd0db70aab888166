"""Full Lyapunov spectra: exact identities (log-determinant, k-volumes), linear maps with a known
spectrum, random tanh networks against Ginibre + mean-field theory, and D_KY / h_KS edge cases."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group

from gradlab import GradlabError
from gradlab.analysis.lyapunov import (kaplan_yorke_dimension, ks_entropy, lyapunov_exponents,
                                       lyapunov_spectrum)
from gradlab.analysis.mean_field import compute_mean_field, fixed_point_variance, gaussian_expectation
from gradlab.cells import make_cell
from gradlab.cells.rnn import RNNParams
from gradlab.experiments.chaos import autonomous_trace


def linear_trace(W, T, B=1, seed=0):
    """A linear RNN with no input: every J_t = W."""
    n = W.shape[0]
    params = RNNParams(W_xh=np.zeros((n, 1)), W_hh=W, b_h=np.zeros(n), W_hy=np.zeros((1, n)), b_y=np.zeros(1))
    h0 = np.random.default_rng(seed).standard_normal((B, n))
    return make_cell("rnn", "linear").forward(params, np.zeros((B, T, 1)), h0)


def driven_trace(cell, n=6, T=40, B=2, radius=1.4, seed=0):
    """A cell driven by random inputs: J_t changes from step to step."""
    rng = np.random.default_rng(seed)
    c = make_cell(cell)
    p = c.init_params(n, 2, radius=radius, rng=rng)
    return c.forward(p, rng.standard_normal((B, T, 2)))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("warmup", [0, 7])
def test_full_spectrum_sums_to_the_mean_log_determinant(cell, warmup):
    """Π_i |R_ii| = |det J_t| at every step: Σ_i λ_i = mean_t ln|det J_t| over the counted steps,
    and per step (window = 1) Σ_i of the local exponents is ln|det J_t|, both to rounding (1e-11).

    det from slogdet of the dense ``trace.jacobian(t)``: an implementation independent of the QR loop.
    """
    tr = driven_trace(cell)
    sp = lyapunov_spectrum(tr, warmup=warmup, window=1)
    s, counted = tr.state_size, tr.T - warmup
    assert sp.exponents.shape == (tr.B, s) and sp.local.shape == (tr.B, counted, s) and sp.full
    logdet = np.stack([np.linalg.slogdet(tr.jacobian(t))[1] for t in range(1, counted + 1)], axis=1)   # (B, T')
    assert sp.exponents.sum(axis=1) == pytest.approx(logdet.mean(axis=1), rel=1e-11, abs=1e-11)
    assert sp.local.sum(axis=2) == pytest.approx(logdet, rel=1e-11, abs=1e-11)
    assert sp.mean_exponent == pytest.approx(logdet.mean(axis=1) / s, rel=1e-11, abs=1e-11)


def test_partial_sums_are_the_growth_of_the_k_volumes_of_the_start_vectors():
    """Brute force: Σ_{i≤j} λ_i · T = ln vol_j(first j start rows · J_T ⋯ J_1), for every j, via an SVD."""
    # short: σ_1/σ_5 of the product is ≈ e^12, well within what an SVD resolves
    tr = driven_trace("rnn", n=5, T=8, B=1, radius=1.3, seed=1)
    sp = lyapunov_spectrum(tr, rng=np.random.default_rng(5))
    Q, _ = np.linalg.qr(np.random.default_rng(5).standard_normal((1, 5, 5)))
    V = Q[0].T
    for t in range(tr.T, 0, -1):
        V = V @ tr.jacobian(t)[0]
    for j in range(1, 6):
        log_volume = np.sum(np.log(np.linalg.svd(V[:j], compute_uv=False)))
        assert sp.exponents[0, :j].sum() * tr.T == pytest.approx(log_volume, rel=1e-10, abs=1e-10)


def test_leading_k_agree_with_lyapunov_exponents_and_windows_average_to_the_exponents():
    tr = driven_trace("rnn", n=8, T=60, B=2)
    sp = lyapunov_spectrum(tr, k=3, warmup=10, window=5, rng=np.random.default_rng(3))
    assert np.array_equal(sp.exponents, lyapunov_exponents(tr, k=3, warmup=10, rng=np.random.default_rng(3)))
    assert sp.local.shape == (2, 10, 3)                      # 50 counted steps / 5
    assert sp.local.mean(axis=1) == pytest.approx(sp.exponents, rel=1e-12, abs=1e-12)
    assert sp.window_steps.tolist()[:2] == [[1, 5], [6, 10]] and sp.window_steps[-1].tolist() == [46, 50]
    partial = lyapunov_spectrum(tr, k=3, warmup=10, window=7)      # 7 windows, steps 50 and 49 left out
    assert partial.local.shape == (2, 7, 3) and partial.window_steps[-1].tolist() == [43, 49]
    assert lyapunov_spectrum(tr, k=2, window=0).local.shape == (2, 0, 2)


def normal_matrix(kind: str, rng):
    """A normal W (W Wᵀ = Wᵀ W) and the sorted ln|eigenvalues| of it."""
    if kind == "symmetric":
        lam = np.array([1.4, -1.1, 0.8, -0.6, 0.45, 0.3])
        return ortho_group.rvs(6, random_state=4) @ np.diag(lam) @ ortho_group.rvs(6, random_state=4).T, \
            np.sort(np.log(np.abs(lam)))[::-1]
    # orthogonal conjugate of 2 scaled rotations (complex pairs) and 4 real eigenvalues
    L = np.zeros((8, 8))
    for i, (r, a) in enumerate([(1.2, 0.7), (0.7, 2.1)]):
        L[2 * i:2 * i + 2, 2 * i:2 * i + 2] = r * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    real = np.array([1.5, -0.9, 0.45, -0.3])
    L[4:, 4:] = np.diag(real)
    Q = ortho_group.rvs(8, random_state=5)
    moduli = np.concatenate([[1.2, 1.2, 0.7, 0.7], np.abs(real)])
    return Q @ L @ Q.T, np.sort(np.log(moduli))[::-1]


@pytest.mark.parametrize("kind", ["symmetric", "rotations"])
def test_full_spectrum_of_a_normal_linear_rnn_is_its_sorted_log_moduli(kind):
    """Distinct moduli ≥ e^0.2 apart: after 150 aligning steps the misalignment is ≤ e^-30, so every
    counted step gives ln|λ_i| to rounding (abs 1e-9); complex pairs give ln r twice."""
    W, expected = normal_matrix(kind, np.random.default_rng(0))
    assert np.allclose(W @ W.T, W.T @ W, atol=1e-12)
    sp = lyapunov_spectrum(linear_trace(W, 400), warmup=150)
    assert sp.exponents[0] == pytest.approx(expected, abs=1e-9)
    assert sp.ks_entropy[0] == pytest.approx(expected[expected > 0].sum(), abs=1e-9)


def test_random_tanh_network_agrees_with_ginibre_and_mean_field():
    """W_hh ~ N(0, g²/n), no input, tanh, g = 3 (chaos): mean exponent ≈ ln g − ½ + E[ln φ'(√q* z)] and
    λ_1 ≈ ½ ln χ₁, averaged over 6 networks (n = 128, 200 burn-in + 250 recorded steps, 50 aligning).

    Σ_i λ_i = (1/T') Σ_t [ln|det W| + Σ_i ln φ'(a_ti)]; E ln|det W|/n → ln g − ½ for Ginibre W and
    the units' a_ti are N(0, q*) in mean-field theory. Calibrated on 60 independent networks (seeds
    100–159, not the ones tested) at this size: per network the mean exponent's offset from theory
    has mean −0.010, sd 0.054 (finite-n spread of the activity variance), λ_1's mean −0.021, sd 0.0096
    (the finite-n offset). Six networks: standard errors 0.022 and 0.004; tolerance |offset| + 4 se,
    0.10 and 0.04 nats/step, against a mean exponent of −2.27 and λ_1 = 0.31.
    """
    g, n = 3.0, 128
    q = fixed_point_variance(g, "tanh")
    mean_theory = np.log(g) - 0.5 + gaussian_expectation(lambda a: -2.0 * np.log(np.cosh(a)), q)
    lam1_theory = compute_mean_field(g, "tanh").lyapunov
    spectra = [lyapunov_spectrum(autonomous_trace(n, g, "tanh", steps=250, burn=200,
                                                  rng=np.random.default_rng(seed)), warmup=50, window=0)
               for seed in range(6)]
    assert np.mean([sp.mean_exponent[0] for sp in spectra]) == pytest.approx(mean_theory, abs=0.10)
    assert np.mean([sp.largest[0] for sp in spectra]) == pytest.approx(lam1_theory, abs=0.04)
    assert mean_theory == pytest.approx(-2.273, abs=1e-3) and lam1_theory == pytest.approx(0.310, abs=1e-3)
    assert all(0 < sp.kaplan_yorke[0] < n and sp.ks_entropy[0] > 0 for sp in spectra)   # a strange attractor


def test_kaplan_yorke_edge_cases_and_known_values():
    assert kaplan_yorke_dimension([-0.1, -0.5, -2.0]) == 0.0                 # all negative: a fixed point
    assert kaplan_yorke_dimension([0.3, 0.1, -0.2]) == 3.0                   # Σ over all ≥ 0: the full dimension
    assert kaplan_yorke_dimension([0.0, -1.0]) == pytest.approx(1.0)         # a limit cycle
    assert kaplan_yorke_dimension([-14.5723, 0.9056, 0.0]) == pytest.approx(2 + 0.9056 / 14.5723)  # any order
    assert kaplan_yorke_dimension([0.5, -0.25, -1.0]) == pytest.approx(2.25)
    assert kaplan_yorke_dimension([0.5, -np.inf]) == pytest.approx(1.0)      # an exactly singular direction
    assert np.isnan(kaplan_yorke_dimension([0.5, 0.2], state_size=10))       # crossing beyond the k computed
    assert kaplan_yorke_dimension([0.5, -1.0], state_size=10) == pytest.approx(1.5)
    assert np.isnan(kaplan_yorke_dimension([0.5, np.nan]))
    batch = kaplan_yorke_dimension(np.array([[-1.0, -2.0], [1.0, 2.0], [1.0, -2.0]]))
    assert batch.tolist() == [0.0, 2.0, 1.5]


def test_ks_entropy_is_the_sum_of_positive_exponents():
    assert ks_entropy([0.3, 0.1, 0.0, -0.2]) == pytest.approx(0.4)
    assert ks_entropy([-0.1, -np.inf]) == 0.0
    assert np.isnan(ks_entropy([0.3, 0.1], state_size=5))                   # more positive ones may follow
    assert ks_entropy([0.3, -0.1], state_size=5) == pytest.approx(0.3)


def test_tables_have_the_documented_columns():
    tr = driven_trace("rnn", n=4, T=30, B=2)
    sp = lyapunov_spectrum(tr, warmup=5, window=5)
    t = sp.table(g=1.4)
    assert list(t.columns) == ["g", "sequence", "index", "exponent", "index_fraction"] and len(t) == 8
    assert t.index_fraction.max() == 1.0 and np.array_equal(t.exponent, sp.exponents.ravel())
    summary = sp.summary_table()
    assert list(summary.columns) == ["sequence", "state_size", "k", "steps", "warmup", "largest", "mean_exponent",
                                     "sum_exponents", "kaplan_yorke", "ks_entropy"]
    assert summary.steps.tolist() == [25, 25] and np.array_equal(summary.kaplan_yorke, sp.kaplan_yorke)
    local = sp.local_table()
    assert list(local.columns) == ["sequence", "window", "t_start", "t_end", "index", "exponent"]
    assert len(local) == 2 * 5 * 4 and local.t_end.max() == 25
    assert np.array_equal(local.exponent, sp.local.ravel())


@pytest.mark.parametrize("kwargs,message", [
    ({"k": 5}, "k (number of exponents) must be at most the state size 4, got 5"),
    ({"k": 0}, "k (number of exponents) must be a whole number ≥ 1, got 0"),
    ({"warmup": 30}, "warmup must be smaller than the number of steps T = 30, got 30"),
    ({"window": -1}, "window must be a whole number ≥ 0, got -1"),
])
def test_bad_arguments_are_one_line_errors_naming_the_value(kwargs, message):
    tr = driven_trace("rnn", n=4, T=30, B=1)
    with pytest.raises(GradlabError) as e:
        lyapunov_spectrum(tr, **kwargs)
    assert str(e.value) == message


def test_bad_exponent_arrays_are_refused():
    with pytest.raises(GradlabError, match=r"got shape \(0,\)"):
        kaplan_yorke_dimension([])
    with pytest.raises(GradlabError, match="got 3 exponents for a state of size 2"):
        ks_entropy([0.1, 0.2, 0.3], state_size=2)
    with pytest.raises(GradlabError, match=r"\+inf"):
        kaplan_yorke_dimension([np.inf, -1.0])


def test_direct_lapack_qr_gives_the_same_bits_as_numpys(monkeypatch):
    """Blocks above LAPACK_MIN_SIZE skip numpy's wrapper but call the same routines: identical Q and ln|R_ii|,
    including a zero row (an exactly contracted direction: −inf)."""
    from gradlab.analysis import lyapunov

    P = np.random.default_rng(6).standard_normal((2, 70, 90))
    P[1, 4] = 0.0
    Q_direct, log_direct = lyapunov.reorthonormalise(P)
    monkeypatch.setattr(lyapunov, "LAPACK_MIN_SIZE", 10 ** 9)
    Q_numpy, log_numpy = lyapunov.reorthonormalise(P)
    assert np.array_equal(Q_direct, Q_numpy) and np.array_equal(log_direct, log_numpy)
    assert np.isneginf(log_direct[1, 4]) and np.isfinite(np.delete(log_direct, [74])).all()
    assert Q_direct[0] @ Q_direct[0].T == pytest.approx(np.eye(70), abs=1e-14)
