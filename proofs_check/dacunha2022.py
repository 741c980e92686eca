"""da Cunha, Natale, Viennot (2022): strong lottery tickets for convolutional networks.

Claim (da Cunha, Natale, Viennot, "Proving the Strong Lottery Ticket Hypothesis
for Convolutional Neural Networks", ICLR 2022, OpenReview ``Vjki79-619-``).
What slth could confirm of the paper is its abstract and the authors' slides:
a random CNN of depth ``2l``, wider by a logarithmic factor, contains with
probability at least ``1 - delta`` a ticket within ``eps`` of any target CNN of
depth ``l`` whose kernels have l1 norm at most 1. The paper's text (its
theorem number, construction, constants, source law and norms) could not be
read, so **no theorem number is cited** and what is checked is slth's reading
(:mod:`slth.constructions.dacunha2022`): the construction of Pensia et al.
(NeurIPS 2020, Theorem 1) in channels, with Pensia et al.'s width
(:func:`slth.bounds.pensia2020_units` at :data:`slth.bounds.PENSIA2020_C`) on
the reshaped ``(c_out kh kw) x c_in`` kernel matrices and slth's per-entry
tolerance (:func:`slth.constructions.dacunha2022.tolerances`). A "violated"
verdict would refute that reading at that constant, not the paper.

What is measured
----------------
Each trial draws a small random conv target (:data:`ARCHITECTURES`, e.g.
``Conv2d(1, 2, 3) -> ReLU -> MaxPool2d(2) -> Flatten -> Dense(8, 1)`` on
inputs ``(1, 6, 6)``) whose every parametrised layer is scaled to a largest
per-output-channel l1 norm of 1 (the hypothesis at its boundary,
``max_i sum_{j,u,v} |K[i, j, u, v]| = 1 - 2^-40``; the construction records it in
``params["hypothesis"]`` and the check counts the trials where it holds), and
builds the ticket of ``construct(target, eps=eps, delta=delta, rng=seed)`` (its
``eps=`` path: the width from eps, every instance solved to its tolerance; a
missed tolerance is kept and counted, not raised). The sup error over the unit
ball of the whole input tensor is bracketed per trial by
:func:`slth.evaluate.approximation_error`: the registered certifier
(:func:`slth.constructions.dacunha2022.certified_bound`, a rigorous upper
bound) and an adversarial search (a lower bound). One full-mode target,
``conv1-2k3-res2k3-dense``, holds a ResNet basic block ``[conv3x3, ReLU,
conv3x3]`` with its skip: the paper states the claim for sequential CNNs, so
that case checks slth's residual extension (module
:mod:`slth.constructions.dacunha2022`, "Residual targets") under the same
hypothesis (20 trials at eps = delta = 0.1: "consistent", certified at most
0.008).

* **Claim**: at least ``1 - delta`` of the trials have sup error <= eps.
  ``#(certified <= eps)`` is a lower bound on the success count (a rigorous
  success), ``#(adversarial <= eps)`` an upper bound
  (:func:`proofs_check._core.success_bounds`); the lower end of the
  Clopper–Pearson interval comes from the first, the upper end from the
  second, and "violated" only from the upper (a certificate above eps does
  not show a failure). The verdict follows :func:`proofs_check._core.rate_verdict`
  per case and is revised family-wise (Holm) by :func:`proofs_check.run_checks`.
  An adversarial value above its certificate exposes a bug and makes the
  verdict "violated" (``basis = "sanity"``).
* **Empirical constant**: not measured. The scan helpers of
  :mod:`proofs_check._mlp` read Pensia et al.'s MLP layout (nested sources
  cut out of one large source, so success is monotone in C); the channel
  layout has no such nesting helper yet, and without coupled trials across
  widths the bracket of :func:`proofs_check._core.threshold_bracket` is not
  valid. ``constant_interval`` stays None and ``details["constant"]`` says why.

One random target per source is implied by the claim's "for any target", so a
rate significantly below ``1 - delta`` would refute the claim; "consistent"
confirms it for random targets meeting the hypothesis, not uniformly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from slth import InputError, spawn
from slth import bounds as B
from slth.constructions import dacunha2022 as dc
from slth.evaluate import approximation_error
from slth.nets import Network
from slth.nets.base import Residual
from slth.nets.conv import Conv2d, Flatten, MaxPool2d
from slth.nets.layers import Dense, ReLU
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
from .pensia2020 import bounds_sanity, summary

__all__ = [
    "ARCHITECTURES",
    "EVAL",
    "NAME",
    "PAPER",
    "STATEMENT",
    "case_result",
    "check",
    "hypothesis_target",
    "one_blas_thread",
    "run",
    "trial_records",
]

NAME = "dacunha2022"
PAPER = (
    "da Cunha, Natale, Viennot 2022, ICLR (OpenReview Vjki79-619-): abstract confirmed, "
    "no theorem number; construction and constants are slth's reading"
)
STATEMENT = (
    "A random CNN of depth 2l, wider by a logarithmic factor, contains with probability "
    ">= 1 - delta a ticket within eps of any depth-l target CNN whose kernels have l1 norm "
    "<= 1 (abstract; checked on slth's reading: Pensia et al.'s construction in channels)."
)

#: Target architectures: name -> (layer factory, input shape). Kept tiny (quick mode).
ARCHITECTURES: dict[str, tuple[Callable[[], list[Any]], tuple[int, int, int]]] = {
    "conv1-2k3-maxpool-dense": (
        lambda: [Conv2d(1, 2, 3, bias=False), ReLU(), MaxPool2d(2), Flatten(),
                 Dense(8, 1, bias=False)],
        (1, 6, 6),
    ),
    "conv1-2k3b-conv2-2k2-dense": (
        lambda: [Conv2d(1, 2, 3), ReLU(), Conv2d(2, 2, 2, bias=False), ReLU(), Flatten(),
                 Dense(18, 1, bias=False)],
        (1, 6, 6),
    ),
    # a residual target (slth's extension of the paper's sequential statement): a ResNet
    # basic block [conv3x3, ReLU, conv3x3] with its skip, then a ReLU (full mode only)
    "conv1-2k3-res2k3-dense": (
        lambda: [Conv2d(1, 2, 3, bias=False), ReLU(),
                 Residual((Conv2d(2, 2, 3, padding=1, bias=False), ReLU(),
                           Conv2d(2, 2, 3, padding=1, bias=False))), ReLU(), Flatten(),
                 Dense(32, 1, bias=False)],
        (1, 6, 6),
    ),
}
#: Settings of :func:`slth.evaluate.approximation_error` per trial.
EVAL: dict[str, int] = {"n_samples": 256, "adversarial_steps": 15, "restarts": 2}
#: Scale of the target biases (the hypothesis bounds the kernels only).
BIAS_SCALE = 0.5
QUICK: dict[str, Any] = {"trials": 40, "architectures": ("conv1-2k3-maxpool-dense",),
                         "cases": [(0.1, 0.1)]}
FULL: dict[str, Any] = {"trials": 200, "architectures": tuple(ARCHITECTURES),
                        "cases": [(0.1, 0.1), (0.05, 0.05)]}
_CHUNK = 20
_CONSTANT_NOTE = (
    "not measured: the constant scan needs trials coupled across widths (nested sources, "
    "proofs_check._mlp), which exist for Pensia et al.'s MLP layout only"
)


def hypothesis_target(arch: str, seed: int) -> Network:
    """Random target of ``arch`` with every kernel's largest per-channel l1 norm equal to 1.

    Parameters
    ----------
    arch : str
        Key of :data:`ARCHITECTURES`.
    seed : int
        Seed of :meth:`slth.nets.Network.random` (uniform law).

    Returns
    -------
    Network
        Weights divided by ``max_i sum |K[i, ...]|`` (so the hypothesis holds at
        its boundary, up to a relative ``2^-40`` below 1 that rounding cannot
        cross), biases multiplied by :data:`BIAS_SCALE`.
    """
    if arch not in ARCHITECTURES:
        raise InputError(f"`arch` must be one of {sorted(ARCHITECTURES)}; received {arch!r}")
    layers, shape = ARCHITECTURES[arch]
    net = Network.random(layers(), rng=int(seed), input_shape=shape)
    params = {}
    for k, v in net.params.items():
        v = np.asarray(v, dtype=float)
        if k.endswith(".weight"):
            # a relative margin of 2^-40 below 1, so that rounding never breaks "<= 1"
            params[k] = v / (np.abs(v).reshape(v.shape[0], -1).sum(axis=1).max()
                             * (1.0 + 2.0**-40))
        else:
            params[k] = BIAS_SCALE * v
    return net.with_params(params)


def _trial(config: dict[str, Any], g: np.random.Generator) -> dict[str, Any]:
    seed_t, seed_s = (int(s) for s in g.integers(0, 2**31 - 1, size=2))
    target = hypothesis_target(config["arch"], seed_t)
    ticket = dc.construct(target, n=config.get("n"), eps=config["eps"], delta=config["delta"],
                          rng=seed_s, on_failure="report")
    rep = approximation_error(target, ticket, rng=g, **EVAL)
    return {
        "certified": float(rep.certified),
        "adversarial": float(rep.adversarial),
        "sampled": float(rep.sampled_max),
        "n": [int(u) for u in ticket.params["n"]],
        "n_failed": int(ticket.params["n_failed"]),
        "hypothesis_holds": bool(ticket.params["hypothesis"]["holds"]),
        "kernel_l1_max": [float(v) for v in ticket.params["hypothesis"]["kernel_l1_max"]],
        "n_source_params": int(ticket.n_source_params),
        "n_target_params": int(target.n_params),
    }


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Limit BLAS to one thread while the trials run (when threadpoolctl is installed).

    The matrices of these targets are tiny: on a loaded machine BLAS threads only
    contend (a certificate took 0.4 s with two threads, 5 ms with one).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: the trials are the same, only slower
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _chunk_task(config: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    with one_blas_thread():
        return {"trials": [_trial(config, g) for g in spawn(rng, config["size"])]}


def trial_records(
    arch: str,
    eps: float,
    delta: float,
    *,
    trials: int,
    n: int | None = None,
    rng: int = 0,
    store: str | Path | None = None,
    progress: bool | None = None,
    chunk_size: int = _CHUNK,
) -> list[dict[str, Any]]:
    """Seeded trials (resumable rows of :mod:`slth.sweeps`).

    Parameters
    ----------
    arch : str
        Key of :data:`ARCHITECTURES`.
    eps, delta : float
        Accuracy and failure probability, in (0, 1).
    trials : int
        Number of trials >= 1.
    n : int, optional
        Units per sign part overriding the width from eps (an under-sized
        width for the tests); the tolerances still come from ``eps``.
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
        Per trial: ``certified``, ``adversarial``, ``sampled`` (sup error
        bracket and sampled maximum), ``n``, ``n_failed``, ``hypothesis_holds``,
        ``kernel_l1_max``, ``n_source_params``, ``n_target_params``.
    """
    if arch not in ARCHITECTURES:
        raise InputError(f"`arch` must be one of {sorted(ARCHITECTURES)}; received {arch!r}")
    for nm, v in (("eps", eps), ("delta", delta)):
        if not 0.0 < float(v) < 1.0:
            raise InputError(f"`{nm}` must lie in (0, 1); received {v!r}")
    if int(trials) < 1 or int(chunk_size) < 1:
        raise InputError(
            f"`trials` and `chunk_size` must be ints >= 1; received {trials!r}, {chunk_size!r}")
    if n is not None and int(n) < 1:
        raise InputError(f"`n` must be an int >= 1 or None; received {n!r}")
    sizes = [int(chunk_size)] * (int(trials) // int(chunk_size))
    if int(trials) % int(chunk_size):
        sizes.append(int(trials) % int(chunk_size))
    configs = [
        {"check": NAME, "arch": arch, "eps": float(eps), "delta": float(delta),
         **({"n": int(n)} if n is not None else {}), "chunk": i, "size": s}
        for i, s in enumerate(sizes)
    ]
    res = run_sweep(_chunk_task, configs, path=store, rng=rng, progress=progress,
                    desc=f"{NAME} {arch} eps={eps:g}")
    return [t for r in res.results for t in r["trials"]]


def case_result(
    *,
    name: str,
    paper: str,
    statement: str,
    case: str,
    claim: str,
    recs: Sequence[dict[str, Any]],
    eps: float,
    delta: float,
    details: dict[str, Any],
    violation_factor: float,
    confidence: float,
    t0: float,
) -> CheckResult:
    """Verdict record of one case from its trials (shared with :mod:`proofs_check.burkholz2022`).

    Parameters
    ----------
    name, paper, statement, case, claim : str
        The record's texts.
    recs : sequence of dict
        Trials with ``certified`` and ``adversarial`` (and ``sampled``).
    eps, delta : float
        Accuracy and failure probability of the claim.
    details : dict
        Case-specific extras (merged into the record's ``details``).
    violation_factor, confidence : float
        Verdict rule parameters (:mod:`proofs_check._core`).
    t0 : float
        ``time.perf_counter()`` at the start of the case.

    Returns
    -------
    CheckResult
        ``measured``: fraction certified within eps (a lower bound on the rate);
        ``interval``: lower end from it, upper end from the adversarial count;
        no empirical constant (``details["constant"]`` says why).
    """
    n = len(recs)
    claimed = 1.0 - float(delta)
    cert = np.array([r["certified"] for r in recs], dtype=float)
    adv = np.array([r["adversarial"] for r in recs], dtype=float)
    counts = success_bounds(cert, adv, eps)
    verdict, ci, reason = rate_verdict(counts.low, counts.high, n, claimed,
                                       violation_factor=violation_factor, confidence=confidence)
    p_values = rate_p_values(counts.low, counts.high, n, claimed,
                             violation_factor=violation_factor)
    verdict, reason, broken = bounds_sanity(verdict, reason, adv, cert)
    full = {
        **details,
        "eps": float(eps),
        "delta": float(delta),
        "measured_is": "exact" if counts.low == counts.high else "lower bound",
        "successes_low": counts.low,
        "successes_high": counts.high,
        "successes_note": "low: certified error <= eps; high: adversarial error <= eps",
        "successes": counts.low,
        "bound_inconsistencies": broken,
        "certified": summary(cert),
        "adversarial": summary(adv),
        "sampled": summary(np.array([r["sampled"] for r in recs], dtype=float)),
        "tolerance_failures": int(sum(r["n_failed"] > 0 for r in recs)),
        "constant": _CONSTANT_NOTE,
        "trials_needed": trials_needed(claimed, violation_factor=violation_factor,
                                       confidence=confidence),
        "violation_factor": float(violation_factor),
    }
    return CheckResult(
        name=name,
        case=case,
        paper=paper,
        statement=statement,
        claim=claim,
        claimed=claimed,
        measured=counts.low / n,
        interval=ci,
        confidence=float(confidence),
        trials=n,
        empirical_constant=None,
        constant_interval=None,
        verdict=verdict,  # type: ignore[arg-type]
        reason=reason,
        details=full,
        runtime_s=time.perf_counter() - t0,
        p_values=p_values,
        basis="sanity" if broken else "statistical",
    )


def check(
    arch: str = "conv1-2k3-maxpool-dense",
    eps: float = 0.1,
    delta: float = 0.1,
    *,
    trials: int = 200,
    n: int | None = None,
    violation_factor: float = VIOLATION_FACTOR,
    confidence: float = 0.95,
    rng: int = 0,
    store: str | Path | None = None,
    progress: bool | None = None,
    chunk_size: int = _CHUNK,
) -> CheckResult:
    """Check the claim for one architecture, eps and delta at the width from eps.

    Parameters
    ----------
    arch : str, default "conv1-2k3-maxpool-dense"
        Key of :data:`ARCHITECTURES`.
    eps, delta : float, default 0.1, 0.1
        Accuracy and failure probability, in (0, 1).
    trials : int, default 200
        Seeded independent trials (one target and one source each).
    n : int, optional
        Units per sign part overriding the construction's width from eps (an
        under-sized ``n`` must not come out "consistent").
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
        ``details``: ``n`` (units per sign part per layer), ``width_from``,
        the hypothesis count, tolerances, error summaries, parameters.
    """
    t0 = time.perf_counter()
    recs = trial_records(arch, eps, delta, trials=trials, n=n, rng=rng, store=store,
                         progress=progress, chunk_size=chunk_size)
    units = recs[0]["n"]
    claimed = 1.0 - float(delta)
    width_from = "n (override)" if n is not None else "eps"
    target = hypothesis_target(arch, 0)
    details = {
        "n": units,
        "width_from": width_from,
        "C": None if n is not None else float(B.PENSIA2020_C),
        "arch": arch,
        "input_shape": list(ARCHITECTURES[arch][1]),
        "target_depth": int(sum(k.endswith(".weight") for k in target.params)),
        "source_depth": 2 * int(sum(k.endswith(".weight") for k in target.params)),
        "weight_tolerance": [float(t) for t in dc.tolerances(target, eps)],
        "hypothesis_holds": int(sum(r["hypothesis_holds"] for r in recs)),
        "kernel_l1_max": max(max(r["kernel_l1_max"]) for r in recs),
        "n_source_params": int(recs[0]["n_source_params"]),
        "n_target_params": int(recs[0]["n_target_params"]),
        "confirmed": "abstract only: the construction, width constant and tolerances are "
        "slth's reading (Pensia et al. 2020 in channels), not the paper's",
        "seed": rng,
    }
    width = (f"n = {units} units per sign part (Pensia et al.'s width at C = "
             f"{B.PENSIA2020_C:g})" if n is None else f"n = {units} (override)")
    return case_result(
        name=NAME, paper=PAPER, statement=STATEMENT,
        case=f"{arch}, eps={eps:g}, delta={delta:g}" + ("" if n is None else f", n={n}"),
        claim=(f"P(sup error <= {eps:g}) >= {claimed:g} on the unit ball at depth "
               f"{details['source_depth']}, {width} (successes bracketed by certified <= eps "
               "and adversarial <= eps)"),
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
    """All cases: each architecture and each (eps, delta) of the mode.

    Parameters
    ----------
    quick : bool, default False
        :data:`QUICK` (one architecture, 40 trials, eps = delta = 0.1:
        enough for "consistent" to survive Holm over a run of a few dozen tests) instead of
        :data:`FULL`.
    rng : int, default 0
        Base seed.
    store_dir : path-like, optional
        Folder of the resumable results file ``dacunha2022[_quick].jsonl``.
    progress : bool or None
        Progress bars on stderr.

    Returns
    -------
    list of CheckResult
    """
    mode = QUICK if quick else FULL
    store = store_path(store_dir, NAME, quick)
    return [
        check(a, eps, delta, trials=mode["trials"], rng=rng, store=store, progress=progress)
        for a in mode["architectures"]
        for eps, delta in mode["cases"]
    ]
