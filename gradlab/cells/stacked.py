"""Stacked layers of any cell (PyTorch ``num_layers = L``), as one cell of the protocol.

Layer l reads the hidden state of layer l − 1 at the same step (layer 1 reads
x_t); the read-out reads the top layer. The state is every layer's state,
s_t = (s¹_t, …, s^L_t) (an LSTM layer's s^l is (h^l, C^l)), so the step
Jacobian J_t = ∂s_t/∂s_{t−1} is block lower-triangular and includes the paths
through the lower layers *of the same step*::

    ∂s^l_t/∂s^l_{t−1} = J^l_t                                 (the layer's own step Jacobian)
    ∂s^l_t/∂s^j_{t−1} = K^l_t ∂h^{l−1}_t/∂s^j_{t−1}, j < l     (K^l_t = ∂s^l_t/∂h^{l−1}_t, its input Jacobian)

Only the layers' own factors are stored. A row-vector product P J_t is taken
top-down: Q^L = P^L, and for l = L … 1

    (P J_t)^l = Q^l J^l_t,        Q^{l−1} = P^{l−1} + [Q^l K^l_t ; 0]     (into the h part of s^{l−1})

one ``right_multiply`` and one ``input_right_multiply`` per layer. The same
sweep turns the adjoints λ_t of the stacked state into each layer's total
adjoint Λ^l_t (which includes what the layers above, at step t, send down),
from which each layer's ``param_grads`` gives its parameter gradients.
PyTorch's weights of layer l are ``*_l{l−1}`` (``weight_hh_l1`` …).
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import numpy as np

from ..errors import GradlabError, check_positive_int
from .base import Cell, StateTrace, check_inputs, initial_state, read_readout

_LAYER_NAME = re.compile(r"^(.*)_l(\d+)$")


@dataclass(frozen=True)
class StackedParams:
    """The parameters of L stacked layers and the read-out of the top one.

    Attributes
    ----------
    layers : tuple
        Each layer's parameters (its own read-out is empty, shape (0, n)).
    W_hy : (m, n), b_y : (m,)
        The read-out of the top layer's h.
    """

    layers: tuple
    W_hy: np.ndarray
    b_y: np.ndarray

    @property
    def n(self) -> int:
        return self.layers[-1].n

    @property
    def d(self) -> int:
        return self.layers[0].d

    @property
    def m(self) -> int:
        return self.W_hy.shape[0]

    def as_dict(self) -> dict[str, np.ndarray]:
        """Every array under ``NAME_l{k}`` (k = 0 … L − 1, as PyTorch numbers layers), then ``W_hy``, ``b_y``."""
        out = {}
        for k, p in enumerate(self.layers):
            out.update({f"{name}_l{k}": v for name, v in p.as_dict().items() if name not in ("W_hy", "b_y")})
        return {**out, "W_hy": self.W_hy, "b_y": self.b_y}

    def replace(self, **arrays: np.ndarray) -> "StackedParams":
        layers = [dict() for _ in self.layers]
        top = {}
        for key, value in arrays.items():
            match = _LAYER_NAME.match(key)
            if match and int(match.group(2)) < len(self.layers):
                layers[int(match.group(2))][match.group(1)] = value
            elif key in ("W_hy", "b_y"):
                top[key] = value
            else:
                raise GradlabError(f"stacked parameters have no {key!r}")
        return dataclasses.replace(self, layers=tuple(p.replace(**a) if a else p for p, a in zip(self.layers, layers)),
                                   **top)


def _without_readout(params):
    """A layer's parameters with an empty read-out (the stack has one, on top)."""
    return params.replace(W_hy=np.zeros((0, params.n)), b_y=np.zeros(0))


