"""Benchmark: Lyapunov exponents from a recorded trace (gradlab.analysis.lyapunov).

Target (issue 5): the largest exponent of a 1000-unit network over 3000 steps
takes seconds. Measured in one run, float64, BLAS pinned to one thread
(matrix-vector products are memory-bound; a second thread does not help):

* forward  — the instrumented forward pass that records the trace (gradlab.forward)
* λ_1      — gradlab.largest_lyapunov on that trace (one vector, renormalised)
* λ_1..10  — gradlab.lyapunov_exponents(k=10) (QR every step)
* floor    — T plain products v @ W_hh: what any method must at least do
* dense    — the obvious way: form J_t = diag(φ'(a_t)) W_hh densely, then v ← v J_t

Full spectrum (issue 10): gradlab.analysis.lyapunov.lyapunov_spectrum of a 512-unit tanh
network (W_hh ~ N(0, g²/n), g = 2, no input) over 2000 steps, QR every step. Target: under a
minute on two cores. Measured once per BLAS thread count (1 and 2, set with threadpoolctl),
then the per-step cost split into the product Q J_t and the QR, and its growth with n and k
(per-step medians over a few steps). Wall and CPU seconds are both printed: on a shared
machine the CPU seconds of the one-thread run are what the computation costs. Measured
(load average 5–10 from other jobs): one thread ≤ 37.5 s CPU for the 2000-step run (the process
user time, trace included; 5.4 ms product + 13.3 ms QR per step); two threads 8–26× slower (wall).

Usage:  python benchmarks/bench_lyapunov.py [--n 1000] [--steps 3000] [--repeats 3]
        python benchmarks/bench_lyapunov.py --spectrum-only [--spectrum-n 512] [--spectrum-steps 2000]
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
from threadpoolctl import threadpool_limits

import gradlab as gl


def median_time(f, repeats: int, clock=time.perf_counter) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = clock()
        out = f()
        times.append(clock() - start)
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


def per_step_ms(trace, k: int, steps: int = 20) -> tuple[float, float]:
    """Median CPU milliseconds per step of the product Q J_t and of the QR, for k vectors.

    CPU time of this thread (BLAS pinned to it), so that other jobs on a shared machine do not count.
    """
    from gradlab.analysis.lyapunov import reorthonormalise

    rng = np.random.default_rng(0)
    Q = np.ascontiguousarray(np.swapaxes(np.linalg.qr(rng.standard_normal((1, trace.state_size, k)))[0], 1, 2))
    t_prod, t_qr = [], []
    for t in range(trace.T, trace.T - steps, -1):
        start = time.thread_time()
        P = trace.right_multiply(Q, t)
        mid = time.thread_time()
        Q, _ = reorthonormalise(P)
        t_prod.append(mid - start)
        t_qr.append(time.thread_time() - mid)
    return 1e3 * float(np.median(t_prod)), 1e3 * float(np.median(t_qr))


def spectrum_benchmark(n: int, T: int, threads_list=(1, 2), g: float = 2.0) -> None:
    """Full spectrum of an n-unit tanh network over T steps, BLAS 1 and 2 threads; then the cost split."""
    from gradlab.analysis.lyapunov import lyapunov_spectrum, reorthonormalise
    from gradlab.experiments.chaos import autonomous_trace

    trace = autonomous_trace(n, g, "tanh", steps=T, burn=200, rng=np.random.default_rng(1))
    load_before = f"{os.getloadavg()[0]:.2f}"
    print(f"full Lyapunov spectrum: tanh, n = {n}, T = {T} (warm-up {min(100, T // 2)}), W_hh ~ N(0, g²/n), g = {g}, "
          f"window 10; one run per thread count")
    print("| BLAS threads | wall s | CPU s | ms / step (wall) | λ_1 | mean λ | D_KY / n | h_KS |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for threads in threads_list:
        with threadpool_limits(limits=threads, user_api="blas"):
            start, cpu = time.perf_counter(), time.process_time()
            sp = lyapunov_spectrum(trace, warmup=min(100, T // 2), window=10)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        print(f"| {threads} | {seconds:.1f} | {cpu:.1f} | {1e3 * seconds / T:.1f} | {sp.largest[0]:.4f} | "
              f"{sp.mean_exponent[0]:.4f} | {sp.kaplan_yorke[0] / n:.4f} | {sp.ks_entropy[0]:.4f} |")
    print(f"mean-field λ_1 = ½ ln χ₁ = {gl.compute_mean_field(g, 'tanh').lyapunov:.4f}; load average before "
          f"and after: {load_before} → {os.getloadavg()[0]:.2f} (CPU s of 2 threads add up both)")
    print()
    print("per-step CPU cost (median of 20 steps, BLAS 1 thread): product Q J_t and QR of the (s × k) block")
    print("| n | k | product ms | QR ms |")
    print("| ---: | ---: | ---: | ---: |")
    with threadpool_limits(limits=1, user_api="blas"):
        for size, k in [(128, 128), (256, 256), (n, n), (n, n // 4), (n, n // 16), (n, 1)]:
            tr = trace if size == n else autonomous_trace(size, g, "tanh", steps=40, burn=10,
                                                          rng=np.random.default_rng(2))
            prod, qr = per_step_ms(tr, k)
            print(f"| {size} | {k} | {prod:.2f} | {qr:.2f} |")
        block = np.random.default_rng(3).standard_normal((1, n, n))
        t_numpy, _ = median_time(lambda: np.linalg.qr(np.swapaxes(block, 1, 2)), 10, clock=time.thread_time)
        t_ours, _ = median_time(lambda: reorthonormalise(block), 10, clock=time.thread_time)
        print(f"QR of one {n} × {n} block, CPU ms: reorthonormalise {1e3 * t_ours:.2f}, numpy's stacked qr "
              f"(which it bypasses above 64 × 64) {1e3 * t_numpy:.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--spectrum-n", type=int, default=512)
    ap.add_argument("--spectrum-steps", type=int, default=2000)
    ap.add_argument("--spectrum-only", action="store_true", help="skip the largest-exponent part")
    ap.add_argument("--no-spectrum", action="store_true", help="skip the full-spectrum part")
    ap.add_argument("--threads", default="1,2", help="BLAS thread counts of the full-spectrum runs")
    args = ap.parse_args()
    if not args.spectrum_only:
        largest_benchmark(args)
    if not args.no_spectrum:
        print()
        spectrum_benchmark(args.spectrum_n, args.spectrum_steps, [int(v) for v in args.threads.split(",")])


def largest_benchmark(args):
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
