"""Networks in and out: one ``.npz`` file per network, and the bridge to :class:`MLP`.

File format (``FORMAT_VERSION`` 1): a zip archive written by ``numpy.savez``
(or ``savez_compressed``) holding

- ``"__slth_network__"``: UTF-8 JSON as a uint8 array: ``{"format":
  "slth.Network", "version": 1, "slth_version", "input_shape", "layers",
  "params"}``, where ``layers`` lists each layer as ``{"name", "type",
  "fields"}`` (``type`` the name it was registered under with
  :func:`slth.nets.base.register_layer`, ``fields`` its dataclass fields) or
  ``{"name", "type": "residual", "body": [...]}``, and ``params`` lists the
  parameter names in order;
- one float64 array per parameter, stored under the parameter's name
  (``"layers.0.weight"``), bit for bit.

Nothing is pickled: files are read with ``numpy.load(..., allow_pickle=False)``
and the layers are rebuilt from the registry, so a layer type defined outside
slth loads once the module that registers it is imported.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError, SLTHError, format_value
from .base import Network, _build, _check_savable
from .layers import Dense, ReLU

if TYPE_CHECKING:  # pragma: no cover
    from .mlp import MLP

__all__ = ["FORMAT_VERSION", "load_network", "mlp_from_network", "network_from_mlp",
           "save_network"]

#: Version of the network file format written by :func:`save_network`.
FORMAT_VERSION: int = 1
_FORMAT_NAME = "slth.Network"
_META_KEY = "__slth_network__"


def save_network(net: Network, path: str | os.PathLike[str], *, compress: bool = False) -> None:
    """Write ``net`` to one ``.npz`` file (format in the module docstring).

    Parameters
    ----------
    net : Network
        Every layer type in it must be registered
        (:func:`slth.nets.base.register_layer`).
    path : str or os.PathLike
        Destination, written exactly there (no suffix is appended); an existing
        file is overwritten.
    compress : bool, default False
        ``numpy.savez_compressed`` instead of ``numpy.savez`` (random float64
        arrays barely compress; masked or structured ones may).

    Raises
    ------
    InputError
        ``net`` is not a Network, or holds a layer type that is not registered
        or whose fields are not ints, floats, bools, strings, None or tuples.
    """
    if not isinstance(net, Network):
        raise InputError(f"`net` must be a slth.nets.Network; received {format_value(net)}")
    if not isinstance(compress, (bool, np.bool_)):
        raise InputError(f"`compress` must be a bool; received {compress!r}")
    _check_savable(net)
    from .. import __version__

    arch = net.architecture()
    meta = {
        "format": _FORMAT_NAME,
        "version": FORMAT_VERSION,
        "slth_version": __version__,
        "input_shape": arch["input_shape"],
        "layers": arch["layers"],
        "params": list(net.params),
    }
    arrays: dict[str, np.ndarray] = dict(net.params)
    text = json.dumps(meta, allow_nan=True)
    arrays[_META_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    writer = np.savez_compressed if compress else np.savez
    with open(os.fspath(path), "wb") as fh:
        writer(fh, **arrays)


def load_network(path: str | os.PathLike[str]) -> Network:
    """Read a network written by :func:`save_network`, bit for bit.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    Network

    Raises
    ------
    InputError
        One line saying why: no such file, not a pickle-free ``.npz``, not a
        network file or of another format version, a layer type not registered
        in this process, a missing or non-float64 array, or arrays that do not
        fit the layers.
    """
    fname = os.fspath(path)
    if not os.path.isfile(fname):
        raise InputError(f"`path` must name an existing network file; {fname!r} does not exist")
    try:
        return _read(fname)
    except SLTHError as exc:
        text = " ".join(str(exc).split())
        if text.startswith("`path`"):
            raise InputError(text) from None
        raise InputError(f"`path` {fname!r}: {text}") from None
    except (OSError, ValueError, KeyError, TypeError, IndexError, EOFError,
            zipfile.BadZipFile) as exc:
        # numpy's own messages (its advice to pass allow_pickle=True, which a network
        # file never needs) would mislead: say what the file is not
        raise InputError(
            f"`path` must name a network .npz file written by save_network; {fname!r} is not "
            f"one (unreadable as a pickle-free .npz archive: {type(exc).__name__})"
        ) from None


def _read(fname: str) -> Network:
    where = f"`path` {fname!r}"
    loaded = np.load(fname, allow_pickle=False)
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise InputError(
            f"`path` must name a network .npz file written by save_network; {fname!r} holds a "
            "single .npy array"
        )
    with loaded as f:
        if _META_KEY not in f.files:
            raise InputError(
                f"`path` must name a network .npz file written by save_network; {fname!r} has "
                f"no {_META_KEY!r} entry"
            )
        raw = f[_META_KEY]
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise InputError(f"{where}: the {_META_KEY!r} entry is not UTF-8 JSON bytes")
        try:
            meta = json.loads(bytes(raw).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{where}: unreadable network metadata ({type(exc).__name__})") \
                from None
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT_NAME:
            got = meta.get("format") if isinstance(meta, dict) else None
            raise InputError(
                f"`path` must name a {_FORMAT_NAME} file; {fname!r} has format {got!r}"
            )
        if meta.get("version") != FORMAT_VERSION:
            raise InputError(
                f"`path` must name a {_FORMAT_NAME} file of format version {FORMAT_VERSION}; "
                f"{fname!r} has version {meta.get('version')!r} (written by slth "
                f"{meta.get('slth_version')!r}; load it with that version and save it again)"
            )
        layers_meta = meta.get("layers")
        names = meta.get("params")
        if not isinstance(layers_meta, list) or not isinstance(names, list):
            raise InputError(f"{where}: network metadata lacks its layer or parameter list")
        layers = tuple(_build(d, where) for d in layers_meta)
        params: dict[str, np.ndarray] = {}
        for key in names:
            if not isinstance(key, str) or key not in f.files:
                raise InputError(f"{where}: the network file lacks the parameter {key!r}")
            arr = f[key]
            if arr.dtype != np.float64:
                raise InputError(
                    f"{where}: parameter {key!r} must be stored as float64; it holds "
                    f"{format_value(arr)}"
                )
            params[key] = arr
        input_shape: Any = meta.get("input_shape")
    if not isinstance(input_shape, list):
        raise InputError(f"{where}: network metadata lacks its input shape")
    return Network(layers, params, tuple(input_shape))


# ====================================================================== MLP bridge
def network_from_mlp(mlp: MLP) -> Network:
    """The :class:`Network` computing what ``mlp`` computes, sharing its arrays.

    Layers ``Dense, ReLU, Dense, ..., Dense`` named by position (``"0"``,
    ``"1"``, ...), so weight ``l`` is ``"layers.<2l>.weight"`` and bias ``l``
    (where the MLP has one) ``"layers.<2l>.bias"``: the keys of the
    ``state_dict`` of the ``torch.nn.Sequential`` that ``MLP.to_torch`` builds,
    behind ``"layers."``. No array is copied, and the forward pass agrees with
    :meth:`MLP.forward` bit for bit.

    Parameters
    ----------
    mlp : MLP

    Returns
    -------
    Network
    """
    from .mlp import MLP

    if not isinstance(mlp, MLP):
        raise InputError(f"`mlp` must be a slth.nets.MLP; received {format_value(mlp)}")
    # an MLP is such a network already: the plain Network of its layers and arrays
    return Network(mlp.layers, dict(mlp.params), mlp.input_shape)


def mlp_from_network(net: Network) -> MLP:
    """The :class:`MLP` computing what ``net`` computes, sharing its arrays.

    Parameters
    ----------
    net : Network
        Layers ``Dense, ReLU, Dense, ..., ReLU, Dense`` (any names): Dense and
        ReLU alternating, starting and ending with a Dense; no residual block.

    Returns
    -------
    MLP

    Raises
    ------
    InputError
        Any other layer sequence (the message names the first layer that does
        not fit).
    """
    from .mlp import MLP

    if isinstance(net, MLP):
        return net
    if not isinstance(net, Network):
        raise InputError(f"`net` must be a slth.nets.Network; received {format_value(net)}")
    if net.input_shape is not None and len(net.input_shape) != 1:
        raise InputError(
            f"`net` must take vector inputs to be an MLP; its input_shape is {net.input_shape} "
            "(Dense layers on token sequences act per token: keep it a Network)"
        )
    weights: list[np.ndarray] = []
    biases: list[np.ndarray | None] = []
    n = len(net.layers)
    for i, (name, layer) in enumerate(net.layers):
        want: type = Dense if i % 2 == 0 else ReLU
        if type(layer) is not want:
            raise InputError(
                f"`net` must alternate Dense and ReLU layers, starting and ending with Dense, to "
                f"be an MLP; layer `layers.{name}` (position {i}) is {layer!r}, expected a "
                f"{want.__name__}"
            )
        if isinstance(layer, Dense):
            weights.append(net.params[f"layers.{name}.weight"])
            biases.append(net.params[f"layers.{name}.bias"] if layer.bias else None)
    if n % 2 == 0:
        name = net.layers[-1][0]
        raise InputError(
            f"`net` must end with a Dense layer to be an MLP; its last layer `layers.{name}` is "
            f"{net.layers[-1][1]!r}"
        )
    return MLP(tuple(weights), tuple(biases))
