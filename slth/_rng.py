"""The one way in for randomness: every random function takes ``rng``.

``rng`` may be an ``int`` seed, a :class:`numpy.random.Generator`, a
:class:`numpy.random.SeedSequence` or ``None`` (fresh OS entropy). Nothing in
slth seeds a global generator; numba kernels receive pre-drawn arrays.
"""

from __future__ import annotations

from typing import Union

import numpy as np

from .errors import InputError, format_value

__all__ = ["RNGLike", "as_generator", "spawn"]

RNGLike = Union[int, np.integer, np.random.Generator, np.random.SeedSequence, None]  # noqa: UP007


def as_generator(rng: RNGLike) -> np.random.Generator:
    """Normalise ``rng`` to a :class:`numpy.random.Generator`.

    Parameters
    ----------
    rng : int, numpy.random.Generator, numpy.random.SeedSequence or None
        A seed (non-negative int), an existing generator (returned as is, so the
        caller's stream advances), a seed sequence, or None for fresh entropy.

    Returns
    -------
    numpy.random.Generator
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, np.random.SeedSequence):
        return np.random.default_rng(rng)
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, (bool, np.bool_)):
        raise InputError(
            f"`rng` must be a non-negative int seed, a numpy Generator, a SeedSequence or None; "
            f"received {rng!r}"
        )
    if isinstance(rng, (int, np.integer)):
        if int(rng) < 0:
            raise InputError(f"`rng` seed must be a non-negative int; received {int(rng)}")
        return np.random.default_rng(int(rng))
    raise InputError(
        "`rng` must be a non-negative int seed, a numpy Generator, a SeedSequence or None; "
        f"received {format_value(rng)}"
    )


def spawn(rng: RNGLike, k: int) -> list[np.random.Generator]:
    """Return ``k`` statistically independent generators derived from ``rng``.

    Independent trials use these rather than one shared stream, so trial ``i``
    draws the same numbers whatever the number of trials or workers.

    Parameters
    ----------
    rng : int, numpy.random.Generator, numpy.random.SeedSequence or None
        Parent randomness; a Generator is advanced through its own ``spawn``.
    k : int
        Number of children, ``k >= 0``.

    Returns
    -------
    list of numpy.random.Generator
    """
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k < 0:
        raise InputError(f"`k` must be an int >= 0; received {k!r}")
    if isinstance(rng, np.random.SeedSequence):
        return [np.random.default_rng(s) for s in rng.spawn(int(k))]
    return list(as_generator(rng).spawn(int(k)))
