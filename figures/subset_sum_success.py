"""Figure: probability that n random values cover [-1, 1] within eps, against n.

Lueker (1998): with n >= C ln(2/eps) i.i.d. values (density with a uniform
component), every z in [-1, 1] is within eps of a subset sum with probability
>= 1 - eps. For eps in {1e-1, 1e-2, 1e-3} and two laws (U[-1, 1]; products
U[0, 1] U[-1, 1], Pensia et al. 2020 Cor. 1) the figure shows the measured
P(coverage <= eps) for every n up to ``n_max`` with Clopper–Pearson 95% error
bars (trials coupled across n: each trial's sample at n is a prefix of its
sample at n + 1; the eps series are shifted sideways by a fraction of a unit so
that none hides another), the claimed level 1 - eps (dotted), the theorem's
width n = C ln(2/eps) with C = :data:`slth.bounds.LUEKER_C` (dash-dotted,
:func:`slth.bounds.lueker_n`) and the empirical threshold n* = C(eps) ln(2/eps)
(dashed, the smallest n whose measured rate reaches 1 - eps; definition and
bracket in :mod:`proofs_check.lueker1998`). The y axis is logit-scaled so that
0.9, 0.99 and 0.999 are equally spaced; its floor lies below the smallest
positive rate. A rate of exactly 1 (every trial covered) is drawn as a filled
marker on the top line "1 (all trials)" with its 95% bar reaching down to the
Clopper–Pearson lower end; values of n where no trial covers are left out.

The legend's constants and the table :func:`table` prints (and ``main`` prints)
are formatted from the same threshold rows by :func:`legend_entry`.

Outputs in ``out_dir``: ``subset_sum_success.csv`` (one row per law, eps, n),
``subset_sum_success_thresholds.csv`` (n* and C with brackets),
``subset_sum_success.png`` and ``.pdf``; resumable rows in ``runs/``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.lines
import matplotlib.ticker
import numpy as np

from slth.bounds import LUEKER_C, lueker_n
from slth.stats import clopper_pearson, threshold_bracket
from slth.trials import first_covering_trials

from ._style import LABELS, QUICK_LABEL, new_figure, save_figure, style, write_csv

__all__ = [
    "CSV_COLUMNS",
    "NAME",
    "THRESHOLD_COLUMNS",
    "compute",
    "legend_entry",
    "main",
    "plot",
    "table",
]

NAME = "subset_sum_success"
DISTRIBUTIONS: tuple[str, ...] = ("uniform", "product")
EPS: tuple[float, ...] = (1e-1, 1e-2, 1e-3)
QUICK: dict[str, Any] = {"n_max": 28, "trials": {1e-1: 200, 1e-2: 400, 1e-3: 400}}
FULL: dict[str, Any] = {"n_max": 36, "trials": {1e-1: 2000, 1e-2: 5000, 1e-3: 10000}}

CSV_COLUMNS = (
    "distribution",
    "eps",
    "n",
    "trials",
    "successes",
    "rate",
    "ci_low",
    "ci_high",
    "mode",
)
THRESHOLD_COLUMNS = (
    "distribution",
    "eps",
    "log_factor",
    "trials",
    "n_max",
    "n_hat",
    "n_low",
    "n_high",
    "C_hat",
    "C_low",
    "C_high",
    "n_theorem",
    "C_theorem",
    "mode",
)


def compute(
    *,
    n_max: int,
    trials: Mapping[float, int],
    distributions: Sequence[str] = DISTRIBUTIONS,
    rng: int = 0,
    store: str | Path | None = None,
    progress: bool | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Success rate per (law, eps, n) and the empirical thresholds.

    Parameters
    ----------
    n_max : int
        Largest n (<= COVERS_MAX_N = 40).
    trials : mapping float -> int
        Trials for each eps (its keys are the eps values drawn).
    distributions : sequence of str
        Sample laws.
    rng : int, default 0
        Base seed.
    store : path-like, optional
        Resumable results file.
    progress : bool or None
        Progress bars on stderr (None: when stderr is a terminal).

    Returns
    -------
    rates : list of dict
        Rows with the keys of :data:`CSV_COLUMNS`.
    thresholds : list of dict
        Rows with the keys of :data:`THRESHOLD_COLUMNS` (None where censored);
        ``n_theorem`` is Lueker's width ``ceil(C ln(2/eps))`` with
        ``C_theorem`` = :data:`slth.bounds.LUEKER_C`.
    """
    rates, thresholds = [], []
    for dist in distributions:
        for eps, n_trials in trials.items():
            first = first_covering_trials(
                dist,
                eps,
                trials=int(n_trials),
                n_max=n_max,
                rng=rng,
                store=store,
                progress=progress,
            )
            succ = {n: int(np.count_nonzero(first <= n)) for n in range(1, n_max + 1)}
            for n, k in succ.items():
                lo, hi = clopper_pearson(k, first.size)
                rates.append(
                    {
                        "distribution": dist,
                        "eps": eps,
                        "n": n,
                        "trials": int(first.size),
                        "successes": k,
                        "rate": k / first.size,
                        "ci_low": lo,
                        "ci_high": hi,
                    }
                )
            thr = threshold_bracket(succ, int(first.size), 1.0 - eps)
            lf = math.log(2.0 / eps)
            thresholds.append(
                {
                    "distribution": dist,
                    "eps": eps,
                    "log_factor": lf,
                    "trials": int(first.size),
                    "n_max": n_max,
                    "n_hat": thr.n_hat,
                    "n_low": thr.n_low,
                    "n_high": thr.n_high,
                    "C_hat": None if thr.n_hat is None else thr.n_hat / lf,
                    "C_low": thr.n_low / lf,
                    "C_high": None if thr.n_high is None else thr.n_high / lf,
                    "n_theorem": int(lueker_n(eps, C=LUEKER_C)),
                    "C_theorem": LUEKER_C,
                }
            )
    return rates, thresholds


