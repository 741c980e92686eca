"""The subset-sum engine against its plain-numpy twins, and its contract."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tolerances import TOL

from slth import SLTHError
from slth.errors import InputError, LimitError, ShapeError
from slth.subset_sum import (
    COVERAGE_MAX_N,
    DISTRIBUTIONS,
    EXACT_MAX_N,
    _kernels,
    coverage,
    coverage_batch,
    covers,
    covers_batch,
    eps_direct_length,
    eps_prefix_length,
    first_covering_n,
    sample,
    solve,
    solve_batch,
    success_probability,
)
from slth.subset_sum import reference as ref

TOL64 = TOL[np.dtype(np.float64)]

finite = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False, width=64)


def instances(max_n: int = 16, max_b: int = 6):
    """(values[B, n], targets[B]) with 1 <= n <= max_n."""
    return st.integers(1, max_n).flatmap(
        lambda n: st.integers(1, max_b).flatmap(
            lambda b: st.tuples(
                hnp.arrays(np.float64, (b, n), elements=finite),
                hnp.arrays(np.float64, (b,), elements=st.floats(-3, 3, width=64)),
            )
        )
    )


def brute_errors(values: np.ndarray, targets: np.ndarray) -> np.ndarray:
    return np.array(
        [abs(t - v[ref.bruteforce(v, t)].sum()) for v, t in zip(values, targets)], dtype=float
    )


# ---------------------------------------------------------------- exact mode


@given(instances())
def test_mitm_matches_bruteforce_optimum(inst):
    values, targets = inst
    res = solve_batch(values, targets)
    np.testing.assert_allclose(res.errors, brute_errors(values, targets), atol=TOL64, rtol=0)
    assert res.optimal.all()
    assert res.masks.shape == values.shape and res.masks.dtype == bool


@given(instances())
def test_reported_totals_are_mask_sums(inst):
    values, targets = inst
    for method in ("mitm", "greedy", "bruteforce"):
        res = solve_batch(values, targets, method=method)
        sums = np.array([v[m].sum() for v, m in zip(values, res.masks)])
        np.testing.assert_allclose(res.totals, sums, atol=TOL64, rtol=0)
        np.testing.assert_allclose(res.errors, np.abs(targets - res.totals), atol=0, rtol=0)


@given(instances(), st.sampled_from([1e-1, 1e-2, 1e-3, 1e-6]))
def test_eps_mode_within_eps_whenever_possible(inst, eps):
    values, targets = inst
    res = solve_batch(values, targets, eps=eps)
    best = brute_errors(values, targets)
    feasible = best <= eps - TOL64
    assert np.all(res.errors[feasible] <= eps)
    # an infeasible instance is reported as a failure, never as a success
    assert np.all(res.errors[best > eps + TOL64] > eps)
    assert np.array_equal(res.success, res.errors <= eps)
    # proven-optimal answers really are optimal
    np.testing.assert_allclose(res.errors[res.optimal], best[res.optimal], atol=TOL64, rtol=0)


@given(instances(max_n=12, max_b=1), st.integers(1, 12))
def test_shared_values_match_per_row(inst, m):
    values, _ = inst
    v = values[0]
    targets = np.linspace(-1.5, 1.5, m)
    shared = solve_batch(v, targets)
    rows = solve_batch(np.tile(v, (m, 1)), targets)
    np.testing.assert_allclose(shared.errors, rows.errors, atol=TOL64, rtol=0)
    assert shared.optimal.all()


@pytest.mark.parametrize("n", [21, 24, 28])
def test_shared_values_mitm_path_matches_per_row(n):
    # n > SHARED_FULL_MAX_N uses the sorted-halves two-pointer per target
    rng = np.random.default_rng(n)
    v = rng.uniform(-1, 1, n)
    targets = rng.uniform(-1, 1, 40)
    shared = solve_batch(v, targets)
    rows = solve_batch(np.tile(v, (40, 1)), targets)
    np.testing.assert_allclose(shared.errors, rows.errors, atol=TOL64, rtol=0)


@pytest.mark.parametrize("n", [17, 20, 25, 32])
def test_larger_n_against_split_enumeration(n):
    # beyond brute force: the optimum equals min over all pairs of half sums (numpy)
    rng = np.random.default_rng(100 + n)
    v = rng.uniform(-1, 1, n)
    t = float(rng.uniform(-1, 1))
    n1 = n // 2
    A = np.sort(ref.all_subset_sums(v[:n1])[0])
    B = np.sort(ref.all_subset_sums(v[n1:])[0])
    # for each a, the nearest b to t - a
    k = np.clip(np.searchsorted(B, t - A), 1, B.size - 1)
    best = np.minimum(np.abs(A + B[k] - t), np.abs(A + B[k - 1] - t)).min()
    res = solve(v, t)
    assert abs(res.error - best) <= TOL64
    assert res.optimal


@given(instances(max_n=14))
def test_greedy_kernel_matches_reference(inst):
    values, targets = inst
    res = solve_batch(values, targets, method="greedy")
    expected = np.stack([ref.greedy(v, t) for v, t in zip(values, targets)])
    assert np.array_equal(res.masks, expected)
    assert not res.optimal.any()


def test_kernel_sorted_sums_match_numpy_sort():
    rng = np.random.default_rng(3)
    for n in range(1, 15):
        v = rng.uniform(-1, 1, n)
        size = 1 << n
        buf = np.empty(2 * size)
        off = _kernels.sorted_sums(v, 0, n, buf, np.empty(size))
        out = buf[off : off + size]
        np.testing.assert_allclose(out, np.sort(ref.all_subset_sums(v)[0]), atol=TOL64, rtol=0)
        assert np.all(np.diff(out) >= 0)


def test_recovery_is_exact_for_every_sorted_sum():
    # the left-fold convention: each sorted value is reproduced bit for bit
    rng = np.random.default_rng(4)
    v = rng.normal(size=9)
    size = 1 << 9
    buf = np.empty(2 * size)
    off = _kernels.sorted_sums(v, 0, 9, buf, np.empty(size))
    sums = buf[off : off + size].copy()
    for value in sums:
        code = _kernels.recover_code(v, 0, 9, value, np.empty(size))
        assert code >= 0
        total = 0.0
        for t in range(9):
            if (code >> t) & 1:
                total += v[t]
        assert total == value


@pytest.mark.parametrize("k", [1, 5, 13, 14, 15, 18])
def test_integer_recovery_finds_a_subset_of_every_sum(k):
    # doubling below 14 values, meet in the middle from 14 on; repeated values make ties
    rng = np.random.default_rng(k)
    q = rng.integers(-(2**40), 2**40, k + 3)
    q[k // 2 + 3] = q[3]
    sums = _all_sums_int(q[3 : 3 + k])
    work = np.empty(1 << k, np.int64)
    for value in rng.choice(sums, size=min(sums.size, 200), replace=False):
        code = _kernels.recover_code_int(q, 3, 3 + k, int(value), work)
        assert code >= 0
        assert sum(int(q[3 + t]) for t in range(k) if (code >> t) & 1) == value
    assert _kernels.recover_code_int(q, 3, 3 + k, int(sums.max()) + 1, work) == -1


@given(
    hnp.arrays(np.float64, st.integers(1, 40), elements=st.floats(-1e6, 1e6, width=64)),
    st.floats(-1e6, 1e6, width=64),
)
def test_quantize_bounds_and_rounding(values, target):
    # every quantised sum stays below the sentinel range, each value moves by at most q/2
    qv = np.empty(values.shape[0], np.int64)
    tq, scale = _kernels.quantize(values, values.shape[0], target, qv)
    assert sum(abs(int(q)) for q in qv) + abs(int(tq)) <= 2**61 + values.shape[0] + 1
    # exact rational arithmetic: float64 cannot hold the comparison at 2^61
    half = Fraction(1, 2)
    assert all(abs(int(q) - Fraction(x) * Fraction(scale)) <= half for q, x in zip(qv, values))
    assert abs(int(tq) - Fraction(target) * Fraction(scale)) <= half


def test_quantize_survives_magnitudes_whose_sum_overflows():
    # the float sum of |values| overflows; the scale must stay finite and the values in range
    values = np.array([1.5e308, -1.5e308, 1.0e308])
    qv = np.empty(3, np.int64)
    tq, scale = _kernels.quantize(values, 3, 1.0e308, qv)
    assert 0 < scale < np.inf
    assert sum(abs(int(q)) for q in qv) + abs(int(tq)) <= 2**61 + 4
    res = solve_batch(values[None, :], np.array([1.0e308]))
    assert res.masks.shape == (1, 3)


def _int_pair_reference(A, B, t):
    d = np.abs(A[:, None] + B[None, :] - t)
    return int(d.min())


@pytest.mark.parametrize("na, nb", [(1, 1), (1, 5), (5, 1), (2, 3), (7, 9), (64, 64), (300, 77)])
def test_kernel_closest_pair_matches_all_pairs(na, nb):
    # the four-segment merge-path walk against every pair, sizes around the segment cuts
    rng = np.random.default_rng(na * 1000 + nb)
    for _ in range(20):
        A = np.sort(rng.integers(-(2**40), 2**40, na))
        B = np.sort(rng.integers(-(2**40), 2**40, nb))
        buf = np.concatenate([[-(2**62)], B, [2**62], A, [2**62]]).astype(np.int64)
        bo, ao = 1, nb + 2
        t = int(rng.integers(-(2**41), 2**41))
        best, i, j, early = _kernels.closest_pair(buf, ao, na, bo, nb, t, -1)
        assert not early
        assert best == _int_pair_reference(A, B, t) == abs(int(A[i]) + int(B[j]) - t)
        # early stop: any pair within eps_q is accepted, and it really is within
        eps_q = int(np.quantile(np.abs(A[:, None] + B[None, :] - t), 0.05))
        best, i, j, early = _kernels.closest_pair(buf, ao, na, bo, nb, t, eps_q)
        assert best == abs(int(A[i]) + int(B[j]) - t) <= eps_q


def _all_sums_int(q):
    sums = np.zeros(1, np.int64)
    for x in q:
        sums = np.concatenate([sums, sums + x])
    return sums


def test_kernel_sorted_sums_on_integers():
    rng = np.random.default_rng(8)
    for n in range(1, 13):
        q = rng.integers(-(2**50), 2**50, n)
        q[n // 2] = q[0]  # ties
        size = 1 << n
        buf = np.empty(2 * size, np.int64)
        off = _kernels.sorted_sums(q, 0, n, buf, np.empty(size, np.int64))
        assert np.array_equal(buf[off : off + size], np.sort(_all_sums_int(q)))


@pytest.mark.parametrize("variant", [8, 4, 0])
@pytest.mark.parametrize("na, nb", [(0, 0), (1, 0), (3, 2), (4, 4), (5, 3), (8, 8), (9, 11),
                                    (12, 12), (13, 12)])
def test_kernel_sorted_pair_int_matches_numpy(na, nb, variant):
    # both halves merged in lockstep (vector merge from 8 elements up), then the longer alone
    rng = np.random.default_rng(na * 100 + nb)
    buf, sh, _ = _kernels.mitm_buffers(2 * max(na, nb, 1))
    for scale in (2**20, 2**56):
        q = rng.integers(-scale, scale, na + nb)
        if na + nb >= 3:
            q[2] = q[0]  # ties
        ao, _, bo, _ = _kernels.sorted_pair_int(q, 0, na, na, nb, buf, sh, variant)
        assert np.array_equal(buf[ao : ao + (1 << na)], np.sort(_all_sums_int(q[:na])))
        assert np.array_equal(buf[bo : bo + (1 << nb)], np.sort(_all_sums_int(q[na:])))


@pytest.mark.parametrize("variant", [8, 4, 0])
@pytest.mark.parametrize("size", [1, 2, 4, 8, 16, 64, 256])
def test_kernel_merge_step_int_merges_a_list_with_its_shift(size, variant):
    rng = np.random.default_rng(size)
    for x in (0, 5, -5, 2**40, -(2**40)):
        S = np.sort(rng.integers(-50, 50, size)) * 2**34  # few distinct values: many ties
        buf = np.zeros(4 * size + 2, np.int64)
        buf[1 : 1 + size] = S
        _kernels.merge_step_int(buf, 1, 2 * size + 2, np.empty(size + 16, np.int64), size, x,
                                variant)
        assert np.array_equal(buf[2 * size + 2 : 4 * size + 2], np.sort(np.concatenate([S, S + x])))


def test_solve_single_matches_batch_and_docstring_example():
    r = solve(np.array([0.5, -0.25, 0.125]), 0.625)
    assert r.mask.tolist() == [True, False, True] and r.error == 0.0 and r.optimal
    rng = np.random.default_rng(5)
    v = rng.uniform(-1, 1, 18)
    b = solve_batch(v[None, :], np.array([0.3]))
    s = solve(v, 0.3)
    assert np.array_equal(b.masks[0], s.mask) and b.errors[0] == s.error


def test_results_are_frozen():
    res = solve_batch(np.ones((2, 3)), np.zeros(2))
    with pytest.raises(ValueError):
        res.masks[0, 0] = True
    with pytest.raises(AttributeError):
        res.eps = 1.0  # type: ignore[misc]


def test_eps_mode_beyond_exact_limit():
    rng = np.random.default_rng(6)
    v = rng.uniform(-1, 1, (50, 64))
    t = rng.uniform(-1, 1, 50)
    res = solve_batch(v, t, eps=1e-6)
    assert res.n_failed == 0 and np.all(res.errors <= 1e-6)
    assert not res.masks[:, EXACT_MAX_N:].any()  # prefixes of at most EXACT_MAX_N values


def test_eps_prefix_lengths():
    assert eps_direct_length(0.01) == 11
    assert eps_direct_length(1e-3) == 0  # past 2^-9: meet in the middle from the start
    assert eps_prefix_length(0.01) == 9
    assert eps_prefix_length(1e-3) == 12
    assert eps_prefix_length(2.0) == 4


@pytest.mark.parametrize("eps", [0.5, 0.01, 1e-3, 1e-5, 1e-9])
def test_eps_mode_paths_on_larger_instances(eps):
    # every eps-mode path (direct pass, prefix growth, full exact fallback) on n = 30
    rng = np.random.default_rng(12)
    v = rng.uniform(-1, 1, (300, 30))
    t = rng.uniform(-1.5, 1.5, 300)
    res = solve_batch(v, t, eps=eps)
    exact = solve_batch(v, t)
    ok = exact.errors <= eps
    assert np.all(res.errors[ok] <= eps)
    assert np.all(res.errors[~ok] > eps)
    np.testing.assert_allclose(res.errors[res.optimal], exact.errors[res.optimal], atol=TOL64)


def test_empty_batch():
    res = solve_batch(np.zeros((0, 5)), np.zeros(0))
    assert res.masks.shape == (0, 5) and len(res) == 0


# ---------------------------------------------------------------- coverage


@given(hnp.arrays(np.float64, st.integers(1, 10), elements=st.floats(-1, 1, width=64)),
       st.tuples(st.floats(-2, 0), st.floats(0, 2)))
def test_coverage_matches_reference(values, interval):
    got = coverage(values, interval=interval)
    assert abs(got - ref.coverage_reference(values, interval)) <= TOL64
    # the sup is at least what any grid of targets sees
    assert got >= ref.coverage_grid(values, interval, points=501) - TOL64


def test_coverage_batch_rows_and_known_values():
    # values {0.5, 0.25}: sums {0, .25, .5, .75}; on [0, 1] the worst target is 1 (distance .25)
    assert coverage(np.array([0.5, 0.25]), interval=(0.0, 1.0)) == pytest.approx(0.25)
    # on [0, 0.75] the worst is a midpoint: 0.125
    assert coverage(np.array([0.5, 0.25]), interval=(0.0, 0.75)) == pytest.approx(0.125)
    rng = np.random.default_rng(7)
    v = rng.uniform(-1, 1, (5, 12))
    np.testing.assert_allclose(coverage_batch(v), [coverage(r) for r in v], atol=0, rtol=0)


@given(
    hnp.arrays(np.float64, st.integers(1, 12), elements=st.floats(-1, 1, width=64)),
    st.floats(1e-3, 0.5),
    st.tuples(st.floats(-2, 0), st.floats(0, 2)),
)
def test_covers_matches_exact_coverage(values, eps, interval):
    exact = ref.coverage_reference(values, interval)
    assume_no_tie = abs(exact - eps) > 1e-9
    if assume_no_tie:
        assert covers(values, eps, interval=interval) == (exact <= eps)


def test_covers_batch_and_first_covering_n_against_reference():
    rng = np.random.default_rng(13)
    v = rng.uniform(-1, 1, (60, 14))
    eps = 0.02
    got = first_covering_n(v, eps)
    cov = np.array([[ref.coverage_reference(row[:n]) for n in range(1, 15)] for row in v])
    ok = cov <= eps
    expected = np.where(ok.any(axis=1), ok.argmax(axis=1) + 1, 15)
    assert np.array_equal(got, expected)
    # monotone in n, as Lueker's event must be
    assert np.all(np.diff(ok.astype(int), axis=1) >= 0)
    np.testing.assert_array_equal(covers_batch(v[:, :10], eps), ok[:, 9])


def test_covers_beyond_exact_enumeration():
    # n = 32: the decision agrees with the exact coverage of a cheaper equivalent check:
    # covering [-1, 1] at eps is implied by covering with its first 24 values
    rng = np.random.default_rng(14)
    v = rng.uniform(-1, 1, (20, 32))
    c24 = coverage_batch(v[:, :24]) <= 1e-4
    c32 = covers_batch(v, 1e-4)
    assert np.all(c32[c24])
    assert c32.mean() >= c24.mean()
    assert first_covering_n(v, 1e-4).max() <= 33


def test_success_probability_reproducible_and_monotone():
    a = success_probability(14, 0.01, trials=200, rng=11)
    b = success_probability(14, 0.01, trials=200, rng=11)
    assert a == b
    assert a.low <= a.rate <= a.high
    small = success_probability(6, 0.01, trials=200, rng=11)
    assert small.rate < a.rate
    prod = success_probability(14, 0.01, distribution="product", trials=50, rng=1)
    assert 0 <= prod.rate <= 1 and prod.trials == 50


# ---------------------------------------------------------------- distributions


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_distributions_reproducible_and_shaped(name):
    a = sample(name, (3, 4), rng=5)
    b = sample(name, (3, 4), rng=5)
    assert a.shape == (3, 4) and a.dtype == np.float64
    assert np.array_equal(a, b)
    assert not np.array_equal(a, sample(name, (3, 4), rng=6))


def test_distribution_laws():
    from scipy import stats

    rng = np.random.default_rng(8)
    u = sample("uniform", 20000, rng=rng, scale=2.0)
    assert stats.kstest(u, stats.uniform(-2, 4).cdf).pvalue > 1e-3
    h = sample("hyperbolic", 20000, rng=rng, low=0.01, high=1.0)
    logs = np.log(np.abs(h))  # log|w| is uniform on [log low, log high]
    assert stats.kstest(logs, stats.uniform(np.log(0.01), -np.log(0.01)).cdf).pvalue > 1e-3
    assert 0.45 < np.mean(h > 0) < 0.55
    # product law: E|XY| = 1/4 for X ~ U[0,1], Y ~ U[-1,1]
    p = sample("product", 40000, rng=rng)
    assert abs(np.mean(np.abs(p)) - 0.25) < 0.01 and np.all(np.abs(p) <= 1)


# ---------------------------------------------------------------- bad input

BAD_INPUTS = [
    ("nan value", lambda: solve_batch(np.array([[np.nan, 1.0]]), [0.0]), InputError, "`values`"),
    ("inf target", lambda: solve_batch(np.ones((1, 2)), [np.inf]), InputError, "`targets`"),
    ("nan single target", lambda: solve([1.0], float("nan")), InputError, "`target`"),
    ("empty values", lambda: solve_batch(np.zeros((2, 0)), [0.0, 0.0]), ShapeError, "`values`"),
    ("rows vs targets", lambda: solve_batch(np.ones((3, 2)), [0.0]), ShapeError, "`targets`"),
    ("3-d values", lambda: solve_batch(np.ones((1, 2, 2)), [0.0]), ShapeError, "`values`"),
    ("2-d targets", lambda: solve_batch(np.ones((1, 2)), [[0.0]]), ShapeError, "`targets`"),
    ("eps zero", lambda: solve([1.0], 0.0, eps=0.0), InputError, "`eps`"),
    ("eps negative", lambda: solve([1.0], 0.0, eps=-1e-3), InputError, "`eps`"),
    ("eps nan", lambda: solve([1.0], 0.0, eps=float("nan")), InputError, "`eps`"),
    ("method", lambda: solve([1.0], 0.0, method="milp"), InputError, "`method`"),
    ("exact past limit", lambda: solve(np.ones(EXACT_MAX_N + 1), 0.0), LimitError, "n <= 40"),
    ("bruteforce past limit", lambda: solve(np.ones(21), 0.0, method="bruteforce"),
     LimitError, "bruteforce"),
    ("coverage past limit", lambda: coverage(np.ones(COVERAGE_MAX_N + 1)), LimitError, "`values`"),
    ("coverage interval", lambda: coverage([1.0], interval=(1.0, -1.0)), InputError, "`interval`"),
    ("success n", lambda: success_probability(0, 0.1, trials=3, rng=0), InputError, "`n`"),
    ("covers past limit", lambda: covers(np.ones(41), 0.1), LimitError, "`values`"),
    ("covers eps", lambda: covers(np.ones(3), 0.0), InputError, "`eps`"),
    ("first n_min", lambda: first_covering_n(np.ones((2, 3)), 0.1, n_min=0), InputError,
     "`n_min`"),
    ("success trials", lambda: success_probability(4, 0.1, trials=0, rng=0), InputError,
     "`trials`"),
    ("distribution", lambda: sample("cauchy", 3, rng=0), InputError, "`distribution`"),
    ("hyperbolic range", lambda: sample("hyperbolic", 3, rng=0, low=1.0, high=0.5), InputError,
     "`low`"),
    ("rng type", lambda: sample("uniform", 3, rng="seed"), InputError, "`rng`"),
    ("rng negative", lambda: sample("uniform", 3, rng=-1), InputError, "`rng`"),
    ("non-numeric", lambda: solve(["a", "b"], 0.0), InputError, "`values`"),
]


@pytest.mark.parametrize("call,exc,needle", [c[1:] for c in BAD_INPUTS],
                         ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_raises_clear_error(call, exc, needle):
    with pytest.raises(exc) as info:
        call()
    assert isinstance(info.value, SLTHError) and isinstance(info.value, ValueError)
    assert needle in str(info.value)
    assert "received" in str(info.value) or "accepts" in str(info.value)


def test_exact_limit_message_names_alternatives():
    with pytest.raises(LimitError, match="eps") as info:
        solve(np.ones(41), 0.0)
    assert "greedy" in str(info.value)


# ---------------------------------------------------------------- the empirical law


def test_median_optimal_error_follows_exponential_law():
    # Lueker: the optimum decays like 2^-n; measured median ~ 0.4 sqrt(n) 2^-n.
    # Seeded, 400 instances per n; margin: within a factor 3 of the law.
    rng = np.random.default_rng(9)
    for n in (12, 20, 28):
        v = rng.uniform(-1, 1, (400, n))
        t = rng.uniform(-1, 1, 400)
        med = float(np.median(solve_batch(v, t).errors))
        law = 0.4 * math.sqrt(n) * 2.0**-n
        assert law / 3 < med < 3 * law, (n, med, law)


# ----------------------------------------------------------------------------- memory guard
def test_solve_batch_memory_estimate_matches_tracemalloc():
    import tracemalloc

    from slth.subset_sum.solve import _solve_batch_bytes

    rng = np.random.default_rng(0)
    # large n: the per-thread half buffers dominate; large B: the results
    for B, n, eps in [(1, 36, None), (3000, 24, 1e-3), (100_000, 12, None)]:
        values = rng.uniform(-1, 1, (B, n))
        targets = rng.uniform(-1, 1, B)
        solve_batch(values[:2], targets[:2], eps=eps)  # compile outside the measurement
        tracemalloc.start()
        try:
            solve_batch(values, targets, eps=eps)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        est = _solve_batch_bytes(B, n, eps=eps)
        assert peak / 2 <= est <= 2 * peak, (B, n, eps, est, peak)


def test_solve_batch_checks_finiteness_after_the_memory_guard():
    from slth._memory import using_memory_budget

    values = np.zeros((200_000, 8))
    values[5, 3] = np.nan
    with pytest.raises(InputError, match=r"`values` must be finite.*at index \(5, 3\)"):
        solve_batch(values, np.zeros(200_000))
    with using_memory_budget(1), pytest.raises(LimitError, match=r"^solve_batch: 200000"):
        solve_batch(values, np.zeros(200_000))  # refused before the pass over the values
    with pytest.raises(InputError, match=r"`targets` must be finite"):
        solve_batch(values[:1] * 0, np.array([np.inf]))


def test_float32_input_copy_is_guarded():
    from slth._memory import using_memory_budget

    values = np.zeros((300_000, 8), dtype=np.float32)
    with using_memory_budget(1), pytest.raises(LimitError, match=r"float64 copy of `values`"):
        solve_batch(values, np.zeros(300_000))
    assert solve_batch(values[:10], np.zeros(10)).errors.shape == (10,)


# ----------------------------------------------------------------------------- merge variants
@pytest.mark.parametrize("variant", ["vec8", "vec4", "scalar"])
def test_every_merge_variant_gives_the_same_masks_and_the_reference_optimum(variant):
    from slth.subset_sum.reference import bruteforce_batch
    from slth.subset_sum.variants import merge_variant, use_merge_variant

    rng = np.random.default_rng(7)
    small = rng.uniform(-1, 1, (60, 14))
    ts = rng.uniform(-2, 2, 60)
    big = rng.uniform(-1, 1, (40, 30))
    tb = rng.uniform(-2, 2, 40)
    shared = rng.uniform(-1, 1, 34)
    base = [solve_batch(big, tb), solve_batch(big, tb, eps=1e-6), solve_batch(shared, tb)]
    with use_merge_variant(variant):
        assert merge_variant() == variant
        got = solve_batch(small, ts)
        runs = [solve_batch(big, tb), solve_batch(big, tb, eps=1e-6), solve_batch(shared, tb)]
    ref = bruteforce_batch(small, ts)
    err_ref = np.abs((ref * small).sum(axis=1) - ts)
    np.testing.assert_allclose(got.errors, err_ref, rtol=0, atol=1e-12)
    for a, b in zip(base, runs):
        assert np.array_equal(a.masks, b.masks) and a.errors.tobytes() == b.errors.tobytes()


def test_merge_variant_choice_and_errors(monkeypatch):
    from slth.subset_sum import variants

    assert variants.default_merge_variant() in variants.MERGE_VARIANTS
    if "avx512f" in variants.cpu_vector_features():
        assert variants.default_merge_variant() == "vec8"
    monkeypatch.setenv("SLTH_MERGE_VARIANT", "vec4")
    assert variants.merge_variant() == "vec4"
    with variants.use_merge_variant("scalar"):
        assert variants.merge_variant() == "scalar"
    monkeypatch.setenv("SLTH_MERGE_VARIANT", "avx9")
    with pytest.raises(InputError, match="SLTH_MERGE_VARIANT must be one of"):
        variants.merge_variant()
    with pytest.raises(InputError, match="`name` must be one of 'vec8', 'vec4', 'scalar'"):
        with variants.use_merge_variant("avx2"):
            pass


def test_variant_benchmark_table_runs_and_checks_masks():
    from benchmarks.subset_sum import variant_table

    text = variant_table([12], threads=[1], repeat=1, seed=0, count=50)
    assert "vec8 (inst/s)" in text and "| 12 | 1 | 50 |" in text
