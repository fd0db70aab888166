"""Forward + exact BPTT of an LSTM and a GRU, gradlab against PyTorch (n = 128, T = 100, batch 32, float64).

gradlab: ``cell.forward`` → :func:`~gradlab.analysis.bptt.output_errors` →
:func:`~gradlab.analysis.bptt.adjoints` → ``trace.param_grads`` plus the
read-out gradients: every gradient a training update needs.
PyTorch: ``nn.LSTM`` / ``nn.GRU`` + ``nn.Linear`` read-out on the last step
(the adding problem's shape: d = 2, one output, mse), ``loss.backward()``, in
float64 like gradlab. gradlab runs with BLAS on one thread (threadpoolctl);
PyTorch with ``torch.set_num_threads(1)`` and 2, and the better of the two is
the reference. Measurements alternate between the contenders; medians are
reported, wall and CPU time (CPU time is less disturbed by other users of a
shared machine).

Target: gradlab within 1.5× of the best PyTorch, per cell.

    python benchmarks/bench_training_gated.py [--repeats 20] [--cells lstm,gru]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from gradlab.analysis.bptt import adjoints, loss_step_indices, output_errors
from gradlab.cells.base import sum_outer
from gradlab.cells.gru import GRUCell
from gradlab.cells.lstm import LSTMCell

n, T, B, d, m = 128, 100, 32, 2, 1
CELLS = {"lstm": LSTMCell(), "gru": GRUCell()}


def batch(rng: np.random.Generator):
    return rng.standard_normal((B, T, d)), rng.standard_normal((B, m))


def gradlab_step(cell, x, y):
    params = cell.init_params(n, d, m, radius=1.0, rng=np.random.default_rng(0))

    def step():
        tr = cell.forward(params, x)
        _, g_o, direct = output_errors(params, tr, y, "mse", "last")
        grads = tr.param_grads(adjoints(tr, tr.embed_h(direct)))
        grads["W_hy"] = sum_outer(g_o, tr.h[:, loss_step_indices("last", T)])
        grads["b_y"] = g_o.sum(axis=(0, 1))
        return grads

    return step


def torch_step(torch, name: str, x, y):
    torch.manual_seed(0)
    rnn = (torch.nn.LSTM if name == "lstm" else torch.nn.GRU)(d, n, batch_first=True, dtype=torch.float64)
    fc = torch.nn.Linear(n, m, dtype=torch.float64)
    params = list(rnn.parameters()) + list(fc.parameters())
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        for p in params:
            p.grad = None
        out, _ = rnn(xt)
        loss = ((fc(out[:, -1]) - yt) ** 2).mean()
        loss.backward()

    return step


def timed(step) -> tuple[float, float]:
    """(wall, CPU) seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    step()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--cells", default="lstm,gru")
    args = ap.parse_args()
    import torch

    x, y = batch(np.random.default_rng(1))
    contenders = {}
    for name in args.cells.split(","):
        contenders[f"gradlab {name}"] = (gradlab_step(CELLS[name], x, y), 1)
        for threads in (1, 2):
            contenders[f"torch nn.{name.upper()} ({threads} thread{'s' * (threads > 1)})"] = (
                torch_step(torch, name, x, y), threads)
    times = {key: [] for key in contenders}
    for rep in range(args.repeats + 2):                  # the first two are warm-up
        for key, (step, threads) in contenders.items():
            torch.set_num_threads(threads)
            with threadpool_limits(limits=threads, user_api="blas"):
                t = timed(step)
            if rep >= 2:
                times[key].append(t)
    wall = {key: statistics.median(w for w, _ in t) for key, t in times.items()}
    cpu = {key: statistics.median(c for _, c in t) for key, t in times.items()}
    print(f"forward + exact BPTT, n={n}, T={T}, batch={B}, d={d}, float64, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f}, torch {torch.__version__}; medians of {args.repeats}")
    print(f"  {'':<28} {'wall ms':>8} {'CPU ms':>8}")
    for key in contenders:
        print(f"  {key:<28} {1e3 * wall[key]:8.1f} {1e3 * cpu[key]:8.1f}")
    for name in args.cells.split(","):
        torch_keys = [k for k in contenders if k.startswith(f"torch nn.{name.upper()}")]
        best = min(wall[k] for k in torch_keys)
        one = next(k for k in torch_keys if "(1 thread)" in k)
        ratio = wall[f"gradlab {name}"] / best
        verdict = "met" if ratio <= 1.5 else "MISSED"
        print(f"{name}: gradlab / best torch (wall) {ratio:.2f}× {verdict} (target ≤ 1.5×); "
              f"CPU time against 1-thread torch {cpu[f'gradlab {name}'] / cpu[one]:.2f}×")


if __name__ == "__main__":
    main()
