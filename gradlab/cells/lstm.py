"""The LSTM cell (with forget gate, PyTorch ``nn.LSTM`` convention) and its exact Jacobians.

One step, column vectors, gates in PyTorch's order i, f, g, o (σ = logistic)::

    z_t = W_hh h_{t−1} + W_ih x_t + b_ih + b_hh           (4n,) pre-activations
    i_t = σ(z_i)   f_t = σ(z_f)   g_t = tanh(z_g)   o_t = σ(z_o)
    C_t = f_t ⊙ C_{t−1} + i_t ⊙ g_t
    h_t = o_t ⊙ tanh(C_t)

The state is s_t = (h_t, C_t), so the step Jacobian J_t = ∂s_t/∂s_{t−1} is
2n × 2n. With M_t = ∂C_t/∂h_{t−1} and k_t = o_t ⊙ tanh'(C_t)::

    M_t      = diag(g ⊙ σ'(z_i)) W_hi + diag(C_{t−1} ⊙ σ'(z_f)) W_hf + diag(i ⊙ tanh'(z_g)) W_hg
    ∂C_t/∂C_{t−1} |_h = diag(f_t)
    ∂h_t/∂h_{t−1} = diag(tanh(C_t) ⊙ σ'(z_o)) W_ho + diag(k_t) M_t
    ∂h_t/∂C_{t−1} = diag(k_t ⊙ f_t)

Only the vectors e_t = (g σ'(z_i), C_{t−1} σ'(z_f), i tanh'(z_g), tanh(C_t) σ'(z_o)),
k_t and f_t are stored; a product P J_t costs one (r × 4n)·(4n × n) product.

Every product with a derivative of step t goes through the pre-activations:
a row P = [P_h, P_C] on s_t pulls back to z_t as (:func:`gate_adjoints`)::

    Q  = P_h ⊙ k_t + P_C                                 (the row reaching C_t)
    dz = P ∂s_t/∂z_t = (Q ⊙ e_i, Q ⊙ e_f, Q ⊙ e_g, P_h ⊙ e_o)        (4n,)

    P J_t = [dz W_hh, Q ⊙ f_t]      P K_t = P ∂s_t/∂x_t = dz W_ih

With P = λ_t = ∂L/∂s_t (exact BPTT, :func:`gradlab.analysis.bptt.adjoints`)
dz_t = ∂L/∂z_t, formed for all steps at once, and the parameter gradients are
single matrix products::

    ∂L/∂W_hh = Σ_t dz_t h_{t−1}ᵀ    ∂L/∂W_ih = Σ_t dz_t x_tᵀ    ∂L/∂b_ih = ∂L/∂b_hh = Σ_t dz_t

The cell-to-cell derivative of the seed derivation (and of most texts) treats
h_{t−1} = o_{t−1} ⊙ tanh(C_{t−1}) as a function of C_{t−1} (o_{t−1} fixed)::

    full:         ∂C_t/∂C_{t−1} = diag(f_t) + M_t diag(k_{t−1})       (all four terms)
    forget only:  ∂C_t/∂C_{t−1} ≈ diag(f_t)

(k_0 = 0: the initial h_0 is given, not computed from C_0.) Both are available
through :func:`cell_state_trace`, so their products can be set side by side.

A full factor is the exact derivative of C_t with respect to C_{t−1}. Their
product over several steps, as the seed derivation takes it ("multiply the
equation above k times"), is *not* exactly ∂C_t/∂C_k: the output gate o_j of
each step k < j < t depends on h_{j−1}, which a change in C_k has moved, and
that path is left out. The product is exact when W_ho = 0 and otherwise the
seed's approximation (tests/cells/test_gated.py compares both with autograd of the
unrolled LSTM). The exact ∂C_t/∂C_k is the C-rows of the full-state product
J_t ⋯ J_{k+1} times the 2n × n matrix [diag(k_k); I] (h_k = o_k ⊙ tanh(C_k) moves
with C_k): :func:`gradlab.analysis.cell_state.exact_cell_state_norms`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import GradlabError, check_choice
from .base import StateTrace, check_inputs, initial_state, input_drive, input_weight_grad, sum_outer
from .gated import GATES, GatedParams, init_gated_params
from .weights import read_readout

CELL_JACOBIANS = ("full", "forget")
STATE_DICT_NAMES = {"W_ih": "weight_ih_l0", "W_hh": "weight_hh_l0", "b_ih": "bias_ih_l0", "b_hh": "bias_hh_l0",
                    "W_hy": "fc.weight", "b_y": "fc.bias"}


def sigmoid(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """σ(a) = 1 / (1 + exp(−a)), the formula of ``scipy.special.expit``, at a third of its cost.

    For a < −709 exp(−a) overflows to inf and σ(a) = 1/inf = 0, as expit
    gives (the true value is below 1e-308); that overflow is expected, so it
    is not reported. ``out`` may be ``a``.
    """
    out = np.negative(a, out=out)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    out += 1.0
    return np.reciprocal(out, out=out)


def lstm_cell(W_hh: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray, u_t: np.ndarray,
              out: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One LSTM step and the factors of its Jacobian.

    Parameters
    ----------
    W_hh : (4n, n)
    h_prev, c_prev : (B, n) h_{t−1}, C_{t−1}
    u_t : (B, 4n) input drive W_ih x_t + b_ih + b_hh
    out : tuple of arrays (z, h, c, e, k, f) shaped as returned, optional
        Where to write the results (the forward pass's trace buffers); ``z``
        may be ``u_t`` itself.

    Returns
    -------
    z : (B, 4n) pre-activations
    h, c : (B, n) h_t, C_t
    e : (B, 4n) (g σ'(z_i), C_{t−1} σ'(z_f), i tanh'(z_g), tanh(C_t) σ'(z_o))
    k : (B, n) o ⊙ tanh'(C_t)
    f : (B, n) forget gate
    """
    B, n = h_prev.shape
    if out is None:
        out = (np.empty((B, 4 * n)), np.empty((B, n)), np.empty((B, n)), np.empty((B, 4 * n)),
               np.empty((B, n)), np.empty((B, n)))
    z, h, c, e, k, f = out
    np.add(h_prev @ W_hh.T, u_t, out=z)
    a = sigmoid(z)                                        # σ of all four blocks in one call ...
    g = np.tanh(z[:, 2 * n:3 * n], out=a[:, 2 * n:3 * n])  # ... then g's block is tanh instead
    i, o = a[:, :n], a[:, 3 * n:]
    f[...] = a[:, n:2 * n]
    np.multiply(f, c_prev, out=c)
    c += i * g
    tc = np.tanh(c)
    np.multiply(o, tc, out=h)
    # local derivatives, beside the values they differentiate
    np.subtract(1.0, a, out=e)
    e *= a                                     # σ' = σ (1 − σ) in blocks i, f, o
    e[:, :n] *= g                              # g σ'(z_i)
    e[:, n:2 * n] *= c_prev                    # C_{t−1} σ'(z_f)
    e_g = np.multiply(g, g, out=e[:, 2 * n:3 * n])
    np.subtract(1.0, e_g, out=e_g)
    e_g *= i                                   # i tanh'(z_g)
    e[:, 3 * n:] *= tc                         # tanh(C_t) σ'(z_o)
    np.multiply(tc, tc, out=k)
    np.subtract(1.0, k, out=k)
    k *= o                                     # o tanh'(C_t)
    return z, h, c, e, k, f


