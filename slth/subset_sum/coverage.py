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

from .._rng import RNGLike, as_generator
from ..errors import InputError, LimitError, ShapeError
from ..stats import Estimate, estimate
from . import _kernels
from .distributions import sample
from .solve import _as_float_array, _check_eps, _threads

__all__ = ["COVERAGE_MAX_N", "coverage", "coverage_batch", "success_probability"]

#: coverage enumerates and sorts all 2^n sums: n <= 24 (two 128 MB buffers per thread).
COVERAGE_MAX_N = 24


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
    """:func:`coverage` of every row of ``values`` (float[B, n]); returns float64[B]."""
    vals = _as_float_array("values", values, (2,))
    lo, hi = _check_interval(interval)
    n = vals.shape[1]
    if n == 0:
        raise ShapeError("`values` must hold at least one value per row; received n=0")
    if n > COVERAGE_MAX_N:
        raise LimitError(
            f"`values` has n={n}; coverage sorts all 2^n subset sums and accepts "
            f"n <= {COVERAGE_MAX_N}"
        )
    out = np.empty(vals.shape[0], dtype=np.float64)
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
        Samples per trial, 1 <= n <= ``COVERAGE_MAX_N``.
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
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= COVERAGE_MAX_N:
        raise InputError(f"`n` must be an int in [1, {COVERAGE_MAX_N}]; received {n!r}")
    if isinstance(trials, bool) or not isinstance(trials, (int, np.integer)) or trials < 1:
        raise InputError(f"`trials` must be an int >= 1; received {trials!r}")
    eps_f = _check_eps(eps)
    if eps_f is None:
        raise InputError("`eps` must be a finite number > 0; received None")
    gen = as_generator(rng)
    draws = sample(distribution, (int(trials), int(n)), rng=gen)
    cov = coverage_batch(draws, interval=interval)
    return estimate(int(np.count_nonzero(cov <= eps_f)), int(trials), confidence)
