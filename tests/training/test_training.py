"""The training loop: it learns, it clips as told, and it never applies a non-finite update."""
import numpy as np
import pandas as pd
import pytest

import gradlab as gl
from gradlab import GradlabError, TrainConfig, loss_and_grads, train
from gradlab.training.loop import optimiser_step
from gradlab.training.optimisers import sgd


def test_training_on_the_adding_problem_beats_the_one_sixth_baseline():
    cfg = TrainConfig(task="adding", steps=10, hidden=16, batch=32, updates=200, lr=0.05, momentum=0.9,
                      clipping="norm", threshold=1.0, eval_every=50, eval_batch=2000, seed=0)
    r = train(cfg)
    ev = r.tables["evaluation"]
    assert ev["step"].tolist() == [0, 50, 100, 150, 200]
    # Held-out MSE on 2000 sequences; the baseline 1/6 has a standard error of ~0.004 there.
    assert r.summary["final_metric"] < 0.5 / 6
    assert r.summary["final_metric"] < ev["metric"].iloc[0]


def test_each_update_is_recorded_and_norm_clipping_caps_the_applied_norm():
    tau = 0.5
    r = train(TrainConfig(task="temporal_order", steps=12, hidden=8, batch=8, updates=30, lr=0.1,
                          clipping="norm", threshold=tau, eval_every=10, eval_batch=32))
    t = r.tables["training"]
    assert t["step"].tolist() == list(range(1, 31))
    assert not t["skipped"].any()
    assert np.array_equal(t["clipped"], t["grad_norm"] > tau)
    applied = np.where(t["clipped"], tau, t["grad_norm"])
    assert np.allclose(t["clipped_grad_norm"], applied, rtol=1e-12, atol=0)
    assert r.summary["n_clipped"] == t["clipped"].sum()


def test_an_exploding_network_skips_every_update_and_keeps_its_weights():
    # ρ = 1e4 with ReLU: h_T ~ 1e400 overflows, so loss and gradient are non-finite at every step.
    cfg = TrainConfig(task="adding", steps=100, hidden=8, batch=4, updates=5, radius=1e4, activation="relu",
                      eval_every=5, eval_batch=4)
    r = train(cfg)
    t = r.tables["training"]
    assert t["skipped"].all() and r.summary["n_skipped"] == 5
    assert not np.isfinite(t["grad_norm"]).any()
    assert r.summary["final_rho"] == r.summary["rho"]               # not one update was applied
    assert all(np.all(np.isfinite(v)) for v in r.params.as_dict().values())


def test_skipped_updates_are_exactly_the_non_finite_ones():
    # ReLU at ρ = 3 without clipping: the first update blows the weights up, later gradients overflow.
    r = train(TrainConfig(task="adding", steps=20, hidden=16, batch=16, updates=20, radius=3.0,
                          activation="relu", lr=0.01, eval_every=10, eval_batch=16))
    t = r.tables["training"]
    non_finite = ~np.isfinite(t["grad_norm"]) | ~np.isfinite(t["loss"])
    assert t["skipped"].sum() > 0 and not t["skipped"].all()
    # Here every skip has a non-finite gradient (the other cause, an update that would make a
    # weight non-finite, is tested on optimiser_step below): skipped is exactly the non-finite rows.
    assert np.array_equal(t["skipped"], non_finite)
    # ρ is recorded before each update: after a skipped update it is unchanged.
    after_skip = t["rho"].to_numpy()[1:][t["skipped"].to_numpy()[:-1]]
    before = t["rho"].to_numpy()[:-1][t["skipped"].to_numpy()[:-1]]
    assert np.array_equal(after_skip, before)


def test_an_sgd_step_with_momentum_matches_the_formula():
    from gradlab import init_params
    from gradlab.training.optimisers import SGDState
    rng = np.random.default_rng(0)
    p = init_params(4, 2, 1, rng=rng)
    g = {k: rng.standard_normal(v.shape) for k, v in p.as_dict().items()}
    v0 = {k: rng.standard_normal(v.shape) for k, v in p.as_dict().items()}
    new, state = optimiser_step(sgd(0.1, 0.9), p, g, SGDState(v0))
    for k in g:
        assert np.allclose(state.velocity[k], 0.9 * v0[k] - 0.1 * g[k], rtol=1e-15)
        assert np.allclose(getattr(new, k), getattr(p, k) + state.velocity[k], rtol=1e-15)


