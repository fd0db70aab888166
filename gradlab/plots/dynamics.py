"""Figures of the dynamical-systems view: Lyapunov exponents against mean field, and cells compared.

Both are drawn from saved CSVs only:

* ``lyapunov`` (from ``gradlab lyapunov``): measured largest Lyapunov
  exponent against the gain g, one panel per activation, with the mean-field
  curve ½ ln χ₁ and the order-to-chaos transition (χ₁ = 1) marked.
* ``cells`` (from the sweep ``experiments/cells.toml``): ‖∂s_T/∂s_k‖ against
  the lag T − k for the vanilla RNN, the LSTM (state (h, C)) and the GRU at matched
  hidden size, one panel per spectral radius of the recurrent (block)
  matrices, with each cell's measured largest Lyapunov exponent as a dotted
  slope λ_1·lag — the asymptotic rate.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from ..io.schema import require_columns
from . import data
from .style import (CELL_COLORS, CELL_NAMES, MEASURED, RATE, REFERENCE, get_ax, log10_axis, outer_labels,
                    panel_axes, panel_grid, panel_label)
LN10 = np.log(10.0)


def plot_lyapunov_vs_gain(measured: pd.DataFrame, theory: pd.DataFrame, g_critical: float | None = None, ax=None):
    """Measured largest Lyapunov exponent against g, with the mean-field curve and the transition.

    Parameters
    ----------
    measured : DataFrame
        Rows of ``lyapunov.csv`` for one activation: ``g``, ``seed``, ``lyapunov``.
    theory : DataFrame
        Rows of ``mean_field.csv`` for the same activation: ``g``, ``lyapunov``.
    g_critical : float, optional
        Where χ₁ = 1; drawn as a vertical line.
    ax : matplotlib Axes, optional

    Returns
    -------
    Axes
    """
    ax = get_ax(ax)
    require_columns(measured, ("g", "seed", "lyapunov"), "lyapunov table")
    require_columns(theory, ("g", "lyapunov"), "mean_field table")
    ax.axhline(0.0, **REFERENCE)
    if g_critical is not None and np.isfinite(g_critical):
        ax.axvline(g_critical, color="0.4", linewidth=0.7, linestyle=(0, (4, 2)), zorder=0)
        # at the foot of the line: at λ = 0, where the mean-field curve crosses it, it sat on the data
        ax.annotate(f"$g_c = {g_critical:.3g}$", (g_critical, 0.0), xycoords=("data", "axes fraction"),
                    xytext=(3, 3), textcoords="offset points", ha="left", va="bottom", fontsize="small", color="0.3")
    th = theory.sort_values("g")
    ax.plot(th["g"], th["lyapunov"], color="black", label=r"mean field $\frac{1}{2}\ln\chi_1$", zorder=2)
    finite = measured[np.isfinite(measured["lyapunov"])]
    per_g = finite.groupby("g")["lyapunov"]
    ax.scatter(finite["g"], finite["lyapunov"], s=6, color=CELL_COLORS["rnn"], alpha=0.35, linewidths=0, zorder=3,
               label="one network (seed)")
    ax.plot(per_g.mean().index, per_g.mean().values, "o", markersize=3, color=CELL_COLORS["rnn"],
            label="measured (mean over seeds)", zorder=4)
    lo = min(finite["lyapunov"].min(), th["lyapunov"][np.isfinite(th["lyapunov"])].min())
    hi = max(finite["lyapunov"].max(), th["lyapunov"].max())
    pad = 0.08 * (hi - lo)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel(r"gain $g$ ($W_{hh} \sim \mathcal{N}(0, g^2/n)$)")
    ax.set_ylabel(r"Lyapunov exponent $\lambda_1$ (nats/step)")  # λ_1: the largest
    return ax


def end_step(norms: pd.DataFrame) -> str:
    """"T" when a sweep's per-lag norms come from the last step only (pairs = "last"), else "t".

    Read from the ``pairs`` column when the table has it, else from
    ``n_pairs``: with one end step (t = T) every lag has the same number of
    pairs (one per sequence); with several (``all``, ``stride:K``) short
    lags have more.
    """
    if "pairs" in norms.columns:
        return "T" if (norms["pairs"] == "last").all() else "t"
    if "n_pairs" in norms.columns and "run_id" in norms.columns:
        return "T" if (norms.groupby("run_id")["n_pairs"].nunique() == 1).all() else "t"
    return "t"


def plot_cell_norms(curves: pd.DataFrame, exponents: dict | None = None, ax=None, spread: bool = True,
                    end: str = "t"):
    """‖∂s_t/∂s_k‖₂ against lag t − k, one curve per cell, with λ_1·lag dotted.

    Parameters
    ----------
    curves : DataFrame
        Rows of :func:`gradlab.plots.data.lag_curves` with ``by=("cell", …)``
        for one panel: ``cell``, ``lag``, ``log10_norm``, ``lo``, ``hi``.
    exponents : dict, optional
        cell → largest Lyapunov exponent (nats/step, mean over runs).
    ax : matplotlib Axes, optional
    spread : bool
        Shade between the smallest and largest per-seed mean.
    end : {"t", "T"}
        The end step in the axis labels: "T" when every norm is ‖∂s_T/∂s_k‖
        of the last step (:func:`end_step`), so that the lag reads T − k.

    Returns
    -------
    Axes
    """
    ax = get_ax(ax)
    require_columns(curves, ("cell", "lag", "log10_norm", "lo", "hi"), "cell curves")
    ax.axhline(0.0, **REFERENCE)
    for cell in data.ordered(curves["cell"], preferred=tuple(CELL_COLORS)):
        c = curves[curves["cell"] == cell].sort_values("lag")
        color = CELL_COLORS.get(cell, "0.3")
        if spread:
            ax.fill_between(c["lag"], c["lo"], c["hi"], color=color, alpha=0.18, linewidth=0)
        ax.plot(c["lag"], c["log10_norm"], color=color, label=CELL_NAMES.get(cell, cell), **MEASURED)
        if exponents and np.isfinite(exponents.get(cell, np.nan)):
            ax.plot(c["lag"], c["lag"] * exponents[cell] / LN10, color=color, **RATE)
    lo, hi = curves["lo"].min(), curves["hi"].max()
    ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
    log10_axis(ax, "y")
    ax.set_xlabel(rf"lag ${end}-k$ (steps)")
    ax.set_ylabel(rf"$\|\partial s_{end} / \partial s_k\|_2$")
    return ax


def lyapunov_figure(tables: dict) -> plt.Figure:
    """One panel per activation: measured λ_1 against g, mean field, transition."""
    measured, theory, trans = tables["lyapunov"], tables["mean_field"], tables["transitions"]
    activations = data.ordered(measured["activation"])
    _, columns = panel_grid(len(activations), what="activations")
    fig, axes = panel_axes(len(activations), height=2.75, row_height=2.4, what="activations")
    g_c = dict(zip(trans["activation"], trans["g_critical"]))
    for i, (ax, act) in enumerate(zip(axes, activations)):
        plot_lyapunov_vs_gain(measured[measured["activation"] == act], theory[theory["activation"] == act],
                              g_c.get(act), ax=ax)
        n = sorted(set(measured.loc[measured["activation"] == act, "n"]))
        ax.set_title(f"{act} (n = {', '.join(map(str, n))})")
        panel_label(ax, i)
    outer_labels(axes, columns)
    # above the panels: inside (a) the transition line g_c ran through the legend's text
    handles, _ = axes[0].get_legend_handles_labels()
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles))
    return fig


def cells_figure(tables: dict) -> plt.Figure:
    """One panel per radius: rnn vs lstm vs gru ‖∂s_T/∂s_k‖ against lag at matched hidden size."""
    norms, runs = tables["sweep_norms"], tables["runs"]
    require_columns(runs, ("run_id", "cell", "radius", "lyapunov"), "runs table")
    curves = data.lag_curves(norms, by=("radius", "cell"))
    end = end_step(norms)  # "T" for the shipped sweep (pairs = "last"): ‖∂s_T/∂s_k‖ against T − k
    radii = sorted(curves["radius"].unique())
    _, columns = panel_grid(len(radii), what="radii")
    fig, axes = panel_axes(len(radii), height=2.8, row_height=2.3, what="radii", sharey=True)
    for i, (ax, r) in enumerate(zip(axes, radii)):
        lam = runs[runs["radius"] == r].groupby("cell")["lyapunov"].mean().to_dict()
        plot_cell_norms(curves[curves["radius"] == r], lam, ax=ax, end=end)
        ax.set_title(rf"$\rho = {r:g}$")
        panel_label(ax, i)
    outer_labels(axes, columns)
    lo, hi = curves["lo"].min(), curves["hi"].max()
    for ax in axes:   # shared y: one range for all panels, then the log ticks for it
        ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
        log10_axis(ax, "y")
    n = ", ".join(map(str, sorted(set(runs["hidden"])))) if "hidden" in runs.columns else "?"
    handles = [Line2D([], [], color=CELL_COLORS[c], label=CELL_NAMES[c]) for c in CELL_COLORS
               if c in set(curves["cell"])]
    handles.append(Line2D([], [], color="black", label=rf"$e^{{\lambda_1 ({end}-k)}}$, $\lambda_1$ = Lyapunov", **RATE))
    # above the panels, as in the other figures: inside one, it covered that panel's curves where they fell
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles),
               title=rf"$n = {n}$; $\rho$ of $W_{{hh}}$ and of every $n\times n$ gate block", columnspacing=1.0)
    return fig
