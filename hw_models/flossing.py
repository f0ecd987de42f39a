r"""Local gradient flossing (k = 1) on integer codes: the rule of DESIGN.md as a chip runs it.

Float rule (:func:`neurosim.rules.flossing.local_floss_grad_k1`), along the detached trajectory:

    γ_t = ‖J_t q_t‖,   q_{t+1} = J_t q_t / γ_t,   J_t = αI + (1-α) W_h diag(f'(h_t))
    λ_1 = 1/(T'B) Σ_{t>=warmup, b} ln γ_t
    ∂λ_1/∂W_h[i,j] = 1/(T'B) Σ_{t>=warmup, b} (1-α) q_{t+1,i} · f'(h_{j,t}) q_{j,t} / γ_t
    W_h ← W_h - 2^-lr_shift · 2 λ_1 ∂λ_1/∂W_h          (descent on λ_1²)

Operations per step t, after the forward operations 0-3 of :mod:`hw_models.engine` that give
h_t (the trajectory is the engine's own, quantized; ``Q_f`` rounds with the ``state`` group's
mode unless named, ``g`` is the ``floss_gain`` format):

 F1. p      = [h_t > 0] · q_t                                  exact (a gate)
 F2. v      = Q_q(α_c q_t + β_c W_h p)                          → q
 F3. s      = Σ_i v_i²                                         exact integer
 F4. γ_t    = Q_g(sqrt(s) · 2^-f_q)   with γ_t >= 1 LSB         → floss_gain
 F5. q_{t+1} = Q_q(v / γ_t),   pre = Q_q(p / γ_t)               → q
 F6. ℓ_t    = Q_g(log2 γ_t) by leading-one detection (Mitchell): for a code c = 2^k (1 + m),
            0 <= m < 1, log2(c) ≈ k + m, minus f_g                → floss_gain
 F7. if t >= warmup:  acc += Q_acc(β_c Σ_b q_{t+1} ⊗ pre) [accumulate];  Λ += Σ_b ℓ_t (exact)
 end of trial, per network (scalar arithmetic in IEEE double, then one rounding):
 F8. λ_1 = Q_g(ln 2 · Λ / (T'B)),   G = Q_g(2 λ_1 / (T'B))
 F9. ΔW_h = Q_W(G · acc >> (f_g + f_acc + lr_shift - f_W_h)) [weight_update];  W_h -= ΔW_h

sqrt and the divisions in F4, F5 and F8 are single IEEE-754 double operations (correctly
rounded, so a C model reproduces them bit for bit) on exact integer operands. A chip would use
an iterative divider or a reciprocal table; the Mitchell logarithm (F6) errs by at most
0.086 in log2 per step, which biases λ_1 low: the engine's estimate is within 0.07 nats of
the float QR value (tests/test_engine_floss.py), and 100 flossing iterations of the int16
profile (lr_shift 1) leave the true max LE at about +0.01..+0.03 instead of 0 (measured: gain
0.2, |λ_1| 0.63 → 0.016; gain 2.0, 0.10 → 0.031; mean over 5 seeds).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from hw_models._exactness import check_bounds
from hw_models.fixedpoint import apply_overflow, quantize_codes
from neurosim.lyapunov import initial_tangent

_F64 = torch.float64


def mitchell_log2(c: Tensor) -> Tensor:
    """Piecewise-linear log2 of positive integer codes: k + (c - 2^k)/2^k, k = floor(log2 c)."""
    k = torch.floor(torch.log2(c))
    k = k - (2.0**k > c).to(_F64) + (2.0 ** (k + 1) <= c).to(_F64)  # exact leading-one position
    return k + (c - 2.0**k) / 2.0**k


def _check_floss_exact(engine, N: int, B: int) -> None:
    """Refuse formats whose flossing sums could leave the float64 carrier's exact range."""
    f = engine.profile.formats
    Mq, Mg, Ma = f.q.max_abs_code, f.floss_gain.max_abs_code, f.acc.max_abs_code
    Mw = f.W_h.max_abs_code * 2.0 ** max(0.0, -float(engine.frac["W_h"].min()))
    bounds = {
        "F2 tangent mix": (engine.alpha_c + engine.beta_c) * Mq * (1 + N * Mw),
        "F3 squared norm": N * Mq**2,
        "F7 tangent product": engine.beta_c * B * Mq**2,
        "F9 factor x accumulator": Mg * 2 * Ma,
    }
    check_bounds(bounds, f"profile {engine.profile.name!r}, flossing with N={N}, batch {B}")


