"""A second implementation of the weight-update spec, written from spec.json alone.

It reads only ``spec.json`` (operations, formats, shifts, rounding, generator, the flossing
phase) and the golden run's inputs and initial codes, and returns every signal the golden
vectors hold. It
imports nothing from neurosim or hw_models: integer arithmetic is numpy int64 (every sum the
spec allows stays below 2^53), stochastic comparisons use Python ints, the generator is
numpy uint64 words masked to 32 bits.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

M32 = 0xFFFFFFFF


class Generator:
    """The spec's counter-based generator, from its ``rng`` section."""

    def __init__(self, rng: dict):
        self.steps = rng["hash"]["steps"]
        P, s = rng["stream_seed"], rng["network_seed"] % 2**64
        c = int(rng["key_constant"], 16)
        self.key = self.h(self.h(self.h(P ^ c) ^ (s & M32)) ^ (s >> 32))
        assert self.key == int(rng["network_key"], 16)
        self.counter = 0

    def h(self, x):
        """The hash of Python ints or uint64 arrays of 32-bit words."""
        arr = isinstance(x, np.ndarray)
        for step in self.steps:
            if "xor_shift_right" in step:
                x = x ^ (x >> (np.uint64(step["xor_shift_right"]) if arr else step["xor_shift_right"]))
            else:
                m = int(step["multiply"], 16)
                x = (x * (np.uint64(m) if arr else m)) & (np.uint64(M32) if arr else M32)
        return x

    def draws(self, n: int) -> np.ndarray:
        op_key = self.h(self.key ^ self.h(self.counter))
        self.counter = (self.counter + 1) & M32
        return self.h(np.uint64(op_key) ^ np.arange(n, dtype=np.uint64)).astype(np.int64)


def round_integer(S: np.ndarray, k: int, mode: str, d: np.ndarray | None) -> np.ndarray:
    """The spec's integer rounding of S · 2^-k."""
    if k <= 0:
        return S * (1 << -k)
    fl = S >> k  # floor for int64
    rem = S - (fl << k)
    half = 1 << (k - 1)
    if mode == "floor":
        return fl
    if mode == "trunc":
        return fl + ((rem != 0) & (S < 0))
    if mode == "nearest_even":
        return fl + (rem > half) + ((rem == half) & (fl % 2 == 1))
    if mode == "nearest_away":
        return fl + (rem > half) + ((rem == half) & (S >= 0))
    assert mode == "stochastic"
    up = [int(di) << k < int(ri) << 32 for di, ri in zip(d.ravel(), rem.ravel(), strict=True)]
    return fl + np.array(up, dtype=np.int64).reshape(S.shape)


def divide_round(n: int, d: int, mode: str, draw: int | None) -> int:
    """The spec's division n / d (d > 0) rounded from the floor quotient and the remainder."""
    fl, rem = divmod(n, d)  # Python: floor quotient, 0 <= rem < d
    if mode == "floor":
        return fl
    if mode == "trunc":
        return fl + (rem != 0 and n < 0)
    if mode == "nearest_even":
        return fl + (2 * rem > d or (2 * rem == d and fl % 2 == 1))
    if mode == "nearest_away":
        return fl + (2 * rem > d or (2 * rem == d and n >= 0))
    return fl + (draw * d < rem << 32)


def round_binary64(v: np.ndarray, mode: str, d: np.ndarray | None) -> np.ndarray:
    if mode == "floor":
        return np.floor(v)
    if mode == "trunc":
        return np.trunc(v)
    if mode == "nearest_even":
        return np.rint(v)
    if mode == "nearest_away":
        return _round_away(v)
    fl = np.floor(v)
    return fl + (d.astype(np.float64) * 2.0**-32 < v - fl)


def _round_away(v: np.ndarray) -> np.ndarray:
    a = np.abs(v)
    fl = np.floor(a)
    return np.sign(v) * (fl + (a - fl >= 0.5))


def scale_exponent(W: np.ndarray, f: dict, headroom: int) -> int:
    """weight_scale pow2: the least integer s with 2^headroom · max|W| <= max_code · 2^-frac · 2^s,
    in exact rational arithmetic."""
    m = Fraction(float(np.abs(W).max())) * 2**headroom
    if m == 0:
        return 0
    top = Fraction(f["max_code"], 2 ** f["frac_bits"])
    s = 0
    while m > top * Fraction(2) ** s:
        s += 1
    while m <= top * Fraction(2) ** (s - 1):
        s -= 1
    return s


