"""Weights and input files shared with PyTorch.

Weights are ``.npz`` files with PyTorch ``nn.RNN`` state-dict names, so a
network trained elsewhere can be analysed::

    np.savez("rnn.npz", **{k: v.numpy() for k, v in rnn.state_dict().items()})

A whole model's state dict works too when the RNN sits under one module
prefix (``rnn.weight_hh_l0``); its read-out is used when named ``fc``.
A stacked (``*_l1``, …) or bidirectional (``*_reverse``) network is refused:
gradlab analyses one layer in one direction.

=================  =======  ==========================================
key                shape    meaning
=================  =======  ==========================================
``weight_ih_l0``   (n, d)   W_xh (required)
``weight_hh_l0``   (n, n)   W_hh (required)
``bias_ih_l0``     (n,)     added to b_h (optional, default 0)
``bias_hh_l0``     (n,)     added to b_h (optional, default 0)
``fc.weight``      (m, n)   read-out W_hy (optional; random if absent)
``fc.bias``        (m,)     read-out b_y (optional, default 0)
=================  =======  ==========================================
"""
from __future__ import annotations

import hashlib
import re
import zipfile
from pathlib import Path

import numpy as np

from ..errors import GradlabError
from .params import RNNParams

REQUIRED = ("weight_ih_l0", "weight_hh_l0")
ZIP_MAGIC = b"PK"                # .npz is a zip archive
NPY_MAGIC = b"\x93NUMPY"


def _check_magic(path: Path, magic: bytes, role: str, expected: str) -> None:
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


def load_weights(path, rng: np.random.Generator | None = None, m: int | None = None) -> RNNParams:
    """Read RNN parameters from a PyTorch-named ``.npz`` file.

    A missing read-out (``fc.weight``) is drawn N(0, 1/n) from ``rng`` with
    ``m`` outputs (default: d).
    """
    arrays = read_npz(path, REQUIRED)
    W_xh, W_hh = arrays["weight_ih_l0"], arrays["weight_hh_l0"]
    if W_hh.ndim != 2 or W_hh.shape[0] != W_hh.shape[1]:
        raise GradlabError(f"weight_hh_l0 in {str(path)!r} must be square (n, n), got {W_hh.shape}")
    n = W_hh.shape[0]
    b_h = np.zeros(n)
    for key in ("bias_ih_l0", "bias_hh_l0"):
        if key in arrays:
            if arrays[key].shape != (n,):
                raise GradlabError(f"{key} in {str(path)!r} has shape {arrays[key].shape}, expected ({n},)")
            b_h = b_h + arrays[key]
    W_hy, b_y = read_readout(arrays, n, W_xh.shape[1] if W_xh.ndim == 2 else 1, rng, m)
    try:
        return RNNParams(W_xh=W_xh, W_hh=W_hh, b_h=b_h, W_hy=W_hy, b_y=b_y)
    except GradlabError as e:
        raise GradlabError(f"weights file {str(path)!r}: {e}") from None


def read_npz(path, required=REQUIRED) -> dict[str, np.ndarray]:
    """All arrays of a weights file as float64, checking that ``required`` keys are present."""
    path = Path(path)
    _check_magic(path, ZIP_MAGIC, "weights", ".npz file (numpy.savez)")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: _real_array(f[k], k, path) for k in f.files}
    except GradlabError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise GradlabError(f"cannot read weights file {str(path)!r}: {e}") from None
    arrays = strip_module_prefix(arrays, required)
    missing = [k for k in required if k not in arrays]
    if missing:
        raise GradlabError(f"weights file {str(path)!r} lacks {', '.join(missing)} (has: {', '.join(sorted(arrays)) or 'nothing'})")
    for key in required:
        if arrays[key].size == 0:
            raise GradlabError(f"weights file {str(path)!r}: {key} is empty (shape {arrays[key].shape})")
    check_one_layer(arrays, path)
    return arrays


