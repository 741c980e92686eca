"""da Cunha, Natale, Viennot (ICLR 2022): strong lottery tickets for convolutional networks.

"Proving the Strong Lottery Ticket Hypothesis for Convolutional Neural
Networks" (OpenReview ``Vjki79-619-``). What slth could confirm of the paper is
its abstract and the authors' slides: any CNN with kernels of l1 norm at most 1
can be approximated within eps by pruning a random CNN of twice the depth
whose size is larger by a logarithmic factor. The paper's text (its
construction, theorem numbers, constants, source law and norms) could not be
read, so **this module implements the natural reading** recorded in
``THEORY.md``: the construction of Pensia et al. (NeurIPS 2020, Theorem 1) in
channels. No theorem number of the paper is cited here for that reason.

The construction (slth's reading, not confirmed from the paper's text)
----------------------------------------------------------------------
The target is a :class:`slth.nets.base.Network` of
:class:`~slth.nets.conv.Conv2d`, ReLU, :class:`~slth.nets.conv.MaxPool2d`,
:class:`~slth.nets.conv.AvgPool2d`, :class:`~slth.nets.conv.Flatten` and
Dense layers, and residual blocks of them (section "Residual targets"). Each
parametrised layer becomes three source layers, the parameter-free ones are
copied:

* a target ``Conv2d(c_in, c_out, (kh, kw), stride, padding)`` with kernel
  ``K`` becomes ``Conv2d(c_in, m, 1)`` -> ReLU -> ``Conv2d(m, c_out, (kh, kw),
  stride, padding, bias=False)`` with ``m = 2 n c_in`` (``2 n (c_in + 1)`` with
  a bias); a target ``Dense(d_in, d_out)`` becomes ``Dense(d_in, m)`` -> ReLU
  -> ``Dense(m, d_out, bias=False)`` (Pensia et al.'s pair itself);
* the first (1x1) convolution is pruned to a channel block diagonal: hidden
  channel ``h`` of block ``j = h // 2n`` reads only input channel ``j``, with
  weight ``a_h``. Pixelwise ``relu(a_h x_j) = a_h relu(x_j)`` when ``a_h > 0``
  and ``|a_h| relu(-x_j)`` when ``a_h < 0``: the first n hidden channels of
  each sign in the block serve the positive and the negative part;
* the second convolution's entry ``B[i, h, u, v]`` is kept when ``h`` is in
  the subset chosen for ``K[i, j, u, v]``: two random subset-sum problems per
  kernel entry, over the n products ``B[i, h, u, v] a_h`` of the positive
  channels of block j with target ``K[i, j, u, v]`` and over the products
  ``B[i, h, u, v] |a_h|`` of the negative ones with target ``-K[i, j, u, v]``.
  Then the pair computes ``P * relu(x) + N * relu(-x)`` (``*`` the target's
  convolution, P and N the realised part kernels) with ``P ~ K`` and
  ``N ~ -K``, i.e. ``~ K * x`` since ``x = relu(x) - relu(-x)``.

The instances are those of the Dense pair on the reshaped matrices
``W'[(i, u, v), j] = K[i, j, u, v]`` and ``B'[(i, u, v), h] = B[i, h, u, v]``:
:func:`slth.constructions.layouts.pair_dense.gather_layer` collects them, ONE
:func:`slth.subset_sum.solve_batch` call per target layer solves them,
:func:`~slth.constructions.layouts.pair_dense.scatter_kept` and
:func:`~slth.constructions.layouts.pair_dense.kept_first` turn the chosen
subsets into kept flat indices of ``B'`` and of the first layer, and the
indices of ``B'`` are mapped back to ``B``'s ``(i, h, u, v)`` row-major order.
The kept values are the source's entries bit for bit.

Residual targets (an extension: the paper's statement is for sequential CNNs)
-----------------------------------------------------------------------------
A target :class:`~slth.nets.base.Residual` ``x -> x + F(x)`` at ``layers.<k>``
becomes a source ``Residual`` over the source layers of its body: each Conv2d /
Dense of ``F`` its pair (``layers.<K>.body.<j>``, ``<j+1>``, ``<j+2>``), each
parameter-free layer copied. A pair outputs the target layer's own channels, so
the skip path is the identity on the same channels as in the target and no
copy bookkeeping is needed; the target may start with a block, and a body may
end in a ReLU or an affine layer. Bodies hold Conv2d, Dense and parameter-free
layers (the Residual itself checks that they keep the shape); nested residual
blocks are refused (:class:`~slth.errors.InputError`), and so are, as
everywhere, biased convolutions with ``2 padding > kernel - 1`` (below). ResNet
basic blocks ``[conv3x3 (padding 1), ReLU, conv3x3 (padding 1)]``, with or
without biases, are supported; a downsampling
block (stride 2 and a projection on the skip) is not a Residual of equal
shapes; a plain strided Conv2d between stages is.

Certificate through a block (same notation as below): with ``(e_x, r_x)`` the
bounds at the block input, the body's steps propagate them to ``(e_F, r_F)``
for ``F`` alone, and ``||(x' + F'(x')) - (x + F(x))|| <= e_x + e_F``, ``||x +
F(x)|| <= r_x + r_F`` (triangle inequality); the float bounds add likewise plus
``gamma_1`` times the norms of the two summands for the rounding of the sum.

Biases (an extension, as in slth's Pensia construction)
-------------------------------------------------------
A biased target layer gets a constant block of ``2 n`` hidden channels with
no kept 1x1 weight and their source bias ``c_h`` kept when ``c_h > 0``: they
are the constant maps ``relu(c_h) = c_h``. Without padding every output pixel
of the k x k convolution sees every tap of a constant channel, so it adds
``sum_{h, u, v} B[i, h, u, v] c_h``; the bias instances (targets ``b_i``) use
one tap only, ``(p_h, p_w)`` (the padding; ``(0, 0)`` without padding). With
zero padding a constant channel is 0 where a tap falls into the padding, but
tap ``(u, v)`` reads input row ``s o + u - p_h`` for output row ``o``, which
lies inside the input for every ``o`` exactly when ``p_h <= u <= k_h - 1 -
p_h``: the tap ``(p_h, p_w)`` is inside at every output pixel whenever ``2 p
<= k - 1`` per side ("same" padding included), so the bias is exact there. A
biased convolution with ``2 p > k - 1`` on a side is refused
(:class:`~slth.errors.InputError`), and the certifier refuses a ticket that
keeps constant-channel entries on taps that can fall into the padding.

The hypothesis
--------------
The abstract assumes kernels of l1 norm at most 1. slth reads it per output
channel: ``max_i sum_{j,u,v} |K[i, j, u, v]| <= 1`` (the same for the rows of a
Dense weight); :func:`construct` records per layer that maximum and whether
it holds (``params["hypothesis"]``) and never rescales the target.

The certifier (:func:`certified_bound`) and its proof
----------------------------------------------------
Nothing the ticket records is trusted: the source's architecture must be the
layout's (widths ``m = 2 n (c_in + [bias])`` with one ``n`` per pair, the
target's kernel, stride and padding on the second convolution), and from the
kept entries every kept 1x1 weight must lie on the block diagonal (one input
per hidden channel), every kept first-layer bias in the constant block. The
part kernels ``P``, ``N`` and the bias ``beta`` are then recomputed from the
kept entries.

*Norms.* For a convolution ``M`` of stride ``s`` and zero padding, with taps
``M_uv`` (``c_out x c_in`` matrices):

1. ``||M||_{2->2} <= sum_{u,v} ||M_uv||_2``: the map ``x -> (x(s p + (u, v) -
   pad))_p`` (zero outside the image) selects distinct pixels (``p -> s p +
   off`` is injective) so it is non-expansive, and the pixelwise product with
   ``M_uv`` has norm ``||M_uv||_2``; the triangle inequality sums the taps.
2. ``||M||_{2->2} <= ||M_flat||_2 sqrt(ceil(kh/sh) ceil(kw/sw))``, ``M_flat``
   the ``c_out x (c_in kh kw)`` matrix: output pixel p is ``M_flat w(p)`` with
   ``w(p)`` its (zero-padded) window, and an input pixel lies in at most
   ``ceil(kh/sh) ceil(kw/sw)`` windows, so ``sum_p ||w(p)||^2 <= that ||x||^2``.

3. On the layer's actual image size, when the explicit ``(c_out H_out W_out) x
   (c_in H W)`` matrix has at most :data:`CONV_MATRIX_MAX` entries: its
   spectral norm (every entry is a kernel entry or 0, so the matrix is exact).

The smallest is used; a Dense layer is the 1x1 case (``||W||_2``). Spectral
norms are certified upper bounds (:func:`slth.certify.norm_upper`); an
entrywise perturbation ``|E| <= rho`` adds the same bound of ``rho`` (Frobenius
per tap for 1 and 2, ``||E||_2 <= ||rho||_2`` for 3).

*A pair.* ``G(x) = P * relu(x) + N * relu(-x) + beta`` and the target layer
``F(y) = K * y + b``. With ``D+ = P - K`` and ``D- = N + K``, ``G(y) - F(y) =
[D+ D-] * (relu(y), relu(-y)) + (beta - b)``, and ``(relu(y), relu(-y))`` has
the norm of ``y`` (disjoint supports), so ``||G(y) - F(y)|| <= delta ||y|| +
||beta - b||_2 sqrt(H_out W_out)`` with ``delta`` the norm bound of the
convolution ``[D+ D-]`` (``2 c_in`` input channels). For the Lipschitz
constant: with ``a = relu(x) - relu(y)`` and ``c = relu(-x) - relu(-y)``
entrywise, ``a - c = x - y`` and ``a c <= 0``, so ``||(a, c)|| <= ||x - y||``;
``G(x) - G(y) = [P N] * (a, c)``, hence ``Lip(G) <= ||[P N]||``, and also
``<= ||K|| + delta`` since ``[K -K] * (a, c) = K * (x - y)``. Therefore

    ``e_l <= Lip_l e_{l-1} + delta_l r_{l-1} + ||beta_l - b_l|| sqrt(H W)``,
    ``r_l <= ||K_l|| r_{l-1} + ||b_l|| sqrt(H W)``,

with ``e`` a bound on the distance of the ticket's activation from the
target's and ``r`` one on the target's activation norm (``r_0`` the radius).
ReLU is 1-Lipschitz and ``||relu(y)|| <= ||y||``; MaxPool is Lipschitz with
constant ``sqrt(ceil(kh/sh) ceil(kw/sw))`` (``|max w - max w'| <= ||w - w'||``
per window, and a pixel lies in at most that many windows; 1 for
non-overlapping windows) and maps 0 to 0; AvgPool is linear with norm at most
``sqrt(ceil(kh/sh) ceil(kw/sw) / (kh kw)) <= 1``; Flatten is an isometry.

*Rounding outward.* ``u = 2^-53``, ``gamma_k = k u / (1 - k u)``. The
recomputed ``P`` (a sum of at most ``m`` products) is within ``gamma_{m+1}
(|B| |A+|)`` of the exact one, the differences with ``K`` add ``u`` of their
value; twice these margins, as a nonnegative kernel, are added to ``delta``
and ``Lip`` through their Frobenius norms per tap. Every recursion step is
rounded up (``1 + 2 k u``). Float evaluation: as :mod:`slth.certify`, the
returned number adds bounds ``phi_f``, ``phi_g`` on the forward rounding
errors of target and ticket (per parametrised layer ``phi_l <= Lip phi_{l-1}
+ gamma_{T+3} (|| |M| || (r + e + phi_{l-1}) + || |beta| || sqrt(H W))`` with
``T`` the inner products' length and ``|M|`` the absolute kernel, for the
ticket the absolute pair product ``|B| |A|``; AvgPool adds ``gamma_{kh kw+1}``
relatively) and multiplies by ``1 + gamma_{d+2}`` for the final difference,
so ``adversarial <= certified`` holds for the numbers slth reports.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import bounds
from .._rng import RNGLike
from ..certify import check_fingerprint, check_radius, norm_upper
from ..errors import ConstructionError, InputError, LimitError, ShapeError, format_value
from ..nets.base import Architecture, Layer, Network, Residual
from ..nets.conv import AvgPool2d, Conv2d, Flatten, MaxPool2d
from ..nets.layers import Dense, ReLU
from ..sources import VirtualNetwork
from ..subset_sum import EXACT_MAX_N, solve_batch
from ..ticket import Ticket
from ._common import check_delta, check_eps, check_on_failure, check_positive, draw_network
from ._realise import tally_failures
from .layouts.pair_dense import gather_layer, kept_first, scatter_kept

__all__ = ["CONV_MATRIX_MAX", "NAME", "PAPER", "certified_bound", "construct", "effective_kernels",
           "source_architecture", "tolerances"]

#: Value of :attr:`slth.Ticket.construction` for tickets built here.
NAME = "dacunha2022"

#: The paper (only its abstract is confirmed; see the module docstring).
PAPER = ("da Cunha, Natale, Viennot (ICLR 2022), 'Proving the Strong Lottery Ticket Hypothesis "
         "for Convolutional Neural Networks', OpenReview Vjki79-619- (abstract confirmed; "
         "construction: slth's reading, Pensia et al. 2020 in channels)")

_LAW = "uniform[-1,1]"
_U = 2.0 ** -53
_FREE = (ReLU, MaxPool2d, AvgPool2d, Flatten)


def _gamma(k: int) -> float:
    ku = float(k) * _U
    return ku / (1.0 - ku)


def _up(x: float, k: int = 1) -> float:
    """``x`` (>= 0) times ``1 + 2 k u``, one ulp up: covers k roundings of a nonnegative result."""
    return float(np.nextafter(float(x) * (1.0 + 2.0 * k * _U), np.inf))


# ----------------------------------------------------------------------------- target plan
@dataclass(frozen=True)
class _Step:
    """One top-level target layer: its path, the layer, its input and output shapes."""

    path: str
    layer: Layer
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    #: the top-level Residual's path when the step is in its body, else None
    block: str | None = None
    #: first / last step of that body
    begin: bool = False
    end: bool = False

    @property
    def param(self) -> bool:
        return isinstance(self.layer, (Conv2d, Dense))

    def kernel_shape(self) -> tuple[int, int, int, int]:
        """``(c_out, c_in, kh, kw)`` (a Dense layer is ``(d_out, d_in, 1, 1)``)."""
        ly = self.layer
        if isinstance(ly, Conv2d):
            return (ly.out_channels, ly.in_channels, *ly.kernel_size)
        assert isinstance(ly, Dense)
        return (ly.d_out, ly.d_in, 1, 1)

    def stride(self) -> tuple[int, int]:
        return self.layer.stride if isinstance(self.layer, Conv2d) else (1, 1)

    def pixels(self) -> int:
        """Output pixels per channel (1 for Dense)."""
        return int(math.prod(self.out_shape[1:])) if isinstance(self.layer, Conv2d) else 1


def _plan(target: Any, what: str = "`target`") -> tuple[_Step, ...]:
    """The target's layers with shapes; InputError for anything outside the construction."""
    if not isinstance(target, Network):
        raise InputError(f"{what} must be a slth.nets.base.Network of Conv2d, ReLU, MaxPool2d, "
                         f"AvgPool2d, Flatten and Dense layers; received {format_value(target)} "
                         f"of type {type(target).__name__}")
    shape = tuple(target.input_shape)
    steps = []

    def check(path: str, layer: Any) -> None:
        if not isinstance(layer, (Conv2d, Dense, *_FREE)):
            raise InputError(f"{what} layer `{path}` must be one of Conv2d, ReLU, MaxPool2d, "
                             f"AvgPool2d, Flatten, Dense, or a Residual of them; received "
                             f"{layer!r}")
        if isinstance(layer, Conv2d) and layer.bias and any(
                2 * p > k - 1 for p, k in zip(layer.padding, layer.kernel_size)):
            raise InputError(
                f"{what} layer `{path}` ({layer!r}) has a bias and `padding` > (kernel - 1) / 2 "
                "on a side: the bias is realised by constant hidden channels on the tap "
                "(padding_h, padding_w), which zero padding would make 0 at border pixels once "
                "2 padding > kernel - 1; use 2 padding <= kernel - 1, or a bias-free "
                "convolution (e.g. pad the input instead)")

    for name, layer in target.layers:
        path = f"layers.{name}"
        if isinstance(layer, Residual):
            body = list(layer.body)
            for k, (bname, blay) in enumerate(body):
                bpath = f"{path}.body.{bname}"
                if isinstance(blay, Residual):
                    raise InputError(f"{what} layer `{bpath}` is a Residual inside the residual "
                                     f"block `{path}`: nested residual blocks are not supported "
                                     "(flatten them into consecutive blocks)")
                check(bpath, blay)
                out = tuple(blay.output_shape(shape))
                steps.append(_Step(bpath, blay, shape, out, path, k == 0, k == len(body) - 1))
                shape = out
            continue
        check(path, layer)
        out = tuple(layer.output_shape(shape))
        steps.append(_Step(path, layer, shape, out))
        shape = out
    if not any(s.param for s in steps):
        raise InputError(f"{what} must have at least one Conv2d or Dense layer; received "
                         f"{len(steps)} parameter-free layers")
    return tuple(steps)


