"""Testing helpers for users of slth: hypothesis strategies for networks, inputs, tickets.

Needs hypothesis (``pip install hypothesis``); ``import slth`` does not import it.

>>> from slth.testing import strategies
>>> from slth.testing.strategies import bounded_targets, tickets
"""

from . import strategies
from .strategies import bounded_targets, mlps, tickets, unit_ball_inputs, widths

__all__ = ["bounded_targets", "mlps", "strategies", "tickets", "unit_ball_inputs", "widths"]
