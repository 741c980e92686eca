"""Strong lottery tickets: a fixed random source network and boolean masks over it.

A :class:`Ticket` never changes a weight. The pruned network is ``source * mask``
(:meth:`Ticket.network`); :meth:`Ticket.forward` evaluates exactly that network
but stores only the kept weights of sparse layers (scipy CSR), so its cost is
proportional to the number of kept weights rather than to the source's size.

Tickets are saved to one ``.npz`` file holding the source arrays bit for bit,
the masks bit-packed and a JSON metadata entry; loading never unpickles.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike

from ._memory import check_memory
from .errors import InputError, ShapeError, SLTHError, format_value
from .nets.mlp import MLP, check_input

__all__ = ["FORMAT_VERSION", "SPARSE_DENSITY_THRESHOLD", "FrozenParams", "Ticket"]

#: Layers whose weight density is below this are evaluated as scipy CSR matrices
#: by :meth:`Ticket.forward` (``method="auto"``); denser layers as dense matrices.
SPARSE_DENSITY_THRESHOLD: float = 0.3

#: Version of the ``.npz`` layout written by :meth:`Ticket.save`.
FORMAT_VERSION: int = 1

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


# ---------------------------------------------------------------------- ticket
@dataclass(frozen=True, eq=False, repr=False)
class Ticket:
    """A strong lottery ticket: a fixed random source network and masks over it.

    The pruned network is ``source * mask`` (:meth:`network`): no weight is
    ever changed, rescaled or added.

    Parameters
    ----------
    source : MLP
        The random network, untouched.
    masks : sequence of bool array_like
        One boolean array per entry of ``source.parameters()`` (same order,
        same shapes: ``W_0, b_0, W_1, b_1, ...``, None biases skipped). True
        keeps the weight. Stored as read-only views (not copied when already
        ``bool`` arrays).
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
    source, masks, construction, params, target_widths, layer_map, weight_errors, bias_errors, \
