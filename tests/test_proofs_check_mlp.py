"""MLP theorem checks (Pensia et al. 2020 Thm 1, its layer lemma, Thm 2; Malach et al. 2020)
and the figure ``mlp_error_width``: layout readings against the constructions (Pensia et al.'s
and the single-pair variant on the same layout), verdicts on true and under-sized claims, the
quick paths' outputs. Verdict rules, Holm and the universal check: ``tests/test_verdicts.py``."""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json

import matplotlib.image
import numpy as np
import pytest

from proofs_check import (
    VERDICTS,
    CheckResult,
    format_table,
    malach2020,
    pensia2020,
    pensia2020_layer,
    pensia2020_lower_bound,
    results_to_json,
)
from proofs_check import _mlp as M
from slth import MLP
from slth import bounds as B
from slth.constructions import pensia2020 as pensia_c
from slth.constructions import single_pair as single_c
from slth.constructions import source_widths
from slth.errors import InputError
from slth.evaluate import certified_bound

_FIELDS = {f.name for f in dataclasses.fields(CheckResult)}
_SMALL = (2, 3, 1)  # small targets keep every check here under a few seconds


def _assert_result(r: CheckResult, name: str) -> None:
    assert isinstance(r, CheckResult) and r.name == name
    assert r.verdict in VERDICTS and r.reason
    assert "20" in r.paper and r.statement and r.claim
    lo, hi = r.interval
    assert 0.0 <= lo <= r.measured <= hi <= 1.0
    d = r.to_dict()
    assert set(d) == _FIELDS
    json.loads(results_to_json([r]))  # plain JSON, no NaN
    assert name in format_table([r])


# ---------------------------------------------------------------- layout readings


@pytest.fixture(scope="module")
def nested_case():
    g = np.random.default_rng(7)
    target = M.bounded_target((3, 4, 2), rng=g)
    big_units = [16, 16]
    big = MLP.random(source_widths(target, big_units), rng=g)
    return target, big, big_units


def test_bounded_target_meets_the_hypothesis():
    t = M.bounded_target((5, 7, 3), rng=np.random.default_rng(0))
    assert t.widths == (5, 7, 3) and not t.has_biases
    assert np.all(t.spectral_norms() <= 1.0 + 1e-12)


@pytest.mark.parametrize("n", [1, 3, 6, 11, 16])
def test_candidates_match_the_constructions(nested_case, n):
    """Reading the source layout gives exactly the errors the constructions realise."""
    target, big, big_units = nested_case
    source = M.nested_source(big, target, big_units, [n, n])
    assert source.widths == source_widths(target, [n, n])
    p = pensia_c.construct(target, source=source)  # exact: each instance at its optimum
    m = single_c.construct(target, source=source)  # closest single pair
    cands = [M.layer_candidates(big, target, i, big_units[i]) for i in range(2)]
    opt = M.optimal_errors(cands, [n, n])
    single = M.single_errors(cands, [n, n])
    for i in range(2):
        np.testing.assert_allclose(opt[i].max(axis=0), p.weight_errors[i], rtol=0, atol=1e-14)
        np.testing.assert_allclose(single[i].max(axis=0), m.weight_errors[i], rtol=0,
                                   atol=1e-14)
        np.testing.assert_array_equal(M.SingleCurve.of(cands[i]).at(n), single[i])
    # the proof's propagation recursion bounds the certified bound read from the masks
    # (slth.evaluate may certify tighter; the C scans use the recursion, a valid upper bound)
    prop = M.propagated_bound(target.weights, [o.max(axis=0) for o in opt])
    assert certified_bound(target, p) <= prop * (1 + 1e-12) + 1e-15


