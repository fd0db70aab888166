"""The tables gradlab writes: one registry, :data:`TABLES`, read by the writers, ``gradlab inspect``,
``gradlab plot`` and the docs.

Each entry says which file holds the table, the columns it must have (the
contract: adding columns is fine; renaming or removing one is a breaking
change), which of them hold text or True/False (every other one holds
numbers), which kinds of results folder hold it, and what it is.

Sweep tables carry, after ``run_id``, one column per run parameter (e.g.
``activation``, ``radius``, ``clip``, ``seed``), so every row stands alone.
Folder kinds: ``runs`` = ``gradlab run`` folders (one, or a folder of them),
``sweep:KIND`` = a sweep folder of that kind (a ``gradlab train`` folder is
a one-run sweep of kind ``train``, a ``gradlab lyapunov`` folder one of kind
``lyapunov``; ``lyapunov`` alone is such a folder written by gradlab 0.1).
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..errors import GradlabError


@dataclass(frozen=True)
class Table:
    """One table gradlab writes.

    Attributes
    ----------
    file : str
        The CSV's name in its results folder.
    columns : tuple of str
        The columns it must have, in order.
    text : frozenset of str
        Columns among ``columns`` holding text; ``flags`` those holding True/False.
    folders : tuple of str
        Kinds of results folder that hold it (module docstring).
    description : str
        What one row is, for ``gradlab inspect`` and the docs.
    """

    file: str
    columns: tuple[str, ...]
    folders: tuple[str, ...]
    description: str
    text: frozenset = frozenset()
    flags: frozenset = frozenset()

    @property
    def numbers(self) -> tuple[str, ...]:
        """The contract columns holding numbers (``inf``, ``-inf`` and empty cells included)."""
        return tuple(c for c in self.columns if c not in self.text | self.flags)


_RUN = frozenset({"run_id"})
_PER_LAG = ("lag", "n_pairs", "mean_log10_norm", "median_log10_norm", "min_log10_norm", "max_log10_norm",
            "log10_bound", "log10_rate")

TABLES: dict[str, Table] = {
    # gradlab run
    "norms": Table("norms.csv", ("seq", "t", "k", "lag", "log10_norm", "log10_bound", "log10_rate"), ("runs",),
                   "‖∂s_t/∂s_k‖ (log10) per sequence and pair, with the bound and the ρ-rate"),
    "spectrum": Table("spectrum.csv", ("kind", "index", "real", "imag", "abs"), ("runs", "sweep:run"),
                      "eigenvalues and singular values of W_hh (of J_T for a gated cell)", text=frozenset({"kind"})),
    "grads": Table("grads.csv", ("seq", "k", "log10_grad_norm"), ("runs",), "‖∂L/∂s_k‖ (log10) per step"),
    "cell_state": Table("cell_state.csv", ("seq", "t", "k", "lag", "log10_norm_full", "log10_norm_forget",
                                           "log10_norm_exact"), ("runs",),
                        "LSTM cell-state chain ‖∏ ∂C_j/∂C_{j−1}‖: four-term, forget-only and exact (--cell lstm)"),
    "layers": Table("layers.csv", ("seq", "layer", "t", "k", "lag", "log10_norm"), ("runs",),
                    "stacked layers: ‖∂h^l_t/∂h^l_k‖ (log10) of each layer l's own block (--layers L)"),
    # gradlab lyapunov (a sweep of kind "lyapunov")
    "lyapunov": Table("lyapunov.csv", ("activation", "g", "seed", "n", "steps", "warmup", "lyapunov"),
                      ("sweep:lyapunov", "lyapunov"), "measured largest Lyapunov exponent per network, nats/step",
                      text=frozenset({"activation"})),
    "mean_field": Table("mean_field.csv", ("activation", "g", "q_star", "chi1", "lyapunov"),
                        ("sweep:lyapunov", "lyapunov"), "mean-field q*, χ₁ and ½ ln χ₁ on a fine grid of g",
                        text=frozenset({"activation"})),
    "transitions": Table("transitions.csv", ("activation", "g_critical"), ("sweep:lyapunov", "lyapunov"),
                         "critical gain (χ₁ = 1) per activation", text=frozenset({"activation"})),
    # gradlab sweep (one folder; parameter columns follow run_id)
    "runs": Table("runs.csv", ("run_id", "param_hash", "wall_time_s"), ("sweep:run",),
                  "one row per run: parameters, hash, ρ, σ_max, fitted rates, final metrics, wall time",
                  text=frozenset({"run_id", "param_hash"})),
    "sweep_norms": Table("norms.csv", ("run_id",) + _PER_LAG, ("sweep:run",),
                         "‖∂s_t/∂s_k‖ (log10) aggregated per run and lag", text=_RUN),
    "sweep_spectrum": Table("spectrum.csv", ("run_id", "kind", "index", "real", "imag", "abs"), ("sweep:run",),
                            "eigenvalues and singular values per run", text=_RUN | {"kind"}),
    "training": Table("training.csv", ("run_id", "step", "loss", "grad_norm", "clipped_grad_norm", "clipped",
                                       "skipped", "rho", "sigma_max"), ("sweep:train",),
                      "one row per update: loss, gradient norm before/after clipping, ρ, σ_max",
                      text=_RUN, flags=frozenset({"clipped", "skipped"})),
    "evaluation": Table("evaluation.csv", ("run_id", "step", "eval_loss", "metric_name", "metric"), ("sweep:train",),
                        "held-out loss and task metric at intervals", text=_RUN | {"metric_name"}),
    "jacobians": Table("jacobians.csv", ("run_id", "step") + _PER_LAG, ("sweep:train",),
                       "Jacobian-norm curve per lag during training", text=_RUN),
    "truncation": Table("truncation.csv", ("run_id", "truncate", "parameter", "rel_error"), ("sweep:truncation",),
                        "relative error of truncated BPTT per parameter", text=_RUN | {"parameter"}),
}

# The column contracts alone (gradlab 0.1's name for them).
COLUMNS: dict[str, tuple[str, ...]] = {name: table.columns for name, table in TABLES.items()}

# What else a results folder holds besides the tables, for `gradlab inspect`.
OTHER_FILES = {
    "manifest.json": "what was run: config or sweep file, versions, code fingerprint",
    "parts": "one folder per finished run (what a resumed sweep skips)",
}


def file_descriptions() -> dict[str, str]:
    """File name → what it holds, for every file a results folder may hold (tables sharing a file joined)."""
    described: dict[str, list[str]] = {}
    for table in TABLES.values():
        described.setdefault(table.file, [])
        if table.description not in described[table.file]:
            described[table.file].append(table.description)
    return {**OTHER_FILES, **{file: "; or ".join(d) for file, d in described.items()}}


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
    return require_columns(table, TABLES[kind].columns, str(path))
