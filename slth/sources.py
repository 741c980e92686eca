"""Random source networks: the weights a ticket masks, held as arrays or computed on demand.

A source is a set of named random parameters (``"layers.0.weight"`` ->
shape), a law and a seed. A construction reads only the entries it may keep
(:meth:`Source.entries`), so a source of 10^9 weights need not exist in memory.

- :class:`DenseSource` holds float64 arrays: drawn from a seed
  (:meth:`DenseSource.draw`) or given by the user (``law`` and ``seed`` None).
- :class:`VirtualSource` holds only the shapes, the law and the seed and
  computes any entry on demand with the Philox kernel of :mod:`slth._philox`.

The bits
--------
Entry ``i`` (row-major flat index) of parameter ``name`` of a source with seed
``s`` and law ``L`` is::

    key = param_key(s, name)                          # two uint64 words
    u   = Generator(Philox(key=key)).random(i + 1)[i]  # a multiple of 2^-53 in [0, 1)
    value = u * L.scale + L.shift                      # float64, rounded once per operation

a pure function of ``(s, name, i)``. :meth:`DenseSource.draw` computes every
entry at once with numpy's own generator (``Generator(Philox(key)).random(size)``,
then the same two float64 operations); :meth:`VirtualSource.entries` computes
the entries asked for, each alone, from Philox block ``i // 4``, lane ``i % 4``.
Both give the same bits (tested).

The key of a parameter (:func:`param_key`)
------------------------------------------
``blake2b(b"slth.sources.param_key/v1\\0" + str(seed).encode("ascii") + b"\\0" +
name.encode("utf-8"), digest_size=16)``; the 16 digest bytes are read as two
little-endian uint64, ``(k0, k1)``, numpy's ``Philox(key=[k0, k1])``. It does not
depend on the law, on the other parameters or on Python's hash randomisation,
so a parameter keeps its bits when the network around it changes; different
names (or seeds) give independent-looking streams (a 128-bit key each).

Laws (:data:`LAWS`)
-------------------
``"uniform[-1,1]"``: ``2u - 1`` (``u * 2.0 + (-1.0)``): multiples of 2^-52 in
[-1, 1), the same values as ``Generator(Philox(key)).uniform(-1, 1, size)``.
``"uniform[0,1]"``: ``u`` itself, multiples of 2^-53 in [0, 1).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import numpy as np

from . import _philox
from ._memory import check_memory, format_count
from .errors import InputError, ShapeError, format_value

__all__ = [
    "KEY_DOMAIN",
    "LAWS",
    "DenseSource",
    "Law",
    "Source",
    "VirtualMLP",
    "VirtualNetwork",
    "VirtualSource",
    "param_key",
    "resolve_law",
]

#: Domain-separation prefix of :func:`param_key` (its version: changing it changes every bit).
KEY_DOMAIN = b"slth.sources.param_key/v1\x00"

Shape = tuple[int, ...]
IndexLike = int | Sequence[int] | np.ndarray


@dataclass(frozen=True)
class Law:
    """A law of source entries, an affine image of the 53-bit uniform ``u`` in [0, 1).

    ``value = u * scale + shift`` in float64 (two roundings at most; exact for the
    laws of :data:`LAWS`, whose scales are powers of two).

    Attributes
    ----------
    name : str
        The key in :data:`LAWS` (``"uniform[-1,1]"``).
    scale, shift : float
        The affine map from ``u``.
    low, high : float
        The support ``[low, high)``.
    description : str
        One line for documentation and messages.
    """

    name: str
    scale: float
    shift: float
    low: float
    high: float
    description: str

    def from_uniform(self, u: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
        """``u * scale + shift`` (float64), in place when ``out is u``.

        Parameters
        ----------
        u : numpy.ndarray
            float64 uniforms in [0, 1).
        out : numpy.ndarray, optional
            Where to write (``u`` itself for in place).

        Returns
        -------
        numpy.ndarray
        """
        out = np.multiply(u, self.scale, out=out)
        return np.add(out, self.shift, out=out)


#: The laws a generated source may have, by name.
LAWS: Mapping[str, Law] = MappingProxyType({
    "uniform[-1,1]": Law("uniform[-1,1]", 2.0, -1.0, -1.0, 1.0,
                         "2u - 1: uniform on [-1, 1), multiples of 2^-52"),
    "uniform[0,1]": Law("uniform[0,1]", 1.0, 0.0, 0.0, 1.0,
                        "u: uniform on [0, 1), multiples of 2^-53"),
})


# ----------------------------------------------------------------------------- validation
def _check_seed(seed: object) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise InputError(f"`seed` must be a non-negative int; received {format_value(seed)}")
    if int(seed) < 0:
        raise InputError(f"`seed` must be a non-negative int; received {int(seed)}")
    return int(seed)


def _check_name(name: object, what: str = "`name`") -> str:
    if not isinstance(name, str) or not name:
        raise InputError(f"{what} must be a non-empty str; received {format_value(name)}")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(
            f"{what} must be encodable as UTF-8; received {format_value(name)}") from None
    return name


_UNIFORM = re.compile(r"uniform\[([^,\]]+),([^,\]]+)\]")


def resolve_law(name: str) -> Law:
    """The :class:`Law` named ``name``: a key of :data:`LAWS` or any ``"uniform[lo,hi]"``.

    ``"uniform[lo,hi]"`` (``lo < hi`` finite float literals, e.g.
    ``"uniform[-2.5,2.5]"``) is ``u (hi - lo) + lo``: uniform on ``[lo, hi)`` up to
    two float64 roundings (exact when ``hi - lo`` is a power of two and ``lo`` a
    multiple of its ulp, as for the laws of :data:`LAWS`).

    Parameters
    ----------
    name : str

    Returns
    -------
    Law

    Raises
    ------
    InputError
        Not a str, not in :data:`LAWS` and not of the form ``"uniform[lo,hi]"``
        with finite ``lo < hi``.
    """
    if isinstance(name, str):
        if name in LAWS:
            return LAWS[name]
        m = _UNIFORM.fullmatch(name.replace(" ", ""))
        if m is not None:
            try:
                lo, hi = float(m.group(1)), float(m.group(2))
            except ValueError:
                lo = hi = math.nan
            if math.isfinite(lo) and math.isfinite(hi) and lo < hi:
                return Law(name, hi - lo, lo, lo, hi,
                           f"{lo!r} + {hi - lo!r} u: uniform on [{lo!r}, {hi!r})")
    raise InputError(
        f"`law` must be one of {', '.join(repr(k) for k in LAWS)} or 'uniform[lo,hi]' with "
        f"finite lo < hi; received {format_value(name)}")


def _check_law(law_: object) -> Law:
    return resolve_law(law_)  # type: ignore[arg-type]


def _check_laws(laws: object, spec: Mapping[str, Shape]) -> str | Mapping[str, str]:
    """A law name, or a mapping giving every spec name its law name (checked)."""
    if isinstance(laws, Mapping):
        out: dict[str, str] = {}
        for name in spec:
            if name not in laws:
                raise InputError(
                    f"`law` is a mapping and must give a law for every parameter; missing "
                    f"{name!r}")
            resolve_law(laws[name])
            out[name] = laws[name]
        extra = [n for n in laws if n not in spec]
        if extra:
            raise InputError(f"`law` names parameters that are not in `spec`: "
                             f"{_names_text(extra)}")
        return MappingProxyType(out)
    resolve_law(laws)  # type: ignore[arg-type]
    return laws  # type: ignore[return-value]


def _law_of(laws: str | Mapping[str, str], name: str) -> Law:
    return resolve_law(laws[name] if isinstance(laws, Mapping) else laws)


def _law_json(laws: str | Mapping[str, str]) -> str | dict[str, str]:
    return dict(laws) if isinstance(laws, Mapping) else laws


def _check_shape(name: str, shape: object) -> Shape:
    dims = (shape,) if isinstance(shape, (int, np.integer)) else shape
    try:
        out = tuple(dims)  # type: ignore[arg-type]
    except TypeError:
        out = None
    if out is None or not all(
        isinstance(d, (int, np.integer)) and not isinstance(d, (bool, np.bool_)) and int(d) >= 0
        for d in out
    ):
        raise ShapeError(
            f"the shape of parameter `{name}` must be a tuple of non-negative ints; "
            f"received {format_value(shape)}")
    out = tuple(int(d) for d in out)
    if math.prod(out) > _philox.MAX_INDEX:
        raise ShapeError(
            f"parameter `{name}` must have fewer than 2^63 entries; received shape {out}")
    return out


def _check_spec(spec: object) -> Mapping[str, Shape]:
    if not isinstance(spec, Mapping):
        raise InputError(
            "`spec` must be a mapping from parameter name to shape; "
            f"received {format_value(spec)}")
    out: dict[str, Shape] = {}
    for name, shape in spec.items():
        _check_name(name, "a parameter name in `spec`")
        out[name] = _check_shape(name, shape)
    return MappingProxyType(out)


def _names_text(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _lookup(spec: Mapping[str, Shape], name: object) -> Shape:
    if not isinstance(name, str) or name not in spec:
        raise InputError(
            f"`name` must be a parameter of the source ({_names_text(list(spec))}); "
            f"received {format_value(name)}")
    return spec[name]


def _spec_repr(spec: Mapping[str, Shape]) -> str:
    return "{" + ", ".join(f"{n!r}: {s}" for n, s in spec.items()) + "}"


# ----------------------------------------------------------------------------- the key
def param_key(seed: int, name: str) -> tuple[int, int]:
    """The Philox key of parameter ``name`` in a source of seed ``seed``.

    ``blake2b(KEY_DOMAIN + str(seed).encode("ascii") + b"\\0" + name.encode("utf-8"),
    digest_size=16)``, its bytes 0-7 and 8-15 read as little-endian uint64 ``(k0, k1)``.
    Stable across processes, platforms and Python versions (no ``hash()``).

    Parameters
    ----------
    seed : int
        The source's seed, >= 0.
    name : str
        The parameter's name (``"layers.0.weight"``), non-empty.

    Returns
    -------
    tuple of 2 int
        ``(k0, k1)``, each in [0, 2^64): ``numpy.random.Philox(key=[k0, k1])``.

    Raises
    ------
    InputError
        ``seed`` negative or not an int; ``name`` empty or not a str.

    Examples
    --------
    >>> import numpy as np
    >>> k = param_key(0, "layers.0.weight")
    >>> gen = np.random.Generator(np.random.Philox(key=np.array(k, dtype=np.uint64)))
    >>> u = gen.random(3)  # entries 0, 1, 2 of the parameter, before the law
    """
    seed = _check_seed(seed)
    name = _check_name(name)
    digest = hashlib.blake2b(
        KEY_DOMAIN + str(seed).encode("ascii") + b"\x00" + name.encode("utf-8"),
        digest_size=16,
    ).digest()
    return int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:], "little")


def _generator(seed: int, name: str) -> np.random.Generator:
    key = np.array(param_key(seed, name), dtype=np.uint64)
    return np.random.Generator(np.random.Philox(key=key))


# ----------------------------------------------------------------------------- the protocol
@runtime_checkable
class Source(Protocol):
    """What a construction may read from a random source network.

    Attributes
    ----------
    spec : Mapping[str, tuple of int]
        Parameter name -> shape, read-only, in the network's order.
    law : str, Mapping[str, str] or None
        A law name (:func:`resolve_law`) or one per parameter; None for arrays of
        unknown law.
    seed : int or None
        The seed the entries derive from (:func:`param_key`); None for given arrays.
    """

    @property
    def spec(self) -> Mapping[str, Shape]: ...

    @property
    def law(self) -> str | None: ...

    @property
    def seed(self) -> int | None: ...

    def entries(self, name: str, flat_index: IndexLike) -> np.ndarray:
        """Entries of parameter ``name`` at row-major flat indices (float64, index's shape)."""
        ...

    def dense(self, name: str) -> np.ndarray:
        """The whole parameter ``name`` (float64, its shape)."""
        ...


# ----------------------------------------------------------------------------- dense
@dataclass(frozen=True, eq=False)
class DenseSource:
    """A source held as float64 arrays, one per parameter name.

    Construct it from arrays (a user-given random network: ``law`` and ``seed``
    default to None) or draw it from a seed with :meth:`draw`, which gives the
    bits a :class:`VirtualSource` of the same spec, law and seed computes.

    Parameters
    ----------
    arrays : Mapping[str, array_like]
        Parameter name -> values; copied into read-only C-contiguous float64 arrays.
    law : str or Mapping[str, str], optional
        A law name (:func:`resolve_law`) or one per parameter, if the arrays follow one.
    seed : int, optional
        The seed the arrays were drawn from with :meth:`draw` (then ``law`` is
        required). Not verified here; ``DenseSource.draw(spec, law, seed)`` is
        the way to a consistent one.

    Attributes
    ----------
    arrays : Mapping[str, numpy.ndarray]
        Read-only float64 arrays.
    spec : Mapping[str, tuple of int]
        Parameter name -> shape.

    Notes
    -----
    Equality is identity (the arrays are not compared).
    """

    arrays: Mapping[str, np.ndarray]
    law: str | Mapping[str, str] | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.arrays, Mapping):
            raise InputError(
                "`arrays` must be a mapping from parameter name to array; "
                f"received {format_value(self.arrays)}")
        if self.law is not None and not isinstance(self.law, Mapping):
            _check_law(self.law)
        if self.seed is not None:
            object.__setattr__(self, "seed", _check_seed(self.seed))
            if self.law is None:
                raise InputError(
                    "`law` must be given with `seed` (a key of LAWS); received None")
        held: dict[str, np.ndarray] = {}
        for name, values in self.arrays.items():
            _check_name(name, "a parameter name in `arrays`")
            try:
                arr = np.array(values, dtype=np.float64, order="C", copy=True)
            except (TypeError, ValueError):
                raise InputError(
                    f"parameter `{name}` must be an array of real numbers; "
                    f"received {format_value(values)}") from None
            if not np.all(np.isfinite(arr)):
                raise InputError(
                    f"parameter `{name}` must hold finite values; received NaN or inf")
            arr.setflags(write=False)
            held[name] = arr
        self._set(held)

    def _set(self, held: dict[str, np.ndarray]) -> None:
        object.__setattr__(self, "arrays", MappingProxyType(held))
        object.__setattr__(
            self, "_spec", MappingProxyType({n: tuple(a.shape) for n, a in held.items()}))

    @classmethod
    def draw(cls, spec: Mapping[str, Sequence[int]], law: str | Mapping[str, str],
             seed: int) -> DenseSource:
        """Draw every parameter from ``seed`` with numpy's Philox generator.

        Parameter ``name`` is ``law.from_uniform(Generator(Philox(key=param_key(seed,
        name))).random(size))`` reshaped to its shape: the same bits as
        ``VirtualSource(spec, law, seed).entries``.

        Parameters
        ----------
        spec : Mapping[str, tuple of int]
            Parameter name -> shape.
        law : str or Mapping[str, str]
            A law name (:func:`law`: a key of :data:`LAWS` or ``"uniform[lo,hi]"``),
            or a mapping giving each parameter its law.
        seed : int
            >= 0.

        Returns
        -------
        DenseSource

        Raises
        ------
        InputError, ShapeError
            Bad names, shapes, law or seed.
        LimitError
            The arrays (8 bytes per entry) exceed the memory budget.
        """
        shapes = _check_spec(spec)
        laws = _check_laws(law, shapes)
        seed = _check_seed(seed)
        total = sum(math.prod(s) for s in shapes.values())
        check_memory(
            8 * total,  # the float64 arrays, drawn and mapped in place
            what=f"DenseSource.draw: {len(shapes)} parameters, {format_count(total)} "
                 "float64 entries",
            alternative="use VirtualSource(spec, law, seed), which computes entries on demand")
        held: dict[str, np.ndarray] = {}
        for name, shape in shapes.items():
            arr = _generator(seed, name).random(math.prod(shape))
            _law_of(laws, name).from_uniform(arr, out=arr)
            arr = arr.reshape(shape)
            arr.setflags(write=False)
            held[name] = arr
        self = cls.__new__(cls)
        object.__setattr__(self, "law", laws)
        object.__setattr__(self, "seed", seed)
        self._set(held)
        return self

    @property
    def spec(self) -> Mapping[str, Shape]:
        """Parameter name -> shape (read-only)."""
        return self._spec  # type: ignore[attr-defined, no-any-return]

    def size(self, name: str) -> int:
        """Number of entries of parameter ``name``."""
        return math.prod(_lookup(self.spec, name))

    def entries(self, name: str, flat_index: IndexLike) -> np.ndarray:
        """Entries of parameter ``name`` at row-major flat indices.

        Parameters
        ----------
        name : str
            A key of :attr:`spec`.
        flat_index : int or array_like of int
            Indices in ``[0, size)``, any shape.

        Returns
        -------
        numpy.ndarray
            float64, the shape of ``flat_index`` (a copy).

        Raises
        ------
        InputError
            Unknown ``name``; non-integer or out-of-range indices.
        """
        shape = _lookup(self.spec, name)
        idx = _philox._as_index(flat_index, size=math.prod(shape),
                                what=f"parameter `{name}`")
        return np.asarray(self.arrays[name].reshape(-1)[idx])

    def dense(self, name: str) -> np.ndarray:
        """The read-only array of parameter ``name`` (no copy)."""
        _lookup(self.spec, name)
        return self.arrays[name]

    def __repr__(self) -> str:
        return f"DenseSource(spec={_spec_repr(self.spec)}, law={self.law!r}, seed={self.seed!r})"


