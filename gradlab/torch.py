"""A researcher's own PyTorch model, in gradlab: a live module in, and a monitor for their training loop.

PyTorch stays an optional extra (``pip install "gradlab[torch]"``); nothing
here imports it before it is used.

* :func:`from_torch` turns a live ``nn.RNN`` (tanh, relu), ``nn.LSTM`` or
  ``nn.GRU`` (any ``num_layers``, ``batch_first``, ``bias=False``), or an
  ``nn.RNNCell``/``nn.LSTMCell``/``nn.GRUCell``, plus an optional read-out
  ``nn.Linear``, into a :class:`~gradlab.experiments.runner.Network`, which
  :func:`gradlab.analyse` analyses on the user's own batch like ``gradlab run``.
* :func:`read_state_dict` reads a ``torch.save(model.state_dict(), path)``
  file with ``weights_only=True`` (never unpickling arbitrary objects).
* :class:`Monitor` is called once per update from the user's own loop and
  records what ``gradlab train`` records into the same ``training.csv`` /
  ``jacobians.csv`` schema, so ``gradlab inspect`` and the figures read it.

Example::

    model = nn.LSTM(2, 64, num_layers=2, batch_first=True); fc = nn.Linear(64, 1)
    monitor = gradlab.torch.Monitor(model, probe=x_probe, out="runs/mine", every=50, readout=fc)
    for step in range(updates):
        loss = ...; opt.zero_grad(); loss.backward()
        monitor.step(loss)           # after backward(), before or after opt.step()
        opt.step()
    monitor.close()
"""
from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from .analysis.jacobian_norms import jacobian_norms
from .analysis.lyapunov import largest_lyapunov
from .analysis.spectrum import block_spectra, step_bound
from .analysis.tables import norms_by_lag, norms_table
from .cells import make_cell
from .cells.gated import GATES
from .errors import GradlabError, PathLike, check_positive_int
from .experiments.runner import Network
from .io.files import read_torch_state_dict
from .io.results import CSV_FLOAT_FORMAT, check_new_folder, code_fingerprint, manifest, write_json

if TYPE_CHECKING:
    import numpy.typing as npt
    import torch

INSTALL = 'pip install "gradlab[torch]" (or pip install torch)'


def _torch():
    try:
        import torch
    except ImportError:
        raise GradlabError(f"this needs PyTorch: {INSTALL}") from None
    return torch


def _arrays(state: dict) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().double().numpy().copy() for k, v in state.items()}


CELL_MODULES = {"RNNCell": "rnn", "LSTMCell": "lstm", "GRUCell": "gru"}
SEQUENCE_MODULES = {"RNN": "rnn", "LSTM": "lstm", "GRU": "gru"}


