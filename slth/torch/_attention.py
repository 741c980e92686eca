"""Torch table entries of :class:`slth.nets.attention.MultiHeadAttention`.

Registered at import (``slth.torch`` imports this module). Three module forms:

- :class:`MultiHeadAttentionModule`, what :func:`~slth.torch.network_to_torch`
  builds: the slth layer's arithmetic in torch, with its parameters under the
  slth names (``q_weight``, ``k_weight``, ``v_weight``, ``out_weight`` and the
  biases) as ``nn.Parameter`` attributes. So a network's ``state_dict`` keys
  stay its parameter names, and ``torch.nn.utils.prune`` (used by
  :func:`slth.torch.to_module` for tickets) masks each one. Every layer
  variant maps: ``d_in != d_out``, ``d_qk != d_v``, any score scale, masks.
- :class:`SelfAttention`, a wrapper making a ``torch.nn.MultiheadAttention``
  a one-input module (``x -> mha(x, x, x)``) that can sit in an
  ``nn.Sequential``; :func:`multihead_attention_module` builds one from an
  slth layer (the way back to torch's own module).
- a bare ``torch.nn.MultiheadAttention`` child of a Sequential is read too
  (as self-attention without a mask; ``batch_first=True`` required there,
  since the sequence is then the module's input as given).

The packed mapping
------------------
``nn.MultiheadAttention(embed_dim=E, num_heads=H, bias=b)`` with ``kdim =
vdim = E`` holds ``in_proj_weight`` of shape ``(3E, E)`` and ``out_proj``, a
Linear ``E -> E``. It reads as ``MultiHeadAttention(E, E, H, E // H, E // H,
bias=b)``:

- ``in_proj_weight[0:E]`` -> ``q_weight``, ``[E:2E]`` -> ``k_weight``,
  ``[2E:3E]`` -> ``v_weight`` (head ``h`` owns rows ``h*E/H:(h+1)*E/H`` of
  each, as in the slth layer);
- ``in_proj_bias`` likewise -> ``q_bias``, ``k_bias``, ``v_bias``;
- ``out_proj.weight`` -> ``out_weight``, ``out_proj.bias`` -> ``out_bias``;
- torch's score scale is ``1 / sqrt(E / H)``, the slth default
  ``1 / sqrt(d_qk)``.

An slth layer maps back to ``nn.MultiheadAttention`` only when
``d_in = d_out = heads * d_qk = heads * d_v`` and its score scale is the
default; otherwise :func:`multihead_attention_module` raises
:class:`~slth.errors.InputError` (use :class:`MultiHeadAttentionModule`).
Not supported when reading (InputError naming the option): ``kdim`` or
``vdim`` other than ``embed_dim`` (separate ``q/k/v_proj_weight``),
``add_bias_kv=True``, ``add_zero_attn=True``. Dropout is not part of the slth
function: the layer read is the module's evaluation-mode (``.eval()``)
function, as for any dropout.

Masks
-----
slth's table masks say True where a query *attends* to a key;
``nn.MultiheadAttention``'s boolean ``attn_mask`` says True where it is *not
allowed* to attend. :class:`SelfAttention` takes torch's convention (it wraps
torch's module); :class:`MultiHeadAttentionModule` slth's. The converters
invert the table between the two.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import InputError, ShapeError, format_value
from ..nets.attention import MultiHeadAttention
from ..nets.base import Layer
from ._common import as_device, as_dtype
from ._table import BuildContext, ReadContext, register_torch_layer

__all__ = ["MultiHeadAttentionModule", "SelfAttention", "multihead_attention_module"]

_WEIGHTS = ("q_weight", "k_weight", "v_weight", "out_weight")
_BIASES = ("q_bias", "k_bias", "v_bias", "out_bias")


# ====================================================================== modules
class MultiHeadAttentionModule(nn.Module):
    """The torch form of :class:`slth.nets.attention.MultiHeadAttention`, slth names kept.

    ``x -> concat_h(softmax(scale * Q_h K_h^T) V_h) out_weight^T + out_bias``
    on batch-first sequences ``(batch, T, d_in)``, with masked entries excluded
    from the softmax (as the slth layer).

    Parameters
    ----------
    q_weight, k_weight : torch.Tensor
        ``(heads * d_qk, d_in)``.
    v_weight : torch.Tensor
        ``(heads * d_v, d_in)``.
    out_weight : torch.Tensor
        ``(d_out, heads * d_v)``.
    heads : int
    scale : float, optional
        The slth layer's ``scale`` field: the score scale, None meaning
        ``1 / sqrt(d_qk)``. :attr:`score_scale` is the number used.
    mask : None, "causal" or torch.Tensor, optional
        slth's convention: a bool ``(T, T)`` tensor True where query ``i``
        attends to key ``j`` (kept as a non-persistent buffer: not in the
        ``state_dict``, which holds the parameters only).
    biases : mapping of str to torch.Tensor, optional
        ``q_bias``, ``k_bias``, ``v_bias``, ``out_bias`` (all four or none).

    Notes
    -----
    The weights and biases are ``nn.Parameter`` attributes named as the slth
    layer's parameters, read at every call (so ``torch.nn.utils.prune``'s
    recomputed attributes are used).
    """

    def __init__(self, q_weight: torch.Tensor, k_weight: torch.Tensor, v_weight: torch.Tensor,
                 out_weight: torch.Tensor, *, heads: int, scale: float | None = None,
                 mask: str | torch.Tensor | None = None,
                 biases: Mapping[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        self.heads = int(heads)
        self.d_qk = int(q_weight.shape[0]) // self.heads
        self.scale = None if scale is None else float(scale)
        self.score_scale = 1.0 / math.sqrt(self.d_qk) if scale is None else float(scale)
        self.d_v = int(v_weight.shape[0]) // self.heads
        self.d_in = int(q_weight.shape[1])
        self.d_out = int(out_weight.shape[0])
        for name, w in zip(_WEIGHTS, (q_weight, k_weight, v_weight, out_weight)):
            self.register_parameter(name, nn.Parameter(w))
        for name in _BIASES:
            b = None if biases is None else biases[name]
            self.register_parameter(name, None if b is None else nn.Parameter(b))
        self.causal = isinstance(mask, str) and mask == "causal"
        table = mask if isinstance(mask, torch.Tensor) else None
        self.register_buffer("allowed", table, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        h = self.heads
        q = F.linear(x, self.q_weight, self.q_bias).view(b, t, h, self.d_qk).transpose(1, 2)
        k = F.linear(x, self.k_weight, self.k_bias).view(b, t, h, self.d_qk).transpose(1, 2)
        v = F.linear(x, self.v_weight, self.v_bias).view(b, t, h, self.d_v).transpose(1, 2)
        scores = (q @ k.transpose(-1, -2)) * self.score_scale
        allowed = self.allowed
        if self.causal:
            allowed = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        if allowed is not None:
            scores = scores.masked_fill(~allowed, float("-inf"))
        p = torch.softmax(scores, dim=-1)
        o = (p @ v).transpose(1, 2).reshape(b, t, h * self.d_v)
        return F.linear(o, self.out_weight, self.out_bias)

    def extra_repr(self) -> str:
        mask = "causal" if self.causal else (
            "none" if self.allowed is None else f"table {tuple(self.allowed.shape)}")
        return (f"d_in={self.d_in}, d_out={self.d_out}, heads={self.heads}, d_qk={self.d_qk}, "
                f"d_v={self.d_v}, scale={self.scale!r}, mask={mask}, "
                f"bias={self.q_bias is not None}")


def _check_torch_mask(mask: Any) -> str | torch.Tensor | None:
    """SelfAttention's mask: None, "causal" or a bool (T, T) tensor, True = NOT allowed."""
    if mask is None or (isinstance(mask, str) and mask == "causal"):
        return mask
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.ndim != 2 \
            or mask.shape[0] != mask.shape[1] or mask.shape[0] < 1:
        raise InputError(
            "`mask` must be None, 'causal' or a square bool tensor (T, T) in torch's attn_mask "
            f"convention (True = not allowed to attend); received {format_value(mask)}"
        )
    blocked = mask.all(dim=1)
    if bool(blocked.any()):
        row = int(torch.nonzero(blocked)[0, 0])
        raise InputError(
            f"`mask` row {row} blocks every key (True = not allowed): every query must be "
            "allowed at least one key"
        )
    return mask.clone()


