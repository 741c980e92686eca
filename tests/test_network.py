"""Tests of slth.nets.base / layers / io: typed-layer networks, their vjp, saving, the MLP bridge.

Two layer types are defined here, outside slth (:class:`Scale`, :class:`Shift`): the
growth test shows that a layer type registered by user code runs, differentiates,
fingerprints, saves and loads with no library change.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import assume, given
from hypothesis import strategies as st
from tolerances import TOL

from slth.errors import InputError, ShapeError, SLTHError
from slth.nets import MLP
from slth.nets.base import (
    Layer,
    Network,
    Residual,
    layer_types,
    register_layer,
    registered_name,
)
from slth.nets.io import (
    FORMAT_VERSION,
    load_network,
    mlp_from_network,
    network_from_mlp,
    save_network,
)
from slth.nets.layers import Dense, ReLU
from slth.testing import strategies as sst

F64 = np.dtype(np.float64)
#: forward/vjp against references that sum in another order: a few ulps of values of order 1
RTOL = TOL[F64]
#: central finite differences of piecewise-linear networks are exact up to rounding, which
#: the step divides: error ~ TOL / step
FD_STEP = 1e-6
FD_TOL = TOL[F64] / FD_STEP


# ====================================================================== layers defined here
@register_layer("tests.scale")
@dataclasses.dataclass(frozen=True)
class Scale(Layer):
    """Elementwise ``x -> gain * s * x`` with a learned vector ``s`` of shape ``(size,)``."""

    size: int
    gain: float = 1.0

    def param_specs(self) -> Mapping[str, tuple[int, ...]]:
        return {"scale": (self.size,)}

    def declared_input_shape(self) -> tuple[int, ...]:
        return (self.size,)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if tuple(input_shape) != (self.size,):
            raise ShapeError(f"Scale({self.size}) takes ({self.size},); received {input_shape}")
        return (self.size,)

    def apply(self, params: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
        return x * (self.gain * params["scale"])

    def vjp(self, params: Mapping[str, Any], x: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
        return grad_out * (self.gain * params["scale"])


@register_layer("tests.shift")
@dataclasses.dataclass(frozen=True)
class Shift(Layer):
    """Parameter-free ``x -> x + offset`` (a float field, any shape)."""

    offset: float

    def apply(self, params: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
        return x + self.offset

    def vjp(self, params: Mapping[str, Any], x: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
        return grad_out.copy()


@dataclasses.dataclass(frozen=True)
class Unregistered(Layer):
    """A valid layer type nobody registered: runs, cannot be saved."""

    def apply(self, params, x):
        return -x

    def vjp(self, params, x, grad_out):
        return -grad_out


@dataclasses.dataclass(frozen=True)
class WrongShape(Layer):
    """A buggy layer whose apply ignores its own output_shape."""

    def apply(self, params, x):
        return x[:, :1]

    def vjp(self, params, x, grad_out):
        return grad_out


# ====================================================================== strategies
def _block(draw: st.DrawFn, width: int, depth: int, keep: bool) -> tuple[list[Any], int]:
    """A list of layers from ``width``; ``keep``: ends at ``width`` again (a residual body)."""
    items: list[Any] = []
    w = width
    n = draw(st.integers(1, 4))
    for _ in range(n):
        kind = draw(st.sampled_from(
            ["dense", "dense", "relu", "scale", "shift"] + (["residual"] if depth > 0 else [])
        ))
        if kind == "dense":
            w2 = draw(st.integers(1, 5))
            items.append(Dense(w, w2, bias=draw(st.booleans())))
            w = w2
        elif kind == "relu":
            items.append(ReLU())
        elif kind == "scale":
            items.append(Scale(w, gain=draw(st.sampled_from([1.0, -0.5, 2.0]))))
        elif kind == "shift":
            items.append(Shift(draw(st.sampled_from([0.0, 0.25, -1.5]))))
        else:
            body, _ = _block(draw, w, depth - 1, keep=True)
            items.append(Residual(body))
    if keep and w != width:
        items.append(Dense(w, width, bias=draw(st.booleans())))
    if draw(st.booleans()):  # user names instead of positions
        items = [(f"l{i}_{type(layer).__name__.lower()}", layer) for i, layer in enumerate(items)]
    return items, w


@st.composite
def layer_lists(draw: st.DrawFn, max_depth: int = 2) -> tuple[list[Any], int]:
    """Small sequential Dense/ReLU/Scale/Shift/Residual stacks starting with a Dense."""
    d_in = draw(st.integers(1, 4))
    first = Dense(d_in, draw(st.integers(1, 5)), bias=draw(st.booleans()))
    rest, _ = _block(draw, first.d_out, max_depth, keep=False)
    if rest and isinstance(rest[0], tuple):
        return [("first", first), *rest], d_in
    return [first, *rest], d_in


@st.composite
def networks(draw: st.DrawFn, max_depth: int = 2) -> Network:
    """Random networks of :func:`layer_lists`, parameters U[-1, 1] from a drawn seed."""
    layers, _ = draw(layer_lists(max_depth))
    return Network.random(layers, rng=draw(st.integers(0, 2**32 - 1)))


@st.composite
def nets_and_inputs(draw: st.DrawFn, max_batch: int = 5) -> tuple[Network, np.ndarray]:
    net = draw(networks())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.uniform(-1.0, 1.0, (draw(st.integers(1, max_batch)), *net.input_shape))
    return net, x


# ====================================================================== references
def reference_forward(net: Network, x: np.ndarray) -> np.ndarray:
    """Plain numpy, written from the naming scheme alone (einsum, no shared code)."""

    def run(named, prefix: str, h: np.ndarray) -> np.ndarray:
        for name, layer in named:
            path = f"{prefix}{name}"
            if isinstance(layer, Residual):
                h = h + run(layer.body, f"{path}.body.", h)
            elif isinstance(layer, Dense):
                h = np.einsum("oi,bi->bo", net.params[f"{path}.weight"], h)
                if layer.bias:
                    h = h + net.params[f"{path}.bias"][None, :]
            elif isinstance(layer, ReLU):
                h = np.where(h > 0, h, 0.0)
            elif isinstance(layer, Scale):
                h = layer.gain * net.params[f"{path}.scale"][None, :] * h
            elif isinstance(layer, Shift):
                h = h + layer.offset
            else:  # pragma: no cover
                raise AssertionError(layer)
        return h

    return run(net.layers, "layers.", np.asarray(x, dtype=np.float64))


def central_difference(net: Network, x: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, bool]:
    """Central difference of f along v per row, and whether no kink lies within the step."""
    fp, f0, fm = (net.forward(x + t * FD_STEP * v) for t in (1, 0, -1))
    # piecewise linear: both one-sided slopes agree unless the step crosses a kink
    smooth = bool(np.allclose(fp - f0, f0 - fm, rtol=0.0, atol=FD_TOL * FD_STEP * 1e3))
    return (fp - fm) / (2 * FD_STEP), smooth


def fd_directional(net: Network, x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """:func:`central_difference` in a property: examples with a kink in the step are skipped."""
    slope, smooth = central_difference(net, x, v)
    assume(smooth)
    return slope


def scale_of(a: np.ndarray) -> float:
    return max(1.0, float(np.max(np.abs(a), initial=0.0)))


# ====================================================================== forward and vjp
@given(nets_and_inputs())
def test_forward_matches_plain_numpy_reference(case):
    net, x = case
    y = net.forward(x)
    ref = reference_forward(net, x)
    assert y.shape == (x.shape[0], *net.output_shape) and y.dtype == F64
    np.testing.assert_allclose(y, ref, rtol=0, atol=RTOL * scale_of(ref) * 10)
    # one example without a batch axis
    np.testing.assert_array_equal(net.forward(x[0]), net.forward(x[:1])[0])


@given(nets_and_inputs(), st.integers(0, 2**32 - 1))
def test_vjp_matches_finite_differences(case, seed):
    net, x = case
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(x.shape[0], *net.output_shape))
    v = rng.normal(size=x.shape)
    g = net.vjp(x, u)
    assert g.shape == x.shape and g.dtype == F64
    lhs = np.sum(g * v, axis=1)  # <J^T u, v>
    rhs = np.sum(u * fd_directional(net, x, v), axis=1)  # <u, J v>
    tol = FD_TOL * scale_of(u) * scale_of(v) * 100
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=tol * max(1.0, scale_of(rhs)))


@given(nets_and_inputs())
def test_linearize_reuses_its_forward(case):
    net, x = case
    lin = net.linearize(x)
    np.testing.assert_array_equal(lin.output, net.forward(x))
    assert not lin.output.flags.writeable
    u = np.ones((x.shape[0], *net.output_shape))
    np.testing.assert_array_equal(lin.vjp(u), lin.vjp(u))
    np.testing.assert_array_equal(lin.vjp(u), net.vjp(x, u))
    one = net.linearize(x[0])
    np.testing.assert_array_equal(one.vjp(u[0]), net.vjp(x[:1], u[:1])[0])
    with pytest.raises(ShapeError, match=r"`grad_out` must have shape"):
        lin.vjp(u[:, :0] if u.shape[1] > 1 else np.ones((x.shape[0] + 1, *net.output_shape)))


@given(st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_residual_alone_equals_residual_in_a_network(d, seed):
    block = Residual([Dense(d, 3), ReLU(), Dense(3, d)])
    net = Network.random([block], rng=seed)
    local = {k.removeprefix("layers.0."): v for k, v in net.params.items()}
    x = np.random.default_rng(seed).uniform(-1, 1, (4, d))
    u = np.random.default_rng(seed + 1).normal(size=(4, d))
    np.testing.assert_array_equal(block.apply(local, x), net.forward(x))
    np.testing.assert_array_equal(block.vjp(local, x, u), net.vjp(x, u))
    assert list(block.param_specs()) == ["body.0.weight", "body.0.bias", "body.2.weight",
                                         "body.2.bias"]


def test_relu_derivative_at_zero_is_zero():
    net = Network([ReLU()], {}, input_shape=(3,))
    x = np.array([[-1.0, 0.0, 2.0]])
    np.testing.assert_array_equal(net.vjp(x, np.ones((1, 3))), [[0.0, 0.0, 1.0]])


# ====================================================================== naming scheme
def test_parameter_names_follow_the_documented_scheme():
    net = Network.random(
        [Dense(3, 4), ReLU(), Residual([Dense(4, 4, bias=False), Residual([Scale(4)])]),
         ("head", Dense(4, 2))],
        rng=0,
    )
    assert list(net.param_specs().items()) == [
        ("layers.0.weight", (4, 3)),
        ("layers.0.bias", (4,)),
        ("layers.2.body.0.weight", (4, 4)),
        ("layers.2.body.1.body.0.scale", (4,)),
        ("layers.head.weight", (2, 4)),
        ("layers.head.bias", (2,)),
    ]
    assert list(net.params) == list(net.param_specs())
    assert net.n_params == 12 + 4 + 16 + 4 + 8 + 2
    assert [p for p, _ in net.named_layers()] == [
        "layers.0", "layers.1", "layers.2", "layers.2.body.0", "layers.2.body.1",
        "layers.2.body.1.body.0", "layers.head",
    ]
    assert net.input_shape == (3,) and net.output_shape == (2,)
    assert net.layers[0] == ("0", Dense(3, 4))


def test_random_draws_in_parameter_order_like_mlp_random():
    for law in ("uniform", "normal"):
        mlp = MLP.random([5, 4, 3, 2], rng=7, init=law, scale=0.5, bias=True)
        layers = [Dense(5, 4), ReLU(), Dense(4, 3), ReLU(), Dense(3, 2)]
        net = Network.random(layers, rng=7, law=law, scale=0.5)
        assert net.fingerprint() == network_from_mlp(mlp).fingerprint()
    gen = np.random.default_rng(3)
    a = Network.random([Dense(2, 2)], rng=gen)
    b = Network.random([Dense(2, 2)], rng=gen)  # the caller's generator advances
    assert a.fingerprint() != b.fingerprint()
    assert Network.random([Dense(2, 2)], rng=3).fingerprint() == a.fingerprint()
    with pytest.raises(InputError, match="`law` must be one of"):
        Network.random([Dense(2, 2)], rng=0, law="cauchy")
    with pytest.raises(InputError, match="`scale` must be a finite number > 0"):
        Network.random([Dense(2, 2)], rng=0, scale=0.0)
    with pytest.raises(InputError, match="`rng`"):
        Network.random([Dense(2, 2)], rng=-1)


# ====================================================================== sparse Dense
def _masked(net: Network, rng: np.random.Generator, density: float) -> dict[str, np.ndarray]:
    return {k: np.where(rng.random(v.shape) < density, v, 0.0)
            for k, v in net.params.items() if k.endswith(".weight")}


@given(nets_and_inputs(), st.floats(0.0, 1.0), st.sampled_from(["csr", "csc", "coo"]),
       st.integers(0, 2**32 - 1))
def test_sparse_dense_weights_equal_dense_ones(case, density, fmt, seed):
    net, x = case
    rng = np.random.default_rng(seed)
    dense = _masked(net, rng, density)
    sparse = {k: sp.csr_array(v).asformat(fmt) for k, v in dense.items()}
    yd, ys = net.forward(x, params=dense), net.forward(x, params=sparse)
    np.testing.assert_allclose(ys, yd, rtol=0, atol=RTOL * scale_of(yd) * 10)
    u = rng.normal(size=yd.shape)
    gd, gs = net.vjp(x, u, params=dense), net.vjp(x, u, params=sparse)
    np.testing.assert_allclose(gs, gd, rtol=0, atol=RTOL * scale_of(gd) * scale_of(u) * 10)
    # masked forward == forward of the network holding the masked arrays
    np.testing.assert_array_equal(yd, net.with_params(dense).forward(x))
    np.testing.assert_array_equal(net.with_params(sparse).forward(x), yd)


@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_sparse_equals_dense_bit_for_bit_on_exact_arithmetic(d_in, d_out, batch, seed):
    # small integers: every product and partial sum is exact, in any order
    rng = np.random.default_rng(seed)
    w = rng.integers(-3, 4, (d_out, d_in)).astype(np.float64)
    w[rng.random(w.shape) < 0.5] = 0.0
    b = rng.integers(-3, 4, d_out).astype(np.float64)
    net = Network([Dense(d_in, d_out), ReLU(), Dense(d_out, 2, bias=False)],
                  {"layers.0.weight": w, "layers.0.bias": b,
                   "layers.2.weight": rng.integers(-3, 4, (2, d_out)).astype(np.float64)})
    x = rng.integers(-3, 4, (batch, d_in)).astype(np.float64)
    u = rng.integers(-3, 4, (batch, 2)).astype(np.float64)
    ws = sp.csr_matrix(w)  # the legacy matrix class too
    np.testing.assert_array_equal(net.forward(x, params={"layers.0.weight": ws}), net.forward(x))
    np.testing.assert_array_equal(net.vjp(x, u, params={"layers.0.weight": ws}), net.vjp(x, u))
    layer = Dense(d_in, d_out)
    np.testing.assert_array_equal(layer.apply({"weight": ws, "bias": b}, x),
                                  layer.apply({"weight": w, "bias": b}, x))


def test_sparse_refused_where_a_layer_does_not_take_it():
    net = Network.random([Dense(2, 3), Scale(3)], rng=0)
    with pytest.raises(InputError, match=r"`params\['layers.1.scale'\]`.*must be a dense array"):
        net.forward(np.zeros((1, 2)), params={"layers.1.scale": sp.csr_array(np.ones((1, 3)))})
    with pytest.raises(InputError, match=r"`params\['layers.0.weight'\]`.*dense array"):
        Network(net.layers, {**net.params, "layers.0.weight": sp.csr_array(np.ones((3, 2)))})
    with pytest.raises(ShapeError, match=r"must have shape \(3, 2\); received a sparse matrix "
                                         r"of shape \(2, 3\)"):
        net.forward(np.zeros((1, 2)), params={"layers.0.weight": sp.csr_array(np.ones((2, 3)))})
    bad = sp.csr_array(np.array([[np.nan, 1.0], [0, 0], [0, 0]]))
    with pytest.raises(InputError, match="must be finite"):
        net.forward(np.zeros((1, 2)), params={"layers.0.weight": bad})


# ====================================================================== validation
def _net() -> Network:
    return Network.random([Dense(2, 3), ReLU(), Dense(3, 1, bias=False)], rng=0)


def test_parameter_validation_names_parameter_expected_and_received():
    net = _net()
    params = dict(net.params)
    with pytest.raises(ShapeError) as info:
        Network(net.layers, {**params, "layers.0.weight": np.zeros((2, 3))})
    msg = str(info.value)
    assert "layers.0.weight" in msg and "(3, 2)" in msg and "received shape (2, 3)" in msg
    assert "\n" not in msg
    missing = {k: v for k, v in params.items() if k != "layers.0.bias"}
    with pytest.raises(InputError, match=r"lacks 'layers.0.bias'.*shape \(3,\)"):
        Network(net.layers, missing)
    with pytest.raises(InputError, match=r"'layers.2.bias' that no layer declares"):
        Network(net.layers, {**params, "layers.2.bias": np.zeros(1)})
    with pytest.raises(InputError, match=r"`params\['layers.2.weight'\]`.*must be finite; "
                                         r"received 1 NaN"):
        Network(net.layers, {**params, "layers.2.weight": np.array([[0.0, np.nan, 1.0]])})
    with pytest.raises(InputError, match=r"`params\['layers.0.bias'\]`.*real numbers"):
        Network(net.layers, {**params, "layers.0.bias": np.array(["a", "b", "c"])})
    with pytest.raises(InputError, match="`params` must be a mapping"):
        Network(net.layers, list(params.values()))
    with pytest.raises(ShapeError, match=r"`params\['layers.0.weight'\]`"):
        net.forward(np.zeros((1, 2)), params={"layers.0.weight": np.zeros(6)})
    with pytest.raises(InputError, match="no layer declares"):
        net.with_params({"layers.1.weight": np.zeros((3, 3))})
    # all of them are SLTHErrors
    with pytest.raises(SLTHError):
        Network(net.layers, {})


def test_layer_validation():
    with pytest.raises(ShapeError, match=r"layer `layers.1` \(Dense\(4 -> 2\)\).*\(4,\).*\(3,\)"):
        Network.random([Dense(2, 3), Dense(4, 2)], rng=0)
    with pytest.raises(ShapeError, match=r"`layers.1` \(Residual\).*keep the shape.*\(3,\).*"
                                         r"\(5,\)"):
        Network.random([Dense(2, 3), Residual([Dense(3, 5)])], rng=0)
    with pytest.raises(ShapeError, match="keep the shape"):
        Residual([Dense(3, 5)]).output_shape((3,))
    with pytest.raises(InputError, match="names must be unique; 'a' appears twice"):
        Network.random([("a", Dense(2, 2)), ("a", Dense(2, 2))], rng=0)
    with pytest.raises(InputError, match=r"no dots"):
        Network.random([("a.b", Dense(2, 2))], rng=0)
    with pytest.raises(InputError, match=r"instance of slth.nets.Layer"):
        Network.random([Dense(2, 2), "relu"], rng=0)
    with pytest.raises(InputError, match="at least one layer"):
        Network((), {})
    with pytest.raises(InputError, match="at least one layer"):
        Residual(())
    with pytest.raises(InputError, match="`input_shape` must be given"):
        Network([ReLU()], {})
    with pytest.raises(InputError, match="`d_in` must be an int >= 1; received 0"):
        Dense(0, 2)
    with pytest.raises(InputError, match="`bias` must be a bool"):
        Dense(1, 2, bias=1)
    with pytest.raises(ShapeError, match=r"layer `layers.0` \(WrongShape\(\)\).apply returned"):
        Network([WrongShape()], {}, input_shape=(3,)).forward(np.zeros((2, 3)))


def test_input_validation():
    net = _net()
    with pytest.raises(ShapeError, match=r"`x` must have shape \(batch, 2\) or \(2,\); "
                                         r"received shape \(4, 3\)"):
        net.forward(np.zeros((4, 3)))
    with pytest.raises(InputError, match="`x` must be finite"):
        net.forward(np.array([np.inf, 0.0]))
    with pytest.raises(InputError, match="`x` must hold real numbers"):
        net.vjp(np.array(["a", "b"]), np.zeros(1))
    with pytest.raises(ShapeError, match=r"`grad_out` must have shape \(4, 1\)"):
        net.vjp(np.zeros((4, 2)), np.zeros((4, 2)))
    with pytest.raises(InputError, match="`grad_out` must be finite"):
        net.vjp(np.zeros(2), np.array([np.nan]))
    # several input dimensions: batch first
    img = Network([ReLU(), Shift(1.0)], {}, input_shape=(2, 3))
    x = np.arange(-6.0, 6.0).reshape(2, 2, 3)
    np.testing.assert_array_equal(img.forward(x), np.maximum(x, 0) + 1)
    np.testing.assert_array_equal(img.forward(x[0]), np.maximum(x[0], 0) + 1)
    np.testing.assert_array_equal(img.vjp(x, np.ones_like(x)), (x > 0).astype(float))


def test_params_are_read_only_float64_views():
    w = np.ones((3, 2))
    net = Network([Dense(2, 3, bias=False)], {"layers.0.weight": w})
    stored = net.params["layers.0.weight"]
    assert stored.dtype == F64 and not stored.flags.writeable and np.shares_memory(stored, w)
    with pytest.raises(ValueError):
        stored[0, 0] = 2.0
    with pytest.raises(TypeError):
        net.params["layers.0.weight"] = w  # type: ignore[index]
    ints = Network([Dense(2, 3, bias=False)], {"layers.0.weight": np.ones((3, 2), dtype=int)})
    assert ints.params["layers.0.weight"].dtype == F64
    with pytest.raises(dataclasses.FrozenInstanceError):
        net.layers = ()  # type: ignore[misc]


# ====================================================================== registry
def test_registry():
    types_ = layer_types()
    assert types_["dense"] is Dense and types_["relu"] is ReLU and types_["tests.scale"] is Scale
    assert registered_name(Dense) == "dense" and registered_name(Residual) == "residual"
    assert registered_name(Unregistered) is None

    class DenseChild(Dense):
        pass

    assert registered_name(DenseChild) is None  # not inherited
    register_layer("tests.scale")(Scale)  # idempotent
    with pytest.raises(InputError, match="already registered for"):
        register_layer("dense")(Unregistered)
    with pytest.raises(InputError, match=r"already registered as 'tests\.scale'"):
        register_layer("tests.scale2")(Scale)
    with pytest.raises(InputError, match="reserved"):
        register_layer("residual")
    with pytest.raises(InputError, match="lower-case words"):
        register_layer("Bad Name")
    with pytest.raises(InputError, match="frozen dataclass"):

        @register_layer("tests.mutable")
        @dataclasses.dataclass
        class Mutable(Layer):
            def apply(self, params, x):
                return x

            def vjp(self, params, x, grad_out):
                return grad_out

    with pytest.raises(InputError, match=r"subclass of slth\.nets\.Layer"):
        register_layer("tests.notalayer")(dict)
    assert "tests.mutable" not in layer_types()


# ====================================================================== fingerprints
@given(networks())
def test_fingerprint_tracks_architecture_and_every_bit(net):
    fp = net.fingerprint()
    assert fp.startswith("sha256:") and len(fp) == len("sha256:") + 64
    copy = Network(net.layers, {k: v.copy() for k, v in net.params.items()}, net.input_shape)
    assert copy.fingerprint() == fp
    key = next(iter(net.params))
    bumped = net.params[key].copy()
    bumped.flat[0] = np.nextafter(bumped.flat[0], np.inf)
    assert net.with_params({key: bumped}).fingerprint() != fp


def test_fingerprint_sees_parameter_free_layers_and_fields():
    base = [Dense(2, 2), None, Dense(2, 1)]
    params = dict(Network.random([Dense(2, 2), ReLU(), Dense(2, 1)], rng=0).params)
    prints = set()
    for mid in (ReLU(), Shift(0.5), Shift(0.25), Unregistered()):
        prints.add(Network([base[0], mid, base[2]], params).fingerprint())
    assert len(prints) == 4
    renamed = Network([("0", base[0]), ("1", ReLU()), ("x", base[2])],
                      {k.replace("layers.2", "layers.x"): v for k, v in params.items()})
    assert renamed.fingerprint() not in prints


# ====================================================================== save / load
def _roundtrip(net: Network, **kw: Any) -> Network:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "net.npz")
        net.save(path, **kw)
        return Network.load(path)


@given(networks(), st.booleans())
def test_save_load_round_trip_bit_for_bit(net, compress):
    back = _roundtrip(net, compress=compress)
    assert back.layers == net.layers and back.input_shape == net.input_shape
    assert list(back.params) == list(net.params)
    for k, v in net.params.items():
        assert back.params[k].tobytes() == v.tobytes() and back.params[k].dtype == F64
        assert not back.params[k].flags.writeable
    assert back.fingerprint() == net.fingerprint()
    x = np.linspace(-1, 1, 3 * int(np.prod(net.input_shape))).reshape(3, *net.input_shape)
    np.testing.assert_array_equal(back.forward(x), net.forward(x))


def test_save_writes_exactly_at_path_and_no_pickle(tmp_path):
    net = _net()
    path = tmp_path / "target"  # no suffix appended
    save_network(net, path)
    assert path.exists() and not (tmp_path / "target.npz").exists()
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(bytes(f["__slth_network__"]).decode())
        assert set(f.files) == {"__slth_network__", *net.params}
    assert meta["format"] == "slth.Network" and meta["version"] == FORMAT_VERSION
    assert meta["layers"][0] == {"name": "0", "type": "dense",
                                 "fields": {"d_in": 2, "d_out": 3, "bias": True}}
    assert load_network(str(path)).fingerprint() == net.fingerprint()


def test_unsavable_networks(tmp_path):
    net = Network([Dense(2, 2), Unregistered()], Network.random([Dense(2, 2)], rng=0).params)
    with pytest.raises(InputError, match=r"layer `layers.1` of type .*Unregistered cannot be "
                                         r"saved: register its type"):
        net.save(tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()
    with pytest.raises(InputError, match=r"`net` must be a slth\.nets\.Network"):
        save_network("net", tmp_path / "y.npz")  # type: ignore[arg-type]


def _write_npz(path, **arrays):
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _meta(**over: Any) -> np.ndarray:
    meta = {"format": "slth.Network", "version": FORMAT_VERSION, "slth_version": "0.1.0",
            "input_shape": [2], "layers": [{"name": "0", "type": "dense",
                                            "fields": {"d_in": 2, "d_out": 1, "bias": False}}],
            "params": ["layers.0.weight"]}
    meta.update(over)
    return np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)


JUNK = {
    "missing": None,
    "text": b"hello, not a network\n",
    "empty": b"",
    "pickle": pickle.dumps({"layers.0.weight": np.zeros((1, 2))}),
    "npy": "npy",
    "no meta": {"layers.0.weight": np.zeros((1, 2))},
    "object meta": {"__slth_network__": np.array([{"a": 1}], dtype=object)},
    "object param": {"__slth_network__": _meta(),
                     "layers.0.weight": np.array([[None, 1]], dtype=object)},
    "bad json": {"__slth_network__": np.frombuffer(b"{not json", dtype=np.uint8)},
    "ticket": {"__slth_network__": _meta(format="slth.Ticket")},
    "version": {"__slth_network__": _meta(version=99), "layers.0.weight": np.zeros((1, 2))},
    "unknown type": {"__slth_network__": _meta(layers=[{"name": "0", "type": "mylib.conv",
                                                        "fields": {}}])},
    "bad fields": {"__slth_network__": _meta(layers=[{"name": "0", "type": "dense",
                                                      "fields": {"d_in": -2, "d_out": 1}}])},
    "unknown field": {"__slth_network__": _meta(layers=[{"name": "0", "type": "dense",
                                                         "fields": {"width": 3}}])},
    "no array": {"__slth_network__": _meta()},
    "int array": {"__slth_network__": _meta(), "layers.0.weight": np.zeros((1, 2), dtype=int)},
    "wrong shape": {"__slth_network__": _meta(), "layers.0.weight": np.zeros((2, 2))},
    "missing list": {"__slth_network__": _meta(params=None)},
}


@pytest.mark.parametrize("kind", list(JUNK))
def test_junk_files_fail_with_one_line(tmp_path, kind):
    path = tmp_path / "junk.npz"
    content = JUNK[kind]
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "npy":
        with open(path, "wb") as fh:
            np.save(fh, np.zeros(3))
    elif isinstance(content, dict):
        _write_npz(path, **content)
    with pytest.raises(InputError) as info:
        load_network(path)
    msg = str(info.value)
    assert "\n" not in msg and "allow_pickle" not in msg and msg.startswith("`path`")
    assert info.value.__cause__ is None or kind == "missing"
    expected = {
        "missing": "does not exist", "version": "format version 1", "ticket": "'slth.Ticket'",
        "unknown type": "'mylib.conv', which is not registered", "no array": "lacks the parameter",
        "int array": "stored as float64", "wrong shape": "received shape (2, 2)",
        "bad fields": "`d_in` must be an int >= 1", "unknown field": "cannot be rebuilt",
    }
    if kind in expected:
        assert expected[kind] in msg


def test_load_refuses_a_directory(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        Network.load(tmp_path)


# ====================================================================== growth test
def test_a_layer_type_defined_in_a_test_file_runs_differentiates_and_saves(tmp_path):
    layers = [
        Dense(3, 4),
        Scale(4, gain=-0.5),
        ReLU(),
        ("block", Residual([Scale(4), Shift(0.25), Dense(4, 4, bias=False)])),
        Shift(-1.5),
        Dense(4, 2),
    ]
    net = Network.random(layers, rng=11)
    assert "layers.1.scale" in net.params and "layers.block.body.0.scale" in net.params
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (6, 3))
    y = net.forward(x)
    np.testing.assert_allclose(y, reference_forward(net, x), rtol=0, atol=10 * RTOL)
    u, v = rng.normal(size=y.shape), rng.normal(size=x.shape)
    lhs = np.sum(net.vjp(x, u) * v, axis=1)
    slope, smooth = central_difference(net, x, v)
    assert smooth
    rhs = np.sum(u * slope, axis=1)
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=100 * FD_TOL)
    path = tmp_path / "grown.npz"
    net.save(path)
    back = Network.load(path)
    assert back.layers == net.layers and isinstance(back.layers[1][1], Scale)
    assert back.layers[1][1].gain == -0.5
    assert back.fingerprint() == net.fingerprint()
    for k in net.params:
        assert back.params[k].tobytes() == net.params[k].tobytes()
    np.testing.assert_array_equal(back.forward(x), y)
    np.testing.assert_array_equal(back.vjp(x, u), net.vjp(x, u))


# ====================================================================== MLP bridge
def explicit_jacobian(mlp: MLP, x: np.ndarray) -> np.ndarray:
    """J(x) = W_L D_{L-1} W_{L-1} ... D_0 W_0 with D_l = diag(pre-activation > 0)."""
    h = x.copy()
    jac = np.eye(x.shape[0])
    for l, (w, b) in enumerate(zip(mlp.weights, mlp.biases, strict=True)):
        pre = w @ h + (0.0 if b is None else b)
        jac = w @ jac
        if l < mlp.depth - 1:
            gate = (pre > 0).astype(np.float64)
            jac = gate[:, None] * jac
            h = pre * gate
        else:
            h = pre
    return jac


@given(sst.mlps(bias=st.booleans()), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_network_from_mlp_agrees_bit_for_bit(mlp, batch, seed):
    net = network_from_mlp(mlp)
    x = np.random.default_rng(seed).uniform(-1, 1, (batch, mlp.widths[0]))
    assert net.forward(x).tobytes() == mlp.forward(x).tobytes()
    assert net.forward(x[0]).tobytes() == mlp.forward(x[0]).tobytes()
    assert net.n_params == mlp.n_params
    back = mlp_from_network(net)
    assert back.fingerprint() == mlp.fingerprint()
    for a, b in zip(back.parameters(), mlp.parameters(), strict=True):
        assert np.shares_memory(a, b)  # no copies either way
    assert [type(l).__name__ for _, l in net.layers] == (
        ["Dense", "ReLU"] * (mlp.depth - 1) + ["Dense"])


@given(sst.mlps(bias=st.booleans()), st.integers(0, 2**32 - 1))
def test_mlp_vjp_equals_explicit_jacobian(mlp, seed):
    net = network_from_mlp(mlp)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, mlp.widths[0])
    jac = explicit_jacobian(mlp, x)
    rows = np.stack([net.vjp(x, e) for e in np.eye(mlp.widths[-1])])
    np.testing.assert_allclose(rows, jac, rtol=0, atol=RTOL * scale_of(jac) * 10)


@given(st.lists(st.integers(1, 6), min_size=2, max_size=4), st.booleans(),
       st.integers(0, 2**32 - 1))
def test_mlp_vjp_matches_finite_differences(widths, bias, seed):
    mlp = MLP.random(widths, rng=seed, bias=bias)
    net = network_from_mlp(mlp)
    rng = np.random.default_rng(seed + 1)
    x = rng.uniform(-1, 1, (3, widths[0]))
    jac_fd = np.stack([fd_directional(net, x, np.broadcast_to(e, x.shape))
                       for e in np.eye(widths[0])], axis=-1)  # (batch, d_out, d_in)
    for i in range(x.shape[0]):
        rows = np.stack([net.vjp(x[i], e) for e in np.eye(widths[-1])])
        np.testing.assert_allclose(rows, jac_fd[i], rtol=0, atol=10 * FD_TOL)
        np.testing.assert_allclose(rows, explicit_jacobian(mlp, x[i]), rtol=0, atol=10 * RTOL)


def test_mlp_from_network_refuses_other_graphs():
    ok = [Dense(2, 3), ReLU(), Dense(3, 1)]
    for layers, where in [
        ([Dense(2, 3), Dense(3, 1)], "layers.1"),
        ([ReLU(), Dense(2, 1)], "layers.0"),
        ([Dense(2, 2), ReLU(), Residual([Dense(2, 2)])], "layers.2"),
        ([Dense(2, 2), ReLU()], "layers.1"),
        ([Dense(2, 2), Scale(2)], "layers.1"),
    ]:
        with pytest.raises(InputError, match=f"`{where}`"):
            mlp_from_network(Network.random(layers, rng=0))
    named = Network.random([("in", ok[0]), ("act", ok[1]), ("out", ok[2])], rng=0)
    mlp = mlp_from_network(named)
    assert mlp.widths == (2, 3, 1) and mlp.biases[1] is not None
    with pytest.raises(InputError, match=r"`mlp` must be a slth\.nets\.MLP"):
        network_from_mlp(named)  # type: ignore[arg-type]
    assert mlp_from_network(mlp) is mlp  # an MLP is such a network already
    with pytest.raises(InputError, match=r"`net` must be a slth\.nets\.Network"):
        mlp_from_network("mlp")  # type: ignore[arg-type]
