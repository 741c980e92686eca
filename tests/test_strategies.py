"""Tests of slth.testing.strategies: generated objects respect their documented bounds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from slth.errors import InputError
from slth.nets import MLP
from slth.testing import strategies as sst
from slth.ticket import Ticket


@st.composite
def widths_with_bounds(draw):
    min_layers = draw(st.integers(1, 4))
    max_layers = draw(st.integers(min_layers, 5))
    min_width = draw(st.integers(1, 6))
    max_width = draw(st.integers(min_width, 9))
    ws = draw(
        sst.widths(
            min_layers=min_layers, max_layers=max_layers, min_width=min_width, max_width=max_width
        )
    )
    return ws, (min_layers, max_layers, min_width, max_width)


@settings(max_examples=50, deadline=None)
@given(widths_with_bounds())
def test_widths_respect_bounds(case):
    ws, (min_layers, max_layers, min_width, max_width) = case
    assert isinstance(ws, tuple)
    assert min_layers <= len(ws) - 1 <= max_layers
    assert all(min_width <= w <= max_width and isinstance(w, int) for w in ws)


@settings(max_examples=40, deadline=None)
@given(sst.mlps(widths=(3, 5, 2), bias=True))
def test_mlps_fixed_widths_and_bias(net):
    assert isinstance(net, MLP)
    assert net.widths == (3, 5, 2)
    assert all(b is not None for b in net.biases)
    assert all(np.abs(p).max() <= 1 for p in net.parameters())


@settings(max_examples=40, deadline=None)
@given(sst.mlps(widths=sst.widths(max_width=6), max_spectral_norm=0.3, bias=st.booleans()))
def test_mlps_spectral_norm_bound(net):
    assert np.all(net.spectral_norms() <= 0.3)


@settings(max_examples=40, deadline=None)
@given(sst.bounded_targets(bias=st.booleans()))
def test_bounded_targets_have_unit_spectral_norms(net):
    assert np.all(net.spectral_norms() <= 1.0)


def test_bounded_targets_reach_the_bound():
    # the rescaling must not shrink everything: some drawn target has a layer norm near 1
    net = find(sst.bounded_targets(widths=(4, 4)), lambda n: n.spectral_norms()[0] > 0.999)
    assert net.spectral_norms()[0] <= 1.0


def test_mlps_bias_strategy_is_drawn_per_layer():
    mixed = find(
        sst.mlps(widths=(2, 2, 2, 2), bias=st.booleans()),
        lambda n: any(b is None for b in n.biases) and any(b is not None for b in n.biases),
    )
    assert mixed.has_biases


@settings(max_examples=50, deadline=None)
@given(sst.unit_ball_inputs(4, min_batch=2, max_batch=7))
def test_unit_ball_inputs(x):
    assert x.dtype == np.float64
    assert x.ndim == 2 and x.shape[1] == 4 and 2 <= x.shape[0] <= 7
    assert np.all(np.linalg.norm(x, axis=1) <= 1.0)


def test_unit_ball_inputs_reach_the_sphere():
    x = find(sst.unit_ball_inputs(3), lambda x: np.linalg.norm(x[0]) > 1 - 1e-9)
    assert np.linalg.norm(x[0]) <= 1.0


@settings(max_examples=40, deadline=None)
@given(sst.tickets(bias=st.booleans()))
def test_tickets_plain(t):
    assert isinstance(t, Ticket)
    assert [m.shape for m in t.masks] == [p.shape for p in t.source.parameters()]
    assert all(m.dtype == np.bool_ for m in t.masks)
    assert t.target_widths is None and t.layer_map is None and t.weight_errors is None


@settings(max_examples=40, deadline=None)
@given(sst.tickets(widths=sst.widths(max_layers=2), metadata=True))
def test_tickets_with_metadata(t):
    n_target = len(t.target_widths) - 1
    assert t.source.depth == 2 * n_target
    assert t.mlp_layer_map == tuple((2 * l, 2 * l + 1) for l in range(n_target))
    assert len(t.weight_errors) == len(t.bias_errors) == n_target
    for l, e in enumerate(t.weight_errors):
        assert e.shape == (t.target_widths[l + 1], t.target_widths[l])
        assert np.all(e >= 0)


@settings(max_examples=5, deadline=None)
@given(sst.tickets(widths=(50, 40), density=0.2))
def test_tickets_density_is_respected_statistically(t):
    # 40 x 50 source, density 0.2: 2,000 Bernoulli(0.2) draws, std 0.009; margin 0.05
    # (5.5 std: false-failure probability about 4e-8 per example)
    assert abs(t.density - 0.2) < 0.05


BAD_ARGUMENTS = [
    ("min-layers-zero", lambda: sst.widths(min_layers=0), "`min_layers`"),
    ("layers-reversed", lambda: sst.widths(min_layers=3, max_layers=2), "`min_layers`"),
    ("min-width-zero", lambda: sst.widths(min_width=0), "`min_width`"),
    ("widths-reversed", lambda: sst.widths(min_width=5, max_width=4), "`min_width`"),
    ("max-width-float", lambda: sst.widths(max_width=4.5), "`max_width`"),
    ("max-layers-bool", lambda: sst.widths(max_layers=True), "`max_layers`"),
    ("fixed-widths-short", lambda: sst.mlps(widths=(3,)), "`widths`"),
    ("fixed-widths-zero", lambda: sst.mlps(widths=(3, 0)), "`widths`"),
    ("widths-type", lambda: sst.mlps(widths="3,2"), "`widths`"),
    ("bias-type", lambda: sst.mlps(bias="yes"), "`bias`"),
    ("spectral-negative", lambda: sst.mlps(max_spectral_norm=-1.0), "`max_spectral_norm`"),
    ("spectral-nan", lambda: sst.mlps(max_spectral_norm=float("nan")), "`max_spectral_norm`"),
    ("elements-type", lambda: sst.mlps(elements=[0.5]), "`elements`"),
    ("ball-dim-zero", lambda: sst.unit_ball_inputs(0), "`d`"),
    ("ball-batch-reversed", lambda: sst.unit_ball_inputs(2, min_batch=3, max_batch=2),
     "`min_batch`"),
    ("tickets-density", lambda: sst.tickets(density=1.5), "`density`"),
    ("tickets-metadata", lambda: sst.tickets(metadata="yes"), "`metadata`"),
]


@pytest.mark.parametrize(
    "call, name", [c[1:] for c in BAD_ARGUMENTS], ids=[c[0] for c in BAD_ARGUMENTS]
)
def test_bad_arguments_raise_eagerly(call, name):
    # raised when the strategy is built, before any example is drawn
    with pytest.raises(InputError) as info:
        call()
    assert name in str(info.value)
