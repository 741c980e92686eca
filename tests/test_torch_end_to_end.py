"""Pensia 2020 end to end on torch (entries from the torch Philox, subset sums from
solve_batch(backend="torch")): in exact mode the CPU ticket for the same seed, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from slth import _philox  # noqa: E402
from slth.constructions import pensia2020  # noqa: E402
from slth.constructions.layouts import pair_dense  # noqa: E402
from slth.constructions.layouts.pair_dense import source_spec  # noqa: E402
from slth.errors import InputError, LimitError  # noqa: E402
from slth.nets import MLP  # noqa: E402
from slth.sources import VirtualMLP, VirtualSource  # noqa: E402
from slth.torch import _construct  # noqa: E402
from slth.torch import _solve as torch_solve  # noqa: E402
from slth.torch._construct import TorchEntries, construct_pensia2020  # noqa: E402


def _target(widths, bias, seed):
    net = MLP.random(widths, rng=seed)
    ws = [w / np.linalg.svd(w, compute_uv=False)[0] for w in net.weights]
    bs = [np.random.default_rng(seed + 1).uniform(-0.5, 0.5, w.shape[0]) for w in ws] \
        if bias else None
    return MLP(ws, bs)


def _assert_same_ticket(a, b, x, ignore=()):
    assert list(a.kept) == list(b.kept)
    for name in a.kept:
        assert np.array_equal(a.kept[name], b.kept[name]), name
    pa, pb = dict(a.params), dict(b.params)
    for k in ignore:
        pa.pop(k), pb.pop(k)
    assert pa == pb
    for u, v in zip(a.weight_errors, b.weight_errors, strict=True):
        assert np.array_equal(u, v)
    for u, v in zip(a.bias_errors, b.bias_errors, strict=True):
        assert (u is None and v is None) or np.array_equal(u, v)
    assert a.source == b.source
    assert np.array_equal(a.forward(x), b.forward(x))  # bit for bit, not within a tolerance


@pytest.mark.parametrize("widths, bias, n, seed, chunk", [
    ((5, 7, 3), False, 6, 0, None),
    ((5, 7, 3), True, 6, 11, None),
    ((4, 6, 5, 2), True, 8, 2**40, None),
    ((3, 9, 2), True, 7, 5, 3000),  # several row blocks per layer
    ((2, 3, 1), False, 13, 1, None),  # odd n: meet in the middle halves of unequal size
])
def test_exact_ticket_equals_cpu_ticket(widths, bias, n, seed, chunk):
    target = _target(widths, bias, seed=len(widths) + n)
    cpu = pensia2020.construct(target, n=n, virtual=True, rng=seed)
    kw = {} if chunk is None else {"chunk_bytes": chunk}
    gpu_path = construct_pensia2020(target, n=n, rng=seed, device="cpu", **kw)
    x = np.random.default_rng(seed).uniform(-1, 1, (16, widths[0]))
    # the row blocks are the chunking's record: compared below when the chunks differ
    _assert_same_ticket(cpu, gpu_path, x, ignore=() if chunk is None else ("row_blocks",))
    if chunk is not None:
        assert gpu_path.params["row_blocks"] > target.depth  # the blocks were exercised ...
        cpu_c = pensia2020._realise_virtual(target, cpu.source, (n,) * target.depth, None,
                                            chunk_bytes=chunk)
        assert gpu_path.params["row_blocks"] == cpu_c.chunks  # ... as the CPU would cut them


def test_given_virtual_source_and_the_work_is_done_by_torch(monkeypatch):
    target = _target((4, 5, 3), True, seed=3)
    vmlp = VirtualMLP(VirtualSource(source_spec(target, (6, 6)), "uniform[-1,1]", 21))
    cpu = pensia2020.construct(target, source=vmlp)
    # from here on the numba entry kernels and the numba gather must not run
    def refuse(*a, **k):
        raise AssertionError("a numba Philox kernel ran on the torch path")

    monkeypatch.setattr(_philox, "_affine_entries", refuse)
    monkeypatch.setattr(pair_dense, "_gather_virtual_kernel", refuse)
    calls = []
    real = torch_solve.solve_exact

    def counting(values, targets, **kw):
        calls.append(values.shape)
        return real(values, targets, **kw)

    monkeypatch.setattr(torch_solve, "solve_exact", counting)
    timings: dict[str, float] = {}
    t = construct_pensia2020(target, source=vmlp, device="cpu", timings=timings)
    assert len(calls) == target.depth  # one torch solve per layer (one row block each)
    assert {"draw", "gather", "solve", "scatter", "ticket", "total"} <= set(timings)
    x = np.random.default_rng(0).uniform(-1, 1, (8, 4))
    monkeypatch.undo()
    _assert_same_ticket(cpu, t, x)
    assert t.source is vmlp


def test_torch_entries_reader_equals_the_source():
    vmlp = VirtualMLP(VirtualSource({"weights[0]": (6, 3), "biases[0]": (6,),
                                     "weights[1]": (2, 6)}, "uniform[-1,1]", 4))
    r = TorchEntries(vmlp, "cpu")
    assert r.parameter_names() == vmlp.parameter_names()
    assert not hasattr(r, "source")  # the construction loop must not take its numba gather
    idx = np.array([[0, 5], [11, 3]])
    assert np.array_equal(r.entries("weights[1]", idx), vmlp.entries("weights[1]", idx))
    assert np.array_equal(r.entries("layers.0.bias", [5, 0]), vmlp.entries("layers.0.bias",
                                                                           [5, 0]))
    assert r.n_entries == 6


def test_eps_mode_solves_exactly_and_meets_the_tolerance():
    target = _target((4, 6, 2), False, seed=8)
    cpu = pensia2020.construct(target, n=10, weight_eps=0.01, virtual=True, rng=2,
                               on_failure="report")
    t = construct_pensia2020(target, n=10, weight_eps=0.01, rng=2, device="cpu",
                             on_failure="report")
    assert t.source == cpu.source
    assert t.params["n_failed"] <= cpu.params["n_failed"]  # exact: never worse than numba's
    # each part's error is the optimum, so no weight's error exceeds the numba one
    for u, v in zip(t.weight_errors, cpu.weight_errors, strict=True):
        assert np.all(u <= v)
        assert np.all(u[v <= 0.01] <= 0.01)
    assert any(not np.array_equal(u, v) for u, v in zip(t.weight_errors, cpu.weight_errors,
                                                         strict=True))  # numba stops early


def test_errors():
    target = _target((3, 4, 2), False, seed=1)
    with pytest.raises(LimitError, match="n <= 40"):
        construct_pensia2020(target, n=41, rng=0, device="cpu")
    with pytest.raises(InputError, match="`rng` must be an int seed"):
        construct_pensia2020(target, n=4, device="cpu")
    with pytest.raises(InputError, match=r"`source` must be a slth\.sources\.VirtualMLP"):
        construct_pensia2020(target, n=4, source=MLP.random((3, 16, 4, 16, 2), rng=0),
                             device="cpu")
    with pytest.raises(InputError, match="`device`"):
        construct_pensia2020(target, n=4, rng=0, device="not-a-device")
    with pytest.raises(InputError, match="VirtualMLP"):
        TorchEntries(object(), "cpu")  # type: ignore[arg-type]


def test_selector_is_the_torch_solver():
    rng = np.random.default_rng(0)
    v, t = rng.uniform(-1, 1, (40, 9)), rng.uniform(-1, 1, 40)
    chosen, err = _construct.torch_selector("cpu")(v, t, np.ones_like(v, dtype=bool), None)
    ref = pensia2020.select_subset_sum(v, t, np.ones_like(v, dtype=bool), None)
    assert np.array_equal(chosen, ref[0]) and np.array_equal(err, ref[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (torch.cuda "
                    "is not available here); the CPU runs above check the same code")
def test_cuda_ticket_equals_cpu_ticket():
    target = _target((6, 8, 3), True, seed=4)
    cpu = pensia2020.construct(target, n=12, virtual=True, rng=9)
    gpu = construct_pensia2020(target, n=12, rng=9, device="cuda")
    _assert_same_ticket(cpu, gpu, np.random.default_rng(1).uniform(-1, 1, (32, 6)))


def test_construct_backend_keyword_routes_to_torch():
    target = _target((4, 6, 3), True, seed=6)
    cpu = pensia2020.construct(target, n=7, virtual=True, rng=12)
    t = pensia2020.construct(target, n=7, virtual=True, rng=12, backend="torch", device="cpu")
    _assert_same_ticket(cpu, t, np.random.default_rng(2).uniform(-1, 1, (8, 4)))
    given = pensia2020.construct(target, source=cpu.source, backend="torch", device="cpu")
    _assert_same_ticket(cpu, given, np.random.default_rng(3).uniform(-1, 1, (8, 4)),
                        ignore=("source_given", "width_from"))
    with pytest.raises(InputError, match="backend='torch' builds over a virtual source"):
        pensia2020.construct(target, n=7, rng=12, backend="torch", device="cpu")
    with pytest.raises(InputError, match="`backend` must be 'numba' or 'torch'"):
        pensia2020.construct(target, n=7, virtual=True, rng=12, backend="cuda")
    with pytest.raises(InputError, match="`device` is used only with backend='torch'"):
        pensia2020.construct(target, n=7, virtual=True, rng=12, device="cpu")
    with pytest.raises(InputError, match="not both"):
        pensia2020.construct(target, source=cpu.source, virtual=True, rng=12, backend="torch")
