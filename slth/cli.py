"""The ``slth`` command (also ``python -m slth``).

``slth demo``: solve batches of random subset-sum instances exactly and print
the median optimal error against n beside the 0.4 sqrt(n) 2^-n law.

Errors never print a traceback: a bad argument, any :class:`slth.SLTHError`
(an input outside its domain, a request past the memory budget), an unreadable
file or an exhausted memory print one line ``slth: error: ...`` on stderr and
exit with status 2 (130 on Ctrl-C).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from .errors import SLTHError
from .subset_sum import DISTRIBUTIONS, EXACT_MAX_N, format_law_table, optimal_error_law

#: Exit status of every error reported by the command.
EXIT_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``slth: error: <subcommand>: <message>``."""

    def error(self, message: str) -> NoReturn:
        where = self.prog.split(" ", 1)[1] + ": " if " " in self.prog else ""
        hint = f" (see `{self.prog} --help`)"
        self.exit(EXIT_ERROR, f"slth: error: {where}{_one_line(message)}{hint}\n")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _int_in(lo: int, hi: int | None, what: str) -> Callable[[str], int]:
    """argparse type: an int in [lo, hi] (hi None: no upper end)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be an int ({what}); received {text!r}"
            ) from None
        if value < lo or (hi is not None and value > hi):
            domain = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
            raise argparse.ArgumentTypeError(
                f"must be an int in {domain} ({what}); received {value}"
            )
        return value

    parse.__name__ = "int"
    return parse


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


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="slth", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    demo = sub.add_parser("demo", help="median optimal subset-sum error against n")
    demo.add_argument(
        "--n", type=_int_in(1, EXACT_MAX_N, f"exact solving accepts n <= {EXACT_MAX_N}"),
        nargs="+", help=f"values of n in [1, {EXACT_MAX_N}] (default 8 12 ... 32)",
    )
    demo.add_argument("--instances", type=_int_in(1, None, "instances per n"), default=2000)
    demo.add_argument("--distribution", default="uniform", choices=list(DISTRIBUTIONS))
    demo.add_argument("--seed", type=_int_in(0, None, "a numpy seed"), default=0)
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``slth`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 on success, 2 after a one-line ``slth: error: ...`` on
        stderr (bad argument, :class:`slth.SLTHError`, unreadable file, out of
        memory), 130 when interrupted.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error already printed (2)
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_ERROR
    try:
        return int(args.func(args))
    except SLTHError as exc:
        message = _one_line(str(exc))
    except OSError as exc:
        name = f" {exc.filename!r}" if getattr(exc, "filename", None) else ""
        message = f"cannot access{name}: {exc.strerror or _one_line(str(exc))}"
    except MemoryError as exc:
        message = ("out of memory" + (f": {_one_line(str(exc))}" if str(exc) else "")
                   + "; set a lower SLTH_MEMORY_BUDGET or ask for less")
    except KeyboardInterrupt:
        print("slth: interrupted", file=sys.stderr)
        return 130
    print(f"slth: error: {args.command}: {message}", file=sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
