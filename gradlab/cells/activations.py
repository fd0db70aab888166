"""Activation functions φ with their derivatives φ' and γ_h = sup|φ'|.

Each activation's derivative is written beside its value (micrograd style) and
is expressed through the pre-activation ``a`` so that a forward pass can store
``dphi = φ'(a)`` once and every Jacobian ``diag(φ'(a_t)) W_hh`` reuses it.

==========  =====================  ==================  ======
name        φ(a)                   φ'(a)               γ_h
==========  =====================  ==================  ======
tanh        tanh(a)                1 − tanh(a)²        1
sigmoid     1 / (1 + e^(−a))       σ(a)(1 − σ(a))      1/4
relu        max(a, 0)              1[a > 0]            1
linear      a                      1                   1
==========  =====================  ==================  ======
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.special import expit

from ..errors import GradlabError


@dataclass(frozen=True)
class Activation:
    """An elementwise nonlinearity.

    Attributes
    ----------
    name : str
    value_and_derivative : callable
        ``a -> (φ(a), φ'(a))``, both with the shape of ``a``.
    gamma : float
        ``sup_a |φ'(a)|``, the constant γ_h of the bound (γ_W γ_h)^(t−k).
    kinks : tuple of float
        Where φ' jumps (ReLU: 0). A finite difference whose ±ε moves a
        pre-activation across a kink is not a derivative
        (:func:`gradlab.analysis.gradcheck.finite_difference_grads` leaves such entries out).
    """

    name: str
    value_and_derivative: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    gamma: float
    kinks: tuple[float, ...] = ()

    def __call__(self, a: np.ndarray) -> np.ndarray:
        return self.value_and_derivative(a)[0]

    def derivative(self, a: np.ndarray) -> np.ndarray:
        return self.value_and_derivative(a)[1]

    def side_of_kinks(self, a: np.ndarray) -> np.ndarray | None:
        """How many kinks lie below each pre-activation (int array like ``a``); None without kinks."""
        if not self.kinks:
            return None
        return sum((a > k).astype(np.int8) for k in self.kinks)


def _tanh(a):
    h = np.tanh(a)
    return h, 1.0 - h * h


def _sigmoid(a):
    h = expit(a)  # overflow-free logistic
    return h, h * (1.0 - h)


def _relu(a):
    on = a > 0
    h = np.where(on, a, 0.0)
    nan = np.isnan(a)
    if nan.any():   # a NaN pre-activation (an overflowed state) stays NaN, as in PyTorch: never a silent 0
        h[nan] = np.nan
    return h, on.astype(a.dtype)


def _linear(a):
    return a.copy(), np.ones_like(a)


ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation("tanh", _tanh, 1.0),
    "sigmoid": Activation("sigmoid", _sigmoid, 0.25),
    "relu": Activation("relu", _relu, 1.0, kinks=(0.0,)),
    "linear": Activation("linear", _linear, 1.0),
}


def get_activation(name: str | Activation) -> Activation:
    """Look up an activation by name; an :class:`Activation` passes through."""
    if isinstance(name, Activation):
        return name
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise GradlabError(
            f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}"
        ) from None
