"""The vanilla RNN cell (PyTorch ``nn.RNN`` convention, column vectors): parameters, step, trace.

Symbols (see also :mod:`gradlab.cells.base`)::

    a_t  = W_hh h_{t-1} + W_xh x_t + b_h        pre-activation      (B, n)
    h_t  = φ(a_t)                               state               (B, n)
    o_t  = W_hy h_t + b_y                       output              (B, m)
    J_t  = ∂h_t/∂h_{t-1} = diag(φ'(a_t)) W_hh   step Jacobian       (n, n)
    K_t  = ∂h_t/∂x_t     = diag(φ'(a_t)) W_xh   input Jacobian      (n, d)

The trace stores the Jacobian *factors* — the vectors φ'(a_t) and a
reference to W_hh — rather than T dense (n, n) matrices; a product with
J_t costs one scaled matrix product::

    P J_t = (P diag(φ'(a_t))) W_hh = (P * dphi_t[None, :]) @ W_hh

Parameter gradients from the adjoints λ_t = ∂L/∂h_t (:mod:`gradlab.analysis.bptt`)::

    ∂L/∂a_t = φ'(a_t) ⊙ λ_t,   ∂L/∂W_hh = Σ_t ∂L/∂a_t h_{t−1}ᵀ,   ∂L/∂W_xh = Σ_t ∂L/∂a_t x_tᵀ,
    ∂L/∂b_h = Σ_t ∂L/∂a_t
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..errors import GradlabError
from .activations import Activation, get_activation
from .base import (StateTrace, check_inputs, initial_state, input_drive, input_weight_grad, read_readout,
                   sum_outer)
from .init import init_recurrent

PARAM_NAMES = ("W_xh", "W_hh", "b_h", "W_hy", "b_y")


@dataclass(frozen=True)
class RNNParams:
    """Weights of a one-layer RNN with a linear read-out.

    Attributes
    ----------
    W_xh : (n, d) input weights
    W_hh : (n, n) recurrent weights
    b_h : (n,) hidden bias (PyTorch's ``bias_ih_l0 + bias_hh_l0``)
    W_hy : (m, n) output weights
    b_y : (m,) output bias
    """

    W_xh: np.ndarray
    W_hh: np.ndarray
    b_h: np.ndarray
    W_hy: np.ndarray
    b_y: np.ndarray

    def __post_init__(self):
        n = self.W_hh.shape[0] if self.W_hh.ndim == 2 else -1
        expected = {
            "W_hh": (n, n),
            "W_xh": (n, self.W_xh.shape[-1] if self.W_xh.ndim == 2 else -1),
            "b_h": (n,),
            "W_hy": (self.W_hy.shape[0] if self.W_hy.ndim == 2 else -1, n),
            "b_y": (self.W_hy.shape[0] if self.W_hy.ndim == 2 else -1,),
        }
        for name, shape in expected.items():
            value = getattr(self, name)
            if value.shape != shape or -1 in shape:
                raise GradlabError(f"{name} has shape {value.shape}, expected {shape}")
            if not np.all(np.isfinite(value)):
                raise GradlabError(f"{name} contains non-finite values (nan or inf)")

    @property
    def n(self) -> int:
        return self.W_hh.shape[0]

    @property
    def d(self) -> int:
        return self.W_xh.shape[1]

    @property
    def m(self) -> int:
        return self.W_hy.shape[0]

    def as_dict(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in PARAM_NAMES}

    def replace(self, **arrays: np.ndarray) -> "RNNParams":
        return dataclasses.replace(self, **arrays)


@dataclass(frozen=True)
class Trace(StateTrace):
    """Record of a vanilla-RNN forward pass over a batch; the state is h_t, size n.

    Attributes
    ----------
    x : (B, T, d) float or (B, T) int
        Inputs (token ids when integer).
    a : (B, T, n)
        Pre-activations a_t.
    h : (B, T + 1, n)
        States h_0 … h_T.
    dphi : (B, T, n)
        φ'(a_t), the diagonal of each step Jacobian's first factor.
    W_hh : (n, n)
        The recurrent matrix (shared, not copied).
    activation : Activation
    W_xh : (n, d), optional
        The input weights (shared), for the input Jacobian K_t.
    """

    x: np.ndarray
    a: np.ndarray
    h: np.ndarray
    dphi: np.ndarray
    W_hh: np.ndarray
    activation: Activation
    W_xh: np.ndarray | None = None

    @property
    def state_size(self) -> int:
        """Size of the state whose Jacobians are analysed (n for a vanilla RNN)."""
        return self.n

    def states(self) -> np.ndarray:
        return self.h

    def jacobian(self, t: int) -> np.ndarray:
        """Dense step Jacobian J_t = ∂h_t/∂h_{t-1} = diag(φ'(a_t)) W_hh, (B, n, n)."""
        return self.dphi[:, t - 1, :, None] * self.W_hh

    def right_multiply(self, P: np.ndarray, t: int) -> np.ndarray:
        """P J_t for a batch P of shape (B, r, n), without forming J_t."""
        return (P * self.dphi[:, t - 1, None, :]) @ self.W_hh

    def vjp(self, v: np.ndarray, t: int) -> np.ndarray:
        """Row-vector product v J_t = (J_tᵀ v)ᵀ for v of shape (B, n)."""
        return (v * self.dphi[:, t - 1]) @ self.W_hh

    def input_right_multiply(self, P: np.ndarray, t: int) -> np.ndarray:
        """P K_t = (P diag(φ'(a_t))) W_xh for P of shape (B, r, n): (B, r, d)."""
        if self.W_xh is None or np.issubdtype(self.x.dtype, np.integer):
            raise GradlabError("the input Jacobian needs real inputs and the trace's W_xh")
        return (P * self.dphi[:, t - 1, None, :]) @ self.W_xh

    def param_grads(self, dS: np.ndarray) -> dict[str, np.ndarray]:
        """∂L/∂W_xh, ∂L/∂W_hh, ∂L/∂b_h from the adjoints λ_t = dS[:, t] (module docstring)."""
        dA = dS[:, 1:] * self.dphi
        return {"W_xh": input_weight_grad(dA, self.x, self.W_xh.shape[1] if self.W_xh is not None else 0),
                "W_hh": sum_outer(dA, self.h[:, :-1]), "b_h": dA.sum(axis=(0, 1))}

    def step_norm_bounds(self) -> np.ndarray:
        """‖diag(φ'(a_t)) W_hh‖₂ ≤ max|φ'(a_t)| σ_max(W_hh), (B, T).

        With ‖P J‖ ≤ ‖P‖ ‖J‖ this certifies σ_max of products whose top
        singular values are exactly repeated (orthogonal or identity W_hh),
        where Ritz-value bounds cannot (:mod:`gradlab.analysis.jacobian_norms`).
        """
        return np.abs(self.dphi).max(axis=2) * np.linalg.norm(self.W_hh, 2)

    def kink_sides(self) -> np.ndarray | None:
        """Which side of φ's kinks each a_t lies on, (B, T, n); None for a smooth φ."""
        return self.activation.side_of_kinks(self.a)

    def right_multiply_many(self, P: np.ndarray, steps: np.ndarray, scale: np.ndarray, out: np.ndarray) -> None:
        """out[e] ← P[e] J_{steps[e]} / scale[e] as one stacked product (the scale folds into φ')."""
        dphi = self.dphi[:, steps - 1].transpose(1, 0, 2) / scale[:, :, None]      # (E, B, n)
        np.matmul(P * dphi[:, :, None, :], self.W_hh, out=out)

    def scaled_jacobians(self, steps: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """diag(φ'(a_t)) W_hh / scale for each t of ``steps``: (E, B, n, n), without an identity product."""
        return (self.dphi[:, steps - 1].transpose(1, 0, 2) / scale[:, :, None])[..., :, None] * self.W_hh


def rnn_cell(W_hh: np.ndarray, b_h: np.ndarray, act: Activation, h_prev: np.ndarray,
             u_t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step: a_t = W_hh h_{t-1} + u_t + b_h, h_t = φ(a_t), and φ'(a_t).

    Parameters
    ----------
    W_hh : (n, n)
    b_h : (n,)
    act : Activation
    h_prev : (B, n) state h_{t-1}
    u_t : (B, n) input drive W_xh x_t

    Returns
    -------
    a_t, h_t, dphi_t : each (B, n)
    """
    a = h_prev @ W_hh.T + u_t + b_h
    h, dphi = act.value_and_derivative(a)
    return a, h, dphi


@dataclass(frozen=True)
class RNNCell:
    """The vanilla RNN as a :class:`~gradlab.cells.base.Cell`: h_t = φ(W_hh h_{t−1} + W_xh x_t + b_h).

    Attributes
    ----------
    activation : str or Activation
        φ: tanh, sigmoid, relu or linear (:mod:`gradlab.cells.activations`).
    """

    activation: str | Activation = "tanh"
    name = "rnn"
    param_names = ("W_xh", "W_hh", "b_h")

    def __post_init__(self):
        get_activation(self.activation)         # an unknown name fails here, naming it

    @property
    def act(self) -> Activation:
        return get_activation(self.activation)

    def init_params(self, n: int, d: int, m: int | None = None, init: str = "gaussian", radius: float = 1.0,
                    rng: np.random.Generator | None = None, scale_by: str = "radius",
                    input_scale: float = 1.0) -> RNNParams:
        """Random RNN parameters: W_hh from :func:`~gradlab.cells.init.init_recurrent`, the rest small.

        ``W_xh`` has i.i.d. N(0, input_scale²/d) entries, ``W_hy`` N(0, 1/n); both
        biases start at zero. ``m`` defaults to ``d`` (next-symbol prediction).
        """
        from ..errors import check_positive_int

        check_positive_int(d, "input size d")
        m = d if m is None else m
        check_positive_int(m, "output size m")
        rng = np.random.default_rng() if rng is None else rng
        W_hh = init_recurrent(n, init, radius, rng, scale_by)
        return RNNParams(
            W_xh=rng.standard_normal((n, d)) * (input_scale / np.sqrt(d)),
            W_hh=W_hh,
            b_h=np.zeros(n),
            W_hy=rng.standard_normal((m, n)) / np.sqrt(n),
            b_y=np.zeros(m),
        )

    def from_state_dict(self, arrays: dict, source: str, rng: np.random.Generator | None = None,
                        m: int | None = None) -> RNNParams:
        """RNN parameters from ``nn.RNN`` arrays; b_h = ``bias_ih_l0 + bias_hh_l0``."""
        W_xh, W_hh = arrays["weight_ih_l0"], arrays["weight_hh_l0"]
        if W_hh.ndim != 2 or W_hh.shape[0] != W_hh.shape[1]:
            raise GradlabError(f"weight_hh_l0 in {source!r} must be square (n, n), got {W_hh.shape}")
        n = W_hh.shape[0]
        b_h = np.zeros(n)
        for key in ("bias_ih_l0", "bias_hh_l0"):
            if key in arrays:
                if arrays[key].shape != (n,):
                    raise GradlabError(f"{key} in {source!r} has shape {arrays[key].shape}, expected ({n},)")
                b_h = b_h + arrays[key]
        W_hy, b_y = read_readout(arrays, n, W_xh.shape[1] if W_xh.ndim == 2 else 1, rng, m)
        try:
            return RNNParams(W_xh=W_xh, W_hh=W_hh, b_h=b_h, W_hy=W_hy, b_y=b_y)
        except GradlabError as e:
            raise GradlabError(f"weights file {source!r}: {e}") from None

    def state_dict(self, params: RNNParams) -> dict[str, np.ndarray]:
        """PyTorch names; all of b_h goes to ``bias_ih_l0``."""
        return {"weight_ih_l0": params.W_xh, "weight_hh_l0": params.W_hh, "bias_ih_l0": params.b_h,
                "bias_hh_l0": np.zeros_like(params.b_h), "fc.weight": params.W_hy, "fc.bias": params.b_y}

    def forward(self, params: RNNParams, x: np.ndarray, s0: np.ndarray | None = None) -> Trace:
        """Run the RNN over a batch and record a :class:`Trace`.

        Parameters
        ----------
        params : RNNParams
        x : (B, T, d) float, or (B, T) int token ids; (T, d) / (T,) mean B = 1
        s0 : (B, n) or (n,), optional; h_0, zeros by default
        """
        act = self.act
        x = check_inputs(x, params.d)
        U = input_drive(params.W_xh, x)
        B, T, n = U.shape
        a = np.empty((B, T, n))
        h = np.empty((B, T + 1, n))
        dphi = np.empty((B, T, n))
        h[:, 0] = initial_state(s0, B, n)
        for t in range(1, T + 1):
            a[:, t - 1], h[:, t], dphi[:, t - 1] = rnn_cell(params.W_hh, params.b_h, act, h[:, t - 1], U[:, t - 1])
        return Trace(x=x, a=a, h=h, dphi=dphi, W_hh=params.W_hh, activation=act, W_xh=params.W_xh)

    def recurrent_blocks(self, params: RNNParams) -> dict[str, np.ndarray]:
        return {"W_hh": params.W_hh}

    def step_matrix(self, params: RNNParams) -> tuple[np.ndarray, float]:
        """(W_hh, γ_h): J_t = diag(φ'(a_t)) W_hh with |φ'| ≤ γ_h, so ‖J_t‖ ≤ σ_max(W_hh) γ_h on every trajectory."""
        return params.W_hh, self.act.gamma


def forward(params: RNNParams, x: np.ndarray, activation: str | Activation = "tanh",
            h0: np.ndarray | None = None) -> Trace:
    """Run the RNN over a batch and record a :class:`Trace` (:meth:`RNNCell.forward`).

    Parameters
    ----------
    params : RNNParams
    x : (B, T, d) float, or (B, T) int token ids; (T, d) / (T,) mean B = 1
    activation : str or Activation
    h0 : (B, n), optional; zeros by default

    Examples
    --------
    >>> import numpy as np, gradlab as gl
    >>> rng = np.random.default_rng(0)
    >>> p = gl.init_params(n=8, d=3, radius=1.5, rng=rng)
    >>> tr = gl.forward(p, rng.standard_normal((2, 50, 3)), "tanh")
    >>> tr.h.shape
    (2, 51, 8)
    """
    return RNNCell(activation).forward(params, x, h0)


def init_params(n: int, d: int, m: int | None = None, init: str = "gaussian", radius: float = 1.0,
                rng: np.random.Generator | None = None, scale_by: str = "radius",
                input_scale: float = 1.0) -> RNNParams:
    """Random RNN parameters (:meth:`RNNCell.init_params`)."""
    return RNNCell().init_params(n, d, m, init, radius, rng, scale_by, input_scale)
