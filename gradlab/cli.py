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
from .cells import CELLS
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
                     help="Nonlinearity φ (γ_h = sup|φ'|: tanh 1, sigmoid 1/4, relu 1, linear 1)."),
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
        click.option("--seed", type=int, default=0, show_default=True,
                     help="Seed for weights, inputs and targets."),
        click.option("--weights", type=click.Path(dir_okay=False), default=None,
                     help="Analyse these weights instead of random ones: a PyTorch nn.RNN (nn.LSTM/nn.GRU with "
                          "--cell) state dict saved by numpy.savez (weight_ih_l0, weight_hh_l0, ...); "
                          "it sets n and d, so --hidden, --inputs, --init and --radius are not used."),
        click.option("--input-seq", type=click.Path(dir_okay=False), default=None,
                     help="Use these inputs: .npy, (T, d) or (B, T, d) floats, or (T,) / (B, T) token ids; "
                          "it sets T and B."),
    ]
    return functools.reduce(lambda g, opt: opt(g), reversed(options), f)


def config_from(options: dict, **extra) -> RunConfig:
    """A RunConfig from the parsed options of :func:`model_options` (same names)."""
    names = {f.name for f in dataclasses.fields(RunConfig)}
    return RunConfig(**{k: v for k, v in options.items() if k in names}, **extra)


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
def run(out, force, pairs, **options):
    """Record a forward pass and measure ‖∂h_t/∂h_k‖, the spectrum of W_hh and ‖∂L/∂h_k‖.

    \b
    Writes into OUT:
      norms.csv       seq, t, k, lag, log10_norm, log10_bound, log10_rate
      spectrum.csv    kind, index, real, imag, abs   (eigenvalues, singular values)
      grads.csv       seq, k, log10_grad_norm
      cell_state.csv  seq, t, k, lag, log10_norm_full, log10_norm_forget, log10_norm_exact   (--cell lstm)
      manifest.json   the config as analysed, seed, measured ρ, σ_max, growth rate, versions
                      (--weights: the file and its SHA-256; init, radius: null, not used)

    \b
    The bound is (σ_max γ_h)^(t−k); ρ^(t−k) is the asymptotic rate, not a bound.

    \b
    Examples:
      gradlab run --hidden 64 --steps 200 --radius 1.5 --activation relu --out runs/relu15
      gradlab run --pairs all --steps 60 --out runs/heatmap          # every pair t > k
      gradlab run --weights my_rnn.npz --input-seq x.npy --out runs/mine
    """
    from .io.results import check_new_folder
    from .experiments.runner import analyse, write_run

    config = config_from(options, pairs=pairs)
    check_new_folder(out, force)  # fail before computing
    result = analyse(config)
    write_run(result, out, force)
    s = result.summary
    click.echo(f"ρ = {s['rho']:.4g}   σ_max = {s['sigma_max']:.4g}   γ_h = {s['gamma_h']:g}   "
               f"growth rate = {s['growth_rate']:.4g} nats/step (bound {s['bound_rate']:.4g}, ρ-rate {s['asymptotic_rate']:.4g})")
    click.echo(f"wrote {out}/{', '.join(f'{name}.csv' for name in result.tables)}, manifest.json")


@cli.command()
@model_options
@click.option("--truncate", "-k", type=click.IntRange(min=0), default=None,
              help="Also compare truncated BPTT (bptt_truncate = K) with the exact gradient.")
@click.option("--tol", type=float, default=1e-6, show_default=True, help="Largest relative error that passes.")
def check(truncate, tol, **options):
    """Check BPTT gradients of every parameter against central finite differences.

    Prints the relative error max|g − fd| / max(max|g|, max|fd|) per
    parameter (g: BPTT gradient, fd: central differences; the largest entry
    of either gradient sets the scale, so tiny entries do not inflate it) and
    exits 0 when all are below --tol, 1 otherwise. Costs two forward passes
    per parameter entry, so keep the model small.

    With --truncate K it also shows how far the tutorial's truncated BPTT is
    from the true gradient: why its gradient check fails for sequences
    longer than K + 1 steps.

    \b
    Examples:
      gradlab check                                   # exits 0: every parameter below 1e-6
      gradlab check --tokens --inputs 8 --hidden 2 --steps 7 --batch 1 --truncate 4
    """
    from .analysis.gradcheck import gradient_check
    from .experiments.runner import build_model, finite_forward

    check_positive_number(tol, "tol")
    config = config_from(options)
    model = build_model(config)
    finite_forward(model)   # an overflowing network has no gradient to check
    c = model.config
    table = gradient_check(model.params, model.x, model.y, loss=c.loss_name, loss_steps=c.loss_steps,
                           truncate=truncate, cell=model.cell)
    scale = "σ_max" if c.scale_by == "sigma_max" else "ρ"
    network = f"weights {c.weights}" if c.weights is not None else f"{c.init} {scale}={c.radius:g}"
    click.echo(f"gradient check: n={c.hidden} d={c.inputs} T={c.steps} B={c.batch} "
               f"{c.activation} {network} loss={c.loss_name}/{c.loss_steps}")
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
                   "reber: next symbol of embedded Reber strings.")
