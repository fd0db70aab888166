"""Output losses and their gradient with respect to the output o_t.

* ``xent``: softmax + cross-entropy, L_t = −log softmax(o_t)[y_t], with the
  classic simplification ∂L_t/∂o_t = ŷ_t − onehot(y_t) (Goodfellow et al.
  2016, eq. 10.18).
* ``mse``: mean squared error over the m outputs, L_t = ‖o_t − y_t‖² / m,
  ∂L_t/∂o_t = 2 (o_t − y_t) / m.

``loss_steps="all"`` sums L_t over every step (the tutorial's E = Σ_t E_t,
next-symbol prediction); ``"last"`` uses only t = T (long-memory tasks).
The total loss is averaged over the batch.
"""
from __future__ import annotations

import numpy as np
from scipy.special import log_softmax

from ..errors import GradlabError

LOSSES = ("xent", "mse")
LOSS_STEPS = ("all", "last")


def check_loss(loss: str, loss_steps: str) -> None:
    if loss not in LOSSES:
        raise GradlabError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    if loss_steps not in LOSS_STEPS:
        raise GradlabError(f"unknown loss_steps {loss_steps!r}; choose one of {', '.join(LOSS_STEPS)}")


def check_targets(y: np.ndarray, loss: str, loss_steps: str, B: int, T: int, m: int) -> np.ndarray:
    """Validate targets: class ids (B, T) / (B,) for xent, values (B, T, m) / (B, m) for mse."""
    y = np.asarray(y)
    shape = (B, T) if loss_steps == "all" else (B,)
    if loss == "xent":
        if not np.issubdtype(y.dtype, np.integer) or y.shape != shape:
            raise GradlabError(f"xent targets must be integer class ids of shape {shape}, got {y.dtype} {y.shape}")
        if y.size and (y.min() < 0 or y.max() >= m):
            raise GradlabError(f"class ids must lie in [0, {m}), got range [{y.min()}, {y.max()}]")
    elif y.shape != shape + (m,):
        raise GradlabError(f"mse targets must have shape {shape + (m,)}, got {y.shape}")
    return y


def loss_and_output_grad(o: np.ndarray, y: np.ndarray, loss: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-example losses L_t and ∂L_t/∂o_t.

    Parameters
    ----------
    o : (..., m) outputs
    y : (...) int class ids for ``xent``, (..., m) values for ``mse``

    Returns
    -------
    L : (...) losses, dL_do : (..., m)
    """
    if loss == "xent":
        logp = log_softmax(o, axis=-1)
        picked = np.take_along_axis(logp, y[..., None], axis=-1)[..., 0]
        g = np.exp(logp)
        np.put_along_axis(g, y[..., None], np.take_along_axis(g, y[..., None], axis=-1) - 1.0, axis=-1)
        return -picked, g
    m = o.shape[-1]
    r = o - y
    return np.sum(r * r, axis=-1) / m, 2.0 * r / m
