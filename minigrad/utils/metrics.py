"""Classification metrics: accuracy, top-k accuracy, confusion matrix, precision, recall, F1.

Shapes: N examples, K classes. Every function accepts NumPy arrays, minigrad
Tensors (CPU or GPU), CuPy arrays or nested lists; results are NumPy arrays or
Python floats, computed on the host (metrics are cheap next to training).

Predictions may be given as class indices (N,) or as scores (N, K) (logits
or probabilities); scores are turned into indices with argmax over axis 1.

The confusion matrix M (K, K) counts, for every true class i and predicted
class j, how many examples of class i were predicted as j:

    M[i, j] = #{n : target[n] = i and prediction[n] = j}

From it, per class c:

    true positives   TP[c] = M[c, c]
    predicted as c   TP[c] + FP[c] = sum_i M[i, c]     (column sum)
    really c         TP[c] + FN[c] = sum_j M[c, j]     (row sum)
    precision[c] = TP / (TP + FP)     of the examples called c, the fraction that are c
    recall[c]    = TP / (TP + FN)     of the examples of class c, the fraction found
    F1[c]        = 2 * precision * recall / (precision + recall)   (harmonic mean)

A ratio with a zero denominator (a class never predicted, or absent from the
targets) is reported as 0, the convention scikit-learn uses by default.
"""
import numpy

from minigrad import backend


def to_numpy(values):
    """A NumPy array from a Tensor, a CuPy array, a NumPy array, a list or a number."""
    if hasattr(values, "numpy") and callable(values.numpy):  # minigrad Tensor
        return numpy.asarray(values.detach().numpy())
    if backend.is_gpu_array(values):
        return backend.to_numpy(values)
    return numpy.asarray(values)


def _targets(targets, who):
    targets = to_numpy(targets)
    if targets.ndim != 1:
        raise ValueError(f"{who}: targets must be class indices of shape (N,), got shape {targets.shape}")
    if targets.dtype.kind not in "iu":
        raise ValueError(f"{who}: targets must be integer class indices, got dtype {targets.dtype}")
    return targets


def predicted_classes(predictions, who="predicted_classes"):
    """Class indices (N,): `predictions` as they are if (N,), argmax over axis 1 if scores (N, K)."""
    predictions = to_numpy(predictions)
    if predictions.ndim == 2:
        return predictions.argmax(axis=1)                    # (N, K) -> (N,)
    if predictions.ndim == 1:
        if predictions.dtype.kind not in "iu":
            raise ValueError(
                f"{who}: 1-D predictions must be integer class indices, got dtype {predictions.dtype} "
                "(pass scores as a 2-D (N, K) array)"
            )
        return predictions
    raise ValueError(f"{who}: predictions must be indices (N,) or scores (N, K), got shape {predictions.shape}")


def _check_lengths(predictions, targets, who):
    if len(predictions) != len(targets):
        raise ValueError(
            f"{who}: {len(predictions)} predictions but {len(targets)} targets "
            f"(shapes {predictions.shape} and {targets.shape})"
        )


def accuracy(predictions, targets):
    """Fraction of examples whose predicted class equals the target:  mean(pred == target)."""
    targets = _targets(targets, "accuracy")
    predictions = predicted_classes(predictions, "accuracy")
    _check_lengths(predictions, targets, "accuracy")
    if len(targets) == 0:
        raise ValueError("accuracy: got zero examples")
    return float(numpy.mean(predictions == targets))


def top_k_accuracy(scores, targets, k=5):
    """Fraction of examples whose target is among the k highest scores.

    scores (N, K), targets (N,). Ties are broken by argsort order, so with k = 1
    this equals accuracy(scores, targets).
    """
    targets = _targets(targets, "top_k_accuracy")
    scores = to_numpy(scores)
    if scores.ndim != 2:
        raise ValueError(f"top_k_accuracy: scores must have shape (N, K), got {scores.shape}")
    _check_lengths(scores, targets, "top_k_accuracy")
    num_classes = scores.shape[1]
    if not 1 <= k <= num_classes:
        raise ValueError(f"top_k_accuracy: k must be in [1, {num_classes}] for {num_classes} classes, got {k}")
    # argsort of -scores puts the highest first; a stable sort keeps argmax's tie order.
    top_k = numpy.argsort(-scores, axis=1, kind="stable")[:, :k]       # (N, k)
    hits = (top_k == targets[:, None]).any(axis=1)                       # (N,)
    return float(hits.mean())


