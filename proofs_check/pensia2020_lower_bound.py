"""Pensia et al. (2020), Theorem 2: logarithmic over-parameterisation is necessary.

Theorem (Pensia, Rajput, Nagle, Vishwakarma, Papailiopoulos, NeurIPS 2020,
arXiv:2006.07990, Theorem 2). Any network (of any architecture) such that,
for every ``W`` in R^{d x d} with ``||W||_2 <= 1``, with probability at least
1/2 some subnetwork approximates ``x -> W x`` within eps on the unit ball, has
at least ``d^2 log2(1/(2 eps)) - 1`` parameters
(:func:`slth.bounds.pensia2020_lower_bound`).

What is measured
----------------
For each dimension d, accuracy eps and construction (Pensia et al.'s subset
sums, :mod:`slth.constructions.pensia2020`; Malach et al.'s single pairs,
:mod:`slth.constructions.malach2020`), the smallest width at which the
construction meets the theorem's hypothesis on a test set of matrices, and the
source's parameter count there against the bound:

* test matrices: ``N_W`` random ones (U[-1, 1] entries, spectral norm 1) and
  the identity (entries at the edge of the class), the same for every width;
* for each of ``N`` seeded sources (nested across widths) and each test
  matrix, the construction's best masks at each width (every subset-sum
  instance solved to its optimum, or to within ``eps / (8 d)``; resp. the
  closest single pair) give two numbers: an upper bound on the sup error,
  ``||Delta||_2`` (the certified bound of :func:`slth.evaluate.certified_bound`
  for one layer), and a lower bound, the exact error at the inputs ``+-e_j``
  (the largest column norm of the signed per-weight errors);
* a width is *shown sufficient* when, for every test matrix, the upper bound
  is at most eps in a fraction of the sources whose lower Clopper–Pearson end
  reaches 1/2, and *shown insufficient* when, for some test matrix, the lower
  bound exceeds eps in so many sources that the upper Clopper–Pearson end of
  the success rate is below 1/2 (:func:`proofs_check._core.threshold_bracket`
  per matrix, the widest bracket over matrices).

Verdict: "violated" if the construction is shown sufficient with fewer
parameters than the bound (a bug in the construction, the certificate or the
bound's formula; the test set is finite, so this is evidence, not proof);
"consistent" if every width not shown insufficient uses at least the bound
(then the construction cannot beat the bound, whatever the widths not scanned);
"inconclusive" otherwise. ``empirical_constant`` is the over-parameterisation
ratio (parameters used / bound) at the smallest width whose measured rate
reaches 1/2 for every test matrix, with its bracket from the widths shown
insufficient and sufficient.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slth import MLP, InputError, spawn
from slth import bounds as B
from slth.constructions import source_widths
from slth.stats import clopper_pearson
from slth.sweeps import run_sweep

from ._core import CheckResult, store_path, threshold_bracket
from ._mlp import SingleCurve, bounded_target, layer_candidates, optimal_errors, source_params

__all__ = ["CASES", "CONSTRUCTIONS", "NAME", "PAPER", "STATEMENT", "check", "run", "widths_grid"]

NAME = "pensia2020_lower_bound"
PAPER = (
    "Pensia, Rajput, Nagle, Vishwakarma, Papailiopoulos 2020, NeurIPS (arXiv:2006.07990), "
    "Theorem 2"
)
STATEMENT = (
    "A network whose subnetworks eps-approximate every d x d linear map with ||W|| <= 1 "
    "(each with probability >= 1/2) has at least d^2 log2(1/(2 eps)) - 1 parameters."
)

CONSTRUCTIONS: tuple[str, ...] = ("pensia2020", "malach2020")
#: (d, eps) cases of :func:`run`, per mode.
CASES: dict[str, list[tuple[int, float]]] = {
    "quick": [(2, 0.1), (3, 0.05)],
    "full": [(2, 0.1), (2, 0.02), (3, 0.05), (4, 0.1), (4, 0.05), (8, 0.1)],
}
QUICK: dict[str, Any] = {"sources": 20, "matrices": 3}
FULL: dict[str, Any] = {"sources": 100, "matrices": 8}
#: Largest Pensia width scanned (exact subset sums on up to this many candidates).
PENSIA_MAX = 28
#: Largest Malach width scanned.
MALACH_MAX = 1 << 16
#: Candidate values held at once (floats), which sets how many sources are read together.
_MEMORY = 1 << 24


def widths_grid(construction: str, d: int, eps: float) -> list[int]:
    """Units per part scanned: 1..PENSIA_MAX (Pensia), a ~sqrt(2) geometric grid (Malach).

    The Malach grid reaches ``max(64 d / eps, 4 (d / eps)^2)``, at most
    :data:`MALACH_MAX`: a closest product within about eps / d of every weight
    needs a multiple of d / eps candidates, and of (d / eps)^2 for weights
    near 1 (the identity), where the product law's density vanishes.
    """
    if construction == "pensia2020":
        return list(range(1, PENSIA_MAX + 1))
    top = int(min(MALACH_MAX, max(64 * d / eps, 4 * (d / eps) ** 2)))
    grid = {int(k) for k in np.round(np.sqrt(2.0) ** np.arange(0, 2 * math.log2(top) + 1))}
    return sorted(k for k in grid | {top} if 1 <= k <= top)


def _bounds(construction: str, cands: list[Any], n: int, floor: float
            ) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower bounds on the sup error of the best masks at ``n``, per candidate set.

    Upper: ``||Delta||_2``. Lower: the largest column norm of the per-weight
    errors (the exact error at some ``+-e_j``). Pensia's subset sums are searched
    to within ``floor`` only (:func:`proofs_check._mlp.optimal_errors`): an error
    reported as ``floor`` counts as ``floor`` in the upper bound and 0 in the lower.
    """
    if construction == "pensia2020":
        errs = optimal_errors(cands, [n] * len(cands), floor=floor)
        low = [np.where(e > floor, e, 0.0) for e in errs]
    else:
        errs = low = [c.at(n) for c in cands]
    ub = np.array([np.linalg.svd(np.maximum(e[0], e[1]), compute_uv=False)[0] for e in errs])
    lb = np.array([np.linalg.norm(e, axis=1).max() for e in low])
    return ub, lb


