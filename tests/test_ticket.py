"""Tests of slth.Ticket: masks, sparse forward pass, counts, save/load."""

from __future__ import annotations

import os
import pickle
import tempfile

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from tolerances import TOL

from slth.errors import InputError, ShapeError, SLTHError
from slth.nets import MLP
from slth.testing import strategies as sst
from slth.ticket import SPARSE_DENSITY_THRESHOLD, FrozenParams, Ticket

# The CSR and dense forward passes sum the same kept products in different orders:
# they agree to RTOL_REORDER times the magnitude network a(x) (absolute values throughout).
# The relative tolerance comes from the suite's one table (tests/tolerances.py).
RTOL_REORDER = TOL[np.dtype(np.float64)]
ATOL_UNDERFLOW = 1e-300


def magnitude(net: MLP, x: np.ndarray) -> np.ndarray:
    h = np.abs(np.atleast_2d(x))
    for w, b in zip(net.weights, net.biases, strict=True):
        h = h @ np.abs(w).T + (0 if b is None else np.abs(b))
    return h


def bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).tobytes()


def random_ticket(widths=(4, 12, 9, 3), *, density=0.2, bias=True, seed=0, **kwargs) -> Ticket:
    src = MLP.random(widths, rng=seed, bias=bias)
    gen = np.random.default_rng(seed + 1)
    return Ticket(src, [gen.random(p.shape) < density for p in src.parameters()], **kwargs)


@st.composite
def ticket_and_inputs(draw, **kwargs):
    t = draw(sst.tickets(**kwargs))
    x = draw(sst.unit_ball_inputs(t.source.widths[0], max_batch=6))
    return t, x


# ---------------------------------------------------------------------- forward
@settings(max_examples=60, deadline=None)
@given(ticket_and_inputs(bias=st.booleans()), st.sampled_from(["auto", "sparse", "dense"]))
def test_forward_equals_dense_forward_of_source_times_mask(case, method):
    t, x = case
    dense = t.network().forward(x)
    got = t.forward(x, method=method)
    assert got.shape == dense.shape
    tol = RTOL_REORDER * magnitude(t.network(), x) + ATOL_UNDERFLOW
    assert np.all(np.abs(got - dense) <= tol)


@settings(max_examples=30, deadline=None)
@given(ticket_and_inputs(bias=st.booleans(), density=0.1))
def test_sparse_forward_low_density(case):
    t, x = case
    dense = t.network().forward(x)
    tol = RTOL_REORDER * magnitude(t.network(), x) + ATOL_UNDERFLOW
    assert np.all(np.abs(t.forward(x) - dense) <= tol)


def test_network_is_source_times_mask():
    t = random_ticket()
    net = t.network()
    for p, m, q in zip(t.source.parameters(), t.masks, net.parameters(), strict=True):
        np.testing.assert_array_equal(q, p * m)
        assert bits(q[m]) == bits(p[m])
        assert np.all(q[~m] == 0)


def test_auto_uses_csr_below_threshold_and_dense_above():
    src = MLP.random((30, 40, 5), rng=0)
    sparse_mask = np.zeros((40, 30), dtype=bool)
    sparse_mask[np.arange(40), np.arange(40) % 30] = True  # density 1/30
    dense_mask = np.ones((5, 40), dtype=bool)
    t = Ticket(src, [sparse_mask, dense_mask])
    t.forward(np.zeros(30))
    ops = t._operators("auto")
    assert sp.issparse(ops["layers.0.weight"]) and ops["layers.0.weight"].nnz == 40
    assert isinstance(ops["layers.2.weight"], np.ndarray)
    assert SPARSE_DENSITY_THRESHOLD == pytest.approx(0.3)


