"""An independent reference of the integer e-prop engine: exact rationals, Python ints, one
element at a time, written from the operation list in hw_models/engine.py's docstring (it
imports only QFormat and Profile, for their fields)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from hw_models.fixedpoint import QFormat
from hw_models.profile import Profile
from neurosim.model import Params


def _round(v: Fraction, mode: str, u: Fraction | None) -> int:
    fl = math.floor(v)
    if mode == "floor":
        return fl
    if mode == "trunc":
        return math.trunc(v)
    if mode == "nearest_even":
        return round(v)  # Fraction.__round__ rounds half to even
    if mode == "nearest_away":
        a = abs(v)
        return int(math.copysign(math.floor(a + Fraction(1, 2)), v))
    assert mode == "stochastic"
    return fl + (u < v - fl)


def _h(x: int) -> int:
    """lowbias32 on uint32 words, written as its C source (fixedpoint.py docstring)."""
    x ^= x >> 16
    x = (x * 0x7FEB352D) % 2**32
    x ^= x >> 15
    x = (x * 0x846CA68B) % 2**32
    return x ^ (x >> 16)


def _key(stream: int, seed: int) -> int:
    s = seed % 2**64
    return _h(_h(_h(stream ^ 0x9E3779B9) ^ (s % 2**32)) ^ (s >> 32))


def _overflow(c: int, fmt: QFormat, mode: str) -> int:
    if fmt.min_code <= c <= fmt.max_code:
        return c
    if mode == "saturate":
        return min(max(c, fmt.min_code), fmt.max_code)
    return (c - fmt.min_code) % 2**fmt.word + fmt.min_code


class Reference:
    """One network (E = 1) of the engine's documented operations, in exact rationals."""

    def __init__(self, prof: Profile, params: Params, alpha: float, seed: int):
        self.p, f = prof, prof.formats
        self.key, self.counter = _key(prof.seed, seed), 0
        self.ties = dict.fromkeys(("state", "trace", "learning_signal", "accumulate", "weight_update"), 0)
        A = f.alpha.frac
        self.a = Fraction(round(Fraction(alpha) * 2**A), 2**A)
        self.lsb = {}  # value of one weight code, 2^-(frac - s)
        self.W = {}
        for k, W in zip(("W_h", "W_x", "W_out"), params, strict=True):
            fmt = getattr(f, k)
            s = 0
            if prof.weight_scale == "pow2":
                m = Fraction(float(W.abs().max())) * 2 ** getattr(prof.headroom, k)
                s = -60
                while m > fmt.max_code * Fraction(1, 2**fmt.frac) * Fraction(2) ** s:
                    s += 1
            self.lsb[k] = Fraction(2) ** (s - fmt.frac)
            self.W[k] = np.array([[_round(Fraction(float(w)) / self.lsb[k], "nearest_even", None)
                                   for w in row] for row in W[0].tolist()], dtype=object)
        self.acc = {k: np.zeros_like(w) for k, w in self.W.items()}  # persists with "carry"

    def q(self, vals: np.ndarray, lsb: Fraction, fmt: QFormat, group: str) -> np.ndarray:
        """Quantize exact rational values to codes of ``fmt`` with step ``lsb``."""
        mode = getattr(self.p.rounding, group)
        us = [None] * vals.size
        if mode == "stochastic":
            op_key = _h(self.key ^ _h(self.counter))
            us = [Fraction(_h(op_key ^ i), 2**32) for i in range(vals.size)]
            self.counter += 1
        scaled = [Fraction(v) / lsb for v in vals.flatten().tolist()]
        self.ties[group] += sum(v.denominator == 2 for v in scaled)  # exact halves: ties
        out = [_overflow(_round(v, mode, u), fmt, self.p.overflow) for v, u in zip(scaled, us, strict=True)]
        return np.array(out, dtype=object).reshape(vals.shape)

    def train_step(self, x, target, mask) -> dict[str, np.ndarray]:
        f, W, lsb = self.p.formats, self.W, self.lsb
        val = lambda fmt: Fraction(1, 2**fmt.frac)  # noqa: E731
        T, _, B, n_in = x.shape
        N = W["W_h"].shape[0]
        msum = max(float(mask.sum()), 1.0)
        h = np.zeros((B, N), dtype=object)
        r, eps, eps_x = h.copy(), h.copy(), np.zeros((B, n_in), dtype=object)
        acc = self.acc
        out = {k: [] for k in ("h", "e", "L", "eps", "y")}
        for t in range(T):
            xt = self.q(x[t, 0].numpy().astype(object), val(f.x), f.x, "state")
            drive = (r @ W["W_h"].T) * lsb["W_h"] * val(f.r) + (xt @ W["W_x"].T) * (
                lsb["W_x"] * val(f.x))
            I_t = self.q(drive, val(f.h), f.h, "state")
            h = self.q((self.a * h + (1 - self.a) * I_t) * val(f.h), val(f.h), f.h, "state")
            r_prev = r
            r = self.q(np.maximum(h, 0) * val(f.h), val(f.r), f.r, "state")
            ys = self.q(target[t, 0].numpy().astype(object), val(f.y), f.y, "state")
            y = self.q((r @ W["W_out"].T) * lsb["W_out"] * val(f.r), val(f.y), f.y, "state")
            w = [float(m) / msum for m in mask[t, 0].tolist()]
            diff = np.array([[float((y[b, o] - ys[b, o]) * val(f.y)) * w[b]
                              for o in range(y.shape[1])] for b in range(B)], dtype=object)
            e = self.q(diff, val(f.e), f.e, "learning_signal")
            L = self.q((h > 0) * (e @ W["W_out"]) * lsb["W_out"] * val(f.e), val(f.L), f.L,
                       "learning_signal")
            eps = self.q(self.a * eps * val(f.eps) + (1 - self.a) * r_prev * val(f.r),
                         val(f.eps), f.eps, "trace")
            eps_x = self.q(self.a * eps_x * val(f.eps) + (1 - self.a) * xt * val(f.x),
                           val(f.eps), f.eps, "trace")
            for k, post, pre, unit in (("W_h", L, eps, val(f.L) * val(f.eps)),
                                       ("W_x", L, eps_x, val(f.L) * val(f.eps)),
                                       ("W_out", e, r, val(f.e) * val(f.r))):
                G = self.q(post.T @ pre * unit, val(f.acc), f.acc, "accumulate")
                acc[k] = np.vectorize(lambda c: _overflow(c, f.acc, self.p.overflow),
                                      otypes=[object])(acc[k] + G)
            if self.p.schedule == "per_step" or t == T - 1:
                for k in W:
                    dW = self.q(acc[k] * val(f.acc) * Fraction(2) ** -self.p.lr_shift, lsb[k],
                                getattr(f, k), "weight_update")
                    W[k] = np.vectorize(lambda c, k=k: _overflow(c, getattr(f, k),
                                                                 self.p.overflow),
                                        otypes=[object])(W[k] - dW)
                    if self.p.accumulator == "carry":  # keep what the update did not apply
                        acc[k] = acc[k] - dW * (lsb[k] / (val(f.acc) * Fraction(2) ** -self.p.lr_shift))
                    else:
                        acc[k] = np.zeros_like(acc[k])
            for k, v in (("h", h), ("e", e), ("L", L), ("eps", eps), ("y", y)):
                out[k].append(v)
        return {k: np.stack(v).astype(np.int64) for k, v in out.items()}