def test_first_sufficient_units_match_the_constructions(nested_case):
    target, big, big_units = nested_case
    tol_p, tol_m = 2e-3, 0.08
    cands = [M.layer_candidates(big, target, i, big_units[i]) for i in range(2)]
    first_p = M.first_units_subset(cands, tol_p)
    first_m = [M.first_units_single(c, tol_m) for c in cands]
    curves = [M.SingleCurve.of(c) for c in cands]
    for i in range(2):
        np.testing.assert_array_equal(curves[i].first_units(tol_m), first_m[i])
    seen_both = set()
    for n in range(1, big_units[0] + 1):
        source = M.nested_source(big, target, big_units, [n, n])
        p = pensia_c.construct(target, source=source)
        m = single_c.construct(target, source=source)
        for i in range(2):
            ok_p = first_p[i].max(axis=0) <= n
            np.testing.assert_array_equal(ok_p, p.weight_errors[i] <= tol_p)
            np.testing.assert_array_equal(first_m[i].max(axis=0) <= n,
                                          m.weight_errors[i] <= tol_m)
            seen_both |= set(ok_p.ravel().tolist())
    assert seen_both == {True, False}  # the scan crosses the threshold


def test_errors_are_monotone_in_the_width(nested_case):
    target, big, big_units = nested_case
    cands = [M.layer_candidates(big, target, i, big_units[i]) for i in range(2)]
    prev = None
    for n in range(1, big_units[0] + 1):
        e = M.optimal_errors(cands, [n, n], floor=1e-4)
        assert all(np.all(x >= 1e-4) for x in e)
        if prev is not None:
            assert all(np.all(a <= b) for a, b in zip(e, prev))
        prev = e


def test_floored_errors_are_the_clipped_optima(nested_case):
    """eps-mode search at the floor reports each optimum above it (the scans rely on it)."""
    target, big, big_units = nested_case
    cands = [M.layer_candidates(big, target, i, big_units[i]) for i in range(2)]
    for n in (4, 9, 16):
        exact = M.optimal_errors(cands, [n, n])
        floored = M.optimal_errors(cands, [n, n], floor=3e-4)
        for e, f in zip(exact, floored):
            np.testing.assert_array_equal(f, np.maximum(e, 3e-4))


def test_units_table_matches_the_bound_everywhere():
    widths, eps, delta = [3, 4, 2], 0.1, 0.1
    table = M.units_table(lambda c: pensia2020.units_at(widths, eps, delta, c), c_max=9.0,
                          grid_step=0.05)
    assert table.shape == (181, 2) and not table[0].any()
    for k in range(1, 181):
        assert table[k].tolist() == pensia2020.units_at(widths, eps, delta, k * 0.05)


def test_scan_constant_on_known_thresholds():
    first_k = np.array([3] * 90 + [5] * 9 + [100])   # 90% succeed from k=3, 99% from k=5
    scan = M.scan_constant(first_k, k_max=20, claimed=0.9, grid_step=0.5)
    assert scan.c_hat == 1.5 and scan.successes[4] == 90 and scan.successes[5] == 99
    assert scan.c_low <= scan.c_hat and (scan.c_high is None or scan.c_high >= scan.c_hat)


def test_nested_source_rejects_bad_input(nested_case):
    target, big, big_units = nested_case
    with pytest.raises(InputError, match="`units`"):
        M.nested_source(big, target, big_units, [17, 2])
    with pytest.raises(InputError, match="`target`"):
        M.nested_source(big, MLP.random((3, 4, 2), rng=0, bias=True), big_units, [2, 2])


# ---------------------------------------------------------------- Theorem 1 and its lemma


def test_pensia_true_claim_is_consistent():
    r = pensia2020.check(_SMALL, 0.1, 0.1, C=14.0, trials=30, c_max=14.0, rng=0,
                         progress=False)
    _assert_result(r, "pensia2020")
    assert r.verdict == "consistent", r.reason
    d = r.details
    assert d["proof_event_mismatches"] == 0 and d["bound_inconsistencies"] == 0
    assert d["adversarial"]["max"] <= d["certified"]["max"]
    assert d["sampled"]["median"] <= d["adversarial"]["median"] + 1e-12
    # the empirical constant lies inside its bracket and below the claimed C
    lo, hi = r.constant_interval
    assert lo <= r.empirical_constant <= (hi if hi is not None else np.inf)
    assert r.empirical_constant < 14.0
    # the adversarial event holds whenever the certified one does, trial by trial, so its
    # constant (a lower bound) never exceeds the certified one (an upper bound), end by end
    a_lo, a_hi = r.constant_adversarial_interval
    assert r.constant_adversarial <= r.empirical_constant and a_lo <= lo
    assert hi is None or a_hi is None or a_hi <= hi
    assert d["bound_inconsistencies"] == 0 and d["adversarial_scan_cost"]["tickets_per_trial"] > 1
    # both CI ends from their own count: low from certified <= eps, high from adversarial
    assert d["successes_low"] <= d["successes_high"]
    assert r.p_values["consistency"] < 0.025 and r.p_values["violation"] > 0.5
    assert d["width_ratio_C1"] == pytest.approx(d["width_at_C1"] / d["width_at_empirical_C"])


