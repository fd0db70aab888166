"""`gradlab run` and `gradlab check` as a user meets them: files, columns, errors, exit codes.

Most tests call :func:`gradlab.cli.main` in-process (the real entry point: it
turns errors into one line and an exit code); a few run ``python -m gradlab``
and the installed ``gradlab`` script in a subprocess for the real process exit.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gradlab as gl
from gradlab.cli import main
from gradlab.io.schema import COLUMNS

SMALL = ["--hidden", "6", "--inputs", "2", "--steps", "12", "--batch", "2"]
FILES = ("norms", "spectrum", "grads")


def gradlab(capsys, *args):
    """Run ``gradlab ARGS`` through main(); return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def read_run(out):
    return {name: pd.read_csv(Path(out) / f"{name}.csv") for name in FILES}


def test_run_writes_the_documented_files_and_columns(tmp_path, capsys):
    out = tmp_path / "demo"
    code, stdout, stderr = gradlab(capsys, "run", *SMALL, "--out", out)
    assert code == 0 and stderr == ""
    assert sorted(p.name for p in out.iterdir()) == ["grads.csv", "manifest.json", "norms.csv", "spectrum.csv"]
    tables = read_run(out)
    for name in FILES:
        assert set(COLUMNS[name]) <= set(tables[name].columns), name
    norms, spectrum, grads = tables["norms"], tables["spectrum"], tables["grads"]
    B, T, n = 2, 12, 6
    assert len(norms) == B * T and set(norms.t) == {T}                  # pairs "last"
    assert len(grads) == B * (T + 1) and list(grads.k[:T + 1]) == list(range(T + 1))
    assert len(spectrum) == 2 * n
    assert "wrote" in stdout and "growth rate" in stdout

    # The columns agree with each other and with the spectrum file.
    np.testing.assert_array_equal(norms.lag, norms.t - norms.k)
    smax = spectrum.query("kind == 'singular_value'")["abs"].max()
    rho = spectrum.query("kind == 'eigenvalue'")["abs"].max()
    assert rho == pytest.approx(1.0, rel=1e-12)                        # --radius 1 (default)
    np.testing.assert_allclose(norms.log10_bound, norms.lag * np.log10(smax * 1.0), rtol=1e-12)  # tanh: γ_h = 1
    np.testing.assert_allclose(norms.log10_rate, norms.lag * np.log10(rho), atol=1e-12)
    assert np.all(norms.log10_norm <= norms.log10_bound + 1e-9)        # the bound holds

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["hidden"] == n and manifest["config"]["steps"] == T
    assert manifest["config"]["activation"] == "tanh" and manifest["config"]["seed"] == 0
    assert manifest["versions"]["gradlab"] == gl.__version__ and "numpy" in manifest["versions"]
    assert manifest["summary"]["rho"] == pytest.approx(rho, rel=1e-12)
    assert manifest["summary"]["sigma_max"] == pytest.approx(smax, rel=1e-12)


def test_run_csvs_hold_the_library_result_to_the_last_digit(tmp_path, capsys):
    out = tmp_path / "r"
    assert gradlab(capsys, "run", *SMALL, "--activation", "relu", "--radius", "1.7", "--pairs", "all",
                   "--seed", "3", "--out", out)[0] == 0
    result = gl.analyse(gl.RunConfig(hidden=6, inputs=2, steps=12, batch=2, activation="relu", radius=1.7,
                                     pairs="all", seed=3))
    for name, table in read_run(out).items():
        expected = result.tables[name]
        for column in COLUMNS[name]:
            np.testing.assert_array_equal(table[column].to_numpy(), expected[column].to_numpy(), err_msg=column)
    assert len(result.tables["norms"]) == 2 * 12 * 13 // 2  # pairs "all": T(T+1)/2 per sequence


