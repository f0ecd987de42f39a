r"""The engine's signals and operations as data: what ``spec.json``, the C model and the cost
model are built from.

One :class:`Network` (a profile, the sizes and the per-matrix scale exponents) gives the
ordered operations of one time step (S0..S15), of one weight update (U1..U9) and of local
gradient flossing (F1..F9 per step, F10..F13 per iteration; :mod:`hw_models.flossing`), each a dict
with its operands, their formats, the exact integer sum it forms (terms with left shifts), the
worst-case widths of its products and of that sum, the right shift, the rounding and the
overflow mode — the same arithmetic as :class:`hw_models.engine.FixedPointEngine`, in its order.

Operand sources: ``previous_step`` is the value at the end of the previous step (0 at t = 0),
``this_step`` the value an earlier operation of this step wrote, ``memory`` a weight or an
accumulator, ``input`` a binary64 input of the trial.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hw_models.fixedpoint import QFormat
from hw_models.profile import Profile

WEIGHTS = ("W_h", "W_x", "W_out")
LN2_FRAC = 16  # flossing's ln 2 constant (F10): LN2_CODE · 2^-LN2_FRAC = 0.693146..., error 1.6e-6
LN2_CODE = round(math.log(2) * 2**LN2_FRAC)  # 45426
# signals the engine counts saturations/wraps of, in the order of spec.json and the golden file
COUNTERS = ("x", "I", "h", "r", "target", "y", "e", "L", "eps", "eps_x", "G_W_h", "G_W_x",
            "G_W_out", "acc", "dW_h", "W_h", "dW_x", "W_x", "dW_out", "W_out",
            "v", "gamma", "q", "pre", "ell", "G_q", "acc_q", "lam", "g_floss", "dW_floss")
# value offset of each per-step signal in the equations: step t writes h_{t+1}, y_t, ...
TIME = {"x": "t", "target": "t", "I": "t", "h": "t+1", "r": "t+1", "y": "t", "e": "t",
        "L": "t+1", "eps": "t+1", "eps_x": "t+1"}
PER_STEP = tuple(TIME)
# flossing: step t reads q_t, h_t and writes p, v, γ, pre, ℓ of step t and q_{t+1}
FLOSS_TIME = {"p": "t", "v": "t", "gamma": "t", "q": "t+1", "pre": "t", "ell": "t"}
FLOSS_PER_STEP = (*FLOSS_TIME, "x", "I", "h", "r")
SIGNAL_FORMAT = {"p": "q", "v": "q", "pre": "q", "gamma": "floss_gain", "ell": "floss_gain",
                 "lam": "floss_gain", "g_floss": "floss_gain", "G_q": "acc", "acc_q": "acc",
                 "dW_floss": "W_h","x": "x", "target": "y", "I": "h", "h": "h", "r": "r", "y": "y", "e": "e",
                 "L": "L", "eps": "eps", "eps_x": "eps", "G_W_h": "acc", "G_W_x": "acc",
                 "G_W_out": "acc", "acc_W_h": "acc", "acc_W_x": "acc", "acc_W_out": "acc",
                 "dW_h": "W_h", "dW_x": "W_x", "dW_out": "W_out", "W_h": "W_h", "W_x": "W_x",
                 "W_out": "W_out"}


@dataclass(frozen=True)
class Network:
    """One network of the engine: profile, sizes, leak codes and weight scale exponents."""

    profile: Profile
    n_hidden: int
    n_in: int
    n_out: int
    batch: int
    alpha: float
    scale_exp: dict = field(default_factory=lambda: dict.fromkeys(WEIGHTS, 0))

    @property
    def alpha_c(self) -> int:
        return round(self.alpha * 2**self.profile.formats.alpha.frac)

    @property
    def beta_c(self) -> int:
        return 2**self.profile.formats.alpha.frac - self.alpha_c

    def fmt(self, signal: str) -> QFormat:
        return getattr(self.profile.formats, SIGNAL_FORMAT.get(signal, signal))

    def frac(self, signal: str) -> int:
        """Fraction bits of a signal's codes (a weight's effective fraction: frac - s)."""
        base = SIGNAL_FORMAT.get(signal, signal)
        s = self.scale_exp[base] if base in WEIGHTS else 0
        return self.fmt(signal).frac - s

    def dims(self, signal: str) -> tuple[str, ...]:
        floss = {"gamma": ("B",), "ell": ("B",), "G_q": ("N", "N"), "acc_q": ("N", "N"),
                 "dW_floss": ("N", "N"), "Lam": (), "lam": (), "g_floss": ()}
        if signal in floss:
            return floss[signal]
        return {"W_h": ("N", "N"), "W_x": ("N", "n_in"), "W_out": ("n_out", "N"),
                "x": ("B", "n_in"), "eps_x": ("B", "n_in"), "target": ("B", "n_out"),
                "y": ("B", "n_out"), "e": ("B", "n_out")}.get(
            signal.removeprefix("acc_").removeprefix("G_").removeprefix("d"), ("B", "N"))

    def size(self, dim: str) -> int:
        return {"N": self.n_hidden, "n_in": self.n_in, "n_out": self.n_out, "B": self.batch}[dim]


def signed_bits(bound: float) -> int:
    """Bits of a two's-complement word that holds every integer in [-bound, bound]."""
    return int(bound).bit_length() + 1


