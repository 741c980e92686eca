"""The pair-dense layout: two source layers per dense target layer (Pensia et al. 2020).

Both Pensia et al. (2020) and Malach et al. (2020) realise a target layer
``W`` (``d_out x d_in``) with two random source layers, using
``w x = w relu(x) - w relu(-x)``. This module holds the layout of Pensia et
al.'s construction (also used by :mod:`slth.constructions.single_pair`, and by
:mod:`slth.constructions.malach2020` one output block at a time): the source
widths (:func:`source_widths`), drawing or checking the source, the per-layer
widths and tolerances, gathering the candidate products of a layer as one
``(B, n)`` matrix (:func:`gather_layer`), scattering the chosen subsets back
into masks (:func:`scatter_layer`), nested sources for width sweeps, and the
memory estimates of each step. All of it is vectorised numpy: no Python loop
runs per target weight.

Hidden layout of target layer ``i`` (``d_in -> d_out``, ``n`` units per part)
---------------------------------------------------------------------------
Source layer ``2i`` (weights ``A``, shape ``(m, d_in)``) and source layer
``2i + 1`` (weights ``B``, shape ``(d_out, m)``) with ``m = 2 n d_in`` (and
``2 n (d_in + 1)`` when the target layer has a bias):

* hidden units ``j*2n .. j*2n + 2n - 1`` form block ``j``; its mask keeps at
  most the entries ``A[j*2n + k, j]`` (block-diagonal: block j reads x_j only);
* the units of a block are split by the sign of their first-layer weight
  ``a_k = A[j*2n + k, j]``: a unit with ``a_k > 0`` outputs ``a_k relu(x_j)``
  and serves the *positive part*, a unit with ``a_k < 0`` outputs
  ``|a_k| relu(-x_j)`` and serves the *negative part*. About n units fall on
  each side; each part's subset-sum instance takes the first ``n`` units of its
  sign in unit order (zero-padded when fewer than n have that sign; surplus
  units of the majority sign stay pruned), so every instance has exactly ``n``
  candidates. A zero candidate is the point mass of the law "product of
  uniforms mixed with 0" in Pensia et al.'s corollary on products;
* target layers with a bias get a *constant block* of ``2n`` more units
  ``2 n d_in .. m - 1`` that read no input: a unit with source bias ``c_k > 0``
  outputs ``relu(c_k) = c_k`` for every input (the bias is an extra input
  column fed the constant 1), and the first ``n`` such units are the bias
  instance's candidates (constant units, Fischer & Burkholz 2021; Burkholz
  2022). These units need a bias vector on source layer ``2i``. Every other
  source bias is pruned.

For output ``i`` and input ``j`` the positive-part instance has candidate
values ``B[i, u] * a_u`` over its units u and target ``W_ij``; the
negative-part instance has values ``B[i, u] * |a_u|`` and target ``-W_ij``;
the bias instance has values ``B[i, u] * c_u`` and target ``b_i``. Candidates
are ordered right-sign units first (zero padding last), so eps-mode prefix
searches see the nonzero values first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.extending import intrinsic

from ... import _validate
from ..._memory import check_memory, format_count
from ..._philox import _ONE, _TWO_M53, _U11, _ZERO, _philox
from ..._rng import RNGLike, as_generator
from ...errors import InputError, ShapeError, format_value
from ...nets.mlp import MLP
from ..targets import check_target

__all__ = [
    "LayerInstances",
    "check_source",
    "draw_pair_widths",
    "draw_source",
    "gather_bytes",
    "gather_layer",
    "gather_layer_from_source",
    "kept_first",
    "layer_tolerances",
    "layer_units",
    "mask_bytes",
    "nested_source",
    "resolve_width",
    "scatter_bytes",
    "scatter_kept",
    "scatter_kept_bytes",
    "scatter_kept_fast",
    "scatter_layer",
    "source_bytes",
    "source_spec",
    "source_widths",
]


def _hidden(d_in: int, n: int, bias: bool) -> int:
    return 2 * n * (d_in + (1 if bias else 0))


def source_widths(target: MLP, units: Sequence[int]) -> tuple[int, ...]:
    """Widths of the 2l-layer source for ``target`` with ``units[i]`` units per part.

    Parameters
    ----------
    target : MLP
        The target network (widths ``d_0..d_l``).
    units : sequence of int
        Units per sign part and input coordinate, one per target layer.

    Returns
    -------
    tuple of int
        ``(d_0, m_1, d_1, m_2, d_2, ..., m_l, d_l)`` with
        ``m_i = 2 n_i d_{i-1}`` (``2 n_i (d_{i-1} + 1)`` when target layer i has a
        bias).
    """
    w = target.widths
    out = [w[0]]
    for i, n in enumerate(units):
        out += [_hidden(w[i], n, target.biases[i] is not None), w[i + 1]]
    return tuple(out)


#: What to change when a construction does not fit the memory budget.
_ALTERNATIVE = ("use fewer units per part (a smaller `n` or `k`, or a larger `eps`) or a "
                "narrower target, or a virtual source (entries computed on demand) once slth "
                "has one")


def source_bytes(target: MLP, units: Sequence[int]) -> tuple[int, int, int]:
    """Peak bytes :func:`draw_source` allocates: ``(bytes, arrays, entries)``.

    Every weight and bias array of the source in float64 (8 bytes per entry;
    ``Generator.uniform`` fills its output without a temporary), plus the bool
    temporary of ``np.isfinite`` that :class:`MLP` builds for one array at a
    time while checking them (1 byte per entry of the largest array).
    """
    widths = source_widths(target, units)
    sizes = []
    for s in range(len(widths) - 1):
        sizes.append(widths[s + 1] * widths[s])
        if s % 2 == 0 and target.biases[s // 2] is not None:
            sizes.append(widths[s + 1])
    entries = sum(sizes)
    return 8 * entries + max(sizes), len(sizes), entries


def draw_source(target: MLP, units: Sequence[int], rng: RNGLike) -> MLP:
    """Draw the source network once: i.i.d. U[-1, 1] weights (Pensia et al. 2020, Thm 1).

    Arrays are drawn from one generator in the order ``W_0, b_0, W_1, W_2, b_2,
    W_3, ...``: a bias vector (same law) exists exactly on the first source
    layer of each target layer that has a bias (it feeds the constant units).
    For a bias-free target the source equals
    ``MLP.random(source_widths(target, units), rng=rng)`` bit for bit.
    """
    widths = source_widths(target, units)
    n_bytes, n_arrays, n_entries = source_bytes(target, units)
    check_memory(
        n_bytes,
        what=f"draw_source: the source ({n_arrays} float64 arrays, {format_count(n_entries)} "
             "weights, "
             f"widths {widths})",
        alternative=_ALTERNATIVE,
    )
    return draw_pair_widths(target, widths, rng)


def draw_pair_widths(target: MLP, widths: Sequence[int], rng: RNGLike) -> MLP:
    """i.i.d. U[-1, 1] source of the given widths, in the draw order of :func:`draw_source`.

    ``W_0, b_0, W_1, W_2, b_2, ...``: a bias vector exists exactly on the first
    source layer of each pair whose target layer has a bias. Shared by every
    two-layers-per-target-layer layout (the widths are the layout's own).
    """
    gen = as_generator(rng)
    weights: list[np.ndarray] = []
    biases: list[np.ndarray | None] = []
    for s in range(len(widths) - 1):
        weights.append(gen.uniform(-1.0, 1.0, (widths[s + 1], widths[s])))
        has_bias = s % 2 == 0 and target.biases[s // 2] is not None
        biases.append(gen.uniform(-1.0, 1.0, (widths[s + 1],)) if has_bias else None)
    return MLP(tuple(weights), tuple(biases))


def check_source(source: Any, target: MLP, units: tuple[int, ...] | None,
                 name_units: str) -> tuple[MLP, tuple[int, ...]]:
    """Validate a user-given source against the layout; infer the units when not given.

    Returns the source (the same object) and the units per target layer.
    """
    if not isinstance(source, MLP):
        raise InputError(f"`source` must be a slth.nets.MLP or None; received "
                         f"{format_value(source)} of type {type(source).__name__}")
    L = target.depth
    tw = target.widths
    sw = source.widths
    layout = (f"(d_0, m_1, d_1, ..., m_l, d_l) with m_i = 2 {name_units}_i d_(i-1), or "
              f"2 {name_units}_i (d_(i-1) + 1) when target layer i has a bias")
    if source.depth != 2 * L:
        raise ShapeError(
            f"`source` must have {2 * L} layers (twice the target's {L}), widths {layout}; "
            f"received {source.depth} layers with widths {sw}"
        )
    if units is None:
        inferred = []
        for i in range(L):
            per = 2 * (tw[i] + (1 if target.biases[i] is not None else 0))
            m = sw[2 * i + 1]
            if m % per != 0:
                raise ShapeError(
                    f"`source` hidden layer {2 * i + 1} has width {m}, which is not "
                    f"{per} * {name_units} for any integer {name_units} (target layer {i}: "
                    f"d_in={tw[i]}{', with bias' if target.biases[i] is not None else ''}); "
                    f"expected widths {layout}"
                )
            inferred.append(m // per)
        units = tuple(inferred)
    expected = source_widths(target, units)
    if sw != expected:
        raise ShapeError(
            f"`source` must have widths {expected} for target widths {tw} and "
            f"{name_units}={list(units)}; received widths {sw}"
        )
    for p, nm in zip(source.parameters(), source.parameter_names()):
        if not np.all(np.isfinite(p)):
            raise InputError(f"`source.{nm}` must be finite; received NaN or infinite entries")
    for i in range(L):
        if target.biases[i] is not None and source.biases[2 * i] is None:
            raise ShapeError(
                f"`source.biases[{2 * i}]` must be a vector of shape ({sw[2 * i + 1]},): its "
                f"last {2 * units[i]} entries feed the constant units that realise "
                f"`target.biases[{i}]`; received None"
            )
    return source, units


def layer_tolerances(target: MLP, eps: float) -> list[float]:
    """Per-weight tolerance of each target layer: ``eps / (2 l d_in d_out)``.

    Pensia et al. (2020), Theorem 1 proof. A layer with a bias counts the bias
    as one more input column (``d_in + 1``).
    """
    L = target.depth
    w = target.widths
    return [eps / (2.0 * L * (w[i] + (target.biases[i] is not None)) * w[i + 1])
            for i in range(L)]


# ----------------------------------------------------------------------------- gather
@dataclass(frozen=True)
class LayerInstances:
    """All candidate products of one target layer, ready for one batched selection.

    Rows ``[0, P)`` are the positive parts (row ``i * d_in + j`` for weight
    ``W_ij``), rows ``[P, 2P)`` the negative parts, rows ``[2P, 2P + nb)`` the
    bias instances (``P = d_out d_in``, ``nb = d_out`` or 0).

    Attributes
    ----------
    values : numpy.ndarray
        float64 ``(2P + nb, n)``: candidate products, right-sign units first,
        zeros for the padding.
    targets : numpy.ndarray
        float64 ``(2P + nb,)``: ``W_ij``, ``-W_ij``, ``b_i``.
    valid : numpy.ndarray
        bool ``(2P + nb, n)``: the candidate is a right-sign unit (padding is not;
        only valid candidates may be kept).
    units_pos, units_neg : numpy.ndarray
        int ``(d_in, n)``: column c of block j's positive (negative) instance is
        unit ``units[j, c]`` of the block (0 .. 2n-1).
    units_bias : numpy.ndarray or None
        int ``(n,)``: the same for the constant block.
    d_in, d_out, n : int
        Layer sizes and candidates per instance.
    """

    values: np.ndarray
    targets: np.ndarray
    valid: np.ndarray
    units_pos: np.ndarray
    units_neg: np.ndarray
    units_bias: np.ndarray | None
    d_in: int
    d_out: int
    n: int


def _pick(ok: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """First n columns with ``ok`` per row (stable), then the others; and their validity."""
    order = np.argsort(~ok, axis=-1, kind="stable")[..., :n]
    return order, np.take_along_axis(ok, order, axis=-1)


def gather_bytes(d_in: int, d_out: int, n: int, bias: bool) -> int:
    """Peak bytes :func:`gather_layer` allocates for ``d_out`` target rows.

    With ``P = d_out d_in`` and ``B = 2P + nb`` instances (``nb = d_out`` with a
    bias): the result's ``values`` float64 (B, n), ``valid`` bool (B, n) and
    ``targets`` float64 (B,), ``B (9 n + 8)`` bytes; while one sign part is
    filled, ``np.take_along_axis`` holds its float64 (d_out, d_in, n) result and
    an index array of the same size broadcast to intp (measured with
    tracemalloc, numpy 2.4): ``16 P n``; the per-block arrays of shape
    (d_in, 2n) (first-layer weights, block indices, unit orders, signs,
    magnitudes; measured 77 bytes per ``d_in n``): ``96 d_in n``; the bias
    instances' products and their index: ``16 d_out n``; numpy's iterator
    buffers (8192 elements per operand) and array headers: 256 KiB.
    """
    P = d_out * d_in
    B = 2 * P + (d_out if bias else 0)
    return (B * (9 * n + 8) + 16 * P * n + 96 * d_in * n + (16 * d_out * n if bias else 0)
            + (1 << 18))


def scatter_bytes(d_in: int, d_out: int, n: int, m: int, bias: bool) -> int:
    """Peak bytes :func:`scatter_layer` allocates; the masks it returns are part of it.

    With ``P = d_out d_in`` and ``B = 2P + nb``: ``keep`` bool (B, n), then the
    bool (d_out, d_in, 2n) arrays ``pos`` and ``neg`` (2 P n each) and the intp
    index that ``np.put_along_axis`` broadcasts to the (d_out, d_in, n) values
    it scatters (8 P n, measured with tracemalloc, numpy 2.4): ``B n + 12 P n``
    at the first peak; after ``neg`` is freed, ``pos`` and the returned masks
    ``second`` bool (d_out, m), ``first`` bool (m, d_in) and ``first_bias``
    bool (m,), the constant block's bool (d_out, 2n) and its index (16 d_out n)
    and the block-diagonal index arrays (int64 (d_in, 2n) and the broadcast
    indices of the assignment; measured 22 bytes per ``d_in n``):
    ``B n + 2 P n + d_out m + m d_in + m + 18 d_out n + 64 d_in n``; numpy's
    iterator buffers and array headers: 64 KiB.
    """
    P = d_out * d_in
    B = 2 * P + (d_out if bias else 0)
    late = 2 * P * n + d_out * m + m * d_in + 64 * d_in * n
    if bias:
        late += m + 18 * d_out * n
    return B * n + max(12 * P * n, late) + (1 << 16)


def mask_bytes(d_in: int, d_out: int, m: int, bias: bool) -> int:
    """Bytes of the masks :func:`scatter_layer` returns: bool (m, d_in), (d_out, m), (m,)."""
    return m * d_in + d_out * m + (m if bias else 0)


def gather_layer(first: np.ndarray, first_bias: np.ndarray | None, second: np.ndarray,
                 W: np.ndarray, b: np.ndarray | None, n: int) -> LayerInstances:
    """Collect the candidate products of one target layer (vectorised numpy fancy indexing).

    Parameters
    ----------
    first : numpy.ndarray
        Source weights of layer 2i, ``(m, d_in)``.
    first_bias : numpy.ndarray or None
        Source bias of layer 2i, ``(m,)`` (needed when ``b`` is given).
    second : numpy.ndarray
        Source weights of layer 2i+1 (or a block of its rows), ``(d_out, m)``.
    W : numpy.ndarray
        Target weights ``(d_out, d_in)`` (the rows matching ``second``).
    b : numpy.ndarray or None
        Target bias ``(d_out,)``.
    n : int
        Candidates per instance (units per sign part).

    Returns
    -------
    LayerInstances
    """
    d_out, d_in = W.shape
    P = d_out * d_in
    nb = d_out if b is not None else 0
    check_memory(
        gather_bytes(d_in, d_out, n, b is not None),
        what=f"gather_layer: the subset-sum instances of a {d_in} -> {d_out} layer "
             f"({2 * P + nb} instances of n={n} candidates, float64)",
        alternative=_ALTERNATIVE,
    )
    two_n = 2 * n
    main = two_n * d_in
    rows = np.arange(d_in)[:, None] * two_n + np.arange(two_n)[None, :]
    a = first[rows, np.arange(d_in)[:, None]]                     # (d_in, 2n)
    c = None
    if b is not None:
        if first_bias is None:  # pragma: no cover - guarded by check_source
            raise ShapeError("a target bias needs a source bias on the first layer of the pair")
        c = first_bias[main:main + two_n]
    return _gather_parts(a, c, second, W, b, n)


def _sign_parts(a: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    """Per block, the first ``n`` units of each sign, their validity and magnitudes.

    ``a`` is ``(d_in, 2n)`` (block-diagonal first-layer weights). Returns
    ``(units_pos, val_pos, mag_pos, units_neg, val_neg, mag_neg)``, each ``(d_in, n)``.
    """
    units_pos, val_pos = _pick(a > 0.0, n)
    units_neg, val_neg = _pick(a < 0.0, n)
    mag_pos = np.where(val_pos, np.take_along_axis(a, units_pos, axis=1), 0.0)
    mag_neg = np.where(val_neg, -np.take_along_axis(a, units_neg, axis=1), 0.0)
    return units_pos, val_pos, mag_pos, units_neg, val_neg, mag_neg


def _gather_parts(a: np.ndarray, c: np.ndarray | None, second: np.ndarray, W: np.ndarray,
                  b: np.ndarray | None, n: int) -> LayerInstances:
    """:func:`gather_layer` from the only first-layer entries that can be kept.

    ``a`` is ``(d_in, 2n)``: the block-diagonal first-layer weights (block j's
    units read ``x_j``); ``c`` the ``2n`` biases of the constant block (or None);
    ``second`` the second layer's rows, ``(d_out, m)``.
    """
    d_out, d_in = W.shape
    P = d_out * d_in
    nb = d_out if b is not None else 0
    two_n = 2 * n
    main = two_n * d_in
    units_pos, val_pos, mag_pos, units_neg, val_neg, mag_neg = _sign_parts(a, n)

    values = np.empty((2 * P + nb, n), dtype=np.float64)
    valid = np.empty((2 * P + nb, n), dtype=bool)
    br = second[:, :main].reshape(d_out, d_in, two_n)
    np.multiply(np.take_along_axis(br, units_pos[None], axis=2), mag_pos[None],
                out=values[:P].reshape(d_out, d_in, n))
    np.multiply(np.take_along_axis(br, units_neg[None], axis=2), mag_neg[None],
                out=values[P:2 * P].reshape(d_out, d_in, n))
    valid[:P].reshape(d_out, d_in, n)[...] = val_pos[None]
    valid[P:2 * P].reshape(d_out, d_in, n)[...] = val_neg[None]
    targets = np.empty(2 * P + nb, dtype=np.float64)
    targets[:P] = W.ravel()
    np.negative(W.ravel(), out=targets[P:2 * P])
    units_bias = None
    if b is not None and c is not None:
        units_bias, val_b = _pick(c > 0.0, n)
        mag_b = np.where(val_b, c[units_bias], 0.0)
        np.multiply(second[:, main + units_bias], mag_b[None, :], out=values[2 * P:])
        valid[2 * P:] = val_b[None, :]
        targets[2 * P:] = b
    return LayerInstances(values, targets, valid, units_pos, units_neg, units_bias, d_in, d_out,
                          n)


def source_spec(target: MLP, units: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """Parameter shapes of the layout's source, keyed by :meth:`MLP.parameter_names`.

    ``VirtualSource(source_spec(target, units), "uniform[-1,1]", seed)`` is the
    source of :func:`draw_source`'s layout with entries computed on demand; a
    bias vector exists on layer 2i exactly when target layer i has a bias.

    Parameters
    ----------
    target : MLP
    units : sequence of int
        Units per sign part, per target layer.

    Returns
    -------
    dict of str to tuple of int
    """
    widths = source_widths(target, units)
    spec: dict[str, tuple[int, ...]] = {}
    for s in range(len(widths) - 1):
        spec[f"weights[{s}]"] = (widths[s + 1], widths[s])
        if s % 2 == 0 and target.biases[s // 2] is not None:
            spec[f"biases[{s}]"] = (widths[s + 1],)
    return spec


#: Columns (blocks j of 2n entries) of one task of :func:`_gather_virtual_kernel`; even, so
#: a task's entries start on a Philox block boundary whenever its row does.
_GATHER_COLUMNS = 64


@numba.njit(cache=True, parallel=True)
def _gather_virtual_kernel(k0, k1, scale, shift, row0, m, units_pos, mag_pos, units_neg,
                           mag_neg, out_pos, out_neg):  # pragma: no cover - numba
    """Sign-part products of rows ``row0 ..`` straight from Philox (no (rows, m) array).

    For row r and block j, the block's 2n second-layer entries (flat
    ``(row0 + r) m + j 2n + k``) are computed as :meth:`VirtualSource.entries`
    does (Philox block ``i >> 2`` + 1, lane ``i & 3``, ``(w >> 11) 2^-53 * scale +
    shift``) and multiplied by the first-layer magnitudes, as
    :func:`_gather_parts` does with numpy: the same bits (tested).

    The tasks, run in parallel, are (row, run of :data:`_GATHER_COLUMNS` blocks j)
    pairs: each fills a small buffer with all four lanes of every Philox block
    its entries touch, each block computed once (a block is shared by two
    tasks only where a row does not start on a multiple of 4: one block per
    task boundary), then gathers the products from the buffer.
    """
    R, d_in, n = out_pos.shape
    two_n = 2 * n
    J = _GATHER_COLUMNS
    segs = (d_in + J - 1) // J
    for task in prange(R * segs):
        r = task // segs
        j0 = (task - r * segs) * J
        j1 = min(d_in, j0 + J)
        e0 = (row0 + r) * m + j0 * two_n            # first entry of the task
        e1 = e0 + (j1 - j0) * two_n                 # one past its last
        b0 = e0 >> 2
        b1 = (e1 - 1) >> 2
        buf = np.empty(4 * (b1 - b0 + 1))
        for b in range(b0, b1 + 1):
            w0, w1, w2, w3 = _philox(k0, k1, np.uint64(b) + _ONE, _ZERO, _ZERO, _ZERO)
            t = 4 * (b - b0)
            buf[t] = np.float64(w0 >> _U11) * _TWO_M53 * scale + shift
            buf[t + 1] = np.float64(w1 >> _U11) * _TWO_M53 * scale + shift
            buf[t + 2] = np.float64(w2 >> _U11) * _TWO_M53 * scale + shift
            buf[t + 3] = np.float64(w3 >> _U11) * _TWO_M53 * scale + shift
        off = e0 - 4 * b0
        for j in range(j0, j1):
            s = off + (j - j0) * two_n
            for c in range(n):
                out_pos[r, j, c] = buf[s + units_pos[j, c]] * mag_pos[j, c]
            for c in range(n):
                out_neg[r, j, c] = buf[s + units_neg[j, c]] * mag_neg[j, c]


def _virtual_parts(source: Any) -> Any:
    """The VirtualSource behind ``source`` (itself or a VirtualMLP's), or None."""
    from ...sources import VirtualSource

    vs = getattr(source, "source", source)
    return vs if isinstance(vs, VirtualSource) else None


@dataclass(frozen=True)
class _LayerPrelude:
    """What every row block of a layer shares: read and sorted once per layer (private).

    ``a`` the block-diagonal first-layer weights ``(d_in, 2n)``, ``c`` the
    constant block's biases (or None), the sign parts of :func:`_sign_parts`
    (units as C-contiguous int64), and for a virtual source (``vs`` not None)
    the Philox key and law of the second layer.
    """

    a: np.ndarray
    c: np.ndarray | None
    units_pos: np.ndarray
    val_pos: np.ndarray
    mag_pos: np.ndarray
    units_neg: np.ndarray
    val_neg: np.ndarray
    mag_neg: np.ndarray
    units_bias: np.ndarray | None
    val_bias: np.ndarray | None
    mag_bias: np.ndarray | None
    vs: Any
    key: tuple[np.uint64, np.uint64] | None
    scale: float
    shift: float
    layer: int
    n: int
    m: int


def _layer_prelude(source: Any, target: MLP, layer: int, n: int, fused: bool) -> _LayerPrelude:
    """Read the keepable first-layer entries of ``layer`` and sort their signs, once."""

    d_in = target.weights[layer].shape[1]
    has_bias = target.biases[layer] is not None
    two_n = 2 * n
    main = two_n * d_in
    m = main + (two_n if has_bias else 0)
    units = np.arange(main, dtype=np.int64)
    a = source.entries(f"weights[{2 * layer}]", units * d_in + units // two_n).reshape(d_in,
                                                                                     two_n)
    c = ub = vb = mb = None
    if has_bias:
        c = source.entries(f"biases[{2 * layer}]", np.arange(main, m, dtype=np.int64))
        ub, vb = _pick(c > 0.0, n)
        mb = np.where(vb, c[ub], 0.0)
        ub = ub.astype(np.int64, copy=False)
    up, vp, mp, un, vn, mn = _sign_parts(a, n)
    vs = _virtual_parts(source) if fused else None
    key, scale, shift = None, 1.0, 0.0
    if vs is not None:
        from collections.abc import Mapping

        from ...sources import resolve_law

        name = f"weights[{2 * layer + 1}]"
        # the spec entry the parameter is drawn under (a VirtualMLP may read another
        # network's entries through its key_names), and that entry's law
        spec_name = source._key_name(name) if hasattr(source, "_key_name") else name
        law = resolve_law(vs.law[spec_name] if isinstance(vs.law, Mapping) else vs.law)
        key = tuple(np.uint64(k) for k in vs.key(spec_name))
        scale, shift = float(law.scale), float(law.shift)
    return _LayerPrelude(a, c, np.ascontiguousarray(up, dtype=np.int64), vp,
                         np.ascontiguousarray(mp), np.ascontiguousarray(un, dtype=np.int64), vn,
                         np.ascontiguousarray(mn), ub, vb, mb, vs, key, scale, shift, layer, n,
                         m)


def _gather_rows(pre: _LayerPrelude, source: Any, W: np.ndarray, b: np.ndarray | None,
                 r0: int) -> LayerInstances:
    """The instances of target rows ``r0 .. r0 + len(W)`` from a layer's prelude (private).

    ``W`` and ``b`` are the target rows (already sliced). No memory check: the
    caller (:func:`gather_layer_from_source`, or :func:`~slth.constructions._realise.
    realise_kept` once per layer for its row blocks) has checked the peak.
    """
    if pre.vs is None:
        d_out = W.shape[0]
        idx = (np.arange(r0, r0 + d_out, dtype=np.int64)[:, None] * pre.m
               + np.arange(pre.m)[None, :]).ravel()
        second = source.entries(f"weights[{2 * pre.layer + 1}]", idx).reshape(d_out, pre.m)
        return _gather_parts(pre.a, pre.c, second, W, b, pre.n)
    return _gather_virtual(pre, W, b, r0)


def _gather_virtual(pre: _LayerPrelude, W: np.ndarray, b: np.ndarray | None,
                    r0: int) -> LayerInstances:
    """:func:`_gather_parts` with the sign parts' second-layer products fused with Philox."""
    d_out, d_in = W.shape
    n, m = pre.n, pre.m
    P = d_out * d_in
    nb = d_out if b is not None else 0
    main = 2 * n * d_in
    values = np.empty((2 * P + nb, n), dtype=np.float64)
    valid = np.empty((2 * P + nb, n), dtype=bool)
    k0, k1 = pre.key
    _gather_virtual_kernel(k0, k1, pre.scale, pre.shift, np.int64(r0), np.int64(m),
                           pre.units_pos, pre.mag_pos, pre.units_neg, pre.mag_neg,
                           values[:P].reshape(d_out, d_in, n),
                           values[P:2 * P].reshape(d_out, d_in, n))
    valid[:P].reshape(d_out, d_in, n)[...] = pre.val_pos[None]
    valid[P:2 * P].reshape(d_out, d_in, n)[...] = pre.val_neg[None]
    targets = np.empty(2 * P + nb, dtype=np.float64)
    targets[:P] = W.ravel()
    np.negative(W.ravel(), out=targets[P:2 * P])
    units_bias = None
    if b is not None and pre.c is not None:
        units_bias = pre.units_bias
        idx = (np.arange(r0, r0 + d_out, dtype=np.int64)[:, None] * m + main
               + units_bias[None, :])
        cols = pre.vs.entries(f"weights[{2 * pre.layer + 1}]", idx)
        np.multiply(cols, pre.mag_bias[None, :], out=values[2 * P:])
        valid[2 * P:] = pre.val_bias[None, :]
        targets[2 * P:] = b
    return LayerInstances(values, targets, valid, pre.units_pos, pre.units_neg, units_bias,
                          d_in, d_out, n)


def gather_layer_from_source(source: Any, target: MLP, layer: int, n: int, *,
                             rows: slice | None = None, fused: bool = False) -> LayerInstances:
    """:func:`gather_layer` reading only the entries a ticket may keep from a Source.

    Of source layer 2i's ``m x d_in`` weights only the ``m`` block-diagonal ones
    can ever be kept (block j reads ``x_j`` only), and of its bias only the
    constant block's ``2n``: those are read with ``source.entries`` (a
    :class:`slth.sources.VirtualSource` computes them on demand), together with
    the second layer's ``rows`` (all its candidates). Bit for bit the instances
    :func:`gather_layer` builds from the dense arrays of the same source.

    Parameters
    ----------
    source : slth.sources.Source
        Entries keyed by the names of :func:`source_spec`.
    target : MLP
    layer : int
        Target layer i.
    n : int
        Units per sign part.
    rows : slice, optional
        Output rows of the layer to gather (default all).
    fused : bool, default False
        For a :class:`~slth.sources.VirtualSource` (or a VirtualMLP over one),
        compute the second layer's entries inside the product kernel
        (:func:`_gather_virtual_kernel`) instead of reading the rows with
        ``source.entries`` into an array first: the same bits, no (rows, m)
        array, about 3x faster (False: the numpy reference path, every read
        through ``source.entries``).

    Returns
    -------
    LayerInstances
    """
    W = target.weights[layer]
    b = target.biases[layer]
    d_out_all, d_in = W.shape
    rows = slice(0, d_out_all) if rows is None else rows
    r0, r1, _ = rows.indices(d_out_all)
    W, b = W[r0:r1], None if b is None else b[r0:r1]
    d_out = r1 - r0
    two_n = 2 * n
    main = two_n * d_in
    m = main + (two_n if b is not None else 0)
    check_memory(
        gather_bytes(d_in, d_out, n, b is not None) + 16 * d_out * m,
        what=f"gather_layer_from_source: {d_out} rows of a {d_in} -> {d_out_all} layer",
        alternative="gather fewer `rows` at a time",
    )
    return _gather_rows(_layer_prelude(source, target, layer, n, fused), source, W, b, r0)


def scatter_layer(inst: LayerInstances, chosen: np.ndarray, m: int
                  ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Turn the chosen candidates of one layer into the masks of its two source layers.

    Parameters
    ----------
    inst : LayerInstances
        From :func:`gather_layer`.
    chosen : numpy.ndarray
        bool ``(2P + nb, n)``: the selected candidates (columns in ``inst`` order).
    m : int
        Hidden width of the pair.

    Returns
    -------
    (mask_first, mask_first_bias, mask_second)
        bool ``(m, d_in)``, bool ``(m,)`` or None (no target bias), bool
        ``(d_out, m)``. Only valid (right-sign) candidates are kept; a
        first-layer weight (or constant-unit bias) is kept exactly when its unit
        feeds at least one kept second-layer weight.
    """
    d_out, d_in, n = inst.d_out, inst.d_in, inst.n
    check_memory(
        scatter_bytes(d_in, d_out, n, m, inst.units_bias is not None),
        what=f"scatter_layer: the masks of a {d_in} -> {d_out} layer (hidden width {m}, "
             f"bool)",
        alternative=_ALTERNATIVE,
    )
    two_n = 2 * n
    main = two_n * d_in
    P = d_out * d_in
    keep = chosen & inst.valid
    pos = np.zeros((d_out, d_in, two_n), dtype=bool)
    neg = np.zeros((d_out, d_in, two_n), dtype=bool)
    np.put_along_axis(pos, inst.units_pos[None], keep[:P].reshape(d_out, d_in, n), axis=2)
    np.put_along_axis(neg, inst.units_neg[None], keep[P:2 * P].reshape(d_out, d_in, n), axis=2)
    pos |= neg
    del neg
    second = np.zeros((d_out, m), dtype=bool)
    second[:, :main] = pos.reshape(d_out, main)
    used = pos.any(axis=0)                                        # (d_in, 2n)
    first = np.zeros((m, d_in), dtype=bool)
    rows = np.arange(d_in)[:, None] * two_n + np.arange(two_n)[None, :]
    first[rows, np.arange(d_in)[:, None]] = used
    first_bias = None
    if inst.units_bias is not None:
        kb = np.zeros((d_out, two_n), dtype=bool)
        np.put_along_axis(kb, np.broadcast_to(inst.units_bias, (d_out, n)), keep[2 * P:], axis=1)
        second[:, main:main + two_n] = kb
        first_bias = np.zeros(m, dtype=bool)
        first_bias[main:main + two_n] = kb.any(axis=0)
    return first, first_bias, second


def scatter_kept_bytes(d_in: int, d_out: int, n: int, m: int, bias: bool) -> int:
    """Peak bytes :func:`scatter_kept` allocates for ``d_out`` target rows.

    ``keep`` bool (B, n), the chunk's bool (d_out, m) selection, the nonzero
    coordinates of one sign part (three intp arrays of at most ``P n``
    entries, 24 P n) and the returned int64 indices (at most 8 d_out m), with
    ``P = d_out d_in`` and ``B = 2P + nb``; 64 KiB of headers and buffers.
    """
    P = d_out * d_in
    B = 2 * P + (d_out if bias else 0)
    return B * n + d_out * m + 24 * P * n + 8 * d_out * m + (1 << 16)


def scatter_kept(inst: LayerInstances, chosen: np.ndarray, m: int, row0: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The chosen candidates of a block of rows as kept flat indices, without the source's masks.

    The same entries :func:`scatter_layer` marks in its second-layer mask, as
    sorted flat indices of source layer 2i + 1 (rows ``row0 ..
    row0 + inst.d_out``, ``m`` columns), and which units of the pair feed a kept
    entry (their first-layer weight, or constant-unit bias, is kept).

    Parameters
    ----------
    inst : LayerInstances
        From :func:`gather_layer_from_source` (or :func:`gather_layer`) for
        ``inst.d_out`` consecutive target rows.
    chosen : numpy.ndarray
        bool ``(2P + nb, n)``: the selected candidates.
    m : int
        Hidden width of the pair.
    row0 : int
        Index of the block's first target row.

    Returns
    -------
    (second, used, used_bias)
        int64 sorted flat indices into ``weights[2i + 1]`` (shape ``(d_out_all,
        m)``); bool ``(d_in, 2n)``, unit k of block j feeds a kept entry; bool
        ``(2n,)`` the same for the constant block, or None without a bias.
    """
    d_out, d_in, n = inst.d_out, inst.d_in, inst.n
    bias = inst.units_bias is not None
    check_memory(
        scatter_kept_bytes(d_in, d_out, n, m, bias),
        what=f"scatter_kept: the kept entries of {d_out} rows of a {d_in}-input layer "
             f"(hidden width {m})",
        alternative="scatter fewer rows at a time",
    )
    two_n = 2 * n
    main = two_n * d_in
    P = d_out * d_in
    keep = chosen & inst.valid
    sel = np.zeros((d_out, m), dtype=bool)
    for part, units in ((keep[:P], inst.units_pos), (keep[P:2 * P], inst.units_neg)):
        r, j, c = np.nonzero(part.reshape(d_out, d_in, n))
        sel[r, j * two_n + units[j, c]] = True
        del r, j, c
    used_bias = None
    if bias:
        r, c = np.nonzero(keep[2 * P:])
        sel[r, main + inst.units_bias[c]] = True
        used_bias = sel[:, main:main + two_n].any(axis=0)
    used = sel[:, :main].reshape(d_out, d_in, two_n).any(axis=0)
    second = np.flatnonzero(sel)
    second += row0 * m
    return second.astype(np.int64, copy=False), used, used_bias


@intrinsic
def _cttz(typingctx, x):
    """Trailing zero bits of a nonzero uint64 (LLVM ``cttz``: one ``tzcnt``/``bsf``)."""
    if x != types.uint64:
        return None
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))

    return sig, codegen


