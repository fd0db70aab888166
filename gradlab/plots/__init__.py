"""Paper-quality figures from saved CSVs (``gradlab plot``, ``gradlab reproduce``).

Computing and drawing are kept apart:

* :mod:`gradlab.plots.data` reads results folders into DataFrames and
  reduces them (means over seeds, (t, k) grids, growth rates, theory curves);
* :mod:`~gradlab.plots.norms`, :mod:`~gradlab.plots.spectrum`,
  :mod:`~gradlab.plots.training`, :mod:`~gradlab.plots.truncation` hold the
  ``plot_*`` functions: each draws one panel from a DataFrame, takes
  ``ax=None`` and returns the axes;
* :mod:`~gradlab.plots.figures` lays panels out into the figure set and keeps
  the registry :data:`FIGURES` (name → builder, tables it reads, description);
* :mod:`~gradlab.plots.style` is the one place for the look: the packaged
  ``gradlab.mplstyle`` applied with :func:`figure_style`, sizes, colours, saving.

Example
-------
>>> from gradlab.plots import draw_figure
>>> draw_figure("heatmap", "results/heatmap", "figures", formats="png")  # doctest: +SKIP
"""
from .data import load_table
from .figures import FIGURES, FigureSpec, draw_figure, load_figure_tables
from .norms import plot_growth_rates, plot_norm_heatmap, plot_norms_vs_lag, plot_transient_growth
from .spectrum import plot_eigenvalues, plot_singular_values
from .style import figure_style, save_figure
from .training import plot_final_metric, plot_grad_norm, plot_loss
from .truncation import plot_truncation_error

__all__ = ["FIGURES", "FigureSpec", "draw_figure", "figure_style", "load_figure_tables", "load_table",
           "plot_eigenvalues", "plot_final_metric", "plot_grad_norm", "plot_growth_rates", "plot_loss",
           "plot_norm_heatmap", "plot_norms_vs_lag", "plot_singular_values", "plot_transient_growth",
           "plot_truncation_error", "save_figure"]
