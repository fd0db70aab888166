"""Readable summaries of results folders and CSVs (``gradlab inspect``).

Reads only what is on disk: ``manifest.json`` says what was run, the CSVs
hold the numbers (through :mod:`gradlab.schema`), so a folder someone sent
you can be understood without the code that made it.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..errors import GradlabError, PathLike
from .schema import COLUMNS, file_descriptions

# The figures that matter per kind of run, for sweep folders written before gradlab 0.2 (newer ones name
# them in their manifest, from gradlab.experiments.kinds.KINDS); the first is pivoted when two
# parameters were swept.
KEY_FIGURES_BEFORE_0_2 = {
    "run": ("growth_rate", "bound_rate", "asymptotic_rate"),
    "train": ("final_metric", "final_loss", "n_clipped", "n_skipped"),
    "truncation": ("rel_error",),
}

FILES = file_descriptions()


def inspect_path(path: PathLike) -> str:
    """A summary of a results folder (``gradlab run``, ``train`` or ``sweep``) or of one CSV."""
    path = Path(path)
    if path.is_file():
        return describe_csv(path)
    if not path.is_dir():
        raise GradlabError(f"no such file or folder {str(path)!r}")
    manifest = _read_manifest(path)
    if not manifest and not any((path / name).exists() for name in FILES) \
            and not any(path.glob("*/manifest.json")):
        raise GradlabError(f"{str(path)!r} is not a results folder: no manifest.json or gradlab tables in it "
                           "or its sub-folders")
    kind = manifest.get("kind", "unknown")
    lines = [f"{path}/  ({kind} results)"]
    if kind == "sweep":
        lines += _sweep_summary(path, manifest)
    elif manifest:
        lines += _single_summary(manifest)
    lines += ["", "files:"] + _file_lines(path)
    return "\n".join(lines)


def _read_manifest(folder: Path) -> dict:
    path = folder / "manifest.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (ValueError, UnicodeDecodeError) as e:
        raise GradlabError(f"cannot read {str(path)!r}: {e}") from None
    if not isinstance(data, dict):
        raise GradlabError(f"{str(path)!r} is not a gradlab manifest (it holds a JSON {type(data).__name__}, "
                           "not an object)")
    _check_manifest_shape(data, path)
    return data


JSON_TYPES = {dict: "an object", list: "a list", str: "a string", int: "a whole number", bool: "true or false"}


def _check_manifest_shape(data: dict, path: Path) -> None:
    """Refuse, in one line naming the key, a manifest whose entries have the wrong JSON types (a hand edit)."""
    def bad(key: str, value, expected: str):
        got = next((name for t, name in JSON_TYPES.items() if type(value) is t), "null" if value is None
                   else f"a {type(value).__name__}")
        raise GradlabError(f"{str(path)!r} is not a valid gradlab manifest: {key!r} is {got}, expected {expected}")

    for key in ("config", "summary", "sweep", "versions"):
        if key in data and not isinstance(data[key], dict):
            bad(key, data[key], "an object")
    for key in ("files", "code"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            bad(key, data[key], "an object")
    sweep, config = data.get("sweep", {}), data.get("config", {})
    n_runs = sweep.get("n_runs", 0)
    if isinstance(n_runs, bool) or not isinstance(n_runs, int):
        bad("sweep.n_runs", n_runs, "a whole number")
    figures = sweep.get("key_figures", [])
    if not (isinstance(figures, list) and all(isinstance(f, str) for f in figures)):
        bad("sweep.key_figures", figures, "a list of column names")
    if not isinstance(config.get("fixed", {}), dict):
        bad("config.fixed", config["fixed"], "an object")
    if data.get("kind") == "sweep":
        grid = config.get("grid", {})
        for i, table in enumerate(grid if isinstance(grid, list) else [grid]):
            key = f"config.grid[{i}]" if isinstance(grid, list) else "config.grid"
            if not isinstance(table, dict):
                bad(key, table, "an object of lists")
            for name, values in table.items():
                if not isinstance(values, list):
                    bad(f"{key}.{name}", values, "a list")


def _sweep_summary(folder: Path, manifest: dict) -> list[str]:
    sweep, config = manifest.get("sweep", {}), manifest.get("config", {})
    kind, grid, fixed = config.get("kind", "run"), _swept_values(config.get("grid", {})), config.get("fixed", {})
    n_runs = sweep.get("n_runs", 0)
    runs = _runs_table(folder)
    n_done = 0 if runs is None else len(runs)
    lines = [f"sweep file: {sweep.get('source', '?')}  (kind = {kind}{', quick' if config.get('quick') else ''})"]
    if sweep.get("description"):
        lines.append(f"  {sweep['description']}")
    lines.append("swept:")
    lines += [f"  {k} = {_short_list(v)}  ({len(v)} value{'s' * (len(v) != 1)})" for k, v in grid.items()]
    lines.append("fixed: " + ", ".join(f"{k} = {v}" for k, v in fixed.items()))
    state = "finished" if sweep.get("finished") else "unfinished: run the same command again to resume"
    lines.append(f"runs: {n_done} of {n_runs} done ({state})")
    if runs is not None and n_done:
        figures = sweep.get("key_figures", KEY_FIGURES_BEFORE_0_2.get(kind, ()))
        groups = summary_groups(runs, [k for k in grid if k in runs.columns])
        lines += [""] + key_figures(runs, figures, groups)
        lines += solved_counts(runs, groups)
    return lines


def summary_groups(runs: pd.DataFrame, swept: list[str]) -> list[str]:
    """The swept parameters a sweep's summary groups by.

    All of them, unless the runs carry a ``label`` (a name for one combination of settings, as each
    ``[[grid]]`` table of ``experiments/remedies.toml`` gives its remedy): then the label and the
    parameters that vary within a label (T, task, seed), not the settings the label stands for.
    """
    if "label" not in swept:
        return swept
    labels = runs["label"].fillna("").astype(str)
    return ["label"] + [k for k in swept if k != "label"
                        and (runs.groupby(labels)[k].nunique(dropna=False) > 1).any()]


def solved_counts(runs: pd.DataFrame, groups: list[str]) -> list[str]:
    """Runs solved of all ("k/n") per group of a training sweep (runs.csv has ``solved``); [] otherwise.

    One table per task (when ``task`` is among ``groups``): a row per value of the other groups (the
    label, say) in the sweep's order, a column per sequence length ``steps`` when it is swept.
    """
    if "solved" not in runs.columns:
        return []
    solved = runs["solved"].astype(str).str.strip().str.lower().isin(["true", "1", "1.0"])
    table = runs.assign(_solved=solved)
    index = [k for k in groups if k not in ("seed", "steps", "task")]
    columns = ["steps"] if "steps" in groups else []
    tasks = list(dict.fromkeys(runs["task"])) if "task" in groups else [None]
    head = " × ".join(index + columns) or "sweep"
    lines = ["", f"runs solved of all (runs.csv `solved`) per {head}:"]
    for task in tasks:
        part = table if task is None else table[table["task"] == task]
        keys = index + columns
        if not keys:
            lines.append(f"  {int(part['_solved'].sum())}/{len(part)}")
            continue
        counts = part.groupby(keys, sort=False, dropna=False)["_solved"].agg(["sum", "size"])
        text = counts["sum"].astype(int).astype(str) + "/" + counts["size"].astype(str)
        if columns and index:
            grid = text.unstack("steps")
            grid = grid.reindex(index=list(dict.fromkeys(text.index.droplevel("steps"))), columns=sorted(grid.columns))
        elif columns:
            grid = text.sort_index().to_frame("solved").T
        else:
            grid = text.to_frame("solved")
        if task is not None:
            lines.append(f"task = {task}")
        lines.append(_fmt(grid.fillna("–")))
    return lines


def _swept_values(grid) -> dict:
    """Each swept parameter's values: a ``[grid]`` table, or the union over ``[[grid]]`` tables (in order)."""
    if isinstance(grid, dict):
        return grid
    values: dict[str, list] = {}
    for table in grid if isinstance(grid, list) else []:
        for key, vs in table.items():
            values.setdefault(key, [])
            values[key] += [v for v in vs if v not in values[key]]
    return values


