"""The ``slth`` command (also ``python -m slth``).

Subcommands (``slth <command> --help`` explains each, with an example):

- ``slth demo``: solve batches of random subset-sum instances exactly and print
  the median optimal error against n beside the 0.4 sqrt(n) 2^-n law;
- ``slth solve``: subset sums of values and targets from ``.npy`` files (or
  generated), exact or to a tolerance;
- ``slth build``: a ticket for a saved target network with any construction of
  :data:`slth.constructions.REGISTRY`; writes the ticket and the target beside it;
- ``slth eval``: sampled, adversarial (lower bound) and certified (upper bound)
  error of a saved ticket against its target (found beside it by fingerprint);
- ``slth sweep``: build and evaluate tickets of a saved target over a grid of
  construction options and seeds, resumable (a JSON Lines file), on local
  processes or a Dask cluster;
- ``slth check`` and ``slth figures``: the theorem checks and the paper figures
  installed with the package (``slth.proofs_check``, ``slth.figures``; the same
  as ``python -m proofs_check`` / ``python -m figures`` in a checkout), with their
  own options.

``--json`` prints one JSON object instead of the table.

Errors never print a traceback: a bad argument, any :class:`slth.SLTHError`
(an input outside its domain, a request past the memory budget), an unreadable
file or an exhausted memory print one line ``slth: error: ...`` on stderr and
exit with status 2 (130 on Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

import numpy as np

from .errors import InputError, SLTHError
from .subset_sum import DISTRIBUTIONS, EXACT_MAX_N, format_law_table, optimal_error_law

#: Exit status of every error reported by the command.
EXIT_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``slth: error: <subcommand>: <message>``."""

    def error(self, message: str) -> NoReturn:
        where = self.prog.split(" ", 1)[1] + ": " if " " in self.prog else ""
        hint = f" (see `{self.prog} --help`)"
        self.exit(EXIT_ERROR, f"slth: error: {where}{_one_line(message)}{hint}\n")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _int_in(lo: int, hi: int | None, what: str) -> Callable[[str], int]:
    """argparse type: an int in [lo, hi] (hi None: no upper end)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be an int ({what}); received {text!r}"
            ) from None
        if value < lo or (hi is not None and value > hi):
            domain = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
            raise argparse.ArgumentTypeError(
                f"must be an int in {domain} ({what}); received {value}"
            )
        return value

    parse.__name__ = "int"
    return parse


def _demo(args: argparse.Namespace) -> int:
    ns = args.n or list(range(8, 33, 4))
    print(
        f"Exact random subset sum: {args.instances} instances per n, values "
        f"{args.distribution}, targets U[-1, 1], seed {args.seed}\n"
    )
    rows = optimal_error_law(
        ns, instances=args.instances, distribution=args.distribution, rng=args.seed
    )
    print(format_law_table(rows))
    return 0


def _float_in(lo: float, hi: float | None, what: str, *, open_lo: bool = True
              ) -> Callable[[str], float]:
    """argparse type: a finite float in (lo, hi) (or [lo, ...) with ``open_lo=False``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be a number ({what}); received {text!r}") from None
        low_ok = value > lo if open_lo else value >= lo
        if not math.isfinite(value) or not low_ok or (hi is not None and value >= hi):
            left = "(" if open_lo else "["
            domain = f"{left}{lo:g}, {hi:g})" if hi is not None else f"{left}{lo:g}, inf)"
            raise argparse.ArgumentTypeError(
                f"must be a number in {domain} ({what}); received {text}")
        return value

    parse.__name__ = "float"
    return parse


def _describe(text: str, example: str, extra: str = "") -> str:
    """A subcommand's description: ``text`` wrapped to 79 columns, then ``extra`` and examples."""
    import textwrap

    parts = [textwrap.fill(" ".join(text.split()), 79)]
    if extra:
        parts.append(extra)
    parts.append("example:\n" + example)
    return "\n\n".join(parts)


def _emit(args: argparse.Namespace, record: dict[str, Any], lines: Sequence[str]) -> None:
    """Print ``record`` as one JSON object (``--json``) or the human-readable ``lines``."""
    if getattr(args, "json", False):
        print(json.dumps(record, allow_nan=True, default=_json_default))
    else:
        print("\n".join(lines))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    return str(value)


# ---------------------------------------------------------------------- solve
def _solve(args: argparse.Namespace) -> int:
    from .subset_sum import sample, solve_batch

    if args.values is not None:
        values = _load_array(args.values, "--values")
        if values.ndim == 1:
            values = values[None, :]
        if args.targets is None:
            raise InputError("`--targets` must be given with `--values` (a .npy of one target "
                             "per row of the values)")
        targets = _load_array(args.targets, "--targets").reshape(-1)
    else:
        gen = np.random.default_rng(args.seed)
        values = sample(args.distribution, (args.instances, args.n), rng=gen)
        targets = gen.uniform(-1.0, 1.0, args.instances)
    t0 = time.perf_counter()
    res = solve_batch(values, targets, eps=args.eps)
    elapsed = time.perf_counter() - t0
    errors = res.errors
    record = {"instances": int(values.shape[0]), "n": int(values.shape[1]),
              "mode": "exact" if args.eps is None else "eps", "eps": args.eps,
              "max_error": float(errors.max()), "median_error": float(np.median(errors)),
              "n_within_eps": None if args.eps is None else int((errors <= args.eps).sum()),
              "seconds": elapsed}
    if args.out:
        np.savez(args.out, masks=res.masks, totals=res.totals, errors=errors)
        record["out"] = os.fspath(args.out)
    lines = [f"{record['instances']} instances of n = {record['n']} ({record['mode']}"
             f"{'' if args.eps is None else f', eps = {args.eps:g}'}) in {elapsed:.3g} s: "
             f"max |target - sum| = {record['max_error']:.3g}, median "
             f"{record['median_error']:.3g}"]
    if args.eps is not None:
        lines.append(f"within eps: {record['n_within_eps']} of {record['instances']}")
    if args.out:
        lines.append(f"masks, totals and errors written to {args.out}")
    _emit(args, record, lines)
    return 0


def _load_array(path: str, flag: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise InputError(f"`{flag}` must name an existing .npy file; {path!r} does not exist")
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError:
        raise InputError(f"`{flag}` {path!r} is not a pickle-free .npy array") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "iuf":
        raise InputError(f"`{flag}` {path!r} must hold one real array (.npy)")
    return np.asarray(arr, dtype=np.float64)


# ---------------------------------------------------------------------- build / eval
def _parse_options(items: Sequence[str]) -> dict[str, Any]:
    """``key=value`` pairs; values read as JSON (numbers, lists, true/false, null) or text."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.isidentifier():
            raise InputError(f"`--option` must be key=value with a Python name as key (e.g. "
                             f"n=6 or k=[30,40]); received {item!r}")
        try:
            out[key] = json.loads(text)
        except json.JSONDecodeError:
            out[key] = text
    return out


def _mlp_from_arrays(arrays: Mapping[str, np.ndarray], path: str) -> Any:
    """An MLP from arrays ``weights_0, biases_0 (optional), weights_1, ...`` (torch layout)."""
    from .nets.mlp import MLP

    L = 0
    while f"weights_{L}" in arrays:
        L += 1
    if L == 0:
        raise InputError(f"`target` {path!r} holds neither an slth network nor MLP arrays "
                         f"weights_0, weights_1, ... (each (d_out, d_in), biases_l optional); "
                         f"it holds {sorted(arrays)[:8]}")
    return MLP([np.asarray(arrays[f"weights_{l}"], dtype=np.float64) for l in range(L)],
               [np.asarray(arrays[f"biases_{l}"], dtype=np.float64) if f"biases_{l}" in arrays
                else None for l in range(L)])


def _read_target(path: str) -> Any:
    """A target network from a file: an slth network file, MLP arrays, safetensors, torch.

    - an ``.npz`` written by ``Network.save`` / ``MLP.save``;
    - an ``.npz`` of arrays ``weights_0, biases_0, weights_1, ...`` (torch layout
      ``(d_out, d_in)``; biases optional): an MLP;
    - a ``.safetensors`` file of the same arrays (needs the ``safetensors`` package);
    - a ``.pt``/``.pth`` pickled torch ``nn.Sequential``: unpickled by
      ``torch.load(weights_only=False)``, which runs code stored in it, so load only
      files you trust (the help says so).
    """
    from .nets.base import Network
    from .nets.io import _META_KEY as _NETWORK_META
    from .nets.io import mlp_from_network

    if not os.path.isfile(path):
        raise InputError(f"`target` must name an existing file; {path!r} does not exist")
    if path.endswith(".safetensors"):
        try:
            from safetensors.numpy import load_file
        except ImportError:
            raise InputError("`target` is a .safetensors file: reading it needs the "
                             "safetensors package (`pip install safetensors`)") from None
        return _mlp_from_arrays(load_file(path), path)
    if path.endswith((".pt", ".pth")):
        from ._backends import torch_bridge

        bridge = torch_bridge()
        import torch

        module = torch.load(path, weights_only=False, map_location="cpu")
        return bridge.from_module(module)
    try:
        with np.load(path, allow_pickle=False) as f:
            is_network = _NETWORK_META in f.files
            arrays = {} if is_network else {k: f[k] for k in f.files}
    except (ValueError, OSError):
        is_network, arrays = True, {}  # let Network.load say what the file is not
    if not is_network:
        return _mlp_from_arrays(arrays, path)
    net = Network.load(path)
    try:
        return mlp_from_network(net)
    except InputError:
        return net


def _target_file(ticket_path: str) -> str:
    root = ticket_path[:-4] if ticket_path.endswith(".npz") else ticket_path
    return root + ".target.npz"


def _build(args: argparse.Namespace) -> int:
    from .constructions import REGISTRY

    entry = REGISTRY.get(args.construction)
    if entry is None or entry.module is None:
        raise InputError(f"`--construction` must be one of {sorted(REGISTRY)}; received "
                         f"{args.construction!r}")
    target = _read_target(args.target)
    options = _parse_options(args.option)
    for key in ("eps", "delta"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    if args.virtual:
        options["virtual"] = True
    t0 = time.perf_counter()
    try:
        ticket = entry.module.construct(target, rng=args.seed, **options)
    except TypeError as exc:
        raise InputError(f"construction {args.construction!r} does not take these options "
                         f"({_one_line(str(exc))}); see help(slth.constructions."
                         f"{args.construction}.construct)") from None
    elapsed = time.perf_counter() - t0
    ticket.save(args.out)
    target_out = _target_file(args.out)
    target.save(target_out)
    record = {"construction": args.construction, "paper": entry.paper, "ticket": args.out,
              "target": target_out, "seconds": elapsed, "kept": ticket.n_kept,
              "source_params": ticket.n_source_params, "density": ticket.density,
              "virtual": ticket.is_virtual, "target_fingerprint": ticket.target_fingerprint,
              "params": ticket.params.to_dict()}
    _emit(args, record, [
        f"{args.construction} ({entry.paper}) in {elapsed:.3g} s: keeps {ticket.n_kept:,} of "
        f"{ticket.n_source_params:,} source parameters (density {ticket.density:.4g})",
        f"ticket written to {args.out}, its target to {target_out}",
        f"next: slth eval {args.out}",
    ])
    return 0


def _eval(args: argparse.Namespace) -> int:
    from .evaluate import approximation_error
    from .ticket import Ticket

    ticket = Ticket.load(args.ticket)
    path = args.target or _target_file(args.ticket)
    if not os.path.isfile(path):
        where = "" if args.target else " (the default, written by `slth build`)"
        raise InputError(f"`--target` must name the ticket's target network file; {path!r}"
                         f"{where} does not exist")
    target = _read_target(path)
    t0 = time.perf_counter()
    rep = approximation_error(target, ticket, n_samples=args.samples, rng=args.seed,
                              adversarial_steps=args.steps, radius=args.radius)
    elapsed = time.perf_counter() - t0
    record = {"ticket": args.ticket, "target": path, "radius": rep.radius,
              "sampled_max": rep.sampled_max, "sampled_mean": rep.sampled_mean,
              "n_samples": rep.n_samples, "adversarial": rep.adversarial,
              "certified": rep.certified, "certified_note": rep.certified_note,
              "seconds": elapsed}
    if args.data:
        record["data"] = _data_metrics(target, ticket, args.data)
    cert = "none" if rep.certified is None else f"{rep.certified:.4g}"
    lines = [f"error of {args.ticket} against {path} on the ball of radius {rep.radius:g}:",
             f"  sampled max {rep.sampled_max:.4g} (mean {rep.sampled_mean:.4g}, "
             f"{rep.n_samples} inputs)",
             f"  adversarial {rep.adversarial:.4g}  (a lower bound on the sup)",
             f"  certified   {cert}  (an upper bound on the sup)"]
    if rep.certified is None and rep.certified_note:
        lines.append(f"  ({rep.certified_note})")
    if args.data:
        d = record["data"]
        lines.append(f"on {d['n']} inputs of {args.data}: max |f - g| {d['max_abs_error']:.4g}, "
                     f"relative {d['max_relative_error']:.4g}; argmax agreement "
                     f"{d['agreement']:.4f}")
        if d.get("target_accuracy") is not None:
            lines.append(f"  accuracy: target {d['target_accuracy']:.4f}, ticket "
                         f"{d['ticket_accuracy']:.4f}")
    _emit(args, record, lines)
    return 0


def _data_metrics(target: Any, ticket: Any, path: str) -> dict[str, Any]:
    """Errors, argmax agreement and accuracy on the inputs ``x`` (labels ``y``) of a .npz."""
    if not os.path.isfile(path):
        raise InputError(f"`--data` must name an existing .npz; {path!r} does not exist")
    with np.load(path, allow_pickle=False) as f:
        if "x" not in f.files:
            raise InputError(f"`--data` {path!r} must hold inputs `x` (and optional labels "
                             f"`y`); it holds {sorted(f.files)}")
        x = np.asarray(f["x"], dtype=np.float64)
        y = np.asarray(f["y"]).reshape(-1) if "y" in f.files else None
    fx, gx = target.forward(x), ticket.forward(x)
    fx2, gx2 = fx.reshape(fx.shape[0], -1), gx.reshape(gx.shape[0], -1)
    out: dict[str, Any] = {
        "n": int(x.shape[0]),
        "max_abs_error": float(np.abs(fx2 - gx2).max()),
        "max_relative_error": float(np.abs(fx2 - gx2).max() / max(np.abs(fx2).max(), 1e-300)),
        "agreement": float(np.mean(fx2.argmax(axis=1) == gx2.argmax(axis=1))),
        "target_accuracy": None, "ticket_accuracy": None,
    }
    if y is not None:
        if y.shape[0] != x.shape[0]:
            raise InputError(f"`--data` {path!r}: `y` must hold one label per input "
                             f"({x.shape[0]}); it holds {y.shape[0]}")
        out["target_accuracy"] = float(np.mean(fx2.argmax(axis=1) == y))
        out["ticket_accuracy"] = float(np.mean(gx2.argmax(axis=1) == y))
    return out


def _parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """``key=v1,v2,...`` pairs (values read as JSON, else text) -> {key: [values]}."""
    out: dict[str, list[Any]] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.isidentifier() or not text:
            raise InputError(f"`--grid` must be key=v1,v2,... with a Python name as key (e.g. "
                             f"n=2,4,8); received {item!r}")
        values = []
        for part in text.split(","):
            try:
                values.append(json.loads(part))
            except json.JSONDecodeError:
                values.append(part)
        out[key] = values
    return out


def sweep_row(config: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """One row of ``slth sweep``: build the ticket of ``config`` and measure it.

    ``config`` holds ``target`` (a network file), ``construction``, ``options``,
    ``seed`` (the source's) and the evaluation's ``samples`` and ``steps``; the
    evaluation's inputs come from ``rng`` (the row's seed).
    """
    from .constructions import REGISTRY
    from .evaluate import approximation_error

    target = _read_target(config["target"])
    entry = REGISTRY[config["construction"]]
    t0 = time.perf_counter()
    ticket = entry.module.construct(target, rng=config["seed"], **config["options"])
    seconds = time.perf_counter() - t0
    rep = approximation_error(target, ticket, n_samples=config["samples"], rng=rng,
                              adversarial_steps=config["steps"])
    return {"kept": ticket.n_kept, "source_params": ticket.n_source_params,
            "density": ticket.density, "sampled_max": rep.sampled_max,
            "adversarial": rep.adversarial, "certified": rep.certified,
            "build_seconds": seconds}


def _sweep(args: argparse.Namespace) -> int:
    import itertools

    from .constructions import REGISTRY
    from .sweeps import run_sweep

    if args.construction not in REGISTRY or REGISTRY[args.construction].module is None:
        raise InputError(f"`--construction` must be one of {sorted(REGISTRY)}; received "
                         f"{args.construction!r}")
    target = _read_target(args.target)  # checked here, read again by each row
    grid = _parse_grid(args.grid)
    fixed = _parse_options(args.option)
    keys = list(grid)
    configs = []
    for values in itertools.product(*(grid[k] for k in keys)):
        for seed in range(args.seeds):
            configs.append({"task": "slth sweep", "target": os.path.abspath(args.target),
                            "target_fingerprint": target.fingerprint(),
                            "construction": args.construction,
                            "options": {**fixed, **dict(zip(keys, values, strict=True))},
                            "seed": seed, "samples": args.samples, "steps": args.steps})
    res = run_sweep(sweep_row, configs, path=args.out, rng=0, workers=args.workers,
                    progress=None if not args.json else False,
                    desc=f"slth sweep {args.construction}",
                    executor="dask" if args.dask else "local", client=args.dask)
    rows = [{"options": r.config["options"], "seed": r.config["seed"], **r.result}
            for r in res.rows]
    record = {"out": args.out, "computed": res.computed, "reused": res.reused, "rows": rows}
    head = (f"{'options':<28} {'seed':>4} {'kept':>9} {'sampled':>9} {'adversarial':>11} "
            f"{'certified':>9}")
    lines = [head, "-" * len(head)]
    for r in rows:
        cert = "none" if r["certified"] is None else f"{r['certified']:.3g}"
        opts = json.dumps(r["options"], separators=(",", "="))[1:-1].replace('"', "")
        lines.append(f"{opts:<28} {r['seed']:>4} {r['kept']:>9,} {r['sampled_max']:>9.3g} "
                     f"{r['adversarial']:>11.3g} {cert:>9}")
    lines.append(f"{res.computed} rows computed, {res.reused} reused"
                 + (f"; results in {args.out}" if args.out else ""))
    _emit(args, record, lines)
    return 0


def _forwarded(command: str) -> Callable[..., int]:
    """The installed entry point ``slth <command>`` passes every argument on to."""
    if command == "check":
        from .proofs_check.__main__ import main as check_main

        return check_main
    from .figures.__main__ import main as figures_main

    return figures_main


def _forward(command: str, rest: list[str]) -> int:
    """Run ``slth check`` / ``slth figures``; usage errors exit 2, --help 0."""
    try:
        return int(_forwarded(command)(rest, prog=f"slth {command}"))
    except SystemExit as exc:  # --help (0) or argparse's usage error (2, already printed)
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_ERROR


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="slth", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Strong lottery tickets, constructed: random subset sums, tickets of saved "
                    "target networks,\ntheir sampled, adversarial and certified errors, and the "
                    "numerical theorem checks.",
        epilog="`slth <command> --help` explains a command, with examples. Errors print one "
               "line and exit 2.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    demo = sub.add_parser("demo", help="median optimal subset-sum error against n")
    demo.add_argument(
        "--n", type=_int_in(1, EXACT_MAX_N, f"exact solving accepts n <= {EXACT_MAX_N}"),
        nargs="+", help=f"values of n in [1, {EXACT_MAX_N}] (default 8 12 ... 32)",
    )
    demo.add_argument("--instances", type=_int_in(1, None, "instances per n"), default=2000)
    demo.add_argument("--distribution", default="uniform", choices=list(DISTRIBUTIONS))
    demo.add_argument("--seed", type=_int_in(0, None, "a numpy seed"), default=0)
    demo.set_defaults(func=_demo)

    fmt = argparse.RawDescriptionHelpFormatter
    solve = sub.add_parser(
        "solve", help="subset sums of given or generated instances", formatter_class=fmt,
        description=_describe(
            "Solve random subset-sum instances: the best subset of each row of values for its "
            "target (exact), or the first one within eps.",
            "  slth solve --n 20 --instances 1000 --eps 0.001\n"
            "  slth solve --values v.npy --targets t.npy --out result.npz --json"))
    solve.add_argument("--values", help=".npy of shape (instances, n) (default: generated)")
    solve.add_argument("--targets", help=".npy of one target per instance (with --values)")
    solve.add_argument("--n", type=_int_in(1, EXACT_MAX_N, "values per instance"), default=16)
    solve.add_argument("--instances", type=_int_in(1, None, "instances"), default=1000)
    solve.add_argument("--distribution", default="uniform", choices=list(DISTRIBUTIONS))
    solve.add_argument("--eps", type=_float_in(0.0, 1.0, "tolerance"),
                       help="stop at a subset within eps (default: exact optimum)")
    solve.add_argument("--seed", type=_int_in(0, None, "a numpy seed"), default=0)
    solve.add_argument("--out", help="write masks, totals and errors to this .npz")
    solve.add_argument("--json", action="store_true", help="print one JSON object")
    solve.set_defaults(func=_solve)

    from .constructions import REGISTRY

    build = sub.add_parser(
        "build", help="a ticket for a saved target network", formatter_class=fmt,
        description=_describe(
            "Build a strong lottery ticket for a target network saved with Network.save or "
            "MLP.save (or a pickled torch nn.Sequential, .pt: unpickling runs code, load only "
            "files you trust) by a registered construction. "
            "Writes the ticket and, beside it, the target (TICKET.target.npz).",
            "  slth build target.npz --construction pensia2020 --option n=6 --out ticket.npz\n"
            "  slth build target.npz --construction pensia2020 --eps 0.1 --virtual --out "
            "big.npz",
            "constructions:\n" + "\n".join(f"  {name:<14} {c.paper}"
                                            for name, c in REGISTRY.items())))
    build.add_argument("target", help="the target: an slth network file, an .npz of arrays "
                                      "weights_0, biases_0, ..., a .safetensors of them, or a "
                                      "trusted pickled torch nn.Sequential (.pt)")
    build.add_argument("--construction", default="pensia2020",
                       help=f"one of {', '.join(REGISTRY)} (default pensia2020)")
    build.add_argument("--eps", type=_float_in(0.0, 1.0, "sup error target"),
                       help="the theorem's accuracy (the width follows from it)")
    build.add_argument("--delta", type=_float_in(0.0, 1.0, "failure probability"),
                       help="the theorem's failure probability")
    build.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                       help="a keyword of the construction, e.g. n=6 or k=[30,40] (repeatable)")
    build.add_argument("--virtual", action="store_true",
                       help="a virtual source (entries on demand; the seed names it)")
    build.add_argument("--seed", type=_int_in(0, None, "the source's seed"), default=0)
    build.add_argument("--out", required=True, help="the ticket file to write (.npz)")
    build.add_argument("--json", action="store_true", help="print one JSON object")
    build.set_defaults(func=_build)

    ev = sub.add_parser(
        "eval", help="sampled, adversarial and certified error of a ticket", formatter_class=fmt,
        description=_describe(
            "Measure a saved ticket against its target on the input ball: the sampled max, "
            "the adversarial search's value (a lower bound on the sup error) and the "
            "construction's certified bound (an upper bound).",
            "  slth eval ticket.npz --samples 4096 --json"))
    ev.add_argument("ticket", help="a ticket file written by Ticket.save or slth build")
    ev.add_argument("--target", help="the target network file (default: TICKET.target.npz)")
    ev.add_argument("--samples", type=_int_in(1, None, "random inputs"), default=4096)
    ev.add_argument("--steps", type=_int_in(0, None, "adversarial steps"), default=50)
    ev.add_argument("--radius", type=_float_in(0.0, None, "input ball radius"), default=1.0)
    ev.add_argument("--seed", type=_int_in(0, None, "a numpy seed"), default=0)
    ev.add_argument("--data", help=".npz of inputs x (and labels y): errors, argmax agreement "
                                   "and accuracy on them")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.set_defaults(func=_eval)

    sw = sub.add_parser(
        "sweep", help="tickets of a saved target over a grid of options and seeds",
        formatter_class=fmt,
        description=_describe(
            "Build and evaluate tickets of a saved target for every combination of the "
            "--grid values and every seed 0..SEEDS-1 (the error against the width of your own "
            "target). Every finished row is appended to --out (JSON Lines); a rerun skips the "
            "rows already there. Rows run on --workers local processes or on a Dask cluster "
            "(--dask ADDRESS, `pip install distributed`).",
            "  slth sweep target.npz --grid n=2,4,6,8 --seeds 5 --out runs.jsonl\n"
            "  slth sweep target.npz --construction malach2020 --grid k=20,40 --dask "
            "tcp://scheduler:8786 --out runs.jsonl --json"))
    sw.add_argument("target", help="the target network file")
    sw.add_argument("--construction", default="pensia2020",
                    help=f"one of {', '.join(REGISTRY)} (default pensia2020)")
    sw.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                    help="values of one construction keyword (repeatable: the product is swept)")
    sw.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                    help="a fixed construction keyword (repeatable)")
    sw.add_argument("--seeds", type=_int_in(1, None, "seeds per point"), default=3)
    sw.add_argument("--samples", type=_int_in(1, None, "random inputs"), default=1024)
    sw.add_argument("--steps", type=_int_in(0, None, "adversarial steps"), default=30)
    sw.add_argument("--workers", type=_int_in(1, None, "local processes"), default=1)
    sw.add_argument("--dask", metavar="ADDRESS", help="a dask.distributed scheduler address")
    sw.add_argument("--out", help="results file (JSON Lines; default: in memory only)")
    sw.add_argument("--json", action="store_true", help="print one JSON object")
    sw.set_defaults(func=_sweep)

    # listed for `slth --help`; main() passes their arguments on untouched
    sub.add_parser("check", help="the numerical theorem checks (`slth check --help`; exit 1 "
                                 "when a case is violated)")
    sub.add_parser("figures", help="the paper figures (`slth figures --help`)")
    return parser


_FORWARDED = ("check", "figures")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``slth`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 on success, 2 after a one-line ``slth: error: ...`` on
        stderr (bad argument, :class:`slth.SLTHError`, unreadable file, out of
        memory), 130 when interrupted.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _FORWARDED:
        try:
            return _forward(argv[0], argv[1:])
        except SLTHError as exc:
            print(f"slth: error: {argv[0]}: {_one_line(str(exc))}", file=sys.stderr)
            return EXIT_ERROR
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error already printed (2)
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_ERROR
    try:
        return int(args.func(args))
    except SLTHError as exc:
        message = _one_line(str(exc))
    except OSError as exc:
        name = f" {exc.filename!r}" if getattr(exc, "filename", None) else ""
        message = f"cannot access{name}: {exc.strerror or _one_line(str(exc))}"
    except MemoryError as exc:
        message = ("out of memory" + (f": {_one_line(str(exc))}" if str(exc) else "")
                   + "; set a lower SLTH_MEMORY_BUDGET or ask for less")
    except KeyboardInterrupt:
        print("slth: interrupted", file=sys.stderr)
        return 130
    print(f"slth: error: {args.command}: {message}", file=sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