def test_run_with_weights_and_input_files(tmp_path, capsys):
    rng = np.random.default_rng(0)
    p = gl.init_params(5, 3, 2, radius=1.1, rng=rng)
    gl.save_weights(tmp_path / "w.npz", p, activation="tanh")      # recorded: φ is not a state-dict array
    np.save(tmp_path / "x.npy", rng.standard_normal((7, 3)))
    np.save(tmp_path / "ids.npy", rng.integers(0, 3, size=(2, 9)))
    code, _, err = gradlab(capsys, "run", "--weights", tmp_path / "w.npz", "--input-seq", tmp_path / "x.npy",
                           "--out", tmp_path / "real")
    assert code == 0, err
    config = json.loads((tmp_path / "real" / "manifest.json").read_text())["config"]
    assert (config["hidden"], config["inputs"], config["steps"], config["batch"]) == (5, 3, 7, 1)
    norms = pd.read_csv(tmp_path / "real" / "norms.csv")
    trace = gl.forward(p, np.load(tmp_path / "x.npy"), "tanh")
    np.testing.assert_allclose(norms.log10_norm, gl.jacobian_norms(trace).log_norm[0] / np.log(10), rtol=1e-12)

    code, _, err = gradlab(capsys, "run", "--weights", tmp_path / "w.npz", "--input-seq", tmp_path / "ids.npy",
                           "--out", tmp_path / "tokens")
    assert code == 0, err
    config = json.loads((tmp_path / "tokens" / "manifest.json").read_text())["config"]
    assert config["tokens"] is True and (config["steps"], config["batch"]) == (9, 2)


@pytest.mark.parametrize("cell, shapes", [("rnn", {"weight_ih_l0": (5, 3), "weight_hh_l0": (5, 5)}),
                                          ("gru", {"weight_ih_l0": (15, 3), "weight_hh_l0": (15, 5)})])
def test_a_weights_run_manifest_records_what_was_analysed(tmp_path, capsys, cell, shapes):
    """--init/--radius/--scale-by/--input-scale (and --hidden/--inputs) shape random weights only: with a
    weights file the manifest recorded their defaults as if used. It records the file and its digest instead
    (given on the command line with --weights, they are refused)."""
    import hashlib

    from gradlab.plots.data import load_table, run_parameters

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "w.npz", **{k: 0.3 * rng.standard_normal(s) for k, s in shapes.items()})
    np.save(tmp_path / "x.npy", rng.standard_normal((2, 7, 3)))
    out = tmp_path / "mine"
    code, _, err = gradlab(capsys, "run", "--cell", cell, "--weights", tmp_path / "w.npz", "--input-seq",
                           tmp_path / "x.npy", "--activation", "tanh", "--out", out)
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    config = manifest["config"]
    assert (config["hidden"], config["inputs"], config["steps"], config["batch"]) == (5, 3, 7, 2)   # the files'
    for unused in ("init", "radius", "scale_by", "input_scale"):
        assert config[unused] is None, unused         # kept as a key (readers index it), null: not used
    digest = {name: hashlib.sha256((tmp_path / f).read_bytes()).hexdigest()
              for name, f in (("weights", "w.npz"), ("input_seq", "x.npy"))}
    assert manifest["files"] == {name: {"path": str(tmp_path / f), "sha256": digest[name]}
                                 for name, f in (("weights", "w.npz"), ("input_seq", "x.npy"))}

    # Readers: inspect shows no init/radius, and the plots' run parameters carry none (the spectrum figure
    # drew the random-matrix theory of the recorded init over the loaded matrix, and titles said ρ = 2.5).
    code, stdout, _ = gradlab(capsys, "inspect", out)
    assert code == 0 and "orthogonal" not in stdout and "2.5" not in stdout.split("summary:")[0]
    assert digest["weights"][:12] in stdout
    params = run_parameters(out)
    assert not {"init", "radius", "scale_by", "input_scale"} & set(params) and params["hidden"] == 5
    assert "radius" not in load_table(out, "norms").columns


def test_a_random_run_manifest_keeps_its_init_and_names_no_files(tmp_path, capsys):
    out = tmp_path / "r"
    assert gradlab(capsys, "run", *SMALL, "--init", "orthogonal", "--radius", "1.5", "--out", out)[0] == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["config"]["init"], manifest["config"]["radius"]) == ("orthogonal", 1.5)
    assert manifest["config"]["weights"] is None and "files" not in manifest


def test_check_with_weights_does_not_print_an_init_or_radius_it_did_not_use(tmp_path, capsys):
    p = gl.init_params(2, 2, 2, radius=0.7, rng=np.random.default_rng(0))
    gl.save_weights(tmp_path / "w.npz", p, activation="tanh")
    code, stdout, _ = gradlab(capsys, "check", "--weights", tmp_path / "w.npz", "--steps", "3", "--batch", "1")
    header = stdout.splitlines()[0]
    assert code == 0 and "n=2 d=2" in header and "w.npz" in header
    assert "gaussian" not in header and "ρ=1" not in header
    code, stdout, _ = gradlab(capsys, "check", "--hidden", "2", "--steps", "3", "--radius", "2.5",
                              "--scale-by", "sigma_max")
    assert "σ_max=2.5" in stdout.splitlines()[0] and "ρ=" not in stdout.splitlines()[0]


