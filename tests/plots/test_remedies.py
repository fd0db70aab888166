"""The remedies figures (gradlab.plots.remedies): Wilson intervals, success rates, the three figures."""
from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest, norm

from gradlab.errors import GradlabError
from gradlab.experiments.sweep import parse_spec, run_sweep
from gradlab.io.schema import read_table
from gradlab.plots import remedies as rem
from gradlab.plots.figures import FIGURES, draw_figure, load_figure_tables
from gradlab.plots.style import figure_style

matplotlib.use("Agg")

# Two remedies that solve temporal order at T = 10 within 100 updates (and mostly not the adding problem):
# every figure has solved and unsolved points, and a Jacobian curve at the update a run solved.
TINY = """
kind = "train"
[[grid]]
label = ["IRNN"]
activation = ["relu"]
init = ["identity"]
clipping = ["norm"]
lr = [0.01]
steps = [10, 20]
seed = [0, 1]
task = ["temporal_order", "adding"]
[[grid]]
label = ["GRU + Adam"]
cell = ["gru"]
optimizer = ["adam"]
lr = [0.02]
steps = [10, 20]
seed = [0, 1]
task = ["temporal_order", "adding"]
[fixed]
hidden = 8
batch = 16
updates = 100
eval_every = 10
eval_batch = 32
jacobian_every = 10
jacobian_batch = 2
stop_when_solved = true
"""


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("remedies") / "sweep"
    run_sweep(parse_spec(TINY, "tiny-remedies.toml"), out)
    return out


# ------------------------------------------------------------------ the Wilson interval

@pytest.mark.parametrize("n", [1, 2, 5, 13, 40])
def test_wilson_interval_is_scipys_at_every_k(n):
    z = norm.ppf(0.975)
    for k in range(n + 1):
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        lo, hi = rem.wilson_interval(k, n, z)
        assert lo == pytest.approx(ci.low, abs=1e-12) and hi == pytest.approx(ci.high, abs=1e-12), (k, n)


def test_wilson_interval_known_values_and_shape():
    # 0 of 5 does not mean "never": the 95 % interval reaches 43 %; 5 of 5 is the mirror image.
    assert rem.wilson_interval(0, 5) == (0.0, pytest.approx(0.4345, abs=1e-4))
    lo, hi = rem.wilson_interval(5, 5)
    assert lo == pytest.approx(1 - 0.4345, abs=1e-4) and hi == 1.0
    assert rem.wilson_interval(3, 10) == (pytest.approx(0.1078, abs=1e-4), pytest.approx(0.6032, abs=1e-4))
    lo, hi = rem.wilson_interval(np.array([0, 2, 4]), np.array([4, 4, 4]))
    assert lo.shape == hi.shape == (3,)
    assert lo[1] == pytest.approx(1 - hi[1]) and lo[1] < 0.5 < hi[1]            # symmetric about 1/2 at k = n/2
    wide, narrow = rem.wilson_interval(1, 2), rem.wilson_interval(10, 20)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]                            # more seeds, a tighter interval
    assert rem.wilson_interval(1, 4, z=1.0)[1] < rem.wilson_interval(1, 4, z=2.0)[1]


@pytest.mark.parametrize("k,n,z,message", [
    (6, 5, 1.96, "0 ≤ k ≤ n"), (-1, 5, 1.96, "0 ≤ k ≤ n"), (0, 0, 1.96, "n ≥ 1"),
    (1.5, 5, 1.96, "k must be whole numbers"), (1, 5, 0.0, "z must be a positive number"),
])
def test_wilson_interval_refuses_what_is_not_a_count(k, n, z, message):
    with pytest.raises(GradlabError, match=message):
        rem.wilson_interval(k, n, z)


# ------------------------------------------------------------------ computing

def runs_table() -> pd.DataFrame:
    rows = []
    for label in ("zeta", "alpha"):                 # not alphabetical: the sweep's order is kept
        for T in (50, 25):
            for seed in range(4):
                solved = label == "alpha" and seed < (3 if T == 25 else 1)
                rows.append({"run_id": f"r{len(rows):04d}", "label": label, "steps": T, "seed": seed,
                             "task": "adding", "updates": 400, "solved": solved,
                             "updates_to_solve": 100.0 * (seed + 1) ** 2 if solved else np.nan})
    return pd.DataFrame(rows)


