"""A strong lottery ticket of a GPT-2-small-shaped attention layer (768 wide, 12 heads of 64).

Otsuka et al. (AAAI-26, arXiv 2511.04217), Theorem 3's construction
(:mod:`slth.constructions.otsuka2025`) for a random bias-free target
``MultiHeadAttention(768, 768, heads=12, d_qk=64, d_v=64)`` whose per-head
merged matrices are scaled to spectral norm 1 (the theorem's assumption), over a
*virtual* source (entries computed on demand by Philox; query/key weights
U[-n^(1/4), n^(1/4)], value/output U[-1, 1]) with ``n_qk = n_v = 768 m`` per
head, i.e. blocks of ``m`` units per input coordinate (default 20). Every merged
entry's subset sum is solved to ``weight_eps`` (default 1e-4: the merged entries
of a 768 x 768 matrix of spectral norm 1 are about 0.04, so Pensia et al.'s
per-weight 0.01 would be a 25% error; 20 candidates reach 1e-4 almost always).
Theorem 3's own tolerances at eps = 0.1 and alpha = sqrt(768) would need blocks
of about 160 (query/key) and 110 (value/output) units with C = 6
(``slth.bounds.otsuka2025_widths``), a source 6-8x this one.

Printed: the CPU and its vector features, build time and phases, peak memory,
instances and failures, kept entries, the largest merged-entry error, and the
per-token output error on random sequences of unit-norm tokens at two lengths
(the theorem's error does not depend on T).

Run (from the repository root)::

    python -m benchmarks.gpt2_attention             # 12 heads, minutes on 2 cores
    python -m benchmarks.gpt2_attention --quick     # 96 wide, 2 heads: seconds
    python -m benchmarks.gpt2_attention --block-ff  # a whole GPT-2-small-shaped block

``--block-ff`` builds a whole normalisation-free transformer block instead
(``transformer_block(768, 12, 64, 64, 3072)``: the attention as above and F =
768-3072-768 by Pensia et al.'s construction with ``--n-ff`` units per sign part,
spectral norms 1, every F weight to the same ``weight_eps``), over one virtual
source (F read on demand through Pensia's virtual path).
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc
from collections.abc import Sequence

import numpy as np

from slth.constructions import otsuka2025
from slth.nets import MultiHeadAttention, Network, merged_matrices

from .construct_mlp import cpu_description
from .subset_sum import machine_lines


def scaled_target(d: int, heads: int, dh: int, T: int, *, rng: int) -> Network:
    """A random bias-free attention with every head's ||qk||_2 = ||vo||_2 = 1."""
    layer = MultiHeadAttention(d, d, heads, dh, dh)
    net = Network.random([layer], input_shape=(T, d), rng=rng)
    local = {k.split(".")[-1]: v for k, v in net.params.items()}
    qk, vo = merged_matrices(layer, local)
    s_qk = 1.0 / max(float(np.linalg.norm(M, 2)) for M in qk)
    s_vo = 1.0 / max(float(np.linalg.norm(M, 2)) for M in vo)
    factor = {"q_weight": s_qk ** 0.5, "k_weight": s_qk ** 0.5, "v_weight": s_vo ** 0.5,
              "out_weight": s_vo ** 0.5}
    return net.with_params({k: v * factor[k.split(".")[-1]] for k, v in net.params.items()})


def block_target(attention: Network, d_ff: int, *, rng: int) -> Network:
    """``transformer_block`` around a scaled attention: F = d-d_ff-d with spectral norms 1."""
    from slth.constructions import bounded_target
    from slth.nets import transformer_block

    (T, d) = attention.input_shape
    lay = attention.layers[0][1]
    layers = transformer_block(d, lay.heads, lay.d_qk, lay.d_v, d_ff)
    f = bounded_target((d, d_ff, d), rng=rng + 1)
    params = {f"layers.0.body.0.{k.split('.')[-1]}": v for k, v in attention.params.items()}
    params["layers.1.body.0.weight"] = f.weights[0]
    params["layers.1.body.2.weight"] = f.weights[1]
    return Network(layers, params=params, input_shape=(T, d))


def _row(name: str, value: str) -> str:
    return f"{name:<52} {value}"


