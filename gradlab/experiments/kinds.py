"""The kinds of run a sweep can hold: one registry, :data:`KINDS`.

A kind turns one point of a sweep (a plain parameter dict) into a validated
config and computes it into a summary row and tables; the sweep runner
(:mod:`gradlab.experiments.sweep`) does the rest (grid, seeds, parallel
execution, resume, provenance) the same way for every kind. Adding a kind is
one :class:`SweepKind` entry here.

=============  =====================================================  ============================================
kind           one run                                                tables (besides ``runs.csv``)
=============  =====================================================  ============================================
``run``        :func:`gradlab.analyse` (RunConfig)                    ``norms`` (per lag), ``spectrum``
``train``      :func:`gradlab.train` (TrainConfig)                    ``training``, ``evaluation``, ``jacobians``
``truncation`` truncated vs exact BPTT at one K (RunConfig + K)       ``truncation``
``lyapunov``   λ₁ of a random autonomous network (activation, g, …)   ``lyapunov``; at the end ``mean_field``,
                                                                      ``transitions`` (theory)
``lyapunov_    the full Lyapunov spectrum (or the leading k), QR      ``lyapunov_spectrum``, ``lyapunov_summary``,
spectrum``     every step, of a random or trained network             ``lyapunov_local``; at the end ``transitions``
               (:class:`~gradlab.experiments.chaos.SpectrumConfig`)
``fixed_       fixed and slow points of a network trained in place    ``fixed_points``, ``fixed_point_eigenvalues``,
points``       (3-bit flip-flop) or read from a weights file          ``fixed_point_starts``, ``trajectories``
               (:class:`FixedPointConfig`)
=============  =====================================================  ============================================
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from ..analysis.fixed_points import fixed_point_analysis
from ..analysis.gradcheck import truncation_errors
from ..analysis.spectrum import recurrent_spectral_scale, step_bound
from ..analysis.tables import norms_by_lag
from ..cells import make_cell
from ..errors import GradlabError, check_choice, check_positive_int, check_positive_number, config_from_dict
from ..training.loop import TrainConfig, train
from ..training.tasks import TASKS, get_task
from . import chaos
from .config import RunConfig
from .runner import analyse, build_model, finite_forward, input_file


@dataclass(frozen=True)
class SweepKind:
    """One kind of sweep run.

    Attributes
    ----------
    name : str
    make_config : callable
        ``params -> config``: validates one point (a one-line GradlabError
        naming a bad key or value).
    compute : callable
        ``(config, quiet) -> (summary, tables)``: the run's summary figures
        (one row of ``runs.csv``) and its long tables.
    files : callable
        ``config -> {name: path}``: the files the run reads (weights, inputs).
    check : callable
        ``config -> None``: reads those files once before a sweep starts
        (a run reads them only when it starts), so a bad file fails first.
    finish : callable or None
        ``(points) -> tables`` computed once from all the sweep's parameter
        points when it is merged (theory curves).
    key_figures : tuple of str
        The ``runs.csv`` columns ``gradlab inspect`` summarises per group.
    """

    name: str
    make_config: Callable[[dict], object]
    compute: Callable[[object, bool], tuple[dict, dict]]
    files: Callable[[object], dict] = lambda config: {}
    check: Callable[[object], None] = lambda config: None
    finish: Callable[[list], dict] | None = None
    key_figures: tuple[str, ...] = field(default=())


# ---------------------------------------------------------------- run

def _run_files(config: RunConfig) -> dict:
    return {k: v for k, v in (("weights", config.weights), ("input_seq", config.input_seq)) if v is not None}


def _check_run(config: RunConfig) -> None:
    if _run_files(config):
        build_model(config)


def _compute_run(config: RunConfig, quiet: bool):
    result = analyse(config, workers=1)      # a sweep parallelises over runs: one thread each
    summary = {("loss_value" if k == "loss" else k): v for k, v in result.summary.items()}  # `loss` is a parameter
    return summary, {"norms": norms_by_lag(result.tables["norms"]), "spectrum": result.tables["spectrum"]}


# ---------------------------------------------------------------- truncation

@dataclass(frozen=True)
class TruncationConfig:
    """A run of a truncation sweep: the network of a :class:`RunConfig` and K of ``bptt_truncate``."""

    run: RunConfig
    truncate: int

    @classmethod
    def from_dict(cls, params: dict) -> "TruncationConfig":
        rest = dict(params)
        if "truncate" not in rest:
            raise GradlabError("a truncation sweep needs the parameter 'truncate' (K of bptt_truncate)")
        K = rest.pop("truncate")
        check_positive_int(K, "truncate", minimum=0)
        return cls(RunConfig.from_dict(rest), K)

    def to_dict(self) -> dict:
        return {**self.run.to_dict(), "truncate": self.truncate}


def _compute_truncation(config: TruncationConfig, quiet: bool):
    model = build_model(config.run)
    trace = finite_forward(model)[0]
    c = model.config
    errors = truncation_errors(model.params, model.x, model.y, [config.truncate], loss=c.loss_name,
                               loss_steps=c.loss_steps, cell=model.cell)
    rho, smax = recurrent_spectral_scale(model.cell, model.params)
    summary = {"rho": rho, "sigma_max": smax, "gamma_h": step_bound(model.cell, model.params, trace).gamma_h,
               "rel_error": float(errors.loc[errors["parameter"] == "all", "rel_error"].iloc[0])}
    return summary, {"truncation": errors.drop(columns="truncate")}


# ---------------------------------------------------------------- train

def _compute_train(config: TrainConfig, quiet: bool):
    result = train(config, quiet=quiet)
    return result.summary, result.tables


# ---------------------------------------------------------------- lyapunov

def _lyapunov_config(params: dict) -> chaos.LyapunovConfig:
    return config_from_dict(chaos.LyapunovConfig, params, "lyapunov")


def _compute_lyapunov(config: chaos.LyapunovConfig, quiet: bool):
    lam = chaos.measure_exponent(config)
    return {"lyapunov": lam}, {"lyapunov": pd.DataFrame({"n": [config.hidden], "lyapunov": [lam]})}


# ---------------------------------------------------------------- lyapunov_spectrum

def _spectrum_files(config: chaos.SpectrumConfig) -> dict:
    return {k: v for k, v in (("weights", config.weights), ("input_seq", config.input_seq)) if v is not None}


def _compute_spectrum(config: chaos.SpectrumConfig, quiet: bool):
    spectrum = chaos.measure_spectrum(config)
    return chaos.spectrum_summary(spectrum), chaos.spectrum_tables(spectrum, config.local_leading)


# ---------------------------------------------------------------- fixed_points

# The network a fixed-point run trains when it is given no weights file: a 16-unit tanh RNN on the 3-bit
# flip-flop, which these settings solve (8 stable fixed points under x = 0 on seeds 0–4). Any other
# TrainConfig field may be given too.
FIXED_POINT_TRAINING = {"task": "flip_flop", "steps": 40, "hidden": 16, "updates": 500, "batch": 32, "lr": 0.01,
                        "momentum": 0.9, "clipping": "norm", "threshold": 1.0, "eval_every": 100, "eval_batch": 128}
RECORD_DRIVES = ("task", "gaussian", "file")
NETWORK_KEYS = ("cell", "activation", "layers", "task", "seed")   # what a weights file's run takes of a TrainConfig


@dataclass(frozen=True)
class FixedPointConfig:
    """A run of kind ``fixed_points``: a network, the trajectories the starts come from, and the search.

    Attributes
    ----------
    train : TrainConfig or None
        The network is trained in place (defaults :data:`FIXED_POINT_TRAINING`), unless ``weights``.
    weights : str or None
        A trained network's ``.npz`` state dict instead (with ``cell``, ``activation``, ``layers``).
    cell, activation, layers, task, seed
        The network's cell; the task whose inputs record the trajectories; the seed (training, and,
        through a stream of its own, the recorded inputs and the starts).
    record : {"task", "gaussian", "file"}
        The inputs of the recorded trajectories: a batch of ``task``, x_t ~ N(0, I), or ``input_seq``.
    input_seq : str or None
        ``.npy`` inputs (B, T, d) or (T, d) (``record = "file"``; it sets the batch and steps).
    record_batch, record_steps : int
        Trajectories recorded, and their length T (states s_0 … s_T each).
    starts : int
        Initial guesses drawn from the recorded states (each with N(0, noise²) per coordinate).
    noise : float
    fixed_tol, slow_tol, unique_tol, max_iter, newton_steps
        As :func:`gradlab.analysis.fixed_points.find_fixed_points` takes them.

    The search holds the input at x = 0 (no pulse: the flip-flop's memory states).
    """

    train: TrainConfig | None = None
    weights: str | None = None
    cell: str = "rnn"
    activation: str | None = None
    layers: int = 1
    task: str = "flip_flop"
    seed: int = 0
    record: str = "task"
    input_seq: str | None = None
    record_batch: int = 64
    record_steps: int = 100
    starts: int = 256
    noise: float = 0.05
    fixed_tol: float = 1e-12
    slow_tol: float = 1e-6
    unique_tol: float = 1e-3
    max_iter: int = 2000
    newton_steps: int = 5

    def __post_init__(self):
        if (self.train is None) == (self.weights is None):
            raise GradlabError("a fixed-point run needs a network: train one (train) or read one (weights), not both")
        for name in ("weights", "input_seq"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise GradlabError(f"{name} must be a file name (a string), got {value!r}")
        check_choice(self.task, TASKS, "task")
        check_choice(self.record, RECORD_DRIVES, "record")
        if (self.record == "file") != (self.input_seq is not None):
            raise GradlabError("record = 'file' and input_seq go together: give input_seq = \"x.npy\" "
                               "(--input-seq) to record the trajectories on its inputs")
        for name in ("record_batch", "record_steps", "starts", "max_iter", "layers"):
            check_positive_int(getattr(self, name), name)
        check_positive_int(self.seed, "seed", minimum=0)
        check_positive_int(self.newton_steps, "newton_steps", minimum=0)
        if isinstance(self.noise, bool) or not isinstance(self.noise, (int, float)) or not math.isfinite(self.noise) \
                or self.noise < 0:
            raise GradlabError(f"noise must be a number ≥ 0, got {self.noise!r}")
        for name in ("fixed_tol", "slow_tol", "unique_tol"):
            check_positive_number(getattr(self, name), name)
        if self.slow_tol < self.fixed_tol:
            raise GradlabError(f"slow_tol must be at least fixed_tol = {self.fixed_tol!r}, got {self.slow_tol!r}")
        make_cell(self.cell, self.activation or "tanh", self.layers)

    @classmethod
    def from_dict(cls, params: dict) -> "FixedPointConfig":
        """Split a sweep point into the search's keys and the network's (a TrainConfig's, or a weights file's)."""
        analysis = {f.name for f in dataclasses.fields(cls)} - {"train", "weights", *NETWORK_KEYS}
        known = analysis | {"weights"} | {f.name for f in dataclasses.fields(TrainConfig)}
        for key in params:
            if key not in known:
                raise GradlabError(f"unknown fixed_points parameter {key!r}; known: {', '.join(sorted(known))}")
        ours = {k: v for k, v in params.items() if k in analysis}
        rest = {k: v for k, v in params.items() if k not in analysis}
        if ours.get("input_seq") is not None:
            for name in ("record_batch", "record_steps"):
                if name in ours:
                    raise GradlabError(f"{name} = {ours[name]!r} is not used: the input file {ours['input_seq']!r} "
                                       "sets the recorded batch and steps; leave it out")
        weights = rest.pop("weights", None)
        if weights is not None:
            for key in rest:
                if key not in NETWORK_KEYS:
                    raise GradlabError(f"{key} = {rest[key]!r} is not used: the weights file {weights!r} is the "
                                       f"network (it is not trained); leave {key} out")
            return cls(weights=weights, **rest, **ours)
        config = TrainConfig.from_dict({**FIXED_POINT_TRAINING, **rest})
        network = {k: getattr(config, k) for k in NETWORK_KEYS}
        return cls(train=config, **network, **ours)

    def estimate(self, what: str = "a fixed-point run"):
        """Memory and time (:class:`gradlab.experiments.budget.Estimate`): the training (as ``gradlab train``)
        or the weights file's sizes, then per L-BFGS iteration one step and one vjp of every start (≈ 6 s² flops
        each), the L-BFGS history (40 vectors of all starts), a dense J and its eigenvalues per start (≤ 50 s³)."""
        from . import budget

        sp = budget.machine_speed()
        if self.train is not None:
            base = budget.estimate(self.train, what)
            mem, sec = dict(base.memory), dict(base.seconds)
            n, d, cell, L = self.train.hidden, get_task(self.task).inputs, self.train.cell, self.train.layers
        else:
            z = budget.run_sizes(RunConfig(weights=self.weights, cell=self.cell, layers=self.layers))
            mem, sec = {}, {"the command's fixed cost": budget.COMMAND_SECONDS}
            n, d, cell, L = z.n, z.d, self.cell, self.layers
        n, N, iters = (min(v, budget.CAP) for v in (n, self.starts, self.max_iter))
        s = L * (2 * n if cell == "lstm" else n)
        B, T = self.record_batch, self.record_steps
        if self.input_seq is not None:
            z = budget.run_sizes(RunConfig(input_seq=self.input_seq))
            B, T = z.B, z.T
        mem[f"the recorded states and the L-BFGS history (record_batch = {B}, record_steps = {T}, "
            f"starts = {self.starts}, s = {s})"] = 8 * (B * (T + 1) * (s + d) * 4 + 45 * N * s)
        mem[f"a dense Jacobian per start (starts = {self.starts}, s = {s})"] = 8 * 3 * N * s * s
        step = 2 * budget.STEP_CALLS.get(cell, 22) * L * sp.call + budget._f(6 * N * s * (s + d)) / sp.flops
        sec[f"{self.max_iter} L-BFGS iterations of {self.starts} starts (s = {s})"] = iters * (step + 60 * sp.call)
        sec[f"the Newton steps and the eigenvalues at each point (starts = {self.starts}, s = {s})"] = \
            budget._f((self.newton_steps * 2 + 25) * N * s ** 3) / sp.flops
        return budget.Estimate(what, f"s = {s}, starts = {self.starts}, max_iter = {self.max_iter}", mem, sec)

    def to_dict(self) -> dict:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "train"}
        if self.train is not None:
            values.pop("weights")
            return {**self.train.to_dict(), **values}
        return values


def _fixed_point_files(config: FixedPointConfig) -> dict:
    return {k: v for k, v in (("weights", config.weights), ("input_seq", config.input_seq)) if v is not None}


def _weights_network(config: FixedPointConfig):
    """The cell and parameters of a fixed-point run's weights file (its errors name the file)."""
    model = build_model(RunConfig(weights=config.weights, cell=config.cell, activation=config.activation,
                                  layers=config.layers, seed=config.seed, steps=1, batch=1))
    return model.cell, model.params


