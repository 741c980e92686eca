"""Checks of the CNN and depth L+1 claims (da Cunha et al. 2022; Burkholz 2022): the quick
paths' records, seeding, verdicts on true and under-sized widths, the family-wise revision."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from proofs_check import (
    CHECKS,
    VERDICTS,
    CheckResult,
    burkholz2022,
    dacunha2022,
    family_wise,
    format_table,
    load_check,
    results_to_json,
)
from slth.constructions import burkholz2022 as bk_c
from slth.errors import InputError

_FIELDS = {f.name for f in dataclasses.fields(CheckResult)}
_DECIDED = {"consistent", "violated", "inconclusive"}


def _assert_result(r: CheckResult, name: str) -> None:
    assert isinstance(r, CheckResult) and r.name == name
    assert r.verdict in VERDICTS and r.verdict in _DECIDED and r.reason
    assert "2022" in r.paper and "no theorem number" in r.paper
    assert r.statement and r.claim and r.claimed == pytest.approx(0.9)
    lo, hi = r.interval
    assert 0.0 <= lo <= r.measured <= hi <= 1.0
    assert r.basis == "statistical" and set(r.p_values) == {"violation", "consistency"}
    d = r.details
    assert d["successes_low"] <= d["successes_high"] <= r.trials
    assert d["measured_is"] in ("exact", "lower bound") and d["bound_inconsistencies"] == 0
    assert d["adversarial"]["max"] <= d["certified"]["max"] * (1 + 1e-9)
    # no constant bracket: the layouts have no coupled scan (said in details)
    assert r.empirical_constant is None and r.constant_interval is None and d["constant"]
    assert set(r.to_dict()) == _FIELDS
    json.loads(results_to_json([r]))  # plain JSON, no NaN
    assert name in format_table([r])


@pytest.fixture(scope="module")
def quick_results():
    return {name: mod.run(quick=True, rng=0, progress=False)
            for name, mod in (("dacunha2022", dacunha2022), ("burkholz2022", burkholz2022))}


def test_registered_and_follow_the_protocol():
    for name in ("dacunha2022", "burkholz2022"):
        assert name in CHECKS
        mod = load_check(name)
        assert mod.NAME == name and mod.PAPER and mod.STATEMENT and callable(mod.run)


@pytest.mark.parametrize("name", ["dacunha2022", "burkholz2022"])
def test_quick_run_true_claim_is_consistent(quick_results, name):
    res = quick_results[name]
    assert len(res) == 1
    r = res[0]
    _assert_result(r, name)
    assert r.verdict == "consistent", r.reason
    assert r.trials == 40 and r.details["successes_low"] == 40
    assert r.runtime_s < 15.0


def test_dacunha_records_the_hypothesis_and_depth(quick_results):
    r = quick_results["dacunha2022"][0]
    d = r.details
    assert d["hypothesis_holds"] == r.trials and d["kernel_l1_max"] <= 1.0 + 1e-12
    assert d["width_from"] == "eps" and d["source_depth"] == 2 * d["target_depth"] == 4
    assert "abstract" in d["confirmed"] and "reading" in d["confirmed"]


def test_burkholz_records_depth_and_the_measured_constant(quick_results):
    r = quick_results["burkholz2022"][0]
    d = r.details
    assert d["depth_is_L_plus_1"] and d["source_depth"] == d["target_depth"] + 1 == 3
    assert d["C"] == bk_c.BURKHOLZ2022_C and "not the paper's" in d["C_note"]
    target = burkholz2022.make_target("3-4-2", 0)
    assert d["rho"] == bk_c.theorem_rho(target, 0.1, 0.1)


@pytest.mark.parametrize("mod", [dacunha2022, burkholz2022])
def test_checks_are_seeded(mod):
    a = mod.check(trials=4, rng=5, progress=False)
    b = mod.check(trials=4, rng=5, progress=False)
    c = mod.check(trials=4, rng=6, progress=False)
    for key in ("certified", "adversarial", "sampled"):
        assert a.details[key] == b.details[key]
    assert (a.measured, a.interval, a.p_values) == (b.measured, b.interval, b.p_values)
    assert a.details["certified"] != c.details["certified"]


def test_resumable_store(tmp_path):
    store = tmp_path / "d.jsonl"
    a = dacunha2022.check(trials=3, rng=1, store=store, progress=False)
    b = dacunha2022.check(trials=3, rng=1, store=store, progress=False)
    assert store.exists() and a.details["certified"] == b.details["certified"]


def test_dacunha_undersized_width_is_violated():
    r = dacunha2022.check(trials=20, n=1, rng=0, progress=False)
    _assert_result(r, "dacunha2022")
    assert r.verdict == "violated", r.reason
    # decided from the upper bound on successes (adversarial <= eps), never the certified one
    assert r.interval[1] < 0.9 and r.p_values["violation"] < 0.025
    assert r.details["width_from"] == "n (override)" and r.details["C"] is None


def test_burkholz_undersized_width_is_violated():
    r = burkholz2022.check(trials=20, rho=2, rng=0, progress=False)
    _assert_result(r, "burkholz2022")
    assert r.verdict == "violated", r.reason
    assert r.interval[1] < 0.9 and r.details["rho"] == 2


def test_family_wise_keeps_the_verdicts(quick_results):
    """Holm over the two true claims and an under-sized one: same verdicts here."""
    bad = burkholz2022.check(trials=20, rho=2, rng=0, progress=False)
    rev = family_wise([*quick_results["dacunha2022"], *quick_results["burkholz2022"], bad])
    assert [r.verdict for r in rev] == ["consistent", "consistent", "violated"]
    assert all(r.details["family_wise"]["tests"] == 6 for r in rev)


def test_cnn_target_of_burkholz_meets_its_operator_bounds():
    net = burkholz2022.make_target("conv1-2k3-maxpool-dense", 3)
    for k, v in net.params.items():
        if k.endswith(".weight"):
            v = np.asarray(v)
            taps = [np.linalg.norm(v[:, :, u, w], 2) for u in range(v.shape[2])
                    for w in range(v.shape[3])] if v.ndim == 4 else [np.linalg.norm(v, 2)]
            assert sum(taps) <= 1.0 + 1e-9


def test_bad_inputs_name_the_parameter():
    with pytest.raises(InputError, match="`arch`"):
        dacunha2022.check("nope", trials=2, progress=False)
    with pytest.raises(InputError, match="`eps`"):
        dacunha2022.check(eps=1.5, trials=2, progress=False)
    with pytest.raises(InputError, match="`n`"):
        dacunha2022.check(n=0, trials=2, progress=False)
    with pytest.raises(InputError, match="`target`"):
        burkholz2022.check("x-y", trials=2, progress=False)
    with pytest.raises(InputError, match="`rho`"):
        burkholz2022.check(rho=0, trials=2, progress=False)
    with pytest.raises(InputError, match="`trials`"):
        burkholz2022.check(trials=0, progress=False)


def test_burkholz_cnn_case_runs_and_keeps_depth_l_plus_1():
    r = burkholz2022.check("conv1-2k3-maxpool-dense", trials=3, rng=0, progress=False)
    _assert_result(r, "burkholz2022")
    d = r.details
    assert d["depth_is_L_plus_1"] and d["source_depth"] == d["target_depth"] + 1 == 3
    # three trials can never give "consistent" (trials_needed is 17 at delta = 0.1)
    assert r.verdict != "consistent" and d["trials_needed"] > r.trials
