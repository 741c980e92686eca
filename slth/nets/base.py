"""Typed-layer networks: layer types, the Residual combinator, and :class:`Network`.

A network is architecture apart from parameters (the stax model of
google/neural-tangents): a *layer type* is a small frozen dataclass that
declares the shapes of its parameters and does its arithmetic given them; a
:class:`Network` is named layers in a sequential graph plus one read-only
float64 array per declared parameter.

Layer types
-----------
A layer type subclasses :class:`Layer`, is a ``@dataclass(frozen=True)`` and
implements

- ``param_specs() -> {local name: shape}`` (default: no parameters);
- ``declared_input_shape()``: the per-example input shape the layer requires,
  or None when it takes any (default None; Dense says ``(d_in,)``);
- ``output_shape(input_shape) -> shape`` for one example (default: the input
  shape), raising :class:`~slth.errors.ShapeError` on an input it cannot take;
- ``apply(params, x) -> y`` and ``vjp(params, x, grad_out) -> grad_in`` on
  float64 batches (batch first), ``params`` keyed by the local names. Neither
  may modify ``x``, ``grad_out`` or the parameters.

Registering it (``@register_layer("name")`` above the dataclass decorator) is
what lets :func:`slth.nets.io.save_network` write it and
:func:`slth.nets.io.load_network` rebuild it from its fields: a layer type
defined anywhere, a test file included, saves and loads with no change here.

Parameter names
---------------
The layer ``(name, layer)`` of ``Network.layers`` owns the parameters
``"layers.<name>.<local>"`` for each local name of its ``param_specs()``. A
:class:`Residual` owns its body's parameters under ``"body.<sub>.<local>"``, so
in a network they read ``"layers.<name>.body.<sub>.<local>"``, recursively for
nested blocks (``"layers.2.body.1.body.0.weight"``). Layers given without names
are named by their position, ``"0"``, ``"1"``, ... (as in
``torch.nn.Sequential``, whose ``state_dict`` keys are these names without the
``"layers."`` prefix). Layer paths (:meth:`Network.named_layers`) are the same
names without the parameter: ``"layers.2"``, ``"layers.2.body.0"``.
:meth:`Network.param_specs` and :attr:`Network.params` list the parameters in
this order: layer by layer, depth first, each layer's ``param_specs()`` order.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import json
import math
import os
import re
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike

from .._rng import RNGLike, as_generator
from ..errors import InputError, ShapeError, format_value

__all__ = [
    "Architecture",
    "Layer",
    "Linearization",
    "Network",
    "Residual",
    "layer_types",
    "register_layer",
    "registered_name",
]

Shape = tuple[int, ...]

#: Layer and parameter names: letters, digits, ``_`` and ``-`` (no dots: dots join names).
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
#: Registered layer type names: lower-case words joined by dots (``"dense"``, ``"tests.scale"``).
_TYPE_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


# ====================================================================== layer types
class Layer(abc.ABC):
    """Base class of layer types: a frozen spec of shapes and arithmetic, no arrays.

    Subclasses are ``@dataclass(frozen=True)`` whose fields fully describe the
    layer (they are what saving writes). See the module docstring for the
    contract of each method.

    Attributes
    ----------
    sparse_params : frozenset of str
        Local names of the parameters that :meth:`apply` and :meth:`vjp` accept
        as ``scipy.sparse`` matrices too (Dense: ``{"weight"}``). A network
        refuses a sparse override for any other parameter.
    """

    sparse_params: ClassVar[frozenset[str]] = frozenset()

    def param_specs(self) -> Mapping[str, Shape]:
        """Shapes of the layer's parameters, by local name (default: none).

        Returns
        -------
        Mapping[str, tuple of int]
        """
        return {}

    def declared_input_shape(self) -> Shape | None:
        """The per-example input shape this layer requires, or None (default).

        A network whose ``input_shape`` is not given takes it from the first
        layer that declares one.

        Returns
        -------
        tuple of int or None
        """
        return None

    def output_shape(self, input_shape: Shape) -> Shape:
        """Per-example output shape for a per-example input shape (default: the same).

        Parameters
        ----------
        input_shape : tuple of int

        Returns
        -------
        tuple of int

        Raises
        ------
        ShapeError
            The layer cannot take inputs of this shape.
        """
        return tuple(input_shape)

    @abc.abstractmethod
    def apply(self, params: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
        """Outputs for a float64 batch ``x`` of shape ``(batch, *input_shape)``.

        Parameters
        ----------
        params : Mapping[str, numpy.ndarray]
            The layer's parameters by local name (shapes as declared).
        x : numpy.ndarray
            Inputs, batch first. Must not be modified.

        Returns
        -------
        numpy.ndarray
            float64 outputs of shape ``(batch, *output_shape)``.
        """

    @abc.abstractmethod
    def vjp(self, params: Mapping[str, Any], x: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
        """Vector-Jacobian product at ``x``: ``grad_out`` pulled back to the input.

        Parameters
        ----------
        params : Mapping[str, numpy.ndarray]
            The layer's parameters by local name.
        x : numpy.ndarray
            The inputs ``apply`` was called with, ``(batch, *input_shape)``.
        grad_out : numpy.ndarray
            ``(batch, *output_shape)``: row ``i`` is a cotangent at output ``i``.

        Returns
        -------
        numpy.ndarray
            ``(batch, *input_shape)``: row ``i`` is ``J_i^T grad_out[i]`` with
            ``J_i`` the Jacobian of the layer at ``x[i]``.
        """


_L = TypeVar("_L", bound=type)
_REGISTRY: dict[str, type[Layer]] = {}
_NAMES: dict[type[Layer], str] = {}
#: Names that are not layer types in the registry but structure the graph.
_RESERVED = ("residual",)


def register_layer(name: str) -> Callable[[_L], _L]:
    """Class decorator registering a layer type under ``name`` for saving and loading.

    Place it above ``@dataclass(frozen=True)``::

        @register_layer("mylib.scale")
        @dataclass(frozen=True)
        class Scale(Layer):
            size: int
            ...

    Parameters
    ----------
    name : str
        Lower-case words joined by dots (``"dense"``; prefix your own with your
        package's name, e.g. ``"mylib.scale"``). ``"residual"`` is reserved.
        Registering the same class again, or a class of the same module and
        qualified name (a reloaded module), replaces the entry.

    Returns
    -------
    callable
        The decorator; it returns the class unchanged.

    Raises
    ------
    InputError
        A malformed or reserved name, a name taken by another class, a class
        already registered under another name, or a class that is not a frozen
        dataclass subclass of :class:`Layer`.
    """
    if not isinstance(name, str) or not _TYPE_NAME_RE.match(name):
        raise InputError(
            "`name` must be lower-case words joined by dots (e.g. 'mylib.scale'); received "
            f"{format_value(name)}"
        )
    if name in _RESERVED:
        raise InputError(f"`name` {name!r} is reserved for slth's graph combinators")

    def decorate(cls: _L) -> _L:
        if not (isinstance(cls, type) and issubclass(cls, Layer)):
            raise InputError(
                f"`register_layer({name!r})` must decorate a subclass of slth.nets.Layer; "
                f"received {format_value(cls)}"
            )
        params = getattr(cls, "__dataclass_params__", None)
        if not dataclasses.is_dataclass(cls) or params is None or not params.frozen:
            raise InputError(
                f"`register_layer({name!r})` must decorate a frozen dataclass (place it above "
                f"@dataclass(frozen=True)); {cls.__qualname__} is not one"
            )
        old = _REGISTRY.get(name)
        if old is not None and old is not cls and (
            old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
            raise InputError(
                f"`name` {name!r} is already registered for {old.__module__}.{old.__qualname__}; "
                f"choose another name for {cls.__module__}.{cls.__qualname__}"
            )
        other = _NAMES.get(cls)
        if other is not None and other != name:
            raise InputError(
                f"{cls.__qualname__} is already registered as {other!r}; received a second "
                f"name {name!r}"
            )
        if old is not None:
            _NAMES.pop(old, None)
        _REGISTRY[name] = cls
        _NAMES[cls] = name
        return cls

    return decorate


def layer_types() -> Mapping[str, type[Layer]]:
    """The registered layer types, by name (a read-only snapshot).

    Returns
    -------
    Mapping[str, type]
    """
    return types.MappingProxyType(dict(_REGISTRY))


def registered_name(layer_type: type) -> str | None:
    """The name ``layer_type`` is registered under, or None.

    Subclasses do not inherit their parent's name: an unregistered subclass of
    Dense is not saved as a Dense.

    Parameters
    ----------
    layer_type : type

    Returns
    -------
    str or None
    """
    if layer_type is Residual:
        return "residual"
    return _NAMES.get(layer_type)


# ====================================================================== named sequences
Named = tuple[tuple[str, Layer], ...]


def _normalise_named(items: Any, what: str) -> Named:
    """Layers or ``(name, layer)`` pairs -> a tuple of pairs; checks names and types."""
    if isinstance(items, (str, bytes, Layer)) or not isinstance(items, Sequence):
        raise InputError(
            f"`{what}` must be a sequence of layers or (name, layer) pairs; received "
            f"{format_value(items)}"
        )
    if len(items) == 0:
        raise InputError(f"`{what}` must hold at least one layer; received an empty sequence")
    out: list[tuple[str, Layer]] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        if isinstance(item, Layer):
            name, layer = str(i), item
        elif isinstance(item, tuple) and len(item) == 2:
            name, layer = item
        else:
            raise InputError(
                f"`{what}[{i}]` must be a layer (an instance of slth.nets.Layer) or a "
                f"(name, layer) pair; received {format_value(item)}"
            )
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise InputError(
                f"`{what}[{i}]` name must be a non-empty string of letters, digits, '_' and "
                f"'-' (no dots); received {name!r}"
            )
        if not isinstance(layer, Layer):
            raise InputError(
                f"`{what}[{i}]` ({name!r}) must be an instance of slth.nets.Layer; received "
                f"{format_value(layer)}"
            )
        if name in seen:
            raise InputError(f"`{what}` names must be unique; {name!r} appears twice")
        seen.add(name)
        out.append((name, layer))
    return tuple(out)


def _check_shape(shape: Any, what: str) -> Shape:
    if isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence):
        raise InputError(f"`{what}` must be a tuple of ints >= 1; received {format_value(shape)}")
    out = []
    for d in shape:
        if isinstance(d, (bool, np.bool_)) or not isinstance(d, (int, np.integer)) or d < 1:
            raise InputError(f"`{what}` must be a tuple of ints >= 1; received {tuple(shape)!r}")
        out.append(int(d))
    return tuple(out)


def _layer_specs(layer: Layer, path: str) -> dict[str, Shape]:
    specs = layer.param_specs()
    if not isinstance(specs, Mapping):
        raise InputError(
            f"layer `{path}` ({type(layer).__name__}).param_specs() must return a mapping; "
            f"received {format_value(specs)}"
        )
    out: dict[str, Shape] = {}
    for local, shape in specs.items():
        parts = local.split(".") if isinstance(local, str) else [None]
        if not all(isinstance(p, str) and _NAME_RE.match(p) for p in parts):
            raise InputError(
                f"layer `{path}` ({type(layer).__name__}) declares a parameter name {local!r}; "
                "names are letters, digits, '_' and '-'"
            )
        out[local] = _check_shape(shape, f"{path}.{local}")
    return out


def _short(layer: Layer) -> str:
    if isinstance(layer, Residual):
        return f"Residual of {len(layer.body)} layers"
    return repr(layer)


# ====================================================================== residual
@dataclasses.dataclass(frozen=True)
class Residual(Layer):
    """The residual combinator ``x -> x + body(x)``.

    Parameters
    ----------
    body : sequence of Layer or (str, Layer)
        A sequential block (layers named by position when given bare). It must
        map inputs to outputs of the same shape; checked when the block's input
        shape is known (in a :class:`Network`).

    Notes
    -----
    Its parameters are its body's, named ``"body.<sub>.<local>"``. In a network
    the vjp reuses what the forward pass recorded; called alone, :meth:`vjp`
    runs the body forward again.
    """

    body: Named

    def __post_init__(self) -> None:
        object.__setattr__(self, "body", _normalise_named(self.body, "body"))

    def param_specs(self) -> Mapping[str, Shape]:
        out: dict[str, Shape] = {}
        for name, layer in self.body:
            for local, shape in _layer_specs(layer, f"body.{name}").items():
                out[f"body.{name}.{local}"] = shape
        return out

    def declared_input_shape(self) -> Shape | None:
        return self.body[0][1].declared_input_shape()

    def output_shape(self, input_shape: Shape) -> Shape:
        shape = tuple(input_shape)
        _, out = _plan(self.body, shape, "body.", "body.")
        if out != shape:
            raise ShapeError(
                f"a residual body must keep the shape of its input {shape}; its layers map it "
                f"to {out}"
            )
        return shape

    def apply(self, params: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
        plan, _ = _plan(self.body, tuple(x.shape[1:]), "body.", "body.")
        return x + _run(plan, params, x, None)

    def vjp(self, params: Mapping[str, Any], x: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
        plan, _ = _plan(self.body, tuple(x.shape[1:]), "body.", "body.")
        tape: list[Any] = []
        _run(plan, params, x, tape)
        return grad_out + _back(plan, tape, grad_out)


# ====================================================================== execution plan
@dataclasses.dataclass(frozen=True)
class _Step:
    path: str
    layer: Layer
    keys: tuple[tuple[str, str], ...]  # (local name, key in the params mapping)
    in_shape: Shape
    out_shape: Shape
    body: tuple[_Step, ...] | None  # a Residual's steps


def _plan(named: Named, in_shape: Shape, path_prefix: str, key_prefix: str
          ) -> tuple[tuple[_Step, ...], Shape]:
    """Steps of a named sequence and its output shape; ShapeError if the shapes do not chain."""
    steps = []
    shape = in_shape
    for name, layer in named:
        path = f"{path_prefix}{name}"
        if isinstance(layer, Residual):
            body, out = _plan(layer.body, shape, f"{path}.body.", f"{key_prefix}{name}.body.")
            if out != shape:
                raise ShapeError(
                    f"layer `{path}` (Residual): a residual body must keep the shape of its "
                    f"input {shape}; its layers map it to {out}"
                )
            steps.append(_Step(path, layer, (), shape, out, body))
        else:
            try:
                out = layer.output_shape(shape)
            except ShapeError as exc:
                raise ShapeError(f"layer `{path}` ({_short(layer)}): {exc}") from None
            out = _check_shape(out, f"{path}.output_shape(...)")
            keys = tuple((local, f"{key_prefix}{name}.{local}") for local in layer.param_specs())
            steps.append(_Step(path, layer, keys, shape, out, None))
        shape = out
    return tuple(steps), shape


def _run(plan: tuple[_Step, ...], params: Mapping[str, Any], x: np.ndarray,
         tape: list[Any] | None) -> np.ndarray:
    for step in plan:
        if step.body is not None:
            sub = None if tape is None else []
            y = _run(step.body, params, x, sub)
            if tape is not None:
                tape.append(sub)
            x = x + y
        else:
            p = {local: params[key] for local, key in step.keys}
            if tape is not None:
                tape.append((x, p))
            y = step.layer.apply(p, x)
            if y.shape[1:] != step.out_shape or y.shape[0] != x.shape[0]:
                raise ShapeError(
                    f"layer `{step.path}` ({_short(step.layer)}).apply returned shape {y.shape} "
                    f"for inputs of shape {x.shape}; its output_shape says "
                    f"{(x.shape[0], *step.out_shape)}"
                )
            x = y
    return x


def _back(plan: tuple[_Step, ...], tape: list[Any], g: np.ndarray) -> np.ndarray:
    for step, rec in zip(reversed(plan), reversed(tape)):
        if step.body is not None:
            g = g + _back(step.body, rec, g)
        else:
            x, p = rec
            gi = step.layer.vjp(p, x, g)
            if gi.shape != x.shape:
                raise ShapeError(
                    f"layer `{step.path}` ({_short(step.layer)}).vjp returned shape {gi.shape}; "
                    f"it must be the shape of the layer's inputs, {x.shape}"
                )
            g = gi
    return g


def _analyse(named: Named, input_shape: Any) -> tuple[Shape, Shape, tuple[_Step, ...],
                                                       dict[str, Shape],
                                                       dict[str, tuple[str, Layer, str]]]:
    """Input shape, output shape, plan, parameter specs and their owners of a named sequence."""
    if input_shape is None:
        input_shape = next(
            (s for s in (layer.declared_input_shape() for _, layer in named) if s is not None),
            None,
        )
        if input_shape is None:
            raise InputError(
                "`input_shape` must be given: no layer declares one (layers such as Dense do)"
            )
    in_shape = _check_shape(input_shape, "input_shape")
    plan, out_shape = _plan(named, in_shape, "layers.", "layers.")
    specs: dict[str, Shape] = {}
    owners: dict[str, tuple[str, Layer, str]] = {}

    def walk(steps: tuple[_Step, ...]) -> None:
        for step in steps:
            if step.body is not None:
                walk(step.body)
                continue
            declared = _layer_specs(step.layer, step.path)
            for local, key in step.keys:
                specs[key] = declared[local]
                owners[key] = (step.path, step.layer, local)

    walk(plan)
    return in_shape, out_shape, plan, specs, owners


# ====================================================================== arrays
def _readonly(arr: np.ndarray) -> np.ndarray:
    view = arr.view()
    view.flags.writeable = False
    return view


def _as_param(value: Any, key: str, expected: Shape, owner: str, *, allow_sparse: bool,
              what: str) -> Any:
    """Validate one parameter array: real, the declared shape, finite -> float64."""
    where = f"`{what}['{key}']`"
    if sp.issparse(value):
        if not allow_sparse:
            raise InputError(
                f"{where} ({owner}) must be a dense array: this layer type does not take "
                f"scipy.sparse parameters here; received a sparse matrix of shape {value.shape}"
            )
        if tuple(value.shape) != expected:
            raise ShapeError(
                f"{where} ({owner}) must have shape {expected}; received a sparse matrix of "
                f"shape {tuple(value.shape)}"
            )
        if value.dtype.kind not in "iuf":
            raise InputError(
                f"{where} ({owner}) must hold real numbers; received dtype {value.dtype}"
            )
        if value.format not in ("csr", "csc"):
            value = value.tocsr()
        if value.dtype != np.float64:
            value = value.astype(np.float64)
        if not np.isfinite(value.data).all():
            raise InputError(f"{where} ({owner}) must be finite; received NaN or infinite entries")
        return value
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        raise InputError(
            f"{where} ({owner}) must be an array of real numbers of shape {expected}; received "
            f"{format_value(value)}"
        ) from None
    if arr.dtype.kind not in "iuf":
        raise InputError(
            f"{where} ({owner}) must hold real numbers (int or float dtype); received "
            f"{format_value(arr)}"
        )
    if arr.shape != expected:
        raise ShapeError(
            f"{where} ({owner}) must have shape {expected}; received shape {arr.shape}"
        )
    # C order: BLAS takes another path (and rounds differently) for a transposed layout
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.isfinite(arr).all():
        n_bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise InputError(
            f"{where} ({owner}) must be finite; received {n_bad} NaN or infinite entries"
        )
    return arr


# ====================================================================== structure
class _Graph:
    """Structure shared by :class:`Network` and :class:`Architecture`: no arrays.

    Subclasses set ``layers`` and ``input_shape`` and call :meth:`_setup`.
    """

    layers: Named
    input_shape: Shape | None

    def _setup(self) -> None:
        named = _normalise_named(self.layers, "layers")
        object.__setattr__(self, "layers", named)
        in_shape, out_shape, plan, specs, owners = _analyse(named, self.input_shape)
        object.__setattr__(self, "input_shape", in_shape)
        object.__setattr__(self, "_specs", types.MappingProxyType(specs))
        object.__setattr__(self, "_owners", owners)
        object.__setattr__(self, "_out_shape", out_shape)
        object.__setattr__(self, "_plan", plan)

    def named_layers(self) -> tuple[tuple[str, Layer], ...]:
        """Every layer with its path, depth first: residual blocks, then their bodies.

        Returns
        -------
        tuple of (str, Layer)
            E.g. ``(("layers.0", Dense(...)), ("layers.1", Residual(...)),
            ("layers.1.body.0", Dense(...)), ...)``. A layer's parameters are
            ``"<path>.<local>"``.
        """
        out: list[tuple[str, Layer]] = []

        def walk(named: Named, prefix: str) -> None:
            for name, layer in named:
                path = f"{prefix}{name}"
                out.append((path, layer))
                if isinstance(layer, Residual):
                    walk(layer.body, f"{path}.body.")

        walk(self.layers, "layers.")
        return tuple(out)

    def param_specs(self) -> Mapping[str, Shape]:
        """Shape of every parameter, by name, in the network's parameter order.

        Returns
        -------
        Mapping[str, tuple of int]
            Read-only.
        """
        return self._specs  # type: ignore[attr-defined,no-any-return]

    def param_owner(self, name: str) -> tuple[str, Layer, str]:
        """The layer that declares parameter ``name``: ``(layer path, layer, local name)``.

        Parameters
        ----------
        name : str
            A key of :meth:`param_specs`, e.g. ``"layers.2.weight"``.

        Returns
        -------
        (str, Layer, str)
            E.g. ``("layers.2", Dense(3 -> 1), "weight")``.

        Raises
        ------
        InputError
            ``name`` is not a parameter of the network.
        """
        owners: dict[str, tuple[str, Layer, str]] = self._owners  # type: ignore[attr-defined]
        if not isinstance(name, str) or name not in owners:
            names = list(owners)
            known = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
            raise InputError(
                f"`name` must be a parameter name of the network ({known or 'none'}); "
                f"received {format_value(name)}"
            )
        return owners[name]

    @property
    def output_shape(self) -> Shape:
        """Per-example output shape."""
        return self._out_shape  # type: ignore[attr-defined,no-any-return]

    @property
    def n_params(self) -> int:
        """Total number of parameter entries."""
        return sum(math.prod(s) for s in self.param_specs().values())

    def architecture(self) -> dict[str, Any]:
        """The network without its arrays, as JSON-ready data (what saving writes).

        Returns
        -------
        dict
            ``{"input_shape": [...], "layers": [{"name", "type", "fields"} or
            {"name", "type": "residual", "body": [...]}, ...]}``. Unregistered
            layer types appear as ``"<module>.<qualname>"`` with ``"registered":
            False`` (such a network can be fingerprinted, not saved).
        """
        return {
            "input_shape": list(self.input_shape or ()),
            "layers": [_describe(name, layer) for name, layer in self.layers],
        }

    def _check_params(self, mapping: Any, *, partial: bool, what: str,
                      sparse: bool | None = None) -> dict[str, Any]:
        """Validate parameters by name (all of them unless ``partial``).

        ``sparse`` (default: ``partial``) lets a layer's ``sparse_params`` be
        scipy.sparse matrices.
        """
        specs = self.param_specs()
        if sparse is None:
            sparse = partial
        if not isinstance(mapping, Mapping):
            raise InputError(
                f"`{what}` must be a mapping from parameter names to arrays; received "
                f"{format_value(mapping)}"
            )
        for key in mapping:
            if key not in specs:
                names = list(specs)
                known = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
                raise InputError(
                    f"`{what}` has an entry {key!r} that no layer declares; parameters: "
                    f"{known or 'none'}"
                )
        out: dict[str, Any] = {}
        owners: dict[str, tuple[str, Layer, str]] = self._owners  # type: ignore[attr-defined]
        for key, shape in specs.items():
            path, layer, local = owners[key]
            owner = f"the {local!r} of layer `{path}`, {_short(layer)}"
            if key not in mapping:
                if partial:
                    continue
                raise InputError(
                    f"`{what}` lacks {key!r} ({owner}), an array of shape {shape}"
                )
            out[key] = _as_param(mapping[key], key, shape, owner,
                                 allow_sparse=sparse and local in type(layer).sparse_params,
                                 what=what)
        return out

    def _check_input(self, x: ArrayLike, name: str = "x") -> tuple[np.ndarray, bool]:
        try:
            arr = np.asarray(x)
        except (TypeError, ValueError):
            raise InputError(
                f"`{name}` must be an array of real numbers; received {format_value(x)}"
            ) from None
        if arr.dtype.kind not in "iuf":
            raise InputError(
                f"`{name}` must hold real numbers (int or float dtype); received "
                f"{format_value(arr)}"
            )
        shape = self.input_shape
        assert shape is not None
        if arr.shape == shape:
            single = True
        elif arr.ndim == len(shape) + 1 and arr.shape[1:] == shape:
            single = False
        else:
            raise ShapeError(
                f"`{name}` must have shape (batch, {', '.join(map(str, shape))}) or {shape}; "
                f"received shape {arr.shape}"
            )
        arr = np.asarray(arr, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise InputError(f"`{name}` must be finite; received NaN or infinite entries")
        return (arr[None] if single else arr), single

    def _forward(self, x: ArrayLike, params: Mapping[str, Any]) -> np.ndarray:
        h, single = self._check_input(x)
        y = _run(self._plan, params, h, None)  # type: ignore[attr-defined]
        return y[0] if single else y

    def _linearize(self, x: ArrayLike, params: Mapping[str, Any]) -> Linearization:
        h, single = self._check_input(x)
        tape: list[Any] = []
        y = _run(self._plan, params, h, tape)  # type: ignore[attr-defined]
        return Linearization(self, tape, y, single)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Architecture(_Graph):
    """Named layers without arrays: a network's structure, evaluated with given parameters.

    What a virtual source (:class:`slth.sources.VirtualNetwork`) knows of its
    network before any entry is read: layer types, names, shapes and the
    arithmetic; :meth:`forward` takes every parameter as an argument.

    Parameters
    ----------
    layers : sequence of Layer or (str, Layer)
        As in :class:`Network`.
    input_shape : tuple of int, optional
        As in :class:`Network`.

    Notes
    -----
    Two architectures are equal when their :meth:`architecture` descriptions
    (layer types, fields, names, input shape) are equal.
    """

    layers: Named
    input_shape: Shape | None = None

    def __post_init__(self) -> None:
        self._setup()

    def __reduce__(self) -> tuple[Any, ...]:
        return (Architecture, (self.layers, self.input_shape))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Architecture):
            return NotImplemented
        return self.architecture() == other.architecture()

    def __hash__(self) -> int:
        return hash(json.dumps(self.architecture(), sort_keys=True))

    @classmethod
    def from_description(cls, desc: Any, where: str = "`desc`") -> Architecture:
        """Rebuild an architecture from :meth:`architecture`'s JSON-ready description.

        Parameters
        ----------
        desc : dict
            ``{"input_shape": [...], "layers": [...]}`` as :meth:`architecture`
            returns it (e.g. read back from a file).
        where : str
            Prefix of error messages (what holds the description).

        Returns
        -------
        Architecture

        Raises
        ------
        InputError
            A malformed description, or a layer type not registered in this
            process (import the module that registers it).
        """
        layers = desc.get("layers") if isinstance(desc, Mapping) else None
        shape = desc.get("input_shape") if isinstance(desc, Mapping) else None
        if not isinstance(layers, list) or not isinstance(shape, list):
            raise InputError(f"{where}: an architecture description must be "
                             "{'input_shape': [...], 'layers': [...]}; received "
                             f"{format_value(desc)}")
        return cls(tuple(_build(d, where) for d in layers), tuple(shape))

    def forward(self, x: ArrayLike, *, params: Mapping[str, Any]) -> np.ndarray:
        """Evaluate in float64 with the given parameters (every one of them).

        Parameters
        ----------
        x : array_like
            ``(batch, *input_shape)`` or one input of shape ``input_shape``.
        params : Mapping[str, array_like]
            One array per name of :meth:`param_specs`; a layer's
            ``sparse_params`` may be ``scipy.sparse`` matrices.

        Returns
        -------
        numpy.ndarray
        """
        return self._forward(x, self._check_params(params, partial=False, what="params",
                                                   sparse=True))

    def linearize(self, x: ArrayLike, *, params: Mapping[str, Any]) -> Linearization:
        """Forward pass recording what the vjp needs; see :meth:`Network.linearize`."""
        return self._linearize(x, self._check_params(params, partial=False, what="params",
                                                     sparse=True))

    def with_params(self, params: Mapping[str, ArrayLike]) -> Network:
        """The :class:`Network` of these layers with the given (dense) parameters."""
        return Network(self.layers, params, self.input_shape)

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}: {_short(l)}" for n, l in self.layers)
        return (f"Architecture(input_shape={self.input_shape}, layers=[{parts}], "
                f"n_params={self.n_params})")


# ====================================================================== network
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Network(_Graph):
    """Named layers in a sequential graph, with float64 parameters keyed by dotted names.

    Parameters
    ----------
    layers : sequence of Layer or (str, Layer)
        The layers in order (:class:`Residual` blocks included); bare layers
        are named by position. Stored as a tuple of ``(name, layer)`` pairs.
    params : Mapping[str, array_like]
        One array per name of :meth:`param_specs` (see the module docstring
        for the naming scheme), of the declared shape, real and finite. Stored
        as read-only C-contiguous float64 arrays in :meth:`param_specs` order
        (C order so that the arithmetic, and its rounding, never depends on the
        layout the caller used); a C-contiguous float64 array is not copied
        (the stored array is a read-only view of it), so do not modify it
        afterwards.
    input_shape : tuple of int, optional
        Per-example input shape. Default: the first layer's
        ``declared_input_shape()`` that is not None (Dense: ``(d_in,)``).

    Attributes
    ----------
    layers : tuple of (str, Layer)
    params : Mapping[str, numpy.ndarray]
        Read-only mapping of read-only float64 arrays.
    input_shape : tuple of int
    output_shape : tuple of int

    Raises
    ------
    InputError
        Bad layers or names, a missing, unknown, non-real or non-finite
        parameter, or no way to infer ``input_shape``.
    ShapeError
        A parameter of the wrong shape, or layers whose shapes do not chain
        (a residual body that changes the shape included).

    Examples
    --------
    >>> import numpy as np
    >>> from slth.nets.base import Network
    >>> from slth.nets.layers import Dense, ReLU
    >>> net = Network.random([Dense(2, 3), ReLU(), Dense(3, 1, bias=False)], rng=0)
    >>> list(net.param_specs())
    ['layers.0.weight', 'layers.0.bias', 'layers.2.weight']
    >>> net.forward(np.zeros((4, 2))).shape
    (4, 1)
    """

    layers: Named
    params: Mapping[str, np.ndarray]
    input_shape: Shape | None = None

    def __post_init__(self) -> None:
        self._setup()
        params = self._check_params(self.params, partial=False, what="params")
        object.__setattr__(
            self, "params", types.MappingProxyType({k: _readonly(v) for k, v in params.items()})
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # the read-only mapping views do not pickle: rebuild from layers and arrays
        return (Network, (self.layers, dict(self.params), self.input_shape))

    @property
    def arch(self) -> Architecture:
        """The network's :class:`Architecture`: its layers without the arrays."""
        a = self.__dict__.get("_arch")
        if a is None:
            a = Architecture(self.layers, self.input_shape)
            object.__setattr__(self, "_arch", a)
        return a

    def _resolve(self, params: Mapping[str, Any] | None) -> Mapping[str, Any]:
        if params is None:
            return self.params
        given = self._check_params(params, partial=True, what="params")
        if len(given) == len(self.params):
            return given
        merged = dict(self.params)
        merged.update(given)
        return merged

    # ------------------------------------------------------------------ evaluation
    def forward(self, x: ArrayLike, *, params: Mapping[str, Any] | None = None) -> np.ndarray:
        """Evaluate the network in float64.

        Parameters
        ----------
        x : array_like
            ``(batch, *input_shape)``, or one input of shape ``input_shape``.
            Real and finite.
        params : Mapping[str, array_like], optional
            Parameters used instead of the network's own, by name (e.g. masked
            ones); names not given keep the network's arrays. Validated like
            the constructor's; a layer's ``sparse_params`` (Dense's weight) may
            be ``scipy.sparse`` matrices.

        Returns
        -------
        numpy.ndarray
            float64 outputs ``(batch, *output_shape)``, or ``output_shape`` for
            a single input.

        Raises
        ------
        ShapeError, InputError
            Bad ``x`` or ``params``.
        """
        return self._forward(x, self._resolve(params))

    __call__ = forward

    def linearize(self, x: ArrayLike, *, params: Mapping[str, Any] | None = None
                  ) -> Linearization:
        """Forward pass that records what the vector-Jacobian product needs.

        Parameters
        ----------
        x : array_like
            As in :meth:`forward`.
        params : Mapping[str, array_like], optional
            As in :meth:`forward`.

        Returns
        -------
        Linearization
            ``output`` (as :meth:`forward` returns it) and ``vjp(grad_out)``,
            which may be called any number of times.
        """
        return self._linearize(x, self._resolve(params))

    def vjp(self, x: ArrayLike, grad_out: ArrayLike, *,
            params: Mapping[str, Any] | None = None) -> np.ndarray:
        """Gradient with respect to the input of ``<grad_out, f(x)>``, row by row.

        At a ReLU kink (pre-activation exactly 0) the derivative taken is 0.

        Parameters
        ----------
        x : array_like
            As in :meth:`forward`.
        grad_out : array_like
            Cotangents of the outputs: ``(batch, *output_shape)`` for a batch
            ``x``, ``output_shape`` for a single input.
        params : Mapping[str, array_like], optional
            As in :meth:`forward`.

        Returns
        -------
        numpy.ndarray
            Same shape as ``x``: ``J(x_i)^T grad_out_i`` per row.
        """
        return self.linearize(x, params=params).vjp(grad_out)

    # ------------------------------------------------------------------ identity
    # ------------------------------------------------------------------ identity
    def fingerprint(self) -> str:
        """A hash of the architecture and every parameter, bit for bit.

        ``"sha256:<hex>"`` over the architecture (:meth:`architecture`, which
        includes every layer's type and fields), then each parameter's name,
        shape and raw float64 bytes in parameter order: two networks share a
        fingerprint exactly when they compute the same function with the same
        arrays. (It differs from :meth:`slth.nets.MLP.fingerprint` of the same
        MLP: the schemes hash different descriptions.)

        Returns
        -------
        str
        """
        h = hashlib.sha256()
        h.update(json.dumps(self.architecture(), sort_keys=True, allow_nan=True).encode())
        for key, arr in self.params.items():
            h.update(repr((key, arr.shape)).encode())
            h.update(np.ascontiguousarray(arr, dtype=np.float64).tobytes())
        return "sha256:" + h.hexdigest()

    # ------------------------------------------------------------------ construction
    def with_params(self, params: Mapping[str, ArrayLike]) -> Network:
        """Same layers, some or all parameters replaced.

        Parameters
        ----------
        params : Mapping[str, array_like]
            New arrays by name (dense; validated as in the constructor); names
            not given keep the current arrays.

        Returns
        -------
        Network
        """
        if not isinstance(params, Mapping):
            raise InputError(
                f"`params` must be a mapping from parameter names to arrays; received "
                f"{format_value(params)}"
            )
        merged = dict(self.params)
        given = self._check_params(params, partial=True, what="params")
        for key, value in given.items():
            if sp.issparse(value):
                given[key] = np.ascontiguousarray(value.toarray())
        merged.update(given)
        return Network(self.layers, merged, self.input_shape)

    @classmethod
    def random(cls, layers: Sequence[Any], *, rng: RNGLike, law: str = "uniform",
               scale: float = 1.0, input_shape: Sequence[int] | None = None) -> Network:
        """Draw every parameter i.i.d. from ``law`` (default U[-1, 1]).

        Parameters
        ----------
        layers : sequence of Layer or (str, Layer)
            As in the constructor.
        rng : int, numpy.random.Generator, numpy.random.SeedSequence or None
            Randomness: all arrays come from ONE generator, drawn in parameter
            order (:meth:`param_specs`), so the same seed gives the same bits.
            For Dense/ReLU layers with biases on every layer this is the order
            and the law of :meth:`slth.nets.MLP.random` with ``bias=True``:
            same seed, same arrays.
        law : {"uniform", "product", "normal", "hyperbolic"}, default "uniform"
            The laws of :func:`slth.subset_sum.sample` (``"uniform"``: U[-1, 1],
            the source law of Pensia et al. 2020, Theorem 1).
        scale : float, default 1.0
            Positive multiplier of every entry.
        input_shape : tuple of int, optional
            As in the constructor.

        Returns
        -------
        Network

        Raises
        ------
        InputError
            Unknown ``law``, bad ``scale`` or ``rng``, or bad layers.
        """
        from ..subset_sum.distributions import DISTRIBUTIONS, sample

        if law not in DISTRIBUTIONS:
            raise InputError(f"`law` must be one of {DISTRIBUTIONS}; received {law!r}")
        if isinstance(scale, (bool, np.bool_)) or not isinstance(
            scale, (int, float, np.integer, np.floating)
        ) or not np.isfinite(scale) or scale <= 0:
            raise InputError(f"`scale` must be a finite number > 0; received {scale!r}")
        gen = as_generator(rng)
        named = _normalise_named(layers, "layers")
        in_shape, _, _, specs, _ = _analyse(named, input_shape)
        arrays = {key: sample(law, s, rng=gen, scale=float(scale)) for key, s in specs.items()}
        return cls(named, arrays, in_shape)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str], *, compress: bool = False) -> None:
        """Write the network to one ``.npz`` file; see :func:`slth.nets.io.save_network`."""
        from .io import save_network

        save_network(self, path, compress=compress)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Network:
        """Read a network written by :meth:`save`; see :func:`slth.nets.io.load_network`."""
        from .io import load_network

        return load_network(path)

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        parts = ", ".join(f"{n}: {_short(l)}" for n, l in self.layers)
        return (f"Network(input_shape={self.input_shape}, layers=[{parts}], "
                f"n_params={self.n_params})")


