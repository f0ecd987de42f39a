"""Gradient flossing: the explicit local k = 1 rule equals autograd with detached trajectory
and tangent, and flossing pulls the maximum Lyapunov exponent toward 0."""

import pytest
import torch

from neurosim.lyapunov import lyapunov_spectrum, max_lyapunov
from neurosim.model import init_params
from neurosim.optim import Optimizer
from neurosim.rules.flossing import flossing_gradients, local_floss_grad_k1


def _x(T, E, B, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(T, E, B, 2, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("gain", [0.5, 1.5, 3.0])
@pytest.mark.parametrize("warmup", [0, 5])
def test_local_rule_k1_equals_autograd_with_detached_trajectory_and_tangent(gain, warmup):
    params = init_params(2, 10, 2, gain, ensemble=2, seed=1, dtype=torch.float64)
    x = _x(25, 2, 3, 7)
    lam, dlam = local_floss_grad_k1(params, x, alpha=0.5, warmup=warmup)
    W_h = params.W_h.clone().requires_grad_()
    lam_ag = lyapunov_spectrum(params._replace(W_h=W_h), x, alpha=0.5, k=1, warmup=warmup,
                               detach_trajectory=True, detach_tangent=True)[:, 0]
    (grad,) = torch.autograd.grad(lam_ag.sum(), W_h)
    torch.testing.assert_close(lam, lam_ag.detach(), rtol=0, atol=1e-12)
    torch.testing.assert_close(dlam, grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("variant", ["local", "bptt"])
def test_flossing_loss_is_mean_square_of_exponents(variant):
    params = init_params(2, 8, 2, 1.0, ensemble=2, seed=3, dtype=torch.float64)
    x = _x(20, 2, 2, 1)
    loss, grads = flossing_gradients(params, x, alpha=0.5, k=3, variant=variant)
    lam = lyapunov_spectrum(params, x, alpha=0.5, k=3)
    torch.testing.assert_close(loss, (lam**2).mean(1), rtol=0, atol=1e-12)
    assert grads.W_h.abs().sum() > 0
    if variant == "local":
        assert grads.W_x.abs().sum() == 0


@pytest.mark.parametrize("gain", [0.2, 2.0])
@pytest.mark.parametrize("variant", ["local", "bptt"])
def test_hundred_flossing_iterations_halve_the_max_exponent(gain, variant):
    E = 5
    params = init_params(2, 32, 2, gain, ensemble=E, seed=0, dtype=torch.float64)
    x = _x(40, E, 4, 11)
    before = max_lyapunov(params, x, alpha=0.5).abs().mean()
    opt = Optimizer("adam", torch.full((E,), 3e-3))
    for _ in range(100):
        _, grads = flossing_gradients(params, x, alpha=0.5, k=1, variant=variant)
        params = opt.step(params, grads)
    after = max_lyapunov(params, x, alpha=0.5).abs().mean()
    assert after <= 0.5 * before, (float(before), float(after))
