"""One script per figure: compute, save the data (CSV), plot (PNG and PDF).

Every figure module exposes ``NAME`` and ``main(out_dir, *, quick=False, rng=0)``
and draws the theoretical law on the same axes as the data. Run them with
``python -m figures all [--quick]`` or ``python -m figures NAME``. Figures use
slth's public API only (``slth``, ``slth.subset_sum``, ``slth.stats``,
``slth.sweeps``, ``slth.constructions``, ``slth.evaluate``); the samplers a
figure shares with a theorem check live there too (for example
:func:`slth.trials.first_covering_trials`). matplotlib runs on the Agg
backend.

Adding a figure: write ``figures/<name>.py`` and add one line to :data:`FIGURES`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from slth import InputError

__all__ = ["FIGURES", "load_figure"]

#: Registry: figure name -> module (imported only when the figure is made).
FIGURES: dict[str, str] = {
    "subset_sum_error": f"{__name__}.subset_sum_error",
    "subset_sum_success": f"{__name__}.subset_sum_success",
    "mlp_error_width": f"{__name__}.mlp_error_width",
    "cnn_error_width": f"{__name__}.cnn_error_width",
    "attention_error_width": f"{__name__}.attention_error_width",
}


def load_figure(name: str) -> ModuleType:
    """Import the module of the figure ``name`` (a key of :data:`FIGURES`)."""
    if name not in FIGURES:
        raise InputError(f"`name` must be one of {sorted(FIGURES)} or 'all'; received {name!r}")
    return importlib.import_module(FIGURES[name])
