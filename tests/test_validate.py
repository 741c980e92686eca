"""slth._validate: the one set of validators, and the library's checks that now go through it."""

from __future__ import annotations

import numpy as np
import pytest

from slth import _validate as v
from slth import bounds, certify, evaluate
from slth.constructions import _common
from slth.errors import InputError

NOT_NUMBERS = [None, True, np.bool_(False), "0.5", [0.5], np.array([0.5, 0.7]), object()]


@pytest.mark.parametrize("value", NOT_NUMBERS)
def test_scalar_helpers_refuse_non_numbers(value):
    for call in (lambda: v.real("x", value), lambda: v.positive("x", value),
                 lambda: v.open_interval("x", value), lambda: v.integer("x", value, low=0)):
        with pytest.raises(InputError, match=r"^`x` must be .*; received "):
            call()


@pytest.mark.parametrize(("value", "ok"), [(0.5, True), (np.float32(0.25), True), (1, False),
                                           (0, False), (float("nan"), False),
                                           (float("inf"), False), (-0.1, False)])
def test_open_interval(value, ok):
    if ok:
        assert v.open_interval("eps", value) == float(value)
        assert isinstance(v.open_interval("eps", value), float)
    else:
        with pytest.raises(InputError, match=r"`eps` must be a finite number in \(0, 1\); "
                                             r"received "):
            v.open_interval("eps", value)


def test_domains_and_none():
    assert v.open_interval("p", 1.5, 1.0, 2.0) == 1.5
    with pytest.raises(InputError, match=r"`p` must be a finite number in \(1, 2\); received 2"):
        v.open_interval("p", 2, 1.0, 2.0)
    assert v.open_interval("eps", None, allow_none=True) is None
    with pytest.raises(InputError, match=r"`eps` must be None or a finite number in \(0, 1\)"):
        v.open_interval("eps", 3, allow_none=True)
    assert v.positive("C", None, allow_none=True) is None
    assert v.real("x", -2) == -2.0
    with pytest.raises(InputError, match="`x` must be a finite number; received nan"):
        v.real("x", float("nan"))
    assert v.positive("C", "3", convert=True) == 3.0
    with pytest.raises(InputError, match="`C` must be a finite number > 0; received 'x'"):
        v.positive("C", "x", convert=True)


def test_integer():
    assert v.integer("n", np.int64(3), low=1) == 3
    assert type(v.integer("n", np.int64(3), low=1)) is int
    for bad in (0, 2.0, True, "3"):
        with pytest.raises(InputError, match=r"`n` must be an int >= 1; received "):
            v.integer("n", bad, low=1)
    assert v.integer("k", 4, low=1, high=4) == 4
    with pytest.raises(InputError, match=r"`k` must be an int in \[1, 4\]; received 5"):
        v.integer("k", 5, low=1, high=4)


def test_one_of():
    assert v.one_of("mode", "a", ("a", "b")) == "a"
    with pytest.raises(InputError, match=r"`mode` must be one of \('a', 'b'\); received 'c'"):
        v.one_of("mode", "c", ["a", "b"])


def test_int_or_per_layer():
    assert v.int_or_per_layer("n", None, 3) is None
    assert v.int_or_per_layer("n", 2, 3) == (2, 2, 2)
    assert v.int_or_per_layer("n", np.array([1, 2, 3]), 3) == (1, 2, 3)
    with pytest.raises(InputError, match="`n` must be an int >= 1 or a sequence of 3 such ints; "
                                         "received 0"):
        v.int_or_per_layer("n", 0, 3)
    with pytest.raises(InputError, match=r"sequence of 3 ints >= 1 \(one per target layer\); "
                                         r"received \[1, 2\]"):
        v.int_or_per_layer("n", [1, 2], 3)
    with pytest.raises(InputError, match="received 'ab'"):
        v.int_or_per_layer("n", "ab", 3)


def test_arrays():
    assert v.real_array("x", [1, 2]).dtype == np.float64
    with pytest.raises(InputError, match="`x` must be a real number or array"):
        v.real_array("x", "abc")
    with pytest.raises(InputError, match="`x` must be finite"):
        v.real_array("x", [1.0, np.inf])
    with pytest.raises(InputError, match=r"`eps` must lie in \(0, 0.5\); received 0.5"):
        v.open_interval_array("eps", [0.1, 0.5], 0.0, 0.5)
    with pytest.raises(InputError, match=r"`d` must be an int >= 1; received 2.5"):
        v.integer_array("d", [3, 2.5])
    with pytest.raises(InputError, match=r"`d` must be an int >= 1; received True"):
        v.integer_array("d", True)


def test_the_library_goes_through_it():
    """Old helper names are thin aliases, with the messages they had."""
    with pytest.raises(InputError, match=r"`eps` must be None or a finite number in \(0, 1\)"):
        _common.check_eps(2)
    with pytest.raises(InputError, match=r"`eps` must be a finite number in \(0, 1\)"):
        _common.check_eps(None, allow_none=False)
    with pytest.raises(InputError, match=r"`delta` must be a finite number in \(0, 1\)"):
        _common.check_delta(0)
    with pytest.raises(InputError, match="`C` must be a finite number > 0"):
        _common.check_positive("C", -1)
    with pytest.raises(InputError, match=r"`on_failure` must be one of \('raise', 'report'\)"):
        _common.check_on_failure("ignore")
    assert _common.check_units("k", 3, 2) == (3, 3)
    with pytest.raises(InputError, match="`radius` must be a finite number > 0; received 0"):
        certify.check_radius(0)
    with pytest.raises(InputError, match="`n_samples` must be an int >= 1; received 0"):
        evaluate._check_count("n_samples", 0, 1)
    with pytest.raises(InputError, match=r"`eps` must lie in \(0, 1\); received 1.0"):
        bounds.pensia2020_units(3, 4, 2, 1.0, 0.1)
    with pytest.raises(InputError, match=r"`d_in` must be an int >= 1; received 0\.0"):
        bounds.pensia2020_units(0, 4, 2, 0.1, 0.1)
    with pytest.raises(InputError, match="`C` must be a finite number > 0; received -1"):
        bounds.pensia2020_units(3, 4, 2, 0.1, 0.1, C=-1)
    from slth.constructions import bounded_target, pensia2020
    target = bounded_target((2, 3, 1), rng=0)
    ticket = pensia2020.construct(target, n=4, rng=0)
    with pytest.raises(InputError, match=r"`method` must be one of \('sign', 'propagation'\); "
                                         r"received 'x'"):
        certify.certified_bound(target, ticket, method="x")