@numba.njit(cache=True)
def _insert_sorted(buf, cnt, k):  # pragma: no cover - numba
    """Insert ``k`` into the sorted ``buf[:cnt]`` unless present; the new count."""
    i = cnt
    while i > 0 and buf[i - 1] > k:
        i -= 1
    if i > 0 and buf[i - 1] == k:
        return cnt
    for q in range(cnt, i, -1):
        buf[q] = buf[q - 1]
    buf[i] = k
    return cnt + 1


@numba.njit(cache=True)
def _kept_units(chosen, valid, row, row2, units_a, units_b, j, n, buf):  # pragma: no cover
    """Sorted distinct units of block j kept by instance rows ``row`` (units ``units_a``)
    and ``row2`` (``units_b``; -1: none) into ``buf``; their count.

    With 2n <= 64 the kept units are OR-ed into one 64-bit word without
    branches and read back lowest bit first; otherwise insertion-sorted.
    """
    if 2 * n <= 64:
        word = _ZERO
        for c in range(n):
            word |= np.uint64(chosen[row, c] & valid[row, c]) << np.uint64(units_a[j, c])
        if row2 >= 0:
            for c in range(n):
                word |= np.uint64(chosen[row2, c] & valid[row2, c]) << np.uint64(units_b[j, c])
        cnt = 0
        while word != _ZERO:
            buf[cnt] = np.int64(_cttz(word))
            cnt += 1
            word &= word - _ONE
        return cnt
    cnt = 0
    for c in range(n):
        if chosen[row, c] & valid[row, c]:
            cnt = _insert_sorted(buf, cnt, units_a[j, c])
    if row2 >= 0:
        for c in range(n):
            if chosen[row2, c] & valid[row2, c]:
                cnt = _insert_sorted(buf, cnt, units_b[j, c])
    return cnt


