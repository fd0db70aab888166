"""Computing for figures: read results folders into tables and reduce them.

Nothing here draws. Figures are made from saved CSVs only (DESIGN.md), so
every function takes either a results folder or a DataFrame read from one.

A *results folder* is either

* a sweep folder (``gradlab sweep``): ``runs.csv`` plus long tables whose
  rows repeat the run's parameters after ``run_id``; or
* a folder of ``gradlab run`` folders, e.g. ``results/heatmap/r0.8/``: each
  sub-folder's table is read (hidden ones, whose names start with ``.``,
  are skipped: a killed run leaves its half-written ``.NAME.*.tmp`` folder), given ``run_id`` = the sub-folder name and
  the parameters of its ``manifest.json``, and the tables are stacked, so
  both kinds of folder give the same long form; or
* a single ``gradlab run`` folder (one run).

Logs in the CSVs are base 10; growth rates are in nats per step (natural
log), as in ``gradlab run``'s summary.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import GradlabError, PathLike
from ..analysis.jacobian_norms import fit_growth_rate
from ..io.schema import TABLES, read_table, require_columns

LN10 = np.log(10.0)

# Read off the table registry (gradlab.io.schema.TABLES): file, text and True/False columns, folder kinds.
TABLE_FILES = {name: table.file for name, table in TABLES.items()}
TEXT_COLUMNS = frozenset().union(*(table.text for table in TABLES.values()))
FLAG_COLUMNS = frozenset().union(*(table.flags for table in TABLES.values()))
TABLE_FOLDERS = {name: table.folders for name, table in TABLES.items()}

# Parameter and summary columns (gradlab.config.RunConfig, gradlab.training.TrainConfig, runs.csv) that hold
# numbers when a table has them; the figures compute with them (radius, seed, hidden, …).
NUMBER_COLUMNS = frozenset({
    "radius", "seed", "hidden", "inputs", "outputs", "steps", "batch", "input_scale", "threshold", "truncate",
    "lr", "momentum", "updates", "eval_every", "eval_batch", "jacobian_every",
    "rho", "sigma_max", "gamma_h", "growth_rate", "bound_rate", "asymptotic_rate", "loss_value", "lyapunov",
    "final_rho", "final_sigma_max", "final_loss", "final_metric", "chance_metric", "n_clipped", "n_skipped",
    "rel_error", "wall_time_s"})


class BadValueError(GradlabError):
    """A CSV has the columns of its table but a bad value (text where a number belongs) or no rows."""


def check_values(table: pd.DataFrame, path, kind: str) -> pd.DataFrame:
    """Refuse, in one line naming the file, a table with no rows or with text where a number belongs.

    Number columns are the contract columns of ``kind`` other than
    :data:`TEXT_COLUMNS` and :data:`FLAG_COLUMNS` (True/False), and the
    parameter columns of :data:`NUMBER_COLUMNS` the table has. ``inf``,
    ``-inf`` and empty cells (NaN) are numbers. Without this check a
    hand-edited or truncated CSV ended in a pandas TypeError traceback.
    """
    if table.empty:
        raise BadValueError(f"{str(path)!r} has no rows (only its header): nothing to draw")
    numbers = list(TABLES[kind].numbers)
    numbers += sorted(c for c in NUMBER_COLUMNS & set(table.columns) if c not in numbers)
    for column in numbers:
        values = table[column]
        if not pd.api.types.is_numeric_dtype(values):
            bad = values[pd.to_numeric(values, errors="coerce").isna() & values.notna()]
            raise BadValueError(f"{str(path)!r} line {bad.index[0] + 2}: column {column!r} holds {bad.iloc[0]!r} "
                               "where a number belongs")
    for column in TABLES[kind].flags:
        values = table[column]
        if not (pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values)):
            bad = values[~values.isin([True, False, "True", "False"])]
            raise BadValueError(f"{str(path)!r} line {bad.index[0] + 2}: column {column!r} holds {bad.iloc[0]!r} "
                               "where True or False belongs")
    return table


def read_checked(path: Path, kind: str) -> pd.DataFrame:
    """:func:`gradlab.schema.read_table` (contract columns), then :func:`check_values`."""
    return check_values(read_table(path, kind), path, kind)


FOLDER_NAMES = {
    "runs": "`gradlab run` folders (a folder of them, or one)",
    "sweep:run": 'a sweep folder of kind = "run" (`gradlab sweep`)',
    "sweep:train": 'a sweep folder of kind = "train" (`gradlab sweep`) or a `gradlab train` folder',
    "sweep:truncation": 'a sweep folder of kind = "truncation" (`gradlab sweep`)',
    "sweep:lyapunov": "a `gradlab lyapunov` folder",
    "sweep:lyapunov_spectrum": "a `gradlab lyapunov --spectrum` folder (a sweep of kind = \"lyapunov_spectrum\")",
    "sweep:fixed_points": "a `gradlab fixed-points` folder (a sweep of kind = \"fixed_points\")",
    "lyapunov": "a `gradlab lyapunov` folder",       # one written by gradlab 0.1, before it was a sweep
}


def manifest_kind(folder: Path) -> str | None:
    """What wrote ``folder``, from its ``manifest.json``: "run", "sweep:KIND", "lyapunov"; None if unknown."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict):
        return None
    kind, config = manifest.get("kind"), manifest.get("config")
    if kind == "sweep" and isinstance(config, dict) and isinstance(config.get("kind"), str):
        return f"sweep:{config['kind']}"
    if kind == "train":  # `gradlab train --out`: laid out as a one-run sweep
        return "sweep:train"
    return kind if kind in ("run", "lyapunov") else None