def test_an_update_that_would_make_a_weight_non_finite_is_refused():
    """A finite gradient can still overflow a weight (θ + v = inf): no update, not a broken network."""
    from gradlab import init_params
    p = init_params(3, 2, 1, rng=np.random.default_rng(1))
    g = {k: np.zeros_like(v) for k, v in p.as_dict().items()}
    opt = sgd(10.0)
    g["W_hh"][0, 0] = -1e308                        # finite, but η g overflows with η = 10
    with np.errstate(over="ignore"):
        assert optimiser_step(opt, p, g, opt.init(p.as_dict())) is None
    tiny = sgd(1e-300)
    assert optimiser_step(tiny, p, g, tiny.init(p.as_dict())) is not None


def test_first_recorded_loss_and_norm_are_those_of_bptt_on_the_first_batch():
    from gradlab import init_params
    from gradlab.training.clipping import global_norm
    from gradlab.training.tasks import get_task
    cfg = TrainConfig(task="copy", steps=14, hidden=6, batch=3, updates=1, eval_batch=2, seed=3)
    row = train(cfg).tables["training"].iloc[0]
    # Rebuild the documented streams: weights, training batches, held-out batch.
    w_rng, data_rng, _ = (np.random.default_rng(s) for s in np.random.SeedSequence(3).spawn(3))
    task = get_task("copy")
    p = init_params(6, task.inputs, task.outputs, "gaussian", 1.0, w_rng)
    b = task.batch(3, 14, data_rng)
    g = loss_and_grads(p, b.x, b.y, "tanh", task.loss, task.loss_steps)
    assert row["loss"] == pytest.approx(g.loss, rel=1e-13)
    assert row["grad_norm"] == pytest.approx(global_norm(g.grads), rel=1e-13)


def test_jacobian_curves_are_recorded_at_the_interval():
    r = train(TrainConfig(steps=15, hidden=6, batch=4, updates=10, jacobian_every=4, eval_batch=8))
    j = r.tables["jacobians"]
    assert sorted(j["step"].unique()) == [0, 4, 8, 10]
    assert (j.groupby("step")["lag"].apply(list) == [list(range(1, 16))] * 4).all()
    assert (j["max_log10_norm"] <= j["log10_bound"] + 1e-12).all()     # the bound holds during training


def test_training_is_deterministic():
    cfg = TrainConfig(steps=10, hidden=5, batch=4, updates=8, momentum=0.5, eval_every=4, eval_batch=8)
    a, b = train(cfg), train(cfg)
    for name in a.tables:
        assert a.tables[name].equals(b.tables[name])


@pytest.mark.parametrize("values, message", [
    ({"clip": "norm"}, "unknown train parameter 'clip'"),
    ({"clipping": "clamp"}, "unknown clipping 'clamp'"),
    ({"task": "adder"}, "unknown task 'adder'"),
    ({"momentum": 1.0}, "momentum must be a number in \\[0, 1\\), got 1.0"),
    ({"lr": -0.1}, "lr must be a positive number, got -0.1"),
    ({"task": "temporal_order", "steps": 5}, "needs steps ≥ 10, got 5"),
    ({"updates": 2.5}, "updates must be a whole number"),
])
def test_bad_train_configs_are_refused_naming_the_value(values, message):
    with pytest.raises(GradlabError, match=message):
        TrainConfig.from_dict(values)


