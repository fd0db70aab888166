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
folder ``parts/<run_id>-<hash>/`` holding its rows; the tables of the sweep
(``runs.csv``, ``norms.csv``, …) are built from the parts, in run order,
when all runs are done. Killed and started again with the same command, a
sweep computes only the runs without a part; a changed sweep file is refused
unless ``force``, and so is a sweep begun by other gradlab code: the
manifest records the :func:`~gradlab.results.code_fingerprint` of the code
that began the sweep, and a resume with a different one would mix rows of
two versions (a folder begun by a gradlab that recorded none resumes
unchecked and keeps ``code: null``).
"""
from __future__ import annotations

import hashlib
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

from ..errors import GradlabError, check_positive_int
from .kinds import KINDS, get_kind
from ..io.results import (FolderRefused, check_new_folder, code_fingerprint, manifest, replaced_folder, same_code,
                          write_csv, write_json, write_results, write_tables)

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


def load_spec(path, quick: bool = False) -> SweepSpec:
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
    try:
        spec = _spec_from_dict(raw, text, source)
        _check_points(spec)
        quick_spec = spec.with_quick()   # checks the [quick] tables whether or not they are used now
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
        for v in values:
            if not isinstance(v, SCALAR_TYPES):
                raise GradlabError(f"{name}.{key} must list numbers, strings or booleans, got {v!r}")
        if len({json.dumps(v) for v in values}) < len(values):
            raise GradlabError(f"{name}.{key} lists a value twice: {values!r}")
    return dict(table)


def _fixed_table(table, name: str) -> dict:
    if not isinstance(table, dict):
        raise GradlabError(f"[{name}] must be a table of values, got {table!r}")
    for key, value in table.items():
        if not isinstance(value, SCALAR_TYPES):
            raise GradlabError(f"{name}.{key} must be a number, string or boolean, got {value!r}")
    return dict(table)


def _check_points(spec: SweepSpec) -> None:
    """Build the config of every run and read the files it names, so a bad value fails before anything runs."""
    kind = get_kind(spec.kind)
    for params in spec.points():
        kind.check(kind.make_config(params))


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

@dataclass(frozen=True)
class SweepOutcome:
    """What :func:`run_sweep` did: the folder, how many runs, how many were already done."""

    out: Path
    n_runs: int
    n_already_done: int
    n_computed: int
    tables: tuple[str, ...]


def run_sweep(spec, out, jobs: int = 1, scheduler: str | None = None, force: bool = False,
              quiet: bool = True, quick: bool = False) -> SweepOutcome:
    """Run a sweep into the results folder ``out``; resume it if it was started before.

    Parameters
    ----------
    spec : path or SweepSpec
        The sweep file (``experiments/NAME.toml``) or a parsed spec.
    out : path
        Results folder. A folder holding the same sweep is resumed; a
        different sweep (or another gradlab result), or the same sweep begun
        by other gradlab code (another :func:`~gradlab.results.code_fingerprint`),
        is refused unless ``force``; a non-empty folder gradlab did not write
        (no ``manifest.json``) is always refused.
    jobs : int
        Local worker processes (BLAS pinned to one thread each).
    scheduler : str, optional
        Address of a Dask distributed scheduler (``tcp://host:8786``); needs
        ``pip install "gradlab[distributed]"``. Overrides ``jobs``.
    force : bool
        Delete the gradlab results in ``out`` and start again.
    quiet : bool
        No progress bar (also off when stderr is not a terminal).
    quick : bool
        Apply the file's ``[quick]`` replacements (small sizes, for smoke runs).

    Returns
    -------
    SweepOutcome

    Examples
    --------
    >>> import gradlab as gl
    >>> gl.run_sweep("experiments/vanishing.toml", "results/vanishing-quick", jobs=2, quick=True)  # doctest: +SKIP
    """
    spec = load_spec(spec, quick) if not isinstance(spec, SweepSpec) else (spec.with_quick() if quick else spec)
    check_positive_int(jobs, "jobs")
    out = Path(out)
    runs = plan(spec)
    client = _dask_client(scheduler) if scheduler is not None else None   # unreachable: fail before writing
    try:
        code = _prepare_folder(spec, out, force, len(runs))
    except BaseException:
        if client is not None:
            client.close()
        raise
    parts = out / PARTS
    done = {p.name for p in parts.iterdir() if not p.name.startswith(".")}
    todo = [r for r in runs if r.part not in done]

    context = _pool_context()    # before tqdm starts its monitor thread
    bar = tqdm(total=len(runs), initial=len(runs) - len(todo), unit="run", desc=Path(spec.source).stem,
               disable=quiet or not sys.stderr.isatty())
    # closing(): stopped by an error or a signal, the runner cancels the runs not yet started at once
    # (left to the garbage collector, a process pool would first work through all of them).
    try:
        with closing(_execute(spec.kind, todo, jobs, client, context)) as finished:
            for run, tables in finished:
                _commit_part(parts / run.part, tables)
                bar.update()
    finally:
        bar.close()
    names = _merge_parts(out, runs, get_kind(spec.kind))
    _write_manifest(spec, out, len(runs), finished=True, code=code)
    return SweepOutcome(out, len(runs), len(runs) - len(todo), len(todo), names)


def _prepare_folder(spec: SweepSpec, out: Path, force: bool, n_runs: int) -> dict | None:
    """Create ``out`` for this sweep, or check that it already holds this very sweep, begun by this code.

    Returns the code fingerprint the folder's manifest records: this code's,
    or ``None`` for a folder begun by a gradlab that recorded none (resumed
    unchecked, since which code computed its runs is unknown).
    """
    manifest_path = out / "manifest.json"
    code = code_fingerprint()
    if out.is_dir() and any(out.iterdir()) and not force:
        if not manifest_path.is_file():          # someone else's files: --force would be refused as well
            raise FolderRefused(out, "not_gradlab")
        try:
            recorded = json.loads(manifest_path.read_text())
            sweep = recorded["sweep"]
            old = sweep["digest"]
        except (OSError, ValueError, KeyError, TypeError):
            raise FolderRefused(out, "not_sweep") from None
        if old != spec.digest():
            raise FolderRefused(out, "other_sweep")
        old_code = recorded.get("code")
        if old_code is None:
            code = None
        elif not same_code(old_code, code):
            parts = out / PARTS
            n_done = sum(not p.name.startswith(".") for p in parts.iterdir()) if parts.is_dir() else 0
            raise FolderRefused(out, "other_code", old=old_code, new=code, n_done=n_done,
                                finished=sweep.get("finished") is True)
    else:
        check_new_folder(out, force)
        if out.is_dir():
            shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    _write_manifest(spec, out, n_runs, finished=False, code=code)   # first: a folder gradlab made always has one
    (out / PARTS).mkdir(exist_ok=True)
    for stale in (out / PARTS).glob(".*"):          # temp folders of parts being written when killed
        shutil.rmtree(stale, ignore_errors=True)
    return code


def _write_manifest(spec: SweepSpec, out: Path, n_runs: int, finished: bool, code: dict | None) -> None:
    config = {"kind": spec.kind, "grid": spec.grid, "fixed": spec.fixed, "quick": spec.quick}
    sweep = {"source": spec.source, "description": spec.description, "digest": spec.digest(),
             "parameters": spec.names, "swept": spec.swept, "n_runs": n_runs, "finished": finished,
             "key_figures": list(get_kind(spec.kind).key_figures), "text": spec.text}
    write_json(out / "manifest.json", manifest("sweep", config, code=code, sweep=sweep))


def _commit_part(folder: Path, tables: dict) -> None:
    """Write one run's tables as a folder that appears whole or not at all."""
    with replaced_folder(folder) as tmp:
        write_tables(tmp, tables)


def _merge_parts(out: Path, runs: list[Run], kind) -> tuple[str, ...]:
    """Concatenate every part's tables in run order into ``out/<table>.csv`` (atomic per file).

    A kind with a ``finish`` step (the Lyapunov scan's theory curves) adds the
    tables it computes from the sweep's parameter points.
    """
    pieces: dict[str, list[pd.DataFrame]] = {}
    for run in runs:
        for path in sorted((out / PARTS / run.part).glob("*.csv")):
            pieces.setdefault(path.stem, []).append(pd.read_csv(path, keep_default_na=False, na_values=[""]))
    tables = {name: pd.concat(frames, ignore_index=True) for name, frames in pieces.items()}
    if kind.finish is not None:
        tables.update(kind.finish([{**run.params, "seed": run.seed} for run in runs]))
    write_tables(out, tables)
    return tuple(tables)


# ---------------------------------------------------------------- executing runs

def _execute(kind: str, todo: list[Run], jobs: int, client=None, context=None):
    """Yield (run, tables) as runs finish, on this process, a process pool, or a Dask ``client``."""
    if client is not None:
        yield from _execute_dask(kind, todo, client)
    elif jobs == 1 or len(todo) <= 1:
        for run in todo:
            yield run, _sweep_run(kind, run)
    else:
        with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=context or _pool_context(),
                                 initializer=_exit_with_parent, initargs=(os.getpid(),)) as pool:
            futures = {pool.submit(_sweep_run, kind, run): run for run in todo}
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


