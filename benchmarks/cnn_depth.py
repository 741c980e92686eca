"""Depth 2l (da Cunha et al. 2022) against depth L+1 (Burkholz 2022) on the digits CNN.

Both constructions prune a U[-1, 1] source to the same target, the rescaled
LeNet-style CNN of :mod:`benchmarks.cnn_digits` (bias-free 3x3 convolutions
with padding 1, biased Dense layers, kernels of l1 norm <= 1 per output
channel), at the same accuracy ``eps``: each with ``eps=eps`` and nothing
else, so each takes its own width from ``eps`` (dacunha2022: Pensia et al.'s
``n`` per layer on the reshaped kernels, :func:`slth.bounds.pensia2020_units`;
burkholz2022: :func:`~slth.constructions.burkholz2022.theorem_rho`) and its own
per-instance tolerance (slth's choices, stated in the modules, not the
papers'), solved in eps mode, failures reported. The table: width, depth
(parametrised source layers: 2l against L+1), source parameters, kept
entries, instances missing their tolerance, the certified sup-error bound on
the unit ball (each construction's own certifier), and the build time (best
and median of ``--repeats``), with the CPU and the load average.

Run (from the repository root)::

    python -m benchmarks.cnn_depth             # eps = 0.1, 0.01 on the full target (minutes)
    python -m benchmarks.cnn_depth --quick     # eps = 0.1 on the small target, seconds
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np

from benchmarks.cnn_digits import train_target
from benchmarks.construct_mlp import cpu_description
from slth.constructions import burkholz2022, dacunha2022
from slth.nets.base import Network
from slth.nets.conv import Conv2d
from slth.nets.layers import Dense

__all__ = ["COLUMNS", "depth_rows", "depth_table", "main", "param_depth"]

#: Column names of :func:`depth_table`'s markdown table.
COLUMNS = ("eps", "construction", "width", "depth", "source params", "kept", "failed",
           "certified", "build best (s)", "build median (s)")

_BUILDERS = {
    "dacunha2022 (2l)": (dacunha2022, "n"),
    "burkholz2022 (L+1)": (burkholz2022, "rho"),
}


def param_depth(net: Any) -> int:
    """Number of parametrised (Conv2d or Dense) layers of a network.

    Parameters
    ----------
    net : Network or VirtualNetwork

    Returns
    -------
    int
    """
    return sum(isinstance(ly, (Conv2d, Dense)) for _, ly in net.layers)


def depth_rows(target: Network, eps_list: list[float], *, seed: int = 0,
               repeats: int = 3) -> list[dict[str, Any]]:
    """Build both tickets per eps and measure them.

    Parameters
    ----------
    target : Network
    eps_list : list of float
    seed : int, default 0
        Source seed of every construction.
    repeats : int, default 3
        Builds per construction and eps (best and median time).

    Returns
    -------
    list of dict
        Two rows per eps, keyed as :data:`COLUMNS`, plus ``"target depth"``.
    """
    L = param_depth(target)
    rows = []
    for eps in eps_list:
        for name, (mod, key) in _BUILDERS.items():
            times, ticket = [], None
            for _ in range(max(1, repeats)):
                t0 = time.perf_counter()
                ticket = mod.construct(target, eps=eps, rng=seed, on_failure="report")
                times.append(time.perf_counter() - t0)
            assert ticket is not None
            width = ticket.params[key]
            rows.append({
                "eps": eps,
                "construction": name,
                "width": width if isinstance(width, int) else "/".join(map(str, width)),
                "depth": param_depth(ticket.source),
                "target depth": L,
                "source params": ticket.n_source_params,
                "kept": ticket.n_kept,
                "failed": int(ticket.params["n_failed"]),
                "certified": float(mod.certified_bound(target, ticket)),
                "build best (s)": min(times),
                "build median (s)": float(np.median(times)),
            })
    return rows


def _fmt(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, (int, np.integer)):
        return f"{v:,}"
    return f"{v:.3g}"


def depth_table(*, quick: bool = False, seed: int = 0, repeats: int | None = None
                ) -> tuple[str, list[dict[str, Any]]]:
    """Train the target, build both constructions per eps and format the table.

    Parameters
    ----------
    quick : bool, default False
        eps = 0.1 on the small target of :func:`benchmarks.cnn_digits.train_target`.
    seed : int, default 0
    repeats : int, optional
        Builds per cell (default 1 with ``quick``, else 3).

    Returns
    -------
    (str, list of dict)
        The printed text (markdown table included) and the rows.
    """
    eps_list = [0.1] if quick else [0.1, 0.01]
    reps = (1 if quick else 3) if repeats is None else repeats
    load0 = os.getloadavg()[0]
    tg = train_target(quick=quick, seed=seed)
    # warm the numba kernels so that compilation does not count as build time
    small = Network(tg.net.layers[:1], {k: v for k, v in tg.net.params.items()
                                         if k.startswith("layers.0.")}, tg.net.input_shape)
    dacunha2022.construct(small, eps=0.5, rng=0, on_failure="report")
    burkholz2022.construct(small, eps=0.5, rng=0, on_failure="report")
    rows = depth_rows(tg.net, eps_list, seed=seed, repeats=reps)
    load1 = os.getloadavg()[0]
    layers = ", ".join(repr(ly) for _, ly in tg.net.layers)
    lines = [
        "Depth 2l (dacunha2022) against L+1 (burkholz2022), same target, same eps (each its "
        f"own width and tolerance from eps; eps mode; source seed {seed}); certified: sup of "
        "||f - g||_2 on the unit ball",
        f"target ({param_depth(tg.net)} parametrised layers, rescaled to l1 norm <= 1 per "
        f"output channel; test accuracy {tg.acc_scaled:.4f}): {layers}",
        f"CPU: {cpu_description()}; load average {load0:.2f} before, {load1:.2f} after; "
        f"build time best and median of {reps}",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r[c]) for c in COLUMNS) + " |")
    return "\n".join(lines), rows


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (``python -m benchmarks.cnn_depth``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="eps = 0.1 on the small target")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args(argv)
    text, _ = depth_table(quick=args.quick, seed=args.seed, repeats=args.repeats)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
