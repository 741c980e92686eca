"""Malach et al. (ICML 2020), Theorem 2.1: one pair per weight, each weight owning its block."""

from __future__ import annotations

import numpy as np
import pytest

from slth import LimitError
from slth.constructions import bounded_target, malach2020, pensia2020, rescale, single_pair
from slth.errors import ConstructionError, InputError, ShapeError
from slth.evaluate import approximation_error, certified_bound
from slth.nets import MLP


@pytest.fixture(scope="module")
def small():
    target = bounded_target((4, 5, 3), rng=21)
    return target, malach2020.construct(target, k=30, rng=2)


def test_layout_and_bit_for_bit(small):
    target, ticket = small
    k = 30
    assert ticket.construction == "malach2020"
    widths = malach2020.source_widths(target, (k, k))
    assert widths == (4, 2 * k * 5 * 4, 5, 2 * k * 3 * 5, 3)
    assert ticket.source.widths == widths
    expected = MLP.random(widths, rng=2)          # bias-free: the same draw as MLP.random
    for got, exp in zip(ticket.source.parameters(), expected.parameters()):
        assert np.array_equal(got, exp)
    for p, m, v in zip(ticket.source.parameters(), ticket.masks, ticket.kept_values()):
        assert np.array_equal(p[m], v)            # a mask, never a changed weight
    for layer in range(target.depth):
        d_out, d_in = target.weights[layer].shape
        A = ticket.source.weights[2 * layer]
        mA, mB = ticket.masks[2 * layer], ticket.masks[2 * layer + 1]
        units, inputs = np.nonzero(mA)
        assert np.all((units // (2 * k)) % d_in == inputs)      # block (i, j) reads x_j only
        rows, hidden = np.nonzero(mB)
        assert np.all(hidden // (2 * k * d_in) == rows)          # and feeds output i only
        a = A[np.arange(A.shape[0]), (np.arange(A.shape[0]) // (2 * k)) % d_in]
        for sign in (1, -1):
            kept = mB.reshape(d_out, d_out, d_in, 2 * k)[np.arange(d_out), np.arange(d_out)]
            kept = kept & (sign * a.reshape(d_out, d_in, 2 * k) > 0)
            assert kept.sum(axis=-1).max() <= 1                  # one pair per sign part
        # at most four kept weights per target weight
        assert mA.sum() + mB.sum() <= 4 * d_out * d_in


def test_errors_are_the_closest_pair_of_each_block(small):
    target, ticket = small
    k = 30
    A, B = ticket.source.weights[:2]
    W = target.weights[0]
    d_out, d_in = W.shape
    for i in range(d_out):
        for j in range(d_in):
            h = (i * d_in + j) * 2 * k + np.arange(2 * k)
            a, b = A[h, j], B[i, h]
            parts = []
            for sign, tgt in ((1, W[i, j]), (-1, -W[i, j])):
                idx = [u for u in range(2 * k) if sign * a[u] > 0][:k]
                parts.append(min([abs(tgt)] + [abs(tgt - b[u] * abs(a[u])) for u in idx]))
            assert ticket.weight_errors[0][i, j] == pytest.approx(max(parts), abs=1e-15)


def test_forward_fingerprint_and_certificate(small):
    target, ticket = small
    assert ticket.target_fingerprint == target.fingerprint()
    x = np.random.default_rng(3).normal(size=(100, 4))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_allclose(ticket.forward(x), ticket.network().forward(x), atol=1e-12)
    rep = approximation_error(target, ticket, rng=0, n_samples=256)
    assert rep.sampled_max <= rep.adversarial <= rep.certified


def test_eps_mode_meets_the_tolerance_and_theorem_claim():
    target = bounded_target((3, 3), rng=5)
    target = MLP([0.5 * target.weights[0]])   # |W_ij| <= 1/2: the width's union bound holds
    eps = 0.2
    ticket = malach2020.construct(target, eps=eps, delta=0.1, rng=0)
    assert ticket.params["mode"] == "eps" and ticket.params["n_failed"] == 0
    assert np.all(ticket.weight_errors[0] <= ticket.params["weight_tolerance"][0])
    assert certified_bound(target, ticket) <= eps
    with pytest.raises(ConstructionError, match=r"malach2020: .* missed"):
        malach2020.construct(target, eps=0.01, k=5, rng=0)
    rep = malach2020.construct(target, eps=0.01, k=5, rng=0, on_failure="report")
    assert rep.params["n_failed"] > 0


def test_source_is_d_out_times_the_shared_variant():
    target = bounded_target((3, 4, 2), rng=1)
    tm = malach2020.construct(target, k=20, rng=0)
    ts = single_pair.construct(target, k=20, rng=0)
    assert [tm.source.widths[2 * i + 1] for i in range(2)] == [
        ts.source.widths[2 * i + 1] * target.widths[i + 1] for i in range(2)]
    tp = pensia2020.construct(target, n=20, rng=0)
    # same k: the shared variant has Pensia's layout; Malach et al.'s is larger
    assert ts.source.widths == tp.source.widths
    assert tm.n_source_params > 2 * ts.n_source_params


def test_biased_target_and_user_source():
    net = bounded_target((2, 3), rng=6)
    target = MLP(net.weights, [np.array([0.3, -0.2, 0.1])])
    ticket = malach2020.construct(target, k=80, rng=1)
    assert ticket.bias_errors[0].shape == (3,)
    assert ticket.source.widths == (2, 2 * 80 * 3 * 3, 3)
    again = malach2020.construct(target, source=ticket.source)
    assert again.params["k"] == [80]
    for m1, m2 in zip(ticket.masks, again.masks):
        assert np.array_equal(m1, m2)
    rep = approximation_error(target, ticket, rng=0, n_samples=256)
    assert rep.adversarial <= rep.certified
    with pytest.raises(ShapeError, match="widths"):
        malach2020.construct(target, source=MLP.random((2, 100, 3), rng=0))
    with pytest.raises(InputError, match="`eps`"):
        malach2020.construct(target)


def test_memory_guard_refuses_before_allocating():
    # the reproducer: numpy used to die with "Unable to allocate 477. GiB"
    target = rescale(MLP.random((64, 32, 10), rng=0)).target
    with pytest.raises(LimitError, match=r"TiB.*memory budget"):
        malach2020.construct(target, eps=0.1, rng=1)


def test_nested_sources_grow_one_network():
    target = bounded_target((3, 4, 2), rng=3)
    big = MLP.random(malach2020.source_widths(target, (40, 30)), rng=0)
    cut = malach2020.nested_source(big, target, (40, 30), (10, 5))
    assert cut.widths == malach2020.source_widths(target, (10, 5))
    small = malach2020.construct(target, source=cut)
    large = malach2020.construct(target, source=big)
    # more candidates never hurt: the closest pair of a superset is at least as close
    for a, b in zip(small.weight_errors, large.weight_errors):
        assert np.all(b <= a)
    # block (i, j) of the cut is the first 2k units of block (i, j) of the big source
    assert np.array_equal(cut.weights[0][:20], big.weights[0][:20])
    assert np.array_equal(cut.weights[0][20:40], big.weights[0][80:100])


def test_check_reads_the_candidates_the_construction_uses():
    # proofs_check.malach2020 scans widths from candidate readings instead of tickets:
    # its reading of the per-weight layout must give the ticket's errors exactly
    from proofs_check._mlp import SingleCurve
    from proofs_check.malach2020 import layer_candidates_per_weight

    target = bounded_target((3, 4, 2), rng=8)
    big = MLP.random(malach2020.source_widths(target, (25, 25)), rng=1)
    for k in (3, 11, 25):
        cut = malach2020.nested_source(big, target, (25, 25), (k, k))
        ticket = malach2020.construct(target, source=cut)
        for layer in range(2):
            curve = SingleCurve.of(layer_candidates_per_weight(big, target, layer, 25))
            e = curve.at(k)
            np.testing.assert_array_equal(np.maximum(e[0], e[1]), ticket.weight_errors[layer])
