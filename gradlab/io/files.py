"""Reading the numpy files a user brings (weights ``.npz``, inputs ``.npy``), and their fingerprints.

Each reader checks a file before numpy allocates anything for it, so a
wrong, malformed or hostile file is one line naming it, never a traceback,
a ``MemoryError`` or a hang:

* the first bytes say what the file is: a ``.npy``, a zip archive (``.npz``),
  or a pickle; a ``torch.save`` file (a pickle, or a zip holding
  ``data.pkl``) gets a line saying how to convert it;
* a ``.npz`` is read from its zip central directory: a member named twice is
  refused (which copy numpy would read is arbitrary), and every member's
  ``.npy`` header (shape, dtype) is read on its own and checked against the
  member's uncompressed size before any data is, so a header claiming more
  data than the member holds is refused, and the uncompressed size of what
  is read can be bounded (``max_bytes``) before a highly compressed member
  (a zip bomb) is inflated;
* only real floating-point arrays are read as weights, and floats or
  integers as inputs (integers are token ids); datetime, timedelta, bool,
  complex, structured, text and object arrays are refused, never cast.
"""
from __future__ import annotations

import hashlib
import io
import math
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import GradlabError, PathLike

ZIP_MAGIC = b"PK"                # .npz is a zip archive
NPY_MAGIC = b"\x93NUMPY"
PICKLE_MAGIC = b"\x80"           # pickle protocol ≥ 2: torch.save before PyTorch 1.6, or any pickle
HEADER_BYTES = 1 << 16           # a .npy header is read from at most this many leading bytes
TEXT_BYTES = 1 << 12             # largest text entry (``nonlinearity``) read from a weights file
TORCH_HINT = ("convert it with PyTorch and numpy: "
              "np.savez('rnn.npz', **{k: v.numpy() for k, v in torch.load(PATH).items()}) for a state dict "
              "(in Python, gradlab.torch.read_state_dict(PATH) reads it)")


@dataclass(frozen=True)
class ArrayHeader:
    """What a ``.npy`` header declares: ``shape`` and ``dtype`` (no data read)."""

    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes of data the header claims (a Python int: never overflows)."""
        return self.size * self.dtype.itemsize


def format_bytes(n: int | float) -> str:
    """1234567 → '1.18 MiB' (binary units, as numpy's MemoryError and ``free -h``)."""
    n = float(min(n, 1e300))
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if n < 1024 or unit == "EiB":
            break
        n /= 1024
    return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.3g} {unit}"


def _head(path: Path, role: str, n: int = 8) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except FileNotFoundError:
        raise GradlabError(f"{role} file {str(path)!r} does not exist") from None
    except OSError as e:
        raise GradlabError(f"cannot read {role} file {str(path)!r}: {e}") from None


def _torch_file(path: Path, role: str) -> GradlabError:
    return GradlabError(f"{role} file {str(path)!r} is a PyTorch file (torch.save), not a numpy "
                        f"{'.npz' if role == 'weights' else '.npy'}: gradlab reads no pickles; "
                        + TORCH_HINT.replace("PATH", repr(str(path))))


def check_magic(path: Path, magic: bytes, role: str, expected: str) -> None:
    """Refuse a missing file or one of the wrong type before numpy guesses at it.

    Given a .npy where a .npz belongs (or the reverse) ``np.load`` returns the
    other kind of object, and for text it reports "pickled data"; the first
    bytes say what the file is.
    """
    head = _head(Path(path), role)
    if head.startswith(PICKLE_MAGIC):
        raise _torch_file(Path(path), role)
    if not head.startswith(magic):
        raise GradlabError(f"{role} file {str(path)!r} is not a {expected}")


def _parse_header(data: bytes, what: str) -> tuple[ArrayHeader, int]:
    """The header at the start of ``data`` (a .npy file's first bytes) and the offset of the array data."""
    f = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:      # 3.0 (utf-8 field names): no public reader
            shape, fortran, dtype = np.lib.format._read_array_header(f, version)
    except (ValueError, SyntaxError, TypeError, EOFError) as e:
        raise GradlabError(f"{what} has no readable .npy header ({e})") from None
    return ArrayHeader(tuple(int(s) for s in shape), np.dtype(dtype)), f.tell()


