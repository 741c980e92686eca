"""Torch bridge of the attention layer: nn.MultiheadAttention both ways, slth's module, autograd."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the torch bridge needs PyTorch")
nn = torch.nn

import slth.torch as stt  # noqa: E402
from slth import Ticket  # noqa: E402
from slth.errors import InputError  # noqa: E402
from slth.nets import Network  # noqa: E402
from slth.nets.attention import MultiHeadAttention, transformer_block  # noqa: E402
from slth.torch._attention import (  # noqa: E402
    MultiHeadAttentionModule,
    SelfAttention,
    multihead_attention_module,
)

F64 = torch.float64
TOL = 1e-12


def _mha(e=6, heads=2, bias=True, batch_first=True, seed=0, **kw):
    torch.manual_seed(seed)
    m = nn.MultiheadAttention(e, heads, bias=bias, batch_first=batch_first, dtype=F64, **kw)
    with torch.no_grad():  # torch initialises the biases to 0: make them count
        if m.in_proj_bias is not None:
            m.in_proj_bias.uniform_(-1, 1)
            m.out_proj.bias.uniform_(-1, 1)
    return m.eval()


def _run(module, x):
    with torch.no_grad():
        return module(torch.tensor(x, dtype=F64)).numpy()


def _x(shape, seed=1):
    return np.random.default_rng(seed).uniform(-1, 1, shape)


# ============================================================= nn.MultiheadAttention -> slth
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("mask", [None, "causal", "table"])
def test_self_attention_reads_exactly(batch_first, bias, mask):
    t, e = 5, 6
    if mask == "table":
        blocked = torch.rand(t, t, generator=torch.Generator().manual_seed(2)) < 0.5
        blocked[torch.arange(t), torch.arange(t)] = False  # each query keeps itself
        mask = blocked
    mha = _mha(e, 3, bias=bias, batch_first=batch_first)
    module = nn.Sequential(SelfAttention(mha, mask))
    net = stt.network_from_torch(module, input_shape=(t, e))
    layer = net.layers[0][1]
    assert (layer.d_in, layer.d_out, layer.heads, layer.d_qk, layer.d_v) == (e, e, 3, 2, 2)
    assert layer.bias is bias and layer.scale is None
    x = _x((3, t, e))
    np.testing.assert_allclose(net.forward(x), _run(module, x), rtol=TOL, atol=TOL)
    if isinstance(mask, torch.Tensor):  # torch's True = blocked is slth's False
        assert layer.mask == tuple(tuple(not v for v in row) for row in mask.tolist())


def test_packed_in_proj_mapping():
    e = 6
    mha = _mha(e, 2)
    net = stt.network_from_torch(nn.Sequential(SelfAttention(mha)), input_shape=(4, e))
    p = {k.split(".")[-1]: v for k, v in net.params.items()}
    w = mha.in_proj_weight.detach().numpy()
    b = mha.in_proj_bias.detach().numpy()
    assert np.array_equal(p["q_weight"], w[:e])
    assert np.array_equal(p["k_weight"], w[e:2 * e])
    assert np.array_equal(p["v_weight"], w[2 * e:])
    assert np.array_equal(p["q_bias"], b[:e])
    assert np.array_equal(p["k_bias"], b[e:2 * e])
    assert np.array_equal(p["v_bias"], b[2 * e:])
    assert np.array_equal(p["out_weight"], mha.out_proj.weight.detach().numpy())
    assert np.array_equal(p["out_bias"], mha.out_proj.bias.detach().numpy())


def test_causal_mask_follows_torchs_convention():
    # torch: attn_mask True = NOT allowed; the upper triangle blocked is causal attention
    t, e = 6, 4
    mha = _mha(e, 2)
    explicit = SelfAttention(mha, torch.ones(t, t, dtype=torch.bool).triu(1))
    causal = SelfAttention(mha, "causal")
    x = _x((2, t, e))
    layer_causal = MultiHeadAttention(e, e, 2, 2, 2, mask="causal", bias=True)
    net = stt.network_from_torch(nn.Sequential(explicit), input_shape=(t, e))
    assert net.layers[0][1].mask == tuple(tuple(j <= i for j in range(t)) for i in range(t))
    same = Network([layer_causal], dict(net.params), (t, e))
    np.testing.assert_allclose(same.forward(x), _run(explicit, x), rtol=TOL, atol=TOL)
    np.testing.assert_allclose(_run(causal, x), _run(explicit, x), rtol=TOL, atol=TOL)
    # and the mask matters: full attention differs
    full = Network([MultiHeadAttention(e, e, 2, 2, 2, bias=True)], dict(net.params), (t, e))
    assert np.abs(full.forward(x) - same.forward(x)).max() > 1e-3


def test_bare_multihead_attention_reads_as_self_attention():
    mha = _mha(4, 2)
    net = stt.network_from_torch(nn.Sequential(mha, nn.Linear(4, 2, dtype=F64)),
                                 input_shape=(3, 4))
    x = _x((2, 3, 4))
    with torch.no_grad():
        xt = torch.tensor(x)
        y = mha(xt, xt, xt, need_weights=False)[0].numpy()
    want = y @ net.params["layers.1.weight"].T + net.params["layers.1.bias"]
    np.testing.assert_allclose(net.forward(x), want, rtol=TOL, atol=TOL)


def test_dropout_reads_as_the_eval_function():
    mha = _mha(4, 2, dropout=0.5)
    module = nn.Sequential(SelfAttention(mha)).eval()
    net = stt.network_from_torch(module, input_shape=(3, 4))
    x = _x((2, 3, 4))
    np.testing.assert_allclose(net.forward(x), _run(module, x), rtol=TOL, atol=TOL)


@pytest.mark.parametrize(("make", "match"), [
    (lambda: nn.MultiheadAttention(4, 2, kdim=3, batch_first=True), r"kdim/vdim=\(3, 4\)"),
    (lambda: nn.MultiheadAttention(4, 2, vdim=2, batch_first=True), r"kdim/vdim"),
    (lambda: nn.MultiheadAttention(4, 2, add_bias_kv=True, batch_first=True),
     r"add_bias_kv=True.*allowed: False"),
    (lambda: nn.MultiheadAttention(4, 2, add_zero_attn=True, batch_first=True),
     r"add_zero_attn=True.*allowed: False"),
])
def test_unsupported_variants_are_named(make, match):
    with pytest.raises(InputError, match=match):
        stt.network_from_torch(nn.Sequential(SelfAttention(make())), input_shape=(3, 4))


def test_bare_sequence_first_module_is_refused():
    with pytest.raises(InputError, match=r"batch_first=False.*SelfAttention"):
        stt.network_from_torch(nn.Sequential(nn.MultiheadAttention(4, 2)), input_shape=(3, 4))


def test_self_attention_argument_checks():
    mha = nn.MultiheadAttention(4, 2, batch_first=True)
    with pytest.raises(InputError, match=r"`mha` must be a torch.nn.MultiheadAttention"):
        SelfAttention(nn.Linear(4, 4))
    with pytest.raises(InputError, match=r"`mask` row 1 blocks every key"):
        SelfAttention(mha, torch.tensor([[False, True], [True, True]]))
    with pytest.raises(InputError, match=r"square bool tensor"):
        SelfAttention(mha, torch.zeros(2, 3, dtype=torch.bool))
    with pytest.raises(InputError, match=r"square bool tensor"):
        SelfAttention(mha, torch.zeros(2, 2))
    with pytest.raises(InputError, match=r"square bool tensor"):
        SelfAttention(mha, "anticausal")


# ====================================================================== slth -> torch
def _layers():
    table = ((True, False, True, False, True),) * 4 + ((False, True, False, True, False),)
    return [
        MultiHeadAttention(6, 6, 2, 3, 3),
        MultiHeadAttention(4, 3, 3, 2, 5, scale=0.3, mask="causal", bias=True),
        MultiHeadAttention(5, 2, 1, 4, 1, mask=table),
    ]


@pytest.mark.parametrize("layer", _layers(), ids=repr)
def test_network_to_torch_and_back_is_exact(layer):
    net = Network.random([layer], rng=3, input_shape=(5, layer.d_in))
    module = stt.network_to_torch(net, dtype=F64, device="cpu")
    assert isinstance(module[0], MultiHeadAttentionModule)
    assert [f"layers.{k}" for k in module.state_dict()] == list(net.param_specs())
    x = _x((3, 5, layer.d_in))
    np.testing.assert_allclose(_run(module, x), net.forward(x), rtol=TOL, atol=TOL)
    back = stt.network_from_torch(module, input_shape=net.input_shape)
    assert back.layers == net.layers
    assert back.fingerprint() == net.fingerprint()


def test_float32_module_agrees_to_float32_rounding():
    net = Network.random(transformer_block(4, 2, 2, 2, 6, mask="causal"), rng=5,
                         input_shape=(6, 4))
    module = stt.network_to_torch(net, device="cpu")
    x = _x((2, 6, 4))
    with torch.no_grad():
        y = module(torch.tensor(x, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(y, net.forward(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mask", [None, "causal", ((True, False, False), (True, True, False),
                                                  (False, True, True))])
@pytest.mark.parametrize("bias", [True, False])
def test_multihead_attention_module_round_trip(mask, bias):
    layer = MultiHeadAttention(6, 6, 3, 2, 2, mask=mask, bias=bias)
    net = Network.random([layer], rng=4, input_shape=(3, 6))
    local = {k.split(".")[-1]: v for k, v in net.params.items()}
    sa = multihead_attention_module(layer, local, device="cpu")
    assert isinstance(sa.mha, nn.MultiheadAttention) and sa.mha.batch_first
    x = _x((4, 3, 6))
    np.testing.assert_allclose(_run(sa.eval(), x), net.forward(x), rtol=TOL, atol=TOL)
    back = stt.network_from_torch(nn.Sequential(sa), input_shape=(3, 6))
    assert back.layers == net.layers
    assert back.fingerprint() == net.fingerprint()


def test_multihead_attention_module_refuses_what_torch_cannot_express():
    for layer in (MultiHeadAttention(6, 4, 3, 2, 2), MultiHeadAttention(6, 6, 2, 3, 2),
                  MultiHeadAttention(6, 6, 2, 2, 2)):
        params = {k: np.zeros(s) for k, s in layer.param_specs().items()}
        with pytest.raises(InputError, match=r"d_in = d_out = heads \* d_qk = heads \* d_v"):
            multihead_attention_module(layer, params, device="cpu")
    layer = MultiHeadAttention(6, 6, 2, 3, 3, scale=0.5)
    params = {k: np.zeros(s) for k, s in layer.param_specs().items()}
    with pytest.raises(InputError, match=r"default score scale 1/sqrt\(d_qk\).*scale=0.5"):
        multihead_attention_module(layer, params, device="cpu")
    explicit = MultiHeadAttention(4, 4, 1, 4, 4, scale=0.5)  # 1/sqrt(4): allowed
    params = {k: np.zeros(s) for k, s in explicit.param_specs().items()}
    assert isinstance(multihead_attention_module(explicit, params, device="cpu"), SelfAttention)
    with pytest.raises(InputError, match=r"lacks 'out_weight'"):
        multihead_attention_module(explicit, {k: v for k, v in params.items()
                                              if k != "out_weight"}, device="cpu")


# ====================================================================== autograd
@pytest.mark.parametrize("layer", _layers(), ids=repr)
def test_vjp_matches_torch_autograd(layer):
    net = Network.random([layer], rng=6, input_shape=(5, layer.d_in))
    module = stt.network_to_torch(net, dtype=F64, device="cpu")
    x = _x((2, 5, layer.d_in))
    g = _x((2, 5, layer.d_out), seed=7)
    xt = torch.tensor(x, requires_grad=True)
    (module(xt) * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(net.vjp(x, g), xt.grad.numpy(), rtol=1e-11, atol=1e-11)


def test_vjp_matches_autograd_of_torchs_own_module():
    mha = _mha(6, 2)
    module = nn.Sequential(SelfAttention(mha, "causal"))
    net = stt.network_from_torch(module, input_shape=(4, 6))
    x = _x((3, 4, 6))
    g = _x((3, 4, 6), seed=8)
    xt = torch.tensor(x, requires_grad=True)
    (module(xt) * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(net.vjp(x, g), xt.grad.numpy(), rtol=1e-11, atol=1e-11)


# ====================================================================== transformers and tickets
def test_transformer_stack_to_torch():
    layers = transformer_block(4, 2, 2, 3, 6, mask="causal", bias=True) \
        + transformer_block(4, 1, 3, 2, 5)
    net = Network.random(layers, rng=9, input_shape=(5, 4))
    module = stt.network_to_torch(net, dtype=F64, device="cpu")
    x = _x((3, 5, 4))
    np.testing.assert_allclose(_run(module, x), net.forward(x), rtol=TOL, atol=TOL)
    assert stt.network_from_torch(module, input_shape=(5, 4)).fingerprint() == net.fingerprint()


def test_ticket_over_an_attention_source_prunes_in_torch():
    layers = transformer_block(4, 2, 2, 2, 6, mask="causal")
    net = Network.random(layers, rng=10, input_shape=(5, 4))
    gen = np.random.default_rng(11)
    masks = {k: gen.random(s) < 0.6 for k, s in net.param_specs().items()}
    ticket = Ticket(net, masks)
    module = stt.to_module(ticket, device="cpu")
    x = _x((2, 5, 4))
    np.testing.assert_allclose(_run(module, x), ticket.forward(x), rtol=TOL, atol=TOL)
    back = stt.ticket_from_module(module, input_shape=(5, 4))
    assert back.source.fingerprint() == net.fingerprint()
    for a, b in zip(back.masks, ticket.masks):
        assert np.array_equal(a, b)
