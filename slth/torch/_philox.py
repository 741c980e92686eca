"""Philox4x64-10 in torch integer ops, bit for bit with :mod:`slth._philox` (and numpy).

The same bijection as the numba kernels of :mod:`slth._philox` (Salmon, Moraes,
Dror and Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011; numpy's
``Philox``), vectorised over counters on any torch device, so a
:class:`slth.sources.VirtualSource` can be materialised where a construction
runs (:func:`materialise`, :func:`source_entries`) with the bits of its CPU
entries.

Arithmetic without uint64
-------------------------
torch has no unsigned 64-bit multiply-high, and signed int64 overflow is not
something to rely on. Every 64-bit word is therefore held as four 16-bit
limbs in int64 tensors (values in [0, 2^16)), and no intermediate ever leaves
the int64 range:

* the 64 x 64 -> 128-bit products ``M0 * c0`` and ``M1 * c2`` are schoolbook
  sums over limbs: column ``k`` adds the (at most four) products
  ``m_i c_j`` with ``i + j = k``, each below 2^32, so a column stays below
  2^35; the carries are then propagated column by column (masks and right
  shifts of non-negative values only), giving the eight limbs of the product:
  limbs 0-3 the low word, 4-7 the high word;
* XOR works limb by limb; the round keys ``k0 + r W0``, ``k1 + r W1`` (mod
  2^64) are Python integers, split into limbs once;
* a word is read into limbs with an arithmetic right shift *followed by a
  16-bit mask* (the sign bits the shift drags in are masked away);
* back to a word: the double ``(w >> 11) 2^-53`` of ``Generator.random`` is
  ``(l3 2^37 + l2 2^21 + l1 2^5 + (l0 >> 11)) 2^-53``, an integer below 2^53
  converted exactly; a raw word is returned as the int64 with the same 64
  bits (top limb made signed first, so the reassembly does not overflow
  either): ``tensor.cpu().numpy().view(numpy.uint64)`` gives the uint64.

The stream (numpy's conventions, see :mod:`slth._philox`): word ``i`` of the
stream of ``Philox(key=k)`` is lane ``i % 4`` of block ``philox(k, (i // 4 + 1,
0, 0, 0))``; entry ``i`` of a source parameter is ``u * scale + shift`` with
``u = (word >> 11) 2^-53``, as two float64 tensor operations (a multiply, then
an add: the roundings of the numba and numpy paths; eager torch fuses
nothing into an FMA).

Memory
------
A request is computed in chunks of blocks whose working set (the 16 limb
tensors of the state, the product columns and temporaries: about
:data:`BLOCK_BYTES` bytes per block) fits ``chunk_bytes``; the whole request's
output, index copies and one chunk are checked against slth's memory budget
(:func:`slth._memory.check_memory`) before anything is allocated, and refused
with :class:`~slth.errors.LimitError` naming the estimate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .. import _philox as _np_philox
from .._memory import check_memory, format_bytes, format_count
from ..errors import InputError, ShapeError, format_value
from ._common import as_device

__all__ = [
    "BLOCK_BYTES",
    "CHUNK_BYTES",
    "as_uint64",
    "entries_affine",
    "entries_uniform",
    "materialise",
    "philox4x64_10_batch",
    "source_entries",
    "stream_raw",
]

#: Default device bytes of one chunk's working set.
CHUNK_BYTES = 256 << 20
#: Estimated peak working bytes per Philox block of a chunk: the state (16 limbs), the new
#: state, the product columns (2 x 7), the product limbs (2 x 8) and temporaries, int64 each,
#: with margin.
BLOCK_BYTES = 8 * 96

_L16 = 0xFFFF
_MASK64 = (1 << 64) - 1
_TWO_M53 = 2.0**-53
_M = (_np_philox.M0, _np_philox.M1)


def _limbs_int(v: int) -> list[int]:
    """The four 16-bit limbs of a Python int in [0, 2^64), lowest first."""
    return [(v >> (16 * i)) & _L16 for i in range(4)]


#: Round r's key limbs: (k0 + r W0, k1 + r W1) mod 2^64, per key (cached per call).
def _round_keys(k0: int, k1: int) -> list[tuple[list[int], list[int]]]:
    out = []
    for r in range(_np_philox.ROUNDS):
        out.append((_limbs_int((k0 + r * _np_philox.W0) & _MASK64),
                    _limbs_int((k1 + r * _np_philox.W1) & _MASK64)))
    return out


def _split(w: torch.Tensor) -> list[torch.Tensor]:
    """int64 words (any bits) -> four limb tensors in [0, 2^16) (shift, then mask)."""
    return [w & _L16] + [(w >> (16 * i)) & _L16 for i in range(1, 4)]


def _mul_const(m: int, c: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(high limbs, low limbs) of the 128-bit product of the constant ``m`` and the word ``c``.

    Column sums of at most four products below 2^32 each (< 2^35), then the carries, left
    to right: every value non-negative and far below 2^63.
    """
    ml = _limbs_int(m)
    cols: list[Any] = [None] * 7
    for i in range(4):
        for j in range(4):
            p = c[j] * ml[i]
            k = i + j
            cols[k] = p if cols[k] is None else cols[k] + p
    out: list[torch.Tensor] = []
    carry: Any = None
    for k in range(7):
        v = cols[k] if carry is None else cols[k] + carry
        out.append(v & _L16)
        carry = v >> 16
    out.append(carry)
    return out[4:], out[:4]


