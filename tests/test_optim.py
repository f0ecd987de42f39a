"""The optimisers' lr schedule: analytic factors, SGD steps computed by hand, and the refusal
of a schedule where the learning rate is a fixed shift."""

import math

import pytest
import torch

from neurosim.config import ConfigError, TrainConfig
from neurosim.model import Params
from neurosim.optim import Optimizer, lr_factor


def test_cosine_factor_runs_from_one_to_zero():
    assert lr_factor("none", 7, 10) == 1.0
    assert lr_factor("cosine", 0, 10) == 1.0
    assert lr_factor("cosine", 5, 10) == pytest.approx(0.5, abs=1e-15)
    assert lr_factor("cosine", 10, 10) == pytest.approx(0.0, abs=1e-15)
    factors = [lr_factor("cosine", s, 10) for s in range(10)]
    assert all(a > b for a, b in zip(factors, factors[1:], strict=False))  # strictly decreasing


def test_sgd_with_cosine_decay_matches_hand_computation():
    w = Params(*(torch.ones(2, 3, 3, dtype=torch.float64) for _ in range(3)))
    g = Params(*(torch.full((2, 3, 3), 0.5, dtype=torch.float64) for _ in range(3)))
    lr = torch.tensor([0.1, 0.2], dtype=torch.float64)
    opt = Optimizer("sgd", lr, decay="cosine", total=4)
    for _ in range(4):
        w = opt.step(w, g)
    # w = 1 - lr · 0.5 · Σ_s ½(1 + cos(π s / 4)), s = 0..3
    expected = 1 - lr * 0.5 * sum(0.5 * (1 + math.cos(math.pi * s / 4)) for s in range(4))
    for m in w:
        torch.testing.assert_close(m[:, 0, 0], expected, rtol=0, atol=1e-15)


def test_fixed_point_refuses_an_lr_schedule():
    with pytest.raises(ConfigError, match="lr_decay"):
        TrainConfig(bits=8, lr_decay="cosine")
