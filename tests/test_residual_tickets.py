"""Residual targets in dacunha2022 (depth 2l) and burkholz2022 (depth L+1).

Masks only (kept entries are the source's bits, dense and virtual), the ticket's forward pass
is a plain dense pass of source * mask, the construction harness of slth.testing passes on
residual targets, certified >= adversarial on fuzzed residual tickets, the recorded errors
equal ones recomputed independently from the kept entries, the output error is small at an
adequate width, and what the constructions cannot do is refused with a clear InputError.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import strategies as st

from slth.constructions import burkholz2022, dacunha2022
from slth.errors import InputError, ShapeError
from slth.evaluate import approximation_error
from slth.nets import AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d, Network, ReLU
from slth.nets.base import Residual
from slth.sources import VirtualNetwork, VirtualSource
from slth.testing.harness import check_construction, check_ticket
from slth.ticket import Ticket


# ----------------------------------------------------------------------------- targets
def l1_scaled(layers, shape, rng, bias_scale=0.1):
    """Random target, every kernel rescaled to l1 norm 1 per output channel."""
    net = Network.random(layers, rng=rng, input_shape=shape)
    out = {}
    for k, v in net.params.items():
        v = np.asarray(v)
        if k.endswith("weight"):
            flat = v.reshape(v.shape[0], -1)
            v = (flat / np.abs(flat).sum(axis=1, keepdims=True)).reshape(v.shape)
        else:
            v = bias_scale * v
        out[k] = v
    return net.arch.with_params(out)


def basic_block(c, bias=False):
    return Residual((Conv2d(c, c, 3, padding=1, bias=bias), ReLU(),
                     Conv2d(c, c, 3, padding=1, bias=bias)))


def small_resnet(rng=0, c=3, image=6, blocks=1, bias=False):
    """Stem conv, ``blocks`` basic blocks (each then a ReLU), global AvgPool, Flatten, Dense."""
    layers = [Conv2d(2, c, 3, padding=1, bias=bias), ReLU()]
    for _ in range(blocks):
        layers += [basic_block(c, bias), ReLU()]
    layers += [AvgPool2d(image), Flatten(), Dense(c, 2)]
    return l1_scaled(layers, (2, image, image), rng)


def mixed_resnet(rng=0):
    """Biased 3x3 and 1x1 blocks, a strided plain conv between them, MaxPool, Dense head."""
    return l1_scaled([Conv2d(2, 3, 3, padding=1), ReLU(), basic_block(3, bias=True), ReLU(),
                      Conv2d(3, 4, 3, stride=2, padding=1), ReLU(),
                      Residual((Conv2d(4, 4, 1),)), ReLU(), MaxPool2d(3), Flatten(),
                      Dense(4, 3), ReLU(), Residual((Dense(3, 3), ReLU(), Dense(3, 3))),
                      ReLU(), Dense(3, 2)], (2, 6, 6), rng)


def mlp_resnet(rng=0):
    """An MLP-shaped residual net (Dense first, Dense bodies)."""
    return l1_scaled([Dense(3, 4), ReLU(), Residual((Dense(4, 4), ReLU(), Dense(4, 4))), ReLU(),
                      Residual((Dense(4, 4),)), ReLU(), Dense(4, 2)], None, rng)


def dc_resnet(rng=0):
    """dacunha2022 extras: a leading block, a body ending in a ReLU, a pool after a block."""
    return l1_scaled([Residual((Conv2d(2, 2, 3, padding=1, bias=False), ReLU())),
                      Conv2d(2, 3, 3), ReLU(), basic_block(3), ReLU(), MaxPool2d(2),
                      Flatten(), Dense(12, 2)], (2, 6, 6), rng)


@st.composite
def residual_targets(draw, *, leading_block=False, biased_padding=True):
    """Small residual CNNs and MLPs within both constructions' rules."""
    rng = draw(st.integers(0, 2**31 - 1))
    if draw(st.booleans()):   # MLP-shaped
        d = draw(st.integers(1, 3))
        layers = [Dense(2, d, bias=draw(st.booleans())), ReLU()]
        for _ in range(draw(st.integers(1, 2))):
            one = draw(st.booleans())
            layers += [Residual((Dense(d, d),) if one else (Dense(d, d), ReLU(), Dense(d, d))),
                       ReLU()]
        layers.append(Dense(d, draw(st.integers(1, 2))))
        return l1_scaled(layers, None, rng)
    c = draw(st.integers(1, 2))
    image = draw(st.integers(3, 4))
    k = draw(st.sampled_from([1, 3]))
    pad = (k - 1) // 2
    bias = draw(st.booleans()) and (biased_padding or pad == 0)
    layers = []
    if leading_block and draw(st.booleans()):
        layers += [Residual((Conv2d(1, 1, k, padding=pad, bias=bias),)), ReLU()]
    layers += [Conv2d(1, c, 3, padding=1, bias=biased_padding and draw(st.booleans())), ReLU()]
    for _ in range(draw(st.integers(1, 2))):
        layers += [Residual((Conv2d(c, c, k, padding=pad, bias=bias), ReLU(),
                             Conv2d(c, c, k, padding=pad, bias=bias))), ReLU()]
    layers += [AvgPool2d(image), Flatten(), Dense(c, 2)]
    return l1_scaled(layers, (1, image, image), rng)


