"""Chapter 12's figure: held-out accuracy against training time, for every logged speedrun.

    python docs/figures/speedrun.py

The runs take most of an hour each on a 2-core CPU (commands in docs/12_a_speed_record.md); their
per-epoch logs are committed in docs/results/speedrun_epochs.csv (engine, seed, epoch, seconds of that
epoch, training loss, held-out accuracy without TTA) and the final accuracies, with test-time
augmentation, in docs/results/speedrun_summary.csv. One line per run, coloured by engine; a star marks each run's
final accuracy with TTA at its total training time.
"""
import csv

from common import REPO, plt, save

RESULTS = REPO / "docs" / "results"
COLOURS = {"minigrad": "tab:blue", "torch": "tab:orange"}


def read(name):
    with open(RESULTS / name, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def main():
    epochs, summaries = read("speedrun_epochs.csv"), read("speedrun_summary.csv")
    figure, axes = plt.subplots(figsize=(7, 4.2))
    labelled = set()
    for run in sorted({(row["engine"], row["seed"]) for row in epochs}):
        rows = sorted((row for row in epochs if (row["engine"], row["seed"]) == run), key=lambda r: int(r["epoch"]))
        minutes, total = [], 0.0
        for row in rows:
            total += float(row["seconds"])
            minutes.append(total / 60)
        engine = run[0]
        axes.plot(minutes, [100 * float(row["val_acc"]) for row in rows], "-o", markersize=3,
                  color=COLOURS.get(engine, "gray"), alpha=0.8,
                  label=None if engine in labelled else f"{engine}, per epoch (no TTA)")
        labelled.add(engine)
    for row in summaries:
        axes.plot(float(row["train_seconds"]) / 60, 100 * float(row["accuracy"]), "*", markersize=11,
                  color=COLOURS.get(row["engine"], "gray"), markeredgecolor="black",
                  label=None if f"{row['engine']} final" in labelled else f"{row['engine']}, final with TTA")
        labelled.add(f"{row['engine']} final")
    axes.axhline(94, color="gray", linestyle="--", linewidth=1)
    axes.set_xlabel("training time, minutes (2 CPU cores)")
    axes.set_ylabel("held-out accuracy, % (last 5,000 images)")
    axes.set_ylim(55, 96)
    axes.set_title("The airbench94 recipe on CIFAR-10, one line per run")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    save(figure, "speedrun_accuracy_time.png")


if __name__ == "__main__":
    main()