def gate_adjoints(P: np.ndarray, e: np.ndarray, k: np.ndarray):
    """P ∂s_t/∂z_t: a row (block) P on the state (h_t, C_t) pulled back to the pre-activations z_t.

    Parameters
    ----------
    P : (..., 2n) rows [P_h, P_C]
    e : (..., 4n), k : (..., n)
        The step's factors, broadcast against P's leading axes (one step, or
        all steps at once for the parameter gradients).

    Returns
    -------
    dz : (..., 4n) (Q e_i, Q e_f, Q e_g, P_h e_o)
    Q : (..., n) Q = P_h ⊙ k + P_C, the total row reaching C_t (h_t = o ⊙ tanh(C_t))
    """
    n = k.shape[-1]
    Ph = P[..., :n]
    Q = Ph * k + P[..., n:]
    E = e.reshape(e.shape[:-1] + (4, n))
    dz = np.empty(Q.shape[:-1] + (4, n))
    np.multiply(E[..., :3, :], Q[..., None, :], out=dz[..., :3, :])     # i, f, g all feed C_t
    np.multiply(E[..., 3, :], Ph, out=dz[..., 3, :])                    # o feeds h_t only
    return dz.reshape(Q.shape[:-1] + (4 * n,)), Q


def rows_matmul(A: np.ndarray, W: np.ndarray) -> np.ndarray:
    """A @ W for A (..., p), W (p, q) as one BLAS product over all leading axes.

    numpy's stacked matmul of (B, r, p) @ (p, q) loops over B small products
    (2.7× slower for B = 32, r = 1, p = 512, q = 128).
    """
    return (A.reshape(-1, A.shape[-1]) @ W).reshape(A.shape[:-1] + (W.shape[1],))


