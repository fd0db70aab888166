"""The builders of the figure set: tables (DataFrames read from CSV) → a matplotlib Figure.

Each builder reduces its tables with :mod:`gradlab.plots.data` and lays out
panels drawn by the ``plot_*`` functions; it never computes a network. The
registry :data:`gradlab.plots.figures.FIGURES` names them and imports this
module (and matplotlib with it) only when a figure is drawn, so that
``gradlab plot --list`` does not pay for matplotlib.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import colors
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..cells.activations import get_activation
from ..io.schema import require_columns
from . import data
from .norms import (coincides, data_limits, label_exit, plot_growth_rates, plot_norm_heatmap, plot_norms_vs_lag,
                    plot_transient_growth)
from .spectrum import circle, plot_eigenvalues, plot_singular_values
from .style import (BOUND, COLUMN_WIDTH, MEASURED, ON_TOP, RATE, TEXT_WIDTH, category_colors, log10_axis, log_axis,
                    panel_label, ranked_colors, sequential_colors)
from .training import CHANCE, DIVERGED, nonfinite_updates, plot_final_metric, plot_grad_norm, plot_loss, setting_markers
from .truncation import RATE_LABEL as TRUNCATION_RATE_LABEL, plot_truncation_error

Tables = dict[str, pd.DataFrame]
CRITICAL_RATE = 0.05  # |growth| below this (nats/step) is called near-critical: e^(0.05·60) ≈ 20 over 60 steps
EXPLODES, VANISHES = "#fbeae8", "#e6eef8"  # pale backgrounds for growth > 0 and < 0


def theory_handles(measured_label: str = "measured") -> list[Line2D]:
    """Legend entries of the line styles shared by every curve: measured, bound, ρ-rate."""
    return [Line2D([], [], color="black", label=measured_label, **MEASURED),
            Line2D([], [], color="black", label=r"bound $(\sigma_{\max}\gamma_h)^{t-k}$", **BOUND),
            Line2D([], [], color="black", label=r"rate $\rho^{t-k}$ (not a bound)", **RATE)]


def activation_title(activation: str) -> str:
    gamma = get_activation(activation).gamma
    return rf"{activation} ($\gamma_h = {gamma:g}$)"


def param_label(row: pd.Series, names=("init", "activation", "radius")) -> str:
    """'gaussian, tanh, ρ = 1.5' from whichever of ``names`` a run's row has."""
    parts = []
    for name in names:
        if name in row.index and pd.notna(row[name]):
            parts.append(rf"$\rho = {row[name]:g}$" if name == "radius" else str(row[name]))
    return ", ".join(parts) or str(row["run_id"])


# ------------------------------------------------------------------ the builders

def norms_vs_lag(tables: Tables) -> plt.Figure:
    curves = data.lag_curves(tables["sweep_norms"], by=("activation", "radius"))
    activations = data.ordered(curves["activation"])
    color_of, mappable = sequential_colors(curves["radius"])
    # Two rows so that each measured curve is read against one theory at a time:
    # the bound (σ_max γ_h)^(t−k) above, the asymptotic rate ρ^(t−k) below.
    fig, axes = plt.subplots(2, len(activations), figsize=(TEXT_WIDTH, 4.6), squeeze=False, sharex=True)
    rows = ((r"vs the bound $(\sigma_{\max}\gamma_h)^{t-k}$ (dashed)", {"bound": True, "rate": False}),
            (r"vs the rate $\rho^{t-k}$ (dotted)", {"bound": False, "rate": True}))
    for row, (theory, which) in enumerate(rows):
        for col, act in enumerate(activations):
            ax = axes[row][col]
            plot_norms_vs_lag(curves[curves["activation"] == act], ax=ax, color_of=color_of, **which)
            if row == 0:
                ax.set_title(activation_title(act))
            ax.text(0.03, 0.04, theory, transform=ax.transAxes, fontsize=6.5, ha="left", va="bottom")
            panel_label(ax, "abcdefghijkl"[row * len(activations) + col])
            if col:
                ax.set_ylabel("")
            if row == 0:
                ax.set_xlabel("")
    fig.colorbar(mappable, ax=axes.ravel().tolist(), label=r"initial $\rho(W_{hh})$", aspect=40, pad=0.01)
    fig.legend(handles=theory_handles("measured (mean over t and seeds; band: seed range)"),
               loc="outside upper center", ncols=3)
    return fig


