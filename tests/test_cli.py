"""The `slth` command: solve, build, eval end to end on a tiny target, --json, exit codes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from slth.cli import EXIT_ERROR, main
from slth.constructions import bounded_target
from slth.nets import MLP
from slth.ticket import Ticket


def _json(capsys) -> dict:
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


def test_build_then_eval_end_to_end(tmp_path, capsys):
    target = bounded_target((3, 4, 2), rng=0)
    target.save(tmp_path / "t.npz")
    ticket_path = str(tmp_path / "k.npz")
    assert main([
        "build", str(tmp_path / "t.npz"), "--option", "n=4", "--seed", "3", "--out",
        ticket_path, "--json"]) == 0
    built = _json(capsys)
    assert built["construction"] == "pensia2020" and built["kept"] > 0
    ticket = Ticket.load(ticket_path)
    assert ticket.target_fingerprint == target.fingerprint() == built["target_fingerprint"]
    assert MLP.load(built["target"]).fingerprint() == target.fingerprint()
    assert main(["eval", ticket_path, "--samples", "128", "--steps", "10", "--json"]) == 0
    rep = _json(capsys)
    assert rep["sampled_max"] <= rep["adversarial"] <= rep["certified"]
    # the human-readable table says which number bounds the sup from which side
    assert main(["eval", ticket_path, "--samples", "64", "--steps", "0"]) == 0
    text = capsys.readouterr().out
    assert "lower bound" in text and "upper bound" in text
    # a virtual source and another construction through --option
    assert main(["build", str(tmp_path / "t.npz"), "--virtual", "--option", "n=4", "--out",
                 str(tmp_path / "v.npz")]) == 0
    assert Ticket.load(tmp_path / "v.npz").is_virtual
    assert main(["build", str(tmp_path / "t.npz"), "--construction", "malach2020",
                 "--option", "k=20", "--option", "on_failure=report", "--out",
                 str(tmp_path / "m.npz"), "--json"]) == 0
    assert _json(capsys)["construction"] == "malach2020"


def test_solve_generated_and_from_files(tmp_path, capsys):
    assert main(["solve", "--n", "10", "--instances", "50", "--json"]) == 0
    rec = _json(capsys)
    assert rec["mode"] == "exact" and rec["instances"] == 50 and rec["max_error"] < 0.1
    values = np.random.default_rng(0).uniform(-1, 1, (4, 8))
    targets = values[:, :3].sum(axis=1)  # reachable exactly
    np.save(tmp_path / "v.npy", values)
    np.save(tmp_path / "t.npy", targets)
    assert main(["solve", "--values", str(tmp_path / "v.npy"), "--targets",
                 str(tmp_path / "t.npy"), "--out", str(tmp_path / "r.npz"), "--json"]) == 0
    assert _json(capsys)["max_error"] < 1e-12
    with np.load(tmp_path / "r.npz") as f:
        assert f["masks"].shape == (4, 8)


@pytest.mark.parametrize("argv, needle", [
    (["build", "missing.npz", "--out", "x.npz"], "does not exist"),
    (["solve", "--values", "v.npy"], "does not exist"),
    (["solve", "--eps", "2"], "(0, 1)"),
    (["eval", "missing.npz"], "does not exist"),
])
def test_bad_input_is_one_line_exit_2(argv, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert err.startswith("slth: error:") and "\n" not in err and needle in err


def test_unknown_construction_and_option(tmp_path, capsys):
    bounded_target((2, 2), rng=0).save(tmp_path / "t.npz")
    assert main(["build", str(tmp_path / "t.npz"), "--construction", "nope", "--out",
                 str(tmp_path / "k.npz")]) == EXIT_ERROR
    assert "pensia2020" in capsys.readouterr().err
    assert main(["build", str(tmp_path / "t.npz"), "--option", "m=3", "--out",
                 str(tmp_path / "k.npz")]) == EXIT_ERROR
    assert "does not take" in capsys.readouterr().err
    assert main(["build", str(tmp_path / "t.npz"), "--option", "nokey", "--out",
                 str(tmp_path / "k.npz")]) == EXIT_ERROR
    assert "key=value" in capsys.readouterr().err


def test_check_and_figures_are_installed_under_slth(tmp_path, capsys):
    # `slth check` / `slth figures` run the installed slth.proofs_check / slth.figures
    assert main(["check", "--list"]) == 0
    assert "lueker1998" in capsys.readouterr().out.split()
    assert main(["check", "--only", "nope"]) == EXIT_ERROR
    assert main(["figures", "--help"]) == 0
    assert "slth figures" in capsys.readouterr().out
    import subprocess
    import sys

    # from outside the repository: under slth's namespace, not as top-level packages
    code = ("import importlib.util as u, slth.proofs_check as p, slth.figures as f; "
            "assert u.find_spec('proofs_check') is None and u.find_spec('figures') is None; "
            "print(p.CHECKS['lueker1998'], f.FIGURES['subset_sum_error'])")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["slth.proofs_check.lueker1998", "slth.figures.subset_sum_error"]


def test_pyproject_lists_every_package():
    # [tool.setuptools] packages is explicit (it maps the top-level checks and figures into
    # slth's namespace): every package under slth/ must be in it
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "slth").rglob(
        "__init__.py")}
    assert found <= listed and {"slth.proofs_check", "slth.figures"} <= listed


def test_sweep_over_a_grid_resumes(tmp_path, capsys):
    bounded_target((2, 3, 1), rng=1).save(tmp_path / "t.npz")
    argv = ["sweep", str(tmp_path / "t.npz"), "--grid", "n=2,4", "--seeds", "2", "--samples",
            "64", "--steps", "3", "--out", str(tmp_path / "runs.jsonl"), "--json"]
    assert main(argv) == 0
    first = _json(capsys)
    assert first["computed"] == 4 and len(first["rows"]) == 4
    assert {r["options"]["n"] for r in first["rows"]} == {2, 4}
    assert all(r["sampled_max"] <= r["adversarial"] <= r["certified"] for r in first["rows"])
    assert main(argv) == 0
    again = _json(capsys)
    assert again["computed"] == 0 and again["rows"] == first["rows"]
    assert main(["sweep", str(tmp_path / "t.npz"), "--grid", "n"]) == EXIT_ERROR


def test_targets_from_arrays_and_eval_on_data(tmp_path, capsys):
    target = bounded_target((3, 4, 2), rng=2)
    np.savez(tmp_path / "arrays.npz", weights_0=target.weights[0], weights_1=target.weights[1])
    assert main(["build", str(tmp_path / "arrays.npz"), "--option", "n=4", "--out",
                 str(tmp_path / "k.npz"), "--json"]) == 0
    assert _json(capsys)["target_fingerprint"] == target.fingerprint()
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (50, 3))
    y = target.forward(x).argmax(axis=1)
    np.savez(tmp_path / "data.npz", x=x, y=y)
    assert main(["eval", str(tmp_path / "k.npz"), "--samples", "32", "--steps", "0",
                 "--data", str(tmp_path / "data.npz"), "--json"]) == 0
    d = _json(capsys)["data"]
    assert d["n"] == 50 and d["target_accuracy"] == 1.0 and 0.0 <= d["agreement"] <= 1.0
    assert d["ticket_accuracy"] == d["agreement"]  # labels are the target's own argmax
    np.savez(tmp_path / "junk.npz", a=np.zeros(3))
    assert main(["build", str(tmp_path / "junk.npz"), "--out", str(tmp_path / "j.npz")]) \
        == EXIT_ERROR
    assert "weights_0" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["demo"], ["solve"], ["build"], ["eval"], ["sweep"]])
def test_help_texts_are_plain(command, capsys):
    assert main([*command, "--help"]) == 0
    text = capsys.readouterr().out
    assert "``" not in text and ":func:" not in text and ":class:" not in text
    if command:
        assert command == ["demo"] or "example:" in text
