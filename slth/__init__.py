"""slth: strong lottery tickets, constructed.

A large enough randomly initialised network contains a subnetwork that, by
masking alone, approximates any target network of bounded weights. slth builds
those masks as the proofs do (from many random subset-sum problems), measures
the approximation error and checks each theorem's bound numerically.

``import slth`` never imports torch; the torch backend lives in ``slth.torch``.
"""

from . import subset_sum
from ._rng import as_generator, spawn
from .errors import ConstructionError, InputError, LimitError, ShapeError, SLTHError
from .stats import Estimate, clopper_pearson, estimate

__version__ = "0.1.0"

__all__ = [
    "ConstructionError",
    "Estimate",
    "InputError",
    "LimitError",
    "SLTHError",
    "ShapeError",
    "__version__",
    "as_generator",
    "clopper_pearson",
    "estimate",
    "spawn",
    "subset_sum",
]
