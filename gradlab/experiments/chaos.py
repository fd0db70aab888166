"""The order-to-chaos transition: measured largest Lyapunov exponent against mean-field theory.

For each activation and gain g, a network with W_hh entries N(0, g²/n), no
input and no bias is run from a random state; after ``burn`` unrecorded
steps (the trajectory's own transient) ``steps`` steps are recorded and the
largest Lyapunov exponent is measured from their Jacobians
(:func:`gradlab.lyapunov.largest_lyapunov`, ``warmup`` aligning products).
Beside it: the mean-field exponent ½ ln χ₁ (:mod:`gradlab.mean_field`) on a
fine grid of g and the critical gain g_c where χ₁ = 1.

Tables (the CSVs of ``gradlab lyapunov``):

* ``lyapunov``: ``activation, g, seed, n, steps, warmup, lyapunov`` (measured, nats/step)
* ``mean_field``: ``activation, g, q_star, chi1, lyapunov`` (theory)
* ``transitions``: ``activation, g_critical``
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..cells.activations import get_activation
from ..errors import GradlabError, check_positive_int
from ..analysis.lyapunov import largest_lyapunov
from ..analysis.mean_field import compute_mean_field, critical_gain
from ..io.results import write_results
from ..cells.rnn import RNNParams, Trace, forward

DEFAULT_GAINS = {"tanh": "0.25:3:0.125", "sigmoid": "1:16:0.5", "relu": "0.25:2.5:0.125"}
MAX_GAINS = 1000   # a START:STOP:STEP with a tiny step would otherwise ask for billions of networks
THEORY_POINTS = 200
SCALE_FREE = ("relu", "linear")   # φ(c a) = c φ(a) for c > 0: the state's scale does not change J_t
CHUNK = 50


def autonomous_trace(n: int, g: float, activation: str, steps: int, burn: int,
                     rng: np.random.Generator) -> Trace:
    """Record ``steps`` steps of h_t = φ(W_hh h_{t−1}), W_hh ~ N(0, g²/n), after ``burn`` steps.

    h_0 ~ N(0, 1) per unit. For the scale-free φ (ReLU, linear) the state
    grows or decays geometrically and would overflow or underflow to exactly
    0 over thousands of steps; since rescaling h by c > 0 rescales every
    later state by c and leaves every Jacobian diag(φ'(a_t)) W_hh unchanged,
    the state is brought back to unit RMS every 50 steps. The trace's ``h``
    is then the trajectory up to a positive factor per block; its Jacobians
    are exact.
    """
    act = get_activation(activation)
    check_positive_int(n, "hidden size n")
    check_positive_int(steps, "steps")
    check_positive_int(burn, "burn", minimum=0)
    W_hh = g * rng.standard_normal((n, n)) / np.sqrt(n)
    params = RNNParams(W_xh=np.zeros((n, 1)), W_hh=W_hh, b_h=np.zeros(n), W_hy=np.zeros((1, n)), b_y=np.zeros(1))
    h = rng.standard_normal((1, n))
    chunk = CHUNK if act.name in SCALE_FREE else max(burn, steps, 1)
    parts = []
    for start in range(0, burn + steps, chunk):
        length = min(chunk, burn + steps - start)
        tr = forward(params, np.zeros((1, length, 1)), act, h0=h)
        h = tr.h[:, -1]
        if act.name in SCALE_FREE:
            rms = np.sqrt(np.mean(h * h))
            h = h / rms if rms > 0 else h
        keep = max(0, burn - start)          # recorded steps start after the burn-in
        if keep < length:
            parts.append((tr.x[:, keep:], tr.a[:, keep:], tr.h[:, keep:], tr.dphi[:, keep:]))
    x, a, dphi = (np.concatenate([p[i] for p in parts], axis=1) for i in (0, 1, 3))
    # the recorded part's initial state, then one state per step (each block's own h_0 is dropped)
    h_rec = np.concatenate([parts[0][2][:, :1]] + [p[2][:, 1:] for p in parts], axis=1)
    return Trace(x=x, a=a, h=h_rec, dphi=dphi, W_hh=W_hh, activation=act)


def measure_exponents(activations, gains, n: int = 400, steps: int = 1000, warmup: int = 100, burn: int = 200,
                      seeds=(0,)) -> pd.DataFrame:
    """Largest Lyapunov exponent of random autonomous networks: one row per (activation, g, seed).

    Each (activation, g, seed) draws W_hh and h_0 from
    ``numpy.random.default_rng([seed, i_activation, i_g])``, so a row does not
    depend on which other rows were computed.
    """
    rows = []
    for i, activation in enumerate(activations):
        for j, g in enumerate(gains):
            for seed in seeds:
                rng = np.random.default_rng([seed, i, j])
                tr = autonomous_trace(n, float(g), activation, steps, burn, rng)
                lam = float(largest_lyapunov(tr, warmup=warmup)[0])
                rows.append({"activation": activation, "g": float(g), "seed": seed, "n": n, "steps": steps,
                             "warmup": warmup, "lyapunov": lam})
    return pd.DataFrame(rows)


def mean_field_curve(activations, gains) -> pd.DataFrame:
    """Mean-field q*, χ₁ and ½ ln χ₁ for every (activation, g): the theory curve."""
    rows = []
    for activation in activations:
        for g in gains:
            mf = compute_mean_field(float(g), activation)
            rows.append({"activation": activation, "g": mf.g, "q_star": mf.q_star, "chi1": mf.chi1,
                         "lyapunov": mf.lyapunov})
    return pd.DataFrame(rows)


def transitions(activations) -> pd.DataFrame:
    """The critical gain g_c (χ₁ = 1) of each activation."""
    return pd.DataFrame({"activation": list(activations),
                         "g_critical": [critical_gain(a) for a in activations]})


def parse_gains(spec: str) -> np.ndarray:
    """Gains from ``"START:STOP:STEP"`` (STOP included) or a comma list ``"0.5,1,1.5"``."""
    bad_form = GradlabError(f"gains must be START:STOP:STEP or a comma list of numbers, got {spec!r}")
    try:
        values = [float(v) for v in spec.split(":" if ":" in spec else ",")]
    except ValueError:
        raise bad_form from None
    if ":" not in spec:
        gains = np.array(values)
    elif len(values) != 3 or not values[2] > 0 or not values[1] >= values[0]:
        raise bad_form
    else:
        gains = gain_range(spec, *values)
    if gains.size == 0 or not np.all(np.isfinite(gains)) or np.any(gains <= 0):
        raise GradlabError(f"gains must be positive numbers, got {spec!r}")
    return np.round(gains, 12)


def gain_range(spec: str, start: float, stop: float, step: float) -> np.ndarray:
    """start, start + step, … up to stop (included), at most :data:`MAX_GAINS` values."""
    count = np.floor((stop - start) / step + 1e-9) + 1     # a float: a tiny step makes it huge, or inf
    if not count <= MAX_GAINS:
        raise GradlabError(f"gains {spec!r} asks for {count:,.0f} values; at most {MAX_GAINS} (use a larger STEP)")
    return start + step * np.arange(int(count))


def lyapunov_sweep(grid: dict, n: int = 200, steps: int = 1000, warmup: int = 100, burn: int = 200,
                   seeds=(0, 1)) -> dict[str, pd.DataFrame]:
    """What ``gradlab lyapunov`` computes: measured exponents, the mean-field curve and the transitions.

    Parameters
    ----------
    grid : dict
        Activation name → gains to measure (the theory curve spans the same
        range on a fine grid of 200 points).
    n, steps, warmup, burn, seeds
        See :func:`measure_exponents`.

    Returns
    -------
    dict with DataFrames ``lyapunov``, ``mean_field`` and ``transitions``.
    """
    check_positive_int(steps, "steps")
    check_positive_int(warmup, "warmup", minimum=0)
    if warmup >= steps:
        raise GradlabError(f"warmup must be smaller than steps = {steps}, got {warmup}")
    seeds = list(seeds)
    if not seeds:
        raise GradlabError(f"seeds must name at least one seed, got {seeds!r}")
    measured = pd.concat([measure_exponents([a], g, n, steps, warmup, burn, seeds) for a, g in grid.items()],
                         ignore_index=True)
    theory = pd.concat([mean_field_curve([a], np.linspace(min(g), max(g), THEORY_POINTS)) for a, g in grid.items()],
                       ignore_index=True)
    return {"lyapunov": measured, "mean_field": theory, "transitions": transitions(list(grid))}


def write_lyapunov(tables: dict, out, force: bool = False, config: dict | None = None) -> None:
    """Write ``lyapunov.csv``, ``mean_field.csv``, ``transitions.csv`` and ``manifest.json`` atomically."""
    write_results(out, tables, "lyapunov", config or {}, force=force)


# What `gradlab reproduce` measures for the `lyapunov` figure (full, and --quick).
LYAPUNOV_SETS = {
    "full": {"gains": DEFAULT_GAINS, "n": 400, "steps": 1000, "warmup": 100, "burn": 200, "seeds": 3},
    "quick": {"gains": {"tanh": "0.5:3:0.25", "sigmoid": "2:16:2", "relu": "0.5:2.5:0.25"},
              "n": 64, "steps": 300, "warmup": 50, "burn": 50, "seeds": 1},
}


def run_lyapunov_set(out, quick: bool = False):
    """Measure the ``lyapunov`` figure's data into ``out`` unless a folder with the same settings is there.

    Returns the folder (a :class:`pathlib.Path`).
    """
    import json
    from pathlib import Path

    out = Path(out)
    settings = LYAPUNOV_SETS["quick" if quick else "full"]
    try:
        if json.loads((out / "manifest.json").read_text())["config"] == settings:
            return out
    except (OSError, ValueError, KeyError):
        pass
    grid = {a: parse_gains(spec) for a, spec in settings["gains"].items()}
    tables = lyapunov_sweep(grid, settings["n"], settings["steps"], settings["warmup"], settings["burn"],
                            range(settings["seeds"]))
    write_lyapunov(tables, out, force=True, config=settings)
    return out
