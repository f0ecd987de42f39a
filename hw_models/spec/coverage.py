"""Branch coverage of a golden run: per operation, how often each rounding and overflow branch ran.

A :class:`Coverage` attached to the engine (``engine.coverage``) sees every rounding point
before it rounds (:meth:`FixedPointEngine._q`, flossing's divisions) and counts, over all
elements: ``inexact`` (a non-zero remainder: rounding decides), ``tie_even``/``tie_odd`` (an
exact half, the floor even or odd: nearest_even's two tie branches), ``tie_negative`` (a half
below zero: nearest_away's second branch), ``inexact_negative`` (where trunc differs from floor),
``stochastic_equal`` (u equal to the remainder: the equality case of u < frac), and
``overflow_high``/``overflow_low`` (the rounded code above max_code / below min_code).
Operations without rounding (accumulate, subtract, isqrt) report ``overflow`` from the engine's
saturation counters. :func:`coverage_table` turns the counts into rows, one per operation, with
each branch the operation's modes define either counted or listed as unreachable with the reason.
"""

from __future__ import annotations

from collections import Counter

import torch

from hw_models.fixedpoint import QFormat, round_scaled
from hw_models.flossing import divide_round
from hw_models.operations import Network

MODE_BRANCHES = {"nearest_even": ("inexact", "tie_even", "tie_odd"),
                 "nearest_away": ("inexact", "tie_even", "tie_negative"),
                 "floor": ("inexact",), "trunc": ("inexact", "inexact_negative"),
                 "stochastic": ("inexact", "stochastic_equal")}


class Coverage:
    """Branch counts per engine signal name (see the module docstring)."""

    def __init__(self):
        self.counts: dict[str, Counter] = {}

    def _add(self, signal: str, fmt: QFormat, fl, inexact, tie, negative, equal, c) -> None:
        k = self.counts.setdefault(signal, Counter())
        k["elements"] += int(c.numel())
        k["inexact"] += int(inexact.sum())
        k["tie_even"] += int((tie & (torch.remainder(fl, 2) == 0)).sum())
        k["tie_odd"] += int((tie & (torch.remainder(fl, 2) == 1)).sum())
        k["tie_negative"] += int((tie & negative).sum())
        k["inexact_negative"] += int((inexact & negative).sum())
        k["stochastic_equal"] += int(equal.sum())
        k["overflow_high"] += int((c > fmt.max_code).sum())
        k["overflow_low"] += int((c < fmt.min_code).sum())

    def shift(self, signal: str, v, shift, fmt: QFormat, rounding: str, u) -> None:
        """A requantization ``v · 2^-shift`` (float64 codes, exact)."""
        scale = torch.pow(2.0, -shift) if isinstance(shift, torch.Tensor) else 2.0**-shift
        x = v * scale
        fl = torch.floor(x)
        frac = x - fl
        equal = (u == frac) if u is not None else torch.zeros_like(x, dtype=torch.bool)
        c = round_scaled(x.clone(), rounding, u=u)
        self._add(signal, fmt, fl, frac != 0, frac == 0.5, x < 0, equal, c)

    def divide(self, signal: str, n, d, fmt: QFormat, rounding: str, u) -> None:
        """A division n / d (integers, d > 0) rounded from its remainder."""
        fl = divide_round(n, d, "floor")
        rem = n - fl * d
        equal = (u * d == rem) if u is not None else torch.zeros_like(n, dtype=torch.bool)
        c = divide_round(n, d, rounding, u)
        self._add(signal, fmt, fl, rem != 0, 2 * rem == d, n < 0, equal, c)