def norm_heatmap(tables: Tables) -> plt.Figure:
    norms, spectrum = tables["norms"], tables["spectrum"]
    rho = spectrum[spectrum["kind"] == "eigenvalue"].groupby("run_id")["abs"].max()
    runs = sorted(pd.unique(norms["run_id"]), key=lambda r: (rho.get(r, np.nan), r))
    grids = {r: data.pair_grid(norms[norms["run_id"] == r]) for r in runs}
    lo, hi = norms_range = data_limits(*(g for _, _, g in grids.values()), pad=0.0)
    norm = colors.TwoSlopeNorm(0.0, min(lo, -1e-9), max(hi, 1e-9))
    fig, axes = plt.subplots(1, len(runs), figsize=(TEXT_WIDTH, 2.6), squeeze=False, sharey=True)
    for i, (ax, r) in enumerate(zip(axes[0], runs)):
        t, k, grid = grids[r]
        plot_norm_heatmap(t, k, grid, ax=ax, norm=norm)
        rows = norms[norms["run_id"] == r]
        rate = data.rates(rows)
        regime = ("near-critical" if abs(rate["measured"]) < CRITICAL_RATE
                  else "vanishing" if rate["measured"] < 0 else "exploding")
        first = rows.iloc[0]
        ax.set_title(f"{regime}: " + param_label(first, ("activation", "radius")))
        ax.text(0.97, 0.12, "growth per step (nats):\n"
                f"measured {signed(rate['measured'])}\n"
                rf"bound $\ln(\sigma_{{\max}}\gamma_h)$ {signed(rate['bound'])}" "\n"
                rf"$\ln\rho$ {signed(rate['asymptotic'])}",
                transform=ax.transAxes, ha="right", va="bottom", fontsize=6.5, linespacing=1.25)  # on the grey t ≤ k
        panel_label(ax, "abcdefgh"[i])
        if i:
            ax.set_ylabel("")
    cbar = fig.colorbar(axes[0][0].images[0], ax=axes[0].tolist(), aspect=30, pad=0.01,
                        label=r"$\|\partial h_t/\partial h_k\|_2$")
    cbar.ax.set_ylim(*norms_range)
    log10_axis(cbar.ax, "y")
    return fig


def signed(x: float) -> str:
    """'+0.30' / '−0.51' with a true minus sign; '0.00' for what rounds to zero (not '−0.00')."""
    x = round(float(x), 2)
    return "0.00" if x == 0 else f"{x:+.2f}".replace("-", "\u2212")


SPECTRUM_COLUMNS = frozenset({"run_id", "kind", "index", "real", "imag", "abs"})
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
    order = first.reset_index().sort_values(by + (["seed"] if "seed" in first.columns else []), kind="stable")
    return by, order.groupby(by, sort=True, dropna=False)["run_id"].first().tolist()


def spectrum_label(row: pd.Series, by: list[str]) -> str:
    """Legend text of one network: its init in words, or the parameters that set it apart."""
    if by == ["init"] or not by:
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
    return ", ".join(parts)


