"""The per-layer-type torch table: how each slth layer type becomes a torch module and back.

:func:`network_to_torch` walks a :class:`slth.nets.Network` and asks this table,
layer by layer, for a module; :func:`network_from_torch` walks an
``nn.Sequential`` and asks it, module by module, for a layer. Core code
(:mod:`slth.nets`) never names torch: a layer type defined anywhere, a test file
included, joins the torch backend by one :func:`register_torch_layer` call.

Built in: :class:`~slth.nets.Dense` (``nn.Linear``, or :class:`SparseLinear`
for a ``scipy.sparse`` weight), :class:`~slth.nets.ReLU` (``nn.ReLU``) and
:class:`~slth.nets.Residual` (:class:`ResidualBlock`, body built recursively
through the table).

Module names
------------
The ``nn.Sequential`` that :func:`network_to_torch` builds names its children
as the network names its layers, so its ``state_dict`` keys are the network's
parameter names without the ``"layers."`` prefix (``"2.body.0.weight"`` for
``"layers.2.body.0.weight"``).
"""

from __future__ import annotations

import dataclasses
import re
import types
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from ..errors import InputError, format_value
from ..nets.base import Layer, Network, Residual, registered_name
from ..nets.layers import Dense, ReLU
from ._common import as_device, as_dtype, check_range, tensor

