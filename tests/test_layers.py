"""The two layers stay apart (../shared/STYLE.md, "Two layers"): imports point one way, the core is
small, `import minigrad` compiles nothing and touches no environment variable, and library code holds
no measurements or history (numbers live in benchmarks/RESULTS.md and the docs drawn from it)."""
import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LIBRARY = sorted((REPO / "minigrad").rglob("*.py"))
KERNELS = sorted((REPO / "kernels").rglob("*.py"))
CORE = {"backend", "tensor", "function", "autograd", "grad_mode"}


def module_name(path):
    """minigrad/ops/conv.py -> minigrad.ops.conv; kernels/numba_cpu/im2col.py -> minigrad.kernels.numba_cpu.im2col."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[0] == "kernels":
        parts = ["minigrad"] + parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(path):
    """Every module that `path` imports, anywhere in the file (functions included), as absolute names."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names += [module] + [f"{module}.{alias.name}" for alias in node.names]
    return names


def _layer_of(name):
    parts = name.split(".")
    if parts[0] != "minigrad" or len(parts) == 1:
        return None
    return parts[1]                 # "ops", "fast", "kernels", "nn", "tensor", ...


def wrong_arrows(path):
    """The imports of `path` that point the wrong way, each as 'module -> imported'."""
    me = module_name(path)
    mine = _layer_of(me)
    forbidden = set()
    if mine == "kernels":
        forbidden = {"*"}                                        # a leaf: nothing from minigrad but itself
    elif mine in CORE:
        forbidden = {"ops", "fast", "kernels", "nn", "optim", "data", "models", "utils"}
    elif mine == "ops":
        forbidden = {"fast", "nn", "optim", "data", "models", "utils"}
    elif mine in {"nn", "optim", "data", "models", "utils"}:
        forbidden = {"fast"}
    wrong = []
    for name in imported_modules(path):
        layer = _layer_of(name)
        if mine == "kernels" and (name == "minigrad" or (layer is not None and layer != "kernels")):
            wrong.append(f"{me} -> {name}")
        elif name.split(".")[0] == "kernels":        # no top-level `kernels` is installed: it works in a checkout only
            wrong.append(f"{me} -> {name} (the kernels install as minigrad.kernels)")
        elif layer in forbidden:
            wrong.append(f"{me} -> {name}")
    return wrong


def test_every_import_points_the_right_way():
    """core <- ops <- fast; kernels a leaf; nn, optim, data, models and utils never reach into fast/."""
    wrong = [arrow for path in LIBRARY + KERNELS for arrow in wrong_arrows(path)]
    assert wrong == [], "imports against the layering:\n" + "\n".join(wrong)


def test_only_the_package_top_and_the_fast_layer_import_the_fast_layer():
    """minigrad/__init__ installs the fast layer; python -m minigrad.doctor reports on it (which CUDA
    kernels compile). Nothing else reaches in."""
    importers = {module_name(path) for path in LIBRARY
                 if any(_layer_of(name) == "fast" for name in imported_modules(path))}
    assert {m for m in importers if not m.startswith("minigrad.fast")} == {"minigrad", "minigrad.doctor"}


def a_module(tmp_path, monkeypatch, folder, text):
    """A file minigrad/<folder>/bad.py holding `text`, in a repository at tmp_path that the checks now read."""
    path = tmp_path / "minigrad" / folder / "bad.py"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    return path


def test_the_checker_sees_a_wrong_arrow(tmp_path, monkeypatch):
    """The walk above would catch an op importing the fast layer inside a function."""
    bad = a_module(tmp_path, monkeypatch, "ops", "def f():\n    from minigrad.fast import tuning\n    return tuning\n")
    assert wrong_arrows(bad) == ["minigrad.ops.bad -> minigrad.fast", "minigrad.ops.bad -> minigrad.fast.tuning"]


