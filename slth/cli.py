"""The ``slth`` command (also ``python -m slth``).

``slth demo``: solve batches of random subset-sum instances exactly and print
the median optimal error against n beside the 0.4 sqrt(n) 2^-n law.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .subset_sum import format_law_table, optimal_error_law


def _demo(args: argparse.Namespace) -> int:
    ns = args.n or list(range(8, 33, 4))
    print(
        f"Exact random subset sum: {args.instances} instances per n, values "
        f"{args.distribution}, targets U[-1, 1], seed {args.seed}\n"
    )
    rows = optimal_error_law(
        ns, instances=args.instances, distribution=args.distribution, rng=args.seed
    )
    print(format_law_table(rows))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``slth`` command."""
    parser = argparse.ArgumentParser(prog="slth", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="median optimal subset-sum error against n")
    demo.add_argument("--n", type=int, nargs="+", help="values of n (default 8 12 ... 32)")
    demo.add_argument("--instances", type=int, default=2000)
    demo.add_argument(
        "--distribution", default="uniform", choices=["uniform", "product", "normal", "hyperbolic"]
    )
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
