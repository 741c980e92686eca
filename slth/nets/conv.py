"""Image layer types: :class:`Conv2d`, :class:`MaxPool2d`, :class:`AvgPool2d`, :class:`Flatten`.

Each is a frozen spec (see :class:`slth.nets.base.Layer`) doing float64 numpy
arithmetic on batches in torch's NCHW layout: a per-example input has shape
``(C, H, W)``. Parameters use torch's layouts (``nn.Conv2d``'s ``weight`` is
``(out, in, kh, kw)``), so torch weights copy over exactly; the torch bridge
entries live in :mod:`slth.torch._conv`.

Arithmetic
----------
Windows are views of the (zero-padded) input made with
``numpy.lib.stride_tricks.sliding_window_view``; a convolution is then one
``numpy.tensordot`` (im2col and a BLAS product), its vjp one ``tensordot`` and
a scatter-add over the ``kh * kw`` kernel offsets (a loop over the kernel,
never over pixels). Sizes follow torch with ``ceil_mode=False``: an output side
is ``(n + 2 * padding - k) // stride + 1``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import InputError, ShapeError, format_value
from .base import Layer, Shape, register_layer

__all__ = ["AvgPool2d", "Conv2d", "Flatten", "MaxPool2d"]

Pair = tuple[int, int]


# ====================================================================== validation
def _is_int(value: Any) -> bool:
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer))


def _check_int(value: Any, name: str, low: int) -> int:
    if not _is_int(value) or value < low:
        raise InputError(f"`{name}` must be an int >= {low}; received {format_value(value)}")
    return int(value)


def _check_pair(value: Any, name: str, low: int) -> Pair:
    """An int or a pair of ints, each >= ``low``, as a pair."""
    if _is_int(value):
        items: tuple[Any, ...] = (value, value)
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        items = tuple(value)
    else:
        items = ()
    if len(items) != 2 or not all(_is_int(v) and v >= low for v in items):
        raise InputError(
            f"`{name}` must be an int >= {low} or a pair of such ints (height, width); "
            f"received {format_value(value)}"
        )
    return int(items[0]), int(items[1])


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"`{name}` must be a bool; received {format_value(value)}")
    return bool(value)


def _image_shape(layer: Layer, input_shape: Shape) -> tuple[int, int, int]:
    shape = tuple(input_shape)
    if len(shape) != 3:
        raise ShapeError(
            f"{layer!r} takes per-example inputs of shape (channels, height, width) (NCHW "
            f"batches); received inputs of shape {shape}"
        )
    return int(shape[0]), int(shape[1]), int(shape[2])


def _out_side(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


def _check_window(layer: Layer, input_shape: Shape, kernel: Pair, stride: Pair,
                  padding: Pair) -> tuple[int, int, int, int, int]:
    """(C, H, W, H_out, W_out); ShapeError if the kernel exceeds the padded input."""
    c, h, w = _image_shape(layer, input_shape)
    hp, wp = h + 2 * padding[0], w + 2 * padding[1]
    if kernel[0] > hp or kernel[1] > wp:
        raise ShapeError(
            f"{layer!r}: `kernel_size` {kernel} is larger than the padded input "
            f"{hp} x {wp} (inputs of shape {tuple(input_shape)}, padding {padding}); the "
            "kernel must fit in the padded height and width"
        )
    return (c, h, w, _out_side(h, kernel[0], stride[0], padding[0]),
            _out_side(w, kernel[1], stride[1], padding[1]))


# ====================================================================== window helpers
def _pad(x: np.ndarray, padding: Pair) -> np.ndarray:
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def _windows(xp: np.ndarray, kernel: Pair, stride: Pair) -> np.ndarray:
    """Read-only view ``(B, C, H_out, W_out, kh, kw)`` of the windows of a padded batch."""
    v = sliding_window_view(xp, kernel, axis=(2, 3))
    return v[:, :, ::stride[0], ::stride[1]]


def _offset_slice(i: int, n_out: int, s: int) -> slice:
    """Input rows hit by kernel row ``i`` over the ``n_out`` output rows (stride ``s``)."""
    return slice(i, i + s * (n_out - 1) + 1, s)


def _scatter(parts: Any, shape: tuple[int, ...], kernel: Pair, stride: Pair, padding: Pair,
             n_out: Pair) -> np.ndarray:
    """Sum ``parts(i, j)`` (``(B, C, H_out, W_out)``) into a padded input gradient, cropped.

    ``parts(i, j)`` is the gradient reaching kernel offset ``(i, j)`` of every
    window; the sum over offsets runs in row-major order.
    """
    b, c, h, w = shape
    ph, pw = padding
    gp = np.zeros((b, c, h + 2 * ph, w + 2 * pw))
    for i in range(kernel[0]):
        rows = _offset_slice(i, n_out[0], stride[0])
        for j in range(kernel[1]):
            gp[:, :, rows, _offset_slice(j, n_out[1], stride[1])] += parts(i, j)
    return np.ascontiguousarray(gp[:, :, ph:ph + h, pw:pw + w])


# ====================================================================== Conv2d
@register_layer("conv2d")
@dataclasses.dataclass(frozen=True)
class Conv2d(Layer):
    """2-D cross-correlation over NCHW batches, as ``torch.nn.Conv2d`` (zero padding).

    Parameters
    ----------
    in_channels, out_channels : int
        Input and output channels, >= 1.
    kernel_size : int or (int, int)
        Kernel height and width, >= 1 (an int for both).
    stride : int or (int, int), default 1
        Steps between windows, >= 1.
    padding : int or (int, int), default 0
        Zeros added on both sides of the height and of the width, >= 0.
    bias : bool, default True
        Whether the layer has a ``"bias"`` parameter.

    Notes
    -----
    Parameters: ``"weight"`` of shape ``(out_channels, in_channels, kh, kw)``
    and, with ``bias``, ``"bias"`` of shape ``(out_channels,)``, torch's
    layout. Inputs ``(C, H, W)`` need ``C == in_channels`` and a kernel that
    fits in the padded input; outputs are ``(out_channels, H_out, W_out)`` with
    ``H_out = (H + 2 * ph - kh) // sh + 1`` (likewise ``W_out``). The fields
    are stored as pairs: ``Conv2d(1, 2, 3).kernel_size == (3, 3)``.

    ``apply`` is one ``tensordot`` of the windows with the weight (BLAS sums
    in its own order: it agrees with a loop over the window to rounding);
    ``vjp`` (with respect to the input) is ``grad_out`` contracted with the
    weight, scattered back over the kernel offsets.
    """

    in_channels: int
    out_channels: int
    kernel_size: Pair
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    bias: bool = True

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "in_channels", _check_int(self.in_channels, "in_channels", 1))
        set_(self, "out_channels", _check_int(self.out_channels, "out_channels", 1))
        set_(self, "kernel_size", _check_pair(self.kernel_size, "kernel_size", 1))
        set_(self, "stride", _check_pair(self.stride, "stride", 1))
        set_(self, "padding", _check_pair(self.padding, "padding", 0))
        set_(self, "bias", _check_bool(self.bias, "bias"))

    def param_specs(self) -> Mapping[str, Shape]:
        specs: dict[str, Shape] = {
            "weight": (self.out_channels, self.in_channels, *self.kernel_size)}
        if self.bias:
            specs["bias"] = (self.out_channels,)
        return specs

    def output_shape(self, input_shape: Shape) -> Shape:
        c, _, _, ho, wo = _check_window(self, input_shape, self.kernel_size, self.stride,
                                        self.padding)
        if c != self.in_channels:
            raise ShapeError(
                f"{self!r} takes inputs with in_channels={self.in_channels} channels; received "
                f"inputs of shape {tuple(input_shape)} ({c} channels)"
            )
        return (self.out_channels, ho, wo)

    def apply(self, params: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
        win = _windows(_pad(x, self.padding), self.kernel_size, self.stride)
        # (B, H_out, W_out, O) -> (B, O, H_out, W_out)
        y = np.tensordot(win, params["weight"], axes=([1, 4, 5], [1, 2, 3]))
        y = np.ascontiguousarray(y.transpose(0, 3, 1, 2))
        if self.bias:
            y += params["bias"][:, None, None]
        return y

    def vjp(self, params: Mapping[str, Any], x: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
        # (B, H_out, W_out, C, kh, kw): the gradient reaching each window entry
        cols = np.tensordot(grad_out, params["weight"], axes=([1], [0]))
        n_out = (int(grad_out.shape[2]), int(grad_out.shape[3]))
        return _scatter(lambda i, j: cols[..., i, j].transpose(0, 3, 1, 2), x.shape,
                        self.kernel_size, self.stride, self.padding, n_out)

    def __repr__(self) -> str:
        extra = "" if self.bias else ", no bias"
        return (f"Conv2d({self.in_channels} -> {self.out_channels}, kernel_size="
                f"{self.kernel_size}, stride={self.stride}, padding={self.padding}{extra})")


# ====================================================================== pooling
def _pool_fields(layer: Layer) -> None:
    set_ = object.__setattr__
    kernel = _check_pair(layer.kernel_size, "kernel_size", 1)  # type: ignore[attr-defined]
    set_(layer, "kernel_size", kernel)
    stride = layer.stride  # type: ignore[attr-defined]
    set_(layer, "stride", kernel if stride is None else _check_pair(stride, "stride", 1))


@register_layer("max_pool2d")
@dataclasses.dataclass(frozen=True)
class MaxPool2d(Layer):
    """Maximum over each window of every channel, as ``torch.nn.MaxPool2d`` (no padding).

    Parameters
    ----------
    kernel_size : int or (int, int)
        Window height and width, >= 1.
    stride : int or (int, int), optional
        Steps between windows, >= 1; default the kernel size (stored so:
        ``MaxPool2d(2) == MaxPool2d(2, 2)``).

    Notes
    -----
    No parameters. Inputs ``(C, H, W)`` with the window fitting in ``H x W``;
    outputs ``(C, H_out, W_out)``, ``H_out = (H - kh) // sh + 1``.

    The vjp routes each output's gradient to the arg-max of its window; on
    ties, to the first maximal entry in row-major order of the window (as
    ``numpy.argmax``, and torch's CPU kernel). Overlapping windows
    (``stride < kernel_size``) add their gradients.
    """

    kernel_size: Pair
    stride: Pair | None = None

    def __post_init__(self) -> None:
        _pool_fields(self)

    def output_shape(self, input_shape: Shape) -> Shape:
        c, _, _, ho, wo = _check_window(self, input_shape, self.kernel_size, self.stride,
                                        (0, 0))
        return (c, ho, wo)

    def _flat_windows(self, x: np.ndarray) -> np.ndarray:
        win = _windows(x, self.kernel_size, self.stride)
        return win.reshape(*win.shape[:4], -1)

    def apply(self, params: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self._flat_windows(x).max(axis=-1))

    def vjp(self, params: Mapping[str, Any], x: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
        arg = self._flat_windows(x).argmax(axis=-1)
        kw = self.kernel_size[1]
        n_out = (int(grad_out.shape[2]), int(grad_out.shape[3]))
        return _scatter(lambda i, j: np.where(arg == i * kw + j, grad_out, 0.0), x.shape,
                        self.kernel_size, self.stride, (0, 0), n_out)

    def __repr__(self) -> str:
        return f"MaxPool2d(kernel_size={self.kernel_size}, stride={self.stride})"


@register_layer("avg_pool2d")
@dataclasses.dataclass(frozen=True)
class AvgPool2d(Layer):
    """Mean over each window of every channel, as ``torch.nn.AvgPool2d`` (no padding).

    Parameters
    ----------
    kernel_size : int or (int, int)
        Window height and width, >= 1.
    stride : int or (int, int), optional
        Steps between windows, >= 1; default the kernel size.

    Notes
    -----
    No parameters; shapes as :class:`MaxPool2d`. ``apply`` adds the window's
    entries in row-major order and divides by ``kh * kw``; the vjp spreads
    ``grad_out / (kh * kw)`` over each window (overlaps add).
    """

    kernel_size: Pair
    stride: Pair | None = None

    def __post_init__(self) -> None:
        _pool_fields(self)

    def output_shape(self, input_shape: Shape) -> Shape:
        c, _, _, ho, wo = _check_window(self, input_shape, self.kernel_size, self.stride,
                                        (0, 0))
        return (c, ho, wo)

    def apply(self, params: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
        win = _windows(x, self.kernel_size, self.stride)
        kh, kw = self.kernel_size
        acc = np.zeros(win.shape[:4])
        for i in range(kh):
            for j in range(kw):
                acc += win[..., i, j]
        acc /= kh * kw
        return acc

    def vjp(self, params: Mapping[str, Any], x: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
        kh, kw = self.kernel_size
        g = grad_out / (kh * kw)
        n_out = (int(grad_out.shape[2]), int(grad_out.shape[3]))
        return _scatter(lambda i, j: g, x.shape, self.kernel_size, self.stride, (0, 0), n_out)

    def __repr__(self) -> str:
        return f"AvgPool2d(kernel_size={self.kernel_size}, stride={self.stride})"


# ====================================================================== Flatten
@register_layer("flatten")
@dataclasses.dataclass(frozen=True)
class Flatten(Layer):
    """Per-example inputs of any shape to vectors, row-major (``torch.flatten(x, 1)``).

    Notes
    -----
    No parameters. ``(C, H, W) -> (C * H * W,)``; the entry ``(c, h, w)``
    goes to ``c * H * W + h * W + w``, as ``torch.nn.Flatten()``.
    """

    def output_shape(self, input_shape: Shape) -> Shape:
        shape = tuple(input_shape)
        if len(shape) == 0:
            raise ShapeError(
                "Flatten() takes per-example inputs with at least one axis; received inputs "
                "of shape ()"
            )
        return (int(np.prod(shape)),)

    def apply(self, params: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x).reshape(x.shape[0], -1).copy()

    def vjp(self, params: Mapping[str, Any], x: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(grad_out).reshape(x.shape).copy()

    def __repr__(self) -> str:
        return "Flatten()"