def _fmt_c(t: Mapping[str, Any]) -> str:
    """The measured constant "C [95% bracket]" (">= x": the bracket starts above the scan)."""
    hi = "?" if t["C_high"] is None else f"{t['C_high']:.2f}"
    if t["C_hat"] is None:
        scan = t["n_max"] / t["log_factor"]
        if t["C_low"] > scan:
            return f"$\\geq${t['C_low']:.2f}"
        return f"$>${scan:.2f} [{t['C_low']:.2f}, ?]"
    return f"{t['C_hat']:.2f} [{t['C_low']:.2f}, {hi}]"


def _fmt_n(t: Mapping[str, Any]) -> str:
    return f"$>${t['n_max']}" if t["n_hat"] is None else f"{t['n_hat']}"


def legend_entry(t: Mapping[str, Any]) -> str:
    """Legend text of one threshold row: eps, empirical n* and C, the theorem's n."""
    return f"{t['eps']:g}: {_fmt_n(t)}, {_fmt_c(t)}; {t['n_theorem']}"


def table(thresholds: Sequence[Mapping[str, Any]], *, quick: bool = False) -> str:
    """Markdown table of the thresholds, formatted as the legend (:func:`legend_entry`)."""
    head = f"{NAME}{' (' + QUICK_LABEL + ')' if quick else ''}: empirical threshold n* and C"
    lines = [
        head,
        "| law | eps | trials | n* | C [95% CI] | theorem n = ceil(C ln(2/eps)) | theorem C |",
        "|---|---|---:|---:|---|---:|---:|",
    ]
    for t in thresholds:
        c = _fmt_c(t).replace("$\\geq$", ">= ").replace("$>$", "> ")
        n_star = _fmt_n(t).replace("$>$", "> ")
        lines.append(
            f"| {t['distribution']} | {t['eps']:g} | {t['trials']} | {n_star} "
            f"| {c} | {t['n_theorem']} | {t['C_theorem']:g} |"
        )
    return "\n".join(lines)


