"""Figures claim only what applies: theory where its assumptions hold, labels of what is drawn, clean refusals.

Gated cells (LSTM, GRU) have no single W_hh: their spectrum.csv holds J_T (the last step Jacobian of
sequence 0), their ρ-rate is empty and their bound is max_t ‖J_t‖₂; a ``--weights`` run has no init; a
``--pairs last`` run has one output step. Also: panel letters past h and wrapped grids (issue 12.4), chance
levels read from the CSVs (not from gradlab.training.tasks), and what looking at every figure turned up.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import gradlab as gl
from gradlab.errors import GradlabError
from gradlab.experiments.reproduce import run_run_set
from gradlab.experiments.sweep import parse_spec, run_sweep
from gradlab.plots import builders, data, draw_figure, dynamics, figure_style
from gradlab.plots.figures import load_figure_tables
from gradlab.plots.norms import centred_norm, plot_norm_heatmap
from gradlab.plots.style import CELL_NAMES, MAX_PANELS, panel_grid, panel_letter
from tiny_results import TINY_EXPERIMENTS


def tiny_weights(path: Path, n: int = 3, d: int = 2) -> Path:
    rng = np.random.default_rng(0)
    np.savez(path, weight_ih_l0=rng.normal(size=(n, d)) / 2, weight_hh_l0=rng.normal(size=(n, n)) / np.sqrt(n),
             bias_ih_l0=np.zeros(n), bias_hh_l0=np.zeros(n), nonlinearity="tanh")
    return path


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("claims")
    small = {"hidden": 3, "inputs": 2, "steps": 6, "batch": 1}
    out = {
        "gated": run_run_set({"lstm": gl.RunConfig(cell="lstm", pairs="all", **small),
                              "gru": gl.RunConfig(cell="gru", pairs="all", **small)}, root / "gated"),
        "lstm": run_run_set({"lstm": gl.RunConfig(cell="lstm", pairs="all", **small)}, root / "lstm"),
        "weights": run_run_set({"w": gl.RunConfig(weights=str(tiny_weights(root / "w.npz")), pairs="all",
                                                  steps=6, batch=1)}, root / "weights"),
        "last": run_run_set({"r1": gl.RunConfig(**small)}, root / "last"),
        "tanh": run_run_set({init: gl.RunConfig(hidden=6, steps=8, batch=1, init=init, radius=0.9)
                             for init in ("gaussian", "orthogonal")}, root / "tanh"),
        "cells": run_sweep(parse_spec(TINY_EXPERIMENTS["cells"].replace("[fixed]", '[fixed]\ninit = "gaussian"\nactivation = "tanh"'),
                                      "cells.toml"), root / "cells").out,
    }
    return out


def draw(name: str, folder: Path):
    """Figure ``name`` built from ``folder``'s CSVs (not saved); the caller closes it."""
    return getattr(builders, FIGURE_BUILDERS[name])(load_figure_tables(name, folder))


FIGURE_BUILDERS = {"spectrum": "spectrum", "heatmap": "norm_heatmap", "transient-growth": "transient_growth",
                   "growth-rate": "growth_rate", "norms-vs-lag": "norms_vs_lag", "truncation": "truncation",
                   "clipping": "training"}


def texts_of(fig) -> list[str]:
    """Every piece of text in a figure: titles, labels, legend entries and titles, annotations."""
    out = []
    for ax in fig.axes:
        out += [ax.get_title(loc) for loc in ("left", "center", "right")] + [ax.get_xlabel(), ax.get_ylabel()]
        out += [t.get_text() for t in ax.texts]
        if ax.get_legend():
            out += [t.get_text() for t in ax.get_legend().get_texts()] + [ax.get_legend().get_title().get_text()]
    for legend in fig.legends:
        out += [t.get_text() for t in legend.get_texts()] + [legend.get_title().get_text()]
    return [t for t in out if t]


# ------------------------------------------------------------------ spectrum

