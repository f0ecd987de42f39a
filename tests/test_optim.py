"""The optimisers' lr schedule: analytic factors, SGD steps computed by hand, and the power-of-two
schedule of a learning rate that is a shift."""

import math

import pytest
import torch

from neurosim.config import TrainConfig
from neurosim.model import Params
from neurosim.optim import MAX_DECAY_SHIFT, Optimizer, decay_shift, lr_factor


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


def test_power_of_two_schedule_follows_the_cosine_within_half_a_binade():
    """Where the lr is a shift the cosine moves in powers of two: k starts at 0, never falls,
    2^-k is within a factor √2 of the cosine's factor until the cap, and the cap is reached."""
    total = 1000
    ks = [decay_shift("cosine", s, total) for s in range(total)]
    assert ks[0] == 0 and ks[-1] == MAX_DECAY_SHIFT
    assert all(a <= b for a, b in zip(ks, ks[1:], strict=False))
    assert set(ks) == set(range(MAX_DECAY_SHIFT + 1))
    for s, k in enumerate(ks):
        f = lr_factor("cosine", s, total)
        if k < MAX_DECAY_SHIFT:
            assert 2**-0.5 <= 2.0**-k / f <= 2**0.5
        else:
            assert f < 2.0 ** -(MAX_DECAY_SHIFT - 0.5)
    assert {decay_shift("none", s, total) for s in range(total)} == {0}


def test_sgd_with_power_of_two_decay_matches_hand_computation():
    w = Params(*(torch.ones(1, 2, 2, dtype=torch.float64) for _ in range(3)))
    g = Params(*(torch.full((1, 2, 2), 0.5, dtype=torch.float64) for _ in range(3)))
    opt = Optimizer("sgd", torch.tensor([0.25], dtype=torch.float64), decay="cosine", total=8, pow2=True)
    for _ in range(8):
        w = opt.step(w, g)
    # cosine factors of steps 0..7: 1, .96, .85, .69, .5, .31, .15, .04 → 2^-k with
    # k = round(-log2 f) = 0, 0, 0, 1, 1, 2, 3, 5
    expected = 1 - 0.25 * 0.5 * sum(2.0**-k for k in (0, 0, 0, 1, 1, 2, 3, 5))
    for m in w:
        assert torch.equal(m, torch.full_like(m, expected))


def test_config_resolves_the_schedule_per_side():
    assert TrainConfig(bits=8).lr_decay == "none"  # a fixed-point run keeps its shift unless asked
    assert TrainConfig(bits=8, lr_decay="cosine").lr_decay == "cosine"
    assert TrainConfig().lr_decay == "cosine"
