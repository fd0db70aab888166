"""A user's own model: nothing about it is assumed silently (issue 16.1–3, 16.6), and sweep files that
named unused or clashing parameters are refused (issue 15.5)."""
import json
import os
import re

import numpy as np
import pandas as pd
import pytest

import gradlab as gl
from gradlab.cli import main
from gradlab.errors import GradlabError
from gradlab.experiments.config import RunConfig
from gradlab.experiments.runner import analyse, build_model
from gradlab.experiments.sweep import parse_spec


def gradlab(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def rnn_arrays(n=4, d=3, seed=0, fc=False):
    rng = np.random.default_rng(seed)
    arrays = {"weight_ih_l0": rng.standard_normal((n, d)), "weight_hh_l0": 0.6 * rng.standard_normal((n, n)),
              "bias_ih_l0": 0.1 * rng.standard_normal(n), "bias_hh_l0": np.zeros(n)}
    if fc:
        arrays.update({"fc.weight": rng.standard_normal((2, n)), "fc.bias": np.zeros(2)})
    return arrays


def one_line_refusal(code, stdout, stderr):
    assert code == 2 and stdout == "" and len(stderr.splitlines()) == 1 and "Traceback" not in stderr, stderr
    return stderr


# ---------------------------------------------------------------- 16.1: the nonlinearity

def test_a_state_dict_without_its_nonlinearity_is_refused_saying_how_to_state_it(tmp_path, capsys):
    np.savez(tmp_path / "rnn.npz", **rnn_arrays())
    err = one_line_refusal(*gradlab(capsys, "run", "--weights", tmp_path / "rnn.npz", "--out", tmp_path / "o"))
    assert "does not record the nonlinearity its RNN was trained with" in err
    assert "--activation tanh|relu|sigmoid|linear" in err and 'np.savez(..., nonlinearity="relu")' in err
    assert not (tmp_path / "o").exists()
    with pytest.raises(GradlabError, match="does not record the nonlinearity"):      # the library, and sweeps
        analyse(RunConfig(weights=str(tmp_path / "rnn.npz")))


def test_a_trained_relu_rnn_is_analysed_as_relu(tmp_path, capsys, torch):
    """nn.RNN(nonlinearity='relu'): its state dict alone was analysed as tanh, silently."""
    torch.manual_seed(0)
    rnn = torch.nn.RNN(3, 5, nonlinearity="relu", batch_first=True).double()
    sd = {k: v.detach().numpy() for k, v in rnn.state_dict().items()}
    np.savez(tmp_path / "rnn.npz", nonlinearity="relu", **sd)
    x = np.random.default_rng(1).standard_normal((2, 6, 3))
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "o"
    code, stdout, err = gradlab(capsys, "run", "--weights", tmp_path / "rnn.npz", "--input-seq", tmp_path / "x.npy",
                                "--out", out)
    assert code == 0, err
    assert stdout.startswith("rnn, relu (recorded in the weights file); n = 5, d = 3")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["activation"] == "relu" and manifest["model"]["activation_from"] == "weights file"
    h = rnn(torch.from_numpy(x))[0].detach().numpy()          # PyTorch's own states are gradlab's
    params = gl.load_weights(tmp_path / "rnn.npz")
    np.testing.assert_allclose(gl.forward(params, x, "relu").h[:, 1:], h, rtol=1e-12, atol=1e-14)
    norms = pd.read_csv(out / "norms.csv")
    trace = gl.forward(params, x, "relu")
    np.testing.assert_allclose(norms.log10_norm, gl.jacobian_norms(trace).log_norm.ravel() / np.log(10), rtol=1e-12)


def test_activation_given_or_recorded_and_a_disagreement_is_refused(tmp_path, capsys):
    np.savez(tmp_path / "bare.npz", **rnn_arrays())
    np.savez(tmp_path / "relu.npz", nonlinearity="relu", **rnn_arrays())
    code, stdout, err = gradlab(capsys, "run", "--weights", tmp_path / "bare.npz", "--activation", "sigmoid",
                                "--steps", "5", "--out", tmp_path / "a")
    assert code == 0 and stdout.startswith("rnn, sigmoid; n = 4"), err
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["model"]["activation_from"] == "config"
    err = one_line_refusal(*gradlab(capsys, "run", "--weights", tmp_path / "relu.npz", "--activation", "tanh",
                                    "--out", tmp_path / "b"))
    assert "activation 'tanh' (--activation) contradicts weights file" in err and "records nonlinearity 'relu'" in err
    code, stdout, err = gradlab(capsys, "check", "--weights", tmp_path / "relu.npz", "--steps", "3", "--batch", "1")
    assert code == 0 and "rnn, relu (recorded in the weights file)" in stdout, err


def test_a_gated_file_recording_another_nonlinearity_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "lstm.npz", nonlinearity="relu", weight_ih_l0=rng.standard_normal((16, 3)),
             weight_hh_l0=rng.standard_normal((16, 4)))
    with pytest.raises(GradlabError, match=r"records nonlinearity 'relu', but an LSTM has fixed sigmoid/tanh gates"):
        build_model(RunConfig(cell="lstm", weights=str(tmp_path / "lstm.npz"), steps=3))


