"""The one per-layer realisation loop of the pair constructions, and ticket assembly.

A construction on the pair-dense layout (:mod:`slth.constructions.layouts.pair_dense`)
states only how it *selects* a subset of each instance's candidates; this
module does the rest, the same way for all of them:

for each target layer i, for each :class:`Block` of it (the whole layer by
default; row chunks, or one output's own hidden units in Malach et al.'s
layout):

1. gather the block's subset-sum instances from the source
   (:func:`~slth.constructions.layouts.pair_dense.gather_layer`);
2. ONE selection call over all of them: ``select(values, targets, valid,
   tolerance) -> (chosen, errors)`` (:func:`slth.subset_sum.solve_batch` in eps
   or exact mode, or the single-pair rule);
3. scatter the chosen candidates back to the masks of the two source layers
   (:func:`~slth.constructions.layouts.pair_dense.scatter_layer`);
4. accumulate the realised weight and bias errors, the failures against the
   layer's tolerance (:func:`tally_failures`) and the phase timings.

:func:`realise` then raises the construction's :class:`ConstructionError`
when instances missed their tolerance and ``on_failure="raise"``, and
assembles the :class:`~slth.Ticket` (:func:`finish_ticket`,
:func:`build_ticket`). The memory guards stay with the steps they measure
(:func:`~slth.constructions.layouts.pair_dense.gather_layer` and
``scatter_layer`` check their own peaks; constructions check the whole
construction's peak before drawing the source).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._memory import check_memory, format_bytes
from .._rng import RNGLike
from ..errors import ConstructionError
from ..nets.mlp import MLP, resolve_name
from ..ticket import Ticket
from .layouts.pair_dense import (
    _gather_rows,
    _layer_prelude,
    gather_bytes,
    gather_layer,
    kept_first,
    scatter_kept_bytes,
    scatter_kept_fast,
    scatter_layer,
)
from .targets import target_assumptions

__all__ = [
    "Block",
    "KeptRealisation",
    "Realisation",
    "Selector",
    "build_ticket",
    "failure_error",
    "finish_ticket",
    "realise",
    "realise_kept",
    "realise_layers",
    "row_blocks",
    "seed_param",
    "tally_failures",
]

#: ``select(values, targets, valid, tolerance) -> (chosen, errors)``: values float64
#: ``(B, n)``, targets float64 ``(B,)``, valid bool ``(B, n)``, tolerance the layer's
#: per-instance tolerance (None: no tolerance, e.g. exact mode); chosen bool ``(B, n)``
#: (invalid candidates are dropped by the scatter), errors float64 ``(B,)``.
Selector = Callable[[np.ndarray, np.ndarray, np.ndarray, float | None],
                    tuple[np.ndarray, np.ndarray]]

#: The masks of one target layer's two source layers: (first, first bias or None, second).
LayerMasks = tuple[np.ndarray, np.ndarray | None, np.ndarray]


@dataclass(frozen=True)
class Block:
    """A part of a target layer realised by one gather, one selection call and one scatter.

    Attributes
    ----------
    hidden : slice
        The hidden units of the pair (rows of source layer 2i, columns of
        source layer 2i + 1) that the block's instances read.
    outputs : slice
        The target rows (output neurons) whose instances the block holds.
    """

    hidden: slice
    outputs: slice


def row_blocks(d_out: int, m: int, rows: int) -> tuple[Block, ...]:
    """Blocks of ``rows`` target rows each (the last one shorter), all ``m`` hidden units each."""
    rows = max(1, int(rows))
    return tuple(Block(slice(0, m), slice(r0, min(d_out, r0 + rows)))
                 for r0 in range(0, d_out, rows))


@dataclass
class Realisation:
    """What :func:`realise_layers` returns: masks, errors and counts per target layer.

    Attributes
    ----------
    layer_masks : list of (first, first_bias, second)
        Per target layer the masks of its two source layers (first_bias None
        when the target layer has no bias).
    weight_errors, bias_errors : list of numpy.ndarray
        Realised ``max(|P_ij - W_ij|, |N_ij + W_ij|)`` per weight, ``(d_out,
        d_in)``, and ``|beta_i - b_i|`` per bias (None without a bias).
    n_instances, n_failed, failed_weights : int
        Instances solved; instances and target weights/biases that missed the
        layer's tolerance (0 without tolerances).
    worst : float
        Largest instance error.
    phases : dict
        Seconds spent gathering, selecting (under the construction's phase
        name) and scattering, in that order.
    """

    layer_masks: list[LayerMasks] = field(default_factory=list)
    weight_errors: list[np.ndarray] = field(default_factory=list)
    bias_errors: list[np.ndarray | None] = field(default_factory=list)
    n_instances: int = 0
    n_failed: int = 0
    failed_weights: int = 0
    worst: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)

    def counts(self) -> dict[str, Any]:
        """The counts a ticket's params record, in their order."""
        return {"n_instances": self.n_instances, "n_failed": self.n_failed,
                "failed_weights": self.failed_weights, "worst_error": self.worst}


