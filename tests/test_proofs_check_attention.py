"""Checks of Otsuka et al. 2025 (Theorem 3, Lemma 4/7, Lemma 5/8): the quick path's records,
seeding, verdicts on true and under-sized widths, the softmax lemma's arithmetic verdict."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from proofs_check import (
    HOLDS,
    VERDICTS,
    CheckResult,
    family_wise,
    format_table,
    results_to_json,
)
from proofs_check import otsuka2025 as oc
from slth import bounds
from slth.constructions import otsuka2025 as ot
from slth.errors import InputError
from slth.nets.attention import merged_matrices

_FIELDS = {f.name for f in dataclasses.fields(CheckResult)}
_DECIDED = {"consistent", "violated", "inconclusive"}


def _assert_statistical(r: CheckResult) -> None:
    assert isinstance(r, CheckResult) and r.name == oc.NAME
    assert r.verdict in VERDICTS and r.verdict in _DECIDED and r.reason
    assert "2511.04217" in r.paper and "Theorem 3" in r.paper
    assert r.statement and r.claim
    lo, hi = r.interval
    assert 0.0 <= lo <= r.measured <= hi <= 1.0
    assert r.basis == "statistical" and set(r.p_values) == {"violation", "consistency"}
    d = r.details
    assert d["successes_low"] <= d["successes_high"] <= r.trials
    assert d["bound_inconsistencies"] == 0
    assert r.empirical_constant is None and r.constant_interval is None and d["constant"]
    assert set(r.to_dict()) == _FIELDS
    json.loads(results_to_json([r]))
    assert oc.NAME in format_table([r])


@pytest.fixture(scope="module")
def quick():
    return oc.run(quick=True, rng=0, progress=False)


def test_protocol():
    assert oc.NAME == "otsuka2025" and oc.PAPER and oc.STATEMENT and callable(oc.run)


def test_quick_run_is_fast_and_true_claims_are_consistent(quick):
    thm, lemma, soft = quick
    for r in (thm, lemma):
        _assert_statistical(r)
        assert r.verdict == "consistent", r.reason
        assert r.trials == 40 and r.claimed == pytest.approx(0.9)
    assert sum(r.runtime_s for r in quick) < 15.0
    # Theorem 3 at its widths: the certificate is below eps on every trial here
    d = thm.details
    assert d["width_from"] == "eps" and d["C"] == bounds.OTSUKA2025_C
    assert [d["n_qk"], d["n_v"]] == d["theorem_widths"] == list(
        bounds.otsuka2025_widths(2, 1, 1, math.sqrt(2), 0.1))
    assert d["successes_low"] == 40 and d["merged_norm_max"] <= 1.0
    assert d["adversarial"]["max"] <= d["certified"]["max"]
    assert lemma.details["measured_is"] == "exact"
    assert lemma.details["qk_error_max"] == 0.0  # zero W_QK met by the empty subset
    assert soft.verdict == HOLDS and soft.basis == "arithmetic" and not soft.p_values


def test_undersized_theorem_width_is_violated():
    r = oc.check(n_qk=4, n_v=4, trials=20, rng=0, progress=False)
    _assert_statistical(r)
    assert r.verdict == "violated", r.reason
    # decided from the upper count (sampled error <= eps), not the certificate
    assert r.interval[1] < 0.9 and r.p_values["violation"] < 0.025
    assert r.details["width_from"] == "override" and r.details["C"] is None


def test_undersized_lemma_width_is_violated():
    r = oc.check_lemma(n=4, trials=20, rng=0, progress=False)
    _assert_statistical(r)
    assert r.verdict == "violated", r.reason
    assert r.measured < 0.5


def test_few_trials_never_consistent():
    r = oc.check(trials=5, rng=1, progress=False)
    assert r.verdict != "consistent" and r.details["trials_needed"] > 5


def test_family_wise_keeps_true_and_false_verdicts(quick):
    bad = oc.check(n_qk=4, n_v=4, trials=20, rng=0, progress=False)
    rev = family_wise([*quick, bad])
    assert [r.verdict for r in rev] == ["consistent", "consistent", HOLDS, "violated"]
    assert rev[2] is quick[2]  # the arithmetic verdict is not revised


def test_seeded():
    a = oc.check(trials=3, rng=5, progress=False)
    b = oc.check(trials=3, rng=5, progress=False)
    c = oc.check(trials=3, rng=6, progress=False)
    assert a.details["certified"] == b.details["certified"]
    assert a.details["certified"] != c.details["certified"]


def test_resumable_store(tmp_path):
    store = tmp_path / "o.jsonl"
    a = oc.check_lemma(trials=3, rng=1, store=store, progress=False)
    b = oc.check_lemma(trials=3, rng=1, store=store, progress=False)
    assert store.exists() and a.details["max_entry_error"] == b.details["max_entry_error"]


def test_targets_meet_the_hypothesis_at_the_boundary():
    t = oc.hypothesis_target(3, 2, 2, seed=4)
    lay = t.layers[0][1]
    qk, vo = merged_matrices(lay, {k.split(".")[-1]: v for k, v in t.params.items()})
    for M in (*qk, *vo):
        assert 1.0 - 1e-9 < np.linalg.norm(M, 2) <= 1.0
    lt = oc.lemma_target(3, 2, seed=4)
    qk, vo = merged_matrices(lt.layers[0][1], {k.split(".")[-1]: v
                                               for k, v in lt.params.items()})
    assert np.all(qk == 0) and 1.0 - 1e-9 < np.linalg.norm(vo[0], 2) <= 1.0
    assert oc.lemma_width(2, 1, 0.1) == math.ceil(2 * bounds.OTSUKA2025_C * math.log(20))


def test_sampled_error_is_a_lower_bound_of_the_certificate():
    target = oc.hypothesis_target(2, 2, 1, seed=0)
    ticket = ot.construct(target, n_qk=12, n_v=12, rng=0)
    g = np.random.default_rng(0)
    low = oc.sampled_token_error(target, ticket, math.sqrt(2), g, sequences=128)
    assert 0.0 < low <= ot.token_error_bound(target, ticket, alpha=math.sqrt(2))


def test_softmax_instances_against_a_plain_loop():
    inst = oc.softmax_instances(300, rng=3, T_max=9, d_max=3)
    assert inst["diff"].shape == (300,)
    assert np.all(inst["kept"] >= 1) and np.all(inst["e_max"] <= 0.5)
    # both bounds recomputed from the recorded parameters
    np.testing.assert_allclose(inst["bound_linear"],
                               4 * np.sqrt(inst["d1"]) * inst["alpha"] * inst["e_max"])
    np.testing.assert_allclose(inst["bound_exp"],
                               np.sqrt(inst["d1"]) * inst["alpha"] * np.expm1(2 * inst["e_max"]))
    # a plain softmax of one hand-made instance agrees with the vectorised one
    x, e, X = np.array([0.3, -1.0, 2.0]), np.array([0.5, -0.5, 0.5]), np.eye(3)
    allowed = np.array([True, False, True])
    p = np.exp(x) * allowed / np.sum(np.exp(x) * allowed)
    q = np.exp(x + e) * allowed / np.sum(np.exp(x + e) * allowed)
    ref = np.linalg.norm((p - q) @ X)
    got = np.linalg.norm((oc._masked_softmax(x, allowed) - oc._masked_softmax(x + e, allowed))
                         @ X)
    assert got == pytest.approx(ref, rel=1e-12)


def test_softmax_check_can_fail():
    """The arithmetic verdict turns to 'violated' when the tolerance is negative enough to
    make the bounds false (a stand-in for a wrong lemma)."""
    ok = oc.check_softmax(500, rng=0)
    assert ok.verdict == HOLDS and ok.details["violations_exp"] == 0
    bad = oc.check_softmax(500, rng=0, rel_tol=-0.9)
    assert bad.verdict == "violated" and bad.basis == "sanity"
    assert bad.details["violations_exp"] > 0


def test_bad_inputs_name_the_parameter():
    with pytest.raises(InputError, match="`eps`"):
        oc.check(eps=1.5, trials=2, progress=False)
    with pytest.raises(InputError, match="`n_qk`"):
        oc.check(n_qk=1, trials=2, progress=False)
    with pytest.raises(InputError, match="`d1`"):
        oc.check(0, trials=2, progress=False)
    with pytest.raises(InputError, match="`n`"):
        oc.check_lemma(n=1, trials=2, progress=False)
    with pytest.raises(InputError, match="`trials`"):
        oc.check(trials=0, progress=False)
    with pytest.raises(InputError, match="`N`"):
        oc.check_softmax(0)


def test_arithmetic_rows_print_no_confidence_interval():
    from proofs_check import _core, otsuka2025

    r = otsuka2025.check_softmax(200, rng=1)
    assert r.basis == "arithmetic" and r.verdict == _core.HOLDS
    cell = _core._fmt_measured(r)
    assert cell.endswith("(arithmetic)") and "[" not in cell
