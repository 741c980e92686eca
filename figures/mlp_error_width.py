"""Figure: MLP ticket error against width, Pensia et al. (2020) against Malach et al. (2020).

The same random targets (widths :data:`ARCH`, every layer of spectral norm 1,
the hypothesis of Pensia et al., NeurIPS 2020, Theorem 1) are approximated by
both constructions at a range of widths: ``n`` units per sign part and input
coordinate, i.e. ``n`` candidates per target weight and sign part (subset sums
for :mod:`slth.constructions.pensia2020`, one closest pair for
:mod:`slth.constructions.malach2020`, whose layout gives every target weight its
own block of ``2n`` hidden units, each solved exactly: the best masks the
construction can choose). Each target has one source per construction, nested
across widths (the nesting of :mod:`proofs_check.pensia2020`), so every curve is the
same tickets growing.

Top panel, error against n (log y): for each construction the band between
the median adversarial lower bound and the median certified upper bound on
``sup_{||x|| <= 1} ||f(x) - g(x)||`` (:func:`slth.evaluate.approximation_error`)
and the median sampled error as a line. Theory on the same axes: Pensia's
optimal subset error decays like ``2^{-n}`` per weight (random subset sum,
Lueker 1998), scaled by the error propagation; the dotted line is a
least-squares fit ``a 2^{-b n}`` of the sampled medians for n >= ``FIT_MIN_N``
(below it the subset sums cannot yet reach the larger weights).
Malach's closest single pair decays like ``1/n``; its dotted line is a fit
``a n^{-b}``.

Theorem 1 of Pensia et al. (with :data:`slth.bounds.PENSIA2020_C`, delta = 0.1)
is drawn beside the measurement: the accuracy it guarantees at each n
(:func:`slth.plot.pensia2020_eps_at_width`, dash-dotted) from the first width at
which it guarantees anything below delta (:func:`slth.plot.pensia2020_first_width`,
the inverse of :func:`slth.bounds.pensia2020_units`; a note on the panel when
that width lies beyond the panel's range). Each fit's legend entry says which
widths it uses (Malach's fit also uses the large widths of the bottom panel);
in quick mode the fits are labelled quick (few targets, unreliable).

Bottom panel, the price: source weights against the achieved error (same
bands and lines, all widths computed), both log scales. Pensia's source grows like ``log(1/eps)``,
Malach's like ``1/eps``: the logarithmic against the polynomial
over-parameterisation. Theory there: Theorem 1's source size against the accuracy
it guarantees (dash-dotted), and the Theorem 2 lower bound
``d^2 log2(1/(2 eps)) - 1`` (:func:`slth.bounds.pensia2020_lower_bound`, dashed)
for d = the target's output width 2: any source whose subnetworks approximate
every d x d linear map needs that many weights.

Outputs in ``out_dir``: ``mlp_error_width.csv`` (one row per construction and
width), ``mlp_error_width_fit.csv`` (fit parameters), ``mlp_error_width_theory.csv``
(the theory curves drawn), ``mlp_error_width.png``
and ``.pdf``; resumable rows in ``runs/mlp_error_width[_quick].jsonl``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.ticker
import numpy as np

from slth import MLP
from slth.bounds import PENSIA2020_C, pensia2020_lower_bound
from slth.constructions import (
    bounded_target,
    malach2020,
    nested_source,
    pensia2020,
    source_widths,
)
from slth.evaluate import approximation_error
from slth.plot import pensia2020_eps_at_width, pensia2020_first_width
from slth.sweeps import run_sweep

from ._style import new_figure, save_figure, style, write_csv

__all__ = ["CSV_COLUMNS", "FIT_COLUMNS", "NAME", "THEORY_COLUMNS", "compute", "fit_exponential",
           "fit_power", "main", "plot", "theory"]

NAME = "mlp_error_width"
#: Target widths.
ARCH: tuple[int, ...] = (4, 8, 2)
CONSTRUCTIONS: tuple[str, ...] = ("pensia2020", "malach2020")
LABELS: dict[str, str] = {"pensia2020": "Pensia et al.: subset sums",
                          "malach2020": "Malach et al.: single pair"}
SHORT: dict[str, str] = {"pensia2020": "Pensia et al.", "malach2020": "Malach et al."}
COLORS: dict[str, str] = {"pensia2020": "C0", "malach2020": "C3"}
MARKERS: dict[str, str] = {"pensia2020": "o", "malach2020": "s"}
#: Widths below these are left out of the fits: with few candidates the sums cannot
#: reach the larger weights at all, and the 2^-n law (random subset sum) is asymptotic.
FIT_MIN_N: dict[str, int] = {"pensia2020": 12, "malach2020": 4}
#: Units per part of the top panel (both constructions) and the extra Malach widths of
#: the bottom panel.
QUICK: dict[str, Any] = {
    "targets": 3,
    "units": {"pensia2020": [1, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24],
              "malach2020": [1, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 64, 256, 1024]},
    "eval": {"n_samples": 256, "adversarial_steps": 15, "restarts": 3},
}
FULL: dict[str, Any] = {
    "targets": 16,
    "units": {"pensia2020": list(range(1, 33)),
              "malach2020": [*range(1, 33), 45, 64, 91, 128, 181, 256, 362, 512, 724, 1024,
                             1448, 2048, 2896, 4096]},
    # Malach at 4096: sources of about 5M weights; slth.evaluate keeps only the used units
    "eval": {"n_samples": 512, "adversarial_steps": 50, "restarts": 8},
}

CSV_COLUMNS = (
    "construction",
    "units",
    "targets",
    "n_source_params",
    "n_kept",
    "certified_median",
    "certified_q25",
    "certified_q75",
    "adversarial_median",
    "adversarial_q25",
    "adversarial_q75",
    "sampled_median",
    "mode",
)
FIT_COLUMNS = ("construction", "law", "a", "b", "units_min", "units_max", "rms_log2_residual",
               "mode")
#: Theory curves: ``curve`` is "theorem1" (Pensia et al. Thm 1: accuracy ``eps`` it
#: guarantees with ``units`` per part, with a source of ``n_params`` weights) or
#: "theorem2" (Thm 2: at least ``n_params`` weights for accuracy ``eps``, dimension ``d``).
THEORY_COLUMNS = ("curve", "units", "eps", "n_params", "d", "delta", "C", "mode")
#: Failure probability of the Theorem 1 curve.
DELTA = 0.1
#: Widths past Theorem 1's first width drawn in the bottom panel.
_THEORY_SPAN = 70


def _task(config: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    arch = config["arch"]
    target = bounded_target(arch, rng=np.random.default_rng(config["target_seed"]))
    units = config["units"]
    L = len(arch) - 1
    big_units = [max(units)] * L
    if config["construction"] == "pensia2020":
        build, key, widths, nest = (pensia2020.construct, "n", source_widths, nested_source)
    else:  # Malach et al.'s layout: every target weight owns its block of hidden units
        build, key, widths, nest = (malach2020.construct, "k", malach2020.source_widths,
                                    malach2020.nested_source)
    big = MLP.random(widths(target, big_units), rng=rng)
    rows = []
    for u in units:
        ticket = build(target, source=nest(big, target, big_units, [u] * L), **{key: u})
        rep = approximation_error(target, ticket, rng=rng, **config["eval"])
        rows.append({"units": u, "certified": rep.certified, "adversarial": rep.adversarial,
                     "sampled": rep.sampled_max, "n_source_params": ticket.n_source_params,
                     "n_kept": ticket.n_kept})
    return {"rows": rows}


def compute(
    *,
    targets: int,
    units: dict[str, Sequence[int]],
    eval_kw: dict[str, int],
    arch: Sequence[int] = ARCH,
    rng: int = 0,
    store: str | Path | None = None,
    progress: bool | None = None,
) -> list[dict[str, Any]]:
    """Medians and quartiles over targets of each construction's errors at each width.

    Parameters
    ----------
    targets : int
        Number of random targets (the same for both constructions).
    units : dict of str to sequence of int
        Widths (units per part) per construction.
    eval_kw : dict
        Keyword arguments of :func:`slth.evaluate.approximation_error`.
    arch : sequence of int
        Target widths.
    rng : int, default 0
        Base seed: target t is drawn from ``default_rng([rng, t])``, the sources
        from the sweep rows' generators.
    store : path-like, optional
        Resumable results file.
    progress : bool or None
        Progress bar on stderr.

    Returns
    -------
    list of dict
        Rows with the keys of :data:`CSV_COLUMNS`.
    """
    configs = [
        {"figure": NAME, "construction": c, "arch": [int(w) for w in arch],
         "target_seed": [int(rng), t], "units": [int(u) for u in units[c]], "eval": eval_kw}
        for c in units
        for t in range(int(targets))
    ]
    res = run_sweep(_task, configs, path=store, rng=rng, progress=progress, desc=NAME)
    by: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for cfg, out in zip(configs, res.results):
        for r in out["rows"]:
            by.setdefault((cfg["construction"], r["units"]), []).append(r)
    rows = []
    for (c, u), rs in by.items():
        q = {k: np.quantile([r[k] for r in rs], [0.25, 0.5, 0.75])
             for k in ("certified", "adversarial", "sampled")}
        rows.append({
            "construction": c, "units": u, "targets": len(rs),
            "n_source_params": rs[0]["n_source_params"],
            "n_kept": float(np.median([r["n_kept"] for r in rs])),
            "certified_median": float(q["certified"][1]),
            "certified_q25": float(q["certified"][0]),
            "certified_q75": float(q["certified"][2]),
            "adversarial_median": float(q["adversarial"][1]),
            "adversarial_q25": float(q["adversarial"][0]),
            "adversarial_q75": float(q["adversarial"][2]),
            "sampled_median": float(q["sampled"][1]),
        })
    return rows


def _fit(x: np.ndarray, y: np.ndarray, design: np.ndarray) -> tuple[float, float, float]:
    (c0, c1), *_ = np.linalg.lstsq(design, np.log2(y), rcond=None)
    resid = np.log2(y) - design @ np.array([c0, c1])
    return float(2.0 ** c0), float(c1), float(np.sqrt(np.mean(resid ** 2)))


def fit_exponential(units: np.ndarray, errors: np.ndarray, *, n_min: int = 12
                    ) -> dict[str, Any]:
    """Least-squares fit of ``log2(error) = log2(a) - b n`` for ``n >= n_min``."""
    n, e = np.asarray(units, float), np.asarray(errors, float)
    keep = (n >= n_min) & (e > 0)
    a, mb, rms = _fit(n[keep], e[keep], np.column_stack([np.ones(keep.sum()), n[keep]]))
    return {"law": "a 2^(-b n)", "a": a, "b": -mb, "units_min": int(n[keep].min()),
            "units_max": int(n[keep].max()), "rms_log2_residual": rms}


def fit_power(units: np.ndarray, errors: np.ndarray, *, n_min: int = 4
              ) -> dict[str, Any]:
    """Least-squares fit of ``log2(error) = log2(a) - b log2(n)`` for ``n >= n_min``."""
    n, e = np.asarray(units, float), np.asarray(errors, float)
    keep = (n >= n_min) & (e > 0)
    a, mb, rms = _fit(n[keep], e[keep],
                      np.column_stack([np.ones(keep.sum()), np.log2(n[keep])]))
    return {"law": "a n^(-b)", "a": a, "b": -mb, "units_min": int(n[keep].min()),
            "units_max": int(n[keep].max()), "rms_log2_residual": rms}


def theory(rows: list[dict[str, Any]], *, arch: Sequence[int] = ARCH,
           delta: float = DELTA) -> list[dict[str, Any]]:
    """The theorems' curves for targets of widths ``arch`` (rows of :data:`THEORY_COLUMNS`).

    Theorem 1 (Pensia et al. 2020): the accuracy guaranteed with n units per part,
    for n from :func:`slth.plot.pensia2020_first_width` on (nothing below delta
    before it), with the source size of the construction at n (linear in n, from
    the measured Pensia rows). Theorem 2: the parameter lower bound for d x d
    linear maps, d = the output width, at the accuracies of Theorem 1's curve.
    """
    target = bounded_target(arch, rng=np.random.default_rng(0))  # only its widths matter
    first = pensia2020_first_width(target, delta=delta)
    pen = sorted((r for r in rows if r["construction"] == "pensia2020"), key=lambda r: r["units"])
    if len(pen) >= 2:
        slope, icpt = np.polyfit([r["units"] for r in pen], [r["n_source_params"] for r in pen], 1)
    elif pen:
        slope, icpt = pen[0]["n_source_params"] / pen[0]["units"], 0.0
    else:
        slope = icpt = float("nan")
    d = int(arch[-1])
    out = []
    for n in range(first, first + _THEORY_SPAN + 1):
        eps = pensia2020_eps_at_width(target, n, delta=delta)
        out.append({"curve": "theorem1", "units": n, "eps": eps,
                    "n_params": float(round(slope * n + icpt)), "d": "", "delta": delta,
                    "C": PENSIA2020_C})
        if eps < 0.5:
            out.append({"curve": "theorem2", "units": "", "eps": eps,
                        "n_params": float(pensia2020_lower_bound(d, eps)), "d": d,
                        "delta": "", "C": ""})
    return out


def _num(a: float) -> str:
    """``a`` for mathtext: 2 significant digits, powers of ten written out."""
    if a == 0 or 0.01 <= abs(a) < 1000:
        return f"{a:.3g}"
    e = int(np.floor(np.log10(abs(a))))
    return f"{a / 10.0 ** e:.2g}\\cdot 10^{{{e}}}"


def plot(rows: list[dict[str, Any]], fits: dict[str, dict[str, Any]], *,
         top_max: int, theory_rows: list[dict[str, Any]] | None = None,
         quick: bool = False) -> Any:
    """Two stacked panels: error against width, source weights against error."""
    th1 = [t for t in theory_rows or [] if t["curve"] == "theorem1"]
    th2 = [t for t in theory_rows or [] if t["curve"] == "theorem2"]
    with style():
        fig, (ax, ax2) = new_figure(2, height=5.2, sharex=False, height_ratios=(1.35, 1.0))
        handles: list[Any] = []
        labels: list[str] = []
        for c in dict.fromkeys(r["construction"] for r in rows):
            rs = sorted((r for r in rows if r["construction"] == c), key=lambda r: r["units"])
            col, mk = COLORS.get(c, "C2"), MARKERS.get(c, "^")
            top = [r for r in rs if r["units"] <= top_max]
            n = np.array([r["units"] for r in top], float)
            band = ax.fill_between(n, [r["adversarial_median"] for r in top],
                                   [r["certified_median"] for r in top], color=col,
                                   alpha=0.22, lw=0)
            (line,) = ax.plot(n, [r["sampled_median"] for r in top], mk + "-", color=col,
                              mfc="none", mew=0.7, lw=0.8)
            f = fits[c]
            grid = np.linspace(max(f["units_min"], 1), top_max, 200)
            if f["law"].startswith("a 2"):
                law = f["a"] * np.exp2(-f["b"] * grid)
                text = f"${_num(f['a'])}\\,2^{{-{f['b']:.2f}\\,n}}$"
            else:
                law = f["a"] * grid ** (-f["b"])
                text = f"${_num(f['a'])}\\,n^{{-{f['b']:.2f}}}$"
            text = (f"{'quick fit (unreliable)' if quick else 'fit'} {text}, "
                    f"$n$={f['units_min']}..{f['units_max']}")
            (fit_line,) = ax.plot(grid, law, ":", color=col, lw=1.2)
            handles += [(band, line), fit_line]
            labels += [LABELS.get(c, c), text]
            p = np.array([r["n_source_params"] for r in rs], float)
            ax2.fill_between(p, [r["adversarial_median"] for r in rs],
                             [r["certified_median"] for r in rs], color=col, alpha=0.22, lw=0)
            y = np.array([r["sampled_median"] for r in rs])
            ax2.plot(p, y, mk + "-", color=col, mfc="none", mew=0.7, lw=0.8)
            # label each curve at its last point (no legend box to collide with the data)
            dx, dy, va = (-6, 0, "center") if c == "pensia2020" else (0, -7, "top")
            ax2.annotate(SHORT.get(c, c), (p[-1], y[-1]), xytext=(dx, dy),
                         textcoords="offset points", ha="right", va=va, color=col,
                         fontsize=6.8)
        if th1:
            first = int(th1[0]["units"])
            delta = th1[0]["delta"]
            thm_label = (f"Thm 1 guarantee ($\\delta$={delta:g}, $C$={th1[0]['C']:g}), "
                         f"$n\\geq{first}$")
            tn = np.array([t["units"] for t in th1 if t["units"] <= top_max], float)
            if tn.size:
                te = [t["eps"] for t in th1 if t["units"] <= top_max]
                (thm_line,) = ax.plot(tn, te, "-.", color="k", lw=1.4, zorder=5)
                ax.axvline(first, color="k", ls="-.", lw=0.5, alpha=0.6)
                ax.annotate("Thm 1", (tn[0], te[0]), xytext=(-3, 6), textcoords="offset points",
                            ha="right", va="bottom", fontsize=6.2)
                handles.append(thm_line)
                labels.append(thm_label)
            else:  # Theorem 1 says nothing below delta within the panel's widths
                ax.text(0.98, 0.97, f"Thm 1 ($\\delta$={delta:g}) guarantees $\\varepsilon<\\delta$"
                        f"\nonly from $n$={first} (beyond this panel)", transform=ax.transAxes,
                        ha="right", va="top", fontsize=6.2)
            (t1,) = ax2.plot([t["n_params"] for t in th1], [t["eps"] for t in th1], "-.",
                             color="k", lw=1.0)
            h2, l2 = [t1], [f"Thm 1: source size for guaranteed $\\varepsilon$ ($n\\geq{first}$)"]
            if th2:
                (t2,) = ax2.plot([t["n_params"] for t in th2], [t["eps"] for t in th2], "--",
                                 color="0.35", lw=1.0)
                h2.append(t2)
                l2.append(f"Thm 2 lower bound, any source ($d$={th2[0]['d']}: "
                          "$d^2\\log_2\\frac{1}{2\\varepsilon}-1$)")
            fig.legend(h2, l2, loc="outside lower center", fontsize=6.2, handlelength=1.8,
                       labelspacing=0.2)
        ax.set_yscale("log")
        ax.set_xlim(0.5, top_max + 0.5)
        ax.set_xlabel("candidates per weight and sign part $n$")
        ax.set_ylabel("sup error on the unit ball\n$\\sup_{\\|x\\|_2\\leq 1}\\|f(x)-g(x)\\|_2$")
        ax.grid(True, which="major")
        ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.legend(handles, labels, loc="lower left", fontsize=6.2, labelspacing=0.25,
                  title="medians over targets:\nband: lower to certified bound\n"
                        "line: sampled error",
                  title_fontsize=6.0, alignment="left")
        ax.set_title("(a) error against width", loc="left")
        ax2.set_xscale("log")
        ax2.set_yscale("log")
        ax2.set_xlabel("weights of the source network")
        ax2.set_ylabel("sup error on the unit ball")
        ax2.grid(True, which="major")
        ax2.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax2.set_title("(b) error against source size (all widths)", loc="left")
    return fig


def main(
    out_dir: str | Path,
    *,
    quick: bool = False,
    rng: int = 0,
    progress: bool | None = None,
    targets: int | None = None,
    units: dict[str, Sequence[int]] | None = None,
) -> dict[str, Path]:
    """Compute, save the data (CSV), plot (PNG, PDF).

    Parameters
    ----------
    out_dir : path-like
        Output folder (created).
    quick : bool, default False
        :data:`QUICK` (3 targets, widths up to 24, Malach to 1024; under a
        minute on 2 cores) instead of :data:`FULL`.
    rng : int, default 0
        Base seed.
    progress : bool or None
        Progress bar on stderr.
    targets, units : optional
        Override the mode's number of targets and widths (tests).

    Returns
    -------
    dict of str to pathlib.Path
        ``csv``, ``fit_csv``, ``theory_csv``, ``png``, ``pdf``, ``runs``.
    """
    out = Path(out_dir)
    mode = QUICK if quick else FULL
    widths = units if units is not None else mode["units"]
    store = out / "runs" / f"{NAME}{'_quick' if quick else ''}.jsonl"
    rows = compute(targets=int(targets) if targets is not None else mode["targets"],
                   units=widths, eval_kw=mode["eval"], rng=rng, store=store,
                   progress=progress)
    rows.sort(key=lambda r: (r["construction"], r["units"]))
    csv_path = write_csv(out / f"{NAME}.csv", CSV_COLUMNS, rows, quick=quick)
    top_max = max(widths["pensia2020"]) if "pensia2020" in widths else 32
    fits = {}
    for c in dict.fromkeys(r["construction"] for r in rows):
        rs = [r for r in rows if r["construction"] == c]
        n = np.array([r["units"] for r in rs])
        e = np.array([r["sampled_median"] for r in rs])
        fit = fit_exponential if c == "pensia2020" else fit_power
        fits[c] = fit(n, e, n_min=FIT_MIN_N.get(c, 4))
    fit_path = write_csv(out / f"{NAME}_fit.csv", FIT_COLUMNS,
                         [{"construction": c, **f} for c, f in fits.items()], quick=quick)
    th = theory(rows)
    theory_path = write_csv(out / f"{NAME}_theory.csv", THEORY_COLUMNS, th, quick=quick)
    png, pdf = save_figure(plot(rows, fits, top_max=top_max, theory_rows=th, quick=quick),
                           out, NAME, quick=quick)
    return {"csv": csv_path, "fit_csv": fit_path, "theory_csv": theory_path, "png": png,
            "pdf": pdf, "runs": store}
