"""How far a ticket is from its target: sampled, adversarial and certified errors.

For a target f and a ticket g (the pruned source), slth reports three numbers
about ``sup_{||x|| <= R} ||f(x) - g(x)||_2`` (R = 1 by default, the unit ball of
the theorems):

* ``sampled_max`` / ``sampled_mean``: over random inputs (half on the sphere,
  half uniform in the ball) or the inputs you pass;
* ``adversarial``: a LOWER bound on the sup, the largest error found by
  projected gradient ascent on the input (several restarts from the worst
  samples). Every value it reports was evaluated at a point of the ball, so it
  never exceeds the true sup (up to the float64 rounding of the evaluation,
  which the certified bound covers);
* ``certified``: a rigorous UPPER bound on the sup (:func:`certified_bound`,
  :mod:`slth.certify`), from the effective weights the ticket realises, maximised
  over ReLU sign patterns, rounded outward; the ticket's structure is verified
  first, and a ticket built for another target is refused.

so that ``sampled_max <= adversarial <= sup <= certified`` (the first
inequality holds when the samples lie in the ball).

Both networks are evaluated with their own forward passes: the ticket as the
source architecture with masked weights (scipy CSR for the kept weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike

from . import _validate
from ._memory import check_memory
from ._rng import RNGLike, as_generator
from .certify import EffectiveLayer, certified_bound, check_pair, check_radius, effective_layers
from .errors import CertificateError, InputError, ShapeError
from .nets.mlp import MLP, check_input, param_name
from .ticket import Ticket, source_bias_layers, source_parameter_shapes

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


# ----------------------------------------------------------------------------- checks
def _check_count(name: str, value: Any, low: int) -> int:
    return _validate.integer(name, value, low=low)


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
    radius = check_radius(radius)
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

    Built from the ticket's kept indices (:attr:`slth.Ticket.kept`), never from
    dense masks. Hidden units that cannot change the output are dropped: a unit
    with no kept incoming weight and no kept bias is 0 after the ReLU, and a unit
    with no kept outgoing weight into a live unit is never read. The compacted
    network computes the same outputs and input gradients, and a construction
    that keeps a few units of a very wide source (Malach et al.'s) is evaluated
    at the width it really uses.
    """
    src = ticket.source
    shapes = source_parameter_shapes(src)
    # per layer: the source weight's shape, its kept values, the (row, column) of its kept
    # entries (read through Ticket.kept_entries: a virtual source computes only those)
    weights: list[tuple[tuple[int, ...], np.ndarray, np.ndarray, np.ndarray]] = []
    biases: list[np.ndarray | None] = []
    for l, has_bias in enumerate(source_bias_layers(src)):
        shape = shapes[param_name("weight", l)]
        kw, vw = ticket.kept_entries(param_name("weight", l))
        rows, cols = np.divmod(kw, shape[1])
        weights.append((shape, vw, rows, cols))
        bias = None
        if has_bias:
            kb, vb = ticket.kept_entries(param_name("bias", l))
            if kb.size:
                bias = np.zeros(shape[0])
                bias[kb] = vb
        biases.append(bias)
    # alive: a hidden unit that can be nonzero; used: one that reaches the output
    L = len(weights)
    keep = [np.ones(weights[0][0][1], dtype=bool)]
    for l in range(L - 1):
        shape, _, rows, cols = weights[l]
        alive = np.zeros(shape[0], dtype=bool)
        alive[rows[keep[l][cols]]] = True
        if biases[l] is not None:
            alive |= biases[l] > 0
        keep.append(alive)
    keep.append(np.ones(weights[-1][0][0], dtype=bool))
    for l in range(L - 1, 0, -1):
        shape, _, rows, cols = weights[l]
        used = np.zeros(shape[1], dtype=bool)
        used[cols[keep[l + 1][rows]]] = True
        keep[l] &= used
    out = []
    for l, ((_, vw, rows, cols), bias) in enumerate(zip(weights, biases)):
        row_in, col_in = keep[l + 1], keep[l]
        sel = row_in[rows] & col_in[cols]
        # new index of each kept unit; kept entries stay in row-major order
        new_row = np.cumsum(row_in) - 1
        new_col = np.cumsum(col_in) - 1
        r = new_row[rows[sel]]
        n_rows, n_cols = int(row_in.sum()), int(col_in.sum())
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(r, minlength=n_rows), out=indptr[1:])
        csr = sp.csr_matrix((vw[sel], new_col[cols[sel]], indptr),
                            shape=(n_rows, n_cols))
        out.append((csr, None if bias is None else bias[row_in]))
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
    check_target: bool = True,
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
    check_target : bool, default True
        Raise if the ticket records the fingerprint of another target
        (:meth:`slth.nets.MLP.fingerprint`); False compares with another
        target on purpose.

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
    CertificateError
        The adversarial lower bound exceeds the certified upper bound (a bug:
        sound code never gets here).
    """
    target, ticket = check_pair(target, ticket, check_target=check_target)
    radius = check_radius(radius)
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
    # the compacted ticket: ~40 bytes per kept weight (row/column split, selection, CSR)
    # plus unit flags of the largest layer; the batched forward passes (at most 2048 inputs
    # at a time): a 1-byte ReLU gate per unit of every layer, and at most three float64
    # activations of the widest live layer alive at once (a live hidden unit keeps a weight,
    # so no live layer is wider than n_kept)
    n_kept = ticket.n_kept
    sw = ticket.source.widths
    batch = min(2048, max(X.shape[0], restarts))
    widest_live = min(max(sw), n_kept + max(target.widths))
    check_memory(40 * n_kept + 8 * sum(sw)
                 + batch * (sum(sw) + 3 * 8 * widest_live)
                 + 8 * X.shape[0] * (d0 + 2),
                 what="approximation_error: the compacted ticket and the batched forward passes",
                 alternative="pass fewer `n_samples` or `inputs`")
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
            cert = certified_bound(target, ticket, radius=radius, check_target=check_target)
            note = ""
        except (InputError, ShapeError) as exc:
            note = str(exc)
        if cert is not None and best_val > cert:
            raise CertificateError(
                f"the adversarial error {best_val!r} found at a point of the ball exceeds the "
                f"certified upper bound {cert!r}: the certificate or the evaluation is wrong; "
                "please report this ticket"
            )
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
