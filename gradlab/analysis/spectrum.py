"""The spectrum of W_hh and the constants of the gradient bound.

* γ_W = σ_max(W_hh), the operator 2-norm — the constant of the bound
  ‖∂h_t/∂h_k‖₂ ≤ (γ_W γ_h)^(t−k) (Pascanu et al. 2013, §2.1).
* ρ(W_hh), the spectral radius, is *not* a bound: for a non-normal W,
  ‖W^k‖ > ρ^k at small k (transient growth). It is the asymptotic rate,
  ρ = lim ‖W^k‖^(1/k) (Gelfand's formula).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..cells.init import sigma_max, spectral_radius  # defined with the initialisers that set them exactly

__all__ = ["eigenvalues", "singular_values", "spectral_radius", "sigma_max", "log_bound", "log_rate",
           "spectrum_table", "StepBound", "step_bound", "gamma_h", "block_spectra", "recurrent_spectral_scale"]


def eigenvalues(W: np.ndarray) -> np.ndarray:
    """Eigenvalues of W, (n,) complex, sorted by modulus, largest first."""
    lam = np.linalg.eigvals(W)
    return lam[np.argsort(-np.abs(lam), kind="stable")]


def singular_values(W: np.ndarray) -> np.ndarray:
    """Singular values of W, (n,), largest first."""
    return np.linalg.svd(W, compute_uv=False)


def log_bound(lag: np.ndarray, W_hh: np.ndarray, gamma_h: float) -> np.ndarray:
    """Natural log of the bound (σ_max(W_hh) γ_h)^lag."""
    return np.asarray(lag) * np.log(sigma_max(W_hh) * gamma_h)


def log_rate(lag: np.ndarray, W_hh: np.ndarray) -> np.ndarray:
    """Natural log of ρ(W_hh)^lag: the asymptotic rate of a linear RNN, not a bound."""
    return np.asarray(lag) * np.log(spectral_radius(W_hh))


def spectrum_table(W: np.ndarray, matrix: str | None = None) -> pd.DataFrame:
    """Tidy table of eigenvalues and singular values.

    Columns: ``kind`` (``eigenvalue`` | ``singular_value``), ``index`` (0 =
    largest modulus), ``real``, ``imag``, ``abs``, and with ``matrix`` a
    column ``matrix`` naming what W is (``W_hh``, or ``J_T`` for a gated cell).
    """
    lam = eigenvalues(W)
    sv = singular_values(W)
    eig = pd.DataFrame({"kind": "eigenvalue", "index": np.arange(lam.size),
                        "real": lam.real, "imag": lam.imag, "abs": np.abs(lam)})
    sing = pd.DataFrame({"kind": "singular_value", "index": np.arange(sv.size),
                         "real": sv, "imag": 0.0, "abs": sv})
    table = pd.concat([eig, sing], ignore_index=True)
    if matrix is not None:
        table["matrix"] = matrix
    return table


@dataclass(frozen=True)
class StepBound:
    """The constants that frame the measured ‖∂s_t/∂s_k‖ of one run, for any cell.

    Attributes
    ----------
    factor : float
        c with ‖∂s_t/∂s_k‖₂ ≤ c^(t−k) on this trajectory: σ_max(W) γ_h for a
        cell whose step Jacobian is diag(φ'(a_t)) W (a bound for every
        trajectory), else max_t ‖J_t‖₂ over the recorded steps
        (submultiplicativity; a bound for this trajectory only).
    gamma_h : float
        sup|φ'| (nan for a cell without a single φ, e.g. the gated cells).
    rate : float
        ρ(W), the asymptotic rate of a linear network (Gelfand), not a bound;
        nan for a cell without such a W (its rate is λ₁, ``summary["lyapunov"]``).
    matrix_name : str
        What :attr:`matrix` is: ``"W_hh"``, or ``"J_T"`` (the last step
        Jacobian of sequence 0) for a cell without one recurrent matrix.
    matrix : (s, s) the matrix whose spectrum the run reports
    """

    factor: float
    gamma_h: float
    rate: float
    matrix_name: str
    matrix: np.ndarray


def gamma_h(cell, params) -> float:
    """sup|φ'| of a cell whose step Jacobian is diag(φ'(a_t)) W (its ``step_matrix``); nan for other cells."""
    linear = getattr(cell, "step_matrix", lambda p: None)(params)
    return float("nan") if linear is None else linear[1]


def step_bound(cell, params, trace) -> StepBound:
    """The :class:`StepBound` of a run: from the cell's ``step_matrix`` when it has one, else from the trace."""
    linear = getattr(cell, "step_matrix", lambda p: None)(params)
    if linear is not None:
        W, gamma = linear
        return StepBound(sigma_max(W) * gamma, gamma, spectral_radius(W), "W_hh", W)
    smax = max(float(np.max(np.linalg.svd(trace.jacobian(t), compute_uv=False)[:, 0]))
               for t in range(1, trace.T + 1))
    return StepBound(smax, float("nan"), float("nan"), "J_T", trace.jacobian(trace.T)[0])


def block_spectra(blocks: dict[str, np.ndarray]) -> dict[str, float]:
    """ρ and σ_max of every n × n recurrent block (``rho_<name>``, ``sigma_max_<name>``) and the largest of
    each (``rho``, ``sigma_max``)."""
    out, rho, smax = {}, 0.0, 0.0
    for name, W in blocks.items():
        r, s = spectral_radius(W), sigma_max(W)
        out[f"rho_{name}"], out[f"sigma_max_{name}"] = r, s
        rho, smax = max(rho, r), max(smax, s)
    return {"rho": rho, "sigma_max": smax, **out}


def recurrent_spectral_scale(cell, params) -> tuple[float, float]:
    """(ρ, σ_max) of the recurrent weights: of W_hh, or the largest over a gated cell's n × n gate blocks."""
    spectra = block_spectra(cell.recurrent_blocks(params))
    return spectra["rho"], spectra["sigma_max"]
