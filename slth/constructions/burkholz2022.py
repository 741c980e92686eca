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

Only ReLU MLP targets (a :class:`~slth.nets.base.Network` of ``Dense, ReLU, ...,
Dense`` layers, an :class:`~slth.nets.MLP` included) are supported here;
convolutional and residual targets are refused with an
:class:`~slth.errors.InputError` (not implemented yet).

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
from ..nets.layers import Dense, ReLU
from ..sources import DenseSource, VirtualNetwork, VirtualSource
from ..subset_sum import EXACT_MAX_N, solve_batch
from ..ticket import Ticket
from ._common import check_delta, check_eps
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
            raise InputError(f"`target` layer {name!r} is a Residual block: burkholz2022 "
                             "builds tickets for ReLU MLPs only (residual targets are not "
                             "supported yet)")
        if not isinstance(layer, want):
            raise InputError(f"`target` must alternate Dense and ReLU layers, starting and "
                             f"ending with Dense (convolutional targets are not supported "
                             f"yet); layer {name!r} is {layer!r}, expected {want.__name__}")
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

    Parameters
    ----------
    target : Network
        Dense/ReLU target.
    rho : int
        Copies and candidates per instance, >= 1.

    Returns
    -------
    tuple of int
    """
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
    one more input). It is not a proof that the ticket meets ``eps``: the worst-copy
    error is amplified by the absolute subset sums (module docstring), which are
    known only after solving; :func:`certified_bound` measures the result.

    Parameters
    ----------
    target : Network
    eps : float
        In (0, 1).

    Returns
    -------
    float
    """
    d = _dims(target)
    eps_f = check_eps(eps, allow_none=False)
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
    P = target.n_params + len(_dims(target)) - 1
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
    spec = dict(arch.param_specs())
    if virtual:
        return VirtualNetwork(arch, VirtualSource(spec, LAW, seed)), seed
    drawn = DenseSource.draw(spec, LAW, seed)
    return arch.with_params({n: drawn.dense(n) for n in spec}), seed


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
        layer; an :class:`slth.nets.MLP` is one). Convolutional and residual
        targets raise :class:`InputError` (not supported yet).
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
        Over the source (dense or virtual); ``layer_map`` ``{"layers.0":
        ("layers.0", "layers.2"), "layers.<2l>": ("layers.<2l+2>",), ReLUs
        alike}``; ``errors`` per target parameter: the realised worst
        ``|sum - W|`` over the output copies (and the two sign parts in layer
        1); JSON ``params``: rho, mode, eps, delta, weight_tolerance,
        n_instances, n_failed, failed_params, worst_error, constant_error,
        seed, source_given, source_law, widths, source_biases, C, paper.

    Raises
    ------
    InputError
        A target that is not a Dense/ReLU MLP, bad ``rho``/``eps``/``delta``/
        ``weight_eps``/``on_failure``/``rng``, or no width given.
    ShapeError
        A ``source`` of another layout.
    LimitError
        Exact mode with ``rho > 40``, or past the memory budget.
    ConstructionError
        ``on_failure="raise"`` and some instance missed its tolerance.
    """
    t_start = time.perf_counter()
    layers = _mlp_layers(target)
    names = _target_names(target)
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
        rho_i = _infer_rho(target, source)
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
                          stacklevel=2)
    t0 = time.perf_counter()
    params = {
        "paper": PAPER,
        "rho": rho_i,
        "width_from": width_from,
        "mode": "exact" if tol is None else "eps",
        "eps": eps_f,
        "delta": delta_f,
        "C": C_f,
        "weight_eps": wtol,
        "weight_tolerance": tol,
        "n_instances": n_inst,
        "n_failed": n_failed,
        "failed_params": failed,
        "worst_error": worst,
        "constant_error": const_worst,
        "seed": seed,
        "source_given": source is not None,
        "source_law": None if source is not None else LAW,
        "virtual": isinstance(src, VirtualNetwork),
        "widths": list(widths),
        "source_biases": "layers.0.bias only (constant units of the univariate layer; "
                         "later source layers have no bias)",
        "layout": "univariate layer of 2 rho units per input plus 2 rho constant units; "
                  "rho copies and rho constant units per hidden target layer",
    }
    layer_map = {}
    for k, (name, _) in enumerate(target.layers):
        path = f"layers.{name}"
        layer_map[path] = ("layers.0", "layers.2") if k == 0 else (f"layers.{k + 2}",)
    ticket = Ticket.from_kept(src, kept, construction=NAME, params=params,
                              layer_map=layer_map, errors=errors,
                              target_fingerprint=target.fingerprint())
    if timings is not None:
        timings.update({"draw": t_draw, "solve": t_solve,
                        "ticket": time.perf_counter() - t0,
                        "total": time.perf_counter() - t_start})
    return ticket


# ----------------------------------------------------------------------------- certificate
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
        The Dense/ReLU target f.
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
    layers = _mlp_layers(target)
    if not isinstance(ticket, Ticket):
        raise InputError(f"`ticket` must be a slth.Ticket; received {format_value(ticket)} of "
                         f"type {type(ticket).__name__}")
    R = check_radius(radius)
    _validate.boolean("check_target", check_target)
    if check_target:
        check_fingerprint(target, ticket)
    rho = _infer_rho(target, ticket.source)
    arch = source_architecture(target, rho)
    _check_source(ticket.source, arch, rho)
    d = _dims(target)
    L = len(d) - 1
    widths = source_widths(target, rho)
    d0, m0 = d[0], widths[1]
    n_uni = 2 * rho * d0
    # ---- the univariate layer: one weight per unit, on its own input; biases on constants
    W0 = _dense_masked(ticket, "layers.0.weight", (m0, d0))
    b0 = _dense_masked(ticket, "layers.0.bias", (m0,))
    own = np.zeros((m0, d0), dtype=bool)
    own[np.arange(n_uni), np.arange(n_uni) // (2 * rho)] = True
    stray = np.flatnonzero((W0 != 0) & ~own)
    if stray.size:
        u, j = divmod(int(stray[0]), d0)
        raise InputError(f"`ticket` keeps layers.0.weight[{u}, {j}] outside the burkholz2022 "
                         "layout (a univariate unit reads only its own input; constant units "
                         "read none)")
    if np.any(b0[:n_uni] != 0):
        u = int(np.flatnonzero(b0[:n_uni])[0])
        raise InputError(f"`ticket` keeps layers.0.bias[{u}] of a univariate unit; only the "
                         "constant units' biases belong to the layout")
    a = W0[own]                        # (n_uni,) in unit order
    z = np.maximum(b0[n_uni:], 0.0)    # constant values of layer 0 (exact)
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
