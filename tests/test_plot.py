"""pynn.plot: figures carry the data they are given, PNGs are written, matplotlib stays
out of `import pynn`, bad input raises."""
import os
import subprocess
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
from pynn import plot  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def close_figures():
    yield
    import matplotlib.pyplot as plt
    plt.close("all")


class History:
    def __init__(self, h, epoch=None):
        self.history = h
        self.epoch = epoch if epoch is not None else list(range(len(h["loss"])))


def test_confusion_matrix_exact():
    cm = plot.confusion_matrix([0, 1, 2, 2, 1, 0], [0, 2, 2, 2, 1, 1])
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 1], [0, 0, 2]])
    probs = np.eye(4)[[3, 0]]                  # (N, K) scores: argmax taken
    np.testing.assert_array_equal(plot.confusion_matrix([3, 1], probs, 4),
                                  [[0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]])
    assert plot.confusion_matrix(np.zeros(0, int), np.zeros(0, int), 2).sum() == 0


@pytest.mark.parametrize("yt,yp,msg", [([0, 1], [0], "same length"),
                                       ([0, -1], [0, 1], "non-negative"),
                                       ([0.5, 1], [0, 1], "integer"),
                                       ([0, 5], [0, 1], "< num_classes")])
def test_confusion_matrix_bad_input(yt, yp, msg):
    with pytest.raises(ValueError, match=msg):
        plot.confusion_matrix(np.asarray(yt), np.asarray(yp), 3 if msg.startswith("<") else None)


def test_history_curves(tmp_path):
    h = {"loss": [0.9, 0.5, 0.4], "accuracy": [0.6, 0.8, 0.85],
         "val_loss": [0.8, 0.6, 0.55], "val_accuracy": [0.7, 0.78, 0.8],
         "learning_rate": [1e-3] * 3}
    fig = plot.plot_history(History(h, epoch=[2, 3, 4]), path=tmp_path / "h.png")
    assert (tmp_path / "h.png").read_bytes()[:8] == PNG
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["loss", "accuracy"]
    for ax, name in zip(axes, ("loss", "accuracy")):
        lines = {ln.get_label(): ln for ln in ax.get_lines()}
        assert sorted(lines) == ["train", "validation"]
        np.testing.assert_array_equal(lines["train"].get_ydata(), h[name])
        np.testing.assert_array_equal(lines["validation"].get_ydata(), h["val_" + name])
        np.testing.assert_array_equal(lines["train"].get_xdata(), [3, 4, 5])  # initial_epoch


def test_history_dict_without_validation():
    fig = plot.plot_history({"accuracy": [0.1, 0.2], "loss": [2.0, 1.0]})
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]   # loss first
    assert [ln.get_label() for ln in fig.axes[0].get_lines()] == ["train"]


@pytest.mark.parametrize("bad", [{}, None, [1, 2]])
def test_history_bad_input(bad):
    with pytest.raises(ValueError, match="History"):
        plot.plot_history(bad)


def test_prediction_grid(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 30)
    pred = labels.copy()
    wrong = [1, 7, 24]
    pred[wrong] = (pred[wrong] + 1) % 10
    probs = np.full((30, 10), 0.01)
    probs[np.arange(30), pred] = 0.91
    names = [f"c{i}" for i in range(10)]
    fig = plot.plot_predictions(images, labels, probs, names, path=tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:8] == PNG
    axes = fig.axes
    assert len(axes) == 25
    red = matplotlib.colors.to_rgba("red")
    for k, ax in enumerate(axes):
        label = ax.xaxis.label
        assert label.get_text() == f"c{pred[k]} 91%\n(c{labels[k]})"
        assert (matplotlib.colors.to_rgba(label.get_color()) == red) == (k in wrong)
        np.testing.assert_array_equal(ax.get_images()[0].get_array(), images[k])


def test_prediction_grid_few_images_and_int_predictions():
    fig = plot.plot_predictions(np.zeros((3, 8, 8)), [1, 2, 3], [1, 2, 0])
    axes = fig.axes
    assert sum(ax.axison for ax in axes) == 3
    assert axes[2].xaxis.label.get_text() == "0\n(3)"


def test_prediction_grid_bad_lengths():
    with pytest.raises(ValueError, match="same length"):
        plot.plot_predictions(np.zeros((3, 8, 8)), [1, 2], [1, 2, 0])


@pytest.mark.parametrize("normalize", [False, True])
def test_confusion_plot(tmp_path, normalize):
    yt = np.array([0, 0, 1, 1, 1, 2])
    yp = np.array([0, 1, 1, 1, 2, 2])
    fig = plot.plot_confusion_matrix(yt, yp, ["a", "b", "c"], normalize=normalize,
                                     path=tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:8] == PNG
    ax = fig.axes[0]
    cm = np.array([[1, 1, 0], [0, 2, 1], [0, 0, 1]])
    want = cm / cm.sum(1, keepdims=True) if normalize else cm
    np.testing.assert_allclose(ax.get_images()[0].get_array(), want)
    texts = [t.get_text() for t in ax.texts]
    assert texts[4] == ("0.67" if normalize else "2")
    assert "0.6667" in ax.get_title()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]


def run_py(code, env_drop=()):
    env = {k: v for k, v in os.environ.items() if k not in env_drop}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_matplotlib_imported_lazily_and_headless():
    out = run_py("import sys, pynn, pynn.plot, pynn.datasets, pynn.io\n"
                 "print('matplotlib' in sys.modules)\n"
                 "pynn.plot.plot_confusion_matrix([0, 1], [0, 1])\n"
                 "import matplotlib; print(matplotlib.get_backend().lower())",
                 env_drop=("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND"))
    assert out.splitlines() == ["False", "agg"]
