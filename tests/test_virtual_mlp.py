"""VirtualMLP: an MLP's architecture over a virtual source, entries on demand."""

from __future__ import annotations

import numpy as np
import pytest

from slth import InputError, ShapeError
from slth.sources import DenseSource, VirtualMLP, VirtualSource


def test_architecture_and_entries_match_the_dense_draw():
    spec = {"weights[0]": (5, 3), "biases[0]": (5,), "weights[1]": (2, 5)}
    v = VirtualMLP(VirtualSource(spec, "uniform[-1,1]", 11))
    assert v.widths == (3, 5, 2) and v.depth == 2 and v.has_biases
    assert v.parameter_names() == ("layers.0.weight", "layers.0.bias", "layers.2.weight")
    assert v.parameter_layers() == (0, 0, 1) and v.n_params == 15 + 5 + 10
    net = v.to_mlp()
    dense = DenseSource.draw(spec, "uniform[-1,1]", 11)
    for name, p in zip(net.parameter_names(), net.parameters()):
        assert np.array_equal(p, dense.dense(v.key_names[name]))  # drawn under slth 0.1's names
        idx = np.arange(p.size)[::2]
        assert np.array_equal(v.entries(name, idx), p.ravel()[idx])


@pytest.mark.parametrize(("spec", "exc", "match"), [
    ({"w": (2, 2)}, InputError, "weights\\[0\\]"),
    ({"weights[0]": (2, 2), "extra": (1,)}, InputError, "only the weights"),
    ({"weights[0]": (2, 3), "weights[1]": (2, 3)}, ShapeError, "columns"),
    ({"weights[0]": (2, 3), "biases[0]": (3,)}, ShapeError, "biases"),
])
def test_bad_specs(spec, exc, match):
    with pytest.raises(exc, match=match):
        VirtualMLP(VirtualSource(spec, "uniform[-1,1]", 0))
    with pytest.raises(InputError, match="VirtualSource"):
        VirtualMLP("source")
