"""Initialisers for the recurrent matrix W_hh and the other weights.

The point of every initialiser is an exact, known spectrum: a Gaussian matrix
is rescaled so that its spectral radius ρ (or, with ``scale_by="sigma_max"``,
its largest singular value σ_max) equals the requested value to the last digit.
"""
from __future__ import annotations

import numpy as np

from ..errors import check_choice, check_positive_int, check_positive_number
from .activations import ACTIVATIONS

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


def spectral_radius(W: np.ndarray) -> float:
    """ρ(W) = max |λ_i(W)|."""
    return float(np.max(np.abs(np.linalg.eigvals(W))))


def sigma_max(W: np.ndarray) -> float:
    """σ_max(W) = ‖W‖₂, the γ_W of the bound."""
    return float(np.linalg.svd(W, compute_uv=False)[0])


def check_initial_network(config) -> None:
    """Validate the fields every config shares: the initial network and its seed.

    ``activation``, ``init``, ``radius``, ``scale_by``, ``input_scale``, ``seed``
    (:class:`RunConfig` and :class:`gradlab.training.TrainConfig`).
    """
    check_choice(config.activation, ACTIVATIONS, "activation")
    check_choice(config.init, INITS, "init")
    check_positive_number(config.radius, "radius")
    check_choice(config.scale_by, SCALE_BY, "scale_by")
    check_positive_number(config.input_scale, "input_scale")
    check_positive_int(config.seed, "seed", minimum=0)
