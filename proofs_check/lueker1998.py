"""Lueker (1998): random subset sums cover every target at once.

Theorem (Lueker 1998, Random Structures & Algorithms 12(1):51-62; the
corollary on approximating every target, in the form restated by Pensia et
al., NeurIPS 2020, for U[-1, 1] samples). Let X_1, ..., X_n be i.i.d. with a
density that contains a uniform component. There is a constant C such that,
for every eps in (0, 1), if n >= C ln(2/eps) then with probability at least
1 - eps *every* z in [-1, 1] has a subset S with |z - sum_{i in S} X_i| <= eps.
The paper gives no value for C.

Products (Pensia, Rajput, Nagle, Vishwakarma, Papailiopoulos, NeurIPS 2020,
Corollary 1): for X ~ U[0, 1] and Y ~ U[-1, 1] the corollary speaks of the law
of XY mixed 50/50 with a point mass at 0, which contains a U[-1/2, 1/2]
component of weight ln(2)/4. This check samples **plain XY**
(``slth.subset_sum.sample("product")``, the law of one first-layer weight times
one second-layer weight in the construction, with no point mass), and the
theorem applies to it directly: XY has density
``f(z) = int_{|z|}^1 (1/2) (1/x) dx = (1/2) ln(1/|z|)`` on ``0 < |z| <= 1``,
which is at least ``(1/2) ln 2`` on ``|z| <= 1/2``, so XY contains a
U[-1/2, 1/2] component of weight ``(ln 2)/2`` (twice the mixture's). The
constant C measured for products is that of plain XY.

What is measured
----------------
The event of the theorem is ``coverage(X_1..X_n) <= eps`` where coverage is
``sup_{z in [-1, 1]} min_S |z - sum_S X_i|``, decided exactly by
:func:`slth.subset_sum.first_covering_n` (meet in the middle over the halves'
sums, n <= COVERS_MAX_N = 40).

Design: one sample vector of length ``n_max`` per trial, its prefixes serving
every n. Adding a value never increases the coverage, so each trial has a
first covering size ``T = min{n : coverage(X_1..X_n) <= eps}`` and the success
rate at n is ``P(T <= n)``, nondecreasing in n.
:func:`slth.subset_sum.first_covering_n` computes T by scanning n upwards, a
few times the cost of one decision at T per trial, which is what makes
eps = 1e-3 (thousands of trials near n = 20-30) affordable.

Claim tested, for a given C: ``P(coverage <= eps) >= 1 - eps`` at
``n = ceil(C ln(2/eps))``. When that n exceeds the scan (``n_max``), the rate at
``n_max`` is a lower bound on it (prefix argument): the check can then say
"consistent" or "inconclusive", never "violated".

Empirical constant: ``C_emp = n* / ln(2/eps)`` where ``n*`` is the smallest
integer n with ``P(coverage <= eps) >= 1 - eps`` (so the statement holds at
n = C_emp ln(2/eps)). Point estimate: the smallest n whose measured rate reaches
1 - eps. Bracket (95%): ``[n_low, n_high] / ln(2/eps)`` with ``n_low`` one more
than the largest n whose upper Clopper–Pearson end is below 1 - eps and
``n_high`` the smallest n whose lower end reaches it (see
:func:`proofs_check._core.threshold_bracket`); ``n_high`` is None ("?") when
no n <= n_max is shown sufficient.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slth import InputError
from slth.subset_sum import COVERS_MAX_N
from slth.trials import first_covering_trials

from ._core import (
    VIOLATION_FACTOR,
    CheckResult,
    rate_p_values,
    rate_verdict,
    store_path,
    threshold_bracket,
    trials_needed,
)

__all__ = [
    "DEFAULT_C",
    "EPS",
    "NAME",
    "PAPER",
    "QUICK_EPS",
    "STATEMENT",
    "check",
    "run",
]

NAME = "lueker1998"
PAPER = (
    "Lueker 1998, Random Struct. Algorithms 12(1):51-62 (every-target corollary, as restated "
    "by Pensia et al. NeurIPS 2020); products: Pensia et al. 2020, Cor. 1"
)
STATEMENT = (
    "For X_1..X_n i.i.d. with a uniform component (U[-1,1]; products U[0,1]*U[-1,1]) and "
    "n >= C ln(2/eps), with probability >= 1 - eps every z in [-1,1] is within eps of a "
    "subset sum; C is not given."
)

#: Tolerances checked by :func:`run`.
EPS: tuple[float, ...] = (1e-1, 1e-2, 1e-3)

#: C tested by default: round values above the empirical constants measured at
#: eps = 0.1 (about 3.7 for U[-1, 1], 6 for products). The theorem leaves C free;
#: the empirical constant reported beside the verdict is the informative number.
DEFAULT_C: dict[str, float] = {"uniform": 4.0, "product": 8.0}

#: Tolerances of the quick run: eps = 1e-3 needs about 3200 trials (no failure at
#: all) to say "consistent" once Holm's correction over a run's cases applies.
QUICK_EPS: tuple[float, ...] = (1e-1, 1e-2)

#: Trials and scan ceiling of :func:`run` (quick: a few seconds on 2 cores).
QUICK: dict[str, Any] = {"n_max": 32, "trials": {1e-1: 300, 1e-2: 600, 1e-3: 2000}}
FULL: dict[str, Any] = {"n_max": COVERS_MAX_N, "trials": {1e-1: 2000, 1e-2: 5000, 1e-3: 10000}}

def check(
    distribution: str = "uniform",
    eps: float = 0.1,
    *,
    C: float | None = None,
    trials: int = 2000,
    n_max: int = COVERS_MAX_N,
    interval: tuple[float, float] = (-1.0, 1.0),
    violation_factor: float = VIOLATION_FACTOR,
    confidence: float = 0.95,
    rng: int = 0,
    store: str | Path | None = None,
    progress: bool | None = None,
    chunk_size: int = 250,
) -> CheckResult:
    """Check Lueker's statement for one law and one eps, with the constant ``C``.

    Parameters
    ----------
    distribution : str, default "uniform"
        Sample law, a name from :data:`slth.subset_sum.DISTRIBUTIONS`.
    eps : float, default 0.1
        Tolerance and failure probability of the statement, in (0, 1).
    C : float, optional
        Constant of the statement; the claim is tested at n = ceil(C ln(2/eps)).
        Defaults to :data:`DEFAULT_C` for the law (required for other laws).
        An under-sized C (e.g. 0.3) must come out "violated".
    trials : int, default 2000
        Seeded independent trials (each one sample vector of length ``n_max``).
    n_max : int, default COVERS_MAX_N
        Longest prefix scanned for the empirical constant (cost ~ 2^n_max per
        uncovered trial).
    interval : (float, float), default (-1.0, 1.0)
        Targets that must all be covered.
    violation_factor : float, default 2.0
        Size of the violation a "consistent" verdict must exclude (see
        :mod:`proofs_check._core`).
    confidence : float, default 0.95
        Level of the Clopper–Pearson intervals and of the constant's bracket.
    rng : int, default 0
        Base seed (trials are resumable rows of :mod:`slth.sweeps`).
    store : path-like, optional
        Results file for resuming.
    progress : bool or None
        Progress bar on stderr (None: when stderr is a terminal).
    chunk_size : int, default 250
        Trials per resumable row.

    Returns
    -------
    CheckResult
        ``measured`` is the success rate at n = ceil(C ln(2/eps)) (a lower bound,
        from the prefix of length ``n_max``, when that n exceeds ``n_max``);
        ``empirical_constant`` and ``constant_interval`` as in the module doc.
    """
    t0 = time.perf_counter()
    if C is None:
        if distribution not in DEFAULT_C:
            raise InputError(
                f"`C` must be given for distribution {distribution!r} "
                f"(defaults exist for {sorted(DEFAULT_C)}); received None"
            )
        C = DEFAULT_C[distribution]
    if not (math.isfinite(float(C)) and float(C) > 0):
        raise InputError(f"`C` must be a finite number > 0; received {C!r}")
    log_factor = math.log(2.0 / float(eps))
    n_claim = max(1, math.ceil(float(C) * log_factor - 1e-12))
    first = first_covering_trials(
        distribution,
        eps,
        trials=trials,
        n_max=n_max,
        interval=interval,
        rng=rng,
        store=store,
        progress=progress,
        chunk_size=chunk_size,
    )
    n_trials = int(first.size)
    claimed = 1.0 - float(eps)
    successes = {n: int(np.count_nonzero(first <= n)) for n in range(1, int(n_max) + 1)}
    if n_claim <= n_max:
        k_low = k_high = successes[n_claim]
        measured_is = "exact"
    else:
        k_low, k_high = successes[int(n_max)], n_trials
        measured_is = "lower bound"
    verdict, interval_ci, reason = rate_verdict(
        k_low, k_high, n_trials, claimed, violation_factor=violation_factor, confidence=confidence
    )
    if measured_is == "lower bound":
        reason += f" (n = {n_claim} > n_max = {n_max}: rate at n_max is a lower bound)"
    p_values = rate_p_values(k_low, k_high, n_trials, claimed, violation_factor=violation_factor)
    thr = threshold_bracket(successes, n_trials, claimed, confidence=confidence)
    c_hat = thr.n_hat / log_factor if thr.n_hat is not None else None
    c_int = (thr.n_low / log_factor, thr.n_high / log_factor if thr.n_high is not None else None)
    details: dict[str, Any] = {
        "n": n_claim,
        "C": float(C),
        "eps": float(eps),
        "distribution": distribution,
        "log_factor": log_factor,
        "n_max": int(n_max),
        "interval": [float(interval[0]), float(interval[1])],
        "measured_is": measured_is,
        "successes_low": int(k_low),
        "successes_high": int(k_high),
        "threshold": {"n_hat": thr.n_hat, "n_low": thr.n_low, "n_high": thr.n_high},
        "constant_event_is": "exact",
        "constant_scan_max": int(n_max) / log_factor,
        "successes_by_n": {str(n): k for n, k in successes.items()},
        "trials_needed": trials_needed(
            claimed, violation_factor=violation_factor, confidence=confidence
        ),
        "violation_factor": float(violation_factor),
        "seed": rng,
    }
    return CheckResult(
        name=NAME,
        case=f"{distribution}, eps={eps:g}",
        paper=PAPER,
        statement=STATEMENT,
        claim=(
            f"P(coverage <= {eps:g}) >= {claimed:g} at n = ceil({float(C):g} ln(2/eps)) = {n_claim}"
        ),
        claimed=claimed,
        measured=k_low / n_trials,
        interval=interval_ci,
        confidence=float(confidence),
        trials=n_trials,
        empirical_constant=c_hat,
        constant_interval=c_int,
        verdict=verdict,
        reason=reason,
        details=details,
        runtime_s=time.perf_counter() - t0,
        p_values=p_values,
    )


def run(
    *,
    quick: bool = False,
    rng: int = 0,
    store_dir: str | Path | None = None,
    progress: bool | None = None,
    distributions: Sequence[str] = ("uniform", "product"),
    eps_values: Sequence[float] | None = None,
) -> list[CheckResult]:
    """All cases of the check: each law in ``distributions`` and each eps in ``eps_values``.

    Parameters
    ----------
    quick : bool, default False
        Fewer trials, a scan to n = 32 (:data:`QUICK`) and the tolerances
        :data:`QUICK_EPS` instead of :data:`FULL` and :data:`EPS`.
    rng : int, default 0
        Base seed.
    store_dir : path-like, optional
        Folder of the resumable results file ``lueker1998[_quick].jsonl``.
    progress : bool or None
        Progress bars on stderr (None: when stderr is a terminal).
    distributions : sequence of str
        Laws checked, each with a :data:`DEFAULT_C` entry.
    eps_values : sequence of float, optional
        Tolerances checked (default :data:`EPS`, :data:`QUICK_EPS` in quick
        mode; trial counts from the mode's table, else 1000).

    Returns
    -------
    list of CheckResult
    """
    mode = QUICK if quick else FULL
    store = store_path(store_dir, NAME, quick)
    out = []
    if eps_values is None:
        eps_values = QUICK_EPS if quick else EPS
    for dist in distributions:
        for eps in eps_values:
            out.append(
                check(
                    dist,
                    eps,
                    trials=mode["trials"].get(eps, 1000),
                    n_max=mode["n_max"],
                    rng=rng,
                    store=store,
                    progress=progress,
                )
            )
    return out
