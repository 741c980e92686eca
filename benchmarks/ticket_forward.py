"""Ticket forward pass (CSR for sparse layers) against the dense forward of source * mask.

The ticket has the shape of the Pensia et al. (2020, Theorem 1) construction for their
784-500-10 experiment with n = 21 samples per weight: source widths
(784, 784*2*21, 500, 500*2*21, 10) = (784, 32928, 500, 21000, 10), about 53M weights.
The masks are *structurally* those of the construction but are not solved from subset
sums (this benchmark times the forward pass only):

* layers 0 and 2 (first of each pair): block-diagonal, hidden unit k reads only input
  k // (2 n): exactly one kept weight per hidden unit (density 1 / d_in);
* layers 1 and 3 (subset-sum layers): each weight kept with probability 1/2, the typical
  size of a subset-sum solution.

Both passes run in this process on the same inputs, in chunks of ``--chunk`` inputs
(activations of the 32928-wide layer take 263 MB per 1,000 inputs). ``--quick`` uses
n = 5 samples per weight and 2,000 inputs.

Usage::

    python benchmarks/ticket_forward.py [--quick] [--inputs N] [--chunk C] [--seed S]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np
import scipy.sparse as sp

from slth.nets import MLP
from slth.ticket import Ticket


def pensia_shaped_ticket(d: tuple[int, ...], n: int, *, rng: int) -> Ticket:
    """A ticket with the widths and mask structure of the Pensia et al. 2020 construction.

    Parameters
    ----------
    d : tuple of int
        Target widths, e.g. (784, 500, 10).
    n : int
        Samples per weight; each target layer d_in -> d_out becomes source layers
        d_in -> 2 n d_in -> d_out.
    rng : int
        Seed of the source (U[-1, 1] entries) and of the subset-sum-layer masks.

    Returns
    -------
    Ticket
    """
    widths = [d[0]]
    for d_out in d[1:]:
        widths += [2 * n * widths[-1], d_out]
    source = MLP.random(widths, rng=rng)
    gen = np.random.default_rng(rng + 1)
    masks = []
    for l, w in enumerate(source.weights):
        if l % 2 == 0:  # block-diagonal: unit k reads input k // (2 n)
            m = np.zeros(w.shape, dtype=bool)
            m[np.arange(w.shape[0]), np.arange(w.shape[0]) // (2 * n)] = True
        else:
            m = gen.random(w.shape) < 0.5
        masks.append(m)
    return Ticket(
        source,
        masks,
        construction="pensia2020-shaped",
        params={"n": n, "note": "block-diagonal + Bernoulli(1/2) masks, no subset sums"},
        target_widths=tuple(d),
        layer_map=tuple((2 * l, 2 * l + 1) for l in range(len(d) - 1)),
    )


def _chunked(f, x: np.ndarray, chunk: int) -> tuple[np.ndarray, float]:
    out = []
    t0 = time.perf_counter()
    for s in range(0, x.shape[0], chunk):
        out.append(f(x[s : s + chunk]))
    return np.concatenate(out), time.perf_counter() - t0


def _op_bytes(op) -> int:
    if sp.issparse(op):
        return op.data.nbytes + op.indices.nbytes + op.indptr.nbytes
    return op.nbytes


def main(*, quick: bool = False, inputs: int | None = None, chunk: int = 1000, seed: int = 0):
    """Build the ticket, time both forward passes, print a table."""
    n = 5 if quick else 21
    n_inputs = inputs if inputs is not None else (2000 if quick else 10_000)
    t0 = time.perf_counter()
    ticket = pensia_shaped_ticket((784, 500, 10), n, rng=seed)
    t_build = time.perf_counter() - t0
    gen = np.random.default_rng(seed + 2)
    x = gen.uniform(-1, 1, (n_inputs, 784))
    x /= np.linalg.norm(x, axis=1, keepdims=True)

    t0 = time.perf_counter()
    ticket.forward(x[:1])  # builds and caches the per-layer operators
    t_ops = time.perf_counter() - t0
    ops = ticket._operators("auto")
    ticket_bytes = sum(_op_bytes(op) + (0 if b is None else b.nbytes) for op, b in ops)
    kinds = ["csr" if sp.issparse(op) else "dense" for op, _ in ops]

    t0 = time.perf_counter()
    dense_net = ticket.network()
    t_net = time.perf_counter() - t0
    dense_bytes = sum(p.nbytes for p in dense_net.parameters())

    y_ticket, t_ticket = _chunked(ticket.forward, x, chunk)
    y_dense, t_dense = _chunked(dense_net.forward, x, chunk)
    err = float(np.abs(y_ticket - y_dense).max())
    scale = float(np.abs(y_dense).max())
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

    dens = ", ".join(f"{d:.4f}" for d in ticket.layer_density())
    print(f"ticket: source widths {ticket.source.widths} ({ticket.n_source_params:,} weights), "
          f"{'QUICK (n=5)' if quick else 'full size (n=21)'}")
    print(f"        kept {ticket.n_kept:,} (density {ticket.density:.4f}); per layer: {dens}")
    print(f"        layer operators: {', '.join(kinds)}")
    print(f"setup:  source + masks {t_build:.1f} s, ticket operators {t_ops:.1f} s, "
          f"dense source*mask {t_net:.1f} s")
    print()
    print(f"forward of {n_inputs:,} inputs (chunks of {chunk}), float64, same process")
    print(f"{'pass':<28}{'time (s)':>10}{'inputs/s':>12}{'weights (MB)':>14}")
    print(f"{'dense  source*mask':<28}{t_dense:>10.2f}{n_inputs / t_dense:>12,.0f}"
          f"{dense_bytes / 2**20:>14.1f}")
    print(f"{'ticket (csr+dense)':<28}{t_ticket:>10.2f}{n_inputs / t_ticket:>12,.0f}"
          f"{ticket_bytes / 2**20:>14.1f}")
    print(f"{'speedup (dense / ticket)':<28}{t_dense / t_ticket:>10.2f}x"
          f"{'':>11}{dense_bytes / ticket_bytes:>13.1f}x")
    print(f"max |ticket - dense| = {err:.2e} (max |output| = {scale:.2e}); "
          f"peak RSS {peak_gb:.2f} GB")
    return {"t_dense": t_dense, "t_ticket": t_ticket, "max_abs_diff": err}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 5, 2,000 inputs")
    parser.add_argument("--inputs", type=int, default=None, help="number of inputs")
    parser.add_argument("--chunk", type=int, default=1000, help="inputs per forward call")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(quick=args.quick, inputs=args.inputs, chunk=args.chunk, seed=args.seed)
    sys.exit(0)
