"""Safe writing of results: atomic files, whole folders, one writer per folder, and the manifest.

Every file is written to a temporary name in the same folder and renamed into
place (``os.replace`` is atomic on POSIX), so a reader never sees half a CSV
and a killed command leaves either the old file or the new one. A folder is
built in a temporary sibling and swapped in for the old one in one step
(:func:`swap_folders`), so ``--out`` always names a complete result.

Every command that writes a results folder first claims it
(:func:`claim_folder`): an exclusive ``flock`` on a lock file beside it
(``.NAME.lock``, recording the holder's PID, command and start time), so a
second writer is refused in one line instead of the two mixing their rows.
The kernel drops the lock when its holder dies, so a killed command never
blocks the next one; whoever holds the lock also removes what killed writers
left behind (``.NAME.<pid>-*.tmp``, ``.NAME.old-<pid>``). A folder that holds
a file the command reads (weights, inputs, the sweep file) is refused: the
folder is replaced whole. A full disk or a read-only folder is one line
(:class:`WriteFailed`), never a traceback, and leaves nothing half-written.
"""
from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import math
import os
import platform
import re
import shutil
import sys
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import pandas as pd

from ..errors import GradlabError

try:
    import fcntl
except ImportError:  # not POSIX: no locking
    fcntl = None

CSV_FLOAT_FORMAT = "%.17g"  # round-trips float64 exactly


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# tempfile makes private files (0600) and folders (0700); results are meant to be shared, so they get
# the modes open() and mkdir() would give (read once, at import).
FILE_MODE = 0o666 & ~_read_umask()
FOLDER_MODE = 0o777 & ~_read_umask()


# ---------------------------------------------------------------- write failures

# What a write can fail with that is the machine's state, not a bug: each is one line and a way on.
WRITE_ERRNOS = {
    errno.ENOSPC: "no space left on device; free some space",
    errno.EDQUOT: "disk quota exceeded; free some space",
    errno.EROFS: "read-only file system; choose another --out",
    errno.EACCES: "permission denied; choose another --out or fix its permissions",
    errno.EPERM: "operation not permitted; choose another --out or fix its permissions",
}


class WriteFailed(GradlabError):
    """A result could not be written (disk full, read-only, no permission): where, why, and what to do.

    Whatever was being written is removed again; what was complete before
    (an old result, a sweep's finished runs) is kept. ``kept`` says so for a
    sweep.
    """

    def __init__(self, path, error: OSError, kept: str | None = None):
        self.path, self.error, self.kept = Path(path), error, kept
        reason, _, todo = WRITE_ERRNOS[error.errno].partition("; ")
        if kept:
            again = f"{kept}: {todo} and run the same command again to resume"
        else:
            again = f"nothing half-written is left; {todo}" + (" and run the same command again" if "space" in todo
                                                                else "")
        super().__init__(f"cannot write {str(self.path)!r}: {reason}; {again}")

    def with_kept(self, kept: str) -> "WriteFailed":
        return WriteFailed(self.path, self.error, kept)


@contextmanager
def write_errors(path):
    """Turn the OSErrors of :data:`WRITE_ERRNOS` raised inside into a :class:`WriteFailed` naming ``path``."""
    try:
        yield
    except OSError as e:
        if e.errno in WRITE_ERRNOS:
            raise WriteFailed(path, e) from None
        raise


# ---------------------------------------------------------------- files

def atomic_write_text(path, text: str) -> str:
    """Write ``text`` (UTF-8) to ``path`` atomically; return the SHA-256 of the bytes written (hex)."""
    path = Path(path)
    data = text.encode("utf-8")
    with write_errors(path):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, FILE_MODE)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return hashlib.sha256(data).hexdigest()


def render_csv(table: pd.DataFrame) -> str:
    """A table as the text of its CSV, floats at full precision (what :func:`write_csv` writes)."""
    return table.to_csv(index=False, float_format=CSV_FLOAT_FORMAT)


def write_csv(path, table: pd.DataFrame) -> dict:
    """Write a table as CSV atomically, floats at full precision; return ``{"rows", "sha256"}`` of the file."""
    sha = atomic_write_text(path, render_csv(table))
    return {"rows": len(table), "sha256": sha}


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


