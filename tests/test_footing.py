"""The shared footing: construction registry, virtual networks, tickets over any network."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from slth.constructions import REGISTRY, Construction, pensia2020, register_construction
from slth.errors import InputError, ShapeError
from slth.evaluate import approximation_error
from slth.nets import MLP, Dense, Network, ReLU, Residual
from slth.nets.mlp import param_name, resolve_name
from slth.sources import DenseSource, VirtualMLP, VirtualNetwork, VirtualSource
from slth.ticket import Ticket

LAYERS = [Dense(3, 4), ReLU(), Residual([Dense(4, 2), ReLU(), Dense(2, 4, bias=False)]),
          Dense(4, 2, bias=False)]


def test_registry_lists_the_constructions_with_their_certifiers():
    assert set(REGISTRY) >= {"pensia2020", "malach2020", "single_pair"}
    entry = REGISTRY["pensia2020"]
    assert isinstance(entry, Construction) and entry.module is pensia2020
    assert "Theorem 1" in entry.paper and entry.layer_types == ("Dense", "ReLU")
    assert callable(entry.certifier)
    with pytest.raises(TypeError):
        REGISTRY["x"] = entry  # read-only view
    with pytest.raises(InputError, match="already registered"):
        register_construction("pensia2020", paper="again", layer_types=("Dense",))
    with pytest.raises(InputError, match="`certifier`"):
        register_construction("tests.bad", paper="p", layer_types=("Dense",), certifier=3)


def test_a_registered_certifier_is_used_and_its_refusal_reported(monkeypatch):
    import slth.constructions as sc

    net = Network.random(LAYERS, rng=0)
    src = Network.random(LAYERS, rng=1)
    t = Ticket(src, [np.ones(s, dtype=bool) for s in src.param_specs().values()],
               construction="tests.reg")
    rep = approximation_error(net, t, n_samples=64, rng=0, adversarial_steps=5,
                              check_target=False)
    assert rep.certified is None and "not in slth.constructions.REGISTRY" in rep.certified_note
    monkeypatch.setitem(sc._REGISTRY, "tests.reg", Construction(
        "tests.reg", "a test", ("Dense",), certifier=lambda *a, **k: 1e9))
    rep = approximation_error(net, t, n_samples=64, rng=0, adversarial_steps=5,
                              check_target=False)
    assert rep.certified == 1e9

    def refuse(*a, **k):
        raise ShapeError("not my structure")

    monkeypatch.setitem(sc._REGISTRY, "tests.reg", Construction(
        "tests.reg", "a test", ("Dense",), certifier=refuse))
    rep = approximation_error(net, t, n_samples=64, rng=0, adversarial_steps=5,
                              check_target=False)
    assert rep.certified is None and rep.certified_note == "not my structure"


def test_virtual_network_entries_are_the_dense_draw_and_it_pickles():
    arch = Network.random(LAYERS, rng=0).arch
    vs = VirtualSource(dict(arch.param_specs()), "uniform[-1,1]", 7)
    vn = VirtualNetwork(arch, vs)
    dense = DenseSource.draw(vs.spec, "uniform[-1,1]", 7)
    net = vn.to_network()
    for name in arch.param_specs():
        assert net.params[name].tobytes() == dense.dense(name).tobytes()
        idx = np.arange(0, net.params[name].size, 3)
        assert vn.entries(name, idx).tobytes() == net.params[name].reshape(-1)[idx].tobytes()
    assert pickle.loads(pickle.dumps(vn)) == vn
    x = np.random.default_rng(0).uniform(-1, 1, (5, 3))
    assert vn.forward(x, params=net.params).tobytes() == net.forward(x).tobytes()


@pytest.mark.parametrize("spec, exc, match", [
    ({"layers.0.weight": (4, 3)}, InputError, "lacks"),
    ({**{"extra": (1,)}}, InputError, "lacks"),
])
def test_virtual_network_refuses_a_spec_that_does_not_fit(spec, exc, match):
    arch = Network.random(LAYERS, rng=0).arch
    with pytest.raises(exc, match=match):
        VirtualNetwork(arch, VirtualSource(spec, "uniform[-1,1]", 0))
    full = dict(arch.param_specs())
    with pytest.raises(InputError, match="unused"):
        VirtualNetwork(arch, VirtualSource({**full, "extra": (2,)}, "uniform[-1,1]", 0))
    wrong = {**full, "layers.0.weight": (3, 4)}
    with pytest.raises(ShapeError, match="shape"):
        VirtualNetwork(arch, VirtualSource(wrong, "uniform[-1,1]", 0))


def test_virtual_mlp_takes_network_names_and_keeps_slth_01_names_bits():
    new = VirtualMLP(VirtualSource({"layers.0.weight": (4, 3), "layers.2.weight": (2, 4)},
                                   "uniform[-1,1]", 3))
    old = VirtualMLP(VirtualSource({"weights[0]": (4, 3), "weights[1]": (2, 4)},
                                   "uniform[-1,1]", 3))
    assert new.parameter_names() == old.parameter_names() == ("layers.0.weight",
                                                              "layers.2.weight")
    assert dict(old.key_names) == {"layers.0.weight": "weights[0]",
                                   "layers.2.weight": "weights[1]"}
    idx = np.arange(12)
    # the alias reads the same entries; the two namings are different (independent) streams
    assert old.entries("weights[0]", idx).tobytes() == old.entries("layers.0.weight",
                                                                   idx).tobytes()
    assert new.entries("layers.0.weight", idx).tobytes() != old.entries("layers.0.weight",
                                                                        idx).tobytes()


def test_mlp_is_a_network_with_aliases():
    m = MLP.random((3, 4, 2), rng=0, bias=True)
    assert isinstance(m, Network) and list(m.params) == list(m.parameter_names())
    assert m.params["layers.2.weight"] is m.weights[1] or np.shares_memory(
        m.params["layers.2.weight"], m.weights[1])
    assert param_name("bias", 1) == "layers.2.bias" == resolve_name("biases[1]")
    x = np.random.default_rng(0).uniform(-1, 1, (6, 3))
    assert Network.forward(m, x).tobytes() == m.forward(x).tobytes()
    back = pickle.loads(pickle.dumps(m))
    assert isinstance(back, MLP) and back.fingerprint() == m.fingerprint()
    zero = {"layers.0.weight": np.zeros((4, 3))}
    want = m.weights[1] @ np.maximum(m.biases[0], 0.0) + m.biases[1]  # W_0 = 0: constant
    np.testing.assert_allclose(m.forward(x, params=zero), np.tile(want, (6, 1)), rtol=1e-15)
    assert isinstance(m.with_params(zero), MLP)


def test_ticket_over_a_network_by_names(tmp_path):
    src = Network.random(LAYERS, rng=2)
    masks = {name: np.random.default_rng(0).random(s) < 0.5
             for name, s in src.param_specs().items()}
    lm = {"layers.0": ("layers.0",), "layers.2": ("layers.2", "layers.2.body.0"),
          "layers.3": ("layers.3",)}
    t = Ticket(src, masks, layer_map=lm,
               errors={"layers.0.weight": np.zeros((4, 3))})
    assert t.mlp_layer_map is None and t.weight_errors is None
    assert [len(k) for k in t.kept.values()] == [int(m.sum()) for m in masks.values()]
    assert len(t.layer_density()) == 4  # one per layer with parameters
    x = np.random.default_rng(1).uniform(-1, 1, (4, 3))
    np.testing.assert_allclose(t.forward(x), t.network().forward(x), rtol=0, atol=1e-13)
    assert t.forward(x, method="dense").tobytes() == t.network().forward(x).tobytes()
    with pytest.raises(InputError, match="source's order"):
        Ticket(src, masks, layer_map={"a": ("layers.2",), "b": ("layers.0",)})
    with pytest.raises(InputError, match="source layers"):
        Ticket(src, masks, layer_map={"a": ("layers.9",)})
    with pytest.raises(InputError, match="MLP form"):
        Ticket(src, masks, layer_map=((0,),))
    with pytest.raises(InputError, match="MLP target"):
        Ticket(src, masks, target_widths=(3, 2))
    t.save(tmp_path / "t.npz")
    back = Ticket.load(tmp_path / "t.npz")
    assert back.forward(x).tobytes() == t.forward(x).tobytes()
    assert dict(back.layer_map) == lm and list(back.errors) == ["layers.0.weight"]
