"""Figure: sup error of da Cunha et al.'s CNN tickets against n, with the fit and the laws.

A small random target CNN (Conv2d 1->2 3x3, ReLU, MaxPool2d 2, Flatten, Dense 8->1, no
biases, inputs 1x6x6) whose kernels meet the theorem's hypothesis (largest per-channel l1
norm 1) is pruned by :mod:`slth.constructions.dacunha2022` in exact mode at n = 5, 10, ...,
several seeded sources each (:func:`slth.plot.error_vs_width`, which also fits
``a 2^(-b n)`` to the adversarial medians). The figure draws, on the same log axes:

- the adversarial (lower bound) sup error on the unit ball, median and range over the
  sources, and the certified (upper bound) median;
- the fit;
- the subset-sum law ``0.4 sqrt(n) 2^-n`` (:func:`slth.subset_sum.law_reference`, the median
  optimal error of one instance of n uniform values), the scale one entry's error follows;
- the curve published by da Cunha, Natale and Viennot (ICLR 2022) for LeNet-5's conv part on
  MNIST (relative output error, decoded from their plots), for the trend only: another
  network, data set and metric (relative, not the sup over the ball).

Outputs in ``out_dir``: ``cnn_error_width.csv`` (one row per n and source),
``cnn_error_width.png`` and ``.pdf``; resumable rows in ``runs/cnn_error_width[_quick].jsonl``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slth.nets import Conv2d, Dense, Flatten, MaxPool2d, Network, ReLU
from slth.plot import error_vs_width
from slth.subset_sum import law_reference

from ._style import new_figure, save_figure, style, write_csv

__all__ = ["CSV_COLUMNS", "NAME", "PUBLISHED", "main", "target"]

NAME = "cnn_error_width"
QUICK: dict[str, Any] = {"ns": [5, 10, 15], "trials": 2}
FULL: dict[str, Any] = {"ns": [5, 10, 15, 20, 25, 30], "trials": 6}
#: da Cunha et al. (ICLR 2022), LeNet-5 conv part on MNIST, relative output error on the test
#: images, decoded from their plots (about +-2%; ../shared/THEORY.md).
PUBLISHED: dict[int, float] = {5: 0.52, 10: 0.13, 15: 5.3e-3, 20: 3.3e-4, 25: 2.8e-5,
                               30: 2.4e-6}
CSV_COLUMNS = ("n", "trial", "kept", "sampled_max", "adversarial", "certified", "law",
               "published", "mode")


def target(seed: int = 0) -> Network:
    """The figure's target: random kernels scaled to a largest per-channel l1 norm of 1."""
    net = Network.random([Conv2d(1, 2, 3, bias=False), ReLU(), MaxPool2d(2), Flatten(),
                          Dense(8, 1, bias=False)], rng=seed, input_shape=(1, 6, 6))
    params = {}
    for k, v in net.params.items():
        # a relative margin of 2^-40 below 1, so that rounding never breaks the hypothesis
        params[k] = v / (np.abs(v).reshape(v.shape[0], -1).sum(axis=1).max() * (1 + 2.0**-40))
    return net.with_params(params)


def main(
    out_dir: str | Path,
    *,
    quick: bool = False,
    rng: int = 0,
    progress: bool | None = None,
    ns: Sequence[int] | None = None,
    trials: int | None = None,
) -> dict[str, Path]:
    """Compute, save the data (CSV), plot (PNG, PDF).

    Parameters
    ----------
    out_dir : path-like
        Output folder (created).
    quick : bool, default False
        n = 5, 10, 15 with 2 sources each (seconds) instead of n = 5..30 with 6.
    rng : int, default 0
        Base seed (the target's and the sources').
    progress : bool or None
        Progress bar on stderr.
    ns, trials : optional
        Override the mode's values (tests).

    Returns
    -------
    dict of str to pathlib.Path
        ``csv``, ``png``, ``pdf``, ``runs``.
    """
    out = Path(out_dir)
    mode = QUICK if quick else FULL
    ws = list(ns) if ns is not None else mode["ns"]
    store = out / "runs" / f"{NAME}{'_quick' if quick else ''}.jsonl"
    curve = error_vs_width(target(rng), "dacunha2022", ws,
                           trials=int(trials) if trials is not None else mode["trials"],
                           rng=rng, samples=512, steps=25, store=store, progress=progress)
    rows = []
    for j, n in enumerate(curve.widths):
        for t in range(curve.adversarial.shape[0]):
            rows.append({"n": int(n), "trial": t, "kept": int(curve.kept[t, j]),
                         "sampled_max": float(curve.sampled[t, j]),
                         "adversarial": float(curve.adversarial[t, j]),
                         "certified": float(curve.certified[t, j]),
                         "law": float(law_reference(int(n))),
                         "published": PUBLISHED.get(int(n))})
    csv_path = write_csv(out / f"{NAME}.csv", CSV_COLUMNS, rows, quick=quick)
    w = curve.widths.astype(float)
    with style():
        fig, ax = new_figure(height=3.1)
        adv = curve.adversarial
        ax.fill_between(w, adv.min(axis=0), adv.max(axis=0), color="C0", alpha=0.2, lw=0)
        ax.plot(w, np.median(adv, axis=0), "o-", color="C0",
                label="adversarial (lower bound): median, range")
        ax.plot(w, np.median(curve.certified, axis=0), "s--", color="C1",
                label="certified (upper bound): median")
        if curve.fit is not None:
            a, b = curve.fit
            ax.plot(w, a * 2.0 ** (-b * w), ":", color="0.3",
                    label=f"fit {a:.3g}$\\cdot 2^{{-{b:.3g}\\,n}}$ (n = {ws[0]}..{ws[-1]})"
                          + (" quick, unreliable" if quick else ""))
        ax.plot(w, law_reference(w), "-", color="C2", lw=0.8,
                label=r"subset-sum law $0.4\sqrt{n}\,2^{-n}$")
        pub = sorted(PUBLISHED)
        ax.plot(pub, [PUBLISHED[n] for n in pub], "x", color="C3", ms=4,
                label="da Cunha et al. 2022: LeNet-5 conv, MNIST (relative)")
        ax.set_yscale("log")
        ax.set_xlabel("units per input channel and sign part, $n$")
        ax.set_ylabel(r"sup error, $\|x\|_2 \leq 1$ ($\ell_2$)")
        ax.grid(True, which="major")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1)
        png, pdf = save_figure(fig, out, NAME, quick=quick)
    return {"csv": csv_path, "png": png, "pdf": pdf, "runs": store}
