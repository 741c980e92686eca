"""Numba kernels for random subset sum. Plain arrays in, plain arrays out.

Conventions
-----------
* The solver works in 64-bit fixed point (:func:`quantize`): each instance's
  values and target are rounded to multiples of q = 2^(e - 61), where 2^e
  exceeds the sum of their magnitudes, so every subset sum is an exact integer
  below 2^61. Integer compares are shorter on the merge's and the walk's
  dependency chains than float compares, and exact sums let the hot loops move
  values only (no masks): a value found in a sorted list is matched exactly by
  the unsorted doubling enumeration that recovers its subset afterwards.
* Integer sums are merged eight at a time from 8 elements up
  (:mod:`slth.subset_sum._simd`); the scalar branch-free merge does the small
  levels and also sorts float64 sums (coverage kernels). A float subset sum is
  then a left fold over its members in index order from 0.0, which the
  doubling enumeration reproduces bit for bit.
* Batched kernels split the instances into one chunk per thread; each chunk owns
  its buffers, so nothing is allocated per instance.
* Every kernel has a plain-numpy twin in :mod:`slth.subset_sum.reference`.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from ._simd import simd_merge, simd_merge2, simd_merge2_4, simd_merge4

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
    the same iteration, two independent dependency chains the CPU overlaps.
    Ties go to S at the front and to S + x at the back, so the two ends
    partition the output exactly whatever the sign of x. Every output is one
    of the inputs bit for bit. Regions are addressed by offsets into one
    buffer: swapping array objects in numba costs reference-count updates,
    which dominate small merges.
    """
    for i in range(size):
        sh[_u(i)] = buf[_u(src + i)] + x
    last = dst + 2 * size - 1
    p = src
    q = 0
    pe = src + size - 1
    qe = size - 1
    for k in range(size):
        a = buf[_u(p)]
        b = sh[_u(q)]
        take_b = b < a
        ae = buf[_u(pe)]
        be = sh[_u(qe)]
        take_a = ae > be
        buf[_u(dst + k)] = min(a, b)
        buf[_u(last - k)] = max(ae, be)
        q += take_b
        p += 1 - take_b
        pe -= take_a
        qe -= 1 - take_a


@nb.njit(cache=True)
def sorted_sums(vals, start, stop, buf, sh):
    """Sorted subset sums of ``vals[start:stop]`` in ``buf``; returns their offset (0 or cap).

    The merges ping-pong between ``buf[:cap]`` and ``buf[cap:]`` (cap =
    len(buf) // 2 >= 2**k, k = stop - start); ``sh`` holds ``2**(k - 1)``
    values. Works for float64 and int64 arrays alike (the coverage kernels sort
    float sums with it; the solver's integer sums go through
    :func:`sorted_pair_int`).
    """
    src = 0
    dst = buf.shape[0] // 2
    buf[0] = 0
    size = 1
    for idx in range(start, stop):
        _merge_step(buf, src, dst, sh, size, vals[idx])
        size *= 2
        src, dst = dst, src
    return src


@nb.njit(cache=True)
def merge_step_int(buf, src, dst, sh, size, x, variant):
    """One merge level on int64 sums: the vector merge of ``variant`` lanes (8 or 4) from
    that many elements up, the scalar merge below it and for ``variant`` 0."""
    if variant == 8 and size >= 8:
        simd_merge(buf, src, dst, x, size)
    elif variant == 4 and size >= 4:
        simd_merge4(buf, src, dst, x, size)
    else:
        _merge_step(buf, src, dst, sh, size, x)


