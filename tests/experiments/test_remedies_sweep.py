"""experiments/remedies.toml: the shipped sweep of remedies, its quick variant, and `gradlab inspect` of it."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from gradlab.experiments import budget
from gradlab.experiments.sweep import load_spec, parse_spec, run_sweep
from gradlab.io.inspect import inspect_path, solved_counts, summary_groups

SPEC = Path(__file__).resolve().parents[2] / "experiments" / "remedies.toml"
PER_RUN = {"steps", "seed", "task"}     # what every remedy runs over; everything else is the remedy's setting
REMEDIES = ["baseline", "norm clipping", "clipping + Ω", "orthogonal init", "IRNN", "Adam + clipping", "LSTM",
            "LSTM chrono", "GRU"]


def full_spec():
    with budget.limits(yes=True, jobs=2):   # the full sweep runs about an hour: beyond the default limit
        return load_spec(SPEC)


def test_the_full_sweep_is_every_remedy_times_T_times_seeds_times_both_tasks():
    spec = full_spec()
    assert spec.kind == "train" and isinstance(spec.grid, list)
    assert [g["label"] for g in spec.grid] == [[name] for name in REMEDIES]
    for table in spec.grid:
        assert table["steps"] == [25, 50, 100, 200] and table["seed"] == [0, 1, 2, 3, 4]
        assert table["task"] == ["adding", "temporal_order"]
        assert all(len(v) == 1 for k, v in table.items() if k not in PER_RUN), table   # one remedy per table
    assert spec.n_runs == len(REMEDIES) * 4 * 5 * 2
    f = spec.fixed
    assert f["hidden"] == 50 and f["batch"] == 20 and f["stop_when_solved"] is True     # Pascanu et al.'s sizes
    assert f["jacobian_every"] == f["updates"] and f["threshold"] == 1.0
    points = {p["label"]: p for p in spec.points()}
    assert points["baseline"].get("clipping", "none") == "none" and "cell" not in points["baseline"]
    assert points["clipping + Ω"]["omega"] == 2.0 and points["clipping + Ω"]["clipping"] == "norm"
    assert (points["IRNN"]["activation"], points["IRNN"]["init"]) == ("relu", "identity")
    assert points["LSTM"]["forget_bias"] == 1.0 and points["LSTM chrono"]["chrono"] is True
    assert points["GRU"]["cell"] == "gru" and points["Adam + clipping"]["optimizer"] == "adam"


def test_the_quick_variant_runs_the_same_remedies_with_the_same_settings():
    full, quick = full_spec(), load_spec(SPEC, quick=True)
    assert quick.n_runs < full.n_runs / 4
    assert len(quick.grid) == len(full.grid)
    for q, f in zip(quick.grid, full.grid):      # the [[quick.grid]] copy of each remedy has not drifted
        assert {k: v for k, v in q.items() if k not in PER_RUN} == {k: v for k, v in f.items() if k not in PER_RUN}
        assert len(q["steps"]) >= 2 and set(q["task"]) == set(f["task"])
    assert quick.fixed["jacobian_every"] == quick.fixed["updates"] and quick.fixed["stop_when_solved"] is True


@pytest.fixture(scope="module")
def quick_sweep(tmp_path_factory):
    """The quick variant at toy sizes: every remedy once per task at T = 10 and 11."""
    quick = load_spec(SPEC, quick=True)
    tiny = replace(quick, grid=[{**g, "steps": [10, 11], "seed": [0]} for g in quick.grid],
                   fixed={**quick.fixed, "hidden": 4, "batch": 4, "updates": 6, "eval_every": 3, "eval_batch": 8,
                          "jacobian_every": 6})
    out = tmp_path_factory.mktemp("remedies") / "quick"
    run_sweep(tiny, out, jobs=1)
    return out


def test_the_quick_variant_runs_every_remedy(quick_sweep):
    runs = pd.read_csv(quick_sweep / "runs.csv")
    assert list(dict.fromkeys(runs["label"])) == REMEDIES
    assert len(runs) == len(REMEDIES) * 4 and set(runs["task"]) == {"adding", "temporal_order"}
    assert {"solved", "updates_to_solve", "final_error_rate", "updates_done"} <= set(runs.columns)
    jac = pd.read_csv(quick_sweep / "jacobians.csv")
    assert set(jac["step"]) == {0, 6} and set(jac["label"]) == set(REMEDIES)


def test_inspect_says_how_many_runs_each_remedy_solved_per_T(quick_sweep):
    text = inspect_path(quick_sweep)
    runs = pd.read_csv(quick_sweep / "runs.csv")
    block = text.split("runs solved of all (runs.csv `solved`) per label × steps:")[1].split("files:")[0]
    lines = block.strip().splitlines()
    assert lines[0] == "task = adding" and "task = temporal_order" in lines
    for task in ("adding", "temporal_order"):
        start = lines.index(f"task = {task}")
        assert lines[start + 1].split() == ["steps", "10", "11"]
        rows = [line for line in lines[start + 3:start + 3 + len(REMEDIES)]]
        assert [row.rsplit(maxsplit=2)[0].strip() for row in rows] == REMEDIES      # in the sweep file's order
        for label, row in zip(REMEDIES, rows):
            mine = runs[(runs["label"] == label) & (runs["task"] == task)].set_index("steps")["solved"]
            assert row.split()[-2:] == [f"{int(mine[10])}/1", f"{int(mine[11])}/1"]
    # the key figures are grouped by what the label does not say (T, task), not by every setting of every table
    key = next(line for line in text.splitlines() if line.startswith("final_metric, "))
    assert key == "final_metric, final_loss, n_clipped, n_skipped per label × steps × task:"
    assert "Empty DataFrame" not in text


def test_solved_counts_in_the_sweeps_order_with_a_column_per_T():
    runs = pd.DataFrame({"label": ["b", "b", "b", "b", "a", "a", "a", "a"], "steps": [50, 50, 25, 25] * 2,
                         "seed": [0, 1] * 4, "solved": [True, False, True, True, False, False, True, False]})
    lines = "\n".join(solved_counts(runs, ["label", "steps"])).splitlines()
    assert lines[1] == "runs solved of all (runs.csv `solved`) per label × steps:"
    table = lines[2:]
    assert table[0].split() == ["steps", "25", "50"]
    assert table[2].split() == ["b", "2/2", "1/2"] and table[3].split() == ["a", "1/2", "0/2"]
    assert solved_counts(runs.drop(columns="solved"), ["label", "steps"]) == []


def test_summary_groups_keep_the_label_and_what_varies_within_one():
    runs = pd.DataFrame({"label": ["x", "x", "y", "y"], "lr": [0.1, 0.1, 0.2, 0.2], "cell": ["rnn", "rnn", None, None],
                         "steps": [10, 20, 10, 20], "seed": [0, 0, 0, 0]})
    assert summary_groups(runs, ["label", "lr", "cell", "steps", "seed"]) == ["label", "steps"]
    assert summary_groups(runs, ["lr", "steps"]) == ["lr", "steps"]


def test_inspect_of_a_sweep_without_solved_runs_has_no_solved_table(tmp_path):
    out = tmp_path / "run"
    run_sweep(parse_spec('kind = "run"\n[grid]\nradius = [0.5, 1.0]\n[fixed]\nhidden = 3\nsteps = 4\nbatch = 1\n'),
              out)
    assert "runs solved of all" not in inspect_path(out)
