"""Malach et al. (2020): one random pair per weight, polynomial over-parameterisation.

Theorem (Malach, Yehudai, Shalev-Shwartz, Shamir, "Proving the Lottery Ticket
Hypothesis: Pruning is All You Need", ICML 2020, arXiv:2002.00585, Theorem 2.1,
weight subnetworks): a depth-l ReLU target with bounded weights is
eps-approximated on the unit ball, with probability at least 1 - delta, by
pruning a random network of depth 2l whose width is polynomial in the target
width, l, 1/eps and log(1/delta). The construction gives every target weight
its own block of hidden units and keeps, per weight and sign part, ONE random
pair whose product is close to the weight.

slth implements that layout (:mod:`slth.constructions.malach2020`) with the
width of :func:`slth.bounds.malach2020_units`: ``k = ceil(C (l d_in d_out /
eps) ln(2 l d_in d_out / delta))`` candidates per part of each weight,
``C = 14`` from a union bound that is rigorous for targets with
``|W_ij| <= 1/2`` (the paper's own constants could not be read).

What is measured
----------------
Trials as in :mod:`proofs_check.pensia2020` (random bias-free targets, every
layer of spectral norm 1; the largest entry is recorded, since the union
bound assumes entries of at most 1/2):

* **Claim** at ``C`` (default :data:`slth.bounds.MALACH2020_C`): the ticket
  of :func:`slth.constructions.malach2020.construct` has sup error at most eps
  in at least 1 - delta of the trials, judged with bracketed counts
  (:func:`proofs_check._core.success_bounds`): the lower CI end from
  #(certified <= eps), the upper from #(adversarial <= eps), "violated" only
  from the latter (a lower bound above the certified one is a bug and makes the
  verdict "violated" with basis "sanity").
* **Empirical constant**: the smallest C at which the propagated bound of the
  closest single pairs is at most eps in at least 1 - delta of the trials
  (nested sources, bisection, bracket; as in the Theorem 1 check).
* **Source size against Pensia at the same eps**: on the same targets, the
  Pensia et al. construction's own empirical constant
  (:func:`proofs_check.pensia2020.scan_trials`); ``details`` gives the source
  weights each construction needs at its empirical constant, their ratio
  (Malach / Pensia, the *measured* over-parameterisation gap), the median of the
  per-trial ratio of the smallest sufficient sources, and the ratio at the
  constants slth uses by default.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slth import MLP, InputError, spawn
from slth import bounds as B
from slth.constructions import malach2020
from slth.evaluate import approximation_error
from slth.sweeps import run_sweep

from . import pensia2020 as P
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
    Candidates,
    SingleCurve,
    bounded_target,
    certified_first_index,
    first_index,
    layer_candidates,
    scan_constant,
    source_params,
    units_table,
)

__all__ = ["ARCHITECTURES", "NAME", "PAPER", "STATEMENT", "check", "run", "units_at"]

NAME = "malach2020"
PAPER = (
    "Malach, Yehudai, Shalev-Shwartz, Shamir 2020, ICML (arXiv:2002.00585), Theorem 2.1 "
    "(one block of hidden units per target weight, single-pair selection)"
)
STATEMENT = (
    "A depth-l ReLU target with bounded weights is eps-approximated, with probability "
    ">= 1 - delta, by pruning a depth-2l random network of width polynomial in d, l, 1/eps "
    "(one random pair per target weight, each weight owning its hidden units); slth's width is "
    "k = C (l d_in d_out / eps) ln(2 l d_in d_out / delta) per part, C = 14."
)

#: Target widths checked by :func:`run`.
ARCHITECTURES: tuple[tuple[int, ...], ...] = ((3, 4, 2),)
#: Largest C scanned (raised to the claimed C if smaller), grid step.
C_MAX = 14.0
C_STEP = 0.01
#: approximation_error settings: the sources hold millions of weights.
EVAL: dict[str, int] = {"n_samples": 64, "adversarial_steps": 10, "restarts": 2}
QUICK: dict[str, Any] = {"trials": 40, "cases": [(0.1, 0.1)]}
FULL: dict[str, Any] = {"trials": 200, "cases": [(0.1, 0.1), (0.2, 0.05)]}
_CHUNK = 5


def units_at(widths: Sequence[int], eps: float, delta: float, C: float) -> list[int]:
    """Candidates per part of each layer at ``C`` (:func:`slth.bounds.malach2020_units`)."""
    L = len(widths) - 1
    return [int(B.malach2020_units(widths[i], widths[i + 1], L, eps, delta, C=C))
            for i in range(L)]


def _shape(widths: Sequence[int]) -> MLP:
    return MLP(tuple(np.zeros((widths[i + 1], widths[i])) for i in range(len(widths) - 1)))


def _params(widths: Sequence[int], units: Sequence[int]) -> int:
    """Weights of Malach et al.'s source (one block of 2k units per target weight)."""
    w = malach2020.source_widths(_shape(widths), [int(u) for u in units])
    return int(sum(w[s] * w[s + 1] for s in range(len(w) - 1)))