def test_pensia_undersized_width_is_violated():
    r = pensia2020.check(_SMALL, 0.1, 0.1, C=1.0, trials=20, c_max=6.0, rng=1,
                         progress=False)
    _assert_result(r, "pensia2020")
    assert r.verdict == "violated", r.reason
    assert r.interval[1] < 0.9


def test_layer_lemma_verdicts():
    ok = pensia2020_layer.check(3, 3, 0.1, 0.1, C=14.0, trials=30, c_max=14.0, rng=0,
                                progress=False)
    _assert_result(ok, "pensia2020_layer")
    assert ok.verdict == "consistent", ok.reason
    d = ok.details
    # one layer: the certified bound is at most ||Delta||_2 of the recorded per-weight errors
    assert d["max_certified_minus_delta_norm"] <= 1e-12
    # the per-weight event is decided exactly at n <= 40: one count for both CI ends
    assert d["measured_is"] == "exact" and d["successes_low"] == d["successes_high"]
    assert d["delta_norm_max_when_within_tolerance"] <= d["delta_norm_bound_when_within_tolerance"]
    bad = pensia2020_layer.check(3, 3, 0.1, 0.1, C=1.0, trials=20, c_max=4.0, rng=0,
                                 progress=False)
    assert bad.verdict == "violated", bad.reason


def test_run_quick_protocol(monkeypatch, tmp_path):
    """``run(quick=True)`` honours the protocol and writes its resumable rows."""
    monkeypatch.setattr(pensia2020, "QUICK", {"trials": 5, "cases": [(0.2, 0.2)]})
    res = pensia2020.run(quick=True, store_dir=tmp_path, progress=False,
                         architectures=[_SMALL])
    assert len(res) == 1
    _assert_result(res[0], "pensia2020")
    assert (tmp_path / "pensia2020_quick.jsonl").exists()
    for mod in (pensia2020, pensia2020_layer, pensia2020_lower_bound, malach2020):
        assert mod.NAME and mod.PAPER and mod.STATEMENT and callable(mod.run)


# ---------------------------------------------------------------- Malach


def test_malach_verdicts_and_size_ratio():
    ok = malach2020.check(_SMALL, 0.2, 0.1, trials=20, c_max=3.0, c_max_pensia=12.0, rng=0,
                          progress=False)
    _assert_result(ok, "malach2020")
    assert ok.verdict == "consistent", ok.reason
    d = ok.details
    assert d["n"] == malach2020.units_at(list(_SMALL), 0.2, 0.1, B.MALACH2020_C)
    # measured at the empirical constants: the single pair needs the larger source
    assert d["size_ratio_empirical"] > 1.0 and d["size_ratio_default_C"] > 1.0
    bad = malach2020.check(_SMALL, 0.2, 0.1, C=0.05, trials=20, c_max=0.5,
                           c_max_pensia=4.0, rng=0, progress=False)
    assert bad.verdict == "violated", bad.reason


# ---------------------------------------------------------------- Theorem 2