# ----------------------------------------------------------------------------- virtual
@dataclass(frozen=True, eq=False)
class VirtualSource:
    """A source computed on demand: shapes, a law and a seed, no arrays.

    Entry ``i`` of parameter ``name`` is the law applied to the ``i``-th double
    of ``Generator(Philox(key=param_key(seed, name)))`` (see the module
    docstring), computed alone by the numba Philox kernel: a source of 10^9
    entries costs memory only for the entries read.

    Parameters
    ----------
    spec : Mapping[str, tuple of int]
        Parameter name -> shape (each under 2^63 entries).
    law : str or Mapping[str, str]
        A law name (:func:`resolve_law`: a key of :data:`LAWS` or
        ``"uniform[lo,hi]"``), or a mapping giving every spec name its law (the
        query/key and value/output weights of Otsuka et al.'s attention source
        follow different laws).
    seed : int
        >= 0.

    Notes
    -----
    Two virtual sources are equal when their spec (names, shapes and order),
    law and seed are equal; they then hold the same bits.
    """

    spec: Mapping[str, Shape]
    law: str | Mapping[str, str]
    seed: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "spec", _check_spec(self.spec))
        object.__setattr__(self, "law", _check_laws(self.law, self.spec))
        object.__setattr__(self, "seed", _check_seed(self.seed))
        object.__setattr__(self, "_keys", {})

    def _identity(self) -> tuple[object, ...]:
        law_id = tuple(self.law.items()) if isinstance(self.law, Mapping) else self.law
        return (tuple(self.spec.items()), law_id, self.seed)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VirtualSource):
            return NotImplemented
        return self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    def __reduce__(self) -> tuple[Any, ...]:
        # the read-only spec view does not pickle: rebuild from spec, law and seed
        return (VirtualSource, (dict(self.spec), _law_json(self.law), self.seed))

    def __repr__(self) -> str:
        return f"VirtualSource(spec={_spec_repr(self.spec)}, law={self.law!r}, seed={self.seed})"

    def key(self, name: str) -> tuple[int, int]:
        """The Philox key of parameter ``name`` (:func:`param_key`)."""
        _lookup(self.spec, name)
        keys: dict[str, tuple[int, int]] = self._keys  # type: ignore[attr-defined]
        if name not in keys:
            keys[name] = param_key(self.seed, name)
        return keys[name]

    def size(self, name: str) -> int:
        """Number of entries of parameter ``name``."""
        return math.prod(_lookup(self.spec, name))

    def entries(self, name: str, flat_index: IndexLike) -> np.ndarray:
        """Entries of parameter ``name`` at row-major flat indices, computed now.

        Costs one Philox block per index (consecutive indices in the same block
        of four share it), in parallel over numba's threads for large requests.

        Parameters
        ----------
        name : str
            A key of :attr:`spec`.
        flat_index : int or array_like of int
            Indices in ``[0, size)``, any shape.

        Returns
        -------
        numpy.ndarray
            float64, the shape of ``flat_index``.

        Raises
        ------
        InputError
            Unknown ``name``; non-integer or out-of-range indices.
        LimitError
            The output and the index copy exceed the memory budget.
        """
        shape = _lookup(self.spec, name)
        idx = _philox._as_index(flat_index, size=math.prod(shape),
                                what=f"parameter `{name}`")
        check_memory(
            16 * idx.size,  # the float64 output and a contiguous int64 copy of the indices
            what=f"VirtualSource.entries(`{name}`): {format_count(idx.size)} entries",
            alternative="read the entries in smaller batches")
        flat = np.ascontiguousarray(idx.reshape(-1))
        key = np.array(self.key(name), dtype=np.uint64)
        law = _law_of(self.law, name)
        out = _philox._affine_entries(key, flat, law.scale, law.shift)
        return out.reshape(idx.shape)

    def dense(self, name: str) -> np.ndarray:
        """Materialise parameter ``name`` with numpy's Philox generator (a new array).

        Raises
        ------
        InputError
            Unknown ``name``.
        LimitError
            The array (8 bytes per entry) exceeds the memory budget: read the
            entries needed with :meth:`entries` instead.
        """
        shape = _lookup(self.spec, name)
        n = math.prod(shape)
        check_memory(
            8 * n,  # the float64 array, mapped to the law in place
            what=f"VirtualSource.dense(`{name}`): {format_count(n)} float64 entries",
            alternative="read only the entries needed with `entries(name, flat_index)`")
        arr = _generator(self.seed, name).random(n)
        _law_of(self.law, name).from_uniform(arr, out=arr)
        return arr.reshape(shape)

    def to_dense(self) -> DenseSource:
        """``DenseSource.draw(spec, law, seed)``: every parameter in memory, the same bits."""
        return DenseSource.draw(self.spec, self.law, self.seed)


