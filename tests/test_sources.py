"""Philox kernel bit for bit with numpy; dense and virtual sources hold the same bits."""

from __future__ import annotations

import hashlib
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from slth import _philox
from slth._memory import using_memory_budget
from slth._philox import (
    entries_uniform,
    numpy_random_raw4,
    philox4x64_10,
    philox4x64_10_batch,
    reference_entries_uniform,
    reference_numpy_random_raw4,
    reference_philox4x64_10,
    reference_stream_raw,
    stream_raw,
)
from slth.errors import InputError, LimitError, ShapeError
from slth.sources import (
    KEY_DOMAIN,
    LAWS,
    DenseSource,
    Source,
    VirtualSource,
    param_key,
)

MASK64 = (1 << 64) - 1
EDGES = [0, 1, 2, (1 << 32) - 1, 1 << 32, (1 << 63) - 1, 1 << 63, MASK64 - 1, MASK64]
words = st.one_of(st.integers(0, MASK64), st.sampled_from(EDGES))
keys = st.tuples(words, words)
counters = st.tuples(words, words, words, words)


def np_philox(key, counter=None) -> np.random.Philox:
    """numpy's Philox at ``key`` (and ``counter``), from Python ints."""
    k = np.array(key, dtype=np.uint64)
    if counter is None:
        return np.random.Philox(key=k)
    return np.random.Philox(key=k, counter=np.array(counter, dtype=np.uint64))


def as_int(value: int) -> list[int]:
    """A 256-bit integer as four uint64 words, lowest first."""
    return [(value >> (64 * w)) & MASK64 for w in range(4)]


def as_value(counter) -> int:
    return sum(int(c) << (64 * w) for w, c in enumerate(counter))


