"""`gradlab lyapunov --spectrum` and `gradlab fixed-points`: what they print and write, resume, bad input."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from dynamics_results import rnn_weights
from gradlab.cli import main
from gradlab.experiments import kinds

SPECTRUM = ["lyapunov", "--spectrum", "-a", "tanh", "--gains", "0.5,3", "-n", "10", "-T", "80", "--warmup", "10",
            "--burn", "20", "--seeds", "2", "--window", "20", "--local-k", "2", "-q"]
FIXED = ["fixed-points", "--hidden", "5", "--updates", "10", "--record-batch", "3", "--record-steps", "20",
         "--starts", "12", "-q"]


def gradlab(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return e.value.code, captured.out, captured.err


def test_spectrum_scan_prints_and_writes_the_documented_tables_then_resumes(tmp_path, capsys):
    out = tmp_path / "s"
    code, stdout, stderr = gradlab(capsys, *SPECTRUM, "--out", out)
    assert code == 0 and stderr == ""
    lines = stdout.splitlines()
    assert re.match(r"tanh g = 0\.5: λ₁ = -\S+, D_KY = 0 \(D_KY/s = 0\), h_KS = 0 nats/step, mean exponent -\S+ "
                    r"\(2 runs, s = 10, k = 10\)$", lines[0])
    assert lines[1].startswith("tanh g = 3: λ₁ = ") and "tanh: transition at g = 1" in lines
    assert lines[-1].startswith("4 networks (4 computed): wrote lyapunov_local.csv, lyapunov_spectrum.csv, "
                                "lyapunov_summary.csv, runs.csv, transitions.csv and manifest.json")
    runs = pd.read_csv(out / "runs.csv")
    first = runs[runs["g"] == 0.5]["largest"].mean()
    assert f"λ₁ = {first:.4g}," in lines[0]
    assert len(pd.read_csv(out / "lyapunov_spectrum.csv")) == 4 * 10
    assert len(pd.read_csv(out / "lyapunov_local.csv")) == 4 * (70 // 20) * 2
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["kind"] == "lyapunov_spectrum" and manifest["sweep"]["source"] == "gradlab lyapunov --spectrum"
    code, stdout, _ = gradlab(capsys, *SPECTRUM, "--out", out)
    assert code == 0 and "4 networks (0 computed, 4 were already done)" in stdout
    code, stdout, _ = gradlab(capsys, "plot", "lyapunov-spectrum", out, "--out", tmp_path / "f", "--format", "png")
    assert code == 0 and (tmp_path / "f" / "lyapunov-spectrum.png").stat().st_size > 10_000


def test_k_1_through_the_cli_is_the_lambda_1_scan(tmp_path, capsys):
    args = ["-a", "tanh", "--gains", "2", "-n", "12", "-T", "60", "--warmup", "5", "--burn", "10", "--seeds", "1", "-q"]
    assert gradlab(capsys, "lyapunov", *args, "--out", tmp_path / "a")[0] == 0
    assert gradlab(capsys, "lyapunov", "--spectrum", "--k", "1", *args, "--out", tmp_path / "b")[0] == 0
    lam = pd.read_csv(tmp_path / "a" / "lyapunov.csv")["lyapunov"].iloc[0]
    assert pd.read_csv(tmp_path / "b" / "runs.csv")["largest"].iloc[0] == lam


def test_weights_file_autonomous_driven_and_from_a_file(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = rnn_weights(tmp_path / "w.npz", rng.standard_normal((5, 5)) / np.sqrt(5), rng.standard_normal((5, 3)))
    code, stdout, _ = gradlab(capsys, "lyapunov", "--spectrum", "--weights", path, "-T", "60", "--warmup", "5",
                              "--burn", "5", "--out", tmp_path / "a")
    assert code == 0 and stdout.startswith(f"{path} autonomous: λ₁ = ") and "(1 run, s = 5, k = 5)" in stdout
    np.save(tmp_path / "x.npy", rng.standard_normal((2, 40, 3)))
    code, stdout, _ = gradlab(capsys, "lyapunov", "--spectrum", "--weights", path, "--input-seq", tmp_path / "x.npy",
                              "--warmup", "5", "--burn", "5", "--k", "2", "--out", tmp_path / "b")
    assert code == 0 and " driven file: " in stdout
    summary = pd.read_csv(tmp_path / "b" / "lyapunov_summary.csv")
    assert summary["sequence"].tolist() == [0, 1] and (summary["counted_steps"] == 30).all()
    assert (summary["n_exponents"] == 2).all()


@pytest.mark.parametrize("args,message", [
    (["lyapunov", "--k", "3"], "--k applies to the full spectrum: add --spectrum"),
    (["lyapunov", "--weights", "w.npz"], "--weights applies to the full spectrum: add --spectrum"),
    (["lyapunov", "--spectrum", "-n", "4", "--k", "9", "--gains", "1", "-a", "tanh"],
     "must be at most the state size 4, got 9"),
    (["lyapunov", "--spectrum", "--k", "0", "--gains", "1", "-a", "tanh"], "must be a whole number ≥ 1, got 0"),
    (["lyapunov", "--spectrum", "--drive", "gaussian", "--gains", "1"], "--drive drives a trained network"),
    (["lyapunov", "--spectrum", "--weights", "{w}", "--gains", "1"], "--gains is not used: the weights file sets it"),
    (["lyapunov", "--spectrum", "--weights", "{w}", "-a", "tanh", "-a", "relu"], "give --activation once"),
    (["lyapunov", "--spectrum", "--cell", "gru", "-a", "relu", "--gains", "1"], "fixed sigmoid/tanh gates"),
    (["lyapunov", "--spectrum", "--weights", "{tmp}/nope.npz"], "nope.npz"),
    (["fixed-points", "--starts", "0"], "starts must be a whole number ≥ 1, got 0"),
    (["fixed-points", "--weights", "{w}", "--updates", "5"], "updates = 5 is not used: the weights file"),
    (["fixed-points", "--record", "file"], "record = 'file' and input_seq go together"),
    (["fixed-points", "--hidden", "-3"], "hidden must be a whole number ≥ 1, got -3"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, args, message):
    w = rnn_weights(tmp_path / "w.npz", 0.5 * np.eye(3))
    args = [a.format(w=w, tmp=tmp_path) for a in args]
    code, stdout, stderr = gradlab(capsys, *args, "--out", tmp_path / "out")
    assert code == 2 and stdout == "" and len(stderr.splitlines()) == 1 and message in stderr
    assert not (tmp_path / "out").exists()


def test_fixed_points_command_trains_searches_writes_and_resumes(tmp_path, capsys):
    out = tmp_path / "f"
    code, stdout, stderr = gradlab(capsys, *FIXED, "--out", out)
    assert code == 0 and stderr == ""
    lines = stdout.splitlines()
    assert re.match(r"trained 10 updates: held-out mse \S+ \(chance 1\), (not solved|solved at update \d+)$", lines[0])
    assert re.match(r"\d+ points? under x = 0 \(\d+ fixed, \d+ slow\): \d+ stable, \d+ saddles?, \d+ repellers?; "
                    r"12 starts: \d+ fixed, \d+ slow, \d+ not converged, \d+ non-finite$", lines[1])
    assert lines[2].startswith("wrote fixed_point_eigenvalues.csv, fixed_point_starts.csv, fixed_points.csv, "
                               "runs.csv, trajectories.csv and manifest.json")
    runs = pd.read_csv(out / "runs.csv")
    assert list(runs.columns[:7]) == ["run_id", "param_hash", "hidden", "updates", "record_batch", "record_steps",
                                      "starts"]
    assert runs.loc[0, "seed"] == 0 and len(pd.read_csv(out / "fixed_point_starts.csv")) == 12
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["kind"] == "fixed_points" and manifest["config"]["fixed"]["seed"] == 0
    code, stdout, _ = gradlab(capsys, *FIXED, "--out", out)
    assert code == 0 and stdout.splitlines()[-1].endswith("(already done)")
    code, _, stderr = gradlab(capsys, *FIXED, "--seed", "1", "--out", out)     # another network: refused
    assert code == 2 and len(stderr.splitlines()) == 1
    assert gradlab(capsys, "plot", "fixed-points", out, "--out", tmp_path / "p", "--format", "png")[0] == 0


def test_fixed_points_of_a_weights_file_on_its_input_file(tmp_path, capsys):
    W_xh = np.array([[1.5, 0.0, 0.3], [0.0, 1.5, -0.3]])
    path = rnn_weights(tmp_path / "w.npz", np.diag([2.0, 3.0]), W_xh)
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((4, 50, 3)))
    code, stdout, _ = gradlab(capsys, "fixed-points", "--weights", path, "--input-seq", tmp_path / "x.npy",
                              "--starts", "100", "--noise", "0.4", "--out", tmp_path / "f")
    assert code == 0 and stdout.splitlines()[0].startswith("9 points under x = 0 (9 fixed, 0 slow): 4 stable, "
                                                           "4 saddles, 1 repeller;")
    assert len(pd.read_csv(tmp_path / "f" / "trajectories.csv")) == 4 * 51


@pytest.mark.parametrize("command", ["lyapunov", "fixed-points"])
def test_help_teaches_what_it_computes_writes_and_an_example(capsys, command):
    code, stdout, _ = gradlab(capsys, command, "--help")
    text = " ".join(stdout.split())
    assert code == 0 and re.search(rf"Examples?:\n\s+gradlab {command}\b", stdout)
    if command == "lyapunov":
        assert "--spectrum" in text and "Kaplan–Yorke" in text and "lyapunov_summary.csv" in text
        assert "--weights" in text and "s_0 = 0" in text
    else:
        assert "fixed_point_starts.csv" in text and "none is dropped" in text and "--train-updates" in text


def test_the_cli_adds_no_work_to_the_measurement(tmp_path, capsys, monkeypatch):
    """The command's run is the library's measurement, once: measure_spectrum is what it calls, with BLAS at one
    thread (the CLI's setting)."""
    from threadpoolctl import threadpool_info

    calls = []
    original = kinds.measure_spectrum

    def spy(config):
        calls.append([i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"])
        return original(config)

    monkeypatch.setattr(kinds, "measure_spectrum", spy)
    assert gradlab(capsys, "lyapunov", "--spectrum", "-a", "tanh", "--gains", "1.5", "-n", "8", "-T", "30",
                   "--warmup", "2", "--burn", "2", "--seeds", "1", "--out", tmp_path / "s")[0] == 0
    assert len(calls) == 1 and all(n == 1 for n in calls[0])
