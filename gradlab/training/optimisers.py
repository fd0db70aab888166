"""Optimisers as small factories of pure functions (in the style of optax).

An optimiser is a pair of pure functions on dicts of arrays keyed by
parameter name (:class:`Optimiser`)::

    state = opt.init(params)                      # zeros shaped like the parameters
    updates, state = opt.update(grads, state)     # u_t from g_t = ∇_θ L(θ_{t−1})
    params = apply_updates(params, updates)       # θ_t = θ_{t−1} + u_t

Neither function modifies its arguments, so a training loop can compute an
update, look at it (is every new weight finite?) and throw it away together
with its state. Updates are *added*: a descent step is a negative update.

* :func:`sgd` — SGD with heavy-ball momentum (Polyak 1964), gradlab's
  historical ``v ← μ v − η g, θ ← θ + v``, equal to ``torch.optim.SGD``.
* :func:`adam` — Kingma & Ba (2015), with bias correction, equal to
  ``torch.optim.Adam``.
* :func:`rmsprop` — Tieleman & Hinton (2012), equal to ``torch.optim.RMSprop``
  (``centered=False``).

"Equal" means the same formulas in the same order of floating-point
operations, with torch's defaults; ``tests/training/test_optimisers.py``
checks ≤ 1e-12 relative agreement over many steps in float64.
:data:`OPTIMISERS` maps a name to its factory and :func:`get_optimiser`
builds one from a name and hyperparameters.
"""
from __future__ import annotations

import inspect
from numbers import Real
from typing import Callable, NamedTuple

import numpy as np

from ..errors import GradlabError, check_choice, check_positive_number

Params = dict[str, np.ndarray]


class Optimiser(NamedTuple):
    """A gradient transformation: ``init(params) -> state``, ``update(grads, state) -> (updates, state)``."""

    init: Callable[[Params], NamedTuple]
    update: Callable[[Params, NamedTuple], tuple[Params, NamedTuple]]


class SGDState(NamedTuple):
    """State of :func:`sgd`: the velocity v, shaped like the parameters."""

    velocity: Params


class AdamState(NamedTuple):
    """State of :func:`adam`: the step count t and the moment estimates m_t, v_t."""

    count: int
    mu: Params
    nu: Params


class RMSPropState(NamedTuple):
    """State of :func:`rmsprop`: the running mean square v_t and the momentum buffer b_t."""

    nu: Params
    velocity: Params


def apply_updates(params: Params, updates: Params) -> Params:
    """θ + u for every parameter, as new arrays (the inputs are not modified).

    Parameters
    ----------
    params, updates : dict[str, numpy.ndarray]
        The same keys, arrays of matching shapes.
    """
    if params.keys() != updates.keys():
        raise GradlabError(f"updates are for {sorted(updates)}, parameters are {sorted(params)}")
    return {k: params[k] + updates[k] for k in params}


def zeros_like_params(params: Params) -> Params:
    """A zero array shaped like each parameter (float64)."""
    return {k: np.zeros(np.shape(p)) for k, p in params.items()}


def sgd(lr: float, momentum: float = 0.0) -> Optimiser:
    """Stochastic gradient descent with heavy-ball momentum (Polyak 1964).

    Parameters
    ----------
    lr : float
        Learning rate η > 0.
    momentum : float
        μ in [0, 1); 0 is plain SGD, u = −η g.

    Notes
    -----
    gradlab's form (the training loop's since the start), with v_0 = 0::

        v_t = μ v_{t−1} − η g_t,        θ_t = θ_{t−1} + v_t

    ``torch.optim.SGD`` (dampening 0, no Nesterov) keeps b_t = μ b_{t−1} + g_t
    and steps θ_t = θ_{t−1} − η b_t. For a *constant* η the two are the same
    method: by induction v_t = −η b_t (true at t = 0, and
    μ v_{t−1} − η g_t = −η (μ b_{t−1} + g_t)). They differ once η changes
    between steps: torch then rescales the whole accumulated velocity by the
    new η, while here each gradient keeps the η it was taken with.

    References
    ----------
    B. T. Polyak (1964), "Some methods of speeding up the convergence of
    iteration methods", USSR Comput. Math. & Math. Phys. 4(5).

    Examples
    --------
    >>> import numpy as np
    >>> opt = sgd(0.1, momentum=0.9)
    >>> state = opt.init({"w": np.zeros(2)})
    >>> u, state = opt.update({"w": np.array([1.0, -2.0])}, state)
    >>> u["w"]
    array([-0.1,  0.2])
    """
    check_positive_number(lr, "learning rate lr")
    check_fraction(momentum, "momentum")

    def init(params: Params) -> SGDState:
        return SGDState(zeros_like_params(params))

    def update(grads: Params, state: SGDState) -> tuple[Params, SGDState]:
        v = {k: momentum * state.velocity[k] - lr * g for k, g in grads.items()}
        return dict(v), SGDState(v)

    return Optimiser(init, update)


