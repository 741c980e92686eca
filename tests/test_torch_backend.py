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
