"""Single-pair selection on Pensia et al.'s shared block layout: a cheap Malach-style variant.

This is NOT Malach et al.'s construction (that one is
:mod:`slth.constructions.malach2020`): it keeps Malach et al.'s selection
principle (one random pair per weight and sign part) but places it on the
layout of :mod:`slth.constructions.pensia2020`, where the ``2k`` hidden units
of input coordinate j are shared by all ``d_out`` outputs. The source is then
``d_out`` times smaller than Malach et al.'s, in which every target weight owns
its block of hidden units. Useful to separate what the selection rule costs
(one pair instead of a subset sum, at the same layout) from what the layout
costs; every comparison in slth's README names which one it measures.

The construction
----------------
The same two-source-layers-per-target-layer skeleton as
:mod:`slth.constructions.pensia2020` (block-diagonal first layer, ``2k``
hidden units per input coordinate split by the sign of their first-layer
weight, units with ``a > 0`` serving ``relu(x_j)`` and units with ``a < 0``
serving ``relu(-x_j)``, the first k of each sign being the candidates;
constant units for biases), but each sign part of each target weight keeps a
SINGLE pair ``(a_k, b_ik)``: the one whose product ``b_ik a_k`` (resp.
``b_ik |a_k|``) is closest to ``W_ij`` (resp. ``-W_ij``), or none when keeping
nothing is closer. The product of one pair must itself land within the
tolerance, which needs about ``1 / tolerance`` candidates per weight instead of
``log(1 / tolerance)`` (width: :func:`slth.bounds.single_pair_units`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .. import bounds
from .._rng import RNGLike
from ..nets.mlp import MLP
from ..ticket import Ticket
from ._common import check_delta, check_eps, check_on_failure, check_positive
from ._realise import Block, realise, row_blocks
from .layouts.pair_dense import (
    draw_source,
    layer_tolerances,
    layer_units,
    resolve_width,
    source_widths,
)
from .targets import check_target

__all__ = ["NAME", "construct", "select_single", "theorem_units"]

#: Value of :attr:`slth.Ticket.construction` for tickets built here.
NAME = "single_pair"

#: Candidate products processed at once (bounds the temporary memory to ~64 MB).
_CHUNK_ELEMENTS = 1 << 23


def theorem_units(target: MLP, eps: float, delta: float, *,
                  C: float = bounds.SINGLE_PAIR_C) -> tuple[int, ...]:
    """Candidates per sign part and input coordinate, per target layer.

    ``k_i = bounds.single_pair_units(d_in, d_out, l, eps, delta, C=C)`` (``d_in``
    counts a bias as one more column).

    Parameters
    ----------
    target : MLP
    eps, delta : float
        In (0, 1).
    C : float, default :data:`slth.bounds.SINGLE_PAIR_C`

    Returns
    -------
    tuple of int
    """
    return layer_units(target, bounds.single_pair_units, eps, delta, C)


def select_single(values: np.ndarray, targets: np.ndarray, valid: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """For each row, the one valid candidate closest to the target (or none).

    Parameters
    ----------
    values : numpy.ndarray
        float64 ``(B, k)`` candidate products.
    targets : numpy.ndarray
        float64 ``(B,)``.
    valid : numpy.ndarray
        bool ``(B, k)``; invalid candidates are never chosen.

    Returns
    -------
    (chosen, errors)
        bool ``(B, k)`` with at most one True per row, and float64 ``(B,)``
        ``|target - chosen value|`` (``|target|`` when nothing is chosen, which
        happens exactly when no valid candidate is strictly closer than 0).
    """
    B, k = values.shape
    chosen = np.zeros((B, k), dtype=bool)
    errors = np.empty(B, dtype=np.float64)
    step = max(1, _CHUNK_ELEMENTS // max(k, 1))
    for s in range(0, B, step):
        e = min(B, s + step)
        diff = np.abs(values[s:e] - targets[s:e, None])
        diff[~valid[s:e]] = np.inf
        best = np.argmin(diff, axis=1)
        rows = np.arange(e - s)
        best_err = diff[rows, best]
        empty_err = np.abs(targets[s:e])
        take = best_err < empty_err
        block = chosen[s:e]
        block[rows[take], best[take]] = True
        errors[s:e] = np.where(take, best_err, empty_err)
    return chosen, errors


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
    C: float = bounds.SINGLE_PAIR_C,
    rng: RNGLike = None,
    source: MLP | None = None,
    on_failure: str = "raise",
    timings: dict[str, float] | None = None,
) -> Ticket:
    """Build a single-pair ticket on the shared block layout (a Malach-style variant).

    Parameters
    ----------
    target : MLP
        The ReLU network to approximate (biases via constant units).
    eps : float or None, default None
        Accuracy in (0, 1). Given: each weight must be realised within the
        per-weight tolerance ``eps / (2 l d_in d_out)`` (failures handled by
        ``on_failure``) and, when ``k`` is None, the width comes from
        :func:`slth.bounds.single_pair_units`. None: the closest pair is kept,
        whatever its error; ``k`` (or ``source``) must be given.
    delta : float, default 0.01
        Failure probability in (0, 1) for the width from eps.
    k : int or sequence of int, optional
        Candidate units per sign part and input coordinate (one value or one per
        target layer): target layer i gets ``2 k d_{i-1}`` hidden units
        (``2 k (d_{i-1} + 1)`` with a bias). Inferred from ``source`` when omitted.
    C : float, default :data:`slth.bounds.SINGLE_PAIR_C`
        Constant of the width from eps.
    rng : int, numpy.random.Generator, numpy.random.SeedSequence or None
        Randomness of the source (drawn once, i.i.d. U[-1, 1]); ignored with
        ``source``.
    source : MLP, optional
        A random network of the layout's widths to prune (never modified).
    on_failure : {"raise", "report"}, default "raise"
        As in :func:`slth.constructions.pensia2020.construct`.
    timings : dict, optional
        Filled with seconds per phase (``"draw"``, ``"gather"``, ``"select"``,
        ``"scatter"``, ``"ticket"``, ``"total"``).

    Returns
    -------
    Ticket
        ``construction="single_pair"``, ``layer_map=((0, 1), ...)``, realised
        ``weight_errors``/``bias_errors``, JSON ``params`` (``eps``, ``delta``,
        ``k``, ``C``, ``mode``, ``weight_tolerance``, ``n_failed``,
        ``worst_error``, ``assumptions_hold``, ...).

    Raises
    ------
    InputError, ShapeError, ConstructionError
        As in :func:`slth.constructions.pensia2020.construct`.
    """
    t_start = time.perf_counter()
    target = check_target(target)
    eps_f = check_eps(eps)
    delta_f = check_delta(delta)
    C_f = check_positive("C", C)
    on_failure = check_on_failure(on_failure)
    source, units, width_from = resolve_width(
        target, "k", k, source, eps_f,
        lambda: theorem_units(target, eps_f, delta_f, C=C_f),
        "the width then follows slth.bounds.single_pair_units",
    )
    tolerances = layer_tolerances(target, eps_f) if eps_f is not None else None

    source_given = source is not None
    t0 = time.perf_counter()
    if source is None:
        source = draw_source(target, units, rng)
    t_draw = time.perf_counter() - t0

    widths = source_widths(target, units)

    def blocks(i: int) -> tuple[Block, ...]:
        # rows per chunk bound the candidate products held at once (_CHUNK_ELEMENTS)
        d_in = target.widths[i]
        rows = max(1, _CHUNK_ELEMENTS // ((2 * d_in + 1) * units[i]))
        return row_blocks(target.widths[i + 1], widths[2 * i + 1], rows)

    def hint() -> str:
        need = theorem_units(target, eps_f, delta_f, C=C_f)
        return (f"increase `k` (slth.bounds.single_pair_units with C={C_f:g}, "
                f"delta={delta_f:g} gives k={list(need)})")

    params: dict[str, Any] = {
        "paper": "single-pair selection (Malach et al., ICML 2020) on the shared block layout "
                 "of Pensia et al. (NeurIPS 2020); not Malach et al.'s own layout",
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
        blocks=blocks, phase="select",
    )
