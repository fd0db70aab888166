"""Benchmark: which σ_max method of ``jacobian_norms`` is fastest, by size and lag.

``method="auto"`` chooses between the certified block-Krylov iteration
(``"subspace"``) and an exact σ_max per pair (``"exact"``: the top eigenvalue
of P Pᵀ; ``"svd"``, the reference, for comparison) from the state size r
and the mean lag of the requested pairs. This script measures the three on
a grid of sizes and prints, for each case, CPU seconds per method, the
fastest, and what ``auto`` picks, so the crossover in
``gradlab/jacobian_norms.py`` (``SUBSPACE_MIN_WORK``, and ``EVR_MIN`` inside
the exact method) can be checked on a new machine.

CPU time (``time.process_time``) with ``workers=1`` and BLAS at one thread,
median of repeats: the comparison is of work done, which a shared, noisy
machine disturbs less than wall time.

    python benchmarks/bench_norm_methods.py            # ~3 min
    python benchmarks/bench_norm_methods.py --quick    # ~30 s
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

import gradlab as gl

jn = sys.modules["gradlab.analysis.jacobian_norms"]   # the module (the package exports the function)

CASES = [(pairs, n, T, B)
         for n in (16, 24, 32, 48, 64, 96, 128)
         for pairs, T, B in (("last", 30, 4), ("last", 100, 4), ("last", 300, 1), ("all", 30, 1), ("all", 80, 1))]
QUICK = [(pairs, n, T, B) for n in (24, 64, 128) for pairs, T, B in (("last", 100, 4), ("all", 40, 1))]


def make_trace(n: int, T: int, B: int, seed: int = 0):
    """A tanh RNN at the edge of chaos (Gaussian W_hh, ρ = 1): the usual case in a sweep."""
    rng = np.random.default_rng(seed)
    params = gl.init_params(n=n, d=4, init="gaussian", radius=1.0, rng=rng)
    return gl.forward(params, rng.standard_normal((B, T, 4)), "tanh")


def cpu_time(f, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        f()
        times.append(time.process_time() - t0)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few small cases")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    methods = ("exact", "subspace", "svd")
    print(f"CPU seconds per call, workers=1, BLAS 1 thread, median of {args.repeats}; tanh RNN, ρ = 1")
    print("| pairs | n | T | B | mean lag | " + " | ".join(methods) + " | fastest | auto picks | auto / fastest |")
    print("|---|---|---|---|---|" + "---|" * (len(methods) + 3))
    with threadpool_limits(limits=1, user_api="blas"):
        for pairs, n, T, B in (QUICK if args.quick else CASES):
            trace = make_trace(n, T, B)
            ends = jn.end_steps(pairs, T)
            secs = {m: cpu_time(lambda m=m: gl.jacobian_norms(trace, pairs, method=m, workers=1), args.repeats)
                    for m in methods}
            fastest = min(secs, key=secs.get)
            auto = jn.choose_method(n, ends)
            print(f"| {pairs} | {n} | {T} | {B} | {jn.mean_lag(ends):.1f} | "
                  + " | ".join(f"{secs[m]:.4f}" for m in methods)
                  + f" | {fastest} | {auto} | {secs[auto] / secs[fastest]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
