"""The empirical law of random subset sum: the optimal error against n.

Lueker (1998) shows the best subset of n i.i.d. uniform values approximates a
target exponentially well in n. Measured by this package, the median optimal
error for a target uniform on [-1, 1] follows about 0.4 sqrt(n) 2^-n.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._rng import RNGLike, as_generator, spawn
from ..errors import InputError
from .distributions import sample
from .solve import EXACT_MAX_N, solve_batch

__all__ = ["LawRow", "format_law_table", "law_reference", "optimal_error_law"]


def law_reference(n: np.ndarray | float) -> np.ndarray | float:
    """The reference law 0.4 sqrt(n) 2^-n for the median optimal error."""
    return 0.4 * np.sqrt(n) * np.exp2(-np.asarray(n, dtype=float))


@dataclass(frozen=True)
class LawRow:
    """Optimal-error statistics at one n.

    Attributes
    ----------
    n : int
        Number of values per instance.
    instances : int
        Number of seeded instances solved exactly.
    median, q25, q75 : float
        Median and quartiles of the optimal error |target - best subset sum|.
    reference : float
        ``law_reference(n)`` = 0.4 sqrt(n) 2^-n.
    seconds : float
        Wall time of the exact solves.
    """

    n: int
    instances: int
    median: float
    q25: float
    q75: float
    reference: float
    seconds: float

    @property
    def ratio(self) -> float:
        """median / reference."""
        return self.median / self.reference


def optimal_error_law(
    ns: Sequence[int],
    *,
    instances: int = 1000,
    distribution: str = "uniform",
    rng: RNGLike = 0,
) -> list[LawRow]:
    """Measure the median optimal subset-sum error for each n in ``ns``.

    Each n gets its own child generator (so adding an n does not change the
    others); targets are uniform on [-1, 1], values drawn from ``distribution``.

    Parameters
    ----------
    ns : sequence of int
        Values of n, each in [1, EXACT_MAX_N].
    instances : int, default 1000
        Instances per n (>= 1).
    distribution : str, default "uniform"
        A name from :data:`slth.subset_sum.DISTRIBUTIONS`.
    rng : int, numpy.random.Generator, numpy.random.SeedSequence or None
        Randomness.

    Returns
    -------
    list of LawRow
    """
    import time

    ns = [int(n) for n in ns]
    bad = [n for n in ns if not 1 <= n <= EXACT_MAX_N]
    if bad:
        raise InputError(f"`ns` must hold ints in [1, {EXACT_MAX_N}]; received {bad[0]!r}")
    if int(instances) < 1:
        raise InputError(f"`instances` must be an int >= 1; received {instances!r}")
    gens = spawn(as_generator(rng), len(ns))
    rows = []
    for n, gen in zip(ns, gens):
        values = sample(distribution, (int(instances), n), rng=gen)
        targets = gen.uniform(-1.0, 1.0, int(instances))
        t0 = time.perf_counter()
        errors = solve_batch(values, targets).errors
        dt = time.perf_counter() - t0
        q25, med, q75 = np.quantile(errors, [0.25, 0.5, 0.75])
        rows.append(
            LawRow(
                n, int(instances), float(med), float(q25), float(q75), float(law_reference(n)), dt
            )
        )
    return rows


def format_law_table(rows: Sequence[LawRow]) -> str:
    """Markdown table of :func:`optimal_error_law` rows."""
    lines = [
        "| n | instances | median optimal error | 0.4 sqrt(n) 2^-n | ratio | quartiles | solve s |",
        "|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.n} | {r.instances} | {r.median:.3g} | {r.reference:.3g} | {r.ratio:.2f} | "
            f"{r.q25:.2g} .. {r.q75:.2g} | {r.seconds:.3f} |"
        )
    return "\n".join(lines)
