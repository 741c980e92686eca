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

Both networks are evaluated with their own forward passes and vector-Jacobian
products (:meth:`slth.nets.base.Network.linearize`): any target network and any
ticket, whatever their layer types. The ticket is the source architecture with
masked parameters (:meth:`slth.Ticket.linearize`; scipy CSR for sparse kept
weights); a ticket over an MLP source is first compacted (hidden units that
cannot change the output dropped, the same network at the width it really
uses) so that Malach et al.'s very wide sources are evaluated at the cost of
what they keep. The certified bound is the construction's certifier, looked up
in :data:`slth.constructions.REGISTRY` (the MLP certifier of :mod:`slth.certify`
for slth's MLP constructions and for MLP tickets made by hand); a ticket with no
certifier is reported uncertified, with the reason.
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
from .certify import (
    EffectiveLayer,
    certified_bound,
    check_fingerprint,
    check_pair,
    check_radius,
    effective_layers,
)
from .errors import CertificateError, InputError, ShapeError, format_value
from .nets.base import Architecture, Network
from .nets.layers import Dense, ReLU
from .nets.mlp import MLP, param_name
from .sources import VirtualMLP
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


def _norms(x: np.ndarray) -> np.ndarray:
    """l2 norm of each example (row, flattened)."""
    return np.linalg.norm(x.reshape(x.shape[0], -1), axis=1)  # type: ignore[no-any-return]


def _project(x: np.ndarray, radius: float) -> np.ndarray:
    """Project examples onto the closed ball (guarding against rounding just above the radius)."""
    norms = _norms(x)
    over = norms > radius
    if over.any():
        x = x.copy()
        x[over] *= (radius / norms[over]).reshape(-1, *([1] * (x.ndim - 1)))
        for _ in range(8):
            over = _norms(x) > radius
            if not over.any():
                break
            x[over] *= 1.0 - 1e-15
    return x


# ----------------------------------------------------------------------------- networks
class _Net:
    """A network and the parameters to evaluate it with: forward and linearize, nothing else."""

    __slots__ = ("arch", "params")

    def __init__(self, arch: Any, params: Any) -> None:
        self.arch = arch
        self.params = params

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.arch._forward(x, self.params)  # type: ignore[no-any-return]

    def linearize(self, x: np.ndarray) -> Any:
        return self.arch._linearize(x, self.params)


def _activation_floats(net: Any) -> int:
    """Floats one example's recorded forward pass holds: every layer's input and output."""
    total = 0

    def walk(steps: Any) -> None:
        nonlocal total
        for step in steps:
            if step.body is not None:
                walk(step.body)
            total += int(np.prod(step.in_shape)) + int(np.prod(step.out_shape))

    walk(net._plan)
    return total


def _compact_mlp_ticket(ticket: Ticket) -> _Net:
    """The MLP ticket's network at the width it uses: kept weights as CSR, dead units dropped."""
    layers: list[tuple[str, Any]] = []
    params: dict[str, Any] = {}
    compact = _ticket_layers(ticket)
    for l, (w, b) in enumerate(compact):
        name = str(len(layers))
        layers.append((name, Dense(w.shape[1], w.shape[0], bias=b is not None)))
        params[f"layers.{name}.weight"] = w
        if b is not None:
            params[f"layers.{name}.bias"] = b
        if l < len(compact) - 1:
            layers.append((str(len(layers)), ReLU()))
    return _Net(Architecture(tuple(layers)), params)


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
    for l in range(1, L):
        if not keep[l].any():
            # a layer keeps at least one unit (a network layer has width >= 1); this one
            # reaches no live unit downstream, so it changes no output
            keep[l][0] = True
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


# ----------------------------------------------------------------------------- report
def _check_any_pair(target: Any, ticket: Any, *, check_target: bool) -> None:
    """Target and ticket of any architecture: the same input and output shapes, the target named."""
    if not isinstance(target, Network):
        raise InputError(f"`target` must be a network (slth.nets.Network, an MLP included); "
                         f"received {format_value(target)} of type {type(target).__name__}")
    if not isinstance(ticket, Ticket):
        raise InputError(f"`ticket` must be a slth.Ticket; received {format_value(ticket)} of "
                         f"type {type(ticket).__name__}")
    src = ticket.source
    if (tuple(src.input_shape), tuple(src.output_shape)) != (tuple(target.input_shape),
                                                             tuple(target.output_shape)):
        raise ShapeError(f"`ticket` maps inputs of shape {src.input_shape} to outputs of shape "
                         f"{src.output_shape} but `target` maps {target.input_shape} to "
                         f"{target.output_shape}; expected the same shapes")
    if check_target:
        check_fingerprint(target, ticket)


def _certify(target: Any, ticket: Ticket, *, radius: float, check_target: bool
             ) -> tuple[float | None, str]:
    """The construction's certified bound (registry), or None and why not."""
    from .constructions import REGISTRY

    entry = REGISTRY.get(ticket.construction)
    certifier = entry.certifier if entry is not None else None
    if certifier is None and entry is None and isinstance(target, MLP) \
            and isinstance(ticket.source, (MLP, VirtualMLP)):
        certifier = certified_bound  # a hand-made MLP ticket: the MLP certifier checks its form
    if certifier is None:
        why = ("is not in slth.constructions.REGISTRY" if entry is None
               else "registers no certifier")
        return None, (f"no certified bound: construction {ticket.construction!r} {why} "
                      "(sampled and adversarial errors are lower bounds only)")
    try:
        return float(certifier(target, ticket, radius=radius, check_target=check_target)), ""
    except (InputError, ShapeError) as exc:
        return None, str(exc)


def approximation_error(
    target: Network,
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
    target : Network
        The target network f (an :class:`slth.nets.MLP` or any network).
    ticket : Ticket
        The ticket g (evaluated as the masked source, kept weights in CSR),
        mapping inputs and outputs of the target's shapes.
    inputs : array_like, optional
        ``(batch, *input_shape)`` inputs to evaluate instead of random samples
        (norms are over each flattened input). Points
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
        Compute the construction's certified bound (its certifier in
        :data:`slth.constructions.REGISTRY`; for MLP tickets
        :func:`certified_bound`), skipped with a note when there is none or the
        ticket does not have the structure it needs.
    check_target : bool, default True
        Raise if the ticket records the fingerprint of another target
        (``target.fingerprint()``); False compares with another target on
        purpose.

    Returns
    -------
    ErrorReport

    Notes
    -----
    The objective ``h(x) = ||f(x) - g(x)||_2`` is piecewise smooth; its gradient
    ``(J_f(x) - J_g(x))^T (f(x) - g(x)) / h(x)`` comes from one backward pass
    through each network (its layers' vjp). Each step moves by a step size decaying
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
    target, ticket, X, given, radius, gen, restarts, adversarial_steps, mlp = _prepare(
        target, ticket, inputs, n_samples, rng, adversarial_steps, restarts, radius,
        check_target)
    in_shape = tuple(target.input_shape)
    d0 = int(np.prod(in_shape))
    batch = min(2048, max(X.shape[0], restarts))
    if mlp:
        # the compacted ticket: ~40 bytes per kept weight (row/column split, selection, CSR)
        # plus unit flags of the largest layer; the batched forward passes (at most 2048
        # inputs at a time): a 1-byte ReLU gate per unit of every layer, and at most three
        # float64 activations of the widest live layer alive at once (a live hidden unit
        # keeps a weight, so no live layer is wider than n_kept)
        n_kept = ticket.n_kept
        sw = ticket.source.widths
        widest_live = min(max(sw), n_kept + max(target.widths))
        check_memory(40 * n_kept + 8 * sum(sw)
                     + batch * (sum(sw) + 3 * 8 * widest_live)
                     + 8 * X.shape[0] * (d0 + 2),
                     what="approximation_error: the compacted ticket and the batched forward "
                          "passes",
                     alternative="pass fewer `n_samples` or `inputs`")
        f: Any = _Net(target.arch, target.params)
        g: Any = _compact_mlp_ticket(ticket)
    else:
        # the recorded forward passes of both networks (every layer's input and output, at
        # most 2048 inputs at a time) and the inputs; the ticket's masked parameters are
        # guarded by Ticket.forward itself
        acts = _activation_floats(target) + _activation_floats(ticket.source.arch)
        check_memory(8 * batch * acts + 8 * X.shape[0] * (d0 + 2),
                     what="approximation_error: the recorded forward passes",
                     alternative="pass fewer `n_samples` or `inputs`")
        f = _Net(target.arch, target.params)
        g = ticket

    def errors(x: np.ndarray) -> np.ndarray:
        out = np.empty(x.shape[0])
        step = 2048
        for s in range(0, x.shape[0], step):
            out[s:s + step] = _norms(f.forward(x[s:s + step]) - g.forward(x[s:s + step]))
        return out

    def value_and_grad(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lf, lg = f.linearize(x), g.linearize(x)
        diff = lf.output - lg.output
        h = _norms(diff)
        u = diff / np.where(h > 0, h, 1.0).reshape(-1, *([1] * (diff.ndim - 1)))
        return h, lf.vjp(u) - lg.vjp(u)

    return _report(target, ticket, X, given, radius, gen, restarts, adversarial_steps,
                   certify, check_target, errors, value_and_grad)


def _prepare(target: Any, ticket: Any, inputs: Any, n_samples: Any, rng: RNGLike,
             adversarial_steps: Any, restarts: Any, radius: Any, check_target: bool
             ) -> tuple[Any, ...]:
    """Checked arguments and the inputs of :func:`approximation_error` (numpy or torch)."""
    mlp = isinstance(target, MLP) and isinstance(getattr(ticket, "source", None),
                                                 (MLP, VirtualMLP))
    if mlp:
        target, ticket = check_pair(target, ticket, check_target=check_target)
    else:
        _check_any_pair(target, ticket, check_target=check_target)
    radius = check_radius(radius)
    n_samples = _check_count("n_samples", n_samples, 1)
    adversarial_steps = _check_count("adversarial_steps", adversarial_steps, 0)
    restarts = _check_count("restarts", restarts, 1)
    gen = as_generator(rng)
    in_shape = tuple(target.input_shape)
    d0 = int(np.prod(in_shape))
    if inputs is None:
        X = sample_ball(d0, n_samples, radius=radius, rng=gen).reshape(-1, *in_shape)
        given = False
    else:
        X, single = target._check_input(inputs, "inputs")
        if single:
            raise ShapeError(f"`inputs` must be a batch of shape (batch, "
                             f"{', '.join(map(str, in_shape))}); received one input of shape "
                             f"{in_shape}")
        given = True
    return target, ticket, X, given, radius, gen, restarts, adversarial_steps, mlp


def _report(target: Any, ticket: Any, X: np.ndarray, given: bool, radius: float,
            gen: np.random.Generator, restarts: int, adversarial_steps: int, certify: bool,
            check_target: bool, errors: Any, value_and_grad: Any) -> ErrorReport:
    """Samples, the adversarial search and the certificate, given the two networks' errors.

    ``errors(x)`` is the error per row of ``x``; ``value_and_grad(x)`` the error per row
    and its gradient with respect to ``x`` (numpy arrays in and out, whatever computes
    them: the numpy forward and vjp, or torch's autograd).
    """
    in_shape = tuple(X.shape[1:])
    d0 = int(np.prod(in_shape))
    err = errors(X)
    sampled_max = float(err.max())
    sampled_mean = float(err.mean())
    inside = _norms(X) <= radius
    if inside.any():
        idx_in = np.flatnonzero(inside)
        best_i = idx_in[np.argmax(err[idx_in])]
        best_val, best_x = float(err[best_i]), X[best_i].copy()
        order = idx_in[np.argsort(err[idx_in])[::-1][:restarts]]
        starts = X[order]
    else:
        best_val, best_x = -np.inf, np.zeros(in_shape)
        starts = np.empty((0, *in_shape))
    if starts.shape[0] < restarts:
        extra = sample_ball(d0, restarts - starts.shape[0], radius=radius,
                            rng=gen).reshape(-1, *in_shape)
        starts = np.vstack([starts, extra[: restarts - starts.shape[0]]])
        e_extra = errors(starts)
        k = int(np.argmax(e_extra))
        if e_extra[k] > best_val:
            best_val, best_x = float(e_extra[k]), starts[k].copy()

    x = starts.copy()
    for t in range(adversarial_steps):
        h, grad = value_and_grad(x)
        k = int(np.argmax(h))
        if h[k] > best_val:
            best_val, best_x = float(h[k]), x[k].copy()
        gn = _norms(grad).reshape(-1, *([1] * (grad.ndim - 1)))
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
        cert, note = _certify(target, ticket, radius=radius, check_target=check_target)
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