@pytest.mark.parametrize("command", ["run", "check"])
def test_options_that_a_weights_file_overrides_are_refused_not_ignored(tmp_path, capsys, command):
    """`--weights F --radius 2` used to analyse F's own W_hh as if --radius had been applied."""
    gl.save_weights(tmp_path / "w.npz", gl.init_params(3, 2, 2, rng=np.random.default_rng(0)), activation="tanh")
    out = ["--out", tmp_path / "out"] if command == "run" else []
    code, stdout, stderr = gradlab(capsys, command, "--weights", tmp_path / "w.npz", "--steps", "3", "--radius", "2",
                                   "--hidden", "3", "--input-scale", "3", *out)
    assert code == 2 and stdout == ""
    assert stderr == "Error: --weights sets the network, so --hidden, --radius, --input-scale would not be used; leave them out\n"
    assert not (tmp_path / "out").exists()
    code, _, stderr = gradlab(capsys, command, "--weights", tmp_path / "w.npz", "--steps", "3", "--scale-by",
                              "sigma_max", *out)
    assert code == 2 and "so --scale-by would not be used; leave it out" in stderr


@pytest.mark.parametrize("activation, radius", [("sigmoid", 1.0), ("linear", 3.0)])
def test_run_on_a_long_sequence_writes_finite_logs(tmp_path, capsys, activation, radius):
    """2000 steps: ‖∂h_T/∂h_0‖ or ‖∂L/∂h_0‖ is ~e^∓2000, beyond float64, yet every log is finite
    (and there is no RuntimeWarning, which this suite turns into an error). Zero inputs keep the
    linear net's states at 0 while its Jacobians, all equal to W_hh, explode."""
    np.save(tmp_path / "zeros.npy", np.zeros((2000, 1)))
    out = tmp_path / "long"
    code, _, err = gradlab(capsys, "run", "--hidden", "4", "--inputs", "1", "--steps", "2000", "--batch", "1",
                           "--activation", activation, "--radius", radius, "--init", "orthogonal",
                           "--loss-steps", "last", "--out", out,
                           *(["--input-seq", tmp_path / "zeros.npy"] if activation == "linear" else []))
    assert code == 0, err
    tables = read_run(out)
    assert np.all(np.isfinite(tables["norms"].log10_norm)) and np.all(np.isfinite(tables["grads"].log10_grad_norm))
    extreme = max(abs(tables["norms"].log10_norm).max(), abs(tables["grads"].log10_grad_norm).max())
    assert extreme > 308  # beyond what a float64 norm could hold


def test_run_refuses_a_network_whose_states_overflow(tmp_path, capsys):
    """A linear net with ρ = 3 driven by inputs: h_t ~ 3^t passes 1e308 near step 650."""
    code, stdout, stderr = gradlab(capsys, "run", "--hidden", "4", "--inputs", "1", "--steps", "2000", "--batch", "1",
                                   "--activation", "linear", "--radius", "3", "--out", tmp_path / "x")
    assert code == 2 and stdout == "" and len(stderr.splitlines()) == 1
    assert re.match(r"Error: the forward pass overflows float64 .*at step \d+ of 2000", stderr)
    assert os.listdir(tmp_path) == []


