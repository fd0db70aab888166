"""Cells: one recurrent step and its local derivative, and the trace a forward pass records.

The layer above :mod:`gradlab.io`: activations (:mod:`~gradlab.cells.activations`),
initialisers (:mod:`~gradlab.cells.init`), the Cell protocol
(:mod:`~gradlab.cells.base`), the vanilla RNN, LSTM and GRU
(:mod:`~gradlab.cells.rnn`, :mod:`~gradlab.cells.lstm`, :mod:`~gradlab.cells.gru`,
sharing :mod:`~gradlab.cells.gated`) and weights files (:mod:`~gradlab.cells.weights`).

:data:`CELLS` is the registry behind ``--cell NAME``: adding a cell is one
module implementing :class:`~gradlab.cells.base.Cell` plus one line here.
"""
from __future__ import annotations

from dataclasses import fields, is_dataclass
from importlib import import_module
from typing import TYPE_CHECKING

from ..errors import GradlabError, check_choice, check_positive_int

if TYPE_CHECKING:
    from .activations import Activation
    from .base import Cell

# name → the cell class, as "module:Class" of this package (imported on first use) or the class itself
CELLS: dict[str, object] = {
    "rnn": "rnn:RNNCell",
    "lstm": "lstm:LSTMCell",
    "gru": "gru:GRUCell",
}


def cell_class(name: str) -> type:
    """The class registered as ``name`` in :data:`CELLS` (one-line error for an unknown name)."""
    check_choice(name, CELLS, "cell")
    entry = CELLS[name]
    if isinstance(entry, str):
        module, attr = entry.split(":")
        entry = getattr(import_module(f".{module}", __name__), attr)
    return entry


def takes_activation(cls) -> bool:
    """Whether a cell class has a choosable nonlinearity φ (a dataclass field ``activation``)."""
    return is_dataclass(cls) and "activation" in {f.name for f in fields(cls)}


def cell_phrase(name: str) -> str:
    """'an LSTM', 'a GRU', 'an RNN': a cell's name with its article, for messages."""
    return {"lstm": "an LSTM", "gru": "a GRU", "rnn": "an RNN"}.get(name, f"a {name} cell")


def make_cell(name: str, activation: str | Activation = "tanh", layers: int = 1) -> Cell:
    """The cell ``--cell NAME --activation φ --layers L`` asks for.

    Gated cells have fixed sigmoid/tanh gates, so any φ but ``tanh`` (the
    default) is refused for them. ``layers`` > 1 stacks L layers of the cell
    (:class:`~gradlab.cells.stacked.StackedCell`).
    """
    check_positive_int(layers, "layers")
    cls = cell_class(name)
    if takes_activation(cls):
        cell = cls(activation=activation)
    elif activation != "tanh":
        raise GradlabError(f"activation {activation!r} applies to cells with a choosable φ ("
                           f"{', '.join(n for n in CELLS if takes_activation(cell_class(n)))}); "
                           f"{cell_phrase(name)} has fixed sigmoid/tanh gates")
    else:
        cell = cls()
    if layers == 1:
        return cell
    from .stacked import StackedCell

    return StackedCell(cell, layers)
