"""Sweeps: a TOML grid → a list of plain parameter dicts → one results folder.

A sweep file names the kind of run and its parameters::

    kind = "run"                 # a kind of gradlab.experiments.kinds.KINDS: run, train, truncation, lyapunov
    description = "optional text"

    [fixed]                      # the same for every run
    hidden = 64
    steps = 100

    [grid]                       # lists; every combination is one run
    radius = [0.5, 1.0, 2.0]
    activation = ["tanh", "relu"]

    [quick.grid]                 # optional: replacements for --quick
    radius = [0.5, 2.0]

The runs are the Cartesian product of ``[grid]`` (in file order) merged with
``[fixed]``. Where parameters go together (each activation its own gains),
``[[grid]]`` tables may be repeated: the runs are then the union of their
products, in file order (as scikit-learn's ``ParameterGrid`` of a list), and
``[[quick.grid]]`` replaces the whole list. Each run has a ``run_id`` (its place in that order) and a
``param_hash`` (SHA-256 of its kind and parameters). A run's random seed is
its ``seed`` parameter, or, when the sweep sets none, a number taken from
its hash: never from the order in which runs execute, so the results are the
same on one process, many, or a Dask cluster.

Resuming: every finished run is committed on its own, atomically, as a
folder ``parts/<run_id>-<hash>/`` holding its rows and a ``part.json`` (each
file's row count and SHA-256, the code fingerprint of the process that
computed it, the SHA-256 of the weights and input files it read); the
tables of the sweep (``runs.csv``, ``norms.csv``, …) are built from the
parts, in run order, when all runs are done. Killed and started again with
the same command, a sweep computes only the runs without a complete part: a
part cut short, missing a file, altered, computed by other code or from
other input files is computed again, never merged. A changed sweep file is
refused unless ``force``, and so is a sweep begun by other gradlab code (the
manifest records the :func:`~gradlab.results.code_fingerprint` of the code
that began the sweep, and a resume with a different one would mix rows of
two versions; a folder begun by a gradlab that recorded none resumes
unchecked and keeps ``code: null``) or one whose weights or input files
changed since it began (their SHA-256 are in the manifest). One process at
a time writes a sweep folder (:func:`~gradlab.io.results.claim_folder`).
"""
from __future__ import annotations

import hashlib
import io
import itertools
import json
import math
import os
import shutil
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing
from dataclasses import dataclass, replace
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path

import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from ..errors import GradlabError, PathLike, check_positive_int
from .kinds import KINDS, get_kind
from ..io.files import file_sha256
from ..io.results import (FolderRefused, WriteFailed, check_new_folder, claim_folder, code_fingerprint, code_label,
                          manifest, release_inherited_locks, replaced_folder, same_code, write_csv, write_errors,
                          write_json, write_results, render_csv, write_rendered, atomic_write_text)

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

SPEC_KEYS = ("kind", "description", "fixed", "grid", "quick")
PARTS = "parts"
SCALAR_TYPES = (bool, int, float, str)


# ---------------------------------------------------------------- the sweep file

@dataclass(frozen=True)
class SweepSpec:
    """A parsed, validated sweep file.

    Attributes
    ----------
    kind : str
        A key of :data:`gradlab.experiments.kinds.KINDS`.
    grid : dict[str, list] or list of them
        Swept parameters, in file order; a list (``[[grid]]`` tables) is the
        union of the products of its tables.
    fixed : dict[str, scalar]
    quick_grid, quick_fixed : dict
        The ``[quick]`` replacements (already applied when ``quick``).
    quick : bool
    text : str
        The sweep file as written (kept in the manifest).
    source : str
    description : str
    """

    kind: str
    grid: dict | list
    fixed: dict
    quick_grid: dict | list
    quick_fixed: dict
    quick: bool
    text: str
    source: str
    description: str = ""

    @property
    def grids(self) -> list[dict]:
        """The grid as a list of tables (one for a plain ``[grid]``)."""
        return self.grid if isinstance(self.grid, list) else [self.grid]

    @property
    def swept(self) -> list[str]:
        """Swept parameter names, in file order (every table's, once)."""
        return list(dict.fromkeys(k for g in self.grids for k in g))

    @property
    def names(self) -> list[str]:
        """Parameter columns: swept ones first, then fixed ones."""
        return self.swept + list(self.fixed)

    @property
    def n_runs(self) -> int:
        """How many runs the grid holds, counted without building them."""
        return sum(math.prod(len(v) for v in g.values()) for g in self.grids)

    def points(self):
        """The runs as plain parameter dicts, in order: each table's Cartesian product, plus the fixed values."""
        for grid in self.grids:
            keys = list(grid)
            for values in itertools.product(*grid.values()):
                yield {**dict(zip(keys, values)), **self.fixed}

    def digest(self) -> str:
        """Hash of what is computed (kind and runs), not of comments or layout."""
        return _sha({"kind": self.kind, "grid": self.grid, "fixed": self.fixed})

    def with_quick(self) -> "SweepSpec":
        """The spec with its ``[quick]`` replacements applied (and checked)."""
        if self.quick:
            return self
        if isinstance(self.grid, list) or isinstance(self.quick_grid, list):
            # [[grid]] tables go together: [[quick.grid]] replaces the whole list, if it is given
            grid = self.quick_grid or self.grid
            quick_keys = {k for g in (grid if isinstance(grid, list) else [grid]) for k in g}
            grid = [{k: v for k, v in g.items() if k not in self.quick_fixed}
                    for g in (grid if isinstance(grid, list) else [grid])]
        else:
            grid = {k: v for k, v in self.grid.items() if k not in self.quick_fixed}
            grid.update(self.quick_grid)
            quick_keys = set(self.quick_grid)
        fixed = {k: v for k, v in self.fixed.items() if k not in quick_keys}
        fixed.update(self.quick_fixed)
        spec = replace(self, grid=grid, fixed=fixed, quick=True)
        try:
            _check_points(spec)
        except GradlabError as e:
            raise GradlabError(f"with its [quick] replacements: {e}") from None
        return spec