def _ref(net: Network, signal: str, source: str) -> dict:
    """An operand: signal, where its value comes from, its format and fraction bits."""
    ref = {"signal": signal, "source": source, "format": str(net.fmt(signal)),
           "frac_bits": net.frac(signal)}
    times = {**TIME, **FLOSS_TIME}
    if signal in times:  # the equation's time index of the value read
        ref["time"] = times[signal] if source == "this_step" else {"t+1": "t", "t": "t-1"}[times[signal]]
    return ref


def _bound(net: Network, ref: dict) -> int:
    return net.fmt(ref["signal"]).max_abs_code


def _requantize(net: Network, op_id: str, result: str, group: str, terms: list[dict], shift: int,
                equation: str, *, gate: dict | None = None, sum_frac: int | None = None,
                arithmetic: str = "integer") -> dict:
    p = net.profile
    fmt = net.fmt(result)
    op = {"id": op_id, "kind": "requantize", "result": result, "result_format": str(fmt),
          "result_frac_bits": net.frac(result), "shape": list(net.dims(result)),
          "equation": equation, "arithmetic": arithmetic, "terms": terms, "gate": gate,
          "shift": shift, "rounding": getattr(p.rounding, group), "rounding_group": group,
          "overflow": p.overflow, "counter": result if not result.startswith("acc") else "acc"}
    op["stochastic"] = op["rounding"] == "stochastic"
    if arithmetic == "integer":
        bound, prod = 0, 0
        for t in terms:
            if t["type"] == "matvec":
                a, v = _bound(net, t["matrix"]), _bound(net, t["vector"]) * t.get("coefficient", 1)
                n = net.size(net.dims(t["vector"]["signal"])[1])
                prod = max(prod, a * v)
                bound += n * a * v * 2 ** t["left_shift"]
            elif t["type"] == "outer":
                a, v = _bound(net, t["post"]), _bound(net, t["pre"]) * t.get("coefficient", 1)
                prod = max(prod, a * v)
                bound += net.batch * a * v * 2 ** t["left_shift"]
            elif t["type"] == "product":
                a = _bound(net, t["a"]) * _bound(net, t["b"])
                prod = max(prod, a)
                bound += a * 2 ** t["left_shift"]
            else:
                a = _bound(net, t["operand"]) * t["coefficient"]
                prod = max(prod, a)
                bound += a * 2 ** t["left_shift"]
        op.update(sum_frac_bits=sum_frac, product_bits=signed_bits(prod),
                  intermediate_bits=signed_bits(bound), worst_case_sum=bound)
    else:
        op.update(sum_frac_bits=None, product_bits=None, intermediate_bits=64, worst_case_sum=None)
    return op


