"""Train a 2-layer nn.LSTM on the adding problem in PyTorch, watched by gradlab's training monitor.

    python examples/monitor_torch_training.py --out runs/monitor-lstm
    gradlab inspect runs/monitor-lstm
    gradlab plot monitor runs/monitor-lstm --out figures/mine

The loop is an ordinary PyTorch loop; the only gradlab lines are the
Monitor's: one call per update after backward(), and close() at the end (a
``with`` block does it). The monitor writes training.csv (loss, gradient norm,
ρ and σ_max of every recurrent gate block, per update) and jacobians.csv
(‖∂s_T/∂s_k‖ against lag on a fixed probe batch, and λ₁, every --every updates).
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

import gradlab as gl


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/monitor-lstm", help="results folder to create")
    parser.add_argument("--steps", type=int, default=50, help="sequence length T")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--updates", type=int, default=1500)
    parser.add_argument("--every", type=int, default=50, help="updates between two Jacobian curves")
    parser.add_argument("--force", action="store_true", help="replace OUT (a folder gradlab wrote)")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    task, rng = gl.get_task("adding"), np.random.default_rng(0)
    lstm = torch.nn.LSTM(2, args.hidden, num_layers=2, batch_first=True, dtype=torch.float64)
    fc = torch.nn.Linear(args.hidden, 1, dtype=torch.float64)
    opt = torch.optim.Adam([*lstm.parameters(), *fc.parameters()], lr=0.003)
    probe = torch.tensor(task.batch(8, args.steps, rng).x)          # a fixed batch for the Jacobian curves

    with gl.torch.Monitor(lstm, probe=probe, out=args.out, every=args.every, readout=fc,
                          force=args.force) as monitor:
        for update in range(1, args.updates + 1):
            batch = task.batch(32, args.steps, rng)
            out, _ = lstm(torch.tensor(batch.x))
            loss = ((fc(out[:, -1]) - torch.tensor(batch.y)) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            monitor.step(loss)                                       # after backward(): reads the .grad
            torch.nn.utils.clip_grad_norm_([*lstm.parameters(), *fc.parameters()], 1.0)
            opt.step()
            if update % 250 == 0:
                print(f"update {update}: loss {loss.item():.4f}")
    print(f"wrote {args.out}: gradlab inspect {args.out}")


if __name__ == "__main__":
    main()
