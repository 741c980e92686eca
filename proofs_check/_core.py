"""What every theorem check shares: the result record, the verdict rules, the threshold scan.

Verdict rule for a statistical claim (one place, used by every check)
--------------------------------------------------------------------
Most SLTH statements read "with probability at least ``p0``, the construction
succeeds". A check runs ``N`` seeded, independent trials and counts the
successes. Often the success of a trial is not decided exactly but bracketed:
a *sufficient* condition (a certified upper bound on the error is <= eps)
gives a lower bound ``k_low`` on the count, a *necessary* one (an adversarial
lower bound on the error is <= eps) an upper bound ``k_high``
(:func:`success_bounds`). ``lo`` is the lower end of the two-sided
Clopper–Pearson interval of ``k_low``, ``hi`` the upper end of that of
``k_high`` (level ``confidence``, default 95%: each end a one-sided 97.5%
bound); both stay valid bounds on the true rate. A *violation of the stated
size* is a true failure rate at least ``violation_factor`` (default 2) times
the claimed one, i.e. a success rate ``<= p1 = 1 - violation_factor * (1 - p0)``.

``"violated"``
    ``hi < p0``: even the upper bound on the success count is significantly
    below the claim (never decided from ``k_low``: a low certified count
    cannot refute a claim, since the certificate may exceed eps while the
    true error does not).
``"consistent"``
    ``hi >= p0`` and ``lo >= p1``: the data agree with the claim *and* rule out
    any violation of the stated size. This needs enough trials: with no
    failure at all, at least ``ln((1 - confidence) / 2) / ln(p1)`` of them
    (:func:`trials_needed`: 36 for p0 = 0.9, 368 for 0.99, 3688 for 0.999 at
    factor 1; 17, 183 and 1843 at the default factor 2). A check that ran fewer
    trials can never say "consistent".
``"inconclusive"``
    Anything else: compatible with the claim but too imprecise to exclude a
    violation of the stated size.

Verdicts decided by arithmetic
------------------------------
``"holds by construction"``
    The comparison is settled by arithmetic before any trial (e.g. the smallest
    network a check can build already has more parameters than a lower bound
    requires); the reason gives the arithmetic. Never reported as
    "consistent", and outside the family of statistical tests below.

Family-wise error control
-------------------------
Each statistical case exposes the one-sided p-values of its two tests
(:func:`rate_p_values`): *violation*, ``P(Bin(N, p0) <= k_high)`` (small:
the rate is below ``p0``), and *consistency*, ``P(Bin(N, p1) >= k_low)``
(small: the rate is above ``p1``). The per-case rule above rejects each at
``(1 - confidence) / 2``. A run judges many cases at once, so
:func:`family_wise` (called by :func:`proofs_check.run_checks`) applies
Holm's step-down procedure at ``alpha = 1 - confidence`` to all the tests of
all statistical cases of the run and revises each case's verdict:
"violated" when its violation test is rejected, else "consistent" when its
consistency test is, else "inconclusive". Holm controls the family-wise error
(the probability of any false "violated" or false "consistent" in the run) at
``alpha`` under any dependence between the tests; the per-case intervals
printed stay the uncorrected 95% Clopper–Pearson intervals. With one case the
first Holm threshold is ``alpha / 2``, the per-case rule's level.

Empirical constants
-------------------
Where a paper proves "size ``n >= C f(eps, ...)`` suffices" without a value for
``C``, a check scans ``n`` over consecutive integers with trials coupled across
``n`` (each trial's sample at ``n`` is the prefix of its sample at ``n + 1``, so
a success at ``n`` implies one at every larger ``n`` and the success rate
``P_n`` is nondecreasing). The *threshold* ``n*`` is the smallest ``n`` with
``P_n >= p0``; the empirical constant is ``n* / f``. :func:`slth.stats.threshold_bracket`
returns the point estimate (smallest ``n`` whose measured rate reaches ``p0``)
and a bracket ``[n_low, n_high]``:

* ``n_low = 1 + max{n : hi_n < p0}`` (every smaller ``n`` is shown insufficient;
  monotonicity makes one test per ``n`` enough),
* ``n_high = min{n : lo_n >= p0}`` (shown sufficient), or None when no scanned
  ``n`` is (the threshold lies above the scan, or the trials are too few).

Each end fails with probability at most ``(1 - confidence) / 2``, so
``n* in [n_low, n_high]`` holds with probability at least ``confidence``.
When the event is bracketed rather than decided, each bracketing event has its
own constant: the one of the sufficient event (``CheckResult.empirical_constant``)
is an upper bound on the constant, the one of the necessary event
(``CheckResult.constant_adversarial``) a lower bound. The constants' brackets
are per case (not corrected across the run).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy import stats as _st

from slth import InputError
from slth.stats import Threshold, clopper_pearson, threshold_bracket

__all__ = [
    "BASES",
    "HOLDS",
    "VERDICTS",
    "CheckResult",
    "SuccessCounts",
    "Threshold",
    "Verdict",
    "family_summary",
    "family_wise",
    "format_table",
    "legend",
    "overall_verdict",
    "rate_p_values",
    "rate_verdict",
    "results_to_json",
    "results_to_markdown",
    "store_path",
    "success_bounds",
    "threshold_bracket",
    "trials_needed",
]

Verdict = Literal["consistent", "violated", "inconclusive", "holds by construction"]
#: Verdict of a comparison settled by arithmetic (module doc).
HOLDS = "holds by construction"
VERDICTS: tuple[str, ...] = ("consistent", "violated", "inconclusive", HOLDS)
#: What a verdict rests on: "statistical" (p-values, revised by :func:`family_wise`),
#: "arithmetic" (:data:`HOLDS`), "sanity" (a deterministic inconsistency, e.g. a
#: lower bound above its certified upper bound: a bug, never revised).
BASES: tuple[str, ...] = ("statistical", "arithmetic", "sanity")

#: Default size of a violation a "consistent" verdict must exclude: a failure
#: rate this many times the claimed one.
VIOLATION_FACTOR = 2.0


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one case of one theorem check.

    Attributes
    ----------
    name : str
        Registry name of the check, e.g. ``"lueker1998"``.
    case : str
        The case within the check, e.g. ``"uniform, eps=0.01"``.
    paper : str
        Citation: authors, year, venue, theorem or lemma number.
    statement : str
        The theorem in one sentence, in our words.
    claim : str
        The concrete claim tested, with every constant filled in.
    claimed : float
        The claimed success rate ``p0``.
    measured : float
        Measured success rate (a lower or upper bound when
        ``details["measured_is"]`` says so).
    interval : (float, float)
        Clopper–Pearson interval at ``confidence`` for the success rate (lower
        end from the lower bound on the count, upper end from the upper bound).
    confidence : float
        Level of every interval in this record.
    trials : int
        Independent seeded trials.
    empirical_constant : float or None
        Point estimate of the constant the paper leaves unspecified for the
        event counted from below (certified bound <= eps: an upper bound on the
        constant), or for the event itself when it is decided exactly
        (``details["constant_event_is"] == "exact"``); None when the threshold
        lies above the scanned range or the check has no constant.
    constant_interval : (float, float or None) or None
        Bracket of ``empirical_constant`` at ``confidence``; None as upper end
        means "above the scanned range"; None when there is no constant.
    verdict : {"consistent", "violated", "inconclusive", "holds by construction"}
        From :func:`rate_verdict` (per case), revised by :func:`family_wise`
        in a run, or :data:`HOLDS` for an arithmetic comparison.
    reason : str
        Why that verdict, in words.
    details : dict
        JSON-serialisable extras (counts per n, bracket in n, seeds...).
    runtime_s : float
        Wall time of the case, in seconds.
    constant_adversarial : float or None
        Point estimate of the constant of the event counted from above
        (adversarial error <= eps: a lower bound on the constant); None when
        not measured.
    constant_adversarial_interval : (float, float or None) or None
        Its bracket at ``confidence``.
    size_ratio : float or None
        Parameters used / a lower bound on the parameters (Theorem 2 check).
    size_ratio_interval : (float, float or None) or None
        Its bracket.
    p_values : dict of str to float
        One-sided p-values of the case's tests (``"violation"``,
        ``"consistency"``; module doc); empty when the verdict is not statistical.
    basis : {"statistical", "arithmetic", "sanity"}
        What the verdict rests on (:data:`BASES`).
    """

    name: str
    case: str
    paper: str
    statement: str
    claim: str
    claimed: float
    measured: float
    interval: tuple[float, float]
    confidence: float
    trials: int
    empirical_constant: float | None
    constant_interval: tuple[float, float | None] | None
    verdict: Verdict
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    runtime_s: float = 0.0
    constant_adversarial: float | None = None
    constant_adversarial_interval: tuple[float, float | None] | None = None
    size_ratio: float | None = None
    size_ratio_interval: tuple[float, float | None] | None = None
    p_values: dict[str, float] = field(default_factory=dict)
    basis: str = "statistical"

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (tuples become lists, infinities become None)."""
        return _json_safe(asdict(self))


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _json_safe(obj.item())
    return obj


# ---------------------------------------------------------------- counts and p-values


@dataclass(frozen=True)
class SuccessCounts:
    """Bounds on the number of successful trials.

    Attributes
    ----------
    low : int
        Lower bound (trials a sufficient condition certifies, e.g. certified
        error <= eps).
    high : int
        Upper bound (trials a necessary condition does not rule out, e.g.
        adversarial error <= eps); ``low <= high``.
    trials : int
        Number of trials.
    """

    low: int
    high: int
    trials: int


def success_bounds(certified: Any, adversarial: Any, eps: float) -> SuccessCounts:
    """Bounds on the trials whose true sup error is at most ``eps``.

    ``slth.evaluate`` guarantees ``adversarial <= sup <= certified`` per trial,
    so ``#(certified <= eps) <= #(sup <= eps) <= #(adversarial <= eps)``.

    Parameters
    ----------
    certified : array_like of float
        Certified upper bounds on the sup error, one per trial (NaN or None:
        not certified, counts as above ``eps``).
    adversarial : array_like of float
        Lower bounds on the sup error (adversarial search), one per trial.
    eps : float
        Accuracy > 0.

    Returns
    -------
    SuccessCounts
        ``low = #(certified <= eps)``, ``high = #(adversarial <= eps or certified <= eps)``.

    Raises
    ------
    InputError
        Arrays of different lengths, empty, or ``eps`` not a finite number > 0.
    """
    cert = np.array([np.nan if c is None else c for c in np.ravel(certified)], dtype=float)
    adv = np.asarray(adversarial, dtype=float).ravel()
    if cert.size == 0 or cert.size != adv.size:
        raise InputError(
            "`certified` and `adversarial` must hold one value per trial (same length >= 1); "
            f"received lengths {cert.size} and {adv.size}"
        )
    if not (math.isfinite(float(eps)) and float(eps) > 0):
        raise InputError(f"`eps` must be a finite number > 0; received {eps!r}")
    ok_cert = cert <= eps
    # a trial certified within eps is a success whatever its adversarial value (one
    # above the certificate is a bug that the checks report separately)
    return SuccessCounts(low=int(np.count_nonzero(ok_cert)),
                         high=int(np.count_nonzero(ok_cert | (adv <= eps))),
                         trials=int(cert.size))


def _check_counts(successes_low: int, successes_high: int, trials: int) -> None:
    if int(trials) < 1 or not 0 <= int(successes_low) <= int(successes_high) <= int(trials):
        raise InputError(
            "`successes_low`, `successes_high` must satisfy 0 <= low <= high <= trials with "
            f"trials >= 1; received {successes_low!r}, {successes_high!r}, trials={trials!r}"
        )


def rate_p_values(
    successes_low: int,
    successes_high: int,
    trials: int,
    claimed: float,
    *,
    violation_factor: float = VIOLATION_FACTOR,
) -> dict[str, float]:
    """One-sided p-values of the claim "success rate >= ``claimed``" (module doc).

    Parameters
    ----------
    successes_low, successes_high : int
        Bounds on the number of successes.
    trials : int
        Number of independent trials, >= 1.
    claimed : float
        Claimed rate ``p0`` in (0, 1).
    violation_factor : float, default 2.0
        A violation worth excluding is a failure rate ``factor * (1 - p0)`` or more.

    Returns
    -------
    dict
        ``"violation"``: ``P(Bin(N, p0) <= successes_high)`` (small: rate below
        ``p0``); ``"consistency"``: ``P(Bin(N, p1) >= successes_low)`` with
        ``p1 = 1 - factor (1 - p0)`` (small: rate above ``p1``).
    """
    _check_counts(successes_low, successes_high, trials)
    if not 0.0 < float(claimed) < 1.0:
        raise InputError(f"`claimed` must lie in (0, 1); received {claimed!r}")
    n = int(trials)
    p1 = min(1.0, max(0.0, 1.0 - float(violation_factor) * (1.0 - float(claimed))))
    k_low = int(successes_low)
    p_cons = 1.0 if k_low == 0 else float(_st.binom.sf(k_low - 1, n, p1))
    p_viol = float(_st.binom.cdf(int(successes_high), n, float(claimed)))
    return {"violation": min(1.0, p_viol), "consistency": min(1.0, p_cons)}


def trials_needed(
    claimed: float,
    *,
    violation_factor: float = VIOLATION_FACTOR,
    confidence: float = 0.95,
) -> int:
    """Fewest trials that can give "consistent" (reached only with zero failures).

    Parameters
    ----------
    claimed : float
        Claimed success rate ``p0`` in (0, 1).
    violation_factor : float, default 2.0
        Size of the violation to exclude (failure rate ``factor * (1 - p0)``), >= 1.
    confidence : float, default 0.95
        Two-sided level of the Clopper–Pearson interval.

    Returns
    -------
    int
        Smallest ``N`` with ``((1 - confidence) / 2) ** (1 / N) >= p1``.
    """
    p1 = 1.0 - violation_factor * (1.0 - claimed)
    if p1 <= 0.0:
        return 1
    return max(1, math.ceil(math.log((1.0 - confidence) / 2.0) / math.log(p1)))


def rate_verdict(
    successes_low: int,
    successes_high: int,
    trials: int,
    claimed: float,
    *,
    violation_factor: float = VIOLATION_FACTOR,
    confidence: float = 0.95,
) -> tuple[Verdict, tuple[float, float], str]:
    """Per-case verdict on the claim "success rate >= ``claimed``" (rule in the module doc).

    Parameters
    ----------
    successes_low, successes_high : int
        Bounds on the number of successes (equal when it is known exactly):
        ``successes_low`` from a sufficient condition (e.g. certified error
        <= eps), ``successes_high`` from a necessary one (adversarial error <= eps).
    trials : int
        Number of independent trials, >= 1.
    claimed : float
        Claimed rate ``p0`` in (0, 1).
    violation_factor : float, default 2.0
        A violation worth detecting is a failure rate ``factor * (1 - p0)`` or more.
    confidence : float, default 0.95
        Two-sided level of the Clopper–Pearson interval.

    Returns
    -------
    verdict : {"consistent", "violated", "inconclusive"}
        "violated" is decided from ``successes_high`` only, "consistent" from
        ``successes_low``.
    interval : (float, float)
        ``(lo, hi)``: ``lo`` from ``successes_low``, ``hi`` from ``successes_high``.
    reason : str
    """
    _check_counts(successes_low, successes_high, trials)
    lo = clopper_pearson(int(successes_low), int(trials), confidence)[0]
    hi = clopper_pearson(int(successes_high), int(trials), confidence)[1]
    p1 = 1.0 - violation_factor * (1.0 - claimed)
    if hi < claimed:
        return "violated", (lo, hi), f"upper CI end {hi:.4g} < claimed {claimed:.4g}"
    if lo >= p1:
        return (
            "consistent",
            (lo, hi),
            f"CI [{lo:.4g}, {hi:.4g}] reaches {claimed:.4g} and excludes failure rates "
            f">= {violation_factor:g}x the claimed one",
        )
    need = trials_needed(claimed, violation_factor=violation_factor, confidence=confidence)
    return (
        "inconclusive",
        (lo, hi),
        f"lower CI end {lo:.4g} < {p1:.4g}: cannot exclude a failure rate {violation_factor:g}x "
        f"the claimed one (needs >= {need} trials, with few failures)",
    )


# ---------------------------------------------------------------- family-wise control


def _case_p_values(r: CheckResult) -> dict[str, float] | None:
    """The case's p-values; derived from its counts for records that carry none."""
    if r.basis != "statistical" or r.verdict == HOLDS:
        return None
    if r.p_values:
        return {k: float(v) for k, v in r.p_values.items()}
    if r.details.get("bound_inconsistencies"):
        return None  # a deterministic "violated" (bug found): not a statistical verdict
    k = round(r.measured * r.trials)
    k_low = int(r.details.get("successes_low", k))
    k_high = int(r.details.get("successes_high", k))
    if not 0.0 < r.claimed < 1.0 or r.trials < 1:
        return None
    return rate_p_values(k_low, k_high, r.trials, r.claimed,
                         violation_factor=float(r.details.get("violation_factor",
                                                              VIOLATION_FACTOR)))


