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

# Indexing with an unsigned integer spares numba's negative-index wraparound
# (a compare and a select per access), about 25% of a merge step. Every index
# cast with _u is non-negative by construction.
_u = np.uint64


@nb.njit(cache=True, inline="always")
def _merge_step(buf, src, dst, sh, size, x):
    """buf[dst:dst + 2 size] = sorted union of S = buf[src:src + size] and S + x (S sorted).

    The shifted copy is first written to ``sh`` (a vectorised loop), then the
    two lists are merged branch-free and bidirectionally: the smallest
    remaining element is taken from the front and the largest from the back in
    the same iteration, two independent dependency chains the CPU overlaps,
    with no floating-point add on either chain. Ties go to the first list at
    the front and to the second at the back, so the two ends partition the
    output exactly. Every output is one of the inputs bit for bit.
    Regions are addressed by offsets into one buffer: swapping array objects
    in numba costs reference-count updates, which dominate small merges.
    """
    for i in range(size):
        sh[i] = buf[src + i] + x
    last = dst + 2 * size - 1
    p = 0
    q = 0
    pe = size - 1
    qe = size - 1
    if x >= 0.0:
        # P = S (in buf), Q = S + x (in sh)
        for k in range(size):
            a = buf[_u(src + p)]
            b = sh[_u(q)]
            take_b = b < a
            ae = buf[_u(src + pe)]
            be = sh[_u(qe)]
            take_a = ae > be
            buf[_u(dst + k)] = min(a, b)
            buf[_u(last - k)] = max(ae, be)
            q += take_b
            p += 1 - take_b
            pe -= take_a
            qe -= 1 - take_a
    else:
        # P = S + x (in sh), Q = S (in buf)
        for k in range(size):
            a = sh[_u(p)]
            b = buf[_u(src + q)]
            take_b = b < a
            ae = sh[_u(pe)]
            be = buf[_u(src + qe)]
            take_a = ae > be
            buf[_u(dst + k)] = min(a, b)
            buf[_u(last - k)] = max(ae, be)
            q += take_b
            p += 1 - take_b
            pe -= take_a
            qe -= 1 - take_a


@nb.njit(cache=True)
def sorted_sums(vals, start, stop, buf, sh):
    """Sorted subset sums of ``vals[start:stop]``, built in ``buf``; returns their offset.

    With k = stop - start, ``buf`` must hold ``2 * 2**k`` floats and ``sh``
    ``2**(k - 1)``; the 2**k sorted sums are ``buf[off:off + 2**k]``.
    """
    cap = buf.shape[0] // 2
    src = 0
    dst = cap
    buf[0] = 0.0
    size = 1
    for idx in range(start, stop):
        _merge_step(buf, src, dst, sh, size, vals[idx])
        size *= 2
        src, dst = dst, src
    return src


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
                s = work[_u(m)] + x
                work[_u(size + m)] = s
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


@nb.njit(cache=True, inline="always")
def _walk(A, B, target, eps, i, iend, j, best, bi, bj):
    """Two-pointer walk for i in [i, iend); returns (best, bi, bj, stopped_early)."""
    while i < iend and j >= 0:
        d = A[_u(i)] + B[_u(j)] - target
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
def _start_j(B, x):
    """Where the two-pointer walk stands in B when it reaches an A value x."""
    j = np.searchsorted(B, x)
    return min(j, B.shape[0] - 1)