def test_run_refuses_an_existing_folder_unless_forced(tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    for force in ([], ["--force"]):       # not gradlab's: kept, and --force is not offered (it would be refused)
        code, stdout, stderr = gradlab(capsys, "run", *SMALL, "--out", out, *force)
        assert code == 2 and stdout == "" and len(stderr.splitlines()) == 1
        assert stderr.startswith("Error: ") and str(out) in stderr and "was not written by gradlab" in stderr
        assert "--force" not in stderr and "choose another --out" in stderr
        assert sorted(os.listdir(out)) == ["keep.txt"] and sorted(os.listdir(tmp_path)) == ["r"]

    (out / "keep.txt").unlink()
    assert gradlab(capsys, "run", *SMALL, "--out", out)[0] == 0                      # an empty folder is fine
    code, stdout, stderr = gradlab(capsys, "run", *SMALL, "--seed", "1", "--out", out)   # gradlab's: --force works
    assert code == 2 and stdout == "" and len(stderr.splitlines()) == 1
    assert stderr.startswith("Error: ") and "already exists; pass --force to replace it" in stderr and str(out) in stderr
    assert gradlab(capsys, "run", *SMALL, "--seed", "1", "--out", out, "--force")[0] == 0
    assert json.loads((out / "manifest.json").read_text())["config"]["seed"] == 1
    assert sorted(os.listdir(out)) == ["grads.csv", "manifest.json", "norms.csv", "spectrum.csv"]
    assert sorted(os.listdir(tmp_path)) == ["r"]  # no temporary or old folder left beside it


@pytest.mark.parametrize("command", [["run", *SMALL], ["train", "--steps", "4", "--hidden", "2", "--updates", "1"],
                                     ["lyapunov", "--gains", "1", "--hidden", "2", "--steps", "3", "--warmup", "1"]])
def test_force_never_deletes_the_current_folder(tmp_path, capsys, monkeypatch, command):
    """`--out . --force` used to delete the files of the folder the user was in (or crash)."""
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.chdir(tmp_path)
    code, stdout, stderr = gradlab(capsys, *command, "--out", ".", "--force")
    assert code == 2 and stdout == "" and len(stderr.splitlines()) == 1
    assert "'.' is the current folder or holds it" in stderr
    assert os.listdir(tmp_path) == ["notes.txt"]


def write_bad_files(folder: Path) -> None:
    p = gl.init_params(4, 2, radius=1.0, rng=np.random.default_rng(0))
    good = {"weight_ih_l0": p.W_xh, "weight_hh_l0": p.W_hh}
    np.savez(folder / "missing.npz", weight_ih_l0=p.W_xh)
    np.savez(folder / "shapes.npz", **{**good, "bias_ih_l0": np.zeros(3)})
    np.savez(folder / "nan.npz", **{**good, "weight_hh_l0": np.full((4, 4), np.nan)})
    (folder / "junk.npz").write_text("junk")
    np.save(folder / "x_wrong_d.npy", np.zeros((10, 3)))    # the model has d = 2
    np.save(folder / "x_4d.npy", np.zeros((1, 1, 10, 2)))
    np.save(folder / "ids_out_of_range.npy", np.array([0, 1, 5]))
    np.savez(folder / "complex.npz", **{**good, "weight_hh_l0": p.W_hh + 1j})   # was cast to real, with a warning
    np.savez(folder / "empty.npz", weight_ih_l0=np.zeros((0, 2)), weight_hh_l0=np.zeros((0, 0)))


BAD_INPUTS = [
    (["--activation", "softsign"], r"'softsign' is not one of 'tanh', 'sigmoid', 'relu', 'linear'"),
    (["--init", "xavier"], r"'xavier' is not one of 'gaussian', 'orthogonal', 'identity'"),
    (["--radius", "0"], r"radius must be a positive number, got 0\.0"),
    (["--radius", "-1.5"], r"radius must be a positive number, got -1\.5"),
    (["--radius", "nan"], r"radius must be a positive number, got nan"),
    (["--hidden", "0"], r"hidden must be a whole number ≥ 1, got 0"),
    (["--inputs", "0"], r"inputs must be a whole number ≥ 1, got 0"),
    (["--steps", "0"], r"steps must be a whole number ≥ 1, got 0"),
    (["--batch", "-3"], r"batch must be a whole number ≥ 1, got -3"),
    (["--outputs", "0"], r"outputs must be a whole number ≥ 1, got 0"),
    (["--hidden", "abc"], r"'abc' is not a valid integer"),
    (["--pairs", "stride:0"], r"unknown pairs 'stride:0'"),
    (["--weights", "{dir}/nothere.npz"], r"weights file '.*nothere\.npz' does not exist"),
    (["--weights", "{dir}/missing.npz"], r"missing\.npz' lacks weight_hh_l0"),
    (["--weights", "{dir}/shapes.npz"], r"bias_ih_l0 in '.*shapes\.npz' has shape \(3,\), expected \(4,\)"),
    (["--weights", "{dir}/nan.npz"], r"nan\.npz': W_hh contains non-finite values"),
    (["--weights", "{dir}/junk.npz"], r"weights file '.*junk\.npz' is not a \.npz file"),
    (["--weights", "{dir}/x_wrong_d.npy"], r"weights file '.*x_wrong_d\.npy' is not a \.npz file"),
    (["--input-seq", "{dir}/missing.npz"], r"input file '.*missing\.npz' is not a \.npy file"),
    (["--input-seq", "{dir}/x_wrong_d.npy", "--inputs", "2"],      # the file's own shape, not one with a batch axis added
     r"input file '.*x_wrong_d\.npy': inputs must have shape \(T, 2\) or \(B, T, 2\), got \(10, 3\)$"),
    (["--input-seq", "{dir}/x_4d.npy", "--inputs", "2"], r"x_4d\.npy': .*got \(1, 1, 10, 2\)"),
    (["--input-seq", "{dir}/ids_out_of_range.npy", "--inputs", "2"],
     r"ids_out_of_range\.npy': token ids must lie in \[0, 2\), got range \[0, 5\]"),
    (["--input-seq", "{dir}/x_wrong_d.npy", "--inputs", "3", "--tokens"],
     r"--tokens \(tokens = true\) needs integer token ids, but input file '.*x_wrong_d\.npy' holds float64"),
    (["--weights", "{dir}/complex.npz"], r"complex\.npz': weight_hh_l0 holds complex numbers \(complex128\)"),
    (["--weights", "{dir}/empty.npz"], r"empty\.npz': weight_ih_l0 is empty \(shape \(0, 2\)\)"),
]


BAD_CASES = [pytest.param(command, args, message, id=f"{command} " + " ".join(args[:2]).replace("{dir}/", ""))
             for command in ("run", "check") for args, message in BAD_INPUTS
             if not (command == "check" and args[0] == "--pairs")]  # --pairs belongs to run only


@pytest.mark.parametrize("command, args, message", BAD_CASES)
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, command, args, message):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    write_bad_files(inputs)
    before = sorted(os.listdir(inputs))
    out = tmp_path / "out"
    argv = [a.replace("{dir}", str(inputs)) for a in args] + (["--out", out] if command == "run" else [])
    code, stdout, stderr = gradlab(capsys, command, *argv)
    assert code == 2
    assert stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    assert re.search(message, lines[0]), lines[0]
    assert "Traceback" not in stderr
    assert not out.exists() and sorted(os.listdir(tmp_path)) == ["inputs"]  # nothing written, no temp folder
    assert sorted(os.listdir(inputs)) == before


