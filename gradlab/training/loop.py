"""Training an RNN on a long-memory task with SGD and gradient clipping.

One update, for the batch drawn at step s (θ are the weights before it):

    g  = ∇_θ L(θ)                          exact BPTT (:func:`gradlab.loss_and_grads`)
    g̃  = clip(g)                           :mod:`gradlab.clipping` (Pascanu et al. 2013, Alg. 1)
    v ← μ v − η g̃,    θ ← θ + v            SGD with (heavy-ball) momentum μ

A non-finite gradient (or an update that would make a weight non-finite) is
counted and the update skipped: it is never applied, silently or otherwise.
Each update records its loss, ‖g‖, ‖g̃‖, whether clipping changed g, whether
it was skipped, and ρ(W_hh), σ_max(W_hh) of the weights the gradient was
taken at; the held-out metric and the Jacobian-norm curve ‖∂h_T/∂h_k‖ are
recorded at intervals.
"""
from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..cells.activations import ACTIVATIONS
from ..analysis.bptt import loss_and_grads, loss_step_indices, output_errors
from .clipping import CLIPPINGS, get_clipping, global_norm
from ..cells.init import check_initial_network
from ..errors import GradlabError, check_choice, check_positive_int, check_positive_number, config_from_dict
from ..analysis.jacobian_norms import jacobian_norms
from ..cells.rnn import PARAM_NAMES, RNNParams, forward, init_params
from ..analysis.tables import norms_by_lag, norms_table
from ..analysis.spectrum import sigma_max, spectral_radius
from .tasks import TASKS, Task, TaskBatch, get_task


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one training run.

    Attributes
    ----------
    task : {"adding", "temporal_order", "copy", "reber"}
    steps : int
        Sequence length T.
    hidden : int
        Hidden size n.
    activation, init, radius, scale_by, input_scale
        The initial network, as in :class:`gradlab.RunConfig`.
    batch : int
        Sequences per update.
    updates : int
        Number of SGD updates.
    lr : float
        Learning rate η.
    momentum : float
        Momentum μ in [0, 1); 0 is plain SGD.
    clipping : {"none", "norm", "value"}
    threshold : float
        τ for norm clipping, c for value clipping (ignored for ``none``).
    eval_every : int
        Held-out loss and metric every this many updates (and at 0 and the end).
    eval_batch : int
        Size of the held-out batch (drawn once).
    jacobian_every : int
        Jacobian-norm curve every this many updates (and at 0 and the end);
        0 turns it off.
    jacobian_batch : int
        Held-out sequences the Jacobian curve is averaged over.
    seed : int
        Seeds weights, training batches and the held-out batch (independent streams).
    """

    task: str = "adding"
    steps: int = 20
    hidden: int = 16
    activation: str = "tanh"
    init: str = "gaussian"
    radius: float = 1.0
    scale_by: str = "radius"
    input_scale: float = 1.0
    batch: int = 32
    updates: int = 400
    lr: float = 0.05
    momentum: float = 0.9
    clipping: str = "none"
    threshold: float = 1.0
    eval_every: int = 50
    eval_batch: int = 256
    jacobian_every: int = 0
    jacobian_batch: int = 4
    seed: int = 0

    def __post_init__(self):
        check_choice(self.task, TASKS, "task")
        for name in ("steps", "hidden", "batch", "updates", "eval_every", "eval_batch", "jacobian_batch"):
            check_positive_int(getattr(self, name), name)
        check_positive_int(self.jacobian_every, "jacobian_every", minimum=0)
        check_initial_network(self)
        check_choice(self.clipping, CLIPPINGS, "clipping")
        for name in ("lr", "threshold"):
            check_positive_number(getattr(self, name), name)
        if isinstance(self.momentum, bool) or not isinstance(self.momentum, (int, float)) \
                or not 0 <= self.momentum < 1:
            raise GradlabError(f"momentum must be a number in [0, 1), got {self.momentum!r}")
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
    params : RNNParams
        The weights after the last update.
    summary : dict
        ``rho``, ``sigma_max`` (initial), ``final_rho``, ``final_sigma_max``,
        ``gamma_h``, ``final_loss``, ``final_metric``, ``metric_name``,
        ``chance_metric``, ``n_clipped``, ``n_skipped``.
    tables : dict[str, pandas.DataFrame]
        ``training`` (one row per update), ``evaluation`` (held-out, at
        intervals) and, with ``jacobian_every > 0``, ``jacobians`` (per step
        and lag, aggregated like a sweep's ``norms.csv``).
    """

    config: TrainConfig
    params: RNNParams
    summary: dict
    tables: dict