def family_wise(results: Sequence[CheckResult], *, alpha: float = 0.05) -> list[CheckResult]:
    """Holm's step-down procedure over every test of every statistical case; revised verdicts.

    Parameters
    ----------
    results : sequence of CheckResult
        The cases of one run. Statistical cases contribute their
        ``p_values`` (records without them: p-values from ``measured *
        trials``, or ``details["successes_low"/"successes_high"]``, for both
        tests); arithmetic and sanity verdicts are kept as they are.
    alpha : float, default 0.05
        Family-wise error level in (0, 1).

    Returns
    -------
    list of CheckResult
        Same order. A statistical case becomes "violated" when its violation
        test is rejected, else "consistent" when its consistency test is, else
        "inconclusive"; ``details["verdict_per_case"]`` keeps the per-case
        verdict and ``details["family_wise"]`` the procedure, the number of
        tests and the case's Holm-adjusted p-values.
    """
    if not 0.0 < float(alpha) < 1.0:
        raise InputError(f"`alpha` must lie in (0, 1); received {alpha!r}")
    tests: list[tuple[float, int, str]] = []
    for i, r in enumerate(results):
        pv = _case_p_values(r)
        if pv is None:
            continue
        tests += [(min(1.0, max(0.0, float(p))), i, kind) for kind, p in pv.items()]
    m = len(tests)
    order = sorted(tests, key=lambda t: t[0])
    adjusted: dict[tuple[int, str], float] = {}
    running = 0.0
    for rank, (p, i, kind) in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[(i, kind)] = running
    n_cases = len({i for _, i, _ in tests})
    out: list[CheckResult] = []
    for i, r in enumerate(results):
        mine = {kind: adj for (j, kind), adj in adjusted.items() if j == i}
        if not mine:
            out.append(r)
            continue
        if mine.get("violation", 1.0) <= alpha:
            verdict: Verdict = "violated"
        elif mine.get("consistency", 1.0) <= alpha:
            verdict = "consistent"
        else:
            verdict = "inconclusive"
        adj = ", ".join(f"{k} {v:.3g}" for k, v in sorted(mine.items()))
        note = (f"family-wise (Holm over {m} tests of {n_cases} cases, alpha = {alpha:g}): "
                f"adjusted p-values {adj} -> {verdict}")
        reason = r.reason if verdict == r.verdict else f"per case {r.verdict}: {r.reason}"
        out.append(dataclasses.replace(
            r,
            verdict=verdict,
            reason=f"{reason}; {note}",
            p_values=r.p_values or _case_p_values(r) or {},
            details={
                **r.details,
                "verdict_per_case": r.verdict,
                "family_wise": {"method": "holm", "alpha": float(alpha), "tests": m,
                                "cases": n_cases, "adjusted_p_values": mine},
            },
        ))
    return out


