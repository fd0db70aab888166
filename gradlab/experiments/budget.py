"""Memory and time budgets: a command that cannot fit, or would run for days, is refused before it starts.

Every command that computes asks here first: ``gradlab run`` and ``check``
(:class:`~gradlab.experiments.config.RunConfig`), ``gradlab train``
(:class:`~gradlab.training.loop.TrainConfig`) and every run of a sweep
(checked when the sweep file is parsed, before anything is written).
:func:`estimate` turns a config's sizes into

* the **memory** its largest arrays take, from the sizes alone (a weights or
  input file's sizes come from its ``.npy`` headers; nothing is allocated):
  weights and the workspace of their spectra (n × n), the trace
  (B · T · (c n + d) floats, c the floats a cell keeps per unit and step),
  inputs and outputs (d, m), the stacks of Jacobian products
  (:data:`~gradlab.analysis.jacobian_norms.STACK_BYTES`) and the norms table
  (B rows per pair: T (T + 1)/2 pairs for ``pairs="all"``);
* the **time** it runs, from a cost model: floating-point operations (n³ per
  eigen- or singular-value decomposition and per Jacobian product, B T n²
  per pass over the sequence) at the rate of a BLAS matrix product, plus the
  Python overhead per step, both measured on this machine once per process
  (:func:`machine_speed`, a few milliseconds).

:func:`check` refuses with one line naming the largest part, its sizes, the
estimate and the limit: the memory available (``MemAvailable`` of
``/proc/meminfo``, or ``--max-memory``), and :data:`MAX_SECONDS` (a sweep:
:data:`MAX_SWEEP_SECONDS` of wall time with its ``--jobs``) unless ``--yes``.
A sweep of more than :data:`MAX_RUNS` runs is refused before its runs are
built. The limits are set with :func:`limits` and apply to :func:`check`
(what the command line calls before it computes) and to the sweeps run
inside (:func:`gradlab.run_sweep` checks every run as the file is parsed)::

    with budget.limits(max_memory="8G", yes=True):
        gradlab.run_sweep("experiments/remedies.toml", "results/remedies", jobs=2)

:func:`gradlab.analyse` itself checks nothing: a library call computes what it is asked.

The estimates are deliberately generous (peaks are summed, pandas' copies
counted): they keep a command from dying half-way, not from being tight.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import os
import re
import time
from dataclasses import dataclass, field

import numpy as np

from ..analysis.jacobian_norms import BLOCK, BUFFERS, GROUP, LANES, STACK_BYTES, SUBSPACE_MIN_WORK
from ..errors import GradlabError
from ..io.files import format_bytes

MAX_SECONDS = 6 * 3600.0    # a command estimated to run longer is refused unless --yes
MAX_SWEEP_SECONDS = 24 * 3600.0   # a sweep estimated to take longer (with its workers) is refused unless --yes
MAX_RUNS = 1_000_000        # a sweep holding more runs is refused (one part folder per run)
STATE_SECONDS = 10.0        # a command estimated to run longer says so before it starts
GATES = {"rnn": 1, "gru": 3, "lstm": 4}            # n × n recurrent blocks per layer
TRACE_FLOATS = {"rnn": 4, "gru": 10, "lstm": 16}   # floats a trace keeps per unit, step, sequence (a, h, φ', W x, …)
STEP_CALLS = {"rnn": 6, "gru": 18, "lstm": 22}     # numpy calls per step of a forward pass (Python overhead)
EIG_FLOPS, SVD_FLOPS = 25, 12                      # × n³: eigenvalues, singular values of an n × n matrix
ROW_SECONDS = 3e-6                                 # building and writing one row of a long table
RECORD_BYTES = 1000                                # one training record (a dict of Python floats) and its row
CAP = 10 ** 15                                     # sizes beyond this are counted as this (refused either way)
# gradlab's own arrays are small and batched: it reaches a fraction of the rate of one 256 × 256 product,
# and each numpy call of a step costs several bare calls. Fitted to run, check, train and Lyapunov runs
# (measured / estimated within 0.5–2 on a loaded 2-core machine, benchmarks of 0.2).
FLOP_EFFICIENCY = 0.12
CALL_COST = 8
COMMAND_SECONDS = 0.1                              # a run's fixed cost (tables, pandas)


# ---------------------------------------------------------------- limits

@dataclass(frozen=True)
class Limits:
    """The limits a command runs under: ``max_memory`` (bytes; None: what is available), ``yes``, ``jobs``."""

    max_memory: int | None = None
    yes: bool = False
    jobs: int = 1


_LIMITS: contextvars.ContextVar[Limits] = contextvars.ContextVar("gradlab_budget_limits", default=Limits())


@contextlib.contextmanager
def limits(max_memory=None, yes: bool = False, jobs: int = 1):
    """Run the block under these limits: ``max_memory`` as bytes or text (``"8G"``), ``yes`` to allow long runs."""
    token = _LIMITS.set(Limits(None if max_memory is None else parse_size(max_memory), bool(yes),
                               max(1, int(jobs or 1))))
    try:
        yield _LIMITS.get()
    finally:
        _LIMITS.reset(token)


def current_limits() -> Limits:
    return _LIMITS.get()


_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgtp]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(value) -> int:
    """Bytes from ``8G``, ``512M``, ``1.5T``, ``2000000000`` (K, M, G, T, P are powers of 1024)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _SIZE.match(str(value))
    if not match or float(match.group(1)) <= 0:
        raise GradlabError(f"max-memory must be a size such as 8G, 512M or 2000000000 (bytes), got {value!r}")
    return int(float(match.group(1)) * 1024 ** " kmgtp".index(match.group(2).lower() or " "))


