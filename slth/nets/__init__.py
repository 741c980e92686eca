"""Network specs: plain immutable weight containers with float64 numpy forward passes.

:class:`Network` is the typed-layer footing every architecture shares: named
layers, parameters keyed by dotted names, forward and vjp, ``.npz`` save/load, a
registry of layer types (:mod:`.layers`: Dense, ReLU; :mod:`.conv`: Conv2d,
MaxPool2d, AvgPool2d, Flatten; :mod:`.attention`: MultiHeadAttention,
transformer_block; :class:`Residual`). An :class:`MLP`, the targets and
sources of the MLP constructions, is such a network; :func:`network_from_mlp` /
:func:`mlp_from_network` convert a plain network of Dense/ReLU layers and back. A
construction reads a target and a source and returns a :class:`slth.Ticket` (a
mask over the source).
"""

from .attention import MultiHeadAttention, attention_scores, merged_matrices, transformer_block
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
from .conv import AvgPool2d, Conv2d, Flatten, MaxPool2d
from .io import load_network, mlp_from_network, network_from_mlp, save_network
from .layers import Dense, ReLU
from .mlp import INITS, MLP

__all__ = [
    "INITS",
    "MLP",
    "Architecture",
    "AvgPool2d",
    "Conv2d",
    "Dense",
    "Flatten",
    "Layer",
    "Linearization",
    "MaxPool2d",
    "MultiHeadAttention",
    "Network",
    "ReLU",
    "Residual",
    "attention_scores",
    "layer_types",
    "load_network",
    "merged_matrices",
    "mlp_from_network",
    "network_from_mlp",
    "register_layer",
    "registered_name",
    "save_network",
    "transformer_block",
]
