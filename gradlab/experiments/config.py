"""The configuration of one analysis run, validated where it arrives.

A :class:`RunConfig` is what ``gradlab run`` and ``gradlab check`` build from
their options and what a sweep builds from each grid point, so all three
share one set of names, defaults and error messages.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields

from ..analysis.jacobian_norms import end_steps
from ..analysis.losses import LOSS_STEPS, LOSSES
from ..cells import CELLS, make_cell
from ..cells.init import check_initial_network
from ..errors import GradlabError, check_choice, check_positive_int, config_from_dict


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one instrumented forward/backward pass.

    Attributes
    ----------
    hidden : int
        Hidden size n.
    inputs : int
        Input size d (the vocabulary size when ``tokens``).
    outputs : int or None
        Output size m; defaults to ``inputs``.
    steps : int
        Sequence length T.
    batch : int
        Number of sequences B.
    activation : {"tanh", "sigmoid", "relu", "linear"}
    init : {"gaussian", "orthogonal", "identity"}
    radius : float
        Target ρ(W_hh) (or σ_max with ``scale_by="sigma_max"``).
    scale_by : {"radius", "sigma_max"}
    input_scale : float
        Standard deviation of each input's drive W_xh x_t per unit.
    seed : int
        Seeds weights, inputs and targets (through independent streams).
    pairs : {"last", "all", "stride:K"}
    tokens : bool
        Inputs are token ids (one-hot), as in the tutorial's language model.
    loss : {"mse", "xent"} or None
        Defaults to ``xent`` for tokens and ``mse`` otherwise.
    loss_steps : {"all", "last"}
    cell : {"rnn", "lstm", "gru"}
        Gated cells (PyTorch ``nn.LSTM``/``nn.GRU``) have fixed nonlinearities,
        so ``activation`` must stay ``tanh`` for them; see :mod:`gradlab.gated`.
    weights : str or None
        ``.npz`` file with PyTorch ``nn.RNN`` names; replaces the random init.
    input_seq : str or None
        ``.npy`` file of inputs, (T, d) / (B, T, d) float or (T,) / (B, T) int.
    """

    hidden: int = 32
    inputs: int = 4
    outputs: int | None = None
    steps: int = 100
    batch: int = 4
    activation: str = "tanh"
    init: str = "gaussian"
    radius: float = 1.0
    scale_by: str = "radius"
    input_scale: float = 1.0
    seed: int = 0
    pairs: str = "last"
    tokens: bool = False
    loss: str | None = None
    loss_steps: str = "all"
    cell: str = "rnn"
    weights: str | None = None
    input_seq: str | None = None

    def __post_init__(self):
        for name in ("hidden", "inputs", "steps", "batch"):
            check_positive_int(getattr(self, name), name)
        if self.outputs is not None:
            check_positive_int(self.outputs, "outputs")
        check_initial_network(self)
        check_choice(self.loss_steps, LOSS_STEPS, "loss_steps")
        make_cell(self.cell, self.activation)    # an unknown cell, or a φ the cell does not take, fails here
        if self.loss is not None:
            check_choice(self.loss, LOSSES, "loss")
        if not isinstance(self.tokens, bool):
            raise GradlabError(f"tokens must be true or false, got {self.tokens!r}")
        end_steps(self.pairs, 1)  # validates the spec

    @property
    def n_outputs(self) -> int:
        return self.inputs if self.outputs is None else self.outputs

    @property
    def loss_name(self) -> str:
        return self.loss or ("xent" if self.tokens else "mse")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "RunConfig":
        """Build from a plain dict (a sweep point); unknown keys are an error."""
        return config_from_dict(cls, values, "run")
