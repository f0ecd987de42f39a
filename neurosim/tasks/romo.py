"""Romo parametric working-memory task, after Schuessler et al. (2020).

Source: F. Schuessler, F. Mastrogiuseppe, A. Dubreuil, S. Ostojic, O. Barak, "The interplay
between randomness and structure during learning in RNNs", NeurIPS 2020
(https://arxiv.org/abs/2006.11036), task after Romo et al., Nature 1999.

A trial, time in units of the membrane time constant τ:

    period          duration      input                 target           mask
    fixation        3             0                     0                1
    f1              1             f1                    0                1
    delay           U(2, 8)       0                     0                1
    f2              1             f2                    0                1
    decision delay  5             0                     —                0
    response        10            0                     0.5 on the larger 1
    (padding up to the longest trial)                   —                0

f1, f2 ~ U(0.5, 1.5) with |f1 - f2| >= 0.2. One input channel, two outputs: output 0 answers
"f1 > f2", output 1 answers "f2 > f1".

Durations become steps as Schuessler's generator does, ``int(duration / dt)`` (floor): the
fixed periods are whole multiples of dt (3/0.5 = 6 steps), and the delay ``int(U(2, 8)/dt)``
is uniform on 4 .. 15 steps at dt = 0.5 (10 .. 39 at dt = 0.2). Rounding instead would give
4 .. 16 with half weight at both ends. The floor is taken with a 1e-9 step margin so that a
duration that is a whole number of steps in decimal (3 / 0.2 = 14.999…98 in IEEE) is not cut
short. A batch is padded to the longest possible trial, the periods' total in steps with the
delay's upper bound ``int(8/dt)`` (never drawn, so the last step is always padding): 56 steps
at dt = 0.5, 140 at dt = 0.2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

FLOOR_MARGIN = 1e-9  # steps: guards whole-step durations against IEEE division error
TIMING = {"fixation": 3.0, "f1": 1.0, "delay": (2.0, 8.0), "f2": 1.0, "decision": 5.0, "response": 10.0}


@dataclass(frozen=True)
class Romo:
    """Romo task sampled with a torch generator. ``dt`` is the step in units of τ."""

    dt: float = 0.5
    f_range: tuple[float, float] = (0.5, 1.5)
    min_diff: float = 0.2

    name = "romo"
    n_in = 1
    n_out = 2

    def _steps(self, duration: float | Tensor):
        """Whole steps of a duration in units of τ (a number, or a tensor of them), floored."""
        if isinstance(duration, float):
            return math.floor(duration / self.dt + FLOOR_MARGIN)
        return (duration / self.dt + FLOOR_MARGIN).floor().long()

    @property
    def transient_steps(self) -> int:
        """Steps whose Jacobian is taken at h = 0: the zero-input fixation and the first f1 step
        (J_t is evaluated before x_t enters). 7 at dt = 0.5, 16 at dt = 0.2."""
        return self._steps(TIMING["fixation"]) + 1

    @property
    def n_steps(self) -> int:
        longest = sum(v if isinstance(v, float) else v[1] for v in TIMING.values())
        return self._steps(longest)

    def sample(self, batch: int, rng: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """One batch: x (T, B, 1), target (T, B, 2), mask (T, B), float32."""
        lo, hi = self.f_range
        f = lo + (hi - lo) * torch.rand(batch, 2, generator=rng, dtype=torch.float64)
        while (bad := (f[:, 0] - f[:, 1]).abs() < self.min_diff).any():
            f[bad] = lo + (hi - lo) * torch.rand(int(bad.sum()), 2, generator=rng, dtype=torch.float64)
        d_lo, d_hi = TIMING["delay"]
        delay = self._steps(d_lo + (d_hi - d_lo) * torch.rand(batch, generator=rng, dtype=torch.float64))

        T = self.n_steps
        t = torch.arange(T).unsqueeze(1)  # (T, 1)
        f1_on = self._steps(TIMING["fixation"])
        f1_off = f1_on + self._steps(TIMING["f1"])
        f2_on = f1_off + delay  # (B,)
        f2_off = f2_on + self._steps(TIMING["f2"])
        resp_on = f2_off + self._steps(TIMING["decision"])
        resp_off = resp_on + self._steps(TIMING["response"])

        in_f1 = (t >= f1_on) & (t < f1_off)
        in_f2 = (t >= f2_on) & (t < f2_off)
        in_resp = (t >= resp_on) & (t < resp_off)
        x = (in_f1 * f[:, 0] + in_f2 * f[:, 1]).unsqueeze(-1)
        larger = (f[:, 1] > f[:, 0]).long()  # 0: f1 larger, 1: f2 larger
        target = torch.zeros(T, batch, 2, dtype=torch.float64)
        target[..., 0] = 0.5 * (in_resp & (larger == 0))
        target[..., 1] = 0.5 * (in_resp & (larger == 1))
        mask = (t < f2_off) | in_resp
        return x.float(), target.float(), mask.float()
