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
                      "eigenvalues and singular values of W_hh (of J_T for a gated cell: column matrix)",
                      text=frozenset({"kind", "matrix"})),
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
    "transitions": Table("transitions.csv", ("activation", "g_critical"),
                         ("sweep:lyapunov", "lyapunov", "sweep:lyapunov_spectrum"),
                         "critical gain (χ₁ = 1) per activation", text=frozenset({"activation"})),
    # gradlab lyapunov --spectrum (a sweep of kind "lyapunov_spectrum"); not `spectrum`, the eigenvalues of W_hh
    "lyapunov_spectrum": Table("lyapunov_spectrum.csv", ("run_id", "sequence", "index", "exponent", "index_fraction"),
                               ("sweep:lyapunov_spectrum",),
                               "Lyapunov exponents λ_i (nats/step, QR every step) per run and sequence, i = 1 … k, "
                               "with i/s", text=_RUN),
    "lyapunov_summary": Table("lyapunov_summary.csv", ("run_id", "sequence", "state_size", "n_exponents",
                                                       "counted_steps", "largest", "mean_exponent", "sum_exponents",
                                                       "kaplan_yorke", "ks_entropy"), ("sweep:lyapunov_spectrum",),
                              "per run and sequence: λ₁, mean exponent, Kaplan–Yorke dimension D_KY, KS entropy "
                              "h_KS (Pesin, nats/step)", text=_RUN),
    "lyapunov_local": Table("lyapunov_local.csv", ("run_id", "sequence", "window_index", "t_start", "t_end", "index",
                                                   "exponent"), ("sweep:lyapunov_spectrum",),
                            "finite-time Lyapunov exponents over windows of steps t_start … t_end (the leading local_leading)",
                            text=_RUN),
    # gradlab fixed-points (a sweep of kind "fixed_points")
    "fixed_points": Table("fixed_points.csv", ("run_id", "point_id", "kind", "q", "speed", "n_starts", "n_unstable",
                                               "stability", "max_abs_eigenvalue", "pc1", "pc2", "pc3"),
                          ("sweep:fixed_points",),
                          "fixed and slow points under x = 0: q = ½‖F(s) − s‖², stability from |λ| of J, "
                          "PCA coordinates, then the state s0 … s{s−1}", text=_RUN | {"kind", "stability"}),
    "fixed_point_eigenvalues": Table("fixed_point_eigenvalues.csv", ("run_id", "point_id", "index", "real", "imag",
                                                                     "abs"), ("sweep:fixed_points",),
                                     "eigenvalues of the step Jacobian at each fixed or slow point, by decreasing |λ|",
                                     text=_RUN),
    "fixed_point_starts": Table("fixed_point_starts.csv", ("run_id", "start_id", "status", "q", "grad_norm",
                                                           "point_id", "distance"), ("sweep:fixed_points",),
                                "every start of the search: fixed, slow, not_converged or non_finite, the point it "
                                "found (−1: none)", text=_RUN | {"status"}),
    "trajectories": Table("trajectories.csv", ("run_id", "sequence", "t", "pc1", "pc2", "pc3"), ("sweep:fixed_points",),
                          "recorded states (where the starts came from) on the top three principal axes", text=_RUN),
    # gradlab sweep (one folder; parameter columns follow run_id)
    "runs": Table("runs.csv", ("run_id", "param_hash", "wall_time_s"), ("sweep:run",),
                  "one row per run: parameters, hash, ρ, σ_max, fitted rates, final metrics, wall time",
                  text=frozenset({"run_id", "param_hash"})),
    # the same file of a training sweep (or `gradlab train` folder), with what training reached
    "train_runs": Table("runs.csv", ("run_id", "param_hash", "final_error_rate", "solved", "updates_to_solve",
                                     "updates_done", "wall_time_s"), ("sweep:train",),
                        "(training) also final error rate, solved (< 1 %), updates to solve and done",
                        text=frozenset({"run_id", "param_hash"}), flags=frozenset({"solved"})),
    "sweep_norms": Table("norms.csv", ("run_id",) + _PER_LAG, ("sweep:run",),
                         "‖∂s_t/∂s_k‖ (log10) aggregated per run and lag", text=_RUN),
    "sweep_spectrum": Table("spectrum.csv", ("run_id", "kind", "index", "real", "imag", "abs"), ("sweep:run",),
                            "eigenvalues and singular values per run", text=_RUN | {"kind", "matrix"}),
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
        table = pd.read_csv(path, low_memory=False)   # whole-file dtypes: a sweep's sparse columns stay one type
    except FileNotFoundError:
        raise GradlabError(f"no such file {str(path)!r}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise GradlabError(f"cannot read {str(path)!r} as CSV: {e}") from None
    return require_columns(table, TABLES[kind].columns, str(path))
