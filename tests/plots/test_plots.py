"""Figures from saved CSVs: every figure and plot function draws, bad CSVs fail clearly, output is reproducible.

The CSV fixtures are real gradlab output at tiny sizes (sweeps through
``gradlab.experiments.sweep.run_sweep``, single networks through ``gradlab.write_run``),
made once per session; the reductions behind the figures are checked against
independent computations, and the random-matrix theory curves against
sampled matrices.
"""
from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gradlab as gl
from gradlab.errors import GradlabError
from gradlab.plots import FIGURES, draw_figure, figure_style
from gradlab.plots import data as pdata
from gradlab.plots import norms as pnorms
from gradlab.plots import spectrum as pspectrum
from gradlab.plots import training as ptraining
from gradlab.plots import truncation as ptruncation
from gradlab.plots.style import log10_axis, parse_formats, save_figure
from gradlab.experiments.reproduce import run_run_set
from gradlab.io.schema import COLUMNS
from gradlab.experiments.sweep import parse_spec, run_sweep
from tiny_results import COVERED, TINY_EXPERIMENTS, TINY_RUN_SETS


def make_tiny_results(root: Path) -> dict[str, Path]:
    """Results folders for every figure, at toy sizes."""
    folders = {}
    for name, text in TINY_EXPERIMENTS.items():
        folders[name] = run_sweep(parse_spec(text, f"{name}.toml"), root / name).out
    for name, configs in TINY_RUN_SETS.items():
        folders[name] = run_run_set(configs, root / name)
    return folders


@pytest.fixture(scope="session")
def results(tmp_path_factory) -> dict[str, Path]:
    return make_tiny_results(tmp_path_factory.mktemp("results"))


def png_size_and_dpi(path: Path) -> tuple[int, int, float]:
    """Width, height (pixels) and dots per inch from a PNG's IHDR and pHYs chunks."""
    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", raw[16:24])
    i = raw.index(b"pHYs")
    per_metre = struct.unpack(">I", raw[i + 4:i + 8])[0]
    return width, height, per_metre * 0.0254


# ------------------------------------------------------------------ every figure draws

def test_the_fixtures_cover_the_core_figure_set():
    assert {"norms-vs-lag", "heatmap", "spectrum", "growth-rate", "clipping", "truncation",
            "transient-growth"} <= set(COVERED)


@pytest.mark.parametrize("name", COVERED)
def test_every_figure_draws_pdf_and_png_from_csv_and_the_same_csvs_give_the_same_png(name, results, tmp_path):
    source = results[FIGURES[name].results]
    paths = draw_figure(name, source, tmp_path / "a", "pdf,png")
    assert [p.name for p in paths] == [f"{name}.pdf", f"{name}.png"]
    pdf, png = paths
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5000
    width, height, dpi = png_size_and_dpi(png)
    assert dpi >= 200
    assert width >= 3.0 * 200 and height >= 1.5 * 200  # at least a column wide at 200 dpi
    assert not list((tmp_path / "a").glob(".*"))  # no temporary files left behind
    # Reproducible from the CSVs alone: a copy of the folder elsewhere (what a colleague is sent) gives the same bytes.
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    again = draw_figure(name, copy, tmp_path / "b", "png")[0]
    assert again.read_bytes() == png.read_bytes()


def test_pdf_bytes_do_not_depend_on_the_time(results, tmp_path):
    a = draw_figure("truncation", results["truncation"], tmp_path / "a", "pdf")[0].read_bytes()
    b = draw_figure("truncation", results["truncation"], tmp_path / "b", "pdf")[0].read_bytes()
    assert a == b


# ------------------------------------------------------------------ bad CSVs fail with the column's name

def missing_column_cases():
    for name in COVERED:
        spec = FIGURES[name]
        for kind in spec.tables:
            for column in COLUMNS[kind]:
                yield name, kind, column


@pytest.mark.parametrize("name,kind,column", list(missing_column_cases()))
def test_a_csv_lacking_a_contract_column_fails_naming_it(name, kind, column, results, tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(results[FIGURES[name].results], folder)
    for csv in folder.rglob(pdata.TABLE_FILES[kind]):
        table = pd.read_csv(csv)
        table.drop(columns=column).to_csv(csv, index=False)
    with pytest.raises(GradlabError, match=f"lacks column '{column}'"):
        draw_figure(name, folder, tmp_path / "out", "png")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name,kind,column", [
    ("norms-vs-lag", "sweep_norms", "activation"),
    ("norms-vs-lag", "sweep_norms", "radius"),
    ("growth-rate", "runs", "growth_rate"),
    ("growth-rate", "runs", "sigma_max"),
    ("clipping", "training", "clipping"),
    ("clipping", "training", "activation"),
    ("truncation", "truncation", "radius"),
])
def test_a_csv_lacking_a_parameter_column_the_figure_needs_fails_naming_it(name, kind, column, results, tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(results[FIGURES[name].results], folder)
    csv = folder / pdata.TABLE_FILES[kind]
    pd.read_csv(csv).drop(columns=column).to_csv(csv, index=False)
    with pytest.raises(GradlabError, match=f"lacks column '{column}'"):
        draw_figure(name, folder, tmp_path / "out", "png")


def a_table_file(folder: Path, kind: str) -> Path:
    """The CSV figures read for ``kind``: the sweep's own (not a ``parts/`` copy), else the last run folder's."""
    name = pdata.TABLE_FILES[kind]
    return folder / name if (folder / name).is_file() else sorted(folder.glob(f"*/{name}"))[-1]


def number_column_cases():
    for name in COVERED:
        for kind in FIGURES[name].tables:
            for column in COLUMNS[kind]:
                if column not in pdata.TEXT_COLUMNS | pdata.FLAG_COLUMNS:
                    yield name, kind, column


def with_text_in(results, tmp_path, name, kind, column, row, text):
    """A copy of the figure's results folder with ``text`` in one cell of a table: that table's file."""
    folder = tmp_path / "broken"
    shutil.copytree(results[FIGURES[name].results], folder)
    csv = a_table_file(folder, kind)
    table = pd.read_csv(csv)
    table[column] = table[column].astype(object)
    table.loc[row, column] = text
    table.to_csv(csv, index=False)
    return folder, csv


@pytest.mark.parametrize("name,kind,column", list(number_column_cases()))
def test_text_in_a_number_column_fails_naming_file_column_and_value(name, kind, column, results, tmp_path):
    folder, csv = with_text_in(results, tmp_path, name, kind, column, 1, "n/a?")
    with pytest.raises(GradlabError) as error:
        draw_figure(name, folder, tmp_path / "out", "png")
    message = str(error.value)
    assert f"{str(csv)!r} line 3: column {column!r} holds 'n/a?' where a number belongs" in message
    assert "\n" not in message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name,kind,column", [("norms-vs-lag", "sweep_norms", "radius"),
                                              ("growth-rate", "runs", "growth_rate"),
                                              ("clipping", "training", "skipped"),
                                              ("transient-growth", "norms", "log10_norm")])
def test_text_in_a_parameter_or_flag_column_fails_naming_it(name, kind, column, results, tmp_path):
    folder, _ = with_text_in(results, tmp_path, name, kind, column, 0, "oops")
    with pytest.raises(GradlabError, match=f"line 2: column '{column}' holds 'oops' where"):
        draw_figure(name, folder, tmp_path / "out", "png")


