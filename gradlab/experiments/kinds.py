"""The kinds of run a sweep can hold: one registry, :data:`KINDS`.

A kind turns one point of a sweep (a plain parameter dict) into a validated
config and computes it into a summary row and tables; the sweep runner
(:mod:`gradlab.experiments.sweep`) does the rest (grid, seeds, parallel
execution, resume, provenance) the same way for every kind. Adding a kind is
one :class:`SweepKind` entry here.

=============  =====================================================  ============================================
kind           one run                                                tables (besides ``runs.csv``)
=============  =====================================================  ============================================
``run``        :func:`gradlab.analyse` (RunConfig)                    ``norms`` (per lag), ``spectrum``
``train``      :func:`gradlab.train` (TrainConfig)                    ``training``, ``evaluation``, ``jacobians``
``truncation`` truncated vs exact BPTT at one K (RunConfig + K)       ``truncation``
``lyapunov``   λ₁ of a random autonomous network (activation, g, …)   ``lyapunov``; at the end ``mean_field``,
                                                                      ``transitions`` (theory)
=============  =====================================================  ============================================
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import pandas as pd

from ..analysis.gradcheck import truncation_errors
from ..analysis.spectrum import recurrent_spectral_scale, step_bound
from ..analysis.tables import norms_by_lag
from ..errors import GradlabError, check_positive_int, config_from_dict
from ..training.loop import TrainConfig, train
from . import chaos
from .config import RunConfig
from .runner import analyse, build_model, finite_forward


@dataclass(frozen=True)
class SweepKind:
    """One kind of sweep run.

    Attributes
    ----------
    name : str
    make_config : callable
        ``params -> config``: validates one point (a one-line GradlabError
        naming a bad key or value).
    compute : callable
        ``(config, quiet) -> (summary, tables)``: the run's summary figures
        (one row of ``runs.csv``) and its long tables.
    files : callable
        ``config -> {name: path}``: the files the run reads (weights, inputs).
    check : callable
        ``config -> None``: reads those files once before a sweep starts
        (a run reads them only when it starts), so a bad file fails first.
    finish : callable or None
        ``(points) -> tables`` computed once from all the sweep's parameter
        points when it is merged (theory curves).
    key_figures : tuple of str
        The ``runs.csv`` columns ``gradlab inspect`` summarises per group.
    """

    name: str
    make_config: Callable[[dict], object]
    compute: Callable[[object, bool], tuple[dict, dict]]
    files: Callable[[object], dict] = lambda config: {}
    check: Callable[[object], None] = lambda config: None
    finish: Callable[[list], dict] | None = None
    key_figures: tuple[str, ...] = field(default=())


# ---------------------------------------------------------------- run

def _run_files(config: RunConfig) -> dict:
    return {k: v for k, v in (("weights", config.weights), ("input_seq", config.input_seq)) if v is not None}


def _check_run(config: RunConfig) -> None:
    if _run_files(config):
        build_model(config)


def _compute_run(config: RunConfig, quiet: bool):
    result = analyse(config, workers=1)      # a sweep parallelises over runs: one thread each
    summary = {("loss_value" if k == "loss" else k): v for k, v in result.summary.items()}  # `loss` is a parameter
    return summary, {"norms": norms_by_lag(result.tables["norms"]), "spectrum": result.tables["spectrum"]}


# ---------------------------------------------------------------- truncation

@dataclass(frozen=True)
class TruncationConfig:
    """A run of a truncation sweep: the network of a :class:`RunConfig` and K of ``bptt_truncate``."""

    run: RunConfig
    truncate: int

    @classmethod
    def from_dict(cls, params: dict) -> "TruncationConfig":
        rest = dict(params)
        if "truncate" not in rest:
            raise GradlabError("a truncation sweep needs the parameter 'truncate' (K of bptt_truncate)")
        K = rest.pop("truncate")
        check_positive_int(K, "truncate", minimum=0)
        return cls(RunConfig.from_dict(rest), K)

    def to_dict(self) -> dict:
        return {**self.run.to_dict(), "truncate": self.truncate}


def _compute_truncation(config: TruncationConfig, quiet: bool):
    model = build_model(config.run)
    trace = finite_forward(model)[0]
    c = model.config
    errors = truncation_errors(model.params, model.x, model.y, [config.truncate], loss=c.loss_name,
                               loss_steps=c.loss_steps, cell=model.cell)
    rho, smax = recurrent_spectral_scale(model.cell, model.params)
    summary = {"rho": rho, "sigma_max": smax, "gamma_h": step_bound(model.cell, model.params, trace).gamma_h,
               "rel_error": float(errors.loc[errors["parameter"] == "all", "rel_error"].iloc[0])}
    return summary, {"truncation": errors.drop(columns="truncate")}


# ---------------------------------------------------------------- train

def _compute_train(config: TrainConfig, quiet: bool):
    result = train(config, quiet=quiet)
    return result.summary, result.tables


# ---------------------------------------------------------------- lyapunov

def _lyapunov_config(params: dict) -> chaos.LyapunovConfig:
    return config_from_dict(chaos.LyapunovConfig, params, "lyapunov")


def _compute_lyapunov(config: chaos.LyapunovConfig, quiet: bool):
    lam = chaos.measure_exponent(config)
    return {"lyapunov": lam}, {"lyapunov": pd.DataFrame({"n": [config.hidden], "lyapunov": [lam]})}


KINDS: dict[str, SweepKind] = {
    "run": SweepKind("run", RunConfig.from_dict, _compute_run, _run_files, _check_run,
                     key_figures=("growth_rate", "bound_rate", "asymptotic_rate")),
    "train": SweepKind("train", TrainConfig.from_dict, _compute_train,
                       key_figures=("final_metric", "final_loss", "n_clipped", "n_skipped")),
    "truncation": SweepKind("truncation", TruncationConfig.from_dict, _compute_truncation,
                            lambda config: _run_files(config.run), lambda config: _check_run(config.run),
                            key_figures=("rel_error",)),
    "lyapunov": SweepKind("lyapunov", _lyapunov_config, _compute_lyapunov, finish=chaos.theory_tables,
                          key_figures=("lyapunov",)),
}


def get_kind(name: str) -> SweepKind:
    """The kind registered as ``name`` (one-line error naming the choices)."""
    if name not in KINDS:
        raise GradlabError(f"unknown kind {name!r}; choose one of {', '.join(KINDS)}")
    return KINDS[name]
