"""Image layers (slth.nets.conv): loop references, vjps, networks, torch agreement and bridge."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings

from slth.errors import InputError, ShapeError
from slth.nets import Dense, Network, ReLU, Residual
from slth.nets.conv import AvgPool2d, Conv2d, Flatten, MaxPool2d
from slth.testing import strategies as sst

TOL = 1e-12


# ====================================================================== loop references
def _pad(x: np.ndarray, ph: int, pw: int) -> np.ndarray:
    b, c, h, w = x.shape
    out = np.zeros((b, c, h + 2 * ph, w + 2 * pw))
    out[:, :, ph:ph + h, pw:pw + w] = x
    return out


def _out(n: int, k: int, s: int, p: int = 0) -> int:
    return (n + 2 * p - k) // s + 1


def ref_conv(x, weight, bias, stride, padding):
    """Plain loops over batch, output channel, pixel and window."""
    (sh, sw), (ph, pw) = stride, padding
    o, c, kh, kw = weight.shape
    xp = _pad(x, ph, pw)
    ho, wo = _out(x.shape[2], kh, sh, ph), _out(x.shape[3], kw, sw, pw)
    y = np.zeros((x.shape[0], o, ho, wo))
    for b, q, i, j in itertools.product(range(x.shape[0]), range(o), range(ho), range(wo)):
        acc = 0.0
        for ch, u, v in itertools.product(range(c), range(kh), range(kw)):
            acc += xp[b, ch, i * sh + u, j * sw + v] * weight[q, ch, u, v]
        y[b, q, i, j] = acc + (0.0 if bias is None else bias[q])
    return y


def ref_conv_vjp(x, weight, grad_out, stride, padding):
    (sh, sw), (ph, pw) = stride, padding
    o, c, kh, kw = weight.shape
    gp = np.zeros_like(_pad(x, ph, pw))
    _, _, ho, wo = grad_out.shape
    for b, q, i, j in itertools.product(range(x.shape[0]), range(o), range(ho), range(wo)):
        for ch, u, v in itertools.product(range(c), range(kh), range(kw)):
            gp[b, ch, i * sh + u, j * sw + v] += grad_out[b, q, i, j] * weight[q, ch, u, v]
    return gp[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]]


def _pool_windows(x, kernel, stride):
    (kh, kw), (sh, sw) = kernel, stride
    ho, wo = _out(x.shape[2], kh, sh), _out(x.shape[3], kw, sw)
    for b, ch, i, j in itertools.product(range(x.shape[0]), range(x.shape[1]), range(ho),
                                         range(wo)):
        cells = [(i * sh + u, j * sw + v) for u in range(kh) for v in range(kw)]  # row-major
        yield (b, ch, i, j), cells


def ref_max_pool(x, kernel, stride):
    (kh, kw), (sh, sw) = kernel, stride
    y = np.zeros((*x.shape[:2], _out(x.shape[2], kh, sh), _out(x.shape[3], kw, sw)))
    for (b, ch, i, j), cells in _pool_windows(x, kernel, stride):
        best = x[b, ch, cells[0][0], cells[0][1]]
        for r, s in cells[1:]:
            if x[b, ch, r, s] > best:
                best = x[b, ch, r, s]
        y[b, ch, i, j] = best
    return y


def ref_max_pool_vjp(x, kernel, stride, grad_out):
    g = np.zeros_like(x)
    for (b, ch, i, j), cells in _pool_windows(x, kernel, stride):
        best = cells[0]
        for r, s in cells[1:]:
            if x[b, ch, r, s] > x[b, ch, best[0], best[1]]:  # strict: ties stay with the first
                best = (r, s)
        g[b, ch, best[0], best[1]] += grad_out[b, ch, i, j]
    return g


def ref_avg_pool(x, kernel, stride):
    (kh, kw), (sh, sw) = kernel, stride
    y = np.zeros((*x.shape[:2], _out(x.shape[2], kh, sh), _out(x.shape[3], kw, sw)))
    for (b, ch, i, j), cells in _pool_windows(x, kernel, stride):
        acc = 0.0
        for r, s in cells:
            acc += x[b, ch, r, s]
        y[b, ch, i, j] = acc / (kh * kw)
    return y


def ref_flatten(x):
    b, c, h, w = x.shape
    y = np.zeros((b, c * h * w))
    for n, ch, i, j in itertools.product(range(b), range(c), range(h), range(w)):
        y[n, ch * h * w + i * w + j] = x[n, ch, i, j]
    return y


# ====================================================================== random cases
def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


def conv_cases(n: int, seed: int = 0):
    """Random (layer, params, x) with valid shapes, strides and paddings."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        c, o = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        h, w = int(rng.integers(1, 8)), int(rng.integers(1, 8))
        pad = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
        kernel = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        if kernel[0] > h + 2 * pad[0] or kernel[1] > w + 2 * pad[1]:
            continue
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        bias = bool(rng.integers(2))
        layer = Conv2d(c, o, kernel, stride=stride, padding=pad, bias=bias)
        params = {"weight": _readonly(rng.uniform(-1, 1, (o, c, *kernel)))}
        if bias:
            params["bias"] = _readonly(rng.uniform(-1, 1, o))
        out.append((layer, params, _readonly(rng.uniform(-1, 1, (2, c, h, w)))))
    return out