# ---------------------------------------------------------------------- virtual networks
@dataclass(frozen=True, eq=False)
class VirtualNetwork:
    """A network whose parameters live in a :class:`VirtualSource`: layers now, entries on demand.

    The structure of a :class:`slth.nets.base.Network` (``layers``,
    ``param_specs()``, ``named_layers()``, ``forward(x, params=...)``) without
    its arrays: entry i of parameter ``name`` is ``source.entries(key_name, i)``
    with ``key_name = key_names[name]``. A ticket over a virtual network costs
    memory in proportion to what it keeps; :meth:`to_network` materialises the
    dense network (bit for bit :meth:`DenseSource.draw` of the same spec) when
    it fits the memory budget.

    Parameters
    ----------
    arch : slth.nets.base.Architecture
        The layers (a :class:`slth.nets.base.Network` is taken for its
        ``arch``).
    source : VirtualSource
        One spec entry per parameter of ``arch``, of the parameter's shape, and
        nothing else.
    key_names : Mapping[str, str], optional
        Parameter name -> the source spec name its entries are drawn under
        (the name its Philox key derives from). Default: the parameter's own
        name.

    Raises
    ------
    InputError, ShapeError
        Another type, a parameter with no spec entry (or of another shape), an
        unused spec entry.
    """

    arch: Any
    source: VirtualSource
    key_names: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        from .nets.base import Architecture, Network

        arch = self.arch
        if isinstance(arch, Network):
            arch = arch.arch
        if not isinstance(arch, Architecture):
            raise InputError(f"`arch` must be a slth.nets.base.Architecture (or a Network); "
                             f"received {format_value(arch)} of type {type(arch).__name__}")
        src = self.source
        if not isinstance(src, VirtualSource):
            raise InputError(f"`source` must be a slth.sources.VirtualSource; received "
                             f"{type(src).__name__}")
        specs = arch.param_specs()
        given = self.key_names
        if given is not None and not isinstance(given, Mapping):
            raise InputError(f"`key_names` must be a mapping from parameter names to source "
                             f"spec names; received {format_value(given)}")
        keys = {n: n for n in specs} if given is None else dict(given)
        extra = [n for n in keys if n not in specs]
        if extra:
            raise InputError(f"`key_names` has entries for names that are not parameters of "
                             f"`arch`: {_names_text(extra)}")
        missing = [n for n in specs if n not in keys]
        if missing:
            raise InputError(f"`key_names` must name a source entry for every parameter; "
                             f"missing {_names_text(missing)}")
        for name, shape in specs.items():
            key = keys[name]
            if key not in src.spec:
                raise InputError(f"`source.spec` lacks {key!r}, the entry of parameter "
                                 f"`{name}` (shape {shape}); it holds "
                                 f"{_names_text(list(src.spec))}")
            if tuple(src.spec[key]) != tuple(shape):
                raise ShapeError(f"`source.spec[{key!r}]` must have the shape {shape} of "
                                 f"parameter `{name}`; received {src.spec[key]}")
        unused = sorted(set(src.spec) - set(keys.values()))
        if unused:
            raise InputError(f"`source.spec` may hold only the parameters of `arch`; received "
                             f"unused {_names_text(unused)}")
        if len(set(keys.values())) != len(keys):
            raise InputError("`key_names` must map parameters to distinct source entries")
        object.__setattr__(self, "arch", arch)
        object.__setattr__(self, "key_names", MappingProxyType(keys))

    def __reduce__(self) -> tuple[Any, ...]:
        return (VirtualNetwork, (self.arch, self.source, dict(self.key_names or {})))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VirtualNetwork):
            return NotImplemented
        return (self.arch == other.arch and self.source == other.source
                and dict(self.key_names or {}) == dict(other.key_names or {}))

    def __hash__(self) -> int:
        return hash((self.arch, self.source))

    # structure, as the architecture's
    @property
    def layers(self) -> Any:
        """The layers, as ``(name, layer)`` pairs (the architecture's)."""
        return self.arch.layers

    @property
    def input_shape(self) -> Shape:
        """Per-example input shape."""
        return self.arch.input_shape  # type: ignore[no-any-return]

    @property
    def output_shape(self) -> Shape:
        """Per-example output shape."""
        return self.arch.output_shape  # type: ignore[no-any-return]

    def named_layers(self) -> Any:
        """Every layer with its path (see :meth:`slth.nets.base.Network.named_layers`)."""
        return self.arch.named_layers()

    def param_specs(self) -> Mapping[str, Shape]:
        """Parameter name -> shape, in the network's order."""
        return self.arch.param_specs()  # type: ignore[no-any-return]

    def param_owner(self, name: str) -> Any:
        """``(layer path, layer, local name)`` of parameter ``name``."""
        return self.arch.param_owner(name)

    @property
    def n_params(self) -> int:
        """Total number of entries."""
        return int(self.arch.n_params)

    def architecture(self) -> dict[str, Any]:
        """The layers as JSON-ready data (:meth:`slth.nets.base.Network.architecture`)."""
        return self.arch.architecture()  # type: ignore[no-any-return]

    def _key_name(self, name: str) -> str:
        keys: Mapping[str, str] = self.key_names  # type: ignore[assignment]
        if not isinstance(name, str) or name not in keys:
            raise InputError(f"`name` must be a parameter name of the network "
                             f"({_names_text(list(keys))}); received {format_value(name)}")
        return keys[name]

    def key(self, name: str) -> tuple[int, int]:
        """The Philox key of parameter ``name``."""
        return self.source.key(self._key_name(name))

    def entries(self, name: str, flat_index: IndexLike) -> np.ndarray:
        """Entries of parameter ``name`` at ``flat_index`` (see :meth:`VirtualSource.entries`)."""
        return self.source.entries(self._key_name(name), flat_index)

    def dense(self, name: str) -> np.ndarray:
        """Parameter ``name`` in memory (see :meth:`VirtualSource.dense`; memory-guarded)."""
        return self.source.dense(self._key_name(name))

    def forward(self, x: Any, *, params: Mapping[str, Any]) -> np.ndarray:
        """The network's forward pass with the given parameters (every one of them)."""
        return self.arch.forward(x, params=params)  # type: ignore[no-any-return]

    def to_network(self) -> Any:
        """The dense :class:`slth.nets.base.Network` (memory-guarded), bit for bit the entries."""
        n = self.n_params
        check_memory(8 * n, what=f"VirtualNetwork.to_network: {format_count(n)} float64 entries",
                     alternative="read the entries needed with `entries(name, flat_index)`")
        return self.arch.with_params({name: self.dense(name) for name in self.param_specs()})

    def __repr__(self) -> str:
        return (f"VirtualNetwork(layers={len(self.layers)}, law={self.source.law!r}, "
                f"seed={self.source.seed}, n_params={self.n_params})")


