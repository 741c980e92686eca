"""solve_batch(backend="torch"): the numba meet in the middle's masks, on a torch device."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from slth.errors import InputError  # noqa: E402
from slth.subset_sum import solve_batch  # noqa: E402
from slth.torch._solve import solve_exact  # noqa: E402


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 11, 16, 21])
@pytest.mark.parametrize("law", ["uniform", "product"])
def test_masks_equal_numba_exact(n, law):
    rng = np.random.default_rng(n)
    v = rng.uniform(-1, 1, (300, n))
    if law == "product":
        v = v * rng.uniform(0, 1, (300, n))
    t = rng.uniform(-1, 1, 300)
    a = solve_batch(v, t)
    b = solve_batch(v, t, backend="torch", device="cpu")
    assert np.array_equal(a.masks, b.masks) and np.array_equal(a.errors, b.errors)
    assert b.optimal.all()


def test_chunks_shared_values_eps_mode_and_large_magnitudes():
    rng = np.random.default_rng(1)
    v, t = rng.uniform(-1, 1, (97, 10)), rng.uniform(-1, 1, 97)
    ref = solve_batch(v, t).masks
    assert np.array_equal(solve_exact(v, t, device="cpu", chunk_bytes=1), ref)  # 1 per chunk
    shared = solve_batch(v[0], t, backend="torch", device="cpu")
    assert np.array_equal(shared.masks, solve_batch(np.tile(v[0], (97, 1)), t).masks)
    # eps mode: solved exactly, so within eps wherever numba's search found a subset
    e = solve_batch(v, t, eps=1e-3, backend="torch", device="cpu")
    assert np.all(e.errors[solve_batch(v, t, eps=1e-3).success] <= 1e-3)
    big = solve_batch(v * 1e200, t * 1e200, backend="torch", device="cpu")
    assert np.array_equal(big.masks, solve_batch(v * 1e200, t * 1e200).masks)


def test_bad_arguments():
    v, t = np.ones((2, 3)), np.zeros(2)
    with pytest.raises(InputError, match="`backend`"):
        solve_batch(v, t, backend="cuda")
    with pytest.raises(InputError, match="`method`"):
        solve_batch(v, t, backend="torch", method="greedy")