def step_factor(a: np.ndarray, t: int, ndim: int) -> np.ndarray:
    """Step t's factor a[:, t − 1] (B, q), with axes added to broadcast against a (B, …, q) array of ``ndim`` axes.

    For a trace stored time-major this is one contiguous block.
    """
    v = a[:, t - 1]
    return v.reshape((v.shape[0],) + (1,) * (ndim - 2) + (v.shape[1],))


def check_real_inputs(x: np.ndarray) -> None:
    if np.issubdtype(x.dtype, np.integer):
        raise GradlabError("input Jacobians ∂s_t/∂x_t need real inputs; these are token ids "
                           f"({x.dtype}), which cannot be perturbed")


def check_adjoints(trace: StateTrace, dS: np.ndarray) -> np.ndarray:
    dS = np.asarray(dS)
    if dS.shape != (trace.B, trace.T + 1, trace.state_size):
        raise GradlabError(f"adjoints must have shape ({trace.B}, {trace.T + 1}, {trace.state_size}), "
                           f"got {dS.shape}")
    return dS


@dataclass(frozen=True)
class LSTMTrace(StateTrace):
    """Record of an LSTM forward pass; the state is s_t = (h_t, C_t), size 2n.

    Attributes
    ----------
    x : (B, T, d) float or (B, T) int
    z : (B, T, 4n) gate pre-activations (i, f, g, o)
    h, c : (B, T + 1, n) h_0 … h_T and C_0 … C_T
    e : (B, T, 4n), k : (B, T, n), f : (B, T, n)
        Jacobian factors of step t at index t − 1 (see the module docstring).
    W_hh : (4n, n), W_ih : (4n, d)
        The weights (shared, not copied); W_ih gives the input Jacobian.

    :meth:`LSTMCell.forward` stores the per-step arrays time-major and passes
    (B, T, ·) views of them (``z.swapaxes(0, 1)`` is contiguous), so step t's
    factors ``e[:, t − 1]`` are one contiguous block.
    """

    x: np.ndarray
    z: np.ndarray
    h: np.ndarray
    c: np.ndarray
    e: np.ndarray
    k: np.ndarray
    f: np.ndarray
    W_hh: np.ndarray
    W_ih: np.ndarray

    @property
    def state_size(self) -> int:
        return 2 * self.n

    def states(self) -> np.ndarray:
        """s_t = (h_t, C_t) for t = 0 … T: (B, T + 1, 2n)."""
        return np.concatenate([self.h, self.c], axis=-1)

    def right_multiply(self, P: np.ndarray, t: int) -> np.ndarray:
        """P J_t for P of shape (B, r, 2n) (or (B, 2n)), without forming J_t.

        With P = [P_h, P_C] and Q = P_h diag(k_t) + P_C::

            P J_t = [ (Q e_i, Q e_f, Q e_g, P_h e_o) W_hh ,  Q diag(f_t) ]
        """
        n, nd = self.n, P.ndim
        dz, Q = gate_adjoints(P, step_factor(self.e, t, nd), step_factor(self.k, t, nd))
        out = np.empty(Q.shape[:-1] + (2 * n,))
        np.matmul(dz.reshape(-1, 4 * n), self.W_hh, out=out.reshape(-1, 2 * n)[:, :n])   # one BLAS call
        np.multiply(Q, step_factor(self.f, t, nd), out=out[..., n:])
        return out

    def vjp(self, v: np.ndarray, t: int) -> np.ndarray:
        """v J_t for v of shape (B, 2n): one (B, 4n)·(4n, n) product (the BPTT step λ_{t−1} = λ_t J_t)."""
        return self.right_multiply(v, t)

    def input_right_multiply(self, P: np.ndarray, t: int) -> np.ndarray:
        """P K_t = P ∂s_t/∂x_t = (Q e_i, Q e_f, Q e_g, P_h e_o) W_ih for P (B, r, 2n): (B, r, d)."""
        check_real_inputs(self.x)
        dz, _ = gate_adjoints(P, step_factor(self.e, t, P.ndim), step_factor(self.k, t, P.ndim))
        return rows_matmul(dz, self.W_ih)

    def param_grads(self, dS: np.ndarray) -> dict[str, np.ndarray]:
        """Σ_t (∂s_t/∂θ)ᵀ λ_t for θ = W_ih, W_hh, b_ih, b_hh from the adjoints λ_t = dS[:, t].

        The pre-activation adjoints dz_t = (Q e_i, Q e_f, Q e_g, λh e_o),
        Q = λh ⊙ k_t + λC, are formed for all steps at once; then
        ∂L/∂W_hh = Σ_t dz_t h_{t−1}ᵀ, ∂L/∂W_ih = Σ_t dz_t x_tᵀ and
        ∂L/∂b_ih = ∂L/∂b_hh = Σ_t dz_t, each one BLAS product.

        Parameters
        ----------
        dS : (B, T + 1, 2n) λ_t at index t (index 0 unused)

        Returns
        -------
        dict with ``W_ih`` (4n, d), ``W_hh`` (4n, n), ``b_ih``, ``b_hh`` (4n,)
        """
        dS = check_adjoints(self, dS)
        # time-major (T, B, ·), the layout the forward pass stores, so no factor is copied
        dz, _ = gate_adjoints(dS[:, 1:].swapaxes(0, 1), self.e.swapaxes(0, 1), self.k.swapaxes(0, 1))
        db = dz.sum(axis=(0, 1))
        return {"W_ih": input_weight_grad(dz, self.x.swapaxes(0, 1), self.W_ih.shape[1]),
                "W_hh": sum_outer(dz, self.h.swapaxes(0, 1)[:-1]), "b_ih": db, "b_hh": db.copy()}


