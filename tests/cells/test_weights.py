"""Weights (.npz, PyTorch nn.RNN names) and input (.npy) files."""
import numpy as np
import pytest

import gradlab as gl


def params(n=4, d=3, m=2, seed=0):
    rng = np.random.default_rng(seed)
    p = gl.init_params(n, d, m, radius=1.2, rng=rng)
    return p.replace(b_h=rng.standard_normal(n), b_y=rng.standard_normal(m))


def torch_named(p, **overrides):
    """The arrays of a weights file, as a PyTorch user would save them."""
    arrays = {"weight_ih_l0": p.W_xh, "weight_hh_l0": p.W_hh, "bias_ih_l0": p.b_h,
              "bias_hh_l0": np.zeros(p.n), "fc.weight": p.W_hy, "fc.bias": p.b_y}
    arrays.update(overrides)
    return {k: v for k, v in arrays.items() if v is not None}


def test_save_load_round_trip_is_exact(tmp_path):
    p = params()
    gl.save_weights(tmp_path / "w.npz", p)
    q = gl.load_weights(tmp_path / "w.npz")
    for name in gl.PARAM_NAMES:
        np.testing.assert_array_equal(getattr(q, name), getattr(p, name))
    with np.load(tmp_path / "w.npz") as f:  # written under PyTorch's names
        assert {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"} <= set(f.files)


def test_the_two_pytorch_biases_are_summed(tmp_path):
    p = params()
    b_ih, b_hh = np.arange(4.0), np.full(4, 0.5)
    np.savez(tmp_path / "w.npz", **torch_named(p, bias_ih_l0=b_ih, bias_hh_l0=b_hh))
    np.testing.assert_array_equal(gl.load_weights(tmp_path / "w.npz").b_h, b_ih + b_hh)


def test_biases_are_optional(tmp_path):
    p = params()
    np.savez(tmp_path / "w.npz", **torch_named(p, bias_ih_l0=None, bias_hh_l0=None))
    assert np.all(gl.load_weights(tmp_path / "w.npz").b_h == 0)


def test_missing_readout_is_drawn_from_rng_with_m_outputs(tmp_path):
    p = params(n=5, d=3)
    np.savez(tmp_path / "w.npz", **torch_named(p, **{"fc.weight": None, "fc.bias": None}))
    a = gl.load_weights(tmp_path / "w.npz", rng=np.random.default_rng(1))
    b = gl.load_weights(tmp_path / "w.npz", rng=np.random.default_rng(1))
    assert a.W_hy.shape == (3, 5) and np.all(a.b_y == 0)  # m defaults to d
    np.testing.assert_array_equal(a.W_hy, b.W_hy)
    assert gl.load_weights(tmp_path / "w.npz", rng=np.random.default_rng(1), m=7).W_hy.shape == (7, 5)


def test_float32_weights_are_read_as_float64(tmp_path):
    p = params()
    np.savez(tmp_path / "w.npz", **{k: v.astype(np.float32) for k, v in torch_named(p).items()})
    q = gl.load_weights(tmp_path / "w.npz")
    assert q.W_hh.dtype == np.float64
    np.testing.assert_array_equal(q.W_hh, p.W_hh.astype(np.float32).astype(np.float64))


BAD_FILES = {
    "missing W_hh": (dict(weight_hh_l0=None), r"lacks weight_hh_l0 \(has: bias_hh_l0, bias_ih_l0, fc\.bias"),
    "missing both": (dict(weight_hh_l0=None, weight_ih_l0=None), r"lacks weight_ih_l0, weight_hh_l0"),
    "non-square W_hh": (dict(weight_hh_l0=np.zeros((4, 3))), r"weight_hh_l0 .* must be square \(n, n\), got \(4, 3\)"),
    "W_hh not a matrix": (dict(weight_hh_l0=np.zeros(4)), r"must be square \(n, n\), got \(4,\)"),
    "W_ih wrong n": (dict(weight_ih_l0=np.zeros((5, 3))), r"W_xh has shape \(5, 3\), expected \(4, 3\)"),
    "bias wrong size": (dict(bias_hh_l0=np.zeros(3)), r"bias_hh_l0 .* has shape \(3,\), expected \(4,\)"),
    "fc wrong n": (dict(**{"fc.weight": np.zeros((2, 5))}), r"W_hy has shape \(2, 5\), expected \(2, 4\)"),
    "fc bias wrong m": (dict(**{"fc.bias": np.zeros(3)}), r"b_y has shape \(3,\), expected \(2,\)"),
    "nan in W_hh": (dict(weight_hh_l0=np.full((4, 4), np.nan)), r"W_hh contains non-finite values"),
    "inf in bias": (dict(bias_ih_l0=np.array([0, np.inf, 0, 0])), r"b_h contains non-finite values"),
    "nan in W_ih": (dict(weight_ih_l0=np.full((4, 3), np.nan)), r"W_xh contains non-finite values"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_weights_files_name_the_problem(tmp_path, case):
    overrides, message = BAD_FILES[case]
    path = tmp_path / "bad.npz"
    np.savez(path, **torch_named(params(), **overrides))
    with pytest.raises(gl.GradlabError, match=message) as info:
        gl.load_weights(path)
    assert "bad.npz" in str(info.value) and "\n" not in str(info.value)


def test_missing_and_unreadable_weights_files(tmp_path):
    with pytest.raises(gl.GradlabError, match=r"weights file '.*nope\.npz' does not exist"):
        gl.load_weights(tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_text("not a zip file")
    with pytest.raises(gl.GradlabError, match=r"weights file '.*junk\.npz' is not a \.npz file"):
        gl.load_weights(tmp_path / "junk.npz")
    np.save(tmp_path / "array.npy", np.eye(2))      # np.load would hand back an array, not an archive
    with pytest.raises(gl.GradlabError, match=r"weights file '.*array\.npy' is not a \.npz file"):
        gl.load_weights(tmp_path / "array.npy")
    np.savez(tmp_path / "text.npz", weight_ih_l0=np.array(["a", "b"]), weight_hh_l0=np.eye(2))
    with pytest.raises(gl.GradlabError, match=r"cannot read weights file '.*text\.npz'"):
        gl.load_weights(tmp_path / "text.npz")


def test_params_validate_shapes_and_values_directly():
    p = params()
    with pytest.raises(gl.GradlabError, match=r"W_hh has shape \(4, 3\), expected"):
        p.replace(W_hh=np.zeros((4, 3)))
    with pytest.raises(gl.GradlabError, match=r"b_y contains non-finite values"):
        p.replace(b_y=np.array([np.nan, 0.0]))


@pytest.mark.parametrize("x", [np.zeros((5, 3)), np.zeros((2, 5, 3)), np.arange(5), np.zeros((2, 5), dtype=np.int32)])
def test_input_files_round_trip(tmp_path, x):
    np.save(tmp_path / "x.npy", x)
    np.testing.assert_array_equal(gl.load_inputs(tmp_path / "x.npy"), x)


def test_bad_input_files_name_the_problem(tmp_path):
    with pytest.raises(gl.GradlabError, match=r"input file '.*none\.npy' does not exist"):
        gl.load_inputs(tmp_path / "none.npy")
    np.save(tmp_path / "s.npy", np.array(["a", "b"]))
    with pytest.raises(gl.GradlabError, match=r"holds <U1, expected floats or integer token ids"):
        gl.load_inputs(tmp_path / "s.npy")
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(gl.GradlabError, match=r"cannot read input file '.*o\.npy'"):
        gl.load_inputs(tmp_path / "o.npy")
    (tmp_path / "junk.npy").write_text("junk")
    with pytest.raises(gl.GradlabError, match=r"input file '.*junk\.npy' is not a \.npy file"):
        gl.load_inputs(tmp_path / "junk.npy")
    np.savez(tmp_path / "archive.npz", x=np.zeros((5, 3)))   # np.load would hand back an archive
    with pytest.raises(gl.GradlabError, match=r"input file '.*archive\.npz' is not a \.npy file"):
        gl.load_inputs(tmp_path / "archive.npz")


def test_a_whole_models_state_dict_loads_through_its_rnn_prefix(tmp_path):
    p = params()
    arrays = {"model.rnn.weight_ih_l0": p.W_xh, "model.rnn.weight_hh_l0": p.W_hh,
              "model.rnn.bias_ih_l0": p.b_h, "fc.weight": p.W_hy, "fc.bias": p.b_y}
    np.savez(tmp_path / "m.npz", **arrays)
    q = gl.load_weights(tmp_path / "m.npz")
    for name in gl.PARAM_NAMES:
        np.testing.assert_array_equal(getattr(q, name), getattr(p, name))


def test_two_rnn_prefixes_are_ambiguous_and_refused(tmp_path):
    p = params()
    np.savez(tmp_path / "two.npz", **{f"{m}.{k}": v for m in ("enc", "dec")
                                       for k, v in (("weight_ih_l0", p.W_xh), ("weight_hh_l0", p.W_hh))})
    with pytest.raises(gl.GradlabError, match=r"lacks weight_ih_l0, weight_hh_l0"):
        gl.load_weights(tmp_path / "two.npz")


@pytest.mark.parametrize("extra, what", [
    ({"weight_ih_l1": np.zeros((4, 4)), "weight_hh_l1": np.zeros((4, 4)), "bias_ih_l1": np.zeros(4)},
     r"2-layer"),
    ({"weight_ih_l0_reverse": np.zeros((4, 3)), "weight_hh_l0_reverse": np.zeros((4, 4))}, r"bidirectional"),
])
@pytest.mark.parametrize("prefix", ["", "model.rnn."])
def test_a_deeper_or_bidirectional_network_is_refused_not_cut_to_its_first_layer(tmp_path, extra, what, prefix):
    """nn.RNN(num_layers=2) or (bidirectional=True) dumps *_l1 / *_reverse arrays beside the *_l0 ones.

    Analysing only layer 0, forwards, would measure a different network's
    Jacobians without a word: a one-layer loader refuses the file with one
    line naming the keys (a stacked cell, layers = 2, reads a 2-layer file).
    """
    arrays = {prefix + k: v for k, v in {**torch_named(params(), **{"fc.weight": None, "fc.bias": None}),
                                         **extra}.items()}
    np.savez(tmp_path / "deep.npz", **arrays)
    with pytest.raises(gl.GradlabError, match=what) as info:
        gl.load_weights(tmp_path / "deep.npz")
    message = str(info.value)
    assert "deep.npz" in message and sorted(extra)[0] in message and "\n" not in message
    # the same for an LSTM's state dict
    G = 4
    lstm = {"weight_ih_l0": np.zeros((G * 4, 3)), "weight_hh_l0": np.zeros((G * 4, 4))}
    lstm.update({k: np.zeros((G * 4,) + v.shape[1:]) for k, v in extra.items()})
    np.savez(tmp_path / "deep_lstm.npz", **{prefix + k: v for k, v in lstm.items()})
    with pytest.raises(gl.GradlabError, match=what):
        gl.load_gated_weights(tmp_path / "deep_lstm.npz", "lstm")


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_real_two_layer_and_bidirectional_torch_state_dicts_are_refused_by_one_layer_loaders(torch, tmp_path, kind):
    for kwargs, what in (({"num_layers": 2}, "2-layer"), ({"bidirectional": True}, "bidirectional")):
        module = getattr(torch.nn, kind)(3, 4, **kwargs)
        np.savez(tmp_path / "m.npz", **{k: v.detach().numpy() for k, v in module.state_dict().items()})
        with pytest.raises(gl.GradlabError, match=what):
            if kind == "RNN":
                gl.load_weights(tmp_path / "m.npz")
            else:
                gl.load_gated_weights(tmp_path / "m.npz", kind.lower())


# ---------------------------------------------------------------- issues 15 and 16: what a weights file says

def test_a_weights_file_names_what_it_ignores_and_reads_its_nonlinearity(tmp_path):
    from gradlab.cells.weights import read_weights_file

    p = params()
    np.savez(tmp_path / "m.npz", nonlinearity="relu", **torch_named(p),
             **{"embedding.weight": np.zeros((3, 2)), "bn.num_batches_tracked": np.array(7)})
    w = read_weights_file(tmp_path / "m.npz")
    assert w.nonlinearity == "relu" and w.has_readout
    assert w.ignored == ("bn.num_batches_tracked", "embedding.weight")     # an int array, never read
    assert set(w.arrays) == {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "fc.weight", "fc.bias"}


def test_save_params_records_the_nonlinearity_and_save_weights_only_when_told(tmp_path):
    from gradlab.cells.rnn import RNNCell
    from gradlab.cells.weights import read_weights_file, save_params

    p = params()
    save_params(RNNCell("relu"), tmp_path / "a.npz", p)
    assert read_weights_file(tmp_path / "a.npz").nonlinearity == "relu"
    gl.save_weights(tmp_path / "b.npz", p)
    assert read_weights_file(tmp_path / "b.npz").nonlinearity is None       # not tanh by default
    gl.save_weights(tmp_path / "c.npz", p, activation="sigmoid")
    assert read_weights_file(tmp_path / "c.npz").nonlinearity == "sigmoid"


def test_a_bias_longer_than_any_matrix_is_refused_before_it_is_read(tmp_path, monkeypatch):
    """A zip bomb in bias_ih_l0 (10⁸ zeros): refused from the header, never inflated."""
    import gradlab.cells.weights as weights

    np.savez(tmp_path / "w.npz", **torch_named(params(), bias_ih_l0=np.zeros(1000)))
    monkeypatch.setattr(weights, "read_npz_arrays", lambda *a, **k: pytest.fail("read"))
    with pytest.raises(gl.GradlabError, match=r"bias_ih_l0 in '.*w\.npz' has shape \(1000,\), expected at most \(4,\)"):
        weights.read_weights_file(tmp_path / "w.npz")


@pytest.mark.parametrize("key, scale, message", [
    ("weight_hh_l0", 1e-310, r"weight_hh_l0 has entries of at most \|w\| = .*e-31\d, a subnormal scale below 1e-300"),
    ("weight_hh_l0", 1e305, r"weight_hh_l0 holds entries up to \|w\| = .*e\+30\d, beyond 1e\+300"),
    ("weight_ih_l0", 1e306, r"weight_ih_l0 holds entries up to"),
])
def test_weights_of_subnormal_or_overflowing_scale_are_refused(tmp_path, key, scale, message):
    """LAPACK's eigenvalue solver does not converge on a matrix of subnormal numbers (LinAlgError)."""
    p = params()
    np.savez(tmp_path / "w.npz", **torch_named(p, **{key: (p.W_hh if key == "weight_hh_l0" else p.W_xh) * scale}))
    with pytest.raises(gl.GradlabError, match=message):
        gl.load_weights(tmp_path / "w.npz")


def test_a_few_subnormal_entries_among_normal_ones_are_fine(tmp_path):
    p = params()
    W = p.W_hh.copy()
    W[0, 0] = 1e-310
    np.savez(tmp_path / "w.npz", **torch_named(p, weight_hh_l0=W))
    assert gl.load_weights(tmp_path / "w.npz").W_hh[0, 0] == 1e-310


@pytest.mark.parametrize("rows, found, cell", [(16, "lstm", "rnn"), (12, "gru", "rnn"), (4, "rnn", "lstm"),
                                               (16, "lstm", "gru")])
def test_a_file_of_another_cell_says_which_cell_reads_it(tmp_path, rows, found, cell):
    """It said `weight_hh_l0 … must be square (n, n), got (16, 4)`; 4n × n is an nn.LSTM's."""
    from gradlab.cells import make_cell
    from gradlab.cells.weights import load_params

    np.savez(tmp_path / "w.npz", weight_ih_l0=np.zeros((rows, 3)), weight_hh_l0=0.1 * np.ones((rows, 4)))
    with pytest.raises(gl.GradlabError, match=rf"holds an nn\.{found.upper()} state dict \(weight_hh_l0 is .* = "
                                              rf"{rows} × 4\), not an nn\.{cell.upper()}'s: analyse it with "
                                              rf"--cell {found}"):
        load_params(make_cell(cell), tmp_path / "w.npz")


@pytest.mark.parametrize("value", [1e-320, 1e301, 0.0, float("inf")])
def test_check_scale_refuses_scales_outside_the_normal_range(value):
    from gradlab.cells.weights import check_scale

    with pytest.raises(gl.GradlabError, match="radius must"):
        check_scale(value, "radius")
    check_scale(1e-300, "radius")
    check_scale(1e300, "radius")


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_a_stacked_torch_state_dict_is_read_with_its_layers(torch, tmp_path, kind, capsys):
    """gradlab run --weights of a num_layers = 3 state dict takes the file's 3 layers (and refuses --layers 2)."""
    import json

    from gradlab.cli import main

    torch.manual_seed(0)
    module = getattr(torch.nn, kind)(3, 4, num_layers=3, dtype=torch.float64)
    arrays = {k: v.detach().numpy() for k, v in module.state_dict().items()}
    np.savez(tmp_path / "m.npz", nonlinearity="tanh", **arrays)
    cell = gl.make_cell(kind.lower(), layers=3)
    p = gl.load_params(cell, tmp_path / "m.npz")
    x = np.random.default_rng(0).standard_normal((2, 5, 3))
    out, _ = module(torch.tensor(x.swapaxes(0, 1)))
    np.testing.assert_allclose(cell.forward(p, x).h[:, 1:], out.detach().numpy().swapaxes(0, 1), atol=1e-13)
    args = ["run", "--cell", kind.lower(), "--weights", str(tmp_path / "m.npz"), "--steps", "5"]
    with pytest.raises(SystemExit) as e:
        main(args + ["--out", str(tmp_path / "run")])
    assert e.value.code == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["config"]["layers"] == 3
    with pytest.raises(SystemExit) as e:
        main(args + ["--layers", "2", "--out", str(tmp_path / "run2")])
    assert e.value.code == 2 and "holds 3 layers" in capsys.readouterr().err


def test_a_stacked_file_with_a_missing_layer_is_refused(tmp_path):
    arrays = {"weight_ih_l0": np.zeros((4, 3)), "weight_hh_l0": np.zeros((4, 4)),
              "weight_ih_l2": np.zeros((4, 4)), "weight_hh_l2": np.zeros((4, 4))}
    np.savez(tmp_path / "gap.npz", nonlinearity="tanh", **arrays)
    with pytest.raises(gl.GradlabError, match=r"holds layers up to 2 but no weight_hh_l1: layer 1 is missing"):
        gl.load_params(gl.make_cell("rnn", layers=3), tmp_path / "gap.npz")
