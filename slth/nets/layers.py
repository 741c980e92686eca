"""The layer types of fully connected networks: :class:`Dense` and :class:`ReLU`.

Each is a frozen spec (see :class:`slth.nets.base.Layer`): shapes and float64
numpy arithmetic, batch first, no arrays of its own. Conv, pooling, flattening
and attention layers join this module as their issues land.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ..errors import InputError, ShapeError
from .base import Layer, Shape, register_layer

__all__ = ["Dense", "ReLU"]


def _check_width(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < 1:
        raise InputError(f"`{name}` must be an int >= 1; received {value!r}")
    return int(value)


@register_layer("dense")
@dataclasses.dataclass(frozen=True)
class Dense(Layer):
    """Affine layer ``x -> x @ weight.T + bias`` (``torch.nn.Linear``'s layout, out x in).

    Parameters
    ----------
    d_in, d_out : int
        Input and output widths, >= 1.
    bias : bool, default True
        Whether the layer has a ``"bias"`` parameter (as ``torch.nn.Linear``).

    Notes
    -----
    Parameters: ``"weight"`` of shape ``(d_out, d_in)`` and, with ``bias``,
    ``"bias"`` of shape ``(d_out,)``. The weight may be any ``scipy.sparse``
    matrix (CSR or CSC best): the product then runs over the stored entries
    only (scipy's CSR kernels), which pays when few are kept. The dense path is
    ``x @ weight.T`` then ``+= bias``, the BLAS call of
    :meth:`slth.nets.MLP.forward`, so the two agree bit for bit. The sparse and
    the dense path sum in different orders: they agree to rounding (bit for bit
    where every product and partial sum is exact, e.g. on small integers).

    Per-example inputs may also have leading axes, ``(..., d_in)`` (a sequence
    of ``T`` tokens: ``(T, d_in)``): the layer acts on the last axis, token by
    token, as ``torch.nn.Linear`` does, and outputs ``(..., d_out)``. Such a
    batch is reshaped to ``(batch * ..., d_in)`` for one 2-D product (dense or
    sparse) and back. Vector inputs ``(d_in,)`` take the 2-D path unchanged.
    :meth:`declared_input_shape` stays ``(d_in,)``: a network that takes token
    sequences must be given its ``input_shape``.
    """

    d_in: int
    d_out: int
    bias: bool = True

    sparse_params: ClassVar[frozenset[str]] = frozenset({"weight"})

    def __post_init__(self) -> None:
        object.__setattr__(self, "d_in", _check_width(self.d_in, "d_in"))
        object.__setattr__(self, "d_out", _check_width(self.d_out, "d_out"))
        if not isinstance(self.bias, (bool, np.bool_)):
            raise InputError(f"`bias` must be a bool; received {self.bias!r}")
        object.__setattr__(self, "bias", bool(self.bias))

    def param_specs(self) -> Mapping[str, Shape]:
        specs: dict[str, Shape] = {"weight": (self.d_out, self.d_in)}
        if self.bias:
            specs["bias"] = (self.d_out,)
        return specs

    def declared_input_shape(self) -> Shape:
        return (self.d_in,)

    def output_shape(self, input_shape: Shape) -> Shape:
        shape = tuple(input_shape)
        if len(shape) == 0 or shape[-1] != self.d_in:
            raise ShapeError(
                f"Dense(d_in={self.d_in}) takes inputs of shape ({self.d_in},), or "
                f"(..., {self.d_in}) with the features last; received inputs of shape {shape}"
            )
        return (*shape[:-1], self.d_out)

    def apply(self, params: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
        if x.ndim > 2:  # token sequences: one 2-D product over every position
            lead = x.shape[:-1]
            return self.apply(params, x.reshape(-1, x.shape[-1])).reshape(*lead, self.d_out)
        w = params["weight"]
        if sp.issparse(w):
            y = np.ascontiguousarray((w @ x.T).T)
        else:
            y = x @ w.T
        if self.bias:
            y += params["bias"]
        return y

    def vjp(self, params: Mapping[str, Any], x: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
        if grad_out.ndim > 2:
            lead = grad_out.shape[:-1]
            g = self.vjp(params, x, grad_out.reshape(-1, grad_out.shape[-1]))
            return g.reshape(*lead, self.d_in)
        w = params["weight"]
        if sp.issparse(w):
            return np.ascontiguousarray((w.T @ grad_out.T).T)
        return grad_out @ w

    def __repr__(self) -> str:
        return f"Dense({self.d_in} -> {self.d_out}{'' if self.bias else ', no bias'})"


@register_layer("relu")
@dataclasses.dataclass(frozen=True)
class ReLU(Layer):
    """Elementwise ``max(x, 0)``; no parameters, any input shape.

    The vjp takes the derivative at 0 to be 0 (the gate is ``x > 0``).
    """

    def apply(self, params: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0.0)

    def vjp(self, params: Mapping[str, Any], x: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
        return np.where(x > 0, grad_out, 0.0)

    def __repr__(self) -> str:
        return "ReLU()"