def plot(rates: list[dict[str, Any]], thresholds: list[dict[str, Any]]) -> Any:
    """One panel per law (stacked); returns the figure."""
    dists = list(dict.fromkeys(r["distribution"] for r in rates))
    eps_list = list(dict.fromkeys(r["eps"] for r in rates))
    colors = dict(zip(eps_list, ["C0", "C1", "C2", "C4", "C5"]))
    markers = dict(zip(eps_list, ["o", "s", "D", "^", "v"]))
    k = len(eps_list)
    shift = {e: 0.22 * (i - (k - 1) / 2) for i, e in enumerate(eps_list)}
    # the axis: the floor below the smallest positive rate (and its CI), the top line
    # "1" above every rate < 1 (a rate < 1 is at most 1 - 1/trials)
    positive = [r["rate"] for r in rates if r["rate"] > 0]
    y_lo = min(0.01, 0.5 * min(positive, default=0.01))
    max_trials = max(r["trials"] for r in rates)
    y_one = 1.0 - 0.25 / max_trials
    y_hi = 1.0 - 0.1 / max_trials
    ticks = [t for t in (1e-4, 1e-3, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 0.99999)
             if y_lo <= t < 1.0 - 0.6 / max_trials]
    n_top = max(r["n"] for r in rates)
    with style():
        fig, axes = new_figure(len(dists), height=2.3 * len(dists) + 0.5)
        axes = np.atleast_1d(axes)
        for ax, dist in zip(axes, dists):
            beyond = 0
            for eps in eps_list:
                rs = [r for r in rates if r["distribution"] == dist and r["eps"] == eps]
                t = next(x for x in thresholds if x["distribution"] == dist and x["eps"] == eps)
                c, m = colors[eps], markers[eps]
                n = np.array([r["n"] for r in rs], dtype=float) + shift[eps]
                rate = np.array([r["rate"] for r in rs])
                lo = np.array([r["ci_low"] for r in rs])
                hi = np.array([r["ci_high"] for r in rs])
                inner = (rate > 0) & (rate < 1)
                ax.errorbar(
                    n[inner],
                    rate[inner],
                    yerr=[rate[inner] - lo[inner], np.minimum(hi[inner], y_one) - rate[inner]],
                    fmt=m,
                    color=c,
                    mfc="none",
                    mew=0.7,
                    ms=2.8,
                    elinewidth=0.6,
                    capsize=0,
                    label=legend_entry(t),
                )
                ones = rate == 1
                if ones.any():
                    ax.errorbar(
                        n[ones],
                        np.full(int(ones.sum()), y_one),
                        yerr=[y_one - np.maximum(lo[ones], y_lo), np.zeros(int(ones.sum()))],
                        fmt=m,
                        color=c,
                        mfc=c,
                        mew=0.7,
                        ms=2.8,
                        elinewidth=0.6,
                        capsize=0,
                    )
                ax.axhline(1.0 - eps, color=c, ls=":", lw=0.8)
                if t["n_hat"] is not None:
                    ax.axvline(t["n_hat"], color=c, ls="--", lw=0.8)
                if t["n_theorem"] <= n_top + 0.5:
                    ax.axvline(t["n_theorem"], color=c, ls="-.", lw=0.8)
                else:  # the theorem's width lies beyond the scan: say so at the edge
                    beyond += 1
                    ax.text(0.99, 0.02 + 0.07 * (beyond - 1),
                            f"thm $n$={t['n_theorem']} $\\rightarrow$", transform=ax.transAxes,
                            ha="right", va="bottom", color=c, fontsize=6)
            ax.axhline(y_one, color="0.6", lw=0.4)
            ax.set_yscale("logit")
            ax.set_ylim(y_lo, y_hi)
            ax.set_yticks([*ticks, y_one])
            ax.set_yticklabels([f"{x:g}" for x in ticks] + ["1 (all)"])
            ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            ax.set_ylabel("$P(\\sup_{|z|\\leq 1}\\min_S|z-\\sum_S X_i|\\leq\\varepsilon)$")
            ax.set_xlim(0.5, n_top + 0.5)
            ax.grid(True, which="major")
            # the legend stands above the panel (as its title): it never covers data
            ax.legend(
                loc="lower left",
                bbox_to_anchor=(0.0, 1.0),
                title=f"{LABELS.get(dist, dist)} samples\n$\\varepsilon$: empirical $n^*$, "
                "$C$ [95% CI]; theorem $n$",
                title_fontsize=6.8,
                fontsize=6.3,
                alignment="left",
                handletextpad=0.3,
                borderaxespad=0.1,
                borderpad=0.1,
                labelspacing=0.15,
                frameon=False,
            )
        axes[-1].set_xlabel("number of random values $n$")
        styles = [
            matplotlib.lines.Line2D([], [], color="0.3", ls=":", lw=0.8),
            matplotlib.lines.Line2D([], [], color="0.3", ls="-.", lw=0.8),
            matplotlib.lines.Line2D([], [], color="0.3", ls="--", lw=0.8),
            matplotlib.lines.Line2D([], [], color="0.3", ls="none", marker="o", mfc="none",
                                    ms=2.8, mew=0.7),
            matplotlib.lines.Line2D([], [], color="0.3", ls="none", marker="o", ms=2.8),
        ]
        fig.legend(
            styles,
            [
                "claimed $1-\\varepsilon$",
                f"theorem $n=\\lceil {LUEKER_C:g}\\ln(2/\\varepsilon)\\rceil$ (Lueker)",
                "empirical $n^*$",
                "measured rate, 95% CI",
                "all trials covered",
            ],
            loc="outside lower center",
            ncols=2,
            handlelength=1.6,
            columnspacing=0.8,
            handletextpad=0.3,
            labelspacing=0.2,
        )
    return fig


