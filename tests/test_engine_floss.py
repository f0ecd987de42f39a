"""Integer local flossing (k = 1): Mitchell's log2, the integer square root and the rounded
division against exact references, agreement with the float local rule, and 100 flossing
iterations of the 16-bit engine pull the max Lyapunov exponent toward 0."""

import math
from fractions import Fraction

import pytest
import torch

from hw_models import FixedPointEngine, load_profile
from hw_models.flossing import divide_round, isqrt, mitchell_log2
from hw_models.profile import apply_overrides
from neurosim.lyapunov import max_lyapunov
from neurosim.model import init_params


def _x(T, E, B, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(T, E, B, 2, generator=g, dtype=torch.float64)


def test_mitchell_log2_is_exact_at_powers_of_two_and_within_its_known_bound():
    c = torch.arange(1, 1 << 16, dtype=torch.float64)
    err = mitchell_log2(c) - torch.log2(c)
    pow2 = 2.0 ** torch.arange(16, dtype=torch.float64)
    assert torch.equal(mitchell_log2(pow2), torch.arange(16, dtype=torch.float64))
    # Mitchell (1962): 0 >= error >= log2(ln2 · e)... max |error| = 0.08607 at m = 1/ln2 - 1
    assert err.max() <= 1e-12 and err.min() >= -0.0861


def test_engine_lambda_estimate_tracks_float_lyapunov_exponent():
    """λ_1 from the engine's integer flossing pass vs the float QR method on the same weights.
    The Mitchell log2 biases each log γ low by at most 0.086·ln2 ≈ 0.06 nats."""
    params = init_params(2, 16, 2, [0.5, 1.0, 1.5], ensemble=3, seed=0, dtype=torch.float64)
    profile = apply_overrides(load_profile("int16"), lr_shift=40)  # a negligible update
    eng = FixedPointEngine(profile, params, alpha=0.5)
    x = _x(30, 3, 4, 1)
    lam_float = max_lyapunov(eng.params(), x, alpha=0.5)
    lam_int = eng.floss_step(x).sqrt()  # |λ_1|
    assert torch.all((lam_int - lam_float.abs()).abs() < 0.07), (lam_int, lam_float)


def test_floss_step_is_deterministic():
    params = init_params(2, 12, 2, 1.0, ensemble=2, seed=3)
    profile = load_profile("int16")
    x = _x(20, 2, 3, 2)
    a, b = FixedPointEngine(profile, params, alpha=0.5), FixedPointEngine(profile, params, alpha=0.5)
    assert torch.equal(a.floss_step(x), b.floss_step(x))
    assert torch.equal(a.W["W_h"], b.W["W_h"])


@pytest.mark.parametrize("gain", [0.2, 2.0])
def test_hundred_integer_flossing_iterations_halve_the_max_exponent(gain):
    E = 5
    params = init_params(2, 32, 2, gain, ensemble=E, seed=0, dtype=torch.float64)
    profile = apply_overrides(load_profile("int16"), lr_shift=1)  # SGD at lr 0.5
    eng = FixedPointEngine(profile, params, alpha=0.5)
    x = _x(40, E, 4, 11)
    before = max_lyapunov(eng.params(), x, alpha=0.5).abs().mean()
    for _ in range(100):
        eng.floss_step(x)
    after = max_lyapunov(eng.params(), x, alpha=0.5).abs().mean()
    assert math.isfinite(after) and after <= 0.5 * before, (float(before), float(after))


def test_isqrt_is_the_exact_integer_square_root():
    """Against Python's math.isqrt (exact on ints), near squares and across the 2^52 range."""
    g = torch.Generator().manual_seed(0)
    r = torch.randint(0, 2**26, (2000,), generator=g, dtype=torch.int64)
    S = torch.cat([r * r - 1, r * r, r * r + 1, r * r + 2 * r, torch.randint(0, 2**52, (2000,), generator=g)])
    S = S.clamp_min(0).to(torch.float64)
    assert isqrt(S).tolist() == [float(math.isqrt(int(s))) for s in S.tolist()]


@pytest.mark.parametrize("mode", ["nearest_even", "nearest_away", "floor", "trunc", "stochastic"])
def test_divide_round_matches_exact_rational_rounding(mode):
    """n / d rounded from the remainder equals the mode applied to the exact fraction (ties and
    negative numerators included; stochastic: up iff u < frac, u = d_draw · 2^-32)."""
    g = torch.Generator().manual_seed(1)
    d = torch.randint(1, 40, (3000,), generator=g).to(torch.float64)
    n = torch.randint(-2**20, 2**20, (3000,), generator=g).to(torch.float64)
    n[:500] = (torch.randint(-50, 50, (500,), generator=g) * 2 + 1) * d[:500] / 2  # ties where d is even
    n = torch.floor(n)
    assert int((2 * torch.remainder(n, d) == d).sum()) > 100 and int((n < 0).sum()) > 1000
    u = torch.randint(0, 2**32, (3000,), generator=g).to(torch.float64) * 2.0**-32
    got = divide_round(n, d, mode, u if mode == "stochastic" else None)
    for ni, di, ui, gi in zip(n.tolist(), d.tolist(), u.tolist(), got.tolist(), strict=True):
        v = Fraction(int(ni), int(di))
        fl = math.floor(v)
        want = {"floor": fl, "trunc": math.trunc(v), "nearest_even": round(v),
                "nearest_away": int(math.copysign(math.floor(abs(v) + Fraction(1, 2)), v)),
                "stochastic": fl + (Fraction(ui) < v - fl)}[mode]
        assert gi == want, (ni, di, mode)
