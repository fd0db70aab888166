"""Long-memory tasks, generated from an explicit ``numpy.random.Generator``.

Each task draws a batch of B sequences of length T and says how it is scored:

==============  ========  =====  =====  ======  =====  ==============  ==============
task            inputs    d      m      loss    steps  metric          chance metric
==============  ========  =====  =====  ======  =====  ==============  ==============
adding          real      2      1      mse     last   mse             1/6
temporal_order  tokens    6      4      xent    last   error_rate      0.75
copy            tokens    K + 2  K + 2  xent    all    error_rate      1 − 1/K
reber           tokens    7      7      xent    all    error_rate      (see below)
flip_flop       real      3      3      mse     all    mse             1
==============  ========  =====  =====  ======  =====  ==============  ==============

* **adding** (Hochreiter & Schmidhuber 1997; Le et al. 2015): channel 0 holds
  values U[0, 1), channel 1 marks one step in the first half and one in the
  second; the target is the sum of the two marked values. The sum has mean 1
  and variance 2/12, so always predicting 1 scores MSE 1/6.
* **temporal_order** (Pascanu, Mikolov & Bengio 2013, §4.1): a sequence of
  distractor symbols {c, d, e, f} with symbol A or B placed once in
  [T/10, 2T/10) and once in [4T/10, 5T/10); classify the order (AA, AB, BA,
  BB) at the last step. Chance is 75 % error.
* **copy** (Arjovsky, Shah & Bengio 2016): L data symbols from an alphabet of
  K, then blanks, a delimiter at step T − L, and the L symbols must be
  reproduced over the last L steps. The metric is the error rate over those
  L recalled symbols (1 − 1/K by guessing).
* **reber**: next-symbol prediction on a stream of embedded Reber strings
  (Hochreiter & Schmidhuber 1997, §5.1), the tutorial's language-model setting
  (loss on every step). The symbol after the inner string must repeat the
  second symbol of the outer string, many steps back. A prediction counts as
  an error when its arg-max is not a legal next symbol (their criterion).
* **flip_flop** (3-bit flip-flop; Sussillo & Barak 2013): each of the 3
  input channels carries sparse pulses x_t ∈ {−1, 0, +1} (a pulse with
  probability p = 0.05 per channel and step, its sign a fair coin; every
  channel pulses at the first step, so the memory is always set), and each
  output must hold the sign of the last pulse on its channel,
  y_{t,c} = x_{τ,c} with τ the last step ≤ t where x_{τ,c} ≠ 0. MSE on every
  step. Targets are ±1 with mean 0 whatever the inputs, so the best
  input-blind prediction (0) scores MSE E[y²] = 1 exactly. A solved network
  has 2³ = 8 stable fixed points under x = 0, one per memory state
  (:mod:`gradlab.analysis.fixed_points`).

Sequence length T is a parameter of every task. The ``mse`` metric is the
mean of (o − y)² over the outputs at the loss steps (the last step, or all).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import GradlabError, check_choice, check_positive_int


@dataclass(frozen=True)
class TaskBatch:
    """One batch of a task.

    Attributes
    ----------
    x : (B, T, d) float or (B, T) int token ids
    y : targets in the shape :func:`gradlab.losses.check_targets` expects for
        the task's loss and loss steps
    legal : (B, T, m) bool or None
        For ``reber``: which next symbols the grammar allows at each step.
    """

    x: np.ndarray
    y: np.ndarray
    legal: np.ndarray | None = None


@dataclass(frozen=True)
class Task:
    """A task: its sizes, loss, metric and sampler.

    Attributes
    ----------
    name : str
    inputs, outputs : int
        Input size d (vocabulary size for tokens) and output size m.
    loss : {"mse", "xent"}
    loss_steps : {"all", "last"}
    metric_name : {"mse", "error_rate"}
    chance : float
        The metric of a model that knows nothing about the inputs.
    min_steps : int
        Shortest sequence the task can be posed on.
    sample : callable
        ``(B, T, rng) -> TaskBatch``.
    error_tolerance : float
        For a task scored by MSE: an output counts as an error when its
        squared error exceeds this (adding: 0.04, as in Hochreiter &
        Schmidhuber 1997 and Pascanu et al.'s code); see :meth:`error_rate`.
    """

    name: str
    inputs: int
    outputs: int
    loss: str
    loss_steps: str
    metric_name: str
    chance: float
    min_steps: int
    sample: Callable[[int, int, np.random.Generator], TaskBatch]
    error_tolerance: float = 0.04

    def batch(self, B: int, T: int, rng: np.random.Generator) -> TaskBatch:
        """A validated batch of B sequences of length T."""
        check_positive_int(B, "batch")
        check_positive_int(T, "steps")
        if T < self.min_steps:
            raise GradlabError(f"task {self.name!r} needs steps ≥ {self.min_steps}, got {T}")
        return self.sample(B, T, rng)

    def error_rate(self, batch: TaskBatch, o: np.ndarray) -> float:
        """Fraction of wrong answers, the quantity a task is *solved* by (below 1 %).

        Classification tasks: the error-rate metric itself. MSE tasks: the
        fraction of scored outputs (sequences, or sequence-steps when every
        step is scored) whose squared error, summed over the outputs,
        exceeds :attr:`error_tolerance`.
        """
        if self.metric_name == "error_rate":
            return self.metric(batch, o)
        err = (o - batch.y) ** 2 if self.loss_steps == "all" else (o[:, -1] - batch.y) ** 2
        return float(np.mean(err.sum(axis=-1) > self.error_tolerance))

    def metric(self, batch: TaskBatch, o: np.ndarray) -> float:
        """Score outputs ``o`` (B, S, m) at the loss steps against ``batch``."""
        if self.metric_name == "mse":
            if self.loss_steps == "all":                    # y (B, T, m): every step scored
                return float(np.mean((o - batch.y) ** 2))
            return float(np.mean((o[:, -1] - batch.y) ** 2))
        pred = np.argmax(o, axis=-1)                        # (B, S)
        if batch.legal is not None:                         # reber: any legal symbol is right
            ok = np.take_along_axis(batch.legal, pred[..., None], axis=-1)[..., 0]
            return float(1.0 - ok.mean())
        y = batch.y if batch.y.ndim == 2 else batch.y[:, None]
        scored = y != BLANK if self.name == "copy" else np.ones(y.shape, bool)
        return float(np.mean(pred[scored] != y[scored]))


# ---------------------------------------------------------------- adding

def sample_adding(B: int, T: int, rng: np.random.Generator) -> TaskBatch:
    """Adding problem: x (B, T, 2) = (value, marker), y (B, 1) = sum of the two marked values."""
    values = rng.random((B, T))
    first = rng.integers(0, T // 2, size=B)
    second = rng.integers(T // 2, T, size=B)
    marks = np.zeros((B, T))
    rows = np.arange(B)
    marks[rows, first] = 1.0
    marks[rows, second] = 1.0
    y = (values[rows, first] + values[rows, second])[:, None]
    return TaskBatch(np.stack([values, marks], axis=-1), y)


# ---------------------------------------------------------------- temporal order

TEMPORAL_SYMBOLS = ("A", "B", "c", "d", "e", "f")   # token ids 0 … 5
TEMPORAL_CLASSES = ("AA", "AB", "BA", "BB")


def sample_temporal_order(B: int, T: int, rng: np.random.Generator) -> TaskBatch:
    """Temporal order: x (B, T) token ids, y (B,) class of the (first, second) relevant pair."""
    x = rng.integers(2, 6, size=(B, T))                 # distractors c, d, e, f
    first = rng.integers(T // 10, max(2 * T // 10, T // 10 + 1), size=B)
    second = rng.integers(4 * T // 10, max(5 * T // 10, 4 * T // 10 + 1), size=B)
    a, b = rng.integers(0, 2, size=B), rng.integers(0, 2, size=B)   # 0 = A, 1 = B
    rows = np.arange(B)
    x[rows, first] = a
    x[rows, second] = b
    return TaskBatch(x, 2 * a + b)


# ---------------------------------------------------------------- copy

BLANK = 0
COPY_ALPHABET = 8     # data symbols 1 … K
COPY_LENGTH = 5       # symbols to remember, L


def sample_copy(B: int, T: int, rng: np.random.Generator) -> TaskBatch:
    """Copy task: x, y (B, T) token ids over {blank, 1 … K, delimiter}.

    Steps 0 … L−1 show the data, step T − L − 1 the delimiter, and the target
    is blank except over the last L steps, where it is the data.
    """
    K, L = COPY_ALPHABET, COPY_LENGTH
    data = rng.integers(1, K + 1, size=(B, L))
    x = np.full((B, T), BLANK)
    x[:, :L] = data
    x[:, T - L - 1] = K + 1
    y = np.full((B, T), BLANK)
    y[:, T - L:] = data
    return TaskBatch(x, y)


# ---------------------------------------------------------------- embedded Reber grammar

REBER_SYMBOLS = ("B", "T", "P", "S", "X", "V", "E")
_B, _T, _P, _S, _X, _V, _E = range(7)
# Reber's finite-state grammar: state → ((symbol, next state), (symbol, next state)).
# State 0 follows the initial B; state 6 emits the final E.
_REBER_EDGES = {
    0: ((_T, 1), (_P, 2)),
    1: ((_S, 1), (_X, 3)),
    2: ((_T, 2), (_V, 4)),
    3: ((_X, 2), (_S, 5)),
    4: ((_P, 3), (_V, 5)),
}


def reber_string(rng: np.random.Generator) -> list[int]:
    """One string of the (inner) Reber grammar, from B to E."""
    out, state = [_B], 0
    while state != 5:
        symbol, state = _REBER_EDGES[state][rng.integers(2)]
        out.append(symbol)
    out.append(_E)
    return out


def embedded_reber_string(rng: np.random.Generator) -> tuple[list[int], list[frozenset]]:
    """An embedded Reber string B c <Reber> c E (c ∈ {T, P}) and the legal successors of each symbol."""
    c = (_T, _P)[rng.integers(2)]
    inner = reber_string(rng)
    symbols = [_B, c] + inner + [c, _E]
    legal = [frozenset({_T, _P}), frozenset({_B})]      # legal[i]: what may follow symbols[i]
    state = 0
    for symbol in inner[1:]:                             # what may follow each inner symbol but E
        legal.append(frozenset(s for s, _ in _REBER_EDGES[state]) if state in _REBER_EDGES else frozenset({_E}))
        state = dict(_REBER_EDGES.get(state, ())).get(symbol, 5)
    legal.append(frozenset({c}))                         # after the inner E: the long-range symbol
    legal.append(frozenset({_E}))
    legal.append(frozenset({_B}))                        # the next string starts
    return symbols, legal


def sample_reber(B: int, T: int, rng: np.random.Generator) -> TaskBatch:
    """Next-symbol prediction on concatenated embedded Reber strings.

    Returns x, y (B, T) token ids with y_t = x_{t+1}, and ``legal`` (B, T, 7).
    """
    x = np.empty((B, T + 1), dtype=np.int64)
    legal = np.zeros((B, T + 1, len(REBER_SYMBOLS)), dtype=bool)
    for b in range(B):
        symbols, sets = [], []
        while len(symbols) < T + 1:
            s, l = embedded_reber_string(rng)
            symbols += s
            sets += l
        x[b] = symbols[:T + 1]
        for t, allowed in enumerate(sets[:T + 1]):
            legal[b, t, list(allowed)] = True
    return TaskBatch(x[:, :T], x[:, 1:], legal[:, :T])


# ---------------------------------------------------------------- 3-bit flip-flop

FLIP_FLOP_BITS = 3        # channels (inputs = outputs)
FLIP_FLOP_P = 0.05        # probability of a pulse per channel and step


def sample_flip_flop(B: int, T: int, rng: np.random.Generator) -> TaskBatch:
    """3-bit flip-flop: x (B, T, 3) pulses in {−1, 0, +1}, y (B, T, 3) the sign of each channel's last pulse.

    Every channel pulses at the first step (index 0), so y is ±1 throughout.
    """
    K = FLIP_FLOP_BITS
    pulse = rng.random((B, T, K)) < FLIP_FLOP_P
    pulse[:, 0] = True
    signs = 2.0 * rng.integers(0, 2, size=(B, T, K)) - 1.0
    x = np.where(pulse, signs, 0.0)
    # index of the last pulse at or before each step, per channel (the first step always pulses)
    last = np.maximum.accumulate(np.where(pulse, np.arange(T)[None, :, None], 0), axis=1)
    return TaskBatch(x, np.take_along_axis(x, last, axis=1))


TASKS: dict[str, Task] = {
    "adding": Task("adding", 2, 1, "mse", "last", "mse", 1 / 6, 2, sample_adding),
    "temporal_order": Task("temporal_order", 6, 4, "xent", "last", "error_rate", 0.75, 10,
                           sample_temporal_order),
    "copy": Task("copy", COPY_ALPHABET + 2, COPY_ALPHABET + 2, "xent", "all", "error_rate",
                 1 - 1 / COPY_ALPHABET, 2 * COPY_LENGTH + 1, sample_copy),
    "reber": Task("reber", 7, 7, "xent", "all", "error_rate", float("nan"), 1, sample_reber),
    "flip_flop": Task("flip_flop", FLIP_FLOP_BITS, FLIP_FLOP_BITS, "mse", "all", "mse", 1.0, 1,
                      sample_flip_flop, error_tolerance=1.0),    # (o − y)² > 1 with y = ±1: the wrong sign
}


def get_task(name: str) -> Task:
    """Look up a task by name (one-line error naming the bad value)."""
    check_choice(name, TASKS, "task")
    return TASKS[name]
