"""Pensia et al. (2020), Theorem 1: logarithmic over-parameterisation suffices.

Theorem (Pensia, Rajput, Nagle, Vishwakarma, Papailiopoulos, "Optimal Lottery
Tickets via SubsetSum: Logarithmic Over-Parameterization is Sufficient",
NeurIPS 2020, arXiv:2006.07990, Theorem 1). Let
``f(x) = W_l relu(... relu(W_1 x))`` with ``W_i`` in R^{d_i x d_{i-1}} and
``||W_i||_2 <= 1``. Let ``g`` be a random ReLU network of depth 2l with i.i.d.
U[-1, 1] weights whose hidden layer i has
``m_i = C d_{i-1} log(d_{i-1} d_i l / min(eps, delta))`` units. With
probability at least 1 - delta, for every such f, masks exist with
``sup_{||x|| <= 1} ||f(x) - g_S(x)|| < eps``. The paper gives no value for C.

What is measured
----------------
Each trial draws a bias-free target of the given widths (i.i.d. U[-1, 1],
every layer scaled to spectral norm 1) and a source of slth's layout
(:mod:`slth.constructions.pensia2020`: ``m_i = 2 n_i d_{i-1}`` with ``n_i``
units per sign part, :func:`slth.bounds.pensia2020_units`).

* **Claim** at the constant ``C`` (default :data:`slth.bounds.PENSIA2020_C`,
  the value ``construct(target, eps=..., delta=...)`` uses): the ticket of
  :func:`slth.constructions.pensia2020.construct` at that width (the proof's
  construction: every instance within the per-weight tolerance when it can
  be) has sup error over the unit ball at most eps in at least 1 - delta of
  the trials. The sup is bracketed per trial by
  :func:`slth.evaluate.approximation_error`: the adversarial search gives a
  lower bound, :func:`slth.evaluate.certified_bound` a rigorous upper bound.
  So ``#(certified <= eps)`` is a lower bound on the success count and
  ``#(adversarial <= eps)`` an upper bound
  (:func:`proofs_check._core.success_bounds`); the lower CI end comes from
  the first, the upper from the second, and "violated" only from the upper
  (a certificate above eps does not show a failure). A lower bound above the
  certified upper bound would expose a bug and makes the verdict "violated"
  (``basis = "sanity"``). What can be refuted is the construction of the
  proof at this C, the object the theorem's proof builds; other masks of
  the same source are not searched.
* **Empirical constants**, a bracket of the construction's constant (grid
  step 0.05, sources nested across widths, so that the source at n units per
  part is cut out of one large source, :mod:`proofs_check._mlp`):

  - ``C_cert`` (``empirical_constant``): the smallest C at which the
    propagated error bound of the best masks (each subset-sum instance solved
    to its optimum, or to within a quarter of the proof's per-weight
    tolerance ``eps / (2 l d_{i-1} d_i)``, whichever is larger; the recursion
    of :func:`slth.evaluate.certified_bound`) is at most eps in at least
    1 - delta of the trials. The bound is nonincreasing in C, so each trial
    has a smallest sufficient C (found by bisection) and the bracket of
    :func:`proofs_check._core.threshold_bracket` applies. This event implies
    a true sup <= eps for the ticket ``T_n`` below, so its rate is a lower
    bound on that ticket's rate and its threshold an **upper bound** on the
    constant (it is also an upper bound on the constant of "some masks
    exist", which it implies).
  - ``C_adv`` (``constant_adversarial``): the smallest C at which the event
    A_n = "for some width m <= n of the grid, the adversarial error of
    ``T_m`` is <= eps" reaches 1 - delta, where ``T_m`` is
    ``construct(target, source=nested_source(...), n=m, eps=eps,
    weight_eps=FLOOR * min_i tol_i)`` (the masks the C_cert scan bounds, up
    to its floor). A_n is monotone in n by definition (a running minimum
    over widths), and since the adversarial error never exceeds the true sup,
    "the sup error of ``T_n`` is <= eps" implies A_n: A_n's rate is at least
    the true rate at every width, so its threshold is a **lower bound** on the
    constant. Each trial's first index of A is found exactly by an upward scan
    over the distinct unit rows of the grid (a bisection would need A
    monotone in the raw adversarial values, which it is not): at each row the
    ticket is built and probed at ``+-e_j``, a few random points and the last
    adversarial input (a forward pass); only rows the probe does not already
    refute get the full adversarial search. The scan stops at the first
    success, at the latest near C_cert, so it costs a few tickets per trial.

  ``details["threshold_proof_event"]`` gives the same scan for the proof's
  own event (every instance within the per-weight tolerance).
* **Width ratio**: the source hidden width at C = 1 (the paper leaves C
  unspecified) divided by the width at the empirical constant; also the same
  ratio for the claimed C.

The trial event (one random target per source) is implied by the theorem's
event (one source serving every target at once), so a rate significantly
below 1 - delta refutes the claim; a "consistent" verdict confirms it for
random targets, not uniformly over all targets
(:mod:`proofs_check.pensia2020_universal` checks the "for every target").

Targets come from :func:`slth.constructions.bounded_target` and the sources of a
width sweep from :func:`slth.constructions.nested_source` (the figure
:mod:`figures.mlp_error_width` uses the same two).
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
from slth.constructions import pensia2020, source_widths
from slth.evaluate import approximation_error, sample_ball
from slth.sweeps import run_sweep

from ._core import (
    VIOLATION_FACTOR,
    CheckResult,
    rate_p_values,
    rate_verdict,
    store_path,
    success_bounds,
    trials_needed,
)
from ._mlp import (
    bounded_target,
    certified_first_index,
    first_index,
    first_units_subset,
    layer_candidates,
    nested_source,
    optimal_errors,
    scan_constant,
    units_table,
)

__all__ = [
    "ARCHITECTURES",
    "NAME",
    "PAPER",
    "PROBES",
    "STATEMENT",
    "bounded_target",
    "bounds_sanity",
    "check",
    "nested_source",
    "run",
    "scan_trials",
    "summary",
    "total_width",
    "trial_records",
    "units_at",
    "width_ratios",
]

NAME = "pensia2020"
PAPER = (
    "Pensia, Rajput, Nagle, Vishwakarma, Papailiopoulos 2020, NeurIPS (arXiv:2006.07990), Theorem 1"
)
STATEMENT = (
    "A depth-l ReLU target with ||W_i|| <= 1 is eps-approximated on the unit ball, with "
    "probability >= 1 - delta, by pruning a depth-2l U[-1,1] network of hidden widths "
    "C d_{i-1} log(d_{i-1} d_i l / min(eps, delta)); C is not given."
)

#: Target widths checked by :func:`run`.
ARCHITECTURES: tuple[tuple[int, ...], ...] = ((3, 4, 2), (4, 4, 4, 2))
#: Largest C scanned for the empirical constant (raised to the claimed C if smaller).
C_MAX = 16.0
#: Grid step of the C scan.
C_STEP = 0.05
#: Per-instance errors below this fraction of the proof's tolerance count as the
#: fraction itself in the C scan (an upper bound; see ``optimal_errors``).
FLOOR = 0.25
#: Candidates per instance the C scan searches: exact up to about C = 10 for the
#: targets of ARCHITECTURES; beyond, its errors are upper bounds (the constant can
#: only come out too large).
SCAN_VALUES = 28
#: Settings of :func:`slth.evaluate.approximation_error` per trial (small nets: cheap).
EVAL: dict[str, int] = {"n_samples": 512, "adversarial_steps": 25, "restarts": 4}
#: Random points of the cheap probe of the adversarial scan (besides +-e_j).
PROBES = 30
QUICK: dict[str, Any] = {"trials": 60, "cases": [(0.1, 0.1)]}
FULL: dict[str, Any] = {"trials": 400, "cases": [(0.1, 0.1), (0.05, 0.05)]}
_CHUNK = 20


def units_at(widths: Sequence[int], eps: float, delta: float, C: float) -> list[int]:
    """Units per sign part of each layer at ``C`` (:func:`slth.bounds.pensia2020_units`)."""
    L = len(widths) - 1
    return [int(B.pensia2020_units(widths[i], widths[i + 1], L, eps, delta, C=C)) for i in range(L)]


def scan_trials(
    widths: Sequence[int],
    eps: float,
    delta: float,
    c_max: float,
    targets: Sequence[MLP],
    gens: Sequence[np.random.Generator],
) -> dict[str, Any]:
    """Draw one large source per target and find each trial's smallest sufficient C.

    Parameters
    ----------
    widths : sequence of int
        Target widths.
    eps, delta : float
        Accuracy and failure probability.
    c_max : float
        Largest C scanned (the large sources have the units of ``c_max``).
    targets : sequence of MLP
        One bias-free target per trial.
    gens : sequence of numpy.random.Generator
        One generator per trial (the source is drawn from it).

    Returns
    -------
    dict
        ``table`` (:func:`proofs_check._mlp.units_table`), ``sources`` (the
        large sources), ``need`` (int ``(trials, L)``: smallest units per part at
        which every instance is within the proof's tolerance), ``k_proof`` and
        ``k_cert`` (int ``(trials,)``: smallest grid index of the proof's
        event, resp. of a propagated bound <= eps; ``k_max + 1`` when none).
    """
    L = len(widths) - 1
    table = units_table(lambda c: units_at(widths, eps, delta, c), c_max=c_max,
                        grid_step=C_STEP)
    units_big = table[-1].tolist()
    sources = [MLP.random(source_widths(t, units_big), rng=g) for t, g in zip(targets, gens)]
    cands = [[layer_candidates(s, t, i, units_big[i]) for s, t in zip(sources, targets)]
             for i in range(L)]
    tols = [float(B.pensia2020_tolerance(widths[i], widths[i + 1], L, eps)) for i in range(L)]
    need = np.ones((len(targets), L), dtype=np.int64)
    for i in range(L):
        firsts = first_units_subset(cands[i], tols[i])
        need[:, i] = np.maximum(1, [int(f.max()) for f in firsts])
    k_cert = certified_first_index(
        cands,
        [t.weights for t in targets],
        table,
        eps,
        lambda i, c, u: optimal_errors(c, u, floor=tols[i] * FLOOR, max_values=SCAN_VALUES),
    )
    return {"table": table, "sources": sources, "need": need,
            "k_proof": first_index(need, table), "k_cert": k_cert}


def _distinct_rows(table: np.ndarray) -> list[int]:
    """Grid indices k >= 1 at which some layer's units change (first index of each row)."""
    return [k for k in range(1, table.shape[0])
            if k == 1 or not np.array_equal(table[k], table[k - 1])]


def _adversarial_first_index(target: MLP, big: MLP, units_big: Sequence[int],
                             table: np.ndarray, rows: Sequence[int], eps: float,
                             weight_eps: float, gen: np.random.Generator) -> tuple[int, int, int]:
    """First grid index of the event A (module doc), tickets built, full searches run.

    Scans the distinct unit rows upwards; returns ``k_max + 1`` when no row succeeds.
    """
    d0 = target.widths[0]
    probe = np.vstack([np.eye(d0), -np.eye(d0), sample_ball(d0, PROBES, rng=gen)])
    prev = np.empty((0, d0))
    built = searched = 0
    for k in rows:
        units = tuple(int(u) for u in table[k])
        ticket = pensia2020.construct(target, source=nested_source(big, target, units_big, units),
                                      n=units, eps=eps, weight_eps=weight_eps,
                                      on_failure="report")
        built += 1
        x = np.vstack([probe, prev])
        gap = np.linalg.norm(target.forward(x) - ticket.forward(x, method="dense"), axis=1)
        if gap.max() > eps:   # the error at a point of the ball: the sup is above eps
            continue
        inputs = np.vstack([sample_ball(d0, EVAL["n_samples"], rng=gen), probe, prev])
        rep = approximation_error(target, ticket, inputs=inputs, rng=gen, certify=False,
                                  adversarial_steps=EVAL["adversarial_steps"],
                                  restarts=EVAL["restarts"])
        searched += 1
        if rep.adversarial <= eps:
            return int(k), built, searched
        prev = np.vstack([prev, rep.adversarial_input[None, :]])[-4:]
    return int(table.shape[0]), built, searched


def _trials(widths: list[int], eps: float, delta: float, C: float, c_max: float,
            evaluate: bool, gens: list[np.random.Generator],
            adversarial_scan: bool = False) -> list[dict[str, Any]]:
    targets = [bounded_target(widths, rng=g) for g in gens]
    scan = scan_trials(widths, eps, delta, c_max, targets, gens)
    table = scan["table"]
    units_big = table[-1].tolist()
    units = units_at(widths, eps, delta, C)
    L = len(widths) - 1
    weight_eps = FLOOR * min(float(B.pensia2020_tolerance(widths[i], widths[i + 1], L, eps))
                             for i in range(L))
    rows = _distinct_rows(table)
    recs = []
    for j, (t, big, g) in enumerate(zip(targets, scan["sources"], gens)):
        ticket = pensia2020.construct(t, source=nested_source(big, t, units_big, units),
                                      eps=eps, delta=delta, C=C, on_failure="report")
        rec: dict[str, Any] = {
            "need": scan["need"][j].tolist(),
            "k_proof": int(scan["k_proof"][j]),
            "k_cert": int(scan["k_cert"][j]),
            "n_failed": int(ticket.params["n_failed"]),
            "weight_error_norms": [float(np.linalg.norm(e, 2)) for e in ticket.weight_errors],
            "n_source_params": int(ticket.n_source_params),
            "density": float(ticket.density),
        }
        if evaluate:
            rep = approximation_error(t, ticket, rng=g, **EVAL)
            rec.update(certified=float(rep.certified), adversarial=float(rep.adversarial),
                       sampled=float(rep.sampled_max))
        if adversarial_scan:
            k_adv, built, searched = _adversarial_first_index(t, big, units_big, table, rows,
                                                              eps, weight_eps, g)
            rec.update(k_adv=k_adv, adv_scan_tickets=built, adv_scan_searches=searched)
        recs.append(rec)
    return recs


def _chunk_task(config: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    gens = spawn(rng, config["size"])
    return {
        "trials": _trials(
            config["widths"],
            config["eps"],
            config["delta"],
            config["C"],
            config["c_max"],
            config["evaluate"],
            gens,
            bool(config.get("adversarial_scan", False)),
        )
    }


def trial_records(
    widths: Sequence[int],
    eps: float,
    delta: float,
    *,
    C: float,
    trials: int,
    c_max: float = C_MAX,
    evaluate: bool = True,
    adversarial_scan: bool = True,
    name: str = NAME,
    rng: int = 0,
    store: str | Path | None = None,
    progress: bool | None = None,
    chunk_size: int = _CHUNK,
) -> list[dict[str, Any]]:
    """Seeded trials of the construction (resumable rows of :mod:`slth.sweeps`).

    Parameters
    ----------
    widths : sequence of int
        Target widths ``(d_0, ..., d_l)``.
    eps, delta : float
        Accuracy and failure probability, in (0, 1).
    C : float
        Constant of the width at which the ticket is built and evaluated.
    trials : int
        Number of trials >= 1.
    c_max : float, default C_MAX
        Largest C of the scan; the large source has the units of ``max(c_max, C)``.
    evaluate : bool, default True
        Run :func:`slth.evaluate.approximation_error` on each ticket.
    adversarial_scan : bool, default True
        Also find each trial's first grid index of the adversarial event
        (``k_adv``, module doc; needs ``evaluate``).
    name : str
        Check name recorded in the sweep rows.
    rng : int, default 0
        Base seed.
    store : path-like, optional
        Results file for resuming.
    progress : bool or None
        Progress bar on stderr (None: when stderr is a terminal).
    chunk_size : int, default 20
        Trials per sweep row.

    Returns
    -------
    list of dict
        Per trial: ``need`` (smallest units per part, per layer, at which every
        instance is within the proof's tolerance; one more than the scanned
        source's when none is), ``k_proof`` and ``k_cert`` (smallest grid index
        ``k``, ``C = k * C_STEP``, at which the proof's event, respectively a
        propagated bound <= eps with optimal subsets, holds; ``k_max + 1`` when
        none), ``n_failed``, ``weight_error_norms``, ``n_source_params``,
        ``density`` and, when evaluated, ``certified``, ``adversarial``,
        ``sampled`` of the ticket at ``C``; with ``adversarial_scan``,
        ``k_adv`` (first grid index of the event A of the module doc,
        ``k_max + 1`` when none), ``adv_scan_tickets`` and
        ``adv_scan_searches`` (its cost).
    """
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
    c_top = max(float(c_max), float(C))
    sizes = [int(chunk_size)] * (int(trials) // int(chunk_size))
    if int(trials) % int(chunk_size):
        sizes.append(int(trials) % int(chunk_size))
    configs = [
        {
            "check": name,
            "widths": widths,
            "eps": float(eps),
            "delta": float(delta),
            "C": float(C),
            "c_max": c_top,
            "grid_step": C_STEP,
            "evaluate": bool(evaluate),
            **({"adversarial_scan": True} if evaluate and adversarial_scan else {}),
            "chunk": i,
            "size": s,
        }
        for i, s in enumerate(sizes)
    ]
    res = run_sweep(
        _chunk_task,
        configs,
        path=store,
        rng=rng,
        progress=progress,
        desc=f"{name} {'-'.join(map(str, widths))} eps={eps:g}",
    )
    return [t for r in res.results for t in r["trials"]]


def total_width(widths: Sequence[int], eps: float, delta: float, C: float) -> int:
    """Source hidden units, all layers, at ``C`` (:func:`slth.bounds.pensia2020_width`)."""
    L = len(widths) - 1
    return int(
        sum(B.pensia2020_width(widths[i], widths[i + 1], L, eps, delta, C=C) for i in range(L))
    )


def check(
    widths: Sequence[int] = (3, 4, 2),
    eps: float = 0.1,
    delta: float = 0.1,
    *,
    C: float = B.PENSIA2020_C,
    trials: int = 400,
    c_max: float = C_MAX,
    violation_factor: float = VIOLATION_FACTOR,
    confidence: float = 0.95,
    rng: int = 0,
    store: str | Path | None = None,
    progress: bool | None = None,
    chunk_size: int = _CHUNK,
) -> CheckResult:
    """Check Theorem 1 for one architecture, eps and delta at the constant ``C``.

    Parameters
    ----------
    widths : sequence of int, default (3, 4, 2)
        Target widths.
    eps, delta : float, default 0.1, 0.1
        Accuracy and failure probability of the statement, in (0, 1).
    C : float, default :data:`slth.bounds.PENSIA2020_C`
        Constant of the width tested. An under-sized C (e.g. 1) must come out
        "violated".
    trials : int, default 400
        Seeded independent trials (one target and one source each).
    c_max : float, default C_MAX
        Largest C scanned for the empirical constant.
    violation_factor, confidence : float
        Verdict rule parameters (:mod:`proofs_check._core`).
    rng : int, default 0
        Base seed.
    store : path-like, optional
        Results file for resuming.
    progress : bool or None
        Progress bar on stderr.
    chunk_size : int, default 20
        Trials per resumable row.

    Returns
    -------
    CheckResult
        ``measured``: fraction of trials with certified error <= eps at the
        claimed width (a lower bound on the success rate; ``interval`` takes
        its upper end from the adversarial count); ``empirical_constant``
        (C_cert, an upper bound) and ``constant_adversarial`` (C_adv, a lower
        bound): smallest grid C whose rate of the certified, resp. adversarial,
        event (module doc) reaches 1 - delta, with their brackets;
        ``p_values``: the one-sided tests of :func:`proofs_check._core.rate_p_values`;
        ``details``: units, widths, width ratios, error summaries, the
        proof-event rate at the claim and its own constant.
    """
    t0 = time.perf_counter()
    widths = [int(w) for w in widths]
    c_top = max(float(c_max), float(C))
    recs = trial_records(
        widths,
        eps,
        delta,
        C=C,
        trials=trials,
        c_max=c_top,
        rng=rng,
        store=store,
        progress=progress,
        chunk_size=chunk_size,
    )
    n = len(recs)
    claimed = 1.0 - float(delta)
    cert = np.array([r["certified"] for r in recs])
    adv = np.array([r["adversarial"] for r in recs])
    counts = success_bounds(cert, adv, eps)
    verdict, ci, reason = rate_verdict(counts.low, counts.high, n, claimed,
                                       violation_factor=violation_factor, confidence=confidence)
    p_values = rate_p_values(counts.low, counts.high, n, claimed,
                             violation_factor=violation_factor)
    table = units_table(lambda c: units_at(widths, eps, delta, c), c_max=c_top, grid_step=C_STEP)
    k_max = table.shape[0] - 1
    k_cert = np.array([r["k_cert"] for r in recs])
    k_adv = np.array([r["k_adv"] for r in recs])
    # the adversarial event is implied by the certified one at every width (module doc)
    scan_inconsistent = int(np.count_nonzero((k_adv > k_cert) & (k_cert <= k_max)))
    verdict, reason, broken = bounds_sanity(verdict, reason, adv, cert)
    if scan_inconsistent:
        verdict, reason = "violated", (
            f"in {scan_inconsistent} trials the adversarial error exceeds eps at a width whose "
            f"certified scan bound is <= eps: the bound or the construction is wrong; {reason}")
    scan = scan_constant(k_cert, k_max=k_max, claimed=claimed, grid_step=C_STEP,
                         confidence=confidence)
    scan_adv = scan_constant(k_adv, k_max=k_max, claimed=claimed, grid_step=C_STEP,
                             confidence=confidence)
    scan_proof = scan_constant(
        np.array([r["k_proof"] for r in recs]), k_max=k_max, claimed=claimed,
        grid_step=C_STEP, confidence=confidence,
    )
    units = units_at(widths, eps, delta, C)
    need = np.array([r["need"] for r in recs], dtype=np.int64)
    proof_ok = (need <= np.array(units)[None, :]).all(axis=1)
    mismatch = int(np.count_nonzero(proof_ok != np.array([r["n_failed"] == 0 for r in recs])))
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
        "n_source_params": int(recs[0]["n_source_params"]),
        "measured_is": "exact" if counts.low == counts.high else "lower bound",
        "successes_low": counts.low,
        "successes_high": counts.high,
        "successes_note": "low: certified error <= eps; high: adversarial error <= eps",
        "successes": counts.low,
        "proof_event_successes": int(proof_ok.sum()),
        "proof_event_mismatches": mismatch,
        "bound_inconsistencies": broken + scan_inconsistent,
        "certified": summary(cert),
        "adversarial": summary(adv),
        "sampled": summary(np.array([r["sampled"] for r in recs])),
        "density": summary(np.array([r["density"] for r in recs])),
        "units_scanned": table[-1].tolist(),
        "need_max": need.max(axis=0).tolist(),
        "constant_event": "propagated certified bound <= eps with optimal subsets",
        "constant_event_is": "sufficient (upper bound on the constant)",
        "constant_adversarial_event": "adversarial error of the ticket built at some width "
        "<= this one is <= eps (lower bound on the constant)",
        "constant_grid_step": C_STEP,
        "constant_scan_max": c_top,
        "threshold": {"c_hat": scan.c_hat, "c_low": scan.c_low, "c_high": scan.c_high},
        "threshold_adversarial": {
            "c_hat": scan_adv.c_hat, "c_low": scan_adv.c_low, "c_high": scan_adv.c_high,
        },
        "threshold_proof_event": {
            "c_hat": scan_proof.c_hat, "c_low": scan_proof.c_low, "c_high": scan_proof.c_high,
        },
        "adversarial_scan_cost": {
            "tickets_per_trial": float(np.mean([r["adv_scan_tickets"] for r in recs])),
            "searches_per_trial": float(np.mean([r["adv_scan_searches"] for r in recs])),
        },
        "successes_by_C": {
            f"{kk * C_STEP:g}": v for kk, v in scan.successes.items() if kk % 20 == 0
        },
        "adversarial_successes_by_C": {
            f"{kk * C_STEP:g}": v for kk, v in scan_adv.successes.items() if kk % 20 == 0
        },
        **width_ratios(widths, eps, delta, C, scan.c_hat),
        "trials_needed": trials_needed(
            claimed, violation_factor=violation_factor, confidence=confidence
        ),
        "violation_factor": float(violation_factor),
        "seed": rng,
    }
    return CheckResult(
        name=NAME,
        case=f"{'-'.join(map(str, widths))}, eps={eps:g}, delta={delta:g}",
        paper=PAPER,
        statement=STATEMENT,
        claim=(
            f"P(sup error <= {eps:g}) >= {claimed:g} at C = {float(C):g}: "
            f"n = {units} units per part, {details['width_at_claim']} hidden units in all "
            "(successes bracketed by certified <= eps and adversarial <= eps)"
        ),
        claimed=claimed,
        measured=counts.low / n,
        interval=ci,
        confidence=float(confidence),
        trials=n,
        empirical_constant=scan.c_hat,
        constant_interval=(scan.c_low, scan.c_high),
        verdict=verdict,
        reason=reason,
        details=details,
        runtime_s=time.perf_counter() - t0,
        constant_adversarial=scan_adv.c_hat,
        constant_adversarial_interval=(scan_adv.c_low, scan_adv.c_high),
        p_values=p_values,
        basis="sanity" if broken + scan_inconsistent else "statistical",
    )


def summary(x: np.ndarray) -> dict[str, float]:
    """Median, 90% quantile and maximum of a sample (JSON-ready)."""
    return {
        "median": float(np.median(x)),
        "q90": float(np.quantile(x, 0.9)),
        "max": float(x.max()),
    }


def bounds_sanity(
    verdict: str, reason: str, lower: np.ndarray, upper: np.ndarray
) -> tuple[str, str, int]:
    """Turn the verdict to "violated" when a lower bound exceeds its certified upper bound.

    ``slth.evaluate`` guarantees ``adversarial <= sup <= certified``; a trial
    breaking it (beyond rounding) exposes a bug in the certificate or the
    construction. Returns the verdict, the reason and the number of such trials.
    """
    broken = int(np.count_nonzero(lower > upper * (1 + 1e-9) + 1e-12))
    if broken:
        return (
            "violated",
            f"in {broken} trials the adversarial lower bound exceeds the certified upper "
            f"bound: the certificate or the construction is wrong; {reason}",
            broken,
        )
    return verdict, reason, 0


def width_ratios(
    widths: Sequence[int], eps: float, delta: float, C: float, c_emp: float | None
) -> dict[str, Any]:
    """Source hidden widths at C = 1, at ``C`` and at ``c_emp``, and their ratios."""
    w_claim = total_width(widths, eps, delta, C)
    w_c1 = total_width(widths, eps, delta, 1.0)
    w_emp = None if c_emp is None else total_width(widths, eps, delta, c_emp)
    return {
        "width_at_C1": w_c1,
        "width_at_claim": w_claim,
        "width_at_empirical_C": w_emp,
        "width_ratio_C1": None if w_emp is None else w_c1 / w_emp,
        "width_ratio_claim": None if w_emp is None else w_claim / w_emp,
        "width_ratio_note": "hidden units of the source at C = 1 (the paper leaves C "
        "unspecified), resp. at the claimed C, divided by those at the empirical constant",
    }


def run(
    *,
    quick: bool = False,
    rng: int = 0,
    store_dir: str | Path | None = None,
    progress: bool | None = None,
    architectures: Sequence[Sequence[int]] = ARCHITECTURES,
) -> list[CheckResult]:
    """All cases: each architecture and each (eps, delta) of the mode.

    Parameters
    ----------
    quick : bool, default False
        :data:`QUICK` (60 trials, eps = delta = 0.1) instead of :data:`FULL`.
    rng : int, default 0
        Base seed.
    store_dir : path-like, optional
        Folder of the resumable results file ``pensia2020[_quick].jsonl``.
    progress : bool or None
        Progress bars on stderr.
    architectures : sequence of sequence of int
        Target widths.

    Returns
    -------
    list of CheckResult
    """
    mode = QUICK if quick else FULL
    store = store_path(store_dir, NAME, quick)
    return [
        check(w, eps, delta, trials=mode["trials"], rng=rng, store=store, progress=progress)
        for w in architectures
        for eps, delta in mode["cases"]
    ]
