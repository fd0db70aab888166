"""The spectrum of W_hh and the constants of the gradient bound.

* γ_W = σ_max(W_hh), the operator 2-norm — the constant of the bound
  ‖∂h_t/∂h_k‖₂ ≤ (γ_W γ_h)^(t−k) (Pascanu et al. 2013, §2.1).
* ρ(W_hh), the spectral radius, is *not* a bound: for a non-normal W,
  ‖W^k‖ > ρ^k at small k (transient growth). It is the asymptotic rate,
  ρ = lim ‖W^k‖^(1/k) (Gelfand's formula).
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def eigenvalues(W: np.ndarray) -> np.ndarray:
    """Eigenvalues of W, (n,) complex, sorted by modulus, largest first."""
    lam = np.linalg.eigvals(W)
    return lam[np.argsort(-np.abs(lam), kind="stable")]


def singular_values(W: np.ndarray) -> np.ndarray:
    """Singular values of W, (n,), largest first."""
    return np.linalg.svd(W, compute_uv=False)


def spectral_radius(W: np.ndarray) -> float:
    """ρ(W) = max |λ_i(W)|."""
    return float(np.max(np.abs(np.linalg.eigvals(W))))


def sigma_max(W: np.ndarray) -> float:
    """σ_max(W) = ‖W‖₂, the γ_W of the bound."""
    return float(np.linalg.svd(W, compute_uv=False)[0])


def log_bound(lag: np.ndarray, W_hh: np.ndarray, gamma_h: float) -> np.ndarray:
    """Natural log of the bound (σ_max(W_hh) γ_h)^lag."""
    return np.asarray(lag) * np.log(sigma_max(W_hh) * gamma_h)


def log_rate(lag: np.ndarray, W_hh: np.ndarray) -> np.ndarray:
    """Natural log of ρ(W_hh)^lag: the asymptotic rate of a linear RNN, not a bound."""
    return np.asarray(lag) * np.log(spectral_radius(W_hh))


def spectrum_table(W: np.ndarray) -> pd.DataFrame:
    """Tidy table of eigenvalues and singular values.

    Columns: ``kind`` (``eigenvalue`` | ``singular_value``), ``index`` (0 =
    largest modulus), ``real``, ``imag``, ``abs``.
    """
    lam = eigenvalues(W)
    sv = singular_values(W)
    eig = pd.DataFrame({"kind": "eigenvalue", "index": np.arange(lam.size),
                        "real": lam.real, "imag": lam.imag, "abs": np.abs(lam)})
    sing = pd.DataFrame({"kind": "singular_value", "index": np.arange(sv.size),
                         "real": sv, "imag": 0.0, "abs": sv})
    return pd.concat([eig, sing], ignore_index=True)