class Linearization:
    """A recorded forward pass: its output and the vector-Jacobian product at its inputs.

    Made by :meth:`Network.linearize`; holds every layer's input (memory: one
    activation per layer and input row).

    Attributes
    ----------
    output : numpy.ndarray
        Read-only; what :meth:`Network.forward` returns for the same call.
    """

    __slots__ = ("_batch", "_net", "_output", "_single", "_tape")

    def __init__(self, net: Network, tape: list[Any], y: np.ndarray, single: bool) -> None:
        self._net = net
        self._tape = tape
        self._single = single
        self._batch = y.shape[0]
        self._output = _readonly(y[0] if single else y)

    @property
    def output(self) -> np.ndarray:
        """The forward pass's outputs (read-only)."""
        return self._output

    def vjp(self, grad_out: ArrayLike) -> np.ndarray:
        """Pull ``grad_out`` back to the input; see :meth:`Network.vjp`.

        Parameters
        ----------
        grad_out : array_like
            ``(batch, *output_shape)``, or ``output_shape`` for a single input.

        Returns
        -------
        numpy.ndarray
            float64, the shape of the input.
        """
        try:
            g = np.asarray(grad_out)
        except (TypeError, ValueError):
            raise InputError(
                f"`grad_out` must be an array of real numbers; received {format_value(grad_out)}"
            ) from None
        if g.dtype.kind not in "iuf":
            raise InputError(
                f"`grad_out` must hold real numbers (int or float dtype); received "
                f"{format_value(g)}"
            )
        out_shape = self._net.output_shape
        want = out_shape if self._single else (self._batch, *out_shape)
        if g.shape != want:
            raise ShapeError(f"`grad_out` must have shape {want} (the output's); received "
                             f"shape {g.shape}")
        g = np.asarray(g, dtype=np.float64)
        if not np.isfinite(g).all():
            raise InputError("`grad_out` must be finite; received NaN or infinite entries")
        if self._single:
            g = g[None]
        grad = _back(self._net._plan, self._tape, g)  # type: ignore[attr-defined]
        return grad[0] if self._single else grad


