"""The builders of the figure set: tables (DataFrames read from CSV) → a matplotlib Figure.

Each builder reduces its tables with :mod:`gradlab.plots.data` and lays out
panels drawn by the ``plot_*`` functions; it never computes a network. The
registry :data:`gradlab.plots.figures.FIGURES` names them and imports this
module (and matplotlib with it) only when a figure is drawn, so that
``gradlab plot --list`` does not pay for matplotlib.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..cells.activations import get_activation
from ..errors import GradlabError
from ..io.schema import require_columns
from . import data
from .norms import (centred_norm, coincides, data_limits, label_exit, plot_growth_rates, plot_norm_heatmap,
                    plot_norms_vs_lag, plot_transient_growth)
from .spectrum import circle, plot_eigenvalues, plot_singular_values
from .style import (BOUND, CELL_COLORS, CELL_NAMES, COLUMN_WIDTH, GATED_RADIUS_LABEL, MEASURED,
                    NORM_LABEL, ON_TOP, RADIUS_LABEL, RATE, STATE_NORM_LABEL, TEXT_WIDTH,
                    category_colors, log10_axis, log_axis, outer_labels, panel_axes, panel_grid, panel_label,
                    ranked_colors, sequential_colors)
from .training import CHANCE, DIVERGED, nonfinite_updates, plot_final_metric, plot_grad_norm, plot_loss, setting_markers
from .truncation import RATE_LABEL as TRUNCATION_RATE_LABEL, plot_truncation_error

Tables = dict[str, pd.DataFrame]
CRITICAL_RATE = 0.05  # |growth| below this (nats/step) is called near-critical: e^(0.05·60) ≈ 20 over 60 steps
EXPLODES, VANISHES = "#fbeae8", "#e6eef8"  # pale backgrounds for growth > 0 and < 0

# What bounds ‖∂s_t/∂s_k‖ per step: σ_max(W_hh) γ_h for the vanilla RNN (every trajectory); for a gated cell,
# whose step Jacobian is not diag(φ') W, the largest ‖J_t‖₂ over the recorded steps (this trajectory only).
BOUND_TEXT = r"(\sigma_{\max}\gamma_h)"
GATED_BOUND_TEXT = r"(\mathrm{max}_t\|J_t\|_2)"  # \max would set t under it, as a limit


def theory_handles(measured_label: str = "measured", gated: bool = False) -> list[Line2D]:
    """Legend entries of the line styles shared by every curve: measured, bound and (vanilla RNN) ρ-rate."""
    if gated:
        return [Line2D([], [], color="black", label=measured_label, **MEASURED),
                Line2D([], [], color="black", label=rf"bound ${GATED_BOUND_TEXT}^{{t-k}}$ (this trajectory)",
                       **BOUND)]
    return [Line2D([], [], color="black", label=measured_label, **MEASURED),
            Line2D([], [], color="black", label=rf"bound ${BOUND_TEXT}^{{t-k}}$", **BOUND),
            Line2D([], [], color="black", label=r"rate $\rho^{t-k}$ (not a bound)", **RATE)]


def activation_title(activation) -> str:
    """'tanh (γ_h = 1)'; the name alone for an activation this gradlab does not know (a CSV may name one)."""
    try:
        gamma = get_activation(str(activation)).gamma
    except GradlabError:
        return str(activation)
    return rf"{activation} ($\gamma_h = {gamma:g}$)"


def facets(table: pd.DataFrame) -> list[tuple[str, str]]:
    """The (cell, activation) pairs of a table, in figure order: cells rnn, lstm, gru; activations tanh, sigmoid, …

    A panel per pair: runs of different cells are never averaged together. Without a ``cell`` column every
    row is a vanilla RNN's (:func:`gradlab.plots.data.cell_of`).
    """
    cells = data.cell_of(table)
    activations = table["activation"].astype(str) if "activation" in table.columns else pd.Series("", table.index)
    pairs = set(zip(cells, activations))
    cell_order = data.ordered(cells, preferred=tuple(CELL_COLORS))
    act_order = data.ordered(activations)
    return sorted(pairs, key=lambda p: (cell_order.index(p[0]), act_order.index(p[1])))


def in_facet(table: pd.DataFrame, facet: tuple[str, str]) -> pd.Series:
    """Rows of ``table`` in ``facet`` (cell, activation)."""
    cell, activation = facet
    rows = data.cell_of(table) == cell
    if "activation" in table.columns:
        rows &= table["activation"].astype(str) == activation
    return rows


def facet_title(facet: tuple[str, str], show_cell: bool) -> str:
    """A panel's title: 'tanh (γ_h = 1)', 'vanilla RNN, relu (γ_h = 1)' among other cells, 'LSTM (h, C)'.

    A gated cell's nonlinearities are fixed (σ and tanh), so its activation is not named.
    """
    cell, activation = facet
    if cell != "rnn":
        return CELL_NAMES.get(cell, cell)
    title = activation_title(activation) if activation else ""
    return ", ".join(p for p in (CELL_NAMES["rnn"] if show_cell or not title else "", title) if p)


def param_label(row: pd.Series, names=("init", "activation", "radius")) -> str:
    """'gaussian, tanh, ρ = 1.5' from whichever of ``names`` a run's row has."""
    parts = []
    for name in names:
        if name in row.index and pd.notna(row[name]):
            parts.append(rf"$\rho = {row[name]:g}$" if name == "radius" else str(row[name]))
    return ", ".join(parts) or str(row["run_id"])


