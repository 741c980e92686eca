"""Malach, Yehudai, Shalev-Shwartz, Shamir (ICML 2020): one random pair per target weight.

"Proving the Lottery Ticket Hypothesis: Pruning is All You Need"
(arXiv:2002.00585), Theorem 2.1 (weight subnetworks): a depth-l ReLU target
with bounded weights is approximated on the unit ball, with probability at
least 1 - delta, by pruning a random network of depth 2l with U[-1, 1]
weights and *polynomial* width.

The construction (as the proof builds it)
-----------------------------------------
Each target layer ``W`` (``d_out x d_in``) becomes two source layers, and
every target weight ``W_ij`` owns a block of ``2k`` hidden units of its own
(nothing is shared between weights or between output neurons; the
"per-neuron cost" that later work removed):

* block ``(i, j)`` is hidden units ``(i (d_in + bias) + j) 2k .. + 2k - 1``; the
  first-layer mask keeps only the weights from input ``j`` (weights ``a_h``) and
  the second-layer mask lets only output ``i`` read the block (weights
  ``b_h = B[i, h]``);
* ``w x = w relu(x) - w relu(-x)``: a unit with ``a_h > 0`` passes
  ``a_h relu(x_j)``, one with ``a_h < 0`` passes ``|a_h| relu(-x_j)``. The
  positive part keeps the ONE unit among the first k positive units of the
  block whose product ``b_h a_h`` is closest to ``W_ij``, the negative part the
  one among the first k negative units whose ``b_h |a_h|`` is closest to
  ``-W_ij`` (or none when keeping nothing is closer): two units and four
  weights per target weight, depth 2l;
* biases (an extension; Theorem 2.1 is bias-free): a constant block of ``2k``
  units per output neuron with source bias ``c_h``, the unit with ``b_h c_h``
  closest to ``b_i`` among the first k with ``c_h > 0`` kept.

Malach et al.'s proof finds, for each weight, one unit whose product is within
the per-weight tolerance; the width follows from how likely one random pair is
to land there (about ``1 / tolerance`` candidates, against ``log(1 /
tolerance)`` for subset sums). What slth could confirm, and what not: the
depth 2l, the U[-1, 1] source, the single pair per weight through
``relu(x) - relu(-x)``, the polynomial width, and (from later papers'
comparisons) that hidden units are not shared across output neurons are
confirmed; the paper's appendix (its lemma numbers, its per-weight tolerance
and its width constants) could not be read for this implementation. slth
therefore uses Pensia et al.'s per-weight tolerance ``eps / (2 l d_in d_out)``
(sufficient by the error propagation of :func:`slth.evaluate.certified_bound`)
and the width of :func:`slth.bounds.malach2020_units`, a union bound rigorous
for ``|W_ij| <= 1/2`` (the theorem bounds the target's entries as well).

:mod:`slth.constructions.single_pair` is the cheaper variant that places the
same selection on Pensia et al.'s shared layout.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import bounds
from .._memory import check_memory
from .._rng import RNGLike
from ..errors import InputError, ShapeError, format_value
from ..nets.mlp import MLP
from ..ticket import Ticket
from ._common import (
    check_delta,
    check_eps,
    check_on_failure,
    check_positive,
    check_units,
)
from ._realise import Block, realise
from .layouts.pair_dense import draw_pair_widths, layer_tolerances, layer_units
from .single_pair import select_single
from .targets import check_target

__all__ = ["NAME", "construct", "nested_source", "source_widths", "theorem_units"]

#: Value of :attr:`slth.Ticket.construction` for tickets built here.
NAME = "malach2020"

#: Candidate products processed at once (bounds the temporary memory to ~64 MB).
_CHUNK_ELEMENTS = 1 << 23

#: The layout recorded in a ticket's params.
LAYOUT = ("per target weight (i, j) a block of 2k hidden units reading input j only and read by "
          "output i only; each sign part keeps the one unit (among the first k of its sign) "
          "whose product is closest; constant block of 2k units per output of a biased layer")


def theorem_units(target: MLP, eps: float, delta: float, *,
                  C: float = bounds.MALACH2020_C) -> tuple[int, ...]:
    """Candidates per sign part of each target weight, per target layer.

    ``k_i = bounds.malach2020_units(d_in, d_out, l, eps, delta, C=C)`` (``d_in``
    counts a bias as one more column).

    Parameters
    ----------
    target : MLP
    eps, delta : float
        In (0, 1).
    C : float, default :data:`slth.bounds.MALACH2020_C`

    Returns
    -------
    tuple of int
    """
    return layer_units(target, bounds.malach2020_units, eps, delta, C)


def source_widths(target: MLP, units: Sequence[int]) -> tuple[int, ...]:
    """Widths ``(d_0, m_1, d_1, ..., m_l, d_l)`` with ``m_i = 2 k_i d_i (d_{i-1} + bias)``.

    Parameters
    ----------
    target : MLP
    units : sequence of int
        ``k_i`` per target layer.

    Returns
    -------
    tuple of int
    """
    w = target.widths
    out = [w[0]]
    for i, k in enumerate(units):
        cols = w[i] + (target.biases[i] is not None)
        out += [2 * int(k) * w[i + 1] * cols, w[i + 1]]
    return tuple(out)


def _source_bytes(target: MLP, units: Sequence[int]) -> int:
    w = source_widths(target, units)
    return 8 * sum(w[s] * w[s + 1] + (w[s + 1] if s % 2 == 0 else 0) for s in range(len(w) - 1))


def _draw_source(target: MLP, units: Sequence[int], rng: RNGLike) -> MLP:
    """i.i.d. U[-1, 1] weights, drawn in the order ``W_0, b_0, W_1, W_2, b_2, ...``.

    A bias vector exists exactly on the first layer of each pair whose target
    layer has a bias (it feeds the constant blocks).
    """
    return draw_pair_widths(target, source_widths(target, units), rng)


def _check_source(source: Any, target: MLP, units: tuple[int, ...] | None
                  ) -> tuple[MLP, tuple[int, ...]]:
    if not isinstance(source, MLP):
        raise InputError(f"`source` must be a slth.nets.MLP or None; received "
                         f"{format_value(source)} of type {type(source).__name__}")
    L = target.depth
    tw, sw = target.widths, source.widths
    layout = "(d_0, m_1, d_1, ..., m_l, d_l) with m_i = 2 k_i d_i (d_(i-1) + 1 if biased)"
    if source.depth != 2 * L:
        raise ShapeError(f"`source` must have {2 * L} layers (twice the target's {L}), widths "
                         f"{layout}; received {source.depth} layers with widths {sw}")
    if units is None:
        inferred = []
        for i in range(L):
            per = 2 * tw[i + 1] * (tw[i] + (target.biases[i] is not None))
            if sw[2 * i + 1] % per:
                raise ShapeError(f"`source` hidden layer {2 * i + 1} has width {sw[2 * i + 1]}, "
                                 f"not a multiple of {per} (2 d_out (d_in + bias)); expected "
                                 f"widths {layout}")
            inferred.append(sw[2 * i + 1] // per)
        units = tuple(inferred)
    expected = source_widths(target, units)
    if sw != expected:
        raise ShapeError(f"`source` must have widths {expected} for target widths {tw} and "
                         f"k={list(units)}; received widths {sw}")
    for p, nm in zip(source.parameters(), source.parameter_names()):
        if not np.all(np.isfinite(p)):
            raise InputError(f"`source.{nm}` must be finite; received NaN or infinite entries")
    for i in range(L):
        if target.biases[i] is not None and source.biases[2 * i] is None:
            raise ShapeError(f"`source.biases[{2 * i}]` must be a vector of shape "
                             f"({sw[2 * i + 1]},) (it feeds the constant blocks that realise "
                             f"`target.biases[{i}]`); received None")
    return source, units


def nested_source(source: MLP, target: MLP, units_big: Sequence[int], units: Sequence[int]
                  ) -> MLP:
    """The source with ``units[i]`` candidates per part cut out of one with ``units_big[i]``.

    Keeps the first ``2 units[i]`` hidden units of every block (one block per
    target weight, :func:`source_widths`), so width sweeps prune one random
    network. Bias-free targets only (Theorem 2.1's setting).

    Parameters
    ----------
    source : MLP
        A source of the layout at ``units_big``.
    target : MLP
    units_big, units : sequence of int
        Candidates per part of the given source and of the cut, per target layer.

    Returns
    -------
    MLP
    """
    if target.has_biases:
        raise InputError("`target` must be bias-free (Theorem 2.1's setting); received biases")
    if any(int(n) > int(N) or int(n) < 1 for n, N in zip(units, units_big)):
        raise InputError(f"`units` must lie in [1, units_big] = [1, {list(units_big)}]; "
                         f"received {list(units)}")
    source, _ = _check_source(source, target, tuple(int(u) for u in units_big))
    weights = []
    for i, (n, N) in enumerate(zip(units, units_big)):
        d_out, d_in = target.weights[i].shape
        blocks = d_out * d_in
        idx = (np.arange(blocks)[:, None] * 2 * int(N) + np.arange(2 * int(n))[None, :]).ravel()
        weights += [source.weights[2 * i][idx, :], source.weights[2 * i + 1][:, idx]]
    return MLP(tuple(np.array(w) for w in weights))


def _select(values: np.ndarray, targets: np.ndarray, valid: np.ndarray,
            tolerance: float | None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`select_single` as a realisation-loop selector (the tolerance only counts failures)."""
    return select_single(values, targets, valid)


def construct(
    target: MLP,
    *,
    eps: float | None = None,
    delta: float = 0.01,
    k: int | tuple[int, ...] | None = None,
    C: float = bounds.MALACH2020_C,
    rng: RNGLike = None,
    source: MLP | None = None,
    on_failure: str = "raise",
    timings: dict[str, float] | None = None,
) -> Ticket:
    """Build the strong lottery ticket of Malach et al. (ICML 2020), Theorem 2.1.

    Parameters
    ----------
    target : MLP
        The ReLU network to approximate (biases via constant blocks).
    eps : float or None, default None
        Accuracy in (0, 1). Given: each weight must be realised within the
        per-weight tolerance ``eps / (2 l d_in d_out)`` (failures handled by
        ``on_failure``) and, when ``k`` is None, the width comes from
        :func:`slth.bounds.malach2020_units`. None: the closest pair is kept,
        whatever its error; ``k`` (or ``source``) must be given.
    delta : float, default 0.01
        Failure probability in (0, 1) for the width from eps.
    k : int or sequence of int, optional
        Candidates per sign part of each target weight (one value or one per
        target layer): every weight owns ``2k`` hidden units, so target layer i
        gets ``2 k d_i (d_{i-1} + bias)`` hidden units. Inferred from ``source``
        when omitted.
    C : float, default :data:`slth.bounds.MALACH2020_C`
        Constant of the width from eps.
    rng : int, numpy.random.Generator, numpy.random.SeedSequence or None
        Randomness of the source (drawn once, i.i.d. U[-1, 1]); ignored with
        ``source``.
    source : MLP, optional
        A random network of the layout's widths (:func:`source_widths`) to
        prune (never modified).
    on_failure : {"raise", "report"}, default "raise"
        As in :func:`slth.constructions.pensia2020.construct`.
    timings : dict, optional
        Filled with seconds per phase (``"draw"``, ``"gather"``, ``"select"``,
        ``"scatter"``, ``"ticket"``, ``"total"``).

    Returns
    -------
    Ticket
        ``construction="malach2020"``, ``layer_map=((0, 1), ...)``, realised
        ``weight_errors``/``bias_errors``, the target's fingerprint, JSON
        ``params`` (``eps``, ``delta``, ``k``, ``C``, ``mode``,
        ``weight_tolerance``, ``n_failed``, ``worst_error``,
        ``assumptions_hold``, ...).

    Raises
    ------
    InputError, ShapeError, ConstructionError
        As in :func:`slth.constructions.pensia2020.construct`.
    LimitError
        The source would not fit the memory budget (:mod:`slth._memory`).
    """
    t_start = time.perf_counter()
    target = check_target(target)
    eps_f = check_eps(eps)
    delta_f = check_delta(delta)
    C_f = check_positive("C", C)
    on_failure = check_on_failure(on_failure)
    L = target.depth
    units = check_units("k", k, L)
    width_from = "k" if units is not None else None
    if source is not None:
        source, units = _check_source(source, target, units)
        width_from = width_from or "source"
    elif units is None:
        if eps_f is None:
            raise InputError("pass `eps` (the width then follows slth.bounds.malach2020_units), "
                             "`k` (candidates per sign part of each weight) or `source`; "
                             "received eps=None, k=None, source=None")
        units = theorem_units(target, eps_f, delta_f, C=C_f)
        width_from = "eps"
    tolerances = layer_tolerances(target, eps_f) if eps_f is not None else None

    source_given = source is not None
    t0 = time.perf_counter()
    if source is None:
        # the whole source as drawn (float64 weights and biases) plus the masks (1 byte each)
        n_bytes = _source_bytes(target, units)
        check_memory(n_bytes + n_bytes // 8,
                     what=f"malach2020.construct: the source of widths "
                          f"{source_widths(target, units)}",
                     alternative="use a larger eps or a smaller `k`, or the shared-layout variant "
                                 "slth.constructions.single_pair (d_out times smaller)")
        source = _draw_source(target, units, rng)
    t_draw = time.perf_counter() - t0

    def blocks(i: int) -> tuple[Block, ...]:
        # output o's own blocks form the shared layout of a 1-output layer
        d_out, d_in = target.weights[i].shape
        per_out = 2 * units[i] * (d_in + (target.biases[i] is not None))
        return tuple(Block(slice(o * per_out, (o + 1) * per_out), slice(o, o + 1))
                     for o in range(d_out))

    def hint() -> str:
        need = theorem_units(target, eps_f, delta_f, C=C_f)
        return (f"increase `k` (slth.bounds.malach2020_units with C={C_f:g}, "
                f"delta={delta_f:g} gives k={list(need)})")

    params: dict[str, Any] = {
        "paper": "Malach, Yehudai, Shalev-Shwartz, Shamir (ICML 2020), Theorem 2.1",
        "mode": "closest" if eps_f is None else "eps",
        "eps": eps_f,
        "delta": delta_f,
        "k": list(units),
        "C": C_f,
        "width_from": width_from,
        "weight_tolerance": None if tolerances is None else list(tolerances),
    }
    return realise(
        source, target, units, construction=NAME, select=_select, tolerances=tolerances,
        params=params, units_name="k", on_failure=on_failure, failure_hint=hint, rng=rng,
        source_given=source_given, timings=timings, t_start=t_start, t_draw=t_draw,
        blocks=blocks, phase="select", layout=LAYOUT,
    )
