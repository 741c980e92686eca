"""Numba kernels for random subset sum. Plain arrays in, plain arrays out.

Conventions
-----------
* A subset sum is always evaluated as a left fold over its members in index
  order, starting from 0.0. The sorted enumerations below build every sum that
  way, so a value found in a sorted list can be matched *exactly* (bit for bit)
  by the unsorted doubling enumeration used to recover its subset. That lets the
  hot loops move values only (no masks), and the subset is recovered afterwards.
* Batched kernels split the instances into one chunk per thread; each chunk owns
  its buffers, so nothing is allocated per instance.
* Every kernel has a plain-numpy twin in :mod:`slth.subset_sum.reference`.
"""

from __future__ import annotations

import numba as nb
import numpy as np

# ----------------------------------------------------------------------------
# building blocks


@nb.njit(cache=True, inline="always")
def _merge_step(src, dst, size, x):
    """dst[:2 size] = sorted union of src[:size] and src[:size] + x (src sorted)."""
    if x >= 0.0:
        xp = 0.0
        xq = x
    else:
        xp = x
        xq = 0.0
    # P = src + xp ends no later than Q = src + xq, so P is exhausted first.
    p = 0
    q = 0
    k = 0
    while p < size:
        a = src[p] + xp
        b = src[q] + xq
        take_b = b < a
        dst[k] = b if take_b else a
        q += take_b
        p += 1 - take_b
        k += 1
    while q < size:
        dst[k] = src[q] + xq
        q += 1
        k += 1


@nb.njit(cache=True)
def sorted_sums(vals, start, stop, buf, tmp):
    """Sorted subset sums of ``vals[start:stop]``; returns the array holding them.

    ``buf`` and ``tmp`` must hold ``2 ** (stop - start)`` floats each; the
    result is a view of one of them.
    """
    buf[0] = 0.0
    size = 1
    src = buf
    dst = tmp
    for idx in range(start, stop):
        _merge_step(src, dst, size, vals[idx])
        size *= 2
        src, dst = dst, src
    return src[:size]


@nb.njit(cache=True)
def sorted_sums_with_masks(vals, buf, tmp, mbuf, mtmp):
    """Sorted subset sums of all of ``vals`` with their member bitmasks (int64)."""
    n = vals.shape[0]
    buf[0] = 0.0
    mbuf[0] = 0
    size = 1
    src, dst, msrc, mdst = buf, tmp, mbuf, mtmp
    for idx in range(n):
        x = vals[idx]
        bit = np.int64(1) << idx
        if x >= 0.0:
            xp, xq, bp, bq = 0.0, x, np.int64(0), bit
        else:
            xp, xq, bp, bq = x, 0.0, bit, np.int64(0)
        p = 0
        q = 0
        k = 0
        while p < size:
            a = src[p] + xp
            b = src[q] + xq
            if b < a:
                dst[k] = b
                mdst[k] = msrc[q] | bq
                q += 1
            else:
                dst[k] = a
                mdst[k] = msrc[p] | bp
                p += 1
            k += 1
        while q < size:
            dst[k] = src[q] + xq
            mdst[k] = msrc[q] | bq
            q += 1
            k += 1
        size *= 2
        src, dst = dst, src
        msrc, mdst = mdst, msrc
    return src[:size], msrc[:size]


@nb.njit(cache=True)
def recover_subset(vals, start, stop, value, work, out_mask):
    """Set ``out_mask[start:stop]`` to a subset of ``vals[start:stop]`` summing to ``value``.

    ``value`` must be one of the left-fold sums produced by :func:`sorted_sums`;
    the unsorted doubling enumeration reproduces each such sum bit for bit.
    Returns False if no subset matches (which would indicate a bug).
    """
    work[0] = 0.0
    size = 1
    if value == 0.0:
        found = 0
    else:
        found = -1
        for t in range(stop - start):
            x = vals[start + t]
            for m in range(size):
                s = work[m] + x
                work[size + m] = s
                if s == value:
                    found = size + m
                    break
            if found >= 0:
                break
            size *= 2
    if found < 0:
        return False
    for t in range(stop - start):
        out_mask[start + t] = (found >> t) & 1
    return True


