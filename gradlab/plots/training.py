"""Drawing training runs: loss and gradient norm per update, clipping events, final task error.

Norm clipping (Pascanu et al. 2013, Algorithm 1) rescales g to τ g/‖g‖
when ‖g‖ > τ; the gradient norm drawn is the one *before* clipping, so the
spikes that clipping tames stay visible. A run that diverges (its loss or
gradient stops being finite) is drawn while it is finite and marked once,
with a ×, at the first update that was not. Each function takes ``ax=None``
and returns the axes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .style import MEASURED, RADIUS_LABEL, RATE, category_colors, get_ax

if TYPE_CHECKING:
    from collections.abc import Mapping

    from matplotlib.axes import Axes
    from matplotlib.typing import ColorType

CHANCE: dict[str, Any] = {"color": "0.4", "linewidth": 0.8, "linestyle": (0, (4, 2)),
                          "zorder": 0}  # metric of a blind model
DIVERGED: dict[str, Any] = {"linestyle": "none", "marker": "x", "markersize": 4,
                            "markeredgewidth": 0.9}  # one mark per blow-up
EDGE = 0.955   # height (axes fraction) of the marks for values that cannot be drawn: just inside the top
SETTING_MARKERS = "osD^v<>"  # final-metric markers, one shape per clipping setting
COINCIDE_RTOL = 0.02  # settings whose final metrics differ by less than 2 % at every radius are said to coincide


def nonfinite_updates(training) -> pd.Series:
    """Updates of one run with nothing finite to draw: the gradient was skipped or the loss is inf/NaN.

    ``training`` holds rows of ``training.csv`` (``loss``, ``skipped``);
    returns a boolean Series on its index.
    """
    bad = ~np.isfinite(training["loss"].to_numpy(dtype=float))
    if "skipped" in training.columns:
        bad |= training["skipped"].astype(bool).to_numpy()
    return pd.Series(bad, index=training.index)


def divergence(training) -> tuple[float | None, int, int]:
    """Where one run diverged: (first non-finite update or None, non-finite updates, all updates)."""
    bad = nonfinite_updates(training)
    first = float(training.loc[bad, "step"].min()) if bad.any() else None
    return first, int(bad.sum()), len(training)


def mark_divergence(ax, training, color, note: bool = True):
    """One × at the top edge of ``ax`` at the update where the run first had no finite value.

    With ``note``, a short text beside it says when, and how many updates
    were not finite in all (a run that blew up may have a finite but huge
    loss between skipped updates; those values lie above the axes).
    Returns the first non-finite update, or None if the run never diverged.
    """
    first, n_bad, n = divergence(training)
    if first is None:
        return None
    ax.plot([first], [EDGE], color=color, transform=ax.get_xaxis_transform(), clip_on=False, zorder=6, **DIVERGED)
    if note:
        steps = training["step"].to_numpy(dtype=float)
        late = first > 0.5 * (steps.min() + steps.max())  # late in the run: write to the left, inside the axes
        ax.annotate(f"diverged at update {first:g} ({n_bad} of {n} updates non-finite)", (first, EDGE),
                    xycoords=("data", "axes fraction"), xytext=(-5 if late else 5, 0), textcoords="offset points",
                    ha="right" if late else "left", va="center", fontsize=6.5, color=color, zorder=6)
    return first


def mark_at_top(ax, x, color, label: str | None = None) -> None:
    """× marks just inside the top edge of ``ax`` at ``x``: values that are not finite (diverged)."""
    x = np.asarray(x, dtype=float)
    if x.size:
        ax.plot(x, np.full(x.size, EDGE), color=color, transform=ax.get_xaxis_transform(), clip_on=False,
                label=label, zorder=5, **DIVERGED)


def finite_or_nan(values) -> np.ndarray:
    """Float values with inf replaced by NaN, so a line breaks there instead of joining across."""
    v = np.asarray(values, dtype=float)
    return np.where(np.isfinite(v), v, np.nan)


def plot_loss(training: pd.DataFrame, ax: Axes | None = None, color: ColorType = "C0", label: str | None = None,
              chance: float | None = None, log: bool = True) -> Axes:
    """Training loss per update of one run (rows of ``training.csv``: ``step``, ``loss``, ``skipped``).

    ``chance``, when given, is drawn as a grey dashed line: the loss of a
    model that ignores its inputs (adding problem: MSE 1/6). ``log``: a log
    y axis (a diverging run's loss spans decades). The line breaks at
    updates that are not finite; the first of them is marked once
    (:func:`mark_divergence`).

    Returns
    -------
    Axes
    """
    ax = get_ax(ax)
    t = training.sort_values("step")
    loss = finite_or_nan(t["loss"]).copy()
    loss[nonfinite_updates(t).to_numpy()] = np.nan
    ax.plot(t["step"], loss, color=color, label=label, linewidth=0.7, **MEASURED)
    mark_divergence(ax, t, color)
    if chance is not None and np.isfinite(chance):
        ax.axhline(chance, **CHANCE)
    if log:
        ax.set_yscale("log")  # tidy ticks once every run is drawn: gradlab.plots.style.log_axis
    ax.set_xlabel("update")
    ax.set_ylabel(r"training loss $L$")
    return ax


def plot_grad_norm(training: pd.DataFrame, ax: Axes | None = None, color: ColorType = "C0", label: str | None = None,
                   threshold: float | None = None) -> Axes:
    """Pre-clip gradient norm log10‖g‖ per update, clipped updates marked with dots.

    The caller labels the y axis as a log axis (:func:`gradlab.plots.style.log10_axis`)
    once every run is drawn. The line breaks at updates skipped for a
    non-finite gradient; the first of them is marked once (:func:`mark_divergence`).

    Parameters
    ----------
    training : DataFrame
        One run's rows of ``training.csv``: ``step``, ``loss``, ``grad_norm``,
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
    norm = finite_or_nan(t["grad_norm"])
    ok = np.isfinite(norm) & (norm > 0) & ~nonfinite_updates(t).to_numpy()
    log_norm = np.where(ok, np.log10(np.where(ok, norm, 1.0)), np.nan)
    ax.plot(t["step"], log_norm, color=color, label=label, linewidth=0.7, **MEASURED)
    clipped = ok & t["clipped"].astype(bool).to_numpy()
    if clipped.any():
        ax.plot(t["step"].to_numpy()[clipped], log_norm[clipped], linestyle="none", marker="o",
                markersize=1.8, markeredgewidth=0, color=color)
    mark_divergence(ax, t, color)
    if threshold is not None and np.isfinite(threshold):
        ax.axhline(np.log10(threshold), color=color, **RATE)
    ax.set_xlabel("update")
    ax.set_ylabel(r"pre-clip gradient norm $\|g\|_2$")
    return ax


def coinciding(final, rtol: float = COINCIDE_RTOL) -> bool:
    """Whether every setting's final metric agrees within ``rtol`` at every radius (≥ 2 settings).

    ``final`` holds :func:`gradlab.plots.data.final_metrics` rows (``setting``,
    ``radius``, ``metric``) of one panel. Such curves lie on top of each other
    and need saying so, or a reader takes the hidden ones for missing data.
    """
    ok = final[np.isfinite(final["metric"].to_numpy(dtype=float))]
    if ok["setting"].nunique() < 2:
        return False
    per_radius = ok.groupby("radius")["metric"]
    spread = (per_radius.max() - per_radius.min()) / per_radius.max().abs()
    shared = ok.groupby("radius")["setting"].nunique() == ok["setting"].nunique()
    return bool(shared.all() and (spread <= rtol).all())


def plot_final_metric(final: pd.DataFrame, ax: Axes | None = None, color_of: Mapping[Any, ColorType] | None = None,
                      labels: Mapping[Any, str] | None = None, chance: float | None = None,
                      metric_label: str = "final task error", log: bool = False,
                      marker_of: Mapping[Any, tuple[str, float]] | None = None) -> Axes:
    """Task metric at the end of training against initial ρ, one line per clipping setting.

    Parameters
    ----------
    final : DataFrame
        :func:`gradlab.plots.data.final_metrics` rows: ``setting``, ``radius``,
        ``metric``, ``lo``, ``hi`` and optionally ``n_diverged`` (radii where
        runs blew up are marked × at the top edge).
    color_of, labels : mapping setting → colour / legend label, optional
    chance : float, optional
        The metric of a model that ignores its inputs (adding problem: MSE 1/6),
        drawn as a grey line: below it the network has learnt something.
    log : bool
        Log y axis (for an MSE, which spans decades between a solved task
        and a diverged run).
    marker_of : mapping setting → (marker, size), optional
        Default :func:`setting_markers`: a different shape per setting, each
        drawn smaller than the one before, so points that coincide stay
        visible as concentric marks. When all settings coincide
        (:func:`coinciding`) the panel says so.

    Returns
    -------
    Axes
    """
    ax = get_ax(ax)
    settings = list(dict.fromkeys(final["setting"]))
    color_of = color_of or category_colors(settings)
    marker_of = marker_of or setting_markers(settings)
    labels = labels or {}
    for s in settings:
        f = final[final["setting"] == s].sort_values("radius")
        ok = f[np.isfinite(f["metric"])]
        marker, size = marker_of[s]
        ax.fill_between(ok["radius"], ok["lo"], ok["hi"], color=color_of[s], alpha=0.15, linewidth=0)
        ax.plot(f["radius"], f["metric"], color=color_of[s], marker=marker, markersize=size, markeredgewidth=0,
                label=labels.get(s, s))
        if "n_diverged" in f.columns:
            mark_at_top(ax, f.loc[f["n_diverged"] > 0, "radius"], color_of[s])
    if coinciding(final):
        ax.text(0.5, 0.04, f"all {len(settings)} settings coincide (within {COINCIDE_RTOL:.0%})",
                transform=ax.transAxes, ha="center", va="bottom", fontsize=6.5)
    if chance is not None and np.isfinite(chance):
        ax.axhline(chance, label="chance", **CHANCE)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(RADIUS_LABEL)
    ax.set_ylabel(metric_label)
    return ax


def setting_markers(settings) -> dict:
    """setting → (marker, size): a shape each, sizes shrinking in drawing order (coincident points stay visible)."""
    return {s: (SETTING_MARKERS[i % len(SETTING_MARKERS)], max(5.5 - 1.3 * i, 2.0)) for i, s in enumerate(settings)}
