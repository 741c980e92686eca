"""Property tests every strong-lottery-ticket construction must pass, for slth's and yours.

A construction is a function ``build(target, seed) -> Ticket`` that prunes a
random source drawn from ``seed``. Whatever its selection rule, a ticket it
returns must satisfy the invariants of the strong lottery ticket hypothesis
as slth implements it:

1. **a mask, never a changed weight**: every kept value equals the source's
   entry bit for bit, and the ticket's source holds what the seed draws
   (the same seed gives the same source and the same masks, bit for bit);
2. **no other arithmetic**: the ticket's forward pass equals a plain dense
   forward pass of ``source * mask``;
3. **honest records**: the errors the ticket records per target weight (and
   bias) equal the errors recomputed from the source and the masks
   (:func:`slth.certify.effective_layers`), and the ticket names its target
   (fingerprint);
4. **sound bounds**: where a certifier applies (the two-layer block form of the
   MLP constructions), its structure checks pass and the certified bound is
   at least the adversarial lower bound.

:func:`check_ticket` checks one ticket; :func:`check_construction` runs the
checks as a hypothesis property over a strategy of targets
(:func:`slth.testing.strategies.bounded_targets` by default) and seeds, and
raises ``AssertionError`` naming the invariant that failed and the example.

Examples
--------
>>> from slth.constructions import pensia2020
>>> from slth.testing.harness import check_construction
>>> check_construction(lambda t, seed: pensia2020.construct(t, n=4, rng=seed),
...                    max_examples=5)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..certify import certified_bound, check_structure, effective_layers
from ..errors import InputError, LimitError, SLTHError
from ..evaluate import approximation_error
from ..nets.mlp import MLP, param_name
from ..sources import VirtualMLP
from ..ticket import Ticket, source_bias_layers, source_parameter_shapes

__all__ = ["INVARIANTS", "check_construction", "check_ticket"]

#: Names of the invariants, in the order they are checked.
INVARIANTS: tuple[str, ...] = ("mask", "same seed same bits", "forward", "recorded errors",
                               "fingerprint", "certified >= adversarial")


def _fail(invariant: str, message: str) -> None:
    raise AssertionError(f"construction invariant '{invariant}' failed: {message}")


def _dense_forward(source: MLP, masks: tuple[np.ndarray, ...], x: np.ndarray) -> np.ndarray:
    """``source * mask`` evaluated with plain numpy: h -> relu(W h + b), no ReLU at the end."""
    it = iter(zip(source.parameters(), masks))
    h = x
    L = source.depth
    for l, b in enumerate(source.biases):
        w, mw = next(it)
        h = h @ np.where(mw, w, 0.0).T
        if b is not None:
            bv, mb = next(it)
            h = h + np.where(mb, bv, 0.0)
        if l < L - 1:
            h = np.maximum(h, 0.0)
    return h


def _sparse_forward(ticket: Ticket, x: np.ndarray) -> np.ndarray:
    """``source * mask`` from the kept indices and values the source computes afresh.

    The reference for a virtual source too large to draw densely: COO matrices
    of ``source.entries(name, kept)`` (not the ticket's cached values), then
    h -> relu(W h + b), no ReLU at the end.
    """
    import scipy.sparse as sp

    src = ticket.source
    shapes = source_parameter_shapes(src)
    bias_layers = source_bias_layers(src)
    h = x
    for l, has_bias in enumerate(bias_layers):
        name = param_name("weight", l)
        idx = ticket.kept[name]
        rows, cols = np.divmod(idx, shapes[name][1])
        w = sp.coo_matrix((src.entries(name, idx), (rows, cols)), shape=shapes[name])
        h = np.asarray((w @ h.T).T)
        if has_bias:
            kb = ticket.kept[param_name("bias", l)]
            b = np.zeros(shapes[name][0])
            b[kb] = src.entries(param_name("bias", l), kb)
            h = h + b
        if l < len(bias_layers) - 1:
            h = np.maximum(h, 0.0)
    return h


def _dense_view(ticket: Ticket) -> tuple[MLP, tuple[np.ndarray, ...]] | None:
    """The ticket's source as a dense MLP and its masks, or None when too large to draw."""
    src = ticket.source
    try:
        dense = src if isinstance(src, MLP) else src.to_mlp()
        return dense, ticket.masks
    except LimitError:
        if isinstance(src, MLP):
            raise
        return None


def check_ticket(
    target: MLP,
    ticket: Ticket,
    *,
    rebuilt: Ticket | None = None,
    inputs: np.ndarray | None = None,
    certify: bool = True,
    rng: int = 0,
) -> None:
    """Check the invariants of one ticket (module doc); raise ``AssertionError`` if one fails.

    Parameters
    ----------
    target : MLP
        The target the ticket was built for.
    ticket : Ticket
        The construction's output.
    rebuilt : Ticket, optional
        The same construction run again with the same seed: must hold the same
        source and masks bit for bit (two virtual sources: the same spec, law
        and seed; a virtual and a dense one: the same kept values).
    inputs : numpy.ndarray, optional
        ``(batch, d_0)`` inputs for the forward comparison; default 32 seeded
        points of the unit ball.
    certify : bool, default True
        Check the certifier's structure and ``certified >= adversarial`` when the
        ticket is in the two-layer block form (skipped otherwise, and never an
        error for tickets of other forms).
    rng : int, default 0
        Seed of the default inputs and of the adversarial search.

    Raises
    ------
    AssertionError
        An invariant fails (the message names it).
    InputError
        ``target`` or ``ticket`` of the wrong type.
    """
    if not isinstance(target, MLP) or not isinstance(ticket, Ticket):
        raise InputError(f"`target` must be an MLP and `ticket` a Ticket; received "
                         f"{type(target).__name__} and {type(ticket).__name__}")
    src = ticket.source
    # a virtual source is drawn densely (DenseSource.draw, the same bits) when it fits
    # the memory budget; beyond, the references read the generator at the kept entries
    view = _dense_view(ticket)
    for i, (name, kept) in enumerate(zip(src.parameter_names(), ticket.kept_values(),
                                         strict=True)):
        idx, values = ticket.kept_entries(name)
        if kept.tobytes() != values.tobytes():
            _fail("mask", f"kept values of source {name} differ between kept_values and "
                          "kept_entries")
        if isinstance(src, VirtualMLP) and values.tobytes() != src.entries(name,
                                                                            idx).tobytes():
            _fail("mask", f"kept values of source {name} differ from the generator's entries")
        if view is not None:
            p, m = view[0].parameters()[i], view[1][i]
            if kept.tobytes() != p[m].tobytes() or values.tobytes() != p.reshape(
                    -1)[idx].tobytes():
                _fail("mask", f"kept values of source {name} differ from the source's entries")
    if rebuilt is not None:
        other = rebuilt.source
        if source_parameter_shapes(src) != source_parameter_shapes(other):
            _fail("same seed same bits", "the two builds' sources have different parameters")
        if isinstance(src, VirtualMLP) and isinstance(other, VirtualMLP):
            if src.source != other.source:
                _fail("same seed same bits", f"the virtual sources differ between two builds "
                                             f"({src.source!r} and {other.source!r})")
        elif isinstance(src, MLP) and isinstance(other, MLP):
            for name, p, q in zip(src.parameter_names(), src.parameters(), other.parameters()):
                if p.shape != q.shape or p.tobytes() != q.tobytes():
                    _fail("same seed same bits", f"source {name} differs between two builds")
        if list(ticket.kept) != list(rebuilt.kept):
            _fail("same seed same bits", "the two builds keep entries of different parameters")
        for name in ticket.kept:
            if not np.array_equal(ticket.kept[name], rebuilt.kept[name]):
                _fail("same seed same bits", f"kept entries of source {name} differ between "
                                             "two builds")
            if ticket.kept_entries(name)[1].tobytes() != rebuilt.kept_entries(
                    name)[1].tobytes():
                _fail("same seed same bits", f"kept values of source {name} differ between "
                                             "two builds")
    if inputs is None:
        g = np.random.default_rng(rng)
        x = g.standard_normal((32, target.widths[0]))
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1.0)
    else:
        x = np.asarray(inputs, dtype=np.float64)
    got = ticket.forward(x)
    ref = _sparse_forward(ticket, x) if view is None else _dense_forward(*view, x)
    scale = max(1.0, float(np.abs(ref).max()))
    if not np.allclose(got, ref, rtol=0.0, atol=1e-10 * scale):
        _fail("forward", f"Ticket.forward differs from the dense source*mask pass by "
                         f"{float(np.abs(got - ref).max()):.3g}")
    if ticket.target_fingerprint is not None and ticket.target_fingerprint != target.fingerprint():
        _fail("fingerprint", "the ticket records the fingerprint of another target")
    block_form = True
    try:
        eff = effective_layers(target, ticket)
    except SLTHError:
        block_form = False
    if block_form and ticket.weight_errors is not None:
        for i, (E, W, rec) in enumerate(zip(eff, target.weights, ticket.weight_errors)):
            real = np.maximum(np.abs(E.P - W), np.abs(E.N + W))
            if not np.allclose(real, rec, rtol=1e-9, atol=1e-12):
                _fail("recorded errors", f"weight_errors[{i}] differs from the realised "
                                         f"errors by {float(np.abs(real - rec).max()):.3g}")
        if ticket.bias_errors is not None:
            for i, (E, b, rec) in enumerate(zip(eff, target.biases, ticket.bias_errors)):
                if b is None or rec is None:
                    continue
                if not np.allclose(np.abs(E.beta - b), rec, rtol=1e-9, atol=1e-12):
                    _fail("recorded errors", f"bias_errors[{i}] differs from the realised ones")
    if certify and block_form:
        check_structure(target, ticket)
        cert = certified_bound(target, ticket)
        rep = approximation_error(target, ticket, rng=rng, n_samples=128,
                                  adversarial_steps=20, restarts=4, certify=False)
        if rep.adversarial > cert:
            _fail("certified >= adversarial", f"adversarial {rep.adversarial!r} > certified "
                                              f"{cert!r}")


