"""The order-to-chaos transition: measured largest Lyapunov exponent against mean-field theory.

For each activation and gain g, a network with W_hh entries N(0, g²/n), no
input and no bias is run from a random state; after ``burn`` unrecorded
steps (the trajectory's own transient) ``steps`` steps are recorded and the
largest Lyapunov exponent is measured from their Jacobians
(:func:`gradlab.analysis.lyapunov.largest_lyapunov`, ``warmup`` aligning
products). Beside it: the mean-field exponent ½ ln χ₁
(:mod:`gradlab.analysis.mean_field`) on a fine grid of g and the critical
gain g_c where χ₁ = 1.

Each measurement is one run of a ``kind = "lyapunov"`` sweep
(:mod:`gradlab.experiments.kinds`; ``gradlab lyapunov`` builds that sweep
from its options), so the scan resumes, runs on ``--jobs`` or Dask, and
records its provenance like any sweep. A run's network is
W_hh = g · W₀ with W₀ ~ N(0, 1/n) and h_0 ~ N(0, 1) drawn from its seed
alone: the runs of one seed share W₀ across gains and activations (common
random numbers), so a curve λ₁(g) is smooth in g and differences between
gains are not sampling noise.

Tables (the CSVs of ``gradlab lyapunov``, after ``run_id`` and the parameters):

* ``lyapunov``: ``activation, g, seed, hidden, steps, warmup, burn, n, lyapunov`` (measured, nats/step)
* ``mean_field``: ``activation, g, q_star, chi1, lyapunov`` (theory, fine grid over each activation's gains)
* ``transitions``: ``activation, g_critical``
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..analysis.lyapunov import largest_lyapunov
from ..analysis.mean_field import compute_mean_field, critical_gain
from ..cells.activations import get_activation
from ..cells.rnn import RNNParams, Trace, forward
from ..errors import GradlabError, check_choice, check_positive_int, check_positive_number

DEFAULT_GAINS = {"tanh": "0.25:3:0.125", "sigmoid": "1:16:0.5", "relu": "0.25:2.5:0.125"}
MAX_GAINS = 1000   # a START:STOP:STEP with a tiny step would otherwise ask for billions of networks
THEORY_POINTS = 200
SCALE_FREE = ("relu", "linear")   # φ(c a) = c φ(a) for c > 0: the state's scale does not change J_t
CHUNK = 50


@dataclass(frozen=True)
class LyapunovConfig:
    """One measurement of the order-to-chaos scan: the defaults of ``gradlab lyapunov``.

    Attributes
    ----------
    activation : {"tanh", "sigmoid", "relu"}
    g : float
        Gain: W_hh entries N(0, g²/n).
    seed : int
        Seeds W₀ and h_0 (shared by every gain and activation of that seed).
    hidden : int
        n.
    steps : int
        Recorded steps.
    warmup : int
        Recorded products that only align the vector (not counted), < steps.
    burn : int
        Unrecorded steps first (the trajectory's transient).
    """

    activation: str = "tanh"
    g: float = 1.0
    seed: int = 0
    hidden: int = 200
    steps: int = 1000
    warmup: int = 100
    burn: int = 200

    def __post_init__(self):
        check_choice(self.activation, ("tanh", "sigmoid", "relu"), "activation")
        check_positive_number(self.g, "g")
        check_positive_int(self.seed, "seed", minimum=0)
        check_positive_int(self.hidden, "hidden")
        check_positive_int(self.steps, "steps")
        check_positive_int(self.warmup, "warmup", minimum=0)
        check_positive_int(self.burn, "burn", minimum=0)
        if self.warmup >= self.steps:
            raise GradlabError(f"warmup must be smaller than steps = {self.steps}, got {self.warmup}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


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


def measure_exponent(config: LyapunovConfig) -> float:
    """λ₁ (nats per step) of the network of one :class:`LyapunovConfig` (module docstring)."""
    rng = np.random.default_rng(config.seed)   # W_hh = g · W₀, W₀ and h_0 from the seed alone
    trace = autonomous_trace(config.hidden, config.g, config.activation, config.steps, config.burn, rng)
    return float(largest_lyapunov(trace, warmup=config.warmup)[0])


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


def theory_tables(points: list[dict]) -> dict[str, pd.DataFrame]:
    """``mean_field`` (a fine grid over each activation's measured gains) and ``transitions`` of a scan."""
    gains: dict[str, list[float]] = {}
    for p in points:
        config = LyapunovConfig(**p)
        gains.setdefault(config.activation, []).append(float(config.g))
    theory = pd.concat([mean_field_curve([a], np.linspace(min(g), max(g), THEORY_POINTS)) for a, g in gains.items()],
                       ignore_index=True)
    return {"mean_field": theory, "transitions": transitions(list(gains))}


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


def scan_spec_text(gains: dict, seeds: int, **fixed) -> str:
    """The sweep file of a scan: one ``[[grid]]`` per activation (its own gains) × seeds, and ``[fixed]``.

    Parameters
    ----------
    gains : dict
        Activation → gains (a sequence of numbers).
    seeds : int
        Networks per (activation, g): seeds 0 … seeds − 1.
    fixed : dict
        ``hidden``, ``steps``, ``warmup``, ``burn``.
    """
    def number(v):
        return repr(float(v))

    lines = ['kind = "lyapunov"', 'description = "largest Lyapunov exponent against the gain g, with mean-field theory"', ""]
    for activation, values in gains.items():
        lines += ["[[grid]]", f'activation = ["{activation}"]', f"g = [{', '.join(number(v) for v in values)}]",
                  f"seed = [{', '.join(str(s) for s in range(seeds))}]", ""]
    lines += ["[fixed]"] + [f"{k} = {int(v)}" for k, v in fixed.items()]
    return "\n".join(lines) + "\n"