def spectrum(tables: Tables) -> plt.Figure:
    spec = tables["spectrum"]
    all_runs = list(dict.fromkeys(spec["run_id"]))
    distinct = distinct_networks(spec)
    by, runs = spectrum_groups(spec, distinct)
    rhos = spec[spec["kind"] == "eigenvalue"].groupby("run_id")["abs"].max()
    firsts = spec.drop_duplicates("run_id").set_index("run_id")
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
    # Largest ρ first: each smaller disc of eigenvalues is drawn on top of the larger ones.
    drawn = sorted(runs, key=lambda r: -rhos[r]) if numeric else runs
    for i, r in enumerate(drawn):
        rows = spec[spec["run_id"] == r]
        first = rows.iloc[0]
        rho = rhos[r]
        n = int((rows["kind"] == "singular_value").sum())
        by_radius = first.get("scale_by", "radius") == "radius"
        theory = data.theory_singular_values(first.get("init"), n, rho) if by_radius else None
        label = spectrum_label(first, by)
        color = color_of[r]
        per_run_rho = not shared_rho and not many
        plot_eigenvalues(rows, ax=ax_eig, color=color, unit_circle=(i == 0), rho_circle=per_run_rho)
        plot_singular_values(rows, ax=ax_sv, color=color, theory=theory, rho_line=per_run_rho, annotate=annotate)
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
    theory_entries = [Line2D([], [], color="black", label="random-matrix theory", **BOUND)]
    if not many or shared_rho:
        theory_entries.append(Line2D([], [], color="black", label=r"$\rho$ (dotted: also the circle $|\lambda| = \rho$)",
                                     **RATE))
    theory_entries.append(Line2D([], [], color="black", marker="*", markersize=7, linestyle="none",
                                 label=r"$\sigma_{\max} = \gamma_W$, which sets the bound"))
    ax_sv.set_ylim(0, 1.12 * spec.loc[spec["kind"] == "singular_value", "abs"].max())
    # What the legend leaves out, in its title: the other seeds, and runs that share a W_hh (one per activation).
    title = None
    if len(runs) < len(all_runs):
        names = ", ".join(r"$\rho$" if b == "radius" else b for b in by)
        title = f"one $W_{{hh}}$ per {names}"
        if len(runs) < len(distinct) and "seed" in firsts.columns:
            seeds = set(firsts.loc[runs, "seed"])
            title += f" (seed {seeds.pop()})" if len(seeds) == 1 else " (its first seed)"
        title += f"\nof {len(all_runs)} runs" + (f", {len(distinct)} distinct $W_{{hh}}$"
                                                 if len(distinct) < len(all_runs) else "")
    if annotate:
        ax_sv.legend(handles=handles + theory_entries, loc="upper right", title=title,
                     **({"alignment": "left"} if title else {}))
    else:  # beside the panel, one network per line (largest ρ on top, as the curves lie)
        ax_sv.legend(handles=handles + theory_entries, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                     borderaxespad=0.0, title=title, handlelength=1.6, fontsize=6.5, title_fontsize=6.5,
                     alignment="left")
    ax_eig.set_title(r"eigenvalues $\lambda_i(W_{hh})$", loc="right")
    ax_sv.set_title(rf"singular values, $n = {n}$", loc="right")
    panel_label(ax_eig, "a")
    panel_label(ax_sv, "b")
    return fig


def growth_rate(tables: Tables) -> plt.Figure:
    summary = data.growth_summary(tables["runs"], by=("activation", "radius"))
    activations = data.ordered(summary["activation"])
    fig, axes = plt.subplots(1, len(activations), figsize=(TEXT_WIDTH, 2.5), squeeze=False, sharey=True)
    for i, (ax, act) in enumerate(zip(axes[0], activations)):
        plot_growth_rates(summary[summary["activation"] == act], ax=ax, color=f"C{i}")
        ax.axhspan(0, 1e3, color=EXPLODES, linewidth=0, zorder=-1)
        ax.axhspan(-1e3, 0, color=VANISHES, linewidth=0, zorder=-1)
        ax.set_title(activation_title(act))
        panel_label(ax, "abcdefgh"[i])
        if i:
            ax.set_ylabel("")
    lo = min(summary["lo"].min(), summary["log_rho"].min())
    hi = max(summary["hi"].max(), summary["bound_rate"].max())
    axes[0][0].set_ylim(lo - 0.08 * (hi - lo), hi + 0.08 * (hi - lo))
    handles = [Line2D([], [], color="black", marker="o", label=r"measured slope of $\ln\|\partial h_T/\partial h_k\|$"
                      " (band: seed range)", **MEASURED),
               Line2D([], [], color="black", label=r"bound $\ln(\sigma_{\max}\gamma_h)$", **BOUND),
               Line2D([], [], color="black", label=r"rate $\ln\rho$", **RATE),
               Patch(color=EXPLODES, label="> 0: explodes"), Patch(color=VANISHES, label="< 0: vanishes")]
    fig.legend(handles=handles, loc="outside upper center", ncols=5, columnspacing=0.8, handlelength=1.8)
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


