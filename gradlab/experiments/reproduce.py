"""One command from nothing to every figure: ``gradlab reproduce [--quick]``.

1. Every sweep file ``experiments/NAME.toml`` runs through the sweep runner
   (:func:`gradlab.sweep.run_sweep`) into ``RESULTS/NAME/``; a sweep that
   was interrupted resumes where it stopped.
2. The figures that need every pair (t, k) of single networks — the sweeps
   keep per-lag aggregates only — get ``gradlab run`` folders from
   :data:`RUN_SETS` (``RESULTS/heatmap/<name>/``, ``RESULTS/transient/<name>/``),
   made only when a figure reads them.
3. Every figure of :data:`gradlab.plots.FIGURES` is drawn from the CSVs of
   its results folder into ``OUT/<figure>.pdf`` and ``.png``.

``quick`` applies each sweep file's ``[quick]`` table (small n, T, few
seeds) so the whole reproduction takes a few minutes on two cores; the
figures have the same layout, with noisier curves.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .config import RunConfig
from ..errors import GradlabError, check_positive_int
from ..plots.figures import FIGURES, draw_figure
from ..plots.style import parse_formats
from ..io.results import FolderHint, FolderRefused, code_label
from .runner import analyse, write_run

# Single networks whose every pair ‖∂h_t/∂h_k‖ is kept (gradlab run --pairs all).
# ReLU: the norm vanishes at ρ = 1, is flat near ρ ≈ 1.5 (half the units are
# off, so ρ must be larger than 1 to keep the norm) and explodes at ρ = 2.
# Linear, Gaussian vs orthogonal at the same ρ: ∂h_t/∂h_k = W^(t−k) exactly,
# so the transient growth of ‖W^k‖ above ρ^k is seen without a nonlinearity.
RUN_SETS: dict[str, dict[str, RunConfig]] = {
    "heatmap": {
        f"relu-r{r:g}": RunConfig(hidden=32, steps=60, batch=4, activation="relu", radius=r, pairs="all", seed=0)
        for r in (1.0, 1.5, 2.0)
    },
    "transient": {
        init: RunConfig(hidden=64, steps=80, batch=1, activation="linear", init=init, radius=0.9, pairs="last",
                        seed=0)
        for init in ("gaussian", "orthogonal")
    },
}


# reproduce has no --force (it replaces only its own stale results) and its results go under --results.
RESULTS_HINT = FolderHint(force=None, elsewhere="choose another --results")


@dataclass(frozen=True)
class Reproduction:
    """What :func:`reproduce` made: results folders, figure files, seconds per stage."""

    results: dict[str, Path]
    figures: list[Path]
    seconds: dict[str, float]


def experiment_files(experiments) -> list[Path]:
    """The sweep files ``experiments/*.toml``, sorted by name."""
    experiments = Path(experiments)
    files = sorted(experiments.glob("*.toml")) if experiments.is_dir() else []
    if not files:
        raise GradlabError(f"no sweep files (*.toml) in {str(experiments)!r}; run from the gradlab repository "
                           "or pass --experiments")
    return files


# What a sweep folder refused by run_sweep holds, when reproduce (which owns its folders) replaces it.
STALE = {"other_sweep": "results of an earlier version of the sweep file",
         "other_code": "a sweep begun by other gradlab code"}


def run_run_set(configs: dict[str, RunConfig], out: Path) -> Path:
    """Write one ``gradlab run`` folder per config into ``out/<name>/`` (replacing old ones)."""
    for name, config in configs.items():
        write_run(analyse(config), out / name, force=True)
    return out


def reproduce(results="results", out="figures", quick: bool = False, experiments="experiments", jobs: int = 2,
              formats=("pdf", "png"), figures=None, log=print) -> Reproduction:
    """Run every shipped experiment and draw every figure.

    Parameters
    ----------
    results : path
        Parent of the results folders; ``quick`` uses ``results/quick/``,
        the full run ``results/full/`` so the two never mix.
    out : path
        Folder the figures are written into.
    quick : bool
        Use each sweep file's ``[quick]`` sizes.
    experiments : path
        Folder of sweep files (``*.toml``).
    jobs : int
        Worker processes for the sweeps.
    formats : str or sequence
        Figure formats, e.g. ``"pdf,png"``.
    figures : sequence of str, optional
        Only these figures (keys of :data:`gradlab.plots.FIGURES`) and the
        results they read; default: every sweep file and every figure.
    log : callable
        Receives one line per stage.

    Returns
    -------
    Reproduction
    """
    check_positive_int(jobs, "jobs")
    formats = parse_formats(formats)
    names = list(FIGURES) if figures is None else list(figures)
    for name in names:
        if name not in FIGURES:
            raise GradlabError(f"unknown figure {name!r}; choose one of {', '.join(FIGURES)}")
    needed = {FIGURES[name].results for name in names}
    files = experiment_files(experiments)
    if figures is not None:  # only the sweeps the chosen figures read
        files = [f for f in files if f.stem in needed]
    from .sweep import load_spec

    specs = {f: load_spec(f, quick) for f in files}  # a bad sweep file fails before anything runs
    root = Path(results) / ("quick" if quick else "full")
    try:
        folders, seconds = _make_results(specs, root, needed, quick, jobs, log)
    except FolderRefused as e:   # the refusal names the options of `gradlab reproduce`, not --force/--out
        raise e.with_hint(RESULTS_HINT) from None
    written = []
    for name in names:
        spec = FIGURES[name]
        if spec.results not in folders:
            raise GradlabError(f"figure {name!r} reads results {spec.results!r}, which no experiment file or run "
                               "set makes")
        start = time.perf_counter()
        paths = draw_figure(name, folders[spec.results], out, formats)
        seconds[f"figure {name}"] = time.perf_counter() - start
        written += paths
        log(f"figure {name}: {', '.join(str(p) for p in paths)}")
    return Reproduction(folders, written, seconds)


def _make_results(specs: dict, root: Path, needed: set, quick: bool, jobs: int, log) -> tuple[dict, dict]:
    """Run the sweeps, run sets and producers into ``root/NAME``; return (folders, seconds)."""
    from .sweep import run_sweep

    folders, seconds = {}, {}
    for f, spec in specs.items():
        start = time.perf_counter()
        quiet = not sys.stderr.isatty()
        try:
            outcome = run_sweep(spec, root / f.stem, jobs=jobs, quiet=quiet)
        except FolderRefused as refused:   # stale results are replaced; anything else is refused
            if refused.reason not in STALE:
                raise
            old = f" ({code_label(refused.detail['old'])})" if refused.reason == "other_code" else ""
            log(f"sweep {f.name}: {root / f.stem} holds {STALE[refused.reason]}{old}: running it again")
            outcome = run_sweep(spec, root / f.stem, jobs=jobs, force=True, quiet=quiet)
        folders[f.stem] = outcome.out
        seconds[f.stem] = time.perf_counter() - start
        log(f"sweep {f.name}: {outcome.n_runs} runs ({outcome.n_already_done} already done) → {outcome.out}  "
            f"[{seconds[f.stem]:.0f} s]")
    for name, configs in RUN_SETS.items():
        if name not in needed:  # made only for the figures that read it
            continue
        start = time.perf_counter()
        folders[name] = run_run_set(configs, root / name)
        seconds[name] = time.perf_counter() - start
        log(f"{name}: → {folders[name]}  [{seconds[name]:.0f} s]")
    return folders, seconds
