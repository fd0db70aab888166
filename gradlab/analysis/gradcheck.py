"""Gradient checks: BPTT against central finite differences, and truncated
BPTT against the exact gradient, for any cell.

The relative error of a parameter is the largest entrywise difference divided
by the largest entry of the two gradients,

    err(θ) = max_i |g_i − f_i| / max(max_i |g_i|, max_i |f_i|),

which does not blow up on entries that are zero or vanishingly small (as
many are when gradients vanish), yet still flags any entry that is off by a
meaningful fraction of the gradient's scale.

Kinks. A central difference (L(θ + ε e_i) − L(θ − ε e_i)) / 2ε is a
derivative only where L is smooth between θ − ε e_i and θ + ε e_i. With a
ReLU, a perturbation that moves any pre-activation across 0 switches a unit
on or off, and the difference then measures that jump, not ∂L/∂θ_i (BPTT is
right there; the check is not). Such entries are found by comparing which
side of φ's kinks every pre-activation lies on in the two perturbed passes
with the unperturbed pass (``trace.kink_sides()``), and are left out of the
comparison and counted.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
import pandas as pd

from ..cells.rnn import RNNCell
from .bptt import gradients, output_errors

if TYPE_CHECKING:
    from ..cells.activations import Activation
    from ..cells.base import Cell

FD_EPS = 1e-5
READOUT = ("W_hy", "b_y")


def _cell(cell, activation):
    return RNNCell(activation) if cell is None else cell


@overload
def finite_difference_grads(params: Any, x: np.ndarray, y: np.ndarray, activation: str | Activation = ...,
                            loss: str = ..., loss_steps: str = ..., eps: float = ..., cell: Cell | None = ...,
                            with_kinks: Literal[False] = ...) -> dict[str, np.ndarray]: ...
@overload
def finite_difference_grads(params: Any, x: np.ndarray, y: np.ndarray, activation: str | Activation = ...,
                            loss: str = ..., loss_steps: str = ..., eps: float = ..., cell: Cell | None = ...,
                            *, with_kinks: Literal[True]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]: ...
def finite_difference_grads(params: Any, x: np.ndarray, y: np.ndarray, activation: str | Activation = "tanh",
                            loss: str = "mse", loss_steps: str = "all", eps: float = FD_EPS,
                            cell: Cell | None = None, with_kinks: bool = False
                            ) -> dict[str, np.ndarray] | tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Central differences (L(θ + ε e_i) − L(θ − ε e_i)) / 2ε for every entry of every parameter.

    Parameters
    ----------
    params : the cell's parameters (an :class:`~gradlab.cells.rnn.RNNParams` by default)
    activation : str
        φ of the vanilla RNN (when ``cell`` is None).
    cell : Cell, optional
        Any cell of :data:`gradlab.cells.CELLS`; default ``RNNCell(activation)``.
    with_kinks : bool
        Also return, per parameter, a boolean array marking the entries whose
        ±ε perturbation moved a pre-activation across a kink of φ (module docstring).

    Returns
    -------
    dict of arrays shaped like the parameters (and the dict of kink masks when ``with_kinks``).
    """
    cell = _cell(cell, activation)
    base = cell.forward(params, x).kink_sides()
    grads, kinks = {}, {}
    arrays = params.as_dict()
    for name in cell.param_names + READOUT:
        theta = arrays[name]
        g, crossed = np.empty_like(theta), np.zeros(theta.shape, dtype=bool)
        for i in np.ndindex(theta.shape):
            plus, minus = theta.copy(), theta.copy()
            plus[i] += eps
            minus[i] -= eps
            losses = []
            for value in (plus, minus):
                p = params.replace(**{name: value})
                tr = cell.forward(p, x)
                losses.append(output_errors(p, tr, y, loss, loss_steps)[0])
                if base is not None and not np.array_equal(tr.kink_sides(), base):
                    crossed[i] = True
            g[i] = (losses[0] - losses[1]) / (2 * eps)
        grads[name], kinks[name] = g, crossed
    return (grads, kinks) if with_kinks else grads


