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