def realise_layers(
    source: MLP,
    target: MLP,
    units: Sequence[int],
    *,
    select: Selector,
    tolerances: Sequence[float] | None,
    blocks: Callable[[int], Sequence[Block]] | None = None,
    phase: str = "solve",
) -> Realisation:
    """Run the per-layer loop: gather -> one ``select`` call -> scatter, per block.

    Parameters
    ----------
    source, target : MLP
        The pair-dense source (``2l`` layers) and the target (``l`` layers).
    units : sequence of int
        Candidates per instance, per target layer.
    select : Selector
        The construction's selection rule (see :data:`Selector`).
    tolerances : sequence of float or None
        Per-layer tolerance passed to ``select`` and used for the failure
        tally; None: no tolerance (``select`` gets None, nothing fails).
    blocks : callable, optional
        ``blocks(i)`` -> the :class:`Block` s of target layer i, covering its
        outputs once; None: the whole layer in one block.
    phase : str, default "solve"
        Name of the selection phase in :attr:`Realisation.phases`.

    Returns
    -------
    Realisation
    """
    out = Realisation()
    t_gather = t_select = t_scatter = 0.0
    for i in range(target.depth):
        W = target.weights[i]
        b = target.biases[i]
        d_out, d_in = W.shape
        A, cA, Bw = source.weights[2 * i], source.biases[2 * i], source.weights[2 * i + 1]
        m = A.shape[0]
        tol = None if tolerances is None else tolerances[i]
        parts = (Block(slice(0, m), slice(0, d_out)),) if blocks is None else tuple(blocks(i))
        whole = len(parts) == 1 and parts[0].hidden.indices(m) == (0, m, 1) \
            and parts[0].outputs.indices(d_out) == (0, d_out, 1)
        if not whole:
            first_mask = np.zeros((m, d_in), dtype=bool)
            first_bias_mask = None if b is None else np.zeros(m, dtype=bool)
            second_mask = np.zeros((d_out, m), dtype=bool)
            w_err = np.empty((d_out, d_in))
            b_err = None if b is None else np.empty(d_out)
        for blk in parts:
            hid, rows = blk.hidden, blk.outputs
            t0 = time.perf_counter()
            if whole:
                inst = gather_layer(A, cA, Bw, W, b, units[i])
            else:
                inst = gather_layer(A[hid], None if cA is None else cA[hid], Bw[rows, hid],
                                    W[rows], None if b is None else b[rows], units[i])
            t1 = time.perf_counter()
            chosen, err = select(inst.values, inst.targets, inst.valid, tol)
            t2 = time.perf_counter()
            mf, mfb, ms = scatter_layer(inst, chosen, m if whole else _length(hid, m))
            P = inst.d_out * d_in
            if whole:
                masks = (mf, mfb, ms)
                w_err = np.maximum(err[:P], err[P:2 * P]).reshape(d_out, d_in)
                b_err = None if b is None else np.array(err[2 * P:])
            else:
                first_mask[hid] |= mf
                if mfb is not None:
                    first_bias_mask[hid] |= mfb
                second_mask[rows, hid] = ms
                w_err[rows] = np.maximum(err[:P], err[P:2 * P]).reshape(inst.d_out, d_in)
                if b_err is not None:
                    b_err[rows] = err[2 * P:]
            out.n_instances += err.size
            out.worst = max(out.worst, float(err.max()) if err.size else 0.0)
            if tol is not None:
                nf, fw = tally_failures(err, tol, P)
                out.n_failed += nf
                out.failed_weights += fw
            t3 = time.perf_counter()
            t_gather += t1 - t0
            t_select += t2 - t1
            t_scatter += t3 - t2
            del inst, chosen, err
        if not whole:
            masks = (first_mask, first_bias_mask, second_mask)
        out.layer_masks.append(masks)
        out.weight_errors.append(w_err)
        out.bias_errors.append(b_err)
    out.phases = {"gather": t_gather, phase: t_select, "scatter": t_scatter}
    return out


