"""What the MLP theorem checks share: bounded targets, nested sources, per-weight thresholds.

The checks :mod:`proofs_check.pensia2020`, :mod:`proofs_check.pensia2020_layer`,
:mod:`proofs_check.pensia2020_lower_bound` and :mod:`proofs_check.malach2020`
build tickets with :mod:`slth.constructions` and evaluate them with
:mod:`slth.evaluate`. To find the *smallest* width that works without building
a ticket at every width, they also read the candidate products of each target
weight from the source's weights, following the hidden-unit layout documented
in :mod:`slth.constructions` (``_common``; shared by Pensia et al.'s construction and
the single-pair variant :mod:`slth.constructions.single_pair`):

* target layer i (``d_in -> d_out``) with ``n`` units per sign part is realised
  by source layers 2i (``A``, ``(2 n d_in, d_in)``) and 2i+1 (``B``,
  ``(d_out, 2 n d_in)``); hidden units ``j*2n .. j*2n + 2n - 1`` form block j,
  which reads ``x_j`` only;
* the positive-part instance of ``W_ij`` takes the first ``n`` units u of block
  j (in unit order) with ``A[u, j] > 0``, candidates ``B[i, u] A[u, j]``, target
  ``W_ij``; the negative-part instance the first ``n`` with ``A[u, j] < 0``,
  candidates ``B[i, u] |A[u, j]|``, target ``-W_ij``.

Nesting: the source with ``n`` units per part is cut out of one with ``N >= n``
by keeping the first ``2n`` units of every block
(:func:`slth.constructions.nested_source`). The
r-th right-sign unit of a block (0-based position p in the block) is then a
candidate exactly when ``n >= max(r, p // 2 + 1)``, its *entry width*, which is
nondecreasing in r: the candidates at ``n`` are a prefix of those at ``N``, so
an instance solved at ``n`` stays solved at every larger ``n`` and each
instance has a first sufficient ``n`` (:func:`first_units_subset`,
:func:`first_units_single`). ``tests/test_proofs_check_mlp.py`` checks these
readings against tickets built by the constructions themselves; each check also
counts disagreements with its own tickets (``details["proof_event_mismatches"]``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from slth import MLP, InputError
from slth.constructions import bounded_target, nested_source, source_widths
from slth.subset_sum import COVERAGE_MAX_N, EXACT_MAX_N, coverage_batch, solve_batch

__all__ = [
    "Candidates",
    "ConstantScan",
    "SingleCurve",
    "bounded_target",
    "certified_first_index",
    "coverage_single",
    "coverage_subset",
    "first_index",
    "first_units_single",
    "first_units_subset",
    "layer_candidates",
    "nested_source",
    "optimal_errors",
    "propagated_bound",
    "scan_constant",
    "single_errors",
    "source_params",
    "units_table",
]

#: Entry width of a candidate slot that holds no right-sign unit.
_NEVER = np.iinfo(np.int64).max // 4


def source_params(target: MLP, units: Sequence[int]) -> int:
    """Weights of the 2l-layer source for ``target`` with ``units[i]`` units per part."""
    w = source_widths(target, [int(u) for u in units])
    return int(sum(w[s] * w[s + 1] for s in range(len(w) - 1)))


@dataclass(frozen=True)
class Candidates:
    """Candidate products of one target layer's instances, right-sign units first.

    Attributes
    ----------
    values : numpy.ndarray
        float64 ``(2, d_out, d_in, M)`` with ``M = 2 N``: part 0 positive,
        part 1 negative; the products of the right-sign units of each block in
        unit order, then the other units (which never enter).
    enter : numpy.ndarray
        int64 ``(2, 1, d_in, M)``: the smallest units per part at which each
        slot is a candidate (nondecreasing along the last axis; a huge value for
        slots that never are: wrong sign, or past the first N of their sign).
        Broadcasts over outputs.
    targets : numpy.ndarray
        float64 ``(2, d_out, d_in)``: ``W`` and ``-W``.
    units : int
        N, the units per part of the source read.
    """

    values: np.ndarray
    enter: np.ndarray
    targets: np.ndarray
    units: int


def layer_candidates(source: MLP, target: MLP, layer: int, n: int) -> Candidates:
    """Candidates of target layer ``layer`` in a source with ``n`` units per part."""
    W = target.weights[layer]
    d_out, d_in = W.shape
    A, B = source.weights[2 * layer], source.weights[2 * layer + 1]
    if A.shape != (2 * n * d_in, d_in) or B.shape != (d_out, 2 * n * d_in):
        raise InputError(
            f"`source` layers {2 * layer}, {2 * layer + 1} must have shapes "
            f"{(2 * n * d_in, d_in)}, {(d_out, 2 * n * d_in)} for n={n}; "
            f"received {A.shape}, {B.shape}"
        )
    M = 2 * n
    rows = np.arange(d_in)[:, None] * M + np.arange(M)[None, :]
    a = A[rows, np.arange(d_in)[:, None]]                      # (d_in, M)
    ok = np.stack([a > 0.0, a < 0.0])                          # (2, d_in, M)
    order = np.argsort(~ok, axis=-1, kind="stable")            # right sign first
    ok_s = np.take_along_axis(ok, order, axis=-1)
    mag = np.where(ok_s, np.abs(np.take_along_axis(np.broadcast_to(a, ok.shape), order, -1)), 0)
    rank = np.arange(1, M + 1)
    enter = np.where(ok_s, np.maximum(rank, order // 2 + 1), _NEVER)
    enter = np.where(rank <= n, enter, _NEVER)                 # at most n per part
    b = B.reshape(d_out, d_in, M)
    vals = np.take_along_axis(b[None], order[:, None], axis=-1) * mag[:, None]
    return Candidates(vals, enter[:, None], np.stack([W, -W]), int(n))


def _flat(cands: Sequence[Candidates]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of values, entry widths and targets of several Candidates (same M)."""
    M = cands[0].values.shape[-1]
    if any(c.values.shape[-1] != M for c in cands):
        raise InputError(
            "`cands` must all read sources of the same width; received "
            f"{[c.units for c in cands]} units per part"
        )
    vals = np.concatenate([c.values.reshape(-1, M) for c in cands])
    enter = np.concatenate(
        [np.broadcast_to(c.enter, c.values.shape).reshape(-1, M) for c in cands]
    )
    tg = np.concatenate([c.targets.reshape(-1) for c in cands])
    return vals, enter, tg


