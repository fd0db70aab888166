"""Weights files: PyTorch state dicts saved with ``numpy.savez``, for every cell.

A network trained elsewhere can be analysed::

    np.savez("rnn.npz", **{k: v.numpy() for k, v in rnn.state_dict().items()})

A whole model's state dict works too when the RNN sits under one module
prefix (``rnn.weight_hh_l0``); its read-out is used when named ``fc``.
A stacked (``*_l1``, …) or bidirectional (``*_reverse``) network is refused:
gradlab analyses one layer in one direction. Which arrays a cell takes is
the cell's own business (``Cell.from_state_dict``); for the vanilla RNN:

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

An LSTM or GRU has the same keys with G = 4 or 3 gate blocks stacked in
PyTorch's order (:mod:`gradlab.cells.gated`).
"""
from __future__ import annotations

import re

import numpy as np

from ..errors import GradlabError
from ..io.files import file_sha256, load_inputs, read_arrays  # noqa: F401  (public here before 0.2)

REQUIRED = ("weight_ih_l0", "weight_hh_l0")


def read_npz(path, required=REQUIRED) -> dict[str, np.ndarray]:
    """All arrays of a weights file as float64, checking that ``required`` keys are present."""
    arrays = strip_module_prefix(read_arrays(path), required)
    missing = [k for k in required if k not in arrays]
    if missing:
        raise GradlabError(f"weights file {str(path)!r} lacks {', '.join(missing)} (has: {', '.join(sorted(arrays)) or 'nothing'})")
    for key in required:
        if arrays[key].size == 0:
            raise GradlabError(f"weights file {str(path)!r}: {key} is empty (shape {arrays[key].shape})")
    check_one_layer(arrays, path)
    return arrays


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


def load_params(cell, path, rng: np.random.Generator | None = None, m: int | None = None):
    """Read ``cell``'s parameters from a PyTorch-named ``.npz`` file (:meth:`Cell.from_state_dict`).

    A missing read-out (``fc.weight``) is drawn N(0, 1/n) from ``rng`` with
    ``m`` outputs (default: d).
    """
    return cell.from_state_dict(read_npz(path, REQUIRED), str(path), rng, m)


def save_params(cell, path, params) -> None:
    """Write ``cell``'s parameters with PyTorch names (loadable into the matching ``nn`` module)."""
    np.savez(path, **cell.state_dict(params))


def load_weights(path, rng: np.random.Generator | None = None, m: int | None = None):
    """Read vanilla-RNN parameters (:class:`~gradlab.cells.rnn.RNNParams`) from a ``.npz`` file."""
    from .rnn import RNNCell

    return load_params(RNNCell(), path, rng, m)


def save_weights(path, params) -> None:
    """Write vanilla-RNN parameters with PyTorch names (all of b_h goes to ``bias_ih_l0``)."""
    from .rnn import RNNCell

    save_params(RNNCell(), path, params)
