"""Attention layers (slth.nets.attention): loop references, vjps, masks, blocks, files."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slth.errors import InputError, ShapeError
from slth.nets import Architecture, Dense, Network, ReLU, Residual
from slth.nets.attention import (
    MultiHeadAttention,
    attention_scores,
    merged_matrices,
    transformer_block,
)
from slth.testing import _attention_strategies as ast

TOL = 1e-12
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


# ====================================================================== plain references
def ref_allowed(mask, t):
    """Attended (query, key) pairs, written out entry by entry."""
    if mask is None:
        return [[True] * t for _ in range(t)]
    if mask == "causal":
        return [[j <= i for j in range(t)] for i in range(t)]
    return [list(row) for row in mask]


def ref_attention(layer, params, x):
    """One batch row, one head, one query token at a time; softmax with math.exp."""
    b, t, _ = x.shape
    allowed = ref_allowed(layer.mask, t)
    scale = 1.0 / math.sqrt(layer.d_qk) if layer.scale is None else layer.scale
    y = np.zeros((b, t, layer.d_out))
    for n in range(b):
        for h in range(layer.heads):
            rq = slice(h * layer.d_qk, (h + 1) * layer.d_qk)
            rv = slice(h * layer.d_v, (h + 1) * layer.d_v)
            wq, wk = params["q_weight"][rq], params["k_weight"][rq]
            wv, wo = params["v_weight"][rv], params["out_weight"][:, rv]

            def proj(w, name, r, tok, n=n):
                out = w @ x[n, tok]
                return out + params[name][r] if layer.bias else out

            keys = [proj(wk, "k_bias", rq, j) for j in range(t)]
            values = [proj(wv, "v_bias", rv, j) for j in range(t)]
            for i in range(t):
                q = proj(wq, "q_bias", rq, i)
                js = [j for j in range(t) if allowed[i][j]]
                s = [scale * float(q @ keys[j]) for j in js]
                top = max(s)
                e = [math.exp(v - top) for v in s]
                total = sum(e)
                o = sum(ei / total * values[j] for ei, j in zip(e, js))
                y[n, i] += wo @ o
    if layer.bias:
        y += params["out_bias"]
    return y


def ref_block_stack(net, x):
    """A stack of transformer blocks Blk(x) = F(A + x) + A + x, in plain numpy."""
    out = x.copy()
    for i in range(0, len(net.layers), 2):
        attn = net.layers[i][1].body[0][1]
        p = {k: net.params[f"layers.{i}.body.0.{k}"] for k in attn.param_specs()}
        a = ref_attention(attn, p, out)
        z = out + a
        pre = f"layers.{i + 1}.body."
        hid = z @ net.params[pre + "0.weight"].T
        if pre + "0.bias" in net.params:
            hid = hid + net.params[pre + "0.bias"]
        f = np.maximum(hid, 0.0) @ net.params[pre + "2.weight"].T
        if pre + "2.bias" in net.params:
            f = f + net.params[pre + "2.bias"]
        out = f + z
    return out


def random_params(layer, rng):
    gen = np.random.default_rng(rng)
    return {k: gen.uniform(-1, 1, s) for k, s in layer.param_specs().items()}


def seq_len(layer, default):
    return len(layer.mask) if isinstance(layer.mask, tuple) else default


def finite_diff(f, x, g, eps=1e-6):
    out = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        out[idx] = float(np.sum((f(xp) - f(xm)) * g)) / (2 * eps)
    return out


# ====================================================================== forward
@SETTINGS
@given(ast.attention_layers(), st.integers(1, 5), st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_forward_matches_the_loop_reference(layer, t, b, seed):
    t = seq_len(layer, t)
    params = random_params(layer, seed)
    x = np.random.default_rng(seed + 1).uniform(-2, 2, (b, t, layer.d_in))
    x0 = x.copy()
    y = layer.apply(params, x)
    assert y.shape == (b, t, layer.d_out)
    assert layer.output_shape((t, layer.d_in)) == (t, layer.d_out)
    np.testing.assert_allclose(y, ref_attention(layer, params, x), rtol=TOL, atol=TOL)
    assert np.array_equal(x, x0)  # inputs untouched


def test_forward_concrete_single_head():
    # one head, d_qk = d_v = 1, identity-like weights: a hand-checked softmax average
    layer = MultiHeadAttention(1, 1, 1, 1, 1, scale=1.0)
    params = {"q_weight": np.ones((1, 1)), "k_weight": np.ones((1, 1)),
              "v_weight": np.ones((1, 1)), "out_weight": np.ones((1, 1))}
    x = np.array([[[0.0], [1.0]]])
    y = layer.apply(params, x)
    # token 0: scores (0, 0) -> mean of values (0 + 1) / 2; token 1: scores (0, 1)
    w = math.exp(1.0) / (1.0 + math.exp(1.0))
    np.testing.assert_allclose(y[0, :, 0], [0.5, w], rtol=1e-15)


def test_score_scale_defaults_to_inverse_sqrt_dqk():
    assert MultiHeadAttention(2, 2, 1, 4, 1).score_scale == 0.5
    assert MultiHeadAttention(2, 2, 1, 4, 1, scale=2).score_scale == 2.0
    assert MultiHeadAttention(2, 2, 1, 4, 1, scale=2).scale == 2.0


def test_param_specs_use_the_torch_layout():
    layer = MultiHeadAttention(5, 3, 2, 4, 6, bias=True)
    assert dict(layer.param_specs()) == {
        "q_weight": (8, 5), "k_weight": (8, 5), "v_weight": (12, 5), "out_weight": (3, 12),
        "q_bias": (8,), "k_bias": (8,), "v_bias": (12,), "out_bias": (3,)}
    assert list(MultiHeadAttention(5, 3, 2, 4, 6).param_specs()) == [
        "q_weight", "k_weight", "v_weight", "out_weight"]


def test_sparse_weights_match_dense():
    layer = MultiHeadAttention(4, 3, 2, 2, 3, mask="causal", bias=True)
    params = random_params(layer, 3)
    gen = np.random.default_rng(4)
    for k in ("q_weight", "k_weight", "v_weight", "out_weight"):
        params[k] = params[k] * (gen.random(params[k].shape) < 0.5)
    sparse = {k: (sp.csr_matrix(v) if k.endswith("weight") else v) for k, v in params.items()}
    x = gen.normal(size=(2, 5, 4))
    g = gen.normal(size=(2, 5, 3))
    np.testing.assert_allclose(layer.apply(sparse, x), layer.apply(params, x), rtol=TOL,
                               atol=TOL)
    np.testing.assert_allclose(layer.vjp(sparse, x, g), layer.vjp(params, x, g), rtol=TOL,
                               atol=TOL)
    net = Network([layer], {f"layers.0.{k}": v for k, v in params.items()}, (5, 4))
    np.testing.assert_allclose(net.forward(x, params={"layers.0.q_weight": sparse["q_weight"]}),
                               net.forward(x), rtol=TOL, atol=TOL)


# ====================================================================== vjp
@pytest.mark.parametrize("mask", [None, "causal", ((True, False, True), (False, True, False),
                                                  (True, True, True))])
@pytest.mark.parametrize("bias", [False, True])
def test_vjp_matches_finite_differences(mask, bias):
    layer = MultiHeadAttention(3, 2, 2, 2, 3, scale=0.7, mask=mask, bias=bias)
    params = random_params(layer, 11)
    gen = np.random.default_rng(12)
    x = gen.uniform(-1, 1, (2, 3, 3))
    g = gen.normal(size=(2, 3, 2))
    got = layer.vjp(params, x, g)
    want = finite_diff(lambda z: layer.apply(params, z), x, g)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


@settings(max_examples=15, deadline=None)
@given(ast.attention_layers(max_width=3, max_heads=2, max_head_width=2, max_len=3),
       st.integers(0, 2**32 - 1))
def test_vjp_matches_finite_differences_on_random_layers(layer, seed):
    t = seq_len(layer, 3)
    params = random_params(layer, seed)
    gen = np.random.default_rng(seed + 1)
    x = gen.uniform(-1, 1, (1, t, layer.d_in))
    g = gen.normal(size=(1, t, layer.d_out))
    want = finite_diff(lambda z: layer.apply(params, z), x, g)
    np.testing.assert_allclose(layer.vjp(params, x, g), want, rtol=1e-5, atol=1e-6)


# ====================================================================== stability
def _sharp_layer():
    layer = MultiHeadAttention(1, 1, 1, 1, 1, scale=1.0)
    params = {"q_weight": np.array([[100.0]]), "k_weight": np.array([[100.0]]),
              "v_weight": np.array([[3.0]]), "out_weight": np.array([[2.0]])}
    return layer, params


def test_large_logits_are_finite_and_reach_the_argmax_limit():
    layer, params = _sharp_layer()
    x = np.array([[[1.0], [0.9], [-1.0], [0.2]]])  # scores up to 1e4 in magnitude
    y = layer.apply(params, x)
    assert np.isfinite(y).all()
    # query x_i > 0 attends to the largest key (1.0), x_i < 0 to the smallest (-1.0);
    # the other weights are below exp(-1000), which underflows to 0: the limit exactly
    limit = np.array([6.0, 6.0, -6.0, 6.0])
    assert np.array_equal(y[0, :, 0], limit)
    g = layer.vjp(params, x, np.ones_like(y))
    assert np.isfinite(g).all()


def test_large_logits_tie_splits_evenly():
    layer, params = _sharp_layer()
    x = np.array([[[1.0], [1.0], [-1.0]]])
    y = layer.apply(params, x)
    # query 1.0 ties between keys 0 and 1 (both value 6.0); query -1.0 picks key 2
    assert np.array_equal(y[0, :, 0], [6.0, 6.0, -6.0])
    params = dict(params, q_weight=np.array([[1e6]]), k_weight=np.array([[1e6]]))
    assert np.isfinite(layer.apply(params, x)).all()  # scores of 1e12


# ====================================================================== masks
def test_mask_validation_errors():
    with pytest.raises(InputError, match=r"`mask` row 1 attends to no key.*\[1\]"):
        MultiHeadAttention(2, 2, 1, 1, 1, mask=[[True, False], [False, False]])
    with pytest.raises(InputError, match=r"square T x T table.*shape \(2, 3\)"):
        MultiHeadAttention(2, 2, 1, 1, 1, mask=[[True, False, True], [True, True, True]])
    with pytest.raises(InputError, match=r"entry \(0, 1\) is 1, not a bool"):
        MultiHeadAttention(2, 2, 1, 1, 1, mask=[[True, 1], [True, True]])
    with pytest.raises(InputError, match=r"None, 'causal'.*received 'anticausal'"):
        MultiHeadAttention(2, 2, 1, 1, 1, mask="anticausal")
    with pytest.raises(InputError, match=r"`mask`.*dtype int"):
        MultiHeadAttention(2, 2, 1, 1, 1, mask=np.ones((2, 2), dtype=int))
    with pytest.raises(InputError, match=r"`mask`"):
        MultiHeadAttention(2, 2, 1, 1, 1, mask=[[True], [True, False]])
    with pytest.raises(InputError, match=r"`mask`"):
        MultiHeadAttention(2, 2, 1, 1, 1, mask=[])


def test_numpy_mask_is_stored_as_tuples():
    table = np.array([[True, False], [True, True]])
    layer = MultiHeadAttention(2, 2, 1, 1, 1, mask=table)
    assert layer.mask == ((True, False), (True, True))
    assert all(type(v) is bool for row in layer.mask for v in row)
    assert layer == MultiHeadAttention(2, 2, 1, 1, 1, mask=[[True, False], [True, True]])
    assert hash(layer) == hash(MultiHeadAttention(2, 2, 1, 1, 1, mask=table.tolist()))
    table[0, 1] = True  # the layer holds no view of the caller's array
    assert layer.mask[0][1] is False


def test_table_mask_fixes_the_sequence_length():
    layer = MultiHeadAttention(2, 2, 1, 1, 1, mask=[[True, False], [True, True]])
    assert layer.output_shape((2, 2)) == (2, 2)
    with pytest.raises(ShapeError, match=r"2 x 2.*T must be 2.*\(3, 2\)"):
        layer.output_shape((3, 2))
    with pytest.raises(ShapeError, match=r"layers.0.*T must be 2"):
        Network.random([layer], rng=0, input_shape=(3, 2))
    with pytest.raises(ShapeError, match=r"\(T, 2\).*\(2,\)"):
        MultiHeadAttention(2, 2, 1, 1, 1).output_shape((2,))
    with pytest.raises(ShapeError, match=r"\(T, 2\).*\(4, 3\)"):
        MultiHeadAttention(2, 2, 1, 1, 1).output_shape((4, 3))


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(d_in=0), r"`d_in` must be an int >= 1; received 0"),
    (dict(heads=2.0), r"`heads` must be an int >= 1; received 2.0"),
    (dict(d_qk=True), r"`d_qk` must be an int >= 1; received True"),
    (dict(scale=0.0), r"`scale` must be None.*> 0; received 0.0"),
    (dict(scale=float("nan")), r"`scale` must be None.*received nan"),
    (dict(scale=True), r"`scale`.*received True"),
    (dict(bias=1), r"`bias` must be a bool; received 1"),
])
def test_bad_arguments(kwargs, match):
    args = dict(d_in=2, d_out=2, heads=1, d_qk=1, d_v=1)
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        MultiHeadAttention(**args)


@SETTINGS
@given(ast.attention_layers(masks=("causal", "table")), st.integers(1, 5),
       st.integers(0, 2**32 - 1))
def test_output_ignores_masked_out_tokens(layer, t, seed):
    t = seq_len(layer, t)
    params = random_params(layer, seed)
    gen = np.random.default_rng(seed + 1)
    x = gen.uniform(-1, 1, (1, t, layer.d_in))
    y = layer.apply(params, x)
    allowed = ref_allowed(layer.mask, t)
    for i in range(t):
        hidden = [j for j in range(t) if not allowed[i][j] and j != i]
        if not hidden:
            continue
        x2 = x.copy()
        x2[0, hidden] = gen.uniform(-50, 50, (len(hidden), layer.d_in))
        y2 = layer.apply(params, x2)
        assert np.array_equal(y2[0, i], y[0, i])  # exactly: masked scores never enter


def test_causal_prefix_does_not_see_the_future():
    layer = MultiHeadAttention(3, 2, 2, 2, 2, mask="causal")
    params = random_params(layer, 5)
    x = np.random.default_rng(6).normal(size=(2, 6, 3))
    y = layer.apply(params, x)
    for t in range(1, 6):
        assert np.array_equal(layer.apply(params, x[:, :t]), y[:, :t])


# ====================================================================== merged matrices
@SETTINGS
@given(ast.attention_layers(bias=False), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_forward_equals_the_merged_form(layer, t, seed):
    t = seq_len(layer, t)
    params = random_params(layer, seed)
    x = np.random.default_rng(seed + 1).uniform(-1, 1, (2, t, layer.d_in))
    qk, vo = merged_matrices(layer, params)
    assert qk.shape == (layer.heads, layer.d_in, layer.d_in)
    assert vo.shape == (layer.heads, layer.d_in, layer.d_out)
    allowed = np.array(ref_allowed(layer.mask, t))
    want = np.zeros((2, t, layer.d_out))
    for h in range(layer.heads):
        s = np.einsum("bid,de,bje->bij", x, qk[h], x)
        s = np.where(allowed, s, -np.inf)
        p = np.exp(s - s.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        want += p @ (x @ vo[h])
    np.testing.assert_allclose(layer.apply(params, x), want, rtol=1e-11, atol=1e-11)


def test_merged_matrices_errors():
    layer = MultiHeadAttention(2, 2, 1, 1, 1, bias=True)
    with pytest.raises(InputError, match=r"bias=False"):
        merged_matrices(layer, random_params(layer, 0))
    layer = MultiHeadAttention(2, 2, 1, 1, 1)
    params = random_params(layer, 0)
    with pytest.raises(InputError, match=r"lacks 'v_weight'"):
        merged_matrices(layer, {k: v for k, v in params.items() if k != "v_weight"})
    with pytest.raises(ShapeError, match=r"q_weight.*\(1, 2\).*\(2, 2\)"):
        merged_matrices(layer, dict(params, q_weight=np.zeros((2, 2))))
    with pytest.raises(InputError, match=r"`layer` must be a MultiHeadAttention"):
        merged_matrices(Dense(2, 2), params)
    sparse = {k: sp.csr_matrix(v) for k, v in params.items()}
    for a, b in zip(merged_matrices(layer, sparse), merged_matrices(layer, params)):
        assert np.array_equal(a, b)


def test_attention_scores():
    table = ((True, False, True), (False, True, False), (True, True, True))
    layer = MultiHeadAttention(3, 2, 2, 2, 1, mask=table, bias=True)
    params = random_params(layer, 13)
    x = np.random.default_rng(14).uniform(-1, 1, (2, 3, 3))
    scores, probs = attention_scores(layer, params, x)
    assert scores.shape == probs.shape == (2, 2, 3, 3)
    allowed = np.array(table)
    assert np.all(np.isneginf(scores[..., ~allowed])) and np.all(probs[..., ~allowed] == 0)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-15)
    q = x @ params["q_weight"].T + params["q_bias"]
    k = x @ params["k_weight"].T + params["k_bias"]
    for h in range(2):
        s = q[..., 2 * h:2 * h + 2] @ k[..., 2 * h:2 * h + 2].transpose(0, 2, 1) / math.sqrt(2)
        np.testing.assert_allclose(scores[:, h][..., allowed], s[..., allowed], rtol=1e-13)
    one_s, one_p = attention_scores(layer, params, x[1])
    assert np.array_equal(one_p, probs[1]) and np.array_equal(one_s, scores[1])
    with pytest.raises(ShapeError, match=r"T must be 3"):
        attention_scores(layer, params, x[:, :2])
    with pytest.raises(InputError, match=r"`x` must hold finite real numbers"):
        attention_scores(layer, params, np.full((3, 3), np.nan))


# ====================================================================== Dense on sequences
def test_dense_on_sequences_equals_per_token_dense():
    gen = np.random.default_rng(7)
    layer = Dense(4, 3)
    params = {"weight": gen.normal(size=(3, 4)), "bias": gen.normal(size=3)}
    x = gen.normal(size=(2, 5, 4))
    g = gen.normal(size=(2, 5, 3))
    assert layer.output_shape((5, 4)) == (5, 3)
    assert layer.output_shape((2, 6, 4)) == (2, 6, 3)
    y, gx = layer.apply(params, x), layer.vjp(params, x, g)
    for t in range(5):
        np.testing.assert_allclose(y[:, t], layer.apply(params, x[:, t]), rtol=1e-14,
                                   atol=1e-14)
        np.testing.assert_allclose(gx[:, t], layer.vjp(params, x[:, t], g[:, t]), rtol=1e-14,
                                   atol=1e-14)
    sparse = dict(params, weight=sp.csr_matrix(params["weight"]))
    np.testing.assert_allclose(layer.apply(sparse, x), y, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(layer.vjp(sparse, x, g), gx, rtol=1e-13, atol=1e-13)
    with pytest.raises(ShapeError, match=r"Dense\(d_in=4\).*\(\.\.\., 4\).*\(5, 3\)"):
        layer.output_shape((5, 3))
    with pytest.raises(ShapeError, match=r"Dense\(d_in=4\)"):
        layer.output_shape(())


def test_dense_relu_network_on_sequences():
    net = Network.random([Dense(3, 5), ReLU(), Dense(5, 2, bias=False)], rng=1,
                         input_shape=(4, 3))
    x = np.random.default_rng(2).normal(size=(3, 4, 3))
    y = net.forward(x)
    flat = Network(net.layers, dict(net.params))  # input_shape (3,): token by token
    np.testing.assert_allclose(y, flat.forward(x.reshape(-1, 3)).reshape(3, 4, 2),
                               rtol=1e-14, atol=1e-14)


# ====================================================================== transformer blocks
def _two_blocks(bias=False, mask="causal"):
    layers = transformer_block(4, 2, 3, 2, 6, mask=mask, bias=bias) \
        + transformer_block(4, 1, 2, 3, 5, bias=bias)
    return Network.random(layers, rng=3, input_shape=(5, 4))


def test_transformer_block_structure():
    layers = transformer_block(4, 2, 3, 2, 6, mask="causal")
    assert len(layers) == 2 and all(isinstance(l, Residual) for l in layers)
    attn = layers[0].body[0][1]
    assert attn == MultiHeadAttention(4, 4, 2, 3, 2, mask="causal")
    assert [type(l) for _, l in layers[1].body] == [Dense, ReLU, Dense]
    assert (layers[1].body[0][1].d_in, layers[1].body[0][1].d_out) == (4, 6)
    with pytest.raises(InputError, match=r"`d_ff` must be an int >= 1"):
        transformer_block(4, 2, 3, 2, 0)


@pytest.mark.parametrize("bias", [False, True])
def test_two_block_stack_matches_numpy_reference(bias):
    net = _two_blocks(bias)
    assert net.output_shape == (5, 4)
    x = np.random.default_rng(8).uniform(-1, 1, (3, 5, 4))
    np.testing.assert_allclose(net.forward(x), ref_block_stack(net, x), rtol=1e-11,
                               atol=1e-11)
    np.testing.assert_allclose(net.forward(x[0]), ref_block_stack(net, x[:1])[0],
                               rtol=1e-11, atol=1e-11)


def test_two_block_stack_vjp_matches_finite_differences():
    net = _two_blocks(True)
    gen = np.random.default_rng(9)
    x = gen.uniform(-1, 1, (2, 5, 4))
    g = gen.normal(size=(2, 5, 4))
    got = net.vjp(x, g)
    np.testing.assert_allclose(got, finite_diff(net.forward, x, g), rtol=1e-6, atol=1e-6)
    lin = net.linearize(x)
    assert np.array_equal(lin.vjp(g), got)


def test_save_load_round_trip(tmp_path):
    table = ((True, False, False, True, True),) * 5
    attn = MultiHeadAttention(4, 4, 2, 2, 3, scale=0.25, mask=table, bias=True)
    layers = [Residual([attn]), *transformer_block(4, 2, 3, 2, 6)]
    net = Network.random(layers, rng=4, input_shape=(5, 4))
    for i, n in enumerate([net, _two_blocks()]):
        path = tmp_path / f"net{i}.npz"
        n.save(path)
        back = Network.load(path)
        assert back.fingerprint() == n.fingerprint()
        assert back.layers == n.layers
        assert Architecture.from_description(n.architecture()) == n.arch
        x = np.random.default_rng(i).normal(size=(2, 5, 4))
        assert np.array_equal(back.forward(x), n.forward(x))
    attn = Network.load(tmp_path / "net0.npz").layers[0][1].body[0][1]
    assert attn.mask == table and attn.scale == 0.25 and attn.bias is True


def test_fingerprint_tracks_fields_and_arrays():
    net = _two_blocks()
    other = Network.random(transformer_block(4, 2, 3, 2, 6, mask=None)
                           + transformer_block(4, 1, 2, 3, 5), rng=3, input_shape=(5, 4))
    assert other.fingerprint() != net.fingerprint()  # only the mask differs
    assert dict(other.params).keys() == dict(net.params).keys()
    same = Network(net.layers, {k: v.copy() for k, v in net.params.items()}, (5, 4))
    assert same.fingerprint() == net.fingerprint()
    key = "layers.0.body.0.q_weight"
    changed = net.with_params({key: net.params[key] + 1e-3})
    assert changed.fingerprint() != net.fingerprint()


def test_pickle_keeps_the_mask_table():
    import pickle

    layer = MultiHeadAttention(2, 2, 1, 1, 1, mask=[[True, False], [True, True]])
    back = pickle.loads(pickle.dumps(layer))
    assert back == layer
    assert np.array_equal(back.allowed(2), [[True, False], [True, True]])


def test_repr_is_short():
    assert repr(MultiHeadAttention(4, 3, 2, 2, 1, mask="causal", bias=True)) == \
        "MultiHeadAttention(4 -> 3, heads=2, d_qk=2, d_v=1, causal, bias)"
    assert "mask 3x3" in repr(MultiHeadAttention(4, 3, 2, 2, 1, mask=[[True] * 3] * 3))


# ====================================================================== strategies
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ast.transformer_networks(bias=None), st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_transformer_networks_strategy(net, b, seed):
    t, d = net.input_shape
    assert 1 <= t <= 5 and 1 <= d <= 4
    n_blocks = len(net.layers) // 2
    assert len(net.layers) % 2 == 0 and 1 <= n_blocks <= 2
    assert net.output_shape == (t, d)
    x = np.random.default_rng(seed).uniform(-1, 1, (b, t, d))
    y = net.forward(x)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, ref_block_stack(net, x), rtol=1e-10, atol=1e-10)
    assert net.vjp(x, np.ones_like(y)).shape == x.shape


@settings(max_examples=25, deadline=None)
@given(ast.attention_layers(d_in=3, d_out=2, masks=("table",), bias=True, scale=False,
                            max_len=4))
def test_attention_layers_strategy_respects_its_arguments(layer):
    assert (layer.d_in, layer.d_out, layer.bias, layer.scale) == (3, 2, True, None)
    assert isinstance(layer.mask, tuple) and 1 <= len(layer.mask) <= 4
    assert all(any(row) for row in layer.mask)
    assert 1 <= layer.heads <= 3 and 1 <= layer.d_qk <= 3 and 1 <= layer.d_v <= 3


def test_strategy_arguments_are_checked():
    with pytest.raises(InputError, match=r"`max_width` must be an int >= 1; received 0"):
        ast.attention_layers(max_width=0)
    with pytest.raises(InputError, match=r"`masks` must be a non-empty sequence"):
        ast.attention_layers(masks=("sliding",))
    with pytest.raises(InputError, match=r"`min_blocks` must be <= `max_blocks`"):
        ast.transformer_networks(min_blocks=3, max_blocks=2)
    with pytest.raises(InputError, match=r"`elements` must be None or a hypothesis"):
        ast.transformer_networks(elements=[0.0])


def test_ticket_over_an_attention_source_sparse_equals_dense():
    from slth import Ticket

    net = _two_blocks(True)
    gen = np.random.default_rng(12)
    masks = {k: gen.random(s) < 0.2 for k, s in net.param_specs().items()}
    ticket = Ticket(net, masks)
    x = gen.uniform(-1, 1, (3, 5, 4))
    dense = ticket.forward(x, method="dense")
    np.testing.assert_allclose(ticket.forward(x, method="sparse"), dense, rtol=1e-12,
                               atol=1e-12)
    masked = {k: np.where(masks[k], v, 0.0) for k, v in net.params.items()}
    np.testing.assert_allclose(dense, ref_block_stack(net.with_params(masked), x), rtol=1e-11,
                               atol=1e-11)