# ---------------------------------------------------------------- 16.2: the layout

@pytest.mark.parametrize("tokens", [False, True])
def test_a_time_major_file_is_read_with_layout_tbd_and_b_and_t_are_printed(tmp_path, capsys, tokens):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 3, size=(2, 7)) if tokens else rng.standard_normal((2, 7, 3))       # (B, T, ·)
    np.save(tmp_path / "btd.npy", x)
    np.save(tmp_path / "tbd.npy", x.swapaxes(0, 1))                                          # PyTorch's default
    np.savez(tmp_path / "w.npz", nonlinearity="tanh", **rnn_arrays())
    runs = {}
    for layout in ("btd", "tbd"):
        out = tmp_path / layout
        code, stdout, err = gradlab(capsys, "run", "--weights", tmp_path / "w.npz", "--input-seq",
                                    tmp_path / f"{layout}.npy", "--layout", layout, "--out", out)
        assert code == 0, err
        assert f"B = 2 sequences × T = 7 steps, from {tmp_path / layout}.npy read as " \
               f"{'(T, B, d)' if layout == 'tbd' else '(B, T, d)'} (--layout {layout})" in stdout
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["model"]["layout"] == layout and (manifest["model"]["B"], manifest["model"]["T"]) == (2, 7)
        runs[layout] = pd.read_csv(out / "norms.csv")
    pd.testing.assert_frame_equal(runs["btd"], runs["tbd"])
    code, stdout, _ = gradlab(capsys, "run", "--weights", tmp_path / "w.npz", "--input-seq", tmp_path / "tbd.npy",
                              "--out", tmp_path / "default")
    assert code == 0 and "B = 7 sequences × T = 2 steps" in stdout and "(--layout btd)" in stdout   # said, not hidden


def test_layout_default_is_stated_in_help(capsys):
    help_ = " ".join(gradlab(capsys, "run", "--help")[1].split())
    assert "--layout [btd|tbd]" in help_ and "tbd = (T, B, d), PyTorch's default." in help_
    assert "[default: btd]" in help_


# ---------------------------------------------------------------- 16.3: the read-out

def test_a_random_read_out_is_said_and_outputs_sets_m(tmp_path, capsys):
    np.savez(tmp_path / "w.npz", nonlinearity="tanh", **rnn_arrays())
    code, stdout, err = gradlab(capsys, "run", "--weights", tmp_path / "w.npz", "--outputs", "6", "--steps", "5",
                                "--out", tmp_path / "o")
    assert code == 0, err
    assert "m = 6; random read-out W_hy ~ N(0, 1/n) (the weights file has no fc.weight" in stdout
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["model"]["readout"].startswith("random") and manifest["config"]["outputs"] == 6


def test_the_files_read_out_is_used_and_a_contradicting_outputs_is_refused(tmp_path, capsys):
    np.savez(tmp_path / "w.npz", nonlinearity="tanh", **rnn_arrays(fc=True))
    code, stdout, _ = gradlab(capsys, "run", "--weights", tmp_path / "w.npz", "--steps", "5", "--out", tmp_path / "o")
    assert code == 0 and "random read-out" not in stdout and "m = 2" in stdout
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["model"]["readout"].startswith("fc.weight")
    err = one_line_refusal(*gradlab(capsys, "run", "--weights", tmp_path / "w.npz", "--outputs", "5",
                                    "--out", tmp_path / "p"))
    assert "outputs = 5 (--outputs) contradicts the read-out" in err and "fc.weight has 2 rows" in err


def test_ignored_keys_are_named_in_the_summary_and_the_manifest(tmp_path, capsys):
    np.savez(tmp_path / "m.npz", nonlinearity="tanh", **{f"rnn.{k}": v for k, v in rnn_arrays().items()},
             **{"embedding.weight": np.zeros((3, 2)), "step": np.array(5)})
    code, stdout, err = gradlab(capsys, "run", "--weights", tmp_path / "m.npz", "--steps", "5", "--out", tmp_path / "o")
    assert code == 0 and "ignored: embedding.weight, step" in stdout, err
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["model"]["ignored_keys"] == \
        ["embedding.weight", "step"]


# ---------------------------------------------------------------- 16.6: messages

def test_an_lstm_file_without_cell_lstm_suggests_it(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "lstm.npz", weight_ih_l0=rng.standard_normal((16, 3)), weight_hh_l0=rng.standard_normal((16, 4)))
    err = one_line_refusal(*gradlab(capsys, "run", "--weights", tmp_path / "lstm.npz", "--out", tmp_path / "o"))
    assert "holds an nn.LSTM state dict (weight_hh_l0 is 4n × n = 16 × 4)" in err and "--cell lstm" in err


