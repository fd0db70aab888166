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

The full spectrum (kind ``lyapunov_spectrum``, ``gradlab lyapunov --spectrum``)
------------------------------------------------------------------------------
:class:`gradlab.experiments.kinds.SpectrumConfig` measures the leading k = ``leading`` exponents (all of them by
default) with QR every step (:func:`gradlab.analysis.lyapunov.lyapunov_spectrum`),
nats per step, along one of these trajectories:

* a random network (no ``weights``): the vanilla RNN as above, W_hh = g · W₀
  and h_0 ~ N(0, 1) from the seed (the same networks as the λ₁ scan, so
  k = 1 gives its numbers exactly), or a random LSTM/GRU whose n × n
  recurrent gate blocks are Gaussian matrices rescaled to spectral radius g
  (``gradlab run --init gaussian --radius g``), s_0 ~ N(0, 1); no input
  (``drive = "autonomous"``; a random network has nothing to be driven with);
* a trained network (``weights``, any cell): from s_0 = 0 (the state it was
  trained from), driven by ``drive`` = ``"autonomous"`` (x_t = 0: its own
  dynamics, biases kept), ``"gaussian"`` (x_t ~ N(0, I), drawn from the seed)
  or ``"file"`` (the inputs of ``input_seq``, whose T sets the steps).

``burn`` steps are run unrecorded first; then ``steps`` steps are recorded,
of which the first ``warmup`` products only align the vectors. Tables (after
``run_id`` and the parameters):

* ``lyapunov_spectrum``: ``sequence, index, exponent, index_fraction`` (i/s)
* ``lyapunov_summary``: ``sequence, state_size, n_exponents, counted_steps, largest,
  mean_exponent, sum_exponents, kaplan_yorke, ks_entropy`` (D_KY; h_KS by Pesin, nats/step)
* ``lyapunov_local``: ``sequence, window_index, t_start, t_end, index, exponent``:
  finite-time exponents over windows of ``window`` steps, for the leading
  ``local_leading`` exponents (none when either is 0)
* ``transitions`` (random vanilla RNNs): the mean-field g_c of each activation
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..analysis.lyapunov import LyapunovSpectrum, largest_lyapunov
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
                     rng: np.random.Generator, batch: int = 1) -> Trace:
    """Record ``steps`` steps of h_t = φ(W_hh h_{t−1}), W_hh ~ N(0, g²/n), after ``burn`` steps.

    h_0 ~ N(0, 1) per unit, for each of ``batch`` sequences (one network). For the scale-free φ (ReLU, linear) the state
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
    check_positive_int(batch, "batch")
    W_hh = g * rng.standard_normal((n, n)) / np.sqrt(n)
    params = RNNParams(W_xh=np.zeros((n, 1)), W_hh=W_hh, b_h=np.zeros(n), W_hy=np.zeros((1, n)), b_y=np.zeros(1))
    h = rng.standard_normal((batch, n))
    chunk = CHUNK if act.name in SCALE_FREE else max(burn, steps, 1)
    parts = []
    for start in range(0, burn + steps, chunk):
        length = min(chunk, burn + steps - start)
        tr = forward(params, np.zeros((batch, length, 1)), act, h0=h)
        h = tr.h[:, -1]
        if act.name in SCALE_FREE:
            rms = np.sqrt(np.mean(h * h, axis=1, keepdims=True))      # per sequence
            h = h / np.where(rms > 0, rms, 1.0)
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


# ---------------------------------------------------------------- the full spectrum (kind "lyapunov_spectrum")

def spectrum_tables(spectrum: LyapunovSpectrum, local_leading: int) -> dict[str, pd.DataFrame]:
    """``lyapunov_spectrum``, ``lyapunov_summary`` and (when any) ``lyapunov_local`` of one measurement.

    Column names that are also parameters of the kind (``k``, ``steps``, ``warmup``, ``window``) are
    renamed (``n_exponents``, ``counted_steps``, ``window_index``) or left out (``warmup``): a sweep's row
    repeats its parameters, and a column may not have a parameter's name.
    """
    summary = spectrum.summary_table().rename(columns={"k": "n_exponents", "steps": "counted_steps"})
    tables = {"lyapunov_spectrum": spectrum.table(), "lyapunov_summary": summary.drop(columns="warmup")}
    local = spectrum.local_table()
    local = local[local["index"] <= local_leading].rename(columns={"window": "window_index"}).reset_index(drop=True)
    if len(local):
        tables["lyapunov_local"] = local
    return tables


def spectrum_summary(spectrum: LyapunovSpectrum) -> dict:
    """A run's row of ``runs.csv``: s, k and the means over sequences of λ₁, the mean exponent, D_KY, h_KS."""
    return {"state_size": spectrum.state_size, "n_exponents": spectrum.k,
            "largest": float(np.mean(spectrum.largest)), "mean_exponent": float(np.mean(spectrum.mean_exponent)),
            "kaplan_yorke": float(np.mean(spectrum.kaplan_yorke)), "ks_entropy": float(np.mean(spectrum.ks_entropy))}


