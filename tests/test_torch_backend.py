"""Tests of slth.torch: conversion round trips, batched forward, chunked max error."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from tolerances import TOL  # noqa: E402

import slth.torch as storch  # noqa: E402
from slth.errors import InputError, LimitError, ShapeError, SLTHError  # noqa: E402
from slth.nets import MLP  # noqa: E402
from slth.testing import strategies as sst  # noqa: E402
from slth.ticket import Ticket  # noqa: E402

pytestmark = pytest.mark.torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
DTYPES = [torch.float32, torch.float64]


def bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).tobytes()


@st.composite
def net_and_inputs(draw, kind):
    if kind == "mlp":
        net = draw(sst.mlps(bias=st.booleans()))
    else:
        net = draw(sst.tickets(bias=st.booleans(), density=draw(st.sampled_from([0.1, 0.6]))))
    x = draw(sst.unit_ball_inputs(storch._source(net).widths[0], max_batch=6))
    return net, x


# ---------------------------------------------------------------------- conversion
@settings(max_examples=40, deadline=None)
@given(sst.mlps(bias=st.booleans()))
def test_mlp_torch_mlp_round_trip_exact_float64(net):
    module = net.to_torch()
    assert all(p.dtype == torch.float64 for p in module.parameters())
    back = MLP.from_torch(module)
    assert back.widths == net.widths
    assert [b is None for b in back.biases] == [b is None for b in net.biases]
    for p, q in zip(net.parameters(), back.parameters(), strict=True):
        assert bits(p) == bits(q)


def test_to_torch_layout_and_ticket_masking():
    src = MLP.random((3, 5, 2), rng=0, bias=True)
    gen = np.random.default_rng(1)
    t = Ticket(src, [gen.random(p.shape) < 0.5 for p in src.parameters()])
    module = storch.to_torch(t, device="cpu", dtype=torch.float64)
    kinds = [type(m).__name__ for m in module]
    assert kinds == ["Linear", "ReLU", "Linear"]
    back = MLP.from_torch(module)
    for p, q in zip(t.network().parameters(), back.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)
    m32 = storch.to_torch(src, device="cpu")
    assert m32[0].weight.dtype == torch.float32


def test_from_torch_reads_float32_exactly_and_flattens_nested():
    torch.manual_seed(0)
    inner = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU())
    module = torch.nn.Sequential(inner, torch.nn.Linear(4, 2, bias=False))
    net = MLP.from_torch(module)
    assert net.widths == (3, 4, 2)
    assert net.biases[1] is None
    np.testing.assert_array_equal(net.weights[0], inner[0].weight.detach().double().numpy())
    single = MLP.from_torch(torch.nn.Linear(2, 1))
    assert single.depth == 1


FROM_TORCH_CASES = [
    ("conv", lambda: torch.nn.Sequential(torch.nn.Conv1d(1, 1, 1)), InputError, "`module`"),
    ("tanh", lambda: torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Tanh(),
                                         torch.nn.Linear(2, 1)), InputError, "`module`"),
    ("trailing-relu", lambda: torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU()),
     InputError, "`module`"),
    ("leading-relu", lambda: torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(2, 2)),
     InputError, "`module`"),
    ("two-linears", lambda: torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)),
     InputError, "`module`"),
    ("empty", lambda: torch.nn.Sequential(), InputError, "`module`"),
    ("not-a-module", lambda: [torch.nn.Linear(2, 2)], InputError, "`module`"),
    ("bare-relu", lambda: torch.nn.ReLU(), InputError, "`module`"),
    ("dims-do-not-chain", lambda: torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(),
                                                      torch.nn.Linear(4, 1)), ShapeError,
     "`module`"),
]


@pytest.mark.parametrize(
    "make, error, name", [c[1:] for c in FROM_TORCH_CASES], ids=[c[0] for c in FROM_TORCH_CASES]
)
def test_from_torch_validation(make, error, name):
    with pytest.raises(error) as info:
        MLP.from_torch(make())
    assert isinstance(info.value, SLTHError)
    assert name in str(info.value)


def test_from_torch_error_names_offending_layer():
    module = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Sigmoid(), torch.nn.Linear(2, 1))
    with pytest.raises(InputError, match="layer 1 is Sigmoid"):
        MLP.from_torch(module)


# ---------------------------------------------------------------------- forward
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("kind", ["mlp", "ticket"])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_forward_within_documented_tolerance(dtype, kind, data):
    net, x = data.draw(net_and_inputs(kind))
    ref = net.forward(x)
    for device in DEVICES:
        got = storch.forward(net, x, device=device, dtype=dtype)
        assert got.dtype == np.float64 and got.shape == ref.shape
        assert np.all(np.abs(got - ref) <= storch.tolerance(net, x, dtype=dtype))


def test_forward_tolerance_is_not_vacuous():
    # Without cancellation (non-negative weights and inputs) a(x) is the output itself, and
    # the documented bound must sit within a factor 1e3 of the float32 error actually seen.
    gen = np.random.default_rng(0)
    widths = (64, 1024, 1024, 8)
    weights = [gen.uniform(0, 2 / a, (b, a)) for a, b in itertools.pairwise(widths)]
    net = MLP(weights)
    x = gen.uniform(0, 1, (200, 64))
    diff = np.abs(storch.forward(net, x, device="cpu") - net.forward(x))
    tol = storch.tolerance(net, x)
    assert diff.max() > 0
    assert np.all(diff <= tol)
    assert tol.max() / diff.max() < 1e3


def test_forward_large_sparse_ticket_float32():
    src = MLP.random((100, 2000, 50), rng=2, bias=True)
    gen = np.random.default_rng(3)
    t = Ticket(src, [gen.random(p.shape) < 0.05 for p in src.parameters()])
    x = gen.uniform(-1, 1, (300, 100))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    got = storch.forward(t, x, device="cpu", batch_size=128)
    assert np.all(np.abs(got - t.forward(x)) <= storch.tolerance(t, x))


def test_forward_tensor_in_tensor_out_and_chunking():
    t = Ticket(
        src := MLP.random((5, 30, 4), rng=0, bias=True),
        [np.random.default_rng(1).random(p.shape) < 0.2 for p in src.parameters()],
    )
    x = np.random.default_rng(2).uniform(-1, 1, (11, 5))
    full = storch.forward(t, x, device="cpu", dtype=torch.float64)
    chunked = storch.forward(t, x, device="cpu", dtype=torch.float64, batch_size=3)
    np.testing.assert_allclose(chunked, full, rtol=0, atol=1e-14)
    out = storch.forward(t, torch.tensor(x), device="cpu", dtype=torch.float64)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), full, rtol=0, atol=1e-14)
    assert storch.forward(t, x[0], device="cpu").shape == (4,)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_default_device_and_tensor_output():
    net = MLP.random((5, 7, 2), rng=0)
    out = storch.forward(net, torch.zeros(3, 5))
    assert out.device.type == "cuda"
    assert storch.default_device().type == "cuda"


def test_documented_tolerances_agree_with_the_suite_table():
    assert storch.FLOAT32_RTOL <= TOL[np.dtype(np.float32)]
    assert storch.FLOAT64_RTOL <= TOL[np.dtype(np.float64)]


def test_default_device_is_cuda_iff_available():
    assert storch.default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


# ---------------------------------------------------------------------- max error
@pytest.mark.parametrize("norm", ["max", "l2"])
def test_max_abs_error_matches_numpy(norm):
    target = MLP.random((6, 10, 3), rng=0, bias=True)
    src = MLP.random((6, 40, 10, 30, 3), rng=1, bias=True)
    gen = np.random.default_rng(2)
    t = Ticket(src, [gen.random(p.shape) < 0.3 for p in src.parameters()])
    x = gen.uniform(-1, 1, (257, 6))
    diff = target.forward(x) - t.forward(x)
    expected = np.abs(diff).max() if norm == "max" else np.linalg.norm(diff, axis=1).max()
    for bs in (1000, 64, 1):
        got = storch.max_abs_error(target, t, x, device="cpu", batch_size=bs, norm=norm)
        assert got == pytest.approx(expected, rel=1e-12)
    got32 = storch.max_abs_error(target, t, x, device="cpu", dtype=torch.float32, norm=norm)
    assert got32 == pytest.approx(expected, rel=1e-4)


def test_max_abs_error_zero_for_identical_and_empty():
    net = MLP.random((4, 5, 2), rng=0)
    t = Ticket(net, [np.ones(p.shape, bool) for p in net.parameters()])
    x = np.random.default_rng(0).uniform(-1, 1, (20, 4))
    assert storch.max_abs_error(net, t, x, device="cpu") == 0.0
    assert storch.max_abs_error(net, t, np.zeros((0, 4)), device="cpu") == 0.0


TORCH_API_CASES = [
    ("max-error-widths", lambda: storch.max_abs_error(
        MLP.random((3, 2), rng=0), MLP.random((3, 4), rng=0), np.ones((1, 3))), ShapeError,
     "`ticket`"),
    ("max-error-norm", lambda: storch.max_abs_error(
        MLP.random((3, 2), rng=0), MLP.random((3, 2), rng=0), np.ones((1, 3)), norm="l1"),
     InputError, "`norm`"),
    ("max-error-inputs", lambda: storch.max_abs_error(
        MLP.random((3, 2), rng=0), MLP.random((3, 2), rng=0), np.ones((1, 4))), ShapeError,
     "`inputs`"),
    ("forward-net", lambda: storch.forward("net", np.ones(3)), InputError, "`net`"),
    ("forward-dtype", lambda: storch.forward(MLP.random((3, 2), rng=0), np.ones(3),
                                             dtype=torch.float16), InputError, "`dtype`"),
    ("forward-device", lambda: storch.forward(MLP.random((3, 2), rng=0), np.ones(3),
                                              device="tpu"), InputError, "`device`"),
    ("forward-batch-size", lambda: storch.forward(MLP.random((3, 2), rng=0), np.ones(3),
                                                  batch_size=0), InputError, "`batch_size`"),
    ("forward-nan-tensor", lambda: storch.forward(MLP.random((3, 2), rng=0),
                                                  torch.tensor([np.nan, 0.0, 0.0])), InputError,
     "`x`"),
    ("float32-range", lambda: storch.forward(MLP([np.array([[1e39]])]), np.ones(1)), LimitError,
     "`net`"),
    ("float32-range-x", lambda: storch.forward(MLP([np.array([[1.0]])]), np.array([1e39])),
     LimitError, "`x`"),
    ("to-torch-net", lambda: storch.to_torch(torch.nn.Linear(2, 2)), InputError, "`net`"),
]


@pytest.mark.parametrize(
    "call, error, name", [c[1:] for c in TORCH_API_CASES], ids=[c[0] for c in TORCH_API_CASES]
)
def test_torch_api_validation(call, error, name):
    with pytest.raises(error) as info:
        call()
    assert name in str(info.value)


def test_virtual_source_ticket_runs_from_its_kept_entries():
    # the torch backend reads only kept entries: a ticket over a virtual source needs no draw
    from slth.constructions import bounded_target, pensia2020

    target = bounded_target((3, 5, 2), rng=4)
    virtual = pensia2020.construct(target, n=5, virtual=True, rng=3)
    dense = pensia2020.construct(target, n=5, source=virtual.source.to_mlp())
    x = np.random.default_rng(0).uniform(-1, 1, (16, 3))
    got = storch.forward(virtual, x, device="cpu", dtype=torch.float64)
    ref = storch.forward(dense, x, device="cpu", dtype=torch.float64)
    got = got.cpu().numpy() if hasattr(got, "cpu") else np.asarray(got)
    ref = ref.cpu().numpy() if hasattr(ref, "cpu") else np.asarray(ref)
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_allclose(got, virtual.forward(x), rtol=0, atol=TOL[np.dtype(np.float64)])


# ---------------------------------------------------------------------- the layer table
import dataclasses  # noqa: E402
import re  # noqa: E402

import scipy.sparse as sp  # noqa: E402

from slth.nets import Dense, Network, ReLU, Residual  # noqa: E402
from slth.nets.base import Layer, register_layer  # noqa: E402
from slth.nets.io import network_from_mlp  # noqa: E402


@register_layer("tests.torchscale")
@dataclasses.dataclass(frozen=True)
class Scale(Layer):
    """Elementwise ``x * scale`` over the last axis (a layer type only this file knows)."""

    size: int

    def param_specs(self):
        return {"scale": (self.size,)}

    def output_shape(self, input_shape):
        if input_shape[-1] != self.size:
            raise ShapeError(f"Scale({self.size}) takes a last axis of {self.size}")
        return tuple(input_shape)

    def apply(self, params, x):
        return x * params["scale"]

    def vjp(self, params, x, grad_out):
        return grad_out * params["scale"]


@register_layer("tests.torchshift")
@dataclasses.dataclass(frozen=True)
class Shift(Layer):
    """``x + 1``: registered for saving, never with the torch table."""

    def apply(self, params, x):
        return x + 1.0

    def vjp(self, params, x, grad_out):
        return grad_out


class TorchScale(torch.nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = torch.nn.Parameter(scale)

    def forward(self, x):
        return x * self.scale


@pytest.fixture
def scale_in_table():
    storch.register_torch_layer(
        Scale,
        to_module=lambda layer, params, ctx: TorchScale(ctx.tensor(params["scale"])),
        from_module=lambda m, ctx: (Scale(m.scale.numel()), {"scale": ctx.array(m.scale)}),
        module_type=TorchScale,
    )
    yield
    assert storch.unregister_torch_layer(Scale)


ARCHS = {
    "dense-relu": lambda: [Dense(3, 4), ReLU(), Dense(4, 2, bias=False)],
    "residual": lambda: [Dense(3, 4), ReLU(),
                         Residual([Dense(4, 4), ReLU(), Dense(4, 4, bias=False)]),
                         Dense(4, 2)],
    "nested": lambda: [Dense(3, 5),
                       Residual([ReLU(), Residual([Dense(5, 5), ReLU()]), Dense(5, 5)]),
                       ReLU(), Residual([Residual([Residual([Dense(5, 5)])])]), Dense(5, 1)],
    "named": lambda: [("fc1", Dense(2, 3)), ("act", ReLU()),
                      ("block", Residual([("inner", Dense(3, 3)), ("act-2", ReLU())])),
                      ("out", Dense(3, 2))],
}


def assert_same_network(a: Network, b: Network) -> None:
    assert a.layers == b.layers
    assert a.input_shape == b.input_shape
    assert list(a.params) == list(b.params)
    for key in a.params:
        assert bits(a.params[key]) == bits(b.params[key]), key
    assert a.fingerprint() == b.fingerprint()


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_network_torch_round_trip_bit_for_bit_float64(arch, seed):
    net = Network.random(ARCHS[arch](), rng=seed, law="normal")
    module = storch.network_to_torch(net, device="cpu", dtype=torch.float64)
    assert isinstance(module, torch.nn.Sequential)
    assert all(p.dtype == torch.float64 for p in module.parameters())
    # the state_dict keys are the network's parameter names without "layers."
    assert list(module.state_dict()) == [k.removeprefix("layers.") for k in net.params]
    assert_same_network(storch.network_from_torch(module), net)
    assert_same_network(storch.network_from_torch(storch.to_torch(net, dtype="float64")), net)


def test_network_to_torch_module_kinds_and_float32_default():
    net = Network.random(ARCHS["nested"](), rng=0)
    module = storch.network_to_torch(net, device="cpu")
    assert [type(m).__name__ for m in module] == [
        "Linear", "ResidualBlock", "ReLU", "ResidualBlock", "Linear"]
    assert isinstance(module[1].body[1], storch.ResidualBlock)
    assert module[0].weight.dtype == torch.float32


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("arch", list(ARCHS))
def test_network_forward_within_documented_tolerance(arch, dtype):
    net = Network.random(ARCHS[arch](), rng=3)
    x = np.random.default_rng(4).uniform(-1, 1, (17, *net.input_shape))
    ref = net.forward(x)
    tol = storch.tolerance(net, x, dtype=dtype)
    for device in DEVICES:
        got = storch.forward(net, x, device=device, dtype=dtype, batch_size=5)
        assert got.dtype == np.float64 and got.shape == ref.shape
        assert np.all(np.abs(got - ref) <= tol)
        module = storch.network_to_torch(net, device=device, dtype=dtype)
        with torch.no_grad():
            direct = module(torch.tensor(x, dtype=dtype, device=device)).cpu().double().numpy()
        assert np.all(np.abs(direct - ref) <= tol)
    assert storch.forward(net, x[0], device="cpu").shape == net.output_shape


def test_network_and_equivalent_mlp_agree_through_the_backend():
    mlp = MLP.random((4, 6, 5, 2), rng=0, bias=True)
    net = network_from_mlp(mlp)
    x = np.random.default_rng(1).uniform(-1, 1, (50, 4))
    assert storch.rounding_depth(net) == storch.rounding_depth(mlp) == 3
    np.testing.assert_array_equal(storch.rounding_scale(net, x), storch.rounding_scale(mlp, x))
    np.testing.assert_array_equal(storch.tolerance(net, x), storch.tolerance(mlp, x))
    # the two paths lay the products out differently (W @ h against x @ W.T): equal to rounding
    tol = 2 * storch.tolerance(mlp, x, dtype=torch.float64).max()
    assert storch.max_abs_error(mlp, net, x, device="cpu") <= tol
    assert storch.max_abs_error(net, mlp, x, device="cpu", norm="l2") <= 2 * tol
    other = Network.random([Dense(4, 3), ReLU(), Dense(3, 2)], rng=5)
    diff = mlp.forward(x) - other.forward(x)
    got = storch.max_abs_error(mlp, other, x, device="cpu", batch_size=7)
    assert got == pytest.approx(np.abs(diff).max(), rel=1e-12)


def test_rounding_depth_counts_parameter_layers_and_residual_additions():
    net = Network.random(ARCHS["nested"](), rng=0)
    # Dense; Residual(1 + ReLU 0 + Residual(1 + Dense) + Dense); ReLU; R(1 + R(1 + R(1 + D))); D
    assert storch.rounding_depth(net) == 1 + (1 + 2 + 1) + 0 + 4 + 1
    x = np.random.default_rng(0).uniform(-1, 1, (3, 3))
    np.testing.assert_array_equal(
        storch.rounding_scale(net, x),
        net.forward(np.abs(x), params={k: np.abs(v) for k, v in net.params.items()}))


def test_layer_type_registered_in_the_test_converts(scale_in_table):
    layers = [Dense(3, 4), Scale(4), ReLU(), Residual([Scale(4), Dense(4, 4)]), Dense(4, 2)]
    net = Network.random(layers, rng=0)
    module = storch.network_to_torch(net, device="cpu", dtype=torch.float64)
    assert isinstance(module[1], TorchScale) and isinstance(module[3].body[0], TorchScale)
    assert_same_network(storch.network_from_torch(module), net)
    x = np.random.default_rng(1).uniform(-1, 1, (9, 3))
    for dtype in DTYPES:
        got = storch.forward(net, x, device="cpu", dtype=dtype)
        assert np.all(np.abs(got - net.forward(x)) <= storch.tolerance(net, x, dtype=dtype))
    assert storch.rounding_depth(net) == 1 + 1 + (1 + 2) + 1
    assert Scale in storch.torch_layers()


def test_multidimensional_inputs_through_a_registered_layer(scale_in_table):
    net = Network.random([Scale(3), ReLU(), Residual([Scale(3)])], rng=0, input_shape=(2, 3))
    x = np.random.default_rng(1).uniform(-1, 1, (6, 2, 3))
    got = storch.forward(net, x, device="cpu", dtype=torch.float64)
    assert got.shape == (6, 2, 3)
    assert np.all(np.abs(got - net.forward(x)) <= storch.tolerance(net, x, dtype=torch.float64))
    assert storch.forward(net, x[0], device="cpu").shape == (2, 3)
    out = storch.forward(net, torch.tensor(x), device="cpu", dtype=torch.float64)
    assert isinstance(out, torch.Tensor) and tuple(out.shape) == (6, 2, 3)
    module = storch.network_to_torch(net, device="cpu", dtype=torch.float64)
    assert_same_network(storch.network_from_torch(module, input_shape=(2, 3)), net)
    with pytest.raises(ShapeError, match=r"`x` must have shape \(batch, 2, 3\) or \(2, 3\)"):
        storch.forward(net, np.ones((4, 3)), device="cpu")
    with pytest.raises(InputError, match="`input_shape`"):
        storch.network_from_torch(module)


def test_unregistered_layer_type_names_it_and_how_to_register():
    net = Network.random([Dense(2, 2), Residual([Shift()])], rng=0)
    for call in (lambda: storch.network_to_torch(net, device="cpu"),
                 lambda: storch.forward(net, np.ones(2), device="cpu"),
                 lambda: storch.to_torch(net, device="cpu")):
        with pytest.raises(InputError) as info:
            call()
        msg = str(info.value)
        assert "`net`" in msg and "layers.1.body.0" in msg and "Shift" in msg
        assert "register_torch_layer(Shift" in msg
    with pytest.raises(InputError, match=re.escape("`target` layer `layers.1.body.0`")):
        storch.max_abs_error(net, net, np.ones((1, 2)), device="cpu")
    # the other direction: a module type no entry reads
    module = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Tanh())
    with pytest.raises(InputError) as info:
        storch.network_from_torch(module)
    msg = str(info.value)
    assert "`module`" in msg and "Tanh" in msg and "register_torch_layer" in msg and "`1`" in msg


def test_a_registered_layer_can_be_unregistered():
    storch.register_torch_layer(Scale, to_module=lambda layer, p, ctx: TorchScale(
        ctx.tensor(p["scale"])))
    net = Network.random([Dense(2, 2), Scale(2)], rng=0)
    module = storch.network_to_torch(net, device="cpu")
    with pytest.raises(InputError, match="TorchScale"):  # no from_module: cannot read back
        storch.network_from_torch(module)
    assert storch.unregister_torch_layer(Scale)
    assert not storch.unregister_torch_layer(Scale)
    with pytest.raises(InputError, match="register_torch_layer"):
        storch.network_to_torch(net, device="cpu")


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_sparse_dense_weight_agrees_with_the_dense_one(dtype):
    net = Network.random([Dense(30, 40), ReLU(), Residual([Dense(40, 40)]), Dense(40, 3)], rng=0)
    gen = np.random.default_rng(1)
    masks = {k: gen.random(v.shape) < 0.1 for k, v in net.params.items() if k.endswith("weight")}
    dense = {k: np.where(m, net.params[k], 0.0) for k, m in masks.items()}
    sparse = {k: sp.csr_matrix(v) for k, v in dense.items()}
    sparse["layers.2.body.0.weight"] = sp.coo_matrix(dense["layers.2.body.0.weight"])
    m_sparse = storch.network_to_torch(net, params=sparse, device="cpu", dtype=dtype)
    m_dense = storch.network_to_torch(net, params=dense, device="cpu", dtype=dtype)
    assert isinstance(m_sparse[0], storch.SparseLinear) and m_sparse[0].weight.is_sparse_csr
    assert isinstance(m_sparse[2].body[0], storch.SparseLinear)
    assert isinstance(m_dense[0], torch.nn.Linear)
    x = gen.uniform(-1, 1, (25, 30))
    masked = net.with_params(dense)
    ref = masked.forward(x)
    np.testing.assert_allclose(net.forward(x, params=sparse), ref, rtol=0, atol=1e-12)
    tol = storch.tolerance(masked, x, dtype=dtype)
    with torch.no_grad():
        xt = torch.tensor(x, dtype=dtype)
        got_sparse = m_sparse(xt).double().numpy()
        got_dense = m_dense(xt).double().numpy()
    assert np.all(np.abs(got_sparse - ref) <= tol)
    assert np.all(np.abs(got_dense - ref) <= tol)
    assert np.all(np.abs(got_sparse - got_dense) <= 2 * tol)
    # reading the sparse module back gives the masked network, densified
    if dtype == torch.float64:
        assert_same_network(storch.network_from_torch(m_sparse), masked)


def test_network_to_torch_params_override_is_validated():
    net = Network.random([Dense(2, 3), ReLU(), Dense(3, 1)], rng=0)
    with pytest.raises(InputError, match=re.escape("`params` has an entry 'layers.9.weight'")):
        storch.network_to_torch(net, params={"layers.9.weight": np.ones((3, 2))})
    with pytest.raises(ShapeError, match=re.escape("`params['layers.0.weight']`")):
        storch.network_to_torch(net, params={"layers.0.weight": np.ones((2, 2))})
    with pytest.raises(InputError, match="dense array"):
        storch.network_to_torch(net, params={"layers.0.bias": sp.csr_matrix(np.ones((1, 3)))})
    with pytest.raises(LimitError, match="`net`"):
        storch.network_to_torch(net, params={"layers.0.weight": np.full((3, 2), 1e39)},
                                device="cpu")
    with pytest.raises(LimitError, match="`net`"):
        storch.network_to_torch(net, params={"layers.0.weight": sp.csr_matrix(
            np.full((3, 2), 1e39))}, device="cpu")
    with pytest.raises(InputError, match=re.escape("`net` must be a slth.nets.Network")):
        storch.network_to_torch(torch.nn.Linear(2, 2))


REGISTER_CASES = [
    ("not-a-layer", lambda: storch.register_torch_layer(int, to_module=print), "`layer_type`"),
    ("to-module", lambda: storch.register_torch_layer(Scale, to_module=None), "`to_module`"),
    ("from-module", lambda: storch.register_torch_layer(Scale, to_module=print, from_module=3,
                                                        module_type=TorchScale),
     "`from_module`"),
    ("module-type", lambda: storch.register_torch_layer(Scale, to_module=print,
                                                        from_module=print, module_type=int),
     "`module_type`"),
    ("alone", lambda: storch.register_torch_layer(Scale, to_module=print, from_module=print),
     "`from_module` and `module_type`"),
    ("taken", lambda: storch.register_torch_layer(Scale, to_module=print, from_module=print,
                                                  module_type=torch.nn.Linear),
     "`module_type` Linear is already read by the entry of Dense"),
]


@pytest.mark.parametrize("call, match", [c[1:] for c in REGISTER_CASES],
                         ids=[c[0] for c in REGISTER_CASES])
def test_register_torch_layer_validation(call, match):
    with pytest.raises(InputError, match=match):
        call()
    assert Scale not in storch.torch_layers()


FROM_NETWORK_CASES = [
    ("not-a-module", lambda: [torch.nn.Linear(2, 2)], "`module` must be a torch.nn.Sequential"),
    ("empty", lambda: torch.nn.Sequential(), "at least one layer"),
    ("bad-name", lambda: torch.nn.Sequential(
        __import__("collections").OrderedDict([("a b", torch.nn.Linear(2, 2))])),
     "child names"),
    ("residual-body", lambda: torch.nn.Sequential(storch.ResidualBlock(torch.nn.Sequential())),
     "at least one layer at `0.body`"),
]


@pytest.mark.parametrize("make, match", [c[1:] for c in FROM_NETWORK_CASES],
                         ids=[c[0] for c in FROM_NETWORK_CASES])
def test_network_from_torch_validation(make, match):
    with pytest.raises(InputError, match=match):
        storch.network_from_torch(make())


def test_network_from_torch_reads_plain_modules_and_flattens_nested():
    torch.manual_seed(0)
    single = storch.network_from_torch(torch.nn.Linear(3, 2))
    assert single.layers == (("0", Dense(3, 2)),)
    inner = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU())
    net = storch.network_from_torch(torch.nn.Sequential(inner, torch.nn.Linear(4, 2, bias=False)))
    assert net.layers == (("0", Dense(3, 4)), ("1", ReLU()), ("2", Dense(4, 2, bias=False)))
    np.testing.assert_array_equal(net.params["layers.0.weight"],
                                  inner[0].weight.detach().double().numpy())
    with pytest.raises(ShapeError):
        storch.network_from_torch(torch.nn.Sequential(torch.nn.Linear(2, 3),
                                                      torch.nn.Linear(4, 1)))
