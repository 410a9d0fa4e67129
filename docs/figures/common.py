"""Shared set-up for the figure scripts: the Agg backend, the output folder, a small save helper.

Every script in docs/figures/ draws with matplotlib from minigrad's own objects
and writes one or more PNGs next to itself (dpi 100, so each stays well under 200 KB).
"""
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")                      # no display needed: scripts run in CI and over ssh
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402  (pillow comes with matplotlib)

FIGURES = Path(__file__).resolve().parent
REPO = FIGURES.parents[1]
sys.path.insert(0, str(REPO))              # run from a checkout without `pip install -e .`
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"


def save(figure, name):
    """Write docs/figures/<name> at dpi 100 and close the figure; return the path."""
    path = FIGURES / name
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    # A palette of 256 colours looks the same for line plots and makes the file 2-4x smaller.
    with Image.open(path) as image:
        image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print(f"wrote {path.relative_to(REPO)} ({path.stat().st_size // 1024} KB)")
    return path


def draw_grid(axes, values, colours, title, row_labels=None, column_labels=None, dashed=None):
    """A table of numbers as coloured cells (colours: {(row, column): colour}), for the chapter 3 figures.

    row_labels / column_labels: text left of each row / above each column; dashed: (top, left,
    height, width) of a dashed frame drawn over the cells (e.g. the image inside its padding).
    """
    from matplotlib.patches import Rectangle

    rows, columns = values.shape
    for r in range(rows):
        for c in range(columns):
            axes.add_patch(Rectangle((c, rows - 1 - r), 1, 1, facecolor=colours.get((r, c), "white"),
                                     edgecolor="#333333"))
            axes.text(c + 0.5, rows - 0.5 - r, f"{values[r, c]:g}", ha="center", va="center", fontsize=9)
    for r, label in enumerate(row_labels or []):
        axes.text(-0.15, rows - 0.5 - r, label, ha="right", va="center", fontsize=8)
    for c, label in enumerate(column_labels or []):
        axes.text(c + 0.5, rows + 0.15, label, ha="center", va="bottom", fontsize=8)
    if dashed:
        top, left, height, width = dashed
        axes.add_patch(Rectangle((left, rows - top - height), width, height, fill=False, linestyle="--",
                                 linewidth=2, edgecolor="#555555"))
    axes.set_xlim(-1.6 if row_labels else -0.2, columns + 0.2)
    axes.set_ylim(-0.2, rows + (1.0 if column_labels else 0.2))
    axes.set_aspect("equal")
    axes.axis("off")
    axes.set_title(title, fontsize=10)

