"""Burkholz (NeurIPS 2022; ICML 2022): a depth L+1 source for a depth-L ReLU target.

R. Burkholz, "Most Activation Functions Can Win the Lottery Without Excessive
Depth" (NeurIPS 2022, arXiv:2205.02321) shows that depth ``L + 1`` suffices
(instead of the ``2L`` of Pensia et al. 2020) for a target of depth L, at
logarithmic width; R. Burkholz, "Convolutional and Residual Networks Provably
Contain Lottery Tickets" (ICML 2022, arXiv:2205.02343) carries the idea to
convolutional layers. What was confirmed from public text: the abstracts (depth
``L + 1``, logarithmic width, many activations) and the caption of the NeurIPS
paper's Figure 1 ("L0 = Lt + 1 construction ... Subset sum blocks are framed
(purple corresponding to target neurons, pink to biases). Dashed links only
exist if source network biases in layers l > 1 are initialized to zero"), and
the authors' code (github RelationalML/LT-existence, ``Utils/pruning.py``:
``parallel_weight_pruning_first``, ``parallel_weight_pruning``,
``parallel_bias_pruning``, ``parallel_constant_pruning``). The theorem numbers
and the paper's width constant could not be read (only abstracts are stored):
the width bound below (:func:`theorem_rho`) is slth's, with its constant
stated, not the paper's.

Supported targets: ReLU MLPs (a :class:`~slth.nets.base.Network` of ``Dense,
ReLU, ..., Dense`` layers, an :class:`~slth.nets.MLP` included) and sequential
ReLU CNNs (section "Convolutional targets" below: ``Conv2d`` first, then
``Conv2d``/``Dense`` layers with exactly one ``ReLU`` between consecutive ones,
``MaxPool2d``/``AvgPool2d``/``Flatten`` anywhere between them, ending with a
``Conv2d`` or ``Dense``), and residual targets of either kind (section
"Residual targets" below).

The construction
----------------
Target ``d_0 -> d_1 -> ... -> d_L``, weights ``W_l`` (``d_l x d_{l-1}``), biases
``b_l`` (optional). ``rho`` is the number of copies and of subset-sum
candidates. The source is a :class:`~slth.nets.base.Network` of ``L + 1``
Dense layers with ReLUs between them and widths
``d_0 -> m_0 -> m_1 -> ... -> m_{L-1} -> d_L``:

* ``m_0 = 2 rho (d_0 + 1)``, the univariate layer (the first target layer
  doubled as in Pensia et al.): unit ``2 rho j + k`` (``k < 2 rho``) reads
  only input ``j`` (weight ``a``); the last ``2 rho`` units are constant units
  that read nothing and keep their source bias ``c`` when ``c > 0``
  (``relu(c) = c``). This layer is the only one with a bias vector (the
  paper's "source biases in layers l > 1 are zero", realised as Dense layers
  without bias); only the constant units' biases are ever kept.
* ``m_l = rho (d_l + 1)`` for ``1 <= l < L``: unit ``rho i + s`` is copy ``s``
  of target neuron ``i`` of layer l; the last ``rho`` units are constant units
  of layer l. The last source layer has ``d_L`` outputs, one per target output
  (no copies).
* Source layer 1 (target layer 1): for every output copy ``(i, s)`` (a row
  ``r``) and input ``j``, two subset-sum instances over the first ``rho`` units
  of each sign of ``a`` in input j's block, candidates ``v_{r u} a_u``
  (``v`` the row's source weights), both with target ``W_1[i, j]``: since
  ``relu(a x) = a relu(x)`` for ``a > 0`` and ``|a| relu(-x)`` for ``a < 0``,
  the two sums give ``W relu(x) - W relu(-x) = W x``. The bias ``b_1[i]``: one
  instance over the constant units with ``c > 0``, candidates ``v c``. A
  constant unit ``t`` of layer 1: one instance over the same candidates with
  target 1, so its value is ``z_1[t] = relu(realised sum) ~ 1``.
* Source layer l >= 2 (target layer l): for every output copy ``(i, s)`` and
  input neuron ``j``, one instance over the ``rho`` edges from the copies of
  ``j``, candidates the source weights ``v``, target ``W_l[i, j]``; the bias
  ``b_l[i]`` over the edges from the constant units of layer ``l - 1``,
  candidates ``v z_{l-1}`` (the constant units' realised values, not 1: the
  recorded bias error is then the realised one); constant units of layer l
  likewise with target 1.

All instances of a layer are solved by :func:`slth.subset_sum.solve_batch`
calls over row blocks sized to the memory budget (exact mode: each instance's
optimum; eps mode: any subset within the per-weight tolerance). The source is
drawn once and never redrawn (the authors' code redraws candidates until the
tolerance is met, so its source is not fixed; here a too-small ``rho`` is
reported as failures). Kept entries: every chosen edge, the first-layer
weight of every unit some instance chose, the bias of every constant unit
some instance chose.

Convolutional targets
---------------------
The same construction with channels in the role of neurons (the public code's
scheme, RelationalML/LT-existence). Target convolutions ``K_l`` of shape
``(c_l, c_{l-1}, kh, kw)``, input ``(c_0, H, W)``. The source:

* layer ``"0"``: ``Conv2d(c_0, 2 rho (c_0 + 1), 1)`` with bias, the univariate
  layer: channel ``2 rho j + k`` reads only input channel ``j`` (a 1x1 weight
  ``a``); the last ``2 rho`` channels are constant channels (bias ``c > 0``,
  constant over the pixels); then ReLU;
* target layer ``l`` (a Conv2d): ``Conv2d(rho (c_{l-1} + 1), rho (c_l + 1),
  kernel, stride, padding, bias=False)`` (the target's kernel size, stride and
  padding; first layer ``2 rho (c_0 + 1)`` inputs; the last layer has ``c_L``
  outputs): for output copy ``(i, s)`` and every kernel entry ``K[i, j, u, v]``
  one instance over the ``rho`` edges from the copies of channel ``j`` AT TAP
  ``(u, v)`` (in layer 1 two, over the sign parts of channel j's univariate
  channels at that tap, candidates ``v a``); the bias ``b[i]`` and the constant
  channels of layer l over the edges from the constant channels at the single
  tap ``(ph, pw)`` (the padding), candidates ``v z``. At output pixel ``o`` that
  tap reads input pixel ``o * stride`` (no padding offset), inside the input
  whenever ``2 p <= k - 1`` in both dimensions, so the constant channels are
  constant at every output pixel, border included, and the biases are exact.
  With ``2 p > k - 1`` (e.g. ``kernel_size=2, padding=1``) a tap at a border
  pixel reads the zero padding: such a layer may be used only without a bias
  and with no biased layer after it (InputError otherwise, naming the layer);
  the constant channels from there on are left unpruned (empty) and their
  instances are not solved;
* a target Dense layer: ``Dense(n_src, rho (d + 1) or d_L, bias=False)`` as
  for MLPs, its input copies read where they are: after ``Flatten`` of a
  source image of ``rho (C + 1)`` channels and ``HW`` pixels, copy ``s`` of
  the target's flattened input ``c HW + p`` is source input ``(rho c + s) HW +
  p`` and constant ``t`` is read at pixel 0, ``(rho C + t) HW``;
* ReLU, MaxPool2d, AvgPool2d and Flatten are copied into the source as they are
  (each acts per channel, so copies stay copies and constant channels stay
  constant: the pools have no padding). Source layer ``k + 2`` is target
  layer ``k`` (``layer_map`` as for MLPs).

Residual targets
----------------
Burkholz's ICML 2022 paper ("Convolutional and Residual Networks Provably Contain
Lottery Tickets", abstract confirmed; its theorem numbers could not be read) and
the NeurIPS 2022 paper ("Most Activation Functions Can Win the Lottery Without
Excessive Depth", depth ``L + 1``) cover residual targets; the public code builds
no residual ticket. slth's construction, block by block: a target
:class:`~slth.nets.base.Residual` ``x -> x + F(x)`` becomes a source ``Residual``
over the source layers of ``F``'s layers (named ``"layers.<k+2>.body.<name>"`` for
the target's ``"layers.<k>.body.<name>"``), each built exactly as a later target
layer above (rho copies, rho constant channels, one subset sum per copy, input
neuron and kernel tap). The skip path is the identity on the source: a body
layer's copy ``(i, s)`` is source channel (unit) ``rho i + s`` and constant ``t``
is ``rho c + t``, the same layout as the block input's, so ``x + F(x)`` adds copy
``s`` of the skip to copy ``s`` of the body: ``|X_s + F_s - (x + f)| <= max_s |X_s
- x| + max_s |F_s - f|``. The body's last layer leaves its constant rows empty
(output 0), so the sum's constant channels are the block input's, ``z``; the
next layer's bias instances use them as before. Target rules (InputError
otherwise, naming the layer):

* a residual body holds only ``Conv2d``, ``Dense`` and ``ReLU`` layers
  (shape-keeping; no pooling, ``Flatten`` or nested ``Residual``), starts and
  ends with a ``Conv2d``/``Dense`` (a ResNet basic block ``[conv, ReLU, conv]``
  with the ReLU after the block): the output of a body must be an affine layer's
  copies, which the skip can be added to copy-wise;
* exactly one ReLU between consecutive affine layers, residual bodies counted in
  order (a ReLU before the block, one inside between its layers, one after it);
* the first target layer is the doubled one (the univariate layer reads the raw
  input, which has no copies): a target may not start with a ``Residual`` (its
  skip would have to add the raw input to rho copies), and the last target layer
  (one output unit per target output, no copies) may not lie in one;
* a Dense-bodied block right after a ``Flatten`` of an image of more than one
  pixel is refused (the flattened copies are laid out pixel by pixel, not as
  ``rho i + s``): put a Dense layer before it;
* biases in padded convolutions follow the rule above (constant channels stay
  constant only with ``padding <= (kernel_size - 1) // 2``).

A ResNet's downsampling blocks (a strided convolution and a 1x1 projection on
the skip) are not a ``Residual`` of equal shapes; a plain strided ``Conv2d``
between stages is the supported variant. MLP-shaped residual nets (``Dense``
first, ``Dense`` bodies) take the same path, with a ``Dense`` univariate layer.

Depth, measured (``docs/benchmarks/resnet20_depth.md``): the copies' errors enter
every later layer with the absolute subset sums ``A = sum |v|`` (about ``rho / 4``
per target weight whatever its size), not with ``|W|``, so at a fixed ``rho`` the
error grows geometrically with the depth, residual or not. A ResNet-20-shaped
target (kernels of l1 norm 1) at ``rho = 15`` is built in about half a minute on
2 cores but its ticket's relative output error is about 1e18; the depth-2l
construction (:mod:`slth.constructions.dacunha2022`) at ``n = 15`` gives 6e-3 on
the same target. Deep targets need ``rho`` growing with the depth.

The certificate through a block: with ``e_x``, ``r_x`` the block input's error
and radius bounds, the body's layers are propagated by the recursion below from
``(e_x, r_x)`` to ``(e_F, r_F)``, and the block's output has ``e <= e_x + e_F``
(the worst-copy inequality above, then the triangle inequality in l2) and
``||x + f|| <= r_x + r_F``; the constant channels' values add (interval radii
too). The float64 chain adds, per block, ``phi <= phi_x + phi_F + gamma_1 (r_x
+ phi_x + r_F + phi_F)`` for the rounding of the sum.

The certificate (:func:`certified_bound`)
-----------------------------------------
Nothing the ticket records is trusted: the layout is read from the source's
widths, every kept entry is checked against it (a univariate unit keeps at
most its own input's weight and no bias; constant units keep no input weight;
a constant unit of a later layer reads only constant units) and the effective
quantities are computed from the kept values. Let ``y^l`` be the target's
activations, ``H^l_{j s}`` the ticket's copy ``s`` of neuron ``j`` and
``e^l_j = max_s |H^l_{j s} - y^l_j|`` the worst copy's error. For output copy
``r = (i, s)`` of layer ``l >= 2`` with effective weight ``What_{r j} = sum of
the kept v_{r, (j, s')}``, absolute weight ``A_{r j} = sum |v_{r, (j, s')}|``
and bias ``beta_r = sum_t v_{r t} z_t``, the pre-activation error is
``sum_j (What_{r j} - W_ij) y_j + (beta_r - b_i) + sum_j sum_s' v (H_{j s'} - y_j)``,
of absolute value at most ``sum_j Delta_ij |y_j| + betabar_i + sum_j Abar_ij e_j``
with the entrywise maxima over copies ``Delta_ij = max_s |What_{(i,s) j} - W_ij|``,
``Abar_ij = max_s A_{(i,s) j}``, ``betabar_i = max_s |beta_{(i,s)} - b_i|``.
ReLU is 1-Lipschitz and the spectral norm is monotone on nonnegative
matrices, so

    ``||e^l||_2 <= ||Delta_l||_2 r_{l-1} + ||betabar_l||_2 + ||Abar_l||_2 ||e^{l-1}||_2``

with ``r_0 = R`` (the input radius) and ``r_l = ||W_l||_2 r_{l-1} + ||b_l||_2``.
For layer 1 the input is exact: with ``P``, ``N`` the two sign parts' realised
sums per copy, ``Delta_ij = max_s max(|P - W_ij|, |N - W_ij|)`` and
``|D x| <= Delta |x|`` entrywise for the copy's error matrix ``D`` (column j
is ``P - W`` or ``W - N`` by the sign of ``x_j``), so
``||e^1|| <= ||Delta_1|| R + ||betabar_1||``. The last layer has one unit per
output and the same bound is the output error. The bound covers the worst
copy of every neuron at once.

Rounding outward: every effective sum is computed in float64 and widened by
``gamma_{k+2}`` times the sum of the absolute terms (Higham, eq. 3.5),
the constant units' values carry an interval radius through the layers,
spectral norms are :func:`slth.certify.norm_upper` (Cholesky-certified), the
recursion is rounded up, and the float64 forward errors of target and ticket
(chain bound ``phi_l <= L_l phi_{l-1} + gamma_{k+2} (|||M_l|||_2 (rho_{l-1} +
phi_{l-1}) + ||b_l||)`` over their dense masked matrices) are added, so the
number also bounds the errors slth evaluates in float64.

Convolutional targets: ``y^l``, ``H^l`` and ``e^l`` are fields over channels
and pixels. For output copy ``(i, s)`` at pixel ``o`` the pre-activation
error is at most ``sum_{j,u,v} Delta[i,j,u,v] |y_{j, o + (u,v)}| + betabar_i +
sum_{j,u,v} Abar[i,j,u,v] e_{j, o + (u,v)}`` (padded positions contribute 0 on
both sides; in layer 1 the sign-split argument per tap), i.e. convolutions
with the nonnegative kernels ``Delta``, ``Abar`` of ``|y|`` and ``e`` plus a
constant field. A zero-padded strided convolution with kernel ``K`` is ``S
sum_{u,v} T_{u,v} (x) K[:, :, u, v]`` with ``T_{u,v}`` a partial shift (norm
<= 1, zero padding only drops entries) and ``S`` the stride's subsampling (a
coordinate projection), so its l2 norm is at most ``sum_{u,v} ||K[:, :, u,
v]||_2`` (``_op_upper``); the constant field has norm ``||betabar||_2
sqrt(P_l)`` over ``P_l`` output pixels. ReLU and Flatten are 1-Lipschitz and
keep the entrywise worst-copy bound. MaxPool: ``|max_w H - max_w y| <= max_w
|H - y| <= max_w e``, and a pixel lies in at most ``m = ceil(kh / sh) ceil(kw
/ sw)`` windows, so ``||maxpool(e)||_2 <= sqrt(m) ||e||_2`` (factor 1 when
kernel <= stride); likewise ``||maxpool(y)|| <= sqrt(m) ||y||`` for the radius.
AvgPool: ``|avg H - avg y| <= avg e`` and, by Cauchy-Schwarz,
``||avg(e)||^2 <= (m / (kh kw)) ||e||^2 <= ||e||^2``. With these operator
bounds the recursion is the MLP one; the float64 chain bound uses the same
convolution norms of ``|K|`` (``k`` = fan-in ``c kh kw`` + 1 terms per output),
the bias norm ``||b|| sqrt(P_l)``, the factor ``sqrt(m)`` for MaxPool (exact in
float64) and ``gamma_{kh kw + 2}`` for AvgPool's sums.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _validate
from .._memory import check_memory, format_bytes
from .._rng import RNGLike, as_generator
from ..certify import _U, _gamma, _up, check_fingerprint, check_radius, norm_upper
from ..errors import InputError, LimitError, ShapeError, format_value
from ..nets.base import Architecture, Network, Residual
from ..nets.conv import AvgPool2d, Conv2d, Flatten, MaxPool2d
from ..nets.layers import Dense, ReLU
from ..sources import VirtualNetwork
from ..subset_sum import EXACT_MAX_N, solve_batch
from ..ticket import Ticket
from ._common import check_delta, check_eps, draw_network
from ._realise import CHUNK_BYTES, failure_error

__all__ = [
    "BURKHOLZ2022_C",
    "NAME",
    "ON_FAILURE",
    "certified_bound",
    "construct",
    "source_architecture",
    "source_widths",
    "theorem_rho",
    "weight_tolerance",
]

#: Value of :attr:`slth.Ticket.construction` for tickets built here.
NAME = "burkholz2022"
#: The paper reference recorded in params.
PAPER = ("Burkholz (NeurIPS 2022, 'Most Activation Functions Can Win the Lottery Without "
         "Excessive Depth'; ICML 2022, 'Convolutional and Residual Networks Provably Contain "
         "Lottery Tickets'): depth L+1")
#: Width constant of :func:`theorem_rho` (slth's, not the paper's, which could not be read):
#: ``rho = ceil(C ln(2 / min(tau, delta / P)))``. Measured, not proved: the smallest of
#: {4, 6, 7, 9} for which eps-mode construction at eps = 0.1 met every tolerance on six seeds
#: of ``bounded_target([3, 4, 2], rng=1)`` (C = 4 missed 1-2 of the product instances of the
#: univariate layer, whose candidates ``v a`` are products of two U[-1, 1] draws).
BURKHOLZ2022_C = 6.0
#: Values of ``on_failure``: "raise" (ConstructionError), "report" or "ignore" (return the
#: ticket with the failures counted in params), "warn" (the same with a RuntimeWarning).
ON_FAILURE: tuple[str, ...] = ("raise", "report", "warn", "ignore")
#: Source law (every entry i.i.d.); the authors' code draws the first layer from U(-2, 2).
LAW = "uniform[-1,1]"


# ----------------------------------------------------------------------------- target
def _mlp_layers(target: Any) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """``[(W_l, b_l or None)]`` of a Dense/ReLU/.../Dense network; InputError otherwise."""
    if not isinstance(target, Network):
        raise InputError(f"`target` must be a slth.nets.Network of Dense and ReLU layers (an "
                         f"MLP is one); received {format_value(target)} of type "
                         f"{type(target).__name__}")
    layers = target.layers
    for k, (name, layer) in enumerate(layers):
        want = Dense if k % 2 == 0 else ReLU
        if isinstance(layer, Residual):
            raise InputError(f"`target` layer {name!r} is a Residual block: the MLP path "
                             "takes Dense/ReLU layers only (residual targets take the "
                             "layer-typed path, see the module docstring)")
        if not isinstance(layer, want):
            raise InputError(f"`target` must alternate Dense and ReLU layers, starting and "
                             f"ending with Dense (or, for a convolutional target, start "
                             f"with Conv2d: see the module docstring); layer {name!r} is "
                             f"{layer!r}, expected {want.__name__}")
    if len(layers) % 2 == 0:
        raise InputError(f"`target` must end with a Dense layer; its last layer is "
                         f"{layers[-1][1]!r}")
    out = []
    for name, layer in layers[::2]:
        w = target.params[f"layers.{name}.weight"]
        b = target.params.get(f"layers.{name}.bias") if layer.bias else None
        out.append((np.asarray(w), None if b is None else np.asarray(b)))
    return out


def _target_names(target: Network) -> list[tuple[str, str | None]]:
    """Per target Dense layer, its weight and bias parameter names."""
    out = []
    for name, layer in target.layers[::2]:
        out.append((f"layers.{name}.weight", f"layers.{name}.bias" if layer.bias else None))
    return out


def _dims(target: Network) -> tuple[int, ...]:
    ws = _mlp_layers(target)
    return (ws[0][0].shape[1], *(w.shape[0] for w, _ in ws))


def source_widths(target: Network, rho: int) -> tuple[int, ...]:
    """Widths of the source: ``(d_0, 2 rho (d_0 + 1), rho (d_1 + 1), ..., rho (d_{L-1} + 1), d_L)``.

    For a CNN target the channel (or, for Dense layers, unit) counts: ``(c_0,
    2 rho (c_0 + 1), rho (c_1 + 1), ..., c_L)``.

    Parameters
    ----------
    target : Network
        Dense/ReLU target or supported CNN target.
    rho : int
        Copies and candidates per instance, >= 1.

    Returns
    -------
    tuple of int
    """
    if _is_cnn(target):
        return _Plan(target, _validate.integer("rho", rho, low=1)).widths()
    d = _dims(target)
    rho = _validate.integer("rho", rho, low=1)
    L = len(d) - 1
    return (d[0], 2 * rho * (d[0] + 1), *(rho * (d[l] + 1) for l in range(1, L)), d[L])


def source_architecture(target: Network, rho: int) -> Architecture:
    """The source's layers: ``Dense(d_0, m_0)`` (with bias), ReLU, then Dense without bias.

    Parameters
    ----------
    target : Network
    rho : int

    Returns
    -------
    Architecture
        Layers named ``"0"``, ``"1"``, ...: parameters ``"layers.0.weight"``,
        ``"layers.0.bias"``, ``"layers.2.weight"``, ..., ``"layers.<2L>.weight"``.
    """
    if _is_cnn(target):
        return _Plan(target, _validate.integer("rho", rho, low=1)).arch
    w = source_widths(target, rho)
    layers: list[Any] = []
    for k in range(len(w) - 1):
        if k:
            layers.append(ReLU())
        layers.append(Dense(w[k], w[k + 1], bias=(k == 0)))
    return Architecture(tuple((str(i), lay) for i, lay in enumerate(layers)))


def weight_tolerance(target: Network, eps: float) -> float:
    """Per-instance tolerance for accuracy ``eps``: ``eps / (2 L max_l d_l (d_{l-1} + 1))``.

    The analogue of Pensia et al.'s ``eps / (2 l d_in d_out)`` (the bias counted as
    one more input; for a CNN target ``d_l`` is the channel count and ``d_{l-1} + 1``
    the fan-in ``c_{l-1} kh kw`` plus one). It is not a proof that the ticket meets
    ``eps``: the worst-copy error is amplified by the absolute subset sums (module
    docstring), which are known only after solving; :func:`certified_bound`
    measures the result.

    Parameters
    ----------
    target : Network
    eps : float
        In (0, 1).

    Returns
    -------
    float
    """
    eps_f = check_eps(eps, allow_none=False)
    if _is_cnn(target):
        fans = _cnn_fans(target)
        L = len(fans)
        D = max(o * (i + 1) for o, i in fans)
    else:
        d = _dims(target)
        L = len(d) - 1
        D = max(d[l] * (d[l - 1] + 1) for l in range(1, L + 1))
    return float(eps_f) / (2.0 * L * D)  # type: ignore[operator]


def theorem_rho(target: Network, eps: float, delta: float = 0.1, *,
                C: float = BURKHOLZ2022_C) -> int:
    """The width bound: ``rho = ceil(C ln(2 / min(tau, delta / P)))``.

    ``tau`` is :func:`weight_tolerance` and ``P`` the number of target parameters
    plus ``L`` (one constant chain per layer): a union bound over the instances
    with Lueker's ``n >= C ln(2 / eps)`` per instance. slth's bound, with its
    constant :data:`BURKHOLZ2022_C`; not the paper's (unread).

    Parameters
    ----------
    target : Network
    eps, delta : float
        In (0, 1).
    C : float, default :data:`BURKHOLZ2022_C`

    Returns
    -------
    int
    """
    tau = weight_tolerance(target, eps)
    delta_f = check_delta(delta)
    C_f = _validate.positive("C", C)
    depth = len(_cnn_fans(target)) if _is_cnn(target) else len(_dims(target)) - 1
    P = target.n_params + depth
    return math.ceil(C_f * math.log(2.0 / min(tau, delta_f / P)) - 1e-9)  # type: ignore


# ----------------------------------------------------------------------------- source
def _reader(source: Any) -> Callable[[str, np.ndarray], np.ndarray]:
    if isinstance(source, VirtualNetwork):
        return lambda name, flat: np.asarray(source.entries(name, flat), dtype=np.float64)
    params = source.params
    return lambda name, flat: params[name].reshape(-1)[flat]


def _check_source(source: Any, arch: Architecture, rho: int) -> Any:
    if not isinstance(source, (Network, VirtualNetwork)):
        raise InputError(f"`source` must be a slth.nets.Network or slth.sources.VirtualNetwork; "
                         f"received {format_value(source)} of type {type(source).__name__}")
    want = dict(arch.param_specs())
    got = dict(source.param_specs())
    src_arch = source.arch
    if want != got or src_arch != arch:
        diff = [f"{n}: expected {want.get(n)}, received {got.get(n)}"
                for n in sorted(set(want) | set(got)) if want.get(n) != got.get(n)]
        what = "; ".join(diff[:6]) if diff else "the layer types or names differ"
        raise ShapeError(f"`source` must have the burkholz2022 layout for rho={rho} (Dense "
                         f"layers of widths {[lay.d_in for _, lay in arch.layers[::2]]} -> "
                         f"{arch.layers[-1][1].d_out}, a bias on the first only); {what}")
    return source


def _infer_rho(target: Network, source: Any) -> int:
    d = _dims(target)
    if not isinstance(source, (Network, VirtualNetwork)):
        raise InputError(f"`source` must be a slth.nets.Network or slth.sources.VirtualNetwork; "
                         f"received {format_value(source)} of type {type(source).__name__}")
    spec = source.param_specs()
    shape = spec.get("layers.0.weight")
    if shape is None or shape[0] % (2 * (d[0] + 1)):
        raise ShapeError(f"`source` must have a first layer of 2 rho (d_0 + 1) = 2 rho * "
                         f"{d[0] + 1} units; its layers.0.weight has shape {shape}")
    return shape[0] // (2 * (d[0] + 1))


def _draw(arch: Architecture, rng: RNGLike, virtual: bool) -> tuple[Any, int]:
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, (bool, np.bool_)):
        seed = _validate.integer("rng", rng, low=0)
    elif virtual:
        raise InputError(f"`rng` must be an int seed >= 0 with virtual=True; received "
                         f"{format_value(rng)}")
    else:
        seed = int(as_generator(rng).integers(0, 2**62))
    return draw_network(arch, LAW, seed, virtual=virtual), seed


# ----------------------------------------------------------------------------- layers
class _Layer:
    """One source layer's instance groups: candidate columns and their scales."""

    def __init__(self, cols: np.ndarray, scales: np.ndarray, targets: np.ndarray,
                 const_group: int | None, n_rows: int, n_neuron_rows: int, per: int,
                 parts: int) -> None:
        self.cols = cols            # (G, rho) int64, -1 = padding
        self.scales = scales        # (G, rho) float64 (0 at padding)
        self.targets = targets      # (d_out, K) targets per neuron row and instance
        self.const_group = const_group
        self.n_rows = n_rows        # rows of the source weight
        self.n_neuron_rows = n_neuron_rows
        self.per = per              # rows per target neuron (rho, or 1 for the last layer)
        self.parts = parts          # instances per target weight (2 for layer 1, else 1)


