"""Sweeps: same CSVs whatever the workers or backend, resumable after SIGKILL, strict sweep files."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from gradlab import GradlabError, load_spec, run_sweep
from gradlab.cli import main
from gradlab.io.schema import COLUMNS, read_table

RUN_SPEC = """
kind = "run"
[grid]
radius = [0.5, 1.5, 3.0]
activation = ["tanh", "relu"]
seed = [0, 1]
[fixed]
hidden = 4
steps = 12
batch = 2
[quick.grid]
radius = [1.0]
"""

TRAIN_SPEC = """
kind = "train"
[grid]
clipping = ["none", "norm"]
radius = [1.0, 3.0]
[fixed]
task = "adding"
steps = 10
hidden = 4
batch = 4
updates = 6
eval_every = 3
eval_batch = 8
jacobian_every = 3
"""


def write_spec(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def csv_tables(folder: Path) -> dict[str, pd.DataFrame]:
    """Every table of a sweep folder; wall_time_s is the one column allowed to differ."""
    return {p.name: pd.read_csv(p).drop(columns=["wall_time_s"], errors="ignore")
            for p in sorted(folder.glob("*.csv"))}


def assert_same_tables(a: Path, b: Path) -> None:
    ta, tb = csv_tables(a), csv_tables(b)
    assert ta.keys() == tb.keys()
    for name in ta:
        pd.testing.assert_frame_equal(ta[name], tb[name], check_exact=True, obj=name)
    for p in a.glob("*.csv"):
        if p.name != "runs.csv":                         # no timing column: identical bytes
            assert p.read_bytes() == (b / p.name).read_bytes(), p.name


def test_sweep_tables_follow_the_schema_and_repeat_the_parameters(tmp_path):
    out = tmp_path / "out"
    outcome = run_sweep(write_spec(tmp_path, RUN_SPEC), out)
    assert (outcome.n_runs, outcome.n_computed) == (12, 12)
    runs = read_table(out / "runs.csv", "runs")
    assert list(runs.columns[:5]) == ["run_id", "param_hash", "radius", "activation", "seed"]
    assert runs["param_hash"].is_unique and len(runs) == 12
    norms = read_table(out / "norms.csv", "sweep_norms")
    read_table(out / "spectrum.csv", "sweep_spectrum")
    assert (norms.groupby("run_id")["lag"].max() == 12).all()
    # Each norms row carries its run's parameters, consistent with runs.csv.
    merged = norms.merge(runs[["run_id", "radius", "activation"]], on="run_id", suffixes=("", "_run"))
    assert (merged["radius"] == merged["radius_run"]).all()
    # ρ(W_hh) is the swept radius.
    assert (runs["rho"] - runs["radius"]).abs().max() < 1e-12
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sweep"]["text"] == RUN_SPEC and manifest["sweep"]["finished"]


def test_one_and_two_workers_give_identical_csvs(tmp_path):
    spec = write_spec(tmp_path, TRAIN_SPEC)
    run_sweep(spec, tmp_path / "one", jobs=1)
    run_sweep(spec, tmp_path / "two", jobs=2)
    assert {p.name for p in (tmp_path / "one").glob("*.csv")} == {
        "runs.csv", "training.csv", "evaluation.csv", "jacobians.csv"}
    assert_same_tables(tmp_path / "one", tmp_path / "two")


def test_dask_local_cluster_gives_the_same_csvs(tmp_path, dask_distributed):
    distributed = dask_distributed
    spec = write_spec(tmp_path, RUN_SPEC)
    run_sweep(spec, tmp_path / "local")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        outcome = run_sweep(spec, tmp_path / "dask", scheduler=cluster.scheduler_address)
    assert outcome.n_computed == 12
    assert_same_tables(tmp_path / "local", tmp_path / "dask")


def test_a_sweep_killed_mid_way_resumes_to_the_same_csvs(tmp_path):
    spec = write_spec(tmp_path, RUN_SPEC.replace("hidden = 4", "hidden = 24").replace("steps = 12", "steps = 60")
                      .replace("seed = [0, 1]", "seed = [0, 1, 2, 3]"))
    killed = tmp_path / "killed"
    log = tmp_path / "stderr.txt"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "gradlab", "sweep", str(spec), "--out", str(killed),
                                 "--quiet"], stdout=subprocess.DEVNULL, stderr=err)
    parts = killed / "parts"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if parts.is_dir() and len([p for p in parts.iterdir() if not p.name.startswith(".")]) >= 3:
            break
        time.sleep(0.005)
    assert proc.poll() is None, f"the sweep ended by itself ({proc.returncode}): {log.read_text()}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    n_done = len([p for p in parts.iterdir() if not p.name.startswith(".")])
    assert 3 <= n_done < 24, f"the kill must land mid-way for this test to mean anything ({n_done} done)"
    assert not (killed / "runs.csv").exists()

    outcome = run_sweep(spec, killed)                     # the same command again
    assert outcome.n_already_done >= n_done and outcome.n_computed == 24 - outcome.n_already_done
    run_sweep(spec, tmp_path / "whole")
    assert_same_tables(killed, tmp_path / "whole")
    runs = pd.read_csv(killed / "runs.csv")
    assert runs["run_id"].tolist() == [f"r{i:04d}" for i in range(24)]   # none lost, none twice


def finished_parts(out: Path) -> int:
    parts = out / "parts"
    return len([p for p in parts.iterdir() if not p.name.startswith(".")]) if parts.is_dir() else 0


def child_pids(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid``, from /proc."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            children.append(int(stat.parent.name))
    return children


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def start_two_worker_sweep(tmp_path: Path, out: Path):
    """A 24-run sweep on 2 worker processes, returned once some runs are done and both workers are up."""
    spec = write_spec(tmp_path, RUN_SPEC.replace("hidden = 4", "hidden = 24").replace("steps = 12", "steps = 60")
                      .replace("seed = [0, 1]", "seed = [0, 1, 2, 3]"))
    log = tmp_path / "stderr.txt"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "gradlab", "sweep", str(spec), "--out", str(out),
                                 "--jobs", "2", "--quiet"], stdout=subprocess.DEVNULL, stderr=err, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if finished_parts(out) >= 2 and len(child_pids(proc.pid)) >= 2:
            break
        time.sleep(0.005)
    assert proc.poll() is None, f"the sweep ended by itself ({proc.returncode}): {log.read_text()}"
    return spec, proc, child_pids(proc.pid), log


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_sweep_leaves_no_worker_processes_and_resumes(tmp_path, signum):
    """`kill PID` or the OOM killer used to leave the pool workers waiting for work forever."""
    out = tmp_path / "killed"
    spec, proc, workers, log = start_two_worker_sweep(tmp_path, out)
    try:
        os.kill(proc.pid, signum)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(w) for w in workers):
            time.sleep(0.05)
        assert not any(alive(w) for w in workers), "worker processes outlived the sweep"
    finally:
        for w in workers:
            if alive(w):
                os.kill(w, signal.SIGKILL)
    n_done = finished_parts(out)
    if signum == signal.SIGTERM:          # unwound like Ctrl-C: one line (what is kept), the shell's exit code, no temp folder
        assert proc.returncode == 143
        assert log.read_text().strip() == (f"Terminated: {n_done} of 24 runs are kept in {str(out)!r}; "
                                           "run the same command again to resume")
        assert not [p.name for p in (out / "parts").iterdir() if p.name.startswith(".")]
    assert n_done < 24 and not (out / "runs.csv").exists()

    outcome = run_sweep(spec, out)                       # the same command again
    assert outcome.n_already_done == n_done and outcome.n_computed == 24 - n_done
    run_sweep(spec, tmp_path / "whole")
    assert_same_tables(out, tmp_path / "whole")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_a_worker_that_dies_is_a_one_line_error_and_the_sweep_resumes(tmp_path):
    """A worker killed under the sweep (e.g. out of memory) used to end it with a BrokenProcessPool traceback."""
    out = tmp_path / "out"
    spec, proc, workers, log = start_two_worker_sweep(tmp_path, out)
    os.kill(workers[0], signal.SIGKILL)
    proc.wait(timeout=60)
    lines = log.read_text().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, lines
    assert lines[0].startswith("Error: a worker process died") and "run the same command again" in lines[0]
    assert not any(alive(w) for w in workers)
    outcome = run_sweep(spec, out)
    assert outcome.n_runs == 24 and outcome.n_already_done >= 2


@pytest.mark.parametrize("kind, extra", [("run", ""), ("truncation", ", truncate = 3")])
def test_an_error_in_one_run_names_the_run(tmp_path, capsys, kind, extra):
    """A linear net with ρ = 3 overflows float64 over 800 steps; of two runs, the message says which.
    (A truncation sweep used to write NaN errors for it instead.)"""
    fixed = {"activation": '"linear"', "hidden": 4, "steps": 800, **({"truncate": 3} if extra else {})}
    text = f'kind = "{kind}"\n[grid]\nradius = [0.5, 3.0]\n[fixed]\n' + "".join(f"{k} = {v}\n" for k, v in fixed.items())
    with pytest.raises(SystemExit) as e:
        main(["sweep", str(write_spec(tmp_path, text)), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1
    assert err.startswith(f"Error: run r0001 (radius = 3.0, activation = linear, hidden = 4, steps = 800{extra}): "
                          "the forward pass overflows float64"), err


def test_force_does_not_delete_a_folder_that_is_not_a_sweep(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "data.csv").write_text("mine")
    with pytest.raises(SystemExit) as e:
        main(["sweep", str(write_spec(tmp_path, RUN_SPEC)), "--out", str(out), "--quiet", "--force"])
    assert e.value.code == 2 and "was not written by gradlab" in capsys.readouterr().err
    assert os.listdir(out) == ["data.csv"]


def test_a_finished_sweep_is_not_recomputed(tmp_path):
    spec, out = write_spec(tmp_path, RUN_SPEC), tmp_path / "out"
    run_sweep(spec, out)
    before = (out / "runs.csv").read_bytes()
    outcome = run_sweep(spec, out)
    assert outcome.n_computed == 0 and outcome.n_already_done == 12
    assert (out / "runs.csv").read_bytes() == before      # same wall times: nothing ran again


def test_seeds_come_from_parameters_not_from_the_order_of_runs(tmp_path):
    text = RUN_SPEC.replace("seed = [0, 1]\n", "")
    a = run_sweep(write_spec(tmp_path, text, "a.toml"), tmp_path / "a")
    b = run_sweep(write_spec(tmp_path, text.replace("[0.5, 1.5, 3.0]", "[3.0, 0.5, 1.5]")
                             .replace('["tanh", "relu"]', '["relu", "tanh"]'), "b.toml"), tmp_path / "b")
    ra = pd.read_csv(a.out / "runs.csv").drop(columns=["run_id", "wall_time_s"]).set_index("param_hash")
    rb = pd.read_csv(b.out / "runs.csv").drop(columns=["run_id", "wall_time_s"]).set_index("param_hash")
    pd.testing.assert_frame_equal(ra.sort_index(), rb.sort_index(), check_exact=True)
    assert (ra["seed"] == [int(h[:8], 16) for h in ra.index]).all()


def test_quick_replaces_grid_values(tmp_path):
    spec = load_spec(write_spec(tmp_path, RUN_SPEC), quick=True)
    assert spec.grid["radius"] == [1.0] and len(list(spec.points())) == spec.n_runs == 4


def test_the_shipped_experiments_load_full_and_quick():
    root = Path(__file__).resolve().parents[2] / "experiments"
    for name, kind in [("vanishing", "run"), ("clipping", "train"), ("truncation", "truncation")]:
        full, quick = load_spec(root / f"{name}.toml"), load_spec(root / f"{name}.toml", quick=True)
        assert full.kind == quick.kind == kind
        assert quick.n_runs < full.n_runs
    vanishing = load_spec(root / "vanishing.toml")
    assert len(vanishing.grid["radius"]) >= 10 and min(vanishing.grid["radius"]) == 0.5
    assert max(vanishing.grid["radius"]) == 3.0 and len(vanishing.grid["seed"]) >= 5
    assert set(vanishing.grid["activation"]) == {"tanh", "sigmoid", "relu"}
    assert vanishing.fixed["hidden"] == 64 and vanishing.fixed["steps"] == 100


def test_truncation_sweep_error_vanishes_once_K_covers_the_sequence(tmp_path):
    text = 'kind = "truncation"\n[grid]\ntruncate = [0, 3, 20]\n[fixed]\nhidden = 4\nsteps = 10\nbatch = 2\n'
    out = run_sweep(write_spec(tmp_path, text), tmp_path / "t").out
    t = read_table(out / "truncation.csv", "truncation")
    err = t[t["parameter"] == "all"].set_index("truncate")["rel_error"]
    assert err[20] < 1e-14 and err[0] > err[3] > err[20]


def test_a_changed_sweep_file_is_refused_unless_forced(tmp_path, capsys):
    spec, out = write_spec(tmp_path, RUN_SPEC), tmp_path / "out"
    run_sweep(spec, out)
    spec.write_text(RUN_SPEC.replace("hidden = 4", "hidden = 5"))
    with pytest.raises(SystemExit) as e:
        main(["sweep", str(spec), "--out", str(out), "--quiet"])
    assert e.value.code == 2
    assert "holds a different sweep" in capsys.readouterr().err
    assert pd.read_csv(out / "runs.csv")["hidden"].eq(4).all()          # untouched
    with pytest.raises(SystemExit) as e:
        main(["sweep", str(spec), "--out", str(out), "--quiet", "--force"])
    assert e.value.code == 0
    assert pd.read_csv(out / "runs.csv")["hidden"].eq(5).all()


BAD_SPECS = [
    ('kinds = "run"\n', "unknown key 'kinds'"),
    ('kind = "fit"\n', "unknown kind 'fit'"),
    ('[grid]\nradius = [1.0]\n', "missing key 'kind'"),
    ('kind = "run"\n[grid]\nradiuss = [1.0]\n', "unknown run parameter 'radiuss'"),
    ('kind = "run"\n[fixed]\nhidden = "big"\n', "hidden must be a whole number ≥ 1, got 'big'"),
    ('kind = "run"\n[grid]\nradius = []\n', "grid.radius must be a non-empty list, got \\[\\]"),
    ('kind = "run"\n[grid]\nradius = 0.5\n', "grid.radius must be a non-empty list, got 0.5"),
    ('kind = "run"\n[grid]\nradius = [0.5, -1.0]\n', "radius must be a positive number, got -1.0"),
    ('kind = "train"\n[fixed]\ntask = "adder"\n', "unknown task 'adder'"),
    ('kind = "train"\n[grid]\nclipping = ["none", "clamp"]\n', "unknown clipping 'clamp'"),
    ('kind = "run"\n[grid]\nradius = [0.5,\n', "malformed TOML"),
    ('kind = "run"\n[grid]\nhidden = [4]\n[fixed]\nhidden = 5\n', "'hidden' is in both"),
    ('kind = "truncation"\n[grid]\nradius = [1.0]\n', "needs the parameter 'truncate'"),
    ('kind = "run"\n[quick]\nradius = [1.0]\n', "unknown key 'quick.radius'"),
    ('kind = "run"\n[grid]\nradius = [1.0]\n[quick.grid]\nradius = [-1.0]\n',
     r"with its \[quick\] replacements: radius must be a positive number, got -1.0"),   # checked without --quick too
    ('kind = "run"\n[fixed]\nweights = "no-such-weights.npz"\n', "weights file 'no-such-weights.npz' does not exist"),
    ('kind = "run"\n[fixed]\ninput_seq = "no-such-inputs.npy"\n', "input file 'no-such-inputs.npy' does not exist"),
]


@pytest.mark.parametrize("text, message", BAD_SPECS)
def test_bad_sweep_files_exit_2_with_one_line_naming_key_and_value(tmp_path, capsys, text, message):
    spec, out = write_spec(tmp_path, text), tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        main(["sweep", str(spec), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert e.value.code == 2
    assert err.count("\n") == 1 and err.startswith("Error: ") and str(spec) in err
    assert re.search(message, err), err
    assert not out.exists()                                            # nothing written


def test_bad_jobs_is_a_one_line_error(tmp_path):
    spec = write_spec(tmp_path, RUN_SPEC)
    with pytest.raises(GradlabError, match="jobs must be a whole number ≥ 1, got 0"):
        run_sweep(spec, tmp_path / "a", jobs=0)
    assert not (tmp_path / "a").exists()


def test_unreachable_scheduler_is_a_one_line_error(tmp_path, dask_distributed):
    spec = write_spec(tmp_path, RUN_SPEC)
    with pytest.raises(GradlabError, match="cannot reach the Dask scheduler at 'nonsense://nowhere'"):
        run_sweep(spec, tmp_path / "b", scheduler="nonsense://nowhere")
    assert not (tmp_path / "b").exists()                               # refused before the folder is made


def test_schema_lists_every_table_a_sweep_writes():
    assert {"runs", "sweep_norms", "sweep_spectrum", "training", "evaluation", "jacobians",
            "truncation"} <= set(COLUMNS)


# ---------------------------------------------------------------- the code a sweep was begun by

FAKE_CODE = {"gradlab": "0.0.9", "sha256": "ab" * 32, "files": ["rnn.py"]}


def interrupted_sweep(tmp_path: Path, monkeypatch, code=None, n_done: int = 5, finish: bool = False):
    """RUN_SPEC (12 runs) begun by the code fingerprint ``code`` (default: this gradlab's), stopped after
    ``n_done`` runs as Ctrl-C stops it (or left to finish)."""
    import gradlab.experiments.sweep as sweep_module

    spec, out = write_spec(tmp_path, RUN_SPEC), tmp_path / "out"
    real_run, calls = sweep_module._sweep_run, []

    def stop_after_n(kind, run, *args):
        if len(calls) == n_done and not finish:
            raise KeyboardInterrupt
        calls.append(run.run_id)
        return real_run(kind, run, *args)

    with monkeypatch.context() as m:
        m.setattr(sweep_module, "_sweep_run", stop_after_n)
        if code is not None:
            m.setattr(sweep_module, "code_fingerprint", lambda: code)
        try:
            run_sweep(spec, out)
        except KeyboardInterrupt:
            pass
    assert finished_parts(out) == (12 if finish else n_done)
    return spec, out


def folder_bytes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("finish", [False, True], ids=["interrupted", "finished"])
def test_a_sweep_begun_by_other_code_is_refused_with_one_line_and_left_byte_identical(tmp_path, monkeypatch,
                                                                                       capsys, finish):
    from gradlab.io.results import code_fingerprint

    spec, out = interrupted_sweep(tmp_path, monkeypatch, code=FAKE_CODE, finish=finish)
    assert json.loads((out / "manifest.json").read_text())["code"] == FAKE_CODE
    before = folder_bytes(out)
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["sweep", str(spec), "--out", str(out), "--quiet"])
    assert e.value.code == 2
    now = code_fingerprint()["sha256"][:12]
    codes = f"gradlab 0.0.9 (code abababababab), but this is gradlab {gl_version()} (code {now})"
    if finish:
        expected = (f"Error: {str(out)!r} holds a sweep computed by {codes}; it is complete: keep it as it is, "
                    "or pass --force to discard its 12 runs and compute them again with this code\n")
    else:
        expected = (f"Error: {str(out)!r} holds a sweep begun by {codes}: resuming would mix rows computed by the "
                    "two; finish it with the gradlab that began it, or pass --force to discard its 5 runs finished "
                    "so far and start again with this code\n")
    assert capsys.readouterr() == ("", expected)
    assert folder_bytes(out) == before                     # nothing written, nothing lost


def gl_version() -> str:
    import gradlab

    return gradlab.__version__


def test_the_sweep_begun_by_this_code_resumes_and_records_its_fingerprint(tmp_path, monkeypatch):
    from gradlab.io.results import code_fingerprint

    spec, out = interrupted_sweep(tmp_path, monkeypatch)
    assert json.loads((out / "manifest.json").read_text())["code"] == code_fingerprint()
    outcome = run_sweep(spec, out)
    assert (outcome.n_already_done, outcome.n_computed) == (5, 7)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["code"] == code_fingerprint() and manifest["sweep"]["finished"] is True
    run_sweep(spec, tmp_path / "whole")
    assert_same_tables(out, tmp_path / "whole")


def test_force_discards_a_sweep_begun_by_other_code_and_starts_again(tmp_path, monkeypatch, capsys):
    from gradlab.io.results import code_fingerprint

    spec, out = interrupted_sweep(tmp_path, monkeypatch, code=FAKE_CODE)
    (out / "parts" / "r0000-stale").mkdir()                 # a part of the old code that no run of the plan names
    with pytest.raises(SystemExit) as e:
        main(["sweep", str(spec), "--out", str(out), "--quiet", "--force"])
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith("12 runs (12 computed): wrote")   # none kept from the old code
    assert not (out / "parts" / "r0000-stale").exists()
    assert json.loads((out / "manifest.json").read_text())["code"] == code_fingerprint()


def test_a_folder_from_a_gradlab_without_fingerprints_resumes_unchecked_and_records_none(tmp_path, monkeypatch):
    """Such a folder's runs were computed by unrecorded code: resumed as before, and no fingerprint is claimed."""
    import gradlab.experiments.sweep as sweep_module

    spec, out = interrupted_sweep(tmp_path, monkeypatch)
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["code"]                                    # as an older gradlab wrote it
    (out / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(sweep_module, "code_fingerprint", lambda: FAKE_CODE)   # and the code changed since
    outcome = run_sweep(spec, out)
    assert (outcome.n_already_done, outcome.n_computed) == (5, 7)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["code"] is None and manifest["sweep"]["finished"] is True
    assert run_sweep(spec, out).n_computed == 0             # and again: still unchecked, nothing recomputed


def test_the_code_fingerprint_covers_the_numerics_not_the_command_line_or_figures(tmp_path):
    import shutil

    import gradlab
    from gradlab.io.results import NOT_NUMERICS, code_fingerprint

    package = Path(gradlab.__file__).parent
    copy = tmp_path / "gradlab"
    shutil.copytree(package, copy)
    here = code_fingerprint()
    assert code_fingerprint(copy) == here and here["gradlab"] == gradlab.__version__
    assert {"cells/rnn.py", "analysis/jacobian_norms.py", "experiments/sweep.py", "io/results.py",
            "experiments/config.py"} <= set(here["files"])
    assert not set(here["files"]) & (NOT_NUMERICS | {"cli.py", "io/inspect.py"})
    assert not any(f.startswith("plots/") for f in here["files"])

    def edited(name: str) -> str:
        path = copy / name
        original = path.read_bytes()
        path.write_bytes(original + b"\n# edited\n")
        try:
            return code_fingerprint(copy)["sha256"]
        finally:
            path.write_bytes(original)

    for name in ("cli.py", "io/inspect.py", "experiments/reproduce.py", "plots/figures.py"):
        assert edited(name) == here["sha256"], name        # a resume is not blocked by these
    for name in ("cells/rnn.py", "analysis/jacobian_norms.py", "experiments/config.py", "io/results.py"):
        assert edited(name) != here["sha256"], name
    (copy / "analysis" / "new_numerics.py").write_text("X = 1\n")   # a new module counts unless listed
    assert code_fingerprint(copy)["sha256"] != here["sha256"]


def test_every_manifest_records_the_code_fingerprint(tmp_path):
    from gradlab.io.results import code_fingerprint
    from gradlab.experiments.sweep import write_single_run

    write_single_run("train", {"task": "adding", "steps": 6, "hidden": 3, "batch": 2, "updates": 2},
                     tmp_path / "train")
    assert json.loads((tmp_path / "train" / "manifest.json").read_text())["code"] == code_fingerprint()
    with pytest.raises(SystemExit) as e:
        main(["run", "--hidden", "3", "--steps", "5", "--out", str(tmp_path / "run")])
    assert e.value.code == 0
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["code"] == code_fingerprint()