def network_label(row: pd.Series) -> str:
    """One run's network in words: 'relu, ρ = 2'; 'LSTM (h, C), ρ = 1'; 'tanh, weights w.npz'."""
    cell = data.cell_of(row.to_frame().T).iloc[0]
    if data.from_weights(row.to_frame().T).iloc[0]:
        head = CELL_NAMES.get(cell, cell) if cell != "rnn" else str(row.get("activation", "")) or "RNN"
        return f"{head}, weights {Path(str(row['weights'])).name}"
    if cell != "rnn":
        return CELL_NAMES.get(cell, cell) + (rf", gate blocks $\rho = {row['radius']:g}$"
                                             if pd.notna(row.get("radius")) else "")
    return param_label(row, ("activation", "radius"))


def with_activation(table: pd.DataFrame, source: str) -> pd.DataFrame:
    """``table`` with its ``activation`` column: needed for a vanilla RNN (it sets γ_h), not for gated cells
    only, whose nonlinearities are fixed (an empty activation is filled in); GradlabError naming it else."""
    if "activation" in table.columns:
        return table
    if data.is_gated(table).all():
        return table.assign(activation="")
    return require_columns(table, ["activation"], source)


def shorten(names, at_most: int = 3) -> str:
    """'r1, r2, r3, …' — a few names of a list, for a one-line message."""
    names = [str(n) for n in names]
    return ", ".join(names[:at_most]) + (", …" if len(names) > at_most else "")


# ------------------------------------------------------------------ the builders

def norms_vs_lag(tables: Tables) -> plt.Figure:
    norms = tables["sweep_norms"]
    cells = data.ordered(data.cell_of(norms), preferred=tuple(CELL_COLORS))
    if len(cells) > 1:
        raise GradlabError(f"draws one cell at a time, and this sweep has runs of {', '.join(cells)}: "
                           "figure 'cells' compares cells")
    gated = cells[0] != "rnn"
    norms = with_activation(norms, "norms table")
    curves = data.lag_curves(norms, by=("activation", "radius"))
    activations = data.ordered(curves["activation"])
    color_of, mappable = sequential_colors(curves["radius"])
    # Two rows so that each measured curve is read against one theory at a time: the bound (σ_max γ_h)^(t−k)
    # above, the asymptotic rate ρ^(t−k) below. A gated cell has no ρ-rate (no single W_hh): one row.
    rows = [(rf"vs the bound ${GATED_BOUND_TEXT if gated else BOUND_TEXT}^{{t-k}}$ (dashed)",
             {"bound": True, "rate": False})]
    if not gated:
        rows.append((r"vs the rate $\rho^{t-k}$ (dotted)", {"bound": False, "rate": True}))
    blocks, columns = panel_grid(len(activations), what="activations")
    n_rows = blocks * len(rows)
    fig, grid = plt.subplots(n_rows, columns, figsize=(TEXT_WIDTH, 0.5 + 2.05 * n_rows if n_rows > 1 else 2.7),
                             squeeze=False, sharex=True)
    letter = 0
    for block in range(blocks):
        for row, (theory, which) in enumerate(rows):
            for col in range(columns):
                ax = grid[block * len(rows) + row][col]
                i = block * columns + col
                if i >= len(activations):
                    ax.remove()
                    continue
                act = activations[i]
                plot_norms_vs_lag(curves[curves["activation"] == act], ax=ax, color_of=color_of, **which)
                if row == 0:
                    ax.set_title(facet_title((cells[0], act), show_cell=False))
                ax.text(0.03, 0.04, theory, transform=ax.transAxes, fontsize=6.5, ha="left", va="bottom")
                panel_label(ax, letter)
                letter += 1
                ax.set_ylabel(STATE_NORM_LABEL if gated and not col else NORM_LABEL if not col else "")
                last_row = row == len(rows) - 1 and (block == blocks - 1 or i + columns >= len(activations))
                if last_row:
                    ax.xaxis.set_tick_params(which="both", labelbottom=True)
                else:
                    ax.set_xlabel("")
    axes = [ax for ax in grid.ravel() if ax.figure is fig and ax in fig.axes]
    fig.colorbar(mappable, ax=axes, label=r"initial $\rho$ of each gate block" if gated else r"initial $\rho(W_{hh})$",
                 aspect=40, pad=0.01)
    fig.legend(handles=theory_handles("measured (mean over t and seeds; band: seed range)", gated=gated),
               loc="outside upper center", ncols=3)
    return fig


def one_step_runs(norms: pd.DataFrame) -> list:
    """Runs whose norms are of one output step t only (``--pairs last``): a (t, k) grid of one row."""
    steps = norms.groupby("run_id")["t"].nunique()
    return steps.index[steps < 2].tolist()