def unit_inputs(shape, n=16, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, *shape))
    return x / np.linalg.norm(x.reshape(n, -1), axis=1).reshape(-1, *([1] * len(shape)))


def rel_error(target, ticket, seed=0):
    x = unit_inputs(target.input_shape, seed=seed)
    f = target.forward(x)
    return float(np.abs(f - ticket.forward(x)).max() / np.abs(f).max())


# ----------------------------------------------------------------------------- references
def masked(ticket, name):
    shape = tuple(ticket.source.param_specs()[name])
    idx, vals = ticket.kept_entries(name)
    M = np.zeros(int(np.prod(shape)))
    M[idx] = vals
    return M.reshape(shape)


def bk_ref_errors(target, ticket):
    """burkholz2022's realised errors for conv residual targets ending in Flatten-Dense or a
    Dense head, recomputed from the kept entries: per target weight, the worst output copy's
    sum over the input copies (layer 1: the two sign parts), biases over the constants."""
    rho = ticket.params["rho"]
    c0 = target.input_shape[0]
    n_uni, m0 = 2 * rho * c0, 2 * rho * (c0 + 1)
    W0 = masked(ticket, "layers.0.weight").reshape(m0, c0)
    a = W0[np.arange(n_uni), np.arange(n_uni) // (2 * rho)]
    z = np.maximum(masked(ticket, "layers.0.bias")[n_uni:], 0.0)
    affine = []          # (target path, source path, layer, in shape, begins, ends)
    shape = tuple(target.input_shape)
    for k, (name, lay) in enumerate(target.layers):
        if isinstance(lay, Residual):
            body = list(lay.body)
            for i, (bn, bl) in enumerate(body):
                if isinstance(bl, (Conv2d, Dense)):
                    affine.append((f"layers.{name}.body.{bn}", f"layers.{k + 2}.body.{bn}", bl,
                                   shape, i == 0, i == len(body) - 1))
        elif isinstance(lay, (Conv2d, Dense)):
            affine.append((f"layers.{name}", f"layers.{k + 2}", lay, shape, False, False))
        shape = lay.output_shape(shape)
    out = {}
    z_block = z
    for l, (tpath, spath, lay, _in_shape, begins, ends) in enumerate(affine):
        if begins:
            z_block = z
        W = np.asarray(target.params[f"{tpath}.weight"])
        b = target.params.get(f"{tpath}.bias")
        M = masked(ticket, f"{spath}.weight")
        conv = isinstance(lay, Conv2d)
        if not conv:   # a Dense layer: its input has one pixel per channel (unit) here
            M = M[:, :, None, None]
            W = W[:, :, None, None]
        n_out = W.shape[0]
        last = l == len(affine) - 1
        per = 1 if last else rho
        ph, pw = lay.padding if conv else (0, 0)
        if l == 0:
            P = np.zeros((n_out * per, *W.shape[1:]))
            N = np.zeros_like(P)
            for j in range(c0):
                blk = slice(2 * rho * j, 2 * rho * (j + 1))
                aj = a[blk]
                Mj = M[:n_out * per, blk]
                P[:, j] = np.einsum("rkuv,k->ruv", Mj, np.where(aj > 0, aj, 0.0))
                N[:, j] = np.einsum("rkuv,k->ruv", Mj, np.where(aj < 0, aj, 0.0))
            Wr = np.repeat(W, per, axis=0)
            e = np.maximum(np.abs(P - Wr), np.abs(N - Wr))
            const_cols = n_uni + np.arange(2 * rho)
        else:
            cin = W.shape[1]
            S = M[:n_out * per, :rho * cin].reshape(n_out * per, cin, rho, *M.shape[2:]).sum(2)
            e = np.abs(S - np.repeat(W, per, axis=0))
            const_cols = rho * cin + np.arange(rho)
        out[f"{tpath}.weight"] = e.reshape(n_out, per, *W.shape[1:]).max(axis=1).reshape(
            target.params[f"{tpath}.weight"].shape)
        if b is not None:
            beta = M[:n_out * per, const_cols, ph, pw] @ z
            out[f"{tpath}.bias"] = np.abs(beta - np.repeat(b, per)).reshape(n_out, per).max(1)
        if not last:
            z = np.maximum(M[n_out * rho:, const_cols, ph, pw] @ z, 0.0)
        if ends:
            z = np.maximum(z_block + z, 0.0)
    return out


def dc_ref_errors(target, ticket):
    """dacunha2022's realised errors from its effective part kernels (structure-checked)."""
    eff = dacunha2022.effective_kernels(target, ticket)
    out = {}
    for path, E in eff.items():
        K = np.asarray(target.params[f"{path}.weight"])
        out[f"{path}.weight"] = np.maximum(np.abs(E.P.reshape(K.shape) - K),
                                           np.abs(E.N.reshape(K.shape) + K))
        b = target.params.get(f"{path}.bias")
        if b is not None:
            out[f"{path}.bias"] = np.abs(E.beta - b)
    return out


# ----------------------------------------------------------------------------- layout
def test_burkholz_source_keeps_the_skip_as_a_residual_over_the_copy_layout():
    target = small_resnet(blocks=2)
    rho = 4
    arch = burkholz2022.source_architecture(target, rho)
    layers = dict(arch.layers)
    assert isinstance(layers["4"], Residual) and isinstance(layers["6"], Residual)
    body = dict(layers["4"].body)
    assert set(body) == {"0", "1", "2"}
    # every body convolution maps rho (c + 1) channels to rho (c + 1): copies and constants
    for name in ("0", "2"):
        assert body[name].in_channels == body[name].out_channels == rho * 4
    assert not body["0"].bias and isinstance(body["1"], ReLU)
    assert isinstance(layers["5"], ReLU)
    # the body's last layer keeps no constant rows: the skip carries the constants
    ticket = burkholz2022.construct(target, rho=rho, rng=3)
    idx, _ = ticket.kept_entries("layers.4.body.2.weight")
    rows = idx // (rho * 4 * 9)
    assert rows.size and rows.max() < rho * 3
    idx, _ = ticket.kept_entries("layers.4.body.0.weight")
    assert (idx // (rho * 4 * 9)).max() >= rho * 3   # the first body layer has constants
    assert ticket.params["constant_rows_solved"] == [True, True, False, True, False, False]


def test_dacunha_source_keeps_the_skip_as_a_residual_over_the_pairs():
    target = dc_resnet()
    arch, lm = dacunha2022.source_architecture(target, 3)
    layers = dict(arch.layers)
    assert isinstance(layers["0"], Residual)
    assert [type(ly).__name__ for _, ly in layers["0"].body] == ["Conv2d", "ReLU", "Conv2d",
                                                                 "ReLU"]
    assert lm["layers.0"] == ("layers.0",)
    assert lm["layers.0.body.0"] == ("layers.0.body.0", "layers.0.body.1", "layers.0.body.2")
    assert lm["layers.3.body.2"] == ("layers.5.body.4", "layers.5.body.5", "layers.5.body.6")


# ----------------------------------------------------------------------------- invariants
BK_TARGETS = [small_resnet, mixed_resnet, mlp_resnet]


@pytest.mark.parametrize("virtual", [False, True], ids=["dense", "virtual"])
@pytest.mark.parametrize("make", BK_TARGETS, ids=[m.__name__ for m in BK_TARGETS])
def test_burkholz_residual_tickets_are_masks_and_honest(make, virtual):
    target = make()
    ticket = burkholz2022.construct(target, rho=5, rng=7, virtual=virtual)
    rebuilt = burkholz2022.construct(target, rho=5, rng=7, virtual=virtual)
    assert isinstance(ticket.source, VirtualNetwork) == virtual
    # kept entries are the source's bits, forward = dense source * mask, certified >= adv.
    check_ticket(target, ticket, rebuilt=rebuilt, errors=bk_ref_errors, rng=2)
    vs = VirtualSource(dict(ticket.source.param_specs()), "uniform[-1,1]", 7)
    for name in ticket.source.param_specs():
        idx, vals = ticket.kept_entries(name)
        assert vals.tobytes() == vs.entries(name, idx).tobytes()
    assert set(ticket.errors) == set(target.params)


@pytest.mark.parametrize("virtual", [False, True], ids=["dense", "virtual"])
@pytest.mark.parametrize("make", [dc_resnet, small_resnet, mlp_resnet],
                         ids=["dc_resnet", "small_resnet", "mlp_resnet"])
def test_dacunha_residual_tickets_are_masks_and_honest(make, virtual):
    target = make()
    ticket = dacunha2022.construct(target, n=4, rng=7, virtual=virtual)
    rebuilt = dacunha2022.construct(target, n=4, rng=7, virtual=virtual)
    check_ticket(target, ticket, rebuilt=rebuilt, errors=dc_ref_errors, rng=2)
    vs = VirtualSource(dict(ticket.source.param_specs()), "uniform[-1,1]", 7)
    for name in ticket.source.param_specs():
        idx, vals = ticket.kept_entries(name)
        assert vals.tobytes() == vs.entries(name, idx).tobytes()


def _certified(mod, build):
    """``build`` whose tickets must also be certifiable (the harness skips None bounds)."""
    def wrapped(target, seed, **kw):
        ticket = build(target, seed, **kw)
        assert np.isfinite(mod.certified_bound(target, ticket))
        return ticket
    return wrapped


def test_a_given_residual_source_gives_the_self_drawn_ticket():
    target = mixed_resnet(3)
    own = burkholz2022.construct(target, rho=4, rng=11, virtual=True)
    again = burkholz2022.construct(target, source=own.source)
    assert again.params["rho"] == 4 and again.params["width_from"] == "source"
    dc_target = dc_resnet(3)
    dc_own = dacunha2022.construct(dc_target, n=3, rng=11)
    dc_again = dacunha2022.construct(dc_target, source=dc_own.source)
    assert dc_again.params["n"] == dc_own.params["n"]
    for a, b in ((own, again), (dc_own, dc_again)):
        assert list(a.kept) == list(b.kept)
        for name in a.kept:
            assert np.array_equal(a.kept[name], b.kept[name])
    # a source of another layout is refused, naming what differs
    other = burkholz2022.construct(small_resnet(), rho=4, rng=0).source
    with pytest.raises(ShapeError, match="layout"):
        burkholz2022.construct(target, source=other, rho=4)


def test_harness_passes_on_residual_targets_burkholz():
    build = _certified(burkholz2022, lambda t, seed, virtual=False: burkholz2022.construct(
        t, rho=4, rng=seed, virtual=virtual))
    check_construction(build, targets=residual_targets(), max_examples=8,
                       errors=bk_ref_errors)
    check_construction(lambda t, seed: build(t, seed, virtual=True),
                       targets=residual_targets(), max_examples=4, errors=bk_ref_errors)


def test_harness_passes_on_residual_targets_dacunha():
    targets = residual_targets(leading_block=True, biased_padding=False)
    build = _certified(dacunha2022, lambda t, seed, virtual=False: dacunha2022.construct(
        t, n=3, rng=seed, virtual=virtual))
    check_construction(build, targets=targets, max_examples=8, errors=dc_ref_errors)
    check_construction(lambda t, seed: build(t, seed, virtual=True), targets=targets,
                       max_examples=4, errors=dc_ref_errors)


def _fuzz(ticket, target, seed, keep=0.8):
    rng = np.random.default_rng(seed)
    kept = {n: idx[rng.random(idx.size) < keep] for n, idx in ticket.kept.items()}
    return Ticket.from_kept(ticket.source, kept, construction=ticket.construction,
                            params=dict(ticket.params), layer_map=ticket.layer_map,
                            target_fingerprint=target.fingerprint())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_certified_at_least_adversarial_on_fuzzed_residual_tickets(seed):
    cases = [(burkholz2022, mixed_resnet(seed), {"rho": 4}),
             (burkholz2022, mlp_resnet(seed), {"rho": 6}),
             (dacunha2022, dc_resnet(seed), {"n": 3})]
    for mod, target, kw in cases:
        ticket = mod.construct(target, rng=seed, **kw)
        for t in (ticket, _fuzz(ticket, target, seed), _fuzz(ticket, target, seed + 9, 0.5)):
            cert = mod.certified_bound(target, t)
            rep = approximation_error(target, t, certify=False, rng=seed, n_samples=128,
                                      adversarial_steps=25, restarts=3)
            assert np.isfinite(cert) and rep.adversarial <= cert, (mod.NAME, rep, cert)


def test_certified_bound_covers_a_ticket_whose_body_is_cut():
    # the body's last layer's kept entries removed: the ticket computes x + 0, far from the
    # target's x + F(x); the bound (skip's error plus the body's, Delta = |0 - W|) covers it
    target = small_resnet(rng=4)
    ticket = burkholz2022.construct(target, rho=8, rng=1)
    kept = dict(ticket.kept)
    kept["layers.4.body.2.weight"] = kept["layers.4.body.2.weight"][:0]
    no_body = Ticket.from_kept(ticket.source, kept, construction=ticket.construction,
                               params=dict(ticket.params), layer_map=ticket.layer_map,
                               target_fingerprint=target.fingerprint())
    cert_cut = burkholz2022.certified_bound(target, no_body)
    rep = approximation_error(target, no_body, certify=False, rng=0, n_samples=256,
                              adversarial_steps=30, restarts=4)
    assert rep.adversarial <= cert_cut
    assert not np.allclose(no_body.forward(unit_inputs((2, 6, 6))),
                           ticket.forward(unit_inputs((2, 6, 6))))


# ----------------------------------------------------------------------------- accuracy
def test_output_error_small_at_adequate_width():
    # a ResNet-style target: stem, one basic block [conv3x3, ReLU, conv3x3] + skip, ReLU,
    # global average pooling, Dense; kernels of l1 norm 1 (da Cunha et al.'s hypothesis)
    target = small_resnet(rng=0, c=3, image=6, blocks=1)
    bk = burkholz2022.construct(target, rho=26, rng=0)
    dc = dacunha2022.construct(target, n=16, rng=0)
    assert rel_error(target, bk) < 1e-2
    assert rel_error(target, dc) < 1e-2
    # and the error falls with the width
    assert rel_error(target, burkholz2022.construct(target, rho=12, rng=0)) > rel_error(
        target, bk)


# ----------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("layers, shape, match", [
    ([basic_block(2), ReLU(), Conv2d(2, 2, 3), ReLU(), Flatten(), Dense(8, 1)], (2, 4, 4),
     "before the first Conv2d/Dense"),
    ([Conv2d(1, 2, 3, padding=1), ReLU(), Residual((Conv2d(2, 2, 3, padding=1), ReLU())),
      Flatten(), Dense(32, 1)], (1, 4, 4), "start and end with a Conv2d/Dense"),
    ([Conv2d(1, 2, 3, padding=1), ReLU(), Residual((ReLU(), Conv2d(2, 2, 3, padding=1))),
      ReLU(), Flatten(), Dense(32, 1)], (1, 4, 4), "start and end with a Conv2d/Dense"),
    ([Conv2d(1, 2, 3, padding=1), ReLU(), basic_block(2)], (1, 4, 4),
     "end with a Conv2d or Dense layer outside any Residual"),
    ([Conv2d(1, 2, 3, padding=1), ReLU(), basic_block(2), Conv2d(2, 1, 3)], (1, 4, 4),
     "exactly one ReLU"),
    ([Conv2d(1, 2, 3, padding=1), ReLU(), Flatten(), Residual((Dense(32, 32),)), ReLU(),
      Dense(32, 1)], (1, 4, 4), "Flatten of an image"),
    ([Conv2d(1, 2, 3, padding=1), ReLU(), Residual((Conv2d(2, 2, 2, padding=1, bias=False),
                                                    ReLU(), Conv2d(2, 2, 2))),
      ReLU(), Flatten(), Dense(32, 1)], (1, 4, 4), "padding"),
    ([Conv2d(1, 2, 3, padding=1), ReLU(),
      Residual((Residual((Conv2d(2, 2, 3, padding=1),)),)), ReLU(), Flatten(),
      Dense(32, 1)], (1, 4, 4), "Conv2d, Dense and ReLU"),
])
def test_burkholz_refuses_what_the_skip_cannot_line_up(layers, shape, match):
    target = Network.random(layers, rng=0, input_shape=shape)
    with pytest.raises(InputError, match=match):
        burkholz2022.construct(target, rho=3, rng=0)
    with pytest.raises(InputError, match=match):
        burkholz2022.source_architecture(target, 3)