def load_spec(path: PathLike, quick: bool = False) -> SweepSpec:
    """Read and validate a sweep file; ``quick`` applies its ``[quick]`` table."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GradlabError(f"no such sweep file {str(path)!r}") from None
    except (IsADirectoryError, UnicodeDecodeError) as e:
        raise GradlabError(f"cannot read sweep file {str(path)!r}: {e}") from None
    return parse_spec(text, str(path), quick)


def parse_spec(text: str, source: str = "<sweep>", quick: bool = False) -> SweepSpec:
    """Parse and validate sweep TOML text; errors name the file, key and value."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise GradlabError(f"{source}: malformed TOML: {e}") from None
    except RecursionError:
        raise GradlabError(f"{source}: malformed TOML: arrays or tables nested too deeply") from None
    try:
        spec = _spec_from_dict(raw, text, source)
        _check_points(spec, with_budget=not quick)     # the budget of the runs that will run, only
        quick_spec = spec.with_quick()   # checks the [quick] tables whether or not they are used now
        if quick:
            _check_points(quick_spec, with_budget=True)
        return quick_spec if quick else spec
    except GradlabError as e:
        raise GradlabError(f"{source}: {e}") from None


def _spec_from_dict(raw: dict, text: str, source: str) -> SweepSpec:
    for key in raw:
        if key not in SPEC_KEYS:
            raise GradlabError(f"unknown key {key!r} (allowed: {', '.join(SPEC_KEYS)})")
    if "kind" not in raw:
        raise GradlabError(f"missing key 'kind' (one of {', '.join(KINDS)})")
    get_kind(raw["kind"])
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise GradlabError(f"description must be a string, got {description!r}")
    grid = _grid_spec(raw.get("grid", {}), "grid")
    fixed = _fixed_table(raw.get("fixed", {}), "fixed")
    quick = raw.get("quick", {})
    if not isinstance(quick, dict):
        raise GradlabError(f"quick must be a table with [quick.grid] / [quick.fixed], got {quick!r}")
    for key in quick:
        if key not in ("grid", "fixed"):
            raise GradlabError(f"unknown key 'quick.{key}' (allowed: quick.grid, quick.fixed)")
    for key in {k for g in (grid if isinstance(grid, list) else [grid]) for k in g} & set(fixed):
        raise GradlabError(f"key {key!r} is in both [grid] and [fixed]")
    return SweepSpec(raw["kind"], grid, fixed, _grid_spec(quick.get("grid", {}), "quick.grid"),
                     _fixed_table(quick.get("fixed", {}), "quick.fixed"), False, text, source, description)


def _grid_spec(grid, name: str) -> dict | list:
    """A ``[grid]`` table, or a list of ``[[grid]]`` tables (each checked)."""
    if isinstance(grid, list):
        if not grid:
            raise GradlabError(f"[[{name}]] must hold at least one table")
        return [_grid_table(g, f"{name}[{i}]") for i, g in enumerate(grid)]
    return _grid_table(grid, name)


def _grid_table(table, name: str) -> dict:
    if not isinstance(table, dict):
        raise GradlabError(f"[{name}] must be a table of lists, got {table!r}")
    for key, values in table.items():
        if not isinstance(values, list) or not values:
            raise GradlabError(f"{name}.{key} must be a non-empty list, got {values!r}")
        _check_name(key, name)
        for v in values:
            if not isinstance(v, SCALAR_TYPES):
                raise GradlabError(f"{name}.{key} must list numbers, strings or booleans, got {v!r}")
        if len({_same_value(v) for v in values}) < len(values):     # 1 and 1.0 are one value: one run twice
            raise GradlabError(f"{name}.{key} lists a value twice: {values!r}")
    return dict(table)


def _fixed_table(table, name: str) -> dict:
    if not isinstance(table, dict):
        raise GradlabError(f"[{name}] must be a table of values, got {table!r}")
    for key, value in table.items():
        _check_name(key, name)
        if not isinstance(value, SCALAR_TYPES):
            raise GradlabError(f"{name}.{key} must be a number, string or boolean, got {value!r}")
    return dict(table)


def _same_value(v):
    """A key equal for values that configure the same run: 1 and 1.0 (never True and 1)."""
    return ("bool", v) if isinstance(v, bool) else ("number", v) if isinstance(v, (int, float)) else ("text", v)


