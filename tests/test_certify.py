"""slth.certify: a certified bound that verifies what it relies on, rounds outward and is tight.

Each test of a numbered defect first builds the issue's reproducer.
"""

from __future__ import annotations

import numpy as np
import pytest

from slth import CertificateError, InputError, ShapeError, SLTHError, Ticket
from slth.certify import check_structure, norm_upper, propagated_error_bound
from slth.constructions import bounded_target, malach2020, pensia2020, rescale, single_pair
from slth.evaluate import approximation_error, certified_bound, effective_layers
from slth.nets import MLP

A = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
B = np.array([[0.5, -0.5, 0.5, -0.5]])
TARGET = MLP([np.array([[0.5, 0.5]])])
X_WORST = np.array([[1.0, 1.0]]) / np.sqrt(2.0)


# ----------------------------------------------------------------------------- defect 1
def test_skipped_source_layer_is_refused():
    source = MLP([A, 3.0 * np.eye(4), B])
    masks = [A != 0, np.ones((4, 4), bool), np.ones((1, 4), bool)]
    ticket = Ticket(source, masks, target_widths=(2, 1), layer_map=((0, 2),))
    err = np.linalg.norm(ticket.forward(X_WORST) - TARGET.forward(X_WORST))
    assert err == pytest.approx(np.sqrt(2.0))                  # the real error
    with pytest.raises(ShapeError, match="3 layers"):
        certified_bound(TARGET, ticket)
    rep = approximation_error(TARGET, ticket, rng=0, n_samples=64)
    assert rep.certified is None and "3 layers" in rep.certified_note


def test_trailing_source_layer_is_refused(tmp_path):
    source = MLP([A, B, np.array([[6.0]])])
    masks = [A != 0, np.ones((1, 4), bool), np.ones((1, 1), bool)]
    ticket = Ticket(source, masks, target_widths=(2, 1), layer_map=((0, 1),))
    err = np.linalg.norm(ticket.forward(X_WORST) - TARGET.forward(X_WORST))
    assert err > 3.0
    with pytest.raises(SLTHError):
        certified_bound(TARGET, ticket)
    # a file can carry such metadata: loading it does not make it certifiable
    ticket.save(tmp_path / "t.npz")
    with pytest.raises(SLTHError):
        certified_bound(TARGET, Ticket.load(tmp_path / "t.npz"))


def test_wrong_layer_map_and_non_block_forms_are_refused():
    target = bounded_target((3, 4, 2), rng=0)
    ticket = pensia2020.construct(target, n=4, rng=0)
    bad = Ticket(ticket.source, ticket.masks, construction="manual",
                 target_widths=target.widths, layer_map=((0,), (1, 2, 3)))
    with pytest.raises(InputError, match="layer_map"):
        certified_bound(target, bad)
    # a unit reading two inputs
    masks = [m.copy() for m in ticket.masks]
    masks[0][0, :] = True
    with pytest.raises(InputError, match="block form"):
        certified_bound(target, Ticket(ticket.source, masks, target_widths=target.widths,
                                       layer_map=ticket.layer_map))
    # a pensia2020 ticket whose first layer keeps a weight outside its block
    masks = [m.copy() for m in ticket.masks]
    masks[0][:, :] = False
    masks[0][0, 1] = True                       # unit 0 belongs to block 0 (input 0)
    forged = Ticket(ticket.source, masks, construction="pensia2020", params=ticket.params,
                    target_widths=target.widths, layer_map=ticket.layer_map)
    with pytest.raises(InputError, match="outside its block"):
        check_structure(target, forged)
    # a pensia2020 ticket claiming another n than its source has
    params = dict(ticket.params)
    params["n"] = [5, 4]
    forged = Ticket(ticket.source, ticket.masks, construction="pensia2020", params=params,
                    target_widths=target.widths, layer_map=ticket.layer_map)
    with pytest.raises(ShapeError, match="hidden units"):
        certified_bound(target, forged)


# ----------------------------------------------------------------------------- defect 2
def _pruned_ticket(W: np.ndarray) -> Ticket:
    """A ticket that keeps nothing: its output is 0, its error ||W x||."""
    d_out, d_in = W.shape
    source = MLP.random((d_in, 2 * d_in, d_out), rng=0)
    masks = [np.zeros((2 * d_in, d_in), bool), np.zeros((d_out, 2 * d_in), bool)]
    return Ticket(source, masks, target_widths=(d_in, d_out), layer_map=((0, 1),))


