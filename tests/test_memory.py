"""The memory guard: budget settings, estimates against tracemalloc, refusals before allocating."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from slth import _memory, cli
from slth._memory import (
    DEFAULT_FRACTION,
    ENV_VAR,
    TINY_BYTES,
    available_memory,
    check_memory,
    format_bytes,
    memory_budget,
    parse_bytes,
    set_memory_budget,
    using_memory_budget,
)
from slth.constructions import bounded_target, nested_source, pensia2020, source_widths
from slth.constructions._common import (
    draw_source,
    gather_bytes,
    gather_layer,
    scatter_bytes,
    scatter_layer,
    source_bytes,
)
from slth.errors import InputError, LimitError, SLTHError
from slth.subset_sum import coverage_batch, first_covering_n, solve_batch
from slth.subset_sum.solve import _solve_batch_bytes

GIB = 1 << 30
# a GiB figure as the messages print it: "13.1 GiB", "477 GiB", "2.00 GiB"
GIB_FIGURE = re.compile(r"\d+(\.\d+)? GiB")


@pytest.fixture(autouse=True)
def _default_budget(monkeypatch):
    """Every test starts from the default budget (no setter, no environment variable)."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    previous = set_memory_budget(None)
    yield
    set_memory_budget(previous)


@pytest.fixture
def machine_with(monkeypatch):
    """Pretend the machine has ``nbytes`` available (the default budget is half of it)."""

    def set_available(nbytes: int) -> None:
        monkeypatch.setattr(_memory, "available_memory", lambda: int(nbytes))

    return set_available


# ----------------------------------------------------------------------------- the API
def test_available_memory_is_a_positive_int_and_the_default_budget_half_of_it():
    avail = available_memory()
    assert isinstance(avail, int) and avail > 0
    budget = memory_budget()
    assert isinstance(budget, int)
    # the available memory moves between the two reads; 5% is plenty
    assert budget == pytest.approx(DEFAULT_FRACTION * available_memory(), rel=0.05)


def test_format_bytes():
    assert format_bytes(0) == "0 B"
    assert format_bytes(1023) == "1023 B"
    assert format_bytes(1536) == "1.50 KiB"
    assert format_bytes(40 << 20) == "40.0 MiB"
    assert format_bytes(int(13.1 * GIB)) == "13.1 GiB"
    assert format_bytes(477 * GIB) == "477 GiB"
    assert format_bytes(sys.maxsize) == "unlimited"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8GiB", 8 * GIB),
        ("8 gib", 8 * GIB),
        ("500MB", 500_000_000),
        ("1.5G", int(1.5 * GIB)),
        ("2048", 2048),
        ("1e9", 10**9),
        ("64k", 65536),
        ("unlimited", sys.maxsize),
    ],
)
def test_environment_variable_sets_the_budget(monkeypatch, text, expected):
    monkeypatch.setenv(ENV_VAR, text)
    assert parse_bytes(text) == expected
    assert memory_budget() == expected


def test_environment_percentage_is_a_fraction_of_available_memory(monkeypatch, machine_with):
    machine_with(10 * GIB)
    monkeypatch.setenv(ENV_VAR, "80%")
    assert memory_budget() == 8 * GIB
    with pytest.raises(LimitError, match=r"80% of the 10.0 GiB available, from SLTH_MEMORY_BUDGET"):
        check_memory(9 * GIB, what="x", alternative="y")


@pytest.mark.parametrize("text", ["abc", "-1", "0", "0.5", "12 parsecs", "150%", "0%", "1e999",
                                  "GiB"])
def test_bad_environment_value_raises_input_error_naming_the_variable(monkeypatch, text):
    monkeypatch.setenv(ENV_VAR, text)
    with pytest.raises(InputError, match=rf"`{ENV_VAR}` must be .*received '{re.escape(text)}'"):
        memory_budget()
    with pytest.raises(InputError, match=ENV_VAR):
        check_memory(100 * GIB, what="x", alternative="y")


@pytest.mark.parametrize("value", ["abc", 0, -5, 0.5, True, [1], float("nan")])
def test_bad_setter_value_raises_input_error_naming_budget(value):
    with pytest.raises(InputError, match=r"`budget` must be"):
        set_memory_budget(value)
    assert memory_budget() == pytest.approx(DEFAULT_FRACTION * available_memory(), rel=0.05)


