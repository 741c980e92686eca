"""Philox4x64-10 in numba, bit for bit with :class:`numpy.random.Philox`.

Philox (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as
1, 2, 3", SC 2011) is a counter-based generator: a keyed bijection of a
256-bit counter (four uint64 words) under a 128-bit key (two uint64 words).
numpy, JAX and Random123 share it, so a value drawn here can be checked
against any of them. Entry ``i`` of a virtual random parameter is a pure
function of its key and ``i`` (:func:`entries_uniform`), computed without
drawing the ``i - 1`` values before it.

The bijection
-------------
:func:`philox4x64_10` maps ``counter = (c0, c1, c2, c3)`` under
``key = (k0, k1)`` through ten rounds; round ``r`` (``r = 0 .. 9``) uses the
key bumped ``r`` times by the Weyl constants ``W0 = 0x9E3779B97F4A7C15``,
``W1 = 0xBB67AE8584CAA73B`` (``k0 += r W0``, ``k1 += r W1``, modulo 2^64) and
the multipliers ``M0 = 0xD2E7470EE14C6C93``, ``M1 = 0xCA5A826395121157``::

    (hi0, lo0) = M0 * c0        # the 128-bit product, high and low words
    (hi1, lo1) = M1 * c2
    (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)

The output is the counter after the tenth round.

numpy's conventions (checked with numpy 2.4)
--------------------------------------------
- ``Philox(key=k, counter=c).random_raw(4)`` is ``philox4x64_10(k, c + 1)``:
  numpy increments the 256-bit counter (c0 the lowest word, carries into
  c1, c2, c3) *before* each block (:func:`numpy_random_raw4`).
- So the stream of ``Philox(key=k)`` (counter 0) is the concatenation of the
  blocks ``philox4x64_10(k, (b + 1, 0, 0, 0))``, ``b = 0, 1, ...``: its word
  ``i`` is lane ``i % 4`` of block ``b = i // 4`` (:func:`stream_raw`).
- ``Generator(Philox(key=k)).random(n)`` is ``(word >> 11) * 2**-53`` of the
  stream's first ``n`` words, one word per double: a float64 in [0, 1), a
  multiple of 2^-53 (:func:`entries_uniform`).
- ``key=k`` as a two-element uint64 array is ``(k0, k1)``; as a Python int it
  is ``k0 + 2**64 k1``.

The multiply-high
-----------------
numba has no 128-bit integer type; :func:`_mulhilo` emits LLVM's ``i128``
multiply through a numba intrinsic (one ``mul``/``mulx`` on x86-64). Its
portable twin :func:`_mulhilo32` splits both factors into 32-bit halves and
sums the four partial products with explicit carries; the tests check both
against Python's integers.

Every kernel has a plain-Python twin on Python integers (``reference_*``),
compared bit for bit in ``tests/test_sources.py`` with numpy's Philox.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.extending import intrinsic

from .errors import InputError, ShapeError, format_value

__all__ = [
    "M0",
    "M1",
    "W0",
    "W1",
    "entries_uniform",
    "numpy_random_raw4",
    "philox4x64_10",
    "philox4x64_10_batch",
    "reference_entries_uniform",
    "reference_numpy_random_raw4",
    "reference_philox4x64_10",
    "reference_stream_raw",
    "stream_raw",
]

#: Philox4x64 multipliers and Weyl (key schedule) constants (Salmon et al. 2011).
M0 = 0xD2E7470EE14C6C93
M1 = 0xCA5A826395121157
W0 = 0x9E3779B97F4A7C15
W1 = 0xBB67AE8584CAA73B
#: Rounds of Philox4x64-10.
ROUNDS = 10
#: Largest stream position a kernel accepts (int64 indices).
MAX_INDEX = (1 << 63) - 1

_MASK64 = (1 << 64) - 1
_U64_M0 = np.uint64(M0)
_U64_M1 = np.uint64(M1)
_U64_W0 = np.uint64(W0)
_U64_W1 = np.uint64(W1)
_U32_MASK = np.uint64(0xFFFFFFFF)
_U32_SHIFT = np.uint64(32)
_U11 = np.uint64(11)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)
_TWO_M53 = 2.0**-53
# below this many indices the serial kernel runs (a parallel launch costs more)
_PARALLEL_MIN = 1 << 14
# indices per task of the parallel kernel (each task caches its last block)
_CHUNK = 1 << 12

_I64 = ir.IntType(64)
_I128 = ir.IntType(128)


# ----------------------------------------------------------------------------- numba kernels
@intrinsic
def _mulhilo(typingctx, a, b):
    """(high, low) words of the 128-bit product of two uint64, as LLVM ``mul i128``."""
    if a != types.uint64 or b != types.uint64:
        return None
    ret = types.UniTuple(types.uint64, 2)
    sig = ret(types.uint64, types.uint64)

    def codegen(context, builder, signature, args):
        x = builder.zext(args[0], _I128)
        y = builder.zext(args[1], _I128)
        p = builder.mul(x, y)
        hi = builder.trunc(builder.lshr(p, ir.Constant(_I128, 64)), _I64)
        lo = builder.trunc(p, _I64)
        return context.make_tuple(builder, signature.return_type, [hi, lo])

    return sig, codegen


@numba.njit(cache=True)
def _mulhilo32(a, b):
    """(high, low) words of ``a * b`` (uint64) from 32-bit halves, without 128-bit types."""
    a_lo = a & _U32_MASK
    a_hi = a >> _U32_SHIFT
    b_lo = b & _U32_MASK
    b_hi = b >> _U32_SHIFT
    ll = a_lo * b_lo
    lh = a_lo * b_hi
    hl = a_hi * b_lo
    hh = a_hi * b_hi
    # the middle column: at most 3 (2^32 - 1) < 2^34, no overflow
    mid = (ll >> _U32_SHIFT) + (lh & _U32_MASK) + (hl & _U32_MASK)
    hi = hh + (lh >> _U32_SHIFT) + (hl >> _U32_SHIFT) + (mid >> _U32_SHIFT)
    lo = a * b
    return hi, lo


@numba.njit(cache=True)
def _philox(k0, k1, c0, c1, c2, c3):
    """Philox4x64-10 of the counter (c0..c3) under the key (k0, k1); all uint64."""
    for _ in range(ROUNDS):
        hi0, lo0 = _mulhilo(_U64_M0, c0)
        hi1, lo1 = _mulhilo(_U64_M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0 = k0 + _U64_W0
        k1 = k1 + _U64_W1
    return c0, c1, c2, c3


@numba.njit(cache=True)
def _philox32(k0, k1, c0, c1, c2, c3):
    """:func:`_philox` with the 32-bit-halves multiply (:func:`_mulhilo32`)."""
    for _ in range(ROUNDS):
        hi0, lo0 = _mulhilo32(_U64_M0, c0)
        hi1, lo1 = _mulhilo32(_U64_M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0 = k0 + _U64_W0
        k1 = k1 + _U64_W1
    return c0, c1, c2, c3


@numba.njit(cache=True)
def _blocks_kernel(key, counters, out, split):
    """out[j] = philox4x64_10(key, counters[j]) for every row j (serial)."""
    k0 = key[0]
    k1 = key[1]
    for j in range(counters.shape[0]):
        if split:
            r = _philox32(k0, k1, counters[j, 0], counters[j, 1], counters[j, 2], counters[j, 3])
        else:
            r = _philox(k0, k1, counters[j, 0], counters[j, 1], counters[j, 2], counters[j, 3])
        out[j, 0] = r[0]
        out[j, 1] = r[1]
        out[j, 2] = r[2]
        out[j, 3] = r[3]


@numba.njit(cache=True, parallel=True)
def _blocks_kernel_parallel(key, counters, out, split):
    """:func:`_blocks_kernel` with the rows cut into independent chunks, one task each."""
    n = counters.shape[0]
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    for t in prange(n_chunks):
        lo = t * _CHUNK
        hi = min(n, lo + _CHUNK)
        _blocks_kernel(key, counters[lo:hi], out[lo:hi], split)


@numba.njit(cache=True)
def _lane(r0, r1, r2, r3, lane):
    if lane == 0:
        return r0
    if lane == 1:
        return r1
    if lane == 2:
        return r2
    return r3


@numba.njit(cache=True)
def _raw_kernel(k0, k1, index, out):
    """out[j] = word index[j] of the stream of Philox(key=(k0, k1)) (serial).

    Consecutive indices in the same block reuse it (a contiguous read costs a
    quarter of a block per entry).
    """
    last = np.int64(-1)
    r0 = r1 = r2 = r3 = _ZERO
    for j in range(index.shape[0]):
        i = index[j]
        b = i >> 2
        if b != last:
            r0, r1, r2, r3 = _philox(k0, k1, np.uint64(b) + _ONE, _ZERO, _ZERO, _ZERO)
            last = b
        out[j] = _lane(r0, r1, r2, r3, i & 3)


@numba.njit(cache=True)
def _affine_kernel(k0, k1, index, scale, shift, out):
    """out[j] = u[j] * scale + shift, u[j] = (word index[j] >> 11) 2^-53 (serial)."""
    last = np.int64(-1)
    r0 = r1 = r2 = r3 = _ZERO
    for j in range(index.shape[0]):
        i = index[j]
        b = i >> 2
        if b != last:
            r0, r1, r2, r3 = _philox(k0, k1, np.uint64(b) + _ONE, _ZERO, _ZERO, _ZERO)
            last = b
        w = _lane(r0, r1, r2, r3, i & 3)
        u = np.float64(w >> _U11) * _TWO_M53
        out[j] = u * scale + shift


@numba.njit(cache=True, parallel=True)
def _raw_kernel_parallel(k0, k1, index, out):
    n = index.shape[0]
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    for t in prange(n_chunks):
        lo = t * _CHUNK
        hi = min(n, lo + _CHUNK)
        _raw_kernel(k0, k1, index[lo:hi], out[lo:hi])


@numba.njit(cache=True, parallel=True)
def _affine_kernel_parallel(k0, k1, index, scale, shift, out):
    n = index.shape[0]
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    for t in prange(n_chunks):
        lo = t * _CHUNK
        hi = min(n, lo + _CHUNK)
        _affine_kernel(k0, k1, index[lo:hi], scale, shift, out[lo:hi])


@numba.njit(cache=True)
def _increment(counter):
    """counter + 1 modulo 2^256 (word 0 the lowest), as numpy increments it."""
    out = counter.copy()
    for w in range(4):
        out[w] = out[w] + _ONE
        if out[w] != _ZERO:
            break
    return out


# ----------------------------------------------------------------------------- validation
def _words(value: object) -> np.ndarray | None:
    """``value`` as a uint64 array if it holds only integers in [0, 2^64), else None."""
    if isinstance(value, np.ndarray) and value.dtype == np.uint64:
        return value
    try:
        obj = np.asarray(value, dtype=object)
    except (TypeError, ValueError):
        return None
    vals = obj.ravel().tolist()
    for v in vals:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            return None
        if not 0 <= int(v) <= _MASK64:
            return None
    return np.array([int(v) for v in vals], dtype=np.uint64).reshape(obj.shape)


def _as_key(key: Sequence[int] | np.ndarray) -> np.ndarray:
    """A Philox key as a uint64 array (k0, k1); each word an integer in [0, 2^64)."""
    arr = _words(key)
    if arr is None or arr.shape != (2,):
        raise InputError(
            "`key` must be two integers in [0, 2^64) (k0, k1); "
            f"received {format_value(key)}")
    return np.ascontiguousarray(arr)


def _as_counters(counter: Sequence[int] | np.ndarray, *, batch: bool) -> np.ndarray:
    """Counters as a C-contiguous uint64 array of shape (4,) or (n, 4)."""
    want = "(n, 4)" if batch else "(4,)"
    arr = _words(counter)
    if arr is None:
        raise InputError(
            f"`counter` must hold integers in [0, 2^64) with shape {want}; "
            f"received {format_value(counter)}")
    if (batch and (arr.ndim != 2 or arr.shape[1] != 4)) or (not batch and arr.shape != (4,)):
        raise ShapeError(
            f"`counter` must have shape {want}; received shape {tuple(arr.shape)}")
    return np.ascontiguousarray(arr)


def _as_index(flat_index: Sequence[int] | np.ndarray | int, *, name: str = "flat_index",
              size: int | None = None, what: str = "") -> np.ndarray:
    """Stream positions as an int64 array (any shape), each in [0, size) (or [0, 2^63))."""
    limit = MAX_INDEX + 1 if size is None else size
    domain = "integers in [0, 2^63)" if size is None else f"integers in [0, {size})"
    where = f" of {what}" if what else ""
    arr = np.asarray(flat_index)
    if arr.dtype == object:
        try:
            vals = arr.ravel().tolist()
            if not all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
                       for v in vals):
                raise TypeError
        except TypeError:
            raise InputError(
                f"`{name}`{where} must hold {domain}; received {format_value(flat_index)}"
            ) from None
        bad = [v for v in vals if not 0 <= int(v) < limit]
        if bad:
            raise InputError(f"`{name}`{where} must hold {domain}; received {int(bad[0])}")
        return np.array(vals, dtype=np.int64).reshape(arr.shape)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        shown = repr(arr.tolist()) if arr.size <= 6 else f"an array of shape {arr.shape}"
        raise InputError(
            f"`{name}`{where} must hold {domain} (an integer dtype); received "
            f"{shown} of dtype {arr.dtype}")
    if arr.size:
        lo = int(arr.min())
        hi = int(arr.max())
        if lo < 0 or hi >= limit:
            v = lo if lo < 0 else hi
            pos = int(np.argmax(arr.ravel() == v))
            raise InputError(
                f"`{name}`{where} must hold {domain}; received {v} (at flat position {pos})")
    return arr.astype(np.int64, copy=False)


# ----------------------------------------------------------------------------- public kernels
def philox4x64_10(key: Sequence[int] | np.ndarray,
                  counter: Sequence[int] | np.ndarray) -> np.ndarray:
    """The Philox4x64-10 bijection of one counter: four uint64 words.

    Parameters
    ----------
    key : sequence of 2 int or uint64 array
        ``(k0, k1)``, each in [0, 2^64) (numpy's ``Philox(key=[k0, k1])``).
    counter : sequence of 4 int or uint64 array
        ``(c0, c1, c2, c3)``, c0 the lowest word, each in [0, 2^64).

    Returns
    -------
    numpy.ndarray
        uint64, shape (4,). Equals ``Philox(key=key, counter=counter - 1).random_raw(4)``
        (numpy increments the counter before each block; see :func:`numpy_random_raw4`).

    Raises
    ------
    InputError, ShapeError
        ``key`` or ``counter`` outside their domains or shapes.
    """
    k = _as_key(key)
    c = _as_counters(counter, batch=False).reshape(1, 4)
    out = np.empty((1, 4), dtype=np.uint64)
    _blocks_kernel(k, c, out, False)
    return out[0]


def philox4x64_10_batch(key: Sequence[int] | np.ndarray, counters: np.ndarray, *,
                        split: bool = False) -> np.ndarray:
    """:func:`philox4x64_10` of many counters under one key, in parallel over rows.

    Parameters
    ----------
    key : sequence of 2 int or uint64 array
        ``(k0, k1)``, each in [0, 2^64).
    counters : array_like of int, shape (n, 4)
        One counter per row, values in [0, 2^64).
    split : bool, default False
        Use the 32-bit-halves multiply-high instead of LLVM's 128-bit multiply
        (same bits; kept for testing and for targets without 128-bit multiplies).

    Returns
    -------
    numpy.ndarray
        uint64, shape (n, 4): row j is the block of ``counters[j]``.
    """
    k = _as_key(key)
    c = _as_counters(counters, batch=True)
    out = np.empty(c.shape, dtype=np.uint64)
    if c.shape[0] >= _PARALLEL_MIN // 4:
        _blocks_kernel_parallel(k, c, out, bool(split))
    else:
        _blocks_kernel(k, c, out, bool(split))
    return out


def numpy_random_raw4(key: Sequence[int] | np.ndarray,
                      counter: Sequence[int] | np.ndarray) -> np.ndarray:
    """What ``numpy.random.Philox(key=key, counter=counter).random_raw(4)`` returns.

    numpy increments the counter (modulo 2^256, carrying from word 0 upwards)
    before computing a block, so this is ``philox4x64_10(key, counter + 1)``.

    Parameters
    ----------
    key : sequence of 2 int or uint64 array
    counter : sequence of 4 int or uint64 array

    Returns
    -------
    numpy.ndarray
        uint64, shape (4,).
    """
    k = _as_key(key)
    c = _increment(_as_counters(counter, batch=False)).reshape(1, 4)
    out = np.empty((1, 4), dtype=np.uint64)
    _blocks_kernel(k, c, out, False)
    return out[0]


def stream_raw(key: Sequence[int] | np.ndarray,
               flat_index: Sequence[int] | np.ndarray | int) -> np.ndarray:
    """Words ``flat_index`` of the stream of ``numpy.random.Philox(key=key)``.

    Word ``i`` is lane ``i % 4`` of ``philox4x64_10(key, (i // 4 + 1, 0, 0, 0))``,
    i.e. ``Philox(key=key).random_raw(i + 1)[i]``, computed without the words before it.

    Parameters
    ----------
    key : sequence of 2 int or uint64 array
    flat_index : int or array_like of int
        Stream positions, each in [0, 2^63), any shape.

    Returns
    -------
    numpy.ndarray
        uint64, the shape of ``flat_index``.
    """
    k = _as_key(key)
    idx = _as_index(flat_index)
    flat = np.ascontiguousarray(idx.ravel())
    out = np.empty(flat.shape, dtype=np.uint64)
    if flat.size >= _PARALLEL_MIN:
        _raw_kernel_parallel(k[0], k[1], flat, out)
    else:
        _raw_kernel(k[0], k[1], flat, out)
    return out.reshape(idx.shape)


def _affine_entries(k: np.ndarray, flat: np.ndarray, scale: float, shift: float) -> np.ndarray:
    """``u * scale + shift`` at validated int64 positions ``flat`` (1-d, contiguous)."""
    out = np.empty(flat.shape, dtype=np.float64)
    if flat.size >= _PARALLEL_MIN:
        _affine_kernel_parallel(k[0], k[1], flat, float(scale), float(shift), out)
    else:
        _affine_kernel(k[0], k[1], flat, float(scale), float(shift), out)
    return out


def entries_uniform(key: Sequence[int] | np.ndarray,
                    flat_index: Sequence[int] | np.ndarray | int) -> np.ndarray:
    """Doubles ``flat_index`` of ``Generator(Philox(key=key)).random(n)``, each computed alone.

    Entry ``i`` is ``(stream_raw(key, i) >> 11) * 2**-53``: a multiple of 2^-53
    in [0, 1), exactly what numpy's ``Generator.random`` makes of word ``i``.

    Parameters
    ----------
    key : sequence of 2 int or uint64 array
    flat_index : int or array_like of int
        Positions, each in [0, 2^63), any shape.

    Returns
    -------
    numpy.ndarray
        float64, the shape of ``flat_index``.
    """
    k = _as_key(key)
    idx = _as_index(flat_index)
    flat = np.ascontiguousarray(idx.ravel())
    return _affine_entries(k, flat, 1.0, 0.0).reshape(idx.shape)


# ----------------------------------------------------------------------------- reference twins
def reference_philox4x64_10(key: Sequence[int], counter: Sequence[int]) -> tuple[int, ...]:
    """Plain-Python twin of :func:`philox4x64_10` on Python integers (slow).

    Parameters
    ----------
    key : sequence of 2 int
        In [0, 2^64).
    counter : sequence of 4 int
        In [0, 2^64).

    Returns
    -------
    tuple of 4 int
    """
    k0, k1 = (int(w) for w in key)
    c0, c1, c2, c3 = (int(w) for w in counter)
    for _ in range(ROUNDS):
        p0 = M0 * c0
        p1 = M1 * c2
        c0, c1, c2, c3 = (p1 >> 64) ^ c1 ^ k0, p1 & _MASK64, (p0 >> 64) ^ c3 ^ k1, p0 & _MASK64
        k0 = (k0 + W0) & _MASK64
        k1 = (k1 + W1) & _MASK64
    return c0, c1, c2, c3


def reference_numpy_random_raw4(key: Sequence[int], counter: Sequence[int]) -> tuple[int, ...]:
    """Plain-Python twin of :func:`numpy_random_raw4`: the 256-bit counter + 1, then the block."""
    c = [int(w) for w in counter]
    value = (c[0] | (c[1] << 64) | (c[2] << 128) | (c[3] << 192)) + 1
    value &= (1 << 256) - 1
    return reference_philox4x64_10(key, [(value >> (64 * w)) & _MASK64 for w in range(4)])


def reference_stream_raw(key: Sequence[int], flat_index: Sequence[int]) -> list[int]:
    """Plain-Python twin of :func:`stream_raw` (one block per index, no caching)."""
    return [reference_philox4x64_10(key, (int(i) // 4 + 1, 0, 0, 0))[int(i) % 4]
            for i in flat_index]


def reference_entries_uniform(key: Sequence[int], flat_index: Sequence[int]) -> np.ndarray:
    """Plain-Python twin of :func:`entries_uniform`: ``(word >> 11) / 2^53`` as a float64."""
    return np.array([(w >> 11) / float(1 << 53) for w in reference_stream_raw(key, flat_index)],
                    dtype=np.float64)
