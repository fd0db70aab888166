"""Training any cell on a long-memory task, with the remedies the literature proposes.

One update, for the batch drawn at step s (θ are the weights before it)::

    g  = ∇_θ L(θ) + α ∇_θ Ω(θ)             exact BPTT (:func:`gradlab.analysis.bptt.gradients`);
                                           Ω: Pascanu et al.'s regulariser (:mod:`.regulariser`), α = ``omega``
    g̃  = clip(g)                           :mod:`.clipping` (Pascanu et al. 2013, Alg. 1)
    u, state ← optimiser(g̃, state)         :mod:`.optimisers` (SGD + momentum, Adam, RMSprop)
    θ ← θ + u

A non-finite gradient (or an update that would make a weight non-finite) is
counted and the update skipped: it is never applied, silently or otherwise.
Each update records its loss, ‖g‖, ‖g̃‖, whether clipping changed g, whether
it was skipped, Ω (when used), and ρ, σ_max of the recurrent weights the
gradient was taken at; the held-out loss, task metric and error rate, and the
Jacobian-norm curve ‖∂s_T/∂s_k‖, are recorded at intervals.

Remedies as options (each with its paper)
------------------------------------------
* initialisation ``init``: gaussian, orthogonal (Saxe et al. 2014), identity
  (IRNN, Le, Jaitly & Hinton 2015, with ``activation="relu"``);
  gated cells: ``forget_bias`` (Gers, Schmidhuber & Cummins 2000;
  Jozefowicz et al. 2015) and ``chrono`` (Tallec & Ollivier 2018);
* Pascanu, Mikolov & Bengio's (2013) regulariser, weight ``omega`` (vanilla RNN);
* ReLU (``activation``), LSTM/GRU (``cell``);
* clipping ``clipping``: none, norm (Pascanu et al. 2013), value (min-char-rnn).

A run *solves* its task when the held-out error rate falls below 1 %
(:data:`SOLVED_BELOW`; the task defines its error rate, e.g. for adding the
fraction of sequences with squared error above 0.04, as in Hochreiter &
Schmidhuber 1997 and Pascanu et al.'s code); ``stop_when_solved`` ends the
run at that evaluation.
"""
from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..analysis.bptt import gradients, loss_step_indices, output_errors
from ..analysis.jacobian_norms import jacobian_norms
from ..analysis.spectrum import gamma_h, recurrent_spectral_scale, step_bound
from ..analysis.tables import norms_by_lag, norms_table
from ..cells import make_cell
from ..cells.gated import set_gate_biases
from ..cells.init import check_initial_network
from ..cells.weights import check_scale
from ..errors import GradlabError, check_choice, check_positive_int, check_positive_number, config_from_dict
from .clipping import CLIPPINGS, get_clipping, global_norm
from .optimisers import OPTIMISERS, apply_updates, get_optimiser
from .regulariser import omega_and_grads
from .tasks import TASKS, Task, TaskBatch, get_task

