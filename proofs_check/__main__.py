"""``python -m proofs_check [--quick] [--only NAME ...] [--out DIR]``.

Runs the registered theorem checks, prints one table line per case and a legend
of its marks and verdict words (with the family-wise level of the verdicts),
and writes ``DIR/proofs_check.json`` and ``DIR/proofs_check.md`` (plus
resumable results files under ``DIR/runs/``). Exit status 1 when a check comes
out "violated".
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import (
    CHECKS,
    family_summary,
    format_table,
    legend,
    overall_verdict,
    results_to_json,
    results_to_markdown,
    run_checks,
)


def main(argv: list[str] | None = None, *, prog: str = "python -m proofs_check") -> int:
    """Command-line entry point (also ``slth check``); returns the exit status.

    0 when no case is violated, 1 when one is, 2 on a usage error.
    """
    parser = argparse.ArgumentParser(
        prog=prog, description="Check the SLTH theorems numerically."
    )
    parser.add_argument("--quick", action="store_true",
                        help="fewer trials (under a minute once numba's caches are warm)")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(CHECKS),
        metavar="NAME",
        help=f"run only this check (repeatable); one of {', '.join(sorted(CHECKS))}",
    )
    parser.add_argument("--out", type=Path, default=Path("out/proofs_check"), help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--alpha", type=float, default=0.05,
                        help="family-wise error level of the verdicts (Holm; default 0.05)")
    parser.add_argument("--list", action="store_true", help="list the checks and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name in CHECKS:
            print(name)
        return 0
    t0 = time.perf_counter()
    results = run_checks(
        args.only,
        quick=args.quick,
        rng=args.seed,
        store_dir=args.out / "runs",
        progress=False if args.no_progress else None,
        alpha=args.alpha,
    )
    elapsed = time.perf_counter() - t0
    print(format_table(results))
    print()
    print(legend(results))
    verdict = overall_verdict([r.verdict for r in results])
    print(f"\noverall: {verdict}   ({len(results)} cases, {elapsed:.1f} s)")
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {
        "quick": args.quick,
        "seed": args.seed,
        "checks": args.only or list(CHECKS),
        "runtime_s": elapsed,
        "overall": verdict,
        "family_wise": family_summary(results),
    }
    (args.out / "proofs_check.json").write_text(results_to_json(results, **meta) + "\n")
    title = "Theorem checks (quick)" if args.quick else "Theorem checks"
    (args.out / "proofs_check.md").write_text(results_to_markdown(results, title=title))
    print(f"wrote {args.out / 'proofs_check.json'} and {args.out / 'proofs_check.md'}")
    return 1 if verdict == "violated" else 0


if __name__ == "__main__":
    sys.exit(main())
