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
from typing import TYPE_CHECKING, Any

import numpy as np

from ..analysis.bptt import output_errors
from ..analysis.extra_tables import EXTRA_TABLES
from ..analysis.gradient_norms import log_loss_grad_norms
from ..analysis.jacobian_norms import JacobianNorms, fit_growth_rate, jacobian_norms
from ..analysis.lyapunov import largest_lyapunov
from ..analysis.spectrum import recurrent_spectral_scale, spectrum_table, step_bound
from ..analysis.tables import grads_table, norms_table
from ..cells import cell_phrase, make_cell
from ..cells.base import check_inputs
from ..cells.weights import params_from_file, read_weights_file
from ..errors import GradlabError, PathLike
from ..io.files import file_sha256, load_inputs
from ..io.results import write_results
from .budget import memory_limit
from .config import INIT_FIELDS, RunConfig  # noqa: F401  (INIT_FIELDS: public here before)

if TYPE_CHECKING:
    import numpy.typing as npt

    from ..cells.base import Cell, StateTrace


@dataclass(frozen=True)
class Model:
    """A concrete run: the effective config, the cell, its parameters, inputs and targets.

    ``files`` names the weights and input files read (``weights``,
    ``input_seq``), each as ``{"path", "sha256"}``; empty when none were.
    ``notes`` says how the files were read (the manifest's ``model``): where
    φ came from (``activation_from``), the read-out (``readout``: the file's
    ``fc.*`` or random), the keys left unread (``ignored_keys``), the input
    ``layout``; empty when no file was read.
    """

    config: RunConfig
    params: object
    x: np.ndarray
    y: np.ndarray
    files: dict = dataclasses.field(default_factory=dict)
    cell: object = None
    notes: dict = dataclasses.field(default_factory=dict)

    def summary_line(self) -> str:
        """One line naming what was analysed: cell, φ and where it came from, sizes, read-out, B and T."""
        c, notes = self.config, self.notes
        phi = f", {c.activation}" if c.cell == "rnn" else ""
        if notes.get("activation_from") == "weights file":
            phi += " (recorded in the weights file)"
        parts = [f"{c.cell}{phi}" + (f" × {c.layers} layers" if c.layers > 1 else ""),
                 f"n = {c.hidden}, d = {c.inputs}, m = {c.outputs}"]
        if notes.get("readout", "").startswith("random"):
            parts.append("random read-out W_hy ~ N(0, 1/n) (the weights file has no fc.weight; m = --outputs, "
                         "default d)")
        if notes.get("ignored_keys"):
            parts.append(f"ignored: {', '.join(notes['ignored_keys'])}")
        source = (f"from {c.input_seq} read as {'(T, B, d)' if c.layout == 'tbd' else '(B, T, d)'} "
                  f"(--layout {c.layout})" if c.input_seq is not None else "random inputs")
        return "; ".join(parts) + (f"; B = {c.batch} sequence{'s' * (c.batch != 1)} × T = {c.steps} "
                                   f"step{'s' * (c.steps != 1)}, {source}")

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
    notes = {}
    if config.weights is not None:
        weights = read_weights_file(config.weights, max_bytes=memory_limit())   # its errors name the file
        fc = weights.arrays.get("fc.weight")
        if fc is not None and config.outputs is not None and fc.ndim == 2 and fc.shape[0] != config.outputs:
            raise GradlabError(f"outputs = {config.outputs} (--outputs) contradicts the read-out of weights file "
                               f"{str(config.weights)!r}, whose fc.weight has {fc.shape[0]} rows: leave it out")
        if weights.layers != config.layers:      # the file says how many layers; --layers may only agree
            if config.layers != 1:
                raise GradlabError(f"layers = {config.layers} (--layers) contradicts weights file "
                                   f"{str(config.weights)!r}, which holds {weights.layers} layers: leave it out")
            config = dataclasses.replace(config, layers=weights.layers)
        # the arrays are checked first (φ does not change them), then where φ comes from
        params = params_from_file(make_cell(config.cell, config.activation or "tanh", config.layers), weights,
                                  w_rng, config.outputs)
        activation, notes["activation_from"] = weights_activation(config, weights)
        config = dataclasses.replace(config, activation=activation)
        cell = make_cell(config.cell, config.activation, config.layers)
        notes["readout"] = "fc.weight, fc.bias of the weights file" if weights.has_readout else \
            "random: W_hy ~ N(0, 1/n), b_y = 0 (the weights file has no fc.weight)"
        notes["ignored_keys"] = list(weights.ignored)
    else:
        cell = make_cell(config.cell, config.activation, config.layers)
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
    if config.input_seq is not None:
        notes.update(layout=config.layout, B=config.batch, T=config.steps)
    return Model(config, params, x, y, files, cell, notes)


