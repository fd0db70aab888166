"""The ``gradlab`` command line: parse options, call library functions.

No computation lives here. Every command has a library function behind it
(``gradlab run`` → :func:`gradlab.analyse` + :func:`gradlab.write_run`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import signal
import sys
import threading

import click
from threadpoolctl import threadpool_limits

from . import __version__
from .cells.activations import ACTIVATIONS
from .training.clipping import CLIPPINGS
from .cells import CELLS, cell_phrase
from .experiments.config import RunConfig
from .errors import GradlabError, check_positive_int, check_positive_number
from .cells.init import INITS, SCALE_BY
from .analysis.losses import LOSS_STEPS, LOSSES
from .experiments.chaos import parse_gains
from .training.tasks import TASKS

class RegistryChoice(click.Choice):
    """A choice among a registry's keys as they are when the command line is parsed (a cell added to
    :data:`gradlab.cells.CELLS` after this module was imported is a valid ``--cell``)."""

    def __init__(self, registry: dict):
        self.registry = registry
        super().__init__(list(registry))

    @property
    def choices(self):
        return tuple(self.registry)

    @choices.setter
    def choices(self, value):   # click.Choice.__init__ assigns it; the registry is the source
        pass


# On small matrices OpenBLAS with 2 threads is many times slower than with 1
# (benchmarks/RESULTS.md); gradlab parallelises over runs instead.
BLAS_THREADS = 1


def model_options(f):
    """The options that define a model and its inputs (shared by run and check)."""
    options = [
        click.option("--hidden", "-n", type=int, default=32, show_default=True, help="Hidden size n."),
        click.option("--inputs", "-d", type=int, default=4, show_default=True,
                     help="Input size d (vocabulary size with --tokens)."),
        click.option("--outputs", "-m", type=int, default=None, help="Output size m  [default: d]."),
        click.option("--steps", "-T", type=int, default=100, show_default=True, help="Sequence length T."),
        click.option("--batch", "-B", type=int, default=4, show_default=True, help="Number of sequences B."),
        click.option("--activation", "-a", type=click.Choice(list(ACTIVATIONS)), default="tanh", show_default=True,
                     help="Nonlinearity φ (γ_h = sup|φ'|: tanh 1, sigmoid 1/4, relu 1, linear 1). With --weights "
                          "of an RNN it must be given unless the file records it (a 'nonlinearity' entry)."),
        click.option("--init", type=click.Choice(INITS), default="gaussian", show_default=True,
                     help="W_hh: gaussian N(0,1/n) (non-normal), orthogonal (Haar), identity (IRNN)."),
        click.option("--radius", "-r", type=float, default=1.0, show_default=True,
                     help="Spectral radius ρ(W_hh) the init is rescaled to exactly (σ_max with --scale-by sigma_max)."),
        click.option("--scale-by", type=click.Choice(SCALE_BY), default="radius", show_default=True,
                     help="Rescale W_hh so that ρ or σ_max equals --radius."),
        click.option("--input-scale", type=float, default=1.0, show_default=True,
                     help="Scale of the input drive W_xh x_t."),
        click.option("--tokens", is_flag=True, help="Inputs are token ids (one-hot), as in a language model."),
        click.option("--loss", type=click.Choice(LOSSES), default=None,
                     help="Output loss  [default: xent with --tokens, else mse]."),
        click.option("--loss-steps", type=click.Choice(LOSS_STEPS), default="all", show_default=True,
                     help="Loss on every step (E = Σ_t E_t) or on the last only."),
        click.option("--cell", type=RegistryChoice(CELLS), default="rnn", show_default=True,
                     help="Recurrent cell: vanilla rnn, or PyTorch-convention lstm / gru (state (h, C) / h; "
                          "--init/--radius apply to each recurrent gate block, --weights takes their state dict)."),
        click.option("--layers", "-L", type=int, default=1, show_default=True,
                     help="Stacked layers (PyTorch num_layers): the state is every layer's state, and the step "
                          "Jacobian includes the paths through the lower layers of the same step; layers.csv "
                          "holds each layer's own block ‖∂h^l_T/∂h^l_k‖."),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="Seed for weights, inputs and targets."),
        click.option("--weights", type=click.Path(dir_okay=False), default=None,
                     help="Analyse these weights instead of random ones: a PyTorch nn.RNN (nn.LSTM/nn.GRU with "
                          "--cell) state dict saved by numpy.savez (weight_ih_l0, weight_hh_l0, ...) or torch.save (.pt); "
                          "it sets n and d, so --hidden, --inputs, --init, --radius, --scale-by and --input-scale are refused with it "
                          "(without fc.weight the read-out is random, m = --outputs; the summary says so)."),
        click.option("--input-seq", type=click.Path(dir_okay=False), default=None,
                     help="Use these inputs: .npy, (T, d) or (B, T, d) floats, or (T,) / (B, T) token ids; "
                          "it sets T and B."),
        click.option("--layout", type=click.Choice(["btd", "tbd"]), default="btd", show_default=True,
                     help="Axis order of a 3-D --input-seq (2-D token ids: B, T): btd = (B, T, d), PyTorch's "
                          "batch_first=True; tbd = (T, B, d), PyTorch's default. The summary prints the B and T used."),
    ]
    return functools.reduce(lambda g, opt: opt(g), reversed(options), f)


def budget_options(f):
    """--max-memory and --yes: the limits a command's size estimate is checked against (experiments/budget.py)."""
    f = click.option("--yes", "-y", is_flag=True,
                     help="Run even when the estimated time is beyond the limit (6 h; a sweep 24 h with its --jobs); "
                          "the estimate is printed first.")(f)
    return click.option("--max-memory", default=None, metavar="SIZE",
                        help="Memory the command may use, e.g. 8G  [default: MemAvailable of /proc/meminfo]; "
                             "a command whose estimate is larger is refused before it allocates anything.")(f)


def state_estimate(est) -> None:
    """Print what a long command expects to take, on stderr, before it starts."""
    from .experiments.budget import statement

    line = statement(est)
    if line:
        click.echo(line, err=True)


