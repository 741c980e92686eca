"""Constructions of strong lottery tickets, one module per paper and theorem.

Each module exposes ``construct(target, *, eps=None, delta=..., <width>=None,
C=..., rng=None, source=None, on_failure="raise") -> slth.Ticket``:

========================  =====================================================
module                    result
========================  =====================================================
:mod:`.pensia2020`        Pensia, Rajput, Nagle, Vishwakarma, Papailiopoulos,
                          NeurIPS 2020, Theorem 1: random subset sum per
                          weight, logarithmic width, depth 2l.
:mod:`.malach2020`        Malach, Yehudai, Shalev-Shwartz, Shamir, ICML 2020:
                          one random pair per weight, polynomial width, depth 2l.
========================  =====================================================

:func:`rescale` scales a target into the theorems' hypotheses
(``||W_l||_2 <= 1``, inputs in the unit ball) and says how the accuracy
transfers back; :func:`bounded_target` draws a random target that meets them;
:func:`nested_source` cuts a narrower source out of a wider one (width sweeps
over one random network).
"""

from . import malach2020, pensia2020
from ._common import RescaledTarget, bounded_target, nested_source, rescale, source_widths

__all__ = [
    "RescaledTarget",
    "bounded_target",
    "malach2020",
    "nested_source",
    "pensia2020",
    "rescale",
    "source_widths",
]
