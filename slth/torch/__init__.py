"""Torch backend: convert networks and tickets, evaluate them on CPU or CUDA.

Imported only on demand (``import slth`` never imports torch; core code reaches
this module at call time through :func:`slth._backends.torch_bridge`).
Everything here accepts an :class:`slth.nets.MLP`, an :class:`slth.Ticket` or
an :class:`slth.nets.Network` and gives the same function as the numpy forward
pass, up to the float tolerance below.

Networks go through a per-layer-type table (:func:`register_torch_layer`,
:func:`network_to_torch`, :func:`network_from_torch`; Dense, ReLU and Residual
are built in): a layer type defined anywhere joins the backend by registering
its torch builder, with no change here.

Float tolerance
---------------
Let ``a(x)`` be the *magnitude network*: the forward pass with every weight,
bias and input replaced by its absolute value (:func:`rounding_scale`). For
every output entry,

    ``|forward_torch(x) - forward_numpy(x)| <= rtol * (depth + 1) * a(x) + atol``

with ``rtol = FLOAT32_RTOL = 1e-5``, ``atol = FLOAT32_ATOL = 1e-30`` in float32
and ``FLOAT64_RTOL = 1e-13``, ``FLOAT64_ATOL = 1e-300`` in float64
(:func:`tolerance` returns the right-hand side). ``atol`` covers underflow:
float32 flushes magnitudes below about 1e-38 (1e-45 for subnormals) to zero,
whatever their relative size. Parameters or inputs beyond float32's range
(about 3.4e38) raise :class:`slth.errors.LimitError` in float32. The factor
``depth + 1`` comes from one rounding per layer plus the input cast; ``rtol``
assumes the usual random-rounding behaviour of dot products (error about
``sqrt(fan_in)`` units in the last place) and holds with margin for fan-ins up
to about 10^5. The worst-case (adversarial rounding) constant is
``fan_in * 2**-24`` instead. It assumes TF32 matmuls are off (torch's default;
see ``torch.backends.cuda.matmul.allow_tf32``); with TF32 on, float32 results
are only good to about 1e-3 relative.

For a :class:`~slth.nets.Network`, ``a(x)`` is its forward pass with every
parameter and the input replaced by their absolute values, and ``depth`` counts
the rounding stages along the longest path (:func:`rounding_depth`): one per
layer with parameters and one per residual addition; parameter-free layers
(ReLU) are exact and count 0, so a network of Dense and ReLU layers has the
depth of the equivalent MLP. For layer types other than Dense, ReLU and
Residual the bound holds when the layer computes sums of products of its
parameters and inputs (an elementwise scaling, say) followed by exact
operations.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

try:
    import torch
    from torch import nn
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "slth.torch needs PyTorch; install a CPU or CUDA build with pip (e.g. "
        "`pip install torch`), or use the numpy forward passes in slth.nets / slth.Ticket"
    ) from exc

from ..errors import InputError, LimitError, ShapeError, format_value
from ..nets.base import Layer, Network, Residual
from ..nets.mlp import MLP
from ..sources import VirtualMLP
from ..ticket import SPARSE_DENSITY_THRESHOLD, Ticket, source_bias_layers
from . import _conv  # noqa: F401  (registers the conv entries)
from ._attention import MultiHeadAttentionModule, SelfAttention, multihead_attention_module
from ._common import FLOAT32_MAX as _FLOAT32_MAX
from ._common import as_device as _device
from ._common import as_dtype as _dtype
from ._common import default_device
from ._common import tensor as _tensor
from ._construct import construct_pensia2020
from ._evaluate import approximation_error
from ._philox import materialise, source_entries
from ._prune import from_module, ticket_from_module, to_module
from ._table import (
    BuildContext,
    ReadContext,
    ResidualBlock,
    SparseLinear,
    TorchLayer,
    _build_sequence,
    network_from_torch,
    network_module,
    network_to_torch,
    register_torch_layer,
    torch_layers,
    unregister_torch_layer,
)

__all__ = [
    "FLOAT32_ATOL",
    "FLOAT32_RTOL",
    "FLOAT64_ATOL",
    "FLOAT64_RTOL",
    "BuildContext",
    "MultiHeadAttentionModule",
    "ReadContext",
    "ResidualBlock",
    "SelfAttention",
    "SparseLinear",
    "TorchLayer",
    "approximation_error",
    "construct_pensia2020",
    "default_device",
    "forward",
    "from_module",
    "materialise",
    "max_abs_error",
    "mlp_from_torch",
    "multihead_attention_module",
    "network_from_torch",
    "network_to_torch",
    "register_torch_layer",
    "rounding_depth",
    "rounding_scale",
    "source_entries",
    "ticket_from_module",
    "to_module",
    "to_torch",
    "tolerance",
    "torch_layers",
    "unregister_torch_layer",
]

#: Relative float32 tolerance of the torch forward pass (see the module docstring).
FLOAT32_RTOL: float = 1e-5
#: Relative float64 tolerance of the torch forward pass (see the module docstring).
FLOAT64_RTOL: float = 1e-13
#: Absolute float32 tolerance (underflow) of the torch forward pass.
FLOAT32_ATOL: float = 1e-30
#: Absolute float64 tolerance (underflow) of the torch forward pass.
FLOAT64_ATOL: float = 1e-300

Net = MLP | Ticket | Network


# ---------------------------------------------------------------------- helpers
def _check_net(net: Any, name: str) -> Net:
    if not isinstance(net, (MLP, Ticket, Network)):
        raise InputError(
            f"`{name}` must be a slth.nets.MLP, a slth.nets.Network or a slth.Ticket; "
            f"received {type(net).__name__}"
        )
    return net


def _mlp_like(net: Any) -> bool:
    """An MLP, or a ticket over an MLP source (dense or virtual): the Linear/ReLU path."""
    if isinstance(net, Ticket):
        return isinstance(net.source, (MLP, VirtualMLP))
    return isinstance(net, MLP)


def _shapes(net: Net) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Per-example input and output shapes."""
    if _mlp_like(net):
        widths = _source(net).widths
        return (widths[0],), (widths[-1],)
    src = net.source if isinstance(net, Ticket) else net
    assert src.input_shape is not None
    return tuple(src.input_shape), tuple(src.output_shape)


