"""Chapter 10: forward + backward time of each ResNet-20 convolution, three ways.

    python docs/figures/speed_layers.py                # writes speed_layers.png

Reads docs/results/speed_layers.csv (the 1-thread layer times of benchmarks/RESULTS.md: minigrad
as it runs by default, minigrad with Winograd switched off by `--conv im2col`, and PyTorch, batch
128) and draws one group of bars per layer.
"""
import csv

import numpy

from common import REPO, plt, save

CSV = REPO / "docs" / "results" / "speed_layers.csv"


def main():
    with open(CSV, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    labels = []
    for row in rows:                         # "16->16 32x32 k3 s1" -> three short lines
        channels, size, kernel, stride = row["layer"].split()
        labels.append(f"{channels}\n{size} {kernel} {stride}\n{row['algorithm']}")
    series = [("minigrad, im2col everywhere", "minigrad_im2col_ms", "#adb5bd"),
              ("minigrad (Winograd for 3x3 stride 1)", "minigrad_ms", "#1d3557"),
              ("PyTorch (oneDNN)", "torch_ms", "#e76f51")]
    positions = numpy.arange(len(rows))
    figure, axes = plt.subplots(figsize=(10, 5))
    for index, (name, column, colour) in enumerate(series):
        values = [float(row[column]) for row in rows]
        axes.bar(positions + (index - 1) * 0.27, values, width=0.27, label=name, color=colour)
    axes.set_xticks(positions)
    axes.set_xticklabels(labels, fontsize=7)
    axes.set_ylabel("forward + backward, ms (1 thread)")
    axes.set_title("ResNet-20 convolutions, batch 128: Winograd brings the 3x3 stride-1 layers close to PyTorch")
    axes.legend(fontsize=8)
    axes.grid(axis="y", alpha=0.3)
    save(figure, "speed_layers.png")


if __name__ == "__main__":
    main()