NO_ACTIVATION = ("weights file {path!r} does not record the nonlinearity its RNN was trained with (a state dict "
                 "does not): state it with --activation tanh|relu|sigmoid|linear (activation = \"relu\" in a sweep "
                 "file), or record it in the file: np.savez(..., nonlinearity=\"relu\")")


def weights_activation(config: RunConfig, weights) -> tuple[str, str]:
    """φ of a weights file's network and where it came from: ``(activation, "weights file" | "config")``.

    A vanilla RNN's φ comes from ``config.activation`` or the file's
    ``nonlinearity`` entry; neither (a bare state dict, analysed as tanh
    until 0.2 whatever it was trained with) or a disagreement is refused.
    Gated cells have fixed gates: a file recording another φ is refused.
    """
    recorded, path = weights.nonlinearity, str(config.weights)
    if config.cell != "rnn":
        if recorded not in (None, "tanh"):
            raise GradlabError(f"weights file {path!r} records nonlinearity {recorded!r}, but {cell_phrase(config.cell)} has "
                               "fixed sigmoid/tanh gates: is it an nn.RNN's (--cell rnn)?")
        return config.activation, "cell"
    if config.activation is None:
        if recorded is None:
            raise GradlabError(NO_ACTIVATION.format(path=path))
        return recorded, "weights file"
    if recorded is not None and recorded != config.activation:
        raise GradlabError(f"activation {config.activation!r} (--activation) contradicts weights file {path!r}, "
                           f"which records nonlinearity {recorded!r}: leave --activation out, or fix the file")
    return config.activation, "config"


def input_file(config: RunConfig, d: int) -> np.ndarray:
    """The inputs of ``config.input_seq`` in ``config.layout``, checked against input size ``d`` and ``tokens``.

    With ``layout="tbd"`` a 3-D float file (T, B, d), or 2-D token ids (T, B),
    is transposed to gradlab's (B, T, …); (T, d) and (T,) files are one sequence.
    """
    path = config.input_seq
    x = load_inputs(path, max_bytes=memory_limit())   # its errors name the file
    integer = np.issubdtype(x.dtype, np.integer)
    if config.tokens and not integer:
        raise GradlabError(f"--tokens (tokens = true) needs integer token ids, but input file {str(path)!r} "
                           f"holds {x.dtype} vectors")
    if config.layout == "tbd" and x.ndim == (2 if integer else 3):
        x = np.ascontiguousarray(x.swapaxes(0, 1))
    try:
        x = check_inputs(x, d)
    except GradlabError as e:
        raise GradlabError(f"input file {str(path)!r}: {e}") from None
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
    trace: StateTrace
    norms: JacobianNorms
    log_grad_norms: np.ndarray
    summary: dict
    tables: dict


@dataclass(frozen=True)
class Network:
    """A network someone else made: a cell, its parameters, and how its inputs are laid out.

    What :func:`gradlab.from_torch` returns for a live PyTorch module, and what
    :func:`analyse` takes beside a :class:`RunConfig`.

    Attributes
    ----------
    cell : Cell
    params
        The cell's parameters, with the read-out (a random one when the
        module had none: ``readout`` says which).
    batch_first : bool
        Inputs are (B, T, d) when true, PyTorch's default (T, B, d) when false.
    source : str
        What the network came from (the module's repr), for the manifest.
    readout : {"given", "random"}
    """

    cell: Cell
    params: Any
    batch_first: bool = True
    source: str = ""
    readout: str = "given"


