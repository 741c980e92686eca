"""Tickets keyed by name: kept indices as the canonical storage, masks derived on demand.

The consumers that now read kept indices (``Ticket.forward``, ``evaluate._ticket_layers``,
``certify._pair``) are compared bit for bit with private copies of their previous
masks-based implementations, kept here as references.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from slth import certify, evaluate
from slth._memory import using_memory_budget
from slth.constructions import bounded_target, malach2020, pensia2020, single_pair
from slth.errors import InputError, LimitError, ShapeError, SLTHError
from slth.nets import MLP
from slth.testing import strategies as sst
from slth.ticket import FORMAT_VERSION, READABLE_VERSIONS, Ticket


def bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).tobytes()


def random_ticket(widths=(4, 12, 9, 3), *, density=0.2, bias=True, seed=0, **kwargs) -> Ticket:
    src = MLP.random(widths, rng=seed, bias=bias)
    gen = np.random.default_rng(seed + 1)
    return Ticket(src, [gen.random(p.shape) < density for p in src.parameters()], **kwargs)


def with_biases(target: MLP, seed: int) -> MLP:
    gen = np.random.default_rng(seed)
    return MLP(target.weights, [gen.uniform(-0.5, 0.5, w.shape[0]) for w in target.weights])


def constructed_tickets() -> list[tuple[MLP, Ticket]]:
    out = []
    t1 = bounded_target((3, 4, 2), rng=0)
    out.append((t1, pensia2020.construct(t1, n=4, rng=0)))
    t2 = with_biases(bounded_target((2, 3, 1), rng=2), 0)
    out.append((t2, pensia2020.construct(t2, n=5, rng=3)))
    t3 = bounded_target((2, 2), rng=5)
    out.append((t3, malach2020.construct(t3, eps=0.3, delta=0.3, rng=1)))
    t4 = with_biases(bounded_target((3, 2), rng=6), 1)
    out.append((t4, single_pair.construct(t4, k=3, rng=2)))
    return out


# ---------------------------------------------------------------------- frozen references
def ref_ticket_layers(ticket: Ticket) -> list:
    """``evaluate._ticket_layers`` as it was, from dense masks (git 1b2ff75)."""
    weights, biases = [], []
    it = iter(zip(ticket.source.parameters(), ticket.masks))
    for b in ticket.source.biases:
        w, mw = next(it)
        bias = None
        if b is not None:
            bv, mb = next(it)
            if mb.any():
                bias = np.where(mb, bv, 0.0)
        weights.append((w, mw))
        biases.append(bias)
    L = len(weights)
    keep = [np.ones(weights[0][1].shape[1], dtype=bool)]
    for l in range(L - 1):
        alive = weights[l][1][:, keep[l]].any(axis=1)
        if biases[l] is not None:
            alive |= biases[l] > 0
        keep.append(alive)
    keep.append(np.ones(weights[-1][1].shape[0], dtype=bool))
    for l in range(L - 1, 0, -1):
        keep[l] &= weights[l][1][keep[l + 1]].any(axis=0)
    for l in range(1, L):  # a layer keeps at least one unit (network layers have width >= 1)
        if not keep[l].any():
            keep[l][0] = True
    out = []
    for l, ((w, mw), bias) in enumerate(zip(weights, biases)):
        rows, cols = np.nonzero(mw)
        csr = sp.csr_matrix((w[rows, cols], (rows, cols)), shape=w.shape)
        csr = csr[np.flatnonzero(keep[l + 1])][:, np.flatnonzero(keep[l])]
        out.append((csr, None if bias is None else bias[keep[l + 1]]))
    return out


def ref_pair(ticket: Ticket, i: int, d_in: int, d_out: int) -> tuple[np.ndarray, ...]:
    """``certify._pair`` as it was, from dense masks (git 1b2ff75)."""
    src = ticket.source
    masks = {}
    it = iter(ticket.masks)
    for l, b in enumerate(src.biases):
        masks[("w", l)] = next(it)
        if b is not None:
            masks[("b", l)] = next(it)
    s1, s2 = 2 * i, 2 * i + 1
    A, mA = src.weights[s1], masks[("w", s1)]
    Bw, mB = src.weights[s2], masks[("w", s2)]
    m = A.shape[0]
    units, inputs = np.nonzero(mA)
    a = A[units, inputs]
    pos = a > 0
    Apos = sp.csr_matrix((a[pos], (units[pos], inputs[pos])), shape=(m, d_in))
    Aneg = sp.csr_matrix((-a[~pos], (units[~pos], inputs[~pos])), shape=(m, d_in))
    r, cidx = np.nonzero(mB)
    Bs = sp.csr_matrix((Bw[r, cidx], (r, cidx)), shape=Bw.shape)
    Babs = abs(Bs)
    P = np.asarray((Bs @ Apos).todense())
    N = np.asarray((Bs @ Aneg).todense())
    absP = np.asarray((Babs @ Apos).todense())
    absN = np.asarray((Babs @ Aneg).todense())
    beta = np.zeros(d_out)
    abs_beta = np.zeros(d_out)
    c = src.biases[s1]
    mc = masks.get(("b", s1))
    if c is not None and mc is not None and mc.any():
        const = np.where(mc, np.maximum(c, 0.0), 0.0)
        beta += np.asarray(Bs @ const).ravel()
        abs_beta += np.asarray(Babs @ const).ravel()
    b2 = src.biases[s2]
    if b2 is not None and masks[("b", s2)].any():
        kept = np.where(masks[("b", s2)], b2, 0.0)
        beta += kept
        abs_beta += np.abs(kept)
    return P, N, beta, absP, absN, abs_beta


def ref_forward(ticket: Ticket, x: np.ndarray, method: str) -> np.ndarray:
    """``Ticket.forward`` as it was: operators from dense masks (git 1b2ff75)."""
    ops = []
    it = iter(zip(ticket.source.parameters(), ticket.masks))
    for b in ticket.source.biases:
        w, mw = next(it)
        bias = None
        if b is not None:
            bv, mb = next(it)
            bias = np.where(mb, bv, 0.0) if mb.any() else None
        sparse = method == "sparse" or (method == "auto" and mw.sum() < 0.3 * mw.size)
        if sparse:
            indptr = np.zeros(mw.shape[0] + 1, dtype=np.int64)
            np.cumsum(np.count_nonzero(mw, axis=1), out=indptr[1:])
            op = sp.csr_matrix((w[mw], np.nonzero(mw)[1], indptr), shape=w.shape)
        else:
            op = np.where(mw, w, 0.0)
        ops.append((op, bias))
    h = np.atleast_2d(x).T
    for l, (op, bias) in enumerate(ops):
        h = (h.T @ op.T).T if isinstance(op, np.ndarray) else np.asarray(
            op @ np.ascontiguousarray(h))
        if bias is not None:
            h += bias[:, None]
        if l < len(ops) - 1:
            np.maximum(h, 0.0, out=h)
    return np.ascontiguousarray(h.T)


def write_v1(ticket: Ticket, path) -> None:
    """A frozen copy of ``Ticket.save`` at format version 1 (git 1b2ff75)."""
    src = ticket.source
    arrays = {}
    for l, (w, b) in enumerate(zip(src.weights, src.biases, strict=True)):
        arrays[f"weights_{l}"] = w
        if b is not None:
            arrays[f"biases_{l}"] = b
    for i, m in enumerate(ticket.masks):
        arrays[f"masks_{i}"] = np.packbits(m.ravel())
    if ticket.weight_errors is not None:
        for l, e in enumerate(ticket.weight_errors):
            arrays[f"weight_errors_{l}"] = e
    if ticket.bias_errors is not None:
        for l, e in enumerate(ticket.bias_errors):
            if e is not None:
                arrays[f"bias_errors_{l}"] = e
    meta = {
        "format": "slth.Ticket",
        "version": 1,
        "slth_version": "0.1.0",
        "construction": ticket.construction,
        "params": ticket.params.to_dict(),
        "source_widths": list(src.widths),
        "source_biases": [b is not None for b in src.biases],
        "mask_shapes": [list(m.shape) for m in ticket.masks],
        "target_widths": None if ticket.target_widths is None else list(ticket.target_widths),
        "layer_map": (None if ticket.mlp_layer_map is None
                      else [list(g) for g in ticket.mlp_layer_map]),
        "n_weight_errors": None if ticket.weight_errors is None else len(ticket.weight_errors),
        "bias_errors": (
            None if ticket.bias_errors is None else [e is not None for e in ticket.bias_errors]
        ),
        "target_fingerprint": ticket.target_fingerprint,
    }
    text = json.dumps(meta, allow_nan=True)
    arrays["__metadata__"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def assert_same_ticket(a: Ticket, b: Ticket) -> None:
    assert a.source.widths == b.source.widths
    for p, q in zip(a.source.parameters(), b.source.parameters(), strict=True):
        assert bits(p) == bits(q)
    assert [x is None for x in a.source.biases] == [x is None for x in b.source.biases]
    assert list(a.kept) == list(b.kept) == list(a.source.parameter_names())
    for name in a.kept:
        assert a.kept[name].dtype == b.kept[name].dtype == np.int64
        assert bits(a.kept[name]) == bits(b.kept[name])
    for m, n in zip(a.masks, b.masks, strict=True):
        assert np.array_equal(m, n)
    assert (a.construction, a.params, a.target_widths, a.layer_map, a.target_fingerprint) == (
        b.construction, b.params, b.target_widths, b.layer_map, b.target_fingerprint)
    for x, y in ((a.weight_errors, b.weight_errors), (a.bias_errors, b.bias_errors)):
        assert (x is None) == (y is None)
        for e, f in zip(x or (), y or (), strict=True):
            assert (e is None) == (f is None)
            if e is not None:
                assert bits(e) == bits(f)


# ---------------------------------------------------------------------- kept, masks, from_kept
@settings(max_examples=40, deadline=None)
@given(sst.tickets(bias=st.booleans()))
def test_kept_are_sorted_flat_indices_of_the_masks(t):
    assert tuple(t.kept) == t.source.parameter_names()
    for name, p, m in zip(t.source.parameter_names(), t.source.parameters(), t.masks,
                          strict=True):
        idx = t.kept[name]
        assert idx.dtype == np.int64 and idx.ndim == 1 and not idx.flags.writeable
        np.testing.assert_array_equal(idx, np.flatnonzero(m))
        assert m.dtype == np.bool_ and m.shape == p.shape and not m.flags.writeable
        np.testing.assert_array_equal(t.mask(name), m)
    with pytest.raises(TypeError):
        t.kept["weights[0]"] = np.zeros(0, np.int64)  # type: ignore[index]


@settings(max_examples=40, deadline=None)
@given(sst.tickets(bias=st.booleans(), metadata=True))
def test_from_kept_round_trip_with_masks(t):
    u = Ticket.from_kept(t.source, t.kept, construction=t.construction, params=t.params,
                         target_widths=t.target_widths, layer_map=t.layer_map,
                         weight_errors=t.weight_errors, bias_errors=t.bias_errors,
                         target_fingerprint=t.target_fingerprint)
    assert_same_ticket(t, u)
    v = Ticket(u.source, u.masks, construction=u.construction, params=u.params,
               target_widths=u.target_widths, layer_map=u.layer_map,
               weight_errors=u.weight_errors, bias_errors=u.bias_errors)
    for name in t.kept:
        assert bits(v.kept[name]) == bits(t.kept[name])
    assert (t.n_kept, t.density, t.layer_density(), t.summary()) == (
        u.n_kept, u.density, u.layer_density(), u.summary())


@settings(max_examples=40, deadline=None)
@given(sst.tickets(bias=st.booleans()))
def test_kept_entries_are_the_source_bits(t):
    for name, p, m, v in zip(t.source.parameter_names(), t.source.parameters(), t.masks,
                             t.kept_values(), strict=True):
        idx, values = t.kept_entries(name)
        assert idx is t.kept[name]
        assert values.dtype == np.float64
        assert bits(values) == bits(p[m]) == bits(v)


def test_from_kept_accepts_any_integer_dtype_and_copies():
    src = MLP([np.arange(6.0).reshape(2, 3)], [np.array([1.0, -2.0])])
    idx = np.array([1, 5], dtype=np.uint16)
    t = Ticket.from_kept(src, {"weights[0]": idx, "biases[0]": []})
    idx[0] = 0
    np.testing.assert_array_equal(t.kept["weights[0]"], [1, 5])
    assert t.kept["biases[0]"].dtype == np.int64 and t.kept["biases[0]"].size == 0
    np.testing.assert_array_equal(t.masks[0], [[False, True, False], [False, False, True]])
    assert t.n_kept == 2 and t.density == 2 / 8
    assert bits(t.kept_entries("weights[0]")[1]) == bits(np.array([1.0, 5.0]))
    np.testing.assert_array_equal(t.forward(np.ones(3)), [1.0, 5.0])


SRC = MLP([np.ones((3, 2)), np.ones((1, 3))], [np.zeros(3), None])
GOOD = {"weights[0]": [0, 3], "biases[0]": [1], "weights[1]": [0, 1, 2]}

KEPT_CASES = [
    ("not-mapping", [1, 2], InputError, "`kept`"),
    ("unknown-name", {**GOOD, "weights[2]": [0]}, InputError, "'weights[2]'"),
    ("missing-name", {k: v for k, v in GOOD.items() if k != "biases[0]"}, InputError,
     "missing 'layers.0.bias'"),
    ("float-dtype", {**GOOD, "weights[1]": np.array([0.0, 1.0])}, InputError,
     "`kept['layers.2.weight']`"),
    ("bool-dtype", {**GOOD, "biases[0]": np.array([True])}, InputError, "`kept['layers.0.bias']`"),
    ("not-1d", {**GOOD, "weights[0]": np.array([[0, 3]])}, ShapeError, "`kept['layers.0.weight']`"),
    ("unsorted", {**GOOD, "weights[0]": [3, 0]}, InputError, "decreasing"),
    ("repeated", {**GOOD, "weights[1]": [0, 1, 1]}, InputError, "repeated"),
    ("negative", {**GOOD, "weights[0]": [-1, 3]}, InputError, "[0, 5]"),
    ("too-large", {**GOOD, "weights[0]": [0, 6]}, InputError, "received 6"),
]


@pytest.mark.parametrize("kept, error, piece", [c[1:] for c in KEPT_CASES],
                         ids=[c[0] for c in KEPT_CASES])
def test_from_kept_validation(kept, error, piece):
    with pytest.raises(error) as info:
        Ticket.from_kept(SRC, kept)
    assert isinstance(info.value, SLTHError)
    assert piece in str(info.value) and "\n" not in str(info.value)


def test_from_kept_validates_metadata_and_names_like_the_constructor():
    with pytest.raises(InputError, match="`source`"):
        Ticket.from_kept("net", GOOD)  # type: ignore[arg-type]
    with pytest.raises(ShapeError, match="`target_widths`"):
        Ticket.from_kept(SRC, GOOD, target_widths=(3, 1))
    t = Ticket.from_kept(SRC, GOOD, target_widths=(2, 1), layer_map=((0, 1),))
    assert t.mlp_layer_map == ((0, 1),)
    with pytest.raises(InputError, match="`name`"):
        t.kept_entries("weights[9]")
    with pytest.raises(InputError, match="`name`"):
        t.mask(0)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        t.construction = "x"  # type: ignore[misc]


def test_masks_are_not_retained_and_derived_lazily():
    src = MLP.random((5, 7, 2), rng=0)
    masks = [np.ones(p.shape, bool) for p in src.parameters()]
    t = Ticket(src, masks)
    assert "masks" not in t._cache
    masks[0][0, 0] = False  # the caller's arrays are not the ticket's
    first = t.masks
    assert bool(first[0][0, 0]) and t.masks is first


def test_masks_refused_past_the_memory_budget():
    src = MLP([np.zeros((1100, 1000)), np.zeros((1, 1100))])  # 1.2M entries
    t = Ticket.from_kept(src, {"weights[0]": np.arange(0, 1_100_000, 1001),
                               "weights[1]": np.arange(5)})
    with using_memory_budget("1MB"):
        with pytest.raises(LimitError, match=r"Ticket\.masks") as info:
            _ = t.masks
        assert "Ticket.kept" in str(info.value)
        with pytest.raises(LimitError, match=r"Ticket\.mask"):
            t.mask("weights[0]")
        # what reads kept indices only still works
        assert t.n_kept == 1099 + 5
        idx, values = t.kept_entries("weights[0]")
        assert idx.size == 1099 and np.all(values == 0.0)
        t.forward(np.ones((2, 1000)), method="sparse")
    assert t.masks[0].sum() == 1099


# ---------------------------------------------------------------------- consumers, bit for bit
@settings(max_examples=60, deadline=None)
@given(sst.tickets(bias=st.booleans()), st.sampled_from(["auto", "sparse", "dense"]),
       st.integers(1, 5))
def test_forward_from_kept_equals_the_masks_based_forward_bit_for_bit(t, method, batch):
    x = np.random.default_rng(batch).uniform(-1, 1, (batch, t.source.widths[0]))
    assert bits(t.forward(x, method=method)) == bits(ref_forward(t, x, method))
    net = t.network()
    for p, m, q in zip(t.source.parameters(), t.masks, net.parameters(), strict=True):
        assert bits(q) == bits(np.where(m, p, 0.0))
    assert bits(t.forward(x, method="dense")) == bits(net.forward(x))


def _assert_layers_identical(got, ref):
    assert len(got) == len(ref)
    for (a, ba), (b, bb) in zip(got, ref, strict=True):
        a, b = a.tocsr(), b.tocsr()
        assert a.shape == b.shape
        assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
        assert bits(a.data) == bits(b.data)
        assert (ba is None) == (bb is None)
        if ba is not None:
            assert bits(ba) == bits(bb)


@settings(max_examples=60, deadline=None)
@given(sst.tickets(bias=st.booleans()))
def test_ticket_layers_from_kept_equal_the_masks_based_reference(t):
    got, ref = evaluate._ticket_layers(t), ref_ticket_layers(t)
    _assert_layers_identical(got, ref)
    x = np.random.default_rng(0).uniform(-1, 1, (4, t.source.widths[0]))
    lc, lf = evaluate._compact_mlp_ticket(t).linearize(x), t.network().linearize(x)
    np.testing.assert_allclose(lc.output, lf.output, rtol=0, atol=1e-12)
    u = np.ones_like(lc.output)
    np.testing.assert_allclose(lc.vjp(u), lf.vjp(u), rtol=0, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(sst.tickets(bias=st.booleans(), metadata=True))
def test_pair_from_kept_equals_the_masks_based_reference(t):
    kept = certify._kept_by_param(t)
    for i in range(len(t.target_widths) - 1):
        d_in, d_out = t.target_widths[i], t.target_widths[i + 1]
        E = certify._pair(t, kept, i, d_in, d_out)
        ref = ref_pair(t, i, d_in, d_out)
        for a, b in zip((E.P, E.N, E.beta, E.abs_P, E.abs_N, E.abs_beta), ref, strict=True):
            assert bits(a) == bits(b)


@pytest.mark.parametrize("case", range(4))
def test_constructed_tickets_evaluate_and_certify_as_before(case):
    target, t = constructed_tickets()[case]
    _assert_layers_identical(evaluate._ticket_layers(t), ref_ticket_layers(t))
    certify.check_structure(target, t)
    for i, E in enumerate(certify.effective_layers(target, t)):
        ref = ref_pair(t, i, *target.weights[i].shape[::-1])
        for a, b in zip((E.P, E.N, E.beta, E.abs_P, E.abs_N, E.abs_beta), ref, strict=True):
            assert bits(a) == bits(b)
    x = np.random.default_rng(case).uniform(-0.5, 0.5, (8, target.widths[0]))
    assert bits(t.forward(x)) == bits(ref_forward(t, x, "auto"))


def test_structure_checks_read_kept_entries_and_still_refuse():
    target, t = constructed_tickets()[0]
    masks = [m.copy() for m in t.masks]
    masks[0][0, 1] = True  # hidden unit 0 now reads two inputs
    bad = Ticket(t.source, masks, construction=t.construction, params=t.params,
                 target_widths=t.target_widths, layer_map=t.layer_map)
    with pytest.raises(InputError, match="hidden unit 0"):
        certify.check_structure(target, bad)


# ---------------------------------------------------------------------- files
@settings(max_examples=20, deadline=None)
@given(sst.tickets(bias=st.booleans(), metadata=True))
def test_version_1_and_version_2_files_load_bit_for_bit(t):
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        p1, p2 = os.path.join(tmp, "v1.npz"), os.path.join(tmp, "v2.npz")
        write_v1(t, p1)
        t.save(p2)
        assert_same_ticket(t, Ticket.load(p1))
        assert_same_ticket(t, Ticket.load(p2))


def test_constructed_ticket_files_keep_the_fingerprint(tmp_path):
    for k, (target, t) in enumerate(constructed_tickets()):
        write_v1(t, tmp_path / f"v1_{k}.npz")
        t.save(tmp_path / f"v2_{k}.npz")
        for name in (f"v1_{k}.npz", f"v2_{k}.npz"):
            back = Ticket.load(tmp_path / name)
            assert_same_ticket(t, back)
            assert back.target_fingerprint == target.fingerprint()
            assert certify.certified_bound(target, back) == certify.certified_bound(target, t)


def test_version_2_layout(tmp_path):
    src = MLP([np.zeros((300, 400)), np.zeros((2, 300))], [np.zeros(300), None])
    kept = {"weights[0]": np.arange(0, 120_000, 401), "biases[0]": np.array([299]),
            "weights[1]": np.array([0, 599])}
    t = Ticket.from_kept(src, kept)
    t.save(tmp_path / "t.npz")
    with np.load(tmp_path / "t.npz", allow_pickle=False) as f:
        meta = json.loads(bytes(f["__metadata__"]).decode())
        assert meta["version"] == FORMAT_VERSION == 3 and {1, 2} <= set(READABLE_VERSIONS)
        assert meta["parameter_names"] == ["layers.0.weight", "layers.0.bias", "layers.2.weight"]
        assert meta["kept_encodings"] == ["delta", "delta", "delta"]
        assert meta["kept_counts"] == [300, 1, 2]
        assert [f[f"kept_{i}"].dtype for i in range(3)] == [np.uint16, np.uint16, np.uint16]
        assert not any(k.startswith("masks_") for k in f.files)
        assert f["kept_0"][0] == 0 and np.all(f["kept_0"][1:] == 401)
    assert_same_ticket(t, Ticket.load(tmp_path / "t.npz"))


def test_dense_kept_sets_are_stored_as_bits(tmp_path):
    src = MLP([np.zeros((50, 40)), np.zeros((2, 50))], [np.zeros(50), None])
    gen = np.random.default_rng(0)
    t = Ticket(src, [gen.random((50, 40)) < 0.5, np.zeros(50, bool), np.ones((2, 50), bool)])
    t.save(tmp_path / "t.npz")
    with np.load(tmp_path / "t.npz", allow_pickle=False) as f:
        meta = json.loads(bytes(f["__metadata__"]).decode())
        assert meta["kept_encodings"] == ["bits", "delta", "bits"]
        assert f["kept_0"].dtype == np.uint8 and f["kept_0"].size == 250
    assert_same_ticket(t, Ticket.load(tmp_path / "t.npz"))


def _rewrite(path, out, *, meta_update=None, arrays_update=None):
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(bytes(arrays["__metadata__"]).decode())
    meta.update(meta_update or {})
    arrays.update(arrays_update or {})
    arrays["__metadata__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(out, **arrays)


def test_unknown_version_and_corrupt_files_are_one_line_input_errors(tmp_path):
    t = random_ticket(construction="pensia2020", params={"n": 3})
    t.save(tmp_path / "t.npz")
    _rewrite(tmp_path / "t.npz", tmp_path / "v9.npz", meta_update={"version": 9})
    with pytest.raises(InputError) as info:
        Ticket.load(tmp_path / "v9.npz")
    msg = str(info.value)
    assert "\n" not in msg and "version 9" in msg and "rebuild" in msg and "'pensia2020'" in msg
    with np.load(tmp_path / "t.npz", allow_pickle=False) as f:
        meta0 = json.loads(bytes(f["__metadata__"]).decode())
    bad_cases = {
        "unsorted": {"kept_0": np.array([3, 0], dtype=np.uint8)},
        "signed": {"kept_0": np.array([1, 2], dtype=np.int64)},
        "range": {"kept_0": np.array([200], dtype=np.uint8)},
    }
    for name, upd in bad_cases.items():
        counts = [int(v.size) for v in t.kept.values()]
        counts[0] = int(upd["kept_0"].size)
        encodings = ["delta", *meta0["kept_encodings"][1:]]
        _rewrite(tmp_path / "t.npz", tmp_path / f"{name}.npz", arrays_update=upd,
                 meta_update={"kept_counts": counts, "kept_encodings": encodings})
        with pytest.raises(InputError) as info:
            Ticket.load(tmp_path / f"{name}.npz")
        assert "\n" not in str(info.value) and "`path`" in str(info.value)
    _rewrite(tmp_path / "t.npz", tmp_path / "count.npz", meta_update={"kept_counts": [0] * 6})
    with pytest.raises(InputError, match="records 0"):
        Ticket.load(tmp_path / "count.npz")
    _rewrite(tmp_path / "t.npz", tmp_path / "enc.npz",
             meta_update={"kept_encodings": ["zip"] * 6})
    with pytest.raises(InputError, match="'zip'"):
        Ticket.load(tmp_path / "enc.npz")


def test_pickle_keeps_kept_and_drops_derived_masks():
    import pickle

    t = random_ticket()
    assert len(t.masks) == 6
    t.forward(np.ones(4))
    back = pickle.loads(pickle.dumps(t))
    assert back._cache == {}
    assert_same_ticket(t, back)


@pytest.mark.slow
def test_version_2_is_not_larger_than_version_1(tmp_path):
    target = bounded_target((8, 6, 3), rng=0)
    t = pensia2020.construct(target, n=10, rng=0)
    write_v1(t, tmp_path / "v1.npz")
    t.save(tmp_path / "v2.npz")
    s1, s2 = (tmp_path / "v1.npz").stat().st_size, (tmp_path / "v2.npz").stat().st_size
    t0 = time.perf_counter()
    Ticket.load(tmp_path / "v2.npz")
    assert time.perf_counter() - t0 < 5.0
    assert s2 <= s1 + 1024 and math.isfinite(s2)
