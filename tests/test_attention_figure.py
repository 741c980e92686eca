"""The attention figure (Otsuka et al. 2025 experiments): the quick path writes its files, the
plotted series are the CSVs' data, the task and the rescaling are what the docstring says."""

from __future__ import annotations

import math

import matplotlib
import matplotlib.image
import matplotlib.pyplot
import numpy as np
import pytest

from figures import attention_error_width as F
from slth.nets.attention import merged_matrices

_TINY = {"train": {"samples": 512, "epochs": 1, "batch": 256, "T_choices": [4]},
         "ns": [10, 20, 30], "sources": 3, "test": 16, "T_ns": [20], "Ts": [8, 32],
         "block_ns": [20, 40], "blocks": [1, 2], "block_sources": 1, "block_test": 8,
         "wide": [(1, 8), (2, 8)], "wide_ms": [2, 3], "wide_sources": 1, "wide_test": 8}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("attn_fig")
    return out, F.main(out, quick=True, rng=0, overrides=_TINY)


def test_quick_mode_writes_every_file(tmp_path):
    paths = F.main(tmp_path, quick=True, rng=0)
    for key in ("csv", "fit_csv", "T_csv", "blocks_csv", "wide_csv", "target_csv", "png",
                "pdf"):
        assert paths[key].exists() and paths[key].stat().st_size > 0 and paths[key].parent == \
            tmp_path
    img = matplotlib.image.imread(paths["png"])
    assert img.ndim == 3 and img.shape[0] > 1000
    assert paths["pdf"].read_bytes()[:5] == b"%PDF-"
    rows = F.read_rows(paths)
    assert len(rows["width"]) == 2 * len(F.QUICK["ns"]) * F.QUICK["sources"] == 48
    assert {r["mode"] for rs in rows.values() for r in rs} == {"quick"}


def test_csv_columns_and_shapes(tiny):
    _, paths = tiny
    rows = F.read_rows(paths)
    assert set(rows["width"][0]) == set(F.CSV_COLUMNS)
    assert set(rows["T"][0]) == set(F.T_COLUMNS)
    assert set(rows["blocks"][0]) == set(F.BLOCK_COLUMNS)
    assert set(rows["wide"][0]) == set(F.WIDE_COLUMNS)
    assert len(rows["width"]) == 2 * 3 * 3 and len(rows["T"]) == 2
    assert len(rows["blocks"]) == 2 * 2 and len(rows["wide"]) == 2 * 2
    for r in rows["width"]:
        assert r["solve"] == "exact" and 0.0 <= r["reg_token_error"] <= r["max_error"]
    for r in rows["blocks"]:
        assert r["n_ff"] == r["n"] // 4
    # error falls with width on average (exact subset sums)
    mean = {n: np.mean([r["max_error"] for r in rows["width"] if r["n"] == n
                        and r["target"] == "random"]) for n in (10, 30)}
    assert mean[30] < mean[10]


def test_plotted_series_are_the_csv_data(tiny):
    _, paths = tiny
    rows = F.read_rows(paths)
    fig = F.plot(rows)
    ax_a, ax_b, ax_c, ax_d = fig.axes[:4]
    # panel (a): the mean line of each kind is the mean over the sources in the CSV
    for kind in ("trained", "random"):
        want = [np.mean([r["max_error"] for r in rows["width"] if r["target"] == kind
                         and r["n"] == n]) for n in (10, 20, 30)]
        label = f"{kind} target: mean $\\pm$ std"
        cont = next(c for c in ax_a.containers if c.get_label() == label)
        line = cont.lines[0]
        np.testing.assert_allclose(line.get_xdata(), [10, 20, 30])
        np.testing.assert_allclose(line.get_ydata(), want, rtol=1e-12)
    # the paper's law on the same axes
    paper = next(ln for ln in ax_a.lines if "Otsuka" in ln.get_label())
    np.testing.assert_allclose(paper.get_ydata(), 0.8 * np.exp(-0.06 * np.array([10, 20, 30])))
    # the fits drawn are the fit CSV's
    fits = {(f["panel"], f["series"]): f for f in rows["fit"]}
    for kind in ("trained", "random"):
        f = fits[("a", kind)]
        ln = next(x for x in ax_a.lines if x.get_label().startswith("fit")
                  and f"{f['a']:.3g}" in x.get_label())
        np.testing.assert_allclose(ln.get_ydata(), f["a"] * np.exp(-f["b"] * np.array(
            [10.0, 20.0, 30.0])))
    # panel (b): max and mean over tokens per T
    line = next(ln for ln in ax_b.lines if ln.get_label() == "n = 20: max")
    np.testing.assert_allclose(line.get_ydata(), [r["max_error"] for r in rows["T"]])
    np.testing.assert_allclose(line.get_xdata(), [8, 32])
    # panel (c): per-depth means; (d): per-(H, d) means
    for k in (1, 2):
        line = next(ln for ln in ax_c.lines if ln.get_label().startswith(f"{k} block"))
        want = [np.mean([r["max_error"] for r in rows["blocks"] if r["blocks"] == k
                         and r["n"] == n]) for n in (20, 40)]
        np.testing.assert_allclose(line.get_ydata(), want)
    line = next(ln for ln in ax_d.lines if ln.get_label() == "H = 2, d = 8")
    np.testing.assert_allclose(line.get_ydata(), [r["max_error"] for r in rows["wide"]
                                                  if r["heads"] == 2])
    matplotlib.pyplot.close(fig)


