"""Regenerate every figure of the course.

    python docs/figures/make_all.py [--data-dir ../shared/data]

Runs each figure script in its own process (so one script's matplotlib or
random state cannot leak into the next) and stops at the first failure.
resnet_gradients.py builds two 56-layer networks three times: it takes about a
minute on one free core, several on a busy machine.
"""
import argparse
import subprocess
import sys
from pathlib import Path

from common import DEFAULT_DATA_DIR

FIGURES = Path(__file__).resolve().parent
SCRIPTS = [                                  # in chapter order
    ("computation_graph.py", []),            # chapter 1
    ("im2col_patches.py", []),               # chapter 3
    ("winograd_tiles.py", []),               # chapter 3
    ("resnet_gradients.py", []),             # chapter 5
    ("optimizer_paths.py", []),              # chapter 6
    ("augmentation.py", ["--data-dir"]),     # chapter 7
    ("run_results.py", []),                  # chapter 8 (from the committed run logs)
    ("speed_layers.py", []),                 # chapter 10 (from the committed benchmark table)
    ("speedrun.py", []),                     # chapter 12 (from the committed run logs)
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    args = parser.parse_args()
    for script, options in SCRIPTS:
        extra = [args.data_dir] if options else []
        command = [sys.executable, str(FIGURES / script)] + options + extra
        print(f"$ {' '.join(command[1:])}", flush=True)
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