def test_setter_and_context_manager_take_precedence_and_restore(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "3GiB")
    assert memory_budget() == 3 * GIB
    assert set_memory_budget("2GiB") is None
    assert memory_budget() == 2 * GIB
    with using_memory_budget(5 << 20):
        assert memory_budget() == 5 << 20
        with using_memory_budget("unlimited"):
            assert memory_budget() == sys.maxsize
        assert memory_budget() == 5 << 20
    assert memory_budget() == 2 * GIB
    assert set_memory_budget(None) == 2 * GIB
    assert memory_budget() == 3 * GIB  # back to the environment variable


def test_check_memory_message_is_one_line_with_estimate_budget_and_alternative(machine_with):
    machine_with(23 * GIB)
    with pytest.raises(LimitError) as info:
        check_memory(int(13.1 * GIB), what="pensia2020.construct: the source",
                     alternative="pass a smaller `n`")
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("pensia2020.construct: the source needs an estimated 13.1 GiB but the "
                          "memory budget is 11.5 GiB (50% of the 23.0 GiB available; set "
                          "SLTH_MEMORY_BUDGET or slth.set_memory_budget to change it)")
    assert msg.endswith("; pass a smaller `n`")
    check_memory(11 * GIB, what="x", alternative="y")  # fits


def test_check_memory_explicit_budget_and_tiny_requests():
    with pytest.raises(LimitError, match=r"2.00 MiB \(passed as `budget`\)"):
        check_memory(3 << 20, what="x", alternative="y", budget=2 << 20)
    with using_memory_budget(1):  # a request up to TINY_BYTES is never refused
        check_memory(TINY_BYTES, what="x", alternative="y")
        with pytest.raises(LimitError, match=r"set by slth.set_memory_budget"):
            check_memory(TINY_BYTES + 1, what="x", alternative="y")


def test_available_memory_respects_a_cgroup_limit(tmp_path, monkeypatch):
    # cgroup v2 layout: the limit sits on the parent of the process's cgroup
    leaf = tmp_path / "a" / "b"
    leaf.mkdir(parents=True)
    (leaf / "memory.max").write_text("max\n")
    (tmp_path / "a" / "memory.max").write_text(f"{GIB}\n")
    (tmp_path / "a" / "memory.current").write_text(f"{GIB // 2}\n")
    (tmp_path / "a" / "memory.stat").write_text(f"anon 1\ninactive_file {GIB // 4}\n")
    monkeypatch.setattr(_memory, "_cgroup_mounts", lambda: (str(tmp_path), None))
    monkeypatch.setattr(_memory, "_cgroup_paths", lambda: ("/a/b", None))
    monkeypatch.setattr(_memory, "_meminfo", lambda: 64 * GIB)
    monkeypatch.setattr(sys, "platform", "linux")
    _memory._cgroup_chain.cache_clear()
    try:
        # limit - (usage - inactive file cache) = 1 GiB - (512 MiB - 256 MiB)
        assert available_memory() == 3 * GIB // 4
        (tmp_path / "a" / "memory.max").write_text("max\n")
        assert available_memory() == 64 * GIB
    finally:
        _memory._cgroup_chain.cache_clear()


