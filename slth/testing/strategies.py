"""Hypothesis strategies for slth objects: widths, MLPs, bounded targets, inputs, tickets.

Every strategy function takes keyword-only arguments, validates them eagerly
(raising :class:`slth.errors.InputError` on bad bounds, before any example is
drawn) and documents what it generates. Floats default to finite, non-subnormal
values in [-1, 1]: the theorems' targets have bounded weights and inputs.

Examples
--------
>>> from hypothesis import given
>>> from slth.testing import strategies as sst
>>> @given(sst.bounded_targets(), sst.unit_ball_inputs(3))
... def test_something(net, x): ...
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

try:
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
    from hypothesis.strategies import SearchStrategy
except ImportError as exc:  # pragma: no cover - hypothesis is a test dependency
    raise ImportError(
        "slth.testing needs hypothesis; install it with `pip install hypothesis` "
        "(or `pip install slth[test]`)"
    ) from exc

from ..errors import InputError
from ..nets.base import Architecture, Layer, Network, Residual
from ..nets.layers import Dense, ReLU
from ..nets.mlp import MLP, _check_widths
from ..ticket import Ticket
from ._attention_strategies import attention_layers, transformer_networks
from ._checks import check_int as _check_int
from ._checks import elements as _elements

__all__ = [
    "LAYER_BLOCKS",
    "attention_layers",
    "bounded_targets",
    "conv_networks",
    "mlps",
    "networks",
    "register_layer_block",
    "tickets",
    "transformer_networks",
    "unit_ball_inputs",
    "widths",
]


# ---------------------------------------------------------------------- validation
def _check_range(lo: int, hi: int, lo_name: str, hi_name: str) -> None:
    if lo > hi:
        raise InputError(
            f"`{lo_name}` must be <= `{hi_name}`; received {lo_name}={lo}, {hi_name}={hi}"
        )


def _bool_strategy(value: Any, name: str) -> SearchStrategy[bool]:
    if isinstance(value, SearchStrategy):
        return value
    if isinstance(value, (bool, np.bool_)):
        return st.just(bool(value))
    raise InputError(
        f"`{name}` must be a bool or a hypothesis strategy of bools; received {value!r}"
    )


def _widths_strategy(value: Any) -> SearchStrategy[tuple[int, ...]]:
    if value is None:
        return widths()
    if isinstance(value, SearchStrategy):
        return value
    if isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, (str, bytes)):
        return st.just(_check_widths(value, "widths"))
    raise InputError(
        f"`widths` must be None, a sequence of >= 2 positive ints or a hypothesis strategy "
        f"of such tuples; received {value!r}"
    )


def _rescale(w: np.ndarray, bound: float) -> np.ndarray:
    """Scale ``w`` down (never up) so that its spectral norm is <= ``bound``."""
    norm = float(np.linalg.svd(w, compute_uv=False)[0]) if w.size else 0.0
    if norm <= bound:
        return w
    w = w * (bound / norm)
    while float(np.linalg.svd(w, compute_uv=False)[0]) > bound:  # rounding guard
        w = w * (1.0 - 1e-12)
    return w


# ---------------------------------------------------------------------- strategies
def widths(
    *, min_layers: int = 1, max_layers: int = 3, min_width: int = 1, max_width: int = 8
) -> SearchStrategy[tuple[int, ...]]:
    """Layer widths ``(d_0, ..., d_L)`` of an MLP.

    Parameters
    ----------
    min_layers, max_layers : int
        Range of the depth ``L`` (number of weight matrices), ``1 <= min <= max``.
    min_width, max_width : int
        Range of every width, ``1 <= min <= max``.

    Returns
    -------
    SearchStrategy of tuple of int
        Tuples of length ``L + 1``.
    """
    min_layers = _check_int(min_layers, "min_layers", low=1)
    max_layers = _check_int(max_layers, "max_layers", low=1)
    _check_range(min_layers, max_layers, "min_layers", "max_layers")
    min_width = _check_int(min_width, "min_width", low=1)
    max_width = _check_int(max_width, "max_width", low=1)
    _check_range(min_width, max_width, "min_width", "max_width")
    return st.lists(
        st.integers(min_width, max_width), min_size=min_layers + 1, max_size=max_layers + 1
    ).map(tuple)


def mlps(
    *,
    widths: Sequence[int] | SearchStrategy[tuple[int, ...]] | None = None,
    bias: bool | SearchStrategy[bool] = False,
    max_spectral_norm: float | None = None,
    elements: SearchStrategy[float] | None = None,
) -> SearchStrategy[MLP]:
    """Random :class:`slth.nets.MLP` instances.

    Parameters
    ----------
    widths : sequence of int or strategy, optional
        Fixed widths, or a strategy of widths tuples. Default
        :func:`widths` with its defaults (1-3 layers, widths 1-8).
    bias : bool or strategy of bool, default False
        Whether layers have biases. A strategy is drawn once *per layer*, so
        networks with biases on some layers only are generated too.
    max_spectral_norm : float, optional
        When given (finite, > 0), every weight matrix is scaled down so that
        ``||W_l||_2 <= max_spectral_norm``; biases are left as drawn.
    elements : strategy of float, optional
        Entries of weights and biases; default finite, non-subnormal floats in
        [-1, 1].

    Returns
    -------
    SearchStrategy of MLP
    """
    w_strategy = _widths_strategy(widths)
    b_strategy = _bool_strategy(bias, "bias")
    el = _elements(elements)
    if max_spectral_norm is not None:
        if isinstance(max_spectral_norm, (bool, np.bool_)) or not isinstance(
            max_spectral_norm, (int, float, np.integer, np.floating)
        ):
            raise InputError(
                f"`max_spectral_norm` must be None or a finite number > 0; received "
                f"{max_spectral_norm!r}"
            )
        if not np.isfinite(max_spectral_norm) or max_spectral_norm <= 0:
            raise InputError(
                f"`max_spectral_norm` must be None or a finite number > 0; received "
                f"{max_spectral_norm!r}"
            )
        bound: float | None = float(max_spectral_norm)
    else:
        bound = None

    @st.composite
    def build(draw: st.DrawFn) -> MLP:
        ws = draw(w_strategy)
        ws = _check_widths(ws, "widths")
        weights = []
        biases: list[np.ndarray | None] = []
        for d_in, d_out in itertools.pairwise(ws):
            w = draw(hnp.arrays(np.float64, (d_out, d_in), elements=el))
            if bound is not None:
                w = _rescale(w, bound)
            weights.append(w)
            biases.append(
                draw(hnp.arrays(np.float64, (d_out,), elements=el)) if draw(b_strategy) else None
            )
        return MLP(tuple(weights), tuple(biases))

    return build()


# ---------------------------------------------------------------------- networks
#: Block kind -> ``block(width, draw_width, draw_bool) -> list of layers`` mapping inputs of
#: width ``width`` to outputs of the width the last layer declares; :func:`networks`
#: composes them. :func:`register_layer_block` adds the blocks of further layer types.
LAYER_BLOCKS: dict[str, Any] = {}


def register_layer_block(kind: str, block: Any) -> None:
    """Let :func:`networks` draw blocks of a layer type (slth's or your own).

    Parameters
    ----------
    kind : str
        A name for the block (``"dense"``, ``"residual"``, ``"mylib.scale"``).
    block : callable
        ``block(width, draw_width, draw_bool) -> list[Layer]``: layers taking a
        vector of ``width`` inputs; ``draw_width()`` draws a width and
        ``draw_bool()`` a bool from the example. The last layer's output is a
        vector (its width is read from the network).
    """
    if not isinstance(kind, str) or not kind or not callable(block):
        raise InputError(f"`kind` must be a non-empty str and `block` callable; received "
                         f"{kind!r} and {type(block).__name__}")
    LAYER_BLOCKS[kind] = block


register_layer_block("dense", lambda w, width, flag: [Dense(w, width(), bias=flag()), ReLU()])
register_layer_block("residual", lambda w, width, flag: [Residual(
    [Dense(w, (h := width()), bias=flag()), ReLU(), Dense(h, w, bias=flag())])])


def networks(
    *,
    d_in: int | None = None,
    d_out: int | None = None,
    min_blocks: int = 0,
    max_blocks: int = 3,
    max_width: int = 4,
    kinds: Sequence[str] | None = None,
    elements: SearchStrategy[float] | None = None,
) -> SearchStrategy[Network]:
    """Random :class:`slth.nets.base.Network` instances of typed layers.

    A network is ``min_blocks`` to ``max_blocks`` blocks drawn from
    :data:`LAYER_BLOCKS` (default: ``"dense"``, a Dense layer and a ReLU;
    ``"residual"``, ``x + Dense(ReLU(Dense x))``), then a final Dense layer.

    Parameters
    ----------
    d_in, d_out : int, optional
        Input and output widths (default: drawn in 1..max_width).
    min_blocks, max_blocks : int, default 0, 3
    max_width : int, default 4
        Largest width drawn (>= 1).
    kinds : sequence of str, optional
        Block kinds to draw from (keys of :data:`LAYER_BLOCKS`); default all.
    elements : strategy of float, optional
        Parameter entries; default finite, non-subnormal floats in [-1, 1].

    Returns
    -------
    SearchStrategy of Network
    """
    max_width = _check_int(max_width, "max_width", low=1)
    min_blocks = _check_int(min_blocks, "min_blocks", low=0)
    max_blocks = _check_int(max_blocks, "max_blocks", low=0)
    _check_range(min_blocks, max_blocks, "min_blocks", "max_blocks")
    if d_in is not None:
        d_in = _check_int(d_in, "d_in", low=1)
    if d_out is not None:
        d_out = _check_int(d_out, "d_out", low=1)
    names = tuple(LAYER_BLOCKS) if kinds is None else tuple(kinds)
    unknown = [k for k in names if k not in LAYER_BLOCKS]
    if unknown or not names:
        raise InputError(f"`kinds` must be a non-empty sequence of keys of LAYER_BLOCKS "
                         f"({sorted(LAYER_BLOCKS)}); received {list(names)!r}")
    el = _elements(elements)

    @st.composite
    def build(draw: st.DrawFn) -> Network:
        def width() -> int:
            return int(draw(st.integers(1, max_width)))

        def flag() -> bool:
            return bool(draw(st.booleans()))

        w = d_in if d_in is not None else width()
        layers: list[Layer] = []
        for _ in range(draw(st.integers(min_blocks, max_blocks))):
            block = LAYER_BLOCKS[draw(st.sampled_from(names))](w, width, flag)
            layers.extend(block)
            w = int(Architecture(tuple(block), (w,)).output_shape[0])
        layers.append(Dense(w, d_out if d_out is not None else width(), bias=flag()))
        arch = Architecture(tuple(layers))
        params = {name: draw(hnp.arrays(np.float64, shape, elements=el))
                  for name, shape in arch.param_specs().items()}
        return Network(arch.layers, params)

    return build()


def conv_networks(
    *,
    channels: int = 3,
    size: int = 8,
    max_blocks: int = 2,
    elements: SearchStrategy[float] | None = None,
) -> SearchStrategy[Network]:
    """Random small image networks of :mod:`slth.nets.conv` layers (NCHW inputs).

    The input shape ``(C, H, W)`` has ``C`` in ``1..channels`` and ``H``, ``W``
    in ``3..size``. Then 0 to ``max_blocks`` blocks, each one of

    - ``Conv2d`` (kernel 1-3 per side, stride 1-2, padding 0-1, up to
      ``channels`` output channels, bias or not), then ``ReLU``;
    - ``MaxPool2d`` or ``AvgPool2d`` (kernel 1-3 per side, stride 1 to the
      kernel's side);
    - ``Residual`` of ``Conv2d -> ReLU -> Conv2d``, same-shape convolutions
      (stride 1, odd kernels 1 or 3 with the padding keeping the size);

    then ``Flatten`` and a ``Dense`` head of 1-3 outputs. Every kernel fits its
    (padded) input, so the shapes always chain.

    Parameters
    ----------
    channels : int, default 3
        Largest channel count, of the input and of every convolution (>= 1).
    size : int, default 8
        Largest input height and width (>= 3).
    max_blocks : int, default 2
        Largest number of blocks before the head (>= 0).
    elements : strategy of float, optional
        Parameter entries; default finite, non-subnormal floats in [-1, 1].

    Returns
    -------
    SearchStrategy of Network
        With ``input_shape`` set (convolutions declare none).
    """
    from ..nets.conv import AvgPool2d, Conv2d, Flatten, MaxPool2d

    channels = _check_int(channels, "channels", low=1)
    size = _check_int(size, "size", low=3)
    max_blocks = _check_int(max_blocks, "max_blocks", low=0)
    el = _elements(elements)

    @st.composite
    def build(draw: st.DrawFn) -> Network:
        def integer(lo: int, hi: int) -> int:
            return int(draw(st.integers(lo, hi)))

        def flag() -> bool:
            return bool(draw(st.booleans()))

        in_shape = (integer(1, channels), integer(3, size), integer(3, size))
        shape = in_shape
        layers: list[Layer] = []
        for _ in range(integer(0, max_blocks)):
            c, h, w = shape
            kind = draw(st.sampled_from(("conv", "pool", "residual")))
            block: list[Layer]
            if kind == "conv":
                pad = (integer(0, 1), integer(0, 1))
                kernel = (integer(1, min(3, h + 2 * pad[0])), integer(1, min(3, w + 2 * pad[1])))
                block = [Conv2d(c, integer(1, channels), kernel,
                                stride=(integer(1, 2), integer(1, 2)), padding=pad,
                                bias=flag()), ReLU()]
            elif kind == "pool":
                kernel = (integer(1, min(3, h)), integer(1, min(3, w)))
                stride = (integer(1, kernel[0]), integer(1, kernel[1]))
                pool = MaxPool2d if flag() else AvgPool2d
                block = [pool(kernel, stride)]
            else:
                hidden = integer(1, channels)
                k1, k2 = draw(st.sampled_from((1, 3))), draw(st.sampled_from((1, 3)))
                block = [Residual([
                    Conv2d(c, hidden, k1, padding=(k1 - 1) // 2, bias=flag()), ReLU(),
                    Conv2d(hidden, c, k2, padding=(k2 - 1) // 2, bias=flag())])]
            layers.extend(block)
            shape = tuple(int(d) for d in Architecture(tuple(block), shape).output_shape)
        layers.append(Flatten())
        layers.append(Dense(int(np.prod(shape)), integer(1, 3), bias=flag()))
        arch = Architecture(tuple(layers), in_shape)
        params = {name: draw(hnp.arrays(np.float64, spec, elements=el))
                  for name, spec in arch.param_specs().items()}
        return Network(arch.layers, params, in_shape)

    return build()


def bounded_targets(
    *,
    widths: Sequence[int] | SearchStrategy[tuple[int, ...]] | None = None,
    bias: bool | SearchStrategy[bool] = False,
    elements: SearchStrategy[float] | None = None,
) -> SearchStrategy[MLP]:
    """Targets of the MLP theorems: every layer has spectral norm <= 1.

    The hypothesis of Pensia et al. (2020), Theorem 1 (``||W_i|| <= 1``); use
    with :func:`unit_ball_inputs` for checks over ``||x|| <= 1``.

    Parameters
    ----------
    widths, bias, elements
        As in :func:`mlps`.

    Returns
    -------
    SearchStrategy of MLP
    """
    return mlps(widths=widths, bias=bias, max_spectral_norm=1.0, elements=elements)


def unit_ball_inputs(
    d: int,
    *,
    min_batch: int = 1,
    max_batch: int = 16,
    elements: SearchStrategy[float] | None = None,
) -> SearchStrategy[np.ndarray]:
    """Batches of inputs in the closed Euclidean unit ball of dimension ``d``.

    Entries are drawn in [-1, 1] (or from ``elements``); rows of norm above 1
    are projected onto the unit sphere, so boundary points are common.

    Parameters
    ----------
    d : int
        Input dimension, >= 1.
    min_batch, max_batch : int
        Range of the batch size, ``1 <= min_batch <= max_batch``.
    elements : strategy of float, optional
        Raw entries before projection; default finite, non-subnormal floats in
        [-1, 1].

    Returns
    -------
    SearchStrategy of numpy.ndarray
        float64 arrays of shape ``(batch, d)`` with every row norm <= 1.
    """
    d = _check_int(d, "d", low=1)
    min_batch = _check_int(min_batch, "min_batch", low=1)
    max_batch = _check_int(max_batch, "max_batch", low=1)
    _check_range(min_batch, max_batch, "min_batch", "max_batch")
    el = _elements(elements)

    def project(x: np.ndarray) -> np.ndarray:
        x = np.array(x, dtype=np.float64)
        norms = np.linalg.norm(x, axis=1)
        big = norms > 1.0
        x[big] /= norms[big, None]
        while True:
            over = np.linalg.norm(x, axis=1) > 1.0  # rounding guard
            if not over.any():
                return x
            x[over] *= 1.0 - 1e-15

    shape = st.tuples(st.integers(min_batch, max_batch), st.just(d))
    return hnp.arrays(np.float64, shape, elements=el).map(project)


def tickets(
    *,
    widths: Sequence[int] | SearchStrategy[tuple[int, ...]] | None = None,
    bias: bool | SearchStrategy[bool] = False,
    elements: SearchStrategy[float] | None = None,
    density: float | None = None,
    metadata: bool = False,
) -> SearchStrategy[Ticket]:
    """Random :class:`slth.Ticket` instances: a random source MLP and random masks.

    Parameters
    ----------
    widths : sequence of int or strategy, optional
        Source widths (``metadata=False``) or target widths (``metadata=True``).
    bias : bool or strategy of bool, default False
        As in :func:`mlps` (drawn per layer when a strategy).
    elements : strategy of float, optional
        Source entries; default finite, non-subnormal floats in [-1, 1].
    density : float, optional
        When given (in [0, 1]), each mask entry is kept independently with this
        probability (numpy draws from a hypothesis-chosen seed). Default: masks
        drawn element by element by hypothesis (all-False, all-True and mixed).
    metadata : bool, default False
        Also fill ``construction``, ``params``, ``target_widths``, ``layer_map``,
        ``weight_errors`` and ``bias_errors``: the source then has two layers
        per target layer (``layer_map = ((0, 1), (2, 3), ...)``) with hidden
        widths in [1, 8], and error arrays hold values >= 0 (``inf`` included).

    Returns
    -------
    SearchStrategy of Ticket
    """
    w_strategy = _widths_strategy(widths)
    b_strategy = _bool_strategy(bias, "bias")
    el = _elements(elements)
    if density is not None:
        if isinstance(density, (bool, np.bool_)) or not isinstance(
            density, (int, float, np.integer, np.floating)
        ):
            raise InputError(f"`density` must be None or a number in [0, 1]; received {density!r}")
        if not 0.0 <= float(density) <= 1.0:
            raise InputError(f"`density` must be None or a number in [0, 1]; received {density!r}")
    if not isinstance(metadata, (bool, np.bool_)):
        raise InputError(f"`metadata` must be a bool; received {metadata!r}")

    json_scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**53), 2**53),
        st.floats(allow_nan=False),
        st.text(max_size=8),
    )
    params_strategy = st.dictionaries(
        st.text(max_size=8),
        st.one_of(json_scalars, st.lists(json_scalars, max_size=3)),
        max_size=4,
    )
    errors_el = st.one_of(st.floats(0.0, 1.0), st.just(float("inf")))

    @st.composite
    def build(draw: st.DrawFn) -> Ticket:
        ws = _check_widths(draw(w_strategy), "widths")
        kwargs: dict[str, Any] = {}
        if metadata:
            target = ws
            source_widths = [target[0]]
            for d in target[1:]:
                source_widths += [draw(st.integers(1, 8)), d]
            source = draw(mlps(widths=source_widths, bias=b_strategy, elements=el))
            n_t = len(target) - 1
            kwargs = {
                "construction": draw(st.sampled_from(["manual", "pensia2020", "test"])),
                "params": draw(params_strategy),
                "target_widths": target,
                "layer_map": tuple((2 * l, 2 * l + 1) for l in range(n_t)),
                "weight_errors": tuple(
                    draw(hnp.arrays(np.float64, (target[l + 1], target[l]), elements=errors_el))
                    for l in range(n_t)
                ),
                "bias_errors": tuple(
                    draw(hnp.arrays(np.float64, (target[l + 1],), elements=errors_el))
                    if draw(st.booleans())
                    else None
                    for l in range(n_t)
                ),
            }
        else:
            source = draw(mlps(widths=ws, bias=b_strategy, elements=el))
        if density is None:
            masks = [draw(hnp.arrays(np.bool_, p.shape)) for p in source.parameters()]
        else:
            gen = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
            masks = [gen.random(p.shape) < density for p in source.parameters()]
        return Ticket(source, tuple(masks), **kwargs)

    return build()
