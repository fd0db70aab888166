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
seed's approximation (tests/test_gated.py compares both with autograd of the
unrolled LSTM). The exact ∂C_t/∂C_k is the C-rows of the full-state product
J_t ⋯ J_{k+1} times the 2n × n matrix [diag(k_k); I] (h_k = o_k ⊙ tanh(C_k) moves
with C_k): :func:`exact_cell_state_norms`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from .gated import GatedParams, GatedTrace
from .rnn import check_inputs, input_drive

CELL_JACOBIANS = ("full", "forget")


def lstm_cell(W_hh, h_prev, c_prev, u_t):
    """One LSTM step and the factors of its Jacobian.

    Parameters
    ----------
    W_hh : (4n, n)
    h_prev, c_prev : (B, n) h_{t−1}, C_{t−1}
    u_t : (B, 4n) input drive W_ih x_t + b_ih + b_hh

    Returns
    -------
    z : (B, 4n) pre-activations
    h, c : (B, n) h_t, C_t
    e : (B, 4n) (g σ'(z_i), C_{t−1} σ'(z_f), i tanh'(z_g), tanh(C_t) σ'(z_o))
    k : (B, n) o ⊙ tanh'(C_t)
    f : (B, n) forget gate
    """
    n = h_prev.shape[1]
    z = h_prev @ W_hh.T + u_t
    i, f, o = expit(z[:, :n]), expit(z[:, n:2 * n]), expit(z[:, 3 * n:])
    g = np.tanh(z[:, 2 * n:3 * n])
    c = f * c_prev + i * g
    tc = np.tanh(c)
    h = o * tc
    # local derivatives, beside the values they differentiate
    e = np.concatenate([g * i * (1 - i), c_prev * f * (1 - f), i * (1 - g * g), tc * o * (1 - o)], axis=1)
    k = o * (1 - tc * tc)
    return z, h, c, e, k, f


@dataclass(frozen=True)
class LSTMTrace(GatedTrace):
    """Record of an LSTM forward pass; the state is s_t = (h_t, C_t), size 2n.

    Attributes
    ----------
    x : (B, T, d) float or (B, T) int
    z : (B, T, 4n) gate pre-activations (i, f, g, o)
    h, c : (B, T + 1, n) h_0 … h_T and C_0 … C_T
    e : (B, T, 4n), k : (B, T, n), f : (B, T, n)
        Jacobian factors of step t at index t − 1 (see the module docstring).
    W_hh : (4n, n)
    """

    x: np.ndarray
    z: np.ndarray
    h: np.ndarray
    c: np.ndarray
    e: np.ndarray
    k: np.ndarray
    f: np.ndarray
    W_hh: np.ndarray

    @property
    def state_size(self) -> int:
        return 2 * self.n

    def right_multiply(self, P: np.ndarray, t: int) -> np.ndarray:
        """P J_t for P of shape (B, r, 2n), without forming J_t.

        With P = [P_h, P_C] and Q = P_h diag(k_t) + P_C::

            P J_t = [ (Q e_i, Q e_f, Q e_g, P_h e_o) W_hh ,  Q diag(f_t) ]
        """
        n = self.n
        Ph, Pc = P[..., :n], P[..., n:]
        Q = Ph * self.k[:, t - 1, None, :] + Pc
        G = np.concatenate([Q, Q, Q, Ph], axis=-1) * self.e[:, t - 1, None, :]
        return np.concatenate([G @ self.W_hh, Q * self.f[:, t - 1, None, :]], axis=-1)


def forward_lstm(params: GatedParams, x: np.ndarray, h0=None, c0=None) -> LSTMTrace:
    """Run an LSTM over a batch and record an :class:`LSTMTrace`.

    Parameters
    ----------
    params : GatedParams with ``cell == "lstm"``
    x : (B, T, d) float, or (B, T) int token ids; (T, d) / (T,) mean B = 1
    h0, c0 : (B, n), optional; zeros by default

    Examples
    --------
    >>> import numpy as np, gradlab as gl
    >>> rng = np.random.default_rng(0)
    >>> p = gl.init_gated_params("lstm", n=8, d=3, rng=rng)
    >>> tr = gl.forward_lstm(p, rng.standard_normal((2, 50, 3)))
    >>> tr.state_size, tr.jacobian(50).shape
    (16, (2, 16, 16))
    """
    x = check_inputs(x, params.d)
    U = input_drive(params.W_ih, x) + (params.b_ih + params.b_hh)
    B, T, _ = U.shape
    n = params.n
    z, e = np.empty((B, T, 4 * n)), np.empty((B, T, 4 * n))
    h, c = np.empty((B, T + 1, n)), np.empty((B, T + 1, n))
    k, f = np.empty((B, T, n)), np.empty((B, T, n))
    h[:, 0] = 0.0 if h0 is None else h0
    c[:, 0] = 0.0 if c0 is None else c0
    for t in range(1, T + 1):
        z[:, t - 1], h[:, t], c[:, t], e[:, t - 1], k[:, t - 1], f[:, t - 1] = lstm_cell(
            params.W_hh, h[:, t - 1], c[:, t - 1], U[:, t - 1])
    return LSTMTrace(x=x, z=z, h=h, c=c, e=e, k=k, f=f, W_hh=params.W_hh)