def _xor3(a: list[torch.Tensor], b: list[torch.Tensor], k: list[int]) -> list[torch.Tensor]:
    return [(a[i] ^ b[i]) ^ k[i] for i in range(4)]


def _rounds(keys: list[tuple[list[int], list[int]]], c: list[list[torch.Tensor]]
            ) -> list[list[torch.Tensor]]:
    """Ten Philox4x64 rounds of the state ``c`` (four words of four limbs)."""
    c0, c1, c2, c3 = c
    for k0, k1 in keys:
        hi0, lo0 = _mul_const(_M[0], c0)
        hi1, lo1 = _mul_const(_M[1], c2)
        c0, c1, c2, c3 = _xor3(hi1, c1, k0), lo1, _xor3(hi0, c3, k1), lo0
    return [c0, c1, c2, c3]


def _to_uniform(w: list[torch.Tensor]) -> torch.Tensor:
    """float64 ``(word >> 11) 2^-53`` from a word's limbs (an exact conversion: < 2^53)."""
    top = (w[3] << 37) | (w[2] << 21) | (w[1] << 5) | (w[0] >> 11)
    return top.to(torch.float64) * _TWO_M53


def _to_word(w: list[torch.Tensor]) -> torch.Tensor:
    """int64 with the word's 64 bits (the top limb signed first: no overflow)."""
    top = w[3] - ((w[3] >> 15) << 16)          # in [-2^15, 2^15)
    return top * (1 << 48) + ((w[2] << 32) | (w[1] << 16) | w[0])


# ----------------------------------------------------------------------------- validation
def _key_ints(key: Sequence[int] | np.ndarray) -> tuple[int, int]:
    k = _np_philox._as_key(key)
    return int(k[0]), int(k[1])


