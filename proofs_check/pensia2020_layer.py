"""Pensia et al. (2020): the single-layer lemma behind Theorem 1.

Lemma (Pensia, Rajput, Nagle, Vishwakarma, Papailiopoulos, NeurIPS 2020,
arXiv:2006.07990; the lemma on approximating one layer used in the proof of
Theorem 1, in the form slth implements). For ``W`` in R^{d_out x d_in} with
``||W||_2 <= 1``, a random two-layer network ``x -> M_2 relu(M_1 x)`` with
i.i.d. U[-1, 1] entries and ``C d_in log(d_in d_out / min(eps, delta))``
hidden units has, with probability at least 1 - delta, masks under which
every target weight is realised within ``eps / (2 d_in d_out)`` (both sign
parts, Theorem 1's per-weight tolerance with l = 1). Then the layer's error
matrix ``Delta_ij = max(|P_ij - W_ij|, |N_ij + W_ij|)`` (P, N the positive- and
negative-part weights the masks realise) bounds the layer error:
``sup_{||x|| <= 1} ||g(x) - W x|| <= ||Delta||_2 <= ||Delta||_F <=
eps / (2 sqrt(d_in d_out)) < eps``.

What is measured
----------------
Trials as in :mod:`proofs_check.pensia2020` with one-layer targets (U[-1, 1]
entries scaled to spectral norm 1):

* **Claim** at ``C`` (default :data:`slth.bounds.PENSIA2020_C`): the ticket of
  :func:`slth.constructions.pensia2020.construct` realises every weight within
  the tolerance (``params["n_failed"] == 0``) in at least 1 - delta of the trials.
  The event is decided exactly per trial when every instance has at most
  :data:`slth.subset_sum.EXACT_MAX_N` (40) candidates (eps-mode subset sum is
  then an exact search): the success count is known, both CI ends come from
  it and "violated" can be decided. With more candidates (n > 40 units per
  part) eps mode searches prefixes of 40 only, a miss is not a proof of
  failure, and the count is only a lower bound (the upper CI end is then 1,
  never "violated"). ``details`` also brackets the count of the lemma's
  consequence, sup error <= eps: ``#(certified <= eps)`` below and
  ``#(adversarial <= eps)`` above (:func:`proofs_check._core.success_bounds`).
* **The bound ``||W' - W||``**: in every trial the adversarial lower bound on
  ``sup ||g(x) - W x||`` (:func:`slth.evaluate.approximation_error`) must not
  exceed ``||Delta||_2`` computed from the ticket's recorded
  ``weight_errors``; a trial where it does makes the verdict "violated" (the
  recorded errors or the masks would be wrong). ``details`` also gives the
  largest gap between ``||Delta||_2`` and the certified bound recomputed from
  the masks (at most ``||Delta||_2`` for one layer; it may be tighter) and the
  largest ``||Delta||_2`` among the
  trials meeting the tolerance, against ``eps / (2 sqrt(d_in d_out))``.
* **Empirical constant**: the smallest C whose rate of the per-weight event
  reaches 1 - delta (nested sources, bracket as in the Theorem 1 check).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slth import bounds as B
from slth.subset_sum import EXACT_MAX_N

from . import pensia2020 as T1
from ._core import (
    VIOLATION_FACTOR,
    CheckResult,
    rate_p_values,
    rate_verdict,
    store_path,
    success_bounds,
    trials_needed,
)
from ._mlp import scan_constant, units_table

__all__ = ["LAYERS", "NAME", "PAPER", "STATEMENT", "check", "run"]

NAME = "pensia2020_layer"
PAPER = (
    "Pensia, Rajput, Nagle, Vishwakarma, Papailiopoulos 2020, NeurIPS (arXiv:2006.07990), "
    "single-layer lemma in the proof of Theorem 1"
)
STATEMENT = (
    "One layer W with ||W|| <= 1: pruning a random U[-1,1] two-layer network of "
    "C d_in log(d_in d_out / min(eps, delta)) hidden units realises every weight within "
    "eps / (2 d_in d_out) with probability >= 1 - delta, so the layer error is at most "
    "||Delta||_2 < eps on the unit ball; C is not given."
)

#: Layer shapes ``(d_in, d_out)`` checked by :func:`run`.
LAYERS: tuple[tuple[int, int], ...] = ((4, 4), (8, 8))
QUICK: dict[str, Any] = {"trials": 100, "cases": [(0.1, 0.1)]}
FULL: dict[str, Any] = {"trials": 400, "cases": [(0.1, 0.1), (0.02, 0.05)]}


def check(
    d_in: int = 4,
    d_out: int = 4,
    eps: float = 0.1,
    delta: float = 0.1,
    *,
    C: float = B.PENSIA2020_C,
    trials: int = 400,
    c_max: float = T1.C_MAX,
    violation_factor: float = VIOLATION_FACTOR,
    confidence: float = 0.95,
    rng: int = 0,
    store: str | Path | None = None,
    progress: bool | None = None,
    chunk_size: int = 20,
) -> CheckResult:
    """Check the single-layer lemma for one shape, eps and delta at the constant ``C``.

    Parameters
    ----------
    d_in, d_out : int, default 4, 4
        Layer shape (``W`` is ``d_out x d_in``).
    eps, delta : float, default 0.1, 0.1
        Accuracy and failure probability, in (0, 1).
    C : float, default :data:`slth.bounds.PENSIA2020_C`
        Constant of the width tested; an under-sized C must come out "violated".
    trials : int, default 400
        Seeded independent trials (one layer and one source each).
    c_max : float
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
        ``measured``: fraction of trials with every weight within
        ``eps / (2 d_in d_out)``; ``empirical_constant``: smallest grid C whose
        rate reaches 1 - delta.
    """
    t0 = time.perf_counter()
    widths = [int(d_in), int(d_out)]
    c_top = max(float(c_max), float(C))
    recs = T1.trial_records(widths, eps, delta, C=C, trials=trials, c_max=c_top, name=NAME,
                            rng=rng, store=store, progress=progress, chunk_size=chunk_size,
                            adversarial_scan=False)
    n = len(recs)
    claimed = 1.0 - float(delta)
    ok = np.array([r["n_failed"] == 0 for r in recs])
    k = int(ok.sum())
    units = T1.units_at(widths, eps, delta, C)
    exact = max(units) <= EXACT_MAX_N
    k_high = k if exact else n
    verdict, ci, reason = rate_verdict(k, k_high, n, claimed, violation_factor=violation_factor,
                                       confidence=confidence)
    if not exact:
        reason += (f" (n = {units} > {EXACT_MAX_N} candidates: eps-mode searches prefixes of "
                   f"{EXACT_MAX_N}, the count is a lower bound)")
    p_values = rate_p_values(k, k_high, n, claimed, violation_factor=violation_factor)
    dnorm = np.array([r["weight_error_norms"][0] for r in recs])
    adv = np.array([r["adversarial"] for r in recs])
    cert = np.array([r["certified"] for r in recs])
    sup_counts = success_bounds(cert, adv, eps)
    verdict, reason, broken = T1.bounds_sanity(verdict, reason, adv, dnorm)
    table = units_table(lambda c: T1.units_at(widths, eps, delta, c), c_max=c_top,
                        grid_step=T1.C_STEP)
    scan = scan_constant(np.array([r["k_proof"] for r in recs]), k_max=table.shape[0] - 1,
                         claimed=claimed, grid_step=T1.C_STEP, confidence=confidence)
    tol = float(B.pensia2020_tolerance(d_in, d_out, 1, eps))
    details: dict[str, Any] = {
        "n": units,
        "C": float(C),
        "shape": [int(d_out), int(d_in)],
        "eps": float(eps),
        "delta": float(delta),
        "weight_tolerance": tol,
        "n_source_params": int(recs[0]["n_source_params"]),
        "successes": k,
        "measured_is": "exact" if exact else "lower bound",
        "successes_low": k,
        "successes_high": k_high,
        "sup_error_successes": {"certified_le_eps": sup_counts.low,
                                "adversarial_le_eps": sup_counts.high},
        "delta_norm": T1.summary(dnorm),
        "delta_norm_max_when_within_tolerance": float(dnorm[ok].max()) if k else None,
        "delta_norm_bound_when_within_tolerance": float(eps / (2 * np.sqrt(d_in * d_out))),
        "bound_inconsistencies": broken,
        "max_gap_certified_vs_delta_norm": float(np.abs(cert - dnorm).max()),
        "max_certified_minus_delta_norm": float((cert - dnorm).max()),
        "adversarial": T1.summary(adv),
        "sampled": T1.summary(np.array([r["sampled"] for r in recs])),
        "constant_event": "every weight within eps / (2 d_in d_out)",
        # rates are exact up to EXACT_MAX_N units per part (lower bounds beyond): the
        # bracket is exact when its upper end lies there
        "constant_event_is": "exact" if scan.c_high is not None and max(
            T1.units_at(widths, eps, delta, scan.c_high)) <= EXACT_MAX_N else
        f"exact up to {EXACT_MAX_N} units per part, a lower bound on the rate beyond",
        "constant_grid_step": T1.C_STEP,
        "constant_scan_max": c_top,
        "threshold": {"c_hat": scan.c_hat, "c_low": scan.c_low, "c_high": scan.c_high},
        **T1.width_ratios(widths, eps, delta, C, scan.c_hat),
        "trials_needed": trials_needed(claimed, violation_factor=violation_factor,
                                       confidence=confidence),
        "violation_factor": float(violation_factor),
        "seed": rng,
    }
    return CheckResult(
        name=NAME,
        case=f"{d_out}x{d_in}, eps={eps:g}, delta={delta:g}",
        paper=PAPER,
        statement=STATEMENT,
        claim=(f"P(every |realised - target weight| <= {tol:.3g}) >= {claimed:g} at "
               f"C = {float(C):g} (n = {units[0]} units per part)"),
        claimed=claimed,
        measured=k / n,
        interval=ci,
        confidence=float(confidence),
        trials=n,
        empirical_constant=scan.c_hat,
        constant_interval=(scan.c_low, scan.c_high),
        verdict=verdict,
        reason=reason,
        details=details,
        runtime_s=time.perf_counter() - t0,
        p_values=p_values,
        basis="sanity" if broken else "statistical",
    )


def run(
    *,
    quick: bool = False,
    rng: int = 0,
    store_dir: str | Path | None = None,
    progress: bool | None = None,
    layers: Sequence[tuple[int, int]] = LAYERS,
) -> list[CheckResult]:
    """All cases: each layer shape ``(d_in, d_out)`` and each (eps, delta) of the mode.

    Parameters
    ----------
    quick : bool, default False
        :data:`QUICK` (100 trials, eps = delta = 0.1) instead of :data:`FULL`.
    rng : int, default 0
        Base seed.
    store_dir : path-like, optional
        Folder of the resumable results file ``pensia2020_layer[_quick].jsonl``.
    progress : bool or None
        Progress bars on stderr.
    layers : sequence of (int, int)
        Layer shapes.

    Returns
    -------
    list of CheckResult
    """
    mode = QUICK if quick else FULL
    store = store_path(store_dir, NAME, quick)
    return [
        check(d_in, d_out, eps, delta, trials=mode["trials"], rng=rng, store=store,
              progress=progress)
        for d_in, d_out in layers
        for eps, delta in mode["cases"]
    ]