def _chunk(
    xs: Any, start: int, size: int, device: torch.device, dtype: torch.dtype, name: str
) -> Any:
    part = xs[start : start + size]
    if isinstance(part, torch.Tensor):
        if dtype == torch.float32 and part.numel() and float(part.abs().max()) > _FLOAT32_MAX:
            raise LimitError(
                f"`{name}` holds values beyond the float32 range; use dtype=torch.float64"
            )
        return part.to(device=device, dtype=dtype)
    return _tensor(part, dtype, device, name)


def _source(net: MLP | Ticket) -> MLP:
    return net.source if isinstance(net, Ticket) else net


def _layer_ops(
    net: MLP | Ticket, device: torch.device, dtype: torch.dtype, name: str = "net"
) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """Per-layer (weight, bias) tensors on ``device``; sparse CSR for sparse ticket layers."""
    if isinstance(net, MLP):
        return [(_tensor(w, dtype, device, name),
                 None if b is None else _tensor(b, dtype, device, name))
                for w, b in zip(net.weights, net.biases, strict=True)]
    # a ticket: only its kept entries (sorted flat indices and the source's values), so a
    # ticket over a virtual source runs here too without drawing the source
    src = net.source
    widths = src.widths
    names = iter(src.parameter_names())  # weight 0, bias 0 (if any), weight 1, ...
    ops = []
    for l, has_bias in enumerate(source_bias_layers(src)):
        shape = (widths[l + 1], widths[l])
        wname = next(names)
        bname = next(names) if has_bias else None
        idx, vals = net.kept_entries(wname)
        if idx.size < SPARSE_DENSITY_THRESHOLD * shape[0] * shape[1]:
            rows, col = np.divmod(idx, shape[1])        # row-major: rows nondecreasing
            crow = np.zeros(shape[0] + 1, dtype=np.int64)
            np.cumsum(np.bincount(rows, minlength=shape[0]), out=crow[1:])
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
                wt = torch.sparse_csr_tensor(
                    _tensor(crow, torch.int64, device),
                    _tensor(col.astype(np.int64), torch.int64, device),
                    _tensor(vals, dtype, device, name),
                    size=shape,
                    check_invariants=False,
                )
        else:
            dense = np.zeros(shape)
            dense.ravel()[idx] = vals
            wt = _tensor(dense, dtype, device, name)
        bt = None
        if bname is not None:
            bidx, bvals = net.kept_entries(bname)
            bv = np.zeros(shape[0])
            bv[bidx] = bvals
            bt = _tensor(bv, dtype, device, name)
        ops.append((wt, bt))
    return ops


