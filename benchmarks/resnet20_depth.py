"""A ResNet-20-shaped target as a depth L+1 ticket (Burkholz 2022) over a virtual source.

The target (:func:`resnet20_target`) has CIFAR-10 shapes: 3x32x32 inputs, a
stem ``Conv2d(3, 16, 3, padding=1)``, three stages of three basic blocks
``[conv3x3, ReLU, conv3x3]`` with 16, 32 and 64 channels, then
``AvgPool2d(8)``, ``Flatten`` and ``Dense(64, 10)``: 19 convolutions and one
Dense layer, 0.27M parameters, as ResNet-20 (He et al. 2016, CIFAR variant).
slth's variant, stated: ResNet-20's first block of stages 2 and 3 downsamples
(a stride-2 convolution with a 1x1 projection on the skip), which is not a
:class:`~slth.nets.base.Residual` of equal shapes; here it is a plain block
``[conv3x3 stride 2, ReLU, conv3x3]`` without the skip (the projection
shortcuts are dropped: 2 x 1x1 convolutions, 2.5k parameters fewer). The
other seven blocks (the three of stage 1, the last two of stages 2 and 3) are
``Residual`` blocks, each followed by a ReLU. No
batch normalisation (a trained net's would be folded into the kernels); the
convolutions have no bias, the Dense layer has one.

Weights: i.i.d. U[-1, 1], each kernel then rescaled to l1 norm 1 per output
channel (``max_i sum_{j,u,v} |K[i, j, u, v]| = 1``, the hypothesis of da Cunha
et al. 2022 and within burkholz2022's subset-sum range ``|W| <= 1``; it also
makes every layer 1-Lipschitz in the l_inf norm, so the activations stay of
the input's order through the 9 skips).

The ticket: :func:`slth.constructions.burkholz2022.construct` with ``rho=15``
(the public code's width), exact mode (each instance's optimum over its 15
candidates), ``virtual=True``: the source is a
:class:`~slth.sources.VirtualNetwork` of the layout
(:func:`~slth.constructions.burkholz2022.source_architecture`), only the
entries the instances read are computed. Measured: build wall time (numba
kernels warmed on a small target first, so compilation is not counted), the
process's peak resident memory (``ru_maxrss``, whole process, so an upper
bound on the build's), source parameters, kept entries, and the output error on
16 random inputs of l2 norm 1 (absolute l2 of ``f - g`` per input and the
relative ``max |f - g| / max |f|`` over entries and inputs). With
``--certify`` also the certified sup bound on the unit ball.

Run (from the repository root)::

    python -m benchmarks.resnet20_depth              # ResNet-20 (a minute or two)
    python -m benchmarks.resnet20_depth --stages 1   # stem and stage 1 only
    python -m benchmarks.resnet20_depth --quick      # a 8x8, 4/8/8-channel miniature, seconds
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from typing import Any

import numpy as np

from benchmarks.construct_mlp import cpu_description
from slth.constructions import burkholz2022, dacunha2022
from slth.errors import InputError, format_value
from slth.nets.base import Network, Residual
from slth.nets.conv import AvgPool2d, Conv2d, Flatten
from slth.nets.layers import Dense, ReLU

__all__ = ["COLUMNS", "main", "measure", "resnet20_target"]

#: Columns of the printed table.
COLUMNS = ("target", "construction", "target params", "width", "source params",
           "source depth", "kept", "build (s)", "peak RSS (MiB)", "max l2 error",
           "max rel. error", "certified")


def _l1_rows(w: np.ndarray) -> np.ndarray:
    """``w`` rescaled to l1 norm 1 per output channel (row)."""
    flat = w.reshape(w.shape[0], -1)
    return (flat / np.abs(flat).sum(axis=1, keepdims=True)).reshape(w.shape)


def resnet20_target(*, rng: int = 0, channels: tuple[int, ...] = (16, 32, 64),
                    blocks: int = 3, image: int = 32, classes: int = 10,
                    stages: int | None = None) -> Network:
    """The ResNet-20-shaped target (module docstring), random, kernels of l1 norm 1.

    Parameters
    ----------
    rng : int, default 0
        Seed of the target's weights.
    channels : tuple of int, default (16, 32, 64)
        Channels per stage.
    blocks : int, default 3
        Basic blocks per stage (the first of stages 2, 3, ... downsamples, without skip).
    image : int, default 32
        Input height and width (3 channels).
    classes : int, default 10
        Outputs of the final Dense layer.
    stages : int, optional
        Keep only the first ``stages`` stages (then the pooling and the Dense layer).

    Returns
    -------
    Network
    """
    n_st = len(channels) if stages is None else int(stages)
    if not 1 <= n_st <= len(channels):
        raise InputError(f"`stages` must be an int in [1, {len(channels)}]; received "
                         f"{format_value(stages)}")
    c = channels[0]
    layers: list[Any] = [Conv2d(3, c, 3, padding=1, bias=False), ReLU()]
    size = image
    for s in range(n_st):
        c_out = channels[s]
        for b in range(blocks):
            if s > 0 and b == 0:   # downsampling block: no Residual of equal shapes
                layers += [Conv2d(c, c_out, 3, stride=2, padding=1, bias=False), ReLU(),
                           Conv2d(c_out, c_out, 3, padding=1, bias=False), ReLU()]
                size = (size + 1) // 2
            else:
                layers += [Residual((Conv2d(c_out, c_out, 3, padding=1, bias=False), ReLU(),
                                     Conv2d(c_out, c_out, 3, padding=1, bias=False))), ReLU()]
            c = c_out
    layers += [AvgPool2d(size), Flatten(), Dense(c, classes)]
    net = Network.random(layers, rng=rng, input_shape=(3, image, image))
    params = {k: (_l1_rows(np.asarray(v)) if k.endswith("weight") else 0.1 * np.asarray(v))
              for k, v in net.params.items()}
    return net.arch.with_params(params)


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(target: Network, *, construction: str = "burkholz2022", width: int = 15,
            seed: int = 0, n_inputs: int = 16, certify: bool = False,
            label: str = "ResNet-20") -> dict[str, Any]:
    """Build a ticket over a virtual source and measure it (module docstring).

    Parameters
    ----------
    target : Network
    construction : {"burkholz2022", "dacunha2022"}, default "burkholz2022"
        Depth L+1 (``rho = width``) or depth 2l (``n = width``), both exact mode.
    width : int, default 15
    seed : int, default 0
        Seed of the virtual source and of the inputs.
    n_inputs : int, default 16
    certify : bool, default False
        Also compute the construction's certified bound on the unit ball.
    label : str
        Name in the table.

    Returns
    -------
    dict
        Keyed as :data:`COLUMNS`, plus ``"timings"``, ``"forward (s)"`` and
        ``"worst weight error"``.
    """
    mod = {"burkholz2022": burkholz2022, "dacunha2022": dacunha2022}.get(construction)
    if mod is None:
        raise InputError(f"`construction` must be 'burkholz2022' or 'dacunha2022'; received "
                         f"{format_value(construction)}")
    timings: dict[str, float] = {}
    kw = {"rho": width} if mod is burkholz2022 else {"n": width}
    t0 = time.perf_counter()
    ticket = mod.construct(target, rng=seed, virtual=True, timings=timings, **kw)
    build = time.perf_counter() - t0
    peak = _peak_mib()
    g = np.random.default_rng(seed + 1)
    x = g.standard_normal((n_inputs, *target.input_shape))
    x /= np.linalg.norm(x.reshape(n_inputs, -1), axis=1).reshape(-1, 1, 1, 1)
    f = target.forward(x)
    t1 = time.perf_counter()
    y = ticket.forward(x)
    t_fwd = time.perf_counter() - t1
    diff = np.abs(f - y)
    cert = mod.certified_bound(target, ticket) if certify else None
    src = ticket.source
    depth = sum(isinstance(ly, (Conv2d, Dense)) for _, ly in src.named_layers())
    name = "burkholz2022 (L+1)" if mod is burkholz2022 else "dacunha2022 (2l)"
    return {
        "target": label,
        "construction": name,
        "target params": target.n_params,
        "width": f"rho={width}" if mod is burkholz2022 else f"n={width}",
        "source params": ticket.n_source_params,
        "source depth": depth,
        "kept": ticket.n_kept,
        "build (s)": build,
        "peak RSS (MiB)": max(peak, _peak_mib()),
        "max l2 error": float(np.linalg.norm((f - y).reshape(n_inputs, -1), axis=1).max()),
        "max rel. error": float(diff.max() / np.abs(f).max()),
        "certified": cert,
        "timings": timings,
        "forward (s)": t_fwd,
        "worst weight error": float(ticket.params["worst_error"]),
    }


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, (int, np.integer)):
        return f"{v:,}"
    return f"{v:.3g}"


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (``python -m benchmarks.resnet20_depth``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a miniature (8x8, 4/8/8 channels)")
    ap.add_argument("--rho", type=int, default=15, help="L+1 copies (and 2l's n)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--certify", action="store_true", help="also the certified bounds")
    ap.add_argument("--no-prefix", action="store_true",
                    help="skip the stage-1 and stages-1-2 targets (error against depth)")
    ap.add_argument("--no-2l", action="store_true", help="skip the dacunha2022 row")
    args = ap.parse_args(argv)
    # warm the numba kernels on a miniature so that compilation is not counted
    mini = resnet20_target(rng=1, channels=(2, 2), blocks=2, image=4)
    burkholz2022.construct(mini, rho=3, rng=0, virtual=True)
    dacunha2022.construct(mini, n=3, rng=0, virtual=True)
    if args.quick:
        kw: dict[str, Any] = {"channels": (4, 8, 8), "blocks": 2, "image": 8}
        base = "miniature (8x8, 4/8/8 ch, 2 blocks)"
    else:
        kw, base = {}, "ResNet-20"
    configs = [] if args.no_prefix else [(1, f"{base}, stage 1"), (2, f"{base}, stages 1-2")]
    load0 = os.getloadavg()[0]
    rows = []
    for stages, label in configs:
        rows.append(measure(resnet20_target(rng=args.seed, stages=stages, **kw),
                            width=args.rho, seed=args.seed, certify=args.certify,
                            label=label))
    target = resnet20_target(rng=args.seed, **kw)
    full = measure(target, width=args.rho, seed=args.seed, certify=args.certify, label=base)
    rows.append(full)
    if not args.no_2l:
        rows.append(measure(target, construction="dacunha2022", width=args.rho, seed=args.seed,
                            certify=args.certify, label=base))
    load1 = os.getloadavg()[0]
    tm = full["timings"]
    print(f"Tickets of a ResNet-20-shaped target over virtual sources, exact mode, source seed "
          f"{args.seed}; errors on 16 random inputs of l2 norm 1")
    print(f"CPU: {cpu_description()}; load average {load0:.2f} before, {load1:.2f} after "
          "(a shared machine: timings approximate); peak RSS is the process's so far")
    print("")
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for r in rows:
        print("| " + " | ".join(_fmt(r[c]) for c in COLUMNS) + " |")
    print("")
    print(f"{base}, L+1: build phases draw {tm['draw']:.3g} s, solve {tm['solve']:.3g} s, "
          f"ticket {tm['ticket']:.3g} s; ticket forward on 16 inputs {full['forward (s)']:.3g} "
          f"s; worst subset-sum error {full['worst weight error']:.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