def check_construction(
    build: Callable[[MLP, int], Ticket],
    *,
    targets: Any = None,
    max_examples: int = 20,
    certify: bool = True,
) -> None:
    """Run :func:`check_ticket` as a hypothesis property over targets and seeds.

    Parameters
    ----------
    build : callable
        ``build(target, seed) -> Ticket``: the construction, drawing its source
        from ``seed`` (an int). It is called twice per example with the same
        seed (the same-bits invariant).
    targets : hypothesis strategy of MLP, optional
        Default :func:`slth.testing.strategies.bounded_targets` with 1-3 layers
        of widths 1-4.
    max_examples : int, default 20
        Hypothesis examples.
    certify : bool, default True
        As in :func:`check_ticket`.

    Raises
    ------
    AssertionError
        An invariant fails on some example (hypothesis shrinks it and reports it).
    """
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from .strategies import bounded_targets, widths

    if not callable(build):
        raise InputError(f"`build` must be callable as build(target, seed); received "
                         f"{type(build).__name__}")
    if targets is None:
        targets = bounded_targets(widths=widths(min_layers=1, max_layers=3, min_width=1,
                                                max_width=4))

    @settings(max_examples=int(max_examples), deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(target=targets, seed=st.integers(0, 2**31 - 1))
    def prop(target: MLP, seed: int) -> None:
        check_ticket(target, build(target, seed), rebuilt=build(target, seed), certify=certify,
                     rng=seed)

    prop()