def test_success_rates_count_the_solved_runs_per_remedy_and_length():
    rates = rem.success_rates(runs_table())
    assert list(rates["label"]) == ["zeta", "zeta", "alpha", "alpha"]
    assert list(rates["steps"]) == [25, 50, 25, 50]
    alpha = rates[rates["label"] == "alpha"].set_index("steps")
    assert alpha.loc[25, "n_solved"] == 3 and alpha.loc[50, "n_solved"] == 1
    assert (rates["n_runs"] == 4).all() and (rates["budget"] == 400).all()
    assert alpha.loc[25, "rate"] == 0.75 and alpha.loc[25, "updates_median"] == 400    # of 100, 400, 900
    assert alpha.loc[25, "updates_min"] == 100 and alpha.loc[25, "updates_max"] == 900
    assert (alpha.loc[25, "lo"], alpha.loc[25, "hi"]) == pytest.approx(rem.wilson_interval(3, 4))
    zeta = rates[rates["label"] == "zeta"]
    assert (zeta["n_solved"] == 0).all() and zeta["updates_median"].isna().all() and (zeta["lo"] == 0).all()


def test_solved_flags_read_every_way_a_csv_writes_them():
    got = rem.solved_flags(pd.Series(["True", "False", "1", "0", " true"]))
    assert got.tolist() == [True, False, True, False, True]
    with pytest.raises(GradlabError, match="'maybe' where True or False belongs"):
        rem.solved_flags(pd.Series(["True", "maybe"]))


def test_runs_without_a_label_are_refused_with_what_to_write():
    with pytest.raises(GradlabError, match=r'label = \["<remedy>"\]'):
        rem.success_rates(runs_table().assign(label=["a", ""] * 8))
    with pytest.raises(GradlabError, match="lacks column 'label'"):
        rem.success_rates(runs_table().drop(columns="label"))


def test_jacobian_phases_take_update_0_and_each_runs_last_curve():
    lags = [1, 2]
    rows = [{"run_id": run, "step": step, "lag": lag, "mean_log10_norm": -lag * (1 + step / 100),
             "label": "x", "steps": T, "task": "adding"}
            for run, T, steps in (("a", 20, (0, 50, 90)), ("b", 20, (0,)), ("c", 10, (0, 90)))
            for step in steps for lag in lags]
    phases = rem.jacobian_phases(pd.DataFrame(rows))
    assert set(phases["steps"]) == {20}                               # the longest T only
    before, after = phases[phases["phase"] == "before"], phases[phases["phase"] == "after"]
    assert sorted(before["run_id"].unique()) == ["a", "b"] and set(before["step"]) == {0}
    assert list(after["run_id"].unique()) == ["a"] and set(after["step"]) == {90}   # b never got past update 0
    assert set(rem.jacobian_phases(pd.DataFrame(rows), steps=10)["run_id"]) == {"c"}
    with pytest.raises(GradlabError, match="no runs of T = 30"):
        rem.jacobian_phases(pd.DataFrame(rows), steps=30)


# ------------------------------------------------------------------ the figures

def test_the_figures_are_registered_for_a_training_sweep_named_remedies():
    for name in ("remedies", "remedies-updates", "remedies-jacobians"):
        assert FIGURES[name].results == "remedies"
        assert FIGURES[name].folders == ("sweep:train",)


