"""Figures: the quick paths write data, PNG and PDF; the data have the right shape and law."""

from __future__ import annotations

import csv

import matplotlib
import matplotlib.colors
import matplotlib.image
import matplotlib.lines
import matplotlib.pyplot
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
    assert set(figures.FIGURES) == {"subset_sum_error", "subset_sum_success", "mlp_error_width",
                                    "cnn_error_width", "attention_error_width"}
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


# ----------------------------------------------------------------------------- theory, quick marks
def _style_of(line):
    c = matplotlib.colors.to_rgba
    return (line.get_linestyle(), line.get_marker(), c(line.get_color()),
            c(line.get_markerfacecolor()) if line.get_marker() not in ("None", None) else None)


def _assert_marked(paths, quick):
    from PIL import Image

    mode = "quick" if quick else "full"
    meta = Image.open(paths["png"]).text
    assert f"mode={mode}" in meta["Keywords"]
    assert ("QUICK" in meta["Title"]) == quick
    assert f"mode={mode}".encode() in paths["pdf"].read_bytes()
    for key, p in paths.items():
        if p.suffix == ".csv":
            header, rows = _read_csv(p)
            assert "mode" in header and rows and {r["mode"] for r in rows} == {mode}, key


def test_quick_outputs_are_marked(error_out, tmp_path):
    _, paths = error_out
    _assert_marked(paths, quick=True)
    full = subset_sum_error.main(tmp_path, quick=False, rng=0, progress=False, ns=[4, 8, 10],
                                 instances=20)
    _assert_marked(full, quick=False)


def test_error_figure_legend_matches_lines(error_out):
    _, paths = error_out
    _, rows = _read_csv(paths["csv"])
    rows = [{**r, "n": int(r["n"]), "instances": int(r["instances"]),
             **{k: float(r[k]) for k in ("median", "q25", "q75", "law")}} for r in rows]
    _, fits = _read_csv(paths["fit_csv"])
    fits = {f["distribution"]: {**f, "a": float(f["a"]), "b": float(f["b"]),
                                "n_min": int(f["n_min"]), "n_max": int(f["n_max"])} for f in fits}
    fig = subset_sum_error.plot(rows, fits)
    (legend,) = fig.legends
    drawn = {_style_of(x) for x in legend.findobj(matplotlib.lines.Line2D)}
    for line in fig.axes[0].lines:  # every curve of the main panel has its exact legend style
        assert _style_of(line) in drawn
    texts = [t.get_text() for t in legend.get_texts()]
    for d, f in fits.items():
        assert any(f"{f['a']:.2f}" in t and f"{f['b']:.3f}" in t for t in texts), d
    assert any("0.4" in t and "law" in t for t in texts)
    matplotlib.pyplot.close(fig)


def test_success_figure_theory_legend_and_table(tmp_path, capsys):
    from slth.bounds import LUEKER_C, lueker_n

    trials = {0.1: 120, 0.01: 120}
    paths = subset_sum_success.main(tmp_path, quick=True, rng=0, progress=False, n_max=18,
                                    trials=trials)
    printed = capsys.readouterr().out
    _assert_marked(paths, quick=True)
    _, rates = _read_csv(paths["csv"])
    _, thr = _read_csv(paths["thresholds_csv"])
    for t in thr:  # the theorem's width beside the empirical one
        assert int(t["n_theorem"]) == lueker_n(float(t["eps"]), C=LUEKER_C)
        assert float(t["C_theorem"]) == LUEKER_C
    # the legend and the printed table come from the same rows (one source of truth)
    rates_r, thr_r = subset_sum_success.compute(n_max=18, trials=trials, rng=0,
                                                store=paths["runs"], progress=False)
    fig = subset_sum_success.plot(rates_r, thr_r)
    ax_uni = fig.axes[0]
    texts = [x.get_text() for x in ax_uni.get_legend().get_texts()]
    uni = [t for t in thr_r if t["distribution"] == "uniform"]
    assert texts == [subset_sum_success.legend_entry(t) for t in uni]
    table = subset_sum_success.table(thr_r, quick=True)
    assert table in printed and "QUICK" in table
    for t, csv_t in zip(thr_r, thr):
        if t["C_hat"] is not None:
            c = f"{float(csv_t['C_hat']):.2f}"
            assert c == f"{t['C_hat']:.2f}"
            assert c in table
            if t["distribution"] == "uniform":
                assert any(c in x for x in texts)
    # theorem width drawn (dash-dotted vertical line) where it lies in the scan
    xs = {ln.get_xdata()[0] for ln in ax_uni.lines if ln.get_linestyle() == "-."}
    assert {t["n_theorem"] for t in uni if t["n_theorem"] <= 18} <= xs
    # every positive rate is inside the axis; rate-1 markers sit above every rate < 1
    lo, hi = ax_uni.get_ylim()
    uni_rates = [float(r["rate"]) for r in rates if r["distribution"] == "uniform"]
    pos = [x for x in uni_rates if 0 < x < 1]
    assert lo < min(pos) and max(pos) < hi and 1.0 in uni_rates
    filled = [ln for ln in ax_uni.lines if ln.get_marker() not in ("None", None)
              and ln.get_markerfacecolor() != "none"
              and matplotlib.colors.to_rgba(ln.get_markerfacecolor())[3] > 0]
    assert filled and all(min(ln.get_ydata()) > max(pos) for ln in filled)
    matplotlib.pyplot.close(fig)


