"""Pensia, Rajput, Nagle, Vishwakarma, Papailiopoulos (NeurIPS 2020), Theorem 1.

"Optimal Lottery Tickets via SubsetSum: Logarithmic Over-Parameterization is
Sufficient" (arXiv:2006.07990). A depth-l ReLU target with ``||W_i||_2 <= 1`` is
approximated on the unit ball by masking a random source of depth 2l whose
weights are i.i.d. U[-1, 1] and whose hidden layer i has
``C d_{i-1} log(d_{i-1} d_i l / min(eps, delta))`` units.

The construction (proof of Theorem 1, built from the paper's single-weight and
single-layer lemmas and its corollary on products of uniform variables)
-------------------------------------------------------------------------------
Each target layer ``W`` (``d_out x d_in``) becomes two source layers, laid out
as described in :mod:`slth.constructions.layouts.pair_dense`:

* source layer 2i: ``d_in`` blocks of ``2n`` hidden units; the mask is
  block-diagonal, block j reads only ``x_j``. A unit with first-layer weight
  ``a_k > 0`` passes ``a_k relu(x_j)`` (positive part), a unit with ``a_k < 0``
  passes ``|a_k| relu(-x_j)`` (negative part); about n units fall on each side
  and each part uses the first n units of its sign (zero-padded if fewer);
* source layer 2i+1: for each (i, j), two random subset-sum problems over the
  products ``b_ik a_k``: over the positive units with target ``W_ij`` and over
  the negative units (products ``b_ik |a_k|``) with target ``-W_ij``, so that
  ``sum_S+ b_ik a_k relu(x_j) + sum_S- b_ik |a_k| relu(-x_j)`` is
  ``~ W_ij relu(x_j) - W_ij relu(-x_j) = W_ij x_j``; ``b_ik`` is kept exactly
  for the chosen k; a first-layer weight is kept when its unit is used.

All ``2 d_in d_out`` instances of a layer (plus ``d_out`` bias instances) are
solved by ONE :func:`slth.subset_sum.solve_batch` call. The depth doubles. The
kept weights are the source's weights bit for bit.

Biases (an extension; the theorem is bias-free)
-----------------------------------------------
A target layer with bias ``b`` gets a constant block of ``2n`` hidden units
(the bias is an extra input column fed the constant 1) that read no input and
keep their source bias ``c_k`` when ``c_k > 0`` (the first n such units are the
candidates):
``relu(c_k) = c_k`` for every input, and a third family of subset-sum
problems over ``b_ik c_k`` with target ``b_i`` realises the bias. This is the
constant-unit idea of Fischer & Burkholz (2021, "Lottery tickets with nonzero
biases") and Burkholz (ICML 2022), realised by masks only. The source then has
a bias vector (i.i.d. U[-1, 1]) on the first layer of each such pair; every
other source bias is pruned.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import bounds
from .._memory import check_memory, format_bytes, format_count, memory_budget
from .._rng import RNGLike
from ..errors import InputError, LimitError, ShapeError
from ..nets.mlp import MLP, resolve_name
from ..sources import VirtualMLP, VirtualSource
from ..subset_sum import EXACT_MAX_N, solve_batch
from ..subset_sum.solve import _solve_batch_bytes
from ..ticket import Ticket
from ._common import check_delta, check_eps, check_on_failure, check_positive
from ._realise import CHUNK_BYTES, KeptRealisation, realise, realise_kept, seed_param
from .layouts.pair_dense import (
    draw_source,
    gather_bytes,
    layer_tolerances,
    layer_units,
    mask_bytes,
    resolve_width,
    scatter_bytes,
    source_bytes,
    source_spec,
    source_widths,
)
from .targets import check_target

__all__ = ["NAME", "construct", "peak_bytes", "select_subset_sum", "theorem_units"]

#: Value of :attr:`slth.Ticket.construction` for tickets built here.
NAME = "pensia2020"


def select_subset_sum(values: np.ndarray, targets: np.ndarray, valid: np.ndarray,
                      tolerance: float | None) -> tuple[np.ndarray, np.ndarray]:
    """The selector of Theorem 1: one :func:`slth.subset_sum.solve_batch` call per layer.

    Every row's subset sum within ``tolerance`` (eps mode), or its optimum when
    ``tolerance`` is None (exact mode). Padding candidates (``valid`` False) are
    zeros, so choosing one changes no sum; the scatter drops them.

    Returns
    -------
    (chosen, errors)
        bool ``(B, n)`` masks and float64 ``(B,)`` realised errors.
    """
    res = solve_batch(values, targets, eps=tolerance)
    return res.masks, res.errors


def theorem_units(target: MLP, eps: float, delta: float, *,
                  C: float = bounds.PENSIA2020_C) -> tuple[int, ...]:
    """Units per sign part and input coordinate, per target layer, from Theorem 1.

    ``n_i = bounds.pensia2020_units(d_in, d_out, l, eps, delta, C=C)`` with
    ``d_in`` counting the bias as one more input column when layer i has one.

    Parameters
    ----------
    target : MLP
    eps, delta : float
        In (0, 1).
    C : float, default :data:`slth.bounds.PENSIA2020_C`

    Returns
    -------
    tuple of int
    """
    return layer_units(target, bounds.pensia2020_units, eps, delta, C)


def peak_bytes(target: MLP, units: tuple[int, ...], tolerances: tuple[float, ...] | list[float]
               | None = None, *, source_given: bool = False) -> int:
    """Estimated peak bytes :func:`construct` allocates (the source included unless given).

    Follows the construction step by step (formulas in
    :func:`slth.constructions.layouts.pair_dense.source_bytes`, ``gather_bytes``,
    ``scatter_bytes``, ``mask_bytes`` and
    :func:`slth.subset_sum.solve._solve_batch_bytes`). With ``P = d_out d_in``
    and ``B = 2P + nb`` instances of n candidates in layer i:

    * drawing: every source array in float64 plus MLP's finiteness temporary;
    * layer i runs while the source (8 bytes per weight) and what earlier layers
      keep (their masks, and float64 (d_out, d_in) weight errors and (d_out,)
      bias errors) are alive; its own peak is the largest of the gather, the
      instances (B (9 n + 8) plus their int64 unit orders, 32 d_in n) with the
      solver's peak, the instances with the results (B (n + 17)) and the
      scatter, and the instances, results and masks with the error summaries
      (8 P + 2 B);
    * the end: the source, every mask and error array, and the float64 copy of
      the largest target array that the target's fingerprint hashes.

    Parameters
    ----------
    target : MLP
    units : tuple of int
        Units per part, per target layer.
    tolerances : sequence of float, optional
        Per-layer eps-mode tolerance (None: exact mode).
    source_given : bool, default False
        The source already exists (not counted).

    Returns
    -------
    int
    """
    widths = source_widths(target, units)
    src = 0 if source_given else 8 * source_bytes(target, units)[2]
    peak = 0 if source_given else source_bytes(target, units)[0]
    kept = 0
    for i, n in enumerate(units):
        d_out, d_in = target.weights[i].shape
        bias = target.biases[i] is not None
        m = widths[2 * i + 1]
        P = d_out * d_in
        B = 2 * P + (d_out if bias else 0)
        inst = B * (9 * n + 8) + 32 * d_in * n
        res = B * (n + 17)
        masks = mask_bytes(d_in, d_out, m, bias)
        tol = None if tolerances is None else tolerances[i]
        layer = max(
            gather_bytes(d_in, d_out, n, bias),
            inst + _solve_batch_bytes(B, n, eps=tol, method="mitm"),
            inst + res + scatter_bytes(d_in, d_out, n, m, bias),
            inst + res + masks + 8 * P + 2 * B,
        )
        peak = max(peak, src + kept + layer)
        kept += masks + 8 * P + (8 * d_out if bias else 0)
    fingerprint = 8 * max(p.size for p in target.parameters())
    return int(max(peak, src + kept + fingerprint))


def _fitting_n(target: MLP, units: tuple[int, ...], tolerances: Any, source_given: bool,
               budget: int) -> int:
    """Largest c such that units capped at c fit ``budget`` (0: not even c = 1)."""
    lo, hi = 0, max(units)
    while lo < hi:
        c = (lo + hi + 1) // 2
        capped = tuple(min(u, c) for u in units)
        if peak_bytes(target, capped, tolerances, source_given=source_given) <= budget:
            lo = c
        else:
            hi = c - 1
    return lo


def _check_peak(target: MLP, units: tuple[int, ...], tolerances: Any, source_given: bool,
                eps: float | None) -> None:
    """Refuse a construction whose estimated peak exceeds the memory budget (before drawing)."""
    need = peak_bytes(target, units, tolerances, source_given=source_given)
    _, n_arrays, entries = source_bytes(target, units)
    what = (f"pensia2020.construct: the source ({n_arrays} float64 arrays, {format_count(entries)} "
            f"weights{', given' if source_given else ''}) with n={list(units)} and the "
            "instances and masks of its layers")
    try:
        check_memory(need, what=what, alternative="")
        return
    except LimitError:
        pass
    # refused: find the largest n that fits, for the message
    fit = _fitting_n(target, units, tolerances, source_given, memory_budget())
    if fit >= 1:
        capped = tuple(min(u, fit) for u in units)
        at_fit = format_bytes(peak_bytes(target, capped, tolerances, source_given=source_given))
        alt = f"pass `n`={fit} or less ({at_fit} at n={list(capped)})"
        if eps is not None:
            alt += (f"; below Theorem 1's width at eps={eps:g} the ticket may miss eps: "
                    "on_failure='report' measures it")
    else:
        alt = "no `n` fits: use a narrower target"
    check_memory(need, what=what,
                 alternative=alt + ", or a virtual source (entries computed on demand) once "
                                   "slth has one")


def _tolerances(target: MLP, units: Sequence[int], eps_f: float | None,
                weight_eps: float | None) -> Sequence[float] | None:
    """Per-layer subset-sum tolerances (None: exact mode, which accepts n <= EXACT_MAX_N)."""
    if eps_f is None and weight_eps is None and max(units) > EXACT_MAX_N:
        raise LimitError(
            f"`n` = {list(units)}: exact mode (eps=None) solves every instance optimally and "
            f"accepts n <= {EXACT_MAX_N}; pass `eps` (eps mode accepts any n)"
        )
    if weight_eps is not None:
        return tuple(check_positive("weight_eps", weight_eps) for _ in range(target.depth))
    return layer_tolerances(target, eps_f) if eps_f is not None else None


def _failure_hint(target: MLP, eps_f: float | None, delta_f: float, C_f: float) -> str:
    """What to change when instances miss their tolerance."""
    if eps_f is None:
        return "increase `n` or `weight_eps`"
    need = theorem_units(target, eps_f, delta_f, C=C_f)
    return f"increase `n` (Theorem 1 with C={C_f:g}, delta={delta_f:g} gives n={list(need)})"


def _base_params(units: Sequence[int], tolerances: Sequence[float] | None, eps_f: float | None,
                 delta_f: float, C_f: float, weight_eps: float | None,
                 width_from: str) -> dict[str, Any]:
    """The params both the dense and the virtual path record."""
    return {
        "paper": "Pensia, Rajput, Nagle, Vishwakarma, Papailiopoulos (NeurIPS 2020), Theorem 1",
        "mode": "exact" if tolerances is None else "eps",
        "weight_eps": None if weight_eps is None else float(weight_eps),
        "eps": eps_f,
        "delta": delta_f,
        "n": list(units),
        "C": C_f,
        "width_from": width_from,
        "weight_tolerance": None if tolerances is None else list(tolerances),
    }


def construct(
    target: MLP,
    *,
    eps: float | None = None,
    delta: float = 0.01,
    n: int | tuple[int, ...] | None = None,
    C: float = bounds.PENSIA2020_C,
    rng: RNGLike = None,
    source: MLP | VirtualMLP | None = None,
    on_failure: str = "raise",
    timings: dict[str, float] | None = None,
    weight_eps: float | None = None,
    virtual: bool = False,
    backend: str = "numba",
    device: Any = None,
) -> Ticket:
    """Build the strong lottery ticket of Pensia et al. (NeurIPS 2020), Theorem 1.

    Parameters
    ----------
    target : MLP
        The ReLU network to approximate, ``d_0 -> ... -> d_l``. Theorem 1
        assumes ``||W_i||_2 <= 1``, no biases and inputs in the unit ball; the
        construction runs on any target (biases via constant units, module
        docstring) and records in ``params`` whether the assumptions hold. See
        :func:`slth.constructions.rescale` to scale a target into them.
    eps : float or None, default None
        Accuracy in (0, 1). Given: every subset-sum instance is solved in eps
        mode to the per-weight tolerance ``eps / (2 l d_in d_out)`` of the proof
        (``d_in + 1`` for a layer with a bias), and, when ``n`` is None, the
        width comes from :func:`slth.bounds.pensia2020_units`. None: every
        instance is solved exactly (its optimum; ``n <= 40``) and ``n`` (or
        ``source``) must be given.
    delta : float, default 0.01
        Failure probability in (0, 1) used for the width when ``n`` is None.
    n : int or sequence of int, optional
        Hidden units per sign part and per input coordinate (one value, or one
        per target layer): each input coordinate gets a block of ``2 n`` hidden
        units, so target layer i has ``2 n d_{i-1}`` source hidden units
        (``2 n (d_{i-1} + 1)`` with a bias) and each subset-sum instance has ``n``
        candidates (the first n units of its sign in the block).
        Overrides the width from ``eps``; inferred from ``source`` when omitted.
    C : float, default :data:`slth.bounds.PENSIA2020_C`
        Theorem 1's constant, used only for the width from eps and delta.
    rng : int, numpy.random.Generator, numpy.random.SeedSequence or None
        Randomness of the source, drawn once (ignored when ``source`` is given).
    source : MLP or slth.sources.VirtualMLP, optional
        A random network to prune instead of drawing one; it must have the
        layout's widths ``(d_0, m_1, d_1, ..., m_l, d_l)`` (and a bias vector on
        layer 2i when target layer i has a bias). It is pruned, never modified:
        the ticket's ``source`` is this object. A :class:`~slth.sources.VirtualMLP`
        is read entry by entry: only the entries a ticket may keep (the
        first layer's block diagonal, all of the second layer's), one block of
        rows at a time, and the chosen subsets go straight to kept flat indices
        (:func:`slth.constructions._realise.realise_kept`); no dense array of
        the source exists. The kept entries and errors are bit for bit those of
        ``construct(target, source=source.to_mlp(), ...)``.
    on_failure : {"raise", "report"}, default "raise"
        In eps mode, what to do when some instance misses its tolerance (the
        source is too small for eps): raise :class:`ConstructionError` naming
        how many missed and the worst error, or return the ticket with the
        failures counted in ``params`` and the actual errors in
        ``weight_errors``.
    timings : dict, optional
        If given, filled with wall-clock seconds per phase: ``"draw"``,
        ``"gather"``, ``"solve"``, ``"scatter"``, ``"ticket"``.
    weight_eps : float, optional
        Per-weight subset-sum tolerance, overriding the proof's
        ``eps / (2 l d_in d_out)``: every instance is solved in eps mode to
        ``weight_eps`` (the setting of Pensia et al.'s MNIST experiment,
        |w - sum| <= 0.01 with n = 21). The proof's sup-error guarantee then no
        longer follows from ``eps``; measure the ticket with
        :func:`slth.evaluate.certified_bound`.
    virtual : bool, default False
        Build the source as ``VirtualMLP(VirtualSource(source_spec(target,
        n), "uniform[-1,1]", rng))`` (``rng`` must then be an int seed) and
        construct over it as for a given VirtualMLP ``source``: memory in
        proportion to what the ticket keeps (a GPT-2-small MLP block's source of
        620M weights costs none). Its bits differ from ``virtual=False`` with the
        same ``rng`` (that draws with ``numpy.random.default_rng``).
    backend : {"numba", "torch"}, default "numba"
        ``"torch"`` (with ``virtual=True`` or a VirtualMLP ``source``, ``n <= 40``):
        the source's entries from the torch Philox and the subset sums from
        ``solve_batch(backend="torch")`` on ``device``
        (:func:`slth.torch._construct.construct_pensia2020`); in exact mode the
        same ticket as ``"numba"`` for the same seed, in eps mode every instance
        solved exactly.
    device : torch.device or str, optional
        The device of ``backend="torch"`` (default: CUDA when available).

    Returns
    -------
    Ticket
        ``construction="pensia2020"``, ``layer_map=((0, 1), (2, 3), ...)``,
        ``weight_errors[i]`` the realised ``max(|P_ij - W_ij|, |N_ij + W_ij|)``
        (P, N the positive/negative part sums), ``bias_errors[i]`` the realised
        ``|beta_i - b_i|`` or None, and JSON ``params``: ``eps``, ``delta``,
        ``n`` (per layer), ``C``, ``mode`` ("eps" or "exact"), ``width_from``,
        ``weight_tolerance`` (per layer, eps mode), ``n_instances``,
        ``n_failed``, ``worst_error``, ``seed``, ``source_given``,
        ``spectral_norms``, ``assumptions_hold`` and the paper reference.

    Raises
    ------
    InputError
        Non-MLP target or source, NaN/inf weights, ``eps``/``delta`` outside
        (0, 1), bad ``n``, ``C``, ``on_failure``, or neither ``eps``, ``n`` nor
        ``source`` given.
    ShapeError
        A source whose widths do not fit the layout (the message gives the
        expected widths).
    LimitError
        Exact mode with ``n > 40``, or the construction's estimated peak memory
        (:func:`peak_bytes`: source, instances, masks) exceeds the memory budget
        (:func:`slth._memory.memory_budget`); checked before anything large is
        allocated, the message names the largest ``n`` that fits.
    ConstructionError
        ``on_failure="raise"`` and some instance missed its tolerance.

    Examples
    --------
    >>> import numpy as np
    >>> from slth.nets import MLP
    >>> from slth.constructions import pensia2020
    >>> target = MLP([np.array([[0.5, -0.25]]), np.array([[0.75]])])
    >>> ticket = pensia2020.construct(target, eps=0.05, rng=0)
    >>> ticket.layer_map, ticket.source.widths[:3]
    (((0, 1), (2, 3)), (2, 108, 1))
    >>> bool(np.abs(ticket.forward([0.6, -0.8]) - target.forward([0.6, -0.8]))[0] < 0.05)
    True
    """
    t_start = time.perf_counter()
    target = check_target(target)
    eps_f = check_eps(eps)
    delta_f = check_delta(delta)
    C_f = check_positive("C", C)
    on_failure = check_on_failure(on_failure)
    if backend != "numba" or device is not None:
        return _construct_torch(target, eps, delta, n, C, rng, source, on_failure, timings,
                                weight_eps, virtual, backend, device)
    if virtual or isinstance(source, VirtualMLP):
        return _construct_virtual(target, eps_f, delta_f, n, C_f, rng, source, on_failure,
                                  timings, weight_eps, virtual, t_start)
    source, units, width_from = resolve_width(
        target, "n", n, source, eps_f,
        lambda: theorem_units(target, eps_f, delta_f, C=C_f),
        "the width then follows Theorem 1 via slth.bounds",
    )
    tolerances = _tolerances(target, units, eps_f, weight_eps)

    source_given = source is not None
    # the whole construction's peak, before anything large is allocated
    _check_peak(target, units, tolerances, source_given, eps_f if width_from == "eps" else None)
    t0 = time.perf_counter()
    if source is None:
        source = draw_source(target, units, rng)
    t_draw = time.perf_counter() - t0

    def hint() -> str:
        return _failure_hint(target, eps_f, delta_f, C_f)

    params = _base_params(units, tolerances, eps_f, delta_f, C_f, weight_eps, width_from)
    return realise(
        source, target, units, construction=NAME, select=select_subset_sum,
        tolerances=tolerances, params=params, units_name="n", on_failure=on_failure,
        failure_hint=hint, rng=rng, source_given=source_given, timings=timings,
        t_start=t_start, t_draw=t_draw, phase="solve",
    )


def _construct_torch(target: MLP, eps: Any, delta: Any, n: Any, C: Any, rng: Any, source: Any,
                     on_failure: str, timings: dict[str, float] | None, weight_eps: Any,
                     virtual: bool, backend: Any, device: Any) -> Ticket:
    """:func:`construct` with ``backend="torch"``: checks, then the torch construction."""
    if backend != "torch":
        if backend == "numba":
            raise InputError(f"`device` is used only with backend='torch'; received "
                             f"device={device!r} with backend='numba'")
        raise InputError(f"`backend` must be 'numba' or 'torch'; received {backend!r}")
    if virtual and source is not None:
        raise InputError("pass either `source` or `virtual=True`, not both; received both")
    if not virtual and not isinstance(source, VirtualMLP):
        raise InputError("backend='torch' builds over a virtual source: pass `virtual=True` "
                         "(with an int seed `rng`) or a VirtualMLP `source`; received "
                         f"virtual=False and source of type {type(source).__name__}")
    from .._backends import torch_bridge

    torch_bridge()  # a clear message when torch is missing
    from ..torch._construct import construct_pensia2020

    return construct_pensia2020(target, eps=eps, delta=delta, n=n, C=C, rng=rng, source=source,
                                on_failure=on_failure, timings=timings, weight_eps=weight_eps,
                                device=device)


def _virtual_units(target: MLP, n: Any, source: VirtualMLP | None, eps_f: float | None,
                   delta_f: float, C_f: float) -> tuple[tuple[int, ...], str]:
    """Units per layer for a virtual source: ``n``, else the source's widths, else eps."""
    from .. import _validate

    units = _validate.int_or_per_layer("n", n, target.depth)
    if source is not None:
        inferred = []
        for i in range(target.depth):
            per = 2 * (target.widths[i] + (target.biases[i] is not None))
            inferred.append(source.widths[2 * i + 1] // per if source.depth == 2 * target.depth
                            and source.widths[2 * i + 1] % per == 0 else 0)
        units_s = tuple(inferred)
        if units is None and min(units_s, default=0) >= 1:
            units = units_s
        spec = source_spec(target, units) if units is not None else None
        # compared by parameter (network names), so a VirtualMLP reading another network's
        # spec entries (``key_names``) fits when its shapes are the layout's
        if spec is None or {k: tuple(v) for k, v in source.param_specs().items()} != {
                resolve_name(k): tuple(v) for k, v in spec.items()}:
            expected = f"{spec}" if spec is not None else "the pair layout of source_spec"
            raise ShapeError(
                f"`source` must be a VirtualMLP over pensia2020's layout {expected} "
                f"(layouts.pair_dense.source_spec for target widths {target.widths}"
                f"{'' if units is None else f' and n={list(units)}'}); received "
                f"{dict(source.source.spec)}"
            )
        return units, "n" if n is not None else "source"
    if units is None:
        if eps_f is None:
            raise InputError(
                "pass `eps` (the width then follows Theorem 1 via slth.bounds), `n` (units per "
                "sign part and input coordinate) or `source`; received eps=None, n=None, "
                "source=None"
            )
        return theorem_units(target, eps_f, delta_f, C=C_f), "eps"
    return units, "n"


