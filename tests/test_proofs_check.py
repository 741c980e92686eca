"""Theorem checks: verdict rule, threshold bracket, Lueker check, registry and CLI."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import proofs_check
from proofs_check import (
    CHECKS,
    VERDICTS,
    CheckResult,
    load_check,
    lueker1998,
    overall_verdict,
    rate_verdict,
    threshold_bracket,
    trials_needed,
)
from proofs_check import __main__ as cli
from slth.errors import InputError
from slth.stats import clopper_pearson
from slth.subset_sum import coverage_batch, first_covering_n, sample

# ---------------------------------------------------------------- verdict rule


def test_verdict_examples():
    # 95/100 against a claim of 0.9: compatible, and rules out a failure rate of 0.2
    assert rate_verdict(95, 95, 100, 0.9)[0] == "consistent"
    # 70/100 against 0.9: significantly below
    assert rate_verdict(70, 70, 100, 0.9)[0] == "violated"
    # 10/10 against 0.9: compatible but too few trials to exclude a failure rate of 0.2
    assert rate_verdict(10, 10, 10, 0.9)[0] == "inconclusive"
    # 600/600 against 0.999: needs 1843 trials
    assert rate_verdict(600, 600, 600, 0.999)[0] == "inconclusive"
    assert rate_verdict(1843, 1843, 1843, 0.999)[0] == "consistent"
    # bounds on the count: lower bound decides "consistent", upper bound "violated"
    assert rate_verdict(50, 100, 100, 0.9)[0] == "inconclusive"
    assert rate_verdict(50, 60, 100, 0.9)[0] == "violated"


def test_trials_needed_matches_the_rule():
    for p0 in (0.9, 0.99, 0.999):
        n = trials_needed(p0)
        assert rate_verdict(n, n, n, p0)[0] == "consistent"
        assert rate_verdict(n - 1, n - 1, n - 1, p0)[0] == "inconclusive"
    assert (trials_needed(0.9), trials_needed(0.99), trials_needed(0.999)) == (17, 183, 1843)


@given(
    trials=st.integers(1, 3000),
    frac=st.floats(0, 1),
    p0=st.sampled_from([0.5, 0.9, 0.99, 0.999]),
)
def test_verdict_rule_properties(trials, frac, p0):
    k = round(frac * trials)
    verdict, (lo, hi), reason = rate_verdict(k, k, trials, p0)
    assert verdict in VERDICTS and reason
    assert (lo, hi) == clopper_pearson(k, trials)
    if verdict == "consistent":
        assert trials >= trials_needed(p0)  # never consistent on too few trials
        assert hi >= p0 and lo >= 1 - 2 * (1 - p0)
    if verdict == "violated":
        assert k / trials < p0 and hi < p0


def test_overall_verdict():
    assert overall_verdict(["consistent", "consistent"]) == "consistent"
    assert overall_verdict(["consistent", "inconclusive"]) == "inconclusive"
    assert overall_verdict(["inconclusive", "violated"]) == "violated"
    assert overall_verdict([]) == "inconclusive"


# ---------------------------------------------------------------- threshold bracket


def test_threshold_bracket_on_known_counts():
    counts = {1: 0, 2: 500, 3: 900, 4: 995, 5: 1000, 6: 1000}
    thr = threshold_bracket(counts, 1000, 0.99)
    assert thr.n_hat == 4  # 0.995 >= 0.99
    assert thr.n_low == 4  # 0.9 is significantly below 0.99
    assert thr.n_high == 5  # 1000/1000: lower end 0.9963 >= 0.99
    assert threshold_bracket({1: 0, 2: 3}, 10, 0.99).n_high is None


def test_threshold_bracket_covers_the_true_threshold():
    # T ~ Geometric(1/2): P(T <= n) = 1 - 2^-n, so n* = 7 for the level 0.99.
    rng = np.random.default_rng(1)
    hits = 0
    reps = 200
    for _ in range(reps):
        first = rng.geometric(0.5, size=400)
        counts = {n: int(np.count_nonzero(first <= n)) for n in range(1, 15)}
        thr = threshold_bracket(counts, 400, 0.99)
        hits += thr.n_low <= 7 and (thr.n_high is None or 7 <= thr.n_high)
    # nominal coverage 95%; margin for the 200 repetitions (sd ~ 1.5%)
    assert hits / reps >= 0.90


# ---------------------------------------------------------------- the Lueker check


def test_first_covering_n_matches_direct_scan():
    values = sample("uniform", (40, 12), rng=3)
    got = first_covering_n(values, 0.05)
    cov = np.stack([coverage_batch(values[:, :n]) for n in range(1, 13)], axis=1)
    ok = cov <= 0.05
    want = np.where(ok.any(axis=1), ok.argmax(axis=1) + 1, 13)
    assert np.array_equal(got, want)
    # monotone in n: once covered, every longer prefix covers
    assert all(ok[b, want[b] - 1 :].all() for b in range(40) if want[b] <= 12)


def test_true_claim_is_consistent():
    res = lueker1998.check("uniform", 0.1, C=4.0, trials=300, n_max=16, rng=0, progress=False)
    assert res.verdict == "consistent", res.reason
    assert res.details["n"] == math.ceil(4.0 * math.log(20)) == 12
    assert res.details["measured_is"] == "exact"
    lo, hi = res.interval
    assert lo <= res.measured <= hi and res.measured >= 0.9
    # the empirical constant and its bracket: n* lies in [n_low, n_high]
    thr = res.details["threshold"]
    assert thr["n_low"] <= thr["n_hat"] <= thr["n_high"]
    c_lo, c_hi = res.constant_interval
    assert c_lo <= res.empirical_constant <= c_hi
    assert res.empirical_constant == pytest.approx(thr["n_hat"] / math.log(20))
    # measured at eps = 0.1 (thousands of trials): C is about 3.7, well inside (2, 5)
    assert 2.0 < res.empirical_constant < 5.0


@pytest.mark.parametrize("C", [0.3, 2.0])
def test_undersized_n_is_violated(C):
    res = lueker1998.check("uniform", 0.1, C=C, trials=150, n_max=12, rng=1, progress=False)
    assert res.verdict == "violated", res.reason
    assert res.interval[1] < 0.9


def test_n_beyond_the_scan_gives_a_lower_bound_never_violated():
    res = lueker1998.check("uniform", 0.01, C=4.0, trials=100, n_max=12, rng=2, progress=False)
    assert res.details["n"] == 22 and res.details["measured_is"] == "lower bound"
    assert res.verdict == "inconclusive"
    assert res.interval[1] == 1.0


def test_product_law_needs_a_larger_constant():
    kw = {"trials": 200, "n_max": 16, "rng": 4, "progress": False}
    uni = lueker1998.check("uniform", 0.1, C=4.0, **kw)
    prod = lueker1998.check("product", 0.1, C=4.0, **kw)
    assert prod.verdict == "violated"  # n = 12 is not enough for products
    assert prod.details["threshold"]["n_low"] > uni.details["threshold"]["n_hat"]


def test_product_law_contains_the_uniform_component_the_docstring_states():
    """Plain XY (no point mass) has density (1/2) ln(1/|z|) >= (ln 2)/2 on |z| <= 1/2."""
    z = sample("product", 400_000, rng=11)
    edges = np.linspace(-0.5, 0.5, 21)
    counts, _ = np.histogram(z, bins=edges)
    density = counts / (z.size * np.diff(edges))
    # the smallest bin density (at |z| near 1/2) is about 0.37, above ln(2)/2 = 0.347;
    # binomial noise per bin is about 1.2%; the 50/50 mixture with a point mass would
    # halve it (0.19) and fail
    assert density.min() >= math.log(2) / 2
    exact = 0.5 * np.array([np.mean(np.log(1 / np.abs(np.linspace(a, b, 1001)[1:-1])))
                            for a, b in itertools.pairwise(edges)])
    np.testing.assert_allclose(density[[0, 1, 18, 19]], exact[[0, 1, 18, 19]], rtol=0.05)
    assert "plain XY" in lueker1998.__doc__ and "(ln 2)/2" in lueker1998.__doc__


def test_check_is_seeded_and_resumable(tmp_path):
    store = tmp_path / "rows.jsonl"
    kw = {"trials": 120, "n_max": 12, "chunk_size": 50, "progress": False}
    a = lueker1998.check("product", 0.1, C=6.0, rng=5, store=store, **kw)
    lines = store.read_text()
    b = lueker1998.check("product", 0.1, C=6.0, rng=5, store=store, **kw)
    c = lueker1998.check("product", 0.1, C=6.0, rng=6, **kw)
    assert store.read_text() == lines  # second run reused every row
    assert len(lines.splitlines()) == 3  # chunks of 50, 50, 20
    assert a.details == b.details and a.interval == b.interval
    assert a.details["successes_by_n"] != c.details["successes_by_n"]


def test_check_rejects_bad_input():
    with pytest.raises(InputError, match="`eps`"):
        lueker1998.check("uniform", 1.5, trials=10)
    with pytest.raises(InputError, match="`distribution`"):
        lueker1998.check("cauchy", 0.1, C=3.0, trials=10)
    with pytest.raises(InputError, match="`C`"):
        lueker1998.check("normal", 0.1, trials=10)
    with pytest.raises(InputError, match="`n_max`"):
        lueker1998.check("uniform", 0.1, trials=10, n_max=41)


# ---------------------------------------------------------------- registry, report, CLI


def test_registry_modules_follow_the_protocol():
    assert "lueker1998" in CHECKS
    for name in CHECKS:
        mod = load_check(name)
        assert mod.NAME == name and mod.PAPER and mod.STATEMENT and callable(mod.run)
        assert "19" in mod.PAPER or "20" in mod.PAPER  # cites a year
    with pytest.raises(InputError, match="`name`"):
        load_check("nope")


_FIELDS = {f.name for f in dataclasses.fields(CheckResult)}


def test_cli_quick_run_writes_table_json_and_markdown(tmp_path, monkeypatch, capsys):
    # the quick path with smaller sizes (the real --quick takes ~25 s)
    monkeypatch.setattr(lueker1998, "QUICK", {"n_max": 12, "trials": {0.1: 60, 0.01: 60}})
    monkeypatch.setattr(lueker1998, "QUICK_EPS", (0.1, 0.01))
    status = cli.main(["--quick", "--only", "lueker1998", "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert status == 0
    assert "lueker1998" in out and "verdict" in out and "overall:" in out
    # the legend under the table: level of the verdicts, marks, verdict words
    assert "Holm" in out and "holds by construction" in out and "'?'" in out
    assert "C_cert" in out and "C_adv" in out and "size/bound" in out
    doc = json.loads((tmp_path / "proofs_check.json").read_text())
    assert doc["meta"]["quick"] is True and doc["meta"]["checks"] == ["lueker1998"]
    fw = doc["meta"]["family_wise"]
    assert fw["method"] == "holm" and fw["alpha"] == 0.05 and fw["tests"] == 8
    assert len(doc["results"]) == 4  # 2 laws x 2 eps
    for r in doc["results"]:
        assert set(r) == _FIELDS
        assert r["verdict"] in VERDICTS
        assert r["details"]["family_wise"]["tests"] == 8
        assert set(r["p_values"]) == {"violation", "consistency"}
        lo, hi = r["interval"]
        assert 0.0 <= lo <= r["measured"] <= hi <= 1.0
        c_lo, c_hi = r["constant_interval"]
        assert c_lo > 0 and (c_hi is None or c_hi >= c_lo)
        assert isinstance(r["details"]["successes_by_n"], dict)
    md = (tmp_path / "proofs_check.md").read_text()
    assert md.count("| lueker1998 |") == 4 and "Verdict rule" in md
    assert "Holm" in md and "holds by construction" in md
    assert (tmp_path / "runs" / "lueker1998_quick.jsonl").exists()


def test_run_checks_selects_by_name():
    with pytest.raises(InputError):
        proofs_check.run_checks(["unknown"])
