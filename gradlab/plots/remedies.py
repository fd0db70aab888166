"""Remedies for vanishing and exploding gradients, measured side by side (``experiments/remedies.toml``).

The literature's cures — clipping (Pascanu, Mikolov & Bengio 2013), their
regulariser Ω, orthogonal (Saxe et al. 2014) and identity initialisation
with ReLU (IRNN, Le, Jaitly & Hinton 2015), gated cells (LSTM with a forget
bias of 1, Gers et al. 2000; chrono initialisation, Tallec & Ollivier 2018;
GRU, Cho et al. 2014), Adam — are compared as Pascanu et al. (2013, Fig. 7)
do: how often each *solves* a long-memory task as the sequence length T
grows. A run solves its task when its held-out error rate falls below 1 %
(:data:`gradlab.training.loop.SOLVED_BELOW`) within its budget of updates.

Three figures, drawn from the CSVs of a training sweep whose runs carry a
``label`` (the remedy's name) only:

* ``remedies``: the fraction of seeds solved against T, one line per
  remedy, one panel per task, with 95 % Wilson score intervals
  (:func:`wilson_interval`) — with 5 seeds, 0 of 5 still allows a success
  rate up to 43 %;
* ``remedies-updates``: updates to solve against T (solved runs only; each
  point says how many of its seeds solved);
* ``remedies-jacobians``: ‖∂s_T/∂s_k‖ against the lag T − k before training
  (update 0) and after it (a run's last recorded curve), one panel per
  remedy, at the longest T.

Computing (``wilson_interval``, ``success_rates``, ``jacobian_phases``) and
drawing (``plot_*``, each takes ``ax=None`` and returns the axes) are apart;
the builders lay the panels out.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib import ticker

from ..errors import GradlabError
from ..io.schema import require_columns
from ..training.loop import SOLVED_BELOW
from . import data
from .style import (REFERENCE, get_ax, log10_axis, log_axis, outer_labels, panel_axes, panel_grid,
                    panel_label)

# The remedies' look, in the order their labels first appear (the sweep file's order): the first (the
# baseline) black, then Paul Tol's "muted" scheme (nine colour-blind-safe colours, more than the style's
# cycle holds), a marker each; gated cells (LSTM, GRU) dashed.
REMEDY_COLORS = ("0.1", "#332288", "#CC6677", "#117733", "#88CCEE", "#882255", "#44AA99", "#DDCC77", "#AA4499",
                 "#999933")
REMEDY_MARKERS = "osD^vP<>Xph*"
GATED_LINE = (0, (4, 1.5))
TASK_TITLES = {"adding": "adding problem", "temporal_order": "temporal order", "copy": "copy",
               "reber": "embedded Reber grammar", "flip_flop": "3-bit flip-flop"}
# Before/after in the Jacobian panels: the same colour per task, dotted before training, solid after.
TASK_SHADES = ("black", "#D55E00", "#0072B2", "#009E73")
BEFORE = {"linestyle": (0, (1, 1.2)), "linewidth": 0.9}
AFTER = {"linestyle": "-", "linewidth": 1.0}
DODGE = 0.4  # the remedies at one T spread over this fraction of the gap to the next T (log axis)
T_LABEL = r"sequence length $T$"


# ------------------------------------------------------------------ computing

def wilson_interval(k, n, z: float = 1.96):
    """Wilson score interval of a binomial proportion: k successes in n trials.

    Parameters
    ----------
    k, n : int or array of int
        Successes (0 ≤ k ≤ n) and trials (n ≥ 1); arrays broadcast.
    z : float
        The normal quantile of the coverage: 1.96 for 95 %.

    Returns
    -------
    lo, hi : float or ndarray
        The interval's ends, in [0, 1] (floats for scalar input).

    Notes
    -----
    With p̂ = k/n (Wilson 1927)::

        centre = (p̂ + z²/2n) / (1 + z²/n)
        half   = z / (1 + z²/n) · sqrt(p̂(1 − p̂)/n + z²/4n²)

    Unlike the Wald interval p̂ ± z sqrt(p̂(1 − p̂)/n), it is not empty at
    k = 0 or k = n and never leaves [0, 1]: 0 of 5 gives [0, 0.434], so
    "no seed solved" is not "the remedy never works". It equals
    ``scipy.stats.binomtest(k, n).proportion_ci(method="wilson")``.

    Examples
    --------
    >>> lo, hi = wilson_interval(0, 5)
    >>> round(lo, 3), round(hi, 3)
    (0.0, 0.434)
    """
    k_arr, n_arr = np.asarray(k), np.asarray(n)
    for name, v in (("k", k_arr), ("n", n_arr)):
        if not (np.issubdtype(v.dtype, np.integer) or (np.issubdtype(v.dtype, np.floating)
                                                        and np.all(np.isfinite(v)) and np.all(v == np.round(v)))):
            raise GradlabError(f"wilson_interval: {name} must be whole numbers, got {v.tolist()!r}")
    if np.any(n_arr < 1) or np.any(k_arr < 0) or np.any(k_arr > n_arr):
        raise GradlabError(f"wilson_interval needs 0 ≤ k ≤ n and n ≥ 1, got k = {k_arr.tolist()!r}, "
                           f"n = {n_arr.tolist()!r}")
    if isinstance(z, bool) or not isinstance(z, (int, float, np.floating)) or not np.isfinite(z) or z <= 0:
        raise GradlabError(f"wilson_interval: z must be a positive number, got {z!r}")
    k_f, n_f = k_arr.astype(float), n_arr.astype(float)
    p = k_f / n_f
    z2 = float(z) ** 2
    denom = 1.0 + z2 / n_f
    centre = (p + z2 / (2.0 * n_f)) / denom
    half = float(z) / denom * np.sqrt(p * (1.0 - p) / n_f + z2 / (4.0 * n_f ** 2))
    lo = np.where(k_arr == 0, 0.0, np.clip(centre - half, 0.0, 1.0))     # exact ends, not 1e-17
    hi = np.where(k_arr == n_arr, 1.0, np.clip(centre + half, 0.0, 1.0))
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


def solved_flags(column: pd.Series) -> pd.Series:
    """runs.csv's ``solved`` as booleans (True/False, 1/0, or the strings "True"/"False")."""
    if pd.api.types.is_bool_dtype(column):
        return column.astype(bool)
    text = column.astype(str).str.strip().str.lower()
    known = text.isin(["true", "false", "1", "0", "1.0", "0.0"])
    if not known.all():
        raise GradlabError(f"runs table: column 'solved' holds {column[~known].iloc[0]!r} where True or False belongs")
    return text.isin(["true", "1", "1.0"])


