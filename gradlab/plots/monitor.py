"""A training run seen from inside: the figure of a :class:`gradlab.torch.Monitor` folder (or ``gradlab train``).

Four panels from ``training.csv`` and ``jacobians.csv``:

(a) loss and gradient norm per update; (b) ρ of each recurrent weight block
(one line per block: ``rho_<block>`` columns, else the overall ``rho``);
(c) ‖∂s_T/∂s_k‖ against the lag T − k on the probe batch at each
checkpoint, coloured by update; (d) λ₁ at each checkpoint (``lyapunov``, when
recorded), with 0 marked: above it the probe's gradients explode, below
they vanish.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from ..errors import GradlabError
from ..io.schema import require_columns
from .style import REFERENCE, TEXT_WIDTH, get_ax, log10_axis, panel_label, sequential_colors


def plot_loss_and_grad_norm(training: pd.DataFrame, ax=None):
    """Loss (left axis) and global gradient norm (right axis, dashed) against the update, log scales."""
    ax = get_ax(ax)
    require_columns(training, ("step", "loss", "grad_norm"), "training table")
    ax.plot(training["step"], training["loss"], color="black", linewidth=0.8, label="loss")
    ax.set_yscale("log")
    ax.set_xlabel("update")
    ax.set_ylabel("loss")
    twin = ax.twinx()
    twin.plot(training["step"], training["grad_norm"], color="#D55E00", linewidth=0.6, linestyle="--")
    twin.set_yscale("log")
    twin.set_ylabel(r"$\|g\|_2$", color="#D55E00")
    twin.tick_params(axis="y", colors="#D55E00")
    ax.set_zorder(twin.get_zorder() + 1)           # the loss in front of the (noisier) gradient norm
    ax.patch.set_visible(False)
    return ax


def plot_block_radii(training: pd.DataFrame, ax=None):
    """ρ of each recurrent block against the update (``rho_<block>`` columns)."""
    ax = get_ax(ax)
    blocks = [c for c in training.columns if c.startswith("rho_")] or ["rho"]
    require_columns(training, ["step"] + blocks, "training table")
    colors = plt.get_cmap("tab10")
    for i, column in enumerate(blocks):
        ax.plot(training["step"], training[column], color=colors(i % 10), linewidth=0.8,
                label=column.removeprefix("rho_").replace("W_h", "").replace("_l", " layer "))
    if training[blocks].max().max() > 0.8:      # ρ = 1 matters only where a block comes near it
        ax.axhline(1.0, **REFERENCE)
    ax.set_xlabel("update")
    ax.set_ylabel(r"$\rho$ of each recurrent block")
    if len(blocks) > 1:
        # room above the curves for the legend (rows of two entries), so that it hides none of them
        rows = -(-len(blocks) // 2) + 1
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, hi + (hi - lo) * min(0.06 * rows / (1 - 0.06 * rows), 2.0))
        ax.legend(fontsize="xx-small", ncols=2, loc="upper center", title="gate, layer", title_fontsize="xx-small")
    return ax


def plot_curves_over_training(jacobians: pd.DataFrame, ax=None):
    """mean log10‖∂s_T/∂s_k‖ against lag, one line per recorded update (darker = later)."""
    ax = get_ax(ax)
    require_columns(jacobians, ("step", "lag", "mean_log10_norm"), "jacobians table")
    steps = sorted(jacobians["step"].unique())
    color_of, mappable = sequential_colors(pd.Series(steps, dtype=float))
    for s in steps:
        c = jacobians[jacobians["step"] == s].sort_values("lag")
        ax.plot(c["lag"], c["mean_log10_norm"], color=color_of(float(s)), linewidth=0.8)
    ax.axhline(0.0, **REFERENCE)
    log10_axis(ax, "y")
    ax.set_xlabel(r"lag $T-k$ (steps)")
    ax.set_ylabel(r"$\|\partial s_T / \partial s_k\|_2$ (probe)")
    ax.figure.colorbar(mappable, ax=ax, label="update", pad=0.02)
    return ax


def plot_lyapunov_over_training(jacobians: pd.DataFrame, ax=None):
    """λ₁ of the probe's trajectories at each recorded update."""
    ax = get_ax(ax)
    require_columns(jacobians, ("step", "lyapunov"), "jacobians table")
    per_step = jacobians.groupby("step", sort=True)["lyapunov"].first()
    ax.plot(per_step.index, per_step.to_numpy(), marker="o", markersize=2.5, color="black", linewidth=0.8)
    ax.axhline(0.0, **REFERENCE)
    ax.set_xlabel("update")
    ax.set_ylabel(r"$\lambda_1$ (nats/step)")
    return ax


def monitor_figure(tables: dict) -> plt.Figure:
    """The four panels of the module docstring."""
    training, jacobians = tables["training"], tables["jacobians"]
    first = str(training["run_id"].iloc[0]) if "run_id" in training.columns else None
    if first is not None:           # a sweep: its first run (one run's story per figure)
        training = training[training["run_id"].astype(str) == first]
        jacobians = jacobians[jacobians["run_id"].astype(str) == first]
    if training.empty or jacobians.empty:
        raise GradlabError("the run recorded no updates or no Jacobian curve yet: nothing to draw")
    has_lyapunov = "lyapunov" in jacobians.columns and jacobians["lyapunov"].notna().any()
    fig, axes = plt.subplots(1, 4 if has_lyapunov else 3, figsize=(TEXT_WIDTH, 2.5), layout="constrained")
    plot_loss_and_grad_norm(training, ax=axes[0])
    plot_block_radii(training, ax=axes[1])
    plot_curves_over_training(jacobians, ax=axes[2])
    if has_lyapunov:
        plot_lyapunov_over_training(jacobians, ax=axes[3])
    for i, ax in enumerate(axes):
        panel_label(ax, i)
    shown = [c for c in ("label", "cell", "layers", "activation", "clipping", "radius", "task", "steps")
             if c in training.columns and training[c].notna().all() and training[c].nunique() == 1]
    if shown:
        fig.suptitle(", ".join(f"{c} {training[c].iloc[0]}" for c in shown), fontsize="small")
    return fig