def adam(lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Optimiser:
    """Adam: steps scaled by bias-corrected first and second moment estimates (Kingma & Ba 2015).

    Parameters
    ----------
    lr : float
        Step size α > 0 (torch's default is 1e-3).
    b1, b2 : float
        Decay rates β₁, β₂ in [0, 1) of the moment estimates.
    eps : float
        ε > 0 added to the denominator.

    Notes
    -----
    With m_0 = v_0 = 0 and t = 1, 2, … (torch's order of operations)::

        m_t = β₁ m_{t−1} + (1 − β₁) g_t
        v_t = β₂ v_{t−1} + (1 − β₂) g_t²
        u_t = −(α / (1 − β₁ᵗ)) m_t / (√v_t / √(1 − β₂ᵗ) + ε)

    The bias corrections make the first step ≈ −α sign(g_1), whatever the
    gradient's scale. ε sits outside the corrected square root, as in
    ``torch.optim.Adam`` (and Algorithm 1 of the paper).

    References
    ----------
    D. P. Kingma & J. Ba (2015), "Adam: A method for stochastic
    optimization", ICLR.
    """
    check_positive_number(lr, "learning rate lr")
    check_fraction(b1, "b1")
    check_fraction(b2, "b2")
    check_positive_number(eps, "eps")

    def init(params: Params) -> AdamState:
        return AdamState(0, zeros_like_params(params), zeros_like_params(params))

    def update(grads: Params, state: AdamState) -> tuple[Params, AdamState]:
        t = state.count + 1
        m = {k: b1 * state.mu[k] + (1 - b1) * g for k, g in grads.items()}
        v = {k: b2 * state.nu[k] + (1 - b2) * (g * g) for k, g in grads.items()}
        step_size = lr / (1 - b1 ** t)
        root_correction = np.sqrt(1 - b2 ** t)
        u = {k: -step_size * (m[k] / (np.sqrt(v[k]) / root_correction + eps)) for k in grads}
        return u, AdamState(t, m, v)

    return Optimiser(init, update)


def rmsprop(lr: float, alpha: float = 0.99, eps: float = 1e-8, momentum: float = 0.0) -> Optimiser:
    """RMSprop: divide the gradient by a running root mean square (Tieleman & Hinton 2012).

    Parameters
    ----------
    lr : float
        Learning rate η > 0 (torch's default is 1e-2).
    alpha : float
        Smoothing constant α in [0, 1) of the mean square.
    eps : float
        ε > 0 added to the root mean square.
    momentum : float
        μ in [0, 1) on the scaled gradient; 0 is plain RMSprop.

    Notes
    -----
    With v_0 = b_0 = 0 (``torch.optim.RMSprop``, ``centered=False``)::

        v_t = α v_{t−1} + (1 − α) g_t²
        b_t = μ b_{t−1} + g_t / (√v_t + ε)
        u_t = −η b_t

    There is no bias correction: early steps are large (the first is
    −η g / (√(1 − α)|g| + ε) ≈ −10 η sign(g) for α = 0.99).

    References
    ----------
    T. Tieleman & G. Hinton (2012), Lecture 6.5, "RMSProp: Divide the
    gradient by a running average of its recent magnitude", COURSERA: Neural
    Networks for Machine Learning.
    """
    check_positive_number(lr, "learning rate lr")
    check_fraction(alpha, "alpha")
    check_positive_number(eps, "eps")
    check_fraction(momentum, "momentum")

    def init(params: Params) -> RMSPropState:
        return RMSPropState(zeros_like_params(params), zeros_like_params(params))

    def update(grads: Params, state: RMSPropState) -> tuple[Params, RMSPropState]:
        v = {k: alpha * state.nu[k] + (1 - alpha) * (g * g) for k, g in grads.items()}
        b = {k: momentum * state.velocity[k] + g / (np.sqrt(v[k]) + eps) for k, g in grads.items()}
        u = {k: -lr * b[k] for k in grads}
        return u, RMSPropState(v, b)

    return Optimiser(init, update)


OPTIMISERS: dict[str, Callable[..., Optimiser]] = {"sgd": sgd, "adam": adam, "rmsprop": rmsprop}


def get_optimiser(name: str, lr: float, momentum: float = 0.0, **hyper) -> Optimiser:
    """The optimiser ``name`` (``sgd``, ``adam``, ``rmsprop``) with learning rate ``lr``.

    Parameters
    ----------
    name : str
        A key of :data:`OPTIMISERS`.
    lr : float
    momentum : float
        For ``sgd`` and ``rmsprop``; ``adam`` refuses a non-zero momentum
        (its b1 plays that part).
    **hyper
        The optimiser's other hyperparameters (``b1``, ``b2``, ``eps``,
        ``alpha``); one it does not take is an error.

    Examples
    --------
    >>> opt = get_optimiser("adam", 1e-3, b2=0.99)
    >>> get_optimiser("adam", 1e-3, momentum=0.9)
    Traceback (most recent call last):
    ...
    gradlab.errors.GradlabError: optimiser 'adam' takes no momentum; it takes lr, b1, b2, eps
    """
    check_choice(name, OPTIMISERS, "optimiser")
    factory = OPTIMISERS[name]
    takes = list(inspect.signature(factory).parameters)
    if isinstance(momentum, bool) or not (isinstance(momentum, Real) and momentum == 0):  # 0: every default
        hyper["momentum"] = momentum
    for key in hyper:
        if key not in takes[1:]:
            raise GradlabError(f"optimiser {name!r} takes no {key}; it takes {', '.join(takes)}")
    return factory(lr, **hyper)


def check_fraction(value, name: str) -> None:
    """A real number in [0, 1) (momenta, decay rates), or a one-line :class:`GradlabError`."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= value < 1:
        raise GradlabError(f"{name} must be a number in [0, 1), got {value!r}")