def remedy_labels(table: pd.DataFrame) -> pd.Series:
    """The remedy of each row: its ``label`` as text (a sweep of remedies names each ``[[grid]]`` table's)."""
    require_columns(table, ["label"], "runs table (a sweep of remedies: give each [[grid]] table label = [\"…\"])")
    labels = table["label"].fillna("").astype(str)
    if (labels == "").any():
        raise GradlabError("runs without a label: give every [[grid]] table of the sweep label = [\"<remedy>\"]")
    return labels


def remedy_order(table: pd.DataFrame) -> list[str]:
    """The remedies in the order they first appear (the sweep file's order)."""
    return list(dict.fromkeys(remedy_labels(table)))


def task_order(table: pd.DataFrame) -> list[str]:
    """The tasks of a table in first-seen order ("" when it has no ``task`` column)."""
    return list(dict.fromkeys(table["task"].astype(str))) if "task" in table.columns else [""]


def success_rates(runs: pd.DataFrame, z: float = 1.96) -> pd.DataFrame:
    """Runs solved per (task, remedy, T), with the Wilson interval and the updates the solved ones took.

    Parameters
    ----------
    runs : DataFrame
        A training sweep's ``runs.csv``: ``label``, ``steps``, ``solved``,
        ``updates_to_solve`` and, when it has them, ``task`` and ``updates``
        (the budget).
    z : float
        Normal quantile of the interval (1.96: 95 %).

    Returns
    -------
    DataFrame
        One row per (``task``, ``label``, ``steps``), remedies in first-seen
        order: ``n_runs``, ``n_solved``, ``rate`` = n_solved / n_runs, ``lo``,
        ``hi`` (:func:`wilson_interval`), ``budget`` (largest ``updates``; NaN
        if unknown) and, over the solved runs, ``updates_median``,
        ``updates_min``, ``updates_max`` (NaN when none solved).
    """
    require_columns(runs, ["steps", "solved", "updates_to_solve"], "runs table")
    table = pd.DataFrame({
        "task": runs["task"].astype(str) if "task" in runs.columns else "",
        "label": remedy_labels(runs),
        "steps": pd.to_numeric(runs["steps"]).astype(int),
        "solved": solved_flags(runs["solved"]),
        "updates_to_solve": pd.to_numeric(runs["updates_to_solve"], errors="coerce"),
        "budget": pd.to_numeric(runs["updates"], errors="coerce") if "updates" in runs.columns else np.nan,
    })
    rows = []
    for (task, label, steps), g in table.groupby(["task", "label", "steps"], sort=False):
        done = g.loc[g["solved"], "updates_to_solve"]
        rows.append({"task": task, "label": label, "steps": steps, "n_runs": len(g), "n_solved": int(g["solved"].sum()),
                     "budget": g["budget"].max(), "updates_median": done.median() if len(done) else np.nan,
                     "updates_min": done.min() if len(done) else np.nan,
                     "updates_max": done.max() if len(done) else np.nan})
    out = pd.DataFrame(rows)
    out["rate"] = out["n_solved"] / out["n_runs"]
    out["lo"], out["hi"] = wilson_interval(out["n_solved"].to_numpy(), out["n_runs"].to_numpy(), z)
    order = {label: i for i, label in enumerate(remedy_order(table))}
    tasks = {task: i for i, task in enumerate(task_order(table))}
    out = out.sort_values(["task", "label", "steps"], key=lambda c: c.map(tasks) if c.name == "task"
                          else c.map(order) if c.name == "label" else c, kind="stable")
    columns = ["task", "label", "steps", "n_runs", "n_solved", "rate", "lo", "hi", "budget", "updates_median",
               "updates_min", "updates_max"]
    return out[columns].reset_index(drop=True)