def test_check_exits_0_on_a_good_model_and_1_when_tol_is_impossible(capsys):
    args = ["check", "--hidden", "3", "--inputs", "2", "--steps", "4", "--batch", "2"]
    code, stdout, _ = gradlab(capsys, *args)
    assert code == 0 and "PASS" in stdout
    for name in gl.PARAM_NAMES:  # one row per parameter, its error printed
        assert re.search(rf"^\s*{name}\s+\d+\s+0\s+\d\.\d\de-\d\d\s*$", stdout, re.M), name   # tanh: no kinks
    code, stdout, _ = gradlab(capsys, *args, "--tol", "1e-30")
    assert code == 1 and "FAIL" in stdout


def test_check_of_relu_passes_at_the_defaults_leaving_out_the_entries_that_cross_the_kink(capsys):
    """Issue 12.1: `gradlab check --activation relu` printed W_hh 2.24e-04 FAIL (exit 1) at the defaults."""
    code, stdout, _ = gradlab(capsys, "check", "--activation", "relu")
    assert code == 0 and "PASS" in stdout, stdout
    match = re.search(r"left out (\d+) of (\d+) entries .*kink", stdout)
    assert match and 0 < int(match.group(1)) < int(match.group(2)), stdout


def test_check_truncate_reports_the_tutorials_failing_check(capsys):
    """README: the tutorial's set-up; exact BPTT passes, truncated BPTT is a few percent off."""
    code, stdout, _ = gradlab(capsys, "check", "--tokens", "--inputs", "8", "--hidden", "2", "--steps", "7",
                              "--batch", "1", "--truncate", "4")
    assert code == 0
    match = re.search(r"truncated BPTT \(K=4\) is (\S+) away from the true gradient", stdout)
    assert match and 0.01 < float(match.group(1)) < 0.2
    code, stdout, _ = gradlab(capsys, "check", "--tokens", "--inputs", "8", "--hidden", "2", "--steps", "7",
                              "--batch", "1", "--truncate", "6")   # K = T − 1: exact
    match = re.search(r"truncated BPTT \(K=6\) is (\S+) away", stdout)
    assert code == 0 and float(match.group(1)) < 1e-12


