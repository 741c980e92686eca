"""Tickets over a virtual source (slth.sources.VirtualMLP): same bits, same numbers, small memory.

A ticket over ``VirtualMLP(VirtualSource(spec, law, seed))`` must behave exactly
like the ticket over the dense MLP that ``DenseSource.draw(spec, law, seed)``
gives (``VirtualMLP.to_mlp()``): the same kept values, forward pass, errors
(sampled, adversarial, certified), and a save/load round trip that stores no
source array. A source of ~8e8 weights with a few kept entries costs only what
it keeps.
"""

from __future__ import annotations

import json
import os
import tracemalloc

import numpy as np
import pytest

from slth.certify import certified_bound, check_structure, effective_layers
from slth.constructions import pensia2020
from slth.constructions.layouts.pair_dense import source_spec
from slth.errors import InputError, LimitError
from slth.evaluate import approximation_error
from slth.nets import MLP
from slth.sources import VirtualMLP, VirtualSource
from slth.testing.harness import check_ticket
from slth.ticket import Ticket, source_bias_layers, source_parameter_shapes

LAW = "uniform[-1,1]"


def _meta(t: Ticket) -> dict:
    return dict(construction=t.construction, params=t.params, target_widths=t.target_widths,
                layer_map=t.layer_map, weight_errors=t.weight_errors,
                bias_errors=t.bias_errors, target_fingerprint=t.target_fingerprint)


def _pair(*, biases: bool, n: int = 5, seed: int = 7) -> tuple[MLP, Ticket, Ticket]:
    """(target, dense ticket, virtual ticket) over the same bits."""
    target = MLP.random((3, 4, 2), bias=biases, rng=seed)
    target = target.with_params([p / (2 * np.abs(p).sum() + 1) for p in target.parameters()])
    vmlp = VirtualMLP(VirtualSource(source_spec(target, [n, n]), LAW, seed))
    dense_src = vmlp.to_mlp()
    dense = pensia2020.construct(target, n=n, source=dense_src)
    virtual = Ticket.from_kept(vmlp, dense.kept, **_meta(dense))
    return target, dense, virtual


@pytest.fixture(scope="module", params=[False, True], ids=["no-bias", "bias"])
def pair(request):
    return _pair(biases=request.param)


def test_virtual_ticket_counts_and_values(pair):
    _, dense, virtual = pair
    assert virtual.is_virtual and not dense.is_virtual
    assert virtual.n_kept == dense.n_kept
    assert virtual.n_source_params == dense.n_source_params
    assert virtual.density == dense.density
    assert virtual.layer_density() == dense.layer_density()
    assert source_parameter_shapes(virtual.source) == source_parameter_shapes(dense.source)
    assert source_bias_layers(virtual.source) == source_bias_layers(dense.source)
    for name in dense.kept:
        i0, v0 = dense.kept_entries(name)
        i1, v1 = virtual.kept_entries(name)
        assert np.array_equal(i0, i1) and v0.tobytes() == v1.tobytes()
        # the cached values are the generator's, computed afresh
        assert v1.tobytes() == virtual.source.entries(name, i1).tobytes()
        assert not v1.flags.writeable
    for a, b in zip(dense.kept_values(), virtual.kept_values(), strict=True):
        assert a.tobytes() == b.tobytes()
    for a, b in zip(dense.masks, virtual.masks, strict=True):
        assert np.array_equal(a, b)
    for name in dense.kept:
        assert np.array_equal(dense.mask(name), virtual.mask(name))
    for a, b in zip(dense.network().parameters(), virtual.network().parameters(), strict=True):
        assert a.tobytes() == b.tobytes()
    assert "virtual source" in virtual.summary() and "virtual" not in dense.summary()


@pytest.mark.parametrize("method", ["auto", "sparse", "dense"])
def test_virtual_forward_is_bit_for_bit(pair, method):
    _, dense, virtual = pair
    x = np.random.default_rng(0).uniform(-1, 1, (17, 3))
    assert virtual.forward(x, method=method).tobytes() == dense.forward(x, method=method).tobytes()
    assert virtual.forward(x[0]).tobytes() == dense.forward(x[0]).tobytes()