@dataclass(frozen=True)
class GatedCell:
    """What the LSTM and GRU cells share: :class:`~gradlab.cells.gated.GatedParams` in PyTorch's layout.

    A subclass sets ``name`` (a key of :data:`~gradlab.cells.gated.GATES`) and
    defines ``forward``. Cells hold no hyperparameters (the gates fix the
    nonlinearities), so all instances of one cell are equal.
    """

    name: ClassVar[str]
    param_names: ClassVar[tuple[str, ...]] = ("W_ih", "W_hh", "b_ih", "b_hh")

    def init_params(self, n: int, d: int, m: int | None = None, init: str = "gaussian", radius: float = 1.0,
                    rng: np.random.Generator | None = None, scale_by: str = "radius",
                    input_scale: float = 1.0) -> GatedParams:
        """Random parameters, each n × n recurrent block as :func:`gradlab.init_recurrent` draws W_hh."""
        return init_gated_params(self.name, n, d, m, init, radius, rng, scale_by, input_scale)

    def from_state_dict(self, arrays: dict, source: str, rng: np.random.Generator | None = None,
                        m: int | None = None) -> GatedParams:
        """Parameters from an ``nn.LSTM`` / ``nn.GRU`` state dict (arrays already read from ``source``).

        ``weight_ih_l0`` (G n, d) and ``weight_hh_l0`` (G n, n) are required;
        ``bias_ih_l0``/``bias_hh_l0`` default to zero; the read-out
        ``fc.weight``/``fc.bias`` is drawn N(0, 1/n) from ``rng`` (m outputs,
        default d) when absent. ``source`` names the arrays' origin in errors.
        """
        cell, G = self.name, len(GATES[self.name])
        missing = [key for key in ("weight_ih_l0", "weight_hh_l0") if key not in arrays]
        if missing:
            raise GradlabError(f"weights file {source!r} lacks {', '.join(missing)} "
                               f"(has: {', '.join(sorted(arrays)) or 'nothing'})")
        arrays = {key: real_array(value, key, source) for key, value in arrays.items()
                  if key in STATE_DICT_NAMES.values()}
        W_hh = arrays["weight_hh_l0"]
        if W_hh.ndim != 2 or W_hh.shape[0] != G * W_hh.shape[1]:
            raise GradlabError(f"weight_hh_l0 in {source!r} has shape {W_hh.shape}; an nn.{cell.upper()} "
                               f"needs ({G} n, n) for its gates {', '.join(GATES[cell])}")
        n = W_hh.shape[1]
        W_ih = arrays["weight_ih_l0"]
        W_hy, b_y = read_readout(arrays, n, W_ih.shape[1] if W_ih.ndim == 2 else 1, rng, m)
        try:
            return GatedParams(cell=cell, W_ih=W_ih, W_hh=W_hh,
                               b_ih=arrays.get("bias_ih_l0", np.zeros(G * n)),
                               b_hh=arrays.get("bias_hh_l0", np.zeros(G * n)), W_hy=W_hy, b_y=b_y)
        except GradlabError as e:
            raise GradlabError(f"weights file {source!r}: {e}") from None

    def state_dict(self, params: GatedParams) -> dict[str, np.ndarray]:
        """The parameters under PyTorch's names: the ``nn.LSTM``/``nn.GRU`` keys and ``fc.weight``, ``fc.bias``.

        Without the two ``fc.*`` keys it loads into the matching ``nn`` module
        (``batch_first`` either way); :meth:`from_state_dict` reads it back.
        """
        self.check_params(params)
        return {key: getattr(params, name) for name, key in STATE_DICT_NAMES.items()}

    def recurrent_blocks(self, params: GatedParams) -> dict[str, np.ndarray]:
        """One n × n recurrent block per gate, ``W_hi``, ``W_hf``, … (rows of ``W_hh`` in PyTorch's order)."""
        self.check_params(params)
        return {f"W_h{q}": params.block("W_hh", q) for q in GATES[self.name]}

    def check_params(self, params) -> None:
        """Refuse parameters of another cell (an RNN's, or the other gated cell's)."""
        if getattr(params, "cell", None) != self.name:
            got = getattr(params, "cell", type(params).__name__)
            raise GradlabError(f"the {self.name} cell needs GatedParams with cell={self.name!r}, got {got!r}")