@dataclass(frozen=True)
class StackedTrace(StateTrace):
    """Record of a stacked forward pass: each layer's own trace; s_t = (s¹_t, …, s^L_t).

    Attributes
    ----------
    x : (B, T, d) inputs of layer 1
    layers : tuple of traces, layer 1 first (layer l's inputs are layer l − 1's h_1 … h_T)
    """

    x: np.ndarray
    layers: tuple

    @property
    def h(self) -> np.ndarray:
        """The top layer's hidden states (what the read-out reads), (B, T + 1, n)."""
        return self.layers[-1].h

    @property
    def sizes(self) -> list[int]:
        return [tr.state_size for tr in self.layers]

    @property
    def offsets(self) -> list[int]:
        """Where each layer's state starts in s_t."""
        return list(np.cumsum([0] + self.sizes[:-1]))

    @property
    def state_size(self) -> int:
        return sum(self.sizes)

    def states(self) -> np.ndarray:
        return np.concatenate([tr.states() for tr in self.layers], axis=-1)

    def _blocks(self, P: np.ndarray) -> list[np.ndarray]:
        return [P[..., o:o + s] for o, s in zip(self.offsets, self.sizes)]

    def _top_down(self, P: np.ndarray, t: int) -> list[np.ndarray]:
        """Q^l for l = 1 … L: each layer's row vectors, with what the layers above send down at step t."""
        blocks = self._blocks(P)
        Q = [None] * len(self.layers)
        Q[-1] = blocks[-1]
        for l in range(len(self.layers) - 1, 0, -1):
            down = self.layers[l].input_right_multiply(Q[l], t)        # row vectors on h^{l−1}_t
            below = self.layers[l - 1]
            Q[l - 1] = blocks[l - 1] + below.embed_h(down)
        return Q

    def right_multiply(self, P: np.ndarray, t: int) -> np.ndarray:
        """P J_t for P (B, r, s) (module docstring), without forming J_t."""
        Q = self._top_down(P, t)
        return np.concatenate([tr.right_multiply(q, t) for tr, q in zip(self.layers, Q)], axis=-1)

    def vjp(self, v: np.ndarray, t: int) -> np.ndarray:
        return self.right_multiply(v[:, None, :], t)[:, 0]

    def input_right_multiply(self, P: np.ndarray, t: int) -> np.ndarray:
        """P ∂s_t/∂x_t: the top-down sweep, then layer 1's input Jacobian."""
        return self.layers[0].input_right_multiply(self._top_down(P, t)[0], t)

    def layer_adjoints(self, dS: np.ndarray) -> list[np.ndarray]:
        """Each layer's total adjoints Λ^l_t, (B, T + 1, s_l), from the stacked state's λ_t = dS[:, t]."""
        out = [np.zeros(dS.shape[:2] + (s,)) for s in self.sizes]
        for t in range(1, self.T + 1):
            for l, q in enumerate(self._top_down(dS[:, t, None, :], t)):
                out[l][:, t] = q[:, 0]
        return out

    def param_grads(self, dS: np.ndarray) -> dict[str, np.ndarray]:
        """Every layer's parameter gradients, ``NAME_l{k}``, from its total adjoints."""
        grads = {}
        for k, (tr, lam) in enumerate(zip(self.layers, self.layer_adjoints(dS))):
            grads.update({f"{name}_l{k}": g for name, g in tr.param_grads(lam).items()})
        return grads

    def embed_h(self, g_h: np.ndarray) -> np.ndarray:
        """A gradient w.r.t. the top layer's h placed in the stacked state layout."""
        out = np.zeros(g_h.shape[:-1] + (self.state_size,))
        out[..., self.offsets[-1]:self.offsets[-1] + g_h.shape[-1]] = g_h
        return out

    def kink_sides(self) -> np.ndarray | None:
        """Each layer's kink sides stacked, (L, B, T, n); None when φ has no kinks (every layer shares it)."""
        sides = [tr.kink_sides() for tr in self.layers]
        return None if any(s is None for s in sides) else np.stack(sides)


