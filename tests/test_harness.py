"""slth.testing.harness: slth's constructions pass it, and broken constructions fail it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import strategies as st

from slth import MLP, InputError, Ticket
from slth.constructions import bounded_target, malach2020, pensia2020, single_pair
from slth.testing import strategies as S
from slth.testing.harness import check_construction, check_ticket


@pytest.mark.parametrize("build", [
    lambda t, s: pensia2020.construct(t, n=3, rng=s),
    lambda t, s: pensia2020.construct(t, eps=0.2, delta=0.2, rng=s, on_failure="report"),
    lambda t, s: malach2020.construct(t, k=4, rng=s),
    lambda t, s: single_pair.construct(t, k=6, rng=s),
], ids=["pensia-exact", "pensia-eps", "malach", "single_pair"])
def test_slth_constructions_pass(build):
    check_construction(build, max_examples=8)


def test_biased_targets_pass():
    targets = S.bounded_targets(widths=S.widths(max_layers=2, max_width=3), bias=st.booleans())
    check_construction(lambda t, s: pensia2020.construct(t, n=3, rng=s), targets=targets,
                       max_examples=8)


# ----------------------------------------------------------------------------- broken ones
def _rescaled_weight(t: MLP, s: int) -> Ticket:
    """Cheats: scales one kept source weight (a ticket must never change a weight)."""
    good = pensia2020.construct(t, n=3, rng=s)
    ws = [np.array(w) for w in good.source.weights]
    ws[-1] = ws[-1] * 1.5
    return Ticket(MLP(ws), good.masks, construction="manual", target_widths=good.target_widths,
                  layer_map=good.layer_map, weight_errors=good.weight_errors)


def _fresh_draws(t: MLP, s: int) -> Ticket:
    """Cheats: draws a new source on every call (the public codes' defect)."""
    return pensia2020.construct(t, n=3, rng=np.random.default_rng())


def _wrong_records(t: MLP, s: int) -> Ticket:
    """Cheats: reports zero errors."""
    good = pensia2020.construct(t, n=3, rng=s)
    return Ticket(good.source, good.masks, construction="manual",
                  target_widths=good.target_widths, layer_map=good.layer_map,
                  weight_errors=tuple(np.zeros_like(e) for e in good.weight_errors))


def _other_target(t: MLP, s: int) -> Ticket:
    """Cheats: builds for a different target than it was asked for."""
    other = MLP([2.0 * np.asarray(w) + 0.1 for w in t.weights])
    return pensia2020.construct(other, n=3, rng=s)


@pytest.mark.parametrize(("build", "invariant"), [
    (_fresh_draws, "same seed same bits"),
    (_wrong_records, "recorded errors"),
    (_other_target, "fingerprint"),
])
def test_broken_constructions_fail(build, invariant):
    with pytest.raises(AssertionError, match=invariant):
        check_construction(build, max_examples=5)


def test_a_changed_weight_is_caught_by_the_forward_or_the_records():
    target = bounded_target((3, 4, 2), rng=0)
    ticket = _rescaled_weight(target, 0)
    honest_source = pensia2020.construct(target, n=3, rng=0).source
    # the kept values are the (rescaled) source's own: the cheat shows in the records
    with pytest.raises(AssertionError, match="recorded errors"):
        check_ticket(target, ticket, rebuilt=None)
    assert not np.array_equal(ticket.source.weights[-1], honest_source.weights[-1])


def test_extra_arithmetic_in_forward_is_caught(monkeypatch):
    target = bounded_target((2, 3, 1), rng=1)
    ticket = pensia2020.construct(target, n=3, rng=1)
    original = Ticket.forward
    monkeypatch.setattr(Ticket, "forward", lambda self, x, **k: 1.01 * original(self, x, **k))
    with pytest.raises(AssertionError, match="forward"):
        check_ticket(target, ticket)


def test_bad_arguments():
    with pytest.raises(InputError, match="build"):
        check_construction("pensia2020")
    with pytest.raises(InputError, match="target"):
        check_ticket("t", "k")