@nb.njit(cache=True)
def _closest_pair(A, B, target, eps):
    """Find a + b closest to target, A and B sorted ascending.

    The two-pointer walk is one long dependency chain (load, add, compare,
    move). For long lists A is cut into four chunks, each walked from the B
    position the global walk would have there (found by binary search), and
    the four walks are interleaved so their chains overlap. Stops early once
    within ``eps`` (``eps < 0``: never). Returns (best_abs_error, i, j, early).
    """
    na = A.shape[0]
    nbb = B.shape[0]
    if na < 64:
        return _walk(A, B, target, eps, 0, na, nbb - 1, np.inf, 0, nbb - 1)
    q = na // 4
    i0, i1, i2, i3 = 0, q, 2 * q, 3 * q
    e0, e1, e2, e3 = q, 2 * q, 3 * q, na
    j0 = nbb - 1
    j1 = _start_j(B, target - A[i1])
    j2 = _start_j(B, target - A[i2])
    j3 = _start_j(B, target - A[i3])
    best = np.inf
    bi = 0
    bj = 0
    while (
        i0 < e0 and i1 < e1 and i2 < e2 and i3 < e3
        and j0 >= 0 and j1 >= 0 and j2 >= 0 and j3 >= 0
    ):
        d0 = A[_u(i0)] + B[_u(j0)] - target
        d1 = A[_u(i1)] + B[_u(j1)] - target
        d2 = A[_u(i2)] + B[_u(j2)] - target
        d3 = A[_u(i3)] + B[_u(j3)] - target
        a0 = abs(d0)
        a1 = abs(d1)
        a2 = abs(d2)
        a3 = abs(d3)
        m = min(min(a0, a1), min(a2, a3))
        if m < best:
            if a0 == m:
                bi, bj = i0, j0
            elif a1 == m:
                bi, bj = i1, j1
            elif a2 == m:
                bi, bj = i2, j2
            else:
                bi, bj = i3, j3
            best = m
            if m <= eps:
                return best, bi, bj, True
        s0 = d0 < 0.0
        s1 = d1 < 0.0
        s2 = d2 < 0.0
        s3 = d3 < 0.0
        i0 += s0
        j0 -= 1 - s0
        i1 += s1
        j1 -= 1 - s1
        i2 += s2
        j2 -= 1 - s2
        i3 += s3
        j3 -= 1 - s3
    # finish each lane alone
    best, bi, bj, early = _walk(A, B, target, eps, i0, e0, j0, best, bi, bj)
    if early:
        return best, bi, bj, True
    best, bi, bj, early = _walk(A, B, target, eps, i1, e1, j1, best, bi, bj)
    if early:
        return best, bi, bj, True
    best, bi, bj, early = _walk(A, B, target, eps, i2, e2, j2, best, bi, bj)
    if early:
        return best, bi, bj, True
    return _walk(A, B, target, eps, i3, e3, j3, best, bi, bj)


@nb.njit(cache=True)
def _direct_eps(vals, k, target, eps, work, out_mask):
    """First subset of ``vals[:k]`` within ``eps`` of ``target``, in doubling order.

    Enumerates the 2^k left-fold sums (``work[m | 2^t] = work[m] + vals[t]``)
    and stops at the first within ``eps``; its index's bits are the subset, so
    nothing needs recovering. With k about log2(1/eps) + 2, a few sums land
    within eps on average and the first is met after about 1/eps additions:
    far less work than sorting two halves when eps is moderate.
    Writes ``out_mask[:k]`` and returns True on success; False leaves it alone.
    """
    if abs(target) <= eps:
        for t in range(k):
            out_mask[t] = False
        return True
    work[0] = 0.0
    size = 1
    for t in range(k):
        x = vals[t]
        for m in range(size):
            v = work[_u(m)] + x
            work[_u(size + m)] = v
            if abs(v - target) <= eps:
                code = size + m
                for b in range(k):
                    out_mask[b] = (code >> b) & 1
                return True
        size *= 2
    return False


@nb.njit(cache=True)
def _mitm_one(vals, n, target, eps, bufA, bufB, work, out_mask):
    """Meet in the middle on ``vals[:n]``; writes out_mask[:n], returns (err, early).

    ``bufA`` and ``bufB`` hold ``2 * cap`` floats and ``work`` ``cap``, where
    ``cap = 2 ** (n - n // 2)``.
    """
    n1 = n // 2
    offA = sorted_sums(vals, 0, n1, bufA, work)
    offB = sorted_sums(vals, n1, n, bufB, work)
    A = bufA[offA : offA + (1 << n1)]
    B = bufB[offB : offB + (1 << (n - n1))]
    best, bi, bj, early = _closest_pair(A, B, target, eps)
    for t in range(n):
        out_mask[t] = False
    recover_subset(vals, 0, n1, A[bi], work, out_mask)
    recover_subset(vals, n1, n, B[bj], work, out_mask)
    return best, early


# ----------------------------------------------------------------------------
# batched solvers