@numba.njit(cache=True)
def _scatter_kept_kernel(chosen, valid, units_pos, units_neg, units_bias, d_out, d_in, n, m,
                         row0):  # pragma: no cover - numba
    """Sorted kept flat indices of rows ``row0 ..`` (the twin of :func:`scatter_kept`'s numpy).

    A candidate is kept where ``chosen`` and ``valid`` (both C-contiguous
    (B, n) bool in :class:`LayerInstances` row order) hold; ``units_bias`` is
    ``(1, n)``, or ``(1, 0)`` without a bias. One serial pass: per row and
    block j the units kept by its two sign parts, sorted and distinct
    (:func:`_kept_units`; a unit kept by both parts is one entry, which never
    happens for instances gathered from a source, a unit having one sign).
    Returns ``(indices int64, used (d_in, 2n), used_bias (2n,))``.
    """
    two_n = 2 * n
    main = two_n * d_in
    P = d_out * d_in
    nbias = units_bias.shape[1]
    cf = chosen.ravel()
    vf = valid.ravel()
    bound = 0
    for i in range(cf.shape[0]):
        bound += cf[i] & vf[i]
    out = np.empty(bound, dtype=np.int64)
    used = np.zeros((d_in, two_n), dtype=np.bool_)
    used_bias = np.zeros(two_n, dtype=np.bool_)
    buf = np.empty(two_n, dtype=np.int64)
    t = 0
    for r in range(d_out):
        base = (row0 + r) * m
        for j in range(d_in):
            row = r * d_in + j
            cnt = _kept_units(chosen, valid, row, P + row, units_pos, units_neg, j, n, buf)
            off = base + j * two_n
            for q in range(cnt):
                out[t] = off + buf[q]
                t += 1
                used[j, buf[q]] = True
        if nbias:
            cnt = _kept_units(chosen, valid, 2 * P + r, -1, units_bias, units_bias, 0, n, buf)
            for q in range(cnt):
                out[t] = base + main + buf[q]
                t += 1
                used_bias[buf[q]] = True
    if t < bound:
        out = out[:t].copy()
    return out, used, used_bias


