"""The one exception type for bad user input, and the checks that raise it.

Library functions raise :class:`GradlabError` with a one-line message that
names the bad value; the CLI turns it into ``Error: ...`` and exit code 2.
"""
import dataclasses
import math
import os
from numbers import Integral, Real

#: A file or folder path as the public API takes it: ``"runs/a"`` or ``pathlib.Path("runs/a")``.
PathLike = str | os.PathLike[str]


class GradlabError(ValueError):
    """Invalid input from the user (a value, a file, a folder)."""


def check_positive_int(value, name: str, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise GradlabError(f"{name} must be a whole number ≥ {minimum}, got {value!r}")


def check_positive_number(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value <= 0:
        raise GradlabError(f"{name} must be a positive number, got {value!r}")


def check_choice(value, choices, name: str) -> None:
    if value not in choices:
        raise GradlabError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")


def config_from_dict(cls, values: dict, noun: str):
    """``cls(**values)`` for a config dataclass, naming any unknown key (``unknown <noun> parameter``)."""
    known = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in known:
            raise GradlabError(f"unknown {noun} parameter {key!r}; known: {', '.join(sorted(known))}")
    return cls(**values)
