"""gradlab: show, measure and explain vanishing and exploding gradients in RNNs.

The public API, in the order of the pipeline::

    init_params / load_weights  →  forward (Trace)  →  jacobian_norms, spectrum
    loss_and_grads (BPTT)  →  gradient_check / truncation_errors
    RunConfig  →  analyse  →  write_run
    get_task / TrainConfig  →  train (clip_by_global_norm, clip_by_value)
    sweep file  →  run_sweep  →  inspect_path
    init_gated_params  →  forward_lstm / forward_gru  →  lyapunov_exponents  ⟷  mean_field

The names below are imported on first use (``gradlab.forward`` imports
:mod:`gradlab.rnn`), so ``import gradlab`` itself is instant and the
``gradlab`` command can take Ctrl-C from its first moment
(:mod:`gradlab._launch`).
"""
import sys
import types
from importlib import import_module

__version__ = "0.1.0"

# name → the submodule that defines it
_EXPORTS = {
    "ACTIVATIONS": "activations", "Activation": "activations", "get_activation": "activations",
    "Gradients": "bptt", "loss_and_grads": "bptt", "loss_value": "bptt", "output_errors": "bptt",
    "chain": "clipping", "clip_by_global_norm": "clipping", "clip_by_value": "clipping",
    "global_norm": "clipping", "no_clipping": "clipping",
    "RunConfig": "config",
    "GradlabError": "errors",
    "GatedParams": "gated", "forward_gated": "gated", "init_gated_params": "gated",
    "load_gated_weights": "gated", "save_gated_weights": "gated",
    "finite_difference_grads": "gradcheck", "gradient_check": "gradcheck", "truncation_errors": "gradcheck",
    "log_loss_grad_norms": "gradient_norms",
    "init_params": "init", "init_recurrent": "init",
    "inspect_path": "inspect",
    "GRUTrace": "gru", "forward_gru": "gru", "gru_cell": "gru",
    "JacobianNorms": "jacobian_norms", "fit_growth_rate": "jacobian_norms",
    "jacobian_norms": "jacobian_norms",
    "LSTMTrace": "lstm", "cell_state_trace": "lstm", "exact_cell_state_norms": "lstm", "forward_lstm": "lstm",
    "lstm_cell": "lstm",
    "largest_lyapunov": "lyapunov", "lyapunov_exponents": "lyapunov",
    "MeanField": "mean_field", "compute_mean_field": "mean_field", "critical_gain": "mean_field",
    "PARAM_NAMES": "params", "RNNParams": "params",
    "forward": "rnn", "rnn_cell": "rnn",
    "RunResult": "runner", "analyse": "runner", "build_model": "runner", "write_run": "runner",
    "eigenvalues": "spectrum", "sigma_max": "spectrum", "singular_values": "spectrum",
    "spectral_radius": "spectrum", "spectrum_table": "spectrum",
    "load_spec": "sweep", "run_sweep": "sweep",
    "TASKS": "tasks", "get_task": "tasks",
    "Trace": "trace",
    "TrainConfig": "training", "TrainResult": "training", "train": "training",
    "load_inputs": "weights", "load_weights": "weights", "save_weights": "weights",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """Import an exported name's submodule on first use (or a submodule: ``gradlab.schema``)."""
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    elif not name.startswith("_"):
        try:
            value = import_module(f".{name}", __name__)
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


class _Package(types.ModuleType):
    """The gradlab package, whose function ``jacobian_norms`` shares its name with a submodule.

    Importing a submodule sets it as an attribute of the package; this keeps
    ``gradlab.jacobian_norms`` the function, as when every name was imported
    eagerly, whoever imports :mod:`gradlab.jacobian_norms` first.
    """

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
