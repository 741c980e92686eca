"""The sample laws the theory uses, drawn in one place from a Generator.

========================  ======================================================
name                      law
========================  ======================================================
``"uniform"``             U[-1, 1] (Lueker 1998; Pensia et al. 2020 sources)
``"product"``             X * Y, X ~ U[0, 1], Y ~ U[-1, 1] (Pensia et al. 2020,
                          Cor. 1: the law of one first-layer weight times one
                          second-layer weight of the construction)
``"normal"``              N(0, 1)
``"hyperbolic"``          density proportional to 1/|w| on low <= |w| <= high,
                          random sign (Orseau, Hutter, Rivasplata 2020)
========================  ======================================================

The hyperbolic law's support is a parameter (``low``, ``high``; default
[1e-3, 1]): Orseau et al. draw from a 1/|w| density on a bounded range, and
the range they use was not confirmed from the paper when this was written, so
set it explicitly when reproducing their construction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._rng import RNGLike, as_generator
from ..errors import InputError

__all__ = ["DISTRIBUTIONS", "sample"]

DISTRIBUTIONS: tuple[str, ...] = ("uniform", "product", "normal", "hyperbolic")

#: Default support of the hyperbolic law: |w| in [HYPERBOLIC_LOW, 1].
HYPERBOLIC_LOW = 1e-3


def _check_positive(name: str, value: float) -> float:
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise InputError(f"`{name}` must be a finite number > 0; received {value!r}")
    return value


def sample(
    distribution: str,
    size: int | tuple[int, ...],
    *,
    rng: RNGLike,
    scale: float = 1.0,
    low: float = HYPERBOLIC_LOW,
    high: float = 1.0,
) -> np.ndarray:
    """Draw i.i.d. samples (float64) from one of the laws in :data:`DISTRIBUTIONS`.

    Parameters
    ----------
    distribution : {"uniform", "product", "normal", "hyperbolic"}
        Name of the law (see the module docstring).
    size : int or tuple of int
        Output shape.
    rng : int, numpy.random.Generator, numpy.random.SeedSequence or None
        Randomness; the same seed gives the same bits.
    scale : float, default 1.0
        Multiplies every sample: ``"uniform"`` becomes U[-scale, scale],
        ``"normal"`` N(0, scale^2).
    low, high : float
        Support ``low <= |w| <= high`` of the ``"hyperbolic"`` law (ignored by
        the others), ``0 < low < high``.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``size``.
    """
    gen = as_generator(rng)
    scale = _check_positive("scale", scale)
    if distribution == "uniform":
        out = gen.uniform(-1.0, 1.0, size)
    elif distribution == "product":
        out = gen.uniform(0.0, 1.0, size) * gen.uniform(-1.0, 1.0, size)
    elif distribution == "normal":
        out = gen.standard_normal(size)
    elif distribution == "hyperbolic":
        low = _check_positive("low", low)
        high = _check_positive("high", high)
        if not low < high:
            raise InputError(f"`low` must be < `high`; received low={low!r}, high={high!r}")
        # inverse CDF of the density proportional to 1/w on [low, high]
        u = gen.uniform(0.0, 1.0, size)
        mag = low * np.exp(u * np.log(high / low))
        sign = np.where(gen.uniform(0.0, 1.0, size) < 0.5, -1.0, 1.0)
        out = sign * mag
    else:
        raise InputError(
            f"`distribution` must be one of {DISTRIBUTIONS}; received {distribution!r}"
        )
    return np.asarray(out * scale, dtype=np.float64)


def distribution_params(distribution: str, **params: Any) -> dict[str, Any]:
    """Parameters that matter for ``distribution`` (used in result metadata)."""
    keep = {"hyperbolic": ("scale", "low", "high")}.get(distribution, ("scale",))
    return {k: params[k] for k in keep if k in params}
