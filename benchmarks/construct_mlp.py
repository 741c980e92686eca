"""Building MLP tickets: Pensia et al. (2020) at MNIST size, Malach et al. (2020) beside it.

Tables printed:

1. Pensia et al. (NeurIPS 2020) ticket for a random bias-free 784-500-10 target whose
   layers are scaled to spectral norm 1, with n = 21 units per sign part and input
   coordinate, each subset-sum instance solved to |w - sum| <= 0.01 (``weight_eps``,
   the setting of the paper's MNIST experiment; ``--exact`` solves every instance to
   its optimum instead): time split into drawing the source, gathering the
   candidate products, solving (one ``solve_batch`` call per layer), scattering the
   masks and assembling the ticket; peak memory (tracemalloc peak of the call and the
   process' peak RSS); source and kept parameters, density; certified sup-error
   bound, sampled and adversarial errors on the unit ball.
2. Pensia against Malach et al. (ICML 2020) on a small target: the smallest width of
   each construction (same seed) whose certified bound is <= eps, the source sizes
   and their ratio, beside the widths the two bounds of :mod:`slth.bounds` give.
3. With ``--measure-c``: the constants of :mod:`slth.bounds` measured
   (``LUEKER_C`` from exact coverage, ``PENSIA2020_C`` from seeded constructions).
4. With ``--virtual``: the ticket of table 1 over a virtual source
   (:class:`slth.sources.VirtualMLP`, entries computed on demand; no dense array of
   the source exists): the whole construction's time, its solve phase and their
   ratio (goal <= 3x), tracemalloc peak (goal < 300 MB), best and median of
   ``--repeats`` runs, with the CPU and its vector features and the load average.

Run (from the repository root)::

    python -m benchmarks.construct_mlp               # about 1-2 minutes on 2 cores
    python -m benchmarks.construct_mlp --quick       # a 100-50-10 target, seconds
    python -m benchmarks.construct_mlp --measure-c   # adds the constants (minutes)
    python -m benchmarks.construct_mlp --virtual     # only table 4 (seconds)
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import time
import tracemalloc
from collections.abc import Sequence

import numpy as np

from slth import bounds
from slth.constructions import malach2020, pensia2020
from slth.evaluate import approximation_error, certified_bound
from slth.nets import MLP
from slth.sources import VirtualSource
from slth.subset_sum import coverage_batch, solve_batch

__all__ = ["compare_malach", "cpu_description", "main", "measure_lueker_c", "measure_pensia_c",
           "pensia_table", "unit_norm_target", "virtual_table"]


def unit_norm_target(widths: Sequence[int], *, rng: int) -> MLP:
    """A random bias-free target, U[-1, 1] entries, each layer scaled to spectral norm 1."""
    net = MLP.random(widths, rng=rng)
    return MLP([w / np.linalg.svd(w, compute_uv=False)[0] for w in net.weights])


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _row(name: str, value: str) -> str:
    return f"| {name:<44} | {value:>22} |"


def pensia_table(widths: Sequence[int], n: int, *, seed: int = 0, n_samples: int = 512,
                 steps: int = 20, restarts: int = 4, weight_eps: float | None = 0.01) -> str:
    """Table 1: build the Pensia ticket and report time, memory, sizes and errors."""
    target = unit_norm_target(widths, rng=seed)
    # warm the numba kernels so that compilation does not count as solving time
    solve_batch(np.ones((2, n)) * 0.1, np.zeros(2))
    timings: dict[str, float] = {}
    tracemalloc.start()
    t0 = time.perf_counter()
    ticket = pensia2020.construct(target, n=n, rng=seed, timings=timings,
                                  weight_eps=weight_eps, on_failure="report")
    total = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = _rss_mb()
    t1 = time.perf_counter()
    cert = certified_bound(target, ticket)
    t_cert = time.perf_counter() - t1
    t1 = time.perf_counter()
    rep = approximation_error(target, ticket, n_samples=n_samples, rng=seed,
                              adversarial_steps=steps, restarts=restarts, certify=False)
    t_eval = time.perf_counter() - t1
    n_inst = ticket.params["n_instances"]
    lines = [
        f"Pensia et al. 2020 ticket, target {tuple(widths)} (bias-free, ||W_l||_2 = 1), "
        f"n = {n} per sign part and input coordinate, "
        + ("exact subset sum" if weight_eps is None else f"per-weight tolerance {weight_eps:g}"),
        "",
        _row("quantity", "value"),
        _row("-" * 44, "-" * 22),
        _row("source widths", str(ticket.source.widths)),
        _row("subset-sum instances", f"{n_inst:,}"),
        _row("instances missing the tolerance", f"{ticket.params['n_failed']:,}"),
        _row("time: draw the source (s)", f"{timings['draw']:.2f}"),
        _row("time: gather candidate products (s)", f"{timings['gather']:.2f}"),
        _row("time: solve (one solve_batch per layer) (s)", f"{timings['solve']:.2f}"),
        _row("time: scatter masks (s)", f"{timings['scatter']:.2f}"),
        _row("time: assemble Ticket (s)", f"{timings['ticket']:.2f}"),
        _row("time: construct total (s)", f"{total:.2f}"),
        _row("peak memory, tracemalloc, construct (MB)", f"{peak / 2**20:,.0f}"),
        _row("peak RSS of the process so far (MB)", f"{rss:,.0f}"),
        _row("source parameters", f"{ticket.n_source_params:,}"),
        _row("kept parameters", f"{ticket.n_kept:,}"),
        _row("density", f"{ticket.density:.4g}"),
        _row("target parameters", f"{target.n_params:,}"),
        _row("max per-weight error (realised)",
             f"{max(float(e.max()) for e in ticket.weight_errors):.3g}"),
        _row("certified sup-error bound (unit ball)", f"{cert:.4g}"),
        _row(f"sampled max error ({rep.n_samples} inputs)", f"{rep.sampled_max:.4g}"),
        _row("sampled mean error", f"{rep.sampled_mean:.4g}"),
        _row(f"adversarial lower bound ({restarts}x{steps} steps)", f"{rep.adversarial:.4g}"),
        _row("time: certified bound (s)", f"{t_cert:.2f}"),
        _row("time: sampled + adversarial (s)", f"{t_eval:.2f}"),
    ]
    return "\n".join(lines)


def cpu_description() -> str:
    """CPU model, logical cores and vector features (from /proc/cpuinfo where readable)."""
    model, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                if key.strip() == "model name" and model == "unknown CPU":
                    model = val.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(val.split())
    except OSError:
        pass
    wanted = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl")
    vec = " ".join(f for f in wanted if f in flags) or "none listed"
    return f"{model}, {os.cpu_count()} logical cores, vector features: {vec}"


def _numba_threads() -> str:
    """numba's thread count and threading layer (the parallel kernels' setting)."""
    import numba

    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        layer = "not yet chosen"
    return f"{numba.get_num_threads()} threads, {layer} layer"


def virtual_table(widths: Sequence[int], n: int, *, seed: int = 0, repeats: int = 5,
                  weight_eps: float | None = 0.01) -> str:
    """Table 4: the Pensia ticket over a virtual source; time, solve phase, ratio, peak."""
    target = unit_norm_target(widths, rng=seed)
    # warm the numba kernels (solver in both modes, Philox serial and parallel)
    solve_batch(np.ones((2, n)) * 0.1, np.zeros(2), eps=weight_eps)
    VirtualSource({"w": (1 << 21,)}, "uniform[-1,1]", 0).entries("w", np.arange(1 << 21))
    pensia2020.construct(unit_norm_target((8, 6, 3), rng=0), n=n, weight_eps=weight_eps,
                         virtual=True, rng=0, on_failure="report")
    load0 = os.getloadavg()[0]
    runs = []
    for _ in range(max(1, repeats)):
        tm: dict[str, float] = {}
        t0 = time.perf_counter()
        ticket = pensia2020.construct(target, n=n, weight_eps=weight_eps, virtual=True,
                                      rng=seed, timings=tm, on_failure="report")
        runs.append((time.perf_counter() - t0, tm))
    load1 = os.getloadavg()[0]
    tracemalloc.start()
    pensia2020.construct(target, n=n, weight_eps=weight_eps, virtual=True, rng=seed,
                         on_failure="report")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    best = min(runs, key=lambda r: r[0])
    total, tm = best
    med = float(np.median([r[0] for r in runs]))
    other = total - tm["gather"] - tm["solve"] - tm["scatter"] - tm["ticket"]
    lines = [
        f"Pensia et al. 2020 ticket over a virtual source, target {tuple(widths)} (bias-free, "
        f"||W_l||_2 = 1), n = {n}, "
        + ("exact subset sum" if weight_eps is None else f"per-weight tolerance {weight_eps:g}"),
        f"CPU: {cpu_description()}; load average {load0:.2f} before, {load1:.2f} after; "
        f"numba: {_numba_threads()}",
        "",
        _row("quantity", "value"),
        _row("-" * 44, "-" * 22),
        _row("source widths", str(ticket.source.widths)),
        _row("source weights (virtual)", f"{ticket.n_source_params:,}"),
        _row("subset-sum instances", f"{ticket.params['n_instances']:,}"),
        _row("instances missing the tolerance", f"{ticket.params['n_failed']:,}"),
        _row("row blocks", f"{ticket.params['row_blocks']:,}"),
        _row(f"time: construct total, best of {len(runs)} (s)", f"{total:.3f}"),
        _row(f"time: construct total, median of {len(runs)} (s)", f"{med:.3f}"),
        _row("  gather: read entries, products (s)", f"{tm['gather']:.3f}"),
        _row("  solve: solve_batch (s)", f"{tm['solve']:.3f}"),
        _row("  scatter to kept indices (s)", f"{tm['scatter']:.3f}"),
        _row("  Ticket.from_kept (s)", f"{tm['ticket']:.3f}"),
        _row("  rest: checks, target norms, fingerprint (s)", f"{other:.3f}"),
        _row("construct / solve (goal <= 3x)", f"{total / tm['solve']:.2f}x"),
        _row("peak memory, tracemalloc (MB; goal < 300)", f"{peak / 2**20:,.0f}"),
        _row("kept parameters", f"{ticket.n_kept:,}"),
        _row("density", f"{ticket.density:.4g}"),
    ]
    return "\n".join(lines)


def _smallest(build, widths_to_try: Sequence[int], target: MLP, eps: float):
    for w in widths_to_try:
        ticket = build(w)
        cert = certified_bound(target, ticket)
        if cert <= eps:
            return w, ticket, cert
    return None, None, math.inf


def compare_malach(widths: Sequence[int], eps: float, *, seed: int = 0) -> str:
    """Table 2: smallest widths with certified bound <= eps for both constructions."""
    target = unit_norm_target(widths, rng=seed)
    L = target.depth
    n, tp, cp = _smallest(lambda v: pensia2020.construct(target, n=v, rng=seed),
                          range(2, 41), target, eps)
    ks = sorted({round(16 * 1.25 ** i) for i in range(40)})
    k, tm, cm = _smallest(lambda v: malach2020.construct(target, k=v, rng=seed), ks, target,
                          eps)
    w = target.widths
    # a pair's source parameters: m (d_in + d_out) for hidden width m
    th_p = sum(int(bounds.pensia2020_width(w[i], w[i + 1], L, eps, 0.1)) * (w[i] + w[i + 1])
               for i in range(L))
    th_m = sum(int(bounds.malach2020_width(w[i], w[i + 1], L, eps, 0.1)) * (w[i] + w[i + 1])
               for i in range(L))
    lines = [
        f"Pensia (subset sum) vs Malach (single pair), target {tuple(widths)}, "
        f"certified sup error <= {eps} (seed {seed}; widths scanned upward)",
        "",
        "| construction | units per part | source params | kept | certified | "
        "theorem source params (delta=0.1) |",
        "|---|---|---|---|---|---|",
        f"| pensia2020 | {n} | {tp.n_source_params:,} | {tp.n_kept:,} | {cp:.3g} | "
        f"{th_p:,} |" if tp is not None else "| pensia2020 | not reached | | | | |",
        f"| malach2020 | {k} | {tm.n_source_params:,} | {tm.n_kept:,} | {cm:.3g} | "
        f"{th_m:,} |" if tm is not None else "| malach2020 | not reached | | | | |",
    ]
    if tp is not None and tm is not None:
        lines.append("")
        lines.append(f"Malach / Pensia source-size ratio (measured): "
                     f"{tm.n_source_params / tp.n_source_params:.1f}; from the bounds: "
                     f"{th_m / th_p:.1f}")
    return "\n".join(lines)


def measure_lueker_c(*, trials: int = 1000, seed: int = 0) -> tuple[float, str]:
    """Smallest C with P(coverage of [-1, 1] by n = ceil(C ln(2/eps)) U[-1,1] values <= eps)
    >= 1 - eps, from the smallest n that achieves it for each eps."""
    rng = np.random.default_rng(seed)
    rows = ["| eps | smallest n | success rate | n / ln(2/eps) |", "|---|---|---|---|"]
    worst = 0.0
    for p in range(3, 9):
        eps = 2.0 ** -p
        for n in range(p, 25):
            cov = coverage_batch(rng.uniform(-1.0, 1.0, (trials, n)))
            rate = float(np.mean(cov <= eps))
            if rate >= 1.0 - eps:
                ratio = n / math.log(2.0 / eps)
                worst = max(worst, ratio)
                rows.append(f"| 2^-{p} | {n} | {rate:.4f} | {ratio:.2f} |")
                break
        else:
            rows.append(f"| 2^-{p} | > 24 | | |")
    return worst, "\n".join(rows)


def measure_pensia_c(configs: Sequence[tuple[tuple[int, ...], float, float]], *,
                     trials: int = 30, seed: int = 0) -> tuple[float, str]:
    """For each (widths, eps, delta): the (1 - delta)-quantile over seeded trials of the
    smallest C (grid step 0.5) at which the construction at the Theorem 1 width meets every
    per-weight tolerance eps / (2 l d_in d_out) (random unit-norm targets)."""
    grid = np.arange(2.0, 30.01, 0.5)
    rows = ["| widths | eps | delta | n at needed C | needed C (quantile 1-delta) | median C |",
            "|---|---|---|---|---|---|"]
    worst = 0.0
    for widths, eps, delta in configs:
        needed = []
        for t in range(trials):
            target = unit_norm_target(widths, rng=10_000 + 97 * t + seed)
            c_min = math.inf
            for C in grid:
                n = pensia2020.theorem_units(target, eps, delta, C=float(C))
                ticket = pensia2020.construct(target, eps=eps, delta=delta, n=n, rng=t + seed,
                                              on_failure="report")
                if ticket.params["n_failed"] == 0:
                    c_min = float(C)
                    break
            needed.append(c_min)
        q = float(np.quantile(needed, 1.0 - delta, method="higher"))
        worst = max(worst, q)
        tgt = unit_norm_target(widths, rng=seed)
        n_q = list(pensia2020.theorem_units(tgt, eps, delta, C=q)) if math.isfinite(q) else "-"
        rows.append(f"| {tuple(widths)} | {eps} | {delta} | {n_q} | {q:.1f} | "
                    f"{float(np.median(needed)):.1f} |")
    return worst, "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> str:
    """Run the benchmark and return (and print) the tables."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a 100-50-10 target (seconds)")
    p.add_argument("--n", type=int, default=21, help="units per sign part (default 21)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--exact", action="store_true",
                   help="solve every instance to its optimum instead of |w - sum| <= 0.01")
    p.add_argument("--measure-c", action="store_true", help="also measure LUEKER_C and "
                   "PENSIA2020_C (minutes)")
    p.add_argument("--virtual", action="store_true",
                   help="only the ticket over a virtual source (table 4)")
    p.add_argument("--repeats", type=int, default=5, help="runs of table 4 (best and median)")
    args = p.parse_args(argv)
    widths = (100, 50, 10) if args.quick else (784, 500, 10)
    if args.virtual:
        text = virtual_table(widths, args.n, seed=args.seed, repeats=args.repeats,
                             weight_eps=None if args.exact else 0.01)
        print(text)
        return text
    out = [pensia_table(widths, args.n, seed=args.seed,
                        weight_eps=None if args.exact else 0.01), ""]
    small = (6, 8, 4) if args.quick else (12, 12, 6)
    out += [compare_malach(small, 0.05, seed=args.seed), ""]
    if args.measure_c:
        c, table = measure_lueker_c(seed=args.seed)
        out += [f"Lueker: n = ceil(C ln(2/eps)) U[-1,1] values cover [-1,1] within eps with "
                f"probability >= 1 - eps (1000 trials each); largest needed C = {c:.2f}",
                "", table, ""]
        configs = [((2, 2), 0.1, 0.1), ((4, 4), 0.1, 0.1), ((8, 8), 0.1, 0.1),
                   ((16, 16), 0.1, 0.1), ((4, 8, 4), 0.1, 0.1), ((8, 8, 8), 0.1, 0.1),
                   ((4, 4, 4, 4), 0.1, 0.1), ((4, 4), 0.02, 0.1), ((8, 8, 8), 0.02, 0.1)]
        if args.quick:
            configs = configs[:2]
        c, table = measure_pensia_c(configs, seed=args.seed)
        out += [f"Pensia Theorem 1: constant C needed so that the construction at width "
                f"n = ceil(C/2 ln(d_in d_out l / min(eps, delta))) meets every per-weight "
                f"tolerance in >= 1 - delta of 30 seeded trials; largest = {c:.1f}",
                "", table, ""]
    text = "\n".join(out)
    print(text)
    return text


if __name__ == "__main__":
    main(sys.argv[1:])
