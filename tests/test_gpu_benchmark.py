"""benchmarks/gpu.py runs (a tiny CPU run: the script is ready for a GPU; no timing asserted)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")


def test_quick_run_prints_both_tables(capsys):
    from benchmarks import gpu

    assert gpu.main(["--quick", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "device: cpu" in out and "vector features" in out
    assert "| exact | 12 |" in out and "1.0000 identical" in out
    assert "| torch (cpu) |" in out
    assert "| exact | torch (cpu) |" in out and "| True | True |" in out
    assert "Otsuka et al. 2025 ticket" in out and "| torch (cpu) |" in out