def pool_cases(kind, n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        c, h, w = int(rng.integers(1, 4)), int(rng.integers(1, 9)), int(rng.integers(1, 9))
        kernel = (int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1)))
        stride = None if rng.integers(3) == 0 else (int(rng.integers(1, 4)),
                                                    int(rng.integers(1, 4)))
        out.append((kind(kernel, stride), _readonly(rng.standard_normal((2, c, h, w)))))
    return out


CONV = conv_cases(30)
MAXP = pool_cases(MaxPool2d, 30)
AVGP = pool_cases(AvgPool2d, 30, seed=2)


def _random_like(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def _fd_check(f, vjp, x, seed, h=1e-6, tol=1e-7):
    """<vjp(g), d> against the central difference of <g, f> along a random d."""
    y = f(x)
    g, d = _random_like(y.shape, seed), _random_like(x.shape, seed + 1)
    fd = np.sum(g * (f(x + h * d) - f(x - h * d))) / (2 * h)
    an = np.sum(vjp(g) * d)
    assert abs(fd - an) <= tol * max(1.0, abs(an))


def _jacobian_rows(f, shape):
    """Rows ``f(e_k)`` for every basis input ``e_k`` (one batch)."""
    n = int(np.prod(shape))
    return f(np.eye(n).reshape(n, *shape)).reshape(n, -1)


# ====================================================================== apply vs references
@pytest.mark.parametrize("case", range(len(CONV)))
def test_conv_apply_matches_loop(case):
    layer, params, x = CONV[case]
    y = layer.apply(params, x)
    ref = ref_conv(x, params["weight"], params.get("bias"), layer.stride, layer.padding)
    assert y.shape == (2, *layer.output_shape(x.shape[1:])) == ref.shape
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, ref, rtol=0, atol=TOL)


def test_conv_known_values():
    # a 1x1 kernel of weight 2 doubles; exact small integers are bit for bit
    x = np.arange(2 * 1 * 3 * 4, dtype=np.float64).reshape(2, 1, 3, 4)
    layer = Conv2d(1, 1, 2, stride=1, padding=0, bias=True)
    w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    y = layer.apply({"weight": w, "bias": np.array([0.5])}, x)
    ref = ref_conv(x, w, np.array([0.5]), (1, 1), (0, 0))
    assert np.array_equal(y, ref)
    assert y[0, 0, 0, 0] == 0 * 1 + 1 * 2 + 4 * 3 + 5 * 4 + 0.5


