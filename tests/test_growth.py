"""Growth test: a layer type defined only here goes through slth with no library change.

An elementwise ``Scale`` layer (``x -> x * scale``) is registered in this file,
used in a target network and in a random source network of the same
architecture, pruned by a toy construction defined here (keep an entry iff the
source's value is closer to the target's than 0 is), checked by the harness of
:mod:`slth.testing.harness` as a hypothesis property, evaluated (sampled and
adversarial error; no certifier, so the report says uncertified and why),
saved, reloaded and run on the torch bridge after registering the layer there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slth.evaluate import approximation_error
from slth.nets import Dense, Network, ReLU
from slth.nets.base import Layer, register_layer
from slth.sources import DenseSource, VirtualNetwork, VirtualSource
from slth.testing import strategies as sst
from slth.testing.harness import check_construction, check_ticket
from slth.ticket import Ticket


@register_layer("tests.growth.scale")
@dataclasses.dataclass(frozen=True)
class Scale(Layer):
    """Elementwise ``x -> x * scale`` with a learnable ``scale`` vector."""

    size: int

    def param_specs(self) -> Mapping[str, tuple[int, ...]]:
        return {"scale": (self.size,)}

    def declared_input_shape(self) -> tuple[int, ...]:
        return (self.size,)

    def apply(self, params: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
        return x * params["scale"]

    def vjp(self, params: Mapping[str, Any], x: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
        return grad_out * params["scale"]


def layers(d_in: int = 3, hidden: int = 4, d_out: int = 2) -> list[Any]:
    return [Dense(d_in, hidden), ReLU(), Scale(hidden), Dense(hidden, d_out, bias=False)]


def toy_construct(target: Network, seed: int, *, virtual: bool = False) -> Ticket:
    """Keep a source entry iff it is closer to the target's entry than 0 is (a toy rule).

    The source has the target's architecture, every entry U[-1, 1] from ``seed``
    (a :class:`DenseSource` draw or, with ``virtual``, the same bits computed on
    demand); the ticket records per target parameter ``|kept value or 0 - target|``.
    """
    spec = {name: shape for name, shape in target.param_specs().items()}
    vs = VirtualSource(spec, "uniform[-1,1]", seed)
    if virtual:
        source: Any = VirtualNetwork(target.arch, vs)
        values = {name: vs.dense(name) for name in spec}
    else:
        drawn = DenseSource.draw(spec, "uniform[-1,1]", seed)
        source = target.arch.with_params({name: drawn.dense(name) for name in spec})
        values = dict(source.params)
    kept, errors = {}, {}
    for name, t in target.params.items():
        s = values[name]
        keep = np.abs(s - t) < np.abs(t)
        kept[name] = np.flatnonzero(keep)
        errors[name] = np.abs(np.where(keep, s, 0.0) - t)
    layer_map = {path: (path,) for path, _ in target.named_layers()}
    return Ticket.from_kept(source, kept, construction="tests.toy", params={"seed": seed},
                            layer_map=layer_map, errors=errors,
                            target_fingerprint=target.fingerprint())


def toy_errors(target: Network, ticket: Ticket) -> dict[str, np.ndarray]:
    """The toy construction's realised errors, recomputed from the kept entries."""
    out = {}
    for name, t in target.params.items():
        idx, vals = ticket.kept_entries(name)
        got = np.zeros(t.size)
        got[idx] = vals
        out[name] = np.abs(got.reshape(t.shape) - t)
    return out


@pytest.fixture()
def target() -> Network:
    return Network.random(layers(), rng=3)


