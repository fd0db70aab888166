"""What a sweep folder may hold: only complete parts of this sweep, from this code and these input files.

A part records every file it wrote (rows, SHA-256), the code fingerprint of
the process that computed it and the SHA-256 of the files it read; a part
that does not match is computed again, never merged. Also: what an
interrupted or failed sweep says, and a --scheduler that is not a Dask
scheduler.
"""
import errno
import json
import os
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gradlab.experiments.sweep as sweep_module
from gradlab import run_sweep
from gradlab.cli import main
from gradlab.io.files import file_sha256

SPEC = """
kind = "run"
[grid]
radius = [0.5, 1.5]
seed = [0, 1, 2]
[fixed]
hidden = 3
steps = 5
batch = 1
"""


def write_spec(folder: Path, text: str = SPEC) -> Path:
    path = folder / "s.toml"
    path.write_text(text)
    return path


def tables(folder: Path) -> dict:
    """Every CSV's bytes, runs.csv without its wall_time_s (the one column allowed to differ)."""
    out = {}
    for p in sorted(folder.glob("*.csv")):
        out[p.name] = (pd.read_csv(p).drop(columns="wall_time_s").to_csv() if p.name == "runs.csv"
                       else p.read_bytes())
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The tables of SPEC run once, uninterrupted."""
    tmp = tmp_path_factory.mktemp("reference")
    return tables(run_sweep(write_spec(tmp), tmp / "out").out)


def part(out: Path, run_id: str) -> Path:
    return next((out / "parts").glob(f"{run_id}-*"))


def gradlab(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    o, err = capsys.readouterr()
    return e.value.code, o, err


def stop_after(monkeypatch, n: int, exc=KeyboardInterrupt):
    """Make the sweep's run ``n + 1`` raise ``exc`` (Ctrl-C by default) instead of running."""
    real, calls = sweep_module._sweep_run, []

    def run(kind, r, *args):
        if len(calls) == n:
            raise exc
        calls.append(r.run_id)
        return real(kind, r, *args)

    monkeypatch.setattr(sweep_module, "_sweep_run", run)


# ---------------------------------------------------------------- complete parts only

def test_each_part_records_its_files_rows_hashes_code_and_inputs(tmp_path):
    from gradlab.io.results import code_fingerprint

    out = run_sweep(write_spec(tmp_path), tmp_path / "out").out
    meta = json.loads((part(out, "r0003") / "part.json").read_text())
    assert meta["run_id"] == "r0003" and meta["inputs"] == {}
    assert meta["code"] == {k: code_fingerprint()[k] for k in ("gradlab", "sha256")}
    assert set(meta["files"]) == {"runs.csv", "norms.csv", "spectrum.csv"}
    for name, record in meta["files"].items():
        path = part(out, "r0003") / name
        assert record == {"rows": len(pd.read_csv(path)), "sha256": file_sha256(path)}


def edit_a_number(text: str) -> str:
    """The CSV with the last digit of its last line changed (same rows, same columns: it still parses)."""
    i = max(i for i, c in enumerate(text) if c.isdigit())
    return text[:i] + str((int(text[i]) + 1) % 10) + text[i + 1:]


DAMAGES = {
    "cut in half": lambda p: (p / "norms.csv").write_bytes((p / "norms.csv").read_bytes()[:150]),
    "norms.csv missing": lambda p: (p / "norms.csv").unlink(),
    "empty folder": lambda p: [f.unlink() for f in p.iterdir()],
    "a number edited": lambda p: (p / "runs.csv").write_text(edit_a_number((p / "runs.csv").read_text())),
    "no part.json": lambda p: (p / "part.json").unlink(),
    "part.json garbled": lambda p: (p / "part.json").write_text("{"),
    "other code": lambda p: (p / "part.json").write_text(
        (p / "part.json").read_text().replace('"sha256": "', '"sha256": "0', 1)),
}


