"""Resumable Monte Carlo trials of the core primitive, run through :mod:`slth.sweeps`.

The subset-sum package (:mod:`slth.subset_sum`) is the core primitive and knows
nothing of the sweep runner; the trials that the Lueker check and the
subset-sum figures repeat by the thousand live here, on top of both.
:func:`first_covering_trials` is also reachable as
``slth.subset_sum.first_covering_trials`` (its name in slth 0.1), imported from
here on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .subset_sum.coverage import COVERS_MAX_N, first_covering_n
from .subset_sum.distributions import DISTRIBUTIONS, sample
from .sweeps import run_sweep

__all__ = ["first_covering_trials"]


def _first_covering_chunk(config: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """One sweep row of :func:`first_covering_trials`."""
    values = sample(config["distribution"], (config["size"], config["n_max"]), rng=rng)
    first = first_covering_n(values, config["eps"], interval=tuple(config["interval"]))
    return {"first_n": first.tolist()}


def first_covering_trials(
    distribution: str,
    eps: float,
    *,
    trials: int,
    n_max: int = COVERS_MAX_N,
    interval: tuple[float, float] = (-1.0, 1.0),
    rng: int = 0,
    store: str | Path | None = None,
    progress: bool | None = None,
    chunk_size: int = 250,
) -> np.ndarray:
    """First covering size of ``trials`` seeded trials, resumable through ``store``.

    Each trial draws ``n_max`` values from ``distribution`` and records
    T = min{n : every target in ``interval`` is within ``eps`` of a subset sum of
    its first n values} (:func:`first_covering_n`); the rate of Lueker's event
    at any n <= n_max is then ``mean(T <= n)``, coupled across n. Trials run in
    chunks of ``chunk_size``; chunk ``i`` is one row of a :func:`slth.sweeps.run_sweep`
    whose seed derives from ``rng`` and its configuration, so a run with more
    trials reuses the chunks of a smaller one and an interrupted run resumes.

    Parameters
    ----------
    distribution : str
        A name from :data:`slth.subset_sum.DISTRIBUTIONS`.
    eps : float
        Tolerance in (0, 1).
    trials : int
        Number of trials >= 1.
    n_max : int, default COVERS_MAX_N
        Longest prefix scanned, in [1, COVERS_MAX_N].
    interval : (float, float), default (-1.0, 1.0)
        Targets to cover.
    rng : int, default 0
        Base seed of the sweep.
    store : path-like, optional
        JSON Lines results file (see :mod:`slth.sweeps`).
    progress : bool or None
        Progress bar on stderr (None: when stderr is a terminal).
    chunk_size : int, default 250
        Trials per sweep row.

    Returns
    -------
    numpy.ndarray
        int64[trials], values in [1, n_max + 1] (``n_max + 1``: not covered by n_max).
    """
    if distribution not in DISTRIBUTIONS:
        raise InputError(
            f"`distribution` must be one of {DISTRIBUTIONS}; received {distribution!r}"
        )
    if not 0.0 < float(eps) < 1.0:
        raise InputError(f"`eps` must lie in (0, 1); received {eps!r}")
    if not 1 <= int(n_max) <= COVERS_MAX_N:
        raise InputError(f"`n_max` must be an int in [1, {COVERS_MAX_N}]; received {n_max!r}")
    if int(trials) < 1 or int(chunk_size) < 1:
        raise InputError(
            f"`trials` and `chunk_size` must be ints >= 1; received {trials!r}, {chunk_size!r}"
        )
    sizes = [int(chunk_size)] * (int(trials) // int(chunk_size))
    if int(trials) % int(chunk_size):
        sizes.append(int(trials) % int(chunk_size))
    configs = [
        {
            "task": "first_covering_trials",
            "distribution": distribution,
            "eps": float(eps),
            "n_max": int(n_max),
            "interval": [float(interval[0]), float(interval[1])],
            "chunk": i,
            "size": s,
        }
        for i, s in enumerate(sizes)
    ]
    res = run_sweep(
        _first_covering_chunk,
        configs,
        path=store,
        rng=rng,
        progress=progress,
        desc=f"first covering n, {distribution} eps={eps:g}",
    )
    return np.concatenate([np.asarray(r["first_n"], dtype=np.int64) for r in res.results])
