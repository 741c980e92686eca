"""Testing helpers for users of slth: hypothesis strategies and the construction harness.

Needs hypothesis (``pip install hypothesis``); ``import slth`` does not import it.

>>> from slth.testing import strategies
>>> from slth.testing.strategies import bounded_targets, tickets
>>> from slth.testing.harness import check_construction, check_ticket
"""

from . import harness, strategies
from .harness import check_construction, check_ticket
from .strategies import bounded_targets, mlps, tickets, unit_ball_inputs, widths

__all__ = ["bounded_targets", "check_construction", "check_ticket", "harness", "mlps",
           "strategies", "tickets", "unit_ball_inputs", "widths"]