def showcase_run(train: pd.DataFrame, final: pd.DataFrame) -> tuple[str, float]:
    """The (activation, radius) whose training curves the clipping figure shows.

    Where clipping matters: the smallest radius at which training without
    clipping diverged (non-finite gradients), in the first activation where
    that happens; otherwise the first activation at its largest radius, where
    the gradients are largest.
    """
    activations = data.ordered(train["activation"])
    unclipped = train[train["setting"] == "none"]
    blew_up = unclipped[unclipped["skipped"].astype(bool)]
    diverged = final[(final["setting"] == "none") & (final["n_diverged"] > 0)]
    for act in activations:
        radii = sorted(set(blew_up.loc[blew_up["activation"] == act, "radius"])
                       | set(diverged.loc[diverged["activation"] == act, "radius"]))
        if radii:
            return act, radii[0]
    return activations[0], float(train.loc[train["activation"] == activations[0], "radius"].max())


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


def training(tables: Tables) -> plt.Figure:
    train, evaluation = clip_settings(tables["training"]), clip_settings(tables["evaluation"])
    require_columns(train, ["activation", "radius"], "training table")
    require_columns(evaluation, ["activation", "radius"], "evaluation table")
    settings = sorted(pd.unique(train["setting"]), key=lambda s: (s != "none", s))
    color_of = category_colors(settings)
    chance, metric_name = task_chance(evaluation)
    final = data.final_metrics(evaluation, by=("activation", "setting", "radius"))
    activation, radius = showcase_run(train, final)
    shown = train[(train["activation"] == activation) & (train["radius"] == radius)]
    # one run per setting: the smallest seed (a sweep without a seed parameter has one run per setting)
    seed = shown["seed"].min() if "seed" in shown.columns else None
    if seed is not None:
        shown = shown[shown["seed"] == seed]

    activations = data.ordered(final["activation"])
    fig = plt.figure(figsize=(TEXT_WIDTH, 4.6))
    fig.get_layout_engine().set(wspace=0.05)  # room between (a)'s last tick label and (b)'s y label
    grid = fig.add_gridspec(2, 2 * len(activations))
    half = len(activations)
    ax_loss, ax_grad = fig.add_subplot(grid[0, :half]), fig.add_subplot(grid[0, half:])
    finals = [fig.add_subplot(grid[1, 2 * i:2 * i + 2]) for i in range(len(activations))]
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
    context = rf"{activation}, $\rho = {radius:g}$" + (f", seed {seed}" if seed is not None else "")
    ax_loss.set_title(context, loc="right")
    ax_grad.set_title(context, loc="right")
    marker_of = setting_markers(settings)
    metric_text = METRIC_NAMES.get(metric_name, metric_name.replace("_", " "))
    for i, (ax, act) in enumerate(zip(finals, activations)):
        plot_final_metric(final[final["activation"] == act], ax=ax, color_of=color_of, chance=chance,
                          log=metric_name == "mse", marker_of=marker_of, metric_label=f"final {metric_text} (held out)")
        ax.set_title(activation_title(act), loc="right")
        if i:
            ax.set_ylabel("")
    if metric_name == "mse":
        lo = np.nanmin(final["lo"]) if np.isfinite(final["lo"]).any() else 1e-3
        hi = np.nanmax(final["hi"]) if np.isfinite(final["hi"]).any() else 1.0
        for ax in finals:  # one scale for every activation, so the panels compare
            ax.set_ylim(lo / 1.3, max(hi, chance or hi) * 1.3)
            log_axis(ax, "y")
    for ax, letter in zip([ax_loss, ax_grad, *finals], "abcdefgh"):
        panel_label(ax, letter)
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