def test_cli_train_writes_a_one_run_folder_and_refuses_bad_input(tmp_path, capsys):
    from gradlab.cli import main
    from gradlab.io.schema import read_table
    out = tmp_path / "t"
    args = ["train", "--steps", "10", "--hidden", "4", "--updates", "4", "--eval-every", "2",
            "--eval-batch", "8", "--jacobian-every", "2", "--clipping", "norm", "--out", str(out)]
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 0
    assert len(read_table(out / "training.csv", "training")) == 4
    assert read_table(out / "evaluation.csv", "evaluation")["step"].tolist() == [0, 2, 4]
    read_table(out / "jacobians.csv", "jacobians")
    assert read_table(out / "runs.csv", "runs")["clipping"].tolist() == ["norm"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:                 # existing folder, no --force
        main(args)
    assert e.value.code == 2 and "already exists" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["train", "--momentum", "1.5", "--out", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "1.5" in err
    assert not (tmp_path / "m").exists()


def test_stop_when_solved_ends_the_run_at_the_solving_evaluation_with_its_jacobian_curve(monkeypatch):
    """A run stopped when solved records solved, updates_to_solve and the Jacobian curve of the weights it
    stopped with (the "after" curve of the remedies figure), not only the one at update 0."""
    import gradlab.training.loop as loop

    real, calls = loop.evaluate, []

    def solved_from_the_second_evaluation(*args):
        loss, metric, error = real(*args)
        calls.append(1)
        return loss, metric, (0.0 if len(calls) > 1 else error)

    monkeypatch.setattr(loop, "evaluate", solved_from_the_second_evaluation)
    r = train(TrainConfig(task="adding", steps=6, hidden=4, batch=4, updates=100, eval_every=10, eval_batch=8,
                          jacobian_every=1000, stop_when_solved=True))
    s = r.summary
    assert s["solved"] and s["updates_to_solve"] == 10 and s["updates_done"] == 10
    assert r.tables["evaluation"]["step"].tolist() == [0, 10]
    assert sorted(set(r.tables["jacobians"]["step"])) == [0, 10]
    r = train(TrainConfig(task="adding", steps=6, hidden=4, batch=4, updates=30, eval_every=10, eval_batch=8))
    assert r.summary["updates_done"] == 30       # without the flag the run goes on


# ---------------------------------------------------------------- issue 14: every cell, optimisers, remedies

@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop"])
def test_every_cell_trains_with_every_optimiser_and_its_gradient_is_the_bptt_one(cell, optimizer):
    """One update of train() is θ + u with u the optimiser's step on the clipped BPTT gradient of the first batch."""
    from gradlab.cells import make_cell
    from gradlab.training.loop import initial_params
    from gradlab.training.optimisers import apply_updates, get_optimiser

    cfg = TrainConfig(task="adding", cell=cell, steps=6, hidden=4, batch=4, updates=1, eval_batch=4,
                      optimizer=optimizer, lr=0.01, clipping="norm", threshold=0.5)
    r = train(cfg)
    c, task = make_cell(cell), gl.get_task("adding")
    w_rng, data_rng, _ = (np.random.default_rng(s) for s in np.random.SeedSequence(0).spawn(3))
    p = initial_params(cfg, c, task, w_rng)
    b = task.batch(4, 6, data_rng)
    g = gl.gradients(c, p, b.x, b.y, task.loss, task.loss_steps).grads
    clipped = gl.clip_by_global_norm(0.5)(g)
    opt = get_optimiser(optimizer, 0.01, cfg.momentum)
    updates, _ = opt.update(clipped, opt.init(p.as_dict()))
    expected = apply_updates(p.as_dict(), updates)
    for name, value in r.params.as_dict().items():
        np.testing.assert_array_equal(value, expected[name], err_msg=name)
    assert r.tables["training"]["grad_norm"].iloc[0] == pytest.approx(gl.global_norm(g), rel=1e-15)


def test_the_regulariser_enters_the_update_and_is_recorded():
    from gradlab.training.regulariser import omega_and_grads

    base = dict(task="adding", steps=8, hidden=5, batch=4, updates=1, eval_batch=4, lr=0.1)
    plain, reg = train(TrainConfig(**base)), train(TrainConfig(**base, omega=2.0))
    assert "omega_value" in reg.tables["training"] and "omega_value" not in plain.tables["training"]
    from gradlab.cells import make_cell
    from gradlab.training.loop import initial_params

    task = gl.get_task("adding")
    w_rng, data_rng, _ = (np.random.default_rng(s) for s in np.random.SeedSequence(0).spawn(3))
    p = initial_params(TrainConfig(**base), make_cell("rnn"), task, w_rng)
    b = task.batch(4, 8, data_rng)
    g = gl.loss_and_grads(p, b.x, b.y, "tanh", task.loss, task.loss_steps)
    om, og = omega_and_grads(p, g.trace, g.dL_dh)
    assert reg.tables["training"]["omega_value"].iloc[0] == pytest.approx(om, rel=1e-12)
    # the update differs by −η·α ∇Ω (first SGD step: v = −η g)
    diff = reg.params.W_hh - plain.params.W_hh
    np.testing.assert_allclose(diff, -0.1 * 2.0 * og["W_hh"], rtol=1e-9, atol=1e-15)


def test_forget_bias_and_chrono_set_the_keep_gates_bias():
    from gradlab.cells import make_cell
    from gradlab.cells.gated import GATES
    from gradlab.training.loop import initial_params

    task = gl.get_task("adding")
    for cell, keep in (("lstm", "f"), ("gru", "z")):
        p = initial_params(TrainConfig(cell=cell, hidden=6, forget_bias=1.0), make_cell(cell), task,
                           np.random.default_rng(0))
        j = GATES[cell].index(keep)
        assert np.all(p.b_ih[6 * j:6 * (j + 1)] + p.b_hh[6 * j:6 * (j + 1)] == 1.0)
        others = [q for q in range(len(GATES[cell])) if q != j]
        assert all(np.all(p.b_ih[6 * q:6 * (q + 1)] == 0) for q in others)
    p = initial_params(TrainConfig(cell="lstm", hidden=400, steps=50, chrono=True), make_cell("lstm"), task,
                       np.random.default_rng(0))
    b_f, b_i = p.b_ih[400:800], p.b_ih[:400]
    assert np.all(b_f >= 0) and np.all(b_f <= np.log(49)) and np.array_equal(b_i, -b_f)
    # ln U(1, 49): its mean is E[ln u] = (49 ln 49 − 49 − (0 − 1)) / 48
    assert b_f.mean() == pytest.approx((49 * np.log(49) - 48) / 48, abs=0.1)


@pytest.mark.parametrize("options, message", [
    ({"optimizer": "lbfgs"}, "unknown optimizer 'lbfgs'"),
    ({"omega": -1.0}, r"omega .* must be a number ≥ 0, got -1.0"),
    ({"omega": float("nan")}, r"omega .* got nan"),
    ({"cell": "gru", "omega": 1.0}, r"implemented for the vanilla RNN, not for cell 'gru'"),
    ({"cell": "lstm", "forget_bias": float("inf")}, r"forget_bias must be a finite number, got inf"),
    ({"forget_bias": 1.0}, r"forget_bias applies to gated cells"),
    ({"chrono": True}, r"chrono initialisation applies to gated cells"),
    ({"cell": "lstm", "chrono": True, "forget_bias": 1.0}, "not both"),
    ({"lr": float("nan")}, r"lr must be a positive number, got nan"),
    ({"optimizer": "adam", "momentum": 0.5}, "takes no momentum"),
    ({"cell": "lstm", "activation": "relu"}, "fixed sigmoid/tanh gates"),
])
def test_bad_training_options_are_one_line_errors(options, message):
    with pytest.raises(GradlabError, match=message):
        TrainConfig(**options)


def test_train_on_the_command_line_takes_the_remedies_and_refuses_bad_ones(tmp_path, capsys):
    from gradlab.cli import main

    with pytest.raises(SystemExit) as e:
        main(["train", "--cell", "gru", "--forget-bias", "1", "--optimizer", "rmsprop", "--steps", "6", "--hidden",
              "4", "--updates", "3", "--eval-batch", "8", "--out", str(tmp_path / "t")])
    assert e.value.code == 0
    assert "gru on adding, T=6" in capsys.readouterr().out
    runs = pd.read_csv(tmp_path / "t" / "runs.csv")
    assert runs[["cell", "optimizer", "forget_bias", "momentum"]].iloc[0].tolist() == ["gru", "rmsprop", 1.0, 0.0]
    with pytest.raises(SystemExit) as e:
        main(["train", "--cell", "gru", "--omega", "1", "--out", str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("Error: omega") and len(err.splitlines()) == 1
    assert not (tmp_path / "bad").exists()