def test_the_spectrum_of_a_gated_run_is_named_as_j_t_without_random_matrix_theory(folders):
    """An LSTM's spectrum.csv holds J_T: it was labelled λ_i(W_hh), "Gaussian W_hh (non-normal)", and drawn
    with the quarter-circle law of a Gaussian W_hh."""
    with figure_style():
        fig = draw("spectrum", folders["lstm"])
        ax_eig, ax_sv = fig.axes[:2]
        texts = texts_of(fig)
        assert ax_eig.get_title(loc="right") == r"eigenvalues $\lambda_i(J_T)$"
        assert ax_sv.get_ylabel() == r"singular value $\sigma_i(J_T)$"
        assert not [t for t in texts if "W_{hh}" in t or "Gaussian" in t or "random-matrix" in t], texts
        assert any("LSTM" in t and "J_T" in t and "last step" in t for t in texts)
        assert not [line for line in ax_sv.lines if line.get_gid() == "theory"]
        assert len(ax_sv.lines) == 3  # the σ_i, ρ(J_T) dotted and the ★: nothing else
        n = int((load_figure_tables("spectrum", folders["lstm"])["spectrum"]["kind"] == "singular_value").sum())
        assert n == 6 and ax_sv.get_title(loc="right") == r"singular values, $6\times6$"  # (h, C): 2n = 6
        plt.close(fig)


def test_the_spectrum_of_a_weights_run_lists_no_theory_it_does_not_draw(folders):
    """A --weights run has no init: the legend listed "random-matrix theory" with no line drawn."""
    with figure_style():
        fig = draw("spectrum", folders["weights"])
        texts = texts_of(fig)
        assert "random-matrix theory" not in texts
        assert r"$W_{hh}$ of w.npz" in texts  # named by its file, not by a run id
        plt.close(fig)


def test_a_cells_sweep_spectrum_names_each_matrix_and_draws_theory_for_the_rnn_only(folders):
    with figure_style():
        fig = draw("spectrum", folders["cells"])
        ax_eig, ax_sv = fig.axes[:2]
        labels = [t.get_text() for t in ax_sv.get_legend().get_texts()]
        networks = [lab for lab in labels if lab.startswith(("rnn", "lstm", "gru"))]
        assert [lab.split(",")[0] for lab in networks] == ["rnn", "rnn", "lstm", "lstm", "gru", "gru"]
        assert all(("J_T" in lab) == (not lab.startswith("rnn")) for lab in networks)
        assert all(("W_{hh}" in lab) == lab.startswith("rnn") for lab in networks)
        assert len([line for line in ax_sv.lines if line.get_gid() == "theory"]) == 2   # one per RNN radius
        assert "random-matrix theory" in labels
        assert ax_eig.get_title(loc="right") == r"eigenvalues $\lambda_i$"          # each entry names its matrix
        assert ax_sv.get_xlim()[1] == 2 * 4 + 1  # the LSTM's J_T is 2n × 2n: all of its σ_i are in view
        plt.close(fig)


def test_the_spectrum_reads_which_matrix_from_a_matrix_column(folders):
    """When spectrum.csv says which matrix (a ``matrix`` column), that is what the figure calls it."""
    tables = load_figure_tables("spectrum", folders["weights"])
    tables["spectrum"] = tables["spectrum"].assign(matrix="J_T")
    with figure_style():
        fig = builders.spectrum(tables)
        assert fig.axes[0].get_title(loc="right") == r"eigenvalues $\lambda_i(J_T)$"
        plt.close(fig)


def test_singular_value_indices_are_whole_numbers():
    """16 singular values were indexed 0, 2.5, 5, …, 15."""
    from gradlab.plots.spectrum import plot_singular_values

    sv = np.linspace(2.0, 0.1, 16)
    spectrum = pd.DataFrame({"kind": ["eigenvalue"] * 16 + ["singular_value"] * 16, "index": list(range(16)) * 2,
                             "real": np.r_[sv / 2, sv], "imag": 0.0, "abs": np.r_[sv / 2, sv]})
    with figure_style():
        _, ax = plt.subplots(figsize=(3.0, 2.9))  # panel (b) of the spectrum figure, a legend beside it
        plot_singular_values(spectrum, ax=ax)
        ax.figure.canvas.draw()
        ticks = ax.get_xticks()
        assert len(ticks) > 3 and np.allclose(ticks, np.round(ticks))
        plt.close(ax.figure)


