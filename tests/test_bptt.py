"""BPTT is the exact gradient: the explicit backward recursion against autograd and against
central finite differences, in float64."""

import pytest
import torch

from neurosim.model import init_params, masked_mse, readout, run
from neurosim.rules import bptt_gradients, bptt_gradients_autograd, gradients


@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("gain", [0.2, 1.0, 2.5])
@pytest.mark.parametrize("mask_p", [0.3, 1.0])
def test_explicit_backward_equals_autograd(alpha, gain, mask_p):
    g = torch.Generator().manual_seed(11)
    params = init_params(3, 12, 2, gain, ensemble=3, seed=7, dtype=torch.float64)
    x = torch.randn(15, 1, 4, 3, generator=g, dtype=torch.float64)  # one batch shared by the ensemble
    target = torch.randn(15, 3, 4, 2, generator=g, dtype=torch.float64)
    mask = (torch.rand(15, 3, 4, generator=g, dtype=torch.float64) < mask_p).double()
    loss_a, g_a = bptt_gradients(params, x, target, mask, alpha=alpha)
    loss_b, g_b = bptt_gradients_autograd(params, x, target, mask, alpha=alpha)
    # two summation orders in float64: ~1e-15 relative; gain 2.5 with α = 0 grows states (and
    # BPTT's adjoints through W_hᵀ) by orders of magnitude, hence 1e-12 relative + 1e-10 absolute
    torch.testing.assert_close(loss_a, loss_b, rtol=1e-12, atol=1e-12)
    for a, b in zip(g_a, g_b, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-10)


def test_bptt_equals_finite_differences():
    g = torch.Generator().manual_seed(0)
    params = init_params(2, 6, 2, 1.2, ensemble=2, seed=4, dtype=torch.float64)
    x = torch.randn(12, 2, 3, 2, generator=g, dtype=torch.float64)
    target = torch.randn(12, 2, 3, 2, generator=g, dtype=torch.float64)
    mask = torch.ones(12, 2, 3, dtype=torch.float64)
    _, grads = gradients(params, x, target, mask, rule="bptt", alpha=0.5)

    def loss_of(p):
        return masked_mse(readout(p, run(p, x, 0.5)), target, mask)

    step = 1e-6  # central differences: O(step²) truncation ≈ 1e-12, round-off ≈ 1e-16/step ≈ 1e-10
    for k, name in enumerate(params._fields):
        W = params[k]
        for idx in [(0, 0, 0), (1, 1, 0), (1, W.shape[1] - 1, W.shape[2] - 1)]:
            bumped = []
            for sign in (1, -1):
                Wb = W.clone()
                Wb[idx] += sign * step
                bumped.append(loss_of(params._replace(**{name: Wb}))[idx[0]])
            fd = (bumped[0] - bumped[1]) / (2 * step)
            assert abs(fd - grads[k][idx]) < 1e-7, (name, idx, fd, grads[k][idx])
