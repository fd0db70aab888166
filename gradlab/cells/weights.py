"""Weights files: PyTorch state dicts saved with ``numpy.savez``, for every cell.

A network trained elsewhere can be analysed::

    np.savez("rnn.npz", **{k: v.numpy() for k, v in rnn.state_dict().items()})

A whole model's state dict works too when the RNN sits under one module
prefix (``rnn.weight_hh_l0``); its read-out is used when named ``fc``.
A stacked network (``*_l0`` … ``*_l{L−1}``) is read into a stacked cell
(``--layers L``, which the file sets); a bidirectional (``*_reverse``) or
projected (``weight_hr_*``) one is refused: gradlab analyses one direction. Which arrays a cell takes is
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

A state dict does not record the RNN's nonlinearity (``nn.RNN(...,
nonlinearity="relu")``); a file may, as a 0-d string entry::

    np.savez("rnn.npz", nonlinearity="relu", **{k: v.numpy() for k, v in rnn.state_dict().items()})

Other keys (an embedding, a BatchNorm's ``num_batches_tracked``, members that
are not arrays) are not read; :class:`WeightsFile` names them. Only real
floating-point arrays are read (:mod:`gradlab.io.files` checks every member
before reading it), and weights whose scale lies outside
[:data:`SMALLEST_SCALE`, :data:`LARGEST_SCALE`] are refused: LAPACK cannot find
the eigenvalues of a matrix of subnormal numbers, and products of entries
beyond 1e300 overflow.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import GradlabError, PathLike, check_positive_number
from ..io.files import (file_sha256, is_torch_file, load_inputs, npz_contents, read_arrays, read_torch_state_dict,  # noqa: F401  (public here before 0.2)
                        read_npz_arrays, read_npz_text)
from .activations import ACTIVATIONS
from .base import read_readout  # noqa: F401  (defined with the protocol, shared by every cell)

if TYPE_CHECKING:
    from .base import Cell
    from .rnn import RNNParams

REQUIRED = ("weight_ih_l0", "weight_hh_l0")


READOUT_KEYS = ("fc.weight", "fc.bias")
NONLINEARITY = "nonlinearity"
SMALLEST_SCALE = 1e-300     # below: a subnormal scale (float64's normal range starts at 2.2e-308)
LARGEST_SCALE = 1e300       # above: products of two entries overflow
TORCH_NAMES = {"rnn": "nn.RNN", "gru": "nn.GRU", "lstm": "nn.LSTM"}
GATE_BLOCKS = {1: "rnn", 3: "gru", 4: "lstm"}     # rows of weight_hh_l0 per hidden unit → the cell


@dataclass(frozen=True)
class WeightsFile:
    """What a weights file holds, read and checked (:func:`read_weights_file`).

    Attributes
    ----------
    path : str
    arrays : dict[str, numpy.ndarray]
        The state-dict arrays a cell reads (``weight_*``, ``bias_*``, ``fc.*``),
        float64, under their names without a module prefix.
    nonlinearity : str or None
        The ``nonlinearity`` entry, when the file records one.
    ignored : tuple of str
        Keys and members that were not read (not part of the recurrent net).
    """

    path: str
    arrays: dict
    nonlinearity: str | None = None
    ignored: tuple[str, ...] = ()

    @property
    def layers(self) -> int:
        """Stacked layers (``num_layers``) the file holds."""
        return state_dict_layers(self.arrays, self.path)

    @property
    def has_readout(self) -> bool:
        return "fc.weight" in self.arrays


def weights_headers(path) -> tuple[dict, dict, tuple[str, ...]]:
    """The headers of a weights file's arrays, no data read: (headers, member keys, ignored).

    ``headers`` maps each key the cells read (module prefix removed) to its
    :class:`~gradlab.io.files.ArrayHeader`, ``member keys`` those keys to the
    members' own names. Refuses a file lacking a required key, an empty
    required array, a bidirectional or projected network, a stack with a missing layer and a bias with more
    entries than any weight matrix has rows (checked before anything is read).
    """
    contents = npz_contents(path)
    prefix = module_prefix(contents.headers, REQUIRED)
    names = {(k[len(prefix):] if prefix and k.startswith(prefix) else k): k for k in contents.headers}
    headers = {key: contents.headers[member] for key, member in names.items()}
    missing = [k for k in REQUIRED if k not in headers]
    if missing:
        raise GradlabError(f"weights file {str(path)!r} lacks {', '.join(missing)} "
                           f"(has: {', '.join(sorted(headers)) or 'nothing'})")
    for key in REQUIRED:
        if headers[key].size == 0:
            raise GradlabError(f"weights file {str(path)!r}: {key} is empty (shape {headers[key].shape})")
    state_dict_layers(headers, path)
    used = [k for k in headers if _LAYER_KEY.match(k) or k in READOUT_KEYS or k == NONLINEARITY]
    rows = max(h.shape[0] for k, h in headers.items() if k in used and len(h.shape) == 2) \
        if any(len(headers[k].shape) == 2 for k in used) else 0
    for key in used:   # a bias longer than every matrix is wrong whatever the cell: refuse it before reading it
        h = headers[key]
        if key != NONLINEARITY and len(h.shape) == 1 and h.size > rows:
            raise GradlabError(f"{key} in {str(path)!r} has shape {h.shape}, expected at most ({rows},) entries "
                               "(the rows of its weight matrix)")
    ignored = tuple(sorted(names[k] for k in headers if k not in used)) + contents.other
    return {k: headers[k] for k in used}, {k: names[k] for k in used}, ignored


def read_weights_file(path, max_bytes: int | None = None) -> WeightsFile:
    """Read and check a weights file: its state-dict arrays, its ``nonlinearity`` entry, what it ignores.

    ``max_bytes`` bounds the memory its arrays take (from their headers,
    before anything is inflated: a zip bomb is refused, not unpacked).
    """
    if is_torch_file(path):                    # torch.save(model.state_dict()): read with weights_only=True
        return torch_weights_file(path)
    headers, members, ignored = weights_headers(path)
    keys = [k for k in headers if k != NONLINEARITY]
    arrays = read_npz_arrays(path, [members[k] for k in keys], max_bytes=max_bytes)
    arrays = {k: arrays[members[k]] for k in keys}
    nonlinearity = None
    if NONLINEARITY in headers:
        nonlinearity = read_npz_text(path, members[NONLINEARITY])
        if nonlinearity not in ACTIVATIONS:
            raise GradlabError(f"weights file {str(path)!r} records nonlinearity {nonlinearity!r}; gradlab knows "
                               f"{', '.join(ACTIVATIONS)}")
    check_weight_scales(arrays, path)
    return WeightsFile(str(path), arrays, nonlinearity, ignored)


def torch_weights_file(path) -> WeightsFile:
    """A :class:`WeightsFile` from a PyTorch state-dict file (no ``nonlinearity`` entry: φ must be stated)."""
    arrays = read_torch_state_dict(path)
    prefix = module_prefix(arrays, REQUIRED)
    arrays = {(k[len(prefix):] if prefix and k.startswith(prefix) else k): v for k, v in arrays.items()}
    missing = [k for k in REQUIRED if k not in arrays]
    if missing:
        raise GradlabError(f"weights file {str(path)!r} lacks {', '.join(missing)} "
                           f"(has: {', '.join(sorted(arrays)) or 'nothing'})")
    state_dict_layers(arrays, path)
    used = {k: v for k, v in arrays.items() if _LAYER_KEY.match(k) or k in READOUT_KEYS}
    check_weight_scales(used, path)
    return WeightsFile(str(path), used, None, tuple(sorted(set(arrays) - set(used))))


def check_weight_scales(arrays: dict, path) -> None:
    """Refuse weights beyond :data:`LARGEST_SCALE`, or a recurrent block of subnormal scale.

    Finite arrays only: non-finite values are the cell's to report (by name).
    A recurrent matrix (``weight_hh_l*``, G stacked n × n gate blocks) whose
    largest |entry| is below :data:`SMALLEST_SCALE` has no computable
    spectrum (LAPACK: "eigenvalues did not converge").
    """
    for key, a in arrays.items():
        if a.size == 0 or not np.all(np.isfinite(a)):
            continue
        top = float(np.max(np.abs(a)))
        if top > LARGEST_SCALE:
            raise GradlabError(f"weights file {str(path)!r}: {key} holds entries up to |w| = {top:.3g}, beyond "
                               f"{LARGEST_SCALE:g}: the products of a forward pass overflow float64; rescale it")
        if key.startswith("weight_hh_l") and a.ndim == 2 and a.shape[1] and a.shape[0] % a.shape[1] == 0:
            blocks = np.abs(a).reshape(-1, a.shape[1], a.shape[1]).max(axis=(1, 2))
            small = blocks[(blocks > 0) & (blocks < SMALLEST_SCALE)]
            if small.size:
                raise GradlabError(f"weights file {str(path)!r}: {key} has entries of at most |w| = {small[0]:.3g}, "
                                   f"a subnormal scale below {SMALLEST_SCALE:g}: its eigenvalues cannot be computed "
                                   "(rescale it, or set it to zero)")


def check_scale(value, name: str) -> None:
    """A spectral or input scale in [:data:`SMALLEST_SCALE`, :data:`LARGEST_SCALE`] (radius, input_scale)."""
    check_positive_number(value, name)
    if not SMALLEST_SCALE <= value <= LARGEST_SCALE:
        raise GradlabError(f"{name} must lie between {SMALLEST_SCALE:g} and {LARGEST_SCALE:g}, got {value!r}: "
                           "weights of that scale are subnormal or overflow float64")


def read_npz(path, required=REQUIRED) -> dict[str, np.ndarray]:
    """The state-dict arrays of a weights file as float64 (:func:`read_weights_file`)."""
    return read_weights_file(path).arrays


_LAYER_KEY = re.compile(r"^(?:weight|bias)_(?:ih|hh|hr)_l(\d+)(_reverse)?$")


def state_dict_layers(keys, path) -> int:
    """How many stacked layers (``num_layers``) a state dict's keys hold; one line refusing what gradlab cannot read.

    PyTorch names layer L's arrays ``*_l{L}``, the backward direction's
    ``*_l{L}_reverse`` and an LSTM's projection ``weight_hr_l{L}``: a
    bidirectional or projected network is refused (reading one direction of
    it would measure a different network than the one that was trained), and
    so is a stack with a missing layer.
    """
    found = {}
    for key in keys:
        if (m := _LAYER_KEY.match(key)):
            found.setdefault(int(m.group(1)), []).append(key)
    reverse = sorted(k for ks in found.values() for k in ks if k.endswith("_reverse"))
    if reverse:
        raise GradlabError(f"weights file {str(path)!r} holds a bidirectional network ({', '.join(reverse[:3])}"
                           f"{', …' if len(reverse) > 3 else ''}): not supported, gradlab analyses one direction")
    projected = sorted(k for ks in found.values() for k in ks if "_hr_" in k)
    if projected:
        raise GradlabError(f"weights file {str(path)!r} holds an LSTM with proj_size > 0 ({projected[0]}): "
                           "not supported")
    layers = 1 + max(found) if found else 1
    missing = [l for l in range(layers) if not any(k.startswith("weight_hh_") for k in found.get(l, []))]
    if missing:
        raise GradlabError(f"weights file {str(path)!r} holds layers up to {layers - 1} but no weight_hh_l{missing[0]}"
                           f": layer {missing[0]} is missing")
    return layers


def strip_module_prefix(arrays: dict, required) -> dict:
    """Accept a whole model's state dict: ``rnn.weight_hh_l0`` → ``weight_hh_l0``.

    When the required keys are absent but appear under exactly one module
    prefix (``model.state_dict()`` of a module holding an ``nn.RNN``), keys
    under that prefix lose it; other keys (e.g. ``fc.weight``) are kept.
    """
    prefix = module_prefix(arrays, required)
    if not prefix:
        return arrays
    return {key[len(prefix):] if key.startswith(prefix) else key: value for key, value in arrays.items()}


def module_prefix(keys, required) -> str:
    """The one module prefix (``"rnn."``) under which all ``required`` keys appear, or ``""``."""
    if all(k in keys for k in required):
        return ""
    prefixes = {key[: -len(required[0])] for key in keys if key.endswith("." + required[0])}
    prefixes = [p for p in prefixes if all(p + k in keys for k in required)]
    return prefixes[0] if len(prefixes) == 1 else ""


def load_params(cell: Cell, path: PathLike, rng: np.random.Generator | None = None, m: int | None = None) -> Any:
    """Read ``cell``'s parameters from a PyTorch-named ``.npz`` file (:meth:`Cell.from_state_dict`).

    A missing read-out (``fc.weight``) is drawn N(0, 1/n) from ``rng`` with
    ``m`` outputs (default: d).
    """
    return params_from_file(cell, read_weights_file(path), rng, m)


def params_from_file(cell, weights: WeightsFile, rng: np.random.Generator | None = None, m: int | None = None):
    """``cell``'s parameters from a read :class:`WeightsFile`; a file of another cell is named as such.

    ``weight_hh_l0`` of an ``nn.LSTM`` is 4n × n, of an ``nn.GRU`` 3n × n, of
    an ``nn.RNN`` n × n: a file that is plainly another cell's is refused
    with the ``--cell`` that reads it.
    """
    check_cell_of(cell, weights.arrays["weight_hh_l0"].shape, weights.path)
    layers, wanted = weights.layers, getattr(cell, "L", 1)
    if layers != wanted:   # reading only some layers would measure another network than the one trained
        extra = sorted(k for k in weights.arrays if _LAYER_KEY.match(k) and int(_LAYER_KEY.match(k).group(1)) >= wanted)
        shown = ", ".join(extra[:3]) + (", …" if len(extra) > 3 else "")
        raise GradlabError(f"weights file {weights.path!r} holds a {layers}-layer network"
                           + (f" ({shown})" if shown else "") + f", not {wanted}: read it with layers = {layers} "
                           f"(--layers {layers}; make_cell(..., layers={layers}))")
    return cell.from_state_dict(weights.arrays, weights.path, rng, m)


def check_cell_of(cell, shape: tuple, path) -> None:
    """Refuse a ``weight_hh_l0`` of shape (G n, n) whose G says it belongs to another cell than ``cell``."""
    name = getattr(cell, "name", None)
    if name not in TORCH_NAMES or len(shape) != 2 or not shape[1] or shape[0] % shape[1]:
        return
    found = GATE_BLOCKS.get(shape[0] // shape[1])
    if found is None or found == name:
        return
    G = shape[0] // shape[1]
    raise GradlabError(f"weights file {str(path)!r} holds an {TORCH_NAMES[found]} state dict (weight_hh_l0 is "
                       f"{f'{G}n' if G > 1 else 'n'} × n = {shape[0]} × {shape[1]}), not an {TORCH_NAMES[name]}'s: "
                       f"analyse it with --cell {found} (cell = \"{found}\" in a sweep file)")


def save_params(cell: Cell, path: PathLike, params: Any) -> None:
    """Write ``cell``'s parameters with PyTorch names, and its nonlinearity when it has one.

    The ``nonlinearity`` entry (the RNN's φ) lets ``gradlab run --weights``
    analyse the file with the φ it was made with; drop it (and ``fc.*``)
    to load the file into the matching ``nn`` module.
    """
    activation = getattr(getattr(cell, "layer", cell), "activation", None)
    extra = {} if activation is None else {NONLINEARITY: getattr(activation, "name", activation)}
    np.savez(path, **extra, **cell.state_dict(params))


def load_weights(path: PathLike, rng: np.random.Generator | None = None, m: int | None = None) -> RNNParams:
    """Read vanilla-RNN parameters (:class:`~gradlab.cells.rnn.RNNParams`) from a ``.npz`` file."""
    from .rnn import RNNCell

    return load_params(RNNCell(), path, rng, m)


def save_weights(path: PathLike, params: RNNParams, activation: str | None = None) -> None:
    """Write vanilla-RNN parameters with PyTorch names (all of b_h goes to ``bias_ih_l0``).

    With ``activation`` the file records it (``nonlinearity``); without, the
    analysis of the file must be told it (``gradlab run --activation``).
    """
    from .rnn import RNNCell

    if activation is None:
        np.savez(path, **RNNCell().state_dict(params))
    else:
        save_params(RNNCell(activation), path, params)