def real_array(value, key: str, source: str) -> np.ndarray:
    """One state-dict array as float64; complex numbers are refused, not cut to their real part."""
    if np.iscomplexobj(value):
        raise GradlabError(f"weights file {source!r}: {key} holds complex numbers, expected real ones")
    return np.asarray(value, dtype=np.float64)


@dataclass(frozen=True)
class LSTMCell(GatedCell):
    """The LSTM as a :class:`~gradlab.cells.base.Cell`: state s = (h, C), size 2n.

    Examples
    --------
    >>> import numpy as np
    >>> from gradlab.cells.lstm import LSTMCell
    >>> rng = np.random.default_rng(0)
    >>> cell = LSTMCell()
    >>> p = cell.init_params(n=8, d=3, rng=rng)
    >>> cell.forward(p, rng.standard_normal((2, 50, 3))).states().shape
    (2, 51, 16)
    """

    name: ClassVar[str] = "lstm"
    #: the run's extra tables (:data:`gradlab.analysis.cell_state.EXTRA_TABLES`): the cell-state chain
    extra_tables: ClassVar[tuple[str, ...]] = ("cell_state",)

    def forward(self, params: GatedParams, x: np.ndarray, s0: np.ndarray | None = None) -> LSTMTrace:
        """Run over a batch and record an :class:`LSTMTrace`.

        Parameters
        ----------
        params : GatedParams with ``cell == "lstm"``
        x : (B, T, d) float, or (B, T) int token ids; (T, d) / (T,) mean B = 1
        s0 : (B, 2n) or (2n,), optional
            Initial state (h_0, C_0); zeros by default.
        """
        self.check_params(params)
        x = check_inputs(x, params.d)
        n = params.n
        s0 = initial_state(s0, x.shape[0], 2 * n)
        # Time-major buffers (T, B, ·): each step reads and writes contiguous blocks (2× faster
        # than (B, T, ·) slices); the trace holds (B, T, ·) views of them. z starts as the drive.
        z = input_drive(params.W_ih, x.swapaxes(0, 1))
        z += params.b_ih + params.b_hh
        T, B, _ = z.shape
        e = np.empty((T, B, 4 * n))
        h, c = np.empty((T + 1, B, n)), np.empty((T + 1, B, n))
        k, f = np.empty((T, B, n)), np.empty((T, B, n))
        h[0], c[0] = s0[:, :n], s0[:, n:]
        for t in range(1, T + 1):
            lstm_cell(params.W_hh, h[t - 1], c[t - 1], z[t - 1],
                      out=(z[t - 1], h[t], c[t], e[t - 1], k[t - 1], f[t - 1]))
        z, h, c, e, k, f = (a.swapaxes(0, 1) for a in (z, h, c, e, k, f))
        return LSTMTrace(x=x, z=z, h=h, c=c, e=e, k=k, f=f, W_hh=params.W_hh, W_ih=params.W_ih)