def norm_heatmap(tables: Tables) -> plt.Figure:
    norms, spectrum = tables["norms"], tables["spectrum"]
    flat = one_step_runs(norms)
    if flat:
        t = norms.loc[norms["run_id"] == flat[0], "t"].iloc[0]
        raise GradlabError(f"needs runs with --pairs all or stride:K (a grid over t and k); {shorten(flat)} "
                           f"measured one output step only (t = {t:g}, --pairs last)")
    rho = spectrum[spectrum["kind"] == "eigenvalue"].groupby("run_id")["abs"].max()
    radius = norms.groupby("run_id")["radius"].first() if "radius" in norms.columns else pd.Series(dtype=float)
    runs = sorted(pd.unique(norms["run_id"]), key=lambda r: (radius.get(r, np.nan), rho.get(r, np.nan), r))
    grids = {r: data.pair_grid(norms[norms["run_id"] == r]) for r in runs}
    lo, hi = norms_range = data_limits(*(g for _, _, g in grids.values()), pad=0.0)
    norm = centred_norm(lo, hi)
    any_gated = bool(data.is_gated(norms).any())
    _, columns = panel_grid(len(runs), max_columns=3, what="runs")
    fig, axes = panel_axes(len(runs), height=2.6, row_height=2.3, max_columns=3, what="runs", sharey=True,
                           width=COLUMN_WIDTH + 0.4 if columns == 1 else TEXT_WIDTH)
    for i, (ax, r) in enumerate(zip(axes, runs)):
        t, k, grid = grids[r]
        plot_norm_heatmap(t, k, grid, ax=ax, norm=norm)
        rows = norms[norms["run_id"] == r]
        gated = bool(data.is_gated(rows.iloc[:1]).iloc[0])
        rate = data.rates(rows)
        regime = ("near-critical" if abs(rate["measured"]) < CRITICAL_RATE
                  else "vanishing" if rate["measured"] < 0 else "exploding")
        ax.set_title(f"{regime}: " + network_label(rows.iloc[0]))
        lines = ["growth per step (nats):", f"measured {signed(rate['measured'])}",
                 (r"bound $\ln\mathrm{max}_t\|J_t\|_2$ " if gated else r"bound $\ln(\sigma_{\max}\gamma_h)$ ")
                 + signed(rate["bound"])]
        if np.isfinite(rate["asymptotic"]):  # a gated cell has no ρ-rate
            lines.append(rf"$\ln\rho$ {signed(rate['asymptotic'])}")
        ax.text(0.97, 0.12, "\n".join(lines), transform=ax.transAxes, ha="right", va="bottom", fontsize=6.5,
                linespacing=1.25)  # on the grey t ≤ k
        panel_label(ax, i)
    outer_labels(axes, columns)
    cbar = fig.colorbar(axes[0].images[0], ax=axes, aspect=30, pad=0.01,
                        label=STATE_NORM_LABEL if any_gated else NORM_LABEL)
    cbar.ax.set_ylim(*norms_range)
    log10_axis(cbar.ax, "y")
    return fig


def signed(x: float) -> str:
    """'+0.30' / '−0.51' with a true minus sign; '0.00' for what rounds to zero (not '−0.00')."""
    x = round(float(x), 2)
    return "0.00" if x == 0 else f"{x:+.2f}".replace("-", "\u2212")


SPECTRUM_COLUMNS = frozenset({"run_id", "kind", "index", "real", "imag", "abs", "matrix"})
ANNOTATED = 2  # up to this many networks, σ_max and ρ are written beside each ★; more would overlap
MANY = 5       # from this many networks on, one ρ line and circle each would bury the data: ρ is in the legend


def distinct_networks(spec: pd.DataFrame) -> list:
    """Run ids with distinct spectra: the first run (in run order) of each set of runs with the same one.

    Runs that differ only in what does not touch W_hh (the activation, say) have the same matrix, so the
    same eigen- and singular values: drawing each would draw it several times over.
    """
    shared: dict = {}
    for run, rows in spec.groupby("run_id", sort=False):
        values = rows.sort_values(["kind", "index"])[["real", "imag", "abs"]].to_numpy(dtype=float)
        shared.setdefault(np.round(values, 12).tobytes(), []).append(run)
    return [runs[0] for runs in shared.values()]


def spectrum_groups(spec: pd.DataFrame, runs: list) -> tuple[list[str], list]:
    """The parameters that tell the networks ``runs`` apart (seed last resort), and one run per value of them.

    Parameters are the columns other than the spectrum's that are constant within each run and vary
    between ``runs``; the seed is left out unless nothing else varies. The representative of a group is
    its first run (the smallest seed), and groups are ordered by their values.
    """
    first = spec.drop_duplicates("run_id").set_index("run_id").loc[runs]
    varying = [c for c in first.columns if c not in SPECTRUM_COLUMNS and first[c].nunique(dropna=False) > 1]
    by = [c for c in varying if c != "seed"] or varying
    if not by or len(runs) <= 1:
        return by, list(runs)
    cell_rank = {c: i for i, c in enumerate(CELL_COLORS)}  # rnn, lstm, gru: the order of every figure
    order = first.reset_index().sort_values(
        by + (["seed"] if "seed" in first.columns else []), kind="stable",
        key=lambda col: col.map(lambda c: cell_rank.get(c, len(cell_rank))) if col.name == "cell" else col)
    return by, order.groupby(by, sort=False, dropna=False)["run_id"].first().tolist()


MATRIX_TEXT = {"W_hh": "W_{hh}", "J_T": "J_T"}  # mathtext of spectrum.csv's matrices (data.spectrum_matrix)


def matrix_text(matrix: str) -> str:
    return MATRIX_TEXT.get(matrix, matrix.replace("_", r"\_"))


def spectrum_label(row: pd.Series, by: list[str]) -> str:
    """Legend text of one network: its init in words, or the parameters that set it apart.

    A gated cell's spectrum is of J_T, the last step Jacobian of sequence 0 (not of a W_hh); a run of a
    weights file has no init: each is named as what it is.
    """
    one = row.to_frame().T
    matrix = data.spectrum_matrix(one).iloc[0]
    if by == ["init"] or not by:
        if matrix != "W_hh":
            cell = data.cell_of(one).iloc[0]
            return f"{CELL_NAMES.get(cell, cell)}: ${matrix_text(matrix)}$" + \
                (", last step, sequence 0" if matrix == "J_T" else "")
        if data.from_weights(one).iloc[0]:
            return rf"$W_{{hh}}$ of {Path(str(row['weights'])).name}"
        return INIT_LABELS.get(row.get("init"), param_label(row, ("init", "radius")))
    parts = []
    for name in by:
        value = row[name]
        if name == "radius":
            parts.append(rf"$\rho = {value:g}$")
        elif isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
            parts.append(f"{name} = {value:g}")
        else:
            parts.append(str(value))
    if "cell" in by:  # cells side by side: say which matrix each one's spectrum is of
        parts.append(f"${matrix_text(matrix)}$")
    return ", ".join(parts)