def _realise_virtual(target: MLP, source: VirtualMLP, units: tuple[int, ...],
                     tolerances: Any, chunk_bytes: int = CHUNK_BYTES, *,
                     select: Any = select_subset_sum, reader: Any = None,
                     solver_bytes: Any = None) -> KeptRealisation:
    """The kept entries and errors over a virtual source, before the Ticket (private).

    ``select``, ``reader`` (what the loop reads entries from, default ``source``) and
    ``solver_bytes`` let the torch path (:mod:`slth.torch._construct`) run the same loop.
    """
    if solver_bytes is None:
        def solver_bytes(B: int, n: int, tol: float | None) -> int:
            return _solve_batch_bytes(B, n, eps=tol, method="mitm")
    return realise_kept(
        source if reader is None else reader, target, units, select=select,
        tolerances=tolerances, solver_bytes=solver_bytes, chunk_bytes=chunk_bytes,
        phase="solve",
    )


def _construct_virtual(target: MLP, eps_f: float | None, delta_f: float, n: Any, C_f: float,
                       rng: Any, source: Any, on_failure: str,
                       timings: dict[str, float] | None, weight_eps: float | None,
                       virtual: bool, t_start: float, realise_fn: Any = None) -> Ticket:
    """:func:`construct` over a :class:`~slth.sources.VirtualMLP` (given, or ``virtual=True``).

    ``realise_fn(target, source, units, tolerances)`` replaces :func:`_realise_virtual`
    (the torch path's loop, :mod:`slth.torch._construct`).
    """
    from ._realise import failure_error
    from .targets import target_assumptions

    L = target.depth
    if virtual and source is not None:
        raise InputError("pass either `source` or `virtual=True`, not both; received both")
    if virtual and seed_param(rng) is None:
        raise InputError(f"`virtual=True` needs an int seed `rng` >= 0 (the VirtualSource's "
                         f"seed); received {rng!r}")
    units, width_from = _virtual_units(target, n, source, eps_f, delta_f, C_f)
    tolerances = _tolerances(target, units, eps_f, weight_eps)
    source_given = source is not None
    t0 = time.perf_counter()
    if source is None:
        source = VirtualMLP(VirtualSource(source_spec(target, units), "uniform[-1,1]", int(rng)))
    t_draw = time.perf_counter() - t0
    r = (_realise_virtual if realise_fn is None else realise_fn)(target, source, units,
                                                                  tolerances)
    if r.n_failed and on_failure == "raise":
        raise failure_error(NAME, r.n_failed, r.n_instances, r.failed_weights, r.worst,
                            tolerances, "n", units, _failure_hint(target, eps_f, delta_f, C_f))
    params: dict[str, Any] = {
        **_base_params(units, tolerances, eps_f, delta_f, C_f, weight_eps, width_from),
        **r.counts(),
        "seed": source.source.seed,
        "source_given": source_given,
        "source_law": source.source.law,
        "source_kind": "virtual",
        "row_blocks": r.chunks,
        "layout": "per input coordinate a block of 2n hidden units split by the sign of their "
                  "first-layer weight; each part uses the first n units of its sign; constant "
                  "block of 2n units per biased layer",
    }
    params.update(target_assumptions(target))
    t0 = time.perf_counter()
    ticket = Ticket.from_kept(
        source, r.kept, construction=NAME, params=params, target_widths=target.widths,
        layer_map=tuple((2 * i, 2 * i + 1) for i in range(L)),
        weight_errors=tuple(r.weight_errors), bias_errors=tuple(r.bias_errors),
        target_fingerprint=target.fingerprint(),
    )
    if timings is not None:
        timings.update({"draw": t_draw, **r.phases})
        timings.update({"ticket": time.perf_counter() - t0,
                        "total": time.perf_counter() - t_start})
    return ticket