def _record_inputs(config: FixedPointConfig, d: int, rng: np.random.Generator) -> np.ndarray:
    """The inputs (B, T, d) of the trajectories the starts are drawn from (``record``)."""
    if config.record == "file":
        x = input_file(RunConfig(input_seq=config.input_seq), d)
        if np.issubdtype(x.dtype, np.integer):
            raise GradlabError(f"input file {config.input_seq!r} holds token ids; the fixed points are searched "
                               "under a constant input vector x = 0, so record on vectors (B, T, d)")
        return x
    task = get_task(config.task)
    if config.record == "gaussian":
        return rng.standard_normal((config.record_batch, config.record_steps, d))
    if task.inputs != d:
        raise GradlabError(f"the network takes inputs of size d = {d}, but task {config.task!r} gives {task.inputs}: "
                           "record its trajectories on an input file (input_seq, --input-seq) or on Gaussian "
                           "inputs (record = 'gaussian')")
    return task.batch(config.record_batch, config.record_steps, rng).x


def _check_fixed_points(config: FixedPointConfig) -> None:
    """Read a weights file and an input file once before a sweep starts (training waits for the run)."""
    d = get_task(config.task).inputs if config.weights is None else _weights_network(config)[1].d
    if config.weights is not None or config.record == "file":
        _record_inputs(config, d, np.random.default_rng(0))