def jacobian_phases(jacobians: pd.DataFrame, steps: int | None = None) -> pd.DataFrame:
    """The Jacobian-norm curves of each run before training (update 0) and after it (its last curve).

    Parameters
    ----------
    jacobians : DataFrame
        A training sweep's ``jacobians.csv`` (``run_id``, ``step``, ``lag``,
        ``mean_log10_norm``, …, ``label``, ``steps``, ``task``).
    steps : int, optional
        The sequence length T to keep (default: the longest).

    Returns
    -------
    DataFrame
        The rows of that T at update 0 (``phase`` = "before") and at each
        run's last recorded update when it is later than 0 (``phase`` =
        "after"; a run that stopped when it solved its task is recorded at
        that update, if ``jacobian_every`` divides it), with ``label`` as text
        and ``task``.
    """
    require_columns(jacobians, ["run_id", "step", "steps", "lag", "mean_log10_norm"], "jacobians table")
    table = jacobians.assign(label=remedy_labels(jacobians),
                             task=jacobians["task"].astype(str) if "task" in jacobians.columns else "")
    lengths = sorted(pd.to_numeric(table["steps"]).astype(int).unique())
    T = lengths[-1] if steps is None else int(steps)
    if T not in lengths:
        raise GradlabError(f"jacobians table has no runs of T = {T} (it has T = {', '.join(map(str, lengths))})")
    table = table[pd.to_numeric(table["steps"]).astype(int) == T]
    last = table.groupby("run_id")["step"].transform("max")
    before = table[table["step"] == 0].assign(phase="before")
    after = table[(table["step"] == last) & (last > 0)].assign(phase="after")
    return pd.concat([before, after], ignore_index=True)


# ------------------------------------------------------------------ drawing

def remedy_styles(table: pd.DataFrame) -> dict[str, dict]:
    """label → ``{"color", "marker", "linestyle"}``: one look per remedy, gated cells dashed.

    ``table`` has ``label`` and, optionally, ``cell`` (a remedy is drawn
    dashed when its runs are of an LSTM or GRU).
    """
    labels = remedy_order(table)
    gated = data.is_gated(table).groupby(remedy_labels(table)).any()
    return {label: {"color": REMEDY_COLORS[i % len(REMEDY_COLORS)], "marker": REMEDY_MARKERS[i % len(REMEDY_MARKERS)],
                    "linestyle": GATED_LINE if gated.get(label, False) else "-"}
            for i, label in enumerate(labels)}


def dodged(steps, i: int, m: int, lengths) -> np.ndarray:
    """The x of remedy ``i`` of ``m`` at each T of ``steps``: spread around T on the log axis, so that error bars
    at one T do not hide one another (over :data:`DODGE` of the smallest gap between the lengths)."""
    logs = np.log2(np.asarray(sorted(set(lengths)), dtype=float))
    gap = np.min(np.diff(logs)) if logs.size > 1 else 1.0
    offset = DODGE * gap * ((i / (m - 1) - 0.5) if m > 1 else 0.0)
    return np.asarray(steps, dtype=float) * 2.0 ** offset


