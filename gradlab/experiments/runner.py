"""One analysis run: config → weights and inputs → trace → tidy tables.

This is what ``gradlab run`` does, as a function a notebook can call::

    result = gradlab.analyse(gradlab.RunConfig(hidden=64, radius=1.5))
    result.tables["norms"]          # pandas DataFrame, one row per (seq, t, k)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..analysis.bptt import output_errors
from .config import RunConfig
from ..errors import GradlabError
from ..cells.gated import analyse_gated, gated_params
from ..analysis.gradient_norms import log_loss_grad_norms
from ..cells.init import init_params
from ..analysis.jacobian_norms import JacobianNorms, fit_growth_rate, jacobian_norms
from ..analysis.lyapunov import largest_lyapunov
from ..cells.params import RNNParams
from ..io.results import manifest, results_folder, write_csv, write_json
from ..cells.rnn import check_inputs, forward
from ..analysis.spectrum import sigma_max, spectral_radius, spectrum_table
from ..cells.trace import Trace
from ..cells.weights import file_sha256, load_inputs, load_weights

LOG10_E = np.log10(np.e)


# RunConfig fields that only shape random weights: a weights file replaces them (so do its n and d).
INIT_FIELDS = ("init", "radius", "scale_by", "input_scale")


@dataclass(frozen=True)
class Model:
    """A concrete run: the effective config, parameters, inputs and targets.

    ``files`` names the weights and input files read (``weights``,
    ``input_seq``), each as ``{"path", "sha256"}``; empty when none were.
    """

    config: RunConfig
    params: RNNParams
    x: np.ndarray
    y: np.ndarray
    files: dict = dataclasses.field(default_factory=dict)

    def recorded_config(self) -> dict:
        """The config as the manifest records it: what was analysed.

        Sizes are the effective ones (a weights file sets n and d, an input
        file T and B); with a weights file the fields that only shape random
        weights (:data:`INIT_FIELDS`) are null, since they were not used.
        """
        values = self.config.to_dict()
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
    if config.cell != "rnn":
        params = gated_params(config, w_rng)
    elif config.weights is not None:
        params = load_weights(config.weights, w_rng, config.outputs)
    else:
        params = init_params(config.hidden, config.inputs, config.outputs, config.init, config.radius,
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
    return Model(config, params, x, y, files)


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


def finite_forward(model: Model) -> tuple[Trace, float, np.ndarray]:
    """The forward pass, loss and output errors ∂L/∂h_t of a vanilla-RNN ``model``, all finite.

    States that overflow float64 (an exploding linear or ReLU net over many
    steps) make the loss and every gradient NaN: such a model is refused with
    one line instead of being measured (or gradient-checked) as NaN.
    """
    cfg, params = model.config, model.params
    with np.errstate(over="ignore", invalid="ignore"):
        trace = forward(params, model.x, cfg.activation)
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
    trace : Trace
    norms : JacobianNorms
    log_grad_norms : (B, T + 1) ln ‖∂L/∂h_k‖
    summary : dict
        ``rho``, ``sigma_max``, ``gamma_h``, ``growth_rate`` (fitted nats per
        step), ``bound_rate`` = ln(σ_max γ_h), ``asymptotic_rate`` = ln ρ,
        ``lyapunov`` (largest Lyapunov exponent of the trace, mean over
        sequences), ``loss``.
    tables : dict[str, pandas.DataFrame]
        ``norms``, ``spectrum``, ``grads`` — the CSVs of ``gradlab run``.
    """

    model: Model
    trace: Trace
    norms: JacobianNorms
    log_grad_norms: np.ndarray
    summary: dict
    tables: dict


def analyse(config: RunConfig) -> RunResult:
    """Run the instrumented forward pass and every analysis of ``gradlab run``."""
    model = build_model(config)
    cfg, params = model.config, model.params
    if cfg.cell != "rnn":
        return analyse_gated(model)
    trace, loss, direct = finite_forward(model)
    norms = jacobian_norms(trace, cfg.pairs)
    log_grads = log_loss_grad_norms(trace, direct)
    rho, smax, gamma = spectral_radius(params.W_hh), sigma_max(params.W_hh), trace.activation.gamma
    summary = {
        "rho": rho,
        "sigma_max": smax,
        "gamma_h": gamma,
        "growth_rate": fit_growth_rate(norms.lag, norms.log_norm),
        "bound_rate": float(np.log(smax * gamma)),
        "asymptotic_rate": float(np.log(rho)),
        "lyapunov": float(np.mean(largest_lyapunov(trace))),   # measured asymptotic rate, nats/step
        "loss": loss,
    }
    tables = {
        "norms": norms_table(norms, smax * gamma, rho),
        "spectrum": spectrum_table(params.W_hh),
        "grads": grads_table(log_grads),
    }
    return RunResult(model, trace, norms, log_grads, summary, tables)


def norms_table(norms: JacobianNorms, bound_factor: float, rho: float) -> pd.DataFrame:
    """Long table: ``seq, t, k, lag, log10_norm, log10_bound, log10_rate``."""
    B, P = norms.log_norm.shape
    lag = np.tile(norms.lag, B)
    return pd.DataFrame({
        "seq": np.repeat(np.arange(B), P),
        "t": np.tile(norms.t, B),
        "k": np.tile(norms.k, B),
        "lag": lag,
        "log10_norm": norms.log_norm.ravel() * LOG10_E,
        "log10_bound": lag * np.log10(bound_factor),
        "log10_rate": lag * np.log10(rho),
    })


def norms_by_lag(norms: pd.DataFrame) -> pd.DataFrame:
    """Aggregate a :func:`norms_table` over t and sequences, one row per lag.

    Columns: ``lag, n_pairs, mean_log10_norm, median_log10_norm,
    min_log10_norm, max_log10_norm, log10_bound, log10_rate`` (the bound and
    rate depend on the lag only). This is the ``norms.csv`` of a sweep.
    """
    by = norms.groupby("lag", sort=True)
    v = by["log10_norm"]
    return pd.DataFrame({
        "lag": np.asarray(list(by.groups)),
        "n_pairs": v.size().to_numpy(),
        "mean_log10_norm": v.mean().to_numpy(),
        "median_log10_norm": v.median().to_numpy(),
        "min_log10_norm": v.min().to_numpy(),
        "max_log10_norm": v.max().to_numpy(),
        "log10_bound": by["log10_bound"].first().to_numpy(),
        "log10_rate": by["log10_rate"].first().to_numpy(),
    })


def grads_table(log_grad_norms: np.ndarray) -> pd.DataFrame:
    """Long table: ``seq, k, log10_grad_norm`` (‖∂L/∂h_k‖₂)."""
    B, K = log_grad_norms.shape
    return pd.DataFrame({
        "seq": np.repeat(np.arange(B), K),
        "k": np.tile(np.arange(K), B),
        "log10_grad_norm": log_grad_norms.ravel() * LOG10_E,
    })


def write_run(result: RunResult, out, force: bool = False) -> None:
    """Write ``norms.csv``, ``spectrum.csv``, ``grads.csv`` and ``manifest.json`` into ``out``.

    The folder appears complete or not at all; an existing one is refused
    unless ``force``. The manifest's ``config`` is :meth:`Model.recorded_config`
    (what was analysed), its ``files`` the weights and input files read, with
    their SHA-256.
    """
    with results_folder(out, force) as tmp:
        for name, table in result.tables.items():
            write_csv(tmp / f"{name}.csv", table)
        files = {"files": result.model.files} if result.model.files else {}
        write_json(tmp / "manifest.json", manifest("run", result.model.recorded_config(), **files,
                                                   summary=result.summary))