# ---------------------------------------------------------------- refusals

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
    ``finished``), ``"busy"`` (another process is writing it; ``detail``
    holds ``holder``, what its lock file records), ``"reads"`` (it holds
    ``file``, which the command reads as ``role``) or ``"input_changed"``
    (a file the sweep reads, ``file``, has SHA-256 ``new`` now but ``old``
    when the sweep began). A caller that names its options differently
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
        d = self.detail
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
        if self.reason == "busy":
            return f"output folder {where} is being written by {holder_label(d['holder'])}; wait for it to end, or {elsewhere}"
        if self.reason == "reads":   # with or without force: the folder is replaced whole
            return (f"output folder {where} holds {str(d['file'])!r}, which this command reads ({d['role']}); "
                    f"gradlab replaces its output folder whole, so {elsewhere} or move the file out of it")
        if self.reason == "input_changed":
            again = (f"restore it, or pass {force} to start again with this one" if force
                     else f"restore it, or move the folder away or {elsewhere}")
            return (f"{d['role']} file {str(d['file'])!r} changed since the sweep in {where} began "
                    f"(sha256 {d['old'][:16]} then, {str(d['new'])[:16]} now): resuming would mix runs computed "
                    f"from the two; {again}")
        if self.reason == "other_code":   # one line, however long: both fingerprints and the two ways on
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


def _check_target(out: Path) -> None:
    """Refuse a path that is a file, or the current folder or one holding it (before anything is locked)."""
    if out.exists() and not out.is_dir():
        raise GradlabError(f"output path {str(out)!r} exists and is not a folder")
    here = Path.cwd().resolve()
    if out.resolve() == here or out.resolve() in here.parents:
        raise FolderRefused(out, "current")


def check_new_folder(out, force: bool) -> Path:
    """Refuse an existing, non-empty results folder unless ``force``.

    ``force`` deletes what it replaces, so it only ever replaces a folder
    gradlab wrote (one with a ``manifest.json``), never someone's other files,
    and no command writes into the current folder or one that holds it.
    A refusal is a :class:`FolderRefused`.
    """
    out = Path(out)
    _check_target(out)
    if out.is_dir() and any(out.iterdir()):
        if not (out / "manifest.json").is_file():   # with or without force: the message must not offer it
            raise FolderRefused(out, "not_gradlab")
        if not force:
            raise FolderRefused(out, "exists")
    return out


def check_reads(out, reads) -> None:
    """Refuse ``out`` if it is, or holds, a file the command reads: ``reads`` maps paths to roles, or lists paths."""
    where = Path(out).resolve()
    items = reads.items() if isinstance(reads, dict) else ((p, "input") for p in reads)
    for path, role in items:
        if path is None:
            continue
        p = Path(path).resolve()
        if p == where or where in p.parents:
            raise FolderRefused(out, "reads", file=path, role=role)


# ---------------------------------------------------------------- one writer per folder

def lock_path(out) -> Path:
    """The lock file of results folder ``out``: ``.NAME.lock`` beside it (it outlives a --force swap)."""
    out = Path(os.path.abspath(out))
    return Path(os.path.realpath(out.parent)) / f".{out.name}.lock"   # one lock however the parent is spelled


# Locks this process holds: (lock file, thread) → [fd, depth]. A command claims its folder once and the
# writers it calls claim it again (re-entrant); another thread, or another process, is refused.
_HELD: dict[tuple[str, int], list] = {}


