"""Resumable sweeps: stable keys and seeds, append-only rows, resume after SIGKILL."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from slth.errors import InputError
from slth.sweeps import (
    canonical_json,
    config_hash,
    progress_enabled,
    read_rows,
    row_key,
    row_seed,
    run_sweep,
)


def _task(config, rng):
    """Module level so that spawned workers can import it."""
    return {"i": config["i"], "draw": rng.standard_normal(4), "int": rng.integers(0, 2**62)}


def _configs(k):
    return [{"name": "unit", "i": i, "scale": 0.5} for i in range(k)]


# ---------------------------------------------------------------- keys and seeds


def test_config_hash_is_sha256_of_sorted_compact_json():
    cfg = {"b": 2, "a": [1, 0.1], "c": {"y": True, "x": None}}
    text = '{"a":[1,0.1],"b":2,"c":{"x":null,"y":true}}'
    assert canonical_json(cfg) == text
    assert config_hash(cfg) == hashlib.sha256(text.encode()).hexdigest()
    # key order and numpy scalar types do not matter
    assert config_hash(
        {"c": {"x": None, "y": np.bool_(True)}, "b": np.int64(2), "a": [1, 0.1]}
    ) == (config_hash(cfg))
    assert config_hash({"a": 1}) != config_hash({"a": 1.5})


@pytest.mark.parametrize("bad", [{"x": float("nan")}, {"x": object()}, {"x": float("inf")}])
def test_configs_must_be_finite_json(bad):
    with pytest.raises(InputError, match="JSON"):
        config_hash(bad)


def test_row_seed_depends_on_base_seed_and_config_only():
    a = np.random.default_rng(row_seed({"i": 1}, 7)).random(3)
    b = np.random.default_rng(row_seed({"i": 1}, 7)).random(3)
    c = np.random.default_rng(row_seed({"i": 2}, 7)).random(3)
    d = np.random.default_rng(row_seed({"i": 1}, 8)).random(3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, d)
    assert row_key({"i": 1}, 7) != row_key({"i": 1}, 8)


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True])
def test_bad_rng_is_rejected(bad):
    with pytest.raises(InputError, match="`rng`"):
        run_sweep(_task, _configs(1), path=None, rng=bad)


def test_bad_workers_is_rejected():
    with pytest.raises(InputError, match="`workers`"):
        run_sweep(_task, _configs(1), path=None, workers=0)


def test_progress_flag():
    assert progress_enabled(True) is True
    assert progress_enabled(False) is False
    # pytest captures stderr: not a terminal
    assert progress_enabled(None) is False


# ---------------------------------------------------------------- running and resuming


def test_rows_do_not_depend_on_order_or_duplicates():
    cfgs = _configs(5)
    fwd = run_sweep(_task, cfgs, path=None, rng=3)
    rev = run_sweep(_task, [*reversed(cfgs), cfgs[0]], path=None, rng=3)
    assert fwd.computed == 5 and rev.computed == 5  # the duplicate is computed once
    assert rev.results[:5] == list(reversed(fwd.results))
    assert rev.results[5] == fwd.results[0]
    # numpy outputs come back as plain JSON values
    assert isinstance(fwd.results[0]["draw"], list) and isinstance(fwd.results[0]["int"], int)


def test_resume_reuses_rows_and_appends_only_new_ones(tmp_path):
    path = tmp_path / "deep" / "rows.jsonl"
    first = run_sweep(_task, _configs(3), path=path, rng=11)
    assert (first.computed, first.reused) == (3, 0)
    before = path.read_bytes()
    second = run_sweep(_task, _configs(5), path=path, rng=11)
    assert (second.computed, second.reused) == (2, 3)
    assert second.results[:3] == first.results
    assert path.read_bytes().startswith(before)  # append-only
    assert len(path.read_text().splitlines()) == 5
    # same rows as a run that never stopped
    assert second.results == run_sweep(_task, _configs(5), path=None, rng=11).results
    # another seed is another row
    other = run_sweep(_task, _configs(1), path=path, rng=12)
    assert other.computed == 1 and other.results[0] != first.results[0]


def test_truncated_last_line_is_dropped_and_repaired(tmp_path):
    path = tmp_path / "rows.jsonl"
    ref = run_sweep(_task, _configs(4), path=None, rng=5)
    run_sweep(_task, _configs(2), path=path, rng=5)
    good = path.read_bytes()
    with open(path, "ab") as fh:
        fh.write(b'{"config":{"i":2,"name":"unit","scale":0.5},"key":"ab')
    with pytest.warns(RuntimeWarning, match="incomplete or malformed"):
        out = run_sweep(_task, _configs(4), path=path, rng=5)
    assert out.computed == 2 and out.results == ref.results
    text = path.read_bytes()
    assert text.startswith(good) and text.count(b"\n") == 4
    assert len(read_rows(path)) == 4


def test_damaged_middle_line_is_an_error(tmp_path):
    path = tmp_path / "rows.jsonl"
    run_sweep(_task, _configs(2), path=path, rng=5)
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n" + "not json\n" + lines[1] + "\n")
    with pytest.raises(InputError, match="line 2"):
        run_sweep(_task, _configs(2), path=path, rng=5)


def test_rows_are_identical_with_two_workers(tmp_path):
    one = run_sweep(_task, _configs(6), path=None, rng=9)
    two = run_sweep(_task, _configs(6), path=tmp_path / "w2.jsonl", rng=9, workers=2)
    assert two.results == one.results
    assert len(read_rows(tmp_path / "w2.jsonl")) == 6


# ---------------------------------------------------------------- kill -9 in the middle

_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from slth.sweeps import run_sweep

    def slow_task(config, rng):
        time.sleep(float(sys.argv[2]))
        return {"i": config["i"], "x": rng.standard_normal(3).tolist(), "u": rng.random()}

    if __name__ == "__main__":
        configs = [{"name": "kill-test", "i": i} for i in range(16)]
        out = run_sweep(slow_task, configs, path=sys.argv[1], rng=2024, progress=False)
        print(out.computed, out.reused)
    """
)


def _rows_in(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_sigkill_mid_run_then_resume_gives_every_row_once(tmp_path):
    script = tmp_path / "sweep_script.py"
    script.write_text(_SCRIPT)
    ref_path, path = tmp_path / "reference.jsonl", tmp_path / "killed.jsonl"
    subprocess.run([sys.executable, str(script), str(ref_path), "0"], check=True, timeout=120)

    proc = subprocess.Popen([sys.executable, str(script), str(path), "0.15"])
    deadline = time.monotonic() + 60
    while _rows_in(path) < 4 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    written = _rows_in(path)
    assert 4 <= written < 16, "the kill must land in the middle of the sweep"
    # a kill during a write leaves a partial line: simulate one
    with open(path, "ab") as fh:
        fh.write(b'{"config":{"i":99,"na')

    done = subprocess.run(
        [sys.executable, str(script), str(path), "0"],
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
    )
    computed, reused = map(int, done.stdout.split())
    assert (computed, reused) == (16 - written, written)

    lines = path.read_text().splitlines()
    assert len(lines) == 16
    rows = [json.loads(line) for line in lines]
    assert sorted(r["config"]["i"] for r in rows) == list(range(16))  # every row exactly once
    ref = {r["key"]: r["result"] for r in map(json.loads, ref_path.read_text().splitlines())}
    got = {r["key"]: r["result"] for r in rows}
    assert got == ref  # same seeds -> same bits
