"""The configuration of one analysis run, validated where it arrives.

A :class:`RunConfig` is what ``gradlab run`` and ``gradlab check`` build from
their options and what a sweep builds from each grid point, so all three
share one set of names, defaults and error messages.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, fields
from types import SimpleNamespace

from ..analysis.jacobian_norms import end_steps
from ..analysis.losses import LOSS_STEPS, LOSSES
from ..cells import CELLS, make_cell
from ..cells.init import check_initial_network
from ..cells.weights import check_scale
from ..errors import GradlabError, check_choice, check_positive_int, config_from_dict

# Fields that only shape random weights: a weights file replaces them (as it sets n and d).
INIT_FIELDS = ("init", "radius", "scale_by", "input_scale")
# Fields a file sets, so a sweep point may not give them beside it (they would be swept, or fixed, unused).
SET_BY_FILE = {"weights": ("hidden", "inputs") + INIT_FIELDS, "input_seq": ("steps", "batch")}
LAYOUTS = ("btd", "tbd")


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
    activation : {"tanh", "sigmoid", "relu", "linear"} or None
        φ; ``None`` means tanh, except with a vanilla-RNN ``weights`` file,
        which must then record its own (:attr:`activation_from_file`).
    init : {"gaussian", "orthogonal", "identity"}
    radius : float
        Target ρ(W_hh) (or σ_max with ``scale_by="sigma_max"``), in [1e-300, 1e300].
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
    layers : int
        Stacked layers L (PyTorch ``num_layers``); the state is every layer's state.
    cell : {"rnn", "lstm", "gru"}
        Gated cells (PyTorch ``nn.LSTM``/``nn.GRU``) have fixed nonlinearities,
        so ``activation`` must stay ``tanh`` for them; see :mod:`gradlab.gated`.
    weights : str or None
        ``.npz`` file with PyTorch ``nn.RNN`` names; replaces the random init.
    input_seq : str or None
        ``.npy`` file of inputs, (T, d) / (B, T, d) float or (T,) / (B, T) int.
    layout : {"btd", "tbd"}
        Axis order of a 3-D ``input_seq`` (and of 2-D token ids): (B, T, d),
        PyTorch's ``batch_first=True``, or (T, B, d), PyTorch's default.
    """

    hidden: int = 32
    inputs: int = 4
    outputs: int | None = None
    steps: int = 100
    batch: int = 4
    activation: str | None = None
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
    layers: int = 1
    weights: str | None = None
    input_seq: str | None = None
    layout: str = "btd"

    def __post_init__(self):
        for name in ("hidden", "inputs", "steps", "batch"):
            check_positive_int(getattr(self, name), name)
        if self.outputs is not None:
            check_positive_int(self.outputs, "outputs")
        for name in ("weights", "input_seq"):
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                object.__setattr__(self, name, os.fspath(value))
            elif value is not None and not isinstance(value, str):
                raise GradlabError(f"{name} must be a file name (a string), got {value!r}")
        if self.activation is None and not self.activation_from_file:
            object.__setattr__(self, "activation", "tanh")
        check_initial_network(SimpleNamespace(**{**vars(self), "activation": self.activation or "tanh"}))
        for name in ("radius", "input_scale"):
            check_scale(getattr(self, name), name)
        check_choice(self.layout, LAYOUTS, "layout")
        check_choice(self.loss_steps, LOSS_STEPS, "loss_steps")
        make_cell(self.cell, self.activation or "tanh", self.layers)   # an unknown cell, a φ it does not take
        if self.loss is not None:
            check_choice(self.loss, LOSSES, "loss")
        if not isinstance(self.tokens, bool):
            raise GradlabError(f"tokens must be true or false, got {self.tokens!r}")
        end_steps(self.pairs, 1)  # validates the spec

    @property
    def activation_from_file(self) -> bool:
        """φ is to be read from the weights file (``activation=None`` with a vanilla-RNN ``weights`` file).

        A state dict does not say which φ its network was trained with; with
        no ``activation`` given, the file must record it (``nonlinearity``),
        never tanh by default.
        """
        return self.activation is None and self.weights is not None and self.cell == "rnn"

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
        """Build from a plain dict (a sweep point); unknown keys are an error.

        So are the keys a file sets (:data:`SET_BY_FILE`: ``hidden``,
        ``inputs`` and the init fields beside ``weights``; ``steps``,
        ``batch`` beside ``input_seq``): given, they would not be used.
        """
        for source, names in SET_BY_FILE.items():
            if values.get(source) is None:
                continue
            given = [name for name in names if name in values]
            if given:
                what = "weights file" if source == "weights" else "input file"
                raise GradlabError(f"{given[0]} = {values[given[0]]!r} is not used: the {what} "
                                   f"{values[source]!r} sets {', '.join(names)}; leave {given[0]} out")
        return config_from_dict(cls, values, "run")
