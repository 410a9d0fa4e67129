"""minigrad installed NON-editably (`pip install .`) finds its kernels inside its own package.

.ci/run installs minigrad into a fresh venv and runs this file from /tmp, so nothing can be
found through the current directory or the checkout. The repository's kernels/ folder must
install as `minigrad.kernels` (never as a top-level `kernels`, a name another project on the
package index uses), its .cu files as package data of `minigrad.kernels.cuda` read with
importlib.resources, and its Numba kernels must run from there. In the normal test run (an
editable install, from the checkout) the checks that need the installed copy skip; the
others run in both places.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import minigrad
import minigrad.kernels
from minigrad.fast import gpu

REPOSITORY = Path(os.environ.get("MINIGRAD_REPO") or Path(__file__).resolve().parents[1]).resolve()
INSTALLED = Path(minigrad.__file__).resolve().parent != REPOSITORY / "minigrad"
installed_only = pytest.mark.skipif(
    not INSTALLED, reason="minigrad comes from the checkout here; .ci/run runs this file against `pip install .`"
)
NVCC = shutil.which("nvcc")
SOURCES = ["adam_step.cu", "batchnorm_backward.cu", "batchnorm_forward.cu", "col2im.cu", "im2col.cu",
           "maxpool_backward.cu", "maxpool_forward.cu", "rmsprop_step.cu", "sgd_step.cu"]


def _on_disk(name):
    return Path(str(gpu.source_path(name))).resolve()


def test_import_minigrad_works_and_differentiates():
    x = minigrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    assert x.grad.numpy().tolist() == [2.0, 4.0, 6.0]


def test_no_top_level_kernels_package_is_installed():
    """Run from /tmp with the checkout out of sys.path: only minigrad.kernels exists."""
    code = ("import sys, importlib.util\n"
            "sys.path = [p for p in sys.path if p not in ('', '.', %r)]\n"
            "import minigrad.kernels.numba_cpu\n"
            "assert importlib.util.find_spec('kernels') is None, importlib.util.find_spec('kernels')\n"
            % str(REPOSITORY))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd="/tmp")
    assert done.returncode == 0, done.stderr


def test_every_cuda_source_ships_in_the_kernels_cuda_package():
    assert gpu.source_files() == SOURCES


def test_the_shared_geometry_header_ships_too():
    assert "struct Geometry" in gpu.source_path("geometry.cuh").read_text()


@pytest.mark.parametrize("source", SOURCES)
def test_read_source_pastes_the_header_in(source):
    text = gpu.read_source(source)
    assert "#include" not in text and "struct Geometry" in text


def test_gpu_kernels_are_registered_without_importing_cupy():
    code = (
        "import sys, minigrad; from minigrad.fast import gpu\n"
        "from minigrad.ops.registry import KERNELS as registered\n"
        "assert all(registered[(n, 'gpu')].cuda_c is f for n, f in gpu.KERNELS.items()), registered\n"
        "assert 'cupy' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@installed_only
def test_the_kernels_are_installed_inside_the_minigrad_package():
    assert Path(minigrad.kernels.__file__).resolve().parent == Path(minigrad.__file__).resolve().parent / "kernels"


@installed_only
@pytest.mark.parametrize("source", SOURCES)
def test_cuda_source_is_found_in_the_installed_package_not_the_checkout(source):
    path = _on_disk(source)
    assert path.is_file()
    assert path.is_relative_to(Path(minigrad.kernels.__file__).resolve().parent), path
    assert not path.is_relative_to(REPOSITORY / "kernels"), f"{path} comes from the checkout"


@installed_only
@pytest.mark.skipif(NVCC is None, reason="nvcc is not on PATH")
@pytest.mark.parametrize("source", SOURCES)
def test_installed_cuda_source_compiles_with_nvcc(source, tmp_path):
    command = [NVCC, "--ptx", "-arch=sm_80", str(_on_disk(source)), "-o", str(tmp_path / "kernel.ptx")]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"nvcc failed on the installed {source}:\n{done.stdout}{done.stderr}"


def test_winograd_numba_kernels_run_from_the_same_location_as_minigrad():
    """A 16-channel 3x3 convolution takes the Winograd path with the Numba transforms (shipped as
    minigrad/kernels/numba_cpu/winograd.py), and gives the loop reference's numbers."""
    import numpy

    from minigrad.fast import winograd
    from minigrad.ops.conv import conv2d, conv2d_reference

    pytest.importorskip("numba")
    rng = numpy.random.default_rng(0)
    x, w = rng.standard_normal((1, 16, 8, 8)), rng.standard_normal((4, 16, 3, 3))
    assert winograd.suits(x, w, (1, 1), (1, 1), 1)
    y = conv2d(minigrad.tensor(x, requires_grad=True), minigrad.tensor(w), padding=1)
    assert y.grad_fn.name == "Conv2dWinogradFast"
    numpy.testing.assert_allclose(y.detach().numpy(), conv2d_reference(x, w, padding=1), rtol=1e-10, atol=1e-12)
    import minigrad.kernels.numba_cpu.winograd as kernel_module
    assert "minigrad.kernels.numba_cpu.winograd" in sys.modules
    expected = Path(minigrad.kernels.__file__).resolve().parent / "numba_cpu" / "winograd.py"
    assert Path(kernel_module.__file__).resolve() == expected


def test_a_checkout_that_was_not_installed_finds_its_kernels(tmp_path):
    """The examples add the repository to sys.path so that they run from a checkout without `pip install`:
    minigrad then loads the checkout's kernels/ folder as minigrad.kernels itself."""
    if not (REPOSITORY / "kernels").is_dir():
        pytest.skip("no checkout here")
    shutil.copytree(REPOSITORY / "minigrad", tmp_path / "minigrad")
    shutil.copytree(REPOSITORY / "kernels", tmp_path / "kernels")
    code = ("import sys\n"
            "sys.meta_path = [finder for finder in sys.meta_path if 'editable' not in repr(finder).lower()]\n"
            f"sys.path.insert(0, {str(tmp_path)!r})\n"
            "import numpy, minigrad\n"
            "from minigrad.ops.conv import conv2d, conv2d_reference\n"
            "import minigrad.kernels.geometry as geometry\n"
            f"assert geometry.__file__.startswith({str(tmp_path)!r}), geometry.__file__\n"
            "x, w = numpy.ones((1, 2, 5, 5)), numpy.ones((3, 2, 3, 3))\n"
            "assert numpy.allclose(conv2d(minigrad.tensor(x), minigrad.tensor(w)).detach().numpy(), conv2d_reference(x, w))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