@nb.njit(cache=True)
def _mitm_rows(values, targets, eps, kd, k0, step, kmax, masks, proven, totals, lo, hi):
    """Rows ``lo..hi-1`` of :func:`mitm_batch`, with one buffer set for them all."""
    n = values.shape[1]
    kmax = min(n, kmax)
    kd = min(kd, n)
    cap = max(1 << (kmax - kmax // 2), 1 << kd)
    bufA = np.empty(2 * cap, np.float64)
    bufB = np.empty(2 * cap, np.float64)
    work = np.empty(cap, np.float64)
    for r in range(lo, hi):
        row = values[r]
        if eps < 0.0:
            _mitm_one(row, n, targets[r], -1.0, bufA, bufB, work, masks[r])
            proven[r] = True
        elif kd > 0 and _direct_eps(row, kd, targets[r], eps, work, masks[r]):
            proven[r] = False
        else:
            k = min(k0, kmax)
            while True:
                err, early = _mitm_one(row, k, targets[r], eps, bufA, bufB, work, masks[r])
                if err <= eps or k == kmax:
                    break
                k = min(kmax, k + step)
            for t in range(k, n):
                masks[r, t] = False
            proven[r] = (k == n) and not early
        tot = 0.0
        for t in range(n):
            if masks[r, t]:
                tot += row[t]
        totals[r] = tot


@nb.njit(cache=True, parallel=True)
def mitm_batch(values, targets, eps, kd, k0, step, kmax, masks, proven, totals, nthreads):
    """Solve ``B`` independent instances (rows of ``values``) by meet in the middle.

    Parameters
    ----------
    values : float64[B, n]
    targets : float64[B]
    eps : float
        Stop at the first subset within ``eps``; ``eps < 0`` solves exactly.
    kd : int
        eps mode only: first try :func:`_direct_eps` on the prefix of ``kd``
        values (0 skips it).
    k0, step, kmax : int
        eps mode only: then solve exactly on the prefix of ``k0`` values, then on
        prefixes grown by ``step`` until the error is within ``eps`` or the
        prefix holds ``min(n, kmax)`` values (exact mode ignores them and
        needs ``n <= kmax``).
    masks : bool[B, n] (output)
    proven : bool[B] (output)
        True when the returned subset is the optimum over the whole row.
    totals : float64[B] (output)
        Sum of the kept values of each row, a left fold in index order (the
        row is still in cache, which spares a second pass over ``values``).
    nthreads : int
        Number of chunks (one per thread; pass ``numba.get_num_threads()``).
    """
    nb_inst = values.shape[0]
    chunk = (nb_inst + nthreads - 1) // nthreads
    for c in nb.prange(nthreads):
        lo = c * chunk
        hi = min(nb_inst, lo + chunk)
        if lo < hi:
            _mitm_rows(values, targets, eps, kd, k0, step, kmax, masks, proven, totals, lo, hi)


@nb.njit(cache=True)
def mitm_batch_serial(values, targets, eps, kd, k0, step, kmax, masks, proven, totals, nthreads):
    """:func:`mitm_batch` on the calling thread (``nthreads`` ignored): small batches
    skip the thread-pool launch, which costs more than solving them on a busy machine."""
    _mitm_rows(values, targets, eps, kd, k0, step, kmax, masks, proven, totals,
               0, values.shape[0])


@nb.njit(cache=True, parallel=True)
def shared_mitm(values, targets, eps, masks, proven, nthreads):
    """Many targets against one value vector: halves sorted once, two-pointer per target."""
    n = values.shape[0]
    m = targets.shape[0]
    n1 = n // 2
    cap = 1 << (n - n1)
    bufA = np.empty(2 * cap, np.float64)
    bufB = np.empty(2 * cap, np.float64)
    work = np.empty(cap, np.float64)
    offA = sorted_sums(values, 0, n1, bufA, work)
    offB = sorted_sums(values, n1, n, bufB, work)
    A = bufA[offA : offA + (1 << n1)].copy()
    B = bufB[offB : offB + (1 << (n - n1))].copy()
    chunk = (m + nthreads - 1) // nthreads
    for c in nb.prange(nthreads):
        lo = c * chunk
        hi = min(m, lo + chunk)
        if lo >= hi:
            continue
        work = np.empty(cap, np.float64)
        for r in range(lo, hi):
            _, bi, bj, early = _closest_pair(A, B, targets[r], eps)
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
        buf = np.empty(2 * size, np.float64)
        sh = np.empty(max(1, size // 2), np.float64)
        for r in range(first, last):
            off = sorted_sums(values[r], 0, n, buf, sh)
            out[r] = _coverage_sorted(buf[off : off + size], lo, hi)


@nb.njit(cache=True, parallel=True)
def masked_sums(values, masks, out):
    """out[b] = sum of values[b, i] over i with masks[b, i], as a left fold in index order."""
    nb_inst, n = masks.shape
    for r in nb.prange(nb_inst):
        s = 0.0
        for i in range(n):
            if masks[r, i]:
                s += values[r, i]
        out[r] = s


@nb.njit(cache=True, parallel=True)
def masked_sums_shared(values, masks, out):
    """:func:`masked_sums` with one value vector shared by every row of ``masks``."""
    nb_inst, n = masks.shape
    for r in nb.prange(nb_inst):
        s = 0.0
        for i in range(n):
            if masks[r, i]:
                s += values[i]
        out[r] = s


# ----------------------------------------------------------------------------
# coverage as a decision: does every target in [lo, hi] have a sum within eps?


@nb.njit(cache=True)
def _eps_intervals(B, eps, Ilo, Ihi):
    """Merge the closed intervals [b - eps, b + eps] of sorted B; returns their count."""
    m = 0
    cur_lo = B[0] - eps
    cur_hi = B[0] + eps
    for j in range(1, B.shape[0]):
        b_lo = B[j] - eps
        if b_lo <= cur_hi:
            cur_hi = B[j] + eps
        else:
            Ilo[m] = cur_lo
            Ihi[m] = cur_hi
            m += 1
            cur_lo = b_lo
            cur_hi = B[j] + eps
    Ilo[m] = cur_lo
    Ihi[m] = cur_hi
    return m + 1


@nb.njit(cache=True)
def covers_one(vals, n, lo, hi, eps, bufA, bufB, work, Ilo, Ihi):
    """True when every z in [lo, hi] lies within eps of a subset sum of ``vals[:n]``.

    Meet in the middle without materialising the 2^n sums: B_eps, the union of
    the intervals [b - eps, b + eps] over the sorted sums b of the second half,
    is built once; the uncovered part of [lo, hi] (a list of holes) starts as
    the whole interval and, for each sum a of the first half (smallest |a|
    first), loses a + B_eps. Stops as soon as no hole is left. Holes shrink
    geometrically once a few shifts have been applied, so this costs about
    2^(n/2) log 2^(n/2) per instance instead of sorting all 2^n sums.
    """
    n1 = n // 2
    offA = sorted_sums(vals, 0, n1, bufA, work)
    offB = sorted_sums(vals, n1, n, bufB, work)
    na = 1 << n1
    A = bufA[offA : offA + na]
    B = bufB[offB : offB + (1 << (n - n1))]
    m = _eps_intervals(B, eps, Ilo, Ihi)
    cap = 64
    H1 = np.empty(cap, np.float64)
    H2 = np.empty(cap, np.float64)
    G1 = np.empty(cap, np.float64)
    G2 = np.empty(cap, np.float64)
    H1[0] = lo
    H2[0] = hi
    nh = 1
    # visit A by increasing |a|: walk outwards from the first non-negative sum
    up = np.searchsorted(A, 0.0)
    down = up - 1
    for _ in range(na):
        if up < na and (down < 0 or abs(A[up]) <= abs(A[down])):
            a = A[up]
            up += 1
        else:
            a = A[down]
            down -= 1
        ng = 0
        for h in range(nh):
            h1 = H1[h]
            h2 = H2[h]
            # first interval whose shifted right end reaches h1
            k = np.searchsorted(Ihi[:m], h1 - a)
            x = h1
            touched = False
            while k < m and Ilo[k] + a <= h2:
                c = Ilo[k] + a
                d = Ihi[k] + a
                touched = True
                if c > x:
                    if ng + 2 > G1.shape[0]:
                        G1n = np.empty(2 * G1.shape[0], np.float64)
                        G2n = np.empty(2 * G1.shape[0], np.float64)
                        G1n[:ng] = G1[:ng]
                        G2n[:ng] = G2[:ng]
                        G1, G2 = G1n, G2n
                    G1[ng] = x
                    G2[ng] = c
                    ng += 1
                if d > x:
                    x = d
                if x >= h2:
                    break
                k += 1
            if not touched or x < h2:
                if ng + 1 > G1.shape[0]:
                    G1n = np.empty(2 * G1.shape[0], np.float64)
                    G2n = np.empty(2 * G1.shape[0], np.float64)
                    G1n[:ng] = G1[:ng]
                    G2n[:ng] = G2[:ng]
                    G1, G2 = G1n, G2n
                G1[ng] = x if touched else h1
                G2[ng] = h2
                ng += 1
        if ng == 0:
            return True
        H1, G1 = G1, H1
        H2, G2 = G2, H2
        nh = ng
    return False


@nb.njit(cache=True, parallel=True)
def first_covering_batch(values, lo, hi, eps, n_min, out, nthreads):
    """Per row, the smallest n in [n_min, n_max] whose prefix covers [lo, hi] within eps.

    Scans n upwards with :func:`covers_one` (cost about 2^(n/2) per step, so
    the scan costs a few times its last step); ``n_max + 1`` when no prefix
    covers. Coverage can only improve when a value is added, so the first
    covering prefix is the threshold.
    """
    nb_inst, n_max = values.shape
    chunk = (nb_inst + nthreads - 1) // nthreads
    cap = 1 << (n_max - n_max // 2)
    for c in nb.prange(nthreads):
        first = c * chunk
        last = min(nb_inst, first + chunk)
        if first >= last:
            continue
        bufA = np.empty(2 * cap, np.float64)
        bufB = np.empty(2 * cap, np.float64)
        work = np.empty(cap, np.float64)
        Ilo = np.empty(cap, np.float64)
        Ihi = np.empty(cap, np.float64)
        for r in range(first, last):
            row = values[r]
            k = n_min
            while k <= n_max and not covers_one(row, k, lo, hi, eps, bufA, bufB, work, Ilo, Ihi):
                k += 1
            out[r] = k
