"""Plots write non-empty PNG files (checked by the PNG signature) and reject bad input."""
import numpy
import pytest

pytest.importorskip("matplotlib")

from minigrad.utils.history import MetricHistory  # noqa: E402
from minigrad.utils.plots import (  # noqa: E402
    plot_confusion_matrix, plot_sample_predictions, plot_training_curves,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 1000, f"{path} is not a real PNG"


def test_training_curves_from_history_write_png(tmp_path):
    history = MetricHistory()
    for epoch in range(3):
        history.log(epoch=epoch + 1, train_loss=1.0 / (epoch + 1), val_loss=1.2 / (epoch + 1),
                    train_acc=0.5 + 0.1 * epoch, val_acc=0.45 + 0.1 * epoch)
    assert_png(plot_training_curves(history, tmp_path / "curves.png"))


def test_training_curves_accept_dict_of_lists_with_missing_columns(tmp_path):
    assert_png(plot_training_curves({"train_loss": [1.0, 0.5]}, tmp_path / "loss_only.png"))


def test_training_curves_without_known_columns_name_what_exists(tmp_path):
    with pytest.raises(ValueError, match="it has \\['foo'\\]"):
        plot_training_curves({"foo": [1.0]}, tmp_path / "x.png")


def test_confusion_matrix_plot_writes_png(tmp_path):
    matrix = numpy.array([[5, 1, 0], [2, 7, 1], [0, 0, 9]])
    assert_png(plot_confusion_matrix(matrix, tmp_path / "sub" / "cm.png", class_names=["a", "b", "c"]))


def test_confusion_matrix_plot_rejects_non_square(tmp_path):
    with pytest.raises(ValueError, match=r"square \(K, K\), got shape \(2, 3\)"):
        plot_confusion_matrix(numpy.zeros((2, 3)), tmp_path / "cm.png")


def test_sample_predictions_grid_of_grey_uint8_images(tmp_path):
    images = numpy.random.default_rng(0).integers(0, 256, size=(10, 1, 28, 28), dtype=numpy.uint8)
    labels = numpy.arange(10) % 3
    path = plot_sample_predictions(images, labels, numpy.zeros(10, dtype=numpy.int64), tmp_path / "s.png")
    assert_png(path)


def test_sample_predictions_of_normalised_colour_images_and_scores(tmp_path):
    rng = numpy.random.default_rng(1)
    images = rng.normal(size=(4, 3, 8, 8)).astype(numpy.float32)
    scores = rng.normal(size=(4, 10))
    path = plot_sample_predictions(images, numpy.array([0, 1, 2, 3]), scores, tmp_path / "c.png",
                                   class_names=[str(c) for c in range(10)],
                                   mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2))
    assert_png(path)


def test_sample_predictions_reject_mismatched_counts(tmp_path):
    with pytest.raises(ValueError, match=r"images \(3\), labels \(2\)"):
        plot_sample_predictions(numpy.zeros((3, 4, 4)), numpy.zeros(2, dtype=int),
                                numpy.zeros(3, dtype=int), tmp_path / "x.png")
