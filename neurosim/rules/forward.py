"""The forward pass both explicit rules share: states into reused buffers, the output error,
the direct learning signal, and the (time × batch) contraction that turns per-step factors into
a weight gradient. No autograd; everything is handled network-major, (E, T, B, ·)."""

from __future__ import annotations

import threading
from functools import partial

import torch
from torch import Tensor

from neurosim.model import Params, input_drive, masked_mse, update


def contract(post: Tensor, pre: Tensor) -> Tensor:
    """``Σ_{t,b} post[e,t,b,i] pre[e,t,b,j]`` for (E, T, B, I), (E, T, B, J) → (E, I, J).

    Time-major within each network, so both reshape for free (each network's (T, B) block must
    be contiguous; the network stride may be anything) and the sum is one bmm. A narrow
    ``post`` or ``pre`` (I or J of a few columns: W_x, W_out) is put on the left, which MKL runs
    about 5× faster than the other orientation at N = 64.
    """
    E = post.shape[0]
    P, Q = post.reshape(E, -1, post.shape[-1]), pre.reshape(E, -1, pre.shape[-1])
    if Q.shape[-1] < P.shape[-1]:
        return torch.bmm(Q.mT, P).mT
    return torch.bmm(P.mT, Q)


class Workspace:
    """The (E, T, B, N) buffers of one pass, kept between calls of the same shape.

    A fresh 30 MB tensor (E = 64, N = 64, B = 32, T = 56) is paged in on first touch, and at
    these sizes that cost more than the arithmetic: reusing the buffers took the e-prop
    iteration from 0.21 s to 0.09 s (measured, one thread). One workspace per thread, for the
    most recent shape only, so memory stays that of one iteration.
    """

    _local = threading.local()

    def __init__(self, E: int, T: int, B: int, N: int, dtype: torch.dtype, device: torch.device):
        self.key = (E, T, B, N, dtype, device)
        new = partial(torch.empty, dtype=dtype, device=device)
        self.u = new(E, T, B, N)  # input drive (1-α) W_x x_t
        self.r = new(E, T, B, N)  # r_1 .. r_T
        self.act = new(E, T, B, N)  # f'(h_1) .. f'(h_T); e-prop then writes its traces here
        self.L = new(E, T, B, N)  # learning signals (BPTT: ∂L/∂h_t) at t = 1 .. T
        self.h = (new(E, B, N), new(E, B, N))  # h_t and h_{t+1}, swapped every step
        self.r_t = new(E, B, N)

    @classmethod
    def get(cls, E: int, T: int, B: int, N: int, like: Tensor) -> Workspace:
        """The workspace for these sizes, with ``like``'s dtype and device."""
        ws = getattr(cls._local, "ws", None)
        if ws is None or ws.key != (E, T, B, N, like.dtype, like.device):
            cls._local.ws = None  # free the old buffers before allocating new ones
            ws = cls._local.ws = cls(E, T, B, N, like.dtype, like.device)
        return ws


def rates(params: Params, x: Tensor, alpha: float, ws: Workspace) -> Tensor:
    """``r_1 .. r_T`` (E, T, B, N) into ``ws.r`` for x (T, E, B, n_in): :func:`~neurosim.model.run`
    without autograd, written into reused buffers (one add, one baddbmm, one clamp and one copy
    per step)."""
    T = x.shape[0]
    u = input_drive(params, x, alpha, out=ws.u)  # (T, E, B, N) view of ws.u
    h, h_next = ws.h
    h.zero_()
    r = ws.r_t.zero_()  # r_t, contiguous: a strided slice of ws.r as bmm operand costs 30% more
    W_h = params.W_h.mT.contiguous().mT  # the same values, stored so that update's W_hᵀ is contiguous
    for t in range(T):
        update(h, r, W_h, u[t], alpha, out=h_next)
        ws.r[:, t].copy_(torch.clamp(h_next, min=0, out=r))
        h, h_next = h_next, h
    return ws.r


def forward(
    params: Params, x: Tensor, target: Tensor, mask: Tensor, *, alpha: float, feedback: Tensor | None = None
) -> tuple[Tensor, Tensor, Workspace]:
    """Run the network and form each step's direct learning signal.

    x (T, E or 1, B, n_in), target (T, E, B, n_out), mask (T, E, B). Returns the loss (E,), the
    output error ``e_t = ∂L/∂y_t`` (E, T, B, n_out) and the workspace, whose ``r`` holds
    r_1 .. r_T, ``act`` f'(h_1) .. f'(h_T) and ``L`` the direct signal
    ``f'(h_{t+1}) ⊙ (B e_t)`` (B = ``feedback`` (E, N, n_out), ``None`` meaning ``W_outᵀ``).
    """
    T, _, Bsz, n_in = x.shape
    E, N = params.ensemble, params.n_hidden
    ws = Workspace.get(E, T, Bsz, N, params.W_h)
    r = rates(params, x.expand(T, E, Bsz, n_in), alpha, ws)
    y = torch.bmm(r.view(E, -1, N), params.W_out.mT).view(E, T, Bsz, -1)
    target_e, mask_e = target.permute(1, 0, 2, 3), mask.permute(1, 0, 2)
    loss = masked_mse(y.transpose(0, 1), target_e.transpose(0, 1), mask_e.transpose(0, 1))
    e = (y - target_e) * (mask_e / mask_e.sum((1, 2), keepdim=True).clamp_min(1)).unsqueeze(-1)
    B = params.W_out.mT if feedback is None else feedback
    L = torch.bmm(e.view(E, -1, e.shape[-1]), B.mT, out=ws.L.view(E, -1, N)).view(r.shape)
    # f'(h) = [h > 0] = sign(r) as r = relu(h) >= 0 (3× faster than multiplying by r > 0)
    L.mul_(torch.sign(r, out=ws.act))
    return loss, e, ws
