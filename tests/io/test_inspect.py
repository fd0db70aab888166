"""gradlab inspect: what was swept, how far it got, key figures per group, where the files are."""
import json
import re
import shutil

import pandas as pd
import pytest

from gradlab import GradlabError, inspect_path, run_sweep
from gradlab.cli import main

SPEC = """
kind = "run"
[grid]
radius = [0.5, 2.0]
activation = ["tanh", "sigmoid"]
seed = [0, 1, 2]
[fixed]
hidden = 4
steps = 10
batch = 2
"""


@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("inspect")
    spec = tmp / "v.toml"
    spec.write_text(SPEC)
    return run_sweep(spec, tmp / "out").out


def test_sweep_summary_names_the_grid_progress_and_files(sweep_folder):
    text = inspect_path(sweep_folder)
    assert "radius = [0.5, 2.0]" in text and "activation = [tanh, sigmoid]" in text
    assert "runs: 12 of 12 done (finished)" in text
    for name, rows in [("runs.csv", 12), ("norms.csv", 120), ("spectrum.csv", 96)]:
        assert re.search(rf"{re.escape(str(sweep_folder / name))}\s+{rows} rows", text), name


def test_key_figures_are_the_seed_means_per_activation_and_radius(sweep_folder):
    text = inspect_path(sweep_folder)
    runs = pd.read_csv(sweep_folder / "runs.csv")
    means = runs.groupby(["radius", "activation"])["growth_rate"].mean()   # computed here, independently
    assert "growth_rate per radius × activation, mean over 3 seeds" in text
    block = text.split("growth_rate per")[1].split("\n\n")[0]
    row = next(line for line in block.splitlines() if line.startswith("2.0"))
    header = next(line for line in block.splitlines() if line.startswith("activation"))
    cols = header.split()[1:]
    for col, value in zip(cols, row.split()[1:]):
        assert float(value) == pytest.approx(means[(2.0, col)], rel=1e-3)


def test_an_unfinished_sweep_reports_its_finished_parts(sweep_folder, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(sweep_folder, partial)
    for name in ("runs.csv", "norms.csv", "spectrum.csv"):
        (partial / name).unlink()
    for part in sorted((partial / "parts").iterdir())[5:]:
        shutil.rmtree(part)
    manifest = json.loads((partial / "manifest.json").read_text())
    manifest["sweep"]["finished"] = False
    (partial / "manifest.json").write_text(json.dumps(manifest))
    text = inspect_path(partial)
    assert "runs: 5 of 12 done (unfinished: run the same command again to resume)" in text


def test_a_csv_is_recognised_by_its_columns(sweep_folder):
    text = inspect_path(sweep_folder / "norms.csv")
    assert "120 rows" in text and "sweep_norms table" in text and "runs: 12" in text
    assert "constant: hidden = 4, steps = 10, batch = 2" in text


def test_cli_inspect_and_a_missing_path(sweep_folder, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["inspect", str(sweep_folder)])
    assert e.value.code == 0 and "runs: 12 of 12" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["inspect", str(tmp_path / "nothing")])
    assert e.value.code == 2 and "no such file or folder" in capsys.readouterr().err
    with pytest.raises(GradlabError):
        inspect_path(tmp_path / "nothing")