@pytest.mark.parametrize("virtual", [False, True])
def test_a_test_defined_layer_goes_through_ticket_evaluation_and_files(target, virtual, tmp_path):
    ticket = toy_construct(target, 11, virtual=virtual)
    assert ticket.is_virtual == virtual
    # pure masking: kept values are the source's (the generator's) bits
    vs = VirtualSource(dict(target.param_specs()), "uniform[-1,1]", 11)
    for name in target.params:
        idx, vals = ticket.kept_entries(name)
        assert vals.tobytes() == vs.entries(name, idx).tobytes()
    check_ticket(target, ticket, rebuilt=toy_construct(target, 11, virtual=virtual),
                 errors=toy_errors)
    # evaluated with the networks' own forward and vjp; certified-free, and it says so
    rep = approximation_error(target, ticket, n_samples=256, rng=0, adversarial_steps=20)
    assert rep.certified is None and "tests.toy" in rep.certified_note
    assert rep.sampled_mean <= rep.sampled_max <= rep.adversarial
    x = rep.adversarial_input
    assert np.linalg.norm(x) <= 1.0
    at_x = float(np.linalg.norm(target.forward(x) - ticket.network().forward(x)))
    assert at_x == pytest.approx(rep.adversarial, rel=1e-12, abs=1e-15)
    # saved and reloaded, target beside it: the same ticket, bit for bit
    ticket.save(tmp_path / "t.npz")
    target.save(tmp_path / "target.npz")
    back, tgt = Ticket.load(tmp_path / "t.npz"), Network.load(tmp_path / "target.npz")
    assert tgt.fingerprint() == target.fingerprint() == back.target_fingerprint
    assert back.is_virtual == virtual and isinstance(back.source.layers[2][1], Scale)
    xs = np.random.default_rng(1).uniform(-1, 1, (16, 3))
    assert back.forward(xs).tobytes() == ticket.forward(xs).tobytes()
    assert dict(back.layer_map) == dict(ticket.layer_map)
    for name in ticket.kept:
        assert np.array_equal(back.kept[name], ticket.kept[name])
        assert back.errors[name].tobytes() == ticket.errors[name].tobytes()
    again = approximation_error(tgt, back, n_samples=256, rng=0, adversarial_steps=20)
    assert again.adversarial == rep.adversarial


def test_the_harness_catches_a_changed_value_of_the_new_layer(target):
    ticket = toy_construct(target, 5)
    changed = dict(ticket.source.params)
    changed["layers.2.scale"] = changed["layers.2.scale"] * 0.5  # "pruned" by rescaling
    bad = Ticket.from_kept(target.arch.with_params(changed), ticket.kept,
                           construction="tests.toy", layer_map=ticket.layer_map,
                           errors=ticket.errors, target_fingerprint=ticket.target_fingerprint)
    with pytest.raises(AssertionError, match="'recorded errors'"):
        check_ticket(target, bad, errors=toy_errors)
    with pytest.raises(AssertionError, match="'same seed same bits'"):
        check_ticket(target, bad, rebuilt=ticket, errors=toy_errors)


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_toy_construction_as_a_property(hidden, seed):
    target = Network.random(layers(hidden=hidden), rng=seed)
    check_ticket(target, toy_construct(target, seed), rebuilt=toy_construct(target, seed),
                 errors=toy_errors)


def test_check_construction_over_a_strategy_of_networks():
    # the user-facing entry point, over networks that include residual blocks
    sst.register_layer_block("tests.growth.scale",
                             lambda w, width, flag: [Scale(w)])
    try:
        check_construction(toy_construct, targets=sst.networks(max_blocks=3), max_examples=15,
                           errors=toy_errors)
    finally:
        sst.LAYER_BLOCKS.pop("tests.growth.scale")


def test_the_new_layer_on_the_torch_bridge(target):
    torch_bridge = pytest.importorskip("slth.torch")
    import torch

    class TorchScale(torch.nn.Module):
        def __init__(self, scale: torch.Tensor) -> None:
            super().__init__()
            self.scale = torch.nn.Parameter(scale)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.scale

    torch_bridge.register_torch_layer(
        Scale, to_module=lambda layer, params, ctx: TorchScale(ctx.tensor(params["scale"])))
    try:
        x = np.random.default_rng(0).uniform(-1, 1, (8, 3))
        for virtual in (False, True):
            ticket = toy_construct(target, 2, virtual=virtual)
            for net in (ticket, ticket.network()):
                y = torch_bridge.forward(net, x, dtype=torch.float64)
                np.testing.assert_allclose(y, ticket.forward(x), rtol=1e-12, atol=1e-14)
            module = torch_bridge.to_torch(ticket, dtype=torch.float64)
            with torch.no_grad():
                y = module(torch.as_tensor(x)).numpy()
            np.testing.assert_allclose(y, ticket.forward(x), rtol=1e-12, atol=1e-14)
            err = torch_bridge.max_abs_error(target, ticket, x)
            assert err == pytest.approx(float(np.abs(target.forward(x)
                                                     - ticket.forward(x)).max()), rel=1e-12)
            assert torch_bridge.rounding_depth(ticket) == 3
    finally:
        torch_bridge.unregister_torch_layer(Scale)