def _split(flat: np.ndarray, cands: Sequence[Candidates]) -> list[np.ndarray]:
    sizes = np.cumsum([c.targets.size for c in cands])[:-1]
    return [o.reshape(c.targets.shape) for o, c in zip(np.split(flat, sizes), cands)]


def first_units_subset(
    cand: Candidates | Sequence[Candidates], tol: float, *, max_values: int = EXACT_MAX_N
) -> np.ndarray | list[np.ndarray]:
    """Smallest ``n`` whose candidates hold a subset within ``tol``, per instance.

    Parameters
    ----------
    cand : Candidates or sequence of Candidates
        From :func:`layer_candidates` (the largest source of the scan). A
        sequence (same width, e.g. one layer of many trials) is solved in one
        batch per prefix length.
    tol : float
        Per-weight tolerance > 0.
    max_values : int, default EXACT_MAX_N
        At most this many candidates are searched (eps-mode
        :func:`slth.subset_sum.solve_batch` is exact on them).

    Returns
    -------
    numpy.ndarray or list of numpy.ndarray
        int64 ``(2, d_out, d_in)`` per Candidates: 0 when the empty subset
        already is within ``tol``, ``N + 1`` when no candidate set of the
        source read is.
    """
    many = not isinstance(cand, Candidates)
    cands = list(cand) if many else [cand]
    vals, enter, tg = _flat(cands)
    N = cands[0].units
    count = (enter < _NEVER).sum(axis=1)
    # range of the subset sums of each prefix: [sum of negatives, sum of positives]
    top = np.cumsum(np.maximum(vals, 0.0), axis=1)
    bottom = np.cumsum(np.minimum(vals, 0.0), axis=1)
    out = np.full(tg.shape, N + 1, dtype=np.int64)
    out[np.abs(tg) <= tol] = 0
    active = np.flatnonzero(out > 0)
    for c in range(1, min(vals.shape[1], int(max_values)) + 1):
        active = active[count[active] >= c]
        if active.size == 0:
            break
        t = tg[active]
        reach = (t <= top[active, c - 1] + tol) & (t >= bottom[active, c - 1] - tol)
        rows = active[reach]
        if rows.size == 0:
            continue
        hit = rows[solve_batch(vals[rows, :c], tg[rows], eps=tol).success]
        out[hit] = enter[hit, c - 1]
        active = np.setdiff1d(active, hit, assume_unique=True)
    parts = _split(out, cands)
    return parts if many else parts[0]


