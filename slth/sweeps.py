"""Resumable parameter sweeps: one JSON Lines row per finished (configuration, seed).

A sweep runs ``task(config, rng)`` for every configuration of a list and
appends each finished row to a results file as soon as it completes
(append-only JSON Lines, flushed and fsynced per row). A rerun with the same
file skips the rows already there, so an interrupted run (Ctrl-C, SIGKILL, a
full disk) resumes without losing or duplicating a row.

Keys and seeds
--------------
A row is identified by ``key = sha256(canonical JSON of {"config": config,
"seed": seed})`` where the canonical JSON has sorted keys and no whitespace
(:func:`canonical_json`). The row's random generator is built from a
:class:`numpy.random.SeedSequence` whose entropy is the sweep's base seed and
whose spawn key is the sha256 digest of the configuration
(:func:`row_seed`): it depends on nothing else, so the same (configuration,
seed) gives the same bits whatever the order of the configurations, the
number of workers or how many times the run was interrupted.

File format
-----------
One JSON object per line::

    {"config": {...}, "key": "<64 hex>", "result": <task output>,
     "runtime_s": 0.12, "seed": 0}

``result`` is stored with Python's ``json`` (floats written with ``repr``, so
they read back bit for bit; NaN and infinities use the ``NaN``/``Infinity``
tokens Python reads back). A freshly computed row is passed through the same
encoding before it is returned, so a resumed run and an uninterrupted run
return identical values. A last line cut short by a kill is dropped (and the
file truncated to its last complete line) on the next run; a malformed line
anywhere else is an error. One process writes a file at a time: run two sweeps
on one file concurrently and rows may be computed twice (never lost).

Examples
--------
>>> from slth.sweeps import run_sweep
>>> def task(config, rng):
...     return {"mean": float(rng.standard_normal(config["size"]).mean())}
>>> out = run_sweep(task, [{"size": 10}, {"size": 100}], path=None, rng=0)
>>> len(out.rows), out.computed
(2, 2)
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, format_value

__all__ = [
    "SweepResult",
    "SweepRow",
    "canonical_json",
    "config_hash",
    "progress_enabled",
    "read_rows",
    "row_key",
    "row_seed",
    "run_sweep",
    "seed_id",
]

#: A task: ``task(config, rng) -> JSON-serialisable result``.
Task = Callable[[dict[str, Any], np.random.Generator], Any]
#: What a sweep accepts as its base seed.
SeedLike = int | np.integer | np.random.SeedSequence | np.random.Generator | None


def _to_builtin(obj: Any) -> Any:
    """``json`` fallback: numpy scalars and arrays, tuples handled by json itself."""
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {format_value(obj)}")


def canonical_json(obj: Any, *, allow_nan: bool = False) -> str:
    """Canonical JSON text of ``obj``: sorted keys, no whitespace, ASCII only.

    numpy scalars and arrays are converted to Python numbers and lists.

    Parameters
    ----------
    obj : Any
        A JSON-serialisable value (dicts must have string keys).
    allow_nan : bool, default False
        Whether NaN and infinities may appear (configurations: no; results: yes).

    Returns
    -------
    str

    Raises
    ------
    InputError
        If ``obj`` cannot be written as JSON.
    """
    try:
        return json.dumps(
            obj,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
            allow_nan=allow_nan,
            default=_to_builtin,
        )
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"`config`/`result` must be JSON-serialisable (str keys, finite numbers in "
            f"configurations); received {format_value(obj)} ({exc})"
        ) from exc


def config_hash(config: Mapping[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON of ``config``: stable across runs and machines."""
    return hashlib.sha256(canonical_json(dict(config)).encode("ascii")).hexdigest()


def _root_seed(rng: SeedLike) -> np.random.SeedSequence:
    if isinstance(rng, np.random.SeedSequence):
        return rng
    if isinstance(rng, np.random.Generator):
        # advances the caller's generator; resumable only if the caller rebuilds it the same way
        return np.random.SeedSequence(rng.integers(0, 2**63, size=2, dtype=np.int64).tolist())
    if rng is None:
        return np.random.SeedSequence()
    if isinstance(rng, (bool, np.bool_)) or not isinstance(rng, (int, np.integer)) or int(rng) < 0:
        raise InputError(
            "`rng` must be a non-negative int seed, a SeedSequence, a numpy Generator or None; "
            f"received {format_value(rng)}"
        )
    return np.random.SeedSequence(int(rng))