def forward_lstm(params: GatedParams, x: np.ndarray, h0: np.ndarray | None = None,
                 c0: np.ndarray | None = None) -> LSTMTrace:
    """Run an LSTM over a batch from (h0, c0) and record an :class:`LSTMTrace` (:meth:`LSTMCell.forward`).

    Parameters
    ----------
    params : GatedParams with ``cell == "lstm"``
    x : (B, T, d) float, or (B, T) int token ids; (T, d) / (T,) mean B = 1
    h0, c0 : (B, n) or (n,), optional; zeros by default

    Examples
    --------
    >>> import numpy as np, gradlab as gl
    >>> rng = np.random.default_rng(0)
    >>> p = gl.init_gated_params("lstm", n=8, d=3, rng=rng)
    >>> tr = gl.forward_lstm(p, rng.standard_normal((2, 50, 3)))
    >>> tr.state_size, tr.jacobian(50).shape
    (16, (2, 16, 16))
    """
    if h0 is None and c0 is None:
        return LSTMCell().forward(params, x)
    B, n = check_inputs(x, params.d).shape[0], params.n
    return LSTMCell().forward(params, x, np.concatenate([initial_state(h0, B, n), initial_state(c0, B, n)], axis=1))


@dataclass(frozen=True)
class CellStateTrace(StateTrace):
    """The cell-state chain C_0 → C_1 → … → C_T of an LSTM, as a trace (state size n).

    ``which="full"`` uses ∂C_t/∂C_{t−1} = diag(f_t) + M_t diag(k_{t−1}) (the
    seed derivation's four terms); ``which="forget"`` the approximation
    diag(f_t). Feed it to :func:`gradlab.jacobian_norms` to get
    ‖∏ ∂C_t/∂C_{t−1}‖ against lag under either formula. The ``"full"``
    product equals ‖∂C_t/∂C_k‖ at lag 1 (and at every lag when W_ho = 0);
    at longer lags it leaves out the path through the output gates (see the
    module docstring). A view for the Jacobian analyses only: it has no
    input Jacobians or parameter gradients (use the :class:`LSTMTrace`).
    """

    lstm: LSTMTrace
    which: str = "full"

    def __post_init__(self):
        check_choice(self.which, CELL_JACOBIANS, "cell Jacobian")

    @property
    def x(self) -> np.ndarray:
        return self.lstm.x

    @property
    def h(self) -> np.ndarray:
        """The LSTM's hidden states h_0 … h_T (B, T + 1, n); the chain's own states are :meth:`states`."""
        return self.lstm.h

    @property
    def state_size(self) -> int:
        return self.lstm.n

    def states(self) -> np.ndarray:
        """C_0 … C_T, (B, T + 1, n)."""
        return self.lstm.c

    def right_multiply(self, P: np.ndarray, t: int) -> np.ndarray:
        """P ∂C_t/∂C_{t−1} for P of shape (B, r, n) (or (B, n))."""
        tr, n, nd = self.lstm, self.lstm.n, P.ndim
        out = P * step_factor(tr.f, t, nd)
        if self.which == "full" and t > 1:
            E = step_factor(tr.e, t, nd)[..., :3 * n]
            G = (E.reshape(E.shape[:-1] + (3, n)) * P[..., None, :]).reshape(P.shape[:-1] + (3 * n,))
            out = out + rows_matmul(G, tr.W_hh[:3 * n]) * step_factor(tr.k, t - 1, nd)
        return out


def cell_state_trace(trace: LSTMTrace, which: str = "full") -> CellStateTrace:
    """The LSTM's cell-state Jacobians ∂C_t/∂C_{t−1}, ``"full"`` or ``"forget"`` (diag(f_t)) only."""
    return CellStateTrace(trace, which)