def rmt_applies(first: pd.Series) -> bool:
    """Whether random-matrix theory describes a run's singular values: a W_hh drawn by its init (not a weights
    file, not a gated cell's J_T), rescaled to its radius."""
    one = first.to_frame().T
    scale_by = first.get("scale_by")
    return (data.spectrum_matrix(one).iloc[0] == "W_hh" and not data.from_weights(one).iloc[0]
            and (scale_by is None or pd.isna(scale_by) or scale_by == "radius") and pd.notna(first.get("init")))


def spectrum(tables: Tables) -> plt.Figure:
    spec = tables["spectrum"]
    all_runs = list(dict.fromkeys(spec["run_id"]))
    distinct = distinct_networks(spec)
    by, runs = spectrum_groups(spec, distinct)
    rhos = spec[spec["kind"] == "eigenvalue"].groupby("run_id")["abs"].max()
    firsts = spec.drop_duplicates("run_id").set_index("run_id")
    matrix_of = dict(zip(firsts.index, data.spectrum_matrix(firsts)))
    cell_of = dict(zip(firsts.index, data.cell_of(firsts)))
    matrices: dict[str, list[str]] = {}
    for r in runs:
        matrices.setdefault(matrix_of[r], [])
        if cell_of[r] not in matrices[matrix_of[r]]:
            matrices[matrix_of[r]].append(cell_of[r])
    only_w = set(matrices) == {"W_hh"}
    # Colours: by rank along viridis for one numeric parameter (the radii of a sweep), else the colour cycle.
    numeric = len(by) == 1 and pd.api.types.is_numeric_dtype(firsts[by[0]])
    if numeric:
        ranked = ranked_colors(firsts.loc[runs, by[0]])
        color_of = {r: ranked[float(firsts.loc[r, by[0]])] for r in runs}
    elif len(runs) <= len(plt.rcParams["axes.prop_cycle"]):
        color_of = {r: f"C{i}" for i, r in enumerate(runs)}
    else:  # more groups than the cycle has colours: evenly along viridis, in group order
        ranked = ranked_colors(range(len(runs)))
        color_of = {r: ranked[float(i)] for i, r in enumerate(runs)}
    annotate, many = len(runs) <= ANNOTATED, len(runs) >= MANY
    # Runs of one ρ (the figure's point: same ρ, different σ_max) share one ρ line and circle, drawn in black
    # on top; one per run in its colour would hide all but the last under each other.
    shared_rho = len(runs) > 1 and coincides(np.log10(rhos[runs].to_numpy()), np.log10(rhos[runs].max()))
    fig, (ax_eig, ax_sv) = plt.subplots(1, 2, figsize=(TEXT_WIDTH, 2.9), width_ratios=(1, 1.45))
    handles = []
    sizes = set()
    # Largest ρ first: each smaller disc of eigenvalues is drawn on top of the larger ones.
    drawn = sorted(runs, key=lambda r: -rhos[r]) if numeric else runs
    for i, r in enumerate(drawn):
        rows = spec[spec["run_id"] == r]
        first = rows.iloc[0]
        rho = rhos[r]
        n = int((rows["kind"] == "singular_value").sum())
        sizes.add(n)
        theory = data.theory_singular_values(first.get("init"), n, rho) if rmt_applies(first) else None
        label = spectrum_label(first, by)
        color = color_of[r]
        per_run_rho = not shared_rho and not many
        plot_eigenvalues(rows, ax=ax_eig, color=color, unit_circle=(i == 0), rho_circle=per_run_rho)
        plot_singular_values(rows, ax=ax_sv, color=color, theory=theory, rho_line=per_run_rho, annotate=annotate,
                             matrix=matrix_text(matrix_of[r]) if len(matrices) == 1 else None)
        if not annotate:
            smax = rows.loc[rows["kind"] == "singular_value", "abs"].max()
            label += rf": $\sigma_{{\max}} = {smax:.2f}$" + ("" if "radius" in by else rf", $\rho = {rho:.2f}$")
        handles.append(Line2D([], [], color=color, marker="o", markersize=2.5, linewidth=0.6, label=label))
    if shared_rho:
        rho = float(rhos[runs].mean())
        circle(ax_eig, rho, color="black", zorder=1.5, **RATE)  # under the eigenvalues that lie on it
        ax_sv.axhline(rho, **{**RATE, **ON_TOP})
        ax_sv.annotate(rf"$\rho = {rho:.2f}$ (every run)", (1.0, rho), xycoords=("axes fraction", "data"),
                       xytext=(-2, 2), textcoords="offset points", ha="right", va="bottom", fontsize=6.5)
    # A theory entry only for a line drawn: none for J_T, a weights file, or where it is the measured line.
    theory_entries = []
    if any(line.get_gid() == "theory" for line in ax_sv.lines):
        theory_entries.append(Line2D([], [], color="black", label="random-matrix theory", **BOUND))
    if not many or shared_rho:
        theory_entries.append(Line2D([], [], color="black", label=r"$\rho$ (dotted: also the circle $|\lambda| = \rho$)",
                                     **RATE))
    star = (r"$\sigma_{\max} = \gamma_W$, which sets the bound" if only_w
            else r"$\sigma_{\max}$" + (r" (of $W_{hh}$: $\gamma_W$)" if "W_hh" in matrices else ""))
    theory_entries.append(Line2D([], [], color="black", marker="*", markersize=7, linestyle="none", label=star))
    ax_sv.set_ylim(0, 1.12 * spec.loc[spec["kind"] == "singular_value", "abs"].max())
    # What the legend leaves out, in its title: the other seeds, and runs that share a matrix (one per activation).
    title = None
    what = r"$W_{hh}$" if only_w else "matrix"
    if len(runs) < len(all_runs):
        names = ", ".join(r"$\rho$" if b == "radius" else b for b in by)
        title = f"one {what} per {names}"
        if len(runs) < len(distinct) and "seed" in firsts.columns:
            seeds = set(firsts.loc[runs, "seed"])
            title += f" (seed {seeds.pop()})" if len(seeds) == 1 else " (its first seed)"
        title += f"\nof {len(all_runs)} runs" + (f", {len(distinct)} distinct {what}"
                                                 if len(distinct) < len(all_runs) else "")
    if annotate:
        ax_sv.legend(handles=handles + theory_entries, loc="upper right", title=title,
                     **({"alignment": "left"} if title else {}))
    else:  # beside the panel, one network per line (largest ρ on top, as the curves lie)
        ax_sv.legend(handles=handles + theory_entries, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                     borderaxespad=0.0, title=title, handlelength=1.6, fontsize=6.5, title_fontsize=6.5,
                     alignment="left")
    # several matrices (W_hh of the RNN runs, J_T of the gated ones): each legend entry names its own
    ax_eig.set_title(rf"eigenvalues $\lambda_i({matrix_text(next(iter(matrices)))})$" if len(matrices) == 1
                     else r"eigenvalues $\lambda_i$", loc="right")
    ax_sv.set_xlim(0, max(sizes) + 1)  # the largest matrix (an LSTM's J_T is 2n × 2n) sets the range
    size = next(iter(sizes)) if len(sizes) == 1 else None
    ax_sv.set_title("singular values" + ("" if size is None else f", $n = {size}$" if only_w
                                         else rf", ${size}\times{size}$"), loc="right")
    panel_label(ax_eig, 0)
    panel_label(ax_sv, 1)
    return fig