# ----------------------------------------------------------------------------- the issue
def test_pensia_large_target_is_refused_before_allocating(machine_with):
    # the issue: a 3072-1024-1024-10 target at eps = 0.01 asked numpy for 13.1 GiB
    target = bounded_target((3072, 1024, 1024, 10), rng=0)
    machine_with(23 * GIB)
    tracemalloc.start()
    try:
        with pytest.raises(LimitError) as info:
            pensia2020.construct(target, eps=0.01, rng=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20  # the guard fired before anything big
    msg = str(info.value)
    assert msg.startswith("pensia2020.construct: the source")
    assert GIB_FIGURE.search(msg.split("needs an estimated", 1)[1].split(" but")[0])
    assert "memory budget is 11.5 GiB" in msg and "SLTH_MEMORY_BUDGET" in msg
    assert "pass `n`=" in msg and "virtual source" in msg
    # the suggested n does fit
    fit = int(re.search(r"pass `n`=(\d+)", msg).group(1))
    units = pensia2020.theorem_units(target, 0.01, 0.01)
    capped = tuple(min(u, fit) for u in units)
    tol = [0.01 / (2 * 3 * a * b) for a, b in zip(target.widths[:-1], target.widths[1:])]
    assert pensia2020.peak_bytes(target, capped, tol) <= 23 * GIB // 2
    assert pensia2020.peak_bytes(target, tuple(min(u, fit + 1) for u in units), tol) > 23 * GIB // 2
    # the source alone is the 13.1 GiB array and more
    assert source_bytes(target, units)[0] > 13 * GIB


def test_small_budget_refuses_a_small_construction_and_default_passes(monkeypatch):
    target = bounded_target((64, 32, 10), rng=0)
    need = pensia2020.peak_bytes(target, (12, 12))
    assert 2 << 20 < need < 8 << 20
    with using_memory_budget("2MiB"), pytest.raises(LimitError, match=r"pensia2020.construct"):
        pensia2020.construct(target, n=12, rng=1)
    monkeypatch.setenv(ENV_VAR, "2MiB")
    with pytest.raises(LimitError, match=r"from SLTH_MEMORY_BUDGET='2MiB'"):
        pensia2020.construct(target, n=12, rng=1)
    monkeypatch.setenv(ENV_VAR, "64MiB")
    ticket = pensia2020.construct(target, n=12, rng=1)
    monkeypatch.delenv(ENV_VAR)
    assert ticket.params["n"] == [12, 12]
    assert pensia2020.construct(target, n=12, rng=1).params["n"] == [12, 12]


def test_pensia_peak_estimate_matches_tracemalloc():
    # exact mode at n = 12 (arrays dominate) and eps mode (the solver's buffers dominate)
    for widths, kw in [((64, 32, 10), {"n": 12}), ((40, 20, 10), {"eps": 0.1}),
                       ((30, 20, 5), {"n": 8})]:
        target = bounded_target(widths, rng=0)
        pensia2020.construct(target, rng=1, on_failure="report", **kw)  # compile, warm caches
        tracemalloc.start()
        try:
            ticket = pensia2020.construct(target, rng=1, on_failure="report", **kw)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        est = pensia2020.peak_bytes(target, tuple(ticket.params["n"]),
                                    ticket.params["weight_tolerance"])
        assert peak / 2 <= est <= 2 * peak, (widths, kw, est, peak)


@pytest.mark.parametrize(("d_in", "d_out", "n", "bias"),
                         [(64, 32, 12, False), (30, 30, 20, True), (200, 10, 16, False)])
def test_gather_and_scatter_estimates_match_tracemalloc(d_in, d_out, n, bias):
    rng = np.random.default_rng(0)
    m = 2 * n * (d_in + bias)
    first = rng.uniform(-1, 1, (m, d_in))
    first_bias = rng.uniform(-1, 1, m) if bias else None
    second = rng.uniform(-1, 1, (d_out, m))
    W = rng.uniform(-0.1, 0.1, (d_out, d_in))
    b = rng.uniform(-0.1, 0.1, d_out) if bias else None
    tracemalloc.start()
    try:
        inst = gather_layer(first, first_bias, second, W, b, n)
        _, peak_gather = tracemalloc.get_traced_memory()
        chosen = rng.random(inst.values.shape) < 0.5
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        scatter_layer(inst, chosen, m)
        peak_scatter = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    est = gather_bytes(d_in, d_out, n, bias)
    assert peak_gather <= est <= 2 * peak_gather
    est = scatter_bytes(d_in, d_out, n, m, bias)
    assert peak_scatter <= est <= 2 * peak_scatter


def test_draw_gather_scatter_and_nested_source_guards_fire():
    target = bounded_target((256, 128, 10), rng=0)
    source = draw_source(target, (8, 8), 0)  # about 12 MB: fits the default budget
    inst = gather_layer(source.weights[0], None, source.weights[1], target.weights[0], None, 8)
    chosen = np.zeros(inst.values.shape, dtype=bool)
    m = source.widths[1]
    with using_memory_budget(1):  # every request over TINY_BYTES is refused
        with pytest.raises(LimitError, match=r"^draw_source: the source \(4 float64 arrays"):
            draw_source(target, (8, 8), 0)
        with pytest.raises(LimitError, match=r"^gather_layer: the subset-sum instances of a "
                                             r"256 -> 128 layer \(65536 instances of n=8"):
            gather_layer(source.weights[0], None, source.weights[1], target.weights[0], None, 8)
        with pytest.raises(LimitError, match=r"^scatter_layer: the masks of a 256 -> 128 layer"):
            scatter_layer(inst, chosen, m)
        with pytest.raises(LimitError, match=r"^nested_source: the cut source"):
            nested_source(source, target, (8, 8), (4, 4))
    # under the default budget the cut source is what it was before the guard
    cut = nested_source(source, target, (8, 8), (4, 4))
    assert cut.widths == source_widths(target, (4, 4))
    idx = (np.arange(256)[:, None] * 16 + np.arange(8)[None, :]).ravel()
    assert np.array_equal(cut.weights[0], source.weights[0][idx, :])
    assert np.array_equal(cut.weights[1], source.weights[1][:, idx])


def test_solve_batch_with_a_huge_batch_is_refused_before_allocating():
    # broadcast views: no memory behind the inputs, and no pass over them before the guard
    shared_values = np.linspace(-1, 1, 24)
    targets = np.broadcast_to(np.float64(0.0), (10**12,))
    with pytest.raises(LimitError, match=r"^solve_batch: 1000000000000 instances of n=24 .*TiB"):
        solve_batch(shared_values, targets)
    rows = np.broadcast_to(shared_values, (10**11, 24))
    with pytest.raises(LimitError, match=r"smaller batches"):
        solve_batch(rows, targets[: 10**11], eps=1e-3)
    with pytest.raises(LimitError, match=r"^coverage_batch"):
        coverage_batch(rows[:, :20])
    with pytest.raises(LimitError, match=r"^covers / first_covering_n"):
        first_covering_n(rows, 0.01)
    # a batch that fits the default budget but not a small one
    rng = np.random.default_rng(0)
    values = rng.uniform(-1, 1, (100_000, 16))
    t = rng.uniform(-1, 1, 100_000)
    assert _solve_batch_bytes(100_000, 16) > 3 << 20
    with using_memory_budget("3MiB"), pytest.raises(LimitError, match=r"^solve_batch"):
        solve_batch(values, t)
    assert solve_batch(values, t).errors.shape == (100_000,)


# ----------------------------------------------------------------------------- the CLI
def _cli(argv, capsys):
    status = cli.main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        (["demo", "--n", "41"], r"argument --n: must be an int in \[1, 40\].*received 41"),
        (["demo", "--n", "x"], r"argument --n: must be an int .*received 'x'"),
        (["demo", "--instances", "0"], r"--instances: must be an int in >= 1"),
        (["demo", "--seed", "-1"], r"--seed: must be an int in >= 0"),
        (["demo", "--distribution", "cauchy"], r"--distribution: invalid choice"),
        (["nope"], r"invalid choice: 'nope'"),
        ([], r"the following arguments are required"),
    ],
)
def test_cli_bad_arguments_print_one_line_and_exit_2(argv, pattern, capsys):
    status, out, err = _cli(argv, capsys)
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("slth: error: ")
    assert re.search(pattern, err), err
    assert "Traceback" not in err and out == ""


