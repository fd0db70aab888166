"""Initialisers with exact spectra, and the spectrum of W_hh (ρ is a rate, σ_max the bound)."""
import numpy as np
import pytest
import scipy.linalg

import gradlab as gl
from gradlab.io.schema import COLUMNS


def rho(W):
    """Spectral radius, computed with scipy (independently of gradlab.analysis.spectrum)."""
    return np.max(np.abs(scipy.linalg.eigvals(W)))


def svals(W):
    return scipy.linalg.svdvals(W)


@pytest.mark.parametrize("n", [1, 2, 7, 40])
@pytest.mark.parametrize("radius", [0.3, 1.0, 2.5])
def test_gaussian_init_has_the_requested_spectral_radius(n, radius):
    W = gl.init_recurrent(n, "gaussian", radius, np.random.default_rng(n))
    assert rho(W) == pytest.approx(radius, rel=1e-12)
    assert gl.spectral_radius(W) == pytest.approx(radius, rel=1e-12)


@pytest.mark.parametrize("n", [1, 5, 40])
@pytest.mark.parametrize("radius", [0.3, 1.0, 2.5])
def test_scale_by_sigma_max_hits_sigma_max(n, radius):
    W = gl.init_recurrent(n, "gaussian", radius, np.random.default_rng(n), scale_by="sigma_max")
    assert svals(W)[0] == pytest.approx(radius, rel=1e-12)
    assert gl.sigma_max(W) == pytest.approx(radius, rel=1e-12)
    assert rho(W) <= radius * (1 + 1e-12)


@pytest.mark.parametrize("radius", [0.5, 1.0, 3.0])
def test_orthogonal_init_has_every_singular_value_equal_to_radius(radius):
    W = gl.init_recurrent(9, "orthogonal", radius, np.random.default_rng(0))
    np.testing.assert_allclose(svals(W), radius, rtol=1e-12)
    np.testing.assert_allclose(np.abs(scipy.linalg.eigvals(W)), radius, rtol=1e-12)
    np.testing.assert_allclose(W.T @ W, radius ** 2 * np.eye(9), atol=1e-12 * radius ** 2)


def test_orthogonal_init_is_haar_distributed():
    """Haar measure is invariant under sign flips, so E[Q_00] = 0 (Var = 1/n).

    A plain QR without the sign fix has Q_00 = −|a_00| / ‖a_0‖ < 0 always
    (LAPACK's Householder convention), mean ≈ −0.5 for n = 3.
    """
    rng = np.random.default_rng(1)
    n, draws = 3, 2000
    q00 = np.array([gl.init_recurrent(n, "orthogonal", 1.0, rng)[0, 0] for _ in range(draws)])
    se = np.sqrt(1 / n / draws)
    assert abs(q00.mean()) < 5 * se
    assert q00.var() == pytest.approx(1 / n, rel=0.15)


@pytest.mark.parametrize("radius", [0.5, 2.0])
def test_identity_init_is_radius_times_identity(radius):
    np.testing.assert_array_equal(gl.init_recurrent(4, "identity", radius), radius * np.eye(4))