def _pensia_params(widths: Sequence[int], units: Sequence[int]) -> int:
    """Weights of Pensia et al.'s source (shared blocks per input coordinate)."""
    return source_params(_shape(widths), [int(u) for u in units])


def layer_candidates_per_weight(source: MLP, target: MLP, layer: int, k: int) -> Candidates:
    """Candidates of target layer ``layer`` in Malach et al.'s layout, ``k`` per part.

    Output i's blocks (hidden units ``i * 2k d_in .. (i + 1) * 2k d_in - 1``) form
    the shared layout of a one-output layer, read with
    :func:`proofs_check._mlp.layer_candidates`; the outputs are stacked (entry
    widths per output, since no block is shared).
    """
    W = target.weights[layer]
    d_out, d_in = W.shape
    A, Bm = source.weights[2 * layer], source.weights[2 * layer + 1]
    per = 2 * k * d_in
    parts = [layer_candidates(MLP((A[o * per:(o + 1) * per], Bm[o:o + 1, o * per:(o + 1) * per])),
                              MLP((W[o:o + 1],)), 0, k) for o in range(d_out)]
    return Candidates(np.concatenate([c.values for c in parts], axis=1),
                      np.concatenate([c.enter for c in parts], axis=1),
                      np.concatenate([c.targets for c in parts], axis=1), int(k))


def _trials(config: dict[str, Any], gens: list[np.random.Generator]) -> list[dict[str, Any]]:
    widths, eps, delta, C = config["widths"], config["eps"], config["delta"], config["C"]
    L = len(widths) - 1
    targets = [bounded_target(widths, rng=g) for g in gens]
    table = units_table(lambda c: units_at(widths, eps, delta, c), c_max=config["c_max"],
                        grid_step=C_STEP)
    units_big = table[-1].tolist()
    sources = [MLP.random(malach2020.source_widths(t, units_big), rng=g)
               for t, g in zip(targets, gens)]
    curves = [[SingleCurve.of(layer_candidates_per_weight(s, t, i, units_big[i]))
               for s, t in zip(sources, targets)] for i in range(L)]
    need = np.ones((len(targets), L), dtype=np.int64)
    for i in range(L):
        tol = float(B.pensia2020_tolerance(widths[i], widths[i + 1], L, eps))
        need[:, i] = np.maximum(1, [int(c.first_units(tol).max()) for c in curves[i]])
    k_proof = first_index(need, table)
    k_cert = certified_first_index(curves, [t.weights for t in targets], table, eps,
                                   lambda i, cs, u: [c.at(n) for c, n in zip(cs, u)])
    del curves
    pensia = P.scan_trials(widths, eps, delta, config["c_max_pensia"], targets, gens)
    units = units_at(widths, eps, delta, C)
    recs = []
    for j, (t, big, g) in enumerate(zip(targets, sources, gens)):
        cut = malach2020.nested_source(big, t, units_big, units)
        ticket = malach2020.construct(t, source=cut,
                                      eps=eps, delta=delta, C=C, on_failure="report")
        rep = approximation_error(t, ticket, rng=g, **EVAL)
        recs.append({
            "need": need[j].tolist(),
            "k_proof": int(k_proof[j]),
            "k_cert": int(k_cert[j]),
            "pensia_k_cert": int(pensia["k_cert"][j]),
            "pensia_k_proof": int(pensia["k_proof"][j]),
            "n_failed": int(ticket.params["n_failed"]),
            "n_source_params": int(ticket.n_source_params),
            "max_abs_weight": float(max(np.abs(w).max() for w in t.weights)),
            "certified": float(rep.certified),
            "adversarial": float(rep.adversarial),
            "sampled": float(rep.sampled_max),
        })
    return recs