@pytest.mark.parametrize("finished", [True, False], ids=["finished", "interrupted"])
def test_damaged_parts_are_computed_again_never_merged(tmp_path, monkeypatch, reference, finished):
    """The merge used to take whatever a part folder held, and mark the sweep finished."""
    spec, out = write_spec(tmp_path), tmp_path / "out"
    if finished:
        run_sweep(spec, out)
    else:                              # killed mid-way: the damaged parts are among those kept
        stop_after(monkeypatch, 5)
        with pytest.raises(KeyboardInterrupt):
            run_sweep(spec, out)
        monkeypatch.undo()
    damages = list(DAMAGES.values())
    for run_id, damage in zip(["r0000", "r0001", "r0002", "r0003", "r0004"], damages):
        damage(part(out, run_id))
    outcome = run_sweep(spec, out)
    assert outcome.n_damaged == 5 and outcome.n_computed == 6 - outcome.n_already_done
    assert tables(out) == reference
    assert json.loads((out / "manifest.json").read_text())["sweep"]["finished"] is True


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_each_kind_of_damage_is_found(tmp_path, damage, reference):
    spec, out = write_spec(tmp_path), tmp_path / "out"
    run_sweep(spec, out)
    DAMAGES[damage](part(out, "r0002"))
    outcome = run_sweep(spec, out)
    assert (outcome.n_damaged, outcome.n_computed) == (1, 1)
    assert tables(out) == reference


def test_a_part_damaged_after_the_check_is_computed_again_before_the_merge(tmp_path, monkeypatch, reference):
    """The parts are checked again as they are merged (rows as recorded, same bytes)."""
    spec, out = write_spec(tmp_path), tmp_path / "out"
    real, committed = sweep_module._commit_part, []

    def commit_then_damage(folder, run, tables_, meta):
        real(folder, run, tables_, meta)
        committed.append(run.run_id)
        if committed.count("r0001") == 1 and run.run_id == "r0001":
            (folder / "norms.csv").write_bytes((folder / "norms.csv").read_bytes()[:100])

    monkeypatch.setattr(sweep_module, "_commit_part", commit_then_damage)
    outcome = run_sweep(spec, out)
    assert committed.count("r0001") == 2 and outcome.n_damaged == 1
    assert tables(out) == reference


def test_a_part_computed_by_other_code_is_refused(tmp_path, monkeypatch, capsys):
    """A Dask worker with other gradlab code: its rows are never combined with the sweep's (issue 12.7)."""
    spec, out = write_spec(tmp_path), tmp_path / "out"
    real = sweep_module._sweep_run

    def other_worker(kind, run, *args):
        tables_, meta = real(kind, run, *args)
        if run.run_id == "r0002":
            meta = {**meta, "code": {"gradlab": "0.0.9", "sha256": "ab" * 32}}
        return tables_, meta

    monkeypatch.setattr(sweep_module, "_sweep_run", other_worker)
    code, _, err = gradlab(capsys, "sweep", spec, "--out", out, "-q")
    here = sweep_module.code_fingerprint()["sha256"][:12]
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"Error: run r0002 was computed by gradlab 0.0.9 (code abababababab), but the sweep in "
                          f"{str(out)!r} by gradlab "), err
    assert f"(code {here}): parts of different code are never combined" in err
    assert sorted(p.name[:5] for p in (out / "parts").iterdir()) == ["r0000", "r0001"]


# ---------------------------------------------------------------- the files a sweep reads

# A weights file sets the network (and records its nonlinearity): the grid sweeps the seed of inputs and targets.
WEIGHTS_SPEC = """
kind = "run"
[grid]
seed = [0, 1, 2, 3, 4, 5]
[fixed]
steps = 5
batch = 1
"""