def config_from(options: dict, **extra) -> RunConfig:
    """A RunConfig from the parsed options of :func:`model_options` (same names).

    With --weights, --activation counts only when given: otherwise φ comes
    from the file (RunConfig ``activation=None``), never tanh by default.
    """
    names = {f.name for f in dataclasses.fields(RunConfig)}
    values = {k: v for k, v in options.items() if k in names}
    if values.get("weights") is not None:
        # the file sets the network: an option that would shape a random one must not pass unnoticed
        unused = [_option_name(n) for n in ("hidden", "inputs", "init", "radius", "scale_by", "input_scale")
                  if n in options and not _defaulted(n)]
        if unused:
            raise GradlabError(f"--weights sets the network, so {', '.join(unused)} would not be used; "
                               "leave {} out".format("it" if len(unused) == 1 else "them"))
        if _defaulted("activation"):
            values["activation"] = None
    return RunConfig(**values, **extra)


def _defaulted(name: str) -> bool:
    """The option ``name`` of the running command was not given (click's default was used)."""
    from click.core import ParameterSource

    ctx = click.get_current_context(silent=True)
    return ctx is not None and ctx.get_parameter_source(name) in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="gradlab")
def cli():
    """Measure how gradients vanish and explode in recurrent networks.

    \b
    Typical session:
      gradlab reproduce --quick                        every experiment and figure, small sizes
      gradlab run --radius 1.5 --out runs/r15          ‖∂h_t/∂h_k‖, spectrum of W_hh, ‖∂L/∂h_k‖
      gradlab check --truncate 4                       BPTT vs finite differences
      gradlab train --clipping norm --out runs/adding  SGD on the adding problem, clipped
      gradlab sweep experiments/vanishing.toml --out results/vanishing --jobs 2
      gradlab inspect results/vanishing                what was swept, key numbers per group
      gradlab plot norms-vs-lag results/vanishing      a figure from the saved CSVs

    Run `gradlab COMMAND --help` for what each command writes and an example.
    """


@cli.command()
@model_options
@click.option("--pairs", default="last", show_default=True,
              help="Which ‖∂h_t/∂h_k‖: 'last' (t = T, every k), 'all' (every k < t), 'stride:K' (t every K steps).")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Results folder to create.")
@click.option("--force", is_flag=True, help="Replace an existing results folder (one gradlab wrote).")
@budget_options
def run(out, force, pairs, max_memory, yes, **options):
    """Record a forward pass and measure ‖∂h_t/∂h_k‖, the spectrum of W_hh and ‖∂L/∂h_k‖.

    \b
    Writes into OUT:
      norms.csv       seq, t, k, lag, log10_norm, log10_bound, log10_rate
      spectrum.csv    kind, index, real, imag, abs   (eigenvalues, singular values)
      grads.csv       seq, k, log10_grad_norm
      cell_state.csv  seq, t, k, lag, log10_norm_full, log10_norm_forget, log10_norm_exact   (--cell lstm)
      layers.csv      seq, layer, t, k, lag, log10_norm   (--layers L > 1: each layer's own block)
      manifest.json   the config as analysed, seed, measured ρ, σ_max, growth rate, versions
                      (--weights: the file and its SHA-256; init, radius: null, not used)

    \b
    The bound is (σ_max γ_h)^(t−k); ρ^(t−k) is the asymptotic rate, not a bound.

    \b
    Examples:
      gradlab run --hidden 64 --steps 200 --radius 1.5 --activation relu --out runs/relu15
      gradlab run --pairs all --steps 60 --out runs/heatmap          # every pair t > k
      gradlab run --weights my_rnn.npz --activation tanh --input-seq x.npy --out runs/mine
    """
    from .io.results import check_new_folder, claim_folder
    from .experiments import budget
    from .experiments.runner import analyse, write_run

    with budget.limits(max_memory, yes):
        config = config_from(options, pairs=pairs)
        state_estimate(budget.check(config))     # refused here if it cannot fit or would take too long
        # claimed (locked, checked writable, not holding the files it reads) before computing
        with claim_folder(out, {config.weights: "weights file", config.input_seq: "input file"}):
            check_new_folder(out, force)
            result = analyse(config)
            write_run(result, out, force)
    s = result.summary
    click.echo(result.model.summary_line())
    click.echo(f"ρ = {s['rho']:.4g}   σ_max = {s['sigma_max']:.4g}   γ_h = {s['gamma_h']:g}   "
               f"growth rate = {s['growth_rate']:.4g} nats/step (bound {s['bound_rate']:.4g}, ρ-rate {s['asymptotic_rate']:.4g})")
    click.echo(f"wrote {out}/{', '.join(f'{name}.csv' for name in result.tables)}, manifest.json")


@cli.command()
@model_options
@click.option("--truncate", "-k", type=click.IntRange(min=0), default=None,
              help="Also compare truncated BPTT (bptt_truncate = K) with the exact gradient.")
@click.option("--tol", type=float, default=1e-6, show_default=True, help="Largest relative error that passes.")
@budget_options
def check(truncate, tol, max_memory, yes, **options):
    """Check BPTT gradients of every parameter against central finite differences.

    Prints the relative error max|g − fd| / max(max|g|, max|fd|) per
    parameter (g: BPTT gradient, fd: central differences; the largest entry
    of either gradient sets the scale, so tiny entries do not inflate it) and
    exits 0 when all are below --tol, 1 otherwise. Costs two forward passes
    per parameter entry, so keep the model small.

    With --truncate K it also shows how far the tutorial's truncated BPTT is
    from the true gradient: why its gradient check typically fails for
    sequences longer than K + 1 steps (with K = T − 2 it often passes).

    \b
    Examples:
      gradlab check                                   # exits 0: every parameter below 1e-6
      gradlab check --tokens --inputs 8 --hidden 2 --steps 7 --batch 1 --truncate 4
    """
    from .analysis.gradcheck import gradient_check
    from .experiments import budget
    from .experiments.runner import build_model, finite_forward

    check_positive_number(tol, "tol")
    with budget.limits(max_memory, yes):
        config = config_from(options)
        state_estimate(budget.check(config, gradcheck=True, truncate=truncate))
        model = build_model(config)
        finite_forward(model)   # an overflowing network has no gradient to check
        c = model.config
        table = gradient_check(model.params, model.x, model.y, loss=c.loss_name, loss_steps=c.loss_steps,
                               truncate=truncate, cell=model.cell)
    scale = "σ_max" if c.scale_by == "sigma_max" else "ρ"
    network = f"weights {c.weights}" if c.weights is not None else f"{c.init} {scale}={c.radius:g}"
    click.echo(f"gradient check: n={c.hidden} d={c.inputs} T={c.steps} B={c.batch} "
               f"{c.activation} {network} loss={c.loss_name}/{c.loss_steps}")
    if model.notes:
        click.echo(model.summary_line())
    click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.2e}"))
    kinks = int(table["kinks"].sum())
    if kinks:
        click.echo(f"left out {kinks} of {int(table['entries'].sum())} entries whose ±ε moves a pre-activation "
                   f"across the kink of {c.activation} at 0: there the difference quotient measures a unit "
                   "switching on or off, not the derivative (column kinks)")
    worst = table["bptt_vs_fd"].max(skipna=False)   # a NaN error fails
    ok = worst < tol
    click.echo(f"{'PASS' if ok else 'FAIL'}: largest BPTT vs finite-difference error {worst:.2e} "
               f"{'<' if ok else '≥'} {tol:g}")
    if truncate is not None:
        click.echo(f"truncated BPTT (K={truncate}) is {table['truncated_vs_full'].max():.2e} away from the "
                   f"true gradient (relative); a gradient check of it reports {table['truncated_vs_fd'].max():.2e}")
    return 0 if ok else 1


