"""Strong lottery tickets: a fixed random source network and the entries kept from it.

A ticket stores, per source parameter name, the sorted flat indices of the
entries it keeps (:attr:`Ticket.kept`); dense boolean masks are derived on
demand (:attr:`Ticket.masks`).

A :class:`Ticket` never changes a weight. The pruned network is ``source * mask``
(:meth:`Ticket.network`); :meth:`Ticket.forward` evaluates exactly that network
but stores only the kept weights of sparse layers (scipy CSR), so its cost is
proportional to the number of kept weights rather than to the source's size.

The source is any network: a dense :class:`slth.nets.base.Network` (an
:class:`slth.nets.MLP` is one) or a :class:`slth.sources.VirtualNetwork` (a
:class:`slth.sources.VirtualMLP` is one; entries computed on demand from a
counter-based generator: a source of 10^9 weights costs nothing until read).
Nothing here depends on the layer types: kept entries, errors and the layer map
are keyed by names, and the forward pass is the source's own with masked
parameters, so a layer type added to :mod:`slth.nets` (or defined in a user's
module and registered) needs no change here. Everything a ticket computes reads
the kept values through :meth:`Ticket.kept_entries`, so a virtual-source ticket
costs memory in proportion to what it keeps; :attr:`Ticket.masks` and
:meth:`Ticket.network` are dense and memory-guarded.

Tickets are saved to one ``.npz`` file holding the source's layers and arrays bit
for bit (or, for a virtual source, its layers, spec, law and seed), the kept
indices delta-encoded and a JSON metadata entry (format version 3; the MLP-only
versions 1 and 2 of slth 0.1 still load); loading never unpickles.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike

from ._memory import check_memory
from .errors import InputError, ShapeError, SLTHError, format_value
from .nets.base import Architecture, Linearization, Network, _check_savable
from .nets.io import mlp_from_network
from .nets.mlp import MLP, param_name, resolve_name
from .sources import VirtualMLP, VirtualNetwork, VirtualSource

__all__ = [
    "FORMAT_VERSION",
    "READABLE_VERSIONS",
    "SPARSE_DENSITY_THRESHOLD",
    "FrozenParams",
    "SourceMLP",
    "SourceNet",
    "Ticket",
    "source_bias_layers",
    "source_parameter_shapes",
]

#: Layers whose weight density is below this are evaluated as scipy CSR matrices
#: by :meth:`Ticket.forward` (``method="auto"``); denser layers as dense matrices.
SPARSE_DENSITY_THRESHOLD: float = 0.3

#: Version of the ``.npz`` layout written by :meth:`Ticket.save` (3: any network, dense
#: or virtual, parameters by network name; 2: MLP sources, kept indices delta-encoded;
#: 1: MLP sources, bit-packed masks).
FORMAT_VERSION: int = 3
#: Format versions :meth:`Ticket.load` reads (1 and 2 are slth 0.1's MLP-only files).
READABLE_VERSIONS: tuple[int, ...] = (1, 2, 3)

#: The MLP sources of slth 0.1: a dense :class:`slth.nets.MLP` or a
#: :class:`slth.sources.VirtualMLP` (entries computed on demand).
SourceMLP = MLP | VirtualMLP
#: What a ticket's source may be: any dense network (an MLP included) or a virtual one.
SourceNet = Network | VirtualNetwork

_FORMAT_NAME = "slth.Ticket"
_META_KEY = "__metadata__"
_METHODS = ("auto", "sparse", "dense")


# ---------------------------------------------------------------------- params
def _normalise_json(value: Any, where: str) -> Any:
    """Recursively convert ``value`` to plain JSON types (dict/list/str/int/float/bool/None)."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise InputError(
                f"`params` must be JSON-serialisable; {where} is {format_value(value)}"
            )
        return _normalise_json(value.tolist(), where)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise InputError(
                    f"`params` keys must be str; {where} has key {k!r} of type {type(k).__name__}"
                )
            out[k] = _normalise_json(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_normalise_json(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise InputError(
        f"`params` must be JSON-serialisable (str, int, float, bool, None, lists, dicts, "
        f"numeric arrays); {where} is {format_value(value)} of type {type(value).__name__}"
    )


class FrozenParams(Mapping):
    """Read-only mapping of construction parameters, normalised to JSON types.

    Tuples become lists and numpy scalars/arrays become Python numbers/lists, so
    that a ticket's ``params`` compare equal before and after
    :meth:`Ticket.save` / :meth:`Ticket.load`. Compares equal to a ``dict``
    with the same content.
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise InputError(
                f"`params` must be a mapping with str keys; received {format_value(data)}"
            )
        object.__setattr__(self, "_data", _normalise_json(data, "params"))

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("FrozenParams is read-only")

    def __getstate__(self) -> dict[str, Any]:
        return self._data

    def __setstate__(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "_data", state)

    def __repr__(self) -> str:
        return f"FrozenParams({self._data!r})"

    def to_dict(self) -> dict[str, Any]:
        """A deep copy as a plain ``dict`` (JSON types only)."""
        return json.loads(json.dumps(self._data))


# ---------------------------------------------------------------------- validation
def _check_int_tuple(value: Any, name: str, *, min_len: int, min_value: int) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        raise InputError(
            f"`{name}` must be a sequence of ints >= {min_value}; received {format_value(value)}"
        )
    out = []
    for v in value:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < min_value:
            raise InputError(
                f"`{name}` must be a sequence of ints >= {min_value}; received {list(value)!r}"
            )
        out.append(int(v))
    if len(out) < min_len:
        raise InputError(
            f"`{name}` must have at least {min_len} entries; received {out!r}"
        )
    return tuple(out)


def _check_error_array(value: Any, name: str, ndim: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise InputError(f"`{name}` must hold real numbers; received {format_value(arr)}")
    if arr.ndim != ndim:
        raise ShapeError(f"`{name}` must be a {ndim}-D array; received shape {arr.shape}")
    arr = np.asarray(arr, dtype=np.float64)
    n_nan = int(np.count_nonzero(np.isnan(arr)))
    n_neg = int(np.count_nonzero(arr < 0))
    if n_nan or n_neg:
        raise InputError(
            f"`{name}` must hold error bounds >= 0 (inf allowed, no NaN); received "
            f"{format_value(arr)} with {n_nan} NaN and {n_neg} negative entries"
        )
    view = arr.view()
    view.flags.writeable = False
    return view


def _readonly(arr: np.ndarray) -> np.ndarray:
    view = arr.view()
    view.flags.writeable = False
    return view


# ---------------------------------------------------------------------- kept entries
def _flat(p: np.ndarray) -> np.ndarray:
    """Row-major flat view of ``p`` (a copy only when ``p`` is not C-contiguous)."""
    return p.reshape(-1)


def _check_source(source: Any) -> Any:
    if isinstance(source, (Network, VirtualNetwork)):
        return source
    raise InputError(
        "`source` must be a network (slth.nets.Network, an MLP included) or a virtual one "
        "(slth.sources.VirtualNetwork, a VirtualMLP included); received "
        f"{format_value(source)} of type {type(source).__name__}"
    )


def _is_mlp(source: Any) -> bool:
    return isinstance(source, (MLP, VirtualMLP))


def _names_list(names: Sequence[str], limit: int = 12) -> str:
    names = list(names)
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


def source_parameter_shapes(source: Any) -> dict[str, tuple[int, ...]]:
    """Shape of every parameter of a ticket source, by name, in the network's order.

    Works for a dense network (an :class:`slth.nets.MLP` included) and for a
    :class:`slth.sources.VirtualNetwork` (no entry is read).
    """
    return {n: tuple(s) for n, s in _check_source(source).param_specs().items()}


def source_bias_layers(source: Any) -> tuple[bool, ...]:
    """Per layer of an MLP-shaped source, whether it has a bias."""
    if isinstance(source, VirtualMLP):
        return source.bias_layers
    if isinstance(source, MLP):
        return tuple(b is not None for b in source.biases)
    raise InputError(f"`source` must be an MLP or a VirtualMLP; received {format_value(source)}")


def _kept_from_masks(source: Any, masks: Any) -> dict[str, np.ndarray]:
    """Validate one bool mask per source parameter; return its sorted flat kept indices."""
    shapes = source_parameter_shapes(source)
    names = tuple(shapes)
    if isinstance(masks, Mapping):
        items = _check_names(source, masks, "masks")
        masks = [items[n] for n in names]
    if isinstance(masks, np.ndarray) or not isinstance(masks, Sequence):
        raise InputError(
            f"`masks` must be a sequence of {len(names)} bool arrays (or a mapping from "
            f"parameter names to them); received {format_value(masks)}"
        )
    if len(masks) != len(names):
        raise ShapeError(
            f"`masks` must hold one bool array per source parameter ({len(names)}: "
            f"{', '.join(names)}); received {len(masks)}"
        )
    kept: dict[str, np.ndarray] = {}
    for i, (m, name) in enumerate(zip(masks, names, strict=True)):
        arr = m if isinstance(m, np.ndarray) else np.asarray(m)
        if arr.dtype != np.bool_:
            raise InputError(
                f"`masks[{i}]` (for source {name}) must be a bool array; received "
                f"{format_value(arr)}"
            )
        if arr.shape != shapes[name]:
            raise ShapeError(
                f"`masks[{i}]` must have the shape {shapes[name]} of source {name}; received "
                f"shape {arr.shape}"
            )
        # np.flatnonzero scans in row-major order: the indices come out sorted and unique
        kept[name] = _readonly(np.flatnonzero(arr).astype(np.int64, copy=False))
    return kept


def _canonical(source: Any, name: Any) -> Any:
    """``name`` as a parameter name of ``source`` (MLP sources: slth 0.1 aliases resolved)."""
    if isinstance(name, str) and _is_mlp(source):
        return resolve_name(name)
    return name


def _check_names(source: Any, given: Mapping[Any, Any], what: str) -> dict[str, Any]:
    """Keys of ``given`` as source parameter names (aliases resolved); unknown/repeated refused."""
    names = tuple(source.param_specs())
    out: dict[str, Any] = {}
    unknown = []
    for k, v in given.items():
        c = _canonical(source, k)
        if c not in names:
            unknown.append(k)
            continue
        if c in out:
            raise InputError(f"`{what}` names source parameter {c!r} twice (once as {k!r})")
        out[c] = v
    if unknown:
        raise InputError(
            f"`{what}` keys must be source parameter names ({_names_list(names)}); received "
            f"unknown {', '.join(repr(k) for k in unknown)}"
        )
    return out


def _check_kept(source: Any, kept: Any, *, copy: bool = True) -> dict[str, np.ndarray]:
    """Validate kept flat indices keyed by source parameter names; return int64 arrays."""
    shapes = source_parameter_shapes(source)
    names = tuple(shapes)
    if not isinstance(kept, Mapping):
        raise InputError(
            f"`kept` must be a mapping from source parameter names ({', '.join(names)}) to "
            f"sorted flat indices; received {format_value(kept)} of type {type(kept).__name__}"
        )
    kept = _check_names(source, kept, "kept")
    missing = [n for n in names if n not in kept]
    if missing:
        raise InputError(
            f"`kept` must hold an index array for every source parameter ({', '.join(names)}; "
            f"an empty array keeps nothing); missing {', '.join(repr(n) for n in missing)}"
        )
    out: dict[str, np.ndarray] = {}
    for name, shape in shapes.items():
        size = math.prod(shape)
        where = f"`kept[{name!r}]`"
        v = kept[name]
        arr = v if isinstance(v, np.ndarray) else np.asarray(v)
        if arr.size == 0 and arr.dtype.kind == "f" and not isinstance(v, np.ndarray):
            arr = arr.astype(np.int64)  # an empty list
        if arr.dtype.kind not in "iu":
            raise InputError(
                f"{where} must be an integer array of flat indices into source {name}; "
                f"received {format_value(arr)}"
            )
        if arr.ndim != 1:
            raise ShapeError(
                f"{where} must be a 1-D array of flat (row-major) indices into source {name} "
                f"of shape {shape}; received shape {arr.shape}"
            )
        if arr.size:
            lo, hi = arr.min(), arr.max()
            if lo < 0 or hi >= size:
                bad = lo if lo < 0 else hi
                raise InputError(
                    f"{where} must hold flat indices in [0, {size - 1}] (source {name} has "
                    f"shape {shape}); received {int(bad)}"
                )
        a = arr.astype(np.int64, copy=copy or arr.dtype != np.int64)
        if a.size > 1:
            d = np.diff(a)
            if not np.all(d > 0):
                k = int(np.flatnonzero(d <= 0)[0])
                what = "a repeated" if d[k] == 0 else "a decreasing"
                raise InputError(
                    f"{where} must be strictly increasing (sorted, no repeats); received "
                    f"{what} index {int(a[k + 1])} at position {k + 1} after {int(a[k])}"
                )
        out[name] = _readonly(a)
    return out


class _AliasView(Mapping):
    """Read-only mapping by source parameter name that also answers slth 0.1's MLP names."""

    __slots__ = ("_data", "_mlp")

    def __init__(self, data: Mapping[str, Any], mlp: bool) -> None:
        self._data = data
        self._mlp = mlp

    def __getitem__(self, key: str) -> Any:
        if self._mlp and isinstance(key, str) and key not in self._data:
            key = resolve_name(key)
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"{{{', '.join(f'{k!r}: ...' for k in self._data)}}}"


def _layer_map_from_indices(source: Any, lm: Any, n_target: int | None
                            ) -> dict[str, tuple[str, ...]]:
    """The MLP index form ``((0, 1), (2, 3))`` of a layer map, validated, as layer names."""
    depth = source.depth
    out: dict[str, tuple[str, ...]] = {}
    last = -1
    for l, group in enumerate(lm):
        g = _check_int_tuple(group, f"layer_map[{l}]", min_len=1, min_value=0)
        for s in g:
            if s >= depth:
                raise InputError(
                    f"`layer_map[{l}]` must hold source layer indices in [0, {depth - 1}]; "
                    f"received {g}"
                )
            if s <= last:
                raise InputError(
                    f"`layer_map` indices must be strictly increasing in order; "
                    f"`layer_map[{l}]` = {g} follows index {last}"
                )
            last = s
        out[f"layers.{2 * l}"] = tuple(f"layers.{2 * s}" for s in g)
    if n_target is not None and len(out) != n_target:
        raise ShapeError(
            f"`layer_map` must have one entry per target layer ({n_target}, from "
            f"`target_widths`); received {len(out)}"
        )
    return out


def _layer_map_from_names(source: Any, lm: Mapping[Any, Any]) -> dict[str, tuple[str, ...]]:
    """A layer map by names: target layer path -> source layer paths, in source order."""
    order = {path: i for i, (path, _) in enumerate(source.named_layers())}
    out: dict[str, tuple[str, ...]] = {}
    last = -1
    for key, group in lm.items():
        if not isinstance(key, str) or not key:
            raise InputError(f"`layer_map` keys must be target layer paths ('layers.0', ...); "
                             f"received {format_value(key)}")
        if isinstance(group, str) or not isinstance(group, Sequence) or not group:
            raise InputError(f"`layer_map[{key!r}]` must be a non-empty sequence of source layer "
                             f"paths; received {format_value(group)}")
        paths = []
        for path in group:
            if path not in order:
                raise InputError(
                    f"`layer_map[{key!r}]` must name source layers "
                    f"({_names_list(list(order))}); received {format_value(path)}")
            if order[path] <= last:
                raise InputError(
                    f"`layer_map` source layers must come in the source's order, each once; "
                    f"`layer_map[{key!r}]` names {path!r} after a later or the same layer")
            last = order[path]
            paths.append(path)
        out[key] = tuple(paths)
    return out


def _virtual_spec(info: Any) -> dict[str, tuple[int, ...]] | None:
    """The VirtualSource spec a file's ``source`` metadata records, or None if malformed."""
    if not (isinstance(info, dict) and info.get("kind") == "virtual"
            and isinstance(info.get("spec"), list)
            and isinstance(info.get("law"), (str, dict))
            and isinstance(info.get("seed"), int) and not isinstance(info.get("seed"), bool)):
        return None
    try:
        spec = {str(name): tuple(shape) for name, shape in info["spec"]}
    except (TypeError, ValueError):
        return None
    return spec if len(spec) == len(info["spec"]) else None


def _delta_encode(idx: np.ndarray) -> np.ndarray:
    """Gaps of sorted indices (first entry: the first index) in the smallest unsigned dtype."""
    if idx.size == 0:
        return np.zeros(0, dtype=np.uint8)
    d = np.diff(idx, prepend=np.int64(0))
    top = int(d.max())
    for dt in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dt).max:
            return d.astype(dt)
    return d.astype(np.uint64)


def _encode_kept(idx: np.ndarray, size: int) -> tuple[str, np.ndarray]:
    """The smaller (before compression) of the two file encodings of one parameter's kept set.

    ``"delta"``: :func:`_delta_encode` (1 to 8 bytes per kept entry);
    ``"bits"``: ``numpy.packbits`` of the flat mask (``ceil(size / 8)`` bytes), used
    only when it is smaller, i.e. for a dense kept set (so the temporary mask costs
    at most 8 bytes per kept entry).
    """
    gaps = _delta_encode(idx)
    if (size + 7) // 8 < gaps.nbytes:
        flat = np.zeros(size, dtype=np.bool_)
        flat[idx] = True
        return "bits", np.packbits(flat)
    return "delta", gaps


def _delta_decode(d: np.ndarray, fname: str, key: str) -> np.ndarray:
    """Sorted flat indices from the gaps written by :func:`_delta_encode`."""
    if d.dtype.kind != "u" or d.ndim != 1:
        raise InputError(
            f"`path` {fname!r}: entry {key!r} must hold 1-D unsigned gaps between kept flat "
            f"indices; received {format_value(d)}"
        )
    return np.cumsum(d, dtype=np.int64)


# ---------------------------------------------------------------------- ticket
class Ticket:
    """A strong lottery ticket: a fixed random source network and the entries kept from it.

    The pruned network is ``source * mask`` (:meth:`network`): no weight is
    ever changed, rescaled or added. The canonical storage is :attr:`kept`:
    per source parameter name, the sorted flat (row-major) indices of the kept
    entries, so a ticket costs memory in proportion to what it keeps (8 bytes
    per kept entry) plus its source. Dense boolean masks (:attr:`masks`,
    :meth:`mask`) are derived on demand. Its forward pass is the source
    network's own, with the masked parameters (:meth:`forward`).

    Parameters
    ----------
    source : Network or VirtualNetwork
        The random network, untouched: a dense :class:`slth.nets.base.Network`
        (an :class:`slth.nets.MLP` is one) or a
        :class:`slth.sources.VirtualNetwork` (a :class:`slth.sources.VirtualMLP`
        is one), whose entries are computed on demand; tickets over virtual
        sources are usually built with :meth:`from_kept`, dense masks being what
        they exist to avoid.
    masks : sequence of bool array_like, or Mapping[str, bool array_like]
        One boolean array per source parameter, in ``source.param_specs()``
        order (for an MLP: ``W_0, b_0, W_1, b_1, ...``, None biases skipped) or
        keyed by parameter name. True keeps the entry. Converted once to kept
        indices and not retained.
    construction : str, default "manual"
        Name of the construction that made the ticket, e.g. ``"pensia2020"``.
    params : mapping, default {}
        Construction parameters (eps, delta, n, seed, ...). Must be
        JSON-serialisable; normalised to JSON types (tuples become lists) and
        stored read-only as a :class:`FrozenParams`.
    target_widths : sequence of int, optional
        For an MLP target over an MLP source: the target's widths ``(d_0, ...,
        d_L)``; its first and last entries must equal the source's.
    layer_map : mapping or sequence, optional
        Which source layers realise each target layer: a mapping from target
        layer paths to source layer paths (``{"layers.0": ("layers.0",
        "layers.2"), ...}``), each source layer at most once and in the source's
        order; or, for MLPs, the index form of slth 0.1, one tuple of source
        layer indices per target layer (``((0, 1), (2, 3))`` for the 2l-layer
        construction of Pensia et al. 2020), converted to names.
    weight_errors, bias_errors : sequence of array_like, optional
        The MLP form of ``errors``: per target layer l the ``(d_out, d_in)``
        (and ``(d_out,)`` or None) bounds, stored as ``errors["layers.<2l>.weight"]``
        (and ``".bias"``).
    target_fingerprint : str, optional
        The ``fingerprint()`` of the target the ticket was built for (set by
        every construction). Evaluation against a target with another
        fingerprint raises unless asked not to (``check_target=False`` in
        :mod:`slth.evaluate`). None: unknown target, nothing is checked.
    errors : Mapping[str, array_like], optional
        Per target parameter name, the construction's bound on ``|realised
        effective parameter - target parameter|``, the target parameter's
        shape (entries >= 0, ``inf`` allowed for a failed instance, no NaN).
        Read by the construction's certifier. Give either this or the MLP form.

    Attributes
    ----------
    source, construction, params, target_widths, target_fingerprint
        As above, validated and stored immutably.
    layer_map : Mapping[str, tuple of str] or None
        Read-only, by names (see above).
    errors : Mapping[str, numpy.ndarray] or None
        Read-only arrays by target parameter name.
    weight_errors, bias_errors : tuple or None
        The MLP views of :attr:`errors` (per target layer), for an MLP source
        whose target is an MLP (``target_widths`` given or the names are its
        names); None otherwise.
    mlp_layer_map : tuple of tuple of int or None
        The index form of :attr:`layer_map` for an MLP source and target.
    is_virtual : bool
        True when ``source`` is a :class:`slth.sources.VirtualNetwork`. Every
        kept value is then read once with ``source.entries`` and cached;
        :attr:`masks`, :meth:`mask` and :meth:`network` are dense and refuse
        past the memory budget (:class:`slth.errors.LimitError`).
    kept : Mapping[str, numpy.ndarray]
        Read-only: per source parameter name (``source.param_specs()``; for an
        MLP source the names of slth 0.1, ``"weights[l]"``/``"biases[l]"``, are
        answered too), the sorted, unique int64 flat indices of the kept entries.
    masks : tuple of numpy.ndarray
        Read-only bool arrays in ``source.param_specs()`` order, derived from
        :attr:`kept` on first access and cached.

    Raises
    ------
    ShapeError
        Wrong number of masks, a mask or error array of the wrong shape,
        target widths whose ends differ from the source's.
    InputError
        Masks that are not ``bool``, an invalid ``layer_map``, error bounds
        that are negative or NaN, non-JSON ``params``.

    Examples
    --------
    >>> import numpy as np
    >>> from slth.ticket import Ticket
    >>> from slth.nets import MLP
    >>> src = MLP.random((3, 8, 2), rng=0)
    >>> masks = [np.abs(p) > 0.5 for p in src.parameters()]
    >>> t = Ticket(src, masks)
    >>> bool(np.allclose(t.forward(np.ones(3)), t.network().forward(np.ones(3))))
    True
    >>> u = Ticket.from_kept(src, t.kept)
    >>> all(np.array_equal(a, b) for a, b in zip(u.masks, t.masks))
    True
    """

    source: Any
    construction: str
    params: FrozenParams
    target_widths: tuple[int, ...] | None
    target_fingerprint: str | None

    def __init__(
        self,
        source: Any,
        masks: Sequence[ArrayLike] | Mapping[str, ArrayLike],
        construction: str = "manual",
        params: Mapping[str, Any] | None = None,
        target_widths: Sequence[int] | None = None,
        layer_map: Any = None,
        weight_errors: Sequence[ArrayLike] | None = None,
        bias_errors: Sequence[ArrayLike | None] | None = None,
        target_fingerprint: str | None = None,
        *,
        errors: Mapping[str, ArrayLike] | None = None,
    ) -> None:
        source = _check_source(source)
        kept = _kept_from_masks(source, masks)
        self._init(source, kept, construction, params, target_widths, layer_map,
                   weight_errors, bias_errors, target_fingerprint, errors)

    @classmethod
    def from_kept(
        cls,
        source: Any,
        kept: Mapping[str, ArrayLike],
        *,
        construction: str = "manual",
        params: Mapping[str, Any] | None = None,
        target_widths: Sequence[int] | None = None,
        layer_map: Any = None,
        weight_errors: Sequence[ArrayLike] | None = None,
        bias_errors: Sequence[ArrayLike | None] | None = None,
        target_fingerprint: str | None = None,
        errors: Mapping[str, ArrayLike] | None = None,
    ) -> Ticket:
        """A ticket from its kept entries, without dense masks.

        Parameters
        ----------
        source : Network or VirtualNetwork
            The random network, untouched. A :class:`slth.sources.VirtualNetwork`
            (entries computed on demand) makes the ticket cost memory in
            proportion to what it keeps, whatever the source's size: only the
            kept entries are ever read (:meth:`kept_entries`).
        kept : mapping of str to integer array_like
            One entry per source parameter name (``source.param_specs()``; an
            empty array keeps nothing; for MLP sources slth 0.1's names
            ``"weights[l]"`` are accepted): the flat row-major indices of the
            kept entries of that parameter, strictly increasing, in ``[0,
            size)``. Any integer dtype; copied to read-only int64.
        construction, params, target_widths, layer_map, weight_errors, bias_errors, \
target_fingerprint, errors
            As in :class:`Ticket`.

        Returns
        -------
        Ticket

        Raises
        ------
        InputError
            ``kept`` is not a mapping, misses a parameter name or holds an
            unknown one; an index array that is not integer, not strictly
            increasing or out of range; or invalid metadata (as in :class:`Ticket`).
        ShapeError
            An index array that is not 1-D, or metadata of the wrong shape.
        """
        return cls._from_kept(source, kept, copy=True, construction=construction, params=params,
                              target_widths=target_widths, layer_map=layer_map,
                              weight_errors=weight_errors, bias_errors=bias_errors,
                              target_fingerprint=target_fingerprint, errors=errors)

    @classmethod
    def _from_kept(cls, source: Any, kept: Mapping[str, ArrayLike], *, copy: bool,
                   **meta: Any) -> Ticket:
        source = _check_source(source)
        checked = _check_kept(source, kept, copy=copy)
        self = cls.__new__(cls)
        self._init(source, checked, meta["construction"], meta["params"], meta["target_widths"],
                   meta["layer_map"], meta["weight_errors"], meta["bias_errors"],
                   meta["target_fingerprint"], meta.get("errors"))
        return self

    def _init(self, source: Any, kept: dict[str, np.ndarray], construction: Any, params: Any,
              tw: Any, lm: Any, we: Any, be: Any, fp: Any, errors: Any) -> None:
        set_ = object.__setattr__
        set_(self, "source", source)
        set_(self, "_kept", kept)
        if not isinstance(construction, str):
            raise InputError(
                f"`construction` must be a str; received {format_value(construction)}"
            )
        set_(self, "construction", construction)
        set_(self, "params", FrozenParams(params))

        if tw is not None:
            tw = _check_int_tuple(tw, "target_widths", min_len=2, min_value=1)
            if not _is_mlp(source):
                raise InputError(
                    "`target_widths` describes an MLP target over an MLP source; this source is "
                    f"{type(source).__name__} (record the target by its fingerprint and "
                    "`errors` by parameter name)"
                )
            sw = source.widths
            if tw[0] != sw[0] or tw[-1] != sw[-1]:
                raise ShapeError(
                    f"`target_widths` must start with the source input width {sw[0]} and end "
                    f"with its output width {sw[-1]}; received {tw}"
                )
        set_(self, "target_widths", tw)
        n_target = None if tw is None else len(tw) - 1

        names: dict[str, tuple[str, ...]] | None = None
        if lm is not None:
            if isinstance(lm, Mapping):
                names = _layer_map_from_names(source, lm)
            elif isinstance(lm, (str, bytes)) or not isinstance(lm, Sequence):
                raise InputError(
                    "`layer_map` must be a mapping from target layer paths to source layer "
                    "paths (or, for MLPs, a sequence of sequences of source layer indices); "
                    f"received {format_value(lm)}"
                )
            elif not _is_mlp(source):
                raise InputError(
                    "`layer_map` by layer indices is the MLP form; for this source give a "
                    "mapping from target layer paths to source layer paths"
                )
            else:
                names = _layer_map_from_indices(source, lm, n_target)
                if n_target is None:
                    n_target = len(names)
        set_(self, "_layer_map", names)

        if errors is not None and (we is not None or be is not None):
            raise InputError("give `errors` (by target parameter name) or its MLP form "
                             "`weight_errors`/`bias_errors`, not both")
        errs: dict[str, np.ndarray] | None = None
        bias_given = be is not None
        if we is not None or be is not None:
            errs = self._mlp_errors(we, be, tw, n_target)
        elif errors is not None:
            if not isinstance(errors, Mapping):
                raise InputError(f"`errors` must be a mapping from target parameter names to "
                                 f"error arrays; received {format_value(errors)}")
            errs = {}
            for key, e in errors.items():
                if not isinstance(key, str):
                    raise InputError(f"`errors` keys must be target parameter names (str); "
                                     f"received {format_value(key)}")
                arr = np.asarray(e)
                errs[key] = _check_error_array(arr, f"errors[{key!r}]", arr.ndim)
            bias_given = any(k.endswith(".bias") for k in errs)
        set_(self, "_errors", errs)
        set_(self, "_bias_given", bias_given)

        if fp is not None and (not isinstance(fp, str) or not fp.startswith("sha256:")):
            raise InputError(
                "`target_fingerprint` must be None or a str 'sha256:<hex>' as returned by "
                f"the target's fingerprint(); received {format_value(fp)}"
            )
        set_(self, "target_fingerprint", fp)
        set_(self, "_cache", {})

    @staticmethod
    def _mlp_errors(we: Any, be: Any, tw: Any, n_target: int | None) -> dict[str, np.ndarray]:
        """``weight_errors``/``bias_errors`` (per target MLP layer) validated, keyed by name."""
        out: dict[str, np.ndarray] = {}
        d_outs: list[int] = []
        if we is not None:
            if isinstance(we, np.ndarray) or not isinstance(we, Sequence):
                raise InputError(
                    f"`weight_errors` must be a sequence of 2-D arrays; received {format_value(we)}"
                )
            if n_target is not None and len(we) != n_target:
                raise ShapeError(
                    f"`weight_errors` must have one array per target layer ({n_target}); "
                    f"received {len(we)}"
                )
            for l, e in enumerate(we):
                a = _check_error_array(e, f"weight_errors[{l}]", 2)
                if tw is not None and a.shape != (tw[l + 1], tw[l]):
                    raise ShapeError(
                        f"`weight_errors[{l}]` must have shape {(tw[l + 1], tw[l])} (target "
                        f"layer {l}); received shape {a.shape}"
                    )
                out[param_name("weight", l)] = a
                d_outs.append(a.shape[0])
            if n_target is None:
                n_target = len(we)
        if be is not None:
            if isinstance(be, np.ndarray) or not isinstance(be, Sequence):
                raise InputError(
                    f"`bias_errors` must be a sequence of 1-D arrays or None; received "
                    f"{format_value(be)}"
                )
            if n_target is not None and len(be) != n_target:
                raise ShapeError(
                    f"`bias_errors` must have one entry per target layer ({n_target}); "
                    f"received {len(be)}"
                )
            for l, e in enumerate(be):
                if e is None:
                    continue
                a = _check_error_array(e, f"bias_errors[{l}]", 1)
                d_out = tw[l + 1] if tw is not None else (d_outs[l] if d_outs else None)
                if d_out is not None and a.shape != (d_out,):
                    raise ShapeError(
                        f"`bias_errors[{l}]` must have shape ({d_out},); received shape "
                        f"{a.shape}"
                    )
                out[param_name("bias", l)] = a
        return out

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Ticket is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Ticket is immutable; cannot delete {name!r}")

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"] = {}  # drop derived masks, cached values and built operators
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            object.__setattr__(self, k, v)

    # ------------------------------------------------------------------ records
    @property
    def layer_map(self) -> Mapping[str, tuple[str, ...]] | None:
        """Target layer path -> the source layer paths realising it (read-only), or None."""
        lm = self._layer_map
        return None if lm is None else MappingProxyType(lm)

    @property
    def mlp_layer_map(self) -> tuple[tuple[int, ...], ...] | None:
        """The MLP index form of :attr:`layer_map`: per target layer, source layer indices.

        ``((0, 1), (2, 3))`` for ``{"layers.0": ("layers.0", "layers.2"),
        "layers.2": ("layers.4", "layers.6")}``; None when there is no layer map,
        the source is not an MLP, or a name is not an MLP Dense layer's
        (``"layers.<2l>"``, target layers in order).
        """
        lm = self._layer_map
        if lm is None or not _is_mlp(self.source):
            return None
        out = []
        for i, (key, group) in enumerate(lm.items()):
            if key != f"layers.{2 * i}":
                return None
            idx = []
            for path in group:
                parts = path.split(".")
                if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) % 2:
                    return None
                idx.append(int(parts[1]) // 2)
            out.append(tuple(idx))
        return tuple(out)

    @property
    def errors(self) -> Mapping[str, np.ndarray] | None:
        """Per target parameter name, the recorded error bounds (read-only), or None."""
        e = self._errors
        return None if e is None else MappingProxyType(e)

    def _n_target_mlp(self) -> int | None:
        if not _is_mlp(self.source):
            return None
        if self.target_widths is not None:
            return len(self.target_widths) - 1
        e = self._errors
        if not e:
            return None
        n = 0
        while param_name("weight", n) in e:
            n += 1
        return n

    @property
    def weight_errors(self) -> tuple[np.ndarray, ...] | None:
        """Per target MLP layer, the weight error bounds (the MLP view of :attr:`errors`)."""
        e = self._errors
        n = self._n_target_mlp()
        if e is None or not n or any(param_name("weight", l) not in e for l in range(n)):
            return None
        return tuple(e[param_name("weight", l)] for l in range(n))

    @property
    def bias_errors(self) -> tuple[np.ndarray | None, ...] | None:
        """Per target MLP layer, the bias error bounds or None (the MLP view of :attr:`errors`)."""
        e = self._errors
        n = self._n_target_mlp()
        if e is None or not self._bias_given or not n:
            return None
        return tuple(e.get(param_name("bias", l)) for l in range(n))

    # ------------------------------------------------------------------ kept entries
    @property
    def kept(self) -> Mapping[str, np.ndarray]:
        """Kept entries: per source parameter name, sorted unique int64 flat indices.

        Keys are ``source.param_specs()`` in order (an MLP's ``"layers.0.weight"``,
        ...; its slth 0.1 names ``"weights[0]"`` are answered too); flat indices
        are row-major (``numpy.ravel`` order). A read-only mapping of read-only
        arrays.
        """
        return _AliasView(self._kept, _is_mlp(self.source))

    def _name(self, name: Any) -> str:
        c = _canonical(self.source, name)
        if not isinstance(c, str) or c not in self._kept:
            raise InputError(
                f"`name` must be a source parameter name ({_names_list(self._kept)}); received "
                f"{format_value(name)}"
            )
        return c

    def kept_entries(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The kept flat indices of one source parameter and the source's values there.

        Parameters
        ----------
        name : str
            A source parameter name, e.g. ``"layers.0.weight"``.

        Returns
        -------
        flat_indices : numpy.ndarray
            Read-only sorted int64 flat (row-major) indices (as in :attr:`kept`).
        values : numpy.ndarray
            float64, the source's entries at those indices, bit for bit. For a
            dense source a new array gathered from it; for a virtual source
            computed once with ``source.entries(name, idx)`` and cached on the
            ticket (read-only; 8 bytes per kept entry).

        Raises
        ------
        InputError
            ``name`` is not a source parameter name.
        """
        name = self._name(name)
        idx = self._kept[name]
        src = self.source
        if isinstance(src, VirtualNetwork):
            cache = self._cache.setdefault("values", {})
            vals = cache.get(name)
            if vals is None:
                vals = cache[name] = _readonly(np.asarray(src.entries(name, idx),
                                                          dtype=np.float64))
            return idx, vals
        return idx, _flat(src.params[name])[idx]

    @property
    def is_virtual(self) -> bool:
        """True when the source is a :class:`slth.sources.VirtualNetwork` (entries on demand)."""
        return isinstance(self.source, VirtualNetwork)

    def _shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = self._cache.get("shapes")
        if shapes is None:
            shapes = self._cache["shapes"] = source_parameter_shapes(self.source)
        return shapes

    def mask(self, name: str) -> np.ndarray:
        """The dense boolean mask of one source parameter, derived from :attr:`kept`.

        Not cached: one byte per entry of the parameter at each call (guarded by
        the memory budget).

        Parameters
        ----------
        name : str
            A source parameter name.

        Returns
        -------
        numpy.ndarray
            A new bool array of the parameter's shape.

        Raises
        ------
        InputError
            ``name`` is not a source parameter name.
        LimitError
            The mask would exceed the memory budget.
        """
        name = self._name(name)
        idx = self._kept[name]
        shape = self._shapes()[name]
        size = math.prod(shape)
        check_memory(size, what=f"Ticket.mask({name!r}): a dense bool mask of {size:,} "
                                "entries", alternative="read Ticket.kept or Ticket.kept_entries")
        m = np.zeros(shape, dtype=np.bool_)
        _flat(m)[idx] = True
        return m

    @property
    def masks(self) -> tuple[np.ndarray, ...]:
        """Dense read-only bool masks in ``source.param_specs()`` order.

        Derived from :attr:`kept` on first access and cached on the ticket:
        **one byte per source entry** (e.g. 53 MB for the 53M-weight source of
        Pensia et al.'s MNIST setting), against 8 bytes per kept entry for
        :attr:`kept`. Code that only needs the nonzeros should read :attr:`kept`
        or :meth:`kept_entries`.

        Raises
        ------
        LimitError
            The masks would exceed the memory budget (:mod:`slth._memory`).
        """
        masks = self._cache.get("masks")
        if masks is None:
            n = self.source.n_params
            check_memory(n, what=f"Ticket.masks: dense bool masks ({n:,} source entries, one "
                                 "byte each)",
                         alternative="read Ticket.kept or Ticket.kept_entries (the kept "
                                     "indices), or Ticket.mask(name) for one parameter")
            out = []
            for shape, idx in zip(self._shapes().values(), self._kept.values(), strict=True):
                m = np.zeros(shape, dtype=np.bool_)
                _flat(m)[idx] = True
                out.append(_readonly(m))
            masks = tuple(out)
            self._cache["masks"] = masks
        return masks

    # ------------------------------------------------------------------ counts
    @property
    def n_kept(self) -> int:
        """Number of kept entries (weights and biases)."""
        return sum(int(k.size) for k in self._kept.values())

    @property
    def n_source_params(self) -> int:
        """Number of source entries."""
        return int(self.source.n_params)

    @property
    def density(self) -> float:
        """Fraction of source entries kept: ``n_kept / n_source_params``; sparsity = 1 - density."""
        return self.n_kept / self.n_source_params

    def _layer_counts(self) -> dict[str, list[int]]:
        """Per source layer path owning parameters: [kept, total] entries."""
        out: dict[str, list[int]] = {}
        for name, shape in self._shapes().items():
            path = self.source.param_owner(name)[0]
            c = out.setdefault(path, [0, 0])
            c[0] += int(self._kept[name].size)
            c[1] += math.prod(shape)
        return out

    def layer_density(self) -> tuple[float, ...]:
        """Density of each source layer with parameters (its weights and bias together).

        Returns
        -------
        tuple of float
            One value per source layer that has parameters (for an MLP: per
            Dense layer), in the source's order, in [0, 1].
        """
        return tuple(k / t for k, t in self._layer_counts().values())

    def kept_values(self) -> tuple[np.ndarray, ...]:
        """The source values the ticket keeps, ``source_param[mask]`` per parameter.

        Returns
        -------
        tuple of numpy.ndarray
            1-D float64 arrays in ``source.param_specs()`` order (row-major
            order of the kept positions). They equal the source's entries bit for
            bit: a ticket never changes a weight.
        """
        return tuple(self.kept_entries(name)[1] for name in self._kept)

    # ------------------------------------------------------------------ evaluation
    def _masked(self, name: str) -> np.ndarray:
        """Source parameter ``name`` with every entry not kept set to +0.0 (a new C array)."""
        idx, vals = self.kept_entries(name)
        out = np.zeros(self._shapes()[name])
        _flat(out)[idx] = vals
        return out

    def masked_params(self) -> dict[str, np.ndarray]:
        """Every source parameter times its mask, as dense arrays (memory of the full source).

        Returns
        -------
        dict of str to numpy.ndarray
            New float64 arrays by parameter name: kept entries are the source's
            values, pruned ones ``+0.0``.

        Raises
        ------
        LimitError
            The dense arrays would exceed the memory budget.
        """
        sizes = [math.prod(s) for s in self._shapes().values()]
        check_memory(8 * sum(sizes) + 8 * max(sizes),
                     what=f"Ticket: a dense float64 copy of the source ({sum(sizes):,} entries)",
                     alternative="use Ticket.forward, which stores only the kept weights")
        return {name: self._masked(name) for name in self._kept}

    def network(self) -> Network:
        """The pruned network as a dense network: every source parameter times its mask.

        Pruned entries are ``+0.0``; kept entries are the source's values.

        Returns
        -------
        Network
            A new network of the source's architecture (an :class:`MLP` for an
            MLP source; dense storage: memory of the full source, also for a
            virtual source, whose kept entries are scattered into zeros; no
            other entry is computed).

        Raises
        ------
        LimitError
            The dense network would exceed the memory budget.
        """
        params = self.masked_params()
        if isinstance(self.source, MLP):
            return self.source.with_params(list(params.values()))
        net = Network(self.source.layers, params, self.source.input_shape)
        return mlp_from_network(net) if isinstance(self.source, VirtualMLP) else net

    def _operators(self, method: str) -> dict[str, Any]:
        ops = self._cache.get(method)
        if ops is not None:
            return ops  # type: ignore[no-any-return]
        shapes = self._shapes()
        sparse_ok = {name: self.source.param_owner(name) for name in shapes}
        sparse_ok = {name: local in type(layer).sparse_params
                     for name, (_, layer, local) in sparse_ok.items()}

        def use_sparse(name: str) -> bool:
            if not sparse_ok[name] or len(shapes[name]) != 2:
                return False
            return method == "sparse" or (
                method == "auto"
                and self._kept[name].size < SPARSE_DENSITY_THRESHOLD * math.prod(shapes[name]))

        # sparse parameters: ~20 bytes per kept entry (data, column index, row split);
        # dense ones: 8 bytes per source entry
        dense_bytes = sum(8 * math.prod(s) for n, s in shapes.items() if not use_sparse(n))
        check_memory(20 * self.n_kept + dense_bytes,
                     what=f"Ticket.forward (method={method!r}): the masked parameters",
                     alternative="use method='sparse' (or 'auto') and fewer inputs per call")
        ops = {}
        for name, shape in shapes.items():
            if use_sparse(name):
                # sorted flat indices are row-major: rows ascend, columns ascend within a row
                kw, vals = self.kept_entries(name)
                rows, cols = np.divmod(kw, shape[1])
                indptr = np.zeros(shape[0] + 1, dtype=np.int64)
                np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
                ops[name] = sp.csr_matrix((vals, cols, indptr), shape=shape)
            else:
                ops[name] = self._masked(name)
        self._cache[method] = ops
        return ops

    def _arch(self) -> Any:
        return self.source.arch

    def forward(
        self, x: ArrayLike, *, method: Literal["auto", "sparse", "dense"] = "auto"
    ) -> np.ndarray:
        """Evaluate the pruned network ``source * mask`` in float64.

        The source network's own forward pass with the masked parameters: no
        other arithmetic. A parameter a layer can take sparse (a Dense weight,
        :attr:`slth.nets.base.Layer.sparse_params`) whose density is below
        :data:`SPARSE_DENSITY_THRESHOLD` is given as a scipy CSR matrix of its
        kept entries, so time and memory scale with what is kept. Equal to
        ``self.network().forward(x)`` up to summation order (relative
        differences around 1e-15; bit for bit for dense parameters). The
        masked parameters are built on the first call and cached.

        Parameters
        ----------
        x : array_like
            Inputs ``(batch, *input_shape)`` or one input; real and finite.
        method : {"auto", "sparse", "dense"}, default "auto"
            ``"auto"`` picks per parameter by density; ``"sparse"``/``"dense"``
            force one representation (for tests and benchmarks).

        Returns
        -------
        numpy.ndarray
            float64 outputs ``(batch, *output_shape)`` or ``output_shape``.

        Raises
        ------
        ShapeError
            ``x`` has the wrong shape.
        InputError
            ``x`` is not real and finite, or ``method`` is unknown.
        """
        if method not in _METHODS:
            raise InputError(f"`method` must be one of {_METHODS}; received {method!r}")
        return self._arch()._forward(x, self._operators(method))  # type: ignore[no-any-return]

    __call__ = forward

    def linearize(self, x: ArrayLike, *, method: Literal["auto", "sparse", "dense"] = "auto"
                  ) -> Linearization:
        """The forward pass recorded for vector-Jacobian products (adversarial search).

        Parameters
        ----------
        x : array_like
            As in :meth:`forward`.
        method : {"auto", "sparse", "dense"}, default "auto"
            As in :meth:`forward`.

        Returns
        -------
        slth.nets.base.Linearization
            ``output`` (:meth:`forward`'s) and ``vjp(grad_out)``.
        """
        if method not in _METHODS:
            raise InputError(f"`method` must be one of {_METHODS}; received {method!r}")
        return self._arch()._linearize(x, self._operators(method))

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the ticket to one ``.npz`` file (``numpy.savez_compressed``), format version 3.

        Entries of the archive (nothing is pickled; the file is written at
        ``path`` exactly, no ``.npz`` suffix is appended):

        * ``source.<name>``: the source parameter arrays bit for bit (float64;
          a dense source only);
        * ``kept_i``: the kept entries of the i-th source parameter (order of
          ``source.param_specs()``, recorded as ``parameter_names``), in the
          smaller (before compression) of two encodings, recorded per parameter
          in ``kept_encodings``: ``"delta"``: ``kept_i[0]`` is the first flat
          index and ``kept_i[j]`` the gap ``idx[j] - idx[j - 1]`` (>= 1), in the
          smallest of uint8/uint16/uint32/uint64 that holds the largest gap;
          ``"bits"`` (where one bit per entry is smaller): ``numpy.packbits`` of
          the flat mask;
        * ``errors.<name>``: the error arrays by target parameter name (float64);
        * ``__metadata__``: UTF-8 JSON as a uint8 array: ``format``
          ("slth.Ticket"), ``version`` (3), ``slth_version``, ``construction``,
          ``params``, ``source`` (below), ``parameter_names``,
          ``parameter_shapes``, ``kept_encodings``, ``kept_counts``,
          ``target_widths``, ``layer_map`` (``[[target path, [source paths]],
          ...]``), ``errors`` (names), ``bias_errors_given``,
          ``target_fingerprint``.

        ``source`` is ``{"kind": "dense" or "virtual", "class": "mlp" or
        "network", "architecture": ...}`` (the layers as
        :meth:`slth.nets.base.Network.architecture` describes them: every layer
        type must be registered, a type defined in your own module included),
        and for a virtual source ``"spec"`` (``[[name, shape], ...]``, the
        :class:`slth.sources.VirtualSource`'s), ``"law"``, ``"seed"`` and
        ``"key_names"``: no source array is written or computed, so the file
        costs about one to four bytes per kept entry whatever the source's size
        and reloads to the same entries bit for bit.

        :meth:`load` also reads versions 1 and 2 (MLP sources, slth 0.1).

        Parameters
        ----------
        path : str or os.PathLike
            Destination file; overwritten if it exists.

        Raises
        ------
        InputError
            A layer type of the source that cannot be saved (not registered).
        """
        src = self.source
        _check_savable(src)
        shapes = self._shapes()
        arrays: dict[str, np.ndarray] = {}
        if not self.is_virtual:
            for name, arr in src.params.items():
                arrays[f"source.{name}"] = arr
        encodings = []
        for i, (idx, shape) in enumerate(zip(self._kept.values(), shapes.values(), strict=True)):
            enc, arrays[f"kept_{i}"] = _encode_kept(idx, math.prod(shape))
            encodings.append(enc)
        errs = self._errors
        if errs is not None:
            for name, e in errs.items():
                arrays[f"errors.{name}"] = e
        from . import __version__

        info: dict[str, Any] = {
            "kind": "virtual" if self.is_virtual else "dense",
            "class": "mlp" if _is_mlp(src) else "network",
            "architecture": src.architecture(),
        }
        if self.is_virtual:
            vs = src.source
            info.update({
                "spec": [[name, list(shape)] for name, shape in vs.spec.items()],
                "law": dict(vs.law) if isinstance(vs.law, Mapping) else vs.law,
                "seed": int(vs.seed),
                "key_names": dict(src.key_names),
            })
        lm = self._layer_map
        meta: dict[str, Any] = {
            "format": _FORMAT_NAME,
            "version": FORMAT_VERSION,
            "slth_version": __version__,
            "construction": self.construction,
            "params": self.params.to_dict(),
            "source": info,
            "parameter_names": list(self._kept),
            "parameter_shapes": [list(s) for s in shapes.values()],
            "kept_encodings": encodings,
            "kept_counts": [int(k.size) for k in self._kept.values()],
            "target_widths": None if self.target_widths is None else list(self.target_widths),
            "layer_map": None if lm is None else [[k, list(g)] for k, g in lm.items()],
            "errors": None if errs is None else list(errs),
            "bias_errors_given": bool(self._bias_given),
            "target_fingerprint": self.target_fingerprint,
        }
        text = json.dumps(meta, allow_nan=True)
        arrays[_META_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
        with open(os.fspath(path), "wb") as fh:
            np.savez_compressed(fh, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Ticket:
        """Read a ticket written by :meth:`save` (format version 3) or by slth 0.1 (1 and 2).

        Uses ``numpy.load(..., allow_pickle=False)``; every field round-trips
        exactly (arrays bit for bit, kept indices, ``params``, ``layer_map``,
        error arrays, ``target_fingerprint``). A source's layer types must be
        registered in this process (import the module that defines them).
        Version 1 and 2 files (MLP sources, slth 0.1's parameter names) load as
        the same tickets under the network names.

        Parameters
        ----------
        path : str or os.PathLike
            A file written by :meth:`save`.

        Returns
        -------
        Ticket

        Raises
        ------
        InputError
            The file is not an slth ticket file, is of an unknown format version
            (the one-line message says how to rebuild the ticket) or holds
            inconsistent entries.
        """
        fname = os.fspath(path)
        if not os.path.isfile(fname):
            raise InputError(f"`path` must name an existing ticket file; {fname!r} does not exist")
        try:
            return cls._read(fname)
        except SLTHError as exc:
            text = " ".join(str(exc).split())
            if text.startswith("`path`"):
                raise InputError(text) from None
            raise InputError(f"`path` {fname!r}: {text}") from None
        except (OSError, ValueError, KeyError, TypeError, IndexError, EOFError,
                zipfile.BadZipFile) as exc:
            # numpy's own messages (e.g. its advice to pass allow_pickle=True, which a
            # ticket never needs) would mislead: say what the file is not
            kind = type(exc).__name__
            raise InputError(
                f"`path` must name a ticket .npz file written by Ticket.save; {fname!r} is not "
                f"one (unreadable as a pickle-free .npz archive: {kind})"
            ) from None

    @classmethod
    def _read(cls, fname: str) -> Ticket:
        with np.load(fname, allow_pickle=False) as f:
            if _META_KEY not in f.files:
                raise InputError(
                    f"`path` must name a ticket .npz file written by Ticket.save; {fname!r} "
                    f"has no {_META_KEY!r} entry"
                )
            try:
                meta = json.loads(bytes(f[_META_KEY]).decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise InputError(f"`path` {fname!r}: unreadable ticket metadata: {exc}") from exc
            if not isinstance(meta, dict) or meta.get("format") != _FORMAT_NAME:
                fmt = meta.get("format") if isinstance(meta, dict) else None
                raise InputError(
                    f"`path` must name a {_FORMAT_NAME} file of format version "
                    f"{' or '.join(map(str, READABLE_VERSIONS))}; {fname!r} has format {fmt!r}"
                )
            version = meta.get("version")
            if version not in READABLE_VERSIONS:
                from . import __version__

                raise InputError(
                    f"`path` {fname!r} is a {_FORMAT_NAME} file of format version {version!r}, "
                    f"which slth {__version__} cannot read (it reads versions "
                    f"{', '.join(map(str, READABLE_VERSIONS))}): rebuild the ticket by running "
                    f"its construction {meta.get('construction', '?')!r} again with the params "
                    f"recorded in the file, or load it with the slth that wrote it "
                    f"({meta.get('slth_version', 'unknown')}) and save it from there"
                )

            def get(key: str) -> np.ndarray:
                if key not in f.files:
                    raise InputError(f"`path` {fname!r}: ticket file lacks the entry {key!r}")
                return f[key]

            if version == 3:
                source = cls._read_source(meta, get, fname)
            else:
                source = cls._read_source_v12(meta, get, fname, version)
            masks: list[np.ndarray] | None = None
            kept: dict[str, np.ndarray] | None = None
            if version == 1:
                masks = []
                for i, shape in enumerate(meta["mask_shapes"]):
                    n = math.prod(shape)
                    bits = np.unpackbits(get(f"masks_{i}"), count=n).astype(np.bool_)
                    masks.append(bits.reshape(shape))
            else:
                kept = {}
                for i, (name, count, enc, shape) in enumerate(zip(
                        meta["parameter_names"], meta["kept_counts"], meta["kept_encodings"],
                        meta["parameter_shapes"], strict=True)):
                    raw = get(f"kept_{i}")
                    if enc == "delta":
                        idx = _delta_decode(raw, fname, f"kept_{i}")
                    elif enc == "bits" and raw.dtype == np.uint8 and raw.ndim == 1:
                        n = math.prod(shape)
                        idx = np.flatnonzero(np.unpackbits(raw, count=n)).astype(np.int64)
                    else:
                        raise InputError(
                            f"`path` {fname!r}: entry 'kept_{i}' has encoding {enc!r} and "
                            f"{format_value(raw)}; this slth reads 'delta' (unsigned gaps) and "
                            "'bits' (uint8 packbits)"
                        )
                    if idx.size != count:
                        raise InputError(
                            f"`path` {fname!r}: entry 'kept_{i}' holds {idx.size} kept "
                            f"entries of {name}; the metadata records {count}"
                        )
                    kept[_canonical(source, name)] = idx
            fields: dict[str, Any] = {
                "construction": meta["construction"],
                "params": meta["params"],
                "target_widths": (None if meta["target_widths"] is None
                                  else tuple(meta["target_widths"])),
                "target_fingerprint": meta.get("target_fingerprint"),
                "weight_errors": None,
                "bias_errors": None,
                "errors": None,
            }
            lm = meta["layer_map"]
            if version == 3:
                fields["layer_map"] = None if lm is None else {k: tuple(g) for k, g in lm}
                if meta["errors"] is not None:
                    fields["errors"] = {n: get(f"errors.{n}") for n in meta["errors"]}
            else:
                fields["layer_map"] = None if lm is None else tuple(tuple(g) for g in lm)
                if meta["n_weight_errors"] is not None:
                    fields["weight_errors"] = tuple(
                        get(f"weight_errors_{l}") for l in range(meta["n_weight_errors"]))
                if meta["bias_errors"] is not None:
                    fields["bias_errors"] = tuple(
                        get(f"bias_errors_{l}") if has else None
                        for l, has in enumerate(meta["bias_errors"]))
        if masks is not None:
            return cls(source, tuple(masks), **fields)
        assert kept is not None
        shapes = source_parameter_shapes(source)
        recorded = [_canonical(source, n) for n in meta.get("parameter_names", [])]
        if [list(s) for s in shapes.values()] != meta.get("parameter_shapes") \
                or list(shapes) != recorded:
            raise InputError(
                f"`path` {fname!r}: the source's parameters differ from the recorded "
                f"parameter_names {meta.get('parameter_names')} and parameter_shapes "
                f"{meta.get('parameter_shapes')}"
            )
        try:
            t = cls._from_kept(source, kept, copy=False, **fields)
        except SLTHError as exc:
            raise InputError(f"`path` {fname!r}: inconsistent ticket file: {exc}") from None
        if version == 3 and fields["errors"] is not None:
            object.__setattr__(t, "_bias_given", bool(meta.get("bias_errors_given")))
        return t

    @staticmethod
    def _read_source(meta: dict[str, Any], get: Any, fname: str) -> Any:
        """The source of a version-3 file: a dense or virtual network (MLP class restored)."""
        info = meta.get("source")
        where = f"`path` {fname!r}"
        if not isinstance(info, dict) or info.get("kind") not in ("dense", "virtual"):
            raise InputError(f"{where}: the metadata's source must be {{'kind': 'dense' or "
                             f"'virtual', ...}}; received {format_value(info)}")
        arch = Architecture.from_description(info.get("architecture"), where)
        is_mlp = info.get("class") == "mlp"
        if info["kind"] == "dense":
            params = {name: get(f"source.{name}") for name in arch.param_specs()}
            net = Network(arch.layers, params, arch.input_shape)
            return mlp_from_network(net) if is_mlp else net
        spec = _virtual_spec(info) if isinstance(info.get("key_names"), dict) else None
        if spec is None:
            raise InputError(
                f"{where}: a virtual-source ticket file must record its source's 'spec' "
                "[[name, shape], ...], 'law' (str), 'seed' (int) and 'key_names'; received "
                f"{format_value(info)}"
            )
        vs = VirtualSource(spec, info["law"], info["seed"])
        if is_mlp:
            names = info["key_names"]
            plain = isinstance(names, dict) and all(k == v for k, v in names.items())
            vmlp = VirtualMLP(vs) if plain or not isinstance(names, dict) else \
                VirtualMLP(vs, key_names=names)
            if vmlp.arch != arch or dict(vmlp.key_names) != info["key_names"]:
                raise InputError(f"{where}: the virtual MLP's layers or key names differ from "
                                 "the recorded architecture")
            return vmlp
        return VirtualNetwork(arch, vs, info["key_names"])

    @staticmethod
    def _read_source_v12(meta: dict[str, Any], get: Any, fname: str, version: int) -> Any:
        """The MLP source of a version-1 or -2 file (slth 0.1)."""
        depth = len(meta["source_widths"]) - 1
        kind = meta.get("source", {"kind": "dense"})
        kind = kind.get("kind") if isinstance(kind, dict) else kind
        if version == 2 and kind == "virtual":
            return Ticket._read_virtual_source(meta, fname)
        if kind != "dense":
            raise InputError(
                f"`path` {fname!r}: the metadata's source kind must be 'dense' or "
                f"'virtual'; received {format_value(kind)}"
            )
        weights = [get(f"weights_{l}") for l in range(depth)]
        biases = [get(f"biases_{l}") if has else None
                  for l, has in enumerate(meta["source_biases"])]
        return MLP(tuple(weights), tuple(biases))

    @staticmethod
    def _read_virtual_source(meta: dict[str, Any], fname: str) -> VirtualMLP:
        """The :class:`VirtualMLP` recorded in a version-2 virtual-source file's metadata."""
        info = meta.get("source")
        spec = _virtual_spec(info)
        if spec is None:
            raise InputError(
                f"`path` {fname!r}: a virtual-source ticket file must record its source as "
                "{'kind': 'virtual', 'spec': [[name, shape], ...], 'law': str, 'seed': int}; "
                f"received {format_value(info)}"
            )
        try:
            vmlp = VirtualMLP(VirtualSource(spec, info["law"], info["seed"]))
        except SLTHError as exc:
            raise InputError(f"`path` {fname!r}: invalid virtual source: {exc}") from None
        if list(vmlp.widths) != meta["source_widths"] or list(vmlp.bias_layers) != meta[
                "source_biases"]:
            raise InputError(
                f"`path` {fname!r}: the virtual source's widths {vmlp.widths} and biases "
                f"{vmlp.bias_layers} differ from the recorded source_widths "
                f"{meta['source_widths']} and source_biases {meta['source_biases']}"
            )
        return vmlp

    # ------------------------------------------------------------------ display
    def summary(self) -> str:
        """A human-readable one-paragraph description of the ticket.

        Returns
        -------
        str
        """
        src = self.source
        shape = (f"with widths {src.widths}{' and biases' if src.has_biases else ''}"
                 if _is_mlp(src) else f"of {len(src.named_layers())} layers")
        parts = [
            f"Ticket from construction {self.construction!r}: keeps {self.n_kept:,} of "
            f"{self.n_source_params:,} source parameters (density {self.density:.4g}, "
            f"sparsity {1 - self.density:.4g}) of a {self._source_words()} {shape}."
        ]
        dens = ", ".join(f"{d:.3g}" for d in self.layer_density())
        parts.append(f"Density per source layer: {dens}.")
        if self.target_widths is not None:
            parts.append(f"Target widths: {self.target_widths}.")
        lm = self.mlp_layer_map or (None if self._layer_map is None else dict(self._layer_map))
        if lm is not None:
            parts.append(f"Target layer -> source layers: {lm}.")
        errs = self._errors
        if errs:
            w = [float(e.max()) for k, e in errs.items() if not k.endswith(".bias") and e.size]
            b = [float(e.max()) for k, e in errs.items() if k.endswith(".bias") and e.size]
            if w:
                parts.append(f"Largest per-weight error bound: {max(w):.3g}.")
            if b:
                parts.append(f"Largest per-bias error bound: {max(b):.3g}.")
        if self.params:
            items = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
            parts.append(f"Parameters: {items}.")
        return " ".join(parts)

    def _source_words(self) -> str:
        kind = "MLP" if _is_mlp(self.source) else "network"
        if self.is_virtual:
            vs = self.source.source
            return f"virtual source {kind} (law {vs.law!r}, seed {vs.seed}, entries on demand)"
        return f"source {kind}"

    def __repr__(self) -> str:
        return (
            f"Ticket(construction={self.construction!r}, source={self.source!r}, "
            f"n_kept={self.n_kept}, density={self.density:.4g})"
        )
