"""Rigorous upper bounds on the sup error of a ticket: the certifier of the pair layout.

The MLP constructions (:mod:`slth.constructions.pensia2020`,
:mod:`slth.constructions.malach2020`, :mod:`slth.constructions.single_pair`)
realise each target layer with two source layers in the *two-layer block
form*: every kept hidden unit of the first layer reads one input (weight ``a``:
it computes ``relu(a y_j) = |a| relu(+-y_j)``) or none (a constant unit with a
kept bias ``c``: it computes ``relu(c)``). Such a pair computes exactly

    ``B(y) = P relu(y) + N relu(-y) + beta``

with effective matrices ``P``, ``N`` and vector ``beta`` read from the source
and the masks (:func:`effective_layers`). :func:`certified_bound` bounds
``sup_{||x|| <= R} ||f(x) - g(x)||_2`` from them. It trusts nothing the ticket
says about itself: the structure is verified (:func:`check_structure`) against
the target it is evaluated on and against the construction the ticket names,
and every number is recomputed from the source's arrays and the masks.

The bound (``method="sign"``, the default)
-----------------------------------------
For an input ``y`` whose sign pattern is ``s`` (``s_j = +`` when ``y_j > 0``),
``B(y) - W y - b = D_s y + (beta - b)`` where column j of ``D_s`` is
``(P - W)[:, j]`` when ``s_j = +`` and ``-(N + W)[:, j]`` otherwise (because
``y_j = relu(y_j) - relu(-y_j)``). ``B`` is continuous and linear on every
orthant with Jacobian ``J_s``, column j equal to ``P[:, j]`` or ``-N[:, j]``;
so its Lipschitz constant is ``max_s ||J_s||_2``. With ``e_l`` a bound on the
ticket's pre-activation error after target layer l and ``r_l`` one on the
target's activation norm (``r_0 = R``, ``r_l = ||W_l|| r_{l-1} + ||b_l||``):

    ``e_l <= Lip_l e_{l-1} + delta_l r_{l-1} + ||beta_l - b_l||``

(``||B(y^) - W y|| <= ||B(y^) - B(y)|| + ||B(y) - W y||``; ReLU is 1-Lipschitz),
``delta_l >= max_s ||D_s||_2`` and ``Lip_l >= max_s ||J_s||_2``. When the
layer has at most :data:`SIGN_PATTERN_MAX_IN` inputs both maxima are computed
over all ``2^d_in`` sign patterns; beyond, ``delta_l`` is the smaller of
``|| Delta ||_2`` (``Delta = max(|P - W|, |N + W|)`` entrywise, which dominates
every ``|D_s|``) and ``||[P - W, -(N + W)]||_2`` (concatenated columns: ``D_s y``
is that matrix times ``(S y, (I - S) y)``, a vector of the same norm), and
``Lip_l = ||W_l|| + delta_l``. Always ``Lip_l <= ||W_l|| + delta_l``, so the
recursion is never looser than the classical one.

``method="propagation"`` is the error propagation of Pensia et al. (NeurIPS
2020, proof of Theorem 1) on the realised weights, kept as the cheap
fallback: ``e_l <= ||Delta_l|| (r_{l-1} + e_{l-1}) + ||W_l|| e_{l-1} +
||beta_l - b_l||``. With every ``||W_l|| <= 1``, no biases and every entry of
``Delta`` at most the proof's tolerance ``eps / (2 l d_in d_out)`` both give
at most ``(1 + eps/(2l))^l - 1 < eps``: Theorem 1's conclusion.

Rounding outward (why the returned float is an upper bound)
-----------------------------------------------------------
Write ``u = 2^-53`` and ``gamma_k = k u / (1 - k u)``. Every quantity is
rounded up, with the margins below; the only model assumed is IEEE double
arithmetic with conventional (not Strassen-like) BLAS, for which the computed
inner product of k terms has error at most ``gamma_k`` times the inner
product of the absolute values (Higham, *Accuracy and Stability of Numerical
Algorithms*, 2nd ed., eq. 3.5), and the computed Cholesky factor ``R`` of a
symmetric ``n x n`` matrix ``H`` satisfies ``R^T R = H + E`` with
``|E| <= gamma_{n+1} |R^T| |R|`` (ibid., Theorem 10.3), whatever the order of
the inner products.

* Spectral norms (:func:`norm_upper`): ``t`` is certified as ``>= ||M||_2`` by a
  successful Cholesky factorisation of ``H - s I`` with
  ``H = fl(t^2 I - fl(M^T M))``. Then ``H - s I + E`` is PSD with
  ``||E||_2 <= gamma_{n+1} ||R||_F^2 = gamma_{n+1} tr(R^T R)`` and
  ``tr(R^T R) <= (1 + gamma_{n+1}) tr(H - s I)``, while
  ``|t^2 I - M^T M - H| <= gamma_m |M|^T |M| + u (t^2 + max_i (M^T M)_ii)``
  entrywise (m rows), of 2-norm at most ``gamma_m ||M||_F^2 + u (t^2 + ...)``
  times n. Choosing ``s`` above the sum of these two bounds makes
  ``t^2 I - M^T M`` PSD, i.e. ``||M||_2 <= t``. ``t`` starts at the LAPACK
  singular value times ``1 + 1e-12`` and grows until the test passes; if it
  never does, the Frobenius norm times ``1 + gamma_{mn+1}`` is used. The batch
  form certifies every sign pattern's matrix at once.
* The effective matrices are computed, not exact: ``|fl(P) - P| <= 2 gamma_m
  fl(|B| |A+|)`` entrywise (m hidden units; the abs product is itself a
  sum of nonnegative terms, computed with relative error ``gamma_m``), the same
  for ``N`` and ``beta``, plus ``u`` times each computed difference. The 2-norm
  of the true ``D_s`` then exceeds that of the computed one by at most the
  Frobenius norm of this entrywise bound, which is added to ``delta_l`` and
  ``Lip_l``.
* The recursion's own arithmetic (at most eight operations on nonnegative
  numbers per layer) is multiplied by ``1 + 8u`` per layer.
* Float evaluation: slth's evaluations of ``||f(x) - g(x)||`` (sampled and
  adversarial errors) run in float64. The returned number also bounds every
  such evaluation at a point of the ball: it adds ``phi_f + phi_g``, bounds on
  the forward rounding errors of target and ticket (per layer,
  ``phi_l <= Lip phi_{l-1} + gamma_{k+2} (|| |W| ||_2 (r + phi_{l-1}) + ||b||)``
  with ``k`` the inner dimension; for the ticket ``|W|`` is the pair's abs
  product ``|B| |A|``), and multiplies by ``1 + gamma_{d+2}`` for the final
  difference and norm. So ``adversarial <= certified`` holds for the numbers
  slth reports, not only for exact arithmetic.

All margins are relative errors of order ``n u`` (``1e-14`` for n = 100): they
never change a verdict that is not already on a knife's edge.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from . import _validate
from .errors import InputError, ShapeError, format_value
from .nets.mlp import MLP, param_name
from .ticket import Ticket, source_bias_layers

__all__ = [
    "CERTIFY_METHODS",
    "CHAIN_MAX_ELEMENTS",
    "LAYOUT_CHECKS",
    "SIGN_PATTERN_MAX_IN",
    "SUFFIX_PATTERN_MAX",
    "EffectiveLayer",
    "certified_bound",
    "check_fingerprint",
    "check_pair",
    "check_radius",
    "check_structure",
    "effective_layers",
    "norm_upper",
    "propagated_error_bound",
]

#: Layers with at most this many inputs get the exact maxima over all 2^d_in sign patterns.
SIGN_PATTERN_MAX_IN: int = 12

#: Methods of :func:`certified_bound`.
CERTIFY_METHODS: tuple[str, ...] = ("sign", "propagation")

_U = 2.0 ** -53


def _gamma(k: int) -> float:
    ku = float(k) * _U
    return ku / (1.0 - ku)


def _up(x: float, k: int = 1) -> float:
    """``x`` (>= 0) times ``1 + 2 k u``: covers k roundings of a nonnegative result."""
    return float(x) * (1.0 + 2.0 * k * _U)


# ----------------------------------------------------------------------------- checks
def check_pair(target: Any, ticket: Any, *, check_target: bool = True) -> tuple[MLP, Ticket]:
    """Validate a (target, ticket) pair: types, end widths, recorded widths and fingerprint.

    Parameters
    ----------
    target : MLP
    ticket : Ticket
    check_target : bool, default True
        Raise when the ticket records the fingerprint of another target
        (:meth:`slth.nets.MLP.fingerprint`).

    Returns
    -------
    (MLP, Ticket)

    Raises
    ------
    InputError
        Wrong types, or a ticket built for another target.
    ShapeError
        Input/output widths or recorded target widths that differ.
    """
    if not isinstance(target, MLP):
        raise InputError(f"`target` must be a slth.nets.MLP; received {format_value(target)} of "
                         f"type {type(target).__name__}")
    if not isinstance(ticket, Ticket):
        raise InputError(f"`ticket` must be a slth.Ticket; received {format_value(ticket)} of "
                         f"type {type(ticket).__name__}")
    tw, sw = target.widths, ticket.source.widths
    if tw[0] != sw[0] or tw[-1] != sw[-1]:
        raise ShapeError(f"`ticket` maps {sw[0]} -> {sw[-1]} but `target` maps {tw[0]} -> "
                         f"{tw[-1]}; expected the same input and output widths")
    if ticket.target_widths is not None and tuple(ticket.target_widths) != tw:
        raise ShapeError(f"`ticket` was built for target widths {ticket.target_widths}; "
                         f"received a target with widths {tw}")
    if check_target:
        check_fingerprint(target, ticket)
    return target, ticket


def check_fingerprint(target: Any, ticket: Ticket) -> None:
    """Raise unless ``ticket`` was built for ``target`` (or records no target).

    Parameters
    ----------
    target : Network
        Any network (its ``fingerprint()`` is compared).
    ticket : Ticket

    Raises
    ------
    InputError
        The ticket records the fingerprint of another network.
    """
    if ticket.target_fingerprint is None:
        return
    fp = target.fingerprint()
    if fp != ticket.target_fingerprint:
        raise InputError(
            f"`target` is not the network this ticket was built for (ticket records "
            f"{ticket.target_fingerprint[:19]}..., received {fp[:19]}...); for a rescaled "
            "target evaluate against the rescaled one (RescaledTarget.target), or pass "
            "check_target=False to compare with another target on purpose"
        )


def check_radius(radius: Any) -> float:
    """Validate the input-ball radius (a finite number > 0)."""
    return _validate.positive("radius", radius)  # type: ignore[return-value]


def _kept_by_param(ticket: Ticket) -> dict[tuple[str, int], np.ndarray]:
    """The ticket's kept flat indices keyed ``("w", l)`` / ``("b", l)`` (no dense masks)."""
    out: dict[tuple[str, int], np.ndarray] = {}
    for l, has_bias in enumerate(source_bias_layers(ticket.source)):
        out[("w", l)] = ticket.kept[param_name("weight", l)]
        if has_bias:
            out[("b", l)] = ticket.kept[param_name("bias", l)]
    return out