def family_summary(results: Sequence[CheckResult]) -> dict[str, Any]:
    """How the verdicts of ``results`` were reached (for the JSON meta and the legend)."""
    fw = next((r.details["family_wise"] for r in results if "family_wise" in r.details), None)
    return {
        "method": "holm" if fw else "none (per-case verdicts)",
        "alpha": fw["alpha"] if fw else None,
        "tests": fw["tests"] if fw else 0,
        "statistical_cases": fw["cases"] if fw else 0,
        "arithmetic_cases": sum(r.verdict == HOLDS for r in results),
        "note": "two one-sided tests per statistical case (violation: P(Bin(N, p0) <= k_high); "
        "consistency: P(Bin(N, p1) >= k_low)); Holm's step-down procedure over all of them "
        "controls the probability of any false 'violated' or 'consistent' in the run",
    }


def overall_verdict(verdicts: Sequence[str]) -> Verdict:
    """One verdict for several cases: violated if any is, consistent if all are (or hold
    by construction)."""
    if any(v == "violated" for v in verdicts):
        return "violated"
    if verdicts and all(v in ("consistent", HOLDS) for v in verdicts):
        return "consistent"
    return "inconclusive"


# ---------------------------------------------------------------- reports


def _fmt_bracket(point: float | None, interval: Any, scan_max: float | None) -> str:
    if interval is None:
        return "-"
    lo, hi = interval
    hi_s = f"{hi:.2f}" if hi is not None else "?"
    if point is None:
        scan = lo if scan_max is None else scan_max
        # above the scan: say what the scan shows, at 95% where the bracket is sharper
        return f">= {lo:.2f}" if lo > scan else f"> {scan:.2f} [{lo:.2f}, ?]"
    return f"{point:.2f} [{lo:.2f}, {hi_s}]"


