"""The one place where figures get their look: style file, sizes, colours, axes helpers, saving.

Every figure is drawn inside :func:`figure_style`, which applies the packaged
``gradlab.mplstyle`` (SciencePlots-like: journal column width, inward ticks,
thin lines, no legend frame, colour-blind-safe cycle) with
``matplotlib.pyplot.style.context``; nothing else in gradlab sets rcParams.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window; figures are drawn on machines without a screen

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import colors, ticker  # noqa: E402

from ..errors import GradlabError, PathLike  # noqa: E402
from ..io.results import FILE_MODE, write_errors  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from matplotlib.figure import Figure

STYLE = resources.files("gradlab.plots") / "gradlab.mplstyle"
COLUMN_WIDTH = 3.5   # inches: one journal column
TEXT_WIDTH = 7.1     # inches: two columns / full text width
FORMATS = ("pdf", "png")

# Line styles that mean the same thing in every figure.
MEASURED: dict[str, Any] = {"linestyle": "-"}
BOUND: dict[str, Any] = {"linestyle": (0, (4, 2)), "linewidth": 0.8}        # (σ_max γ_h)^(t−k): a true upper bound
RATE: dict[str, Any] = {"linestyle": (0, (1, 1.5)), "linewidth": 0.9}       # ρ^(t−k): asymptotic rate, not a bound
REFERENCE: dict[str, Any] = {"color": "0.55", "linewidth": 0.5, "zorder": 0}  # unit circle, ‖·‖ = 1, zero growth
# A measured curve that a theory line lies on exactly (an orthogonal W_hh follows ρ^(t−k)): drawn wide and
# pale, the theory line on top in black, so that neither hides the other.
COINCIDENT: dict[str, Any] = {"linestyle": "-", "linewidth": 3.2, "alpha": 0.4, "solid_capstyle": "butt"}
ON_TOP: dict[str, Any] = {"color": "black", "zorder": 4}
COINCIDE_TOL = 0.005  # log10 units (1 %): closer than this, two curves are one line at print size

# Labels shared across figures (mathtext).
NORM_LABEL = r"$\|\partial h_t / \partial h_k\|_2$"
LAG_LABEL = r"lag $t-k$ (steps)"
RADIUS_LABEL = r"initial spectral radius $\rho(W_{hh})$"
GATED_RADIUS_LABEL = r"initial $\rho$ of each recurrent gate block"
STATE_NORM_LABEL = r"$\|\partial s_t / \partial s_k\|_2$"   # s = h, or (h, C) for an LSTM

# The cells, in the same colours and words in every figure (Okabe–Ito, colour-blind safe).
CELL_COLORS = {"rnn": "#0072B2", "lstm": "#D55E00", "gru": "#009E73"}
CELL_NAMES = {"rnn": "vanilla RNN", "lstm": "LSTM (h, C)", "gru": "GRU"}


@contextmanager
def figure_style() -> Iterator[None]:
    """Apply the gradlab style for the figures drawn inside the block."""
    with resources.as_file(STYLE) as path, plt.style.context(str(path)):
        yield


def get_ax(ax=None, figsize=(COLUMN_WIDTH, 2.6)):
    """Return ``ax`` or, if None, the axes of a new figure of ``figsize``."""
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def category_colors(values) -> dict:
    """Distinct values (first-seen order) → colours of the style's colour-blind-safe cycle."""
    return {v: f"C{i}" for i, v in enumerate(dict.fromkeys(values))}


def sequential_colors(values, cmap: str = "viridis"):
    """Map numbers (e.g. radii) to colours of a sequential, colour-blind-safe map.

    Returns ``(color_of, mappable)``: a function value → RGBA and a
    ScalarMappable for a colour bar. The top 10 % of viridis (pale yellow) is
    left out so the lightest curve stays visible on white.
    """
    values = np.asarray(sorted(set(values)), dtype=float)
    lo, hi = (values[0], values[-1]) if values.size else (0.0, 1.0)
    norm = colors.Normalize(lo, hi if hi > lo else lo + 1.0)
    base = plt.get_cmap(cmap)
    cmap_ = colors.ListedColormap(base(np.linspace(0.0, 0.9, 256)))
    mappable = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap_)
    return (lambda v: cmap_(norm(v))), mappable


