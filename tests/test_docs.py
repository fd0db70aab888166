"""The documentation: the tutorial runs and every claim in it holds, and nothing is left undocumented.

* The tutorial ``docs/tutorial/bptt.md`` is a MyST-Markdown notebook. Its code
  cells are run here in order, in one namespace, as a kernel would run them
  (no Jupyter needed); each claim is an ``assert`` in a cell, so a claim that
  stops being true fails this test — and the docs build, which executes the
  same notebook with myst-nb.
* ``docs/_ext/gradlab_docs.py`` lists what the docs lack (a public name with
  no API entry, a command with no page, a figure missing from the gallery);
  the Sphinx build turns each into a warning (an error under ``-W``), this
  test into a failure, without Sphinx installed.
* The README keeps the Quick start that ``quickstart-check`` runs, lists
  every command, and its links into the repository point at files that
  exist; the output-files page lists every table of the registry.
"""
from __future__ import annotations

import importlib.util
import re
import time
import traceback
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TUTORIAL = DOCS / "tutorial" / "bptt.md"

CELL_START = re.compile(r"^```\{code-cell\}[^\n]*$")


def code_cells(path: Path) -> list[tuple[int, str]]:
    """The code cells of a MyST-Markdown notebook: (line number, source), in order.

    A cell is a ```` ```{code-cell} ```` fence; its options (``:key: value``
    lines, or a ``---`` YAML block) are skipped.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    cells, i = [], 0
    while i < len(lines):
        if not CELL_START.match(lines[i]):
            i += 1
            continue
        i += 1
        if i < len(lines) and lines[i].strip() == "---":          # YAML options block
            i += 1
            while lines[i].strip() != "---":
                i += 1
            i += 1
        while i < len(lines) and lines[i].startswith(":"):        # short-form options
            i += 1
        start, body = i + 1, []
        while lines[i].rstrip() != "```":
            body.append(lines[i])
            i += 1
        cells.append((start, "\n".join(body)))
        i += 1
    return cells


def test_code_cells_parser_reads_myst_cells(tmp_path):
    text = ("# t\n\n```{code-cell} ipython3\nx = 1\n```\n\ntext\n\n"
            "```{code-cell} ipython3\n:tags: [hide-input]\ny = x + 1\n```\n\n"
            "```{code-cell} ipython3\n---\ntags: [a]\n---\nz = y\n```\n\n```python\nnot = a cell\n```\n")
    path = tmp_path / "nb.md"
    path.write_text(text)
    assert [source for _, source in code_cells(path)] == ["x = 1", "y = x + 1", "z = y"]


@pytest.mark.filterwarnings("error")       # as the docs build, where a cell's warning fails -W
def test_tutorial_runs_and_every_claim_holds(tmp_path, monkeypatch):
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = code_cells(TUTORIAL)
    assert len(cells) > 20, "the tutorial lost its cells"
    monkeypatch.chdir(tmp_path)              # the tutorial writes nothing, and must not write into the repo
    namespace = {"__name__": "__tutorial__"}
    legacy_state = np.random.get_state()     # the tutorial's own code seeds numpy's global generator
    started = time.perf_counter()
    try:
        for line, source in cells:
            name = f"{TUTORIAL.relative_to(ROOT)}, cell at line {line}"
            try:
                exec(compile(source, name, "exec"), namespace)
            except Exception as e:
                frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == name]
                where = line + frames[-1].lineno - 1 if frames else line
                text = source.splitlines()[where - line].strip() if frames else ""
                raise AssertionError(f"tutorial line {where} failed: {type(e).__name__}: {e} [{text}]") from e
    finally:
        plt.close("all")
        np.random.set_state(legacy_state)
    assert time.perf_counter() - started < 60, "the tutorial should run in well under a minute"
    assert sorted(tmp_path.iterdir()) == []


def load_docs_extension():
    spec = importlib.util.spec_from_file_location("gradlab_docs", DOCS / "_ext" / "gradlab_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_document_every_public_name_command_and_figure():
    assert load_docs_extension().missing(DOCS) == []


def test_api_lists_parse_to_public_names():
    documented = load_docs_extension().documented_api_names(DOCS)
    assert "gradlab.loss_and_grads" in documented and "gradlab.plots.draw_figure" in documented
    assert {"gradlab.torch.Monitor", "gradlab.torch.read_state_dict", "gradlab.from_torch"} <= documented


def test_the_table_directive_lists_every_registered_table():
    from gradlab.io.schema import TABLES

    rows = load_docs_extension().table_rows()
    assert [row[0] for row in rows] == list(TABLES)
    assert all(row[3] == TABLES[row[0]].columns for row in rows)
    assert "```{gradlab-tables}" in (DOCS / "guide" / "output-files.md").read_text(encoding="utf-8")


def test_readme_lists_every_command_with_its_page():
    from gradlab.cli import cli

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for command in cli.commands:
        assert f"[`gradlab {command}`](docs/commands/{command}.md)" in text, command


def test_readme_keeps_the_quick_start_block():
    """quickstart-check runs the first fenced block after the '## Quick start' heading."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    heading = re.search(r"^#+\s*quick\s*start.*?$", text, re.I | re.M)
    assert heading, "README.md has no Quick start heading"
    block = re.search(r"```[a-z]*\n(.*?)```", text[heading.end():], re.S)
    assert block and block.group(1).splitlines() == ['pip install -e ".[test]" && gradlab reproduce --quick', "pytest"]


def test_readme_links_into_the_repository_exist():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    assert local, "the README links into the docs"
    missing = [t for t in local if not (ROOT / t).exists()]
    assert missing == []
