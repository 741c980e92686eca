"""What every theorem check shares: the result record, the verdict rule, the threshold scan.

Verdict rule (one place, used by every check)
---------------------------------------------
Most SLTH statements read "with probability at least ``p0``, the construction
succeeds". A check runs ``N`` seeded, independent trials, counts ``k``
successes and forms the two-sided Clopper–Pearson interval ``[lo, hi]`` at
level ``confidence`` (default 95%; each end is a one-sided 97.5% bound).
A *violation of the stated size* is a true failure rate at least
``violation_factor`` (default 2) times the claimed one, i.e. a success rate
``<= p1 = 1 - violation_factor * (1 - p0)``.

``"violated"``
    ``hi < p0``: the success rate is significantly below the claim.
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

When only bounds ``k_low <= k <= k_high`` on the success count are known (for
instance a sufficient condition certifies some successes, a necessary one some
failures), ``lo`` is computed from ``k_low`` and ``hi`` from ``k_high``: both ends
stay valid one-sided bounds, so the rule stays honest.

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
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from slth.stats import Threshold, clopper_pearson, threshold_bracket

__all__ = [
    "VERDICTS",
    "CheckResult",
    "Threshold",
    "Verdict",
    "format_table",
    "overall_verdict",
    "rate_verdict",
    "results_to_json",
    "results_to_markdown",
    "store_path",
    "threshold_bracket",
    "trials_needed",
]

Verdict = Literal["consistent", "violated", "inconclusive"]
VERDICTS: tuple[str, ...] = ("consistent", "violated", "inconclusive")

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
        Measured success rate (a lower bound when ``details["measured_is"]`` says so).
    interval : (float, float)
        Clopper–Pearson interval at ``confidence`` for the success rate.
    confidence : float
        Level of every interval in this record.
    trials : int
        Independent seeded trials.
    empirical_constant : float or None
        Point estimate of the constant the paper leaves unspecified
        (``n* / f``, see the module doc), None when the threshold lies above
        the scanned range.
    constant_interval : (float, float or None)
        Bracket of the empirical constant at ``confidence``; None as upper end
        means "above the scanned range".
    verdict : {"consistent", "violated", "inconclusive"}
        From :func:`rate_verdict`.
    reason : str
        Why that verdict, in words.
    details : dict
        JSON-serialisable extras (counts per n, bracket in n, seeds...).
    runtime_s : float
        Wall time of the case, in seconds.
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
    constant_interval: tuple[float, float | None]
    verdict: Verdict
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    runtime_s: float = 0.0

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
    """Verdict on the claim "success rate >= ``claimed``" (rule in the module doc).

    Parameters
    ----------
    successes_low, successes_high : int
        Bounds on the number of successes (equal when it is known exactly).
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
    interval : (float, float)
        ``(lo, hi)``: ``lo`` from ``successes_low``, ``hi`` from ``successes_high``.
    reason : str
    """
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


def overall_verdict(verdicts: Sequence[str]) -> Verdict:
    """One verdict for several cases: violated if any is, consistent if all are."""
    if any(v == "violated" for v in verdicts):
        return "violated"
    if verdicts and all(v == "consistent" for v in verdicts):
        return "consistent"
    return "inconclusive"


# ---------------------------------------------------------------- reports


def _fmt_const(r: CheckResult) -> str:
    lo, hi = r.constant_interval
    hi_s = f"{hi:.2f}" if hi is not None else "?"
    if r.empirical_constant is None:
        scan = r.details.get("constant_scan_max", lo)
        # above the scan: say what the scan shows, at 95% where the bracket is sharper
        return f">= {lo:.2f}" if lo > scan else f"> {scan:.2f} [{lo:.2f}, ?]"
    return f"{r.empirical_constant:.2f} [{lo:.2f}, {hi_s}]"


def _fmt_measured(r: CheckResult) -> str:
    prefix = ">= " if r.details.get("measured_is") == "lower bound" else ""
    return f"{prefix}{r.measured:.4f} [{r.interval[0]:.4f}, {r.interval[1]:.4f}]"


def _rows(results: Sequence[CheckResult]) -> list[list[str]]:
    return [
        [
            r.name,
            r.case,
            str(r.details.get("n", "")),
            f"{r.claimed:g}",
            _fmt_measured(r),
            str(r.trials),
            _fmt_const(r),
            r.verdict,
        ]
        for r in results
    ]


_HEADER = [
    "check",
    "case",
    "n",
    "claim P>=",
    "measured [95% CI]",
    "trials",
    "C [95% CI]",
    "verdict",
]


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
    out += [
        "",
        "Verdict rule: *violated* if the upper 95% Clopper–Pearson end is below the claimed "
        "rate; *consistent* if it is not and the lower end excludes a failure rate twice the "
        "claimed one; *inconclusive* otherwise (too few trials). C: empirical constant "
        "(threshold n* divided by the theorem's log factor) with its 95% bracket; '?' = above "
        "the scanned range, '> x': the point estimate lies above the scan, '>= x': the 95% "
        "bracket starts above the scan. A measured rate written '>= x' is measured on a prefix "
        "of the sample (a lower bound).",
        "",
    ]
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