__all__ = [
    "BuildContext",
    "ReadContext",
    "ResidualBlock",
    "SparseLinear",
    "TorchLayer",
    "network_from_torch",
    "network_to_torch",
    "register_torch_layer",
    "torch_layers",
    "unregister_torch_layer",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")

ToModule = Callable[[Any, Mapping[str, Any], "BuildContext"], nn.Module]
FromModule = Callable[[Any, "ReadContext"], tuple[Layer, Mapping[str, Any]]]


# ====================================================================== modules
class ResidualBlock(nn.Module):
    """``x -> x + body(x)``: the torch form of :class:`slth.nets.Residual`.

    Parameters
    ----------
    body : torch.nn.Sequential
        The block's layers; its ``state_dict`` keys read ``"body.<sub>.<local>"``
        like the Residual's parameter names.
    """

    def __init__(self, body: nn.Sequential) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SparseLinear(nn.Module):
    """``x -> x @ weight.T + bias`` with a sparse CSR ``weight`` (out x in), as ``nn.Linear``.

    The torch form of a :class:`slth.nets.Dense` whose weight is given as a
    ``scipy.sparse`` matrix: the product runs over the stored entries only. The
    weight and the bias are buffers (not trained parameters).

    Parameters
    ----------
    weight : torch.Tensor
        Sparse CSR, shape ``(out_features, in_features)``.
    bias : torch.Tensor or None
        Dense, shape ``(out_features,)``.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.out_features, self.in_features = (int(d) for d in weight.shape)
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        h = x.reshape(-1, self.in_features).T.contiguous()
        y = (self.weight @ h).T
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*lead, self.out_features)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, nnz={self.weight.values().numel()}")


# ====================================================================== contexts
@dataclasses.dataclass(frozen=True)
class BuildContext:
    """What a ``to_module`` builder receives besides its layer and its parameters.

    Attributes
    ----------
    device : torch.device
        Where the module's tensors go.
    dtype : torch.dtype
        torch.float32 or torch.float64, the module's float dtype.
    path : str
        The layer's path in the network (``"layers.2.body.0"``), for messages.
    what : str, default "net"
        The caller's parameter name, for messages.
    """

    device: torch.device
    dtype: torch.dtype
    path: str
    what: str = "net"

    def tensor(self, value: Any, name: str | None = None) -> torch.Tensor:
        """A dense float tensor of :attr:`dtype` on :attr:`device`, copied from ``value``.

        Parameters
        ----------
        value : numpy.ndarray or scipy.sparse matrix
            A parameter as the builder received it (a sparse matrix is densified).
        name : str, optional
            Parameter name for the :class:`~slth.errors.LimitError` raised on
            values beyond float32's range (default :attr:`what`).

        Returns
        -------
        torch.Tensor
        """
        arr = value.toarray() if sp.issparse(value) else np.asarray(value, dtype=np.float64)
        return tensor(arr, self.dtype, self.device, name or self.what)

    def sparse_csr(self, value: Any, name: str | None = None) -> torch.Tensor:
        """A sparse CSR tensor of :attr:`dtype` on :attr:`device` from a 2-D matrix.

        Parameters
        ----------
        value : scipy.sparse matrix or numpy.ndarray
            Only its stored (nonzero, for an array) entries are kept.
        name : str, optional
            As in :meth:`tensor`.

        Returns
        -------
        torch.Tensor
        """
        m = sp.csr_matrix(value, dtype=np.float64, copy=True)
        m.sum_duplicates()
        m.sort_indices()
        name = name or self.what
        check_range(m.data, self.dtype, name)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
            return torch.sparse_csr_tensor(
                tensor(m.indptr.astype(np.int64), torch.int64, self.device),
                tensor(m.indices.astype(np.int64), torch.int64, self.device),
                tensor(m.data, self.dtype, self.device, name),
                size=m.shape,
                check_invariants=False,
            )

    def sequential(self, layers: Sequence[tuple[str, Layer]], params: Mapping[str, Any],
                   prefix: str = "") -> nn.Sequential:
        """Build named layers through the table (what a combinator's builder calls).

        Parameters
        ----------
        layers : sequence of (str, Layer)
            E.g. a Residual's ``body``.
        params : Mapping[str, Any]
            Parameters keyed ``"<prefix><name>.<local>"`` (a Residual's own
            parameter mapping with ``prefix="body."``).
        prefix : str, default ""
            Stripped from the keys, and added to :attr:`path` for the sublayers.

        Returns
        -------
        torch.nn.Sequential
            Children named as ``layers``.
        """
        sub = f"{self.path}.{prefix}" if self.path else prefix
        return _build_sequence(layers, params, prefix, sub, self.device, self.dtype, self.what)


@dataclasses.dataclass(frozen=True)
class ReadContext:
    """What a ``from_module`` reader receives besides its module.

    Attributes
    ----------
    path : str
        The module's path in the module read (``"2.body.0"``), for messages.
    """

    path: str

    def array(self, value: torch.Tensor) -> np.ndarray:
        """A float64 numpy copy of a tensor (dense or sparse, any device; exact).

        Parameters
        ----------
        value : torch.Tensor

        Returns
        -------
        numpy.ndarray
        """
        t = value.detach()
        if t.layout != torch.strided:
            t = t.to_dense()
        return t.to("cpu", torch.float64).numpy().copy()

    def sequential(self, module: nn.Module) -> tuple[tuple[tuple[str, Layer], ...],
                                                      dict[str, np.ndarray]]:
        """Read an ``nn.Sequential`` through the table (what a combinator's reader calls).

        Parameters
        ----------
        module : torch.nn.Sequential

        Returns
        -------
        (tuple of (str, Layer), dict)
            The named layers and their parameters keyed ``"<name>.<local>"``.
        """
        return _read_sequence(module, f"{self.path}." if self.path else "")


# ====================================================================== the table
@dataclasses.dataclass(frozen=True)
class TorchLayer:
    """One entry of the torch table (see :func:`register_torch_layer`).

    Attributes
    ----------
    layer_type : type
    to_module : callable
    from_module : callable or None
    module_types : tuple of type
        The module types ``from_module`` reads (empty without one).
    """

    layer_type: type
    to_module: ToModule
    from_module: FromModule | None
    module_types: tuple[type, ...]


_TABLE: dict[type, TorchLayer] = {}
_READERS: dict[type, TorchLayer] = {}


def _type_name(cls: type) -> str:
    reg = registered_name(cls)
    return f"{cls.__qualname__}" + (f" (registered as {reg!r})" if reg else "")


def register_torch_layer(
    layer_type: type,
    *,
    to_module: ToModule,
    from_module: FromModule | None = None,
    module_type: type | Sequence[type] | None = None,
) -> None:
    """Teach the torch backend a layer type: how to build its module, and how to read it back.

    Parameters
    ----------
    layer_type : type
        A subclass of :class:`slth.nets.Layer`. Looked up by exact type (a
        subclass of Dense needs its own entry). Registering a type again
        replaces its entry.
    to_module : callable
        ``to_module(layer, params, ctx) -> torch.nn.Module``: ``layer`` the
        layer instance, ``params`` its parameters by local name (float64 numpy
        arrays; ``scipy.sparse`` matrices for the layer's ``sparse_params``
        where the caller gave them so), ``ctx`` a :class:`BuildContext` (device,
        dtype, ``ctx.tensor`` / ``ctx.sparse_csr`` copies, ``ctx.sequential``
        to build a body recursively). The module maps a ``(batch,
        *input_shape)`` tensor to ``(batch, *output_shape)`` like
        ``layer.apply``.
    from_module : callable, optional
        ``from_module(module, ctx) -> (layer, params)``: the inverse, ``params``
        by local name (``ctx`` a :class:`ReadContext`: ``ctx.array`` copies a
        tensor to float64 numpy, ``ctx.sequential`` reads a body). Without it
        :func:`network_from_torch` cannot read this layer type's modules.
    module_type : type or sequence of type, optional
        The ``torch.nn.Module`` subclass(es) ``from_module`` reads, matched by
        exact type. Required with ``from_module``, refused without it.

    Raises
    ------
    InputError
        ``layer_type`` not a Layer subclass, a builder that is not callable,
        ``from_module`` and ``module_type`` not given together, or a module
        type already read by another layer type's entry (unregister it first).

    Examples
    --------
    An elementwise scaling layer with a ``"scale"`` parameter and its module::

        class TorchScale(nn.Module):
            def __init__(self, scale):
                super().__init__()
                self.scale = nn.Parameter(scale)
            def forward(self, x):
                return x * self.scale

        register_torch_layer(
            Scale,
            to_module=lambda layer, p, ctx: TorchScale(ctx.tensor(p["scale"])),
            from_module=lambda m, ctx: (Scale(m.scale.numel()), {"scale": ctx.array(m.scale)}),
            module_type=TorchScale,
        )
    """
    if not (isinstance(layer_type, type) and issubclass(layer_type, Layer)):
        raise InputError(
            f"`layer_type` must be a subclass of slth.nets.Layer; received "
            f"{format_value(layer_type)}"
        )
    if not callable(to_module):
        raise InputError(
            f"`to_module` must be a callable (layer, params, ctx) -> torch.nn.Module; received "
            f"{format_value(to_module)}"
        )
    if from_module is not None and not callable(from_module):
        raise InputError(
            f"`from_module` must be None or a callable (module, ctx) -> (layer, params); "
            f"received {format_value(from_module)}"
        )
    if module_type is None:
        types_: tuple[type, ...] = ()
    elif isinstance(module_type, type):
        types_ = (module_type,)
    elif isinstance(module_type, Sequence) and not isinstance(module_type, (str, bytes)):
        types_ = tuple(module_type)
    else:
        types_ = (module_type,)  # type: ignore[assignment]
    for t in types_:
        if not (isinstance(t, type) and issubclass(t, nn.Module)):
            raise InputError(
                f"`module_type` must be a torch.nn.Module subclass or a sequence of them; "
                f"received {format_value(module_type)}"
            )
    if (from_module is None) != (not types_):
        raise InputError(
            "`from_module` and `module_type` must be given together (the module types are "
            f"what from_module reads); received from_module={format_value(from_module)}, "
            f"module_type={format_value(module_type)}"
        )
    for t in types_:
        other = _READERS.get(t)
        if other is not None and other.layer_type is not layer_type:
            raise InputError(
                f"`module_type` {t.__qualname__} is already read by the entry of "
                f"{_type_name(other.layer_type)}; call unregister_torch_layer"
                f"({other.layer_type.__qualname__}) first"
            )
    unregister_torch_layer(layer_type)
    entry = TorchLayer(layer_type, to_module, from_module, types_)
    _TABLE[layer_type] = entry
    for t in types_:
        _READERS[t] = entry


def unregister_torch_layer(layer_type: type) -> bool:
    """Remove a layer type's entry from the torch table.

    Parameters
    ----------
    layer_type : type

    Returns
    -------
    bool
        Whether there was an entry.
    """
    entry = _TABLE.pop(layer_type, None)
    if entry is None:
        return False
    for t in entry.module_types:
        if _READERS.get(t) is entry:
            del _READERS[t]
    return True


def torch_layers() -> Mapping[type, TorchLayer]:
    """The torch table, by layer type (a read-only snapshot).

    Returns
    -------
    Mapping[type, TorchLayer]
    """
    return types.MappingProxyType(dict(_TABLE))


# ====================================================================== building
def _unregistered_layer(path: str, layer: Layer, what: str) -> InputError:
    cls = type(layer)
    return InputError(
        f"`{what}` layer `{path}` has type {_type_name(cls)}, which has no torch builder; "
        f"register one with slth.torch.register_torch_layer({cls.__qualname__}, "
        "to_module=..., from_module=..., module_type=...)"
    )


def _build_sequence(layers: Sequence[tuple[str, Layer]], params: Mapping[str, Any],
                    key_prefix: str, path_prefix: str, device: torch.device,
                    dtype: torch.dtype, what: str = "net") -> nn.Sequential:
    mods: OrderedDict[str, nn.Module] = OrderedDict()
    for name, layer in layers:
        path = f"{path_prefix}{name}"
        entry = _TABLE.get(type(layer))
        if entry is None:
            raise _unregistered_layer(path, layer, what)
        head = f"{key_prefix}{name}."
        local = {k[len(head):]: v for k, v in params.items() if k.startswith(head)}
        module = entry.to_module(layer, local, BuildContext(device, dtype, path, what))
        if not isinstance(module, nn.Module):
            raise InputError(
                f"the torch builder of {_type_name(type(layer))} must return a torch.nn.Module "
                f"for layer `{path}`; it returned {format_value(module)}"
            )
        mods[name] = module
    return nn.Sequential(mods)


def network_to_torch(
    net: Network,
    *,
    params: Mapping[str, Any] | None = None,
    device: Any = None,
    dtype: torch.dtype | str = torch.float32,
) -> nn.Sequential:
    """Build a ``torch.nn.Sequential`` computing ``net`` through the torch table.

    Parameters
    ----------
    net : slth.nets.Network
    params : Mapping[str, array_like or scipy.sparse matrix], optional
        Parameters used instead of the network's own, by dotted name (names not
        given keep ``net.params``); validated as in
        :meth:`slth.nets.Network.forward`. A ``scipy.sparse`` Dense weight
        builds a :class:`SparseLinear` (product over the stored entries only).
    device : torch.device or str, optional
        Default: ``cuda`` when available, else ``cpu``.
    dtype : {torch.float32, torch.float64, "float32", "float64"}, default torch.float32
        Float dtype of the module. float64 is exact:
        ``network_from_torch(network_to_torch(net, dtype=torch.float64))``
        returns the same bits.

    Returns
    -------
    torch.nn.Sequential
        Children named as ``net.layers`` (see the module docstring).

    Raises
    ------
    InputError
        ``net`` not a Network, bad ``params``, ``device`` or ``dtype``, or a
        layer type with no entry in the table (the message names it and
        :func:`register_torch_layer`).
    LimitError
        Values beyond float32's range with ``dtype=torch.float32``.
    """
    if not isinstance(net, Network):
        raise InputError(
            f"`net` must be a slth.nets.Network; received {type(net).__name__}"
        )
    return network_module(net, params, as_device(device), as_dtype(dtype), "net")


def network_module(net: Network, params: Mapping[str, Any] | None, device: torch.device,
                   dtype: torch.dtype, what: str) -> nn.Sequential:
    """:func:`network_to_torch` on checked arguments; ``what`` names ``net`` in messages."""
    if params is None:
        resolved: Mapping[str, Any] = net.params
    else:
        # the validation Network.forward applies to its `params` (sparse Dense weights kept)
        given = net._check_params(params, partial=True, what="params")
        resolved = {**net.params, **given}
    return _build_sequence(net.layers, resolved, "layers.", "layers.", device, dtype, what)


# ====================================================================== reading
def _flatten(seq: nn.Sequential) -> tuple[list[tuple[str, nn.Module]], bool]:
    out: list[tuple[str, nn.Module]] = []
    nested = False
    for name, m in seq.named_children():
        if isinstance(m, nn.Sequential):
            nested = True
            out.extend(_flatten(m)[0])
        else:
            out.append((name, m))
    return out, nested


def _read_sequence(module: nn.Module, path_prefix: str
                   ) -> tuple[tuple[tuple[str, Layer], ...], dict[str, np.ndarray]]:
    where = f" at `{path_prefix[:-1]}`" if path_prefix else ""
    if not isinstance(module, nn.Sequential):
        raise InputError(
            f"`module` must be a torch.nn.Sequential{where}; received {type(module).__name__}"
        )
    mods, nested = _flatten(module)
    if not mods:
        raise InputError(
            f"`module` must contain at least one layer{where}; received an empty Sequential"
        )
    if nested:  # flattened: names by position in the flattened sequence
        mods = [(str(i), m) for i, (_, m) in enumerate(mods)]
    layers: list[tuple[str, Layer]] = []
    params: dict[str, np.ndarray] = {}
    for name, m in mods:
        path = f"{path_prefix}{name}"
        if not _NAME_RE.match(name):
            raise InputError(
                f"`module` child names must be letters, digits, '_' and '-' (slth layer "
                f"names); received {name!r} at `{path}`"
            )
        entry = _READERS.get(type(m))
        if entry is None or entry.from_module is None:
            raise InputError(
                f"`module` layer `{path}` is {type(m).__module__}.{type(m).__qualname__}, which "
                "no slth layer type reads; register a reader with slth.torch."
                "register_torch_layer(LayerType, to_module=..., from_module=..., "
                f"module_type={type(m).__qualname__})"
            )
        got = entry.from_module(m, ReadContext(path))
        if not (isinstance(got, tuple) and len(got) == 2 and isinstance(got[0], Layer)
                and isinstance(got[1], Mapping)):
            raise InputError(
                f"the torch reader of {_type_name(entry.layer_type)} must return a pair "
                f"(layer, params) for `module` layer `{path}`; it returned {format_value(got)}"
            )
        layer, local = got
        layers.append((name, layer))
        for key, value in local.items():
            params[f"{name}.{key}"] = value
    return tuple(layers), params


def network_from_torch(module: Any, *, input_shape: Sequence[int] | None = None) -> Network:
    """Read a :class:`slth.nets.Network` from a torch module through the torch table.

    Parameters
    ----------
    module : torch.nn.Sequential or torch.nn.Module
        A Sequential whose children are modules of registered types
        (``nn.Linear`` -> Dense, ``nn.ReLU`` -> ReLU, :class:`ResidualBlock`
        -> Residual, :class:`SparseLinear` -> Dense, plus what
        :func:`register_torch_layer` added), or one such module. Children keep
        their names; nested ``nn.Sequential`` containers are flattened, the
        layers then named by position. Parameters are copied to CPU as float64
        (exact from float32 and float64).
    input_shape : tuple of int, optional
        As in :class:`slth.nets.Network` (default: the first layer's declared
        one, e.g. a Linear's ``(in_features,)``).

    Returns
    -------
    slth.nets.Network

    Raises
    ------
    InputError
        A module of a type no entry reads (the message names it and
        :func:`register_torch_layer`), an empty Sequential, or child names that
        are not slth layer names.
    ShapeError
        Layers whose shapes do not chain.
    """
    if not isinstance(module, nn.Module):
        raise InputError(
            f"`module` must be a torch.nn.Sequential or a torch.nn.Module of a registered "
            f"type; received {format_value(module)}"
        )
    if not isinstance(module, nn.Sequential):
        module = nn.Sequential(module)
    layers, params = _read_sequence(module, "")
    return Network(layers, {f"layers.{k}": v for k, v in params.items()}, input_shape)


# ====================================================================== built-in entries
def _dense_to_module(layer: Dense, params: Mapping[str, Any], ctx: BuildContext) -> nn.Module:
    w, b = params["weight"], params.get("bias")
    bias = None if b is None else ctx.tensor(b)
    if sp.issparse(w):
        return SparseLinear(ctx.sparse_csr(w), bias)
    lin = nn.utils.skip_init(nn.Linear, layer.d_in, layer.d_out, bias=layer.bias,
                             device=ctx.device, dtype=ctx.dtype)
    with torch.no_grad():
        lin.weight.copy_(ctx.tensor(w))
        if bias is not None:
            lin.bias.copy_(bias)
    return lin


def _dense_from_module(m: nn.Module, ctx: ReadContext) -> tuple[Layer, dict[str, np.ndarray]]:
    params = {"weight": ctx.array(m.weight)}
    if m.bias is not None:
        params["bias"] = ctx.array(m.bias)
    return Dense(int(m.in_features), int(m.out_features), bias=m.bias is not None), params


def _relu_from_module(m: nn.Module, ctx: ReadContext) -> tuple[Layer, dict[str, np.ndarray]]:
    return ReLU(), {}


def _residual_to_module(layer: Residual, params: Mapping[str, Any], ctx: BuildContext
                        ) -> nn.Module:
    return ResidualBlock(ctx.sequential(layer.body, params, "body."))


def _residual_from_module(m: nn.Module, ctx: ReadContext
                          ) -> tuple[Layer, dict[str, np.ndarray]]:
    body, params = ReadContext(f"{ctx.path}.body").sequential(m.body)
    return Residual(body), {f"body.{k}": v for k, v in params.items()}


register_torch_layer(Dense, to_module=_dense_to_module, from_module=_dense_from_module,
                     module_type=(nn.Linear, SparseLinear))
register_torch_layer(ReLU, to_module=lambda layer, params, ctx: nn.ReLU(),
                     from_module=_relu_from_module, module_type=nn.ReLU)
register_torch_layer(Residual, to_module=_residual_to_module,
                     from_module=_residual_from_module, module_type=ResidualBlock)