def _fmt_const(r: CheckResult) -> str:
    return _fmt_bracket(r.empirical_constant, r.constant_interval,
                        r.details.get("constant_scan_max"))


def _fmt_const_adv(r: CheckResult) -> str:
    if r.constant_adversarial_interval is None:
        return "exact" if r.details.get("constant_event_is") == "exact" else "-"
    return _fmt_bracket(r.constant_adversarial, r.constant_adversarial_interval,
                        r.details.get("constant_scan_max"))


def _fmt_ratio(r: CheckResult) -> str:
    return _fmt_bracket(r.size_ratio, r.size_ratio_interval, r.details.get("size_ratio_scan_max"))


def _fmt_measured(r: CheckResult) -> str:
    prefix = {"lower bound": ">= ", "upper bound": "<= "}.get(r.details.get("measured_is"), "")
    if r.basis == "arithmetic":  # decided by arithmetic: no confidence interval to print
        return f"{prefix}{r.measured:.4f} (arithmetic)"
    return f"{prefix}{r.measured:.4f} [{r.interval[0]:.4f}, {r.interval[1]:.4f}]"


def _fmt_claim(r: CheckResult) -> str:
    return str(r.details.get("claim_short", f"P >= {r.claimed:g}"))


def _rows(results: Sequence[CheckResult]) -> list[list[str]]:
    return [
        [
            r.name,
            r.case,
            str(r.details.get("n", "")),
            _fmt_claim(r),
            _fmt_measured(r),
            str(r.trials),
            _fmt_const(r),
            _fmt_const_adv(r),
            _fmt_ratio(r),
            r.verdict,
        ]
        for r in results
    ]