@click.option("--steps", "-T", type=int, default=_train_default("steps"), show_default=True,
              help="Sequence length T (longer = longer memory needed).")
@click.option("--hidden", "-n", type=int, default=_train_default("hidden"), show_default=True, help="Hidden size n.")
@click.option("--cell", type=RegistryChoice(CELLS), default=_train_default("cell"), show_default=True,
              help="Recurrent cell: vanilla rnn, or PyTorch-convention lstm / gru.")
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
              help="Number of SGD updates.")
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
def train(out, force, quiet, **options):
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
    from .experiments.sweep import write_single_run
    from .training.loop import TrainConfig

    config = TrainConfig(**options)
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
def sweep(spec, out, jobs, scheduler, quick, force, quiet):
    """Run every combination of a TOML sweep file into one folder of tidy CSVs.

    \b
    A sweep file (see experiments/*.toml):
      kind = "run"                       # "run" (Jacobian analysis), "train" or "truncation"
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
    same command is run again; a changed sweep file, or a sweep begun by other
    gradlab code, is refused unless --force.

    \b
    Examples:
      gradlab sweep experiments/vanishing.toml --out results/vanishing --jobs 2
      gradlab sweep experiments/clipping.toml --out results/clipping-quick --quick
      gradlab sweep experiments/vanishing.toml --out results/v --scheduler tcp://127.0.0.1:8786
    """
    from .experiments.sweep import load_spec, run_sweep

    loaded = load_spec(spec, quick)
    outcome = run_sweep(loaded, out, jobs=jobs, scheduler=scheduler, force=force, quiet=quiet)
    done = f", {outcome.n_already_done} were already done" if outcome.n_already_done else ""
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


@cli.command()
@click.option("--activation", "-a", "activations", multiple=True, type=click.Choice(["tanh", "sigmoid", "relu"]),
              help="Activation (repeatable)  [default: tanh, sigmoid and relu].")
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
@click.option("--seeds", type=int, default=2, show_default=True, help="Networks per (activation, g): seeds 0 … S−1.")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False),
              help="Results folder; the same command again resumes it.")
@click.option("--jobs", "-j", type=int, default=1, show_default=True,
              help="Local worker processes (BLAS pinned to one thread in each).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Run on a Dask distributed scheduler, e.g. tcp://10.0.0.5:8786.")
@click.option("--force", is_flag=True, help="Discard the results OUT holds and start again.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def lyapunov(activations, gains, hidden, steps, burn, warmup, seeds, out, jobs, scheduler, force, quiet):
    """Largest Lyapunov exponent of random networks against mean-field theory, over the gain g.

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

    \b
    Example (about 15 s on 2 cores):
      gradlab lyapunov --out results/lyapunov --jobs 2
    """
    import pandas as pd

    from .experiments.chaos import DEFAULT_GAINS, scan_spec_text
    from .experiments.sweep import parse_spec, run_sweep

    check_positive_int(seeds, "seeds")
    activations = activations or tuple(DEFAULT_GAINS)
    grid = {a: parse_gains(gains or DEFAULT_GAINS[a]) for a in activations}
    text = scan_spec_text(grid, seeds, hidden=hidden, steps=steps, warmup=warmup, burn=burn)
    outcome = run_sweep(parse_spec(text, "gradlab lyapunov"), out, jobs=jobs, scheduler=scheduler, force=force,
                        quiet=quiet)
    for row in pd.read_csv(outcome.out / "transitions.csv").itertuples():
        click.echo(f"{row.activation}: transition at g = {row.g_critical:.6g}")
    done = f", {outcome.n_already_done} were already done" if outcome.n_already_done else ""
    click.echo(f"{outcome.n_runs} networks ({outcome.n_computed} computed{done}): wrote "
               f"{', '.join(f'{name}.csv' for name in outcome.tables)} and manifest.json in {out}")


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
        click.echo("Interrupted." if interrupted else "Aborted.", err=True)
        rv = 130 if interrupted else 1
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        rv = 130
    except Terminated:
        click.echo("Terminated.", err=True)
        rv = 128 + signal.SIGTERM
    sys.exit(rv if isinstance(rv, int) else 0)


# click ≥ 8.2 raises this for a bare `gradlab`; older versions print help themselves.
NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())