def growth_rate(tables: Tables) -> plt.Figure:
    runs = tables["runs"]
    runs = with_activation(runs, "runs table")
    runs = runs.assign(cell=data.cell_of(runs))
    summary = data.growth_summary(runs, by=("cell", "activation", "radius"))
    panels = facets(summary)
    gated = data.is_gated(summary)
    show_cell = summary["cell"].nunique() > 1
    fig, axes = panel_axes(len(panels), height=2.5, row_height=2.2, what="panels (cell, activation)", sharey=True)
    _, columns = panel_grid(len(panels))
    for i, (ax, facet) in enumerate(zip(axes, panels)):
        rows = summary[in_facet(summary, facet)]
        color = CELL_COLORS.get(facet[0], f"C{i}") if show_cell else f"C{i}"
        plot_growth_rates(rows, ax=ax, color=color)
        ax.axhspan(0, 1e3, color=EXPLODES, linewidth=0, zorder=-1)
        ax.axhspan(-1e3, 0, color=VANISHES, linewidth=0, zorder=-1)
        ax.set_title(facet_title(facet, show_cell))
        if facet[0] != "rnn":
            ax.set_xlabel(GATED_RADIUS_LABEL)
        panel_label(ax, i)
    outer_labels(axes, columns)
    lo = np.nanmin([summary["lo"].min(), summary["log_rho"].min()])
    hi = np.nanmax([summary["hi"].max(), summary["bound_rate"].max()])
    axes[0].set_ylim(lo - 0.08 * (hi - lo), hi + 0.08 * (hi - lo))
    state = "s" if gated.any() else "h"
    handles = [Line2D([], [], color="black", marker="o",
                      label=rf"measured slope of $\ln\|\partial {state}_T/\partial {state}_k\|$ (band: seed range)",
                      **MEASURED),
               Line2D([], [], color="black", label=(r"bound $\ln(\sigma_{\max}\gamma_h)$" if not gated.any()
                                                    else r"bound $\ln\mathrm{max}_t\|J_t\|_2$ (this trajectory)"
                                                    if gated.all() else
                                                    r"bound: RNN $\ln(\sigma_{\max}\gamma_h)$, gated $\ln\mathrm{max}_t\|J_t\|_2$"),
                      **BOUND)]
    if any(line.get_gid() == "rate" for ax in axes for line in ax.lines):
        handles.append(Line2D([], [], color="black", label=r"rate $\ln\rho$" + (
            " (vanilla RNN; a gated cell has no single $W_{hh}$)" if gated.any() else ""), **RATE))
    handles += [Patch(color=EXPLODES, label="> 0: explodes"), Patch(color=VANISHES, label="< 0: vanishes")]
    fig.legend(handles=handles, loc="outside upper center", ncols=3 if gated.any() else len(handles),
               columnspacing=0.8, handlelength=1.8)
    return fig


def clip_settings(table: pd.DataFrame) -> pd.DataFrame:
    """Add ``setting`` ("none", "norm τ=1", "value c=0.5") and ``tau`` (norm threshold, else NaN) columns.

    Reads the training parameters ``clipping`` and ``threshold`` (gradlab.training.TrainConfig).
    """
    require_columns(table, ["clipping"], "training table")
    threshold = table["threshold"] if "threshold" in table.columns else pd.Series(np.nan, index=table.index)
    symbol = {"norm": "τ", "value": "c"}
    setting = [c if c == "none" or pd.isna(t) else f"{c} {symbol.get(c, 'θ')}={t:g}"
               for c, t in zip(table["clipping"], threshold)]
    return table.assign(setting=setting, tau=threshold.where(table["clipping"] == "norm"))


