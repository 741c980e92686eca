"""The README's property-testing example runs as written (so the documentation stays true)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(containing: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    return [b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if containing in b]


def test_custom_layer_example_runs():
    import sys
    import types

    from slth.testing import strategies as sst

    (block,) = _blocks("check_construction(keep_closer")
    module = types.ModuleType("readme_example")  # dataclasses look their module up
    sys.modules[module.__name__] = module
    try:
        exec(compile(block, str(README), "exec"), module.__dict__)
    finally:
        sst.LAYER_BLOCKS.pop("mylib.scale", None)
        del sys.modules[module.__name__]


def test_attention_example_runs():
    (block,) = _blocks("otsuka2025.construct(target, n=80")
    exec(compile(block, str(README), "exec"), {})
