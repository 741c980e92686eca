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
    "VirtualSource",
    "param_key",
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


def _check_law(law: object) -> Law:
    if not isinstance(law, str) or law not in LAWS:
        raise InputError(
            f"`law` must be one of {', '.join(repr(k) for k in LAWS)}; "
            f"received {format_value(law)}")
    return LAWS[law]


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
    law : str or None
        A key of :data:`LAWS`; None for arrays of unknown law.
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
    law : str, optional
        A key of :data:`LAWS`, if the arrays follow one.
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
    law: str | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.arrays, Mapping):
            raise InputError(
                "`arrays` must be a mapping from parameter name to array; "
                f"received {format_value(self.arrays)}")
        if self.law is not None:
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
    def draw(cls, spec: Mapping[str, Sequence[int]], law: str, seed: int) -> DenseSource:
        """Draw every parameter from ``seed`` with numpy's Philox generator.

        Parameter ``name`` is ``law.from_uniform(Generator(Philox(key=param_key(seed,
        name))).random(size))`` reshaped to its shape: the same bits as
        ``VirtualSource(spec, law, seed).entries``.

        Parameters
        ----------
        spec : Mapping[str, tuple of int]
            Parameter name -> shape.
        law : str
            A key of :data:`LAWS`.
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
        the_law = _check_law(law)
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
            the_law.from_uniform(arr, out=arr)
            arr = arr.reshape(shape)
            arr.setflags(write=False)
            held[name] = arr
        self = cls.__new__(cls)
        object.__setattr__(self, "law", law)
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
    law : str
        A key of :data:`LAWS`.
    seed : int
        >= 0.

    Notes
    -----
    Two virtual sources are equal when their spec (names, shapes and order),
    law and seed are equal; they then hold the same bits.
    """

    spec: Mapping[str, Shape]
    law: str
    seed: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "spec", _check_spec(self.spec))
        _check_law(self.law)
        object.__setattr__(self, "seed", _check_seed(self.seed))
        object.__setattr__(self, "_keys", {})

    def _identity(self) -> tuple[object, ...]:
        return (tuple(self.spec.items()), self.law, self.seed)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VirtualSource):
            return NotImplemented
        return self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

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
        law = LAWS[self.law]
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
        LAWS[self.law].from_uniform(arr, out=arr)
        return arr.reshape(shape)

    def to_dense(self) -> DenseSource:
        """``DenseSource.draw(spec, law, seed)``: every parameter in memory, the same bits."""
        return DenseSource.draw(self.spec, self.law, self.seed)


