"""Parameters of a vanilla RNN (PyTorch ``nn.RNN`` convention, column vectors).

Symbols used throughout gradlab::

    n      hidden size            d   input size (or vocabulary size for tokens)
    m      output size            T   sequence length      B   batch size
    a_t  = W_hh h_{t-1} + W_xh x_t + b_h        pre-activation      (B, n)
    h_t  = φ(a_t)                               state               (B, n)
    o_t  = W_hy h_t + b_y                       output              (B, m)
    J_t  = ∂h_t/∂h_{t-1} = diag(φ'(a_t)) W_hh   step Jacobian       (n, n)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..errors import GradlabError

PARAM_NAMES = ("W_xh", "W_hh", "b_h", "W_hy", "b_y")


@dataclass(frozen=True)
class RNNParams:
    """Weights of a one-layer RNN with a linear read-out.

    Attributes
    ----------
    W_xh : (n, d) input weights
    W_hh : (n, n) recurrent weights
    b_h : (n,) hidden bias (PyTorch's ``bias_ih_l0 + bias_hh_l0``)
    W_hy : (m, n) output weights
    b_y : (m,) output bias
    """

    W_xh: np.ndarray
    W_hh: np.ndarray
    b_h: np.ndarray
    W_hy: np.ndarray
    b_y: np.ndarray

    def __post_init__(self):
        n = self.W_hh.shape[0] if self.W_hh.ndim == 2 else -1
        expected = {
            "W_hh": (n, n),
            "W_xh": (n, self.W_xh.shape[-1] if self.W_xh.ndim == 2 else -1),
            "b_h": (n,),
            "W_hy": (self.W_hy.shape[0] if self.W_hy.ndim == 2 else -1, n),
            "b_y": (self.W_hy.shape[0] if self.W_hy.ndim == 2 else -1,),
        }
        for name, shape in expected.items():
            value = getattr(self, name)
            if value.shape != shape or -1 in shape:
                raise GradlabError(f"{name} has shape {value.shape}, expected {shape}")
            if not np.all(np.isfinite(value)):
                raise GradlabError(f"{name} contains non-finite values (nan or inf)")

    @property
    def n(self) -> int:
        return self.W_hh.shape[0]

    @property
    def d(self) -> int:
        return self.W_xh.shape[1]

    @property
    def m(self) -> int:
        return self.W_hy.shape[0]

    def as_dict(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in PARAM_NAMES}

    def replace(self, **arrays: np.ndarray) -> "RNNParams":
        return dataclasses.replace(self, **arrays)
