"""Benchmark: Lyapunov exponents from a recorded trace (gradlab.analysis.lyapunov).

Target (issue 5): the largest exponent of a 1000-unit network over 3000 steps
takes seconds. Measured in one run, float64, BLAS pinned to one thread
(matrix-vector products are memory-bound; a second thread does not help):

* forward  — the instrumented forward pass that records the trace (gradlab.forward)
* λ_1      — gradlab.largest_lyapunov on that trace (one vector, renormalised)
* λ_1..10  — gradlab.lyapunov_exponents(k=10) (QR every step)
* floor    — T plain products v @ W_hh: what any method must at least do
* dense    — the obvious way: form J_t = diag(φ'(a_t)) W_hh densely, then v ← v J_t

Usage:  python benchmarks/bench_lyapunov.py [--n 1000] [--steps 3000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np
from threadpoolctl import threadpool_limits

import gradlab as gl


def median_time(f, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), out


def dense_largest(trace) -> float:
    """Reference: dense J_t per step, then the vector product."""
    v = np.random.default_rng(0).standard_normal(trace.n)
    v /= np.linalg.norm(v)
    total = 0.0
    for t in range(trace.T, 0, -1):
        J = trace.dphi[0, t - 1, :, None] * trace.W_hh
        v = v @ J
        s = np.linalg.norm(v)
        total += np.log(s)
        v /= s
    return total / trace.T


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    n, T = args.n, args.steps
    rng = np.random.default_rng(0)
    params = gl.init_params(n=n, d=1, radius=1.5, rng=rng)
    x = np.zeros((1, T, 1))
    h0 = rng.standard_normal((1, n))
    with threadpool_limits(limits=1, user_api="blas"):
        t_fwd, trace = median_time(lambda: gl.forward(params, x, "tanh", h0=h0), args.repeats)
        t_l1, lam = median_time(lambda: gl.largest_lyapunov(trace, warmup=100)[0], args.repeats)
        t_k10, lam10 = median_time(lambda: gl.lyapunov_exponents(trace, k=10, warmup=100)[0], args.repeats)
        v = rng.standard_normal((1, n))
        t_floor, _ = median_time(lambda: [v @ params.W_hh for _ in range(T)], args.repeats)
        t_dense, lam_dense = median_time(lambda: dense_largest(trace), args.repeats)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, numpy {np.__version__}, BLAS threads 1")
    print(f"tanh RNN, n = {n}, T = {T}, ρ = 1.5; median of {args.repeats}")
    print("| step | seconds | ratio |")
    print("| --- | ---: | ---: |")
    print(f"| forward pass (records the trace) | {t_fwd:.2f} | |")
    print(f"| largest exponent λ_1 = {lam:.4f} | {t_l1:.2f} | {t_l1 / t_floor:.2f}× floor |")
    print(f"| leading 10 exponents (QR) | {t_k10:.2f} | {t_k10 / t_l1:.2f}× λ_1 |")
    print(f"| floor: T products v @ W_hh | {t_floor:.2f} | 1 |")
    print(f"| dense J_t per step (reference, λ_1 = {lam_dense:.4f}) | {t_dense:.2f} | {t_dense / t_l1:.2f}× λ_1 |")
    print(f"forward + λ_1: {t_fwd + t_l1:.2f} s; mean-field λ for g ≈ ρ = 1.5: "
          f"{gl.compute_mean_field(1.5, 'tanh').lyapunov:.4f}; λ_1..3 = {np.round(lam10[:3], 4)}")


if __name__ == "__main__":
    main()
