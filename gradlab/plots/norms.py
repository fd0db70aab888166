"""Drawing Jacobian-product norms: against lag, over (t, k), growth rates, transient growth.

Each function draws one panel from a table made by :mod:`gradlab.plots.data`,
takes ``ax=None`` (a new figure) and returns the axes. Values arrive as
log10 and are drawn on a linear axis labelled as a log axis (10^n ticks),
so exploding norms far beyond 1e308 stay finite.

Symbols: ρ = spectral radius of W_hh, σ_max = its largest singular value,
γ_h = sup|φ'|. Bound ‖∂h_t/∂h_k‖₂ ≤ (σ_max γ_h)^(t−k) (dashed); the
asymptotic rate ρ^(t−k) (dotted) is not a bound (Pascanu et al. 2013).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colors, ticker

from .style import (BOUND, COINCIDE_TOL, COINCIDENT, LAG_LABEL, MEASURED, NORM_LABEL, ON_TOP, RADIUS_LABEL, RATE,
                    REFERENCE, category_colors, get_ax, log10_axis, sequential_colors)

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping

    import numpy.typing as npt
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.typing import ColorType


def data_limits(*columns, pad: float = 0.06, include=()) -> tuple[float, float]:
    """Range of the finite values in ``columns`` (and ``include``), padded by a fraction."""
    values = np.concatenate([np.asarray(c, dtype=float).ravel() for c in columns] + [np.asarray(include, float)])
    values = values[np.isfinite(values)]
    lo, hi = (values.min(), values.max()) if values.size else (-1.0, 1.0)
    margin = pad * (hi - lo) if hi > lo else 0.5
    return lo - margin, hi + margin


def coincides(a, b, tol: float = COINCIDE_TOL) -> bool:
    """Whether two log10 curves on the same lags are one line at print size (max |a − b| ≤ ``tol``).

    False when nothing can be compared (every difference NaN: a gated cell's empty ρ-rate, say).
    """
    d = np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))
    d = d[~np.isnan(d)]
    return bool(d.size) and bool(d.max() <= tol)


def centred_norm(lo: float, hi: float) -> colors.Normalize:
    """Colour scale for log10 values from ``lo`` to ``hi``, centred on 0 (a norm of 1), equal decades each side.

    As many decades above 1 as below take the same depth of colour, so a run whose norms reach 10^0.2 at
    lag 1 and 10^-4 later is pale red and deep blue: a two-slope scale made 10^0.2 as deep a red as 10^-4
    is a blue.
    """
    half = max(-lo, hi, 1e-9)
    return colors.Normalize(-half, half)  # the caller cuts its colour bar to [lo, hi]


def label_exit(ax, x, y, text: str, color="black") -> float | None:
    """Write ``text`` where the curve (x, y) leaves through the top of ``ax``; call once the limits are set.

    A theory line that grows much faster than the data (the bound of a
    non-normal W_hh) leaves the axes after a few steps; the label says what
    it was. Returns the x where it leaves, or None if it stays inside.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    top = ax.get_ylim()[1]
    above = np.nonzero(y > top)[0]
    if not above.size:
        return None
    i = above[0]
    x_out = x[i] if i == 0 else np.interp(top, [y[i - 1], y[i]], [x[i - 1], x[i]])
    ax.annotate(text, (x_out, top), xytext=(3, -3), textcoords="offset points", ha="left", va="top",
                fontsize=6.5, color=color)
    return float(x_out)


def plot_norms_vs_lag(curves: pd.DataFrame, ax: Axes | None = None, by: str = "radius",
                      color_of: Callable[[Any], ColorType] | dict[Any, ColorType] | None = None,
                      labels: Mapping[Any, str] | None = None, bound: bool = True, rate: bool = True,
                      spread: bool = True, wide: Collection[Any] = ()) -> Axes:
    """‖∂h_t/∂h_k‖₂ against lag, one curve per initial spectral radius, with the bound and ρ-rate.

    Parameters
    ----------
    curves : DataFrame
        Rows of :func:`gradlab.plots.data.lag_curves` for one panel:
        ``by``, ``lag``, ``log10_norm``, ``lo``, ``hi``, ``log10_bound``,
        ``log10_rate``.
    ax : matplotlib Axes, optional
    by : str
        The column that tells curves apart (default ``radius``).
    color_of : callable or mapping, value of ``by`` → colour, optional
        Shared across panels so that one colour bar serves them all.
        Default: viridis over the values.
    labels : mapping value → legend label, optional
        Label the measured curves (for a legend instead of a colour bar).
    bound, rate, spread : bool
        Draw the bound (σ_max γ_h)^(t−k) dashed, the rate ρ^(t−k) dotted, and
        the band between the smallest and largest per-seed mean.
    wide : collection of values of ``by``
        Curves drawn wide and pale (:data:`gradlab.plots.style.COINCIDENT`),
        for a theory line the caller draws on top of them.

    Returns
    -------
    Axes

    Notes
    -----
    The y-range is the measured range, so theory lines that leave it (the
    bound of an exploding network, steeply) are cut at the frame rather than
    squashing the data.
    """
    ax = get_ax(ax)
    if color_of is None:
        color_of, _ = sequential_colors(curves[by])
    color = color_of.get if isinstance(color_of, dict) else color_of
    labels = labels or {}
    for value, c in curves.groupby(by, sort=True):
        c = c.sort_values("lag")
        if spread:
            ax.fill_between(c["lag"], c["lo"], c["hi"], color=color(value), alpha=0.18, linewidth=0)
        ax.plot(c["lag"], c["log10_norm"], color=color(value), label=labels.get(value),
                **(COINCIDENT if value in wide else MEASURED))
        if bound:
            ax.plot(c["lag"], c["log10_bound"], color=color(value), **BOUND)
        if rate:
            ax.plot(c["lag"], c["log10_rate"], color=color(value), **RATE)
    ax.axhline(0.0, **REFERENCE)
    ax.set_xlim(curves["lag"].min(), curves["lag"].max())
    ax.set_ylim(*data_limits(curves["lo"], curves["hi"], include=[0.0]))
    log10_axis(ax, "y")
    ax.set_xlabel(LAG_LABEL)
    ax.set_ylabel(NORM_LABEL)
    return ax


NO_PAIR = "0.82"  # grey of the (t, k) cells with t ≤ k: distinct from the white of ‖·‖ = 1 on RdBu


def plot_norm_heatmap(t: np.ndarray, k: np.ndarray, grid: np.ndarray, ax: Axes | None = None,
                      norm: colors.Normalize | None = None, cmap: str = "RdBu_r", blank_label: bool = True) -> Axes:
    """Heatmap of log10‖∂h_t/∂h_k‖₂ over input step k (x) and output step t (y).

    Parameters
    ----------
    t : (P,) int
    k : (Q,) int
    grid : (P, Q) float
        From :func:`gradlab.plots.data.pair_grid`; NaN (t ≤ k) is drawn grey,
        not white, which on this colour map means a norm of 1.
    norm : matplotlib Normalize, optional
        Default: :func:`centred_norm` of the grid's range (blue vanishes, red explodes).
    blank_label : bool
        Write "t ≤ k: no pair" in the grey corner (bottom right).

    Returns
    -------
    Axes
        The image is ``ax.images[0]`` (for a colour bar).
    """
    ax = get_ax(ax)
    if norm is None:
        norm = centred_norm(*data_limits(grid, pad=0.0, include=[-1e-9, 1e-9]))
    extent = (k[0] - 0.5, k[-1] + 0.5, t[0] - 0.5, t[-1] + 0.5)
    ax.imshow(np.ma.masked_invalid(grid), origin="lower", extent=extent, aspect="auto", norm=norm,
              cmap=plt.get_cmap(cmap).with_extremes(bad=NO_PAIR), interpolation="nearest")
    if blank_label:
        ax.text(0.97, 0.03, r"$t \leq k$: no pair", transform=ax.transAxes, ha="right", va="bottom",
                fontsize=6.5, color="0.25")
    for axis in (ax.xaxis, ax.yaxis):  # steps are whole numbers: no tick at 2.5
        axis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.set_xlabel(r"input step $k$")
    ax.set_ylabel(r"output step $t$")
    return ax


def plot_growth_rates(summary: pd.DataFrame, ax: Axes | None = None, color: ColorType = "C0", label: str | None = None,
                      theory_color: ColorType = "black") -> Axes:
    """Measured per-step growth rate against initial ρ, with ln(σ_max γ_h) and ln ρ.

    Parameters
    ----------
    summary : DataFrame
        Rows of :func:`gradlab.plots.data.growth_summary` for one
        activation (and cell): ``radius``, ``growth_rate``, ``lo``, ``hi``,
        ``bound_rate``, ``log_rho``.
    color : colour of the measured points and band.
    label : legend label of the measured points.
    theory_color : colour of the bound (dashed) and rate (dotted) lines.

    Returns
    -------
    Axes

    Notes
    -----
    Above 0 the norm grows with lag (explodes), below it vanishes. The
    measured rate must lie below ln(σ_max γ_h) (the bound); ln ρ is where a
    linear network would settle and is not a bound. A theory line is drawn
    through its finite values only (``gid`` "bound", "rate"), and not at all
    when it has none: a gated cell has no ln ρ (its ``log_rho`` is NaN).
    """
    ax = get_ax(ax)
    s = summary.sort_values("radius")
    ax.axhline(0.0, **REFERENCE)
    ax.fill_between(s["radius"], s["lo"], s["hi"], color=color, alpha=0.2, linewidth=0)
    ax.plot(s["radius"], s["growth_rate"], "o", color=color, label=label or "measured (mean over seeds)",
            **MEASURED)
    for column, gid, style, text in (("bound_rate", "bound", BOUND, r"bound $\ln(\sigma_{\max}\gamma_h)$"),
                                     ("log_rho", "rate", RATE, r"rate $\ln\rho$")):
        finite = s[np.isfinite(s[column].to_numpy(dtype=float))]
        if len(finite):
            ax.plot(finite["radius"], finite[column], color=theory_color, label=text, gid=gid, **style)
    ax.set_xlabel(RADIUS_LABEL)
    ax.set_ylabel("growth rate (nats / step)")
    return ax


def plot_transient_growth(curves: pd.DataFrame, ax: Axes | None = None, color_of: Mapping[Any, ColorType] | None = None,
                          labels: Mapping[Any, str] | None = None, include: npt.ArrayLike = ()) -> Axes:
    """‖∂h_t/∂h_k‖₂ / ρ^(t−k) against lag: where ρ^(t−k) underestimates the norm.

    Parameters
    ----------
    curves : DataFrame
        :func:`gradlab.plots.data.lag_curves` rows grouped by ``init``:
        ``init``, ``lag``, ``log10_norm``, ``lo``, ``hi``, ``log10_bound``,
        ``log10_rate``.
    color_of : mapping init → colour, optional
    labels : mapping init → legend label, optional
    include : log10 values the y-range must also hold (e.g. a theory curve the caller adds)

    Returns
    -------
    Axes

    Notes
    -----
    For a normal W_hh (orthogonal × ρ) with a linear activation
    ‖W^k‖ = ρ^k exactly, the ratio is 1: such a curve is drawn wide and pale
    with the reference ρ^(t−k) (dotted, black) on top and a note saying so,
    and its bound, equal to it, is not drawn again. A non-normal W_hh (Gaussian) has
    ‖W^k‖ > ρ^k at short lags (transient growth), bounded by σ_max^k / ρ^k
    (dashed, labelled where it leaves the axes); ‖W^k‖^(1/k) → ρ only as
    k → ∞ (Gelfand).
    """
    ax = get_ax(ax)
    inits = list(dict.fromkeys(curves["init"]))
    color_of = color_of or category_colors(inits)
    labels = labels or {}
    bounds = []
    on_reference = []
    for init in inits:
        c = curves[curves["init"] == init].sort_values("lag")
        color = color_of[init]
        ratio = c["log10_norm"] - c["log10_rate"]
        bound = c["log10_bound"] - c["log10_rate"]
        flat = coincides(ratio, 0.0)
        if flat:
            on_reference.append(init)
        ax.fill_between(c["lag"], c["lo"] - c["log10_rate"], c["hi"] - c["log10_rate"], color=color, alpha=0.2,
                        linewidth=0)
        ax.plot(c["lag"], ratio, color=color, label=labels.get(init, init), **(COINCIDENT if flat else MEASURED))
        if not coincides(bound, ratio):
            ax.plot(c["lag"], bound, color=color, gid="bound", **BOUND)
            bounds.append((c["lag"], bound, color))
    ax.axhline(0.0, label=r"$\rho^{t-k}$ (ratio 1)", gid="rate", **{**RATE, **ON_TOP})
    measured = curves["hi"] - curves["log10_rate"]
    ax.set_ylim(*data_limits(curves["lo"] - curves["log10_rate"], measured, include=[0.0, *np.ravel(include)],
                             pad=0.08))
    ax.set_xlim(curves["lag"].min(), curves["lag"].max())
    log10_axis(ax, "y")
    for lag, bound, color in bounds:
        factor = 10 ** float(np.mean(bound / lag))  # σ_max γ_h / ρ, from lag · log10 of it
        label_exit(ax, lag, bound, r"bound $(\sigma_{\max}\gamma_h/\rho)^{t-k} = " + f"{factor:.2f}" + "^{t-k}$",
                   color)
    for init in on_reference:  # said in words: the pale curve under the dotted line is data, not a gap
        ax.annotate(f"{init}: ratio 1 at every lag", (0.5, 0.0), xycoords=("axes fraction", "data"),
                    xytext=(0, 4), textcoords="offset points", ha="center", va="bottom", fontsize=6.5,
                    color=color_of[init])
    ax.set_xlabel(LAG_LABEL)
    ax.set_ylabel(NORM_LABEL + r"$\;/\;\rho^{t-k}$")
    return ax
