"""Verdict rules of the theorem checks: bracketed success counts, family-wise (Holm) control,
verdicts settled by arithmetic (Theorem 2), and the universal form of Theorem 1."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats

from proofs_check import (
    HOLDS,
    CheckResult,
    family_summary,
    family_wise,
    format_table,
    legend,
    lueker1998,
    overall_verdict,
    pensia2020,
    pensia2020_layer,
    pensia2020_lower_bound,
    pensia2020_universal,
    rate_p_values,
    rate_verdict,
    results_to_markdown,
    success_bounds,
)
from proofs_check import _mlp as M
from slth import MLP
from slth import bounds as B
from slth.constructions import nested_source, source_widths
from slth.constructions import pensia2020 as pensia_c
from slth.errors import InputError
from slth.stats import clopper_pearson
from slth.subset_sum import coverage_batch

# ---------------------------------------------------------------- bracketed counts


def test_success_bounds_counts_each_side():
    cert = np.array([0.05, 0.2, 0.3, np.nan, 0.09])
    adv = np.array([0.01, 0.08, 0.2, 0.05, 0.2])   # last: above its certificate (a bug)
    c = success_bounds(cert, adv, 0.1)
    assert (c.low, c.high, c.trials) == (2, 4, 5)  # certified within eps counts on both sides
    assert success_bounds([None, 0.01], [0.0, 0.0], 0.1).low == 1
    with pytest.raises(InputError, match="`certified`"):
        success_bounds([0.1, 0.2], [0.1], 0.1)
    with pytest.raises(InputError, match="`eps`"):
        success_bounds([0.1], [0.1], -1.0)


def test_violated_only_from_the_upper_bound_on_the_count():
    """The defect: a low *certified* count was read as a low success count."""
    # counts of the issue (2-3-1 target, 60 trials): 38 certified, 51 adversarial within eps
    old, (_, hi_old), _ = rate_verdict(38, 38, 60, 0.9)
    new, (lo, hi), _ = rate_verdict(38, 51, 60, 0.9)
    assert old == "violated" and hi_old < 0.9
    assert new != "violated" and hi == clopper_pearson(51, 60)[1] > 0.9
    assert lo == clopper_pearson(38, 60)[0]
    # a genuinely low count is still caught from the upper bound alone
    assert rate_verdict(10, 40, 60, 0.9)[0] == "violated"
    with pytest.raises(InputError, match="successes_low"):
        rate_verdict(5, 4, 10, 0.9)


def test_pensia_check_is_not_refuted_by_a_loose_certificate(monkeypatch):
    """Certificates far above eps (true errors small) must not make Theorem 1 'violated'."""
    real = pensia2020.approximation_error

    def loose(*args, **kwargs):
        rep = real(*args, **kwargs)
        if rep.certified is None:
            return rep
        return dataclasses.replace(rep, certified=100.0 * rep.certified + 1.0)

    monkeypatch.setattr(pensia2020, "approximation_error", loose)
    r = pensia2020.check((2, 3, 1), 0.1, 0.1, C=14.0, trials=20, c_max=8.0, rng=0,
                         progress=False)
    d = r.details
    assert d["successes_low"] == 0 and d["successes_high"] == 20
    assert r.verdict == "inconclusive", r.reason     # never "violated" from certificates
    assert r.interval[1] == 1.0 and r.measured == 0.0 and d["measured_is"] == "lower bound"
    assert r.p_values["violation"] == 1.0
    # the rule before the fix (both ends from the certified count) would have refuted it
    assert rate_verdict(0, 0, 20, 0.9)[0] == "violated"


def test_pensia_undersized_is_violated_from_the_adversarial_count():
    r = pensia2020.check((2, 3, 1), 0.1, 0.1, C=1.0, trials=20, c_max=4.0, rng=1,
                         progress=False)
    assert r.verdict == "violated", r.reason
    assert r.interval[1] == clopper_pearson(r.details["successes_high"], 20)[1] < 0.9


# ---------------------------------------------------------------- p-values and Holm


@pytest.mark.parametrize("p0", [0.5, 0.9, 0.99])
def test_p_values_reproduce_the_clopper_pearson_rule(p0):
    n = 120
    p1 = max(0.0, 1 - 2 * (1 - p0))
    for k in range(n + 1):
        pv = rate_p_values(k, k, n, p0)
        lo, hi = clopper_pearson(k, n)
        assert pv["violation"] == pytest.approx(stats.binom.cdf(k, n, p0))
        # the per-case rule rejects each one-sided test at 2.5%
        assert (pv["violation"] < 0.025) == (hi < p0)
        if 0 < lo < 1 and abs(lo - p1) > 1e-9:
            assert (pv["consistency"] <= 0.025) == (lo >= p1)


def _case(k: int, n: int, p0: float, name: str = "fake") -> CheckResult:
    verdict, ci, reason = rate_verdict(k, k, n, p0)
    return CheckResult(name=name, case=f"k={k}", paper="Fake 2020", statement="s", claim="c",
                       claimed=p0, measured=k / n, interval=ci, confidence=0.95, trials=n,
                       empirical_constant=None, constant_interval=None, verdict=verdict,
                       reason=reason, p_values=rate_p_values(k, k, n, p0))


def test_holm_controls_false_violations_across_many_cases():
    """20 cases whose true rate is exactly the claim: any 'violated' is false."""
    rng = np.random.default_rng(5)
    runs, cases, n, p0 = 300, 20, 60, 0.9
    per_case = holm = 0
    for _ in range(runs):
        res = [_case(int(k), n, p0) for k in rng.binomial(n, p0, size=cases)]
        per_case += any(r.verdict == "violated" for r in res)
        holm += any(r.verdict == "violated" for r in family_wise(res))
    # per case each has ~1.4% (discrete) false rate: ~25% of runs with 20 cases; Holm <= 5%
    assert per_case / runs > 0.12
    assert holm / runs <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / runs)


def test_holm_revises_verdicts_and_leaves_arithmetic_and_sanity_alone():
    # consistent on its own (p_cons = 0.8^25 ~ 0.004 < 0.025) but not among 20 cases
    weak = _case(25, 25, 0.9)
    assert weak.verdict == "consistent" and weak.p_values["consistency"] > 0.05 / 40
    strong = [_case(100, 100, 0.9) for _ in range(18)]
    holds = dataclasses.replace(_case(0, 10, 0.5), verdict=HOLDS, basis="arithmetic",
                                p_values={})
    bug = dataclasses.replace(_case(10, 10, 0.9), verdict="violated", basis="sanity")
    res = family_wise([weak, *strong, holds, bug])
    assert res[0].verdict == "inconclusive" and res[0].details["verdict_per_case"] == "consistent"
    assert "Holm over 38 tests of 19 cases" in res[0].reason
    assert all(r.verdict == "consistent" for r in res[1:19])
    assert res[19] is holds and res[20] is bug
    fw = res[1].details["family_wise"]
    assert fw["method"] == "holm" and fw["tests"] == 38 and fw["cases"] == 19
    assert all(v >= r.p_values["consistency"] for r in res[1:19]
               for v in [r.details["family_wise"]["adjusted_p_values"]["consistency"]])
    # one case alone: the per-case verdict stands
    assert family_wise([weak])[0].verdict == "consistent"
    assert family_wise([_case(40, 60, 0.9)])[0].verdict == "violated"
    summary = family_summary(res)
    assert summary["tests"] == 38 and summary["arithmetic_cases"] == 1
    with pytest.raises(InputError, match="`alpha`"):
        family_wise(res, alpha=1.5)


def test_holm_derives_p_values_for_records_without_them():
    r = dataclasses.replace(_case(25, 25, 0.9), p_values={})
    out = family_wise([r, *(_case(100, 100, 0.9) for _ in range(19))])
    assert out[0].p_values == rate_p_values(25, 25, 25, 0.9)
    assert out[0].verdict == "inconclusive"


def test_overall_verdict_counts_holds_by_construction_as_no_objection():
    assert overall_verdict(["consistent", HOLDS]) == "consistent"
    assert overall_verdict([HOLDS, "inconclusive"]) == "inconclusive"
    assert overall_verdict([HOLDS, "violated"]) == "violated"


def test_table_columns_and_legend():
    a = dataclasses.replace(_case(100, 100, 0.9, "a"), empirical_constant=3.2,
                            constant_interval=(3.0, None), constant_adversarial=2.5,
                            constant_adversarial_interval=(2.0, 3.1))
    b = dataclasses.replace(_case(10, 20, 0.5, "b"), verdict=HOLDS, basis="arithmetic",
                            size_ratio=12.0, size_ratio_interval=(10.0, 14.0),
                            details={"constant_event_is": "exact", "measured_is": "upper bound",
                                     "claim_short": "params >= bound"})
    res = family_wise([a, b])
    table = format_table(res)
    head = table.splitlines()[0]
    for col in ("claim", "C_cert [95% CI]", "C_adv [95% CI]", "size/bound [95% CI]"):
        assert col in head
    row_a, row_b = table.splitlines()[2:]
    assert "3.20 [3.00, ?]" in row_a and "2.50 [2.00, 3.10]" in row_a and " - " in row_a
    assert "exact" in row_b and "12.00 [10.00, 14.00]" in row_b and HOLDS in row_b
    assert "<= 0.5000" in row_b and "params >= bound" in row_b
    text = legend(res)
    assert "Holm" in text and "2 one-sided tests" in text and HOLDS in text
    for mark in ("'?'", "'> x'", "'>= x'", "'<= x'", "'exact'", "'-'"):
        assert mark in text
    md = results_to_markdown(res)
    assert "Holm" in md and md.count("| a |") == 1


# ---------------------------------------------------------------- Theorem 2


def test_lower_bound_holds_by_construction_for_large_eps():
    r = pensia2020_lower_bound.check("pensia2020", 2, 0.1, sources=6, matrices=1, rng=0,
                                     progress=False)
    assert r.verdict == HOLDS and r.basis == "arithmetic" and r.p_values == {}
    # the arithmetic is in the reason: 4 d^2 = 16 >= 4 log2(5) - 1
    assert "16 parameters" in r.reason and f"{B.pensia2020_lower_bound(2, 0.1):.4g}" in r.reason
    assert r.details["largest_width_below_bound"] is None
    assert family_wise([r])[0] is r


def test_lower_bound_flags_a_fake_construction_below_the_bound(monkeypatch):
    # a construction whose every width uses 1 parameter: the bound must catch it, even where
    # the honest count makes the comparison arithmetic (eps = 0.1)
    monkeypatch.setattr(pensia2020_lower_bound, "source_params", lambda shape, units: 1)
    for eps in (0.1, 0.02):
        r = pensia2020_lower_bound.check("pensia2020", 2, eps, sources=12, matrices=1, rng=0,
                                         progress=False)
        assert r.verdict == "violated", r.reason
        assert r.details["n"] == pensia2020_lower_bound.PENSIA_MAX
        assert r.p_values["violation"] <= 0.025


def test_largest_width_below():
    f = pensia2020_lower_bound.largest_width_below
    assert f(17.6, 28, lambda n: 16 * n) == 1
    assert f(100.0, 28, lambda n: 16 * n) == 6
    assert f(10.0, 28, lambda n: 16 * n) is None
    assert f(1e9, 28, lambda n: 16 * n) == 28


def test_lower_bound_bracket_is_bonferroni_corrected(monkeypatch):
    seen = []
    real = pensia2020_lower_bound.threshold_bracket

    def spy(successes, trials, claimed, *, confidence=0.95):
        seen.append(confidence)
        return real(successes, trials, claimed, confidence=confidence)

    monkeypatch.setattr(pensia2020_lower_bound, "threshold_bracket", spy)
    r = pensia2020_lower_bound.check("pensia2020", 2, 0.02, sources=8, matrices=3, rng=0,
                                     progress=False)
    # per matrix: upper end at 95%, lower end at 1 - 0.05 / 4 (4 test matrices)
    assert sorted(set(seen)) == [0.95, pytest.approx(1 - 0.05 / 4)]
    assert len(seen) == 2 * r.details["test_matrices"] == 8


# ---------------------------------------------------------------- the universal statement


_N, _TOL = 20, 0.05   # 20 candidates per instance: brute-force coverage (2^20 sums) is exact


@pytest.fixture(scope="module")
def small_layer():
    g = np.random.default_rng(3)
    target = M.bounded_target((2, 2), rng=g)
    big = MLP.random(source_widths(target, [_N]), rng=g)
    return target, big, M.layer_candidates(big, target, 0, _N)


def test_universal_first_units_match_brute_force_coverage(small_layer):
    _, _, cand = small_layer
    first = pensia2020_universal.universal_first_units(cand, _TOL)
    crossed = set()
    for n in range(1, _N + 1):
        cov = M.coverage_subset(cand, n, max_values=n)   # the candidates at n: first n slots
        np.testing.assert_array_equal(first <= n, cov <= _TOL)
        crossed |= set((cov <= _TOL).ravel().tolist())
    assert crossed == {True, False}
    assert pensia2020_universal.universal_first_units([cand, cand], _TOL)[1].shape == first.shape
    with pytest.raises(InputError, match="`tol`"):
        pensia2020_universal.universal_first_units(cand, 0.0)


def _worst_target_value(values: np.ndarray) -> float:
    """The z in [-1, 1] farthest from every subset sum of ``values``."""
    sums = np.zeros(1)
    for v in values:
        sums = np.concatenate([sums, sums + v])
    sums = np.sort(sums)
    pts = np.concatenate([[-1.0, 1.0], (sums[1:] + sums[:-1]) / 2])
    pts = pts[(pts >= -1.0) & (pts <= 1.0)]
    i = np.clip(np.searchsorted(sums, pts), 1, sums.size - 1)
    dist = np.minimum(np.abs(pts - sums[i - 1]), np.abs(pts - sums[i]))
    return float(pts[np.argmax(dist)])


def test_universal_event_is_exact_for_the_per_weight_event(small_layer):
    """U fails -> a target of the class misses a tolerance; U holds -> every target meets it."""
    target, big, cand = small_layer
    need = int(pensia2020_universal.universal_first_units(cand, _TOL).max())
    assert 2 <= need <= _N
    for n, holds in ((need - 1, False), (need, True)):
        source = nested_source(big, target, [_N], [n])
        vals = np.where(cand.enter <= n, cand.values, 0.0)
        cov = coverage_batch(vals.reshape(-1, vals.shape[-1])[:, :n]).reshape(cand.targets.shape)
        assert (cov.max() <= _TOL) == holds
        if not holds:
            # the worst target value of the worst instance, as the only weight of a target
            part, r, j = np.unravel_index(int(np.argmax(cov)), cov.shape)
            z = _worst_target_value(vals[part, r, j][cand.enter[part, 0, j] <= n])
            W = np.zeros((2, 2))
            W[r, j] = z if part == 0 else -z
            targets = [MLP((W,))]
        else:
            targets = [M.bounded_target((2, 2), rng=s) for s in range(5)]
        for t in targets:
            ticket = pensia_c.construct(t, source=source, n=n, eps=0.5, weight_eps=_TOL,
                                        on_failure="report")
            assert (ticket.params["n_failed"] == 0) == holds


def test_universal_claim_needs_more_than_the_per_target_constant():
    # slth's per-target constant C = 9 serves one random target, not every target
    r = pensia2020_universal.check((2, 3, 1), 0.1, 0.1, C=B.PENSIA2020_C, trials=40, rng=0,
                                   progress=False)
    assert r.verdict == "violated", r.reason
    d = r.details
    assert d["measured_is"] == "exact" and d["per_target_successes_at_C"] >= 36
    assert d["bound_inconsistencies"] == 0
    assert r.empirical_constant > d["threshold_per_target"]["c_hat"]
    assert d["constant_ratio_universal_per_target"] > 1.2
    assert d["width_at_universal_C"] > d["width_at_per_target_C"]
    lo, hi = r.constant_interval
    assert lo <= r.empirical_constant <= (np.inf if hi is None else hi)
    assert r.constant_adversarial is None  # exact event: one constant
    assert "exact" in format_table([r])


def test_universal_check_rejects_bad_input():
    with pytest.raises(InputError, match="`eps`"):
        pensia2020_universal.check((2, 3, 1), 1.5, 0.1, trials=5)
    with pytest.raises(InputError, match="`widths`"):
        pensia2020_universal.check((2,), 0.1, 0.1, trials=5)
    with pytest.raises(InputError, match="`C`"):
        pensia2020_universal.check((2, 3, 1), 0.1, 0.1, C=-1.0, trials=5)
    assert max(pensia2020.units_at((2, 3, 1), 0.1, 0.1, pensia2020_universal.exact_c_max(
        (2, 3, 1), 0.1, 0.1))) <= 40


# ---------------------------------------------------------------- quick runs can decide


def test_quick_trial_counts_can_decide_under_holm():
    """With no failure, each quick case's consistency p-value passes Holm's first threshold."""
    cases = []   # (trials, claimed)
    cases += [(lueker1998.QUICK["trials"][e], 1 - e) for e in lueker1998.QUICK_EPS] * 2
    cases += [(pensia2020.QUICK["trials"], 1 - dl) for _, dl in pensia2020.QUICK["cases"]] * 2
    cases += [(pensia2020_layer.QUICK["trials"], 1 - dl)
              for _, dl in pensia2020_layer.QUICK["cases"]] * 2
    cases += [(pensia2020_universal.QUICK["trials"], 1 - dl)
              for _, _, dl in pensia2020_universal.CASES["quick"]]
    m = 2 * (len(cases) + len(pensia2020_lower_bound.CASES["quick"]) + 2)  # + 2: others
    for n, p0 in cases:
        assert rate_p_values(n, n, n, p0)["consistency"] <= 0.05 / m, (n, p0)
    # Theorem 2: a hardest matrix met by no source (Bonferroni over its matrices)
    S, W = pensia2020_lower_bound.QUICK["sources"], pensia2020_lower_bound.QUICK["matrices"] + 1
    assert W * 0.5 ** S <= 0.05 / m
    # and every quick Theorem 2 case rests on data (eps < 1/32)
    assert all(eps < 1 / 32 for _, _, eps in pensia2020_lower_bound.CASES["quick"])
    assert all(eps < 1 / 32 for _, _, eps in pensia2020_lower_bound.CASES["full"])