def length_axis(ax, lengths) -> None:
    """A log₂ x axis with a tick at each sequence length T of the sweep, a little room either side."""
    lengths = sorted(set(int(t) for t in lengths))
    ax.set_xscale("log", base=2)
    lo, hi = np.log2(lengths[0]), np.log2(lengths[-1])
    pad = 0.35 * (np.min(np.diff(np.log2(lengths))) if len(lengths) > 1 else 1.0)
    ax.set_xlim(2.0 ** (lo - pad), 2.0 ** (hi + pad))
    ax.xaxis.set_major_locator(ticker.FixedLocator(lengths))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(ticker.NullLocator())
    ax.set_xlabel(T_LABEL)


def plot_success_rate(rates: pd.DataFrame, ax=None, styles: dict | None = None):
    """Fraction of seeds that solved the task against T, one line per remedy, with Wilson intervals.

    Parameters
    ----------
    rates : DataFrame
        :func:`success_rates` rows of one task: ``label``, ``steps``,
        ``rate``, ``lo``, ``hi``.
    styles : dict, optional
        label → line look (:func:`remedy_styles`).

    Returns
    -------
    Axes
    """
    ax = get_ax(ax)
    require_columns(rates, ["label", "steps", "rate", "lo", "hi"], "success rates")
    labels = list(dict.fromkeys(rates["label"]))
    styles = styles or remedy_styles(rates)
    lengths = rates["steps"].unique()
    for i, label in enumerate(labels):
        r = rates[rates["label"] == label].sort_values("steps")
        x = dodged(r["steps"], i, len(labels), lengths)
        err = np.vstack([r["rate"] - r["lo"], r["hi"] - r["rate"]])
        ax.errorbar(x, r["rate"], yerr=err, label=label, markersize=3.2, capsize=1.2, elinewidth=0.6,
                    capthick=0.6, markeredgewidth=0.5, **styles[label])
    ax.set_ylim(-0.04, 1.04)
    ax.yaxis.set_major_locator(ticker.FixedLocator([0, 0.25, 0.5, 0.75, 1.0]))
    ax.yaxis.set_major_formatter(ticker.PercentFormatter(1.0, decimals=0))
    length_axis(ax, lengths)
    ax.set_ylabel("runs solved (share of seeds)")
    return ax


def plot_updates_to_solve(runs: pd.DataFrame, rates: pd.DataFrame, ax=None, styles: dict | None = None,
                          budget: float | None = None, counts: bool = True):
    """Updates the solved runs took against T: one dot per run, the median per remedy joined by a line.

    Parameters
    ----------
    runs : DataFrame
        Rows of one task with ``label``, ``steps``, ``solved`` (booleans) and
        ``updates_to_solve``; unsolved runs are left out.
    rates : DataFrame
        :func:`success_rates` rows of the same task (medians and counts).
    budget : float, optional
        The updates every run had, drawn as a grey line: no run can lie above it.
    counts : bool
        Write "k/n", the runs that solved of all, beside each median.

    Returns
    -------
    Axes

    Notes
    -----
    A run solved at its first evaluation before any update (0 updates) is
    drawn at 1, the bottom of the log axis.
    """
    ax = get_ax(ax)
    require_columns(runs, ["label", "steps", "solved", "updates_to_solve"], "runs table")
    labels = list(dict.fromkeys(rates["label"]))
    styles = styles or remedy_styles(rates)
    lengths = rates["steps"].unique()
    for i, label in enumerate(labels):
        style = styles[label]
        done = runs[(runs["label"] == label) & runs["solved"]]
        ax.plot(dodged(done["steps"], i, len(labels), lengths), np.maximum(done["updates_to_solve"], 1.0),
                linestyle="none", marker=style["marker"], markersize=2.0, alpha=0.45, markeredgewidth=0,
                color=style["color"])
        r = rates[(rates["label"] == label) & (rates["n_solved"] > 0)].sort_values("steps")
        x, y = dodged(r["steps"], i, len(labels), lengths), np.maximum(r["updates_median"], 1.0)
        ax.plot(x, y, label=label, markersize=3.4, markeredgewidth=0.5, **style)
        if counts:
            for xi, yi, k, n in zip(x, y, r["n_solved"], r["n_runs"]):
                ax.annotate(f"{k}/{n}", (xi, yi), xytext=(2.5, 1.5), textcoords="offset points", fontsize=5,
                            color=style["color"], ha="left", va="bottom")
    if budget is not None and np.isfinite(budget):
        ax.axhline(budget, color="0.55", linewidth=0.7, linestyle=(0, (4, 2)), zorder=0)
        # above the line, where no run can be (the points crowd just below it), left of the longest T's
        ax.annotate(f"budget: {budget:g} updates", (0.02, budget), xycoords=("axes fraction", "data"),
                    xytext=(0, 2), textcoords="offset points", fontsize=6, color="0.4", ha="left", va="bottom")
    length_axis(ax, lengths)
    ax.set_ylabel("updates to solve")
    return ax


