"""Checks that keep the documentation complete, as a Sphinx extension and for the tests.

Three lists grow with gradlab, and each must be documented:

* every public name (``gradlab.__all__``, ``gradlab.plots.__all__``,
  ``gradlab.torch.__all__``, less what ``gradlab`` exports itself) has an
  entry in an ``autosummary`` list under ``docs/api/``;
* every ``gradlab`` command has a page ``docs/commands/NAME.md`` (the options
  themselves are generated from the click definitions in
  ``docs/commands/reference.md``);
* every figure of ``gradlab.plots.figures.FIGURES`` appears in the gallery
  with the ``gradlab plot NAME`` command that draws it.

During ``sphinx-build -W`` a missing entry is a warning, hence an error;
``tests/test_docs.py`` calls :func:`missing` directly.

The directive ``gradlab-tables`` renders the table registry
``gradlab.io.schema.TABLES`` (file, contract columns, folder kinds,
description of every table) as a table, so the output-files page lists
every table gradlab writes.

The extension also reads gradlab's plain-text maths as written: docstrings
write absolute values as ``|λ|``, which reStructuredText would take for
substitution references, so ``|`` is escaped outside literal blocks,
doctests and inline literals; and the commands' ``--help`` texts (rendered
by sphinx-click) are taken as the plain text they are (``|x|``,
``*.toml``), with a span in single backticks shown as code.
"""
from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent


def documented_api_names(docs: Path = DOCS) -> set[str]:
    """Names listed in the autosummary directives of ``docs/api/*.rst``, fully qualified."""
    names = set()
    for page in sorted((docs / "api").glob("*.rst")):
        module = "gradlab"
        in_list = False
        for line in page.read_text().splitlines():
            if m := re.match(r"\.\. currentmodule:: (\S+)", line):
                module = m.group(1)
            elif line.startswith(".. autosummary::"):
                in_list = True
            elif in_list and line.strip() and not line.startswith(" "):
                in_list = False
            elif in_list and (m := re.match(r"\s+([A-Za-z_][\w.]*)\s*$", line)):
                names.add(f"{module}.{m.group(1)}")
    return names


def missing(docs: Path = DOCS) -> list[str]:
    """What the documentation lacks, one line each (empty when complete)."""
    import gradlab
    import gradlab.plots
    import gradlab.torch
    from gradlab.cli import cli
    from gradlab.plots.figures import FIGURES

    problems = []
    public = ({f"gradlab.{n}" for n in gradlab.__all__} | {f"gradlab.plots.{n}" for n in gradlab.plots.__all__}
              | {f"gradlab.torch.{n}" for n in gradlab.torch.__all__ if n not in gradlab.__all__})
    for name in sorted(public - documented_api_names(docs)):
        problems.append(f"public name {name} is in no autosummary list under docs/api/")
    for command in sorted(cli.commands):
        if not (docs / "commands" / f"{command}.md").exists():
            problems.append(f"command `gradlab {command}` has no page docs/commands/{command}.md")
    gallery_page = docs / "gallery.md"
    gallery = gallery_page.read_text() if gallery_page.exists() else ""
    for figure in FIGURES:
        if f"gradlab plot {figure} " not in gallery:
            problems.append(f"figure {figure!r} is not in docs/gallery.md with its `gradlab plot {figure} …` command")
    return problems


_CODE = re.compile(r"(``.+?``|`[^`]+`)")
_LINE_BLOCK = re.compile(r"(\s*)\| ?(.*)$")


def plain_help_line(line: str) -> str:
    """One line of click help text as reStructuredText that shows it as written.

    ``|`` and ``*`` (absolute values, globs) are escaped and a span in single
    backticks becomes an inline literal; directive lines and the inline
    literals sphinx-click writes itself (````32````) are kept.
    """
    head = re.match(r"\s*", line).group(0)
    body = line[len(head):]
    if body.startswith(".. "):
        return line
    parts = []
    for piece in _CODE.split(body):
        if piece.startswith("``"):
            parts.append(piece)
        elif _CODE.fullmatch(piece):
            parts.append(f"`{piece}`")
        else:
            parts.append(re.sub(r"([\\|*])", r"\\\1", piece))
    return head + "".join(parts)