def _compute_fixed_points(config: FixedPointConfig, quiet: bool):
    if config.train is not None:
        result = train(config.train, quiet=quiet)
        t = config.train
        cell, params, summary = make_cell(t.cell, t.activation, t.layers), result.params, dict(result.summary)
    else:
        (cell, params), summary = _weights_network(config), {}
    # the recorded inputs and the starts: a stream of the seed's own (training uses the first three)
    rng = np.random.default_rng(np.random.SeedSequence(config.seed).spawn(4)[3])
    x_record = _record_inputs(config, params.d, rng)
    fp, trajectories = fixed_point_analysis(
        cell, params, x_record, np.zeros(params.d), config.starts, rng, config.noise, fixed_tol=config.fixed_tol,
        slow_tol=config.slow_tol, unique_tol=config.unique_tol, max_iter=config.max_iter,
        newton_steps=config.newton_steps)
    points = fp.fixed_points
    explained = np.full(3, np.nan)
    explained[:len(fp.pca.explained)] = fp.pca.explained
    summary.update({
        "n_points": len(points), "n_fixed": int((points["kind"] == "fixed").sum()),
        "n_slow": int((points["kind"] == "slow").sum()),
        "n_stable": int((points["stability"] == "stable").sum()), "n_saddle": int((points["stability"] == "saddle").sum()),
        "n_repellers": int((points["stability"] == "unstable").sum()),
        **{f"starts_{status}": count for status, count in fp.counts.items()},
        "iterations": fp.iterations, **{f"pc{i + 1}_explained": float(v) for i, v in enumerate(explained)}})
    return summary, {"fixed_points": points, "fixed_point_eigenvalues": fp.eigenvalues,
                     "fixed_point_starts": fp.starts, "trajectories": trajectories}