# ---------------------------------------------------------------------- virtual MLP
_LEGACY_WEIGHT = "weights[{}]"
_LEGACY_BIAS = "biases[{}]"


def _mlp_layout(spec: Mapping[str, Shape]) -> tuple[list[Shape], list[bool], dict[str, str]]:
    """Weight shapes, bias flags and key names of an MLP spec (network or legacy names)."""
    from .nets.mlp import param_name

    legacy = "weights[0]" in spec
    wname = _LEGACY_WEIGHT.format if legacy else (lambda l: param_name("weight", l))
    bname = _LEGACY_BIAS.format if legacy else (lambda l: param_name("bias", l))
    L = 0
    while wname(L) in spec:
        L += 1
    if L == 0:
        raise InputError("`source.spec` must name the MLP's weights layers.0.weight, "
                         "layers.2.weight, ... (or slth 0.1's weights[0], weights[1], ...); "
                         f"received {_names_text(list(spec))}")
    allowed = {wname(l) for l in range(L)} | {bname(l) for l in range(L)}
    extra = [n for n in spec if n not in allowed]
    if extra:
        raise InputError(f"`source.spec` may hold only the weights and biases of {L} MLP layers "
                         f"({wname(0)}, {bname(0)}, ...); received {_names_text(extra)}")
    shapes = [tuple(spec[wname(l)]) for l in range(L)]
    biases = []
    keys: dict[str, str] = {}
    for l, s in enumerate(shapes):
        if len(s) != 2:
            raise ShapeError(f"`{wname(l)}` must be 2-D (d_out, d_in); received shape {s}")
        if l and s[1] != shapes[l - 1][0]:
            raise ShapeError(f"`{wname(l)}` must have {shapes[l - 1][0]} columns to follow "
                             f"{wname(l - 1)} of shape {shapes[l - 1]}; received {s}")
        b = spec.get(bname(l))
        if b is not None and tuple(b) != (s[0],):
            raise ShapeError(f"`{bname(l)}` must have shape ({s[0]},); received {b}")
        biases.append(b is not None)
        keys[param_name("weight", l)] = wname(l)
        if b is not None:
            keys[param_name("bias", l)] = bname(l)
    return shapes, biases, keys


