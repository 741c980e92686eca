"""Network specs: plain immutable weight containers with float64 numpy forward passes.

Targets and random sources are both :class:`MLP` instances; a construction reads
them and returns a :class:`slth.Ticket` (a mask over the source).
"""

from .mlp import INITS, MLP

__all__ = ["INITS", "MLP"]
