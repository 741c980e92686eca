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
3. That ticket built end to end on the device (``pensia2020.construct(...,
   backend="torch")``: torch Philox entries, torch subset sums) against the numba
   construction: time, kept entries, identical tickets in exact mode.
4. The GPT-2-small-shaped attention ticket (Otsuka et al. 2025; 768 wide, 12 heads of
   64, blocks of 20 units, |entry - sum| <= 1e-4, virtual source) built with
   ``otsuka2025.construct(..., backend="torch")`` against numba: time, peak GPU memory.

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


def construction_table(widths: Sequence[int], n: int, *, device: str, seed: int = 0,
                       exact_n: int | None = None) -> str:
    """Table 3: the Pensia ticket built end to end on the device against numba (same seed)."""
    from slth.constructions import bounded_target, pensia2020

    target = bounded_target(tuple(widths), rng=seed)
    rows = ["| mode | backend | time (s) | kept | same kept as numba | same forward |",
            "|---|---|---:|---:|---|---|"]
    x = np.random.default_rng(seed).uniform(-1, 1, (256, widths[0]))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    pensia2020.construct(bounded_target((4, 3, 2), rng=0), n=4, virtual=True, rng=0,
                         backend="torch", device=device)  # warm the device
    for mode, kw in (("eps 0.01", {"n": n, "weight_eps": 0.01, "on_failure": "report"}),
                     ("exact", {"n": exact_n or n})):
        t0 = time.perf_counter()
        cpu = pensia2020.construct(target, virtual=True, rng=seed, **kw)
        t_cpu = time.perf_counter() - t0
        t0 = time.perf_counter()
        dev = pensia2020.construct(target, virtual=True, rng=seed, backend="torch",
                                   device=device, **kw)
        t_dev = time.perf_counter() - t0
        if mode == "exact":
            same = str(all(np.array_equal(cpu.kept[k], dev.kept[k]) for k in cpu.kept))
            fwd = str(bool(np.array_equal(cpu.forward(x), dev.forward(x))))
        else:  # the torch solver solves eps mode exactly: other (never worse) subsets
            worse = max(float((d - c).max()) for d, c in zip(dev.weight_errors,
                                                             cpu.weight_errors, strict=True))
            same, fwd = f"n/a (max error - numba's: {worse:.2g})", "n/a"
        rows.append(f"| {mode} | numba (CPU) | {t_cpu:.2f} | {cpu.n_kept:,} | - | - |")
        rows.append(f"| {mode} | torch ({device}) | {t_dev:.2f} | {dev.n_kept:,} | {same} | "
                    f"{fwd} |")
    return "\n".join([f"Pensia ticket of a {'-'.join(map(str, widths))} target built end to "
                      f"end (virtual source, seed {seed}, n = {n}; exact mode n = "
                      f"{exact_n or n})", "", *rows])


def attention_table(d: int, heads: int, dh: int, block: int, *, device: str, seed: int = 0,
                    weight_eps: float = 1e-4) -> str:
    """Table 4: the attention ticket (Otsuka et al. 2025) on the device against numba."""
    import torch

    from benchmarks.gpt2_attention import scaled_target
    from slth.constructions import otsuka2025

    target = scaled_target(d, heads, dh, 16, rng=seed)
    kw = {"n": d * block, "virtual": True, "rng": seed, "weight_eps": weight_eps,
          "on_failure": "report"}
    otsuka2025.construct(scaled_target(4, 1, 2, 3, rng=0), n=8, virtual=True, rng=0,
                         backend="torch", device=device)  # warm the device
    rows = [f"| backend | time (s) | kept | instances missing {weight_eps:g} | peak device "
            "memory (MB) |",
            "|---|---:|---:|---:|---:|"]
    for backend in ("numba", "torch"):
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        tk = otsuka2025.construct(target, **kw, **({"backend": "torch", "device": device}
                                                   if backend == "torch" else {}))
        dt = time.perf_counter() - t0
        peak = (torch.cuda.max_memory_allocated() / 2**20
                if device.startswith("cuda") and backend == "torch" else float("nan"))
        rows.append(f"| {backend}{'' if backend == 'numba' else f' ({device})'} | {dt:.2f} | "
                    f"{tk.n_kept:,} | {tk.params['n_failed']:,} | {peak:,.0f} |")
    return "\n".join([f"Otsuka et al. 2025 ticket of MultiHeadAttention({d}, {d}, heads={heads},"
                      f" d_qk=d_v={dh}), blocks of {block} units, per-entry tolerance "
                      f"{weight_eps}, virtual source (seed {seed})", "", *rows])


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
        print()
        print(construction_table((20, 10, 3), 6, device=device))
        print()
        print(attention_table(8, 2, 4, 6, device=device))
        return 0
    sizes = [("exact", 24, 100_000, None), ("exact", 32, 2_000, None),
             ("eps", 21, 1_000_000, 0.01)]
    print(solver_table(sizes, device=device))
    print()
    print(evaluation_table((784, 500, 10), 21, args.inputs, device=device))
    print()
    print(construction_table((784, 500, 10), 21, device=device))
    print()
    print(attention_table(768, 12, 64, 20, device=device))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
