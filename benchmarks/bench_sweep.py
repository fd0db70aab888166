"""Sweep throughput: experiments/vanishing.toml (150 runs, n = 64, T = 100) on 1 and 2 local workers.

Targets (issue 3): the whole sweep under 2 minutes on a 2-core machine, and
2 workers ≥ 1.7× the throughput of 1. Runs alternate 1, 2, 1, 2, … so that
load from other users of the machine hits both; the medians and their ratio
are reported.

    python benchmarks/bench_sweep.py [--repeats 2] [--spec experiments/vanishing.toml]
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

from gradlab import load_spec, run_sweep

ROOT = Path(__file__).resolve().parents[1]


def time_sweep(spec, jobs: int, scratch: Path) -> float:
    out = scratch / f"jobs{jobs}"
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    run_sweep(spec, out, jobs=jobs, quiet=True)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=str(ROOT / "experiments" / "vanishing.toml"))
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    spec = load_spec(args.spec)
    n_runs = len(spec.points())
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; "
          f"{Path(args.spec).name}: {n_runs} runs, fixed {spec.fixed}")
    times = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(limits=1, user_api="blas"):
        for _ in range(args.repeats):
            for jobs in (1, 2):
                times[jobs].append(time_sweep(spec, jobs, Path(tmp)))
                print(f"  jobs={jobs}: {times[jobs][-1]:.1f} s")
    t1, t2 = statistics.median(times[1]), statistics.median(times[2])
    print(f"median wall time: 1 worker {t1:.1f} s ({n_runs / t1:.2f} runs/s), "
          f"2 workers {t2:.1f} s ({n_runs / t2:.2f} runs/s); throughput ratio {t1 / t2:.2f}×")
    print(f"targets: under 120 s {'met' if min(t1, t2) < 120 else 'MISSED'}; "
          f"ratio ≥ 1.7 {'met' if t1 / t2 >= 1.7 else 'MISSED'}")


if __name__ == "__main__":
    main()