def _index_tensor(flat_index: Any, size: int | None, what: str,
                  dev: torch.device) -> torch.Tensor:
    """Validated int64 positions on ``dev`` (any shape), each in [0, size) (or [0, 2^63))."""
    if isinstance(flat_index, torch.Tensor):
        if flat_index.dtype == torch.bool or flat_index.is_floating_point() \
                or flat_index.is_complex():
            raise InputError(f"`flat_index`{what} must hold integers (an integer dtype); "
                             f"received a tensor of dtype {flat_index.dtype}")
        idx = flat_index.to(device=dev).view(torch.int64) \
            if flat_index.dtype == getattr(torch, "uint64", None) \
            else flat_index.to(device=dev, dtype=torch.int64)
        if idx.numel() and bool((idx < 0).any()) and not flat_index.dtype.is_signed:
            raise InputError(f"`flat_index`{what} must hold integers in "
                             f"{'[0, 2^63)' if size is None else f'[0, {size})'}; received a "
                             "uint64 value >= 2^63")
        if idx.numel():
            lo, hi = int(idx.min()), int(idx.max())
            limit = _np_philox.MAX_INDEX + 1 if size is None else size
            if lo < 0 or hi >= limit:
                v = lo if lo < 0 else hi
                dom = "[0, 2^63)" if size is None else f"[0, {size})"
                raise InputError(f"`flat_index`{what} must hold integers in {dom}; "
                                 f"received {v}")
        return idx
    arr = _np_philox._as_index(flat_index, size=size, what=what.removeprefix(" of "))
    return torch.from_numpy(np.array(arr, dtype=np.int64, order="C")).to(dev)


def _check_request(n_out: int, n_blocks: int, chunk_blocks: int, what: str) -> None:
    """The output (8 bytes per entry), its index copies (24) and one chunk, before allocating."""
    need = 32 * n_out + 32 * n_blocks + BLOCK_BYTES * chunk_blocks
    check_memory(need, what=f"{what}: {format_count(n_out)} entries "
                            f"({format_count(n_blocks)} Philox blocks)",
                 alternative="ask for the entries in smaller batches")