def _train_default(name: str):
    """The default of a TrainConfig field, so the CLI and the library agree."""
    from .training.loop import TrainConfig

    return TrainConfig.__dataclass_fields__[name].default


@cli.command()
@click.option("--task", type=click.Choice(list(TASKS)),
              default=_train_default("task"), show_default=True,
              help="adding: sum of two marked values (MSE; predicting 1 scores 1/6). temporal_order: order of "
                   "two symbols in noise (chance 75 % error). copy: recall 5 symbols after a delay. "
                   "reber: next symbol of embedded Reber strings. flip_flop: hold the sign of the last ±1 pulse "
                   "on each of 3 channels (MSE every step; chance 1).")
@click.option("--steps", "-T", type=int, default=_train_default("steps"), show_default=True,
              help="Sequence length T (longer = longer memory needed).")
@click.option("--hidden", "-n", type=int, default=_train_default("hidden"), show_default=True, help="Hidden size n.")
@click.option("--cell", type=RegistryChoice(CELLS), default=_train_default("cell"), show_default=True,
              help="Recurrent cell: vanilla rnn, or PyTorch-convention lstm / gru.")
@click.option("--layers", "-L", type=int, default=_train_default("layers"), show_default=True,
              help="Stacked layers (PyTorch num_layers).")
@click.option("--activation", "-a", type=click.Choice(list(ACTIVATIONS)), default=_train_default("activation"),
              show_default=True, help="Nonlinearity φ of the vanilla RNN (relu + --init identity: IRNN, Le et al. 2015).")
@click.option("--init", type=click.Choice(INITS), default=_train_default("init"), show_default=True,
              help="Initial W_hh (every recurrent gate block of a gated cell): gaussian, orthogonal (Saxe et al. "
                   "2014) or identity (IRNN).")
@click.option("--radius", "-r", type=float, default=_train_default("radius"), show_default=True,
              help="Initial spectral radius ρ(W_hh).")
@click.option("--scale-by", type=click.Choice(SCALE_BY), default=_train_default("scale_by"), show_default=True,
              help="Rescale the initial W_hh so that ρ or σ_max equals --radius.")
@click.option("--input-scale", type=float, default=_train_default("input_scale"), show_default=True,
              help="Scale of the initial input weights.")
@click.option("--forget-bias", type=float, default=_train_default("forget_bias"),
              help="Gated cells: bias of the gate that keeps the state (LSTM f, GRU z), e.g. 1 "
                   "(Jozefowicz et al. 2015).")
@click.option("--chrono", is_flag=True,
              help="Gated cells: chrono initialisation of the gate biases, b ~ ln U(1, T − 1) (Tallec & Ollivier 2018).")
@click.option("--batch", "-B", type=int, default=_train_default("batch"), show_default=True,
              help="Sequences per update.")
@click.option("--updates", "-u", type=int, default=_train_default("updates"), show_default=True,
              help="Number of updates (of --optimizer).")
@click.option("--optimizer", type=click.Choice(["sgd", "adam", "rmsprop"]), default=_train_default("optimizer"),
              show_default=True, help="sgd with momentum (Polyak 1964), adam (Kingma & Ba 2015) or rmsprop "
                                      "(Tieleman & Hinton 2012), each as torch.optim computes it.")
@click.option("--lr", type=float, default=_train_default("lr"), show_default=True, help="Learning rate η.")
@click.option("--momentum", type=float, default=None,
              help="Momentum μ in [0, 1) of sgd (v ← μv − ηg, θ ← θ + v) or rmsprop  [default: 0.9 for sgd, "
                   "0 for rmsprop; adam takes none].")
@click.option("--clipping", type=click.Choice(CLIPPINGS), default=_train_default("clipping"),
              show_default=True,
              help="norm: if ‖g‖ > τ then g ← τg/‖g‖ (Pascanu et al. 2013); value: clip each entry to [−c, c].")
@click.option("--threshold", type=float, default=_train_default("threshold"), show_default=True,
              help="τ for --clipping norm, c for --clipping value.")
@click.option("--omega", type=float, default=_train_default("omega"), show_default=True,
              help="α, weight of Pascanu et al.'s (2013) regulariser Ω = Σ_k (‖δ_{k+1} ∂h_{k+1}/∂h_k‖/‖δ_{k+1}‖ − 1)² "
                   "(vanilla RNN; 0: off).")
@click.option("--eval-every", type=int, default=_train_default("eval_every"), show_default=True,
              help="Held-out loss and metric every this many updates.")
@click.option("--eval-batch", type=int, default=_train_default("eval_batch"), show_default=True,
              help="Size of the held-out batch.")
@click.option("--jacobian-every", type=int, default=_train_default("jacobian_every"), show_default=True,
              help="Record the curve ‖∂h_T/∂h_k‖ every this many updates (0: never).")
@click.option("--stop-when-solved", is_flag=True,
              help="End the run at the first evaluation whose held-out error rate is below 1 %.")
@click.option("--seed", type=int, default=_train_default("seed"), show_default=True,
              help="Seed for weights, training batches and the held-out batch.")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Results folder to create.")
