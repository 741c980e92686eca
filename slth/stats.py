"""Small statistics used across slth: success-rate estimates with exact intervals, thresholds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

from .errors import InputError

__all__ = ["Estimate", "Threshold", "clopper_pearson", "estimate", "threshold_bracket"]


@dataclass(frozen=True)
class Estimate:
    """A success rate measured from seeded Bernoulli trials.

    Attributes
    ----------
    successes : int
        Number of successful trials.
    trials : int
        Number of trials.
    rate : float
        Point estimate ``successes / trials`` (NaN when ``trials == 0``).
    low, high : float
        Two-sided Clopper–Pearson interval at level ``confidence``.
    confidence : float
        Confidence level of the interval, e.g. 0.95.
    """

    successes: int
    trials: int
    rate: float
    low: float
    high: float
    confidence: float

    def __str__(self) -> str:
        return (
            f"{self.rate:.4f} [{self.low:.4f}, {self.high:.4f}] "
            f"({self.successes}/{self.trials}, {self.confidence:.0%} CI)"
        )


def clopper_pearson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact two-sided Clopper–Pearson interval for a binomial proportion.

    Parameters
    ----------
    successes : int
        ``0 <= successes <= trials``.
    trials : int
        ``trials >= 0``; with no trials the interval is (0, 1).
    confidence : float, default 0.95
        Level in (0, 1).

    Returns
    -------
    (float, float)
        Lower and upper end of the interval.
    """
    if not 0.0 < float(confidence) < 1.0:
        raise InputError(f"`confidence` must lie in (0, 1); received {confidence!r}")
    if int(trials) < 0 or not 0 <= int(successes) <= int(trials):
        raise InputError(
            f"`successes` must lie in [0, trials] with trials >= 0; "
            f"received successes={successes!r}, trials={trials!r}"
        )
    k, n = int(successes), int(trials)
    if n == 0:
        return 0.0, 1.0
    alpha = 1.0 - float(confidence)
    low = 0.0 if k == 0 else float(_st.beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(_st.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


def estimate(successes: int, trials: int, confidence: float = 0.95) -> Estimate:
    """Build an :class:`Estimate` (point estimate and Clopper–Pearson interval)."""
    low, high = clopper_pearson(successes, trials, confidence)
    rate = float(successes) / trials if trials else float(np.nan)
    return Estimate(int(successes), int(trials), rate, low, high, float(confidence))


@dataclass(frozen=True)
class Threshold:
    """Smallest scanned ``n`` whose success rate reaches the claim, with its bracket.

    Attributes
    ----------
    n_hat : int or None
        Smallest ``n`` whose measured rate is >= the claim (None: none in the scan).
    n_low : int
        Lower end of the bracket: every ``n < n_low`` is shown insufficient.
    n_high : int or None
        Upper end: ``n_high`` is shown sufficient (None: no scanned ``n`` is).
    n_max : int
        Largest ``n`` scanned.
    confidence : float
        ``n* in [n_low, n_high]`` holds with at least this probability.
    """

    n_hat: int | None
    n_low: int
    n_high: int | None
    n_max: int
    confidence: float


def threshold_bracket(
    successes: Mapping[int, int],
    trials: int,
    claimed: float,
    *,
    confidence: float = 0.95,
) -> Threshold:
    """Threshold ``n*`` of a monotone success rate, with a bracket.

    ``n*`` is the smallest ``n`` whose true success rate reaches ``claimed``;
    the rates must be coupled across ``n`` (each trial's sample at ``n`` a prefix
    of its sample at ``n + 1``), so they are nondecreasing. With ``hi_n`` and
    ``lo_n`` the Clopper–Pearson ends at ``n``: the point estimate is the
    smallest ``n`` whose measured rate reaches the claim; ``n_low = 1 + max{n :
    hi_n < claimed}`` (every smaller ``n`` shown insufficient; monotonicity makes
    one test per ``n`` enough); ``n_high = min{n : lo_n >= claimed}`` (shown
    sufficient), or None when no scanned ``n`` is. Each end fails with
    probability at most ``(1 - confidence) / 2``, so ``n* in [n_low, n_high]``
    holds with probability at least ``confidence``.

    Parameters
    ----------
    successes : mapping int -> int
        Successes out of ``trials`` at each scanned ``n`` (consecutive integers;
        nondecreasing in ``n`` when trials are coupled across ``n``).
    trials : int
        Trials per ``n``.
    claimed : float
        The level ``p0`` the rate must reach.
    confidence : float, default 0.95
        Coverage of the bracket.

    Returns
    -------
    Threshold
    """
    if not successes:
        raise InputError(
            "`successes` must map at least one n to a count; received an empty mapping"
        )
    if int(trials) < 1:
        raise InputError(f"`trials` must be an int >= 1; received {trials!r}")
    if not 0.0 < float(claimed) <= 1.0:
        raise InputError(f"`claimed` must lie in (0, 1]; received {claimed!r}")
    ns = sorted(int(n) for n in successes)
    n_hat = next((n for n in ns if successes[n] >= claimed * trials), None)
    shown_low = [n for n in ns if clopper_pearson(successes[n], trials, confidence)[1] < claimed]
    n_low = max(shown_low) + 1 if shown_low else ns[0]
    n_high = next(
        (n for n in ns if clopper_pearson(successes[n], trials, confidence)[0] >= claimed), None
    )
    return Threshold(n_hat, n_low, n_high, ns[-1], float(confidence))
