"""Ticket files written by slth 0.1 (format version 2) load under the network names, bit for bit.

``tests/data/ticket_v2_*.npz`` were written by slth at commit edd1b18 (the last main
before MLPs became networks): a Pensia et al. (2020) ticket for a rescaled 3-4-2
target with biases (n = 3, seed 5) over a dense and over a virtual source, with the
forward passes that slth computed on seven inputs (``ticket_v2_expected.npz``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from slth import certify
from slth.nets import MLP
from slth.sources import VirtualMLP
from slth.ticket import FORMAT_VERSION, Ticket

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def expected():
    with np.load(DATA / "ticket_v2_expected.npz") as f:
        return {k: f[k] for k in f.files}


@pytest.mark.parametrize("kind", ["dense", "virtual"])
def test_version_2_files_load_bit_for_bit(kind, expected, tmp_path):
    t = Ticket.load(DATA / f"ticket_v2_{kind}.npz")
    assert isinstance(t.source, VirtualMLP if kind == "virtual" else MLP)
    assert t.construction == "pensia2020" and t.mlp_layer_map == ((0, 1), (2, 3))
    assert list(t.kept)[:2] == ["layers.0.weight", "layers.0.bias"]
    assert t.forward(expected["x"]).tobytes() == expected[kind].tobytes()
    if kind == "dense":
        np.testing.assert_array_equal(t.kept["weights[0]"], expected["kept_dense_w0"])
    else:
        np.testing.assert_array_equal(t.kept["layers.4.weight"], expected["kept_virtual_w2"])
    target = MLP([expected["w0"], expected["w1"]], [expected["b0"], expected["b1"]])
    assert t.target_fingerprint == target.fingerprint()
    bound = certify.certified_bound(target, t)
    assert np.isfinite(bound) and bound > 0
    # saved again, it is a version-3 file of the same ticket
    t.save(tmp_path / "t3.npz")
    with np.load(tmp_path / "t3.npz", allow_pickle=False) as f:
        assert json.loads(bytes(f["__metadata__"]).decode())["version"] == FORMAT_VERSION == 3
    back = Ticket.load(tmp_path / "t3.npz")
    assert back.forward(expected["x"]).tobytes() == expected[kind].tobytes()
    assert all(np.array_equal(back.kept[n], t.kept[n]) for n in t.kept)
    assert dict(back.layer_map) == dict(t.layer_map)
    for a, b in zip(back.weight_errors, t.weight_errors, strict=True):
        assert a.tobytes() == b.tobytes()
    assert certify.certified_bound(target, back) == bound
