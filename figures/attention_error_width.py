"""Figure: attention and transformer tickets (Otsuka et al. 2025) against width, length, depth.

Reproduces the experiments of Otsuka, Chijiwa, Okoshi, Fujiki, Takeuchi, Motomura, "The
Strong Lottery Ticket Hypothesis for Multi-Head Attention Mechanisms" (AAAI-26, arXiv
2511.04217, Figs. 4-6; ``../shared/THEORY.md``) with slth's construction
(:mod:`slth.constructions.otsuka2025`, Theorem 3) in place of their MIP solver.

The task (the paper's angular-velocity regression)
--------------------------------------------------
A sequence of T tokens ``x_t = (cos(w t + th0), sin(w t + th0))``, ``t = 0..T-1``, with
``w ~ U[-pi, pi]`` and ``th0 ~ U[0, pi]``, is preceded by a regression token ``r`` (a learned
vector, initialised at zero); the target is ``w``, read at the regression token's output.
The target (:func:`train_target`) is a single-head attention 2 -> 1 with query/key and
value widths :data:`HEAD_DIMS` (slth's choice; the paper does not state them) and no
biases, trained with torch (:func:`train_target`; seeded by one numpy Generator: data,
Xavier-uniform initialisation, shuffling; AdamW, batch 1024, lr 0.1, 25 epochs, weight
decay 0.01, 10k training samples, each batch at a length T drawn from 4, 8, ..., 256 as the
paper trains on 4 to 256). Without torch the same training runs in numpy (hand-derived
gradients, the same AdamW update; identical to rounding). Its weights are copied into an
slth ``MultiHeadAttention`` (``torch`` cannot express a 2 -> 1 ``nn.MultiheadAttention``,
whose output width is its embedding width). Attention has no positional encoding, so the
target sees the tokens as a set and regresses w poorly (its validation MSE is in
``attention_error_width_target.csv``); the figure is about approximating it, not about the
task.

Rescaling (Theorem 3's norm assumptions)
----------------------------------------
The trained merged matrices need not have spectral norm <= 1. With ``c = max(1,
sqrt(||W_QK||_2), ||W_VO||_2)``, the figure divides ``W_QK`` by ``c^2`` and ``W_VO`` by
``c`` and multiplies every input token (the regression token included) by ``c``: the
function is unchanged, the assumptions hold, and the token norms are at most ``alpha =
max(sqrt 2, c max(1, ||r||))``. Random (untrained) targets are scaled to per-head merged
norms 1 and take a zero regression token.

Panels
------
(a) Width: ``n_K = n_V = n`` from 10 to 100, :data:`FULL` ``["sources"]`` seeded sources per
    width (quick: 8): mean and std over the sources of the max output error (all T + 1 =
    5 outputs of every one of the test sequences, T = 4) and the medians, for the trained
    target and for random targets (one per source), the fitted ``a exp(-b n)`` of each
    mean curve (points <= :data:`FIT_FLOOR` left out: the solver's and rounding floor),
    and the paper's ``0.8 exp(-0.06 n)`` on the same axes. Blocks of ``n // 2`` units:
    exact subset sums up to 40 units (n <= 80); beyond, ``weight_eps = 1e-12`` with
    ``on_failure="report"`` (the solver's floor, about 1e-11; the CSV's ``solve`` column).
(b) Length: the trained target's tickets at n = 20 and 40 (one each), error against T =
    8 ... 8192 through :func:`slth.constructions.otsuka2025.sequence_forward` (the same
    parameters at every length): flat, as Theorem 3 says.
(c) Depth: 1-4 untrained transformer blocks (:func:`slth.nets.attention.transformer_block`,
    dims 2, one head, Q/K and value dims 8, F hidden width 8, merged norms and F's
    spectral norms 1), ``n_qk = n_v = n_MHA`` and ``n_ff = n_FC // (2 d)`` (``n_FC``: F's
    source hidden width per Pensia layer) with ``n_MHA = n_FC`` from 100 to 225; blocks
    of more than 40 units cannot be solved exactly, so every instance uses ``weight_eps
    = 1e-12`` with ``on_failure="report"``; one decay rate shared across the depths (per-
    depth levels), fitted by least squares on the log mean errors.
(d) Wider: random targets with H in {1, 4, 8} and d = d1 = d2 in {8, 32}, error against
    the units per input coordinate ``m = n / d`` (``n_K = n_V = d m``), tokens of norm
    ``alpha = sqrt d`` (the theorem's), fewer sources (:data:`FULL` ``["wide_sources"]``)
    to keep the run within minutes on 2 cores.

Where slth differs from the paper: slth solves each merged entry's subset sum (exactly, or
to ``weight_eps``), so its error halves with about every two extra units per block and
falls far faster than the paper's ``0.8 exp(-0.06 n)``, which came from a MIP (Gurobi)
minimising another objective (the output error on sample sequences, under a time limit);
slth's sources follow Theorem 3's initialisation (U[-n_K^(1/4), n_K^(1/4)] query/key,
U[-1, 1] value/output), not the Xavier-uniform of the paper's Appendix B.1; the error
metric (max over test sequences and tokens, l2) is slth's reading of an undefined one.

Outputs in ``out_dir``: ``attention_error_width.csv`` (panel a, one row per target kind,
n and source), ``attention_error_width_fit.csv`` (the fits of panels a and c),
``attention_error_width_T.csv``, ``attention_error_width_blocks.csv``,
``attention_error_width_wide.csv``, ``attention_error_width_target.csv`` (the trained
target: loss, scale c, alpha), ``attention_error_width.png`` and ``.pdf``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slth import InputError
from slth.constructions import otsuka2025 as ot
from slth.nets import Dense, Network, Residual
from slth.nets.attention import MultiHeadAttention, merged_matrices, transformer_block

from ._style import new_figure, save_figure, style, write_csv

__all__ = [
    "BLOCK_COLUMNS",
    "CSV_COLUMNS",
    "FIT_COLUMNS",
    "FIT_FLOOR",
    "HEAD_DIMS",
    "NAME",
    "PAPER_LAW",
    "TARGET_COLUMNS",
    "T_COLUMNS",
    "WIDE_COLUMNS",
    "angular_sequences",
    "fit_exp",
    "fit_shared_rate",
    "main",
    "plot",
    "random_attention",
    "random_blocks",
    "read_rows",
    "rescale",
    "series",
    "to_slth",
    "train_target",
]

NAME = "attention_error_width"
#: Query/key and value width of the trained single-head target (slth's choice).
HEAD_DIMS = (4, 4)
#: The paper's fitted law of Fig. 4: ``0.8 exp(-0.06 n)``.
PAPER_LAW = (0.8, 0.06)
#: Points at or below this error are left out of the fits (the solver's and rounding floor).
FIT_FLOOR = 1e-9
#: Weight tolerance where blocks exceed the exact solver's 40 units.
WEIGHT_EPS = 1e-12
_EXACT_UNITS = 40

QUICK: dict[str, Any] = {
    "train": {"samples": 2000, "epochs": 2, "batch": 1024, "T_choices": [4, 8]},
    "ns": [10, 20, 30], "sources": 8, "test": 64,
    "T_ns": [20], "Ts": [8, 64],
    "block_ns": [100], "blocks": [1, 2], "block_sources": 1, "block_test": 16,
    "wide": [(1, 8), (4, 8)], "wide_ms": [2, 4], "wide_sources": 1, "wide_test": 16,
}
FULL: dict[str, Any] = {
    "train": {"samples": 10_000, "epochs": 25, "batch": 1024,
              "T_choices": [4, 8, 16, 32, 64, 128, 256]},
    "ns": list(range(10, 101, 10)), "sources": 100, "test": 1000,
    "T_ns": [20, 40], "Ts": [2 ** k for k in range(3, 14)],
    "block_ns": [100, 125, 150, 175, 200, 225], "blocks": [1, 2, 3, 4], "block_sources": 4,
    "block_test": 256,
    "wide": [(h, d) for d in (8, 32) for h in (1, 4, 8)], "wide_ms": [2, 4, 8, 12, 16],
    "wide_sources": 3, "wide_test": 64,
}
TRAIN: dict[str, float] = {"lr": 0.1, "weight_decay": 0.01}

CSV_COLUMNS = ("target", "n", "source", "solve", "max_error", "reg_token_error", "mode")
FIT_COLUMNS = ("panel", "series", "a", "b", "n_min", "n_max", "points", "mode")
T_COLUMNS = ("n", "T", "sequences", "max_error", "mean_token_error", "mode")
BLOCK_COLUMNS = ("blocks", "n", "n_ff", "source", "max_error", "n_failed", "mode")
WIDE_COLUMNS = ("heads", "d", "m", "n", "source", "max_error", "mode")
TARGET_COLUMNS = ("key", "value", "mode")


# ----------------------------------------------------------------------------- the task
def angular_sequences(count: int, T: int, rng: Any) -> tuple[np.ndarray, np.ndarray]:
    """``count`` sequences of the angular-velocity task (without the regression token).

    Parameters
    ----------
    count, T : int
        Number of sequences and tokens per sequence (>= 1).
    rng : int or numpy.random.Generator

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Tokens ``(count, T, 2)``: ``(cos(w t + th0), sin(w t + th0))``, ``t = 0..T-1``;
        and the angular velocities ``w`` ``(count,)``, ``w ~ U[-pi, pi]``, ``th0 ~ U[0, pi]``.
    """
    for nm, v in (("count", count), ("T", T)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise InputError(f"`{nm}` must be an int >= 1; received {v!r}")
    g = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    w = g.uniform(-math.pi, math.pi, int(count))
    th0 = g.uniform(0.0, math.pi, int(count))
    ang = w[:, None] * np.arange(int(T))[None, :] + th0[:, None]
    return np.stack([np.cos(ang), np.sin(ang)], axis=-1), w


def _with_token(x: np.ndarray, r: np.ndarray, c: float) -> np.ndarray:
    """Prepend the regression token and scale every token by c."""
    tok = np.broadcast_to(np.asarray(r, dtype=float), (x.shape[0], 1, x.shape[2]))
    return c * np.concatenate([tok, x], axis=1)


# ----------------------------------------------------------------------------- training
def _xavier(g: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    b = math.sqrt(6.0 / (rows + cols))
    return g.uniform(-b, b, (rows, cols))


def _task_inputs(token: Any, w: Any, th: Any, T: int, lib: Any) -> Any:
    """``(B, T + 1, 2)`` inputs: the regression token, then the task's tokens (numpy or torch)."""
    t = lib.arange(T, dtype=lib.float64)
    ang = w[:, None] * t[None, :] + th[:, None]
    x = lib.stack([lib.cos(ang), lib.sin(ang)], -1)
    if lib is np:
        return np.concatenate([np.broadcast_to(token, (x.shape[0], 1, 2)), x], axis=1)
    return lib.cat([token.expand(x.shape[0], 1, 2), x], dim=1)