_HEADER = [
    "check",
    "case",
    "n",
    "claim",
    "measured [95% CI]",
    "trials",
    "C_cert [95% CI]",
    "C_adv [95% CI]",
    "size/bound [95% CI]",
    "verdict",
]


def legend(results: Sequence[CheckResult]) -> str:
    """What the table's columns, marks and verdict words mean, and at which level."""
    fw = family_summary(results)
    if fw["tests"]:
        level = (f"Verdicts are family-wise at level {1 - fw['alpha']:.0%}: Holm's step-down "
                 f"procedure at alpha = {fw['alpha']:g} over the {fw['tests']} one-sided tests "
                 f"(violation, consistency) of the {fw['statistical_cases']} statistical cases "
                 "of this run; the intervals are per-case 95% Clopper–Pearson intervals, not "
                 "corrected.")
    else:
        level = ("Verdicts are per case (no family-wise correction was applied); the "
                 "intervals are 95% Clopper–Pearson intervals.")
    return "\n".join([
        level,
        "Verdicts: 'violated' = the upper CI end, computed from an upper bound on the success "
        "count (adversarial error <= eps), is below the claimed rate; 'consistent' = it is not, "
        "and the lower end, from a lower bound on the count (certified error <= eps), excludes "
        "a failure rate twice the claimed one; 'inconclusive' = neither (too few trials); "
        f"'{HOLDS}' = decided by arithmetic before any trial (the reason gives it), not a "
        "statistical verdict.",
        "Measured: '>= x' = the rate is a lower bound (sufficient condition, or a prefix of the "
        "sample), '<= x' = an upper bound.",
        "C_cert: empirical constant (threshold divided by the theorem's log factor) of the event "
        "counted from a sufficient condition (certified bound <= eps), an upper bound on the "
        "construction's constant, or of the event itself when it is decided exactly; C_adv: of "
        "the event 'adversarial error <= eps at some width <= this one', a lower bound; 'exact' "
        "= the event is decided exactly, C_cert is the constant. Brackets at 95% per case.",
        "Marks: '?' = upper end above the scanned range; '> x' = the point estimate lies above "
        "the scan (x = its top); '>= x' = the bracket starts above the scan; '-' = not measured.",
        "size/bound: parameters of the smallest source meeting the hypothesis, divided by the "
        "lower bound (Theorem 2), with its bracket (lower end Bonferroni-corrected over the "
        "test matrices).",
    ])