def _target_params(target: Network, step: _Step) -> tuple[np.ndarray, np.ndarray | None]:
    """The target kernel as ``(c_out, c_in, kh, kw)`` and its bias (or None)."""
    K = np.asarray(target.params[f"{step.path}.weight"], dtype=np.float64)
    K = K.reshape(step.kernel_shape())
    b = target.params.get(f"{step.path}.bias")
    return K, (None if b is None else np.asarray(b, dtype=np.float64))


# ----------------------------------------------------------------------------- source layout
@dataclass(frozen=True)
class _Pair:
    """Where a parametrised target layer lives in the source."""

    step: _Step
    n: int
    m: int
    first: str     # source layer paths
    relu: str
    second: str


def source_architecture(target: Network, n: int | Sequence[int]
                        ) -> tuple[Architecture, dict[str, tuple[str, ...]]]:
    """The source's layers for ``n`` units per sign part (one value, or one per parametrised layer).

    Parameters
    ----------
    target : Network
        A target :func:`construct` accepts.
    n : int or sequence of int
        Hidden channels per sign part and input channel, per Conv2d/Dense layer.

    Returns
    -------
    (Architecture, dict)
        The source architecture (input shape of the target) and the layer map
        ``{target layer path: source layer paths}``: ``(first, relu, second)``
        for a parametrised layer, ``(copy,)`` for a parameter-free one.
    """
    steps = _plan(target)
    units = _units(steps, n)
    arch, lm, _ = _layout(target, steps, units)
    return arch, lm