def relative_error(g: np.ndarray, f: np.ndarray) -> float:
    """max |g − f| / max(max |g|, max |f|); 0 when both are zero, NaN when either is not finite."""
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(f))):
        return float("nan")
    if g.size == 0:
        return 0.0
    scale = max(np.max(np.abs(g)), np.max(np.abs(f)))
    return float(np.max(np.abs(g - f)) / scale) if scale > 0 else 0.0


def gradient_check(params: Any, x: np.ndarray, y: np.ndarray, activation: str | Activation = "tanh",
                   loss: str = "mse", loss_steps: str = "all", truncate: int | None = None,
                   cell: Cell | None = None) -> pd.DataFrame:
    """Compare BPTT with finite differences, parameter by parameter.

    Returns a table with one row per parameter: ``parameter``, ``entries``,
    ``kinks`` (entries left out because ±ε crossed a kink of φ; 0 for smooth
    cells), ``bptt_vs_fd`` (relative error of exact BPTT over the other
    entries). With ``truncate=K`` also ``truncated_vs_full`` (how far the
    truncated gradient is from the true one) and ``truncated_vs_fd`` (what the
    tutorial's gradient check reports, over the same entries).
    """
    cell = _cell(cell, activation)
    full = gradients(cell, params, x, y, loss, loss_steps).grads
    fd, kinks = finite_difference_grads(params, x, y, loss=loss, loss_steps=loss_steps, cell=cell, with_kinks=True)
    names = cell.param_names + READOUT
    rows = {name: {"parameter": name, "entries": full[name].size, "kinks": int(kinks[name].sum()),
                   "bptt_vs_fd": relative_error(full[name][~kinks[name]], fd[name][~kinks[name]])}
            for name in names}
    if truncate is not None:
        trunc = gradients(cell, params, x, y, loss, loss_steps, truncate=truncate).grads
        for name in names:
            rows[name]["truncated_vs_full"] = relative_error(trunc[name], full[name])
            rows[name]["truncated_vs_fd"] = relative_error(trunc[name][~kinks[name]], fd[name][~kinks[name]])
    return pd.DataFrame(list(rows.values()))


def truncation_errors(params: Any, x: np.ndarray, y: np.ndarray, truncations: Iterable[int],
                      activation: str | Activation = "tanh", loss: str = "mse", loss_steps: str = "all",
                      cell: Cell | None = None) -> pd.DataFrame:
    """Relative error of truncated BPTT against the exact gradient, per K.

    Returns a long table ``truncate, parameter, rel_error`` with
    rel_error = ‖g_K − g‖_F / ‖g‖_F per parameter, and a row per K for
    ``parameter = "all"`` (all parameters stacked).
    """
    cell = _cell(cell, activation)
    names = cell.param_names + READOUT
    full = gradients(cell, params, x, y, loss, loss_steps).grads
    full_all = np.concatenate([full[n].ravel() for n in names])
    rows = []
    for K in truncations:
        trunc = gradients(cell, params, x, y, loss, loss_steps, truncate=int(K)).grads
        for name in names:
            rows.append({"truncate": int(K), "parameter": name,
                         "rel_error": _frobenius_rel(trunc[name], full[name])})
        trunc_all = np.concatenate([trunc[n].ravel() for n in names])
        rows.append({"truncate": int(K), "parameter": "all", "rel_error": _frobenius_rel(trunc_all, full_all)})
    return pd.DataFrame(rows)


def _frobenius_rel(g: np.ndarray, ref: np.ndarray) -> float:
    norm = np.linalg.norm(ref)
    return float(np.linalg.norm(g - ref) / norm) if norm > 0 else float(np.linalg.norm(g))


__all__ = ["FD_EPS", "finite_difference_grads", "gradient_check", "relative_error",
           "truncation_errors"]
