"""How far a ticket is from its target: sampled, adversarial and certified errors.

For a target f and a ticket g (the pruned source), slth reports three numbers
about ``sup_{||x|| <= R} ||f(x) - g(x)||_2`` (R = 1 by default, the unit ball of
the theorems):

* ``sampled_max`` / ``sampled_mean``: over random inputs (half on the sphere,
  half uniform in the ball) or the inputs you pass;
* ``adversarial``: a LOWER bound on the sup, the largest error found by
  projected gradient ascent on the input (several restarts from the worst
  samples). Every value it reports was evaluated exactly at a point of the
  ball, so it never exceeds the true sup;
* ``certified``: a rigorous UPPER bound on the sup (:func:`certified_bound`),
  from the effective weights the ticket realises and the target's norms, by the
  error propagation of Pensia et al. (2020), proof of Theorem 1.

so that ``sampled_max <= adversarial <= sup <= certified`` (the first
inequality holds when the samples lie in the ball).

Both networks are evaluated with their own forward passes: the ticket as the
source architecture with masked weights (scipy CSR for the kept weights).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike

from ._rng import RNGLike, as_generator
from .errors import InputError, ShapeError, format_value
from .nets.mlp import MLP, check_input
from .ticket import Ticket

__all__ = [
    "EffectiveLayer",
    "ErrorReport",
    "approximation_error",
    "certified_bound",
    "effective_layers",
    "sample_ball",
]


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True, eq=False)
class ErrorReport:
    """Approximation error of a ticket against its target.

    Attributes
    ----------
    sampled_max : float
        ``max ||f(x) - g(x)||_2`` over the evaluated inputs.
    sampled_mean : float
        Mean of ``||f(x) - g(x)||_2`` over the evaluated inputs.
    n_samples : int
        Number of evaluated inputs.
    adversarial : float
        Lower bound on ``sup_{||x|| <= radius} ||f(x) - g(x)||``: the largest error
        found at any point of the ball (samples inside the ball and every
        gradient-ascent iterate). ``>= sampled_max`` when all samples lie in the
        ball.
    adversarial_input : numpy.ndarray
        float64 ``(d_0,)``: the input that attains ``adversarial`` (``||x|| <= radius``).
    certified : float or None
        Rigorous upper bound :func:`certified_bound` (None when not requested or
        not available for this ticket, see ``certified_note``).
    certified_note : str
        Why ``certified`` is None, or "" when it was computed.
    radius : float
        Radius of the input ball.
    inputs_given : bool
        True when the samples were the caller's ``inputs``.
    adversarial_steps, restarts : int
        Search settings used.
    """

    sampled_max: float
    sampled_mean: float
    n_samples: int
    adversarial: float
    adversarial_input: np.ndarray
    certified: float | None
    certified_note: str
    radius: float
    inputs_given: bool
    adversarial_steps: int
    restarts: int

    def __str__(self) -> str:
        cert = "n/a" if self.certified is None else f"{self.certified:.4g}"
        return (f"sampled max {self.sampled_max:.4g} (mean {self.sampled_mean:.4g}, "
                f"{self.n_samples} inputs) <= adversarial {self.adversarial:.4g} <= sup <= "
                f"certified {cert} on the ball of radius {self.radius:g}")


@dataclass(frozen=True, eq=False)
class EffectiveLayer:
    """What one target layer's source pair computes, read from the ticket's masks.

    The pair computes ``y -> P relu(y) + N relu(-y) + beta`` (entrywise:
    ``z_i = sum_j P_ij relu(y_j) + N_ij relu(-y_j) + beta_i``).

    Attributes
    ----------
    P, N : numpy.ndarray
        float64 ``(d_out, d_in)``: positive-part and negative-part effective
        weights (``P = N = W`` would be exact: ``W y = W relu(y) - W relu(-y)``,
        so the ideal is ``P = W``, ``N = -W``).
    beta : numpy.ndarray
        float64 ``(d_out,)``: the constant the pair adds (constant units and the
        second layer's kept bias).
    """

    P: np.ndarray
    N: np.ndarray
    beta: np.ndarray


# ----------------------------------------------------------------------------- checks
def _check_pair(target: Any, ticket: Any) -> tuple[MLP, Ticket]:
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
    return target, ticket


def _check_radius(radius: Any) -> float:
    if isinstance(radius, (bool, np.bool_)) or not isinstance(radius, (int, float, np.integer,
                                                                         np.floating)):
        raise InputError(f"`radius` must be a finite number > 0; received {format_value(radius)}")
    r = float(radius)
    if not math.isfinite(r) or r <= 0:
        raise InputError(f"`radius` must be a finite number > 0; received {radius!r}")
    return r


def _check_count(name: str, value: Any, low: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < low:
        raise InputError(f"`{name}` must be an int >= {low}; received {value!r}")
    return int(value)


# ----------------------------------------------------------------------------- sampling
def sample_ball(d: int, n_samples: int, *, radius: float = 1.0, rng: RNGLike = None
                ) -> np.ndarray:
    """Inputs in the closed l2 ball: the first half on the sphere, the rest uniform inside.

    Parameters
    ----------
    d : int
        Dimension, >= 1.
    n_samples : int
        Number of points, >= 1.
    radius : float, default 1.0
    rng : int, numpy.random.Generator, numpy.random.SeedSequence or None

    Returns
    -------
    numpy.ndarray
        float64 ``(n_samples, d)``, every row of norm ``<= radius``.
    """
    d = _check_count("d", d, 1)
    n_samples = _check_count("n_samples", n_samples, 1)
    radius = _check_radius(radius)
    gen = as_generator(rng)
    g = gen.standard_normal((n_samples, d))
    norms = np.linalg.norm(g, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    u = g / norms
    n_sphere = (n_samples + 1) // 2
    r = np.ones((n_samples, 1))
    r[n_sphere:, 0] = gen.uniform(0.0, 1.0, n_samples - n_sphere) ** (1.0 / d)
    return _project(u * r * radius, radius)


def _project(x: np.ndarray, radius: float) -> np.ndarray:
    """Project rows onto the closed ball (guarding against rounding just above the radius)."""
    norms = np.linalg.norm(x, axis=1)
    over = norms > radius
    if over.any():
        x = x.copy()
        x[over] *= (radius / norms[over])[:, None]
        for _ in range(8):
            over = np.linalg.norm(x, axis=1) > radius
            if not over.any():
                break
            x[over] *= 1.0 - 1e-15
    return x


# ----------------------------------------------------------------------------- networks
def _dense_layers(net: MLP) -> list[tuple[Any, np.ndarray | None]]:
    return list(zip(net.weights, net.biases))


def _ticket_layers(ticket: Ticket) -> list[tuple[Any, np.ndarray | None]]:
    """Per source layer: the kept weights as scipy CSR and the kept bias (or None).

    Hidden units that cannot change the output are dropped: a unit with no kept
    incoming weight and no kept bias is 0 after the ReLU, and a unit with no
    kept outgoing weight into a live unit is never read. The compacted network
    computes the same outputs and input gradients, and a construction that keeps
    a few units of a very wide source (Malach et al.'s) is evaluated at the
    width it really uses.
    """
    weights: list[tuple[np.ndarray, np.ndarray]] = []
    biases: list[np.ndarray | None] = []
    it = iter(zip(ticket.source.parameters(), ticket.masks))
    for b in ticket.source.biases:
        w, mw = next(it)
        bias = None
        if b is not None:
            bv, mb = next(it)
            if mb.any():
                bias = np.where(mb, bv, 0.0)
        weights.append((w, mw))
        biases.append(bias)
    # alive: a hidden unit that can be nonzero; used: one that reaches the output
    L = len(weights)
    keep = [np.ones(weights[0][1].shape[1], dtype=bool)]
    for l in range(L - 1):
        alive = weights[l][1][:, keep[l]].any(axis=1)
        if biases[l] is not None:
            alive |= biases[l] > 0
        keep.append(alive)
    keep.append(np.ones(weights[-1][1].shape[0], dtype=bool))
    for l in range(L - 1, 0, -1):
        keep[l] &= weights[l][1][keep[l + 1]].any(axis=0)
    out = []
    for l, ((w, mw), bias) in enumerate(zip(weights, biases)):
        rows, cols = np.nonzero(mw)
        csr = sp.csr_matrix((w[rows, cols], (rows, cols)), shape=w.shape)
        csr = csr[np.flatnonzero(keep[l + 1])][:, np.flatnonzero(keep[l])]
        out.append((csr, None if bias is None else bias[keep[l + 1]]))
    return out


def _forward(layers: list[tuple[Any, np.ndarray | None]], x: np.ndarray
             ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Forward pass on rows of x; also returns the ReLU gates (pre-activation > 0)."""
    h = x.T
    gates = []
    last = len(layers) - 1
    for l, (w, b) in enumerate(layers):
        h = w @ h
        h = np.asarray(h)
        if b is not None:
            h = h + b[:, None]
        if l < last:
            gate = h > 0
            gates.append(gate)
            h = np.where(gate, h, 0.0)
    return h.T, gates


def _vjp(layers: list[tuple[Any, np.ndarray | None]], gates: list[np.ndarray],
         upstream: np.ndarray) -> np.ndarray:
    """Gradient w.r.t. the input of ``<upstream, net(x)>`` (rows), for a piecewise-linear net."""
    g = upstream.T
    for l in range(len(layers) - 1, -1, -1):
        w = layers[l][0]
        g = np.asarray(w.T @ g)
        if l > 0:
            g = g * gates[l - 1]
    return g.T


# ----------------------------------------------------------------------------- certified
def effective_layers(target: MLP, ticket: Ticket) -> list[EffectiveLayer]:
    """Read the effective weights each target layer's source pair realises.

    Requires the two-layers-per-target-layer form of Pensia et al. (2020) and
    Malach et al. (2020): ``ticket.layer_map`` pairs ``(s, s + 1)``, and every
    kept hidden unit of layer s either reads exactly one input (weight ``a``,
    no kept bias: it computes ``relu(a y_j) = |a| relu(+-y_j)``) or reads none
    (a constant unit with kept bias ``c``: it computes ``relu(c)``).

    Parameters
    ----------
    target : MLP
    ticket : Ticket

    Returns
    -------
    list of EffectiveLayer

    Raises
    ------
    InputError
        The ticket has no ``layer_map``, or is not of the two-layer block form.
    """
    target, ticket = _check_pair(target, ticket)
    lm = ticket.layer_map
    if lm is None:
        raise InputError("`ticket` has no layer_map: the certified bound needs to know which "
                         "source layers realise each target layer")
    if len(lm) != target.depth:
        raise ShapeError(f"`ticket.layer_map` has {len(lm)} entries; the target has "
                         f"{target.depth} layers")
    src = ticket.source
    masks: dict[tuple[str, int], np.ndarray] = {}
    it = iter(ticket.masks)
    for l, b in enumerate(src.biases):
        masks[("w", l)] = next(it)
        if b is not None:
            masks[("b", l)] = next(it)
    out = []
    for i, group in enumerate(lm):
        if len(group) != 2:
            raise InputError(f"`ticket.layer_map[{i}]` = {group}; the certified bound needs "
                             "exactly two source layers per target layer")
        s1, s2 = group
        A, mA = src.weights[s1], masks[("w", s1)]
        Bw, mB = src.weights[s2], masks[("w", s2)]
        d_out, d_in = target.weights[i].shape
        if A.shape[1] != d_in or Bw.shape[0] != d_out:
            raise ShapeError(f"source layers {group} map {A.shape[1]} -> {Bw.shape[0]}; target "
                             f"layer {i} maps {d_in} -> {d_out}")
        c = src.biases[s1]
        mc = masks.get(("b", s1))
        kept_c = np.zeros(A.shape[0], dtype=bool) if c is None else mc
        n_in = np.count_nonzero(mA, axis=1)
        if np.any(n_in > 1) or np.any((n_in == 1) & kept_c):
            raise InputError(
                f"`ticket` is not of the two-layer block form on target layer {i}: some hidden "
                f"unit of source layer {s1} reads more than one input or reads an input and "
                "keeps its bias; certified_bound supports the Pensia/Malach layout only"
            )
        units, inputs = np.nonzero(mA)
        a = A[units, inputs]
        m = A.shape[0]
        pos = a > 0
        Apos = sp.csr_matrix((a[pos], (units[pos], inputs[pos])), shape=(m, d_in))
        Aneg = sp.csr_matrix((-a[~pos], (units[~pos], inputs[~pos])), shape=(m, d_in))
        r, cidx = np.nonzero(mB)
        Bs = sp.csr_matrix((Bw[r, cidx], (r, cidx)), shape=Bw.shape)
        P = np.asarray((Bs @ Apos).todense())
        N = np.asarray((Bs @ Aneg).todense())
        beta = np.zeros(d_out)
        if c is not None and kept_c.any():
            const = np.where(kept_c, np.maximum(c, 0.0), 0.0)
            beta += np.asarray(Bs @ const).ravel()
        b2 = src.biases[s2]
        if b2 is not None and masks[("b", s2)].any():
            beta += np.where(masks[("b", s2)], b2, 0.0)
        out.append(EffectiveLayer(P, N, beta))
    return out


def _spectral(M: np.ndarray) -> float:
    if M.size == 0:
        return 0.0
    return float(np.linalg.svd(M, compute_uv=False)[0])


def certified_bound(target: MLP, ticket: Ticket, *, radius: float = 1.0) -> float:
    """A rigorous upper bound on ``sup_{||x|| <= radius} ||f(x) - g(x)||_2``.

    Error propagation of Pensia et al. (NeurIPS 2020), proof of Theorem 1,
    applied to the weights the ticket actually realises.

    Derivation. Write the target as ``z_l = W_l y_{l-1} + b_l``, ``y_l = relu(z_l)``
    (no ReLU after the last layer), ``y_0 = x``. Target layer l's source pair
    (:func:`effective_layers`) computes
    ``B_l(y) = sum_j P_ij relu(y_j) + N_ij relu(-y_j) + beta_i``. Since
    ``y_j = relu(y_j) - relu(-y_j)`` and only one of the two is nonzero,
    ``(B_l(y) - W_l y - b_l)_i = sum_j D_ij(y) y_j + (beta - b)_i`` with
    ``|D_ij(y)| <= Delta_ij := max(|P_ij - W_ij|, |N_ij + W_ij|)``, hence

        ``||B_l(y) - W_l y - b_l|| <= ||Delta_l||_2 ||y|| + ||beta_l - b_l||``.

    Let ``e_l`` bound ``||z^_l - z_l||`` (ticket vs target pre-activations) and
    ``r_l`` bound ``||y_l||``. ReLU is 1-Lipschitz and ``||relu(z)|| <= ||z||``, so
    ``||y^_{l-1}|| <= r_{l-1} + e_{l-1}`` and

        ``e_l <= ||Delta_l|| (r_{l-1} + e_{l-1}) + ||W_l|| e_{l-1} + ||beta_l - b_l||``,
        ``r_l <= ||W_l|| r_{l-1} + ||b_l||``,  ``e_0 = 0``, ``r_0 = radius``,

    i.e. each layer multiplies the incoming error by its Lipschitz bound
    ``||W_l|| + ||Delta_l||`` and adds ``||Delta_l|| r_{l-1}`` plus the bias
    error. The bound is ``e_L``. With every ``||W_l|| <= 1``, no biases and
    every ``Delta`` entry <= ``eps / (2 l d_in d_out)`` (the proof's tolerance)
    it is at most ``(1 + eps/(2l))^l - 1 < eps``: Theorem 1's conclusion.

    ``Delta`` and ``beta`` are recomputed from the source and masks (not read
    from ``ticket.weight_errors``, which they reproduce for slth's
    constructions), so the bound does not trust the ticket's metadata. Norms are
    float64 SVDs (relative error ~1e-15).

    Parameters
    ----------
    target : MLP
    ticket : Ticket
        A ticket in the two-layer block form (see :func:`effective_layers`).
    radius : float, default 1.0
        Radius of the input ball.

    Returns
    -------
    float

    Raises
    ------
    InputError
        Not an MLP/Ticket, no ``layer_map``, a ticket not of the block form,
        or a bad ``radius``.
    ShapeError
        Target and ticket do not match.
    """
    radius = _check_radius(radius)
    eff = effective_layers(target, ticket)
    e, r = 0.0, radius
    for (W, b), E in zip(_dense_layers(target), eff):
        delta = np.maximum(np.abs(E.P - W), np.abs(E.N + W))
        bias = np.zeros(W.shape[0]) if b is None else b
        dn, wn = _spectral(delta), _spectral(W)
        e = dn * (r + e) + wn * e + float(np.linalg.norm(E.beta - bias))
        r = wn * r + float(np.linalg.norm(bias))
    return float(e)


# ----------------------------------------------------------------------------- report
def approximation_error(
    target: MLP,
    ticket: Ticket,
    *,
    inputs: ArrayLike | None = None,
    n_samples: int = 4096,
    rng: RNGLike = None,
    adversarial_steps: int = 50,
    restarts: int = 8,
    radius: float = 1.0,
    certify: bool = True,
) -> ErrorReport:
    """Sampled, adversarial (lower bound) and certified (upper bound) errors of a ticket.

    Parameters
    ----------
    target : MLP
        The target network f.
    ticket : Ticket
        The ticket g (evaluated as the masked source, kept weights in CSR).
    inputs : array_like, optional
        ``(batch, d_0)`` inputs to evaluate instead of random samples. Points
        outside the ball still count in ``sampled_*`` but not in
        ``adversarial`` (which is a bound over the ball only).
    n_samples : int, default 4096
        Number of random inputs when ``inputs`` is None: half on the sphere of
        radius ``radius``, half uniform in the ball (:func:`sample_ball`).
    rng : int, numpy.random.Generator, numpy.random.SeedSequence or None
        Randomness of the samples and of the extra random restarts.
    adversarial_steps : int, default 50
        Projected gradient-ascent steps per restart (0 disables the search;
        ``adversarial`` is then the best in-ball sample).
    restarts : int, default 8
        Starting points: the worst in-ball samples (and random sphere points if
        there are fewer), all advanced together as one batch.
    radius : float, default 1.0
        Radius of the input ball.
    certify : bool, default True
        Compute :func:`certified_bound` (skipped with a note when the ticket is
        not of the two-layer block form).

    Returns
    -------
    ErrorReport

    Notes
    -----
    The objective ``h(x) = ||f(x) - g(x)||_2`` is piecewise smooth; its gradient
    ``(J_f(x) - J_g(x))^T (f(x) - g(x)) / h(x)`` comes from one backward pass
    through each network's ReLU gates. Each step moves by a step size decaying
    geometrically from ``0.2 radius`` to ``0.002 radius`` along the normalised
    gradient and projects back onto the ball; the best value seen is kept.

    Raises
    ------
    InputError, ShapeError
        Invalid arguments, or target and ticket that do not match.
    """
    target, ticket = _check_pair(target, ticket)
    radius = _check_radius(radius)
    n_samples = _check_count("n_samples", n_samples, 1)
    adversarial_steps = _check_count("adversarial_steps", adversarial_steps, 0)
    restarts = _check_count("restarts", restarts, 1)
    gen = as_generator(rng)
    d0 = target.widths[0]
    if inputs is None:
        X = sample_ball(d0, n_samples, radius=radius, rng=gen)
        given = False
    else:
        X, _ = check_input(inputs, d0, "inputs")
        given = True
    f_layers = _dense_layers(target)
    g_layers = _ticket_layers(ticket)

    def errors(x: np.ndarray) -> np.ndarray:
        out = np.empty(x.shape[0])
        step = 2048
        for s in range(0, x.shape[0], step):
            fx, _ = _forward(f_layers, x[s:s + step])
            gx, _ = _forward(g_layers, x[s:s + step])
            out[s:s + step] = np.linalg.norm(fx - gx, axis=1)
        return out

    err = errors(X)
    sampled_max = float(err.max())
    sampled_mean = float(err.mean())
    inside = np.linalg.norm(X, axis=1) <= radius
    if inside.any():
        idx_in = np.flatnonzero(inside)
        best_i = idx_in[np.argmax(err[idx_in])]
        best_val, best_x = float(err[best_i]), X[best_i].copy()
        order = idx_in[np.argsort(err[idx_in])[::-1][:restarts]]
        starts = X[order]
    else:
        best_val, best_x = -np.inf, np.zeros(d0)
        starts = np.empty((0, d0))
    if starts.shape[0] < restarts:
        extra = sample_ball(d0, restarts - starts.shape[0], radius=radius, rng=gen)
        starts = np.vstack([starts, extra[: restarts - starts.shape[0]]])
        e_extra = errors(starts)
        k = int(np.argmax(e_extra))
        if e_extra[k] > best_val:
            best_val, best_x = float(e_extra[k]), starts[k].copy()

    x = starts.copy()
    for t in range(adversarial_steps):
        fx, fg = _forward(f_layers, x)
        gx, gg = _forward(g_layers, x)
        diff = fx - gx
        h = np.linalg.norm(diff, axis=1)
        k = int(np.argmax(h))
        if h[k] > best_val:
            best_val, best_x = float(h[k]), x[k].copy()
        u = diff / np.where(h > 0, h, 1.0)[:, None]
        grad = _vjp(f_layers, fg, u) - _vjp(g_layers, gg, u)
        gn = np.linalg.norm(grad, axis=1, keepdims=True)
        frac = t / max(adversarial_steps - 1, 1)
        lr = 0.2 * radius * (0.01 ** frac)
        x = _project(x + lr * grad / np.where(gn > 0, gn, 1.0), radius)
    if adversarial_steps:
        h = errors(x)
        k = int(np.argmax(h))
        if h[k] > best_val:
            best_val, best_x = float(h[k]), x[k].copy()

    cert: float | None = None
    note = "not requested"
    if certify:
        try:
            cert = certified_bound(target, ticket, radius=radius)
            note = ""
        except InputError as exc:
            note = str(exc)
    best_x.flags.writeable = False
    return ErrorReport(
        sampled_max=sampled_max,
        sampled_mean=sampled_mean,
        n_samples=int(X.shape[0]),
        adversarial=float(best_val),
        adversarial_input=best_x,
        certified=cert,
        certified_note=note,
        radius=radius,
        inputs_given=given,
        adversarial_steps=adversarial_steps,
        restarts=restarts,
    )
