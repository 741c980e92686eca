"""The shared realisation loop (slth.constructions._realise) gives the tickets of the old loops.

pensia2020, single_pair and malach2020 each had their own per-layer loop until
the loop moved to ``_realise``. The functions ``_old_*`` below are frozen copies
of those loops (as they were before the move, built on the unchanged layout
primitives gather_layer / scatter_layer / solve_batch / select_single); every
ticket the constructions build now must carry the same masks, errors and
params bit for bit. ``_MASK_HASHES`` are the sha256 of the masks the old code
built for sources drawn here (not by draw_source, so a change of the source
generator does not touch them).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import slth.constructions._common as common
import slth.constructions.single_pair as single_pair_module
from slth.constructions import malach2020, pensia2020, single_pair
from slth.constructions._realise import Block, realise_layers, row_blocks
from slth.constructions.layouts.pair_dense import gather_layer, scatter_layer, source_widths
from slth.errors import ConstructionError
from slth.nets import MLP
from slth.subset_sum import solve_batch


# ----------------------------------------------------------------------------- frozen loops
def _old_pensia(target, source, units, tolerances):
    widths = source_widths(target, units)
    layer_masks, w_errs, b_errs = [], [], []
    n_instances = n_failed = failed_weights = 0
    worst = 0.0
    for i in range(target.depth):
        W, b = target.weights[i], target.biases[i]
        d_out, d_in = W.shape
        inst = gather_layer(source.weights[2 * i], source.biases[2 * i],
                            source.weights[2 * i + 1], W, b, units[i])
        res = solve_batch(inst.values, inst.targets,
                          eps=None if tolerances is None else tolerances[i])
        layer_masks.append(scatter_layer(inst, res.masks, widths[2 * i + 1]))
        P = d_out * d_in
        err = res.errors
        w_errs.append(np.maximum(err[:P], err[P:2 * P]).reshape(d_out, d_in))
        b_errs.append(None if b is None else np.array(err[2 * P:]))
        n_instances += err.size
        worst = max(worst, float(err.max()) if err.size else 0.0)
        if tolerances is not None:
            nf, fw = common.tally_failures(err, tolerances[i], P)
            n_failed += nf
            failed_weights += fw
    return layer_masks, w_errs, b_errs, (n_instances, n_failed, failed_weights, worst)


def _old_single_pair(target, source, units, tolerances, chunk):
    widths = source_widths(target, units)
    layer_masks, w_errs, b_errs = [], [], []
    n_instances = n_failed = failed_weights = 0
    worst = 0.0
    for i in range(target.depth):
        W, b = target.weights[i], target.biases[i]
        d_out, d_in = W.shape
        kk, m = units[i], widths[2 * i + 1]
        first_mask = np.zeros((m, d_in), dtype=bool)
        first_bias_mask = None if b is None else np.zeros(m, dtype=bool)
        second_mask = np.zeros((d_out, m), dtype=bool)
        w_err = np.empty((d_out, d_in))
        b_err = None if b is None else np.empty(d_out)
        rows_per_chunk = max(1, chunk // ((2 * d_in + 1) * kk))
        A, cA, Bw = source.weights[2 * i], source.biases[2 * i], source.weights[2 * i + 1]
        for r0 in range(0, d_out, rows_per_chunk):
            r1 = min(d_out, r0 + rows_per_chunk)
            inst = gather_layer(A, cA, Bw[r0:r1], W[r0:r1], None if b is None else b[r0:r1],
                                kk)
            chosen, err = single_pair.select_single(inst.values, inst.targets, inst.valid)
            mf, mfb, ms = scatter_layer(inst, chosen, m)
            first_mask |= mf
            if mfb is not None:
                first_bias_mask |= mfb
            second_mask[r0:r1] = ms
            P = (r1 - r0) * d_in
            w_err[r0:r1] = np.maximum(err[:P], err[P:2 * P]).reshape(r1 - r0, d_in)
            if b_err is not None:
                b_err[r0:r1] = err[2 * P:]
            n_instances += err.size
            worst = max(worst, float(err.max()) if err.size else 0.0)
            if tolerances is not None:
                nf, fw = common.tally_failures(err, tolerances[i], P)
                n_failed += nf
                failed_weights += fw
        layer_masks.append((first_mask, first_bias_mask, second_mask))
        w_errs.append(w_err)
        b_errs.append(b_err)
    return layer_masks, w_errs, b_errs, (n_instances, n_failed, failed_weights, worst)


def _old_malach(target, source, units, tolerances):
    widths = malach2020.source_widths(target, units)
    layer_masks, w_errs, b_errs = [], [], []
    n_instances = n_failed = failed_weights = 0
    worst = 0.0
    for i in range(target.depth):
        W, b = target.weights[i], target.biases[i]
        d_out, d_in = W.shape
        kk = units[i]
        per_out = 2 * kk * (d_in + (b is not None))
        m = widths[2 * i + 1]
        A, cA, Bw = source.weights[2 * i], source.biases[2 * i], source.weights[2 * i + 1]
        first_mask = np.zeros((m, d_in), dtype=bool)
        first_bias_mask = None if b is None else np.zeros(m, dtype=bool)
        second_mask = np.zeros((d_out, m), dtype=bool)
        w_err = np.empty((d_out, d_in))
        b_err = None if b is None else np.empty(d_out)
        for o in range(d_out):
            rows = slice(o * per_out, (o + 1) * per_out)
            inst = gather_layer(A[rows], None if cA is None else cA[rows], Bw[o:o + 1, rows],
                                W[o:o + 1], None if b is None else b[o:o + 1], kk)
            chosen, err = single_pair.select_single(inst.values, inst.targets, inst.valid)
            mf, mfb, ms = scatter_layer(inst, chosen, per_out)
            first_mask[rows] = mf
            if mfb is not None:
                first_bias_mask[rows] = mfb
            second_mask[o, rows] = ms[0]
            w_err[o] = np.maximum(err[:d_in], err[d_in:2 * d_in])
            if b_err is not None:
                b_err[o] = err[2 * d_in]
            n_instances += err.size
            worst = max(worst, float(err.max()) if err.size else 0.0)
            if tolerances is not None:
                nf, fw = common.tally_failures(err, tolerances[i], d_in)
                n_failed += nf
                failed_weights += fw
        layer_masks.append((first_mask, first_bias_mask, second_mask))
        w_errs.append(w_err)
        b_errs.append(b_err)
    return layer_masks, w_errs, b_errs, (n_instances, n_failed, failed_weights, worst)


def _flat_masks(source, layer_masks):
    """The old ticket assembly: masks in ``source.parameters()`` order."""
    masks = []
    for i, (mf, mfb, ms) in enumerate(layer_masks):
        masks.append(mf)
        if source.biases[2 * i] is not None:
            masks.append(mfb if mfb is not None else np.zeros(source.biases[2 * i].shape, bool))
        masks.append(ms)
        if source.biases[2 * i + 1] is not None:
            masks.append(np.zeros(source.biases[2 * i + 1].shape, dtype=bool))
    return masks


def _assert_same(ticket, old):
    layer_masks, w_errs, b_errs, (n_inst, n_failed, failed_w, worst) = old
    expected = _flat_masks(ticket.source, layer_masks)
    assert len(ticket.masks) == len(expected)
    for got, exp in zip(ticket.masks, expected):
        assert got.dtype == exp.dtype and got.shape == exp.shape
        assert np.array_equal(got, exp)
    for got, exp in zip(ticket.weight_errors, w_errs):
        assert got.tobytes() == np.ascontiguousarray(exp).tobytes()
    for got, exp in zip(ticket.bias_errors, b_errs):
        assert (got is None) == (exp is None)
        if exp is not None:
            assert got.tobytes() == np.ascontiguousarray(exp).tobytes()
    assert ticket.params["n_instances"] == n_inst
    assert ticket.params["n_failed"] == n_failed
    assert ticket.params["failed_weights"] == failed_w
    assert ticket.params["worst_error"] == worst


def _mask_hash(ticket) -> str:
    h = hashlib.sha256()
    for m in ticket.masks:
        h.update(str(m.shape).encode())
        h.update(np.packbits(m).tobytes())
    return h.hexdigest()[:16]


# ----------------------------------------------------------------------------- fixtures
def _targets():
    rng = np.random.default_rng(5)
    plain = MLP([rng.uniform(-0.5, 0.5, (5, 3)), rng.uniform(-0.5, 0.5, (2, 5))])
    biased = MLP([rng.uniform(-0.5, 0.5, (4, 3)), rng.uniform(-0.5, 0.5, (2, 4))],
                 [rng.uniform(-0.3, 0.3, 4), rng.uniform(-0.3, 0.3, 2)])
    return {"plain": plain, "biased": biased}


def _source(target, widths, seed):
    """A uniform source of the given widths, drawn here (bias on every first layer of a pair)."""
    rng = np.random.default_rng(seed)
    weights, biases = [], []
    for s in range(len(widths) - 1):
        weights.append(rng.uniform(-1.0, 1.0, (widths[s + 1], widths[s])))
        biases.append(rng.uniform(-1.0, 1.0, widths[s + 1])
                      if s % 2 == 0 and target.biases[s // 2] is not None else None)
    return MLP(weights, biases)


# masks of tickets built by the loops before the move (see module docstring)
_MASK_HASHES = {
    ("pensia2020", "plain"): "ab348cdf1e6bdef7",
    ("pensia2020", "biased"): "3a738b9c09151435",
    ("single_pair", "plain"): "eafedbf71c59389f",
    ("single_pair", "biased"): "d9444fbdcbf3c332",
    ("malach2020", "plain"): "fd8462cf6b80562c",
    ("malach2020", "biased"): "00dabb78461a7a0f",
}


def _build(name, target, seed=11):
    if name == "pensia2020":
        units = (6, 5)
        src = _source(target, source_widths(target, units), seed)
        return pensia2020.construct(target, eps=0.2, source=src, on_failure="report"), units
    if name == "single_pair":
        units = (9, 7)
        src = _source(target, source_widths(target, units), seed)
        return single_pair.construct(target, eps=0.3, source=src, on_failure="report"), units
    units = (4, 3)
    src = _source(target, malach2020.source_widths(target, units), seed)
    return malach2020.construct(target, eps=0.3, source=src, on_failure="report"), units


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize("kind", ["plain", "biased"])
@pytest.mark.parametrize("name", ["pensia2020", "single_pair", "malach2020"])
def test_masks_match_the_old_loops_hashes(name, kind):
    ticket, _ = _build(name, _targets()[kind])
    assert _mask_hash(ticket) == _MASK_HASHES[(name, kind)]


@pytest.mark.parametrize("kind", ["plain", "biased"])
@pytest.mark.parametrize("mode", ["eps", "exact", "weight_eps", "failing"])
def test_pensia_matches_the_frozen_loop(kind, mode):
    target = _targets()[kind]
    kwargs = {"eps": {"eps": 0.2}, "exact": {"n": 6}, "weight_eps": {"n": 5, "weight_eps": 0.02},
              "failing": {"eps": 0.01, "n": 3}}[mode]
    ticket = pensia2020.construct(target, rng=3, on_failure="report", **kwargs)
    units = tuple(ticket.params["n"])
    tol = ticket.params["weight_tolerance"]
    old = _old_pensia(target, ticket.source, units, tol)
    _assert_same(ticket, old)
    if mode == "failing":
        assert ticket.params["n_failed"] > 0
    elif mode in ("eps", "exact"):
        assert ticket.params["n_failed"] == 0


@pytest.mark.parametrize("kind", ["plain", "biased"])
@pytest.mark.parametrize("chunk", [None, 40, 200])
@pytest.mark.parametrize("eps", [None, 0.3])
def test_single_pair_matches_the_frozen_loop(kind, chunk, eps, monkeypatch):
    if chunk is not None:  # several row chunks per layer
        monkeypatch.setattr(single_pair_module, "_CHUNK_ELEMENTS", chunk)
    target = _targets()[kind]
    ticket = single_pair.construct(target, eps=eps, k=8, rng=4, on_failure="report")
    old = _old_single_pair(target, ticket.source, (8, 8), ticket.params["weight_tolerance"],
                           single_pair_module._CHUNK_ELEMENTS)
    _assert_same(ticket, old)


@pytest.mark.parametrize("kind", ["plain", "biased"])
@pytest.mark.parametrize("eps", [None, 0.3])
def test_malach_matches_the_frozen_loop(kind, eps):
    target = _targets()[kind]
    ticket = malach2020.construct(target, eps=eps, k=5, rng=6, on_failure="report")
    old = _old_malach(target, ticket.source, (5, 5), ticket.params["weight_tolerance"])
    _assert_same(ticket, old)


def test_params_and_timings_keep_their_keys_and_order():
    target = _targets()["biased"]
    timings: dict[str, float] = {}
    t = pensia2020.construct(target, eps=0.2, rng=0, timings=timings, on_failure="report")
    assert list(timings) == ["draw", "gather", "solve", "scatter", "ticket", "total"]
    assert list(t.params)[:13] == ["paper", "mode", "weight_eps", "eps", "delta", "n", "C",
                                   "width_from", "weight_tolerance", "n_instances", "n_failed",
                                   "failed_weights", "worst_error"]
    assert list(t.params)[13:17] == ["seed", "source_given", "source_law", "layout"]
    for mod in (single_pair, malach2020):
        timings = {}
        t = mod.construct(target, eps=0.3, k=4, rng=0, timings=timings, on_failure="report")
        assert list(timings) == ["draw", "gather", "select", "scatter", "ticket", "total"]
        assert list(t.params)[7:12] == ["weight_tolerance", "n_instances", "n_failed",
                                        "failed_weights", "worst_error"]
    assert "per target weight (i, j)" in t.params["layout"]


def test_failures_still_raise_with_the_constructions_hint():
    target = _targets()["plain"]
    with pytest.raises(ConstructionError, match=r"pensia2020: .* increase `n` \(Theorem 1"):
        pensia2020.construct(target, eps=0.01, n=2, rng=0)
    with pytest.raises(ConstructionError, match="increase `n` or `weight_eps`"):
        pensia2020.construct(target, n=2, weight_eps=1e-6, rng=0)
    with pytest.raises(ConstructionError, match=r"single_pair: .*single_pair_units"):
        single_pair.construct(target, eps=0.01, k=2, rng=0)
    with pytest.raises(ConstructionError, match=r"malach2020: .*malach2020_units"):
        malach2020.construct(target, eps=0.01, k=2, rng=0)


def test_realise_layers_with_a_custom_selector_and_blocks():
    """A toy selector (keep nothing) through row blocks: masks empty, errors = |targets|."""
    target = _targets()["biased"]
    units = (3, 3)
    source = _source(target, source_widths(target, units), 1)

    def keep_nothing(values, targets, valid, tolerance):
        assert tolerance == 0.5
        return np.zeros(values.shape, dtype=bool), np.abs(targets)

    def blocks(i):
        return row_blocks(target.widths[i + 1], source.weights[2 * i].shape[0], 1)

    r = realise_layers(source, target, units, select=keep_nothing, tolerances=(0.5, 0.5),
                       blocks=blocks, phase="toy")
    assert list(r.phases) == ["gather", "toy", "scatter"]
    for (mf, mfb, ms), W, b, we, be in zip(r.layer_masks, target.weights, target.biases,
                                            r.weight_errors, r.bias_errors):
        assert not mf.any() and not ms.any() and not mfb.any()
        assert np.array_equal(we, np.abs(W)) and np.array_equal(be, np.abs(b))
    n_params = sum(w.size for w in target.weights) + sum(b.size for b in target.biases)
    assert r.n_instances == 2 * sum(w.size for w in target.weights) + sum(
        b.size for b in target.biases)
    bad = sum(int(np.count_nonzero(np.abs(p) > 0.5)) for p in target.parameters())
    assert r.failed_weights == bad <= n_params
    assert r.counts()["worst_error"] == max(float(np.abs(p).max()) for p in target.parameters())


def test_row_blocks_cover_the_outputs_once():
    blocks = row_blocks(7, 12, 3)
    assert [(b.outputs.start, b.outputs.stop) for b in blocks] == [(0, 3), (3, 6), (6, 7)]
    assert all(b.hidden == slice(0, 12) for b in blocks)
    assert row_blocks(2, 4, 0) == (Block(slice(0, 4), slice(0, 1)), Block(slice(0, 4),
                                                                         slice(1, 2)))


def test_old_names_still_import_from_common():
    for name in common.__all__:
        assert hasattr(common, name), name
    from slth.constructions import (  # noqa: F401
        RescaledTarget,
        bounded_target,
        nested_source,
        rescale,
        source_widths,
    )
