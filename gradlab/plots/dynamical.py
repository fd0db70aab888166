"""Figures of the dynamical-systems view: full Lyapunov spectra, and fixed points with their stability.

Both are drawn from saved CSVs only:

* ``lyapunov-spectrum`` (from ``gradlab lyapunov --spectrum``, or the sweep
  ``experiments/lyapunov_spectrum.toml``): (a) the spectrum λ_i against i/s,
  one curve per gain g (mean over seeds), (b) the Kaplan–Yorke dimension
  D_KY/s and (c) the Kolmogorov–Sinai entropy h_KS/s (nats per step and
  unit) against g, each seed a pale point, the mean-field transition g_c
  dashed; one row per network family (activation of a vanilla RNN, or a
  gated cell). A folder of trained networks (no gain) gets panel (a) alone,
  one curve per run.
* ``fixed-points`` (from ``gradlab fixed-points``, or the sweep
  ``experiments/fixed_points.toml``): (a) the recorded trajectories on their
  first two principal axes with the fixed points of one run — stable filled,
  saddles hollow and labelled with their number of unstable modes, repellers
  hollow squares, slow points × — (b) the eigenvalues of the step Jacobian at
  every point against the unit circle (|λ| > 1: an unstable mode), and, when
  the folder holds several runs, (c) the stable points and saddles found per
  run, with 2³ = 8 (one per memory) for the 3-bit flip-flop.

Notes
-----
With x = 0 held fixed, a point s* of F(s*) = s* is linearised as
δ_t = J δ_{t−1}, J = ∂F/∂s at s*, so a mode is stable when |λ| < 1
(discrete time; Sussillo & Barak 2013). Kaplan–Yorke:
D_KY = j + (λ_1 + … + λ_j)/|λ_{j+1}|; Pesin: h_KS = Σ_{λ_i > 0} λ_i.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.lines import Line2D

from ..errors import GradlabError
from ..io.schema import require_columns
from . import data
from .spectrum import circle
from .style import (BOUND, MEASURED, REFERENCE, get_ax, outer_labels, panel_axes, panel_label, ranked_colors)

STABILITY_COLORS = {"stable": "#0072B2", "saddle": "#D55E00", "unstable": "#CC79A7"}
SLOW_COLOR = "0.25"
SYMLOG_LINEAR = 1.0        # nats/step: the spectrum's y axis is linear within ±this, logarithmic beyond
SYMLOG_TICKS = (-100, -50, -20, -10, -5, -2, -1, -0.5, 0, 0.25, 0.5, 1, 2, 5)
MAX_TRAJECTORIES = 24      # recorded sequences drawn in panel (a): more are a grey smear
FLIP_FLOP_MEMORIES = 8     # 2³ stable points of a solved 3-bit flip-flop


# ---------------------------------------------------------------- Lyapunov spectra

def _numbers(table: pd.DataFrame, column: str, source: str) -> pd.Series:
    values = pd.to_numeric(table[column], errors="coerce")
    if values.isna().any() and not table[column].isna().all():
        bad = table.loc[values.isna() & table[column].notna(), column].iloc[0]
        raise GradlabError(f"{source}: column {column!r} holds {bad!r} where a number belongs")
    return values


def plot_lyapunov_spectra(spectrum: pd.DataFrame, by: str = "g", ax=None, colors: dict | None = None,
                          label=None, symlog: bool = True):
    """Lyapunov exponents λ_i against i/s, one curve per value of ``by`` (mean over its runs and sequences).

    Parameters
    ----------
    spectrum : DataFrame
        Rows of ``lyapunov_spectrum.csv``: ``by``, ``index_fraction``, ``exponent``.
    by : str
        The column that makes one curve (``g``, or ``run_id``).
    ax : matplotlib Axes, optional
    colors : dict, optional
        Value of ``by`` → colour (default: ranked along viridis).
    label : callable, optional
        Value of ``by`` → legend text (default ``g = value``).
    symlog : bool
        A symmetric-log y axis, linear within ±:data:`SYMLOG_LINEAR` (when an exponent lies below it).

    Returns
    -------
    Axes
    """
    ax = get_ax(ax)
    require_columns(spectrum, (by, "index_fraction", "exponent"), "lyapunov_spectrum table")
    table = spectrum.assign(exponent=_numbers(spectrum, "exponent", "lyapunov_spectrum table"))
    values = sorted(table[by].unique()) if by == "g" else list(dict.fromkeys(table[by]))
    colors = colors or (ranked_colors(values) if by == "g" else {v: f"C{i % 7}" for i, v in enumerate(values)})
    label = label or (lambda v: rf"$g = {v:g}$")
    ax.axhline(0.0, **REFERENCE)
    finite = table[np.isfinite(table["exponent"])]
    for v in values:
        curve = finite[finite[by] == v].groupby("index_fraction")["exponent"].mean()
        ax.plot(curve.index, curve.values, color=colors[v], label=label(v), **MEASURED)
    ax.set_xlim(0.0, 1.0 if finite["index_fraction"].max() > 0.5 else None)
    if symlog and len(finite) and finite["exponent"].min() < -SYMLOG_LINEAR:
        # linear near 0, where the positive exponents and the crossing are; logarithmic along the tail of
        # strongly contracting directions (−10 and below), which would otherwise flatten the rest
        lo, hi = finite["exponent"].min(), finite["exponent"].max()
        ax.set_yscale("symlog", linthresh=SYMLOG_LINEAR, linscale=2.0)
        ax.set_ylim(1.15 * lo, max(hi, 0.0) + 0.08 * (max(hi, 0.0) - max(lo, -SYMLOG_LINEAR)))
        ticks = [v for v in SYMLOG_TICKS if 1.15 * lo <= v <= max(hi, 0.0) + 0.1]
        ax.yaxis.set_major_locator(ticker.FixedLocator(ticks))
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_locator(ticker.NullLocator())
        ax.axhline(-SYMLOG_LINEAR, color="0.85", linewidth=0.4, linestyle=(0, (1, 2)), zorder=0)
        # at the left, under the line: the leading exponents, which start above it, leave that corner empty
        ax.annotate(f"log scale below −{SYMLOG_LINEAR:g}", (0.0, -SYMLOG_LINEAR), xycoords=("axes fraction", "data"),
                    xytext=(2, -2), textcoords="offset points", ha="left", va="top", fontsize=6, color="0.5")
    ax.set_xlabel(r"$i / s$ (exponent index over state size)")
    ax.set_ylabel(r"Lyapunov exponent $\lambda_i$ (nats/step)")
    return ax


def plot_per_unit_vs_gain(summary: pd.DataFrame, column: str, ax=None, g_critical: float | None = None,
                          color: str = "black", ylabel: str | None = None):
    """A spectrum's summary per state dimension (``column`` / ``state_size``) against the gain g.

    Parameters
    ----------
    summary : DataFrame
        Rows of ``lyapunov_summary.csv`` for one family: ``run_id``, ``g``, ``state_size``, ``column``
        (``kaplan_yorke`` or ``ks_entropy``).
    column : str
    ax : matplotlib Axes, optional
    g_critical : float, optional
        The mean-field transition (χ₁ = 1), dashed.
    color : str
    ylabel : str, optional

    Returns
    -------
    Axes
    """
    ax = get_ax(ax)
    require_columns(summary, ("run_id", "g", "state_size", column), "lyapunov_summary table")
    table = summary.assign(**{c: _numbers(summary, c, "lyapunov_summary table") for c in ("g", "state_size", column)})
    per_run = table.groupby("run_id").agg(g=("g", "first"), value=(column, "mean"), s=("state_size", "first"))
    per_run["value"] = per_run["value"] / per_run["s"]
    per_run = per_run[np.isfinite(per_run["value"])]
    if g_critical is not None and np.isfinite(g_critical):
        ax.axvline(g_critical, color="0.4", zorder=0, **BOUND)
        ax.annotate(f"$g_c = {g_critical:.3g}$", (g_critical, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(3, -3), textcoords="offset points", ha="left", va="top", fontsize="small", color="0.3")
    ax.axhline(0.0, **REFERENCE)
    ax.scatter(per_run["g"], per_run["value"], s=6, color=color, alpha=0.35, linewidths=0, zorder=3,
               label="one network (seed)")
    mean = per_run.groupby("g")["value"].mean()
    ax.plot(mean.index, mean.values, "o-", color=color, markersize=3, zorder=4, label="mean over seeds")
    ax.set_xlabel(r"gain $g$")
    if ylabel:
        ax.set_ylabel(ylabel)
    return ax


def _family(table: pd.DataFrame) -> pd.Series:
    """The network family of each row: the activation of a vanilla RNN (tanh by default), or the gated cell."""
    cell = data.cell_of(table)
    activation = table["activation"].fillna("tanh").astype(str) if "activation" in table.columns \
        else pd.Series("tanh", index=table.index)
    return cell.where(cell != "rnn", activation)


def lyapunov_spectrum_figure(tables: dict) -> plt.Figure:
    """Per family: the spectra against i/s per gain; D_KY/s and h_KS/s against g (module docstring)."""
    spectrum, summary = tables["lyapunov_spectrum"], tables["lyapunov_summary"]
    if "g" not in spectrum.columns or spectrum["g"].isna().all():
        return _trained_spectra_figure(spectrum, summary)
    spectrum = spectrum[spectrum["g"].notna()].assign(family=lambda t: _family(t))
    summary = summary[summary["g"].notna()].assign(family=lambda t: _family(t))
    families = data.ordered(spectrum["family"], preferred=("tanh", "sigmoid", "relu", "linear", "lstm", "gru"))
    trans = tables.get("transitions")
    g_c = dict(zip(trans["activation"], trans["g_critical"])) if trans is not None else {}
    colors = ranked_colors(_numbers(spectrum, "g", "lyapunov_spectrum table"))
    fig, axes = panel_axes(3 * len(families), height=2.5, row_height=2.2, max_columns=3, what="panels")
    for row, family in enumerate(families):
        a, b, c = axes[3 * row: 3 * row + 3]
        spec = spectrum[spectrum["family"] == family]
        summ = summary[summary["family"] == family]
        plot_lyapunov_spectra(spec, "g", ax=a, colors={float(k): v for k, v in colors.items()})
        s = ", ".join(f"{v:g}" for v in sorted(set(_numbers(summ, "state_size", "lyapunov_summary table"))))
        a.set_title(f"{family}, s = {s}")
        crit = g_c.get(family) if family not in ("lstm", "gru") else None
        plot_per_unit_vs_gain(summ, "kaplan_yorke", ax=b, g_critical=crit, color="#0072B2",
                              ylabel=r"Kaplan–Yorke dimension $D_{KY}/s$")
        plot_per_unit_vs_gain(summ, "ks_entropy", ax=c, g_critical=crit, color="#D55E00",
                              ylabel=r"KS entropy $h_{KS}/s$ (nats/step)")
        b.set_title("attractor dimension")
        c.set_title("entropy rate (Pesin)")
        for i, ax in enumerate((a, b, c)):
            panel_label(ax, 3 * row + i)
    outer_labels(axes, 3)
    handles = [Line2D([], [], color=colors[g], label=rf"$g = {g:g}$") for g in sorted(colors)]
    vanilla = all(f not in ("lstm", "gru") for f in families)
    title = (r"random networks $W_{hh} = g\,W_0$, $W_0 \sim \mathcal{N}(0, 1/n)$, autonomous; mean over seeds"
             if vanilla else r"random networks of gain $g$ (gated: $\rho$ of each gate block), autonomous; "
             "mean over seeds")
    fig.legend(handles=handles, loc="outside upper center", ncols=min(len(handles), 9), title=title)
    return fig


def _trained_spectra_figure(spectrum: pd.DataFrame, summary: pd.DataFrame) -> plt.Figure:
    """Trained networks (no gain): their spectra, one curve per run, D_KY and h_KS in the legend."""
    fig, (ax,) = panel_axes(1, height=2.6, width=3.5)
    require_columns(summary, ("run_id", "kaplan_yorke", "ks_entropy"), "lyapunov_summary table")
    stats = summary.groupby("run_id")[["kaplan_yorke", "ks_entropy"]].mean()

    varying = [c for c in ("drive", "seed", "cell") if c in spectrum.columns and spectrum[c].nunique() > 1]

    def label(run):
        rows = spectrum[spectrum["run_id"] == run]
        weights = rows["weights"].dropna() if "weights" in rows.columns else ()
        name = " ".join([Path(str(weights.iloc[0])).name if len(weights) else run]
                        + [f"{c} {rows[c].iloc[0]}" for c in varying])
        ky, h = stats.loc[run] if run in stats.index else (np.nan, np.nan)
        return rf"{name}: $D_{{KY}}$ = {ky:.3g}, $h_{{KS}}$ = {h:.3g}"

    plot_lyapunov_spectra(spectrum, "run_id", ax=ax, label=label)
    ax.legend(loc="best")
    return fig


# ---------------------------------------------------------------- fixed points

def plot_fixed_points_pca(points: pd.DataFrame, trajectories: pd.DataFrame | None = None, ax=None,
                          max_sequences: int = MAX_TRAJECTORIES, annotate: bool = True):
    """Fixed and slow points on the first two principal axes, over the recorded trajectories.

    Parameters
    ----------
    points : DataFrame
        One run's rows of ``fixed_points.csv``: ``kind``, ``stability``, ``n_unstable``, ``pc1``, ``pc2``.
    trajectories : DataFrame, optional
        The same run's rows of ``trajectories.csv``: ``sequence``, ``t``, ``pc1``, ``pc2``; the first
        ``max_sequences`` sequences are drawn thin and grey.
    ax : matplotlib Axes, optional
    annotate : bool
        Write each saddle's number of unstable modes beside it.

    Returns
    -------
    Axes

    Notes
    -----
    Stable points (every |λ| < 1) are filled circles, saddles hollow circles, repellers (every |λ| > 1)
    hollow squares; slow points (a local minimum of q above the fixed-point tolerance) are ×.
    """
    ax = get_ax(ax)
    require_columns(points, ("kind", "stability", "n_unstable", "pc1", "pc2"), "fixed_points table")
    if trajectories is not None and len(trajectories):
        require_columns(trajectories, ("sequence", "t", "pc1", "pc2"), "trajectories table")
        for i, (_, seq) in enumerate(trajectories.sort_values(["sequence", "t"]).groupby("sequence", sort=True)):
            if i >= max_sequences:
                break
            ax.plot(seq["pc1"], seq["pc2"], color="0.7", linewidth=0.4, alpha=0.8, zorder=1)
    fixed = points[points["kind"] != "slow"]
    for stability, marker in (("stable", "o"), ("saddle", "o"), ("unstable", "s")):
        sel = fixed[fixed["stability"] == stability]
        if sel.empty:
            continue
        color = STABILITY_COLORS[stability]
        filled = stability == "stable"
        ax.plot(sel["pc1"], sel["pc2"], marker, linestyle="none", markersize=5 if filled else 4.5,
                markerfacecolor=color if filled else "white", markeredgecolor=color, markeredgewidth=1.0,
                zorder=4, label={"stable": "stable fixed point", "saddle": "saddle (unstable modes)",
                                 "unstable": "repeller"}[stability])
        if annotate and stability == "saddle":
            for row in sel.itertuples():
                ax.annotate(f"{int(row.n_unstable)}", (row.pc1, row.pc2), xytext=(3, 2), textcoords="offset points",
                            fontsize=6, color=color, zorder=5)
    slow = points[points["kind"] == "slow"]
    if len(slow):
        ax.plot(slow["pc1"], slow["pc2"], "x", linestyle="none", color=SLOW_COLOR, markersize=4.5,
                markeredgewidth=1.0, zorder=4, label="slow point")
    ax.set_xlabel("PC1")
    ax.set_ylabel("PC2")
    return ax


def plot_fixed_point_eigenvalues(eigenvalues: pd.DataFrame, points: pd.DataFrame, ax=None):
    """Eigenvalues of the step Jacobian at every point in the complex plane, against the unit circle.

    Parameters
    ----------
    eigenvalues : DataFrame
        One run's rows of ``fixed_point_eigenvalues.csv``: ``point_id``, ``real``, ``imag``.
    points : DataFrame
        The same run's ``fixed_points.csv`` rows (``point_id``, ``stability``, ``kind``): each point's
        eigenvalues take its colour (stable filled, saddles hollow, slow points ×).
    ax : matplotlib Axes, optional

    Returns
    -------
    Axes
    """
    ax = get_ax(ax)
    require_columns(eigenvalues, ("point_id", "real", "imag"), "fixed_point_eigenvalues table")
    require_columns(points, ("point_id", "stability", "kind"), "fixed_points table")
    circle(ax, 1.0, **{**REFERENCE, "linewidth": 0.8})
    ax.axhline(0.0, **REFERENCE)
    ax.axvline(0.0, **REFERENCE)
    ax.annotate(r"$|\lambda| = 1$", (np.sqrt(0.5), np.sqrt(0.5)), xytext=(2, 2), textcoords="offset points",
                ha="left", va="bottom", fontsize=6.5, color="0.4")
    merged = eigenvalues.merge(points[["point_id", "stability", "kind"]], on="point_id", how="left")
    for stability in ("saddle", "unstable", "stable"):      # stable last: on top, where most points sit
        sel = merged[(merged["stability"] == stability) & (merged["kind"] != "slow")]
        color = STABILITY_COLORS[stability]
        filled = stability == "stable"
        ax.plot(sel["real"], sel["imag"], "o", linestyle="none", markersize=2.6,
                markerfacecolor=color if filled else "white", markeredgecolor=color, markeredgewidth=0.6,
                alpha=0.85, zorder=3)
    slow = merged[merged["kind"] == "slow"]
    ax.plot(slow["real"], slow["imag"], "x", linestyle="none", color=SLOW_COLOR, markersize=3, zorder=3)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel(r"$\mathrm{Re}\,\lambda$")
    ax.set_ylabel(r"$\mathrm{Im}\,\lambda$")
    return ax


def plot_fixed_point_counts(runs: pd.DataFrame, ax=None, memories: int | None = None):
    """Stable points and saddles found per run (seed), with the number of memories a solved task has.

    Parameters
    ----------
    runs : DataFrame
        ``runs.csv`` of a fixed-point sweep: ``run_id``, ``n_stable``, ``n_saddle`` (and ``seed``).
    ax : matplotlib Axes, optional
    memories : int, optional
        Drawn dashed (2³ = 8 for the 3-bit flip-flop).

    Returns
    -------
    Axes
    """
    ax = get_ax(ax)
    require_columns(runs, ("run_id", "n_stable", "n_saddle"), "runs table")
    runs = runs.sort_values("run_id")
    x = np.arange(len(runs))
    width = 0.38
    ax.bar(x - width / 2, _numbers(runs, "n_stable", "runs table"), width, color=STABILITY_COLORS["stable"],
           label="stable")
    ax.bar(x + width / 2, _numbers(runs, "n_saddle", "runs table"), width, facecolor="white",
           edgecolor=STABILITY_COLORS["saddle"], label="saddles")
    if memories is not None:
        ax.axhline(memories, color="black", **BOUND)
        ax.annotate(rf"$2^3 = {memories}$ memories", (1.0, memories), xycoords=("axes fraction", "data"),
                    xytext=(-2, 2), textcoords="offset points", ha="right", va="bottom", fontsize="small")
    top = max(float(np.nanmax(_numbers(runs, c, "runs table"))) for c in ("n_stable", "n_saddle"))
    ax.set_ylim(0, 1.35 * max(top, memories or 0, 1))
    ax.legend(loc="upper left", ncols=2)
    ticks = runs["seed"].astype(str) if "seed" in runs.columns else runs["run_id"]
    ax.set_xticks(x, [f"seed {t}" if "seed" in runs.columns else t for t in ticks])
    ax.tick_params(axis="x", which="both", top=False)
    ax.set_ylabel("fixed points found")
    return ax


def _flip_flop(runs: pd.DataFrame | None) -> bool:
    """Whether the runs trained the 3-bit flip-flop (the kind's default task, when no task column says)."""
    if runs is None:
        return False
    if "task" in runs.columns:
        return bool((runs["task"].astype(str) == "flip_flop").all())
    return "weights" not in runs.columns and "final_metric" in runs.columns


def fixed_points_figure(tables: dict) -> plt.Figure:
    """The first run's points over its trajectories and their eigenvalues; the points found per run."""
    points, eig, traj = tables["fixed_points"], tables["fixed_point_eigenvalues"], tables["trajectories"]
    runs = tables.get("runs")
    require_columns(points, ("run_id",), "fixed_points table")
    run = sorted(set(points["run_id"].astype(str)) | set(traj["run_id"].astype(str)))[0]
    mine = points[points["run_id"].astype(str) == run]
    counts = runs is not None and {"n_stable", "n_saddle"} <= set(runs.columns) and len(runs) > 1
    fig, axes = panel_axes(3 if counts else 2, height=2.7, what="panels")
    a, b = axes[0], axes[1]
    plot_fixed_points_pca(mine, traj[traj["run_id"].astype(str) == run], ax=a)
    plot_fixed_point_eigenvalues(eig[eig["run_id"].astype(str) == run], mine, ax=b)
    row = runs[runs["run_id"].astype(str) == run].iloc[0] if runs is not None and (runs["run_id"] == run).any() else None
    if row is not None and "pc1_explained" in row:
        a.set_xlabel(f"PC1 ({100 * row['pc1_explained']:.0f} % of the variance)")
        a.set_ylabel(f"PC2 ({100 * row['pc2_explained']:.0f} %)")
    n_stable = int((mine["stability"] == "stable").sum())
    n_saddle = int((mine["stability"] == "saddle").sum())
    seed = f"seed {row['seed']}" if row is not None and "seed" in row else run
    # on the right: the panel letter holds the left of the title line
    a.set_title(f"{seed}: {n_stable} stable, {n_saddle} saddle{'s' * (n_saddle != 1)}", loc="right")
    b.set_title("eigenvalues of $J$ at each point", loc="right")
    if counts:
        plot_fixed_point_counts(runs, ax=axes[2], memories=FLIP_FLOP_MEMORIES if _flip_flop(runs) else None)
        axes[2].set_title("points found per run", loc="right")
    for i, ax in enumerate(axes):
        panel_label(ax, i)
    handles, _ = a.get_legend_handles_labels()
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles),
               title=r"points of $s \mapsto F(s, x = 0)$ over the recorded trajectories; a saddle's number: "
                     r"its modes with $|\lambda| > 1$")
    return fig