def confusion_matrix(predictions, targets, num_classes=None):
    """M (K, K) int64 with M[i, j] = number of examples of true class i predicted as j.

    num_classes defaults to 1 + the largest class seen (or the score width K).
    """
    targets = _targets(targets, "confusion_matrix")
    raw = to_numpy(predictions)
    predictions = predicted_classes(raw, "confusion_matrix")
    _check_lengths(predictions, targets, "confusion_matrix")
    if num_classes is None:
        seen = [raw.shape[1]] if raw.ndim == 2 else []
        seen += [int(predictions.max()) + 1, int(targets.max()) + 1] if len(targets) else []
        num_classes = max(seen) if seen else 0
    for name, values in (("predictions", predictions), ("targets", targets)):
        if len(values) and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(
                f"confusion_matrix: {name} must lie in [0, {num_classes}), "
                f"got values from {values.min()} to {values.max()}"
            )
    # Each (true, predicted) pair becomes one flat index true * K + predicted; bincount counts them.
    flat = targets.astype(numpy.int64) * num_classes + predictions.astype(numpy.int64)
    counts = numpy.bincount(flat, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)                      # (K*K,) -> (K, K)


def _safe_divide(numerator, denominator):
    """numerator / denominator elementwise, 0 where the denominator is 0."""
    numerator = numpy.asarray(numerator, dtype=numpy.float64)
    denominator = numpy.asarray(denominator, dtype=numpy.float64)
    out = numpy.zeros_like(numerator)
    numpy.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _matrix(predictions_or_matrix, targets, num_classes, who):
    """The confusion matrix, given either (predictions, targets) or a matrix and targets=None."""
    if targets is None:
        matrix = to_numpy(predictions_or_matrix)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(
                f"{who}: without targets, the first argument must be a square confusion matrix, "
                f"got shape {matrix.shape}"
            )
        return matrix
    return confusion_matrix(predictions_or_matrix, targets, num_classes)


def precision(predictions, targets=None, num_classes=None):
    """Per-class precision (K,): TP / (TP + FP). Pass (predictions, targets) or a confusion matrix."""
    matrix = _matrix(predictions, targets, num_classes, "precision")
    return _safe_divide(numpy.diag(matrix), matrix.sum(axis=0))


def recall(predictions, targets=None, num_classes=None):
    """Per-class recall (K,): TP / (TP + FN). Pass (predictions, targets) or a confusion matrix."""
    matrix = _matrix(predictions, targets, num_classes, "recall")
    return _safe_divide(numpy.diag(matrix), matrix.sum(axis=1))


def f1_score(predictions, targets=None, num_classes=None):
    """Per-class F1 (K,): 2 P R / (P + R). Pass (predictions, targets) or a confusion matrix."""
    matrix = _matrix(predictions, targets, num_classes, "f1_score")
    p = _safe_divide(numpy.diag(matrix), matrix.sum(axis=0))
    r = _safe_divide(numpy.diag(matrix), matrix.sum(axis=1))
    return _safe_divide(2 * p * r, p + r)


def classification_report(predictions, targets=None, num_classes=None, class_names=None):
    """A text table: per class precision, recall, F1 and support (the number of true examples)."""
    matrix = _matrix(predictions, targets, num_classes, "classification_report")
    p, r, f = precision(matrix), recall(matrix), f1_score(matrix)
    support = matrix.sum(axis=1)
    names = list(class_names) if class_names is not None else [str(c) for c in range(len(matrix))]
    width = max([len(n) for n in names] + [5])
    lines = [f"{'class':>{width}}  precision  recall     f1  support"]
    for c, name in enumerate(names):
        lines.append(f"{name:>{width}}  {p[c]:9.4f}  {r[c]:6.4f}  {f[c]:.4f}  {support[c]:7d}")
    total = matrix.sum()
    overall = numpy.trace(matrix) / total if total else 0.0
    lines.append(f"{'accuracy':>{width}}  {overall:.4f} of {total} examples")
    return "\n".join(lines)


class RunningMean:
    """The mean of values seen so far, each weighted by a count (e.g. the batch size).

    >>> loss_meter = RunningMean()
    >>> loss_meter.update(0.5, count=32); loss_meter.update(0.3, count=16)
    >>> round(loss_meter.mean, 4)        # (0.5 * 32 + 0.3 * 16) / 48
    0.4333
    """

    def __init__(self):
        self.total = 0.0
        self.count = 0

    def update(self, value, count=1):
        self.total += float(value) * count
        self.count += count

    @property
    def mean(self):
        return self.total / self.count if self.count else float("nan")
