"""Worst case over all targets, and Lueker's random subset-sum statement.

Lueker (1998, Random Structures & Algorithms 12(1)): for X_1..X_n i.i.d. with a
density containing a uniform component, n >= C ln(2/eps) values make *every*
z in [-1, 1] eps-approximable by a subset sum with probability >= 1 - eps.
:func:`coverage` measures the quantity in that statement for one sample,
:func:`success_probability` estimates the probability.
"""

from __future__ import annotations

import math

import numpy as np

from .._memory import check_memory
from .._rng import RNGLike, as_generator
from ..errors import InputError, LimitError, ShapeError
from ..stats import Estimate, estimate
from . import _kernels
from .distributions import sample
from .solve import _as_float_array, _check_eps, _check_finite, _threads

__all__ = [
    "COVERAGE_MAX_N",
    "COVERS_MAX_N",
    "coverage",
    "coverage_batch",
    "covers",
    "covers_batch",
    "first_covering_n",
    "success_probability",
]

#: coverage enumerates and sorts all 2^n sums: n <= 24 (two 128 MB buffers per thread).
COVERAGE_MAX_N = 24
#: covers / first_covering_n work on the halves' sums only (2^20 floats per half at n = 40).
COVERS_MAX_N = 40


def _coverage_batch_bytes(B: int, n: int, *, contiguous: bool = True,
                          threads: int | None = None) -> int:
    """Bytes :func:`coverage_batch` allocates: B rows of n values.

    From :func:`slth.subset_sum._kernels.coverage_batch`: per worker thread
    (``min(threads, B)``) the 2^n sorted sums in a float64 ping-pong buffer of
    ``2 * 2^n`` and the merge's scratch of ``2^(n-1)``: ``20 * 2^n`` bytes; plus
    the float64 output (8 B) and a contiguous copy of the rows if needed (8 B n).
    """
    threads = _threads() if threads is None else threads
    size = 1 << n
    per_thread = 8 * (2 * size + max(1, size // 2))
    return int(min(threads, max(B, 1)) * per_thread + 8 * B
               + (0 if contiguous else 8 * B * n))


def _covers_batch_bytes(B: int, n_max: int, *, threads: int | None = None) -> int:
    """Bytes :func:`first_covering_n` / :func:`covers_batch` allocate: B rows of n_max values.

    From :func:`slth.subset_sum._kernels.first_covering_batch`: per worker
    thread two ping-pong buffers of ``2 cap`` float64 (the halves' sorted sums),
    ``cap`` of merge scratch and two interval lists of ``cap`` float64, with
    ``cap = 2^ceil(n_max / 2)``: ``56 cap`` bytes (the holes lists start at 64
    entries and are small); plus the int64 output and a bool result (9 B).
    """
    threads = _threads() if threads is None else threads
    cap = 1 << (n_max - n_max // 2)
    return int(min(threads, max(B, 1)) * 56 * cap + 9 * B)


def _check_interval(interval: tuple[float, float]) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in interval)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"`interval` must be a pair (low, high) of finite floats; received {interval!r}"
        ) from exc
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise InputError(f"`interval` must be finite with low <= high; received {interval!r}")
    return lo, hi


def coverage_batch(
    values: np.ndarray, *, interval: tuple[float, float] = (-1.0, 1.0)
) -> np.ndarray:
    """:func:`coverage` of every row of ``values`` (float[B, n]); returns float64[B].

    Raises :class:`slth.errors.LimitError` before allocating when the sorted
    sums (``20 * 2^n`` bytes per thread) and the output exceed the memory
    budget (:func:`slth._memory.memory_budget`).
    """
    vals = _as_float_array("values", values, (2,), finite=False)
    lo, hi = _check_interval(interval)
    n = vals.shape[1]
    if n == 0:
        raise ShapeError("`values` must hold at least one value per row; received n=0")
    if n > COVERAGE_MAX_N:
        raise LimitError(
            f"`values` has n={n}; coverage sorts all 2^n subset sums and accepts "
            f"n <= {COVERAGE_MAX_N}"
        )
    B = vals.shape[0]
    check_memory(
        _coverage_batch_bytes(B, n, contiguous=bool(vals.flags.c_contiguous)),
        what=f"coverage_batch: {B} rows of n={n} (all 2^{n} subset sums sorted per thread)",
        alternative="use fewer threads (numba.set_num_threads), a smaller n, or covers / "
                    "first_covering_n (2^(n/2) sums per half)",
    )
    _check_finite("values", vals)
    out = np.empty(B, dtype=np.float64)
    _kernels.coverage_batch(np.ascontiguousarray(vals), lo, hi, out, _threads())
    return out


def coverage(values: np.ndarray, *, interval: tuple[float, float] = (-1.0, 1.0)) -> float:
    """Worst-case subset-sum error over every target in ``interval``.

    Computes sup_{z in [low, high]} min_S |z - sum_{i in S} values_i| exactly:
    the distance to the nearest subset sum is piecewise linear in z, so the sup
    is attained at an end of the interval or at the midpoint of two
    consecutive sums (half their gap) lying inside it.

    Parameters
    ----------
    values : array_like
        float[n], 1 <= n <= ``COVERAGE_MAX_N``.
    interval : (float, float), default (-1.0, 1.0)
        Targets considered, ``low <= high``.

    Returns
    -------
    float
    """
    vals = _as_float_array("values", values, (1,))
    return float(coverage_batch(vals[None, :], interval=interval)[0])


def _check_eps_required(eps: float) -> float:
    eps_f = _check_eps(eps)
    if eps_f is None:
        raise InputError("`eps` must be a finite number > 0; received None")
    return eps_f


def _covers_values(values: np.ndarray, name: str = "values") -> np.ndarray:
    vals = _as_float_array(name, values, (2,), finite=False)
    B, n = vals.shape
    if n == 0:
        raise ShapeError(f"`{name}` must hold at least one value per row; received n=0")
    if n > COVERS_MAX_N:
        raise LimitError(
            f"`{name}` must have n <= {COVERS_MAX_N} values per row (covers and "
            f"first_covering_n keep the 2^(n/2) sums of each half); received n={n}"
        )
    check_memory(
        _covers_batch_bytes(B, n) + (0 if vals.flags.c_contiguous else 8 * B * n),
        what=f"covers / first_covering_n: {B} rows of n={n}",
        alternative="use fewer threads (numba.set_num_threads) or smaller batches",
    )
    _check_finite(name, vals)
    return np.ascontiguousarray(vals)


def covers_batch(
    values: np.ndarray, eps: float, *, interval: tuple[float, float] = (-1.0, 1.0)
) -> np.ndarray:
    """:func:`covers` for every row of ``values`` (float[B, n]); returns bool[B]."""
    vals = _covers_values(values)
    lo, hi = _check_interval(interval)
    n = vals.shape[1]
    first = np.empty(vals.shape[0], dtype=np.int64)
    # the scan started at n itself: one decision per row
    _kernels.first_covering_batch(vals, lo, hi, _check_eps_required(eps), n, first, _threads())
    return first <= n


def covers(
    values: np.ndarray, eps: float, *, interval: tuple[float, float] = (-1.0, 1.0)
) -> bool:
    """Whether every target in ``interval`` has a subset sum within ``eps``.

    The event of Lueker's theorem, ``coverage(values) <= eps``, decided without
    enumerating the 2^n sums: the union of the intervals [b - eps, b + eps]
    over the sums b of one half is built once, and the uncovered part of the
    interval loses that union shifted by each sum a of the other half, until
    nothing is left. About 2^(n/2) work instead of 2^n, so n <= ``COVERS_MAX_N``
    (40) instead of ``COVERAGE_MAX_N`` (24). Agrees with
    ``coverage(values, interval=interval) <= eps`` except on exact ties (a sum at
    distance exactly eps from the worst target), where float64 rounding of the
    shifted interval ends may decide either way.

    Parameters
    ----------
    values : array_like
        float[n], 1 <= n <= ``COVERS_MAX_N``.
    eps : float
        Tolerance > 0.
    interval : (float, float), default (-1.0, 1.0)
        Targets that must all be covered, ``low <= high``.

    Returns
    -------
    bool
    """
    vals = _as_float_array("values", values, (1,))
    return bool(covers_batch(vals[None, :], eps, interval=interval)[0])


def first_covering_n(
    values: np.ndarray,
    eps: float,
    *,
    interval: tuple[float, float] = (-1.0, 1.0),
    n_min: int = 1,
) -> np.ndarray:
    """Per row, the shortest prefix whose subset sums cover ``interval`` within ``eps``.

    Adding a value never worsens coverage, so ``P(first_covering_n <= n)`` is
    Lueker's success probability at n for every n at once, from one sample
    vector per trial. Prefixes shorter than ``log2((high - low) / (2 eps))``
    cannot cover (2^n intervals of length 2 eps) and are skipped.

    Parameters
    ----------
    values : array_like
        float[B, n_max], one sample vector per row, ``n_max <= COVERS_MAX_N``.
    eps : float
        Tolerance > 0.
    interval : (float, float), default (-1.0, 1.0)
        Targets to cover.
    n_min : int, default 1
        Shortest prefix considered (>= 1).

    Returns
    -------
    numpy.ndarray
        int64[B]: ``min{n >= n_min : covers(values[b, :n], eps)}``, or
        ``n_max + 1`` when no prefix covers.
    """
    vals = _covers_values(values)
    lo, hi = _check_interval(interval)
    eps_f = _check_eps_required(eps)
    if isinstance(n_min, bool) or not isinstance(n_min, (int, np.integer)) or n_min < 1:
        raise InputError(f"`n_min` must be an int >= 1; received {n_min!r}")
    start = int(n_min)
    if hi > lo:
        start = max(start, math.ceil(math.log2((hi - lo) / (2.0 * eps_f))))
    out = np.empty(vals.shape[0], dtype=np.int64)
    _kernels.first_covering_batch(vals, lo, hi, eps_f, max(start, 1), out, _threads())
    return out


def success_probability(
    n: int,
    eps: float,
    *,
    distribution: str = "uniform",
    trials: int,
    rng: RNGLike,
    interval: tuple[float, float] = (-1.0, 1.0),
    confidence: float = 0.95,
) -> Estimate:
    """Estimate P(coverage <= eps) for n i.i.d. samples of ``distribution``.

    The event of Lueker's (1998) theorem: every target in ``interval`` has a
    subset within ``eps``. Trials are independent (one sample vector each,
    drawn from ``rng`` in one block, so the same seed gives the same answer
    whatever the number of threads).

    Parameters
    ----------
    n : int
        Samples per trial, 1 <= n <= ``COVERS_MAX_N``.
    eps : float
        Tolerance > 0.
    distribution : str, default "uniform"
        A name from :data:`slth.subset_sum.DISTRIBUTIONS`.
    trials : int
        Number of trials >= 1.
    rng : int, numpy.random.Generator, numpy.random.SeedSequence or None
        Randomness.
    interval : (float, float), default (-1.0, 1.0)
        Targets that must all be covered.
    confidence : float, default 0.95
        Level of the Clopper–Pearson interval.

    Returns
    -------
    Estimate
        Successes, trials, rate and its Clopper–Pearson interval.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= COVERS_MAX_N:
        raise InputError(f"`n` must be an int in [1, {COVERS_MAX_N}]; received {n!r}")
    if isinstance(trials, bool) or not isinstance(trials, (int, np.integer)) or trials < 1:
        raise InputError(f"`trials` must be an int >= 1; received {trials!r}")
    eps_f = _check_eps_required(eps)
    gen = as_generator(rng)
    draws = sample(distribution, (int(trials), int(n)), rng=gen)
    ok = covers_batch(draws, eps_f, interval=interval)
    return estimate(int(np.count_nonzero(ok)), int(trials), confidence)
