"""Deliberately wrong readings of the spec must fail against the default export's golden vectors.

Each mutant is the spec-only interpreter (tests/spec_interpreter.py) with one reading changed;
it runs on the default export (int8-stochastic, N = 8, 2 flossing iterations, 2 Romo trials and
the 2 directed trials) and at least one golden array must differ. The unchanged interpreter is
the control. Readings the default export cannot tell apart are shown invisible there, with the
reason: ELSEWHERE (the carry accumulator it does not use, the equality case of a stochastic
comparison no input of it reaches), each caught by an export that has the feature, and
EQUIVALENT (a binary64 rewrite no nearest-rounding vector can see).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import spec_interpreter as si

from hw_models.profile import apply_overrides, derive_profile, load_profile
from neurosim.spec_export import spec_files


def _load(folder):
    spec = json.loads((folder / "spec.json").read_text())
    with np.load(folder / "golden.npz") as g:
        return spec, {k: g[k] for k in g.files}


def _differs(spec: dict, golden: dict) -> list[str]:
    """Golden outputs the interpreter does not reproduce (a mutant may also crash: that fails too)."""
    try:
        ours = si.Interpreter(spec, golden).run()
    except (AssertionError, ValueError, IndexError, KeyError, TypeError, ZeroDivisionError) as err:
        return [f"crashed: {err!r}"]
    out = [f["npz_key"] for f in spec["golden"]["files"] if f["kind"] not in ("input", "initial")]
    return [k for k in out if k not in ours or ours[k].shape != golden[k].shape
            or not np.array_equal(ours[k], golden[k])]


def _patch_method(mp, name, wrap):
    mp.setattr(si.Interpreter, name, wrap(getattr(si.Interpreter, name)))


def saturate_for_wrap(mp):
    def overflow(self, c, op):
        return orig(self, c, {**op, "overflow": "wrap" if op["overflow"] == "saturate" else "saturate"})
    orig = si.Interpreter.overflow
    mp.setattr(si.Interpreter, "overflow", overflow)


def signed_max_code_2_pow(mp):  # max_code = 2^(w-1) instead of 2^(w-1) - 1
    orig = si.Interpreter.__init__

    def init(self, spec, golden):
        orig(self, spec, golden)
        self.fmt = {k: {**f, "max_code": f["max_code"] + f["signed"]} for k, f in self.fmt.items()}
    mp.setattr(si.Interpreter, "__init__", init)


def gate_after_rounding(mp):  # S7: Q_L(W_outᵀ e) · [h > 0] instead of Q_L([h > 0] · W_outᵀ e)
    orig = si.Interpreter.requantize

    def requantize(self, op, t):
        if op.get("gate") is None:
            return orig(self, op, t)
        return orig(self, {**op, "gate": None}, t) * (self.read(op["gate"], t) > 0)
    mp.setattr(si.Interpreter, "requantize", requantize)


def binary64_ties_away(mp):  # C round() where the spec says rint (ties to even)
    orig = si.round_binary64
    mp.setattr(si, "round_binary64", lambda v, mode, d: orig(v, "nearest_away" if mode == "nearest_even"
                                                                 else mode, d))


def integer_ties_away(mp):
    orig = si.round_integer
    mp.setattr(si, "round_integer", lambda S, k, mode, d: orig(S, k, "nearest_away" if mode == "nearest_even"
                                                                    else mode, d))


def stochastic_less_equal(mp):  # u <= frac: up also when d · 2^k == rem · 2^32 (integer and binary64)
    orig, orig64 = si.round_integer, si.round_binary64

    def round_integer(S, k, mode, d):
        if mode != "stochastic" or k <= 0:
            return orig(S, k, mode, d)
        fl, rem = S >> k, S - ((S >> k) << k)
        up = [int(di) << k <= int(ri) << 32 for di, ri in zip(d.ravel(), rem.ravel(), strict=True)]
        return fl + np.array(up, dtype=np.int64).reshape(S.shape)

    def round_binary64(v, mode, d):
        if mode != "stochastic":
            return orig64(v, mode, d)
        return np.floor(v) + (d.astype(np.float64) * 2.0**-32 <= v - np.floor(v))
    mp.setattr(si, "round_integer", round_integer)
    mp.setattr(si, "round_binary64", round_binary64)


def stochastic_from_trunc(mp):  # the stochastic base is trunc(v), not floor(v), for negative v
    orig = si.round_integer

    def round_integer(S, k, mode, d):
        out = orig(S, k, mode, d)
        if mode == "stochastic" and k > 0:
            out = np.where((S < 0) & (S % (1 << k) != 0) & (out == S >> k), out + 1, out)
        return out
    mp.setattr(si, "round_integer", round_integer)


def seed_halves_swapped(mp):  # hi32(s) first, then lo32(s), in the key derivation
    def init(self, rng):
        self.steps = rng["hash"]["steps"]
        P, s = rng["stream_seed"], rng["network_seed"] % 2**64
        self.key = self.h(self.h(self.h(P ^ int(rng["key_constant"], 16)) ^ (s >> 32)) ^ (s & si.M32))
        self.counter = 0
    mp.setattr(si.Generator, "__init__", init)


def draws_reversed(mp):  # element i gets the draw of index n-1-i
    orig = si.Generator.draws
    mp.setattr(si.Generator, "draws", lambda self, n: orig(self, n)[::-1].copy())


def counter_reset_per_trial(mp):
    orig = si.Interpreter.run_ops

    def run_ops(self, ops, t):
        if t == 0 and ops and ops[0]["phase"] == "step":
            self.rng.counter = 0
        return orig(self, ops, t)
    mp.setattr(si.Interpreter, "run_ops", run_ops)


def difference_distributed(mp):  # S6 as a·w - b·w in binary64 instead of (a - b)·w
    orig = si.Interpreter.requantize

    def requantize(self, op, t):
        term = op["terms"][0]
        if term["type"] != "weighted_difference":
            return orig(self, op, t)
        a, b = self.read(term["a"], t), self.read(term["b"], t)
        w = self.w[t][:, None]
        v = np.ldexp(a.astype(np.float64) * w - b.astype(np.float64) * w, -op["shift"])
        return self.overflow(si.round_binary64(v, op["rounding"], None).astype(np.int64), op)
    mp.setattr(si.Interpreter, "requantize", requantize)


def error_weight_per_step(mp):  # w = m / Σ_b m (per step) instead of m / Σ_{t,b} m
    orig = si.Interpreter.run_ops

    def run_ops(self, ops, t):
        mask = self.inputs["mask"][self.trial]
        self.w = mask / np.maximum(mask.sum(1, keepdims=True), 1.0)
        return orig(self, ops, t)
    mp.setattr(si.Interpreter, "run_ops", run_ops)


def update_reads_acc_after_clear(mp):  # the update record samples acc after the update
    orig = si.Interpreter.record

    def record(self, name, value, phase):
        if name.startswith("acc_W") and phase == "update":
            value = np.zeros_like(value)
        return orig(self, name, value, phase)
    mp.setattr(si.Interpreter, "record", record)


def floss_gamma_floor(mp):  # F3: floor(sqrt) instead of round to nearest
    mp.setattr(si.math, "isqrt", lambda S, _isqrt=si.math.isqrt: _isqrt(S) - 1 + (_isqrt(S) == 0))


def floss_exact_log2(mp):  # F6: the true log2 instead of Mitchell's approximation
    def log2_mitchell(self, op, t):
        g = self.read(op["operand"], t)
        f = op["result_frac_bits"]
        return self.overflow(np.rint((np.log2(g.astype(float)) - f) * 2.0**f).astype(np.int64), op)
    mp.setattr(si.Interpreter, "log2_mitchell", log2_mitchell)


def floss_division_floor(mp):
    orig = si.divide_round
    mp.setattr(si, "divide_round", lambda n, d, mode, draw: orig(n, d, "floor", draw))


def floss_skips_forward(mp):  # the flossing phase leaves the trajectory at h = 0 (no S0..S3)
    orig = si.Interpreter.run_ops

    def run_ops(self, ops, t):
        if ops and ops[0]["id"] == "S0" and self.prefix == "floss_":
            self.cur.update({s: np.zeros_like(self.prev[s]) for s in ("x", "I", "h", "r")})
            return None
        return orig(self, ops, t)
    mp.setattr(si.Interpreter, "run_ops", run_ops)


MUTANTS = [gate_after_rounding, saturate_for_wrap, signed_max_code_2_pow, binary64_ties_away,
           integer_ties_away,
           stochastic_from_trunc, seed_halves_swapped, draws_reversed, counter_reset_per_trial,
           error_weight_per_step, update_reads_acc_after_clear, floss_gamma_floor,
           floss_exact_log2, floss_division_floor, floss_skips_forward]


def test_the_unchanged_interpreter_reproduces_the_default_export(default_export):
    assert _differs(*_load(default_export)) == []


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.__name__)
def test_a_wrong_reading_fails_against_the_default_export(default_export, monkeypatch, mutant):
    spec, golden = _load(default_export)
    mutant(monkeypatch)
    assert _differs(spec, golden), f"{mutant.__name__} reproduced every golden vector"


def carry_subtracts_applied_change(mp):  # carry: acc - ((W_before - W_after) << s), not dW << s
    orig = si.Interpreter.run_ops

    def run_ops(self, ops, t):
        if not ops or ops[0]["phase"] != "update":
            return orig(self, ops, t)
        before = {k: self.mem[k].copy() for k in ("W_h", "W_x", "W_out")}
        for op in ops:
            if op["kind"] == "carry":
                k = op["result"].removeprefix("acc_")
                self.cur[f"d{k}"] = before[k] - self.mem[k]
            orig(self, [op], t)
        return None
    mp.setattr(si.Interpreter, "run_ops", run_ops)


# readings the default export cannot tell apart, each with the export that does and the reason
ELSEWHERE = {
    "carry_subtracts_applied_change": (
        "int8-carry", {}, "the default profile clears the accumulator: there is no carry to get wrong"),
    "stochastic_less_equal": (
        "bits6", dict(rounding_state="stochastic", rounding_trace="stochastic",
                      rounding_learning_signal="stochastic", rounding_accumulate="stochastic",
                      schedule="per_step", weight_scale="fixed", lr_shift=2, seed=5),
        "the default export rounds stochastically only accumulator codes (U1, U4, U7, F12), whose "
        "remainders no input sets; u = frac needs d · 2^k = rem · 2^32, ~2^-32 per draw. With x "
        "rounded stochastically the directed trial sets x_raw to the draw itself"),
}


# readings no golden vector of a nearest-rounding profile can tell apart, with the proof
EQUIVALENT = {
    "difference_distributed": (
        "under nearest rounding (the default export's learning_signal mode) (y - y*)·w·2^s and "
        "y·w·2^s - y*·w·2^s round alike: the exact value (y - y*)·2^s/Σm (s = f_e - f_y) is a "
        "tie only if 2^(s+1) divides Σm, and otherwise lies at least 1/(2Σm) from one, far "
        "beyond either form's binary64 error; under floor or trunc an exact integer quotient "
        "can come out an ulp low in one form, which these vectors do not construct"),
}


def test_the_distributed_difference_is_a_different_reading_under_floor():
    """Not vacuous: with w = 1/56 some code pairs floor differently in the two binary64 forms."""
    w, s = 1 / 56, 2.0**11
    pairs = [(a, b) for a in range(-300, 300) for b in range(-40, 40)
             if np.floor((a - b) * w * s) != np.floor((a * w - b * w) * s)]
    assert pairs
    assert all(np.rint((a - b) * w * s) == np.rint((a * w - b * w) * s)
               for a in range(-300, 300) for b in range(-40, 40))


@pytest.fixture(scope="module", params=sorted(ELSEWHERE))
def elsewhere(request, tmp_path_factory):
    name, overrides, _ = ELSEWHERE[request.param]
    if name == "bits6":
        prof = derive_profile(6, alpha="u8.8", **overrides)
        kw = dict(n_hidden=8, gain=1.5, trials=2, steps=20, seed=3, alpha=0.7)
    else:
        prof, kw = apply_overrides(load_profile(name), **overrides), dict(trials=2)
    folder = tmp_path_factory.mktemp("mut") / request.param
    for rel, content in spec_files(prof, **kw).items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    return request.param, folder


def test_a_wrong_reading_the_default_export_cannot_see_fails_where_it_can(elsewhere, monkeypatch):
    name, folder = elsewhere
    spec, golden = _load(folder)
    assert _differs(spec, golden) == []  # the control
    globals()[name](monkeypatch)
    assert _differs(spec, golden), f"{name} reproduced every golden vector"


@pytest.mark.parametrize("name", sorted(ELSEWHERE) + sorted(EQUIVALENT))
def test_the_default_export_cannot_see_these_readings(default_export, monkeypatch, name):
    """The reasons in ELSEWHERE and EQUIVALENT hold: on the default export the reading is invisible."""
    globals()[name](monkeypatch)
    assert _differs(*_load(default_export)) == []
