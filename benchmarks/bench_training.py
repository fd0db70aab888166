"""One training update, gradlab against PyTorch, side by side (n = 128, T = 100, batch 32, float64).

gradlab: exact BPTT (:func:`gradlab.loss_and_grads`), global-norm clipping,
SGD with momentum — the update of :func:`gradlab.train` — and, separately, the
same update with the per-update instruments train() records (ρ and σ_max of W_hh).
PyTorch: ``nn.RNN`` (tanh) + ``nn.Linear`` read-out on the last step, autograd,
``clip_grad_norm_``, ``optim.SGD(momentum=0.9)``, in float64 like gradlab, with
its best thread setting (1 or 2). Both solve the adding problem on the same batch.
Measurements alternate between the contenders; medians are reported.

Target (issue 3): gradlab no slower than 1.5× PyTorch.

    python benchmarks/bench_training.py [--repeats 30]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from gradlab import clip_by_global_norm, get_task, init_params, loss_and_grads
from gradlab.training.clipping import global_norm
from gradlab.analysis.spectrum import sigma_max, spectral_radius
from gradlab.training.loop import sgd_step

n, T, B, LR, MU, TAU = 128, 100, 32, 0.01, 0.9, 1.0


def gradlab_update(instrumented: bool):
    task = get_task("adding")
    rng = np.random.default_rng(0)
    state = {"params": init_params(n, task.inputs, task.outputs, radius=1.0, rng=rng)}
    state["velocity"] = {k: np.zeros_like(v) for k, v in state["params"].as_dict().items()}
    batch = task.batch(B, T, rng)
    clip = clip_by_global_norm(TAU)

    def step():
        p = state["params"]
        g = loss_and_grads(p, batch.x, batch.y, "tanh", task.loss, task.loss_steps)
        if instrumented:
            global_norm(g.grads), spectral_radius(p.W_hh), sigma_max(p.W_hh)
        state["params"], state["velocity"] = sgd_step(p, clip(g.grads), state["velocity"], LR, MU)

    return step, batch


def torch_update(torch, batch, threads: int):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    rnn = torch.nn.RNN(2, n, batch_first=True, dtype=torch.float64)
    fc = torch.nn.Linear(n, 1, dtype=torch.float64)
    params = list(rnn.parameters()) + list(fc.parameters())
    opt = torch.optim.SGD(params, lr=LR, momentum=MU)
    x, y = torch.from_numpy(batch.x), torch.from_numpy(batch.y)

    def step():
        opt.zero_grad()
        out, _ = rnn(x)
        loss = ((fc(out[:, -1]) - y) ** 2).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, TAU)
        opt.step()

    return step


def timed(step) -> tuple[float, float]:
    """(wall, CPU) seconds of one call; CPU time is less disturbed by other users of the machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    step()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    import torch

    g_step, batch = gradlab_update(instrumented=False)
    gi_step, _ = gradlab_update(instrumented=True)
    contenders = {"gradlab update": (g_step, 1), "gradlab update + ρ, σ_max": (gi_step, 1)}
    for threads in (1, 2):
        contenders[f"torch nn.RNN ({threads} thread{'s' * (threads > 1)})"] = (
            torch_update(torch, batch, threads), threads)
    times = {name: [] for name in contenders}
    for _ in range(3):                                   # warm-up
        for step, threads in contenders.values():
            torch.set_num_threads(threads)
            with threadpool_limits(limits=threads, user_api="blas"):
                step()
    for _ in range(args.repeats):
        for name, (step, threads) in contenders.items():
            torch.set_num_threads(threads)
            with threadpool_limits(limits=threads, user_api="blas"):
                times[name].append(timed(step))
    wall = {name: statistics.median(w for w, _ in t) for name, t in times.items()}
    cpu = {name: statistics.median(c for _, c in t) for name, t in times.items()}
    best_wall = min(v for k, v in wall.items() if k.startswith("torch"))
    best_cpu = min(v for k, v in cpu.items() if k.startswith("torch") and "1 thread" in k)
    print(f"n={n}, T={T}, batch={B}, float64, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, "
          f"torch {torch.__version__}; medians of {args.repeats}")
    print(f"  {'':<30} {'wall ms':>8} {'ratio':>6} {'CPU ms':>8} {'ratio':>6}")
    for name in contenders:
        print(f"  {name:<30} {1e3 * wall[name]:8.1f} {wall[name] / best_wall:5.2f}× "
              f"{1e3 * cpu[name]:8.1f} {cpu[name] / best_cpu:5.2f}×")
    ratio = wall["gradlab update"] / best_wall
    print(f"target gradlab ≤ 1.5× best torch (wall): {ratio:.2f}× {'met' if ratio <= 1.5 else 'MISSED'}; "
          f"CPU-time ratio against 1-thread torch {cpu['gradlab update'] / best_cpu:.2f}×")


if __name__ == "__main__":
    main()
