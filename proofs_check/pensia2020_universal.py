"""Pensia et al. (2020), Theorem 1 as stated: one random source serves *every* target.

Theorem (Pensia, Rajput, Nagle, Vishwakarma, Papailiopoulos, NeurIPS 2020,
arXiv:2006.07990, Theorem 1). With probability at least 1 - delta over the
random source ``g`` (depth 2l, i.i.d. U[-1, 1] weights, hidden layer i of
``C d_{i-1} log(d_{i-1} d_i l / min(eps, delta))`` units), *for every*
target ``f(x) = W_l relu(... relu(W_1 x))`` with ``||W_i||_2 <= 1`` there are
masks with ``sup_{||x|| <= 1} ||f(x) - g_S(x)|| < eps``. The quantifier order
matters: :mod:`proofs_check.pensia2020` draws one target per source, which
tests a weaker event; this check tests the one the theorem states.

The event, decided per source
-----------------------------
In slth's layout (:mod:`slth.constructions.pensia2020`; readings in
:mod:`proofs_check._mlp`) target weight ``W_ij`` of layer i is realised by two
subset sums, one per sign part, over candidate sets that depend on the source
only (not on the target). Let ``tol_i = eps / (2 l d_{i-1} d_i)`` be the proof's
per-weight tolerance. The **universal per-weight event** ``U`` of a source at
``n`` units per part is

    for every layer i, output r, input j and sign part, the candidate set at
    ``n`` covers [-1, 1] within ``tol_i``: every z in [-1, 1] is within
    ``tol_i`` of one of its subset sums.

*Exact direction.* ``U`` holds exactly when every target of the class has
masks meeting every per-weight tolerance (the proof's event for every target
at once). If: every entry of a target with ``||W_i||_2 <= 1`` lies in
[-1, 1]. Only if: when z in [-1, 1] is not covered for (i, r, j, part), the
target whose only nonzero entry is ``W_rj = +-z`` (norm ``|z| <= 1``) misses
its tolerance there. The instances are decided independently because their
candidate sets are fixed by the source. Each set is decided exactly by
:func:`slth.subset_sum.first_covering_n` (meet in the middle over the halves'
sums, at most 40 candidates: exact for n <= 40 units per part, the range every
case below is scanned in).

*Bound direction.* ``U`` is **sufficient** for the theorem's event (per-weight
errors within ``tol_i`` give ``||Delta_i|| <= eps / (2l)`` and a sup error at
most ``(1 + eps/(2l))^l - 1 < eps`` for every target,
:func:`slth.bounds.pensia2020_tolerance`), not necessary: a source may serve
every target within eps with some weight outside its tolerance. So
``#U`` is a lower bound on the number of sources for which the theorem's
universal event holds (for this construction); no upper bound is computed.

What is measured
----------------
Each trial draws one source (and, for the comparison, one random target of the
class, :func:`slth.constructions.bounded_target`), sources nested across widths.

* **Claim** at the constant ``C`` (default :data:`UNIVERSAL_C`): ``P(U) >= 1 -
  delta``. Exact (both CI ends from the same count) when the claimed width has
  at most 40 units per part; the count is then known and the claim can be
  "violated". A violation refutes the proof's sufficient route at this C
  (its union bound over instances of Lueker's covering), not the theorem's
  conclusion; a "consistent" confirms the theorem at this C for this
  construction (``U`` implies the theorem's universal event), for random
  sources, uniformly over all targets. At slth's per-target constant
  :data:`slth.bounds.PENSIA2020_C` the claim is false (``tests/test_verdicts.py``).
* **Universal constant** (``empirical_constant``): the smallest grid C (step
  :data:`proofs_check.pensia2020.C_STEP`) whose rate of ``U`` reaches 1 -
  delta, with the bracket of :func:`proofs_check._core.threshold_bracket`.
  ``U`` is monotone in n (the candidates at n are a prefix of those at n + 1),
  so each source has a first sufficient width, and the event is decided
  exactly over the whole scan (its top is the largest grid C with at most 40
  units per part).
* **Against the per-target constant**: on the same sources, the constant of
  the per-target proof event (every instance of the trial's random target
  within its tolerance; the ``threshold_proof_event`` of the Theorem 1
  check), which ``U`` implies at every width. ``details`` gives both
  constants, their ratio and the hidden widths at each.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slth import MLP, InputError, spawn
from slth import bounds as B
from slth.constructions import bounded_target, source_widths
from slth.subset_sum import COVERS_MAX_N, first_covering_n
from slth.sweeps import run_sweep

from . import pensia2020 as T1
from ._core import (
    VIOLATION_FACTOR,
    CheckResult,
    rate_p_values,
    rate_verdict,
    store_path,
    trials_needed,
)
from ._mlp import (
    Candidates,
    first_index,
    first_units_subset,
    layer_candidates,
    scan_constant,
    units_table,
)

__all__ = [
    "CASES",
    "NAME",
    "PAPER",
    "STATEMENT",
    "UNIVERSAL_C",
    "check",
    "exact_c_max",
    "run",
    "universal_first_units",
]

NAME = "pensia2020_universal"
PAPER = (
    "Pensia, Rajput, Nagle, Vishwakarma, Papailiopoulos 2020, NeurIPS (arXiv:2006.07990), "
    "Theorem 1 (the 'for every target' statement)"
)
STATEMENT = (
    "With probability >= 1 - delta over a depth-2l U[-1,1] source of hidden widths "
    "C d_{i-1} log(d_{i-1} d_i l / min(eps, delta)), EVERY depth-l ReLU target with "
    "||W_i|| <= 1 has masks approximating it within eps on the unit ball; C is not given."
)

#: C tested by default: a round value above the universal constants measured here
#: (about 13.2-13.4 for the cases of :data:`CASES`, against 8.4-9.3 per target on the
#: same sources), whose widths stay within the exact range (<= 40 units per part).
#: slth's per-target default, PENSIA2020_C = 9, is not enough for the universal
#: event (rate about 0.1 for a 2-3-1 target at eps = delta = 0.1).
UNIVERSAL_C = 15.0
#: Cases ``(widths, eps, delta)`` and trials of :func:`run`, per mode.
CASES: dict[str, list[tuple[tuple[int, ...], float, float]]] = {
    "quick": [((2, 3, 1), 0.1, 0.1)],
    "full": [((2, 3, 1), 0.1, 0.1), ((3, 4, 2), 0.2, 0.2), ((2, 2, 2, 1), 0.1, 0.1)],
}
QUICK: dict[str, Any] = {"trials": 150}
FULL: dict[str, Any] = {"trials": 1000}
_CHUNK = 50


def universal_first_units(cand: Candidates | Sequence[Candidates], tol: float
                          ) -> np.ndarray | list[np.ndarray]:
    """Smallest units per part at which each instance's candidates cover [-1, 1] within ``tol``.

    Parameters
    ----------
    cand : Candidates or sequence of Candidates
        From :func:`proofs_check._mlp.layer_candidates` (the instance targets
        are ignored: the event holds for every target at once).
    tol : float
        Per-weight tolerance > 0.

    Returns
    -------
    numpy.ndarray or list of numpy.ndarray
        int64 ``(2, d_out, d_in)`` per Candidates: the first ``n`` whose
        candidate set covers every z in [-1, 1] within ``tol``
        (:func:`slth.subset_sum.first_covering_n` on the first 40 candidate
        slots: exact for n <= 40), ``units + 1`` when no prefix of at most 40
        candidates of the source read does.
    """
    many = not isinstance(cand, Candidates)
    cands = list(cand) if many else [cand]
    if not (math.isfinite(float(tol)) and float(tol) > 0):
        raise InputError(f"`tol` must be a finite number > 0; received {tol!r}")
    out = []
    for c in cands:
        K = min(COVERS_MAX_N, c.values.shape[-1])
        enter = np.broadcast_to(c.enter, c.values.shape)[..., :K].reshape(-1, K)
        valid = enter <= c.units
        vals = np.where(valid, c.values[..., :K].reshape(-1, K), 0.0)
        first = first_covering_n(vals, float(tol))                  # in [1, K + 1]
        # entry width of the last candidate of the covering prefix (zeros never enter)
        ent = np.where(valid, enter, 0)
        upto = np.arange(K)[None, :] < first[:, None]
        need = np.where(upto, ent, 0).max(axis=1)
        need = np.where(first <= K, np.maximum(need, 1), c.units + 1)
        out.append(need.reshape(c.targets.shape).astype(np.int64))
    return out if many else out[0]


def exact_c_max(widths: Sequence[int], eps: float, delta: float, *,
                limit: int = COVERS_MAX_N, c_top: float = 40.0) -> float:
    """Largest grid C (step :data:`proofs_check.pensia2020.C_STEP`) with <= ``limit`` units
    per part in every layer: the top of the exact scan."""
    k = round(c_top / T1.C_STEP)
    while k > 1 and max(T1.units_at(widths, eps, delta, k * T1.C_STEP)) > limit:
        k -= 1
    return k * T1.C_STEP


def _units_table(widths: Sequence[int], eps: float, delta: float, c_max: float) -> np.ndarray:
    return units_table(lambda c: T1.units_at(widths, eps, delta, c), c_max=c_max,
                       grid_step=T1.C_STEP)


def _chunk_task(config: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    widths, eps, delta = config["widths"], config["eps"], config["delta"]
    L = len(widths) - 1
    table = _units_table(widths, eps, delta, config["c_max"])
    units_big = table[-1].tolist()
    gens = spawn(rng, config["size"])
    targets = [bounded_target(widths, rng=g) for g in gens]
    sources = [MLP.random(source_widths(t, units_big), rng=g) for t, g in zip(targets, gens)]
    need_u = np.ones((len(gens), L), dtype=np.int64)
    need_t = np.ones((len(gens), L), dtype=np.int64)
    for i in range(L):
        tol = float(B.pensia2020_tolerance(widths[i], widths[i + 1], L, eps))
        cands = [layer_candidates(s, t, i, units_big[i]) for s, t in zip(sources, targets)]
        need_u[:, i] = [max(1, int(u.max())) for u in universal_first_units(cands, tol)]
        need_t[:, i] = [max(1, int(f.max())) for f in first_units_subset(cands, tol)]
    return {"need_universal": need_u.tolist(), "need_target": need_t.tolist()}


def check(
    widths: Sequence[int] = (2, 3, 1),
    eps: float = 0.1,
    delta: float = 0.1,
    *,
    C: float = UNIVERSAL_C,
    trials: int = 1000,
    c_max: float | None = None,
    violation_factor: float = VIOLATION_FACTOR,
    confidence: float = 0.95,
    rng: int = 0,
    store: str | Path | None = None,
    progress: bool | None = None,
    chunk_size: int = _CHUNK,
) -> CheckResult:
    """Check Theorem 1's "every target" statement for one architecture, eps and delta.

    Parameters
    ----------
    widths : sequence of int, default (2, 3, 1)
        Target widths ``(d_0, ..., d_l)``.
    eps, delta : float, default 0.1, 0.1
        Accuracy and failure probability, in (0, 1).
    C : float, default :data:`UNIVERSAL_C`
        Constant of the width tested; an under-sized C (e.g. slth's per-target
        :data:`slth.bounds.PENSIA2020_C`) must come out "violated".
    trials : int, default 1000
        Seeded independent sources (each with one random target for the
        per-target comparison).
    c_max : float, optional
        Largest C scanned; default :func:`exact_c_max` (the exact range).
    violation_factor, confidence : float
        Verdict rule parameters (:mod:`proofs_check._core`).
    rng : int, default 0
        Base seed.
    store : path-like, optional
        Results file for resuming.
    progress : bool or None
        Progress bar on stderr.
    chunk_size : int, default 50
        Sources per resumable row.

    Returns
    -------
    CheckResult
        ``measured``: fraction of sources with the universal per-weight event
        ``U`` at ``C`` (module doc); ``empirical_constant``: the universal
        constant with its bracket; ``details``: the per-target constant on the
        same sources, their ratio, the hidden widths at each.
    """
    t0 = time.perf_counter()
    widths = [int(w) for w in widths]
    if len(widths) < 2 or min(widths) < 1:
        raise InputError(f"`widths` must hold >= 2 ints >= 1; received {widths!r}")
    for nm, v in (("eps", eps), ("delta", delta)):
        if not 0.0 < float(v) < 1.0:
            raise InputError(f"`{nm}` must lie in (0, 1); received {v!r}")
    if not (math.isfinite(float(C)) and float(C) > 0):
        raise InputError(f"`C` must be a finite number > 0; received {C!r}")
    if int(trials) < 1 or int(chunk_size) < 1:
        raise InputError(
            f"`trials` and `chunk_size` must be ints >= 1; received {trials!r}, {chunk_size!r}"
        )
    c_top = exact_c_max(widths, eps, delta) if c_max is None else float(c_max)
    if not (math.isfinite(c_top) and c_top >= T1.C_STEP):
        raise InputError(f"`c_max` must be a finite number >= {T1.C_STEP}; received {c_max!r}")
    sizes = [int(chunk_size)] * (int(trials) // int(chunk_size))
    if int(trials) % int(chunk_size):
        sizes.append(int(trials) % int(chunk_size))
    configs = [
        {"check": NAME, "widths": widths, "eps": float(eps), "delta": float(delta),
         "c_max": c_top, "grid_step": T1.C_STEP, "chunk": i, "size": s}
        for i, s in enumerate(sizes)
    ]
    res = run_sweep(_chunk_task, configs, path=store, rng=rng, progress=progress,
                    desc=f"{NAME} {'-'.join(map(str, widths))} eps={eps:g}")
    need_u = np.array([row for r in res.results for row in r["need_universal"]], dtype=np.int64)
    need_t = np.array([row for r in res.results for row in r["need_target"]], dtype=np.int64)
    n = need_u.shape[0]
    claimed = 1.0 - float(delta)
    units = T1.units_at(widths, eps, delta, C)
    ok = (need_u <= np.array(units)[None, :]).all(axis=1)
    k = int(ok.sum())
    exact = max(units) <= COVERS_MAX_N
    k_high = k if exact else n
    verdict, ci, reason = rate_verdict(k, k_high, n, claimed, violation_factor=violation_factor,
                                       confidence=confidence)
    if not exact:
        reason += (f" (n = {units} > {COVERS_MAX_N} units per part: coverage decided on "
                   f"{COVERS_MAX_N} candidates, the count is a lower bound)")
    p_values = rate_p_values(k, k_high, n, claimed, violation_factor=violation_factor)
    table = _units_table(widths, eps, delta, c_top)
    k_max = table.shape[0] - 1
    first_u = first_index(need_u, table)
    first_t = first_index(need_t, table)
    # U implies the per-target proof event at every width: a source breaking it is a bug
    broken = int(np.count_nonzero(first_u < first_t))
    basis = "statistical"
    if broken:
        verdict, basis = "violated", "sanity"
        reason = (f"in {broken} sources the universal event holds at a width where the "
                  f"trial's own target misses its tolerance: a reading is wrong; {reason}")
    scan_u = scan_constant(first_u, k_max=k_max, claimed=claimed, grid_step=T1.C_STEP,
                           confidence=confidence)
    scan_t = scan_constant(first_t, k_max=k_max, claimed=claimed, grid_step=T1.C_STEP,
                           confidence=confidence)

    def width(c: float | None) -> int | None:
        return None if c is None else T1.total_width(widths, eps, delta, c)

    def thr(s: Any) -> dict[str, float | None]:
        return {"c_hat": s.c_hat, "c_low": s.c_low, "c_high": s.c_high}

    details: dict[str, Any] = {
        "n": units,
        "C": float(C),
        "widths": widths,
        "eps": float(eps),
        "delta": float(delta),
        "weight_tolerance": [
            float(B.pensia2020_tolerance(widths[i], widths[i + 1], len(widths) - 1, eps))
            for i in range(len(widths) - 1)
        ],
        "measured_is": "exact" if exact else "lower bound",
        "successes_low": k,
        "successes_high": k_high,
        "event": "every (layer, output, input, sign part) candidate set covers [-1, 1] within "
        "the per-weight tolerance: exact for the proof's per-weight event over every target, "
        "sufficient (a lower bound on the count) for the theorem's universal event",
        "per_target_successes_at_C": int((need_t <= np.array(units)[None, :]).all(axis=1).sum()),
        "bound_inconsistencies": broken,
        "constant_event": "universal per-weight event U",
        "constant_event_is": "exact",
        "constant_grid_step": T1.C_STEP,
        "constant_scan_max": c_top,
        "units_scanned": table[-1].tolist(),
        "threshold": thr(scan_u),
        "threshold_per_target": thr(scan_t),
        "constant_ratio_universal_per_target": (
            None if scan_u.c_hat is None or scan_t.c_hat is None else scan_u.c_hat / scan_t.c_hat
        ),
        "width_at_universal_C": width(scan_u.c_hat),
        "width_at_per_target_C": width(scan_t.c_hat),
        "width_at_claim": width(float(C)),
        "need_universal_max": need_u.max(axis=0).tolist(),
        "need_per_target_max": need_t.max(axis=0).tolist(),
        "successes_by_C": {
            f"{kk * T1.C_STEP:g}": v for kk, v in scan_u.successes.items() if kk % 20 == 0
        },
        "trials_needed": trials_needed(claimed, violation_factor=violation_factor,
                                       confidence=confidence),
        "violation_factor": float(violation_factor),
        "seed": rng,
    }
    return CheckResult(
        name=NAME,
        case=f"{'-'.join(map(str, widths))}, eps={eps:g}, delta={delta:g}, every target",
        paper=PAPER,
        statement=STATEMENT,
        claim=(f"P(one source serves EVERY target: each candidate set covers [-1, 1] within "
               f"its per-weight tolerance) >= {claimed:g} at C = {float(C):g} "
               f"(n = {units} units per part)"),
        claimed=claimed,
        measured=k / n,
        interval=ci,
        confidence=float(confidence),
        trials=n,
        empirical_constant=scan_u.c_hat,
        constant_interval=(scan_u.c_low, scan_u.c_high),
        verdict=verdict,
        reason=reason,
        details=details,
        runtime_s=time.perf_counter() - t0,
        p_values=p_values,
        basis=basis,
    )


def run(
    *,
    quick: bool = False,
    rng: int = 0,
    store_dir: str | Path | None = None,
    progress: bool | None = None,
) -> list[CheckResult]:
    """All cases of the mode (:data:`CASES`) at :data:`UNIVERSAL_C`.

    Parameters
    ----------
    quick : bool, default False
        ``CASES["quick"]`` and :data:`QUICK` trials instead of the full ones.
    rng : int, default 0
        Base seed.
    store_dir : path-like, optional
        Folder of the resumable results file ``pensia2020_universal[_quick].jsonl``.
    progress : bool or None
        Progress bars on stderr.

    Returns
    -------
    list of CheckResult
    """
    mode = QUICK if quick else FULL
    store = store_path(store_dir, NAME, quick)
    return [
        check(w, eps, delta, trials=mode["trials"], rng=rng, store=store, progress=progress)
        for w, eps, delta in CASES["quick" if quick else "full"]
    ]
