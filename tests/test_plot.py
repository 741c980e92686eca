"""slth.plot.error_vs_width: the figure for a user's own target, with fit and theory."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from slth.constructions import bounded_target
from slth.errors import InputError
from slth.plot import error_vs_width, pensia2020_eps_at_width


def test_error_vs_width_pensia_with_theory(tmp_path):
    target = bounded_target((2, 3, 1), rng=0)
    curve = error_vs_width(target, "pensia2020", [2, 4, 6], trials=2, samples=128, steps=5,
                           out_dir=tmp_path, store=tmp_path / "runs.jsonl")
    assert curve.adversarial.shape == (2, 3) and curve.keyword == "n"
    assert np.all(curve.sampled <= curve.adversarial + 1e-15)
    assert np.all(curve.adversarial <= curve.certified)
    # the error falls with the width, and the fit says so
    med = np.median(curve.adversarial, axis=0)
    assert med[-1] < med[0] and curve.fit is not None and curve.fit[1] > 0
    assert curve.theory is not None and curve.theory.shape == (3,)
    assert "Theorem 1" in curve.theory_note
    for ext in ("csv", "png", "pdf"):
        assert curve.paths[ext].stat().st_size > 0
    with open(curve.paths["csv"]) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 and float(rows[0]["adversarial"]) == curve.adversarial[0, 0]
    # resumable: a rerun with the store computes nothing new and gives the same numbers
    again = error_vs_width(target, "pensia2020", [2, 4, 6], trials=2, samples=128, steps=5,
                           store=tmp_path / "runs.jsonl")
    assert np.array_equal(again.adversarial, curve.adversarial)


def test_theory_inverts_the_width_bound():
    from slth import bounds

    target = bounded_target((3, 4, 2), rng=0)
    for n in (20, 30, 40):
        eps = pensia2020_eps_at_width(target, n)
        if np.isnan(eps):
            continue
        need = max(int(bounds.pensia2020_units(w.shape[1], w.shape[0], 2, eps * 1.0001, 0.1))
                   for w in target.weights)
        assert need <= n  # at that accuracy the theorem's width fits in n
    from slth.plot import pensia2020_first_width

    n0 = pensia2020_first_width(target)
    assert np.isnan(pensia2020_eps_at_width(target, n0 - 1))
    assert pensia2020_eps_at_width(target, n0) < 0.1


def test_bad_arguments():
    target = bounded_target((2, 1), rng=0)
    with pytest.raises(InputError, match="`construction`"):
        error_vs_width(target, "nope", [2])
    with pytest.raises(InputError, match="`widths`"):
        error_vs_width(target, "pensia2020", [])
    with pytest.raises(InputError, match="width keyword"):
        error_vs_width(target, "pensia2020", [2], options={"n": 3})