@pytest.mark.parametrize("name,kind", [(name, kind) for name in COVERED for kind in FIGURES[name].tables])
def test_a_csv_with_only_its_header_fails_naming_it(name, kind, results, tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(results[FIGURES[name].results], folder)
    csv = a_table_file(folder, kind)
    csv.write_text(csv.read_text().splitlines()[0] + "\n")
    with pytest.raises(GradlabError, match=f"{str(csv)!r} has no rows"):
        draw_figure(name, folder, tmp_path / "out", "png")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("damage", ["text", "empty"])
def test_cli_plot_bad_values_are_one_line_exit_2_and_write_nothing(damage, results, tmp_path, capsys):
    from gradlab.cli import main

    folder = tmp_path / "broken"
    shutil.copytree(results["vanishing"], folder)
    csv = folder / "norms.csv"
    if damage == "text":
        table = pd.read_csv(csv)
        table["mean_log10_norm"] = table["mean_log10_norm"].astype(object)
        table.loc[4, "mean_log10_norm"] = "-1.2e"
        table.to_csv(csv, index=False)
        expected = "line 6: column 'mean_log10_norm' holds '-1.2e' where a number belongs"
    else:
        csv.write_text(csv.read_text().splitlines()[0] + "\n")
        expected = "has no rows"
    with pytest.raises(SystemExit) as exit_:
        main(["plot", "norms-vs-lag", str(folder), "--out", str(tmp_path / "figs")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert str(csv) in err and expected in err
    assert not (tmp_path / "figs").exists()


def test_cli_plot_missing_column_is_one_line_exit_2_and_writes_nothing(results, tmp_path, capsys):
    from gradlab.cli import main

    folder = tmp_path / "broken"
    shutil.copytree(results["vanishing"], folder)
    csv = folder / "norms.csv"
    pd.read_csv(csv).drop(columns="log10_bound").to_csv(csv, index=False)
    with pytest.raises(SystemExit) as exit_:
        main(["plot", "norms-vs-lag", str(folder), "--out", str(tmp_path / "figs")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.count("\n") == 1 and "log10_bound" in err and "Traceback" not in err
    assert not (tmp_path / "figs").exists()


def test_cli_plot_writes_the_requested_formats(results, tmp_path, capsys):
    from gradlab.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["plot", "heatmap", str(results["heatmap"]), "--out", str(tmp_path), "--format", "png"])
    assert exit_.value.code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["heatmap.png"]


@pytest.mark.parametrize("argv,message", [
    (["plot", "no-such-figure", "."], "unknown figure 'no-such-figure'"),
    (["plot", "heatmap", "does/not/exist"], "no such results folder"),
    (["plot", "heatmap", ".", "--format", "jpg"], "unknown figure format 'jpg'"),
    (["plot"], "give FIGURE and RESULTS_DIR"),
])
def test_cli_plot_bad_input_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    from gradlab.cli import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_heatmap_from_a_sweep_folder_says_which_kind_of_folder_it_reads(results, tmp_path):
    with pytest.raises(GradlabError) as error:
        draw_figure("heatmap", results["vanishing"], tmp_path, "png")
    assert str(error.value) == (f"figure 'heatmap' reads `gradlab run` folders (a folder of them, or one); "
                                f"{str(results['vanishing'])!r} is a sweep folder of kind = \"run\"")


@pytest.fixture(scope="session")
def run_folder(results) -> Path:
    """One `gradlab run` folder (a network of the heatmap set)."""
    return results["heatmap"] / "r2"


@pytest.mark.parametrize("name,reads,folder,what", [
    ("norms-vs-lag", 'a sweep folder of kind = "run"', "run", "a single `gradlab run` folder (one network)"),
    ("growth-rate", 'a sweep folder of kind = "run"', "run", "a single `gradlab run` folder (one network)"),
    ("cells", 'a sweep folder of kind = "run"', "heatmap", "a folder of `gradlab run` folders"),
    ("growth-rate", 'a sweep folder of kind = "run"', "clipping", 'a sweep folder of kind = "train"'),
    ("clipping", 'a sweep folder of kind = "train"', "vanishing", 'a sweep folder of kind = "run"'),
    ("truncation", 'a sweep folder of kind = "truncation"', "clipping", 'a sweep folder of kind = "train"'),
    ("transient-growth", "`gradlab run` folders", "truncation", 'a sweep folder of kind = "truncation"'),
    ("lyapunov", "a `gradlab lyapunov` folder", "vanishing", 'a sweep folder of kind = "run"'),
    ("heatmap", "`gradlab run` folders", "root", "a folder of results folders ("),
])
def test_the_wrong_kind_of_folder_is_named_with_the_kind_the_figure_reads(name, reads, folder, what, results,
                                                                           run_folder, tmp_path):
    """Not "lacks column 'run_id'" for a run folder given to a sweep's figure, and no traceback for a folder of
    sweep folders (e.g. results/full)."""
    source = {"run": run_folder, "root": results["vanishing"].parent}.get(folder) or results[folder]
    with pytest.raises(GradlabError) as error:
        draw_figure(name, source, tmp_path / "out", "png")
    message = str(error.value)
    assert message.startswith(f"figure {name!r} reads {reads}")
    assert f"; {str(source)!r} is {what}" in message
    assert "lacks column" not in message and "\n" not in message
    assert not (tmp_path / "out").exists()


def test_cli_plot_of_a_sweep_figure_on_a_run_folder_says_it_needs_a_sweep_folder(run_folder, tmp_path, capsys):
    from gradlab.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["plot", "norms-vs-lag", str(run_folder), "--out", str(tmp_path / "figs")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "figure 'norms-vs-lag' reads a sweep folder" in err and "single `gradlab run` folder" in err
    assert not (tmp_path / "figs").exists()


def test_the_spectrum_figure_reads_run_folders_and_run_sweeps(results, tmp_path):
    assert FIGURES["spectrum"].folders == ("runs", "sweep:run")
    for source in (results["transient"], results["vanishing"]):
        assert draw_figure("spectrum", source, tmp_path / source.name, "png")


def test_a_folder_without_manifests_keeps_the_missing_column_message(results, tmp_path):
    folder = tmp_path / "hand-made"
    folder.mkdir()
    shutil.copy(results["heatmap"] / "r2" / "norms.csv", folder / "norms.csv")
    with pytest.raises(GradlabError, match="figure 'norms-vs-lag': .*lacks column 'run_id'"):
        draw_figure("norms-vs-lag", folder, tmp_path / "out", "png")


# ------------------------------------------------------------------ reading results folders

def test_run_folders_stack_like_a_sweep(results):
    norms = pdata.load_table(results["transient"], "norms")
    assert list(norms.columns[:1]) == ["run_id"]
    assert set(norms["run_id"]) == {"gaussian", "orthogonal"}
    assert set(norms["init"]) == {"gaussian", "orthogonal"}  # parameters from each manifest
    one = pdata.load_table(results["transient"] / "gaussian", "norms")
    assert set(one["run_id"]) == {"gaussian"}
    pd.testing.assert_frame_equal(one.reset_index(drop=True),
                                  norms[norms["run_id"] == "gaussian"].reset_index(drop=True))


def test_hidden_folders_are_not_read_as_runs(results, tmp_path):
    """A SIGKILLed `gradlab run` leaves its half-written `.NAME.*.tmp` folder beside the finished ones."""
    import matplotlib.pyplot as plt

    from gradlab.plots.figures import load_figure_tables, norm_heatmap

    folder = tmp_path / "heatmap"
    shutil.copytree(results["heatmap"], folder)
    half = folder / ".r3.k2x9q1.tmp"
    shutil.copytree(folder / "r2", half)
    norms = pd.read_csv(half / "norms.csv")
    norms.iloc[: len(norms) // 2].to_csv(half / "norms.csv", index=False)
    (folder / ".cache").mkdir()  # any other hidden folder holding a CSV of the name
    shutil.copy(folder / "r2" / "norms.csv", folder / ".cache" / "norms.csv")
    tables = load_figure_tables("heatmap", folder)
    for kind in ("norms", "spectrum"):
        assert set(tables[kind]["run_id"]) == {"r0.8", "r2"}, kind
    with figure_style():
        fig = norm_heatmap(tables)
        assert sum(1 for ax in fig.axes if ax.images) == 2  # one panel per finished network
        plt.close(fig)


def test_missing_table_names_the_file(tmp_path):
    with pytest.raises(GradlabError, match="no training.csv in"):
        pdata.load_table(tmp_path, "training")


# ------------------------------------------------------------------ the reductions are what the CSVs say

def test_lag_curves_are_seed_means_of_the_csv(results):
    norms = pd.read_csv(results["vanishing"] / "norms.csv")
    curves = pdata.lag_curves(norms)
    for (act, radius, lag), row in curves.set_index(["activation", "radius", "lag"]).iterrows():
        per_seed = [norms.loc[(norms.activation == act) & (norms.radius == radius) & (norms.lag == lag)
                              & (norms.seed == s), "mean_log10_norm"].mean() for s in (0, 1)]
        per_seed = [v for v in per_seed if np.isfinite(v)]  # exactly-zero products (−inf) are left out
        assert row["n_runs"] == len(per_seed)
        assert row["log10_norm"] == pytest.approx(np.mean(per_seed), rel=1e-12, abs=1e-12)
        assert row["lo"] == pytest.approx(min(per_seed)) and row["hi"] == pytest.approx(max(per_seed))


def test_the_drawn_curve_is_the_csv_data(results):
    norms = pd.read_csv(results["vanishing"] / "norms.csv")
    curves = pdata.lag_curves(norms)
    one = curves[(curves.activation == "relu")]
    with figure_style():
        ax = pnorms.plot_norms_vs_lag(one)
    measured = [line for line in ax.lines if line.get_linestyle() == "-" and len(line.get_xdata()) > 2]
    assert len(measured) == 2  # one per radius
    expected = one[one.radius == 2.0].sort_values("lag")["log10_norm"].to_numpy()
    assert any(np.array_equal(line.get_ydata(), expected) for line in measured)


def test_pair_grid_puts_each_pair_at_t_k():
    table = pd.DataFrame({"seq": [0, 0, 0, 1, 1, 1], "t": [1, 2, 2, 1, 2, 2], "k": [0, 0, 1, 0, 0, 1],
                          "log10_norm": [1.0, 2.0, 3.0, 3.0, 4.0, 5.0]})
    t, k, grid = pdata.pair_grid(table)
    assert t.tolist() == [1, 2] and k.tolist() == [0, 1]
    np.testing.assert_array_equal(grid[1], [3.0, 4.0])   # t = 2: means over the two sequences
    assert grid[0, 0] == 2.0 and np.isnan(grid[0, 1])     # (t, k) = (1, 1) was never measured


def test_rates_recover_an_exact_exponential():
    lag = np.arange(1, 30)
    table = pd.DataFrame({"lag": lag, "log10_norm": -0.3 * lag / np.log(10) + 0.5,
                          "log10_bound": lag * np.log10(1.7), "log10_rate": lag * np.log10(0.9)})
    r = pdata.rates(table)
    assert r["measured"] == pytest.approx(-0.3, rel=1e-10)
    assert r["bound"] == pytest.approx(np.log(1.7), rel=1e-12)
    assert r["asymptotic"] == pytest.approx(np.log(0.9), rel=1e-12)


def test_growth_summary_bound_rate_is_log_sigma_gamma(results):
    runs = pd.read_csv(results["vanishing"] / "runs.csv")
    summary = pdata.growth_summary(runs)
    row = summary[(summary.activation == "tanh") & (summary.radius == 2.0)].iloc[0]
    sel = runs[(runs.activation == "tanh") & (runs.radius == 2.0)]
    assert row["bound_rate"] == pytest.approx(np.mean(np.log(sel.sigma_max * sel.gamma_h)))
    assert row["log_rho"] == pytest.approx(np.log(2.0), rel=1e-9)
    assert row["lo"] <= row["growth_rate"] <= row["hi"]


def test_truncation_curves_drop_exact_zeros_and_use_the_global_error():
    table = pd.DataFrame({"run_id": ["a"] * 4 + ["b"] * 4, "radius": 0.5,
                          "truncate": [1, 1, 9, 9] * 2, "parameter": ["all", "W_hh"] * 4,
                          "rel_error": [1e-2, 5e-2, 0.0, 0.0, 1e-4, 5e-4, 0.0, 0.0]})
    curves = pdata.truncation_curves(table)
    assert curves["truncate"].tolist() == [1]               # K ≥ T: error exactly 0, nothing to draw on a log axis
    assert curves["log10_error"].iloc[0] == pytest.approx(-3.0)  # mean of log10 1e-2 and 1e-4 ("all" rows)


# ------------------------------------------------------------------ theory curves against sampled matrices

def test_quarter_circle_quantiles_match_a_sampled_gaussian_matrix():
    n = 300
    rng = np.random.default_rng(1)
    sv = np.linalg.svd(rng.standard_normal((n, n)) / np.sqrt(n), compute_uv=False)
    q = pdata.quarter_circle_quantiles(n)
    assert np.all(np.diff(q) < 0) and 0 < q[-1] and q[0] < 2
    # bulk within 0.03 (finite-n fluctuations are O(n^-2/3) at the edge, smaller inside)
    np.testing.assert_allclose(sv[5:-5], q[5:-5], atol=0.03)


def test_quarter_circle_quantiles_have_the_law_second_moment():
    # E σ² = 1 for N(0, 1/n) entries (trace of W Wᵀ / n); the quantiles must reproduce it.
    assert np.mean(pdata.quarter_circle_quantiles(2000) ** 2) == pytest.approx(1.0, abs=2e-3)


def test_ginibre_power_norm_matches_sampled_powers():
    n, rng = 400, np.random.default_rng(2)
    G = rng.standard_normal((n, n)) / np.sqrt(n)
    for k in (1, 2, 3):
        measured = np.linalg.norm(np.linalg.matrix_power(G, k), 2)
        assert np.log10(measured) == pytest.approx(pdata.ginibre_power_norm(k), abs=0.03)  # within ~7 %
    assert pdata.ginibre_power_norm(0) == 0.0


def test_theory_singular_values_of_a_normal_init_are_rho():
    np.testing.assert_array_equal(pdata.theory_singular_values("orthogonal", 5, 0.7), np.full(5, 0.7))
    assert pdata.theory_singular_values("made-up", 5, 0.7) is None


# ------------------------------------------------------------------ plot functions on their own

def test_every_plot_function_takes_ax_none_and_returns_axes(results, tmp_path):
    sweep_norms = pd.read_csv(results["vanishing"] / "norms.csv")
    runs = pd.read_csv(results["vanishing"] / "runs.csv")
    pairs = pdata.load_table(results["heatmap"], "norms")
    spectrum = pdata.load_table(results["transient"], "spectrum")
    transient = pdata.lag_curves(pdata.load_table(results["transient"], "norms"), by=("init", "radius"))
    training = pd.read_csv(results["clipping"] / "training.csv")
    evaluation = pd.read_csv(results["clipping"] / "evaluation.csv")
    truncation = pd.read_csv(results["truncation"] / "truncation.csv")
    one_pair_run = pairs[pairs.run_id == pairs.run_id.iloc[0]]
    one_spectrum = spectrum[spectrum.run_id == "gaussian"]
    one_training = training[training.run_id == training.run_id.iloc[0]]
    calls = {
        "norms_vs_lag": lambda: pnorms.plot_norms_vs_lag(pdata.lag_curves(sweep_norms)),
        "heatmap": lambda: pnorms.plot_norm_heatmap(*pdata.pair_grid(one_pair_run)),
        "growth_rates": lambda: pnorms.plot_growth_rates(pdata.growth_summary(runs)),
        "transient": lambda: pnorms.plot_transient_growth(transient),
        "eigenvalues": lambda: pspectrum.plot_eigenvalues(one_spectrum),
        "singular_values": lambda: pspectrum.plot_singular_values(one_spectrum, theory=np.linspace(2, 0, 8)),
        "loss": lambda: ptraining.plot_loss(one_training, chance=1 / 6),
        "grad_norm": lambda: ptraining.plot_grad_norm(one_training, threshold=1.0),
        "final_metric": lambda: ptraining.plot_final_metric(
            pdata.final_metrics(evaluation.assign(setting=evaluation.clipping), by=("setting", "radius")),
            chance=1 / 6),
        "truncation": lambda: ptruncation.plot_truncation_error(pdata.truncation_curves(truncation)),
    }
    import matplotlib.axes

    import matplotlib.pyplot as plt

    for name, call in calls.items():
        with figure_style(), plt.rc_context({"savefig.dpi": 60}):  # low resolution: this test is about drawing
            ax = call()
            assert isinstance(ax, matplotlib.axes.Axes), name
            assert ax.lines or ax.images or ax.collections, name
            path = save_figure(ax.figure, tmp_path / name, "png")[0]
        assert path.stat().st_size > 1000, name


def test_plot_functions_draw_into_the_given_axes():
    import matplotlib.pyplot as plt

    table = pd.DataFrame({"kind": ["eigenvalue"] * 2 + ["singular_value"] * 2, "index": [0, 1, 0, 1],
                          "real": [0.5, -0.5, 1.0, 0.5], "imag": [0.5, -0.5, 0.0, 0.0],
                          "abs": [np.sqrt(0.5)] * 2 + [1.0, 0.5]})
    with figure_style():
        fig, (a, b) = plt.subplots(1, 2)
        assert pspectrum.plot_eigenvalues(table, ax=a) is a
        assert pspectrum.plot_singular_values(table, ax=b) is b
        plt.close(fig)


# ------------------------------------------------------------------ style and formats

def test_style_is_packaged_and_applied_only_inside_the_context():
    import matplotlib as mpl

    from gradlab.plots.style import STYLE

    assert STYLE.is_file()
    before = dict(mpl.rcParams)
    with figure_style():
        assert mpl.rcParams["xtick.direction"] == "in"
        assert mpl.rcParams["legend.frameon"] is False
        assert mpl.rcParams["savefig.dpi"] >= 200
        assert mpl.rcParams["figure.figsize"][0] == pytest.approx(3.5)
    assert mpl.rcParams["xtick.direction"] == before["xtick.direction"]
    assert mpl.rcParams["legend.frameon"] == before["legend.frameon"]


def test_log10_axis_labels_powers_of_ten_for_values_beyond_float_range():
    import matplotlib.pyplot as plt

    with figure_style():
        fig, ax = plt.subplots()
        ax.plot([0, 1], [-50, 400])  # 10^400 overflows a float; its log10 does not
        ax.set_ylim(-50, 400)
        log10_axis(ax)
        fig.canvas.draw()
        labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
        plt.close(fig)
    assert labels and all(lab.startswith("$10^{") for lab in labels)
    assert "$10^{400}$" in labels


def test_log10_axis_over_a_short_range_uses_plain_numbers():
    import matplotlib.pyplot as plt

    with figure_style():
        fig, ax = plt.subplots()
        ax.set_ylim(np.log10(0.8), np.log10(6.0))
        log10_axis(ax)
        fig.canvas.draw()
        labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
        plt.close(fig)
    assert labels == ["1", "2", "5"]


@pytest.mark.parametrize("formats,expected", [("pdf,png", ("pdf", "png")), (" PNG ", ("png",)),
                                              (["svg"], ("svg",)), ("png,PNG, png", ("png",)),
                                              ("png,pdf,png,svg,pdf", ("png", "pdf", "svg")),
                                              (["pdf", "pdf"], ("pdf",))])
def test_parse_formats(formats, expected):
    assert parse_formats(formats) == expected


def test_a_format_given_twice_is_written_once(results, tmp_path, monkeypatch):
    import matplotlib.figure

    saved = []
    savefig = matplotlib.figure.Figure.savefig
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig",
                        lambda self, *args, **kwargs: saved.append(kwargs.get("format")) or savefig(self, *args, **kwargs))
    paths = draw_figure("truncation", results["truncation"], tmp_path, "png,pdf,png")
    assert [p.name for p in paths] == ["truncation.png", "truncation.pdf"]
    assert saved == ["png", "pdf"]


@pytest.mark.parametrize("formats", ["", "jpg", "png,gif"])
def test_parse_formats_rejects(formats):
    with pytest.raises(GradlabError):
        parse_formats(formats)


def test_final_metrics_count_diverged_runs_and_average_the_rest():
    evaluation = pd.DataFrame({
        "run_id": ["a", "a", "b", "b", "c"], "setting": ["none"] * 4 + ["norm τ=1"], "radius": 2.0,
        "step": [0, 10, 0, 10, 10], "metric_name": "mse",
        "metric": [0.5, 0.1, 0.5, np.inf, np.nan]})
    final = pdata.final_metrics(evaluation, by=("setting", "radius")).set_index("setting")
    assert final.loc["none", "metric"] == pytest.approx(0.1)      # the last step of the finite run only
    assert final.loc["none", "n_diverged"] == 1
    assert np.isnan(final.loc["norm τ=1", "metric"]) and final.loc["norm τ=1", "n_diverged"] == 1


def test_the_clipping_figure_shows_where_training_without_clipping_blew_up():
    from gradlab.plots.figures import showcase_run

    rows = []
    for act in ("tanh", "relu"):
        for radius in (1.0, 2.0, 3.0):
            for setting in ("none", "norm τ=1"):
                blew_up = act == "relu" and radius >= 2.0 and setting == "none"
                rows.append({"activation": act, "radius": radius, "setting": setting, "skipped": blew_up})
    train = pd.DataFrame(rows)
    final = pd.DataFrame({"activation": ["tanh"], "setting": ["none"], "radius": [1.0], "n_diverged": [0]})
    assert showcase_run(train, final) == ("relu", 2.0)            # smallest radius that blew up
    assert showcase_run(train.assign(skipped=False), final) == ("tanh", 3.0)  # otherwise the largest radius


def diverging_run(first_bad: int = 3, updates: int = 12) -> pd.DataFrame:
    """One run's training rows: finite until ``first_bad``, then alternately non-finite and huge."""
    step = np.arange(1, updates + 1)
    bad = (step >= first_bad) & (step % 2 == first_bad % 2)
    huge = step >= first_bad
    return pd.DataFrame({
        "run_id": "r0", "step": step,
        "loss": np.where(bad, np.inf, np.where(huge, 1e90, 1.0 / step)),
        "grad_norm": np.where(bad, np.nan, np.where(huge, 1e45, 2.0 / step)),
        "clipped": False, "skipped": bad})


def diverged_marks(ax) -> list:
    return [line for line in ax.lines if line.get_marker() == "x"]


@pytest.mark.parametrize("plot", [ptraining.plot_loss, ptraining.plot_grad_norm])
def test_a_diverged_run_is_marked_once_where_it_first_became_non_finite(plot):
    import matplotlib.pyplot as plt

    run = diverging_run(first_bad=3, updates=12)
    with figure_style():
        ax = plot(run)
        marks = diverged_marks(ax)
        assert len(marks) == 1 and list(marks[0].get_xdata()) == [3.0]  # one ×, at the first bad update
        notes = [t.get_text() for t in ax.texts]
        assert notes == ["diverged at update 3 (5 of 12 updates non-finite)"]
        # the measured line breaks at non-finite updates instead of joining across them
        y = np.asarray(ax.lines[0].get_ydata(), dtype=float)
        assert np.isnan(y[run["skipped"].to_numpy()]).all() and np.isfinite(y[:2]).all()
        plt.close(ax.figure)


def test_a_run_that_never_diverged_has_no_mark():
    import matplotlib.pyplot as plt

    run = diverging_run(first_bad=99, updates=12)
    assert ptraining.divergence(run) == (None, 0, 12)
    with figure_style():
        ax = ptraining.plot_grad_norm(run)
        assert not diverged_marks(ax) and not ax.texts
        plt.close(ax.figure)


def test_the_clipping_figure_marks_the_diverged_showcase_run_once_per_panel(results, tmp_path):
    """Whatever the data, (a) and (b) carry at most one × per run (not one per non-finite update)."""
    import matplotlib.pyplot as plt

    from gradlab.plots.figures import load_figure_tables, training

    folder = tmp_path / "clipping"
    shutil.copytree(results["clipping"], folder)
    csv = folder / "training.csv"
    table = pd.read_csv(csv)
    # make every unclipped run blow up from its third update on
    blow = (table["clipping"] == "none") & (table["step"] >= 3)
    table.loc[blow, ["loss", "grad_norm"]] = [np.inf, np.nan]
    table.loc[blow, "skipped"] = True
    table.to_csv(csv, index=False)
    with figure_style():
        fig = training(load_figure_tables("clipping", folder))
        ax_loss, ax_grad = fig.axes[:2]
        for ax in (ax_loss, ax_grad):
            marks = diverged_marks(ax)
            assert len(marks) == 1 and len(marks[0].get_xdata()) == 1 and marks[0].get_xdata()[0] == 3
            assert any(t.get_text().startswith("diverged at update 3") for t in ax.texts)
        plt.close(fig)


def test_settings_that_coincide_are_said_to_and_stay_visible():
    import matplotlib.pyplot as plt

    same = pd.DataFrame({"setting": np.repeat(["none", "norm τ=1", "value c=1"], 2), "radius": [1.0, 2.0] * 3,
                         "metric": [0.165, 0.166, 0.1652, 0.1661, 0.1649, 0.1660]})
    same = same.assign(lo=same["metric"], hi=same["metric"])
    apart = same.assign(metric=same["metric"] * np.array([1, 1, 1, 1.5, 1, 1]))
    assert ptraining.coinciding(same) and not ptraining.coinciding(apart)
    assert not ptraining.coinciding(same[same["setting"] == "none"])  # one setting: nothing to coincide with
    with figure_style():
        ax = ptraining.plot_final_metric(same)
        assert [t.get_text() for t in ax.texts] == ["all 3 settings coincide (within 2%)"]
        lines = [line for line in ax.lines if line.get_label() in set(same["setting"])]
        shapes = [(line.get_marker(), line.get_markersize()) for line in lines]
        assert len(set(m for m, _ in shapes)) == 3                     # a shape per setting
        sizes = [s for _, s in shapes]
        assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 3  # later ones smaller: all visible
        plt.close(ax.figure)
        ax = ptraining.plot_final_metric(apart)
        assert not ax.texts
        plt.close(ax.figure)


def test_log10_axis_over_half_a_decade_still_labels_more_than_one_tick():
    import matplotlib.pyplot as plt

    with figure_style():
        fig, ax = plt.subplots()
        ax.set_ylim(np.log10(0.11), np.log10(0.45))  # 1, 2, 5 × 10^n would label 0.2 alone
        log10_axis(ax)
        fig.canvas.draw()
        labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
        plt.close(fig)
    assert labels == ["0.2", "0.3", "0.4"]


def test_label_exit_names_a_line_where_it_leaves_the_axes():
    import matplotlib.pyplot as plt

    with figure_style():
        fig, ax = plt.subplots()
        ax.set_ylim(0.0, 1.0)
        x = np.arange(6.0)
        assert pnorms.label_exit(ax, x, 0.25 * x, "bound") == pytest.approx(4.0)  # 0.25 x = 1 at x = 4
        assert pnorms.label_exit(ax, x, 0.1 * x, "inside") is None
        assert [t.get_text() for t in ax.texts] == ["bound"]
        plt.close(fig)


def test_transient_growth_shows_the_rate_on_the_orthogonal_curve_and_names_the_gaussian_bound(results):
    """The orthogonal ratio is 1 exactly: drawn wide and pale under the dotted ρ^(t−k), and said in words;
    the Gaussian bound, which leaves the axes after a few steps, is labelled where it leaves."""
    import matplotlib.pyplot as plt

    from gradlab.plots.figures import load_figure_tables, transient_growth
    from gradlab.plots.style import COINCIDENT

    with figure_style():
        fig = transient_growth(load_figure_tables("transient-growth", results["transient"]))
        ax_abs, ax_ratio = fig.axes[:2]
        for ax in (ax_abs, ax_ratio):
            orthogonal = [line for line in ax.lines if line.get_label().startswith("orthogonal")]
            assert len(orthogonal) == 1 and orthogonal[0].get_linewidth() == COINCIDENT["linewidth"]
            dotted = [line for line in ax.lines if line.get_gid() == "rate"]
            assert len(dotted) == 1 and dotted[0].get_zorder() > orthogonal[0].get_zorder()
            # ρ^(t−k) is where the orthogonal curve is
            np.testing.assert_allclose(np.interp(orthogonal[0].get_xdata(), dotted[0].get_xdata(),
                                                 np.asarray(dotted[0].get_ydata(), float)),
                                       orthogonal[0].get_ydata(), atol=1e-9)
            dashed = [line for line in ax.lines if line.get_gid() == "bound"]
            assert len(dashed) == 1  # the Gaussian's bound; the orthogonal one is the same line as its data
            texts = [t.get_text() for t in ax.texts]
            assert any(t.startswith("bound") for t in texts)
        assert "orthogonal: ratio 1 at every lag" in [t.get_text() for t in ax_ratio.texts]
        assert "bound" in fig.legends[0].get_texts()[1].get_text()  # the orthogonal entry says it is its bound
        # the n → ∞ law is inside the ratio panel over every lag drawn
        top = ax_ratio.get_ylim()[1]
        lags = np.arange(1, int(ax_ratio.get_xlim()[1]) + 1)
        assert pdata.ginibre_power_norm(lags).max() <= top
        plt.close(fig)


def test_heatmap_cells_without_a_pair_are_grey_not_the_white_of_norm_one():
    import matplotlib.pyplot as plt
    from matplotlib import colors

    t, k = np.arange(1, 4), np.arange(0, 3)
    grid = np.array([[0.0, np.nan, np.nan], [0.0, 0.0, np.nan], [0.0, 0.0, 0.0]])  # log10 = 0: ‖·‖ = 1
    with figure_style():
        ax = pnorms.plot_norm_heatmap(t, k, grid)
        image = ax.images[0]
        bad = image.cmap.get_bad()
        assert bad[3] == 1.0  # opaque, not the (transparent → white) default
        one = image.cmap(image.norm(0.0))
        assert np.abs(np.subtract(bad[:3], one[:3])).max() > 0.1  # tells t ≤ k apart from a norm of 1
        assert colors.to_hex(bad) == colors.to_hex(pnorms.NO_PAIR)
        assert any("no pair" in text.get_text() for text in ax.texts)
        plt.close(ax.figure)


@pytest.mark.parametrize("x,text", [(0.304, "+0.30"), (-0.514, "\u22120.51"), (-0.001, "0.00"), (0.0, "0.00")])
def test_signed_rates_use_a_true_minus_and_no_negative_zero(x, text):
    from gradlab.plots.figures import signed

    assert signed(x) == text


def test_spectrum_of_runs_with_one_rho_draws_rho_once_on_top_of_the_normal_runs_singular_values(results):
    """Same ρ, different σ_max: ρ is one black dotted line above the orthogonal run's σ_i (all equal to ρ),
    which are drawn wide and pale; the Gaussian's σ_max stays marked against it."""
    import matplotlib.pyplot as plt

    from gradlab.plots.figures import load_figure_tables, spectrum
    from gradlab.plots.style import COINCIDENT

    tables = load_figure_tables("spectrum", results["transient"])
    rho = tables["spectrum"].query("kind == 'eigenvalue'").groupby("run_id")["abs"].max()
    assert rho.max() - rho.min() < 1e-9  # the fixture: both inits scaled to ρ = 0.9
    with figure_style():
        fig = spectrum(tables)
        ax_eig, ax_sv = fig.axes[:2]
        horizontal = [line for line in ax_sv.lines
                      if len(np.ravel(line.get_ydata())) > 1 and len(set(np.ravel(line.get_ydata()))) == 1]
        dotted = [line for line in horizontal if line.get_color() == "black"]
        assert len(dotted) == 1 and dotted[0].get_ydata()[0] == pytest.approx(rho.mean())
        coloured_rho = [line for line in horizontal if line.get_color() != "black"
                        and line.get_linewidth() != COINCIDENT["linewidth"]]
        assert not coloured_rho  # no per-run ρ lines hidden under each other
        wide = [line for line in ax_sv.lines if line.get_linewidth() == COINCIDENT["linewidth"]]
        assert len(wide) == 1 and wide[0].get_zorder() < dotted[0].get_zorder()
        assert any("every run" in t.get_text() for t in ax_sv.texts)
        circles = [line for line in ax_eig.lines if len(line.get_xdata()) == 361]
        assert len(circles) == 2  # the unit circle and one |λ| = ρ circle
        plt.close(fig)


def test_truncation_names_each_radius_in_a_colour_of_its_own(results):
    """Radii 0.9, 1 and 1.1 next to 2: by value on viridis they were three near-identical blues."""
    import matplotlib.pyplot as plt

    from gradlab.plots.figures import load_figure_tables, truncation
    from gradlab.plots.style import ranked_colors

    colours = ranked_colors([0.5, 0.9, 1.0, 1.1, 1.5, 2.0])
    rgb = np.array([c[:3] for c in colours.values()])
    gaps = np.linalg.norm(rgb[:, None] - rgb[None], axis=-1)[~np.eye(len(rgb), dtype=bool)]
    assert gaps.min() > 0.12
    tables = load_figure_tables("truncation", results["truncation"])
    with figure_style():
        fig = truncation(tables)
        legend = fig.axes[0].get_legend()
        assert sorted(float(t.get_text()) for t in legend.get_texts()) == sorted(set(tables["truncation"]["radius"]))
        plt.close(fig)


def assert_lines_inside_the_axes(ax):
    """Every line and label drawn in data coordinates lies within the axes limits (a horizontal rule: y only)."""
    (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
    tol = 1e-9 * max(1.0, y1 - y0)
    for line in ax.lines:
        x, y = (np.asarray(v, dtype=float) for v in line.get_data())
        assert np.all((y >= y0 - tol) & (y <= y1 + tol)), (line.get_gid(), y, (y0, y1))
        if line.get_transform() is ax.transData:
            assert np.all((x >= x0 - tol) & (x <= x1 + tol)), (line.get_gid(), x, (x0, x1))
    for text in ax.texts:
        if text.get_transform() is ax.transData:
            x, y = text.get_position()
            assert x0 <= x <= x1 and y0 <= y <= y1, text.get_text()


def test_truncation_draws_rho_to_the_k_only_below_one_and_cut_at_the_axes():
    """ρ^K through the error at K = 0 grew out of the axes at once for every ρ > 1 (and ran out of the bottom for
    small ρ): it is drawn for ρ < 1 only, ends at the frame, and is named on the line."""
    import matplotlib.pyplot as plt

    K = np.array([0, 1, 2, 4, 8, 16, 32, 64])
    rates = {0.5: -0.48, 0.9: -0.25, 1.0: -0.21, 1.1: -0.18, 2.0: -0.015}   # log10 per step, as measured
    curves = pd.concat([pd.DataFrame({"radius": r, "truncate": K, "log10_error": -0.8 + s * K,
                                      "lo": -1.0 + s * K, "hi": -0.6 + s * K}) for r, s in rates.items()])
    curves["log10_error"] = curves["log10_error"].clip(lower=-15.9)   # the float64 floor, as measured
    curves["lo"], curves["hi"] = curves["lo"].clip(lower=-16.0), curves["hi"].clip(lower=-15.8)
    with figure_style():
        ax = ptruncation.plot_truncation_error(curves)
        assert_lines_inside_the_axes(ax)
        rate_lines = [line for line in ax.lines if line.get_gid() == "rate"]
        assert len(rate_lines) == 2                                     # ρ = 0.5 and 0.9; none for ρ ≥ 1
        slopes = sorted(np.diff(line.get_ydata())[0] / np.diff(line.get_xdata())[0] for line in rate_lines)
        assert slopes == pytest.approx(sorted(np.log10([0.5, 0.9])))
        half = min(rate_lines, key=lambda line: line.get_ydata()[-1])   # 0.5^K from 10^-0.8 leaves at K ≈ 50
        assert half.get_ydata()[-1] == pytest.approx(ax.get_ylim()[0]) and half.get_xdata()[-1] < 60
        names = sorted(t.get_text() for t in ax.texts if t.get_gid() == "rate")
        assert names == ["$0.5^{K}$", "$0.9^{K}$"]
        plt.close(ax.figure)


def test_truncation_figure_keeps_its_lines_inside_and_its_legend_says_what_the_dotted_line_is(results):
    import matplotlib.pyplot as plt

    from gradlab.plots.figures import load_figure_tables, truncation

    tables = load_figure_tables("truncation", results["truncation"])    # radii 0.5 and 1.5
    with figure_style():
        fig = truncation(tables)
        ax = fig.axes[0]
        assert_lines_inside_the_axes(ax)
        assert len([line for line in ax.lines if line.get_gid() == "rate"]) == 1
        labels = [t.get_text() for t in fig.legends[0].get_texts()]
        dotted = next(label for label in labels if r"\rho^{K}" in label)
        assert "rate" in dotted and "not a bound" in dotted and "not drawn" in dotted and r"\rho\geq1" in dotted
        assert not any("bound" in label and "not a bound" not in label for label in labels)
        plt.close(fig)


def test_lyapunov_legend_sits_above_the_panels_and_explains_the_pale_points():
    import matplotlib.pyplot as plt

    from gradlab.plots.dynamics import lyapunov_figure

    g = np.array([0.5, 1.0, 1.5])
    measured = pd.DataFrame({"activation": "tanh", "g": np.repeat(g, 2), "seed": [0, 1] * 3, "n": 50,
                             "lyapunov": np.log(np.repeat(g, 2)) + [0.01, -0.01] * 3})
    theory = pd.DataFrame({"activation": "tanh", "g": g, "lyapunov": np.log(g)})
    transitions = pd.DataFrame({"activation": ["tanh"], "g_critical": [1.0]})
    with figure_style():
        fig = lyapunov_figure({"lyapunov": measured, "mean_field": theory, "transitions": transitions})
        assert all(ax.get_legend() is None for ax in fig.axes)  # nothing drawn over a panel
        (legend,) = fig.legends
        labels = [t.get_text() for t in legend.get_texts()]
        assert "one network (seed)" in labels and any("mean field" in lab for lab in labels)
        plt.close(fig)


def test_a_late_divergence_is_noted_to_the_left_of_its_mark_so_the_note_stays_in_the_panel():
    import matplotlib.pyplot as plt

    with figure_style():
        early = ptraining.plot_loss(diverging_run(first_bad=3, updates=12))
        late = ptraining.plot_loss(diverging_run(first_bad=11, updates=12))
        assert early.texts[0].get_ha() == "left" and late.texts[0].get_ha() == "right"
        late.figure.canvas.draw()
        box = late.texts[0].get_window_extent()
        frame = late.get_window_extent()
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1
        plt.close("all")


@pytest.mark.parametrize("pairs,end", [("last", "T"), ("all", "t")])
def test_the_cells_axes_name_the_norm_and_the_lag_with_the_same_end_step(pairs, end, results, tmp_path):
    """‖∂s_T/∂s_k‖ against T − k for last pairs (the shipped sweep), ‖∂s_t/∂s_k‖ against t − k otherwise."""
    import matplotlib.pyplot as plt

    from gradlab.plots.dynamics import cells_figure, end_step
    from gradlab.plots.figures import load_figure_tables

    if pairs == "last":
        source = results["cells"]
    else:
        spec = TINY_EXPERIMENTS["cells"].replace("[fixed]", '[fixed]\npairs = "all"')
        source = run_sweep(parse_spec(spec, "cells.toml"), tmp_path / "cells").out
    tables = load_figure_tables("cells", source)
    assert end_step(tables["sweep_norms"]) == end
    assert end_step(tables["sweep_norms"].drop(columns="pairs", errors="ignore")) == end  # from n_pairs alone
    with figure_style():
        fig = cells_figure(tables)
        for ax in fig.axes:
            if ax.get_xlabel():
                assert ax.get_xlabel() == f"lag ${end}-k$ (steps)"
        assert fig.axes[0].get_ylabel() == rf"$\|\partial s_{end} / \partial s_k\|_2$"
        assert all(ax.get_legend() is None for ax in fig.axes)  # the legend sits above the panels, not on one
        labels = [t.get_text() for t in fig.legends[0].get_texts()]
        assert any(f"({end}-k)" in lab for lab in labels)
        plt.close(fig)


def scaled_spectrum_sweep(one: pd.DataFrame, radii, seeds=(0, 1), activations=("tanh", "relu")) -> pd.DataFrame:
    """A run sweep's spectrum table: ``one`` network's W_hh (seed s: its values × (1 + s/10)) rescaled to
    each radius; the activations share each W_hh, as in a sweep, where it does not touch the weights."""
    one = one[list(COLUMNS["spectrum"])]
    rho0 = one.loc[one["kind"] == "eigenvalue", "abs"].max()
    tables, i = [], 0
    for radius in radii:
        for activation in activations:
            for seed in seeds:
                scale = radius / rho0 * (1 + seed / 10)
                rows = one.assign(real=one["real"] * scale, imag=one["imag"] * scale, abs=one["abs"] * scale)
                tables.append(pd.concat([pd.DataFrame({"run_id": f"r{i:04d}", "radius": radius,
                                                       "activation": activation, "seed": seed, "init": "gaussian"},
                                                      index=rows.index), rows], axis=1))
                i += 1
    return pd.concat(tables, ignore_index=True)


def test_runs_that_share_a_w_hh_are_one_network_and_a_group_shows_its_first_seed(results):
    from gradlab.plots.figures import distinct_networks, spectrum_groups

    one = pdata.load_table(results["transient"] / "gaussian", "spectrum")
    spec = scaled_spectrum_sweep(one, radii=(0.5, 1.0, 2.0))
    distinct = distinct_networks(spec)
    assert len(distinct) == 6  # 3 radii × 2 seeds; tanh and relu share each matrix
    first = spec.drop_duplicates("run_id").set_index("run_id")
    assert (first.loc[distinct, "activation"] == "tanh").all()
    by, shown = spectrum_groups(spec, distinct)
    assert by == ["radius"]
    assert first.loc[shown, "radius"].tolist() == [0.5, 1.0, 2.0] and (first.loc[shown, "seed"] == 0).all()


@pytest.mark.parametrize("radii", [(0.5, 1.0, 2.0, 3.0), (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 3.0)])
def test_the_spectrum_of_a_sweep_shows_one_network_per_radius_with_a_legend_beside_the_panel(radii, results,
                                                                                             tmp_path):
    """32 runs of a sweep were 32 legend entries over the panel and a layout warning; now one line per radius,
    named with its σ_max, in a legend that fits beside the panel."""
    import warnings

    from gradlab.plots.figures import spectrum

    one = pdata.load_table(results["transient"] / "gaussian", "spectrum")
    spec = scaled_spectrum_sweep(one, radii)
    with figure_style(), warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "constrained_layout not applied because axes sizes collapsed"
        fig = spectrum({"spectrum": spec})
        ax_eig, ax_sv = fig.axes[:2]
        legend = ax_sv.get_legend()
        labels = [t.get_text() for t in legend.get_texts()]
        networks = [lab for lab in labels if lab.startswith(r"$\rho = ")]
        assert len(networks) == len(radii)
        assert [float(lab.split("= ")[1].split("$")[0]) for lab in networks] == sorted(radii, reverse=True)
        smax = spec.query("kind == 'singular_value' and seed == 0 and activation == 'tanh'").groupby("radius")["abs"].max()
        for lab, radius in zip(networks, sorted(radii, reverse=True)):
            assert lab.endswith(rf"$\sigma_{{\max}} = {smax[radius]:.2f}$")
        n_runs = spec["run_id"].nunique()
        assert legend.get_title().get_text() == (r"one $W_{hh}$ per $\rho$ (seed 0)" "\n"
                                                 f"of {n_runs} runs, {n_runs // 2} distinct $W_{{hh}}$")
        measured = [line for line in ax_sv.lines if line.get_marker() == "o" and len(line.get_xdata()) > 1]
        assert len(measured) == len(radii)
        assert not ax_sv.texts  # no σ_max notes piled on each other at index 1
        fig.canvas.draw()
        box, frame, page = legend.get_window_extent(), ax_sv.get_window_extent(), fig.bbox
        assert box.x0 >= frame.x1 - 1  # beside the data, not over it
        assert page.x0 <= box.x0 and box.x1 <= page.x1 + 1 and page.y0 <= box.y0 and box.y1 <= page.y1 + 1
        assert ax_sv.get_window_extent().width > 0.3 * page.width  # the panel keeps its room
        if len(radii) >= 5:  # ten ρ lines and circles would bury the data: ρ is in each legend entry
            assert not [line for line in ax_sv.lines if line.get_linestyle() == ":"]
        path = save_figure(fig, tmp_path / "spectrum", "png")[0]
    assert path.stat().st_size > 1000


def test_the_spectrum_of_the_tiny_sweep_draws_each_matrix_once(results):
    import matplotlib.pyplot as plt

    from gradlab.plots.figures import load_figure_tables, spectrum

    tables = load_figure_tables("spectrum", results["vanishing"])  # 2 radii × 2 activations × 2 seeds
    with figure_style():
        fig = spectrum(tables)
        ax_sv = fig.axes[1]
        measured = [line for line in ax_sv.lines if line.get_marker() == "o" and len(line.get_xdata()) > 1]
        assert len(measured) == 2
        labels = [t.get_text() for t in ax_sv.get_legend().get_texts()]
        assert sum(lab.startswith(r"$\rho = ") for lab in labels) == 2
        assert ax_sv.get_legend().get_title().get_text().startswith(r"one $W_{hh}$ per $\rho$ (seed 0)")
        plt.close(fig)


def test_plot_list_and_the_registry_do_not_import_matplotlib():
    """`gradlab plot --list` took seconds, most of it importing matplotlib (pyplot) for a table of names."""
    import subprocess
    import sys

    code = """
import sys
from gradlab.cli import main
try:
    main(["plot", "--list"])
except SystemExit as e:
    assert e.code == 0, e.code
import gradlab.plots
from gradlab.plots import FIGURES, FigureSpec, draw_figure, load_figure_tables, load_table
from gradlab.plots.figures import FIGURES as registry
assert registry is FIGURES
print("loaded:", sorted(m for m in sys.modules if m.split(".")[0] == "matplotlib"))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("loaded: []")
    for name in FIGURES:
        assert f"\n{name} " in "\n" + done.stdout


FOLDER_READ = {   # what `gradlab plot --list` tells a user to pass as RESULTS_DIR
    "norms-vs-lag": 'a sweep folder of kind = "run" (`gradlab sweep`)',
    "heatmap": "`gradlab run` folders (a folder of them, or one)",
    "spectrum": '`gradlab run` folders (a folder of them, or one) or a sweep folder of kind = "run" (`gradlab sweep`)',
    "growth-rate": 'a sweep folder of kind = "run" (`gradlab sweep`)',
    "clipping": 'a sweep folder of kind = "train" (`gradlab sweep`) or a `gradlab train` folder',
    "truncation": 'a sweep folder of kind = "truncation" (`gradlab sweep`)',
    "transient-growth": "`gradlab run` folders (a folder of them, or one)",
    "lyapunov": "a `gradlab lyapunov` folder",
    "cells": 'a sweep folder of kind = "run" (`gradlab sweep`)',
    "lyapunov-spectrum": 'a `gradlab lyapunov --spectrum` folder (a sweep of kind = "lyapunov_spectrum")',
    "fixed-points": 'a `gradlab fixed-points` folder (a sweep of kind = "fixed_points")',
    "monitor": 'a sweep folder of kind = "train" (`gradlab sweep`) or a `gradlab train` folder',
    "remedies": 'a sweep folder of kind = "train" (`gradlab sweep`) or a `gradlab train` folder',
    "remedies-updates": 'a sweep folder of kind = "train" (`gradlab sweep`) or a `gradlab train` folder',
    "remedies-jacobians": 'a sweep folder of kind = "train" (`gradlab sweep`) or a `gradlab train` folder',
}


@pytest.mark.parametrize("name", list(FOLDER_READ))
def test_plot_list_names_the_kind_of_folder_each_figure_is_drawn_from(name, capsys):
    """`gradlab plot --list` named table kinds only (`reads: sweep_norms`), not what to pass as RESULTS_DIR."""
    from gradlab.cli import main

    with pytest.raises(SystemExit) as e:
        main(["plot", "--list"])
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert e.value.code == 0 and len(lines) == 3 * len(FIGURES)      # name and description, from, reads
    assert set(FOLDER_READ) == set(FIGURES)
    folder = FOLDER_READ[name]
    at = next(i for i, line in enumerate(lines) if line.startswith(f"{name:<18} "))
    assert lines[at + 1] == f"{'':<18} from:  {folder}"     # the words a wrong folder's error uses
    assert FIGURES[name].reads() == folder
    files = ", ".join(dict.fromkeys(pdata.TABLE_FILES[t] for t in FIGURES[name].tables))
    assert lines[at + 2].startswith(f"{'':<18} reads: {files}  (gradlab reproduce: results/…/")


def test_the_builders_are_still_reachable_from_the_registry_module():
    from gradlab.plots import builders, figures

    assert figures.spectrum is builders.spectrum and figures.signed is builders.signed
    assert FIGURES["spectrum"].build.__name__ == "spectrum"
    with pytest.raises(AttributeError, match="no attribute 'no_such_builder'"):
        figures.no_such_builder
