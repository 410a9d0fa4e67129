"""Chapter 8's figures, redrawn from the per-epoch logs of the project's own long runs.

    python docs/figures/run_results.py

The runs themselves take hours on a CPU (commands in docs/results.md); their
per-epoch CSV logs are committed in docs/results/, and this script draws them with
minigrad's own plotting helper (minigrad.utils.plots.plot_training_curves), the
same one the examples call at the end of a run.
"""
import csv

from common import FIGURES, REPO

from minigrad.utils.plots import plot_training_curves

RESULTS = REPO / "docs" / "results"
METHODS = ("scratch", "linear_probe", "finetune")


def read_rows(name):
    with open(RESULTS / name, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def finetune_comparison():
    """Training loss and held-out target accuracy per epoch of the three ways (examples/finetune.py)."""
    rows = read_rows("finetune_resnet20_curves.csv")
    curves = {"epoch": sorted({int(row["epoch"]) for row in rows})}
    for row in rows:
        curves.setdefault(f"{row['method']} train_loss", []).append(float(row["train_loss"]))
        curves.setdefault(f"{row['method']} val_acc", []).append(float(row["val_acc"]))
    path = plot_training_curves(curves, FIGURES / "finetune_comparison.png",
                                title="resnet20: CIFAR-10 classes 5-9, 100 shots/class",
                                pairs=(tuple(f"{m} train_loss" for m in METHODS),
                                       tuple(f"{m} val_acc" for m in METHODS)))
    print(f"wrote {path.relative_to(REPO)} ({path.stat().st_size // 1024} KB)")


def cifar_resnet20_curves():
    """Loss and accuracy per epoch, training vs held-out validation, of the CIFAR-10 ResNet-20 run."""
    rows = read_rows("cifar_resnet20_metrics.csv")
    curves = {name: [float(row[name]) for row in rows]
              for name in ("epoch", "train_loss", "val_loss", "train_acc", "val_acc")}
    path = plot_training_curves(curves, FIGURES / "cifar_resnet20_curves.png",
                                title="ResNet-20 on CIFAR-10: 45,000 training images, 5,000 held out")
    print(f"wrote {path.relative_to(REPO)} ({path.stat().st_size // 1024} KB)")


def main():
    finetune_comparison()
    cifar_resnet20_curves()


if __name__ == "__main__":
    main()