@nb.njit(cache=True)
def sorted_pair_int(qv, qa, na, qb, nbb, buf, sh, variant):
    """Sorted sums of ``qv[qa:qa + na]`` and ``qv[qb:qb + nbb]`` (int64).

    Returns (ao, ao2, bo, bo2): A's sums at ``buf[ao:]`` and B's at
    ``buf[bo:]``; ao2 and bo2 are the halves' other (free) regions.

    ``buf`` and ``sh`` come from :func:`mitm_buffers`: A ping-pongs between
    the regions at 1 and cap + 2, B between 2 cap + 4 and 3 cap + 5. While both
    halves have values left, their merge levels run together in one vector
    loop (:func:`slth.subset_sum._simd.simd_merge2`, or ``simd_merge2_4`` for
    ``variant`` 4), so the two dependency chains overlap; levels below the
    vector width, and every level of ``variant`` 0, use the scalar merge.
    """
    cap = (buf.shape[0] - 5) // 4
    sa = 1
    da = cap + 2
    sb = 2 * cap + 4
    db = 3 * cap + 5
    buf[sa] = 0
    buf[sb] = 0
    size = 1
    common = min(na, nbb)
    for lvl in range(common):
        xa = qv[qa + lvl]
        xb = qv[qb + lvl]
        if variant == 8 and size >= 8:
            simd_merge2(buf, sa, da, xa, sb, db, xb, size)
        elif variant == 4 and size >= 4:
            simd_merge2_4(buf, sa, da, xa, sb, db, xb, size)
        else:
            _merge_step(buf, sa, da, sh, size, xa)
            _merge_step(buf, sb, db, sh, size, xb)
        size *= 2
        sa, da = da, sa
        sb, db = db, sb
    size_a = size
    for lvl in range(common, na):
        merge_step_int(buf, sa, da, sh, size_a, qv[qa + lvl], variant)
        size_a *= 2
        sa, da = da, sa
    for lvl in range(common, nbb):
        merge_step_int(buf, sb, db, sh, size, qv[qb + lvl], variant)
        size *= 2
        sb, db = db, sb
    return sa, da, sb, db


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
def recover_code(vals, start, stop, value, work):
    """Code (bit t: member ``start + t``) of a subset of ``vals[start:stop]`` summing to ``value``.

    ``value`` must be one of the sums produced by :func:`sorted_sums` (or
    :func:`sorted_pair_int`) on the same array (exact integers, or float left
    folds): the unsorted doubling enumeration
    ``work[m | 2^t] = work[m] + vals[start + t]`` reproduces each such sum bit
    for bit, so the first match is returned (-1 if none, which
    would indicate a bug). Each doubling level is built and searched in one
    vectorised pass; only the level holding the match is scanned for it.
    ``work`` holds ``2**(stop - start)`` values.
    """
    if value == 0:
        return 0
    work[0] = 0
    size = 1
    for t in range(stop - start):
        x = vals[start + t]
        hits = 0
        for m in range(size):  # no exit inside: the loop vectorises
            s = work[_u(m)] + x
            work[_u(size + m)] = s
            hits += s == value
        if hits:
            for m in range(size):
                if work[_u(size + m)] == value:
                    return size + m
        size *= 2
    return -1


#: From this many values on, integer subsets are recovered by meet in the middle.
_RECOVER_MITM_K = 14


@nb.njit(cache=True)
def recover_code_int(vals, start, stop, value, work):
    """:func:`recover_code` for exact integer sums; meet in the middle from 14 values on.

    The doubling enumeration streams up to 2^k sums through memory (2^16 of
    them per half at n = 32, about a tenth of the solve); integer sums are
    associative, so the subset can instead be found from the 2^(k/2) sums of
    the low values and the sorted 2^(k/2) sums of the high ones, one binary
    search per low sum. Returns some subset summing to ``value`` (the first
    low sum that has a partner), -1 if none. ``work`` holds
    ``2**(k // 2) + 2**(k - k // 2)`` values.
    """
    k = stop - start
    if k < _RECOVER_MITM_K:
        return recover_code(vals, start, stop, value, work)
    k1 = k // 2
    work[0] = 0
    nl = 1
    for t in range(k1):
        x = vals[start + t]
        for m in range(nl):
            work[_u(nl + m)] = work[_u(m)] + x
        nl *= 2
    work[nl] = 0
    nr = 1
    for t in range(k1, k):
        x = vals[start + t]
        for m in range(nr):
            work[_u(nl + nr + m)] = work[_u(nl + m)] + x
        nr *= 2
    order = np.argsort(work[nl : nl + nr])
    high = work[nl : nl + nr][order]
    for m in range(nl):
        need = value - work[m]
        j = np.searchsorted(high, need)
        if j < nr and high[j] == need:
            return m | (order[j] << k1)
    return -1


#: Fixed-point sentinel: 2^62, above every quantised sum (at most 2^61 + n in magnitude).
_BIG = np.int64(1) << np.int64(62)


