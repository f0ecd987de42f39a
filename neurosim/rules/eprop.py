r"""e-prop (≡ RFLO for this model): the truncated gradient that keeps each neuron's own leak.

Equations (DESIGN.md, "Learning rules"), with ``h_{t+1} = α h_t + (1-α)(W_h r_t + W_x x_t)``
and ``y_t = W_out r_{t+1}``, for t = 0..T-1:

    ε_{t+1}   = α ε_t   + (1-α) r_t           ε_0 = 0    (eligibility trace of W_h, per presynaptic j)
    ε^x_{t+1} = α ε^x_t + (1-α) x_t                       (eligibility trace of W_x)
    e_t       = ∂L/∂y_t                                   (output error of the masked MSE)
    L_{t+1}   = f'(h_{t+1}) ⊙ (B e_t)                     (learning signal, B = W_outᵀ or fixed random)
    ∇W_h      = Σ_t L_{t+1} ε_{t+1}ᵀ,   ∇W_x = Σ_t L_{t+1} ε^x_{t+1}ᵀ,   ∇W_out = Σ_t e_t r_{t+1}ᵀ

The trace of this leaky model does not depend on the postsynaptic neuron, so it is one vector
per presynaptic unit. The sum over time and batch is one batched matmul per matrix
(E, N, T·B) @ (E, T·B, N) rather than T outer products.

The same gradient is autograd with ``r_t.detach()`` on the recurrent input only: unrolling the
leak ``α h_t`` gives exactly the filter above (:func:`eprop_gradients_autograd`).
"""

from __future__ import annotations

import threading
from functools import partial

import torch
from torch import Tensor

from neurosim.model import Params, input_drive, masked_mse, update
from neurosim.rules.bptt import autograd_gradients


def _contract(post: Tensor, pre: Tensor) -> Tensor:
    """``Σ_{t,b} post[e,t,b,i] pre[e,t,b,j]`` for contiguous (E, T, B, I), (E, T, B, J) → (E, I, J).

    Time-major within each network, so both reshape for free and the sum is one bmm. A narrow
    ``post`` or ``pre`` (I or J of a few columns: W_x, W_out) is put on the left, which MKL runs
    about 5× faster than the other orientation at N = 64.
    """
    E = post.shape[0]
    P, Q = post.reshape(E, -1, post.shape[-1]), pre.reshape(E, -1, pre.shape[-1])
    if Q.shape[-1] < P.shape[-1]:
        return torch.bmm(Q.mT, P).mT
    return torch.bmm(P.mT, Q)


class _Workspace:
    """The (E, T, B, N) buffers of one e-prop pass, kept between calls of the same shape.

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
        self.eps = new(E, T, B, N)  # ε_1 .. ε_T
        self.L = new(E, T, B, N)  # L_1 .. L_T
        self.h = (new(E, B, N), new(E, B, N))  # h_t and h_{t+1}, swapped every step
        self.r_t = new(E, B, N)

    @classmethod
    def get(cls, E: int, T: int, B: int, N: int, like: Tensor) -> _Workspace:
        """The workspace for these sizes, with ``like``'s dtype and device."""
        ws = getattr(cls._local, "ws", None)
        if ws is None or ws.key != (E, T, B, N, like.dtype, like.device):
            cls._local.ws = None  # free the old buffers before allocating new ones
            ws = cls._local.ws = cls(E, T, B, N, like.dtype, like.device)
        return ws


def _rates(params: Params, x: Tensor, alpha: float, ws: _Workspace) -> Tensor:
    """``r_1 .. r_T`` (E, T, B, N) into ``ws.r``: :func:`~neurosim.model.run` without autograd,
    written into reused buffers (one add, one baddbmm, one clamp and one copy per step)."""
    T = x.shape[0]
    u = input_drive(params, x, alpha, out=ws.u)  # (T, E, B, N) view of ws.u
    h, h_next = ws.h
    h.zero_()
    r = ws.r_t.zero_()  # r_t, contiguous: a strided slice of ws.r as bmm operand costs 30% more
    for t in range(T):
        update(h, r, params.W_h, u[t], alpha, out=h_next)
        ws.r[:, t].copy_(torch.clamp(h_next, min=0, out=r))
        h, h_next = h_next, h
    return ws.r


