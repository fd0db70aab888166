"""The sweep kinds of the dynamical-systems view: lyapunov_spectrum (full spectra) and fixed_points.

Known answers: a network that sits at a fixed point (or is linear) multiplies the same J every step, so
its exponents are ln|μ_i| of J's eigenvalues and their sum is ln|det J| (Oseledets; exact for a constant
product); k = 1 is the λ₁ scan's number to the last bit; tanh(diag(2, 3) h) has 4 stable points, 4 saddles
and a repeller; a 16-unit RNN trained on the 3-bit flip-flop has 8 stable points."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dynamics_results import FIXED_POINT_SWEEP, SPECTRUM_SWEEP, rnn_weights, sweep
from gradlab import GradlabError
from gradlab.experiments import chaos, kinds
from gradlab.experiments.kinds import KINDS, FixedPointConfig
from gradlab.experiments.sweep import parse_spec, plan, run_tables
from gradlab.io.schema import TABLES, read_table


def spectrum(**params):
    return kinds.measure_spectrum(kinds.SpectrumConfig.from_dict(params))


# ---------------------------------------------------------------- lyapunov_spectrum: numbers

def test_k1_is_the_largest_exponent_of_the_lyapunov_scan_bit_for_bit():
    """Same seed, gain and sizes: the same network W_hh = g W₀ and h_0, the same start vector."""
    for g in (0.7, 2.0):
        lam = chaos.measure_exponent(chaos.LyapunovConfig("tanh", g, 3, hidden=30, steps=200, warmup=20, burn=40))
        sp = spectrum(activation="tanh", g=g, seed=3, hidden=30, steps=200, warmup=20, burn=40, leading=1)
        assert sp.exponents.shape == (1, 1) and sp.largest[0] == lam


def test_a_linear_random_network_has_the_log_moduli_of_its_eigenvalues_as_exponents():
    """h_t = W h_{t−1}: J_t = W every step, so λ_i = ln|μ_i(W)| (sorted) and Σλ_i = ln|det W| exactly.
    W is drawn here from the seed as autonomous_trace draws it (its first draw). 1500 counted products:
    the estimates converge as e^(−gap·T); abs tolerance 2e-3 on each, 1e-9 on the sum (rounding)."""
    n, g, seed = 12, 0.9, 5
    W = g * np.random.default_rng(seed).standard_normal((n, n)) / np.sqrt(n)
    mu = np.sort(np.log(np.abs(np.linalg.eigvals(W))))[::-1]
    sp = spectrum(activation="linear", g=g, seed=seed, hidden=n, steps=2000, warmup=500, burn=0, window=0)
    assert np.sort(sp.exponents[0])[::-1] == pytest.approx(mu, abs=2e-3)
    assert sp.exponents.sum() == pytest.approx(np.log(abs(np.linalg.det(W))), abs=1e-9)
    assert sp.kaplan_yorke[0] == 0 and sp.ks_entropy[0] == 0          # every |μ| < 1 here: all negative
    assert mu[0] < 0


def test_a_weights_file_resting_at_its_fixed_point_gives_the_eigenvalues_of_W(tmp_path):
    """Zero biases, no input, s_0 = 0: tanh keeps h = 0, J_t = diag(tanh'(0)) W = W at every step."""
    rng = np.random.default_rng(1)
    W = 1.3 * rng.standard_normal((10, 10)) / np.sqrt(10)     # ρ > 1: 0 is unstable, but never left from 0
    path = rnn_weights(tmp_path / "w.npz", W)
    sp = spectrum(weights=str(path), steps=1500, warmup=300, burn=5)
    mu = np.sort(np.log(np.abs(np.linalg.eigvals(W))))[::-1]
    assert np.sort(sp.exponents[0])[::-1] == pytest.approx(mu, abs=2e-3)
    assert sp.largest[0] > 0 and 0 < sp.kaplan_yorke[0] <= 10       # an unstable rest point: D_KY > 0
    assert sp.ks_entropy[0] == pytest.approx(mu[mu > 0].sum(), abs=5e-3)


def test_chaotic_tanh_network_has_a_fractional_dimension_and_positive_entropy():
    sp = spectrum(activation="tanh", g=3.0, seed=0, hidden=40, steps=400, warmup=100, burn=100)
    lam = sp.exponents[0]
    assert lam[0] > 0.1 and lam.sum() < 0                      # stretching, yet contracting volumes
    assert 1 < sp.kaplan_yorke[0] < 40
    assert sp.ks_entropy[0] == pytest.approx(lam[lam > 0].sum())


def test_every_cell_and_every_drive_records_a_spectrum(tmp_path):
    sp = spectrum(cell="lstm", g=1.5, hidden=5, steps=80, warmup=10, burn=10, batch=2)
    assert sp.exponents.shape == (2, 10) and sp.state_size == 10     # (h, C)
    sp = spectrum(cell="gru", g=1.5, hidden=5, steps=80, warmup=10, burn=10, leading=3)
    assert sp.exponents.shape == (1, 3) and sp.state_size == 5
    rng = np.random.default_rng(2)
    path = rnn_weights(tmp_path / "w.npz", rng.standard_normal((6, 6)) / np.sqrt(6), rng.standard_normal((6, 3)),
                       rng.standard_normal(6))
    driven = spectrum(weights=str(path), drive="gaussian", steps=100, warmup=10, burn=10, batch=3, seed=4)
    assert driven.exponents.shape == (3, 6)
    assert not np.allclose(driven.exponents[0], driven.exponents[1])   # three input sequences
    x = rng.standard_normal((2, 70, 3))
    np.save(tmp_path / "x.npy", x)
    filed = spectrum(weights=str(path), drive="file", input_seq=str(tmp_path / "x.npy"), burn=20, warmup=5)
    assert filed.exponents.shape == (2, 6) and filed.steps == 70 - 20 - 5


# ---------------------------------------------------------------- lyapunov_spectrum: the sweep

def test_sweep_writes_the_registered_tables_and_resumes(tmp_path):
    out = tmp_path / "s"
    outcome = sweep(SPECTRUM_SWEEP, out)
    assert outcome.n_computed == 4 and set(outcome.tables) == {"runs", "lyapunov_spectrum", "lyapunov_summary",
                                                               "lyapunov_local", "transitions"}
    tables = {k: read_table(out / TABLES[k].file, k) for k in ("lyapunov_spectrum", "lyapunov_summary",
                                                              "lyapunov_local", "transitions")}
    spec, summ, local = tables["lyapunov_spectrum"], tables["lyapunov_summary"], tables["lyapunov_local"]
    assert len(spec) == 4 * 12 and spec["index_fraction"].max() == 1.0
    assert list(summ.columns[:9]) == ["run_id", "g", "seed", "activation", "hidden", "steps", "warmup", "burn",
                                      "window"]
    assert (summ["counted_steps"] == 100).all() and (summ["n_exponents"] == 12).all()
    assert len(local) == 4 * (100 // 25) * 3 and local["index"].max() == 3     # windows × local_leading
    assert local.groupby(["run_id", "index"])["exponent"].mean().to_numpy() == pytest.approx(
        spec[spec["index"] <= 3].set_index(["run_id", "index"])["exponent"].to_numpy(), abs=1e-12)
    assert tables["transitions"]["activation"].tolist() == ["tanh"]
    runs = pd.read_csv(out / "runs.csv")
    assert runs.set_index("run_id")["largest"].to_dict() == summ.set_index("run_id")["largest"].to_dict()
    ordered, fast = runs.loc[runs["g"] == 0.5], runs.loc[runs["g"] == 2.5]
    assert (ordered["kaplan_yorke"] == 0).all() and (ordered["largest"] < -0.3).all()       # ≈ ln(0.5 ρ(W₀))
    assert fast["largest"].min() > ordered["largest"].max() + 0.3
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sweep"]["key_figures"] == ["largest", "kaplan_yorke", "ks_entropy"]
    again = sweep(SPECTRUM_SWEEP, out)
    assert again.n_computed == 0 and again.n_already_done == 4
    assert pd.read_csv(out / "lyapunov_spectrum.csv").equals(pd.read_csv(out / "lyapunov_spectrum.csv"))


def test_sweep_run_is_the_library_measurement_and_parallel_gives_the_same_rows(tmp_path):
    spec = parse_spec(SPECTRUM_SWEEP, "t")
    run = plan(spec)[3]
    tables = run_tables("lyapunov_spectrum", run)
    direct = kinds.measure_spectrum(kinds.SpectrumConfig.from_dict(run.params))
    assert tables["lyapunov_spectrum"]["exponent"].to_numpy() == pytest.approx(direct.exponents.ravel(), abs=0)
    one, two = sweep(SPECTRUM_SWEEP, tmp_path / "a"), sweep(SPECTRUM_SWEEP, tmp_path / "b", jobs=2)
    assert one.n_runs == two.n_runs == 4
    a, b = (tmp_path / name / "lyapunov_spectrum.csv" for name in ("a", "b"))
    assert a.read_bytes() == b.read_bytes()


def test_window_or_local_leading_zero_writes_no_local_table(tmp_path):
    outcome = sweep(SPECTRUM_SWEEP.replace("local_leading = 3", "local_leading = 0"), tmp_path / "s")
    assert "lyapunov_local" not in outcome.tables and not (tmp_path / "s" / "lyapunov_local.csv").exists()


@pytest.mark.parametrize("change,message", [
    ({"leading": 13}, r"leading \(k, the number of exponents\) must be at most the state size 12, got 13"),
    ({"leading": 0}, r"leading \(k, the number of exponents\) must be a whole number ≥ 1, got 0"),
    ({"k": 3}, "'k' is a column gradlab writes"),
    ({"hidden": 0}, "hidden must be a whole number ≥ 1, got 0"),
    ({"warmup": 120}, "warmup must be smaller than steps = 120, got 120"),
    ({"window": -1}, "window must be a whole number ≥ 0, got -1"),
    ({"g": -1.0}, "g must be a positive number, got -1.0"),
    ({"drive": "gaussian"}, "drive = 'gaussian' needs a trained network"),
    ({"drive": "wind"}, "unknown drive 'wind'; choose one of autonomous, gaussian, file"),
    ({"layers": 2}, "a random vanilla RNN is one W_hh"),
    ({"cell": "lstm", "activation": "relu"}, "activation 'relu' applies to cells with a choosable"),
    ({"leading": 25, "cell": "lstm", "activation": "tanh"}, "at most the state size 24, got 25"),
    ({"colour": 1}, "unknown lyapunov_spectrum parameter 'colour'"),
])
def test_bad_points_are_one_line_errors_before_anything_runs(tmp_path, change, message):
    params = {"activation": "tanh", "g": 1.0, "hidden": 12, "steps": 120, "warmup": 20, "burn": 30, **change}
    text = 'kind = "lyapunov_spectrum"\n[fixed]\n' + "\n".join(f"{k} = {chaos.toml_value(v)}" for k, v in params.items())
    with pytest.raises(GradlabError, match=message) as e:
        sweep(text, tmp_path / "s")
    assert "\n" not in str(e.value) and not (tmp_path / "s").exists()


def test_file_errors_name_the_file_and_what_it_sets(tmp_path):
    path = rnn_weights(tmp_path / "w.npz", 0.5 * np.eye(4))
    with pytest.raises(GradlabError, match=r"hidden = 8 is not used: the weights file .* sets hidden and g"):
        kinds.SpectrumConfig.from_dict({"weights": str(path), "hidden": 8})
    np.save(tmp_path / "x.npy", np.zeros((20, 3)))
    with pytest.raises(GradlabError, match="steps = 5 is not used: the input file"):
        kinds.SpectrumConfig.from_dict({"weights": str(path), "drive": "file", "input_seq": str(tmp_path / "x.npy"),
                                        "steps": 5})
    with pytest.raises(GradlabError, match="input_seq .* is only read with drive = 'file'"):
        kinds.SpectrumConfig.from_dict({"weights": str(path), "input_seq": str(tmp_path / "x.npy")})
    config = kinds.SpectrumConfig.from_dict({"weights": str(path), "drive": "file", "input_seq": str(tmp_path / "x.npy"),
                                             "burn": 15, "warmup": 5})
    with pytest.raises(GradlabError, match=r"input file .*x.npy' has T = 20 steps: burn \(15\) and warmup \(5\)"):
        KINDS["lyapunov_spectrum"].check(config)
    with pytest.raises(GradlabError, match="weights file .*nope.npz"):
        KINDS["lyapunov_spectrum"].check(kinds.SpectrumConfig(weights=str(tmp_path / "nope.npz"), activation="tanh"))
    W = 3.0 * np.linalg.qr(np.random.default_rng(0).standard_normal((4, 4)))[0]
    boom = rnn_weights(tmp_path / "boom.npz", W, np.ones((4, 3)), nonlinearity="linear")
    with pytest.raises(GradlabError, match="the trajectory overflows float64"):
        kinds.measure_spectrum(kinds.SpectrumConfig(weights=str(boom), drive="gaussian", steps=900, burn=0))


def test_estimate_grows_as_the_cost_model_says():
    """O(T s³) for the full spectrum, O(T k s²) for k ≪ s: 4× the state size is ~ 64× the time."""
    small = kinds.SpectrumConfig(hidden=128, steps=1000).estimate()
    big = kinds.SpectrumConfig(hidden=512, steps=1000).estimate()
    few = kinds.SpectrumConfig(hidden=512, steps=1000, leading=8).estimate()
    part = next(k for k in big.seconds if "QRs" in k)
    assert 30 < big.seconds[part] / small.seconds[next(k for k in small.seconds if "QRs" in k)] < 70
    assert few.total_seconds < big.total_seconds / 20


# ---------------------------------------------------------------- fixed_points

def test_fixed_point_sweep_reports_every_start_and_resumes(tmp_path):
    out = tmp_path / "f"
    outcome = sweep(FIXED_POINT_SWEEP, out)
    assert set(outcome.tables) == {"runs", "fixed_points", "fixed_point_eigenvalues", "fixed_point_starts",
                                   "trajectories"}
    tables = {k: read_table(out / TABLES[k].file, k) for k in outcome.tables if k != "runs"}
    starts, points, eig = tables["fixed_point_starts"], tables["fixed_points"], tables["fixed_point_eigenvalues"]
    runs = pd.read_csv(out / "runs.csv")
    assert starts.groupby("run_id").size().tolist() == [24, 24]          # none dropped
    assert set(starts["status"]) <= {"fixed", "slow", "not_converged", "non_finite"}
    for row in runs.itertuples():
        mine = starts[starts["run_id"] == row.run_id]
        assert sum(getattr(row, f"starts_{s}") for s in ("fixed", "slow", "not_converged", "non_finite")) == 24
        assert row.starts_fixed == (mine["status"] == "fixed").sum()
        assert row.n_points == (points["run_id"] == row.run_id).sum() == row.n_stable + row.n_saddle + row.n_repellers
    assert len(eig) == 6 * len(points)                                   # s eigenvalues per point
    assert len(tables["trajectories"]) == 2 * 4 * 31
    assert [f"s{i}" for i in range(6)] == [c for c in points.columns if c.startswith("s") and c[1:].isdigit()]
    assert "final_metric" in runs.columns and (runs["updates_done"] == 20).all()
    again = sweep(FIXED_POINT_SWEEP, out)
    assert again.n_computed == 0 and again.n_already_done == 2


def test_a_weights_file_with_known_points_gives_them_all(tmp_path):
    """tanh(diag(2, 3) h): ±h*_w per unit and 0 — 4 stable points, 4 saddles (1 unstable mode), 1 repeller.
    The starts come from trajectories Gaussian inputs drive through the plane (W_xh), with noise 0.4 so
    some start near the saddles and the repeller (all 9 found on seeds 0–3)."""
    W_xh = np.array([[1.5, 0.0, 0.3], [0.0, 1.5, -0.3]])
    path = rnn_weights(tmp_path / "w.npz", np.diag([2.0, 3.0]), W_xh)
    out = tmp_path / "f"
    text = (f'kind = "fixed_points"\n[fixed]\nweights = "{path}"\nstarts = 200\nnoise = 0.4\nrecord = "gaussian"\n'
            "record_batch = 8\n")
    sweep(text, out)
    points, runs = pd.read_csv(out / "fixed_points.csv"), pd.read_csv(out / "runs.csv")
    assert points["stability"].value_counts().to_dict() == {"stable": 4, "saddle": 4, "unstable": 1}
    h = points[["s0", "s1"]].to_numpy()
    assert np.tanh(h * [2.0, 3.0]) == pytest.approx(h, abs=1e-12)
    assert (points.loc[points["stability"] == "saddle", "n_unstable"] == 1).all()
    assert runs.loc[0, "n_repellers"] == 1 and "final_metric" not in runs.columns     # nothing was trained


def test_non_converging_starts_are_counted_not_dropped(tmp_path):
    text = FIXED_POINT_SWEEP.replace("seed = [0, 1]", "seed = [0]") + "max_iter = 1\nnewton_steps = 0\n"
    out = tmp_path / "f"
    sweep(text, out)
    runs, starts = pd.read_csv(out / "runs.csv"), pd.read_csv(out / "fixed_point_starts.csv")
    assert runs.loc[0, "starts_not_converged"] > 0 and len(starts) == 24
    assert (starts.loc[starts["status"] == "not_converged", "point_id"] == -1).all()


def test_trained_flip_flop_network_has_eight_stable_fixed_points(tmp_path):
    """The shipped settings (experiments/fixed_points.toml), fewer starts: 2³ memories on seed 0."""
    out = tmp_path / "f"
    sweep('kind = "fixed_points"\n[fixed]\nseed = 0\nstarts = 64\nrecord_batch = 16\n', out)
    runs = pd.read_csv(out / "runs.csv")
    assert runs.loc[0, "n_stable"] == 8 and runs.loc[0, "final_error_rate"] < 0.01
    points = pd.read_csv(out / "fixed_points.csv")
    stable = points[points["stability"] == "stable"]
    assert (stable["max_abs_eigenvalue"] < 1).all() and (stable["q"] < 1e-12).all()


@pytest.mark.parametrize("params,message", [
    ({"starts": 0}, "starts must be a whole number ≥ 1, got 0"),
    ({"noise": -0.1}, "noise must be a number ≥ 0, got -0.1"),
    ({"hidden": 0}, "hidden must be a whole number ≥ 1, got 0"),
    ({"slow_tol": 1e-20}, "slow_tol must be at least fixed_tol"),
    ({"record": "file"}, "record = 'file' and input_seq go together"),
    ({"record": "radio"}, "unknown record 'radio'"),
    ({"startz": 3}, "unknown fixed_points parameter 'startz'"),
    ({"task": "adding", "steps": 1}, "task 'adding' needs steps ≥ 2, got 1"),
])
def test_bad_fixed_point_points_are_one_line_errors(params, message):
    with pytest.raises(GradlabError, match=message) as e:
        FixedPointConfig.from_dict(params)
    assert "\n" not in str(e.value)


def test_weights_run_refuses_training_keys_and_mismatched_inputs(tmp_path):
    path = rnn_weights(tmp_path / "w.npz", 0.5 * np.eye(4), np.zeros((4, 2)))
    with pytest.raises(GradlabError, match=r"updates = 10 is not used: the weights file .* is the network"):
        FixedPointConfig.from_dict({"weights": str(path), "updates": 10})
    config = FixedPointConfig.from_dict({"weights": str(path)})
    with pytest.raises(GradlabError, match=r"takes inputs of size d = 2, but task 'flip_flop' gives 3"):
        KINDS["fixed_points"].check(config)
    KINDS["fixed_points"].check(FixedPointConfig.from_dict({"weights": str(path), "record": "gaussian"}))
    np.save(tmp_path / "x.npy", np.zeros((3, 10, 2)))
    with pytest.raises(GradlabError, match="record_batch = 2 is not used: the input file"):
        FixedPointConfig.from_dict({"weights": str(path), "record": "file", "input_seq": str(tmp_path / "x.npy"),
                                    "record_batch": 2})
    with pytest.raises(GradlabError, match=r"inputs must have shape \(T, 2\) or \(B, T, 2\)"):   # the file's d
        np.save(tmp_path / "y.npy", np.zeros((3, 10, 5)))
        KINDS["fixed_points"].check(FixedPointConfig.from_dict({"weights": str(path), "record": "file",
                                                                "input_seq": str(tmp_path / "y.npy")}))


def test_config_round_trips_through_its_dict():
    config = FixedPointConfig.from_dict({"hidden": 8, "starts": 10, "seed": 3})
    assert config.train.hidden == 8 and config.train.lr == 0.01 and config.train.task == "flip_flop"
    again = FixedPointConfig.from_dict({k: v for k, v in config.to_dict().items() if v is not None})
    assert again == config
    sp = kinds.SpectrumConfig.from_dict({"g": 2.0, "leading": 3})
    assert kinds.SpectrumConfig.from_dict({k: v for k, v in sp.to_dict().items() if v is not None}) == sp
