"""The torch backend against numba, in one process: subset sums and ticket evaluation.

Tables printed (the device, torch's version and the CPU with its vector features first):

1. ``solve_batch`` instances per second, exact mode at n = 24 and 32 and eps mode at
   eps = 0.01 (n = 21), numba (every core) against ``backend="torch"`` on the same
   instances, with their ratio and whether the masks agree (exact mode: bit for bit
   wherever the fixed-point optimum is unique; eps mode: the torch backend solves
   exactly, so its masks are the optima, within eps wherever numba's are).
2. ``approximation_error`` of a Pensia et al. (2020) ticket of a 784-500-10 target
   (n = 21, |w - sum| <= 0.01, virtual source) on ``--inputs`` inputs: numpy against
   ``slth.torch.approximation_error`` (the same samples and search), time and values.

Goals on an NVIDIA H200 (issue "Solver and evaluation backends"): at least 10^8 eps-mode
instances/s and at least 50x the 2-core numba throughput in exact mode. Run it on a GPU
(``python -m benchmarks.gpu``); ``--quick`` is a tiny CPU run that only checks that the
script works (tests/test_gpu_benchmark.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np

from benchmarks.construct_mlp import cpu_description


def _rate(fn, count: int, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return count / best, out


def solver_table(sizes: Sequence[tuple[str, int, int, float | None]], *, device: str,
                 repeats: int = 3, seed: int = 0) -> str:
    """Table 1: instances/s of numba and torch on the same instances."""
    from slth.subset_sum import solve_batch

    rng = np.random.default_rng(seed)
    lines = [f"| mode | n | instances | numba (inst/s) | torch on {device} (inst/s) | "
             "torch / numba | masks |", "|---|---:|---:|---:|---:|---:|---|"]
    for mode, n, B, eps in sizes:
        v = rng.uniform(-1, 1, (B, n))
        t = rng.uniform(-1, 1, B)
        solve_batch(v[:2], t[:2], eps=eps)  # compile / warm
        solve_batch(v[:2], t[:2], eps=eps, backend="torch", device=device)
        r_nb, a = _rate(lambda v=v, t=t, eps=eps: solve_batch(v, t, eps=eps), B, repeats)
        r_t, b = _rate(lambda v=v, t=t, eps=eps: solve_batch(v, t, eps=eps, backend="torch",
                                                             device=device), B, repeats)
        if eps is None:
            agree = f"{np.mean(np.all(a.masks == b.masks, axis=1)):.4f} identical"
        else:
            ok = b.errors[a.errors <= eps] <= eps
            agree = f"within eps where numba is: {ok.mean() if ok.size else 1.0:.4f}"
        lines.append(f"| {mode} | {n} | {B:,} | {r_nb:,.0f} | {r_t:,.0f} | {r_t / r_nb:.2f}x | "
                     f"{agree} |")
    return "\n".join(lines)


def evaluation_table(widths: Sequence[int], n: int, inputs: int, *, device: str,
                     seed: int = 0) -> str:
    """Table 2: approximation_error, numpy against torch, on the same inputs."""
    from slth import evaluate
    from slth.constructions import bounded_target, pensia2020
    from slth.torch import approximation_error

    target = bounded_target(tuple(widths), rng=seed)
    ticket = pensia2020.construct(target, n=n, weight_eps=0.01, virtual=True, rng=seed,
                                  on_failure="report")
    kw = dict(n_samples=inputs, rng=seed, adversarial_steps=20, restarts=8, certify=False)
    t0 = time.perf_counter()
    a = evaluate.approximation_error(target, ticket, **kw)
    t_np = time.perf_counter() - t0
    t0 = time.perf_counter()
    b = approximation_error(target, ticket, device=device, **kw)
    t_t = time.perf_counter() - t0
    return "\n".join([
        f"Pensia ticket of a {'-'.join(map(str, widths))} target (n = {n}, |w - sum| <= 0.01, "
        f"virtual source): {ticket.n_kept:,} kept of {ticket.n_source_params:,}; "
        f"{inputs:,} inputs, 20 adversarial steps, 8 restarts",
        "",
        "| backend | time (s) | sampled max | adversarial |",
        "|---|---:|---:|---:|",
        f"| numpy (CPU) | {t_np:.2f} | {a.sampled_max:.6g} | {a.adversarial:.6g} |",
        f"| torch ({device}) | {t_t:.2f} | {b.sampled_max:.6g} | {b.adversarial:.6g} |",
    ])


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__)
    p.add_argument("--quick", action="store_true", help="tiny sizes on the CPU (a smoke test)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    p.add_argument("--inputs", type=int, default=1_000_000, help="evaluation inputs")
    args = p.parse_args(argv)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name(0) if device.startswith("cuda") else "CPU"
    print(f"device: {device} ({name}); torch {torch.__version__}")
    print(f"CPU: {cpu_description()}\n")
    if args.quick:
        sizes = [("exact", 12, 200, None), ("eps", 14, 200, 0.01)]
        print(solver_table(sizes, device=device, repeats=1))
        print()
        print(evaluation_table((20, 10, 3), 6, 256, device=device))
        return 0
    sizes = [("exact", 24, 100_000, None), ("exact", 32, 2_000, None),
             ("eps", 21, 1_000_000, 0.01)]
    print(solver_table(sizes, device=device))
    print()
    print(evaluation_table((784, 500, 10), 21, args.inputs, device=device))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