def test_forward_block_diagonal_known_values():
    # Pensia-style: hidden unit k sees only input k // 2; output sums hidden units.
    w0 = np.kron(np.eye(2), np.array([[0.5], [-0.25]]))  # (4, 2) block-diagonal values
    src_w0 = w0 + np.kron(1 - np.eye(2), np.ones((2, 1)))  # off-block weights 1, pruned
    w1 = np.array([[2.0, -4.0, 1.0, 1.0]])
    src = MLP([src_w0, w1])
    t = Ticket(src, [np.kron(np.eye(2), np.ones((2, 1))).astype(bool), np.ones((1, 4), bool)])
    x = np.array([1.0, -2.0])
    # hidden = relu([0.5, -0.25, -1.0, 0.5]) = [0.5, 0, 0, 0.5]; out = 1.0 + 0.5
    np.testing.assert_array_equal(t.forward(x, method="sparse"), [1.5])
    np.testing.assert_array_equal(t.forward(x), [1.5])


def test_forward_cache_and_input_validation():
    t = random_ticket()
    x = np.random.default_rng(0).uniform(-1, 1, (3, 4))
    first = t.forward(x)
    np.testing.assert_array_equal(t.forward(x), first)
    assert t.forward(x[0]).shape == (3,)
    with pytest.raises(ShapeError, match="`x`"):
        t.forward(np.ones((2, 5)))
    with pytest.raises(InputError, match="`method`"):
        t.forward(x, method="csr")


def test_ticket_never_changes_source():
    t = random_ticket()
    before = [bits(p) for p in t.source.parameters()]
    t.forward(np.ones((2, 4)))
    t.network()
    assert [bits(p) for p in t.source.parameters()] == before
    with pytest.raises(ValueError):
        t.masks[0][0, 0] = True


# ---------------------------------------------------------------------- counts
@settings(max_examples=40, deadline=None)
@given(sst.tickets(bias=st.booleans()))
def test_kept_values_are_source_bits(t):
    kept = t.kept_values()
    assert len(kept) == len(t.masks)
    for v, p, m in zip(kept, t.source.parameters(), t.masks, strict=True):
        assert v.dtype == np.float64
        assert bits(v) == bits(p[m])
        assert v.size == int(m.sum())


@settings(max_examples=40, deadline=None)
@given(sst.tickets(bias=st.booleans()))
def test_density_arithmetic(t):
    kept = sum(int(m.sum()) for m in t.masks)
    total = sum(p.size for p in t.source.parameters())
    assert t.n_kept == kept
    assert t.n_source_params == total == t.source.n_params
    assert t.density == kept / total
    layer_sizes = np.zeros(t.source.depth)
    for layer, p in zip(t.source.parameter_layers(), t.source.parameters(), strict=True):
        layer_sizes[layer] += p.size
    dens = np.array(t.layer_density())
    assert dens.shape == (t.source.depth,)
    assert np.all((dens >= 0) & (dens <= 1))
    assert np.isclose((dens * layer_sizes).sum(), kept, rtol=0, atol=1e-9)


def test_density_known_example():
    src = MLP([np.ones((2, 3)), np.ones((1, 2))], [np.ones(2), None])
    masks = [
        np.array([[1, 0, 0], [1, 1, 0]], bool),
        np.array([True, False]),
        np.array([[False, False]]),
    ]
    t = Ticket(src, masks)
    assert t.n_kept == 4
    assert t.n_source_params == 10
    assert t.density == 0.4
    assert t.layer_density() == (4 / 8, 0.0)


# ---------------------------------------------------------------------- save / load
def assert_tickets_identical(a: Ticket, b: Ticket) -> None:
    assert a.source.widths == b.source.widths
    assert len(a.source.parameters()) == len(b.source.parameters())
    for p, q in zip(a.source.parameters(), b.source.parameters(), strict=True):
        assert p.dtype == q.dtype == np.float64 and bits(p) == bits(q)
    assert [bb is None for bb in a.source.biases] == [bb is None for bb in b.source.biases]
    for m, n in zip(a.masks, b.masks, strict=True):
        assert m.dtype == n.dtype == np.bool_ and m.shape == n.shape and np.array_equal(m, n)
    assert a.construction == b.construction
    assert dict(a.params) == dict(b.params) and a.params == b.params
    assert a.target_widths == b.target_widths
    assert a.layer_map == b.layer_map
    for x, y in ((a.weight_errors, b.weight_errors), (a.bias_errors, b.bias_errors)):
        if x is None:
            assert y is None
            continue
        assert len(x) == len(y)
        for e, f in zip(x, y, strict=True):
            if e is None:
                assert f is None
            else:
                assert e.shape == f.shape and bits(e) == bits(f)


