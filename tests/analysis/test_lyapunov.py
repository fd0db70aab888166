"""Lyapunov exponents: exact identities on short products, linear maps with a known spectrum,
and the mean-field prediction for large random tanh networks (a statistical check)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group

import gradlab as gl
from gradlab.experiments.chaos import LyapunovConfig, autonomous_trace, measure_exponent


def linear_trace(W, T, B=1, seed=0):
    """A linear RNN with no input: every J_t = W."""
    n = W.shape[0]
    params = gl.RNNParams(W_xh=np.zeros((n, 1)), W_hh=W, b_h=np.zeros(n), W_hy=np.zeros((1, n)), b_y=np.zeros(1))
    return gl.forward(params, np.zeros((B, T, 1)), "linear", h0=np.random.default_rng(seed).standard_normal((B, n)))


def test_largest_exponent_is_the_growth_of_the_same_vector_computed_densely():
    """With no warm-up, λ_1·T = ln‖u J_T ⋯ J_1‖ for the unit start vector u drawn from the same rng."""
    rng = np.random.default_rng(0)
    p = gl.init_params(n=6, d=2, radius=1.7, rng=rng)
    tr = gl.forward(p, rng.standard_normal((2, 30, 2)), "tanh")
    lam = gl.largest_lyapunov(tr, rng=np.random.default_rng(11))
    u = np.random.default_rng(11).standard_normal((2, 6, 1))[..., 0]
    for b in range(2):
        v = u[b] / np.linalg.norm(u[b])
        for t in range(30, 0, -1):
            v = v @ tr.jacobian(t)[b]
        assert lam[b] == pytest.approx(np.log(np.linalg.norm(v)) / 30, rel=1e-12)


def test_sum_of_k_exponents_is_the_growth_of_the_k_volume():
    """Σ_{i≤k} ln|R_ii| is ln of the k-volume spanned by the propagated start vectors."""
    rng = np.random.default_rng(1)
    p = gl.init_params(n=7, d=2, radius=1.3, rng=rng)
    tr = gl.forward(p, rng.standard_normal((1, 25, 2)), "tanh")
    k = 3
    lam = gl.lyapunov_exponents(tr, k=k, rng=np.random.default_rng(5))
    Q, _ = np.linalg.qr(np.random.default_rng(5).standard_normal((1, 7, k)))
    V = Q[0].T
    for t in range(25, 0, -1):
        V = V @ tr.jacobian(t)[0]
    log_volume = np.sum(np.log(np.linalg.svd(V, compute_uv=False)))   # k-volume = Π singular values
    assert lam.sum() * 25 == pytest.approx(log_volume, rel=1e-10)


def test_linear_rnn_exponent_equals_log_spectral_radius():
    """A non-normal Gaussian W: λ_1 → ln ρ(W) (Gelfand), despite σ_max(W) ≈ 2ρ."""
    rng = np.random.default_rng(2)
    W = rng.standard_normal((30, 30)) / np.sqrt(30)
    tr = linear_trace(W, 3000)
    lam = gl.largest_lyapunov(tr, warmup=200)[0]
    assert lam == pytest.approx(np.log(gl.spectral_radius(W)), abs=2e-3)
    assert abs(lam - np.log(gl.sigma_max(W))) > 0.3       # and not the one-step bound


@pytest.mark.parametrize("complex_pairs", [False, True])
def test_leading_exponents_of_a_normal_matrix_are_log_moduli(complex_pairs):
    """W = Q Λ Qᵀ, Q orthogonal: exponents are the sorted ln|λ_i| (complex pairs: both equal ln r)."""
    rng = np.random.default_rng(3)
    n, k = 10, 4
    moduli = np.array([1.3, 1.1, 0.8, 0.6, 0.5])
    if complex_pairs:
        blocks = [r * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
                  for r, a in zip(moduli, rng.uniform(0.3, 2.5, size=5))]
        L = np.zeros((n, n))
        for i, blk in enumerate(blocks):
            L[2 * i:2 * i + 2, 2 * i:2 * i + 2] = blk
        expected = np.log(np.repeat(moduli, 2))[:k]
    else:
        lam = np.concatenate([moduli, -moduli * 0.9])
        L = np.diag(lam)
        expected = np.sort(np.log(np.abs(lam)))[::-1][:k]
    Q = ortho_group.rvs(n, random_state=4)
    tr = linear_trace(Q @ L @ Q.T, 600)
    got = gl.lyapunov_exponents(tr, k=k, warmup=100)[0]
    assert got == pytest.approx(expected, abs=2e-3)


def test_exactly_zero_product_gives_minus_infinity():
    """ReLU with every unit off: J_t = 0, the product is exactly 0, λ = −inf (no warning, no nan)."""
    n = 4
    params = gl.RNNParams(W_xh=-np.ones((n, 1)), W_hh=np.eye(n), b_h=np.zeros(n), W_hy=np.zeros((1, n)),
                          b_y=np.zeros(1))
    tr = gl.forward(params, np.ones((1, 10, 1)), "relu")
    assert gl.largest_lyapunov(tr)[0] == -np.inf
    assert np.all(gl.lyapunov_exponents(tr, k=2) == -np.inf)


def test_lstm_and_gru_traces_work_and_match_their_norm_growth():
    """The largest exponent is the slope of ln‖∂s_T/∂s_k‖ against lag (same recorded Jacobians)."""
    rng = np.random.default_rng(5)
    for cell in ("lstm", "gru"):
        p = gl.init_gated_params(cell, 8, 2, radius=2.0, rng=rng)
        tr = gl.forward_gated(p, rng.standard_normal((1, 400, 2)))
        lam = gl.largest_lyapunov(tr, warmup=50)[0]
        jn = gl.jacobian_norms(tr, "last")
        slope = gl.fit_growth_rate(jn.lag[50:], jn.log_norm[0, 50:])
        assert lam == pytest.approx(slope, abs=0.02), cell


def test_bad_arguments_are_named():
    tr = linear_trace(np.eye(3), 10)
    with pytest.raises(gl.GradlabError, match="warmup"):
        gl.largest_lyapunov(tr, warmup=10)
    with pytest.raises(gl.GradlabError, match="at most the state size 3, got 4"):
        gl.lyapunov_exponents(tr, k=4)


def test_scale_free_trajectories_are_renormalised_without_changing_jacobians():
    """ReLU at g = 0.5 would underflow to exactly 0 in ~700 steps; the blocks keep every J_t exact."""
    tr = autonomous_trace(50, 0.5, "relu", steps=1500, burn=100, rng=np.random.default_rng(0))
    assert tr.T == 1500 and np.all(np.isfinite(tr.h)) and np.mean(tr.dphi) > 0.3
    lam = gl.largest_lyapunov(tr, warmup=50)[0]
    assert np.isfinite(lam)


@pytest.mark.parametrize("g", [1.5, 2.5])
def test_large_random_tanh_network_agrees_with_mean_field(g):
    """Chaotic phase, n = 400, 1000 recorded steps, two seeds: |λ_measured − ½ ln χ₁| < 0.02 nats/step.

    Measured spread between seeds at these sizes is ~0.005 and the finite-n
    offset ~0.01 (see README); below g = 1 the measured value is ln ρ(W), a
    few per cent above ln g at finite n, so the test stays in the chaotic phase.
    """
    measured = [measure_exponent(LyapunovConfig("tanh", g, seed, hidden=400, steps=1000, warmup=100, burn=200))
                for seed in (0, 1)]
    theory = gl.compute_mean_field(g, "tanh").lyapunov
    assert np.mean(measured) == pytest.approx(theory, abs=0.02)
    assert theory > 0.05     # a real prediction, not the trivial 0


def test_cli_lyapunov_writes_the_documented_tables_and_its_figure(tmp_path, capsys):
    from gradlab.cli import main
    from gradlab.plots import draw_figure

    out = tmp_path / "ly"
    with pytest.raises(SystemExit) as e:
        main(["lyapunov", "-a", "tanh", "-a", "relu", "--gains", "0.5,2", "--hidden", "20", "--steps", "60",
              "--burn", "10", "--warmup", "10", "--seeds", "2", "--out", str(out)])
    assert e.value.code == 0
    printed = capsys.readouterr().out
    assert "tanh: transition at g = 1\n" in printed and "8 networks (8 computed)" in printed
    tables = {kind: gl.schema.read_table(out / f"{kind}.csv", kind) for kind in ("lyapunov", "mean_field",
                                                                                  "transitions")}
    assert len(tables["lyapunov"]) == 2 * 2 * 2                # activations × gains × seeds
    # the scan is a sweep: the same command resumes it, computing nothing again
    with pytest.raises(SystemExit) as e:
        main(["lyapunov", "-a", "tanh", "-a", "relu", "--gains", "0.5,2", "--hidden", "20", "--steps", "60",
              "--burn", "10", "--warmup", "10", "--seeds", "2", "--out", str(out)])
    assert e.value.code == 0 and "8 networks (0 computed, 8 were already done)" in capsys.readouterr().out
    # one seed's networks share W₀ across gains and activations (W_hh = g W₀): at g = 0.5 both are ordered
    lam = tables["lyapunov"].set_index(["activation", "g", "seed"])["lyapunov"]
    assert lam.loc[("tanh", 0.5, 0)] != lam.loc[("tanh", 0.5, 1)]
    assert set(tables["mean_field"].activation) == {"tanh", "relu"}
    paths = draw_figure("lyapunov", out, tmp_path / "fig", "png")
    assert paths[0].stat().st_size > 10_000
    (out / "mean_field.csv").write_text(tables["mean_field"].drop(columns="chi1").to_csv(index=False))
    with pytest.raises(gl.GradlabError, match="lacks column 'chi1'"):
        draw_figure("lyapunov", out, tmp_path / "fig2", "png")


def test_a_gain_range_is_capped_before_it_is_built():
    """`--gains 1:2:1e-9` built a billion gains and was killed for lack of memory; now it is refused at once."""
    from gradlab.experiments.chaos import MAX_GAINS, parse_gains

    assert MAX_GAINS == 1000 and len(parse_gains("1:1000:1")) == 1000
    for spec, count in [("1:1001:1", "1,001"), ("1:2:1e-9", "1,000,000,000"), ("1:1e308:1e-308", "inf")]:
        with pytest.raises(gl.GradlabError, match=f"gains '{spec}' asks for {count} values; at most {MAX_GAINS}"):
            parse_gains(spec)


@pytest.mark.parametrize("argv,message", [
    (["--gains", "0:1:0.5"], "gains must be positive"),
    (["--gains", "a,b"], "gains must be START:STOP:STEP"),
    (["--gains", "1:2:1e-4"], "gains '1:2:1e-4' asks for 10,001 values; at most 1000"),
    (["--gains", "1:2"], "gains must be START:STOP:STEP"),
    (["--warmup", "100", "--steps", "50"], "warmup must be smaller than steps"),
    (["--steps", "0"], "steps must be a whole number ≥ 1, got 0"),        # not blamed on warmup
    (["--warmup", "-1"], "warmup must be a whole number ≥ 0, got -1"),
    (["--seeds", "0"], "seeds must be a whole number ≥ 1, got 0"),
])
def test_cli_lyapunov_bad_input_is_one_line_exit_2_nothing_written(argv, message, tmp_path, capsys):
    from gradlab.cli import main

    with pytest.raises(SystemExit) as e:
        main(["lyapunov", "--hidden", "5", "--out", str(tmp_path / "o")] + argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
