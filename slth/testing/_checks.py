"""Argument checks shared by the hypothesis strategies of :mod:`slth.testing`."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from ..errors import InputError

__all__ = ["check_int", "elements"]


def check_int(value: Any, name: str, *, low: int) -> int:
    """``value`` as an int ``>= low``; InputError naming ``name`` otherwise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InputError(f"`{name}` must be an int >= {low}; received {value!r}")
    if value < low:
        raise InputError(f"`{name}` must be an int >= {low}; received {int(value)}")
    return int(value)


def elements(strategy: Any) -> SearchStrategy[float]:
    """Parameter entries: the given strategy, or finite non-subnormal floats in [-1, 1]."""
    if strategy is None:
        return st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False, allow_subnormal=False)
    if not isinstance(strategy, SearchStrategy):
        raise InputError(
            f"`elements` must be None or a hypothesis strategy of finite floats; received "
            f"{strategy!r}"
        )
    return strategy