SOLVED_BELOW = 0.01     # held-out error rate at which a task counts as solved
DEFAULT_MOMENTUM = {"sgd": 0.9, "rmsprop": 0.0, "adam": 0.0}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one training run.

    Attributes
    ----------
    task : {"adding", "temporal_order", "copy", "reber", …}
        A key of :data:`gradlab.training.tasks.TASKS`.
    steps : int
        Sequence length T.
    hidden : int
        Hidden size n.
    cell : {"rnn", "lstm", "gru"}
        A key of :data:`gradlab.cells.CELLS`.
    layers : int
        Stacked layers L (PyTorch ``num_layers``).
    activation, init, radius, scale_by, input_scale
        The initial network, as in :class:`gradlab.RunConfig` (for gated
        cells, ``init``/``radius`` shape every n × n recurrent gate block).
    forget_bias : float or None
        Gated cells: the bias of the gate that keeps the state (LSTM forget
        gate f, GRU update gate z), e.g. 1 (Jozefowicz et al. 2015).
    chrono : bool
        Gated cells: chrono initialisation (Tallec & Ollivier 2018) with
        T_max = ``steps``: b_keep ~ ln U(1, T_max − 1) (and b_i = −b_f for the LSTM).
    batch : int
        Sequences per update.
    updates : int
        Number of updates.
    optimizer : {"sgd", "adam", "rmsprop"}
    lr : float
        Learning rate η.
    momentum : float or None
        SGD's heavy-ball momentum μ in [0, 1) (default 0.9) or RMSprop's (default 0);
        Adam takes none.
    clipping : {"none", "norm", "value"}
    threshold : float
        τ for norm clipping, c for value clipping (ignored for ``none``).
    omega : float
        α, the weight of Pascanu et al.'s regulariser Ω (0: off; vanilla RNN only).
    eval_every : int
        Held-out loss, metric and error rate every this many updates (and at 0 and the end).
    eval_batch : int
        Size of the held-out batch (drawn once).
    jacobian_every : int
        Jacobian-norm curve every this many updates (and at 0 and the end);
        0 turns it off.
    jacobian_batch : int
        Held-out sequences the Jacobian curve is averaged over.
    stop_when_solved : bool
        End the run at the first evaluation whose error rate is below :data:`SOLVED_BELOW`.
    seed : int
        Seeds weights, training batches and the held-out batch (independent streams).
    label : str
        A name for this combination of settings (e.g. the remedy, "clip+Ω"),
        kept as a column for tables and figures; it changes nothing in training.
    """

    task: str = "adding"
    steps: int = 20
    hidden: int = 16
    cell: str = "rnn"
    layers: int = 1
    activation: str = "tanh"
    init: str = "gaussian"
    radius: float = 1.0
    scale_by: str = "radius"
    input_scale: float = 1.0
    forget_bias: float | None = None
    chrono: bool = False
    batch: int = 32
    updates: int = 400
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float | None = None
    clipping: str = "none"
    threshold: float = 1.0
    omega: float = 0.0
    eval_every: int = 50
    eval_batch: int = 256
    jacobian_every: int = 0
    jacobian_batch: int = 4
    stop_when_solved: bool = False
    seed: int = 0
    label: str = ""

    def __post_init__(self):
        if not isinstance(self.label, str):
            raise GradlabError(f"label must be a string, got {self.label!r}")
        check_choice(self.task, TASKS, "task")
        for name in ("steps", "hidden", "batch", "updates", "eval_every", "eval_batch", "jacobian_batch"):
            check_positive_int(getattr(self, name), name)
        check_positive_int(self.jacobian_every, "jacobian_every", minimum=0)
        check_initial_network(self)
        for name in ("radius", "input_scale"):     # subnormal or overflowing weights have no spectrum
            check_scale(getattr(self, name), name)
        cell = make_cell(self.cell, self.activation, self.layers)
        check_choice(self.clipping, CLIPPINGS, "clipping")
        check_choice(self.optimizer, OPTIMISERS, "optimizer")
        for name in ("lr", "threshold"):
            check_positive_number(getattr(self, name), name)
        if self.momentum is None:       # the optimiser's own default, recorded as used
            object.__setattr__(self, "momentum", DEFAULT_MOMENTUM[self.optimizer])
        get_optimiser(self.optimizer, self.lr, self.momentum)    # validates momentum for this optimiser
        if isinstance(self.omega, bool) or not isinstance(self.omega, (int, float)) or not math.isfinite(self.omega) \
                or self.omega < 0:
            raise GradlabError(f"omega (the regulariser's weight α) must be a number ≥ 0, got {self.omega!r}")
        if self.omega and not hasattr(cell, "step_matrix"):
            raise GradlabError(f"omega (Pascanu et al.'s regulariser) is implemented for the vanilla RNN, "
                               f"not for cell {self.cell!r}")
        gated = not hasattr(cell, "step_matrix")
        if self.forget_bias is not None:
            if not gated:
                raise GradlabError(f"forget_bias applies to gated cells (lstm, gru), not to cell {self.cell!r}")
            if isinstance(self.forget_bias, bool) or not isinstance(self.forget_bias, (int, float)) \
                    or not math.isfinite(self.forget_bias):
                raise GradlabError(f"forget_bias must be a finite number, got {self.forget_bias!r}")
        if not isinstance(self.chrono, bool):
            raise GradlabError(f"chrono must be true or false, got {self.chrono!r}")
        if self.chrono and not gated:
            raise GradlabError(f"chrono initialisation applies to gated cells (lstm, gru), not to cell {self.cell!r}")
        if self.chrono and self.forget_bias is not None:
            raise GradlabError("give forget_bias or chrono, not both (chrono draws the forget-gate biases)")
        if self.chrono and self.steps < 3:
            raise GradlabError(f"chrono initialisation needs steps ≥ 3 (T_max − 1 > 1), got {self.steps}")
        if not isinstance(self.stop_when_solved, bool):
            raise GradlabError(f"stop_when_solved must be true or false, got {self.stop_when_solved!r}")
        task = TASKS[self.task]
        if self.steps < task.min_steps:
            raise GradlabError(f"task {self.task!r} needs steps ≥ {task.min_steps}, got {self.steps}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Build from a plain dict (a sweep point); unknown keys are an error."""
        return config_from_dict(cls, values, "train")


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced.

    Attributes
    ----------
    config : TrainConfig
    params
        The weights after the last update.
    summary : dict
        ``rho``, ``sigma_max`` (initial), ``final_rho``, ``final_sigma_max``,
        ``gamma_h``, ``final_loss``, ``final_metric``, ``final_error_rate``,
        ``metric_name``, ``chance_metric``, ``solved``, ``updates_to_solve``,
        ``updates_done``, ``n_clipped``, ``n_skipped``.
    tables : dict[str, pandas.DataFrame]
        ``training`` (one row per update), ``evaluation`` (held-out, at
        intervals) and, with ``jacobian_every > 0``, ``jacobians`` (per step
        and lag, aggregated like a sweep's ``norms.csv``).
    """

    config: TrainConfig
    params: object
    summary: dict
    tables: dict


def evaluate(cell, params, task: Task, batch: TaskBatch) -> tuple[float, float, float]:
    """Held-out loss, task metric and error rate of ``params`` on ``batch``.

    A forward pass whose states overflowed is a loss and metric of inf (and
    an error rate of 1), never the numbers of NaN states that a ReLU would
    silently turn into zeros.
    """
    tr = cell.forward(params, batch.x)
    if not np.all(np.isfinite(tr.states())):
        return math.inf, math.inf, 1.0
    loss, _, _ = output_errors(params, tr, batch.y, task.loss, task.loss_steps)
    o = tr.h[:, loss_step_indices(task.loss_steps, tr.T)] @ params.W_hy.T + params.b_y
    if not (math.isfinite(loss) and np.all(np.isfinite(o))):
        return math.inf, math.inf, 1.0
    return loss, task.metric(batch, o), task.error_rate(batch, o)


def jacobian_curve(cell, params, x: np.ndarray) -> pd.DataFrame:
    """ln‖∂s_T/∂s_k‖ of the current weights on inputs ``x``, aggregated per lag."""
    tr = cell.forward(params, x)
    bound = step_bound(cell, params, tr)
    return norms_by_lag(norms_table(jacobian_norms(tr, "last", workers=1), bound.factor, bound.rate))


def initial_params(config: TrainConfig, cell, task: Task, rng: np.random.Generator):
    """The network a run starts from: the cell's init, then the gated remedies' gate biases."""
    c = config
    params = cell.init_params(c.hidden, task.inputs, task.outputs, c.init, c.radius, rng, c.scale_by, c.input_scale)
    if c.forget_bias is not None or c.chrono:
        params = set_gate_biases(params, forget_bias=c.forget_bias, chrono_T=c.steps if c.chrono else None,
                                 rng=rng)
    return params


def optimiser_step(optimiser, params, grads: dict, state):
    """θ + u and the new optimiser state, or None when a weight would be non-finite (the update is skipped)."""
    updates, new_state = optimiser.update(grads, state)
    new = apply_updates(params.as_dict(), updates)
    if not all(np.all(np.isfinite(v)) for v in new.values()):
        return None
    return params.replace(**new), new_state


def train(config: TrainConfig, quiet: bool = True) -> TrainResult:
    """Train ``config`` and record every update; see the module docstring.

    Parameters
    ----------
    config : TrainConfig
    quiet : bool
        No progress bar (it is also off when stderr is not a terminal).

    Examples
    --------
    >>> import gradlab as gl
    >>> r = gl.train(gl.TrainConfig(task="adding", steps=10, hidden=8, updates=5, eval_batch=16))
    >>> r.tables["training"].shape[0]
    5
    """
    c = config
    task = get_task(c.task)
    cell = make_cell(c.cell, c.activation, c.layers)
    w_rng, data_rng, eval_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(c.seed).spawn(3))
    params = initial_params(c, cell, task, w_rng)
    names = tuple(params.as_dict())
    held_out = task.batch(c.eval_batch, c.steps, eval_rng)
    clip = get_clipping(c.clipping, c.threshold)
    optimiser = get_optimiser(c.optimizer, c.lr, c.momentum)
    state = optimiser.init(params.as_dict())
    rho0, smax0 = recurrent_spectral_scale(cell, params)

    records, evals, curves = [], [], []
    solved_at = None

    def checkpoint(step: int) -> None:
        nonlocal solved_at
        if step % c.eval_every == 0 or step == c.updates:
            loss, metric, error = evaluate(cell, params, task, held_out)
            evals.append({"step": step, "eval_loss": loss, "metric_name": task.metric_name, "metric": metric,
                          "error_rate": error, "chance_metric": task.chance})
            if solved_at is None and error < SOLVED_BELOW:
                solved_at = step
        stopping = c.stop_when_solved and solved_at == step      # the run ends here: its "after" curve
        if c.jacobian_every and (step % c.jacobian_every == 0 or step == c.updates or stopping):
            curves.append(jacobian_curve(cell, params, held_out.x[:c.jacobian_batch]).assign(step=step))

    # Exploding weights are the object of study: inf/nan are recorded and
    # handled (skipped updates), so numpy's overflow warnings are noise here.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        checkpoint(0)
        bar = tqdm(range(1, c.updates + 1), desc=f"train {c.task}", unit="update",
                   disable=quiet or not sys.stderr.isatty(), leave=False)
        for step in bar:
            if c.stop_when_solved and solved_at is not None:    # solved at the evaluation just made
                break
            batch = task.batch(c.batch, c.steps, data_rng)
            g = gradients(cell, params, batch.x, batch.y, task.loss, task.loss_steps)
            rho, smax = recurrent_spectral_scale(cell, params)
            record = {"step": step, "loss": g.loss}
            grads = g.grads
            if c.omega:
                om, og = omega_and_grads(params, g.trace, g.dL_dh)
                record["omega_value"] = om
                grads = {k: grads[k] + c.omega * og[k] if k in og else grads[k] for k in grads}
            norm = global_norm(grads)
            record.update({"grad_norm": norm, "rho": rho, "sigma_max": smax})
            update = None
            if math.isfinite(norm) and math.isfinite(g.loss):
                clipped = clip(grads)
                record["clipped_grad_norm"] = global_norm(clipped)
                record["clipped"] = any(not np.array_equal(clipped[k], grads[k]) for k in names)
                update = optimiser_step(optimiser, params, clipped, state)
            else:
                record["clipped_grad_norm"], record["clipped"] = norm, False
            record["skipped"] = update is None
            if update is not None:
                params, state = update
            records.append(record)
            checkpoint(step)

    columns = ["step", "loss", "grad_norm", "clipped_grad_norm", "clipped", "skipped", "rho", "sigma_max"]
    training = pd.DataFrame(records, columns=columns + (["omega_value"] if c.omega else []))
    evaluation = pd.DataFrame(evals)
    tables = {"training": training, "evaluation": evaluation}
    if curves:
        jac = pd.concat(curves, ignore_index=True)
        tables["jacobians"] = jac[["step"] + [col for col in jac.columns if col != "step"]]
    last = evals[-1]
    final_rho, final_smax = recurrent_spectral_scale(cell, params)
    summary = {
        "rho": rho0, "sigma_max": smax0, "final_rho": final_rho, "final_sigma_max": final_smax,
        "gamma_h": gamma_h(cell, params),
        "final_loss": last["eval_loss"], "final_metric": last["metric"], "final_error_rate": last["error_rate"],
        "metric_name": task.metric_name, "chance_metric": task.chance,
        "solved": solved_at is not None, "updates_to_solve": math.nan if solved_at is None else solved_at,
        "updates_done": len(records),
        "n_clipped": int(training["clipped"].sum()), "n_skipped": int(training["skipped"].sum()),
    }
    return TrainResult(c, params, summary, tables)
