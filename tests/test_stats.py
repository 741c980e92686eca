"""slth.stats: Clopper–Pearson estimates and the threshold of a monotone success rate."""

from __future__ import annotations

import numpy as np
import pytest

import proofs_check
from slth import InputError
from slth.stats import threshold_bracket
from slth.trials import first_covering_trials


def test_proofs_check_reexports_the_one_threshold_bracket():
    assert proofs_check.threshold_bracket is threshold_bracket


@pytest.mark.parametrize(
    "successes, trials, claimed",
    [({}, 10, 0.9), ({1: 3}, 0, 0.9), ({1: 3}, 10, 0.0), ({1: 3}, 10, 1.5)],
)
def test_threshold_bracket_rejects_bad_input(successes, trials, claimed):
    with pytest.raises(InputError):
        threshold_bracket(successes, trials, claimed)


def test_first_covering_trials_resumes_and_reuses_chunks(tmp_path):
    store = tmp_path / "first.jsonl"
    kw = dict(n_max=12, rng=3, progress=False, chunk_size=10)
    a = first_covering_trials("uniform", 0.1, trials=25, store=store, **kw)
    assert a.shape == (25,) and a.dtype == np.int64
    assert np.all((a >= 1) & (a <= 13))
    again = first_covering_trials("uniform", 0.1, trials=25, store=store, **kw)
    assert np.array_equal(a, again)
    # more trials: the first two full chunks are reused bit for bit
    more = first_covering_trials("uniform", 0.1, trials=40, store=store, **kw)
    assert np.array_equal(more[:20], a[:20])
    # no store: same seeds, same answers
    assert np.array_equal(first_covering_trials("uniform", 0.1, trials=25, **kw), a)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"distribution": "cauchy"},
        {"eps": 1.5},
        {"n_max": 41},
        {"trials": 0},
        {"chunk_size": 0},
    ],
)
def test_first_covering_trials_rejects_bad_input(kwargs):
    args = {"distribution": "uniform", "eps": 0.1, "trials": 5, "n_max": 8, "progress": False}
    args.update(kwargs)
    distribution, eps = args.pop("distribution"), args.pop("eps")
    with pytest.raises(InputError):
        first_covering_trials(distribution, eps, **args)