def _run(ops: list[tuple[torch.Tensor, torch.Tensor | None]], x: torch.Tensor) -> torch.Tensor:
    """Forward pass on a (batch, d_0) tensor; activations kept as (width, batch)."""
    h = x.T.contiguous()
    last = len(ops) - 1
    for l, (w, b) in enumerate(ops):
        h = w @ h
        if b is not None:
            h = h + b[:, None]
        if l < last:
            h = torch.relu(h)
    return h.T


def _evaluator(net: Net, device: torch.device, dtype: torch.dtype, name: str
               ) -> Callable[[torch.Tensor], torch.Tensor]:
    """The forward pass on ``(batch, *input_shape)`` tensors, parameters on ``device``."""
    if isinstance(net, Ticket) and not _mlp_like(net):
        # any other ticket: the source's layers through the table, with the masked
        # parameters Ticket.forward uses (scipy CSR for sparse Dense weights)
        return _build_sequence(net.source.layers, net._operators("auto"), "layers.", "layers.",
                               device, dtype, name)
    if not _mlp_like(net):
        return network_module(net, None, device, dtype, name)
    ops = _layer_ops(net, device, dtype, name)
    return lambda x: _run(ops, x)


def _shape_text(shape: Sequence[int]) -> str:
    return f"(batch, {', '.join(map(str, shape))}) or {tuple(shape)}"


