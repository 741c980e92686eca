"""Multi-head self-attention on token sequences, and transformer blocks without normalisation.

:class:`MultiHeadAttention` is the attention of Otsuka, Chijiwa, Okoshi,
Fujiki, Takeuchi and Motomura, "The Strong Lottery Ticket Hypothesis for
Multi-Head Attention Mechanisms" (arXiv 2511.04217, AAAI-26): for one sequence
``X`` of ``T`` tokens (rows) of ``d_in`` features,

    ``Attn(X) = sum_h softmax(X W_Q^h (W_K^h)^T X^T / sqrt(d_K)) X W_V^h W_O^h``,

the softmax taken row by row (over the keys). :func:`transformer_block` builds
the paper's block without normalisation, ``Blk(X) = F(A + X) + A + X`` with
``A = Attn(X)`` and ``F`` a ReLU MLP applied token by token, from
:class:`~slth.nets.Residual` and :class:`~slth.nets.Dense` layers.

Layout
------
Parameters use ``torch.nn.MultiheadAttention``'s layout (out x in, heads
stacked along the rows), so torch weights copy over exactly (the bridge is
:mod:`slth.torch._attention`). The paper's row-vector matrices are their
transposes: ``W_Q^h = q_weight[h*d_qk:(h+1)*d_qk].T`` (``d_in x d_qk``), and
``W_O^h = out_weight[:, h*d_v:(h+1)*d_v].T`` (``d_v x d_out``).
:func:`merged_matrices` returns the per-head products the paper's proof
approximates, ``W_QK^h`` and ``W_VO^h``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ..errors import InputError, ShapeError, format_value
from .base import Layer, Residual, Shape, register_layer
from .layers import Dense, ReLU

__all__ = ["MultiHeadAttention", "attention_scores", "merged_matrices", "transformer_block"]

MaskSpec = None | str | tuple[tuple[bool, ...], ...]


# ====================================================================== validation
def _check_int(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < 1:
        raise InputError(f"`{name}` must be an int >= 1; received {format_value(value)}")
    return int(value)


def _check_scale(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)) or not math.isfinite(value) \
            or value <= 0:
        raise InputError(
            f"`scale` must be None (meaning 1/sqrt(d_qk)) or a finite number > 0; received "
            f"{format_value(value)}"
        )
    return float(value)


def _check_mask(value: Any) -> MaskSpec:
    """None, ``"causal"`` or a square table of bools (True = attended) as tuple of tuples."""
    if value is None:
        return None
    if isinstance(value, str):
        if value != "causal":
            raise InputError(
                "`mask` must be None, 'causal' or a T x T table of bools (True = the query "
                f"row attends to the key column); received {value!r}"
            )
        return value
    domain = ("`mask` must be None, 'causal' or a square T x T table of bools (True = the "
              "query row attends to the key column)")
    if isinstance(value, np.ndarray):
        if value.dtype != np.bool_:
            raise InputError(f"{domain}; received {format_value(value)}")
        arr = value
    else:
        try:
            arr = np.asarray(value, dtype=object)
        except (TypeError, ValueError):
            raise InputError(f"{domain}; received {format_value(value)}") from None
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] < 1:
        raise InputError(f"{domain}; received {format_value(value)} (a table of shape "
                         f"{arr.shape})")
    if arr.dtype != np.bool_:
        for (i, j), v in np.ndenumerate(arr):
            if not isinstance(v, (bool, np.bool_)):
                raise InputError(f"{domain}; entry ({i}, {j}) is {format_value(v)}, not a bool")
        arr = arr.astype(bool)
    empty = np.flatnonzero(~arr.any(axis=1))
    if empty.size:
        raise InputError(
            f"`mask` row {int(empty[0])} attends to no key: every row of the mask must keep "
            "at least one entry (the softmax over an empty row is undefined); rows without "
            f"an entry: {empty.tolist()[:10]}"
        )
    return tuple(tuple(row) for row in arr.tolist())


# ====================================================================== the layer
@register_layer("multi_head_attention")
@dataclasses.dataclass(frozen=True)
class MultiHeadAttention(Layer):
    """Multi-head scaled dot-product self-attention on sequences ``(T, d_in)``.

    For one sequence ``x`` (``T x d_in``) and head ``h``,
    ``Q_h = x Wq_h^T + bq_h``, ``K_h = x Wk_h^T + bk_h``, ``V_h = x Wv_h^T + bv_h``
    (``Wq_h = q_weight[h*d_qk:(h+1)*d_qk]``, likewise for the others),
    scores ``S_h = score_scale * Q_h K_h^T`` (``T x T``: query rows, key
    columns), ``P_h = softmax(S_h)`` over each row's attended keys, and

        ``y = concat_h(P_h V_h) out_weight^T + out_bias``.

    Without biases this is ``Attn`` of Otsuka et al. 2025 (arXiv 2511.04217),
    ``sum_h softmax(x W_Q^h (W_K^h)^T x^T / sqrt(d_K)) x W_V^h W_O^h`` with
    ``W_Q^h = Wq_h^T`` etc. and the default ``score_scale = 1 / sqrt(d_qk)``;
    it is also what ``torch.nn.MultiheadAttention`` computes as ``mha(x, x, x)``
    (``d_qk = d_v = embed_dim / heads``).

    Parameters
    ----------
    d_in, d_out : int
        Token input and output widths, >= 1.
    heads : int
        Number of heads ``H``, >= 1.
    d_qk : int
        Query/key width of each head, >= 1.
    d_v : int
        Value width of each head, >= 1.
    scale : float, optional
        Multiplier of the dot products; None (default) means ``1 / sqrt(d_qk)``.
        :attr:`score_scale` is the number used.
    mask : None, "causal" or T x T table of bool, optional
        Which keys each query attends to: None attends to all; ``"causal"``
        lets token ``i`` attend to tokens ``0..i`` (any ``T``); a table fixes
        ``T`` to its size, entry ``[i][j]`` True when query ``i`` attends to
        key ``j`` (the opposite of torch's boolean ``attn_mask``, where True
        means *not* allowed). Every row must keep at least one entry. A table
        is stored as a tuple of tuples of bool (hashable, and saved with the
        network).
    bias : bool, default False
        Whether the projections have biases ``"q_bias"``, ``"k_bias"``,
        ``"v_bias"``, ``"out_bias"`` (the paper's attention has none).

    Notes
    -----
    Parameters (torch layout): ``"q_weight"``, ``"k_weight"`` of shape
    ``(heads * d_qk, d_in)``, ``"v_weight"`` ``(heads * d_v, d_in)``,
    ``"out_weight"`` ``(d_out, heads * d_v)``; with ``bias``, ``"q_bias"``,
    ``"k_bias"`` ``(heads * d_qk,)``, ``"v_bias"`` ``(heads * d_v,)``,
    ``"out_bias"`` ``(d_out,)``. The four weights may be ``scipy.sparse``
    matrices (a pruned ticket's).

    Per-example inputs are ``(T, d_in)`` with any ``T >= 1`` (the layer
    declares no input shape; a network must be given one), outputs
    ``(T, d_out)``. The arithmetic is batched over examples and heads (numpy
    ``matmul``, float64). The softmax subtracts each row's largest attended
    score before exponentiating, so large scores (1e4 and beyond) give finite
    probabilities, never NaN; masked entries get probability exactly 0, so the
    output does not depend on the scores they would have had.
    """

    d_in: int
    d_out: int
    heads: int
    d_qk: int
    d_v: int
    scale: float | None = None
    mask: MaskSpec = None
    bias: bool = False

    sparse_params: ClassVar[frozenset[str]] = frozenset(
        {"q_weight", "k_weight", "v_weight", "out_weight"})

    def __post_init__(self) -> None:
        for name in ("d_in", "d_out", "heads", "d_qk", "d_v"):
            object.__setattr__(self, name, _check_int(getattr(self, name), name))
        object.__setattr__(self, "scale", _check_scale(self.scale))
        object.__setattr__(self, "mask", _check_mask(self.mask))
        if not isinstance(self.bias, (bool, np.bool_)):
            raise InputError(f"`bias` must be a bool; received {format_value(self.bias)}")
        object.__setattr__(self, "bias", bool(self.bias))
        if isinstance(self.mask, tuple):  # the table as an array, built once (not a field)
            table = np.array(self.mask, dtype=bool)
            table.flags.writeable = False
            object.__setattr__(self, "_table", table)

    # ------------------------------------------------------------------ spec
    @property
    def score_scale(self) -> float:
        """The multiplier of the query-key dot products: ``scale``, or ``1 / sqrt(d_qk)``."""
        return 1.0 / math.sqrt(self.d_qk) if self.scale is None else float(self.scale)

    def param_specs(self) -> Mapping[str, Shape]:
        hq, hv = self.heads * self.d_qk, self.heads * self.d_v
        specs: dict[str, Shape] = {
            "q_weight": (hq, self.d_in),
            "k_weight": (hq, self.d_in),
            "v_weight": (hv, self.d_in),
            "out_weight": (self.d_out, hv),
        }
        if self.bias:
            specs.update({"q_bias": (hq,), "k_bias": (hq,), "v_bias": (hv,),
                          "out_bias": (self.d_out,)})
        return specs

    def output_shape(self, input_shape: Shape) -> Shape:
        shape = tuple(input_shape)
        if len(shape) != 2 or shape[1] != self.d_in:
            raise ShapeError(
                f"{self!r} takes per-example inputs of shape (T, {self.d_in}) (a sequence of "
                f"T tokens of d_in={self.d_in} features; a network of attention layers must be "
                f"given its input_shape=(T, {self.d_in})); received inputs of shape {shape}"
            )
        if isinstance(self.mask, tuple) and shape[0] != len(self.mask):
            raise ShapeError(
                f"{self!r}: its mask table is {len(self.mask)} x {len(self.mask)}, so the "
                f"sequence length T must be {len(self.mask)}; received inputs of shape {shape}"
            )
        return (shape[0], self.d_out)

    def allowed(self, length: int) -> np.ndarray | None:
        """The boolean ``(T, T)`` table of attended entries for sequences of ``length``.

        Parameters
        ----------
        length : int
            The sequence length ``T``.

        Returns
        -------
        numpy.ndarray or None
            ``[i, j]`` True when query ``i`` attends to key ``j``; None without
            a mask (every entry attended).

        Raises
        ------
        ShapeError
            A table mask of another size than ``length``.
        """
        if self.mask is None:
            return None
        if self.mask == "causal":
            return np.tril(np.ones((length, length), dtype=bool))
        table: np.ndarray = self.__dict__["_table"]
        if table.shape[0] != length:
            raise ShapeError(
                f"{self!r}: its mask table is {table.shape[0]} x {table.shape[0]}; received "
                f"sequences of length T = {length}"
            )
        return table

    # ------------------------------------------------------------------ arithmetic
    def _check_x(self, x: np.ndarray) -> None:
        if x.ndim != 3 or x.shape[2] != self.d_in:
            raise ShapeError(
                f"{self!r} takes batches of shape (batch, T, {self.d_in}); received shape "
                f"{x.shape}"
            )

    def _forward(self, params: Mapping[str, Any], x: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(y, P, Q, K, V)``: output, probabilities and projections (heads split)."""
        self._check_x(x)
        b, t, _ = x.shape
        h = self.heads

        def project(wname: str, bname: str, width: int) -> np.ndarray:
            out = _linear(x, params[wname], params.get(bname) if self.bias else None)
            return out.reshape(b, t, h, width).transpose(0, 2, 1, 3)  # (B, H, T, width)

        q = project("q_weight", "q_bias", self.d_qk)
        k = project("k_weight", "k_bias", self.d_qk)
        v = project("v_weight", "v_bias", self.d_v)
        scores = (q @ k.transpose(0, 1, 3, 2)) * self.score_scale  # (B, H, T, T)
        p = _softmax(scores, self.allowed(t))
        heads_out = (p @ v).transpose(0, 2, 1, 3).reshape(b, t, h * self.d_v)
        y = _linear(heads_out, params["out_weight"],
                    params.get("out_bias") if self.bias else None)
        return y, p, q, k, v

    def apply(self, params: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
        return self._forward(params, x)[0]

    def vjp(self, params: Mapping[str, Any], x: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
        _, p, q, k, v = self._forward(params, x)
        b, t, _ = x.shape
        h = self.heads
        # y = O W_o^T: dO = g W_o, heads split
        # gradients (g_*) of <grad_out, y>: y = O out_weight^T, so g_O = grad_out out_weight
        g_heads = _linear(grad_out, _transpose(params["out_weight"]), None)
        g_o = g_heads.reshape(b, t, h, self.d_v).transpose(0, 2, 1, 3)  # (B, H, T, d_v)
        g_v = p.transpose(0, 1, 3, 2) @ g_o  # (B, H, T, d_v)
        g_s = g_o @ v.transpose(0, 1, 3, 2)  # g_P, (B, H, T, T), turned into g_S in place:
        # the softmax Jacobian per row, g_S = P * (g_P - <g_P, P>); masked entries have P = 0
        g_s -= np.sum(g_s * p, axis=-1, keepdims=True)
        g_s *= p
        g_s *= self.score_scale
        g_q = g_s @ k  # (B, H, T, d_qk)
        g_k = g_s.transpose(0, 1, 3, 2) @ q

        def merge(a: np.ndarray) -> np.ndarray:
            return a.transpose(0, 2, 1, 3).reshape(b, t, -1)

        return (_linear(merge(g_q), _transpose(params["q_weight"]), None)
                + _linear(merge(g_k), _transpose(params["k_weight"]), None)
                + _linear(merge(g_v), _transpose(params["v_weight"]), None))

    def __repr__(self) -> str:
        parts = [f"heads={self.heads}", f"d_qk={self.d_qk}", f"d_v={self.d_v}"]
        if self.scale is not None:
            parts.append(f"scale={self.scale!r}")
        if self.mask == "causal":
            parts.append("causal")
        elif self.mask is not None:
            parts.append(f"mask {len(self.mask)}x{len(self.mask)}")
        if self.bias:
            parts.append("bias")
        return f"MultiHeadAttention({self.d_in} -> {self.d_out}, {', '.join(parts)})"


# ====================================================================== helpers
def _transpose(w: Any) -> Any:
    return w.T


def _linear(x: np.ndarray, w: Any, bias: np.ndarray | None) -> np.ndarray:
    """``x @ w.T + bias`` over the last axis of ``x`` (any leading axes; ``w`` dense or sparse)."""
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    if sp.issparse(w):
        y = np.ascontiguousarray((w @ x2.T).T)
    else:
        y = x2 @ np.asarray(w).T
    if bias is not None:
        y = y + bias
    return y.reshape(*lead, y.shape[-1])


def _softmax(scores: np.ndarray, allowed: np.ndarray | None) -> np.ndarray:
    """Row softmax over the last axis, restricted to ``allowed`` entries; stable.

    Works in place on ``scores`` (a fresh array the caller owns): one ``(B, H,
    T, T)`` array in all, which matters for long sequences.
    """
    if allowed is not None:
        np.copyto(scores, -np.inf, where=~allowed)
    scores -= np.max(scores, axis=-1, keepdims=True)  # finite: every row keeps an entry
    np.exp(scores, out=scores)
    scores /= np.sum(scores, axis=-1, keepdims=True)
    return scores


def attention_scores(layer: MultiHeadAttention, params: Mapping[str, Any], x: Any
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Every head's scores and attention probabilities on a batch of sequences.

    Parameters
    ----------
    layer : MultiHeadAttention
    params : Mapping[str, array_like or scipy.sparse matrix]
        The layer's parameters by local name.
    x : array_like
        ``(batch, T, d_in)``, or one sequence ``(T, d_in)``.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``scores`` ``S_h = score_scale * Q_h K_h^T`` and ``probs``
        ``P_h = softmax(S_h)``, both ``(batch, heads, T, T)`` (query rows, key
        columns; ``(heads, T, T)`` for one sequence). Masked-out entries have
        score ``-inf`` and probability 0.

    Raises
    ------
    InputError
        ``layer`` not a MultiHeadAttention, or ``x`` not real and finite.
    ShapeError
        ``x`` of the wrong shape (a table mask fixes ``T``).
    """
    if not isinstance(layer, MultiHeadAttention):
        raise InputError(f"`layer` must be a MultiHeadAttention; received {format_value(layer)}")
    arr = np.asarray(x)
    if arr.dtype.kind not in "iuf" or not np.isfinite(arr).all():
        raise InputError(f"`x` must hold finite real numbers; received {format_value(x)}")
    single = arr.ndim == 2
    arr = np.asarray(arr[None] if single else arr, dtype=np.float64)
    layer._check_x(arr)
    layer.output_shape(arr.shape[1:])
    _, p, q, k, _ = layer._forward(params, arr)
    scores = (q @ k.transpose(0, 1, 3, 2)) * layer.score_scale
    allowed = layer.allowed(arr.shape[1])
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    return (scores[0], p[0]) if single else (scores, p)


def merged_matrices(layer: MultiHeadAttention, params: Mapping[str, Any]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The per-head merged query-key and value-output matrices of an attention layer.

    With ``Wq_h = q_weight[h*d_qk:(h+1)*d_qk]`` (likewise ``Wk_h``, ``Wv_h``)
    and ``Wo_h = out_weight[:, h*d_v:(h+1)*d_v]``:

    - ``qk[h] = score_scale * Wq_h^T Wk_h`` (``d_in x d_in``), so head ``h``'s
      scores are ``x qk[h] x^T``: the paper's ``W_QK = W_Q W_K^T / sqrt(d_K)``;
    - ``vo[h] = Wv_h^T Wo_h^T`` (``d_in x d_out``), so head ``h`` contributes
      ``P_h x vo[h]`` to the output: the paper's ``W_VO = W_V W_O``.

    These are the matrices the proof of Otsuka et al. 2025 (arXiv 2511.04217,
    Theorem 3) approximates by products of two pruned random factors.

    Parameters
    ----------
    layer : MultiHeadAttention
        Without biases (``bias=False``).
    params : Mapping[str, array_like or scipy.sparse matrix]
        The layer's weights by local name.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``qk`` of shape ``(heads, d_in, d_in)`` and ``vo`` of shape
        ``(heads, d_in, d_out)``, float64.

    Raises
    ------
    InputError
        ``layer`` not a MultiHeadAttention, a layer with biases (the merged
        form has no place for them), or a missing weight.
    ShapeError
        A weight of the wrong shape.
    """
    if not isinstance(layer, MultiHeadAttention):
        raise InputError(
            f"`layer` must be a MultiHeadAttention; received {format_value(layer)}"
        )
    if layer.bias:
        raise InputError(
            f"`layer` must have bias=False: the merged matrices W_QK, W_VO describe attention "
            f"without projection biases; received {layer!r}"
        )
    if not isinstance(params, Mapping):
        raise InputError(f"`params` must be a mapping of the layer's weights; received "
                         f"{format_value(params)}")
    w = {}
    for name, shape in layer.param_specs().items():
        if name not in params:
            raise InputError(f"`params` lacks {name!r}, an array of shape {shape}")
        value = params[name]
        arr = value.toarray() if sp.issparse(value) else np.asarray(value, dtype=np.float64)
        if arr.shape != shape:
            raise ShapeError(f"`params['{name}']` must have shape {shape}; received shape "
                             f"{arr.shape}")
        w[name] = np.asarray(arr, dtype=np.float64)
    h, dqk, dv = layer.heads, layer.d_qk, layer.d_v
    wq = w["q_weight"].reshape(h, dqk, layer.d_in)
    wk = w["k_weight"].reshape(h, dqk, layer.d_in)
    wv = w["v_weight"].reshape(h, dv, layer.d_in)
    wo = w["out_weight"].reshape(layer.d_out, h, dv).transpose(1, 0, 2)  # (H, d_out, d_v)
    qk = layer.score_scale * (wq.transpose(0, 2, 1) @ wk)
    vo = wv.transpose(0, 2, 1) @ wo.transpose(0, 2, 1)
    return qk, vo


def transformer_block(d: int, heads: int, d_qk: int, d_v: int, d_ff: int, *,
                      mask: Any = None, scale: float | None = None,
                      bias: bool = False) -> list[Layer]:
    """The transformer block of Otsuka et al. 2025 without normalisation, as two layers.

    ``Blk(x) = F(A + x) + A + x`` with ``A = Attn(x)`` and ``F`` the ReLU MLP
    ``Dense(d, d_ff) -> ReLU -> Dense(d_ff, d)`` applied token by token
    (arXiv 2511.04217, the block of their transformer theorem). As layers:
    ``[Residual([MultiHeadAttention(d, d, ...)]), Residual([Dense, ReLU, Dense])]``,
    the first giving ``z = x + A``, the second ``z + F(z)``.

    Parameters
    ----------
    d : int
        Token width (the block keeps it).
    heads, d_qk, d_v : int
        As in :class:`MultiHeadAttention`.
    d_ff : int
        Hidden width of ``F``.
    mask : None, "causal" or T x T table of bool, optional
        The attention mask (see :class:`MultiHeadAttention`).
    scale : float, optional
        The attention's score scale (default ``1 / sqrt(d_qk)``).
    bias : bool, default False
        Biases on every projection and on both Dense layers (the paper's block
        has none).

    Returns
    -------
    list of Layer
        Two :class:`~slth.nets.Residual` layers; a stack of blocks is their
        concatenation. Give the network its ``input_shape`` ``(T, d)``.

    Examples
    --------
    >>> from slth.nets import Network
    >>> layers = transformer_block(4, 2, 2, 2, 8) + transformer_block(4, 2, 2, 2, 8)
    >>> net = Network.random(layers, rng=0, input_shape=(5, 4))
    >>> net.output_shape
    (5, 4)
    """
    d = _check_int(d, "d")
    d_ff = _check_int(d_ff, "d_ff")
    attn = MultiHeadAttention(d, d, heads, d_qk, d_v, scale=scale, mask=mask, bias=bias)
    return [
        Residual([attn]),
        Residual([Dense(d, d_ff, bias=attn.bias), ReLU(), Dense(d_ff, d, bias=attn.bias)]),
    ]