def seed_id(rng: SeedLike) -> Any:
    """JSON identity of a sweep's base seed (an int, or entropy and spawn key).

    A Generator or None is first turned into a fresh SeedSequence (drawn from the
    generator, or from OS entropy): pass an int to make a sweep resumable.
    """
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, (bool, np.bool_)):
        _root_seed(rng)  # validates
        return int(rng)
    root = _root_seed(rng)
    return {"entropy": root.entropy, "spawn_key": list(root.spawn_key)}


def _seed_from_id(sid: Any) -> np.random.SeedSequence:
    if isinstance(sid, int):
        return np.random.SeedSequence(sid)
    return np.random.SeedSequence(sid["entropy"], spawn_key=tuple(sid["spawn_key"]))


def row_key(config: Mapping[str, Any], seed: Any) -> str:
    """Key of the row (configuration, seed): sha256 of ``{"config": config, "seed": seed}``.

    ``seed`` is a :func:`seed_id` value (an int for int seeds).
    """
    payload = canonical_json({"config": dict(config), "seed": seed})
    return hashlib.sha256(payload.encode("ascii")).hexdigest()


def row_seed(config: Mapping[str, Any], rng: Any) -> np.random.SeedSequence:
    """SeedSequence of one row: base entropy of ``rng``, spawn key from the config's hash.

    Parameters
    ----------
    config : mapping
        The row's configuration (JSON-serialisable).
    rng : int, numpy.random.SeedSequence, or a :func:`seed_id` dict
        The sweep's base seed.

    Returns
    -------
    numpy.random.SeedSequence
        Independent of the other rows, of the order of the rows and of the
        number of workers.
    """
    if isinstance(rng, dict):
        root = _seed_from_id(rng)
    else:
        root = _root_seed(rng)
    digest = hashlib.sha256(canonical_json(dict(config)).encode("ascii")).digest()
    words = tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 32, 4))
    return np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, *words))


@dataclass(frozen=True)
class SweepRow:
    """One finished (configuration, seed) of a sweep.

    Attributes
    ----------
    key : str
        :func:`row_key` of (config, seed), 64 hex characters.
    config : dict
        The configuration passed to the task.
    seed : int or dict
        :func:`seed_id` of the sweep's base seed.
    result : Any
        The task's output after a JSON round trip (lists, dicts, floats, ints...).
    runtime_s : float
        Wall time of the task for this row, in seconds (when it was computed).
    """

    key: str
    config: dict[str, Any]
    seed: Any
    result: Any
    runtime_s: float

    def to_json(self) -> str:
        """The row as one line of the results file (no trailing newline)."""
        return canonical_json(
            {
                "config": self.config,
                "key": self.key,
                "result": self.result,
                "runtime_s": self.runtime_s,
                "seed": self.seed,
            },
            allow_nan=True,
        )


@dataclass(frozen=True)
class SweepResult:
    """Output of :func:`run_sweep`.

    Attributes
    ----------
    rows : tuple of SweepRow
        One row per configuration passed, in the same order (a configuration
        given twice yields the same row twice).
    path : pathlib.Path or None
        The results file, if any.
    computed : int
        Rows computed by this call.
    reused : int
        Distinct rows read back from the results file instead of computed.
    """

    rows: tuple[SweepRow, ...]
    path: Path | None
    computed: int
    reused: int

    @property
    def results(self) -> list[Any]:
        """The task outputs, in the order of the configurations."""
        return [r.result for r in self.rows]


def _parse_row(line: str) -> SweepRow:
    obj = json.loads(line)
    if not isinstance(obj, dict) or not {"key", "config", "seed", "result"} <= obj.keys():
        raise ValueError("missing fields")
    return SweepRow(
        key=str(obj["key"]),
        config=obj["config"],
        seed=obj["seed"],
        result=obj["result"],
        runtime_s=float(obj.get("runtime_s", float("nan"))),
    )


