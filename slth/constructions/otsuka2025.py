"""Otsuka, Chijiwa, Okoshi, Fujiki, Takeuchi, Motomura (AAAI-26), Theorem 3 and its blocks.

"The Strong Lottery Ticket Hypothesis for Multi-Head Attention Mechanisms"
(arXiv 2511.04217). A target multi-head attention (H heads, input width d1,
output width d2, per-head spectral norms of W_Q W_K^T / sqrt(d_K) and
W_V W_O at most 1, inputs of norm <= alpha) is approximated, for every binary
attention mask and every sequence length T, by masking a random attention of
query/key width n_K and value width n_V per head whose query and key weights
are i.i.d. U[-n_K^(1/4), n_K^(1/4)] and whose value and output weights are
i.i.d. U[-1, 1], when n_K >= d1 C log(8 H alpha^3 d1^(3/2) / eps) and
n_V >= d1 C log(2 H alpha d1 sqrt(d2) / eps) (:func:`slth.bounds.otsuka2025_widths`).

The construction (proof of Theorem 3: the linear two-for-one lemma, Lemma 4/7)
------------------------------------------------------------------------------
Per head, the proof never approximates W_Q, W_K, W_V or W_O themselves: the
attention depends on them only through the merged matrices
``qk = score_scale * Wq^T Wk`` (scores ``x qk x^T``) and ``vo = Wv^T Wo^T``
(:func:`slth.nets.attention.merged_matrices`), and each merged matrix is
approximated by the product of two pruned random factors, with no ReLU and so
no sign split:

* the first factor (the source's ``q_weight`` rows of the head, resp.
  ``v_weight``) is pruned block-diagonally: its ``n`` hidden units are split
  into ``d1`` blocks of ``m = n // d1`` units (the ``n - m d1`` left over are
  pruned away); unit j of block a keeps only its weight from input a;
* the second factor (``k_weight``, resp. ``out_weight``) keeps, for each entry
  ``(a, b)`` of the merged matrix, the edges of a subset of block a's units:
  the subset whose products ``score_scale_S * q[j, a] * k[j, b]`` (resp.
  ``v[j, a] * o[b, j]``) sum closest to the target entry, one random
  subset-sum instance of m candidates per entry (Lueker's theorem on products
  of uniforms, as in Pensia et al. 2020), all of a head's instances in ONE
  :func:`slth.subset_sum.solve_batch` call;
* a first-factor weight is kept when its unit is used by some entry.

The source's score scale is ``1 / sqrt(n_K)``: with query/key entries
U[-n_K^(1/4), n_K^(1/4)], a candidate ``q k / sqrt(n_K)`` is a product of two
U[-1, 1] variables, as the theorem's initialisation intends. The source keeps
the target's attention mask; nothing is ever redrawn and every kept entry is
the source's, bit for bit.

Transformer blocks (the paper's block theorem, normalisation-free)
-----------------------------------------------------------------
``Blk(x) = F(A + x) + A + x`` with ``A = Attn(x)`` (in slth,
``Residual([MultiHeadAttention])`` then ``Residual([Dense, ReLU, ..., Dense])``,
:func:`slth.nets.attention.transformer_block`). The attention is pruned as
above and the token-wise ReLU MLP F by Pensia et al.'s construction
(:mod:`slth.constructions.pensia2020`, depth doubled, ``n_ff`` units per sign
part and input coordinate; biases through constant units); the residual paths
are kept. A target may be any sequence of ``MultiHeadAttention``,
``Residual([MultiHeadAttention])`` and ``Residual([Dense, ReLU, ..., Dense])``.

Tolerances (eps mode)
---------------------
The extracted paper text drops square-root signs, so slth re-derives what it
implements. With per-token input norms <= alpha, the error of one attention
token output is at most ``sum_h [||vo_h|| alpha (e^(2 e_h) - 1) + alpha
||Delta vo_h||]`` with ``e_h = alpha^2 ||Delta qk_h||`` (the softmax
perturbation lemma, Lemma 5/8, appendix form without the sqrt(d1) of an
entrywise alpha). slth solves every qk entry to ``eps / (8 H alpha^3
d1^(3/2))`` and every vo entry to ``eps / (2 H alpha d1 sqrt(d2))``, the
tolerances whose logarithms the theorem's widths contain; they are at least as
strict as the derivation needs (``d1^(3/2) >= d1`` and ``d1 sqrt(d2) >=
sqrt(d1 d2)``), so each half contributes at most eps / 2. In a transformer block
the attention gets ``eps / 4`` (its error passes twice: directly and through
F, whose Lipschitz constant is at most 1 when F's layers have spectral norm
<= 1, recorded in ``params["assumptions"]``) and F gets ``eps / 2`` at its
input radius ``alpha (1 + H)``. This split is slth's, and it is sized for
inputs of norm alpha: a later block of a stack sees larger inputs (up to about
``alpha (1 + H)(1 + ||F||)`` per block), so eps per block is not guaranteed past
the first; the certificate measures what a stack achieves.

Certificate
-----------
:func:`certified_bound` recomputes the merged matrices from the kept entries
and propagates per-token errors through the network (the softmax lemma for the
scores, operator norms bounded by a Cholesky test, Pensia's MLP certifier for
each F at its input radius); the bound holds for every sequence length and
every mask, which is why the error does not grow with T.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import bounds
from .._memory import check_memory
from .._rng import RNGLike, as_generator
from ..certify import _fro_up, _gamma, _up, norm_upper
from ..errors import ConstructionError, InputError, LimitError, ShapeError, format_value
from ..nets.attention import MultiHeadAttention, merged_matrices
from ..nets.base import Architecture, Network, Residual
from ..nets.layers import Dense, ReLU
from ..nets.mlp import MLP
from ..sources import VirtualMLP, VirtualNetwork, VirtualSource
from ..subset_sum import EXACT_MAX_N, solve_batch
from ..subset_sum.solve import _solve_batch_bytes
from ..ticket import Ticket
from ._common import check_eps, check_on_failure, check_positive, draw_network

__all__ = ["NAME", "PAPER", "certified_bound", "construct", "merged_errors", "qk_law",
           "recorded_errors", "sequence_forward", "source_architecture", "token_error_bound",
           "tolerances"]

#: Value of :attr:`slth.Ticket.construction` for tickets built here.
NAME = "otsuka2025"
PAPER = ("Otsuka, Chijiwa, Okoshi, Fujiki, Takeuchi, Motomura, The Strong Lottery Ticket "
         "Hypothesis for Multi-Head Attention Mechanisms, AAAI-26 (arXiv 2511.04217), Theorem 3 "
         "(linear two-for-one Lemma 4/7, softmax perturbation Lemma 5/8) and the transformer "
         "block theorem")
_UNIT = "uniform[-1,1]"


# ----------------------------------------------------------------------------- the target
@dataclass(frozen=True)
class _Item:
    """One top-level target layer: ``kind`` in {"mha", "res_mha", "res_ff"}."""

    name: str          # the top-level layer name (path "layers.<name>")
    kind: str
    layer: Any         # the MultiHeadAttention, or the Residual of F
    prefix: str        # parameter prefix of the MHA ("layers.<name>." or ".body.<b>.")


def _plan(target: Any) -> tuple[list[_Item], tuple[int, int]]:
    if not isinstance(target, Network):
        raise InputError(f"`target` must be a slth Network of attention layers and residual "
                         f"blocks; received {format_value(target)} of type "
                         f"{type(target).__name__}")
    shape = tuple(target.input_shape or ())
    if len(shape) != 2:
        raise ShapeError(f"`target` must take token sequences of shape (T, d); its input shape "
                         f"is {shape}")
    items: list[_Item] = []
    for name, layer in target.layers:
        path = f"layers.{name}"
        if isinstance(layer, MultiHeadAttention):
            items.append(_Item(name, "mha", layer, f"{path}."))
            continue
        if isinstance(layer, Residual):
            body = layer.body
            if len(body) == 1 and isinstance(body[0][1], MultiHeadAttention):
                items.append(_Item(name, "res_mha", body[0][1], f"{path}.body.{body[0][0]}."))
                continue
            kinds = [type(lay) for _, lay in body]
            alternating = (len(body) % 2 == 1 and all(
                k is (Dense if i % 2 == 0 else ReLU) for i, k in enumerate(kinds)))
            if alternating:
                items.append(_Item(name, "res_ff", layer, f"{path}.body."))
                continue
        raise InputError(
            f"{NAME}: target layer `{path}` ({layer!r}) is outside the construction: it prunes "
            "MultiHeadAttention layers, Residual([MultiHeadAttention]) and token-wise "
            "Residual([Dense, ReLU, ..., Dense]) blocks (the paper's transformer blocks)")
    for it in items:
        if it.kind != "res_ff" and it.layer.bias:
            raise InputError(
                f"{NAME}: attention `{it.prefix[:-1]}` has projection biases; Theorem 3's "
                "attention has none (the merged matrices W_QK, W_VO have no place for them)")
    return items, (int(shape[0]), int(shape[1]))


def _mha_path(it: _Item) -> str:
    return it.prefix[:-1]


def _ff_mlp(target: Network, it: _Item) -> MLP:
    """F of a residual feed-forward block as an MLP (its Dense layers in order)."""
    ws, bs = [], []
    for bname, lay in it.layer.body:
        if isinstance(lay, Dense):
            ws.append(np.asarray(target.params[f"{it.prefix}{bname}.weight"]))
            bs.append(np.asarray(target.params[f"{it.prefix}{bname}.bias"]) if lay.bias
                      else None)
    return MLP(ws, bs)


# ----------------------------------------------------------------------------- the source
def _check_width(value: Any, name: str, low: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < low:
        raise InputError(f"`{name}` must be an int >= {low}; received {format_value(value)}")
    return int(value)


def qk_law(n_qk: int) -> str:
    """The law of the source's query and key weights: ``U[-n_qk^(1/4), n_qk^(1/4)]`` (Thm 3).

    Parameters
    ----------
    n_qk : int
        Query/key width per head, >= 1.

    Returns
    -------
    str
        A law name for :mod:`slth.sources` (``"uniform[-a,a]"``, ``a = n_qk^(1/4)``).
    """
    a = float(_check_width(n_qk, "n_qk", 1)) ** 0.25
    return f"uniform[{-a!r},{a!r}]"


def _ff_source_layers(f: MLP, n_ff: int) -> list[Any]:
    from .layouts.pair_dense import source_widths

    w = source_widths(f, [n_ff] * f.depth)
    layers: list[Any] = []
    for s in range(len(w) - 1):
        layers.append(Dense(w[s], w[s + 1], bias=bool(s % 2 == 0 and f.biases[s // 2]
                                                       is not None)))
        if s < len(w) - 2:
            layers.append(ReLU())
    return layers


def source_architecture(target: Network, n_qk: int, n_v: int, n_ff: int | None = None
                        ) -> tuple[Architecture, dict[str, str]]:
    """The source's layers and each parameter's law, for a target and the widths.

    Parameters
    ----------
    target : Network
        As in :func:`construct`.
    n_qk, n_v : int
        Query/key and value width per head of every source attention (>= d1
        each, so every input coordinate has a block of at least one unit).
    n_ff : int, optional
        Units per sign part and input coordinate of every source F (Pensia et
        al.'s ``n``); required when the target has feed-forward blocks.

    Returns
    -------
    (Architecture, dict of str to str)
        The source architecture (the target's top-level names; attention
        ``MultiHeadAttention(d1, d2, H, n_qk, n_v, scale=1/sqrt(n_qk),
        mask=target's)``; each F replaced by its Pensia source layers), and the
        law of every parameter (:func:`qk_law` for query/key weights,
        ``"uniform[-1,1]"`` otherwise).
    """
    items, (T, d) = _plan(target)
    layers: list[tuple[str, Any]] = []
    laws: dict[str, str] = {}
    for it in items:
        if it.kind == "res_ff":
            if n_ff is None:
                raise InputError("`n_ff` must be given: the target has feed-forward blocks "
                                 f"(layer `layers.{it.name}`)")
            n_ff = _check_width(n_ff, "n_ff", 1)
            body = _ff_source_layers(_ff_mlp(target, it), n_ff)
            layers.append((it.name, Residual(body)))
            continue
        t = it.layer
        for nm, v in (("n_qk", n_qk), ("n_v", n_v)):
            _check_width(v, nm, t.d_in)
        src = MultiHeadAttention(t.d_in, t.d_out, t.heads, int(n_qk), int(n_v),
                                 scale=1.0 / math.sqrt(n_qk), mask=t.mask)
        layers.append((it.name, Residual([src]) if it.kind == "res_mha" else src))
    arch = Architecture(layers, input_shape=(T, d))
    for key, (_path, lay, local) in ((k, arch.param_owner(k)) for k in arch.param_specs()):
        laws[key] = qk_law(lay.d_qk) if isinstance(lay, MultiHeadAttention) \
            and local in ("q_weight", "k_weight") else _UNIT
    return arch, laws


def _source_mha_path(target_item: _Item) -> str:
    # the source keeps the target's names: the same prefix
    return target_item.prefix


def _read(source: Any, name: str, flat: np.ndarray) -> np.ndarray:
    if isinstance(source, VirtualNetwork):
        return source.entries(name, flat)
    return np.asarray(source.params[name]).reshape(-1)[flat]


@dataclass(frozen=True)
class _Engine:
    """Where entries are computed and subset sums solved: numba (CPU) or a torch device."""

    backend: str = "numba"
    device: Any = None

    def read(self, source: Any, name: str, flat: np.ndarray) -> np.ndarray:
        if self.backend == "torch" and isinstance(source, VirtualNetwork):
            from ..torch._philox import source_entries

            return source_entries(source, name, flat, device=self.device).cpu().numpy()
        return _read(source, name, flat)

    def solve(self, values: np.ndarray, targets: np.ndarray, tol: float | None, what: str
              ) -> tuple[np.ndarray, np.ndarray]:
        _B, m = values.shape
        if (tol is None or self.backend == "torch") and m > EXACT_MAX_N:
            raise LimitError(f"exact solving takes instances of at most {EXACT_MAX_N} "
                             f"candidates; {what} has blocks of {m} units: give `eps` or "
                             f"`weight_eps`{' (and the numba backend)' if tol else ''}")
        res = solve_batch(values, targets, eps=tol, backend=self.backend, device=self.device)
        return res.masks, res.errors


def _engine(backend: Any, device: Any) -> _Engine:
    if backend not in ("numba", "torch"):
        raise InputError(f"`backend` must be 'numba' or 'torch'; received {format_value(backend)}")
    if backend == "numba" and device is not None:
        raise InputError(f"`device` is for backend='torch' only; received device "
                         f"{format_value(device)} with backend='numba'")
    return _Engine(backend, device)


def _check_source(source: Any, arch: Architecture) -> None:
    if not isinstance(source, (Network, VirtualNetwork)):
        raise InputError(f"`source` must be a slth Network or VirtualNetwork; received "
                         f"{format_value(source)}")
    got = source.architecture()
    want = arch.architecture()
    if got != want:
        raise ShapeError(
            f"`source` must have the layout's architecture for these widths: {want}; received "
            f"{got}")


# ----------------------------------------------------------------------------- tolerances
def tolerances(d1: int, d2: int, heads: int, alpha: float, eps: float, *,
               block: bool = False) -> tuple[float, float]:
    """Per-entry tolerances of the merged qk and vo matrices (module docstring).

    Parameters
    ----------
    d1, d2, heads : int
    alpha : float
        Bound on the per-token input norms.
    eps : float
        Accuracy of the attention (``block=False``) or of the transformer block.
    block : bool, default False
        In a transformer block the attention gets ``eps / 4``.

    Returns
    -------
    (float, float)
        ``(eps' / (8 H alpha^3 d1^(3/2)), eps' / (2 H alpha d1 sqrt(d2)))`` with
        ``eps' = eps`` or ``eps / 4``.
    """
    d1 = _check_width(d1, "d1", 1)
    d2 = _check_width(d2, "d2", 1)
    heads = _check_width(heads, "heads", 1)
    alpha = check_positive("alpha", alpha)
    eps = check_positive("eps", eps)
    e = eps / 4.0 if block else eps
    return (e / (8.0 * heads * alpha ** 3 * d1 ** 1.5),
            e / (2.0 * heads * alpha * d1 * math.sqrt(d2)))


# ----------------------------------------------------------------------------- realisation
@dataclass
class _Tally:
    instances: int = 0
    failed: int = 0
    worst: float = 0.0


def _realise_factor_pair(source: Any, first: str, second: str, first_rows: int, d1: int,
                         d_out: int, h: int, n: int, target: np.ndarray, scale: float,
                         second_transposed: bool, tol: float | None, tally: _Tally,
                         what: str, engine: _Engine) -> tuple[np.ndarray, np.ndarray]:
    """Kept flat indices of (first, second) for head h of one merged matrix.

    ``first`` has shape ``(H n, d1)`` (rows = hidden units); ``second`` is
    ``(H n, d_out)`` (k_weight: rows = units) or, ``second_transposed``,
    ``(d_out, H n)`` (out_weight: columns = units).
    """
    m = n // d1
    a = np.repeat(np.arange(d1, dtype=np.int64), m)            # block of each used unit
    units = h * n + np.arange(d1 * m, dtype=np.int64)           # global hidden rows
    f_flat = units * d1 + a
    f_vals = engine.read(source, first, f_flat).reshape(d1, m)
    cols = np.arange(d_out, dtype=np.int64)
    if second_transposed:
        s_flat = cols[None, :] * first_rows + units[:, None]    # (d1 m, d_out)
    else:
        s_flat = units[:, None] * d_out + cols[None, :]
    s_vals = engine.read(source, second, s_flat.reshape(-1)).reshape(d1, m, d_out)
    # candidates of entry (a, b): scale * f[a, j] * s[a, j, b]
    values = (scale * f_vals)[:, None, :] * s_vals.transpose(0, 2, 1)  # (d1, d_out, m)
    chosen, errs = engine.solve(values.reshape(-1, m), target.reshape(-1), tol, what)
    chosen = chosen.reshape(d1, d_out, m)
    tally.instances += chosen.shape[0] * chosen.shape[1]
    if tol is not None:
        miss = errs > tol
        tally.failed += int(miss.sum())
    tally.worst = max(tally.worst, float(errs.max(initial=0.0)))
    used = chosen.any(axis=1).reshape(-1)                        # (d1 m,)
    kept_first = f_flat[used]
    sel = chosen.transpose(0, 2, 1).reshape(d1 * m, d_out)      # (unit, b)
    kept_second = s_flat[sel]
    return kept_first, kept_second


def _mha_bytes(t: MultiHeadAttention, n_qk: int, n_v: int, tol: Any) -> int:
    d1 = t.d_in
    per = 0
    for n, d_out in ((n_qk, d1), (n_v, t.d_out)):
        m = max(n // d1, 1)
        B = d1 * d_out
        per = max(per, 8 * 6 * B * m + _solve_batch_bytes(B, m, eps=tol))
    return per


def _realise_mha(source: Any, target: Network, it: _Item, n_qk: int, n_v: int,
                 tols: tuple[float, float] | None, kept: dict[str, list[np.ndarray]],
                 tally: _Tally, engine: _Engine) -> None:
    t = it.layer
    p_t = {local: target.params[f"{it.prefix}{local}"] for local in t.param_specs()}
    qk, vo = merged_matrices(t, p_t)
    pre = _source_mha_path(it)
    check_memory(_mha_bytes(t, n_qk, n_v, None if tols is None else tols[0]),
                 what=f"{NAME}: one head of `{_mha_path(it)}` (its instances and solver)",
                 alternative="use smaller n_qk / n_v")
    scale_s = 1.0 / math.sqrt(n_qk)
    for h in range(t.heads):
        kq, kk = _realise_factor_pair(
            source, f"{pre}q_weight", f"{pre}k_weight", t.heads * n_qk, t.d_in, t.d_in, h,
            n_qk, qk[h], scale_s, False, None if tols is None else tols[0], tally,
            f"`{_mha_path(it)}` (query/key)", engine)
        kv, ko = _realise_factor_pair(
            source, f"{pre}v_weight", f"{pre}out_weight", t.heads * n_v, t.d_in, t.d_out, h,
            n_v, vo[h], 1.0, True, None if tols is None else tols[1], tally,
            f"`{_mha_path(it)}` (value/output)", engine)
        for local, idx in (("q_weight", kq), ("k_weight", kk), ("v_weight", kv),
                           ("out_weight", ko)):
            kept.setdefault(f"{pre}{local}", []).append(idx)


def _ff_source_mlp(source: Any, it: _Item, f: MLP, n_ff: int) -> MLP | VirtualMLP:
    """The source F as an MLP: the dense source's arrays, or for a virtual source a
    :class:`~slth.sources.VirtualMLP` reading F's entries under the transformer
    source's own keys (the same bits, entries on demand: Pensia's virtual path
    reads only what a ticket may keep)."""
    dense_layers = [(b, lay) for b, lay in _ff_named(it, f, n_ff) if isinstance(lay, Dense)]
    if isinstance(source, VirtualNetwork):
        vs = source.source
        keys: dict[str, str] = {}
        for l, (bname, lay) in enumerate(dense_layers):
            keys[f"layers.{2 * l}.weight"] = source._key_name(f"{it.prefix}{bname}.weight")
            if lay.bias:
                keys[f"layers.{2 * l}.bias"] = source._key_name(f"{it.prefix}{bname}.bias")
        spec = {k: vs.spec[k] for k in keys.values()}
        laws = {k: vs.law[k] for k in spec} if isinstance(vs.law, Mapping) else vs.law
        return VirtualMLP(VirtualSource(spec, laws, vs.seed), key_names=keys)
    ws, bs = [], []
    for bname, lay in dense_layers:
        ws.append(np.asarray(source.params[f"{it.prefix}{bname}.weight"]))
        bs.append(np.asarray(source.params[f"{it.prefix}{bname}.bias"]) if lay.bias else None)
    return MLP(ws, bs)


def _ff_named(it: _Item, f: MLP, n_ff: int) -> list[tuple[str, Any]]:
    return [(str(i), lay) for i, lay in enumerate(_ff_source_layers(f, n_ff))]


def _realise_ff(source: Any, target: Network, it: _Item, n_ff: int, eps_ff: float | None,
                weight_eps: float | None, kept: dict[str, list[np.ndarray]],
                errors: dict[str, np.ndarray], tally: _Tally, blocks: dict[str, Any]) -> None:
    from . import pensia2020

    f = _ff_mlp(target, it)
    sub_source = _ff_source_mlp(source, it, f, n_ff)
    sub = pensia2020.construct(f, n=n_ff, eps=eps_ff, weight_eps=weight_eps,
                               source=sub_source, on_failure="report")
    for name, idx in sub.kept.items():
        kept.setdefault(f"{it.prefix}{name[len('layers.'):]}", []).append(np.asarray(idx))
    for name, err in (sub.errors or {}).items():
        errors[f"{it.prefix}{name[len('layers.'):]}"] = np.asarray(err)
    tally.instances += int(sub.params.get("n_instances", 0))
    tally.failed += int(sub.params.get("n_failed", 0))
    tally.worst = max(tally.worst, float(sub.params.get("worst_error", 0.0)))
    blocks[f"layers.{it.name}"] = {k: sub.params[k] for k in
                                   ("n", "mode", "eps", "weight_tolerance", "n_failed")
                                   if k in sub.params}


# ----------------------------------------------------------------------------- construct
def _alpha(value: Any, d1: int, d2: int) -> float:
    low = max(math.sqrt(d1), math.sqrt(d2))
    if value is None:
        return low
    return check_positive("alpha", value)


def _seed(rng: Any) -> int:
    """The source's int seed: ``rng`` itself when an int >= 0, else drawn from it (recorded)."""
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, (bool, np.bool_)):
        if rng < 0:
            raise InputError(f"`rng` must be an int seed >= 0, a numpy Generator, a "
                             f"SeedSequence or None; received {format_value(rng)}")
        return int(rng)
    try:
        gen = as_generator(rng)
    except InputError:
        raise InputError(f"`rng` must be an int seed >= 0, a numpy Generator, a SeedSequence or "
                         f"None; received {format_value(rng)}") from None
    return int(gen.integers(2 ** 63))


def _widths_from_eps(items: list[_Item], eps: float, alpha: float, C: float, blocks: bool
                     ) -> tuple[int, int]:
    nq = nv = 1
    for it in items:
        if it.kind == "res_ff":
            continue
        t = it.layer
        a, b = bounds.otsuka2025_widths(t.d_in, t.d_out, t.heads, alpha,
                                        eps / 4.0 if blocks else eps, C=C)
        nq, nv = max(nq, a), max(nv, b)
    return nq, nv


def construct(
    target: Network,
    *,
    n: int | None = None,
    n_qk: int | None = None,
    n_v: int | None = None,
    n_ff: int | None = None,
    eps: float | None = None,
    alpha: float | None = None,
    weight_eps: float | None = None,
    C: float = bounds.OTSUKA2025_C,
    rng: RNGLike = None,
    source: Network | VirtualNetwork | None = None,
    virtual: bool = False,
    on_failure: str = "raise",
    timings: dict[str, float] | None = None,
    backend: str = "numba",
    device: Any = None,
) -> Ticket:
    """Build the strong lottery ticket of an attention or transformer target (Otsuka et al. 2025).

    Parameters
    ----------
    target : Network
        Input shape ``(T, d)``; top-level layers ``MultiHeadAttention``
        (``bias=False``), ``Residual([MultiHeadAttention])`` or token-wise
        ``Residual([Dense, ReLU, ..., Dense])`` (module docstring). Theorem 3
        assumes per-head ``||qk_h||_2, ||vo_h||_2 <= 1``; recorded in
        ``params["assumptions"]``, not enforced.
    n : int, optional
        One width for both ``n_qk`` and ``n_v`` (the paper's sweeps take
        n_K = n_V; :func:`slth.plot.error_vs_width`'s width keyword).
    n_qk, n_v : int, optional
        Source query/key and value width per head (the paper's n_K, n_V);
        blocks of ``n // d1`` units per input coordinate. From ``eps`` via
        :func:`slth.bounds.otsuka2025_widths` when omitted.
    n_ff : int, optional
        Pensia et al.'s units per sign part and input coordinate of every F
        (required with feed-forward blocks unless ``source`` or ``eps`` fixes
        it; from ``eps``: the block theorem's ``n_FC / (2 d)``,
        :func:`slth.bounds.otsuka2025_block_widths`).
    eps : float, optional
        Accuracy in (0, 1) (per block for transformers). Given: eps mode, every
        instance solved to :func:`tolerances` (F: Pensia's construction with
        accuracy ``eps / (2 alpha (1 + H))``). None: exact mode (each instance's
        optimum; blocks of at most 40 units) unless ``weight_eps`` is given.
    alpha : float, optional
        Bound on the per-token input norms; default ``max(sqrt d1, sqrt d2)``,
        the theorem's smallest.
    weight_eps : float, optional
        One per-entry tolerance for every instance (merged-matrix entries and
        F's weights), overriding the derived ones.
    C : float, default :data:`slth.bounds.OTSUKA2025_C`
        Constant of the widths from ``eps``.
    rng : int or None
        Seed of the source (``DenseSource.draw(spec, laws, rng)``, bit for bit
        the virtual source of the same seed); ignored when ``source`` is given.
    source : Network or VirtualNetwork, optional
        A random network of :func:`source_architecture`'s layout to prune.
    virtual : bool, default False
        Build the source as ``VirtualNetwork(arch, VirtualSource(spec, laws,
        rng))``: entries computed on demand.
    on_failure : {"raise", "report"}, default "raise"
    timings : dict, optional
        Filled with ``"draw"``, ``"solve"``, ``"ticket"``, ``"total"`` seconds.
    backend : {"numba", "torch"}, default "numba"
        ``"torch"``: the attention's source entries come from the torch Philox
        (:func:`slth.torch.source_entries`, virtual sources; bit for bit the
        numba ones) and its subset sums from ``solve_batch(backend="torch")`` on
        ``device``; the products, the scatter and F (Pensia) stay on the CPU.
        The torch solver solves every instance exactly (blocks of at most 40
        units), so in exact mode the ticket equals the numba one of the same
        seed; in eps mode it keeps optimal subsets (never a larger error).
    device : torch.device or str, optional
        The torch device (default: CUDA when available).

    Returns
    -------
    Ticket
        ``construction="otsuka2025"``; ``errors``: per attention
        ``"<path>.qk"`` ``(H, d1, d1)`` and ``"<path>.vo"`` ``(H, d1, d2)``, the
        realised ``|merged(source * mask) - merged(target)|``
        (:func:`merged_errors`), and F's Pensia errors by target parameter
        name; ``layer_map`` from target layer paths to source paths; JSON
        ``params``.

    Raises
    ------
    InputError
        A target outside the construction (layer named), bad widths or
        arguments, nothing fixing the widths.
    ShapeError
        A ``source`` of another architecture.
    LimitError
        Exact mode with blocks of more than 40 units; a head's instances beyond
        the memory budget.
    ConstructionError
        ``on_failure="raise"`` and some instance missed its tolerance.
    """
    t_start = time.perf_counter()
    items, (_T, d) = _plan(target)
    eps_f = check_eps(eps)
    on_failure = check_on_failure(on_failure)
    w_eps = None if weight_eps is None else check_positive("weight_eps", weight_eps)
    C_f = check_positive("C", C)
    engine = _engine(backend, device)
    if source is not None and virtual:
        raise InputError("give `source` or `virtual=True`, not both")
    if n is not None:
        if n_qk is not None or n_v is not None:
            raise InputError("give `n` (both widths) or `n_qk`/`n_v`, not both")
        n_qk = n_v = n
    mhas = [it for it in items if it.kind != "res_ff"]
    ffs = [it for it in items if it.kind == "res_ff"]
    blocks = bool(ffs) or any(it.kind == "res_mha" for it in items)
    d1 = max((it.layer.d_in for it in mhas), default=d)
    d2 = max((it.layer.d_out for it in mhas), default=d)
    alpha_f = _alpha(alpha, d1, d2)
    width_from = "given"
    if source is not None:
        n_qk, n_v, n_ff = _widths_of(source, items, n_qk, n_v, n_ff)
        width_from = "source"
    elif n_qk is None or n_v is None:
        if eps_f is None:
            if mhas:
                raise InputError("give `n_qk` and `n_v`, `eps` (the widths then follow Theorem "
                                 "3) or `source`")
        else:
            a, b = _widths_from_eps(items, eps_f, alpha_f, C_f, blocks)
            n_qk = a if n_qk is None else n_qk
            n_v = b if n_v is None else n_v
            width_from = "eps"
    if not mhas:
        n_qk = n_qk or 1
        n_v = n_v or 1
    if ffs and n_ff is None:
        if eps_f is None:
            raise InputError("give `n_ff` (or `eps`) for the feed-forward blocks")
        # the block theorem's n_FC hidden units per F layer, n_FC / (2 d) per sign part
        H = max((it.layer.heads for it in mhas), default=1)
        n_ff = max(-(-int(bounds.otsuka2025_block_widths(f.widths[0], H, f.depth, alpha_f,
                                                          eps_f, C=C_f)[1])
                     // (2 * f.widths[0]))
                   for f in (_ff_mlp(target, it) for it in ffs))
    arch, laws = source_architecture(target, int(n_qk), int(n_v), n_ff)  # type: ignore[arg-type]
    seed = None
    t0 = time.perf_counter()
    if source is None:
        seed = _seed(rng)
        source = draw_network(arch, laws, seed, virtual=virtual)
    else:
        _check_source(source, arch)
    t_draw = time.perf_counter() - t0

    # the kept indices, as gathered, joined and sorted (three int64 copies at most), bounded
    # by every entry a ticket may keep, before anything is solved
    may_keep = 0
    for it in mhas:
        t = it.layer
        may_keep += t.heads * (int(n_qk) * (1 + t.d_in) + int(n_v) * (1 + t.d_out))  # type: ignore[arg-type]
    check_memory(24 * may_keep, what=f"{NAME}: the kept indices of the attention layers (at most "
                                     f"{may_keep:,} entries)",
                 alternative="use smaller n_qk / n_v")
    t0 = time.perf_counter()
    kept_parts: dict[str, list[np.ndarray]] = {}
    errors: dict[str, np.ndarray] = {}
    tally = _Tally()
    ff_params: dict[str, Any] = {}
    tol_record: dict[str, Any] = {}
    for it in items:
        if it.kind == "res_ff":
            eps_ff = None if eps_f is None or w_eps is not None else _ff_eps(eps_f, alpha_f, mhas)
            _realise_ff(source, target, it, int(n_ff), eps_ff, w_eps, kept_parts,  # type: ignore[arg-type]
                        errors, tally, ff_params)
            continue
        t = it.layer
        if w_eps is not None:
            tols: tuple[float, float] | None = (w_eps, w_eps)
        elif eps_f is not None:
            tols = tolerances(t.d_in, t.d_out, t.heads, alpha_f, eps_f, block=blocks)
        else:
            tols = None
        tol_record[_mha_path(it)] = None if tols is None else list(tols)
        _realise_mha(source, target, it, int(n_qk), int(n_v), tols, kept_parts,  # type: ignore[arg-type]
                     tally, engine)
    kept = {name: np.unique(np.concatenate(kept_parts[name])) if name in kept_parts
            else np.zeros(0, dtype=np.int64) for name in source.param_specs()}
    t_solve = time.perf_counter() - t0
    if tally.failed and on_failure == "raise":
        raise ConstructionError(
            f"{NAME}: {tally.failed} of {tally.instances} instances missed their tolerance; "
            f"worst error {tally.worst:.3g}. The source is too small (n_qk={n_qk}, n_v={n_v}, "
            f"n_ff={n_ff}): increase the widths or `weight_eps`, or pass on_failure='report'.")
    t0 = time.perf_counter()
    errors.update(_merged_errors(target, items, source, kept))
    lm: dict[str, tuple[str, ...]] = {}
    for it in items:
        top = f"layers.{it.name}"
        if it.kind == "mha":
            lm[top] = (top,)
            continue
        lm[top] = (top,)
        if it.kind == "res_mha":
            lm[_mha_path(it)] = (_mha_path(it),)
            continue
        for i, (bname, _lay) in enumerate(it.layer.body):
            j = 2 * i  # target Dense 2k -> source (4k, 4k+1, 4k+2); ReLU 2k+1 -> 4k+3
            src = (j, j + 1, j + 2) if i % 2 == 0 else (j + 1,)
            lm[f"{it.prefix}{bname}"] = tuple(f"{it.prefix}{k}" for k in src)
    params: dict[str, Any] = {
        "paper": PAPER,
        "mode": "exact" if eps_f is None and w_eps is None else "eps",
        "eps": eps_f,
        "alpha": alpha_f,
        "weight_eps": w_eps,
        "n_qk": int(n_qk),  # type: ignore[arg-type]
        "n_v": int(n_v),  # type: ignore[arg-type]
        "n_ff": None if n_ff is None else int(n_ff),
        "C": C_f,
        "width_from": width_from,
        "tolerances": tol_record,
        "ff_blocks": ff_params,
        "n_instances": tally.instances,
        "n_failed": tally.failed,
        "worst_error": tally.worst,
        "seed": seed,
        "source_given": width_from == "source",
        "source_kind": "virtual" if isinstance(source, VirtualNetwork) else "dense",
        "backend": engine.backend,
        "layout": "per head: n // d1 units per input coordinate; first factor (q, v) block "
                  "diagonal; second factor (k, out) entries chosen by one subset sum per "
                  "merged-matrix entry over the block's products; score scale 1/sqrt(n_qk); "
                  "F by Pensia et al. 2020",
        "assumptions": _assumptions(target, items),
    }
    ticket = Ticket.from_kept(source, kept, construction=NAME, params=params, layer_map=lm,
                              errors=errors, target_fingerprint=target.fingerprint())
    if timings is not None:
        timings.update({"draw": t_draw, "solve": t_solve, "ticket": time.perf_counter() - t0,
                        "total": time.perf_counter() - t_start})
    return ticket


def _ff_eps(eps: float, alpha: float, mhas: list[_Item]) -> float:
    H = max((it.layer.heads for it in mhas), default=0)
    return min(eps / (2.0 * alpha * (1.0 + H)), 0.5)


def _widths_of(source: Any, items: list[_Item], n_qk: Any, n_v: Any, n_ff: Any
               ) -> tuple[int, int, int | None]:
    if not isinstance(source, (Network, VirtualNetwork)):
        raise InputError(f"`source` must be a slth Network or VirtualNetwork; received "
                         f"{format_value(source)}")
    layers = dict(source.layers)
    q = v = None
    f = None
    for it in items:
        lay = layers.get(it.name)
        if it.kind == "res_ff":
            if isinstance(lay, Residual) and isinstance(lay.body[0][1], Dense):
                first = lay.body[0][1]
                d_in = it.layer.body[0][1].d_in
                has_b = it.layer.body[0][1].bias
                f = first.d_out // (2 * (d_in + (1 if has_b else 0)))
            continue
        if isinstance(lay, Residual) and len(lay.body) == 1:
            lay = lay.body[0][1]
        if isinstance(lay, MultiHeadAttention):
            q, v = lay.d_qk, lay.d_v
    for given, found, nm in ((n_qk, q, "n_qk"), (n_v, v, "n_v"), (n_ff, f, "n_ff")):
        if given is not None and found is not None and given != found:
            raise InputError(f"`{nm}` must equal the source's width {found} (or be omitted); "
                             f"received {format_value(given)}")
    return (q or n_qk or 1), (v or n_v or 1), (f if f is not None else n_ff)


def _assumptions(target: Network, items: list[_Item]) -> dict[str, Any]:
    """Theorem 3's norm hypothesis on the attention, and the F norms the eps split assumes."""
    worst = 0.0
    worst_f = 0.0
    for it in items:
        if it.kind == "res_ff":
            for w in _ff_mlp(target, it).weights:
                worst_f = max(worst_f, float(np.linalg.norm(w, 2)))
            continue
        p = {k: target.params[f"{it.prefix}{k}"] for k in it.layer.param_specs()}
        qk, vo = merged_matrices(it.layer, p)
        for M in (*qk, *vo):
            worst = max(worst, float(np.linalg.norm(M, 2)))
    return {"max_merged_spectral_norm": worst, "hold": bool(worst <= 1.0),
            "max_ff_spectral_norm": worst_f, "ff_hold": bool(worst_f <= 1.0)}


# ----------------------------------------------------------------------------- recorded errors
def _check_ticket(target: Any, ticket: Any, check_target: bool) -> list[_Item]:
    """The target's plan, after checking that the ticket is this construction's for it.

    The certificate relies on the source having exactly the layout
    :func:`source_architecture` builds for the target (the same masks, heads,
    widths and layers), so that is verified here, not assumed.
    """
    items, _ = _plan(target)
    if not isinstance(ticket, Ticket):
        raise InputError(f"`ticket` must be a slth.Ticket; received {format_value(ticket)}")
    if ticket.construction != NAME:
        raise InputError(f"`ticket` must be a {NAME} ticket; received one of construction "
                         f"{ticket.construction!r}")
    if check_target and ticket.target_fingerprint is not None \
            and ticket.target_fingerprint != target.fingerprint():
        raise InputError("`ticket` was built for another target (its target fingerprint "
                         f"{ticket.target_fingerprint} is not this target's "
                         f"{target.fingerprint()})")
    n_qk, n_v, n_ff = _widths_of(ticket.source, items, None, None, None)
    want = source_architecture(target, n_qk, n_v, n_ff)[0].architecture()
    got = ticket.source.architecture()
    if got != want:
        raise ShapeError(f"`ticket`'s source is not {NAME}'s layout for this target (widths "
                         f"n_qk={n_qk}, n_v={n_v}, n_ff={n_ff}): expected {want}; its source "
                         f"has {got}")
    return items


def _source_merged(src: Any, kept_all: Mapping[str, Any], prefix: str,
                   layer: MultiHeadAttention
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Merged qk, vo of a source attention masked to ``kept_all`` (sorted flat indices by
    parameter name), and their absolute-value products.

    Computed head by head from the kept entries as sparse products: a head's
    rows of ``q_weight``, ``k_weight``, ``v_weight`` are one contiguous range of
    the sorted kept indices, its columns of ``out_weight`` are found once; only
    one head's entries are read at a time (memory in proportion to what one
    head keeps, checked before reading).
    """
    import scipy.sparse as sps

    H, nq, nv, d1, d2 = layer.heads, layer.d_qk, layer.d_v, layer.d_in, layer.d_out
    kept = {local: np.asarray(kept_all[f"{prefix}{local}"]) for local in layer.param_specs()}
    per_head = max(kept[k].size for k in kept) // max(H, 1) + 1
    check_memory(2 * kept["out_weight"].size + 64 * per_head + 32 * H * d1 * (d1 + d2),
                 what=f"{NAME}: the merged matrices of `{prefix[:-1]}` from its kept entries",
                 alternative="certify a smaller ticket (fewer heads or narrower blocks)")
    out_head = ((kept["out_weight"] % (H * nv)) // nv).astype(np.int32)
    qk = np.zeros((H, d1, d1))
    aqk = np.zeros((H, d1, d1))
    vo = np.zeros((H, d1, d2))
    avo = np.zeros((H, d1, d2))
    sc = layer.score_scale

    def rows(local: str, h: int, n: int) -> tuple[Any, Any]:
        idx = kept[local]
        lo, hi = np.searchsorted(idx, [h * n * d1, (h + 1) * n * d1])
        part = idx[lo:hi]
        vals = _read(src, f"{prefix}{local}", part) if part.size else np.zeros(0)
        r, c = np.divmod(part - h * n * d1, d1)
        return (sps.csr_matrix((vals, (r, c)), shape=(n, d1)),
                sps.csr_matrix((np.abs(vals), (r, c)), shape=(n, d1)))

    for h in range(H):
        q, k, v = rows("q_weight", h, nq), rows("k_weight", h, nq), rows("v_weight", h, nv)
        part = kept["out_weight"][out_head == h]
        vals = _read(src, f"{prefix}out_weight", part) if part.size else np.zeros(0)
        r, c = np.divmod(part, H * nv)
        o = (sps.csr_matrix((vals, (r, c - h * nv)), shape=(d2, nv)),
             sps.csr_matrix((np.abs(vals), (r, c - h * nv)), shape=(d2, nv)))
        for j, (out_qk, out_vo) in enumerate(((qk, vo), (aqk, avo))):
            out_qk[h] = sc * (q[j].T @ k[j]).toarray()
            out_vo[h] = (v[j].T @ o[j].T).toarray()
    return qk, vo, aqk, avo


def _source_layer(ticket: Ticket, it: _Item) -> MultiHeadAttention:
    for path, lay in ticket.source.named_layers():
        if path == _mha_path(it):
            if not isinstance(lay, MultiHeadAttention):
                break
            return lay
    raise InputError(f"`ticket`'s source has no attention at `{_mha_path(it)}`: not a "
                     f"{NAME} ticket of this target")


def merged_errors(target: Network, ticket: Ticket, *, check_target: bool = True
                  ) -> dict[str, np.ndarray]:
    """The realised merged-matrix errors of every attention of a ticket.

    Parameters
    ----------
    target : Network
    ticket : Ticket
    check_target : bool, default True

    Returns
    -------
    dict of str to numpy.ndarray
        ``"<path>.qk"``: ``|qk(source * mask) - qk(target)|`` ``(H, d1, d1)``;
        ``"<path>.vo"`` likewise ``(H, d1, d2)`` (merged matrices as
        :func:`slth.nets.attention.merged_matrices` computes them).
    """
    items = _check_ticket(target, ticket, check_target)
    return _merged_errors(target, items, ticket.source, ticket.kept)


def _merged_errors(target: Network, items: list[_Item], source: Any,
                   kept: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """:func:`merged_errors` of a source and its kept indices (no Ticket needed)."""
    layers = dict(source.named_layers())
    out: dict[str, np.ndarray] = {}
    for it in items:
        if it.kind == "res_ff":
            continue
        t = it.layer
        qk_t, vo_t = merged_matrices(t, {k: target.params[f"{it.prefix}{k}"]
                                         for k in t.param_specs()})
        qk_s, vo_s, _, _ = _source_merged(source, kept, it.prefix, layers[_mha_path(it)])
        out[f"{_mha_path(it)}.qk"] = np.abs(qk_s - qk_t)
        out[f"{_mha_path(it)}.vo"] = np.abs(vo_s - vo_t)
    return out


# ----------------------------------------------------------------------------- sequences
def sequence_forward(net: Network | Ticket, x: Any) -> np.ndarray:
    """Forward token sequences of any length through a network or ticket of attention layers.

    A network's input shape fixes T; attention (without a table mask) and
    token-wise layers have no parameter that depends on it, so the same
    parameters apply at every length.

    Parameters
    ----------
    net : Network or Ticket
    x : array_like
        ``(B, T, d)`` or ``(T, d)``, any ``T >= 1``.

    Returns
    -------
    numpy.ndarray
    """
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"`x` must be an array of real numbers; received "
                         f"{format_value(x)}") from None
    if arr.ndim not in (2, 3) or arr.shape[-2] < 1:
        raise ShapeError(f"`x` must have shape (batch, T, d) or (T, d) with T >= 1; received "
                         f"{arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError("`x` must be finite; received NaN or infinite entries")
    T = arr.shape[-2]
    if isinstance(net, Ticket):
        # the ticket's own operators: sparse kept weights where sparse pays (as its forward)
        params = net._operators("auto")
        arch = Architecture(net.source.layers, input_shape=(T, arr.shape[-1]))
        return arch.forward(arr, params=params)
    if not isinstance(net, Network):
        raise InputError(f"`net` must be a Network or Ticket; received {format_value(net)}")
    return Architecture(net.layers, input_shape=(T, arr.shape[-1])).forward(
        arr, params=net.params)


# ----------------------------------------------------------------------------- certificate
def _head_mats(layer: MultiHeadAttention, p: Mapping[str, np.ndarray]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """qk, vo and their absolute-value products (for rounding bounds)."""
    qk, vo = merged_matrices(layer, p)
    absp = {k: np.abs(v) for k, v in p.items()}
    aqk, avo = merged_matrices(layer, absp)
    return qk, vo, np.abs(aqk), avo


def _expm1_up(x: float) -> float:
    return _up(math.expm1(x), 4) if x < 700 else math.inf


def _mha_terms(t: MultiHeadAttention, p_t: Mapping[str, np.ndarray], s: MultiHeadAttention,
               merged_s: tuple[np.ndarray, ...], T: int) -> dict[str, Any]:
    qk_t, vo_t, aqk_t, avo_t = _head_mats(t, p_t)
    qk_s, vo_s, aqk_s, avo_s = merged_s
    k_t = max(t.d_qk, t.d_v) + 4
    k_s = max(s.d_qk, s.d_v) + 4
    heads = []
    for h in range(t.heads):
        # ||Delta||_2 <= norm_upper(fl(Delta)) + the merged products' rounding (gamma_k |A||B|)
        dqk = _up(norm_upper(qk_s[h] - qk_t[h]) + _gamma(k_t) * _fro_up(aqk_t[h])
                  + _gamma(k_s) * _fro_up(aqk_s[h]), 3)
        dvo = _up(norm_upper(vo_s[h] - vo_t[h]) + _gamma(k_t) * _fro_up(avo_t[h])
                  + _gamma(k_s) * _fro_up(avo_s[h]), 3)
        G = _up(norm_upper(qk_t[h]) + _gamma(k_t) * _fro_up(aqk_t[h]))
        V = _up(norm_upper(vo_t[h]) + _gamma(k_t) * _fro_up(avo_t[h]))
        # float evaluation of both networks (standard model, exp within an ulp): scores
        # carry gamma(K) |q||k| sums, probabilities gamma(T) relative, outputs gamma(K) |v||o|
        K = 2 * (t.d_in + max(t.d_qk, s.d_qk) + t.heads * max(t.d_v, s.d_v) + T) + 16
        heads.append({"dqk": dqk, "dvo": dvo, "G": G, "V": V, "K": K,
                      "aqk": max(_fro_up(aqk_t[h]), _fro_up(aqk_s[h])),
                      "avo": max(_fro_up(avo_t[h]), _fro_up(avo_s[h]))})
    return {"heads": heads}


def _mha_step(terms: dict[str, Any], R: float, delta: float) -> tuple[float, float]:
    """(per-token output error bound, target output radius) for inputs of radius R, error delta."""
    err = 0.0
    rad = 0.0
    Rd = R + delta
    for hd in terms["heads"]:
        # target at x vs target at x^: score change <= ||G|| delta (2R + delta)
        e_lip = _up(hd["G"] * delta * (2.0 * R + delta), 3)
        lip = _up(hd["V"] * (R * min(2.0, _expm1_up(2.0 * e_lip)) + delta), 3)
        # target vs source at x^ (radius R + delta): the softmax lemma and the vo error
        e_app = _up(Rd * Rd * hd["dqk"], 3)
        app = _up(hd["V"] * Rd * min(2.0, _expm1_up(2.0 * e_app)) + Rd * hd["dvo"], 3)
        # rounding of both float evaluations
        g = _gamma(hd["K"])
        e_rnd = _up(2.0 * g * Rd * Rd * hd["aqk"], 3)
        rnd = _up(2.0 * (hd["avo"] * Rd * (min(2.0, _expm1_up(2.0 * e_rnd)) + 2.0 * g)), 4)
        err = _up(err + lip + app + rnd, 1)
        rad = _up(rad + hd["V"] * R, 2)
    return err, rad


def _ff_subticket(target: Network, ticket: Ticket, it: _Item) -> tuple[MLP, Ticket]:
    """F of a residual block and its Pensia sub-ticket, rebuilt from the kept entries."""
    from . import pensia2020

    f = _ff_mlp(target, it)
    info = (ticket.params.get("ff_blocks") or {}).get(f"layers.{it.name}")
    if info is None or ticket.params.get("n_ff") is None:
        raise InputError(f"`ticket` records no Pensia block for `layers.{it.name}`: not a "
                         f"{NAME} ticket of this target")
    sub_src = _ff_source_mlp(ticket.source, it, f, int(ticket.params["n_ff"]))
    kept = {name: np.asarray(ticket.kept[f"{it.prefix}{name[len('layers.'):]}"])
            for name in sub_src.param_specs()}
    sub = Ticket.from_kept(sub_src, kept, construction=pensia2020.NAME,
                           params={"n": info["n"], "mode": info.get("mode", "eps")},
                           layer_map=tuple((2 * i, 2 * i + 1) for i in range(f.depth)),
                           target_fingerprint=f.fingerprint())
    return f, sub


def _ff_bound(target: Network, ticket: Ticket, it: _Item, R: float, delta: float
              ) -> tuple[float, float]:
    """(F error bound at inputs radius R with input error delta, F output radius)."""
    from ..certify import certified_bound as mlp_bound

    f, sub = _ff_subticket(target, ticket, it)
    app = mlp_bound(f, sub, radius=max(R + delta, 1e-300))
    lip = 1.0
    rad = R
    rad_abs = R + delta  # radius of |W_L| ... |W_1| |x| (the float target's rounding scale)
    for w, b in zip(f.weights, f.biases):
        nw = norm_upper(w)
        lip = _up(lip * nw, 1)
        rad = _up(nw * rad + (0.0 if b is None else _fro_up(b)), 2)
        rad_abs = _up(norm_upper(np.abs(w)) * rad_abs + (0.0 if b is None else _fro_up(b)), 2)
    # the MLP certifier compares the float target and ticket at one point; the chain from the
    # float target at x to the float ticket at x^ also needs the target's own rounding at both
    k = max(w.shape[1] for w in f.weights) + 2
    rnd = _up(2.0 * f.depth * _gamma(k) * (1.0 + f.depth * _gamma(k)) * rad_abs, 4)
    return _up(lip * delta + app + rnd, 3), rad


def recorded_errors(target: Network, ticket: Ticket) -> dict[str, np.ndarray]:
    """Every error a ticket records, recomputed from its source and kept entries.

    The merged-matrix errors (:func:`merged_errors`) and, for each F, Pensia et
    al.'s ``max(|P - W|, |N + W|)`` per weight and ``|beta - b|`` per bias under
    the target's parameter names: the ``errors`` hook of
    :func:`slth.testing.harness.check_ticket`.

    Parameters
    ----------
    target : Network
    ticket : Ticket

    Returns
    -------
    dict of str to numpy.ndarray
    """
    from ..certify import effective_layers

    out = merged_errors(target, ticket)
    for it in _check_ticket(target, ticket, True):
        if it.kind != "res_ff":
            continue
        f, sub = _ff_subticket(target, ticket, it)
        dense_names = [b for b, lay in it.layer.body if isinstance(lay, Dense)]
        for E, W, b, bname in zip(effective_layers(f, sub), f.weights, f.biases, dense_names):
            out[f"{it.prefix}{bname}.weight"] = np.maximum(np.abs(E.P - W), np.abs(E.N + W))
            if b is not None:
                out[f"{it.prefix}{bname}.bias"] = np.abs(E.beta - b)
    return out


def _residual(delta: float, e: float, R: float, r: float) -> tuple[float, float]:
    """(error, radius) after ``x + body(x)``: the errors add, plus the sum's rounding in both
    float evaluations (one rounding per entry, at most u of each token's norm)."""
    from ..certify import _U

    rad = _up(R + r, 1)
    return _up(delta + e + 2.0 * _U * _up(rad + delta + e, 1), 2), rad


def token_error_bound(target: Network, ticket: Ticket, *, alpha: float,
                      length: int | None = None, check_target: bool = True) -> float:
    """Certified ``max_i ||g(X)_i - f(X)_i||`` over sequences whose tokens have norm <= alpha.

    The theorem's metric (per-token l2, max over tokens), for every mask the
    layers allow and every sequence length up to ``length``: the bound does
    not depend on T except through the float-rounding allowance.

    Parameters
    ----------
    target : Network
    ticket : Ticket
        Built by :func:`construct` for ``target``; its merged matrices and F
        blocks are recomputed from the source and the kept entries.
    alpha : float
        Per-token input norm bound, > 0.
    length : int, optional
        Longest sequence the rounding allowance covers (default: the target's T).
    check_target : bool, default True

    Returns
    -------
    float
    """
    items = _check_ticket(target, ticket, check_target)
    R = check_positive("alpha", alpha)
    T = int(target.input_shape[0]) if length is None else _check_width(length, "length", 1)
    delta = 0.0
    for it in items:
        # R bounds the float target's token norms too: each step adds its own error bound
        # (which contains the target's rounding) to the exact radius
        if it.kind == "res_ff":
            e, r = _ff_bound(target, ticket, it, R, delta)
            delta, R = _residual(delta, e, R, r)
            R = _up(R + e, 1)
            continue
        t = it.layer
        s = _source_layer(ticket, it)
        p_t = {k: np.asarray(target.params[f"{it.prefix}{k}"]) for k in t.param_specs()}
        terms = _mha_terms(t, p_t, s, _source_merged(ticket.source, ticket.kept, it.prefix, s),
                           T)
        e, r = _mha_step(terms, R, delta)
        if it.kind == "res_mha":
            delta, R = _residual(delta, e, R, r)
        else:
            delta, R = e, r
        R = _up(R + e, 1)
    return float(delta)


def certified_bound(target: Network, ticket: Ticket, *, radius: float = 1.0,
                    check_target: bool = True) -> float:
    """A rigorous upper bound on ``sup_{||X|| <= radius} ||f(X) - g(X)||`` (whole sequences).

    :func:`slth.evaluate.approximation_error`'s metric: Frobenius norms of the
    ``(T, d)`` input and output. Every token of such an input has norm <=
    ``radius``, so the bound is ``sqrt(T)`` times :func:`token_error_bound`
    with ``alpha = radius``.

    Parameters
    ----------
    target : Network
    ticket : Ticket
    radius : float, default 1.0
    check_target : bool, default True

    Returns
    -------
    float
    """
    from ..certify import check_radius

    tok = token_error_bound(target, ticket, alpha=check_radius(radius),
                            check_target=check_target)
    T = int(target.input_shape[0])
    return _up(math.sqrt(T) * tok, 2)