# ---------------------------------------------------------------------- virtual MLP
@dataclass(frozen=True, eq=False)
class VirtualMLP:
    """A ReLU MLP whose weights live in a :class:`VirtualSource`: shapes now, entries on demand.

    The same architecture attributes as :class:`slth.nets.MLP` (``widths``,
    ``depth``, ``n_params``, ``has_biases``, ``parameter_names()``,
    ``parameter_shapes()``, ``parameter_layers()``), but no arrays: entry i of
    parameter ``"weights[l]"`` (shape ``(d_{l+1}, d_l)``, torch layout) or
    ``"biases[l]"`` is ``source.entries(name, i)``. A ticket over a virtual MLP
    costs memory in proportion to what it keeps; :meth:`to_mlp` materialises the
    dense network (bit for bit :meth:`DenseSource.draw` of the same spec) when it
    fits the memory budget.

    Parameters
    ----------
    source : VirtualSource
        Its spec must name ``weights[0] .. weights[L-1]`` with chaining shapes and
        optionally ``biases[l]`` of shape ``(d_{l+1},)``; nothing else.

    Raises
    ------
    InputError, ShapeError
        Another source type, unknown parameter names, shapes that do not chain.
    """

    source: VirtualSource

    def __post_init__(self) -> None:
        src = self.source
        if not isinstance(src, VirtualSource):
            raise InputError(f"`source` must be a slth.sources.VirtualSource; received "
                             f"{type(src).__name__}")
        spec = src.spec
        L = 0
        while f"weights[{L}]" in spec:
            L += 1
        if L == 0:
            raise InputError("`source.spec` must name weights[0], weights[1], ...; received "
                             f"{_names_text(list(spec))}")
        allowed = {f"weights[{l}]" for l in range(L)} | {f"biases[{l}]" for l in range(L)}
        extra = [n for n in spec if n not in allowed]
        if extra:
            raise InputError(f"`source.spec` may hold only weights[l] and biases[l] for l < {L}; "
                             f"received {_names_text(extra)}")
        shapes = [spec[f"weights[{l}]"] for l in range(L)]
        for l, s in enumerate(shapes):
            if len(s) != 2:
                raise ShapeError(f"`weights[{l}]` must be 2-D (d_out, d_in); received shape {s}")
            if l and s[1] != shapes[l - 1][0]:
                raise ShapeError(f"`weights[{l}]` must have {shapes[l - 1][0]} columns to follow "
                                 f"weights[{l - 1}] of shape {shapes[l - 1]}; received {s}")
            b = spec.get(f"biases[{l}]")
            if b is not None and tuple(b) != (s[0],):
                raise ShapeError(f"`biases[{l}]` must have shape ({s[0]},); received {b}")

    @property
    def widths(self) -> tuple[int, ...]:
        """Layer widths ``(d_0, ..., d_L)``."""
        shapes = [self.source.spec[f"weights[{l}]"] for l in range(self.depth)]
        return (shapes[0][1], *(s[0] for s in shapes))

    @property
    def depth(self) -> int:
        """Number of layers L."""
        L = 0
        while f"weights[{L}]" in self.source.spec:
            L += 1
        return L

    @property
    def bias_layers(self) -> tuple[bool, ...]:
        """Per layer, whether it has a bias vector."""
        return tuple(f"biases[{l}]" in self.source.spec for l in range(self.depth))

    @property
    def has_biases(self) -> bool:
        """True when at least one layer has a bias vector."""
        return any(self.bias_layers)

    def parameter_names(self) -> tuple[str, ...]:
        """``("weights[0]", "biases[0]", ...)``: the order of :meth:`slth.nets.MLP.parameters`."""
        out: list[str] = []
        for l, has in enumerate(self.bias_layers):
            out.append(f"weights[{l}]")
            if has:
                out.append(f"biases[{l}]")
        return tuple(out)

    def parameter_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Shapes aligned with :meth:`parameter_names`."""
        return tuple(self.source.spec[n] for n in self.parameter_names())

    def parameter_layers(self) -> tuple[int, ...]:
        """Layer index of each entry of :meth:`parameter_names`."""
        out: list[int] = []
        for l, has in enumerate(self.bias_layers):
            out += [l, l] if has else [l]
        return tuple(out)

    @property
    def n_params(self) -> int:
        """Total number of entries."""
        return int(sum(math.prod(s) for s in self.parameter_shapes()))

    def entries(self, name: str, flat_index: IndexLike) -> np.ndarray:
        """Entries of parameter ``name`` at ``flat_index`` (see :meth:`VirtualSource.entries`)."""
        return self.source.entries(name, flat_index)

    def to_mlp(self) -> Any:
        """The dense :class:`slth.nets.MLP` (memory-guarded), bit for bit the virtual entries."""
        from .nets.mlp import MLP

        dense = self.source.to_dense()
        return MLP(tuple(dense.dense(f"weights[{l}]") for l in range(self.depth)),
                   tuple(dense.dense(f"biases[{l}]") if has else None
                         for l, has in enumerate(self.bias_layers)))

    def __repr__(self) -> str:
        return (f"VirtualMLP(widths={self.widths}, law={self.source.law!r}, "
                f"seed={self.source.seed}, n_params={self.n_params})")