# ------------------------------------------------------------------ transient growth

@pytest.mark.parametrize("folder,says", [("lstm", "no single W_hh"), ("weights", "--weights")])
def test_transient_growth_refuses_runs_without_an_initialised_w_hh_in_one_line(folder, says, folders, tmp_path):
    """Of an LSTM it drew "tanh φ, ρ(W_hh) = 1" and the linear-Gaussian law; of a weights run it failed on a
    missing init column."""
    with pytest.raises(GradlabError) as e:
        draw_figure("transient-growth", folders[folder], tmp_path, "png")
    message = str(e.value)
    assert "\n" not in message and message.startswith("figure 'transient-growth': compares") and says in message
    assert not list(tmp_path.iterdir())


def test_the_gaussian_law_is_drawn_for_a_linear_phi_only(folders):
    """‖G^k‖ → √((k+1)^(k+1)/k^k) is the law of W^k: with tanh the ratio is of ∏ diag(φ') W, not W^k."""
    with figure_style():
        fig = draw("transient-growth", folders["tanh"])
        texts = texts_of(fig)
        assert not [t for t in texts if r"n\to\infty" in t]
        assert not [line for line in fig.axes[1].lines if line.get_linestyle() == "-."]
        assert "tanh" in fig.axes[0].get_title(loc="right")
        plt.close(fig)


# ------------------------------------------------------------------ heatmap

def test_the_heatmap_refuses_runs_of_one_output_step(folders, tmp_path):
    """A --pairs last run was drawn as a one-row heatmap with ticks 199.6 … 200.4."""
    with pytest.raises(GradlabError) as e:
        draw_figure("heatmap", folders["last"], tmp_path, "png")
    message = str(e.value)
    assert "\n" not in message and "--pairs all or stride:K" in message and "r1" in message
    assert not list(tmp_path.iterdir())


def test_the_heatmap_of_gated_runs_labels_the_state_and_their_own_bound(folders):
    with figure_style():
        fig = draw("heatmap", folders["gated"])
        texts = texts_of(fig)
        assert not [t for t in texts if "nan" in t or r"\ln\rho" in t or r"\sigma_{\max}\gamma_h" in t], texts
        boxes = [t for t in texts if t.startswith("growth per step")]
        assert len(boxes) == 2 and all(r"\mathrm{max}_t\|J_t\|_2" in b for b in boxes)
        titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
        assert any(CELL_NAMES["lstm"] in t for t in titles) and any(CELL_NAMES["gru"] in t for t in titles)
        colorbar = fig.axes[-1]
        assert colorbar.get_ylabel() == r"$\|\partial s_t / \partial s_k\|_2$"
        plt.close(fig)


def test_the_heatmap_colours_as_many_decades_alike_on_either_side_of_one():
    """With TwoSlopeNorm a grid from 10^-10 to 10^0.2 drew 10^0.2 as deep a red as 10^-10 is a blue."""
    norm = centred_norm(-10.0, 0.2)
    assert norm(0.0) == pytest.approx(0.5)
    assert norm(0.2) - 0.5 == pytest.approx(0.5 - norm(-0.2))
    assert norm(0.2) < 0.52 and norm(-10.0) == pytest.approx(0.0)


def test_heatmap_ticks_are_whole_steps():
    t, k = np.arange(1, 21), np.arange(0, 20)
    grid = -0.1 * (t[:, None] - k[None, :]).astype(float)
    grid[t[:, None] <= k[None, :]] = np.nan
    with figure_style():
        ax = plot_norm_heatmap(t, k, grid)
        ax.figure.canvas.draw()
        for ticks in (ax.get_xticks(), ax.get_yticks()):
            assert np.allclose(ticks, np.round(ticks))
        plt.close(ax.figure)


# ------------------------------------------------------------------ growth rate, norms against lag

