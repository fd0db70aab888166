"""Drawing training runs: loss and gradient norm per update, clipping events, final task error.

Norm clipping (Pascanu et al. 2013, Algorithm 1) rescales g to τ g/‖g‖
when ‖g‖ > τ; the gradient norm drawn is the one *before* clipping, so the
spikes that clipping tames stay visible. Each function takes ``ax=None`` and
returns the axes.
"""
from __future__ import annotations

import numpy as np

from .style import MEASURED, RADIUS_LABEL, RATE, category_colors, get_ax

CHANCE = {"color": "0.4", "linewidth": 0.8, "linestyle": (0, (4, 2)), "zorder": 0}  # metric of a blind model


def mark_at_top(ax, x, color, label: str | None = None) -> None:
    """× marks on the top edge of ``ax`` at ``x``: events with no finite value to draw (a diverged run)."""
    x = np.asarray(x, dtype=float)
    if x.size:
        ax.plot(x, np.ones(x.size), linestyle="none", marker="x", markersize=3, markeredgewidth=0.6, color=color,
                transform=ax.get_xaxis_transform(), clip_on=False, label=label, zorder=5)


def plot_loss(training, ax=None, color="C0", label: str | None = None, chance: float | None = None,
              log: bool = True):
    """Training loss per update of one run (rows of ``training.csv``: ``step``, ``loss``).

    ``chance``, when given, is drawn as a grey dashed line: the loss of a
    model that ignores its inputs (adding problem: MSE 1/6). ``log``: a log
    y axis (a diverging run's loss spans decades). Updates whose loss is not
    finite (the weights blew up) are marked × on the top edge.

    Returns
    -------
    Axes
    """
    ax = get_ax(ax)
    t = training.sort_values("step")
    finite = np.isfinite(t["loss"].to_numpy(dtype=float))
    ax.plot(t.loc[finite, "step"], t.loc[finite, "loss"], color=color, label=label, linewidth=0.7, **MEASURED)
    mark_at_top(ax, t.loc[~finite, "step"], color)  # the loss overflowed: the weights blew up
    if chance is not None and np.isfinite(chance):
        ax.axhline(chance, **CHANCE)
    if log:
        ax.set_yscale("log")  # tidy ticks once every run is drawn: gradlab.plots.style.log_axis
    ax.set_xlabel("update")
    ax.set_ylabel(r"training loss $L$")
    return ax


def plot_grad_norm(training, ax=None, color="C0", label: str | None = None, threshold: float | None = None):
    """Pre-clip gradient norm log10‖g‖ per update, clipped updates marked with dots.

    The caller labels the y axis as a log axis (:func:`gradlab.plots.style.log10_axis`)
    once every run is drawn. Updates skipped for a non-finite gradient are
    marked × at the top edge.

    Parameters
    ----------
    training : DataFrame
        One run's rows of ``training.csv``: ``step``, ``grad_norm``,
        ``clipped`` (0/1) and ``skipped`` (non-finite gradient, 0/1).
    threshold : float, optional
        The norm-clipping threshold τ, drawn dotted: every update above it is
        rescaled to it.

    Returns
    -------
    Axes
    """
    ax = get_ax(ax)
    t = training.sort_values("step")
    finite = np.isfinite(t["grad_norm"]) & (t["grad_norm"] > 0)
    log_norm = np.log10(t.loc[finite, "grad_norm"])
    ax.plot(t.loc[finite, "step"], log_norm, color=color, label=label, linewidth=0.7, **MEASURED)
    clipped = finite & (t["clipped"].astype(bool))
    if clipped.any():
        ax.plot(t.loc[clipped, "step"], np.log10(t.loc[clipped, "grad_norm"]), linestyle="none", marker="o",
                markersize=1.8, markeredgewidth=0, color=color)
    skipped = t["skipped"].astype(bool)
    mark_at_top(ax, t.loc[skipped, "step"], color)  # non-finite gradient: no norm to draw, update skipped
    if threshold is not None and np.isfinite(threshold):
        ax.axhline(np.log10(threshold), color=color, **RATE)
    ax.set_xlabel("update")
    ax.set_ylabel(r"gradient norm $\|g\|_2$ before clipping")
    return ax


def plot_final_metric(final, ax=None, color_of=None, labels=None, chance: float | None = None,
                      metric_label: str = "final task error", log: bool = False):
    """Task metric at the end of training against initial ρ, one line per clipping setting.

    Parameters
    ----------
    final : DataFrame
        :func:`gradlab.plots.data.final_metrics` rows: ``setting``, ``radius``,
        ``metric``, ``lo``, ``hi`` and optionally ``n_diverged`` (runs that
        blew up are marked × on the top edge).
    color_of, labels : mapping setting → colour / legend label, optional
    chance : float, optional
        The metric of a model that ignores its inputs (adding problem: MSE 1/6),
        drawn as a grey line: below it the network has learnt something.
    log : bool
        Log y axis (for an MSE, which spans decades between a solved task
        and a diverged run).

    Returns
    -------
    Axes
    """
    ax = get_ax(ax)
    settings = list(dict.fromkeys(final["setting"]))
    color_of = color_of or category_colors(settings)
    labels = labels or {}
    for s in settings:
        f = final[final["setting"] == s].sort_values("radius")
        ok = f[np.isfinite(f["metric"])]
        ax.fill_between(ok["radius"], ok["lo"], ok["hi"], color=color_of[s], alpha=0.15, linewidth=0)
        ax.plot(f["radius"], f["metric"], "o-", color=color_of[s], label=labels.get(s, s))
        if "n_diverged" in f.columns:
            mark_at_top(ax, f.loc[f["n_diverged"] > 0, "radius"], color_of[s])
    if chance is not None and np.isfinite(chance):
        ax.axhline(chance, label="chance", **CHANCE)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(RADIUS_LABEL)
    ax.set_ylabel(metric_label)
    return ax