def _first_groups(a: np.ndarray, c: np.ndarray, d0: int, rho: int) -> tuple[np.ndarray,
                                                                           np.ndarray]:
    """Groups of source layer 1: per input the positive and the negative part, then constants."""
    cols = np.full((2 * d0 + 1, rho), -1, dtype=np.int64)
    blocks = a.reshape(d0, 2 * rho)
    for j in range(d0):  # d0 small loops over inputs only (vectorised within)
        base = 2 * rho * j
        pos = np.flatnonzero(blocks[j] > 0)[:rho]
        neg = np.flatnonzero(blocks[j] < 0)[:rho]
        cols[2 * j, :pos.size] = base + pos
        cols[2 * j + 1, :neg.size] = base + neg
    const = np.flatnonzero(c > 0)[:rho]
    cols[2 * d0, :const.size] = 2 * rho * d0 + const
    full_scale = np.concatenate([a, c])
    scales = np.where(cols >= 0, full_scale[np.maximum(cols, 0)], 0.0)
    return cols, scales


def _later_groups(z: np.ndarray, d_in: int, rho: int) -> tuple[np.ndarray, np.ndarray]:
    cols = np.arange(rho * (d_in + 1), dtype=np.int64).reshape(d_in + 1, rho)
    scales = np.ones(cols.shape)
    scales[d_in] = z
    return cols, scales


