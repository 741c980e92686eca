"""Tests of slth.nets.MLP: forward pass against a plain loop, validation, random init."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tolerances import TOL

from slth.errors import InputError, ShapeError, SLTHError
from slth.nets import INITS, MLP
from slth.subset_sum import sample
from slth.testing import strategies as sst

# float64 numpy forward vs the plain reference loop: both sum the same products in
# different orders, so they agree to a few ulps of the magnitude network a(x).
# The relative tolerance comes from the suite's one table (tests/tolerances.py).
RTOL_REORDER = TOL[np.dtype(np.float64)]
ATOL_UNDERFLOW = 1e-300


def reference_forward(weights, biases, x):
    """Plain per-unit loop: h_i <- relu(sum_j W_ij h_j + b_i), no ReLU after the last layer."""
    x = np.asarray(x, dtype=np.float64)
    out = []
    for row in np.atleast_2d(x):
        h = [float(v) for v in row]
        for l, (w, b) in enumerate(zip(weights, biases, strict=True)):
            nxt = []
            for i in range(w.shape[0]):
                s = 0.0
                for j in range(w.shape[1]):
                    s += float(w[i, j]) * h[j]
                if b is not None:
                    s += float(b[i])
                if l < len(weights) - 1:
                    s = max(s, 0.0)
                nxt.append(s)
            h = nxt
        out.append(h)
    return np.array(out, dtype=np.float64).reshape(len(out), weights[-1].shape[0])


def magnitude(weights, biases, x):
    """Forward pass of |W|, |b| on |x|: the scale of rounding differences."""
    h = np.abs(np.atleast_2d(x))
    for w, b in zip(weights, biases, strict=True):
        h = h @ np.abs(w).T + (0 if b is None else np.abs(b))
    return h


@st.composite
def net_and_inputs(draw):
    net = draw(sst.mlps(bias=st.booleans()))
    x = draw(sst.unit_ball_inputs(net.widths[0], max_batch=5))
    return net, x


# ---------------------------------------------------------------------- forward
@settings(max_examples=60, deadline=None)
@given(net_and_inputs())
def test_forward_matches_plain_loop(case):
    net, x = case
    got = net.forward(x)
    ref = reference_forward(net.weights, net.biases, x)
    assert got.shape == ref.shape == (x.shape[0], net.widths[-1])
    tol = RTOL_REORDER * magnitude(net.weights, net.biases, x) + ATOL_UNDERFLOW
    assert np.all(np.abs(got - ref) <= tol)


def test_forward_known_values():
    # relu([1, -1]) = [1, 0]; then [1 1] . [1, 0] + 0.5 = 1.5; no ReLU at the output.
    net = MLP([np.eye(2), np.array([[1.0, 1.0], [-2.0, 0.0]])], [None, np.array([0.5, 0.0])])
    np.testing.assert_array_equal(net.forward(np.array([1.0, -1.0])), [1.5, -2.0])
    np.testing.assert_array_equal(net(np.array([[1.0, -1.0]])), [[1.5, -2.0]])


def test_forward_single_input_is_1d_and_matches_batch():
    net = MLP.random((4, 6, 3), rng=0, bias=True)
    x = np.random.default_rng(1).uniform(-1, 1, (5, 4))
    single = net.forward(x[2])
    assert single.shape == (3,)
    # BLAS may take a different summation path for one row than for a batch
    tol = RTOL_REORDER * magnitude(net.weights, net.biases, x[2])[0]
    assert np.all(np.abs(single - net.forward(x)[2]) <= tol)


def test_forward_does_not_modify_input_and_accepts_ints():
    net = MLP.random((3, 4, 2), rng=0, bias=True)
    x = np.array([[1, 0, -1]])
    before = x.copy()
    out = net.forward(x)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_allclose(out, net.forward(x.astype(float)), rtol=0, atol=0)


def test_last_layer_has_no_relu():
    net = MLP([-np.ones((1, 1))])
    assert net.forward(np.array([1.0]))[0] == -1.0


# ---------------------------------------------------------------------- structure
def test_shape_properties_and_parameter_order():
    w0, w1, w2 = np.ones((4, 3)), np.ones((5, 4)), np.ones((2, 5))
    b1 = np.zeros(5)
    net = MLP([w0, w1, w2], [None, b1, None])
    assert net.widths == (3, 4, 5, 2)
    assert net.depth == 3
    assert net.n_params == 12 + 20 + 5 + 10
    assert net.has_biases
    assert net.parameter_names() == ("layers.0.weight", "layers.2.weight", "layers.2.bias",
                                     "layers.4.weight")
    from slth.nets.mlp import resolve_name

    assert tuple(map(resolve_name, ("weights[0]", "weights[1]", "biases[1]", "weights[2]"))) \
        == net.parameter_names()
    assert net.parameter_layers() == (0, 1, 1, 2)
    params = net.parameters()
    assert [p.shape for p in params] == [(4, 3), (5, 4), (5,), (2, 5)]
    assert not MLP([w0]).has_biases
    assert MLP([w0]).biases == (None,)


def test_arrays_are_read_only_float64():
    w = np.arange(6, dtype=np.int64).reshape(2, 3)
    net = MLP([w])
    assert net.weights[0].dtype == np.float64
    with pytest.raises(ValueError):
        net.weights[0][0, 0] = 1.0
    # a float64 input is viewed, not copied; the caller's array stays writeable
    wf = np.ones((2, 3))
    MLP([wf])
    wf[0, 0] = 2.0


def test_frozen():
    net = MLP([np.ones((1, 1))])
    with pytest.raises(AttributeError):
        net.weights = ()


def test_spectral_norms():
    net = MLP.random((5, 7, 3), rng=3)
    expected = [np.linalg.norm(w, 2) for w in net.weights]
    np.testing.assert_allclose(net.spectral_norms(), expected, rtol=1e-12)
    diag = MLP([np.diag([3.0, -4.0])])
    np.testing.assert_allclose(diag.spectral_norms(), [4.0], rtol=1e-14)


def test_with_params_same_architecture():
    net = MLP.random((3, 4, 2), rng=0, bias=True)
    doubled = net.with_params([2 * p for p in net.parameters()])
    assert doubled.widths == net.widths
    for a, b in zip(doubled.parameters(), net.parameters(), strict=True):
        np.testing.assert_array_equal(a, 2 * b)
    partial = MLP([np.ones((2, 2)), np.ones((1, 2))], [np.zeros(2), None])
    assert partial.with_params(partial.parameters()).biases[1] is None


def test_repr_is_short():
    text = repr(MLP.random((300, 300, 2), rng=0))
    assert "widths=(300, 300, 2)" in text and len(text) < 120


# ---------------------------------------------------------------------- random
def test_random_reproducible_and_seed_dependent():
    a = MLP.random((4, 6, 2), rng=7, bias=True)
    b = MLP.random((4, 6, 2), rng=7, bias=True)
    c = MLP.random((4, 6, 2), rng=8, bias=True)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert p.tobytes() == q.tobytes()
    assert any(
        not np.array_equal(p, q) for p, q in zip(a.parameters(), c.parameters(), strict=True)
    )


def test_random_draw_order_is_w0_b0_w1_b1():
    net = MLP.random((3, 4, 2), rng=11, bias=True, init="normal", scale=0.5)
    gen = np.random.default_rng(11)
    expected = [
        sample("normal", (4, 3), rng=gen, scale=0.5),
        sample("normal", (4,), rng=gen, scale=0.5),
        sample("normal", (2, 4), rng=gen, scale=0.5),
        sample("normal", (2,), rng=gen, scale=0.5),
    ]
    for p, q in zip(net.parameters(), expected, strict=True):
        assert p.tobytes() == q.tobytes()


def test_random_advances_a_passed_generator():
    gen = np.random.default_rng(0)
    a = MLP.random((3, 3), rng=gen)
    b = MLP.random((3, 3), rng=gen)
    assert not np.array_equal(a.weights[0], b.weights[0])


@pytest.mark.parametrize("init", INITS)
def test_random_laws_respect_scale(init):
    scale = 0.25
    net = MLP.random((50, 400), rng=5, init=init, scale=scale)
    w = net.weights[0]
    if init in ("uniform", "product", "hyperbolic"):
        assert np.abs(w).max() <= scale
    if init == "uniform":
        # 20,000 U[-s, s] draws: max |w| within 1e-3 s of s (P(miss) ~ e^-20)
        assert np.abs(w).max() > scale * (1 - 1e-3)
    if init == "normal":
        # std of 20,000 N(0, s^2) draws is within 3% of s (about 6 standard errors)
        assert abs(w.std() / scale - 1) < 0.03


def test_random_without_bias_has_none():
    net = MLP.random((2, 3, 1), rng=0)
    assert net.biases == (None, None)
    assert net.n_params == 6 + 3


# ---------------------------------------------------------------------- validation
W2x3 = np.ones((2, 3))

VALIDATION_CASES = [
    ("layers-do-not-chain", lambda: MLP([np.ones((4, 3)), np.ones((2, 5))]), ShapeError,
     "`weights[1]`"),
    ("nan-weight", lambda: MLP([np.array([[np.nan, 1.0]])]), InputError, "`weights[0]`"),
    ("inf-weight", lambda: MLP([np.ones((2, 2)), np.array([[np.inf, 1.0]])]), InputError,
     "`weights[1]`"),
    ("1d-weight", lambda: MLP([np.ones(3)]), ShapeError, "`weights[0]`"),
    ("empty-weight", lambda: MLP([np.ones((0, 3))]), ShapeError, "`weights[0]`"),
    ("complex-weight", lambda: MLP([np.ones((2, 2), dtype=complex)]), InputError,
     "`weights[0]`"),
    ("no-layers", lambda: MLP([]), InputError, "`weights`"),
    ("weights-not-sequence", lambda: MLP(np.ones((2, 2))), InputError, "`weights`"),
    ("wrong-bias-shape", lambda: MLP([W2x3], [np.ones(3)]), ShapeError, "`biases[0]`"),
    ("2d-bias", lambda: MLP([W2x3], [np.ones((2, 1))]), ShapeError, "`biases[0]`"),
    ("nan-bias", lambda: MLP([W2x3], [np.array([0.0, np.nan])]), InputError, "`biases[0]`"),
    ("bias-count", lambda: MLP([W2x3], [None, None]), ShapeError, "`biases`"),
    ("x-wrong-width", lambda: MLP([W2x3]).forward(np.ones((4, 2))), ShapeError, "`x`"),
    ("x-3d", lambda: MLP([W2x3]).forward(np.ones((1, 1, 3))), ShapeError, "`x`"),
    ("x-nan", lambda: MLP([W2x3]).forward(np.array([1.0, np.nan, 0.0])), InputError, "`x`"),
    ("x-strings", lambda: MLP([W2x3]).forward(np.array(["a", "b", "c"])), InputError, "`x`"),
    ("random-widths-short", lambda: MLP.random([3], rng=0), InputError, "`widths`"),
    ("random-widths-zero", lambda: MLP.random([3, 0], rng=0), InputError, "`widths`"),
    ("random-widths-float", lambda: MLP.random([3, 2.5], rng=0), InputError, "`widths`"),
    ("random-init", lambda: MLP.random([3, 2], rng=0, init="xavier"), InputError, "`init`"),
    ("random-scale", lambda: MLP.random([3, 2], rng=0, scale=-1.0), InputError, "`scale`"),
    ("random-scale-nan", lambda: MLP.random([3, 2], rng=0, scale=np.nan), InputError,
     "`scale`"),
    ("random-bias", lambda: MLP.random([3, 2], rng=0, bias="yes"), InputError, "`bias`"),
    ("random-rng", lambda: MLP.random([3, 2], rng=-1), InputError, "`rng`"),
    ("with-params-count", lambda: MLP([W2x3]).with_params([W2x3, W2x3]), ShapeError,
     "`params`"),
    ("with-params-shape", lambda: MLP([W2x3]).with_params([np.ones((3, 2))]), ShapeError,
     "`params`"),
]


@pytest.mark.parametrize(
    "make, error, name", [c[1:] for c in VALIDATION_CASES], ids=[c[0] for c in VALIDATION_CASES]
)
def test_validation_errors(make, error, name):
    with pytest.raises(error) as info:
        make()
    assert isinstance(info.value, SLTHError)
    assert name in str(info.value)


def test_error_message_names_received_shape():
    with pytest.raises(ShapeError, match=r"received shape \(2, 5\)"):
        MLP([np.ones((4, 3)), np.ones((2, 5))])


# ---------------------------------------------------------------------- imports
def test_import_slth_does_not_import_torch():
    code = (
        "import sys; import slth, slth.nets, slth.ticket; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