@dataclass(frozen=True)
class StackedCell:
    """L stacked layers of one cell (``nn.RNN``/``nn.LSTM``/``nn.GRU`` with ``num_layers = L``).

    Attributes
    ----------
    layer : Cell
        The cell of every layer (e.g. ``RNNCell("relu")``).
    L : int
        Number of layers (≥ 2; one layer is the cell itself).
    """

    layer: Cell
    L: int

    def __post_init__(self):
        check_positive_int(self.L, "layers", minimum=2)

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(f"{p}_l{k}" for k in range(self.L) for p in self.layer.param_names)

    @property
    def extra_tables(self) -> tuple[str, ...]:
        return ("layers",)

    def init_params(self, n: int, d: int, m: int | None = None, init: str = "gaussian", radius: float = 1.0,
                    rng: np.random.Generator | None = None, scale_by: str = "radius",
                    input_scale: float = 1.0) -> StackedParams:
        """Each layer drawn as the cell draws one (layer l ≥ 2 has input size n), then the top read-out."""
        rng = np.random.default_rng() if rng is None else rng
        layers = tuple(_without_readout(self.layer.init_params(n, d if k == 0 else n, 1, init, radius, rng,
                                                               scale_by, input_scale)) for k in range(self.L))
        m = d if m is None else m
        check_positive_int(m, "output size m")
        return StackedParams(layers, rng.standard_normal((m, n)) / np.sqrt(n), np.zeros(m))

    def from_state_dict(self, arrays: dict, source: str, rng: np.random.Generator | None = None,
                        m: int | None = None) -> StackedParams:
        """Layer k from the ``*_l{k}`` arrays (read as the cell reads ``*_l0``), the read-out from ``fc.*``."""
        layers = []
        for k in range(self.L):
            suffix = f"_l{k}"
            mine = {key[:-len(suffix)] + "_l0": v for key, v in arrays.items() if key.endswith(suffix)}
            if not mine:
                raise GradlabError(f"weights file {source!r} has no arrays of layer {k} (*{suffix}) for "
                                   f"{self.L} layers")
            n = mine["weight_hh_l0"].shape[-1] if "weight_hh_l0" in mine else 1
            mine.update({"fc.weight": np.zeros((0, n)), "fc.bias": np.zeros(0)})
            layers.append(self.layer.from_state_dict(mine, f"{source} (layer {k})", rng, 0))
        n = layers[-1].n
        for k in range(1, self.L):
            if layers[k].d != layers[k - 1].n:
                raise GradlabError(f"weights file {source!r}: layer {k} takes inputs of size {layers[k].d}, but "
                                   f"layer {k - 1} has hidden size {layers[k - 1].n}")
        W_hy, b_y = read_readout(arrays, n, layers[0].d, rng, m)
        return StackedParams(tuple(layers), W_hy, b_y)

    def state_dict(self, params: StackedParams) -> dict[str, np.ndarray]:
        out = {}
        for k, p in enumerate(params.layers):
            for key, v in self.layer.state_dict(p).items():
                if not key.startswith("fc."):
                    out[key.replace("_l0", f"_l{k}")] = v
        return {**out, "fc.weight": params.W_hy, "fc.bias": params.b_y}

    def forward(self, params: StackedParams, x: np.ndarray, s0: np.ndarray | None = None) -> StackedTrace:
        """Layer by layer over the whole sequence (layer l reads layer l − 1's h_1 … h_T).

        ``s0`` (B, s) is the stacked initial state (zeros by default).
        """
        x = check_inputs(x, params.d)
        if s0 is not None:
            # each layer's state size, from one step of it (the cell knows it, its parameters don't say)
            sizes = [self.layer.forward(p, np.zeros((1, 1, p.d))).state_size for p in params.layers]
            s0 = initial_state(s0, x.shape[0], sum(sizes))
            starts = np.cumsum([0] + sizes[:-1])
            parts = [s0[:, o:o + s] for o, s in zip(starts, sizes)]
        else:
            parts = [None] * len(params.layers)
        traces, inputs = [], x
        for p, part in zip(params.layers, parts):
            traces.append(self.layer.forward(p, inputs, part))
            inputs = traces[-1].h[:, 1:]
        return StackedTrace(x=x, layers=tuple(traces))

    def recurrent_blocks(self, params: StackedParams) -> dict[str, np.ndarray]:
        return {f"{name}_l{k}": W for k, p in enumerate(params.layers)
                for name, W in self.layer.recurrent_blocks(p).items()}
