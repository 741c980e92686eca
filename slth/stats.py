"""Small statistics used across slth: success-rate estimates with exact intervals."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

from .errors import InputError

__all__ = ["Estimate", "clopper_pearson", "estimate"]


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
