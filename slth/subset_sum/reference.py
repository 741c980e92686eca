"""Plain numpy twins of the numba kernels, for tests and benchmarks.

Slow and obvious on purpose: every subset is enumerated explicitly.
"""

from __future__ import annotations

import numpy as np

from ..errors import LimitError

__all__ = [
    "BRUTEFORCE_MAX_N",
    "all_subset_sums",
    "bruteforce",
    "bruteforce_batch",
    "coverage_grid",
    "coverage_reference",
    "greedy",
]

#: Largest n the explicit enumeration accepts (2**20 subsets, ~170 MB of masks).
BRUTEFORCE_MAX_N = 20


def _subset_matrix(n: int) -> np.ndarray:
    codes = np.arange(1 << n, dtype=np.int64)
    return ((codes[:, None] >> np.arange(n)) & 1).astype(bool)


def all_subset_sums(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every subset of ``values``: (sums[2**n], masks[2**n, n]), unsorted."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    if n > BRUTEFORCE_MAX_N:
        raise LimitError(
            f"`values` has n={n}; the brute-force reference enumerates 2**n subsets and "
            f"accepts n <= {BRUTEFORCE_MAX_N}"
        )
    masks = _subset_matrix(n)
    return masks.astype(np.float64) @ values, masks


def bruteforce(values: np.ndarray, target: float, eps: float | None = None) -> np.ndarray:
    """Mask of the subset closest to ``target`` (ties: lowest subset code).

    With ``eps`` the answer is still the optimum: brute force has no shortcut.
    """
    sums, masks = all_subset_sums(values)
    return masks[int(np.argmin(np.abs(sums - float(target))))].copy()  # not a view of 2^n rows


def bruteforce_batch(values: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Row-wise :func:`bruteforce` for values (B, n) and targets (B,)."""
    values = np.asarray(values, dtype=np.float64)
    return np.stack([bruteforce(v, t) for v, t in zip(values, np.asarray(targets))])


def greedy(values: np.ndarray, target: float) -> np.ndarray:
    """Twin of the greedy kernel: by decreasing |value|, keep a value if it reduces |residual|."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(-np.abs(values), kind="mergesort")
    mask = np.zeros(values.shape[0], dtype=bool)
    resid = float(target)
    for i in order:
        if abs(resid - values[i]) < abs(resid):
            resid -= values[i]
            mask[i] = True
    return mask


def coverage_reference(values: np.ndarray, interval: tuple[float, float] = (-1.0, 1.0)) -> float:
    """sup over z in the interval of min_S |z - sum_S|, from all sums sorted by numpy."""
    lo, hi = float(interval[0]), float(interval[1])
    sums = np.sort(all_subset_sums(values)[0])
    cands = [lo, hi]
    mids = 0.5 * (sums[1:] + sums[:-1])
    inside = (mids >= lo) & (mids <= hi)
    cands.extend(mids[inside].tolist())
    cands = np.asarray(cands)
    return float(np.max(np.min(np.abs(cands[:, None] - sums[None, :]), axis=1)))


def coverage_grid(
    values: np.ndarray, interval: tuple[float, float] = (-1.0, 1.0), points: int = 20001
) -> float:
    """Coverage evaluated on a uniform grid of the interval (a lower bound on the sup)."""
    sums = np.sort(all_subset_sums(values)[0])
    z = np.linspace(float(interval[0]), float(interval[1]), points)
    k = np.clip(np.searchsorted(sums, z), 1, sums.size - 1)
    d = np.minimum(np.abs(z - sums[k - 1]), np.abs(sums[k] - z))
    return float(d.max())
