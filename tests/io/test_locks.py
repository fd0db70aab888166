"""One writer per results folder, folders swapped in whole, the inputs never inside --out, write failures in one line.

Tests run as root, whom permission bits do not stop: a read-only place is
simulated by making ``os.open``/``os.mkdir`` (and the renames) under it fail
with EROFS or EACCES, and a full disk by making ``os.fsync`` fail with
ENOSPC (where a real full disk reports delayed allocation failures).
"""
import errno
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gradlab.io.results as results
from gradlab import GradlabError
from gradlab.cli import main
from gradlab.io.results import FolderRefused, results_folder, write_json

SMALL_RUN = ["run", "--hidden", "3", "--steps", "5", "--batch", "1"]
SPEC = 'kind = "run"\n[grid]\nradius = [0.5, 1.5]\n[fixed]\nhidden = 3\nsteps = 5\nbatch = 1\n'


def gradlab(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return e.value.code, out, err


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


HOLD = """
import sys, time
from gradlab.io.results import folder_lock
with folder_lock(sys.argv[1]):
    print("holding", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path):
    """A process holding the lock of tmp_path/out (as a running sweep would); killed at the end."""
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out), "sweep", "spec.toml"], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline() == "holding\n"
    yield out, proc
    proc.kill()
    proc.wait()


# ---------------------------------------------------------------- one writer per folder

@pytest.mark.parametrize("command", ["run", "train", "sweep", "lyapunov"])
def test_a_second_writer_is_refused_in_one_line_naming_the_holder(tmp_path, capsys, holder, command):
    out, proc = holder
    args = {"run": SMALL_RUN, "train": ["train", "--steps", "4", "--hidden", "2", "--updates", "1", "-q"],
            "sweep": ["sweep", tmp_path / "s.toml", "-q"],
            "lyapunov": ["lyapunov", "-a", "tanh", "--gains", "1", "--hidden", "2", "--steps", "3", "--warmup", "1"]}
    (tmp_path / "s.toml").write_text(SPEC)
    for force in ([], ["--force"]):
        code, stdout, stderr = gradlab(capsys, *args[command], "--out", out, *force)
        assert code == 2 and stdout == "" and len(stderr.splitlines()) == 1, stderr
        assert re.fullmatch(rf"Error: output folder {re.escape(repr(str(out)))} is being written by another gradlab "
                            rf"process \(PID {proc.pid}: python -c … {re.escape(str(out))} sweep spec\.toml, since "
                            r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d:\d\d\); wait for it to end, or choose another --out\n",
                            stderr), stderr
    assert not out.exists() and listing(tmp_path) == [".out.lock", "s.toml"]   # the holder's lock file only


def test_a_lock_left_by_a_killed_holder_does_not_block(tmp_path, capsys, holder):
    out, proc = holder
    proc.kill()                              # SIGKILL: no chance to unlock or to remove its lock file
    proc.wait()
    assert results.lock_path(out).exists()
    assert gradlab(capsys, *SMALL_RUN, "--out", out)[0] == 0
    assert listing(tmp_path) == ["out"]      # the next writer took the stale lock over and removed it


def test_the_lock_is_reentrant_in_a_thread_and_refuses_other_threads(tmp_path):
    out = tmp_path / "out"
    seen = []
    # a command, then the writer it calls
    with results.folder_lock(out), results.claim_folder(out), results_folder(out) as tmp:
        write_json(tmp / "manifest.json", {})

        def other():
            try:
                with results.folder_lock(out):
                    seen.append("entered")
            except FolderRefused as e:
                seen.append(e.reason)

        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert seen == ["busy"]
    assert listing(tmp_path) == ["out"]      # released: the lock file is gone
    with results.folder_lock(out):                   # and free again
        pass


def test_two_sweeps_on_one_folder_the_second_is_refused_and_the_first_keeps_every_row(tmp_path, capsys):
    """B started with --force while A ran used to leave A 'successful' with 114 of 150 rows."""
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.replace("[0.5, 1.5]", "[0.5, 0.75, 1.0, 1.25, 1.5, 1.75]")
                    .replace("hidden = 3", "hidden = 24").replace("steps = 5", "steps = 60"))
    out = tmp_path / "out"
    a = subprocess.Popen([sys.executable, "-m", "gradlab", "sweep", str(spec), "--out", str(out), "-q"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out / "parts").is_dir() and time.monotonic() < deadline and a.poll() is None:
        time.sleep(0.01)
    assert a.poll() is None, "sweep A ended before B could start"
    for force in (["--force"], []):
        code, _, stderr = gradlab(capsys, "sweep", spec, "--out", out, "-q", *force)
        assert code == 2 and f"is being written by another gradlab process (PID {a.pid}:" in stderr, stderr
    stdout, stderr = a.communicate(timeout=120)
    assert a.returncode == 0 and stderr == "", stderr
    assert pd.read_csv(out / "runs.csv")["run_id"].tolist() == [f"r{i:04d}" for i in range(6)]
    assert listing(tmp_path) == ["out", "s.toml"]


# ---------------------------------------------------------------- the files a command reads

def gradlab_folder(folder: Path) -> None:
    folder.mkdir()
    (folder / "manifest.json").write_text("{}")    # a folder gradlab wrote: --force would replace it


def save_weights(path: Path, n: int = 3, d: int = 2, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    np.savez(path, weight_ih_l0=rng.standard_normal((n, d)), weight_hh_l0=0.3 * rng.standard_normal((n, n)),
             nonlinearity="tanh")


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
def test_run_refuses_an_out_that_holds_its_weights_or_inputs(tmp_path, capsys, monkeypatch, force):
    """`gradlab run --weights own/w.npz --input-seq own/x.npy --out own --force` used to delete both."""
    own = tmp_path / "own"
    gradlab_folder(own)
    save_weights(own / "w.npz")
    np.save(own / "x.npy", np.zeros((4, 2)))
    before = {p.name: p.read_bytes() for p in own.iterdir()}
    monkeypatch.setattr("gradlab.experiments.runner.analyse", lambda *a, **k: pytest.fail("computed first"))
    code, stdout, stderr = gradlab(capsys, "run", "--weights", own / "w.npz", "--input-seq", own / "x.npy",
                                   "--out", own, *force)
    assert code == 2 and stdout == "" and len(stderr.splitlines()) == 1
    assert stderr == (f"Error: output folder {str(own)!r} holds {str(own / 'w.npz')!r}, which this command reads "
                      "(weights file); gradlab replaces its output folder whole, so choose another --out or move "
                      "the file out of it\n")
    assert {p.name: p.read_bytes() for p in own.iterdir()} == before


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
@pytest.mark.parametrize("inside", ["spec", "weights"])
def test_sweep_refuses_an_out_that_holds_its_sweep_file_or_weights(tmp_path, capsys, force, inside):
    own = tmp_path / "own"
    gradlab_folder(own)
    weights = (own if inside == "weights" else tmp_path) / "w.npz"
    save_weights(weights)
    spec = (own if inside == "spec" else tmp_path) / "s.toml"
    spec.write_text(f'kind = "run"\n[grid]\nseed = [0, 1]\n[fixed]\nweights = {json.dumps(str(weights))}\nsteps = 5\n')
    before = {p.name: p.read_bytes() for p in own.iterdir()}
    code, stdout, stderr = gradlab(capsys, "sweep", spec, "--out", own, "-q", *force)
    role = {"spec": "the sweep file", "weights": "weights file"}[inside]
    read = spec if inside == "spec" else weights
    assert code == 2 and len(stderr.splitlines()) == 1
    assert stderr.startswith(f"Error: output folder {str(own)!r} holds {str(read)!r}, which this command "
                             f"reads ({role})"), stderr
    assert {p.name: p.read_bytes() for p in own.iterdir()} == before


def test_a_library_write_refuses_an_out_holding_the_weights_it_read(tmp_path):
    from gradlab.experiments.config import RunConfig
    from gradlab.experiments.runner import analyse, write_run

    own = tmp_path / "own"
    gradlab_folder(own)
    save_weights(own / "w.npz")
    result = analyse(RunConfig(weights=str(own / "w.npz"), steps=4, batch=1))
    with pytest.raises(FolderRefused, match="which this command reads"):
        write_run(result, own, force=True)
    assert (own / "w.npz").is_file()


# ---------------------------------------------------------------- --force swaps whole folders

KILLED_IN_THE_SWAP = """
import os, signal, sys
import gradlab.io.results as results
from gradlab.cli import main
mode = sys.argv.pop(1)
real_exchange, real_replace = results.exchange, os.replace
if mode == "exchange":
    def exchange(a, b):
        assert real_exchange(a, b)
        os.kill(os.getpid(), signal.SIGKILL)     # the new folder is in, the old one not yet deleted
    results.exchange = exchange
else:                                            # a system without renameat2: the two-step fallback
    results.exchange = lambda a, b: False
    def replace(a, b):
        real_replace(a, b)
        if ".old-" in str(b):
            os.kill(os.getpid(), signal.SIGKILL)  # the old folder is renamed away, the new one not yet in
    os.replace = replace
main(sys.argv[1:])
"""


@pytest.mark.parametrize("mode", ["exchange", "fallback"])
def test_force_killed_mid_swap_leaves_a_complete_out_and_the_next_run_cleans_up(tmp_path, capsys, mode):
    out = tmp_path / "r"
    assert gradlab(capsys, *SMALL_RUN, "--seed", "1", "--out", out)[0] == 0
    old = json.loads((out / "manifest.json").read_text())
    proc = subprocess.run([sys.executable, "-c", KILLED_IN_THE_SWAP, mode, *SMALL_RUN, "--seed", "2", "--out",
                           str(out), "--force"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    leftovers = [p for p in listing(tmp_path) if p != "r"]
    assert leftovers and all(p.startswith(".r.") for p in leftovers), leftovers
    if mode == "exchange":                       # `r` named a complete result all along: the new one
        assert json.loads((out / "manifest.json").read_text())["config"]["seed"] == 2
    else:                                        # the one window of the fallback: repaired by the next claim
        assert not out.exists()
        with results.claim_folder(out):
            pass
        assert json.loads((out / "manifest.json").read_text()) == old
    assert gradlab(capsys, *SMALL_RUN, "--seed", "3", "--out", out, "--force")[0] == 0
    assert listing(tmp_path) == ["r"]
    assert json.loads((out / "manifest.json").read_text())["config"]["seed"] == 3


def test_only_leftovers_of_dead_writers_of_this_folder_are_removed(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    dead, alive = dead_pid(), os.getppid()
    stale = [f".r.{dead}-abcd_123.tmp", f".r.old-{dead}", ".r.k2x9q1ab.tmp"]     # the last: an older gradlab's
    kept = [f".r.{alive}-abcd_123.tmp", f".r.old-{alive}", f".r2.{dead}-abcd_123.tmp", f".r.x.{dead}-abcd_123.tmp",
            "r.csv", ".r.lock.tmp"]
    for name in stale + kept:
        (tmp_path / name).mkdir()
    (tmp_path / f".r.{dead}-abcd_123.tmp" / "half.csv").write_text("a,b\n1")
    assert sorted(p.name for p in results.clean_leftovers(out)) == sorted(stale)
    assert listing(tmp_path) == sorted(kept + ["r"])


def test_force_replacement_exchanges_the_folders_in_one_step(tmp_path, monkeypatch, capsys):
    """The new folder is renamed in over the old one with renameat2(RENAME_EXCHANGE): no moment without `out`."""
    if results._RENAMEAT2 is None:
        pytest.skip("renameat2 is not available here")
    out = tmp_path / "r"
    assert gradlab(capsys, *SMALL_RUN, "--out", out)[0] == 0
    calls = []
    real = results.exchange
    monkeypatch.setattr(results, "exchange", lambda a, b: calls.append(out.is_dir()) or real(a, b))
    monkeypatch.setattr(os, "replace", lambda a, b, real=os.replace: (
        pytest.fail(f"{b} renamed away") if Path(b).name.startswith(".r.old") else real(a, b)))
    assert gradlab(capsys, *SMALL_RUN, "--seed", "4", "--out", out, "--force")[0] == 0
    assert calls == [True] and listing(tmp_path) == ["r"]


# ---------------------------------------------------------------- full disk, read-only

def failing_fsync(monkeypatch, err: int, after: int = 0):
    """os.fsync fails with ``err`` from its call number ``after`` on (0: at once)."""
    calls = []
    real = os.fsync

    def fsync(fd):
        calls.append(fd)
        if len(calls) > after:
            raise OSError(err, os.strerror(err))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


def read_only(monkeypatch, folder: Path, err: int = errno.EROFS):
    """Everything under ``folder`` can be read, not written: creating, making folders, renaming fail with ``err``."""
    folder = str(folder)

    def under(path) -> bool:
        return os.path.abspath(os.fsdecode(path)).startswith(folder)

    def guard(real, write_flags=None):
        def wrapped(path, *args, **kwargs):
            flags = args[0] if args else kwargs.get("flags", 0)
            if under(path) and (write_flags is None or flags & write_flags):
                raise OSError(err, os.strerror(err), os.fsdecode(path))
            return real(path, *args, **kwargs)
        return wrapped

    monkeypatch.setattr(os, "open", guard(os.open, os.O_WRONLY | os.O_RDWR | os.O_CREAT))
    monkeypatch.setattr(os, "mkdir", guard(os.mkdir))
    monkeypatch.setattr(os, "rename", guard(os.rename))
    monkeypatch.setattr(os, "replace", guard(os.replace))


WRITERS = {
    "run": lambda tmp: SMALL_RUN,
    "train": lambda tmp: ["train", "--steps", "4", "--hidden", "2", "--updates", "1", "-q"],
    "sweep": lambda tmp: ["sweep", tmp / "s.toml", "-q"],
}


@pytest.mark.parametrize("err, reason, todo", [
    (errno.EROFS, "read-only file system", "choose another --out"),
    (errno.EACCES, "permission denied", "choose another --out or fix its permissions")])
@pytest.mark.parametrize("command", list(WRITERS))
def test_an_unwritable_place_is_one_line_before_anything_is_computed(tmp_path, capsys, monkeypatch, command, err,
                                                                      reason, todo):
    (tmp_path / "s.toml").write_text(SPEC)
    ro = tmp_path / "ro"
    ro.mkdir()
    monkeypatch.setattr("gradlab.experiments.sweep.run_tables", lambda *a, **k: pytest.fail("computed first"))
    monkeypatch.setattr("gradlab.experiments.runner.analyse", lambda *a, **k: pytest.fail("computed first"))
    read_only(monkeypatch, ro, err)
    for out in (ro / "out", ro / "new" / "deeper"):
        code, stdout, stderr = gradlab(capsys, *WRITERS[command](tmp_path), "--out", out)
        assert code == 2 and stdout == "", stderr
        assert stderr == f"Error: cannot write {str(out)!r}: {reason}; nothing half-written is left; {todo}\n"
    assert listing(ro) == []


@pytest.mark.parametrize("err, reason", [(errno.ENOSPC, "no space left on device"), (errno.EDQUOT, "disk quota exceeded")])
@pytest.mark.parametrize("command", list(WRITERS))
def test_a_full_disk_is_one_line_and_leaves_nothing_half_written(tmp_path, capsys, monkeypatch, command, err, reason):
    (tmp_path / "s.toml").write_text(SPEC)
    out = tmp_path / "out"
    failing_fsync(monkeypatch, err)
    code, stdout, stderr = gradlab(capsys, *WRITERS[command](tmp_path), "--out", out)
    assert code == 2 and stdout == "" and len(stderr.splitlines()) == 1, stderr
    first = {"run": "norms.csv", "train": "runs.csv", "sweep": "manifest.json"}[command]   # a sweep's: before any run
    assert stderr == (f"Error: cannot write {str(out / first)!r}: {reason}; nothing half-written is left; "
                      "free some space and run the same command again\n")
    assert listing(tmp_path) == ["s.toml"]                 # no folder, no temporary sibling, no lock
    monkeypatch.undo()
    assert gradlab(capsys, *WRITERS[command](tmp_path), "--out", out)[0] == 0


# ---------------------------------------------------------------- figures

def test_two_figures_saved_into_one_folder_at_once_use_their_own_temporary_names(tmp_path, monkeypatch):
    """Both used `.NAME.png.tmp`: the second writer's cleanup removed the first's file under it."""
    import matplotlib.figure
    import matplotlib.pyplot as plt

    from gradlab.plots.style import save_figure

    real_savefig, temps = matplotlib.figure.Figure.savefig, []

    def savefig(fig, fname, *args, **kwargs):
        temps.append(Path(fname).name)
        if len(temps) == 1:     # while the first writer is half-way, a second one saves the same figure
            other, ax = plt.subplots()
            ax.plot([0, 1], [1, 0])
            save_figure(other, tmp_path / "fig", "png")
        return real_savefig(fig, fname, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    assert save_figure(fig, tmp_path / "fig", "png") == [tmp_path / "fig.png"]
    assert len(set(temps)) == 2 and all(t.startswith(".fig.png.") and t.endswith(".tmp") for t in temps)
    assert (tmp_path / "fig.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert listing(tmp_path) == ["fig.png"]
    assert (tmp_path / "fig.png").stat().st_mode & 0o777 == results.FILE_MODE


def test_a_figure_that_cannot_be_written_is_one_line(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from gradlab.plots.style import save_figure

    fig, _ = plt.subplots()
    failing_fsync(monkeypatch, errno.ENOSPC)
    def half_written(path, **kwargs):
        with open(path, "wb") as f:
            f.write(b"half")
            os.fsync(f.fileno())

    monkeypatch.setattr(fig, "savefig", half_written)
    with pytest.raises(GradlabError, match=r"cannot write '.*fig\.png': no space left on device"):
        save_figure(fig, tmp_path / "fig", "png")
    assert listing(tmp_path) == []