def from_torch(module: torch.nn.RNNBase | torch.nn.RNNCellBase, readout: torch.nn.Linear | None = None) -> Network:
    """The gradlab network of a live PyTorch recurrent module (and optional ``nn.Linear`` read-out).

    Parameters
    ----------
    module : torch.nn.RNN, LSTM, GRU, RNNCell, LSTMCell or GRUCell
        Any ``num_layers``, ``batch_first``, with or without biases;
        ``bidirectional=True`` and ``proj_size > 0`` are refused (one line
        naming what is not supported).
    readout : torch.nn.Linear, optional
        o_t = W_hy h_t + b_y on the top layer's h; without one a random
        read-out (N(0, 1/n), m = d) is drawn and the network says so.

    Returns
    -------
    Network
        ``cell`` (a stacked cell for ``num_layers > 1``), ``params`` (float64
        copies: later training does not change them), ``batch_first``.

    Examples
    --------
    >>> import torch, gradlab as gl                      # doctest: +SKIP
    >>> net = gl.from_torch(torch.nn.GRU(3, 16, num_layers=2))
    >>> gl.analyse(net, torch.randn(50, 4, 3)).summary["lyapunov"]
    """
    kind = type(module).__name__
    if kind in CELL_MODULES:
        name, layers, batch_first = CELL_MODULES[kind], 1, True
        arrays = {f"{k}_l0": v for k, v in _arrays(module.state_dict()).items()}
    elif kind in SEQUENCE_MODULES:
        name, layers, batch_first = SEQUENCE_MODULES[kind], module.num_layers, module.batch_first
        if module.bidirectional:
            raise GradlabError(f"{kind}(bidirectional=True) is not supported: gradlab analyses one direction "
                               "(the Jacobians of a backward pass run over time the other way)")
        if getattr(module, "proj_size", 0):
            raise GradlabError(f"{kind}(proj_size={module.proj_size}) is not supported: the projected state "
                               "h = W_hr (o ⊙ tanh C) is not among gradlab's LSTM cells")
        arrays = _arrays(module.state_dict())
    else:
        raise GradlabError(f"unsupported module {kind}: give an nn.RNN, nn.LSTM, nn.GRU or their *Cell modules "
                           "(the recurrent module itself, not a model wrapping it)")
    activation = getattr(module, "nonlinearity", "tanh")
    cell = make_cell(name, activation, layers)
    n = module.hidden_size
    if readout is not None:
        if type(readout).__name__ != "Linear":
            raise GradlabError(f"readout must be an nn.Linear, got {type(readout).__name__}")
        w = _arrays(readout.state_dict())
        arrays["fc.weight"] = w["weight"]
        arrays["fc.bias"] = w.get("bias", np.zeros(w["weight"].shape[0]))
        if arrays["fc.weight"].shape[1] != n:
            raise GradlabError(f"readout takes inputs of size {arrays['fc.weight'].shape[1]}, but the module's "
                               f"hidden size is {n}")
    for layer in range(layers):                        # bias=False: PyTorch has no bias arrays at all
        for key in (f"bias_ih_l{layer}", f"bias_hh_l{layer}"):
            if key not in arrays:
                rows = arrays[f"weight_hh_l{layer}"].shape[0]
                arrays[key] = np.zeros(rows)
    params = cell.from_state_dict(arrays, f"{kind} module", np.random.default_rng(0), None)
    return Network(cell, params, batch_first, repr(module).replace("\n", " "),
                   "given" if readout is not None else "random")


def read_state_dict(path: PathLike) -> dict[str, np.ndarray]:
    """The arrays of a ``torch.save(model.state_dict(), path)`` file (:func:`gradlab.io.files.read_torch_state_dict`)."""
    return read_torch_state_dict(path)


# ---------------------------------------------------------------- the monitor

TRAINING_COLUMNS = ["step", "loss", "grad_norm", "clipped_grad_norm", "clipped", "skipped", "rho", "sigma_max"]


