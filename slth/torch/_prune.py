"""Tickets as ``torch.nn.utils.prune``-pruned modules, and back.

:func:`to_module` builds the source network as torch modules (through the
per-layer-type table) and applies the ticket's masks the way
``torch.nn.utils.prune`` does: each parameter ``<name>`` becomes a frozen
parameter ``<name>_orig`` holding the source's random values, a buffer
``<name>_mask`` holding the mask, and a forward pre-hook recomputing
``<name> = <name>_orig * <name>_mask``. So ``prune.is_pruned``,
``prune.remove`` and users' own pruning tools recognise the ticket, and
``state_dict`` saves and loads it. :func:`ticket_from_module` reads such a module
back into a :class:`slth.Ticket` (the round trip is exact in float64).
:func:`from_module` reads a plain torch model into an slth network.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune

from ..errors import InputError, ShapeError, format_value
from ..nets.base import Network
from ..nets.io import mlp_from_network
from ..sources import VirtualMLP, VirtualNetwork
from ..ticket import Ticket
from ._common import as_device, as_dtype
from ._table import network_from_torch, network_module

__all__ = ["from_module", "ticket_from_module", "to_module"]

_PREFIX = "layers."


def _torch_name(name: str) -> tuple[str, str]:
    """slth ``"layers.2.body.0.weight"`` -> torch (``"2.body.0"``, ``"weight"``)."""
    path, local = name[len(_PREFIX):].rsplit(".", 1)
    return path, local


def _dense_source(ticket: Ticket) -> Network:
    src = ticket.source
    if isinstance(src, VirtualMLP):
        return src.to_mlp()  # type: ignore[no-any-return]
    if isinstance(src, VirtualNetwork):
        return src.to_network()  # type: ignore[no-any-return]
    return src  # type: ignore[no-any-return]


def to_module(ticket: Ticket, *, device: Any = None,
              dtype: torch.dtype | str = torch.float64) -> nn.Sequential:
    """The ticket as torch modules pruned with ``torch.nn.utils.prune``'s masks.

    Parameters
    ----------
    ticket : Ticket
        Any ticket. A virtual source is materialised (memory-guarded: the
        module holds every source entry, as ``prune`` requires).
    device : torch.device or str, optional
        Default: ``cuda`` when available, else ``cpu``.
    dtype : {torch.float64, torch.float32, "float64", "float32"}, default torch.float64
        Parameter dtype (float64: the source's values exactly).

    Returns
    -------
    torch.nn.Sequential
        The source network's modules (children named as its layers) with, for
        every source parameter ``<name>``, the frozen parameter ``<name>_orig``
        (the source's values), the buffer ``<name>_mask`` (1 where the ticket
        keeps the entry) and ``prune``'s forward pre-hook.

    Raises
    ------
    InputError
        Not a ticket, or a layer type without a torch table entry.
    LimitError
        A virtual source too large to materialise.
    """
    if not isinstance(ticket, Ticket):
        raise InputError(f"`ticket` must be a slth.Ticket; received {format_value(ticket)} of "
                         f"type {type(ticket).__name__}")
    dev, dt = as_device(device), as_dtype(dtype)
    source = _dense_source(ticket)
    module = network_module(source, None, dev, dt, "ticket")
    for name, mask in zip(source.param_specs(), ticket.masks, strict=True):
        path, local = _torch_name(name)
        sub = module.get_submodule(path)
        prune.custom_from_mask(sub, local, torch.tensor(mask, device=dev))
        getattr(sub, local + "_orig").requires_grad_(False)
    return module


def _pruned_entries(module: nn.Module) -> dict[str, tuple[nn.Module, str, torch.Tensor]]:
    """torch parameter name -> (submodule, local name, mask) for every pruned parameter."""
    out: dict[str, tuple[nn.Module, str, torch.Tensor]] = {}
    for sub_name, sub in module.named_modules():
        for hook in sub._forward_pre_hooks.values():
            if isinstance(hook, prune.BasePruningMethod):
                local = hook._tensor_name
                key = f"{sub_name}.{local}" if sub_name else local
                out[key] = (sub, local, getattr(sub, local + "_mask"))
    return out


def ticket_from_module(module: nn.Module, *, input_shape: Any = None,
                       construction: str = "manual", params: dict[str, Any] | None = None,
                       target_fingerprint: str | None = None) -> Ticket:
    """Read a module pruned with ``torch.nn.utils.prune`` as a :class:`slth.Ticket`.

    The source is the module's unpruned values (``<name>_orig``; a parameter
    that is not pruned is kept whole), the kept entries those of mask 1.

    Parameters
    ----------
    module : torch.nn.Sequential
        As :func:`to_module` returns it, or any model of the torch table's
        layer types pruned with ``torch.nn.utils.prune`` (masks of 0 and 1).
    input_shape : tuple of int, optional
        Per-example input shape, needed when the first layer declares none
        (a convolution), as in :func:`from_module`.
    construction, params, target_fingerprint
        As in :class:`slth.Ticket`.

    Returns
    -------
    Ticket
        Over a dense source (an :class:`slth.nets.MLP` when the layers are
        one), float64.

    Raises
    ------
    InputError
        A mask that is not 0/1, a module the torch table cannot read (the
        message names the layer).
    """
    if not isinstance(module, nn.Module):
        raise InputError(f"`module` must be a torch.nn.Module; received "
                         f"{format_value(module)} of type {type(module).__name__}")
    pruned = _pruned_entries(module)
    plain = _unpruned_copy(module, pruned)
    net = network_from_torch(plain, input_shape=input_shape)
    masks: dict[str, np.ndarray] = {}
    for name, shape in net.param_specs().items():
        key = name[len(_PREFIX):]
        if key not in pruned:
            masks[name] = np.ones(shape, dtype=bool)
            continue
        m = pruned[key][2].detach().to("cpu", torch.float64).numpy()
        if m.shape != shape:
            raise ShapeError(f"`module` mask of {key!r} has shape {m.shape}; the parameter has "
                             f"shape {shape}")
        if not np.all((m == 0.0) | (m == 1.0)):
            raise InputError(f"`module` mask of {key!r} must hold only 0 and 1 (a ticket keeps "
                             "or prunes an entry; it never rescales one)")
        masks[name] = m == 1.0
    try:
        net = mlp_from_network(net)
    except InputError:
        pass
    return Ticket(net, masks, construction=construction, params=params,
                  target_fingerprint=target_fingerprint)


def _unpruned_copy(module: nn.Module, pruned: dict[str, Any]) -> nn.Module:
    """A deep copy of ``module`` whose pruned parameters hold their ``_orig`` values."""
    import copy

    for sub, local, _ in pruned.values():
        # prune's recomputed attribute is not a graph leaf when <name>_orig requires grad,
        # which deepcopy refuses; its detached value is what the next forward recomputes
        setattr(sub, local, getattr(sub, local).detach())
    plain = copy.deepcopy(module)
    for key in pruned:
        sub_name, _, local = key.rpartition(".")
        sub = plain.get_submodule(sub_name) if sub_name else plain
        orig = getattr(sub, local + "_orig").detach().clone()
        prune.remove(sub, local)
        with torch.no_grad():
            getattr(sub, local).copy_(orig)
    return plain


def from_module(module: nn.Module, *, input_shape: Any = None) -> Network:
    """A torch model as an slth network, through the per-layer-type table.

    :func:`slth.torch.network_from_torch` under the name the interop docs use;
    an :class:`slth.nets.MLP` is returned when the layers are ``Linear, ReLU,
    ..., Linear``.

    Parameters
    ----------
    module : torch.nn.Module
        An ``nn.Sequential`` of supported modules (an unsupported one is named
        with its position in the error).
    input_shape : tuple of int, optional
        Per-example input shape (needed when the first layer declares none,
        e.g. a convolution).

    Returns
    -------
    Network
    """
    net = network_from_torch(module, input_shape=input_shape)
    try:
        return mlp_from_network(net)
    except InputError:
        return net
