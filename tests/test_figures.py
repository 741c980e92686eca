"""Figures: the quick paths write data, PNG and PDF; the data have the right shape and law."""

from __future__ import annotations

import csv

import matplotlib
import matplotlib.image
import numpy as np
import pytest

import figures
from figures import __main__ as cli
from figures import subset_sum_error, subset_sum_success


def _read_csv(path):
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        return reader.fieldnames, list(reader)


def _assert_images(paths):
    img = matplotlib.image.imread(paths["png"])
    assert img.ndim == 3 and img.shape[0] > 500 and img.shape[1] > 500
    assert paths["pdf"].read_bytes()[:5] == b"%PDF-"


@pytest.fixture(scope="module")
def error_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("fig_error")
    return out, subset_sum_error.main(out, quick=True, rng=0, progress=False)


def test_backend_is_agg():
    assert matplotlib.get_backend().lower() == "agg"


def test_registry():
    assert set(figures.FIGURES) == {"subset_sum_error", "subset_sum_success", "mlp_error_width"}
    for name in figures.FIGURES:
        mod = figures.load_figure(name)
        assert mod.NAME == name and callable(mod.main)


def test_error_figure_quick_path(error_out):
    out, paths = error_out
    for key in ("csv", "fit_csv", "png", "pdf", "runs"):
        assert paths[key].exists() and out in paths[key].parents
    _assert_images(paths)
    header, rows = _read_csv(paths["csv"])
    assert tuple(header) == subset_sum_error.CSV_COLUMNS
    ns = subset_sum_error.QUICK["ns"]
    assert len(rows) == 2 * len(ns)
    for r in rows:
        q25, med, q75 = float(r["q25"]), float(r["median"]), float(r["q75"])
        assert 0 < q25 <= med <= q75
        assert int(r["instances"]) == subset_sum_error.QUICK["instances"]
    # the law: median / (0.4 sqrt(n) 2^-n) stays within a factor 2 for uniform values, n >= 10
    # (200 instances: the median's relative error is about 10%)
    for r in rows:
        if r["distribution"] == "uniform" and int(r["n"]) >= 10:
            assert 0.5 < float(r["median"]) / float(r["law"]) < 2.0
    header, fits = _read_csv(paths["fit_csv"])
    assert tuple(header) == subset_sum_error.FIT_COLUMNS
    for f in fits:
        assert 0.9 < float(f["b"]) < 1.1  # error halves with each extra value
        assert 0.1 < float(f["a"]) < 1.0


def test_error_figure_rerun_reuses_rows(error_out):
    out, paths = error_out
    runs = paths["runs"].read_bytes()
    csv_before = paths["csv"].read_bytes()
    again = subset_sum_error.main(out, quick=True, rng=0, progress=False)
    assert again["runs"].read_bytes() == runs  # nothing recomputed
    assert again["csv"].read_bytes() == csv_before  # same seeds -> same data


def test_fit_law_recovers_exact_parameters():
    n = np.arange(1, 41)
    fit = subset_sum_error.fit_law(n, 0.3 * np.sqrt(n) * np.exp2(-0.8 * n), n_min=8)
    assert fit["a"] == pytest.approx(0.3) and fit["b"] == pytest.approx(0.8)
    assert fit["n_min"] == 8 and fit["n_max"] == 40 and fit["rms_log2_residual"] < 1e-9


def test_success_figure_small_path(tmp_path):
    trials = {0.1: 120, 0.01: 120}
    paths = subset_sum_success.main(
        tmp_path, quick=True, rng=0, progress=False, n_max=14, trials=trials
    )
    _assert_images(paths)
    header, rows = _read_csv(paths["csv"])
    assert tuple(header) == subset_sum_success.CSV_COLUMNS
    assert len(rows) == 2 * 2 * 14
    for dist in ("uniform", "product"):
        for eps in trials:
            rs = [r for r in rows if r["distribution"] == dist and float(r["eps"]) == eps]
            k = [int(r["successes"]) for r in rs]
            assert [int(r["n"]) for r in rs] == list(range(1, 15))
            assert k == sorted(k)  # coupled trials: success is monotone in n
            assert k[0] == 0  # one value never covers [-1, 1] within 0.1
            for r in rs:
                assert float(r["ci_low"]) <= float(r["rate"]) <= float(r["ci_high"])
    header, thr = _read_csv(paths["thresholds_csv"])
    assert tuple(header) == subset_sum_success.THRESHOLD_COLUMNS
    uni = next(t for t in thr if t["distribution"] == "uniform" and float(t["eps"]) == 0.1)
    assert 8 <= int(uni["n_hat"]) <= 14
    assert int(uni["n_low"]) <= int(uni["n_hat"])
    assert float(uni["C_hat"]) == pytest.approx(int(uni["n_hat"]) / np.log(20))


def test_cli_single_figure(error_out, capsys):
    out, _ = error_out
    assert cli.main(["subset_sum_error", "--quick", "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "subset_sum_error" in text and ".png" in text
    with pytest.raises(SystemExit):
        cli.main(["no_such_figure"])
