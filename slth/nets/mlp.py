"""Fully connected ReLU networks: the targets and sources of the MLP theorems.

An :class:`MLP` is a plain, immutable list of weight matrices and optional bias
vectors with a float64 numpy forward pass. It is the network spec every
construction reads and every :class:`slth.Ticket` masks; it holds no state and
does no training. It is a :class:`slth.nets.base.Network` of ``Dense, ReLU, ...,
Dense`` layers named by position, so its parameters are also keyed by the
network's dotted names: weight ``l`` is ``"layers.<2l>.weight"`` and bias ``l``
``"layers.<2l>.bias"`` (:func:`param_name`; the names ``"weights[l]"`` and
``"biases[l]"`` of slth 0.1 are read as aliases by :func:`resolve_name`).

Layout follows ``torch.nn.Linear``: ``weights[l]`` has shape
``(d_{l+1}, d_l)`` (out x in), so layer ``l`` maps ``h -> weights[l] @ h + biases[l]``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import re
import types
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from .._rng import RNGLike, as_generator
from ..errors import InputError, ShapeError, format_value
from .base import Network
from .layers import Dense, ReLU

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["INITS", "MLP", "param_name", "resolve_name"]

#: Names accepted by :meth:`MLP.random` ``init``.
INITS: tuple[str, ...] = ("uniform", "normal", "product", "hyperbolic")


def _as_real_array(value: Any, name: str, ndim: int) -> np.ndarray:
    """float64 read-only view of ``value``; validates dtype, ndim and finiteness.

    A float64 array is not copied: the stored array is a read-only *view* of it.
    """
    if isinstance(value, np.ndarray):
        arr = value
    else:
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"`{name}` must be a {ndim}-D array of real numbers; received "
                f"{format_value(value)}"
            ) from exc
    if arr.dtype.kind not in "iuf":
        raise InputError(
            f"`{name}` must hold real numbers (int or float dtype); received "
            f"{format_value(arr)}"
        )
    if arr.ndim != ndim:
        raise ShapeError(
            f"`{name}` must be a {ndim}-D array; received an array of shape {arr.shape}"
        )
    arr = np.asarray(arr, dtype=np.float64)
    if not np.isfinite(arr).all():
        n_bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise InputError(
            f"`{name}` must be finite; received {format_value(arr)} with {n_bad} "
            "NaN or infinite entries"
        )
    # C order: the network's arithmetic (and its rounding) must not depend on the layout
    arr = np.ascontiguousarray(arr)
    view = arr.view()
    view.flags.writeable = False
    return view


_LEGACY_RE = re.compile(r"^(weights|biases)\[(\d+)\]$")


def param_name(kind: str, layer: int) -> str:
    """The network name of an MLP parameter: ``("weight", l)`` -> ``"layers.<2l>.weight"``.

    Parameters
    ----------
    kind : {"weight", "bias"}
    layer : int
        The MLP layer index ``l`` (weight matrix ``weights[l]``).

    Returns
    -------
    str
    """
    if kind not in ("weight", "bias"):
        raise InputError(f"`kind` must be 'weight' or 'bias'; received {kind!r}")
    return f"layers.{2 * int(layer)}.{kind}"


def resolve_name(name: str) -> str:
    """An MLP parameter name, with slth 0.1's ``"weights[l]"``/``"biases[l]"`` read as aliases.

    Parameters
    ----------
    name : str
        ``"layers.<2l>.weight"`` (returned as is) or the alias ``"weights[l]"``
        (or ``"biases[l]"``).

    Returns
    -------
    str
        The network name; any other string is returned unchanged (the caller
        reports it as unknown).
    """
    m = _LEGACY_RE.match(name) if isinstance(name, str) else None
    if m is None:
        return name
    return param_name("weight" if m.group(1) == "weights" else "bias", int(m.group(2)))


def _check_widths(widths: Any, name: str = "widths") -> tuple[int, ...]:
    """Validate a sequence of >= 2 positive ints."""
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        if isinstance(widths, np.ndarray) and widths.ndim == 1:
            widths = list(widths)
        else:
            raise InputError(
                f"`{name}` must be a sequence of at least 2 positive ints; received "
                f"{format_value(widths)}"
            )
    out = []
    for w in widths:
        if isinstance(w, (bool, np.bool_)) or not isinstance(w, (int, np.integer)) or w < 1:
            raise InputError(
                f"`{name}` must be a sequence of at least 2 positive ints; received "
                f"{list(widths)!r}"
            )
        out.append(int(w))
    if len(out) < 2:
        raise InputError(
            f"`{name}` must be a sequence of at least 2 positive ints (input and output "
            f"width); received {out!r}"
        )
    return tuple(out)


class MLP(Network):
    """A ReLU multilayer perceptron with float64 weights.

    ``f(x) = W_{L-1} relu(... relu(W_0 x + b_0) ...) + b_{L-1}``: a ReLU after
    every layer except the last. An MLP is a :class:`slth.nets.base.Network`
    of layers ``Dense, ReLU, ..., ReLU, Dense`` named ``"0"``, ``"1"``, ... (its
    ``params`` hold the same arrays as ``weights`` and ``biases``, under
    ``"layers.<2l>.weight"`` and ``"layers.<2l>.bias"``), so everything written
    for networks (tickets, evaluation, saving, the torch bridge) takes it.

    Parameters
    ----------
    weights : sequence of array_like
        ``weights[l]`` has shape ``(d_{l+1}, d_l)`` (the ``torch.nn.Linear``
        layout, out x in). At least one layer; consecutive shapes must chain;
        entries real and finite. Stored as float64 read-only arrays; a float64
        input array is not copied (the stored array is a read-only view of it),
        so do not modify it afterwards.
    biases : sequence of (array_like or None), optional
        Same length as ``weights``; ``biases[l]`` has shape ``(d_{l+1},)`` or is
        None (that layer has no bias). ``None`` (default) means no biases at all.

    Attributes
    ----------
    weights : tuple of numpy.ndarray
        Read-only float64 weight matrices.
    biases : tuple of (numpy.ndarray or None)
        Read-only float64 bias vectors, or None per layer.

    Raises
    ------
    ShapeError
        Wrong number of dimensions, shapes that do not chain, wrong bias shape,
        or a ``biases`` sequence of the wrong length.
    InputError
        Non-real or non-finite entries, or no layer at all.

    Examples
    --------
    >>> import numpy as np
    >>> from slth.nets import MLP
    >>> net = MLP([np.eye(2), np.ones((1, 2))])
    >>> net.widths
    (2, 2, 1)
    >>> net.forward(np.array([1.0, -1.0]))
    array([1.])
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray | None, ...]

    def __init__(self, weights: Sequence[ArrayLike],
                 biases: Sequence[ArrayLike | None] | None = None) -> None:
        if isinstance(weights, np.ndarray) or not isinstance(weights, Sequence):
            raise InputError(
                "`weights` must be a sequence (list or tuple) of 2-D arrays; received "
                f"{format_value(weights)}"
            )
        if len(weights) == 0:
            raise InputError("`weights` must hold at least one layer; received an empty sequence")
        ws = tuple(_as_real_array(w, f"weights[{l}]", 2) for l, w in enumerate(weights))
        for l in range(1, len(ws)):
            if ws[l].shape[1] != ws[l - 1].shape[0]:
                raise ShapeError(
                    f"`weights[{l}]` must have {ws[l - 1].shape[0]} columns to follow "
                    f"`weights[{l - 1}]` of shape {ws[l - 1].shape}; received shape "
                    f"{ws[l].shape}"
                )
        for l, w in enumerate(ws):
            if w.size == 0:
                raise ShapeError(
                    f"`weights[{l}]` must have at least one row and one column; received "
                    f"shape {w.shape}"
                )
        if biases is None:
            bs: tuple[np.ndarray | None, ...] = (None,) * len(ws)
        else:
            if isinstance(biases, np.ndarray) or not isinstance(biases, Sequence):
                raise InputError(
                    "`biases` must be None or a sequence of 1-D arrays or None; received "
                    f"{format_value(biases)}"
                )
            if len(biases) != len(ws):
                raise ShapeError(
                    f"`biases` must have one entry per layer ({len(ws)}); received "
                    f"{len(biases)} entries"
                )
            out = []
            for l, b in enumerate(biases):
                if b is None:
                    out.append(None)
                    continue
                arr = _as_real_array(b, f"biases[{l}]", 1)
                if arr.shape != (ws[l].shape[0],):
                    raise ShapeError(
                        f"`biases[{l}]` must have shape ({ws[l].shape[0]},) to match "
                        f"`weights[{l}]` of shape {ws[l].shape}; received shape {arr.shape}"
                    )
                out.append(arr)
            bs = tuple(out)
        object.__setattr__(self, "weights", ws)
        object.__setattr__(self, "biases", bs)
        layers: list[tuple[str, Any]] = []
        params: dict[str, np.ndarray] = {}
        for l, (w, b) in enumerate(zip(ws, bs, strict=True)):
            name = str(len(layers))
            layers.append((name, Dense(w.shape[1], w.shape[0], bias=b is not None)))
            params[f"layers.{name}.weight"] = w
            if b is not None:
                params[f"layers.{name}.bias"] = b
            if l < len(ws) - 1:
                layers.append((str(len(layers)), ReLU()))
        object.__setattr__(self, "layers", tuple(layers))
        object.__setattr__(self, "input_shape", None)
        self._setup()
        # the arrays are validated above (read-only, C-ordered float64): stored as they are
        object.__setattr__(self, "params", types.MappingProxyType(params))

    def __reduce__(self) -> tuple[Any, ...]:
        return (MLP, (self.weights, self.biases))

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"MLP is immutable; cannot assign to {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"MLP is immutable; cannot delete {name!r}")

    # ------------------------------------------------------------------ shape info
    @property
    def widths(self) -> tuple[int, ...]:
        """Layer widths ``(d_0, ..., d_L)``: input, hidden layers, output."""
        return (self.weights[0].shape[1], *(w.shape[0] for w in self.weights))

    @property
    def depth(self) -> int:
        """Number of layers ``L`` (weight matrices)."""
        return len(self.weights)

    @property
    def n_params(self) -> int:
        """Total number of entries of the weights and of the non-None biases."""
        return sum(int(p.size) for p in self.parameters())

    @property
    def has_biases(self) -> bool:
        """True when at least one layer has a bias vector."""
        return any(b is not None for b in self.biases)

    def parameters(self) -> tuple[np.ndarray, ...]:
        """All parameter arrays in the order ``W_0, b_0, W_1, b_1, ...``.

        None biases are skipped. This is the order of :attr:`slth.Ticket.masks`
        and of :meth:`with_params`.

        Returns
        -------
        tuple of numpy.ndarray
            Read-only float64 arrays (the stored arrays themselves, not copies).
        """
        out: list[np.ndarray] = []
        for w, b in zip(self.weights, self.biases, strict=True):
            out.append(w)
            if b is not None:
                out.append(b)
        return tuple(out)

    def parameter_names(self) -> tuple[str, ...]:
        """Names aligned with :meth:`parameters`: the network names of :meth:`param_specs`.

        ``("layers.0.weight", "layers.0.bias", "layers.2.weight", ...)``; slth
        0.1 returned ``("weights[0]", "biases[0]", "weights[1]", ...)``, which
        :func:`resolve_name` maps to these (and :class:`slth.Ticket` accepts).

        Returns
        -------
        tuple of str
        """
        return tuple(self.param_specs())

    def fingerprint(self) -> str:
        """A hash of the network's architecture and weights, bit for bit.

        ``"sha256:<hex>"`` over the widths, which layers have biases and the raw
        float64 bytes of every parameter: two networks share a fingerprint
        exactly when they compute with the same arrays. A ticket records the
        fingerprint of the target it was built for
        (:attr:`slth.Ticket.target_fingerprint`) so that evaluating it against
        another target (for instance the unscaled original of a rescaled one)
        is caught.

        Returns
        -------
        str
        """
        h = hashlib.sha256()
        h.update(repr((self.widths, tuple(b is not None for b in self.biases))).encode())
        for p in self.parameters():
            h.update(np.ascontiguousarray(p, dtype=np.float64).tobytes())
        return "sha256:" + h.hexdigest()

    def parameter_layers(self) -> tuple[int, ...]:
        """Layer index of each entry of :meth:`parameters`.

        Returns
        -------
        tuple of int
            E.g. ``(0, 0, 1)`` for a two-layer net with a bias on layer 0 only.
        """
        out: list[int] = []
        for l, b in enumerate(self.biases):
            out.append(l)
            if b is not None:
                out.append(l)
        return tuple(out)

    # ------------------------------------------------------------------ evaluation
    def forward(self, x: ArrayLike, *, params: Mapping[str, Any] | None = None) -> np.ndarray:
        """Evaluate the network in float64.

        Parameters
        ----------
        x : array_like
            Inputs of shape ``(batch, d_0)``, or one input of shape ``(d_0,)``.
            Real and finite.
        params : Mapping[str, array_like], optional
            Parameters used instead of the network's own, by network name, as
            in :meth:`slth.nets.base.Network.forward` (a Dense weight may be a
            scipy.sparse matrix). Without it, the loop below, bit for bit the
            network's own pass.

        Returns
        -------
        numpy.ndarray
            float64 outputs of shape ``(batch, d_L)``, or ``(d_L,)`` for a 1-D ``x``.

        Raises
        ------
        ShapeError
            ``x`` is not 1-D or 2-D or its last dimension is not ``d_0``.
        InputError
            ``x`` has non-real or non-finite entries.
        """
        if params is not None:
            return Network.forward(self, x, params=params)
        h, single = check_input(x, self.widths[0])
        last = self.depth - 1
        for l, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w.T
            if b is not None:
                h += b
            if l < last:
                np.maximum(h, 0.0, out=h)
        return h[0] if single else h

    __call__ = forward

    def spectral_norms(self) -> np.ndarray:
        """Spectral norm (largest singular value) of each weight matrix.

        Returns
        -------
        numpy.ndarray
            float64 array of shape ``(L,)`` with ``||W_l||_2``.
        """
        return np.array(
            [float(np.linalg.svd(w, compute_uv=False)[0]) for w in self.weights],
            dtype=np.float64,
        )

    # ------------------------------------------------------------------ construction
    @classmethod
    def random(
        cls,
        widths: Sequence[int],
        *,
        rng: RNGLike,
        init: str = "uniform",
        scale: float = 1.0,
        bias: bool = False,
    ) -> MLP:
        """Draw a network with i.i.d. entries.

        Parameters
        ----------
        widths : sequence of int
            ``(d_0, ..., d_L)``, at least two positive ints.
        rng : int, numpy.random.Generator, numpy.random.SeedSequence or None
            Randomness. All arrays come from ONE generator, drawn in the order
            ``W_0, b_0, W_1, b_1, ...``, so the same seed gives the same bits.
        init : {"uniform", "normal", "product", "hyperbolic"}, default "uniform"
            Law of every entry: ``"uniform"`` is U[-scale, scale] (the source law
            of Pensia et al. 2020, Theorem 1), ``"normal"`` N(0, scale^2); the
            others are the laws of :func:`slth.subset_sum.sample`, multiplied by
            ``scale``.
        scale : float, default 1.0
            Positive, finite multiplier of every entry.
        bias : bool, default False
            Draw a bias vector for every layer (same law as the weights).

        Returns
        -------
        MLP

        Raises
        ------
        InputError
            Bad ``widths``, unknown ``init``, non-positive ``scale``, bad ``rng``.
        """
        from ..subset_sum import sample

        ws = _check_widths(widths)
        if init not in INITS:
            raise InputError(f"`init` must be one of {INITS}; received {init!r}")
        if isinstance(scale, (bool, np.bool_)) or not isinstance(
            scale, (int, float, np.integer, np.floating)
        ):
            raise InputError(f"`scale` must be a finite number > 0; received {scale!r}")
        if not np.isfinite(scale) or scale <= 0:
            raise InputError(f"`scale` must be a finite number > 0; received {scale!r}")
        if not isinstance(bias, (bool, np.bool_)):
            raise InputError(f"`bias` must be a bool; received {bias!r}")
        gen = as_generator(rng)
        weights: list[np.ndarray] = []
        biases: list[np.ndarray | None] = []
        for d_in, d_out in itertools.pairwise(ws):
            weights.append(sample(init, (d_out, d_in), rng=gen, scale=float(scale)))
            biases.append(sample(init, (d_out,), rng=gen, scale=float(scale)) if bias else None)
        return cls(tuple(weights), tuple(biases))

    def with_params(self, params: Sequence[ArrayLike] | Mapping[str, ArrayLike]) -> MLP:
        """Same architecture, new parameter arrays.

        Parameters
        ----------
        params : sequence of array_like, or Mapping[str, array_like]
            Aligned with :meth:`parameters` (same order, same shapes; None biases
            stay None); or, as for a network, a mapping from parameter names
            (network names or their aliases) to arrays, names not given keeping
            their arrays.

        Returns
        -------
        MLP

        Raises
        ------
        ShapeError
            Wrong number of arrays or a wrong shape.
        InputError
            Non-real or non-finite entries.
        """
        names = self.parameter_names()
        if isinstance(params, Mapping):
            given = {resolve_name(k) if isinstance(k, str) else k: v for k, v in params.items()}
            checked = self._check_params(given, partial=True, what="params", sparse=False)
            merged = {**self.params, **checked}
            params = [merged[n] for n in names]
        if isinstance(params, np.ndarray) or not isinstance(params, Sequence):
            raise InputError(
                f"`params` must be a sequence of {len(names)} arrays; received "
                f"{format_value(params)}"
            )
        if len(params) != len(names):
            raise ShapeError(
                f"`params` must hold {len(names)} arrays ({', '.join(names)}); received "
                f"{len(params)}"
            )
        arrays = []
        for name, ref, p in zip(names, self.parameters(), params, strict=True):
            arr = np.asarray(p)
            if arr.shape != ref.shape:
                raise ShapeError(
                    f"`params` entry {name} must have shape {ref.shape}; received shape "
                    f"{arr.shape}"
                )
            arrays.append(arr)
        it = iter(arrays)
        weights = []
        biases: list[np.ndarray | None] = []
        for b in self.biases:
            weights.append(next(it))
            biases.append(next(it) if b is not None else None)
        return MLP(tuple(weights), tuple(biases))

    @classmethod
    def load(cls, path: Any) -> MLP:
        """Read an MLP saved with :meth:`save` (a network file of Dense and ReLU layers).

        Parameters
        ----------
        path : str or os.PathLike

        Returns
        -------
        MLP

        Raises
        ------
        InputError
            Not a network file, or a network that is not an MLP.
        """
        from .io import load_network, mlp_from_network

        return mlp_from_network(load_network(path))

    # ------------------------------------------------------------------ torch
    def to_torch(self) -> torch.nn.Sequential:
        """Convert to ``torch.nn.Sequential`` of ``Linear``/``ReLU`` in float64 on CPU.

        Requires torch (imported here, not by ``import slth``). The round trip
        ``MLP.from_torch(net.to_torch())`` is exact. For other dtypes or devices
        use :func:`slth.torch.to_torch`.

        Returns
        -------
        torch.nn.Sequential
        """
        from .._backends import torch_bridge

        return torch_bridge().to_torch(self, device="cpu", dtype="float64")  # type: ignore[no-any-return]

    @classmethod
    def from_torch(cls, module: Any) -> MLP:
        """Read an MLP from a ``torch.nn.Sequential`` of ``Linear`` and ``ReLU``.

        Parameters
        ----------
        module : torch.nn.Sequential or torch.nn.Linear
            ``Linear, ReLU, Linear, ..., Linear``: exactly one ReLU between
            consecutive Linear layers and none after the last. Weights are
            converted to float64 (exact from float32 or float64).

        Returns
        -------
        MLP

        Raises
        ------
        InputError
            Any other module type or layer order.
        ShapeError
            Layer sizes that do not chain.
        """
        from .._backends import torch_bridge

        return torch_bridge().mlp_from_torch(module)  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        bias = "none"
        if self.has_biases:
            bias = "all" if all(b is not None for b in self.biases) else "some"
        return f"MLP(widths={self.widths}, biases={bias}, n_params={self.n_params})"


def check_input(x: ArrayLike, d_in: int, name: str = "x") -> tuple[np.ndarray, bool]:
    """Validate network inputs; return a 2-D float64 array and whether ``x`` was 1-D.

    Parameters
    ----------
    x : array_like
        ``(batch, d_in)`` or ``(d_in,)``.
    d_in : int
        Expected input width.
    name : str
        Parameter name used in error messages.

    Returns
    -------
    (numpy.ndarray, bool)
        The inputs as a 2-D float64 array (a copy is made only when needed) and
        True when ``x`` was a single 1-D input.
    """
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"`{name}` must be an array of real numbers; received {format_value(x)}"
        ) from exc
    if arr.dtype.kind not in "iuf":
        raise InputError(
            f"`{name}` must hold real numbers (int or float dtype); received {format_value(arr)}"
        )
    if arr.ndim not in (1, 2) or arr.shape[-1] != d_in:
        raise ShapeError(
            f"`{name}` must have shape (batch, {d_in}) or ({d_in},); received shape {arr.shape}"
        )
    arr = np.asarray(arr, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise InputError(f"`{name}` must be finite; received NaN or infinite entries")
    single = arr.ndim == 1
    return (arr[None, :] if single else arr), single
