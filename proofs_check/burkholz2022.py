"""Burkholz (2022): depth L+1 suffices for a depth-L ReLU target.

Claim (R. Burkholz, "Most Activation Functions Can Win the Lottery Without
Excessive Depth", NeurIPS 2022, arXiv:2205.02321; for convolutional targets
"Convolutional and Residual Networks Provably Contain Lottery Tickets", ICML
2022, arXiv:2205.02343). What slth could confirm is the abstracts (depth
``L + 1`` instead of Pensia et al.'s ``2L``, logarithmic width), the caption
of the NeurIPS paper's Figure 1 and the authors' code (RelationalML/LT-existence);
the theorem numbers, hypotheses and width constant could not be read, so
**no theorem number is cited** and what is checked is slth's construction
(:mod:`slth.constructions.burkholz2022`) at slth's width bound
:func:`slth.constructions.burkholz2022.theorem_rho`,
``rho = ceil(C ln(2 / min(tau, delta / P)))`` with
``C = BURKHOLZ2022_C = 6``: a constant **measured** by slth (the smallest of a
few values meeting every tolerance on six seeds), not the paper's. A
"violated" verdict would refute that bound at that constant, not the paper.

What is measured
----------------
Each trial draws a small random target and builds the ticket of
``construct(target, eps=eps, delta=delta, rng=seed)`` (its ``eps=`` path:
``rho = theorem_rho(target, eps, delta)`` copies and candidates, every
instance solved to :func:`~slth.constructions.burkholz2022.weight_tolerance`;
a missed tolerance is counted, not raised), a source of depth ``L + 1``.

* MLP targets (:data:`MLP_ARCHITECTURES`) come from
  :func:`slth.constructions.bounded_target` (bias-free, every layer of
  spectral norm 1: Pensia et al.'s hypothesis, slth's choice since the
  paper's could not be read).
* The CNN target (:data:`CNN_ARCHITECTURES`, full mode only) is scaled so
  that every convolution's tap bound ``sum_{u,v} ||K[:, :, u, v]||_2`` and
  the Dense layer's spectral norm are 1, the operator bounds the certificate
  uses. At ``theorem_rho`` its certificate is loose (0.11-0.15 at eps = 0.1
  on a few seeds, while the adversarial error is about 0.006), so the case
  comes out "inconclusive": kept out of quick mode, whose cases should be
  decidable.
* The residual target ``conv1-2k3-res2k3-maxpool-dense`` (full mode only): a
  ResNet basic block ``[conv3x3, ReLU, conv3x3]`` with its skip between a
  padded stem convolution and MaxPool/Dense, scaled alike. It too comes out
  "inconclusive" (4 trials at eps = delta = 0.1, rho = 53: adversarial at most
  0.051, certified about 830): the worst-copy amplification of the recursion,
  compounded over four layers.

The sup error over the unit ball is bracketed per trial by
:func:`slth.evaluate.approximation_error` (the registered certifier
:func:`slth.constructions.burkholz2022.certified_bound`, an upper bound, and an
adversarial search, a lower bound). The claim "at least ``1 - delta`` of the
trials have sup error <= eps" is judged as in :mod:`proofs_check.pensia2020`
(:func:`proofs_check.dacunha2022.case_result`): the lower CI end from
``#(certified <= eps)``, the upper from ``#(adversarial <= eps)``, "violated"
only from the upper, Holm across the run's cases in
:func:`proofs_check.run_checks`. Where the certificate is loose (the CNN
case: the worst-copy amplification of the module's recursion) the case stays
"inconclusive" rather than "consistent": no rigorous success is claimed.

Empirical constant: not measured (the coupled scan of :mod:`proofs_check._mlp`
reads Pensia et al.'s layout; this layout has no nested sources yet), so
``constant_interval`` stays None; ``details["C"]`` records the measured
constant the width uses.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from slth import InputError, spawn
from slth.certify import norm_upper
from slth.constructions import bounded_target
from slth.constructions import burkholz2022 as bk
from slth.evaluate import approximation_error
from slth.nets import Network
from slth.nets.base import Residual
from slth.nets.conv import Conv2d, Flatten, MaxPool2d
from slth.nets.layers import Dense, ReLU
from slth.sweeps import run_sweep

from ._core import VIOLATION_FACTOR, CheckResult, store_path
from .dacunha2022 import EVAL, case_result, one_blas_thread

__all__ = [
    "CNN_ARCHITECTURES",
    "MLP_ARCHITECTURES",
    "NAME",
    "PAPER",
    "STATEMENT",
    "check",
    "make_target",
    "run",
    "trial_records",
]

NAME = "burkholz2022"
PAPER = (
    "Burkholz 2022, NeurIPS (arXiv:2205.02321) and ICML (arXiv:2205.02343): abstracts "
    "confirmed, no theorem number; width bound and its constant C = 6 are slth's"
)
STATEMENT = (
    "A depth-L ReLU target is eps-approximated, with probability >= 1 - delta, by pruning a "
    "random network of depth L + 1 at logarithmic width (abstracts; checked at slth's width "
    "rho = ceil(C ln(2 / min(tau, delta / P))) with the measured C = 6)."
)

#: MLP target widths (key: the widths joined by "-").
MLP_ARCHITECTURES: tuple[tuple[int, ...], ...] = ((3, 4, 2), (4, 4, 4, 2))
#: CNN targets: name -> (layer factory, input shape).
CNN_ARCHITECTURES: dict[str, tuple[Callable[[], list[Any]], tuple[int, int, int]]] = {
    "conv1-2k3-maxpool-dense": (
        lambda: [Conv2d(1, 2, 3, bias=False), ReLU(), MaxPool2d(2), Flatten(),
                 Dense(8, 1, bias=False)],
        (1, 6, 6),
    ),
    # a residual target: a ResNet basic block [conv3x3, ReLU, conv3x3] with its skip over
    # the L+1 copy layout, then a ReLU (full mode only)
    "conv1-2k3-res2k3-maxpool-dense": (
        lambda: [Conv2d(1, 2, 3, padding=1, bias=False), ReLU(),
                 Residual((Conv2d(2, 2, 3, padding=1, bias=False), ReLU(),
                           Conv2d(2, 2, 3, padding=1, bias=False))), ReLU(), MaxPool2d(2),
                 Flatten(), Dense(18, 1, bias=False)],
        (1, 6, 6),
    ),
}
QUICK: dict[str, Any] = {"trials": 40, "targets": ("3-4-2",), "cases": [(0.1, 0.1)]}
FULL: dict[str, Any] = {
    "trials": 200,
    "targets": (*("-".join(map(str, w)) for w in MLP_ARCHITECTURES), *CNN_ARCHITECTURES),
    "cnn_trials": 100,
    "cases": [(0.1, 0.1), (0.05, 0.05)],
}
_CHUNK = 20


def _tap_bound(K: np.ndarray) -> float:
    if K.ndim == 2:
        return float(norm_upper(K))
    return float(sum(norm_upper(np.ascontiguousarray(K[:, :, u, v]))
                     for u in range(K.shape[2]) for v in range(K.shape[3])))


def make_target(target: str, seed: int) -> Network:
    """Random target ``target`` drawn from ``seed``.

    Parameters
    ----------
    target : str
        MLP widths joined by "-" (e.g. ``"3-4-2"``: :func:`slth.constructions.bounded_target`,
        every layer of spectral norm 1) or a key of :data:`CNN_ARCHITECTURES`
        (every layer scaled to operator bound 1: tap bound for convolutions,
        spectral norm for Dense).
    seed : int

    Returns
    -------
    Network
    """
    if target in CNN_ARCHITECTURES:
        layers, shape = CNN_ARCHITECTURES[target]
        net = Network.random(layers(), rng=int(seed), input_shape=shape)
        return net.with_params({k: np.asarray(v, dtype=float) / _tap_bound(np.asarray(v))
                                if k.endswith(".weight") else 0.5 * np.asarray(v)
                                for k, v in net.params.items()})
    try:
        widths = [int(w) for w in target.split("-")]
    except ValueError:
        widths = []
    if len(widths) < 2 or min(widths) < 1:
        raise InputError(f"`target` must be MLP widths like '3-4-2' or one of "
                         f"{sorted(CNN_ARCHITECTURES)}; received {target!r}")
    return bounded_target(widths, rng=int(seed))


def _trial(config: dict[str, Any], g: np.random.Generator) -> dict[str, Any]:
    seed_t, seed_s = (int(s) for s in g.integers(0, 2**31 - 1, size=2))
    target = make_target(config["target"], seed_t)
    ticket = bk.construct(target, rho=config.get("rho"), eps=config["eps"],
                          delta=config["delta"], rng=seed_s, on_failure="report")
    rep = approximation_error(target, ticket, rng=g, **EVAL)
    src = ticket.source
    return {
        "certified": float(rep.certified),
        "adversarial": float(rep.adversarial),
        "sampled": float(rep.sampled_max),
        "rho": int(ticket.params["rho"]),
        "n_failed": int(ticket.params["n_failed"]),
        "source_depth": int(sum(k.endswith(".weight") for k in src.params)),
        "target_depth": int(sum(k.endswith(".weight") for k in target.params)),
        "n_source_params": int(ticket.n_source_params),
        "n_target_params": int(target.n_params),
    }


def _chunk_task(config: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    with one_blas_thread():
        return {"trials": [_trial(config, g) for g in spawn(rng, config["size"])]}


def trial_records(
    target: str,
    eps: float,
    delta: float,
    *,
    trials: int,
    rho: int | None = None,
    rng: int = 0,
    store: str | Path | None = None,
    progress: bool | None = None,
    chunk_size: int = _CHUNK,
) -> list[dict[str, Any]]:
    """Seeded trials (resumable rows of :mod:`slth.sweeps`).

    Parameters
    ----------
    target : str
        As :func:`make_target`.
    eps, delta : float
        Accuracy and failure probability, in (0, 1).
    trials : int
        Number of trials >= 1.
    rho : int, optional
        Copies overriding :func:`~slth.constructions.burkholz2022.theorem_rho`
        (an under-sized width for the tests); the tolerance still comes from ``eps``.
    rng : int, default 0
        Base seed.
    store : path-like, optional
        Results file for resuming.
    progress : bool or None
        Progress bar on stderr.
    chunk_size : int, default 20
        Trials per sweep row.

    Returns
    -------
    list of dict
        Per trial: ``certified``, ``adversarial``, ``sampled``, ``rho``,
        ``n_failed``, ``source_depth``, ``target_depth``, ``n_source_params``,
        ``n_target_params``.
    """
    make_target(target, 0)  # validates the name
    for nm, v in (("eps", eps), ("delta", delta)):
        if not 0.0 < float(v) < 1.0:
            raise InputError(f"`{nm}` must lie in (0, 1); received {v!r}")
    if int(trials) < 1 or int(chunk_size) < 1:
        raise InputError(
            f"`trials` and `chunk_size` must be ints >= 1; received {trials!r}, {chunk_size!r}")
    if rho is not None and int(rho) < 1:
        raise InputError(f"`rho` must be an int >= 1 or None; received {rho!r}")
    sizes = [int(chunk_size)] * (int(trials) // int(chunk_size))
    if int(trials) % int(chunk_size):
        sizes.append(int(trials) % int(chunk_size))
    configs = [
        {"check": NAME, "target": target, "eps": float(eps), "delta": float(delta),
         **({"rho": int(rho)} if rho is not None else {}), "chunk": i, "size": s}
        for i, s in enumerate(sizes)
    ]
    res = run_sweep(_chunk_task, configs, path=store, rng=rng, progress=progress,
                    desc=f"{NAME} {target} eps={eps:g}")
    return [t for r in res.results for t in r["trials"]]


def check(
    target: str = "3-4-2",
    eps: float = 0.1,
    delta: float = 0.1,
    *,
    trials: int = 200,
    rho: int | None = None,
    violation_factor: float = VIOLATION_FACTOR,
    confidence: float = 0.95,
    rng: int = 0,
    store: str | Path | None = None,
    progress: bool | None = None,
    chunk_size: int = _CHUNK,
) -> CheckResult:
    """Check the depth L+1 claim for one target, eps and delta at ``theorem_rho``.

    Parameters
    ----------
    target : str, default "3-4-2"
        As :func:`make_target`.
    eps, delta : float, default 0.1, 0.1
        Accuracy and failure probability, in (0, 1).
    trials : int, default 200
        Seeded independent trials (one target and one source each).
    rho : int, optional
        Override of the width (an under-sized ``rho`` must not come out "consistent").
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
        ``details``: ``n`` (= ``rho``), ``C``, depths, tolerance, error summaries.
    """
    t0 = time.perf_counter()
    recs = trial_records(target, eps, delta, trials=trials, rho=rho, rng=rng, store=store,
                         progress=progress, chunk_size=chunk_size)
    claimed = 1.0 - float(delta)
    r_used = int(recs[0]["rho"])
    net = make_target(target, 0)
    depths = {(int(r["target_depth"]), int(r["source_depth"])) for r in recs}
    details = {
        "n": r_used,
        "rho": r_used,
        "width_from": "rho (override)" if rho is not None else "eps (theorem_rho)",
        "C": None if rho is not None else float(bk.BURKHOLZ2022_C),
        "C_note": "slth's measured constant of theorem_rho, not the paper's (unread)",
        "target": target,
        "target_depth": min(d for d, _ in depths),
        "source_depth": max(s for _, s in depths),
        "depth_is_L_plus_1": all(s == d + 1 for d, s in depths),
        "weight_tolerance": float(bk.weight_tolerance(net, eps)),
        "n_source_params": int(recs[0]["n_source_params"]),
        "n_target_params": int(recs[0]["n_target_params"]),
        "confirmed": "abstracts, Figure 1's caption and the authors' code; theorem numbers, "
        "hypotheses and the width constant are slth's",
        "seed": rng,
    }
    width = (f"rho = {r_used} (theorem_rho at the measured C = {bk.BURKHOLZ2022_C:g})"
             if rho is None else f"rho = {r_used} (override)")
    return case_result(
        name=NAME, paper=PAPER, statement=STATEMENT,
        case=f"{target}, eps={eps:g}, delta={delta:g}" + ("" if rho is None else f", rho={rho}"),
        claim=(f"P(sup error <= {eps:g}) >= {claimed:g} on the unit ball at depth "
               f"{details['source_depth']} (L + 1), {width} (successes bracketed by "
               "certified <= eps and adversarial <= eps)"),
        recs=recs, eps=eps, delta=delta, details=details,
        violation_factor=violation_factor, confidence=confidence, t0=t0,
    )


def run(
    *,
    quick: bool = False,
    rng: int = 0,
    store_dir: str | Path | None = None,
    progress: bool | None = None,
) -> list[CheckResult]:
    """All cases: each target and each (eps, delta) of the mode.

    Parameters
    ----------
    quick : bool, default False
        :data:`QUICK` (the 3-4-2 MLP, 40 trials, eps = delta = 0.1:
        enough for "consistent" to survive Holm over a run of a few dozen tests) instead of
        :data:`FULL` (two MLPs at 200 trials, the CNN at 100, two (eps, delta)).
    rng : int, default 0
        Base seed.
    store_dir : path-like, optional
        Folder of the resumable results file ``burkholz2022[_quick].jsonl``.
    progress : bool or None
        Progress bars on stderr.

    Returns
    -------
    list of CheckResult
    """
    mode = QUICK if quick else FULL
    store = store_path(store_dir, NAME, quick)
    return [
        check(t, eps, delta,
              trials=mode.get("cnn_trials", mode["trials"]) if t in CNN_ARCHITECTURES
              else mode["trials"],
              rng=rng, store=store, progress=progress)
        for t in mode["targets"]
        for eps, delta in mode["cases"]
    ]