PROVENANCE_COLUMNS = ("run_id", "param_hash", "wall_time_s")


def _output_columns() -> set:
    """Column names a sweep writes beside its parameters: provenance, every table's, every kind's figures.

    A parameter of that name would clash with the column (or, in ``runs.csv``,
    silently stand beside a measured value of the same name).
    """
    from ..io.schema import TABLES

    parameters = set().union(*(k.parameter_names() for k in KINDS.values()))
    columns = set(PROVENANCE_COLUMNS) | {c for t in TABLES.values() for c in t.columns}
    columns |= {c for k in KINDS.values() for c in k.key_figures}
    columns |= {"rho", "sigma_max", "gamma_h", "growth_rate", "bound_rate", "asymptotic_rate", "lyapunov",
                "loss_value", "final_rho", "final_sigma_max", "final_loss", "final_metric"}
    return columns - parameters


def _check_name(key: str, table: str) -> None:
    if key in _output_columns():
        raise GradlabError(f"{table}.{key}: {key!r} is a column gradlab writes (runs.csv or a table beside the "
                           "parameters), not a parameter; a parameter may not take its name")


def _check_points(spec: SweepSpec, with_budget: bool = False) -> None:
    """Build the config of every run and read the files it names, so a bad value fails before anything runs.

    The runs are counted first (a grid of more than ``budget.MAX_RUNS`` is
    refused before any is built); a run listed twice (the same point in two
    ``[[grid]]`` tables) is refused. ``with_budget``: each run's memory
    estimate is checked, before its files are read, and the sweep's total
    time (:mod:`gradlab.experiments.budget`).
    """
    from . import budget

    budget.check_run_count(spec.n_runs)
    kind = get_kind(spec.kind)
    total = budget.SweepBudget(spec.n_runs) if with_budget else None
    seen = set() if len(spec.grids) > 1 else None
    for i, params in enumerate(spec.points()):
        if seen is not None:
            point = tuple(sorted((k, _same_value(v)) for k, v in params.items()))
            if point in seen:
                shown = ", ".join(f"{k} = {v!r}" for k, v in params.items())
                raise GradlabError(f"two [[grid]] tables both hold the run {shown}: it would run twice")
            seen.add(point)
        config = kind.make_config(params)
        if total is not None:
            total.add(f"r{i:04d}", params, config)
        kind.check(config)
    if total is not None:
        total.finish()
        budget.remember_sweep(spec, total)


def make_config(kind: str, params: dict):
    """The validated config of one run of ``kind`` (:data:`gradlab.experiments.kinds.KINDS`)."""
    return get_kind(kind).make_config(params)


# ---------------------------------------------------------------- one run

@dataclass(frozen=True)
class Run:
    """One point of a sweep: ``run_id`` (place in grid order), ``param_hash``, ``params``."""

    run_id: str
    param_hash: str
    params: dict

    @property
    def part(self) -> str:
        return f"{self.run_id}-{self.param_hash}"

    @property
    def seed(self) -> int:
        """The ``seed`` parameter, or one derived from the parameter hash."""
        return self.params.get("seed", int(self.param_hash[:8], 16))


