"""Column contracts of every CSV gradlab writes.

Figures and ``gradlab inspect`` read CSVs only; this module is the single
place that says which columns each table must have. Adding columns is fine;
renaming or removing one is a breaking change (README, "Output files").

Sweep tables carry, after ``run_id``, one column per run parameter (e.g.
``activation``, ``radius``, ``clip``, ``seed``), so every row stands alone.
"""
from __future__ import annotations

import pandas as pd

from ..errors import GradlabError

COLUMNS: dict[str, tuple[str, ...]] = {
    # gradlab run
    "norms": ("seq", "t", "k", "lag", "log10_norm", "log10_bound", "log10_rate"),
    "spectrum": ("kind", "index", "real", "imag", "abs"),
    "grads": ("seq", "k", "log10_grad_norm"),
    "cell_state": ("seq", "t", "k", "lag", "log10_norm_full", "log10_norm_forget", "log10_norm_exact"),  # --cell lstm
    # gradlab lyapunov (measured largest exponent against mean-field theory)
    "lyapunov": ("activation", "g", "seed", "n", "steps", "warmup", "lyapunov"),
    "mean_field": ("activation", "g", "q_star", "chi1", "lyapunov"),
    "transitions": ("activation", "g_critical"),
    # gradlab sweep (one folder; parameter columns follow run_id)
    "runs": ("run_id", "param_hash", "wall_time_s"),
    "sweep_norms": ("run_id", "lag", "n_pairs", "mean_log10_norm", "median_log10_norm",
                    "min_log10_norm", "max_log10_norm", "log10_bound", "log10_rate"),
    "sweep_spectrum": ("run_id", "kind", "index", "real", "imag", "abs"),
    "training": ("run_id", "step", "loss", "grad_norm", "clipped_grad_norm", "clipped", "skipped",
                 "rho", "sigma_max"),
    "evaluation": ("run_id", "step", "eval_loss", "metric_name", "metric"),
    "jacobians": ("run_id", "step", "lag", "n_pairs", "mean_log10_norm", "median_log10_norm",
                  "min_log10_norm", "max_log10_norm", "log10_bound", "log10_rate"),
    "truncation": ("run_id", "truncate", "parameter", "rel_error"),
}


def require_columns(table: pd.DataFrame, columns, source: str) -> pd.DataFrame:
    """Raise a one-line GradlabError naming the first missing column."""
    for column in columns:
        if column not in table.columns:
            raise GradlabError(f"{source} lacks column {column!r} (has: {', '.join(map(str, table.columns))})")
    return table


def read_table(path, kind: str) -> pd.DataFrame:
    """Read a gradlab CSV and check it has the columns of table ``kind``."""
    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise GradlabError(f"no such file {str(path)!r}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise GradlabError(f"cannot read {str(path)!r} as CSV: {e}") from None
    return require_columns(table, COLUMNS[kind], str(path))
