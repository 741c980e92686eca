"""Executable checks of the SLTH theorems, one module per theorem or lemma.

Each module states its theorem in its docstring (paper, year, number), computes
with slth's public API only (``slth``, ``slth.subset_sum``, ``slth.stats``,
``slth.sweeps``, ``slth.nets``, ``slth.constructions``, ``slth.bounds``,
``slth.evaluate``), runs seeded trials and returns :class:`CheckResult` records:
the claim, the measured value with its Clopper–Pearson interval, the empirical
constant where the paper leaves one unspecified, and a verdict (rules in
:mod:`proofs_check._core`). :func:`run_checks` revises the statistical
verdicts of a run together (Holm's procedure over all its cases,
:func:`proofs_check._core.family_wise`).

Adding a check
--------------
Write ``proofs_check/<name>.py`` exposing ``NAME``, ``PAPER``, ``STATEMENT`` and
``run(*, quick, rng, store_dir, progress) -> list[CheckResult]``, then add one
line to :data:`CHECKS`. Run everything with ``python -m proofs_check``.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from slth import InputError

from ._core import (
    HOLDS,
    VERDICTS,
    CheckResult,
    SuccessCounts,
    Threshold,
    Verdict,
    family_summary,
    family_wise,
    format_table,
    legend,
    overall_verdict,
    rate_p_values,
    rate_verdict,
    results_to_json,
    results_to_markdown,
    success_bounds,
    threshold_bracket,
    trials_needed,
)

__all__ = [
    "CHECKS",
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
    "load_check",
    "overall_verdict",
    "rate_p_values",
    "rate_verdict",
    "results_to_json",
    "results_to_markdown",
    "run_checks",
    "success_bounds",
    "threshold_bracket",
    "trials_needed",
]

#: Registry: check name -> module (imported only when the check runs).
#: One line per theorem check.
CHECKS: dict[str, str] = {
    "lueker1998": f"{__name__}.lueker1998",
    "pensia2020": f"{__name__}.pensia2020",
    "pensia2020_universal": f"{__name__}.pensia2020_universal",
    "pensia2020_layer": f"{__name__}.pensia2020_layer",
    "pensia2020_lower_bound": f"{__name__}.pensia2020_lower_bound",
    "malach2020": f"{__name__}.malach2020",
    "dacunha2022": f"{__name__}.dacunha2022",
    "otsuka2025": f"{__name__}.otsuka2025",
    "burkholz2022": f"{__name__}.burkholz2022",
}


def load_check(name: str) -> ModuleType:
    """Import the module of the check ``name`` (a key of :data:`CHECKS`)."""
    if name not in CHECKS:
        raise InputError(f"`name` must be one of {sorted(CHECKS)}; received {name!r}")
    return importlib.import_module(CHECKS[name])


def run_checks(
    names: Sequence[str] | None = None,
    *,
    quick: bool = False,
    rng: int = 0,
    store_dir: str | Path | None = None,
    progress: bool | None = None,
    alpha: float = 0.05,
) -> list[CheckResult]:
    """Run the registered checks ``names`` (all when None), in registry order.

    The statistical verdicts of all cases are then revised together:
    :func:`proofs_check._core.family_wise` applies Holm's step-down procedure
    at ``alpha`` to the one-sided tests of every statistical case, so the
    probability of any false "violated" or "consistent" in the run is at most
    ``alpha``.

    Parameters
    ----------
    names : sequence of str, optional
        Keys of :data:`CHECKS`.
    quick : bool, default False
        Each check's quick mode (all of them together under a minute on 2 cores).
    rng : int, default 0
        Base seed, passed to every check.
    store_dir : path-like, optional
        Folder of the checks' resumable results files.
    progress : bool or None
        Progress bars on stderr (None: when stderr is a terminal).
    alpha : float, default 0.05
        Family-wise error level of the run's verdicts, in (0, 1).

    Returns
    -------
    list of CheckResult
        Registry order, verdicts revised (``details["verdict_per_case"]`` keeps
        each case's own verdict).
    """
    selected = list(CHECKS) if names is None else [n for n in CHECKS if n in set(names)]
    for n in names or ():
        load_check(n)  # validates the name
    results: list[CheckResult] = []
    for name in selected:
        results.extend(
            load_check(name).run(quick=quick, rng=rng, store_dir=store_dir, progress=progress)
        )
    return family_wise(results, alpha=alpha)