def _sha(data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def plan(spec: SweepSpec) -> list[Run]:
    """The runs of a spec, in grid order."""
    return [Run(f"r{i:04d}", _sha({"kind": spec.kind, "params": p})[:16], p) for i, p in enumerate(spec.points())]


def run_tables(kind: str, run: Run, quiet: bool = True) -> dict[str, pd.DataFrame]:
    """Compute one run and return its rows, each table led by ``run_id`` and the parameters.

    Runs with BLAS pinned to one thread (sweeps parallelise over runs). The
    ``runs`` table has one row: parameters, ``param_hash``, ``seed``, the
    run's summary figures and ``wall_time_s``.
    """
    start = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        summary, tables = _compute(kind, {**run.params, "seed": run.seed}, quiet)
    derived = {} if "seed" in run.params else {"seed": run.seed}   # so `gradlab run --seed S` repeats the run
    row = {"param_hash": run.param_hash, **derived, **summary, "wall_time_s": time.perf_counter() - start}
    tables = {name: _lead_with_run(table, run) for name, table in {"runs": pd.DataFrame([row]), **tables}.items()}
    tables["runs"].insert(1, "param_hash", tables["runs"].pop("param_hash"))
    return tables


def _compute(kind: str, params: dict, quiet: bool) -> tuple[dict, dict]:
    sweep_kind = get_kind(kind)
    return sweep_kind.compute(sweep_kind.make_config(params), quiet)


def _lead_with_run(table: pd.DataFrame, run: Run) -> pd.DataFrame:
    """Prefix ``run_id`` and one column per parameter, so every row stands alone."""
    clash = set(run.params) & set(table.columns)
    if clash:
        raise GradlabError(f"parameter {sorted(clash)[0]!r} clashes with a column of the same name")
    lead = pd.DataFrame({"run_id": run.run_id, **run.params}, index=table.index)
    return pd.concat([lead, table], axis=1)


# ---------------------------------------------------------------- the results folder

PART_FILE = "part.json"   # in each part: its files (rows, SHA-256), the code and the input files that made it
INPUT_ROLES = {"weights": "weights", "input_seq": "input"}


@dataclass(frozen=True)
class SweepOutcome:
    """What :func:`run_sweep` did: the folder, how many runs, how many were already done.

    ``n_damaged`` counts the parts found incomplete or altered (cut short, a
    file missing or changed, another code's or another input file's) that
    were computed again.
    """

    out: Path
    n_runs: int
    n_already_done: int
    n_computed: int
    tables: tuple[str, ...]
    n_damaged: int = 0


def run_sweep(spec: PathLike | SweepSpec, out: PathLike, jobs: int = 1, scheduler: str | None = None,
              force: bool = False, quiet: bool = True, quick: bool = False) -> SweepOutcome:
    """Run a sweep into the results folder ``out``; resume it if it was started before.

    Parameters
    ----------
    spec : path or SweepSpec
        The sweep file (``experiments/NAME.toml``) or a parsed spec.
    out : path
        Results folder. A folder holding the same sweep is resumed; a
        different sweep (or another gradlab result), the same sweep begun
        by other gradlab code (another :func:`~gradlab.results.code_fingerprint`),
        or one whose weights or input files changed since (their SHA-256 is
        in the manifest) is refused unless ``force``; a non-empty folder
        gradlab did not write (no ``manifest.json``), a folder that holds a
        file the sweep reads, and a folder another process is writing are
        always refused.
    jobs : int
        Local worker processes (BLAS pinned to one thread each).
    scheduler : str, optional
        Address of a Dask distributed scheduler (``tcp://host:8786``); needs
        ``pip install "gradlab[distributed]"``. Overrides ``jobs``.
    force : bool
        Replace the gradlab results in ``out`` with this sweep, started again.
    quiet : bool
        No progress bar (also off when stderr is not a terminal).
    quick : bool
        Apply the file's ``[quick]`` replacements (small sizes, for smoke runs).

    Returns
    -------
    SweepOutcome

    Notes
    -----
    A run counts as done when its part is complete: every file its
    ``part.json`` lists is there with the recorded SHA-256 (and, when the
    tables are merged, parses to the recorded number of rows), it was
    computed by the code that began the sweep and from the same weights and
    input files. Any other part is computed again, so a part cut short,
    missing a table or emptied is never merged.

    Examples
    --------
    >>> import gradlab as gl
    >>> gl.run_sweep("experiments/vanishing.toml", "results/vanishing-quick", jobs=2, quick=True)  # doctest: +SKIP
    """
    spec = load_spec(spec, quick) if not isinstance(spec, SweepSpec) else (spec.with_quick() if quick else spec)
    check_positive_int(jobs, "jobs")
    out = Path(out)
    runs = plan(spec)
    kind = get_kind(spec.kind)
    run_files = {run.run_id: _files_read(kind, run.params) for run in runs}
    roles = {path: role for files in run_files.values() for path, role in files.items()}
    reads = {path: f"{INPUT_ROLES.get(role, role)} file" for path, role in roles.items()}
    if Path(spec.source).is_file():
        reads[spec.source] = "the sweep file"
    with claim_folder(out, reads):
        client = _dask_client(scheduler) if scheduler is not None else None   # unreachable: fail before writing
        try:
            inputs = {path: _hash_input(path, role) for path, role in roles.items()}
            sweep_code, code = _prepare_folder(spec, out, force, len(runs), inputs, roles)
            expected = {run.run_id: {p: inputs[p] for p in run_files[run.run_id]} for run in runs}
            sweep = _Sweep(spec, out, runs, kind, sweep_code, code, expected, roles)
            return sweep.run(jobs, client, quiet)
        finally:
            if client is not None:
                client.close()


class _Sweep:
    """The state of one sweep being run: what is expected of each part, how many are kept."""

    def __init__(self, spec, out, runs, kind, sweep_code, code, expected, roles):
        self.spec, self.out, self.runs, self.kind = spec, out, runs, kind
        self.sweep_code, self.code, self.expected, self.roles = sweep_code, code, expected, roles
        self.parts = out / PARTS
        self.n_kept = 0

    def run(self, jobs: int, client, quiet: bool) -> SweepOutcome:
        runs, n = self.runs, len(self.runs)
        problems = {run.run_id: _part_problem(self.parts / run.part, run, self.sweep_code,
                                              self.expected[run.run_id]) for run in runs}
        todo = [run for run in runs if problems[run.run_id] is not None]
        n_damaged = sum(problems[run.run_id] != "missing" for run in todo)
        self.n_kept = n - len(todo)
        n_computed = len(todo)
        try:
            self.compute(todo, jobs, client, quiet)
            try:
                names = self.merge()
            except _DamagedParts as damaged:   # altered after they were checked: compute them again, once
                n_damaged += len(damaged.runs)
                n_computed += len(damaged.runs)
                self.n_kept -= len(damaged.runs)
                self.compute(damaged.runs, jobs, client, quiet)
                try:
                    names = self.merge()
                except _DamagedParts as again:
                    raise GradlabError(f"the parts of run {again} in {str(self.out)!r} changed again right after "
                                       "they were written: is something else writing into the folder?") from None
            _write_manifest(self.spec, self.out, n, finished=True, code=self.sweep_code,
                            inputs=_all_inputs(self.expected))
        except WriteFailed as e:
            raise e.with_kept(self.kept()) from None
        except BaseException as e:       # Ctrl-C, SIGTERM: the CLI says how many runs are kept
            if not isinstance(e, Exception):
                e.resume_note = f"{self.kept()}; run the same command again to resume"
            raise
        return SweepOutcome(self.out, n, n - n_computed, n_computed, names, n_damaged)

    def kept(self) -> str:
        return f"{self.n_kept} of {len(self.runs)} runs are kept in {str(self.out)!r}"

    def compute(self, todo: list[Run], jobs: int, client, quiet: bool) -> None:
        if not todo:
            return
        context = _pool_context()    # before tqdm starts its monitor thread
        n = len(self.runs)
        bar = tqdm(total=n, initial=self.n_kept, unit="run", desc=Path(self.spec.source).stem,
                   disable=quiet or not sys.stderr.isatty())
        # closing(): stopped by an error or a signal, the runner cancels the runs not yet started at once
        # (left to the garbage collector, a process pool would first work through all of them).
        try:
            with closing(_execute(self.spec.kind, todo, jobs, client, context, self.code)) as finished:
                for run, (tables, meta) in finished:
                    self.check_meta(run, meta)
                    _commit_part(self.parts / run.part, run, tables, meta)
                    self.n_kept += 1
                    bar.update()
        finally:
            bar.close()

    def check_meta(self, run: Run, meta: dict) -> None:
        """Refuse to keep a run computed by other code (a Dask worker's) or from a file that changed since."""
        if self.sweep_code is not None and not same_code(meta["code"], self.sweep_code):
            raise GradlabError(f"run {run.run_id} was computed by {code_label(meta['code'])}, but the sweep in "
                               f"{str(self.out)!r} by {code_label(self.sweep_code)}: parts of different code are "
                               "never combined; install the same gradlab wherever the sweep runs (every Dask "
                               "worker), then run the same command again")
        for path, sha in meta["inputs"].items():
            old = self.expected[run.run_id].get(path)
            if sha != old:
                raise FolderRefused(self.out, "input_changed", file=path, role=INPUT_ROLES.get(self.roles[path], "input"),
                                    old=old, new=sha)

    def merge(self) -> tuple[str, ...]:
        """Concatenate every part's tables in run order into ``out/<table>.csv``; the parts are checked first.

        A kind with a ``finish`` step (the Lyapunov scan's theory curves) adds
        the tables it computes from the sweep's parameter points. Stopped
        half-way, the tables written so far are removed again: a sweep folder
        has all its tables or none.
        """
        pieces: dict[str, list[bytes]] = {}
        damaged = []
        for run in self.runs:
            tables = _read_part(self.parts / run.part, run, self.sweep_code, self.expected[run.run_id])
            if tables is None:
                damaged.append(run)
                continue
            for name, table in tables.items():
                pieces.setdefault(name, []).append(table)
        if damaged:
            raise _DamagedParts(damaged)
        tables = {name: _concat_csv(frames) for name, frames in pieces.items()}
        if self.kind.finish is not None:
            tables.update(self.kind.finish([{**run.params, "seed": run.seed} for run in self.runs]))
        written = []
        try:
            for name, table in tables.items():
                _write_table(self.out / f"{name}.csv", table)
                written.append(name)
        except BaseException:
            for name in written:
                (self.out / f"{name}.csv").unlink(missing_ok=True)
            raise
        return tuple(tables)


class _DamagedParts(Exception):
    def __init__(self, runs):
        self.runs = runs
        super().__init__(", ".join(run.run_id for run in runs))


def _files_read(kind, params: dict) -> dict[str, str]:
    """The files one run reads, ``{path: role}`` (``SweepKind.files``: weights, input_seq)."""
    return {str(path): role for role, path in kind.files(kind.make_config(params)).items()}


def _hash_input(path: str, role: str) -> str:
    try:
        return file_sha256(path)
    except OSError as e:
        raise GradlabError(f"cannot read {INPUT_ROLES.get(role, role)} file {path!r}: {e.strerror or e}") from None


def _all_inputs(expected: dict) -> dict:
    return {path: sha for inputs in expected.values() for path, sha in inputs.items()}


def _prepare_folder(spec: SweepSpec, out: Path, force: bool, n_runs: int, inputs: dict,
                    roles: dict) -> tuple[dict | None, dict]:
    """Create ``out`` for this sweep, or check that it holds this very sweep, begun by this code from these files.

    Returns ``(sweep_code, code)``: the code fingerprint the folder's manifest
    records (this code's, or ``None`` for a folder begun by a gradlab that
    recorded none: resumed unchecked, since which code computed its runs is
    unknown) and this code's. ``inputs`` are the SHA-256 of the files the
    sweep reads, recorded in the manifest; a resume refuses a file whose
    hash changed. A new folder (or, with ``force``, its replacement) appears
    at once with its manifest and an empty ``parts/``.
    """
    manifest_path = out / "manifest.json"
    code = code_fingerprint()
    sweep_code = code
    if out.is_dir() and any(out.iterdir()) and not force:
        if not manifest_path.is_file():          # someone else's files: --force would be refused as well
            raise FolderRefused(out, "not_gradlab")
        try:
            recorded = json.loads(manifest_path.read_text(encoding="utf-8"))
            sweep = recorded["sweep"]
            old = sweep["digest"]
        except (OSError, ValueError, KeyError, TypeError):
            raise FolderRefused(out, "not_sweep") from None
        if old != spec.digest():
            raise FolderRefused(out, "other_sweep")
        old_code = recorded.get("code")
        if old_code is None:
            sweep_code = None
        elif not same_code(old_code, code):
            parts = out / PARTS
            n_done = sum(not p.name.startswith(".") for p in parts.iterdir()) if parts.is_dir() else 0
            raise FolderRefused(out, "other_code", old=old_code, new=code, n_done=n_done,
                                finished=sweep.get("finished") is True)
        old_inputs = sweep.get("inputs")
        for path, sha in (old_inputs.items() if isinstance(old_inputs, dict) else ()):
            if path in inputs and inputs[path] != sha:
                raise FolderRefused(out, "input_changed", file=path, role=INPUT_ROLES.get(roles[path], "input"),
                                    old=str(sha), new=inputs[path])
        with write_errors(out):
            (out / PARTS).mkdir(exist_ok=True)
            for stale in (out / PARTS).glob(".*"):          # temp folders of parts being written when killed
                shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
            for stale in out.glob(".*.tmp"):                 # temp files of tables being merged when killed
                stale.unlink()
        _write_manifest(spec, out, n_runs, finished=False, code=sweep_code, inputs=inputs)
    else:
        check_new_folder(out, force)
        with replaced_folder(out) as tmp:   # swapped in whole: `out` always holds a complete result
            _write_manifest(spec, tmp, n_runs, finished=False, code=code, inputs=inputs)
            (tmp / PARTS).mkdir()
    return sweep_code, code


def _write_manifest(spec: SweepSpec, out: Path, n_runs: int, finished: bool, code: dict | None,
                    inputs: dict) -> None:
    config = {"kind": spec.kind, "grid": spec.grid, "fixed": spec.fixed, "quick": spec.quick}
    sweep = {"source": spec.source, "description": spec.description, "digest": spec.digest(),
             "parameters": spec.names, "swept": spec.swept, "n_runs": n_runs, "finished": finished,
             "key_figures": list(get_kind(spec.kind).key_figures), "inputs": inputs, "text": spec.text}
    write_json(out / "manifest.json", manifest("sweep", config, code=code, sweep=sweep))


def _commit_part(folder: Path, run: Run, tables: dict, meta: dict) -> None:
    """Write one run's tables (rendered, :func:`_sweep_run`) and its ``part.json``; the folder appears whole or not at all."""
    with replaced_folder(folder) as tmp:
        files = write_rendered(tmp, tables)
        write_json(tmp / PART_FILE, {"run_id": run.run_id, "param_hash": run.param_hash, "code": meta["code"],
                                     "inputs": meta["inputs"], "files": files})


def _part_record(folder: Path, run: Run, sweep_code, inputs: dict):
    """A part's ``part.json`` if it belongs to this run of this sweep, else the reason it does not (a str)."""
    if not folder.is_dir():
        return "missing"
    try:
        meta = json.loads((folder / PART_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"no {PART_FILE}"
    except (OSError, ValueError) as e:
        return f"unreadable {PART_FILE} ({e})"
    files = meta.get("files") if isinstance(meta, dict) else None
    if not isinstance(files, dict) or not files:
        return f"{PART_FILE} lists no files"
    if meta.get("param_hash") != run.param_hash:
        return "another run's part"
    if sweep_code is not None and not same_code(meta.get("code"), sweep_code):
        return "computed by other code"
    if meta.get("inputs") != inputs:
        return "computed from other weights or input files"
    for name, record in files.items():
        if not (isinstance(name, str) and "/" not in name and name.endswith(".csv") and not name.startswith(".")
                and isinstance(record, dict) and isinstance(record.get("rows"), int)):
            return f"{PART_FILE} lists {name!r} oddly"
    return meta


def _part_problem(folder: Path, run: Run, sweep_code, inputs: dict) -> str | None:
    """Why the part of ``run`` is not done (``"missing"``, a file changed, …), or None if it is complete."""
    meta = _part_record(folder, run, sweep_code, inputs)
    if isinstance(meta, str):
        return meta
    for name, record in meta["files"].items():
        try:
            if file_sha256(folder / name) != record.get("sha256"):
                return f"{name} is not what was written"
        except OSError:
            return f"{name} is missing"
    return None


def _read_part(folder: Path, run: Run, sweep_code, inputs: dict) -> dict[str, bytes] | None:
    """The CSV bytes of a complete part's tables (each file as recorded: same bytes, same rows), else None."""
    meta = _part_record(folder, run, sweep_code, inputs)
    if isinstance(meta, str):
        return None
    tables = {}
    for name in sorted(meta["files"]):
        record = meta["files"][name]
        try:
            data = (folder / name).read_bytes()
        except OSError:
            return None
        if hashlib.sha256(data).hexdigest() != record.get("sha256") or _csv_rows(data) != record["rows"]:
            return None
        tables[name[:-len(".csv")]] = data
    return tables


def _csv_rows(data: bytes) -> int | None:
    """Rows of a CSV gradlab wrote: its lines less the header (pandas decides if a field holds a newline)."""
    lines = data.count(b"\n")
    if b'"' not in data:                       # no quoted field, so no newline inside one
        return max(lines - 1, 0)
    try:
        return len(_parse_csv(data))
    except ValueError:
        return None


def _parse_csv(data: bytes) -> pd.DataFrame:
    """A part's CSV as a table (empty cells NaN, no other NA strings); an empty file is an empty table."""
    try:
        return pd.read_csv(io.BytesIO(data), keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def _write_table(path: Path, table: pd.DataFrame | bytes) -> None:
    """Write one merged table: CSV text joined from the parts as it is, or a DataFrame rendered."""
    if isinstance(table, bytes):
        atomic_write_text(path, table.decode("utf-8"))
    else:
        write_csv(path, table)


def _concat_csv(pieces: list[bytes]) -> pd.DataFrame | bytes:
    """The parts' rows of one table in order: their text joined when every part has the same header
    (the same bytes as reading and writing them again, at a fraction of the cost), else a DataFrame."""
    headers = {piece.split(b"\n", 1)[0] for piece in pieces}
    if len(headers) == 1:
        return pieces[0].split(b"\n", 1)[0] + b"\n" + b"".join(piece.split(b"\n", 1)[1] for piece in pieces)
    return pd.concat([_parse_csv(piece) for piece in pieces], ignore_index=True)


# ---------------------------------------------------------------- executing runs

def _execute(kind: str, todo: list[Run], jobs: int, client=None, context=None, code=None):
    """Yield (run, (tables, meta)) as runs finish, on this process, a process pool, or a Dask ``client``.

    ``code`` is this process's code fingerprint, recorded for the runs of this
    process and of forked workers (which run its code); spawned and Dask
    workers record their own.
    """
    if client is not None:
        yield from _execute_dask(kind, todo, client)
    elif jobs == 1 or len(todo) <= 1:
        for run in todo:
            yield run, _sweep_run(kind, run, code)
    else:
        context = context or _pool_context()
        inherited = code if context.get_start_method() == "fork" else None
        with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=context,
                                 initializer=_exit_with_parent, initargs=(os.getpid(),)) as pool:
            futures = {pool.submit(_sweep_run, kind, run, inherited): run for run in todo}
            try:
                for future in as_completed(futures):
                    yield futures[future], _result(future, BrokenProcessPool)
            except BaseException:
                _stop_workers(pool)
                raise


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """End the running runs and cancel the others (an interrupted sweep drops their results anyway).

    Left alone, the workers would finish their current and already queued runs
    first. The pool's manager thread is waited for, so that it is not still
    closing its pipes when the interpreter exits (a race in Python 3.11 that
    prints an OSError traceback after an otherwise clean one-line error).
    """
    for process in list((pool._processes or {}).values()):   # Python < 3.14 has no public terminate_workers()
        process.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def _sweep_run(kind: str, run: Run, code: dict | None = None) -> tuple[dict[str, tuple[str, int]], dict]:
    """:func:`run_tables` for one run of a sweep, rendered ``{name: (csv text, rows)}``, and what its part
    records: the code and the files read.

    ``meta`` is ``{"code": {"gradlab", "sha256"}, "inputs": {path: SHA-256}}``:
    ``code`` as given, else this process's :func:`code_fingerprint`; each
    file is hashed before and after the run, so one changed under it is
    refused. An error says which of the sweep's runs failed.
    """
    try:
        sweep_kind = get_kind(kind)
        files = _files_read(sweep_kind, run.params)
        before = {path: _hash_input(path, role) for path, role in files.items()}
        tables = run_tables(kind, run)
        after = {path: _hash_input(path, role) for path, role in files.items()}
    except GradlabError as e:
        params = ", ".join(f"{k} = {v}" for k, v in run.params.items())
        raise GradlabError(f"run {run.run_id} ({params}): {e}") from None
    for path in files:
        if before[path] != after[path]:
            raise GradlabError(f"run {run.run_id}: {INPUT_ROLES.get(files[path], 'input')} file {path!r} changed "
                               "while the run read it; run the same command again once it is no longer written to")
    code = code if code is not None else code_fingerprint()
    # Rendered to CSV text here, in the worker: formatting is most of writing a part, and the sweep's
    # own process would otherwise do it for every worker in turn (a serial third process on two cores).
    rendered = {name: (render_csv(table), len(table)) for name, table in tables.items()}
    return rendered, {"code": {"gradlab": code.get("gradlab"), "sha256": code.get("sha256")}, "inputs": before}


def _result(future, worker_lost):
    """A finished run's tables; a worker that died (killed, out of memory) is a one-line error."""
    try:
        return future.result()
    except worker_lost:
        raise GradlabError("a worker process died (killed, or out of memory?); the finished runs are kept: "
                           "run the same command again to resume, with fewer --jobs if memory is short") from None


def _exit_with_parent(parent: int) -> None:
    """Pool-worker initializer: the worker ends when the sweep's process does.

    A sweep killed outright (SIGKILL, or SIGTERM to it alone) cannot stop its
    workers, and a worker waiting for work would wait forever; this thread sees
    the parent's id change (the worker is re-parented) and exits. SIGTERM ends
    a worker at once, as for any process (the handler it inherits by fork is
    meant for the sweep's main process). A forked worker closes its copy of
    the results folder's lock, so the lock is free once the sweep is gone.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    release_inherited_locks()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, name="gradlab-exit-with-parent", daemon=True).start()


def _pool_context():
    """fork when it is safe (POSIX, parent has one thread): workers start at once.

    Forking a process that runs other threads can copy a held lock and hang,
    so otherwise spawn a clean interpreter per worker (≈ 1–3 s to import).
    """
    if "fork" in get_all_start_methods() and threading.active_count() == 1:
        return get_context("fork")
    return get_context("spawn")


SCHEDULER_TIMEOUT = 10.0   # seconds to reach a Dask scheduler and hear its greeting


def _dask_client(scheduler: str):
    """A connected ``dask.distributed.Client``, or a one-line error naming the address.

    A TCP address is probed first (:func:`_probe_scheduler`): Dask's own
    handshake has no time limit and trusts the first 8 bytes it reads as a
    length, so a silent port hangs it forever and an HTTP server makes it
    allocate exbibytes.
    """
    try:
        from dask.distributed import Client
    except ImportError:
        raise GradlabError("--scheduler needs dask.distributed: pip install \"gradlab[distributed]\"") from None
    _probe_scheduler(scheduler, SCHEDULER_TIMEOUT)
    try:
        return Client(scheduler, timeout=SCHEDULER_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as e:
        raise GradlabError(f"cannot reach the Dask scheduler at {scheduler!r}: {e}") from None
    except Exception as e:   # noqa: BLE001 - whatever a non-scheduler makes the client do, say it in one line
        raise GradlabError(f"{scheduler!r} did not answer like a Dask scheduler ({type(e).__name__}: {e})") from None


# A Dask scheduler greets every connection first with its handshake: 8 bytes giving the length of the
# frames that follow (a few hundred bytes), before it reads anything.
GREETING_MAX = 1 << 20


def _probe_scheduler(scheduler: str, timeout: float) -> None:
    """Refuse, within ``timeout`` seconds, a TCP address where no Dask scheduler greets a new connection."""
    import socket
    import struct

    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(scheduler)
        host, port = parse_host_port(location)
    except (ValueError, TypeError):
        return   # the client names what is wrong with the address
    if scheme != "tcp":
        return   # tls://, inproc://, ...: left to the client
    deadline = time.monotonic() + timeout
    head = b""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            while len(head) < 8:
                sock.settimeout(max(deadline - time.monotonic(), 1e-3))
                chunk = sock.recv(8 - len(head))
                if not chunk:
                    break
                head += chunk
    except (socket.timeout, TimeoutError):
        raise GradlabError(f"no Dask scheduler answered at {scheduler!r} within {timeout:g} s: something accepts "
                           "connections there but does not greet like one (the scheduler's port is usually 8786; "
                           "the dashboard's 8787 is not it)") from None
    except OSError as e:
        raise GradlabError(f"cannot reach the Dask scheduler at {scheduler!r}: {e.strerror or e}") from None
    if len(head) < 8:
        raise GradlabError(f"{scheduler!r} is not a Dask scheduler: it closed the connection "
                           + (f"after {head!r}" if head else "without a word"))
    (length,) = struct.unpack("Q", head)
    if not 0 < length <= GREETING_MAX:
        raise GradlabError(f"{scheduler!r} is not a Dask scheduler: it greets with {head!r}…, not the Dask protocol")


def _execute_dask(kind: str, todo: list[Run], client):
    from dask.distributed import KilledWorker
    from dask.distributed import as_completed as dask_completed

    futures = {client.submit(_sweep_run, kind, run, key=f"gradlab-{run.part}", pure=False): run for run in todo}
    try:
        for future in dask_completed(list(futures)):
            yield futures[future], _result(future, KilledWorker)
    finally:
        client.cancel([f for f in futures if not f.done()])


def write_single_run(kind: str, params: dict, out, force: bool = False, quiet: bool = True) -> dict:
    """Run one configuration into a results folder laid out like a one-run sweep.

    This is ``gradlab train``: ``runs.csv``, ``training.csv``, ``evaluation.csv``
    (and ``jacobians.csv``) plus ``manifest.json``. Returns the tables. The
    folder is claimed (and checked) before anything is computed.
    """
    sweep_kind = get_kind(kind)
    config = make_config(kind, params)
    reads = _files_read(sweep_kind, params)
    with claim_folder(out, reads):
        check_new_folder(out, force)  # fail before computing
        run = Run("r0000", _sha({"kind": kind, "params": params})[:16], params)
        tables = run_tables(kind, run, quiet=quiet)
        row = tables["runs"].iloc[0]
        summary = {k: v for k, v in row.items() if k not in params and k != "run_id"}
        write_results(out, tables, kind, config.to_dict(), force=force, reads=reads, summary=summary)
    return tables


__all__ = ["SweepSpec", "Run", "SweepOutcome", "load_spec", "parse_spec", "plan", "run_tables", "run_sweep",
           "write_single_run", "make_config", "KINDS"]