def ranked_colors(values, cmap: str = "viridis") -> dict:
    """Distinct numbers (sorted) → colours evenly spaced along a sequential map, by rank not by value.

    For a few unevenly spaced values (radii 0.5, 0.9, 1, 1.1, 1.5, 2), where
    colours by value make the close ones indistinguishable; they go with a
    legend that names each value rather than a colour bar. The pale top
    10 % of viridis is left out, as in :func:`sequential_colors`.
    """
    values = sorted(set(float(v) for v in values))
    base = plt.get_cmap(cmap)
    return {v: base(0.9 * i / max(len(values) - 1, 1)) for i, v in enumerate(values)}


def log_ticks(lo: float, hi: float):
    """Tick positions (log10 units) and labels for a log axis spanning 10^lo … 10^hi.

    Over less than two decades: 1, 2, 5 × 10^n written as plain numbers
    (minor ticks at the other digits), or 1, 2, 3, 5 or every digit when that
    gives fewer than three labels (half a decade would otherwise show one);
    otherwise whole powers 10^n at a nice step, with minor ticks at
    2…9 × 10^n when the step is one decade.

    Returns
    -------
    major, minor : list of float (log10 of the tick values)
    label : callable log10 value → tick text
    """
    decades = range(int(np.floor(lo)), int(np.ceil(hi)) + 1)
    if hi - lo < 2:
        def ticks(digits):
            return [v for n in decades for m in digits if lo <= (v := n + np.log10(m)) <= hi]

        choices = ((1, 2, 5), (1, 2, 3, 5), tuple(range(1, 10)))
        labelled = next((c for c in choices if len(ticks(c)) >= 3), choices[-1])
        major = ticks(labelled)
        minor = ticks(tuple(m for m in range(1, 10) if m not in labelled))
        return major, minor, lambda v: f"{10 ** v:.3g}"
    major = ticker.MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10], integer=True).tick_values(lo, hi)
    major = [v for v in major if lo <= v <= hi]
    one_decade = len(major) > 1 and major[1] - major[0] == 1
    minor = [n + np.log10(m) for n in decades for m in range(2, 10)] if one_decade else []
    return major, minor, lambda v: f"$10^{{{v:.0f}}}$"


def log10_axis(ax, axis: str = "y") -> None:
    """Label an axis that holds log10 values as a log axis.

    Values are kept as log10 (an exploding norm of 10^400 is a finite 400
    here, while 10**400 would overflow a float); only the ticks show powers
    of ten (:func:`log_ticks`). Call it after the limits are set.
    """
    target = ax.yaxis if axis == "y" else ax.xaxis
    lo, hi = sorted(ax.get_ylim() if axis == "y" else ax.get_xlim())
    major, minor, label = log_ticks(lo, hi)
    target.set_major_locator(ticker.FixedLocator(major))
    target.set_major_formatter(ticker.FuncFormatter(lambda v, _: label(v)))
    target.set_minor_locator(ticker.FixedLocator(minor))


def log_axis(ax, axis: str = "y") -> None:
    """Put a (positive, float-range) axis on a log scale with the ticks of :func:`log_ticks`."""
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    target = ax.yaxis if axis == "y" else ax.xaxis
    lo, hi = np.log10(sorted(ax.get_ylim() if axis == "y" else ax.get_xlim()))
    major, minor, label = log_ticks(lo, hi)
    target.set_major_locator(ticker.FixedLocator(10.0 ** np.asarray(major)))
    target.set_major_formatter(ticker.FuncFormatter(lambda v, _: label(np.log10(v))))
    target.set_minor_locator(ticker.FixedLocator(10.0 ** np.asarray(minor)))
    target.set_minor_formatter(ticker.NullFormatter())


def panel_letter(i: int) -> str:
    """The letter of panel ``i`` (0-based): a … z, then aa, ab, … az, ba, … (as spreadsheet columns)."""
    if i < 0:
        raise ValueError(f"panel index must be ≥ 0, got {i}")
    letters = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        letters = chr(ord("a") + r) + letters
    return letters


def panel_label(ax, label) -> None:
    """Bold panel letter (a), (b), … above the top-left corner of ``ax``; ``label`` is a letter or an index."""
    ax.set_title(f"({panel_letter(label) if isinstance(label, (int, np.integer)) else label})", loc="left",
                 fontweight="bold")


MAX_COLUMNS = 4   # panels per row before a figure wraps into more rows (the text width holds 4 readable panels)
MAX_PANELS = 48   # more than this, and a panel is a stamp: the figure refuses and says how many there are


