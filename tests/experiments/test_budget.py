"""Sizes that cannot fit, and commands that would run for days, are refused before they start (issue 15.1–2).

No test allocates anything large: every refusal comes from the estimate, before the command allocates.
Time tests fix the machine's measured speed (``machine_speed``) so they do not depend on the load.
"""
import os
import re
import time

import numpy as np
import pytest

import gradlab.experiments.budget as budget
from gradlab.analysis.jacobian_norms import choose_method, end_steps
from gradlab.cli import main
from gradlab.errors import GradlabError
from gradlab.experiments.config import RunConfig
from gradlab.experiments.sweep import parse_spec
from gradlab.training.loop import TrainConfig

FAST = budget.Speed(flops=5e9, call=5e-6)         # about this machine's, for gradlab's arrays
SLOW = budget.Speed(flops=1e-2, call=100.0)      # a machine on which every command takes days


@pytest.fixture
def speed(monkeypatch):
    """Set the measured speed: ``speed(budget.SLOW)``."""
    def set_speed(value):
        monkeypatch.setattr(budget, "machine_speed", lambda: value)
    set_speed(FAST)
    return set_speed


def gradlab(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


@pytest.mark.parametrize("text, value", [("8G", 8 << 30), ("512M", 512 << 20), ("1.5T", int(1.5 * (1 << 40))),
                                         ("2000", 2000), ("16GiB", 16 << 30), ("3 gb", 3 << 30), (4096, 4096)])
def test_parse_size(text, value):
    assert budget.parse_size(text) == value


@pytest.mark.parametrize("text", ["lots", "-1G", "0", "8X", "", True])
def test_parse_size_refuses_what_is_not_a_size(text):
    with pytest.raises(GradlabError, match="max-memory must be a size such as 8G"):
        budget.parse_size(text)


def test_memory_available_reads_meminfo():
    available = budget.memory_available()
    assert available is None or available > 0
    with budget.limits(max_memory="1G"):
        assert budget.memory_limit() == 1 << 30
    assert budget.current_limits().max_memory is None          # the limits end with the block


HOSTILE_RUNS = {   # issue 15.1: each allocated until MemoryError / "Maximum allowed dimension exceeded"
    "hidden 1e5": (dict(hidden=100000), r"n × n weights|stacks of Jacobian products .*state size 100000"),
    "steps 1e9": (dict(steps=10 ** 9), r"recorded trace, .*T = 1000000000"),
    "batch 1e9": (dict(batch=10 ** 9), r"recorded trace, .*B = 1000000000"),
    "inputs 1e9": (dict(inputs=10 ** 9), r"read-out and outputs \(m = 1000000000|input weights .*d = 1000000000"),
    "outputs 1e9": (dict(outputs=10 ** 9), r"read-out and outputs \(m = 1000000000"),
    "hidden beyond int64": (dict(hidden=99999999999999999999999), r"state size|n = 99999999999999999999999"),
    "pairs all": (dict(pairs="all", steps=100000, hidden=4), r"the norms table, B × 5000050000 rows \(pairs all"),
}


@pytest.mark.parametrize("case", list(HOSTILE_RUNS))
def test_sizes_that_cannot_fit_are_refused_naming_size_estimate_and_limit(case, speed):
    values, part = HOSTILE_RUNS[case]
    with budget.limits(max_memory="16G"), pytest.raises(GradlabError) as info:
        budget.check(RunConfig(**values))
    message = str(info.value)
    assert re.match(r"gradlab run needs about [\d.e+]+ [KMGTPE]iB of memory, [\d.e+]+ [KMGTPE]iB of it for ", message)
    assert re.search(part, message), message
    assert "but 16 GiB is available (--max-memory)" in message and "\n" not in message


def test_max_memory_lets_a_large_run_through_and_the_estimate_is_the_same_for_check(speed):
    config = RunConfig(hidden=3000, steps=10)
    est = budget.estimate(config)
    assert 100 << 20 < est.total_bytes < 20 << 30
    with budget.limits(max_memory=est.total_bytes + 1, yes=True):
        budget.check(config)
    with budget.limits(max_memory=est.total_bytes - 1), pytest.raises(GradlabError, match="of memory"):
        budget.check(config)


@pytest.mark.parametrize("make, what", [
    (lambda: RunConfig(steps=10 ** 7), r"gradlab run (needs|would take)"),
    (lambda: TrainConfig(updates=10 ** 12), r"gradlab train (needs|would take)"),
    (lambda: TrainConfig(batch=10 ** 9), r"gradlab train needs"),
    (lambda: TrainConfig(eval_batch=10 ** 9), r"held-out batch \(eval_batch = 1000000000"),
    (lambda: TrainConfig(steps=10 ** 9), r"gradlab train needs"),
])
def test_hostile_commands_are_refused(make, what, speed):
    with budget.limits(max_memory="16G"), pytest.raises(GradlabError, match=what):
        budget.check(make())


def test_a_long_command_is_refused_unless_yes(speed):
    config = RunConfig(hidden=1500)
    with budget.limits(max_memory="1T"), pytest.raises(GradlabError) as info:
        budget.check(config, gradcheck=True)
    assert re.search(r"gradlab check would take about [\d.]+ (h|days|years) on this machine, mostly the finite "
                     r"differences, two forward passes for each of \d+ parameter entries .* more than the 6 h "
                     r"limit: use smaller sizes, or pass --yes", str(info.value))
    with budget.limits(max_memory="1T", yes=True):
        assert budget.check(config, gradcheck=True).total_seconds > budget.MAX_SECONDS


def test_the_time_model_is_within_a_few_times_of_a_real_run():
    """Calibrated by the measurement of this process; generous (over-estimates), never off by 10×."""
    from gradlab.experiments.runner import analyse

    config = RunConfig(hidden=48, steps=60, batch=2)
    start = time.perf_counter()
    analyse(config, workers=1)
    real = time.perf_counter() - start
    assert real / 10 < budget.estimate(config).total_seconds < 10 * real + 0.5


@pytest.mark.parametrize("pairs, T", [("last", 50), ("all", 37), ("stride:4", 50), ("stride:7", 3), ("all", 1)])
@pytest.mark.parametrize("r", [4, 200])
def test_norms_work_counts_what_jacobian_norms_grows_without_listing_the_pairs(pairs, T, r):
    ends = end_steps(pairs, T)
    P, lags, method, stack = budget.norms_work(2, r, pairs, T)
    assert P == int(ends.sum()) and method == choose_method(r, ends)
    assert ends.max() <= lags <= 2 * int(ends.sum()) and stack > 0
    assert budget.norms_work(4, 32, "all", 10 ** 15)[0] == 10 ** 15 * (10 ** 15 + 1) // 2     # exact, instant


def test_cli_refuses_before_writing_anything(tmp_path, capsys):
    for args in (["run", "--hidden", "100000"], ["run", "--hidden", "99999999999999999999999"],
                 ["run", "--pairs", "all", "--steps", "100000", "--hidden", "4"], ["check", "--hidden", "100000"],
                 ["train", "--batch", "1000000000"], ["train", "--updates", "1000000000000"]):
        out = tmp_path / "out"
        code, stdout, stderr = gradlab(capsys, *args, "--max-memory", "8G", *(["--out", out]
                                                                              if args[0] != "check" else []))
        assert code == 2 and stdout == "" and len(stderr.splitlines()) == 1, (args, stderr)
        assert stderr.startswith(f"Error: gradlab {args[0]} ") and "Traceback" not in stderr
        assert "but 8 GiB is available (--max-memory)" in stderr
        assert os.listdir(tmp_path) == []


def test_cli_yes_runs_a_long_command_and_states_the_estimate_first(tmp_path, capsys, speed):
    speed(SLOW)
    args = ["run", "--hidden", "3", "--steps", "4", "--batch", "1", "--out", tmp_path / "r"]
    code, stdout, stderr = gradlab(capsys, *args)
    assert code == 2 and "would take about" in stderr and "pass --yes" in stderr and not (tmp_path / "r").exists()
    code, stdout, stderr = gradlab(capsys, *args, "--yes")
    assert code == 0 and re.match(r"gradlab run: about [\d.]+ (h|days|years) and [\d.]+ [KM]iB of memory \(n = 3, d = 4",
                                  stderr), stderr
    code, stdout, stderr = gradlab(capsys, "run", "--max-memory", "lots", "--out", tmp_path / "x")
    assert code == 2 and "max-memory must be a size such as 8G" in stderr


# ---------------------------------------------------------------- sweeps

def test_a_grid_of_a_billion_runs_is_refused_before_it_is_built(monkeypatch):
    """SweepSpec.points() for 10⁹ runs died with MemoryError building the list (or ran for hours)."""
    import gradlab.experiments.sweep as sweep

    scales = ", ".join(str(1 + i / 1000) for i in range(1000))
    text = (f'kind = "run"\n[grid]\nseed = [{", ".join(map(str, range(1000)))}]\nradius = [{scales}]\n'
            f'input_scale = [{scales}]\n')
    monkeypatch.setattr(sweep.SweepSpec, "points", lambda self: pytest.fail("built"))
    start = time.perf_counter()
    with pytest.raises(GradlabError, match=r"the grid holds 1,000,000,000 runs, more than the 1,000,000 a sweep can"):
        parse_spec(text, "big.toml")
    assert time.perf_counter() - start < 5


def test_every_run_of_a_sweep_is_checked_before_anything_is_written(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text('kind = "run"\n[grid]\nhidden = [4, 100000]\n[fixed]\nsteps = 5\n')
    code, stdout, stderr = gradlab(capsys, "sweep", spec, "--out", tmp_path / "o", "--max-memory", "8G")
    assert code == 2 and len(stderr.splitlines()) == 1
    assert re.search(r"s\.toml: run r0001 \(hidden = 100000, steps = 5\) needs about .* but 8 GiB is available", stderr)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("kind, fixed", [("train", "batch = 1000000000"), ("lyapunov", "hidden = 100000"),
                                         ("truncation", "truncate = 3\nsteps = 1000000000"),
                                         ("run", "hidden = 99999999999999999999999")])
def test_every_kind_of_sweep_run_is_budgeted(kind, fixed):
    with budget.limits(max_memory="8G"), pytest.raises(GradlabError, match=r"run r0000 .* needs about"):
        parse_spec(f'kind = "{kind}"\n[fixed]\n{fixed}\n', "s.toml")


def test_a_long_sweep_is_refused_unless_yes_and_jobs_share_its_time(speed):
    speed(budget.Speed(flops=5e9, call=1.0))
    text = 'kind = "run"\n[grid]\nseed = [%s]\n[fixed]\nhidden = 3\nsteps = 4\n' % ", ".join(map(str, range(400)))
    with pytest.raises(GradlabError, match=r"the sweep's 400 runs would take about .* more than the 24 h limit"):
        parse_spec(text, "s.toml")
    with budget.limits(jobs=1000):
        spec = parse_spec(text, "s.toml")
        assert "400 runs, about" in budget.sweep_statement(spec) and "1000 workers" in budget.sweep_statement(spec)
    with budget.limits(yes=True):
        parse_spec(text, "s.toml")


def test_quick_sweeps_are_budgeted_at_their_quick_sizes(speed):
    text = 'kind = "run"\n[fixed]\nhidden = 100000\n[quick.fixed]\nhidden = 4\n'
    with budget.limits(max_memory="8G"):
        assert parse_spec(text, "s.toml", quick=True).fixed["hidden"] == 4
        with pytest.raises(GradlabError, match="needs about"):
            parse_spec(text, "s.toml")


def test_the_shipped_experiments_pass_their_budget_without_yes():
    from pathlib import Path

    from gradlab.experiments.sweep import load_spec

    for path in sorted(Path(__file__).resolve().parents[2].glob("experiments/*.toml")):
        load_spec(path)                 # full sizes: within MAX_SWEEP_SECONDS on one worker
        load_spec(path, quick=True)


def test_sizes_come_from_the_file_headers(tmp_path):
    np.savez(tmp_path / "w.npz", weight_ih_l0=np.zeros((6, 5)), weight_hh_l0=np.zeros((6, 6)),
             **{"fc.weight": np.zeros((2, 6))})
    np.save(tmp_path / "x.npy", np.zeros((9, 3, 5)))
    z = budget.run_sizes(RunConfig(weights=str(tmp_path / "w.npz"), input_seq=str(tmp_path / "x.npy"),
                                   activation="tanh", layout="tbd"))
    assert (z.n, z.d, z.m, z.T, z.B, z.tokens) == (6, 5, 2, 9, 3, False)
