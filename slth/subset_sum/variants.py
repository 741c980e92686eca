"""Which merge kernel the exact subset-sum solver runs: chosen by the CPU, forceable.

The meet-in-the-middle solver spends its time merging sorted int64 lists
(:mod:`slth.subset_sum._kernels`). Three merge variants compute the same
sorted lists, so every variant returns the same masks bit for bit:

``"vec8"``
    eight int64 lanes per vector (:func:`slth.subset_sum._simd.simd_merge`):
    one AVX-512 register; LLVM splits it into two AVX2 registers elsewhere.
``"vec4"``
    four lanes (:func:`~slth.subset_sum._simd.simd_merge4`): one AVX2 register.
``"scalar"``
    the branch-free bidirectional scalar merge (``_kernels._merge_step``).

The default is :func:`default_merge_variant`: ``"vec8"`` on CPUs with AVX-512
(``avx512f`` in ``/proc/cpuinfo``), otherwise the variant measured fastest on
AVX2 machines (:data:`AVX2_CHOICE`, ``benchmarks/subset_sum.py --variants``).
The environment variable ``SLTH_MERGE_VARIANT`` or :func:`use_merge_variant`
forces one (benchmarks report which ran: :func:`merge_variant`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from functools import lru_cache

from ..errors import InputError, format_value

__all__ = ["AVX2_CHOICE", "MERGE_VARIANTS", "cpu_vector_features", "default_merge_variant",
           "merge_variant", "use_merge_variant"]

#: Variant name -> the kernels' ``variant`` argument (vector lanes; 0 = scalar).
MERGE_VARIANTS: dict[str, int] = {"vec8": 8, "vec4": 4, "scalar": 0}

#: The variant run on CPUs without AVX-512. Measured on an AVX2-only AMD EPYC (2 cores;
#: ``python -m benchmarks.subset_sum --variants``, docs/benchmarks/subset_sum_variants.md):
#: exact mode, 1 thread, n = 24: vec8 29.2-29.5k/s, vec4 24.8k/s, scalar 22.5-25.4k/s;
#: n = 32: vec8 1.8k/s, vec4 1.6k/s, scalar 1.3-1.5k/s. The eight-lane merge, split by LLVM
#: into two AVX2 registers, keeps two independent compare chains in flight and beats the
#: one-register four-lane merge by 5-20% there, so it stays the choice on AVX2 too. A
#: sixteen-lane merge (four AVX2 registers) was also tried: the same as vec8 within noise
#: (n = 24, one thread: 29.4k/s against 29.2k/s), so it was not kept.
AVX2_CHOICE = "vec8"

_forced: list[str] = []

_FEATURES = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "asimd", "neon")


@lru_cache(maxsize=1)
def cpu_vector_features() -> tuple[str, ...]:
    """The vector features of this CPU that matter here, from ``/proc/cpuinfo`` (Linux).

    Returns
    -------
    tuple of str
        E.g. ``("sse4_2", "avx", "avx2", "fma")``; empty where unreadable.
    """
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    flags = set(val.split())
                    return tuple(x for x in _FEATURES if x in flags)
    except OSError:
        pass
    return ()


def _check(name: object, what: str) -> str:
    if not isinstance(name, str) or name not in MERGE_VARIANTS:
        raise InputError(f"{what} must be one of {', '.join(map(repr, MERGE_VARIANTS))}; "
                         f"received {format_value(name)}")
    return name


def default_merge_variant() -> str:
    """``"vec8"`` with AVX-512, else :data:`AVX2_CHOICE`."""
    return "vec8" if "avx512f" in cpu_vector_features() else AVX2_CHOICE


def merge_variant() -> str:
    """The variant the solver runs now: forced (innermost :func:`use_merge_variant`, then
    ``SLTH_MERGE_VARIANT``) or :func:`default_merge_variant`.

    Raises
    ------
    InputError
        ``SLTH_MERGE_VARIANT`` names no variant.
    """
    if _forced:
        return _forced[-1]
    env = os.environ.get("SLTH_MERGE_VARIANT")
    if env:
        return _check(env, "the environment variable SLTH_MERGE_VARIANT")
    return default_merge_variant()


def variant_code() -> int:
    """:func:`merge_variant` as the kernels' ``variant`` argument."""
    return MERGE_VARIANTS[merge_variant()]


@contextlib.contextmanager
def use_merge_variant(name: str) -> Iterator[str]:
    """Force a merge variant inside a ``with`` block (this thread's solves and others').

    Parameters
    ----------
    name : {"vec8", "vec4", "scalar"}

    Yields
    ------
    str
        ``name``.

    Examples
    --------
    >>> import numpy as np
    >>> from slth.subset_sum import solve_batch
    >>> from slth.subset_sum.variants import use_merge_variant
    >>> v = np.random.default_rng(0).uniform(-1, 1, (4, 20))
    >>> t = np.zeros(4)
    >>> with use_merge_variant("scalar"):
    ...     a = solve_batch(v, t).masks
    >>> bool((a == solve_batch(v, t).masks).all())
    True
    """
    _forced.append(_check(name, "`name`"))
    try:
        yield name
    finally:
        _forced.pop()