def task_chance(evaluation: pd.DataFrame) -> tuple[float | None, str]:
    """Chance-level metric of the task trained on (gradlab.tasks), and the metric's name."""
    from ..training.tasks import TASKS

    metric_name = str(evaluation["metric_name"].iloc[0])
    if "task" in evaluation.columns:
        task = TASKS.get(str(evaluation["task"].iloc[0]))
        if task is not None and task.metric_name == metric_name:
            return task.chance, metric_name
    return None, metric_name


def truncation(tables: Tables) -> plt.Figure:
    table = tables["truncation"]
    by = ("activation", "radius") if "activation" in table.columns else ("radius",)
    curves = data.truncation_curves(table, by=by)
    activations = data.ordered(curves["activation"]) if "activation" in by else [None]
    # A handful of unevenly spaced radii (0.9, 1, 1.1 next to 2): a colour per radius by rank, named in the
    # legend; colours by value (a colour bar) made the three around 1 look alike.
    color_of = ranked_colors(curves["radius"])
    width = COLUMN_WIDTH + 0.6 if len(activations) == 1 else TEXT_WIDTH
    fig, axes = plt.subplots(1, len(activations), figsize=(width, 2.6), squeeze=False, sharey=True)
    for i, (ax, act) in enumerate(zip(axes[0], activations)):
        plot_truncation_error(curves if act is None else curves[curves["activation"] == act], ax=ax,
                              color_of=color_of.__getitem__)
        if act is not None:
            ax.set_title(activation_title(act) + sizes_of(table))
        if len(activations) > 1:
            panel_label(ax, "abcdefgh"[i])
    radii = [Line2D([], [], color=c, marker="o", markersize=2.5, label=f"{r:g}")
             for r, c in sorted(color_of.items(), reverse=True)]  # largest on top, as the curves lie
    axes[0][-1].legend(handles=radii, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                       title=r"initial $\rho(W_{hh})$", handlelength=1.4)
    handles = [Line2D([], [], color="black", marker="o", markersize=2.5, label="measured (band: seeds)",
                      **MEASURED),
               Line2D([], [], color="black", label=TRUNCATION_RATE_LABEL, **RATE)]
    handles += [h for h in axes[0][0].get_legend_handles_labels()[0] if h.get_label().startswith("float64")][:1]
    fig.legend(handles=handles, loc="outside upper center", ncols=1)
    return fig


INIT_LABELS = {"gaussian": r"Gaussian $W_{hh}$ (non-normal)", "orthogonal": r"orthogonal $W_{hh}$ (normal)",
               "identity": r"identity $W_{hh}$ (normal)"}


def transient_growth(tables: Tables) -> plt.Figure:
    norms = tables["norms"]
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
    # (b) the ratio to ρ^(t−k), with the n → ∞ law of a Gaussian matrix over the whole range of lags
    # (drawn when there is a Gaussian W_hh)
    lag = np.arange(0, curves["lag"].max() + 1)
    ginibre = data.ginibre_power_norm(lag) if "gaussian" in inits else np.array([])
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


def sizes_of(table: pd.DataFrame) -> str:
    """', n = 32, T = 100' from the hidden/steps columns when each has one value."""
    parts = [f"${symbol} = {table[col].iloc[0]:g}$" for col, symbol in (("hidden", "n"), ("steps", "T"))
             if col in table.columns and table[col].nunique() == 1]
    return "".join(", " + p for p in parts)


def activations_of(table: pd.DataFrame) -> list[str]:
    return data.ordered(table["activation"]) if "activation" in table.columns else []