@click.option("--force", is_flag=True, help="Replace an existing results folder (one gradlab wrote).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@budget_options
def train(out, force, quiet, max_memory, yes, **options):
    """Train a recurrent cell on a long-memory task, with the remedies for vanishing and exploding gradients.

    Every update records the loss, the gradient norm before and after
    clipping, whether it was clipped or skipped (a non-finite gradient is
    never applied), and ρ, σ_max of the recurrent weights. A run is solved
    when its held-out error rate falls below 1 % (adding: sequences with
    squared error > 0.04).

    \b
    Writes into OUT (the same layout as a one-run sweep):
      training.csv    step, loss, grad_norm, clipped_grad_norm, clipped, skipped, rho, sigma_max (, omega_value: Ω)
      evaluation.csv  step, eval_loss, metric_name, metric, error_rate, chance_metric   (held-out batch)
      jacobians.csv   step, lag, mean/median/min/max_log10_norm, ...   (with --jacobian-every)
      runs.csv        one row: parameters, final loss, metric and error rate, solved, updates_to_solve,
                      n_clipped, n_skipped
      manifest.json   the full config and versions

    \b
    Examples:
      gradlab train --task adding --steps 20 --hidden 16 --updates 400 --lr 0.05 --momentum 0.9 --clipping norm --out runs/adding
      gradlab train --task adding --steps 20 --radius 3 --activation relu --lr 0.01 --out runs/relu-exploding
      gradlab train --cell lstm --forget-bias 1 --optimizer adam --lr 0.01 --steps 50 --stop-when-solved --out runs/lstm
    """
    from .experiments import budget
    from .experiments.sweep import write_single_run
    from .training.loop import TrainConfig

    with budget.limits(max_memory, yes):
        config = TrainConfig(**options)
        state_estimate(budget.check(config))
        tables = write_single_run("train", config.to_dict(), out, force, quiet)
    s = tables["runs"].iloc[0]
    chance = "no chance level" if math.isnan(s["chance_metric"]) else f"chance {s['chance_metric']:.4g}"
    solved = (f"solved at update {s['updates_to_solve']:.0f}" if s["solved"]
              else f"not solved (error rate {s['final_error_rate']:.3g} ≥ 1 %)")
    click.echo(f"{config.cell} on {config.task}, T={config.steps}: held-out {s['metric_name']} {s['final_metric']:.4g} "
               f"({chance}), loss {s['final_loss']:.4g}, {solved}; "
               f"{s['n_clipped']} of {s['updates_done']} updates clipped, {s['n_skipped']} skipped; "
               f"ρ {s['rho']:.3g} → {s['final_rho']:.3g}")
    click.echo(f"wrote {out}/{', '.join(f'{name}.csv' for name in tables)}, manifest.json")


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False),
              help="Results folder; the same command again resumes it.")
@click.option("--jobs", "-j", type=int, default=1, show_default=True,
              help="Local worker processes (BLAS pinned to one thread in each).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Run on a Dask distributed scheduler, e.g. tcp://10.0.0.5:8786 (pip install \"gradlab[distributed]\").")