def test_check_refuses_a_network_whose_states_overflow(capsys):
    """It used to print PASS (error 0.00e+00, exit 0) for gradients that were all NaN."""
    code, stdout, stderr = gradlab(capsys, "check", "--hidden", "4", "--inputs", "1", "--steps", "800",
                                   "--batch", "1", "--activation", "linear", "--radius", "3")
    assert code == 2 and stdout == "" and len(stderr.splitlines()) == 1
    assert re.match(r"Error: the forward pass overflows float64 .*at step \d+ of 800", stderr)


WRITERS = {   # every command that writes a results folder, at sizes that would take a moment
    "run": lambda tmp: ["run", *SMALL],
    "train": lambda tmp: ["train", "--steps", "5", "--hidden", "3", "--updates", "2", "--quiet"],
    "sweep": lambda tmp: ["sweep", _spec(tmp), "--quiet"],
    "lyapunov": lambda tmp: ["lyapunov", "-a", "tanh", "--gains", "1", "--hidden", "4", "--steps", "10",
                             "--burn", "2", "--warmup", "2", "--seeds", "1"],
}


def _spec(tmp):
    path = tmp / "spec.toml"
    path.write_text('kind = "run"\n[grid]\nradius = [0.5]\n[fixed]\nhidden = 3\nsteps = 4\n')
    return path


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
@pytest.mark.parametrize("command", list(WRITERS))
def test_a_folder_gradlab_did_not_write_is_refused_without_offering_force(tmp_path, capsys, command, force):
    """Without --force the message said `pass --force to replace it`, and --force was then refused."""
    out = tmp_path / "theirs"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    args = WRITERS[command](tmp_path)
    before = sorted(os.listdir(tmp_path))
    code, stdout, stderr = gradlab(capsys, *args, "--out", out, *force)
    assert code == 2 and stdout == "" and len(stderr.splitlines()) == 1 and "Traceback" not in stderr, stderr
    assert stderr == (f"Error: output folder {str(out)!r} exists and was not written by gradlab (no manifest.json); "
                      "gradlab replaces only folders it wrote, so choose another --out or remove it yourself\n")
    assert os.listdir(out) == ["thesis.tex"] and sorted(os.listdir(tmp_path)) == before


def test_check_rejects_a_negative_truncation(capsys):
    code, stdout, stderr = gradlab(capsys, "check", "--truncate", "-1")
    assert code == 2 and stdout == "" and "-1" in stderr and len(stderr.splitlines()) == 1


@pytest.mark.parametrize("tol", ["-1", "0", "nan"])
def test_check_rejects_a_tolerance_no_error_could_pass(capsys, tol):
    code, stdout, stderr = gradlab(capsys, "check", "--hidden", "2", "--steps", "3", "--tol", tol)
    assert code == 2 and stdout == ""
    assert stderr.strip() == f"Error: tol must be a positive number, got {float(tol)!r}"


def test_ctrl_c_is_one_line_and_exit_130(capsys, monkeypatch):
    def interrupted(path):
        raise KeyboardInterrupt
    monkeypatch.setattr("gradlab.io.inspect.inspect_path", interrupted)
    code, stdout, stderr = gradlab(capsys, "inspect", ".")
    assert code == 130 and stdout == ""
    assert stderr.strip() == "Interrupted." and "Traceback" not in stderr


TERMINATED_WHILE_WRITING = """
import os, signal, sys
import gradlab.io.results
from gradlab.cli import main
real_write_csv = gradlab.io.results.write_csv
def write_then_terminated(path, table):
    real_write_csv(path, table)
    os.kill(os.getpid(), signal.SIGTERM)        # `kill PID` arrives half-way through writing the folder
gradlab.io.results.write_csv = write_then_terminated
import gradlab.experiments.runner
gradlab.experiments.runner.write_csv = write_then_terminated
main(sys.argv[1:])
"""


