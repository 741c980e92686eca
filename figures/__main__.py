"""``python -m figures {all | NAME ...} [--quick] [--out DIR] [--seed N] [--no-progress]``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import FIGURES, load_figure


def main(argv: list[str] | None = None, *, prog: str = "python -m figures") -> int:
    """Command-line entry point (also ``slth figures``); returns the exit status."""
    parser = argparse.ArgumentParser(prog=prog, description="Make the figures.")
    parser.add_argument(
        "names",
        nargs="+",
        choices=["all", *FIGURES],
        metavar="NAME",
        help=f"'all' or figure names: {', '.join(FIGURES)}",
    )
    parser.add_argument("--quick", action="store_true", help="small sweeps (under a minute)")
    parser.add_argument(
        "--out", type=Path, default=Path("out/figures"),
        help="output folder (default out/figures; the README figures live in docs/figures)",
    )
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    names = list(FIGURES) if "all" in args.names else list(dict.fromkeys(args.names))
    t_all = time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        paths = load_figure(name).main(
            args.out,
            quick=args.quick,
            rng=args.seed,
            progress=False if args.no_progress else None,
        )
        files = ", ".join(str(p) for k, p in paths.items() if k != "runs")
        print(f"{name}: {time.perf_counter() - t0:.1f} s -> {files}")
    print(f"total {time.perf_counter() - t_all:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
