"""One analysis run: config → cell, weights and inputs → trace → tidy tables, for any cell.

This is what ``gradlab run`` does, as a function a notebook can call::

    result = gradlab.analyse(gradlab.RunConfig(hidden=64, radius=1.5))
    result.tables["norms"]          # pandas DataFrame, one row per (seq, t, k)

Nothing here depends on which cell runs: the cell comes from the registry
(:func:`gradlab.cells.make_cell`) and everything else from the Cell protocol.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..analysis.bptt import output_errors
from ..analysis.cell_state import EXTRA_TABLES
from ..analysis.gradient_norms import log_loss_grad_norms
from ..analysis.jacobian_norms import JacobianNorms, fit_growth_rate, jacobian_norms
from ..analysis.lyapunov import largest_lyapunov
from ..analysis.spectrum import recurrent_spectral_scale, spectrum_table, step_bound
from ..analysis.tables import grads_table, norms_table
from ..cells import make_cell
from ..cells.base import check_inputs
from ..cells.weights import load_params
from ..errors import GradlabError
from ..io.files import file_sha256, load_inputs
from ..io.results import write_results
from .config import RunConfig

# RunConfig fields that only shape random weights: a weights file replaces them (so do its n and d).
INIT_FIELDS = ("init", "radius", "scale_by", "input_scale")


@dataclass(frozen=True)
class Model:
    """A concrete run: the effective config, the cell, its parameters, inputs and targets.

    ``files`` names the weights and input files read (``weights``,
    ``input_seq``), each as ``{"path", "sha256"}``; empty when none were.
    """

    config: RunConfig
    params: object
    x: np.ndarray
    y: np.ndarray
    files: dict = dataclasses.field(default_factory=dict)
    cell: object = None

    def recorded_config(self) -> dict:
        """The config as the manifest records it: what was analysed.

        Sizes are the effective ones (a weights file sets n and d, an input
        file T and B), the loss is the one used; with a weights file the
        fields that only shape random weights (:data:`INIT_FIELDS`) are null,
        since they were not used.
        """
        values = self.config.to_dict()
        values["loss"] = self.config.loss_name
        if self.config.weights is not None:
            values.update(dict.fromkeys(INIT_FIELDS))
        return values


def build_model(config: RunConfig) -> Model:
    """Draw (or load) weights, inputs and targets for ``config``.

    Weights, inputs and targets come from three independent streams spawned
    from ``config.seed``, so changing e.g. the radius leaves inputs unchanged.
    A weights file fixes ``hidden``/``inputs`` and an input file fixes
    ``steps``/``batch``/``tokens``; the returned config says what was used.
    """
    w_rng, x_rng, y_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(3))
    cell = make_cell(config.cell, config.activation)
    if config.weights is not None:
        params = load_params(cell, config.weights, w_rng, config.outputs)
    else:
        params = cell.init_params(config.hidden, config.inputs, config.outputs, config.init, config.radius,
                                  w_rng, config.scale_by, config.input_scale)
    if config.input_seq is not None:
        x = input_file(config, params.d)
    elif config.tokens:
        x = x_rng.integers(0, params.d, size=(config.batch, config.steps))
    else:
        x = x_rng.standard_normal((config.batch, config.steps, params.d))
    tokens = bool(np.issubdtype(x.dtype, np.integer))
    config = dataclasses.replace(config, hidden=params.n, inputs=params.d, outputs=params.m,
                                 steps=x.shape[1], batch=x.shape[0], tokens=tokens)
    y = random_targets(y_rng, config.loss_name, config.loss_steps, x.shape[0], x.shape[1], params.m)
    files = {name: {"path": str(path), "sha256": file_sha256(path)}
             for name, path in (("weights", config.weights), ("input_seq", config.input_seq)) if path is not None}
    return Model(config, params, x, y, files, cell)


def input_file(config: RunConfig, d: int) -> np.ndarray:
    """The inputs of ``config.input_seq``, checked against input size ``d`` and ``config.tokens``."""
    path = config.input_seq
    x = load_inputs(path)   # its errors name the file
    try:
        x = check_inputs(x, d)
    except GradlabError as e:
        raise GradlabError(f"input file {str(path)!r}: {e}") from None
    if config.tokens and not np.issubdtype(x.dtype, np.integer):
        raise GradlabError(f"--tokens (tokens = true) needs integer token ids, but input file {str(path)!r} "
                           f"holds {x.dtype} vectors")
    return x


def finite_forward(model: Model):
    """The forward pass, loss and output errors ∂L/∂h_t of ``model``, all finite: (trace, loss, direct).

    States that overflow float64 (an exploding linear or ReLU net over many
    steps) make the loss and every gradient NaN: such a model is refused with
    one line instead of being measured (or gradient-checked) as NaN.
    """
    cfg, params = model.config, model.params
    with np.errstate(over="ignore", invalid="ignore"):
        trace = model.cell.forward(params, model.x)
        loss, _, direct = output_errors(params, trace, model.y, cfg.loss_name, cfg.loss_steps)
    if not (np.all(np.isfinite(trace.h)) and np.isfinite(loss) and np.all(np.isfinite(direct))):
        t = int(np.argmin(np.all(np.isfinite(trace.h), axis=(0, 2))))
        raise GradlabError(f"the forward pass overflows float64 (states or loss) {f'at step {t} ' if t else ''}"
                           f"of {trace.T}: use fewer steps, a smaller radius or input scale, or tanh/sigmoid")
    return trace, loss, direct


def random_targets(rng, loss: str, loss_steps: str, B: int, T: int, m: int) -> np.ndarray:
    """Targets for a loss when there is no task: uniform classes or N(0, 1) values."""
    shape = (B, T) if loss_steps == "all" else (B,)
    return rng.integers(0, m, size=shape) if loss == "xent" else rng.standard_normal(shape + (m,))


@dataclass(frozen=True)
class RunResult:
    """Everything one analysis run measured.

    Attributes
    ----------
    model : Model
    trace : StateTrace
    norms : JacobianNorms
    log_grad_norms : (B, T + 1) ln ‖∂L/∂s_k‖
    summary : dict
        The same fields, with the same meaning, for every cell:

        * ``rho``, ``sigma_max``: ρ and σ_max of the recurrent weights (W_hh;
          for a gated cell the largest over its n × n gate blocks, each of
          which ``--radius`` sets);
        * ``gamma_h`` = sup|φ'| (nan for gated cells, which have no single φ);
        * ``growth_rate``: the fitted slope of ln‖∂s_t/∂s_k‖ against lag, nats per step;
        * ``bound_rate`` = ln c of the bound c^(t−k) drawn with the norms
          (:class:`~gradlab.analysis.spectrum.StepBound`: σ_max γ_h, or for a
          gated cell max_t ‖J_t‖ of this trajectory);
        * ``asymptotic_rate`` = ln ρ(W_hh), the linear network's rate (nan for
          gated cells, which have no such W);
        * ``lyapunov``: the largest Lyapunov exponent λ₁ of the trace (mean
          over sequences), the measured asymptotic rate, for every cell;
        * ``loss``.
    tables : dict[str, pandas.DataFrame]
        ``norms``, ``spectrum``, ``grads`` and the cell's extra tables (an
        LSTM's ``cell_state``) — the CSVs of ``gradlab run``.
    """

    model: Model
    trace: object
    norms: JacobianNorms
    log_grad_norms: np.ndarray
    summary: dict
    tables: dict


def analyse(config: RunConfig, workers: int = 2) -> RunResult:
    """Run the instrumented forward pass and every analysis of ``gradlab run``, for any cell.

    ``workers`` is the number of threads of the Jacobian-norm computation
    (:func:`gradlab.jacobian_norms`); a sweep's runs use 1 each.
    """
    model = build_model(config)
    cfg, cell, params = model.config, model.cell, model.params
    trace, loss, direct = finite_forward(model)
    norms = jacobian_norms(trace, cfg.pairs, workers=workers)
    log_grads = log_loss_grad_norms(trace, trace.embed_h(direct))
    bound = step_bound(cell, params, trace)
    rho, smax = recurrent_spectral_scale(cell, params)
    with np.errstate(invalid="ignore"):     # ln nan: no rate for this cell
        asymptotic = float(np.log(bound.rate))
    summary = {
        "rho": rho,
        "sigma_max": smax,
        "gamma_h": bound.gamma_h,
        "growth_rate": fit_growth_rate(norms.lag, norms.log_norm),
        "bound_rate": float(np.log(bound.factor)),
        "asymptotic_rate": asymptotic,
        "lyapunov": float(np.mean(largest_lyapunov(trace))),   # measured asymptotic rate, nats/step
        "loss": loss,
    }
    tables = {
        "norms": norms_table(norms, bound.factor, bound.rate),
        "spectrum": spectrum_table(bound.matrix),
        "grads": grads_table(log_grads),
    }
    for name in getattr(cell, "extra_tables", ()):
        tables[name] = EXTRA_TABLES[name](trace, cfg.pairs)
    return RunResult(model, trace, norms, log_grads, summary, tables)


def write_run(result: RunResult, out, force: bool = False) -> None:
    """Write the run's tables (``norms.csv``, ``spectrum.csv``, ``grads.csv``, …) and ``manifest.json`` into ``out``.

    The folder appears complete or not at all; an existing one is refused
    unless ``force``. The manifest's ``config`` is :meth:`Model.recorded_config`
    (what was analysed), its ``files`` the weights and input files read, with
    their SHA-256.
    """
    files = {"files": result.model.files} if result.model.files else {}
    write_results(out, result.tables, "run", result.model.recorded_config(), force=force,
                  summary=result.summary, **files)