def integer_floss_step(engine, x: Tensor, *, warmup: int = 0, record: dict | None = None) -> Tensor:
    """One flossing trial on inputs x (T, E, B, n_in); updates ``engine.W["W_h"]`` in place.

    Returns λ_1² (E,) as float, λ_1 being the engine's fixed-point estimate (F8).
    """
    T, E, B, _ = x.shape
    if not 0 <= warmup < T:
        raise ValueError(f"warmup must be in [0, {T - 1}], got {warmup}")
    p_, f, W = engine.profile, engine.profile.formats, engine.W
    fq, fg, A = f.q.frac, f.floss_gain.frac, f.alpha.frac
    fW = engine.frac["W_h"]  # (E, 1, 1)
    N = W["W_h"].shape[1]
    _check_floss_exact(engine, N, B)
    q = quantize_codes(initial_tangent(N, 1).view(1, 1, N).expand(E, B, N), f.q)
    h = torch.zeros(E, B, N, dtype=_F64)
    r = torch.zeros_like(h)
    acc = torch.zeros_like(W["W_h"])
    Lam = torch.zeros(E, dtype=_F64)
    rec = record

    def q_state(value: Tensor, fmt, signal: str, group: str = "state") -> Tensor:
        """Round a float value (exact or one IEEE operation away) into ``fmt``."""
        return engine._q(value * 2.0**fmt.frac, 0, fmt, group, signal, rec)

    for t in range(T):
        gate = (h > 0).to(_F64)
        pq = gate * q                                                    # F1
        Wp = torch.bmm(pq, W["W_h"].mT)                                  # frac fW + fq
        F = torch.maximum(fW, torch.zeros_like(fW)) + fq
        mix = (engine.alpha_c * q * 2.0 ** (F - fq) + engine.beta_c * Wp * 2.0 ** (F - fW - fq))
        v = engine._q(mix, F + A - fq, f.q, "state", "v", rec)           # F2
        s = (v * v).sum(-1, keepdim=True)                                # F3
        gamma = q_state(torch.sqrt(s) * 2.0**-fq, f.floss_gain, "gamma").clamp_min(1)  # F4
        ratio = 2.0 ** (fg - fq)
        q_next = q_state(v / gamma * ratio, f.q, "q")                     # F5
        pre = q_state(pq / gamma * ratio, f.q, "pre")
        ell = q_state(mitchell_log2(gamma) - fg, f.floss_gain, "log_gamma")  # F6
        if t >= warmup:                                                   # F7
            G = engine._q(engine.beta_c * torch.bmm(q_next.mT, pre), 2 * fq + A - f.acc.frac, f.acc,
                          "accumulate", "G_floss", rec)
            acc = acc + G
            Lam = Lam + ell.sum((1, 2))
        if rec is not None:
            for name, val in (("floss_q", q_next), ("floss_gamma", gamma), ("floss_pre", pre)):
                rec.setdefault(name, []).append(val)
        q = q_next
        _, _, h, r = engine.advance(h, r, x[t], None)
    n = (T - warmup) * B
    lam = quantize_codes(math.log(2) * (Lam * 2.0**-fg) / n, f.floss_gain)          # F8
    G_code = quantize_codes(2 * (lam * 2.0**-fg) / n, f.floss_gain)
    shift = fg + f.acc.frac + p_.lr_shift - fW
    dW = engine._q(G_code.view(E, 1, 1) * acc, shift, f.W_h, "weight_update", "dW_h_floss", rec)  # F9
    engine.W["W_h"] = apply_overflow(engine.W["W_h"] - dW, f.W_h, p_.overflow, counter=engine.counter,
                                     signal="W_h", inplace=True)
    lam_val = lam * 2.0**-fg
    return lam_val**2
