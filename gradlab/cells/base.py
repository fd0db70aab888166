"""The Cell protocol: what every recurrent cell gives the rest of gradlab.

A *cell* computes one step s_t = F(s_{t−1}, x_t) and its local derivative side
by side (micrograd/equinox style); its forward pass over a batch records a
*trace*, the one record of that pass, from which every analysis reads. The
vanilla RNN (:mod:`gradlab.cells.rnn`), the LSTM (:mod:`gradlab.cells.lstm`)
and the GRU (:mod:`gradlab.cells.gru`) are three implementations; the
registry :data:`gradlab.cells.CELLS` maps ``--cell NAME`` to one. Nothing
above this layer branches on a cell's name.

Symbols (every cell)::

    B  batch size     T  sequence length     d  input size     n  hidden size
    s  state size (n for the RNN and GRU, 2n for the LSTM's (h, C))
    m  read-out size: o_t = W_hy h_t + b_y reads the hidden part h_t of s_t
    J_t = ∂s_t/∂s_{t−1}   (s × s)     the step Jacobian, never stored densely
    K_t = ∂s_t/∂x_t       (s × d)     the input Jacobian (stacked layers chain it)

Steps are numbered t = 1 … T; index t of a (B, T + 1, ·) array is step t's
state (index 0 is s_0), index t − 1 of a (B, T, ·) array belongs to step t.

The protocol
------------
A cell (:class:`Cell`) is a small object holding the hyperparameters that
are not weights (the RNN's activation φ); its parameters are a frozen
dataclass with the read-out ``W_hy``, ``b_y``, sizes ``n``, ``d``, ``m``,
``replace(**arrays)`` and ``as_dict()``. A trace (:class:`StateTrace`) offers

==============================  ==================================================
``B, T, n, state_size``         sizes
``x``, ``h``, ``states()``      inputs; hidden states (B, T + 1, n); s_t (B, T + 1, s)
``right_multiply(P, t)``        P J_t for P (B, r, s), without forming J_t
``vjp(v, t)``                   v J_t for v (B, s) (the row form of J_tᵀ v)
``jacobian(t)``                 dense J_t, (B, s, s)
``input_right_multiply(P, t)``  P K_t for P (B, r, s): (B, r, d)
``param_grads(dS)``             Σ_t (∂s_t/∂θ)ᵀ λ_t for the adjoints λ_t = dS[:, t]
``embed_h(g)``                  a gradient w.r.t. h placed in the state layout
``step_norm_bounds()``          bounds c_t ≥ ‖J_t‖₂, (B, T) (inf when unknown)
``kink_sides()``                which side of a kink of φ each unit is on, or None
==============================  ==================================================

so BPTT (:mod:`gradlab.analysis.bptt`), Jacobian-product norms, Lyapunov
exponents and the stacked layers work for every cell unchanged.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from ..errors import GradlabError


@runtime_checkable
class Cell(Protocol):
    """One recurrent cell: its name, its parameters and its instrumented forward pass.

    Attributes
    ----------
    name : str
        The registry key (``--cell NAME``).
    param_names : tuple of str
        The cell's own parameters (the read-out ``W_hy``, ``b_y`` comes after).
    """

    @property
    def name(self) -> str: ...

    @property
    def param_names(self) -> tuple[str, ...]: ...

    def init_params(self, n: int, d: int, m: int | None = None, init: str = "gaussian", radius: float = 1.0,
                    rng: np.random.Generator | None = None, scale_by: str = "radius",
                    input_scale: float = 1.0) -> Any:
        """Random parameters: recurrent blocks with an exact spectral scale (:mod:`gradlab.cells.init`)."""

    def from_state_dict(self, arrays: dict[str, np.ndarray], source: str, rng: np.random.Generator | None = None,
                        m: int | None = None) -> Any:
        """Parameters from PyTorch state-dict arrays (``weight_ih_l0``, …, ``fc.weight``) read from ``source``."""

    def state_dict(self, params: Any) -> dict[str, np.ndarray]:
        """The parameters under PyTorch's names, loadable into the matching ``nn`` module."""

    def forward(self, params: Any, x: np.ndarray, s0: np.ndarray | None = None) -> StateTrace:
        """Run over a batch x, (B, T, d) floats or (B, T) token ids, from s0 (B, s) (zeros by default)."""

    def recurrent_blocks(self, params: Any) -> dict[str, np.ndarray]:
        """The n × n recurrent matrices whose spectra are reported (``W_hh`` for the RNN, one per gate)."""