def test_virtual_errors_equal_dense(pair):
    target, dense, virtual = pair
    kw = dict(n_samples=256, adversarial_steps=15, restarts=3, rng=3)
    r0 = approximation_error(target, dense, **kw)
    r1 = approximation_error(target, virtual, **kw)
    for field in ("sampled_max", "sampled_mean", "adversarial", "certified"):
        a, b = getattr(r0, field), getattr(r1, field)
        assert a == pytest.approx(b, rel=0, abs=1e-12), field
    assert r0.adversarial_input.tobytes() == r1.adversarial_input.tobytes()
    assert certified_bound(target, virtual) == certified_bound(target, dense)
    check_structure(target, virtual)
    for e0, e1 in zip(effective_layers(target, dense), effective_layers(target, virtual),
                      strict=True):
        for f in ("P", "N", "beta", "abs_P", "abs_N", "abs_beta"):
            assert getattr(e0, f).tobytes() == getattr(e1, f).tobytes()
        assert e0.hidden == e1.hidden


def test_harness_accepts_virtual_tickets(pair):
    target, dense, virtual = pair
    check_ticket(target, virtual, rebuilt=virtual)
    check_ticket(target, virtual, rebuilt=dense)


def test_harness_catches_a_wrong_virtual_source(pair):
    target, _, virtual = pair
    vs = virtual.source.source
    other = VirtualMLP(VirtualSource(vs.spec, vs.law, vs.seed + 1))
    wrong = Ticket.from_kept(other, virtual.kept, **_meta(virtual))
    with pytest.raises(AssertionError, match="same seed same bits"):
        check_ticket(target, virtual, rebuilt=wrong, certify=False)


def test_virtual_save_load_round_trip(pair, tmp_path):
    target, dense, virtual = pair
    virtual.save(tmp_path / "v.npz")
    dense.save(tmp_path / "d.npz")
    with np.load(tmp_path / "v.npz", allow_pickle=False) as f:
        assert not any(k.startswith(("weights_", "biases_")) for k in f.files)
        meta = json.loads(bytes(f["__metadata__"]).decode())
    vs = virtual.source.source
    assert meta["version"] == 3 and meta["source"] == {
        "kind": "virtual", "class": "mlp", "architecture": virtual.source.architecture(),
        "spec": [[k, list(v)] for k, v in vs.spec.items()],
        "law": vs.law, "seed": vs.seed, "key_names": dict(virtual.source.key_names)}
    with np.load(tmp_path / "d.npz", allow_pickle=False) as f:
        info = json.loads(bytes(f["__metadata__"]).decode())["source"]
        assert info == {"kind": "dense", "class": "mlp",
                        "architecture": dense.source.architecture()}
    assert os.path.getsize(tmp_path / "v.npz") < os.path.getsize(tmp_path / "d.npz")
    back = Ticket.load(tmp_path / "v.npz")
    assert back.is_virtual and back.source.source == vs
    assert list(back.kept) == list(virtual.kept)
    for name in virtual.kept:
        i0, v0 = virtual.kept_entries(name)
        i1, v1 = back.kept_entries(name)
        assert np.array_equal(i0, i1) and v0.tobytes() == v1.tobytes()
    for f in ("construction", "params", "target_widths", "layer_map", "target_fingerprint"):
        assert getattr(back, f) == getattr(virtual, f)
    for a, b in zip(back.weight_errors, virtual.weight_errors, strict=True):
        assert a.tobytes() == b.tobytes()
    x = np.random.default_rng(1).uniform(-1, 1, (5, 3))
    assert back.forward(x).tobytes() == dense.forward(x).tobytes()
    assert certified_bound(target, back) == certified_bound(target, dense)


