r"""Local gradient flossing (k = 1) on integer codes: the rule of DESIGN.md as a chip runs it.

Float rule (:func:`neurosim.rules.flossing.local_floss_grad_k1`), along the detached trajectory:

    γ_t = ‖J_t q_t‖,   q_{t+1} = J_t q_t / γ_t,   J_t = αI + (1-α) W_h diag(f'(h_t))
    λ_1 = 1/(T'B) Σ_{t>=warmup, b} ln γ_t
    ∂λ_1/∂W_h[i,j] = 1/(T'B) Σ_{t>=warmup, b} (1-α) q_{t+1,i} · f'(h_{j,t}) q_{j,t} / γ_t
    W_h ← W_h - 2^-lr_shift · 2 λ_1 ∂λ_1/∂W_h          (descent on λ_1²)

Every operation below is integer arithmetic with a named algorithm; the operation list
(:func:`hw_models.operations.floss_ops`, F1..F14) states the same operations as data for
spec.json, the C model and the interpreter. Per step t, *before* the forward operations S0-S3
of :mod:`hw_models.engine` that take h_t to h_{t+1} (the trajectory is the engine's own,
quantized). ``q`` codes have f_q fraction bits, ``γ, ℓ, λ, g`` the ``floss_gain`` format's f_g;
``Q`` rounds with the ``state`` group's mode unless named, then applies the profile's overflow:

 F1. p      = [h_t > 0] · q_t                                   exact (a gate)
 F2. v      = Q_q(α_c q_t + β_c W_h p)                           aligned sum, one rounding
 F3. γ_t    = max(1, overflow((isqrt(S') + 1) >> 1)),  S' = Σ_i v_i² · 4^(f_g - f_q + 1)
            (a floor right shift when the exponent is negative): γ_t = sqrt(Σ v²) rounded to
            nearest, ties up. isqrt is the digit-by-digit (restoring) integer square root
            floor(sqrt(S')); (isqrt(S') + 1) >> 1 = floor(sqrt(S'/4) + 1/2) exactly.
 F4. q_{t+1} = Q_q((v << f_g) / γ_t)                              restoring division: the floor
 F5. pre    = Q_q((p << f_g) / γ_t)                               quotient and remainder, rounded
            from the remainder (nearest: 2·rem vs γ; stochastic: d·γ < rem·2^32)
 F6. ℓ_t    = Q_g(log2 γ_t − f_g) by leading-one detection (Mitchell 1962): for γ_t = 2^k + m,
            0 <= m < 2^k, log2 γ_t ≈ k + m/2^k, i.e. the integer ((k − f_g) << k) + m of
            fraction k, shifted right by k − f_g
 F7. if t >= warmup: G_q = Q_acc(β_c Σ_b q_{t+1} ⊗ pre)  [accumulate]
 F8.                 acc_q = overflow(acc_q + G_q)
 F9.                 Λ = Λ + Σ_b ℓ_t                             exact (a wide register)
 end of the iteration (n = (T − warmup)·B, constants below):
 F10. λ = Q_g((Λ · LN2_CODE) / (n << LN2_FRAC))                  ln 2 as a 16-bit constant
 F11. g = Q_g((λ << 1) / n)                                       the global factor 2λ/T'
 F12. ΔW = Q_W(g · acc_q >> (f_g + f_acc + lr_shift − f_W_h))     [weight_update]
 F13. W_h = overflow(W_h − ΔW)
 (acc_q and Λ start at 0 and q at Q_q(q_0) = nearest_even of the float initial tangent in every
 iteration; h, r start at 0.)

What the integer rule costs against the float local rule (IEEE sqrt and division) is measured in
``benchmarks/floss_bias.py``; the numbers are in README.md beside the command.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hw_models._exactness import check_bounds
from hw_models.fixedpoint import apply_overflow, quantize_codes, uniform
from hw_models.operations import LN2_CODE, LN2_FRAC
from neurosim.lyapunov import initial_tangent

_F64 = torch.float64


def mitchell_log2(c: Tensor) -> Tensor:
    """Piecewise-linear log2 of positive integer codes: k + (c - 2^k)/2^k, k = floor(log2 c)
    (the leading-one position, made exact against float log2's rounding)."""
    k = torch.floor(torch.log2(c))
    k = k - (2.0**k > c).to(_F64) + (2.0 ** (k + 1) <= c).to(_F64)
    return k + (c - 2.0**k) / 2.0**k


def isqrt(S: Tensor) -> Tensor:
    """floor(sqrt(S)) of non-negative integers S < 2^52 (float64): the value the digit-by-digit
    algorithm computes; float sqrt is correctly rounded, so one correction step each way is exact."""
    r = torch.floor(torch.sqrt(S))
    r = r - (r * r > S).to(_F64)
    return r + ((r + 1) * (r + 1) <= S).to(_F64)


def divide_round(n: Tensor, d: Tensor, rounding: str, u: Tensor | None = None) -> Tensor:
    """n / d rounded to an integer (n integer, d a positive integer, |n| < 2^52), from the floor
    quotient and remainder 0 <= rem < d as a restoring divider gives them. ``stochastic`` rounds
    up iff u · d < rem (u = draw · 2^-32: exact, the integer test draw · d < rem · 2^32)."""
    fl = torch.floor(n / d)
    rem = n - fl * d
    low, high = rem < 0, rem >= d  # the IEEE quotient may be one off; make it the exact floor
    fl, rem = fl - low.to(_F64) + high.to(_F64), rem + d * low.to(_F64) - d * high.to(_F64)
    if rounding == "floor":
        return fl
    if rounding == "trunc":
        up = (rem != 0) & (n < 0)
    elif rounding == "nearest_even":
        up = (2 * rem > d) | ((2 * rem == d) & (torch.remainder(fl, 2) == 1))
    elif rounding == "nearest_away":
        up = (2 * rem > d) | ((2 * rem == d) & (n >= 0))
    elif rounding == "stochastic":
        up = u * d < rem
    else:
        raise ValueError(f"unknown rounding {rounding!r}")
    return fl + up.to(_F64)


def floss_bounds(engine, N: int, B: int, n: int) -> dict[str, float]:
    """Worst-case magnitudes of flossing's exact integer intermediates (must stay below 2^53)."""
    f = engine.profile.formats
    Mq, Mg, Ma = f.q.max_abs_code, f.floss_gain.max_abs_code, f.acc.max_abs_code
    Mw = f.W_h.max_abs_code * 2.0 ** max(0.0, -float(engine.frac["W_h"].min()))
    return {
        "F2 tangent mix": (engine.alpha_c + engine.beta_c) * Mq * (1 + N * Mw),
        "F3 squared norm (x2: isqrt needs < 2^52)":
            2 * N * Mq**2 * 4.0 ** max(0, f.floss_gain.frac - f.q.frac + 1),
        "F4 dividend": Mq * 2.0**f.floss_gain.frac,
        "F7 tangent product": engine.beta_c * B * Mq**2,
        "F10 dividend": n * Mg * LN2_CODE,
        "F12 factor x accumulator": Mg * Ma,
    }


def floss_where(engine, N: int, B: int) -> str:
    return f"profile {engine.profile.name!r}, flossing with N={N}, batch {B}"


def initial_q(N: int, fmt) -> Tensor:
    """q_0 codes (N,): the float initial tangent rounded nearest_even into ``fmt``."""
    return quantize_codes(initial_tangent(N, 1).view(N), fmt)


class _Ops:
    """The flossing operations' rounding points on one engine (draws, overflow counts, record)."""

    def __init__(self, engine, rec: dict | None):
        self.eng, self.rec = engine, rec

    def divide(self, n: Tensor, d: Tensor, fmt, signal: str, group: str = "state") -> Tensor:
        rounding = getattr(self.eng.profile.rounding, group)
        u = uniform(n.shape, self.eng.rng) if rounding == "stochastic" else None
        if self.rec is not None and u is not None:
            self.rec.setdefault(f"u_{signal}", []).append(u)
        if self.eng.coverage is not None:
            self.eng.coverage.divide(signal, n, d, fmt, rounding, u)
        return apply_overflow(divide_round(n, d, rounding, u), fmt, self.eng.profile.overflow,
                              counter=self.eng.counter, signal=signal, inplace=True)

    def shift(self, v: Tensor, k, fmt, signal: str, group: str = "state") -> Tensor:
        return self.eng._q(v, k, fmt, group, signal, self.rec)


def integer_floss_step(engine, x: Tensor, *, warmup: int = 0, record: dict | None = None) -> Tensor:
    """One flossing iteration on inputs x (T, E, B, n_in); updates ``engine.W["W_h"]`` in place.

    Returns λ_1² (E,) as float, λ_1 being the engine's fixed-point estimate (F10). With
    ``record`` a dict, it is filled with every operation's result (per-step ones stacked to
    (T, E, ...)), the trajectory's x, I, h, r, and the draws ``u_<signal>``.
    """
    T, E, B, _ = x.shape
    if not 0 <= warmup < T:
        raise ValueError(f"warmup must be in [0, {T - 1}], got {warmup}")
    p_, f, W = engine.profile, engine.profile.formats, engine.W
    fq, fg, A = f.q.frac, f.floss_gain.frac, f.alpha.frac
    fW = engine.frac["W_h"]  # (E, 1, 1)
    N = W["W_h"].shape[1]
    n = (T - warmup) * B
    check_bounds(floss_bounds(engine, N, B, n), floss_where(engine, N, B))
    ops, rec = _Ops(engine, record), record
    q = initial_q(N, f.q).view(1, 1, N).expand(E, B, N).clone()
    h = torch.zeros(E, B, N, dtype=_F64)
    r = torch.zeros_like(h)
    acc = torch.zeros_like(W["W_h"])
    Lam = torch.zeros(E, dtype=_F64)
    sq = 2 * (fg - fq + 1)
    for t in range(T):
        pq = (h > 0).to(_F64) * q                                        # F1
        F = torch.maximum(fW, torch.zeros_like(fW)) + fq                 # align to max(fq, fW + fq)
        mix = (engine.alpha_c * q * 2.0 ** (F - fq)
               + engine.beta_c * torch.bmm(pq, W["W_h"].mT) * 2.0 ** (F - fW - fq))
        v = ops.shift(mix, F + A - fq, f.q, "v")                         # F2
        S = (v * v).sum(-1, keepdim=True)
        S = S * 2.0**sq if sq >= 0 else torch.floor(S * 2.0**sq)
        gamma = apply_overflow(torch.floor((isqrt(S) + 1) / 2), f.floss_gain, p_.overflow,
                               counter=engine.counter, signal="gamma", inplace=True).clamp_min(1)  # F3
        q_next = ops.divide(v * 2.0**fg, gamma, f.q, "q")                # F4
        pre = ops.divide(pq * 2.0**fg, gamma, f.q, "pre")                # F5
        ell = ops.shift(mitchell_log2(gamma) - fg, -fg, f.floss_gain, "ell")  # F6
        if t >= warmup:
            G = ops.shift(engine.beta_c * torch.bmm(q_next.mT, pre), 2 * fq + A - f.acc.frac, f.acc,
                          "G_q", "accumulate")                           # F7
            acc = apply_overflow(acc + G, f.acc, p_.overflow, counter=engine.counter, signal="acc_q",
                                 inplace=True)                           # F8
            Lam = Lam + ell.sum((1, 2))                                  # F9
        if rec is not None:
            for name, val in (("p", pq), ("v", v), ("gamma", gamma[..., 0]), ("q", q_next),
                              ("pre", pre), ("ell", ell[..., 0])):
                rec.setdefault(name, []).append(val)
            if t >= warmup:
                rec.setdefault("G_q", []).append(G)
                rec.setdefault("acc_q", []).append(acc.clone())
        q = q_next
        x_t, I_t, h, r = engine.advance(h, r, x[t], rec)
        if rec is not None:
            for name, val in (("x", x_t), ("I", I_t), ("h", h), ("r", r)):
                rec.setdefault(name, []).append(val)
    lam = ops.divide(Lam * LN2_CODE, torch.full_like(Lam, n * 2.0**LN2_FRAC), f.floss_gain, "lam")  # F10
    g = ops.divide(2 * lam, torch.full_like(lam, float(n)), f.floss_gain, "g_floss")            # F11
    shift = fg + f.acc.frac + p_.lr_shift - fW
    dW = ops.shift(g.view(E, 1, 1) * acc, shift, f.W_h, "dW_floss", "weight_update")  # F12
    engine.W["W_h"] = apply_overflow(engine.W["W_h"] - dW, f.W_h, p_.overflow, counter=engine.counter,
                                     signal="W_h", inplace=True)        # F13
    if rec is not None:
        for k, v in rec.items():
            if isinstance(v, list):
                rec[k] = torch.stack(v)
        rec.update(Lam=Lam, lam=lam, g_floss=g, dW_floss=dW, W_h=engine.W["W_h"].clone())
    lam_val = lam * 2.0**-fg
    return lam_val**2