def scatter_kept_fast(inst: LayerInstances, chosen: np.ndarray, m: int, row0: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """:func:`scatter_kept` by one serial numba pass (same result; no (rows, m) selection)."""
    bias = inst.units_bias is not None
    ub = (inst.units_bias.astype(np.int64).reshape(1, -1) if bias
          else np.zeros((1, 0), dtype=np.int64))
    out, used, used_bias = _scatter_kept_kernel(
        np.ascontiguousarray(chosen, dtype=np.bool_), np.ascontiguousarray(inst.valid),
        np.ascontiguousarray(inst.units_pos, dtype=np.int64),
        np.ascontiguousarray(inst.units_neg, dtype=np.int64), ub, inst.d_out, inst.d_in,
        inst.n, m, row0)
    return out, used, (used_bias if bias else None)


def kept_first(used: np.ndarray, used_bias: np.ndarray | None, d_in: int, n: int
               ) -> tuple[np.ndarray, np.ndarray | None]:
    """Kept flat indices of source layer 2i's weights (block diagonal) and bias.

    Unit ``u = j 2n + k`` (block j) reads only ``x_j``: its weight is entry
    ``u d_in + j`` of the ``(m, d_in)`` array, kept when the unit is ``used``
    (:func:`scatter_kept`); constant unit k is bias entry ``2 n d_in + k``.
    Both sorted (int64).
    """
    two_n = 2 * n
    u = np.flatnonzero(used.reshape(-1)).astype(np.int64)
    first = u * d_in + u // two_n
    first_bias = None
    if used_bias is not None:
        first_bias = np.flatnonzero(used_bias).astype(np.int64) + two_n * d_in
    return first, first_bias


def layer_units(
    target: MLP, formula: Callable[..., Any], eps: float, delta: float, C: float
) -> tuple[int, ...]:
    """Per target layer, ``formula(d_in, d_out, depth, eps, delta, C=C)`` as an int.

    ``d_in`` counts a bias as one more input column; ``formula`` is one of the
    width functions of :mod:`slth.bounds`.
    """
    target = check_target(target)
    w = target.widths
    L = target.depth
    return tuple(
        int(formula(w[i] + (target.biases[i] is not None), w[i + 1], L, eps, delta, C=C))
        for i in range(L)
    )


def resolve_width(
    target: MLP,
    units_name: str,
    value: Any,
    source: Any,
    eps: float | None,
    width_from_eps: Callable[[], tuple[int, ...]],
    eps_hint: str,
) -> tuple[MLP | None, tuple[int, ...], str]:
    """Where a construction's width comes from: ``value`` (n or k), a given ``source``, or eps.

    Returns ``(source, units, width_from)``; ``width_from_eps`` is called only
    when neither ``value`` nor ``source`` fixes the width. ``eps_hint`` says, in
    the error raised when nothing fixes it, how eps sets the width.
    """
    units = _validate.int_or_per_layer(units_name, value, target.depth)
    width_from = units_name if units is not None else None
    if source is not None:
        source, units = check_source(source, target, units, units_name)
        width_from = width_from or "source"
    elif units is None:
        if eps is None:
            raise InputError(
                f"pass `eps` ({eps_hint}), `{units_name}` (units per sign part and input "
                f"coordinate) or `source`; received eps=None, {units_name}=None, source=None"
            )
        units = width_from_eps()
        width_from = "eps"
    return source, units, width_from


def nested_source(
    source: MLP, target: MLP, units_big: Sequence[int], units: Sequence[int]
) -> MLP:
    """The source with ``units[i]`` units per part cut out of one with ``units_big[i]``.

    Keeps the first ``2 units[i]`` hidden units of every block of target layer
    i (the layout of :func:`source_widths`), so sources of growing width are
    nested: a width sweep prunes one random network, as the theorems' "a large
    enough random network contains..." reads. Bias-free targets only (Theorem
    1's setting).
    """
    if target.has_biases:
        raise InputError("`target` must be bias-free (Theorem 1's setting); received biases")
    if any(int(n) > int(N) or int(n) < 1 for n, N in zip(units, units_big)):
        raise InputError(
            f"`units` must lie in [1, units_big] = [1, {list(units_big)}]; "
            f"received {list(units)}"
        )
    # the cut arrays (fancy indexing makes fresh float64 copies: 8 bytes per
    # kept entry, the source's own layer shapes with 2 n d_in hidden units), the
    # int64 index of each layer (8 * 2 n d_in), and the bool temporary of MLP's
    # finiteness check on the largest array
    sizes, hidden = [], []
    for i, n in enumerate(units):
        hidden.append(2 * int(n) * target.widths[i])
        sizes += [hidden[-1] * source.weights[2 * i].shape[1],
                  source.weights[2 * i + 1].shape[0] * hidden[-1]]
    check_memory(
        8 * sum(sizes) + max(sizes) + 8 * max(hidden),
        what=f"nested_source: the cut source ({len(sizes)} float64 arrays, "
             f"{format_count(sum(sizes))} weights, units {list(units)})",
        alternative="cut fewer units per part (a smaller `units`)",
    )
    weights = []
    for i, (n, N) in enumerate(zip(units, units_big)):
        d_in = target.widths[i]
        idx = (np.arange(d_in)[:, None] * 2 * int(N) + np.arange(2 * int(n))[None, :]).ravel()
        # fancy indexing already returns fresh arrays: no second copy
        weights += [source.weights[2 * i][idx, :], source.weights[2 * i + 1][:, idx]]
    return MLP(tuple(weights))