@nb.njit(cache=True)
def quantize(vals, k, target, qv):
    """Round ``vals[:k]`` and ``target`` to multiples of q = 2^(e - 61); returns (target_q, 1/q).

    2^e is the smallest power of two above ``sum |vals[:k]| + |target|`` (or
    above (k + 1) times the largest magnitude, if that sum overflows), so
    every quantised subset sum and the quantised target are integers of
    magnitude at most 2^61 + (k + 1) / 2; ``qv[:k]`` receives the values.
    Each rounding moves a value by at most q/2, so the error of any subset
    (target included) moves by at most (k + 1) q / 2.
    """
    s = abs(target)
    big = s
    for i in range(k):
        s += abs(vals[i])
        big = max(big, abs(vals[i]))
    if s == 0.0:
        e = 0
    elif s < np.inf:
        e = max(math.frexp(s)[1], -900)  # s < 2^e; the floor keeps 1/q finite
    else:  # the float sum overflowed: bound it by (k + 1) max |x| instead
        e = math.frexp(big)[1]
        c = 1
        while c < k + 1:
            c *= 2
            e += 1
    scale = math.ldexp(1.0, 61 - e)
    for i in range(k):
        qv[i] = np.int64(np.rint(vals[i] * scale))
    return np.int64(np.rint(target * scale)), scale


@nb.njit(cache=True)
def quantized_eps(eps, scale, k):
    """Largest quantised error that proves a true error <= eps (k values; -1: never)."""
    if eps < 0.0:
        return np.int64(-1)
    e = min(eps * scale, 4.0e18)
    return max(np.int64(math.floor(e)) - (k + 1), np.int64(-1))


@nb.njit(cache=True, inline="always")
def _walk_split(buf, ao, na, bo, nbb, t, d):
    """Number of steps on A among the first ``d`` steps of the two-pointer walk.

    The walk is a merge of A (ascending) with t - B (ascending as j falls),
    taking A[i] first when A[i] + B[j] - t < 0; this is the merge-path binary
    search for the point where that merge has emitted ``d`` elements.
    """
    lo = max(0, d - nbb)
    hi = min(d, na)
    while lo < hi:
        mid = (lo + hi) >> 1
        if buf[_u(ao + mid)] + buf[_u(bo + nbb - d + mid)] - t < 0:
            lo = mid + 1
        else:
            hi = mid
    return lo


@nb.njit(cache=True)
def closest_pair(buf, ao, na, bo, nbb, t, eps_q):
    """Closest a + b to t over A = buf[ao:ao+na], B = buf[bo:bo+nbb], both ascending int64.

    Needs the sentinels ``buf[ao + na] = _BIG`` and ``buf[bo - 1] = -_BIG``.
    The two-pointer walk (na + nbb steps) is one long dependency chain (load,
    add, compare, move), so it is cut by merge-path splits into four equal
    segments walked in lockstep; each segment visits exactly the pairs the
    single walk visits there, and the sentinels let every segment run its full
    length without bounds tests (a sentinel pair is never the closest: some
    real pair is always visited and is nearer). One buffer and a fixed trip
    count keep all eight pointers in registers. Stops early once the error is
    at most ``eps_q`` (-1: never). Returns (error, i, j, stopped_early).
    """
    total = na + nbb
    seg = total // 4
    i1 = _walk_split(buf, ao, na, bo, nbb, t, seg)
    i2 = _walk_split(buf, ao, na, bo, nbb, t, 2 * seg)
    i3 = _walk_split(buf, ao, na, bo, nbb, t, 3 * seg)
    a0 = ao
    b0 = bo + nbb - 1
    a1 = ao + i1
    b1 = bo + nbb - 1 - (seg - i1)
    a2 = ao + i2
    b2 = bo + nbb - 1 - (2 * seg - i2)
    a3 = ao + i3
    b3 = bo + nbb - 1 - (3 * seg - i3)
    best = _BIG
    ba = ao
    bb = bo
    for _ in range(seg):
        d0 = buf[_u(a0)] + buf[_u(b0)] - t
        d1 = buf[_u(a1)] + buf[_u(b1)] - t
        d2 = buf[_u(a2)] + buf[_u(b2)] - t
        d3 = buf[_u(a3)] + buf[_u(b3)] - t
        m = min(min(abs(d0), abs(d1)), min(abs(d2), abs(d3)))
        if m < best:
            best = m
            if abs(d0) == m:
                ba, bb = a0, b0
            elif abs(d1) == m:
                ba, bb = a1, b1
            elif abs(d2) == m:
                ba, bb = a2, b2
            else:
                ba, bb = a3, b3
            if m <= eps_q:
                return best, ba - ao, bb - bo, True
        # d < 0: step on A (a += 1), else on B (b -= 1); s = -1 or 0
        s0 = d0 >> 63
        s1 = d1 >> 63
        s2 = d2 >> 63
        s3 = d3 >> 63
        a0 -= s0
        b0 -= 1 + s0
        a1 -= s1
        b1 -= 1 + s1
        a2 -= s2
        b2 -= 1 + s2
        a3 -= s3
        b3 -= 1 + s3
    for _ in range(total - 4 * seg):  # the last segment's remainder
        d3 = buf[_u(a3)] + buf[_u(b3)] - t
        if abs(d3) < best:
            best = abs(d3)
            ba, bb = a3, b3
            if best <= eps_q:
                return best, ba - ao, bb - bo, True
        s3 = d3 >> 63
        a3 -= s3
        b3 -= 1 + s3
    return best, ba - ao, bb - bo, False


