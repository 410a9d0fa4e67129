"""A per-epoch metric log, written to CSV and JSON after every epoch.

(Named history.py, not logging.py, so that it never shadows Python's own
`logging` module.)

    history = MetricHistory("runs/mnist_mlp/metrics")     # -> metrics.csv and metrics.json
    for epoch in range(epochs):
        ...
        history.log(epoch=epoch, train_loss=0.31, train_acc=0.91, val_loss=0.28, val_acc=0.92)
    history.column("val_acc")        # [0.92, ...], e.g. for plots.plot_training_curves

Each row is one epoch, a dict of names to numbers (or short strings). The
files are rewritten whole after each `log` (they are tiny), through a
temporary file and os.replace, so a crash mid-write leaves the previous
version, never half a file. Rows may add new columns as training goes on;
CSV cells of a column a row lacks are left empty.

A resumed run reloads the JSON with `MetricHistory.load(...)` or keeps the
rows in its checkpoint (`rows`), and `truncate(n)` drops epochs logged after
the checkpoint was taken, so the log never shows an epoch twice.
"""
import csv
import io
import json
import math
import os
from pathlib import Path


def write_text_atomically(path, text):
    """Write `text` to `path` via a temporary file in the same folder and os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", encoding="utf-8", newline="") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def _plain(value):
    """A JSON-friendly scalar: NumPy numbers and 0-d arrays/Tensors become Python numbers."""
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf; keep them readable as "nan", "inf"
    return value


class MetricHistory:
    """Rows of per-epoch metrics, mirrored to `<stem>.csv` and `<stem>.json`.

    stem: a path without suffix (a trailing .csv or .json is stripped), or
    None for an in-memory history that writes nothing.
    """

    def __init__(self, stem=None, rows=None):
        if stem is not None:
            stem = Path(stem)
            if stem.suffix in (".csv", ".json"):
                stem = stem.with_suffix("")
        self.stem = stem
        self.rows = [dict(row) for row in rows] if rows else []

    @property
    def csv_path(self):
        return None if self.stem is None else self.stem.with_name(self.stem.name + ".csv")

    @property
    def json_path(self):
        return None if self.stem is None else self.stem.with_name(self.stem.name + ".json")

    @classmethod
    def load(cls, stem):
        """Read back the JSON log written earlier (an empty history if there is none)."""
        history = cls(stem)
        if history.json_path.is_file():
            try:
                history.rows = json.loads(history.json_path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as error:
                raise ValueError(f"MetricHistory: {history.json_path} is not valid JSON ({error})") from None
        return history

    def log(self, **metrics):
        """Append one row (one epoch) and rewrite the files."""
        self.rows.append({name: _plain(value) for name, value in metrics.items()})
        self.save()
        return self.rows[-1]

    def truncate(self, num_rows):
        """Keep only the first `num_rows` rows (on resume: the epochs the checkpoint covers)."""
        del self.rows[num_rows:]
        self.save()

    def columns(self):
        """All column names, in the order they first appear."""
        names = {}
        for row in self.rows:
            names.update(dict.fromkeys(row))
        return list(names)

    def column(self, name):
        """One metric over the epochs; None where a row lacks it."""
        return [row.get(name) for row in self.rows]

    def to_csv(self):
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns(), restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        return buffer.getvalue()

    def save(self):
        if self.stem is None:
            return
        write_text_atomically(self.csv_path, self.to_csv())
        write_text_atomically(self.json_path, json.dumps(self.rows, indent=1) + "\n")

    def __len__(self):
        return len(self.rows)