def weights(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    np.savez(path, weight_ih_l0=rng.standard_normal((3, 2)), weight_hh_l0=0.4 * rng.standard_normal((3, 3)),
             nonlinearity="tanh")
    return path


@pytest.mark.parametrize("changed", ["weights", "input"])
def test_a_resume_refuses_weights_or_inputs_that_changed(tmp_path, monkeypatch, capsys, changed):
    """Resumed after the weights file was replaced, a sweep used to mix runs of the two networks."""
    w = weights(tmp_path / "w.npz", 0)
    x = tmp_path / "x.npy"
    np.save(x, np.ones((5, 2)))
    spec = write_spec(tmp_path, WEIGHTS_SPEC.replace("steps = 5\nbatch = 1\n", f'weights = "{w}"\ninput_seq = "{x}"\n'))
    out = tmp_path / "out"
    stop_after(monkeypatch, 2)
    assert gradlab(capsys, "sweep", spec, "--out", out, "-q")[0] == 130
    monkeypatch.undo()
    recorded = json.loads((out / "manifest.json").read_text())["sweep"]["inputs"]
    assert recorded == {str(w): file_sha256(w), str(x): file_sha256(x)}
    assert json.loads((part(out, "r0001") / "part.json").read_text())["inputs"] == recorded
    path = w if changed == "weights" else x
    old = file_sha256(path)
    weights(w, 1) if changed == "weights" else np.save(x, np.zeros((5, 2)))
    new = file_sha256(path)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    code, _, err = gradlab(capsys, "sweep", spec, "--out", out, "-q")
    assert code == 2 and err == (
        f"Error: {changed} file {str(path)!r} changed since the sweep in {str(out)!r} began (sha256 {old[:16]} then, "
        f"{new[:16]} now): resuming would mix runs computed from the two; restore it, or pass --force to start "
        "again with this one\n")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    code, stdout, _ = gradlab(capsys, "sweep", spec, "--out", out, "-q", "--force")
    assert code == 0 and stdout.startswith("6 runs (6 computed)")
    assert json.loads((out / "manifest.json").read_text())["sweep"]["inputs"][str(path)] == new


def test_a_weights_file_that_changes_while_the_sweep_runs_is_refused(tmp_path, monkeypatch, capsys):
    w = weights(tmp_path / "w.npz", 0)
    spec = write_spec(tmp_path, WEIGHTS_SPEC.replace("steps = 5\n", f'steps = 5\nweights = "{w}"\n'))
    real, calls = sweep_module.run_tables, []

    def run_then_replace(kind, run, quiet=True):
        calls.append(run.run_id)
        if len(calls) == 3:
            weights(w, 7)          # replaced by someone while the sweep runs
        return real(kind, run, quiet)

    monkeypatch.setattr(sweep_module, "run_tables", run_then_replace)
    code, _, err = gradlab(capsys, "sweep", spec, "--out", tmp_path / "out", "-q")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"Error: run r0002: weights file {str(w)!r} changed while the run read it"), err
    assert len(list((tmp_path / "out" / "parts").iterdir())) == 2


# ---------------------------------------------------------------- interrupted, disk full

def test_ctrl_c_says_how_many_runs_are_kept_and_how_to_resume(tmp_path, monkeypatch, capsys, reference):
    spec, out = write_spec(tmp_path), tmp_path / "out"
    stop_after(monkeypatch, 4)
    code, stdout, stderr = gradlab(capsys, "sweep", spec, "--out", out, "-q")
    assert code == 130 and stdout == ""
    assert stderr.strip() == f"Interrupted: 4 of 6 runs are kept in {str(out)!r}; run the same command again to resume"
    monkeypatch.undo()
    code, stdout, _ = gradlab(capsys, "sweep", spec, "--out", out, "-q")
    assert code == 0 and stdout.startswith("6 runs (2 computed, 4 were already done)")
    assert tables(out) == reference


def test_a_disk_that_fills_up_mid_sweep_is_one_line_and_the_sweep_resumes(tmp_path, monkeypatch, capsys, reference):
    spec, out = write_spec(tmp_path), tmp_path / "out"
    real, calls = os.fsync, []

    def fsync(fd):        # the manifest, then 4 files per part (3 tables and part.json): full in run r0002
        calls.append(fd)
        if len(calls) > 1 + 4 * 2 + 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    code, stdout, stderr = gradlab(capsys, "sweep", spec, "--out", out, "-q")
    assert code == 2 and stdout == ""
    assert re.fullmatch(rf"Error: cannot write '{re.escape(str(out))}/parts/r0002-\w+/norms\.csv': no space left on "
                        rf"device; 2 of 6 runs are kept in '{re.escape(str(out))}': free some space and run the same "
                        r"command again to resume\n", stderr), stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "s.toml"]
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "parts"]     # no half-merged tables
    assert sorted(p.name[:5] for p in (out / "parts").iterdir()) == ["r0000", "r0001"]
    monkeypatch.undo()
    assert gradlab(capsys, "sweep", spec, "--out", out, "-q")[0] == 0
    assert tables(out) == reference


