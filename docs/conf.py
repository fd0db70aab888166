"""Sphinx configuration of the gradlab documentation.

Build (warnings are errors)::

    pip install -e ".[docs]"
    sphinx-build -W --keep-going -b html docs docs/_build/html

* Markdown pages are MyST (``myst_parser`` through ``myst_nb``); the tutorial
  ``tutorial/*.md`` is a MyST-Markdown notebook (Jupytext's ``myst`` format)
  that ``myst_nb`` executes on every build (``nb_execution_mode = "force"``):
  a cell that raises fails the build.
* The API reference (``api/index.rst``) lists the public names by hand;
  ``autosummary`` writes one page per name from its numpydoc docstring into
  ``api/generated/`` (not committed). ``_ext/gradlab_docs.py`` fails the
  build when a public name, a command or a figure is missing from the docs.
* No extension reaches the network (no intersphinx): the build runs offline.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

import gradlab  # noqa: E402

project = "gradlab"
author = "the gradlab authors"
copyright = "the gradlab authors, MIT licence"
release = version = gradlab.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_nb",
    "sphinx_click",
    "gradlab_docs",
]

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints", "jupyter_execute"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb"}
root_doc = "index"
smartquotes = False               # keep "--option" and quotes as typed (a CLI manual)
highlight_language = "text"        # literal blocks (formulas, --help text) are not Python
templates_path = ["_templates"]

# ---- MyST and notebook execution
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3           # [text](page.md#a-heading) links, as on GitHub
nb_execution_mode = os.environ.get("GRADLAB_DOCS_EXECUTE", "force")   # "off" for a quick look at the prose
nb_execution_timeout = 300
nb_execution_raise_on_error = True  # a failing cell fails the build
nb_execution_show_tb = True
nb_merge_streams = True
nb_output_stderr = "warn"           # a warning printed by a cell is a build warning (an error under -W)

# ---- API reference
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "signature"
numpydoc_show_class_members = False     # dataclass fields are listed under Attributes
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False        # docstring types are prose ("(B, T, d) float"), not names
numpydoc_validation_checks: set[str] = set()

# ---- HTML
html_theme = "pydata_sphinx_theme"
html_title = f"gradlab {release}"
html_static_path: list[str] = []
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_context = {"default_mode": "light"}
html_show_sourcelink = False
