"""BLAS threads on this machine: 1 vs 2 threads for matmul and SVD.

Prints median wall times of a float64 (n, n) @ (n, n) product and of
``numpy.linalg.svd(A, compute_uv=False)`` (what ``numpy.linalg.norm(A, 2)``
calls) with OpenBLAS limited to 1 and to 2 threads, and the matmul rate in
GFLOP/s (2 n³ flops). gradlab pins BLAS to ``gradlab.cli.BLAS_THREADS``.

    python benchmarks/bench_blas_threads.py [--quick]
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits


def median_time(f, repeats: int, min_time: float = 0.05) -> float:
    """Median over ``repeats`` of the time per call, each sample ≥ ``min_time`` long."""
    f()  # warm up (thread pool start, page faults)
    calls = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(calls):
            f()
        if time.perf_counter() - t0 >= min_time or calls >= 1 << 16:
            break
        calls *= 2
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            f()
        samples.append((time.perf_counter() - t0) / calls)
    return float(np.median(samples))


def blas_description() -> str:
    np.ones((2, 2)) @ np.ones((2, 2))  # make sure the BLAS library is loaded
    info = [i for i in threadpool_info() if i["user_api"] == "blas"]
    if not info:
        return "no BLAS found by threadpoolctl"
    i = info[0]
    return f"{i['internal_api']} {i.get('version')} ({i.get('architecture')}, max {i['num_threads']} threads)"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--sizes", default="64,128,256,512")
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else 7
    rng = np.random.default_rng(0)
    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {blas_description()}, env {env or 'default'}")
    print(f"{'n':>5} {'op':>7} {'1 thread':>12} {'2 threads':>12} {'2t / 1t':>8} {'GFLOP/s 1t':>11} {'GFLOP/s 2t':>11}")
    for n in map(int, args.sizes.split(",")):
        A, W = rng.standard_normal((n, n)), rng.standard_normal((n, n))
        ops = {"matmul": lambda: A @ W, "svd": lambda: np.linalg.svd(A, compute_uv=False)}
        for name, f in ops.items():
            times = {}
            for threads in (1, 2):
                with threadpool_limits(limits=threads, user_api="blas"):
                    times[threads] = median_time(f, repeats)
            rate = [f"{2 * n ** 3 / times[k] / 1e9:11.1f}" if name == "matmul" else f"{'':>11}" for k in (1, 2)]
            print(f"{n:>5} {name:>7} {times[1] * 1e3:10.3f}ms {times[2] * 1e3:10.3f}ms "
                  f"{times[2] / times[1]:8.2f} {rate[0]} {rate[1]}")


if __name__ == "__main__":
    main()
