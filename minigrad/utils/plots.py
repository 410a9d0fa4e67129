"""Plots saved as PNG files: training curves, a confusion matrix, a grid of sample predictions.

matplotlib (the `dev` extra) is imported only when a plot is made. Figures
are drawn with matplotlib's Agg canvas directly, not through pyplot, so
nothing here needs a display, opens a window, or changes the caller's
matplotlib backend; it works the same on a laptop, a server and in CI.

    plot_training_curves(history, "runs/mnist/curves.png")      # loss and accuracy per epoch
    plot_confusion_matrix(matrix, "runs/mnist/confusion.png", class_names)
    plot_sample_predictions(images, labels, predictions, "runs/mnist/samples.png", class_names)
"""
from pathlib import Path

import numpy

from minigrad.utils.metrics import to_numpy


def _figure(width, height):
    """A matplotlib Figure attached to an Agg (PNG) canvas."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "minigrad.utils.plots needs matplotlib: pip install matplotlib (or minigrad[dev])"
        ) from None
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=100)
    return path


def _columns(history):
    """{name: [values per epoch]} from a MetricHistory, a list of row dicts, or a dict of lists."""
    if hasattr(history, "rows"):
        history = history.rows
    if isinstance(history, dict):
        return {name: list(values) for name, values in history.items()}
    names = {}
    for row in history:
        names.update(dict.fromkeys(row))
    return {name: [row.get(name) for row in history] for name in names}


def _as_float(values):
    """Numbers as floats, with missing or non-numeric entries as NaN (a gap in the line)."""
    out = []
    for value in values:
        try:
            out.append(float(value))
        except (TypeError, ValueError):
            out.append(float("nan"))
    return numpy.array(out)


def plot_training_curves(history, path, title=None,
                         pairs=(("train_loss", "val_loss"), ("train_acc", "val_acc"))):
    """Loss and accuracy per epoch, training vs validation, one panel each; saved to `path`.

    history: a MetricHistory, a list of per-epoch dicts, or a dict of lists.
    pairs: the (training, validation) column names of each panel; a column
    missing from the history is skipped. The x axis is the `epoch` column if
    there is one, else 1, 2, 3, ...
    """
    columns = _columns(history)
    panels = [[name for name in pair if name in columns] for pair in pairs]
    panels = [names for names in panels if names]
    if not panels:
        raise ValueError(
            f"plot_training_curves: none of the columns {[n for pair in pairs for n in pair]} "
            f"is in the history (it has {sorted(columns)})"
        )
    length = max(len(values) for values in columns.values())
    epochs = _as_float(columns["epoch"]) if "epoch" in columns else numpy.arange(1, length + 1)
    figure = _figure(5 * len(panels), 3.8)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, names in zip(axes, panels):
        for name in names:
            ax.plot(epochs, _as_float(columns[name]), marker="o", markersize=3, label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(names[0].split("_", 1)[-1])
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        figure.suptitle(title)
    return _save(figure, path)


def plot_confusion_matrix(matrix, path, class_names=None, normalize=True, title=None):
    """A heat map of the confusion matrix (rows: true class, columns: predicted); saved to `path`.

    normalize=True colours each row by its fraction (the per-class recall on
    the diagonal) and writes the raw counts in the cells.
    """
    counts = to_numpy(matrix)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"plot_confusion_matrix: matrix must be square (K, K), got shape {counts.shape}")
    k = counts.shape[0]
    names = list(class_names) if class_names is not None else [str(c) for c in range(k)]
    if len(names) != k:
        raise ValueError(f"plot_confusion_matrix: {len(names)} class names for a {k} x {k} matrix")
    rows = counts.sum(axis=1, keepdims=True)                          # (K, 1)
    shown = counts / numpy.maximum(rows, 1) if normalize else counts
    size = 2.5 + 0.45 * k
    figure = _figure(size + 1, size)
    ax = figure.subplots()
    image = ax.imshow(shown, cmap="Blues", vmin=0)
    figure.colorbar(image, ax=ax, label="fraction of the true class" if normalize else "count")
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if k <= 20:  # beyond that the numbers would not fit in the cells
        threshold = shown.max() / 2 if shown.size else 0
        for i in range(k):
            for j in range(k):
                colour = "white" if shown[i, j] > threshold else "black"
                ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=7, color=colour)
    ax.set_title(title or "confusion matrix")
    return _save(figure, path)


def _displayable(images, mean=None, std=None):
    """(N, H, W) or (N, H, W, 3) floats in [0, 1] from uint8 or float (N, C, H, W) / (N, H, W)."""
    images = to_numpy(images)
    if images.ndim == 3:
        images = images[:, None]                                       # (N, H, W) -> (N, 1, H, W)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"plot_sample_predictions: images must be (N, 1 or 3, H, W) or (N, H, W), got {images.shape}"
        )
    images = images.astype(numpy.float64)
    if std is not None:  # undo Normalize: x * std + mean
        images = images * numpy.asarray(std, dtype=numpy.float64).reshape(1, -1, 1, 1)
    if mean is not None:
        images = images + numpy.asarray(mean, dtype=numpy.float64).reshape(1, -1, 1, 1)
    if images.max(initial=0) > 1.5:  # uint8-range pixels
        images = images / 255.0
    images = numpy.clip(images, 0.0, 1.0)
    if images.shape[1] == 1:
        return images[:, 0]                                            # (N, H, W)
    return images.transpose(0, 2, 3, 1)                                # (N, C, H, W) -> (N, H, W, C)


def plot_sample_predictions(images, labels, predictions, path, class_names=None,
                            mean=None, std=None, columns=8, title=None):
    """A grid of images titled "predicted (true)", wrong ones in red; saved to `path`.

    images: (N, C, H, W) or (N, H, W), uint8 or float; pass the `mean` and
    `std` of a Normalize transform to show the original pixels.
    predictions: class indices (N,) or scores (N, K).
    """
    from minigrad.utils.metrics import predicted_classes

    pictures = _displayable(images, mean, std)
    labels = to_numpy(labels).reshape(-1)
    predicted = predicted_classes(predictions, "plot_sample_predictions")
    n = len(pictures)
    if not (len(labels) == len(predicted) == n) or n == 0:
        raise ValueError(
            f"plot_sample_predictions: need the same positive number of images ({n}), "
            f"labels ({len(labels)}) and predictions ({len(predicted)})"
        )
    names = list(class_names) if class_names is not None else None
    columns = min(columns, n)
    rows = -(-n // columns)
    figure = _figure(1.3 * columns, 1.5 * rows)
    axes = figure.subplots(rows, columns, squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index >= n:
            continue
        ax.imshow(pictures[index], cmap="gray" if pictures.ndim == 3 else None, vmin=0, vmax=1)
        guess, truth = int(predicted[index]), int(labels[index])
        guess_name = names[guess] if names else str(guess)
        truth_name = names[truth] if names else str(truth)
        ax.set_title(f"{guess_name} ({truth_name})", fontsize=8,
                     color="black" if guess == truth else "red")
    if title:
        figure.suptitle(title)
    return _save(figure, path)
