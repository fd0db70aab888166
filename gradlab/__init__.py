"""gradlab: show, measure and explain vanishing and exploding gradients in RNNs.

The public API, by layer (lower layers never import higher ones; see
ARCHITECTURE.md)::

    cells        make_cell / CELLS, RNNCell, LSTMCell, GRUCell  →  cell.forward (a trace)
                 init_params, init_recurrent, load_params / load_weights, save_params / save_weights
    analysis     jacobian_norms, spectrum (sigma_max, spectral_radius, eigenvalues),
                 gradients / loss_and_grads (BPTT), gradient_check, truncation_errors,
                 lyapunov_exponents / lyapunov_spectrum, find_fixed_points, compute_mean_field
    training     get_task, clip_by_global_norm / clip_by_value, TrainConfig → train
    experiments  RunConfig → analyse → write_run;  sweep file → run_sweep
    io           inspect_path (what is in a results folder)

The names below are imported on first use (``gradlab.forward`` imports
:mod:`gradlab.cells.rnn`), so ``import gradlab`` itself is instant and the
``gradlab`` command can take Ctrl-C from its first moment
(:mod:`gradlab._launch`).
"""
from importlib import import_module

__version__ = "0.2.0"

# name → the submodule that defines it, grouped by layer
_EXPORTS = {
    # errors
    "GradlabError": "errors",
    # cells
    "CELLS": "cells", "make_cell": "cells",
    "Cell": "cells.base", "StateTrace": "cells.base",
    "ACTIVATIONS": "cells.activations", "Activation": "cells.activations", "get_activation": "cells.activations",
    "init_recurrent": "cells.init",
    "PARAM_NAMES": "cells.rnn", "RNNParams": "cells.rnn", "RNNCell": "cells.rnn", "Trace": "cells.rnn",
    "forward": "cells.rnn", "rnn_cell": "cells.rnn", "init_params": "cells.rnn",
    "GatedParams": "cells.gated", "forward_gated": "cells.gated", "init_gated_params": "cells.gated",
    "load_gated_weights": "cells.gated", "save_gated_weights": "cells.gated",
    "LSTMCell": "cells.lstm", "LSTMTrace": "cells.lstm", "cell_state_trace": "cells.lstm",
    "forward_lstm": "cells.lstm", "lstm_cell": "cells.lstm",
    "GRUCell": "cells.gru", "GRUTrace": "cells.gru", "forward_gru": "cells.gru", "gru_cell": "cells.gru",
    "StackedCell": "cells.stacked", "StackedParams": "cells.stacked",
    "load_params": "cells.weights", "save_params": "cells.weights",
    "load_weights": "cells.weights", "save_weights": "cells.weights",
    "load_inputs": "io.files",
    # analysis
    "Gradients": "analysis.bptt", "gradients": "analysis.bptt", "loss_and_grads": "analysis.bptt",
    "cell_loss": "analysis.bptt", "loss_value": "analysis.bptt", "output_errors": "analysis.bptt",
    "finite_difference_grads": "analysis.gradcheck", "gradient_check": "analysis.gradcheck",
    "truncation_errors": "analysis.gradcheck",
    "log_loss_grad_norms": "analysis.gradient_norms",
    "JacobianNorms": "analysis.jacobian_norms", "fit_growth_rate": "analysis.jacobian_norms",
    "jacobian_norms": "analysis.jacobian_norms",
    "exact_cell_state_norms": "analysis.cell_state",
    "eigenvalues": "analysis.spectrum", "sigma_max": "analysis.spectrum", "singular_values": "analysis.spectrum",
    "spectral_radius": "analysis.spectrum", "spectrum_table": "analysis.spectrum",
    "largest_lyapunov": "analysis.lyapunov", "lyapunov_exponents": "analysis.lyapunov",
    "LyapunovSpectrum": "analysis.lyapunov", "lyapunov_spectrum": "analysis.lyapunov",
    "kaplan_yorke_dimension": "analysis.lyapunov", "ks_entropy": "analysis.lyapunov",
    "FixedPoints": "analysis.fixed_points", "find_fixed_points": "analysis.fixed_points",
    "fixed_point_analysis": "analysis.fixed_points", "sample_starts": "analysis.fixed_points",
    "MeanField": "analysis.mean_field", "compute_mean_field": "analysis.mean_field",
    "critical_gain": "analysis.mean_field",
    # training
    "TASKS": "training.tasks", "get_task": "training.tasks",
    "chain": "training.clipping", "clip_by_global_norm": "training.clipping", "clip_by_value": "training.clipping",
    "global_norm": "training.clipping", "no_clipping": "training.clipping",
    "TrainConfig": "training.loop", "TrainResult": "training.loop", "train": "training.loop",
    # experiments
    "RunConfig": "experiments.config",
    "RunResult": "experiments.runner", "analyse": "experiments.runner", "build_model": "experiments.runner",
    "Network": "experiments.runner",
    "write_run": "experiments.runner",
    "load_spec": "experiments.sweep", "run_sweep": "experiments.sweep",
    # io
    "inspect_path": "io.inspect",
    # the PyTorch bridge (needs torch when used)
    "from_torch": "torch",
}

__all__ = sorted(_EXPORTS)

# Modules of the flat layout before gradlab 0.2 → where they live now, so that
# ``gradlab.spectrum`` (say) in an old notebook still finds its module.
_MOVED = {
    "activations": "cells.activations", "init": "cells.init", "rnn": "cells.rnn", "lstm": "cells.lstm",
    "gru": "cells.gru", "gated": "cells.gated", "weights": "cells.weights", "params": "cells.rnn",
    "trace": "cells.rnn",
    "losses": "analysis.losses", "bptt": "analysis.bptt", "gradcheck": "analysis.gradcheck",
    "gradient_norms": "analysis.gradient_norms", "spectrum": "analysis.spectrum", "lyapunov": "analysis.lyapunov",
    "mean_field": "analysis.mean_field",
    "tasks": "training.tasks", "clipping": "training.clipping",
    "config": "experiments.config", "runner": "experiments.runner", "sweep": "experiments.sweep",
    "chaos": "experiments.chaos", "reproduce": "experiments.reproduce",
    "results": "io.results", "schema": "io.schema", "inspect": "io.inspect",
}


def __getattr__(name: str):
    """Import an exported name's submodule on first use (or a submodule: ``gradlab.cells``, ``gradlab.schema``)."""
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    elif not name.startswith("_"):
        try:
            value = import_module(f".{_MOVED.get(name, name)}", __name__)
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{_MOVED.get(name, name)}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
