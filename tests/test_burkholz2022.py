"""The depth L+1 construction of Burkholz (2022): masks only, honest records, sound bounds."""

from __future__ import annotations

import numpy as np
import pytest

from slth.constructions import REGISTRY, bounded_target, burkholz2022, pensia2020
from slth.errors import ConstructionError, InputError, LimitError, ShapeError
from slth.evaluate import approximation_error
from slth.nets import MLP, AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d, Network, ReLU
from slth.nets.base import Residual
from slth.sources import VirtualNetwork, VirtualSource
from slth.testing.harness import check_ticket
from slth.ticket import Ticket


def dims(target):
    return [target.params[f"layers.{n}.weight"].shape[1] for n, _ in target.layers[::2]] + [
        target.params[f"layers.{target.layers[-1][0]}.weight"].shape[0]]


def masked(ticket, name, shape):
    idx, vals = ticket.kept_entries(name)
    M = np.zeros(int(np.prod(shape)))
    M[idx] = vals
    return M.reshape(shape)


def ref_errors(target, ticket):
    """The realised errors, recomputed from the kept entries with plain loops (index order)."""
    rho = ticket.params["rho"]
    w = ticket.params["widths"]
    d = dims(target)
    L = len(d) - 1
    d0, n_uni = d[0], 2 * rho * d[0]
    W0 = masked(ticket, "layers.0.weight", (w[1], d0))
    b0 = masked(ticket, "layers.0.bias", (w[1],))
    a = [W0[u, u // (2 * rho)] for u in range(n_uni)]
    z = [max(b0[u], 0.0) for u in range(n_uni, w[1])]
    out = {}
    for l in range(1, L + 1):
        name = target.layers[2 * (l - 1)][0]
        W = target.params[f"layers.{name}.weight"]
        b = target.params.get(f"layers.{name}.bias")
        M = masked(ticket, f"layers.{2 * l}.weight", (w[l + 1], w[l]))
        last = l == L
        per = 1 if last else rho
        n_copy = n_uni if l == 1 else rho * d[l - 1]
        we = np.zeros(W.shape)
        be = np.zeros(d[l])
        for r in range(d[l] * per):
            i = r // per
            for j in range(d[l - 1]):
                if l == 1:
                    P = N = 0.0
                    for u in range(2 * rho * j, 2 * rho * (j + 1)):
                        if M[r, u] != 0:
                            if a[u] > 0:
                                P += M[r, u] * a[u]
                            elif a[u] < 0:
                                N += M[r, u] * a[u]
                    e = max(abs(P - W[i, j]), abs(N - W[i, j]))
                else:
                    S = 0.0
                    for s in range(rho):
                        if M[r, j * rho + s] != 0:
                            S += M[r, j * rho + s]
                    e = abs(S - W[i, j])
                we[i, j] = max(we[i, j], e)
            if b is not None:
                B = 0.0
                for t in range(rho if l > 1 else 2 * rho):
                    if M[r, n_copy + t] != 0:
                        B += M[r, n_copy + t] * z[t]
                be[i] = max(be[i], abs(B - b[i]))
        out[f"layers.{name}.weight"] = we
        if b is not None:
            out[f"layers.{name}.bias"] = be
        if not last:
            znew = []
            for t in range(rho):
                s = 0.0
                for c in range(len(z)):
                    if M[d[l] * rho + t, n_copy + c] != 0:
                        s += M[d[l] * rho + t, n_copy + c] * z[c]
                znew.append(max(s, 0.0))
            z = znew
    return out


TARGETS = [
    ("mlp-3-4-2-bias", lambda: MLP.random([3, 4, 2], rng=1, bias=True)),
    ("mlp-2-3-3-1-nobias", lambda: MLP.random([2, 3, 3, 1], rng=2)),
    ("single-layer", lambda: MLP.random([3, 2], rng=3, bias=True)),
    ("network-mixed-bias", lambda: Network.random(
        [Dense(2, 3, bias=False), ReLU(), Dense(3, 2), ReLU(), Dense(2, 2, bias=False)],
        rng=4)),
]


@pytest.mark.parametrize("make", [m for _, m in TARGETS], ids=[n for n, _ in TARGETS])
def test_check_ticket_depth_and_recorded_errors(make):
    target = make()
    ticket = burkholz2022.construct(target, rho=6, rng=5)
    check_ticket(target, ticket, rebuilt=burkholz2022.construct(target, rho=6, rng=5),
                 errors=ref_errors)
    L = len(target.layers) // 2 + 1
    dense = [lay for _, lay in ticket.source.layers if isinstance(lay, Dense)]
    assert len(dense) == L + 1
    assert ticket.params["widths"] == [lay.d_in for lay in dense] + [dense[-1].d_out]
    ref = ref_errors(target, ticket)
    assert set(ref) == set(ticket.errors) == set(target.params)
    for name, e in ref.items():
        np.testing.assert_allclose(ticket.errors[name], e, rtol=1e-12, atol=1e-15)
    assert ticket.params["mode"] == "exact" and ticket.params["paper"].startswith("Burkholz")


def test_kept_values_are_the_source_bits_dense_and_virtual():
    target = MLP.random([3, 4, 2], rng=1, bias=True)
    dense = burkholz2022.construct(target, rho=5, rng=9)
    virt = burkholz2022.construct(target, rho=5, rng=9, virtual=True)
    assert isinstance(virt.source, VirtualNetwork) and not dense.is_virtual
    vs = VirtualSource(dict(dense.source.param_specs()), "uniform[-1,1]", 9)
    for name in dense.source.param_specs():
        i1, v1 = dense.kept_entries(name)
        i2, v2 = virt.kept_entries(name)
        assert np.array_equal(i1, i2)
        assert v1.tobytes() == v2.tobytes() == vs.entries(name, i1).tobytes()
        assert v1.tobytes() == dense.source.params[name].reshape(-1)[i1].tobytes()
    for name in dense.errors:
        assert dense.errors[name].tobytes() == virt.errors[name].tobytes()
    check_ticket(target, virt, rebuilt=burkholz2022.construct(target, rho=5, rng=9,
                                                              virtual=True), errors=ref_errors)
    # a given source (dense or virtual) is pruned, not redrawn
    again = burkholz2022.construct(target, source=virt.source)
    assert again.source is virt.source and again.params["rho"] == 5
    for name in dense.kept:
        assert np.array_equal(again.kept[name], dense.kept[name])


def test_certified_at_least_adversarial_on_fuzzed_tickets():
    rng = np.random.default_rng(0)
    for k, widths in enumerate([[2, 3, 1], [3, 4, 2], [2, 3, 3, 2]]):
        target = MLP.random(widths, rng=k, bias=bool(k % 2 == 0))
        ticket = burkholz2022.construct(target, rho=6 + 2 * k, rng=k)
        tickets = [ticket]
        # fuzz: drop random kept entries (the layout stays valid, the errors grow)
        for _ in range(2):
            kept = {n: idx[rng.random(idx.size) < 0.8] for n, idx in ticket.kept.items()}
            tickets.append(Ticket.from_kept(ticket.source, kept, construction=burkholz2022.NAME,
                                            params=dict(ticket.params),
                                            layer_map=ticket.layer_map,
                                            target_fingerprint=target.fingerprint()))
        for t in tickets:
            cert = burkholz2022.certified_bound(target, t)
            rep = approximation_error(target, t, certify=False, rng=1, n_samples=256,
                                      adversarial_steps=25, restarts=4)
            assert rep.adversarial <= cert, (widths, rep.adversarial, cert)
            assert np.isfinite(cert)


def test_registered_certifier_runs_in_the_harness():
    target = MLP.random([2, 3, 2], rng=7, bias=True)
    entry = REGISTRY[burkholz2022.NAME]  # registered by slth.constructions
    assert entry.module is burkholz2022 and entry.certifier is burkholz2022.certified_bound
    ticket = burkholz2022.construct(target, rho=8, rng=1)
    check_ticket(target, ticket, errors=ref_errors, certify=True)
    rep = approximation_error(target, ticket, rng=0, n_samples=128, adversarial_steps=10,
                              restarts=2)
    assert rep.certified is not None and rep.adversarial <= rep.certified


def test_certified_bound_falls_as_rho_grows():
    target = bounded_target([2, 3, 1], rng=4)
    certs = [burkholz2022.certified_bound(target, burkholz2022.construct(target, rho=rho,
                                                                         rng=3))
             for rho in (8, 24)]
    assert certs[1] < certs[0] / 100


def test_theorem_width_meets_eps_with_the_certified_bound():
    target = bounded_target([3, 4, 2], rng=1)
    eps = 0.1
    rho = burkholz2022.theorem_rho(target, eps, 0.1)
    ticket = burkholz2022.construct(target, eps=eps, rng=0)
    assert ticket.params["rho"] == rho and ticket.params["n_failed"] == 0
    assert ticket.params["weight_tolerance"] == burkholz2022.weight_tolerance(target, eps)
    assert max(float(e.max()) for e in ticket.errors.values()) <= ticket.params[
        "weight_tolerance"]
    assert burkholz2022.certified_bound(target, ticket) <= eps


def test_too_small_rho_reports_failures():
    target = MLP.random([3, 4, 2], rng=1, bias=True)
    with pytest.raises(ConstructionError, match=r"instances missed .*rho=\[3\]: increase `rho`"):
        burkholz2022.construct(target, rho=3, weight_eps=1e-4, rng=0)
    rep = burkholz2022.construct(target, rho=3, weight_eps=1e-4, rng=0, on_failure="report")
    assert rep.params["n_failed"] > 0 and rep.params["failed_params"] > 0
    assert rep.params["worst_error"] > 1e-4
    with pytest.warns(RuntimeWarning, match="missed the tolerance"):
        w = burkholz2022.construct(target, rho=3, weight_eps=1e-4, rng=0, on_failure="warn")
    assert w.params["n_failed"] == rep.params["n_failed"]
    # the certificate still holds for the failed ticket
    cert = burkholz2022.certified_bound(target, rep)
    adv = approximation_error(target, rep, certify=False, rng=0, n_samples=128,
                              adversarial_steps=10, restarts=2).adversarial
    assert adv <= cert


def test_bad_inputs_name_the_parameter():
    target = MLP.random([2, 3, 1], rng=0, bias=True)
    with pytest.raises(InputError, match="`target`"):
        burkholz2022.construct("net", rho=4)
    with pytest.raises(InputError, match="expected ReLU"):
        burkholz2022.construct(Network.random([Dense(2, 2), Dense(2, 1)], rng=0), rho=4)
    res = Network.random([Dense(2, 2), Residual((Dense(2, 2), ReLU())), Dense(2, 1)], rng=0)
    with pytest.raises(InputError, match="Residual"):
        burkholz2022.construct(res, rho=4)
    with pytest.raises(InputError, match="`rho`"):
        burkholz2022.construct(target, rho=0)
    with pytest.raises(InputError, match="`eps`"):
        burkholz2022.construct(target, eps=2.0)
    with pytest.raises(InputError, match="`delta`"):
        burkholz2022.construct(target, eps=0.1, delta=0.0)
    with pytest.raises(InputError, match="`weight_eps`"):
        burkholz2022.construct(target, rho=4, weight_eps=-1.0)
    with pytest.raises(InputError, match="`on_failure`"):
        burkholz2022.construct(target, rho=4, on_failure="maybe")
    with pytest.raises(InputError, match="`rho` must be given"):
        burkholz2022.construct(target)
    with pytest.raises(InputError, match="`rng`"):
        burkholz2022.construct(target, rho=4, virtual=True)
    with pytest.raises(LimitError, match="rho <= 40"):
        burkholz2022.construct(target, rho=41)
    other = burkholz2022.construct(MLP.random([2, 4, 1], rng=0, bias=True), rho=4, rng=0)
    with pytest.raises(ShapeError, match=r"layers\.2\.weight"):
        burkholz2022.construct(target, rho=4, source=other.source)
    with pytest.raises(InputError, match="`source`"):
        burkholz2022.construct(target, rho=4, source=np.zeros(3))


def test_certifier_refuses_tickets_without_the_structure():
    target = MLP.random([2, 3, 1], rng=0, bias=True)
    ticket = burkholz2022.construct(target, rho=4, rng=0)
    with pytest.raises(InputError, match="`radius`"):
        burkholz2022.certified_bound(target, ticket, radius=0)
    with pytest.raises(InputError, match="`target` is not the network"):
        burkholz2022.certified_bound(MLP.random([2, 3, 1], rng=1, bias=True), ticket)
    # a univariate unit reading another input
    kept = dict(ticket.kept)
    kept["layers.0.weight"] = np.union1d(kept["layers.0.weight"], [1])  # unit 0, input 1
    bad = Ticket.from_kept(ticket.source, kept, construction=burkholz2022.NAME)
    with pytest.raises(InputError, match=r"layers.0.weight\[0, 1\]"):
        burkholz2022.certified_bound(target, bad)
    # a constant unit of a hidden layer reading a copy unit
    t3 = MLP.random([2, 2, 1, 1], rng=0, bias=True)
    tk = burkholz2022.construct(t3, rho=3, rng=0)
    kept = dict(tk.kept)
    m_in = tk.params["widths"][2]
    kept["layers.4.weight"] = np.union1d(kept["layers.4.weight"], [3 * m_in])  # row 3, col 0
    with pytest.raises(InputError, match="constant unit reading a copy unit"):
        burkholz2022.certified_bound(t3, Ticket.from_kept(tk.source, kept,
                                                          construction=burkholz2022.NAME))
    # a pensia2020 ticket has another layout
    pt = pensia2020.construct(target, n=4, rng=0)
    with pytest.raises((InputError, ShapeError)):
        burkholz2022.certified_bound(target, pt)
    with pytest.raises(InputError, match="`ticket`"):
        burkholz2022.certified_bound(target, "ticket")


# ----------------------------------------------------------------------------- CNN targets
def _scaled(layers, shape, rng, scale=0.3):
    t = Network.random(layers, rng=rng, input_shape=shape)
    return t.arch.with_params({k: np.asarray(v) * scale for k, v in t.params.items()})


CNN_TARGETS = [
    ("conv-pool-overlap-conv-flatten-dense", lambda: _scaled(
        [Conv2d(1, 2, 3), ReLU(), MaxPool2d(2, stride=1), Conv2d(2, 2, 2), ReLU(), Flatten(),
         Dense(2, 2)], (1, 5, 5), 0)),
    ("padded-biased-conv-avgpool-dense", lambda: _scaled(
        [Conv2d(2, 3, 3, padding=1), ReLU(), MaxPool2d(2), Conv2d(3, 2, 3, padding=1,
                                                                  bias=False), ReLU(),
         AvgPool2d(3, stride=1), Flatten(), Dense(2, 2)], (2, 6, 6), 1)),
    ("strided-conv-conv-output", lambda: _scaled(
        [Conv2d(1, 2, 3, stride=2, bias=False), ReLU(), Conv2d(2, 2, 2)], (1, 5, 5), 2)),
    ("wide-padding-no-bias", lambda: _scaled(
        [Conv2d(1, 2, 2, padding=1, bias=False), ReLU(), Flatten(), Dense(50, 1, bias=False)],
        (1, 4, 4), 3)),
]


def cnn_ref_errors(target, ticket):
    """Realised errors of a CNN ticket, recomputed with plain loops from the layout."""
    rho = ticket.params["rho"]
    c0 = target.input_shape[0]
    n_uni, m0 = 2 * rho * c0, 2 * rho * (c0 + 1)
    W0 = masked(ticket, "layers.0.weight", (m0, c0, 1, 1))
    b0 = masked(ticket, "layers.0.bias", (m0,))
    a = [W0[u, u // (2 * rho), 0, 0] for u in range(n_uni)]
    z = [max(b0[u], 0.0) for u in range(n_uni, m0)]
    affine = [(k, n, lay) for k, (n, lay) in enumerate(target.layers)
              if isinstance(lay, (Conv2d, Dense))]
    shapes = [tuple(target.input_shape)]
    for _, lay in target.layers:
        shapes.append(lay.output_shape(shapes[-1]))
    out = {}
    prev = None   # ("img", C) or ("vec", n, hw) of the previous stage's output
    for l, (k, name, lay) in enumerate(affine):
        W = target.params[f"layers.{name}.weight"]
        b = target.params.get(f"layers.{name}.bias")
        spec = ticket.source.param_specs()[f"layers.{k + 2}.weight"]
        M = masked(ticket, f"layers.{k + 2}.weight", spec)
        last = l == len(affine) - 1
        per = 1 if last else rho
        conv = isinstance(lay, Conv2d)
        kh, kw = lay.kernel_size if conv else (1, 1)
        ph, pw = lay.padding if conv else (0, 0)
        n_out = W.shape[0]
        # columns of input copy s of target input feature q, and of constant t
        if l == 0:
            cin = c0
        elif prev[0] == "img":
            cin = prev[1]
        if not conv:
            if prev[0] == "img":   # after Flatten
                C, hw = prev[1], prev[2]

                def copy_col(q, s, C=C, hw=hw):
                    return (rho * (q // hw) + s) * hw + q % hw

                def const_col(t, C=C, hw=hw):
                    return (rho * C + t) * hw
            else:
                d = prev[1]

                def copy_col(q, s):
                    return rho * q + s

                def const_col(t, d=d):
                    return rho * d + t
        Mf = M.reshape(M.shape[0], -1) if not conv else M
        we = np.zeros(W.shape)
        be = np.zeros(n_out)
        n_c = 2 * rho if l == 0 else rho
        can_const = not (conv and (2 * ph > kh - 1 or 2 * pw > kw - 1))
        for r in range(n_out * per):
            i = r // per
            for idx in np.ndindex(*W.shape[1:]):
                if l == 0:
                    j, u, v = idx
                    P = N = 0.0
                    for unit in range(2 * rho * j, 2 * rho * (j + 1)):
                        if M[r, unit, u, v] != 0:
                            if a[unit] > 0:
                                P += M[r, unit, u, v] * a[unit]
                            elif a[unit] < 0:
                                N += M[r, unit, u, v] * a[unit]
                    e = max(abs(P - W[(i, *idx)]), abs(N - W[(i, *idx)]))
                else:
                    S = 0.0
                    for s in range(rho):
                        if conv:
                            val = M[r, rho * idx[0] + s, idx[1], idx[2]]
                        else:
                            val = Mf[r, copy_col(idx[0], s)]
                        S += val
                    e = abs(S - W[(i, *idx)])
                we[(i, *idx)] = max(we[(i, *idx)], e)
            if b is not None:
                B = 0.0
                for t in range(n_c):
                    col = (n_uni + t if l == 0 else rho * cin + t) if conv else const_col(t)
                    val = M[r, col, ph, pw] if conv else Mf[r, col]
                    B += val * z[t]
                be[i] = max(be[i], abs(B - b[i]))
        out[f"layers.{name}.weight"] = we
        if b is not None:
            out[f"layers.{name}.bias"] = be
        if not last:
            znew = []
            for t in range(rho):
                s_ = 0.0
                if can_const:
                    for t2 in range(n_c):
                        col = ((n_uni + t2 if l == 0 else rho * cin + t2) if conv
                               else const_col(t2))
                        val = M[n_out * rho + t, col, ph, pw] if conv else Mf[n_out * rho + t,
                                                                               col]
                        s_ += val * z[t2]
                znew.append(max(s_, 0.0))
            z = znew
        # the layout after this stage and its parameter-free layers
        nxt = affine[l + 1][0] if not last else len(target.layers)
        prev = ("img", n_out) if conv else ("vec", n_out)
        for kk in range(k + 1, nxt):
            if isinstance(target.layers[kk][1], Flatten) and prev[0] == "img":
                C, H, Wd = shapes[kk]
                prev = ("img", C, H * Wd)
    return out


@pytest.mark.parametrize("make", [m for _, m in CNN_TARGETS], ids=[n for n, _ in CNN_TARGETS])
def test_cnn_check_ticket_depth_and_recorded_errors(make):
    target = make()
    ticket = burkholz2022.construct(target, rho=6, rng=5)
    check_ticket(target, ticket, rebuilt=burkholz2022.construct(target, rho=6, rng=5),
                 errors=cnn_ref_errors)
    n_affine = sum(isinstance(lay, (Conv2d, Dense)) for _, lay in target.layers)
    src_affine = [lay for _, lay in ticket.source.layers if isinstance(lay, (Conv2d, Dense))]
    assert len(src_affine) == n_affine + 1
    assert ticket.source.arch == burkholz2022.source_architecture(target, 6)
    assert ticket.params["widths"] == list(burkholz2022.source_widths(target, 6))
    ref = cnn_ref_errors(target, ticket)
    assert set(ref) == set(ticket.errors) == set(target.params)
    for name, e in ref.items():
        np.testing.assert_allclose(ticket.errors[name], e, rtol=1e-12, atol=1e-15)
    # certified >= adversarial, on the ticket and on a fuzzed copy
    rng = np.random.default_rng(0)
    kept = {n: idx[rng.random(idx.size) < 0.8] for n, idx in ticket.kept.items()}
    fuzzed = Ticket.from_kept(ticket.source, kept, construction=burkholz2022.NAME,
                              params=dict(ticket.params), layer_map=ticket.layer_map,
                              target_fingerprint=target.fingerprint())
    for t in (ticket, fuzzed):
        cert = burkholz2022.certified_bound(target, t)
        rep = approximation_error(target, t, certify=False, rng=1, n_samples=128,
                                  adversarial_steps=20, restarts=2)
        assert np.isfinite(cert) and rep.adversarial <= cert, (rep.adversarial, cert)


def test_cnn_kept_values_are_the_source_bits_dense_and_virtual():
    target = CNN_TARGETS[0][1]()
    dense = burkholz2022.construct(target, rho=5, rng=9)
    virt = burkholz2022.construct(target, rho=5, rng=9, virtual=True)
    assert isinstance(virt.source, VirtualNetwork) and not dense.is_virtual
    vs = VirtualSource(dict(dense.source.param_specs()), "uniform[-1,1]", 9)
    for name in dense.source.param_specs():
        i1, v1 = dense.kept_entries(name)
        i2, v2 = virt.kept_entries(name)
        assert np.array_equal(i1, i2)
        assert v1.tobytes() == v2.tobytes() == vs.entries(name, i1).tobytes()
        assert v1.tobytes() == dense.source.params[name].reshape(-1)[i1].tobytes()
    for name in dense.errors:
        assert dense.errors[name].tobytes() == virt.errors[name].tobytes()
    check_ticket(target, virt, rebuilt=burkholz2022.construct(target, rho=5, rng=9,
                                                              virtual=True),
                 errors=cnn_ref_errors)
    again = burkholz2022.construct(target, source=virt.source)
    assert again.source is virt.source and again.params["rho"] == 5
    for name in dense.kept:
        assert np.array_equal(again.kept[name], dense.kept[name])


def test_cnn_certified_bound_falls_as_rho_grows():
    target = CNN_TARGETS[2][1]()
    certs = [burkholz2022.certified_bound(target, burkholz2022.construct(target, rho=rho,
                                                                         rng=1))
             for rho in (8, 20)]
    assert certs[1] < certs[0] / 10


def test_cnn_eps_mode_and_refusals():
    target = CNN_TARGETS[2][1]()
    tk = burkholz2022.construct(target, weight_eps=0.05, rho=12, rng=0, on_failure="report")
    assert tk.params["mode"] == "eps" and tk.params["weight_tolerance"] == 0.05
    assert burkholz2022.weight_tolerance(target, 0.1) > 0
    assert burkholz2022.theorem_rho(target, 0.1) >= 1
    with pytest.raises(InputError, match=r"'0'.*padding \(1, 1\).*zeroed at border pixels"):
        burkholz2022.construct(Network.random([Conv2d(1, 2, 2, padding=1), ReLU(), Flatten(),
                                               Dense(50, 1)], rng=0, input_shape=(1, 4, 4)),
                               rho=4)
    with pytest.raises(InputError, match=r"'2'.*earlier Conv2d has padding"):
        burkholz2022.construct(Network.random([Conv2d(1, 2, 2, padding=1, bias=False), ReLU(),
                                               Conv2d(2, 1, 2)], rng=0, input_shape=(1, 4, 4)),
                               rho=4)
    with pytest.raises(InputError, match="exactly one ReLU"):
        burkholz2022.construct(Network.random([Conv2d(1, 2, 3), Conv2d(2, 1, 1)], rng=0,
                                              input_shape=(1, 4, 4)), rho=4)
    with pytest.raises(InputError, match="must end with a Conv2d or Dense"):
        burkholz2022.construct(Network.random([Conv2d(1, 2, 3), ReLU()], rng=0,
                                              input_shape=(1, 4, 4)), rho=4)
    with pytest.raises(InputError, match="must start with a Conv2d"):
        burkholz2022.construct(Network.random([MaxPool2d(2), Conv2d(1, 2, 1)], rng=0,
                                              input_shape=(1, 4, 4)), rho=4)
    with pytest.raises(ShapeError, match="convolutional layout"):
        other = burkholz2022.construct(CNN_TARGETS[0][1](), rho=4, rng=0)
        burkholz2022.construct(target, rho=4, source=other.source)


def test_cnn_certifier_refuses_tickets_without_the_structure():
    target = CNN_TARGETS[0][1]()
    ticket = burkholz2022.construct(target, rho=4, rng=0)
    spec = ticket.source.param_specs()["layers.2.weight"]   # (rho (2 + 1), 2 rho (1 + 1), 3, 3)
    kept = dict(ticket.kept)
    # constant channel 0 of layer 1 (row 2 rho) reading univariate channel 0 at tap (0, 0)
    flat = int(np.ravel_multi_index((2 * 4, 0, 0, 0), spec))
    kept["layers.2.weight"] = np.union1d(kept["layers.2.weight"], [flat])
    with pytest.raises(InputError, match=r"layers.2.weight\[8, 0, 0, 0\].*constant channel"):
        burkholz2022.certified_bound(target, Ticket.from_kept(ticket.source, kept,
                                                              construction=burkholz2022.NAME))
    # an output copy reading a constant channel off the bias tap
    kept = dict(ticket.kept)
    flat = int(np.ravel_multi_index((0, 8, 1, 1), spec))
    kept["layers.2.weight"] = np.union1d(kept["layers.2.weight"], [flat])
    with pytest.raises(InputError, match=r"layers.2.weight\[0, 8, 1, 1\].*output copy"):
        burkholz2022.certified_bound(target, Ticket.from_kept(ticket.source, kept,
                                                              construction=burkholz2022.NAME))