def test_burkholz_mlp_refusals():
    lead = Network.random([Residual((Dense(2, 2),)), ReLU(), Dense(2, 1)], rng=0)
    with pytest.raises(InputError, match="before the first Conv2d/Dense"):
        burkholz2022.construct(lead, rho=3, rng=0)
    relu_end = Network.random([Dense(2, 2), ReLU(), Residual((Dense(2, 2), ReLU())),
                               Dense(2, 1)], rng=0)
    with pytest.raises(InputError, match="Residual"):
        burkholz2022.construct(relu_end, rho=3, rng=0)


def test_dacunha_refusals():
    nested = Network.random([Residual((Residual((Conv2d(1, 1, 1),)),)), Flatten(),
                             Dense(16, 1)], rng=0, input_shape=(1, 4, 4))
    with pytest.raises(InputError, match="nested residual"):
        dacunha2022.construct(nested, n=3, rng=0)
    # biases under "same" padding are exact (tap (p, p)); beyond 2p <= k - 1 they are refused
    same = Network.random([Residual((Conv2d(1, 1, 3, padding=1),)), Flatten(),
                           Dense(16, 1)], rng=0, input_shape=(1, 4, 4))
    assert dacunha2022.construct(same, n=3, rng=0).params["n"] == [3, 3]
    body = (Conv2d(1, 1, 3, padding=2), Conv2d(1, 1, 5, padding=1))
    biased_pad = Network.random([Residual(body), Flatten(), Dense(16, 1)], rng=0,
                                input_shape=(1, 4, 4))
    with pytest.raises(InputError, match=r"layers\.0\.body\.0.*padding"):
        dacunha2022.construct(biased_pad, n=3, rng=0)


