"""Plots for training runs: training curves, a 5x5 prediction grid, a confusion matrix; for
convolutional models the first layer's filters, the feature maps of one image and a saliency
map (the gradient of a class score with respect to the input pixels, `saliency`).

matplotlib is imported inside the functions (so `import pynn` stays fast) and falls back to
the non-interactive Agg backend when no display is available, so the plots also work in CI
and over ssh. Each function returns the matplotlib Figure and, given `path`, saves it as PNG.
"""
import os
import sys

import numpy as np

__all__ = ["plot_history", "plot_predictions", "plot_confusion_matrix", "confusion_matrix",
           "saliency", "feature_maps", "plot_filters", "plot_feature_maps", "plot_saliency"]


def _pyplot():
    import matplotlib
    headless = sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or
                                                         os.environ.get("WAYLAND_DISPLAY"))
    if headless and "matplotlib.pyplot" not in sys.modules \
            and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _finish(fig, path):
    fig.tight_layout()
    if path is not None:
        fig.savefig(os.fspath(path), dpi=100, format="png")
    return fig


def plot_history(history, path=None, title=None):
    """Training curves: one panel per quantity (loss, then each metric), train and val_.

    history: a History (its .history dict) or a dict {name: per-epoch values}.
    """
    h = getattr(history, "history", history)
    if not isinstance(h, dict) or not h:
        raise ValueError(f"expected a History or a non-empty dict of per-epoch lists, "
                         f"received {type(history).__name__}")
    names = [k for k in h if not k.startswith("val_") and k not in ("lr", "learning_rate")]
    names += [k[4:] for k in h if k.startswith("val_") and k[4:] not in h]  # val-only
    names = sorted(names, key=lambda k: (k != "loss", names.index(k)))   # loss first
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.6), squeeze=False)
    epochs = getattr(history, "epoch", None)
    for ax, name in zip(axes[0], names):
        for key, label, style in ((name, "train", "-o"), ("val_" + name, "validation", "-s")):
            if key in h and len(h[key]):
                vals = np.asarray(h[key], dtype=float)
                x = np.asarray(epochs)[:len(vals)] + 1 if epochs is not None and \
                    len(epochs) >= len(vals) else np.arange(1, len(vals) + 1)
                ax.plot(x, vals, style, ms=3, label=label)
                if len(x) <= 20:
                    ax.set_xticks(x)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


def plot_predictions(images, labels, predictions, class_names=None, path=None, rows=5,
                     cols=5, title=None):
    """The first rows*cols images with 'predicted (true)' captions; mistakes in red.

    images: (N, H, W) or (N, H, W, C); labels: (N,) ints; predictions: (N,) ints or (N, K)
    probabilities (argmax taken, and its probability shown).
    """
    images, labels = np.asarray(images), np.asarray(labels).reshape(-1)
    predictions = np.asarray(predictions)
    prob = None
    if predictions.ndim == 2:
        prob = predictions.max(axis=1)
        predictions = predictions.argmax(axis=1)
    if not (len(images) == len(labels) == len(predictions)):
        raise ValueError(f"images, labels and predictions must have the same length, "
                         f"received {len(images)}, {len(labels)}, {len(predictions)}")
    name = (lambda i: str(class_names[int(i)])) if class_names is not None else str
    plt = _pyplot()
    n = min(rows * cols, len(images))
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.1 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= n:
            ax.axis("off")
            continue
        ok = int(predictions[k]) == int(labels[k])
        ax.imshow(images[k], cmap=plt.cm.binary if images[k].ndim == 2 else None)
        caption = f"{name(predictions[k])}"
        if prob is not None:
            caption += f" {100 * prob[k]:.0f}%"
        caption += f"\n({name(labels[k])})"
        ax.set_xlabel(caption, color="tab:blue" if ok else "red", fontsize=8)
        if not ok:
            for s in ax.spines.values():
                s.set_color("red")
                s.set_linewidth(2)
    fig.suptitle(title or "predicted (true); mistakes in red", fontsize=10)
    return _finish(fig, path)


