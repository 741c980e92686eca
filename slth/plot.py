"""The error-against-width figure for your own target: data, fit and theory on the same axes.

:func:`error_vs_width` builds tickets of a target with a registered construction
at several widths (the construction's width keyword: ``n`` for Pensia et al.,
``k`` for Malach et al., ``rho`` for Burkholz), ``trials`` seeds each, measures
the sampled, adversarial (lower bound) and certified (upper bound) sup error,
fits ``error ~ a 2^(-b w)`` to the adversarial medians, and draws them with the
theorem's claim where slth knows it (for ``pensia2020``: the accuracy Theorem 1
guarantees at that width, the inverse of :func:`slth.bounds.pensia2020_units`
with its constant C) or a ``theory`` function you pass. The rows run through
:func:`slth.sweeps.run_sweep`, so a results file makes it resumable.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import _validate
from .errors import InputError, format_value
from .nets.base import Network

__all__ = ["WIDTH_KEYWORDS", "ErrorWidthCurve", "error_vs_width", "pensia2020_eps_at_width",
           "pensia2020_first_width"]

#: The width keyword of each registered construction (``construct(target, <keyword>=w)``).
WIDTH_KEYWORDS: dict[str, str] = {"pensia2020": "n", "malach2020": "k", "single_pair": "k",
                                  "burkholz2022": "rho", "dacunha2022": "n",
                                  "otsuka2025": "n"}


@dataclass(frozen=True, eq=False)
class ErrorWidthCurve:
    """What :func:`error_vs_width` measured.

    Attributes
    ----------
    construction, keyword : str
        The construction and its width keyword.
    widths : numpy.ndarray
        int64 ``(W,)``.
    sampled, adversarial : numpy.ndarray
        float64 ``(trials, W)``: sampled max and adversarial (lower bound) sup error.
    certified : numpy.ndarray
        float64 ``(trials, W)``, NaN where the construction has no certifier.
    kept : numpy.ndarray
        int64 ``(trials, W)``: kept entries.
    fit : (float, float) or None
        ``(a, b)`` of ``median adversarial ~ a 2^(-b w)`` (least squares on log2),
        None with fewer than two positive medians.
    theory : numpy.ndarray or None
        ``(W,)``: the accuracy the theorem guarantees at each width (None: unknown;
        NaN: no guarantee at that width).
    theory_note : str
        What the theory curve is (and, when the widths are all below it, from
        which width the theorem guarantees anything); drawn on the figure.
    paths : Mapping[str, pathlib.Path]
        Files written (``csv``, ``png``, ``pdf``); empty without ``out_dir``.
    """

    construction: str
    keyword: str
    widths: np.ndarray
    sampled: np.ndarray
    adversarial: np.ndarray
    certified: np.ndarray
    kept: np.ndarray
    fit: tuple[float, float] | None
    theory: np.ndarray | None
    theory_note: str
    paths: Mapping[str, Path]


def pensia2020_eps_at_width(target: Network, n: int, *, delta: float = 0.1,
                            C: float | None = None) -> float:
    """The accuracy Pensia et al. (2020), Theorem 1 guarantees with ``n`` units per part.

    The inverse of :func:`slth.bounds.pensia2020_units` (``n = ceil((C/2) ln(d_in
    d_out l / min(eps, delta)))``, the worst layer): the smallest eps with
    ``units(eps) <= n`` for every layer, ``max_i d_in d_out l exp(-2 n / C)``; NaN
    when even eps -> 1 needs more units (the claim is then about delta, not eps).

    Parameters
    ----------
    target : Network
        An MLP target (its layer widths).
    n : int
        Units per input coordinate and sign part, >= 1.
    delta : float, default 0.1
    C : float, optional
        The theorem's constant (default :data:`slth.bounds.PENSIA2020_C`).

    Returns
    -------
    float
    """
    from . import bounds
    from .nets.io import mlp_from_network

    mlp = mlp_from_network(target)
    n = _validate.integer("n", n, low=1)
    delta = float(_validate.open_interval("delta", delta))
    c = bounds.PENSIA2020_C if C is None else float(_validate.positive("C", C))
    L = mlp.depth
    worst = max(w.shape[0] * w.shape[1] * L for w in mlp.weights)
    eps = worst * math.exp(-2.0 * n / c)
    if eps >= delta:  # min(eps, delta) = delta: the width is set by delta alone
        return float("nan")
    return float(eps)


def pensia2020_first_width(target: Network, *, delta: float = 0.1, C: float | None = None
                           ) -> int:
    """The smallest n at which :func:`pensia2020_eps_at_width` gives an accuracy (below delta)."""
    from . import bounds
    from .nets.io import mlp_from_network

    mlp = mlp_from_network(target)
    c = bounds.PENSIA2020_C if C is None else float(C)
    worst = max(w.shape[0] * w.shape[1] * mlp.depth for w in mlp.weights)
    return max(1, math.floor(0.5 * c * math.log(worst / float(delta))) + 1)


def _row(config: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """One (width, trial): build and measure (a module-level function: runs in workers)."""
    from .cli import sweep_row

    return sweep_row(config, rng)


def error_vs_width(
    target: Network,
    construction: str,
    widths: Sequence[int],
    *,
    trials: int = 3,
    rng: int = 0,
    keyword: str | None = None,
    options: Mapping[str, Any] | None = None,
    theory: Callable[[int], float] | None = None,
    samples: int = 1024,
    steps: int = 30,
    out_dir: str | os.PathLike[str] | None = None,
    name: str = "error_vs_width",
    store: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
) -> ErrorWidthCurve:
    """Measure and draw a construction's sup error against its width for your target.

    Parameters
    ----------
    target : Network
        The target (an MLP or any network the construction takes).
    construction : str
        A key of :data:`slth.constructions.REGISTRY`.
    widths : sequence of int
        Values of the width keyword, each >= 1.
    trials : int, default 3
        Seeds per width (the source's seeds ``rng, rng + 1, ...``).
    rng : int, default 0
        Base seed (sources and evaluation inputs).
    keyword : str, optional
        The width keyword (default :data:`WIDTH_KEYWORDS` of the construction).
    options : mapping, optional
        Further keywords of ``construct`` (e.g. ``{"weight_eps": 0.01}``).
    theory : callable, optional
        ``theory(w) -> eps``: the accuracy the theorem guarantees at width w,
        drawn beside the data. Default: :func:`pensia2020_eps_at_width` for
        ``pensia2020``, none otherwise.
    samples, steps : int, default 1024, 30
        Random inputs and adversarial steps per ticket.
    out_dir : path-like, optional
        Write ``<name>.csv`` (one row per width and trial), ``<name>.png`` and
        ``<name>.pdf`` there.
    name : str, default "error_vs_width"
        File stem.
    store : path-like, optional
        A :func:`slth.sweeps.run_sweep` results file: a rerun reuses its rows.
    progress : bool or None
        Progress bar on stderr.

    Returns
    -------
    ErrorWidthCurve

    Raises
    ------
    InputError
        An unknown construction or keyword, bad widths or counts, a target that
        is not a network.
    """
    from .constructions import REGISTRY
    from .sweeps import run_sweep

    if not isinstance(target, Network):
        raise InputError(f"`target` must be a network (slth.nets.Network, an MLP included); "
                         f"received {format_value(target)}")
    if construction not in REGISTRY or REGISTRY[construction].module is None:
        raise InputError(f"`construction` must be one of {sorted(REGISTRY)}; received "
                         f"{construction!r}")
    key = keyword or WIDTH_KEYWORDS.get(construction)
    if not isinstance(key, str) or not key.isidentifier():
        raise InputError(f"`keyword` must name the width keyword of {construction!r}'s "
                         f"construct; received {keyword!r}")
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence) or not widths:
        raise InputError(f"`widths` must be a non-empty sequence of ints >= 1; received "
                         f"{format_value(widths)}")
    ws = [_validate.integer("widths", w, low=1) for w in widths]
    trials = _validate.integer("trials", trials, low=1)
    rng = _validate.integer("rng", rng, low=0)
    samples = _validate.integer("samples", samples, low=1)
    steps = _validate.integer("steps", steps, low=0)
    opts = dict(options or {})
    if key in opts:
        raise InputError(f"`options` must not hold the width keyword {key!r} (pass `widths`)")
    import tempfile

    # the rows read the target from a file (workers too): beside the store, so that its rows
    # are found again by a rerun (they are keyed by their configuration), else a temporary one
    tmp = None if store is not None else tempfile.TemporaryDirectory()
    try:
        if tmp is None:
            target_file = os.fspath(Path(store).with_suffix(".target.npz"))
            Path(target_file).parent.mkdir(parents=True, exist_ok=True)
        else:
            target_file = os.path.join(tmp.name, "target.npz")
        target.save(target_file)
        configs = [{"task": "slth.plot.error_vs_width", "target": os.path.abspath(target_file),
                    "target_fingerprint": target.fingerprint(), "construction": construction,
                    "options": {**opts, key: w}, "seed": rng + t, "samples": samples,
                    "steps": steps}
                   for w in ws for t in range(trials)]
        res = run_sweep(_row, configs, path=store, rng=rng, progress=progress,
                        desc=f"{construction} error against {key}")
    finally:
        if tmp is not None:
            tmp.cleanup()
    W = len(ws)

    def grid(field: str, dtype: Any) -> np.ndarray:
        vals = [np.nan if r.result[field] is None else r.result[field] for r in res.rows]
        return np.asarray(vals, dtype=dtype).reshape(W, trials).T.copy()

    sampled, adversarial = grid("sampled_max", float), grid("adversarial", float)
    certified, kept = grid("certified", float), grid("kept", np.int64)
    med = np.median(adversarial, axis=0)
    fit = _fit(np.asarray(ws, dtype=float), med)
    note = "" if theory is None else "theory: the accuracy guaranteed at each width"
    if theory is None and construction == "pensia2020":
        from . import bounds

        def theory(w: int) -> float:
            return pensia2020_eps_at_width(target, w)

        note = (f"Theorem 1 (C = {bounds.PENSIA2020_C:g}, \u03b4 = 0.1): guarantee from "
                f"n = {pensia2020_first_width(target)}")
    th = None if theory is None else np.array([float(theory(w)) for w in ws])
    curve = ErrorWidthCurve(construction, key, np.asarray(ws, dtype=np.int64), sampled,
                            adversarial, certified, kept, fit, th, note, {})
    if out_dir is not None:
        paths = _write(curve, Path(out_dir), name)
        object.__setattr__(curve, "paths", paths)
    return curve


def _fit(w: np.ndarray, med: np.ndarray) -> tuple[float, float] | None:
    ok = med > 0
    if ok.sum() < 2:
        return None
    slope, icpt = np.polyfit(w[ok], np.log2(med[ok]), 1)
    return float(2.0 ** icpt), float(-slope)


def _write(curve: ErrorWidthCurve, out: Path, name: str) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / f"{name}.csv"
    with open(csv_path, "w", newline="") as fh:
        wr = csv.writer(fh, lineterminator="\n")
        wr.writerow([curve.keyword, "trial", "kept", "sampled_max", "adversarial", "certified",
                     "theory_eps"])
        for j, w in enumerate(curve.widths):
            for t in range(curve.sampled.shape[0]):
                wr.writerow([int(w), t, int(curve.kept[t, j]), repr(float(curve.sampled[t, j])),
                             repr(float(curve.adversarial[t, j])),
                             repr(float(curve.certified[t, j])),
                             "" if curve.theory is None else repr(float(curve.theory[j]))])
    rc = {"font.size": 7.5, "axes.labelsize": 8, "legend.fontsize": 7, "legend.frameon": False,
          "lines.linewidth": 1.0, "lines.markersize": 3.0, "savefig.dpi": 300,
          "pdf.fonttype": 42}
    w = curve.widths.astype(float)
    with plt.rc_context(rc):
        fig, ax = plt.subplots(figsize=(3.3, 3.2), layout="constrained")
        adv = curve.adversarial
        ax.fill_between(w, adv.min(axis=0), adv.max(axis=0), alpha=0.2, color="C0", lw=0)
        ax.plot(w, np.median(adv, axis=0), "o-", color="C0",
                label="adversarial (lower bound), median, range")
        if np.isfinite(curve.certified).any():
            ax.plot(w, np.nanmedian(curve.certified, axis=0), "s--", color="C1",
                    label="certified (upper bound), median")
        if curve.fit is not None:
            a, b = curve.fit
            ax.plot(w, a * 2.0 ** (-b * w), ":", color="0.3",
                    label=f"fit ${a:.3g}\\cdot 2^{{-{b:.3g}\\,{curve.keyword}}}$")
        if curve.theory is not None and np.isfinite(curve.theory).any():
            ax.plot(w, curve.theory, "-", color="C3", lw=1.4,
                    label="theorem: guaranteed accuracy")
        if curve.theory_note:
            ax.set_title(curve.theory_note, fontsize=6.5)
        ax.set_yscale("log")
        ax.set_xlabel(f"width keyword ${curve.keyword}$ of {curve.construction}")
        ax.set_ylabel(r"sup error on the unit ball ($\ell_2$)")
        ax.grid(True, which="major", alpha=0.35, lw=0.4)
        # below the axes: a legend inside would cover the data
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=1)
        paths = {"csv": csv_path}
        for ext in ("png", "pdf"):
            p = out / f"{name}.{ext}"
            fig.savefig(p, metadata={"CreationDate": None} if ext == "pdf" else None)
            paths[ext] = p
        plt.close(fig)
    return paths
