"""Exact random subset sum on torch: the numba meet in the middle's contract, on a device.

:func:`solve_exact` solves ``B`` instances at once in the same 64-bit fixed point
as :func:`slth.subset_sum._kernels.quantize` (values and target rounded to
multiples of q = 2^(e - 61), 2^e the power of two above sum |values| + |target|,
summed in the same order, rounded half to even), so "optimal" means what it means
on the CPU: the half sums of the even and of the odd positions are built by
doubling in int64, one half sorted, and every sum of the other half looks up its
two neighbours of ``target - a`` with ``searchsorted``; the smallest ``|a + b -
target|`` wins. Where the fixed-point optimum is unique (random real values:
always in practice) the mask is the numba kernel's bit for bit; at an exact tie
either optimal subset may be returned (the errors are equal).

Memory: about ``12 * 2^ceil(n/2) + 8 * 2^floor(n/2)`` bytes per instance at once
(the halves, the lookups); batches are cut to ``chunk_bytes``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .._memory import check_memory, format_bytes

__all__ = ["solve_exact"]

#: Default device memory per chunk of instances.
CHUNK_BYTES = 256 << 20


def _quantize(values: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int64 fixed point of every row, as the numba kernel's ``quantize`` (same sum order)."""
    s = np.abs(targets).astype(np.float64)
    big = s.copy()
    for i in range(values.shape[1]):  # |target| first, then |v_0|, |v_1|, ... as numba adds
        a = np.abs(values[:, i])
        s = s + a
        big = np.maximum(big, a)
    e = np.empty(s.shape[0], dtype=np.int64)
    finite = np.isfinite(s)
    _, ex = np.frexp(np.where(finite, s, 1.0))
    e[:] = np.maximum(ex, -900)
    e[s == 0.0] = 0
    if not finite.all():  # the float sum overflowed: (k + 1) max |x| instead
        _, eb = np.frexp(big[~finite])
        e[~finite] = eb + math.ceil(math.log2(values.shape[1] + 1))
    scale = np.ldexp(1.0, (61 - e).astype(np.int32))
    qv = np.rint(values * scale[:, None]).astype(np.int64)
    tq = np.rint(targets * scale).astype(np.int64)
    return qv, tq


def _half_sums(q: torch.Tensor) -> torch.Tensor:
    """(B, 2^m) int64 subset sums of the m columns of ``q``; column index bits = the subset."""
    B = q.shape[0]
    sums = torch.zeros((B, 1), dtype=torch.int64, device=q.device)
    for i in range(q.shape[1]):
        sums = torch.cat([sums, sums + q[:, i:i + 1]], dim=1)
    return sums


def solve_exact(values: np.ndarray, targets: np.ndarray, *, device: Any = None,
                chunk_bytes: int = CHUNK_BYTES) -> np.ndarray:
    """Optimal subsets of ``B`` instances (fixed point as the numba kernel), on ``device``.

    Parameters
    ----------
    values : numpy.ndarray
        float64 ``(B, n)``, finite, ``n <= 40``.
    targets : numpy.ndarray
        float64 ``(B,)``, finite.
    device : torch.device or str, optional
        Default: ``cuda`` when available, else ``cpu``.
    chunk_bytes : int, default 256 MiB
        Device memory per chunk of instances.

    Returns
    -------
    numpy.ndarray
        bool ``(B, n)`` masks.
    """
    from ._common import as_device

    dev = as_device(device)
    B, n = values.shape
    na, nb = (n + 1) // 2, n // 2  # A: even positions, B: odd (as the numba kernel)
    per = 12 * (1 << na) + 8 * (1 << nb) + 8 * n
    check_memory(per, what=f"torch solve: one instance of n={n} "
                           f"({format_bytes(per)} on the device)",
                 alternative="solve with the numba backend (it streams the halves)")
    rows = max(1, int(chunk_bytes) // per)
    qv, tq = _quantize(values, targets)
    masks = np.zeros((B, n), dtype=bool)
    even, odd = np.arange(0, n, 2), np.arange(1, n, 2)
    for lo in range(0, B, rows):
        hi = min(B, lo + rows)
        q = torch.as_tensor(qv[lo:hi], device=dev)
        t = torch.as_tensor(tq[lo:hi], device=dev)
        a = _half_sums(q[:, even])                       # (b, 2^na)
        bsum = _half_sums(q[:, odd]) if nb else torch.zeros((hi - lo, 1), dtype=torch.int64,
                                                            device=dev)
        bs, border = torch.sort(bsum, dim=1)             # (b, 2^nb)
        want = t[:, None] - a                            # the b that would close each a
        j = torch.searchsorted(bs, want)                 # first b >= want
        jm = (j - 1).clamp(min=0)
        jp = j.clamp(max=bs.shape[1] - 1)
        dm = (torch.gather(bs, 1, jm) - want).abs()
        dp = (torch.gather(bs, 1, jp) - want).abs()
        use_p = dp < dm
        best_j = torch.where(use_p, jp, jm)
        best_d = torch.where(use_p, dp, dm)
        ia = torch.argmin(best_d, dim=1)                 # the a of the smallest |a + b - t|
        jb = torch.gather(best_j, 1, ia[:, None])[:, 0]
        ib = torch.gather(border, 1, jb[:, None])[:, 0]
        ia_np, ib_np = ia.cpu().numpy(), ib.cpu().numpy()
        for m, pos in enumerate(even):
            masks[lo:hi, pos] = (ia_np >> m) & 1 == 1
        for m, pos in enumerate(odd):
            masks[lo:hi, pos] = (ib_np >> m) & 1 == 1
    return masks