def format_table(results: Sequence[CheckResult]) -> str:
    """Fixed-width text table of results (one line per case)."""
    rows = [_HEADER, *_rows(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def results_to_markdown(results: Sequence[CheckResult], *, title: str = "Theorem checks") -> str:
    """Markdown report: per check its paper and statement, then one table of all cases."""
    out = [f"# {title}", ""]
    seen: set[str] = set()
    for r in results:
        if r.name in seen:
            continue
        seen.add(r.name)
        verdicts = [x.verdict for x in results if x.name == r.name]
        out += [
            f"## `{r.name}`: {overall_verdict(verdicts)}",
            "",
            f"*{r.paper}.* {r.statement}",
            "",
        ]
    out += [
        "| " + " | ".join(_HEADER) + " |",
        "|" + "|".join("---" for _ in _HEADER) + "|",
    ]
    out += ["| " + " | ".join(row) + " |" for row in _rows(results)]
    out += ["", "Verdict rule and marks:", ""]
    out += [f"- {line}" for line in legend(results).splitlines()]
    out.append("")
    return "\n".join(out)


def results_to_json(results: Sequence[CheckResult], **meta: Any) -> str:
    """JSON document ``{"meta": {...}, "results": [CheckResult.to_dict(), ...]}``."""
    return json.dumps(
        {"meta": _json_safe(meta), "results": [r.to_dict() for r in results]},
        indent=2,
        allow_nan=False,
    )


def store_path(store_dir: str | Path | None, name: str, quick: bool) -> Path | None:
    """Resumable results file of check ``name``: ``DIR/<name>[_quick].jsonl``, or None."""
    if store_dir is None:
        return None
    return Path(store_dir) / f"{name}{'_quick' if quick else ''}.jsonl"