def _matvec(matrix: dict, vector: dict, left_shift: int, transpose: bool = False) -> dict:
    return {"type": "matvec", "matrix": matrix, "vector": vector, "transpose": transpose,
            "left_shift": left_shift}


def _scaled(operand: dict, coefficient: int, left_shift: int, relu: bool = False) -> dict:
    return {"type": "elementwise", "operand": operand, "coefficient": coefficient,
            "left_shift": left_shift, "relu": relu}


def _mix(net, op_id, result, group, a: dict, b: dict, equation: str) -> dict:
    """``Q(α_c a + β_c b)`` aligned to the larger fraction (engine ``_mix``)."""
    A = net.profile.formats.alpha.frac
    F = max(a["frac_bits"], b["frac_bits"])
    terms = [_scaled(a, net.alpha_c, F - a["frac_bits"]), _scaled(b, net.beta_c, F - b["frac_bits"])]
    return _requantize(net, op_id, result, group, terms, F + A - net.frac(result), equation,
                       sum_frac=F + A)


def step_ops(net: Network) -> list[dict]:
    """Operations S0..S15 of one time step, in order."""
    P, T, M = "previous_step", "this_step", "memory"
    r = lambda s, src: _ref(net, s, src)  # noqa: E731
    fh, fr, fy, fe, fL, fa = (net.frac(s) for s in ("h", "r", "y", "e", "L", "acc"))
    fa_h, fb_x = net.frac("W_h") + fr, net.frac("W_x") + net.frac("x")
    F = max(fa_h, fb_x)
    fwo = net.frac("W_out")
    ops = [
        _requantize(net, "S0", "x", "state", [{"type": "input", "operand": {"signal": "x_raw",
                    "source": "input", "format": "binary64", "time": "t"}}], -net.frac("x"),
                    "x_t = Q_x(x_raw_t · 2^f_x)", arithmetic="binary64"),
        _requantize(net, "S1", "I", "state",
                    [_matvec(r("W_h", M), r("r", P), F - fa_h), _matvec(r("W_x", M), r("x", T), F - fb_x)],
                    F - fh, "I = Q_h(W_h r_t + W_x x_t)", sum_frac=F),
        _mix(net, "S2", "h", "state", r("h", P), r("I", T), "h_{t+1} = Q_h(α_c h_t + β_c I)"),
        _requantize(net, "S3", "r", "state", [_scaled(r("h", T), 1, 0, relu=True)], fh - fr,
                    "r_{t+1} = Q_r(max(h_{t+1}, 0))", sum_frac=fh),
        _requantize(net, "S4", "target", "state", [{"type": "input", "operand": {
                    "signal": "target_raw", "source": "input", "format": "binary64", "time": "t"}}],
                    -fy, "y*_t = Q_y(target_raw_t · 2^f_y)", arithmetic="binary64"),
        _requantize(net, "S5", "y", "state", [_matvec(r("W_out", M), r("r", T), 0)], fwo + fr - fy,
                    "y_t = Q_y(W_out r_{t+1})", sum_frac=fwo + fr),
        _requantize(net, "S6", "e", "learning_signal", [{"type": "weighted_difference",
                    "a": r("y", T), "b": r("target", T), "weight": "w"}], fy - fe,
                    "e_t = Q_e((y_t - y*_t) · w_t)", arithmetic="binary64"),
        _requantize(net, "S7", "L", "learning_signal", [_matvec(r("W_out", M), r("e", T), 0, True)],
                    fwo + net.frac("e") - fL, "L_{t+1} = Q_L([h_{t+1} > 0] · (W_outᵀ e_t))",
                    gate=r("h", T), sum_frac=fwo + fe),
        _mix(net, "S8", "eps", "trace", r("eps", P), r("r", P), "ε_{t+1} = Q_eps(α_c ε_t + β_c r_t)"),
        _mix(net, "S9", "eps_x", "trace", r("eps_x", P), r("x", T),
             "ε^x_{t+1} = Q_eps(α_c ε^x_t + β_c x_t)"),
    ]
    n = 10
    for k, post, pre in (("W_h", "L", "eps"), ("W_x", "L", "eps_x"), ("W_out", "e", "r")):
        fg = net.frac(post) + net.frac(pre)
        ops.append(_requantize(
            net, f"S{n}", f"G_{k}", "accumulate",
            [{"type": "outer", "post": r(post, T), "pre": r(pre, T), "left_shift": 0}], fg - fa,
            f"G_{k} = Q_acc(Σ_b {post} ⊗ {pre})", sum_frac=fg))
        ops.append({"id": f"S{n + 1}", "kind": "accumulate", "result": f"acc_{k}",
                    "result_format": str(net.fmt("acc")), "result_frac_bits": fa,
                    "shape": list(net.dims(k)), "operands": [r(f"acc_{k}", M), r(f"G_{k}", T)],
                    "equation": f"acc_{k} = overflow_acc(acc_{k} + G_{k})",
                    "overflow": net.profile.overflow, "counter": "acc",
                    "intermediate_bits": signed_bits(2 * net.fmt("acc").max_abs_code)})
        n += 2
    for op in ops:
        op["phase"] = "step"
    return ops


