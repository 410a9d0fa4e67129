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