def test_lower_bound_consistent_and_ratio():
    # eps = 0.02 < 1/32: the smallest source (16 parameters) is below the bound (17.6)
    r = pensia2020_lower_bound.check("pensia2020", 2, 0.02, sources=12, matrices=1, rng=0,
                                     progress=False)
    _assert_result(r, "pensia2020_lower_bound")
    assert r.verdict == "consistent", r.reason
    lb = B.pensia2020_lower_bound(2, 0.02)
    d = r.details
    assert d["lower_bound"] == pytest.approx(lb)
    assert d["largest_width_below_bound"] == d["n"] == 1 and d["params_at_n"] < lb
    # the size ratio has its own field (and column), the constant columns stay empty
    assert r.empirical_constant is None and r.constant_interval is None
    assert r.size_ratio == pytest.approx(d["params_used"] / lb) and r.size_ratio > 1.0
    lo, hi = r.size_ratio_interval
    assert lo <= r.size_ratio <= (hi if hi is not None else np.inf)
    assert r.p_values["consistency"] <= 0.025 < r.p_values["violation"]


def test_lower_bound_counts_do_not_depend_on_memory_grouping(monkeypatch):
    kw = {"sources": 5, "matrices": 2, "rng": 3, "progress": False}
    ref = {c: pensia2020_lower_bound.check(c, 2, 0.1, **kw).details
           for c in pensia2020_lower_bound.CONSTRUCTIONS}
    monkeypatch.setattr(pensia2020_lower_bound, "_MEMORY", 1 << 9)  # one pair at a time
    for c, want in ref.items():
        got = pensia2020_lower_bound.check(c, 2, 0.1, **kw).details
        assert got["successes_upper_by_n"] == want["successes_upper_by_n"]
        assert got["n_bracket"] == want["n_bracket"]


def test_lower_bound_rejects_bad_input():
    with pytest.raises(InputError, match="`eps`"):
        pensia2020_lower_bound.check("pensia2020", 2, 0.6)
    with pytest.raises(InputError, match="`construction`"):
        pensia2020_lower_bound.check("orseau2020", 2, 0.1)


def test_single_pair_grid_is_increasing_and_reaches_its_top():
    g = pensia2020_lower_bound.widths_grid("single_pair", 3, 0.05)
    assert g[0] == 1 and all(a < b for a, b in itertools.pairwise(g))
    assert g[-1] == int(max(64 * 3 / 0.05, 4 * (3 / 0.05) ** 2))


# ---------------------------------------------------------------- figure


def test_figure_quick_path(tmp_path):
    from figures import mlp_error_width as F

    units = {"pensia2020": [2, 8, 14], "malach2020": [2, 8, 14, 64]}
    paths = F.main(tmp_path, quick=True, rng=0, progress=False, targets=2, units=units)
    for key in ("csv", "fit_csv", "png", "pdf", "runs"):
        assert paths[key].exists() and tmp_path in paths[key].parents
    img = matplotlib.image.imread(paths["png"])
    assert img.ndim == 3 and img.shape[0] > 500 and img.shape[1] > 500
    assert paths["pdf"].read_bytes()[:5] == b"%PDF-"
    with open(paths["csv"], newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == F.CSV_COLUMNS
        rows = list(reader)
    assert len(rows) == 7
    for c in units:
        rs = sorted((r for r in rows if r["construction"] == c), key=lambda r: int(r["units"]))
        cert = [float(r["certified_median"]) for r in rs]
        assert all(a >= b for a, b in itertools.pairwise(cert))  # nested sources, best masks
        for r in rs:
            assert int(r["targets"]) == 2
            assert float(r["sampled_median"]) <= float(r["adversarial_median"]) + 1e-15
            assert float(r["adversarial_median"]) <= float(r["certified_median"]) + 1e-12
    with open(paths["fit_csv"], newline="") as fh:
        assert tuple(csv.DictReader(fh).fieldnames) == F.FIT_COLUMNS


def test_figure_fits_recover_exact_laws():
    from figures import mlp_error_width as F

    n = np.arange(1, 30)
    f = F.fit_exponential(n, 3.0 * np.exp2(-1.1 * n), n_min=5)
    assert f["a"] == pytest.approx(3.0) and f["b"] == pytest.approx(1.1)
    f = F.fit_power(n, 0.5 * n ** -0.9, n_min=2)
    assert f["a"] == pytest.approx(0.5) and f["b"] == pytest.approx(0.9)
    assert f["rms_log2_residual"] < 1e-9