@pytest.mark.parametrize("seed", range(10))
def test_sigma_max_is_at_least_rho(seed):
    """‖W‖₂ ≥ |λ| for every eigenvalue: σ_max bounds ρ for any matrix."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((6, 6)) * rng.uniform(0.1, 3)
    assert gl.sigma_max(W) >= gl.spectral_radius(W) * (1 - 1e-14)


def test_large_gaussian_matrix_has_sigma_max_near_twice_rho():
    """Circular law and the quarter-circle edge: ρ → 1 and σ_max → 2 for N(0, 1/n) entries."""
    W = np.random.default_rng(2).standard_normal((400, 400)) / np.sqrt(400)
    assert rho(W) == pytest.approx(1.0, abs=0.05)
    assert svals(W)[0] == pytest.approx(2.0, abs=0.05)
    rescaled = gl.init_recurrent(400, "gaussian", 1.0, np.random.default_rng(2))
    assert gl.sigma_max(rescaled) == pytest.approx(2.0, abs=0.1)


def test_rho_is_not_a_bound_transient_growth_of_a_gaussian_W():
    """For non-normal W, ‖W^k‖ > ρ^k at small k; only ‖W^k‖^(1/k) → ρ (Gelfand)."""
    W = gl.init_recurrent(30, "gaussian", 1.0, np.random.default_rng(3))
    r, s = gl.spectral_radius(W), gl.sigma_max(W)
    powers = [np.linalg.matrix_power(W, k) for k in range(1, 301)]
    norms = np.array([np.linalg.norm(P, 2) for P in powers])
    k = np.arange(1, 301)
    assert np.all(norms[:5] > r ** k[:5] * 1.2)               # ρ^k fails as a bound, by > 20 %
    assert np.all(norms <= s ** k * (1 + 1e-12))              # σ_max^k holds as a bound
    assert norms[-1] ** (1 / 300) == pytest.approx(r, abs=0.03)  # the asymptotic rate is ρ


def test_eigenvalues_and_singular_values_are_sorted_largest_first():
    W = np.random.default_rng(4).standard_normal((7, 7))
    lam, sv = gl.eigenvalues(W), gl.singular_values(W)
    assert np.all(np.diff(np.abs(lam)) <= 1e-14) and np.all(np.diff(sv) <= 0)
    np.testing.assert_allclose(np.sort_complex(lam), np.sort_complex(scipy.linalg.eigvals(W)), rtol=1e-12)
    np.testing.assert_allclose(sv, svals(W), rtol=1e-12)
    assert abs(lam[0]) == pytest.approx(gl.spectral_radius(W), rel=1e-15)
    assert sv[0] == pytest.approx(gl.sigma_max(W), rel=1e-15)


def test_spectrum_table_has_the_documented_columns_and_values():
    W = np.random.default_rng(5).standard_normal((5, 5))
    table = gl.spectrum_table(W)
    assert tuple(table.columns[:len(COLUMNS["spectrum"])]) == COLUMNS["spectrum"]
    eig, sing = table[table.kind == "eigenvalue"], table[table.kind == "singular_value"]
    assert len(eig) == len(sing) == 5 and list(eig["index"]) == list(range(5))
    np.testing.assert_allclose(eig["abs"], np.hypot(eig["real"], eig["imag"]), rtol=1e-14)
    np.testing.assert_allclose(sing["abs"], svals(W), rtol=1e-12)
    assert np.all(sing["imag"] == 0)
    # Complex eigenvalues of a real matrix come in conjugate pairs.
    np.testing.assert_allclose(np.sort(eig["imag"]), np.sort(-eig["imag"]), atol=1e-12)


def test_init_params_shapes_defaults_and_reproducibility():
    p = gl.init_params(n=6, d=3, radius=1.5, rng=np.random.default_rng(6))
    assert (p.n, p.d, p.m) == (6, 3, 3)  # m defaults to d
    assert p.W_xh.shape == (6, 3) and p.W_hy.shape == (3, 6)
    assert np.all(p.b_h == 0) and np.all(p.b_y == 0)
    assert gl.spectral_radius(p.W_hh) == pytest.approx(1.5, rel=1e-12)
    again = gl.init_params(n=6, d=3, radius=1.5, rng=np.random.default_rng(6))
    other = gl.init_params(n=6, d=3, radius=1.5, rng=np.random.default_rng(7))
    for name in gl.PARAM_NAMES:
        np.testing.assert_array_equal(getattr(p, name), getattr(again, name))
    assert not np.array_equal(p.W_hh, other.W_hh)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n=0), r"hidden size n must be a whole number ≥ 1, got 0"),
    (dict(n=2.5), r"got 2\.5"),
    (dict(n=3, radius=0.0), r"radius must be a positive number, got 0\.0"),
    (dict(n=3, radius=-1.0), r"got -1\.0"),
    (dict(n=3, radius=float("nan")), r"got nan"),
    (dict(n=3, radius=float("inf")), r"got inf"),
    (dict(n=3, init="xavier"), r"unknown init 'xavier'; choose one of gaussian, orthogonal, identity"),
    (dict(n=3, scale_by="frobenius"), r"unknown scale_by 'frobenius'"),
])
def test_bad_init_arguments_name_the_value(kwargs, message):
    with pytest.raises(gl.GradlabError, match=message):
        gl.init_recurrent(**kwargs)


def test_bad_sizes_in_init_params_name_the_value():
    with pytest.raises(gl.GradlabError, match=r"input size d must be a whole number ≥ 1, got 0"):
        gl.init_params(n=3, d=0)
    with pytest.raises(gl.GradlabError, match=r"output size m must be a whole number ≥ 1, got -2"):
        gl.init_params(n=3, d=2, m=-2)
