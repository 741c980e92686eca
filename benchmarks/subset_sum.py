"""Random subset sum: slth against a MIP solver and brute force, on the same seeded instances.

Every method receives the same instances: for each n, values (B, n) drawn U[-1, 1] and
targets (B,) drawn U[-1, 1] from a seed derived from ``(seed, n)``; a method that runs
fewer instances takes the first rows. Methods:

* ``slth exact``: ``solve_batch(values, targets)`` (meet in the middle), 1 and 2 numba threads;
* ``slth eps=...``: ``solve_batch(values, targets, eps=eps)``, eps in {0.01, 1e-3};
* ``HiGHS exact``: ``scipy.optimize.milp`` minimising t subject to
  -t <= target - values.x <= t, x binary (the MIP approach of the research code), with HiGHS'
  default tolerances and again with tightened ones;
* ``HiGHS eps``: ``milp`` feasibility, |target - values.x| <= eps, x binary, zero objective;
* ``numpy brute force``: :func:`slth.subset_sum.reference.bruteforce`, n <= 20.

Every method is judged by the error recomputed from the subset it returned,
``|target - sum(values[mask])|`` (HiGHS' x rounded to {0, 1}), never by a reported
objective. The reference optimum of an instance is the smallest recomputed error any exact
method reached on it; "optimal rate" is the fraction of instances within 1e-12 of it (exact
methods) or within eps (eps methods). slth timings are the best of ``--repeat`` passes over
the whole grid of (n, mode, threads), each call after a warm-up call that compiles the kernels
and starts numba's threads; the passes are spread over the run so that one busy moment of a
shared machine does not spoil every repeat of a cell.

Also :func:`empirical_law_table`: median optimal error against n beside 0.4 sqrt(n) 2^-n,
for uniform values and for products of two uniforms.

Run (from the repository root)::

    python -m benchmarks.subset_sum                # full run, about 4-5 minutes on 2 cores
    python -m benchmarks.subset_sum --quick        # under a minute
    python -m benchmarks.subset_sum --n 12 16 20 --highs-instances 4 --markdown out.md
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import hashlib
import math
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
import scipy
from scipy.optimize import Bounds, LinearConstraint, milp

import slth
from slth import spawn
from slth.errors import InputError
from slth.subset_sum import (
    DISTRIBUTIONS,
    EXACT_MAX_N,
    LawRow,
    law_reference,
    optimal_error_law,
    sample,
    solve_batch,
)
from slth.subset_sum.reference import BRUTEFORCE_MAX_N, bruteforce

__all__ = [
    "DEFAULT_NS",
    "HIGHS_TIGHT_OPTIONS",
    "BenchmarkResult",
    "Instances",
    "Measurement",
    "Plan",
    "empirical_law_table",
    "machine_lines",
    "main",
    "make_instances",
    "make_plan",
    "render_law_table",
    "render_report",
    "run_benchmark",
    "subset_errors",
]

DEFAULT_NS: tuple[int, ...] = (12, 16, 20, 24, 28, 32)
EPS_VALUES: tuple[float, ...] = (0.01, 1e-3)
#: An exact method's answer counts as optimal within this of the reference optimum.
OPT_TOL = 1e-12
#: Looser match also reported for HiGHS.
NEAR_TOL = 1e-9
LAW_NS: tuple[int, ...] = tuple(range(8, 41, 4))
#: HiGHS defaults that matter here (HiGHS option reference).
HIGHS_DEFAULTS_TEXT = (
    "mip_rel_gap=1e-4, mip_abs_gap=1e-6, mip_feasibility_tolerance=1e-6, "
    "primal_feasibility_tolerance=1e-7"
)
#: Tightened HiGHS options (scipy passes the last three to HiGHS verbatim, with a warning).
HIGHS_TIGHT_OPTIONS: dict[str, float] = {
    "mip_rel_gap": 0.0,
    "mip_abs_gap": 0.0,
    "mip_feasibility_tolerance": 1e-10,
    "primal_feasibility_tolerance": 1e-10,
}

# ----------------------------------------------------------------------------
# instances and judging


@dataclass(frozen=True)
class Instances:
    """Seeded subset-sum instances.

    Attributes
    ----------
    values : numpy.ndarray
        float[B, n], U[-1, 1].
    targets : numpy.ndarray
        float[B], U[-1, 1].
    """

    values: np.ndarray
    targets: np.ndarray


def make_instances(n: int, count: int, *, seed: int = 0) -> Instances:
    """The benchmark's ``count`` instances with ``n`` values each.

    Values and targets come from two generators spawned off
    ``SeedSequence(seed, spawn_key=(n,))``, so the first k rows are the same whatever
    ``count`` and whatever other n are run.
    """
    gen_values, gen_targets = spawn(np.random.SeedSequence(seed, spawn_key=(n,)), 2)
    return Instances(
        sample("uniform", (count, n), rng=gen_values),
        sample("uniform", count, rng=gen_targets),
    )


def subset_errors(values: np.ndarray, targets: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """float[B]: ``|targets[b] - sum(values[b][masks[b]])|``, recomputed from the masks."""
    return np.abs(targets - np.where(masks, values, 0.0).sum(axis=1))


@dataclass(frozen=True)
class Measurement:
    """One method on the first ``len(errors)`` instances of one n.

    Attributes
    ----------
    method : str
        Row label, e.g. ``"slth exact"``.
    kind : str
        ``"exact"`` (looks for the optimum) or ``"eps"`` (any subset within ``eps``).
    eps : float or None
        Tolerance of an eps method.
    n : int
        Values per instance.
    threads : str
        numba threads ("1", "2"), "1" for HiGHS (serial branch and bound), "-" for numpy.
    seconds : float
        Wall time for all instances (slth: best of the repeats).
    errors : numpy.ndarray
        float[B], error recomputed from each returned subset.
    status : numpy.ndarray or None
        int[B], HiGHS exit status (0 optimal, 1 time limit, 2 infeasible, ...).
    reported : numpy.ndarray or None
        float[B], HiGHS' reported objective (NaN where none).
    digest : str
        sha1 of the returned masks (slth), to compare thread counts.
    cpu_seconds : float
        Process CPU time (all threads) during the timed call (slth); NaN otherwise.
    """

    method: str
    kind: str
    eps: float | None
    n: int
    threads: str
    seconds: float
    errors: np.ndarray
    status: np.ndarray | None = None
    reported: np.ndarray | None = None
    digest: str = ""
    cpu_seconds: float = math.nan

    @property
    def instances(self) -> int:
        """Number of instances run."""
        return int(self.errors.shape[0])

    @property
    def rate(self) -> float:
        """Instances per second."""
        return self.instances / self.seconds if self.seconds > 0 else math.inf


@dataclass(frozen=True)
class Plan:
    """How many instances each method runs per n, and the solver limits.

    Attributes
    ----------
    exact_base : float
        slth exact runs ``clip(exact_base / (n 2^(n/2)), exact_min, exact_max)`` instances.
    exact_min, exact_max : int
        Bounds of that count.
    eps_instances : int
        slth eps-mode instances per n and eps.
    bruteforce_base : int
        Brute force runs ``clip(bruteforce_base / 2^n, 1, 1000)`` instances (n <= 20).
    highs_exact, highs_tight, highs_eps : int
        HiGHS instances per n: exact with default tolerances, exact with tightened ones,
        eps feasibility (per eps).
    highs_time_limit : float
        HiGHS time limit per instance, seconds.
    repeat : int
        slth timings are the best of this many calls.
    law_trials : int
        Instances per (law, n) of the empirical-law table (0: skip it).
    """

    exact_base: float
    exact_min: int
    exact_max: int
    eps_instances: int
    bruteforce_base: int
    highs_exact: int
    highs_tight: int
    highs_eps: int
    highs_time_limit: float
    repeat: int
    law_trials: int

    def exact_instances(self, n: int) -> int:
        """slth exact instance count for ``n``."""
        return int(np.clip(self.exact_base / (n * 2.0 ** (n / 2)), self.exact_min, self.exact_max))

    def bruteforce_instances(self, n: int) -> int:
        """Brute-force instance count for ``n`` (0 past the reference's limit)."""
        if n > BRUTEFORCE_MAX_N:
            return 0
        return int(np.clip(self.bruteforce_base // 2**n, 1, 1000))


def make_plan(*, quick: bool, highs_instances: int | None, highs_time_limit: float | None,
              repeat: int | None, law_trials: int | None) -> Plan:
    """Default plan (full: about 4-5 minutes on 2 cores; quick: under a minute)."""
    k = highs_instances if highs_instances is not None else (2 if quick else 8)
    return Plan(
        exact_base=1.5e8 if quick else 1.5e9,
        exact_min=200 if quick else 1000,
        exact_max=10_000 if quick else 100_000,
        eps_instances=30_000 if quick else 300_000,
        bruteforce_base=2**18 if quick else 2**22,
        highs_exact=k,
        highs_tight=max(1, k // 2) if k else 0,
        highs_eps=4 * k,
        highs_time_limit=highs_time_limit or (1.0 if quick else 2.0),
        repeat=repeat or (1 if quick else 3),
        law_trials=law_trials if law_trials is not None else (40 if quick else 200),
    )


# ----------------------------------------------------------------------------
# runners


def _time_slth(values: np.ndarray, targets: np.ndarray, *, eps: float | None, threads: int,
               repeat: int) -> tuple[float, float, np.ndarray]:
    """(best wall seconds, process CPU seconds of that call, masks)."""
    numba.set_num_threads(threads)
    solve_batch(values[:64], targets[:64], eps=eps)  # compile / load cache, start the threads
    best, best_cpu = math.inf, 0.0
    masks = np.zeros(values.shape, dtype=bool)
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        res = solve_batch(values, targets, eps=eps)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if wall < best:
            best, best_cpu = wall, cpu
        masks = res.masks
    return best, best_cpu, masks


@contextlib.contextmanager
def _quiet_c_stdout() -> Iterator[None]:
    """Silence what compiled code prints on fd 1 (HiGHS prints a line now and then)."""
    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        libc.fflush(None)
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _run_highs(values: np.ndarray, targets: np.ndarray, *, eps: float | None,
               options: dict[str, float]) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """HiGHS on each row: (seconds, masks, status, reported objective)."""
    count, n = values.shape
    masks = np.zeros((count, n), dtype=bool)
    status = np.full(count, 4, dtype=np.int64)
    reported = np.full(count, np.nan)
    if eps is None:  # variables (x_1..x_n, t): minimise t, -t <= target - values.x <= t
        c = np.zeros(n + 1)
        c[n] = 1.0
        integrality = np.r_[np.ones(n), 0.0]
        bounds = Bounds(np.zeros(n + 1), np.r_[np.ones(n), np.inf])
    else:  # feasibility: target - eps <= values.x <= target + eps
        c = np.zeros(n)
        integrality = np.ones(n)
        bounds = Bounds(np.zeros(n), np.ones(n))
    with warnings.catch_warnings(), _quiet_c_stdout():
        warnings.filterwarnings("ignore", message="Unrecognized options", category=RuntimeWarning)
        t0 = time.perf_counter()
        for b in range(count):
            v, t = values[b], float(targets[b])
            if eps is None:
                a = np.empty((2, n + 1))
                a[:, :n] = v
                a[:, n] = (1.0, -1.0)
                cons = LinearConstraint(a, [t, -np.inf], [np.inf, t])
            else:
                cons = LinearConstraint(v[None, :], t - eps, t + eps)
            # milp pops keys from its options dict: hand it a copy
            res = milp(c, constraints=cons, integrality=integrality, bounds=bounds,
                       options=dict(options))
            status[b] = res.status
            if res.x is not None:
                masks[b] = res.x[:n] > 0.5
            if res.fun is not None:
                reported[b] = res.fun
        seconds = time.perf_counter() - t0
    return seconds, masks, status, reported


def _run_bruteforce(values: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    masks = np.stack([bruteforce(v, float(t)) for v, t in zip(values, targets)])
    return time.perf_counter() - t0, masks


@dataclass(frozen=True)
class BenchmarkResult:
    """Everything one run measured.

    Attributes
    ----------
    measurements : tuple of Measurement
        In run order.
    plan : Plan
        Instance counts and limits used.
    ns : tuple of int
        The n run.
    threads : tuple of int
        numba thread counts run.
    warmup_seconds : float
        First solve_batch calls of the process (numba compile or cache load).
    run_seconds : float
        Wall time of the whole run, warm-up included, law table excluded.
    """

    measurements: tuple[Measurement, ...]
    plan: Plan
    ns: tuple[int, ...]
    threads: tuple[int, ...]
    warmup_seconds: float
    run_seconds: float


def run_benchmark(ns: Sequence[int], plan: Plan, *, threads: Sequence[int] = (1, 2),
                  seed: int = 0, log: Callable[[str], None] | None = None) -> BenchmarkResult:
    """Run every method on every n of ``ns`` (see the module docstring)."""
    log = log or (lambda _msg: None)
    start = time.perf_counter()
    threads = tuple(threads)
    warm = make_instances(16, 64, seed=seed)
    for eps in (None, *EPS_VALUES):  # numba compile (or cache load) outside every timing
        solve_batch(warm.values, warm.targets, eps=eps)
    warmup = time.perf_counter() - start
    log(f"numba warm-up {warmup:.1f} s")
    out: list[Measurement] = []

    def add(m: Measurement) -> None:
        out.append(m)
        log(f"[{time.perf_counter() - start:6.1f} s] n={m.n:2d} {m.method:<26} threads={m.threads} "
            f"{m.instances:>7} inst {m.seconds:8.3f} s {m.rate:>12,.0f}/s")

    def instances_for(n: int) -> Instances:
        counts = [plan.exact_instances(n), plan.eps_instances, plan.bruteforce_instances(n),
                  plan.highs_exact, plan.highs_tight, plan.highs_eps]
        return make_instances(n, max(counts), seed=seed)

    # slth: plan.repeat passes over the whole grid, best time per cell. Spreading the
    # repeats over the run (instead of back to back) keeps one busy moment of the shared
    # machine from spoiling every repeat of a cell.
    best: dict[tuple[int, float | None, int], tuple[float, float, np.ndarray, str]] = {}
    for rep in range(plan.repeat):
        for n in ns:
            inst = instances_for(n)
            for eps in (None, *EPS_VALUES):
                count = plan.exact_instances(n) if eps is None else plan.eps_instances
                v, t = inst.values[:count], inst.targets[:count]
                for th in threads:
                    sec, cpu, masks = _time_slth(v, t, eps=eps, threads=th, repeat=1)
                    key = (n, eps, th)
                    if key not in best:
                        digest = hashlib.sha1(np.ascontiguousarray(masks).tobytes()).hexdigest()
                        best[key] = (sec, cpu, subset_errors(v, t, masks), digest)
                    elif sec < best[key][0]:
                        best[key] = (sec, cpu, best[key][2], best[key][3])
                    log(f"[{time.perf_counter() - start:6.1f} s] pass {rep + 1}/{plan.repeat} "
                        f"n={n:2d} {eps} threads={th} {count / sec:>12,.0f}/s")
    for n in ns:
        inst = instances_for(n)
        values, targets = inst.values, inst.targets
        for eps in (None, *EPS_VALUES):
            for th in threads:
                sec, cpu, errors, digest = best[(n, eps, th)]
                name = "slth exact" if eps is None else f"slth eps={eps:g}"
                add(Measurement(name, "exact" if eps is None else "eps", eps, n, str(th), sec,
                                errors, digest=digest, cpu_seconds=cpu))
        highs_runs: list[tuple[str, float | None, dict[str, float], int]] = [
            ("HiGHS exact (default tol)", None, {}, plan.highs_exact),
            ("HiGHS exact (tight tol)", None, dict(HIGHS_TIGHT_OPTIONS), plan.highs_tight),
        ]
        highs_runs += [
            (f"HiGHS eps={e:g} (feasibility)", e, {}, plan.highs_eps) for e in EPS_VALUES
        ]
        for name, eps, options, count in highs_runs:
            if count <= 0:
                continue
            v, t = values[:count], targets[:count]
            sec, masks, status, reported = _run_highs(
                v, t, eps=eps, options={"time_limit": plan.highs_time_limit, **options}
            )
            add(Measurement(name, "exact" if eps is None else "eps", eps, n, "1", sec,
                            subset_errors(v, t, masks), status=status, reported=reported))
        count = plan.bruteforce_instances(n)
        if count:
            v, t = values[:count], targets[:count]
            sec, masks = _run_bruteforce(v, t)
            add(Measurement("numpy brute force", "exact", None, n, "-", sec,
                            subset_errors(v, t, masks)))
    return BenchmarkResult(tuple(out), plan, tuple(ns), threads, warmup,
                           time.perf_counter() - start)


# ----------------------------------------------------------------------------
# report


def _reference_optimum(result: BenchmarkResult, n: int) -> np.ndarray:
    """Per instance, the smallest recomputed error any exact method reached (inf: none ran)."""
    exact = [m for m in result.measurements if m.n == n and m.kind == "exact"]
    size = max((m.instances for m in exact), default=0)
    ref = np.full(size, np.inf)
    for m in exact:
        ref[: m.instances] = np.minimum(ref[: m.instances], m.errors)
    return ref


def _optimal_rate(m: Measurement, ref: np.ndarray, tol: float = OPT_TOL) -> float:
    if m.kind == "eps":
        return float(np.mean(m.errors <= m.eps))
    return float(np.mean(m.errors <= ref[: m.instances] + tol))


def _find(result: BenchmarkResult, method: str, n: int, threads: str) -> Measurement | None:
    for m in result.measurements:
        if m.method == method and m.n == n and m.threads == threads:
            return m
    return None


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _fmt_rate(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def _fmt_ratio(a: Measurement | None, b: Measurement | None) -> str:
    if a is None or b is None:
        return "-"
    return f"{a.rate / b.rate:,.0f}"


def machine_lines() -> list[str]:
    """Machine, software versions and which kernel source was measured."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count() or 0
    src = Path(slth.subset_sum.__file__).parent
    digests = ", ".join(
        f"{name} {hashlib.sha256((src / name).read_bytes()).hexdigest()[:12]}"
        for name in ("_kernels.py", "solve.py")
        if (src / name).exists()
    )
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = "not initialised"
    from slth.subset_sum.variants import cpu_vector_features, default_merge_variant, merge_variant

    feats = " ".join(cpu_vector_features()) or "none listed"
    return [
        f"- machine: nproc {os.cpu_count()} (usable {affinity}), CPU {cpu}, {platform.machine()}",
        f"- vector features: {feats}; merge variant run: {merge_variant()} (default on this CPU: "
        f"{default_merge_variant()})",
        f"- python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__} "
        f"(threading layer {layer}, NUMBA_NUM_THREADS {numba.config.NUMBA_NUM_THREADS}), "
        f"scipy {scipy.__version__} (HiGHS through scipy.optimize.milp), slth {slth.__version__}",
        f"- kernel source measured (sha256): {digests}",
    ]


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _cpu_ticks() -> tuple[int, int] | None:
    """(steal, total) CPU ticks from /proc/stat (None where unavailable)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def _steal_text(before: tuple[int, int] | None, after: tuple[int, int] | None) -> str:
    """Share of CPU time the hypervisor took from this machine between two readings."""
    if before is None or after is None or after[1] <= before[1]:
        return "unknown"
    return f"{100.0 * (after[0] - before[0]) / (after[1] - before[1]):.1f}%"


def render_report(result: BenchmarkResult, *, header: Sequence[str] = ()) -> str:
    """Markdown: main table, ratios, HiGHS detail, consistency checks, goals."""
    plan = result.plan
    parts: list[str] = ["# Random subset sum: slth vs HiGHS MILP vs brute force", "", *header, ""]

    # main table
    rows = []
    refs = {n: _reference_optimum(result, n) for n in result.ns}
    for m in result.measurements:
        rows.append([m.method, str(m.n), m.threads, f"{m.instances:,}", f"{m.seconds:.3f}",
                     _fmt_rate(m.rate), f"{_optimal_rate(m, refs[m.n]):.4f}",
                     f"{np.median(m.errors):.2e}"])
    parts += [
        "## Speed and optimality (same seeded instances; a method with fewer instances takes the "
        "first rows)",
        "",
        _table(["method", "n", "threads", "instances", "seconds", "inst/s", "optimal rate",
                "median error"], rows, "lrrrrrrr"),
        "",
        f"- optimal rate: exact methods, fraction within {OPT_TOL:g} of the reference optimum "
        "(smallest recomputed error any exact method reached on the instance); eps methods, "
        "fraction within eps. Errors are recomputed from the returned subsets.",
        f"- slth seconds: best of {plan.repeat} pass(es) over the whole grid, one call of "
        "`solve_batch` per cell and pass, each after a warm-up call "
        f"(validation and result assembly included). HiGHS: one `milp` call per instance, "
        f"time limit {plan.highs_time_limit:g} s each, serial (threads = 1). Brute force: "
        "numpy, BLAS threads not controlled (threads = -).",
        f"- HiGHS default tolerances: {HIGHS_DEFAULTS_TEXT}. With the default mip_abs_gap the "
        "exact model stops as soon as an incumbent's t is below 1e-6 (its LP bound is 0), so "
        "from n around 20 (optimum around 1e-6) it stops short of the optimum; the tightened run "
        f"uses {HIGHS_TIGHT_OPTIONS} and can then only stop at the time limit.",
        "",
    ]

    # ratios
    th = [str(t) for t in result.threads]
    cols = ["n"]
    rows = []
    for n in result.ns:
        row = [str(n)]
        h_exact = _find(result, "HiGHS exact (default tol)", n, "1")
        for t in th:
            row.append(_fmt_ratio(_find(result, "slth exact", n, t), h_exact))
        for e in EPS_VALUES:
            h = _find(result, f"HiGHS eps={e:g} (feasibility)", n, "1")
            for t in th:
                row.append(_fmt_ratio(_find(result, f"slth eps={e:g}", n, t), h))
        rows.append(row)
    cols += [f"exact, {t} thr" for t in th]
    cols += [f"eps={e:g}, {t} thr" for e in EPS_VALUES for t in th]
    parts += [
        "## slth / HiGHS instances per second",
        "",
        _table(cols, rows),
        "",
        "- exact: slth exact against HiGHS exact with default tolerances (which stops short of "
        "the optimum from n around 20, and at the time limit past that, so the ratio there "
        "understates what an exact MIP answer would cost); eps: slth eps mode against HiGHS "
        "feasibility at the same eps.",
        "",
    ]

    # HiGHS detail
    rows = []
    for m in result.measurements:
        if m.status is None:
            continue
        counts = [int(np.sum(m.status == s)) for s in (0, 1, 2)]
        other = m.instances - sum(counts)
        if m.kind == "exact":
            ref = refs[m.n][: m.instances]
            claimed_bad = int(np.sum((m.status == 0) & (m.errors > ref + OPT_TOL)))
            near = f"{_optimal_rate(m, refs[m.n], NEAR_TOL):.3f}"
        else:
            ref = refs[m.n][: m.instances]
            claimed_bad = int(np.sum(((m.status == 0) & (m.errors > m.eps))
                                     | ((m.status == 2) & (ref <= m.eps))))
            near = "-"
        rep = m.reported[np.isfinite(m.reported)] if m.kind == "exact" else m.reported[:0]
        rows.append([m.method, str(m.n), str(m.instances), *map(str, counts), str(other),
                     str(claimed_bad), near, f"{_optimal_rate(m, refs[m.n]):.3f}",
                     f"{np.median(rep):.2e}" if rep.size else "-", f"{np.median(m.errors):.2e}"])
    if rows:
        parts += [
            "## HiGHS in detail",
            "",
            _table(["variant", "n", "instances", "status optimal", "time limit", "infeasible",
                    "other", "claims optimal/feasible but is not", f"within {NEAR_TOL:g} of opt",
                    f"within {OPT_TOL:g} (or eps)", "median reported objective",
                    "median recomputed error"], rows),
            "",
            "- 'claims ... but is not': exact, status 0 (optimal) while the recomputed error "
            f"is more than {OPT_TOL:g} above the reference optimum; feasibility, status 0 while "
            "the recomputed error exceeds eps, or status 2 (infeasible) while the optimum is "
            "within eps. An infeasible answer counts with the empty subset's error.",
            "",
        ]

    # consistency checks
    top_t = str(max(result.threads))
    rows = []
    for n in result.ns:
        ref = refs[n]
        row = [str(n)]
        slth_exact = [m for m in result.measurements if m.n == n and m.method == "slth exact"]
        beaten = [int(np.sum(ref[: m.instances] < m.errors - OPT_TOL)) for m in slth_exact]
        exact_count = max((m.instances for m in slth_exact), default=0)
        row.append(f"{max(beaten, default=0)} of {exact_count}")
        digests: dict[str, set[str]] = {}
        for m in result.measurements:
            if m.n == n and m.digest:
                digests.setdefault(m.method, set()).add(m.digest)
        diff = [name for name, d in digests.items() if len(d) > 1]
        row.append(("differ: " + ", ".join(diff)) if diff else "yes")
        for e in EPS_VALUES:
            m = _find(result, f"slth eps={e:g}", n, top_t)
            k = 0 if m is None else min(m.instances, exact_count)
            if m is None or k == 0:
                row += ["-", "-", "-"]
                continue
            attainable = ref[:k] <= e
            row += [f"{attainable.mean():.4f}", f"{np.mean(m.errors[:k] <= e):.4f}",
                    str(int(np.sum(attainable & (m.errors[:k] > e))))]
        rows.append(row)
    cols = ["n", "slth exact beaten by another method", "masks same for all thread counts"]
    for e in EPS_VALUES:
        cols += [f"eps={e:g}: P(optimum <= eps)", "eps mode succeeds", "misses"]
    parts += [
        "## Consistency checks",
        "",
        _table(cols, rows),
        "",
        f"- beaten: instances where an exact method's subset is better than slth exact's by more "
        f"than {OPT_TOL:g} (worst thread count). eps columns: on the instances slth exact also "
        f"ran, with {top_t} thread(s): fraction whose optimum is within eps, fraction eps mode "
        "solved, and misses (optimum within eps but eps mode failed; should be 0).",
        "",
    ]

    # goals
    def rate(method: str, n: int, t: str) -> str:
        m = _find(result, method, n, t)
        return "not run" if m is None else f"{m.rate:,.0f} inst/s"

    goal_rows = [
        [f"slth exact, n={n}", t, goal, rate("slth exact", n, t)]
        for n, goal in ((24, ">= 50,000 inst/s"), (32, ">= 3,000 inst/s"))
        for t in th
    ]
    for e, goal in zip(EPS_VALUES, (">= 2,000,000 inst/s", ">= 1,000,000 inst/s")):
        for t in th:
            ms = [m for m in result.measurements if m.method == f"slth eps={e:g}"
                  and m.threads == t]
            worst = min(ms, key=lambda m: m.rate, default=None)
            got = ("not run" if worst is None
                   else f"{worst.rate:,.0f} inst/s (lowest, at n={worst.n})")
            goal_rows.append([f"slth eps={e:g}, every n", t, goal, got])
    for t in th:
        a = _find(result, "slth exact", 20, t)
        b = _find(result, "HiGHS exact (default tol)", 20, "1")
        goal_rows.append(["slth / HiGHS exact, n=20", t, ">= 10,000",
                          "not run" if a is None or b is None else _fmt_ratio(a, b)])
    share = []
    for t in th:
        ratios = [m.cpu_seconds / m.seconds for m in result.measurements
                  if m.threads == t and m.method.startswith("slth") and m.seconds > 0]
        if ratios:
            share.append(f"{t} thread(s): median {np.median(ratios):.2f} "
                         f"(range {min(ratios):.2f} .. {max(ratios):.2f}; ideal {t})")
    parts += [
        "## Goals (measured values only; no verdict)",
        "",
        _table(["goal", "threads", "target", "measured"], goal_rows, "lrll"),
        "",
        "- CPU obtained by the timed slth calls (process CPU seconds / wall seconds): "
        + "; ".join(share) + ". Below the ideal, other processes held the cores.",
        "",
    ]
    return "\n".join(parts)


# ----------------------------------------------------------------------------
# empirical law


def empirical_law_table(
    ns: Sequence[int] = LAW_NS,
    *,
    trials: int = 300,
    distributions: Sequence[str] = ("uniform", "product"),
    rng: int | np.random.Generator | np.random.SeedSequence | None = 0,
) -> dict[str, list[LawRow]]:
    """Median optimal subset-sum error against n for several laws, beside 0.4 sqrt(n) 2^-n.

    A thin wrapper of :func:`slth.subset_sum.optimal_error_law` (which solves ``trials``
    seeded instances per n exactly, targets U[-1, 1]), one spawned generator per law.

    Parameters
    ----------
    ns : sequence of int
        Values per instance, each in [1, EXACT_MAX_N].
    trials : int, default 300
        Instances per (law, n), >= 1.
    distributions : sequence of str, default ("uniform", "product")
        Laws of the values, names from :data:`slth.subset_sum.DISTRIBUTIONS`.
    rng : int, numpy.random.Generator, numpy.random.SeedSequence or None, default 0
        Randomness.

    Returns
    -------
    dict of str to list of slth.subset_sum.LawRow
        One list (in the order of ``ns``) per law.
    """
    unknown = [d for d in distributions if d not in DISTRIBUTIONS]
    if unknown:
        raise InputError(f"`distributions` entries must be in {DISTRIBUTIONS}; received {unknown}")
    gens = spawn(rng, len(distributions))
    return {
        d: optimal_error_law(ns, instances=trials, distribution=d, rng=g)
        for d, g in zip(distributions, gens)
    }


def render_law_table(table: dict[str, list[LawRow]]) -> str:
    """Markdown: one line per n, one column group per law."""
    dists = list(table)
    by = {(d, r.n): r for d in dists for r in table[d]}
    ns = list(dict.fromkeys(r.n for d in dists for r in table[d]))
    header = ["n"]
    for d in dists:
        header += [f"{d}: median", f"{d}: quartiles", f"{d} / law"]
    header += ["0.4 sqrt(n) 2^-n", "2^-(n-1)"]
    body = []
    for n in ns:
        line = [str(n)]
        for d in dists:
            r = by.get((d, n))
            line += (["-", "-", "-"] if r is None else
                     [f"{r.median:.2e}", f"{r.q25:.1e} .. {r.q75:.1e}", f"{r.ratio:.2f}"])
        line += [f"{float(law_reference(n)):.2e}", f"{2.0 ** -(n - 1):.2e}"]
        body.append(line)
    trials = sorted({r.instances for d in dists for r in table[d]})
    return "\n".join([
        "## Empirical law: median optimal error against n",
        "",
        _table(header, body),
        "",
        f"- {', '.join(map(str, trials))} instances per cell "
        "(`slth.subset_sum.optimal_error_law`); values from the named law ('product': "
        "U[0,1] * U[-1,1]), target U[-1,1]; error of the exact optimum recomputed from its "
        "subset. The optimal error is roughly exponential, so a median from m instances has a "
        "relative standard error of about 1.4/sqrt(m) (10% at m = 200).",
        "",
    ])


# ----------------------------------------------------------------------------
# command line


def variant_table(ns: Sequence[int], *, threads: Sequence[int], repeat: int, seed: int,
                  count: int | None = None) -> str:
    """Exact-mode instances/s of every merge variant, forced in turn, on the same instances.

    Each variant's masks are compared with the default variant's (they must be identical:
    the variants compute the same sorted lists).
    """
    from slth.subset_sum.variants import MERGE_VARIANTS, default_merge_variant, use_merge_variant

    rows = []
    for n in ns:
        B = count or max(64, min(20_000, int(4e8 / 2 ** (n / 2) / n)))
        inst = make_instances(n, B, seed=seed)
        ref = solve_batch(inst.values, inst.targets).masks
        for t in threads:
            rates = {}
            for name in MERGE_VARIANTS:
                with use_merge_variant(name):
                    wall, _, masks = _time_slth(inst.values, inst.targets, eps=None, threads=t,
                                                repeat=repeat)
                rates[name] = B / wall
                if not np.array_equal(masks, ref):
                    raise AssertionError(f"merge variant {name} gave other masks at n={n}")
            best = max(rates, key=rates.get)
            rows.append([str(n), str(t), f"{B:,}",
                         *(f"{rates[k]:,.0f}" for k in MERGE_VARIANTS), best,
                         f"{rates[best] / rates['scalar']:.2f}x"])
    head = ["n", "threads", "instances", *(f"{k} (inst/s)" for k in MERGE_VARIANTS),
            "fastest", "fastest / scalar"]
    note = (f"Merge variants, exact mode, masks identical across variants; default on this CPU: "
            f"{default_merge_variant()}")
    return note + "\n\n" + _table(head, rows, "r" * len(head))


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.subset_sum",
        description="slth subset sum against scipy's HiGHS MILP and numpy brute force.",
    )
    p.add_argument("--quick", action="store_true", help="small counts: under a minute")
    p.add_argument("--n", type=int, nargs="+", default=list(DEFAULT_NS), metavar="N",
                   help=f"values per instance (default {' '.join(map(str, DEFAULT_NS))})")
    p.add_argument("--highs-instances", type=int, default=None, metavar="K",
                   help="HiGHS exact instances per n (default 8, quick 2); the tightened run "
                   "takes K//2, eps feasibility 4K per eps")
    p.add_argument("--highs-time-limit", type=float, default=None, metavar="S",
                   help="HiGHS time limit per instance, seconds (default 2, quick 1)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], metavar="T",
                   help="numba thread counts (default 1 2; capped at NUMBA_NUM_THREADS)")
    p.add_argument("--repeat", type=int, default=None,
                   help="slth timings: best of this many passes over the grid (default 3, quick 1)")
    p.add_argument("--law-trials", type=int, default=None,
                   help="instances per cell of the empirical-law table (default 200, quick 40; "
                   "0 skips it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variants", action="store_true",
                   help="only the merge-variant table (slth.subset_sum.variants): every variant "
                   "forced in turn on the same instances")
    p.add_argument("--markdown", type=Path, default=None, metavar="PATH",
                   help="also write the report to this file")
    args = p.parse_args(argv)
    bad = [n for n in args.n if not 1 <= n <= EXACT_MAX_N]
    if bad:
        p.error(f"--n values must be in [1, {EXACT_MAX_N}]; received {bad}")
    if args.highs_instances is not None and args.highs_instances < 0:
        p.error(f"--highs-instances must be >= 0; received {args.highs_instances}")
    if args.highs_time_limit is not None and not args.highs_time_limit > 0:
        p.error(f"--highs-time-limit must be > 0; received {args.highs_time_limit}")
    if args.repeat is not None and args.repeat < 1:
        p.error(f"--repeat must be >= 1; received {args.repeat}")
    if args.seed < 0:
        p.error(f"--seed must be >= 0; received {args.seed}")
    threads = sorted({t for t in args.threads if 1 <= t <= numba.config.NUMBA_NUM_THREADS})
    if not threads:
        p.error(f"--threads must hold a value in [1, {numba.config.NUMBA_NUM_THREADS}]; "
                f"received {args.threads}")
    args.threads = threads
    return args


def main(argv: Sequence[str] | None = None) -> str:
    """Run the benchmark, print the Markdown report (and write it with ``--markdown``)."""
    args = _parse(argv)
    if args.variants:
        ns = args.n if argv is not None and "--n" in argv else [20, 24, 28, 32]
        if args.quick:
            ns = [min(n, 20) for n in ns[:2]]
        text = "\n".join([*machine_lines(), f"- load average: {_load()}", "",
                          variant_table(sorted(set(ns)), threads=args.threads,
                                        repeat=args.repeat or (1 if args.quick else 3),
                                        seed=args.seed,
                                        count=200 if args.quick else None)])
        print(text)
        if args.markdown is not None:
            args.markdown.write_text(text + "\n")
        return text
    plan = make_plan(quick=args.quick, highs_instances=args.highs_instances,
                     highs_time_limit=args.highs_time_limit, repeat=args.repeat,
                     law_trials=args.law_trials)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    load_start = _load()
    ticks_start = _cpu_ticks()
    started = datetime.datetime.now().astimezone()
    default_threads = numba.get_num_threads()
    try:
        result = run_benchmark(args.n, plan, threads=args.threads, seed=args.seed, log=log)
        law_text = ""
        law_seconds = 0.0
        if plan.law_trials > 0:
            numba.set_num_threads(max(args.threads))
            t0 = time.perf_counter()
            law = empirical_law_table(trials=plan.law_trials, rng=args.seed)
            law_seconds = time.perf_counter() - t0
            log(f"empirical law table {law_seconds:.1f} s")
            law_text = render_law_table(law)
    finally:
        numba.set_num_threads(default_threads)
    command = ["python -m benchmarks.subset_sum", *(sys.argv[1:] if argv is None else argv)]
    header = [
        f"- run: {started:%Y-%m-%d %H:%M %Z}, `{' '.join(command)}`"
        f"{' (quick)' if args.quick else ''}, seed {args.seed}",
        *machine_lines(),
        f"- load average (1, 5, 15 min): {load_start} at start, {_load()} at end "
        "(the machine is shared: other processes inflate every time below); hypervisor steal "
        f"{_steal_text(ticks_start, _cpu_ticks())} of CPU time during the run (wall-clock rates "
        "below include it)",
        f"- numba warm-up (compile or cache load): {result.warmup_seconds:.1f} s; benchmark "
        f"{result.run_seconds:.0f} s; law table {law_seconds:.0f} s",
    ]
    report = render_report(result, header=header) + ("\n" + law_text if law_text else "")
    print(report)
    if args.markdown is not None:
        args.markdown.write_text(report + "\n")
    return report


if __name__ == "__main__":
    main()
