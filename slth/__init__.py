"""slth: strong lottery tickets, constructed.

A large enough randomly initialised network contains a subnetwork that, by
masking alone, approximates any target network of bounded weights. slth builds
those masks as the proofs do (from many random subset-sum problems), measures
the approximation error and checks each theorem's bound numerically.

``import slth`` never imports torch; the torch backend lives in ``slth.torch``.
"""

from . import (
    bounds,
    certify,
    constructions,
    evaluate,
    nets,
    sources,
    subset_sum,
    sweeps,
    trials,
)
from ._memory import available_memory, memory_budget, set_memory_budget, using_memory_budget
from ._rng import as_generator, spawn
from .errors import (
    CertificateError,
    ConstructionError,
    InputError,
    LimitError,
    ShapeError,
    SLTHError,
)
from .evaluate import ErrorReport, approximation_error, certified_bound
from .nets import MLP, Network
from .sources import DenseSource, Source, VirtualSource
from .stats import Estimate, clopper_pearson, estimate
from .ticket import Ticket

__version__ = "0.1.0"

__all__ = [
    "MLP",
    "CertificateError",
    "ConstructionError",
    "DenseSource",
    "ErrorReport",
    "Estimate",
    "InputError",
    "LimitError",
    "Network",
    "SLTHError",
    "ShapeError",
    "Source",
    "Ticket",
    "VirtualSource",
    "__version__",
    "approximation_error",
    "as_generator",
    "available_memory",
    "bounds",
    "certified_bound",
    "certify",
    "clopper_pearson",
    "constructions",
    "estimate",
    "evaluate",
    "memory_budget",
    "nets",
    "set_memory_budget",
    "sources",
    "spawn",
    "subset_sum",
    "sweeps",
    "trials",
    "using_memory_budget",
]
