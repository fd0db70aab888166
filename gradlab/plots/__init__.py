"""Paper-quality figures from saved CSVs (``gradlab plot``, ``gradlab reproduce``).

Computing and drawing are kept apart:

* :mod:`gradlab.plots.data` reads results folders into DataFrames and
  reduces them (means over seeds, (t, k) grids, growth rates, theory curves);
* :mod:`~gradlab.plots.norms`, :mod:`~gradlab.plots.spectrum`,
  :mod:`~gradlab.plots.training`, :mod:`~gradlab.plots.truncation` hold the
  ``plot_*`` functions: each draws one panel from a DataFrame, takes
  ``ax=None`` and returns the axes;
* :mod:`~gradlab.plots.builders` (and :mod:`~gradlab.plots.dynamics`) lay
  panels out into the figure set; :mod:`~gradlab.plots.figures` keeps the
  registry :data:`FIGURES` (name → builder, tables it reads, description)
  and draws a figure into files;
* :mod:`~gradlab.plots.style` is the one place for the look: the packaged
  ``gradlab.mplstyle`` applied with :func:`figure_style`, sizes, colours, saving.

Example
-------
>>> from gradlab.plots import draw_figure
>>> draw_figure("heatmap", "results/heatmap", "figures", formats="png")  # doctest: +SKIP

Importing :mod:`gradlab.plots` or the registry :mod:`gradlab.plots.figures`
does not import matplotlib: the names below are loaded on first use, and
the builders when a figure is drawn (``gradlab plot --list`` starts fast).
"""
from importlib import import_module

# name → the submodule that defines it
_EXPORTS = {
    "load_table": "data",
    "FIGURES": "figures", "FigureSpec": "figures", "draw_figure": "figures", "load_figure_tables": "figures",
    "plot_growth_rates": "norms", "plot_norm_heatmap": "norms", "plot_norms_vs_lag": "norms",
    "plot_transient_growth": "norms",
    "plot_eigenvalues": "spectrum", "plot_singular_values": "spectrum",
    "figure_style": "style", "save_figure": "style",
    "plot_final_metric": "training", "plot_grad_norm": "training", "plot_loss": "training",
    "plot_truncation_error": "truncation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