def test_bound_is_rounded_outward_on_pruned_tickets():
    W = np.array([[0.6, 0.8]])
    target = MLP([W])
    ticket = _pruned_ticket(W)
    x = np.array([[0.6, 0.8]])
    rep = approximation_error(target, ticket, inputs=x, adversarial_steps=0)
    # the unrounded bound was exactly 1.0 while an evaluation read 1.0000000000000002
    assert certified_bound(target, ticket) >= 1.0000000000000002 >= rep.sampled_max
    rng = np.random.default_rng(0)
    over = 0
    for _ in range(1500):
        d_in, d_out = rng.integers(1, 5, size=2)
        W = rng.uniform(0.0, 1.0, (d_out, d_in))
        W /= np.linalg.norm(W, 2)
        target, ticket = MLP([W]), _pruned_ticket(W)
        v = np.linalg.svd(W)[2][0]
        xs = np.vstack([np.abs(v), rng.uniform(0, 1, (8, d_in))])
        xs /= np.linalg.norm(xs, axis=1, keepdims=True)
        rep = approximation_error(target, ticket, inputs=xs, adversarial_steps=0)
        over += rep.sampled_max > certified_bound(target, ticket)
    assert over == 0


def test_norm_upper_is_an_upper_bound():
    rng = np.random.default_rng(1)
    for _ in range(300):
        m, n = rng.integers(1, 30, size=2)
        M = rng.standard_normal((m, n)) * 10.0 ** rng.uniform(-8, 3)
        s = np.linalg.svd(M, compute_uv=False)[0]
        t = norm_upper(M)
        assert s <= t <= s * (1 + 1e-9)
    assert norm_upper(np.zeros((3, 2))) == 0.0


# ----------------------------------------------------------------------------- defect 3
def test_a_ticket_refuses_another_target():
    original = MLP.random((3, 5, 2), rng=0)
    scaled = rescale(original).target
    ticket = pensia2020.construct(scaled, n=6, rng=1)
    assert ticket.target_fingerprint == scaled.fingerprint() != original.fingerprint()
    with pytest.raises(InputError, match="not the network this ticket was built for"):
        certified_bound(original, ticket)
    with pytest.raises(InputError, match="check_target=False"):
        approximation_error(original, ticket, rng=0, n_samples=16)
    c = certified_bound(original, ticket, check_target=False)
    rep = approximation_error(original, ticket, rng=0, n_samples=64, check_target=False)
    assert rep.adversarial <= c


def test_fingerprint_survives_saving(tmp_path):
    target = bounded_target((2, 3, 1), rng=2)
    ticket = pensia2020.construct(target, n=5, rng=3)
    ticket.save(tmp_path / "t.npz")
    again = Ticket.load(tmp_path / "t.npz")
    assert again.target_fingerprint == target.fingerprint()
    assert certified_bound(target, again) == certified_bound(target, ticket)


