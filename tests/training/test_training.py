"""The training loop: it learns, it clips as told, and it never applies a non-finite update."""
import numpy as np
import pytest

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