@click.option("--quick", is_flag=True, help="Apply the file's [quick] replacements: a small smoke run.")
@click.option("--force", is_flag=True, help="Discard the sweep results OUT holds and start again.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@budget_options
def sweep(spec, out, jobs, scheduler, quick, force, quiet, max_memory, yes):
    """Run every combination of a TOML sweep file into one folder of tidy CSVs.

    \b
    A sweep file (see experiments/*.toml):
      kind = "run"                       # run, train, truncation, lyapunov, lyapunov_spectrum, fixed_points
      [grid]                             # lists; every combination is one run
      radius = [0.5, 1.0, 2.0]
      activation = ["tanh", "relu"]
      [fixed]                            # the same in every run
      hidden = 64
      [quick.grid]                       # optional replacements for --quick
      radius = [0.5, 2.0]
    Parameter names are those of `gradlab run` / `gradlab train` (underscores:
    loss_steps, eval_every); a truncation sweep adds `truncate` (K).

    \b
    OUT gets runs.csv (one row per run), long tables (norms.csv, spectrum.csv,
    training.csv, evaluation.csv, jacobians.csv or truncation.csv; each row
    repeats its run's parameters) and manifest.json (the sweep file, versions,
    code fingerprint). Seeds come from the parameters, so results do not depend
    on --jobs or --scheduler. A killed sweep resumes where it stopped when the
    same command is run again (a damaged part is computed again); a changed
    sweep file, weights or input file, or a sweep begun by other gradlab code,
    is refused unless --force. One sweep at a time writes OUT: a second one
    is refused, naming the first. OUT may not hold the sweep file or the files
    it reads.

    \b
    Examples:
      gradlab sweep experiments/vanishing.toml --out results/vanishing --jobs 2
      gradlab sweep experiments/clipping.toml --out results/clipping-quick --quick
      gradlab sweep experiments/vanishing.toml --out results/v --scheduler tcp://127.0.0.1:8786
    """
    from .experiments import budget
    from .experiments.sweep import load_spec, run_sweep

    with budget.limits(max_memory, yes, jobs):     # every run's estimate is checked as the file is parsed
        loaded = load_spec(spec, quick)
        line = budget.sweep_statement(loaded)
        if line:
            click.echo(line, err=True)
        outcome = run_sweep(loaded, out, jobs=jobs, scheduler=scheduler, force=force, quiet=quiet)
    done = f", {outcome.n_already_done} were already done" if outcome.n_already_done else ""
    if outcome.n_damaged:
        done += f", {outcome.n_damaged} damaged part{'s' * (outcome.n_damaged != 1)} computed again"
    click.echo(f"{outcome.n_runs} runs ({outcome.n_computed} computed{done}): wrote "
               f"{', '.join(f'{name}.csv' for name in outcome.tables)} and manifest.json in {out}")
    click.echo(f"summary: gradlab inspect {out}")


@cli.command()
@click.argument("path", type=click.Path())
def inspect(path):
    """Summarise a results folder (from run, train or sweep) or one CSV.

    For a sweep: what was swept, how many runs finished, the key figures per
    group (e.g. the fitted growth rate per activation × radius, averaged over
    seeds) and where each file is. For a CSV: its table kind, runs, constant
    columns and the range of every numeric column.

    \b
    Examples:
      gradlab inspect results/vanishing
      gradlab inspect results/vanishing/norms.csv
    """
    from .io.inspect import inspect_path

    click.echo(inspect_path(path))


@cli.command()
@click.argument("figure", required=False)
@click.argument("results_dir", required=False, type=click.Path(file_okay=False))
@click.option("--out", "-o", default="figures", show_default=True, type=click.Path(file_okay=False),
              help="Folder the figure files are written into (created if needed).")
@click.option("--format", "formats", default="pdf,png", show_default=True,
              help="Comma-separated formats: pdf (vector), png (300 dpi), svg.")
@click.option("--list", "list_figures", is_flag=True,
              help="List the figures: what each shows, the kind of results folder it is drawn from and the CSVs it reads.")
def plot(figure, results_dir, out, formats, list_figures):
    """Draw FIGURE from the CSVs in RESULTS_DIR (never from anything in memory).

    RESULTS_DIR is a sweep folder (gradlab sweep), a folder of gradlab run
    folders (one per network), or a single run folder. Writes
    OUT/FIGURE.pdf and OUT/FIGURE.png; `gradlab plot --list` names the figures.

    \b
    Examples:
      gradlab plot norms-vs-lag results/vanishing --out figures/
      gradlab plot heatmap runs/ --format png        # runs/ holds `gradlab run --pairs all` folders
    """
    from .plots.data import TABLE_FILES
    from .plots.figures import FIGURES, draw_figure

    if list_figures:
        for name, spec in FIGURES.items():
            files = ", ".join(dict.fromkeys(TABLE_FILES[t] for t in spec.tables))
            click.echo(f"{name:<18} {spec.description}\n"
                       f"{'':<18} from:  {spec.reads()}\n"
                       f"{'':<18} reads: {files}  (gradlab reproduce: results/…/{spec.results})")
        return 0
    if figure is None or results_dir is None:
        raise GradlabError("give FIGURE and RESULTS_DIR, e.g. `gradlab plot heatmap results/heatmap` "
                           "(`gradlab plot --list` names the figures)")
    for path in draw_figure(figure, results_dir, out, formats):
        click.echo(f"wrote {path}")
    return 0


@cli.command()
@click.option("--quick", is_flag=True,
              help="Small sizes from each sweep file's [quick] table: every figure in about a minute.")
@click.option("--out", "-o", default=None, type=click.Path(file_okay=False),
              help="Folder for the figures  [default: figures, or figures/quick with --quick].")
@click.option("--results", default="results", show_default=True, type=click.Path(file_okay=False),
              help="Where results go: RESULTS/full/NAME or RESULTS/quick/NAME (interrupted sweeps resume).")
@click.option("--experiments", default="experiments", show_default=True, type=click.Path(file_okay=False),
              help="Folder of sweep files (*.toml).")
@click.option("--jobs", "-j", type=int, default=2, show_default=True, help="Worker processes for the sweeps.")
@click.option("--format", "formats", default="pdf,png", show_default=True, help="Comma-separated figure formats.")
@click.option("--figure", "figures", multiple=True, help="Only this figure (repeatable; names: gradlab plot --list), and only the results it reads  [default: all].")
def reproduce(quick, out, results, experiments, jobs, formats, figures):
    """Run every shipped experiment and draw every figure from the saved CSVs.

    \b
    1. each experiments/NAME.toml runs as a sweep into RESULTS/{quick,full}/NAME
    2. single networks for the (t, k) heatmap and transient growth are measured
    3. every figure of `gradlab plot --list` is drawn into OUT (PDF + PNG)

    \b
    Examples:
      gradlab reproduce --quick           # about a minute on 2 cores → figures/quick/
      gradlab reproduce --jobs 2          # the README figures → figures/
    """
    from .experiments.reproduce import reproduce as reproduce_all

    out = out or ("figures/quick" if quick else "figures")
    done = reproduce_all(results=results, out=out, quick=quick, experiments=experiments, jobs=jobs, formats=formats,
                         figures=list(figures) or None, log=click.echo)
    click.echo(f"{len(done.figures)} figure files in {out}/ "
               f"({sum(done.seconds.values()):.0f} s)")
    return 0


def _lyapunov_default(name: str):
    """The default of a LyapunovConfig field, so the CLI, the sweep kind and the library agree."""
    from .experiments.chaos import LyapunovConfig

    return LyapunovConfig.__dataclass_fields__[name].default


def _spectrum_default(name: str):
    """The default of a SpectrumConfig field (``gradlab lyapunov --spectrum``)."""
    from .experiments.kinds import SpectrumConfig

    return SpectrumConfig.__dataclass_fields__[name].default


def _given(names) -> list[str]:
    """The options among ``names`` (parameter names) given on the command line, not left at their default."""
    ctx = click.get_current_context()
    return [n for n in names if ctx.get_parameter_source(n) not in (None, click.core.ParameterSource.DEFAULT)]


def _option_name(name: str) -> str:
    return "--" + name.replace("_", "-")


SPECTRUM_ONLY = ("k", "window", "local_k", "cell", "layers", "weights", "drive", "input_seq", "batch")


@cli.command()
@click.option("--activation", "-a", "activations", multiple=True, type=click.Choice(list(ACTIVATIONS)),
              help="Activation (repeatable)  [default: tanh, sigmoid and relu; with --weights the file's, once; "
                   "linear with --spectrum only].")
@click.option("--gains", default=None,
              help="Gains g as START:STOP:STEP or a comma list  [default per activation: tanh 0.25:3:0.125, "
                   "sigmoid 1:16:0.5, relu 0.25:2.5:0.125].")
@click.option("--hidden", "-n", type=int, default=_lyapunov_default("hidden"), show_default=True,
              help="Hidden size n of each network.")
@click.option("--steps", "-T", type=int, default=_lyapunov_default("steps"), show_default=True, help="Recorded steps.")
@click.option("--burn", type=int, default=_lyapunov_default("burn"), show_default=True,
              help="Unrecorded steps first (the state's transient).")
@click.option("--warmup", type=int, default=_lyapunov_default("warmup"), show_default=True,
              help="Recorded products that only align the vector (not counted).")
@click.option("--seeds", type=int, default=None,
              help="Networks per (activation, g): seeds 0 … S−1  [default: 2; 1 with --weights, where the seed "
                   "draws only --drive gaussian's inputs].")
@click.option("--spectrum", is_flag=True,
              help="The full Lyapunov spectrum (or the leading --k) by QR every step, D_KY, h_KS and the local "
                   "exponents, for any cell, random or --weights: a kind = \"lyapunov_spectrum\" sweep.")
@click.option("--k", "--leading", "k", type=int, default=None,
              help="--spectrum: the leading K exponents only (cost O(T k s²) instead of O(T s³))  [default: all s].")
@click.option("--window", type=int, default=_spectrum_default("window"), show_default=True,
              help="--spectrum: steps per finite-time window of the local exponents (0: none).")
@click.option("--local-k", "local_k", type=int, default=_spectrum_default("local_leading"), show_default=True,
              help="--spectrum: local exponents kept for the leading this many (0: none).")
@click.option("--cell", type=RegistryChoice(CELLS), default="rnn", show_default=True,
              help="--spectrum: the cell; a random lstm/gru has each n×n recurrent gate block Gaussian with "
                   "spectral radius g.")
@click.option("--layers", "-L", type=int, default=1, show_default=True, help="--spectrum --weights: stacked layers.")
@click.option("--weights", type=click.Path(dir_okay=False), default=None,
              help="--spectrum: a trained network instead of random ones (.npz state dict, PyTorch names; it "
                   "sets n), run from s_0 = 0.")
@click.option("--drive", type=click.Choice(["autonomous", "gaussian", "file"]), default=None,
              help="--spectrum --weights: its inputs: x_t = 0 (its own dynamics), x_t ~ N(0, I), or --input-seq "
                   "[default: file with --input-seq, else autonomous].")
@click.option("--input-seq", type=click.Path(dir_okay=False), default=None,
              help="--spectrum --weights: drive it with these inputs (.npy, (T, d) or (B, T, d)); they set the "
                   "steps (T − burn) and the sequences.")
@click.option("--batch", "-B", type=int, default=_spectrum_default("batch"), show_default=True,
              help="--spectrum: sequences per network (own initial state or inputs each).")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False),
              help="Results folder; the same command again resumes it.")
