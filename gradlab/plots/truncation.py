"""Drawing truncated BPTT: how far the truncated gradient is from the true one.

The tutorial's ``bptt_truncate = K`` drops every term ∂L_t/∂h_t · ∂h_t/∂h_k
with t − k > K, so how fast its relative error ‖g_K − g‖/‖g‖ falls with K
is governed by how fast ‖∂h_t/∂h_{t−K}‖ falls per step. The reference drawn with it is ρ^K, the
asymptotic rate of a linear network (not a bound: see
:mod:`gradlab.plots.norms`), and only for ρ < 1: for ρ ≥ 1 it does not decay
and, drawn through the error at K = 0, leaves the axes at once (ρ > 1) or
is a flat line across the other curves (ρ = 1). A truncation sweep saves ρ,
σ_max and γ_h per run (runs.csv) but no Jacobian norms, so the networks' own
per-step decay is not there to draw; the bound (σ_max γ_h)^K grows for every
radius but the smallest (σ_max ≈ 1.6–1.8 ρ for these Gaussian W_hh), and drawn
through the error at K = 0 it would not bound the error anyway.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .norms import data_limits
from .style import MEASURED, RATE, get_ax, log10_axis, sequential_colors

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.typing import ColorType

FLOAT64_FLOOR = np.log10(np.finfo(float).eps)  # relative errors below ~2e-16 are rounding
FLOOR: dict[str, Any] = {"color": "0.5", "linewidth": 0.6, "linestyle": (0, (6, 2, 1, 2)), "zorder": 0}


RATE_LABEL = r"$\propto\rho^{K}$ for $\rho<1$: linear-network rate, not a bound" "\n" \
             r"($\rho\geq1$: $\rho^{K}$ does not decay, not drawn)"


def rate_segment(K0: float, e0: float, K_end: float, radius: float, lo: float, hi: float):
    """The line log10 e0 + (K − K0) log10 ρ from K0 to K_end, cut where it leaves [lo, hi].

    Returns ``(K, log10_value)`` arrays of its two ends, both inside the
    limits; empty arrays when (K0, e0) is itself outside them.
    """
    slope = np.log10(radius)
    if not lo <= e0 <= hi:
        return np.array([]), np.array([])
    edge = lo if slope < 0 else hi
    K_out = K0 + (edge - e0) / slope if slope != 0 else np.inf
    K1 = min(K_end, K_out)
    return np.array([K0, K1]), np.array([e0, e0 + (K1 - K0) * slope])


def plot_truncation_error(curves: pd.DataFrame, ax: Axes | None = None,
                          color_of: Callable[[float], ColorType] | None = None, rate: bool = True,
                          limits: tuple[float, float] | None = None) -> Axes:
    """log10 relative error of truncated BPTT against truncation length K, one curve per radius.

    Parameters
    ----------
    curves : DataFrame
        :func:`gradlab.plots.data.truncation_curves` rows: ``radius``,
        ``truncate``, ``log10_error``, ``lo``, ``hi``.
    color_of : callable radius → colour, optional
    rate : bool
        Draw ρ^K (dotted, ``gid="rate"``) through each curve's first point for
        the radii ρ < 1: the decay a linear network's asymptotic rate
        predicts. It is cut where it leaves the axes (the y-range is the
        measured one). For ρ ≥ 1 it does not decay and is not drawn
        (:data:`RATE_LABEL` says so in a legend).
    limits : (lo, hi) of log10 error, optional
        The y-range; default the range of ``curves``. Panels that share a y
        axis pass the range of all of them, so that none is cut to another's.

    Returns
    -------
    Axes
    """
    ax = get_ax(ax)
    if color_of is None:
        color_of, _ = sequential_colors(curves["radius"])
    lo, hi = data_limits(curves["lo"], curves["hi"]) if limits is None else limits
    K_lo, K_hi = curves["truncate"].min(), curves["truncate"].max()
    margin = 0.04 * (K_hi - K_lo) if K_hi > K_lo else 0.5
    for radius, c in curves.groupby("radius", sort=True):
        c = c.sort_values("truncate")
        color = color_of(radius)
        ax.fill_between(c["truncate"], c["lo"], c["hi"], color=color, alpha=0.18, linewidth=0)
        ax.plot(c["truncate"], c["log10_error"], "o", color=color, markersize=2.5, **MEASURED)
        if rate and 0 < radius < 1:
            K, y = rate_segment(c["truncate"].iloc[0], c["log10_error"].iloc[0], c["truncate"].iloc[-1],
                                radius, lo, hi)
            if K.size:
                ax.plot(K, y, color=color, gid="rate", **RATE)
                # named on the line (two dark colours side by side are hard to tell apart), along its slope
                at = 0.45
                ax.text(K[0] + at * (K[1] - K[0]), y[0] + at * (y[1] - y[0]), f"${radius:g}^{{K}}$",
                        rotation=np.degrees(np.arctan(np.log10(radius))), transform_rotates_text=True,
                        rotation_mode="anchor", ha="center", va="center", fontsize=6.5, color=color, gid="rate",
                        bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none"})
    if lo < FLOAT64_FLOOR + 1:  # errors reach rounding level: show where float64 stops resolving them
        ax.axhline(FLOAT64_FLOOR, label=r"float64 rounding ($\epsilon$)", **FLOOR)
    ax.set_xlim(K_lo - margin, K_hi + margin)
    ax.set_ylim(lo, hi)
    log10_axis(ax, "y")
    ax.set_xlabel(r"truncation length $K$ (bptt_truncate)")
    ax.set_ylabel(r"$\|g_K - g\|_2 / \|g\|_2$")
    return ax
