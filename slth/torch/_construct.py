"""Pensia et al. (2020)'s ticket over a virtual source, with the random work on a torch device.

:func:`construct_pensia2020` is :func:`slth.constructions.pensia2020.construct`
with ``virtual=True`` (or a given :class:`~slth.sources.VirtualMLP` source)
where the two costly random-network steps run on ``device``:

* the source's entries (the block-diagonal first-layer weights and every
  second-layer weight a ticket may keep) are computed by the torch Philox of
  :mod:`slth.torch._philox`, bit for bit the numba/numpy entries;
* every layer's subset-sum instances are solved by
  ``solve_batch(..., backend="torch", device=device)``
  (:func:`slth.torch._solve.solve_exact`: the numba meet in the middle's fixed
  point, so in exact mode (``eps=None`` and ``weight_eps=None``) its optimum,
  the numba masks bit for bit wherever that optimum is unique).

The rest is the CPU construction's own code (the row blocks of
:func:`slth.constructions._realise.realise_kept`, the sign parts, the
scatter to kept flat indices, the ticket), so in exact mode the ticket equals
the CPU one for the same seed: the same kept entries, the same errors, the
same params, hence the same forward pass bit for bit.

Departures from the CPU path
----------------------------
* eps mode (``eps`` or ``weight_eps`` given): the torch solver solves every
  instance exactly (the eps-mode contract holds: a subset within the
  tolerance is returned whenever one exists), where numba returns the first
  subset within the tolerance it meets; the kept entries may then differ from
  the CPU ticket's (both are valid tickets for the same source).
* ``n <= 40`` (:data:`slth.subset_sum.EXACT_MAX_N`) in both modes: the torch
  solver is exact meet in the middle only.
* the second layer's row blocks are computed whole (``rows x m`` entries on
  the device, copied to the host for the gather) rather than fused with the
  products as the numba gather does; the same bits (tested in
  ``tests/test_pensia_virtual.py`` for the numba twins, here end to end).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .. import bounds
from .._memory import check_memory, format_count
from ..errors import InputError, LimitError, format_value
from ..nets.mlp import MLP
from ..sources import VirtualMLP
from ..subset_sum import EXACT_MAX_N, solve_batch
from ..ticket import Ticket
from ._common import as_device
from ._philox import CHUNK_BYTES as PHILOX_CHUNK_BYTES
from ._philox import source_entries

__all__ = ["TorchEntries", "construct_pensia2020", "torch_selector"]


class TorchEntries:
    """A virtual network's entries computed by the torch Philox on a device, handed over as numpy.

    The reading side of a :class:`slth.sources.Source` that the construction
    loop (:func:`slth.constructions._realise.realise_kept`) uses:
    ``parameter_names()`` and ``entries(name, flat_index)``, equal bit for bit
    to those of ``net`` (it deliberately has no ``source`` attribute, so the
    loop reads through :meth:`entries` instead of its fused numba gather).

    Parameters
    ----------
    net : slth.sources.VirtualMLP
        The virtual source network.
    device : torch.device or str, optional
        Default: CUDA when available, else CPU.
    chunk_bytes : int
        Working bytes of one chunk of Philox blocks on the device.
    """

    def __init__(self, net: VirtualMLP, device: Any = None,
                 chunk_bytes: int = PHILOX_CHUNK_BYTES) -> None:
        if not isinstance(net, VirtualMLP):
            raise InputError(f"`net` must be a slth.sources.VirtualMLP; received "
                             f"{type(net).__name__}")
        self.net = net
        self.device = as_device(device)
        self.chunk_bytes = chunk_bytes
        #: entries computed on the device, for the record
        self.n_entries = 0

    def parameter_names(self) -> tuple[str, ...]:
        """The network's parameter names (:meth:`slth.sources.VirtualMLP.parameter_names`)."""
        return self.net.parameter_names()

    def entries(self, name: str, flat_index: Any) -> np.ndarray:
        """``net.entries(name, flat_index)``, computed on the device (float64, index's shape)."""
        size = int(np.size(flat_index))
        check_memory(16 * size, what=f"TorchEntries.entries(`{name}`): the host copy of "
                                     f"{format_count(size)} entries and their index",
                     alternative="smaller row blocks")
        out = source_entries(self.net, name, flat_index, device=self.device,
                             chunk_bytes=self.chunk_bytes)
        self.n_entries += size
        return out.cpu().numpy()


def torch_selector(device: Any = None) -> Any:
    """The selector of Theorem 1 with ``solve_batch(..., backend="torch", device=device)``.

    Parameters
    ----------
    device : torch.device or str, optional

    Returns
    -------
    callable
        ``select(values, targets, valid, tolerance) -> (chosen, errors)``
        (:data:`slth.constructions._realise.Selector`).
    """
    dev = as_device(device)

    def select(values: np.ndarray, targets: np.ndarray, valid: np.ndarray,
               tolerance: float | None) -> tuple[np.ndarray, np.ndarray]:
        res = solve_batch(values, targets, eps=tolerance, backend="torch", device=dev)
        return res.masks, res.errors

    return select


