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
========================  =====================================================

:data:`REGISTRY` lists them (name, paper, supported target layer types).

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

from . import layouts, malach2020, pensia2020, single_pair, targets
from .layouts.pair_dense import nested_source, source_widths
from .targets import RescaledTarget, bounded_target, rescale

#: name -> (module, paper, supported target layer types).
REGISTRY: dict[str, tuple[object, str, tuple[str, ...]]] = {
    pensia2020.NAME: (pensia2020, "Pensia et al., NeurIPS 2020, Theorem 1", ("Dense", "ReLU")),
    malach2020.NAME: (malach2020, "Malach et al., ICML 2020, Theorem 2.1", ("Dense", "ReLU")),
    single_pair.NAME: (single_pair, "single-pair selection on the Pensia layout (variant)",
                       ("Dense", "ReLU")),
}

__all__ = [
    "REGISTRY",
    "RescaledTarget",
    "bounded_target",
    "layouts",
    "malach2020",
    "nested_source",
    "pensia2020",
    "rescale",
    "single_pair",
    "source_widths",
    "targets",
]