@click.option("--jobs", "-j", type=int, default=1, show_default=True,
              help="Local worker processes (BLAS pinned to one thread in each).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Run on a Dask distributed scheduler, e.g. tcp://10.0.0.5:8786.")
@click.option("--force", is_flag=True, help="Discard the results OUT holds and start again.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@budget_options
def lyapunov(activations, gains, hidden, steps, burn, warmup, seeds, spectrum, k, window, local_k, cell, layers,
             weights, drive, input_seq, batch, out, jobs, scheduler, force, quiet, max_memory, yes):
    """Lyapunov exponents of random (or trained) networks: λ₁ against mean field over g, or the full spectrum.

    Each network has W_hh = g·W₀, W₀ entries N(0, 1/n) drawn from its seed
    (shared by every gain: smooth curves), no input and no bias. The
    measured exponent (nats per step, one vector renormalised along the
    recorded Jacobians) is set against λ = ½ ln χ₁, χ₁ = g² E[φ'(√q* z)²]
    (Poole et al. 2016); the transition (χ₁ = 1) is at g = 1 for tanh and
    √2 for ReLU. Every (activation, g, seed) is one run of a
    kind = "lyapunov" sweep: it resumes, runs on --jobs or --scheduler, and
    OUT is a sweep folder (runs.csv, parts/, manifest.json).

    \b
    Writes into OUT:
      lyapunov.csv     run_id, activation, g, seed, hidden, steps, warmup, burn, n, lyapunov   (measured)
      mean_field.csv   activation, g, q_star, chi1, lyapunov    (theory, fine grid over each activation's gains)
      transitions.csv  activation, g_critical
      runs.csv, manifest.json

    With --spectrum, every exponent λ_1 ≥ … ≥ λ_s (or the leading --k) is
    measured by re-orthonormalising k vectors by QR every step (Benettin et
    al. 1980), nats per step, with the Kaplan–Yorke dimension
    D_KY = j + (λ_1+…+λ_j)/|λ_{j+1}|, the KS entropy h_KS = Σ_{λ_i>0} λ_i
    (Pesin) and finite-time exponents over windows of --window steps. The
    same random networks (same seeds: --k 1 gives the λ₁ above exactly), a
    random --cell lstm/gru, or a trained network (--weights), which runs
    from s_0 = 0 autonomously (x_t = 0, --drive autonomous, the default),
    on Gaussian inputs (--drive gaussian) or on an input file (--input-seq).
    Cost O(T s³): a 256-unit network over 1000 steps takes ~3 s per network
    on one core, 512 units over 2000 steps ~40 s.

    \b
    Writes into OUT with --spectrum (a kind = "lyapunov_spectrum" sweep):
      lyapunov_spectrum.csv  run_id, <parameters>, sequence, index, exponent, index_fraction (i/s)
      lyapunov_summary.csv   ... sequence, state_size, n_exponents, counted_steps, largest, mean_exponent,
                             sum_exponents, kaplan_yorke, ks_entropy
      lyapunov_local.csv     ... sequence, window_index, t_start, t_end, index, exponent   (finite-time)
      transitions.csv        activation, g_critical   (random vanilla RNNs)
      runs.csv, manifest.json

    \b
    Examples:
      gradlab lyapunov --out results/lyapunov --jobs 2                      # λ₁ scan, about 15 s on 2 cores
      gradlab lyapunov --spectrum -a tanh --gains 0.5,1,1.5,2,3 -n 128 --out results/spectra --jobs 2
      gradlab lyapunov --spectrum --weights my_rnn.npz -a tanh --k 10 --out results/mine
      gradlab plot lyapunov-spectrum results/spectra
    """
    import pandas as pd

    from .experiments.chaos import DEFAULT_GAINS, scan_spec_text, spectrum_report, spectrum_spec_text
    from .experiments.sweep import parse_spec, run_sweep

    if not spectrum:
        given = _given(SPECTRUM_ONLY)
        if given:
            raise GradlabError(f"{_option_name(given[0])} applies to the full spectrum: add --spectrum")
    seeds = seeds if seeds is not None else (1 if weights is not None else 2)
    check_positive_int(seeds, "seeds")
    if spectrum:
        fixed = {"hidden": hidden, "steps": steps, "warmup": warmup, "burn": burn, "leading": k, "window": window,
                 "local_leading": local_k, "batch": batch if _given(("batch",)) else None}
        if cell != "rnn" or layers != 1:
            fixed.update(cell=cell, layers=layers)
        if weights is not None:
            set_by_file = _given(("gains", "hidden")) + (_given(("steps", "batch")) if input_seq is not None else [])
            if set_by_file:
                raise GradlabError(f"{_option_name(set_by_file[0])} is not used: the "
                                   f"{'weights' if set_by_file[0] in ('gains', 'hidden') else 'input'} file sets it; "
                                   "leave it out")
            if len(activations) > 1:
                raise GradlabError("one network: give --activation once with --weights (or leave it to the file)")
            drive = drive or ("file" if input_seq is not None else "autonomous")
            fixed.update(weights=weights, drive=drive, input_seq=input_seq, activation=(activations or (None,))[0],
                         hidden=None, steps=None if input_seq is not None else steps,
                         batch=None if input_seq is not None else batch)
            grid = None
        else:
            if _given(("drive", "input_seq")):
                raise GradlabError(f"{_option_name(_given(('drive', 'input_seq'))[0])} drives a trained network: "
                                   "give --weights (a random network runs autonomously)")
            if cell != "rnn":     # fixed sigmoid/tanh gates: no φ to sweep
                if [a for a in activations if a != "tanh"]:
                    raise GradlabError(f"{cell_phrase(cell)} has fixed sigmoid/tanh gates: leave --activation out")
                grid = {None: parse_gains(gains or DEFAULT_GAINS["tanh"])}
            else:
                grid = {a: parse_gains(gains or DEFAULT_GAINS.get(a, DEFAULT_GAINS["tanh"]))
                        for a in activations or tuple(DEFAULT_GAINS)}
        text = spectrum_spec_text(grid, seeds, fixed)
        source = "gradlab lyapunov --spectrum"
    else:
        activations = activations or tuple(DEFAULT_GAINS)
        grid = {a: parse_gains(gains or DEFAULT_GAINS.get(a, DEFAULT_GAINS["tanh"])) for a in activations}
        text = scan_spec_text(grid, seeds, hidden=hidden, steps=steps, warmup=warmup, burn=burn)
        source = "gradlab lyapunov"
    from .experiments import budget

    with budget.limits(max_memory, yes, jobs):
        outcome = run_sweep(parse_spec(text, source), out, jobs=jobs, scheduler=scheduler, force=force, quiet=quiet)
    if spectrum:
        for line in spectrum_report(pd.read_csv(outcome.out / "runs.csv")):
            click.echo(line)
    if (outcome.out / "transitions.csv").is_file():
        for row in pd.read_csv(outcome.out / "transitions.csv").itertuples():
            click.echo(f"{row.activation}: transition at g = {row.g_critical:.6g}")
    done = f", {outcome.n_already_done} were already done" if outcome.n_already_done else ""
    click.echo(f"{outcome.n_runs} network{'s' * (outcome.n_runs != 1)} ({outcome.n_computed} computed{done}): wrote "
               f"{', '.join(f'{name}.csv' for name in outcome.tables)} and manifest.json in {out}")


def _fixed_point_default(name: str):
    """The default of a fixed-point run's field: its training settings, else FixedPointConfig's, else TrainConfig's."""
    from .experiments.kinds import FIXED_POINT_TRAINING, FixedPointConfig
    from .training.loop import TrainConfig

    if name in FIXED_POINT_TRAINING:
        return FIXED_POINT_TRAINING[name]
    fields = FixedPointConfig.__dataclass_fields__
    return (fields[name] if name in fields else TrainConfig.__dataclass_fields__[name]).default


FIXED_POINT_OPTIONS = ("weights", "task", "cell", "activation", "layers", "hidden", "steps", "updates", "optimizer",
                       "lr", "momentum", "clipping", "threshold", "batch", "record", "input_seq", "record_batch",
                       "record_steps", "starts", "noise", "fixed_tol", "slow_tol", "unique_tol", "max_iter")


@cli.command("fixed-points")
@click.option("--weights", type=click.Path(dir_okay=False), default=None,
              help="Analyse this trained network (.npz state dict, PyTorch names) instead of training one.")
@click.option("--task", type=click.Choice(list(TASKS)), default=_fixed_point_default("task"), show_default=True,
              help="Task the network is trained on, and whose inputs record the trajectories (--record task).")
@click.option("--cell", type=RegistryChoice(CELLS), default="rnn", show_default=True, help="Recurrent cell.")
@click.option("--activation", "-a", type=click.Choice(list(ACTIVATIONS)), default=None,
              help="φ of the vanilla RNN  [default: tanh; with --weights the one the file records, which it must "
                   "then record (nonlinearity entry) unless this is given].")
@click.option("--layers", "-L", type=int, default=1, show_default=True, help="Stacked layers.")
@click.option("--hidden", "-n", type=int, default=_fixed_point_default("hidden"), show_default=True,
              help="Hidden size n of the network trained.")
@click.option("--steps", "--train-steps", "-T", "steps", type=int, default=_fixed_point_default("steps"),
              show_default=True, help="Sequence length of the training batches.")
@click.option("--updates", "--train-updates", "-u", "updates", type=int, default=_fixed_point_default("updates"),
              show_default=True, help="Training updates.")
@click.option("--optimizer", type=click.Choice(["sgd", "adam", "rmsprop"]), default=_fixed_point_default("optimizer"),
              show_default=True, help="Optimiser of the training.")
@click.option("--lr", type=float, default=_fixed_point_default("lr"), show_default=True, help="Learning rate η.")
@click.option("--momentum", type=float, default=_fixed_point_default("momentum"), show_default=True,
              help="Momentum μ of sgd.")
@click.option("--clipping", type=click.Choice(CLIPPINGS), default=_fixed_point_default("clipping"), show_default=True,
              help="Gradient clipping of the training (norm: Pascanu et al. 2013).")
@click.option("--threshold", type=float, default=_fixed_point_default("threshold"), show_default=True,
              help="τ of the clipping.")
@click.option("--batch", "-B", type=int, default=_fixed_point_default("batch"), show_default=True,
              help="Sequences per training update.")
@click.option("--record", type=click.Choice(["task", "gaussian", "file"]), default=None,
              help="Inputs of the recorded trajectories the starts are drawn from: a batch of --task, x_t ~ N(0, I), "
                   "or --input-seq  [default: file with --input-seq, else task].")
@click.option("--input-seq", type=click.Path(dir_okay=False), default=None,
              help="Record the trajectories on these inputs (.npy, (T, d) or (B, T, d) floats).")
@click.option("--record-batch", type=int, default=_fixed_point_default("record_batch"), show_default=True,
              help="Trajectories recorded.")
@click.option("--record-steps", type=int, default=_fixed_point_default("record_steps"), show_default=True,
              help="Length T of each recorded trajectory.")
@click.option("--starts", type=int, default=_fixed_point_default("starts"), show_default=True,
              help="Initial guesses, drawn from the recorded states.")
@click.option("--noise", type=float, default=_fixed_point_default("noise"), show_default=True,
              help="Standard deviation of the Gaussian noise added to each start.")
@click.option("--fixed-tol", type=float, default=_fixed_point_default("fixed_tol"), show_default=True,
              help="q = ½‖F(s) − s‖² at most this: a fixed point.")
@click.option("--slow-tol", type=float, default=_fixed_point_default("slow_tol"), show_default=True,
              help="q at most this (and above --fixed-tol): a slow point.")
@click.option("--unique-tol", type=float, default=_fixed_point_default("unique_tol"), show_default=True,
              help="Points closer than this (Euclidean) are one point.")
@click.option("--max-iter", type=int, default=_fixed_point_default("max_iter"), show_default=True,
              help="L-BFGS iterations (all starts at once).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds the training and, in a stream of its own, the recorded inputs and the starts.")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False),
              help="Results folder; the same command again resumes it (nothing left to do once it is written).")
