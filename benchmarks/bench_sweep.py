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
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

from gradlab import load_spec, run_sweep

ROOT = Path(__file__).resolve().parents[1]


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the pool's workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def time_sweep(spec, jobs: int, scratch: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one whole sweep into a fresh folder."""
    out = scratch / f"jobs{jobs}"
    shutil.rmtree(out, ignore_errors=True)
    wall, cpu = time.perf_counter(), cpu_seconds()
    run_sweep(spec, out, jobs=jobs, quiet=True)
    return time.perf_counter() - wall, cpu_seconds() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=str(ROOT / "experiments" / "vanishing.toml"))
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    spec = load_spec(args.spec)
    n_runs = spec.n_runs
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; "
          f"{Path(args.spec).name}: {n_runs} runs, fixed {spec.fixed}")
    times = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(limits=1, user_api="blas"):
        for _ in range(args.repeats):
            for jobs in (1, 2):
                wall, cpu = time_sweep(spec, jobs, Path(tmp))
                times[jobs].append((wall, cpu))
                print(f"  jobs={jobs}: {wall:.1f} s wall, {cpu:.1f} s CPU ({cpu / wall:.2f} cores busy), "
                      f"load {os.getloadavg()[0]:.2f}")
    t1, t2 = (statistics.median(w for w, _ in times[j]) for j in (1, 2))
    c1, c2 = (statistics.median(c for _, c in times[j]) for j in (1, 2))
    print(f"median wall time: 1 worker {t1:.1f} s ({n_runs / t1:.2f} runs/s), "
          f"2 workers {t2:.1f} s ({n_runs / t2:.2f} runs/s); throughput ratio {t1 / t2:.2f}×")
    print(f"CPU per run: 1 worker {1e3 * c1 / n_runs:.0f} ms, 2 workers {1e3 * c2 / n_runs:.0f} ms "
          f"(parallel overhead {c2 / c1 - 1:+.0%}); when other users load the machine the ratio is "
          f"bounded by the cores the OS grants, shown as 'cores busy'")
    print(f"targets: under 120 s {'met' if min(t1, t2) < 120 else 'MISSED'}; "
          f"ratio ≥ 1.7 {'met' if t1 / t2 >= 1.7 else 'MISSED'}")


if __name__ == "__main__":
    main()
