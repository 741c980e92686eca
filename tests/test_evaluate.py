"""slth.evaluate: sampled <= adversarial (lower bound) <= sup <= certified (upper bound)."""

from __future__ import annotations

import numpy as np
import pytest

from slth.constructions import malach2020, pensia2020
from slth.errors import InputError, ShapeError, SLTHError
from slth.evaluate import (
    _compact_mlp_ticket,
    _ticket_layers,
    approximation_error,
    certified_bound,
    effective_layers,
    sample_ball,
)
from slth.nets import MLP
from slth.ticket import Ticket


def unit_norm_target(widths, seed, bias=False):
    net = MLP.random(widths, rng=seed, bias=bias)
    ws = [w / np.linalg.svd(w, compute_uv=False)[0] for w in net.weights]
    bs = [None if b is None else 0.5 * b for b in net.biases]
    return MLP(ws, bs)


def test_sample_ball():
    x = sample_ball(5, 101, rng=0)
    norms = np.linalg.norm(x, axis=1)
    assert x.shape == (101, 5) and np.all(norms <= 1.0)
    np.testing.assert_allclose(norms[:51], 1.0, atol=1e-12)
    assert norms[51:].max() < 1.0
    x2 = sample_ball(3, 10, radius=2.0, rng=1)
    assert np.all(np.linalg.norm(x2, axis=1) <= 2.0)
    assert np.array_equal(sample_ball(5, 101, rng=0), x)


def test_vjp_matches_finite_differences():
    # the adversarial search climbs the networks' own vjp
    target = unit_norm_target((4, 6, 5, 3), seed=1, bias=True)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 4))
    u = rng.normal(size=(5, 3))
    g = target.linearize(x).vjp(u)
    h = 1e-6
    for k in range(4):
        e = np.zeros(4)
        e[k] = h
        fp, fm = target.forward(x + e), target.forward(x - e)
        np.testing.assert_allclose(g[:, k], ((fp - fm) * u).sum(1) / (2 * h), atol=1e-6)


def _instances():
    out = []
    for seed in range(4):
        t = unit_norm_target((3, 5, 2), seed=seed)
        out.append((t, pensia2020.construct(t, n=4 + 2 * seed, rng=seed)))
    tb = unit_norm_target((3, 4, 2), seed=9, bias=True)
    out.append((tb, pensia2020.construct(tb, n=6, rng=9)))
    tm = unit_norm_target((3, 4, 2), seed=10)
    out.append((tm, malach2020.construct(tm, k=30, rng=10)))
    return out


@pytest.mark.parametrize("idx", range(6))
def test_ticket_layers_drop_only_units_that_cannot_matter(idx):
    # the compacted ticket computes the outputs and input gradients of source * mask
    _, ticket = _instances()[idx]
    src = ticket.source
    full = ticket.network()
    compact = _compact_mlp_ticket(ticket)
    hidden_full = sum(src.widths[1:-1])
    hidden_kept = sum(w.shape[0] for w, _ in _ticket_layers(ticket)[:-1])
    assert hidden_kept <= hidden_full
    rng = np.random.default_rng(idx)
    x = rng.normal(size=(64, src.widths[0]))
    u = rng.normal(size=(64, src.widths[-1]))
    lf, lc = full.linearize(x), compact.linearize(x)
    np.testing.assert_allclose(lc.output, lf.output, rtol=0, atol=1e-12)
    np.testing.assert_allclose(lc.vjp(u), lf.vjp(u), rtol=0, atol=1e-12)


def test_ticket_layers_compact_a_malach_ticket():
    # Malach et al. keep one pair per weight: almost every hidden unit of the source is dead
    target, ticket = _instances()[5]
    compact = _ticket_layers(ticket)
    kept = sum(w.shape[0] for w, _ in compact[:-1])
    # at most one pair of units per target weight, plus the target's own hidden units
    bound = sum(2 * w.size for w in target.weights) + sum(target.widths[1:-1])
    assert kept <= bound < sum(ticket.source.widths[1:-1]) // 5


@pytest.mark.parametrize("idx", range(6))
def test_ordering_sampled_adversarial_certified(idx):
    target, ticket = _instances()[idx]
    rep = approximation_error(target, ticket, n_samples=512, rng=idx, adversarial_steps=40,
                              restarts=6)
    assert rep.sampled_mean <= rep.sampled_max <= rep.adversarial
    assert rep.certified is not None and rep.certified_note == ""
    assert rep.adversarial <= rep.certified
    # the adversarial input is a real point of the ball with that error
    x = rep.adversarial_input
    assert np.linalg.norm(x) <= 1.0
    assert np.linalg.norm(target.forward(x) - ticket.forward(x)) == pytest.approx(
        rep.adversarial, rel=1e-9)


def test_adversarial_search_improves_on_samples():
    """On most instances gradient ascent finds a strictly larger error than the samples."""
    better = 0
    for target, ticket in _instances():
        rep = approximation_error(target, ticket, n_samples=256, rng=1, adversarial_steps=40)
        better += rep.adversarial > rep.sampled_max * (1 + 1e-9)
    assert better >= 4