# ====================================================================== description
def _encode_field(value: Any) -> tuple[bool, Any]:
    """(ok, JSON value) for a layer field: ints, floats, bools, strings, None, tuples of them."""
    if value is None or isinstance(value, (bool, str)):
        return True, value
    if isinstance(value, (np.bool_,)):
        return True, bool(value)
    if isinstance(value, (int, np.integer)):
        return True, int(value)
    if isinstance(value, (float, np.floating)):
        return True, float(value)
    if isinstance(value, (tuple, list)):
        items = [_encode_field(v) for v in value]
        return all(ok for ok, _ in items), [v for _, v in items]
    return False, repr(value)


def _decode_field(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_decode_field(v) for v in value)
    return value


def _describe(name: str, layer: Layer) -> dict[str, Any]:
    if isinstance(layer, Residual):
        return {"name": name, "type": "residual",
                "body": [_describe(n, l) for n, l in layer.body]}
    cls = type(layer)
    reg = _NAMES.get(cls)
    fields: dict[str, Any] = {}
    encodable = True
    for f in dataclasses.fields(layer) if dataclasses.is_dataclass(layer) else ():
        ok, val = _encode_field(getattr(layer, f.name))
        encodable = encodable and ok
        fields[f.name] = val
    out: dict[str, Any] = {
        "name": name,
        "type": reg if reg is not None else f"{cls.__module__}.{cls.__qualname__}",
        "fields": fields,
    }
    if reg is None or not encodable or not dataclasses.is_dataclass(layer):
        out["registered"] = False
        if not dataclasses.is_dataclass(layer):
            out["repr"] = repr(layer)
    return out