def folder_kind(results_dir) -> tuple[str | None, str]:
    """What kind of results folder ``results_dir`` is, as a code and in words.

    Codes: "run" (one `gradlab run` folder), "runs" (a folder of them),
    "sweep:KIND", "lyapunov", "folders" (a folder of other results folders,
    e.g. ``results/full``), or None when no manifest says.
    """
    results_dir = Path(results_dir)
    kind = manifest_kind(results_dir)
    if kind == "run":
        return kind, "a single `gradlab run` folder (one network)"
    if kind == "lyapunov":
        return kind, "a `gradlab lyapunov` folder"
    if kind is not None:
        return kind, f'a sweep folder of kind = "{kind.removeprefix("sweep:")}"'
    try:
        subs = sorted(p for p in results_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return None, ""
    kinds = {p.name: manifest_kind(p) for p in subs}
    found = {k for k in kinds.values() if k is not None}
    if found == {"run"}:
        return "runs", "a folder of `gradlab run` folders"
    if found:
        names = [name for name, k in kinds.items() if k is not None]
        shown = ", ".join(names[:6]) + (", …" if len(names) > 6 else "")
        return "folders", f"a folder of results folders ({shown}): give one of them"
    return None, ""


def run_parameters(folder: Path) -> dict:
    """Scalar config values of a ``gradlab run`` folder's manifest (activation, init, radius, …)."""
    path = folder / "manifest.json"
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8")).get("config", {})
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GradlabError(f"cannot read {str(path)!r}: {e}") from None
    return {k: v for k, v in config.items() if isinstance(v, (str, int, float, bool))}


def load_table(results_dir: PathLike, kind: str) -> pd.DataFrame:
    """Read table ``kind`` (a key of ``gradlab.schema.COLUMNS``) from a results folder.

    Parameters
    ----------
    results_dir : path
        A sweep folder, a folder of ``gradlab run`` folders, or one run folder.
    kind : str
        Table kind; its file name is ``TABLE_FILES[kind]``.

    Returns
    -------
    pandas.DataFrame
        The table, checked to have the columns of ``kind``. Tables stacked
        from run folders gain ``run_id`` (the folder name) and the run's
        parameters as leading columns, like a sweep's tables.

    Raises
    ------
    GradlabError
        No such file in the folder or its sub-folders, a missing column, a
        table without rows, or text where a number belongs (the message
        names the file, and the column and value).
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise GradlabError(f"no such results folder {str(results_dir)!r}")
    name = TABLE_FILES[kind]
    if (results_dir / name).is_file():
        table = read_checked(results_dir / name, kind)
        if "run_id" not in table.columns:  # one `gradlab run` folder
            table = with_run_columns(table, results_dir.name, run_parameters(results_dir))
        return table
    # Hidden entries are never results: a `.NAME.*.tmp` folder is what a killed `gradlab run` leaves behind,
    # possibly half-written.
    folders = sorted(p for p in results_dir.iterdir()
                     if not p.name.startswith(".") and p.is_dir() and (p / name).is_file())
    if not folders and (results_dir / "parts").is_dir():   # a sweep whose tables are not merged yet, or never
        try:
            sweep = json.loads((results_dir / "manifest.json").read_text(encoding="utf-8"))["sweep"]
            n_runs, finished = sweep["n_runs"], sweep.get("finished") is True
        except (OSError, ValueError, KeyError, TypeError):
            n_runs, finished = "?", False
        if finished:
            raise GradlabError(f"the sweep in {str(results_dir)!r} is finished but its runs wrote no {name} "
                               "(e.g. jacobians.csv needs jacobian_every > 0 in the sweep file)")
        n_done = sum(1 for p in (results_dir / "parts").iterdir() if not p.name.startswith("."))
        raise GradlabError(f"{str(results_dir)!r} holds an unfinished sweep ({n_done} of {n_runs} runs done, "
                           f"so no {name} yet): run the same `gradlab sweep` command again to finish it (or wait "
                           "for the one running), then plot")
    if not folders:
        raise GradlabError(f"no {name} in {str(results_dir)!r} or its sub-folders")
    tables = []
    for f in folders:
        table = read_checked(f / name, kind)
        if "run_id" in table.columns:  # a sweep's table: results_dir holds results folders, not run folders
            raise GradlabError(f"{str(f)!r} is a sweep folder inside {str(results_dir)!r}: give the folder itself")
        tables.append(with_run_columns(table, f.name, run_parameters(f)))
    return pd.concat(tables, ignore_index=True)


def with_run_columns(table: pd.DataFrame, run_id: str, parameters: dict) -> pd.DataFrame:
    """Prepend ``run_id`` and parameter columns (sweep layout) to a run's table."""
    front = {"run_id": run_id, **{k: v for k, v in parameters.items() if k not in table.columns}}
    return pd.concat([pd.DataFrame(front, index=table.index), table], axis=1)


def cell_of(table: pd.DataFrame) -> pd.Series:
    """The cell of each row: the ``cell`` column, "rnn" where it is empty or missing (gradlab 0.1 ran no other)."""
    if "cell" not in table.columns:
        return pd.Series("rnn", index=table.index)
    return table["cell"].fillna("rnn").astype(str)


def is_gated(table: pd.DataFrame) -> pd.Series:
    """Rows of a gated cell (LSTM, GRU): no single W_hh, so no ρ-rate, and the bound is max_t ‖J_t‖₂."""
    return cell_of(table) != "rnn"


def from_weights(table: pd.DataFrame) -> pd.Series:
    """Rows of runs that analysed a weights file (``--weights``): no init, no radius, no random-matrix theory."""
    if "weights" not in table.columns:
        return pd.Series(False, index=table.index)
    return table["weights"].notna() & (table["weights"].astype(str) != "")


def spectrum_matrix(table: pd.DataFrame) -> pd.Series:
    """Which matrix each spectrum row is of: "W_hh", or "J_T" (last step Jacobian of sequence 0).

    Read from the ``matrix`` column when spectrum.csv has it; else a gated
    cell's spectrum is of J_T (gradlab.analysis.spectrum.StepBound) and
    a vanilla RNN's of W_hh.
    """
    if "matrix" in table.columns:
        return table["matrix"].fillna("W_hh").astype(str)
    return is_gated(table).map({True: "J_T", False: "W_hh"})


def chance_level(tables: dict, metric_name: str) -> float | None:
    """The chance-level ``metric_name`` of the task trained on, from the CSVs; None when they do not say.

    Read from runs.csv's ``chance_metric`` when the figure has the runs
    table, else from an ``evaluation`` column ``chance_metric``; rows of
    another metric (``metric_name``) are left out. One value for every run,
    or None (several tasks, no chance line drawn).
    """
    for kind in ("runs", "evaluation"):
        table = tables.get(kind)
        if table is None or "chance_metric" not in table.columns:
            continue
        if "metric_name" in table.columns:
            table = table[table["metric_name"].astype(str) == metric_name]
        values = pd.to_numeric(table["chance_metric"], errors="coerce").to_numpy(dtype=float)
        values = np.unique(values[np.isfinite(values)])
        if values.size and np.allclose(values, values[0], rtol=1e-9, atol=0):
            return float(values[0])
        return None
    return None


def has_table(results_dir, kind: str) -> bool:
    """Whether ``results_dir`` or one of its (visible) sub-folders holds table ``kind``'s file."""
    results_dir, name = Path(results_dir), TABLE_FILES[kind]
    if (results_dir / name).is_file():
        return True
    try:
        return any(not p.name.startswith(".") and (p / name).is_file() for p in results_dir.iterdir())
    except OSError:
        return False


def ordered(values, preferred=("tanh", "sigmoid", "relu", "linear")) -> list:
    """Distinct values, those in ``preferred`` first in that order, then sorted."""
    values = list(pd.unique(pd.Series(values)))
    first = [v for v in preferred if v in values]
    return first + sorted(v for v in values if v not in first)


def lag_curves(norms: pd.DataFrame, by=("activation", "radius")) -> pd.DataFrame:
    """Mean log10‖∂h_t/∂h_k‖ per lag, averaged over seeds (and pairs), with its theory.

    Parameters
    ----------
    norms : DataFrame
        A sweep's ``norms.csv`` (``lag``, ``mean_log10_norm``, ``log10_bound``,
        ``log10_rate`` and the parameter columns ``by``) or a run's
        ``norms.csv`` (``log10_norm`` per pair).
    by : sequence of str
        Parameter columns that define one curve.

    Returns
    -------
    DataFrame
        One row per (``by``…, ``lag``): ``log10_norm`` (mean of log10, i.e. the
        geometric mean of the norms), ``lo``/``hi`` (smallest/largest per-seed
        mean, the spread across seeds), ``log10_bound`` and ``log10_rate``
        (means over seeds of lag·log10(σ_max γ_h) and lag·log10 ρ), and
        ``n_runs``, the number of runs averaged.

    Notes
    -----
    A product that is exactly zero (log10 = −inf, e.g. every ReLU unit off)
    cannot be drawn on a log axis; such values are left out of the means, as
    :func:`gradlab.fit_growth_rate` leaves them out of its fit, and
    ``n_runs`` says how many runs remain at each lag.
    """
    value = "mean_log10_norm" if "mean_log10_norm" in norms.columns else "log10_norm"
    by = list(by)
    require_columns(norms, by + ["run_id", "lag", value, "log10_bound", "log10_rate"], "norms table")
    finite = norms[np.isfinite(norms[value])]
    per_run = finite.groupby(by + ["run_id", "lag"], sort=True)[[value, "log10_bound", "log10_rate"]].mean()
    grouped = per_run.groupby(level=by + ["lag"])
    out = grouped.mean().rename(columns={value: "log10_norm"})
    out["lo"] = grouped[value].min()
    out["hi"] = grouped[value].max()
    out["n_runs"] = grouped[value].size()
    return out.reset_index()


def pair_grid(norms: pd.DataFrame):
    """log10‖∂h_t/∂h_k‖ on the (t, k) grid, averaged (in log) over sequences.

    Parameters
    ----------
    norms : DataFrame
        One run's per-pair table (``t``, ``k``, ``log10_norm``).

    Returns
    -------
    t : (P,) int, k : (Q,) int
        The distinct output and input steps.
    grid : (P, Q) float
        ``grid[i, j]`` = mean over sequences of log10‖∂h_{t_i}/∂h_{k_j}‖;
        NaN where no pair was measured (t ≤ k).
    """
    require_columns(norms, ["t", "k", "log10_norm"], "norms table")
    finite = norms[np.isfinite(norms["log10_norm"])]
    wide = finite.groupby(["t", "k"])["log10_norm"].mean().unstack("k")
    return wide.index.to_numpy(), wide.columns.to_numpy(), wide.to_numpy(dtype=float)


def rates(norms: pd.DataFrame) -> dict:
    """Per-step growth rates (nats/step) of one run: measured slope, bound and ρ-rate.

    ``measured`` is the least-squares slope of ln‖∂h_t/∂h_k‖ against lag
    (as ``gradlab.fit_growth_rate``); ``bound`` = ln(σ_max γ_h) and
    ``asymptotic`` = ln ρ are read back from the ``log10_bound`` and
    ``log10_rate`` columns (lag · log10 of the factor).
    """
    value = "mean_log10_norm" if "mean_log10_norm" in norms.columns else "log10_norm"
    require_columns(norms, ["lag", value, "log10_bound", "log10_rate"], "norms table")
    lag = norms["lag"].to_numpy(dtype=float)
    pos = lag > 0
    return {
        "measured": fit_growth_rate(lag, norms[value].to_numpy(dtype=float) * LN10),
        "bound": float(np.mean(norms["log10_bound"].to_numpy()[pos] / lag[pos]) * LN10),
        "asymptotic": float(np.mean(norms["log10_rate"].to_numpy()[pos] / lag[pos]) * LN10),
    }


def growth_summary(runs: pd.DataFrame, by=("activation", "radius")) -> pd.DataFrame:
    """Measured growth rate per (activation, radius) over seeds, with the theory rates.

    Parameters
    ----------
    runs : DataFrame
        A sweep's ``runs.csv`` with ``growth_rate`` (fitted, nats/step),
        ``rho``, ``sigma_max`` and the columns ``by``; ``bound_rate`` and
        ``asymptotic_rate`` when it has them (gradlab ≥ 0.2), else
        ``gamma_h``.

    Returns
    -------
    DataFrame
        One row per group: ``growth_rate`` (mean), ``lo``/``hi`` (min/max over
        seeds), ``bound_rate`` (mean of the CSV's, else of ln(σ_max γ_h)) and
        ``log_rho`` (mean ``asymptotic_rate``, else ln ρ).

    Notes
    -----
    For a gated cell runs.csv's ``bound_rate`` is ln max_t ‖J_t‖₂ (a bound on
    that trajectory only), and ``asymptotic_rate`` is empty: it has no single
    W_hh whose ρ is the rate, and its ``rho`` is of the gate blocks, so
    ``log_rho`` is NaN for it, never ln ``rho``.
    """
    by = list(by)
    require_columns(runs, by + ["growth_rate", "rho", "sigma_max"], "runs table")
    if "bound_rate" in runs.columns:
        bound = runs["bound_rate"]
    else:
        require_columns(runs, ["gamma_h"], "runs table")
        bound = np.log(runs["sigma_max"] * runs["gamma_h"])
    log_rho = (runs["asymptotic_rate"] if "asymptotic_rate" in runs.columns
               else np.log(runs["rho"]).where(~is_gated(runs)))
    runs = runs.assign(bound_rate=bound, log_rho=log_rho)
    grouped = runs.groupby(by, sort=True)
    out = grouped[["growth_rate", "bound_rate", "log_rho"]].mean()
    out["lo"] = grouped["growth_rate"].min()
    out["hi"] = grouped["growth_rate"].max()
    return out.reset_index()


def final_metrics(evaluation: pd.DataFrame, by=("clip", "radius")) -> pd.DataFrame:
    """Task metric at the last evaluation of each run, averaged over seeds.

    Returns one row per group with ``metric`` (mean over the runs that
    finished with a finite metric), ``lo``/``hi`` (their min/max),
    ``n_diverged`` (runs whose metric is inf or NaN: the weights blew up) and
    ``metric_name``. ``metric`` is NaN when every run diverged.
    """
    by = list(by)
    require_columns(evaluation, by + ["run_id", "step", "metric_name", "metric"], "evaluation table")
    last = evaluation.sort_values("step").groupby("run_id", sort=False).tail(1)
    last = last.assign(diverged=~np.isfinite(last["metric"].to_numpy(dtype=float)))
    finite = last.assign(metric=last["metric"].where(~last["diverged"]))
    grouped = finite.groupby(by, sort=True)
    out = grouped[["metric"]].mean()  # NaN (diverged) runs are skipped; n_diverged counts them
    out["lo"] = grouped["metric"].min()
    out["hi"] = grouped["metric"].max()
    out["n_diverged"] = grouped["diverged"].sum().astype(int)
    out["metric_name"] = grouped["metric_name"].first()
    return out.reset_index()


def truncation_curves(truncation: pd.DataFrame, by=("radius",)) -> pd.DataFrame:
    """Relative error of truncated BPTT per truncation length, geometric mean over seeds.

    ``rel_error`` = ‖g_K − g‖ / ‖g‖ over all parameters together (rows with
    ``parameter == "all"``) when present, else for ``W_hh``, else the worst
    parameter. Rows: (``by``…, ``truncate``) with ``log10_error`` and
    ``lo``/``hi`` over seeds (log10).
    """
    by = list(by)
    require_columns(truncation, by + ["run_id", "truncate", "parameter", "rel_error"], "truncation table")
    chosen = next((p for p in ("all", "W_hh") if (truncation["parameter"] == p).any()), None)
    if chosen is not None:
        rows = truncation[truncation["parameter"] == chosen]
    else:
        rows = truncation.groupby(by + ["run_id", "truncate"], as_index=False)["rel_error"].max()
    rows = rows[rows["rel_error"] > 0]  # exactly 0 when K ≥ T: the truncated gradient is the gradient
    rows = rows.assign(log10_error=np.log10(rows["rel_error"]))
    grouped = rows.groupby(by + ["truncate"], sort=True)["log10_error"]
    return pd.DataFrame({"log10_error": grouped.mean(), "lo": grouped.min(), "hi": grouped.max()}).reset_index()


def quarter_circle_quantiles(n: int) -> np.ndarray:
    """Expected sorted singular values of an n×n Gaussian N(0, 1/n) matrix (largest first).

    The singular values follow the quarter-circle law p(σ) = √(4 − σ²)/π on
    [0, 2] (Marchenko–Pastur for a square matrix), so σ_max → 2 while the
    eigenvalues fill the unit disc (circular law) and ρ → 1. Returns the
    quantiles F⁻¹(1 − (i + ½)/n), i = 0 … n−1, with
    F(σ) = (σ√(4 − σ²)/2 + 2 arcsin(σ/2))/π, found by bisection.
    """
    p = 1.0 - (np.arange(n) + 0.5) / n
    lo, hi = np.zeros(n), np.full(n, 2.0)
    for _ in range(60):  # 2 / 2^60 is far below float resolution on [0, 2]
        mid = 0.5 * (lo + hi)
        cdf = (mid * np.sqrt(4.0 - mid**2) / 2.0 + 2.0 * np.arcsin(mid / 2.0)) / np.pi
        below = cdf < p
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def theory_singular_values(init: str, n: int, rho: float) -> np.ndarray | None:
    """Singular values random-matrix theory expects for a W_hh initialiser at radius ρ.

    ``orthogonal`` and ``identity``: all equal ρ (a normal matrix). ``gaussian``:
    ρ × quarter-circle quantiles (the circular law puts ρ ≈ 1 before the
    rescaling, so σ_max ≈ 2ρ). Unknown inits: None.
    """
    if init in ("orthogonal", "identity"):
        return np.full(n, float(rho))
    if init == "gaussian":
        return rho * quarter_circle_quantiles(n)
    return None


def ginibre_power_norm(lag) -> np.ndarray:
    """log10 of the n → ∞ limit of ‖G^k‖₂ for G Gaussian N(0, 1/n) (ρ(G) → 1).

    The squared singular values of G^k follow the Fuss–Catalan law of order
    k, whose upper edge is (k+1)^(k+1)/k^k (Alexeev, Götze & Tikhomirov 2010),
    so ‖G^k‖₂ → √((k+1)^(k+1)/k^k) ≈ √(e(k+1)): it *grows* with k although
    every eigenvalue lies in the unit disc. For a finite n the growth stops
    once k is comparable to n. Returns 0 at lag 0.
    """
    k = np.asarray(lag, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        klogk = np.where(k > 0, k * np.log10(np.where(k > 0, k, 1.0)), 0.0)
    return 0.5 * ((k + 1.0) * np.log10(k + 1.0) - klogk)