class VirtualMLP(VirtualNetwork):
    """A ReLU MLP whose weights live in a :class:`VirtualSource`: shapes now, entries on demand.

    A :class:`VirtualNetwork` of the layers of :class:`slth.nets.MLP` (``Dense,
    ReLU, ..., Dense`` named by position), with the same architecture
    attributes as an MLP (``widths``, ``depth``, ``n_params``, ``has_biases``,
    ``parameter_names()``, ``parameter_shapes()``, ``parameter_layers()``) but
    no arrays. Parameters are addressed by the network names
    (``"layers.<2l>.weight"``; slth 0.1's ``"weights[l]"`` is read as an alias).
    :meth:`to_mlp` materialises the dense network (bit for bit
    :meth:`DenseSource.draw` of the same spec) when it fits the memory budget.

    Parameters
    ----------
    source : VirtualSource
        Its spec names the weights ``layers.<2l>.weight`` (shape ``(d_{l+1},
        d_l)``, torch layout) for l < L with chaining shapes and optionally the
        biases ``layers.<2l>.bias`` of shape ``(d_{l+1},)``; nothing else. The
        names of slth 0.1 (``weights[l]``, ``biases[l]``) are accepted instead,
        so the tickets it wrote keep their bits: an entry's bits derive from its
        spec name (:func:`param_key`), which :attr:`key_names` records.
    key_names : Mapping[str, str], optional
        MLP parameter name (``"layers.<2l>.weight"``, ``.bias``) -> the spec name
        its entries are drawn under, for a source whose spec names are another
        network's (e.g. the feed-forward part of a transformer source, read
        with its own keys, so the MLP's entries are that network's bits). Every
        spec entry must be named.

    Raises
    ------
    InputError, ShapeError
        Another source type, unknown parameter names, shapes that do not chain.
    """

    def __init__(self, source: VirtualSource, key_names: Mapping[str, str] | None = None
                 ) -> None:
        from .nets.base import Architecture
        from .nets.layers import Dense, ReLU

        if not isinstance(source, VirtualSource):
            raise InputError(f"`source` must be a slth.sources.VirtualSource; received "
                             f"{type(source).__name__}")
        if key_names is None:
            shapes, biases, keys = _mlp_layout(source.spec)
        else:
            if not isinstance(key_names, Mapping):
                raise InputError(f"`key_names` must be a mapping from MLP parameter names to "
                                 f"spec names; received {format_value(key_names)}")
            view = {}
            for name, key in key_names.items():
                if key not in source.spec:
                    raise InputError(f"`key_names[{name!r}]` = {key!r} is not in `source.spec` "
                                     f"({_names_text(list(source.spec))})")
                view[name] = source.spec[key]
            shapes, biases, keys = _mlp_layout(view)
            keys = {n: key_names[k] for n, k in keys.items()}
        layers: list[tuple[str, Any]] = []
        for l, (s, has) in enumerate(zip(shapes, biases, strict=True)):
            layers.append((str(len(layers)), Dense(s[1], s[0], bias=has)))
            if l < len(shapes) - 1:
                layers.append((str(len(layers)), ReLU()))
        super().__init__(Architecture(tuple(layers)), source, keys)
        object.__setattr__(self, "_given_keys",
                           None if key_names is None else MappingProxyType(dict(key_names)))
        object.__setattr__(self, "_widths", (shapes[0][1], *(s[0] for s in shapes)))
        object.__setattr__(self, "_biases", tuple(biases))

    def __reduce__(self) -> tuple[Any, ...]:
        given = getattr(self, "_given_keys", None)
        return (VirtualMLP, (self.source,) if given is None else (self.source, dict(given)))

    def _key_name(self, name: str) -> str:
        from .nets.mlp import resolve_name

        return super()._key_name(resolve_name(name))

    @property
    def widths(self) -> tuple[int, ...]:
        """Layer widths ``(d_0, ..., d_L)``."""
        return self._widths  # type: ignore[attr-defined,no-any-return]

    @property
    def depth(self) -> int:
        """Number of layers L."""
        return len(self.widths) - 1

    @property
    def bias_layers(self) -> tuple[bool, ...]:
        """Per layer, whether it has a bias vector."""
        return self._biases  # type: ignore[attr-defined,no-any-return]

    @property
    def has_biases(self) -> bool:
        """True when at least one layer has a bias vector."""
        return any(self.bias_layers)

    def parameter_names(self) -> tuple[str, ...]:
        """The network names, in the order of :meth:`slth.nets.MLP.parameters`."""
        return tuple(self.param_specs())

    def parameter_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Shapes aligned with :meth:`parameter_names`."""
        return tuple(self.param_specs().values())

    def parameter_layers(self) -> tuple[int, ...]:
        """Layer index of each entry of :meth:`parameter_names`."""
        out: list[int] = []
        for l, has in enumerate(self.bias_layers):
            out += [l, l] if has else [l]
        return tuple(out)

    def to_mlp(self) -> Any:
        """The dense :class:`slth.nets.MLP` (memory-guarded), bit for bit the virtual entries."""
        from .nets.mlp import MLP, param_name

        n = self.n_params
        check_memory(8 * n, what=f"VirtualMLP.to_mlp: {format_count(n)} float64 entries",
                     alternative="read the entries needed with `entries(name, flat_index)`")
        return MLP(tuple(self.dense(param_name("weight", l)) for l in range(self.depth)),
                   tuple(self.dense(param_name("bias", l)) if has else None
                         for l, has in enumerate(self.bias_layers)))

    def __repr__(self) -> str:
        return (f"VirtualMLP(widths={self.widths}, law={self.source.law!r}, "
                f"seed={self.source.seed}, n_params={self.n_params})")