def _task(config: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    d, eps, cons = config["d"], config["eps"], config["construction"]
    grid = config["grid"]
    mats = [bounded_target((d, d), rng=rng).weights[0] for _ in range(config["matrices"])]
    mats.append(np.eye(d))
    N = grid[-1]
    shape = MLP((np.zeros((d, d)),))
    # (source, matrix) pairs handled in groups small enough for memory (Malach sources
    # are wide); the candidate products depend on the source only
    group = max(1, int(_MEMORY // (4 * d * d * 2 * N)))
    upper = np.zeros((len(grid), len(mats)), dtype=np.int64)   # successes, upper bound
    lower = np.zeros((len(grid), len(mats)), dtype=np.int64)   # successes, lower bound
    gens = spawn(rng, config["sources"])
    pairs = [(s, m) for s in range(len(gens)) for m in range(len(mats))]
    base: dict[int, Any] = {}
    for p0 in range(0, len(pairs), group):
        chunk = pairs[p0:p0 + group]
        # each source is drawn once; one spanning two chunks is carried over
        base = {
            s: base[s] if s in base else layer_candidates(
                MLP.random(source_widths(shape, [N]), rng=gens[s]), shape, 0, N)
            for s in dict.fromkeys(s for s, _ in chunk)
        }
        cands: list[Any] = []
        for s, m in chunk:
            c = dataclasses.replace(base[s], targets=np.stack([mats[m], -mats[m]]))
            cands.append(c if cons == "pensia2020" else SingleCurve.of(c))
        cols = np.array([m for _, m in chunk])
        for gi, n in enumerate(grid):
            ub, lb = _bounds(cons, cands, n, eps / (8 * d))
            np.add.at(upper[gi], cols, ub <= eps)
            np.add.at(lower[gi], cols, lb <= eps)
            if (ub <= eps).all():   # both bounds are monotone in n: all larger n succeed
                for later in range(gi + 1, len(grid)):
                    np.add.at(upper[later], cols, 1)
                    np.add.at(lower[later], cols, 1)
                break
        del cands
    return {"upper": upper.tolist(), "lower": lower.tolist()}


def check(
    construction: str = "pensia2020",
    d: int = 2,
    eps: float = 0.1,
    *,
    sources: int = 100,
    matrices: int = 8,
    confidence: float = 0.95,
    rng: int = 0,
    store: str | Path | None = None,
    progress: bool | None = None,
) -> CheckResult:
    """Compare one construction's parameter count with Theorem 2's bound at one (d, eps).

    Parameters
    ----------
    construction : {"pensia2020", "malach2020"}
    d : int, default 2
        Dimension of the linear maps, >= 1.
    eps : float, default 0.1
        Accuracy in (0, 1/2).
    sources : int, default 100
        Seeded sources per width (nested across widths).
    matrices : int, default 8
        Random test matrices (the identity is added).
    confidence : float, default 0.95
        Level of the Clopper–Pearson intervals.
    rng : int, default 0
        Base seed.
    store : path-like, optional
        Results file for resuming.
    progress : bool or None
        Progress bar on stderr.

    Returns
    -------
    CheckResult
        ``claimed`` = 1/2 (the theorem's success probability); ``measured``:
        the smallest success rate over test matrices at the point-estimate
        width; ``empirical_constant``: parameters used / bound there, with
        its bracket (module doc).
    """
    t0 = time.perf_counter()
    if construction not in CONSTRUCTIONS:
        raise InputError(f"`construction` must be one of {CONSTRUCTIONS}; "
                         f"received {construction!r}")
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
        raise InputError(f"`d` must be an int >= 1; received {d!r}")
    if not 0.0 < float(eps) < 0.5:
        raise InputError(f"`eps` must lie in (0, 1/2) (the bound is vacuous beyond); "
                         f"received {eps!r}")
    if int(sources) < 1 or int(matrices) < 0:
        raise InputError(f"`sources` must be >= 1 and `matrices` >= 0; received {sources!r}, "
                         f"{matrices!r}")
    grid = widths_grid(construction, int(d), float(eps))
    config = {"check": NAME, "construction": construction, "d": int(d), "eps": float(eps),
              "sources": int(sources), "matrices": int(matrices), "grid": grid}
    res = run_sweep(_task, [config], path=store, rng=rng, progress=progress,
                    desc=f"{NAME} {construction} d={d} eps={eps:g}")
    upper = np.array(res.results[0]["upper"])
    lower = np.array(res.results[0]["lower"])
    S = int(sources)
    claimed = 0.5
    brackets = []
    for m in range(upper.shape[1]):
        hi = threshold_bracket(dict(zip(grid, upper[:, m].tolist())), S, claimed,
                               confidence=confidence)
        lo = threshold_bracket(dict(zip(grid, lower[:, m].tolist())), S, claimed,
                               confidence=confidence)
        brackets.append((lo.n_low, hi.n_hat, hi.n_high))
    n_low = max(b[0] for b in brackets)
    n_hat = None if any(b[1] is None for b in brackets) else max(b[1] for b in brackets)
    n_high = None if any(b[2] is None for b in brackets) else max(b[2] for b in brackets)
    shape = MLP((np.zeros((int(d), int(d))),))

    def params(n: int | None) -> int | None:
        return None if n is None else source_params(shape, [n])

    lb = float(B.pensia2020_lower_bound(int(d), float(eps)))
    p_low, p_hat, p_high = params(n_low), params(n_hat), params(n_high)
    if p_high is not None and p_high < lb:
        verdict, reason = "violated", (
            f"shown sufficient at n = {n_high} with {p_high} parameters < bound {lb:.4g}")
    elif p_low >= lb:
        verdict, reason = "consistent", (
            f"every width not shown insufficient (n >= {n_low}) uses >= {p_low} parameters "
            f">= bound {lb:.4g}")
    else:
        verdict, reason = "inconclusive", (
            f"n = {n_low} ({p_low} parameters) is below the bound {lb:.4g} and not shown "
            f"insufficient; smallest width shown sufficient: {n_high}")
    if n_hat is not None:
        gi = grid.index(n_hat)
        k = int(upper[gi].min())
    else:
        k = int(upper[-1].min())
    interval = clopper_pearson(k, S, confidence)
    ratio = None if p_hat is None else p_hat / lb
    details: dict[str, Any] = {
        "n": n_hat,
        "construction": construction,
        "d": int(d),
        "eps": float(eps),
        "lower_bound": lb,
        "n_bracket": [n_low, n_high],
        "params_used": p_hat,
        "params_bracket": [p_low, p_high],
        "overparameterisation_ratio": ratio,
        "widths_scanned": [grid[0], grid[-1]],
        "constant_scan_max": params(grid[-1]) / lb,
        "test_matrices": int(matrices) + 1,
        "brackets_per_matrix": [list(b) for b in brackets],
        "successes_upper_by_n": {str(n): upper[i].tolist() for i, n in enumerate(grid)
                                 if i % 4 == 0 or n == n_hat},
        "seed": rng,
    }
    return CheckResult(
        name=NAME,
        case=f"{construction}, d={d}, eps={eps:g}",
        paper=PAPER,
        statement=STATEMENT,
        claim=(f"parameters used where the construction reaches eps={eps:g} for every test "
               f"matrix with probability >= 1/2 are >= {d}^2 log2(1/(2 eps)) - 1 = {lb:.4g}"),
        claimed=claimed,
        measured=k / S,
        interval=interval,
        confidence=float(confidence),
        trials=S,
        empirical_constant=ratio,
        constant_interval=(p_low / lb, None if p_high is None else p_high / lb),
        verdict=verdict,
        reason=reason,
        details=details,
        runtime_s=time.perf_counter() - t0,
    )


def run(
    *,
    quick: bool = False,
    rng: int = 0,
    store_dir: str | Path | None = None,
    progress: bool | None = None,
    constructions: Sequence[str] = CONSTRUCTIONS,
) -> list[CheckResult]:
    """All cases: each construction and each (d, eps) of the mode.

    Parameters
    ----------
    quick : bool, default False
        :data:`QUICK` sizes and ``CASES["quick"]`` instead of the full ones.
    rng : int, default 0
        Base seed.
    store_dir : path-like, optional
        Folder of the resumable results file ``pensia2020_lower_bound[_quick].jsonl``.
    progress : bool or None
        Progress bars on stderr.
    constructions : sequence of str
        Constructions compared.

    Returns
    -------
    list of CheckResult
    """
    mode = QUICK if quick else FULL
    store = store_path(store_dir, NAME, quick)
    return [
        check(c, d, eps, sources=mode["sources"], matrices=mode["matrices"], rng=rng,
              store=store, progress=progress)
        for d, eps in CASES["quick" if quick else "full"]
        for c in constructions
    ]