def _chunk_blocks(chunk_bytes: int) -> int:
    if isinstance(chunk_bytes, bool) or not isinstance(chunk_bytes, (int, np.integer)) \
            or chunk_bytes < 1:
        raise InputError(f"`chunk_bytes` must be a positive int; received "
                         f"{format_value(chunk_bytes)}")
    return max(1, int(chunk_bytes) // BLOCK_BYTES)


# ----------------------------------------------------------------------------- the blocks
def _block_words(keys: list[tuple[list[int], list[int]]], blocks: torch.Tensor, *,
                 uniform: bool, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    """(4, N): the four lanes of ``philox(key, (b + 1, 0, 0, 0))`` for stream blocks ``b``.

    ``uniform``: float64 ``u * scale + shift``; else the raw words as int64 bits.
    """
    zero = torch.zeros_like(blocks)
    c0 = _split(blocks + 1)
    zeros = [zero, zero, zero, zero]
    out = _rounds(keys, [c0, zeros, zeros, zeros])
    if not uniform:
        return torch.stack([_to_word(w) for w in out])
    u = torch.stack([_to_uniform(w) for w in out])
    if scale != 1.0 or shift != 0.0:
        u = torch.mul(u, scale)
        u = torch.add(u, shift)
    return u


def philox4x64_10_batch(key: Sequence[int] | np.ndarray, counters: Any, *, device: Any = None,
                        chunk_bytes: int = CHUNK_BYTES) -> torch.Tensor:
    """Philox4x64-10 of many counters under one key, on ``device``.

    Parameters
    ----------
    key : sequence of 2 int or uint64 array
        ``(k0, k1)``, each in [0, 2^64).
    counters : array_like of int (values in [0, 2^64)) or int64 tensor, shape (n, 4)
        One counter per row, ``c0`` the lowest word. An int64 tensor is read as the
        bits of uint64 words (``numpy_array.view(numpy.int64)``).
    device : torch.device or str, optional
        Default: CUDA when available, else CPU.
    chunk_bytes : int, default :data:`CHUNK_BYTES`
        Working bytes per chunk of rows.

    Returns
    -------
    torch.Tensor
        int64 ``(n, 4)`` on ``device``: row j holds the bits of
        :func:`slth._philox.philox4x64_10_batch` ``(key, counters)[j]``
        (:func:`as_uint64` gives the uint64 array).

    Raises
    ------
    InputError, ShapeError
        ``key`` or ``counters`` outside their domains or shapes.
    LimitError
        The request exceeds the memory budget.
    """
    dev = as_device(device)
    k0, k1 = _key_ints(key)
    if isinstance(counters, torch.Tensor):
        if counters.dtype != torch.int64:
            raise InputError(f"`counters` as a tensor must be int64 (the bits of uint64 words); "
                             f"received dtype {counters.dtype}")
        if counters.ndim != 2 or counters.shape[1] != 4:
            raise ShapeError(f"`counters` must have shape (n, 4); received shape "
                             f"{tuple(counters.shape)}")
        c = counters.to(dev)
    else:
        arr = _np_philox._as_counters(counters, batch=True)
        c = torch.from_numpy(arr.view(np.int64).copy()).to(dev)
    n = c.shape[0]
    rows = _chunk_blocks(chunk_bytes)
    _check_request(4 * n, n, min(n, rows), "torch philox4x64_10_batch")
    keys = _round_keys(k0, k1)
    out = torch.empty((n, 4), dtype=torch.int64, device=dev)
    for lo in range(0, n, rows):
        hi = min(n, lo + rows)
        words = _rounds(keys, [_split(c[lo:hi, w]) for w in range(4)])
        for w in range(4):
            out[lo:hi, w] = _to_word(words[w])
    return out


def as_uint64(t: torch.Tensor) -> np.ndarray:
    """The uint64 numpy array with the bits of an int64 tensor (on any device).

    Parameters
    ----------
    t : torch.Tensor
        int64 (as returned by :func:`stream_raw` and :func:`philox4x64_10_batch`).

    Returns
    -------
    numpy.ndarray
        uint64, the shape of ``t`` (copied to the host).
    """
    return t.detach().cpu().numpy().view(np.uint64)


def _gather(key: Sequence[int] | np.ndarray, flat_index: Any, *, uniform: bool, scale: float,
            shift: float, device: Any, chunk_bytes: int, size: int | None = None,
            what: str = "") -> torch.Tensor:
    """Words or entries at stream positions ``flat_index``: each block computed once."""
    dev = as_device(device)
    k0, k1 = _key_ints(key)
    idx = _index_tensor(flat_index, size, what, dev)
    flat = idx.reshape(-1)
    dtype = torch.float64 if uniform else torch.int64
    if flat.numel() == 0:
        return torch.empty(idx.shape, dtype=dtype, device=dev)
    per = _chunk_blocks(chunk_bytes)
    # an upper bound on the distinct blocks before computing them (the unique costs a sort)
    _check_request(flat.numel(), flat.numel(), min(flat.numel(), per),
                   "torch Philox entries" + what)
    blocks, inverse = torch.unique(flat >> 2, return_inverse=True)
    keys = _round_keys(k0, k1)
    table = torch.empty((4, blocks.numel()), dtype=dtype, device=dev)
    for lo in range(0, blocks.numel(), per):
        hi = min(blocks.numel(), lo + per)
        table[:, lo:hi] = _block_words(keys, blocks[lo:hi], uniform=uniform, scale=scale,
                                       shift=shift)
    return table[flat & 3, inverse].reshape(idx.shape)


def stream_raw(key: Sequence[int] | np.ndarray, flat_index: Any, *, device: Any = None,
               chunk_bytes: int = CHUNK_BYTES) -> torch.Tensor:
    """Words ``flat_index`` of the stream of ``numpy.random.Philox(key=key)``, on ``device``.

    Parameters
    ----------
    key : sequence of 2 int or uint64 array
    flat_index : int, array_like of int or integer tensor
        Stream positions in [0, 2^63), any shape.
    device : torch.device or str, optional
    chunk_bytes : int, default :data:`CHUNK_BYTES`

    Returns
    -------
    torch.Tensor
        int64 with the bits of :func:`slth._philox.stream_raw`, the shape of ``flat_index``.
    """
    return _gather(key, flat_index, uniform=False, scale=1.0, shift=0.0, device=device,
                   chunk_bytes=chunk_bytes)


def entries_uniform(key: Sequence[int] | np.ndarray, flat_index: Any, *, device: Any = None,
                    chunk_bytes: int = CHUNK_BYTES) -> torch.Tensor:
    """Doubles ``flat_index`` of ``Generator(Philox(key=key)).random(n)``, on ``device``.

    Bit for bit :func:`slth._philox.entries_uniform`: ``(word >> 11) 2^-53``.

    Parameters
    ----------
    key : sequence of 2 int or uint64 array
    flat_index : int, array_like of int or integer tensor
        Positions in [0, 2^63), any shape.
    device : torch.device or str, optional
        Default: CUDA when available, else CPU.
    chunk_bytes : int, default :data:`CHUNK_BYTES`

    Returns
    -------
    torch.Tensor
        float64, the shape of ``flat_index``.

    Raises
    ------
    InputError
        A bad key or index.
    LimitError
        The request exceeds the memory budget.
    """
    return _gather(key, flat_index, uniform=True, scale=1.0, shift=0.0, device=device,
                   chunk_bytes=chunk_bytes)


def entries_affine(key: Sequence[int] | np.ndarray, flat_index: Any, scale: float, shift: float,
                   *, device: Any = None, chunk_bytes: int = CHUNK_BYTES) -> torch.Tensor:
    """``u * scale + shift`` at ``flat_index`` (u of :func:`entries_uniform`), two float64 ops.

    The operations and roundings of :func:`slth._philox._affine_entries` (and of
    :meth:`slth.sources.Law.from_uniform`): a float64 multiply, then an add.

    Parameters
    ----------
    key : sequence of 2 int or uint64 array
    flat_index : int, array_like of int or integer tensor
    scale, shift : float
        Finite.
    device : torch.device or str, optional
    chunk_bytes : int, default :data:`CHUNK_BYTES`

    Returns
    -------
    torch.Tensor
        float64, the shape of ``flat_index``.
    """
    for nm, v in (("scale", scale), ("shift", shift)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                or not math.isfinite(float(v)):
            raise InputError(f"`{nm}` must be a finite real number; received {format_value(v)}")
    return _gather(key, flat_index, uniform=True, scale=float(scale), shift=float(shift),
                   device=device, chunk_bytes=chunk_bytes)


# ----------------------------------------------------------------------------- sources
def _parameter(source: Any, name: str) -> tuple[tuple[int, int], tuple[int, ...], Any]:
    """(key, shape, Law) of parameter ``name`` of a VirtualSource or VirtualNetwork.

    The law is the source's own (one for all parameters, or the parameter's in a
    per-parameter mapping), resolved as :meth:`slth.sources.VirtualSource.entries` does.
    Every law slth has is affine in ``u`` (:class:`slth.sources.Law`), so every one has a
    bit-identical torch path; anything else is refused, naming it.
    """
    from ..sources import Law, VirtualNetwork, VirtualSource, resolve_law

    if isinstance(source, VirtualNetwork):
        vs = source.source
        key_name = source._key_name(name)
    elif isinstance(source, VirtualSource):
        vs, key_name = source, name
    else:
        raise InputError(f"`source` must be a slth.sources.VirtualSource or VirtualNetwork "
                         f"(entries computed from a seed); received {type(source).__name__}")
    key = vs.key(key_name)  # checks the name
    law_name = vs.law[key_name] if isinstance(vs.law, Mapping) else vs.law
    law = resolve_law(law_name)
    if not isinstance(law, Law) or not all(
            isinstance(v, float) and math.isfinite(v) for v in (law.scale, law.shift)):
        raise InputError(f"the law {law_name!r} of parameter `{name}` is not an affine image "
                         "u * scale + shift of the 53-bit uniform, so it has no bit-identical "
                         "torch Philox path")
    return key, tuple(vs.spec[key_name]), law


def source_entries(source: Any, name: str, flat_index: Any, *, device: Any = None,
                   chunk_bytes: int = CHUNK_BYTES) -> torch.Tensor:
    """:meth:`slth.sources.VirtualSource.entries` computed on a torch device, the same bits.

    Parameters
    ----------
    source : slth.sources.VirtualSource or slth.sources.VirtualNetwork
        (a :class:`~slth.sources.VirtualMLP` included: its parameter names and
        aliases are resolved as by its ``entries``).
    name : str
        A parameter name of ``source``.
    flat_index : int, array_like of int or integer tensor
        Row-major indices in ``[0, size)``, any shape.
    device : torch.device or str, optional
        Default: CUDA when available, else CPU.
    chunk_bytes : int, default :data:`CHUNK_BYTES`

    Returns
    -------
    torch.Tensor
        float64 on ``device``, the shape of ``flat_index``; equal bit for bit to
        ``source.entries(name, flat_index)``.

    Raises
    ------
    InputError
        Another source type, an unknown name, bad indices.
    LimitError
        The request exceeds the memory budget.
    """
    key, shape, law = _parameter(source, name)
    return _gather(key, flat_index, uniform=True, scale=float(law.scale),
                   shift=float(law.shift), device=device, chunk_bytes=chunk_bytes,
                   size=math.prod(shape), what=f" of parameter `{name}`")


def _dense(source: Any, name: str, dev: torch.device, chunk_bytes: int) -> torch.Tensor:
    key, shape, law = _parameter(source, name)
    n = math.prod(shape)
    n_blocks = (n + 3) // 4
    per = _chunk_blocks(chunk_bytes)
    _check_request(n, 0, min(n_blocks, per), f"torch materialise(`{name}`)")
    keys = _round_keys(*key)
    out = torch.empty(4 * n_blocks, dtype=torch.float64, device=dev)
    for lo in range(0, n_blocks, per):
        hi = min(n_blocks, lo + per)
        b = torch.arange(lo, hi, dtype=torch.int64, device=dev)
        out[4 * lo:4 * hi] = _block_words(keys, b, uniform=True, scale=float(law.scale),
                                          shift=float(law.shift)).T.reshape(-1)
    return out[:n].reshape(shape)


def materialise(source: Any, name: str | None = None, *, device: Any = None,
                chunk_bytes: int = CHUNK_BYTES) -> torch.Tensor | Mapping[str, torch.Tensor]:
    """A virtual parameter (or every one) as float64 tensors on ``device``, the CPU bits.

    Parameter ``name`` equals ``torch.from_numpy(source.dense(name))`` bit for bit
    (numpy's ``Generator(Philox(param_key(seed, name))).random`` mapped by the
    source's law), computed on ``device`` block by block.

    Parameters
    ----------
    source : slth.sources.VirtualSource or slth.sources.VirtualNetwork
    name : str, optional
        One parameter; None: every parameter (a dict in the source's order: the
        spec's names for a VirtualSource, ``param_specs()`` for a network).
    device : torch.device or str, optional
        Default: CUDA when available, else CPU.
    chunk_bytes : int, default :data:`CHUNK_BYTES`

    Returns
    -------
    torch.Tensor or dict of str to torch.Tensor

    Raises
    ------
    InputError
        Another source type or an unknown name.
    LimitError
        A parameter (8 bytes per entry) exceeds the memory budget.
    """
    from ..sources import VirtualNetwork, VirtualSource

    dev = as_device(device)
    if name is not None:
        return _dense(source, name, dev, chunk_bytes)
    if not isinstance(source, (VirtualNetwork, VirtualSource)):
        _parameter(source, "")  # the type error
    names = (list(source.param_specs()) if isinstance(source, VirtualNetwork)
             else list(source.spec))
    total = 0
    for nm in names:
        total += math.prod(_parameter(source, nm)[1])
    check_memory(8 * total, what=f"torch materialise: {len(names)} parameters, "
                                 f"{format_count(total)} float64 entries "
                                 f"({format_bytes(8 * total)})",
                 alternative="materialise one parameter at a time (`name`)")
    return {nm: _dense(source, nm, dev, chunk_bytes) for nm in names}