@pytest.mark.parametrize("case", range(len(MAXP)))
def test_max_pool_apply_matches_loop_bit_for_bit(case):
    layer, x = MAXP[case]
    y = layer.apply({}, x)
    assert np.array_equal(y, ref_max_pool(x, layer.kernel_size, layer.stride))
    assert y.shape == (2, *layer.output_shape(x.shape[1:]))


@pytest.mark.parametrize("case", range(len(AVGP)))
def test_avg_pool_apply_matches_loop_bit_for_bit(case):
    layer, x = AVGP[case]
    y = layer.apply({}, x)
    assert np.array_equal(y, ref_avg_pool(x, layer.kernel_size, layer.stride))
    assert y.shape == (2, *layer.output_shape(x.shape[1:]))


def test_flatten_matches_loop_and_shapes():
    x = _readonly(_random_like((3, 2, 4, 5), 0))
    y = Flatten().apply({}, x)
    assert np.array_equal(y, ref_flatten(x))
    assert Flatten().output_shape((2, 4, 5)) == (40,)
    assert Flatten().output_shape((7,)) == (7,)
    g = _random_like(y.shape, 1)
    assert np.array_equal(Flatten().vjp({}, x, g), g.reshape(x.shape))
    y[0, 0] = 123.0  # the output is no view of the (read-only) input
    assert x[0, 0, 0, 0] != 123.0


def test_pool_stride_defaults_to_kernel():
    assert MaxPool2d(2) == MaxPool2d(2, 2) == MaxPool2d((2, 2), (2, 2))
    assert AvgPool2d((2, 3)).stride == (2, 3)
    assert Conv2d(1, 2, 3).kernel_size == (3, 3)
    assert Conv2d(1, 2, 3).stride == (1, 1) and Conv2d(1, 2, 3).padding == (0, 0)


# ====================================================================== vjps
@pytest.mark.parametrize("case", range(len(CONV)))
def test_conv_vjp(case):
    layer, params, x = CONV[case]
    y = layer.apply(params, x)
    g = _readonly(_random_like(y.shape, case))
    got = layer.vjp(params, x, g)
    assert got.shape == x.shape
    ref = ref_conv_vjp(x, params["weight"], g, layer.stride, layer.padding)
    np.testing.assert_allclose(got, ref, rtol=0, atol=TOL)
    _fd_check(lambda z: layer.apply(params, z), lambda gg: layer.vjp(params, x, gg), x, case)
    # transpose: <vjp(e_j), e_i> == <e_j, apply(e_i)> for the linear part (no bias)
    lin = {"weight": params["weight"]}
    lin_layer = Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                       stride=layer.stride, padding=layer.padding, bias=False)
    jac = _jacobian_rows(lambda z: lin_layer.apply(lin, z), x.shape[1:])
    jac_t = _jacobian_rows(lambda gg: lin_layer.vjp(lin, np.zeros((len(gg), *x.shape[1:])), gg),
                           y.shape[1:])
    np.testing.assert_allclose(jac_t, jac.T, rtol=0, atol=TOL)


@pytest.mark.parametrize("case", range(len(MAXP)))
def test_max_pool_vjp(case):
    layer, x = MAXP[case]
    y = layer.apply({}, x)
    g = _readonly(_random_like(y.shape, case))
    got = layer.vjp({}, x, g)
    ref = ref_max_pool_vjp(x, layer.kernel_size, layer.stride, g)
    np.testing.assert_allclose(got, ref, rtol=0, atol=TOL)
    _fd_check(lambda z: layer.apply({}, z), lambda gg: layer.vjp({}, x, gg), x, case, h=1e-8)