def test_fits_recover_known_laws():
    n = np.arange(10, 101, 10, dtype=float)
    f = F.fit_exp(n, 0.8 * np.exp(-0.06 * n))
    assert f["a"] == pytest.approx(0.8) and f["b"] == pytest.approx(0.06)
    assert F.fit_exp([1, 2], [1e-20, 1e-20]) is None   # nothing above the floor
    sh = F.fit_shared_rate({1: (n, 0.5 * np.exp(-0.1 * n)), 3: (n, 2.0 * np.exp(-0.1 * n))})
    assert sh["b"] == pytest.approx(0.1) and sh["a"][1] == pytest.approx(0.5)
    assert sh["a"][3] == pytest.approx(2.0)
    assert F.fit_shared_rate({1: ([100.0], [1e-3]), 2: ([100.0], [2e-3])}) is None


def test_angular_task_and_rescaling_keep_the_function():
    x, w = F.angular_sequences(5, 6, 0)
    assert x.shape == (5, 6, 2) and np.allclose(np.linalg.norm(x, axis=-1), 1.0)
    assert np.all(np.abs(w) <= math.pi)
    # tokens rotate by w per step
    ang = np.arctan2(x[..., 1], x[..., 0])
    np.testing.assert_allclose(np.cos(ang[:, 1] - ang[:, 0]), np.cos(w), atol=1e-12)
    trained = F.train_target(0, samples=256, epochs=1, batch=128, T_choices=[4])
    net = F.to_slth(trained)
    scaled, c = F.rescale(net)
    lay = scaled.layers[0][1]
    qk, vo = merged_matrices(lay, {k.split(".")[-1]: v for k, v in scaled.params.items()})
    assert np.linalg.norm(qk[0], 2) <= 1.0 and np.linalg.norm(vo[0], 2) <= 1.0 and c >= 1.0
    xs = np.concatenate([np.broadcast_to(trained["token"], (5, 1, 2)), x[:, :4]], axis=1)
    np.testing.assert_allclose(scaled.forward(c * xs), net.forward(xs), rtol=1e-10, atol=1e-12)


def test_numpy_gradients_and_training_equal_torchs():
    """The numpy fallback (hand-derived gradients, AdamW by hand) is torch's training."""
    torch = pytest.importorskip("torch", reason="the reference is torch's autograd")
    g = np.random.default_rng(0)
    P = {"q_weight": g.normal(size=(4, 2)), "k_weight": g.normal(size=(4, 2)),
         "v_weight": g.normal(size=(4, 2)), "out_weight": g.normal(size=(1, 4)),
         "token": g.normal(size=2)}
    w, th = g.uniform(-3, 3, 7), g.uniform(0, 3, 7)
    loss, grads = F._np_loss_grads(P, F._task_inputs(P["token"], w, th, 5, np), w, 4)
    Pt = {k: torch.tensor(v, requires_grad=True) for k, v in P.items()}
    xt = F._task_inputs(Pt["token"], torch.from_numpy(w), torch.from_numpy(th), 5, torch)
    s = (xt[:, 0] @ Pt["q_weight"].T)[:, None, :] @ (xt @ Pt["k_weight"].T).transpose(1, 2)
    p = torch.softmax(s[:, 0] / 2.0, dim=-1)
    pred = (torch.einsum("bt,btd->bd", p, xt @ Pt["v_weight"].T) @ Pt["out_weight"].T)[:, 0]
    ref = torch.mean((pred - torch.from_numpy(w)) ** 2)
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    for k in P:
        np.testing.assert_allclose(grads[k], Pt[k].grad.numpy(), rtol=1e-9, atol=1e-14)
    kw = {"samples": 300, "epochs": 2, "batch": 128, "T_choices": [4, 9]}
    a = F.train_target(2, backend="torch", **kw)
    b = F.train_target(2, backend="numpy", **kw)
    assert (a["backend"], b["backend"]) == ("torch", "numpy")
    for k in a["params"]:
        np.testing.assert_allclose(a["params"][k], b["params"][k], rtol=1e-9, atol=1e-12)
    assert a["val_mse"] == pytest.approx(b["val_mse"], rel=1e-9)
    with pytest.raises(F.InputError, match="`backend`"):
        F.train_target(0, backend="jax")


def test_slth_target_equals_the_torch_model():
    """The regression token's output of the slth network is torch's prediction."""
    torch = pytest.importorskip("torch", reason="the reference is torch")

    trained = F.train_target(1, samples=256, epochs=1, batch=256, T_choices=[4])
    net = F.to_slth(trained)
    x, _ = F.angular_sequences(3, 4, 2)
    xs = np.concatenate([np.broadcast_to(trained["token"], (3, 1, 2)), x], axis=1)
    p = {k: torch.from_numpy(v) for k, v in trained["params"].items()}
    X = torch.from_numpy(xs)
    s = (X @ p["q_weight"].T) @ (X @ p["k_weight"].T).transpose(1, 2) / math.sqrt(4)
    ref = torch.softmax(s, dim=-1) @ (X @ p["v_weight"].T) @ p["out_weight"].T
    np.testing.assert_allclose(net.forward(xs), ref.numpy(), rtol=1e-10, atol=1e-12)


def test_random_targets_meet_the_hypothesis():
    blocks = F.random_blocks(2, 3)
    four = F.random_blocks(4, 3)
    for k, v in blocks.params.items():
        np.testing.assert_array_equal(v, four.params[k])    # nested target family
        if k.endswith(".weight"):
            assert np.linalg.norm(v, 2) <= 1.0
    att = F.random_attention(8, 8, 4, 0)
    qk, vo = merged_matrices(att.layers[0][1], {k.split(".")[-1]: v
                                                for k, v in att.params.items()})
    assert all(1 - 1e-9 < np.linalg.norm(M, 2) <= 1.0 for M in (*qk, *vo))
