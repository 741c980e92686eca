"""Attention and transformer tickets (Otsuka et al. 2025, arXiv 2511.04217, Theorem 3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slth import bounds
from slth.constructions import REGISTRY
from slth.constructions import otsuka2025 as ot
from slth.errors import ConstructionError, InputError, LimitError, ShapeError
from slth.evaluate import approximation_error
from slth.nets import Conv2d, Dense, Network, ReLU, Residual
from slth.nets.attention import MultiHeadAttention, merged_matrices, transformer_block
from slth.sources import VirtualNetwork
from slth.testing.harness import check_ticket
from slth.ticket import Ticket


def attention_target(seed: int, *, d: int = 2, d_out: int = 1, heads: int = 1, T: int = 4,
                     mask: object = None) -> Network:
    """A random attention whose merged matrices have spectral norm <= 1/2 per head."""
    lay = MultiHeadAttention(d, d_out, heads, 2, 2, mask=mask)
    net = Network.random([lay], input_shape=(T, d), rng=seed)
    qk, vo = merged_matrices(lay, {k.split(".")[-1]: v for k, v in net.params.items()})
    s = 0.5 / max(float(np.linalg.norm(M, 2)) for M in (*qk, *vo))
    # qk scales with the square of the q/k scale, vo with the square of the v/out scale
    return net.with_params({k: v * math.sqrt(s) for k, v in net.params.items()})


def transformer_target(seed: int, blocks: int = 2, d: int = 4, T: int = 6) -> Network:
    layers = []
    for _ in range(blocks):
        layers += transformer_block(d, 2, 2, 2, 6)
    net = Network.random(layers, input_shape=(T, d), rng=seed)
    return net.with_params({k: 0.4 * v for k, v in net.params.items()})


def build_attention(target: Network, seed: int, **kw: object) -> Ticket:
    return ot.construct(target, n_qk=24, n_v=24, rng=seed, **kw)


# ----------------------------------------------------------------------------- masking
@pytest.mark.parametrize("virtual", [False, True])
def test_kept_entries_are_the_sources_bits_and_forward_is_source_times_mask(virtual):
    target = transformer_target(0)
    ticket = ot.construct(target, n_qk=16, n_v=16, n_ff=8, rng=3, virtual=virtual)
    src = ticket.source
    assert isinstance(src, VirtualNetwork) == virtual
    dense = src.to_network() if virtual else src
    for name in src.param_specs():
        idx, vals = ticket.kept_entries(name)
        assert vals.tobytes() == np.asarray(dense.params[name]).reshape(-1)[idx].tobytes()
    # the forward pass is the source's with every unkept entry zeroed
    masked = {}
    for name, p in dense.params.items():
        m = np.zeros(p.size, dtype=bool)
        m[ticket.kept[name]] = True
        masked[name] = np.where(m.reshape(p.shape), p, 0.0)
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (3, *target.input_shape))
    ref = dense.arch.forward(x, params=masked)
    np.testing.assert_allclose(ticket.forward(x), ref, rtol=0, atol=1e-12)


def test_the_source_follows_theorem_3s_laws():
    target = attention_target(1)
    ticket = ot.construct(target, n_qk=16, n_v=20, rng=0)
    p = ticket.source.params
    a = 16 ** 0.25
    for name in ("layers.0.q_weight", "layers.0.k_weight"):
        assert np.abs(p[name]).max() <= a and np.abs(p[name]).max() > 0.8 * a
    for name in ("layers.0.v_weight", "layers.0.out_weight"):
        assert np.abs(p[name]).max() <= 1.0
    lay = ticket.source.layers[0][1]
    assert (lay.d_qk, lay.d_v) == (16, 20)
    assert lay.score_scale == pytest.approx(1 / 4.0)
    # the q/k draws are a^(...) times the U[-1,1] draw of the same key: the same uniforms
    assert ticket.source.params["layers.0.q_weight"].shape == (16, 2)


def test_first_factors_are_block_diagonal():
    target = attention_target(2, d=3, d_out=2, heads=2)
    ticket = ot.construct(target, n_qk=12, n_v=9, rng=1)
    for name, n in (("layers.0.q_weight", 12), ("layers.0.v_weight", 9)):
        rows, cols = np.unravel_index(ticket.kept[name], (2 * n, 3))
        m = n // 3
        assert np.array_equal(cols, (rows % n) // m)   # unit j of block a reads input a only
        assert np.all((rows % n) < 3 * m)


# ----------------------------------------------------------------------------- the harness
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_harness_passes_on_attention_and_transformer_targets(seed):
    for target, build in (
        (attention_target(seed, d=2, heads=2, mask="causal"),
         lambda t, s, **kw: ot.construct(t, n_qk=16, n_v=16, rng=s, **kw)),
        (transformer_target(seed, blocks=1),
         lambda t, s, **kw: ot.construct(t, n_qk=16, n_v=16, n_ff=8, rng=s, **kw)),
    ):
        for virtual in (False, True):
            check_ticket(target, build(target, seed, virtual=virtual),
                         rebuilt=build(target, seed, virtual=virtual),
                         errors=ot.recorded_errors, rng=seed)


def test_merged_errors_equal_a_plain_loop_reference():
    target = attention_target(4, d=3, d_out=2, heads=2)
    ticket = ot.construct(target, n_qk=18, n_v=18, rng=5)
    p = {k.split(".")[-1]: np.asarray(v) for k, v in target.params.items()}
    src = ticket.source
    sp = {k.split(".")[-1]: np.asarray(v) for k, v in ticket.masked_params().items()}
    sp = {k: (v.toarray() if hasattr(v, "toarray") else v) for k, v in sp.items()}
    slay = src.layers[0][1]
    for h in range(2):
        for a in range(3):
            for b in range(3):
                t = sum(p["q_weight"][h * 2 + i, a] * p["k_weight"][h * 2 + i, b]
                        for i in range(2)) / math.sqrt(2)
                s = sum(sp["q_weight"][h * 18 + i, a] * sp["k_weight"][h * 18 + i, b]
                        for i in range(18)) * slay.score_scale
                assert ticket.errors["layers.0.qk"][h, a, b] == pytest.approx(abs(s - t),
                                                                             abs=1e-13)
    assert ticket.errors["layers.0.vo"].shape == (2, 3, 2)
    assert ticket.params["worst_error"] >= 0


# ----------------------------------------------------------------------------- Lemma 4/7
def test_merged_entries_meet_the_lemma_tolerance_at_the_theorem_width():
    """At Theorem 3's widths (C = OTSUKA2025_C) every instance meets its tolerance.

    The theorem promises probability >= 1 - eps = 0.9 per source; over 10 seeded
    sources at least 7 must succeed (a one-sided binomial margin: P(X <= 6) < 0.013
    at p = 0.9). Recorded: all 10 succeed.
    """
    eps, alpha = 0.1, math.sqrt(2.0)
    target = attention_target(0)
    n_qk, n_v = bounds.otsuka2025_widths(2, 1, 1, alpha, eps)
    tol_qk, tol_vo = ot.tolerances(2, 1, 1, alpha, eps)
    ok = 0
    for seed in range(10):
        ticket = ot.construct(target, eps=eps, alpha=alpha, rng=seed, on_failure="report")
        assert (ticket.params["n_qk"], ticket.params["n_v"]) == (n_qk, n_v)
        e = ticket.errors
        ok += bool(e["layers.0.qk"].max() <= tol_qk * (1 + 1e-9)
                   and e["layers.0.vo"].max() <= tol_vo * (1 + 1e-9)
                   and ticket.params["n_failed"] == 0)
    assert ok >= 7


def test_theorem_3_claim_error_below_eps_on_the_alpha_ball():
    eps, alpha = 0.1, math.sqrt(2.0)
    target = attention_target(3)
    ticket = ot.construct(target, eps=eps, alpha=alpha, rng=0)
    bound = ot.token_error_bound(target, ticket, alpha=alpha)
    assert bound <= eps
    x = np.random.default_rng(1).normal(size=(256, 4, 2))
    x *= alpha / np.linalg.norm(x, axis=-1, keepdims=True)
    err = np.linalg.norm(ticket.forward(x) - target.forward(x), axis=-1).max()
    assert err <= bound


# ----------------------------------------------------------------------------- Lemma 5/8
def _softmax(s: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    z = np.where(allowed, s, -np.inf)
    z = z - z.max()
    p = np.exp(z)
    return p / p.sum()


@settings(max_examples=200, deadline=None)
@given(T=st.integers(1, 40), d=st.integers(1, 6), seed=st.integers(0, 2**31 - 1),
       e_max=st.floats(1e-6, 0.5), alpha=st.floats(0.1, 10.0))
def test_softmax_perturbation_lemma_both_forms(T, d, seed, e_max, alpha):
    """||softmax(s; a) X - softmax(s + e; a) X|| within both published bounds (entries <= alpha)."""
    g = np.random.default_rng(seed)
    X = g.uniform(-alpha, alpha, (T, d))
    s = g.normal(scale=5.0, size=T)
    e = g.uniform(-e_max, e_max, T)
    allowed = g.random(T) < 0.7
    allowed[g.integers(T)] = True
    diff = np.linalg.norm((_softmax(s, allowed) - _softmax(s + e, allowed)) @ X)
    assert diff <= 4 * math.sqrt(d) * alpha * e_max * (1 + 1e-12)
    assert diff <= math.sqrt(d) * alpha * math.expm1(2 * e_max) * (1 + 1e-12)


# ----------------------------------------------------------------------------- T independence
def test_the_error_does_not_grow_with_T():
    """One fixed ticket, T = 4 ... 4096: the measured per-token error stays under the
    T-free certified bound, and the largest measured error at 4096 is within 2x of T = 4's
    (a max over more tokens grows only by sampling)."""
    target = attention_target(5, mask="causal")
    ticket = ot.construct(target, n_qk=24, n_v=24, rng=1)
    bound = ot.token_error_bound(target, ticket, alpha=1.0, length=4096)
    g = np.random.default_rng(0)
    errs = {}
    for T in (4, 16, 64, 256, 1024, 4096):
        x = g.normal(size=(max(2, 4096 // T), T, 2))
        x /= np.linalg.norm(x, axis=-1, keepdims=True)
        errs[T] = float(np.linalg.norm(ot.sequence_forward(ticket, x)
                                       - ot.sequence_forward(target, x), axis=-1).max())
    assert max(errs.values()) <= bound
    assert errs[4096] <= 2.0 * errs[4]
    # the bound itself: the rounding allowance is all that depends on T
    assert ot.token_error_bound(target, ticket, alpha=1.0, length=4) == pytest.approx(
        bound, rel=1e-6)


# ----------------------------------------------------------------------------- certificates
def _fuzzed(ticket: Ticket, g: np.random.Generator) -> Ticket:
    kept = {name: idx[g.random(idx.size) < 0.8] for name, idx in ticket.kept.items()}
    return Ticket.from_kept(ticket.source, kept, construction=ot.NAME, params=ticket.params,
                            layer_map=ticket.layer_map,
                            target_fingerprint=ticket.target_fingerprint)


@pytest.mark.parametrize("seed", range(4))
def test_certified_is_above_adversarial_on_fuzzed_tickets(seed):
    g = np.random.default_rng(seed)
    for target, ticket in (
        (attention_target(seed, d=2, heads=2), None),
        (transformer_target(seed, blocks=2), None),
    ):
        if isinstance(target.layers[0][1], MultiHeadAttention):
            ticket = ot.construct(target, n_qk=16, n_v=16, rng=seed)
        else:
            ticket = ot.construct(target, n_qk=16, n_v=16, n_ff=6, rng=seed)
        fuzzed = _fuzzed(ticket, g)
        rep = approximation_error(target, fuzzed, rng=seed, n_samples=256,
                                  adversarial_steps=30, restarts=4)
        assert rep.certified is not None and rep.adversarial <= rep.certified


def test_certificate_registered_and_used_by_evaluation():
    assert REGISTRY["otsuka2025"].certifier is ot.certified_bound
    target = attention_target(6)
    ticket = build_attention(target, 0)
    rep = approximation_error(target, ticket, rng=0)
    assert rep.certified == pytest.approx(ot.certified_bound(target, ticket))
    assert rep.adversarial <= rep.certified


# ----------------------------------------------------------------------------- transformers
def test_transformer_ticket_keeps_the_residual_paths_and_approximates():
    target = transformer_target(7, blocks=2)
    ticket = ot.construct(target, n_qk=80, n_v=80, n_ff=16, rng=0)
    kinds = [type(lay).__name__ for _, lay in ticket.source.layers]
    assert kinds == ["Residual"] * 4
    ff_body = ticket.source.layers[1][1].body
    assert [type(lay).__name__ for _, lay in ff_body] == ["Dense", "ReLU", "Dense", "ReLU",
                                                           "Dense", "ReLU", "Dense"]
    assert ticket.layer_map["layers.1.body.0"] == ("layers.1.body.0", "layers.1.body.1",
                                                   "layers.1.body.2")
    x = np.random.default_rng(0).normal(size=(16, *target.input_shape))
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    err = np.abs(ticket.forward(x) - target.forward(x)).max()
    assert err < 1e-2 * max(1.0, np.abs(target.forward(x)).max())


def test_saved_ticket_reloads_bit_for_bit(tmp_path):
    target = transformer_target(8, blocks=1)
    for virtual in (False, True):
        ticket = ot.construct(target, n_qk=16, n_v=16, n_ff=6, rng=4, virtual=virtual)
        path = tmp_path / f"t{virtual}.npz"
        ticket.save(path)
        back = Ticket.load(path)
        x = np.random.default_rng(0).normal(size=(3, *target.input_shape)) * 0.3
        assert back.forward(x).tobytes() == ticket.forward(x).tobytes()
        assert ot.certified_bound(target, back) == ot.certified_bound(target, ticket)


# ----------------------------------------------------------------------------- refusals
def test_refusals_name_the_problem():
    target = attention_target(0)
    with pytest.raises(InputError, match="outside the construction"):
        ot.construct(Network([Dense(2, 2)], input_shape=(4, 2),
                             params={"layers.0.weight": np.eye(2), "layers.0.bias": np.zeros(2)}),
                     n_qk=4, n_v=4)
    with pytest.raises(InputError, match="projection biases"):
        ot.construct(Network.random([MultiHeadAttention(2, 2, 1, 2, 2, bias=True)],
                                    input_shape=(3, 2), rng=0), n_qk=4, n_v=4)
    with pytest.raises(InputError, match="`n_qk` must be an int >= 2"):
        ot.construct(target, n_qk=1, n_v=4)
    with pytest.raises(InputError, match="give `n_qk` and `n_v`"):
        ot.construct(target)
    with pytest.raises(LimitError, match="at most 40"):
        ot.construct(target, n_qk=100, n_v=8)
    other = ot.construct(target, n_qk=8, n_v=8, rng=0).source
    with pytest.raises(InputError, match="`n_v` must equal the source's width 8"):
        ot.construct(target, n_qk=8, n_v=10, source=other)
    with pytest.raises(ShapeError, match="architecture"):
        ot.construct(attention_target(0, d_out=2), source=other)
    with pytest.raises(ConstructionError, match="missed their tolerance"):
        ot.construct(target, n_qk=4, n_v=4, weight_eps=1e-9, rng=0)
    with pytest.raises(ShapeError, match="token sequences"):
        ot.construct(Network.random([Conv2d(1, 1, 1)], input_shape=(1, 2, 2), rng=0),
                     n_qk=4, n_v=4)
    with pytest.raises(InputError, match="outside the construction"):
        ot.construct(Network.random([Residual([Dense(2, 2), ReLU()])], input_shape=(3, 2),
                                    rng=0), n_qk=4, n_v=4)


def test_one_width_for_both_and_the_users_error_curve(tmp_path):
    from slth.plot import error_vs_width

    target = attention_target(9)
    a = ot.construct(target, n=12, rng=0)
    b = ot.construct(target, n_qk=12, n_v=12, rng=0)
    assert all(np.array_equal(a.kept[k], b.kept[k]) for k in a.kept)
    with pytest.raises(InputError, match="not both"):
        ot.construct(target, n=12, n_v=12)
    curve = error_vs_width(target, "otsuka2025", [8, 24], trials=2, rng=0, samples=32,
                           steps=3, out_dir=tmp_path)
    assert curve.keyword == "n" and np.all(curve.adversarial <= curve.certified)
    assert np.median(curve.adversarial[:, 1]) < np.median(curve.adversarial[:, 0])


def test_gpt2_attention_benchmark_runs_quick():
    from benchmarks import gpt2_attention

    text = gpt2_attention.main(["--quick"])
    assert "vector features" in text and "subset-sum instances" in text
    # the per-token error at T = 256 is below the target's output scale
    row = next(line for line in text.splitlines() if line.startswith("T = 256: max / mean"))
    err = float(row.split()[-3])
    scale = float(next(line for line in text.splitlines()
                       if line.startswith("T = 256: mean per-token")).split()[-1])
    assert err < scale


@pytest.mark.torch
def test_torch_backend_gives_the_numba_ticket_in_exact_mode():
    pytest.importorskip("torch")
    target = transformer_target(10, blocks=1)
    cpu = ot.construct(target, n=16, n_ff=6, rng=3, virtual=True)
    dev = ot.construct(target, n=16, n_ff=6, rng=3, virtual=True, backend="torch",
                       device="cpu")
    assert dev.params["backend"] == "torch"
    assert all(np.array_equal(cpu.kept[k], dev.kept[k]) for k in cpu.kept)
    x = np.random.default_rng(0).normal(size=(4, *target.input_shape)) * 0.3
    assert cpu.forward(x).tobytes() == dev.forward(x).tobytes()
    # eps mode: the torch solver solves exactly, so no entry is worse than numba's subset
    a = ot.construct(target, n=16, n_ff=6, rng=3, virtual=True, weight_eps=1e-2,
                     on_failure="report")
    b = ot.construct(target, n=16, n_ff=6, rng=3, virtual=True, weight_eps=1e-2,
                     on_failure="report", backend="torch", device="cpu")
    for k in ("layers.0.body.0.qk", "layers.0.body.0.vo"):
        assert np.all(b.errors[k] <= np.maximum(a.errors[k], 1e-2) + 1e-12)
    with pytest.raises(InputError, match="`backend` must be"):
        ot.construct(target, n=16, n_ff=6, rng=3, backend="cuda")


# ----------------------------------------------------------------------------- review follow-ups
def test_certificate_refuses_a_source_of_another_layout():
    """A ticket's source with another mask or more heads than the target's layout would be
    certified wrongly by the softmax lemma: it is refused (regression)."""
    base = attention_target(11, d=2, heads=2)
    ticket = ot.construct(base, n=12, rng=0)
    bare = Ticket.from_kept(ticket.source, ticket.kept, construction=ot.NAME,
                            params=ticket.params)
    causal = Network([MultiHeadAttention(2, 1, 2, 2, 2, mask="causal")],
                     params=dict(base.params), input_shape=base.input_shape)
    with pytest.raises(ShapeError, match="not otsuka2025's layout"):
        ot.token_error_bound(causal, bare, alpha=1.0)
    one_head = Network([MultiHeadAttention(2, 1, 1, 2, 2)],
                       params={k: v[: v.shape[0] // 2] if "out" not in k else v[:, :2]
                               for k, v in base.params.items()},
                       input_shape=base.input_shape)
    with pytest.raises(ShapeError, match="not otsuka2025's layout"):
        ot.certified_bound(one_head, bare)
    other = Ticket.from_kept(ticket.source, ticket.kept, construction="pensia2020",
                             params=ticket.params)
    with pytest.raises(InputError, match="must be a otsuka2025 ticket"):
        ot.certified_bound(base, other)


def test_table_masks_construct_and_certify():
    table = ((True, False, False, True), (True, True, False, False), (False, True, True, False),
             (False, False, False, True))
    target = attention_target(12, d=2, heads=2, mask=table)
    ticket = ot.construct(target, n=16, rng=2)
    assert ticket.source.layers[0][1].mask == table
    rep = approximation_error(target, ticket, rng=0, n_samples=128, adversarial_steps=20)
    assert rep.adversarial <= rep.certified
    assert rep.certified == pytest.approx(2.0 * ot.token_error_bound(target, ticket, alpha=1.0),
                                          rel=1e-12)  # sqrt(T) = 2


def test_value_output_merged_errors_equal_a_plain_loop():
    target = attention_target(13, d=3, d_out=2, heads=3)
    ticket = ot.construct(target, n=15, rng=1)
    p = {k.split(".")[-1]: np.asarray(v) for k, v in target.params.items()}
    sp = {k.split(".")[-1]: (v.toarray() if hasattr(v, "toarray") else np.asarray(v))
          for k, v in ticket.masked_params().items()}
    for h in range(3):
        for a in range(3):
            for c in range(2):
                t = sum(p["v_weight"][h * 2 + i, a] * p["out_weight"][c, h * 2 + i]
                        for i in range(2))
                s = sum(sp["v_weight"][h * 15 + i, a] * sp["out_weight"][c, h * 15 + i]
                        for i in range(15))
                assert ticket.errors["layers.0.vo"][h, a, c] == pytest.approx(abs(s - t),
                                                                             abs=1e-13)


def test_query_key_source_is_the_unit_draw_scaled():
    """The q/k law U[-a, a], a = n^(1/4): the same uniforms as U[-1, 1] of the same key, times a."""
    from slth.sources import VirtualSource

    target = attention_target(14)
    ticket = ot.construct(target, n=16, rng=5)
    q = ticket.source.params["layers.0.q_weight"]
    unit = VirtualSource({"layers.0.q_weight": q.shape}, "uniform[-1,1]", 5)
    np.testing.assert_array_equal(q, 2.0 * unit.dense("layers.0.q_weight"))  # a = 16^(1/4) = 2
    assert ot.qk_law(16) == "uniform[-2.0,2.0]"
    with pytest.raises(InputError, match="`n_qk` must be an int >= 1"):
        ot.qk_law(-16)


def test_second_factor_entries_use_their_own_block():
    target = attention_target(15, d=3, d_out=2, heads=2)
    ticket = ot.construct(target, n=12, rng=3)
    m = 12 // 3
    r, _c = np.unravel_index(ticket.kept["layers.0.k_weight"], (24, 3))
    used_q = set(np.unravel_index(ticket.kept["layers.0.q_weight"], (24, 3))[0].tolist())
    assert set(r.tolist()) <= used_q            # a key edge only on a used unit
    assert np.all((r % 12) < 3 * m)
    _ro, co = np.unravel_index(ticket.kept["layers.0.out_weight"], (2, 24))
    used_v = set(np.unravel_index(ticket.kept["layers.0.v_weight"], (24, 3))[0].tolist())
    assert set(co.tolist()) <= used_v


def test_transformer_eps_mode_and_generator_rng():
    target = transformer_target(16, blocks=1, d=2, T=3)
    g = np.random.default_rng(0)
    ticket = ot.construct(target, eps=0.3, rng=g, on_failure="report")
    pr = ticket.params
    assert pr["mode"] == "eps" and pr["width_from"] == "eps" and isinstance(pr["seed"], int)
    again = ot.construct(target, eps=0.3, rng=pr["seed"], on_failure="report")
    assert all(np.array_equal(ticket.kept[k], again.kept[k]) for k in ticket.kept)
    tol = ot.tolerances(2, 2, 2, pr["alpha"], 0.3, block=True)
    assert pr["tolerances"]["layers.0.body.0"] == list(tol)
    assert pr["assumptions"]["max_ff_spectral_norm"] > 0


def test_argument_errors_name_the_parameter():
    target = attention_target(0)
    ticket = ot.construct(target, n=8, rng=0)
    with pytest.raises(InputError, match="`radius`"):
        ot.certified_bound(target, ticket, radius=-1.0)
    with pytest.raises(InputError, match="`heads` must be an int >= 1"):
        ot.tolerances(2, 1, 0, 1.0, 0.1)
    with pytest.raises(InputError, match="`alpha`"):
        ot.tolerances(2, 1, 1, -1.0, 0.1)
    with pytest.raises(InputError, match="`x` must be finite"):
        ot.sequence_forward(ticket, np.full((3, 2), np.nan))
    with pytest.raises(InputError, match="`length` must be an int >= 1"):
        ot.token_error_bound(target, ticket, alpha=1.0, length=0)
    with pytest.raises(InputError, match="`rng` must be"):
        ot.construct(target, n=8, rng=-3)


@pytest.mark.parametrize("seed", [0, 1])
def test_token_bound_above_a_direct_adversary_on_fuzzed_tickets(seed):
    """The theorem's metric (max over tokens, every token on the alpha-sphere), searched
    directly (Nelder-Mead from 8 starts) on a table-masked target of large norms with half its
    kept entries dropped: the search never exceeds the certified token bound."""
    from scipy.optimize import minimize

    g = np.random.default_rng(seed)
    mask = ((True, False, False), (True, True, False), (False, True, True))
    net = Network.random([MultiHeadAttention(2, 3, 2, 2, 2, mask=mask)], input_shape=(3, 2),
                         rng=seed)
    net = net.with_params({k: 3.0 * v for k, v in net.params.items()})
    tk = ot.construct(net, n=8, rng=seed)
    kept = {k: i[g.random(i.size) < 0.5] for k, i in tk.kept.items()}
    fz = Ticket.from_kept(tk.source, kept, construction=ot.NAME, params=tk.params,
                          target_fingerprint=tk.target_fingerprint)
    for alpha in (0.3, 2.0):
        bound = ot.token_error_bound(net, fz, alpha=alpha)

        def loss(z, alpha=alpha):
            x = z.reshape(1, 3, 2)
            x = alpha * x / np.linalg.norm(x, axis=-1, keepdims=True)
            return -np.linalg.norm(fz.forward(x) - net.forward(x), axis=-1).max()

        best = max(-minimize(loss, g.normal(size=6), method="Nelder-Mead",
                             options={"maxiter": 200}).fun for _ in range(8))
        assert 0 < best <= bound


def test_block_widths_follow_the_block_theorem():
    for d1, H, L, alpha, eps in ((2, 1, 1, 1.5, 0.1), (4, 2, 2, 2.0, 0.3), (8, 4, 1, 3.0, 0.01)):
        n_mha, n_fc = bounds.otsuka2025_block_widths(d1, H, L, alpha, eps)
        # the attention's share: Theorem 3's widths at eps / 4 (32 = 8 x 4)
        assert n_mha == bounds.otsuka2025_widths(d1, d1, H, alpha, eps / 4)[0]
        assert n_fc == math.ceil(d1 * bounds.OTSUKA2025_C
                                 * math.log(24 * alpha * L * H * d1 ** 2.5 / eps) - 1e-9)
    target = transformer_target(17, blocks=1, d=2, T=3)
    ticket = ot.construct(target, eps=0.3, rng=0, on_failure="report")
    _, n_fc = bounds.otsuka2025_block_widths(2, 2, 2, ticket.params["alpha"], 0.3)
    assert ticket.params["n_ff"] == math.ceil(n_fc / 4)
    with pytest.raises(InputError, match="`L`"):
        bounds.otsuka2025_block_widths(2, 1, 0, 1.0, 0.1)


def test_the_harness_property_over_the_transformer_strategy():
    """slth.testing's construction harness as a hypothesis property over the importable
    transformer strategy (masks of every kind, 1-2 blocks), dense sources."""
    from hypothesis import strategies as hst

    from slth.testing.harness import check_construction
    from slth.testing.strategies import transformer_networks

    targets = transformer_networks(max_blocks=2, max_width=3, max_heads=2, max_head_width=2,
                                   max_ff=4, max_len=4,
                                   elements=hst.floats(-0.4, 0.4, allow_subnormal=False))
    check_construction(lambda t, s: ot.construct(t, n=12, n_ff=4, rng=s), targets=targets,
                       max_examples=8, errors=ot.recorded_errors)


def test_virtual_transformer_reads_F_on_demand_with_the_sources_keys():
    """A virtual source's F is a VirtualMLP over F's own spec entries (key_names), not a dense
    copy: Pensia's virtual path reads only what the ticket may keep, with the same bits."""
    from slth.sources import VirtualMLP

    target = transformer_target(18, blocks=1)
    ticket = ot.construct(target, n=16, n_ff=6, rng=7, virtual=True)
    it = next(i for i in ot._plan(target)[0] if i.kind == "res_ff")
    sub = ot._ff_source_mlp(ticket.source, it, ot._ff_mlp(target, it), 6)
    assert isinstance(sub, VirtualMLP)
    assert dict(sub.key_names)["layers.0.weight"] == "layers.1.body.0.weight"
    dense = ticket.source.to_network()
    np.testing.assert_array_equal(sub.dense("layers.2.weight"),
                                  dense.params["layers.1.body.2.weight"])
    assert ticket.kept.keys() == ot.construct(target, n=16, n_ff=6, rng=7).kept.keys()