def test_corrupt_virtual_source_metadata_is_one_line_error(pair, tmp_path):
    _, _, virtual = pair
    virtual.save(tmp_path / "v.npz")
    with np.load(tmp_path / "v.npz", allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(bytes(arrays["__metadata__"]).decode())
    cases = {
        "no-seed": {**meta["source"], "seed": None},
        "bad-law": {**meta["source"], "law": "nope"},
        "shape": {**meta["source"], "spec": [[k, [s[0] + 1, *s[1:]]]
                                             for k, s in meta["source"]["spec"]]},
        "kind": {"kind": "cloud"},
    }
    for name, src in cases.items():
        arrays["__metadata__"] = np.frombuffer(json.dumps({**meta, "source": src}).encode(),
                                               dtype=np.uint8)
        np.savez(tmp_path / f"{name}.npz", **arrays)
        with pytest.raises(InputError) as info:
            Ticket.load(tmp_path / f"{name}.npz")
        assert "\n" not in str(info.value), name


def test_virtual_ticket_pickles(pair):
    import pickle

    _, dense, virtual = pair
    x = np.random.default_rng(4).uniform(-1, 1, (3, 3))
    virtual.forward(x)  # fills the caches, which pickling drops
    back = pickle.loads(pickle.dumps(virtual))
    assert back.is_virtual and back.source.source == virtual.source.source
    assert back.forward(x).tobytes() == dense.forward(x).tobytes()


def test_masks_constructor_takes_a_virtual_source_too(pair):
    _, dense, virtual = pair
    t = Ticket(virtual.source, dense.masks)  # small sources: masks are fine
    assert t.is_virtual and all(np.array_equal(t.kept[n], dense.kept[n]) for n in dense.kept)
    with pytest.raises(InputError):
        Ticket.from_kept("not a source", dense.kept)


# ---------------------------------------------------------------------------- huge source
HUGE = (2000, 200_000, 2000)  # 8e8 weights: 6.4 GB as float64, never drawn


def _huge_ticket() -> Ticket:
    vmlp = VirtualMLP(VirtualSource({"weights[0]": (HUGE[1], HUGE[0]),
                                     "biases[0]": (HUGE[1],),
                                     "weights[1]": (HUGE[2], HUGE[1])}, LAW, 11))
    g = np.random.default_rng(0)
    n0, n1 = vmlp.source.size("weights[0]"), vmlp.source.size("weights[1]")
    kept = {"weights[0]": np.unique(g.integers(0, n0, 3000)),
            "biases[0]": np.array([5, 17, 199_999]),
            "weights[1]": np.unique(g.integers(0, n1, 3000))}
    return Ticket.from_kept(vmlp, kept, construction="manual", params={"note": "huge"})


def test_huge_virtual_ticket_in_small_memory(tmp_path):
    tracemalloc.start()
    try:
        t = _huge_ticket()
        assert t.n_source_params == 2 * HUGE[0] * HUGE[1] + HUGE[1]
        assert t.n_kept <= 6003 and t.density < 1e-5
        x = np.random.default_rng(2).uniform(-1, 1, (8, HUGE[0]))
        y = t.forward(x)
        assert y.shape == (8, HUGE[2]) and np.isfinite(y).all()
        t.layer_density()
        t.summary()
        t.save(tmp_path / "huge.npz")
        back = Ticket.load(tmp_path / "huge.npz")
        assert back.forward(x).tobytes() == y.tobytes()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    assert os.path.getsize(tmp_path / "huge.npz") < 100_000
    for name in t.kept:
        i0, v0 = t.kept_entries(name)
        i1, v1 = back.kept_entries(name)
        assert np.array_equal(i0, i1) and v0.tobytes() == v1.tobytes()
    # the forward pass is the masked source: a hand-made sparse pass from the generator
    src = t.source
    r0, c0 = np.divmod(t.kept["weights[0]"], HUGE[0])
    h = np.zeros((8, HUGE[1]))
    np.add.at(h.T, r0, (src.entries("weights[0]", t.kept["weights[0]"])[:, None]
                        * x[:, c0].T))
    h[:, t.kept["biases[0]"]] += src.entries("biases[0]", t.kept["biases[0]"])
    h = np.maximum(h, 0)
    r1, c1 = np.divmod(t.kept["weights[1]"], HUGE[1])
    out = np.zeros((8, HUGE[2]))
    np.add.at(out.T, r1, src.entries("weights[1]", t.kept["weights[1]"])[:, None] * h[:, c1].T)
    np.testing.assert_allclose(y, out, rtol=1e-12, atol=1e-12)


def test_harness_on_huge_virtual_ticket(monkeypatch):
    """Too large to draw densely: the harness reads the generator at the kept entries."""
    monkeypatch.setenv("SLTH_MEMORY_BUDGET", "256MiB")
    t = _huge_ticket()
    target = MLP.random((HUGE[0], HUGE[2]), rng=0)
    check_ticket(target, t, rebuilt=_huge_ticket(), certify=False)


def test_huge_virtual_ticket_guards_dense_views(monkeypatch):
    monkeypatch.setenv("SLTH_MEMORY_BUDGET", "256MiB")
    t = _huge_ticket()
    with pytest.raises(LimitError):
        t.masks  # noqa: B018 - the property allocates
    with pytest.raises(LimitError):
        t.network()
    with pytest.raises(LimitError):
        t.mask("weights[0]")
    with pytest.raises(LimitError):
        t.forward(np.zeros(HUGE[0]), method="dense")
    # the small parameter's mask is fine
    assert t.mask("biases[0]").sum() == 3
