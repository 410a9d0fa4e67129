"""optim.Muon (momentum, then Newton-Schulz orthogonalisation) and nn.init.dirac_, against PyTorch and the maths."""
import numpy
import pytest

import minigrad
from minigrad.optim.muon import orthogonalise


def _run(shape, steps=3, seed=0, **options):
    rng = numpy.random.default_rng(seed)
    w0 = rng.standard_normal(shape).astype(numpy.float32)
    p = minigrad.nn.Parameter(minigrad.tensor(w0.copy()))
    optimizer = minigrad.optim.Muon([p], **options)
    gradients = [rng.standard_normal(shape).astype(numpy.float32) for _ in range(steps)]
    for g in gradients:
        p.grad = minigrad.tensor(g)
        optimizer.step()
    return w0, gradients, p, optimizer


@pytest.mark.parametrize("shape", [(6, 10), (10, 6)])
@pytest.mark.parametrize("options", [dict(lr=0.02, weight_decay=0.01), dict(lr=0.05, nesterov=False, momentum=0.9),
                                     dict(lr=0.01, adjust_lr_fn="match_rms_adamw")])
def test_muon_follows_torch_optim_muon(shape, options):
    """The same trajectory as torch.optim.Muon, up to PyTorch's bfloat16 Newton-Schulz (about 3 digits)."""
    torch = pytest.importorskip("torch")
    w0, gradients, ours, _ = _run(shape, **options)
    theirs = torch.nn.Parameter(torch.tensor(w0.copy()))
    optimizer = torch.optim.Muon([theirs], **options)
    for g in gradients:
        theirs.grad = torch.tensor(g)
        optimizer.step()
    moved_ours, moved_theirs = ours.detach().numpy() - w0, theirs.detach().numpy() - w0
    assert numpy.abs(moved_ours - moved_theirs).max() <= 0.03 * numpy.abs(moved_theirs).max()


@pytest.mark.parametrize("shape, condition", [((5, 9), 1.0), ((9, 5), 1.0), ((16, 16), 1e2), ((4, 64), 1e2)])
def test_newton_schulz_keeps_the_directions_and_evens_out_the_singular_values(shape, condition):
    """orthogonalise(U S V^T) is close to U V^T: its singular values all land near 1 (roughly 0.7 to 1.2
    after five steps, for singular values spread over two orders of magnitude), and it points the way U V^T does."""
    rng = numpy.random.default_rng(1)
    u_, _, vt = numpy.linalg.svd(rng.standard_normal(shape), full_matrices=False)
    spread = numpy.geomspace(1.0, 1.0 / condition, len(vt))
    update = (u_ * spread) @ vt                                    # singular values from 1 down to 1/condition
    o = orthogonalise(update)
    singular = numpy.linalg.svd(o, compute_uv=False)
    assert o.shape == shape and singular.min() > 0.5 and singular.max() < 1.3, singular
    target = u_ @ vt
    cosine = (o * target).sum() / (numpy.linalg.norm(o) * numpy.linalg.norm(target))
    assert cosine > 0.95


def test_a_convolution_filter_bank_is_updated_as_its_matrix_of_filters():
    w0, gradients, conv, _ = _run((8, 3, 3, 3), lr=0.02)
    _, _, matrix, _ = _run((8, 27), lr=0.02)                       # the same numbers drawn in the same order
    numpy.testing.assert_allclose(conv.detach().numpy().reshape(8, 27), matrix.detach().numpy(), rtol=1e-6)


def test_muon_refuses_a_bias_and_says_where_it_belongs():
    bias = minigrad.nn.Parameter(minigrad.zeros(4))
    with pytest.raises(ValueError, match=r"shape \(4,\) is not a matrix.*another optimizer"):
        minigrad.optim.Muon([bias])


def test_muon_resumes_exactly_from_its_state_dict():
    w0, gradients, straight, _ = _run((6, 4), steps=4, seed=3, lr=0.02)
    _, _, p, optimizer = _run((6, 4), steps=2, seed=3, lr=0.02)
    state = optimizer.state_dict()
    again = minigrad.optim.Muon([p], lr=0.02)
    again.load_state_dict(state)
    for g in gradients[2:]:
        p.grad = minigrad.tensor(g)
        again.step()
    numpy.testing.assert_array_equal(p.detach().numpy(), straight.detach().numpy())


@pytest.mark.parametrize("shape, groups", [((6, 4, 3, 3), 1), ((4, 6, 3), 1), ((8, 2, 3, 3), 2), ((6, 6, 1, 3, 3), 3)])
def test_dirac_init_equals_torchs_and_makes_the_identity_convolution(shape, groups):
    w = minigrad.nn.init.dirac_(minigrad.zeros(*shape), groups=groups)
    torch = pytest.importorskip("torch")
    numpy.testing.assert_array_equal(w.numpy(), torch.nn.init.dirac_(torch.empty(shape), groups=groups).numpy())


def test_a_dirac_3x3_convolution_passes_its_input_through():
    x = minigrad.randn(2, 4, 5, 5)
    w = minigrad.nn.init.dirac_(minigrad.zeros(4, 4, 3, 3))
    numpy.testing.assert_allclose(minigrad.nn.functional.conv2d(x, w, padding=1).numpy(), x.numpy(), rtol=1e-6)
