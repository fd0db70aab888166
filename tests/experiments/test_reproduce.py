"""``gradlab reproduce``: shipped experiments → results folders → every figure; resumable; bad input is refused."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

import gradlab.experiments.reproduce as rep
from gradlab.errors import GradlabError
from gradlab.plots import FIGURES
from gradlab.experiments.sweep import load_spec
from tiny_results import COVERED, TINY_EXPERIMENTS, TINY_RUN_SETS

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A folder of toy sweep files and toy run sets, so a whole reproduction takes seconds."""
    experiments = tmp_path / "experiments"
    experiments.mkdir()
    for name, text in TINY_EXPERIMENTS.items():
        (experiments / f"{name}.toml").write_text(text, encoding="utf-8")
    monkeypatch.setattr(rep, "RUN_SETS", TINY_RUN_SETS)
    return experiments


def test_every_figure_of_the_registry_has_a_results_folder_that_reproduce_makes():
    shipped = {p.stem for p in rep.experiment_files(REPO / "experiments")}
    made = shipped | set(rep.RUN_SETS)
    for name, spec in FIGURES.items():
        assert spec.results in made, f"figure {name!r} reads {spec.results!r}, which reproduce never writes"


@pytest.mark.parametrize("path", sorted((REPO / "experiments").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_experiment_files_parse_full_and_quick(path):
    full, quick = load_spec(path), load_spec(path, quick=True)
    assert quick.n_runs <= full.n_runs == len(list(full.points()))


def test_reproduce_runs_every_experiment_and_draws_every_figure_then_resumes(tiny, tmp_path):
    lines = []
    done = rep.reproduce(results=tmp_path / "results", out=tmp_path / "figs", experiments=tiny, jobs=1,
                         formats="png", figures=COVERED, log=lines.append)
    assert sorted(done.results) == sorted(list(TINY_EXPERIMENTS) + list(TINY_RUN_SETS))
    assert all(p.parent == tmp_path / "results" / "full" for p in done.results.values())
    assert sorted(p.name for p in done.figures) == sorted(f"{name}.png" for name in COVERED)
    assert all(p.stat().st_size > 1000 for p in done.figures)
    assert len(lines) == len(done.results) + len(COVERED)
    first = {p.name: p.read_bytes() for p in done.figures}

    # Again: the sweeps are already complete (nothing recomputed) and the figures come out byte for byte the same.
    lines.clear()
    again = rep.reproduce(results=tmp_path / "results", out=tmp_path / "figs", experiments=tiny, jobs=1,
                          formats="png", figures=COVERED, log=lines.append)
    assert all(f"({n} already done)" in line for line in lines if line.startswith("sweep")
               for n in [line.split(" runs (")[0].split(": ")[-1]])
    assert {p.name: p.read_bytes() for p in again.figures} == first


def test_quick_results_and_full_results_never_share_a_folder(tiny, tmp_path):
    done = rep.reproduce(results=tmp_path / "r", out=tmp_path / "f", quick=True, experiments=tiny, jobs=1,
                         formats="png", figures=["truncation"], log=lambda line: None)
    assert done.results == {"truncation": tmp_path / "r" / "quick" / "truncation"}  # only what the figure reads
    assert [p.name for p in done.figures] == ["truncation.png"]
    assert sorted(p.name for p in (tmp_path / "r" / "quick").iterdir()) == ["truncation"]


@pytest.mark.parametrize("kwargs,message", [
    ({"figures": ["no-such-figure"]}, "unknown figure 'no-such-figure'"),
    ({"formats": "gif"}, "unknown figure format 'gif'"),
    ({"jobs": 0}, "jobs must be a whole number"),
])
def test_bad_arguments_fail_before_anything_runs(kwargs, message, tiny, tmp_path):
    with pytest.raises(GradlabError, match=message):
        rep.reproduce(results=tmp_path / "r", out=tmp_path / "f", experiments=tiny, log=lambda line: None,
                      **kwargs)
    assert not (tmp_path / "r").exists() and not (tmp_path / "f").exists()


def test_a_bad_sweep_file_fails_before_any_sweep_runs(tiny, tmp_path):
    (tiny / "zz-broken.toml").write_text('kind = "run"\n[grid]\nradius = []\n', encoding="utf-8")
    with pytest.raises(GradlabError, match="radius"):
        rep.reproduce(results=tmp_path / "r", out=tmp_path / "f", experiments=tiny, log=lambda line: None)
    assert not (tmp_path / "r").exists()


def test_cli_reproduce_without_experiments_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    from gradlab.cli import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["reproduce", "--quick"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.count("\n") == 1 and "no sweep files" in err and "experiments" in err
    assert list(tmp_path.iterdir()) == []


def test_cli_reproduce_quick_writes_into_figures_quick(tiny, tmp_path, monkeypatch, capsys):
    from gradlab.cli import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["reproduce", "--quick", "--experiments", str(tiny), "--jobs", "1", "--format", "png",
              "--figure", "heatmap", "--figure", "spectrum"])
    assert exit_.value.code == 0
    assert sorted(p.name for p in (tmp_path / "figures" / "quick").iterdir()) == ["heatmap.png", "spectrum.png"]
    assert "2 figure files in figures/quick/" in capsys.readouterr().out


def test_a_changed_sweep_file_is_run_again_not_refused(tiny, tmp_path):
    kwargs = dict(results=tmp_path / "r", out=tmp_path / "f", experiments=tiny, jobs=1, formats="png",
                  figures=["truncation"])
    rep.reproduce(log=lambda line: None, **kwargs)
    path = tiny / "truncation.toml"
    path.write_text(path.read_text().replace("truncate = [0, 2, 6]", "truncate = [0, 3]"), encoding="utf-8")
    lines = []
    rep.reproduce(log=lines.append, **kwargs)
    assert any(line.startswith("sweep truncation.toml: ") and
               line.endswith("holds results of an earlier version of the sweep file: running it again")
               for line in lines), lines
    truncation = pd.read_csv(tmp_path / "r" / "full" / "truncation" / "truncation.csv")
    assert set(truncation["truncate"]) == {0, 3}


def _reproduce_options():
    """The long option names `gradlab reproduce --help` lists."""
    import click

    from gradlab.cli import reproduce as command

    return {name for p in command.params if isinstance(p, click.Option) for name in p.opts if name.startswith("--")}


@pytest.mark.parametrize("figure,folder", [
    ("truncation", "full/truncation"),            # a sweep's folder
    ("heatmap", "full/heatmap/r0.8"),               # a run set's folder (TINY_RUN_SETS names it)
])
def test_someone_elses_files_in_a_results_folder_are_refused_naming_options_reproduce_has(
        figure, folder, tiny, tmp_path, monkeypatch, capsys):
    """The message used to say `--force` / `--out`, which reproduce does not have (its folder is --results)."""
    from gradlab.cli import main

    assert folder.split("/")[-1] in ({"truncation"} | set(TINY_RUN_SETS["heatmap"]))
    theirs = tmp_path / "results" / folder
    theirs.mkdir(parents=True)
    (theirs / "thesis.tex").write_text("precious")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["reproduce", "--experiments", str(tiny), "--jobs", "1", "--format", "png", "--figure", figure])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1, err
    assert f"'{Path('results') / folder}'" in err and "was not written by gradlab" in err
    named = set(re.findall(r"--[a-z][a-z-]*", err))
    assert named and named <= _reproduce_options(), f"{err!r} names options reproduce lacks: {named - _reproduce_options()}"
    assert "--results" in named and "--out" not in named       # reproduce's --out is the figures folder
    assert sorted(p.name for p in theirs.iterdir()) == ["thesis.tex"]
    assert not (tmp_path / "figures").exists()


def test_a_gradlab_folder_that_is_not_a_sweep_is_refused_naming_options_reproduce_has(tiny, tmp_path):
    """A `gradlab run` folder where a sweep's results go: the hint was `pass --force`."""
    from gradlab.experiments.runner import analyse, write_run
    from gradlab.experiments.config import RunConfig

    theirs = tmp_path / "r" / "full" / "truncation"
    write_run(analyse(RunConfig(hidden=3, steps=4, batch=1)), theirs)
    before = sorted(p.name for p in theirs.iterdir())
    with pytest.raises(GradlabError, match="is not a gradlab sweep") as e:
        rep.reproduce(results=tmp_path / "r", out=tmp_path / "f", experiments=tiny, jobs=1, formats="png",
                      figures=["truncation"], log=lambda line: None)
    named = set(re.findall(r"--[a-z][a-z-]*", str(e.value)))
    assert named and named <= _reproduce_options() and "--out" not in named, str(e.value)
    assert sorted(p.name for p in theirs.iterdir()) == before


def test_a_sweep_begun_by_other_gradlab_code_is_run_again_not_refused(tiny, tmp_path):
    """reproduce owns its folders: results of other code are replaced (gradlab sweep refuses them)."""
    import json

    from gradlab.io.results import code_fingerprint

    kwargs = dict(results=tmp_path / "r", out=tmp_path / "f", experiments=tiny, jobs=1, formats="png",
                  figures=["truncation"])
    rep.reproduce(log=lambda line: None, **kwargs)
    manifest_path = tmp_path / "r" / "full" / "truncation" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["code"] = {"gradlab": "0.0.9", "sha256": "ab" * 32, "files": []}   # as if the code changed since
    manifest_path.write_text(json.dumps(manifest))
    lines = []
    rep.reproduce(log=lines.append, **kwargs)
    assert any("holds a sweep begun by other gradlab code (gradlab 0.0.9 (code abababababab)): running it again"
               in line for line in lines), lines
    assert any(line.startswith("sweep truncation.toml:") and "(0 already done)" in line for line in lines), lines
    assert json.loads(manifest_path.read_text())["code"] == code_fingerprint()