def plot_jacobian_phases(curves: pd.DataFrame, ax=None, tasks: list | None = None, spread: bool = True):
    """‖∂s_T/∂s_k‖ against lag T − k for one remedy: before training dotted, after it solid, a colour per task.

    Parameters
    ----------
    curves : DataFrame
        :func:`gradlab.plots.data.lag_curves` rows with ``by=("task", "phase")``
        for one remedy: ``task``, ``phase`` ("before"/"after"), ``lag``,
        ``log10_norm``, ``lo``, ``hi``.
    tasks : list, optional
        The tasks in colour order (default: first seen).
    spread : bool
        Shade the range of per-seed means after training.

    Each curve's ``gid`` is ``"TASK:PHASE"``.

    Returns
    -------
    Axes
    """
    ax = get_ax(ax)
    require_columns(curves, ["task", "phase", "lag", "log10_norm", "lo", "hi"], "Jacobian curves")
    tasks = tasks or list(dict.fromkeys(curves["task"]))
    ax.axhline(0.0, **REFERENCE)
    for j, task in enumerate(tasks):
        color = TASK_SHADES[j % len(TASK_SHADES)]
        for phase, look in (("before", BEFORE), ("after", AFTER)):
            c = curves[(curves["task"] == task) & (curves["phase"] == phase)].sort_values("lag")
            if c.empty:
                continue
            if spread and phase == "after":
                ax.fill_between(c["lag"], c["lo"], c["hi"], color=color, alpha=0.15, linewidth=0)
            ax.plot(c["lag"], c["log10_norm"], color=color, gid=f"{task}:{phase}", **look)
    ax.set_xlabel(r"lag $T-k$ (steps)")
    ax.set_ylabel(r"$\|\partial s_T / \partial s_k\|_2$")
    return ax


# ------------------------------------------------------------------ the figures

def _runs(tables) -> pd.DataFrame:
    runs = tables["train_runs"]
    return runs.assign(label=remedy_labels(runs), solved=solved_flags(runs["solved"]),
                       task=runs["task"].astype(str) if "task" in runs.columns else "")


def _span(values, unit: str = "") -> str:
    """'2000' or '1000–2000' (with ``unit``): the one value, or the range, of a figure's shared sizes."""
    values = sorted(set(values))
    return (f"{values[0]:g}" if len(values) == 1 else f"{values[0]:g}–{values[-1]:g}") + unit


def _context(rates: pd.DataFrame, runs: pd.DataFrame) -> str:
    """'n = 50, ≤ 2000 updates, 5 seeds per point': the sizes every point of the figure shares."""
    parts = []
    if "hidden" in runs.columns:
        parts.append("n = " + _span(pd.to_numeric(runs["hidden"])))
    budgets = [b for b in rates["budget"] if np.isfinite(b)]
    if budgets:
        parts.append("≤ " + _span(budgets, " updates"))
    parts.append(_span(rates["n_runs"], " seeds per point"))
    return ", ".join(parts)


def _legend(fig, styles: dict, title: str) -> None:
    handles = [Line2D([], [], label=label, markersize=3.4, markeredgewidth=0.5, **style)
               for label, style in styles.items()]
    fig.legend(handles=handles, loc="outside upper center", ncols=min(len(handles), 5), title=title,
               columnspacing=1.0, handlelength=2.4)