def plain_help(lines: list[str]) -> list[str]:
    """click help lines → reStructuredText: click's ``\\b`` paragraphs (which
    sphinx-click makes line blocks, ``| …``) become literal blocks, so their
    columns stay aligned; every other line goes through :func:`plain_help_line`."""
    out, i = [], 0
    while i < len(lines):
        m = _LINE_BLOCK.match(lines[i])
        if not m:
            out.append(plain_help_line(lines[i]))
            i += 1
            continue
        indent, block = m.group(1), []
        while i < len(lines) and (m := _LINE_BLOCK.match(lines[i])) and m.group(1) == indent:
            block.append(m.group(2))
            i += 1
        out += [f"{indent}::", ""] + [f"{indent}    {text}".rstrip() for text in block] + [""]
    return out


_SPANS = re.compile(r"(``.+?``|`[^`]*`)")


def escape_bars(lines: list[str]) -> list[str]:
    """Docstring lines with every ``|`` of running text escaped (``\\|``).

    Left alone: literal blocks (after a line ending in ``::``), doctest blocks
    (from ``>>>`` to the next blank line) and inline literals or roles.
    """
    out, literal_base, pending, doctest = [], None, None, False
    for line in lines:
        stripped, indent = line.strip(), len(line) - len(line.lstrip())
        if literal_base is not None:
            if not stripped or indent > literal_base:
                out.append(line)
                continue
            literal_base = None
        if pending is not None:
            if not stripped:
                out.append(line)
                continue
            if indent > pending:
                literal_base, pending = pending, None
                out.append(line)
                continue
            pending = None
        if stripped.startswith(">>>"):
            doctest = True
        elif not stripped:
            doctest = False
        if doctest:
            out.append(line)
            continue
        out.append("".join(piece if _SPANS.fullmatch(piece) else piece.replace("|", "\\|")
                           for piece in _SPANS.split(line)))
        if stripped.endswith("::"):
            pending = indent
    return out


def _escape_docstring(app, what, name, obj, options, lines: list[str]) -> None:
    lines[:] = escape_bars(lines)


def _plain_help(app, ctx, lines: list[str]) -> None:
    lines[:] = plain_help(lines)


TABLE_HEADER = ("table", "file", "one row is", "contract columns", "held by")


def table_rows() -> list[tuple]:
    """``gradlab.io.schema.TABLES`` as rows: (name, file, description, columns, folder kinds)."""
    from gradlab.io.schema import TABLES

    return [(name, t.file, t.description, t.columns, t.folders) for name, t in TABLES.items()]


def _tables_directive():
    from docutils import nodes
    from docutils.parsers.rst import Directive

    def literals(items):
        para = nodes.paragraph()
        for i, item in enumerate(items):
            if i:
                para += nodes.Text(", ")
            para += nodes.literal(text=item)
        return para

    def row(cells):
        r = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            entry += cell
            r += entry
        return r

    class GradlabTables(Directive):
        """``gradlab-tables``: the table registry as a table, built from ``TABLES`` (no options, no content)."""

        has_content = False

        def run(self):
            table = nodes.table(classes=["gradlab-tables"])
            group = nodes.tgroup(cols=len(TABLE_HEADER))
            table += group
            for width in (14, 14, 30, 30, 12):
                group += nodes.colspec(colwidth=width)
            head = nodes.thead()
            head += row([nodes.paragraph(text=h) for h in TABLE_HEADER])
            group += head
            body = nodes.tbody()
            for name, file, description, columns, folders in table_rows():
                body += row([literals([name]), literals([file]), nodes.paragraph(text=description),
                             literals(columns), literals(folders)])
            group += body
            return [table]

    return GradlabTables


def _check(app) -> None:
    from sphinx.util import logging

    log = logging.getLogger("gradlab_docs")
    for problem in missing(Path(app.srcdir)):
        log.warning(problem)


def setup(app):
    app.connect("builder-inited", _check)
    app.add_directive("gradlab-tables", _tables_directive())
    app.connect("autodoc-process-docstring", _escape_docstring, priority=400)   # before numpydoc
    for event in ("description", "options", "arguments", "epilog"):
        app.connect(f"sphinx-click-process-{event}", _plain_help)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
