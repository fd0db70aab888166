"""Benchmark: ‖∂h_t/∂h_k‖₂ by gradlab against two references written the obvious way.

(a) numpy: multiply dense Jacobians diag(φ'(a_t)) W_hh backwards and call
    ``numpy.linalg.norm(P, 2)`` for every pair;
(b) PyTorch autograd (float64): ``torch.autograd.grad(h_t, [h_0 … h_{t-1}],
    is_grads_batched=True)`` on the unrolled RNN with the identity as the
    batch of output gradients, then ``torch.linalg.matrix_norm(ord=2)``.

The floor is the time of the Jacobian products alone: (number of products) ·
2n³ flops at the matmul rate measured here for (n, n) @ (n, n). Every method
runs at its own best thread count (1 or 2, chosen by a pilot run on a shorter
sequence); times are medians over repeats, and every ratio is taken from
times measured in this one run. Peak memory is measured in a fresh
subprocess (tracemalloc peak of the analysis, and the process's max RSS).

    python benchmarks/bench_jacobian_norms.py            # the issue's sizes (~4 min)
    python benchmarks/bench_jacobian_norms.py --quick    # small sizes (~20 s)
    python benchmarks/bench_jacobian_norms.py --against /tmp/old_jacobian_norms.py
                            # A/B: also time a saved copy of the module, interleaved in this run
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np
from threadpoolctl import threadpool_limits

import gradlab as gl
from gradlab.analysis.jacobian_norms import end_steps

torch = None      # imported in main(), not in the memory subprocess (its libraries would count there)


def import_torch():
    global torch
    try:
        import torch as torch_module
    except ImportError:  # reference (b) is skipped without torch
        return
    torch = torch_module

FULL = {"cases": [("all", 128, 100), ("last", 256, 400)], "memory": (512, 1000), "repeats": 5}
NO_TORCH = False
AGAINST = None    # a saved copy of gradlab/analysis/jacobian_norms.py to time alongside (--against)
QUICK = {"cases": [("all", 48, 30), ("last", 96, 120)], "memory": (128, 200), "repeats": 2}


# ---------------------------------------------------------------- problem

def make_trace(n: int, T: int, seed: int = 0):
    """A tanh RNN with ρ(W_hh) = 1 (the critical, hardest-to-summarise case), B = 1."""
    rng = np.random.default_rng(seed)
    params = gl.init_params(n=n, d=4, init="gaussian", radius=1.0, rng=rng)
    x = rng.standard_normal((1, T, 4))
    return params, x, gl.forward(params, x, "tanh")


def pair_order(pairs: str, T: int):
    """(t, k) of every pair in gradlab's order: by t, then lag."""
    ts, ks = [], []
    for t in end_steps(pairs, T):
        ts += [t] * t
        ks += list(range(t - 1, -1, -1))
    return np.array(ts), np.array(ks)


# ---------------------------------------------------------------- methods

