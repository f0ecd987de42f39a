r"""Bit-exact integer e-prop: the model and rule of DESIGN.md on fixed-point codes.

Equations (DESIGN.md, "The model" and "Learning rules"), for t = 0..T-1, ``h_0 = r_0 = 0``,
``ε_0 = ε^x_0 = 0``:

    h_{t+1}   = α h_t + (1-α)(W_h r_t + W_x x_t),    r_t = relu(h_t)
    y_t       = W_out r_{t+1},                       e_t = ∂L/∂y_t = m_t (y_t - y*_t) / Σm
    ε_{t+1}   = α ε_t + (1-α) r_t,                   ε^x_{t+1} = α ε^x_t + (1-α) x_t
    L_{t+1}   = f'(h_{t+1}) ⊙ (B e_t),               B = W_outᵀ (or a fixed random matrix)
    ∇W_h = Σ_t L_{t+1} ⊗ ε_{t+1},   ∇W_x = Σ_t L_{t+1} ⊗ ε^x_{t+1},   ∇W_out = Σ_t e_t ⊗ r_{t+1}
    W ← W - 2^-lr_shift ∇W                           (SGD with a shift)

Every signal is an integer code of its profile format (value = code · 2^-frac; a weight
matrix with ``weight_scale = "pow2"`` has a fixed per-network exponent s, value =
code · 2^-(frac - s)). Codes live in float64 tensors; every product and sum below is exact
(checked at construction, :mod:`hw_models._exactness`). ``Q_f^rnd`` is
:func:`~hw_models.fixedpoint.requantize` into format f: shift right, round with the named
mode, then apply the profile's overflow (counted per signal). ``A`` is the fraction of the
``alpha`` format, ``α_c = round_even(α·2^A)``, ``β_c = 2^A - α_c``. Terms with different
fractions are aligned by an exact left shift to the larger fraction before adding.

Operations, in this order, with the ids of :mod:`hw_models.operations` — the one statement of
this arithmetic, from which the spec, datasheet and C model are generated; a test checks that
the engine's rounding points come in this order (rounding group in brackets, overflow-counter
name after →):

 per batch: w_t = m_t / max(Σ_{t,b} m, 1) in IEEE double (per network)
 per step t:
 S0  x_t = Q_x(x_t)                                     [state]            → x
 S1  I      = Q_h(W_h r_t + W_x x_t)                      [state]            → I
 S2  h_{t+1} = Q_h(α_c h_t + β_c I)                       [state]            → h
 S3  r_{t+1} = Q_r(max(h_{t+1}, 0))                       [state]            → r
 S4  y*_t = Q_y(y*_t)                                   [state]            → target
 S5  y_t    = Q_y(W_out r_{t+1})                          [state]            → y
 S6  e_t    = Q_e(((y_t - y*_t) · w_t) in double)         [learning_signal]  → e
 S7  L_{t+1} = Q_L([h_{t+1} > 0] · (B e_t))               [learning_signal]  → L
 S8  ε_{t+1} = Q_eps(α_c ε_t + β_c r_t);  S9 ε^x_{t+1} = Q_eps(α_c ε^x_t + β_c x_t) [trace] → eps
 S10-S15  acc_h += Q_acc(Σ_b L_{t+1} ⊗ ε_{t+1});  acc_x += Q_acc(Σ_b L_{t+1} ⊗ ε^x_{t+1});
    acc_out += Q_acc(Σ_b e_t ⊗ r_{t+1})                  [accumulate]       → acc
    (the sum is exact, one rounding, then an exact add and the overflow of acc)
 U1-U9  update, after every step (``per_step``) or after step T-1 (``per_trial``), for
    W in (W_h, W_x, W_out):
      ΔW = Q_W(acc >> (f_acc + lr_shift - f_W))          [weight_update]    → dW_h, dW_x, dW_out
      W  = overflow_W(W - ΔW)                                               → W_h, W_x, W_out
      acc = 0                       (accumulator "clear")
      acc = acc - (ΔW << shift)     (accumulator "carry": what the update did not apply stays;
                                     exact, and within acc's range, as |acc - (ΔW << shift)| <= |acc|
                                     or < 2^shift)
 A ``stochastic`` operation draws one ``u = d · 2^-32`` per element of its result (element i in
 row-major order within network e's result) from network e's counter-based generator
 (:class:`~hw_models.fixedpoint.CounterRNG`, stream ``profile.seed``, seed ``seed_e``):
 ``d = H(H(key_e ^ H(c)) ^ i)``, where the counter c counts network e's stochastic operations
 so far, in the order of the operations above. Initial weights are quantized with ``nearest_even``.

With ``weight_scale = "pow2"`` the exponent s of a matrix is the smallest integer with
``2^headroom · max|W_init| <= max_code · 2^-frac · 2^s`` (the profile's headroom bits per matrix
leave room for learning to grow the weights).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from hw_models._exactness import check_exact, worst_case_bounds
from hw_models.fixedpoint import (
    CounterRNG,
    QFormat,
    SaturationCounter,
    apply_overflow,
    quantize_codes,
    requantize,
    uniform,
)
from hw_models.profile import Profile, ProfileError
from neurosim.model import Params, linear, masked_mse
from neurosim.rules.forward import contract

WEIGHTS = ("W_h", "W_x", "W_out")
_F64 = torch.float64


def pow2_exponent(W: Tensor, fmt: QFormat, headroom: int) -> list[int]:
    """Per-network exponent s of W (E, ...): least s with 2^headroom·max|W_e| <= max_code·lsb·2^s."""
    top = fmt.max_code * fmt.lsb
    return [
        0 if m == 0 else math.ceil(math.log2(2**headroom * m / top))
        for m in W.abs().flatten(1).max(1).values.tolist()
    ]


def leak_codes(alpha: float, fmt) -> tuple[int, int]:
    """``(α_c, β_c)``: the leak in ``fmt`` (ties to even) and its complement ``2^A - α_c``.

    Refused (:class:`ProfileError`) when the format cannot hold α, or rounds a leak strictly
    between 0 and 1 to 0 or to 1: the engine would then run a different model (no leak, or no
    input) than its float partner."""
    A = fmt.frac
    alpha_c = round(alpha * 2**A)  # Python round(): ties to even
    beta_c = 2**A - alpha_c
    if not (0 <= beta_c and 0 <= alpha_c <= fmt.max_code):
        raise ProfileError(f"formats.alpha = {fmt} cannot hold the leak alpha = {alpha:g}")
    if 0 < alpha < 1 and (alpha_c == 0 or beta_c == 0):
        raise ProfileError(f"formats.alpha = {fmt} rounds the leak alpha = {alpha:g} to {alpha_c / 2**A:g}; "
                           "give it more fractional bits")
    return alpha_c, beta_c


class FixedPointEngine:
    """An ensemble of E networks trained by integer e-prop under a precision :class:`Profile`.

    ``params`` are float initial weights (quantized here), ``alpha`` the leak, ``seed`` one
    int (network e gets ``seed + e``) or one per network, ``feedback`` an optional fixed
    random B (E, N, n_out) in place of ``W_outᵀ``.
    """

    def __init__(
        self,
        profile: Profile,
        params: Params,
        *,
        alpha: float,
        seed: int | Sequence[int] = 0,
        feedback: Tensor | None = None,
    ):
        self.profile = profile
        f = profile.formats
        E, N, n_in = params.W_x.shape
        n_out = params.W_out.shape[1]
        self.ensemble = E
        self.alpha_c, self.beta_c = leak_codes(alpha, f.alpha)
        mats = dict(zip(WEIGHTS, params, strict=True))
        if feedback is not None:
            mats["B"] = feedback
        self.frac: dict[str, Tensor] = {}  # effective fraction per network, (E, 1, 1)
        self.W: dict[str, Tensor] = {}  # codes
        for name, W in mats.items():
            fmt = self._wfmt(name)
            # the fixed feedback B never grows: one bit, as for every matrix before headroom
            room = getattr(profile.headroom, name) if name in WEIGHTS else 1
            exps = pow2_exponent(W, fmt, room) if profile.weight_scale == "pow2" else [0] * E
            s = torch.tensor(exps, dtype=_F64).view(E, 1, 1)
            self.frac[name] = fmt.frac - s
            self.W[name] = quantize_codes(W.to(_F64) * 2.0**-s, fmt, "nearest_even",
                                          profile.overflow)
        seeds = [seed + e for e in range(E)] if isinstance(seed, int) else list(seed)
        if len(seeds) != E:
            raise ValueError(f"seed has {len(seeds)} entries for an ensemble of {E}")
        self.rng = CounterRNG(seeds, stream=profile.seed)
        self.bounds = worst_case_bounds(f, self.frac, (N, n_in, n_out), self.alpha_c, self.beta_c)
        self.max_batch = check_exact(self.bounds, f"profile {profile.name!r} with N={N}")
        if profile.accumulator == "carry":
            for k in WEIGHTS:
                shift = self._update_shift(k, profile.lr_shift)
                if (shift < 0).any():
                    raise ProfileError(
                        f"accumulator 'carry' needs f_acc + lr_shift >= f_{k} (a right shift into "
                        f"the weight); profile {profile.name!r} shifts {k}'s update by "
                        f"{int(shift.min())}")
        self.acc = {k: torch.zeros_like(self.W[k]) for k in WEIGHTS}  # persists with "carry"
        self.counter = SaturationCounter(E)
        self.coverage = None  # a hw_models.spec.coverage.Coverage while the golden run records
        self._nonzero = {name: torch.zeros(E, dtype=torch.long) for name in WEIGHTS}
        self._stalled = {name: torch.zeros(E, dtype=torch.long) for name in WEIGHTS}

    def _wfmt(self, name: str) -> QFormat:
        return getattr(self.profile.formats, "W_out" if name == "B" else name)

    # -- the one rounding point every operation goes through ---------------------------------
    def _q(self, v: Tensor, shift, fmt: QFormat, group: str, signal: str, rec,
           fresh: bool = False) -> Tensor:
        """Requantize ``v`` (``fresh``: a new tensor this step made, overwritten in place)."""
        rounding = getattr(self.profile.rounding, group)
        u = uniform(v.shape, self.rng) if rounding == "stochastic" else None
        if rec is not None and u is not None:
            rec.setdefault(f"u_{signal}", []).append(u)
        if self.coverage is not None:
            self.coverage.shift(signal, v, shift, fmt, rounding, u)
        return requantize(v, shift, fmt, rounding, self.profile.overflow, u=u,
                          counter=self.counter, signal=signal, inplace=fresh)

    def _mix(self, a: Tensor, fa: int, b: Tensor, fb: int, f_out: int) -> Tensor:
        """``α_c a + β_c b`` (codes of fractions fa, fb) in units of 2^-f_out, a fresh tensor.

        The same real number as the integer sum aligned to the larger fraction F, shifted right
        by F + A - f_out: each term is an exact integer product times a power of two, and their
        sum is representable (the bound is checked), so the one IEEE add is exact too.
        """
        A = self.profile.formats.alpha.frac
        v = torch.mul(a, self.alpha_c * 2.0 ** (f_out - fa - A))
        return v.add_(b, alpha=self.beta_c * 2.0 ** (f_out - fb - A))

    def advance(self, h: Tensor, r: Tensor, x_raw: Tensor, rec: dict | None = None):
        """Operations 0-3 of one step: (x_t, I, h_{t+1}, r_{t+1}) codes from h_t, r_t codes and
        the float input x_t (E, B, n_in). Shared by training and flossing."""
        f, W, fr = self.profile.formats, self.W, self.frac
        x_t = self._q(x_raw.to(_F64), -f.x.frac, f.x, "state", "x", rec)
        fh = f.h.frac
        # W_h r_t + W_x x_t in units of 2^-f_h: both products scaled by per-network powers of
        # two, exact as in _mix (the same number as the sum aligned to the larger fraction)
        drive = torch.bmm(r, W["W_h"].mT).mul_(2.0 ** (fh - fr["W_h"] - f.r.frac))
        drive.add_(linear(x_t, W["W_x"] * 2.0 ** (fh - fr["W_x"] - f.x.frac)))
        I_t = self._q(drive, 0, f.h, "state", "I", rec, fresh=True)
        h = self._q(self._mix(h, fh, I_t, fh, fh), 0, f.h, "state", "h", rec, fresh=True)
        r = self._q(h.clamp_min(0), fh - f.r.frac, f.r, "state", "r", rec, fresh=True)
        return x_t, I_t, h, r

    def floss_step(self, x: Tensor, *, warmup: int = 0, record: dict | None = None) -> Tensor:
        """One local gradient-flossing update of W_h (k = 1); see :mod:`hw_models.flossing`."""
        from hw_models.flossing import integer_floss_step

        return integer_floss_step(self, x, warmup=warmup, record=record)

    def train_step(
        self, x: Tensor, target: Tensor, mask: Tensor, *, lr_shift: int | None = None,
        record: dict | None = None,
    ) -> Tensor:
        """One batch: x (T, E, B, n_in), target (T, E, B, n_out), mask (T, E, B).

        ``lr_shift`` is this trial's learning-rate shift (default the profile's; a decay
        schedule raises it between trials, never below the profile's, so the carry bound holds).

        Returns the float masked-MSE loss (E,) of the outputs y_t computed in this trial (with
        ``per_step`` updates, later outputs already see earlier updates). With ``record`` a
        dict, it is filled with every signal's codes: per-step signals stacked to (T, E, ...)
        (also ``G_<W>`` and ``acc_<W>_step``, the accumulator after this step's add),
        ``u_<signal>`` draws, ``<W>_before``/``<W>_after`` weights, and per update ``acc_<W>``
        and ``d<W>`` (stacked over updates).
        """
        T, E, B, _ = x.shape
        if E != self.ensemble:
            raise ValueError(f"batch has ensemble axis {E}, the engine {self.ensemble}")
        if B > self.max_batch:
            raise ValueError(f"batch {B} exceeds the largest exact batch {self.max_batch}")
        p, f, W, fr = self.profile, self.profile.formats, self.W, self.frac
        lr_shift = p.lr_shift if lr_shift is None else lr_shift
        if lr_shift < p.lr_shift:
            raise ValueError(f"lr_shift {lr_shift} is below the profile's {p.lr_shift}")
        if record is not None:
            record.update({f"{k}_before": W[k].clone() for k in WEIGHTS})
        m = mask.to(_F64)
        w = (m / m.sum((0, 2), keepdim=True).clamp_min(1)).unsqueeze(-1)
        N = W["W_h"].shape[1]
        h = torch.zeros(E, B, N, dtype=_F64)
        r, eps = torch.zeros_like(h), torch.zeros_like(h)
        eps_x = torch.zeros(E, B, x.shape[-1], dtype=_F64)
        acc = self.acc
        ys = []
        for t in range(T):
            r_prev = r
            x_t, I_t, h, r = self.advance(h, r, x[t], record)
            y_star = self._q(target[t].to(_F64), -f.y.frac, f.y, "state", "target", record)
            y = self._q(torch.bmm(r, W["W_out"].mT), fr["W_out"] + f.r.frac - f.y.frac, f.y,
                        "state", "y", record, fresh=True)
            e = self._q((y - y_star) * w[t], f.y.frac - f.e.frac, f.e, "learning_signal",
                        "e", record, fresh=True)
            Bm, fB = (W["B"], fr["B"]) if "B" in W else (W["W_out"].mT, fr["W_out"])
            L = self._q(torch.bmm(e, Bm.mT).mul_(h > 0), fB + f.e.frac - f.L.frac, f.L,
                        "learning_signal", "L", record, fresh=True)
            fe = f.eps.frac
            eps = self._q(self._mix(eps, fe, r_prev, f.r.frac, fe), 0, f.eps, "trace", "eps",
                          record, fresh=True)
            eps_x = self._q(self._mix(eps_x, fe, x_t, f.x.frac, fe), 0, f.eps, "trace", "eps_x",
                            record, fresh=True)
            for k, post, pre, fg in (("W_h", L, eps, f.L.frac + f.eps.frac),
                                     ("W_x", L, eps_x, f.L.frac + f.eps.frac),
                                     ("W_out", e, r, f.e.frac + f.r.frac)):
                G = self._q(contract(post, pre), fg - f.acc.frac, f.acc, "accumulate",
                            f"G_{k}", record, fresh=True)
                acc[k] = apply_overflow(acc[k].add_(G), f.acc, p.overflow, counter=self.counter,
                                        signal="acc", inplace=True)
                if record is not None:  # this step's gradient and the accumulator after S11/13/15
                    record.setdefault(f"G_{k}", []).append(G)
                    record.setdefault(f"acc_{k}_step", []).append(acc[k].clone())
            if p.schedule == "per_step" or t == T - 1:
                self._update(acc, lr_shift, record)
            ys.append(y)
            if record is not None:
                for name, v in (("x", x_t), ("target", y_star), ("I", I_t), ("h", h),
                                ("r", r), ("y", y), ("e", e), ("L", L), ("eps", eps),
                                ("eps_x", eps_x)):
                    record.setdefault(name, []).append(v)
        if record is not None:
            for k, v in record.items():
                if isinstance(v, list):
                    record[k] = torch.stack(v)
            record.update({f"{k}_after": W[k].clone() for k in WEIGHTS})
        y_val = torch.stack(ys) * 2.0**-f.y.frac
        return masked_mse(y_val, target.to(_F64), m)

    def _update_shift(self, k: str, lr_shift: int) -> Tensor:
        """Right shift (E, 1, 1) from accumulator codes to weight-change codes of matrix k."""
        return self.profile.formats.acc.frac + lr_shift - self.frac[k]

    def _update(self, acc: dict[str, Tensor], lr_shift: int, rec: dict | None) -> None:
        """Step 9: ΔW = Q_W(acc >> (f_acc + lr_shift - f_W)), W -= ΔW, then acc = 0 (clear) or
        acc -= ΔW << shift (carry)."""
        p = self.profile
        for k in WEIGHTS:
            fmt = self._wfmt(k)
            shift = self._update_shift(k, lr_shift)
            dW = self._q(acc[k], shift, fmt, "weight_update", f"d{k}", rec)
            nonzero = acc[k] != 0
            self._nonzero[k] += nonzero.flatten(1).sum(1)
            self._stalled[k] += (nonzero & (dW == 0)).flatten(1).sum(1)
            self.W[k] = apply_overflow(self.W[k] - dW, fmt, p.overflow, counter=self.counter,
                                       signal=k, inplace=True)
            if rec is not None:
                rec.setdefault(f"acc_{k}", []).append(acc[k].clone())
                rec.setdefault(f"d{k}", []).append(dW)
            if p.accumulator == "carry":
                acc[k].sub_(dW * torch.pow(2.0, shift))
            else:
                acc[k].zero_()

    def state(self) -> dict:
        """Everything a checkpoint needs to resume bit-exactly: codes, RNG states, counters."""
        return {
            "W": {k: v.clone() for k, v in self.W.items()},
            "acc": {k: v.clone() for k, v in self.acc.items()},
            "rng": self.rng.state(),
            "counters": self.counter.state(),
            "nonzero": {k: v.clone() for k, v in self._nonzero.items()},
            "stalled": {k: v.clone() for k, v in self._stalled.items()},
        }

    def load_state(self, state: dict) -> None:
        """Resume from :meth:`state` (same profile, shapes and ensemble)."""
        self.W = {k: v.clone() for k, v in state["W"].items()}
        self.acc = {k: v.clone() for k, v in state["acc"].items()}
        self.rng.set_state(state["rng"])
        self.counter = SaturationCounter.from_state(state["counters"])
        self._nonzero = {k: v.clone() for k, v in state["nonzero"].items()}
        self._stalled = {k: v.clone() for k, v in state["stalled"].items()}

    def params(self) -> Params:
        """Float view of the current weights, ``code · 2^-(frac - s)`` (float64)."""
        return Params(*(self.W[k] * 2.0 ** -self.frac[k] for k in WEIGHTS))

    @property
    def counters(self) -> dict[str, int]:
        """Cumulative saturations/wraps per signal (over the whole ensemble)."""
        return self.counter.as_dict()

    def network_counters(self) -> dict[str, Tensor]:
        """Cumulative saturations/wraps per signal and network, (E,) each."""
        return self.counter.per_network()

    def stall_counts(self) -> dict[str, tuple[Tensor, Tensor]]:
        """Per matrix: (stalled, nonzero) counts (E,) — weight updates whose accumulated
        gradient was non-zero but rounded to a zero change, and all non-zero ones."""
        return {k: (self._stalled[k].clone(), self._nonzero[k].clone()) for k in WEIGHTS}

    def stall_fraction(self) -> dict[str, Tensor]:
        """Per matrix, per network (E,): fraction of non-zero updates that rounded to zero."""
        return {k: self._stalled[k] / self._nonzero[k].clamp_min(1) for k in WEIGHTS}
