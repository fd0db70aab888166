"""Figures of the dynamical-systems view (gradlab.plots.dynamical): drawn from saved CSVs only, each panel what
its table says."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba

from dynamics_results import FIXED_POINT_SWEEP, SPECTRUM_SWEEP, rnn_weights, sweep
from gradlab import GradlabError
from gradlab.plots import FIGURES, draw_figure, figure_style
from gradlab.plots import dynamical as dyn


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("dyn")
    sweep(SPECTRUM_SWEEP, root / "spectrum")
    sweep(FIXED_POINT_SWEEP, root / "fixed")
    return root


def read(folder, name):
    return pd.read_csv(folder / f"{name}.csv")


def test_registry_names_the_tables_and_the_shipped_sweeps():
    assert FIGURES["lyapunov-spectrum"].tables == ("lyapunov_spectrum", "lyapunov_summary")
    assert FIGURES["lyapunov-spectrum"].optional == ("transitions",)
    assert FIGURES["lyapunov-spectrum"].results == "lyapunov_spectrum"
    assert FIGURES["fixed-points"].tables == ("fixed_points", "fixed_point_eigenvalues", "trajectories")
    assert FIGURES["fixed-points"].results == "fixed_points"
    assert FIGURES["fixed-points"].folders == ("sweep:fixed_points",)


@pytest.mark.parametrize("name,folder", [("lyapunov-spectrum", "spectrum"), ("fixed-points", "fixed")])
def test_figures_draw_from_the_csvs_alone(results, tmp_path, name, folder):
    copy = tmp_path / folder
    shutil.copytree(results / folder, copy, ignore=shutil.ignore_patterns("parts"))   # the CSVs, nothing else
    paths = draw_figure(name, copy, tmp_path / "figs", "png,pdf")
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.stat().st_size > 10_000 for p in paths)
    again = draw_figure(name, copy, tmp_path / "again", "png")
    assert again[0].read_bytes() == paths[0].read_bytes()                 # the same CSVs, the same bytes


def test_spectrum_panel_draws_the_mean_over_seeds_per_gain(results):
    spectrum = read(results / "spectrum", "lyapunov_spectrum")
    with figure_style():
        ax = dyn.plot_lyapunov_spectra(spectrum)
        assert ax is not None
        lines = [line for line in ax.get_lines() if line.get_label().startswith("$g")]
        assert [line.get_label() for line in lines] == ["$g = 0.5$", "$g = 2.5$"]
        expected = spectrum[spectrum["g"] == 2.5].groupby("index_fraction")["exponent"].mean()
        assert lines[1].get_xdata() == pytest.approx(expected.index.to_numpy())
        assert lines[1].get_ydata() == pytest.approx(expected.to_numpy())
        assert ax.get_yscale() == "symlog"                       # exponents below −1: log along the tail
        linear = dyn.plot_lyapunov_spectra(spectrum, symlog=False)
        assert linear.get_yscale() == "linear"


def test_dimension_panel_is_d_ky_per_unit_averaged_over_seeds(results):
    summary = read(results / "spectrum", "lyapunov_summary")
    with figure_style():
        ax = dyn.plot_per_unit_vs_gain(summary, "kaplan_yorke", g_critical=1.0)
        mean = next(line for line in ax.get_lines() if line.get_label() == "mean over seeds")
        expected = (summary["kaplan_yorke"] / summary["state_size"]).groupby(summary["g"]).mean()
        assert mean.get_xdata() == pytest.approx(expected.index.to_numpy())
        assert mean.get_ydata() == pytest.approx(expected.to_numpy())
        assert any(np.allclose(line.get_xdata(), 1.0) for line in ax.get_lines())       # g_c marked
        with pytest.raises(GradlabError, match="lacks column 'ks_entropy'"):
            dyn.plot_per_unit_vs_gain(summary.drop(columns="ks_entropy"), "ks_entropy")


def test_fixed_point_markers_say_stable_saddle_repeller_and_slow():
    points = pd.DataFrame({"point_id": [0, 1, 2, 3, 4], "kind": ["fixed", "fixed", "fixed", "fixed", "slow"],
                           "stability": ["stable", "stable", "saddle", "unstable", "saddle"],
                           "n_unstable": [0, 0, 2, 3, 1], "pc1": [0.0, 1, 2, 3, 4], "pc2": [0.0, 1, 2, 3, 4]})
    traj = pd.DataFrame({"sequence": np.repeat(np.arange(30), 3), "t": np.tile(np.arange(3), 30),
                         "pc1": np.linspace(0, 1, 90), "pc2": np.linspace(1, 0, 90)})
    eig = pd.DataFrame({"point_id": np.repeat(np.arange(5), 3), "real": np.linspace(-1.5, 1.5, 15),
                        "imag": np.zeros(15)})
    with figure_style():
        ax = dyn.plot_fixed_points_pca(points, traj)
        by_label = {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}
        assert set(by_label) == {"stable fixed point", "saddle (unstable modes)", "repeller", "slow point"}
        stable, saddle = by_label["stable fixed point"], by_label["saddle (unstable modes)"]
        assert len(stable.get_xdata()) == 2 and to_rgba(stable.get_markerfacecolor()) != to_rgba("white")
        assert len(saddle.get_xdata()) == 1 and to_rgba(saddle.get_markerfacecolor()) == to_rgba("white")
        assert by_label["repeller"].get_marker() == "s" and by_label["slow point"].get_marker() == "x"
        assert [t.get_text() for t in ax.texts] == ["2"]                 # the saddle's unstable modes
        grey = [line for line in ax.get_lines() if line.get_label().startswith("_")]
        assert len(grey) == dyn.MAX_TRAJECTORIES                         # 30 recorded, 24 drawn
        only_stable = dyn.plot_fixed_points_pca(points.iloc[:2])
        assert [line.get_label() for line in only_stable.get_lines()] == ["stable fixed point"]
        ax = dyn.plot_fixed_point_eigenvalues(eig, points)
        drawn = sum(len(line.get_xdata()) for line in ax.get_lines() if line.get_linestyle() == "None")
        assert drawn == 15


def test_counts_panel_and_the_flip_flop_memories(results):
    runs = read(results / "fixed", "runs")
    with figure_style():
        ax = dyn.plot_fixed_point_counts(runs, memories=8)
        heights = [p.get_height() for p in ax.patches]
        assert heights == runs["n_stable"].tolist() + runs["n_saddle"].tolist()
        assert any(np.allclose(line.get_ydata(), 8) for line in ax.get_lines())
    assert dyn._flip_flop(runs) and not dyn._flip_flop(runs.assign(task="adding"))
    assert not dyn._flip_flop(runs.assign(weights="w.npz").drop(columns="final_metric"))


def test_a_folder_of_trained_networks_gets_their_spectra(tmp_path):
    rng = np.random.default_rng(0)
    path = rnn_weights(tmp_path / "w.npz", 1.5 * rng.standard_normal((6, 6)) / np.sqrt(6), rng.standard_normal((6, 3)))
    text = f'kind = "lyapunov_spectrum"\n[grid]\ndrive = ["autonomous", "gaussian"]\n[fixed]\nweights = "{path}"\n' \
           "steps = 60\nwarmup = 10\nburn = 10\n"
    sweep(text, tmp_path / "s")
    paths = draw_figure("lyapunov-spectrum", tmp_path / "s", tmp_path / "figs", "png")
    assert paths[0].stat().st_size > 10_000


def test_bad_csvs_are_one_line_errors(results, tmp_path):
    copy = tmp_path / "s"
    shutil.copytree(results / "spectrum", copy)
    table = read(copy, "lyapunov_spectrum").astype({"exponent": object})
    table.loc[3, "exponent"] = "big"
    table.to_csv(copy / "lyapunov_spectrum.csv", index=False)
    with pytest.raises(GradlabError, match=r"line 5: column 'exponent' holds 'big'") as e:
        draw_figure("lyapunov-spectrum", copy, tmp_path / "f", "png")
    assert "\n" not in str(e.value)
    shutil.copy(results / "spectrum" / "lyapunov_spectrum.csv", copy)
    (copy / "lyapunov_summary.csv").unlink()
    with pytest.raises(GradlabError, match="figure 'lyapunov-spectrum'.*lyapunov_summary.csv"):
        draw_figure("lyapunov-spectrum", copy, tmp_path / "f", "png")
    with pytest.raises(GradlabError, match="figure 'fixed-points'"):
        draw_figure("fixed-points", results / "spectrum", tmp_path / "f", "png")
    assert not (tmp_path / "f").exists()