def main(
    out_dir: str | Path,
    *,
    quick: bool = False,
    rng: int = 0,
    progress: bool | None = None,
    n_max: int | None = None,
    trials: Mapping[float, int] | None = None,
) -> dict[str, Path]:
    """Compute, save the data (CSV), plot (PNG, PDF).

    Parameters
    ----------
    out_dir : path-like
        Output folder (created).
    quick : bool, default False
        n up to 28 and a few hundred trials per eps instead of n up to 36 and
        2000 / 5000 / 10000 trials; the figure and files are marked quick.
    rng : int, default 0
        Base seed.
    progress : bool or None
        Progress bars on stderr (None: when stderr is a terminal).
    n_max, trials : optional
        Override the mode's scan ceiling and trials per eps (tests).

    Returns
    -------
    dict of str to pathlib.Path
        ``csv``, ``thresholds_csv``, ``png``, ``pdf``, ``runs``.
    """
    out = Path(out_dir)
    mode = QUICK if quick else FULL
    store = out / "runs" / f"{NAME}{'_quick' if quick else ''}.jsonl"
    rates, thresholds = compute(
        n_max=int(n_max) if n_max is not None else mode["n_max"],
        trials=dict(trials) if trials is not None else mode["trials"],
        rng=rng,
        store=store,
        progress=progress,
    )
    csv_path = write_csv(out / f"{NAME}.csv", CSV_COLUMNS, rates, quick=quick)
    thr_path = write_csv(out / f"{NAME}_thresholds.csv", THRESHOLD_COLUMNS, thresholds,
                         quick=quick)
    print(table(thresholds, quick=quick))  # the legend's numbers, from the same rows
    png, pdf = save_figure(plot(rates, thresholds), out, NAME, quick=quick)
    return {"csv": csv_path, "thresholds_csv": thr_path, "png": png, "pdf": pdf, "runs": store}
