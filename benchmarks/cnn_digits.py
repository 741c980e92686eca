"""da Cunha et al. (ICLR 2022) CNN tickets of a LeNet-style target trained on digits.

The target is trained with torch on scikit-learn's bundled 8x8 digits
(:func:`sklearn.datasets.load_digits`, 1797 images, pixel values / 16, a fixed
seeded 70/30 train/test split): ``Conv2d(1, 6, 3, padding=1, bias=False)``,
ReLU, ``MaxPool2d(2)``, ``Conv2d(6, 16, 3, padding=1, bias=False)``, ReLU,
``MaxPool2d(2)``, Flatten, ``Dense(64, 32)``, ReLU, ``Dense(32, 10)``. The
convolutions are bias-free because :mod:`slth.constructions.dacunha2022`
refuses a biased convolution with ``padding > 0`` (its constant channels are
0 in the border taps); the Dense layers keep their biases.

The construction's hypothesis (l1 norm <= 1 per output channel) is then met
by rescaling: layer l's kernel is divided by ``s_l = max_i ||K_l[i]||_1`` and
its bias by ``s_1 ... s_l``. A ReLU network is positively homogeneous
(``relu(c z) = c relu(z)`` for ``c > 0``, pools commute with positive scaling),
so the rescaled network computes ``f(x) / (s_1 ... s_L)``: the logits are
scaled by one positive number, the argmax, hence the accuracy, is unchanged
(the table prints both accuracies and the factors).

For every n (exact subset sum, one seeded source each) the table gives the
relative weight error (max over arrays of ``max |p - p~| / max |p|``, p the
target's array and p~ the ticket's realised one, as in the authors' code; over
the kernels and Dense weights, not the biases: those were divided by ``s_1 ...
s_l``, about 1e-3 of the weights, so their relative error says little), the
relative output error ``max |f - g| / max |f|`` (max over entries and test
images) of the conv part (everything up to Flatten) and of the whole network,
the ticket's test accuracy and its argmax agreement with the target, and the
build time, beside the published MNIST curve of da Cunha et al. (conv part,
decoded from their plots, ``THEORY.md``). Their target is LeNet-5 on MNIST
and each weight gets fresh draws (no random CNN); this one is a smaller
target on 8x8 digits, pruned from one random CNN: the curves are comparable
in shape and order of magnitude only.

Run (from the repository root)::

    python -m benchmarks.cnn_digits            # n = 5..30, about a minute on 2 cores
    python -m benchmarks.cnn_digits --quick    # n = 5, 10 and a smaller target, seconds
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.construct_mlp import cpu_description
from slth.constructions import dacunha2022
from slth.nets.base import Network

__all__ = ["PUBLISHED", "DigitsTarget", "digits_table", "main", "prefix", "rescale",
           "train_target"]

#: The published MNIST curve of da Cunha et al. (conv part; THEORY.md), by n.
PUBLISHED: dict[int, dict[str, float]] = {
    5: {"train": 0.54, "test": 0.52, "weight": 0.89},
    10: {"train": 0.15, "test": 0.13, "weight": 0.57},
    15: {"train": 5.8e-3, "test": 5.3e-3, "weight": 1.8e-2},
    20: {"train": 3.7e-4, "test": 3.3e-4, "weight": 7.3e-4},
    25: {"train": 2.8e-5, "test": 2.8e-5, "weight": 7.7e-5},
    30: {"train": 2.5e-6, "test": 2.4e-6, "weight": 7.7e-6},
}

#: Column names of :func:`digits_table`'s markdown table.
COLUMNS = ("n", "source params", "kept", "weight err conv", "weight err all",
           "output err conv", "output err all", "ticket acc", "agreement", "build (s)",
           "paper weight err", "paper output err (test)")


@dataclass(frozen=True)
class DigitsTarget:
    """A trained, rescaled target and its data.

    Attributes
    ----------
    net : Network
        The rescaled slth network (kernels of l1 norm <= 1 per output channel).
    conv_end : int
        Number of leading layers forming the conv part (through Flatten).
    factors : tuple of float
        ``s_l`` per parametrised layer (the kernel was divided by it).
    x_train, y_train, x_test, y_test : numpy.ndarray
        Images ``(N, 1, 8, 8)`` in [0, 1] and labels.
    acc_torch, acc_scaled : float
        Test accuracy of the trained torch model and of the rescaled slth net.
    train_s : float
        Training time in seconds.
    epochs : int
        Training epochs.
    """

    net: Network
    conv_end: int
    factors: tuple[float, ...]
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    acc_torch: float
    acc_scaled: float
    train_s: float
    epochs: int


def _data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float64) / 16.0)[:, None, :, :]
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(y))
    cut = round(0.7 * len(y))
    tr, te = perm[:cut], perm[cut:]
    return x[tr], y[tr], x[te], y[te]


def rescale(net: Network) -> tuple[Network, tuple[float, ...]]:
    """Divide each kernel by its largest per-output-channel l1 norm (biases cumulatively).

    Parameters
    ----------
    net : Network
        A sequential ReLU network of Conv2d/Dense/ReLU/pool/Flatten layers.

    Returns
    -------
    (Network, tuple of float)
        The network computing ``net(x) / prod(factors)`` and the factors ``s_l``.
    """
    params = dict(net.params)
    factors: list[float] = []
    cum = 1.0
    for name, _ in net.layers:
        key = f"layers.{name}.weight"
        if key not in params:
            continue
        w = np.asarray(params[key], dtype=np.float64)
        s = float(np.abs(w.reshape(w.shape[0], -1)).sum(axis=1).max())
        cum *= s
        factors.append(s)
        params[key] = w / s
        bkey = f"layers.{name}.bias"
        if bkey in params:
            params[bkey] = np.asarray(params[bkey], dtype=np.float64) / cum
    return Network(net.layers, params, net.input_shape), tuple(factors)


def prefix(net: Any, k: int) -> Network:
    """The network of ``net``'s first ``k`` layers (a Network, or a Ticket's pruned one).

    Parameters
    ----------
    net : Network
    k : int
        Number of leading layers kept.

    Returns
    -------
    Network
    """
    layers = tuple(net.layers[:k])
    names = {f"layers.{name}." for name, _ in layers}
    params = {key: v for key, v in net.params.items()
              if any(key.startswith(p) for p in names)}
    return Network(layers, params, net.input_shape)


def train_target(*, quick: bool = False, seed: int = 0) -> DigitsTarget:
    """Train the LeNet-style target on digits (seeded, deterministic) and rescale it.

    Parameters
    ----------
    quick : bool, default False
        A smaller target (4 and 8 channels, Dense 32 -> 16 -> 10), 4 epochs.
    seed : int, default 0
        Seed of the split, the initialisation and the batch order.

    Returns
    -------
    DigitsTarget
    """
    import torch
    from torch import nn

    from slth.torch import from_module

    # seeded and deterministic, leaving the caller's global torch state as it was
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        try:
            x_tr, y_tr, x_te, y_te = _data(seed)
            c1, c2, h = (4, 8, 16) if quick else (6, 16, 32)
            epochs = 4 if quick else 10
            model = nn.Sequential(
                nn.Conv2d(1, c1, 3, padding=1, bias=False), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(c1, c2, 3, padding=1, bias=False), nn.ReLU(), nn.MaxPool2d(2),
                nn.Flatten(), nn.Linear(4 * c2, h), nn.ReLU(), nn.Linear(h, 10),
            )
            xt, yt = torch.from_numpy(x_tr).float(), torch.from_numpy(y_tr)
            opt = torch.optim.Adam(model.parameters(), lr=1e-2)
            gen = torch.Generator().manual_seed(seed)
            t0 = time.perf_counter()
            for _ in range(epochs):
                for idx in torch.randperm(len(yt), generator=gen).split(64):
                    opt.zero_grad()
                    nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
                    opt.step()
        finally:
            torch.use_deterministic_algorithms(was_deterministic)
    train_s = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        acc_t = float((model(torch.from_numpy(x_te).float()).argmax(1).numpy() == y_te).mean())
    net = from_module(model, input_shape=(1, 8, 8))
    scaled, factors = rescale(net)
    acc_s = float((scaled.forward(x_te).argmax(1) == y_te).mean())
    return DigitsTarget(scaled, 7, factors, x_tr, y_tr, x_te, y_te, acc_t, acc_s, train_s,
                        epochs)


def _rel(f: np.ndarray, g: np.ndarray) -> float:
    return float(np.max(np.abs(f - g)) / np.max(np.abs(f)))


def _weight_rel(target: Network, ticket: Any, keys: list[str]) -> float:
    errs = ticket.errors
    return max(float(np.max(errs[k]) / np.max(np.abs(target.params[k]))) for k in keys)


def digits_rows(tg: DigitsTarget, ns: list[int], *, seed: int = 0) -> list[dict[str, Any]]:
    """Build one exact-mode ticket per n and measure it on the test images.

    Parameters
    ----------
    tg : DigitsTarget
    ns : list of int
        Hidden channels per sign part and input channel.
    seed : int, default 0
        Source seed (``seed + n`` for n).

    Returns
    -------
    list of dict
        One row per n, keyed as :data:`COLUMNS` (floats, ints).
    """
    target = tg.net
    # kernels and weights only: the biases were divided by prod s_k (about 1e-3 of the
    # weights), so a bias solved to the empty subset has relative error 1 at any n
    all_keys = [k for k in target.params if k.endswith(".weight")]
    conv_keys = [k for k in all_keys if int(k.split(".")[1]) < tg.conv_end]
    f_all = target.forward(tg.x_test)
    f_conv = prefix(target, tg.conv_end).forward(tg.x_test)
    y_target = f_all.argmax(1)
    # warm the numba kernels so that compilation does not count as build time
    dacunha2022.construct(prefix(target, 3), n=4, rng=0)
    rows = []
    for n in ns:
        tm: dict[str, float] = {}
        ticket = dacunha2022.construct(target, n=n, rng=seed + n, timings=tm)
        g_all = ticket.forward(tg.x_test)
        copy = int(ticket.layer_map[f"layers.{tg.conv_end - 1}"][0].split(".")[1])
        g_conv = prefix(ticket.network(), copy + 1).forward(tg.x_test)
        pub = PUBLISHED.get(n, {})
        rows.append({
            "n": n,
            "source params": ticket.n_source_params,
            "kept": ticket.n_kept,
            "weight err conv": _weight_rel(target, ticket, conv_keys),
            "weight err all": _weight_rel(target, ticket, all_keys),
            "output err conv": _rel(f_conv, g_conv),
            "output err all": _rel(f_all, g_all),
            "ticket acc": float((g_all.argmax(1) == tg.y_test).mean()),
            "agreement": float((g_all.argmax(1) == y_target).mean()),
            "build (s)": tm["total"],
            "paper weight err": pub.get("weight", float("nan")),
            "paper output err (test)": pub.get("test", float("nan")),
        })
    return rows


def _fmt(v: Any) -> str:
    if isinstance(v, (int, np.integer)):
        return f"{v:,}"
    if v != v:  # nan
        return "-"
    return f"{v:.3g}" if abs(v) < 1e3 else f"{v:,.0f}"


def digits_table(*, quick: bool = False, seed: int = 0) -> tuple[str, list[dict[str, Any]]]:
    """Train, rescale, build the tickets and format the table.

    Parameters
    ----------
    quick : bool, default False
        n in {5, 10} and the smaller target.
    seed : int, default 0

    Returns
    -------
    (str, list of dict)
        The printed text (markdown table included) and the rows.
    """
    ns = [5, 10] if quick else [5, 10, 15, 20, 25, 30]
    load0 = os.getloadavg()[0]
    tg = train_target(quick=quick, seed=seed)
    rows = digits_rows(tg, ns, seed=seed)
    load1 = os.getloadavg()[0]
    layers = ", ".join(repr(ly) for _, ly in tg.net.layers)
    lines = [
        "da Cunha et al. 2022 tickets (exact subset sum, one seeded source per n) of a target "
        f"trained on sklearn digits ({len(tg.y_train)} train / {len(tg.y_test)} test images)",
        f"target: {layers}",
        f"training: {tg.epochs} epochs, Adam lr 1e-2, batch 64, float32, {tg.train_s:.1f} s; "
        f"test accuracy {tg.acc_torch:.4f} (torch), {tg.acc_scaled:.4f} (rescaled slth net)",
        "rescaling factors s_l (kernel / s_l, bias / prod s_k): "
        + ", ".join(f"{s:.4g}" for s in tg.factors)
        + f"; logits scaled by 1/{np.prod(tg.factors):.4g}",
        f"CPU: {cpu_description()}; load average {load0:.2f} before, {load1:.2f} after",
        "relative errors: max over entries and test images of |f - g| / max |f|; weight: max "
        "over arrays of max |p - p~| / max |p|; paper: da Cunha et al., MNIST LeNet-5, conv part",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r[c]) for c in COLUMNS) + " |")
    return "\n".join(lines), rows


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (``python -m benchmarks.cnn_digits``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="n = 5, 10 and a smaller target")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    text, _ = digits_table(quick=args.quick, seed=args.seed)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