def _solver_bytes(B: int, n: int, tol: float | None) -> int:
    """Host bytes of one torch solve_batch call: results (B (n + 25)), int64 fixed point
    of the values and targets (8 B (n + 1)) and the float64 row copy (8 B n)."""
    return B * (n + 25) + 8 * B * (n + 1) + 8 * B * n


def construct_pensia2020(
    target: MLP,
    *,
    eps: float | None = None,
    delta: float = 0.01,
    n: int | tuple[int, ...] | None = None,
    C: float = bounds.PENSIA2020_C,
    rng: int | None = None,
    source: VirtualMLP | None = None,
    on_failure: str = "raise",
    timings: dict[str, float] | None = None,
    weight_eps: float | None = None,
    device: Any = None,
    chunk_bytes: int | None = None,
) -> Ticket:
    """Pensia et al. (NeurIPS 2020), Theorem 1, over a virtual source, on a torch device.

    :func:`slth.constructions.pensia2020.construct` with ``virtual=True`` (the
    source ``VirtualMLP(VirtualSource(source_spec(target, n), "uniform[-1,1]",
    rng))``) or a given VirtualMLP ``source``, its entries computed by the torch
    Philox and its subset sums solved by ``solve_batch(backend="torch")`` on
    ``device`` (module docstring). In exact mode the ticket equals
    ``pensia2020.construct(target, n=n, virtual=True, rng=rng)`` (the same
    kept entries, errors and params).

    Parameters
    ----------
    target : MLP
    eps, delta, n, C, on_failure, timings, weight_eps
        As for :func:`slth.constructions.pensia2020.construct`; ``n`` (or the
        width from ``eps``) at most 40 per layer.
    rng : int, optional
        The VirtualSource's seed (>= 0); required unless ``source`` is given.
    source : slth.sources.VirtualMLP, optional
        A virtual source over the layout of
        :func:`slth.constructions.layouts.pair_dense.source_spec`.
    device : torch.device or str, optional
        Default: CUDA when available, else CPU.
    chunk_bytes : int, optional
        Host bytes of one row block of the construction loop (default
        :data:`slth.constructions._realise.CHUNK_BYTES`).

    Returns
    -------
    Ticket
        As :func:`slth.constructions.pensia2020.construct` returns over a
        virtual source.

    Raises
    ------
    InputError
        As :func:`~slth.constructions.pensia2020.construct`; also a source that
        is not a VirtualMLP, both ``source`` and ``rng``-less, or a bad device.
    LimitError
        ``n > 40`` (the torch solver is exact meet in the middle), or the
        memory budget.
    ConstructionError
        ``on_failure="raise"`` and an instance missed its tolerance.
    """
    from ..constructions import pensia2020 as p
    from ..constructions._common import check_delta, check_eps, check_on_failure, check_positive
    from ..constructions._realise import CHUNK_BYTES, seed_param
    from ..constructions.targets import check_target

    t_start = time.perf_counter()
    target = check_target(target)
    eps_f = check_eps(eps)
    delta_f = check_delta(delta)
    C_f = check_positive("C", C)
    on_failure = check_on_failure(on_failure)
    dev = as_device(device)
    if source is not None and not isinstance(source, VirtualMLP):
        raise InputError(f"`source` must be a slth.sources.VirtualMLP (the torch path computes "
                         f"its entries from their seed); received {format_value(source)} of "
                         f"type {type(source).__name__}")
    if source is None and seed_param(rng) is None:
        raise InputError(f"`rng` must be an int seed >= 0 (the VirtualSource's seed) when no "
                         f"`source` is given; received {rng!r}")
    chunk = CHUNK_BYTES if chunk_bytes is None else int(chunk_bytes)

    def realise_on_device(target: MLP, net: VirtualMLP, units: tuple[int, ...],
                          tolerances: Any) -> Any:
        if max(units) > EXACT_MAX_N:
            raise LimitError(f"`n` = {list(units)}: the torch path solves every instance by "
                             f"exact meet in the middle and accepts n <= {EXACT_MAX_N}; pass a "
                             "smaller `n`, or use pensia2020.construct (numba eps mode accepts "
                             "any n)")
        return p._realise_virtual(target, net, units, tolerances, chunk,
                                  select=torch_selector(dev), reader=TorchEntries(net, dev),
                                  solver_bytes=_solver_bytes)

    # the CPU construction's own checks, params and ticket, with the loop above
    return p._construct_virtual(target, eps_f, delta_f, n, C_f, rng, source, on_failure,
                                timings, weight_eps, source is None, t_start,
                                realise_fn=realise_on_device)