def _runs_table(folder: Path) -> pd.DataFrame | None:
    """runs.csv, or, for a sweep still running, the rows of its finished parts."""
    if (folder / "runs.csv").is_file():
        return read_csv(folder / "runs.csv")
    parts = sorted((folder / "parts").glob("[!.]*/runs.csv"))
    return pd.concat([read_csv(p) for p in parts], ignore_index=True) if parts else None


def read_csv(path: Path) -> pd.DataFrame:
    """A CSV as a DataFrame, or a one-line error naming it (not UTF-8, not CSV, unreadable)."""
    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as e:   # ParserError, EmptyDataError and UnicodeDecodeError are ValueErrors
        raise GradlabError(f"cannot read {str(path)!r} as CSV: {e}") from None


def key_figures(runs: pd.DataFrame, figures, swept: list[str]) -> list[str]:
    """Table of the key figures (``runs.csv`` columns) per group of swept parameters (means over seeds)."""
    figures = [f for f in figures if f in runs.columns]
    groups = [k for k in swept if k != "seed"]
    if not figures:
        return []
    for figure in figures:
        check_numeric(runs[figure], "runs.csv")
    seeds = f", mean over {runs['seed'].nunique()} seeds" if "seed" in swept else ""
    if len(groups) == 2:
        rows, cols = sorted(groups, key=lambda k: -runs[k].nunique())
        out = []
        for figure in figures[:2]:
            table = runs.pivot_table(index=rows, columns=cols, values=figure, aggfunc="mean")
            out += [f"{figure} per {rows} × {cols}{seeds}:", _fmt(table), ""]
        return out[:-1]
    if not groups:
        return [f"key figures{seeds}:", _fmt(runs[figures].mean().to_frame("mean").T)]
    table = runs.groupby(groups, sort=True, dropna=False)[figures].mean()   # [[grid]] tables leave NaN
    return [f"{', '.join(figures)} per {' × '.join(groups)}{seeds}:", _fmt(table)]


