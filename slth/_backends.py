"""Optional array-framework bridges, found at call time (the einops ``_backends`` model).

Core code (:mod:`slth.nets`, :mod:`slth.ticket`, :mod:`slth.evaluate`) never
imports a framework nor names one at import time: a method that converts to or
from torch asks :func:`torch_bridge` for :mod:`slth.torch` when it runs, so
``import slth`` stays free of torch and a missing torch is reported only to the
caller who needs it.
"""

from __future__ import annotations

import importlib
import importlib.util
import types

__all__ = ["torch_bridge"]


def torch_bridge() -> types.ModuleType:
    """The torch backend :mod:`slth.torch`, imported now.

    Returns
    -------
    module
        :mod:`slth.torch` (``to_torch``, ``mlp_from_torch``,
        ``network_to_torch``, ...).

    Raises
    ------
    ImportError
        torch is not installed; the message says how to install it.
    """
    if importlib.util.find_spec("torch") is None:
        raise ImportError(
            "`torch` must be installed for slth's torch backend (slth.torch); received no "
            "torch in this environment: install a CPU or CUDA build with pip (e.g. "
            "`pip install torch`), or use the numpy forward passes in slth.nets / slth.Ticket"
        )
    return importlib.import_module("slth.torch")
