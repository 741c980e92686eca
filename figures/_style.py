"""Shared look of the figures: paper column width, fonts >= 7 pt, Agg backend, PNG + PDF."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

__all__ = [
    "COLUMN_WIDTH_IN",
    "LABELS",
    "QUICK_LABEL",
    "mode_name",
    "new_figure",
    "save_figure",
    "style",
    "write_csv",
]

#: Width of one column of a two-column paper, in inches.
COLUMN_WIDTH_IN = 3.3

#: Display names of the sample laws.
LABELS: dict[str, str] = {
    "uniform": "$U[-1,1]$",
    "product": "$U[0,1]\\cdot U[-1,1]$",
}

_RC: dict[str, Any] = {
    "font.size": 7.5,
    "axes.labelsize": 8,
    "axes.titlesize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "legend.handlelength": 1.8,
    "lines.linewidth": 1.0,
    "lines.markersize": 3.0,
    "axes.linewidth": 0.6,
    "grid.linewidth": 0.4,
    "grid.alpha": 0.35,
    "savefig.dpi": 300,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
}


#: Visible mark of a quick (small-sweep) figure: its title and its file metadata.
QUICK_LABEL = "QUICK run (small sweep, not the paper figure)"


def mode_name(quick: bool) -> str:
    """``"quick"`` or ``"full"``: the value of every CSV's ``mode`` column."""
    return "quick" if quick else "full"


def new_figure(
    nrows: int = 1,
    *,
    height: float,
    sharex: bool = True,
    height_ratios: Sequence[float] | None = None,
) -> tuple[Figure, Any]:
    """Figure one column wide with ``nrows`` stacked axes (call inside :func:`style`)."""
    return plt.subplots(
        nrows,
        1,
        figsize=(COLUMN_WIDTH_IN, height),
        sharex=sharex,
        layout="constrained",
        gridspec_kw={"height_ratios": list(height_ratios)} if height_ratios else None,
    )


def style() -> Any:
    """Context manager applying the shared rcParams (use around all plotting calls)."""
    return plt.rc_context(_RC)


def save_figure(fig: Figure, out_dir: Path, name: str, *, quick: bool = False) -> list[Path]:
    """Write ``name.png`` (300 dpi) and ``name.pdf`` into ``out_dir``; close the figure.

    A quick figure says so twice: a red suptitle :data:`QUICK_LABEL` and the file
    metadata (PNG "Title"/"Description"/"Keywords" text chunks; PDF "Title",
    "Subject", "Keywords"), whose Keywords hold ``mode=quick`` or ``mode=full``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    mode = mode_name(quick)
    title = f"{name} ({QUICK_LABEL})" if quick else name
    subject = QUICK_LABEL if quick else "full run (the paper figure)"
    with style():
        if quick:
            fig.suptitle(QUICK_LABEL, color="C3", fontsize=7, fontweight="bold")
        for p in paths:
            if p.suffix == ".pdf":
                meta = {"Title": title, "Subject": subject,
                        "Keywords": f"slth; {name}; mode={mode}", "CreationDate": None}
            else:
                meta = {"Title": title, "Description": subject,
                        "Keywords": f"slth; {name}; mode={mode}"}
            fig.savefig(p, metadata=meta)
    plt.close(fig)
    return paths


def write_csv(
    path: Path, header: Sequence[str], rows: Iterable[Mapping[str, Any]], *, quick: bool = False
) -> Path:
    """Write rows (dicts keyed by ``header``) as CSV; floats with full precision (repr).

    A ``mode`` column in ``header`` is filled with :func:`mode_name` (``quick`` or
    ``full``) in every row.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(header), lineterminator="\n")
        w.writeheader()
        for r in rows:
            r = {**r, "mode": mode_name(quick)} if "mode" in header else r
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in header})
    return path