def _chunk_task(config: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    return {"trials": _trials(config, spawn(rng, config["size"]))}


def check(
    widths: Sequence[int] = (3, 4, 2),
    eps: float = 0.1,
    delta: float = 0.1,
    *,
    C: float = B.MALACH2020_C,
    trials: int = 200,
    c_max: float = C_MAX,
    c_max_pensia: float = P.C_MAX,
    violation_factor: float = VIOLATION_FACTOR,
    confidence: float = 0.95,
    rng: int = 0,
    store: str | Path | None = None,
    progress: bool | None = None,
    chunk_size: int = _CHUNK,
) -> CheckResult:
    """Check the single-pair construction at the constant ``C`` and compare with Pensia's.

    Parameters
    ----------
    widths : sequence of int, default (3, 4, 2)
        Target widths.
    eps, delta : float, default 0.1, 0.1
        Accuracy and failure probability, in (0, 1).
    C : float, default :data:`slth.bounds.MALACH2020_C`
        Constant of the width tested; an under-sized C must come out "violated".
    trials : int, default 200
        Seeded independent trials (one target, one source per construction).
    c_max, c_max_pensia : float
        Largest C scanned for each construction's empirical constant.
    violation_factor, confidence : float
        Verdict rule parameters (:mod:`proofs_check._core`).
    rng : int, default 0
        Base seed.
    store : path-like, optional
        Results file for resuming.
    progress : bool or None
        Progress bar on stderr.
    chunk_size : int, default 5
        Trials per resumable row (each trial holds a source of ~10^6 weights).

    Returns
    -------
    CheckResult
        ``measured``: fraction of trials with certified error <= eps at ``C``;
        ``empirical_constant``: the Malach constant; ``details["size_ratio_*"]``:
        the Malach / Pensia source-size ratios.
    """
    t0 = time.perf_counter()
    widths = [int(w) for w in widths]
    if len(widths) < 2 or min(widths) < 1:
        raise InputError(f"`widths` must hold >= 2 ints >= 1; received {widths!r}")
    for nm, v in (("eps", eps), ("delta", delta)):
        if not 0.0 < float(v) < 1.0:
            raise InputError(f"`{nm}` must lie in (0, 1); received {v!r}")
    if int(trials) < 1 or int(chunk_size) < 1:
        raise InputError(f"`trials` and `chunk_size` must be ints >= 1; received {trials!r}, "
                         f"{chunk_size!r}")
    c_top = max(float(c_max), float(C))
    sizes = [int(chunk_size)] * (int(trials) // int(chunk_size))
    if int(trials) % int(chunk_size):
        sizes.append(int(trials) % int(chunk_size))
    configs = [
        {"check": NAME, "widths": widths, "eps": float(eps), "delta": float(delta),
         "C": float(C), "c_max": c_top, "c_max_pensia": float(c_max_pensia),
         "grid_step": C_STEP, "chunk": i, "size": s}
        for i, s in enumerate(sizes)
    ]
    res = run_sweep(_chunk_task, configs, path=store, rng=rng, progress=progress,
                    desc=f"{NAME} {'-'.join(map(str, widths))} eps={eps:g}")
    recs = [t for r in res.results for t in r["trials"]]
    n = len(recs)
    claimed = 1.0 - float(delta)
    cert = np.array([r["certified"] for r in recs])
    adv = np.array([r["adversarial"] for r in recs])
    counts = success_bounds(cert, adv, eps)
    k = counts.low
    verdict, ci, reason = rate_verdict(counts.low, counts.high, n, claimed,
                                       violation_factor=violation_factor, confidence=confidence)
    p_values = rate_p_values(counts.low, counts.high, n, claimed,
                             violation_factor=violation_factor)
    verdict, reason, broken = P.bounds_sanity(verdict, reason, adv, cert)

    table_m = units_table(lambda c: units_at(widths, eps, delta, c), c_max=c_top,
                          grid_step=C_STEP)
    table_p = units_table(lambda c: P.units_at(widths, eps, delta, c), c_max=c_max_pensia,
                          grid_step=P.C_STEP)

    def scan(key: str, table: np.ndarray, step: float) -> Any:
        return scan_constant(np.array([r[key] for r in recs]), k_max=table.shape[0] - 1,
                             claimed=claimed, grid_step=step, confidence=confidence)

    sm, smp = scan("k_cert", table_m, C_STEP), scan("k_proof", table_m, C_STEP)
    sp, spp = scan("pensia_k_cert", table_p, P.C_STEP), scan("pensia_k_proof", table_p, P.C_STEP)
    size_m = None if sm.c_hat is None else _params(widths, units_at(widths, eps, delta, sm.c_hat))
    size_p = None if sp.c_hat is None else _pensia_params(widths, P.units_at(widths, eps, delta,
                                                                       sp.c_hat))
    per_trial = [
        _params(widths, table_m[r["k_cert"]])
        / _pensia_params(widths, table_p[r["pensia_k_cert"]])
        for r in recs
        if r["k_cert"] < table_m.shape[0] and r["pensia_k_cert"] < table_p.shape[0]
    ]
    units = units_at(widths, eps, delta, C)
    size_claim = _params(widths, units)
    size_p_default = _pensia_params(widths, P.units_at(widths, eps, delta, B.PENSIA2020_C))

    def thr(s: Any) -> dict[str, float | None]:
        return {"c_hat": s.c_hat, "c_low": s.c_low, "c_high": s.c_high}

    details: dict[str, Any] = {
        "n": units,
        "C": float(C),
        "widths": widths,
        "eps": float(eps),
        "delta": float(delta),
        "n_source_params": size_claim,
        "successes": k,
        "successes_low": counts.low,
        "successes_high": counts.high,
        "measured_is": "lower bound" if counts.low < counts.high else "exact",
        "proof_event_successes": int(sum(r["n_failed"] == 0 for r in recs)),
        "bound_inconsistencies": broken,
        "max_abs_target_weight": float(max(r["max_abs_weight"] for r in recs)),
        "certified": P.summary(cert),
        "adversarial": P.summary(adv),
        "sampled": P.summary(np.array([r["sampled"] for r in recs])),
        "constant_event": "propagated certified bound <= eps with the closest single pairs",
        "constant_grid_step": C_STEP,
        "constant_scan_max": c_top,
        "threshold": thr(sm),
        "threshold_proof_event": thr(smp),
        "pensia_threshold": thr(sp),
        "pensia_threshold_proof_event": thr(spp),
        "source_params_at_empirical_C": {"malach2020": size_m, "pensia2020": size_p},
        "size_ratio_empirical": None if size_m is None or size_p is None else size_m / size_p,
        "size_ratio_per_trial_median": float(np.median(per_trial)) if per_trial else None,
        "source_params_at_default_C": {"malach2020": size_claim,
                                       "pensia2020": size_p_default},
        "size_ratio_default_C": size_claim / size_p_default,
        "trials_needed": trials_needed(claimed, violation_factor=violation_factor,
                                       confidence=confidence),
        "violation_factor": float(violation_factor),
        "seed": rng,
    }
    return CheckResult(
        name=NAME,
        case=f"{'-'.join(map(str, widths))}, eps={eps:g}, delta={delta:g}",
        paper=PAPER,
        statement=STATEMENT,
        claim=(f"P(certified sup error <= {eps:g}) >= {claimed:g} at C = {float(C):g}: "
               f"k = {units} candidates per part, {size_claim} source weights"),
        claimed=claimed,
        measured=k / n,
        interval=ci,
        confidence=float(confidence),
        trials=n,
        empirical_constant=sm.c_hat,
        constant_interval=(sm.c_low, sm.c_high),
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
    architectures: Sequence[Sequence[int]] = ARCHITECTURES,
) -> list[CheckResult]:
    """All cases: each architecture and each (eps, delta) of the mode.

    Parameters
    ----------
    quick : bool, default False
        :data:`QUICK` (20 trials, eps = delta = 0.1) instead of :data:`FULL`.
    rng : int, default 0
        Base seed.
    store_dir : path-like, optional
        Folder of the resumable results file ``malach2020[_quick].jsonl``.
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