def test_success_figure_draws_each_remedys_rate_with_its_interval(sweep):
    tables = load_figure_tables("remedies", sweep)
    rates = rem.success_rates(read_table(sweep / "runs.csv", "train_runs"))
    with figure_style():
        fig = FIGURES["remedies"].build(tables)
        axes = fig.axes
        assert [ax.get_title() for ax in axes] == ["temporal order", "adding problem"]
        for ax, task in zip(axes, ["temporal_order", "adding"]):
            r = rates[rates["task"] == task]
            for container in ax.containers:       # one errorbar per remedy: its rates and interval ends
                label = container.get_label()
                want = r[r["label"] == label].sort_values("steps")
                assert np.allclose(container.lines[0].get_ydata(), want["rate"])
                segments = container.lines[2][0].get_segments()
                assert np.allclose([s[:, 1].min() for s in segments], want["lo"])
                assert np.allclose([s[:, 1].max() for s in segments], want["hi"])
            assert sorted(c.get_label() for c in ax.containers) == ["GRU + Adam", "IRNN"]
        solved = rates.loc[rates["task"] == "temporal_order", "n_solved"]
        assert solved.sum() > 0                     # the fixture is meant to solve something
        matplotlib.pyplot.close(fig)


def test_updates_figure_draws_the_median_of_the_solved_runs_and_their_count(sweep):
    runs = read_table(sweep / "runs.csv", "train_runs")
    rates = rem.success_rates(runs)
    with figure_style():
        fig = FIGURES["remedies-updates"].build(load_figure_tables("remedies-updates", sweep))
        ax = fig.axes[0]                            # temporal order
        r = rates[(rates["task"] == "temporal_order") & (rates["n_solved"] > 0)]
        medians = {line.get_label(): line.get_ydata() for line in ax.get_lines()
                   if not line.get_label().startswith("_")}
        for label, want in r.groupby("label")["updates_median"]:
            assert np.allclose(medians[label], want.to_numpy())
        texts = {t.get_text() for t in ax.texts}
        assert {f"{k}/{n}" for k, n in zip(r["n_solved"], r["n_runs"])} <= texts
        assert "budget: 100 updates" in texts
        matplotlib.pyplot.close(fig)


def test_updates_figure_refuses_a_sweep_where_nothing_solved(sweep):
    tables = load_figure_tables("remedies-updates", sweep)
    tables["train_runs"] = tables["train_runs"].assign(solved=False)
    with figure_style(), pytest.raises(GradlabError, match="no run of the sweep solved"):
        FIGURES["remedies-updates"].build(tables)


def test_jacobian_figure_has_a_panel_per_remedy_with_before_and_after(sweep):
    with figure_style():
        fig = FIGURES["remedies-jacobians"].build(load_figure_tables("remedies-jacobians", sweep))
        assert [ax.get_title() for ax in fig.axes] == ["IRNN", "GRU + Adam"]
        irnn = fig.axes[0]
        # IRNN starts at W_hh = I with ReLU: every ‖∂s_T/∂s_k‖ of the untrained network is 1 (log10 = 0)
        curves = {line.get_gid(): line.get_ydata() for line in irnn.get_lines() if line.get_gid()}
        assert set(curves) == {f"{task}:{phase}" for task in ("temporal_order", "adding")
                               for phase in ("before", "after")}
        assert np.allclose(curves["adding:before"], 0.0, atol=1e-9)
        assert np.allclose(curves["temporal_order:before"], 0.0, atol=1e-9)
        assert not np.allclose(curves["temporal_order:after"], 0.0, atol=1e-3)     # training changed it
        legend = fig.legends[0].get_title().get_text()
        assert "T = 20" in legend.replace("$", "") and "8 before" in legend
        matplotlib.pyplot.close(fig)


def test_the_three_figures_are_drawn_into_files(sweep, tmp_path):
    for name in ("remedies", "remedies-updates", "remedies-jacobians"):
        (path,) = draw_figure(name, sweep, tmp_path, formats="png")
        assert path.name == f"{name}.png" and path.stat().st_size > 10_000


def test_a_figure_of_remedies_names_the_folder_it_reads_when_given_another(tmp_path):
    out = tmp_path / "run-sweep"
    run_sweep(parse_spec('kind = "run"\n[grid]\nradius = [1.0]\n[fixed]\nhidden = 3\nsteps = 4\nbatch = 1\n'), out)
    with pytest.raises(GradlabError, match='reads a sweep folder of kind = "train"'):
        draw_figure("remedies", out, tmp_path / "figs", formats="png")