def test_a_disk_that_fills_up_while_merging_leaves_no_tables(tmp_path, monkeypatch, capsys, reference):
    spec, out = write_spec(tmp_path), tmp_path / "out"
    real_write, written = sweep_module._write_table, []

    def write_table(path, table):
        if written:
            raise sweep_module.WriteFailed(path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
        written.append(path)
        return real_write(path, table)

    monkeypatch.setattr(sweep_module, "_write_table", write_table)
    code, _, stderr = gradlab(capsys, "sweep", spec, "--out", out, "-q")
    assert code == 2 and "6 of 6 runs are kept" in stderr and written
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "parts"]
    assert json.loads((out / "manifest.json").read_text())["sweep"]["finished"] is False
    monkeypatch.undo()
    code, stdout, _ = gradlab(capsys, "sweep", spec, "--out", out, "-q")
    assert code == 0 and stdout.startswith("6 runs (0 computed, 6 were already done)")
    assert tables(out) == reference


def test_plot_of_a_sweep_still_running_says_it_is_unfinished(tmp_path, monkeypatch, capsys):
    """It said `no norms.csv in … or its sub-folders` although the parts were there (issue 16.5)."""
    spec, out = write_spec(tmp_path), tmp_path / "out"
    stop_after(monkeypatch, 4)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, out)
    code, _, err = gradlab(capsys, "plot", "norms-vs-lag", out, "--out", tmp_path / "fig")
    assert code == 2 and err == (f"Error: figure 'norms-vs-lag': {str(out)!r} holds an unfinished sweep (4 of 6 runs done, so no norms.csv "
                                 "yet): run the same `gradlab sweep` command again to finish it (or wait for the one "
                                 "running), then plot\n")


# ---------------------------------------------------------------- --scheduler that is not a Dask scheduler

@pytest.fixture
def short_timeout(monkeypatch):
    monkeypatch.setattr(sweep_module, "SCHEDULER_TIMEOUT", 1.0)


def serve(handler):
    """A TCP server on localhost running ``handler(conn)`` per connection; returns its address."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    conns = []

    def loop():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conns.append(conn)
            handler(conn)

    threading.Thread(target=loop, daemon=True).start()
    return f"tcp://127.0.0.1:{server.getsockname()[1]}", server


@pytest.mark.parametrize("kind", ["silent", "http", "hangs up", "garbage"])
def test_an_address_that_is_not_a_dask_scheduler_is_one_line_within_the_timeout(tmp_path, capsys, dask_distributed,
                                                                                 short_timeout, kind):
    """A silent port hung past the timeout; an HTTP server made the client allocate 3 EiB."""
    if kind == "http":
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass
        httpd = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        address, closer = f"tcp://127.0.0.1:{httpd.server_address[1]}", httpd.server_close
    else:
        reply = {"silent": lambda c: None, "hangs up": lambda c: c.close(),
                 "garbage": lambda c: c.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")}[kind]
        address, server = serve(reply)
        closer = server.close
    try:
        start = time.monotonic()
        code, _, err = gradlab(capsys, "sweep", write_spec(tmp_path), "--out", tmp_path / "out", "-q",
                               "--scheduler", address)
        elapsed = time.monotonic() - start
    finally:
        closer()
    assert code == 2 and err.count("\n") == 1 and elapsed < 5, (elapsed, err)
    expected = {"silent": f"no Dask scheduler answered at '{address}' within 1 s",
                "http": f"no Dask scheduler answered at '{address}' within 1 s",
                "hangs up": f"'{address}' is not a Dask scheduler: it closed the connection without a word",
                "garbage": f"'{address}' is not a Dask scheduler: it greets with b'HTTP/1.1'…, not the Dask protocol"}
    assert err.startswith(f"Error: {expected[kind]}"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


def test_a_real_scheduler_passes_the_probe(dask_distributed, short_timeout):
    with dask_distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                       dashboard_address=None) as cluster:
        sweep_module._probe_scheduler(cluster.scheduler_address, 1.0)
