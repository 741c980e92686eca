"""Exact and eps-mode random subset sum: validation, method choice, results.

Given values x_1..x_n and a target w, find S minimising |w - sum_{i in S} x_i|
(``eps=None``), or any S with |w - sum_S x_i| <= eps (``eps`` given).

Methods
-------
``"mitm"``
    Horowitz & Sahni (1974) meet in the middle: the sorted sums of each half
    are built by merging (O(2^{n/2}) per half; 8-wide vector merges of both
    halves at once, :mod:`slth.subset_sum._simd`), then one two-pointer pass
    finds the closest pair. Exact; ``n <= EXACT_MAX_N``. In eps mode the work is cut
    to what eps needs: first a direct enumeration of the subsets of a prefix of
    about log2(1/eps) + 4 values that stops at the first sum within eps (about
    1/eps additions; skipped for eps < 2^-9), then, only if that misses, meet
    in the middle on prefixes grown two values at a time (k random values
    resolve a target to about 2^-k, so a short prefix almost always suffices),
    each stopping at the first pair proven within eps.
``"bruteforce"``
    Every subset, in numpy (:mod:`slth.subset_sum.reference`); ``n <= 20``.
``"greedy"``
    Decreasing magnitude, keep a value when it shrinks the residual. O(n log n),
    no guarantee; ``optimal`` is always False.
``"auto"``
    ``"mitm"``.

Precision and limits
--------------------
Meet in the middle runs in 64-bit fixed point: the values and the target of
an instance are rounded to multiples of q = 2^(e - 61), with 2^e the power of
two just above sum |values| + |target|, and the rounded instance is solved
exactly in integer arithmetic (no rounding inside the search). Each rounding
moves a subset's error by at most (n + 1) q / 2, so the returned subset is
optimal to within (n + 1) q <= (n + 1) 2^-60 (sum |values| + |target|): about
1e-15 at n = 40 for values in [-1, 1], where the optimum itself is about
0.4 sqrt(n) 2^-n = 2e-12. float64 left folds, used before, lose the optimum
near n = 45 (1e-15 relative rounding per addition); fixed point would resolve
it to about n = 55. The limit ``n <= EXACT_MAX_N = 40`` is therefore one of
time and memory (2^20 sums per half: about 20 ms per instance, 40 MB per thread), not of
precision. eps mode accepts any n but searches prefixes of at most
``EXACT_MAX_N`` values, and accepts a pair only when its rounded error proves
the true error is within eps. Integer compares also make the search faster:
they are shorter than float compares on the merge's and the walk's
dependency chains.

Every reported ``error`` is recomputed from the returned mask as
``|target - sum(values[mask])|``, never taken from the search itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numba
import numpy as np

from .._memory import TINY_BYTES, check_memory
from ..errors import InputError, LimitError, ShapeError, format_value
from . import _kernels
from .reference import BRUTEFORCE_MAX_N, bruteforce_batch
from .variants import variant_code

__all__ = [
    "EXACT_MAX_N",
    "METHODS",
    "SHARED_FULL_MAX_N",
    "BatchResult",
    "SubsetSumResult",
    "eps_direct_length",
    "eps_prefix_length",
    "solve",
    "solve_batch",
]

Method = Literal["auto", "mitm", "bruteforce", "greedy"]
METHODS: tuple[str, ...] = ("auto", "mitm", "bruteforce", "greedy")

#: Largest n solved exactly (time and half-buffer memory, see module doc).
EXACT_MAX_N = 40
#: With one value vector shared by many targets, up to this n all 2^n sums are
#: sorted once (with their masks) and each target is a binary search.
SHARED_FULL_MAX_N = 20
#: Longest prefix eps mode enumerates directly before switching to meet in the middle.
_DIRECT_MAX_K = 13
#: Batches with less work than this (instances x 2^(n/2)) run on the calling thread.
_SERIAL_WORK = 1 << 16
#: eps mode grows the prefix by this many values when a prefix misses.
_EPS_PREFIX_STEP = 2


@dataclass(frozen=True)
class SubsetSumResult:
    """Answer to one subset-sum instance.

    Attributes
    ----------
    mask : numpy.ndarray
        bool[n], the chosen subset.
    total : float
        ``sum(values[mask])``.
    error : float
        ``|target - total|``, recomputed from ``mask``.
    optimal : bool
        True only when the subset is proven optimal (exact search over all
        values, to within the fixed-point resolution in the module doc).
    """

    mask: np.ndarray
    total: float
    error: float
    optimal: bool


@dataclass(frozen=True)
class BatchResult:
    """Answers to a batch of B instances.

    Attributes
    ----------
    masks : numpy.ndarray
        bool[B, n], row b the subset chosen for instance b.
    totals : numpy.ndarray
        float64[B], ``sum(values[b][masks[b]])``.
    errors : numpy.ndarray
        float64[B], ``|targets[b] - totals[b]|``, recomputed from ``masks``.
    optimal : numpy.ndarray
        bool[B], True where the subset is proven optimal.
    eps : float or None
        The tolerance asked for (None: exact mode).
    """

    masks: np.ndarray
    totals: np.ndarray
    errors: np.ndarray
    optimal: np.ndarray
    eps: float | None = None

    @property
    def success(self) -> np.ndarray:
        """bool[B]: ``errors <= eps`` (eps mode); all True in exact mode."""
        if self.eps is None:
            return np.ones(self.errors.shape, dtype=bool)
        return self.errors <= self.eps

    @property
    def n_failed(self) -> int:
        """Number of instances with no subset within ``eps`` found (0 in exact mode)."""
        return int(self.errors.size - np.count_nonzero(self.success))

    def __len__(self) -> int:
        return int(self.errors.shape[0])

    def __getitem__(self, b: int) -> SubsetSumResult:
        return SubsetSumResult(
            self.masks[b], float(self.totals[b]), float(self.errors[b]), bool(self.optimal[b])
        )


def _threads() -> int:
    return int(numba.get_num_threads())


def eps_direct_length(eps: float) -> int:
    """Prefix length of eps mode's first pass (direct enumeration with early exit).

    ceil(log2(1/eps)) + 4 values. The enumeration stops at the first sum
    within eps, met after about 1/eps additions whatever the prefix length, so
    a long prefix costs nothing unless it is needed (targets near the edge of
    the reachable range). 0 (pass skipped) past ``_DIRECT_MAX_K`` values,
    where sorting two halves is cheaper than about 1/eps additions.
    """
    k = max(1, math.ceil(math.log2(1.0 / eps)) + 4) if eps < 1 else 1
    return k if k <= _DIRECT_MAX_K else 0


def eps_prefix_length(eps: float) -> int:
    """Length of the first prefix eps mode searches: ceil(log2(1/eps)) + 2, at least 4.

    k uniform values resolve a target to about 0.4 sqrt(k) 2^-k (median), so
    this prefix succeeds for most targets in [-1, 1]; a miss grows the prefix
    by 2 values at a time (offsets +1..+3 measured on 2 cores: +2 fastest).
    """
    return max(4, math.ceil(math.log2(1.0 / eps)) + 2) if eps < 1 else 4


def _as_float_array(name: str, x: object, ndims: tuple[int, ...], *,
                    finite: bool = True) -> np.ndarray:
    """float64 array of ``x`` with one of ``ndims`` dimensions, checked finite unless told not.

    An array of another dtype is converted (a float64 copy): that copy is
    guarded by :func:`slth._memory.check_memory` first (8 bytes per entry).
    """
    if isinstance(x, np.ndarray) and x.dtype != np.float64 and x.size > 1 << 20:
        check_memory(
            8 * x.size,
            what=f"the float64 copy of `{name}` ({format_value(x)})",
            alternative=f"pass `{name}` as float64 (no copy) or in smaller batches",
        )
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"`{name}` must be an array of real numbers; received {format_value(x)}"
        ) from exc
    if arr.ndim not in ndims:
        dims = " or ".join(f"{d}-dim" for d in ndims)
        raise ShapeError(
            f"`{name}` must be {dims}; received a {arr.ndim}-dim array of shape {arr.shape}"
        )
    if finite:
        _check_finite(name, arr)
    return arr


def _check_finite(name: str, arr: np.ndarray) -> None:
    """Raise :class:`InputError` at the first NaN or inf of ``arr``."""
    # one cheap pass: a NaN or inf anywhere makes the sum non-finite (a finite sum
    # overflowing to inf is caught too and then located by the full check)
    if not np.isfinite(arr.sum()) and not np.all(np.isfinite(arr)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise InputError(
            f"`{name}` must be finite (no NaN or inf); received {float(arr[bad])!r} "
            f"at index {bad}"
        )


def _check_eps(eps: float | None) -> float | None:
    if eps is None:
        return None
    try:
        e = float(eps)
    except (TypeError, ValueError) as exc:
        raise InputError(f"`eps` must be None or a finite number > 0; received {eps!r}") from exc
    if not math.isfinite(e) or e <= 0:
        raise InputError(f"`eps` must be None or a finite number > 0; received {eps!r}")
    return e


def _check_method(method: str, n: int, eps: float | None) -> str:
    if method not in METHODS:
        raise InputError(f"`method` must be one of {METHODS}; received {method!r}")
    if method == "auto":
        method = "mitm"
    if method == "bruteforce" and n > BRUTEFORCE_MAX_N:
        raise LimitError(
            f"`values` has n={n} per instance; method 'bruteforce' accepts "
            f"n <= {BRUTEFORCE_MAX_N}. "
            "Use method='mitm' (exact up to n=40)."
        )
    if method == "mitm" and eps is None and n > EXACT_MAX_N:
        raise LimitError(
            f"`values` has n={n} per instance; exact solving accepts n <= {EXACT_MAX_N} "
            "(each half needs 2^(n/2) sums: at n=40 about 20 ms per instance and 40 MB per "
            "thread). "
            "Pass `eps` (searches prefixes of at most "
            f"{EXACT_MAX_N} values) or method='greedy'."
        )
    return method


def _solve_batch_bytes(B: int, n: int, *, eps: float | None = None, method: str = "mitm",
                       shared: bool = False, contiguous: bool = True,
                       threads: int | None = None) -> int:
    """Bytes :func:`solve_batch` allocates at its peak for B instances of n values.

    Derived from the allocations in :func:`solve_batch` and the kernels of
    :mod:`slth.subset_sum._kernels` (inputs already float64; their float64
    copies are guarded apart by :func:`_as_float_array`):

    * results: ``masks`` bool (B, n), ``optimal`` bool (B,), ``totals`` and
      ``errors`` float64 (B,) and the float64 temporary ``targets - totals``:
      B (n + 25) bytes;
    * a float64 (B, n) copy of the values when they are shared by all targets
      but solved row by row (``"greedy"``, or eps mode past ``EXACT_MAX_N``), or
      not C-contiguous: 8 B n;
    * meet in the middle, per worker thread (one when the batch is small, else
      ``min(threads, B)``): the halves' sorted sums in int64, ``4 cap + 5`` for
      the ping-pong regions and ``cap`` for the merge's scratch with
      ``cap = 2^ceil(k / 2)``, ``k = min(n, EXACT_MAX_N)`` (so about 2^(n/2)
      sums per half), ``2 k`` quantised values, the direct pass's ``2^kd``
      float64 sums and a copy of the row: ``8 (5 cap + 5 + 2 k + 2^kd + n) + n``;
    * shared values, ``n <= SHARED_FULL_MAX_N``: all 2^n sums and their int64
      masks, twice (ping-pong): ``32 * 2^n``; ``n <= EXACT_MAX_N``: one buffer
      set as above plus ``8 cap`` of scratch per thread;
    * ``"bruteforce"`` (numpy reference): per instance the 2^n x n subset
      matrix (bool), its int64 shift temporary and float64 copy, the codes
      and sums: ``2^n (17 n + 24)``; each returned mask is a view that keeps
      its instance's bool matrix alive until they are stacked: ``B 2^n n``;
    * ``"greedy"``: an ``argsort`` per row (``16 n`` per thread);
    * 16 KiB for array headers and small arrays.

    Checked against ``tracemalloc`` (which sees numba's allocations too) in
    the tests: within a few percent for large n or large B.
    """
    total = B * (n + 25) + (1 << 14)
    k = min(n, EXACT_MAX_N)
    cap = 1 << (k - k // 2)
    buffers = 8 * (5 * cap + 5 + 2 * k)
    if method == "greedy":
        if shared or not contiguous:
            total += 8 * B * n
        total += 16 * n * (_threads() if threads is None else threads)
    elif method == "bruteforce":
        size = 1 << n
        total += size * (17 * n + 24) + B * size * n
    elif shared and n <= SHARED_FULL_MAX_N:
        total += 32 * (1 << n)
    elif shared and n <= EXACT_MAX_N:
        total += buffers + 8 * cap * min(_threads() if threads is None else threads, B)
    else:
        if shared or not contiguous:
            total += 8 * B * n
        kd = 0 if eps is None else min(eps_direct_length(eps), n)
        if B * (1 << (k // 2)) < _SERIAL_WORK:  # run on the calling thread
            workers = 1
        else:
            workers = min(_threads() if threads is None else threads, B)
        total += workers * (buffers + 8 * ((1 << kd) + n) + n)
    return int(total)


def _finish(
    values: np.ndarray,
    targets: np.ndarray,
    masks: np.ndarray,
    optimal: np.ndarray,
    eps: float | None,
    totals: np.ndarray | None = None,
) -> BatchResult:
    """Recompute totals and errors from the masks (left folds, index order) and freeze.

    ``totals`` already computed from the masks by the kernel are used as they are.
    """
    if totals is None:
        totals = np.empty(masks.shape[0], dtype=np.float64)
        if values.ndim == 1:
            _kernels.masked_sums_shared(values, masks, totals)
        else:
            _kernels.masked_sums(values, masks, totals)
    errors = np.abs(targets - totals)
    for arr in (masks, totals, errors, optimal):
        arr.flags.writeable = False
    return BatchResult(masks, totals, errors, optimal, eps)


def solve_batch(
    values: np.ndarray,
    targets: np.ndarray,
    *,
    eps: float | None = None,
    method: Method = "auto",
    backend: str = "numba",
    device: Any = None,
) -> BatchResult:
    """Solve many subset-sum instances at once.

    Parameters
    ----------
    values : array_like
        Either float[B, n], one instance per row (then ``targets`` is float[B]),
        or float[n], one value vector shared by every target (then ``targets``
        is float[m] and the subset sums are enumerated once for all targets).
    targets : array_like
        float[B] (or float[m] with shared values).
    eps : float or None, default None
        None: return each instance's optimum (exact). A float > 0: return any
        subset within ``eps``, found with the least work; instances with none
        found are reported with ``errors > eps`` (see :attr:`BatchResult.success`)
        rather than raising.
    method : {"auto", "mitm", "bruteforce", "greedy"}
        See the module docstring.
    backend : {"numba", "torch"}, default "numba"
        ``"torch"``: meet in the middle on a torch device
        (:func:`slth.torch._solve.solve_exact`, the same fixed point, so the
        same optimum: the numba masks bit for bit wherever the fixed-point
        optimum is unique), ``method`` "auto" or "mitm", ``n <= EXACT_MAX_N``.
        It solves every instance exactly, in eps mode too: the returned subset
        is within eps whenever any subset is (the eps-mode contract), but it
        is the optimum, not the first subset the numba search meets.
    device : torch.device or str, optional
        The device of ``backend="torch"`` (default: CUDA when available).

    Returns
    -------
    BatchResult
        ``masks`` is bool[B, n] (or bool[m, n] with shared values).

    Raises
    ------
    SLTHError
        NaN/inf or empty values, mismatched shapes, ``eps <= 0``, unknown
        method, n past the exact solver's limit.
    LimitError
        Also: the estimated memory (the results, ``B (n + 25)`` bytes, plus
        about ``40 * 2^(n/2)`` bytes of half buffers per thread; see
        ``_solve_batch_bytes``) exceeds the memory budget
        (:func:`slth._memory.memory_budget`), checked before anything is
        allocated.
    """
    vals = _as_float_array("values", values, (1, 2), finite=False)
    tgts = _as_float_array("targets", targets, (1,), finite=False)
    eps_f = _check_eps(eps)
    n = vals.shape[-1]
    if n == 0:
        raise ShapeError("`values` must hold at least one value per instance; received n=0")
    shared = vals.ndim == 1
    if not shared and vals.shape[0] != tgts.shape[0]:
        raise ShapeError(
            f"`targets` must hold one entry per row of `values` ({vals.shape[0]} rows), or "
            f"`values` must be 1-dim to be shared by all targets; received {tgts.shape[0]} targets"
        )
    meth = _check_method(method, n, eps_f)
    B = tgts.shape[0]
    if backend not in ("numba", "torch"):
        raise InputError(f"`backend` must be 'numba' or 'torch'; received {backend!r}")
    if backend == "torch":
        return _solve_torch(vals, tgts, eps_f, meth, n, B, device)
    # before anything is allocated (and before the finiteness pass over the inputs)
    need = _solve_batch_bytes(B, n, eps=eps_f, method=meth, shared=shared,
                              contiguous=bool(vals.flags.c_contiguous))
    if need > TINY_BYTES:  # (skips formatting the message on small calls)
        check_memory(
            need,
            what=f"solve_batch: {B} instances of n={n} ({meth}"
                 f"{', exact' if eps_f is None else f', eps={eps_f:g}'})",
            alternative=f"solve them in smaller batches (the results take n + 25 = {n + 25} "
                        "bytes per instance)",
        )
    _check_finite("values", vals)
    _check_finite("targets", tgts)
    masks = np.zeros((B, n), dtype=bool)
    optimal = np.zeros(B, dtype=bool)
    vals = np.ascontiguousarray(vals)
    if B == 0:
        return _finish(vals, tgts, masks, optimal, eps_f)
    if meth == "greedy":
        rows = np.ascontiguousarray(np.broadcast_to(vals, (B, n)))
        _kernels.greedy_batch(rows, tgts, masks)
    elif meth == "bruteforce":
        masks = bruteforce_batch(np.broadcast_to(vals, (B, n)), tgts)
        optimal[:] = True
    elif shared and n <= EXACT_MAX_N:
        if n <= SHARED_FULL_MAX_N:
            _kernels.shared_full(vals, tgts, masks)
            optimal[:] = True
        else:
            _kernels.shared_mitm(
                vals, tgts, -1.0 if eps_f is None else eps_f, masks, optimal, _threads(),
                variant_code(),
            )
    else:
        rows = np.ascontiguousarray(np.broadcast_to(vals, (B, n)))
        totals = np.empty(B, dtype=np.float64)
        # small batches: no thread-pool launch (the work is shorter than waking the pool)
        small = B * (1 << (min(n, EXACT_MAX_N) // 2)) < _SERIAL_WORK
        kernel = _kernels.mitm_batch_serial if small else _kernels.mitm_batch
        if eps_f is None:
            kernel(rows, tgts, -1.0, 0, n, 1, n, masks, optimal, totals,
                   1 if small else _threads(), variant_code())
            return _finish(rows, tgts, masks, optimal, eps_f, totals)
        else:
            kd, k0 = eps_direct_length(eps_f), eps_prefix_length(eps_f)
            if kd:  # the direct pass already saw every subset of the first kd values
                k0 = max(k0, kd + _EPS_PREFIX_STEP)
            kernel(
                rows, tgts, eps_f, kd, k0, _EPS_PREFIX_STEP, EXACT_MAX_N, masks, optimal,
                totals, 1 if small else _threads(), variant_code(),
            )
        return _finish(rows, tgts, masks, optimal, eps_f, totals)
    return _finish(vals, tgts, masks, optimal, eps_f)


def _solve_torch(vals: np.ndarray, tgts: np.ndarray, eps_f: float | None, meth: str, n: int,
                 B: int, device: Any) -> BatchResult:
    """``solve_batch(..., backend="torch")``: exact meet in the middle on a torch device."""
    from .._backends import torch_bridge

    if meth != "mitm":
        raise InputError(f"`method` must be 'auto' or 'mitm' with backend='torch'; received "
                         f"{meth!r}")
    if n > EXACT_MAX_N:
        raise LimitError(f"`values` with backend='torch' must have n <= {EXACT_MAX_N} per "
                         f"instance (exact meet in the middle); received n={n}")
    check_memory(B * (n + 25), what=f"solve_batch (torch): the results of {B} instances",
                 alternative="solve them in smaller batches")
    _check_finite("values", vals)
    _check_finite("targets", tgts)
    rows = np.ascontiguousarray(np.broadcast_to(vals, (B, n)), dtype=np.float64)
    torch_bridge()  # a clear message when torch is missing
    from ..torch._solve import solve_exact

    masks = solve_exact(rows, tgts, device=device)
    return _finish(rows, tgts, masks, np.ones(B, dtype=bool), eps_f)


def solve(
    values: np.ndarray,
    target: float,
    *,
    eps: float | None = None,
    method: Method = "auto",
) -> SubsetSumResult:
    """Solve one subset-sum instance: the subset of ``values`` whose sum is closest to ``target``.

    Parameters
    ----------
    values : array_like
        float[n], n >= 1, finite.
    target : float
        Finite target.
    eps : float or None, default None
        None: the optimum. A float > 0: any subset within ``eps`` (if none is
        found, the best found is returned with ``error > eps``).
    method : {"auto", "mitm", "bruteforce", "greedy"}
        See the module docstring.

    Returns
    -------
    SubsetSumResult

    Examples
    --------
    >>> import numpy as np
    >>> from slth.subset_sum import solve
    >>> r = solve(np.array([0.5, -0.25, 0.125]), 0.625)
    >>> r.mask.tolist(), r.error, r.optimal
    ([True, False, True], 0.0, True)
    """
    vals = _as_float_array("values", values, (1,))
    try:
        t = float(target)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"`target` must be a finite real number; received {format_value(target)}"
        ) from exc
    if not math.isfinite(t):
        raise InputError(f"`target` must be finite (no NaN or inf); received {t!r}")
    res = solve_batch(vals[None, :], np.array([t]), eps=eps, method=method)
    return res[0]
