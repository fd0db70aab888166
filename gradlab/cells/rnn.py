"""The vanilla RNN cell and the instrumented forward pass.

The cell computes exactly one step and its local derivative side by side;
the time loop (and the recording) lives in :func:`forward`. See
:mod:`gradlab.params` for the symbols.
"""
from __future__ import annotations

import numpy as np

from .activations import Activation, get_activation
from ..errors import GradlabError
from .params import RNNParams
from .trace import Trace


def rnn_cell(W_hh, b_h, act: Activation, h_prev, u_t):
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


def input_drive(W_xh: np.ndarray, x: np.ndarray) -> np.ndarray:
    """W_xh x_t for every step: (B, T, n).

    Real inputs ``x`` (B, T, d) are multiplied; integer token ids (B, T) pick
    the column ``W_xh[:, x_t]``, which is W_xh times the one-hot vector.
    """
    if np.issubdtype(x.dtype, np.integer):
        return W_xh.T[x]
    return x @ W_xh.T


def check_inputs(x: np.ndarray, d: int) -> np.ndarray:
    """Validate a batch of inputs against input size ``d``; return it as (B, T[, d])."""
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


def forward(params: RNNParams, x: np.ndarray, activation="tanh", h0=None) -> Trace:
    """Run the RNN over a batch and record a :class:`~gradlab.trace.Trace`.

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
    act = get_activation(activation)
    x = check_inputs(x, params.d)
    U = input_drive(params.W_xh, x)
    B, T, n = U.shape
    a = np.empty((B, T, n))
    h = np.empty((B, T + 1, n))
    dphi = np.empty((B, T, n))
    h[:, 0] = 0.0 if h0 is None else h0
    for t in range(1, T + 1):
        a[:, t - 1], h[:, t], dphi[:, t - 1] = rnn_cell(params.W_hh, params.b_h, act, h[:, t - 1], U[:, t - 1])
    return Trace(x=x, a=a, h=h, dphi=dphi, W_hh=params.W_hh, activation=act)
