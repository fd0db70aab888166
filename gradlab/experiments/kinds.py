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
               (:class:`SpectrumConfig`)
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
from ..analysis.lyapunov import LyapunovSpectrum, lyapunov_spectrum
from ..analysis.spectrum import recurrent_spectral_scale, step_bound
from ..analysis.tables import norms_by_lag
from ..cells import make_cell
from ..cells.activations import ACTIVATIONS
from ..errors import GradlabError, check_choice, check_positive_int, check_positive_number, config_from_dict
from ..training.loop import TrainConfig, train
from ..training.tasks import TASKS, get_task
from . import chaos
from .config import LAYOUTS, RunConfig
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
    config: type | None = None

    def parameter_names(self) -> set[str]:
        """The parameters a run of this kind takes: its config's fields (a sweep file's keys)."""
        if self.config is None:
            return set()
        named = getattr(self.config, "parameter_names", None)
        return set(named()) if named else {f.name for f in dataclasses.fields(self.config)}


# ---------------------------------------------------------------- run

def _run_files(config) -> dict:
    """The files a run reads: its ``weights`` and ``input_seq`` (a RunConfig, SpectrumConfig or FixedPointConfig)."""
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

    @staticmethod
    def parameter_names() -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(RunConfig)) + ("truncate",)


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

SPECTRUM_DRIVES = ("autonomous", "gaussian", "file")
# Parameters a file sets, so a sweep point may not give them beside it (they would not be used).
SPECTRUM_SET_BY_FILE = {"weights": ("hidden", "g"), "input_seq": ("steps", "batch")}