@dataclass(frozen=True)
class CellStateTrace(GatedTrace):
    """The cell-state chain C_0 → C_1 → … → C_T of an LSTM, as a trace (state size n).

    ``which="full"`` uses ∂C_t/∂C_{t−1} = diag(f_t) + M_t diag(k_{t−1}) (the
    seed derivation's four terms); ``which="forget"`` the approximation
    diag(f_t). Feed it to :func:`gradlab.jacobian_norms` to get
    ‖∏ ∂C_t/∂C_{t−1}‖ against lag under either formula. The ``"full"``
    product equals ‖∂C_t/∂C_k‖ at lag 1 (and at every lag when W_ho = 0);
    at longer lags it leaves out the path through the output gates (see the
    module docstring).
    """

    lstm: LSTMTrace
    which: str = "full"

    def __post_init__(self):
        from ..errors import check_choice

        check_choice(self.which, CELL_JACOBIANS, "cell Jacobian")

    @property
    def B(self) -> int:
        return self.lstm.B

    @property
    def T(self) -> int:
        return self.lstm.T

    @property
    def state_size(self) -> int:
        return self.lstm.n

    def right_multiply(self, P: np.ndarray, t: int) -> np.ndarray:
        """P ∂C_t/∂C_{t−1} for P of shape (B, r, n)."""
        tr, n = self.lstm, self.lstm.n
        out = P * tr.f[:, t - 1, None, :]
        if self.which == "full" and t > 1:
            G = np.concatenate([P, P, P], axis=-1) * tr.e[:, t - 1, None, :3 * n]
            out = out + (G @ tr.W_hh[:3 * n]) * tr.k[:, t - 2, None, :]
        return out


def cell_state_trace(trace: LSTMTrace, which: str = "full") -> CellStateTrace:
    """The LSTM's cell-state Jacobians ∂C_t/∂C_{t−1}, ``"full"`` or ``"forget"`` (diag(f_t)) only."""
    return CellStateTrace(trace, which)


def exact_cell_state_norms(trace: LSTMTrace, pairs: str = "last"):
    """ln‖∂C_t/∂C_k‖₂, the exact total derivative, for the pairs of ``pairs``.

    ∂C_t/∂C_k = R_C (J_t ⋯ J_{k+1}) [diag(k_k); I]: the C rows of the full-state
    product, grown backwards one (n × 2n)·J_j product per lag, times the 2n × n
    matrix through which C_k also moves h_k = o_k ⊙ tanh(C_k) (k_0 = 0: h_0 is
    given). Unlike the product of the four-term factors (:func:`cell_state_trace`)
    this keeps the path through the output gates. σ_max of each n × n block is
    exact (√λ_max of its Gram matrix); the rows are rescaled every lag and the
    log of the scale carried, so long products stay finite.

    Returns
    -------
    JacobianNorms
        Same pairs and order as :func:`gradlab.jacobian_norms` (by t, then lag).
    """
    from ..analysis.jacobian_norms import JacobianNorms, end_steps, largest_gram_eigenvalue, renormalise

    n, B = trace.n, trace.B
    ends = end_steps(pairs, trace.T)
    R_C = np.broadcast_to(np.eye(2 * n)[n:], (B, n, 2 * n))
    cols = []
    for t in ends:
        Q, log_q = trace.right_multiply(R_C, int(t)), np.zeros(B)     # R_C J_t
        out = np.empty((B, t))
        for k in range(t - 1, -1, -1):
            block = Q[..., n:] if k == 0 else Q[..., :n] * trace.k[:, k - 1, None, :] + Q[..., n:]
            flat = block.reshape(B, n, n)
            with np.errstate(divide="ignore"):             # an exactly zero block has ln 0 = −inf
                out[:, t - 1 - k] = 0.5 * np.log(largest_gram_eigenvalue(flat)) + log_q
            if k > 0:
                Q, log_q = renormalise(trace.right_multiply(Q, k), log_q)
        cols.append(out)
    return JacobianNorms(t=np.concatenate([np.full(t, t) for t in ends]),
                         k=np.concatenate([np.arange(t - 1, -1, -1) for t in ends]),
                         log_norm=np.concatenate(cols, axis=1))
