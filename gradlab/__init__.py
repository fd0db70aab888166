"""gradlab: show, measure and explain vanishing and exploding gradients in RNNs.

The public API, in the order of the pipeline::

    init_params / load_weights  →  forward (Trace)  →  jacobian_norms, spectrum
    loss_and_grads (BPTT)  →  gradient_check / truncation_errors
    RunConfig  →  analyse  →  write_run
    get_task / TrainConfig  →  train (clip_by_global_norm, clip_by_value)
    sweep file  →  run_sweep  →  inspect_path
    init_gated_params  →  forward_lstm / forward_gru  →  lyapunov_exponents  ⟷  mean_field
"""
__version__ = "0.1.0"

from .activations import ACTIVATIONS, Activation, get_activation
from .bptt import Gradients, loss_and_grads, loss_value, output_errors
from .clipping import chain, clip_by_global_norm, clip_by_value, global_norm, no_clipping
from .config import RunConfig
from .errors import GradlabError
from .gated import GatedParams, forward_gated, init_gated_params, load_gated_weights, save_gated_weights
from .gradcheck import finite_difference_grads, gradient_check, truncation_errors
from .gradient_norms import log_loss_grad_norms
from .init import init_params, init_recurrent
from .inspect import inspect_path
from .gru import GRUTrace, forward_gru, gru_cell
from .jacobian_norms import JacobianNorms, fit_growth_rate, jacobian_norms
from .lstm import LSTMTrace, cell_state_trace, exact_cell_state_norms, forward_lstm, lstm_cell
from .lyapunov import largest_lyapunov, lyapunov_exponents
from .mean_field import MeanField, compute_mean_field, critical_gain
from .params import PARAM_NAMES, RNNParams
from .rnn import forward, rnn_cell
from .runner import RunResult, analyse, build_model, write_run
from .spectrum import eigenvalues, sigma_max, singular_values, spectral_radius, spectrum_table
from .sweep import load_spec, run_sweep
from .tasks import TASKS, get_task
from .trace import Trace
from .training import TrainConfig, TrainResult, train
from .weights import load_inputs, load_weights, save_weights