def test_a_torch_save_file_is_read_as_a_state_dict_and_a_pickled_module_is_refused(tmp_path, capsys, torch):
    """A torch.save(state_dict) file is read with weights_only=True (the nonlinearity still must be stated);
    torch.save(module) pickles code, which gradlab never unpickles: one line saying what to save instead."""
    torch.save(torch.nn.RNN(3, 4).state_dict(), tmp_path / "rnn.pt")
    err = one_line_refusal(*gradlab(capsys, "run", "--weights", tmp_path / "rnn.pt", "--out", tmp_path / "o"))
    assert "does not record the nonlinearity" in err
    code, out, err = gradlab(capsys, "run", "--weights", tmp_path / "rnn.pt", "--activation", "tanh",
                             "--out", tmp_path / "o")
    assert code == 0, err
    torch.save(torch.nn.RNN(3, 4), tmp_path / "module.pt")
    err = one_line_refusal(*gradlab(capsys, "run", "--weights", tmp_path / "module.pt", "--activation", "tanh",
                                    "--out", tmp_path / "o2"))
    assert "weights_only=True" in err and "model.state_dict()" in err and "\\x" not in err


@pytest.mark.parametrize("fixed, message", [
    ('weights = "{w}"\n[grid]\nradius = [0.5, 2.0]', r"radius = 0\.5 is not used: the weights file .* sets hidden, "
                                                      r"inputs, init, radius, scale_by, input_scale"),
    ('weights = "{w}"\nhidden = 8', r"hidden = 8 is not used"),
    ('weights = "{w}"\ninit = "orthogonal"\nactivation = "tanh"', r"init = 'orthogonal' is not used"),
    ('activation = "tanh"\ninput_seq = "{x}"\nsteps = 20', r"steps = 20 is not used: the input file .* sets steps, batch"),
    ('weights = "{w}"', r"does not record the nonlinearity"),
])
def test_a_sweep_may_not_set_what_its_files_set(tmp_path, fixed, message):
    np.savez(tmp_path / "w.npz", **rnn_arrays())
    np.save(tmp_path / "x.npy", np.zeros((5, 3)))
    body = fixed.format(w=tmp_path / "w.npz", x=tmp_path / "x.npy")
    head, _, grid = body.partition("\n[grid]\n")
    text = f'kind = "run"\n[fixed]\n{head}\n' + (f"[grid]\n{grid}\n" if grid else "")
    with pytest.raises(GradlabError, match=message):
        parse_spec(text, "s.toml")


# ---------------------------------------------------------------- 15.5: sweep files

@pytest.mark.parametrize("text, message", [
    ('kind = "run"\n[fixed]\nhidden = ' + "[" * 20000 + "]" * 20000 + "\n", r"malformed TOML: .*nested too deeply"),
    ('kind = "run"\n[fixed]\nweights = 1\n', r"weights must be a file name \(a string\), got 1"),
    ('kind = "run"\n[fixed]\ninput_seq = 2.5\n', r"input_seq must be a file name \(a string\), got 2\.5"),
    ('kind = "run"\n[grid]\nrho = [1.0]\n', r"grid\.rho: 'rho' is a column gradlab writes"),
    ('kind = "run"\n[fixed]\ngrowth_rate = 1\n', r"'growth_rate' is a column gradlab writes"),
    ('kind = "train"\n[fixed]\nwall_time_s = 1\n', r"'wall_time_s' is a column"),
    ('kind = "run"\n[grid]\nparam_hash = ["x"]\n', r"'param_hash' is a column"),
    ('kind = "lyapunov"\n[fixed]\nlyapunov = 0.1\n', r"'lyapunov' is a column"),
    ('kind = "run"\n[grid]\nrun_id = ["a"]\n', r"'run_id' is a column"),
    ('kind = "run"\n[grid]\nradius = [1, 1.0]\n', r"grid\.radius lists a value twice: \[1, 1\.0\]"),
    ('kind = "run"\n[[grid]]\nradius = [1]\n[[grid]]\nradius = [2, 1.0]\n[fixed]\nhidden = 3\n',
     r"two \[\[grid\]\] tables both hold the run radius = 1\.0, hidden = 3: it would run twice"),
    ('kind = "run"\n[fixed]\nradius = 1e-320\n', r"radius must lie between 1e-300 and 1e\+300, got 1e-320"),
])
def test_bad_sweep_files_are_one_line(tmp_path, capsys, text, message):
    spec = tmp_path / "s.toml"
    spec.write_text(text)
    err = one_line_refusal(*gradlab(capsys, "sweep", spec, "--out", tmp_path / "o"))
    assert re.search(message, err), err
    assert os.listdir(tmp_path) == ["s.toml"]


def test_true_and_1_stay_different_values():
    spec = parse_spec('kind = "run"\n[grid]\ntokens = [true, false]\n[fixed]\nhidden = 3\nsteps = 3\n', "s.toml")
    assert spec.n_runs == 2


def test_radius_and_input_scale_keep_to_the_normal_range_everywhere():
    for make in (lambda: RunConfig(radius=1e-320), lambda: RunConfig(input_scale=1e301),
                 lambda: gl.TrainConfig(radius=1e-320)):
        with pytest.raises(GradlabError, match=r"must lie between 1e-300 and 1e\+300"):
            make()
