"""The package's layers: every import in gradlab/ goes down (or sideways without a circle), never up.

Layers, lowest first (ARCHITECTURE.md): errors < io < cells < analysis < training < plots < experiments <
cli, torch (the PyTorch bridge: the top layer too).
Imports inside functions count as well: a lazy import is still a dependency.
"""
from __future__ import annotations

import ast
from pathlib import Path

import gradlab

PACKAGE = Path(gradlab.__file__).parent
LAYERS = ["errors", "io", "cells", "analysis", "training", "plots", "experiments", "cli"]
ENTRY = {"gradlab", "gradlab.__main__", "gradlab._launch"}     # the package's front doors may import anything


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


TOP = {"torch": "cli"}      # the PyTorch bridge sits on the top layer with the command line


def layer(module: str) -> int:
    part = module.split(".")[1]
    return LAYERS.index(TOP.get(part, part))


def imports(path: Path) -> set[str]:
    """The gradlab modules a source file imports (absolute names), wherever in the file."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("gradlab"):
                found.add(target)
                # `from . import x` / `from .cells import rnn`: x may be a submodule
                for alias in node.names:
                    candidate = f"{target}.{alias.name}"
                    if (PACKAGE.parent / (candidate.replace(".", "/") + ".py")).exists() or \
                            (PACKAGE.parent / candidate.replace(".", "/") / "__init__.py").exists():
                        found.add(candidate)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("gradlab")}
    return found - {name}


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in PACKAGE.rglob("*.py")}


def test_every_module_belongs_to_a_layer():
    for module in graph():
        if module not in ENTRY:
            part = module.split(".")[1]
            assert TOP.get(part, part) in LAYERS, module


def test_no_module_imports_a_higher_layer():
    upward = [(m, t) for m, targets in graph().items() if m not in ENTRY
              for t in targets if t != "gradlab" and layer(t) > layer(m)]
    assert not upward, "\n".join(f"{m} imports {t}" for m, t in sorted(upward))


def test_the_package_has_no_import_circle():
    modules = graph()
    g = {m: {t for t in ts if t in modules} for m, ts in modules.items()}
    state, stack, circles = {}, [], []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for t in g[m]:
            if state.get(t) == "open":
                circles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = "done"

    for m in sorted(g):
        if m not in state and m not in ENTRY:
            visit(m)
    assert not circles, "\n".join(" → ".join(c) for c in circles)
