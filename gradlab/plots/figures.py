"""The figure set: each figure is built from the tables of one results folder.

:data:`FIGURES` maps a figure's name to its builder, the tables it reads
and a one-line description; ``gradlab plot NAME RESULTS_DIR`` and
``gradlab reproduce`` only go through it, so adding a figure is one entry
here (a builder ``tables -> Figure`` plus the table kinds of
:data:`gradlab.schema.COLUMNS` it needs).

Builders get DataFrames read from CSV (:func:`gradlab.plots.data.load_table`),
reduce them with :mod:`gradlab.plots.data` and lay out panels drawn by the
``plot_*`` functions; they never compute a network. They live in
:mod:`gradlab.plots.builders` and :mod:`gradlab.plots.dynamics` and are
imported, with matplotlib, only when a figure is drawn: this module stays
light, so that ``gradlab plot --list`` starts fast.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pandas as pd

from ..errors import GradlabError, PathLike, check_choice
from . import data

if TYPE_CHECKING:
    from collections.abc import Iterable

Tables = dict[str, pd.DataFrame]


def lazy(module: str, name: str) -> Callable[[Tables], "matplotlib.figure.Figure"]:
    """The builder ``gradlab.plots.<module>.<name>``, imported when it is first called."""
    def build(tables: Tables):
        return getattr(import_module(f".{module}", __package__), name)(tables)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"Builds the figure with :func:`gradlab.plots.{module}.{name}` (imported on first use)."
    return build


@dataclass(frozen=True)
class FigureSpec:
    """One figure of the set.

    Attributes
    ----------
    build : callable
        ``tables -> matplotlib Figure``; ``tables`` maps each kind in
        ``tables`` to its DataFrame. :func:`lazy` names one without
        importing it.
    tables : tuple of str
        Table kinds (keys of :data:`gradlab.schema.COLUMNS`) read from the
        results folder.
    results : str
        The results folder ``gradlab reproduce`` draws it from: the stem of a
        sweep file ``experiments/NAME.toml`` or a key of
        :data:`gradlab.experiments.reproduce.RUN_SETS`.
    description : str
        What the figure shows (CLI help, README).
    optional : tuple of str
        Table kinds read too when the folder has them (e.g. ``runs`` for the
        chance level of a training sweep); they do not decide which kinds of
        folder the figure reads.
    """

    build: Callable[[Tables], "matplotlib.figure.Figure"]
    tables: tuple[str, ...]
    results: str
    description: str
    optional: tuple[str, ...] = ()

    @property
    def folders(self) -> tuple[str, ...]:
        """Kinds of results folder that hold every table it reads (codes of :data:`gradlab.plots.data.FOLDER_NAMES`)."""
        kinds = [data.TABLE_FOLDERS.get(t, ()) for t in self.tables]
        return tuple(k for k in kinds[0] if all(k in other for other in kinds[1:])) if kinds else ()

    def reads(self) -> str:
        """The kinds of results folder it is drawn from, in words (error messages)."""
        return " or ".join(dict.fromkeys(data.FOLDER_NAMES.get(kind, kind) for kind in self.folders))


FIGURES: dict[str, FigureSpec] = {
    "norms-vs-lag": FigureSpec(lazy("builders", "norms_vs_lag"), ("sweep_norms",), "vanishing",
                               "‖∂h_t/∂h_k‖ against lag per spectral radius and activation, with the bound "
                               "(dashed) and the ρ-rate (dotted)"),
    "heatmap": FigureSpec(lazy("builders", "norm_heatmap"), ("norms", "spectrum"), "heatmap",
                          "log10‖∂h_t/∂h_k‖ over (t, k) for vanishing, near-critical and exploding networks "
                          "(runs with --pairs all or stride:K)"),
    "spectrum": FigureSpec(lazy("builders", "spectrum"), ("spectrum",), "transient",
                           "eigenvalues of W_hh (of J_T for a gated cell) in the complex plane (unit circle, "
                           "|λ| = ρ) and singular values with σ_max marked"),
    "growth-rate": FigureSpec(lazy("builders", "growth_rate"), ("runs",), "vanishing",
                              "per-step growth rate against initial ρ per activation, with ln(σ_max γ_h) and ln ρ"),
    "clipping": FigureSpec(lazy("builders", "training"), ("training", "evaluation"), "clipping",
                           "training loss and pre-clip gradient norm per update per clipping setting, clipping "
                           "events marked; final task error against ρ", optional=("runs",)),
    "truncation": FigureSpec(lazy("builders", "truncation"), ("truncation",), "truncation",
                             "relative error of truncated BPTT against truncation length K per spectral radius,"
                             " with ρ^K (dotted) for ρ < 1"),
    "transient-growth": FigureSpec(lazy("builders", "transient_growth"), ("norms",), "transient",
                                   "‖W^k‖/ρ^k for a Gaussian (non-normal) and an orthogonal W_hh of the same ρ: "
                                   "ρ^k is not a bound"),
    "lyapunov": FigureSpec(lazy("dynamics", "lyapunov_figure"), ("lyapunov", "mean_field", "transitions"), "lyapunov",
                           "largest Lyapunov exponent of random networks against mean field ½ ln χ₁ over the gain g, "
                           "transition marked"),
    "cells": FigureSpec(lazy("dynamics", "cells_figure"), ("sweep_norms", "runs"), "cells",
                        "‖∂s_T/∂s_k‖ against lag: vanilla RNN vs LSTM vs GRU at matched n, Lyapunov rate dotted"),
    "monitor": FigureSpec(lazy("monitor", "monitor_figure"), ("training", "jacobians"), "clipping",
                          "one training run from inside: loss and gradient norm, ρ of each recurrent block, "
                          "‖∂s_T/∂s_k‖ on the probe at each checkpoint, λ₁ (gradlab.torch.Monitor or gradlab train "
                          "--jacobian-every; a sweep's first run)"),
    "lyapunov-spectrum": FigureSpec(lazy("dynamical", "lyapunov_spectrum_figure"),
                                    ("lyapunov_spectrum", "lyapunov_summary"), "lyapunov_spectrum",
                                    "full Lyapunov spectra λ_i against i/s per gain g; Kaplan–Yorke dimension "
                                    "D_KY/s and KS entropy h_KS/s against g, transition marked",
                                    optional=("transitions",)),
    "fixed-points": FigureSpec(lazy("dynamical", "fixed_points_figure"),
                               ("fixed_points", "fixed_point_eigenvalues", "trajectories"), "fixed_points",
                               "fixed points over the PCA-projected trajectories (stable filled, saddles hollow with "
                               "their unstable modes, slow points ×), their Jacobians' eigenvalues against the unit "
                               "circle, points found per seed", optional=("runs",)),
    "remedies": FigureSpec(lazy("remedies", "remedies_success"), ("train_runs",), "remedies",
                           "share of seeds that solve the task (held-out error < 1 %) against sequence length T, "
                           "one line per remedy, one panel per task, 95 % Wilson intervals"),
    "remedies-updates": FigureSpec(lazy("remedies", "remedies_updates"), ("train_runs",), "remedies",
                                   "updates to solve against sequence length T per remedy (solved runs only, "
                                   "k/n solved marked), the budget of updates as a line"),
    "remedies-jacobians": FigureSpec(lazy("remedies", "remedies_jacobians"), ("jacobians",), "remedies",
                                     "‖∂s_T/∂s_k‖ against lag before (update 0) and after training, one panel per "
                                     "remedy, at the sweep's longest T"),
}


def load_figure_tables(name: str, results_dir: PathLike) -> Tables:
    """Read the tables figure ``name`` needs from ``results_dir`` (checked columns and values).

    A table that is missing or lacks a column because ``results_dir`` is
    the wrong kind of folder (a single run folder given to a figure of a
    sweep, say) is reported as that: which kind of folder the figure reads,
    and what ``results_dir`` is.
    """
    check_choice(name, FIGURES, "figure")
    spec = FIGURES[name]
    try:
        tables = {kind: data.load_table(results_dir, kind) for kind in spec.tables}
        tables.update({kind: data.load_table(results_dir, kind) for kind in spec.optional
                       if kind not in tables and data.has_table(results_dir, kind)})
    except GradlabError as e:
        raise explained(e, name, results_dir) from None
    return tables


def explained(error: GradlabError, name: str, results_dir) -> GradlabError:
    """The error of figure ``name`` in one line; the wrong kind of folder is named as such.

    A missing table or column (not a bad value) in a folder whose manifest
    says it is not a kind the figure reads becomes "figure X reads …;
    RESULTS_DIR is …" instead of the column that the wrong folder lacks.
    """
    spec = FIGURES[name]
    if not isinstance(error, data.BadValueError):
        kind, what = data.folder_kind(results_dir)
        accepted = set(spec.folders) | ({"run"} if "runs" in spec.folders else set())
        if kind is not None and spec.folders and kind not in accepted:
            return GradlabError(f"figure {name!r} reads {spec.reads()}; {str(results_dir)!r} is {what}")
    return GradlabError(f"figure {name!r}: {error}")


def draw_figure(name: str, results_dir: PathLike, out: PathLike,
                formats: str | Iterable[str] = ("pdf", "png")) -> list[Path]:
    """Draw figure ``name`` from the CSVs in ``results_dir`` into ``out/name.<format>``.

    Parameters
    ----------
    name : str
        A key of :data:`FIGURES`.
    results_dir : path
        Folder of CSVs (see :func:`gradlab.plots.data.load_table`).
    out : path
        Folder for the figure files (created if needed).
    formats : str or sequence
        ``"pdf,png"`` or e.g. ``("png",)``.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    GradlabError
        Unknown figure, a missing CSV, or a CSV lacking a needed column.
    """
    import matplotlib.pyplot as plt

    from .style import figure_style, parse_formats, save_figure

    formats = parse_formats(formats)  # fail before reading anything
    tables = load_figure_tables(name, results_dir)
    with figure_style():
        before = set(plt.get_fignums())
        try:
            fig = FIGURES[name].build(tables)
        except GradlabError as e:  # a parameter column the figure needs (e.g. growth_rate of a run sweep)
            for number in set(plt.get_fignums()) - before:
                plt.close(number)
            raise explained(e, name, results_dir) from None
        return save_figure(fig, Path(out) / name, formats)


def __getattr__(name: str):
    """The builders and their helpers (``spectrum``, ``training``, ``signed``, …) as before they moved to
    :mod:`gradlab.plots.builders`; importing them imports matplotlib."""
    if name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        return getattr(import_module(".builders", __package__), name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