KINDS: dict[str, SweepKind] = {
    "run": SweepKind("run", RunConfig.from_dict, _compute_run, _run_files, _check_run,
                     key_figures=("growth_rate", "bound_rate", "asymptotic_rate")),
    "train": SweepKind("train", TrainConfig.from_dict, _compute_train,
                       key_figures=("final_metric", "final_loss", "n_clipped", "n_skipped")),
    "truncation": SweepKind("truncation", TruncationConfig.from_dict, _compute_truncation,
                            lambda config: _run_files(config.run), lambda config: _check_run(config.run),
                            key_figures=("rel_error",)),
    "lyapunov": SweepKind("lyapunov", _lyapunov_config, _compute_lyapunov, finish=chaos.theory_tables,
                          key_figures=("lyapunov",)),
    "lyapunov_spectrum": SweepKind("lyapunov_spectrum", chaos.SpectrumConfig.from_dict, _compute_spectrum,
                                   _spectrum_files, chaos.spectrum_state_size, finish=chaos.spectrum_theory,
                                   key_figures=("largest", "kaplan_yorke", "ks_entropy")),
    "fixed_points": SweepKind("fixed_points", FixedPointConfig.from_dict, _compute_fixed_points, _fixed_point_files,
                              _check_fixed_points, key_figures=("n_stable", "n_saddle", "n_slow", "final_metric")),
}