def test_max_pool_vjp_ties_go_to_the_first_in_row_major_order():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 0] = x[0, 0, 1, 1] = 1.0  # window (0, 0): tie between (1, 0) and (1, 1)
    x[0, 0, 2:, 2:] = 5.0  # window (1, 1): all four equal
    g = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    got = MaxPool2d(2).vjp({}, x, g)
    want = np.zeros((1, 1, 4, 4))
    want[0, 0, 1, 0] = 1.0
    want[0, 0, 0, 2] = 2.0  # window (0, 1): all zero -> its first entry
    want[0, 0, 2, 0] = 3.0
    want[0, 0, 2, 2] = 4.0
    assert np.array_equal(got, want)


@pytest.mark.parametrize("case", range(len(AVGP)))
def test_avg_pool_vjp(case):
    layer, x = AVGP[case]
    y = layer.apply({}, x)
    g = _readonly(_random_like(y.shape, case))
    got = layer.vjp({}, x, g)
    _fd_check(lambda z: layer.apply({}, z), lambda gg: layer.vjp({}, x, gg), x, case)
    jac = _jacobian_rows(lambda z: layer.apply({}, z), x.shape[1:])
    np.testing.assert_allclose(got.reshape(2, -1), g.reshape(2, -1) @ jac.T, rtol=0,
                               atol=TOL)
    jac_t = _jacobian_rows(lambda gg: layer.vjp({}, np.zeros((len(gg), *x.shape[1:])), gg),
                           y.shape[1:])
    np.testing.assert_allclose(jac_t, jac.T, rtol=0, atol=TOL)


# ====================================================================== networks
LAYERS = [
    Conv2d(2, 3, 3, padding=1),
    ReLU(),
    Residual([Conv2d(3, 4, 3, padding=1), ReLU(), Conv2d(4, 3, (1, 3), padding=(0, 1))]),
    MaxPool2d(2),
    AvgPool2d((1, 2), stride=1),
    Flatten(),
    Dense(3 * 3 * 1, 4),
]
IN_SHAPE = (2, 6, 5)


def test_network_forward_vjp_save_load(tmp_path):
    net = Network.random(LAYERS, rng=0, input_shape=IN_SHAPE)
    assert net.output_shape == (4,)
    assert net.param_specs()["layers.2.body.0.weight"] == (4, 3, 3, 3)
    assert Network.random(LAYERS, rng=0, input_shape=IN_SHAPE).fingerprint() == net.fingerprint()
    x = _readonly(_random_like((3, *IN_SHAPE), 5))
    y = net.forward(x)
    assert y.shape == (3, 4)
    # the layers' own arithmetic, composed by hand
    p = net.params
    h = LAYERS[0].apply({"weight": p["layers.0.weight"], "bias": p["layers.0.bias"]}, x)
    h = np.maximum(h, 0)
    r = LAYERS[2].body[0][1].apply({"weight": p["layers.2.body.0.weight"],
                                    "bias": p["layers.2.body.0.bias"]}, h)
    r = LAYERS[2].body[2][1].apply({"weight": p["layers.2.body.2.weight"],
                                    "bias": p["layers.2.body.2.bias"]}, np.maximum(r, 0))
    h = AvgPool2d((1, 2), 1).apply({}, MaxPool2d(2).apply({}, h + r))
    want = h.reshape(3, -1) @ p["layers.6.weight"].T + p["layers.6.bias"]
    assert np.array_equal(y, want)
    _fd_check(net.forward, lambda g: net.linearize(x).vjp(g), x, 7)
    path = tmp_path / "conv.npz"
    net.save(path)
    back = Network.load(path)
    assert back.layers == net.layers and back.input_shape == net.input_shape
    assert back.fingerprint() == net.fingerprint()
    for k, v in net.params.items():
        assert back.params[k].dtype == v.dtype and np.array_equal(back.params[k], v)
    assert np.array_equal(back.forward(x), y)


