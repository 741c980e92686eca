"""The depth L+1 construction of Burkholz (2022): masks only, honest records, sound bounds."""

from __future__ import annotations

import numpy as np
import pytest

from slth.constructions import (
    _REGISTRY,
    bounded_target,
    burkholz2022,
    pensia2020,
    register_construction,
)
from slth.errors import ConstructionError, InputError, LimitError, ShapeError
from slth.evaluate import approximation_error
from slth.nets import MLP, Conv2d, Dense, Flatten, Network, ReLU
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
    register_construction(burkholz2022.NAME, paper="Burkholz 2022", layer_types=("Dense",
                          "ReLU"), certifier=burkholz2022.certified_bound,
                          module=burkholz2022, replace=True)
    try:
        ticket = burkholz2022.construct(target, rho=8, rng=1)
        check_ticket(target, ticket, errors=ref_errors, certify=True)
        rep = approximation_error(target, ticket, rng=0, n_samples=128, adversarial_steps=10,
                                  restarts=2)
        assert rep.certified is not None and rep.adversarial <= rep.certified
    finally:
        _REGISTRY.pop(burkholz2022.NAME, None)


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
    conv = Network.random([Conv2d(1, 2, 3), ReLU(), Flatten(), Dense(8, 1)], rng=0,
                          input_shape=(1, 4, 4))
    with pytest.raises(InputError, match="convolutional targets are not supported"):
        burkholz2022.construct(conv, rho=4)
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