def test_growth_summary_gives_a_gated_cell_no_rho_rate_and_its_own_bound(folders):
    runs = load_figure_tables("growth-rate", folders["cells"])["runs"]
    summary = data.growth_summary(runs, by=("cell", "radius")).set_index(["cell", "radius"])
    assert summary.loc["lstm", "log_rho"].isna().all() and summary.loc["gru", "log_rho"].isna().all()
    assert np.isfinite(summary.loc["rnn", "log_rho"]).all()
    expected = runs.groupby(["cell", "radius"])["bound_rate"].mean()
    np.testing.assert_allclose(summary["bound_rate"], expected.loc[summary.index])  # runs.csv's, not σ_max·γ_h
    assert np.isfinite(summary["bound_rate"]).all()


def test_the_growth_rate_of_a_cells_sweep_has_a_panel_per_cell_and_no_nan_lines(folders):
    with figure_style():
        fig = draw("growth-rate", folders["cells"])
        panels = [ax for ax in fig.axes if ax.get_title()]
        assert [ax.get_title() for ax in panels] == [r"vanilla RNN, tanh ($\gamma_h = 1$)", CELL_NAMES["lstm"],
                                                     CELL_NAMES["gru"]]
        for ax in panels:
            for line in ax.lines:
                assert np.isfinite(np.asarray(line.get_ydata(), dtype=float)).all(), line.get_gid()
            rates = [line for line in ax.lines if line.get_gid() == "rate"]
            assert len(rates) == (1 if ax is panels[0] else 0)
            assert len([line for line in ax.lines if line.get_gid() == "bound"]) == 1
        labels = [t.get_text() for t in fig.legends[0].get_texts()]
        assert any("J_t" in lab and r"\sigma_{\max}\gamma_h" in lab for lab in labels)     # both bounds named
        assert any(r"\ln\rho" in lab and "vanilla RNN" in lab for lab in labels)
        assert panels[1].get_xlabel() != panels[0].get_xlabel()                          # ρ of the gate blocks
        plt.close(fig)


def test_norms_vs_lag_does_not_average_cells_together(folders, tmp_path):
    with pytest.raises(GradlabError, match="one cell at a time.*figure 'cells'"):
        draw_figure("norms-vs-lag", folders["cells"], tmp_path, "png")


def test_norms_vs_lag_of_a_gated_sweep_draws_its_bound_and_no_rho_rate(folders, tmp_path):
    folder = tmp_path / "lstm"
    shutil.copytree(folders["cells"], folder)
    for name in ("norms.csv", "runs.csv"):
        table = pd.read_csv(folder / name)
        table[table["cell"] == "lstm"].to_csv(folder / name, index=False)
    with figure_style():
        fig = draw("norms-vs-lag", folder)
        panels = [ax for ax in fig.axes if ax.get_title(loc="left")]
        assert len(panels) == 1                                        # the bound row only: no ρ-rate row
        labels = [t.get_text() for t in fig.legends[0].get_texts()]
        assert not [lab for lab in labels if r"\rho" in lab]
        assert any("J_t" in lab for lab in labels)
        assert panels[0].get_ylabel() == r"$\|\partial s_t / \partial s_k\|_2$"
        plt.close(fig)


def test_truncation_draws_rho_to_the_k_for_the_vanilla_rnn_only():
    rows = [{"run_id": f"{cell}{r}", "cell": cell, "activation": "tanh", "radius": r, "truncate": K,
             "parameter": "all", "rel_error": 0.5 * r ** K if cell == "rnn" else 0.9 ** (K + 1)}
            for cell in ("rnn", "lstm") for r in (0.5, 0.8) for K in (0, 2, 4, 8)]
    with figure_style():
        fig = builders.truncation({"truncation": pd.DataFrame(rows)})
        rnn, lstm = [ax for ax in fig.axes if ax.get_title()]
        assert rnn.get_title().startswith("vanilla RNN") and lstm.get_title() == CELL_NAMES["lstm"]
        assert len([line for line in rnn.lines if line.get_gid() == "rate"]) == 2
        assert not [line for line in lstm.lines if line.get_gid() == "rate"]
        # the panels share y: its range holds every panel's points (it was the last panel's, cutting the others)
        lo, hi = rnn.get_ylim()
        for ax in (rnn, lstm):
            for line in ax.lines:
                if line.get_marker() == "o":
                    assert np.all((lo <= np.asarray(line.get_ydata())) & (np.asarray(line.get_ydata()) <= hi))
        labels = [t.get_text() for t in fig.legends[0].get_texts()]
        assert any(r"for $\rho<1$, vanilla RNN:" in lab for lab in labels)
        plt.close(fig)