def network_model(network: Network, x, y=None, pairs: str = "last", loss: str | None = None,
                  loss_steps: str = "all", seed: int = 0) -> Model:
    """The :class:`Model` of analysing ``network`` on the user's own batch ``x`` (array or tensor).

    ``x`` is laid out as the network says (``batch_first``); a (T, d) or (T,)
    array is one sequence. Targets ``y`` default to random ones (seeded by
    ``seed``), as ``gradlab run`` draws them: they shape only ``grads`` and the loss.
    """
    x = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)
    if not network.batch_first and x.ndim >= 2 and not (np.issubdtype(x.dtype, np.integer) and x.ndim == 1):
        x = np.swapaxes(x, 0, 1)
    params, cell = network.params, network.cell
    try:
        x = check_inputs(x, params.d)
    except GradlabError as e:
        layout = "(B, T, d)" if network.batch_first else "(T, B, d) (batch_first=False)"
        raise GradlabError(f"input batch for {network.source or 'the network'}, laid out {layout}: {e}") from None
    tokens = bool(np.issubdtype(x.dtype, np.integer))
    activation = getattr(cell, "activation", None) or getattr(getattr(cell, "layer", None), "activation", "tanh")
    config = RunConfig(hidden=params.n, inputs=params.d, outputs=params.m, steps=x.shape[1], batch=x.shape[0],
                       activation=activation if isinstance(activation, str) else activation.name,
                       cell=cell.name, layers=getattr(cell, "L", 1), pairs=pairs, tokens=tokens, loss=loss,
                       loss_steps=loss_steps, seed=seed)
    if y is None:
        y = random_targets(np.random.default_rng(seed), config.loss_name, loss_steps, x.shape[0], x.shape[1], params.m)
    else:
        y = np.asarray(y.detach().cpu().numpy() if hasattr(y, "detach") else y)
    readout = "given" if network.readout == "given" else "random: W_hy ~ N(0, 1/n), b_y = 0 (the module had no read-out)"
    return Model(config, params, x, y, {}, cell, {"network": network.source, "readout": readout})


def analyse(config: RunConfig | Network, x: npt.ArrayLike | None = None, *, y: npt.ArrayLike | None = None,
            pairs: str = "last", loss: str | None = None, loss_steps: str = "all",
            workers: int = 2) -> RunResult:
    """Run the instrumented forward pass and every analysis of ``gradlab run``, for any cell.

    Parameters
    ----------
    config : RunConfig or Network
        What ``gradlab run`` would build from its options, or a network of
        one's own (:func:`gradlab.from_torch`), then analysed on the batch ``x``
        (the other keywords apply to a network only; a RunConfig says them itself).
    workers : int
        Threads of the Jacobian-norm computation (:func:`gradlab.jacobian_norms`);
        a sweep's runs use 1 each.

    Examples
    --------
    >>> import gradlab as gl
    >>> result = gl.analyse(gl.RunConfig(hidden=8, steps=20, radius=1.5))
    >>> sorted(result.tables)
    ['grads', 'norms', 'spectrum']
    """
    if isinstance(config, RunConfig):
        if x is not None:
            raise GradlabError("a RunConfig names its own inputs (input_seq); pass x with a Network")
        model = build_model(config)
    elif isinstance(config, Network):
        if x is None:
            raise GradlabError("analysing a network needs its input batch x")
        model = network_model(config, x, y, pairs, loss, loss_steps)
    else:
        raise GradlabError(f"analyse takes a RunConfig or a Network (gradlab.from_torch), got {type(config).__name__}")
    return analyse_model(model, workers)


def analyse_model(model: Model, workers: int = 2) -> RunResult:
    """Every analysis of ``gradlab run`` for a built :class:`Model` (the forward pass is checked finite)."""
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
        "spectrum": spectrum_table(bound.matrix, bound.matrix_name),
        "grads": grads_table(log_grads),
    }
    for name in getattr(cell, "extra_tables", ()):
        tables[name] = EXTRA_TABLES[name](trace, cfg.pairs)
    return RunResult(model, trace, norms, log_grads, summary, tables)


def write_run(result: RunResult, out: PathLike, force: bool = False) -> None:
    """Write the run's tables (``norms.csv``, ``spectrum.csv``, ``grads.csv``, …) and ``manifest.json`` into ``out``.

    The folder appears complete or not at all; an existing one is refused
    unless ``force``. The manifest's ``config`` is :meth:`Model.recorded_config`
    (what was analysed), its ``files`` the weights and input files read, with
    their SHA-256, its ``model`` how they were read (:attr:`Model.notes`: φ's
    source, the read-out, ignored keys, input layout). An ``out`` that is or
    holds one of those files is refused.
    """
    files = {"files": result.model.files} if result.model.files else {}
    if result.model.notes:
        files["model"] = result.model.notes
    reads = {f["path"]: f"{name} file" for name, f in result.model.files.items()}
    write_results(out, result.tables, "run", result.model.recorded_config(), force=force, reads=reads,
                  summary=result.summary, **files)