def command_line() -> str:
    """The command this process runs, as the user typed it (``gradlab sweep …``)."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else "python"
    name = Path(argv0).name
    if name == "__main__.py":
        name = f"python -m {Path(argv0).parent.name}"
    elif name == "-c":
        name = "python -c …"
    return " ".join([name] + sys.argv[1:])


def holder_label(holder) -> str:
    """``another gradlab process (PID 4242: gradlab sweep … since 2025-01-01 12:00:00+01:00)``."""
    if not isinstance(holder, dict) or "pid" not in holder:
        return "another gradlab process (just starting: it has not yet recorded itself)"
    return f"another gradlab process (PID {holder['pid']}: {holder.get('command', '?')}, since {holder.get('since', '?')})"


def _read_holder(fd: int):
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return json.loads(os.read(fd, 1 << 16).decode("utf-8"))
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (one of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def folder_lock(out):
    """Hold the exclusive lock of results folder ``out`` inside the block (re-entrant within a thread).

    Refused at once, as :class:`FolderRefused` ``"busy"`` naming the holder,
    when another process (or thread) holds it. The lock file is created
    beside ``out`` (so this is the first write, and fails first, when the
    place is not writable) and removed when the lock is released; one left
    by a killed holder is simply taken over (``flock`` locks die with their
    process).
    """
    out = Path(out)
    path = lock_path(out)
    key = (str(path), threading.get_ident())
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield
        finally:
            _HELD[key][1] -= 1
        return
    if fcntl is None:
        yield
        return
    created = _make_parents(path.parent, out)
    fd = None
    try:
        fd = _acquire(path, out)
        _HELD[key] = [fd, 1]
        try:
            yield
        finally:
            del _HELD[key]
            path.unlink(missing_ok=True)   # while holding it: see _acquire
            os.close(fd)
            fd = None
    finally:
        if fd is not None:
            os.close(fd)
        for folder in created:             # nothing was written: leave no empty parents behind
            if not out.exists():
                try:
                    folder.rmdir()
                except OSError:
                    break


def _make_parents(parent: Path, out: Path) -> list[Path]:
    """Create ``parent`` and its missing ancestors; return those created, deepest first."""
    missing = []
    p = parent
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    with write_errors(out):
        parent.mkdir(parents=True, exist_ok=True)
    return missing


def _acquire(path: Path, out: Path) -> int:
    while True:
        try:
            with write_errors(out):
                fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
        except FileNotFoundError:   # a writer that just let go removed the parent it had created
            with write_errors(out):
                path.parent.mkdir(parents=True, exist_ok=True)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise FolderRefused(out, "busy", holder=holder) from None
        except BaseException:
            os.close(fd)
            raise
        # The last holder removes the file before it lets go: if ours is no longer the file at `path`,
        # we locked an orphan, and a third process may hold the new file. Try again.
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    holder = {"pid": os.getpid(), "command": command_line(),
              "since": datetime.now().astimezone().isoformat(sep=" ", timespec="seconds")}
    try:
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(holder).encode("utf-8"))
    except OSError:   # a full disk: the lock holds all the same, only its message says less
        pass
    return fd


def release_inherited_locks() -> None:
    """In a forked child: forget the parent's locks (closing the copies; the parent's stay held).

    Called by sweep pool workers so that a killed sweep's lock is free as soon
    as the sweep itself is gone, not only when its last worker is.
    """
    for fd, _ in _HELD.values():
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


@contextmanager
def claim_folder(out, reads=()):
    """Claim results folder ``out`` for writing, before anything is computed.

    Refuses (one line each) a file or the current folder as ``out``, a folder
    that is or holds a file the command reads (``reads``: paths, or
    ``{path: role}``; :func:`check_reads`), a place that cannot be written,
    and a folder another process is writing (:func:`folder_lock`). Inside the
    block the lock is held; leftovers of killed writers are cleaned first
    (:func:`clean_leftovers`).
    """
    out = Path(out)
    _check_target(out)
    check_reads(out, reads)
    first = (str(lock_path(out)), threading.get_ident()) not in _HELD
    with folder_lock(out):
        if first:
            clean_leftovers(out)
        yield out


# ---------------------------------------------------------------- whole folders

RENAME_EXCHANGE = 2   # linux/fs.h


def _renameat2():
    if not sys.platform.startswith("linux"):
        return None
    try:
        f = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None
    f.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    f.restype = ctypes.c_int
    return f


_RENAMEAT2 = _renameat2()
AT_FDCWD = -100


def exchange(a: Path, b: Path) -> bool:
    """Swap the names of ``a`` and ``b`` in one step (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns False where that is not available (another OS, an old kernel or
    a file system without it); other failures are raised as OSError.
    """
    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def swap_folders(new: Path, out: Path) -> None:
    """Put the complete folder ``new`` at ``out`` and remove what ``out`` held, so ``out`` is never missing.

    With ``renameat2`` the two are exchanged at once and the old one (now at
    ``new``) is deleted. Without it the old one is renamed to
    ``.NAME.old-<pid>`` first; killed between the two renames, the next
    claim of ``out`` puts it back (:func:`clean_leftovers`).
    """
    if not out.exists():
        os.rename(new, out)
        return
    if exchange(new, out):
        shutil.rmtree(new, ignore_errors=True)
        return
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    os.replace(out, old)
    os.replace(new, out)
    shutil.rmtree(old, ignore_errors=True)


def _leftover_pattern(name: str):
    n = re.escape(name)
    # .NAME.<pid>-XXXXXXXX.tmp (this version), .NAME.XXXXXXXX.tmp (before), .NAME.old-<pid>
    return re.compile(rf"\.{n}\.(?:(?P<pid>\d+)-[a-z0-9_]{{8}}|[a-z0-9_]{{8}})\.tmp|\.{n}\.old-(?P<old>\d+)")


def clean_leftovers(out) -> list[Path]:
    """Remove (or, for an old folder whose replacement never arrived, restore) what killed writers of ``out`` left.

    Only called by the holder of ``out``'s lock, so no live writer of ``out``
    owns them; entries named with the PID of a live process are left alone
    all the same. Returns what was removed or restored.
    """
    out = Path(out)
    parent, pattern = out.parent, _leftover_pattern(out.name)
    if not parent.is_dir():
        return []
    touched = []
    for entry in sorted(parent.iterdir()):
        m = pattern.fullmatch(entry.name)
        if m is None:
            continue
        pid = m.group("pid") or m.group("old")
        if pid is not None and int(pid) != os.getpid() and pid_alive(int(pid)):
            continue
        with write_errors(out):
            if m.group("old") is not None and not out.exists():
                os.rename(entry, out)          # killed between the two renames of swap_folders
            elif entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        touched.append(entry)
    return touched


@contextmanager
def results_folder(out, force: bool = False, reads=()):
    """Build a results folder in a temporary sibling and move it into place.

    Yields the temporary folder; on success it replaces ``out`` at once
    (:func:`swap_folders`: the old folder, with ``force``, is removed only
    once the new one is in place). On any error the temporary folder is
    removed and ``out`` is untouched. ``out`` is claimed first
    (:func:`claim_folder`, with the files the command reads), and an
    existing one is refused as :func:`check_new_folder` says.
    """
    with claim_folder(out, reads):
        out = check_new_folder(out, force)
        with replaced_folder(out) as tmp:
            yield tmp


def write_tables(folder: Path, tables: dict) -> dict:
    """Write each table as ``folder/<name>.csv``; return ``{file name: {"rows", "sha256"}}`` (:func:`write_csv`)."""
    return {f"{name}.csv": write_csv(Path(folder) / f"{name}.csv", table) for name, table in tables.items()}


def write_rendered(folder: Path, rendered: dict) -> dict:
    """:func:`write_tables` for tables already rendered, ``{name: (csv text, rows)}`` (:func:`render_csv`)."""
    return {f"{name}.csv": {"rows": rows, "sha256": atomic_write_text(Path(folder) / f"{name}.csv", text)}
            for name, (text, rows) in rendered.items()}


def write_results(out, tables: dict, kind: str, config: dict, force: bool = False, reads=(), **extra) -> Path:
    """Write a results folder: every table as ``<name>.csv`` and a ``manifest.json`` (:func:`manifest`).

    The one writer of results folders (``gradlab run``, ``train``,
    ``lyapunov``): the folder appears complete or not at all, and an existing
    one is refused as :func:`check_new_folder` says unless ``force``;
    ``reads`` are the files the command read (:func:`claim_folder`).
    """
    with results_folder(out, force, reads) as tmp:
        write_tables(tmp, tables)
        write_json(tmp / "manifest.json", manifest(kind, config, **extra))
    return Path(out)


@contextmanager
def replaced_folder(out: Path):
    """Build a folder in a temporary sibling of ``out``, then swap it in for whatever ``out`` holds.

    The temporary folder is ``.NAME.<pid>-XXXXXXXX.tmp``: the PID tells the
    next writer whether its maker is gone (:func:`clean_leftovers`).
    """
    out = Path(out)
    with write_errors(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.{os.getpid()}-", suffix=".tmp"))
    try:
        with write_errors(out):
            tmp.chmod(FOLDER_MODE)
        yield tmp
        with write_errors(out):
            swap_folders(tmp, out)
    except WriteFailed as e:   # name the file as it would have been, not its temporary folder
        shutil.rmtree(tmp, ignore_errors=True)
        if e.path == tmp or tmp in e.path.parents:
            raise WriteFailed(out / e.path.relative_to(tmp), e.error, e.kept) from None
        raise
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
        "command": command_line(),
        "config": config,
        "versions": package_versions(),
        "code": code,
        **extra,
    }
