"""Source size for the same certified error: Malach et al. (faithful) against Pensia et al.

``python -m benchmarks.malach_vs_pensia [--quick] [--out FILE]``

For the same random bias-free targets (every layer of spectral norm 1) and
each accuracy eps, the smallest width (on a grid) at which each construction's
ticket has certified sup error (:func:`slth.evaluate.certified_bound`) at most
eps, and the source parameters there:

* ``pensia2020``: subset sums, every instance solved to its optimum, ``n``
  candidates per weight and sign part (nested sources, n = 1..32);
* ``malach2020``: Malach et al.'s layout (every target weight owns a block of
  ``2k`` hidden units) and single-pair selection, ``k`` on a 1.15x grid (nested);
* ``single_pair``: the same selection on Pensia's shared layout.

Each construction prunes one random source per target, cut to every width
(:func:`slth.constructions.nested_source`, :func:`slth.constructions.malach2020.nested_source`),
so the scan is over one fixed random network. Medians over targets; the
ratios are per target, then the median. Not a timing.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from slth import MLP
from slth.constructions import (
    bounded_target,
    malach2020,
    nested_source,
    pensia2020,
    single_pair,
    source_widths,
)
from slth.evaluate import certified_bound

GRID_K: list[int] = sorted({int(np.ceil(4 * 1.15 ** i)) for i in range(80)})


def _smallest(target: MLP, eps: float, widths_of: Callable[[MLP, list[int]], tuple[int, ...]],
              nest: Callable[..., MLP], build: Callable[..., Any], key: str, grid: list[int],
              rng: int) -> tuple[int | None, int | None]:
    L = target.depth
    big_units = [grid[-1]] * L
    big = MLP.random(widths_of(target, big_units), rng=rng)
    # bisection on the grid (the certified error falls with the width: nested sources)
    lo, hi = 0, len(grid) - 1

    def ok(i: int) -> tuple[bool, int]:
        ticket = build(target, source=nest(big, target, big_units, [grid[i]] * L),
                       **{key: grid[i]})
        return certified_bound(target, ticket) <= eps, ticket.n_source_params

    good, params = ok(hi)
    if not good:
        return None, None
    while lo < hi:
        mid = (lo + hi) // 2
        g, p = ok(mid)
        if g:
            hi, params = mid, p
        else:
            lo = mid + 1
    return grid[hi], params


def measure(widths: tuple[int, ...], eps: float, targets: int) -> dict[str, list[Any]]:
    """Per target and construction: smallest width and its source parameters."""
    out: dict[str, list[Any]] = {c: [] for c in ("pensia2020", "malach2020", "single_pair")}
    kmax = 2048 if eps >= 0.1 else 8192
    for t in range(targets):
        target = bounded_target(widths, rng=t)
        out["pensia2020"].append(_smallest(
            target, eps, source_widths, nested_source, pensia2020.construct, "n",
            list(range(1, 33)), 10_000 + t))
        out["malach2020"].append(_smallest(
            target, eps, malach2020.source_widths, malach2020.nested_source,
            malach2020.construct, "k", [k for k in GRID_K if k <= kmax], 20_000 + t))
        out["single_pair"].append(_smallest(
            target, eps, source_widths, nested_source, single_pair.construct, "k",
            [k for k in GRID_K if k <= kmax], 30_000 + t))
    return out


def table(cases: list[tuple[tuple[int, ...], float]], targets: int) -> str:
    """The Markdown table."""
    lines = [
        "| target | eps | targets | Pensia n / params | Malach k / params | single pair k / params "
        "| Malach / Pensia params | single pair / Pensia params |",
        "|---|---:|---:|---|---|---|---:|---:|",
    ]
    for widths, eps in cases:
        m = measure(widths, eps, targets)

        def med(c: str, i: int, m: dict[str, list[Any]] = m) -> str:
            vals = [r[i] for r in m[c] if r[i] is not None]
            miss = len(m[c]) - len(vals)
            s = f"{np.median(vals):,.0f}" if vals else "-"
            return s + (f" ({miss} above the grid)" if miss else "")

        def ratio(c: str, m: dict[str, list[Any]] = m) -> str:
            r = [a[1] / b[1] for a, b in zip(m[c], m["pensia2020"])
                 if a[1] is not None and b[1] is not None]
            return f"{np.median(r):,.0f}" if r else "-"

        lines.append(
            f"| {'-'.join(map(str, widths))} | {eps:g} | {targets} | "
            f"{med('pensia2020', 0)} / {med('pensia2020', 1)} | "
            f"{med('malach2020', 0)} / {med('malach2020', 1)} | "
            f"{med('single_pair', 0)} / {med('single_pair', 1)} | "
            f"{ratio('malach2020')} | {ratio('single_pair')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the table (and write it to ``--out`` when given)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.malach_vs_pensia",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 targets, one case")
    parser.add_argument("--out", type=Path, help="write the Markdown table here")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    if args.quick:
        cases, targets = [((3, 4, 2), 0.2)], 2
    else:
        cases = [((3, 4, 2), 0.2), ((3, 4, 2), 0.1), ((3, 4, 2), 0.05), ((4, 8, 2), 0.1)]
        targets = 10
    text = table(cases, targets)
    text += (f"\n\nSmallest width on the grid whose ticket has certified sup error <= eps on "
             f"the unit ball (bisection over nested sources); params = source weights there. "
             f"Pensia: exact subset sums, n <= 32; Malach and single pair: closest single "
             f"pair, k on a 1.15x grid. {time.perf_counter() - t0:.0f} s.\n")
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("# Malach et al. against Pensia et al.: source size for the same "
                            "certified error\n\n`python -m benchmarks.malach_vs_pensia`\n\n"
                            + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