@settings(max_examples=25, deadline=None)
@given(sst.tickets(bias=st.booleans(), metadata=True))
def test_save_load_round_trip_with_metadata(t):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ticket.npz")
        t.save(path)
        assert_tickets_identical(t, Ticket.load(path))


@settings(max_examples=25, deadline=None)
@given(sst.tickets(bias=st.booleans()))
def test_save_load_round_trip_plain(t):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t")  # no .npz suffix: written exactly there
        t.save(path)
        assert os.path.exists(path)
        back = Ticket.load(path)
        assert_tickets_identical(t, back)
        x = np.ones((2, t.source.widths[0]))
        assert bits(back.forward(x)) == bits(t.forward(x))


def test_save_file_layout_no_pickle_delta_encoded_kept(tmp_path):
    t = random_ticket((40, 300, 5), density=0.02,
                      params={"eps": 0.01, "n": np.int64(21), "w": (1, 2)})
    path = tmp_path / "t.npz"
    t.save(path)
    with np.load(path, allow_pickle=False) as f:
        assert f["__metadata__"].dtype == np.uint8
        assert f["kept_0"].dtype.kind == "u"
        assert f["kept_0"].size == t.kept["weights[0]"].size
        np.testing.assert_array_equal(np.cumsum(f["kept_0"], dtype=np.int64),
                                      t.kept["weights[0]"])
        for key in f.files:
            assert f[key].dtype != object
    back = Ticket.load(path)
    assert back.params == {"eps": 0.01, "n": 21, "w": [1, 2]}


def test_save_load_special_values(tmp_path):
    src = MLP([np.array([[-0.0, 5e-324, -1.5]])], [np.array([0.0])])
    t = Ticket(
        src,
        [np.array([[True, True, False]]), np.array([False])],
        params={"nested": {"a": [1.5, None, True]}, "big": 2**60, "tiny": 1e-310},
        target_widths=(3, 1),
        layer_map=((0,),),
        weight_errors=[np.array([[0.0, np.inf, 1e-17]])],
        bias_errors=[np.array([np.inf])],
    )
    t.save(tmp_path / "s.npz")
    back = Ticket.load(tmp_path / "s.npz")
    assert_tickets_identical(t, back)
    assert np.signbit(back.source.weights[0][0, 0])


def test_load_rejects_foreign_files(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.ones(3))
    with pytest.raises(InputError, match="`path`"):
        Ticket.load(tmp_path / "other.npz")
    with pytest.raises(InputError, match="`path`"):
        Ticket.load(tmp_path / "missing.npz")
    meta = np.frombuffer(b'{"format": "slth.Ticket", "version": 99}', dtype=np.uint8)
    np.savez(tmp_path / "future.npz", __metadata__=meta)
    with pytest.raises(InputError, match="version"):
        Ticket.load(tmp_path / "future.npz")


def test_pickle_round_trip_drops_operator_cache():
    t = random_ticket()
    x = np.ones((2, 4))
    y = t.forward(x)
    back = pickle.loads(pickle.dumps(t))
    assert "auto" not in back._cache
    assert_tickets_identical(t, back)
    assert bits(back.forward(x)) == bits(y)


# ---------------------------------------------------------------------- params, display
def test_params_are_frozen_json():
    t = random_ticket(params={"eps": np.float64(0.5), "shape": (2, 3), "flag": np.bool_(True)})
    assert isinstance(t.params, FrozenParams)
    assert t.params == {"eps": 0.5, "shape": [2, 3], "flag": True}
    assert type(t.params["eps"]) is float
    with pytest.raises(TypeError):
        t.params["eps"] = 1.0  # type: ignore[index]
    assert random_ticket().params == {}


def test_summary_and_repr():
    t = random_ticket(
        construction="pensia2020",
        params={"eps": 0.01},
        target_widths=(4, 3),
        layer_map=((0, 1, 2),),
        weight_errors=[np.full((3, 4), 0.002)],
    )
    text = t.summary()
    for piece in ("pensia2020", "density", "sparsity", "(4, 12, 9, 3)", "eps=0.01", "0.002"):
        assert piece in text
    assert f"n_kept={t.n_kept}" in repr(t)