@dataclass
class KeptRealisation:
    """What :func:`realise_kept` returns: kept flat indices per source parameter, errors, counts.

    Attributes
    ----------
    kept : dict of str to numpy.ndarray
        Sorted int64 flat indices per source parameter name (every name of the
        source, in its order; empty where nothing is kept).
    weight_errors, bias_errors, n_instances, n_failed, failed_weights, worst, phases
        As in :class:`Realisation`.
    chunks : int
        Row blocks solved (one gather, one selection call and one scatter each).
    """

    kept: dict[str, np.ndarray] = field(default_factory=dict)
    weight_errors: list[np.ndarray] = field(default_factory=list)
    bias_errors: list[np.ndarray | None] = field(default_factory=list)
    n_instances: int = 0
    n_failed: int = 0
    failed_weights: int = 0
    worst: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    chunks: int = 0

    def counts(self) -> dict[str, Any]:
        """The counts a ticket's params record, in their order."""
        return {"n_instances": self.n_instances, "n_failed": self.n_failed,
                "failed_weights": self.failed_weights, "worst_error": self.worst}


#: Default bytes of one row block of :func:`realise_kept` (instances, solver, scatter):
#: small enough that numpy's allocator reuses the blocks' memory instead of faulting fresh
#: pages for each one.
CHUNK_BYTES = 48 << 20


def _block_bytes(d_in: int, rows: int, n: int, m: int, bias: bool, solver_bytes: Callable[
        [int], int]) -> int:
    """Peak of one row block: gather (with the rows' source entries and their int64 index,
    16 bytes per entry), then the instances with the selection, then the scatter."""
    P = rows * d_in
    B = 2 * P + (rows if bias else 0)
    inst = B * (9 * n + 8) + 32 * d_in * n
    return max(gather_bytes(d_in, rows, n, bias) + 16 * rows * m,
               inst + solver_bytes(B),
               inst + B * (n + 17) + scatter_kept_bytes(d_in, rows, n, m, bias))


