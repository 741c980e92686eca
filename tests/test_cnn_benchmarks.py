"""Smoke tests of benchmarks/cnn_digits.py and benchmarks/cnn_depth.py (``--quick``).

Structure of the printed tables and invariants that must hold; no timing assertions.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("torch")

from benchmarks import cnn_depth, cnn_digits

pytestmark = [pytest.mark.torch, pytest.mark.slow]  # tens of seconds on 2 cores


def _table(text: str) -> list[list[str]]:
    rows = [line for line in text.splitlines() if line.startswith("|")]
    return [[c.strip() for c in r.strip("|").split("|")] for r in rows]


@pytest.fixture(scope="module")
def digits():
    return cnn_digits.digits_table(quick=True, seed=0)


@pytest.fixture(scope="module")
def depth():
    return cnn_depth.depth_table(quick=True, seed=0)


def test_digits_table_structure(digits):
    text, rows = digits
    table = _table(text)
    assert table[0] == list(cnn_digits.COLUMNS)
    assert len(table) == 2 + 2  # header, separator, n = 5 and 10
    assert all(len(r) == len(cnn_digits.COLUMNS) for r in table[2:])
    assert [r["n"] for r in rows] == [5, 10]
    assert "CPU:" in text and "load average" in text


def test_digits_invariants(digits):
    _, rows = digits
    first, last = rows[0], rows[-1]
    for key in ("weight err conv", "output err conv", "output err all"):
        assert last[key] < first[key], key
    for r in rows:
        assert 0.0 <= r["agreement"] <= 1.0
        assert 0.0 <= r["ticket acc"] <= 1.0
        assert 0 < r["kept"] < r["source params"]
        for key in ("weight err conv", "weight err all", "output err conv", "output err all"):
            assert math.isfinite(r[key]) and r[key] >= 0.0
        assert r["weight err conv"] <= r["weight err all"]
        assert r["paper output err (test)"] == cnn_digits.PUBLISHED[r["n"]]["test"]
    # the source grows linearly in n
    assert rows[1]["source params"] == 2 * rows[0]["source params"]


def test_rescale_keeps_argmax_and_meets_hypothesis():
    tg = cnn_digits.train_target(quick=True, seed=0)
    # float64 slth against float32 torch: the argmax may differ on a near tie at most
    assert tg.acc_scaled == pytest.approx(tg.acc_torch, abs=2.0 / len(tg.y_test))
    assert len(tg.factors) == 4 and all(s > 0 for s in tg.factors)
    for key, w in tg.net.params.items():
        if key.endswith(".weight"):
            norms = np.abs(w.reshape(w.shape[0], -1)).sum(axis=1)
            assert norms.max() == pytest.approx(1.0, rel=1e-12)


def test_depth_table_structure(depth):
    text, _ = depth
    table = _table(text)
    assert table[0] == list(cnn_depth.COLUMNS)
    assert len(table) == 2 + 2  # header, separator, the two constructions at eps = 0.1
    assert all(len(r) == len(cnn_depth.COLUMNS) for r in table[2:])
    assert "CPU:" in text and "load average" in text


def test_depth_invariants(depth):
    _, rows = depth
    by = {r["construction"]: r for r in rows}
    da, bu = by["dacunha2022 (2l)"], by["burkholz2022 (L+1)"]
    L = da["target depth"]
    assert L == 4
    assert da["depth"] == 2 * L
    assert bu["depth"] == L + 1
    for r in rows:
        assert 0 < r["kept"] < r["source params"]
        assert r["certified"] >= 0.0 and math.isfinite(r["certified"])
        assert r["failed"] >= 0