def _units(steps: Sequence[_Step], n: Any) -> tuple[int, ...]:
    from .. import _validate

    L = sum(s.param for s in steps)
    out = _validate.int_or_per_layer("n", n, L)
    assert out is not None
    return out


def _layout(target: Network, steps: Sequence[_Step], units: Sequence[int]
            ) -> tuple[Architecture, dict[str, tuple[str, ...]], list[_Pair]]:
    top: list[Layer] = []
    layers = top          # the open residual body, or the top level
    prefix = "layers."    # source path of the next layer: prefix + its index in `layers`
    lm: dict[str, tuple[str, ...]] = {}
    pairs: list[_Pair] = []
    it = iter(units)

    def close(s: _Step) -> None:
        nonlocal layers, prefix
        if s.end:   # the source residual over the body's source layers: the skip unchanged
            top.append(Residual(tuple(layers)))
            layers, prefix = top, "layers."

    for s in steps:
        ly = s.layer
        if s.begin:
            lm[str(s.block)] = (f"layers.{len(top)}",)
            layers, prefix = [], f"layers.{len(top)}.body."
        if not s.param:
            lm[s.path] = (f"{prefix}{len(layers)}",)
            layers.append(ly)
            close(s)
            continue
        n = int(next(it))
        c_out, c_in, _, _ = s.kernel_shape()
        bias = bool(ly.bias)
        m = 2 * n * (c_in + (1 if bias else 0))
        i0 = len(layers)
        if isinstance(ly, Conv2d):
            layers += [Conv2d(c_in, m, 1, bias=bias), ReLU(),
                       Conv2d(m, c_out, ly.kernel_size, stride=ly.stride, padding=ly.padding,
                              bias=False)]
        else:
            layers += [Dense(c_in, m, bias=bias), ReLU(), Dense(m, c_out, bias=False)]
        paths = tuple(f"{prefix}{i0 + k}" for k in range(3))
        lm[s.path] = paths
        pairs.append(_Pair(s, n, m, *paths))
        close(s)
    return Architecture(tuple(top), tuple(target.input_shape)), lm, pairs


