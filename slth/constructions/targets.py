"""Target tools shared by the constructions: validation, rescaling, bounded random targets.

:func:`check_target` refuses what is not a finite :class:`slth.nets.MLP`;
:func:`rescale` scales a target into the theorems' hypotheses
(``||W_l||_2 <= 1``, inputs in the unit ball) and :class:`RescaledTarget` says
how the accuracy transfers back; :func:`bounded_target` draws a random target
that meets them; :func:`target_assumptions` records, in a ticket's params,
whether they hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _validate
from .._rng import RNGLike, as_generator
from ..errors import InputError, format_value
from ..nets.mlp import MLP

__all__ = ["RescaledTarget", "bounded_target", "check_target", "rescale", "target_assumptions"]


def check_target(target: Any) -> MLP:
    """Return ``target`` if it is a valid :class:`MLP`; raise :class:`InputError` otherwise."""
    if not isinstance(target, MLP):
        raise InputError(
            "`target` must be a slth.nets.MLP (build one with MLP(weights, biases) or "
            f"MLP.from_torch(module)); received {format_value(target)} of type "
            f"{type(target).__name__}"
        )
    for name, p in zip(target.parameter_names(), target.parameters()):
        if not np.all(np.isfinite(p)):
            raise InputError(f"`target.{name}` must be finite; received NaN or infinite entries")
    return target


def target_assumptions(target: MLP) -> dict[str, Any]:
    """The theorem's hypotheses checked on ``target``: spectral norms <= 1, no biases."""
    norms = target.spectral_norms()
    norms_ok = bool(np.all(norms <= 1.0 + 1e-12))
    return {
        "spectral_norms": [float(v) for v in norms],
        "spectral_norms_le_1": norms_ok,
        "bias_free": not target.has_biases,
        "assumptions_hold": norms_ok and not target.has_biases,
        "input_domain": "unit l2 ball",
    }


# ----------------------------------------------------------------------------- rescale
@dataclass(frozen=True, eq=False)
class RescaledTarget:
    """A target scaled into the theorems' hypotheses, and how to undo it.

    Attributes
    ----------
    target : MLP
        The scaled network ``f~``: every ``||W~_l||_2 <= 1``.
    factors : numpy.ndarray
        float64 ``(L,)``: ``s_l >= 1`` divided out of layer l (``s_1`` includes
        ``input_radius``).
    output_factor : float
        ``F = prod(factors)``.
    input_radius : float
        R: the original inputs lie in the ball of radius R.

    Notes
    -----
    ``f(x) = F * f~(x / R)`` for every x. If a ticket g satisfies
    ``sup_{||u|| <= 1} ||f~(u) - g(u)|| <= eps'`` then
    ``sup_{||x|| <= R} ||f(x) - F g(x / R)|| <= F eps'``: to reach accuracy eps
    on f, construct for ``f~`` with ``eps' = eps / F``. The factor F and the
    input scaling 1/R are applied outside the ticket (masks cannot rescale).
    """

    target: MLP
    factors: np.ndarray
    output_factor: float
    input_radius: float


def rescale(target: MLP, *, input_radius: float = 1.0) -> RescaledTarget:
    """Scale a target into the hypotheses of Pensia et al. (2020), Theorem 1.

    Theorem 1 assumes ``||W_l||_2 <= 1`` for every layer and inputs in the unit
    ball. ReLU is positively homogeneous, so dividing layer l by
    ``s_l = max(||W_l||_2, 1)`` (layer 1: ``max(R ||W_1||_2, 1)`` after folding
    the input radius R into it) and every bias ``b_l`` by ``s_1 ... s_l`` gives
    ``f~`` with ``f(x) = (s_1 ... s_l) f~(x / R)`` exactly. Layers already within
    the hypothesis are left unscaled (s_l = 1). Nothing is clipped.

    Parameters
    ----------
    target : MLP
        Any target network.
    input_radius : float, default 1.0
        R > 0: the inputs of interest satisfy ``||x|| <= R``.

    Returns
    -------
    RescaledTarget
        ``target`` (f~), ``factors`` (s_l), ``output_factor`` F = prod s_l and
        ``input_radius``. Accuracy eps' on f~ gives accuracy ``F eps'`` on f
        (see :class:`RescaledTarget`).

    Raises
    ------
    InputError
        ``target`` is not an MLP or ``input_radius`` is not a finite number > 0.
    """
    target = check_target(target)
    R = _validate.positive("input_radius", input_radius)
    norms = target.spectral_norms()
    factors = np.ones(target.depth)
    weights, biases = [], []
    cum = 1.0
    for l, (w, b) in enumerate(zip(target.weights, target.biases)):
        w_eff = w * R if l == 0 else w
        s = max(float(norms[l]) * (R if l == 0 else 1.0), 1.0)
        w_new = w_eff / s
        # rounding guard: the scaled norm must not exceed 1 by a rounding error
        for _ in range(64):
            if s == 1.0 or float(np.linalg.svd(w_new, compute_uv=False)[0]) <= 1.0:
                break
            s *= 1.0 + 1e-15
            w_new = w_eff / s
        factors[l] = s
        cum *= s
        weights.append(w_new)
        biases.append(None if b is None else b / cum)
    return RescaledTarget(MLP(tuple(weights), tuple(biases)), factors, float(np.prod(factors)),
                          R)


def bounded_target(widths: Sequence[int], *, rng: RNGLike = None) -> MLP:
    """Random bias-free target with every ``||W_l||_2 <= 1`` (Theorem 1's hypothesis).

    Entries are drawn i.i.d. U[-1, 1], then each layer whose spectral norm
    exceeds 1 is divided by it (:func:`slth.constructions.rescale`); for the
    small widths used here this makes every norm exactly 1, the edge of the
    hypothesis. ``rng``: int seed or numpy Generator.

    Examples
    --------
    >>> from slth.constructions import bounded_target
    >>> t = bounded_target((3, 4, 2), rng=0)
    >>> bool(abs(t.spectral_norms().max() - 1.0) < 1e-12)
    True
    """
    return rescale(MLP.random(tuple(int(w) for w in widths), rng=as_generator(rng))).target

