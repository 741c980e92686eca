"""Strong lottery tickets: a fixed random source network and the entries kept from it.

A ticket stores, per source parameter name, the sorted flat indices of the
entries it keeps (:attr:`Ticket.kept`); dense boolean masks are derived on
demand (:attr:`Ticket.masks`).

A :class:`Ticket` never changes a weight. The pruned network is ``source * mask``
(:meth:`Ticket.network`); :meth:`Ticket.forward` evaluates exactly that network
but stores only the kept weights of sparse layers (scipy CSR), so its cost is
proportional to the number of kept weights rather than to the source's size.

The source is a dense :class:`slth.nets.MLP` or a :class:`slth.sources.VirtualMLP`
(entries computed on demand from a counter-based generator: a source of 10^9
weights costs nothing until read). Everything a ticket computes reads the kept
values through :meth:`Ticket.kept_entries`, so a virtual-source ticket costs memory
in proportion to what it keeps; :attr:`Ticket.masks` and :meth:`Ticket.network`
are dense and memory-guarded.

Tickets are saved to one ``.npz`` file holding the source arrays bit for bit (or,
for a virtual source, its spec, law and seed), the kept indices
delta-encoded (format version 2; version-1 files, with bit-packed masks, still
load) and a JSON metadata entry; loading never unpickles.
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
from .nets.mlp import MLP, check_input
from .sources import VirtualMLP, VirtualSource

__all__ = [
    "FORMAT_VERSION",
    "READABLE_VERSIONS",
    "SPARSE_DENSITY_THRESHOLD",
    "FrozenParams",
    "SourceMLP",
    "Ticket",
    "source_bias_layers",
    "source_parameter_shapes",
]

#: Layers whose weight density is below this are evaluated as scipy CSR matrices
#: by :meth:`Ticket.forward` (``method="auto"``); denser layers as dense matrices.
SPARSE_DENSITY_THRESHOLD: float = 0.3

#: Version of the ``.npz`` layout written by :meth:`Ticket.save` for a ticket over a
#: dense source (2: kept indices, delta-encoded; 1: bit-packed masks).
FORMAT_VERSION: int = 2
#: Format versions :meth:`Ticket.load` reads. A ticket over a
#: :class:`slth.sources.VirtualMLP` is a version-2 file whose metadata ``source``
#: records the virtual source (spec, law, seed) in place of the source arrays.
READABLE_VERSIONS: tuple[int, ...] = (1, 2)

#: What a ticket's source may be: a dense :class:`slth.nets.MLP` or a
#: :class:`slth.sources.VirtualMLP` (entries computed on demand).
SourceMLP = MLP | VirtualMLP

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


def _check_source(source: Any, *, virtual: bool = False) -> Any:
    if isinstance(source, MLP) or (virtual and isinstance(source, VirtualMLP)):
        return source
    kinds = "a slth.nets.MLP or a slth.sources.VirtualMLP" if virtual else "a slth.nets.MLP"
    hint = "" if virtual else " (a VirtualMLP source: use Ticket.from_kept)"
    raise InputError(
        f"`source` must be {kinds}{hint}; received {format_value(source)} of type "
        f"{type(source).__name__}"
    )


def source_parameter_shapes(source: SourceMLP) -> dict[str, tuple[int, ...]]:
    """Shape of every parameter of a ticket source, keyed by ``source.parameter_names()``.

    Works for a dense :class:`slth.nets.MLP` and for a :class:`slth.sources.VirtualMLP`
    (no entry is read).
    """
    if isinstance(source, VirtualMLP):
        return dict(zip(source.parameter_names(), source.parameter_shapes(), strict=True))
    return {n: tuple(p.shape)
            for n, p in zip(source.parameter_names(), source.parameters(), strict=True)}


def source_bias_layers(source: SourceMLP) -> tuple[bool, ...]:
    """Per source layer, whether it has a bias (``MLP.biases[l] is not None``)."""
    if isinstance(source, VirtualMLP):
        return source.bias_layers
    return tuple(b is not None for b in source.biases)


def _kept_from_masks(source: MLP, masks: Any) -> dict[str, np.ndarray]:
    """Validate one bool mask per source parameter; return its sorted flat kept indices."""
    params = source.parameters()
    names = source.parameter_names()
    if isinstance(masks, np.ndarray) or not isinstance(masks, Sequence):
        raise InputError(
            f"`masks` must be a sequence of {len(params)} bool arrays; received "
            f"{format_value(masks)}"
        )
    if len(masks) != len(params):
        raise ShapeError(
            f"`masks` must hold one bool array per source parameter ({len(params)}: "
            f"{', '.join(names)}); received {len(masks)}"
        )
    kept: dict[str, np.ndarray] = {}
    for i, (m, p, name) in enumerate(zip(masks, params, names, strict=True)):
        arr = m if isinstance(m, np.ndarray) else np.asarray(m)
        if arr.dtype != np.bool_:
            raise InputError(
                f"`masks[{i}]` (for source {name}) must be a bool array; received "
                f"{format_value(arr)}"
            )
        if arr.shape != p.shape:
            raise ShapeError(
                f"`masks[{i}]` must have the shape {p.shape} of source {name}; received "
                f"shape {arr.shape}"
            )
        # np.flatnonzero scans in row-major order: the indices come out sorted and unique
        kept[name] = _readonly(np.flatnonzero(arr).astype(np.int64, copy=False))
    return kept


def _check_kept(source: SourceMLP, kept: Any, *, copy: bool = True) -> dict[str, np.ndarray]:
    """Validate kept flat indices keyed by ``source.parameter_names()``; return int64 arrays."""
    shapes = source_parameter_shapes(source)
    names = tuple(shapes)
    if not isinstance(kept, Mapping):
        raise InputError(
            f"`kept` must be a mapping from source parameter names ({', '.join(names)}) to "
            f"sorted flat indices; received {format_value(kept)} of type {type(kept).__name__}"
        )
    unknown = [k for k in kept if k not in names]
    if unknown:
        raise InputError(
            f"`kept` keys must be source parameter names ({', '.join(names)}); received "
            f"unknown {', '.join(repr(k) for k in unknown)}"
        )
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
    :meth:`mask`) are derived on demand.

    Parameters
    ----------
    source : MLP
        The random network, untouched. (A ticket over a
        :class:`slth.sources.VirtualMLP`, whose entries are computed on demand,
        is built with :meth:`from_kept`: dense masks of a virtual source are
        what it exists to avoid.)
    masks : sequence of bool array_like
        One boolean array per entry of ``source.parameters()`` (same order,
        same shapes: ``W_0, b_0, W_1, b_1, ...``, None biases skipped). True
        keeps the weight. Converted once to kept indices and not retained
        (:attr:`masks` re-derives them). To build a ticket without dense masks
        use :meth:`from_kept`.
    construction : str, default "manual"
        Name of the construction that made the ticket, e.g. ``"pensia2020"``.
    params : mapping, default {}
        Construction parameters (eps, delta, n, seed, ...). Must be
        JSON-serialisable; normalised to JSON types (tuples become lists) and
        stored read-only as a :class:`FrozenParams`.
    target_widths : sequence of int, optional
        Widths ``(d_0, ..., d_L)`` of the target network the ticket approximates.
        Its first and last entries must equal the source's.
    layer_map : sequence of sequence of int, optional
        For each target layer, the source layer indices that realise it, e.g.
        ``((0, 1), (2, 3))`` for the 2l-layer construction of Pensia et al.
        (2020). Indices valid for the source, each tuple non-empty, all indices
        strictly increasing when read in order. Its length equals the target
        depth when ``target_widths`` is given.
    weight_errors : sequence of array_like, optional
        One float64 ``(d_out, d_in)`` array per target layer: the construction's
        bound on ``|realised effective weight - target weight|`` (max over the
        sign parts), read by ``slth.evaluate.certified_bound``. Entries >= 0,
        ``inf`` allowed (a failed subset sum), no NaN.
    bias_errors : sequence of (array_like or None), optional
        Per target layer, a ``(d_out,)`` bound like ``weight_errors`` or None.
    target_fingerprint : str, optional
        :meth:`slth.nets.MLP.fingerprint` of the target the ticket was built
        for (set by every construction). Evaluation against a target with
        another fingerprint raises unless asked not to (``check_target=False``
        in :mod:`slth.evaluate`). None: unknown target, nothing is checked.

    Attributes
    ----------
    source, construction, params, target_widths, layer_map, weight_errors, bias_errors, \
target_fingerprint
        As above, validated and stored immutably (tuples, read-only arrays).
    is_virtual : bool
        True when ``source`` is a :class:`slth.sources.VirtualMLP`. Every kept
        value is then read once with ``source.entries`` (:meth:`kept_entries`)
        and cached; :attr:`masks`, :meth:`mask` and :meth:`network` are dense
        and refuse past the memory budget (:class:`slth.errors.LimitError`).
    kept : Mapping[str, numpy.ndarray]
        Read-only: per name of ``source.parameter_names()`` (``"weights[0]"``,
        ``"biases[0]"``, ...), the sorted, unique int64 flat indices of the kept
        entries (read-only arrays).
    masks : tuple of numpy.ndarray
        Read-only bool arrays aligned with ``source.parameters()``, derived from
        :attr:`kept` on first access and cached (see :attr:`masks`).

    Raises
    ------
    ShapeError
        Wrong number of masks, a mask or error array of the wrong shape,
        target widths whose ends differ from the source's.
    InputError
        Masks that are not ``bool``, an invalid ``layer_map`` index, error bounds
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

    source: SourceMLP
    construction: str
    params: FrozenParams
    target_widths: tuple[int, ...] | None
    layer_map: tuple[tuple[int, ...], ...] | None
    weight_errors: tuple[np.ndarray, ...] | None
    bias_errors: tuple[np.ndarray | None, ...] | None
    target_fingerprint: str | None

    def __init__(
        self,
        source: MLP,
        masks: Sequence[ArrayLike],
        construction: str = "manual",
        params: Mapping[str, Any] | None = None,
        target_widths: Sequence[int] | None = None,
        layer_map: Sequence[Sequence[int]] | None = None,
        weight_errors: Sequence[ArrayLike] | None = None,
        bias_errors: Sequence[ArrayLike | None] | None = None,
        target_fingerprint: str | None = None,
    ) -> None:
        source = _check_source(source)
        kept = _kept_from_masks(source, masks)
        self._init(source, kept, construction, params, target_widths, layer_map,
                   weight_errors, bias_errors, target_fingerprint)

    @classmethod
    def from_kept(
        cls,
        source: SourceMLP,
        kept: Mapping[str, ArrayLike],
        *,
        construction: str = "manual",
        params: Mapping[str, Any] | None = None,
        target_widths: Sequence[int] | None = None,
        layer_map: Sequence[Sequence[int]] | None = None,
        weight_errors: Sequence[ArrayLike] | None = None,
        bias_errors: Sequence[ArrayLike | None] | None = None,
        target_fingerprint: str | None = None,
    ) -> Ticket:
        """A ticket from its kept entries, without dense masks.

        Parameters
        ----------
        source : MLP or VirtualMLP
            The random network, untouched. A :class:`slth.sources.VirtualMLP`
            (entries computed on demand) makes the ticket cost memory in
            proportion to what it keeps, whatever the source's size: only the
            kept entries are ever read (:meth:`kept_entries`).
        kept : mapping of str to integer array_like
            One entry per name of ``source.parameter_names()`` (``"weights[0]"``,
            ``"biases[0]"``, ...; an empty array keeps nothing): the flat
            row-major indices of the kept entries of that parameter, strictly
            increasing (sorted, no repeats), in ``[0, size)``. Any integer dtype;
            copied to read-only int64.
        construction, params, target_widths, layer_map, weight_errors, bias_errors, \