def test_network_shape_errors_name_the_layer():
    with pytest.raises(ShapeError, match=r"layers.1.*in_channels=3.*2 channels"):
        Network.random([Conv2d(2, 2, 1), Conv2d(3, 1, 1)], rng=0, input_shape=(2, 4, 4))
    with pytest.raises(ShapeError, match=r"layers.0.*kernel_size.*larger than the padded"):
        Network.random([Conv2d(2, 2, 5, padding=1)], rng=0, input_shape=(2, 2, 4))
    with pytest.raises(ShapeError, match=r"kernel_size.*larger than the padded input 3 x 3"):
        Network.random([MaxPool2d(4)], rng=0, input_shape=(1, 3, 3))
    with pytest.raises(ShapeError, match=r"\(channels, height, width\).*\(5,\)"):
        Network.random([Dense(5, 5), Conv2d(1, 1, 1)], rng=0)
    with pytest.raises(ShapeError, match="residual body must keep the shape"):
        Network.random([Residual([Conv2d(1, 1, 3)])], rng=0, input_shape=(1, 4, 4))


# ====================================================================== bad inputs
@pytest.mark.parametrize(("make", "match"), [
    (lambda: Conv2d(0, 1, 1), r"`in_channels` must be an int >= 1; received 0"),
    (lambda: Conv2d(1, -2, 1), r"`out_channels` must be an int >= 1; received -2"),
    (lambda: Conv2d(1.0, 1, 1), r"`in_channels` must be an int >= 1; received 1.0"),
    (lambda: Conv2d(1, 1, 0), r"`kernel_size` must be an int >= 1 or a pair.*received 0"),
    (lambda: Conv2d(1, 1, (2,)), r"`kernel_size`.*received \(2,\)"),
    (lambda: Conv2d(1, 1, (2, 2, 2)), r"`kernel_size`.*received \(2, 2, 2\)"),
    (lambda: Conv2d(1, 1, True), r"`kernel_size`.*received True"),
    (lambda: Conv2d(1, 1, 2, stride=(1, 0)), r"`stride` must be an int >= 1.*\(1, 0\)"),
    (lambda: Conv2d(1, 1, 2, padding=-1), r"`padding` must be an int >= 0.*received -1"),
    (lambda: Conv2d(1, 1, 2, padding="same"), r"`padding`.*'same'"),
    (lambda: Conv2d(1, 1, 2, bias=1), r"`bias` must be a bool; received 1"),
    (lambda: MaxPool2d(0), r"`kernel_size` must be an int >= 1.*received 0"),
    (lambda: MaxPool2d(2, stride=0), r"`stride` must be an int >= 1.*received 0"),
    (lambda: AvgPool2d((2, -1)), r"`kernel_size`.*received \(2, -1\)"),
    (lambda: AvgPool2d(2, stride=2.5), r"`stride`.*received 2.5"),
])
def test_bad_fields(make, match):
    with pytest.raises(InputError, match=match):
        make()


def test_bad_input_shapes():
    with pytest.raises(ShapeError, match=r"in_channels=2.*\(3, 4, 4\) \(3 channels\)"):
        Conv2d(2, 1, 1).output_shape((3, 4, 4))
    with pytest.raises(ShapeError, match=r"kernel_size` \(3, 3\).*padded input 2 x 4"):
        Conv2d(1, 1, 3).output_shape((1, 2, 4))
    assert Conv2d(1, 1, 3, padding=(1, 0)).output_shape((1, 2, 4)) == (1, 2, 2)
    with pytest.raises(ShapeError, match=r"\(channels, height, width\).*\(4, 4\)"):
        MaxPool2d(2).output_shape((4, 4))
    with pytest.raises(ShapeError, match=r"\(channels, height, width\)"):
        AvgPool2d(2).output_shape((1, 1, 4, 4))
    with pytest.raises(ShapeError, match=r"at least one axis"):
        Flatten().output_shape(())