def _check_claim(header: ArrayHeader, available: int, what: str) -> None:
    """Refuse a header that claims more data than follows it (before numpy allocates the claim)."""
    if header.dtype.hasobject:
        raise GradlabError(f"cannot read {what}: it holds Python objects (a pickle), which gradlab does not load")
    if header.nbytes > available:
        raise GradlabError(f"{what} claims shape {header.shape} of {header.dtype} ({format_bytes(header.nbytes)}) "
                           f"but holds only {format_bytes(max(available, 0))} of data: the file is truncated or "
                           "its header is wrong")


def _check_bytes(total: int, max_bytes: int | None, what: str) -> None:
    if max_bytes is not None and total > max_bytes:
        raise GradlabError(f"{what} would take {format_bytes(total)} of memory uncompressed, more than the "
                           f"{format_bytes(max_bytes)} available")


# ---------------------------------------------------------------- .npz (weights)

@dataclass(frozen=True)
class NpzContents:
    """The members of an ``.npz`` as its central directory and ``.npy`` headers describe them.

    ``headers`` maps each array's key (member name without ``.npy``) to its
    header; ``other`` names the members that are not arrays (left unread).
    """

    path: Path
    headers: dict[str, ArrayHeader]
    other: tuple[str, ...]


def npz_contents(path, role: str = "weights") -> NpzContents:
    """Read an ``.npz``'s directory and the header of every member; no array data is read.

    Refused with one line: a missing file, one that is not a zip (or is a
    ``torch.save`` file), a member named twice, a member whose header is not
    readable or claims more data than the member holds.
    """
    path = Path(path)
    check_magic(path, ZIP_MAGIC, role, ".npz file (numpy.savez)")
    what = f"{role} file {str(path)!r}"
    try:
        with zipfile.ZipFile(path) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            names = [i.filename for i in infos]
            if any(name == "data.pkl" or name.endswith("/data.pkl") for name in names):
                raise _torch_file(path, role)
            twice = sorted(name for name, count in Counter(names).items() if count > 1)
            if twice:
                raise GradlabError(f"{what} holds {', '.join(twice)} twice (duplicate zip members): which copy "
                                   "numpy would read is arbitrary; write it again with numpy.savez")
            headers, other = {}, []
            for info in infos:
                if not info.filename.endswith(".npy"):
                    other.append(info.filename)
                    continue
                key = info.filename[:-len(".npy")]
                with zf.open(info) as member:
                    head = member.read(min(info.file_size, HEADER_BYTES))
                header, offset = _parse_header(head, f"{what}: member {info.filename!r}")
                _check_claim(header, info.file_size - offset, f"{what}: {key}")
                headers[key] = header
    except GradlabError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, NotImplementedError, RuntimeError) as e:
        raise GradlabError(f"cannot read {what}: {e}") from None
    return NpzContents(path, headers, tuple(other))


def check_real_dtype(dtype: np.dtype, key: str, what: str) -> None:
    """Weights are real floating-point numbers: refuse complex, integer, bool, datetime, structured, text."""
    if dtype.kind == "f":
        return
    if dtype.kind == "c":
        raise GradlabError(f"{what}: {key} holds complex numbers ({dtype}), expected real ones")
    if dtype.hasobject:
        raise GradlabError(f"cannot read {what}: {key} holds Python objects (a pickle), which gradlab does not load")
    raise GradlabError(f"cannot read {what}: {key} holds {dtype} values, not real floating-point numbers")


def read_npz_arrays(path, keys, role: str = "weights", max_bytes: int | None = None,
                    contents: NpzContents | None = None) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of an ``.npz``, as float64, each checked to be real floating-point.

    ``max_bytes`` bounds their total uncompressed size (from the headers,
    before anything is inflated). ``contents`` is :func:`npz_contents` of the
    file when the caller has read it already.
    """
    path = Path(path)
    contents = npz_contents(path, role) if contents is None else contents
    what = f"{role} file {str(path)!r}"
    keys = list(keys)
    for key in keys:
        check_real_dtype(contents.headers[key].dtype, key, what)
    _check_bytes(sum(contents.headers[k].size * 8 for k in keys), max_bytes, what)
    out = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for key in keys:
                with zf.open(key + ".npy") as member:
                    value = np.lib.format.read_array(member, allow_pickle=False)
                out[key] = np.asarray(value, dtype=np.float64)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise GradlabError(f"cannot read {what}: {e}") from None
    return out


def read_npz_text(path, key: str, role: str = "weights", contents: NpzContents | None = None) -> str:
    """A text entry of an ``.npz`` (a 0-d string array, as ``np.savez(..., nonlinearity="relu")`` writes)."""
    path = Path(path)
    contents = npz_contents(path, role) if contents is None else contents
    header = contents.headers[key]
    what = f"{role} file {str(path)!r}"
    if header.dtype.kind not in "US" or header.size != 1 or header.nbytes > TEXT_BYTES:
        shown = f"an array of shape {header.shape}" if header.size != 1 else "a number"
        raise GradlabError(f"{what}: {key} must be one string, e.g. np.savez(..., {key}='relu'), "
                           f"got {shown} of {header.dtype}")
    try:
        with zipfile.ZipFile(path) as zf, zf.open(key + ".npy") as member:
            value = np.lib.format.read_array(member, allow_pickle=False).reshape(-1)[0]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise GradlabError(f"cannot read {what}: {e}") from None
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def read_arrays(path, max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` weights file, as float64 (only real floating-point arrays are accepted)."""
    contents = npz_contents(path)
    return read_npz_arrays(path, contents.headers, max_bytes=max_bytes, contents=contents)