def _weight_shape(ticket: Ticket, l: int) -> tuple[int, int]:
    """``(d_out, d_in)`` of source layer ``l`` (a dense or a virtual source; nothing read)."""
    sw = ticket.source.widths
    return sw[l + 1], sw[l]


def _rows_cols(kept: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of the kept flat indices of a ``shape`` matrix, row-major (as np.nonzero)."""
    return np.divmod(kept, shape[1])


def _pair_layout(units_key: str) -> Callable[[MLP, Ticket], None]:
    """Layout check of the shared-block layout of ``slth.constructions.layouts.pair_dense``.

    Target layer i with ``n_i`` units per part: hidden width ``2 n_i (d_in + bias)``;
    block j (units ``j*2n .. j*2n + 2n - 1``) may keep first-layer weights of
    column j only; the constant block (biased layers) keeps no first-layer weight.
    """

    def check(target: MLP, ticket: Ticket) -> None:
        units = ticket.params.get(units_key)
        L = target.depth
        if not isinstance(units, list) or len(units) != L or not all(
                isinstance(u, int) and u >= 1 for u in units):
            raise InputError(
                f"`ticket` claims construction {ticket.construction!r} but its params lack a "
                f"valid `{units_key}` (one int >= 1 per target layer); received {units!r}"
            )
        kept = _kept_by_param(ticket)
        for i in range(L):
            d_in = target.widths[i]
            bias = target.biases[i] is not None
            m = 2 * units[i] * (d_in + int(bias))
            A = _weight_shape(ticket, 2 * i)
            if A[0] != m:
                raise ShapeError(
                    f"`ticket` claims construction {ticket.construction!r} with {units_key}="
                    f"{units[i]} on target layer {i}, i.e. {m} hidden units; source layer "
                    f"{2 * i} has {A[0]}"
                )
            rows, cols = _rows_cols(kept[("w", 2 * i)], A)
            block = rows // (2 * units[i])
            if np.any(block != cols):
                u = int(rows[np.flatnonzero(block != cols)[0]])
                raise InputError(
                    f"`ticket` is not of the block-diagonal layout of {ticket.construction!r} on "
                    f"target layer {i}: hidden unit {u} of source layer {2 * i} keeps a weight "
                    f"from input {int(cols[np.flatnonzero(block != cols)[0]])}, outside its block"
                )
    return check


def _disjoint_layout(target: MLP, ticket: Ticket) -> None:
    """Layout of :mod:`slth.constructions.malach2020`: one block per (output, input)."""
    units = ticket.params.get("k")
    L = target.depth
    if not isinstance(units, list) or len(units) != L or not all(
            isinstance(u, int) and u >= 1 for u in units):
        raise InputError(
            "`ticket` claims construction 'malach2020' but its params lack a valid `k` (one int "
            f">= 1 per target layer); received {units!r}"
        )
    kept = _kept_by_param(ticket)
    for i in range(L):
        d_out, d_in = target.weights[i].shape
        bias = target.biases[i] is not None
        per = 2 * units[i]
        m = per * d_out * (d_in + int(bias))
        A = _weight_shape(ticket, 2 * i)
        if A[0] != m:
            raise ShapeError(
                f"`ticket` claims construction 'malach2020' with k={units[i]} on target layer "
                f"{i}, i.e. {m} hidden units; source layer {2 * i} has {A[0]}"
            )
        rows, cols = _rows_cols(kept[("w", 2 * i)], A)
        col_of_block = (rows // per) % (d_in + int(bias))
        bad = col_of_block != cols
        if bad.any():
            raise InputError(
                f"`ticket` is not of the per-weight block layout of 'malach2020' on target layer "
                f"{i}: hidden unit {int(rows[bad][0])} keeps a weight from input "
                f"{int(cols[bad][0])}, outside its block"
            )
        r2, c2 = _rows_cols(kept[("w", 2 * i + 1)], _weight_shape(ticket, 2 * i + 1))
        out_of_block = c2 // (per * (d_in + int(bias)))
        bad = out_of_block != r2
        if bad.any():
            raise InputError(
                f"`ticket` is not of the per-weight block layout of 'malach2020' on target layer "
                f"{i}: output {int(r2[bad][0])} reads hidden unit {int(c2[bad][0])} of another "
                "output's blocks"
            )


#: Per construction name, the layout check :func:`check_structure` applies on top of
#: the block form. A ticket of another name (e.g. ``"manual"``) gets the block form only.
LAYOUT_CHECKS: dict[str, Callable[[MLP, Ticket], None]] = {
    "pensia2020": _pair_layout("n"),
    "single_pair": _pair_layout("k"),
    "malach2020": _disjoint_layout,
}


def check_structure(target: MLP, ticket: Ticket) -> None:
    """Verify that ``ticket`` has the structure :func:`certified_bound` relies on.

    Checks, from the source's arrays and the kept entries (never from metadata alone):

    * the source has exactly ``2 l`` layers for the target's ``l`` and
      ``ticket.mlp_layer_map`` is exactly ``((0, 1), (2, 3), ..., (2l-2, 2l-1))``
      (``ticket.layer_map`` ``{"layers.0": ("layers.0", "layers.2"), ...}``);
    * source layer ``2i`` reads ``d_{i}`` inputs and source layer ``2i + 1``
      outputs ``d_{i+1}`` (the target's widths);
    * the two-layer block form: every kept hidden unit reads at most one input,
      and a unit that reads one keeps no bias;
    * for a ticket naming a registered construction (:data:`LAYOUT_CHECKS`):
      that construction's layout (hidden widths from its recorded ``n``/``k``,
      block-diagonal first layers, per-output blocks for ``malach2020``).

    Raises
    ------
    InputError, ShapeError
        What does not match, and where.
    """
    L = target.depth
    src = ticket.source
    if src.depth != 2 * L:
        raise ShapeError(
            f"`ticket.source` has {src.depth} layers; the two-layer block form needs exactly "
            f"2 per target layer ({2 * L} for this {L}-layer target)"
        )
    expected = tuple((2 * i, 2 * i + 1) for i in range(L))
    if ticket.layer_map is None:
        raise InputError("`ticket` has no layer_map: the certified bound needs the source layers "
                         f"that realise each target layer (expected {expected})")
    if ticket.mlp_layer_map != expected:
        got = ticket.mlp_layer_map or dict(ticket.layer_map)
        raise InputError(
            f"`ticket.layer_map` must be {expected} (every source layer in a pair, in order); "
            f"received {got}"
        )
    tw, sw = target.widths, src.widths
    for i in range(L):
        if sw[2 * i] != tw[i] or sw[2 * i + 2] != tw[i + 1]:
            raise ShapeError(
                f"source layers {(2 * i, 2 * i + 1)} map {sw[2 * i]} -> {sw[2 * i + 2]}; target "
                f"layer {i} maps {tw[i]} -> {tw[i + 1]}"
            )
    kept = _kept_by_param(ticket)
    for i in range(L):
        A = _weight_shape(ticket, 2 * i)
        rows, _ = _rows_cols(kept[("w", 2 * i)], A)
        n_in = np.bincount(rows, minlength=A[0])
        kept_c = np.zeros(A[0], dtype=bool)
        kc = kept.get(("b", 2 * i))
        if kc is not None:
            kept_c[kc] = True
        if np.any(n_in > 1) or np.any((n_in == 1) & kept_c):
            u = int(np.flatnonzero((n_in > 1) | ((n_in == 1) & kept_c))[0])
            raise InputError(
                f"`ticket` is not of the two-layer block form on target layer {i}: hidden unit {u} "
                f"of source layer {2 * i} reads more than one input, or reads one and keeps its "
                "bias"
            )
    layout = LAYOUT_CHECKS.get(ticket.construction)
    if layout is not None:
        layout(target, ticket)


# ----------------------------------------------------------------------------- effective layers
@dataclass(frozen=True, eq=False)
class EffectiveLayer:
    """What one target layer's source pair computes, read from the ticket's masks.

    The pair computes ``y -> P relu(y) + N relu(-y) + beta`` (entrywise:
    ``z_i = sum_j P_ij relu(y_j) + N_ij relu(-y_j) + beta_i``).

    Attributes
    ----------
    P, N : numpy.ndarray
        float64 ``(d_out, d_in)``: positive-part and negative-part effective
        weights (the ideal is ``P = W``, ``N = -W``: ``W y = W relu(y) - W relu(-y)``).
    beta : numpy.ndarray
        float64 ``(d_out,)``: the constant the pair adds (constant units and the
        second layer's kept bias).
    abs_P, abs_N : numpy.ndarray
        float64 ``(d_out, d_in)``: the same sums over absolute values
        (``|B| |A|``), which bound the rounding of ``P`` and ``N``.
    abs_beta : numpy.ndarray
        float64 ``(d_out,)``: likewise for ``beta``.
    hidden : int
        Hidden units of the pair (the inner dimension of its sums).
    """

    P: np.ndarray
    N: np.ndarray
    beta: np.ndarray
    abs_P: np.ndarray
    abs_N: np.ndarray
    abs_beta: np.ndarray
    hidden: int


def _pair(ticket: Ticket, kept: dict[tuple[str, int], np.ndarray], i: int, d_in: int,
          d_out: int) -> EffectiveLayer:
    s1, s2 = 2 * i, 2 * i + 1
    # kept indices and values through the ticket (a virtual source computes only those)
    A = _weight_shape(ticket, s1)
    kA, a = ticket.kept_entries(param_name("weight", s1))
    Bw = _weight_shape(ticket, s2)
    kB, bw = ticket.kept_entries(param_name("weight", s2))
    m = A[0]
    units, inputs = _rows_cols(kA, A)
    pos = a > 0
    Apos = sp.csr_matrix((a[pos], (units[pos], inputs[pos])), shape=(m, d_in))
    Aneg = sp.csr_matrix((-a[~pos], (units[~pos], inputs[~pos])), shape=(m, d_in))
    r, cidx = _rows_cols(kB, Bw)
    Bs = sp.csr_matrix((bw, (r, cidx)), shape=Bw)
    Babs = abs(Bs)
    P = np.asarray((Bs @ Apos).todense())
    N = np.asarray((Bs @ Aneg).todense())
    absP = np.asarray((Babs @ Apos).todense())
    absN = np.asarray((Babs @ Aneg).todense())
    beta = np.zeros(d_out)
    abs_beta = np.zeros(d_out)
    kc = kept.get(("b", s1))
    if kc is not None and kc.size:
        _, c = ticket.kept_entries(param_name("bias", s1))
        const = np.zeros(m)
        const[kc] = np.maximum(c, 0.0)
        beta += np.asarray(Bs @ const).ravel()
        abs_beta += np.asarray(Babs @ const).ravel()
    kb2 = kept.get(("b", s2))
    if kb2 is not None and kb2.size:
        _, b2 = ticket.kept_entries(param_name("bias", s2))
        kept_b2 = np.zeros(d_out)
        kept_b2[kb2] = b2
        beta += kept_b2
        abs_beta += np.abs(kept_b2)
    return EffectiveLayer(P, N, beta, absP, absN, abs_beta, int(m))


def effective_layers(target: MLP, ticket: Ticket, *, check_target: bool = True
                     ) -> list[EffectiveLayer]:
    """Read the effective weights each target layer's source pair realises.

    The structure is verified first (:func:`check_structure`).

    Parameters
    ----------
    target : MLP
    ticket : Ticket
    check_target : bool, default True
        See :func:`check_pair`.

    Returns
    -------
    list of EffectiveLayer

    Raises
    ------
    InputError, ShapeError
        Not a pair of the two-layer block form for this target (see
        :func:`check_structure`), or a ticket built for another target.
    """
    target, ticket = check_pair(target, ticket, check_target=check_target)
    check_structure(target, ticket)
    kept = _kept_by_param(ticket)
    return [_pair(ticket, kept, i, *target.weights[i].shape[::-1]) for i in range(target.depth)]


# ----------------------------------------------------------------------------- norms
def _fro_up(M: np.ndarray) -> float:
    """Rigorous upper bound on the Frobenius norm (a sum of squares, then a root)."""
    if M.size == 0:
        return 0.0
    s = float(np.sum(np.square(M, dtype=np.float64)))
    return _up(math.sqrt(s * (1.0 + _gamma(M.size + 1))), 2)


def _certify_grams(G: np.ndarray, t2: float, err: float) -> bool:
    """True when ``t2 I - G_k - err I`` passes the Cholesky test for every k (module doc)."""
    n = G.shape[-1]
    eye = np.eye(n)
    H = t2 * eye - G
    diag_max = float(np.max(np.abs(np.diagonal(G, axis1=-2, axis2=-1)))) if G.size else 0.0
    trace = n * (t2 + diag_max)
    s = _up(1.01 * _gamma(n + 1) * trace + err + 4.0 * n * _U * (t2 + diag_max), 4)
    try:
        np.linalg.cholesky(H - s * eye)
    except np.linalg.LinAlgError:
        return False
    return True


def _norm_upper_grams(G: np.ndarray, lam_hat: float, err: float, fallback: float) -> float:
    """Certified ``t >= max_k sqrt(lambda_max(G_k))`` given the Gram error bound ``err``."""
    tiny = 1e-300
    t2 = max(lam_hat, 0.0) * (1.0 + 1e-12) + tiny
    for attempt in range(8):
        if _certify_grams(G, t2, err):
            return min(_up(math.sqrt(t2), 2), fallback)
        t2 = t2 * (1.0 + 10.0 ** (attempt - 10)) + err + tiny
    return fallback


def norm_upper(M: np.ndarray) -> float:
    """A certified upper bound on the spectral norm ``||M||_2`` (module doc).

    Parameters
    ----------
    M : numpy.ndarray
        float64 2-D array.

    Returns
    -------
    float
        ``t >= ||M||_2`` proved by a Cholesky test on ``t^2 I - M^T M`` (relative
        excess about ``1e-12``), or the Frobenius bound when the test fails.
    """
    M = np.asarray(M, dtype=np.float64)
    if M.size == 0 or not np.any(M):
        return 0.0
    if M.shape[0] < M.shape[1]:
        M = M.T
    m = M.shape[0]
    fro = _fro_up(M)
    G = M.T @ M
    lam = float(np.linalg.eigvalsh(G)[-1])
    err = _gamma(m) * fro * fro * (1.0 + 4 * _U)
    return _norm_upper_grams(G[None], lam, err, fro)


def _patterns(d: int) -> np.ndarray:
    """Column indices into ``[X, Y]`` of every sign pattern: ``j`` or ``d + j``, ``(2^d, d)``."""
    s = np.arange(1 << d)[:, None]
    bits = (s >> np.arange(d)[None, :]) & 1
    return np.arange(d)[None, :] + d * bits


def _max_pattern_norm(X: np.ndarray, Y: np.ndarray) -> float:
    """Certified ``max_s ||M_s||_2`` where column j of ``M_s`` is ``X[:, j]`` or ``Y[:, j]``."""
    d_out, d = X.shape
    cat = np.concatenate([X, Y], axis=1)
    if not np.any(cat):
        return 0.0
    fro = _fro_up(cat)
    Gc = cat.T @ cat
    idx = _patterns(d)
    G = Gc[idx[:, :, None], idx[:, None, :]]
    lam = float(np.linalg.eigvalsh(G)[:, -1].max())
    err = _gamma(d_out) * fro * fro * (1.0 + 4 * _U)
    return _norm_upper_grams(G, lam, err, fro)


# ----------------------------------------------------------------------------- the bound
@dataclass(frozen=True)
class _LayerTerms:
    delta: float     # >= max_s ||D_s||
    lip: float       # >= Lipschitz constant of the pair map
    w_norm: float    # >= ||W||
    bias_err: float  # >= ||beta - b||
    b_norm: float    # >= ||b||


def _layer_terms(W: np.ndarray, b: np.ndarray | None, Dp: np.ndarray, Dn: np.ndarray,
                 P: np.ndarray | None, Nm: np.ndarray | None, bias_err: float, slack: float,
                 method: str, nonnegative: bool) -> _LayerTerms:
    """Per-layer terms of the recursion; ``slack`` bounds ``||D_true - D_computed||_2``.

    ``nonnegative``: the layer's inputs are ReLU outputs (every layer but the
    first), for target and ticket alike, so only the all-positive sign pattern
    (and its faces) occurs: ``delta = ||P - W||`` and ``Lip = ||P||``.
    """
    w_norm = norm_upper(W)
    b_norm = 0.0 if b is None else _up(float(np.linalg.norm(b)) * (1 + _gamma(b.size + 1)), 2)
    Delta = np.maximum(np.abs(Dp), np.abs(Dn))
    delta = norm_upper(Delta)
    if method == "sign" and nonnegative:
        # y >= 0: B(y) - W y = (P - W) y; a submatrix (zero inputs) never has a larger norm
        delta = _up(min(delta, norm_upper(Dp)) + slack, 1)
        lip = _up(w_norm + delta, 1)
        if P is not None:
            lip = min(lip, _up(norm_upper(P) + slack, 1))
    elif method == "sign":
        delta = min(delta, norm_upper(np.concatenate([Dp, Dn], axis=1)))
        d_in = W.shape[1]
        exact = d_in <= SIGN_PATTERN_MAX_IN
        if exact:
            delta = min(delta, _max_pattern_norm(Dp, Dn))
        delta = _up(delta + slack, 1)
        lip = _up(w_norm + delta, 1)
        if exact and P is not None and Nm is not None:
            lip = min(lip, _up(_max_pattern_norm(P, -Nm) + slack, 1))
    else:
        delta = _up(delta + slack, 1)
        lip = _up(w_norm + delta, 1)
    return _LayerTerms(delta, lip, w_norm, bias_err, b_norm)


#: Largest number of ReLU patterns enumerated for the Lipschitz constant of a target suffix.
SUFFIX_PATTERN_MAX: int = 1 << 14
#: Largest number of floats the whole-path enumeration of :func:`certified_bound` holds (128 MB).
CHAIN_MAX_ELEMENTS: int = 1 << 24


def _suffix_lipschitz(weights: Sequence[np.ndarray]) -> list[float]:
    """Certified Lipschitz bounds of the target's suffixes ``T_l = F_{>l} o relu``.

    ``T_l(z) = W_{L-1} relu(... W_{l+1} relu(z))`` (``T_{L-1}`` is the identity)
    is piecewise linear with Jacobians ``W_{L-1} D_{L-2} ... W_{l+1} D_l``
    (``D_k`` diagonal 0/1 ReLU patterns), so its Lipschitz constant is at most
    the largest norm over all patterns; ``D_l = I`` maximises the last factor,
    so only the inner patterns are enumerated (up to :data:`SUFFIX_PATTERN_MAX`
    products; beyond, the product of the layers' norms). The computed products
    carry rounding ``|fl(M) - M| <= gamma_k |W_{L-1}| ... |W_{l+1}|`` (k the sum
    of the inner dimensions), whose Frobenius norm is added.
    """
    L = len(weights)
    norms = [norm_upper(W) for W in weights]
    out = [1.0] * L
    for l in range(L - 2, -1, -1):
        prod_bound = 1.0
        for k in range(l + 1, L):
            prod_bound = _up(prod_bound * norms[k], 1)
        inner = [weights[k].shape[1] for k in range(l + 2, L)]   # widths of D_{l+1}..D_{L-2}
        count = 1 << sum(inner) if sum(inner) < 62 else SUFFIX_PATTERN_MAX + 1
        if count > SUFFIX_PATTERN_MAX:
            out[l] = prod_bound
            continue
        Ms = weights[L - 1][None]
        absM = np.abs(weights[L - 1])
        kdim = 0
        for k in range(L - 2, l, -1):
            d = weights[k].shape[0]
            bits = ((np.arange(1 << d)[:, None] >> np.arange(d)[None, :]) & 1).astype(float)
            Ms = (Ms[:, None, :, :] * bits[None, :, None, :]).reshape(-1, Ms.shape[1], d)
            Ms = Ms @ weights[k]
            absM = absM @ np.abs(weights[k])
            kdim += d
        err = _fro_up(_gamma(kdim + 2) * absM * (1.0 + 8 * _U)) if kdim else 0.0
        if Ms.shape[1] < Ms.shape[2]:
            Ms = np.swapaxes(Ms, 1, 2)
        fro = max(_fro_up(M) for M in Ms)
        G = np.swapaxes(Ms, 1, 2) @ Ms
        lam = float(np.linalg.eigvalsh(G)[:, -1].max())
        gerr = _gamma(Ms.shape[1]) * fro * fro * (1.0 + 4 * _U)
        t = _norm_upper_grams(G, lam, gerr, fro)
        out[l] = min(prod_bound, _up(t + err, 1))
    return out


def _suffix_jacobians(weights: Sequence[np.ndarray], l: int, limit: int
                      ) -> tuple[np.ndarray, float] | None:
    """Every pattern Jacobian ``W_{L-1} D_{L-2} ... W_{l+1} D_l`` of ``T_l``, and their rounding.

    Returns ``(J, err)`` with ``J`` of shape ``(k, d_L, d_{l+1})`` and ``err`` a
    bound on the Frobenius norm of ``fl(J_p) - J_p`` for every p; None when there
    are more than ``limit`` patterns. ``T_{L-1}`` (the identity) gives ``J = I``.
    """
    L = len(weights)
    widths = [weights[k].shape[0] for k in range(l, L - 1)]     # sizes of D_l..D_{L-2}
    if sum(widths) >= 62 or (1 << sum(widths)) > limit:
        return None
    if l == L - 1:
        d = weights[l].shape[0]
        return np.eye(d)[None], 0.0
    Ms = weights[L - 1][None]
    absM = np.abs(weights[L - 1])
    kdim = 0
    for k in range(L - 2, l - 1, -1):
        d = weights[k].shape[0]
        bits = ((np.arange(1 << d)[:, None] >> np.arange(d)[None, :]) & 1).astype(float)
        Ms = (Ms[:, None, :, :] * bits[None, :, None, :]).reshape(-1, Ms.shape[1], d)
        if k > l:
            Ms = Ms @ weights[k]
            absM = absM @ np.abs(weights[k])
            kdim += weights[k].shape[1]
    err = _fro_up(_gamma(kdim + 2) * absM * (1.0 + 8 * _U)) if kdim else 0.0
    return Ms, err


def _batch_norm_upper(Ms: np.ndarray) -> float:
    """Certified ``max_k ||Ms[k]||_2`` for a batch of small matrices (exact products assumed)."""
    if Ms.size == 0 or not np.any(Ms):
        return 0.0
    if Ms.shape[1] < Ms.shape[2]:
        Ms = np.swapaxes(Ms, 1, 2)
    sq = float(np.max(np.sum(Ms * Ms, axis=(1, 2))))
    fro = _up(math.sqrt(sq * (1.0 + _gamma(Ms[0].size + 1))), 2)
    G = np.swapaxes(Ms, 1, 2) @ Ms
    lam = float(np.linalg.eigvalsh(G)[:, -1].max())
    gerr = _gamma(Ms.shape[1]) * fro * fro * (1.0 + 4 * _U)
    return _norm_upper_grams(G, lam, gerr, fro)


def _filtered_delta(weights: Sequence[np.ndarray], l: int, Dp: np.ndarray, Dn: np.ndarray,
                    nonnegative: bool, slack: float, delta: float, lip_suffix: float) -> float:
    """Bound on ``sup ||T_l(W y + D_s y) - T_l(W y)|| / ||y||`` over the layer's input signs.

    ``T_l(a) - T_l(b) = Jbar (a - b)`` with ``Jbar`` in the convex hull of the
    pattern Jacobians ``J_p`` of ``T_l`` (piecewise linear), so the term is at
    most ``max_{p, s} ||J_p D_s||`` times ``||y||`` (``s`` ranges over the input
    sign patterns; for nonnegative inputs only ``D_s = P - W``). Enumerated up
    to :data:`SUFFIX_PATTERN_MAX` products; otherwise ``Lip(T_l) delta``.
    Computed products carry rounding, bounded and added.
    """
    coarse = _up(lip_suffix * delta, 1)
    d_in = Dp.shape[1]
    n_sign = 1 if nonnegative else (1 << d_in if d_in <= SIGN_PATTERN_MAX_IN else None)
    if n_sign is None:
        return coarse
    got = _suffix_jacobians(weights, l, max(1, SUFFIX_PATTERN_MAX // n_sign))
    if got is None:
        return coarse
    J, errJ = got
    if nonnegative:
        Ds = Dp[None]
    else:
        idx = _patterns(d_in)
        Ds = np.concatenate([Dp, Dn], axis=1)[:, idx].transpose(1, 0, 2)   # (2^d, d_out, d_in)
    prods = (J[:, None] @ Ds[None]).reshape(-1, J.shape[1], d_in)
    t = _batch_norm_upper(prods)
    # |J_true D_true - fl(J D)| <= errJ ||D|| + ||J|| slack + gamma |J| |D|
    absJ = np.abs(J).max(axis=0)
    absD = np.abs(Ds).max(axis=0)
    err = errJ * delta + _up(lip_suffix * slack, 1) + _fro_up(
        _gamma(J.shape[2] + 2) * (absJ @ absD) * (1.0 + 4 * _U))
    return min(coarse, _up(t + err, 2))


def _diag_patterns(d: int) -> np.ndarray:
    """All ``2^d`` diagonal 0/1 matrices (ReLU patterns), ``(2^d, d, d)``."""
    bits = ((np.arange(1 << d)[:, None] >> np.arange(d)[None, :]) & 1).astype(float)
    return bits[:, :, None] * np.eye(d)[None]


def _chain_bound(factors: Sequence[tuple[np.ndarray, float, float]], limit: int) -> float | None:
    """Certified ``max ||F_1 F_2 ... F_n||_2`` over all choices, each ``F_i`` from a set.

    ``factors[i] = (set_i, norm_i, slack_i)``: ``set_i`` of shape ``(k_i, a_i, b_i)``
    (computed matrices), ``norm_i`` an upper bound on the norms of the exact
    matrices they stand for and ``slack_i`` one on ``||exact - computed||_2``.
    None when there are more than ``limit`` products. The bound adds the
    perturbation ``prod (norm_i + 2 slack_i) - prod norm_i`` and the rounding of
    the products, ``gamma_k || |F_1| ... |F_n| ||_F`` (k the sum of the inner
    dimensions), to the certified norms of the computed products.
    """
    count = 1
    rows = factors[0][0].shape[1]
    widest = max(f.shape[2] for f, _, _ in factors)
    for f, _, _ in factors:
        count *= f.shape[0]
        # the enumeration holds count products of at most rows x widest floats
        if count > limit or count * rows * widest > CHAIN_MAX_ELEMENTS:
            return None
    acc = factors[0][0]
    absacc = np.abs(factors[0][0]).max(axis=0)
    kdim = 0
    for f, _, _ in factors[1:]:
        acc = (acc[:, None] @ f[None]).reshape(-1, acc.shape[1], f.shape[2])
        absacc = absacc @ np.abs(f).max(axis=0)
        kdim += f.shape[1]
    t = _batch_norm_upper(acc)
    hi = lo = 1.0
    for _, n, sl in factors:
        hi = _up(hi * (n + 2.0 * sl), 2)
        lo = lo * n * (1.0 - 4 * _U)
    err = _up(max(hi - lo, 0.0), 2) + _fro_up(_gamma(kdim + 2) * absacc * (1.0 + 8 * _U))
    return _up(t + err, 1)


def _chain_terms(weights: Sequence[np.ndarray], Ps: Sequence[np.ndarray],
                 Ns: Sequence[np.ndarray], terms: Sequence[_LayerTerms],
                 slacks: Sequence[float], lips: Sequence[float], radius: float) -> float | None:
    """Bias-free bound ``R sum_l max_{p, q} ||J_p D_l K_q||`` (whole-path sign patterns).

    In the hybrid argument of :func:`_telescoping`, term l is
    ``Jbar D_l yhat_l`` with ``Jbar`` in the hull of the target suffix's pattern
    Jacobians ``J_p`` and, for a bias-free ticket, ``yhat_l = K_q x`` exactly,
    where ``K_q = D_{q_{l-1}} P_{l-1} ... D_{q_1} P_1 D_{q_0} J_{0,s}`` is the
    ticket prefix's Jacobian on the region of x (``J_{0,s}``: columns of ``P_0``
    or ``-N_0`` by the sign of x; later pairs see nonnegative inputs, so they
    act as ``P_k``), and ``D_l = P_l - W_l`` (``D_s`` of the input signs for
    l = 0). Every pattern is enumerated (None past :data:`SUFFIX_PATTERN_MAX`
    products per layer).
    """
    L = len(weights)
    d0 = weights[0].shape[1]
    if d0 > SIGN_PATTERN_MAX_IN:
        return None
    idx = _patterns(d0)
    total = 0.0
    for l in range(L):
        got = _suffix_jacobians(weights, l, SUFFIX_PATTERN_MAX)
        if got is None:
            return None
        J, errJ = got
        factors: list[tuple[np.ndarray, float, float]] = [(J, lips[l], errJ)]
        Dp = Ps[l] - weights[l]
        if l == 0:
            Dn = -(Ns[0] + weights[0])
            Ds = np.concatenate([Dp, Dn], axis=1)[:, idx].transpose(1, 0, 2)
            factors.append((Ds, terms[0].delta, slacks[0]))
        else:
            factors.append((Dp[None], terms[l].delta, slacks[l]))
            for k in range(l - 1, 0, -1):
                factors.append((_diag_patterns(weights[k].shape[0]), 1.0, 0.0))
                factors.append((Ps[k][None], terms[k].lip, slacks[k]))
            factors.append((_diag_patterns(weights[0].shape[0]), 1.0, 0.0))
            J0 = np.concatenate([Ps[0], -Ns[0]], axis=1)[:, idx].transpose(1, 0, 2)
            factors.append((J0, terms[0].lip, slacks[0]))
        b = _chain_bound(factors, SUFFIX_PATTERN_MAX * (1 << d0))
        if b is None:
            return None
        total = _up(total + b * radius, 2)
    return total


def _telescoping(terms: Sequence[_LayerTerms], lips: Sequence[float], deltas: Sequence[float],
                 beta_norms: Sequence[float], radius: float) -> float:
    """``sum_l (delta'_l rhat_l + Lip(T_l) ||beta_l - b_l||)``: the hybrid-argument bound.

    ``g - f = sum_l [T_l(B_l(yhat)) - T_l(W_l yhat + b_l)]`` with ``yhat`` the
    ticket's activation entering target layer l (the two networks agree up to
    layer l - 1 of the ticket, then differ in layer l only, then follow the
    target); ``delta'_l`` from :func:`_filtered_delta`; ``||yhat|| <= rhat_l`` with
    ``rhat_0 = R`` and ``rhat_{l+1} = min(Lip_l rhat_l + ||beta_l||, r_{l+1} + e_{l+1})``.
    """
    total, rhat, e, r = 0.0, radius, 0.0, radius
    for t, lip_suffix, dprime, bnorm in zip(terms, lips, deltas, beta_norms):
        total = _up(total + dprime * rhat + lip_suffix * t.bias_err, 4)
        e = _up(t.lip * e + t.delta * r + t.bias_err, 4)
        r = _up(t.w_norm * r + t.b_norm, 4)
        rhat = min(_up(t.lip * rhat + bnorm, 3), _up(r + e, 1))
    return total


def _recursion(terms: Sequence[_LayerTerms], radius: float, method: str) -> tuple[float, float]:
    """``(e_L, r_L)``: the error bound and the target's activation bound (rounded up)."""
    e, r = 0.0, radius
    for t in terms:
        if method == "sign":
            e = t.lip * e + t.delta * r + t.bias_err
        else:
            e = t.delta * (r + e) + t.w_norm * e + t.bias_err
        e = _up(e, 4)
        r = _up(t.w_norm * r + t.b_norm, 4)
    return e, r


def propagated_error_bound(
    weights: Sequence[np.ndarray],
    pos_errors: Sequence[np.ndarray],
    neg_errors: Sequence[np.ndarray],
    *,
    biases: Sequence[np.ndarray | None] | None = None,
    bias_errors: Sequence[np.ndarray | None] | None = None,
    radius: float = 1.0,
    method: Literal["sign", "propagation"] = "sign",
) -> float:
    """The recursion of :func:`certified_bound` from signed per-weight errors, no ticket needed.

    For target layers ``W_l`` whose pairs realise ``P_l = W_l + pos_errors[l]``
    and ``N_l = -W_l - neg_errors[l]`` (so ``D_s`` takes column j from
    ``pos_errors`` when ``y_j > 0`` and from ``neg_errors`` otherwise), returns
    the bound on ``sup_{||x|| <= radius} ||f(x) - g(x)||`` in exact arithmetic
    (rounded up, without the float-evaluation slack of :func:`certified_bound`).
    Theorem checks use it to scan widths without building tickets.

    Parameters
    ----------
    weights : sequence of numpy.ndarray
        Target weights ``(d_out, d_in)`` per layer.
    pos_errors, neg_errors : sequence of numpy.ndarray
        Signed errors of the positive part (``P - W``) and of the negative part
        (``-(N + W)``), same shapes as the weights. For subset sums whose totals
        are ``T+`` (target ``W``) and ``T-`` (target ``-W``): ``P = T+``,
        ``N = T-``, so ``pos = T+ - W`` and ``neg = -(T- + W)``.
    biases, bias_errors : sequence of (numpy.ndarray or None), optional
        Target biases and the realised ``beta - b`` per layer.
    radius : float, default 1.0
    method : {"sign", "propagation"}, default "sign"

    Returns
    -------
    float
    """
    radius = check_radius(radius)
    _validate.one_of("method", method, CERTIFY_METHODS)
    L = len(weights)
    if len(pos_errors) != L or len(neg_errors) != L:
        raise ShapeError(f"`pos_errors` and `neg_errors` must have one array per layer ({L}); "
                         f"received {len(pos_errors)} and {len(neg_errors)}")
    terms = []
    for l in range(L):
        W = np.asarray(weights[l], dtype=np.float64)
        Dp = np.asarray(pos_errors[l], dtype=np.float64)
        Dn = np.asarray(neg_errors[l], dtype=np.float64)
        if Dp.shape != W.shape or Dn.shape != W.shape:
            raise ShapeError(f"errors of layer {l} must have shape {W.shape}; received "
                             f"{Dp.shape} and {Dn.shape}")
        b = None if biases is None else biases[l]
        be = None if bias_errors is None else bias_errors[l]
        bias_err = 0.0 if be is None else _up(float(np.linalg.norm(be)), 2)
        terms.append(_layer_terms(W, b, Dp, Dn, W + Dp, -(W + Dn), bias_err, 0.0, method,
                                  l > 0))
    e = _recursion(terms, radius, method)[0]
    if method == "sign":
        ws = [np.asarray(w, dtype=np.float64) for w in weights]
        lips = _suffix_lipschitz(ws)
        dprime = [_filtered_delta(ws, l, np.asarray(pos_errors[l], dtype=np.float64),
                                  np.asarray(neg_errors[l], dtype=np.float64), l > 0, 0.0,
                                  terms[l].delta, lips[l]) for l in range(L)]
        betas = [_up(t.b_norm + t.bias_err, 1) for t in terms]
        e = min(e, _telescoping(terms, lips, dprime, betas, radius))
        if biases is None or all(b is None for b in biases):
            chain = _chain_terms(ws, [w + np.asarray(p) for w, p in zip(ws, pos_errors)],
                                 [-(w + np.asarray(q)) for w, q in zip(ws, neg_errors)],
                                 terms, [0.0] * L, lips, radius)
            if chain is not None:
                e = min(e, chain)
    return e


def _abs_norm_upper(M: np.ndarray) -> float:
    """Upper bound on ``|| |M| ||_2`` (for the small rounding terms): the certified norm."""
    return norm_upper(np.abs(M))


def certified_bound(
    target: MLP,
    ticket: Ticket,
    *,
    radius: float = 1.0,
    method: Literal["sign", "propagation"] = "sign",
    check_target: bool = True,
) -> float:
    """A rigorous upper bound on ``sup_{||x|| <= radius} ||f(x) - g(x)||_2`` (module doc).

    Also an upper bound on every float64 evaluation of that error that slth
    makes at a point of the ball (:func:`slth.evaluate.approximation_error`).

    Parameters
    ----------
    target : MLP
        The target f.
    ticket : Ticket
        A ticket in the two-layer block form of the MLP constructions; its
        structure is verified (:func:`check_structure`) and its effective
        weights recomputed from the source and the masks.
    radius : float, default 1.0
        Radius of the input ball.
    method : {"sign", "propagation"}, default "sign"
        ``"sign"``: Lipschitz and error terms maximised over ReLU sign patterns
        (exact over all patterns for layers of at most
        :data:`SIGN_PATTERN_MAX_IN` inputs). ``"propagation"``: the classical
        error propagation of Pensia et al. (2020), never tighter.
    check_target : bool, default True
        Raise if the ticket records the fingerprint of another target.

    Returns
    -------
    float

    Raises
    ------
    InputError
        Not an MLP/Ticket, a ticket not of the block form or of another
        construction's layout than it claims, a ticket built for another target,
        a bad ``radius`` or ``method``.
    ShapeError
        Target and ticket do not match.
    """
    radius = check_radius(radius)
    _validate.one_of("method", method, CERTIFY_METHODS)
    eff = effective_layers(target, ticket, check_target=check_target)
    terms = []
    phi_f = phi_g = 0.0
    r = radius
    rounding: list[tuple[float, float, float, int, float, int]] = []
    slacks: list[float] = []
    for (W, b), E in zip(zip(target.weights, target.biases), eff):
        Dp = E.P - W
        Dn = -(E.N + W)
        m = E.hidden
        # entrywise bound on |computed - exact| of Dp, Dn and beta (module doc)
        g = 2.0 * _gamma(m + 1)
        errP = g * E.abs_P + _U * np.abs(Dp)
        errN = g * E.abs_N + _U * np.abs(Dn)
        slack = _fro_up(np.maximum(errP, errN))
        slacks.append(slack)
        bias = np.zeros(W.shape[0]) if b is None else b
        dbeta = E.beta - bias
        bias_err = _up(float(np.linalg.norm(dbeta)) * (1 + _gamma(dbeta.size + 1)), 2)
        bias_err = _up(bias_err + _fro_up(g * E.abs_beta + _U * np.abs(dbeta)), 1)
        terms.append(_layer_terms(W, b, Dp, Dn, E.P, E.N, bias_err, slack, method,
                                  len(terms) > 0))
        abs_pair = _abs_norm_upper(np.concatenate([E.abs_P, E.abs_N], axis=1))
        abs_w = _abs_norm_upper(W)
        rounding.append((abs_w, abs_pair, float(np.linalg.norm(bias)),
                         W.shape[1], float(np.linalg.norm(E.abs_beta)), m))
    e, _ = _recursion(terms, radius, method)
    if method == "sign":
        betas = [_up(float(np.linalg.norm(E.beta)) * (1 + _gamma(E.beta.size + 1)) + t.bias_err, 2)
                 for E, t in zip(eff, terms)]
        lips = _suffix_lipschitz(target.weights)
        dprime = [_filtered_delta(target.weights, l, E.P - target.weights[l],
                                  -(E.N + target.weights[l]), l > 0, slacks[l], terms[l].delta,
                                  lips[l]) for l, E in enumerate(eff)]
        e = min(e, _telescoping(terms, lips, dprime, betas, radius))
        if not target.has_biases and not any(np.any(E.beta) for E in eff):
            chain = _chain_terms(target.weights, [E.P for E in eff], [E.N for E in eff], terms,
                                 slacks, lips, radius)
            if chain is not None:
                e = min(e, chain)
    # float evaluation slack of both networks (module doc)
    e_l = 0.0
    for t, (abs_w, abs_pair, bn, k, bb, m) in zip(terms, rounding):
        phi_f = _up(t.w_norm * phi_f + _gamma(k + 2) * (abs_w * (r + phi_f) + bn), 6)
        phi_g = _up(t.lip * phi_g
                    + _gamma(m + 3) * (abs_pair * (r + e_l + phi_g) + bb + bn), 8)
        e_l = _up(t.lip * e_l + t.delta * r + t.bias_err, 4) if method == "sign" else _up(
            t.delta * (r + e_l) + t.w_norm * e_l + t.bias_err, 4)
        r = _up(t.w_norm * r + t.b_norm, 4)
    d_out = target.widths[-1]
    total = (e + phi_f + phi_g) * (1.0 + _gamma(d_out + 3))
    return _up(total, 3)
