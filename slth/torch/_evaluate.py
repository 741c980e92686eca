"""Approximation error on torch: the sampled, adversarial and certified error on a device.

:func:`approximation_error` is :func:`slth.evaluate.approximation_error` with the
forward passes on a torch device (CUDA when available) and the adversarial
search's gradients from autograd: the same inputs (the same ``rng`` draws the
same samples), the same restarts, step sizes and projection, the same
certificate (the construction's certifier, computed in numpy). In float64 it
agrees with the numpy evaluation to rounding (``tests/tolerances.py``); in
float32 its errors are meaningful only above twice :func:`slth.torch.tolerance`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike

from .._rng import RNGLike
from ..evaluate import ErrorReport, _prepare, _report
from ..nets.base import Network
from ..ticket import Ticket
from ._common import as_device, as_dtype

__all__ = ["approximation_error"]


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
    device: Any = None,
    dtype: torch.dtype | str = torch.float64,
    batch_size: int = 65536,
) -> ErrorReport:
    """Sampled, adversarial (lower bound) and certified (upper bound) errors, on torch.

    Parameters
    ----------
    target, ticket, inputs, n_samples, rng, adversarial_steps, restarts, radius, certify, \
check_target
        As in :func:`slth.evaluate.approximation_error` (any networks).
    device : torch.device or str, optional
        Default: ``cuda`` when available, else ``cpu``.
    dtype : {torch.float64, torch.float32, "float64", "float32"}, default torch.float64
        Compute dtype of the forward passes and gradients.
    batch_size : int, default 65536
        Inputs per forward pass of the sampled phase (>= 1).

    Returns
    -------
    slth.evaluate.ErrorReport

    Raises
    ------
    InputError, ShapeError
        As :func:`slth.evaluate.approximation_error`.
    CertificateError
        The adversarial lower bound exceeds the certified upper bound.
    """
    from . import _batch_size, _evaluator

    target, ticket, X, given, radius, gen, restarts, adversarial_steps, _ = _prepare(
        target, ticket, inputs, n_samples, rng, adversarial_steps, restarts, radius,
        check_target)
    dev, dt = as_device(device), as_dtype(dtype)
    bs = _batch_size(batch_size, int(X.shape[0]))
    f = _evaluator(target, dev, dt, "target")
    g = _evaluator(ticket, dev, dt, "ticket")

    def to_dev(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(x), dtype=dt, device=dev)

    def errors(x: np.ndarray) -> np.ndarray:
        out = np.empty(x.shape[0])
        with torch.no_grad():
            for s in range(0, x.shape[0], bs):
                xt = to_dev(x[s:s + bs])
                d = (f(xt) - g(xt)).reshape(xt.shape[0], -1)
                out[s:s + bs] = torch.linalg.vector_norm(d, dim=1).to("cpu",
                                                                       torch.float64).numpy()
        return out

    def value_and_grad(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xt = to_dev(x).requires_grad_(True)
        diff = (f(xt) - g(xt)).reshape(xt.shape[0], -1)
        h = torch.linalg.vector_norm(diff, dim=1)
        # the gradient of h where h > 0; at h = 0 the search direction is 0, as in numpy
        u = (diff / torch.where(h > 0, h, torch.ones_like(h))[:, None]).detach()
        (grad,) = torch.autograd.grad((diff * u).sum(), xt)
        return (h.detach().to("cpu", torch.float64).numpy(),
                grad.to("cpu", torch.float64).numpy())

    return _report(target, ticket, X, given, radius, gen, restarts, adversarial_steps,
                   certify, check_target, errors, value_and_grad)
