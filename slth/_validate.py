"""The one set of scalar and array validators of slth.

Every public function of slth checks its arguments through these helpers, so a
bad value is refused the same way everywhere: an :class:`slth.errors.InputError`
whose message names the parameter in backticks, the allowed domain and the
value received (``"`eps` must be a finite number in (0, 1); received 2"``), the
value shown by :func:`slth.errors.format_value`.

All helpers take the parameter's name first and its value second, return the
value normalised (a Python ``float``/``int``, a tuple, or a float64 array) and
take their options as keyword arguments. The scalar helpers refuse ``bool``
(a ``True`` passed for a width is a bug, not a 1) and anything that is not a
real number (strings, lists, arrays); pass ``convert=True`` to accept whatever
``float()`` converts, as :mod:`slth.bounds` does for its constants.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NoReturn

import numpy as np

from .errors import InputError, format_value

__all__ = [
    "fail",
    "int_or_per_layer",
    "integer",
    "integer_array",
    "is_int",
    "is_real",
    "one_of",
    "open_interval",
    "open_interval_array",
    "positive",
    "real",
    "real_array",
]

_REAL_TYPES = (int, float, np.integer, np.floating)
_BOOL_TYPES = (bool, np.bool_)


def fail(name: str, domain: str, value: Any) -> NoReturn:
    """Raise the :class:`InputError` "`name` must be <domain>; received <value>"."""
    raise InputError(f"`{name}` must be {domain}; received {format_value(value)}")


def is_real(value: Any) -> bool:
    """``value`` is a real scalar: a Python or numpy int or float, not a bool."""
    return isinstance(value, _REAL_TYPES) and not isinstance(value, _BOOL_TYPES)


def is_int(value: Any) -> bool:
    """``value`` is a Python or numpy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, _BOOL_TYPES)


def _none_or(domain: str, allow_none: bool) -> str:
    return f"None or {domain}" if allow_none else domain


def _as_float(name: str, value: Any, domain: str, convert: bool) -> float:
    """``float(value)`` for a real scalar (or, with ``convert``, anything float() takes)."""
    if isinstance(value, _BOOL_TYPES):
        fail(name, domain, value)
    if not convert:
        if not is_real(value):
            fail(name, domain, value)
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"`{name}` must be {domain}; received {format_value(value)}") from exc


def real(name: str, value: Any, *, allow_none: bool = False, convert: bool = False
         ) -> float | None:
    """A finite real number (or None when ``allow_none``)."""
    if value is None and allow_none:
        return None
    domain = _none_or("a finite number", allow_none)
    v = _as_float(name, value, domain, convert)
    if not math.isfinite(v):
        fail(name, domain, value)
    return v


def positive(name: str, value: Any, *, allow_none: bool = False, convert: bool = False
             ) -> float | None:
    """A finite number > 0 (or None when ``allow_none``)."""
    if value is None and allow_none:
        return None
    domain = _none_or("a finite number > 0", allow_none)
    v = _as_float(name, value, domain, convert)
    if not math.isfinite(v) or v <= 0:
        fail(name, domain, value)
    return v


def open_interval(name: str, value: Any, low: float = 0.0, high: float = 1.0, *,
                  allow_none: bool = False, convert: bool = False) -> float | None:
    """A finite number in the open interval ``(low, high)`` (or None when ``allow_none``)."""
    if value is None and allow_none:
        return None
    domain = _none_or(f"a finite number in ({low:g}, {high:g})", allow_none)
    v = _as_float(name, value, domain, convert)
    if not math.isfinite(v) or not low < v < high:
        fail(name, domain, value)
    return v


def integer(name: str, value: Any, *, low: int, high: int | None = None) -> int:
    """A Python or numpy int (not a bool) with ``low <= value`` (and ``<= high`` when given)."""
    domain = f"an int >= {low}" if high is None else f"an int in [{low}, {high}]"
    if not is_int(value) or value < low or (high is not None and value > high):
        fail(name, domain, value)
    return int(value)


def boolean(name: str, value: Any) -> bool:
    """A bool (numpy's included), returned as a Python bool."""
    if not isinstance(value, (bool, np.bool_)):
        fail(name, "a bool", value)
    return bool(value)


def one_of(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """``value`` if it is one of ``choices`` (compared with ``in``)."""
    if value not in choices:
        raise InputError(f"`{name}` must be one of {tuple(choices)}; received {value!r}")
    return value


def int_or_per_layer(name: str, value: Any, depth: int, *, low: int = 1,
                     allow_none: bool = True) -> tuple[int, ...] | None:
    """A width: None, one int >= ``low`` for every layer, or a sequence of ``depth`` such ints.

    Returns one int per layer (``(value,) * depth`` for a single int), or None.
    """
    if value is None and allow_none:
        return None
    if is_int(value):
        if value < low:
            raise InputError(f"`{name}` must be an int >= {low} or a sequence of {depth} such "
                             f"ints; received {int(value)}")
        return (int(value),) * depth
    if isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, (str, bytes)):
        vals = list(value)
        if len(vals) == depth and all(is_int(v) and v >= low for v in vals):
            return tuple(int(v) for v in vals)
        raise InputError(f"`{name}` must be an int >= {low} or a sequence of {depth} ints "
                         f">= {low} (one per target layer); received {vals!r}")
    raise InputError(f"`{name}` must be an int >= {low} or a sequence of {depth} such ints; "
                     f"received {format_value(value)}")


# ----------------------------------------------------------------------------- arrays
def real_array(name: str, value: Any) -> np.ndarray:
    """A finite real number or array, as float64 (any shape, scalars 0-d)."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"`{name}` must be a real number or array; received "
                         f"{format_value(value)}") from exc
    if arr.dtype == object or not np.all(np.isfinite(arr)):
        raise InputError(f"`{name}` must be finite; received {format_value(value)}")
    return arr


def open_interval_array(name: str, value: Any, low: float = 0.0, high: float = 1.0
                        ) -> np.ndarray:
    """:func:`real_array` with every entry in ``(low, high)``; the first bad entry is shown."""
    arr = real_array(name, value)
    bad = (arr <= low) | (arr >= high)
    if np.any(bad):
        raise InputError(f"`{name}` must lie in ({low:g}, {high:g}); received "
                         f"{float(arr[bad].ravel()[0])!r}")
    return arr


def integer_array(name: str, value: Any, *, low: int = 1) -> np.ndarray:
    """:func:`real_array` of whole numbers >= ``low`` (float64); bools are refused."""
    if isinstance(value, _BOOL_TYPES):
        raise InputError(f"`{name}` must be an int >= {low}; received {value!r}")
    arr = real_array(name, value)
    bad = (arr < low) | (arr != np.floor(arr))
    if np.any(bad):
        raise InputError(f"`{name}` must be an int >= {low}; received "
                         f"{float(arr[bad].ravel()[0])!r}")
    return arr
