"""What the constructions share: their argument checks, and the names of the split modules.

The shared code of the MLP constructions lives by concern:

* :mod:`slth._validate`: the scalar and array validators (the ``check_*``
  helpers below are the constructions' names for them);
* :mod:`slth.constructions.targets`: target checks, :func:`rescale`,
  :func:`bounded_target`, :func:`target_assumptions`;
* :mod:`slth.constructions.layouts.pair_dense`: the two-source-layers-per-target
  layout (source widths, drawing and checking sources, gather and scatter of a
  layer's instances, nested sources, per-layer widths and tolerances, and the
  memory estimates of each step);
* :mod:`slth.constructions._realise`: the per-layer realisation loop, the
  failure tally and ticket assembly.

Every name this module held before the split is still importable from here.
"""

from __future__ import annotations

from typing import Any

from .. import _validate
from ._realise import build_ticket, failure_error, finish_ticket, seed_param, tally_failures
from .layouts.pair_dense import (
    LayerInstances,
    check_source,
    draw_source,
    gather_bytes,
    gather_layer,
    layer_tolerances,
    layer_units,
    mask_bytes,
    nested_source,
    resolve_width,
    scatter_bytes,
    scatter_layer,
    source_bytes,
    source_widths,
)
from .targets import RescaledTarget, bounded_target, check_target, rescale, target_assumptions

__all__ = [
    "ON_FAILURE",
    "LayerInstances",
    "RescaledTarget",
    "bounded_target",
    "build_ticket",
    "check_delta",
    "check_eps",
    "check_on_failure",
    "check_positive",
    "check_source",
    "check_target",
    "check_units",
    "draw_source",
    "failure_error",
    "finish_ticket",
    "gather_bytes",
    "gather_layer",
    "layer_tolerances",
    "layer_units",
    "mask_bytes",
    "nested_source",
    "rescale",
    "resolve_width",
    "scatter_bytes",
    "scatter_layer",
    "seed_param",
    "source_bytes",
    "source_widths",
    "tally_failures",
    "target_assumptions",
]

#: The values of every construction's ``on_failure``.
ON_FAILURE: tuple[str, ...] = ("raise", "report")


def draw_network(arch: Any, law: Any, seed: int, *, virtual: bool) -> Any:
    """A fixed random source over an architecture: virtual (entries on demand) or dense.

    ``VirtualNetwork(arch, VirtualSource(spec, law, seed))`` or the
    :class:`~slth.nets.base.Network` of ``DenseSource.draw(spec, law, seed)``: the
    same bits either way.

    Parameters
    ----------
    arch : slth.nets.base.Architecture
    law : str or Mapping[str, str]
        A law name, or one per parameter (:mod:`slth.sources`).
    seed : int
        >= 0.
    virtual : bool

    Returns
    -------
    slth.sources.VirtualNetwork or slth.nets.base.Network
    """
    from ..sources import DenseSource, VirtualNetwork, VirtualSource

    spec = dict(arch.param_specs())
    if virtual:
        return VirtualNetwork(arch, VirtualSource(spec, law, seed))
    drawn = DenseSource.draw(spec, law, seed)
    return arch.with_params({name: drawn.dense(name) for name in spec})


def check_eps(eps: Any, *, allow_none: bool = True) -> float | None:
    """Validate ``eps`` in (0, 1) (or None)."""
    return _validate.open_interval("eps", eps, 0.0, 1.0, allow_none=allow_none)


def check_delta(delta: Any) -> float:
    """Validate ``delta`` in (0, 1)."""
    return _validate.open_interval("delta", delta, 0.0, 1.0)  # type: ignore[return-value]


def check_positive(name: str, value: Any) -> float:
    """Validate a finite number > 0."""
    return _validate.positive(name, value)  # type: ignore[return-value]


def check_on_failure(on_failure: Any) -> str:
    """Validate ``on_failure`` in :data:`ON_FAILURE`."""
    return str(_validate.one_of("on_failure", on_failure, ON_FAILURE))


def check_units(name: str, value: Any, depth: int) -> tuple[int, ...] | None:
    """Validate a width parameter: None, an int >= 1, or one int >= 1 per target layer."""
    return _validate.int_or_per_layer(name, value, depth)
