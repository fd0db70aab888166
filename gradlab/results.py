"""Safe writing of results: atomic files, whole folders, and the manifest.

Every file is written to a temporary name in the same folder and renamed into
place (``os.replace`` is atomic on POSIX), so a reader never sees half a CSV
and a killed command leaves either the old file or the new one.
"""
from __future__ import annotations

import json
import math
import os
import platform
import shutil
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import pandas as pd

from .errors import GradlabError

CSV_FLOAT_FORMAT = "%.17g"  # round-trips float64 exactly


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# tempfile makes private files (0600) and folders (0700); results are meant to be
# shared, so they get the modes open() and mkdir() would give (read once, at import).
FILE_MODE = 0o666 & ~_read_umask()
FOLDER_MODE = 0o777 & ~_read_umask()


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_csv(path, table: pd.DataFrame) -> None:
    """Write a table as CSV atomically, floats at full precision."""
    atomic_write_text(path, table.to_csv(index=False, float_format=CSV_FLOAT_FORMAT))


def write_json(path, data: dict) -> None:
    """Write strict JSON atomically: nan and ±inf (e.g. an unfittable growth rate) become null."""
    atomic_write_text(path, json.dumps(_finite_or_null(data), indent=2, allow_nan=False, default=str) + "\n")


def _finite_or_null(value):
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class FolderHint:
    """The options a refused folder's message names: those of the command that was refused.

    ``force`` is the option that replaces a folder gradlab wrote (``None``
    when the command has none); ``elsewhere`` says how to write to another
    folder instead.
    """

    force: str | None = "--force"
    elsewhere: str = "choose another --out"


class FolderRefused(GradlabError):
    """A results folder that may not be written: why, and what the user can do (:class:`FolderHint`).

    ``reason`` is ``"current"`` (the current folder or one holding it),
    ``"exists"`` (a folder gradlab wrote: needs ``force``), ``"not_gradlab"``
    (no ``manifest.json``: never replaced, so its message never names
    ``force``), ``"not_sweep"`` or ``"other_sweep"`` (a sweep's folder holding
    another gradlab result). A caller that names its options differently
    re-raises :meth:`with_hint` (``gradlab reproduce`` has no ``--force``,
    and its results go under ``--results``).
    """

    def __init__(self, folder, reason: str, hint: FolderHint = FolderHint()):
        self.folder, self.reason, self.hint = Path(folder), reason, hint
        super().__init__(self._message())

    def with_hint(self, hint: FolderHint) -> "FolderRefused":
        return FolderRefused(self.folder, self.reason, hint)

    def _message(self) -> str:
        where, force, elsewhere = repr(str(self.folder)), self.hint.force, self.hint.elsewhere
        replace = f"pass {force} to replace it" if force else f"move it away or {elsewhere}"
        if self.reason == "current":
            return f"output folder {where} is the current folder or holds it; {elsewhere}"
        if self.reason == "exists":
            return f"output folder {where} already exists; {replace}"
        if self.reason == "not_gradlab":   # force would be refused too: never suggest it
            return (f"output folder {where} exists and was not written by gradlab (no manifest.json); "
                    f"gradlab replaces only folders it wrote, so {elsewhere} or remove it yourself")
        if self.reason == "not_sweep":
            return f"output folder {where} exists and is not a gradlab sweep; {replace}"
        if self.reason == "other_sweep":
            return (f"{where} holds a different sweep (the sweep file or --quick changed); "
                    + (f"pass {force} to discard it and start again" if force else f"move it away or {elsewhere}"))
        raise ValueError(f"unknown reason {self.reason!r}")


def check_new_folder(out, force: bool) -> Path:
    """Refuse an existing, non-empty results folder unless ``force``.

    ``force`` deletes what it replaces, so it only ever replaces a folder
    gradlab wrote (one with a ``manifest.json``), never someone's other files,
    and no command writes into the current folder or one that holds it.
    A refusal is a :class:`FolderRefused`.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise GradlabError(f"output path {str(out)!r} exists and is not a folder")
    here = Path.cwd().resolve()
    if out.resolve() == here or out.resolve() in here.parents:
        raise FolderRefused(out, "current")
    if out.is_dir() and any(out.iterdir()):
        if not (out / "manifest.json").is_file():   # with or without force: the message must not offer it
            raise FolderRefused(out, "not_gradlab")
        if not force:
            raise FolderRefused(out, "exists")
    return out


@contextmanager
def results_folder(out, force: bool = False):
    """Build a results folder in a temporary sibling and move it into place.

    Yields the temporary folder; on success it replaces ``out`` (the old
    folder, with ``force``, is removed only after the new one is complete).
    On any error the temporary folder is removed and ``out`` is untouched.
    An existing ``out`` is refused as :func:`check_new_folder` says.
    """
    out = check_new_folder(out, force)
    with replaced_folder(out) as tmp:
        yield tmp


@contextmanager
def replaced_folder(out: Path):
    """Build a folder in a temporary sibling of ``out``, then swap it in for whatever ``out`` holds."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        tmp.chmod(FOLDER_MODE)
        yield tmp
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def package_versions() -> dict[str, str]:
    """Versions of gradlab, Python and the libraries that shape its numbers."""
    from . import __version__

    versions = {"gradlab": __version__, "python": platform.python_version()}
    for name in ("numpy", "scipy", "pandas", "matplotlib", "click"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def manifest(kind: str, config: dict, **extra) -> dict:
    """Provenance record written beside every result as ``manifest.json``."""
    return {
        "kind": kind,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "config": config,
        "versions": package_versions(),
        **extra,
    }