def showcase_run(train: pd.DataFrame, final: pd.DataFrame, by: str = "activation", order=None) -> tuple[str, float]:
    """The (activation, radius) whose training curves the clipping figure shows.

    Where clipping matters: the smallest radius at which training without
    clipping diverged (non-finite gradients), in the first activation where
    that happens; otherwise the first activation at its largest radius, where
    the gradients are largest. ``by`` names the column of the panels
    (``activation``, or a (cell, activation) key) and ``order`` their order
    (default :func:`gradlab.plots.data.ordered`).
    """
    panels = list(order) if order is not None else data.ordered(train[by])
    unclipped = train[train["setting"] == "none"]
    blew_up = unclipped[unclipped["skipped"].astype(bool)]
    diverged = final[(final["setting"] == "none") & (final["n_diverged"] > 0)]
    for panel in panels:
        radii = sorted(set(blew_up.loc[blew_up[by] == panel, "radius"])
                       | set(diverged.loc[diverged[by] == panel, "radius"]))
        if radii:
            return panel, radii[0]
    return panels[0], float(train.loc[train[by] == panels[0], "radius"].max())


def typical_range(log_values: pd.Series, rows: pd.DataFrame, pad: float = 0.5) -> tuple[float, float]:
    """Y-limits (log10) that runs which blew up do not set.

    From the 1st to the 99th percentile of the finite ``log_values`` of each
    run (``run_id``) that never had a non-finite update
    (:func:`gradlab.plots.training.nonfinite_updates`), widest over those
    runs, padded by ``pad`` decades below and 3 × ``pad`` above (room for the
    divergence note); every run counts when all of them blew up.
    """
    blew_up = nonfinite_updates(rows).groupby(rows["run_id"]).transform("any")
    keep = np.isfinite(log_values) & (~blew_up if not blew_up.all() else True)
    per_run = log_values[keep].groupby(rows.loc[keep, "run_id"])
    return float(per_run.quantile(0.01).min()) - pad, float(per_run.quantile(0.99).max()) + 3 * pad


def facet_keys(table: pd.DataFrame) -> pd.Series:
    """Each row's panel as one text key 'cell/activation' (:func:`facets`), for grouping."""
    activation = table["activation"].astype(str) if "activation" in table.columns else ""
    return data.cell_of(table) + "/" + activation