def _trace(u: Tensor, alpha: float, out: Tensor, *, stored_states: bool) -> Tensor:
    """``ε_{t+1} = α ε_t + (1-α) u_t``, ε_0 = 0, into ``out`` (E, T, B, ·) = ε_1 .. ε_T.

    ``stored_states``: u holds r_1 .. r_T (the states run() stores; r_0 = 0), else u_0 .. u_{T-1}
    (the inputs). One lerp per step (``lerp(ε, u, 1-α) = α ε + (1-α) u``): about 3× faster here
    than a (T, T) kernel matmul, which does T/2 times the arithmetic and needs T² memory."""
    if stored_states:
        out[:, 0].zero_()
    else:
        torch.mul(u[:, 0], 1 - alpha, out=out[:, 0])
    for t in range(1, u.shape[1]):
        torch.lerp(out[:, t - 1], u[:, t - 1 if stored_states else t], 1 - alpha, out=out[:, t])
    return out


def eprop_gradients(
    params: Params,
    x: Tensor,
    target: Tensor,
    mask: Tensor,
    *,
    alpha: float,
    feedback: Tensor | None = None,
) -> tuple[Tensor, Params]:
    """Loss (E,) and the e-prop gradient by explicit eligibility traces (no autograd).

    ``feedback`` is B (E, N, n_out); ``None`` means symmetric feedback ``B = W_outᵀ``.
    Internally every (T, E, B, ·) tensor is handled network-major, (E, T, B, ·), in buffers
    reused between calls (:class:`_Workspace`), so the contractions are single bmm's on
    contiguous memory; the trace filter is a recursion over t, one lerp per step.
    """
    with torch.no_grad():
        T, _, Bsz, n_in = x.shape
        E, N = params.ensemble, params.n_hidden
        ws = _Workspace.get(E, T, Bsz, N, params.W_h)
        x = x.expand(T, E, Bsz, n_in)
        r = _rates(params, x, alpha, ws)  # (E, T, B, N), r_1 .. r_T
        y = torch.bmm(r.view(E, -1, N), params.W_out.mT).view(E, T, Bsz, -1)
        target_e, mask_e = target.permute(1, 0, 2, 3), mask.permute(1, 0, 2)
        loss = masked_mse(y.transpose(0, 1), target_e.transpose(0, 1), mask_e.transpose(0, 1))
        e = (y - target_e) * (mask_e / mask_e.sum((1, 2), keepdim=True).clamp_min(1)).unsqueeze(-1)
        B = params.W_out.mT if feedback is None else feedback
        L = torch.bmm(e.view(E, -1, e.shape[-1]), B.mT, out=ws.L.view(E, -1, N)).view(r.shape)
        # f'(h) = [h > 0] = sign(r) as r = relu(h) >= 0; ws.eps serves as scratch before it
        # holds the trace (3× faster than multiplying by the bool tensor r > 0)
        L.mul_(torch.sign(r, out=ws.eps))
        eps = _trace(r, alpha, ws.eps, stored_states=True)
        x_e = x.permute(1, 0, 2, 3)
        eps_x = _trace(x_e, alpha, torch.empty_like(x_e, memory_format=torch.contiguous_format),
                       stored_states=False)
        grads = Params(W_h=_contract(L, eps), W_x=_contract(L, eps_x), W_out=_contract(e, r))
    return loss, grads


def eprop_gradients_autograd(
    params: Params, x: Tensor, target: Tensor, mask: Tensor, *, alpha: float
) -> tuple[Tensor, Params]:
    """The same e-prop gradient (symmetric feedback) as autograd with ``r_t.detach()``."""
    return autograd_gradients(params, x, target, mask, alpha=alpha, detach_recurrent=True)
