"""da Cunha, Natale, Viennot (ICLR 2022) on slth's reading: CNN tickets and their certifier."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from slth.constructions import REGISTRY
from slth.constructions import dacunha2022 as dc
from slth.errors import ConstructionError, InputError, LimitError, ShapeError
from slth.evaluate import approximation_error
from slth.nets import Network, ReLU
from slth.nets.base import Residual
from slth.nets.conv import AvgPool2d, Conv2d, Flatten, MaxPool2d
from slth.nets.layers import Dense
from slth.sources import DenseSource, VirtualNetwork, VirtualSource
from slth.testing.harness import check_ticket
from slth.ticket import Ticket


def test_registered_with_its_certifier():
    entry = REGISTRY[dc.NAME]
    assert entry.module is dc and entry.certifier is dc.certified_bound
    assert "Conv2d" in entry.layer_types


def hypothesis_scaled(net: Network, bias_scale: float = 0.5) -> Network:
    """Every kernel divided by its largest per-output-channel l1 norm (the paper's hypothesis)."""
    p = {}
    for k, v in net.params.items():
        if k.endswith(".weight"):
            p[k] = v / np.abs(v).reshape(v.shape[0], -1).sum(axis=1).max()
        else:
            p[k] = bias_scale * v
    return net.with_params(p)


def small_target(seed: int = 0) -> Network:
    net = Network.random([Conv2d(1, 2, 3), ReLU(), MaxPool2d(2), Flatten(), Dense(8, 1)],
                         rng=seed, input_shape=(1, 6, 6))
    return hypothesis_scaled(net)


def random_target(seed: int) -> Network:
    """A small random CNN: one or two convolutions (padding only when bias-free), a pool, a head."""
    g = np.random.default_rng(seed)
    c = int(g.integers(1, 3))
    size = int(g.integers(5, 8))
    layers: list[Any] = []
    shape = (c, size, size)
    for _ in range(int(g.integers(1, 3))):
        k = int(g.integers(1, 4))
        pad = int(g.integers(0, 2))
        bias = bool(g.integers(0, 2)) and 2 * pad <= k - 1
        stride = int(g.integers(1, 3))
        if shape[1] + 2 * pad < k:
            k = 1
        conv = Conv2d(shape[0], int(g.integers(1, 3)), k, stride=stride, padding=pad, bias=bias)
        layers += [conv, ReLU()]
        shape = conv.output_shape(shape)
    pool_k = min(2, shape[1], shape[2])
    pool = (MaxPool2d if g.integers(0, 2) else AvgPool2d)(pool_k, stride=int(g.integers(1,
                                                                                 pool_k + 1)))
    layers.append(pool)
    shape = pool.output_shape(shape)
    d = int(np.prod(shape))
    layers += [Flatten(), Dense(d, int(g.integers(1, 3)), bias=bool(g.integers(0, 2)))]
    return hypothesis_scaled(Network.random(layers, rng=seed, input_shape=(c, size, size)))


def loop_errors(target: Network, ticket: Ticket) -> dict[str, np.ndarray]:
    """Plain-loop reference: the effective part kernels from the kept entries, entry by entry."""
    src = ticket.source
    specs = src.param_specs()
    out: dict[str, np.ndarray] = {}

    def dense_kept(name: str) -> np.ndarray:
        idx, vals = ticket.kept_entries(name)
        a = np.zeros(int(np.prod(specs[name])))
        a[idx] = vals
        return a.reshape(specs[name])

    for path, (first, _, second) in ((p, v) for p, v in ticket.layer_map.items() if len(v) == 3):
        K = np.asarray(target.params[f"{path}.weight"])
        K4 = K.reshape(K.shape[0], K.shape[1], *K.shape[2:], *([1] * (4 - K.ndim)))
        c_out, c_in, kh, kw = K4.shape
        A = dense_kept(f"{first}.weight").reshape(-1, c_in)
        B = dense_kept(f"{second}.weight")
        m = A.shape[0]
        B = B.reshape(c_out, m, kh, kw)
        err = np.zeros(K4.shape)
        for i in range(c_out):
            for j in range(c_in):
                for u in range(kh):
                    for v in range(kw):
                        P = N = 0.0
                        for h in range(m):
                            if A[h, j] > 0:
                                P += B[i, h, u, v] * A[h, j]
                            elif A[h, j] < 0:
                                N += B[i, h, u, v] * -A[h, j]
                        err[i, j, u, v] = max(abs(P - K4[i, j, u, v]), abs(N + K4[i, j, u, v]))
        out[f"{path}.weight"] = err.reshape(K.shape)
        if f"{path}.bias" in target.params:
            c = np.maximum(dense_kept(f"{first}.bias"), 0.0)
            b = target.params[f"{path}.bias"]
            beta = np.array([sum(B[i, h, u, v] * c[h] for h in range(m) for u in range(kh)
                                 for v in range(kw)) for i in range(c_out)])
            out[f"{path}.bias"] = np.abs(beta - b)
    return out


# ----------------------------------------------------------------------------- masking
def test_kept_values_are_the_sources_bits_dense_and_virtual():
    target = small_target(0)
    dense = dc.construct(target, n=8, rng=5)
    virt = dc.construct(target, n=8, rng=5, virtual=True)
    assert not dense.is_virtual and virt.is_virtual
    assert isinstance(virt.source, VirtualNetwork)
    spec = dict(dense.source.param_specs())
    drawn = DenseSource.draw(spec, "uniform[-1,1]", 5)
    vs = VirtualSource(spec, "uniform[-1,1]", 5)
    for name in spec:
        assert dense.source.params[name].tobytes() == drawn.dense(name).tobytes()
        idx, vals = dense.kept_entries(name)
        vidx, vvals = virt.kept_entries(name)
        assert np.array_equal(idx, vidx)
        assert vals.tobytes() == vvals.tobytes() == vs.entries(name, idx).tobytes()
    for name in dense.errors:
        assert dense.errors[name].tobytes() == virt.errors[name].tobytes()
    assert dense.params["seed"] == 5 and dense.params["n"] == [8, 8]
    # depth doubles only for the parametrised layers: 5 target layers -> 9 source layers
    assert len(dense.source.layers) == 9
    assert dense.layer_map["layers.0"] == ("layers.0", "layers.1", "layers.2")
    assert dense.layer_map["layers.2"] == ("layers.4",)
    first = dense.source.layers[0][1]
    second = dense.source.layers[2][1]
    assert first.kernel_size == (1, 1) and first.out_channels == 2 * 8 * (1 + 1)
    assert second.kernel_size == (3, 3) and not second.bias


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_the_harness_passes_on_random_conv_targets(seed):
    target = random_target(seed)
    ticket = dc.construct(target, n=6, rng=seed)
    check_ticket(target, ticket, rebuilt=dc.construct(target, n=6, rng=seed),
                 errors=loop_errors, rng=seed)
    virt = dc.construct(target, n=6, rng=seed, virtual=True)
    check_ticket(target, virt, rebuilt=dc.construct(target, n=6, rng=seed, virtual=True),
                 errors=loop_errors, rng=seed)


def test_recorded_errors_equal_the_plain_loop_reference():
    target = random_target(7)
    ticket = dc.construct(target, n=7, rng=2)
    ref = loop_errors(target, ticket)
    assert set(ref) == set(ticket.errors) == set(target.params)
    for name, e in ref.items():
        np.testing.assert_allclose(ticket.errors[name], e, rtol=1e-9, atol=1e-13)
    assert ticket.params["worst_error"] == pytest.approx(max(float(e.max()) for e in ref.values()),
                                                         rel=1e-9, abs=1e-13)


# ----------------------------------------------------------------------------- certifier
def _fuzzed(ticket: Ticket, g: np.random.Generator) -> Ticket:
    """Drop a random part of the kept entries (the layout's structure survives)."""
    kept = {}
    for name, idx in ticket.kept.items():
        kept[name] = idx[g.random(idx.size) < 0.8]
    return Ticket.from_kept(ticket.source, kept, construction=dc.NAME, params=ticket.params,
                            layer_map=ticket.layer_map, errors=ticket.errors,
                            target_fingerprint=ticket.target_fingerprint)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_certified_bounds_adversarial_on_fuzzed_tickets(seed):
    target = random_target(10 + seed)
    g = np.random.default_rng(seed)
    for n in (3, 8):
        ticket = dc.construct(target, n=n, rng=seed)
        for t in (ticket, _fuzzed(ticket, g)):
            cert = dc.certified_bound(target, t)
            rep = approximation_error(target, t, certify=False, rng=seed, n_samples=128,
                                      adversarial_steps=30, restarts=4)
            assert rep.adversarial <= cert
            assert np.isfinite(cert)


def test_certified_bound_falls_a_decade_per_five_units():
    target = small_target(0)
    certs = [dc.certified_bound(target, dc.construct(target, n=n, rng=1))
             for n in (5, 10, 15, 20)]
    assert all(b < a for a, b in itertools.pairwise(certs))
    # about a decade per +5 units (exact mode), as the published curve: 3 steps >= 2.5 decades
    assert certs[-1] < certs[0] * 10 ** -2.5
    assert dc.certified_bound(target, dc.construct(target, n=25, rng=1)) < 1e-4


def test_the_theorems_claim_at_a_sufficient_width():
    target = small_target(3)
    eps = 0.05
    ticket = dc.construct(target, eps=eps, rng=0)
    assert ticket.params["mode"] == "eps" and ticket.params["width_from"] == "eps"
    assert ticket.params["n_failed"] == 0 and ticket.params["hypothesis"]["holds"]
    cert = dc.certified_bound(target, ticket)
    assert cert <= eps
    rep = approximation_error(target, ticket, certify=False, rng=0, n_samples=64,
                              adversarial_steps=20)
    assert rep.adversarial <= cert


def test_certifier_matches_the_registry_and_evaluation():
    target = small_target(1)
    ticket = dc.construct(target, n=10, rng=3)
    rep = approximation_error(target, ticket, rng=0, n_samples=64, adversarial_steps=10)
    assert rep.certified == dc.certified_bound(target, ticket)
    assert rep.adversarial <= rep.certified
    eff = dc.effective_kernels(target, ticket)
    K = target.params["layers.0.weight"]
    np.testing.assert_allclose(np.maximum(np.abs(eff["layers.0"].P - K),
                                          np.abs(eff["layers.0"].N + K)),
                               ticket.errors["layers.0.weight"], rtol=1e-9, atol=1e-13)


def test_certifier_refuses_tickets_without_the_structure():
    target = small_target(0)
    ticket = dc.construct(target, n=4, rng=0)
    kept = dict(ticket.kept)
    c_in = 1
    # a 1x1 weight off the block diagonal: hidden channel 0 reading... the constant block
    m = ticket.source.layers[0][1].out_channels
    kept["layers.0.weight"] = np.union1d(kept["layers.0.weight"], [(m - 1) * c_in])
    bad = Ticket.from_kept(ticket.source, kept, construction=dc.NAME, layer_map=ticket.layer_map,
                           target_fingerprint=ticket.target_fingerprint)
    with pytest.raises(InputError, match="block diagonal"):
        dc.certified_bound(target, bad)
    kept = dict(ticket.kept)
    kept["layers.0.bias"] = np.union1d(kept["layers.0.bias"], [0])
    bad = Ticket.from_kept(ticket.source, kept, construction=dc.NAME, layer_map=ticket.layer_map,
                           target_fingerprint=ticket.target_fingerprint)
    with pytest.raises(InputError, match="constant block"):
        dc.certified_bound(target, bad)
    manual = Ticket.from_kept(ticket.source, ticket.kept, construction="manual")
    with pytest.raises(InputError, match="dacunha2022"):
        dc.certified_bound(target, manual)
    other = dc.construct(target, n=5, rng=0)
    with pytest.raises(InputError, match="target"):
        dc.certified_bound(small_target(9), other)


# ----------------------------------------------------------------------------- bad input
def test_bad_inputs_name_the_parameter():
    biased_pad = Network.random([Conv2d(1, 2, 3, padding=2), ReLU(), Flatten(), Dense(72, 1)],
                                rng=0, input_shape=(1, 4, 4))
    with pytest.raises(InputError, match=r"`padding` > \(kernel - 1\) / 2"):
        dc.construct(biased_pad, n=3, rng=0)
    # residual blocks are supported (tests/test_residual_tickets.py); nested ones are refused
    nested = Network.random([Conv2d(1, 1, 1), Residual([Residual([Conv2d(1, 1, 3, padding=1,
                                                                         bias=False)])]),
                             Flatten(), Dense(16, 1)], rng=0, input_shape=(1, 4, 4))
    with pytest.raises(InputError, match="nested residual"):
        dc.construct(nested, n=3, rng=0)
    target = small_target(0)
    for eps in (0.0, 1.0, -0.5, 2.0):
        with pytest.raises(InputError, match="`eps`"):
            dc.construct(target, eps=eps, rng=0)
    with pytest.raises(InputError, match="`delta`"):
        dc.construct(target, eps=0.1, delta=1.5, rng=0)
    with pytest.raises(InputError, match="`n`"):
        dc.construct(target, n=0, rng=0)
    with pytest.raises(InputError, match="`n`"):
        dc.construct(target, n=(3, 4, 5), rng=0)
    with pytest.raises(InputError, match="`rng`"):
        dc.construct(target, n=3, rng=-1)
    with pytest.raises(InputError, match="`eps`"):
        dc.construct(target, rng=0)
    with pytest.raises(InputError, match="`on_failure`"):
        dc.construct(target, n=3, rng=0, on_failure="ignore")
    with pytest.raises(LimitError, match="`n`"):
        dc.construct(target, n=41, rng=0)
    src = dc.construct(target, n=3, rng=0).source
    with pytest.raises(InputError, match="not both"):
        dc.construct(target, source=src, virtual=True)
    with pytest.raises(ShapeError, match="layer"):
        dc.construct(target, n=4, source=src)
    wrong = dc.construct(target, n=(3, 4), rng=0).source
    assert dc.construct(target, source=wrong).params["n"] == [3, 4]
    arch, _ = dc.source_architecture(target, 3)
    shifted = Network.random([*(ly for _, ly in arch.layers[:-1]), Dense(arch.layers[-1][1].d_in,
                                                                         1)],
                             rng=0, input_shape=(1, 6, 6))
    with pytest.raises(ShapeError, match="layer 8"):
        dc.construct(target, source=shifted)
    with pytest.raises(InputError, match="`source`"):
        dc.construct(target, source=np.zeros(3))


def test_eps_mode_failures_raise_or_are_reported():
    target = small_target(0)
    with pytest.raises(ConstructionError, match="instances missed"):
        dc.construct(target, n=2, weight_eps=1e-9, rng=0)
    ticket = dc.construct(target, n=2, weight_eps=1e-9, rng=0, on_failure="report")
    assert ticket.params["n_failed"] > 0 and ticket.params["mode"] == "eps"
    assert dc.certified_bound(target, ticket) >= approximation_error(
        target, ticket, certify=False, rng=0, n_samples=32, adversarial_steps=5).adversarial


def test_named_layers_and_an_mlp_target():
    from slth.nets import MLP

    net = Network.random([("conv1", Conv2d(1, 2, 2, stride=2, padding=1, bias=False)),
                          ("act", ReLU()), ("flat", Flatten()), ("fc", Dense(8, 1))],
                         rng=0, input_shape=(1, 3, 3))
    net = hypothesis_scaled(net)
    ticket = dc.construct(net, n=6, rng=4)
    assert dict(ticket.layer_map) == {"layers.conv1": ("layers.0", "layers.1", "layers.2"),
                                      "layers.act": ("layers.3",), "layers.flat": ("layers.4",),
                                      "layers.fc": ("layers.5", "layers.6", "layers.7")}
    check_ticket(net, ticket, rebuilt=dc.construct(net, n=6, rng=4), errors=loop_errors)
    mlp = MLP([np.array([[0.3, -0.2], [0.1, 0.25]]), np.array([[0.4, -0.5]])])
    ticket = dc.construct(mlp, n=12, rng=0)
    check_ticket(mlp, ticket, rebuilt=dc.construct(mlp, n=12, rng=0), errors=loop_errors)
    assert dc.certified_bound(mlp, ticket) < 0.05


@pytest.mark.parametrize(("k", "stride", "pad"), [(3, 1, 0), (3, 2, 1), (2, 2, 0), (1, 1, 1)])
def test_conv_matrix_is_the_convolution_and_its_norm_the_smallest_bound(k, stride, pad):
    g = np.random.default_rng(k + 10 * stride + 100 * pad)
    conv = Conv2d(2, 3, k, stride=stride, padding=pad, bias=False)
    M = g.uniform(-1, 1, (3, 2, k, k))
    x = g.uniform(-1, 1, (4, 2, 5, 6))
    y = conv.apply({"weight": M}, x)
    mat = dc._conv_matrix(M, ((5, 6), (stride, stride), (pad, pad)))
    np.testing.assert_allclose(x.reshape(4, -1) @ mat.T, y.reshape(4, -1), rtol=1e-13,
                               atol=1e-13)
    exact = np.linalg.norm(mat, 2)
    loose = dc._conv_norm(M, (stride, stride))
    tight = dc._conv_norm(M, (stride, stride), None, ((5, 6), (stride, stride), (pad, pad)))
    assert exact <= tight <= exact * (1 + 1e-9) and tight <= loose


@pytest.mark.parametrize("virtual", [False, True])
def test_saved_and_reloaded_tickets_certify_the_same(virtual, tmp_path):
    target = small_target(0)
    ticket = dc.construct(target, n=6, rng=2, virtual=virtual)
    ticket.save(tmp_path / "t.npz")
    back = Ticket.load(tmp_path / "t.npz")
    assert back.is_virtual == virtual and dict(back.layer_map) == dict(ticket.layer_map)
    assert dc.certified_bound(target, back) == dc.certified_bound(target, ticket)
    assert back.params["hypothesis"] == ticket.params["hypothesis"]


# ----------------------------------------------------------------------------- biased padding
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_biased_same_padding_convolutions_are_exact_at_border_pixels(seed):
    """Bias instances on the tap (p, p), inside the input at every output pixel when 2p <= k-1:
    the harness passes (bits, forward, recorded errors, certified >= adversarial) and the
    ticket's bias is right at the border pixels too."""
    target = hypothesis_scaled(Network.random(
        [Conv2d(2, 3, 3, padding=1), ReLU(), Conv2d(3, 2, 5, stride=2, padding=2), ReLU(),
         Flatten(), Dense(18, 2)], rng=seed, input_shape=(2, 5, 5)))
    ticket = dc.construct(target, n=12, rng=seed)
    check_ticket(target, ticket, rebuilt=dc.construct(target, n=12, rng=seed),
                 errors=loop_errors, rng=seed)
    virt = dc.construct(target, n=12, rng=seed, virtual=True)
    check_ticket(target, virt, rebuilt=dc.construct(target, n=12, rng=seed, virtual=True),
                 errors=loop_errors, rng=seed)
    # a zero input: the output is the biases' alone, border pixels included
    x = np.zeros((1, 2, 5, 5))
    first = Network(target.layers[:1], params={k: v for k, v in target.params.items()
                                               if k.startswith("layers.0.")},
                    input_shape=(2, 5, 5))
    sub = {k: v for k, v in ticket.masked_params().items()
           if k.split(".")[1] in ("0", "1", "2")}
    src_first = Network(ticket.source.layers[:3], params={
        k: (v.toarray() if hasattr(v, "toarray") else v) for k, v in sub.items()},
        input_shape=(2, 5, 5))
    got, want = src_first.forward(x), first.forward(x)
    assert np.abs(got - want).max() <= 3 * float(ticket.errors["layers.0.bias"].max()) + 1e-12
    assert np.allclose(got[0, :, 0, 0], want[0, :, 0, 0], atol=1e-2)  # a corner pixel
