"""MetricHistory writes a CSV and a JSON row per epoch and reads them back."""
import csv
import json

import numpy

from minigrad.utils.history import MetricHistory


def test_log_writes_csv_with_header_and_one_row_per_epoch(tmp_path):
    history = MetricHistory(tmp_path / "metrics")
    history.log(epoch=1, train_loss=0.5, val_acc=0.9)
    history.log(epoch=2, train_loss=0.25, val_acc=0.95)
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert rows == [{"epoch": "1", "train_loss": "0.5", "val_acc": "0.9"},
                    {"epoch": "2", "train_loss": "0.25", "val_acc": "0.95"}]


def test_log_writes_json_list_of_rows(tmp_path):
    history = MetricHistory(tmp_path / "metrics.json")
    history.log(epoch=1, loss=numpy.float32(0.5))
    assert json.loads((tmp_path / "metrics.json").read_text()) == [{"epoch": 1, "loss": 0.5}]


def test_new_columns_leave_earlier_csv_cells_empty(tmp_path):
    history = MetricHistory(tmp_path / "m")
    history.log(epoch=1)
    history.log(epoch=2, test_acc=0.9)
    rows = list(csv.DictReader(open(tmp_path / "m.csv")))
    assert rows[0]["test_acc"] == "" and rows[1]["test_acc"] == "0.9"


def test_load_reads_back_rows(tmp_path):
    MetricHistory(tmp_path / "m").log(epoch=1, loss=0.1)
    assert MetricHistory.load(tmp_path / "m").column("loss") == [0.1]


def test_truncate_drops_epochs_after_the_checkpoint(tmp_path):
    history = MetricHistory(tmp_path / "m")
    for epoch in range(4):
        history.log(epoch=epoch)
    history.truncate(2)
    assert MetricHistory.load(tmp_path / "m").column("epoch") == [0, 1]


def test_nan_is_written_as_text_json_can_read(tmp_path):
    MetricHistory(tmp_path / "m").log(loss=float("nan"))
    assert json.loads((tmp_path / "m.json").read_text()) == [{"loss": "nan"}]


def test_in_memory_history_writes_nothing(tmp_path):
    history = MetricHistory()
    history.log(epoch=1)
    assert len(history) == 1 and list(tmp_path.iterdir()) == []