def _solve_layer(read: Callable[[str, np.ndarray], np.ndarray], wname: str, lay: _Layer,
                 m_in: int, tol: float | None, chunk_bytes: int, what: str
                 ) -> dict[str, Any]:
    """Every instance of one source layer, row block by row block (one solve_batch each)."""
    rho = lay.cols.shape[1]
    d_out, K = lay.targets.shape
    const_rows = lay.n_rows - lay.n_neuron_rows
    # per row: K instances of rho candidates: values, targets, masks, errors, totals, reads
    per_row = K * (rho * (8 + 8 + 1 + 8) + 32) + 64
    rows = max(1, min(lay.n_rows, chunk_bytes // per_row))
    check_memory(rows * per_row + 8 * lay.n_rows * (K + 2),
                 what=f"burkholz2022.construct: {what} in blocks of {rows} rows "
                      f"({format_bytes(rows * per_row)} each)",
                 alternative="a smaller `rho` or a narrower target")
    w_err = np.zeros((d_out, K))
    const_err = np.zeros(const_rows)
    const_tot = np.zeros(const_rows)
    kept_parts: list[np.ndarray] = []
    used_cols = np.zeros(m_in, dtype=bool)
    n_inst = n_failed = 0
    worst = 0.0
    for r0 in range(0, lay.n_rows, rows):
        r1 = min(lay.n_rows, r0 + rows)
        r = np.arange(r0, r1)
        is_neuron = r < lay.n_neuron_rows
        rn, rc = r[is_neuron], r[~is_neuron]
        # groups per instance: neuron rows use groups 0..K-1, constant rows the const group
        g_n = np.broadcast_to(np.arange(K), (rn.size, K))
        groups = np.concatenate([g_n.reshape(-1), np.full(rc.size, lay.const_group
                                                          if lay.const_group is not None
                                                          else 0, dtype=np.int64)])
        inst_rows = np.concatenate([np.repeat(rn, K), rc])
        neuron = rn // lay.per
        tg = np.concatenate([lay.targets[neuron].reshape(-1), np.ones(rc.size)])
        cols = lay.cols[groups]                                   # (B, rho)
        valid = cols >= 0
        flat = inst_rows[:, None] * m_in + np.maximum(cols, 0)
        vals = read(wname, flat[valid])
        values = np.zeros(cols.shape)
        values[valid] = vals * lay.scales[groups][valid]
        res = solve_batch(values, tg, eps=tol)
        chosen = res.masks & valid
        kept_parts.append(flat[chosen])
        used_cols[cols[chosen]] = True
        err = res.errors
        nB = rn.size * K
        e_n = err[:nB].reshape(rn.size, K)
        np.maximum.at(w_err, neuron, e_n)
        ci = rc - lay.n_neuron_rows
        const_err[ci] = err[nB:]
        const_tot[ci] = res.totals[nB:]
        n_inst += err.size
        worst = max(worst, float(err.max()) if err.size else 0.0)
        if tol is not None:
            bad = err > tol
            n_failed += int(np.count_nonzero(bad))
    kept = np.sort(np.concatenate(kept_parts)) if kept_parts else np.zeros(0, np.int64)
    return {"w_err": w_err, "const_err": const_err, "z": np.maximum(const_tot, 0.0),
            "kept": kept, "used_cols": used_cols, "n_instances": n_inst,
            "n_failed": n_failed, "worst": worst}


def construct(
    target: Network,
    *,
    rho: int | None = None,
    eps: float | None = None,
    delta: float = 0.1,
    weight_eps: float | None = None,
    rng: RNGLike = None,
    source: Network | VirtualNetwork | None = None,
    virtual: bool = False,
    on_failure: str = "raise",
    C: float = BURKHOLZ2022_C,
    chunk_bytes: int = CHUNK_BYTES,
    timings: dict[str, float] | None = None,
) -> Ticket:
    """Build the depth L+1 strong lottery ticket of Burkholz (NeurIPS 2022; ICML 2022).

    Parameters
    ----------
    target : Network
        A ReLU MLP: ``Dense, ReLU, ..., ReLU, Dense`` (biases optional per
        layer; an :class:`slth.nets.MLP` is one), or a sequential ReLU CNN
        (module docstring, "Convolutional targets"): ``Conv2d`` first, then
        ``Conv2d``/``Dense`` layers with exactly one ``ReLU`` between
        consecutive ones and ``MaxPool2d``/``AvgPool2d``/``Flatten`` anywhere
        between them, ending with a ``Conv2d`` or ``Dense`` (e.g. ``Conv2d,
        ReLU, MaxPool2d, Conv2d, ReLU, Flatten, Dense``). Any stride and
        padding; a biased Conv2d needs ``padding <= (kernel_size - 1) // 2``
        in it and in every Conv2d before it. Residual blocks (module
        docstring, "Residual targets"): bodies of Conv2d/Dense/ReLU starting
        and ending with an affine layer, not before the first affine layer;
        MLP-shaped residual nets (Dense first) too.
    rho : int, optional
        Copies per target neuron and candidates per subset-sum instance (module
        docstring). Default: :func:`theorem_rho` from ``eps`` and ``delta``, or
        inferred from ``source``.
    eps : float, optional
        Accuracy in (0, 1): every instance is solved in eps mode to
        :func:`weight_tolerance` (unless ``weight_eps``), and ``rho`` defaults to
        :func:`theorem_rho`. None (and no ``weight_eps``): every instance is
        solved exactly (its optimum; ``rho <= 40``).
    delta : float, default 0.1
        Failure probability in (0, 1), for the width from ``eps``.
    weight_eps : float, optional
        Per-instance tolerance (> 0) overriding the one from ``eps`` (the
        authors' code uses 0.01 with rho = 15).
    rng : int, numpy.random.Generator, numpy.random.SeedSequence or None
        The source's randomness, drawn once: ``DenseSource.draw(spec,
        "uniform[-1,1]", seed)`` with ``seed = rng`` for an int (any other rng
        draws the seed, recorded in params).
    source : Network or VirtualNetwork, optional
        A source of the layout (:func:`source_architecture`) to prune instead
        (never modified); a differing one raises :class:`ShapeError` naming
        what differs.
    virtual : bool, default False
        Build the source as ``VirtualNetwork(arch, VirtualSource(spec,
        "uniform[-1,1]", rng))`` (``rng`` an int): the same bits as the dense
        draw, only the entries the instances read are computed.
    on_failure : {"raise", "report", "warn", "ignore"}, default "raise"
        In eps mode, when instances miss their tolerance: raise
        :class:`ConstructionError` naming the count and how to fix it, or return
        the ticket with ``n_failed`` and the actual errors recorded ("warn" also
        emits a RuntimeWarning).
    C : float, default :data:`BURKHOLZ2022_C`
        Constant of :func:`theorem_rho`.
    chunk_bytes : int
        Target bytes of one row block of instances.
    timings : dict, optional
        Filled with ``"draw"``, ``"solve"``, ``"ticket"``, ``"total"`` seconds.

    Returns
    -------
    Ticket
        Over the source (dense or virtual; for a CNN target the source of
        :func:`source_architecture`, with ``errors`` of the target's kernel
        shapes and params also ``constant_rows_solved``); ``layer_map`` ``{"layers.0":
        ("layers.0", "layers.2"), "layers.<2l>": ("layers.<2l+2>",), ReLUs
        alike}`` (a target Residual ``layers.<k>`` maps to the source Residual
        ``layers.<k+2>``, whose body holds the source layers of its body's
        layers under the same names); ``errors`` per target parameter: the realised worst
        ``|sum - W|`` over the output copies (and the two sign parts in layer
        1); JSON ``params``: rho, mode, eps, delta, weight_tolerance,
        n_instances, n_failed, failed_params, worst_error, constant_error,
        seed, source_given, source_law, widths, source_biases, C, paper.

    Raises
    ------
    InputError
        A target that is neither a Dense/ReLU MLP nor a supported CNN (a biased
        Conv2d after or with padding > (kernel_size - 1) // 2, not one ReLU
        between affine layers, ...), bad ``rho``/``eps``/``delta``/
        ``weight_eps``/``on_failure``/``rng``, or no width given.
    ShapeError
        A ``source`` of another layout.
    LimitError
        Exact mode with ``rho > 40``, or past the memory budget.
    ConstructionError
        ``on_failure="raise"`` and some instance missed its tolerance.
    """
    if _is_cnn(target):
        return _construct_cnn(target, rho=rho, eps=eps, delta=delta, weight_eps=weight_eps,
                              rng=rng, source=source, virtual=virtual, on_failure=on_failure,
                              C=C, chunk_bytes=chunk_bytes, timings=timings)
    t_start = time.perf_counter()
    layers = _mlp_layers(target)
    names = _target_names(target)
    eps_f, delta_f, C_f, on_failure, wtol, chunk, rho_i, width_from, tol = _check_args(
        target, rho, eps, delta, C, on_failure, virtual, weight_eps, chunk_bytes, source,
        _infer_rho)
    arch = source_architecture(target, rho_i)
    t0 = time.perf_counter()
    if source is not None:
        src = _check_source(source, arch, rho_i)
        seed = None
    else:
        src, seed = _draw(arch, rng, virtual)
    t_draw = time.perf_counter() - t0
    read = _reader(src)
    d = _dims(target)
    L = len(d) - 1
    widths = source_widths(target, rho_i)

    t0 = time.perf_counter()
    d0, m0 = d[0], widths[1]
    # the univariate layer: unit u reads input u // (2 rho); constants at the end
    n_uni = 2 * rho_i * d0
    a = read("layers.0.weight", np.arange(n_uni) * d0 + np.arange(n_uni) // (2 * rho_i))
    c = read("layers.0.bias", np.arange(n_uni, m0))
    kept: dict[str, np.ndarray] = {}
    errors: dict[str, np.ndarray] = {}
    n_inst = n_failed = failed = 0
    worst = 0.0
    const_worst = 0.0
    z = None
    for l in range(1, L + 1):
        W, b = layers[l - 1]
        last = l == L
        n_neuron_rows = d[l] if last else rho_i * d[l]
        n_rows = widths[l + 1]
        has_bias = b is not None
        if l == 1:
            cols, scales = _first_groups(a, c, d0, rho_i)
            parts = 2
            wt = np.repeat(W, 2, axis=1)
        else:
            cols, scales = _later_groups(z, d[l - 1], rho_i)  # type: ignore[arg-type]
            parts = 1
            wt = W
        const_group = cols.shape[0] - 1
        targets = np.concatenate([wt, b[:, None]], axis=1) if has_bias else wt
        lay = _Layer(cols, scales, np.ascontiguousarray(targets, dtype=np.float64),
                     const_group, n_rows, n_neuron_rows, 1 if last else rho_i, parts)
        # without a bias, neuron rows solve only their weight groups (K = d_in * parts)
        out = _solve_layer(read, f"layers.{2 * l}.weight", lay, widths[l], tol, chunk,
                           f"target layer {l - 1} ({d[l - 1]} -> {d[l]})")
        kept[f"layers.{2 * l}.weight"] = out["kept"]
        we = out["w_err"]
        wname, bname = names[l - 1]
        k_w = d[l - 1] * parts
        errors[wname] = we[:, :k_w].reshape(d[l], d[l - 1], parts).max(axis=2)
        if bname is not None:
            errors[bname] = we[:, k_w]
        if l == 1:
            used = out["used_cols"]
            uu = np.flatnonzero(used[:n_uni])
            kept["layers.0.weight"] = uu * d0 + uu // (2 * rho_i)
            kept["layers.0.bias"] = n_uni + np.flatnonzero(used[n_uni:])
        n_inst += out["n_instances"]
        n_failed += out["n_failed"]
        if tol is not None:  # target parameters (and constant units) with a missed instance
            failed += int(np.count_nonzero(errors[wname] > tol))
            failed += 0 if bname is None else int(np.count_nonzero(errors[bname] > tol))
            failed += int(np.count_nonzero(out["const_err"] > tol))
        worst = max(worst, out["worst"])
        if out["const_err"].size:
            const_worst = max(const_worst, float(out["const_err"].max()))
        z = out["z"]
    return _finish(
        target, src, kept, errors, t0, t_draw, t_start, timings, n_failed=n_failed,
        n_inst=n_inst, failed=failed, worst=worst, const_worst=const_worst, tol=tol, L=L,
        rho_i=rho_i, eps_f=eps_f, delta_f=delta_f, C_f=C_f, on_failure=on_failure,
        width_from=width_from, wtol=wtol, seed=seed, source=source, widths=list(widths),
        source_biases="layers.0.bias only (constant units of the univariate layer; later "
                      "source layers have no bias)",
        layout="univariate layer of 2 rho units per input plus 2 rho constant units; rho "
               "copies and rho constant units per hidden target layer",
        extra={}, stacklevel=3)


def _check_args(target: Any, rho: Any, eps: Any, delta: Any, C: Any, on_failure: Any,
                virtual: Any, weight_eps: Any, chunk_bytes: Any, source: Any,
                infer_rho: Any) -> tuple[Any, ...]:
    """The checked arguments, the width (and where it came from) and the tolerance.

    Shared by the MLP and the CNN paths; ``infer_rho(target, source)`` reads rho off a
    given source.
    """
    eps_f = check_eps(eps)
    delta_f = check_delta(delta)
    C_f = _validate.positive("C", C)
    on_failure = str(_validate.one_of("on_failure", on_failure, ON_FAILURE))
    _validate.boolean("virtual", virtual)
    wtol = _validate.positive("weight_eps", weight_eps, allow_none=True)
    chunk = _validate.integer("chunk_bytes", chunk_bytes, low=1)
    if rho is not None:
        rho_i = _validate.integer("rho", rho, low=1)
        width_from = "rho"
    elif source is not None:
        rho_i = infer_rho(target, source)
        width_from = "source"
    elif eps_f is not None:
        rho_i = theorem_rho(target, eps_f, delta_f, C=C_f)
        width_from = "eps"
    else:
        raise InputError("`rho` must be given (an int >= 1) unless `eps` or `source` is; "
                         "received rho=None, eps=None, source=None")
    tol = wtol if wtol is not None else (None if eps_f is None
                                         else weight_tolerance(target, eps_f))
    if tol is None and rho_i > EXACT_MAX_N:
        raise LimitError(f"`rho` = {rho_i}: exact mode (eps=None, weight_eps=None) solves every "
                         f"instance optimally and accepts rho <= {EXACT_MAX_N}; pass `eps` or "
                         "`weight_eps`")
    return eps_f, delta_f, C_f, on_failure, wtol, chunk, rho_i, width_from, tol


def _finish(target: Any, src: Any, kept: dict[str, np.ndarray], errors: dict[str, np.ndarray],
            t0: float, t_draw: float, t_start: float, timings: dict[str, float] | None, *,
            n_failed: int, n_inst: int, failed: int, worst: float, const_worst: float,
            tol: float | None, L: int, rho_i: int, eps_f: float | None, delta_f: float,
            C_f: float, on_failure: str, width_from: str, wtol: float | None, seed: Any,
            source: Any, widths: list[int], source_biases: str, layout: str,
            extra: dict[str, Any], stacklevel: int) -> Ticket:
    """The failure report, the params and the ticket, for the MLP and the CNN paths alike."""
    t_solve = time.perf_counter() - t0
    if n_failed:
        hint = (f"increase `rho` (theorem_rho gives {theorem_rho(target, eps_f, delta_f, C=C_f)}"
                f" at eps={eps_f:g})" if eps_f is not None else "increase `rho` or `weight_eps`")
        if on_failure == "raise":
            raise failure_error(NAME, n_failed, n_inst, failed, worst, [tol] * L, "rho",
                                [rho_i], hint)
        if on_failure == "warn":
            warnings.warn(f"{NAME}: {n_failed} of {n_inst} instances missed the tolerance "
                          f"{tol:.3g} (worst error {worst:.3g}); {hint}", RuntimeWarning,
                          stacklevel=stacklevel)
    t0 = time.perf_counter()
    params = {
        "paper": PAPER, "rho": rho_i, "width_from": width_from,
        "mode": "exact" if tol is None else "eps", "eps": eps_f, "delta": delta_f, "C": C_f,
        "weight_eps": wtol, "weight_tolerance": tol, "n_instances": n_inst,
        "n_failed": n_failed, "failed_params": failed, "worst_error": worst,
        "constant_error": const_worst, "seed": seed, "source_given": source is not None,
        "source_law": None if source is not None else LAW,
        "virtual": isinstance(src, VirtualNetwork), "widths": widths,
        "source_biases": source_biases, "layout": layout, **extra,
    }
    layer_map = {f"layers.{name}": (("layers.0", "layers.2") if k == 0
                                    else (f"layers.{k + 2}",))
                 for k, (name, _) in enumerate(target.layers)}
    ticket = Ticket.from_kept(src, kept, construction=NAME, params=params,
                              layer_map=layer_map, errors=errors,
                              target_fingerprint=target.fingerprint())
    if timings is not None:
        timings.update({"draw": t_draw, "solve": t_solve,
                        "ticket": time.perf_counter() - t0,
                        "total": time.perf_counter() - t_start})
    return ticket


# ----------------------------------------------------------------------------- certificate
def _univariate_layer(ticket: Ticket, m0: int, d0: int, rho: int, n_uni: int, *, conv: bool
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The doubled first layer of an L+1 ticket, checked against the layout.

    Returns ``(W0, b0, a, z)``: the masked weight ``(m0, d0)`` and bias, the
    univariate units' weights ``a`` (unit order) and the constant units'
    values ``z = relu(b0[n_uni:])`` (exact). Raises InputError, naming the
    entry, when a univariate unit (channel, ``conv``) reads another input or
    keeps a bias.
    """
    what, index = ("channel", ", 0, 0") if conv else ("unit", "")
    W0 = _dense_masked(ticket, "layers.0.weight", (m0, d0))
    b0 = _dense_masked(ticket, "layers.0.bias", (m0,))
    own = np.zeros((m0, d0), dtype=bool)
    own[np.arange(n_uni), np.arange(n_uni) // (2 * rho)] = True
    stray = np.flatnonzero((W0 != 0) & ~own)
    if stray.size:
        u, j = divmod(int(stray[0]), d0)
        raise InputError(f"`ticket` keeps layers.0.weight[{u}, {j}{index}] outside the "
                         f"burkholz2022 layout (a univariate {what} reads only its own input"
                         f"{' channel' if conv else ''}; constant {what}s read none)")
    if np.any(b0[:n_uni] != 0):
        u = int(np.flatnonzero(b0[:n_uni])[0])
        raise InputError(f"`ticket` keeps layers.0.bias[{u}] of a univariate {what}; only the "
                         f"constant {what}s' biases belong to the layout")
    return W0, b0, W0[own], np.maximum(b0[n_uni:], 0.0)


def _dense_masked(ticket: Ticket, name: str, shape: tuple[int, ...]) -> np.ndarray:
    idx, vals = ticket.kept_entries(name)
    M = np.zeros(math.prod(shape))
    M[idx] = vals
    return M.reshape(shape)


def _margin(abs_terms: np.ndarray, k: int) -> np.ndarray:
    """Entrywise bound on |computed - exact| of sums whose absolute terms sum to ``abs_terms``."""
    return abs_terms * (_gamma(k + 2) * (1.0 + 4 * _U))


def _chain_rounding(mats: list[np.ndarray], biases: list[np.ndarray | None],
                    radius: float) -> float:
    """Bound on the float64 forward error of a Dense/ReLU chain over the ball (module doc)."""
    r = radius
    phi = 0.0
    for M, b in zip(mats, biases, strict=True):
        absn = norm_upper(np.abs(M))
        bn = 0.0 if b is None else norm_upper(np.abs(b)[:, None])
        k = M.shape[1] + 1
        phi = _up(absn * phi + _gamma(k + 2) * (absn * (r + phi) + bn), 6)
        r = _up(absn * r + bn, 3)
    return phi


def certified_bound(target: Network, ticket: Ticket, *, radius: float = 1.0,
                    check_target: bool = True) -> float:
    """A rigorous upper bound on ``sup_{||x||_2 <= radius} ||f(x) - g(x)||_2`` (module doc).

    Parameters
    ----------
    target : Network
        The Dense/ReLU target f, or a supported CNN target (module docstring).
    ticket : Ticket
        A burkholz2022 ticket g (its source of the layout; dense or virtual).
    radius : float, default 1.0
        Input-ball radius, > 0.
    check_target : bool, default True
        Raise when the ticket records another target's fingerprint.

    Returns
    -------
    float
        Also bounds every float64 evaluation of the error at a point of the ball.

    Raises
    ------
    InputError
        Not a Dense/ReLU target, not a Ticket, another target's ticket, or kept
        entries outside the layout (naming the parameter and the entry).
    ShapeError
        A source whose widths are not the layout's for the target.
    """
    cnn = _is_cnn(target)
    layers = [] if cnn else _mlp_layers(target)
    if not isinstance(ticket, Ticket):
        raise InputError(f"`ticket` must be a slth.Ticket; received {format_value(ticket)} of "
                         f"type {type(ticket).__name__}")
    R = check_radius(radius)
    _validate.boolean("check_target", check_target)
    if check_target:
        check_fingerprint(target, ticket)
    if cnn:
        return _certified_cnn(target, ticket, R)
    rho = _infer_rho(target, ticket.source)
    arch = source_architecture(target, rho)
    _check_source(ticket.source, arch, rho)
    d = _dims(target)
    L = len(d) - 1
    widths = source_widths(target, rho)
    d0, m0 = d[0], widths[1]
    n_uni = 2 * rho * d0
    # ---- the univariate layer: one weight per unit, on its own input; biases on constants
    W0, b0, a, z = _univariate_layer(ticket, m0, d0, rho, n_uni, conv=False)
    zeta = np.zeros_like(z)            # interval radius of the constants
    mats: list[np.ndarray] = [W0]
    biases: list[np.ndarray | None] = [b0]
    e = 0.0
    r = R
    for l in range(1, L + 1):
        W, b = layers[l - 1]
        last = l == L
        m_in, m_out = widths[l], widths[l + 1]
        M = _dense_masked(ticket, f"layers.{2 * l}.weight", (m_out, m_in))
        mats.append(M)
        biases.append(None)
        n_rows = d[l] if last else rho * d[l]
        per = 1 if last else rho
        d_in = d[l - 1]
        n_copy_cols = n_uni if l == 1 else rho * d_in
        Mn, Mc = M[:n_rows], M[n_rows:]
        if Mc.size and np.any(Mc[:, :n_copy_cols] != 0):
            t, col = np.argwhere(Mc[:, :n_copy_cols] != 0)[0]
            raise InputError(f"`ticket` keeps layers.{2 * l}.weight[{n_rows + t}, {col}]: a "
                             "constant unit reading a copy unit, outside the burkholz2022 "
                             "layout")
        # bias and constants from the previous constants (value z, radius zeta)
        V = Mn[:, n_copy_cols:]
        beta = V @ z
        beta_m = _margin(np.abs(V) @ z, z.size) + np.abs(V) @ zeta
        if not last:
            Vc = Mc[:, n_copy_cols:]
            pre = Vc @ z
            pre_m = _margin(np.abs(Vc) @ z, z.size) + np.abs(Vc) @ zeta
            z, zeta = np.maximum(pre, 0.0), pre_m
        bt = np.zeros(d[l]) if b is None else b
        bbar = (np.abs(beta - np.repeat(bt, per)) * (1 + 2 * _U) + beta_m).reshape(
            d[l], per).max(axis=1)
        if l == 1:
            blocks = Mn[:, :n_uni].reshape(n_rows, d0, 2 * rho)
            av = a.reshape(d0, 2 * rho)
            pos, neg = np.where(av > 0, av, 0.0), np.where(av < 0, av, 0.0)
            P = np.einsum("rjk,jk->rj", blocks, pos)
            N = np.einsum("rjk,jk->rj", blocks, neg)
            Pm = _margin(np.einsum("rjk,jk->rj", np.abs(blocks), np.abs(pos)), 2 * rho)
            Nm = _margin(np.einsum("rjk,jk->rj", np.abs(blocks), np.abs(neg)), 2 * rho)
            Wr = np.repeat(W, per, axis=0)
            Dr = np.maximum(np.abs(P - Wr) * (1 + 2 * _U) + Pm,
                            np.abs(N - Wr) * (1 + 2 * _U) + Nm)
            Delta = Dr.reshape(d[l], per, d0).max(axis=1)
            e = _up(norm_upper(Delta) * R + norm_upper(bbar[:, None]), 4)
        else:
            blocks = Mn[:, :n_copy_cols].reshape(n_rows, d_in, rho)
            What = blocks.sum(axis=2)
            A = np.abs(blocks).sum(axis=2)
            Wr = np.repeat(W, per, axis=0)
            Dr = np.abs(What - Wr) * (1 + 2 * _U) + _margin(A, rho)
            Delta = Dr.reshape(d[l], per, d_in).max(axis=1)
            Abar = (A * (1 + _gamma(rho + 1))).reshape(d[l], per, d_in).max(axis=1)
            e = _up(norm_upper(Delta) * r + norm_upper(bbar[:, None])
                    + norm_upper(Abar) * e, 6)
        r = _up(norm_upper(W) * r + (0.0 if b is None else norm_upper(np.abs(b)[:, None])), 3)
    # float64 forward errors of target and ticket, and the final difference and norm
    tmats = [w for w, _ in layers]
    tb = [bb for _, bb in layers]
    phi_f = _chain_rounding(tmats, tb, R)
    phi_g = _chain_rounding(mats, biases, R)
    return _up((e + phi_f + phi_g) * (1.0 + _gamma(d[L] + 2)), 4)


# ----------------------------------------------------------------------------- CNN targets
_PARAM_FREE = (ReLU, MaxPool2d, AvgPool2d, Flatten)


def _is_cnn(target: Any) -> bool:
    """A Network with a top-level Conv2d or Residual layer (the layer-typed path)."""
    return isinstance(target, Network) and any(isinstance(lay, (Conv2d, Residual))
                                               for _, lay in target.layers)


class _Stage:
    """One target affine layer (Conv2d or Dense) and the parameter-free layers after it."""

    def __init__(self, index: int, name: str, layer: Any, W: np.ndarray,
                 b: np.ndarray | None, in_shape: tuple[int, ...],
                 out_shape: tuple[int, ...], body: str | None = None,
                 res_begin: bool = False, res_end: bool = False) -> None:
        self.index = index
        self.name = name
        # target and source layer paths; a stage inside a Residual at top-level index k
        # (name t) with body name ``body`` is "layers.t.body.<body>" -> "layers.<k+2>.body.<body>"
        self.body = body
        self.tpath = f"layers.{name}" if body is None else f"layers.{name}.body.{body}"
        self.src_name = str(index + 2) if body is None else body
        self.spath = (f"layers.{index + 2}" if body is None
                      else f"layers.{index + 2}.body.{body}")
        self.res_begin = res_begin   # first affine layer of a residual body
        self.res_end = res_end       # last affine layer of a residual body
        self.layer = layer
        self.W = W
        self.b = b
        self.in_shape = in_shape
        self.out_shape = out_shape
        # (source name, target path, layer, output shape) of the parameter-free layers after it
        self.after: list[tuple[str, str, Any, tuple[int, ...]]] = []
        self.conv = isinstance(layer, Conv2d)
        # kernel tap of the bias / constant instances: (ph, pw) stays inside the input
        # at every output pixel iff 2 p <= k - 1 in both dimensions (module docstring)
        if self.conv:
            (kh, kw), (ph, pw) = layer.kernel_size, layer.padding
            self.kernel = (kh, kw)
            self.tap = (ph, pw)
            self.const_safe = 2 * ph <= kh - 1 and 2 * pw <= kw - 1
        else:
            self.kernel = (1, 1)
            self.tap = (0, 0)
            self.const_safe = True

    @property
    def fan_in(self) -> int:
        return int(self.W[0].size)

    @property
    def n_out(self) -> int:
        return int(self.W.shape[0])

    @property
    def n_pixels(self) -> int:
        return int(math.prod(self.out_shape[1:])) if self.conv else 1


def _cnn_stages(target: Network) -> list[_Stage]:
    """The affine stages of a CNN or residual target, residual bodies flattened in order.

    InputError for what this construction cannot do (module docstring, "Residual
    targets", for the residual rules).
    """
    shape = tuple(int(s) for s in target.input_shape)  # type: ignore[union-attr]
    stages: list[_Stage] = []
    spread = False  # a Flatten of an image of > 1 pixel since the last affine layer

    def affine(k: int, name: str, layer: Any, path: str, key: str, body: str | None,
               begin: bool, end: bool) -> None:
        nonlocal shape, spread
        if stages:
            n_relu = sum(isinstance(a[2], ReLU) for a in stages[-1].after)
            if n_relu != 1:
                raise InputError(
                    f"`target` must have exactly one ReLU between consecutive Conv2d/"
                    f"Dense layers (pooling and Flatten may sit beside it; residual blocks "
                    f"counted in order); before layer {path!r} ({layer!r}) there are {n_relu}")
        w = np.asarray(target.params[f"{key}.weight"], dtype=np.float64)
        bb = target.params.get(f"{key}.bias") if layer.bias else None
        out = tuple(int(v) for v in layer.output_shape(shape))
        stages.append(_Stage(k, name, layer, w,
                             None if bb is None else np.asarray(bb, dtype=np.float64),
                             shape, out, body, begin, end))
        shape = out
        spread = False

    for k, (name, layer) in enumerate(target.layers):
        path = f"layers.{name}"
        if isinstance(layer, Residual):
            body = list(layer.body)
            if not stages:
                raise InputError(
                    f"`target` layer {path!r} is a Residual block before the first Conv2d/"
                    "Dense layer: burkholz2022 doubles the first target layer (the "
                    "univariate layer reads the raw input, with no copies), so the skip "
                    "path cannot be added copy-wise to the body's output; start the target "
                    "with a Conv2d or Dense layer outside any Residual")
            if spread:
                raise InputError(
                    f"`target` layer {path!r} is a Residual block right after a Flatten of an "
                    "image of more than one pixel: the source lays the flattened copies out "
                    "pixel by pixel, not as the rho copies of each unit a Dense body "
                    "outputs, so the skip cannot be added copy-wise; put a Dense layer "
                    "between the Flatten and the block")
            for bname, blay in body:
                if not isinstance(blay, (Conv2d, Dense, ReLU)):
                    raise InputError(
                        f"`target` layer {path}.body.{bname} is {blay!r}: a residual body "
                        "may hold only Conv2d, Dense and ReLU layers (shape-keeping, no "
                        "pooling, Flatten or nested Residual)")
            ends = [i for i, (_, bl) in enumerate(body) if isinstance(bl, (Conv2d, Dense))]
            if not ends or ends[0] != 0 or ends[-1] != len(body) - 1:
                raise InputError(
                    f"`target` layer {path!r} is a Residual whose body {layer.body!r} does not "
                    "start and end with a Conv2d/Dense layer: the body's output must be an "
                    "affine layer's rho copies, which the source adds copy-wise to the skip "
                    "path (put the ReLU after the block, as in a ResNet basic block)")
            for i, (bname, blay) in enumerate(body):
                bpath = f"{path}.body.{bname}"
                if isinstance(blay, (Conv2d, Dense)):
                    affine(k, name, blay, bpath, bpath, bname, i == 0, i == len(body) - 1)
                else:
                    stages[-1].after.append((bname, bpath, blay, shape))
        elif isinstance(layer, (Conv2d, Dense)):
            affine(k, name, layer, path, path, None, False, False)
        elif isinstance(layer, _PARAM_FREE):
            if not stages:
                raise InputError(f"`target` layer {path!r} is {layer!r}: the target must "
                                 "start with a Conv2d or Dense layer")
            if isinstance(layer, Flatten) and int(math.prod(shape[1:])) > 1:
                spread = True
            shape = tuple(int(s) for s in layer.output_shape(shape))
            stages[-1].after.append((str(k + 2), path, layer, shape))
        else:
            raise InputError(f"`target` layer {path!r} is {layer!r}: burkholz2022 supports "
                             "Conv2d, Dense, ReLU, MaxPool2d, AvgPool2d, Flatten and Residual "
                             "layers")
    if stages[-1].after or stages[-1].body is not None:
        what = (f"{stages[-1].after[-1][1]!r} is {stages[-1].after[-1][2]!r}"
                if stages[-1].after else f"{target.layers[-1][0]!r} is a Residual block")
        raise InputError(f"`target` must end with a Conv2d or Dense layer outside any "
                         f"Residual (the last source layer has one unit per output, no "
                         f"copies); its last layer {what}")
    # biases read the constant channels: they must be constant at every pixel
    ok = True  # the constants of the previous source layer are exact everywhere
    for st in stages:
        if st.b is not None and not (ok and st.const_safe):
            if not st.const_safe:
                why = (f"its padding {st.layer.padding} exceeds (kernel_size - 1) // 2 for "
                       f"kernel_size {st.kernel}")
            else:
                why = "an earlier Conv2d has padding > (kernel_size - 1) // 2"
            raise InputError(
                f"`target` layer {st.name!r} ({st.layer!r}) has a bias, but {why}: the "
                "source's constant channels (which carry the biases) would be zeroed at "
                "border pixels by the padding, so the bias would be wrong there; use "
                "padding <= (kernel_size - 1) // 2 in every Conv2d up to this layer, or no "
                "bias")
        ok = ok and st.const_safe
    return stages


class _Plan:
    """The source layout of a CNN target for one rho (module docstring)."""

    def __init__(self, target: Network, rho: int) -> None:
        st = _cnn_stages(target)
        self.stages = st
        self.rho = rho
        L = len(st)
        self.L = L
        c0 = int(target.input_shape[0])  # type: ignore[index]
        self.c0 = c0
        self.m0 = 2 * rho * (c0 + 1)
        self.n_uni = 2 * rho * c0
        first: Any = (Conv2d(c0, self.m0, 1, bias=True) if st[0].conv
                      else Dense(c0, self.m0, bias=True))
        layers: list[tuple[str, Any]] = [("0", first), ("1", ReLU())]
        top = layers            # where the next source layer goes (a residual body or top)
        saved: Any = None       # the layout at the start of the open residual body
        # per stage: source in size, rows, neuron rows, per, copy offsets, const offsets
        self.rows: list[int] = []
        self.neuron_rows: list[int] = []
        self.per: list[int] = []
        self.row_size: list[int] = []
        self.copy_off: list[np.ndarray] = []   # (fan_in, n) within-row offsets of the copies
        self.const_off: list[np.ndarray | None] = []  # (n,) offsets of the constant inputs
        self.const_ok: list[bool] = []          # constant rows of this stage are solved
        ok = True
        layout: Any = None   # ("img", C) or ("vec", copy_idx (n, rho), const_idx, n_src)
        for l, s in enumerate(st):
            last = l == L - 1
            kh, kw = s.kernel
            taps = kh * kw
            ok = ok and s.const_safe
            if l == 0:
                n_in_src, per_in, n_c = self.m0, 2 * rho, c0
                base = np.arange(n_c)[:, None] * per_in + np.arange(per_in)
                cbase = self.n_uni + np.arange(2 * rho)
            elif layout[0] == "img":
                n_c = layout[1]
                n_in_src = rho * (n_c + 1)
                base = np.arange(n_c)[:, None] * rho + np.arange(rho)
                cbase = rho * n_c + np.arange(rho)
            else:
                base, cbase, n_in_src = layout[1], layout[2], layout[3]
            if s.conv:
                tap = np.arange(taps)
                # offset of (channel ch, tap (u, v)) in a row of (I, kh, kw): ch * taps + tap
                off = (base[:, None, :] * taps + tap[None, :, None]).reshape(-1, base.shape[1])
                coff = cbase * taps + (s.tap[0] * kw + s.tap[1]) if ok else None
                row = n_in_src * taps
            else:
                off, coff, row = base, cbase if ok else None, n_in_src
            n_neuron = s.n_out if last else rho * s.n_out
            n_rows = s.n_out if last else rho * (s.n_out + 1)
            self.rows.append(n_rows)
            self.neuron_rows.append(n_neuron)
            self.per.append(1 if last else rho)
            self.row_size.append(row)
            self.copy_off.append(off.astype(np.int64))
            self.const_off.append(None if coff is None else np.asarray(coff, dtype=np.int64))
            # a residual body's last layer keeps no constant rows: the skip path carries the
            # block input's constant channels, the sum keeps their values
            self.const_ok.append(ok and not last and not s.res_end)
            if s.res_begin:
                top, saved = [], layout
            if s.conv:
                top.append((s.src_name, Conv2d(n_in_src, n_rows, s.kernel,
                                               stride=s.layer.stride,
                                               padding=s.layer.padding, bias=False)))
                layout = ("img", s.n_out)
            else:
                top.append((s.src_name, Dense(n_in_src, n_rows, bias=False)))
                d = s.n_out
                layout = ("vec", np.arange(d)[:, None] * rho + np.arange(rho),
                          rho * d + np.arange(rho), rho * (d + 1))
            if s.res_end:
                # shape-keeping body over the copy layout: the skip adds copy (j, s) to copy
                # (j, s) and constant t to constant t (checked: the layouts agree)
                same = (saved[0] == layout[0] and (
                    saved[1] == layout[1] if layout[0] == "img" else
                    saved[3] == layout[3] and np.array_equal(saved[1], layout[1])
                    and np.array_equal(saved[2], layout[2])))
                if not same:  # unreachable for targets _cnn_stages accepts
                    raise InputError(f"`target` residual block {s.tpath.rsplit('.body.')[0]!r}:"
                                     " its body's source layout differs from its input's")
                layers.append((str(s.index + 2), Residual(tuple(top))))
                top = layers
            for src_name, _path, lay, shape in s.after:
                top.append((src_name, lay))
                if isinstance(lay, Flatten) and layout[0] == "img":
                    C = layout[1]
                    hw = int(math.prod(shape)) // C
                    ch = np.arange(C)[:, None] * rho + np.arange(rho)       # (C, rho)
                    idx = (ch[:, None, :] * hw + np.arange(hw)[None, :, None]).reshape(-1, rho)
                    layout = ("vec", idx, (rho * C + np.arange(rho)) * hw, rho * (C + 1) * hw)
        self.arch = Architecture(tuple(layers), input_shape=tuple(target.input_shape))

    def widths(self) -> tuple[int, ...]:
        return (self.c0, self.m0, *self.rows)


def _cnn_infer_rho(target: Network, source: Any) -> int:
    c0 = int(target.input_shape[0])  # type: ignore[index]
    if not isinstance(source, (Network, VirtualNetwork)):
        raise InputError(f"`source` must be a slth.nets.Network or slth.sources.VirtualNetwork; "
                         f"received {format_value(source)} of type {type(source).__name__}")
    shape = source.param_specs().get("layers.0.weight")
    if shape is None or shape[0] % (2 * (c0 + 1)) or shape[0] == 0:
        raise ShapeError(f"`source` must have a first (1x1 convolution) layer of 2 rho (c_0 + "
                         f"1) = 2 rho * {c0 + 1} channels; its layers.0.weight has shape {shape}")
    return int(shape[0]) // (2 * (c0 + 1))


def _cnn_check_source(source: Any, arch: Architecture, rho: int) -> Any:
    if not isinstance(source, (Network, VirtualNetwork)):
        raise InputError(f"`source` must be a slth.nets.Network or slth.sources.VirtualNetwork; "
                         f"received {format_value(source)} of type {type(source).__name__}")
    want = dict(arch.param_specs())
    got = dict(source.param_specs())
    if want != got or source.arch != arch:
        diff = [f"{n}: expected {want.get(n)}, received {got.get(n)}"
                for n in sorted(set(want) | set(got)) if want.get(n) != got.get(n)]
        what = "; ".join(diff[:6]) if diff else "the layer types, fields or names differ"
        raise ShapeError(f"`source` must have the burkholz2022 convolutional layout for "
                         f"rho={rho} (source_architecture(target, {rho})); {what}")
    return source


def _pool_factor(layer: Any) -> float:
    """l2 Lipschitz factor of a parameter-free layer (module docstring)."""
    if isinstance(layer, MaxPool2d):
        (kh, kw), (sh, sw) = layer.kernel_size, layer.stride
        return math.sqrt(math.ceil(kh / sh) * math.ceil(kw / sw))
    return 1.0  # ReLU, Flatten, AvgPool2d


def _op_upper(K: np.ndarray) -> float:
    """Upper bound on the l2 operator norm of a zero-padded, strided convolution (or Dense)."""
    if K.ndim == 2:
        return norm_upper(K)
    kh, kw = K.shape[2:]
    total = 0.0
    for u in range(kh):
        for v in range(kw):
            total += norm_upper(np.ascontiguousarray(K[:, :, u, v]))
    return _up(total, kh * kw)


def _cnn_fans(target: Network) -> list[tuple[int, int]]:
    return [(s.n_out, s.fan_in) for s in _cnn_stages(target)]


def _construct_cnn(target: Network, *, rho: int | None, eps: float | None, delta: float,
                   weight_eps: float | None, rng: RNGLike, source: Any, virtual: bool,
                   on_failure: str, C: float, chunk_bytes: int,
                   timings: dict[str, float] | None) -> Ticket:
    t_start = time.perf_counter()
    stages = _cnn_stages(target)
    eps_f, delta_f, C_f, on_failure, wtol, chunk, rho_i, width_from, tol = _check_args(
        target, rho, eps, delta, C, on_failure, virtual, weight_eps, chunk_bytes, source,
        _cnn_infer_rho)
    plan = _Plan(target, rho_i)
    arch = plan.arch
    t0 = time.perf_counter()
    if source is not None:
        src = _cnn_check_source(source, arch, rho_i)
        seed = None
    else:
        src, seed = _draw(arch, rng, virtual)
    t_draw = time.perf_counter() - t0
    read = _reader(src)
    t0 = time.perf_counter()
    c0, m0, n_uni = plan.c0, plan.m0, plan.n_uni
    a = read("layers.0.weight", np.arange(n_uni) * c0 + np.arange(n_uni) // (2 * rho_i))
    c = read("layers.0.bias", np.arange(n_uni, m0))
    kept: dict[str, np.ndarray] = {}
    errors: dict[str, np.ndarray] = {}
    n_inst = n_failed = failed = 0
    worst = const_worst = 0.0
    z = np.zeros(0)
    z_block = z
    for l, s in enumerate(stages):
        kh, kw = s.kernel
        taps = kh * kw
        if s.res_begin:
            z_block = z   # the block input's constant values, carried by the skip path
        if l == 0:
            ucols, _ = _first_groups(a, c, c0, rho_i)        # unit indices, -1 = padding
            wgroups = ucols[:2 * c0].reshape(c0, 1, 2, rho_i)
            tap = np.arange(taps).reshape(1, taps, 1, 1)
            cols_w = np.where(wgroups >= 0, wgroups * taps + tap, -1).reshape(-1, rho_i)
            unit_w = np.where(wgroups >= 0, wgroups + 0 * tap, -1).reshape(-1, rho_i)
            cu = ucols[2 * c0]
            full = np.concatenate([a, c])
            sc_w = np.where(unit_w >= 0, full[np.maximum(unit_w, 0)], 0.0)
            if plan.const_off[0] is not None:
                cc = np.where(cu >= 0, cu * taps + (s.tap[0] * kw + s.tap[1]), -1)
                sc_c = np.where(cu >= 0, full[np.maximum(cu, 0)], 0.0)
                cols = np.concatenate([cols_w, cc[None]])
                scales = np.concatenate([sc_w, sc_c[None]])
            else:
                cols, scales = cols_w, sc_w
            parts = 2
            wt = np.repeat(s.W.reshape(s.n_out, -1), 2, axis=1)
        else:
            cols = plan.copy_off[l]
            scales = np.ones(cols.shape)
            if plan.const_off[l] is not None:
                cols = np.concatenate([cols, plan.const_off[l][None]])
                zz = z if z.size == rho_i else np.zeros(rho_i)
                scales = np.concatenate([scales, zz[None]])
            parts = 1
            wt = s.W.reshape(s.n_out, -1)
        has_const = plan.const_off[l] is not None
        const_group = cols.shape[0] - 1 if has_const else None
        targets = np.concatenate([wt, s.b[:, None]], axis=1) if s.b is not None else wt
        # constant rows are solved only where the constant channels stay constant
        n_rows = plan.rows[l] if plan.const_ok[l] else plan.neuron_rows[l]
        lay = _Layer(cols, scales, np.ascontiguousarray(targets, dtype=np.float64),
                     const_group, n_rows, plan.neuron_rows[l], plan.per[l], parts)
        wname_src = f"{s.spath}.weight"
        out = _solve_layer(read, wname_src, lay, plan.row_size[l], tol, chunk,
                           f"target layer {s.tpath!r} ({s.layer!r})")
        kept[wname_src] = out["kept"]
        we = out["w_err"]
        wname = f"{s.tpath}.weight"
        k_w = s.fan_in * parts
        errors[wname] = we[:, :k_w].reshape(*s.W.shape, parts).max(axis=-1)
        if s.b is not None:
            errors[f"{s.tpath}.bias"] = we[:, k_w]
        if l == 0:
            used_units = np.zeros(m0, dtype=bool)
            used_units[np.flatnonzero(out["used_cols"]) // taps] = True
            uu = np.flatnonzero(used_units[:n_uni])
            kept["layers.0.weight"] = uu * c0 + uu // (2 * rho_i)
            kept["layers.0.bias"] = n_uni + np.flatnonzero(used_units[n_uni:])
        n_inst += out["n_instances"]
        n_failed += out["n_failed"]
        if tol is not None:
            failed += int(np.count_nonzero(errors[wname] > tol))
            if s.b is not None:
                failed += int(np.count_nonzero(errors[f"{s.tpath}.bias"] > tol))
            failed += int(np.count_nonzero(out["const_err"] > tol))
        worst = max(worst, out["worst"])
        if out["const_err"].size:
            const_worst = max(const_worst, float(out["const_err"].max()))
        z = out["z"]
        if s.res_end:  # x + F(x): the body's output constants are empty, the skip's remain
            z = z_block if z.size == 0 else np.maximum(z_block + z, 0.0)
    return _finish(
        target, src, kept, errors, t0, t_draw, t_start, timings, n_failed=n_failed,
        n_inst=n_inst, failed=failed, worst=worst, const_worst=const_worst, tol=tol,
        L=len(stages), rho_i=rho_i, eps_f=eps_f, delta_f=delta_f, C_f=C_f,
        on_failure=on_failure, width_from=width_from, wtol=wtol, seed=seed, source=source,
        widths=list(plan.widths()),
        source_biases="layers.0.bias only (constant channels of the univariate 1x1 "
                      "convolution; later source layers have no bias)",
        layout="univariate 1x1 convolution of 2 rho channels per input channel plus 2 rho "
               "constant channels; rho copies and rho constant channels (units) per hidden "
               "target layer; bias and constant instances at kernel tap (padding_h, "
               "padding_w)",
        extra={"constant_rows_solved": [bool(x) for x in plan.const_ok]}, stacklevel=4)


def _chain_items(target_side: bool, plan: _Plan, mats: list[np.ndarray],
                 biases: list[np.ndarray | None], pixels: list[int], fans: list[int]
                 ) -> list[tuple[Any, ...]]:
    """The float64 forward chain of the target (or the ticket) as items for :func:`_chain_cnn`."""
    items: list[tuple[Any, ...]] = []
    for k, (M, b) in enumerate(zip(mats, biases, strict=True)):
        stage = None if (not target_side and k == 0) else plan.stages[
            k - (0 if target_side else 1)]
        if stage is not None and stage.res_begin:
            items.append(("begin",))
        bn = 0.0 if b is None else _up(norm_upper(np.abs(b)[:, None]) * math.sqrt(pixels[k]), 2)
        items.append(("affine", _op_upper(np.abs(M)), bn, fans[k] + 1))
        if stage is None:
            continue  # the univariate layer's ReLU is exact
        if stage.res_end:
            items.append(("end",))
        for _, _, lay, _ in stage.after:
            if isinstance(lay, MaxPool2d):
                items.append(("max", _pool_factor(lay)))
            elif isinstance(lay, AvgPool2d):
                items.append(("avg", int(math.prod(lay.kernel_size))))
    return items


def _chain_cnn(items: list[tuple[Any, ...]], radius: float) -> float:
    """Bound on the float64 forward error of a conv/pool/ReLU chain over the ball (module doc)."""
    r = radius
    phi = 0.0
    stack: list[tuple[float, float]] = []
    for it in items:
        if it[0] == "begin":      # a residual block's input (r, phi), carried by the skip
            stack.append((r, phi))
        elif it[0] == "end":      # x + F(x): errors add, plus one rounding of the sum
            rx, px = stack.pop()
            phi = _up(px + phi + _gamma(1) * (rx + px + r + phi), 6)
            r = _up(rx + r, 1)
        elif it[0] == "affine":
            _, absn, bn, k = it
            phi = _up(absn * phi + _gamma(k + 2) * (absn * (r + phi) + bn), 6)
            r = _up(absn * r + bn, 3)
        elif it[0] == "max":
            phi, r = _up(phi * it[1], 2), _up(r * it[1], 2)
        else:  # avg: kk - 1 additions and a division, factor <= 1
            phi = _up(phi + _gamma(it[1] + 2) * (r + phi), 4)
    return phi


def _certified_cnn(target: Network, ticket: Ticket, R: float) -> float:
    rho = _cnn_infer_rho(target, ticket.source)
    plan = _Plan(target, rho)
    _cnn_check_source(ticket.source, plan.arch, rho)
    stages = plan.stages
    c0, m0, n_uni = plan.c0, plan.m0, plan.n_uni
    in_pixels = int(math.prod(target.input_shape[1:]))  # type: ignore[index]
    W0, b0, a, z = _univariate_layer(ticket, m0, c0, rho, n_uni, conv=True)
    zeta = np.zeros_like(z)
    g_mats: list[np.ndarray] = [W0]
    g_bias: list[np.ndarray | None] = [b0]
    g_pix, g_fan = [in_pixels], [c0]
    e = 0.0
    r = R
    block: tuple[Any, ...] = (e, r, z, zeta)
    for l, s in enumerate(stages):
        if s.res_begin:   # the block input (error, radius, constants), carried by the skip
            block = (e, r, z, zeta)
        wname = f"{s.spath}.weight"
        shape = tuple(plan.arch.param_specs()[wname])
        rows, row = plan.rows[l], plan.row_size[l]
        M = _dense_masked(ticket, wname, (rows, row))
        g_mats.append(M.reshape(shape))
        g_bias.append(None)
        g_pix.append(s.n_pixels)
        g_fan.append(row)
        n_neuron, per = plan.neuron_rows[l], plan.per[l]
        off, coff = plan.copy_off[l], plan.const_off[l]
        Mn, Mc = M[:n_neuron], M[n_neuron:]
        allow_n = np.zeros(row, dtype=bool)
        allow_n[off.reshape(-1)] = True
        allow_c = np.zeros(row, dtype=bool)
        if coff is not None:
            allow_n[coff] = True
            allow_c[coff] = True
        for part, allow, first, what in ((Mn, allow_n, 0, "an output copy reading an entry "
                                          "that carries no target weight or bias"),
                                         (Mc, allow_c, n_neuron, "a constant channel reading "
                                          "a copy channel or off its kernel tap")):
            bad = np.argwhere((part != 0) & ~allow[None, :])
            if bad.size:
                t, col = (int(v) for v in bad[0])
                idx = np.unravel_index(t * row + col + first * row, shape)
                raise InputError(f"`ticket` keeps {wname}[{', '.join(str(int(i)) for i in idx)}]"
                                 f": {what}, outside the burkholz2022 layout")
        if coff is not None:
            V = Mn[:, coff]
            beta = V @ z
            beta_m = _margin(np.abs(V) @ z, z.size) + np.abs(V) @ zeta
            Vc = Mc[:, coff]
            pre = Vc @ z
            pre_m = _margin(np.abs(Vc) @ z, z.size) + np.abs(Vc) @ zeta
        else:
            beta = beta_m = np.zeros(n_neuron)
            pre = pre_m = np.zeros(Mc.shape[0])
        bt = np.zeros(s.n_out) if s.b is None else s.b
        bbar = (np.abs(beta - np.repeat(bt, per)) * (1 + 2 * _U) + beta_m).reshape(
            s.n_out, per).max(axis=1)
        bterm = _up(norm_upper(bbar[:, None]) * math.sqrt(s.n_pixels), 2)
        blocks = Mn[:, off]                                  # (rows, fan_in, n)
        Wr = np.repeat(s.W.reshape(s.n_out, -1), per, axis=0)
        if l == 0:
            taps = s.kernel[0] * s.kernel[1]
            av = np.broadcast_to(a.reshape(c0, 1, 2 * rho), (c0, taps, 2 * rho)).reshape(
                c0 * taps, 2 * rho)
            pos, neg = np.where(av > 0, av, 0.0), np.where(av < 0, av, 0.0)
            P = np.einsum("rgk,gk->rg", blocks, pos)
            N = np.einsum("rgk,gk->rg", blocks, neg)
            Pm = _margin(np.einsum("rgk,gk->rg", np.abs(blocks), np.abs(pos)), 2 * rho)
            Nm = _margin(np.einsum("rgk,gk->rg", np.abs(blocks), np.abs(neg)), 2 * rho)
            Dr = np.maximum(np.abs(P - Wr) * (1 + 2 * _U) + Pm,
                            np.abs(N - Wr) * (1 + 2 * _U) + Nm)
            Delta = Dr.reshape(s.n_out, per, -1).max(axis=1).reshape(s.W.shape)
            e = _up(_op_upper(Delta) * R + bterm, 4)
        else:
            What = blocks.sum(axis=2)
            A = np.abs(blocks).sum(axis=2)
            Dr = np.abs(What - Wr) * (1 + 2 * _U) + _margin(A, rho)
            Delta = Dr.reshape(s.n_out, per, -1).max(axis=1).reshape(s.W.shape)
            Abar = (A * (1 + _gamma(rho + 1))).reshape(s.n_out, per, -1).max(axis=1).reshape(
                s.W.shape)
            e = _up(_op_upper(Delta) * r + bterm + _op_upper(Abar) * e, 6)
        bn = 0.0 if s.b is None else norm_upper(np.abs(s.b)[:, None]) * math.sqrt(s.n_pixels)
        r = _up(_op_upper(s.W) * r + bn, 4)
        z, zeta = np.maximum(pre, 0.0), pre_m
        if s.res_end:
            # x + F(x): the worst copy's error of the sum is at most the sum of the worst
            # copies' errors, ||y + f|| <= ||y|| + ||f||; constant channels add (their sum
            # then goes through the ReLU after the block)
            e_x, r_x, z_x, zeta_x = block
            e, r = _up(e_x + e, 1), _up(r_x + r, 1)
            zs = z_x + pre
            z, zeta = np.maximum(zs, 0.0), zeta_x + pre_m + np.abs(zs) * (2 * _U)
        for _, _, lay, _ in s.after:  # ReLU, Flatten, AvgPool2d: 1-Lipschitz; MaxPool2d
            f = _pool_factor(lay)
            e, r = _up(e * f, 2), _up(r * f, 2)
    t_mats = [s.W for s in stages]
    t_bias = [s.b for s in stages]
    t_pix = [s.n_pixels for s in stages]
    t_fan = [s.fan_in for s in stages]
    phi_f = _chain_cnn(_chain_items(True, plan, t_mats, t_bias, t_pix, t_fan), R)
    phi_g = _chain_cnn(_chain_items(False, plan, g_mats, g_bias, g_pix, g_fan), R)
    n_final = int(math.prod(stages[-1].out_shape))
    return _up((e + phi_f + phi_g) * (1.0 + _gamma(n_final + 2)), 4)
