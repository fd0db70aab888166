"""Reading the numpy files a user brings (weights ``.npz``, inputs ``.npy``), and their fingerprints.

Each reader checks the file's first bytes before numpy guesses at it, so a
wrong or missing file is one line naming it, never a traceback.
"""
from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from ..errors import GradlabError

ZIP_MAGIC = b"PK"                # .npz is a zip archive
NPY_MAGIC = b"\x93NUMPY"


def check_magic(path: Path, magic: bytes, role: str, expected: str) -> None:
    """Refuse a missing file or one of the wrong type before numpy guesses at it.

    Given a .npy where a .npz belongs (or the reverse) ``np.load`` returns the
    other kind of object, and for text it reports "pickled data"; the first
    bytes say what the file is.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(len(magic))
    except FileNotFoundError:
        raise GradlabError(f"{role} file {str(path)!r} does not exist") from None
    except OSError as e:
        raise GradlabError(f"cannot read {role} file {str(path)!r}: {e}") from None
    if head != magic:
        raise GradlabError(f"{role} file {str(path)!r} is not a {expected}")


def read_arrays(path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` weights file, as float64 (complex numbers are refused)."""
    path = Path(path)
    check_magic(path, ZIP_MAGIC, "weights", ".npz file (numpy.savez)")
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: _real_array(f[k], k, path) for k in f.files}
    except GradlabError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise GradlabError(f"cannot read weights file {str(path)!r}: {e}") from None


def _real_array(value: np.ndarray, key: str, path) -> np.ndarray:
    """One array of a weights file as float64; complex numbers are refused, not cut to their real part."""
    if np.iscomplexobj(value):
        raise GradlabError(f"weights file {str(path)!r}: {key} holds complex numbers ({value.dtype}), "
                           "expected real ones")
    return np.asarray(value, dtype=np.float64)


def load_inputs(path) -> np.ndarray:
    """Read an input sequence from ``.npy``: (T, d) / (B, T, d) real or (T,) / (B, T) token ids."""
    path = Path(path)
    check_magic(path, NPY_MAGIC, "input", ".npy file (numpy.save)")
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise GradlabError(f"cannot read input file {str(path)!r}: {e}") from None
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise GradlabError(f"input file {str(path)!r} holds {x.dtype}, expected floats or integer token ids")
    return x


def file_sha256(path) -> str:
    """SHA-256 of a file's bytes (hex): which weights or inputs a run read, whatever the file is called now."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
