"""Tidy tables from analysis results: one row per observation, the CSVs' long form.

``LOG10_E`` converts the natural logs the analysis works in to the base-10
logs the CSVs hold. The columns are those of :data:`gradlab.io.schema.TABLES`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .jacobian_norms import JacobianNorms

LOG10_E = np.log10(np.e)


def norms_table(norms: JacobianNorms, bound_factor: float, rate_factor: float) -> pd.DataFrame:
    """Long table: ``seq, t, k, lag, log10_norm, log10_bound, log10_rate``.

    ``log10_bound`` = lag · log10(bound_factor) (e.g. σ_max γ_h) and
    ``log10_rate`` = lag · log10(rate_factor) (e.g. ρ(W_hh); NaN when there is none).
    """
    B, P = norms.log_norm.shape
    lag = np.tile(norms.lag, B)
    return pd.DataFrame({
        "seq": np.repeat(np.arange(B), P),
        "t": np.tile(norms.t, B),
        "k": np.tile(norms.k, B),
        "lag": lag,
        "log10_norm": norms.log_norm.ravel() * LOG10_E,
        "log10_bound": lag * np.log10(bound_factor),
        "log10_rate": lag * np.log10(rate_factor),
    })


def norms_by_lag(norms: pd.DataFrame) -> pd.DataFrame:
    """Aggregate a :func:`norms_table` over t and sequences, one row per lag.

    Columns: ``lag, n_pairs, mean_log10_norm, median_log10_norm,
    min_log10_norm, max_log10_norm, log10_bound, log10_rate`` (the bound and
    rate depend on the lag only). This is the ``norms.csv`` of a sweep.
    """
    by = norms.groupby("lag", sort=True)
    v = by["log10_norm"]
    return pd.DataFrame({
        "lag": np.asarray(list(by.groups)),
        "n_pairs": v.size().to_numpy(),
        "mean_log10_norm": v.mean().to_numpy(),
        "median_log10_norm": v.median().to_numpy(),
        "min_log10_norm": v.min().to_numpy(),
        "max_log10_norm": v.max().to_numpy(),
        "log10_bound": by["log10_bound"].first().to_numpy(),
        "log10_rate": by["log10_rate"].first().to_numpy(),
    })


def grads_table(log_grad_norms: np.ndarray) -> pd.DataFrame:
    """Long table: ``seq, k, log10_grad_norm`` (‖∂L/∂s_k‖₂)."""
    B, K = log_grad_norms.shape
    return pd.DataFrame({
        "seq": np.repeat(np.arange(B), K),
        "k": np.tile(np.arange(K), B),
        "log10_grad_norm": log_grad_norms.ravel() * LOG10_E,
    })