def _build(desc: Any, where: str) -> tuple[str, Layer]:
    """Rebuild ``(name, layer)`` from :func:`_describe` output (for loading)."""
    if not isinstance(desc, dict) or not isinstance(desc.get("name"), str) \
            or not isinstance(desc.get("type"), str):
        raise InputError(f"{where}: malformed layer entry {format_value(desc)}")
    name, kind = desc["name"], desc["type"]
    if kind == "residual":
        body = desc.get("body")
        if not isinstance(body, list):
            raise InputError(f"{where}: residual layer {name!r} has no body list")
        return name, Residual(tuple(_build(d, where) for d in body))
    cls = _REGISTRY.get(kind)
    if cls is None:
        known = ", ".join(sorted([*_REGISTRY, *_RESERVED]))
        raise InputError(
            f"{where}: layer {name!r} has type {kind!r}, which is not registered in this "
            f"process; import the module that registers it (registered: {known})"
        )
    fields = desc.get("fields")
    if not isinstance(fields, dict):
        raise InputError(f"{where}: layer {name!r} ({kind}) has no fields object")
    try:
        layer = cls(**{k: _decode_field(v) for k, v in fields.items()})
    except (TypeError, ValueError) as exc:
        msg = " ".join(str(exc).split())
        raise InputError(
            f"{where}: layer {name!r} of type {kind!r} cannot be rebuilt from fields "
            f"{format_value(fields)}: {msg}"
        ) from None
    return name, layer


def _check_savable(net: Network) -> None:
    def walk(items: list[dict[str, Any]], prefix: str) -> None:
        for d in items:
            path = f"{prefix}{d['name']}"
            if d["type"] == "residual":
                walk(d["body"], f"{path}.body.")
            elif d.get("registered") is False:
                raise InputError(
                    f"layer `{path}` of type {d['type']} cannot be saved: register its type with "
                    "@slth.nets.base.register_layer(name) on a frozen dataclass whose fields are "
                    "ints, floats, bools, strings, None or tuples of them"
                )

    walk(net.architecture()["layers"], "layers.")
