"""A strong lottery ticket at the size of a GPT-2-small MLP block (768-3072-768).

Pensia et al. (NeurIPS 2020), Theorem 1's construction, for a random bias-free
768-3072-768 target with every spectral norm <= 1
(:func:`slth.constructions.bounded_target`), n = 21 units per sign part and input
coordinate, every subset-sum instance solved to |w - sum| <= 0.01 (``weight_eps``,
the setting of the paper's MNIST experiment), over a *virtual* source
(:class:`slth.sources.VirtualMLP`: entries computed on demand by Philox) of
widths (768, 32256, 3072, 129024, 768), 619M weights, that a dense source
would hold in about 5 GB of float64.

Printed: build time (and its phases), peak memory (tracemalloc of the build, and
the process' peak RSS), kept entries, instances and failures; then, where
:meth:`slth.Ticket.from_kept` accepts a VirtualMLP source, the ticket's file size,
save and reload times (the reload compared index for index), and the error
against the target on inputs sampled uniformly in the unit ball (``ticket.forward``
against ``target.forward``).

Run (from the repository root)::

    python -m benchmarks.gpt2_mlp_block              # about a minute on 2 cores
    python -m benchmarks.gpt2_mlp_block --quick      # a 96-384-96 block, seconds
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence

import numpy as np

from slth.constructions import bounded_target, pensia2020
from slth.subset_sum import solve_batch

__all__ = ["main", "unit_ball"]


def unit_ball(n: int, d: int, *, rng: int) -> np.ndarray:
    """``n`` points uniform in the unit ball of R^d (direction Gaussian, radius U^(1/d))."""
    gen = np.random.default_rng(rng)
    x = gen.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x * gen.random((n, 1)) ** (1.0 / d)


def _row(name: str, value: str) -> str:
    return f"| {name:<46} | {value:>30} |"


def main(argv: Sequence[str] | None = None) -> str:
    """Run the benchmark; return (and print) the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a 96-384-96 block (seconds)")
    p.add_argument("--n", type=int, default=21)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--samples", type=int, default=1000)
    args = p.parse_args(argv)
    widths = (96, 384, 96) if args.quick else (768, 3072, 768)
    target = bounded_target(widths, rng=args.seed)
    # warm the numba kernels (solver, Philox) so that compilation does not count
    solve_batch(np.ones((2, args.n)) * 0.1, np.zeros(2), eps=0.01)
    pensia2020.construct(bounded_target((3, 4, 2), rng=0), n=args.n, weight_eps=0.01,
                         virtual=True, rng=0, on_failure="report")
    timings: dict[str, float] = {}
    tracemalloc.start()
    t0 = time.perf_counter()
    ticket = pensia2020.construct(target, n=args.n, weight_eps=0.01, virtual=True,
                                  rng=args.seed, timings=timings, on_failure="report")
    build = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    pr = ticket.params
    src = ticket.source
    lines = [
        f"Pensia et al. 2020 ticket of a random {widths} target (bias-free, ||W_l||_2 <= 1), "
        f"n = {args.n}, per-weight tolerance 0.01, virtual source (seed {args.seed})",
        "",
        _row("quantity", "value"),
        _row("-" * 46, "-" * 30),
        _row("source widths", str(src.widths)),
        _row("source weights (virtual; dense float64 would be)",
             f"{src.n_params:,} ({8 * src.n_params / 1e9:.2f} GB)"),
        _row("subset-sum instances", f"{pr['n_instances']:,}"),
        _row("instances missing the tolerance", f"{pr['n_failed']:,}"),
        _row("row blocks (gather + solve_batch + scatter)", f"{pr['row_blocks']:,}"),
        _row("time: gather (read entries, products) (s)", f"{timings['gather']:.2f}"),
        _row("time: solve (solve_batch) (s)", f"{timings['solve']:.2f}"),
        _row("time: scatter to kept indices (s)", f"{timings['scatter']:.2f}"),
        _row("time: assemble Ticket (s)", f"{timings['ticket']:.2f}"),
        _row("time: build total (s)", f"{build:.2f}"),
        _row("build / solve", f"{build / timings['solve']:.2f}x"),
        _row("peak memory, tracemalloc, build (MB)", f"{peak / 2**20:,.0f}"),
        _row("peak RSS of the process so far (MB)", f"{rss:,.0f}"),
        _row("kept entries", f"{ticket.n_kept:,}"),
        _row("density", f"{ticket.density:.4g}"),
        _row("max per-weight error (realised)",
             f"{max(float(np.max(e)) for e in ticket.weight_errors):.3g}"),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "gpt2_mlp_block.ticket")
        t0 = time.perf_counter()
        ticket.save(path)
        t_save = time.perf_counter() - t0
        size = os.path.getsize(path)
        t0 = time.perf_counter()
        again = type(ticket).load(path)
        t_load = time.perf_counter() - t0
    same = (again.source.source == src.source
            and all(np.array_equal(again.kept[k], v) for k, v in ticket.kept.items()))
    x = unit_ball(args.samples, widths[0], rng=args.seed + 1)
    t0 = time.perf_counter()
    y_t = again.forward(x)
    t_fwd = time.perf_counter() - t0
    diff = y_t - target.forward(x)
    sup = np.abs(diff).max(axis=1)
    l2 = np.linalg.norm(diff, axis=1)
    ref = np.linalg.norm(target.forward(x), axis=1)
    lines += [
        _row("ticket file size (MB)", f"{size / 2**20:,.1f}"),
        _row("bytes per kept entry in the file", f"{size / ticket.n_kept:.2f}"),
        _row("time: save / load (s)", f"{t_save:.2f} / {t_load:.2f}"),
        _row("reload identical (source, kept indices)", str(bool(same))),
        _row(f"time: ticket forward, {args.samples} inputs (s)", f"{t_fwd:.2f}"),
        _row(f"max error, sup norm ({args.samples} unit-ball inputs)", f"{sup.max():.4g}"),
        _row("mean error, sup norm", f"{sup.mean():.4g}"),
        _row("max error, l2 norm", f"{l2.max():.4g}"),
        _row("mean ||target(x)||_2 (scale of the outputs)", f"{ref.mean():.4g}"),
    ]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main(sys.argv[1:])
