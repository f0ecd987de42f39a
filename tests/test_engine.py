"""The integer e-prop engine against an independent rational-arithmetic reference and float SGD."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from rational_reference import Reference

from hw_models._exactness import ExactnessError
from hw_models.engine import FixedPointEngine
from hw_models.profile import ProfileError, apply_overrides, derive_profile, load_profile
from neurosim.model import Params, init_params


def _batch(T: int, E: int, B: int, n_in: int, n_out: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(T, E, B, n_in, generator=g, dtype=torch.float64) * 2 - 0.5
    target = (torch.rand(T, E, B, n_out, generator=g, dtype=torch.float64) > 0.5) * 0.5
    mask = (torch.rand(T, E, B, generator=g) > 0.3).to(torch.float64)
    return x, target, mask


# ---- (a) an independent reference: exact rationals (tests/rational_reference.py) -------------

REFERENCE_PROFILES = {
    "mixed_modes_pow2_per_trial": dict(
        rounding_state="nearest_away", rounding_trace="floor", rounding_learning_signal="trunc",
        rounding_accumulate="nearest_even", rounding="stochastic", lr_shift=-8,
    ),
    "all_stochastic_per_step": dict(
        rounding_state="stochastic", rounding_trace="stochastic",
        rounding_learning_signal="stochastic", rounding_accumulate="stochastic",
        rounding="stochastic", schedule="per_step", weight_scale="fixed", lr_shift=-4, seed=5,
    ),
    "narrow_wrapping_nearest": dict(
        overflow="wrap", rounding="nearest_even", x="s3.2", h="s4.2", r="u3.2", y="s4.3",
        e="s8.7",
        L="s8.7", acc="s10.6", lr_shift=1,
    ),
    # the accumulator keeps the remainder; nearest_away and nearest_even meet exact ties
    "carry_ties_per_trial": dict(
        accumulator="carry", rounding_state="nearest_even", rounding_trace="nearest_away",
        rounding_learning_signal="nearest_even", rounding_accumulate="nearest_away",
        rounding="nearest_even", lr_shift=-6, weight_scale="fixed",
    ),
    "carry_stochastic_per_step": dict(accumulator="carry", schedule="per_step", lr_shift=-4,
                                      rounding_state="nearest_even", seed=7),
}


@pytest.mark.parametrize("case", list(REFERENCE_PROFILES))
def test_engine_matches_independent_rational_reference_bit_for_bit(case):
    """N = 4, T = 8, batch 2, two trials; inputs and targets include exact ties (k + 1/2 LSB) and
    negative values. Besides the codes: the nearest modes of the state (S0, S4: the injected ties)
    and accumulate (a 2-bit shift) groups met exact ties, and every matrix changed. (Trace and
    weight-update shifts are 17+ bits here, and e = (y - y*)·w has no ties: see the coverage
    table's reasons.)"""
    prof = derive_profile(6, alpha="u8.8", **REFERENCE_PROFILES[case])
    params = init_params(2, 4, 2, 1.5, ensemble=1, seed=4, dtype=torch.float64)
    x, target, mask = _batch(T=8, E=1, B=2, n_in=2, n_out=2, seed=1)
    fx, fy = prof.formats.x.frac, prof.formats.y.frac
    x[::3, 0, 0, 0] = torch.tensor([-2.5, 1.5, -0.5])[: len(x[::3])] * 2.0**-fx  # exact ties
    target[1::3, 0, 1, 1] = torch.tensor([3.5, -1.5, 0.5])[: len(target[1::3])] * 2.0**-fy
    alpha = 0.7  # not a power of two: exercises α_c and β_c
    eng = FixedPointEngine(prof, params, alpha=alpha, seed=3 + 2**33)  # both halves of the seed
    ref = Reference(prof, params, alpha, seed=3 + 2**33)
    start = {k: eng.W[k].clone() for k in ("W_h", "W_x", "W_out")}
    for _ in range(2):
        rec: dict = {}
        eng.train_step(x, target, mask, record=rec)
        expected = ref.train_step(x, target, mask)
        for k, v in expected.items():
            np.testing.assert_array_equal(rec[k][:, 0].numpy().astype(np.int64), v, err_msg=k)
        for k in ("W_h", "W_x", "W_out"):
            np.testing.assert_array_equal(eng.W[k][0].numpy().astype(np.int64),
                                          ref.W[k].astype(np.int64), err_msg=k)
            np.testing.assert_array_equal(eng.acc[k][0].numpy().astype(np.int64),
                                          ref.acc[k].astype(np.int64), err_msg=f"acc_{k}")
    if case == "narrow_wrapping_nearest":
        assert sum(eng.counters.values()) > 0  # the narrow formats did wrap
    if case == "narrow_wrapping_nearest":
        return  # this case is about wrap-around (x wraps); at lr 2^-1 no weight moves in 2 trials
    for group in ("state", "accumulate"):
        if getattr(prof.rounding, group).startswith("nearest"):
            assert ref.ties[group] > 0, group
    changed = [k for k in start if not torch.equal(eng.W[k], start[k])]
    assert changed == ["W_h", "W_x", "W_out"], changed


# ---- (b) float-like-24 tracks float SGD ------------------------------------------------------

def _float_eprop_sgd(params: Params, x, target, mask, alpha: float, lr: float):
    """Plain-torch e-prop (explicit traces) and one SGD step: returns (loss, new params)."""
    W_h, W_x, W_out = params
    T, E, B, _ = x.shape
    h = torch.zeros(E, B, W_h.shape[1], dtype=torch.float64)
    r, eps, eps_x = h.clone(), h.clone(), torch.zeros_like(x[0])
    g = [torch.zeros_like(w) for w in params]
    msum = mask.sum((0, 2)).clamp_min(1).view(E, 1, 1)
    loss = torch.zeros(E, dtype=torch.float64)
    for t in range(T):
        eps, eps_x = alpha * eps + (1 - alpha) * r, alpha * eps_x + (1 - alpha) * x[t]
        h = alpha * h + (1 - alpha) * (r @ W_h.mT + x[t] @ W_x.mT)
        r = h.relu()
        y = r @ W_out.mT
        e = (y - target[t]) * mask[t].unsqueeze(-1) / msum
        loss += 0.5 * ((y - target[t]) ** 2 * mask[t].unsqueeze(-1)).sum((1, 2)) / msum.flatten()
        L = (h > 0) * (e @ W_out)
        g[0] += L.mT @ eps
        g[1] += L.mT @ eps_x
        g[2] += e.mT @ r
    return loss, Params(*(w - lr * gw for w, gw in zip(params, g, strict=True)))


def test_float_like_24_matches_float_sgd():
    prof = apply_overrides(load_profile("float-like-24"), lr_shift=3)
    params = init_params(2, 16, 2, 1.0, ensemble=2, seed=0, dtype=torch.float64)
    x, target, mask = _batch(T=20, E=2, B=8, n_in=2, n_out=2)
    eng = FixedPointEngine(prof, params, alpha=0.5)
    ref = eng.params()  # start from the quantized weights: the gap is then arithmetic alone
    for _ in range(3):
        loss_ref, new_ref = _float_eprop_sgd(ref, x, target, mask, 0.5, 2.0**-3)
        loss = eng.train_step(x, target, mask)
        for w_new, w_old, w_eng in zip(new_ref, ref, eng.params(), strict=True):
            step = (w_new - w_old).abs().max()
            # x, h, r and traces carry 16 fractional bits, e and L 23, weights 20: the largest
            # gap seen is 9e-4 of the weight change (W_x, whose gradient partly cancels), so
            # allow 2e-3 of the change plus 2 weight LSBs (2^-19)
            assert (w_eng - w_new).abs().max() <= 2e-3 * step + 2.0**-19
        torch.testing.assert_close(loss, loss_ref, rtol=1e-4, atol=1e-7)
        ref = eng.params()


# ---- (c) exactness is checked, not hoped for -------------------------------------------------

def test_exactness_bound_refuses_huge_formats():
    params = init_params(2, 64, 2, 1.0, dtype=torch.float64)
    with pytest.raises(ExactnessError, match=r"worst-case \|I\| sum is 2\^\d+\.\d >= 2\^53"):
        FixedPointEngine(derive_profile(32, state_bits=24), params, alpha=0.5)


def test_batch_beyond_the_exact_bound_is_refused():
    prof = derive_profile(8, e="s30.29", L="s30.29", eps="s20.17")
    eng = FixedPointEngine(prof, init_params(1, 4, 1, 1.0), alpha=0.5)
    assert eng.max_batch < 64
    x, target, mask = _batch(T=2, E=1, B=64, n_in=1, n_out=1)
    with pytest.raises(ValueError, match="exceeds the largest exact batch"):
        eng.train_step(x, target, mask)


# ---- (d) the int8 stall and its stochastic cure ----------------------------------------------

def test_int8_nearest_stalls_and_int8_stochastic_does_not():
    params = init_params(2, 16, 2, 1.0, ensemble=2, seed=0)
    x, target, mask = _batch(T=20, E=2, B=8, n_in=2, n_out=2)
    nearest = FixedPointEngine(apply_overrides(load_profile("int8-nearest"), lr_shift=6),
                               params, alpha=0.5)
    stoch = FixedPointEngine(apply_overrides(load_profile("int8-stochastic"), lr_shift=6),
                             params, alpha=0.5)
    W0 = nearest.W["W_h"].clone()
    drift, var = 0.0, 0.0
    for _ in range(10):
        nearest.train_step(x, target, mask)
        rec: dict = {}
        stoch.train_step(x, target, mask, record=rec)
        shift = stoch.profile.formats.acc.frac + 6 - stoch.frac["W_h"]
        exact = rec["acc_W_h"][0] * 2.0**-shift  # the update in LSBs before rounding
        drift += float((rec["dW_h"][0] - exact).sum())
        p = exact - exact.floor()
        var += float((p * (1 - p)).sum())
    stalled, nonzero = nearest.stall_counts()["W_h"]
    assert (stalled == nonzero).all() and (nonzero > 0).all()
    assert torch.equal(nearest.W["W_h"], W0)  # every update was below half an LSB
    assert (stoch.stall_fraction()["W_h"] < 1).all()
    assert not torch.equal(stoch.W["W_h"], W0)
    # unbiased: each rounding error has mean 0 and variance p(1-p) (p = fractional part), so
    # the summed error has std sqrt(var); 5 std bounds it (a false alarm is < 1e-6 likely)
    assert abs(drift) < 5 * math.sqrt(var)


def test_carry_keeps_what_nearest_rounding_drops():
    """int8-nearest at lr 2^-6 drops every update (above); with ``accumulator = "carry"`` the
    dropped part stays in the accumulator, exactly: each update's accumulator is the remainder
    the previous update left plus this trial's gradient sum (measured by a clearing engine with
    the same weights), the remainder is at most half an LSB, and the sub-LSB updates add up to
    whole-LSB weight changes."""
    params = init_params(2, 16, 2, 1.0, ensemble=2, seed=0)
    x, target, mask = _batch(T=20, E=2, B=8, n_in=2, n_out=2)
    nearest = apply_overrides(load_profile("int8-nearest"), lr_shift=6)
    carry = FixedPointEngine(apply_overrides(nearest, accumulator="carry"), params, alpha=0.5)
    W0 = carry.W["W_h"].clone()
    shift = carry.profile.formats.acc.frac + 6 - carry.frac["W_h"]
    remainder = torch.zeros_like(W0)
    for _ in range(30):
        clear = FixedPointEngine(nearest, params, alpha=0.5)
        clear.W = {k: v.clone() for k, v in carry.W.items()}
        fresh: dict = {}
        clear.train_step(x, target, mask, record=fresh)
        rec: dict = {}
        carry.train_step(x, target, mask, record=rec)
        assert torch.equal(rec["acc_W_h"][0], remainder + fresh["acc_W_h"][0])
        remainder = rec["acc_W_h"][0] - rec["dW_h"][0] * 2.0**shift
        assert torch.equal(carry.acc["W_h"], remainder)
        assert (remainder.abs() <= 2.0 ** (shift - 1)).all()
    assert not torch.equal(carry.W["W_h"], W0)  # the clearing engine never moves (test above)


def test_carry_with_a_left_shift_into_the_weights_is_refused():
    prof = derive_profile(8, accumulator="carry", acc="s16.4", lr_shift=-1)
    with pytest.raises(ProfileError, match="accumulator 'carry' needs f_acc"):
        FixedPointEngine(prof, init_params(2, 8, 2, 1.0, ensemble=1), alpha=0.5)


@pytest.mark.parametrize("name", ["int8-stochastic", "int8-carry"])
def test_a_trial_at_a_raised_lr_shift_equals_a_profile_with_that_shift(name):
    """A decay schedule raises the shift per trial (``train_step(lr_shift=...)``): codes and
    counters after trials at shifts 0, 2, 1 equal those of engines built with each shift and
    handed the previous weights, accumulators and RNG state; a shift below the profile's is
    refused."""
    prof = load_profile(name)
    params = init_params(2, 16, 2, 1.0, ensemble=2, seed=0)
    x, target, mask = _batch(T=12, E=2, B=4, n_in=2, n_out=2)
    sched = FixedPointEngine(prof, params, alpha=0.5)
    state = sched.state()
    for k in (0, 2, 1):
        fixed = FixedPointEngine(apply_overrides(prof, lr_shift=prof.lr_shift + k), params, alpha=0.5)
        fixed.load_state(state)
        loss_f = fixed.train_step(x, target, mask)
        loss_s = sched.train_step(x, target, mask, lr_shift=prof.lr_shift + k)
        assert torch.equal(loss_s, loss_f)
        state = sched.state()
        assert all(torch.equal(state["W"][w], fixed.W[w]) for w in state["W"])
        assert all(torch.equal(state["acc"][w], fixed.acc[w]) for w in state["acc"])
    assert not torch.equal(state["W"]["W_h"], FixedPointEngine(prof, params, alpha=0.5).W["W_h"])
    with pytest.raises(ValueError, match="below the profile's"):
        sched.train_step(x, target, mask, lr_shift=prof.lr_shift - 1)


# ---- (e) determinism and the ensemble axis ---------------------------------------------------

def test_same_seed_gives_identical_codes():
    prof = load_profile("loihi-like")
    params = init_params(2, 8, 2, 1.0, ensemble=2)
    x, target, mask = _batch(T=10, E=2, B=4, n_in=2, n_out=2)
    runs = []
    for _ in range(2):
        eng = FixedPointEngine(prof, params, alpha=0.5, seed=11)
        losses = [eng.train_step(x, target, mask) for _ in range(3)]
        runs.append((torch.stack(losses), eng.W))
    assert torch.equal(runs[0][0], runs[1][0])
    assert all(torch.equal(runs[0][1][k], runs[1][1][k]) for k in runs[0][1])


@pytest.mark.parametrize("name", ["int8-stochastic", "loihi-like"])
def test_ensemble_member_equals_the_same_network_alone(name):
    prof = apply_overrides(load_profile(name), rounding_state="stochastic", schedule="per_step")
    params = init_params(2, 8, 2, [0.2, 1.0, 1.5], ensemble=3, seed=[4, 5, 6])
    x, target, mask = _batch(T=10, E=3, B=4, n_in=2, n_out=2)
    ens = FixedPointEngine(prof, params, alpha=0.5, seed=[7, 8, 9])
    alone = FixedPointEngine(prof, params.map(lambda w: w[1:2]), alpha=0.5, seed=[8])
    for _ in range(3):
        loss_ens = ens.train_step(x, target, mask)
        loss_alone = alone.train_step(x[:, 1:2], target[:, 1:2], mask[:, 1:2])
        assert torch.equal(loss_ens[1:2], loss_alone)
    for k in ("W_h", "W_x", "W_out"):
        assert torch.equal(ens.W[k][1:2], alone.W[k])


def test_saturations_are_counted_per_network_as_if_each_ran_alone():
    prof = derive_profile(6, h="s6.3", r="u5.3", x="s6.3", y="s6.3")  # narrow: states saturate
    gains = [0.2, 1.0, 2.0]
    params = init_params(2, 8, 2, gains, ensemble=3, seed=[4, 5, 6])
    x, target, mask = _batch(T=10, E=3, B=4, n_in=2, n_out=2)
    ens = FixedPointEngine(prof, params, alpha=0.5, seed=[7, 8, 9])
    for _ in range(2):
        ens.train_step(x * 4, target, mask)
    per_net = ens.network_counters()
    for e in range(3):
        alone = FixedPointEngine(prof, params.map(lambda w, e=e: w[e:e + 1]), alpha=0.5, seed=[7 + e])
        for _ in range(2):
            alone.train_step(x[:, e:e + 1] * 4, target[:, e:e + 1], mask[:, e:e + 1])
        assert {k: int(v[e]) for k, v in per_net.items()} == alone.counters
    assert {k: int(v.sum()) for k, v in per_net.items()} == ens.counters
    assert per_net["I"].tolist() == sorted(set(per_net["I"].tolist()))  # distinct, growing with the gain


@pytest.mark.parametrize("name", ["int8-stochastic", "int8-carry"])  # carry: acc ≠ 0 between trials
def test_state_round_trip_resumes_bit_exactly(name):
    prof = load_profile(name)
    params = init_params(2, 8, 2, 1.0, ensemble=2)
    x, target, mask = _batch(T=10, E=2, B=4, n_in=2, n_out=2)
    a = FixedPointEngine(prof, params, alpha=0.5)
    a.train_step(x, target, mask)
    b = FixedPointEngine(prof, params, alpha=0.5)
    b.load_state(a.state())
    assert torch.equal(a.train_step(x, target, mask), b.train_step(x, target, mask))
    assert all(torch.equal(a.W[k], b.W[k]) and torch.equal(a.acc[k], b.acc[k]) for k in a.W)
    assert a.counters == b.counters


def test_params_are_the_float_view_of_the_codes():
    params = init_params(2, 8, 2, 0.2, ensemble=2, dtype=torch.float64)
    eng = FixedPointEngine(load_profile("int8-stochastic"), params, alpha=0.5)
    for w, w_q, k in zip(params, eng.params(), ("W_h", "W_x", "W_out"), strict=True):
        lsb = 2.0 ** -eng.frac[k]
        assert ((w_q - w).abs() <= lsb / 2).all()
        room = getattr(eng.profile.headroom, k)  # pow2: 2^room · max|W| fits the 127 codes
        assert (w_q.abs().flatten(1).max(1).values <= 128 / 2**room * lsb.flatten()).all()


class _RoundingLog:
    """Stands in for the golden run's coverage recorder: logs each rounding point the engine
    passes, as (signal, rounding mode)."""

    def __init__(self):
        self.seen = []

    def shift(self, signal, v, shift, fmt, rounding, u):
        self.seen.append((signal, rounding))


@pytest.mark.parametrize("schedule", ["per_trial", "per_step"])
def test_the_engine_rounds_in_the_order_and_modes_of_the_operation_list(schedule):
    """hw_models.operations is the one statement of the arithmetic: the engine's rounding
    points, in order and with their modes, are exactly the list's rounding operations (S0..S15
    per step, U1..U9 per update), also with a different mode in every rounding group."""
    from hw_models.operations import step_ops, update_ops
    from hw_models.profile import derive_profile
    from hw_models.spec.golden import network_of

    prof = derive_profile(8, schedule=schedule, rounding_state="nearest_away", rounding_trace="floor",
                          rounding_learning_signal="trunc", rounding_accumulate="nearest_even")
    eng = FixedPointEngine(prof, init_params(1, 4, 2, 1.0, ensemble=1, seed=0), alpha=0.5, seed=0)
    eng.coverage = log = _RoundingLog()
    T = 3
    g = torch.Generator().manual_seed(1)
    eng.train_step(torch.rand(T, 1, 1, 1, generator=g, dtype=torch.float64),
                   torch.rand(T, 1, 1, 2, generator=g, dtype=torch.float64),
                   torch.ones(T, 1, 1, dtype=torch.float64), lr_shift=prof.lr_shift)
    net = network_of(eng, 0.5)
    step = [(o["result"], o["rounding"]) for o in step_ops(net) if o.get("rounding")]
    update = [(o["result"], o["rounding"]) for o in update_ops(net) if o.get("rounding")]
    expected = (step + update) * T if schedule == "per_step" else step * T + update
    assert log.seen == expected
    assert len({mode for _, mode in log.seen}) == 5  # every group's own mode was seen in its place
    assert log.seen != expected[::-1]  # the comparison can fail: order matters