class SelfAttention(nn.Module):
    """``x -> mha(x, x, x)``: a ``torch.nn.MultiheadAttention`` as a one-input module.

    ``nn.MultiheadAttention`` takes ``(query, key, value)`` and returns a pair,
    so it cannot sit in an ``nn.Sequential``; this wrapper can, and
    :func:`slth.torch.network_from_torch` reads it as a
    :class:`~slth.nets.attention.MultiHeadAttention` (see the module docstring
    for the mapping).

    Parameters
    ----------
    mha : torch.nn.MultiheadAttention
        Either ``batch_first``: the wrapper always takes batch-first
        sequences ``(batch, T, E)`` (transposing for a sequence-first module).
    mask : None, "causal" or torch.Tensor, optional
        torch's boolean ``attn_mask`` convention: a ``(T, T)`` bool tensor,
        True where query ``i`` is NOT allowed to attend to key ``j`` (every
        row must allow one key); ``"causal"`` blocks the keys after each query
        (any ``T``). Kept as a non-persistent buffer (it moves with
        ``.to(device)``; not in the ``state_dict``).

    Attributes
    ----------
    mha : torch.nn.MultiheadAttention
    causal : bool
    attn_mask : torch.Tensor or None
    """

    def __init__(self, mha: nn.MultiheadAttention, mask: str | torch.Tensor | None = None
                 ) -> None:
        super().__init__()
        if not isinstance(mha, nn.MultiheadAttention):
            raise InputError(
                f"`mha` must be a torch.nn.MultiheadAttention; received {format_value(mha)}"
            )
        mask = _check_torch_mask(mask)
        self.mha = mha
        self.causal = isinstance(mask, str)
        self.register_buffer("attn_mask", mask if isinstance(mask, torch.Tensor) else None,
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        mask = self.attn_mask
        if self.causal:
            mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        h = x if self.mha.batch_first else x.transpose(0, 1)
        y = self.mha(h, h, h, need_weights=False, attn_mask=mask)[0]
        return y if self.mha.batch_first else y.transpose(0, 1)

    def extra_repr(self) -> str:
        if self.causal:
            return "mask=causal"
        return "mask=none" if self.attn_mask is None else \
            f"mask=table {tuple(self.attn_mask.shape)}"


# ====================================================================== slth -> torch
def _to_module(layer: MultiHeadAttention, params: Mapping[str, Any], ctx: BuildContext
               ) -> nn.Module:
    weights = [ctx.tensor(params[n]) for n in _WEIGHTS]
    biases = {n: ctx.tensor(params[n]) for n in _BIASES} if layer.bias else None
    mask: str | torch.Tensor | None = None
    if layer.mask == "causal":
        mask = "causal"
    elif layer.mask is not None:
        mask = torch.tensor(layer.mask, dtype=torch.bool, device=ctx.device)
    return MultiHeadAttentionModule(*weights, heads=layer.heads, scale=layer.scale,
                                    mask=mask, biases=biases)


def multihead_attention_module(layer: MultiHeadAttention, params: Mapping[str, Any], *,
                               device: Any = None,
                               dtype: torch.dtype | str = torch.float64) -> SelfAttention:
    """An slth attention layer as ``SelfAttention(torch.nn.MultiheadAttention)``.

    The inverse of reading a :class:`SelfAttention` (see the module docstring
    for the packed ``in_proj_weight`` mapping); exact in float64.

    Parameters
    ----------
    layer : MultiHeadAttention
        With ``d_in = d_out = heads * d_qk = heads * d_v`` and the default
        score scale ``1 / sqrt(d_qk)`` (what ``nn.MultiheadAttention`` can
        express).
    params : Mapping[str, array_like or scipy.sparse matrix]
        The layer's parameters by local name (a sparse weight is densified).
    device : torch.device or str, optional
        Default: ``cuda`` when available, else ``cpu``.
    dtype : {torch.float64, torch.float32, "float64", "float32"}, default torch.float64

    Returns
    -------
    SelfAttention
        ``batch_first=True``, ``dropout=0``; the layer's mask as a torch
        ``attn_mask`` (True = not allowed).

    Raises
    ------
    InputError
        A layer ``nn.MultiheadAttention`` cannot express (the message says
        which condition fails), or a missing parameter.
    """
    if not isinstance(layer, MultiHeadAttention):
        raise InputError(f"`layer` must be a MultiHeadAttention; received "
                         f"{format_value(layer)}")
    e = layer.d_in
    if not (layer.d_out == e and layer.heads * layer.d_qk == e and layer.heads * layer.d_v == e):
        raise InputError(
            "`layer` must have d_in = d_out = heads * d_qk = heads * d_v (torch.nn."
            f"MultiheadAttention's embed_dim) to map to torch's module; received {layer!r} "
            "(use slth.torch.network_to_torch, whose MultiHeadAttentionModule takes any shape)"
        )
    if layer.scale is not None and layer.scale != 1.0 / math.sqrt(layer.d_qk):
        raise InputError(
            f"`layer` must use the default score scale 1/sqrt(d_qk) = "
            f"{1.0 / math.sqrt(layer.d_qk)!r} (torch.nn.MultiheadAttention's); received "
            f"scale={layer.scale!r}"
        )
    dev, dt = as_device(device), as_dtype(dtype)
    ctx = BuildContext(dev, dt, "", "params")
    for name in layer.param_specs():
        if name not in params:
            raise InputError(f"`params` lacks {name!r}, an array of shape "
                             f"{layer.param_specs()[name]}")
    w = {n: ctx.tensor(params[n], f"params['{n}']") for n in layer.param_specs()}
    for n, shape in layer.param_specs().items():
        if tuple(w[n].shape) != shape:
            raise ShapeError(f"`params['{n}']` must have shape {shape}; received shape "
                             f"{tuple(w[n].shape)}")
    mha = nn.MultiheadAttention(e, layer.heads, bias=layer.bias, batch_first=True,
                                device=dev, dtype=dt)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([w["q_weight"], w["k_weight"], w["v_weight"]]))
        mha.out_proj.weight.copy_(w["out_weight"])
        if layer.bias:
            mha.in_proj_bias.copy_(torch.cat([w["q_bias"], w["k_bias"], w["v_bias"]]))
            mha.out_proj.bias.copy_(w["out_bias"])
    mask: str | torch.Tensor | None = None
    if layer.mask == "causal":
        mask = "causal"
    elif layer.mask is not None:
        mask = ~torch.tensor(layer.mask, dtype=torch.bool, device=dev)
    return SelfAttention(mha, mask)