def check_numeric(column: pd.Series, source: str) -> None:
    """A one-line error naming the first entry of ``column`` that is not a number (a hand-edited CSV)."""
    if not pd.api.types.is_numeric_dtype(column):
        numbers = pd.to_numeric(column, errors="coerce")
        bad = column[numbers.isna() & column.notna()]
        raise GradlabError(f"{source}: column {column.name!r} holds {bad.iloc[0]!r} where a number belongs")


def _single_summary(manifest: dict) -> list[str]:
    config, summary = manifest.get("config", {}), manifest.get("summary", {})
    lines = ["config: " + ", ".join(f"{k} = {v}" for k, v in config.items() if v is not None)]
    files = manifest.get("files")
    if isinstance(files, dict) and files:   # what `gradlab run --weights/--input-seq` read
        lines.append("files: " + ", ".join(f"{k} = {f.get('path')} (sha256 {str(f.get('sha256'))[:12]}…)"
                                           for k, f in files.items() if isinstance(f, dict)))
    if summary:
        shown = {k: v for k, v in summary.items() if not isinstance(v, (dict, list))}
        lines.append("summary: " + ", ".join(f"{k} = {_num(v)}" for k, v in shown.items()))
    return lines


def _file_lines(folder: Path) -> list[str]:
    lines = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_dir():
            size = f"{sum(1 for q in p.iterdir() if not q.name.startswith('.'))} entries"
        elif p.suffix == ".csv":
            rows = _count_rows(p)
            size = f"{rows} row{'s' * (rows != 1)}"
        else:
            size = f"{p.stat().st_size} bytes"
        lines.append(f"  {str(p):<40} {size:>14}  {FILES.get(p.name, '')}".rstrip())
    return lines


def describe_csv(path: Path) -> str:
    """Rows, the table kind recognised from its columns, runs, and a numeric overview."""
    table = read_csv(path)
    kind = table_kind(table.columns)
    lines = [f"{path}: {len(table)} rows × {table.shape[1]} columns"
             + (f"  (gradlab {kind} table)" if kind else "")]
    if "run_id" in table.columns:
        lines.append(f"runs: {table['run_id'].nunique()}")
    constant = {c: table[c].iloc[0] for c in table.columns if len(table) and table[c].nunique(dropna=False) == 1}
    if constant:
        lines.append("constant: " + ", ".join(f"{k} = {_num(v)}" for k, v in constant.items()))
    varying = [c for c in table.columns if c not in constant]
    numeric = table[varying].select_dtypes("number")
    if not numeric.empty:
        lines += ["", _fmt(numeric.agg(["min", "median", "max"]))]
    text_cols = [c for c in varying if c not in numeric.columns and c != "run_id"]
    for c in text_cols:
        lines.append(f"{c}: {_short_list(sorted(map(str, table[c].dropna().unique())))}")
    return "\n".join(lines)


def table_kind(columns) -> str | None:
    """The schema table whose required columns all appear, preferring the most specific."""
    matches = [k for k, cols in COLUMNS.items() if set(cols) <= set(columns)]
    return max(matches, key=lambda k: len(COLUMNS[k]), default=None)


def _count_rows(path: Path) -> int:
    with open(path, "rb") as f:
        return max(sum(1 for _ in f) - 1, 0)


def _short_list(values, limit: int = 8) -> str:
    values = list(values)
    shown = ", ".join(map(str, values[:limit]))
    return f"[{shown}{', …' if len(values) > limit else ''}]"


def _num(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _fmt(table: pd.DataFrame) -> str:
    return table.to_string(float_format=lambda v: f"{v:.4g}")