def _unreachable(net: Network, op: dict, branch: str, steps: int) -> str | None:
    """Why ``branch`` of ``op`` cannot run in any golden run of this network, or None."""
    fmt = net.fmt(op["result"])
    shift = op.get("shift")
    if branch != "overflow_high" and branch != "overflow_low":
        if op["kind"] == "requantize" and shift is not None and shift <= 0:
            return f"shift {shift} <= 0: an exact left shift, nothing to round"
        if branch == "stochastic_equal" and op.get("arithmetic") != "binary64":
            return ("u = frac needs the draw d and the remainder to meet exactly (d · 2^k = rem · "
                    "2^32), ~2^-32 per draw, and no input sets an integer operation's remainder")
        term = (op.get("terms") or [{}])[0]
        if term.get("type") == "weighted_difference" and branch.startswith("tie"):
            s = -op["shift"]
            if steps * net.batch < 2 ** (s + 1):
                return (f"(y - y*) · 2^{s} / Σm is never k + 1/2: Σm <= T·B = {steps * net.batch} "
                        f"< 2^{s + 1}")
        if branch in ("tie_negative", "inexact_negative") and _non_negative(op):
            return "the sum is never negative"
        return None
    terms = op.get("terms") or []
    if (len(terms) == 2 and all(t.get("type") == "elementwise" for t in terms)
            and sum(t["coefficient"] for t in terms) == 2**net.profile.formats.alpha.frac
            and shift == net.profile.formats.alpha.frac
            and all(t["operand"]["format"] == op["result_format"] and t["left_shift"] == 0 for t in terms)):
        return "α_c a + β_c b with a, b in the result's format and α_c + β_c = 2^shift: a convex mix"
    if op["result"] == "eps" and branch == "overflow_low":
        return "ε starts at 0 and mixes in only r >= 0"
    if op["kind"] == "divide" and op["numerator"]["signal"] == "v" and op["divisor"]:
        fq, g = op["result_frac_bits"], net.fmt("gamma")
        top = 1.5 * 2.0**fq + 1  # max of x / max(1, round(x)) is 1.5, while γ does not overflow
        gamma_max = net.n_hidden**0.5 * net.fmt("v").max_abs_code * 2.0 ** (g.frac - fq) + 0.5
        if top <= fmt.max_code and gamma_max <= g.max_code:
            return (f"|v_i| · 2^f_g / γ <= 1.5 · 2^f_q + 1 = {top:g} <= max_code {fmt.max_code}: γ is "
                    "‖v‖ · 2^(f_g - f_q) rounded to nearest, at least 1")
    bound = op.get("worst_case_sum")
    term = (op.get("terms") or [{}])[0]
    if term.get("relu") and term.get("coefficient") == 1:  # max(a, 0) <= max_code(a)
        bound = net.fmt(term["operand"]["signal"]).max_code
    if bound is not None and shift is not None:
        top = bound / 2.0**shift
        if branch == "overflow_high" and top <= fmt.max_code:
            return f"worst case abs(sum) · 2^-shift = {top:g} <= max_code {fmt.max_code}"
        if branch == "overflow_low" and -top >= fmt.min_code:
            return f"worst case -abs(sum) · 2^-shift = {-top:g} >= min_code {fmt.min_code}"
    if branch == "overflow_low" and _non_negative(op):
        return "the sum is never negative"
    return None


def _non_negative(op: dict) -> bool:
    """Results of a relu term, a square root or a growth factor are >= 0."""
    terms = op.get("terms") or []
    return any(t.get("relu") for t in terms) or op["kind"] == "isqrt"


def coverage_table(net: Network, ops: list[dict], cov: Coverage, counters: dict[str, int],
                   steps: int) -> list[dict]:
    """One row per operation that rounds or can overflow: mode, counts, unreachable branches."""
    rows, seen = [], set()
    shared: dict[str, list[str]] = {}
    for op in ops:
        if "counter" in op:
            shared.setdefault(op["counter"], []).append(op["id"])
    for op in ops:
        if op["kind"] in ("clear", "carry", "gate", "total"):
            continue
        row = {"id": op["id"], "result": op["result"], "rounding": op.get("rounding"),
               "overflow": op.get("overflow"), "counts": {}, "unreachable": {}}
        if "rounding" in op and op["result"] in cov.counts:
            c = cov.counts[op["result"]]
            branches = MODE_BRANCHES[op["rounding"]] + ("overflow_high", "overflow_low")
            row["counts"] = {"elements": c["elements"], **{b: c[b] for b in branches}}
            if op["result"] in seen:
                row["note"] = f"counts shared with the other operations writing {op['result']}"
            seen.add(op["result"])
        else:
            ids = shared.get(op.get("counter"), [op["id"]])
            row["counts"] = {"overflow": counters.get(op.get("counter"), 0)}
            if len(ids) > 1:
                row["note"] = f"counter {op['counter']!r} shared by {', '.join(ids)}"
            branches = ("overflow",)
        for b in branches:
            if row["counts"].get(b, 0) == 0:
                why = _unreachable(net, op, "overflow_high" if b == "overflow" else b, steps)
                if why is not None:
                    row["unreachable"][b] = why
        row["not_exercised"] = [b for b in branches if row["counts"].get(b, 0) == 0
                                and b not in row["unreachable"]]
        rows.append(row)
    return rows
