"""The Pensia layout gathers its instances from a virtual source, reading only keepable entries."""

from __future__ import annotations

import numpy as np
import pytest

from slth import MLP
from slth.constructions import bounded_target
from slth.constructions.layouts.pair_dense import (
    gather_layer,
    gather_layer_from_source,
    source_spec,
    source_widths,
)
from slth.sources import DenseSource, VirtualSource


def _mlp(dense: DenseSource, target: MLP, units) -> MLP:
    L = 2 * target.depth
    return MLP([dense.dense(f"weights[{s}]") for s in range(L)],
               [dense.dense(f"biases[{s}]") if f"biases[{s}]" in dense.spec else None
                for s in range(L)])


@pytest.mark.parametrize("bias", [False, True])
def test_virtual_instances_equal_the_dense_ones_bit_for_bit(bias):
    net = bounded_target((3, 5, 2), rng=0)
    target = MLP(net.weights, [np.full(5, 0.2), np.full(2, -0.1)] if bias else None)
    units = (6, 4)
    spec = source_spec(target, units)
    assert [spec[f"weights[{s}]"] for s in range(4)] == [
        (w1, w0) for w0, w1 in zip(source_widths(target, units)[:-1],
                                   source_widths(target, units)[1:])]
    virtual = VirtualSource(spec, "uniform[-1,1]", 7)
    dense = DenseSource.draw(spec, "uniform[-1,1]", 7)
    src = _mlp(dense, target, units)
    for layer in range(2):
        ref = gather_layer(src.weights[2 * layer], src.biases[2 * layer],
                           src.weights[2 * layer + 1], target.weights[layer],
                           target.biases[layer], units[layer])
        got = gather_layer_from_source(virtual, target, layer, units[layer])
        for field in ("values", "targets", "valid", "units_pos", "units_neg"):
            assert np.array_equal(getattr(got, field), getattr(ref, field)), field
        assert (got.units_bias is None) == (ref.units_bias is None)
        # a block of output rows is the matching slice
        part = gather_layer_from_source(virtual, target, layer, units[layer], rows=slice(1, 2))
        d_in = target.widths[layer]
        P = target.widths[layer + 1] * d_in
        assert np.array_equal(part.values[:d_in], ref.values[d_in:2 * d_in])
        assert np.array_equal(part.values[d_in:2 * d_in], ref.values[P + d_in:P + 2 * d_in])


def test_only_keepable_first_layer_entries_are_read(monkeypatch):
    target = bounded_target((4, 3, 2), rng=1)
    spec = source_spec(target, (5, 5))
    virtual = VirtualSource(spec, "uniform[-1,1]", 3)
    read: dict[str, int] = {}
    original = VirtualSource.entries

    def counting(self, name, flat_index):
        read[name] = read.get(name, 0) + int(np.size(flat_index))
        return original(self, name, flat_index)

    monkeypatch.setattr(VirtualSource, "entries", counting)
    gather_layer_from_source(virtual, target, 0, 5)
    m, _ = spec["weights[0]"]
    assert read["weights[0]"] == m            # the block diagonal, not m * d_in
    assert read["weights[1]"] == spec["weights[1]"][0] * m


@pytest.mark.parametrize("widths,n,rows", [
    ((131, 3, 2), 3, slice(0, 3)),     # m = 786: rows start off a Philox block boundary
    ((131, 3, 2), 3, slice(1, 2)),
    ((70, 4, 3), 5, slice(0, 4)),      # two column runs per row (70 > 64 blocks j)
    ((3, 5, 2), 2, slice(2, 5)),
])
@pytest.mark.parametrize("bias", [False, True])
def test_fused_kernel_matches_numpy_twin_on_random_layouts(widths, n, rows, bias):
    rng = np.random.default_rng(sum(widths) + n)
    ws = [rng.uniform(-1, 1, (widths[i + 1], widths[i])) for i in range(len(widths) - 1)]
    bs = [rng.uniform(-0.5, 0.5, w.shape[0]) for w in ws] if bias else None
    target = MLP(ws, bs)
    spec = source_spec(target, (n,) * target.depth)
    virtual = VirtualSource(spec, "uniform[-1,1]", int(rng.integers(1 << 30)))
    for layer in range(target.depth):
        sl = slice(0, min(rows.stop, target.widths[layer + 1])) if layer else rows
        fused = gather_layer_from_source(virtual, target, layer, n, rows=sl, fused=True)
        plain = gather_layer_from_source(virtual, target, layer, n, rows=sl)
        for f in ("values", "targets", "valid", "units_pos", "units_neg"):
            assert getattr(fused, f).tobytes() == getattr(plain, f).tobytes(), f
        assert (fused.units_bias is None) == (plain.units_bias is None) == (not bias)
        if bias:
            np.testing.assert_array_equal(fused.units_bias, plain.units_bias)


def test_layer_prelude_is_shared_by_row_blocks():
    from slth.constructions.layouts.pair_dense import _gather_rows, _layer_prelude

    target = bounded_target((6, 9, 2), rng=4)
    n = 4
    virtual = VirtualSource(source_spec(target, (n, n)), "uniform[-1,1]", 2)
    pre = _layer_prelude(virtual, target, 0, n, True)
    whole = gather_layer_from_source(virtual, target, 0, n, fused=True)
    d_in = target.widths[0]
    P = target.widths[1] * d_in
    for r0, r1 in ((0, 4), (4, 9)):
        part = _gather_rows(pre, virtual, target.weights[0][r0:r1], None, r0)
        p = (r1 - r0) * d_in
        assert part.values[:p].tobytes() == whole.values[r0 * d_in:r1 * d_in].tobytes()
        assert part.values[p:].tobytes() == whole.values[P + r0 * d_in:P + r1 * d_in].tobytes()
