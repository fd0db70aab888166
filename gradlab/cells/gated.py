"""Parameters of gated cells (LSTM, GRU) in PyTorch's layout, and what they share.

PyTorch stacks the gates' weights into one matrix, in a fixed order
(``nn.LSTM``: i, f, g, o; ``nn.GRU``: r, z, n), so for hidden size n and
G gates::

    W_ih = weight_ih_l0   (G n, d)     W_hh = weight_hh_l0   (G n, n)
    b_ih = bias_ih_l0     (G n,)       b_hh = bias_hh_l0     (G n,)

and the block of gate ``q`` is rows ``[j n, (j + 1) n)`` where j is the
gate's position. The read-out o_t = W_hy h_t + b_y is as for the vanilla RNN.

The cells themselves are in :mod:`gradlab.cells.lstm` and
:mod:`gradlab.cells.gru`; both implement the Cell protocol of
:mod:`gradlab.cells.base`, so every analysis works on them unchanged.

Initialisation (``gradlab run --cell lstm|gru``) reuses the vanilla RNN's
initialisers block by block, so that ``--init``/``--radius`` mean the same
thing for every cell: each n × n recurrent block W_hq is drawn by
:func:`gradlab.init.init_recurrent` (exact ρ, or σ_max, equal to ``radius``),
each input block like W_xh (N(0, input_scale²/d)), biases zero.
(PyTorch's default, U(−1/√n, 1/√n) for everything, gives blocks with
ρ ≈ 1/√3 ≈ 0.58; load such weights with ``--weights``.)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import GradlabError, PathLike, check_choice
from .init import init_recurrent

if TYPE_CHECKING:
    from .base import StateTrace

GATES = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}
GATED_PARAM_NAMES = ("W_ih", "W_hh", "b_ih", "b_hh", "W_hy", "b_y")


@dataclass(frozen=True)
class GatedParams:
    """Weights of a one-layer LSTM or GRU (PyTorch names and gate order) with a read-out.

    Attributes
    ----------
    cell : {"lstm", "gru"}
    W_ih : (G n, d) input weights of the G gates, stacked in PyTorch's order
    W_hh : (G n, n) recurrent weights of the G gates
    b_ih, b_hh : (G n,) biases (kept apart: the GRU's b_hn sits inside r ⊙ (·))
    W_hy : (m, n) read-out weights
    b_y : (m,) read-out bias
    """

    cell: str
    W_ih: np.ndarray
    W_hh: np.ndarray
    b_ih: np.ndarray
    b_hh: np.ndarray
    W_hy: np.ndarray
    b_y: np.ndarray

    def __post_init__(self):
        check_choice(self.cell, GATES, "cell")
        G = len(GATES[self.cell])
        n = self.W_hh.shape[1] if self.W_hh.ndim == 2 else -1
        d = self.W_ih.shape[1] if self.W_ih.ndim == 2 else -1
        m = self.W_hy.shape[0] if self.W_hy.ndim == 2 else -1
        expected = {"W_hh": (G * n, n), "W_ih": (G * n, d), "b_ih": (G * n,), "b_hh": (G * n,),
                    "W_hy": (m, n), "b_y": (m,)}
        for name, shape in expected.items():
            value = getattr(self, name)
            if value.shape != shape or -1 in shape:
                raise GradlabError(f"{self.cell} {name} has shape {value.shape}, expected {shape} "
                                   f"({G} gates {', '.join(GATES[self.cell])})")
            if not np.all(np.isfinite(value)):
                raise GradlabError(f"{self.cell} {name} contains non-finite values (nan or inf)")

    @property
    def n(self) -> int:
        return self.W_hh.shape[1]

    @property
    def d(self) -> int:
        return self.W_ih.shape[1]

    @property
    def m(self) -> int:
        return self.W_hy.shape[0]

    def block(self, name: str, gate: str) -> np.ndarray:
        """The rows of ``W_ih``/``W_hh``/``b_ih``/``b_hh`` belonging to one gate, e.g. ``block("W_hh", "f")``."""
        j = GATES[self.cell].index(gate)
        return getattr(self, name)[j * self.n:(j + 1) * self.n]

    def as_dict(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in GATED_PARAM_NAMES}

    def replace(self, **arrays: np.ndarray) -> "GatedParams":
        return dataclasses.replace(self, **arrays)


def init_gated_params(cell: str, n: int, d: int, m: int | None = None, init: str = "gaussian",
                      radius: float = 1.0, rng: np.random.Generator | None = None,
                      scale_by: str = "radius", input_scale: float = 1.0) -> GatedParams:
    """Random gated-cell parameters, matched block by block to :func:`gradlab.init_params`.

    Every recurrent block W_hq (n × n) comes from
    :func:`gradlab.init.init_recurrent` with the given ``init``, ``radius`` and
    ``scale_by``; every input block has N(0, input_scale²/d) entries; biases
    are zero; W_hy is N(0, 1/n). ``m`` defaults to ``d``.
    """
    check_choice(cell, GATES, "cell")
    rng = np.random.default_rng() if rng is None else rng
    G = len(GATES[cell])
    W_hh = np.concatenate([init_recurrent(n, init, radius, rng, scale_by) for _ in range(G)])
    m = d if m is None else m
    return GatedParams(
        cell=cell,
        W_ih=rng.standard_normal((G * n, d)) * (input_scale / np.sqrt(d)),
        W_hh=W_hh,
        b_ih=np.zeros(G * n),
        b_hh=np.zeros(G * n),
        W_hy=rng.standard_normal((m, n)) / np.sqrt(n),
        b_y=np.zeros(m),
    )


def load_gated_weights(path: PathLike, cell: str, rng: np.random.Generator | None = None,
                       m: int | None = None) -> GatedParams:
    """Read a one-layer ``nn.LSTM`` / ``nn.GRU`` state dict saved with ``numpy.savez`` (:func:`gradlab.load_params`).

    Keys ``weight_ih_l0`` (G n, d) and ``weight_hh_l0`` (G n, n) are required;
    ``bias_ih_l0``/``bias_hh_l0`` default to zero and the read-out
    ``fc.weight``/``fc.bias`` is drawn N(0, 1/n) from ``rng`` when absent, as
    for :func:`gradlab.load_weights`.
    """
    from . import make_cell
    from .weights import load_params

    check_choice(cell, GATES, "cell")
    return load_params(make_cell(cell), path, rng, m)


def save_gated_weights(path: PathLike, params: GatedParams) -> None:
    """Write gated-cell parameters with PyTorch names (loadable into ``nn.LSTM``/``nn.GRU``)."""
    np.savez(path, weight_ih_l0=params.W_ih, weight_hh_l0=params.W_hh, bias_ih_l0=params.b_ih,
             bias_hh_l0=params.b_hh, **{"fc.weight": params.W_hy, "fc.bias": params.b_y})


def forward_gated(params: GatedParams, x: np.ndarray) -> StateTrace:
    """Run the cell ``params.cell`` over a batch: an :class:`~gradlab.cells.lstm.LSTMTrace` or :class:`~gradlab.cells.gru.GRUTrace`."""
    from . import make_cell

    return make_cell(params.cell).forward(params, x)


# The gate whose bias keeps the state: the LSTM's forget gate f, the GRU's update gate z
# (h_t = (1 − z) ⊙ n + z ⊙ h_{t−1} in PyTorch's convention, so z is the GRU's "keep" gate).
KEEP_GATE = {"lstm": "f", "gru": "z"}


def set_gate_biases(params: GatedParams, forget_bias: float | None = None, chrono_T: int | None = None,
                    rng: np.random.Generator | None = None) -> GatedParams:
    """Gated-cell parameters with the bias of the keep gate (:data:`KEEP_GATE`) set.

    Parameters
    ----------
    params : GatedParams
    forget_bias : float, optional
        The keep gate's bias b (Gers, Schmidhuber & Cummins 2000; b = 1 in
        Jozefowicz, Zaremba & Sutskever 2015): with σ(b) near 1 the state is
        carried over by default.
    chrono_T : int, optional
        Chrono initialisation (Tallec & Ollivier 2018, "Can recurrent neural
        networks warp time?") for dependencies up to T_max = chrono_T steps:
        b_keep ~ ln U(1, T_max − 1) per unit, and for the LSTM b_i = −b_f.
    rng : numpy.random.Generator
        Draws the chrono biases.

    Notes
    -----
    PyTorch adds ``bias_ih`` and ``bias_hh``; the whole bias is put in
    ``b_ih`` and the gate's ``b_hh`` block is zeroed, so the effective bias
    is exactly the one asked for.
    """
    n = params.n
    if (forget_bias is None) == (chrono_T is None):
        raise GradlabError("give exactly one of forget_bias and chrono_T")
    rng = np.random.default_rng() if rng is None else rng
    gates = GATES[params.cell]
    b_ih, b_hh = params.b_ih.copy(), params.b_hh.copy()

    def put(gate: str, values) -> None:
        j = gates.index(gate)
        b_ih[j * n:(j + 1) * n] = values
        b_hh[j * n:(j + 1) * n] = 0.0

    if chrono_T is not None:
        if chrono_T < 3:
            raise GradlabError(f"chrono initialisation needs T_max ≥ 3, got {chrono_T}")
        keep = np.log(rng.uniform(1.0, chrono_T - 1.0, size=n))
        put(KEEP_GATE[params.cell], keep)
        if params.cell == "lstm":
            put("i", -keep)
    else:
        put(KEEP_GATE[params.cell], float(forget_bias))
    return params.replace(b_ih=b_ih, b_hh=b_hh)