target_fingerprint
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
                              target_fingerprint=target_fingerprint)

    @classmethod
    def _from_kept(cls, source: SourceMLP, kept: Mapping[str, ArrayLike], *, copy: bool,
                   **meta: Any) -> Ticket:
        source = _check_source(source, virtual=True)
        checked = _check_kept(source, kept, copy=copy)
        self = cls.__new__(cls)
        self._init(source, checked, meta["construction"], meta["params"], meta["target_widths"],
                   meta["layer_map"], meta["weight_errors"], meta["bias_errors"],
                   meta["target_fingerprint"])
        return self

    def _init(self, source: SourceMLP, kept: dict[str, np.ndarray], construction: Any, params: Any,
              tw: Any, lm: Any, we: Any, be: Any, fp: Any) -> None:
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
            sw = source.widths
            if tw[0] != sw[0] or tw[-1] != sw[-1]:
                raise ShapeError(
                    f"`target_widths` must start with the source input width {sw[0]} and end "
                    f"with its output width {sw[-1]}; received {tw}"
                )
        set_(self, "target_widths", tw)
        n_target = None if tw is None else len(tw) - 1

        if lm is not None:
            if isinstance(lm, (str, bytes)) or not isinstance(lm, Sequence):
                raise InputError(
                    f"`layer_map` must be a sequence of sequences of source layer indices; "
                    f"received {format_value(lm)}"
                )
            out = []
            last = -1
            for l, group in enumerate(lm):
                g = _check_int_tuple(group, f"layer_map[{l}]", min_len=1, min_value=0)
                for s in g:
                    if s >= source.depth:
                        raise InputError(
                            f"`layer_map[{l}]` must hold source layer indices in "
                            f"[0, {source.depth - 1}]; received {g}"
                        )
                    if s <= last:
                        raise InputError(
                            f"`layer_map` indices must be strictly increasing in order; "
                            f"`layer_map[{l}]` = {g} follows index {last}"
                        )
                    last = s
                out.append(g)
            if n_target is not None and len(out) != n_target:
                raise ShapeError(
                    f"`layer_map` must have one entry per target layer ({n_target}, from "
                    f"`target_widths` {tw}); received {len(out)}"
                )
            lm = tuple(out)
            if n_target is None:
                n_target = len(out)
        set_(self, "layer_map", lm)

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
            arrs = []
            for l, e in enumerate(we):
                a = _check_error_array(e, f"weight_errors[{l}]", 2)
                if tw is not None and a.shape != (tw[l + 1], tw[l]):
                    raise ShapeError(
                        f"`weight_errors[{l}]` must have shape {(tw[l + 1], tw[l])} (target "
                        f"layer {l}); received shape {a.shape}"
                    )
                arrs.append(a)
            we = tuple(arrs)
            if n_target is None:
                n_target = len(arrs)
        set_(self, "weight_errors", we)

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
            barrs: list[np.ndarray | None] = []
            for l, e in enumerate(be):
                if e is None:
                    barrs.append(None)
                    continue
                a = _check_error_array(e, f"bias_errors[{l}]", 1)
                d_out = tw[l + 1] if tw is not None else None
                if d_out is None and we is not None:
                    d_out = we[l].shape[0]
                if d_out is not None and a.shape != (d_out,):
                    raise ShapeError(
                        f"`bias_errors[{l}]` must have shape ({d_out},); received shape "
                        f"{a.shape}"
                    )
                barrs.append(a)
            be = tuple(barrs)
        set_(self, "bias_errors", be)

        if fp is not None and (not isinstance(fp, str) or not fp.startswith("sha256:")):
            raise InputError(
                "`target_fingerprint` must be None or a str 'sha256:<hex>' as returned by "
                f"MLP.fingerprint(); received {format_value(fp)}"
            )
        set_(self, "target_fingerprint", fp)
        set_(self, "_cache", {})

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Ticket is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Ticket is immutable; cannot delete {name!r}")

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"] = {}  # drop derived masks, cached values and built operators
        if isinstance(self.source, VirtualMLP):
            # a VirtualSource holds read-only mapping views: pickle its spec, law and seed
            vs = self.source.source
            state["source"] = ("slth.VirtualMLP", dict(vs.spec), vs.law, vs.seed)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        src = state.get("source")
        if isinstance(src, tuple) and src and src[0] == "slth.VirtualMLP":
            state = {**state, "source": VirtualMLP(VirtualSource(*src[1:]))}
        for k, v in state.items():
            object.__setattr__(self, k, v)

    # ------------------------------------------------------------------ kept entries
    @property
    def kept(self) -> Mapping[str, np.ndarray]:
        """Kept entries: per source parameter name, sorted unique int64 flat indices.

        Keys are ``source.parameter_names()`` in order (``"weights[0]"``,
        ``"biases[0]"``, ...); flat indices are row-major (``numpy.ravel``
        order). A read-only mapping of read-only arrays.
        """
        return MappingProxyType(self._kept)

    def kept_entries(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The kept flat indices of one source parameter and the source's values there.

        Parameters
        ----------
        name : str
            A name of ``source.parameter_names()``, e.g. ``"weights[0]"``.

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
        idx = self._kept.get(name) if isinstance(name, str) else None
        if idx is None:
            raise InputError(
                f"`name` must be a source parameter name ({', '.join(self._kept)}); received "
                f"{format_value(name)}"
            )
        src = self.source
        if isinstance(src, VirtualMLP):
            cache = self._cache.setdefault("values", {})
            vals = cache.get(name)
            if vals is None:
                vals = cache[name] = _readonly(np.asarray(src.entries(name, idx),
                                                          dtype=np.float64))
            return idx, vals
        p = src.parameters()[src.parameter_names().index(name)]
        return idx, _flat(p)[idx]

    @property
    def is_virtual(self) -> bool:
        """True when the source is a :class:`slth.sources.VirtualMLP` (entries on demand)."""
        return isinstance(self.source, VirtualMLP)

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
            A name of ``source.parameter_names()``.

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
        idx = self._kept.get(name) if isinstance(name, str) else None
        if idx is None:
            raise InputError(
                f"`name` must be a source parameter name ({', '.join(self._kept)}); received "
                f"{format_value(name)}"
            )
        shape = self._shapes()[name]
        size = math.prod(shape)
        check_memory(size, what=f"Ticket.mask({name!r}): a dense bool mask of {size:,} "
                                "entries", alternative="read Ticket.kept or Ticket.kept_entries")
        m = np.zeros(shape, dtype=np.bool_)
        _flat(m)[idx] = True
        return m

    @property
    def masks(self) -> tuple[np.ndarray, ...]:
        """Dense read-only bool masks aligned with ``source.parameters()``.

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
        """Number of source entries (weights and non-None biases)."""
        return self.source.n_params

    @property
    def density(self) -> float:
        """Fraction of source entries kept: ``n_kept / n_source_params``; sparsity = 1 - density."""
        return self.n_kept / self.n_source_params

    def layer_density(self) -> tuple[float, ...]:
        """Density of each source layer (its weights and its bias together).

        Returns
        -------
        tuple of float
            One value per source layer, in [0, 1].
        """
        kept = [0] * self.source.depth
        total = [0] * self.source.depth
        for layer, idx, shape in zip(
            self.source.parameter_layers(),
            self._kept.values(),
            self._shapes().values(),
            strict=True,
        ):
            kept[layer] += int(idx.size)
            total[layer] += math.prod(shape)
        return tuple(k / t for k, t in zip(kept, total, strict=True))

    def kept_values(self) -> tuple[np.ndarray, ...]:
        """The source values the ticket keeps, ``source_param[mask]`` per array.

        Returns
        -------
        tuple of numpy.ndarray
            1-D float64 arrays aligned with ``source.parameters()`` (row-major
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

    def network(self) -> MLP:
        """The pruned network as a dense :class:`MLP`: every source parameter times its mask.

        Pruned entries are ``+0.0``; kept entries are the source's values.

        Returns
        -------
        MLP
            A new network of the source's architecture (dense storage: memory
            of the full source, also for a virtual source, whose kept entries
            are scattered into zeros; no other entry is computed).

        Raises
        ------
        LimitError
            The dense network would exceed the memory budget.
        """
        # a dense copy of every source array (float64), plus one temporary of the largest
        sizes = [math.prod(s) for s in self._shapes().values()]
        check_memory(8 * sum(sizes) + 8 * max(sizes),
                     what=f"Ticket.network: a dense float64 copy of the source "
                          f"({sum(sizes):,} entries)",
                     alternative="use Ticket.forward, which stores only the kept weights")
        params = {name: self._masked(name) for name in self._kept}
        if isinstance(self.source, MLP):
            return self.source.with_params(list(params.values()))
        bl = source_bias_layers(self.source)
        return MLP(tuple(params[f"weights[{l}]"] for l in range(len(bl))),
                   tuple(params[f"biases[{l}]"] if has else None for l, has in enumerate(bl)))

    def _operators(self, method: str) -> list[tuple[Any, np.ndarray | None]]:
        ops = self._cache.get(method)
        if ops is not None:
            return ops
        # sparse layers: ~20 bytes per kept weight (data, column index, row split);
        # dense layers (method="dense" or dense enough): 8 bytes per source weight
        dense_bytes = 8 * self.source.n_params if method == "dense" else 0
        check_memory(20 * self.n_kept + dense_bytes,
                     what=f"Ticket.forward (method={method!r}): the layer operators",
                     alternative="use method='sparse' (or 'auto') and fewer inputs per call")
        ops = []
        shapes = self._shapes()
        for l, has_bias in enumerate(source_bias_layers(self.source)):
            wname = f"weights[{l}]"
            shape = shapes[wname]
            kw = self._kept[wname]
            bias = None
            if has_bias and self._kept[f"biases[{l}]"].size:
                bias = self._masked(f"biases[{l}]")
            use_sparse = (
                method == "sparse"
                or (method == "auto" and kw.size < SPARSE_DENSITY_THRESHOLD * math.prod(shape))
            )
            if use_sparse:
                # sorted flat indices are row-major: rows ascend, columns ascend within a row
                _, vals = self.kept_entries(wname)
                rows, cols = np.divmod(kw, shape[1])
                indptr = np.zeros(shape[0] + 1, dtype=np.int64)
                np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
                op: Any = sp.csr_matrix((vals, cols, indptr), shape=shape)
            else:
                op = self._masked(wname)
            ops.append((op, bias))
        self._cache[method] = ops
        return ops

    def forward(
        self, x: ArrayLike, *, method: Literal["auto", "sparse", "dense"] = "auto"
    ) -> np.ndarray:
        """Evaluate the pruned network ``source * mask`` in float64.

        Equal to ``self.network().forward(x)`` up to summation order (relative
        differences around 1e-15), but a layer whose weight density is below
        :data:`SPARSE_DENSITY_THRESHOLD` is stored as a scipy CSR matrix of its
        kept weights, so time and memory scale with the kept weights. The
        per-layer operators are built on the first call and cached on the ticket.

        Parameters
        ----------
        x : array_like
            Inputs ``(batch, d_0)`` or one input ``(d_0,)``; real and finite.
        method : {"auto", "sparse", "dense"}, default "auto"
            ``"auto"`` picks per layer by density; ``"sparse"``/``"dense"`` force
            one representation for every layer (for tests and benchmarks).

        Returns
        -------
        numpy.ndarray
            ``(batch, d_L)`` or ``(d_L,)`` float64 outputs.

        Raises
        ------
        ShapeError
            ``x`` has the wrong shape.
        InputError
            ``x`` is not real and finite, or ``method`` is unknown.
        """
        if method not in _METHODS:
            raise InputError(f"`method` must be one of {_METHODS}; received {method!r}")
        arr, single = check_input(x, self.source.widths[0])
        ops = self._operators(method)
        # Activations h have shape (width, batch). CSR layers want them C-ordered
        # (scipy's csr_matvecs); dense layers run as (h.T @ W.T).T, the same BLAS call
        # as MLP.forward, and leave them F-ordered. Copy only at CSR layers.
        h = arr.T
        last = len(ops) - 1
        for l, (op, bias) in enumerate(ops):
            if isinstance(op, np.ndarray):
                h = (h.T @ op.T).T
            else:
                h = np.asarray(op @ np.ascontiguousarray(h))
            if bias is not None:
                h += bias[:, None]
            if l < last:
                np.maximum(h, 0.0, out=h)
        out = h.T
        return np.ascontiguousarray(out[0] if single else out)

    __call__ = forward

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the ticket to one ``.npz`` file (``numpy.savez_compressed``), format version 2.

        Entries of the archive (nothing is pickled; the file is written at
        ``path`` exactly, no ``.npz`` suffix is appended):

        * ``weights_l``, ``biases_l``: the source arrays bit for bit (float64;
          ``biases_l`` absent for a None bias);
        * ``kept_i``: the kept entries of the i-th source parameter (order of
          ``source.parameter_names()``, recorded in the metadata as
          ``parameter_names``), in the smaller (before compression) of two
          encodings, recorded per parameter in ``kept_encodings``:
          ``"delta"``: ``kept_i[0]`` is the first flat index and ``kept_i[j]`` the
          gap ``idx[j] - idx[j - 1]`` (>= 1), stored in the smallest of
          uint8/uint16/uint32/uint64 that holds the largest gap (the indices are
          ``numpy.cumsum(kept_i, dtype=int64)``); ``"bits"`` (a dense kept set,
          where one bit per entry is smaller): ``numpy.packbits`` of the flat
          mask, as in version 1;
        * ``weight_errors_l``, ``bias_errors_l``: the error arrays (float64);
        * ``__metadata__``: UTF-8 JSON as a uint8 array: ``format``
          ("slth.Ticket"), ``version`` (2), ``slth_version``, ``construction``,
          ``params``, ``source_widths``, ``source_biases``, ``parameter_names``,
          ``parameter_shapes``, ``kept_encodings``, ``kept_counts``,
          ``target_widths``, ``layer_map``, ``n_weight_errors``, ``bias_errors``
          (which layers have one), ``target_fingerprint``.

        The metadata's ``source`` says what the source is: ``{"kind": "dense"}``
        (the arrays above; a file without ``source`` is dense too) or, for a
        ticket over a :class:`slth.sources.VirtualMLP`, the same entries and
        metadata without ``weights_l``/``biases_l`` (no source array is
        written or computed) and ``source`` holding
        ``{"kind": "virtual", "spec": [[name, shape], ...], "law": ...,
        "seed": ...}`` (the :class:`slth.sources.VirtualSource`, spec in its
        order). The file costs about one to four bytes per kept entry whatever
        the source's size, and reloads to the same entries bit for bit (they
        are a pure function of spec, law and seed).

        Version 1 (slth 0.1.0 before kept indices) stored ``masks_i`` as
        ``numpy.packbits`` of the flattened masks instead of ``kept_i``; it
        costs one bit per source entry before compression whatever is kept,
        version 2 at most that and about one to four bytes per kept entry for a
        sparse kept set. :meth:`load` reads both.

        Parameters
        ----------
        path : str or os.PathLike
            Destination file; overwritten if it exists.
        """
        src = self.source
        shapes = self._shapes()
        arrays: dict[str, np.ndarray] = {}
        if not self.is_virtual:
            for l, (w, b) in enumerate(zip(src.weights, src.biases, strict=True)):
                arrays[f"weights_{l}"] = w
                if b is not None:
                    arrays[f"biases_{l}"] = b
        encodings = []
        for i, (idx, shape) in enumerate(zip(self._kept.values(), shapes.values(), strict=True)):
            enc, arrays[f"kept_{i}"] = _encode_kept(idx, math.prod(shape))
            encodings.append(enc)
        if self.weight_errors is not None:
            for l, e in enumerate(self.weight_errors):
                arrays[f"weight_errors_{l}"] = e
        if self.bias_errors is not None:
            for l, e in enumerate(self.bias_errors):
                if e is not None:
                    arrays[f"bias_errors_{l}"] = e
        from . import __version__

        meta: dict[str, Any] = {
            "format": _FORMAT_NAME,
            "version": FORMAT_VERSION,
            "slth_version": __version__,
            "construction": self.construction,
            "params": self.params.to_dict(),
            "source_widths": list(src.widths),
            "source_biases": list(source_bias_layers(src)),
            "parameter_names": list(self._kept),
            "parameter_shapes": [list(s) for s in shapes.values()],
            "kept_encodings": encodings,
            "kept_counts": [int(k.size) for k in self._kept.values()],
            "target_widths": None if self.target_widths is None else list(self.target_widths),
            "layer_map": None if self.layer_map is None else [list(g) for g in self.layer_map],
            "n_weight_errors": None if self.weight_errors is None else len(self.weight_errors),
            "bias_errors": (
                None if self.bias_errors is None else [e is not None for e in self.bias_errors]
            ),
            "target_fingerprint": self.target_fingerprint,
        }
        if self.is_virtual:
            vs = src.source
            meta["source"] = {
                "kind": "virtual",
                "spec": [[name, list(shape)] for name, shape in vs.spec.items()],
                "law": vs.law,
                "seed": int(vs.seed),
            }
        else:
            meta["source"] = {"kind": "dense"}
        text = json.dumps(meta, allow_nan=True)
        arrays[_META_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
        with open(os.fspath(path), "wb") as fh:
            np.savez_compressed(fh, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Ticket:
        """Read a ticket written by :meth:`save` (format version 2) or by slth's version 1.

        Uses ``numpy.load(..., allow_pickle=False)``; every field round-trips
        exactly (arrays bit for bit, kept indices, ``params``, None biases,
        ``layer_map``, error arrays, ``target_fingerprint``). A version-1 file
        (packed masks) gives the same ticket as the one that wrote it.

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
        except SLTHError:
            raise
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

            depth = len(meta["source_widths"]) - 1
            source: Any
            kind = meta.get("source", {"kind": "dense"})
            kind = kind.get("kind") if isinstance(kind, dict) else kind
            if version == 2 and kind == "virtual":
                source = cls._read_virtual_source(meta, fname)
            elif kind != "dense":
                raise InputError(
                    f"`path` {fname!r}: the metadata's source kind must be 'dense' or "
                    f"'virtual'; received {format_value(kind)}"
                )
            else:
                weights = [get(f"weights_{l}") for l in range(depth)]
                biases = [
                    get(f"biases_{l}") if has else None
                    for l, has in enumerate(meta["source_biases"])
                ]
                source = MLP(tuple(weights), tuple(biases))
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
                    kept[name] = idx
            weight_errors = None
            if meta["n_weight_errors"] is not None:
                weight_errors = tuple(
                    get(f"weight_errors_{l}") for l in range(meta["n_weight_errors"])
                )
            bias_errors = None
            if meta["bias_errors"] is not None:
                bias_errors = tuple(
                    get(f"bias_errors_{l}") if has else None
                    for l, has in enumerate(meta["bias_errors"])
                )
        lm = meta["layer_map"]
        tw = meta["target_widths"]
        fields: dict[str, Any] = {
            "construction": meta["construction"],
            "params": meta["params"],
            "target_widths": None if tw is None else tuple(tw),
            "layer_map": None if lm is None else tuple(tuple(g) for g in lm),
            "weight_errors": weight_errors,
            "bias_errors": bias_errors,
            "target_fingerprint": meta.get("target_fingerprint"),
        }
        if masks is not None:
            return cls(source, tuple(masks), **fields)
        assert kept is not None
        if [list(s) for s in source_parameter_shapes(source).values()] != meta.get(
                "parameter_shapes") or list(source.parameter_names()) != meta.get(
                "parameter_names"):
            raise InputError(
                f"`path` {fname!r}: the source's parameters differ from the recorded "
                f"parameter_names {meta.get('parameter_names')} and parameter_shapes "
                f"{meta.get('parameter_shapes')}"
            )
        try:
            return cls._from_kept(source, kept, copy=False, **fields)
        except SLTHError as exc:
            raise InputError(f"`path` {fname!r}: inconsistent ticket file: {exc}") from None

    @staticmethod
    def _read_virtual_source(meta: dict[str, Any], fname: str) -> VirtualMLP:
        """The :class:`VirtualMLP` recorded in a virtual-source file's metadata."""
        info = meta.get("source")
        ok = (isinstance(info, dict) and info.get("kind") == "virtual"
              and isinstance(info.get("spec"), list) and isinstance(info.get("law"), str)
              and isinstance(info.get("seed"), int) and not isinstance(info.get("seed"), bool))
        if ok:
            try:
                spec = {str(name): tuple(shape) for name, shape in info["spec"]}
                ok = len(spec) == len(info["spec"])
            except (TypeError, ValueError):
                ok = False
        if not ok:
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
        parts = [
            f"Ticket from construction {self.construction!r}: keeps {self.n_kept:,} of "
            f"{self.n_source_params:,} source parameters (density {self.density:.4g}, "
            f"sparsity {1 - self.density:.4g}) of a "
            f"{self._source_words()} with widths {self.source.widths}"
            f"{' and biases' if self.source.has_biases else ''}."
        ]
        dens = ", ".join(f"{d:.3g}" for d in self.layer_density())
        parts.append(f"Density per source layer: {dens}.")
        if self.target_widths is not None:
            parts.append(f"Target widths: {self.target_widths}.")
        if self.layer_map is not None:
            parts.append(f"Target layer -> source layers: {self.layer_map}.")
        if self.weight_errors is not None:
            worst = max((float(e.max()) for e in self.weight_errors if e.size), default=0.0)
            parts.append(f"Largest per-weight error bound: {worst:.3g}.")
        if self.bias_errors is not None:
            vals = [float(e.max()) for e in self.bias_errors if e is not None and e.size]
            if vals:
                parts.append(f"Largest per-bias error bound: {max(vals):.3g}.")
        if self.params:
            items = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
            parts.append(f"Parameters: {items}.")
        return " ".join(parts)

    def _source_words(self) -> str:
        if self.is_virtual:
            vs = self.source.source
            return f"virtual source MLP (law {vs.law!r}, seed {vs.seed}, entries on demand)"
        return "source MLP"

    def __repr__(self) -> str:
        return (
            f"Ticket(construction={self.construction!r}, source={self.source!r}, "
            f"n_kept={self.n_kept}, density={self.density:.4g})"
        )