def unit_tokens(batch: int, T: int, d: int, *, rng: int) -> np.ndarray:
    """``(batch, T, d)`` sequences of unit-norm tokens (Gaussian directions)."""
    x = np.random.default_rng(rng).standard_normal((batch, T, d))
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def main(argv: Sequence[str] | None = None) -> str:
    """Run the benchmark; return (and print) the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="96 wide, 2 heads of 8 (seconds)")
    p.add_argument("--heads", type=int, default=None, help="heads of the target (default 12)")
    p.add_argument("--block", type=int, default=20, help="units per input coordinate, m")
    p.add_argument("--weight-eps", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--block-ff", action="store_true",
                   help="a whole transformer block (attention and a 4x-wide F)")
    p.add_argument("--n-ff", type=int, default=21, help="F's units per sign part (Pensia)")
    args = p.parse_args(argv)
    d, heads, dh = (96, 2, 8) if args.quick else (768, 12, 64)
    if args.heads is not None:
        heads = args.heads
    n = d * args.block
    target = scaled_target(d, heads, dh, 16, rng=args.seed)
    extra: dict[str, int] = {}
    if args.block_ff:
        target = block_target(target, 4 * d, rng=args.seed)
        extra = {"n_ff": args.n_ff}
    # warm the numba kernels (solver, Philox) so that compilation does not count
    otsuka2025.construct(scaled_target(4, 1, 2, 3, rng=0), n=4 * args.block,
                         weight_eps=args.weight_eps, virtual=True, rng=0, on_failure="report")
    timings: dict[str, float] = {}
    tracemalloc.start()
    t0 = time.perf_counter()
    ticket = otsuka2025.construct(target, n=n, weight_eps=args.weight_eps, virtual=True,
                                  rng=args.seed, timings=timings, on_failure="report", **extra)
    build = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    pr = ticket.params
    src = ticket.source
    worst = max(float(e.max()) for e in ticket.errors.values())
    lines = [f"- CPU: {cpu_description()}", *machine_lines(), "",
             f"Otsuka et al. 2025 ticket of a random "
             f"{'transformer block with ' if args.block_ff else ''}MultiHeadAttention({d}, {d}, "
             f"heads={heads}, d_qk=d_v={dh})"
             f"{f' and F = {d}-{4 * d}-{d} (n_ff = {args.n_ff})' if args.block_ff else ''} "
             f"with per-head ||qk||_2 = ||vo||_2 = 1; source n_qk = n_v = {n} "
             f"per head (blocks of {args.block}), per-entry tolerance {args.weight_eps}, "
             f"virtual source (seed {args.seed})", "",
             _row("quantity", "value"), _row("-" * 52, "-" * 24),
             _row("source weights (virtual; dense float64 would be)",
                  f"{src.n_params:,} ({8 * src.n_params / 1e9:.2f} GB)"),
             _row("subset-sum instances", f"{pr['n_instances']:,}"),
             _row("instances missing the tolerance", f"{pr['n_failed']:,}"),
             _row("largest recorded error (merged entry or F weight)", f"{worst:.3g}"),
             _row("time: solve and gather (s)", f"{timings['solve']:.2f}"),
             _row("time: assemble Ticket, merged errors (s)", f"{timings['ticket']:.2f}"),
             _row("time: build total (s)", f"{build:.2f}"),
             _row("peak memory, tracemalloc, build (MB)", f"{peak / 2**20:,.0f}"),
             _row("peak RSS of the process so far (MB)", f"{rss:,.0f}"),
             _row("kept entries", f"{ticket.n_kept:,}"),
             _row("density", f"{ticket.density:.3g}")]
    for T, batch in ((16, 8), (256, 2)):
        x = unit_tokens(batch, T, d, rng=args.seed + T)
        t0 = time.perf_counter()
        y = otsuka2025.sequence_forward(ticket, x)
        t_fwd = time.perf_counter() - t0
        ref = otsuka2025.sequence_forward(target, x)
        err = np.linalg.norm(y - ref, axis=-1)
        scale = float(np.linalg.norm(ref, axis=-1).mean())
        lines += [_row(f"T = {T}: ticket forward of {batch} sequences (s)", f"{t_fwd:.2f}"),
                  _row(f"T = {T}: max / mean per-token error (l2)",
                       f"{err.max():.3g} / {err.mean():.3g}"),
                  _row(f"T = {T}: mean per-token ||target output||", f"{scale:.3g}")]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