def toml_value(value) -> str:
    """A number, string or boolean written as TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)       # a TOML basic string: JSON's escapes are TOML's
    raise GradlabError(f"cannot write {value!r} into a sweep file")


def sweep_text(kind: str, description: str, grids: list[dict], fixed: dict) -> str:
    """The sweep file of a command: ``kind``, one ``[[grid]]`` per table of lists, ``[fixed]`` values.

    What ``gradlab lyapunov --spectrum`` and ``gradlab fixed-points`` run (None values are left out).
    """
    lines = [f"kind = {toml_value(kind)}", f"description = {toml_value(description)}", ""]
    for grid in grids:
        lines += ["[[grid]]"] + [f"{k} = [{', '.join(toml_value(v) for v in values)}]"
                                 for k, values in grid.items()] + [""]
    lines += ["[fixed]"] + [f"{k} = {toml_value(v)}" for k, v in fixed.items() if v is not None]
    return "\n".join(lines) + "\n"


def spectrum_spec_text(gains: dict | None, seeds: int, fixed: dict) -> str:
    """The sweep file of ``gradlab lyapunov --spectrum``.

    Parameters
    ----------
    gains : dict or None
        Random networks: activation (or None, for a gated ``cell`` without φ) → gains; one ``[[grid]]``
        each, × seeds. None: one network of a weights file (``fixed["weights"]``), × seeds.
    seeds : int
        Seeds 0 … seeds − 1 (networks, or a weights file's Gaussian inputs).
    fixed : dict
        The other :class:`~gradlab.experiments.kinds.SpectrumConfig` fields (None values left out).
    """
    check_positive_int(seeds, "seeds")
    seed = {"seed": list(range(seeds))}
    if gains is None:
        grids = [seed]
    else:
        grids = [{**({"activation": [a]} if a is not None else {}), "g": [float(v) for v in g], **seed}
                 for a, g in gains.items()]
    return sweep_text("lyapunov_spectrum", "Lyapunov spectra (QR every step): D_KY, h_KS, local exponents",
                      grids, fixed)


def spectrum_report(runs: pd.DataFrame) -> list[str]:
    """One line per network family and gain (means over seeds), or per run of a weights file: λ₁, D_KY, h_KS."""
    by = [c for c in ("weights", "drive", "cell", "activation", "g") if c in runs.columns and runs[c].notna().any()]
    groups = runs.groupby(by, sort=False) if by else [((), runs)]
    words = {"g": lambda v: f"g = {v:g}", "drive": lambda v: f"driven {v}" if v != "autonomous" else "autonomous"}
    lines = []
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        name = " ".join(words.get(col, str)(v) for col, v in zip(by, key)) or "network"
        n = int(group["state_size"].iloc[0])
        m = group[["largest", "kaplan_yorke", "ks_entropy", "mean_exponent"]].mean()
        lines.append(f"{name}: λ₁ = {m['largest']:.4g}, D_KY = {m['kaplan_yorke']:.4g} "
                     f"(D_KY/s = {m['kaplan_yorke'] / n:.3g}), "
                     f"h_KS = {m['ks_entropy']:.4g} nats/step, mean exponent {m['mean_exponent']:.4g} "
                     f"({len(group)} run{'s' * (len(group) != 1)}, s = {n}, k = {int(group['n_exponents'].iloc[0])})")
    return lines