def test_certifiers_refuse_a_residual_ticket_without_the_structure():
    target = small_resnet(rng=2)
    ticket = burkholz2022.construct(target, rho=4, rng=0)
    kept = dict(ticket.kept)
    # a body's output copy reading another channel's copy at a tap with no target weight:
    # a constant row of the first body layer reading a copy channel
    name = "layers.4.body.0.weight"
    shape = ticket.source.param_specs()[name]
    row = 4 * 3   # first constant row
    bad = np.ravel_multi_index((row, 0, 0, 0), shape)
    kept[name] = np.union1d(kept[name], [bad])
    broken = Ticket.from_kept(ticket.source, kept, construction=ticket.construction,
                              params=dict(ticket.params), layer_map=ticket.layer_map,
                              target_fingerprint=target.fingerprint())
    with pytest.raises(InputError, match="constant channel reading"):
        burkholz2022.certified_bound(target, broken)
    dticket = dacunha2022.construct(dc_resnet(), n=3, rng=0)
    kept = dict(dticket.kept)
    name = "layers.0.body.0.weight"    # the 1x1 pair's first conv: off the block diagonal
    shape = dticket.source.param_specs()[name]
    kept[name] = np.union1d(kept[name], [np.ravel_multi_index((0, 1, 0, 0), shape)])
    broken = Ticket.from_kept(dticket.source, kept, construction=dticket.construction,
                              params=dict(dticket.params), layer_map=dticket.layer_map,
                              target_fingerprint=dc_resnet().fingerprint())
    with pytest.raises(InputError, match="block diagonal"):
        dacunha2022.certified_bound(dc_resnet(), broken)