def _infer_units(source: Any, steps: Sequence[_Step]) -> tuple[int, ...] | None:
    """``n`` per pair read off a source's first-layer widths (None: not the layout)."""
    # the source's layers depth first without the Residual wrappers: the steps' order
    layers = [(p, ly) for p, ly in source.named_layers() if not isinstance(ly, Residual)]
    pos, units = 0, []
    for s in steps:
        if not s.param:
            pos += 1
            continue
        if pos >= len(layers):
            return None
        ly = layers[pos][1]
        m = ly.out_channels if isinstance(ly, Conv2d) else getattr(ly, "d_out", None)
        per = 2 * (s.kernel_shape()[1] + (1 if s.layer.bias else 0))
        if not isinstance(m, int) or m % per or m < per:
            return None
        units.append(m // per)
        pos += 3
    return tuple(units)


def _first_difference(got: dict[str, Any], want: dict[str, Any]) -> str:
    if got.get("input_shape") != want.get("input_shape"):
        return f"input shape {got.get('input_shape')} (expected {want.get('input_shape')})"
    gl, wl = got.get("layers", []), want.get("layers", [])
    for k in range(max(len(gl), len(wl))):
        g = gl[k] if k < len(gl) else None
        w = wl[k] if k < len(wl) else None
        if g != w:
            return f"layer {k}: {g} (expected {w})"
    return "nothing"


def _check_source(source: Any, target: Network, steps: Sequence[_Step], n: Any,
                  what: str = "`source`") -> tuple[tuple[int, ...], Architecture,
                                                   dict[str, tuple[str, ...]], list[_Pair]]:
    """The layout of a given source (ShapeError naming what differs from the expected one)."""
    if not isinstance(source, (Network, VirtualNetwork)):
        raise InputError(f"{what} must be a slth.nets.base.Network or a "
                         f"slth.sources.VirtualNetwork; received {format_value(source)} of type "
                         f"{type(source).__name__}")
    units = _units(steps, n) if n is not None else _infer_units(source, steps)
    if units is None:
        raise ShapeError(
            f"{what} does not have dacunha2022's layout for this target: each Conv2d/Dense "
            "layer (c_in -> c_out) must become Conv2d(c_in, m, 1)/Dense(c_in, m) -> ReLU -> "
            "Conv2d(m, c_out, k, stride, padding, bias=False)/Dense(m, c_out, bias=False) with "
            f"m = 2 n (c_in + [bias]); received {format_value(source)}")
    arch, lm, pairs = _layout(target, steps, units)
    got, want = source.architecture(), arch.architecture()
    if got != want:
        raise ShapeError(f"{what} must have the architecture of dacunha2022's layout with "
                         f"n={list(units)}; it differs at {_first_difference(got, want)}")
    return units, arch, lm, pairs


# ----------------------------------------------------------------------------- tolerances
def tolerances(target: Network, eps: float) -> tuple[float, ...]:
    """Per-parametrised-layer subset-sum tolerance for accuracy ``eps`` (slth's choice).

    ``eps / (2 L (kh kw sqrt(2 c_in c_out) + [bias] sqrt(c_out H_out W_out)))``
    for each of the ``L`` Conv2d/Dense layers: with every entry of ``D+``,
    ``D-`` and ``beta - b`` within it, the certifier's ``delta_l`` plus its
    bias term are at most ``eps / (2 L)`` (tap bound, Frobenius per tap), so
    for operator bounds ``<= 1``, non-overlapping pools and no biases its
    recursion gives ``(1 + eps/(2L))^L - 1 < eps``. Not the paper's (unread)
    constant.

    Parameters
    ----------
    target : Network
    eps : float
        In (0, 1).

    Returns
    -------
    tuple of float
    """
    eps_f = check_eps(eps, allow_none=False)
    assert eps_f is not None
    steps = [s for s in _plan(target) if s.param]
    L = len(steps)
    out = []
    for s in steps:
        c_out, c_in, kh, kw = s.kernel_shape()
        denom = kh * kw * math.sqrt(2 * c_in * c_out)
        if s.layer.bias:
            denom += math.sqrt(c_out * s.pixels())
        out.append(eps_f / (2 * L * denom))
    return tuple(out)


def _theorem_units(steps: Sequence[_Step], eps: float, delta: float, C: float
                   ) -> tuple[int, ...]:
    """Width from eps: Pensia et al.'s n on the reshaped ``(c_out kh kw) x c_in`` matrix."""
    params = [s for s in steps if s.param]
    L = len(params)
    out = []
    for s in params:
        c_out, c_in, kh, kw = s.kernel_shape()
        out.append(int(bounds.pensia2020_units(c_in + (1 if s.layer.bias else 0),
                                               c_out * kh * kw, L, eps, delta, C=C)))
    return tuple(out)


def _hypothesis(target: Network, steps: Sequence[_Step]) -> dict[str, Any]:
    l1 = []
    for s in steps:
        if s.param:
            K, _ = _target_params(target, s)
            l1.append(float(np.abs(K).reshape(K.shape[0], -1).sum(axis=1).max()))
    biased = [s.path for s in steps if s.param and s.layer.bias]
    return {
        "statement": "kernels of l1 norm at most 1 per output channel "
                     "(max_i sum_{j,u,v} |K[i,j,u,v]| <= 1), read from the paper's abstract",
        "kernel_l1_max": l1,
        "holds": bool(all(v <= 1.0 for v in l1)),
        "biased_layers": biased,
    }


# ----------------------------------------------------------------------------- one layer
@dataclass
class _LayerResult:
    first: np.ndarray
    first_bias: np.ndarray | None
    second: np.ndarray
    w_err: np.ndarray
    b_err: np.ndarray | None
    n_instances: int
    n_failed: int
    failed_weights: int
    worst: float


def _realise_layer(A: np.ndarray, cA: np.ndarray | None, B: np.ndarray, K: np.ndarray,
                   b: np.ndarray | None, n: int, tol: float | None,
                   bias_tap: int = 0) -> _LayerResult:
    """One target layer: gather on the reshaped Dense pair, one solve_batch call, scatter back.

    ``A`` (m, c_in) first-layer weights (only the block diagonal is read), ``cA`` (m,) its
    bias (only the constant block is read), ``B`` (c_out, m, kh, kw), ``K`` (c_out, c_in,
    kh, kw), ``b`` (c_out,) or None; ``bias_tap`` the flat tap ``u kw + v`` of the bias
    instances (the padding's, module docstring).
    """
    c_out, c_in, kh, kw = K.shape
    m = A.shape[0]
    T = kh * kw
    R = c_out * T
    Wp = np.ascontiguousarray(K.transpose(0, 2, 3, 1).reshape(R, c_in))
    Bp = np.ascontiguousarray(B.transpose(0, 2, 3, 1).reshape(R, m))
    bp = None
    if b is not None:
        bp = np.zeros(R)
        bp[bias_tap::T] = b      # the bias instances of one tap; the other taps keep nothing
    inst = gather_layer(A, cA, Bp, Wp, bp, n)
    res = solve_batch(inst.values, inst.targets, eps=tol)
    chosen = np.array(res.masks, dtype=bool)
    err = np.array(res.errors, dtype=np.float64)
    P = R * c_in
    if b is not None:
        other = np.ones(R, dtype=bool)
        other[bias_tap::T] = False
        chosen[2 * P:][other] = False
        err[2 * P:][other] = 0.0
    sec, used, used_bias = scatter_kept(inst, chosen, m, 0)
    r, h = np.divmod(sec, m)
    i, t = np.divmod(r, T)
    second = np.sort((i * m + h) * T + t).astype(np.int64)
    first, first_bias = kept_first(used, used_bias, c_in, n)
    w_err = np.maximum(err[:P], err[P:2 * P]).reshape(c_out, kh, kw, c_in).transpose(0, 3, 1, 2)
    b_err = None if b is None else np.ascontiguousarray(err[2 * P:][bias_tap::T])
    meaningful = (np.concatenate([err[:2 * P], err[2 * P:][bias_tap::T]]) if b is not None
                  else err)
    nf = fw = 0
    if tol is not None:
        bad = meaningful > tol
        nf = int(np.count_nonzero(bad))
        _, fw = tally_failures(meaningful, tol, P)
    return _LayerResult(first, first_bias, second, np.ascontiguousarray(w_err), b_err,
                        int(meaningful.size), nf, fw,
                        float(meaningful.max()) if meaningful.size else 0.0)


def _read_pair(source: Any, pair: _Pair, bias: bool, c_in: int
               ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """``A`` (m, c_in), ``cA`` (m,) or None and ``B`` (c_out, m, kh, kw) of a pair.

    A virtual source is read only where a ticket may keep entries: the block
    diagonal of ``A``, the constant block of ``cA`` (zeros elsewhere, never
    read by the gather) and all of ``B``.
    """
    n, m = pair.n, pair.m
    wA, wB = f"{pair.first}.weight", f"{pair.second}.weight"
    shapeB = tuple(source.param_specs()[wB])
    if isinstance(source, VirtualNetwork):
        two_n = 2 * n
        main = two_n * c_in
        u = np.arange(main, dtype=np.int64)
        A = np.zeros((m, c_in))
        A[u, u // two_n] = source.entries(wA, u * c_in + u // two_n)
        cA = None
        if bias:
            cA = np.zeros(m)
            cA[main:] = source.entries(f"{pair.first}.bias", np.arange(main, m, dtype=np.int64))
        Bw = source.entries(wB, np.arange(math.prod(shapeB), dtype=np.int64)).reshape(shapeB)
    else:
        A = np.asarray(source.params[wA]).reshape(m, c_in)
        cA = np.asarray(source.params[f"{pair.first}.bias"]) if bias else None
        Bw = np.asarray(source.params[wB])
    return A, cA, np.asarray(Bw).reshape(shapeB[0], m, *pair.step.kernel_shape()[2:])


# ----------------------------------------------------------------------------- construct
def _seed(rng: Any) -> int:
    if rng is None:
        return secrets.randbits(63)
    if isinstance(rng, (bool, np.bool_)) or not isinstance(rng, (int, np.integer)) or rng < 0:
        raise InputError(f"`rng` must be a non-negative int seed (the source is drawn with "
                         f"DenseSource.draw(spec, 'uniform[-1,1]', rng)) or None; received "
                         f"{format_value(rng)}")
    return int(rng)


def construct(
    target: Network,
    *,
    n: int | Sequence[int] | None = None,
    eps: float | None = None,
    delta: float = 0.1,
    weight_eps: float | None = None,
    rng: RNGLike = None,
    source: Network | VirtualNetwork | None = None,
    virtual: bool = False,
    on_failure: str = "raise",
    C: float = bounds.PENSIA2020_C,
    timings: dict[str, float] | None = None,
) -> Ticket:
    """Build a strong lottery ticket of a CNN (da Cunha et al., ICLR 2022; slth's reading).

    Parameters
    ----------
    target : Network
        Conv2d / ReLU / MaxPool2d / AvgPool2d / Flatten / Dense network with
        its ``input_shape``, with residual blocks of these layers (module
        docstring, "Residual targets"). Nested residual blocks and biased
        convolutions with ``2 padding > kernel - 1`` are refused. The
        paper's hypothesis (kernels of l1 norm <= 1) is checked and recorded in
        ``params["hypothesis"]``, not enforced.
    n : int or sequence of int, optional
        Hidden channels per sign part and input channel (one value, or one per
        Conv2d/Dense layer); each instance has ``n`` candidates. Inferred from
        ``source`` when omitted, else from ``eps``.
    eps : float or None, default None
        Accuracy in (0, 1). Given: every instance is solved in eps mode to the
        per-layer tolerance of :func:`tolerances`, and, when ``n`` and
        ``source`` are None, ``n`` follows Pensia et al.'s width
        (:func:`slth.bounds.pensia2020_units`) on the reshaped ``(c_out kh kw)
        x (c_in + [bias])`` matrix. None: exact mode (every instance's optimum,
        ``n <= 40``) unless ``weight_eps`` is given.
    delta : float, default 0.1
        Failure probability in (0, 1), used only for the width from ``eps``.
    weight_eps : float, optional
        Per-entry subset-sum tolerance overriding :func:`tolerances`.
    rng : int or None
        Seed of the source: ``DenseSource.draw(spec, "uniform[-1,1]", rng)``
        (bit for bit the ``VirtualSource`` of the same seed); None draws a
        fresh seed (recorded). Ignored when ``source`` is given.
    source : Network or slth.sources.VirtualNetwork, optional
        A random network of the layout (:func:`source_architecture`) to prune;
        never modified.
    virtual : bool, default False
        Build the source as ``VirtualNetwork(arch, VirtualSource(spec,
        "uniform[-1,1]", rng))``: only the entries a ticket may keep are read
        (the 1x1 block diagonals, the constant blocks' biases, the k x k
        convolutions); the ticket equals the dense one of the same seed.
    on_failure : {"raise", "report"}, default "raise"
        In eps mode, when instances miss their tolerance: raise
        :class:`~slth.errors.ConstructionError`, or return the ticket with the
        failures counted in ``params``.
    C : float, default :data:`slth.bounds.PENSIA2020_C`
        Constant of the width from ``eps``.
    timings : dict, optional
        Filled with seconds per phase (``"draw"``, ``"solve"``, ``"ticket"``,
        ``"total"``).

    Returns
    -------
    Ticket
        ``construction="dacunha2022"``; ``layer_map`` by layer paths
        (``{target path: (first, relu, second)}`` for Conv2d/Dense, ``(copy,)``
        otherwise); ``errors[name]`` per target parameter: the realised
        ``max(|P - K|, |N + K|)`` per kernel entry and ``|beta - b|`` per bias;
        JSON ``params`` (``n``, ``mode``, ``eps``, ``delta``, ``weight_eps``,
        ``weight_tolerance``, ``width_from``, ``n_instances``, ``n_failed``,
        ``failed_weights``, ``worst_error``, ``seed``, ``source_given``,
        ``source_kind``, ``hypothesis``, ``paper``, ``layout``, ``confirmed``).

    Raises
    ------
    InputError
        A target outside the construction (layer named), ``eps``/``delta``
        outside (0, 1), bad ``n``, ``rng``, ``weight_eps``, ``on_failure``,
        both ``source`` and ``virtual``, or nothing fixing the width.
    ShapeError
        A ``source`` whose architecture is not the layout's (what differs named).
    LimitError
        Exact mode with ``n > 40``.
    ConstructionError
        ``on_failure="raise"`` and some instance missed its tolerance.

    Examples
    --------
    >>> import numpy as np
    >>> from slth.nets import Network, ReLU
    >>> from slth.nets.conv import Conv2d, Flatten
    >>> from slth.nets.layers import Dense
    >>> t = Network.random([Conv2d(1, 2, 3), ReLU(), Flatten(), Dense(8, 1)], rng=0,
    ...                    input_shape=(1, 4, 4))
    >>> ticket = construct(t, n=8, rng=0)
    >>> ticket.layer_map["layers.0"]
    ('layers.0', 'layers.1', 'layers.2')
    """
    t_start = time.perf_counter()
    steps = _plan(target)
    eps_f = check_eps(eps)
    delta_f = check_delta(delta)
    C_f = check_positive("C", C)
    on_failure = check_on_failure(on_failure)
    wEps = None if weight_eps is None else check_positive("weight_eps", weight_eps)
    if not isinstance(virtual, (bool, np.bool_)):
        raise InputError(f"`virtual` must be a bool; received {format_value(virtual)}")
    if virtual and source is not None:
        raise InputError("pass either `source` or `virtual=True`, not both; received both")
    L = sum(s.param for s in steps)
    if source is not None:
        units, arch, lm, pairs = _check_source(source, target, steps, n)
        width_from = "n" if n is not None else "source"
    else:
        if n is not None:
            units, width_from = _units(steps, n), "n"
        elif eps_f is not None:
            units, width_from = _theorem_units(steps, eps_f, delta_f, C_f), "eps"
        else:
            raise InputError("pass `eps` (the width then follows Pensia et al.'s formula on the "
                             "reshaped kernels), `n` (hidden channels per sign part and input "
                             "channel) or `source`; received eps=None, n=None, source=None")
        arch, lm, pairs = _layout(target, steps, units)
    if wEps is not None:
        tols: tuple[float, ...] | None = (wEps,) * L
    elif eps_f is not None:
        tols = tolerances(target, eps_f)
    else:
        tols = None
        if max(units) > EXACT_MAX_N:
            raise LimitError(f"`n` = {list(units)}: exact mode (eps=None, weight_eps=None) "
                             f"solves every instance optimally and accepts n <= {EXACT_MAX_N}; "
                             "pass `eps` or `weight_eps`")
    source_given = source is not None
    seed = None
    t0 = time.perf_counter()
    if source is None:
        seed = _seed(rng)
        source = draw_network(arch, _LAW, seed, virtual=virtual)
    t_draw = time.perf_counter() - t0

    t0 = time.perf_counter()
    kept: dict[str, np.ndarray] = {k: np.zeros(0, dtype=np.int64) for k in source.param_specs()}
    errors: dict[str, np.ndarray] = {}
    n_inst = n_failed = failed_w = 0
    worst = 0.0
    for li, pair in enumerate(pairs):
        s = pair.step
        K, b = _target_params(target, s)
        A, cA, Bw = _read_pair(source, pair, b is not None, K.shape[1])
        tap = (s.layer.padding[0] * s.layer.kernel_size[1] + s.layer.padding[1]
               if isinstance(s.layer, Conv2d) else 0)
        r = _realise_layer(A, cA, Bw, K, b, pair.n, None if tols is None else tols[li], tap)
        kept[f"{pair.first}.weight"] = r.first
        if r.first_bias is not None:
            kept[f"{pair.first}.bias"] = r.first_bias
        kept[f"{pair.second}.weight"] = r.second
        wshape = tuple(target.param_specs()[f"{s.path}.weight"])
        errors[f"{s.path}.weight"] = r.w_err.reshape(wshape)
        if r.b_err is not None:
            errors[f"{s.path}.bias"] = r.b_err
        n_inst += r.n_instances
        n_failed += r.n_failed
        failed_w += r.failed_weights
        worst = max(worst, r.worst)
    t_solve = time.perf_counter() - t0
    if n_failed and on_failure == "raise":
        tol_txt = ", ".join(f"{t:.3g}" for t in (tols or ()))
        raise ConstructionError(
            f"{NAME}: {n_failed} of {n_inst} instances missed the per-entry tolerance (per "
            f"layer: {tol_txt}), affecting {failed_w} target kernel entries/biases; worst error "
            f"{worst:.3g}. The source is too small with n={list(units)}: increase `n` or "
            "`weight_eps`, or pass on_failure='report' to get the ticket with the failures "
            "recorded.")
    params: dict[str, Any] = {
        "paper": PAPER,
        "confirmed": "abstract and slides only; the construction is the natural reading "
                     "(Pensia et al. 2020 in channels)",
        "mode": "exact" if tols is None else "eps",
        "eps": eps_f,
        "delta": delta_f,
        "weight_eps": wEps,
        "n": list(units),
        "C": C_f,
        "width_from": width_from,
        "weight_tolerance": None if tols is None else list(tols),
        "n_instances": n_inst,
        "n_failed": n_failed,
        "failed_weights": failed_w,
        "worst_error": worst,
        "seed": seed,
        "source_given": source_given,
        "source_law": None if source_given else _LAW,
        "source_kind": "virtual" if isinstance(source, VirtualNetwork) else "dense",
        "layout": "each Conv2d/Dense: 1x1 Conv2d (Dense) to 2n hidden channels per input "
                  "channel, block diagonal, split by the sign of the 1x1 weight (first n of "
                  "each sign), plus a constant block of 2n channels when biased; ReLU; the "
                  "target's k x k convolution (Dense) over the hidden channels, entries "
                  "chosen by subset sums; bias instances on the tap (padding_h, padding_w)",
        "hypothesis": _hypothesis(target, steps),
    }
    t0 = time.perf_counter()
    ticket = Ticket.from_kept(source, kept, construction=NAME, params=params, layer_map=lm,
                              errors=errors, target_fingerprint=target.fingerprint())
    if timings is not None:
        timings.update({"draw": t_draw, "solve": t_solve, "ticket": time.perf_counter() - t0,
                        "total": time.perf_counter() - t_start})
    return ticket


# ----------------------------------------------------------------------------- certifier
@dataclass(frozen=True)
class EffectiveKernel:
    """What a pair computes, recomputed from a ticket's kept entries.

    ``G(x) = P * relu(x) + N * relu(-x) + beta`` (``*`` the target's convolution).

    Attributes
    ----------
    path : str
        The target layer's path.
    P, N : numpy.ndarray
        ``(c_out, c_in, kh, kw)`` part kernels (``P ~ K``, ``N ~ -K``).
    beta : numpy.ndarray
        ``(c_out,)`` (zeros without constant channels).
    absP, absN, absbeta : numpy.ndarray
        The same sums over absolute values (rounding bounds).
    m : int
        Hidden channels of the pair.
    """

    path: str
    P: np.ndarray
    N: np.ndarray
    beta: np.ndarray
    absP: np.ndarray
    absN: np.ndarray
    absbeta: np.ndarray
    m: int


def _check_ticket(target: Any, ticket: Any, check_target: bool
                  ) -> tuple[tuple[_Step, ...], list[_Pair]]:
    steps = _plan(target)
    if not isinstance(ticket, Ticket):
        raise InputError(f"`ticket` must be a slth.Ticket; received {format_value(ticket)} of "
                         f"type {type(ticket).__name__}")
    if ticket.construction != NAME:
        raise InputError(f"`ticket` must be a {NAME} ticket (this certifier relies on its "
                         f"layout); received construction={ticket.construction!r}")
    if check_target:
        check_fingerprint(target, ticket)
    _, _, lm, pairs = _check_source(ticket.source, target, steps, None, what="`ticket.source`")
    if ticket.layer_map is not None and dict(ticket.layer_map) != lm:
        raise InputError(f"`ticket.layer_map` must be the layout's {lm}; received "
                         f"{dict(ticket.layer_map)}")
    return steps, pairs


def _effective(ticket: Ticket, pair: _Pair) -> EffectiveKernel:
    s = pair.step
    c_out, c_in, kh, kw = s.kernel_shape()
    n, m = pair.n, pair.m
    two_n = 2 * n
    main = two_n * c_in
    idx, vals = ticket.kept_entries(f"{pair.first}.weight")
    h, j = np.divmod(idx, c_in)
    if h.size and (np.any(h >= main) or np.any(j != h // two_n)):
        bad = int(np.flatnonzero((h >= main) | (j != h // two_n))[0])
        raise InputError(
            f"`ticket` keeps 1x1 weight ({int(h[bad])}, {int(j[bad])}) of source layer "
            f"`{pair.first}`, off the layout's channel block diagonal (hidden channel h reads "
            f"only input channel h // {two_n}; the constant block {main}..{m - 1} reads none)")
    a = np.zeros(m)
    a[h] = vals           # h is unique: idx is strictly increasing and one column per row
    c = np.zeros(m)
    if s.layer.bias:
        bidx, bvals = ticket.kept_entries(f"{pair.first}.bias")
        if bidx.size and np.any(bidx < main):
            raise InputError(
                f"`ticket` keeps first-layer bias {int(bidx[bidx < main][0])} of source layer "
                f"`{pair.first}`: only the constant block {main}..{m - 1} may keep a bias "
                "(a hidden channel computes relu(a x_j) or a constant, never both)")
        c[bidx] = np.maximum(bvals, 0.0)
    sidx, svals = ticket.kept_entries(f"{pair.second}.weight")
    Bw = np.zeros(c_out * m * kh * kw)
    Bw[sidx] = svals
    Bw = Bw.reshape(c_out, m, kh, kw)
    if np.any(c > 0) and isinstance(s.layer, Conv2d) and max(s.layer.padding) > 0:
        # a constant channel is a bias only through taps inside the input at every pixel
        (ph, pw), (kh_, kw_) = s.layer.padding, s.layer.kernel_size
        inside = np.zeros((kh_, kw_), dtype=bool)
        inside[ph:kh_ - ph, pw:kw_ - pw] = True
        if np.any(Bw[:, c > 0][:, :, ~inside]):
            raise InputError(f"`ticket` keeps constant-channel entries of the padded convolution "
                             f"`{pair.second}` on taps outside rows {ph}..{kh_ - 1 - ph} and "
                             f"columns {pw}..{kw_ - 1 - pw}: there zero padding makes them 0 at "
                             "border pixels, so their contribution is not a bias")
    Apos = np.zeros((m, c_in))
    Aneg = np.zeros((m, c_in))
    rows = np.arange(main)
    cols = rows // two_n
    Apos[rows, cols] = np.where(a[:main] > 0, a[:main], 0.0)
    Aneg[rows, cols] = np.where(a[:main] < 0, -a[:main], 0.0)
    P = np.einsum("ihuv,hj->ijuv", Bw, Apos)
    N = np.einsum("ihuv,hj->ijuv", Bw, Aneg)
    absB = np.abs(Bw)
    absP = np.einsum("ihuv,hj->ijuv", absB, Apos)
    absN = np.einsum("ihuv,hj->ijuv", absB, Aneg)
    beta = np.einsum("ihuv,h->i", Bw, c)
    absbeta = np.einsum("ihuv,h->i", absB, c)
    return EffectiveKernel(s.path, P, N, beta, absP, absN, absbeta, m)


def effective_kernels(target: Network, ticket: Ticket, *, check_target: bool = True
                      ) -> dict[str, EffectiveKernel]:
    """The part kernels and bias of every pair, from the kept entries (structure verified).

    Parameters
    ----------
    target : Network
    ticket : Ticket
        A :data:`NAME` ticket for ``target``.
    check_target : bool, default True
        Require the ticket's target fingerprint to be ``target``'s.

    Returns
    -------
    dict of str to EffectiveKernel
        By target layer path.

    Raises
    ------
    InputError, ShapeError
        The ticket lacks the layout's structure (what is wrong named).
    """
    _, pairs = _check_ticket(target, ticket, check_target)
    return {p.step.path: _effective(ticket, p) for p in pairs}


def _fro(M: np.ndarray) -> float:
    return _up(math.sqrt(_up(float(np.sum(M * M)), M.size + 1)), 2) if M.size else 0.0


#: Largest explicit convolution matrix (entries) whose spectral norm the certifier computes.
CONV_MATRIX_MAX = 1 << 20


def _conv_matrix(M: np.ndarray, geom: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
                 ) -> np.ndarray:
    """The convolution by ``M`` on ``H x W`` images as a ``(c_out Ho Wo, c_in H W)`` matrix.

    ``geom = ((H, W), stride, padding)``; every entry is a kernel entry or 0 (no arithmetic).
    """
    (H, W), (sh, sw), (ph, pw) = geom
    c_out, c_in, kh, kw = M.shape
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    mat = np.zeros((c_out, Ho, Wo, c_in, H, W))
    for u in range(kh):
        for v in range(kw):
            pp, qq = np.meshgrid(np.arange(Ho), np.arange(Wo), indexing="ij")
            yy, xx = sh * pp + u - ph, sw * qq + v - pw
            ok = (yy >= 0) & (yy < H) & (xx >= 0) & (xx < W)
            mat[:, pp[ok], qq[ok], :, yy[ok], xx[ok]] = M[:, :, u, v][None]
    return mat.reshape(c_out * Ho * Wo, c_in * H * W)


def _conv_norm(M: np.ndarray, stride: tuple[int, int], rho: np.ndarray | None = None,
               geom: tuple[tuple[int, int], tuple[int, int], tuple[int, int]] | None = None
               ) -> float:
    """Certified bound on the l2 operator norm of the convolution by ``M + E``, ``|E| <= rho``.

    The smallest of: ``sum_taps ||M_uv||_2`` and ``||M_flat||_2 sqrt(ceil(kh/sh)
    ceil(kw/sw))`` (module docstring), each plus the same bound of the entrywise
    perturbation through Frobenius norms; and, given the image geometry ``geom =
    ((H, W), stride, padding)`` and at most :data:`CONV_MATRIX_MAX` entries, the
    spectral norm of the explicit convolution matrix plus that of ``rho``'s (for
    ``|E| <= rho`` entrywise, ``||E||_2 <= ||rho||_2``).
    """
    c_out, c_in, kh, kw = M.shape
    mult = math.ceil(kh / stride[0]) * math.ceil(kw / stride[1])
    taps = 0.0
    for u in range(kh):
        for v in range(kw):
            taps += norm_upper(np.ascontiguousarray(M[:, :, u, v]))
    taps = _up(taps, kh * kw)
    flat = _up(norm_upper(M.reshape(c_out, -1)) * _up(math.sqrt(mult), 1), 1)
    perturbed = rho is not None and bool(np.any(rho))
    if perturbed:
        assert rho is not None
        pt = _up(sum(_fro(rho[:, :, u, v]) for u in range(kh) for v in range(kw)), kh * kw)
        pf = _up(_fro(rho) * _up(math.sqrt(mult), 1), 1)
        taps, flat = _up(taps + pt, 1), _up(flat + pf, 1)
    out = min(taps, flat)
    if geom is not None:
        (H, W), (sh, sw), (ph, pw) = geom
        Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
        if c_out * Ho * Wo * c_in * H * W <= CONV_MATRIX_MAX:
            exact = norm_upper(_conv_matrix(M, geom))
            if perturbed:
                assert rho is not None
                exact = _up(exact + norm_upper(_conv_matrix(rho, geom)), 1)
            out = min(out, exact)
    return out


def _pool_factor(layer: Any) -> float:
    kh, kw = layer.kernel_size
    sh, sw = layer.stride
    mult = math.ceil(kh / sh) * math.ceil(kw / sw)
    if isinstance(layer, MaxPool2d):
        return _up(math.sqrt(mult), 1)
    return _up(math.sqrt(mult / (kh * kw)), 2)


def certified_bound(target: Network, ticket: Ticket, *, radius: float = 1.0,
                    check_target: bool = True) -> float:
    """Rigorous upper bound on ``sup_{||x|| <= radius} ||f(x) - g(x)||_2`` for a dacunha2022 ticket.

    The structure is verified from the kept entries, the effective part
    kernels recomputed, and the error propagated with the operator-norm
    recursion of the module docstring, rounded outward (the result also
    bounds slth's float64 evaluations).

    Parameters
    ----------
    target : Network
        The target (input ball over its whole input tensor).
    ticket : Ticket
        A :data:`NAME` ticket (dense or virtual source).
    radius : float, default 1.0
        Radius of the input ball (> 0).
    check_target : bool, default True
        Require the ticket's target fingerprint to be ``target``'s.

    Returns
    -------
    float

    Raises
    ------
    InputError, ShapeError
        A target outside the construction, or a ticket without its structure
        (another construction, a source not of the layout, kept entries off the
        block diagonal, biases outside the constant block, another layer map).
    """
    R = check_radius(radius)
    steps, pairs = _check_ticket(target, ticket, check_target)
    by_path = {p.step.path: p for p in pairs}
    e = 0.0            # ticket vs target activation distance (exact arithmetic)
    r = R              # target activation norm
    phi_f = 0.0        # float forward rounding of the target
    phi_g = 0.0        # float forward rounding of the ticket
    block = (e, r, phi_f, phi_g)
    ending = False     # the previous step closed a residual body
    for s in (*steps, None):
        if ending:
            # x + F(x): the distance of the sum is at most the sum of the distances, the
            # target's norm at most ||x|| + ||F(x)||, and the float sum adds one rounding
            e_x, r_x, pf_x, pg_x = block
            phi_f = _up(pf_x + phi_f + _gamma(1) * _up(r_x + pf_x + r + phi_f, 3), 3)
            phi_g = _up(pg_x + phi_g + _gamma(1) * _up(r_x + e_x + pg_x + r + e + phi_g, 5), 3)
            e, r = _up(e_x + e), _up(r_x + r)
        if s is None:
            break
        ending = s.end
        if s.begin:
            block = (e, r, phi_f, phi_g)
        ly = s.layer
        if isinstance(ly, ReLU) or isinstance(ly, Flatten):
            continue
        if isinstance(ly, (MaxPool2d, AvgPool2d)):
            f = _pool_factor(ly)
            e, r = _up(f * e), _up(f * r)
            phi_f, phi_g = _up(f * phi_f), _up(f * phi_g)
            if isinstance(ly, AvgPool2d):
                g = _gamma(ly.kernel_size[0] * ly.kernel_size[1] + 2)
                phi_f = _up(phi_f + g * _up(r + phi_f), 3)
                phi_g = _up(phi_g + g * _up(r + e + phi_g), 4)
            continue
        pair = by_path[s.path]
        eff = _effective(ticket, pair)
        K, b = _target_params(target, s)
        c_out, c_in, kh, kw = K.shape
        stride = s.stride()
        geom = ((tuple(s.in_shape[1:]), ly.stride, ly.padding) if isinstance(ly, Conv2d)
                else ((1, 1), (1, 1), (0, 0)))
        hw = math.sqrt(s.pixels())
        m = eff.m
        g1 = 2.0 * _gamma(m + 2)
        Dp = eff.P - K
        Dn = eff.N + K
        rho_p = g1 * eff.absP + 2 * _U * np.abs(Dp)
        rho_n = g1 * eff.absN + 2 * _U * np.abs(Dn)
        delta = _conv_norm(np.concatenate([Dp, Dn], axis=1), stride,
                           np.concatenate([rho_p, rho_n], axis=1), geom)
        PN = np.concatenate([eff.P, eff.N], axis=1)
        rho_pn = np.concatenate([g1 * eff.absP, g1 * eff.absN], axis=1)
        normK = _conv_norm(K, stride, None, geom)
        lip = min(_conv_norm(PN, stride, rho_pn, geom), _up(normK + delta, 1))
        bt = np.zeros(c_out) if b is None else b
        dbeta = eff.beta - bt
        bias_err = _up(_up(_fro(dbeta) + _fro(g1 * eff.absbeta + 2 * _U * np.abs(dbeta)), 1)
                       * _up(hw, 1), 1)
        normb = _up(_fro(bt) * _up(hw, 1), 1)
        # float forward rounding: target (c_in kh kw terms), ticket (1x1 then m kh kw terms)
        T_f = c_in * kh * kw + 3
        T_g = m * kh * kw + 5
        absK = _conv_norm(np.abs(K), stride, None, geom)
        absG = _conv_norm(np.concatenate([eff.absP, eff.absN], axis=1), stride, rho_pn, geom)
        new_phi_f = _up(normK * phi_f + _gamma(T_f) * _up(absK * _up(r + phi_f) + normb, 2), 4)
        new_phi_g = _up(lip * phi_g + _gamma(T_g) * _up(
            absG * _up(r + e + phi_g, 2) + _up(_fro(eff.absbeta) * _up(hw, 1), 1), 2), 4)
        e = _up(lip * e + delta * r + bias_err, 4)
        r = _up(normK * r + normb, 2)
        phi_f, phi_g = new_phi_f, new_phi_g
    d = int(math.prod(target.output_shape))
    return _up((e + phi_f + phi_g) * (1.0 + _gamma(d + 2)), 4)