class Interpreter:
    def __init__(self, spec: dict, golden):
        self.spec = spec
        self.dims = spec["dimensions"]
        self.fmt = {s["name"]: s for s in spec["signals"]}
        self.rng = Generator(spec["rng"])
        self.inputs = {k: golden[k] for k in ("x_raw", "target_raw", "mask", "floss_x_raw") if k in golden}
        self.exponents, self.mem = {}, {}
        for k in ("W_h", "W_x", "W_out"):  # weight_scale and initial_quantization, from the floats
            ws = spec["weight_scale"]
            s = scale_exponent(golden[f"{k}_init_float"], self.fmt[k], ws["headroom"][k]) \
                if ws["mode"] == "pow2" else 0
            self.exponents[k] = s
            self.mem[k] = self.quantize(golden[f"{k}_init_float"] * 2.0 ** (self.fmt[k]["frac_bits"] - s), k)
        self.q_init = (self.quantize(golden["floss_q_init_float"] * 2.0 ** self.fmt["q"]["frac_bits"], "q")
                       if "floss_q_init_float" in golden else None)
        self.prefix = ""
        self.counters = dict.fromkeys(spec["overflow_counters"], 0)
        self.out: dict[str, list] = {}

    def quantize(self, v: np.ndarray, signal: str) -> np.ndarray:
        """nearest_even of binary64 values in code units, then the profile's overflow (uncounted)."""
        f = self.fmt[signal]
        c = np.rint(v).astype(np.int64)
        lo, hi = f["min_code"], f["max_code"]
        if self.spec["profile"]["overflow"] == "saturate":
            return np.clip(c, lo, hi)
        return (c - lo) % (2 ** f["word_bits"]) + lo

    def shape(self, names) -> tuple[int, ...]:
        return tuple(self.dims[n] for n in names)

    def read(self, ref: dict, t: int):
        src, sig = ref["source"], ref["signal"]
        if src == "previous_step":
            return self.prev[sig]
        if src == "this_step":
            return self.cur[sig]
        if src == "memory":
            return self.mem[sig]
        return self.inputs[sig][self.trial, t]

    def overflow(self, c: np.ndarray, op: dict) -> np.ndarray:
        f = self.fmt[op["result"]]
        lo, hi = f["min_code"], f["max_code"]
        outside = (c < lo) | (c > hi)
        self.counters[op["counter"]] += int(outside.sum())
        if op["overflow"] == "saturate":
            return np.clip(c, lo, hi)
        return (c - lo) % (2 ** f["word_bits"]) + lo

    def requantize(self, op: dict, t: int) -> np.ndarray:
        shape = self.shape(op["shape"])
        d = self.draws(op, int(np.prod(shape)))
        d = None if d is None else np.array(d, dtype=np.int64).reshape(shape)
        if op["arithmetic"] == "binary64":
            (term,) = op["terms"]
            if term["type"] == "input":
                v = np.asarray(self.read(term["operand"], t), dtype=np.float64)
            else:  # weighted_difference
                a, b = self.read(term["a"], t), self.read(term["b"], t)
                v = (a - b).astype(np.float64) * self.w[t][:, None]
            v = np.ldexp(v, -op["shift"])
            c = round_binary64(v, op["rounding"], d).astype(np.int64)
            return self.overflow(c, op)
        S = np.zeros(shape, dtype=np.int64)
        for term in op["terms"]:
            if term["type"] == "matvec":
                M, v = self.read(term["matrix"], t), self.read(term["vector"], t)
                part = (v @ M if term["transpose"] else v @ M.T) * term.get("coefficient", 1)
            elif term["type"] == "outer":
                part = self.read(term["post"], t).T @ self.read(term["pre"], t) * term.get("coefficient", 1)
            elif term["type"] == "product":
                part = self.read(term["a"], t) * self.read(term["b"], t)
            else:
                o = self.read(term["operand"], t)
                part = term["coefficient"] * (np.maximum(o, 0) if term["relu"] else o)
            S = S + part * (1 << term["left_shift"])
        if op["gate"] is not None:
            S = S * (self.read(op["gate"], t) > 0)
        return self.overflow(round_integer(S, op["shift"], op["rounding"], d), op)

    def record(self, name: str, value: np.ndarray, phase: str) -> None:
        kind = "step" if phase in ("step", "floss_step") else "update"
        self.out.setdefault(self.prefix + name, []).append((kind, self.trial, np.array(value)))

    def draws(self, op: dict, n: int) -> list[int] | None:
        if op["rounding"] != "stochastic":
            return None
        d = self.rng.draws(n)
        self.record(f"draw_{op['result']}", d.reshape(self.shape(op["shape"])), op["phase"])
        return [int(v) for v in d]

    def divide(self, op: dict, t: int) -> np.ndarray:
        num = self.read(op["numerator"], t) * op["numerator_coefficient"] << op["numerator_left_shift"]
        num = np.asarray(num, dtype=np.int64)
        den = (np.full(num.shape[:1] or (1,), op["divisor_constant"]) if op["divisor"] is None
               else self.read(op["divisor"], t))
        d = self.draws(op, num.size)
        flat = num.reshape(len(den), -1)  # row b is divided by den[b] (flossing.divisor_broadcast)
        out = [divide_round(int(flat[b, i]), int(den[b]), op["rounding"], d and d[b * flat.shape[1] + i])
               for b in range(flat.shape[0]) for i in range(flat.shape[1])]
        return self.overflow(np.array(out, dtype=np.int64).reshape(num.shape), op)

    def isqrt(self, op: dict, t: int) -> np.ndarray:
        k = op["square_shift"]
        out = []
        for row in self.read(op["operand"], t):
            S = sum(int(v) ** 2 for v in row)
            S = S << k if k >= 0 else S >> -k
            out.append((math.isqrt(S) + 1) >> 1)
        g = self.overflow(np.array(out, dtype=np.int64), op)
        return np.maximum(g, op["minimum_code"])

    def log2_mitchell(self, op: dict, t: int) -> np.ndarray:
        g = self.read(op["operand"], t)
        f = op["result_frac_bits"]
        d = self.draws(op, g.size)
        out = []
        for i, c in enumerate(int(v) for v in g.ravel()):
            k = c.bit_length() - 1  # the leading one
            S = np.array([((k - f) << k) + (c - (1 << k))], dtype=np.int64)
            out.append(int(round_integer(S, k - f, op["rounding"], d and np.array([d[i]]))[0]))
        return self.overflow(np.array(out, dtype=np.int64).reshape(g.shape), op)

    def run_ops(self, ops: list[dict], t: int) -> None:
        for op in ops:
            name = op["result"]
            if op.get("when") == "t >= warmup" and t < self.spec["flossing"]["warmup"]:
                continue
            if op["kind"] == "requantize":
                self.cur[name] = self.requantize(op, t)
            elif op["kind"] in ("divide", "isqrt", "log2_mitchell"):
                self.cur[name] = getattr(self, op["kind"])(op, t)
            elif op["kind"] == "gate":
                self.cur[name] = self.read(op["operand"], t) * (self.read(op["gate"], t) > 0)
            elif op["kind"] == "total":
                self.mem[name] = self.mem[name] + int(self.read(op["operand"], t).sum())
            elif op["kind"] == "subtract" and op["phase"] == "floss_end":
                W, dW = (self.read(r, t) for r in op["operands"])
                self.mem[name] = self.overflow(W - dW, op)
            elif op["kind"] == "accumulate":
                acc, g = (self.read(r, t) for r in op["operands"])
                self.mem[name] = self.overflow(acc + g, op)
            elif op["kind"] == "subtract":
                W, dW = (self.read(r, t) for r in op["operands"])
                self.record(f"acc_{name}", self.mem[f"acc_{name}"], "update")
                self.record(f"d{name}", dW, "update")
                self.mem[name] = self.overflow(W - dW, op)
                self.record(name, self.mem[name], "update")
            elif op["kind"] == "clear":
                self.mem[name] = np.zeros_like(self.mem[name])
            elif op["kind"] == "carry":
                acc, dW = (self.read(r, t) for r in op["operands"])
                self.mem[name] = acc - dW * (1 << op["left_shift"])

    def run(self) -> dict[str, np.ndarray]:
        """Every trial of the golden run; returns arrays shaped like the golden ones."""
        ops = self.spec["operations"]
        per_step = [op["result"] for op in ops["step"] if op["result"] in self.fmt
                    and self.fmt[op["result"]]["storage"] != "per_synapse"
                    and not op["result"].startswith("G_")]
        T, trials = self.dims["T"], self.spec["golden"]["trials"]
        self.prefix = "floss_"
        self.floss(per_step)
        self.prefix = ""
        counts = []
        for k in ("W_h", "W_x", "W_out"):  # zero before the first trial, then persistent
            self.mem[f"acc_{k}"] = np.zeros_like(self.mem[k])
        for self.trial in range(trials):
            zeros = {s: np.zeros(self.shape(self.fmt[s]["shape"]), dtype=np.int64) for s in per_step}
            self.prev = dict(zeros)
            mask = self.inputs["mask"][self.trial]
            self.w = mask / max(mask.sum(), 1.0)
            for t in range(T):
                self.cur = {}
                self.run_ops(ops["step"], t)
                for op in ops["step"]:  # the gradients and the accumulators of this step
                    if op["kind"] == "accumulate":
                        G = op["operands"][1]["signal"]
                        self.record(G, self.cur[G], "step")
                        self.record(f"{op['result']}_step", self.mem[op["result"]], "step")
                if self.spec["update_schedule"]["schedule"] == "per_step" or t == T - 1:
                    self.run_ops(ops["update"], t)
                for s in per_step:
                    self.record(s, self.cur[s], "step")
                self.prev = {s: self.cur[s] for s in per_step}
            counts.append([self.counters[c] for c in self.spec["overflow_counters"]])
        arrays = {}
        for name, items in self.out.items():
            if items[0][0] == "step":  # (trials or iterations, T, ...)
                arrays[name] = np.stack([np.stack([v for _, k, v in items if k == tr])
                                         for tr in sorted({k for _, k, _ in items})])
            else:  # (updates or iterations, ...)
                arrays[name] = np.stack([v for _, _, v in items])
        arrays["overflow_counts"] = np.asarray(counts, dtype=np.int64)
        if self.floss_counts:
            arrays["floss_overflow_counts"] = np.asarray(self.floss_counts, dtype=np.int64)
        return arrays

    def floss(self, per_step: list[str]) -> None:
        """The flossing iterations (spec.json "flossing"): F1..F9, S0..S3 per step, F10..F13."""
        ops, fl = self.spec["operations"], self.spec["flossing"]
        forward = [op for op in ops["step"] if op["id"] in ("S0", "S1", "S2", "S3")]
        q0 = self.q_init
        self.floss_counts = []
        saved = self.inputs["x_raw"]
        self.inputs["x_raw"] = self.inputs.get("floss_x_raw")  # S0 reads the iteration's input
        for self.trial in range(fl["iterations"]):
            self.prev = {s: np.zeros(self.shape(self.fmt[s]["shape"]), dtype=np.int64) for s in per_step}
            self.prev["q"] = np.tile(q0, (self.dims["B"], 1))
            self.mem["acc_q"] = np.zeros_like(self.mem["W_h"])
            self.mem["Lam"] = 0
            for t in range(fl["steps_per_iteration"]):
                self.cur = {}
                self.run_ops(ops["floss_step"], t)
                self.run_ops(forward, t)
                for op in ops["floss_step"] + forward:
                    if op["kind"] == "total" or (op.get("when") and t < fl["warmup"]):
                        continue
                    name = op["result"]
                    self.record(name, self.mem[name] if name in self.mem else self.cur[name], "floss_step")
                self.prev = {**{s: self.cur[s] for s in ("x", "I", "h", "r")}, "q": self.cur["q"]}
            self.record("Lam", np.array(self.mem["Lam"]), "floss_end")
            self.cur = {}
            self.run_ops(ops["floss_end"], 0)
            for op in ops["floss_end"]:
                name = op["result"]
                self.record(name, self.mem[name] if op["kind"] == "subtract" else self.cur[name], "floss_end")
            self.floss_counts.append([self.counters[c] for c in self.spec["overflow_counters"]])
        self.inputs["x_raw"] = saved
