"""Otsuka et al. (AAAI-26): strong lottery tickets for multi-head attention (Theorem 3).

Claim (Otsuka, Chijiwa, Okoshi, Fujiki, Takeuchi, Motomura, "The Strong Lottery
Ticket Hypothesis for Multi-Head Attention Mechanisms", AAAI-26, arXiv
2511.04217, Theorem 3, with its Lemma 4/7 and Lemma 5/8; statement as confirmed
in ``../shared/THEORY.md``). A target attention with H heads, input width d1,
output width d2 and per-head spectral norms of the merged matrices ``W_QK =
W_Q W_K^T / sqrt(d_K)`` and ``W_VO = W_V W_O`` at most 1 is, with probability at
least ``1 - eps``, within ``eps`` of a mask of a random attention whose query/key
entries are U[-n_K^(1/4), n_K^(1/4)] and value/output entries U[-1, 1], in the
metric ``max_i ||Attn_S(X)_i - Attn_T(X)_i||_2`` over every sequence whose tokens
have norm at most ``alpha >= max(sqrt d1, sqrt d2)``, every length and every
mask, once ``n_K >= d1 C log(8 H alpha^3 d1^(3/2) / eps)`` and ``n_V >= d1 C
log(2 H alpha d1 sqrt(d2) / eps)`` (:func:`slth.bounds.otsuka2025_widths`; the
paper gives no value of C, slth's is :data:`slth.bounds.OTSUKA2025_C`).

What is measured (three claims)
-------------------------------
* **Theorem 3** (:func:`check`): per trial a random target
  (:func:`hypothesis_target`: every head's merged matrices scaled to spectral
  norm 1, the hypothesis at its boundary) and a seeded source, pruned by
  :func:`slth.constructions.otsuka2025.construct` at the theorem's widths (eps
  mode: every merged entry solved to its tolerance; a missed tolerance is
  counted, not raised). The token error is bracketed per trial: the certified
  bound :func:`slth.constructions.otsuka2025.token_error_bound` at ``alpha``
  (a rigorous upper bound, for every T and mask) and the largest error on
  random sequences whose tokens have norm exactly ``alpha`` (a lower bound).
  ``#(certified <= eps)`` bounds the success count from below,
  ``#(certified <= eps or sampled <= eps)`` from above
  (:func:`proofs_check._core.success_bounds`); the Clopper–Pearson interval,
  the per-case verdict (:func:`proofs_check._core.rate_verdict`: "violated"
  only from the upper count) and the family-wise revision (Holm, by
  :func:`proofs_check.run_checks`) are those of every check. A sampled error
  above its certificate is a bug and makes the verdict "violated"
  (``basis = "sanity"``).
* **Linear two-for-one lemma** (Lemma 4/7, :func:`check_lemma`): a random
  ``W`` (d2 x d1, spectral norm 1) is the value/output merged matrix of a
  single-head target whose query weights are zero (so its query/key part is
  met exactly by the empty subset); at the lemma's width ``n = max(d1,
  ceil(d1 C ln(d1 d2 / eps)))`` the trial succeeds when every entry of
  ``|W_VO(source * mask) - W|`` is at most ``eps / (d1 d2)`` (exactly decided:
  the realised errors of :func:`slth.constructions.otsuka2025.merged_errors`);
  claimed rate ``1 - eps``, same statistics.
* **Softmax perturbation lemma** (Lemma 5/8, :func:`check_softmax`): an
  inequality proved for every instance, so it is checked by arithmetic on N
  random instances (not a statistical result): for scores ``x`` (length T), a
  perturbation ``||e||_max <= e_max <= 1/2``, values ``X`` (T x d1) with entries
  in ``[-alpha, alpha]`` and any mask with a nonempty row, both published forms
  ``||softmax(x; a) X - softmax(x + e; a) X||_2 <= 4 sqrt(d1) alpha e_max`` and
  ``<= sqrt(d1) alpha (e^(2 e_max) - 1)``. Instances include the extremes
  (``e`` at ``+-e_max``, ``X`` at ``+-alpha``, ``e_max = 1/2``, one-entry masks).
  Verdict :data:`proofs_check._core.HOLDS` (``basis = "arithmetic"``) when every
  instance satisfies both forms up to a relative ``1e-12`` of rounding, else
  "violated" (``basis = "sanity"``: a counterexample refutes the lemma or
  exposes a bug), never revised by Holm.

Empirical constant
------------------
Widths at different C come from different sources (a fresh draw per width, not
nested), so success is not coupled across C and the bracket of
:func:`proofs_check._core.threshold_bracket` is not valid;
``constant_interval`` stays None. :func:`scan_C` measures, uncoupled, the
smallest C on a grid of 0.5 whose measured rate reaches ``1 - eps`` (the full
mode records it in the first case's ``details["C_scan"]``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slth import InputError, spawn
from slth import bounds as B
from slth.constructions import otsuka2025 as ot
from slth.nets import Network
from slth.nets.attention import MultiHeadAttention, merged_matrices
from slth.stats import clopper_pearson
from slth.sweeps import run_sweep

from ._core import (
    HOLDS,
    VIOLATION_FACTOR,
    CheckResult,
    rate_p_values,
    rate_verdict,
    store_path,
    success_bounds,
    trials_needed,
)
from .dacunha2022 import one_blas_thread
from .pensia2020 import bounds_sanity, summary

__all__ = [
    "NAME",
    "PAPER",
    "STATEMENT",
    "check",
    "check_lemma",
    "check_softmax",
    "hypothesis_target",
    "lemma_target",
    "lemma_width",
    "run",
    "sampled_token_error",
    "scan_C",
    "softmax_instances",
    "trial_records",
]

NAME = "otsuka2025"
PAPER = (
    "Otsuka, Chijiwa, Okoshi, Fujiki, Takeuchi, Motomura 2025, AAAI-26 (arXiv 2511.04217), "
    "Theorem 3, Lemma 4/7 (linear two-for-one), Lemma 5/8 (softmax perturbation)"
)
STATEMENT = (
    "A random multi-head attention with query/key width n_K >= d1 C log(8 H alpha^3 d1^(3/2) "
    "/ eps) and value width n_V >= d1 C log(2 H alpha d1 sqrt(d2) / eps) per head (query/key "
    "entries U[-n_K^(1/4), n_K^(1/4)], value/output U[-1, 1]) contains with probability >= "
    "1 - eps a mask within eps (max over tokens, l2) of any target attention whose per-head "
    "merged matrices have spectral norm <= 1, for all sequences with token norms <= alpha, "
    "all lengths and all masks."
)

#: Head widths of the random targets (query/key and value per head).
TARGET_HEAD_DIMS = (2, 2)
#: Sequences and length of the sampled lower bound per trial.
SAMPLES: dict[str, int] = {"sequences": 64, "T": 4}
QUICK: dict[str, Any] = {
    "trials": 40,
    "theorem": [((2, 1, 1), 0.1)],
    "lemma": [((2, 1), 0.1)],
    "softmax": 2000,
}
FULL: dict[str, Any] = {
    "trials": 200,
    "theorem": [((2, 1, 1), 0.1), ((2, 2, 2), 0.1), ((4, 4, 2), 0.1), ((2, 1, 1), 0.05)],
    "lemma": [((2, 1), 0.1), ((4, 4), 0.1), ((8, 8), 0.05)],
    "softmax": 100_000,
    "C_grid": [float(c) for c in np.arange(0.5, 6.01, 0.5)],
    "C_trials": 60,
}
_CHUNK = 20
_MARGIN = 1.0 + 2.0 ** -40  # a relative margin below 1 that rounding cannot cross
_CONSTANT_NOTE = (
    "not bracketed: sources at different widths are separate draws (not nested), so success "
    "is not coupled across C; see details['C_scan'] (full mode) for the uncoupled scan"
)


# ----------------------------------------------------------------------------- targets
def _check_dims(d1: Any, d2: Any, heads: Any) -> tuple[int, int, int]:
    for nm, v in (("d1", d1), ("d2", d2), ("heads", heads)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise InputError(f"`{nm}` must be an int >= 1; received {v!r}")
    return int(d1), int(d2), int(heads)


def _check_unit(name: str, value: Any) -> float:
    if not 0.0 < float(value) < 1.0:
        raise InputError(f"`{name}` must lie in (0, 1); received {value!r}")
    return float(value)


def hypothesis_target(d1: int, d2: int, heads: int, seed: int, *, T: int = 4) -> Network:
    """Random attention target with every head's merged matrices of spectral norm 1.

    Parameters
    ----------
    d1, d2, heads : int
        Input width, output width, number of heads (>= 1).
    seed : int
        Seed of :meth:`slth.nets.Network.random`.
    T : int, default 4
        Sequence length of the network's input shape.

    Returns
    -------
    Network
        ``MultiHeadAttention(d1, d2, heads, 2, 2)`` without biases; head h's
        query and key rows divided by ``sqrt(||qk_h||_2)`` and its value rows
        and output columns by ``sqrt(||vo_h||_2)`` (times a relative ``2^-40``
        margin), so ``||qk_h||_2, ||vo_h||_2 = 1 - O(2^-40)``: Theorem 3's
        hypothesis at its boundary.
    """
    d1, d2, heads = _check_dims(d1, d2, heads)
    dqk, dv = TARGET_HEAD_DIMS
    lay = MultiHeadAttention(d1, d2, heads, dqk, dv)
    net = Network.random([lay], input_shape=(int(T), d1), rng=int(seed))
    p = {k.split(".")[-1]: np.asarray(v, dtype=float) for k, v in net.params.items()}
    qk, vo = merged_matrices(lay, p)
    sq = np.repeat([math.sqrt(np.linalg.norm(M, 2) * _MARGIN) for M in qk], dqk)
    sv = np.repeat([math.sqrt(np.linalg.norm(M, 2) * _MARGIN) for M in vo], dv)
    new = {"q_weight": p["q_weight"] / sq[:, None], "k_weight": p["k_weight"] / sq[:, None],
           "v_weight": p["v_weight"] / sv[:, None], "out_weight": p["out_weight"] / sv[None, :]}
    return net.with_params({k: new[k.split(".")[-1]] for k in net.params})


def lemma_target(d1: int, d2: int, seed: int) -> Network:
    """Single-head target whose ``W_VO`` is a random ``d1 x d2`` matrix of spectral norm 1.

    The query weights are zero, so ``W_QK = 0`` and every query/key instance is
    met exactly by the empty subset: only the value/output factor pair (Lemma
    4/7 with ``W~_1 = W_V``, ``W~_2 = W_O``, both U[-1, 1]) is exercised.

    Parameters
    ----------
    d1, d2 : int
        Input and output widths (>= 1).
    seed : int

    Returns
    -------
    Network
        ``MultiHeadAttention(d1, d2, 1, 1, d1)`` (value width d1, so ``W_VO =
        v_weight^T out_weight^T`` can be any d1 x d2 matrix).
    """
    d1, d2, _ = _check_dims(d1, d2, 1)
    lay = MultiHeadAttention(d1, d2, 1, 1, d1)
    net = Network.random([lay], input_shape=(2, d1), rng=int(seed))
    p = {k.split(".")[-1]: np.asarray(v, dtype=float) for k, v in net.params.items()}
    s = math.sqrt(np.linalg.norm(p["v_weight"].T @ p["out_weight"].T, 2) * _MARGIN)
    new = {"q_weight": np.zeros_like(p["q_weight"]), "k_weight": p["k_weight"],
           "v_weight": p["v_weight"] / s, "out_weight": p["out_weight"] / s}
    return net.with_params({k: new[k.split(".")[-1]] for k in net.params})


def lemma_width(d1: int, d2: int, eps: float, *, C: float = B.OTSUKA2025_C) -> int:
    """The width of Lemma 4/7: ``max(d1, ceil(d1 C ln(d1 d2 / eps)))``."""
    d1, d2, _ = _check_dims(d1, d2, 1)
    e = _check_unit("eps", eps)
    return max(d1, math.ceil(d1 * float(C) * math.log(d1 * d2 / e)))


# ----------------------------------------------------------------------------- lower bound
def sampled_token_error(target: Network, ticket: Any, alpha: float, g: np.random.Generator,
                        *, sequences: int = SAMPLES["sequences"],
                        T: int = SAMPLES["T"]) -> float:
    """Largest token error ``max_i ||g(X)_i - f(X)_i||_2`` on random sequences (a lower bound).

    Tokens are uniform on the sphere of radius ``alpha`` (norm exactly alpha,
    allowed by the theorem), so the maximum found is a valid lower bound on the
    sup over the alpha-ball.

    Parameters
    ----------
    target : Network
    ticket : Ticket
    alpha : float
    g : numpy.random.Generator
    sequences, T : int
        Number of sequences and their length.

    Returns
    -------
    float
    """
    d = int(target.input_shape[1])
    x = g.normal(size=(int(sequences), int(T), d))
    x *= float(alpha) / np.linalg.norm(x, axis=-1, keepdims=True)
    diff = ot.sequence_forward(ticket, x) - ot.sequence_forward(target, x)
    return float(np.linalg.norm(diff, axis=-1).max())


# ----------------------------------------------------------------------------- trials
def _theorem_trial(config: dict[str, Any], g: np.random.Generator) -> dict[str, Any]:
    seed_t, seed_s = (int(s) for s in g.integers(0, 2**31 - 1, size=2))
    d1, d2, H = config["d1"], config["d2"], config["heads"]
    alpha, eps = config["alpha"], config["eps"]
    target = hypothesis_target(d1, d2, H, seed_t)
    ticket = ot.construct(target, n_qk=config.get("n_qk"), n_v=config.get("n_v"), eps=eps,
                          alpha=alpha, C=config["C"], rng=seed_s, on_failure="report")
    cert = ot.token_error_bound(target, ticket, alpha=alpha)
    tq, tv = ot.tolerances(d1, d2, H, alpha, eps)
    me = ot.merged_errors(target, ticket)
    return {
        "certified": float(cert),
        "adversarial": sampled_token_error(target, ticket, alpha, g),
        "n_qk": int(ticket.params["n_qk"]),
        "n_v": int(ticket.params["n_v"]),
        "n_failed": int(ticket.params["n_failed"]),
        "entries_within_tolerance": bool(me["layers.0.qk"].max() <= tq
                                         and me["layers.0.vo"].max() <= tv),
        "merged_norm_max": float(ticket.params["assumptions"]["max_merged_spectral_norm"]),
        "n_source_params": int(ticket.n_source_params),
        "kept": int(ticket.n_kept),
    }


def _lemma_trial(config: dict[str, Any], g: np.random.Generator) -> dict[str, Any]:
    seed_t, seed_s = (int(s) for s in g.integers(0, 2**31 - 1, size=2))
    d1, d2, n, tol = config["d1"], config["d2"], config["n"], config["tol"]
    target = lemma_target(d1, d2, seed_t)
    ticket = ot.construct(target, n_qk=d1, n_v=n, weight_eps=tol, rng=seed_s,
                          on_failure="report")
    me = ot.merged_errors(target, ticket)
    err = float(me["layers.0.vo"].max())
    return {"max_entry_error": err, "qk_error": float(me["layers.0.qk"].max()),
            "success": bool(err <= tol)}


_TASKS = {"theorem": _theorem_trial, "lemma": _lemma_trial}


def _chunk_task(config: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    task = _TASKS[config["kind"]]
    with one_blas_thread():
        return {"trials": [task(config, g) for g in spawn(rng, config["size"])]}


def trial_records(config: dict[str, Any], *, trials: int, rng: int = 0,
                  store: str | Path | None = None, progress: bool | None = None,
                  chunk_size: int = _CHUNK) -> list[dict[str, Any]]:
    """Seeded trials of one case (resumable rows of :mod:`slth.sweeps`).

    Parameters
    ----------
    config : dict
        ``kind`` ("theorem" or "lemma") and the case's JSON parameters.
    trials : int
        Number of trials >= 1.
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
        One record per trial.
    """
    if isinstance(trials, bool) or int(trials) < 1 or int(chunk_size) < 1:
        raise InputError(f"`trials` and `chunk_size` must be ints >= 1; received {trials!r}, "
                         f"{chunk_size!r}")
    if config.get("kind") not in _TASKS:
        raise InputError(f"`config['kind']` must be one of {sorted(_TASKS)}; received "
                         f"{config.get('kind')!r}")
    sizes = [int(chunk_size)] * (int(trials) // int(chunk_size))
    if int(trials) % int(chunk_size):
        sizes.append(int(trials) % int(chunk_size))
    configs = [{"check": NAME, **config, "chunk": i, "size": s} for i, s in enumerate(sizes)]
    res = run_sweep(_chunk_task, configs, path=store, rng=rng, progress=progress,
                    desc=f"{NAME} {config['kind']}")
    return [t for r in res.results for t in r["trials"]]


def _record(*, case: str, claim: str, claimed: float, k_low: int, k_high: int, n: int,
            details: dict[str, Any], lower: np.ndarray | None, upper: np.ndarray | None,
            violation_factor: float, confidence: float, t0: float) -> CheckResult:
    verdict, ci, reason = rate_verdict(k_low, k_high, n, claimed,
                                       violation_factor=violation_factor, confidence=confidence)
    p_values = rate_p_values(k_low, k_high, n, claimed, violation_factor=violation_factor)
    broken = 0
    if lower is not None and upper is not None:
        verdict, reason, broken = bounds_sanity(verdict, reason, lower, upper)
    full = {
        **details,
        "measured_is": "exact" if k_low == k_high else "lower bound",
        "successes_low": int(k_low),
        "successes_high": int(k_high),
        "successes": int(k_low),
        "bound_inconsistencies": broken,
        "constant": _CONSTANT_NOTE,
        "trials_needed": trials_needed(claimed, violation_factor=violation_factor,
                                       confidence=confidence),
        "violation_factor": float(violation_factor),
    }
    return CheckResult(
        name=NAME, case=case, paper=PAPER, statement=STATEMENT, claim=claim, claimed=claimed,
        measured=k_low / n, interval=ci, confidence=float(confidence), trials=n,
        empirical_constant=None, constant_interval=None,
        verdict=verdict,  # type: ignore[arg-type]
        reason=reason, details=full, runtime_s=time.perf_counter() - t0, p_values=p_values,
        basis="sanity" if broken else "statistical",
    )


# ----------------------------------------------------------------------------- Theorem 3
def check(
    d1: int = 2,
    d2: int = 1,
    heads: int = 1,
    eps: float = 0.1,
    *,
    trials: int = 200,
    C: float = B.OTSUKA2025_C,
    n_qk: int | None = None,
    n_v: int | None = None,
    violation_factor: float = VIOLATION_FACTOR,
    confidence: float = 0.95,
    rng: int = 0,
    store: str | Path | None = None,
    progress: bool | None = None,
    chunk_size: int = _CHUNK,
) -> CheckResult:
    """Theorem 3 for one (d1, d2, H, eps) at the theorem's widths.

    Parameters
    ----------
    d1, d2, heads : int, default 2, 1, 1
        Input width, output width, number of heads.
    eps : float, default 0.1
        Accuracy and failure probability, in (0, 1); ``alpha = max(sqrt d1,
        sqrt d2)`` (the theorem's smallest).
    trials : int, default 200
        Seeded independent trials (one target and one source each).
    C : float, default :data:`slth.bounds.OTSUKA2025_C`
        Constant of the widths.
    n_qk, n_v : int, optional
        Widths overriding the theorem's (an under-sized width must not come out
        "consistent"); the tolerances still come from ``eps``.
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
        ``measured``: fraction certified within eps (a lower bound on the rate);
        ``details``: widths, tolerances, error summaries, the count of trials
        with every merged entry within its tolerance.
    """
    t0 = time.perf_counter()
    d1, d2, heads = _check_dims(d1, d2, heads)
    eps = _check_unit("eps", eps)
    for nm, v in (("n_qk", n_qk), ("n_v", n_v)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer))
                              or v < d1):
            raise InputError(f"`{nm}` must be an int >= d1 = {d1} or None; received {v!r}")
    if not (math.isfinite(float(C)) and float(C) > 0):
        raise InputError(f"`C` must be a finite number > 0; received {C!r}")
    alpha = max(math.sqrt(d1), math.sqrt(d2))
    nq_th, nv_th = B.otsuka2025_widths(d1, d2, heads, alpha, eps, C=float(C))
    config: dict[str, Any] = {"kind": "theorem", "d1": d1, "d2": d2, "heads": heads,
                              "eps": eps, "alpha": alpha, "C": float(C)}
    if n_qk is not None:
        config["n_qk"] = int(n_qk)
    if n_v is not None:
        config["n_v"] = int(n_v)
    recs = trial_records(config, trials=trials, rng=rng, store=store, progress=progress,
                         chunk_size=chunk_size)
    cert = np.array([r["certified"] for r in recs], dtype=float)
    adv = np.array([r["adversarial"] for r in recs], dtype=float)
    counts = success_bounds(cert, adv, eps)
    claimed = 1.0 - eps
    nq, nv = recs[0]["n_qk"], recs[0]["n_v"]
    override = n_qk is not None or n_v is not None
    tq, tv = ot.tolerances(d1, d2, heads, alpha, eps)
    details = {
        "n": f"n_K={nq}, n_V={nv}",
        "n_qk": nq, "n_v": nv,
        "theorem_widths": [int(nq_th), int(nv_th)],
        "width_from": "override" if override else "eps",
        "C": None if override else float(C),
        "d1": d1, "d2": d2, "heads": heads, "eps": eps, "alpha": alpha,
        "target_head_dims": list(TARGET_HEAD_DIMS),
        "tolerances": [tq, tv],
        "entries_within_tolerance": int(sum(r["entries_within_tolerance"] for r in recs)),
        "tolerance_failures": int(sum(r["n_failed"] > 0 for r in recs)),
        "merged_norm_max": max(r["merged_norm_max"] for r in recs),
        "certified": summary(cert),
        "adversarial": summary(adv),
        "adversarial_is": (f"largest token error on {SAMPLES['sequences']} random sequences "
                           f"of T = {SAMPLES['T']} tokens of norm alpha (a lower bound)"),
        "n_source_params": int(recs[0]["n_source_params"]),
        "kept_median": float(np.median([r["kept"] for r in recs])),
        "seed": rng,
        "claim_short": f"P(err <= {eps:g}) >= {claimed:g}",
    }
    width = (f"n_K = {nq}, n_V = {nv} (Theorem 3's widths at C = {float(C):g})" if not override
             else f"n_K = {nq}, n_V = {nv} (override; theorem: {nq_th}, {nv_th})")
    return _record(
        case=f"Thm 3, d1={d1}, d2={d2}, H={heads}, eps={eps:g}"
             + (f", n_K={nq}, n_V={nv}" if override else ""),
        claim=(f"P(max_i ||Attn_S(X)_i - Attn_T(X)_i|| <= {eps:g} for all X with token norms "
               f"<= alpha = {alpha:.4g}) >= {claimed:g} at {width}; successes bracketed by "
               "certified <= eps and sampled <= eps"),
        claimed=claimed, k_low=counts.low, k_high=counts.high, n=len(recs), details=details,
        lower=adv, upper=cert, violation_factor=violation_factor, confidence=confidence,
        t0=t0)


# ----------------------------------------------------------------------------- Lemma 4/7
def check_lemma(
    d1: int = 2,
    d2: int = 1,
    eps: float = 0.1,
    *,
    trials: int = 200,
    C: float = B.OTSUKA2025_C,
    n: int | None = None,
    violation_factor: float = VIOLATION_FACTOR,
    confidence: float = 0.95,
    rng: int = 0,
    store: str | Path | None = None,
    progress: bool | None = None,
    chunk_size: int = _CHUNK,
) -> CheckResult:
    """Lemma 4/7 (linear two-for-one): every entry within ``eps / (d1 d2)`` at the lemma's width.

    Parameters
    ----------
    d1, d2 : int, default 2, 1
        The merged matrix is ``d1 x d2`` (the lemma's ``W`` transposed).
    eps : float, default 0.1
        In (0, 1); tolerance ``eps / (d1 d2)``, claimed rate ``1 - eps``.
    trials : int, default 200
    C : float, default :data:`slth.bounds.OTSUKA2025_C`
        Constant of the lemma's width :func:`lemma_width`.
    n : int, optional
        Width overriding the lemma's (>= d1).
    violation_factor, confidence : float
    rng : int, default 0
    store : path-like, optional
    progress : bool or None
    chunk_size : int, default 20

    Returns
    -------
    CheckResult
        Success decided exactly (``measured_is = "exact"``).
    """
    t0 = time.perf_counter()
    d1, d2, _ = _check_dims(d1, d2, 1)
    eps = _check_unit("eps", eps)
    if not (math.isfinite(float(C)) and float(C) > 0):
        raise InputError(f"`C` must be a finite number > 0; received {C!r}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer))
                          or n < d1):
        raise InputError(f"`n` must be an int >= d1 = {d1} or None; received {n!r}")
    width = lemma_width(d1, d2, eps, C=float(C)) if n is None else int(n)
    tol = eps / (d1 * d2)
    config = {"kind": "lemma", "d1": d1, "d2": d2, "eps": eps, "n": width, "tol": tol}
    recs = trial_records(config, trials=trials, rng=rng, store=store, progress=progress,
                         chunk_size=chunk_size)
    k = int(sum(r["success"] for r in recs))
    errs = np.array([r["max_entry_error"] for r in recs], dtype=float)
    claimed = 1.0 - eps
    details = {
        "n": width,
        "width_from": "override" if n is not None else "lemma",
        "C": None if n is not None else float(C),
        "d1": d1, "d2": d2, "eps": eps, "tolerance": tol,
        "units_per_block": width // d1,
        "max_entry_error": summary(errs),
        "qk_error_max": max(r["qk_error"] for r in recs),
        "seed": rng,
        "claim_short": f"P(max entry err <= eps/(d1 d2)) >= {claimed:g}",
    }
    how = (f"n = {width} (d1 C ln(d1 d2 / eps) at C = {float(C):g})" if n is None
           else f"n = {width} (override)")
    return _record(
        case=f"Lemma 4/7, d1={d1}, d2={d2}, eps={eps:g}" + ("" if n is None else f", n={n}"),
        claim=(f"P(||W - (W~_2 . M_2)(W~_1 . M_1)||_max <= eps / (d1 d2) = {tol:.4g}) >= "
               f"{claimed:g} at {how}, W~_1, W~_2 entries U[-1, 1], ||W||_2 = 1"),
        claimed=claimed, k_low=k, k_high=k, n=len(recs), details=details, lower=None,
        upper=None, violation_factor=violation_factor, confidence=confidence, t0=t0)


# ----------------------------------------------------------------------------- Lemma 5/8
def _masked_softmax(s: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    z = np.where(allowed, s, -np.inf)
    z = z - z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=-1, keepdims=True)


def softmax_instances(N: int, rng: Any = 0, *, T_max: int = 64, d_max: int = 8
                      ) -> dict[str, np.ndarray]:
    """N random instances of the softmax perturbation lemma (Lemma 5/8), grouped by shape.

    Parameters
    ----------
    N : int
        Number of instances (>= 1).
    rng : int or numpy.random.Generator
    T_max, d_max : int
        Largest sequence length and value width.

    Returns
    -------
    dict of str to numpy.ndarray
        Per instance: ``diff`` (``||softmax(x; a) X - softmax(x + e; a) X||_2``),
        ``bound_linear`` (``4 sqrt(d1) alpha e_max``), ``bound_exp``
        (``sqrt(d1) alpha (e^(2 e_max) - 1)``), ``T``, ``d1``, ``alpha``,
        ``e_max``, ``kept`` (attended entries of the row). A quarter of the
        instances are extreme: ``e = +-e_max``, ``X = +-alpha`` entrywise, and
        ``e_max = 1/2`` or a one-entry mask.
    """
    if isinstance(N, bool) or not isinstance(N, (int, np.integer)) or N < 1:
        raise InputError(f"`N` must be an int >= 1; received {N!r}")
    g = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    out: dict[str, list[np.ndarray]] = {k: [] for k in
                                        ("diff", "bound_linear", "bound_exp", "T", "d1",
                                         "alpha", "e_max", "kept")}
    left = int(N)
    while left:
        T = int(g.integers(1, T_max + 1))
        d = int(g.integers(1, d_max + 1))
        b = min(left, 256)
        left -= b
        alpha = np.exp(g.uniform(np.log(0.1), np.log(10.0), b))
        e_max = g.uniform(0.0, 0.5, b)
        scale = np.exp(g.uniform(np.log(0.1), np.log(20.0), b))
        x = g.normal(size=(b, T)) * scale[:, None]
        extreme = g.random(b) < 0.25
        e = g.uniform(-1.0, 1.0, (b, T))
        e = np.where(extreme[:, None], np.sign(e), e) * e_max[:, None]
        X = g.uniform(-1.0, 1.0, (b, T, d))
        X = np.where(extreme[:, None, None], np.sign(X), X) * alpha[:, None, None]
        e_max = np.where(extreme & (g.random(b) < 0.5), 0.5, e_max)
        allowed = g.random((b, T)) < g.uniform(0.05, 1.0, (b, 1))
        one = extreme & (g.random(b) < 0.3)
        allowed[one] = False
        allowed[np.arange(b), g.integers(0, T, b)] = True   # every row keeps an entry
        dp = _masked_softmax(x, allowed) - _masked_softmax(x + e, allowed)
        diff = np.linalg.norm(np.einsum("bt,btd->bd", dp, X), axis=-1)
        out["diff"].append(diff)
        out["bound_linear"].append(4.0 * math.sqrt(d) * alpha * e_max)
        out["bound_exp"].append(math.sqrt(d) * alpha * np.expm1(2.0 * e_max))
        out["T"].append(np.full(b, T))
        out["d1"].append(np.full(b, d))
        out["alpha"].append(alpha)
        out["e_max"].append(e_max)
        out["kept"].append(allowed.sum(axis=-1))
    return {k: np.concatenate(v) for k, v in out.items()}


def check_softmax(N: int = 100_000, *, rng: int = 0, T_max: int = 64, d_max: int = 8,
                  rel_tol: float = 1e-12) -> CheckResult:
    """Lemma 5/8 (softmax perturbation) by arithmetic on N random instances (both forms).

    Parameters
    ----------
    N : int, default 100000
        Number of instances.
    rng : int, default 0
        Seed.
    T_max, d_max : int
        Largest length and value width.
    rel_tol : float, default 1e-12
        Relative rounding allowance of the comparison.

    Returns
    -------
    CheckResult
        Verdict :data:`proofs_check._core.HOLDS` (``basis = "arithmetic"``)
        when every instance satisfies both forms, else "violated" (``basis =
        "sanity"``); ``details``: the number of violations per form and the
        largest ratio ``diff / bound`` of each.
    """
    t0 = time.perf_counter()
    inst = softmax_instances(N, rng, T_max=T_max, d_max=d_max)
    diff = inst["diff"]
    bad_lin = diff > inst["bound_linear"] * (1.0 + rel_tol)
    bad_exp = diff > inst["bound_exp"] * (1.0 + rel_tol)
    pos = inst["e_max"] > 0
    r_lin = float(np.max(diff[pos] / inst["bound_linear"][pos], initial=0.0))
    r_exp = float(np.max(diff[pos] / inst["bound_exp"][pos], initial=0.0))
    n_bad = int(np.count_nonzero(bad_lin | bad_exp))
    n = int(diff.size)
    if n_bad:
        verdict, basis = "violated", "sanity"
        reason = (f"{int(bad_lin.sum())} instances break 4 sqrt(d1) alpha e_max and "
                  f"{int(bad_exp.sum())} break sqrt(d1) alpha (e^(2 e_max) - 1): a "
                  "counterexample to the lemma or a bug")
    else:
        verdict, basis = HOLDS, "arithmetic"
        reason = (f"all {n} random instances satisfy both forms (largest diff / bound: "
                  f"{r_lin:.3g} for 4 sqrt(d1) alpha e_max, {r_exp:.3g} for sqrt(d1) alpha "
                  "(e^(2 e_max) - 1)); an inequality checked instance by instance, not a "
                  "statistical result")
    lo, hi = clopper_pearson(n - n_bad, n, 0.95)
    details = {
        "n": n,
        "claim_short": "both forms, every instance",
        "instances": n,
        "violations_linear": int(bad_lin.sum()),
        "violations_exp": int(bad_exp.sum()),
        "max_ratio_linear": r_lin,
        "max_ratio_exp": r_exp,
        "T_max": int(T_max), "d_max": int(d_max), "rel_tol": float(rel_tol),
        "one_entry_masks": int(np.count_nonzero(inst["kept"] == 1)),
        "e_max_at_half": int(np.count_nonzero(inst["e_max"] == 0.5)),
        "measured_is": "exact",
        "note": "deterministic property: the interval is descriptive only, no verdict is "
                "drawn from it",
        "seed": rng,
    }
    return CheckResult(
        name=NAME, case="Lemma 5/8 softmax perturbation", paper=PAPER, statement=STATEMENT,
        claim=("for ||e||_max <= e_max <= 1/2, X entries in [-alpha, alpha], any mask with a "
               "nonempty row: ||softmax(x; a) X - softmax(x + e; a) X|| <= 4 sqrt(d1) alpha "
               "e_max and <= sqrt(d1) alpha (e^(2 e_max) - 1), on every one of "
               f"{n} random instances"),
        claimed=1.0, measured=(n - n_bad) / n, interval=(lo, hi), confidence=0.95, trials=n,
        empirical_constant=None, constant_interval=None,
        verdict=verdict,  # type: ignore[arg-type]
        reason=reason, details=details, runtime_s=time.perf_counter() - t0, basis=basis)


# ----------------------------------------------------------------------------- constant scan
def scan_C(d1: int = 2, d2: int = 1, heads: int = 1, eps: float = 0.1, *,
           Cs: Sequence[float] = FULL["C_grid"], trials: int = 60, rng: int = 0,
           store: str | Path | None = None, progress: bool | None = None
           ) -> dict[str, Any]:
    """Uncoupled scan of Theorem 3's constant: the certified success rate at each C.

    Parameters
    ----------
    d1, d2, heads : int
    eps : float
    Cs : sequence of float
        Constants to try (default 0.5, 1.0, ..., 6.0).
    trials : int, default 60
        Trials per C (fresh sources per C: not coupled).
    rng : int, default 0
    store : path-like, optional
    progress : bool or None

    Returns
    -------
    dict
        ``C``, ``widths`` (n_K, n_V), ``certified_successes``, ``rate``,
        ``ci_low`` per C, and ``smallest_C``: the smallest C whose measured
        certified rate reaches ``1 - eps`` (None when none does) and
        ``smallest_C_ci``: the smallest whose lower CI end does.
    """
    d1, d2, heads = _check_dims(d1, d2, heads)
    eps = _check_unit("eps", eps)
    alpha = max(math.sqrt(d1), math.sqrt(d2))
    rows: dict[str, list[Any]] = {"C": [], "widths": [], "certified_successes": [], "rate": [],
                                  "ci_low": []}
    for c in Cs:
        cfg = {"kind": "theorem", "d1": d1, "d2": d2, "heads": heads, "eps": eps,
               "alpha": alpha, "C": float(c)}
        recs = trial_records(cfg, trials=trials, rng=rng, store=store, progress=progress)
        k = int(sum(r["certified"] <= eps for r in recs))
        rows["C"].append(float(c))
        rows["widths"].append([recs[0]["n_qk"], recs[0]["n_v"]])
        rows["certified_successes"].append(k)
        rows["rate"].append(k / len(recs))
        rows["ci_low"].append(float(clopper_pearson(k, len(recs), 0.95)[0]))
    p0 = 1.0 - eps
    ok = [c for c, r in zip(rows["C"], rows["rate"]) if r >= p0]
    ok_ci = [c for c, r in zip(rows["C"], rows["ci_low"]) if r >= p0]
    return {**rows, "trials": int(trials), "smallest_C": min(ok) if ok else None,
            "smallest_C_ci": min(ok_ci) if ok_ci else None,
            "note": "uncoupled (fresh sources per C): a measured scan, not a bracket"}


# ----------------------------------------------------------------------------- run
def run(
    *,
    quick: bool = False,
    rng: int = 0,
    store_dir: str | Path | None = None,
    progress: bool | None = None,
) -> list[CheckResult]:
    """All cases: Theorem 3, Lemma 4/7 and Lemma 5/8.

    Parameters
    ----------
    quick : bool, default False
        :data:`QUICK` (one case of each, 40 trials, 2000 softmax instances;
        seconds) instead of :data:`FULL` (which also runs :func:`scan_C`).
    rng : int, default 0
        Base seed.
    store_dir : path-like, optional
        Folder of the resumable results file ``otsuka2025[_quick].jsonl``.
    progress : bool or None
        Progress bars on stderr.

    Returns
    -------
    list of CheckResult
    """
    mode = QUICK if quick else FULL
    store = store_path(store_dir, NAME, quick)
    out = [check(*dims, eps, trials=mode["trials"], rng=rng, store=store, progress=progress)
           for dims, eps in mode["theorem"]]
    if not quick:
        scan = scan_C(*mode["theorem"][0][0], mode["theorem"][0][1], Cs=mode["C_grid"],
                      trials=mode["C_trials"], rng=rng, store=store, progress=progress)
        out[0] = dataclasses.replace(out[0], details={**out[0].details, "C_scan": scan})
    out += [check_lemma(*dims, eps, trials=mode["trials"], rng=rng, store=store,
                        progress=progress) for dims, eps in mode["lemma"]]
    out.append(check_softmax(mode["softmax"], rng=rng))
    return out
