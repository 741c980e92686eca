"""Layering: core slth never imports the torch backend; the bridge finds it at call time."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from slth._backends import torch_bridge

ROOT = Path(__file__).resolve().parent.parent


def test_core_modules_import_no_torch():
    code = ("import sys, slth.nets, slth.ticket, slth.evaluate; "
            "assert 'slth.torch' not in sys.modules and 'torch' not in sys.modules, "
            "sorted(m for m in sys.modules if 'torch' in m)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_backends_module_imports_no_torch():
    code = ("import sys, slth._backends; "
            "assert 'slth.torch' not in sys.modules and 'torch' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_torch_bridge_without_torch_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == "torch" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ImportError, match="pip install torch") as info:
        torch_bridge()
    assert "`torch`" in str(info.value)


def test_torch_bridge_returns_the_backend_module():
    pytest.importorskip("torch")
    bridge = torch_bridge()
    assert bridge.__name__ == "slth.torch"
    assert callable(bridge.to_torch) and callable(bridge.mlp_from_torch)
    assert callable(bridge.network_to_torch) and callable(bridge.network_from_torch)


def test_the_core_primitive_does_not_import_the_sweep_runner():
    # slth.subset_sum is the core primitive: none of its modules imports slth.sweeps (or
    # slth.trials, built on it) at module level; the one lazy alias is its __getattr__
    import ast
    from pathlib import Path

    import slth.subset_sum as ss

    for path in Path(ss.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module-level statements only
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [a.name for a in node.names]
                assert not any(n.split(".")[-1] in ("sweeps", "trials") for n in names), path
    from slth.trials import first_covering_trials

    assert ss.first_covering_trials is first_covering_trials  # slth 0.1's name still works