def remedies_success(tables) -> "matplotlib.figure.Figure":
    """One panel per task: runs solved against T per remedy, with 95 % Wilson intervals."""
    runs = _runs(tables)
    rates = success_rates(runs)
    styles = remedy_styles(runs)
    tasks = task_order(runs)
    _, columns = panel_grid(len(tasks), what="tasks")
    fig, axes = panel_axes(len(tasks), height=3.3, row_height=2.6, what="tasks", sharey=True,
                           width=min(7.1, 1.2 + 3.0 * len(tasks)))
    for i, (ax, task) in enumerate(zip(axes, tasks)):
        plot_success_rate(rates[rates["task"] == task], ax=ax, styles=styles)
        ax.set_title(TASK_TITLES.get(task, task.replace("_", " ")))
        panel_label(ax, i)
    outer_labels(axes, columns)
    _legend(fig, styles, f"solved: held-out error rate < {100 * SOLVED_BELOW:g} % ({_context(rates, runs)}; "
                         "bars: 95 % Wilson interval)")
    return fig


def remedies_updates(tables) -> "matplotlib.figure.Figure":
    """One panel per task: updates to solve against T per remedy (solved runs; k/n of them solved)."""
    runs = _runs(tables)
    rates = success_rates(runs)
    if not (rates["n_solved"] > 0).any():
        raise GradlabError("no run of the sweep solved its task: there are no updates to solve to draw "
                           "(figure 'remedies' shows the success rates)")
    styles = remedy_styles(runs)
    tasks = task_order(runs)
    _, columns = panel_grid(len(tasks), what="tasks")
    fig, axes = panel_axes(len(tasks), height=3.3, row_height=2.6, what="tasks", sharey=True,
                           width=min(7.1, 1.2 + 3.0 * len(tasks)))
    budget = rates["budget"].max()
    for i, (ax, task) in enumerate(zip(axes, tasks)):
        plot_updates_to_solve(runs[runs["task"] == task], rates[rates["task"] == task], ax=ax, styles=styles,
                              budget=budget)
        ax.set_title(TASK_TITLES.get(task, task.replace("_", " ")))
        panel_label(ax, i)
    solved = runs.loc[runs["solved"], "updates_to_solve"]
    top = max(float(budget) if np.isfinite(budget) else 0.0, float(solved.max()))
    for ax in axes:   # shared: from the fastest solve to the budget
        ax.set_ylim(max(float(np.maximum(solved.min(), 1.0)), 1.0) / 1.6, top * 1.6)
        log_axis(ax, "y")
    outer_labels(axes, columns)
    _legend(fig, styles, f"median over the solved runs (dots: each; k/n: solved of all); {_context(rates, runs)}")
    return fig


def remedies_jacobians(tables) -> "matplotlib.figure.Figure":
    """One panel per remedy: ‖∂s_T/∂s_k‖ against lag before and after training, at the longest T."""
    phases = jacobian_phases(tables["jacobians"])
    T = int(pd.to_numeric(phases["steps"]).iloc[0])
    curves = data.lag_curves(phases.assign(log10_bound=np.nan, log10_rate=np.nan) if "log10_bound" not in phases
                             else phases, by=("label", "task", "phase"))
    labels = remedy_order(phases)
    tasks = task_order(phases)
    wide = min(5, -(-len(labels) // 2)) if len(labels) > 4 else 4   # 9 remedies: two rows of 5 and 4
    _, columns = panel_grid(len(labels), max_columns=wide, what="remedies")
    fig, axes = panel_axes(len(labels), height=2.5, row_height=1.85, what="remedies", max_columns=wide,
                           sharex=True, sharey=True)
    for i, (ax, label) in enumerate(zip(axes, labels)):
        plot_jacobian_phases(curves[curves["label"] == label], ax=ax, tasks=tasks)
        ax.set_title(label)
        panel_label(ax, i)
    finite = curves[["lo", "hi", "log10_norm"]].to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 1.0)
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    for ax in axes:
        ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
        log10_axis(ax, "y")
    outer_labels(axes, columns)
    handles = [Line2D([], [], color=TASK_SHADES[j % len(TASK_SHADES)], label=TASK_TITLES.get(t, t), **AFTER)
               for j, t in enumerate(tasks)]
    handles += [Line2D([], [], color="0.4", label="before training (update 0)", **BEFORE),
                Line2D([], [], color="0.4", label="after (last curve; a solved run stops when solved)", **AFTER)]
    n_runs = phases.groupby("phase")["run_id"].nunique()
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles), handlelength=2.0,
               title=rf"$T = {T}$, mean of log over seeds (band: per-seed range after training); "
                     f"runs: {n_runs.get('before', 0)} before, {n_runs.get('after', 0)} after")
    return fig