@dataclass(frozen=True)
class SpectrumConfig:
    """One Lyapunov spectrum: the network, the trajectory its Jacobians are taken along, how many exponents.

    The defaults of ``gradlab lyapunov --spectrum`` (:mod:`gradlab.experiments.chaos` describes the networks).

    Attributes
    ----------
    activation : {"tanh", "sigmoid", "relu", "linear"} or None
        φ of a vanilla RNN; None means tanh, except with a vanilla-RNN
        ``weights`` file, which must then record its own.
    g : float
        Gain of a random network: W_hh entries N(0, g²/n) (vanilla RNN), or
        the spectral radius of every n × n recurrent gate block (LSTM, GRU).
    seed : int
        Seeds the random network and h_0 (or the Gaussian inputs).
    hidden : int
        n of a random network (a weights file sets it).
    steps : int
        Recorded steps T (an input file sets them: its length less ``burn``).
    warmup : int
        Recorded products that only align the vectors, < T.
    burn : int
        Unrecorded steps first (the trajectory's transient).
    leading : int or None
        k, the number of exponents (the leading k), 1 ≤ k ≤ state size; None: the full spectrum.
        (Not ``k``: that is a column of gradlab's norms tables, and a parameter may not take a column's name.)
    window : int
        Steps per finite-time window of the local exponents (0: none).
    local_leading : int
        The local exponents are kept for the leading min(local_leading, k) (0: none).
    batch : int
        Sequences B: trajectories from their own initial states (or inputs) through one network.
    cell : {"rnn", "lstm", "gru", …}
        A key of :data:`gradlab.cells.CELLS`.
    layers : int
        Stacked layers (a random vanilla RNN has one: W_hh = g · W₀).
    weights : str or None
        A trained network's ``.npz`` state dict (PyTorch names).
    drive : {"autonomous", "gaussian", "file"}
        Inputs of a weights file's network: x_t = 0, x_t ~ N(0, I), or ``input_seq``.
    input_seq : str or None
        ``.npy`` inputs (``drive = "file"``), as for ``gradlab run``.
    layout : {"btd", "tbd"}
        Axis order of a 3-D ``input_seq``.
    """

    activation: str | None = None
    g: float = 1.0
    seed: int = 0
    hidden: int = 200
    steps: int = 1000
    warmup: int = 100
    burn: int = 200
    leading: int | None = None
    window: int = 50
    local_leading: int = 10
    batch: int = 1
    cell: str = "rnn"
    layers: int = 1
    weights: str | None = None
    drive: str = "autonomous"
    input_seq: str | None = None
    layout: str = "btd"

    def __post_init__(self):
        if self.activation is None and not (self.weights is not None and self.cell == "rnn"):
            object.__setattr__(self, "activation", "tanh")
        if self.activation is not None:
            check_choice(self.activation, ACTIVATIONS, "activation")
        check_positive_number(self.g, "g")
        for name in ("hidden", "steps", "batch", "layers"):
            check_positive_int(getattr(self, name), name)
        for name in ("seed", "warmup", "burn", "window", "local_leading"):
            check_positive_int(getattr(self, name), name, minimum=0)
        if self.leading is not None:
            check_positive_int(self.leading, "leading (k, the number of exponents)")
        for name in ("weights", "input_seq"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise GradlabError(f"{name} must be a file name (a string), got {value!r}")
        check_choice(self.drive, SPECTRUM_DRIVES, "drive")
        check_choice(self.layout, LAYOUTS, "layout")
        if self.drive == "file" and self.input_seq is None:
            raise GradlabError("drive = 'file' needs the inputs: input_seq = \"x.npy\" (--input-seq)")
        if self.input_seq is not None and self.drive != "file":
            raise GradlabError(f"input_seq {self.input_seq!r} is only read with drive = 'file', not {self.drive!r}")
        if self.weights is None:
            if self.drive != "autonomous":
                raise GradlabError(f"drive = {self.drive!r} needs a trained network (weights = \"w.npz\", --weights): "
                                   "a random network runs autonomously (drive = 'autonomous')")
            if self.cell == "rnn" and self.layers != 1:
                raise GradlabError(f"a random vanilla RNN is one W_hh = g·W₀ (layers = 1), got layers = {self.layers}; "
                                   "a stacked network's spectrum needs its weights file")
        make_cell(self.cell, self.activation or "tanh", self.layers)   # an unknown cell, a φ it does not take
        if self.input_seq is None and self.warmup >= self.steps:
            raise GradlabError(f"warmup must be smaller than steps = {self.steps}, got {self.warmup}")

    @property
    def random_rnn(self) -> bool:
        """A random vanilla RNN W_hh = g · W₀ (the networks of the λ₁ scan)."""
        return self.weights is None and self.cell == "rnn"

    def estimate(self, what: str = "a Lyapunov spectrum"):
        """Memory and time of the measurement (:class:`gradlab.experiments.budget.Estimate`), from the sizes
        alone (a file's from its headers): per recorded step one (k × s) · J_t product, 2 k s² flops, and a
        QR of an s × k block, 4 s k² flops; the trace and the QR's vectors."""
        from . import budget

        sp = budget.machine_speed()
        cap = budget.CAP
        if self.weights is not None:
            z = budget.run_sizes(RunConfig(weights=self.weights, cell=self.cell, layers=self.layers,
                                           input_seq=self.input_seq, layout=self.layout, batch=self.batch,
                                           steps=self.burn + self.steps))
            n, d, B, T = z.n, z.d, z.B, (z.T if self.input_seq is not None else self.burn + self.steps)
        else:
            n, d, B, T = self.hidden, 1, self.batch, self.burn + self.steps
        n, B, T = (min(v, cap) for v in (n, B, T))
        s = self.layers * (2 * n if self.cell == "lstm" else n)
        k = s if self.leading is None else min(self.leading, s)
        floats = budget.TRACE_FLOATS.get(self.cell, 16) * n * self.layers + d
        calls = budget.STEP_CALLS.get(self.cell, 22) * self.layers
        mem = {f"the trace, B × T × {budget.TRACE_FLOATS.get(self.cell, 16)}n floats (B = {B}, T = {T}, n = {n})":
               8 * B * (T + 1) * floats,
               f"the weights and the QR's k × s vectors (k = {k}, s = {s})": 8 * (4 * n * n + 4 * B * k * s)}
        sec = {f"the forward pass (T = {T}, n = {n})": T * calls * sp.call + budget._f(2 * B * T * n * (n + d)) / sp.flops,
               f"{T - self.burn} products (k × s) · J_t and QRs (k = {k}, s = {s})":
                   (T - self.burn) * (40 * sp.call + budget._f(B * (2 * k * s * s + 4 * s * k * k)) / sp.flops),
               "the command's fixed cost": budget.COMMAND_SECONDS}
        return budget.Estimate(what, f"s = {s}, k = {k}, steps + burn = {T}, B = {B}", mem, sec)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "SpectrumConfig":
        """Build from a sweep point; unknown keys, and keys a file sets (``hidden`` and ``g`` beside
        ``weights``, ``steps`` and ``batch`` beside ``input_seq``), are an error."""
        for source, names in SPECTRUM_SET_BY_FILE.items():
            given = [name for name in names if name in values]
            if values.get(source) is not None and given:
                what = "weights file" if source == "weights" else "input file"
                raise GradlabError(f"{given[0]} = {values[given[0]]!r} is not used: the {what} {values[source]!r} "
                                   f"sets {' and '.join(names)}; leave {given[0]} out")
        return config_from_dict(cls, values, "lyapunov_spectrum")


def _spectrum_network(config: SpectrumConfig):
    """(cell, params, x (B, burn + T, d), s_0 or None) of a weights file's or a random gated network."""
    c = config
    if c.weights is not None:
        run = RunConfig(cell=c.cell, activation=c.activation, layers=c.layers, weights=c.weights, seed=c.seed,
                        input_seq=c.input_seq, layout=c.layout, batch=c.batch,
                        steps=c.burn + c.steps if c.input_seq is None else 1)
    else:
        run = RunConfig(cell=c.cell, activation=c.activation, layers=c.layers, hidden=c.hidden, inputs=1,
                        init="gaussian", radius=c.g, seed=c.seed, steps=1, batch=1)
    model = build_model(run)   # reads and checks the files (its errors name them)
    cell, params = model.cell, model.params
    if c.drive == "autonomous":
        x = np.zeros((c.batch, c.burn + c.steps, params.d))
    else:
        x = model.x
    if c.drive == "file" and x.shape[1] <= c.burn + c.warmup:
        raise GradlabError(f"input file {c.input_seq!r} has T = {x.shape[1]} steps: burn ({c.burn}) and warmup "
                           f"({c.warmup}) must leave at least one counted step")
    s0 = None
    if c.weights is None:   # a random gated network: s_0 ~ N(0, 1) from a stream of its own (the 4th of the seed)
        s = cell.forward(params, x[:1, :1]).state_size
        s0 = np.random.default_rng(np.random.SeedSequence(c.seed).spawn(4)[3]).standard_normal((c.batch, s))
    return cell, params, x, s0


def spectrum_state_size(config: SpectrumConfig) -> int:
    """The state size s of the network of ``config`` (its files read), and k checked against it."""
    if config.random_rnn:
        s = config.hidden
    else:
        cell, params, x, s0 = _spectrum_network(config)
        s = cell.forward(params, x[:, :1], None if s0 is None else s0).state_size
    if config.leading is not None and config.leading > s:
        raise GradlabError(f"leading (k, the number of exponents) must be at most the state size {s}, "
                           f"got {config.leading}")
    return s


def spectrum_trace(config: SpectrumConfig):
    """The recorded trace (``steps`` steps after ``burn``) of the network of ``config``.

    The networks and drives are described in :mod:`gradlab.experiments.chaos`.
    """
    c = config
    if c.random_rnn:
        rng = np.random.default_rng(c.seed)   # W_hh = g · W₀, W₀ and h_0 from the seed alone: as measure_exponent
        return chaos.autonomous_trace(c.hidden, c.g, c.activation, c.steps, c.burn, rng, c.batch)
    cell, params, x, s0 = _spectrum_network(c)
    with np.errstate(over="ignore", invalid="ignore"):
        if c.burn:
            s0 = cell.forward(params, x[:, :c.burn], s0).states()[:, -1]
        trace = cell.forward(params, x[:, c.burn:], s0)
    if not np.all(np.isfinite(trace.states())):
        raise GradlabError("the trajectory overflows float64 (non-finite states): use fewer steps, a smaller "
                           "gain or input, or tanh/sigmoid")
    return trace


def measure_spectrum(config: SpectrumConfig) -> LyapunovSpectrum:
    """The leading k = ``leading`` (default: all) Lyapunov exponents of the trajectory of ``config``, nats/step.

    Examples
    --------
    >>> sp = measure_spectrum(SpectrumConfig(g=2.0, hidden=32, steps=300, warmup=50, burn=50))
    >>> sp.exponents.shape, bool(sp.largest[0] > 0), bool(0 < sp.kaplan_yorke[0] < 32)
    ((1, 32), True, True)
    """
    return lyapunov_spectrum(spectrum_trace(config), config.leading, config.warmup, config.window)


def spectrum_theory(points: list[dict]) -> dict[str, pd.DataFrame]:
    """``transitions`` (mean-field g_c) of the activations of a scan's random vanilla RNNs; none without them."""
    configs = [SpectrumConfig.from_dict(p) for p in points]
    activations = list(dict.fromkeys(c.activation for c in configs if c.random_rnn))
    return {"transitions": chaos.transitions(activations)} if activations else {}


def _compute_spectrum(config: SpectrumConfig, quiet: bool):
    spectrum = measure_spectrum(config)
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
                     key_figures=("growth_rate", "bound_rate", "asymptotic_rate"), config=RunConfig),
    "train": SweepKind("train", TrainConfig.from_dict, _compute_train,
                       key_figures=("final_metric", "final_loss", "n_clipped", "n_skipped"), config=TrainConfig),
    "truncation": SweepKind("truncation", TruncationConfig.from_dict, _compute_truncation,
                            lambda config: _run_files(config.run), lambda config: _check_run(config.run),
                            key_figures=("rel_error",), config=TruncationConfig),
    "lyapunov": SweepKind("lyapunov", _lyapunov_config, _compute_lyapunov, finish=chaos.theory_tables,
                          key_figures=("lyapunov",), config=chaos.LyapunovConfig),
    "lyapunov_spectrum": SweepKind("lyapunov_spectrum", SpectrumConfig.from_dict, _compute_spectrum,
                                   _run_files, spectrum_state_size, finish=spectrum_theory,
                                   key_figures=("largest", "kaplan_yorke", "ks_entropy"), config=SpectrumConfig),
    "fixed_points": SweepKind("fixed_points", FixedPointConfig.from_dict, _compute_fixed_points, _run_files,
                              _check_fixed_points, key_figures=("n_stable", "n_saddle", "n_slow", "final_metric"),
                              config=FixedPointConfig),
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
    lines.append(f"{int(row['n_points'])} point{'s' * (int(row['n_points']) != 1)} under x = 0 ({int(row['n_fixed'])} fixed, {int(row['n_slow'])} slow): "
                 f"{int(row['n_stable'])} stable, {_count(row['n_saddle'], 'saddle')}, "
                 f"{_count(row['n_repellers'], 'repeller')}; {sum(starts.values())} starts: "
                 + ", ".join(f"{v} {STATUS_WORDS.get(k, k)}" for k, v in starts.items()))
    return lines