# ---------------------------------------------------------------- .npy (inputs)

def npy_header(path, role: str = "input") -> ArrayHeader:
    """The header of a ``.npy`` file, checked against the file's size; no data is read."""
    path = Path(path)
    check_magic(path, NPY_MAGIC, role, ".npy file (numpy.save)")
    what = f"{role} file {str(path)!r}"
    try:
        with open(path, "rb") as f:
            head = f.read(HEADER_BYTES)
        size = path.stat().st_size
    except OSError as e:
        raise GradlabError(f"cannot read {what}: {e}") from None
    header, offset = _parse_header(head, what)
    _check_claim(header, size - offset, what)
    return header


def load_inputs(path: PathLike, max_bytes: int | None = None) -> np.ndarray:
    """Read an input sequence from ``.npy``: (T, d) / (B, T, d) real or (T,) / (B, T) token ids.

    Only floating-point values or integer token ids are accepted (not bool,
    complex, datetime or timedelta, which numpy would cast); ``max_bytes``
    bounds the array's size as float64, checked from the header.
    """
    path = Path(path)
    header = npy_header(path)
    if header.dtype.kind not in "fiu":
        raise GradlabError(f"input file {str(path)!r} holds {header.dtype}, expected floats or integer token ids")
    _check_bytes(header.size * 8, max_bytes, f"input file {str(path)!r}")
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise GradlabError(f"cannot read input file {str(path)!r}: {e}") from None
    return x


def file_sha256(path) -> str:
    """SHA-256 of a file's bytes (hex): which weights or inputs a run read, whatever the file is called now."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_torch_file(path) -> bool:
    """Whether a file is a ``torch.save`` file: a pickle, or a zip holding ``data.pkl`` (PyTorch ≥ 1.6)."""
    path = Path(path)
    head = _head(path, "weights")
    if head.startswith(PICKLE_MAGIC):
        return True
    if not head.startswith(ZIP_MAGIC):
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n == "data.pkl" or n.endswith("/data.pkl") for n in zf.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def read_torch_state_dict(path) -> dict[str, np.ndarray]:
    """The arrays of a ``torch.save(model.state_dict(), path)`` file, float64, read with ``weights_only=True``.

    Needs PyTorch (``pip install "gradlab[torch]"``). A file holding pickled
    code or objects (``torch.save(model)``) is refused in one line: gradlab
    never unpickles anything but tensors.
    """
    try:
        import torch
    except ImportError:
        raise GradlabError(f"weights file {str(path)!r} is a PyTorch file: reading it needs PyTorch "
                           '(pip install "gradlab[torch]"), or convert it: '
                           + TORCH_HINT.replace("PATH", repr(str(path)))) from None
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise GradlabError(f"weights file {str(path)!r} does not exist") from None
    except Exception as e:   # torch raises UnpicklingError, RuntimeError, … for what it will not load
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise GradlabError(f"cannot read {str(path)!r} as a PyTorch state dict with weights_only=True "
                           f"(save model.state_dict(), not the model): {first}") from None
    if not isinstance(state, dict) or not all(hasattr(v, "detach") for v in state.values()):
        raise GradlabError(f"{str(path)!r} holds a {type(state).__name__}, not a state dict of tensors "
                           "(torch.save(model.state_dict(), path))")
    arrays = {}
    for key, value in state.items():
        if value.is_complex() or not value.is_floating_point():
            raise GradlabError(f"weights file {str(path)!r}: {key} holds {value.dtype}, expected floating point")
        arrays[key] = value.detach().cpu().double().numpy().copy()
    return arrays