def test_cli_reports_slth_errors_and_unreadable_files_in_one_line(monkeypatch, capsys):
    def raise_limit(*args, **kwargs):
        raise LimitError("the source needs an estimated 13.1 GiB\nbut the budget is 1 GiB")

    monkeypatch.setattr(cli, "optimal_error_law", raise_limit)
    status, _, err = _cli(["demo", "--n", "8"], capsys)
    assert status == 2
    assert err == ("slth: error: demo: the source needs an estimated 13.1 GiB but the budget "
                   "is 1 GiB\n")

    def raise_os(*args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", "ticket.npz")

    monkeypatch.setattr(cli, "optimal_error_law", raise_os)
    status, _, err = _cli(["demo", "--n", "8"], capsys)
    assert status == 2
    assert err == "slth: error: demo: cannot access 'ticket.npz': No such file or directory\n"
    assert issubclass(LimitError, SLTHError)


def test_cli_demo_still_prints_the_table(capsys):
    status, out, err = _cli(["demo", "--n", "8", "10", "--instances", "50"], capsys)
    assert status == 0 and err == ""
    assert "50 instances per n" in out
    assert re.search(r"^\|\s*8 \|", out, re.M) and re.search(r"^\|\s*10 \|", out, re.M)


def test_python_m_slth_demo_n_41_is_one_line_without_traceback():
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.run([sys.executable, "-m", "slth", "demo", "--n", "41"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("slth: error: demo: argument --n: must be an int in [1, 40]")