def test_adversarial_close_to_grid_sup_in_one_dimension():
    target = unit_norm_target((1, 6, 2), seed=4)
    ticket = pensia2020.construct(target, n=5, rng=4)
    grid = np.linspace(-1.0, 1.0, 200001)[:, None]
    grid_sup = np.linalg.norm(target.forward(grid) - ticket.forward(grid), axis=1).max()
    rep = approximation_error(target, ticket, n_samples=16, rng=0, adversarial_steps=60,
                              restarts=4)
    assert rep.adversarial >= 0.99 * grid_sup
    assert rep.adversarial <= grid_sup + 1e-4  # grid spacing 1e-5 times the Lipschitz bound
    assert grid_sup <= rep.certified


def test_certified_is_zero_for_an_exact_ticket():
    # source 1 -> 2 -> 1: a = +-0.5, b = +-0.4: P = 0.2, N = -0.2 = -W exactly
    src = MLP([np.array([[0.5], [-0.5]]), np.array([[0.4, -0.4]])])
    ticket = Ticket(src, [np.ones((2, 1), bool), np.ones((1, 2), bool)],
                    target_widths=(1, 1), layer_map=((0, 1),))
    target = MLP([np.array([[0.2]])])
    # the realised map is exact; what remains is the outward rounding that covers the
    # float64 evaluation of the error (a few ulps of the output's scale)
    assert 0.0 <= certified_bound(target, ticket) <= 1e-15
    assert certified_bound(target, ticket, method="propagation") <= 1e-15
    x = np.linspace(-1, 1, 11)[:, None]
    np.testing.assert_allclose(ticket.forward(x), target.forward(x), atol=1e-15)


def test_effective_layers_reproduce_recorded_errors():
    for target, ticket in _instances():
        for E, W, b, we, be in zip(effective_layers(target, ticket), target.weights,
                                   target.biases, ticket.weight_errors, ticket.bias_errors):
            np.testing.assert_allclose(np.maximum(np.abs(E.P - W), np.abs(E.N + W)), we,
                                       atol=1e-12)
            if b is not None:
                np.testing.assert_allclose(np.abs(E.beta - b), be, atol=1e-12)


def test_certified_scales_with_radius_and_bounds_larger_balls():
    target, ticket = _instances()[1]
    c1 = certified_bound(target, ticket)
    c2 = certified_bound(target, ticket, radius=2.0)
    assert c2 == pytest.approx(2.0 * c1)     # bias-free: positively homogeneous
    rep = approximation_error(target, ticket, n_samples=256, rng=0, radius=2.0)
    assert rep.adversarial <= rep.certified == pytest.approx(c2)


def test_given_inputs():
    target, ticket = _instances()[0]
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (40, 3))
    rep = approximation_error(target, ticket, inputs=x, adversarial_steps=0)
    err = np.linalg.norm(target.forward(x) - ticket.forward(x), axis=1)
    assert rep.inputs_given and rep.n_samples == 40
    assert rep.sampled_max == pytest.approx(err.max()) and rep.adversarial == rep.sampled_max
    assert rep.sampled_mean == pytest.approx(err.mean())


def test_manual_ticket_without_layer_map():
    src = MLP.random((2, 3, 1), rng=0)
    ticket = Ticket(src, [np.ones((3, 2), bool), np.ones((1, 3), bool)])
    target = MLP.random((2, 1), rng=1)
    with pytest.raises(InputError, match="layer_map"):
        certified_bound(target, ticket)
    rep = approximation_error(target, ticket, n_samples=64, rng=0, adversarial_steps=5)
    assert rep.certified is None and "layer_map" in rep.certified_note


def test_non_block_ticket_rejected():
    src = MLP.random((2, 3, 1), rng=0)
    ticket = Ticket(src, [np.ones((3, 2), bool), np.ones((1, 3), bool)],
                    target_widths=(2, 1), layer_map=((0, 1),))
    with pytest.raises(InputError, match="two-layer block form"):
        certified_bound(MLP.random((2, 1), rng=1), ticket)


@pytest.mark.parametrize(("call", "exc"), [
    (lambda t, k: approximation_error(t, k, n_samples=0), InputError),
    (lambda t, k: approximation_error(t, k, restarts=0), InputError),
    (lambda t, k: approximation_error(t, k, adversarial_steps=-1), InputError),
    (lambda t, k: approximation_error(t, k, radius=0.0), InputError),
    (lambda t, k: approximation_error(t, k, inputs=np.zeros((3, 7))), ShapeError),
    (lambda t, k: approximation_error(t, k, inputs=np.full((3, 3), np.nan)), InputError),
    (lambda t, k: certified_bound(t, k, radius=-1.0), InputError),
    (lambda t, k: certified_bound(t.weights[0], k), InputError),
    (lambda t, k: certified_bound(t, "ticket"), InputError),
    (lambda t, k: certified_bound(MLP.random((3, 4, 4, 2), rng=0), k), ShapeError),
])
def test_invalid_arguments(call, exc):
    target, ticket = _instances()[0]
    with pytest.raises(exc) as info:
        call(target, ticket)
    assert isinstance(info.value, SLTHError)