@pytest.mark.parametrize("text", ["[1, 2]", '"a string"', "null"])
def test_a_manifest_that_is_not_a_json_object_is_a_one_line_error(tmp_path, capsys, text):
    """Another tool's manifest.json (valid JSON, not an object) used to end in an AttributeError traceback."""
    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(SystemExit) as e:
        main(["inspect", str(tmp_path)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1
    assert "manifest.json' is not a gradlab manifest" in err


def test_a_hand_edited_runs_csv_with_text_in_a_number_column_is_a_one_line_error(sweep_folder, tmp_path, capsys):
    """It used to end in a pandas TypeError traceback ('does not support operation mean')."""
    folder = tmp_path / "edited"
    shutil.copytree(sweep_folder, folder)
    runs = pd.read_csv(folder / "runs.csv")
    runs["growth_rate"] = runs["growth_rate"].astype(object)
    runs.loc[3, "growth_rate"] = "oops"
    runs.to_csv(folder / "runs.csv", index=False)
    with pytest.raises(SystemExit) as e:
        main(["inspect", str(folder)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err == "Error: runs.csv: column 'growth_rate' holds 'oops' where a number belongs\n"


def test_a_folder_without_results_is_refused_and_a_folder_of_run_folders_is_listed(sweep_folder, tmp_path, capsys):
    plain = tmp_path / "notes"
    plain.mkdir()
    (plain / "a.txt").write_text("not a result")
    with pytest.raises(SystemExit) as e:
        main(["inspect", str(plain)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1
    assert re.fullmatch(r"Error: '.*notes' is not a results folder: .*\n", err)
    # A folder of results folders (what `gradlab plot heatmap` reads) still gets its file list.
    shutil.copytree(sweep_folder, tmp_path / "many" / "one")
    assert "many/one" in inspect_path(tmp_path / "many")


MALFORMED = [
    ({"kind": "sweep", "sweep": 3}, "'sweep' is a whole number, expected an object"),
    ({"kind": "sweep", "config": [1]}, "'config' is a list, expected an object"),
    ({"kind": "sweep", "sweep": {"n_runs": "12"}}, "'sweep.n_runs' is a string, expected a whole number"),
    ({"kind": "sweep", "sweep": {"key_figures": 5}}, "'sweep.key_figures' is a whole number, expected a list"),
    ({"kind": "sweep", "config": {"grid": "radius"}}, "'config.grid' is a string, expected an object of lists"),
    ({"kind": "sweep", "config": {"grid": [1]}}, r"'config.grid\[0\]' is a whole number, expected an object of lists"),
    ({"kind": "sweep", "config": {"grid": {"radius": 0.5}}}, "'config.grid.radius' is a float, expected a list"),
    ({"kind": "sweep", "config": {"fixed": [1, 2]}}, "'config.fixed' is a list, expected an object"),
    ({"kind": "run", "config": "hidden = 4"}, "'config' is a string, expected an object"),
    ({"kind": "run", "summary": [1.0]}, "'summary' is a list, expected an object"),
    ({"kind": "run", "files": "w.npz"}, "'files' is a string, expected an object"),
]


@pytest.mark.parametrize("manifest, message", MALFORMED)
def test_a_malformed_manifest_is_a_one_line_error_naming_the_key(tmp_path, capsys, manifest, message):
    """Each of these ended in an AttributeError or TypeError traceback."""
    folder = tmp_path / "res"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SystemExit) as e:
        main(["inspect", str(folder)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert re.search(rf"^Error: '.*manifest\.json' is not a valid gradlab manifest: {message}", err), err


@pytest.mark.parametrize("where", ["runs.csv", "part", "file"])
def test_a_csv_that_is_not_utf8_is_a_one_line_error_naming_it(sweep_folder, tmp_path, capsys, where):
    folder = tmp_path / "copy"
    shutil.copytree(sweep_folder, folder)
    if where == "part":                  # a sweep still running: its parts' runs.csv are read
        (folder / "runs.csv").unlink()
        bad = sorted((folder / "parts").iterdir())[0] / "runs.csv"
    else:
        bad = folder / "runs.csv"
    bad.write_bytes(bad.read_bytes().replace(b"tanh", b"t\xe2nh"))      # Latin-1 â: not UTF-8
    with pytest.raises(SystemExit) as e:
        main(["inspect", str(bad if where == "file" else folder)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1
    assert err.startswith(f"Error: cannot read {str(bad)!r} as CSV: 'utf-8' codec can't decode byte 0xe2"), err
