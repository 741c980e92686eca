"""Network specs: plain immutable weight containers with float64 numpy forward passes.

Targets and random sources of the MLP constructions are :class:`MLP` instances; a
construction reads them and returns a :class:`slth.Ticket` (a mask over the source).
:class:`Network` is the typed-layer footing every architecture will share (named
layers, parameters keyed by dotted names, forward and vjp, ``.npz`` save/load, a
registry of layer types); :func:`network_from_mlp` / :func:`mlp_from_network`
bridge the two.
"""

from .base import (
    Architecture,
    Layer,
    Linearization,
    Network,
    Residual,
    layer_types,
    register_layer,
    registered_name,
)
from .io import load_network, mlp_from_network, network_from_mlp, save_network
from .layers import Dense, ReLU
from .mlp import INITS, MLP

__all__ = [
    "INITS",
    "MLP",
    "Architecture",
    "Dense",
    "Layer",
    "Linearization",
    "Network",
    "ReLU",
    "Residual",
    "layer_types",
    "load_network",
    "mlp_from_network",
    "network_from_mlp",
    "register_layer",
    "registered_name",
    "save_network",
]
