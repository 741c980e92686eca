"""The bound-quality tables of benchmarks/ (not timings): their invariants on small runs."""

from __future__ import annotations

import numpy as np

from benchmarks import certify_tightness, malach_vs_pensia


def test_certify_tightness_orders_the_bounds():
    m = certify_tightness.measure((3, 4, 2), targets=3)
    assert np.all(m["adversarial"] <= m["sign"])
    assert np.all(m["sign"] <= m["propagation"])
    assert "| 2 | 3-4-2 |" in certify_tightness.table(2).splitlines()[3]


def test_malach_needs_more_source_than_pensia_for_the_same_certified_error():
    m = malach_vs_pensia.measure((3, 4, 2), 0.2, targets=2)
    for (_, pp), (_, pm), (_, ps) in zip(m["pensia2020"], m["malach2020"], m["single_pair"]):
        assert pp is not None and pm is not None and ps is not None
        assert pm > ps > pp          # per-weight blocks > shared blocks > subset sums