# ---------------------------------------------------------------------- validation
SRC = MLP([np.ones((3, 2)), np.ones((1, 3))], [np.zeros(3), None])
GOOD = [np.ones((3, 2), bool), np.ones(3, bool), np.ones((1, 3), bool)]


def make(**overrides):
    kwargs = {"masks": GOOD}
    kwargs.update(overrides)
    return lambda: Ticket(SRC, **kwargs)


VALIDATION_CASES = [
    ("source-not-mlp", lambda: Ticket("net", GOOD), InputError, "`source`"),
    ("mask-count", make(masks=GOOD[:2]), ShapeError, "`masks`"),
    ("mask-shape", make(masks=[np.ones((2, 3), bool), *GOOD[1:]]), ShapeError, "`masks[0]`"),
    ("mask-bias-shape", make(masks=[GOOD[0], np.ones(2, bool), GOOD[2]]), ShapeError,
     "`masks[1]`"),
    ("mask-dtype-int", make(masks=[GOOD[0], GOOD[1], np.ones((1, 3), int)]), InputError,
     "`masks[2]`"),
    ("mask-dtype-float", make(masks=[np.ones((3, 2)), *GOOD[1:]]), InputError, "`masks[0]`"),
    ("masks-not-sequence", make(masks=np.ones((3, 2), bool)), InputError, "`masks`"),
    ("construction-type", make(construction=3), InputError, "`construction`"),
    ("params-not-json", make(params={"f": object()}), InputError, "`params`"),
    ("params-int-key", make(params={1: 2}), InputError, "`params`"),
    ("params-not-mapping", make(params=[1, 2]), InputError, "`params`"),
    ("target-widths-ends", make(target_widths=(3, 1)), ShapeError, "`target_widths`"),
    ("target-widths-zero", make(target_widths=(2, 0, 1)), InputError, "`target_widths`"),
    ("layer-map-range", make(layer_map=((0, 2),)), InputError, "`layer_map[0]`"),
    ("layer-map-order", make(layer_map=((1,), (0,))), InputError, "`layer_map`"),
    ("layer-map-empty-group", make(layer_map=((),)), InputError, "`layer_map[0]`"),
    ("layer-map-vs-target", make(target_widths=(2, 1), layer_map=((0,), (1,))), ShapeError,
     "`layer_map`"),
    ("weight-errors-shape", make(target_widths=(2, 1), weight_errors=[np.zeros((2, 1))]),
     ShapeError, "`weight_errors[0]`"),
    ("weight-errors-count", make(target_widths=(2, 1), weight_errors=[np.zeros((1, 2))] * 2),
     ShapeError, "`weight_errors`"),
    ("weight-errors-nan", make(weight_errors=[np.array([[np.nan]])]), InputError,
     "`weight_errors[0]`"),
    ("weight-errors-negative", make(weight_errors=[np.array([[-1.0]])]), InputError,
     "`weight_errors[0]`"),
    ("bias-errors-shape", make(target_widths=(2, 1), bias_errors=[np.zeros(2)]), ShapeError,
     "`bias_errors[0]`"),
    ("bias-errors-count", make(target_widths=(2, 1), bias_errors=[None, None]), ShapeError,
     "`bias_errors`"),
]


@pytest.mark.parametrize(
    "build, error, name", [c[1:] for c in VALIDATION_CASES], ids=[c[0] for c in VALIDATION_CASES]
)
def test_validation_errors(build, error, name):
    with pytest.raises(error) as info:
        build()
    assert isinstance(info.value, SLTHError)
    assert name in str(info.value)


def test_valid_metadata_accepted():
    t = Ticket(
        SRC,
        GOOD,
        target_widths=(2, 1),
        layer_map=((0, 1),),
        weight_errors=[np.zeros((1, 2))],
        bias_errors=[None],
    )
    assert t.mlp_layer_map == ((0, 1),)
    assert t.weight_errors[0].flags.writeable is False