def memory_available() -> int | None:
    """Bytes of memory available to a new process: ``MemAvailable`` of ``/proc/meminfo`` (None if unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_limit() -> int | None:
    """The memory a command may use: ``--max-memory`` (:func:`limits`), else what is available now."""
    given = _LIMITS.get().max_memory
    return given if given is not None else memory_available()


# ---------------------------------------------------------------- the machine

@dataclass(frozen=True)
class Speed:
    """This machine, measured: ``flops`` per second of a BLAS matrix product, ``call`` seconds per small numpy call."""

    flops: float
    call: float


@functools.lru_cache(maxsize=1)
def machine_speed() -> Speed:
    """Measure this machine once per process (a few milliseconds): a 256 × 256 product and 600 tiny numpy calls.

    The best of five of each is taken (the machine may be busy), then scaled
    by :data:`FLOP_EFFICIENCY` and :data:`CALL_COST` to what gradlab's own
    computations reach.
    """
    A = np.random.default_rng(0).standard_normal((256, 256))
    product, call = math.inf, math.inf
    h, W = np.zeros((1, 4)), 0.5 * np.eye(4)
    for _ in range(5):
        start = time.perf_counter()
        A @ A
        product = min(product, time.perf_counter() - start)
        start = time.perf_counter()
        for _ in range(60):
            h = np.tanh(h @ W)
        call = min(call, (time.perf_counter() - start) / 120)
    return Speed(flops=FLOP_EFFICIENCY * 2 * 256 ** 3 / max(product, 1e-9), call=CALL_COST * call)


# ---------------------------------------------------------------- estimates

@dataclass(frozen=True)
class Estimate:
    """What a command is expected to need.

    ``memory`` maps each part (named with the sizes it grows with) to bytes,
    ``seconds`` each part to seconds; ``what`` and ``sizes`` name the command.
    """

    what: str
    sizes: str
    memory: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return int(sum(self.memory.values()))

    @property
    def total_seconds(self) -> float:
        return float(sum(self.seconds.values()))

    def statement(self) -> str:
        return (f"{self.what}: about {format_seconds(self.total_seconds)} and {format_bytes(self.total_bytes)} "
                f"of memory ({self.sizes})")


def format_seconds(s: float) -> str:
    """12.3 → '12 s', 7200 → '2 h', 1e9 → '31.7 years'."""
    if s < 90:
        return f"{s:.2g} s"
    if s < 5400:
        return f"{s / 60:.3g} min"
    if s < 172800:
        return f"{s / 3600:.3g} h"
    if s < 6.3e7:
        return f"{s / 86400:.3g} days"
    return f"{min(s, 1e300) / 3.156e7:.3g} years"


def _f(x) -> float:
    """A count as a float, however large (sizes are unbounded Python ints)."""
    return float(min(x, 10 ** 300))


class _Parts(dict):
    def add(self, name: str, value) -> None:
        self[name] = self.get(name, 0) + value


def estimate(config, what: str | None = None, gradcheck: bool = False, truncate: int | None = None) -> Estimate:
    """The :class:`Estimate` of one config: a RunConfig (``gradlab run``, or ``gradlab check`` with ``check``),
    a truncation run (``.run`` and ``.truncate``), a TrainConfig, a LyapunovConfig, or any config with its
    own ``estimate(what)`` method."""
    from ..training.loop import TrainConfig
    from .chaos import LyapunovConfig

    if hasattr(config, "estimate"):          # a config that knows its own cost (a kind's, kinds.py)
        return config.estimate(what) if what else config.estimate()
    if isinstance(config, TrainConfig):
        return _train_estimate(config, what or "gradlab train")
    if isinstance(config, LyapunovConfig):
        return _lyapunov_estimate(config, what or "a Lyapunov run")
    if hasattr(config, "run") and hasattr(config, "truncate"):
        return _run_estimate(config.run, what or "a truncation run", mode="truncation", truncate=config.truncate)
    if hasattr(config, "pairs") and hasattr(config, "inputs"):
        return _run_estimate(config, what or ("gradlab check" if gradcheck else "gradlab run"),
                             mode="check" if gradcheck else "run", truncate=truncate)
    if isinstance(getattr(config, "train", None), TrainConfig):        # e.g. a fixed-point run: train, then search
        return _train_estimate(config.train, what or "a run")
    if hasattr(config, "hidden") and hasattr(config, "steps"):          # another kind of run of one network
        return _lyapunov_estimate(config, what or "a run")
    return Estimate(what or "a run", "sizes unknown")


@dataclass(frozen=True)
class Sizes:
    """The effective sizes of a run: a weights file sets n, d (and m), an input file T and B."""

    n: int
    d: int
    m: int
    T: int
    B: int
    tokens: bool

    def __str__(self):
        return f"n = {self.n}, d = {self.d}, m = {self.m}, T = {self.T}, B = {self.B}"


@dataclass(frozen=True)
class _Shape:
    """The shape of an array read already (what a header gives for an .npz member)."""

    shape: tuple


def run_sizes(config) -> Sizes:
    """n, d, m, T, B of a RunConfig, reading only the headers of its weights and input files."""
    from ..cells.weights import torch_weights_file, weights_headers
    from ..io.files import is_torch_file, npy_header

    n, d, m, T, B, tokens = config.hidden, config.inputs, config.outputs, config.steps, config.batch, config.tokens
    if config.weights is not None:
        if is_torch_file(config.weights):      # a PyTorch state dict: small, its shapes need torch.load
            headers = {k: _Shape(v.shape) for k, v in torch_weights_file(config.weights).arrays.items()}
        else:
            headers = weights_headers(config.weights)[0]
        W_hh, W_ih = headers["weight_hh_l0"].shape, headers["weight_ih_l0"].shape
        n = W_hh[-1] if W_hh else 1
        d = W_ih[-1] if len(W_ih) == 2 else 1
        if "fc.weight" in headers and headers["fc.weight"].shape:
            m = headers["fc.weight"].shape[0]
    if config.input_seq is not None:
        header = npy_header(config.input_seq)
        shape, tokens = header.shape, header.dtype.kind in "iu"
        seq = shape if tokens else shape[:-1]        # (T,) / (B, T) of the sequence axes
        if config.layout == "tbd":
            seq = seq[::-1]
        if len(seq) in (1, 2) and all(seq):
            T, B = seq[-1], (seq[0] if len(seq) == 2 else 1)
    return Sizes(n, d, d if m is None else m, T, B, tokens)


def pairs_of(pairs: str, T: int) -> tuple[int, int, int]:
    """The end steps of a ``pairs`` spec as an arithmetic progression: (first, step, count), without listing them."""
    if pairs == "all":
        return 1, 1, T
    if pairs.startswith("stride:"):
        K = int(pairs.split(":", 1)[1])
        count = -(-T // K)
        return T - (count - 1) * K, K, count
    return T, 1, 1


def _progression_sum(first: int, step: int, count: int) -> int:
    return count * first + step * count * (count - 1) // 2


def norms_work(B: int, r: int, pairs: str, T: int) -> tuple[int, int, str, int]:
    """(pairs P, lags grown Λ, method, stack bytes) of :func:`~gradlab.analysis.jacobian_norms.jacobian_norms`.

    Mirrors its chunking: end steps dealt to ``LANES`` lanes, grown in chunks
    whose stacks fit ``STACK_BYTES``; each chunk grows to its last end step.
    """
    first, step, count = pairs_of(pairs, T)
    P = _progression_sum(first, step, count)
    squares = (count * first ** 2 + first * step * count * (count - 1)
               + step ** 2 * (count - 1) * count * (2 * count - 1) // 6)
    mean_lag = (squares + P) / (2 * P)
    method = "subspace" if r * r * mean_lag >= SUBSPACE_MIN_WORK else "exact"
    p = min(BLOCK, r)
    lanes = min(LANES, count)
    chunk = max(1, STACK_BYTES // (lanes * B * r * (r + p) * 8))
    lags, per_lane = 0, 0
    for i in range(lanes):
        f, s, c = first + i * step, LANES * step, -(-(count - i) // LANES)
        q = -(-c // chunk)                          # chunks in this lane; each grows to its last end step
        lags += (q - 1) * (f - s) + s * chunk * (q - 1) * q // 2 + f + (c - 1) * s
        E = min(chunk, c)
        g = 1
        if method == "subspace":
            g = min(max(-(-GROUP // (E * B)), 1), max(1, STACK_BYTES // (BUFFERS * E * B * r * r * 8)))
        per_lane = max(per_lane, BUFFERS * g * E * B * r * r * 8)
    return P, lags, method, lanes * per_lane * 3 // 2       # + the σ_max stage's workspace


def _run_estimate(config, what: str, mode: str, truncate: int | None) -> Estimate:
    """gradlab run (``mode="run"``), gradlab check (``"check"``) or a truncation run."""
    z = run_sizes(config)
    sp = machine_speed()
    n, d, m, T, B = (min(v, CAP) for v in (z.n, z.d, z.m, z.T, z.B))      # named as given, computed capped
    cell, L = config.cell, min(config.layers, CAP)
    G = GATES.get(cell, 4)
    s = L * (2 * n if cell == "lstm" else n)                 # state size r of the Jacobians
    dx = 1 if z.tokens else d
    plain = cell == "rnn" and L == 1                         # spectra of W_hh itself, else of J_T (s × s)
    mem, sec = _Parts(), _Parts()
    sizes = f"{z}" + (f", {L} layers" if L > 1 else "") + (f", pairs {config.pairs}" if mode == "run" else "")

    mem.add(f"the n × n weights and their spectra (n = {z.n})", 8 * (L * G * n * (n + 2) + 6 * n * n
                                                                   + (0 if plain else 6 * s * s + B * s * s)))
    mem.add(f"the input weights and inputs (d = {z.d}, B = {z.B}, T = {z.T})", 8 * (L * G * n * d + B * T * dx))
    mem.add(f"the read-out and outputs (m = {z.m}, B = {z.B}, T = {z.T})", 8 * (m * (n + 1) + 3 * B * T * m))
    trace = 8 * B * (T + 1) * (TRACE_FLOATS.get(cell, 16) * n * L + 3 * s)
    mem.add(f"the recorded trace, B × T × {TRACE_FLOATS.get(cell, 16)}n floats (B = {z.B}, T = {z.T}, n = {z.n})",
            trace * (3 if mode != "run" else 1))
    spectra = (L * G * 2 * (EIG_FLOPS + SVD_FLOPS) + EIG_FLOPS + 2 * SVD_FLOPS) * n ** 3
    if not plain:
        spectra += (EIG_FLOPS + SVD_FLOPS) * s ** 3 + T * B * SVD_FLOPS * s ** 3     # ‖J_t‖ of every step
    sec.add(f"the spectra of the n × n weights (n = {z.n})", _f(spectra) / sp.flops)
    step_flops = 2 * B * L * G * n * (n + d) + 2 * B * m * n
    forward = T * L * STEP_CALLS.get(cell, 22) * sp.call + _f(T * step_flops) / sp.flops
    sec.add(f"the forward pass (T = {z.T}, B = {z.B}, n = {z.n})", forward)
    backward = 2 * T * (10 * sp.call + _f(2 * B * s * s) / sp.flops)        # ‖∂L/∂h_k‖ and λ₁
    sec.add(f"the backward passes (T = {z.T}, B = {z.B}, n = {z.n})", backward)

    if mode == "run":
        extra = 2 if cell == "lstm" else (1 if L > 1 else 0)        # cell_state.csv, layers.csv
        P, lags, method, stacks = norms_work(B, s, config.pairs, T)
        mem.add(f"the stacks of Jacobian products (B = {z.B}, state size {s})", stacks * (1 + min(extra, 1)))
        mem.add(f"the norms table, B × {P} rows (pairs {config.pairs}, T = {z.T}, B = {z.B})", 8 * B * P * 16 * (1 + extra))
        per_pair = (4 if method == "subspace" else 10) * s ** 3 + 8 * BLOCK * s * s
        sec.add(f"the Jacobian-product norms, {P} pairs (pairs {config.pairs}, T = {z.T}, B = {z.B}, n = {z.n})",
                (1 + extra) * (_f(P * B * per_pair) / sp.flops + lags * 30 * sp.call))
        sec.add(f"the tables, B × {P} rows (pairs {config.pairs}, T = {z.T}, B = {z.B})",
                _f(B * (P * (1 + extra) + T + 1) + 2 * n) * ROW_SECONDS)
    else:
        K = T if truncate is None else min(truncate + 1, T)
        sec.add(f"truncated BPTT (T = {z.T}, K = {truncate})" if truncate is not None else "BPTT",
                T * (3 * sp.call + _f(2 * B * s * s) / sp.flops) * (1 + (K if truncate is not None else 1)))
        if mode == "check":
            entries = L * (G * n * (n + d) + 2 * G * n) + m * (n + 1)
            sec.add(f"the finite differences, two forward passes for each of {entries} parameter entries "
                    f"(n = {z.n}, d = {z.d}, m = {z.m}, T = {z.T})", _f(2 * entries) * forward)
    sec.add("the command's fixed cost", COMMAND_SECONDS)
    return Estimate(what, sizes, dict(mem), dict(sec))


def _train_estimate(c, what: str) -> Estimate:
    from ..training.tasks import TASKS

    task = TASKS[c.task]
    sp = machine_speed()
    n, d, m, T, B, L = (min(v, CAP) for v in (c.hidden, task.inputs, task.outputs, c.steps, c.batch, c.layers))
    updates, eval_batch = min(c.updates, CAP), min(c.eval_batch, CAP)
    G = GATES.get(c.cell, 4)
    s = L * (2 * n if c.cell == "lstm" else n)
    floats = TRACE_FLOATS.get(c.cell, 16) * n * L + d + m + 3 * s
    mem, sec = _Parts(), _Parts()
    mem.add(f"the weights, gradients and optimiser state (n = {c.hidden})", 8 * 5 * (L * G * n * (n + d + 2) + m * (n + 1))
            + 8 * 6 * n * n)
    mem.add(f"the training batch's trace and adjoints, B × T × {TRACE_FLOATS.get(c.cell, 16)}n floats "
            f"(batch = {c.batch}, steps = {c.steps}, n = {c.hidden})", 8 * 2 * B * (T + 1) * floats)
    mem.add(f"the held-out batch (eval_batch = {c.eval_batch}, steps = {c.steps}, n = {c.hidden})",
            8 * eval_batch * (T + 1) * floats)
    curves = (updates // c.jacobian_every + 2) if c.jacobian_every else 0
    mem.add(f"the records of {c.updates} updates (updates = {c.updates})", RECORD_BYTES * (updates + curves * T))
    if curves:
        mem.add(f"the Jacobian stacks (jacobian_batch = {c.jacobian_batch}, n = {c.hidden})",
                norms_work(c.jacobian_batch, s, "last", T)[3])
    step_flops = 2 * L * G * n * (n + d) + 2 * m * n
    update = (T * L * 3 * STEP_CALLS.get(c.cell, 22) * sp.call + _f(3 * B * T * step_flops) / sp.flops
              + _f(L * G * (EIG_FLOPS + SVD_FLOPS) * n ** 3) / sp.flops + 300 * sp.call)
    sec.add(f"{c.updates} updates of a batch of {c.batch} sequences of {c.steps} steps (n = {c.hidden})", _f(updates) * update)
    evals = updates // c.eval_every + 2
    sec.add(f"{evals} evaluations of {c.eval_batch} held-out sequences (steps = {c.steps}, n = {c.hidden})",
            _f(evals) * (T * L * STEP_CALLS.get(c.cell, 22) * sp.call + _f(eval_batch * T * step_flops) / sp.flops))
    if curves:
        P, lags, method, _ = norms_work(c.jacobian_batch, s, "last", T)
        sec.add(f"{curves} Jacobian curves (steps = {c.steps}, n = {c.hidden})",
                _f(curves) * (_f(P * c.jacobian_batch * 10 * s ** 3) / sp.flops + lags * 30 * sp.call))
    sec.add("the command's fixed cost", COMMAND_SECONDS)
    sizes = f"n = {c.hidden}, T = {c.steps}, batch = {c.batch}, eval_batch = {c.eval_batch}, updates = {c.updates}"
    return Estimate(what, sizes, dict(mem), dict(sec))


def _lyapunov_estimate(c, what: str) -> Estimate:
    """One network of n units run for steps + burn steps on ``batch`` sequences, k tangent vectors each."""
    sp = machine_speed()
    steps = c.steps + getattr(c, "burn", 0)
    batch, k = getattr(c, "batch", 1), getattr(c, "k", None) or 1
    n, T, B, k = (min(v, CAP) for v in (c.hidden, steps, batch, k))
    mem = {f"the n × n network and its trace (n = {c.hidden}, steps = {steps}, batch = {batch})":
           8 * (4 * n * n + 5 * B * T * n * min(k, n))}
    sec = {f"{steps} steps of an n = {c.hidden} network": 2 * T * (8 * sp.call + _f(2 * B * n * n * k) / sp.flops)}
    return Estimate(what, f"n = {c.hidden}, steps = {steps}, batch = {batch}", mem, sec)


# ---------------------------------------------------------------- checks

def check_memory(est: Estimate) -> None:
    """Refuse an estimate beyond the memory limit, naming its largest part."""
    limit = memory_limit()
    if limit is None or est.total_bytes <= limit:
        return
    part = max(est.memory, key=est.memory.get)
    source = "--max-memory" if _LIMITS.get().max_memory is not None else "MemAvailable in /proc/meminfo"
    raise GradlabError(f"{est.what} needs about {format_bytes(est.total_bytes)} of memory, "
                       f"{format_bytes(est.memory[part])} of it for {part}, but {format_bytes(limit)} is available "
                       f"({source}): use smaller sizes, or --max-memory SIZE if more will be free")


def check_time(est: Estimate) -> None:
    """Refuse an estimate beyond :data:`MAX_SECONDS` unless ``yes``, naming its largest part."""
    if _LIMITS.get().yes or est.total_seconds <= MAX_SECONDS:
        return
    part = max(est.seconds, key=est.seconds.get)
    raise GradlabError(f"{est.what} would take about {format_seconds(est.total_seconds)} on this machine, "
                       f"mostly {part}, more than the {format_seconds(MAX_SECONDS)} limit: use smaller sizes, "
                       "or pass --yes to run it anyway")


def check(config, what: str | None = None, gradcheck: bool = False, truncate: int | None = None) -> Estimate:
    """:func:`estimate` a config and refuse it beyond the memory or time limit; return the estimate."""
    est = estimate(config, what, gradcheck=gradcheck, truncate=truncate)
    check_memory(est)
    check_time(est)
    return est


def statement(est: Estimate) -> str | None:
    """What a long command says before it starts (None for a short one)."""
    return est.statement() if est.total_seconds >= STATE_SECONDS else None


# ---------------------------------------------------------------- sweeps

def check_run_count(n_runs: int, source: str = "the sweep") -> None:
    """Refuse a sweep of more than :data:`MAX_RUNS` runs, counted without building them."""
    if n_runs > MAX_RUNS:
        raise GradlabError(f"the grid holds {n_runs:,} runs, more than the {MAX_RUNS:,} a sweep can hold (one "
                           "folder per run): sweep fewer values, or split it into several sweeps")


@dataclass
class SweepBudget:
    """The budget of a sweep, run by run: each run's memory is checked as it is added, the total time at the end."""

    n_runs: int
    seconds: float = 0.0
    largest: Estimate | None = None

    def add(self, run_id: str, params: dict, config) -> None:
        shown = ", ".join(f"{k} = {v!r}" for k, v in params.items())
        est = estimate(config, f"run {run_id} ({shown})")
        check_memory(est)
        self.seconds += est.total_seconds
        if self.largest is None or est.total_bytes > self.largest.total_bytes:
            self.largest = est

    def finish(self) -> None:
        jobs, yes = _LIMITS.get().jobs, _LIMITS.get().yes
        if yes or self.seconds / jobs <= MAX_SWEEP_SECONDS:
            return
        parallel = f" ({format_seconds(self.seconds / jobs)} with {jobs} workers)" if jobs > 1 else ""
        raise GradlabError(f"the sweep's {self.n_runs:,} runs would take about {format_seconds(self.seconds)} on "
                           f"this machine{parallel}, more than the {format_seconds(MAX_SWEEP_SECONDS)} limit: sweep fewer "
                           "or smaller runs, or pass --yes to run it anyway")

    def statement(self) -> str | None:
        jobs = _LIMITS.get().jobs
        if self.seconds / jobs < STATE_SECONDS:
            return None
        return (f"sweep: {self.n_runs:,} runs, about {format_seconds(self.seconds / jobs)} with {jobs} worker"
                f"{'s' * (jobs > 1)}" + (f", up to {format_bytes(self.largest.total_bytes)} of memory per run"
                                         if self.largest else ""))


_SWEEPS: dict = {}


def _sweep_key(spec) -> tuple:
    return spec.source, spec.digest(), spec.quick


def remember_sweep(spec, sweep_budget: SweepBudget) -> None:
    """Keep a parsed sweep's budget, so the command can state it without estimating every run again."""
    _SWEEPS.clear()
    _SWEEPS[_sweep_key(spec)] = sweep_budget


def sweep_statement(spec) -> str | None:
    """What a long sweep says before it starts: its runs and estimated time (None for a short one)."""
    found = _SWEEPS.get(_sweep_key(spec))
    return None if found is None else found.statement()