# ====================================================================== hypothesis
@settings(max_examples=25, deadline=None)
@given(sst.conv_networks(), sst.conv_networks(channels=1, size=3, max_blocks=3))
def test_conv_networks_forward_and_vjp(net, small):
    for i, n in enumerate((net, small)):
        assert len(n.input_shape) == 3 and 1 <= n.input_shape[0] <= 3
        assert all(3 <= s <= 8 for s in n.input_shape[1:])
        assert isinstance(n.layers[-1][1], Dense) and isinstance(n.layers[-2][1], Flatten)
        x = _random_like((2, *n.input_shape), i)
        lin = n.linearize(x)
        assert np.array_equal(lin.output, n.forward(x))
        assert lin.output.shape == (2, *n.output_shape)
        g = _random_like(lin.output.shape, i + 10)
        assert lin.vjp(g).shape == x.shape
        assert np.all(np.isfinite(lin.vjp(g)))


def test_conv_networks_validates_eagerly():
    with pytest.raises(InputError, match="`size` must be an int >= 3; received 2"):
        sst.conv_networks(size=2)
    with pytest.raises(InputError, match="`channels` must be an int >= 1"):
        sst.conv_networks(channels=0)
    with pytest.raises(InputError, match="`max_blocks` must be an int >= 0"):
        sst.conv_networks(max_blocks=-1)


# ====================================================================== torch
def _torch():
    return pytest.importorskip("torch")


def test_torch_functional_agreement():
    torch = _torch()
    F = torch.nn.functional
    for case, (layer, params, x) in enumerate(CONV):
        w = torch.tensor(params["weight"])
        b = torch.tensor(params["bias"]) if layer.bias else None
        xt = torch.tensor(x).requires_grad_(True)
        yt = F.conv2d(xt, w, b, stride=layer.stride, padding=layer.padding)
        y = layer.apply(params, x)
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=0, atol=TOL)
        g = _random_like(y.shape, case)
        yt.backward(torch.tensor(g))
        np.testing.assert_allclose(layer.vjp(params, x, g), xt.grad.numpy(), rtol=0, atol=TOL)
    for (layer, x), fn in [*((c, F.max_pool2d) for c in MAXP),
                           *((c, F.avg_pool2d) for c in AVGP)]:
        xt = torch.tensor(x).requires_grad_(True)
        yt = fn(xt, layer.kernel_size, layer.stride)
        y = layer.apply({}, x)
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=0, atol=TOL)
        g = _random_like(y.shape, 3)
        yt.backward(torch.tensor(g))
        np.testing.assert_allclose(layer.vjp({}, x, g), xt.grad.numpy(), rtol=0, atol=TOL)
    x = _random_like((2, 3, 4, 5), 0)
    assert np.array_equal(Flatten().apply({}, x), torch.flatten(torch.tensor(x), 1).numpy())


def test_torch_bridge_round_trip_and_forward():
    torch = _torch()
    from slth.torch import network_from_torch, network_to_torch

    net = Network.random(LAYERS, rng=3, input_shape=IN_SHAPE)
    mod = network_to_torch(net, dtype=torch.float64, device="cpu")
    assert isinstance(mod[0], torch.nn.Conv2d) and isinstance(mod[3], torch.nn.MaxPool2d)
    assert isinstance(mod[4], torch.nn.AvgPool2d) and isinstance(mod[5], torch.nn.Flatten)
    assert set(mod.state_dict()) == {k[len("layers."):] for k in net.params}
    x = _random_like((4, *IN_SHAPE), 1)
    with torch.no_grad():
        yt = mod(torch.tensor(x)).numpy()
    np.testing.assert_allclose(yt, net.forward(x), rtol=0, atol=TOL)
    back = network_from_torch(mod, input_shape=IN_SHAPE)
    assert back.layers == net.layers
    assert back.fingerprint() == net.fingerprint()
    for k, v in net.params.items():
        assert np.array_equal(back.params[k], v)
    assert np.array_equal(back.forward(x), net.forward(x))
    # float32 modules agree to float32 rounding
    mod32 = network_to_torch(net, dtype=torch.float32, device="cpu")
    with torch.no_grad():
        y32 = mod32(torch.tensor(x, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(y32, net.forward(x), rtol=0, atol=1e-4)


def test_torch_bridge_reads_torch_modules():
    torch = _torch()
    from torch import nn

    from slth.torch import network_from_torch

    torch.manual_seed(0)
    mod = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding="same"), nn.ReLU(), nn.Conv2d(2, 2, (2, 3), stride=(1, 2),
                                                                  padding="valid", bias=False),
        nn.MaxPool2d(2, stride=1), nn.AvgPool2d(1, count_include_pad=False), nn.Flatten(),
        nn.Linear(2 * 4 * 1, 3),
    ).double()
    net = network_from_torch(mod, input_shape=(1, 6, 5))
    assert net.layers[0][1] == Conv2d(1, 2, 3, padding=1)
    assert net.layers[2][1] == Conv2d(2, 2, (2, 3), stride=(1, 2), bias=False)
    assert net.layers[3][1] == MaxPool2d(2, 1)
    x = _random_like((3, 1, 6, 5), 2)
    with torch.no_grad():
        np.testing.assert_allclose(net.forward(x), mod(torch.tensor(x)).numpy(), rtol=0, atol=TOL)


