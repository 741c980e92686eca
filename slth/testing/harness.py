"""Property tests every strong-lottery-ticket construction must pass, for slth's and yours.

A construction is a function ``build(target, seed) -> Ticket`` that prunes a
random source drawn from ``seed``; target and source are any networks
(:class:`slth.nets.base.Network`, MLPs included, layer types of your own
included). Whatever its selection rule, a ticket it returns must satisfy the
invariants of the strong lottery ticket hypothesis as slth implements it:

1. **a mask, never a changed weight**: every kept value equals the source's
   entry bit for bit, and the ticket's source holds what the seed draws
   (the same seed gives the same source and the same masks, bit for bit);
2. **no other arithmetic**: the ticket's forward pass equals a plain dense
   forward pass of ``source * mask``;
3. **honest records**: the errors the ticket records per target parameter
   equal the errors recomputed from the source and the masks (for the
   two-layer block form of the MLP constructions by
   :func:`slth.certify.effective_layers`; for any other construction by the
   ``errors`` function you pass), and the ticket names its target
   (fingerprint);
4. **sound bounds**: where a certifier applies (the construction's entry in
   :data:`slth.constructions.REGISTRY`, or the MLP certifier for the two-layer
   block form), its structure checks pass and the certified bound is at least
   the adversarial lower bound.

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

from ..certify import check_structure, effective_layers
from ..errors import InputError, LimitError, SLTHError
from ..evaluate import _certify, approximation_error
from ..nets.base import Network
from ..nets.mlp import MLP, param_name
from ..sources import VirtualMLP, VirtualNetwork
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


def _net_sparse_forward(ticket: Ticket, x: np.ndarray) -> np.ndarray:
    """Any network's ``source * mask`` with COO matrices of entries the source computes afresh."""
    import scipy.sparse as sp

    src = ticket.source
    params: dict[str, Any] = {}
    for name, shape in source_parameter_shapes(src).items():
        idx = ticket.kept[name]
        vals = src.entries(name, idx)
        _, layer, local = src.param_owner(name)
        if local in type(layer).sparse_params and len(shape) == 2:
            rows, cols = np.divmod(idx, shape[1])
            params[name] = sp.coo_matrix((vals, (rows, cols)), shape=shape)
        else:
            arr = np.zeros(shape)
            arr.reshape(-1)[idx] = vals
            params[name] = arr
    return src.arch.forward(x, params=params)  # type: ignore[no-any-return]


def _dense_view(ticket: Ticket) -> tuple[Any, tuple[np.ndarray, ...]] | None:
    """The ticket's source as a dense network and its masks, or None when too large to draw."""
    src = ticket.source
    try:
        if isinstance(src, Network):
            dense = src
        else:
            dense = src.to_mlp() if isinstance(src, VirtualMLP) else src.to_network()
        return dense, ticket.masks
    except LimitError:
        if isinstance(src, Network):
            raise
        return None


def _dense_forward_net(source: Network, masks: tuple[np.ndarray, ...], x: np.ndarray
                       ) -> np.ndarray:
    """Any network's ``source * mask``: its forward pass with dense masked arrays."""
    params = {name: np.where(m, p, 0.0)
              for (name, p), m in zip(source.params.items(), masks, strict=True)}
    return source.forward(x, params=params)


