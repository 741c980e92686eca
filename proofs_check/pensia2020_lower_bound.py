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
sums, :mod:`slth.constructions.pensia2020`; Malach et al.'s single-pair
selection on the same shared layout, :mod:`slth.constructions.single_pair`,
named ``"single_pair"``), whether the construction meets the
theorem's hypothesis with fewer parameters than the bound, and the smallest
width at which it meets it:

* test matrices: ``N_W`` random ones (U[-1, 1] entries, spectral norm 1) and
  the identity (entries at the edge of the class), the same for every width;
* for each of ``N`` seeded sources (nested across widths) and each test
  matrix, the construction's best masks at each width (every subset-sum
  instance solved to its optimum, or to within ``eps / (8 d)``; resp. the
  closest single pair) give two numbers: an upper bound on the sup error,
  ``||Delta||_2`` (the certified bound of :func:`slth.evaluate.certified_bound`
  for one layer), and a lower bound, the exact error at the inputs ``+-e_j``
  (the largest column norm of the signed per-weight errors). Counting the
  sources whose upper bound is <= eps gives a lower bound on the success
  count, counting those whose lower bound is <= eps an upper bound; both are
  nondecreasing in the width.

**Arithmetic first.** Every source of the layout has ``4 d^2 n`` parameters
(``n`` units per part), so the smallest one, ``n = 1``, already has ``4 d^2``,
which meets ``d^2 log2(1/(2 eps)) - 1`` whenever ``eps >= 1/32``: no width
can then use fewer parameters than the bound, and the verdict is
``"holds by construction"`` (the reason gives the arithmetic), not a
statistical "consistent". The cases of :func:`run` have ``eps < 1/32``, so
the comparison rests on data.

**The test.** Let ``n_b`` be the largest width with fewer parameters than the
bound. The theorem says the construction at ``n_b`` (hence, by nesting, at
every smaller width) fails the hypothesis: some ``W`` has success
probability below 1/2. Two one-sided tests at ``n_b``
(:mod:`proofs_check._core`):

* *violation* (the construction meets the hypothesis on every test matrix
  with fewer parameters than the bound): rejected when every matrix's lower
  success count is significantly above 1/2; p-value
  ``max_W P(Bin(N, 1/2) >= k_low(W))`` (an intersection–union test, no
  correction needed). The test set is finite, so a violation is evidence
  against the construction, the certificate or the bound's formula, not a
  proof over every ``W``;
