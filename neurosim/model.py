r"""Leaky ReLU rate RNN with a leading ensemble axis.

Equations (DESIGN.md, "The model"), for every network e of the ensemble:

    h_{t+1} = α h_t + (1-α) (W_h r_t + W_x x_t),    r_t = relu(h_t),    h_0 = 0
            = (u_t + α h_t) + (1-α) W_h r_t,          u_t = (1-α) W_x x_t  (as computed)
    y_t     = W_out r_{t+1}                          (input x_t is answered by y_t)
    α       = 1 - dt/τ

Initialisation: ``W_h ~ N(0, gain²/N)``; ``W_x`` and ``W_out`` as ``torch.nn.Linear``'s
default, ``U(±1/√fan_in)``. No biases.

Loss (masked MSE, per network): ``L = ½ Σ_{t,b,k} m_{t,b} (y - y*)² / Σ_{t,b} m_{t,b}``.

Shapes: E networks, B trials, N hidden units, T steps. Parameters are ``W_h (E, N, N)``,
``W_x (E, N, n_in)``, ``W_out (E, n_out, N)``; states are ``(E, B, N)``; a batch is
``x (T, E, B, n_in)``, ``target (T, E, B, n_out)``, ``mask (T, E, B)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor


class Params(NamedTuple):
    """Parameters of an ensemble of E networks."""

    W_h: Tensor  # (E, N, N) recurrent weights
    W_x: Tensor  # (E, N, n_in) input weights
    W_out: Tensor  # (E, n_out, N) readout weights

    @property
    def ensemble(self) -> int:
        return self.W_h.shape[0]

    @property
    def n_hidden(self) -> int:
        return self.W_h.shape[1]

    def map(self, fn) -> Params:
        """Apply ``fn`` to every tensor and return new Params."""
        return Params(*(fn(w) for w in self))


def alpha_from(dt: float, tau: float) -> float:
    """Leak factor ``α = 1 - dt/τ``; requires ``0 < dt <= τ``."""
    if not (dt > 0 and tau > 0 and dt <= tau):
        raise ValueError(f"dt and tau must satisfy 0 < dt <= tau, got dt={dt}, tau={tau}")
    return 1.0 - dt / tau


def _per_member(value: float | Sequence[float], ensemble: int, name: str) -> list[float]:
    values = [float(value)] * ensemble if isinstance(value, int | float) else list(value)
    if len(values) != ensemble:
        raise ValueError(f"{name} has {len(values)} entries for an ensemble of {ensemble}")
    return values


def init_params(
    n_in: int,
    n_hidden: int,
    n_out: int,
    gain: float | Sequence[float],
    *,
    ensemble: int = 1,
    seed: int | Sequence[int] = 0,
    dtype: torch.dtype = torch.float32,
) -> Params:
    """Initialise E independent networks.

    ``gain`` and ``seed`` are one value for all members or one per member; an int ``seed``
    gives member e the seed ``seed + e``. Member e is drawn from its own generator, so a
    network is the same whether it is initialised alone or inside an ensemble.
    """
    for name, v in (("n_in", n_in), ("n_hidden", n_hidden), ("n_out", n_out), ("ensemble", ensemble)):
        if v <= 0:
            raise ValueError(f"{name} must be positive, got {v}")
    gains = _per_member(gain, ensemble, "gain")
    if any(g < 0 for g in gains):
        raise ValueError(f"gain must be >= 0, got {min(gains)}")
    seeds = [seed + e for e in range(ensemble)] if isinstance(seed, int) else list(seed)
    if len(seeds) != ensemble:
        raise ValueError(f"seed has {len(seeds)} entries for an ensemble of {ensemble}")
    members = [_init_one(n_in, n_hidden, n_out, g, s) for g, s in zip(gains, seeds, strict=True)]
    return Params(*(torch.stack(ws).to(dtype) for ws in zip(*members, strict=True)))


def _init_one(n_in: int, n: int, n_out: int, gain: float, seed: int) -> tuple[Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    W_h = torch.randn(n, n, generator=g, dtype=torch.float64) * (gain / n**0.5)
    W_x = (torch.rand(n, n_in, generator=g, dtype=torch.float64) * 2 - 1) / n_in**0.5
    W_out = (torch.rand(n_out, n, generator=g, dtype=torch.float64) * 2 - 1) / n**0.5
    return W_h, W_x, W_out


def step(params: Params, h: Tensor, x_t: Tensor, alpha: float, r_in: Tensor | None = None) -> Tensor:
    """One update ``h_{t+1} = α h_t + (1-α)(W_h r_t + W_x x_t)``.

    ``h`` (E, B, N), ``x_t`` (E, B, n_in). ``r_in`` overrides the recurrent input ``r_t``
    (e-prop's detached form passes ``relu(h).detach()``). Returns ``h_{t+1}`` (E, B, N).
    """
    r = torch.relu(h) if r_in is None else r_in
    return update(h, r, params.W_h, input_drive(params, x_t, alpha), alpha)


def linear(x: Tensor, W: Tensor, *, out: Tensor | None = None) -> Tensor:
    """``x Wᵀ`` per network: x (E, M, k), W (E, n, k) → (E, M, n), into ``out`` if given.

    With k = 1 it is an outer product, computed as a broadcast multiply: MKL's bmm with k = 1
    is ~9× slower at N = 64. Exact on integer codes either way (one product per element).
    """
    if x.shape[-1] == 1:
        return torch.mul(x, W.mT, out=out)
    return torch.bmm(x, W.mT, out=out)


def input_drive(params: Params, x: Tensor, alpha: float, *, out: Tensor | None = None) -> Tensor:
    """``u = (1-α) W_x x`` for x (..., E, B, n_in) → (..., E, B, N): the part of the update that
    does not depend on the state, so :func:`run` computes it for all t in one bmm.

    The values are stored network-major, in ``out`` (E, ..., B, N) if given, and returned as a
    (..., E, B, N) view.
    """
    E, B, n_in = x.shape[-3:]
    lead = x.shape[:-3]
    x_e = x.reshape(-1, E, B, n_in).transpose(0, 1).reshape(E, -1, n_in)  # (E, ·B, n_in)
    N = params.n_hidden
    u = linear(x_e, params.W_x, out=None if out is None else out.view(E, -1, N))
    u.mul_(1 - alpha)  # in place: u is a fresh tensor (or the caller's buffer)
    return u.view(E, -1, B, N).transpose(0, 1).reshape(*lead, E, B, N)


def update(
    h: Tensor, r: Tensor, W_h: Tensor, u: Tensor, alpha: float, *, out: Tensor | None = None
) -> Tensor:
    """``h_{t+1} = (u_t + α h_t) + (1-α) W_h r_t`` with ``u_t = (1-α) W_x x_t`` (:func:`input_drive`).

    The one place the update is computed (:func:`step`, :func:`run` and e-prop's buffered
    forward pass all call it), as one add and one ``baddbmm``. With ``out`` (E, B, N), the
    result is written there (no autograd), which lets a loop reuse its memory.
    """
    if out is None:
        return torch.baddbmm(torch.add(u, h, alpha=alpha), r, W_h.mT, alpha=1 - alpha)
    torch.add(u, h, alpha=alpha, out=out)
    return out.baddbmm_(r, W_h.mT, alpha=1 - alpha)


def run(params: Params, x: Tensor, alpha: float, *, detach_recurrent: bool = False) -> Tensor:
    """Hidden states ``h_1 .. h_T`` for inputs ``x`` (T, E, B, n_in) → (T, E, B, N) (a view)."""
    T, E, B, _ = x.shape
    # unbind, not u[t]: autograd of T selects would zero-fill a full (T, E, B, N) gradient per
    # step (O(T²); 1.6 s of a 1.7 s fig1 BPTT step), unbind's backward stacks once
    u = input_drive(params, x.expand(T, params.ensemble, B, x.shape[-1]), alpha).unbind(0)
    h = x.new_zeros(params.ensemble, B, params.n_hidden)
    hs = []
    for u_t in u:
        r = torch.relu(h)
        h = update(h, r.detach() if detach_recurrent else r, params.W_h, u_t, alpha)
        hs.append(h)
    # stored network-major (E, T, B, N) and returned as a (T, E, B, N) view, so consumers that
    # contract over time and batch per network get contiguous memory for free
    return torch.stack(hs, 1).permute(1, 0, 2, 3)


def readout(params: Params, h: Tensor) -> Tensor:
    """Outputs ``y = W_out relu(h)`` for states (T, E, B, N) → (T, E, B, n_out)."""
    return torch.einsum("teBn,eon->teBo", torch.relu(h), params.W_out)


def masked_mse(y: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """``½ Σ m (y - y*)² / Σ m`` per network: y, target (T, E, B, n_out), mask (T, E, B) → (E,)."""
    sq = ((y - target) ** 2).sum(-1) * mask
    return 0.5 * sq.sum((0, 2)) / mask.sum((0, 2)).clamp_min(1)

