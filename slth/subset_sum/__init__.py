"""Random subset sum: the primitive every strong-lottery-ticket construction stands on.

Exact (meet in the middle) and eps-mode solvers, batched in numba; the
worst-case error over all targets (:func:`coverage`); Lueker's success
probability; the sample laws of the theory. Plain-numpy twins of every kernel
live in :mod:`slth.subset_sum.reference`.

The package never imports the sweep runner: the resumable trials built on it
(:func:`slth.trials.first_covering_trials`) live above it, and the name
``slth.subset_sum.first_covering_trials`` of slth 0.1 is imported from there on
first use.
"""

from typing import Any

from ..stats import Estimate
from .coverage import (
    COVERAGE_MAX_N,
    COVERS_MAX_N,
    coverage,
    coverage_batch,
    covers,
    covers_batch,
    first_covering_n,
    success_probability,
)
from .distributions import DISTRIBUTIONS, sample
from .law import LawRow, format_law_table, law_reference, optimal_error_law
from .solve import (
    EXACT_MAX_N,
    METHODS,
    BatchResult,
    SubsetSumResult,
    eps_direct_length,
    eps_prefix_length,
    solve,
    solve_batch,
)

__all__ = [
    "COVERAGE_MAX_N",
    "COVERS_MAX_N",
    "DISTRIBUTIONS",
    "EXACT_MAX_N",
    "METHODS",
    "BatchResult",
    "Estimate",
    "LawRow",
    "SubsetSumResult",
    "coverage",
    "coverage_batch",
    "covers",
    "covers_batch",
    "eps_direct_length",
    "eps_prefix_length",
    "first_covering_n",
    "first_covering_trials",
    "format_law_table",
    "law_reference",
    "optimal_error_law",
    "sample",
    "solve",
    "solve_batch",
    "success_probability",
]


def __getattr__(name: str) -> Any:
    # slth 0.1 exported first_covering_trials here; it now lives in slth.trials (above the
    # sweep runner, which this package does not import)
    if name == "first_covering_trials":
        from ..trials import first_covering_trials

        return first_covering_trials
    raise AttributeError(f"module 'slth.subset_sum' has no attribute {name!r}")