* *consistency* (some test matrix fails): rejected when some matrix's upper
  success count is significantly below 1/2; p-value
  ``min(1, N_W' min_W P(Bin(N, 1/2) <= k_high(W)))`` with ``N_W'`` the number
  of test matrices (Bonferroni).

Per case "violated" / "consistent" at one-sided level ``(1 - confidence) / 2``,
revised with the other cases of a run by Holm's procedure.

**Size ratio** (``size_ratio``, its own column): the parameters at the
smallest width whose measured rate reaches 1/2 for every test matrix, over the
bound, with a bracket from the widths shown insufficient (for some matrix:
upper CI end of its upper success count below 1/2, at level
``1 - (1 - confidence) / N_W'`` per matrix, Bonferroni over the matrices, since
the largest of the per-matrix lower ends is taken) and the width shown
sufficient (every matrix's lower CI end at least 1/2; the largest per-matrix
upper end, valid without correction).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as _st

from slth import MLP, InputError, spawn
from slth import bounds as B
from slth.constructions import source_widths
from slth.stats import clopper_pearson
from slth.sweeps import run_sweep

from ._core import HOLDS, CheckResult, store_path, threshold_bracket
from ._mlp import SingleCurve, bounded_target, layer_candidates, optimal_errors, source_params

__all__ = [
    "CASES",
    "CONSTRUCTIONS",
    "NAME",
    "PAPER",
    "STATEMENT",
    "check",
    "largest_width_below",
    "run",
    "widths_grid",
]

NAME = "pensia2020_lower_bound"
PAPER = (
    "Pensia, Rajput, Nagle, Vishwakarma, Papailiopoulos 2020, NeurIPS (arXiv:2006.07990), "
    "Theorem 2"
)
STATEMENT = (
    "A network whose subnetworks eps-approximate every d x d linear map with ||W|| <= 1 "
    "(each with probability >= 1/2) has at least d^2 log2(1/(2 eps)) - 1 parameters."
)

CONSTRUCTIONS: tuple[str, ...] = ("pensia2020", "single_pair")
#: (construction, d, eps) cases of :func:`run`, per mode; every eps < 1/32, where
#: the smallest source (4 d^2 parameters) is below the bound, so the comparison
#: rests on data (module doc). Single-pair widths grow like (d / eps)^2: fewer cases.
CASES: dict[str, list[tuple[str, int, float]]] = {
    "quick": [("pensia2020", 2, 0.02), ("single_pair", 2, 0.02), ("pensia2020", 3, 0.01)],
    "full": [
        ("pensia2020", 2, 0.02), ("single_pair", 2, 0.02),
        ("pensia2020", 2, 0.001), ("pensia2020", 2, 1e-4),
        ("pensia2020", 3, 0.01), ("single_pair", 3, 0.02),
        ("pensia2020", 4, 0.02), ("single_pair", 4, 0.02),
        ("pensia2020", 4, 0.005),
        ("pensia2020", 8, 0.02),
    ],
}
QUICK: dict[str, Any] = {"sources": 20, "matrices": 3}
FULL: dict[str, Any] = {"sources": 100, "matrices": 8}
#: Largest Pensia width scanned (exact subset sums on up to this many candidates).
PENSIA_MAX = 28
#: Largest single-pair width scanned.
SINGLE_MAX = 1 << 16
#: Candidate values held at once (floats), which sets how many sources are read together.
_MEMORY = 1 << 24


def widths_grid(construction: str, d: int, eps: float) -> list[int]:
    """Units per part scanned: 1..PENSIA_MAX (Pensia), a ~sqrt(2) geometric grid (single pair).

    The single-pair grid reaches ``max(64 d / eps, 4 (d / eps)^2)``, at most
    :data:`SINGLE_MAX`: a closest product within about eps / d of every weight
    needs a multiple of d / eps candidates, and of (d / eps)^2 for weights
    near 1 (the identity), where the product law's density vanishes.
    """
    if construction == "pensia2020":
        return list(range(1, PENSIA_MAX + 1))
    top = int(min(SINGLE_MAX, max(64 * d / eps, 4 * (d / eps) ** 2)))
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
    # (source, matrix) pairs handled in groups small enough for memory (single-pair sources
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


def largest_width_below(bound: float, top: int, params: Any) -> int | None:
    """Largest ``n`` in ``[1, top]`` with ``params(n) < bound`` (``params`` nondecreasing).

    None when even ``params(1)`` meets the bound.
    """
    if params(1) >= bound:
        return None
    lo, hi = 1, int(top)
    if params(hi) < bound:
        return hi
    while hi - lo > 1:   # params(lo) < bound <= params(hi)
        mid = (lo + hi) // 2
        if params(mid) < bound:
            lo = mid
        else:
            hi = mid
    return lo


def check(
    construction: str = "pensia2020",
    d: int = 2,
    eps: float = 0.02,
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
    construction : {"pensia2020", "single_pair"}
    d : int, default 2
        Dimension of the linear maps, >= 1.
    eps : float, default 0.02
        Accuracy in (0, 1/2); below 1/32 the comparison rests on data, above
        it holds by construction (module doc).
    sources : int, default 100
        Seeded sources per width (nested across widths).
    matrices : int, default 8
        Random test matrices (the identity is added).
    confidence : float, default 0.95
        Level of the Clopper–Pearson intervals; the tests at ``n_b`` reject at
        ``(1 - confidence) / 2`` per case.
    rng : int, default 0
        Base seed.
    store : path-like, optional
        Results file for resuming.
    progress : bool or None
        Progress bar on stderr.

    Returns
    -------
    CheckResult
        ``claimed`` = 1/2 (the theorem's success probability); ``details["n"]``:
        ``n_b``, the largest width below the bound (1 when there is none);
        ``measured``: the upper bound on the success rate of the hardest test
        matrix there (``interval`` from its lower and upper success counts);
        ``p_values``: the violation and consistency tests at ``n_b``;
        ``size_ratio``: parameters used / bound at the smallest width whose
        measured rate reaches 1/2 for every test matrix, with its bracket
        (module doc); verdict :data:`proofs_check._core.HOLDS` when arithmetic
        settles the comparison.
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
    if not 0.0 < float(confidence) < 1.0:
        raise InputError(f"`confidence` must lie in (0, 1); received {confidence!r}")
    shape = MLP((np.zeros((int(d), int(d))),))

    def params(n: int | None) -> int | None:
        return None if n is None else source_params(shape, [n])

    lb = float(B.pensia2020_lower_bound(int(d), float(eps)))
    grid = widths_grid(construction, int(d), float(eps))
    n_b = largest_width_below(lb, grid[-1], params)
    if n_b is not None:
        grid = sorted({*grid, n_b})
    config = {"check": NAME, "construction": construction, "d": int(d), "eps": float(eps),
              "sources": int(sources), "matrices": int(matrices), "grid": grid}
    res = run_sweep(_task, [config], path=store, rng=rng, progress=progress,
                    desc=f"{NAME} {construction} d={d} eps={eps:g}")
    upper = np.array(res.results[0]["upper"])   # successes by the upper error bound: k_low
    lower = np.array(res.results[0]["lower"])   # successes by the lower error bound: k_high
    S = int(sources)
    claimed = 0.5
    alpha = 1.0 - float(confidence)
    n_mat = upper.shape[1]
    conf_low = 1.0 - alpha / n_mat   # Bonferroni over matrices for the max of lower ends
    brackets = []
    for m in range(n_mat):
        hi = threshold_bracket(dict(zip(grid, upper[:, m].tolist())), S, claimed,
                               confidence=confidence)
        lo = threshold_bracket(dict(zip(grid, lower[:, m].tolist())), S, claimed,
                               confidence=conf_low)
        brackets.append((lo.n_low, hi.n_hat, hi.n_high))
    n_low = max(b[0] for b in brackets)
    n_hat = None if any(b[1] is None for b in brackets) else max(b[1] for b in brackets)
    n_high = None if any(b[2] is None for b in brackets) else max(b[2] for b in brackets)
    p_low, p_hat, p_high = params(n_low), params(n_hat), params(n_high)
    n_eval = n_b if n_b is not None else grid[0]
    gi = grid.index(n_eval)
    k_low, k_high = upper[gi], lower[gi]
    hardest = int(np.argmin(k_high))
    interval = (clopper_pearson(int(k_low[hardest]), S, confidence)[0],
                clopper_pearson(int(k_high[hardest]), S, confidence)[1])
    p_values: dict[str, float] = {}
    if n_b is None:
        verdict, basis = HOLDS, "arithmetic"
        reason = (f"the smallest source of the layout (n = 1 unit per part) has {params(1)} "
                  f"parameters >= d^2 log2(1/(2 eps)) - 1 = {int(d)}^2 log2({1 / (2 * eps):.4g})"
                  f" - 1 = {lb:.4g}: no width of this construction uses fewer parameters than "
                  "the bound (arithmetic, no trial needed)")
    else:
        basis = "statistical"
        p_viol = float(max(_st.binom.sf(int(k) - 1, S, claimed) for k in k_low))
        p_cons = float(min(1.0, n_mat * min(_st.binom.cdf(int(k), S, claimed) for k in k_high)))
        p_values = {"violation": p_viol, "consistency": p_cons}
        where = (f"at n_b = {n_b} ({params(n_b)} parameters < bound {lb:.4g}; "
                 f"n_b + 1 has {params(n_b + 1)})")
        if p_viol <= alpha / 2:
            verdict, reason = "violated", (
                f"{where} every test matrix is met with probability > 1/2 "
                f"(p = {p_viol:.3g}): fewer parameters than the bound suffice")
        elif p_cons <= alpha / 2:
            verdict, reason = "consistent", (
                f"{where} test matrix {hardest} is met by at most {int(k_high[hardest])}/{S} "
                f"sources (p = {p_cons:.3g}, Bonferroni over {n_mat} matrices): the "
                "hypothesis fails below the bound, as the theorem says")
        else:
            verdict, reason = "inconclusive", (
                f"{where} neither test rejects (violation p = {p_viol:.3g}, consistency "
                f"p = {p_cons:.3g}): too few sources")
    ratio = None if p_hat is None else p_hat / lb
    details: dict[str, Any] = {
        "n": n_eval,
        "claim_short": "P < 0.5, some W" if n_b is not None else "params >= bound",
        "construction": construction,
        "d": int(d),
        "eps": float(eps),
        "lower_bound": lb,
        "largest_width_below_bound": n_b,
        "params_at_n": params(n_eval),
        "measured_is": "upper bound",
        "successes_low_at_n": k_low.tolist(),
        "successes_high_at_n": k_high.tolist(),
        "hardest_matrix": hardest,
        "n_bracket": [n_low, n_high],
        "n_bracket_note": f"lower end Bonferroni over {n_mat} matrices (level {conf_low:.4g} "
                          f"per matrix), upper end at {confidence:g}",
        "params_used": p_hat,
        "params_bracket": [p_low, p_high],
        "overparameterisation_ratio": ratio,
        "widths_scanned": [grid[0], grid[-1]],
        "size_ratio_scan_max": params(grid[-1]) / lb,
        "test_matrices": n_mat,
        "brackets_per_matrix": [list(b) for b in brackets],
        "successes_upper_by_n": {str(n): upper[i].tolist() for i, n in enumerate(grid)
                                 if i % 4 == 0 or n in (n_hat, n_eval)},
        "seed": rng,
    }
    return CheckResult(
        name=NAME,
        case=f"{construction}, d={d}, eps={eps:g}",
        paper=PAPER,
        statement=STATEMENT,
        claim=(f"below d^2 log2(1/(2 eps)) - 1 = {lb:.4g} parameters (n <= {n_b}) some test "
               f"matrix is eps={eps:g}-approximated with probability < 1/2"
               if n_b is not None else
               f"every width uses >= {d}^2 log2(1/(2 eps)) - 1 = {lb:.4g} parameters"),
        claimed=claimed,
        measured=float(k_high[hardest]) / S,
        interval=interval,
        confidence=float(confidence),
        trials=S,
        empirical_constant=None,
        constant_interval=None,
        verdict=verdict,
        reason=reason,
        details=details,
        runtime_s=time.perf_counter() - t0,
        size_ratio=ratio,
        size_ratio_interval=(p_low / lb, None if p_high is None else p_high / lb),
        p_values=p_values,
        basis=basis,
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
        Constructions compared (cases of other constructions are skipped).

    Returns
    -------
    list of CheckResult
    """
    mode = QUICK if quick else FULL
    store = store_path(store_dir, NAME, quick)
    return [
        check(c, d, eps, sources=mode["sources"], matrices=mode["matrices"], rng=rng,
              store=store, progress=progress)
        for c, d, eps in CASES["quick" if quick else "full"]
        if c in constructions
    ]
