"""The cost of gradlab's training monitor in a user's own PyTorch loop (issue 9: < 10 % of the update time at every = 50).

A 2-layer nn.LSTM (n = 64) on the adding problem (T = 50, batch 32, float64,
Adam, norm clipping) trains for U updates three ways, interleaved: without
the monitor, with ``Monitor(every=50)`` (ρ and σ_max of all 8 recurrent gate
blocks every update, the Jacobian curve and λ₁ on a probe of 8 sequences every
50), and with ``spectra_every=10``. Each way is timed over whole runs of U
updates (the checkpoints and the final ``close()`` included; the loop up to
its last update is reported too); medians over repeats, and the overhead
relative to the plain loop. torch and numpy on one thread each.

    python benchmarks/bench_monitor.py [--updates 200] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import gradlab as gl

n, T, B = 64, 50, 32


def run(torch, updates: int, monitor: dict | None, out: Path) -> float:
    torch.manual_seed(0)
    task, rng = gl.get_task("adding"), np.random.default_rng(0)
    lstm = torch.nn.LSTM(2, n, num_layers=2, batch_first=True, dtype=torch.float64)
    fc = torch.nn.Linear(n, 1, dtype=torch.float64)
    params = [*lstm.parameters(), *fc.parameters()]
    opt = torch.optim.Adam(params, lr=0.003)
    batches = [task.batch(B, T, rng) for _ in range(updates)]
    probe = torch.tensor(task.batch(8, T, rng).x)
    start = time.perf_counter()
    mon = gl.torch.Monitor(lstm, probe=probe, out=out, readout=fc, **monitor) if monitor is not None else None
    for b in batches:
        out_, _ = lstm(torch.tensor(b.x))
        loss = ((fc(out_[:, -1]) - torch.tensor(b.y)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        if mon is not None:
            mon.step(loss)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    loop = time.perf_counter() - start
    if mon is not None:
        mon.close()
    return loop, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--updates", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    ways = {"plain loop": None, "monitor every=50": {"every": 50},
            "monitor every=50, spectra_every=10": {"every": 50, "spectra_every": 10}}
    times = {k: [] for k in ways}
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(limits=1, user_api="blas"):
        for r in range(args.repeats):
            for i, (name, monitor) in enumerate(ways.items()):
                times[name].append(run(torch, args.updates, monitor, Path(tmp) / f"m{r}-{i}"))
    loop = {k: statistics.median(t[0] for t in v) for k, v in times.items()}
    total = {k: statistics.median(t[1] for t in v) for k, v in times.items()}
    print(f"2-layer nn.LSTM n={n}, T={T}, batch {B}, {args.updates} updates, medians of {args.repeats}, "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"  {'':<36} {'whole run':>9}  {'overhead':>8}   {'loop only':>9}  {'overhead':>8}")
    for name in ways:
        print(f"  {name:<36} {total[name]:7.2f} s  {100 * (total[name] / total['plain loop'] - 1):+7.1f} %  "
              f"{loop[name]:7.2f} s  {100 * (loop[name] / loop['plain loop'] - 1):+7.1f} %")
    print("  (loop only: up to the last update; whole run: with close(), which measures the final weights)")
    overhead = total["monitor every=50"] / total["plain loop"] - 1
    print(f"target: overhead < 10 % at every=50 (whole run): {100 * overhead:.1f} % "
          f"{'met' if overhead < 0.10 else 'MISSED'}")

if __name__ == "__main__":
    main()
