"""The ``gradlab`` command line: parse options, call library functions.

No computation lives here. Every command has a library function behind it
(``gradlab run`` → :func:`gradlab.analyse` + :func:`gradlab.write_run`).
"""
from __future__ import annotations

import dataclasses
import functools
import sys

import click
from threadpoolctl import threadpool_limits

from . import __version__
from .activations import ACTIVATIONS
from .config import CELLS, RunConfig
from .errors import GradlabError
from .init import INITS, SCALE_BY
from .losses import LOSS_STEPS, LOSSES

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
                     help="Spectral radius ρ(W_hh) the init is rescaled to exactly."),
        click.option("--scale-by", type=click.Choice(SCALE_BY), default="radius", show_default=True,
                     help="Rescale W_hh so that ρ or σ_max equals --radius."),
        click.option("--input-scale", type=float, default=1.0, show_default=True,
                     help="Scale of the input drive W_xh x_t."),
        click.option("--tokens", is_flag=True, help="Inputs are token ids (one-hot), as in a language model."),
        click.option("--loss", type=click.Choice(LOSSES), default=None,
                     help="Output loss  [default: xent with --tokens, else mse]."),
        click.option("--loss-steps", type=click.Choice(LOSS_STEPS), default="all", show_default=True,
                     help="Loss on every step (E = Σ_t E_t) or on the last only."),
        click.option("--cell", type=click.Choice(CELLS), default="rnn", show_default=True, help="Recurrent cell."),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="Seed for weights, inputs and targets."),
        click.option("--weights", type=click.Path(dir_okay=False), default=None,
                     help="Analyse these weights: .npz with PyTorch nn.RNN names (weight_hh_l0, ...)."),
        click.option("--input-seq", type=click.Path(dir_okay=False), default=None,
                     help="Use these inputs: .npy, (T, d) or (B, T, d) floats, or (T,) / (B, T) token ids."),
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
      gradlab run --radius 1.5 --out runs/r15     Jacobian norms, spectrum, ∂L/∂h_k
      gradlab check --truncate 4                  BPTT vs finite differences
    """


@cli.command()
@model_options
@click.option("--pairs", default="last", show_default=True,
              help="Which ‖∂h_t/∂h_k‖: 'last' (t = T, every k), 'all' (every k < t), 'stride:K' (t every K steps).")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Results folder to create.")
@click.option("--force", is_flag=True, help="Replace an existing results folder.")
def run(out, force, pairs, **options):
    """Record a forward pass and measure ‖∂h_t/∂h_k‖, the spectrum of W_hh and ‖∂L/∂h_k‖.

    \b
    Writes into OUT:
      norms.csv      seq, t, k, lag, log10_norm, log10_bound, log10_rate
      spectrum.csv   kind, index, real, imag, abs   (eigenvalues, singular values)
      grads.csv      seq, k, log10_grad_norm
      manifest.json  the full config, seed, measured ρ, σ_max, growth rate, versions

    \b
    The bound is (σ_max γ_h)^(t−k); ρ^(t−k) is the asymptotic rate, not a bound.

    \b
    Example:
      gradlab run --hidden 64 --steps 200 --radius 1.5 --activation relu --out runs/relu15
    """
    from .results import check_new_folder
    from .runner import analyse, write_run

    config = config_from(options, pairs=pairs)
    check_new_folder(out, force)  # fail before computing
    result = analyse(config)
    write_run(result, out, force)
    s = result.summary
    click.echo(f"ρ = {s['rho']:.4g}   σ_max = {s['sigma_max']:.4g}   γ_h = {s['gamma_h']:g}   "
               f"growth rate = {s['growth_rate']:.4g} nats/step (bound {s['bound_rate']:.4g}, ρ-rate {s['asymptotic_rate']:.4g})")
    click.echo(f"wrote {out}/norms.csv, spectrum.csv, grads.csv, manifest.json")


@cli.command()
@model_options
@click.option("--truncate", "-k", type=click.IntRange(min=0), default=None,
              help="Also compare truncated BPTT (bptt_truncate = K) with the exact gradient.")
@click.option("--tol", type=float, default=1e-6, show_default=True, help="Largest relative error that passes.")
def check(truncate, tol, **options):
    """Check BPTT gradients of every parameter against central finite differences.

    Prints the relative error max|g − fd| / max|g| per parameter and exits 0
    when all are below --tol, 1 otherwise. Costs two forward passes per
    parameter entry, so keep the model small.

    \b
    With --truncate K it also shows how far the tutorial's truncated BPTT is
    from the true gradient, which is why its gradient check fails whenever
    T > K + 1:
      gradlab check --tokens --inputs 8 --hidden 2 --steps 7 --batch 1 --truncate 4
    """
    from .gradcheck import gradient_check
    from .runner import build_model

    config = config_from(options)
    model = build_model(config)
    c = model.config
    table = gradient_check(model.params, model.x, model.y, c.activation, c.loss_name, c.loss_steps, truncate)
    click.echo(f"gradient check: n={c.hidden} d={c.inputs} T={c.steps} B={c.batch} "
               f"{c.activation} {c.init} ρ={c.radius:g} loss={c.loss_name}/{c.loss_steps}")
    click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.2e}"))
    worst = table["bptt_vs_fd"].max()
    ok = worst < tol
    click.echo(f"{'PASS' if ok else 'FAIL'}: largest BPTT vs finite-difference error {worst:.2e} "
               f"{'<' if ok else '≥'} {tol:g}")
    if truncate is not None:
        click.echo(f"truncated BPTT (K={truncate}) is {table['truncated_vs_full'].max():.2e} away from the "
                   f"true gradient (relative); a gradient check of it reports {table['truncated_vs_fd'].max():.2e}")
    return 0 if ok else 1


def main(argv=None):
    """Entry point: one-line errors, exit code 2 for bad input, no tracebacks."""
    try:
        with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
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
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        rv = 1
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        rv = 130
    sys.exit(rv if isinstance(rv, int) else 0)


# click ≥ 8.2 raises this for a bare `gradlab`; older versions print help themselves.
NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())