def update_ops(net: Network) -> list[dict]:
    """Operations U1..U9 of one weight update, in order (three per matrix; the third clears
    the accumulator or, with ``accumulator = "carry"``, keeps what the update did not apply)."""
    p, ops, n = net.profile, [], 1
    for k in WEIGHTS:
        acc = _ref(net, f"acc_{k}", "memory")
        shift = net.frac("acc") + p.lr_shift - net.frac(k)
        ops.append(_requantize(net, f"U{n}", f"d{k}", "weight_update", [_scaled(acc, 1, 0)], shift,
                               f"d{k} = Q_{k}(acc_{k} >> (f_acc + lr_shift - f_{k}))",
                               sum_frac=net.frac("acc")))
        ops.append({"id": f"U{n + 1}", "kind": "subtract", "result": k, "result_format": str(net.fmt(k)),
                    "result_frac_bits": net.frac(k), "shape": list(net.dims(k)),
                    "operands": [_ref(net, k, "memory"), _ref(net, f"d{k}", "this_step")],
                    "equation": f"{k} = overflow_{k}({k} - d{k})", "overflow": p.overflow, "counter": k,
                    "intermediate_bits": signed_bits(2 * net.fmt(k).max_abs_code)})
        if p.accumulator == "carry":
            ops.append({"id": f"U{n + 2}", "kind": "carry", "result": f"acc_{k}",
                        "result_format": str(net.fmt("acc")), "result_frac_bits": net.frac("acc"),
                        "shape": list(net.dims(k)), "operands": [acc, _ref(net, f"d{k}", "this_step")],
                        "left_shift": shift, "equation": f"acc_{k} = acc_{k} - (d{k} << {shift})",
                        "intermediate_bits": signed_bits(net.fmt("acc").max_abs_code
                                                         + net.fmt(k).max_abs_code * 2**shift)})
        else:
            ops.append({"id": f"U{n + 2}", "kind": "clear", "result": f"acc_{k}",
                        "shape": list(net.dims(k)), "equation": f"acc_{k} = 0"})
        n += 3
    for op in ops:
        op["phase"] = "update"
    return ops


def _divide(net: Network, op_id: str, result: str, num: dict, coefficient: int, left_shift: int,
            divisor: dict | None, constant: int | None, equation: str, num_bound: int | None = None) -> dict:
    """``Q((num · coefficient << left_shift) / divisor)`` by restoring division (state rounding)."""
    p = net.profile
    rounding = p.rounding.state
    bound = (num_bound or _bound(net, num)) * coefficient * 2**left_shift
    return {"id": op_id, "kind": "divide", "result": result, "result_format": str(net.fmt(result)),
            "result_frac_bits": net.frac(result), "shape": list(net.dims(result)),
            "equation": equation, "numerator": num, "numerator_coefficient": coefficient,
            "numerator_left_shift": left_shift, "divisor": divisor, "divisor_constant": constant,
            "rounding": rounding, "rounding_group": "state", "overflow": p.overflow,
            "counter": result, "stochastic": rounding == "stochastic",
            "intermediate_bits": signed_bits(bound)}