def check_ticket(
    target: Network,
    ticket: Ticket,
    *,
    rebuilt: Ticket | None = None,
    inputs: np.ndarray | None = None,
    certify: bool = True,
    rng: int = 0,
    errors: Callable[[Network, Ticket], Any] | None = None,
) -> None:
    """Check the invariants of one ticket (module doc); raise ``AssertionError`` if one fails.

    Parameters
    ----------
    target : Network
        The target the ticket was built for (an MLP or any network).
    ticket : Ticket
        The construction's output.
    rebuilt : Ticket, optional
        The same construction run again with the same seed: must hold the same
        source and masks bit for bit (two virtual sources: the same spec, law
        and seed; a virtual and a dense one: the same kept values).
    inputs : numpy.ndarray, optional
        ``(batch, *input_shape)`` inputs for the forward comparison; default 32
        seeded points of the unit ball.
    certify : bool, default True
        Check ``certified >= adversarial`` where a certifier applies (the
        construction's registry entry; for an MLP ticket the MLP certifier,
        after its structure checks), never an error for tickets without one.
    rng : int, default 0
        Seed of the default inputs and of the adversarial search.
    errors : callable, optional
        ``errors(target, ticket) -> {target parameter name: array}``: the
        construction's realised errors recomputed from the source and the kept
        entries, compared with ``ticket.errors`` (the "recorded errors"
        invariant for a construction that is not of the MLP two-layer block
        form, whose errors slth recomputes itself).

    Raises
    ------
    AssertionError
        An invariant fails (the message names it).
    InputError
        ``target`` or ``ticket`` of the wrong type.
    """
    if not isinstance(target, Network) or not isinstance(ticket, Ticket):
        raise InputError(f"`target` must be a network (an MLP or any slth.nets.Network) and "
                         f"`ticket` a Ticket; received {type(target).__name__} and "
                         f"{type(ticket).__name__}")
    if errors is not None and not callable(errors):
        raise InputError(f"`errors` must be callable as errors(target, ticket) or None; "
                         f"received {type(errors).__name__}")
    src = ticket.source
    mlp = isinstance(target, MLP) and isinstance(src, (MLP, VirtualMLP))
    # a virtual source is drawn densely (DenseSource.draw, the same bits) when it fits
    # the memory budget; beyond, the references read the generator at the kept entries
    view = _dense_view(ticket)
    names = tuple(source_parameter_shapes(src))
    for i, (name, kept) in enumerate(zip(names, ticket.kept_values(), strict=True)):
        idx, values = ticket.kept_entries(name)
        if kept.tobytes() != values.tobytes():
            _fail("mask", f"kept values of source {name} differ between kept_values and "
                          "kept_entries")
        if isinstance(src, VirtualNetwork) and values.tobytes() != src.entries(
                name, idx).tobytes():
            _fail("mask", f"kept values of source {name} differ from the generator's entries")
        if view is not None:
            p, m = view[0].params[name], view[1][i]
            if kept.tobytes() != p[m].tobytes() or values.tobytes() != p.reshape(
                    -1)[idx].tobytes():
                _fail("mask", f"kept values of source {name} differ from the source's entries")
    if rebuilt is not None:
        other = rebuilt.source
        if source_parameter_shapes(src) != source_parameter_shapes(other):
            _fail("same seed same bits", "the two builds' sources have different parameters")
        if isinstance(src, VirtualNetwork) and isinstance(other, VirtualNetwork):
            if src != other:
                _fail("same seed same bits", f"the virtual sources differ between two builds "
                                             f"({src.source!r} and {other.source!r})")
        elif isinstance(src, Network) and isinstance(other, Network):
            for name, p in src.params.items():
                q = other.params[name]
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
        x = g.standard_normal((32, *target.input_shape))
        norms = np.linalg.norm(x.reshape(32, -1), axis=1).reshape(-1, *([1] * (x.ndim - 1)))
        x /= np.maximum(norms, 1.0)
    else:
        x = np.asarray(inputs, dtype=np.float64)
    got = ticket.forward(x)
    if view is None:
        ref = _sparse_forward(ticket, x) if mlp else _net_sparse_forward(ticket, x)
    else:
        ref = _dense_forward(*view, x) if mlp else _dense_forward_net(*view, x)
    scale = max(1.0, float(np.abs(ref).max()))
    if not np.allclose(got, ref, rtol=0.0, atol=1e-10 * scale):
        _fail("forward", f"Ticket.forward differs from the dense source*mask pass by "
                         f"{float(np.abs(got - ref).max()):.3g}")
    if ticket.target_fingerprint is not None and ticket.target_fingerprint != target.fingerprint():
        _fail("fingerprint", "the ticket records the fingerprint of another target")
    if errors is not None:
        _check_recorded(errors(target, ticket), ticket)
    block_form = mlp
    if mlp:
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
    if certify:
        if block_form:
            check_structure(target, ticket)
        cert, _ = _certify(target, ticket, radius=1.0, check_target=True)
        if cert is not None:
            rep = approximation_error(target, ticket, rng=rng, n_samples=128,
                                      adversarial_steps=20, restarts=4, certify=False)
            if rep.adversarial > cert:
                _fail("certified >= adversarial", f"adversarial {rep.adversarial!r} > "
                                                  f"certified {cert!r}")


def _check_recorded(real: Any, ticket: Ticket) -> None:
    """The construction's recomputed errors against the ticket's records, by name."""
    rec = ticket.errors
    if rec is None:
        _fail("recorded errors", "the ticket records no errors; the construction's `errors` "
                                 "function computes some")
    if not isinstance(real, dict) or set(real) != set(rec):
        got = sorted(real) if isinstance(real, dict) else type(real).__name__
        _fail("recorded errors", f"the recomputed errors name {got}; the ticket records "
                                 f"{sorted(rec)}")
    for name, r in rec.items():
        a = np.asarray(real[name], dtype=np.float64)
        if a.shape != r.shape or not np.allclose(a, r, rtol=1e-9, atol=1e-12):
            diff = float(np.abs(a - r).max()) if a.shape == r.shape else float("nan")
            _fail("recorded errors", f"errors[{name!r}] differs from the recomputed errors "
                                     f"(by {diff:.3g}, shapes {a.shape} and {r.shape})")


def check_construction(
    build: Callable[[Any, int], Ticket],
    *,
    targets: Any = None,
    max_examples: int = 20,
    certify: bool = True,
    errors: Callable[[Network, Ticket], Any] | None = None,
) -> None:
    """Run :func:`check_ticket` as a hypothesis property over targets and seeds.

    Parameters
    ----------
    build : callable
        ``build(target, seed) -> Ticket``: the construction, drawing its source
        from ``seed`` (an int). It is called twice per example with the same
        seed (the same-bits invariant).
    targets : hypothesis strategy of networks, optional
        Default :func:`slth.testing.strategies.bounded_targets` with 1-3 layers
        of widths 1-4 (MLPs); for other architectures pass a strategy of your
        networks (e.g. :func:`slth.testing.strategies.networks`).
    max_examples : int, default 20
        Hypothesis examples.
    certify : bool, default True
        As in :func:`check_ticket`.
    errors : callable, optional
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
    def prop(target: Network, seed: int) -> None:
        check_ticket(target, build(target, seed), rebuilt=build(target, seed), certify=certify,
                     rng=seed, errors=errors)

    prop()
