"""Constructions of strong lottery tickets, one module per paper and theorem.

Each module exposes ``construct(target, *, eps=None, delta=..., <width>=None,
C=..., rng=None, source=None, on_failure="raise") -> slth.Ticket``:

========================  =====================================================
module                    result
========================  =====================================================
:mod:`.pensia2020`        Pensia, Rajput, Nagle, Vishwakarma, Papailiopoulos,
                          NeurIPS 2020, Theorem 1: random subset sum per
                          weight, logarithmic width, depth 2l.
:mod:`.malach2020`        Malach, Yehudai, Shalev-Shwartz, Shamir, ICML 2020,
                          Theorem 2.1: one random pair per weight, each weight
                          owning its block of hidden units, polynomial width,
                          depth 2l.
:mod:`.single_pair`       Malach et al.'s single-pair selection on Pensia et
                          al.'s shared layout (a cheaper variant, not a paper's
                          construction): polynomial width, ``d_out`` times
                          smaller than Malach et al.'s.
:mod:`.burkholz2022`      Burkholz, ICML 2022 / NeurIPS 2022: depth L+1 (only
                          the first target layer doubled; rho copies per
                          neuron or channel), ReLU MLP and CNN targets.
:mod:`.dacunha2022`       da Cunha, Natale, Viennot, ICLR 2022: each target
                          convolution as a 1x1 channel-blocked sign-split
                          convolution and a k x k one chosen by subset sums
                          (Pensia et al.'s layout in channels), depth 2l.
========================  =====================================================

:data:`REGISTRY` lists them (name, paper, supported target layer types, certifier);
:func:`register_construction` adds a construction of your own.

:func:`rescale` scales a target into the theorems' hypotheses
(``||W_l||_2 <= 1``, inputs in the unit ball) and says how the accuracy
transfers back; :func:`bounded_target` draws a random target that meets them;
:func:`nested_source` cuts a narrower source out of a wider one (width sweeps
over one random network).

Shared code, by concern: :mod:`.targets` (target checks, rescaling, bounded
targets), :mod:`.layouts` (how a target layer maps onto source layers:
:mod:`.layouts.pair_dense`), :mod:`._realise` (the one per-layer loop: gather
-> one selection call -> scatter -> ticket) and :mod:`slth._validate` (argument
checks); :mod:`._common` re-exports all of their names.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .. import _validate
from ..certify import certified_bound
from ..errors import InputError, format_value
from . import (
    burkholz2022,
    dacunha2022,
    layouts,
    malach2020,
    otsuka2025,
    pensia2020,
    single_pair,
    targets,
)
from .layouts.pair_dense import nested_source, source_widths
from .targets import RescaledTarget, bounded_target, rescale


@dataclass(frozen=True)
class Construction:
    """One entry of :data:`REGISTRY`: what a construction is and what it supports.

    Attributes
    ----------
    name : str
        The name its tickets record (``Ticket.construction``).
    paper : str
        The paper and theorem it implements (or, for a variant, what it is).
    layer_types : tuple of str
        The target layer types it prunes (class names: ``"Dense"``, ``"ReLU"``).
    certifier : callable or None
        ``certifier(target, ticket, *, radius, check_target) -> float``: a
        rigorous upper bound on the sup error over the ball, raising
        :class:`slth.errors.InputError`/:class:`~slth.errors.ShapeError` when
        the ticket lacks the structure it relies on; None when the
        construction has none (its tickets are then reported uncertified).
    module : object or None
        The module exposing ``construct`` (None for a user's function).
    """

    name: str
    paper: str
    layer_types: tuple[str, ...]
    certifier: Callable[..., float] | None = None
    module: Any = None


_REGISTRY: dict[str, Construction] = {}
#: name -> :class:`Construction`, read-only; :func:`register_construction` adds to it.
REGISTRY: Mapping[str, Construction] = MappingProxyType(_REGISTRY)


def register_construction(name: str, *, paper: str, layer_types: tuple[str, ...],
                          certifier: Callable[..., float] | None = None,
                          module: Any = None, replace: bool = False) -> Construction:
    """Add a construction to :data:`REGISTRY` (so evaluation finds its certifier).

    Parameters
    ----------
    name : str
        The name its tickets record in ``Ticket.construction``.
    paper : str
        The paper and theorem (or what the variant is).
    layer_types : tuple of str
        Names of the target layer types it supports.
    certifier : callable, optional
        See :class:`Construction`. Without one, :func:`slth.evaluate.approximation_error`
        reports its tickets uncertified.
    module : object, optional
        The module or object exposing ``construct``.
    replace : bool, default False
        Replace an existing entry of the same name (otherwise an error).

    Returns
    -------
    Construction

    Raises
    ------
    InputError
        A bad name, a non-callable certifier, or a name already registered.
    """
    if not isinstance(name, str) or not name:
        raise InputError(f"`name` must be a non-empty str; received {format_value(name)}")
    if not isinstance(paper, str):
        raise InputError(f"`paper` must be a str; received {format_value(paper)}")
    if isinstance(layer_types, str) or not all(isinstance(t, str) for t in layer_types):
        raise InputError(f"`layer_types` must be a tuple of layer type names; received "
                         f"{format_value(layer_types)}")
    if certifier is not None and not callable(certifier):
        raise InputError(f"`certifier` must be callable or None; received "
                         f"{format_value(certifier)}")
    _validate.boolean("replace", replace)
    if name in _REGISTRY and not replace:
        raise InputError(f"`name` {name!r} is already registered ({_REGISTRY[name].paper}); "
                         "pass replace=True to replace it")
    entry = Construction(name, paper, tuple(layer_types), certifier, module)
    _REGISTRY[name] = entry
    return entry


register_construction(pensia2020.NAME, paper="Pensia et al., NeurIPS 2020, Theorem 1",
                      layer_types=("Dense", "ReLU"), certifier=certified_bound,
                      module=pensia2020)
register_construction(malach2020.NAME, paper="Malach et al., ICML 2020, Theorem 2.1",
                      layer_types=("Dense", "ReLU"), certifier=certified_bound,
                      module=malach2020)
register_construction(burkholz2022.NAME,
                      paper="Burkholz, ICML 2022 / NeurIPS 2022: depth L+1 (ReLU MLPs, CNNs "
                            "and residual networks)",
                      layer_types=("Conv2d", "Dense", "ReLU", "MaxPool2d", "AvgPool2d",
                                   "Flatten", "Residual"),
                      certifier=burkholz2022.certified_bound, module=burkholz2022)
register_construction(dacunha2022.NAME,
                      paper="da Cunha, Natale, Viennot, ICLR 2022 (abstract confirmed; the "
                            "construction read as Pensia et al. 2020 in channels; residual "
                            "blocks as slth's extension)",
                      layer_types=("Conv2d", "Dense", "ReLU", "MaxPool2d", "AvgPool2d",
                                   "Flatten", "Residual"),
                      certifier=dacunha2022.certified_bound, module=dacunha2022)
register_construction(otsuka2025.NAME,
                      paper="Otsuka et al., AAAI-26 (arXiv 2511.04217), Theorem 3 and the "
                            "normalisation-free transformer block (F by Pensia et al. 2020)",
                      layer_types=("MultiHeadAttention", "Residual", "Dense", "ReLU"),
                      certifier=otsuka2025.certified_bound, module=otsuka2025)
register_construction(single_pair.NAME,
                      paper="single-pair selection on the Pensia layout (variant)",
                      layer_types=("Dense", "ReLU"), certifier=certified_bound,
                      module=single_pair)

__all__ = [
    "REGISTRY",
    "Construction",
    "RescaledTarget",
    "bounded_target",
    "burkholz2022",
    "dacunha2022",
    "layouts",
    "malach2020",
    "nested_source",
    "otsuka2025",
    "pensia2020",
    "register_construction",
    "rescale",
    "single_pair",
    "source_widths",
    "targets",
]