def _np_loss_grads(P: dict[str, np.ndarray], x: np.ndarray, w: np.ndarray, dqk: int
                   ) -> tuple[float, dict[str, np.ndarray]]:
    """MSE of the regression token's output and its gradients (hand-derived, numpy).

    Only the regression token's query row matters for the loss: ``s_t = (Wq r) . (Wk x_t) /
    sqrt(d_qk)``, ``p = softmax(s)``, ``pred = sum_t p_t o . (Wv x_t)``.
    """
    rt = math.sqrt(dqk)
    Wq, Wk, Wv, o = P["q_weight"], P["k_weight"], P["v_weight"], P["out_weight"][0]
    q0 = x[:, 0] @ Wq.T
    k = x @ Wk.T
    s = np.einsum("bd,btd->bt", q0, k) / rt
    p = np.exp(s - s.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    v = x @ Wv.T
    u = v @ o
    pred = np.sum(p * u, axis=1)
    B = x.shape[0]
    gp = 2.0 * (pred - w) / B
    du = gp[:, None] * p
    ds = gp[:, None] * p * (u - pred[:, None])
    dvv = du[..., None] * o
    dq0 = np.einsum("bt,btd->bd", ds, k) / rt
    dk = ds[..., None] * q0[:, None, :] / rt
    dx = dvv @ Wv + dk @ Wk
    dx[:, 0] += dq0 @ Wq
    grads = {"q_weight": dq0.T @ x[:, 0], "k_weight": np.einsum("btd,bte->de", dk, x),
             "v_weight": np.einsum("btd,bte->de", dvv, x),
             "out_weight": np.einsum("bt,btd->d", du, v)[None, :],
             "token": dx[:, 0].sum(axis=0)}
    return float(np.mean((pred - w) ** 2)), grads


def train_target(rng: int = 0, *, samples: int = 10_000, epochs: int = 25, batch: int = 1024,
                 T_choices: Sequence[int] = (4, 8, 16, 32, 64, 128, 256),
                 head_dims: tuple[int, int] = HEAD_DIMS, backend: str = "auto"
                 ) -> dict[str, Any]:
    """Train the single-head 2 -> 1 attention on the angular-velocity task.

    With torch (autograd and ``torch.optim.AdamW``) when it is installed; otherwise, or
    with ``backend="numpy"``, with hand-derived gradients and the same AdamW update in
    numpy (the same data, initialisation and batches, float64 both: the two agree to
    rounding, which the tests check).

    Parameters
    ----------
    rng : int, default 0
        Seed of one numpy Generator: data, Xavier-uniform initialisation, shuffling and
        each batch's length (no global seeding).
    samples, epochs, batch : int
        Training samples, epochs, batch size (AdamW, lr 0.1, weight decay 0.01, betas
        (0.9, 0.999), eps 1e-8: torch's defaults).
    T_choices : sequence of int
        Each batch's length is drawn from these.
    head_dims : (int, int)
        Query/key and value width.
    backend : {"auto", "torch", "numpy"}, default "auto"

    Returns
    -------
    dict
        ``params`` (numpy ``q_weight``, ``k_weight``, ``v_weight``, ``out_weight`` in slth's
        layout), ``token`` (the learned regression token), ``head_dims``, ``train_mse``
        (last epoch), ``val_mse`` and ``val_var`` (on 10k fresh sequences of T = 4),
        ``backend``.

    Raises
    ------
    InputError
        A bad seed or backend, or ``backend="torch"`` without torch.
    """
    if not isinstance(rng, (int, np.integer)) or isinstance(rng, bool):
        raise InputError(f"`rng` must be an int seed; received {rng!r}")
    if backend not in ("auto", "torch", "numpy"):
        raise InputError(f"`backend` must be 'auto', 'torch' or 'numpy'; received {backend!r}")
    torch: Any = None
    if backend != "numpy":
        try:
            import torch
        except ImportError as exc:  # torch is optional
            if backend == "torch":
                raise InputError("`backend='torch'` needs torch (pip install torch)") from exc
    dqk, dv = (int(v) for v in head_dims)
    g = np.random.default_rng(int(rng))
    init = {"q_weight": _xavier(g, dqk, 2), "k_weight": _xavier(g, dqk, 2),
            "v_weight": _xavier(g, dv, 2), "out_weight": _xavier(g, 1, dv),
            "token": np.zeros(2)}
    w_all = g.uniform(-math.pi, math.pi, int(samples))
    th_all = g.uniform(0.0, math.pi, int(samples))
    lr, wd = TRAIN["lr"], TRAIN["weight_decay"]
    b1, b2, adam_eps = 0.9, 0.999, 1e-8
    names = list(init)

    if torch is not None:
        P = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in init.items()}
        opt = torch.optim.AdamW([P[k] for k in names], lr=lr, weight_decay=wd,
                                betas=(b1, b2), eps=adam_eps)

        def predict(w: Any, th: Any, T: int) -> Any:
            x = _task_inputs(P["token"], w, th, T, torch)
            q0 = x[:, 0] @ P["q_weight"].T                   # only the regression token's row
            s = torch.einsum("bd,btd->bt", q0, x @ P["k_weight"].T) / math.sqrt(dqk)
            p = torch.softmax(s, dim=-1)
            return (torch.einsum("bt,btd->bd", p, x @ P["v_weight"].T)
                    @ P["out_weight"].T)[:, 0]

        def step(w: np.ndarray, th: np.ndarray, T: int) -> float:
            wt = torch.from_numpy(w)
            loss = torch.mean((predict(wt, torch.from_numpy(th), T) - wt) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss.item()
    else:
        Pn = {k: v.copy() for k, v in init.items()}
        m1 = {k: np.zeros_like(v) for k, v in init.items()}
        m2 = {k: np.zeros_like(v) for k, v in init.items()}
        count = [0]

        def step(w: np.ndarray, th: np.ndarray, T: int) -> float:
            x = _task_inputs(Pn["token"], w, th, T, np)
            loss, grads = _np_loss_grads(Pn, x, w, dqk)
            count[0] += 1
            c1, c2 = 1.0 - b1 ** count[0], 1.0 - b2 ** count[0]
            for k in names:
                Pn[k] *= 1.0 - lr * wd
                m1[k] = b1 * m1[k] + (1.0 - b1) * grads[k]
                m2[k] = b2 * m2[k] + (1.0 - b2) * grads[k] ** 2
                Pn[k] -= (lr / c1) * m1[k] / (np.sqrt(m2[k]) / math.sqrt(c2) + adam_eps)
            return loss

    last = float("nan")
    for _ in range(int(epochs)):
        perm = g.permutation(int(samples))
        losses = []
        for i in range(0, int(samples), int(batch)):
            idx = perm[i:i + int(batch)]
            T = int(T_choices[int(g.integers(len(T_choices)))])
            losses.append(step(w_all[idx], th_all[idx], T))
        last = float(np.mean(losses))
    final = ({k: P[k].detach().numpy().copy() for k in names} if torch is not None
             else {k: v.copy() for k, v in Pn.items()})
    wv = g.uniform(-math.pi, math.pi, 10_000)
    tv = g.uniform(0.0, math.pi, 10_000)
    x = _task_inputs(final["token"], wv, tv, 4, np)
    pred_loss, _ = _np_loss_grads(final, x, wv, dqk)
    return {"params": {k: final[k] for k in names if k != "token"}, "token": final["token"],
            "head_dims": [dqk, dv], "train_mse": last, "val_mse": pred_loss,
            "val_var": float(np.var(wv)), "backend": "torch" if torch is not None else "numpy"}


def to_slth(trained: dict[str, Any], T: int = 5) -> Network:
    """The trained weights as an slth network ``MultiHeadAttention(2, 1, 1, d_qk, d_v)``.

    Parameters
    ----------
    trained : dict
        From :func:`train_target`.
    T : int, default 5
        Sequence length of the input shape (regression token included).

    Returns
    -------
    Network
    """
    dqk, dv = trained["head_dims"]
    lay = MultiHeadAttention(2, 1, 1, int(dqk), int(dv))
    return Network([lay], {f"layers.0.{k}": np.asarray(v, dtype=float)
                           for k, v in trained["params"].items()}, input_shape=(int(T), 2))


def rescale(net: Network) -> tuple[Network, float]:
    """Divide ``W_QK`` by ``c^2`` and ``W_VO`` by ``c``, ``c = max(1, sqrt||W_QK||, ||W_VO||)``.

    Fed inputs multiplied by ``c``, the returned network computes the same function as
    ``net`` and meets Theorem 3's per-head merged norms <= 1 (single-head networks).

    Parameters
    ----------
    net : Network
        One bias-free single-head ``MultiHeadAttention``.

    Returns
    -------
    (Network, float)
        The rescaled network and ``c``.
    """
    lay = net.layers[0][1]
    p = {k.split(".")[-1]: np.asarray(v, dtype=float) for k, v in net.params.items()}
    qk, vo = merged_matrices(lay, p)
    c = max(1.0, math.sqrt(float(np.linalg.norm(qk[0], 2))), float(np.linalg.norm(vo[0], 2)))
    c *= 1.0 + 2.0 ** -40          # a margin that rounding cannot cross
    s = {"q_weight": c, "k_weight": c, "v_weight": math.sqrt(c), "out_weight": math.sqrt(c)}
    return net.with_params({k: v / s[k.split(".")[-1]] for k, v in net.params.items()}), c


def _unit_heads(net: Network, prefix: str, lay: MultiHeadAttention,
                params: dict[str, np.ndarray]) -> None:
    """Scale each head of ``lay`` (in place in ``params``) to merged norms 1."""
    p = {k: params[f"{prefix}{k}"] for k in lay.param_specs()}
    qk, vo = merged_matrices(lay, p)
    m = 1.0 + 2.0 ** -40
    sq = np.repeat([math.sqrt(np.linalg.norm(M, 2) * m) for M in qk], lay.d_qk)
    sv = np.repeat([math.sqrt(np.linalg.norm(M, 2) * m) for M in vo], lay.d_v)
    params[f"{prefix}q_weight"] = p["q_weight"] / sq[:, None]
    params[f"{prefix}k_weight"] = p["k_weight"] / sq[:, None]
    params[f"{prefix}v_weight"] = p["v_weight"] / sv[:, None]
    params[f"{prefix}out_weight"] = p["out_weight"] / sv[None, :]


def random_attention(d: int, d_out: int, heads: int, seed: int, *, T: int = 5,
                     head_dims: tuple[int, int] = HEAD_DIMS) -> Network:
    """Random bias-free attention with every head's merged matrices of spectral norm 1."""
    lay = MultiHeadAttention(int(d), int(d_out), int(heads), *head_dims)
    net = Network.random([lay], input_shape=(int(T), int(d)), rng=int(seed))
    params = {k: np.asarray(v, dtype=float) for k, v in net.params.items()}
    _unit_heads(net, "layers.0.", lay, params)
    return net.with_params(params)


def random_blocks(blocks: int, seed: int, *, T: int = 5) -> Network:
    """``blocks`` untrained transformer blocks (dims 2, one head, Q/K and V dims 8, F 2-8-2).

    Every attention's merged matrices and every F weight have spectral norm 1. The first
    k blocks of ``random_blocks(4, s)`` are ``random_blocks(k, s)`` (one target family).
    """
    layers: list[Any] = []
    for _ in range(4):
        layers += transformer_block(2, 1, 8, 8, 8)
    net = Network.random(layers, input_shape=(int(T), 2), rng=int(seed))
    params = {k: np.asarray(v, dtype=float) for k, v in net.params.items()}
    for name, lay in net.layers:
        body = lay.body if isinstance(lay, Residual) else []
        for bname, sub in body:
            pre = f"layers.{name}.body.{bname}."
            if isinstance(sub, MultiHeadAttention):
                _unit_heads(net, pre, sub, params)
            elif isinstance(sub, Dense):
                w = params[f"{pre}weight"]
                params[f"{pre}weight"] = w / (np.linalg.norm(w, 2) * (1 + 2.0 ** -40))
    keep = {str(i) for i in range(2 * int(blocks))}
    sub_layers = [(name, lay) for name, lay in net.layers if name in keep]
    sub_params = {k: v for k, v in params.items() if k.split(".")[1] in keep}
    return Network(sub_layers, sub_params, input_shape=(int(T), 2))


# ----------------------------------------------------------------------------- fits
def fit_exp(n: Any, y: Any, *, floor: float = FIT_FLOOR) -> dict[str, Any] | None:
    """Least-squares fit of ``log y = log a - b n`` over the points with ``y > floor``.

    Returns
    -------
    dict or None
        ``a``, ``b``, ``n_min``, ``n_max``, ``points``; None with fewer than 2 points.
    """
    n = np.asarray(n, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(y) & (y > floor)
    if ok.sum() < 2:
        return None
    slope, icpt = np.polyfit(n[ok], np.log(y[ok]), 1)
    return {"a": float(np.exp(icpt)), "b": float(-slope), "n_min": float(n[ok].min()),
            "n_max": float(n[ok].max()), "points": int(ok.sum())}


def fit_shared_rate(series: dict[int, tuple[Any, Any]], *, floor: float = FIT_FLOOR
                    ) -> dict[str, Any] | None:
    """One decay rate ``b`` and one level ``a_k`` per series: ``log y = log a_k - b n``.

    Parameters
    ----------
    series : dict of int to (n, y)
    floor : float
        Points at or below it are left out.

    Returns
    -------
    dict or None
        ``b``, ``a`` (dict per series), ``points``; None when fewer than 2 points or
        fewer than 2 distinct n remain.
    """
    keys = sorted(series)
    rows, rhs = [], []
    for j, k in enumerate(keys):
        n, y = (np.asarray(v, dtype=float) for v in series[k])
        for ni, yi in zip(n, y):
            if np.isfinite(yi) and yi > floor:
                row = np.zeros(len(keys) + 1)
                row[j] = 1.0
                row[-1] = -ni
                rows.append(row)
                rhs.append(math.log(yi))
    if len(rows) < 2 or len({float(r[-1]) for r in rows}) < 2:
        return None
    A = np.array(rows)
    sol, *_ = np.linalg.lstsq(A, np.array(rhs), rcond=None)
    used = A[:, :-1].sum(axis=0) > 0
    return {"b": float(sol[-1]), "points": len(rows),
            "a": {k: float(np.exp(sol[j])) for j, k in enumerate(keys) if used[j]}}


# ----------------------------------------------------------------------------- tickets
def _build(target: Network, n: int, seed: int, *, n_ff: int | None = None,
           force_eps: bool = False) -> tuple[Any, str]:
    if force_eps or n // int(target.input_shape[1]) > _EXACT_UNITS:
        t = ot.construct(target, n_qk=n, n_v=n, n_ff=n_ff, weight_eps=WEIGHT_EPS, rng=seed,
                         on_failure="report")
        return t, f"weight_eps={WEIGHT_EPS:g}"
    return ot.construct(target, n_qk=n, n_v=n, n_ff=n_ff, rng=seed), "exact"


def _errors(target: Network, ticket: Any, x: np.ndarray) -> np.ndarray:
    """Per sequence and token l2 error ``(B, T)``."""
    diff = ot.sequence_forward(ticket, x) - ot.sequence_forward(target, x)
    return np.linalg.norm(diff, axis=-1)


def _long_errors(target: Network, ticket: Any, x: np.ndarray, *, entries: int = 2 ** 25
                 ) -> np.ndarray:
    T = x.shape[1]
    step = max(1, entries // (T * T))
    return np.concatenate([_errors(target, ticket, x[i:i + step])
                           for i in range(0, x.shape[0], step)])


# ----------------------------------------------------------------------------- main
def main(
    out_dir: str | Path,
    *,
    quick: bool = False,
    rng: int = 0,
    progress: bool | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Compute, save the data (CSVs), plot (PNG, PDF).

    Parameters
    ----------
    out_dir : path-like
        Output folder (created).
    quick : bool, default False
        :data:`QUICK` (tiny sweeps, seconds; the training too) instead of :data:`FULL`.
    rng : int, default 0
        Base seed (training, targets, sources, test sequences).
    progress : bool or None
        Unused (the panels print nothing); kept for the figures' common signature.
    overrides : dict, optional
        Keys of the mode's settings to replace (tests).

    Returns
    -------
    dict of str to pathlib.Path
        ``csv``, ``fit_csv``, ``T_csv``, ``blocks_csv``, ``wide_csv``, ``target_csv``,
        ``png``, ``pdf``.
    """
    del progress
    out = Path(out_dir)
    mode = {**(QUICK if quick else FULL), **(overrides or {})}
    seed = int(rng)
    t_start = time.perf_counter()
    g_seq = np.random.default_rng([seed, 1])

    # ---- the trained target, rescaled
    trained = train_target(seed, **mode["train"])
    target, c = rescale(to_slth(trained))
    r = trained["token"]
    alpha = max(math.sqrt(2.0), c * max(1.0, float(np.linalg.norm(r))))
    x_task, _ = angular_sequences(int(mode["test"]), 4, g_seq)
    x_trained = _with_token(x_task, r, c)
    x_random = _with_token(x_task, np.zeros(2), 1.0)
    trained_info = {"val_mse": trained["val_mse"], "val_var": trained["val_var"],
                    "train_mse": trained["train_mse"], "scale_c": c, "alpha": alpha,
                    "token_norm": float(np.linalg.norm(r)), "head_dims": str(HEAD_DIMS),
                    "samples": mode["train"]["samples"], "epochs": mode["train"]["epochs"],
                    "backend": trained["backend"]}

    # ---- (a) width
    rows_a = []
    seeds = [int(s) for s in np.random.default_rng([seed, 2]).integers(0, 2**31 - 1,
                                                                        int(mode["sources"]))]
    for n in mode["ns"]:
        for j, s in enumerate(seeds):
            for kind in ("trained", "random"):
                tgt = target if kind == "trained" else random_attention(2, 1, 1, s)
                x = x_trained if kind == "trained" else x_random
                ticket, how = _build(tgt, int(n), s + (0 if kind == "trained" else 1))
                e = _errors(tgt, ticket, x)
                rows_a.append({"target": kind, "n": int(n), "source": j, "solve": how,
                               "max_error": float(e.max()),
                               "reg_token_error": float(e[:, 0].max())})
    fits = []
    for kind in ("trained", "random"):
        ns = np.array(mode["ns"], dtype=float)
        per = [np.array([rw["max_error"] for rw in rows_a if rw["target"] == kind
                         and rw["n"] == n]) for n in mode["ns"]]
        mean = np.array([v.mean() for v in per])
        fits.append({"panel": "a", "series": kind, **(fit_exp(ns, mean) or {})})
    fits.append({"panel": "a", "series": "paper 0.8 exp(-0.06 n)", "a": PAPER_LAW[0],
                 "b": PAPER_LAW[1], "n_min": 10, "n_max": 100, "points": None})

    # ---- (b) length
    rows_b = []
    for n in mode["T_ns"]:
        ticket, _how = _build(target, int(n), seed)
        for T in mode["Ts"]:
            cnt = int(max(2, min(256, 2 ** 13 // int(T))))
            xt, _ = angular_sequences(cnt, int(T), g_seq)
            e = _long_errors(target, ticket, _with_token(xt, r, c))
            rows_b.append({"n": int(n), "T": int(T), "sequences": cnt,
                           "max_error": float(e.max()), "mean_token_error": float(e.mean())})

    # ---- (c) depth
    rows_c = []
    xb, _ = angular_sequences(int(mode["block_test"]), 4, g_seq)
    xb = _with_token(xb, np.zeros(2), 1.0)
    bseeds = [int(s) for s in np.random.default_rng([seed, 3]).integers(
        0, 2**31 - 1, int(mode["block_sources"]))]
    for k in mode["blocks"]:
        for j, s in enumerate(bseeds):
            tgt = random_blocks(int(k), s)
            for n in mode["block_ns"]:
                n_ff = int(n) // (2 * 2)
                ticket, _how = _build(tgt, int(n), s + 7, n_ff=n_ff, force_eps=True)
                e = _errors(tgt, ticket, xb)
                rows_c.append({"blocks": int(k), "n": int(n), "n_ff": n_ff, "source": j,
                               "max_error": float(e.max()),
                               "n_failed": int(ticket.params["n_failed"])})
    series_c = {}
    for k in mode["blocks"]:
        ns = np.array(mode["block_ns"], dtype=float)
        mean = np.array([np.mean([rw["max_error"] for rw in rows_c if rw["blocks"] == k
                                  and rw["n"] == n]) for n in mode["block_ns"]])
        series_c[int(k)] = (ns, mean)
    shared = fit_shared_rate(series_c)
    for k in mode["blocks"]:
        a_k = None if shared is None else shared["a"].get(int(k))
        fits.append({"panel": "c", "series": f"{k} blocks", "a": a_k,
                     "b": None if shared is None else shared["b"],
                     "n_min": min(mode["block_ns"]), "n_max": max(mode["block_ns"]),
                     "points": None if shared is None else shared["points"]})

    # ---- (d) wider
    rows_d = []
    wseeds = [int(s) for s in np.random.default_rng([seed, 4]).integers(
        0, 2**31 - 1, int(mode["wide_sources"]))]
    for heads, d in mode["wide"]:
        xw = np.random.default_rng([seed, 5, d]).normal(size=(int(mode["wide_test"]), 4, d))
        xw *= math.sqrt(d) / np.linalg.norm(xw, axis=-1, keepdims=True)
        for j, s in enumerate(wseeds):
            tgt = random_attention(d, d, heads, s, T=4)
            for m in mode["wide_ms"]:
                ticket, _how = _build(tgt, int(m) * d, s + 11)
                e = _errors(tgt, ticket, xw)
                rows_d.append({"heads": int(heads), "d": int(d), "m": int(m),
                               "n": int(m) * d, "source": j, "max_error": float(e.max())})
    trained_info["runtime_s"] = time.perf_counter() - t_start

    # ---- files
    paths = {
        "csv": write_csv(out / f"{NAME}.csv", CSV_COLUMNS, rows_a, quick=quick),
        "fit_csv": write_csv(out / f"{NAME}_fit.csv", FIT_COLUMNS, fits, quick=quick),
        "T_csv": write_csv(out / f"{NAME}_T.csv", T_COLUMNS, rows_b, quick=quick),
        "blocks_csv": write_csv(out / f"{NAME}_blocks.csv", BLOCK_COLUMNS, rows_c,
                                quick=quick),
        "wide_csv": write_csv(out / f"{NAME}_wide.csv", WIDE_COLUMNS, rows_d, quick=quick),
        "target_csv": write_csv(out / f"{NAME}_target.csv", TARGET_COLUMNS,
                                [{"key": k, "value": v} for k, v in trained_info.items()],
                                quick=quick),
    }
    fig = plot(read_rows(paths))
    png, pdf = save_figure(fig, out, NAME, quick=quick)
    return {**paths, "png": png, "pdf": pdf}


_INT = {"n", "source", "T", "sequences", "blocks", "n_ff", "n_failed", "heads", "d", "m",
        "points"}
_STR = {"target", "solve", "mode", "panel", "series", "key", "value"}


def read_rows(paths: dict[str, Path]) -> dict[str, list[dict[str, Any]]]:
    """The figure's CSVs as typed rows: ``width``, ``fit``, ``T``, ``blocks``, ``wide``.

    Parameters
    ----------
    paths : dict of str to Path
        :func:`main`'s ``csv``, ``fit_csv``, ``T_csv``, ``blocks_csv``, ``wide_csv``.

    Returns
    -------
    dict of str to list of dict
        Numbers as int or float (empty cells as None), text as str.
    """
    import csv

    def typed(k: str, v: str) -> Any:
        if k in _STR:
            return v
        if v == "":
            return None
        return int(float(v)) if k in _INT else float(v)

    out = {}
    for key, name in (("width", "csv"), ("fit", "fit_csv"), ("T", "T_csv"),
                      ("blocks", "blocks_csv"), ("wide", "wide_csv")):
        with open(paths[name], newline="") as fh:
            out[key] = [{k: typed(k, v) for k, v in r.items()} for r in csv.DictReader(fh)]
    return out


def series(rows: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The plotted series, from :func:`read_rows`' rows (one place for plot and tests).

    Returns
    -------
    dict
        ``width[kind] = (n, mean, std)`` over the sources and ``width_median[kind]``;
        ``T[n] = (T, max, mean)``;
        ``blocks[k] = (n, mean)``; ``wide[(H, d)] = (m, mean)``; ``fit[(panel, series)]``
        the fit rows.
    """
    def group(rs: list[dict[str, Any]], x: str, y: str) -> tuple[np.ndarray, ...]:
        xs = sorted({r[x] for r in rs})
        vals = [np.array([r[y] for r in rs if r[x] == v], dtype=float) for v in xs]
        return (np.array(xs, dtype=float), np.array([v.mean() for v in vals]),
                np.array([v.std() for v in vals]))

    w = rows["width"]
    out: dict[str, Any] = {
        "width": {k: group([r for r in w if r["target"] == k], "n", "max_error")
                  for k in ("trained", "random") if any(r["target"] == k for r in w)},
        "width_median": {k: np.array([np.median([r["max_error"] for r in w
                                                  if r["target"] == k and r["n"] == n])
                                       for n in sorted({r["n"] for r in w})])
                         for k in ("trained", "random") if any(r["target"] == k for r in w)},
        "T": {},
        "blocks": {},
        "wide": {},
        "fit": {(f["panel"], f["series"]): f for f in rows["fit"]},
    }
    for n in sorted({r["n"] for r in rows["T"]}):
        rs = sorted((r for r in rows["T"] if r["n"] == n), key=lambda r: r["T"])
        out["T"][n] = (np.array([r["T"] for r in rs], dtype=float),
                       np.array([r["max_error"] for r in rs]),
                       np.array([r["mean_token_error"] for r in rs]))
    for k in sorted({r["blocks"] for r in rows["blocks"]}):
        out["blocks"][k] = group([r for r in rows["blocks"] if r["blocks"] == k], "n",
                                 "max_error")[:2]
    for hd in sorted({(r["heads"], r["d"]) for r in rows["wide"]}, key=lambda t: (t[1], t[0])):
        out["wide"][hd] = group([r for r in rows["wide"] if (r["heads"], r["d"]) == hd], "m",
                                "max_error")[:2]
    return out


def plot(rows: dict[str, list[dict[str, Any]]]) -> Any:
    """The four panels from the CSV rows (:func:`read_rows`); returns the Figure."""
    S = series(rows)
    with style():
        fig, axes = new_figure(4, height=10.8, sharex=False, height_ratios=[1.3, 1, 1, 1])
        ax = axes[0]
        nn = np.array(sorted({r["n"] for r in rows["width"]}), dtype=float)
        for kind, col in (("trained", "C0"), ("random", "C1")):
            if kind not in S["width"]:
                continue
            n, mean, std = S["width"][kind]
            # the lower bar clipped at 5% of the mean: a log axis cannot show mean - std <= 0
            ax.errorbar(n, mean, yerr=[np.minimum(std, 0.95 * mean), std], fmt="o-",
                        color=col, capsize=2,
                        label=f"{kind} target: mean $\\pm$ std")
            ax.plot(n, S["width_median"][kind], "x", color=col, ms=4,
                    label=f"{kind} target: median")
            f = S["fit"].get(("a", kind))
            if f is not None and f["a"] is not None:
                ax.plot(n, f["a"] * np.exp(-f["b"] * n), ":", color=col,
                        label=f"fit {f['a']:.3g}$\\,e^{{-{f['b']:.3g}\\,n}}$")
        ax.plot(nn, PAPER_LAW[0] * np.exp(-PAPER_LAW[1] * nn), "-", color="C3",
                label="Otsuka et al. 2025 (Fig. 4): $0.8\\,e^{-0.06\\,n}$")
        ax.set_yscale("log")
        ax.set_xlabel("$n_K = n_V = n$")
        ax.set_ylabel("max output error")
        ax.set_title("(a) single head 2$\\to$1, T = 4")
        ax.legend(fontsize=5.5, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2)
        ax.grid(True)

        ax = axes[1]
        for i, (n, (T, mx, mean)) in enumerate(S["T"].items()):
            ax.plot(T, mx, "o-", color=f"C{i}", label=f"n = {n}: max")
            ax.plot(T, mean, "s--", color=f"C{i}", label=f"n = {n}: mean over tokens")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length T")
        ax.set_ylabel("output error")
        ax.set_title("(b) trained target, one ticket per n")
        ax.legend(fontsize=6)
        ax.grid(True)

        ax = axes[2]
        b_shared = None
        for i, (k, (n, mean)) in enumerate(S["blocks"].items()):
            ax.plot(n, mean, "o-", color=f"C{i}", label=f"{k} block" + ("s" if k > 1 else ""))
            f = S["fit"].get(("c", f"{k} blocks"))
            if f is not None and f["a"] is not None and f["b"] is not None:
                ax.plot(n, f["a"] * np.exp(-f["b"] * n), ":", color=f"C{i}")
                b_shared = f["b"]
        if b_shared is not None:
            ax.plot([], [], ":", color="0.3", label=f"shared rate b = {b_shared:.3g}")
        ax.set_yscale("log")
        ax.set_xlabel("$n_{MHA} = n_{FC}$")
        ax.set_ylabel("max output error (mean)")
        ax.set_title(f"(c) transformer blocks, weight_eps = {WEIGHT_EPS:g}")
        ax.legend(fontsize=6, ncol=2)
        ax.grid(True)

        ax = axes[3]
        for i, ((heads, d), (m, mean)) in enumerate(S["wide"].items()):
            ax.plot(m, mean, "o-" if d == 8 else "s--", color=f"C{i % 3}",
                    label=f"H = {heads}, d = {d}")
        ax.set_yscale("log")
        ax.set_xlabel("units per input coordinate $m = n / d$")
        ax.set_ylabel("max output error (mean)")
        ax.set_title("(d) random targets, wider")
        ax.legend(fontsize=6, ncol=2)
        ax.grid(True)
    return fig