def evaluate(params: RNNParams, task: Task, batch: TaskBatch, activation: str) -> tuple[float, float]:
    """Held-out loss and task metric of ``params`` on ``batch``."""
    tr = forward(params, batch.x, activation)
    loss, _, _ = output_errors(params, tr, batch.y, task.loss, task.loss_steps)
    o = tr.h[:, loss_step_indices(task.loss_steps, tr.T)] @ params.W_hy.T + params.b_y
    return loss, task.metric(batch, o)


def jacobian_curve(params: RNNParams, x: np.ndarray, activation: str) -> pd.DataFrame:
    """ln‖∂h_T/∂h_k‖ of the current weights on inputs ``x``, aggregated per lag."""
    tr = forward(params, x, activation)
    table = norms_table(jacobian_norms(tr, "last"), sigma_max(params.W_hh) * tr.activation.gamma,
                        spectral_radius(params.W_hh))
    return norms_by_lag(table)


def sgd_step(params: RNNParams, grads: dict, velocity: dict, lr: float, momentum: float):
    """v ← μ v − η g, θ ← θ + v. Returns (params, velocity), or None when a weight would be non-finite."""
    velocity = {k: momentum * velocity[k] - lr * grads[k] for k in PARAM_NAMES}
    new = {k: getattr(params, k) + velocity[k] for k in PARAM_NAMES}
    if not all(np.all(np.isfinite(v)) for v in new.values()):
        return None
    return params.replace(**new), velocity


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
    w_rng, data_rng, eval_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(c.seed).spawn(3))
    params = init_params(c.hidden, task.inputs, task.outputs, c.init, c.radius, w_rng, c.scale_by, c.input_scale)
    held_out = task.batch(c.eval_batch, c.steps, eval_rng)
    clip = get_clipping(c.clipping, c.threshold)
    velocity = {k: np.zeros_like(getattr(params, k)) for k in PARAM_NAMES}
    rho0, smax0 = spectral_radius(params.W_hh), sigma_max(params.W_hh)

    records, evals, curves = [], [], []

    def checkpoint(step: int) -> None:
        if step % c.eval_every == 0 or step == c.updates:
            loss, metric = evaluate(params, task, held_out, c.activation)
            evals.append({"step": step, "eval_loss": loss, "metric_name": task.metric_name, "metric": metric})
        if c.jacobian_every and (step % c.jacobian_every == 0 or step == c.updates):
            curves.append(jacobian_curve(params, held_out.x[:c.jacobian_batch], c.activation).assign(step=step))

    # Exploding weights are the object of study: inf/nan are recorded and
    # handled (skipped updates), so numpy's overflow warnings are noise here.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        checkpoint(0)
        bar = tqdm(range(1, c.updates + 1), desc=f"train {c.task}", unit="update",
                   disable=quiet or not sys.stderr.isatty(), leave=False)
        for step in bar:
            batch = task.batch(c.batch, c.steps, data_rng)
            g = loss_and_grads(params, batch.x, batch.y, c.activation, task.loss, task.loss_steps)
            norm = global_norm(g.grads)
            record = {"step": step, "loss": g.loss, "grad_norm": norm,
                      "rho": spectral_radius(params.W_hh), "sigma_max": sigma_max(params.W_hh)}
            update = None
            if math.isfinite(norm) and math.isfinite(g.loss):
                clipped = clip(g.grads)
                record["clipped_grad_norm"] = global_norm(clipped)
                record["clipped"] = any(not np.array_equal(clipped[k], g.grads[k]) for k in PARAM_NAMES)
                update = sgd_step(params, clipped, velocity, c.lr, c.momentum)
            else:
                record["clipped_grad_norm"], record["clipped"] = norm, False
            record["skipped"] = update is None
            if update is not None:
                params, velocity = update
            records.append(record)
            checkpoint(step)

    training = pd.DataFrame(records, columns=["step", "loss", "grad_norm", "clipped_grad_norm", "clipped",
                                              "skipped", "rho", "sigma_max"])
    evaluation = pd.DataFrame(evals)
    tables = {"training": training, "evaluation": evaluation}
    if curves:
        jac = pd.concat(curves, ignore_index=True)
        tables["jacobians"] = jac[["step"] + [col for col in jac.columns if col != "step"]]
    last = evals[-1]
    summary = {
        "rho": rho0, "sigma_max": smax0,
        "final_rho": spectral_radius(params.W_hh), "final_sigma_max": sigma_max(params.W_hh),
        "gamma_h": ACTIVATIONS[c.activation].gamma,
        "final_loss": last["eval_loss"], "final_metric": last["metric"], "metric_name": task.metric_name,
        "chance_metric": task.chance,
        "n_clipped": int(training["clipped"].sum()), "n_skipped": int(training["skipped"].sum()),
    }
    return TrainResult(c, params, summary, tables)