def realise_kept(
    source: Any,
    target: MLP,
    units: Sequence[int],
    *,
    select: Selector,
    tolerances: Sequence[float] | None,
    solver_bytes: Callable[[int, int, float | None], int] | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    phase: str = "solve",
) -> KeptRealisation:
    """The per-layer loop over a Source, scattering straight to kept flat indices.

    For each target layer i, in row blocks sized so that one block's gather,
    selection and scatter fit ``chunk_bytes``:
    :func:`~slth.constructions.layouts.pair_dense.gather_layer_from_source`
    (reads only the entries a ticket may keep; the first layer's entries and
    their sign parts are read once per layer and shared by its blocks, and the
    memory is checked once per layer) -> one ``select`` call ->
    :func:`~slth.constructions.layouts.pair_dense.scatter_kept` (its numba
    twin, ``scatter_kept_fast``). No dense mask
    of the source exists at any point: the second layer's kept indices are
    concatenated block by block (blocks are row ranges, so the result is
    sorted), the first layer's are the used units' block-diagonal entries
    (:func:`~slth.constructions.layouts.pair_dense.kept_first`). The kept
    entries are exactly those of :func:`realise_layers` over the dense source
    with the same bits, and the errors the same (row blocks solve the same
    instances).

    Parameters
    ----------
    source : slth.sources.Source or slth.sources.VirtualMLP
        Entries keyed by :func:`~slth.constructions.layouts.pair_dense.source_spec`
        names; ``source.parameter_names()`` (or its spec's keys) name the kept mapping.
    target : MLP
    units : sequence of int
    select : Selector
    tolerances : sequence of float or None
    solver_bytes : callable, optional
        ``solver_bytes(B, n, tolerance)``: the selector's peak for B instances
        (sizes the blocks; default 0).
    chunk_bytes : int
        Target peak bytes of one row block (a block holds at least one row).
    phase : str, default "solve"

    Returns
    -------
    KeptRealisation
    """
    names = (tuple(source.parameter_names()) if hasattr(source, "parameter_names")
             else tuple(resolve_name(n) for n in source.spec))
    out = KeptRealisation()
    t_gather = t_select = t_scatter = 0.0
    for i in range(target.depth):
        W = target.weights[i]
        b = target.biases[i]
        d_out, d_in = W.shape
        n = int(units[i])
        two_n = 2 * n
        m = two_n * (d_in + (1 if b is not None else 0))
        tol = None if tolerances is None else tolerances[i]

        def need(rows: int, d_in: int = d_in, n: int = n, m: int = m, tol: Any = tol,
                 bias: bool = b is not None) -> int:
            def sb(B: int) -> int:
                return 0 if solver_bytes is None else int(solver_bytes(B, n, tol))
            return _block_bytes(d_in, rows, n, m, bias, sb)

        rows = max(1, min(d_out, chunk_bytes // max(1, need(1))))
        # the errors of the layer, the block's peak, and its kept second-layer indices so far
        # (at most 8 bytes per entry of the rows done)
        check_memory(
            8 * d_out * d_in + 8 * d_out + need(rows) + 8 * d_out * m // 2,
            what=f"realise_kept: target layer {i} ({d_in} -> {d_out}) in blocks of {rows} rows "
                 f"({format_bytes(need(rows))} each)",
            alternative="a smaller `n` or a narrower target",
        )
        w_err = np.empty((d_out, d_in))
        b_err = None if b is None else np.empty(d_out)
        used = np.zeros((d_in, two_n), dtype=bool)
        used_bias = None if b is None else np.zeros(two_n, dtype=bool)
        second_parts: list[np.ndarray] = []
        # the block-diagonal first-layer entries and their sign parts, once per layer; the
        # blocks' peak was checked above, so the row gathers check no memory of their own
        t0 = time.perf_counter()
        pre = _layer_prelude(source, target, i, n, True)
        t_gather += time.perf_counter() - t0
        for r0 in range(0, d_out, rows):
            r1 = min(d_out, r0 + rows)
            t0 = time.perf_counter()
            inst = _gather_rows(pre, source, W[r0:r1], None if b is None else b[r0:r1], r0)
            t1 = time.perf_counter()
            chosen, err = select(inst.values, inst.targets, inst.valid, tol)
            t2 = time.perf_counter()
            sec, u, ub = scatter_kept_fast(inst, chosen, m, r0)
            second_parts.append(sec)
            used |= u
            if ub is not None:
                used_bias |= ub
            P = (r1 - r0) * d_in
            np.maximum(err[:P], err[P:2 * P], out=w_err[r0:r1].reshape(-1))
            if b_err is not None:
                b_err[r0:r1] = err[2 * P:]
            out.n_instances += err.size
            out.worst = max(out.worst, float(err.max()) if err.size else 0.0)
            if tol is not None:
                nf, fw = tally_failures(err, tol, P)
                out.n_failed += nf
                out.failed_weights += fw
            out.chunks += 1
            t3 = time.perf_counter()
            t_gather += t1 - t0
            t_select += t2 - t1
            t_scatter += t3 - t2
            del inst, chosen, err
        del pre
        t0 = time.perf_counter()
        first, first_bias = kept_first(used, used_bias, d_in, n)
        out.kept[f"layers.{4 * i}.weight"] = first  # source MLP layer 2i
        if first_bias is not None:
            out.kept[f"layers.{4 * i}.bias"] = first_bias
        out.kept[f"layers.{4 * i + 2}.weight"] = (np.concatenate(second_parts) if second_parts
                                                  else np.zeros(0, dtype=np.int64))
        del second_parts
        t_scatter += time.perf_counter() - t0
        out.weight_errors.append(w_err)
        out.bias_errors.append(b_err)
    empty = np.zeros(0, dtype=np.int64)
    out.kept = {nm: out.kept.get(nm, empty) for nm in names}
    out.phases = {"gather": t_gather, phase: t_select, "scatter": t_scatter}
    return out


def _length(s: slice, n: int) -> int:
    return len(range(*s.indices(n)))


def realise(
    source: MLP,
    target: MLP,
    units: Sequence[int],
    *,
    construction: str,
    select: Selector,
    tolerances: Sequence[float] | None,
    params: dict[str, Any],
    units_name: str,
    on_failure: str,
    failure_hint: Callable[[], str],
    rng: RNGLike,
    source_given: bool,
    timings: dict[str, float] | None,
    t_start: float,
    t_draw: float,
    blocks: Callable[[int], Sequence[Block]] | None = None,
    phase: str = "solve",
    layout: str | None = None,
) -> Ticket:
    """:func:`realise_layers`, the failure check, then :func:`finish_ticket`.

    ``params`` holds the construction's own entries; the counts of
    :meth:`Realisation.counts` follow them, then what :func:`finish_ticket`
    adds. When instances missed their tolerance and ``on_failure == "raise"``,
    raises :func:`failure_error` with ``failure_hint()`` (called only then) as
    the suggestion. ``timings`` (if given) gets ``"draw"`` (``t_draw``), the
    loop's phases, ``"ticket"`` and ``"total"``.
    """
    r = realise_layers(source, target, units, select=select, tolerances=tolerances,
                       blocks=blocks, phase=phase)
    if r.n_failed and on_failure == "raise":
        raise failure_error(construction, r.n_failed, r.n_instances, r.failed_weights, r.worst,
                            tolerances, units_name, units, failure_hint())
    params = {**params, **r.counts()}
    return finish_ticket(
        source, target, r.layer_masks, construction=construction, params=params,
        units_name=units_name, rng=rng, source_given=source_given,
        weight_errors=r.weight_errors, bias_errors=r.bias_errors, timings=timings,
        phases={"draw": t_draw, **r.phases}, t_start=t_start, layout=layout,
    )


def seed_param(rng: RNGLike) -> int | None:
    """The seed to record in a ticket's params (None unless ``rng`` is an int)."""
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, (bool, np.bool_)):
        return int(rng)
    return None



def build_ticket(source: MLP, target: MLP, layer_masks: list[LayerMasks], *, construction: str,
                 params: dict[str, Any], weight_errors: list[np.ndarray],
                 bias_errors: list[np.ndarray | None]) -> Ticket:
    """Assemble the :class:`Ticket` (masks aligned with ``source.parameters()``)."""
    masks: list[np.ndarray] = []
    for i, (mf, mfb, ms) in enumerate(layer_masks):
        masks.append(mf)
        b_first = source.biases[2 * i]
        if b_first is not None:
            masks.append(mfb if mfb is not None else np.zeros(b_first.shape, dtype=bool))
        masks.append(ms)
        b_second = source.biases[2 * i + 1]
        if b_second is not None:
            masks.append(np.zeros(b_second.shape, dtype=bool))
    L = target.depth
    return Ticket(
        source,
        tuple(masks),
        construction=construction,
        params=params,
        target_widths=target.widths,
        layer_map=tuple((2 * i, 2 * i + 1) for i in range(L)),
        weight_errors=tuple(weight_errors),
        bias_errors=tuple(bias_errors),
        target_fingerprint=target.fingerprint(),
    )


def finish_ticket(
    source: MLP,
    target: MLP,
    layer_masks: list[LayerMasks],
    *,
    construction: str,
    params: dict[str, Any],
    units_name: str,
    rng: RNGLike,
    source_given: bool,
    weight_errors: list[np.ndarray],
    bias_errors: list[np.ndarray | None],
    timings: dict[str, float] | None,
    phases: dict[str, float],
    t_start: float,
    layout: str | None = None,
) -> Ticket:
    """The part every pair construction shares once the masks are chosen.

    Completes ``params`` with the source description, the layout (``layout``,
    or by default the shared block layout in terms of ``units_name``) and the
    target's assumptions, builds the :class:`Ticket`
    and, when asked, fills ``timings`` with ``phases``, the ticket assembly
    time and the total since ``t_start``.
    """
    params.update({
        "seed": seed_param(rng) if not source_given else None,
        "source_given": source_given,
        "source_law": None if source_given else "uniform[-1,1]",
        "layout": layout if layout is not None else
                  f"per input coordinate a block of 2{units_name} hidden units split by the sign "
                  f"of their first-layer weight; each part uses the first {units_name} units of "
                  f"its sign; constant block of 2{units_name} units per biased layer",
    })
    params.update(target_assumptions(target))
    t0 = time.perf_counter()
    ticket = build_ticket(source, target, layer_masks, construction=construction, params=params,
                          weight_errors=weight_errors, bias_errors=bias_errors)
    if timings is not None:
        timings.update(phases)
        timings.update({"ticket": time.perf_counter() - t0,
                        "total": time.perf_counter() - t_start})
    return ticket


def tally_failures(err: np.ndarray, tol: float, P: int) -> tuple[int, int]:
    """``(instances, weights)`` that miss ``tol``, for one layer's errors in gather order.

    ``err`` holds the positive parts ``[0, P)``, the negative parts ``[P, 2P)`` and
    the bias instances after (:class:`~slth.constructions.layouts.pair_dense.LayerInstances`);
    a weight fails when either of its parts does.
    """
    bad = err > tol
    weights = int(np.count_nonzero(bad[:P] | bad[P:2 * P])) + int(np.count_nonzero(bad[2 * P:]))
    return int(np.count_nonzero(bad)), weights


def failure_error(construction: str, n_failed: int, n_total: int, failed_weights: int,
                  worst: float, tolerances: Sequence[float], units_name: str,
                  units: Sequence[int], suggestion: str) -> ConstructionError:
    """The ConstructionError raised when instances miss their tolerance."""
    tol = ", ".join(f"{t:.3g}" for t in tolerances)
    return ConstructionError(
        f"{construction}: {n_failed} of {n_total} instances missed the per-weight tolerance "
        f"(per layer: {tol}), affecting {failed_weights} target weights/biases; worst error "
        f"{worst:.3g}. The source is too small for this `eps` with {units_name}="
        f"{list(units)}: {suggestion}, or pass on_failure='report' to get the ticket with the "
        "failures recorded."
    )