# ------------------------------------------------------------------ panel letters, wrapped grids (12.4)

@pytest.mark.parametrize("i,letter", [(0, "a"), (7, "h"), (8, "i"), (25, "z"), (26, "aa"), (27, "ab"),
                                      (51, "az"), (52, "ba"), (701, "zz"), (702, "aaa")])
def test_panel_letters_go_on_past_z(i, letter):
    assert panel_letter(i) == letter


def test_a_figure_of_too_many_panels_refuses_in_one_line():
    assert panel_grid(9) == (3, 4) and panel_grid(30) == (8, 4) and panel_grid(3) == (1, 3)
    with pytest.raises(GradlabError, match=f"{MAX_PANELS + 1} radii are too many"):
        panel_grid(MAX_PANELS + 1, what="radii")


def cells_tables(radii) -> dict:
    lag = np.arange(1, 6)
    norms, runs = [], []
    for i, (r, cell) in enumerate((r, c) for r in radii for c in ("rnn", "lstm")):
        rate = -0.1 * (i + 1)
        norms.append(pd.DataFrame({"run_id": f"r{i}", "radius": r, "cell": cell, "lag": lag,
                                   "mean_log10_norm": rate * lag, "log10_bound": 0.1 * lag,
                                   "log10_rate": np.nan, "n_pairs": 1}))
        runs.append({"run_id": f"r{i}", "radius": r, "cell": cell, "lyapunov": rate, "hidden": 4})
    return {"sweep_norms": pd.concat(norms, ignore_index=True), "runs": pd.DataFrame(runs)}


def panel_rows(panels) -> list:
    return sorted({round(ax.get_position().y0, 3) for ax in panels}, reverse=True)


@pytest.mark.parametrize("n", [9, 30])
def test_a_cells_sweep_of_many_radii_wraps_into_rows_of_lettered_panels(n, tmp_path):
    """Nine radii ended in an IndexError ("abcdefgh"[8]); a row of 30 panels would be unreadable."""
    radii = [0.5 + 0.1 * i for i in range(n)]
    with figure_style():
        fig = dynamics.cells_figure(cells_tables(radii))
        panels = [ax for ax in fig.axes if ax.get_title(loc="left")]
        assert [ax.get_title(loc="left") for ax in panels] == [f"({panel_letter(i)})" for i in range(n)]
        rows, columns = panel_grid(n)
        assert len(panel_rows(panels)) == rows and columns == 4
        fig.canvas.draw()
        for i, ax in enumerate(panels):  # each column's lowest panel has its x tick labels, and the axis label
            lowest = i + columns >= n
            assert not lowest or any(t.get_text() for t in ax.get_xticklabels()), i
            assert bool(ax.get_xlabel()) == lowest, i
            assert bool(ax.get_ylabel()) == (i % columns == 0), i
        width = min(ax.get_window_extent().width for ax in panels)
        assert width > 0.18 * fig.bbox.width  # a readable panel, not a sliver
        plt.close(fig)


def test_thirty_activations_of_unknown_names_wrap_and_are_titled_by_name():
    """A CSV may name an activation gradlab does not know: γ_h is left out of its title, not a traceback."""
    names = [f"act{i}" for i in range(30)]
    runs = pd.DataFrame([{"run_id": f"{a}-{r}", "activation": a, "radius": r, "growth_rate": -0.1, "rho": r,
                          "sigma_max": 2 * r, "gamma_h": 1.0} for a in names for r in (0.5, 1.0)])
    with figure_style():
        fig = builders.growth_rate({"runs": runs})
        panels = [ax for ax in fig.axes if ax.get_title(loc="left")]
        assert len(panels) == 30 and panels[-1].get_title(loc="left") == "(ad)"
        assert sorted(ax.get_title() for ax in panels) == sorted(names)
        assert len(panel_rows(panels)) == 8
        plt.close(fig)
    assert builders.activation_title("swish") == "swish"
    assert builders.activation_title("tanh") == r"tanh ($\gamma_h = 1$)"