@nb.njit(cache=True)
def mitm_buffers(kmax):
    """(buf, sh, qv) for :func:`mitm_prefixes` on up to ``kmax`` values."""
    cap = 1 << (kmax - kmax // 2)
    return (
        np.empty(4 * cap + 5, np.int64),
        np.empty(cap, np.int64),
        np.empty(2 * max(kmax, 1), np.int64),
    )


@nb.njit(cache=True)
def mitm_prefixes(vals, k0, kmax, step, target, eps, buf, sh, qv, out_mask, variant):
    """Meet in the middle on the prefixes ``vals[:k]``, k = k0, k0 + step, ..., kmax.

    Stops at the first prefix whose search finds a subset proven within
    ``eps``; ``eps < 0`` with ``k0 = kmax`` is one exact search. Everything runs
    in fixed point (:func:`quantize`, one scale from the kmax values for every
    prefix). The halves interleave (A: even positions, B: odd), so growing the
    prefix adds each new value to one half with a single merge step on its
    sorted sums, instead of sorting both halves again. ``buf`` holds two
    ping-pong regions per half, each with a free slot before and after it for
    the walk's sentinels (buffers from :func:`mitm_buffers`). Writes
    ``out_mask[:k]``; returns (k, early), ``early`` True when the search
    stopped at a subset proven within eps. ``variant`` is the merge width
    (:func:`merge_step_int`).
    """
    tq, scale = quantize(vals, kmax, target, qv)
    na_max = (kmax + 1) // 2
    qa = kmax  # A's values at qv[qa:qa + na_max], B's at qv[qb:qb + kmax // 2]
    qb = kmax + na_max
    for m in range(na_max):
        qv[qa + m] = qv[2 * m]
    for m in range(kmax // 2):
        qv[qb + m] = qv[2 * m + 1]
    k = k0
    na = (k + 1) // 2
    nbb = k // 2
    ao, ao2, bo, bo2 = sorted_pair_int(qv, qa, na, qb, nbb, buf, sh, variant)
    while True:
        buf[ao + (1 << na)] = _BIG
        buf[bo - 1] = -_BIG
        _, i, j, early = closest_pair(
            buf, ao, 1 << na, bo, 1 << nbb, tq, quantized_eps(eps, scale, k)
        )
        if early or k >= kmax:
            break
        for _ in range(min(step, kmax - k)):
            if k % 2 == 0:  # position k joins A
                merge_step_int(buf, ao, ao2, sh, 1 << na, qv[qa + na], variant)
                ao, ao2 = ao2, ao
                na += 1
            else:
                merge_step_int(buf, bo, bo2, sh, 1 << nbb, qv[qb + nbb], variant)
                bo, bo2 = bo2, bo
                nbb += 1
            k += 1
    code_a = recover_code_int(qv, qa, qa + na, buf[ao + i], sh)
    code_b = recover_code_int(qv, qb, qb + nbb, buf[bo + j], sh)
    for t in range(k):
        out_mask[t] = False
    for m in range(na):
        out_mask[2 * m] = (code_a >> m) & 1
    for m in range(nbb):
        out_mask[2 * m + 1] = (code_b >> m) & 1
    return k, early


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



# ----------------------------------------------------------------------------
# batched solvers


@nb.njit(cache=True)
def _mitm_rows(values, targets, eps, kd, k0, step, kmax, masks, proven, totals, lo, hi,
               variant):
    """Rows ``lo..hi-1`` of :func:`mitm_batch`, with one buffer set for them all.

    Each row is copied into a chunk-local buffer and its mask built in another:
    a view such as ``values[r]`` updates the parent array's reference count
    atomically, and two threads doing that per row fight over one cache line
    (measured: eps mode at 1e-3 scaled 1.3x on 2 threads with views).
    """
    n = values.shape[1]
    kmax = min(n, kmax)
    kd = min(kd, n)
    buf, sh, qv = mitm_buffers(kmax)
    work = np.empty(1 << kd, np.float64)
    row = np.empty(n, np.float64)
    mask = np.zeros(n, np.bool_)
    for r in range(lo, hi):
        for t in range(n):
            row[t] = values[r, t]
        target = targets[r]
        if eps < 0.0:
            mitm_prefixes(row, n, n, 1, target, -1.0, buf, sh, qv, mask, variant)
            proven[r] = True
        elif kd > 0 and _direct_eps(row, kd, target, eps, work, mask):
            for t in range(kd, n):
                mask[t] = False
            proven[r] = False
        else:
            k, early = mitm_prefixes(row, min(k0, kmax), kmax, step, target, eps, buf, sh, qv,
                                     mask, variant)
            for t in range(k, n):
                mask[t] = False
            proven[r] = (k == n) and not early
        tot = 0.0
        for t in range(n):
            masks[r, t] = mask[t]
            if mask[t]:
                tot += row[t]
        totals[r] = tot


@nb.njit(cache=True, parallel=True)
def mitm_batch(values, targets, eps, kd, k0, step, kmax, masks, proven, totals, nthreads,
               variant):
    """Solve ``B`` independent instances (rows of ``values``) by meet in the middle.

    Parameters
    ----------
    values : float64[B, n]
    targets : float64[B]
    eps : float
        Stop at the first subset proven within ``eps``; ``eps < 0`` solves exactly.
    kd : int
        eps mode only: first try :func:`_direct_eps` on the prefix of ``kd``
        values (0 skips it).
    k0, step, kmax : int
        eps mode only: then meet in the middle on the prefix of ``k0`` values,
        then on prefixes grown by ``step`` until a subset is proven within
        ``eps`` or the prefix holds ``min(n, kmax)`` values (exact mode
        ignores them and needs ``n <= kmax``).
    masks : bool[B, n] (output)
    proven : bool[B] (output)
        True when the returned subset is the optimum over the whole row.
    totals : float64[B] (output)
        Sum of the kept values of each row, a left fold in index order (the
        row is still in cache, which spares a second pass over ``values``).
    nthreads : int
        Number of chunks (one per thread; pass ``numba.get_num_threads()``).
    variant : int
        Merge width: 8, 4 or 0 (scalar); see :mod:`slth.subset_sum.variants`.
    """
    nb_inst = values.shape[0]
    chunk = (nb_inst + nthreads - 1) // nthreads
    for c in nb.prange(nthreads):
        lo = c * chunk
        hi = min(nb_inst, lo + chunk)
        if lo < hi:
            _mitm_rows(values, targets, eps, kd, k0, step, kmax, masks, proven, totals, lo, hi,
                       variant)


@nb.njit(cache=True)
def mitm_batch_serial(values, targets, eps, kd, k0, step, kmax, masks, proven, totals, nthreads,
                      variant):
    """:func:`mitm_batch` on the calling thread (``nthreads`` ignored): small batches
    skip the thread-pool launch, which costs more than solving them on a busy machine."""
    _mitm_rows(values, targets, eps, kd, k0, step, kmax, masks, proven, totals,
               0, values.shape[0], variant)


@nb.njit(cache=True, parallel=True)
def shared_mitm(values, targets, eps, masks, proven, nthreads, variant):
    """Many targets against one value vector: halves sorted once, one walk per target.

    Fixed point as in :func:`mitm_prefixes`, with one scale for every target
    (from ``sum |values| + max |targets|``).
    """
    n = values.shape[0]
    m = targets.shape[0]
    n1 = n // 2
    na = 1 << n1
    nbb = 1 << (n - n1)
    tmax = 0.0
    for r in range(m):
        tmax = max(tmax, abs(targets[r]))
    buf, sh, qv = mitm_buffers(n)
    _, scale = quantize(values, n, tmax, qv)
    ao, _, bo, _ = sorted_pair_int(qv, 0, n1, n1, n - n1, buf, sh, variant)
    buf[ao + na] = _BIG
    buf[bo - 1] = -_BIG
    eps_q = quantized_eps(eps, scale, n)
    chunk = (m + nthreads - 1) // nthreads
    for c in nb.prange(nthreads):
        lo = c * chunk
        hi = min(m, lo + chunk)
        if lo >= hi:
            continue
        work = np.empty(sh.shape[0], np.int64)
        for r in range(lo, hi):
            tq = np.int64(np.rint(targets[r] * scale))
            _, i, j, early = closest_pair(buf, ao, na, bo, nbb, tq, eps_q)
            code_a = recover_code_int(qv, 0, n1, buf[ao + i], work)
            code_b = recover_code_int(qv, n1, n, buf[bo + j], work)
            for t in range(n1):
                masks[r, t] = (code_a >> t) & 1
            for t in range(n - n1):
                masks[r, n1 + t] = (code_b >> t) & 1
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
