"""slth.bounds: formulas, vectorisation, domain checks, and the measured constants."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slth import bounds
from slth.errors import InputError, SLTHError
from slth.subset_sum import coverage_batch


def test_lueker_n_formula_and_vectorised():
    assert bounds.lueker_n(0.01, C=2.0) == math.ceil(2.0 * math.log(200.0))
    assert bounds.lueker_n(0.5, C=1.0) == math.ceil(math.log(4.0))
    eps = np.array([[0.1, 0.01], [0.001, 0.5]])
    out = bounds.lueker_n(eps, C=3.0)
    assert out.shape == (2, 2) and out.dtype == np.int64
    np.testing.assert_array_equal(out, np.ceil(3.0 * np.log(2.0 / eps)).astype(int))
    assert isinstance(bounds.lueker_n(0.1), int)


def test_pensia_units_width_and_tolerance():
    d_in, d_out, l, eps, delta, C = 784, 500, 2, 0.01, 0.05, 6.0
    n = bounds.pensia2020_units(d_in, d_out, l, eps, delta, C=C)
    assert n == math.ceil(0.5 * C * math.log(d_in * d_out * l / min(eps, delta)))
    assert bounds.pensia2020_width(d_in, d_out, l, eps, delta, C=C) == 2 * n * d_in
    assert bounds.pensia2020_tolerance(d_in, d_out, l, eps) == pytest.approx(
        eps / (2 * l * d_in * d_out))
    # logarithmic in 1/eps: ten times smaller eps adds about (C/2) ln 10 units
    n2 = bounds.pensia2020_units(d_in, d_out, l, eps / 10, delta, C=C)
    assert n2 - n == pytest.approx(0.5 * C * math.log(10), abs=1.0)
    # broadcasting
    w = bounds.pensia2020_width(np.array([10, 20, 40]), 5, 1, 0.1, 0.1, C=C)
    assert w.shape == (3,) and np.all(np.diff(w) > 0)


def test_pensia_lower_bound():
    assert bounds.pensia2020_lower_bound(10, 0.125) == pytest.approx(199.0)
    lb = bounds.pensia2020_lower_bound(np.array([1, 10, 100]), 0.01)
    np.testing.assert_allclose(lb, np.array([1, 100, 10000]) * math.log2(50) - 1)
    # Theorem 1's source for one d x d layer (2 d m weights) exceeds the lower bound by a
    # factor that grows only like log(d): from d = 8 to d = 512 it grows by less than 2x
    eps = 0.01

    def ratio(d):
        return 2 * d * bounds.pensia2020_width(d, d, 1, eps, eps) / \
            bounds.pensia2020_lower_bound(d, eps)

    assert 1 < ratio(8) < ratio(512) < 2 * ratio(8)


def test_malach_polynomial_against_pensia():
    args = (8, 8, 2, 0.01, 0.1)
    km = bounds.malach2020_units(*args)
    kp = bounds.pensia2020_units(*args)
    assert km > 1000 * kp
    # about 1/eps scaling (up to the log factor)
    r = bounds.malach2020_units(8, 8, 2, 0.001, 0.1) / km
    assert 9.5 < r < 11.0
    # Malach et al.'s layout: one block of 2k units per target weight; the shared variant
    # one per input coordinate
    assert bounds.malach2020_width(*args) == 2 * 8 * 8 * km
    assert bounds.single_pair_width(*args) == 2 * 8 * km
    assert bounds.single_pair_units(*args) == km


BAD = [
    (bounds.lueker_n, (0.0,), {}),
    (bounds.lueker_n, (1.0,), {}),
    (bounds.lueker_n, (float("nan"),), {}),
    (bounds.lueker_n, (0.1,), {"C": 0.0}),
    (bounds.lueker_n, (0.1,), {"C": float("inf")}),
    (bounds.lueker_n, ("x",), {}),
    (bounds.pensia2020_units, (0, 3, 1, 0.1, 0.1), {}),
    (bounds.pensia2020_units, (2.5, 3, 1, 0.1, 0.1), {}),
    (bounds.pensia2020_units, (2, 3, 0, 0.1, 0.1), {}),
    (bounds.pensia2020_units, (2, 3, 1, 1.5, 0.1), {}),
    (bounds.pensia2020_units, (2, 3, 1, 0.1, 0.0), {}),
    (bounds.pensia2020_units, (True, 3, 1, 0.1, 0.1), {}),
    (bounds.pensia2020_width, (2, 3, 1, 0.1, 0.1), {"C": -1.0}),
    (bounds.pensia2020_lower_bound, (4, 0.5), {}),
    (bounds.pensia2020_lower_bound, (0, 0.1), {}),
    (bounds.malach2020_units, (2, 3, 1, -0.1, 0.1), {}),
    (bounds.malach2020_width, (2, 3, 1, 0.1, 1.0), {}),
    (bounds.single_pair_width, (2, 0, 1, 0.1, 0.5), {}),
    (bounds.pensia2020_tolerance, (2, 3, 1, 0.0), {}),
]


@pytest.mark.parametrize(("fn", "args", "kwargs"), BAD)
def test_domain_errors(fn, args, kwargs):
    with pytest.raises(InputError) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, SLTHError)
    assert "`" in str(info.value) and "received" in str(info.value)


@pytest.mark.parametrize("p", [4, 5])
def test_measured_lueker_constant(p):
    """n = lueker_n(eps, C=LUEKER_C) uniform values cover [-1, 1] within eps with
    probability >= 1 - eps. Margin: the observed failure rate may exceed eps by at most
    3 binomial standard deviations of 2000 seeded trials."""
    eps = 2.0 ** -p
    n = bounds.lueker_n(eps, C=bounds.LUEKER_C)
    trials = 2000
    rng = np.random.default_rng(1234 + p)
    cov = coverage_batch(rng.uniform(-1.0, 1.0, (trials, n)))
    fail = float(np.mean(cov > eps))
    assert fail <= eps + 3.0 * math.sqrt(eps * (1 - eps) / trials)


def test_malach_width_is_sufficient_for_small_weights():
    """The union bound of malach2020_units is rigorous for |w| <= 1/2: at that width the
    single-pair selection meets the tolerance in >= 1 - delta of seeded trials (margin:
    2 extra failures out of 40)."""
    from slth.constructions import malach2020
    from slth.nets import MLP

    eps, delta, trials = 0.5, 0.2, 40
    fails = 0
    rng = np.random.default_rng(7)
    for t in range(trials):
        w = rng.uniform(-0.5, 0.5, (2, 2))
        target = MLP([w / max(1.0, np.linalg.norm(w, 2))])
        k = malach2020.theorem_units(target, eps, delta)
        ticket = malach2020.construct(target, eps=eps, delta=delta, k=k, rng=t,
                                      on_failure="report")
        fails += ticket.params["n_failed"] > 0
    assert fails <= delta * trials + 2