def seek_raw(key, i: int) -> int:
    """Word i of Philox(key)'s stream, by numpy seeking to block i // 4."""
    return int(np_philox(key, [i // 4, 0, 0, 0]).random_raw(4)[i % 4])


def seek_uniform(key, i: int) -> float:
    """Double i of Generator(Philox(key)).random(), by numpy seeking to block i // 4."""
    gen = np.random.Generator(np_philox(key, [i // 4, 0, 0, 0]))
    return float(gen.random(4)[i % 4])


# ----------------------------------------------------------------------------- the kernel
@given(keys, counters)
def test_block_matches_numpy_and_reference(key, counter):
    expected = [int(w) for w in np_philox(key, counter).random_raw(4)]
    assert [int(w) for w in numpy_random_raw4(key, counter)] == expected
    assert list(reference_numpy_random_raw4(key, counter)) == expected
    # the bijection itself: numpy's counter - 1 (borrowing across words) gives block `counter`
    before = as_int((as_value(counter) - 1) % (1 << 256))
    expected = [int(w) for w in np_philox(key, before).random_raw(4)]
    assert [int(w) for w in philox4x64_10(key, counter)] == expected
    assert list(reference_philox4x64_10(key, counter)) == expected


@pytest.mark.parametrize("counter", [
    [MASK64, 0, 0, 0],               # carry into word 1
    [MASK64, MASK64, 7, 0],          # carry into word 2
    [MASK64, MASK64, MASK64, 3],     # carry into word 3
    [MASK64, MASK64, MASK64, MASK64],  # wraps to zero
    [MASK64 - 1, MASK64, 0, 0],      # no carry
])
def test_counter_carries_like_numpy(counter):
    key = (0x0123456789ABCDEF, 0xFEDCBA9876543210)
    expected = [int(w) for w in np_philox(key, counter).random_raw(4)]
    assert [int(w) for w in numpy_random_raw4(key, counter)] == expected
    assert list(reference_numpy_random_raw4(key, counter)) == expected
    assert [int(w) for w in philox4x64_10(key, as_int((as_value(counter) + 1) % (1 << 256)))] \
        == expected


@pytest.mark.parametrize("split", [False, True])
def test_batch_both_multiplies_match_reference(split):
    rng = np.random.default_rng(8)
    key = [int(w) for w in rng.integers(0, 2**64, 2, dtype=np.uint64)]
    n = 5000  # past the parallel threshold
    cs = rng.integers(0, 2**64, size=(n, 4), dtype=np.uint64)
    cs[:len(EDGES), 0] = EDGES  # multiplier edge cases in the multiplied words
    cs[:len(EDGES), 2] = EDGES[::-1]
    got = philox4x64_10_batch(key, cs, split=split)
    assert got.shape == (n, 4) and got.dtype == np.uint64
    sample = list(range(len(EDGES))) + list(rng.integers(0, n, 200))
    for j in sample:
        assert [int(w) for w in got[j]] == list(reference_philox4x64_10(key, cs[j].tolist()))
    assert np.array_equal(philox4x64_10_batch(key, cs[:100], split=split), got[:100])  # serial


def test_batch_matches_numpy():
    key = (3, 2**64 - 3)
    cs = np.array([[b, 0, 0, 0] for b in range(1, 401)], dtype=np.uint64)
    got = philox4x64_10_batch(key, cs).reshape(-1)
    assert np.array_equal(got, np_philox(key).random_raw(1600))


@given(keys)
def test_stream_matches_numpy_stream(key):
    raw = np_philox(key).random_raw(64)
    assert np.array_equal(stream_raw(key, np.arange(64)), raw)
    assert np.array_equal(stream_raw(key, np.arange(63, -1, -1)), raw[::-1])
    u = np.random.Generator(np_philox(key)).random(64)
    assert np.array_equal(entries_uniform(key, np.arange(64)), u)
    assert np.array_equal(reference_entries_uniform(key, range(64)), u)


def test_parallel_random_and_contiguous_reads_match_numpy():
    key = param_key(0, "w")
    n = 200_000
    raw = np_philox(key).random_raw(n)
    u = np.random.Generator(np_philox(key)).random(n)
    idx = np.random.default_rng(1).integers(0, n, 100_000)  # parallel path, random order
    assert np.array_equal(stream_raw(key, idx), raw[idx])
    assert np.array_equal(entries_uniform(key, idx), u[idx])
    assert np.array_equal(entries_uniform(key, np.arange(n)), u)  # block reuse
    assert np.array_equal(entries_uniform(key, idx.reshape(1000, 100)), u[idx].reshape(1000, 100))
    assert entries_uniform(key, 5).shape == () and float(entries_uniform(key, 5)) == u[5]


@given(keys, st.integers(0, (1 << 63) - 1))
def test_any_index_matches_numpy_seek(key, i):
    assert int(stream_raw(key, [i])[0]) == seek_raw(key, i)
    assert reference_stream_raw(key, [i]) == [seek_raw(key, i)]
    assert float(entries_uniform(key, [i])[0]) == seek_uniform(key, i)


def test_huge_indices_match_numpy_seek():
    key = (0xDEADBEEF, 12345)
    idx = [10**12, 10**12 + 1, 10**12 + 2, 10**12 + 3, 10**12 + 7, 3 * 10**12 + 5,
           2**62 + 1, 2**63 - 1, 2**32 * 4 + 2, 2**34 - 1]
    expected = [seek_raw(key, i) for i in idx]
    assert [int(w) for w in stream_raw(key, np.array(idx, dtype=np.int64))] == expected
    assert reference_stream_raw(key, idx) == expected
    u = entries_uniform(key, idx)
    assert u.tolist() == [seek_uniform(key, i) for i in idx]
    assert np.array_equal(u, (np.array(expected, dtype=np.uint64) >> np.uint64(11)) * 2.0**-53)


def test_uniform_is_generator_random():
    # numpy's Generator.random is (raw >> 11) * 2^-53, one word per double
    key = (7, 9)
    raw = np_philox(key).random_raw(1000)
    u = np.random.Generator(np_philox(key)).random(1000)
    assert np.array_equal(u, (raw >> np.uint64(11)) * 2.0**-53)
    assert u.min() >= 0.0 and u.max() < 1.0


def test_kernel_input_errors():
    with pytest.raises(InputError, match=r"`key` must be two integers in \[0, 2\^64\)"):
        stream_raw((1, 2, 3), [0])
    with pytest.raises(InputError, match="`key`"):
        stream_raw((1, 2**64), [0])
    with pytest.raises(InputError, match="`key`"):
        stream_raw((1.5, 2), [0])
    with pytest.raises(InputError, match="`key`"):
        stream_raw((-1, 2), [0])
    with pytest.raises(ShapeError, match=r"`counter` must have shape \(4,\); received shape"):
        philox4x64_10((1, 2), [0, 0, 0])
    with pytest.raises(ShapeError, match=r"\(n, 4\)"):
        philox4x64_10_batch((1, 2), np.zeros((3, 3), dtype=np.uint64))
    with pytest.raises(InputError, match="`counter` must hold integers"):
        philox4x64_10((1, 2), [0, 0, 0, -1])
    with pytest.raises(InputError, match=r"`flat_index` must hold integers in \[0, 2\^63\)"):
        stream_raw((1, 2), [-1])
    with pytest.raises(InputError, match="integer dtype"):
        entries_uniform((1, 2), [0.5])


# ----------------------------------------------------------------------------- the key
def test_param_key_is_stable_and_documented():
    # pinned: a change here changes every source's bits (bump KEY_DOMAIN's version)
    assert param_key(0, "layers.0.weight") == (4219214741044101645, 10127025639695375703)
    assert param_key(12345, "w") == (17082991217709635925, 170261956821116254)
    d = hashlib.blake2b(KEY_DOMAIN + b"77\x00" + "couche.é".encode(), digest_size=16).digest()
    assert param_key(77, "couche.é") == (int.from_bytes(d[:8], "little"),
                                         int.from_bytes(d[8:], "little"))
    assert param_key(np.int64(5), "a") == param_key(5, "a")
    assert param_key(2**100, "a") != param_key(2**100 + 1, "a")
    keys = {param_key(s, n) for s in range(20) for n in ("a", "b", "layers.0.weight", "a ")}
    assert len(keys) == 80


@pytest.mark.parametrize("seed, name, match", [
    (-1, "a", r"`seed` must be a non-negative int; received -1"),
    (True, "a", r"`seed` must be a non-negative int; received True"),
    (1.0, "a", r"`seed` must be a non-negative int; received 1.0"),
    (None, "a", r"`seed`"),
    (0, "", r"`name` must be a non-empty str; received ''"),
    (0, 3, r"`name` must be a non-empty str; received 3"),
])
def test_param_key_errors(seed, name, match):
    with pytest.raises(InputError, match=match):
        param_key(seed, name)


# ----------------------------------------------------------------------------- sources
SPECS = [
    {"w": (7,)},
    {"layers.0.weight": (13, 5), "layers.0.bias": (13,), "layers.2.weight": (3, 13)},
    {"conv": (4, 3, 3, 3), "scalar": (), "empty": (0, 5)},
]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("seed", [0, 1, 2**40 + 3])
@pytest.mark.parametrize("law", list(LAWS))
def test_virtual_entries_equal_dense_draw(spec, seed, law):
    virtual = VirtualSource(spec, law, seed)
    dense = DenseSource.draw(spec, law, seed)
    assert dense.spec == virtual.spec == {n: tuple(s) for n, s in spec.items()}
    assert dense.law == virtual.law == law and dense.seed == virtual.seed == seed
    rng = np.random.default_rng(seed % 97)
    for name, shape in spec.items():
        size = int(np.prod(shape))
        full = dense.dense(name)
        assert full.shape == shape and full.dtype == np.float64 and not full.flags.writeable
        assert np.array_equal(virtual.dense(name), full)
        idx = rng.permutation(size)
        assert np.array_equal(virtual.entries(name, idx), full.reshape(-1)[idx])
        assert np.array_equal(dense.entries(name, idx), full.reshape(-1)[idx])
        assert np.array_equal(virtual.entries(name, np.arange(size)), full.reshape(-1))
        # the documented formula, through numpy's own generator
        gen = np.random.Generator(np_philox(param_key(seed, name)))
        u = gen.random(size)
        assert np.array_equal(full.reshape(-1), u * LAWS[law].scale + LAWS[law].shift)
        if size:
            assert full.min() >= LAWS[law].low and full.max() < LAWS[law].high


def test_uniform_law_is_numpys_uniform():
    spec = {"w": (1000,)}
    src = VirtualSource(spec, "uniform[-1,1]", 3)
    gen = np.random.Generator(np_philox(param_key(3, "w")))
    assert np.array_equal(src.entries("w", np.arange(1000)), gen.uniform(-1.0, 1.0, 1000))
    # multiples of 2^-52
    v = src.dense("w")
    assert np.array_equal(v * 2.0**52, np.round(v * 2.0**52))


def test_large_virtual_parameter_parallel_equals_dense():
    spec = {"a": (300, 1000), "b": (10,)}
    virtual = VirtualSource(spec, "uniform[-1,1]", 11)
    dense = DenseSource.draw(spec, "uniform[-1,1]", 11)
    idx = np.random.default_rng(0).integers(0, 300_000, 150_000)
    assert np.array_equal(virtual.entries("a", idx), dense.entries("a", idx))
    assert np.array_equal(virtual.entries("a", np.arange(300_000)), dense.dense("a").ravel())
    assert np.array_equal(virtual.to_dense().dense("a"), dense.dense("a"))


def test_same_seed_same_bits_and_streams_differ():
    spec = {"a": (50, 40), "b": (50, 40)}
    s0 = DenseSource.draw(spec, "uniform[-1,1]", 5)
    s1 = DenseSource.draw(spec, "uniform[-1,1]", 5)
    assert np.array_equal(s0.dense("a"), s1.dense("a"))
    assert not np.array_equal(s0.dense("a"), s0.dense("b"))  # different names
    s2 = DenseSource.draw(spec, "uniform[-1,1]", 6)
    assert not np.array_equal(s0.dense("a"), s2.dense("a"))  # different seeds
    # a parameter's bits depend only on (seed, name): not on the rest of the spec
    alone = VirtualSource({"b": (2000,)}, "uniform[-1,1]", 5)
    assert np.array_equal(alone.entries("b", np.arange(2000)), s0.dense("b").ravel())
    # the law changes the map from u, not the stream
    u = VirtualSource(spec, "uniform[0,1]", 5).dense("a")
    assert np.array_equal(2.0 * u - 1.0, s0.dense("a"))
    # different streams look independent: correlation near 0
    assert abs(np.corrcoef(s0.dense("a").ravel(), s0.dense("b").ravel())[0, 1]) < 0.1


def test_huge_virtual_source_costs_no_memory():
    shape = (50_000, 20_000)  # 1e9 entries: 8 GB dense
    n_read = 100_000
    rng = np.random.default_rng(123)
    idx = rng.integers(0, shape[0] * shape[1], n_read)
    small = VirtualSource({"w": (2, 3)}, "uniform[-1,1]", 9)
    small.entries("w", np.arange(6))  # compiled/cached kernels loaded before timing
    small.entries("w", np.zeros(1 << 15, dtype=np.int64))
    tracemalloc.start()
    try:
        src = VirtualSource({"w": shape, "b": (50_000,)}, "uniform[-1,1]", 9)
        t0 = time.perf_counter()
        vals = src.entries("w", idx)
        seconds = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024  # the output (0.8 MB) and an index copy, not 8 GB
    assert seconds < 5.0  # about a millisecond on 2 cores; generous for shared machines
    assert vals.shape == (n_read,) and vals.min() >= -1.0 and vals.max() < 1.0
    key = param_key(9, "w")
    for j in list(range(5)) + [int(k) for k in rng.integers(0, n_read, 5)]:
        assert vals[j] == 2.0 * seek_uniform(key, int(idx[j])) - 1.0
    last = shape[0] * shape[1] - 1
    assert src.entries("w", [last])[0] == 2.0 * seek_uniform(key, last) - 1.0
    with using_memory_budget("100MB"), pytest.raises(
            LimitError, match=r"VirtualSource.dense\(`w`\): 1.00e9 float64 entries needs an "
                              r"estimated 7.45 GiB.*`entries\(name, flat_index\)`"):
        src.dense("w")
    with using_memory_budget("100MB"), pytest.raises(LimitError, match=r"DenseSource\.draw"):
        src.to_dense()


def test_dense_source_from_arrays():
    w = np.arange(6.0).reshape(2, 3)
    src = DenseSource({"w": w, "b": [1, 2]})
    w[0, 0] = 99.0  # the source holds a copy
    assert src.law is None and src.seed is None
    assert src.spec == {"w": (2, 3), "b": (2,)}
    assert src.dense("w")[0, 0] == 0.0 and not src.dense("w").flags.writeable
    assert src.dense("b").dtype == np.float64
    assert np.array_equal(src.entries("w", [[5, 0], [1, 1]]), [[5.0, 0.0], [1.0, 1.0]])
    assert src.entries("w", 4).shape == () and float(src.entries("w", 4)) == 4.0
    assert src.size("w") == 6
    assert isinstance(src, Source) and isinstance(VirtualSource({"w": (1,)}, "uniform[0,1]", 0),
                                                  Source)
    assert "DenseSource(spec={'w': (2, 3), 'b': (2,)}" in repr(src)
    with pytest.raises(ValueError, match="read-only"):
        src.dense("w")[0, 0] = 1.0


def test_virtual_source_value_semantics():
    a = VirtualSource({"w": (3, 4), "b": [3]}, "uniform[-1,1]", 0)
    b = VirtualSource({"w": (3, 4), "b": (3,)}, "uniform[-1,1]", np.int64(0))
    assert a == b and hash(a) == hash(b) and a.spec["b"] == (3,)
    assert a != VirtualSource({"w": (3, 4), "b": (3,)}, "uniform[-1,1]", 1)
    assert a != VirtualSource({"b": (3,), "w": (3, 4)}, "uniform[-1,1]", 0)  # order matters
    assert repr(a) == "VirtualSource(spec={'w': (3, 4), 'b': (3,)}, law='uniform[-1,1]', seed=0)"
    assert a.key("w") == param_key(0, "w") and a.size("w") == 12
    with pytest.raises(TypeError):
        a.spec["x"] = (1,)  # type: ignore[index]
    with pytest.raises(AttributeError):
        a.seed = 3  # type: ignore[misc]


@pytest.mark.parametrize("call, error, match", [
    (lambda s: s.entries("x", [0]), InputError,
     r"`name` must be a parameter of the source \('w', 'b'\); received 'x'"),
    (lambda s: s.entries(3, [0]), InputError, r"`name` must be a parameter .* received 3"),
    (lambda s: s.dense("x"), InputError, r"`name` must be a parameter"),
    (lambda s: s.entries("w", [0, 12]), InputError,
     r"`flat_index` of parameter `w` must hold integers in \[0, 12\); received 12 "
     r"\(at flat position 1\)"),
    (lambda s: s.entries("w", [-1]), InputError,
     r"`flat_index` of parameter `w` must hold integers in \[0, 12\); received -1"),
    (lambda s: s.entries("b", np.array([3], dtype=np.uint64)), InputError,
     r"`flat_index` of parameter `b` must hold integers in \[0, 3\); received 3"),
    (lambda s: s.entries("w", [1.0]), InputError,
     r"`flat_index` of parameter `w` must hold integers in \[0, 12\) \(an integer dtype\); "
     r"received \[1.0\] of dtype float64"),
    (lambda s: s.entries("w", np.zeros(10)), InputError,
     r"received an array of shape \(10,\) of dtype float64"),
    (lambda s: s.entries("w", True), InputError, r"dtype bool"),
    (lambda s: s.entries("w", [0, "a"]), InputError, r"`flat_index` of parameter `w`"),
    (lambda s: s.entries("w", [0, None]), InputError, r"`flat_index` of parameter `w`"),
])
@pytest.mark.parametrize("kind", ["virtual", "dense"])
def test_entry_errors(kind, call, error, match):
    spec = {"w": (3, 4), "b": (3,)}
    src = (VirtualSource(spec, "uniform[-1,1]", 0) if kind == "virtual"
           else DenseSource.draw(spec, "uniform[-1,1]", 0))
    with pytest.raises(error, match=match):
        call(src)


@pytest.mark.parametrize("args, error, match", [
    (({"w": (3,)}, "normal", 0), InputError,
     r"`law` must be one of 'uniform\[-1,1\]', 'uniform\[0,1\]' or 'uniform\[lo,hi\]' with "
     r"finite lo < hi; received 'normal'"),
    (({"w": (3,)}, None, 0), InputError, r"`law` must be one of"),
    (({"w": (3,)}, "uniform[-1,1]", -2), InputError,
     r"`seed` must be a non-negative int; received -2"),
    (({"w": (3,)}, "uniform[-1,1]", 1.5), InputError, r"`seed`.*received 1.5"),
    (({"w": (3.0,)}, "uniform[-1,1]", 0), ShapeError,
     r"the shape of parameter `w` must be a tuple of non-negative ints; received \(3.0,\)"),
    (({"w": (3, -1)}, "uniform[-1,1]", 0), ShapeError, r"parameter `w`.*received \(3, -1\)"),
    (({"w": None}, "uniform[-1,1]", 0), ShapeError, r"parameter `w`.*received None"),
    (({"w": (2**32, 2**31)}, "uniform[-1,1]", 0), ShapeError,
     r"parameter `w` must have fewer than 2\^63 entries"),
    (({"": (3,)}, "uniform[-1,1]", 0), InputError,
     r"a parameter name in `spec` must be a non-empty str; received ''"),
    (({1: (3,)}, "uniform[-1,1]", 0), InputError, r"a parameter name in `spec`.*received 1"),
    (([("w", (3,))], "uniform[-1,1]", 0), InputError,
     r"`spec` must be a mapping from parameter name to shape"),
])
@pytest.mark.parametrize("make", [VirtualSource, DenseSource.draw])
def test_source_construction_errors(make, args, error, match):
    with pytest.raises(error, match=match):
        make(*args)


def test_dense_source_errors():
    with pytest.raises(InputError, match=r"`law` must be given with `seed`"):
        DenseSource({"w": [1.0]}, seed=3)
    with pytest.raises(InputError, match=r"`law` must be one of"):
        DenseSource({"w": [1.0]}, law="gauss")
    with pytest.raises(InputError, match=r"`seed` must be a non-negative int"):
        DenseSource({"w": [1.0]}, law="uniform[-1,1]", seed=-1)
    with pytest.raises(InputError, match=r"parameter `w` must hold finite values"):
        DenseSource({"w": [1.0, np.nan]})
    with pytest.raises(InputError, match=r"parameter `w` must be an array of real numbers"):
        DenseSource({"w": ["a"]})
    with pytest.raises(InputError, match=r"`arrays` must be a mapping"):
        DenseSource([np.zeros(3)])  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"a parameter name in `arrays`"):
        DenseSource({"": np.zeros(3)})


def test_reference_twins_agree_with_kernels_on_random_input():
    rng = np.random.default_rng(2024)
    for _ in range(20):
        key = [int(w) for w in rng.integers(0, 2**64, 2, dtype=np.uint64)]
        idx = [int(i) for i in rng.integers(0, 2**62, 8)]
        assert reference_stream_raw(key, idx) == [int(w) for w in stream_raw(key, idx)]
        assert np.array_equal(reference_entries_uniform(key, idx), entries_uniform(key, idx))
    assert _philox.MAX_INDEX == 2**63 - 1


# ----------------------------------------------------------------------------- laws by name
@pytest.mark.parametrize("name", ["uniform[-1,1]", "uniform[-2.5,2.5]", "uniform[0.25, 3]",
                                  "uniform[-1.6817928305074292,1.6817928305074292]"])
def test_resolve_law_parses_uniform_ranges(name: str) -> None:
    from slth.sources import resolve_law

    law = resolve_law(name)
    u = np.array([0.0, 0.5, 1.0 - 2.0**-53])
    lo, hi = (float(t) for t in name.replace(" ", "")[8:-1].split(","))
    assert (law.low, law.high) == (lo, hi)
    np.testing.assert_allclose(law.from_uniform(u.copy()), lo + (hi - lo) * u, rtol=0, atol=1e-15)


@pytest.mark.parametrize("name", ["uniform[1,0]", "uniform[0,0]", "uniform[-inf,1]",
                                  "uniform[a,1]", "normal", 3])
def test_resolve_law_refuses_bad_names(name: object) -> None:
    from slth.sources import resolve_law

    with pytest.raises(InputError, match="`law` must be one of"):
        resolve_law(name)  # type: ignore[arg-type]


def test_per_parameter_laws_virtual_equals_dense() -> None:
    spec = {"q": (6, 3), "v": (4,)}
    laws = {"q": "uniform[-2,2]", "v": "uniform[-1,1]"}
    vs = VirtualSource(spec, laws, 11)
    ds = DenseSource.draw(spec, laws, 11)
    for name in spec:
        np.testing.assert_array_equal(vs.dense(name), ds.dense(name))
        flat = np.arange(int(np.prod(spec[name])))
        np.testing.assert_array_equal(vs.entries(name, flat), ds.dense(name).reshape(-1))
    # one law per parameter: q spans (-2, 2), and equals 2x the U[-1,1] draw of its key
    one = VirtualSource(spec, "uniform[-1,1]", 11)
    np.testing.assert_array_equal(vs.dense("q"), 2.0 * one.dense("q"))
    np.testing.assert_array_equal(vs.dense("v"), one.dense("v"))
    assert vs == VirtualSource(spec, dict(laws), 11)
    assert hash(vs) == hash(VirtualSource(spec, laws, 11))
    assert vs != one
    with pytest.raises(InputError, match="missing 'v'"):
        VirtualSource(spec, {"q": "uniform[-1,1]"}, 0)
    with pytest.raises(InputError, match="not in `spec`"):
        VirtualSource(spec, {**laws, "w": "uniform[-1,1]"}, 0)
