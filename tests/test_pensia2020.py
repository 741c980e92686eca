"""Pensia et al. (NeurIPS 2020), Theorem 1: the construction, its masks and its guarantee."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from slth import bounds
from slth.constructions import pensia2020, rescale, source_widths
from slth.errors import (
    ConstructionError,
    InputError,
    LimitError,
    ShapeError,
    SLTHError,
)
from slth.evaluate import certified_bound
from slth.nets import MLP
from slth.testing import strategies as sst
from slth.ticket import Ticket


# ----------------------------------------------------------------------------- helpers
def unit_norm_target(widths, seed, bias=False):
    net = MLP.random(widths, rng=seed, bias=bias)
    ws = [w / np.linalg.svd(w, compute_uv=False)[0] for w in net.weights]
    bs = [None if b is None else 0.5 * b for b in net.biases]
    return MLP(ws, bs)


def dense_forward(ticket: Ticket, x: np.ndarray) -> np.ndarray:
    """Plain reference: the source's architecture with every parameter times its mask."""
    it = iter(zip(ticket.source.parameters(), ticket.masks))
    h = np.array(x, dtype=np.float64)
    L = ticket.source.depth
    for l, b in enumerate(ticket.source.biases):
        w, m = next(it)
        h = h @ (w * m).T
        if b is not None:
            bv, mb = next(it)
            h = h + bv * mb
        if l < L - 1:
            h = np.maximum(h, 0.0)
    return h


def reference_effective(ticket: Ticket, layer: int, d_in: int, d_out: int, n: int):
    """Plain loops: P_ij, N_ij (sums of b a over kept positive/negative units of block j)."""
    src = ticket.source
    names = src.parameter_names()
    masks = dict(zip(names, ticket.masks))
    A, B = src.weights[2 * layer], src.weights[2 * layer + 1]
    mA, mB = masks[f"layers.{4 * layer}.weight"], masks[f"layers.{4 * layer + 2}.weight"]
    P = np.zeros((d_out, d_in))
    N = np.zeros((d_out, d_in))
    for i in range(d_out):
        for j in range(d_in):
            for k in range(2 * n):
                u = j * 2 * n + k
                if mA[u, j] and mB[i, u]:
                    if A[u, j] > 0:
                        P[i, j] += B[i, u] * A[u, j]
                    else:
                        N[i, j] += B[i, u] * (-A[u, j])
    return P, N


@pytest.fixture(scope="module")
def small():
    target = unit_norm_target((5, 7, 3), seed=11)
    ticket = pensia2020.construct(target, n=12, rng=5)
    return target, ticket


# ----------------------------------------------------------------------------- structure
def test_source_drawn_once_from_rng_and_kept_bit_for_bit(small):
    target, ticket = small
    expected = MLP.random(source_widths(target, (12, 12)), rng=5)
    for got, exp in zip(ticket.source.parameters(), expected.parameters()):
        assert np.array_equal(got, exp)
    # every kept weight is the source's weight, bit for bit; pruned ones are exactly 0
    net = ticket.network()
    for p, m, q, kept in zip(ticket.source.parameters(), ticket.masks, net.parameters(),
                             ticket.kept_values()):
        assert m.shape == p.shape and m.dtype == np.bool_
        assert np.array_equal(q[m].view(np.uint64), p[m].view(np.uint64))
        assert np.array_equal(kept.view(np.uint64), p[m].view(np.uint64))
        assert not np.any(q[~m])


def test_layout_depth_and_metadata(small):
    target, ticket = small
    assert ticket.source.depth == 2 * target.depth
    assert ticket.source.widths == (5, 2 * 12 * 5, 7, 2 * 12 * 7, 3)
    assert ticket.mlp_layer_map == ((0, 1), (2, 3))
    assert dict(ticket.layer_map) == {"layers.0": ("layers.0", "layers.2"),
                                      "layers.2": ("layers.4", "layers.6")}
    assert ticket.construction == "pensia2020"
    assert ticket.target_widths == target.widths
    assert [e.shape for e in ticket.weight_errors] == [(7, 5), (3, 7)]
    assert ticket.bias_errors == (None, None)
    json.dumps(dict(ticket.params))
    assert ticket.params["mode"] == "exact" and ticket.params["n"] == [12, 12]
    assert ticket.params["assumptions_hold"] is True
    assert ticket.params["seed"] == 5