def optimal_errors(
    cands: Sequence[Candidates],
    units: Sequence[int],
    *,
    floor: float | None = None,
    max_values: int = EXACT_MAX_N,
) -> list[np.ndarray]:
    """Each instance's optimal subset error at ``units[t]`` units per part of ``cands[t]``.

    The optimum over the candidates at that width (at most ``max_values`` of
    them: with more, the first ``max_values`` are used and the result is an
    upper bound). Nonincreasing in ``units[t]``: the property the C scan relies
    on. Targets outside the range of the subset sums get their error in closed
    form; the rest are solved with :func:`slth.subset_sum.solve_batch`, grouped
    by number of candidates (zeros pad shorter rows, leaving the optima unchanged).

    With ``floor`` given, returns ``max(optimum, floor)`` instead, found with
    eps-mode search at ``eps = floor`` (far cheaper: it stops at the first
    subset within ``floor``; an instance with none is solved to its optimum).
    Still nonincreasing in the units, and an upper bound on the optimum.

    Returns
    -------
    list of numpy.ndarray
        float64 ``(2, d_out, d_in)`` per Candidates.
    """
    vals, enter, tg = _flat(cands)
    per_row = np.concatenate([np.full(c.targets.size, int(n)) for c, n in zip(cands, units)])
    vals = np.where(enter <= per_row[:, None], vals, 0.0)[:, : int(max_values)]
    count = (vals != 0.0).sum(axis=1)
    top = np.maximum(vals, 0.0).sum(axis=1)
    bottom = np.minimum(vals, 0.0).sum(axis=1)
    err = np.where(tg > top, tg - top, np.where(tg < bottom, bottom - tg, 0.0))
    inside = np.flatnonzero((tg <= top) & (tg >= bottom))
    # the search costs ~2^(width/2) per row, padding included: group rows by
    # their number of candidates, rounded up to a multiple of 4
    bucket = np.maximum(4, -(-count // 4) * 4)
    for w in np.unique(bucket[inside]):
        rows = inside[bucket[inside] == w]
        err[rows] = solve_batch(vals[rows, : int(w)], tg[rows], eps=floor).errors
    if floor is not None:
        err = np.maximum(err, float(floor))
    return _split(err, cands)


def propagated_bound(weights: Sequence[np.ndarray], deltas: Sequence[np.ndarray]) -> float:
    """Error propagation of Pensia et al. (2020), proof of Theorem 1, from per-weight errors.

    The proof's recursion for a bias-free target on the unit ball
    (``e_l = ||Delta_l|| (r_{l-1} + e_{l-1}) + ||W_l|| e_{l-1}``,
    ``r_l = ||W_l|| r_{l-1}``), applied to error matrices computed without
    building a ticket: a rigorous upper bound on the sup error of masks with
    these per-weight errors. :func:`slth.evaluate.certified_bound` is at most
    this on the ticket (it may be tighter); tests check the inequality.
    """
    e, r = 0.0, 1.0
    for W, D in zip(weights, deltas):
        dn = float(np.linalg.svd(D, compute_uv=False)[0])
        wn = float(np.linalg.svd(W, compute_uv=False)[0])
        e = dn * (r + e) + wn * e
        r = wn * r
    return e


def first_units_single(cand: Candidates, tol: float) -> np.ndarray:
    """Smallest ``n`` whose candidates hold ONE within ``tol`` (single-pair selection).

    Returns int64 ``(2, d_out, d_in)``: 0 when keeping nothing is within ``tol``,
    ``N + 1`` when no candidate of the source read is.
    """
    hit = (cand.enter < _NEVER) & (np.abs(cand.values - cand.targets[..., None]) <= tol)
    first = np.where(hit, cand.enter, cand.units + 1).min(axis=-1)
    return np.where(np.abs(cand.targets) <= tol, 0, first).astype(np.int64)


def single_errors(cands: Sequence[Candidates], units: Sequence[int]) -> list[np.ndarray]:
    """Each instance's error with the closest single candidate at ``units[t]`` units per part.

    Keeping nothing (error ``|target|``) is allowed, as in
    :func:`slth.constructions.single_pair.select_single`. Nonincreasing in ``units[t]``.
    """
    out = []
    for c, n in zip(cands, units):
        d = np.where(c.enter <= int(n), np.abs(c.values - c.targets[..., None]), np.inf)
        out.append(np.minimum(d.min(axis=-1), np.abs(c.targets)))
    return out


@dataclass(frozen=True)
class SingleCurve:
    """Closest-single-candidate error of every instance after each number of candidates.

    Attributes
    ----------
    errors : numpy.ndarray
        float64 ``(2, d_out, d_in, M + 1)``: entry c is the error with the best
        of the first c candidates or none (c = 0: ``|target|``).
    enter : numpy.ndarray
        int64 ``(2, 1, d_in, M)``, as in :class:`Candidates`.
    units : int
        N, the units per part of the source read.
    """

    errors: np.ndarray
    enter: np.ndarray
    units: int

    @classmethod
    def of(cls, cand: Candidates) -> SingleCurve:
        """The curve of ``cand`` (one pass over its candidates)."""
        d = np.where(cand.enter < _NEVER, np.abs(cand.values - cand.targets[..., None]), np.inf)
        d = np.concatenate([np.abs(cand.targets)[..., None], d], axis=-1)
        return cls(np.minimum.accumulate(d, axis=-1), cand.enter, cand.units)

    def first_units(self, tol: float) -> np.ndarray:
        """Smallest units per part with error <= ``tol``, int64 ``(2, d_out, d_in)``.

        As :func:`first_units_single`: 0 when keeping nothing is within ``tol``,
        ``units + 1`` when no candidate is.
        """
        ok = self.errors <= tol
        c = ok.argmax(axis=-1)
        enter = np.broadcast_to(self.enter, self.errors[..., 1:].shape)
        at = np.take_along_axis(enter, np.maximum(c - 1, 0)[..., None], axis=-1)[..., 0]
        first = np.where(c == 0, 0, at)
        return np.where(ok.any(axis=-1), first, self.units + 1).astype(np.int64)

    def at(self, n: int) -> np.ndarray:
        """Errors at ``n`` units per part, ``(2, d_out, d_in)`` (= :func:`single_errors`)."""
        c = (self.enter <= int(n)).sum(axis=-1)                     # (2, 1, d_in)
        idx = np.broadcast_to(c, self.errors.shape[:-1])[..., None]
        return np.take_along_axis(self.errors, idx, axis=-1)[..., 0]


def coverage_subset(cand: Candidates, n: int, *, max_values: int = 20) -> np.ndarray:
    """Worst error, over every target in [-1, 1], of each instance's best subset at ``n``.

    Uses at most ``max_values`` (<= COVERAGE_MAX_N) candidates per instance;
    with more available the result is an upper bound (fewer values never
    cover better). Holds for every target at once (the instance's own target
    is ignored).

    Returns
    -------
    numpy.ndarray
        float64 ``(2, d_out, d_in)``.
    """
    k = min(int(max_values), COVERAGE_MAX_N, cand.values.shape[-1])
    vals = np.where(cand.enter <= int(n), cand.values, 0.0)[..., :k]
    return coverage_batch(vals.reshape(-1, k)).reshape(cand.targets.shape)


def coverage_single(cand: Candidates, n: int) -> np.ndarray:
    """Worst error, over every target in [-1, 1], of the closest single candidate (or none).

    For the sorted points ``{0} U {candidates at n}``: the largest of the
    distance from -1 to the smallest point, from the largest point to 1, and
    half the widest gap.
    """
    vals = np.where(cand.enter <= int(n), cand.values, 0.0)
    M = vals.shape[-1]
    flat = np.sort(np.concatenate([np.zeros((vals[..., 0].size, 1)), vals.reshape(-1, M)],
                                  axis=1), axis=1)
    gaps = np.diff(flat, axis=1).max(axis=1) / 2.0
    cov = np.maximum(np.maximum(flat[:, 0] + 1.0, 1.0 - flat[:, -1]), gaps)
    return cov.reshape(cand.targets.shape)


@dataclass(frozen=True)
class ConstantScan:
    """Smallest constant C of a width formula reaching a success level, from per-trial needs.

    Attributes
    ----------
    grid_step : float
        C is scanned on ``grid_step * k``, k = 1, 2, ..., ``k_max``.
    k_max : int
        Last grid index scanned.
    successes : dict of int to int
        Trials that succeed at ``C = grid_step * k`` (every layer's units at C
        reach the trial's need): nondecreasing in k.
    c_hat : float or None
        Smallest grid C whose measured rate reaches the level (None: none does).
    c_low, c_high : float, float or None
        Bracket from :func:`proofs_check._core.threshold_bracket`.
    """

    grid_step: float
    k_max: int
    successes: dict[int, int]
    c_hat: float | None
    c_low: float
    c_high: float | None


def units_table(units_at: Callable[[float], Sequence[int]], *, c_max: float,
                grid_step: float = 0.05) -> np.ndarray:
    """Units per layer at every grid constant ``C = k * grid_step``, k = 0..k_max.

    Returns int64 ``(k_max + 1, L)``; row 0 (C = 0) is all zeros. Only the
    grid points where some layer's units change are evaluated (``units_at`` is
    nondecreasing in C): a bisection between equal rows fills the rest.
    """
    k_max = max(1, int(np.floor(c_max / grid_step + 1e-9)))
    rows: dict[int, np.ndarray] = {}

    def row(k: int) -> np.ndarray:
        if k not in rows:
            rows[k] = np.asarray(units_at(k * grid_step), dtype=np.int64)
        return rows[k]

    def fill(a: int, b: int) -> None:
        if b - a <= 1:
            return
        if np.array_equal(row(a), row(b)):
            for k in range(a + 1, b):
                rows[k] = rows[a]
            return
        m = (a + b) // 2
        row(m)
        fill(a, m)
        fill(m, b)

    fill(1, k_max)
    return np.vstack([np.zeros_like(row(1)), *(row(k) for k in range(1, k_max + 1))])


def first_index(need: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Smallest grid index k whose units reach ``need`` in every layer (``k_max + 1``: none).

    ``need`` is int ``(trials, L)``; ``table`` from :func:`units_table`.
    """
    need = np.atleast_2d(np.asarray(need, dtype=np.int64))
    ok = (table[None, 1:, :] >= need[:, None, :]).all(axis=2)       # (trials, k_max)
    return np.where(ok.any(axis=1), ok.argmax(axis=1) + 1, table.shape[0]).astype(np.int64)


def scan_constant(first_k: np.ndarray, *, k_max: int, claimed: float, grid_step: float = 0.05,
                  confidence: float = 0.95) -> ConstantScan:
    """Smallest grid C whose success rate reaches ``claimed``, from per-trial first indices.

    Parameters
    ----------
    first_k : numpy.ndarray
        int ``(trials,)``: smallest grid index at which each trial succeeds
        (success is monotone in C), ``k_max + 1`` when none does.
    k_max : int
        Last grid index scanned.
    claimed : float
        Success level the constant must reach (``1 - delta``).
    grid_step : float, default 0.05
    confidence : float, default 0.95

    Returns
    -------
    ConstantScan
    """
    from ._core import threshold_bracket

    first_k = np.asarray(first_k, dtype=np.int64)
    successes = {k: int(np.count_nonzero(first_k <= k)) for k in range(1, int(k_max) + 1)}
    thr = threshold_bracket(successes, first_k.size, claimed, confidence=confidence)
    return ConstantScan(
        grid_step=grid_step,
        k_max=int(k_max),
        successes=successes,
        c_hat=None if thr.n_hat is None else thr.n_hat * grid_step,
        c_low=thr.n_low * grid_step,
        c_high=None if thr.n_high is None else thr.n_high * grid_step,
    )


def certified_first_index(
    cands: Sequence[Sequence[Any]],
    weights: Sequence[Sequence[np.ndarray]],
    table: np.ndarray,
    eps: float,
    errors: Callable[[int, Sequence[Any], Sequence[int]], list[np.ndarray]],
) -> np.ndarray:
    """Smallest grid index at which each trial's propagated error bound is <= ``eps``.

    Binary search over the grid of :func:`units_table`, all trials in lockstep
    (one ``errors`` call per layer and round). Relies on the bound being
    nonincreasing in the units, which holds when ``errors`` is (nested
    sources; :func:`optimal_errors`, :func:`single_errors`).

    Parameters
    ----------
    cands : sequence over layers of sequence over trials
        What ``errors`` reads per trial (e.g. the Candidates of the largest source).
    weights : sequence over trials of sequence of numpy.ndarray
        Each trial's target weights.
    table : numpy.ndarray
        From :func:`units_table`.
    eps : float
        Accuracy.
    errors : callable
        ``errors(layer, cands_of_layer, units) -> per-instance errors``.

    Returns
    -------
    numpy.ndarray
        int64 ``(trials,)``, ``k_max + 1`` when no grid index succeeds.
    """
    T = len(weights)
    L = len(cands)
    k_max = table.shape[0] - 1
    lo = np.ones(T, dtype=np.int64)
    hi = np.full(T, k_max + 1, dtype=np.int64)
    while True:
        act = np.flatnonzero(lo < hi)
        if act.size == 0:
            return lo
        mid = (lo[act] + hi[act]) // 2
        deltas: list[list[np.ndarray]] = [[] for _ in act]
        for i in range(L):
            errs = errors(i, [cands[i][t] for t in act], [int(table[m, i]) for m in mid])
            for a, e in enumerate(errs):
                deltas[a].append(np.maximum(e[0], e[1]))
        ok = np.array([propagated_bound(weights[t], deltas[a]) <= eps
                       for a, t in enumerate(act)])
        hi[act[ok]] = mid[ok]
        lo[act[~ok]] = mid[~ok] + 1
