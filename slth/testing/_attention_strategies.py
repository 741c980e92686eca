"""Hypothesis strategies for attention layers and normalisation-free transformer networks.

Re-exported by :mod:`slth.testing.strategies`; see :func:`attention_layers` and
:func:`transformer_networks`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from hypothesis.strategies import SearchStrategy

from ..errors import InputError
from ..nets.attention import MultiHeadAttention, transformer_block
from ..nets.base import Architecture, Layer, Network
from ._checks import check_int as _check_int
from ._checks import elements as _elements

__all__ = ["attention_layers", "transformer_networks"]

_MASK_KINDS = ("none", "causal", "table")


def _check_kinds(masks: Any) -> tuple[str, ...]:
    kinds = (masks,) if isinstance(masks, str) else tuple(masks) \
        if isinstance(masks, (tuple, list)) else None
    if not kinds or any(k not in _MASK_KINDS for k in kinds):
        raise InputError(
            f"`masks` must be a non-empty sequence of {_MASK_KINDS}; received {masks!r}"
        )
    return kinds


@st.composite
def _table_masks(draw: st.DrawFn, length: int) -> tuple[tuple[bool, ...], ...]:
    """A ``length x length`` table of bools with at least one True per row."""
    rows = []
    for _ in range(length):
        row = draw(st.lists(st.booleans(), min_size=length, max_size=length))
        if not any(row):
            row[draw(st.integers(0, length - 1))] = True
        rows.append(tuple(row))
    return tuple(rows)


def _mask(draw: st.DrawFn, kinds: tuple[str, ...], length: int) -> Any:
    kind = draw(st.sampled_from(kinds))
    if kind == "none":
        return None
    if kind == "causal":
        return "causal"
    return draw(_table_masks(length))


def attention_layers(
    *,
    max_width: int = 4,
    max_heads: int = 3,
    max_head_width: int = 3,
    max_len: int = 5,
    d_in: int | None = None,
    d_out: int | None = None,
    masks: Any = _MASK_KINDS,
    bias: bool | None = None,
    scale: bool = True,
) -> SearchStrategy[MultiHeadAttention]:
    """Random small :class:`~slth.nets.attention.MultiHeadAttention` specs.

    Parameters
    ----------
    max_width : int, default 4
        Largest ``d_in`` and ``d_out`` drawn (>= 1).
    max_heads : int, default 3
        Largest head count (>= 1).
    max_head_width : int, default 3
        Largest ``d_qk`` and ``d_v`` (>= 1).
    max_len : int, default 5
        Largest size of a table mask (>= 1). A table mask fixes the sequence
        length to its size (``len(layer.mask)``); with ``None`` or
        ``"causal"`` any length works.
    d_in, d_out : int, optional
        Fixed widths (default: drawn in ``1..max_width``).
    masks : sequence of {"none", "causal", "table"}, default all three
        Mask kinds drawn from; tables have at least one True per row.
    bias : bool, optional
        Fixed ``bias`` (default: drawn).
    scale : bool, default True
        Whether an explicit ``scale`` in [0.1, 2] may be drawn (else always
        None, the default ``1 / sqrt(d_qk)``).

    Returns
    -------
    SearchStrategy of MultiHeadAttention
    """
    max_width = _check_int(max_width, "max_width", low=1)
    max_heads = _check_int(max_heads, "max_heads", low=1)
    max_head_width = _check_int(max_head_width, "max_head_width", low=1)
    max_len = _check_int(max_len, "max_len", low=1)
    if d_in is not None:
        d_in = _check_int(d_in, "d_in", low=1)
    if d_out is not None:
        d_out = _check_int(d_out, "d_out", low=1)
    kinds = _check_kinds(masks)
    if bias is not None and not isinstance(bias, (bool, np.bool_)):
        raise InputError(f"`bias` must be None or a bool; received {bias!r}")
    if not isinstance(scale, (bool, np.bool_)):
        raise InputError(f"`scale` must be a bool; received {scale!r}")

    @st.composite
    def build(draw: st.DrawFn) -> MultiHeadAttention:
        def integer(hi: int) -> int:
            return int(draw(st.integers(1, hi)))

        s = None
        if scale and draw(st.booleans()):
            s = float(draw(st.floats(0.1, 2.0, allow_nan=False, allow_infinity=False)))
        return MultiHeadAttention(
            d_in if d_in is not None else integer(max_width),
            d_out if d_out is not None else integer(max_width),
            integer(max_heads), integer(max_head_width), integer(max_head_width),
            scale=s, mask=_mask(draw, kinds, integer(max_len)),
            bias=bool(draw(st.booleans())) if bias is None else bool(bias),
        )

    return build()


def transformer_networks(
    *,
    min_blocks: int = 1,
    max_blocks: int = 2,
    max_width: int = 4,
    max_heads: int = 2,
    max_head_width: int = 3,
    max_ff: int = 6,
    max_len: int = 5,
    masks: Any = _MASK_KINDS,
    bias: bool | None = False,
    elements: SearchStrategy[float] | None = None,
) -> SearchStrategy[Network]:
    """Random :class:`~slth.nets.Network` stacks of normalisation-free transformer blocks.

    Each block is :func:`slth.nets.attention.transformer_block` (Otsuka et al.
    2025's ``F(A + x) + A + x``); the network's ``input_shape`` is ``(T, d)``
    with ``T`` in ``1..max_len`` and ``d`` in ``1..max_width``, shared by the
    blocks. Parameters are drawn entry by entry from ``elements``.

    Parameters
    ----------
    min_blocks, max_blocks : int, default 1, 2
        Range of the number of blocks (``1 <= min <= max``).
    max_width, max_heads, max_head_width, max_ff, max_len : int
        Largest token width ``d``, head count, ``d_qk`` / ``d_v``, hidden
        width of the feed-forward part, and sequence length (each >= 1).
    masks : sequence of {"none", "causal", "table"}, default all three
        Mask kinds of the attention layers (drawn per block).
    bias : bool or None, default False
        Biases on every layer (None: drawn per block).
    elements : strategy of float, optional
        Parameter entries; default finite, non-subnormal floats in [-1, 1].

    Returns
    -------
    SearchStrategy of Network
    """
    min_blocks = _check_int(min_blocks, "min_blocks", low=1)
    max_blocks = _check_int(max_blocks, "max_blocks", low=1)
    if min_blocks > max_blocks:
        raise InputError(f"`min_blocks` must be <= `max_blocks`; received min_blocks="
                         f"{min_blocks}, max_blocks={max_blocks}")
    max_width = _check_int(max_width, "max_width", low=1)
    max_heads = _check_int(max_heads, "max_heads", low=1)
    max_head_width = _check_int(max_head_width, "max_head_width", low=1)
    max_ff = _check_int(max_ff, "max_ff", low=1)
    max_len = _check_int(max_len, "max_len", low=1)
    kinds = _check_kinds(masks)
    if bias is not None and not isinstance(bias, (bool, np.bool_)):
        raise InputError(f"`bias` must be None or a bool; received {bias!r}")
    el = _elements(elements)

    @st.composite
    def build(draw: st.DrawFn) -> Network:
        def integer(hi: int) -> int:
            return int(draw(st.integers(1, hi)))

        t, d = integer(max_len), integer(max_width)
        layers: list[Layer] = []
        for _ in range(draw(st.integers(min_blocks, max_blocks))):
            flag = bool(draw(st.booleans())) if bias is None else bool(bias)
            layers.extend(transformer_block(
                d, integer(max_heads), integer(max_head_width), integer(max_head_width),
                integer(max_ff), mask=_mask(draw, kinds, t), bias=flag))
        arch = Architecture(tuple(layers), (t, d))
        params = {name: draw(hnp.arrays(np.float64, shape, elements=el))
                  for name, shape in arch.param_specs().items()}
        return Network(arch.layers, params, (t, d))

    return build()