# ====================================================================== torch -> slth
def _unsupported(ctx: ReadContext, module: nn.Module, option: str, value: Any,
                 allowed: str) -> InputError:
    where = f" at `{ctx.path}`" if ctx.path else ""
    return InputError(
        f"`module` {type(module).__name__}{where} has {option}={value!r}, which the slth "
        f"attention layer does not support; allowed: {allowed}"
    )


def _read_mha(m: nn.MultiheadAttention, ctx: ReadContext, mask: Any
              ) -> tuple[Layer, dict[str, np.ndarray]]:
    if not m._qkv_same_embed_dim:
        raise _unsupported(ctx, m, "kdim/vdim", (m.kdim, m.vdim),
                           f"both equal to embed_dim={m.embed_dim} (self-attention)")
    if m.bias_k is not None or m.bias_v is not None:
        raise _unsupported(ctx, m, "add_bias_kv", True, "False")
    if m.add_zero_attn:
        raise _unsupported(ctx, m, "add_zero_attn", True, "False")
    e, h = int(m.embed_dim), int(m.num_heads)
    w = ctx.array(m.in_proj_weight)
    params = {"q_weight": w[:e], "k_weight": w[e:2 * e], "v_weight": w[2 * e:],
              "out_weight": ctx.array(m.out_proj.weight)}
    in_bias, out_bias = m.in_proj_bias, m.out_proj.bias
    bias = in_bias is not None or out_bias is not None
    if bias:
        b = np.zeros(3 * e) if in_bias is None else ctx.array(in_bias)
        params.update({"q_bias": b[:e], "k_bias": b[e:2 * e], "v_bias": b[2 * e:],
                       "out_bias": np.zeros(e) if out_bias is None else ctx.array(out_bias)})
    params = {k: np.ascontiguousarray(v) for k, v in params.items()}
    layer = MultiHeadAttention(e, e, h, e // h, e // h, mask=mask, bias=bias)
    return layer, params


def _from_module(m: nn.Module, ctx: ReadContext) -> tuple[Layer, dict[str, np.ndarray]]:
    if isinstance(m, MultiHeadAttentionModule):
        names = _WEIGHTS + (_BIASES if m.q_bias is not None else ())
        params = {n: ctx.array(getattr(m, n)) for n in names}
        mask: Any = "causal" if m.causal else (
            None if m.allowed is None else m.allowed.detach().cpu().numpy().astype(bool))
        layer = MultiHeadAttention(m.d_in, m.d_out, m.heads, m.d_qk, m.d_v, scale=m.scale,
                                   mask=mask, bias=m.q_bias is not None)
        return layer, params
    if isinstance(m, SelfAttention):
        mask = "causal" if m.causal else (
            None if m.attn_mask is None else ~m.attn_mask.detach().cpu().numpy().astype(bool))
        return _read_mha(m.mha, ReadContext(f"{ctx.path}.mha" if ctx.path else "mha"), mask)
    if not m.batch_first:
        raise _unsupported(ctx, m, "batch_first", False,
                           "True for a bare nn.MultiheadAttention in a Sequential (wrap a "
                           "sequence-first one in slth.torch.SelfAttention)")
    return _read_mha(m, ctx, None)


register_torch_layer(MultiHeadAttention, to_module=_to_module, from_module=_from_module,
                     module_type=(MultiHeadAttentionModule, SelfAttention,
                                  nn.MultiheadAttention))
