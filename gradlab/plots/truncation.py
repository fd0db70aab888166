"""Drawing truncated BPTT: how far the truncated gradient is from the true one.

The tutorial's ``bptt_truncate = K`` drops every term ∂L_t/∂h_t · ∂h_t/∂h_k
with t − k > K, so its relative error ‖g_K − g‖/‖g‖ is governed by the size
of ‖∂h_t/∂h_{t−K}‖, which decays at the rate ρ^K for a contracting network
and does not decay for an expanding one.
"""
from __future__ import annotations

import numpy as np

from .norms import data_limits
from .style import MEASURED, RATE, get_ax, log10_axis, sequential_colors

FLOAT64_FLOOR = np.log10(np.finfo(float).eps)  # relative errors below ~2e-16 are rounding
FLOOR = {"color": "0.5", "linewidth": 0.6, "linestyle": (0, (6, 2, 1, 2)), "zorder": 0}


def plot_truncation_error(curves, ax=None, color_of=None, rate: bool = True):
    """log10 relative error of truncated BPTT against truncation length K, one curve per radius.

    Parameters
    ----------
    curves : DataFrame
        :func:`gradlab.plots.data.truncation_curves` rows: ``radius``,
        ``truncate``, ``log10_error``, ``lo``, ``hi``.
    color_of : callable radius → colour, optional
    rate : bool
        Draw ρ^K (dotted) through each curve's first point: the decay the
        asymptotic rate predicts.

    Returns
    -------
    Axes
    """
    ax = get_ax(ax)
    if color_of is None:
        color_of, _ = sequential_colors(curves["radius"])
    for radius, c in curves.groupby("radius", sort=True):
        c = c.sort_values("truncate")
        color = color_of(radius)
        ax.fill_between(c["truncate"], c["lo"], c["hi"], color=color, alpha=0.18, linewidth=0)
        ax.plot(c["truncate"], c["log10_error"], "o", color=color, markersize=2.5, **MEASURED)
        if rate and radius > 0:
            K0, e0 = c["truncate"].iloc[0], c["log10_error"].iloc[0]
            ax.plot(c["truncate"], e0 + (c["truncate"] - K0) * np.log10(radius), color=color, **RATE)
    lo, hi = data_limits(curves["lo"], curves["hi"])
    if lo < FLOAT64_FLOOR + 1:  # errors reach rounding level: show where float64 stops resolving them
        ax.axhline(FLOAT64_FLOOR, label=r"float64 rounding ($\epsilon$)", **FLOOR)
    ax.set_ylim(lo, hi)
    log10_axis(ax, "y")
    ax.set_xlabel(r"truncation length $K$ (bptt_truncate)")
    ax.set_ylabel(r"$\|g_K - g\|_2 / \|g\|_2$")
    return ax
