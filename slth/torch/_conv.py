"""Torch table entries of the image layers of :mod:`slth.nets.conv`.

Registered at import (``slth.torch`` imports this module):

- :class:`~slth.nets.conv.Conv2d` <-> ``nn.Conv2d`` (weights copied exactly,
  same layout);
- :class:`~slth.nets.conv.MaxPool2d` <-> ``nn.MaxPool2d``;
- :class:`~slth.nets.conv.AvgPool2d` <-> ``nn.AvgPool2d``;
- :class:`~slth.nets.conv.Flatten` <-> ``nn.Flatten`` (``start_dim=1, end_dim=-1``).

Reading a module with an option the slth layer does not support (``dilation``
other than 1, ``groups`` other than 1, a ``padding_mode`` other than
``"zeros"``, pooling ``padding``, ``ceil_mode=True``, ``return_indices=True``,
``divisor_override``, a Flatten over other axes) raises
:class:`~slth.errors.InputError` naming the module and the option.
``nn.Conv2d(padding="valid")`` reads as padding 0, ``padding="same"`` as the
symmetric padding it equals (odd kernel sizes only).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from ..nets.base import Layer
from ..nets.conv import AvgPool2d, Conv2d, Flatten, MaxPool2d
from ._table import BuildContext, ReadContext, register_torch_layer

__all__: list[str] = []


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def _unsupported(ctx: ReadContext, module: nn.Module, option: str, value: Any,
                 allowed: str) -> InputError:
    where = f" at `{ctx.path}`" if ctx.path else ""
    return InputError(
        f"`module` {type(module).__name__}{where} has {option}={value!r}, which the slth "
        f"layer does not support; allowed: {allowed}"
    )


# ---------------------------------------------------------------------- Conv2d
def _conv_to_module(layer: Conv2d, params: Mapping[str, Any], ctx: BuildContext) -> nn.Module:
    conv = nn.utils.skip_init(
        nn.Conv2d, layer.in_channels, layer.out_channels, layer.kernel_size,
        stride=layer.stride, padding=layer.padding, bias=layer.bias,
        device=ctx.device, dtype=ctx.dtype,
    )
    with torch.no_grad():
        conv.weight.copy_(ctx.tensor(params["weight"]))
        if layer.bias:
            conv.bias.copy_(ctx.tensor(params["bias"]))
    return conv


def _conv_padding(m: nn.Conv2d, ctx: ReadContext, kernel: tuple[int, int]) -> tuple[int, int]:
    padding = m.padding
    if padding == "valid":
        return (0, 0)
    if padding == "same":
        if any((k - 1) % 2 for k in kernel):
            raise _unsupported(ctx, m, "padding", "same",
                               "'same' with odd kernel sizes only (symmetric zero padding), "
                               f"kernel_size={kernel}")
        return ((kernel[0] - 1) // 2, (kernel[1] - 1) // 2)
    return _pair(padding)


def _conv_from_module(m: nn.Module, ctx: ReadContext) -> tuple[Layer, dict[str, np.ndarray]]:
    if _pair(m.dilation) != (1, 1):
        raise _unsupported(ctx, m, "dilation", m.dilation, "1")
    if int(m.groups) != 1:
        raise _unsupported(ctx, m, "groups", m.groups, "1")
    if m.padding_mode != "zeros":
        raise _unsupported(ctx, m, "padding_mode", m.padding_mode, "'zeros'")
    kernel = _pair(m.kernel_size)
    layer = Conv2d(int(m.in_channels), int(m.out_channels), kernel, stride=_pair(m.stride),
                   padding=_conv_padding(m, ctx, kernel), bias=m.bias is not None)
    params = {"weight": ctx.array(m.weight)}
    if m.bias is not None:
        params["bias"] = ctx.array(m.bias)
    return layer, params


# ---------------------------------------------------------------------- pooling
def _check_pool(m: nn.Module, ctx: ReadContext) -> None:
    if _pair(m.padding) != (0, 0):
        raise _unsupported(ctx, m, "padding", m.padding, "0")
    if bool(m.ceil_mode):
        raise _unsupported(ctx, m, "ceil_mode", m.ceil_mode, "False")


def _max_pool_from_module(m: nn.Module, ctx: ReadContext
                          ) -> tuple[Layer, dict[str, np.ndarray]]:
    _check_pool(m, ctx)
    if _pair(m.dilation) != (1, 1):
        raise _unsupported(ctx, m, "dilation", m.dilation, "1")
    if bool(m.return_indices):
        raise _unsupported(ctx, m, "return_indices", m.return_indices, "False")
    kernel = _pair(m.kernel_size)
    stride = kernel if m.stride is None else _pair(m.stride)
    return MaxPool2d(kernel, stride), {}


def _avg_pool_from_module(m: nn.Module, ctx: ReadContext
                          ) -> tuple[Layer, dict[str, np.ndarray]]:
    # count_include_pad only matters with padding, which is refused: either value reads
    _check_pool(m, ctx)
    if m.divisor_override is not None:
        raise _unsupported(ctx, m, "divisor_override", m.divisor_override, "None")
    kernel = _pair(m.kernel_size)
    stride = kernel if m.stride is None else _pair(m.stride)
    return AvgPool2d(kernel, stride), {}


# ---------------------------------------------------------------------- Flatten
def _flatten_from_module(m: nn.Module, ctx: ReadContext
                         ) -> tuple[Layer, dict[str, np.ndarray]]:
    if int(m.start_dim) != 1:
        raise _unsupported(ctx, m, "start_dim", m.start_dim, "1")
    if int(m.end_dim) != -1:
        raise _unsupported(ctx, m, "end_dim", m.end_dim, "-1")
    return Flatten(), {}


register_torch_layer(Conv2d, to_module=_conv_to_module, from_module=_conv_from_module,
                     module_type=nn.Conv2d)
register_torch_layer(
    MaxPool2d,
    to_module=lambda layer, params, ctx: nn.MaxPool2d(layer.kernel_size, layer.stride),
    from_module=_max_pool_from_module, module_type=nn.MaxPool2d)
register_torch_layer(
    AvgPool2d,
    to_module=lambda layer, params, ctx: nn.AvgPool2d(layer.kernel_size, layer.stride),
    from_module=_avg_pool_from_module, module_type=nn.AvgPool2d)
register_torch_layer(Flatten, to_module=lambda layer, params, ctx: nn.Flatten(),
                     from_module=_flatten_from_module, module_type=nn.Flatten)