def test_junk_files_get_one_line_messages(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not an archive at all" * 10)
    obj = tmp_path / "obj.npz"
    np.savez(obj, __metadata__=np.array([{"a": 1}], dtype=object))
    for path in (junk, obj, tmp_path / "missing.npz"):
        with pytest.raises(InputError) as info:
            Ticket.load(path)
        msg = str(info.value)
        assert "\n" not in msg and "allow_pickle" not in msg
        assert "Ticket.save" in msg or "does not exist" in msg


# ----------------------------------------------------------------------------- defect 4
def test_sign_pattern_bound_is_tighter_and_still_sound():
    ratios: dict[int, list[float]] = {2: [], 3: []}
    for depth, widths in ((2, (3, 4, 2)), (3, (4, 4, 4, 2))):
        for seed in range(6):
            target = bounded_target(widths, rng=seed)
            ticket = pensia2020.construct(target, eps=0.1, delta=0.1, rng=seed,
                                          on_failure="report")
            new = certified_bound(target, ticket)
            old = certified_bound(target, ticket, method="propagation")
            rep = approximation_error(target, ticket, rng=seed, n_samples=512,
                                      adversarial_steps=40, restarts=8)
            assert rep.adversarial <= new <= old
            ratios[depth].append(old / new)
    # measured: median 1.9x at depth 2 and 2.8x at depth 3 (README); asserted with margin
    assert np.median(ratios[2]) >= 1.3 and np.median(ratios[3]) >= 1.8


def test_propagated_error_bound_matches_the_ticket_certificate():
    target = bounded_target((3, 4, 2), rng=4)
    ticket = pensia2020.construct(target, n=8, rng=4)
    eff = effective_layers(target, ticket)
    pos = [E.P - W for E, W in zip(eff, target.weights)]
    neg = [-(E.N + W) for E, W in zip(eff, target.weights)]
    for method in ("sign", "propagation"):
        b = propagated_error_bound(target.weights, pos, neg, method=method)
        c = certified_bound(target, ticket, method=method)
        assert b <= c <= b * (1 + 1e-9) + 1e-15


# ----------------------------------------------------------------------------- soundness fuzz
def _hand_built(rng: np.random.Generator) -> tuple[MLP, Ticket]:
    """A random ticket in the two-layer block form, biases of both signs everywhere."""
    L = int(rng.integers(1, 4))
    widths = [int(w) for w in rng.integers(1, 5, size=L + 1)]
    tw, tb, sw, sb, masks = [], [], [], [], []
    for i in range(L):
        d_in, d_out = widths[i], widths[i + 1]
        W = rng.uniform(-1, 1, (d_out, d_in)) * rng.uniform(0.2, 1.5)
        tw.append(W)
        tb.append(rng.uniform(-0.5, 0.5, d_out) if rng.uniform() < 0.5 else None)
        m = int(rng.integers(1, 4)) * 2 * (d_in + 1)
        Aw = rng.uniform(-1, 1, (m, d_in))
        c = rng.uniform(-1, 1, m)
        Bw = rng.uniform(-1, 1, (d_out, m))
        b2 = rng.uniform(-0.3, 0.3, d_out)
        reads = rng.integers(-1, d_in, size=m)            # -1: constant or dead unit
        mA = np.zeros((m, d_in), bool)
        mA[np.flatnonzero(reads >= 0), reads[reads >= 0]] = True
        mc = (reads < 0) & (rng.uniform(size=m) < 0.7)
        mB = rng.uniform(size=(d_out, m)) < 0.5
        mb2 = rng.uniform(size=d_out) < 0.3
        sw += [Aw, Bw]
        sb += [c, b2]
        masks += [mA, mc, mB, mb2]
    target = MLP(tw, tb)
    source = MLP(sw, sb)
    ticket = Ticket(source, masks, target_widths=tuple(widths),
                    layer_map=tuple((2 * i, 2 * i + 1) for i in range(L)))
    return target, ticket


def _constructed(rng: np.random.Generator) -> tuple[MLP, Ticket]:
    widths = tuple(int(w) for w in rng.integers(1, 5, size=int(rng.integers(2, 4))))
    net = bounded_target(widths, rng=rng)
    if rng.uniform() < 0.5:
        net = MLP(net.weights, [rng.uniform(-0.5, 0.5, w) for w in widths[1:]])
    kind = int(rng.integers(0, 3))
    seed = int(rng.integers(1 << 30))
    if kind == 0:
        return net, pensia2020.construct(net, n=int(rng.integers(1, 9)), rng=seed)
    if kind == 1:
        return net, malach2020.construct(net, k=int(rng.integers(1, 12)), rng=seed)
    return net, single_pair.construct(net, k=int(rng.integers(1, 20)), rng=seed)


@pytest.mark.parametrize("family", ["constructed", "hand_built"])
def test_adversarial_never_exceeds_certified(family):
    rng = np.random.default_rng(123 if family == "constructed" else 456)
    make = _constructed if family == "constructed" else _hand_built
    n_cases = 0
    for _ in range(150):
        target, ticket = make(rng)
        radius = float(rng.choice([0.5, 1.0, 3.0]))
        for method in ("sign", "propagation"):
            cert = certified_bound(target, ticket, radius=radius, method=method)
            try:
                rep = approximation_error(target, ticket, rng=n_cases, radius=radius,
                                          n_samples=64, adversarial_steps=15, restarts=3,
                                          certify=False)
            except CertificateError:  # pragma: no cover - the failure this test looks for
                raise
            assert rep.adversarial <= cert, (family, method, radius)
        n_cases += 1
    assert n_cases == 150


def test_approximation_error_raises_when_bounds_cross(monkeypatch):
    target = bounded_target((2, 3, 1), rng=0)
    ticket = pensia2020.construct(target, n=3, rng=0)
    import dataclasses

    import slth.constructions as sc
    # evaluation looks the certifier up in the registry: make it claim 0
    entry = dataclasses.replace(sc.REGISTRY["pensia2020"], certifier=lambda *a, **k: 0.0)
    monkeypatch.setitem(sc._REGISTRY, "pensia2020", entry)
    with pytest.raises(CertificateError, match="exceeds the certified upper bound"):
        approximation_error(target, ticket, rng=0, n_samples=64)