class StateTrace:
    """What every trace derives from its hidden states ``h`` and its ``right_multiply``.

    Subclasses are frozen dataclasses with fields ``x`` and ``h`` (B, T + 1, n)
    at least, and define ``state_size``, ``states``, ``right_multiply``,
    ``input_right_multiply`` and ``param_grads``; the rest has defaults here
    that a cell may replace by something faster.
    """

    if TYPE_CHECKING:      # declared for type checkers only: each subclass has them as fields or properties
        @property
        def x(self) -> np.ndarray: ...

        @property
        def h(self) -> np.ndarray: ...

    @property
    def B(self) -> int:
        return self.h.shape[0]

    @property
    def T(self) -> int:
        return self.h.shape[1] - 1

    @property
    def n(self) -> int:
        return self.h.shape[2]

    @property
    def state_size(self) -> int:
        raise NotImplementedError

    def states(self) -> np.ndarray:
        """s_0 … s_T, (B, T + 1, s)."""
        raise NotImplementedError

    def right_multiply(self, P: np.ndarray, t: int) -> np.ndarray:
        """P J_t for P of shape (B, r, s)."""
        raise NotImplementedError

    def input_right_multiply(self, P: np.ndarray, t: int) -> np.ndarray:
        """P K_t = P ∂s_t/∂x_t for P of shape (B, r, s): (B, r, d) (real inputs only)."""
        raise NotImplementedError

    def param_grads(self, dS: np.ndarray) -> dict[str, np.ndarray]:
        """Σ_t (∂s_t/∂θ |_{s_{t−1}, x_t})ᵀ λ_t for every parameter θ of the cell.

        ``dS`` (B, T + 1, s) holds the adjoint λ_t reaching s_t at index t
        (index 0 is not used): ∂L/∂s_t for exact BPTT, the truncated sums for
        truncated BPTT. Returns arrays shaped like the parameters.
        """
        raise NotImplementedError

    def vjp(self, v: np.ndarray, t: int) -> np.ndarray:
        """Row-vector product v J_t = (J_tᵀ v)ᵀ for v of shape (B, s)."""
        return self.right_multiply(v[:, None, :], t)[:, 0]

    def jacobian(self, t: int) -> np.ndarray:
        """Dense step Jacobian J_t = ∂s_t/∂s_{t−1}, (B, s, s), built from ``right_multiply``."""
        s = self.state_size
        return self.right_multiply(np.broadcast_to(np.eye(s), (self.B, s, s)), t)

    def embed_h(self, g_h: np.ndarray) -> np.ndarray:
        """Place a gradient with respect to h, (..., n), into the state layout (..., s)."""
        if self.state_size == g_h.shape[-1]:
            return g_h
        out = np.zeros(g_h.shape[:-1] + (self.state_size,))
        out[..., :g_h.shape[-1]] = g_h
        return out

    def step_norm_bounds(self) -> np.ndarray:
        """Upper bounds c_t ≥ ‖J_t‖₂ per sequence and step, (B, T); inf where none is known."""
        return np.full((self.B, self.T), np.inf)

    def kink_sides(self) -> np.ndarray | None:
        """Where the step map is not differentiable: an array that changes when a unit crosses a kink.

        ``None`` for a smooth cell (tanh, sigmoid, the gates). Two passes whose
        arrays differ have crossed a kink (a ReLU unit switched on or off), so
        a finite difference between them is not a derivative.
        """
        return None

    def right_multiply_many(self, P: np.ndarray, steps: np.ndarray, scale: np.ndarray, out: np.ndarray) -> None:
        """out[e] ← P[e] J_{steps[e]} / scale[e] for stacks P, out of shape (E, B, r, s).

        ``scale`` (E, B) divides each product (ln of it is carried by the
        caller). ``out`` may be ``P``. A cell whose J_t has a cheap stacked
        form (the RNN) overrides this to do it in one call.
        """
        for e, t in enumerate(steps):
            out[e] = self.right_multiply(P[e], int(t)) / scale[e][:, None, None]

    def scaled_jacobians(self, steps: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """J_t / scale for each t of ``steps``: (E, B, s, s), scale (E, B)."""
        return np.stack([self.jacobian(int(t)) / scale[e][:, None, None] for e, t in enumerate(steps)])


def check_inputs(x: np.ndarray, d: int) -> np.ndarray:
    """Validate a batch of inputs against input size ``d``; return it as (B, T[, d]).

    Real inputs are float64 (T, d) / (B, T, d); integer token ids (T,) / (B, T)
    lie in [0, d).
    """
    x = np.asarray(x)
    shape = x.shape      # as given, for the messages
    if np.issubdtype(x.dtype, np.integer):
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2:
            raise GradlabError(f"token inputs must have shape (T,) or (B, T), got {shape}")
        if x.size and (x.min() < 0 or x.max() >= d):
            raise GradlabError(f"token ids must lie in [0, {d}), got range [{x.min()}, {x.max()}]")
    else:
        x = x.astype(np.float64, copy=False)
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[2] != d:
            raise GradlabError(f"inputs must have shape (T, {d}) or (B, T, {d}), got {shape}")
        if not np.all(np.isfinite(x)):
            raise GradlabError("inputs contain non-finite values (nan or inf)")
    if x.shape[1] < 1:
        raise GradlabError("input sequence is empty (T = 0)")
    return x


def input_drive(W: np.ndarray, x: np.ndarray) -> np.ndarray:
    """W x_t for every step: (B, T, rows of W).

    Real inputs ``x`` (B, T, d) are multiplied; integer token ids (B, T) pick
    the column ``W[:, x_t]``, which is W times the one-hot vector.
    """
    if np.issubdtype(x.dtype, np.integer):
        return W.T[x]
    return x @ W.T


def input_weight_grad(dZ: np.ndarray, x: np.ndarray, d: int) -> np.ndarray:
    """Σ_t dZ_tᵀ x_t, the gradient of an input weight matrix (rows, d) from dZ (B, T, rows).

    For token ids x (B, T) the column x_t receives dZ_t (x_t is one-hot).
    """
    if np.issubdtype(x.dtype, np.integer):
        out = np.zeros((dZ.shape[-1], d))
        np.add.at(out.T, x.ravel(), dZ.reshape(-1, dZ.shape[-1]))
        return out
    return sum_outer(dZ, x)


def sum_outer(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Σ over batch and steps of the outer products u_t v_tᵀ: (B, S, p), (B, S, q) → (p, q).

    One BLAS matrix product; ``np.einsum`` without BLAS was half the cost of a
    training update at n = 128 (benchmarks/bench_training.py).
    """
    return u.reshape(-1, u.shape[-1]).T @ v.reshape(-1, v.shape[-1])


def initial_state(s0, B: int, s: int) -> np.ndarray:
    """s0 as a (B, s) array (zeros when None), or a one-line error naming its shape."""
    if s0 is None:
        return np.zeros((B, s))
    s0 = np.asarray(s0, dtype=np.float64)
    if s0.shape == (s,):
        s0 = np.broadcast_to(s0, (B, s))
    if s0.shape != (B, s):
        raise GradlabError(f"initial state must have shape ({B}, {s}) or ({s},), got {s0.shape}")
    return s0


def read_readout(arrays: dict, n: int, d: int, rng: np.random.Generator | None, m: int | None):
    """``fc.weight``/``fc.bias`` from a weights file, or W_hy ~ N(0, 1/n) (m outputs, default d) and b_y = 0."""
    if "fc.weight" in arrays:
        W_hy = arrays["fc.weight"]
        return W_hy, arrays.get("fc.bias", np.zeros(W_hy.shape[0] if W_hy.ndim == 2 else 0))
    rng = np.random.default_rng() if rng is None else rng
    m = d if m is None else m
    return rng.standard_normal((m, n)) / np.sqrt(n), np.zeros(m)