@nb.njit(cache=True)
def _closest_pair(A, B, target, eps):
    """Two-pointer search over sorted A (ascending) and B for a + b closest to target.

    Stops early once within ``eps`` (``eps < 0`` means never). Returns
    (best_abs_error, i, j, stopped_early).
    """
    i = 0
    j = B.shape[0] - 1
    na = A.shape[0]
    best = np.inf
    bi = 0
    bj = j
    while i < na and j >= 0:
        d = A[i] + B[j] - target
        ad = abs(d)
        if ad < best:
            best = ad
            bi = i
            bj = j
            if ad <= eps:
                return best, bi, bj, True
        step = d < 0.0
        i += step
        j -= 1 - step
    return best, bi, bj, False


@nb.njit(cache=True)
def _mitm_one(vals, n, target, eps, bufA, tmpA, bufB, tmpB, work, out_mask):
    """Meet in the middle on ``vals[:n]``; writes out_mask[:n], returns (err, early)."""
    n1 = n // 2
    A = sorted_sums(vals, 0, n1, bufA, tmpA)
    B = sorted_sums(vals, n1, n, bufB, tmpB)
    best, bi, bj, early = _closest_pair(A, B, target, eps)
    for t in range(n):
        out_mask[t] = False
    recover_subset(vals, 0, n1, A[bi], work, out_mask)
    recover_subset(vals, n1, n, B[bj], work, out_mask)
    return best, early


# ----------------------------------------------------------------------------
# batched solvers


