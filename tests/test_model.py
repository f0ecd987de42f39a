"""Initialisation (DESIGN.md "The model"): W_h ~ N(0, gain²/N), W_x and W_out ~ U(±1/√fan_in) as
PyTorch's nn.Linear, checked by their sample moments, ranges and a Kolmogorov–Smirnov test."""

import math

import pytest
from scipy import stats

from neurosim.model import init_params

N, N_IN, N_OUT = 400, 50, 40


@pytest.mark.parametrize("gain", [0.2, 1.0, 2.0])
def test_recurrent_weights_are_normal_with_variance_gain_squared_over_n(gain):
    W_h = init_params(N_IN, N, N_OUT, gain, seed=11).W_h[0].double().flatten()
    # N² = 160000 samples: the variance estimate has relative std sqrt(2 / N²) = 0.35 %; 5 sigma
    assert W_h.var().item() == pytest.approx(gain**2 / N, rel=5 * math.sqrt(2 / N**2))
    assert abs(W_h.mean().item()) < 5 * gain / N  # std of the mean: gain / sqrt(N) / N
    assert stats.kstest(W_h.numpy() / (gain / math.sqrt(N)), "norm").pvalue > 1e-3


def test_input_and_readout_weights_are_uniform_in_one_over_sqrt_fan_in():
    p = init_params(N_IN, N, N_OUT, 1.0, seed=5)
    for W, fan_in in ((p.W_x[0], N_IN), (p.W_out[0], N)):
        bound = 1 / math.sqrt(fan_in)
        w = W.double().flatten()
        assert w.abs().max().item() <= bound
        assert w.var().item() == pytest.approx(bound**2 / 3, rel=0.05)
        assert stats.kstest(w.numpy(), "uniform", args=(-bound, 2 * bound)).pvalue > 1e-3


def test_a_wrong_variance_fails_the_check():
    """The verifier: weights scaled by 1.05 (a 10 % variance error) are caught."""
    W_h = init_params(N_IN, N, N_OUT, 1.0, seed=11).W_h[0].double().flatten() * 1.05
    assert W_h.var().item() != pytest.approx(1.0 / N, rel=5 * math.sqrt(2 / N**2))
