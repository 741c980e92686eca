"""slth.torch.to_module: tickets as torch.nn.utils.prune-pruned modules, and back."""

from __future__ import annotations

import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.nn.utils import prune  # noqa: E402

from slth.constructions import pensia2020  # noqa: E402
from slth.constructions.targets import rescale  # noqa: E402
from slth.errors import InputError  # noqa: E402
from slth.nets import MLP, Conv2d, Dense, Flatten, MaxPool2d, Network, ReLU, Residual  # noqa: E402
from slth.ticket import Ticket  # noqa: E402
from slth.torch import from_module, ticket_from_module, to_module  # noqa: E402


def _tickets():
    target = rescale(MLP.random((3, 4, 2), rng=0, bias=True)).target
    yield pensia2020.construct(target, n=3, rng=1)
    yield pensia2020.construct(target, n=3, rng=1, virtual=True)
    net = Network.random([Conv2d(1, 2, 3, padding=1), ReLU(),
                          Residual([Conv2d(2, 2, 3, padding=1), ReLU()]), MaxPool2d(2),
                          Flatten(), Dense(8, 2)], rng=2, input_shape=(1, 4, 4))
    masks = {n: np.random.default_rng(3).random(s) < 0.4 for n, s in net.param_specs().items()}
    yield Ticket(net, masks)


@pytest.mark.parametrize("k", range(3))
def test_to_module_is_a_prune_module_with_the_source_bits(k):
    ticket = list(_tickets())[k]
    mod = to_module(ticket, device="cpu")
    names = list(ticket.source.param_specs())
    for name, mask in zip(names, ticket.masks, strict=True):
        path, local = name[len("layers."):].rsplit(".", 1)
        sub = mod.get_submodule(path)
        assert prune.is_pruned(sub)
        orig = getattr(sub, local + "_orig")
        assert not orig.requires_grad  # the random weights are frozen
        idx, vals = ticket.kept_entries(name)
        assert orig.detach().numpy().reshape(-1)[idx].tobytes() == vals.tobytes()
        assert np.array_equal(getattr(sub, local + "_mask").numpy().astype(bool), mask)
    x = np.random.default_rng(0).uniform(-1, 1, (5, *ticket.source.input_shape))
    with torch.no_grad():
        y = mod(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(y, ticket.forward(x), rtol=1e-12, atol=1e-14)
    # round trip: the same ticket (kept entries and source values) back
    back = ticket_from_module(mod, input_shape=ticket.source.input_shape)
    for name in names:
        assert np.array_equal(back.kept[name], ticket.kept[name])
        assert back.kept_entries(name)[1].tobytes() == ticket.kept_entries(name)[1].tobytes()
    assert isinstance(back.source, MLP) == (k < 2)
    # state_dict saves and loads into a fresh module of the same ticket
    buf = io.BytesIO()
    torch.save(mod.state_dict(), buf)
    buf.seek(0)
    fresh = to_module(ticket, device="cpu")
    fresh.load_state_dict(torch.load(buf))
    with torch.no_grad():
        assert torch.equal(fresh(torch.as_tensor(x)), mod(torch.as_tensor(x)))
    # prune.remove leaves the pruned weights, the same function
    for name in names:
        path, local = name[len("layers."):].rsplit(".", 1)
        prune.remove(mod.get_submodule(path), local)
    with torch.no_grad():
        np.testing.assert_allclose(mod(torch.as_tensor(x)).numpy(), y, rtol=0, atol=0)


def test_ticket_from_a_module_pruned_by_torch_itself():
    seq = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    seq = seq.double()
    prune.l1_unstructured(seq[0], "weight", amount=0.5)
    t = ticket_from_module(seq)
    assert isinstance(t.source, MLP)
    kept = int(seq[0].weight_mask.sum())
    assert 0 < kept < 15 and t.kept["layers.0.weight"].size == kept
    assert t.kept["layers.0.bias"].size == 5  # not pruned: kept whole
    x = np.random.default_rng(1).uniform(-1, 1, (4, 3))
    with torch.no_grad():
        np.testing.assert_allclose(seq(torch.as_tensor(x)).numpy(), t.forward(x), rtol=1e-12)
    bad = torch.nn.Sequential(torch.nn.Linear(2, 2)).double()
    prune.custom_from_mask(bad[0], "weight", torch.tensor([[0.5, 1.0], [1.0, 1.0]]))
    with pytest.raises(InputError, match="only 0 and 1"):
        ticket_from_module(bad)
    with pytest.raises(InputError, match="`ticket`"):
        to_module("no ticket")


def test_from_module_reads_models():
    seq = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    assert isinstance(from_module(seq), MLP)
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten())
    net = from_module(conv, input_shape=(1, 5, 5))
    assert not isinstance(net, MLP) and net.output_shape == (18,)
