"""Exceptions raised by slth.

Every error slth raises on bad input derives from :class:`SLTHError`, itself a
:class:`ValueError`, so ``except ValueError`` keeps working for callers who do
not care about slth specifically. Messages name the parameter in backticks, the
allowed domain and the value received.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CertificateError",
    "ConstructionError",
    "InputError",
    "LimitError",
    "SLTHError",
    "ShapeError",
    "format_value",
]


class SLTHError(ValueError):
    """Base class of every error raised by slth on bad input or impossible requests."""


class InputError(SLTHError):
    """A parameter's value lies outside its allowed domain (NaN, negative, unknown name...)."""


class ShapeError(SLTHError):
    """Arrays whose shapes do not fit together."""


class LimitError(SLTHError):
    """A request past a documented limit (memory guard, float64 precision)."""


class ConstructionError(SLTHError):
    """A construction cannot meet its guarantee with the source it was given."""


class CertificateError(SLTHError):
    """A certified upper bound contradicted by an evaluated error: a bug to report.

    Raised by :func:`slth.evaluate.approximation_error` when the adversarial
    lower bound it found exceeds the certified upper bound, which sound code
    never produces.
    """


def format_value(value: Any, *, max_len: int = 80) -> str:
    """Short printable description of a received value for error messages."""
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None and shape != ():
        return f"array of shape {tuple(shape)} and dtype {dtype}"
    text = repr(value)
    return text if len(text) <= max_len else text[: max_len - 3] + "..."