def training(tables: Tables) -> plt.Figure:
    train, evaluation = clip_settings(tables["training"]), clip_settings(tables["evaluation"])
    require_columns(train, ["activation", "radius"], "training table")
    require_columns(evaluation, ["activation", "radius"], "evaluation table")
    train, evaluation = train.assign(panel=facet_keys(train)), evaluation.assign(panel=facet_keys(evaluation))
    settings = sorted(pd.unique(train["setting"]), key=lambda s: (s != "none", s))
    color_of = category_colors(settings)
    metric_name = str(evaluation["metric_name"].iloc[0])
    chance = data.chance_level(tables, metric_name)
    final = data.final_metrics(evaluation, by=("panel", "setting", "radius"))
    panels = facets(evaluation)
    keys = ["/".join(f) for f in panels]
    show_cell = len({cell for cell, _ in panels}) > 1
    key, radius = showcase_run(train, final, by="panel", order=keys)
    shown = train[(train["panel"] == key) & (train["radius"] == radius)]
    # one run per setting: the smallest seed (a sweep without a seed parameter has one run per setting)
    seed = shown["seed"].min() if "seed" in shown.columns else None
    if seed is not None:
        shown = shown[shown["seed"] == seed]

    final_rows, columns = panel_grid(len(panels), what="panels (cell, activation)")
    fig = plt.figure(figsize=(TEXT_WIDTH, 2.3 + 2.3 * final_rows))
    fig.get_layout_engine().set(wspace=0.05)  # room between (a)'s last tick label and (b)'s y label
    grid = fig.add_gridspec(1 + final_rows, 2 * columns)
    ax_loss, ax_grad = fig.add_subplot(grid[0, :columns]), fig.add_subplot(grid[0, columns:])
    finals = [fig.add_subplot(grid[1 + i // columns, 2 * (i % columns):2 * (i % columns) + 2])
              for i in range(len(panels))]
    for s in settings:
        run = shown[shown["setting"] == s]
        if run.empty:
            continue
        plot_loss(run, ax=ax_loss, color=color_of[s], label=s, chance=chance if metric_name == "mse" else None)
        plot_grad_norm(run, ax=ax_grad, color=color_of[s], threshold=run["tau"].iloc[0])
    # A run that blows up reaches 10^100 in a few updates; the axes show what the other runs reach
    # (the blown-up curve leaves through the top; its first non-finite update is marked × and noted).
    ax_loss.set_ylim(*(10.0 ** np.array(typical_range(np.log10(shown["loss"].where(shown["loss"] > 0)), shown))))
    ax_grad.set_ylim(*typical_range(np.log10(shown["grad_norm"].where(shown["grad_norm"] > 0)), shown))
    log_axis(ax_loss, "y")
    log10_axis(ax_grad, "y")
    cell, activation = panels[keys.index(key)]
    network = CELL_NAMES.get(cell, cell) if cell != "rnn" else (f"{CELL_NAMES['rnn']}, " if show_cell else "") + activation
    context = rf"{network}, $\rho = {radius:g}$" + (f", seed {seed}" if seed is not None else "")
    ax_loss.set_title(context, loc="right")
    ax_grad.set_title(context, loc="right")
    marker_of = setting_markers(settings)
    metric_text = METRIC_NAMES.get(metric_name, metric_name.replace("_", " "))
    for i, (ax, facet) in enumerate(zip(finals, panels)):
        plot_final_metric(final[final["panel"] == "/".join(facet)], ax=ax, color_of=color_of, chance=chance,
                          log=metric_name == "mse", marker_of=marker_of, metric_label=f"final {metric_text} (held out)")
        ax.set_title(facet_title(facet, show_cell), loc="right")
        ax.set_xlabel(GATED_RADIUS_LABEL if facet[0] != "rnn" else RADIUS_LABEL)
    outer_labels(finals, columns)  # a label said by a neighbour; ρ(W_hh) and ρ of each gate block both stay
    if metric_name == "mse":
        lo = np.nanmin(final["lo"]) if np.isfinite(final["lo"]).any() else 1e-3
        hi = np.nanmax(final["hi"]) if np.isfinite(final["hi"]).any() else 1.0
        for ax in finals:  # one scale for every activation, so the panels compare
            ax.set_ylim(lo / 1.3, max(hi, chance or hi) * 1.3)
            log_axis(ax, "y")
    for i, ax in enumerate([ax_loss, ax_grad, *finals]):
        panel_label(ax, i)
    handles = [Line2D([], [], color=color_of[s], marker=marker_of[s][0], markersize=marker_of[s][1],
                      markeredgewidth=0, label=f"clipping: {s}") for s in settings]
    handles += [Line2D([], [], color="black", marker="o", markersize=1.8, linestyle="none", label="clipped update"),
                Line2D([], [], color="black", label="diverged (non-finite)", **DIVERGED),
                Line2D([], [], color="black", label=r"threshold $\tau$", **RATE)]
    if chance is not None:
        handles.append(Line2D([], [], label=f"chance ({chance:.3g})", **CHANCE))
    fig.legend(handles=handles, loc="outside upper center", ncols=4, columnspacing=0.9, handlelength=1.6)
    return fig


METRIC_NAMES = {"mse": "MSE", "error_rate": "error rate"}  # gradlab.tasks metric names as axis text


def truncation(tables: Tables) -> plt.Figure:
    table = tables["truncation"]
    table = table.assign(panel=facet_keys(table))
    curves = data.truncation_curves(table, by=("panel", "radius"))
    panels = facets(table)
    show_titles = "activation" in table.columns or len(panels) > 1
    show_cell = len({cell for cell, _ in panels}) > 1
    # A handful of unevenly spaced radii (0.9, 1, 1.1 next to 2): a colour per radius by rank, named in the
    # legend; colours by value (a colour bar) made the three around 1 look alike.
    color_of = ranked_colors(curves["radius"])
    _, columns = panel_grid(len(panels), what="panels (cell, activation)")
    fig, axes = panel_axes(len(panels), height=2.6, row_height=2.3, what="panels (cell, activation)", sharey=True,
                           width=COLUMN_WIDTH + 0.6 if len(panels) == 1 else TEXT_WIDTH)
    limits = data_limits(curves["lo"], curves["hi"])  # one y-range: the panels share their y axis
    for i, (ax, facet) in enumerate(zip(axes, panels)):
        # ρ^K is the rate of a linear network with one W_hh: not drawn for a gated cell (ρ of its gate blocks)
        plot_truncation_error(curves[curves["panel"] == "/".join(facet)], ax=ax, color_of=color_of.__getitem__,
                              rate=facet[0] == "rnn", limits=limits)
        if show_titles:
            ax.set_title(facet_title(facet, show_cell) + sizes_of(table))
        if len(panels) > 1:
            panel_label(ax, i)
    outer_labels(axes, columns)
    gated = [f[0] != "rnn" for f in panels]
    radii = [Line2D([], [], color=c, marker="o", markersize=2.5, label=f"{r:g}")
             for r, c in sorted(color_of.items(), reverse=True)]  # largest on top, as the curves lie
    axes[min(columns, len(axes)) - 1].legend(
        handles=radii, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, handlelength=1.4,
        title=(r"initial $\rho(W_{hh})$" if not any(gated) else r"initial $\rho$ (each gate block)" if all(gated)
               else r"initial $\rho$"))
    handles = [Line2D([], [], color="black", marker="o", markersize=2.5, label="measured (band: seeds)",
                      **MEASURED)]
    if not all(gated):
        label = (TRUNCATION_RATE_LABEL.replace(r"for $\rho<1$:", r"for $\rho<1$, vanilla RNN:") if any(gated)
                 else TRUNCATION_RATE_LABEL)
        handles.append(Line2D([], [], color="black", label=label, **RATE))
    handles += [h for ax in axes for h in ax.get_legend_handles_labels()[0] if h.get_label().startswith("float64")][:1]
    fig.legend(handles=handles, loc="outside upper center", ncols=1)
    return fig


INIT_LABELS = {"gaussian": r"Gaussian $W_{hh}$ (non-normal)", "orthogonal": r"orthogonal $W_{hh}$ (normal)",
               "identity": r"identity $W_{hh}$ (normal)"}


def transient_growth(tables: Tables) -> plt.Figure:
    norms = tables["norms"]
    run_ids = norms["run_id"].astype(str)
    gated = data.is_gated(norms)
    if gated.any():
        cells = ", ".join(data.ordered(data.cell_of(norms)[gated]))
        raise GradlabError(f"compares W_hh initialisations of vanilla RNNs (--cell rnn) against ρ^(t−k); "
                           f"{shorten(run_ids[gated].unique())}: cell {cells}, which has no single W_hh "
                           "and no ρ-rate")
    no_init = norms["init"].isna() if "init" in norms.columns else pd.Series(True, index=norms.index)
    untold = data.from_weights(norms) | no_init
    if untold.any():
        raise GradlabError(f"compares W_hh initialisations (--init) at one ρ; {shorten(run_ids[untold].unique())}: "
                           "weights from a file (--weights), no init")
    require_columns(norms, ["init", "radius"], "norms table")
    curves = data.lag_curves(norms, by=("init", "radius"))
    radius = curves["radius"].min()
    curves = curves[curves["radius"] == radius]
    inits = list(dict.fromkeys(curves["init"]))
    color_of = category_colors(inits)
    by_init = {init: curves[curves["init"] == init].sort_values("lag") for init in inits}
    # A normal W_hh (orthogonal) follows ρ^(t−k) exactly, and its bound is the same line (σ_max = ρ):
    # it is drawn wide and pale under the ρ-rate, and its legend entry says so.
    on_rate = [i for i, c in by_init.items() if coincides(c["log10_norm"], c["log10_rate"])]
    labels = {i: INIT_LABELS.get(i, i) for i in inits}
    labels.update({i: labels[i] + r" $=$ bound $= \rho^{t-k}$" for i in on_rate
                   if coincides(by_init[i]["log10_bound"], by_init[i]["log10_norm"])})
    fig, (ax_abs, ax_ratio) = plt.subplots(1, 2, figsize=(TEXT_WIDTH, 2.9))

    # (a) the norms, each against its bound; ρ^(t−k) in black on top (the same line for inits of one ρ)
    plot_norms_vs_lag(curves, ax=ax_abs, by="init", color_of=color_of, labels=labels, bound=False, rate=False,
                      wide=on_rate)
    bounds = [(c["lag"], c["log10_bound"], color_of[i]) for i, c in by_init.items()
              if not coincides(c["log10_bound"], c["log10_norm"])]
    for lag, bound, color in bounds:
        ax_abs.plot(lag, bound, color=color, gid="bound", **BOUND)
    drawn: list[np.ndarray] = []
    for c in by_init.values():
        rate = c["log10_rate"].to_numpy()
        if not any(len(d) == len(rate) and coincides(d, rate) for d in drawn):
            ax_abs.plot(c["lag"], rate, gid="rate", **{**RATE, **ON_TOP})
            drawn.append(rate)
    lo, hi = ax_abs.get_ylim()
    ax_abs.set_ylim(lo, hi + 0.12 * (hi - lo))  # room for the bound's label where it leaves the axes
    log10_axis(ax_abs, "y")
    for lag, bound, color in bounds:
        factor = 10 ** float(np.mean(bound / lag))  # σ_max γ_h, from lag · log10(σ_max γ_h)
        label_exit(ax_abs, lag, bound, r"bound $(\sigma_{\max}\gamma_h)^{t-k} = " + f"{factor:.2f}" + "^{t-k}$",
                   color)
    # (b) the ratio to ρ^(t−k), with the n → ∞ law ‖G^k‖ of a Gaussian matrix over the whole range of lags:
    # drawn for a Gaussian W_hh rescaled to its ρ with a linear φ, where the measured ratio is ‖W^k‖/ρ^k
    # (with tanh, say, it is ‖∏ diag(φ'(a_j)) W‖/ρ^k, which the law does not describe)
    lag = np.arange(0, curves["lag"].max() + 1)
    ginibre = data.ginibre_power_norm(lag) if ginibre_applies(norms) else np.array([])
    plot_transient_growth(curves, ax=ax_ratio, color_of=color_of, labels=labels,
                          include=ginibre[lag[:ginibre.size] >= curves["lag"].min()])
    theory = theory_handles()[1:]
    if ginibre.size:
        theory += ax_ratio.plot(lag, ginibre, color="black", linewidth=0.7, linestyle="-.",
                                label=r"Gaussian $W_{hh}$, $n\to\infty$: $\sqrt{(k+1)^{k+1}/k^{k}}$")
    # One legend for both panels, above them: inside, it would cover the data of (a), which fill its diagonal.
    measured, _ = ax_abs.get_legend_handles_labels()
    fig.legend(handles=measured + theory, loc="outside upper center", ncols=3, columnspacing=1.2)
    first = norms.iloc[0]
    context = ", ".join(p for p in (f"{first['activation']} " + r"$\varphi$" if "activation" in norms else "",
                                    f"$n = {first['hidden']}$" if "hidden" in norms else "",
                                    rf"$\rho(W_{{hh}}) = {radius:g}$") if p)
    ax_abs.set_title(context, loc="right")
    ax_ratio.set_title(r"ratio to the asymptotic rate $\rho^{t-k}$", loc="right")
    panel_label(ax_abs, "a")
    panel_label(ax_ratio, "b")
    return fig


def ginibre_applies(norms: pd.DataFrame) -> bool:
    """Whether the Gaussian law ‖G^k‖₂ → √((k+1)^(k+1)/k^k) describes a transient-growth run set: its Gaussian
    runs have a linear φ and a W_hh rescaled to its radius (``scale_by`` radius)."""
    gaussian = norms[norms["init"] == "gaussian"]
    if gaussian.empty or "activation" not in gaussian.columns:
        return False
    scale_by = gaussian["scale_by"] if "scale_by" in gaussian.columns else pd.Series("radius", gaussian.index)
    return bool((gaussian["activation"] == "linear").all() and (scale_by.fillna("radius") == "radius").all())


def sizes_of(table: pd.DataFrame) -> str:
    """', n = 32, T = 100' from the hidden/steps columns when each has one value."""
    parts = [f"${symbol} = {table[col].iloc[0]:g}$" for col, symbol in (("hidden", "n"), ("steps", "T"))
             if col in table.columns and table[col].nunique() == 1]
    return "".join(", " + p for p in parts)


def activations_of(table: pd.DataFrame) -> list[str]:
    return data.ordered(table["activation"]) if "activation" in table.columns else []