def test_torch_bridge_unsupported_options():
    _torch()
    from torch import nn

    from slth.torch import network_from_torch

    bad = [
        (nn.Conv2d(1, 1, 3, dilation=2), r"Conv2d.*dilation=\(2, 2\)"),
        (nn.Conv2d(2, 2, 3, groups=2), r"Conv2d.*groups=2"),
        (nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect"), r"Conv2d.*padding_mode='reflect'"),
        (nn.Conv2d(1, 1, 2, padding="same"), r"Conv2d.*padding='same'.*odd kernel"),
        (nn.MaxPool2d(2, ceil_mode=True), r"MaxPool2d.*ceil_mode=True"),
        (nn.MaxPool2d(3, padding=1), r"MaxPool2d.*padding=1"),
        (nn.MaxPool2d(2, dilation=2), r"MaxPool2d.*dilation=2"),
        (nn.MaxPool2d(2, return_indices=True), r"MaxPool2d.*return_indices=True"),
        (nn.AvgPool2d(2, ceil_mode=True), r"AvgPool2d.*ceil_mode=True"),
        (nn.AvgPool2d(3, padding=1, count_include_pad=False), r"AvgPool2d.*padding=1"),
        (nn.AvgPool2d(2, divisor_override=3), r"AvgPool2d.*divisor_override=3"),
        (nn.Flatten(2), r"Flatten.*start_dim=2"),
        (nn.Flatten(1, 2), r"Flatten.*end_dim=2"),
    ]
    for module, match in bad:
        with pytest.raises(InputError, match=match):
            network_from_torch(nn.Sequential(module), input_shape=(2, 6, 6))
    with pytest.raises(InputError, match=r"at `1`"):
        network_from_torch(nn.Sequential(nn.ReLU(), nn.Conv2d(1, 1, 3, groups=1, dilation=2)),
                           input_shape=(1, 6, 6))


def test_torch_max_pool_ties_agree():
    torch = _torch()
    rng = np.random.default_rng(4)
    # few distinct values: many ties, overlapping and disjoint windows
    x = rng.integers(0, 3, (2, 2, 7, 6)).astype(np.float64)
    for layer in (MaxPool2d(2), MaxPool2d(3, 1), MaxPool2d((2, 3), (1, 2))):
        xt = torch.tensor(x).requires_grad_(True)
        yt = torch.nn.functional.max_pool2d(xt, layer.kernel_size, layer.stride)
        g = rng.integers(1, 5, tuple(yt.shape)).astype(np.float64)
        yt.backward(torch.tensor(g))
        assert np.array_equal(layer.apply({}, x), yt.detach().numpy())
        assert np.array_equal(layer.vjp({}, x, g), xt.grad.numpy())
