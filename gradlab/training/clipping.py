"""Gradient clipping as small factories of pure functions (in the style of optax).

A clipping is a function ``grads -> grads`` on a dict of parameter gradients
(keys :data:`gradlab.params.PARAM_NAMES`); it never modifies its input.

* :func:`clip_by_global_norm` — Pascanu, Mikolov & Bengio (2013), Algorithm 1:
  with g the concatenation of every parameter's gradient,

      if ‖g‖ > τ then g ← τ g / ‖g‖

  The direction is kept; only the step length is capped.
* :func:`clip_by_value` — element-wise ``clip(g, −c, c)``, as in Karpathy's
  min-char-rnn. A different operation: it changes the direction of g.
* :func:`no_clipping` — the identity, so a training loop has one code path.

Clippings compose with :func:`chain` (applied left to right).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import check_choice, check_positive_number

Grads = dict[str, np.ndarray]
Clipping = Callable[[Grads], Grads]

CLIPPINGS = ("none", "norm", "value")


def global_norm(grads: Grads) -> float:
    """‖g‖₂ over all parameters stacked; inf or nan when any entry is."""
    return float(np.sqrt(sum(np.vdot(g, g) for g in grads.values())))


def clip_by_global_norm(tau: float) -> Clipping:
    """Rescale the whole gradient to norm τ when its norm exceeds τ.

    Pascanu et al. (2013), "On the difficulty of training recurrent neural
    networks", Algorithm 1. A non-finite gradient is returned unchanged: the
    training loop skips such updates rather than pretend to repair them.

    Examples
    --------
    >>> import numpy as np
    >>> clip = clip_by_global_norm(1.0)
    >>> global_norm(clip({"W_hh": np.array([[3.0, 4.0]])}))
    1.0
    """
    check_positive_number(tau, "norm clipping threshold τ")

    def clip(grads: Grads) -> Grads:
        norm = global_norm(grads)
        if not np.isfinite(norm) or norm <= tau:
            return dict(grads)
        scale = tau / norm
        return {name: g * scale for name, g in grads.items()}

    return clip


def clip_by_value(c: float) -> Clipping:
    """Clip every entry to [−c, c] (min-char-rnn's ``np.clip(dparam, -5, 5)``).

    Unlike norm clipping this changes the direction of the gradient; it is
    not Pascanu et al.'s Algorithm 1.
    """
    check_positive_number(c, "value clipping threshold c")

    def clip(grads: Grads) -> Grads:
        return {name: np.clip(g, -c, c) for name, g in grads.items()}

    return clip


def no_clipping() -> Clipping:
    """The identity clipping."""
    return dict


def chain(*clippings: Clipping) -> Clipping:
    """Apply clippings one after another, left to right."""
    def clip(grads: Grads) -> Grads:
        for f in clippings:
            grads = f(grads)
        return grads

    return clip


def get_clipping(name: str, threshold: float) -> Clipping:
    """The clipping named ``none``, ``norm`` (threshold τ) or ``value`` (threshold c)."""
    check_choice(name, CLIPPINGS, "clipping")
    if name == "norm":
        return clip_by_global_norm(threshold)
    if name == "value":
        return clip_by_value(threshold)
    return no_clipping()
