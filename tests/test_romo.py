"""Romo task: the delay as Schuessler's generator draws it (floor), period layout, lengths."""

import pytest
import torch
from scipy import stats

from neurosim.tasks.romo import Romo

TRIALS = 24_000  # chi-square over 12 (or 30) bins: ~2000 (or 800) trials per bin


def _delays(task: Romo, n: int, seed: int = 0) -> torch.Tensor:
    """Delay steps of n trials, read off the batch: f2 onset minus f1 offset."""
    x, _, _ = task.sample(n, torch.Generator().manual_seed(seed))
    on = x[..., 0] > 0  # (T, B): f1 and f2 are the only nonzero inputs (both >= 0.5)
    t = torch.arange(x.shape[0]).unsqueeze(1).expand_as(on)
    f1_off = torch.where(on, t, 10**6).min(0).values + task._steps(1.0)
    f2_on = torch.where(on, t, -1).max(0).values - task._steps(1.0) + 1
    return f2_on - f1_off


@pytest.mark.parametrize(("dt", "lo", "hi"), [(0.5, 4, 15), (0.2, 10, 39)])
def test_delay_is_floor_of_uniform_2_8_over_dt_uniform_on_its_steps(dt, lo, hi):
    """int(U(2, 8)/dt): every step count lo..hi occurs, none outside, equally often (a
    chi-square test against the uniform; rounding would put half weight on lo and hi+1)."""
    d = _delays(Romo(dt=dt), TRIALS)
    assert int(d.min()) == lo and int(d.max()) == hi
    counts = torch.bincount(d - lo, minlength=hi - lo + 1).numpy()
    assert counts.size == hi - lo + 1
    p = stats.chisquare(counts).pvalue
    assert p > 1e-3, (counts, p)
    # the test has power: the rounded generator's half-weight ends are rejected
    rounded = torch.round(2 / dt + (6 / dt) * torch.rand(TRIALS, generator=torch.Generator().manual_seed(1),
                                                          dtype=torch.float64)).long()
    assert stats.chisquare(torch.bincount(rounded - lo)[: hi - lo + 1].numpy()).pvalue < 1e-6


def test_mean_delay_at_dt_half_is_9_5_steps():
    """E[int(U(4, 16))] = 9.5 (the rounded generator's mean was 10)."""
    d = _delays(Romo(dt=0.5), TRIALS, seed=3).double()
    assert abs(float(d.mean()) - 9.5) < 4 * 3.45 / TRIALS**0.5  # 4 standard errors (sd 3.45)


@pytest.mark.parametrize(("dt", "steps", "transient"), [(0.5, 56, 7), (0.2, 140, 16)])
def test_fixed_periods_are_whole_steps_and_the_batch_is_padded_to_the_longest_trial(dt, steps, transient):
    """3/0.2 = 14.999… in IEEE: the floor keeps 15 fixation steps, not 14."""
    task = Romo(dt=dt)
    assert task.n_steps == steps and task.transient_steps == transient
    x, target, mask = task.sample(64, torch.Generator().manual_seed(0))
    assert x.shape == (steps, 64, 1)
    assert (x[: round(3 / dt)] == 0).all() and (x[round(3 / dt)] > 0).all()  # fixation, then f1
    assert (mask[-1] == 0).all()  # the delay's bound int(8/dt) is never drawn: last step is padding
    resp = target.sum(-1) > 0
    assert (resp.sum(0) == round(10 / dt)).all()  # the response window is 10 τ in every trial


def test_each_trial_follows_its_periods_targets_and_mask():
    """Trial by trial at dt = 0.5 (steps = 2 per unit of tau): fixation 6 steps of 0 input, f1 for
    2, the delay, f2 for 2, a 10-step decision delay outside the mask, a 20-step response where
    the larger stimulus' channel is 0.5; both stimuli in [0.5, 1.5], at least 0.2 apart."""
    x, target, mask = Romo().sample(500, torch.Generator().manual_seed(3))
    for b in range(x.shape[1]):
        on = (x[:, b, 0] != 0).nonzero().flatten().tolist()
        assert on[:2] == [6, 7] and len(on) == 4  # f1 at steps 6-7, then f2 for two steps
        f1, f2 = float(x[6, b, 0]), float(x[on[2], b, 0])
        assert on[3] == on[2] + 1 and x[on[2]:on[3] + 1, b, 0].eq(f2).all()
        assert 0.5 <= f1 <= 1.5 and 0.5 <= f2 <= 1.5 and abs(f1 - f2) >= 0.2
        f2_end = on[3] + 1
        resp = slice(f2_end + 10, f2_end + 30)
        assert mask[:f2_end, b].eq(1).all() and mask[f2_end:f2_end + 10, b].eq(0).all()
        assert mask[resp, b].eq(1).all() and mask[f2_end + 30:, b].eq(0).all()
        larger = 0 if f1 > f2 else 1
        assert target[resp, b, larger].eq(0.5).all() and target[resp, b, 1 - larger].eq(0).all()
        assert target[:f2_end + 10, b].eq(0).all()