def read_rows(path: str | os.PathLike[str], *, repair: bool = False) -> dict[str, SweepRow]:
    """Read a results file into ``{key: row}`` (first occurrence wins).

    Parameters
    ----------
    path : path-like
        A JSON Lines results file; a missing file reads as empty.
    repair : bool, default False
        Truncate the file to its last complete, valid line when its last line
        is cut short or malformed (what a kill during a write leaves). Without
        ``repair`` such a line is ignored with a warning.

    Returns
    -------
    dict of str to SweepRow

    Raises
    ------
    InputError
        If a line other than the last is not a valid row.
    """
    p = Path(path)
    if not p.exists():
        return {}
    data = p.read_bytes()
    rows: dict[str, SweepRow] = {}
    pos = 0
    lineno = 0
    good_end = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        end = len(data) if nl < 0 else nl
        chunk = data[pos:end]
        lineno += 1
        is_last = nl < 0 or nl == len(data) - 1
        if chunk.strip():
            try:
                if nl < 0:
                    raise ValueError("no newline: truncated")
                row = _parse_row(chunk.decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                if not is_last:
                    raise InputError(
                        f"`path` {str(p)!r}: line {lineno} is not a valid sweep row ({exc}); "
                        "only the last line may be damaged (by a kill during a write)"
                    ) from exc
                action = "truncated the file before it" if repair else "ignored it"
                warnings.warn(
                    f"{p}: last line {lineno} is incomplete or malformed; {action}",
                    RuntimeWarning,
                    stacklevel=2,
                )
                break
            rows.setdefault(row.key, row)
        good_end = len(data) if nl < 0 else nl + 1
        if nl < 0:
            break
        pos = nl + 1
    if repair and good_end < len(data):
        with open(p, "r+b") as fh:
            fh.truncate(good_end)
            fh.flush()
            os.fsync(fh.fileno())
    return rows


def progress_enabled(progress: bool | None) -> bool:
    """Whether to draw progress bars: ``progress`` if given, else stderr is a TTY."""
    if progress is None:
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return bool(progress)


def _run_one(task: Task, config: dict[str, Any], seed: Any) -> tuple[Any, float]:
    gen = np.random.default_rng(row_seed(config, seed))
    t0 = time.perf_counter()
    out = task(config, gen)
    return out, time.perf_counter() - t0


def _worker_init() -> None:
    # each worker is one process on one core: no nested numba threads
    try:
        import numba

        numba.set_num_threads(1)
    except Exception:  # pragma: no cover - numba is a dependency, but stay harmless
        pass


def _run_dask(client: Any, task: Task, todo: dict[str, dict[str, Any]], sid: Any,
              finish: Callable[[str, dict[str, Any], Any, float], None]) -> None:
    """Run the rows on a dask.distributed cluster; results come back to ``finish`` here."""
    if not todo:
        return
    try:
        import distributed
    except ImportError:
        raise InputError("executor='dask' needs dask.distributed: `pip install distributed` "
                         "(or `pip install slth[dask]`)") from None
    own = None
    if isinstance(client, str):
        own = client = distributed.Client(client)
    elif not isinstance(client, distributed.Client):
        raise InputError(f"`client` must be a distributed.Client or a scheduler address; "
                         f"received {format_value(client)}")
    try:
        futures = {client.submit(_run_one, task, c, sid, key=f"slth-sweep-{k}", pure=False,
                                 retries=2): k for k, c in todo.items()}
        try:
            for fut in distributed.as_completed(futures):
                k = futures[fut]
                out, dt = fut.result()
                finish(k, todo[k], out, dt)
        except BaseException:
            client.cancel(list(futures))
            raise
    finally:
        if own is not None:
            own.close()


def run_sweep(
    task: Task,
    configs: Iterable[Mapping[str, Any]],
    *,
    path: str | os.PathLike[str] | None,
    rng: SeedLike = 0,
    workers: int = 1,
    progress: bool | None = None,
    desc: str | None = None,
    executor: str = "local",
    client: Any = None,
) -> SweepResult:
    """Run ``task`` on every configuration, resuming from ``path``.

    Parameters
    ----------
    task : callable
        ``task(config: dict, rng: numpy.random.Generator) -> result``; the
        result must be JSON-serialisable (numpy scalars and arrays are
        converted). With ``workers > 1`` it must be picklable (a module-level
        function).
    configs : iterable of mappings
        Configurations with string keys and JSON values (finite numbers);
        include in each everything that changes the result (a name for the
        task, sizes...), since rows are matched by configuration and seed only.
    path : path-like or None
        Results file (JSON Lines), created with its parent folders if missing.
        None keeps everything in memory (nothing is resumable).
    rng : int, numpy.random.SeedSequence, numpy.random.Generator or None, default 0
        Base seed. Row seeds derive from it and the configuration
        (:func:`row_seed`). Use an int (or a SeedSequence) to resume: a
        Generator or None gives a fresh base seed, hence new rows.
    workers : int, default 1
        Processes computing rows (``spawn`` start method, one numba thread
        each); rows are written by this process only, in completion order.
    progress : bool or None, default None
        Draw a tqdm bar on stderr; None: only when stderr is a terminal.
    desc : str, optional
        Label of the progress bar.
    executor : {"local", "dask"}, default "local"
        ``"local"``: this process (``workers=1``) or a local process pool.
        ``"dask"``: the rows run as tasks of a ``dask.distributed`` cluster
        (``pip install distributed``), given as ``client`` (a
        ``distributed.Client``) or a scheduler address (``"tcp://host:8786"``);
        ``workers`` is then ignored (the cluster has its own). Rows are still
        written by this process only, one per (configuration, seed), in
        completion order; a row whose worker dies is rerun by the scheduler on
        another worker, and its seed makes it the same row (identical values to
        the local executor). ``task`` must be picklable by cloudpickle (a
        module-level or a local function).
    client : distributed.Client or str, optional
        The cluster for ``executor="dask"`` (required there).

    Returns
    -------
    SweepResult
        Rows in the order of ``configs``.

    Raises
    ------
    InputError
        On a configuration or result that is not JSON-serialisable, a bad
        ``workers`` or ``rng``, or a results file damaged before its last line.
    """
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise InputError(f"`workers` must be an int >= 1; received {workers!r}")
    if executor not in ("local", "dask"):
        raise InputError(f"`executor` must be 'local' or 'dask'; received {executor!r}")
    if executor == "dask" and client is None:
        raise InputError("`client` must be a distributed.Client or a scheduler address with "
                         "executor='dask'; received None")
    cfgs = [dict(c) for c in configs]
    for c in cfgs:
        if not all(isinstance(k, str) for k in c):
            raise InputError(f"`configs` must have str keys; received {format_value(c)}")
    sid = seed_id(rng)
    keys = [row_key(c, sid) for c in cfgs]
    p = Path(path) if path is not None else None
    done: dict[str, SweepRow] = {}
    if p is not None:
        p.parent.mkdir(parents=True, exist_ok=True)
        done = read_rows(p, repair=True)
    todo: dict[str, dict[str, Any]] = {}
    for k, c in zip(keys, cfgs):
        if k not in done and k not in todo:
            todo[k] = c
    reused = len({k for k in keys if k in done})
    fresh: dict[str, SweepRow] = {}

    from tqdm.auto import tqdm

    bar = tqdm(
        total=len(todo),
        desc=desc,
        file=sys.stderr,
        disable=not progress_enabled(progress) or not todo,
        leave=False,
        dynamic_ncols=True,
    )
    fh = open(p, "a", encoding="ascii") if p is not None else None
    try:

        def finish(key: str, config: dict[str, Any], out: Any, dt: float) -> None:
            result = json.loads(canonical_json(out, allow_nan=True))
            row = SweepRow(key=key, config=config, seed=sid, result=result, runtime_s=float(dt))
            if fh is not None:
                fh.write(row.to_json() + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            fresh[key] = row
            bar.update(1)

        if executor == "dask":
            _run_dask(client, task, todo, sid, finish)
        elif workers == 1 or len(todo) <= 1:
            for k, c in todo.items():
                out, dt = _run_one(task, c, sid)
                finish(k, c, out, dt)
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor, as_completed

            with ProcessPoolExecutor(
                max_workers=int(workers),
                mp_context=mp.get_context("spawn"),
                initializer=_worker_init,
            ) as pool:
                futures = {pool.submit(_run_one, task, c, sid): k for k, c in todo.items()}
                try:
                    for fut in as_completed(futures):
                        k = futures[fut]
                        out, dt = fut.result()
                        finish(k, todo[k], out, dt)
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
    finally:
        bar.close()
        if fh is not None:
            fh.close()
    rows = tuple(done[k] if k in done else fresh[k] for k in keys)
    return SweepResult(rows=rows, path=p, computed=len(fresh), reused=reused)