def _real_array(value: np.ndarray, key: str, path) -> np.ndarray:
    """One array of a weights file as float64; complex numbers are refused, not cut to their real part."""
    if np.iscomplexobj(value):
        raise GradlabError(f"weights file {str(path)!r}: {key} holds complex numbers ({value.dtype}), "
                           "expected real ones")
    return np.asarray(value, dtype=np.float64)


_LAYER_KEY = re.compile(r"^(?:weight|bias)_(?:ih|hh|hr)_l(\d+)(_reverse)?$")


def check_one_layer(arrays: dict, path) -> None:
    """Refuse the state dict of a stacked (``num_layers > 1``) or bidirectional network.

    PyTorch names layer L's arrays ``*_l{L}`` and the backward direction's
    ``*_l{L}_reverse``. gradlab analyses one layer in one direction; reading
    only the ``*_l0`` arrays of a deeper network would measure the Jacobians
    of a different network than the one that was trained.
    """
    extra = sorted(k for k in arrays if (m := _LAYER_KEY.match(k)) and (m.group(1) != "0" or m.group(2)))
    if not extra:
        return
    layers = 1 + max(int(_LAYER_KEY.match(k).group(1)) for k in extra)
    kind = ", ".join(filter(None, (f"{layers}-layer" if layers > 1 else "",
                                   "bidirectional" if any(k.endswith("_reverse") for k in extra) else "")))
    shown = ", ".join(extra[:4]) + (", …" if len(extra) > 4 else "")
    raise GradlabError(f"weights file {str(path)!r} holds a {kind} network ({shown}); gradlab analyses one "
                       f"layer in one direction: save only the *_l0 arrays (and fc.*) to analyse its first layer")


def strip_module_prefix(arrays: dict, required) -> dict:
    """Accept a whole model's state dict: ``rnn.weight_hh_l0`` → ``weight_hh_l0``.

    When the required keys are absent but appear under exactly one module
    prefix (``model.state_dict()`` of a module holding an ``nn.RNN``), keys
    under that prefix lose it; other keys (e.g. ``fc.weight``) are kept.
    """
    if all(k in arrays for k in required):
        return arrays
    prefixes = {key[: -len(required[0])] for key in arrays if key.endswith("." + required[0])}
    prefixes = [p for p in prefixes if all(p + k in arrays for k in required)]
    if len(prefixes) != 1:
        return arrays
    (prefix,) = prefixes
    return {key[len(prefix):] if key.startswith(prefix) else key: value for key, value in arrays.items()}


def read_readout(arrays: dict, n: int, d: int, rng: np.random.Generator | None, m: int | None):
    """``fc.weight``/``fc.bias`` from a weights file, or W_hy ~ N(0, 1/n) (m outputs, default d) and b_y = 0."""
    if "fc.weight" in arrays:
        W_hy = arrays["fc.weight"]
        return W_hy, arrays.get("fc.bias", np.zeros(W_hy.shape[0] if W_hy.ndim == 2 else 0))
    rng = np.random.default_rng() if rng is None else rng
    m = d if m is None else m
    return rng.standard_normal((m, n)) / np.sqrt(n), np.zeros(m)


def save_weights(path, params: RNNParams) -> None:
    """Write parameters with PyTorch names (all of b_h goes to ``bias_ih_l0``)."""
    np.savez(
        path,
        weight_ih_l0=params.W_xh,
        weight_hh_l0=params.W_hh,
        bias_ih_l0=params.b_h,
        bias_hh_l0=np.zeros_like(params.b_h),
        **{"fc.weight": params.W_hy, "fc.bias": params.b_y},
    )


def load_inputs(path) -> np.ndarray:
    """Read an input sequence from ``.npy``: (T, d) / (B, T, d) real or (T,) / (B, T) token ids."""
    path = Path(path)
    _check_magic(path, NPY_MAGIC, "input", ".npy file (numpy.save)")
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
