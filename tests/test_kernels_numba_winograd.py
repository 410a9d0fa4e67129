"""The Numba Winograd tile transforms (kernels/numba_cpu/winograd.py) against their NumPy
references in minigrad/ops/winograd.py: both loops (serial and parallel), both float types,
odd sizes, any padding, views that are not contiguous."""
import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("numba")

from kernels_common import kernel_policy, loops_taken                              # noqa: E402
from minigrad.fast import tuning                                                   # noqa: E402
from minigrad.kernels import numba_cpu                                             # noqa: E402
from minigrad.kernels.numba_cpu import winograd as kernel                          # noqa: E402
from minigrad.ops import winograd                                                  # noqa: E402

# serial_below_bytes for each loop: the tuned limit (every array here is far smaller) or 0 (always parallel)
SERIAL_BELOW = {"serial": tuning.NUMBA_SERIAL_BELOW_BYTES, "parallel": 0}


@st.composite
def shapes(draw):
    """(N, C, H, W), padding and the output size of a 3x3 convolution at stride 1."""
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    height, width = (draw(st.integers(max(1, 3 - 2 * p), 10)) for p in padding)
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 5))
    return (n, c, height, width), padding, (height + 2 * padding[0] - 2, width + 2 * padding[1] - 2)


def _tiles(n, out_size):
    return n * ((out_size[0] + 1) // 2) * ((out_size[1] + 1) // 2)


@pytest.fixture(params=["serial", "parallel"])
def loop(request):
    """Run each test on both loops: the serial nogil one (small arrays) and the prange one; check it ran."""
    with kernel_policy(serial_below_bytes=SERIAL_BELOW[request.param]), loops_taken() as taken:
        yield request.param
    assert taken and {kind for kind, _ in taken} == {request.param}, taken


@pytest.mark.parametrize("which", ["serial", "parallel"])
@settings(max_examples=30, deadline=None)
@given(shapes(), st.sampled_from([numpy.float32, numpy.float64]), st.integers(0, 2**16))
def test_transforms_equal_their_numpy_references(which, problem, dtype, seed):
    with kernel_policy(serial_below_bytes=SERIAL_BELOW[which]), loops_taken() as taken:
        _check_against_references(problem, dtype, seed)
    assert [kind for kind, _ in taken] == [which] * 4, taken           # the four transforms, on that loop


def _check_against_references(problem, dtype, seed):
    shape, padding, out_size = problem
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    tolerance = dict(rtol=1e-5, atol=1e-5) if dtype == numpy.float32 else dict(rtol=1e-12, atol=1e-12)

    def dirty(like):                       # outputs come uninitialised from the pool: every entry must be written
        return numpy.full_like(like, numpy.nan)

    v = kernel.input_transform(x, padding, *out_size)
    numpy.testing.assert_allclose(v, winograd.input_transform_numpy(x, padding, *out_size), **tolerance,
                                  err_msg="input_transform")

    dv = rng.standard_normal((16, _tiles(shape[0], out_size), shape[1])).astype(dtype)
    numpy.testing.assert_allclose(kernel.input_transform_adjoint(dv, padding, dirty(x)),
                                  winograd.input_transform_adjoint_numpy(dv, padding, dirty(x)),
                                  **tolerance, err_msg="input_transform_adjoint")

    dy = rng.standard_normal((shape[0], shape[1]) + out_size).astype(dtype)
    dm = kernel.output_transform_adjoint(dy)
    numpy.testing.assert_allclose(dm, winograd.output_transform_adjoint_numpy(dy), **tolerance,
                                  err_msg="output_transform_adjoint")
    numpy.testing.assert_allclose(kernel.output_transform(dv, dirty(dy)),
                                  winograd.output_transform_numpy(dv, dirty(dy)), **tolerance,
                                  err_msg="output_transform")


def test_outputs_have_the_documented_layout_and_dtype(loop):
    x = numpy.ones((2, 3, 6, 5), numpy.float32)
    v = kernel.input_transform(x, (1, 1), 6, 5)
    assert v.shape == (16, 2 * 3 * 3, 3) and v.dtype == numpy.float32
    assert kernel.output_transform_adjoint(numpy.ones((2, 4, 6, 5))).shape == (16, 18, 4)


def test_output_transform_writes_into_a_view_of_a_bigger_array(loop):
    """The convolution hands each chunk y[images], a view into the whole batch's output."""
    rng = numpy.random.default_rng(1)
    m = rng.standard_normal((16, 2 * 2 * 2, 3))
    y = numpy.full((4, 3, 4, 4), 7.0)
    kernel.output_transform(m, y[1:3])
    numpy.testing.assert_allclose(y[1:3], winograd.output_transform_numpy(m, numpy.empty((2, 3, 4, 4))))
    assert (y[0] == 7).all() and (y[3] == 7).all()


def test_input_transform_takes_a_non_contiguous_view(loop):
    rng = numpy.random.default_rng(2)
    x = rng.standard_normal((3, 4, 6, 6))[:, ::2]                            # every other channel
    numpy.testing.assert_allclose(kernel.input_transform(x, (1, 1), 6, 6),
                                  winograd.input_transform_numpy(numpy.ascontiguousarray(x), (1, 1), 6, 6))


def test_nan_in_one_image_stays_in_that_image(loop):
    x = numpy.zeros((2, 1, 4, 4))
    x[0, 0, 1, 1] = numpy.nan
    v = kernel.input_transform(x, (1, 1), 4, 4)
    assert numpy.isnan(v[:, :4]).any() and not numpy.isnan(v[:, 4:]).any()   # tiles 0-3: image 0


@pytest.mark.parametrize("name", ["winograd_input_transform", "winograd_output_transform",
                                  "winograd_output_transform_adjoint", "winograd_input_transform_adjoint"])
def test_every_transform_is_a_known_kernel(name):
    assert numba_cpu.load(name) is not None