TIMING = re.compile(r"\b\d+(\.\d+)?\s?(ms|us|µs|ns|msec|usec|s|sec|seconds)\b"
                    r"|\bround \d+\b|\brounds? of speed\b|benchmarks/raw\b|\b\d+(\.\d+)?x (faster|slower)\b",
                    re.IGNORECASE)


def measurements_in(text):
    return [match.group(0) for match in TIMING.finditer(text)]


@pytest.mark.parametrize("path", LIBRARY + KERNELS + sorted((REPO / "kernels").rglob("*.cu*")),
                         ids=lambda p: str(p.relative_to(REPO)))
def test_library_code_holds_no_measurements_or_history(path):
    found = measurements_in(path.read_text(encoding="utf-8"))
    assert found == [], f"{path.relative_to(REPO)} quotes {found}: numbers belong in benchmarks/RESULTS.md"


@pytest.mark.parametrize("text", ["took 12 ms", "3.4 us a call", "in round 5", "benchmarks/raw/x.txt",
                                  "2.5x faster", "0.8 s per step", "(about 0.5 s)"])
def test_the_measurement_check_catches(text):
    assert measurements_in(text)


def run_child(code):
    """Run `code` in a fresh Python without NUMBA_THREADING_LAYER set; fail with its stderr."""
    environment = {key: value for key, value in os.environ.items() if key != "NUMBA_THREADING_LAYER"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=environment)
    assert done.returncode == 0, done.stderr


def test_import_minigrad_changes_no_environment_variable_and_compiles_nothing():
    code = ("import os, sys\n"
            "before = dict(os.environ)\n"
            "import minigrad, minigrad.nn, minigrad.optim, minigrad.data\n"
            "assert dict(os.environ) == before, set(os.environ.items()) ^ set(before.items())\n"
            "assert 'numba' not in sys.modules, 'import minigrad imported numba'\n"
            "assert 'cupy' not in sys.modules\n")
    run_child(code)


def test_the_first_kernel_picks_numbas_threading_layer_without_touching_the_environment():
    pytest.importorskip("numba")
    code = ("import os, numpy, minigrad\n"
            "before = dict(os.environ)\n"
            "minigrad.nn.functional.relu(minigrad.tensor(numpy.ones((512, 1024), numpy.float32)))\n"
            "import numba\n"
            "assert numba.config.THREADING_LAYER == 'workqueue', numba.config.THREADING_LAYER\n"
            "assert dict(os.environ) == before\n")
    run_child(code)


def test_the_reference_ops_hold_no_speed_engineering():
    """minigrad/ops/ is what students read: no threads, chunks, buffer pools or tuning thresholds."""
    words = re.compile(r"\b(threadpoolctl|ThreadPoolExecutor|run_blocks|chunks_for|scratch|workspace|tuning)\b")
    found = {str(p.relative_to(REPO)): sorted(set(words.findall(p.read_text(encoding="utf-8"))))
             for p in sorted((REPO / "minigrad" / "ops").glob("*.py"))}
    assert {path: names for path, names in found.items() if names} == {}


def test_a_top_level_kernels_import_is_a_wrong_arrow_anywhere(tmp_path, monkeypatch):
    """`from kernels.geometry import pair` works from the checkout but not from an installed minigrad."""
    bad = a_module(tmp_path, monkeypatch, "fast", "from kernels.geometry import pair\n")
    assert any("kernels.geometry (the kernels install as minigrad.kernels)" in arrow for arrow in wrong_arrows(bad))


def test_every_package_on_disk_is_in_pyprojects_package_list():
    """pyproject.toml lists its packages by hand (kernels/ installs as minigrad.kernels): a new
    subpackage missing from the list would work in the checkout and be left out of the wheel."""
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    on_disk = {module_name(init) for init in LIBRARY + KERNELS if init.name == "__init__.py"}
    assert set(config["packages"]) == on_disk
    assert config["package-dir"]["minigrad.kernels"] == "kernels"
    assert "*.cu" in config["package-data"]["minigrad.kernels.cuda"]