class Monitor:
    """Record a PyTorch training run, one call per update, into a gradlab results folder.

    Parameters
    ----------
    model : the recurrent module (nn.RNN / nn.LSTM / nn.GRU, any ``num_layers``)
    probe : tensor or array
        A fixed batch, laid out as the module takes it, on which the curve
        ‖∂s_T/∂s_k‖ and λ₁ are measured every ``every`` updates.
    out : path
        The results folder (refused if it exists, unless ``force``; gradlab
        replaces only folders it wrote).
    every : int
        Updates between two measurements of the curve (and writes to disk).
    readout : nn.Linear, optional
        Its parameters count in the gradient norm.
    spectra_every : int
        Updates between two measurements of ρ and σ_max of every n × n
        recurrent block (1: every update, as ``gradlab train``; each costs an
        eigen- and a singular-value decomposition per block).
    force : bool

    Notes
    -----
    Each update appends one row of ``training.csv`` (``step, loss,
    grad_norm, clipped_grad_norm, clipped, skipped, rho, sigma_max`` and,
    per block, ``rho_<block>``, ``sigma_max_<block>``); the user clips and
    steps, so ``clipped_grad_norm`` = ``grad_norm`` and ``clipped``,
    ``skipped`` are False (a non-finite gradient is recorded as it is).
    At update 0 and every ``every`` updates ``jacobians.csv`` gains the per-lag curve of the
    current weights on the probe (with ``lyapunov``, λ₁), rows are appended
    to the CSVs in whole lines and ``manifest.json`` is rewritten
    atomically; :meth:`close` writes ``runs.csv`` and marks the run finished.

    The measurements run in a second (spawned) process while training goes
    on, so rows and curves reach the files one checkpoint late; starting that
    process costs a second or two once. Use the monitor as a context manager
    (or call :meth:`close`) to have everything written.
    """

    def __init__(self, model: torch.nn.RNNBase | torch.nn.RNNCellBase, probe: torch.Tensor | npt.ArrayLike,
                 out: PathLike, every: int = 50, readout: torch.nn.Linear | None = None, spectra_every: int = 1,
                 force: bool = False) -> None:
        check_positive_int(every, "every")
        check_positive_int(spectra_every, "spectra_every")
        self.model, self.readout, self.every, self.spectra_every = model, readout, every, spectra_every
        self.network = from_torch(model, readout)             # checks the module type
        self.probe = probe.detach().cpu().numpy() if hasattr(probe, "detach") else np.asarray(probe)
        from .experiments.runner import network_model

        network_model(self.network, self.probe)               # checks the probe's shape, one line
        self.out = check_new_folder(out, force)
        if self.out.exists():
            import shutil

            shutil.rmtree(self.out)
        self.out.mkdir(parents=True)
        self.steps = 0
        self.rows: list[dict] = []                            # rows whose spectra are not measured yet
        self.snapshots: list = []                             # the recurrent blocks of each such row (or None)
        self._last_spectra: dict = {}                         # spectra of the last measured snapshot
        self.started = time.time()
        self.params = [p for m in (model, readout) if m is not None for p in m.parameters()]
        self.code = code_fingerprint()                        # the code as training starts (hashing is not free)
        # The measurements run in a process of their own (spawned: no forked copy of torch's threads), so
        # neither their BLAS calls nor their Python loops (which hold a thread's GIL) slow the training loop.
        self._pool = ProcessPoolExecutor(1, mp_context=get_context("spawn"))
        self._measuring = None
        self._write_manifest(finished=False)
        self.checkpoint()          # update 0: the curve of the weights training starts from

    # -- per update
    def step(self, loss: torch.Tensor | float) -> None:
        """Record one update: call after ``loss.backward()`` (the gradients are read from ``.grad``)."""
        torch = _torch()
        self.steps += 1
        with torch.no_grad():
            sq = sum(float((p.grad.double() ** 2).sum()) for p in self.params if p.grad is not None)
        norm = math.sqrt(sq)
        self.rows.append({"step": self.steps, "loss": float(loss.detach() if hasattr(loss, "detach") else loss),
                          "grad_norm": norm, "clipped_grad_norm": norm, "clipped": False, "skipped": False})
        # a copy of the recurrent blocks now; their ρ and σ_max are computed with the next measurement
        due = (self.steps - 1) % self.spectra_every == 0
        self.snapshots.append(self._recurrent_blocks() if due else None)
        if self.steps % self.every == 0:
            self.checkpoint()

    def _recurrent_blocks(self) -> dict[str, np.ndarray]:
        state = {k: v for k, v in self.model.state_dict().items() if k.startswith("weight_hh")}
        cell = self.network.cell
        gates = GATES.get(cell.name)
        blocks = {}
        for key, W in state.items():
            W = W.detach().cpu().double().numpy().copy()
            layer = key.removeprefix("weight_hh")
            n = W.shape[1]
            if gates is None:
                blocks[f"W_hh{layer}"] = W
            else:
                blocks.update({f"W_h{q}{layer}": W[j * n:(j + 1) * n] for j, q in enumerate(gates)})
        return blocks

    # -- every `every` updates
    def checkpoint(self) -> None:
        """Hand the weights as they are now, and the pending rows' recurrent blocks, to the measuring process.

        The previous measurement's results (its curve, its rows with their ρ
        and σ_max) are written first: rows reach ``training.csv`` one
        checkpoint late, the folder is complete after :meth:`close`.
        """
        network = from_torch(self.model, self.readout)      # a float64 copy: training may go on
        self._collect()
        rows, snapshots, self.rows, self.snapshots = self.rows, self.snapshots, [], []
        with _main_module_hidden():                         # the first submit starts the process
            future = self._pool.submit(measure_checkpoint, network, self.probe, self.steps, snapshots)
        self._measuring = future, rows

    def _collect(self) -> None:
        """Wait for the measurement in flight and write what it measured; its error, if any, is raised here."""
        if self._measuring is None:
            return
        (future, rows), self._measuring = self._measuring, None
        curve, spectra = future.result()
        for row, s in zip(rows, spectra):             # a row without a snapshot repeats the last spectra
            self._last_spectra = s if s is not None else self._last_spectra
            row.update(self._last_spectra)
        if rows:
            self._append("training.csv", pd.DataFrame(rows))
        self._append("jacobians.csv", curve)
        self._write_manifest(finished=False)

    def _append(self, name: str, table: pd.DataFrame) -> None:
        """Append whole lines (one write call), with the header when the file is new."""
        table = table.copy()
        table.insert(0, "run_id", "r0000")
        path = self.out / name
        header = not path.exists()
        if not header:
            columns = pd.read_csv(path, nrows=0).columns.tolist()
            table = table.reindex(columns=columns)
        text = table.to_csv(index=False, header=header, float_format=CSV_FLOAT_FORMAT)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        try:
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def _write_manifest(self, finished: bool) -> None:
        n = self.network
        config = {"source": n.source, "cell": n.cell.name, "layers": getattr(n.cell, "L", 1),
                  "hidden": n.params.n, "inputs": n.params.d, "every": self.every,
                  "spectra_every": self.spectra_every, "probe_shape": list(self.probe.shape)}
        write_json(self.out / "manifest.json", manifest("train", config, code=self.code,
                                                        monitor={"updates": self.steps, "finished": finished}))

    def close(self) -> Path:
        """Measure once more, write everything still pending and ``runs.csv``; the folder is then complete."""
        if self.steps % self.every or self.rows:
            self.checkpoint()
        self._collect()
        self._pool.shutdown()
        training = pd.read_csv(self.out / "training.csv") if (self.out / "training.csv").exists() else pd.DataFrame()
        jac = pd.read_csv(self.out / "jacobians.csv")
        summary = {"run_id": "r0000", "param_hash": "monitor", "cell": self.network.cell.name,
                   "updates_done": self.steps,
                   "final_loss": float(training["loss"].iloc[-1]) if len(training) else math.nan,
                   "lyapunov": float(jac["lyapunov"].iloc[-1]),
                   "rho": float(training["rho"].iloc[0]) if len(training) else math.nan,
                   "final_rho": float(training["rho"].iloc[-1]) if len(training) else math.nan,
                   "wall_time_s": time.time() - self.started}
        from .io.results import write_csv

        write_csv(self.out / "runs.csv", pd.DataFrame([summary]))
        self._write_manifest(finished=True)
        return self.out

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        if exc[0] is None:
            self.close()
        else:                       # the loop failed: keep what was written, stop the measuring process
            self._pool.shutdown(wait=True, cancel_futures=True)
        return False


@contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Start processes without the parent's ``__main__``.

    A spawned child runs the parent's main script again (as ``__mp_main__``,
    to find functions pickled from it); the measuring process needs only
    gradlab, and a user's training script without an ``if __name__ ==
    "__main__":`` guard would otherwise train a second time in it, or fail.
    """
    main = sys.modules["__main__"]
    spec, had_file, file = getattr(main, "__spec__", None), hasattr(main, "__file__"), getattr(main, "__file__", None)
    main.__spec__ = None
    if had_file:
        del main.__file__
    try:
        yield
    finally:
        main.__spec__ = spec
        if had_file:
            main.__file__ = file


def measure_checkpoint(network, probe: np.ndarray, step: int, snapshots: list) -> tuple[pd.DataFrame, list]:
    """What the monitor's measuring process computes at a checkpoint: the curve ‖∂s_T/∂s_k‖ and λ₁ of
    ``network`` on the probe, and the block spectra of each snapshot (None stays None)."""
    from threadpoolctl import threadpool_limits

    from .experiments.runner import network_model

    with threadpool_limits(limits=1, user_api="blas"):
        model = network_model(network, probe)
        trace = network.cell.forward(network.params, model.x)
        if hasattr(network.cell, "step_matrix"):      # the a-priori bound (σ_max γ_h)^(T−k), cheap
            bound = step_bound(network.cell, network.params, trace)
            factor, rate = bound.factor, bound.rate
        else:                                        # max_t ‖J_t‖ would cost an SVD per step and sequence
            factor, rate = math.nan, math.nan
        curve = norms_by_lag(norms_table(jacobian_norms(trace, "last", workers=1), factor, rate))
        curve.insert(0, "step", step)
        curve["lyapunov"] = float(np.mean(largest_lyapunov(trace)))
        spectra = [None if s is None else block_spectra(s) for s in snapshots]
    return curve, spectra


__all__ = ["Monitor", "from_torch", "read_state_dict"]
