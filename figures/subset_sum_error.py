"""Figure: exact optimal subset-sum error against n, with the 0.4 sqrt(n) 2^-n law.

For each n and each sample law, independent instances (n fresh values, one
target uniform on [-1, 1]) are solved exactly (:func:`slth.subset_sum.solve_batch`,
``eps=None``, meet in the middle); the figure shows the median and quartiles of
the optimal error |z - sum_S X_i|, the reference law 0.4 sqrt(n) 2^-n
(:func:`slth.subset_sum.law_reference`) and a least-squares fit
a sqrt(n) 2^(-b n) of the medians for n >= ``FIT_MIN_N`` (log scale). A lower
panel shows the median divided by the law.

Lueker (1998) proves the optimum is exponentially small in n; the sqrt(n) 2^-n
shape is the heuristic count: 2^n subset sums spread over a width of order
sqrt(n), so the nearest one to a fixed target sits about sqrt(n) 2^-n away.

Outputs in ``out_dir``: ``subset_sum_error.csv`` (one row per law and n),
``subset_sum_error_fit.csv`` (fit parameters), ``subset_sum_error.png`` and
``.pdf``; resumable raw rows in ``runs/subset_sum_error[_quick].jsonl``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.ticker
import numpy as np

from slth.subset_sum import law_reference, sample, solve_batch
from slth.sweeps import run_sweep

from ._style import LABELS, new_figure, save_figure, style, write_csv

__all__ = ["CSV_COLUMNS", "FIT_COLUMNS", "NAME", "compute", "fit_law", "main", "plot"]

NAME = "subset_sum_error"
DISTRIBUTIONS: tuple[str, ...] = ("uniform", "product")
#: Medians at n below this are left out of the fit (the law is asymptotic).
FIT_MIN_N = 8
QUICK: dict[str, Any] = {"ns": list(range(2, 33, 2)), "instances": 200}
FULL: dict[str, Any] = {"ns": list(range(1, 41)), "instances": 1000}
#: Instances per sweep row (rows are the unit of resuming).
_ROW = 500

CSV_COLUMNS = ("distribution", "n", "instances", "median", "q25", "q75", "law", "mode")
FIT_COLUMNS = ("distribution", "a", "b", "n_min", "n_max", "rms_log2_residual", "mode")


def _task(config: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    size, n = config["size"], config["n"]
    values = sample(config["distribution"], (size, n), rng=rng)
    targets = rng.uniform(-1.0, 1.0, size)
    return {"errors": solve_batch(values, targets).errors.tolist()}


def compute(
    *,
    ns: Sequence[int],
    instances: int,
    distributions: Sequence[str] = DISTRIBUTIONS,
    rng: int = 0,
    store: str | Path | None = None,
    progress: bool | None = None,
) -> list[dict[str, Any]]:
    """Median and quartiles of the optimal error for each law and n.

    Parameters
    ----------
    ns : sequence of int
        Values of n, each in [1, 40].
    instances : int
        Instances per (law, n).
    distributions : sequence of str
        Sample laws (names of :data:`slth.subset_sum.DISTRIBUTIONS`).
    rng : int, default 0
        Base seed of the sweep (each row's seed derives from it and the row).
    store : path-like, optional
        Resumable results file.
    progress : bool or None
        Progress bar on stderr (None: when stderr is a terminal).

    Returns
    -------
    list of dict
        Rows with the keys of :data:`CSV_COLUMNS`.
    """
    configs = []
    for dist in distributions:
        for n in ns:
            left, chunk = int(instances), 0
            while left > 0:
                size = min(_ROW, left)
                configs.append(
                    {
                        "figure": NAME,
                        "distribution": dist,
                        "n": int(n),
                        "chunk": chunk,
                        "size": size,
                    }
                )
                left -= size
                chunk += 1
    res = run_sweep(_task, configs, path=store, rng=rng, progress=progress, desc=NAME)
    errors: dict[tuple[str, int], list[float]] = {}
    for cfg, out in zip(configs, res.results):
        errors.setdefault((cfg["distribution"], cfg["n"]), []).extend(out["errors"])
    rows = []
    for (dist, n), errs in errors.items():
        q25, med, q75 = np.quantile(np.asarray(errs), [0.25, 0.5, 0.75])
        rows.append(
            {
                "distribution": dist,
                "n": n,
                "instances": len(errs),
                "median": float(med),
                "q25": float(q25),
                "q75": float(q75),
                "law": float(law_reference(n)),
            }
        )
    return rows


def fit_law(ns: np.ndarray, medians: np.ndarray, *, n_min: int = FIT_MIN_N) -> dict[str, float]:
    """Least-squares fit of log2(median) = log2(a) + log2(sqrt(n)) - b n for n >= ``n_min``.

    Parameters
    ----------
    ns, medians : numpy.ndarray
        Values of n and the median errors (positive).
    n_min : int
        Smallest n used.

    Returns
    -------
    dict
        ``a``, ``b``, ``n_min``, ``n_max`` and the RMS residual in log2 units.
    """
    ns = np.asarray(ns, dtype=float)
    med = np.asarray(medians, dtype=float)
    keep = (ns >= n_min) & (med > 0)
    x, y = ns[keep], np.log2(med[keep]) - 0.5 * np.log2(ns[keep])
    design = np.column_stack([np.ones_like(x), -x])
    (log2a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ np.array([log2a, b])
    return {
        "a": float(2.0**log2a),
        "b": float(b),
        "n_min": int(x.min()),
        "n_max": int(x.max()),
        "rms_log2_residual": float(np.sqrt(np.mean(resid**2))),
    }


def plot(rows: list[dict[str, Any]], fits: dict[str, dict[str, float]]) -> Any:
    """Two stacked panels: optimal error (log y) and median / law; returns the figure.

    Every legend entry is a proxy drawn with exactly the style of its artist: the
    medians (open markers, no line), the quartile band (patch), the fit (dotted),
    the law (dashed).
    """
    colors = {"uniform": "C0", "product": "C3"}
    markers = {"uniform": "o", "product": "s"}
    with style():
        fig, (ax, axr) = new_figure(2, height=4.3, height_ratios=(2.6, 1.0))
        ns_all = np.array(sorted({r["n"] for r in rows}), dtype=float)
        grid = np.linspace(ns_all.min(), ns_all.max(), 200)
        handles: list[Any] = []
        labels: list[str] = []
        for dist in dict.fromkeys(r["distribution"] for r in rows):
            rs = sorted((r for r in rows if r["distribution"] == dist), key=lambda r: r["n"])
            n = np.array([r["n"] for r in rs], dtype=float)
            med = np.array([r["median"] for r in rs])
            c, m = colors.get(dist, "C2"), markers.get(dist, "^")
            f = fits[dist]
            band = ax.fill_between(
                n, [r["q25"] for r in rs], [r["q75"] for r in rs], color=c, alpha=0.2, lw=0
            )
            (fit_line,) = ax.plot(
                grid, f["a"] * np.sqrt(grid) * np.exp2(-f["b"] * grid), ":", color=c, lw=1.0
            )
            (points,) = ax.plot(n, med, m, ls="none", color=c, mfc="none", mew=0.7)
            handles += [(band, points), fit_line]
            labels += [
                f"{LABELS.get(dist, dist)}: median (quartile band)",
                f"fit ${f['a']:.2f}\\sqrt{{n}}\\,2^{{-{f['b']:.3f}\\,n}}$, "
                f"$n={f['n_min']}..{f['n_max']}$",
            ]
            axr.plot(n, med / law_reference(n), m + "-", color=c, mfc="none", mew=0.7, lw=0.6)
        (law_line,) = ax.plot(grid, law_reference(grid), "k--", lw=0.8, zorder=1)
        handles.append(law_line)
        labels.append("law $0.4\\sqrt{n}\\,2^{-n}$ (Lueker: exponentially small)")
        ax.set_yscale("log")
        ax.set_ylabel("optimal error $|z-\\sum_{S} X_i|$ (absolute)")
        ax.grid(True, which="major")
        ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        fig.legend(
            handles,
            labels,
            loc="outside lower center",
            ncols=1,
            labelspacing=0.25,
            title=f"{int(rows[0]['instances'])} instances per $n$, target $z\\sim U[-1,1]$",
            title_fontsize=7,
        )
        axr.axhline(1.0, color="k", ls="--", lw=0.8)
        axr.set_yscale("log", base=2)
        axr.set_ylim(0.25, 4)
        axr.set_yticks([0.25, 0.5, 1, 2, 4], ["1/4", "1/2", "1", "2", "4"])
        axr.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        axr.set_ylabel("median / law")
        axr.set_xlabel("number of random values $n$")
        axr.grid(True, which="major")
    return fig


def main(
    out_dir: str | Path,
    *,
    quick: bool = False,
    rng: int = 0,
    progress: bool | None = None,
    ns: Sequence[int] | None = None,
    instances: int | None = None,
) -> dict[str, Path]:
    """Compute, save the data (CSV), plot (PNG, PDF).

    Parameters
    ----------
    out_dir : path-like
        Output folder (created).
    quick : bool, default False
        n = 2, 4, ..., 32 with 200 instances (seconds) instead of n = 1..40 with 1000.
    rng : int, default 0
        Base seed.
    progress : bool or None
        Progress bar on stderr (None: when stderr is a terminal).
    ns, instances : optional
        Override the mode's values of n and instances per n (tests).

    Returns
    -------
    dict of str to pathlib.Path
        ``csv``, ``fit_csv``, ``png``, ``pdf``, ``runs``.
    """
    out = Path(out_dir)
    mode = QUICK if quick else FULL
    store = out / "runs" / f"{NAME}{'_quick' if quick else ''}.jsonl"
    rows = compute(
        ns=list(ns) if ns is not None else mode["ns"],
        instances=int(instances) if instances is not None else mode["instances"],
        rng=rng,
        store=store,
        progress=progress,
    )
    csv_path = write_csv(out / f"{NAME}.csv", CSV_COLUMNS, rows, quick=quick)
    fits = {}
    for dist in dict.fromkeys(r["distribution"] for r in rows):
        rs = [r for r in rows if r["distribution"] == dist]
        fits[dist] = fit_law(np.array([r["n"] for r in rs]), np.array([r["median"] for r in rs]))
    fit_path = write_csv(
        out / f"{NAME}_fit.csv",
        FIT_COLUMNS,
        [{"distribution": d, **f} for d, f in fits.items()],
        quick=quick,
    )
    png, pdf = save_figure(plot(rows, fits), out, NAME, quick=quick)
    return {"csv": csv_path, "fit_csv": fit_path, "png": png, "pdf": pdf, "runs": store}