def get_kind(name: str) -> SweepKind:
    """The kind registered as ``name`` (one-line error naming the choices)."""
    if name not in KINDS:
        raise GradlabError(f"unknown kind {name!r}; choose one of {', '.join(KINDS)}")
    return KINDS[name]


STATUS_WORDS = {"not_converged": "not converged", "non_finite": "non-finite"}


def _count(n, noun: str) -> str:
    return f"{int(n)} {noun}{'s' * (int(n) != 1)}"


def fixed_point_report(row) -> list[str]:
    """What one fixed-point run found, in words (a row of its ``runs.csv``)."""
    lines = []
    if "final_metric" in row and row["final_metric"] == row["final_metric"]:
        solved = f"solved at update {row['updates_to_solve']:.0f}" if row["solved"] else "not solved"
        lines.append(f"trained {row['updates_done']:.0f} updates: held-out {row['metric_name']} "
                     f"{row['final_metric']:.4g} (chance {row['chance_metric']:.4g}), {solved}")
    starts = {s: int(row[f"starts_{s}"]) for s in ("fixed", "slow", "not_converged", "non_finite")}
    lines.append(f"{int(row['n_points'])} points under x = 0 ({int(row['n_fixed'])} fixed, {int(row['n_slow'])} slow): "
                 f"{int(row['n_stable'])} stable, {_count(row['n_saddle'], 'saddle')}, {_count(row['n_repellers'], 'repeller')}; "
                 f"{sum(starts.values())} starts: " + ", ".join(f"{v} {STATUS_WORDS.get(k, k)}" for k, v in starts.items()))
    return lines