def test_mlp_figure_theory_and_quick_fit(tmp_path):
    from figures import mlp_error_width as F
    from slth.bounds import pensia2020_lower_bound
    from slth.constructions import bounded_target
    from slth.plot import pensia2020_eps_at_width, pensia2020_first_width

    units = {"pensia2020": [2, 12, 14], "malach2020": [2, 8]}
    paths = F.main(tmp_path, quick=True, rng=0, progress=False, targets=1, units=units)
    _assert_marked(paths, quick=True)
    header, th = _read_csv(paths["theory_csv"])
    assert tuple(header) == F.THEORY_COLUMNS
    target = bounded_target(F.ARCH, rng=np.random.default_rng(0))
    first = pensia2020_first_width(target, delta=F.DELTA)
    t1 = [t for t in th if t["curve"] == "theorem1"]
    t2 = [t for t in th if t["curve"] == "theorem2"]
    assert t1 and t2 and int(t1[0]["units"]) == first
    for t in t1:
        assert float(t["eps"]) == pytest.approx(pensia2020_eps_at_width(target, int(t["units"]),
                                                                        delta=F.DELTA))
    for t in t2:
        assert float(t["n_params"]) == pytest.approx(
            pensia2020_lower_bound(int(t["d"]), float(t["eps"])))
    # the figure: theory curves drawn, fits labelled quick with their ranges and constants
    _, rows = _read_csv(paths["csv"])
    num = ("units", "targets", "n_source_params")
    rows = [{k: (int(v) if k in num else v if k in ("construction", "mode") else float(v))
             for k, v in r.items()} for r in rows]
    fits = {}
    for c in units:
        rs = [r for r in rows if r["construction"] == c]
        fit = F.fit_exponential if c == "pensia2020" else F.fit_power
        fits[c] = fit(np.array([r["units"] for r in rs]),
                      np.array([r["sampled_median"] for r in rs]), n_min=F.FIT_MIN_N[c])
    theory = F.theory(rows)
    fig = F.plot(rows, fits, top_max=14, theory_rows=theory, quick=True)
    ax, ax2 = fig.axes[:2]
    texts = [x.get_text() for x in ax.get_legend().get_texts()]
    for f in fits.values():
        label = next(x for x in texts if f"n$={f['units_min']}..{f['units_max']}" in x
                     and f"{f['b']:.2f}" in x)
        assert "quick" in label
    assert any(f"{first}" in x.get_text() for x in ax.texts)  # Thm 1 starts beyond n = 14
    fig_texts = [x.get_text() for lg in fig.legends for x in lg.get_texts()]
    assert any("Thm 1" in x for x in fig_texts) and any("Thm 2" in x for x in fig_texts)
    assert sum(ln.get_linestyle() in ("-.", "--") for ln in ax2.lines) == 2
    matplotlib.pyplot.close(fig)


def test_cnn_error_width_quick(tmp_path):
    import csv

    from figures import cnn_error_width

    paths = cnn_error_width.main(tmp_path, quick=True, ns=[4, 8], trials=1, progress=False)
    for key in ("csv", "png", "pdf"):
        assert paths[key].stat().st_size > 0
    with open(paths["csv"]) as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["n"]) for r in rows] == [4, 8] and {r["mode"] for r in rows} == {"quick"}
    assert float(rows[1]["adversarial"]) < float(rows[0]["adversarial"])
    for r in rows:  # the laws drawn beside the data are in the data file too
        assert float(r["law"]) == pytest.approx(0.4 * int(r["n"]) ** 0.5 * 2.0 ** -int(r["n"]))
        assert float(r["adversarial"]) <= float(r["certified"])
    assert rows[0]["published"] == "" and cnn_error_width.PUBLISHED[5] == 0.52