# ----------------------------------------------------------------------------- benchmark
def test_resnet20_benchmark_target_and_smoke_run():
    from benchmarks.resnet20_depth import COLUMNS, measure, resnet20_target

    net = resnet20_target(rng=0)
    assert net.input_shape == (3, 32, 32) and net.output_shape == (10,)
    assert net.n_params == 268_346
    named = net.named_layers()
    assert sum(isinstance(ly, Conv2d) for _, ly in named) == 19
    assert sum(isinstance(ly, Residual) for _, ly in named) == 7
    for k, v in net.params.items():
        if k.endswith("weight"):
            l1 = np.abs(np.asarray(v)).reshape(v.shape[0], -1).sum(axis=1)
            np.testing.assert_allclose(l1, 1.0, rtol=1e-12)
    assert burkholz2022.source_architecture(net, 15).n_params == 63_080_880
    mini = resnet20_target(rng=1, channels=(2, 3), blocks=2, image=4)
    for construction in ("burkholz2022", "dacunha2022"):
        row = measure(mini, construction=construction, width=3, certify=True, n_inputs=4)
        assert set(COLUMNS) <= set(row)
        assert np.isfinite(row["max l2 error"]) and row["certified"] >= 0.0
    with pytest.raises(InputError, match="stages"):
        resnet20_target(stages=4)
    with pytest.raises(InputError, match="construction"):
        measure(mini, construction="pensia2020")