@click.option("--force", is_flag=True, help="Discard the results OUT holds and start again.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@budget_options
def fixed_points(seed, out, force, quiet, max_memory, yes, **options):
    """Fixed and slow points of a trained network, and their stability (Sussillo & Barak 2013).

    The network is trained here (by default a 16-unit tanh RNN on the 3-bit
    flip-flop, which these settings solve: it then has 2³ = 8 stable fixed
    points, one per memory) or read from --weights. Its trajectories are
    recorded on --record inputs; --starts states drawn from them (plus
    --noise) each minimise the speed q(s) = ½‖F(s, 0) − s‖² with the input
    held at x = 0 (L-BFGS with the exact gradient (J − I)ᵀ(F(s) − s), then
    Newton steps). Every start is reported: fixed, slow, not_converged or
    non_finite — none is dropped. Each point is classified by the
    eigenvalues λ of the step Jacobian J there: stable (all |λ| < 1), saddle
    (n_unstable of them outside the unit circle) or unstable (all).
    OUT is a one-run sweep folder of kind = "fixed_points".

    \b
    Writes into OUT:
      fixed_points.csv             run_id, <parameters>, point_id, kind (fixed/slow), q, speed, n_starts,
                                   n_unstable, stability, max_abs_eigenvalue, pc1, pc2, pc3, s0 … s{n−1}
      fixed_point_eigenvalues.csv  ... point_id, index, real, imag, abs
      fixed_point_starts.csv       ... start_id, status, q, grad_norm, point_id (−1: none), distance
      trajectories.csv             ... sequence, t, pc1, pc2, pc3   (recorded states on the principal axes)
      runs.csv                     training results, n_points, n_stable, n_saddle, n_slow, starts_* counts
      manifest.json

    \b
    Examples:
      gradlab fixed-points --out results/flipflop              # trains for a few seconds, then searches
      gradlab fixed-points --task flip_flop --train-updates 800 --hidden 24 --out results/ff24
      gradlab fixed-points --weights my_rnn.npz --activation tanh --input-seq x.npy --out results/mine
      gradlab plot fixed-points results/flipflop
    """
    import pandas as pd

    from .experiments.chaos import sweep_text
    from .experiments.kinds import fixed_point_report
    from .experiments.sweep import parse_spec, run_sweep

    given = {name: options[name] for name in _given(FIXED_POINT_OPTIONS)}   # the rest: the kind's own defaults
    if options["input_seq"] is not None and "record" not in given:
        given["record"] = "file"
    text = sweep_text("fixed_points", "fixed and slow points of one network", [], {**given, "seed": seed})
    from .experiments import budget

    with budget.limits(max_memory, yes):
        outcome = run_sweep(parse_spec(text, "gradlab fixed-points"), out, force=force, quiet=quiet)
    for line in fixed_point_report(pd.read_csv(outcome.out / "runs.csv").iloc[0]):
        click.echo(line)
    done = " (already done)" if outcome.n_already_done else ""
    click.echo(f"wrote {', '.join(f'{name}.csv' for name in outcome.tables)} and manifest.json in {out}{done}")


class Terminated(BaseException):
    """SIGTERM (``kill PID``, ``timeout``, a batch system) as an exception, so it unwinds like Ctrl-C."""


def _raise_terminated(signum, frame):
    raise Terminated


@contextlib.contextmanager
def sigterm_unwinds():
    """While a command runs, SIGTERM raises :class:`Terminated` instead of ending the process on the spot.

    Unwinding removes the temporary folder of a results folder being written
    and shuts a sweep's worker pool down, as Ctrl-C does.
    """
    if threading.current_thread() is not threading.main_thread():   # signal handlers live in the main thread
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stopped(word: str, e: BaseException) -> str:
    """``Interrupted.``, or with what an interrupted sweep keeps: ``Interrupted: 37 of 150 runs are kept …``."""
    note = getattr(e, "resume_note", None)
    return f"{word}: {note}" if note else f"{word}."


def main(argv=None):
    """Entry point: one-line errors, exit code 2 for bad input, no tracebacks."""
    try:
        with sigterm_unwinds(), threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
            rv = cli.main(args=argv, prog_name="gradlab", standalone_mode=False)
    except NO_ARGS_IS_HELP as e:
        click.echo(e.ctx.get_help() if e.ctx else str(e))
        rv = 0
    except GradlabError as e:
        click.echo(f"Error: {e}", err=True)
        rv = 2
    except click.ClickException as e:
        click.echo(f"Error: {e.format_message()}", err=True)
        rv = e.exit_code
    except click.exceptions.Abort as e:
        # click turns Ctrl-C into Abort (raised from the KeyboardInterrupt): exit 130 like a shell.
        interrupted = isinstance(e.__context__, KeyboardInterrupt)
        click.echo(_stopped("Interrupted", e.__context__) if interrupted else "Aborted.", err=True)
        rv = 130 if interrupted else 1
    except KeyboardInterrupt as e:
        click.echo(_stopped("Interrupted", e), err=True)
        rv = 130
    except Terminated as e:
        click.echo(_stopped("Terminated", e), err=True)
        rv = 128 + signal.SIGTERM
    sys.exit(rv if isinstance(rv, int) else 0)


# click ≥ 8.2 raises this for a bare `gradlab`; older versions print help themselves.
NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())
