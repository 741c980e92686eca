"""slth.torch.approximation_error agrees with the numpy evaluation (same samples, same search)."""

from __future__ import annotations

import numpy as np
import pytest
from tolerances import TOL

torch = pytest.importorskip("torch")

from slth import evaluate  # noqa: E402
from slth.constructions import bounded_target, malach2020, pensia2020  # noqa: E402
from slth.nets import Conv2d, Dense, Flatten, Network, ReLU  # noqa: E402
from slth.ticket import Ticket  # noqa: E402
from slth.torch import approximation_error  # noqa: E402


def _cases():
    t = bounded_target((3, 5, 2), rng=0)
    yield t, pensia2020.construct(t, n=4, rng=1)
    yield t, pensia2020.construct(t, n=4, rng=1, virtual=True)
    yield t, malach2020.construct(t, k=30, rng=2)
    net = Network.random([Conv2d(1, 2, 3), ReLU(), Flatten(), Dense(8, 2)], rng=3,
                         input_shape=(1, 4, 4))
    src = Network.random(net.layers, rng=4, input_shape=(1, 4, 4))
    masks = {n: np.random.default_rng(5).random(s) < 0.6 for n, s in src.param_specs().items()}
    yield net, Ticket(src, masks)


@pytest.mark.parametrize("k", range(4))
def test_float64_agrees_with_numpy(k):
    target, ticket = list(_cases())[k]
    kw = dict(n_samples=256, rng=7, adversarial_steps=15, restarts=4, check_target=False)
    a = evaluate.approximation_error(target, ticket, **kw)
    b = approximation_error(target, ticket, device="cpu", dtype=torch.float64, **kw)
    tol = TOL[np.dtype(np.float64)]
    assert b.sampled_max == pytest.approx(a.sampled_max, rel=tol, abs=tol)
    assert b.sampled_mean == pytest.approx(a.sampled_mean, rel=tol, abs=tol)
    # the same search from the same starts: the same value to rounding (a ReLU kink hit
    # differently could change the path; these cases do not)
    assert b.adversarial == pytest.approx(a.adversarial, rel=1e-9, abs=tol)
    assert b.certified == a.certified and b.certified_note == a.certified_note
    assert b.sampled_max <= b.adversarial


def test_float32_within_its_tolerance_and_arguments_checked():
    target, ticket = next(_cases())
    kw = dict(n_samples=128, rng=0, adversarial_steps=5, restarts=2)
    a = evaluate.approximation_error(target, ticket, **kw)
    b = approximation_error(target, ticket, device="cpu", dtype="float32", batch_size=50, **kw)
    assert b.sampled_max == pytest.approx(a.sampled_max, abs=10 * TOL[np.dtype(np.float32)])
    from slth.errors import InputError

    with pytest.raises(InputError, match="n_samples"):
        approximation_error(target, ticket, n_samples=0)