def test_first_layer_masks_block_diagonal_and_units_used(small):
    target, ticket = small
    n = 12
    for layer in range(target.depth):
        mA = ticket.masks[2 * layer]
        mB = ticket.masks[2 * layer + 1]
        A = ticket.source.weights[2 * layer]
        units, inputs = np.nonzero(mA)
        assert np.all(units // (2 * n) == inputs)            # block j reads x_j only
        assert np.all(mA.sum(axis=1) <= 1)
        used = mA.any(axis=1)
        # a first-layer weight is kept exactly when its unit feeds a kept second-layer weight
        np.testing.assert_array_equal(used, mB.any(axis=0))
        # each part uses the first n units of its sign in the block
        a = A[np.arange(A.shape[0]), np.arange(A.shape[0]) // (2 * n)].reshape(-1, 2 * n)
        rank_pos = np.cumsum(a > 0, axis=1)
        rank_neg = np.cumsum(a < 0, axis=1)
        allowed = ((a > 0) & (rank_pos <= n)) | ((a < 0) & (rank_neg <= n))
        assert np.all(allowed.ravel()[used])


def test_forward_equals_dense_reference(small):
    _, ticket = small
    x = np.random.default_rng(0).normal(size=(64, 5))
    np.testing.assert_allclose(ticket.forward(x), dense_forward(ticket, x), rtol=1e-12,
                               atol=1e-12)


def test_weight_errors_match_plain_reference(small):
    target, ticket = small
    for layer, (W, err) in enumerate(zip(target.weights, ticket.weight_errors)):
        P, N = reference_effective(ticket, layer, W.shape[1], W.shape[0], 12)
        np.testing.assert_allclose(np.maximum(np.abs(P - W), np.abs(N + W)), err, atol=1e-12)


def test_exact_mode_is_optimal_over_the_candidates():
    """Each part's realised error equals the brute-force optimum over its n candidates."""
    target = unit_norm_target((2, 2), seed=3)
    n = 6
    ticket = pensia2020.construct(target, n=n, rng=9)
    A, B = ticket.source.weights
    W = target.weights[0]
    for i, j in itertools.product(range(2), range(2)):
        a = A[j * 2 * n:(j + 1) * 2 * n, j]
        b = B[i, j * 2 * n:(j + 1) * 2 * n]
        best = []
        for sign, tgt in ((1, W[i, j]), (-1, -W[i, j])):
            idx = [k for k in range(2 * n) if sign * a[k] > 0][:n]
            vals = [b[k] * abs(a[k]) for k in idx]
            best.append(min(abs(tgt - sum(s)) for r in range(len(vals) + 1)
                            for s in itertools.combinations(vals, r)))
        assert ticket.weight_errors[0][i, j] == pytest.approx(max(best), abs=1e-12)


@given(target=sst.bounded_targets(widths=sst.widths(max_layers=2, max_width=4)),
       n=st.integers(1, 8), seed=st.integers(0, 2**16))
def test_properties_on_random_targets(target, n, seed):
    ticket = pensia2020.construct(target, n=n, rng=seed)
    x = np.random.default_rng(seed).uniform(-1, 1, (8, target.widths[0]))
    np.testing.assert_allclose(ticket.forward(x), dense_forward(ticket, x), rtol=1e-10,
                               atol=1e-10)
    for layer, (W, err) in enumerate(zip(target.weights, ticket.weight_errors)):
        P, N = reference_effective(ticket, layer, W.shape[1], W.shape[0], n)
        np.testing.assert_allclose(np.maximum(np.abs(P - W), np.abs(N + W)), err, atol=1e-12)
        mA = ticket.masks[2 * layer]
        units, inputs = np.nonzero(mA)
        assert np.all(units // (2 * n) == inputs)


def test_same_seed_same_ticket(small):
    target, ticket = small
    again = pensia2020.construct(target, n=12, rng=5)
    for m1, m2 in zip(ticket.masks, again.masks):
        assert np.array_equal(m1, m2)


# ----------------------------------------------------------------------------- eps mode
def test_eps_mode_meets_per_weight_tolerance_and_certifies():
    target = unit_norm_target((4, 6, 3), seed=2)
    eps = 0.1
    ticket = pensia2020.construct(target, eps=eps, delta=0.1, rng=1)
    tol = ticket.params["weight_tolerance"]
    assert tol == pytest.approx([eps / (2 * 2 * 4 * 6), eps / (2 * 2 * 6 * 3)])
    for err, t in zip(ticket.weight_errors, tol):
        assert np.all(err <= t)
    assert ticket.params["n"] == list(pensia2020.theorem_units(target, eps, 0.1))
    assert ticket.params["width_from"] == "eps"
    assert certified_bound(target, ticket) <= eps


def test_theorem_width_with_measured_constant():
    """Theorem 1 at the width of slth.bounds with C = PENSIA2020_C: certified sup error
    <= eps in at least 1 - delta of seeded trials. Margin: 2 extra failures out of 30
    (delta * 30 = 3 allowed by the theorem)."""
    eps, delta, trials = 0.1, 0.1, 30
    good = 0
    for t in range(trials):
        target = unit_norm_target((3, 4, 2), seed=500 + t)
        ticket = pensia2020.construct(target, eps=eps, delta=delta, rng=t,
                                      on_failure="report")
        cert = certified_bound(target, ticket)
        if ticket.params["n_failed"] == 0:
            assert cert <= eps   # the tolerance argument of the proof
        good += cert <= eps
    assert good >= (1 - delta) * trials - 2


def test_too_small_source_raises_or_reports():
    target = unit_norm_target((4, 4), seed=1)
    with pytest.raises(ConstructionError) as info:
        pensia2020.construct(target, eps=0.01, n=3, rng=0)
    msg = str(info.value)
    assert "missed the per-weight tolerance" in msg and "worst error" in msg
    ticket = pensia2020.construct(target, eps=0.01, n=3, rng=0, on_failure="report")
    assert ticket.params["n_failed"] > 0
    assert ticket.params["failed_weights"] > 0
    tol = ticket.params["weight_tolerance"][0]
    assert np.count_nonzero(ticket.weight_errors[0] > tol) == ticket.params["failed_weights"]
    assert ticket.params["worst_error"] == pytest.approx(float(ticket.weight_errors[0].max()))


# ----------------------------------------------------------------------------- source
def test_user_source_is_pruned_not_replaced():
    target = unit_norm_target((3, 5, 2), seed=4)
    src = MLP.random(source_widths(target, (7, 7)), rng=42)
    before = [p.copy() for p in src.parameters()]
    ticket = pensia2020.construct(target, source=src)
    assert ticket.source is src
    assert ticket.params["n"] == [7, 7] and ticket.params["source_given"] is True
    for p, q in zip(src.parameters(), before):
        assert np.array_equal(p, q)


def test_wrong_shape_source_names_expected_widths():
    target = unit_norm_target((3, 5, 2), seed=4)
    src = MLP.random((3, 40, 5, 70, 2), rng=0)
    with pytest.raises(ShapeError) as info:
        pensia2020.construct(target, source=src, n=7)
    assert "(3, 42, 5, 70, 2)" in str(info.value)
    with pytest.raises(ShapeError, match="not 6 \\* n"):
        pensia2020.construct(target, source=MLP.random((3, 41, 5, 70, 2), rng=0))
    with pytest.raises(ShapeError, match="4 layers"):
        pensia2020.construct(target, source=MLP.random((3, 42, 2), rng=0))


# ----------------------------------------------------------------------------- biases
def test_biased_target_via_constant_units():
    target = unit_norm_target((3, 5, 2), seed=8, bias=True)
    ticket = pensia2020.construct(target, n=14, rng=3)
    src = ticket.source
    assert src.widths == (3, 2 * 14 * 4, 5, 2 * 14 * 6, 2)
    assert [b is not None for b in src.biases] == [True, False, True, False]
    names = src.parameter_names()
    masks = dict(zip(names, ticket.masks))
    for layer, d_in in ((0, 3), (2, 5)):
        mb = masks[f"layers.{2 * layer}.bias"]
        main = 2 * 14 * d_in
        assert not mb[:main].any()                          # only constant units keep a bias
        assert np.all(src.biases[layer][mb] > 0)
        assert not masks[f"layers.{2 * layer}.weight"][main:].any()   # constant units read no input
    assert all(e is not None and e.shape == (d,) for e, d in zip(ticket.bias_errors, (5, 2)))
    x = np.random.default_rng(1).normal(size=(32, 3))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_allclose(ticket.forward(x), dense_forward(ticket, x), atol=1e-12)
    err = np.linalg.norm(ticket.forward(x) - target.forward(x), axis=1).max()
    assert err <= certified_bound(target, ticket)
    assert ticket.params["assumptions_hold"] is False and ticket.params["bias_free"] is False


def test_biased_target_needs_source_bias():
    target = unit_norm_target((2, 3), seed=8, bias=True)
    src = MLP.random((2, 36, 3), rng=0)
    with pytest.raises(ShapeError, match="biases\\[0\\]"):
        pensia2020.construct(target, source=src)


# ----------------------------------------------------------------------------- rescale
def test_rescale_exact_identity_and_hypotheses():
    rng = np.random.default_rng(3)
    net = MLP([rng.normal(size=(6, 4)) * 2, rng.normal(size=(3, 6)) * 0.1],
              [rng.normal(size=6), rng.normal(size=3)])
    R = 2.5
    res = rescale(net, input_radius=R)
    assert np.all(res.target.spectral_norms() <= 1.0)
    assert res.factors[1] == 1.0 and res.factors[0] > 1.0
    assert res.output_factor == pytest.approx(np.prod(res.factors))
    x = rng.normal(size=(20, 4))
    np.testing.assert_allclose(net.forward(x), res.output_factor * res.target.forward(x / R),
                               rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- errors
TARGET = MLP([np.array([[0.5, 0.1]])])
NAN = float("nan")

ERRORS = [
    ({"eps": 0.0}, InputError),
    ({"eps": 1.0}, InputError),
    ({"eps": -0.5}, InputError),
    ({"eps": NAN}, InputError),
    ({"eps": "0.1"}, InputError),
    ({"eps": 0.1, "delta": 0.0}, InputError),
    ({"eps": 0.1, "delta": 2.0}, InputError),
    ({"n": 0}, InputError),
    ({"n": 2.5}, InputError),
    ({"n": True}, InputError),
    ({"n": [3, 3]}, InputError),
    ({"n": 41}, LimitError),
    ({"eps": 0.1, "C": 0.0}, InputError),
    ({"eps": 0.1, "on_failure": "ignore"}, InputError),
    ({}, InputError),
    ({"source": np.zeros((3, 2))}, InputError),
    ({"n": 4, "rng": -1}, InputError),
]


@pytest.mark.parametrize(("kwargs", "exc"), ERRORS)
def test_invalid_arguments(kwargs, exc):
    with pytest.raises(exc) as info:
        pensia2020.construct(TARGET, **kwargs)
    assert isinstance(info.value, SLTHError)
    assert "`" in str(info.value)


@pytest.mark.parametrize("bad", [np.eye(2), [[1.0]], None, "mlp"])
def test_non_mlp_target(bad):
    with pytest.raises(InputError, match=r"`target` must be a slth\.nets\.MLP"):
        pensia2020.construct(bad, n=4)


def test_nan_weights_rejected():
    with pytest.raises(SLTHError):
        pensia2020.construct(MLP([np.array([[NAN, 0.1]])]), n=4)


def test_theorem_units_formula():
    target = unit_norm_target((4, 6, 3), seed=2)
    units = pensia2020.theorem_units(target, 0.05, 0.1, C=5.0)
    assert units == (bounds.pensia2020_units(4, 6, 2, 0.05, 0.1, C=5.0),
                     bounds.pensia2020_units(6, 3, 2, 0.05, 0.1, C=5.0))


def test_weight_eps_solves_each_instance_to_the_given_tolerance():
    # the setting of Pensia et al.'s MNIST experiment: |w - sum| <= 0.01 with n = 21
    target = MLP.random((6, 5, 3), rng=3, scale=0.3)
    ticket = pensia2020.construct(target, n=21, weight_eps=0.01, rng=4)
    assert ticket.params["mode"] == "eps" and ticket.params["weight_eps"] == 0.01
    assert ticket.params["n_failed"] == 0
    for err in ticket.weight_errors:
        assert np.all(err <= 0.01)
    for kept, src in zip(ticket.kept_values(), ticket.source.parameters()):
        assert np.isin(kept, src).all()
    with pytest.raises(SLTHError, match="`weight_eps`"):
        pensia2020.construct(target, n=21, weight_eps=0.0, rng=4)