# ------------------------------------------------------------------ chance levels from the CSVs

@pytest.fixture(scope="module")
def clipping(tmp_path_factory) -> Path:
    return run_sweep(parse_spec(TINY_EXPERIMENTS["clipping"], "clipping.toml"),
                     tmp_path_factory.mktemp("clip") / "clipping").out


def chance_lines(fig) -> list:
    return [line for ax in fig.axes for line in ax.lines if line.get_zorder() == 0 and line.get_color() == "0.4"]


def test_the_chance_level_is_read_from_runs_csv(clipping, tmp_path):
    """It was looked up in gradlab.training.tasks.TASKS: a figure must say what the CSVs say."""
    folder = tmp_path / "clipping"
    shutil.copytree(clipping, folder)
    runs = pd.read_csv(folder / "runs.csv")
    assert np.allclose(runs["chance_metric"], 1 / 6)  # the adding problem's MSE, as the sweep wrote it
    runs.assign(chance_metric=0.25).to_csv(folder / "runs.csv", index=False)
    tables = load_figure_tables("clipping", folder)
    assert "runs" in tables
    with figure_style():
        fig = builders.training(tables)
        assert "chance (0.25)" in texts_of(fig)
        assert {float(line.get_ydata()[0]) for line in chance_lines(fig)} == {0.25}
        plt.close(fig)


def test_without_a_chance_column_no_chance_line_is_drawn_and_an_evaluation_column_is_read(clipping, tmp_path):
    folder = tmp_path / "clipping"
    shutil.copytree(clipping, folder)
    (folder / "runs.csv").unlink()
    evaluation = pd.read_csv(folder / "evaluation.csv")
    evaluation.drop(columns="chance_metric", errors="ignore").to_csv(folder / "evaluation.csv", index=False)
    tables = load_figure_tables("clipping", folder)
    assert "runs" not in tables and "chance_metric" not in tables["evaluation"].columns
    with figure_style():
        fig = builders.training(tables)
        assert not chance_lines(fig) and not [t for t in texts_of(fig) if t.startswith("chance")]
        plt.close(fig)
        tables["evaluation"] = tables["evaluation"].assign(chance_metric=0.2)
        fig = builders.training(tables)
        assert "chance (0.2)" in texts_of(fig)
        plt.close(fig)


def test_the_builders_do_not_look_tasks_up_in_the_code():
    import inspect

    assert "training.tasks" not in inspect.getsource(builders)
    assert "TASKS" not in inspect.getsource(builders)


# ------------------------------------------------------------------ what looking at the figures turned up

def test_the_critical_gain_is_written_at_the_foot_of_its_line_not_on_the_data():
    g = np.array([0.5, 1.0, 1.5])
    measured = pd.DataFrame({"activation": "tanh", "g": g, "seed": 0, "n": 50, "lyapunov": np.log(g)})
    theory = pd.DataFrame({"activation": "tanh", "g": g, "lyapunov": np.log(g)})
    with figure_style():
        ax = dynamics.plot_lyapunov_vs_gain(measured, theory, g_critical=1.0)
        (note,) = [t for t in ax.texts if t.get_text().startswith("$g_c")]
        assert note.xy[1] == 0.0 and note.get_va() == "bottom"  # axes fraction 0: the bottom edge
        plt.close(ax.figure)


def test_the_cells_legend_names_the_radius_of_the_gate_blocks_above_the_panels():
    with figure_style():
        fig = dynamics.cells_figure(cells_tables([1.0, 2.0]))
        assert all(ax.get_legend() is None for ax in fig.axes)
        assert "gate block" in fig.legends[0].get_title().get_text()
        plt.close(fig)