def _sweep_run(kind: str, run: Run) -> dict[str, pd.DataFrame]:
    """:func:`run_tables` for one run of a sweep; an error says which of its runs failed."""
    try:
        return run_tables(kind, run)
    except GradlabError as e:
        params = ", ".join(f"{k} = {v}" for k, v in run.params.items())
        raise GradlabError(f"run {run.run_id} ({params}): {e}") from None


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
    meant for the sweep's main process).
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

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


def _dask_client(scheduler: str):
    """A connected ``dask.distributed.Client``, or a one-line error naming the address."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise GradlabError("--scheduler needs dask.distributed: pip install \"gradlab[distributed]\"") from None
    try:
        return Client(scheduler, timeout=10)
    except (OSError, TimeoutError, ValueError) as e:
        raise GradlabError(f"cannot reach the Dask scheduler at {scheduler!r}: {e}") from None


def _execute_dask(kind: str, todo: list[Run], client):
    from dask.distributed import KilledWorker
    from dask.distributed import as_completed as dask_completed

    with client:
        futures = {client.submit(_sweep_run, kind, run, key=f"gradlab-{run.part}", pure=False): run
                   for run in todo}
        for future in dask_completed(list(futures)):
            yield futures[future], _result(future, KilledWorker)


def write_single_run(kind: str, params: dict, out, force: bool = False, quiet: bool = True) -> dict:
    """Run one configuration into a results folder laid out like a one-run sweep.

    This is ``gradlab train``: ``runs.csv``, ``training.csv``, ``evaluation.csv``
    (and ``jacobians.csv``) plus ``manifest.json``. Returns the tables.
    """
    config = make_config(kind, params)
    check_new_folder(out, force)  # fail before computing
    run = Run("r0000", _sha({"kind": kind, "params": params})[:16], params)
    tables = run_tables(kind, run, quiet=quiet)
    row = tables["runs"].iloc[0]
    summary = {k: v for k, v in row.items() if k not in params and k != "run_id"}
    write_results(out, tables, kind, config.to_dict(), force=force, summary=summary)
    return tables


__all__ = ["SweepSpec", "Run", "SweepOutcome", "load_spec", "parse_spec", "plan", "run_tables", "run_sweep",
           "write_single_run", "make_config", "KINDS"]