target_fingerprint
        As above, validated and stored immutably (tuples, read-only arrays).

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
    """

    source: MLP
    masks: tuple[np.ndarray, ...]
    construction: str = "manual"
    params: Mapping[str, Any] = field(default_factory=dict)
    target_widths: tuple[int, ...] | None = None
    layer_map: tuple[tuple[int, ...], ...] | None = None
    weight_errors: tuple[np.ndarray, ...] | None = None
    bias_errors: tuple[np.ndarray | None, ...] | None = None
    target_fingerprint: str | None = None
    _cache: dict[str, Any] = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        source = self.source
        if not isinstance(source, MLP):
            raise InputError(
                f"`source` must be a slth.nets.MLP; received {format_value(source)} of type "
                f"{type(source).__name__}"
            )
        params = source.parameters()
        names = source.parameter_names()
        masks = self.masks
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
        checked = []
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
            checked.append(_readonly(arr))
        set_(self, "masks", tuple(checked))

        if not isinstance(self.construction, str):
            raise InputError(
                f"`construction` must be a str; received {format_value(self.construction)}"
            )
        set_(self, "params", FrozenParams(self.params))

        tw = self.target_widths
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

        lm = self.layer_map
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
            set_(self, "layer_map", tuple(out))
            if n_target is None:
                n_target = len(out)

        we = self.weight_errors
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
            set_(self, "weight_errors", tuple(arrs))
            if n_target is None:
                n_target = len(arrs)

        be = self.bias_errors
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
                if d_out is None and self.weight_errors is not None:
                    d_out = self.weight_errors[l].shape[0]
                if d_out is not None and a.shape != (d_out,):
                    raise ShapeError(
                        f"`bias_errors[{l}]` must have shape ({d_out},); received shape "
                        f"{a.shape}"
                    )
                barrs.append(a)
            set_(self, "bias_errors", tuple(barrs))

        fp = self.target_fingerprint
        if fp is not None and (not isinstance(fp, str) or not fp.startswith("sha256:")):
            raise InputError(
                "`target_fingerprint` must be None or a str 'sha256:<hex>' as returned by "
                f"MLP.fingerprint(); received {format_value(fp)}"
            )

        set_(self, "_cache", {"counts": tuple(int(np.count_nonzero(m)) for m in self.masks)})

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"] = {"counts": self._cache["counts"]}  # drop built operators
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            object.__setattr__(self, k, v)

    # ------------------------------------------------------------------ counts
    @property
    def n_kept(self) -> int:
        """Number of kept entries (weights and biases)."""
        return sum(self._cache["counts"])

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
        for layer, count, p in zip(
            self.source.parameter_layers(),
            self._cache["counts"],
            self.source.parameters(),
            strict=True,
        ):
            kept[layer] += count
            total[layer] += p.size
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
        return tuple(p[m] for p, m in zip(self.source.parameters(), self.masks, strict=True))

    # ------------------------------------------------------------------ evaluation
    def network(self) -> MLP:
        """The pruned network as a dense :class:`MLP`: every source parameter times its mask.

        Pruned entries are ``+0.0``; kept entries are the source's values.

        Returns
        -------
        MLP
            A new network of the source's architecture (dense storage: memory
            of the full source).
        """
        # a dense copy of every source array (float64), plus one temporary of the largest
        check_memory(8 * self.source.n_params + 8 * max(p.size for p in self.source.parameters()),
                     what="Ticket.network: a dense copy of the source",
                     alternative="use Ticket.forward, which stores only the kept weights")
        return self.source.with_params(
            [np.where(m, p, 0.0) for p, m in zip(self.source.parameters(), self.masks, strict=True)]
        )

    def _operators(self, method: str) -> list[tuple[Any, np.ndarray | None]]:
        ops = self._cache.get(method)
        if ops is not None:
            return ops
        # sparse layers: ~20 bytes per kept weight (data, column index, nonzero scan);
        # dense layers (method="dense" or dense enough): 8 bytes per source weight
        dense_bytes = 8 * self.source.n_params if method == "dense" else 0
        check_memory(20 * self.n_kept + dense_bytes,
                     what=f"Ticket.forward (method={method!r}): the layer operators",
                     alternative="use method='sparse' (or 'auto') and fewer inputs per call")
        ops = []
        it = iter(zip(self.source.parameters(), self.masks, strict=True))
        for b in self.source.biases:
            w, mw = next(it)
            if b is not None:
                bv, mb = next(it)
                bias = np.where(mb, bv, 0.0) if mb.any() else None
            else:
                bias = None
            use_sparse = (
                method == "sparse"
                or (method == "auto" and np.count_nonzero(mw) < SPARSE_DENSITY_THRESHOLD * mw.size)
            )
            if use_sparse:
                counts = np.count_nonzero(mw, axis=1)
                indptr = np.zeros(mw.shape[0] + 1, dtype=np.int64)
                np.cumsum(counts, out=indptr[1:])
                indices = np.nonzero(mw)[1]
                data = w[mw]
                op: Any = sp.csr_matrix((data, indices, indptr), shape=w.shape)
            else:
                op = np.where(mw, w, 0.0)
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
        """Write the ticket to one ``.npz`` file (``numpy.savez_compressed``).

        The file holds the source arrays bit for bit, the masks bit-packed
        (``numpy.packbits``), the error arrays, and a JSON metadata entry stored
        as a uint8 array; nothing is pickled. The file is written at ``path``
        exactly (no ``.npz`` suffix is appended).

        Parameters
        ----------
        path : str or os.PathLike
            Destination file; overwritten if it exists.
        """
        src = self.source
        arrays: dict[str, np.ndarray] = {}
        for l, (w, b) in enumerate(zip(src.weights, src.biases, strict=True)):
            arrays[f"weights_{l}"] = w
            if b is not None:
                arrays[f"biases_{l}"] = b
        for i, m in enumerate(self.masks):
            arrays[f"masks_{i}"] = np.packbits(m.ravel())
        if self.weight_errors is not None:
            for l, e in enumerate(self.weight_errors):
                arrays[f"weight_errors_{l}"] = e
        if self.bias_errors is not None:
            for l, e in enumerate(self.bias_errors):
                if e is not None:
                    arrays[f"bias_errors_{l}"] = e
        from . import __version__

        meta = {
            "format": _FORMAT_NAME,
            "version": FORMAT_VERSION,
            "slth_version": __version__,
            "construction": self.construction,
            "params": self.params.to_dict(),
            "source_widths": list(src.widths),
            "source_biases": [b is not None for b in src.biases],
            "mask_shapes": [list(m.shape) for m in self.masks],
            "target_widths": None if self.target_widths is None else list(self.target_widths),
            "layer_map": None if self.layer_map is None else [list(g) for g in self.layer_map],
            "n_weight_errors": None if self.weight_errors is None else len(self.weight_errors),
            "bias_errors": (
                None if self.bias_errors is None else [e is not None for e in self.bias_errors]
            ),
            "target_fingerprint": self.target_fingerprint,
        }
        text = json.dumps(meta, allow_nan=True)
        arrays[_META_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
        with open(os.fspath(path), "wb") as fh:
            np.savez_compressed(fh, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Ticket:
        """Read a ticket written by :meth:`save`.

        Uses ``numpy.load(..., allow_pickle=False)``; every field round-trips
        exactly (arrays bit for bit, ``params``, None biases, ``layer_map``,
        error arrays).

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
            The file is not an slth ticket file or is of an unknown format version.
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
            if meta.get("format") != _FORMAT_NAME or meta.get("version") != FORMAT_VERSION:
                raise InputError(
                    f"`path` must name a {_FORMAT_NAME} file of format version "
                    f"{FORMAT_VERSION}; {fname!r} has format {meta.get('format')!r} version "
                    f"{meta.get('version')!r}"
                )

            def get(key: str) -> np.ndarray:
                if key not in f.files:
                    raise InputError(f"`path` {fname!r}: ticket file lacks the entry {key!r}")
                return f[key]

            depth = len(meta["source_widths"]) - 1
            weights = [get(f"weights_{l}") for l in range(depth)]
            biases = [
                get(f"biases_{l}") if has else None
                for l, has in enumerate(meta["source_biases"])
            ]
            masks = []
            for i, shape in enumerate(meta["mask_shapes"]):
                n = math.prod(shape)
                bits = np.unpackbits(get(f"masks_{i}"), count=n).astype(np.bool_)
                masks.append(bits.reshape(shape))
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
        source = MLP(tuple(weights), tuple(biases))
        lm = meta["layer_map"]
        tw = meta["target_widths"]
        return cls(
            source,
            tuple(masks),
            construction=meta["construction"],
            params=meta["params"],
            target_widths=None if tw is None else tuple(tw),
            layer_map=None if lm is None else tuple(tuple(g) for g in lm),
            weight_errors=weight_errors,
            bias_errors=bias_errors,
            target_fingerprint=meta.get("target_fingerprint"),
        )

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
            f"sparsity {1 - self.density:.4g}) of a source MLP with widths "
            f"{self.source.widths}"
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

    def __repr__(self) -> str:
        return (
            f"Ticket(construction={self.construction!r}, source={self.source!r}, "
            f"n_kept={self.n_kept}, density={self.density:.4g})"
        )