def confusion_matrix(y_true, y_pred, num_classes=None):
    """(K, K) int64 counts: rows are true classes, columns predicted."""
    y_true, y_pred = np.asarray(y_true).reshape(-1), np.asarray(y_pred)
    if y_pred.ndim == 2:
        y_pred = y_pred.argmax(axis=1)
    y_pred = y_pred.reshape(-1)
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true and y_pred must have the same length, received "
                         f"{len(y_true)} and {len(y_pred)}")
    for a, what in ((y_true, "y_true"), (y_pred, "y_pred")):
        if a.size and (a.dtype.kind not in "iu" or a.min() < 0):
            raise ValueError(f"{what} must hold non-negative integer class ids")
    k = num_classes or (int(max(y_true.max(initial=0), y_pred.max(initial=0))) + 1)
    if y_true.size and max(y_true.max(), y_pred.max()) >= k:
        raise ValueError(f"class ids must be < num_classes={k}")
    return np.bincount(y_true.astype(np.int64) * k + y_pred, minlength=k * k).reshape(k, k)


def plot_confusion_matrix(y_true, y_pred, class_names=None, normalize=False, path=None,
                          title=None):
    """Confusion matrix heat map with the counts (or row fractions, `normalize`) written in."""
    k = len(class_names) if class_names is not None else None
    cm = confusion_matrix(y_true, y_pred, k)
    shown = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    k = len(cm)
    names = [str(c) for c in class_names] if class_names is not None else \
        [str(i) for i in range(k)]
    plt = _pyplot()
    size = 2.5 + 0.55 * k
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(shown, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    hi = shown.max() if shown.size else 0
    for i in range(k):
        for j in range(k):
            text = f"{shown[i, j]:.2f}" if normalize else f"{cm[i, j]}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="white" if shown[i, j] > 0.5 * hi else "black")
    acc = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(title or f"confusion matrix (accuracy {acc:.4f})")
    return _finish(fig, path)


# ---- convolutional models ------------------------------------------------------------------

def saliency(model, x, class_index=None):
    """d score[class] / d x for a batch x (a new array, x's shape): the one-hot dy of each
    sample's class (default: its predicted class) propagated back through every layer.

    The score is the output before a softmax/sigmoid that fuses into the loss (the logit),
    else the output itself. Inference mode (dropout off, BatchNorm on moving statistics);
    the parameters are not touched, only the model's gradient buffer is used as scratch.
    """
    from .trainer import as_inputs
    if not model.built:
        raise ValueError("saliency needs a built model")
    x = as_inputs(model, x)
    layers = model._layers
    need = [layer._need_dx for layer in layers]
    last = layers[-1]
    logits = last._fusable_output and last.activation.name in ("softmax", "sigmoid")
    old_logits = last._output_logits
    try:
        last._output_logits = logits
        for layer in layers:
            layer._need_dx = True
        out = x
        for layer in layers:
            out = layer.forward(out, training=False)
        out2 = out.reshape(out.shape[0], -1)
        if class_index is None:
            idx = out2.argmax(axis=1)
        else:
            idx = np.broadcast_to(np.asarray(class_index, dtype=np.int64), (out2.shape[0],))
            if idx.min(initial=0) < 0 or idx.max(initial=0) >= out2.shape[1]:
                raise ValueError(f"class_index must be in [0, {out2.shape[1]}), received "
                                 f"{class_index!r}")
        dy = np.zeros_like(out2)
        dy[np.arange(len(dy)), idx] = 1
        dy = dy.reshape(out.shape)
        for layer in reversed(layers):
            dy = layer.backward(dy)
        return np.array(dy, copy=True)
    finally:
        last._output_logits = old_logits
        for layer, n in zip(layers, need):
            layer._need_dx = n


def feature_maps(model, image, layer_types=("Conv2D", "DepthwiseConv2D")):
    """[(layer name, (H, W, C) maps)] of one image through the model, for the layers whose
    class name is in layer_types (channels last)."""
    from .trainer import as_inputs
    x = as_inputs(model, np.asarray(image)[None])
    maps = []
    for layer in model._layers:
        x = layer.forward(x, training=False)
        if type(layer).__name__ in layer_types:
            m = x[0]
            if getattr(layer, "data_format", "channels_last") == "channels_first":
                m = np.moveaxis(m, 0, -1)
            maps.append((layer.name, np.array(m, copy=True)))
    return maps


def _as_image(img):
    """(H, W) or (H, W, 3|4) for imshow: one channel squeezed, other counts averaged."""
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[-1] not in (3, 4):
        return img.mean(axis=-1)
    return img


def _grid(n, cols):
    cols = min(cols, n)
    return -(-n // cols), cols


def plot_filters(layer, path=None, cols=8, title=None):
    """The kernels of a convolution layer (KH, KW, C, OC) as OC small images (channel mean
    for C > 1), each scaled to its own range."""
    w = layer.params.get("kernel", layer.params.get("depthwise_kernel")) \
        if hasattr(layer, "params") else None
    if w is None or np.ndim(w) != 4:
        raise ValueError("plot_filters needs a built convolution layer with a 4-D kernel")
    w = np.asarray(w, dtype=np.float64).mean(axis=2)               # (KH, KW, OC)
    n = w.shape[-1]
    rows, cols = _grid(n, cols)
    plt = _pyplot()
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols, 1.2 * rows + 0.5), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= n:
            ax.axis("off")
            continue
        ax.imshow(w[:, :, k], cmap="RdBu_r", interpolation="nearest")
        ax.set_title(str(k), fontsize=7)
    fig.suptitle(title or f"{layer.name}: {n} filters {w.shape[0]}x{w.shape[1]}", fontsize=10)
    return _finish(fig, path)


def plot_feature_maps(model, image, path=None, max_channels=16, cols=8, title=None):
    """The image and the first max_channels feature maps of each convolution layer."""
    maps = feature_maps(model, image)
    if not maps:
        raise ValueError("the model has no convolution layers to show")
    plt = _pyplot()
    rows_per = [_grid(min(m.shape[-1], max_channels), cols)[0] for _, m in maps]
    total = 1 + sum(rows_per)
    fig, axes = plt.subplots(total, cols, figsize=(1.3 * cols, 1.35 * total), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.axis("off")
    axes[0, 0].imshow(_as_image(image), cmap="gray")
    axes[0, 0].axis("on")
    axes[0, 0].set_title("input", fontsize=7)
    r = 1
    for (name, m), nr in zip(maps, rows_per):
        for k in range(min(m.shape[-1], max_channels)):
            ax = axes[r + k // cols, k % cols]
            ax.axis("on")
            ax.imshow(m[:, :, k], cmap="viridis")
            ax.set_title(f"{name}:{k}", fontsize=6)
        r += nr
    fig.suptitle(title or "feature maps of one image", fontsize=10)
    return _finish(fig, path)


def plot_saliency(model, images, labels=None, class_names=None, path=None, title=None):
    """Each image beside |d score / d pixel| of its predicted class (pynn.plot.saliency)."""
    images = np.asarray(images)
    sal = saliency(model, images)
    pred = np.asarray(model.predict(images, verbose=0)).argmax(axis=1)
    name = (lambda i: str(class_names[int(i)])) if class_names is not None else str
    n = len(images)
    plt = _pyplot()
    fig, axes = plt.subplots(2, n, figsize=(1.8 * n, 4), squeeze=False)
    for k in range(n):
        img = _as_image(images[k])
        s = np.abs(sal[k]).reshape(sal[k].shape[:2] + (-1,)).max(axis=-1)
        axes[0, k].imshow(img, cmap="gray")
        cap = f"pred {name(pred[k])}"
        if labels is not None:
            cap += f"\n(true {name(np.asarray(labels)[k])})"
        axes[0, k].set_title(cap, fontsize=7)
        axes[1, k].imshow(s, cmap="hot")
        for ax in axes[:, k]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(title or "saliency: |d class score / d pixel|", fontsize=10)
    return _finish(fig, path)
