"""minigrad.nn.init: gains and fans like torch, the right spread, seeded by minigrad.manual_seed."""
import math

import numpy
import pytest

import minigrad
from minigrad.nn import init


@pytest.mark.parametrize("nonlinearity, param", [
    ("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
    ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", math.sqrt(5)), ("selu", None),
])
def test_calculate_gain_matches_torch(nonlinearity, param):
    torch = pytest.importorskip("torch")
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(
        torch.nn.init.calculate_gain(nonlinearity, param), rel=1e-12)


def test_calculate_gain_rejects_unknown_nonlinearity():
    with pytest.raises(ValueError, match="softplus"):
        init.calculate_gain("softplus")


def test_fans_of_a_conv_weight_count_the_kernel_positions():
    assert init.calculate_fan_in_and_fan_out(minigrad.zeros(16, 3, 5, 5)) == (75, 400)


def test_fans_need_two_dimensions():
    with pytest.raises(ValueError, match=r"at least 2 dimensions.*\(5,\)"):
        init.kaiming_uniform_(minigrad.zeros(5))


def _std(tensor):
    return float(tensor.detach().numpy().std())


@pytest.mark.parametrize("mode, fan", [("fan_in", 64 * 9), ("fan_out", 128 * 9)])
def test_kaiming_normal_has_std_gain_over_sqrt_fan(mode, fan):
    minigrad.manual_seed(0)
    w = init.kaiming_normal_(minigrad.empty(128, 64, 3, 3), mode=mode, nonlinearity="relu")
    assert _std(w) == pytest.approx(math.sqrt(2 / fan), rel=0.02)


def test_kaiming_uniform_bound_is_sqrt3_times_std():
    minigrad.manual_seed(0)
    w = init.kaiming_uniform_(minigrad.empty(200, 100), a=0.1, nonlinearity="leaky_relu")
    bound = math.sqrt(3) * init.calculate_gain("leaky_relu", 0.1) / math.sqrt(100)
    assert numpy.abs(w.detach().numpy()).max() <= bound and numpy.abs(w.detach().numpy()).max() > 0.99 * bound


def test_xavier_uniform_and_normal_have_glorot_spread():
    minigrad.manual_seed(0)
    std = 2.0 * math.sqrt(2 / (300 + 200))
    assert _std(init.xavier_normal_(minigrad.empty(300, 200), gain=2.0)) == pytest.approx(std, rel=0.02)
    assert _std(init.xavier_uniform_(minigrad.empty(300, 200), gain=2.0)) == pytest.approx(std, rel=0.02)


def test_constant_zeros_ones_fill_in_place():
    t = minigrad.empty(2, 3)
    data = t.array
    assert (init.constant_(t, 2.5).detach().numpy() == 2.5).all() and t.array is data
    assert (init.zeros_(t).detach().numpy() == 0).all() and (init.ones_(t).detach().numpy() == 1).all()


def test_normal_and_uniform_use_the_arguments():
    minigrad.manual_seed(0)
    n = init.normal_(minigrad.empty(100000, dtype=numpy.float64), mean=3.0, std=0.5).detach().numpy()
    u = init.uniform_(minigrad.empty(100000, dtype=numpy.float64), -2.0, -1.0).detach().numpy()
    assert n.mean() == pytest.approx(3.0, abs=0.01) and n.std() == pytest.approx(0.5, rel=0.01)
    assert u.min() >= -2.0 and u.max() < -1.0


def test_init_keeps_the_dtype():
    assert init.normal_(minigrad.empty(3, dtype=numpy.float64)).dtype == numpy.float64
    assert init.kaiming_normal_(minigrad.empty(3, 3)).dtype == numpy.float32


def test_manual_seed_makes_initialisation_reproducible():
    minigrad.manual_seed(5)
    a = minigrad.nn.Linear(4, 3)
    minigrad.manual_seed(5)
    b = minigrad.nn.Linear(4, 3)
    numpy.testing.assert_array_equal(a.weight.detach().numpy(), b.weight.detach().numpy())
    numpy.testing.assert_array_equal(a.bias.detach().numpy(), b.bias.detach().numpy())
