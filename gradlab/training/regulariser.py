"""Pascanu, Mikolov & Bengio's (2013) regulariser against vanishing gradients (§3.3, eq. 9).

The penalty asks every step Jacobian to keep the norm of the error it sends
back, in the direction that error actually has::

    δ_t = ∂L/∂h_t            (row vector, t = 1 … T; the exact BPTT adjoint)
    r_t = ‖δ_t J_t‖ / ‖δ_t‖,      J_t = ∂h_t/∂h_{t−1} = diag(φ'(a_t)) W_hh
    Ω   = (1/N) Σ_{(b, t) ∈ V} (r_t − 1)²

with k = t − 1 in the paper's indexing (Ω_k compares ∂L/∂h_{k+1} with
∂L/∂h_k's share through step k + 1).

How the sum is taken follows the authors' reference implementation,
``RNN.py`` in https://github.com/pascanur/trainingRNNs (lines 166–217):

* **Which steps**: every step t = 1 … T, including the first (k = 0, the
  step out of h_0): ``d_ht[1:]`` against ``h`` = h_1 … h_T.
* **Negligible errors**: a pair (sequence b, step t) with ‖δ_t‖² < ``bound``
  (their ``state['bound'] = 1e-20``) is left out: its ratio is set to 1,
  so its term is 0, and it is not counted. V is the set of pairs kept.
* **Averaging**: a mean over the N = |V| pairs kept, over batch *and* steps
  (``tmp_reg.mean(1).sum() / n_elems.sum()``), not the paper's plain Σ_k;
  so Ω does not grow with T and α means the same at every length. If no
  pair is kept Ω = 0.
* **The gradient** treats δ as a constant (Theano's ``TT.grad`` is taken
  with ``d_ht`` a free input, and ``gH`` substituted afterwards with
  ``theano.clone``), and is added to the loss gradient before norm
  clipping: ``gW_hh + alpha * tmp_gWhh``.

Two details of ``RNN.py`` differ from eq. 9, and are options here:

* it penalises the ratio of *squared* norms, (r_t² − 1)²
  (``tmp_x / tmp_y`` are sums of squares): ``squared=True``;
* its gradient holds the states h_t, hence φ'(a_t), constant as well
  (``ht`` is a free input like ``d_ht``), so only W_hh gets a gradient, the
  explicit one through J_t: ``freeze_dphi=True``. By default the gradient
  here is the full derivative of Ω with δ alone held constant, which also
  flows through φ'(a_t) into W_xh, b_h and, along the trajectory, into W_hh
  (see :func:`omega_and_grads`).

``squared=True, freeze_dphi=True`` reproduces ``RNN.py`` exactly.

The value :func:`omega` works for any cell (it only needs ``trace.vjp``,
with λ in the cell's state layout); the gradient needs the cell's second
derivatives and is implemented for the vanilla RNN only — a gated trace is
refused with a :class:`~gradlab.errors.GradlabError`.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit

from ..analysis.bptt import adjoints
from ..cells.base import input_weight_grad, sum_outer
from ..cells.rnn import Trace
from ..errors import GradlabError

BOUND = 1e-20   # RNN.py's state['bound'], on ‖δ_t‖²


def _tanh_second(a: np.ndarray) -> np.ndarray:
    h = np.tanh(a)
    return -2.0 * h * (1.0 - h * h)          # φ'' = −2 φ φ'


def _sigmoid_second(a: np.ndarray) -> np.ndarray:
    s = expit(a)
    return s * (1.0 - s) * (1.0 - 2.0 * s)  # φ'' = φ' (1 − 2φ)


def _zero_second(a: np.ndarray) -> np.ndarray:
    return np.zeros_like(a)                  # relu (away from the kink), linear


SECOND_DERIVATIVES = {"tanh": _tanh_second, "sigmoid": _sigmoid_second, "relu": _zero_second,
                      "linear": _zero_second}


def second_derivative(activation, a: np.ndarray) -> np.ndarray:
    """φ''(a) for the activations of :mod:`gradlab.cells.activations` (ReLU's is 0 away from 0)."""
    try:
        return SECOND_DERIVATIVES[activation.name](a)
    except KeyError:
        raise GradlabError(f"no second derivative for activation {activation.name!r}; "
                           f"the regulariser's gradient supports {', '.join(SECOND_DERIVATIVES)}") from None


def _norm_ratios(trace, lam: np.ndarray, bound: float):
    """δ_t, v_t = δ_t J_t (B, T, s), ‖δ_t‖² and r_t² (B, T), and the mask V of pairs kept."""
    lam = np.asarray(lam, dtype=np.float64)
    shape = (trace.B, trace.T + 1, trace.state_size)
    if lam.shape != shape:
        raise GradlabError(f"adjoints λ must have shape {shape} (∂L/∂s_t for t = 0 … T), got {lam.shape}")
    delta = lam[:, 1:]
    v = np.stack([trace.vjp(delta[:, t - 1], t) for t in range(1, trace.T + 1)], axis=1)
    p = np.sum(delta * delta, axis=-1)
    kept = p >= bound
    ratio2 = np.divide(np.sum(v * v, axis=-1), p, out=np.ones_like(p), where=kept)
    return delta, v, p, ratio2, kept


def _penalty(ratio2: np.ndarray, kept: np.ndarray, squared: bool) -> float:
    """Ω from r_t² and the mask: the mean of (r − 1)² (or (r² − 1)²) over the pairs kept."""
    n_kept = np.count_nonzero(kept)
    if n_kept == 0:
        return 0.0
    terms = (ratio2 - 1.0) ** 2 if squared else (np.sqrt(ratio2) - 1.0) ** 2
    return float(np.sum(terms, where=kept) / n_kept)


def omega(trace, lam: np.ndarray, squared: bool = False, bound: float = BOUND) -> float:
    """Pascanu et al.'s Ω: the mean of (‖δ_t J_t‖/‖δ_t‖ − 1)² over sequences and steps.

    Parameters
    ----------
    trace : Trace or any cell's trace
        The forward pass the adjoints belong to (only ``trace.vjp`` is used).
    lam : (B, T + 1, s)
        λ_t = ∂L/∂s_t for t = 0 … T (index 0 is not used): ``dL_dh`` of
        :func:`gradlab.analysis.bptt.loss_and_grads` or
        :func:`gradlab.analysis.bptt.adjoints`.
    squared : bool
        Penalise (r_t² − 1)², as ``RNN.py`` does, instead of eq. 9's (r_t − 1)².
    bound : float
        Pairs with ‖δ_t‖² < bound are left out of the mean.

    Returns
    -------
    float
        Ω ≥ 0; 0 when every r_t = 1 or no pair is kept; non-finite when λ is.

    Notes
    -----
    With δ_t = λ_t, r_t = ‖δ_t J_t‖/‖δ_t‖ and V = {(b, t) : ‖δ_t‖² ≥ bound}::

        Ω = (1/|V|) Σ_{(b, t) ∈ V} (r_t − 1)²

    See the module docstring for how this follows Pascanu et al.'s code.

    References
    ----------
    R. Pascanu, T. Mikolov & Y. Bengio (2013), "On the difficulty of training
    recurrent neural networks", ICML, §3.3, eq. 9; reference code
    https://github.com/pascanur/trainingRNNs, ``RNN.py``.

    Examples
    --------
    >>> import numpy as np
    >>> from gradlab.analysis.bptt import loss_and_grads
    >>> from gradlab.cells.rnn import init_params
    >>> rng = np.random.default_rng(0)
    >>> p = init_params(n=4, d=2, m=1, init="orthogonal", rng=rng)
    >>> g = loss_and_grads(p, rng.standard_normal((3, 5, 2)), rng.standard_normal((3, 5, 1)), "linear")
    >>> round(omega(g.trace, g.dL_dh), 12)        # orthogonal W, φ = id: every r_t = 1
    0.0
    """
    _, _, _, ratio2, kept = _norm_ratios(trace, lam, bound)
    return _penalty(ratio2, kept, squared)


def omega_and_grads(params, trace: Trace, lam: np.ndarray, squared: bool = False,
                    freeze_dphi: bool = False, bound: float = BOUND) -> tuple[float, dict[str, np.ndarray]]:
    """Ω and its gradient with respect to W_xh, W_hh, b_h, with δ held constant (vanilla RNN).

    Parameters
    ----------
    params : RNNParams
        The weights ``trace`` was run with.
    trace : Trace
        A vanilla-RNN forward pass (:func:`gradlab.cells.rnn.forward`);
        another cell's trace is refused.
    lam : (B, T + 1, n)
        ∂L/∂h_t for t = 0 … T, held constant (see :func:`omega`).
    squared : bool
        (r_t² − 1)² as in ``RNN.py`` instead of eq. 9's (r_t − 1)².
    freeze_dphi : bool
        Hold φ'(a_t) constant too, as ``RNN.py`` does: only the explicit
        W_hh in J_t is differentiated, W_xh and b_h get zero.
    bound : float
        Pairs with ‖δ_t‖² < bound are left out.

    Returns
    -------
    value : float
        Ω, as :func:`omega`.
    grads : dict
        ``W_xh`` (n, d), ``W_hh`` (n, n), ``b_h`` (n,): ∂Ω/∂θ. The read-out
        W_hy, b_y does not enter Ω once δ is fixed, so it has no entry.

    Notes
    -----
    Row vectors, steps t = 1 … T, sums over the batch implied. With
    u_t = δ_t ⊙ φ'(a_t), v_t = δ_t J_t = u_t W_hh, p_t = ‖δ_t‖² and
    N = |V| (module docstring), the error reaching v_t is::

        g_t = ∂Ω/∂v_t = 1_V / N · 2 (r_t − 1) v_t / (r_t p_t)      (eq. 9; 0 where r_t = 0)
                      = 1_V / N · 4 (r_t² − 1) v_t / p_t            (squared)

    v_t depends on θ explicitly through W_hh, and through φ'(a_t), where
    a_t = W_hh h_{t−1} + W_xh x_t + b_h depends on every parameter along the
    trajectory h_0 → h_{t−1}. The explicit error at a_t is::

        e_t = δ_t ⊙ (g_t W_hhᵀ) ⊙ φ''(a_t)

    and one backward pass carries it down the trajectory — BPTT with the
    error injected at the pre-activations instead of the outputs::

        ε_T = 0,      μ_t = e_t + ε_t ⊙ φ'(a_t),      ε_{t−1} = μ_t W_hh

    (μ_t = dΩ/da_t in total, ε_t = dΩ/dh_t through later steps; the loop is
    :func:`gradlab.analysis.bptt.adjoints` with ``direct_{t−1} = e_t W_hh``).
    The gradients are outer products of these row vectors (u_tᵀ g_t is n × n)::

        ∂Ω/∂W_hh = Σ_t u_tᵀ g_t  +  Σ_t μ_tᵀ h_{t−1}        (explicit, trajectory)
        ∂Ω/∂W_xh = Σ_t μ_tᵀ x_t,        ∂Ω/∂b_h = Σ_t μ_t

    i.e. entry (i, j) of ∂Ω/∂W_hh is Σ_t (u_t,i g_t,j + μ_t,i h_{t−1,j}).
    ``freeze_dphi`` keeps the first term only. For ReLU and linear φ'' = 0,
    so e = μ = 0 and the two conventions agree.

    References
    ----------
    Pascanu, Mikolov & Bengio (2013), §3.3; ``RNN.py`` of
    https://github.com/pascanur/trainingRNNs (lines 166–217).
    """
    if not isinstance(trace, Trace):
        raise GradlabError(f"the regulariser's gradient is implemented for the vanilla RNN only, "
                           f"not for a {type(trace).__name__} (a gated cell has no φ'' rule here)")
    delta, v, p, ratio2, kept = _norm_ratios(trace, lam, bound)
    value = _penalty(ratio2, kept, squared)
    zeros = {"W_xh": np.zeros(params.W_xh.shape), "W_hh": np.zeros(params.W_hh.shape),
             "b_h": np.zeros(params.b_h.shape)}
    n_kept = np.count_nonzero(kept)
    if n_kept == 0:
        return value, zeros
    if squared:
        coef = np.divide(4.0 * (ratio2 - 1.0), p, out=np.zeros_like(p), where=kept)
    else:
        r = np.sqrt(ratio2)
        coef = np.divide(2.0 * (r - 1.0), r * p, out=np.zeros_like(p), where=kept & (r > 0))
    g = (coef / n_kept)[..., None] * v                             # ∂Ω/∂v_t, (B, T, n)
    W = trace.W_hh
    u = delta * trace.dphi
    grads = dict(zeros, W_hh=sum_outer(u, g))                       # explicit W_hh in J_t
    if freeze_dphi:
        return value, grads
    e = delta * (g @ W.T) * second_derivative(trace.activation, trace.a)   # ∂Ω/∂a_t through φ'(a_t)
    direct = np.zeros(trace.h.shape)
    direct[:, :-1] = e @ W                                          # e_t reaches h_{t−1} through a_t
    mu = e + adjoints(trace, direct)[:, 1:] * trace.dphi            # dΩ/da_t in total
    grads["W_hh"] = grads["W_hh"] + sum_outer(mu, trace.h[:, :-1])
    grads["W_xh"] = input_weight_grad(mu, trace.x, params.d)
    grads["b_h"] = mu.sum(axis=(0, 1))
    return value, grads


def omega_grads(params, trace: Trace, lam: np.ndarray, squared: bool = False, freeze_dphi: bool = False,
                bound: float = BOUND) -> dict[str, np.ndarray]:
    """∂Ω/∂θ for W_xh, W_hh, b_h with δ held constant; see :func:`omega_and_grads`."""
    return omega_and_grads(params, trace, lam, squared, freeze_dphi, bound)[1]