def panel_grid(n: int, max_columns: int = MAX_COLUMNS, what: str = "panels") -> tuple[int, int]:
    """(rows, columns) for ``n`` panels: one row up to ``max_columns``, then wrapped into more rows.

    Raises GradlabError (one line, naming ``what``) for no panels or more than :data:`MAX_PANELS`.
    """
    if n < 1:
        raise GradlabError(f"no {what} to draw")
    if n > MAX_PANELS:
        raise GradlabError(f"{n} {what} are too many for one figure (at most {MAX_PANELS}): "
                           "give a results folder with fewer of them")
    columns = min(n, max_columns)
    return -(-n // columns), columns


def panel_axes(n: int, height: float, row_height: float | None = None, width: float = TEXT_WIDTH,
               max_columns: int = MAX_COLUMNS, what: str = "panels", **subplots):
    """A figure with ``n`` panels in rows of at most ``max_columns`` (:func:`panel_grid`).

    ``height`` is the figure's height with one row; each further row adds
    ``row_height`` (default: ``height`` less 0.3 in for the legend above the
    first). Slots left over in the last row are removed, and a panel with no
    panel below it keeps its x tick labels (``sharex`` hides them otherwise).
    Returns ``(fig, axes)``, ``axes`` a list of ``n`` Axes in reading order.
    """
    rows, columns = panel_grid(n, max_columns, what)
    row_height = height - 0.3 if row_height is None else row_height
    fig, grid = plt.subplots(rows, columns, figsize=(width, height + (rows - 1) * row_height), squeeze=False,
                             **subplots)
    flat = list(grid.ravel())
    for ax in flat[n:]:
        ax.remove()
    axes = flat[:n]
    for i, ax in enumerate(axes):
        if i + columns >= n:  # nothing below it: its own x tick labels
            ax.xaxis.set_tick_params(which="both", labelbottom=True)
    return fig, axes


def outer_labels(axes, columns: int) -> None:
    """Say each axis label once: on the first panel of a row (y) and the lowest of a column (x).

    A label is cleared only where a neighbour says the same (the panel to the left of it in its row for y,
    below it for x), so panels that differ (ρ(W_hh) beside ρ of a gate block) keep their own.
    """
    n = len(axes)
    for i, ax in enumerate(axes):  # top down: a label is compared with its neighbour's before that is cleared
        if i % columns and ax.get_ylabel() == axes[i - i % columns].get_ylabel():
            ax.set_ylabel("")
        if i + columns < n and ax.get_xlabel() == axes[i + columns].get_xlabel():
            ax.set_xlabel("")


def parse_formats(formats) -> tuple[str, ...]:
    """``"pdf,png"`` or an iterable → a tuple of known formats, each once, in the order given; else GradlabError."""
    if isinstance(formats, str):
        formats = [f.strip().lower() for f in formats.split(",") if f.strip()]
    formats = tuple(dict.fromkeys(formats))  # "png,png" writes the file once
    if not formats:
        raise GradlabError("no figure format given; use e.g. --format pdf,png")
    for f in formats:
        if f not in ("pdf", "png", "svg"):
            raise GradlabError(f"unknown figure format {f!r}; choose from pdf, png, svg")
    return formats


def save_figure(fig: Figure, stem: PathLike, formats: str | Iterable[str] = FORMATS) -> list[Path]:
    """Save ``fig`` as ``stem.<format>`` for each format and close it.

    PNGs are 300 dpi (style file). Metadata that would change from run to run
    (creation date) is left out, so the same CSVs give the same bytes. Each
    file is written to a temporary name of its own (two writers into one
    folder never share one) and renamed into place, so a reader never sees
    half a figure; a full disk or read-only folder is one line
    (:class:`~gradlab.io.results.WriteFailed`).
    """
    stem = Path(stem)
    with write_errors(stem.parent):
        stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    # Lay the figure out once (Agg) and freeze it: otherwise constrained layout reruns at every
    # savefig with that format's renderer, and the PNG would depend on whether a PDF was saved first.
    fig.canvas.draw()
    fig.set_layout_engine("none")
    try:
        for fmt in parse_formats(formats):
            path = stem.with_name(f"{stem.name}.{fmt}")
            metadata = {"CreationDate": None} if fmt == "pdf" else {"Date": None} if fmt == "svg" else {}
            with write_errors(path):
                # a temporary name of its own: two `gradlab plot`s into one folder never share one
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
                try:
                    try:
                        os.fchmod(fd, FILE_MODE)
                    finally:
                        os.close(fd)
                    fig.savefig(tmp, format=fmt, metadata=metadata)
                    os.replace(tmp, path)
                finally:
                    Path(tmp).unlink(missing_ok=True)
            paths.append(path)
    finally:
        plt.close(fig)
    return paths
