"""Devices, dtypes and numpy-to-tensor copies shared by the torch backend's modules."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import InputError, LimitError

__all__ = ["default_device"]

FLOAT32_MAX = float(np.finfo(np.float32).max)

#: dtype names accepted besides the torch dtypes themselves (so callers that do not import
#: torch, such as slth.nets.MLP through slth._backends, can name one).
_DTYPE_NAMES = {"float32": torch.float32, "float64": torch.float64}


def default_device() -> torch.device:
    """``cuda`` when a CUDA device is available, ``cpu`` otherwise.

    Returns
    -------
    torch.device
    """
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def as_device(device: Any) -> torch.device:
    """None -> :func:`default_device`; else a checked ``torch.device``."""
    if device is None:
        return default_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(
            f"`device` must be None, a torch.device or a device string like 'cpu' or "
            f"'cuda:0'; received {device!r}"
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"`device` is {device!r} but CUDA is not available here; use 'cpu'")
    return dev


def as_dtype(dtype: Any) -> torch.dtype:
    """torch.float32 / torch.float64, or their names ``"float32"`` / ``"float64"``."""
    if isinstance(dtype, str) and dtype in _DTYPE_NAMES:
        return _DTYPE_NAMES[dtype]
    if dtype not in (torch.float32, torch.float64):
        raise InputError(
            "`dtype` must be torch.float32 or torch.float64 (or 'float32' / 'float64'); "
            f"received {dtype!r}"
        )
    return dtype  # type: ignore[no-any-return]


def check_range(a: np.ndarray, dtype: torch.dtype, name: str) -> None:
    """LimitError when ``a`` holds values a float32 tensor cannot represent."""
    if dtype == torch.float32 and a.size and float(np.abs(a).max()) > FLOAT32_MAX:
        raise LimitError(
            f"`{name}` holds values beyond the float32 range (|v| <= {FLOAT32_MAX:.3g}); "
            f"received max |v| = {float(np.abs(a).max()):.3g}; use dtype=torch.float64"
        )


def tensor(a: np.ndarray, dtype: torch.dtype, device: torch.device, name: str = "net"
           ) -> torch.Tensor:
    """Copy a (possibly read-only) numpy array to a tensor of ``dtype`` on ``device``.

    Float arrays are cast to ``dtype`` (LimitError past float32's range); integer
    arrays (sparse indices) keep their dtype.
    """
    if a.dtype.kind == "f":
        check_range(a, dtype, name)
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    arr = np.array(a, dtype=np_dtype if a.dtype.kind == "f" else a.dtype, copy=True)
    return torch.from_numpy(arr).to(device=device)
