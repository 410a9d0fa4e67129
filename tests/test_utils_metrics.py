"""Metrics against values worked out by hand (comments show the arithmetic)."""
import numpy
import pytest

import minigrad
from minigrad.utils.metrics import (
    RunningMean, accuracy, classification_report, confusion_matrix, f1_score, precision, recall,
    top_k_accuracy,
)

# Six examples, three classes.
TARGETS = numpy.array([0, 0, 1, 1, 2, 2])
PREDICTED = numpy.array([0, 1, 1, 1, 0, 2])
# true\pred   0  1  2
#    0        1  1  0
#    1        0  2  0
#    2        1  0  1
MATRIX = numpy.array([[1, 1, 0], [0, 2, 0], [1, 0, 1]])


def test_accuracy_of_class_indices_counts_matches():
    assert accuracy(PREDICTED, TARGETS) == pytest.approx(4 / 6)


def test_accuracy_of_scores_uses_argmax_over_classes():
    scores = numpy.array([[2.0, 1.0], [0.1, 0.3], [5.0, -1.0]])  # argmax 0, 1, 0
    assert accuracy(scores, numpy.array([0, 0, 0])) == pytest.approx(2 / 3)


def test_accuracy_accepts_tensors():
    scores = minigrad.tensor([[0.2, 0.8], [0.9, 0.1]])
    assert accuracy(scores, minigrad.tensor(numpy.array([1, 1]))) == pytest.approx(0.5)


def test_accuracy_rejects_mismatched_lengths_naming_both():
    with pytest.raises(ValueError, match="3 predictions but 2 targets"):
        accuracy(numpy.array([0, 1, 2]), numpy.array([0, 1]))


def test_top_k_accuracy_counts_target_within_k_best():
    scores = numpy.array([
        [0.5, 0.3, 0.2],   # target 1 is 2nd
        [0.1, 0.2, 0.7],   # target 0 is 3rd
        [0.6, 0.3, 0.1],   # target 0 is 1st
    ])
    targets = numpy.array([1, 0, 0])
    assert top_k_accuracy(scores, targets, k=1) == pytest.approx(1 / 3)
    assert top_k_accuracy(scores, targets, k=2) == pytest.approx(2 / 3)
    assert top_k_accuracy(scores, targets, k=3) == pytest.approx(1.0)


def test_top_k_accuracy_with_k_1_equals_accuracy_on_ties():
    scores = numpy.array([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0]])  # argmax picks the first of a tie
    targets = numpy.array([0, 2])
    assert top_k_accuracy(scores, targets, k=1) == accuracy(scores, targets) == 0.5


def test_top_k_accuracy_rejects_k_larger_than_classes():
    with pytest.raises(ValueError, match=r"k must be in \[1, 3\]"):
        top_k_accuracy(numpy.zeros((2, 3)), numpy.array([0, 1]), k=4)


def test_confusion_matrix_rows_are_true_classes():
    numpy.testing.assert_array_equal(confusion_matrix(PREDICTED, TARGETS), MATRIX)


def test_confusion_matrix_num_classes_pads_unseen_classes():
    matrix = confusion_matrix(numpy.array([0, 1]), numpy.array([0, 1]), num_classes=4)
    assert matrix.shape == (4, 4) and matrix.sum() == 2 and matrix[3].sum() == 0


def test_confusion_matrix_rejects_labels_out_of_range():
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 2\)"):
        confusion_matrix(numpy.array([0, 1]), numpy.array([0, 2]), num_classes=2)


def test_precision_is_diagonal_over_column_sums():
    # columns sum to 2, 3, 1: precision = 1/2, 2/3, 1/1
    numpy.testing.assert_allclose(precision(PREDICTED, TARGETS), [1 / 2, 2 / 3, 1.0])


def test_recall_is_diagonal_over_row_sums():
    # rows sum to 2, 2, 2: recall = 1/2, 2/2, 1/2
    numpy.testing.assert_allclose(recall(PREDICTED, TARGETS), [0.5, 1.0, 0.5])


def test_f1_is_harmonic_mean_of_precision_and_recall():
    # class 1: 2 * (2/3) * 1 / (2/3 + 1) = 0.8; class 2: 2 * 1 * 0.5 / 1.5 = 2/3
    numpy.testing.assert_allclose(f1_score(PREDICTED, TARGETS), [0.5, 0.8, 2 / 3])


def test_precision_recall_f1_accept_a_confusion_matrix():
    numpy.testing.assert_allclose(f1_score(MATRIX), f1_score(PREDICTED, TARGETS))


def test_class_never_predicted_has_zero_precision_not_nan():
    matrix = numpy.array([[2, 0], [1, 0]])  # class 1 never predicted, never right
    numpy.testing.assert_array_equal(precision(matrix), [2 / 3, 0.0])
    numpy.testing.assert_array_equal(f1_score(matrix), [0.8, 0.0])


def test_classification_report_lists_every_class_and_accuracy():
    report = classification_report(PREDICTED, TARGETS, class_names=["cat", "dog", "emu"])
    assert "cat" in report and "emu" in report and "0.6667 of 6" in report


def test_running_mean_weights_by_count():
    meter = RunningMean()
    meter.update(0.5, count=32)
    meter.update(0.2, count=16)
    assert meter.mean == pytest.approx((0.5 * 32 + 0.2 * 16) / 48)
