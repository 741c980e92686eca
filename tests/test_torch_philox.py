"""Torch Philox4x64-10 bit for bit with the numba kernels, numpy's Philox and the Python twins;
virtual sources materialised on a torch device equal their CPU bits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from slth import _philox  # noqa: E402
from slth._memory import using_memory_budget  # noqa: E402
from slth.errors import InputError, LimitError, ShapeError  # noqa: E402
from slth.sources import LAWS, VirtualMLP, VirtualNetwork, VirtualSource  # noqa: E402
from slth.torch import _philox as tp  # noqa: E402

MASK64 = (1 << 64) - 1
EDGES = [0, 1, 2, 0xFFFF, 1 << 16, (1 << 32) - 1, 1 << 32, (1 << 63) - 1, 1 << 63,
         MASK64 - 1, MASK64]
words = st.one_of(st.integers(0, MASK64), st.sampled_from(EDGES))
keys = st.tuples(words, words)
CPU = "cpu"
# laws: slth's named ones, and uniform ranges whose affine maps round (non-power-of-two scales)
ALL_LAWS = [*LAWS, "uniform[-2.5,2.5]", "uniform[0.25, 3]",
            "uniform[-1.6817928305074292,1.6817928305074292]", "uniform[-0.1,7.3]"]


def gen_random(key, n: int) -> np.ndarray:
    return np.random.Generator(np.random.Philox(key=np.array(key, dtype=np.uint64))).random(n)


# ----------------------------------------------------------------------------- the arithmetic
@given(st.sampled_from([tp._M[0], tp._M[1], 0, 1, MASK64]), st.lists(words, min_size=1,
                                                                     max_size=20))
@settings(max_examples=40)
def test_limb_multiply_is_the_128_bit_product(m, cs):
    c = torch.tensor(np.array(cs, dtype=np.uint64).view(np.int64))
    hi, lo = tp._mul_const(m, tp._split(c))
    got_hi = tp.as_uint64(tp._to_word(hi)).tolist()
    got_lo = tp.as_uint64(tp._to_word(lo)).tolist()
    assert got_hi == [(m * v) >> 64 for v in cs]
    assert got_lo == [(m * v) & MASK64 for v in cs]
    # every limb stays in [0, 2^16): the representation never relies on int64 overflow
    for limb in hi + lo:
        assert int(limb.min()) >= 0 and int(limb.max()) <= 0xFFFF


def test_words_and_uniforms_from_limbs_round_trip():
    w = np.array([0, 1, 2047, 2048, (1 << 63) - 1, 1 << 63, MASK64], dtype=np.uint64)
    limbs = tp._split(torch.tensor(w.view(np.int64)))
    assert np.array_equal(tp.as_uint64(tp._to_word(limbs)), w)
    want = np.array([(int(v) >> 11) * 2.0**-53 for v in w])
    assert np.array_equal(tp._to_uniform(limbs).numpy(), want)


# ----------------------------------------------------------------------------- the bijection
@given(keys, st.lists(st.tuples(words, words, words, words), min_size=1, max_size=12))
@settings(max_examples=40)
def test_blocks_match_numba_and_reference(key, counters):
    c = np.array(counters, dtype=np.uint64)
    got = tp.as_uint64(tp.philox4x64_10_batch(key, c, device=CPU))
    assert np.array_equal(got, _philox.philox4x64_10_batch(key, c))
    assert [tuple(int(x) for x in row) for row in got] == \
        [_philox.reference_philox4x64_10(key, row) for row in counters]
    # an int64 tensor of the same bits is the same counters
    t = torch.from_numpy(c.view(np.int64).copy())
    assert np.array_equal(tp.as_uint64(tp.philox4x64_10_batch(key, t, device=CPU)), got)


@pytest.mark.parametrize("counter", [
    [MASK64, 0, 0, 0],                 # numpy's increment carries into word 1
    [MASK64, MASK64, 7, 0],            # into word 2
    [MASK64, MASK64, MASK64, 3],       # into word 3
    [MASK64, MASK64, MASK64, MASK64],  # wraps to zero
    [MASK64 - 1, MASK64, 0, 0],        # no carry
])
@pytest.mark.parametrize("key", [(0, 0), (MASK64, MASK64), (0x0123456789ABCDEF, 1)])
def test_counters_with_carries_match_numpy(counter, key):
    expected = np.random.Philox(key=np.array(key, dtype=np.uint64),
                                counter=np.array(counter, dtype=np.uint64)).random_raw(4)
    value = (sum(c << (64 * w) for w, c in enumerate(counter)) + 1) % (1 << 256)
    bumped = [[(value >> (64 * w)) & MASK64 for w in range(4)]]
    got = tp.as_uint64(tp.philox4x64_10_batch(key, bumped, device=CPU))[0]
    assert np.array_equal(got, expected)


# ----------------------------------------------------------------------------- the stream
@given(keys, st.integers(1, 70))
@settings(max_examples=30)
def test_stream_and_uniforms_match_numpy_generator(key, n):
    idx = np.arange(n)
    raw = np.random.Philox(key=np.array(key, dtype=np.uint64)).random_raw(n)
    assert np.array_equal(tp.as_uint64(tp.stream_raw(key, idx, device=CPU)), raw)
    u = tp.entries_uniform(key, idx, device=CPU)
    assert u.dtype == torch.float64 and u.device.type == "cpu"
    assert np.array_equal(u.numpy(), gen_random(key, n))
    assert np.array_equal(u.numpy(), _philox.entries_uniform(key, idx))


@given(keys, st.lists(st.one_of(st.integers(0, (1 << 63) - 1), st.integers(0, 40),
                                st.sampled_from([(1 << 63) - 1, (1 << 63) - 4, 3, 4])),
                      min_size=1, max_size=40))
@settings(max_examples=40)
def test_any_indices_match_numba_and_reference(key, idx):
    i = np.array(idx, dtype=np.int64)  # unsorted, repeated, huge: each block computed once
    got = tp.entries_uniform(key, i, device=CPU).numpy()
    assert np.array_equal(got, _philox.entries_uniform(key, i))
    assert np.array_equal(got, _philox.reference_entries_uniform(key, idx))
    raw = tp.as_uint64(tp.stream_raw(key, i, device=CPU))
    assert raw.tolist() == _philox.reference_stream_raw(key, idx)


def test_shapes_index_types_and_chunks():
    key = (0xDEADBEEF, 12345)
    rng = np.random.default_rng(0)
    i = rng.integers(0, 10**6, (7, 5, 3))
    want = _philox.entries_uniform(key, i)
    for idx in (i, i.astype(np.int32), i.astype(np.uint64), torch.from_numpy(i),
                torch.from_numpy(i).to(torch.int32), torch.from_numpy(i.astype(np.uint64)),
                i.tolist()):
        got = tp.entries_uniform(key, idx, device=CPU)
        assert got.shape == (7, 5, 3) and np.array_equal(got.numpy(), want)
    # one block per chunk: the same bits
    assert np.array_equal(tp.entries_uniform(key, i, device=CPU, chunk_bytes=1).numpy(), want)
    assert tp.entries_uniform(key, 5, device=CPU).shape == ()
    assert float(tp.entries_uniform(key, 5, device=CPU)) == float(_philox.entries_uniform(key, 5))
    assert tp.entries_uniform(key, np.zeros((0, 3), dtype=np.int64), device=CPU).shape == (0, 3)


@given(keys, st.floats(-1e3, 1e3, allow_nan=False), st.floats(-1e3, 1e3, allow_nan=False))
@settings(max_examples=30)
def test_affine_entries_round_as_the_numba_kernel(key, scale, shift):
    i = np.array([0, 1, 2, 3, 4, 9, 17, 1 << 40, (1 << 63) - 1], dtype=np.int64)
    got = tp.entries_affine(key, i, scale, shift, device=CPU).numpy()
    k = np.array(key, dtype=np.uint64)
    assert np.array_equal(got, _philox._affine_entries(k, i, scale, shift))
    u = gen_random(key, 18)[[0, 1, 2, 3, 4, 9, 17]]
    assert np.array_equal(got[:7], u * scale + shift)


# ----------------------------------------------------------------------------- sources
names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
                max_size=12)
shapes = st.lists(st.integers(0, 9), min_size=0, max_size=3).map(tuple)


@given(st.integers(0, 2**64), st.dictionaries(names, shapes, min_size=1, max_size=4),
       st.sampled_from(ALL_LAWS))
@settings(max_examples=40)
def test_materialise_equals_numpy_dense_for_every_law(seed, spec, law):
    vs = VirtualSource(spec, law, seed)
    dense = tp.materialise(vs, device=CPU)
    assert list(dense) == list(spec)
    for name, shape in spec.items():
        t = dense[name]
        assert t.dtype == torch.float64 and tuple(t.shape) == tuple(shape)
        assert np.array_equal(t.numpy(), vs.dense(name))
        flat = np.arange(math.prod(shape))[::-1].copy()
        assert np.array_equal(tp.source_entries(vs, name, flat, device=CPU).numpy(),
                              vs.entries(name, flat))


def test_materialise_per_parameter_laws_and_long_parameters():
    spec = {"q": (37, 29), "v": (1001,), "o": (4, 4, 4)}
    laws = {"q": "uniform[-1.6817928305074292,1.6817928305074292]", "v": "uniform[-1,1]",
            "o": "uniform[0,1]"}
    vs = VirtualSource(spec, laws, 2**40 + 3)
    for name in spec:
        want = vs.dense(name)
        assert np.array_equal(tp.materialise(vs, name, device=CPU).numpy(), want)
        assert np.array_equal(tp.materialise(vs, name, device=CPU, chunk_bytes=2000).numpy(),
                              want)


def test_virtual_networks_resolve_names_and_keys():
    from slth.nets.base import Architecture
    from slth.nets.layers import Dense, ReLU

    legacy = VirtualSource({"weights[0]": (5, 3), "biases[0]": (5,), "weights[1]": (2, 5)},
                           "uniform[-1,1]", 9)
    mlp = VirtualMLP(legacy)
    dense = tp.materialise(mlp, device=CPU)
    assert list(dense) == ["layers.0.weight", "layers.0.bias", "layers.2.weight"]
    ref = mlp.to_mlp()
    for t, a in zip(dense.values(), ref.parameters(), strict=True):
        assert np.array_equal(t.numpy(), a)
    # a slth 0.1 alias reads the same parameter
    assert np.array_equal(tp.materialise(mlp, "weights[1]", device=CPU).numpy(),
                          mlp.dense("layers.2.weight"))
    assert np.array_equal(tp.source_entries(mlp, "layers.0.bias", [4, 0], device=CPU).numpy(),
                          mlp.entries("layers.0.bias", [4, 0]))
    # a general network with renamed keys
    arch = Architecture((("0", Dense(3, 4)), ("1", ReLU()), ("2", Dense(4, 2, bias=False))))
    src = VirtualSource({"A": (4, 3), "a": (4,), "B": (2, 4)}, "uniform[0.25, 3]", 5)
    net = VirtualNetwork(arch, src, {"layers.0.weight": "A", "layers.0.bias": "a",
                                     "layers.2.weight": "B"})
    for name in net.param_specs():
        assert np.array_equal(tp.materialise(net, name, device=CPU).numpy(), net.dense(name))


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("call, error, match", [
    (lambda: tp.entries_uniform((0, -1), [0], device=CPU), InputError, "`key` must be two"),
    (lambda: tp.entries_uniform((0, 1 << 64), [0], device=CPU), InputError, "`key` must be"),
    (lambda: tp.entries_uniform((0,), [0], device=CPU), InputError, "`key` must be two"),
    (lambda: tp.entries_uniform((0, 0), [-1], device=CPU), InputError, "received -1"),
    (lambda: tp.entries_uniform((0, 0), [1 << 63], device=CPU), InputError, r"\[0, 2\^63\)"),
    (lambda: tp.entries_uniform((0, 0), [0.5], device=CPU), InputError, "integer dtype"),
    (lambda: tp.entries_uniform((0, 0), torch.tensor([-2]), device=CPU), InputError,
     "received -2"),
    (lambda: tp.entries_uniform((0, 0), torch.tensor([1.0]), device=CPU), InputError,
     "dtype torch.float32"),
    (lambda: tp.entries_uniform((0, 0), torch.tensor([True]), device=CPU), InputError,
     "integer dtype"),
    (lambda: tp.entries_uniform((0, 0), torch.tensor([1 << 63], dtype=torch.uint64),
                                device=CPU), InputError, "uint64 value >= 2"),
    (lambda: tp.entries_uniform((0, 0), [0], device=CPU, chunk_bytes=0), InputError,
     "`chunk_bytes` must be a positive int"),
    (lambda: tp.entries_uniform((0, 0), [0], device="nonsense"), InputError, "`device`"),
    (lambda: tp.entries_affine((0, 0), [0], float("nan"), 0.0, device=CPU), InputError,
     "`scale` must be a finite"),
    (lambda: tp.philox4x64_10_batch((0, 0), [[0, 0, 0]], device=CPU), ShapeError,
     r"shape \(n, 4\)"),
    (lambda: tp.philox4x64_10_batch((0, 0), torch.zeros((1, 4), dtype=torch.int32),
                                    device=CPU), InputError, "must be int64"),
    (lambda: tp.philox4x64_10_batch((0, 0), torch.zeros((1, 3), dtype=torch.int64),
                                    device=CPU), ShapeError, r"shape \(n, 4\)"),
    (lambda: tp.materialise(np.zeros(3), device=CPU), InputError,
     "VirtualSource or VirtualNetwork"),
    (lambda: tp.materialise(VirtualSource({"w": (3,)}, "uniform[0,1]", 0), "x", device=CPU),
     InputError, "`name` must be a parameter"),
    (lambda: tp.source_entries(VirtualSource({"w": (3,)}, "uniform[0,1]", 0), "w", [3],
                               device=CPU), InputError, r"parameter `w`.*\[0, 3\)"),
    (lambda: tp.source_entries(VirtualSource({"w": (3,)}, "uniform[0,1]", 0), "w",
                               torch.tensor([3]), device=CPU), InputError, r"\[0, 3\)"),
])
def test_errors_name_the_parameter_and_value(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_large_requests_are_refused_before_allocating():
    vs = VirtualSource({"w": (10**8,)}, "uniform[-1,1]", 0)
    with using_memory_budget("64MiB"), pytest.raises(LimitError, match="needs an estimated"):
        tp.materialise(vs, "w", device=CPU)
    with using_memory_budget("64MiB"), pytest.raises(LimitError, match="materialise"):
        tp.materialise(vs, device=CPU)
    idx = torch.arange(0, 4 * 10**6, 2)
    with using_memory_budget("16MiB"), pytest.raises(
            LimitError, match="torch Philox entries of parameter `w`"):
        tp.source_entries(vs, "w", idx, device=CPU)


# ----------------------------------------------------------------------------- CUDA
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (torch.cuda "
                    "is not available here); the same code runs on CPU in the tests above")
def test_cuda_matches_cpu_bits():
    key = (MASK64, 0x0123456789ABCDEF)
    rng = np.random.default_rng(3)
    i = rng.integers(0, 1 << 62, 100_000)
    got = tp.entries_uniform(key, i, device="cuda")
    assert got.device.type == "cuda"
    assert np.array_equal(got.cpu().numpy(), _philox.entries_uniform(key, i))
    c = rng.integers(0, 1 << 63, (1000, 4)).astype(np.uint64) * np.uint64(2) + np.uint64(1)
    assert np.array_equal(tp.as_uint64(tp.philox4x64_10_batch(key, c, device="cuda")),
                          _philox.philox4x64_10_batch(key, c))
    vs = VirtualSource({"w": (333, 1001), "b": (7,)}, "uniform[-2.5,2.5]", 17)
    for name in vs.spec:
        assert np.array_equal(tp.materialise(vs, name, device="cuda").cpu().numpy(),
                              vs.dense(name))
