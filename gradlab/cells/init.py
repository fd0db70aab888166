"""Initialisers for the recurrent matrix W_hh and the other weights.

The point of every initialiser is an exact, known spectrum: a Gaussian matrix
is rescaled so that its spectral radius ρ (or, with ``scale_by="sigma_max"``,
its largest singular value σ_max) equals the requested value to the last digit.
"""
from __future__ import annotations

import numpy as np

from ..errors import check_choice, check_positive_int, check_positive_number
from .params import RNNParams
from ..analysis.spectrum import sigma_max, spectral_radius

INITS = ("gaussian", "orthogonal", "identity")
SCALE_BY = ("radius", "sigma_max")


def init_recurrent(
    n: int,
    init: str = "gaussian",
    radius: float = 1.0,
    rng: np.random.Generator | None = None,
    scale_by: str = "radius",
) -> np.ndarray:
    """Return an (n, n) recurrent matrix with an exact spectral scale.

    Parameters
    ----------
    n : int
        Hidden size.
    init : {"gaussian", "orthogonal", "identity"}
        ``gaussian``: i.i.d. N(0, 1/n) entries (circular law, ρ ≈ 1), non-normal.
        ``orthogonal``: Haar-distributed orthogonal matrix (all |λ| = σ = 1).
        ``identity``: the identity (IRNN, Le et al. 2015).
    radius : float
        Target value of ρ(W_hh) (or of σ_max when ``scale_by="sigma_max"``).
    rng : numpy.random.Generator
    scale_by : {"radius", "sigma_max"}

    Notes
    -----
    For orthogonal and identity matrices ρ = σ_max, so ``scale_by`` only
    matters for the Gaussian init, where σ_max ≈ 2ρ for large n.
    """
    check_positive_int(n, "hidden size n")
    check_positive_number(radius, "radius")
    check_choice(init, INITS, "init")
    check_choice(scale_by, SCALE_BY, "scale_by")
    rng = np.random.default_rng() if rng is None else rng
    if init == "identity":
        return radius * np.eye(n)
    if init == "orthogonal":
        q, r = np.linalg.qr(rng.standard_normal((n, n)))
        return radius * (q * np.sign(np.diag(r)))  # sign fix makes q Haar-distributed
    W = rng.standard_normal((n, n)) / np.sqrt(n)
    current = spectral_radius(W) if scale_by == "radius" else sigma_max(W)
    return W * (radius / current)


def init_params(
    n: int,
    d: int,
    m: int | None = None,
    init: str = "gaussian",
    radius: float = 1.0,
    rng: np.random.Generator | None = None,
    scale_by: str = "radius",
    input_scale: float = 1.0,
) -> RNNParams:
    """Random RNN parameters: W_hh from :func:`init_recurrent`, the rest small.

    ``W_xh`` has i.i.d. N(0, input_scale²/d) entries, ``W_hy`` N(0, 1/n); both
    biases start at zero. ``m`` defaults to ``d`` (next-symbol prediction).
    """
    check_positive_int(d, "input size d")
    m = d if m is None else m
    check_positive_int(m, "output size m")
    rng = np.random.default_rng() if rng is None else rng
    W_hh = init_recurrent(n, init, radius, rng, scale_by)
    return RNNParams(
        W_xh=rng.standard_normal((n, d)) * (input_scale / np.sqrt(d)),
        W_hh=W_hh,
        b_h=np.zeros(n),
        W_hy=rng.standard_normal((m, n)) / np.sqrt(n),
        b_y=np.zeros(m),
    )