def _inputs(x: Any, shape: Sequence[int], name: str) -> tuple[Any, bool, bool]:
    """Validate inputs; return (batched array or tensor, was_single, is_tensor)."""
    shape = tuple(shape)
    if isinstance(x, torch.Tensor):
        if x.is_complex() or not (x.is_floating_point() or x.dtype in _INT_DTYPES):
            raise InputError(f"`{name}` must hold real numbers; received dtype {x.dtype}")
        got = tuple(x.shape)
        if got != shape and got[1:] != shape:
            raise ShapeError(
                f"`{name}` must have shape {_shape_text(shape)}; received shape {got}"
            )
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):
            raise InputError(f"`{name}` must be finite; received NaN or infinite entries")
        single = got == shape
        return (x[None] if single else x), single, True
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
    if arr.shape != shape and arr.shape[1:] != shape:
        raise ShapeError(
            f"`{name}` must have shape {_shape_text(shape)}; received shape {arr.shape}"
        )
    arr = np.asarray(arr, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise InputError(f"`{name}` must be finite; received NaN or infinite entries")
    single = arr.shape == shape
    return (arr[None] if single else arr), single, False


_INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


# ---------------------------------------------------------------------- conversion
def to_torch(
    net: Net, *, device: Any = None, dtype: torch.dtype | str = torch.float32
) -> nn.Sequential:
    """Convert an MLP, a ticket or a network to a ``torch.nn.Sequential``.

    Parameters
    ----------
    net : MLP, Ticket or Network
        For a ticket the module holds the masked weights ``source * mask``
        (dense; pruned entries are 0). A :class:`~slth.nets.Network` is built
        through the torch table, as :func:`network_to_torch` builds it.
    device : torch.device or str, optional
        Default: ``cuda`` when available, else ``cpu``.
    dtype : {torch.float32, torch.float64, "float32", "float64"}, default torch.float32
        Parameter dtype. float64 is exact: ``mlp_from_torch(to_torch(m,
        dtype=torch.float64))`` returns the same bits (``network_from_torch``
        for a network).

    Returns
    -------
    torch.nn.Sequential
        For an MLP or a ticket: ``Linear`` layers (``bias=False`` where the MLP
        layer has no bias) separated by ``ReLU``, no ReLU after the last layer.
        For a network: one child per layer, named as the network names it.
    """
    net = _check_net(net, "net")
    dev, dt = _device(device), _dtype(dtype)
    if isinstance(net, Ticket) and not _mlp_like(net):
        return _build_sequence(net.source.layers, net.masked_params(), "layers.", "layers.",
                               dev, dt, "net")
    if not _mlp_like(net):
        return network_module(net, None, dev, dt, "net")
    mlp = net.network() if isinstance(net, Ticket) else net
    layers: list[nn.Module] = []
    for l, (w, b) in enumerate(zip(mlp.weights, mlp.biases, strict=True)):
        lin = nn.Linear(w.shape[1], w.shape[0], bias=b is not None, device=dev, dtype=dt)
        with torch.no_grad():
            lin.weight.copy_(_tensor(w, dt, dev))
            if b is not None:
                lin.bias.copy_(_tensor(b, dt, dev))
        layers.append(lin)
        if l < mlp.depth - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def mlp_from_torch(module: Any) -> MLP:
    """Read an :class:`MLP` from a ``Sequential`` of ``Linear`` and ``ReLU`` modules.

    Parameters
    ----------
    module : torch.nn.Sequential or torch.nn.Linear
        ``Linear, ReLU, Linear, ..., Linear``: exactly one ``ReLU`` between
        consecutive ``Linear`` layers and none after the last (nested
        ``Sequential`` containers are flattened). Parameters are copied to CPU
        and converted to float64 (exact from float32/float64).

    Returns
    -------
    MLP

    Raises
    ------
    InputError
        Any other module type (the message names it and its position) or a
        wrong order of layers.
    ShapeError
        Layer sizes that do not chain.
    """
    if isinstance(module, nn.Linear):
        mods: list[nn.Module] = [module]
    elif isinstance(module, nn.Sequential):
        mods = _flatten(module)
    else:
        raise InputError(
            "`module` must be a torch.nn.Sequential of Linear and ReLU layers (or one "
            f"Linear); received {type(module).__name__}"
        )
    if not mods:
        raise InputError("`module` must contain at least one Linear layer; received empty")
    weights: list[np.ndarray] = []
    biases: list[np.ndarray | None] = []
    expect_linear = True
    for i, m in enumerate(mods):
        if isinstance(m, nn.Linear):
            if not expect_linear:
                raise InputError(
                    f"`module` must alternate Linear and ReLU; layer {i} is a Linear right "
                    "after another Linear"
                )
            weights.append(m.weight.detach().to("cpu", torch.float64).numpy().copy())
            biases.append(
                None if m.bias is None else m.bias.detach().to("cpu", torch.float64).numpy().copy()
            )
            expect_linear = False
        elif type(m) is nn.ReLU:
            if expect_linear:
                raise InputError(
                    f"`module` must alternate Linear and ReLU, starting and ending with Linear; "
                    f"layer {i} is a ReLU in a Linear position"
                )
            expect_linear = True
        else:
            raise InputError(
                f"`module` must contain only torch.nn.Linear and torch.nn.ReLU layers; layer "
                f"{i} is {type(m).__name__}"
            )
    if expect_linear:
        raise InputError("`module` must end with a Linear layer; received a trailing ReLU")
    for l in range(1, len(weights)):
        if weights[l].shape[1] != weights[l - 1].shape[0]:
            raise ShapeError(
                f"`module` Linear layers must chain: Linear {l} has in_features "
                f"{weights[l].shape[1]} but Linear {l - 1} has out_features "
                f"{weights[l - 1].shape[0]}"
            )
    return MLP(tuple(weights), tuple(biases))


def _flatten(seq: nn.Sequential) -> list[nn.Module]:
    out: list[nn.Module] = []
    for m in seq:
        if isinstance(m, nn.Sequential):
            out.extend(_flatten(m))
        else:
            out.append(m)
    return out


# ---------------------------------------------------------------------- evaluation
def forward(
    net: Net,
    x: Any,
    *,
    device: Any = None,
    dtype: torch.dtype | str = torch.float32,
    batch_size: int | None = None,
) -> Any:
    """Batched forward pass of an MLP, a ticket or a network on CUDA (when available) or CPU.

    Ticket layers whose density is below
    :data:`slth.ticket.SPARSE_DENSITY_THRESHOLD` run as sparse CSR tensors, the
    others as dense masked weights, exactly as :meth:`slth.Ticket.forward`. A
    network runs as the module :func:`network_to_torch` builds.

    Parameters
    ----------
    net : MLP, Ticket or Network
        The network to evaluate.
    x : array_like or torch.Tensor
        Inputs ``(batch, d_0)`` or ``(d_0,)`` (``(batch, *input_shape)`` or
        ``input_shape`` for a network), real and finite.
    device : torch.device or str, optional
        Default: ``cuda`` when available, else ``cpu``.
    dtype : {torch.float32, torch.float64, "float32", "float64"}, default torch.float32
        Compute dtype. Results agree with the float64 numpy forward pass within
        :func:`tolerance` (``FLOAT32_RTOL * (depth + 1) * a(x) + FLOAT32_ATOL``
        in float32, see the module docstring).
    batch_size : int, optional
        Evaluate this many inputs at a time (default: all at once).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        float64 numpy array when ``x`` is array-like; a tensor of ``dtype`` on
        ``device`` when ``x`` is a tensor. Shape ``(batch, d_L)`` or ``(d_L,)``
        (``(batch, *output_shape)`` or ``output_shape`` for a network).
    """
    net = _check_net(net, "net")
    dev, dt = _device(device), _dtype(dtype)
    in_shape, out_shape = _shapes(net)
    xs, single, is_tensor = _inputs(x, in_shape, "x")
    n = int(xs.shape[0])
    bs = _batch_size(batch_size, n)
    run = _evaluator(net, dev, dt, "net")
    outs = []
    with torch.no_grad():
        for start in range(0, n, bs):
            chunk = _chunk(xs, start, bs, dev, dt, "x")
            outs.append(run(chunk))
        out = torch.cat(outs) if outs else torch.zeros((0, *out_shape), dtype=dt, device=dev)
    if single:
        out = out[0]
    if is_tensor:
        return out
    return out.to("cpu", torch.float64).numpy()


def _batch_size(batch_size: int | None, n: int) -> int:
    if batch_size is None:
        return max(n, 1)
    if (
        isinstance(batch_size, (bool, np.bool_))
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise InputError(f"`batch_size` must be an int >= 1 or None; received {batch_size!r}")
    return int(batch_size)


def max_abs_error(
    target: Net,
    ticket: Net,
    inputs: Any,
    *,
    device: Any = None,
    dtype: torch.dtype | str = torch.float64,
    batch_size: int = 65536,
    norm: Literal["max", "l2"] = "max",
) -> float:
    """Largest output error between two networks over many inputs, evaluated in chunks.

    Computes ``max_x ||target(x) - ticket(x)||`` over the rows ``x`` of
    ``inputs``, moving ``batch_size`` rows at a time to ``device``; only the
    networks' parameters and one chunk live on the device at once.

    Parameters
    ----------
    target, ticket : MLP, Ticket or Network
        Networks with the same input and output widths (shapes, for a
        :class:`~slth.nets.Network`; usually a target MLP and a ticket
        approximating it).
    inputs : array_like or torch.Tensor
        ``(N, d_0)`` inputs (``(N, *input_shape)``).
    device : torch.device or str, optional
        Default: ``cuda`` when available, else ``cpu``.
    dtype : {torch.float64, torch.float32, "float64", "float32"}, default torch.float64
        Compute dtype. float64 by default because ticket errors (1e-2 down to
        1e-6) sit close to float32 rounding; in float32 the result is only
        meaningful above ``2 * tolerance`` (see :func:`tolerance`).
    batch_size : int, default 65536
        Rows per chunk.
    norm : {"max", "l2"}, default "max"
        Norm of the output difference per input: largest absolute entry, or
        Euclidean norm (the norm of Pensia et al. 2020, Theorem 1; over all
        output entries for a multi-dimensional output).

    Returns
    -------
    float
        The largest per-input error (0.0 for no inputs).

    Raises
    ------
    ShapeError
        The networks' input or output widths differ, or ``inputs`` has the
        wrong shape.
    """
    target = _check_net(target, "target")
    ticket = _check_net(ticket, "ticket")
    if norm not in ("max", "l2"):
        raise InputError(f"`norm` must be 'max' or 'l2'; received {norm!r}")
    (t_in, t_out), (k_in, k_out) = _shapes(target), _shapes(ticket)
    if t_in != k_in or t_out != k_out:
        if not (_mlp_like(target) and _mlp_like(ticket)):
            raise ShapeError(
                f"`ticket` must map inputs of shape {t_in} to outputs of shape {t_out} like "
                f"`target`; received a network mapping {k_in} to {k_out}"
            )
        raise ShapeError(
            f"`ticket` must map {t_in[0]} inputs to {t_out[0]} outputs like `target`; "
            f"received a network of widths {_source(ticket).widths}"  # type: ignore[arg-type]
        )
    dev, dt = _device(device), _dtype(dtype)
    xs, _, _ = _inputs(inputs, t_in, "inputs")
    n = int(xs.shape[0])
    bs = _batch_size(batch_size, n)
    run_t = _evaluator(target, dev, dt, "target")
    run_k = _evaluator(ticket, dev, dt, "ticket")
    worst = torch.zeros((), dtype=dt, device=dev)
    with torch.no_grad():
        for start in range(0, n, bs):
            chunk = _chunk(xs, start, bs, dev, dt, "inputs")
            diff = (run_t(chunk) - run_k(chunk)).reshape(chunk.shape[0], -1)
            if norm == "max":
                err = diff.abs().amax()
            else:
                err = torch.linalg.vector_norm(diff, dim=1).amax()
            worst = torch.maximum(worst, err)
    return float(worst.item())


def rounding_scale(net: Net, x: Any) -> np.ndarray:
    """The magnitude network ``a(x)``: forward pass of ``|W|``, ``|b|`` on ``|x|`` (numpy).

    Every output entry of the forward pass is a sum of terms whose absolute
    values sum to at most ``a(x)``, so ``a(x)`` is the scale of its rounding
    error. For a ticket the masked weights are used; for a
    :class:`~slth.nets.Network`, its forward pass with every parameter replaced
    by its absolute value, on ``|x|``.

    Parameters
    ----------
    net : MLP, Ticket or Network
    x : array_like
        ``(batch, d_0)`` or ``(d_0,)`` (``(batch, *input_shape)`` or
        ``input_shape`` for a network).

    Returns
    -------
    numpy.ndarray
        float64, same shape as the network's output for ``x``.
    """
    net = _check_net(net, "net")
    in_shape, _ = _shapes(net)
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    arr, single, _ = _inputs(x, in_shape, "x")
    h = np.abs(arr)
    if _mlp_like(net):
        mlp = net.network() if isinstance(net, Ticket) else net
        for w, b in zip(mlp.weights, mlp.biases, strict=True):
            h = h @ np.abs(w).T
            if b is not None:
                h += np.abs(b)
    else:
        plain = net.network() if isinstance(net, Ticket) else net
        h = plain.forward(h, params={k: np.abs(v) for k, v in plain.params.items()})
    return h[0] if single else h


def _layers_depth(layers: Sequence[tuple[str, Layer]]) -> int:
    depth = 0
    for _, layer in layers:
        if isinstance(layer, Residual):
            depth += 1 + _layers_depth(layer.body)
        elif layer.param_specs():
            depth += 1
    return depth


def rounding_depth(net: Net) -> int:
    """The ``depth`` of the float tolerance: rounding stages along the longest path.

    Parameters
    ----------
    net : MLP, Ticket or Network

    Returns
    -------
    int
        An MLP's (a ticket's source's) number of layers; for a
        :class:`~slth.nets.Network`, one per layer with parameters plus, for
        each Residual, one (its addition) plus its body's depth (the skip path
        is never the longer one). Parameter-free layers count 0. A Network of
        Dense and ReLU layers has the depth of the equivalent MLP.
    """
    net = _check_net(net, "net")
    if _mlp_like(net):
        return _source(net).depth
    return _layers_depth(net.source.layers if isinstance(net, Ticket) else net.layers)


def tolerance(net: Net, x: Any, *, dtype: torch.dtype | str = torch.float32) -> np.ndarray:
    """Documented elementwise bound on ``|forward(net, x, dtype=dtype) - net.forward(x)|``.

    Parameters
    ----------
    net : MLP, Ticket or Network
    x : array_like
        ``(batch, d_0)`` or ``(d_0,)`` (``(batch, *input_shape)`` or
        ``input_shape`` for a network).
    dtype : {torch.float32, torch.float64, "float32", "float64"}, default torch.float32

    Returns
    -------
    numpy.ndarray
        ``rtol * (depth + 1) * rounding_scale(net, x) + atol`` with
        ``(rtol, atol)`` = (:data:`FLOAT32_RTOL`, :data:`FLOAT32_ATOL`) or
        (:data:`FLOAT64_RTOL`, :data:`FLOAT64_ATOL`) and ``depth`` =
        :func:`rounding_depth`.
    """
    f32 = _dtype(dtype) == torch.float32
    rtol, atol = (FLOAT32_RTOL, FLOAT32_ATOL) if f32 else (FLOAT64_RTOL, FLOAT64_ATOL)
    depth = rounding_depth(net)
    return rtol * (depth + 1) * rounding_scale(net, x) + atol