def lam_format(net: Network, steps: int, warmup: int = 0) -> QFormat:
    """The Λ register of flossing (F9): signed, wide enough for (T - warmup)·B terms ℓ, fraction f_g."""
    g = net.profile.formats.floss_gain
    return QFormat(True, signed_bits((steps - warmup) * net.batch * g.max_abs_code), g.frac)


def floss_ops(net: Network, steps: int, warmup: int = 0) -> dict[str, list[dict]]:
    """Local gradient flossing (:mod:`hw_models.flossing`): ``step`` F1..F9 (run before S0..S3 of
    every step of a flossing iteration) and ``end`` F10..F13 (once per iteration)."""
    P, T, M = "previous_step", "this_step", "memory"
    r = lambda s, src: _ref(net, s, src)  # noqa: E731
    f = net.profile.formats
    fq, fg, fa, fW, A = f.q.frac, f.floss_gain.frac, f.acc.frac, net.frac("W_h"), f.alpha.frac
    F = max(fq, fW + fq)
    sq = 2 * (fg - fq + 1)
    n = (steps - warmup) * net.batch
    lam_fmt = lam_format(net, steps, warmup)
    lam_ref = {"signal": "Lam", "source": "memory", "format": str(lam_fmt), "frac_bits": fg}
    when = "t >= warmup"
    step = [
        {"id": "F1", "kind": "gate", "result": "p", "result_format": str(f.q), "result_frac_bits": fq,
         "shape": ["B", "N"], "operand": r("q", P), "gate": r("h", P),
         "equation": "p = [h_t > 0] · q_t"},
        _requantize(net, "F2", "v", "state",
                    [_scaled(r("q", P), net.alpha_c, F - fq),
                     {**_matvec(r("W_h", M), r("p", T), F - fW - fq), "coefficient": net.beta_c}],
                    F + A - fq, "v = Q_q(α_c q_t + β_c W_h p)", sum_frac=F + A),
        {"id": "F3", "kind": "isqrt", "result": "gamma", "result_format": str(f.floss_gain),
         "result_frac_bits": fg, "shape": ["B"], "operand": r("v", T), "square_shift": sq,
         "equation": "γ_t = max(1, overflow((isqrt(S') + 1) >> 1)), S' = (Σ_i v_i²) · 2^square_shift",
         "algorithm": "digit-by-digit (restoring) integer square root isqrt(S') = floor(sqrt(S')); "
                      "a negative square_shift is a floor right shift of Σ v² (isqrt(S >> 2k) = "
                      "isqrt(S) >> k); (isqrt(S') + 1) >> 1 is sqrt(Σ v²) · 2^(f_g - f_q) rounded to "
                      "nearest, ties up; then overflow into the format, then codes below 1 become 1",
         "minimum_code": 1, "overflow": net.profile.overflow, "counter": "gamma",
         "intermediate_bits": signed_bits(net.n_hidden * f.q.max_abs_code**2 * 2 ** max(0, sq))},
        _divide(net, "F4", "q", r("v", T), 1, fg, r("gamma", T), None, "q_{t+1} = Q_q((v << f_g) / γ_t)"),
        _divide(net, "F5", "pre", r("p", T), 1, fg, r("gamma", T), None, "pre = Q_q((p << f_g) / γ_t)"),
        {"id": "F6", "kind": "log2_mitchell", "result": "ell", "result_format": str(f.floss_gain),
         "result_frac_bits": fg, "shape": ["B"], "operand": r("gamma", T),
         "equation": "ℓ_t = Q_g(((k - f_g) << k) + (γ_t - 2^k)) >> (k - f_g)), k = leading-one position",
         "algorithm": "Mitchell's logarithm: for γ = 2^k + m (k = floor(log2 γ) by leading-one "
                      "detection, 0 <= m < 2^k), log2 γ ≈ k + m / 2^k; the integer S = ((k - f_g) << k) "
                      "+ m has fraction k and is requantized with shift k - f_g (a left shift when "
                      "negative); max error 0.086 in log2, never positive",
         "rounding": net.profile.rounding.state, "rounding_group": "state",
         "overflow": net.profile.overflow, "counter": "ell",
         "stochastic": net.profile.rounding.state == "stochastic",
         "intermediate_bits": signed_bits(2 * f.floss_gain.word * f.floss_gain.max_abs_code)},
        {**_requantize(net, "F7", "G_q", "accumulate",
                       [{"type": "outer", "post": r("q", T), "pre": r("pre", T), "left_shift": 0,
                         "coefficient": net.beta_c}], 2 * fq + A - fa,
                       "G_q = Q_acc(β_c Σ_b q_{t+1} ⊗ pre)", sum_frac=2 * fq + A), "when": when},
        {"id": "F8", "kind": "accumulate", "result": "acc_q", "result_format": str(f.acc),
         "result_frac_bits": fa, "shape": ["N", "N"], "operands": [r("acc_q", M), r("G_q", T)],
         "equation": "acc_q = overflow_acc(acc_q + G_q)", "overflow": net.profile.overflow,
         "counter": "acc_q", "intermediate_bits": signed_bits(2 * f.acc.max_abs_code), "when": when},
        {"id": "F9", "kind": "total", "result": "Lam", "result_format": str(lam_fmt),
         "result_frac_bits": fg, "shape": [], "operand": r("ell", T), "equation": "Λ = Λ + Σ_b ℓ_t (exact)",
         "when": when, "intermediate_bits": lam_fmt.word},
    ]
    end = [
        _divide(net, "F10", "lam", lam_ref, LN2_CODE, 0, None, n << LN2_FRAC,
                f"λ = Q_g((Λ · {LN2_CODE}) / ({n} << {LN2_FRAC}))  (ln 2 ≈ {LN2_CODE} · 2^-{LN2_FRAC})",
                num_bound=n * f.floss_gain.max_abs_code),
        _divide(net, "F11", "g_floss", r("lam", T), 2, 0, None, n, f"g = Q_g((2 λ) / {n})"),
        _requantize(net, "F12", "dW_floss", "weight_update",
                    [{"type": "product", "a": r("g_floss", T), "b": r("acc_q", M), "left_shift": 0}],
                    fg + fa + net.profile.lr_shift - fW,
                    "dW_floss = Q_W_h(g · acc_q >> (f_g + f_acc + lr_shift - f_W_h))", sum_frac=fg + fa),
        {"id": "F13", "kind": "subtract", "result": "W_h", "result_format": str(f.W_h),
         "result_frac_bits": fW, "shape": ["N", "N"], "operands": [r("W_h", M), r("dW_floss", T)],
         "equation": "W_h = overflow_W_h(W_h - dW_floss)", "overflow": net.profile.overflow,
         "counter": "W_h", "intermediate_bits": signed_bits(2 * f.W_h.max_abs_code)},
    ]
    for op in step:
        op["phase"] = "floss_step"
    for op in end:
        op["phase"] = "floss_end"
    return {"step": step, "end": end}


def all_ops(net: Network, steps: int = 1) -> list[dict]:
    fl = floss_ops(net, steps)
    return step_ops(net) + update_ops(net) + fl["step"] + fl["end"]


def max_shift_problem(ops: list[dict]) -> str | None:
    """Why the integer model cannot run these shifts exactly, or None: right shifts above 62 bits
    overflow int64 remainders, and a stochastic shift above 53 bits would make the float64
    engine's comparison inexact."""
    for op in ops:
        if op.get("arithmetic") != "integer":
            continue
        k = op["shift"]
        if abs(k) > 62 or (op["stochastic"] and k > 53):
            return f"operation {op['id']} ({op['equation']}) shifts by {k} bits"
    return None


def elements(net: Network, shape: list[str]) -> int:
    return math.prod(net.size(d) for d in shape)
