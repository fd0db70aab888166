"""Safe writing of results: atomic files, whole folders, and the manifest.

Every file is written to a temporary name in the same folder and renamed into
place (``os.replace`` is atomic on POSIX), so a reader never sees half a CSV
and a killed command leaves either the old file or the new one.
"""
from __future__ import annotations

import hashlib
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

from ..errors import GradlabError

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
    another gradlab result), ``"other_code"`` (the same sweep, begun by other
    gradlab code; ``detail`` holds ``old`` and ``new``, the two
    :func:`code_fingerprint` records, ``n_done``, its finished runs, and
    ``finished``). A caller that names its options differently
    re-raises :meth:`with_hint` (``gradlab reproduce`` has no ``--force``,
    and its results go under ``--results``).
    """

    def __init__(self, folder, reason: str, hint: FolderHint = FolderHint(), **detail):
        self.folder, self.reason, self.hint, self.detail = Path(folder), reason, hint, detail
        super().__init__(self._message())

    def with_hint(self, hint: FolderHint) -> "FolderRefused":
        return FolderRefused(self.folder, self.reason, hint, **self.detail)

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
        if self.reason == "other_code":   # one line, however long: both fingerprints and the two ways on
            d = self.detail
            runs = f"{d['n_done']} run{'' if d['n_done'] == 1 else 's'}"
            codes = f"{code_label(d['old'])}, but this is {code_label(d['new'])}"
            if d["finished"]:
                again = (f"pass {force} to discard its {runs} and compute them again with this code" if force
                         else f"move it away or {elsewhere}")
                return f"{where} holds a sweep computed by {codes}; it is complete: keep it as it is, or {again}"
            again = (f"pass {force} to discard its {runs} finished so far and start again with this code" if force
                     else f"move it away or {elsewhere}")
            return (f"{where} holds a sweep begun by {codes}: resuming would mix rows computed by the two; "
                    f"finish it with the gradlab that began it, or {again}")
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


def write_tables(folder: Path, tables: dict) -> None:
    """Write each table as ``folder/<name>.csv`` (atomically, floats at full precision)."""
    for name, table in tables.items():
        write_csv(Path(folder) / f"{name}.csv", table)


def write_results(out, tables: dict, kind: str, config: dict, force: bool = False, **extra) -> Path:
    """Write a results folder: every table as ``<name>.csv`` and a ``manifest.json`` (:func:`manifest`).

    The one writer of results folders (``gradlab run``, ``train``,
    ``lyapunov``): the folder appears complete or not at all, and an existing
    one is refused as :func:`check_new_folder` says unless ``force``.
    """
    with results_folder(out, force) as tmp:
        write_tables(tmp, tables)
        write_json(tmp / "manifest.json", manifest(kind, config, **extra))
    return Path(out)


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
    from .. import __version__

    versions = {"gradlab": __version__, "python": platform.python_version()}
    for name in ("numpy", "scipy", "pandas", "matplotlib", "click"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


# Modules of the gradlab package that shape no number: the command line, start-up, messages, column
# contracts, summaries, the reproduce driver and the figures (paths relative to the package folder;
# a folder name covers everything under it). Every other gradlab/**/*.py is part of the code
# fingerprint, so a new module counts unless listed here.
NOT_NUMERICS = frozenset({"__init__.py", "__main__.py", "_launch.py", "cli.py", "errors.py", "io/inspect.py",
                          "experiments/reproduce.py", "io/schema.py", "plots"})


def _shapes_numbers(relative: str) -> bool:
    """Whether the module at this package-relative path is part of the code fingerprint."""
    return not any(relative == skip or relative.startswith(skip + "/") for skip in NOT_NUMERICS)


def code_fingerprint(folder=None) -> dict:
    """What identifies the code that computes results: gradlab's version and a hash of its sources.

    ``sha256`` is taken over the relative path, size and bytes of every module
    ``gradlab/**/*.py`` except :data:`NOT_NUMERICS` (in path order), as they
    are on disk now: an edit to the numerics, the configs' defaults, the sweep
    runner or the CSV writer changes it; one to the command line, messages,
    ``gradlab inspect`` or the figures does not. Costs about a millisecond.

    Parameters
    ----------
    folder : path, optional
        The package folder to hash (default: this gradlab's).

    Returns
    -------
    dict
        ``{"gradlab": version, "sha256": hex digest, "files": [relative paths]}``.
    """
    from .. import __version__

    digest = hashlib.sha256()
    folder = Path(__file__).resolve().parent.parent if folder is None else Path(folder)
    files = sorted(rel for rel in (p.relative_to(folder).as_posix() for p in folder.rglob("*.py"))
                   if _shapes_numbers(rel))
    for rel in files:
        data = (folder / rel).read_bytes()
        digest.update(f"{rel}\0{len(data)}\0".encode())
        digest.update(data)
    return {"gradlab": __version__, "sha256": digest.hexdigest(), "files": files}


def same_code(a, b) -> bool:
    """Whether two recorded fingerprints (:func:`code_fingerprint`) name the same code."""
    key = ("gradlab", "sha256")
    return isinstance(a, dict) and isinstance(b, dict) and all(a.get(k) == b.get(k) for k in key)


def code_label(code) -> str:
    """A fingerprint in short: ``gradlab 0.1.0 (code 3f2a9c1b7d4e)``, the first 12 hex digits of its hash."""
    if not isinstance(code, dict):
        return f"gradlab code with an unreadable fingerprint {code!r}"
    return f"gradlab {code.get('gradlab')} (code {str(code.get('sha256'))[:12]})"


def manifest(kind: str, config: dict, **extra) -> dict:
    """Provenance record written beside every result as ``manifest.json``.

    ``code`` is :func:`code_fingerprint` unless ``extra`` gives it (a sweep
    records the fingerprint of the code that began it, or ``None`` when an
    older gradlab began it without one).
    """
    code = extra.pop("code") if "code" in extra else code_fingerprint()
    return {
        "kind": kind,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "config": config,
        "versions": package_versions(),
        "code": code,
        **extra,
    }