def load_against(path: str):
    """A copy of jacobian_norms.py (e.g. before a change) as a module of gradlab.analysis (its imports resolve)."""
    spec = importlib.util.spec_from_file_location("gradlab.analysis._jacobian_norms_against", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run_gradlab(trace, pairs):
    """gradlab's default: method="auto", workers=2 (σ_max on a second thread)."""
    return gl.jacobian_norms(trace, pairs).log_norm[0]


def run_numpy_reference(trace, pairs):
    """(a) Dense Jacobians multiplied backwards, numpy.linalg.norm(P, 2) per pair."""
    dphi, W = trace.dphi[0], trace.W_hh
    out = []
    for t in end_steps(pairs, trace.T):
        P = np.eye(trace.n)
        for k in range(t - 1, -1, -1):
            J = dphi[k][:, None] * W          # J_{k+1} = diag(φ'(a_{k+1})) W_hh
            P = P @ J
            out.append(np.log(np.linalg.norm(P, 2)))
    return np.array(out)


def run_torch_reference(params, x, pairs):
    """(b) Autograd through the unrolled RNN, one batched backward pass per end step."""
    W_hh, W_xh, b = (torch.from_numpy(a) for a in (params.W_hh, params.W_xh, params.b_h))
    xs = torch.from_numpy(x[0])
    n, T = W_hh.shape[0], xs.shape[0]
    h = [torch.zeros(1, n, dtype=torch.float64, requires_grad=True)]
    for t in range(T):
        h.append(torch.tanh(h[-1] @ W_hh.T + xs[t] @ W_xh.T + b))
    eye = torch.eye(n, dtype=torch.float64)[:, None, :]     # batch of n output gradients
    out = []
    for t in end_steps(pairs, T):
        grads = torch.autograd.grad(h[t], h[:t], grad_outputs=eye, is_grads_batched=True, retain_graph=True)
        J = torch.stack(grads[::-1])[:, :, 0, :]            # ∂h_t/∂h_k, k = t−1 … 0
        out.append(torch.log(torch.linalg.matrix_norm(J, ord=2)))
    return torch.cat(out).numpy()


def run_floor(trace, pairs):
    """The Jacobian products alone, (P diag(φ')) W_hh, as many as gradlab forms."""
    dphi, W = trace.dphi[0], trace.W_hh
    for t in end_steps(pairs, trace.T):
        P = dphi[t - 1][:, None] * W
        for k in range(t - 2, -1, -1):
            P = (P * dphi[k]) @ W


# ---------------------------------------------------------------- timing

def timed(f, threads: int):
    """Wall time of one call of f with BLAS (and torch) limited to ``threads``."""
    if torch is not None:
        torch.set_num_threads(threads)
    with threadpool_limits(limits=threads, user_api="blas"):
        t0 = time.perf_counter()
        value = f()
        return time.perf_counter() - t0, value


def best_threads(f_pilot) -> tuple[int, dict]:
    """Thread count (1 or 2) with the shorter pilot time."""
    pilot = {k: min(timed(f_pilot, k)[0] for _ in range(2)) for k in (1, 2)}
    return min(pilot, key=pilot.get), pilot


def matmul_rate(n: int, threads: int, repeats: int = 15) -> float:
    """Measured float64 GFLOP/s of (n, n) @ (n, n): median over repeats."""
    rng = np.random.default_rng(1)
    A, B = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    calls = max(1, int(2e8 / n ** 3))
    times = []
    with threadpool_limits(limits=threads, user_api="blas"):
        A @ B
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(calls):
                A @ B
            times.append((time.perf_counter() - t0) / calls)
    return 2 * n ** 3 / float(np.median(times)) / 1e9


def bench_case(pairs: str, n: int, T: int, repeats: int) -> dict:
    params, x, trace = make_trace(n, T)
    pilot_T = max(8, T // 4)
    pparams, px, ptrace = make_trace(n, pilot_T)
    methods = {
        "gradlab": (lambda: run_gradlab(trace, pairs), lambda: run_gradlab(ptrace, pairs)),
        "numpy (a)": (lambda: run_numpy_reference(trace, pairs), lambda: run_numpy_reference(ptrace, pairs)),
        "products only": (lambda: run_floor(trace, pairs), lambda: run_floor(ptrace, pairs)),
    }
    if AGAINST is not None:
        methods["against"] = (lambda: AGAINST.jacobian_norms(trace, pairs).log_norm[0],
                              lambda: AGAINST.jacobian_norms(ptrace, pairs).log_norm[0])
    if torch is not None and not NO_TORCH:
        methods["torch (b)"] = (lambda: run_torch_reference(params, x, pairs),
                                lambda: run_torch_reference(pparams, px, pairs))
    threads = {name: best_threads(pilot)[0] for name, (_, pilot) in methods.items() if name != "against"}
    if AGAINST is not None:
        threads["against"] = threads["gradlab"]     # an A/B at the same BLAS threads
    times = {name: [] for name in methods}
    values = {}
    for _ in range(repeats):            # interleaved, so load changes hit every method alike
        for name, (f, _) in methods.items():
            dt, values[name] = timed(f, threads[name])
            times[name].append(dt)
    med = {name: float(np.median(v)) for name, v in times.items()}
    n_products = len(pair_order(pairs, T)[0])
    rate = max(matmul_rate(n, 1), matmul_rate(n, 2))
    floor = n_products * 2 * n ** 3 / (rate * 1e9)
    ref = values["gradlab"]
    err = {name: float(np.max(np.abs(np.expm1(values[name] - ref)))) for name in values if name not in
           ("gradlab", "products only", "against")}
    if "against" in values:
        err["against"] = "identical" if np.array_equal(values["against"], ref) else \
            float(np.max(np.abs(np.expm1(values["against"] - ref))))
    return {"pairs": pairs, "n": n, "T": T, "products": n_products, "threads": threads, "median_s": med,
            "all_s": times, "gflops": rate, "floor_s": floor, "max_rel_diff_vs_gradlab": err}


# ---------------------------------------------------------------- memory

def memory_child(n: int, T: int) -> None:
    """Run in a subprocess: peak memory of forward + jacobian_norms('last')."""
    with threadpool_limits(limits=1, user_api="blas"):
        tracemalloc.start()
        _, _, trace = make_trace(n, T)
        traced_trace = tracemalloc.get_traced_memory()[0]
        gl.jacobian_norms(trace, "last")
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    print(json.dumps({"tracemalloc_peak_bytes": peak, "trace_bytes": traced_trace, "max_rss_bytes": peak_rss()}))


def peak_rss() -> int:
    """Peak resident memory of this process since exec, in bytes.

    VmHWM is reset by exec; ru_maxrss is not (a child forked from a parent
    that holds torch would report the parent's size).
    """
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024   # Linux: KiB


def bench_memory(n: int, T: int) -> dict:
    cmd = [sys.executable, __file__, "--memory-child", f"{n},{T}"]
    result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return {"n": n, "T": T, **result}


# ---------------------------------------------------------------- report

def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    from threadpoolctl import threadpool_info
    blas = next((f"{i['internal_api']} {i.get('version')} ({i.get('architecture')})"
                 for i in threadpool_info() if i["user_api"] == "blas"), "unknown BLAS")
    torch_v = torch.__version__ if torch is not None else "absent"
    return (f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, numpy {np.__version__} "
            f"({blas}), torch {torch_v}, gradlab {gl.__version__}")


def report(cases, memory, load) -> str:
    lines = [f"machine: {machine()}",
             f"load average before / after: {load[0]:.2f} / {load[1]:.2f} (2 cores shared with other jobs)",
             "",
             "| pairs | n | T | products | gradlab | numpy (a) | torch (b) | products only | floor (2n³/rate) "
             "| (a) / gradlab | (b) / gradlab | gradlab / floor | max rel. diff (a), (b) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in cases:
        m, th = c["median_s"], c["threads"]
        cell = lambda name: f"{m[name]:.3f} s ({th[name]}t)" if name in m else "—"
        tb = m.get("torch (b)")
        diffs = ", ".join(f"{c['max_rel_diff_vs_gradlab'][k]:.1e}" for k in ("numpy (a)", "torch (b)")
                          if k in c["max_rel_diff_vs_gradlab"])
        lines.append(
            f"| {c['pairs']} | {c['n']} | {c['T']} | {c['products']} | {cell('gradlab')} | {cell('numpy (a)')} "
            f"| {cell('torch (b)')} | {cell('products only')} | {c['floor_s']:.3f} s ({c['gflops']:.1f} GFLOP/s) "
            f"| {m['numpy (a)'] / m['gradlab']:.1f}× | {(tb / m['gradlab']) if tb else float('nan'):.1f}× "
            f"| {m['gradlab'] / c['floor_s']:.2f}× | {diffs} |")
    for c in cases:
        if "against" in c["median_s"]:
            m, th = c["median_s"], c["threads"]
            lines.append(f"A/B {c['pairs']}, n={c['n']}: gradlab {m['gradlab']:.3f} s ({th['gradlab']}t), "
                         f"against {m['against']:.3f} s ({th['against']}t): gradlab / against "
                         f"{m['gradlab'] / m['against']:.3f}; norms {c['max_rel_diff_vs_gradlab']['against']}")
    if memory is None:
        return "\n".join(lines)
    lines += ["", f"peak memory, last pairs, n={memory['n']}, T={memory['T']} (fresh process, 1 BLAS thread): "
              f"tracemalloc peak {memory['tracemalloc_peak_bytes'] / 2**20:.1f} MiB "
              f"(of which the trace {memory['trace_bytes'] / 2**20:.1f} MiB); "
              f"process peak RSS (VmHWM) {memory['max_rss_bytes'] / 2**20:.0f} MiB"]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 2 repeats (a smoke test)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per method")
    parser.add_argument("--no-torch", action="store_true", help="leave out reference (b)")
    parser.add_argument("--only", default=None, help="run only case number i (0-based) and skip memory")
    parser.add_argument("--json", default=None, help="also write the raw results to this file")
    parser.add_argument("--against", default=None, metavar="FILE",
                        help="also time this saved copy of gradlab/analysis/jacobian_norms.py (an A/B in one run)")
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(*map(int, args.memory_child.split(",")))
        return
    global NO_TORCH, AGAINST
    NO_TORCH = args.no_torch
    if args.against:
        AGAINST = load_against(args.against)
    if not NO_TORCH:
        import_torch()
    cfg = QUICK if args.quick else FULL
    repeats = args.repeats or cfg["repeats"]
    load0 = os.getloadavg()[0]
    todo = cfg["cases"] if args.only is None else [cfg["cases"][int(args.only)]]
    cases = [bench_case(pairs, n, T, repeats) for pairs, n, T in todo]
    memory = bench_memory(*cfg["memory"]) if args.only is None else None
    text = report(cases, memory, (load0, os.getloadavg()[0]))
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cases": cases, "memory": memory, "report": text}, f, indent=1)


if __name__ == "__main__":
    main()
