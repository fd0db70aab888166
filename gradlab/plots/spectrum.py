"""Drawing the spectrum of W_hh (of J_T for a gated cell): eigenvalues in the complex plane, singular values.

The eigenvalues decide the asymptotic rate ρ = max|λ| of ‖∂h_t/∂h_k‖; the
singular values decide the bound σ_max γ_h. For a non-normal W_hh the two
differ (σ_max ≈ 2ρ for a Gaussian matrix), which is why ρ < 1 does not stop
short-lag growth. Each function draws one run's ``spectrum.csv`` rows
(``kind``, ``index``, ``real``, ``imag``, ``abs``), takes ``ax=None`` and
returns the axes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib import ticker

from .style import BOUND, COINCIDE_TOL, COINCIDENT, RATE, REFERENCE, get_ax

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.typing import ColorType


def circle(ax, radius: float, **style) -> None:
    """Draw the circle |z| = radius."""
    theta = np.linspace(0.0, 2.0 * np.pi, 361)
    ax.plot(radius * np.cos(theta), radius * np.sin(theta), **style)


def plot_eigenvalues(spectrum: pd.DataFrame, ax: Axes | None = None, color: ColorType = "C0", label: str | None = None,
                     unit_circle: bool = True, rho_circle: bool = True) -> Axes:
    """Eigenvalues λ_i of W_hh in the complex plane with the unit circle and the circle |z| = ρ.

    Parameters
    ----------
    spectrum : DataFrame
        One run's spectrum rows; those with ``kind == "eigenvalue"`` are drawn.
    color : colour of the points and of the ρ-circle (dotted).
    label : legend label of the points.
    unit_circle : draw the unit circle (labelled |λ| = 1) and the axes (once per panel).
    rho_circle : draw the circle |z| = ρ dotted in ``color`` (a caller showing
        several runs of one ρ draws it once instead).

    Returns
    -------
    Axes
    """
    ax = get_ax(ax)
    eig = spectrum[spectrum["kind"] == "eigenvalue"]
    rho = eig["abs"].max()
    if unit_circle:
        circle(ax, 1.0, label="unit circle", **{**REFERENCE, "linewidth": 0.8})
        ax.annotate(r"$|\lambda| = 1$", (np.sqrt(0.5), np.sqrt(0.5)), xytext=(2, 2), textcoords="offset points",
                    ha="left", va="bottom", fontsize=6.5, color="0.4")
        ax.axhline(0.0, **REFERENCE)
        ax.axvline(0.0, **REFERENCE)
    if rho_circle:
        circle(ax, rho, color=color, **RATE)
    ax.plot(eig["real"], eig["imag"], "o", color=color, markersize=2.2, markeredgewidth=0, alpha=0.85, label=label)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel(r"$\mathrm{Re}\,\lambda$")
    ax.set_ylabel(r"$\mathrm{Im}\,\lambda$")
    return ax


def plot_singular_values(spectrum: pd.DataFrame, ax: Axes | None = None, color: ColorType = "C0",
                         label: str | None = None, theory: np.ndarray | None = None, rho_line: bool = True,
                         annotate: bool = True, matrix: str | None = "W_{hh}") -> Axes:
    """Singular values σ_i of W_hh (largest first) with σ_max marked and ρ as a dotted line.

    Parameters
    ----------
    spectrum : DataFrame
        One run's spectrum rows; those with ``kind == "singular_value"`` are drawn.
    theory : (n,) array, optional
        Expected singular values (e.g. :func:`gradlab.plots.data.theory_singular_values`),
        drawn dashed in the same colour (``gid="theory"``; not drawn again where it is the measured line).
    rho_line : bool
        Draw ρ dotted in ``color`` (a caller showing several runs of one ρ
        draws it once instead, on top).
    annotate : bool
        Write σ_max and ρ beside the ★ (a caller showing many runs, whose
        notes would overlap, names them in its legend instead).
    matrix : str or None
        Whose singular values they are, as mathtext, for the y label
        (``"J_T"`` for a gated cell's last step Jacobian); None: unnamed.

    Notes
    -----
    For a normal W_hh every σ_i equals ρ: the measured line is then drawn
    wide and pale (:data:`gradlab.plots.style.COINCIDENT`), so that ρ on top
    of it stays visible.

    Returns
    -------
    Axes
    """
    ax = get_ax(ax)
    sv = spectrum[spectrum["kind"] == "singular_value"].sort_values("index")
    rho = spectrum.loc[spectrum["kind"] == "eigenvalue", "abs"].max()
    i = sv["index"].to_numpy() + 1
    if np.allclose(sv["abs"], rho, rtol=COINCIDE_TOL * np.log(10), atol=0):  # every σ_i = ρ: a normal matrix
        ax.plot(i, sv["abs"], color=color, label=label, **COINCIDENT)
    else:
        ax.plot(i, sv["abs"], "o-", color=color, markersize=2, markeredgewidth=0, linewidth=0.6, label=label)
    if theory is not None and not (len(theory) == len(sv)
                                   and np.allclose(theory, sv["abs"], rtol=COINCIDE_TOL * np.log(10), atol=0)):
        ax.plot(np.arange(1, len(theory) + 1), theory, color=color, gid="theory", **BOUND)
    if rho_line:
        ax.axhline(rho, color=color, **RATE)
    smax = sv["abs"].iloc[0]
    ax.plot([1], [smax], marker="*", markersize=8, color=color, markeredgecolor="black", markeredgewidth=0.4,
            linestyle="none", zorder=5)
    if annotate:
        ax.annotate(rf"$\sigma_{{\max}}={smax:.2f}$, $\rho={rho:.2f}$", (1, smax), xytext=(6, 3),
                    textcoords="offset points", va="bottom", ha="left", fontsize=7, color=color)
    ax.set_xlabel(r"index $i$")
    ax.set_ylabel(rf"singular value $\sigma_i({matrix})$" if matrix else r"singular value $\sigma_i$")
    ax.set_xlim(0, i.max() + 1)
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))  # σ_i are numbered: no tick at 2.5
    ax.set_ylim(0, max(ax.get_ylim()[1], 1.12 * smax))
    return ax
