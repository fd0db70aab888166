"""Safe writes: atomic files and folders, strict JSON manifests."""
import json

import pandas as pd
import pytest

import gradlab as gl
from gradlab.io.results import results_folder, write_csv, write_json


def test_manifest_json_is_strict_even_with_nan_and_inf(tmp_path):
    write_json(tmp_path / "m.json", {"rate": float("nan"), "xs": [1.5, float("-inf")], "nested": {"r": float("inf")}})
    text = (tmp_path / "m.json").read_text()
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert data == {"rate": None, "xs": [1.5, None], "nested": {"r": None}}


def test_csv_floats_round_trip_exactly(tmp_path):
    values = [0.1, 1 / 3, 2.0 ** -1074, 1.7976931348623157e308, -123456.789012345678]
    write_csv(tmp_path / "t.csv", pd.DataFrame({"x": values}))
    assert pd.read_csv(tmp_path / "t.csv")["x"].tolist() == values


def test_a_failed_folder_leaves_nothing_and_the_old_folder_intact(tmp_path):
    out = tmp_path / "res"
    with results_folder(out) as tmp:
        (tmp / "a.csv").write_text("old")
        write_json(tmp / "manifest.json", {})
    with pytest.raises(RuntimeError), results_folder(out, force=True) as tmp:
        (tmp / "a.csv").write_text("new")
        raise RuntimeError("killed half way")
    assert (out / "a.csv").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]  # no temporary leftovers


def test_force_replaces_only_a_folder_gradlab_wrote(tmp_path):
    """--force deletes the folder it replaces: never one without a manifest.json (someone's files)."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    for force in (False, True):
        with pytest.raises(gl.GradlabError, match=r"'.*mine' exists and was not written by gradlab \(no manifest\.json\)"):
            with results_folder(out, force=force):
                pass
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


@pytest.mark.parametrize("name", [".", "..", ""])
def test_the_current_folder_or_one_holding_it_is_never_an_output_folder(tmp_path, monkeypatch, name):
    here = tmp_path / "project"
    here.mkdir()
    (here / "manifest.json").write_text("{}")   # even one that looks like results
    monkeypatch.chdir(here)
    with pytest.raises(gl.GradlabError, match=r"is the current folder or holds it"):
        with results_folder(name, force=True):
            pass
    assert sorted(p.name for p in here.iterdir()) == ["manifest.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]


def test_an_existing_gradlab_folder_needs_force(tmp_path):
    out = tmp_path / "res"
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    (out / "keep.txt").write_text("precious")
    with pytest.raises(gl.GradlabError, match=r"already exists; pass --force"):
        with results_folder(out):
            pass
    assert (out / "keep.txt").read_text() == "precious"


def test_results_get_the_same_permissions_as_ordinary_files_and_folders(tmp_path):
    """tempfile's private 0600/0700 must not leak into results meant to be shared."""
    (tmp_path / "plain.txt").write_text("x")
    (tmp_path / "plain").mkdir()
    with results_folder(tmp_path / "out") as folder:
        write_csv(folder / "t.csv", pd.DataFrame({"a": [1.0]}))
    def mode(path):
        return path.stat().st_mode & 0o777
    assert mode(tmp_path / "out") == mode(tmp_path / "plain")
    assert mode(tmp_path / "out" / "t.csv") == mode(tmp_path / "plain.txt")


@pytest.mark.parametrize("finished", [False, True])
def test_a_refusal_for_other_code_keeps_its_fingerprints_and_names_only_the_callers_options(finished):
    from gradlab.io.results import FolderHint, FolderRefused

    old, new = {"gradlab": "0.0.9", "sha256": "ab" * 32}, {"gradlab": "0.1.0", "sha256": "cd" * 32}
    refused = FolderRefused("res", "other_code", old=old, new=new, n_done=1, finished=finished)
    assert "gradlab 0.0.9 (code abababababab), but this is gradlab 0.1.0 (code cdcdcdcdcdcd)" in str(refused)
    assert "pass --force to discard its 1 run" in str(refused)
    hinted = refused.with_hint(FolderHint(force=None, elsewhere="choose another --results"))
    assert "(code abababababab)" in str(hinted) and "--force" not in str(hinted)
    assert str(hinted).endswith("move it away or choose another --results") and "\n" not in str(hinted)