@nb.njit(cache=True, parallel=True)
def mitm_batch(values, targets, eps, k0, step, kmax, masks, proven, nthreads):
    """Solve ``B`` independent instances (rows of ``values``) by meet in the middle.

    Parameters
    ----------
    values : float64[B, n]
    targets : float64[B]
    eps : float
        Stop at the first subset within ``eps``; ``eps < 0`` solves exactly.
    k0, step, kmax : int
        eps mode only: solve exactly on the prefix of ``k0`` values, then on
        prefixes grown by ``step`` until the error is within ``eps`` or the
        prefix holds ``min(n, kmax)`` values (exact mode ignores them and
        needs ``n <= kmax``).
    masks : bool[B, n] (output)
    proven : bool[B] (output)
        True when the returned subset is the optimum over the whole row.
    nthreads : int
        Number of chunks (one per thread; pass ``numba.get_num_threads()``).
    """
    nb_inst, n = values.shape
    chunk = (nb_inst + nthreads - 1) // nthreads
    kmax = min(n, kmax)
    cap = 1 << (kmax - kmax // 2)
    for c in nb.prange(nthreads):
        lo = c * chunk
        hi = min(nb_inst, lo + chunk)
        if lo >= hi:
            continue
        bufA = np.empty(cap, np.float64)
        tmpA = np.empty(cap, np.float64)
        bufB = np.empty(cap, np.float64)
        tmpB = np.empty(cap, np.float64)
        work = np.empty(cap, np.float64)
        for r in range(lo, hi):
            row = values[r]
            if eps < 0.0:
                _mitm_one(row, n, targets[r], -1.0, bufA, tmpA, bufB, tmpB, work, masks[r])
                proven[r] = True
            else:
                k = min(k0, kmax)
                while True:
                    err, early = _mitm_one(
                        row, k, targets[r], eps, bufA, tmpA, bufB, tmpB, work, masks[r]
                    )
                    if err <= eps or k == kmax:
                        break
                    k = min(kmax, k + step)
                for t in range(k, n):
                    masks[r, t] = False
                proven[r] = (k == n) and not early


@nb.njit(cache=True, parallel=True)
def shared_mitm(values, targets, eps, masks, proven, nthreads):
    """Many targets against one value vector: halves sorted once, two-pointer per target."""
    n = values.shape[0]
    m = targets.shape[0]
    n1 = n // 2
    cap = 1 << (n - n1)
    bufA = np.empty(cap, np.float64)
    tmpA = np.empty(cap, np.float64)
    bufB = np.empty(cap, np.float64)
    tmpB = np.empty(cap, np.float64)
    A = sorted_sums(values, 0, n1, bufA, tmpA).copy()
    B = sorted_sums(values, n1, n, bufB, tmpB).copy()
    chunk = (m + nthreads - 1) // nthreads
    for c in nb.prange(nthreads):
        lo = c * chunk
        hi = min(m, lo + chunk)
        if lo >= hi:
            continue
        work = np.empty(cap, np.float64)
        for r in range(lo, hi):
            best, bi, bj, early = _closest_pair(A, B, targets[r], eps)
            recover_subset(values, 0, n1, A[bi], work, masks[r])
            recover_subset(values, n1, n, B[bj], work, masks[r])
            proven[r] = not early


@nb.njit(cache=True, parallel=True)
def shared_full(values, targets, masks):
    """Many targets against one short value vector: all sums sorted once, binary search."""
    n = values.shape[0]
    size = 1 << n
    S, M = sorted_sums_with_masks(
        values,
        np.empty(size, np.float64),
        np.empty(size, np.float64),
        np.empty(size, np.int64),
        np.empty(size, np.int64),
    )
    for r in nb.prange(targets.shape[0]):
        t = targets[r]
        k = np.searchsorted(S, t)
        if k == 0:
            best = 0
        elif k == size:
            best = size - 1
        else:
            best = k if (S[k] - t) < (t - S[k - 1]) else k - 1
        code = M[best]
        for b in range(n):
            masks[r, b] = (code >> b) & 1


@nb.njit(cache=True, parallel=True)
def greedy_batch(values, targets, masks):
    """Greedy heuristic: visit values by decreasing magnitude, keep one if it helps."""
    nb_inst, n = values.shape
    for r in nb.prange(nb_inst):
        row = values[r]
        order = np.argsort(-np.abs(row), kind="mergesort")
        resid = targets[r]
        for t in range(n):
            i = order[t]
            v = row[i]
            if abs(resid - v) < abs(resid):
                resid -= v
                masks[r, i] = True
            else:
                masks[r, i] = False


# ----------------------------------------------------------------------------
# coverage


@nb.njit(cache=True)
def _coverage_sorted(S, lo, hi):
    """sup over z in [lo, hi] of the distance from z to the nearest element of sorted S."""
    size = S.shape[0]
    # distance at the interval's ends
    k = np.searchsorted(S, lo)
    dlo = np.inf
    if k < size:
        dlo = S[k] - lo
    if k > 0:
        dlo = min(dlo, lo - S[k - 1])
    k = np.searchsorted(S, hi)
    dhi = np.inf
    if k < size:
        dhi = S[k] - hi
    if k > 0:
        dhi = min(dhi, hi - S[k - 1])
    worst = max(dlo, dhi)
    # interior maxima: half gaps whose midpoint lies in [lo, hi]
    start = max(np.searchsorted(S, lo) - 1, 0)
    for i in range(start, size - 1):
        a = S[i]
        b = S[i + 1]
        mid = 0.5 * (a + b)
        if mid > hi:
            break
        if mid >= lo:
            g = 0.5 * (b - a)
            if g > worst:
                worst = g
    return worst


@nb.njit(cache=True, parallel=True)
def coverage_batch(values, lo, hi, out, nthreads):
    """Worst-case error over z in [lo, hi] for every row of ``values``."""
    nb_inst, n = values.shape
    chunk = (nb_inst + nthreads - 1) // nthreads
    size = 1 << n
    for c in nb.prange(nthreads):
        first = c * chunk
        last = min(nb_inst, first + chunk)
        if first >= last:
            continue
        buf = np.empty(size, np.float64)
        tmp = np.empty(size, np.float64)
        for r in range(first, last):
            S = sorted_sums(values[r], 0, n, buf, tmp)
            out[r] = _coverage_sorted(S, lo, hi)