def test_sigterm_while_writing_is_one_line_exit_143_and_leaves_no_temporary_folder(tmp_path):
    proc = subprocess.run([sys.executable, "-c", TERMINATED_WHILE_WRITING, "run", *SMALL, "--out", "r"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 143 and proc.stdout == "" and proc.stderr.strip() == "Terminated."
    assert os.listdir(tmp_path) == []     # neither the folder nor its half-written temporary sibling


def test_version_and_help_in_process(capsys):
    code, stdout, _ = gradlab(capsys, "--version")
    assert code == 0 and stdout.strip() == f"gradlab, version {gl.__version__}"
    code, stdout, _ = gradlab(capsys)  # a bare `gradlab` shows the help
    assert code == 0 and "Usage: gradlab" in stdout and "run" in stdout and "check" in stdout
    for command in ("run", "check", "train", "sweep", "inspect", "plot", "reproduce", "lyapunov"):
        code, stdout, _ = gradlab(capsys, command, "--help")
        assert code == 0 and f"Usage: gradlab {command}" in stdout
        assert re.search(rf"Examples?( \(.*\))?:\n\s+gradlab {command}\b", stdout), f"{command} --help has no example"


def test_run_help_says_what_weights_and_scale_by_change(capsys):
    help_ = " ".join(gradlab(capsys, "run", "--help")[1].split())
    assert "(σ_max with --scale-by sigma_max)" in help_              # --radius is not always ρ
    assert "it sets n and d, so --hidden, --inputs, --init, --radius, --scale-by and --input-scale are refused with it" in help_
    assert "cell_state.csv" in help_ and "it sets T and B" in help_


def test_check_help_states_the_relative_error_the_code_computes(capsys):
    """The help said max|g − fd| / max|g|; relative_error divides by the larger of the two gradients' scales."""
    from gradlab.analysis.gradcheck import relative_error

    help_ = " ".join(gradlab(capsys, "check", "--help")[1].split())
    assert "max|g − fd| / max(max|g|, max|fd|)" in help_
    assert "/ max|g| " not in help_
    g, fd = np.array([1.0, 0.0]), np.array([0.0, 3.0])     # max|g| = 1 < max|fd| = 3: the two formulas differ
    assert relative_error(g, fd) == pytest.approx(3.0 / max(np.abs(g).max(), np.abs(fd).max()))


def test_train_on_a_task_without_a_chance_level_says_so(tmp_path, capsys):
    code, stdout, _ = gradlab(capsys, "train", "--task", "reber", "--steps", "4", "--hidden", "3", "--batch", "2",
                              "--updates", "2", "--eval-batch", "2", "--quiet", "--out", tmp_path / "r")
    assert code == 0 and "(no chance level)" in stdout and "nan" not in stdout


def run_process(*args, cwd):
    return subprocess.run(list(args), capture_output=True, text=True, cwd=cwd, timeout=120)


def test_python_dash_m_gradlab_is_the_same_program(tmp_path):
    help_ = run_process(sys.executable, "-m", "gradlab", "--help", cwd=tmp_path)
    assert help_.returncode == 0 and "Usage: gradlab" in help_.stdout and "check" in help_.stdout
    bad = run_process(sys.executable, "-m", "gradlab", "run", "--radius", "0", "--out", "x", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip() == "Error: radius must be a positive number, got 0.0"
    assert os.listdir(tmp_path) == []


def test_installed_gradlab_script(tmp_path):
    script = installed_script()
    assert script, "the `gradlab` console script is not installed (pip install -e .)"
    version = run_process(script, "--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"gradlab, version {gl.__version__}"
    failing = run_process(script, "check", "--hidden", "2", "--inputs", "2", "--steps", "3", "--batch", "1",
                          "--tol", "1e-30", cwd=tmp_path)
    assert failing.returncode == 1 and "FAIL" in failing.stdout


def installed_script():
    return shutil.which("gradlab", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))


@pytest.mark.parametrize("entry", ["python -m gradlab", "gradlab"])
def test_ctrl_c_while_the_command_is_still_importing_is_one_line_and_no_traceback(tmp_path, entry):
    """Ctrl-C in the first second (numpy, scipy, pandas, click importing) printed a traceback.

    ``-X importtime`` reports each import as it ends: SIGINT is sent when the
    first numpy submodule is in, most of a second before gradlab.cli is. On a
    loaded machine this test may read that line late, after the command has
    begun; such a try proves nothing about the import, so it is repeated.
    """
    command = ["-m", "gradlab"] if entry.startswith("python") else [installed_script()]
    for attempt in range(5):
        out = tmp_path / str(attempt)
        out.mkdir()
        # Unbuffered: a buffered reader would read ahead, and communicate() (which reads the pipe
        # itself) would then miss the lines it held, splitting one mid-line.
        # SIGINT as a terminal leaves it: a job started in the background (`cmd &`, nohup) inherits it
        # ignored, and Python then installs no KeyboardInterrupt handler at all.
        proc = subprocess.Popen([sys.executable, "-X", "importtime", *command, "run", "--steps", "2000", "--out", "o"],
                                cwd=out, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            imported = []
            for line in iter(proc.stderr.readline, b""):
                imported.append(line.decode())
                if re.search(r"\|\s+numpy\.", imported[-1]):
                    break
            proc.send_signal(signal.SIGINT)
            stdout, rest = (stream.decode() for stream in proc.communicate(timeout=120))
        finally:
            proc.kill()
        lines = imported + rest.splitlines(keepends=True)
        stderr = "".join(line for line in lines if not line.startswith("import time:"))
        modules = {line.split("|")[-1].strip() for line in lines if line.startswith("import time:")}
        if "gradlab.experiments.runner" in modules:      # the signal came after `run` began (it imports the runner)
            continue
        assert stderr == "Interrupted.\n" and stdout == ""
        # 130 from sys.exit; under `python -m` CPython may instead end the process by SIGINT itself
        # (when the signal landed in an eval() of a string, e.g. a namedtuple): a shell reports 130 for both.
        assert proc.returncode in (130, -signal.SIGINT)
        assert os.listdir(out) == []
        return
    pytest.fail("SIGINT never arrived before the command began, in 5 tries")
    assert os.listdir(tmp_path) == []


LAZY_PACKAGE = """
import sys
import gradlab as gl
assert not [m for m in ("numpy", "pandas", "scipy", "click") if m in sys.modules], sorted(sys.modules)
import gradlab.analysis.jacobian_norms                                  # the submodule does not hide the function
assert callable(gl.jacobian_norms) and gl.jacobian_norms is sys.modules["gradlab.analysis.jacobian_norms"].jacobian_norms
for name, module in gl._EXPORTS.items():
    assert getattr(gl, name) is getattr(sys.modules[f"gradlab.{module}"], name), name
from gradlab import run_sweep, GradlabError
assert gl.schema is sys.modules["gradlab.io.schema"] and set(gl.__all__) <= set(dir(gl))
try:
    gl.no_such_name
except AttributeError:
    pass
else:
    raise AssertionError("gl.no_such_name")
print("ok")
"""


def test_import_gradlab_is_instant_and_every_public_name_still_resolves():
    """The package loads its names on first use, so the `gradlab` command can catch Ctrl-C from the start."""
    import gradlab

    eager = ["ACTIVATIONS", "Activation", "get_activation", "Gradients", "loss_and_grads", "loss_value",
             "output_errors", "chain", "clip_by_global_norm", "clip_by_value", "global_norm", "no_clipping",
             "RunConfig", "GradlabError", "GatedParams", "forward_gated", "init_gated_params", "load_gated_weights",
             "save_gated_weights", "finite_difference_grads", "gradient_check", "truncation_errors",
             "log_loss_grad_norms", "init_params", "init_recurrent", "inspect_path", "GRUTrace", "forward_gru",
             "gru_cell", "JacobianNorms", "fit_growth_rate", "jacobian_norms", "LSTMTrace", "cell_state_trace",
             "exact_cell_state_norms", "forward_lstm", "lstm_cell", "largest_lyapunov", "lyapunov_exponents",
             "MeanField", "compute_mean_field", "critical_gain", "PARAM_NAMES", "RNNParams", "forward", "rnn_cell",
             "RunResult", "analyse", "build_model", "write_run", "eigenvalues", "sigma_max", "singular_values",
             "spectral_radius", "spectrum_table", "load_spec", "run_sweep", "TASKS", "get_task", "Trace",
             "TrainConfig", "TrainResult", "train", "load_inputs", "load_weights", "save_weights"]
    assert set(eager) <= set(gradlab._EXPORTS)      # the names `import gradlab` used to import eagerly (0.1)
    done = subprocess.run([sys.executable, "-c", LAZY_PACKAGE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr

