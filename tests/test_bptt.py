"""BPTT is the exact gradient: compared with central finite differences in float64."""

import torch

from neurosim.model import init_params, masked_mse, readout, run
from neurosim.rules import gradients


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
