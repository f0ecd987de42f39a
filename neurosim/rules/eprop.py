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

import torch
from torch import Tensor

from neurosim.model import Params, masked_mse, run
from neurosim.rules.bptt import autograd_gradients


def trace_kernel(T: int, alpha: float, *, lag: int, dtype=torch.float32, device=None) -> Tensor:
    """K (T, T) with ``K[i, j] = (1-α) α^(i-j-lag)`` for ``j <= i - lag``, else 0.

    ``K @ u`` over the time axis is the leaky trace of u: with ``lag = 0`` it maps u_0..u_{T-1}
    to ε_1..ε_T; with ``lag = 1`` it maps u_1..u_T (the stored states) to ε_1..ε_T, since
    u_0 = r_0 = 0. One (T, T) matmul replaces the recursion.
    """
    t = torch.arange(T, dtype=torch.float64)
    d = t[:, None] - t[None, :] - lag
    K = torch.where(d >= 0, (1 - alpha) * alpha ** d.clamp_min(0), torch.zeros((), dtype=torch.float64))
    return K.to(dtype=dtype, device=device)


def leaky_filter(u: Tensor, alpha: float) -> Tensor:
    """``ε_{t+1} = α ε_t + (1-α) u_t`` for u (T, ...) → (ε_1 .. ε_T) (T, ...)."""
    T = u.shape[0]
    return (trace_kernel(T, alpha, lag=0, dtype=u.dtype) @ u.reshape(T, -1)).reshape(u.shape)


def _contract(post: Tensor, pre: Tensor) -> Tensor:
    """``Σ_{t,b} post[e,t,b,i] pre[e,t,b,j]`` for contiguous (E, T, B, I), (E, T, B, J) → (E, I, J).

    Time-major within each network, so both reshape for free and the sum is one bmm.
    """
    E = post.shape[0]
    return torch.bmm(post.reshape(E, -1, post.shape[-1]).mT, pre.reshape(E, -1, pre.shape[-1]))


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
    Internally every (T, E, B, ·) tensor is handled network-major, (E, T, B, ·), so the
    trace filter and the contractions are matmuls on contiguous memory.
    """
    with torch.no_grad():
        T, E = x.shape[:2]
        h = run(params, x, alpha).permute(1, 0, 2, 3)  # (E, T, B, N), h_1 .. h_T, contiguous
        r = torch.relu(h)
        y = torch.bmm(r.reshape(E, -1, r.shape[-1]), params.W_out.mT).view(*h.shape[:3], -1)
        target_e, mask_e = target.permute(1, 0, 2, 3), mask.permute(1, 0, 2)
        loss = masked_mse(y.transpose(0, 1), target_e.transpose(0, 1), mask_e.transpose(0, 1))
        e = (y - target_e) * (mask_e / mask_e.sum((1, 2), keepdim=True).clamp_min(1)).unsqueeze(-1)
        B = params.W_out.mT if feedback is None else feedback
        L = (h > 0).to(h.dtype) * torch.bmm(e.reshape(E, -1, e.shape[-1]), B.mT).view(h.shape)
        K_r = trace_kernel(T, alpha, lag=1, dtype=h.dtype, device=h.device)  # ε from r_1..r_T, r_0 = 0
        eps = torch.matmul(K_r, r.reshape(E, T, -1)).view(h.shape)
        x_e = x.expand(T, E, *x.shape[2:]).permute(1, 0, 2, 3)
        K_x = trace_kernel(T, alpha, lag=0, dtype=h.dtype, device=h.device)
        eps_x = torch.matmul(K_x, x_e.reshape(E, T, -1))
        grads = Params(
            W_h=_contract(L, eps),
            W_x=_contract(L, eps_x.view(*h.shape[:3], -1)),
            W_out=_contract(e, r),
        )
    return loss, grads


def eprop_gradients_autograd(
    params: Params, x: Tensor, target: Tensor, mask: Tensor, *, alpha: float
) -> tuple[Tensor, Params]:
    """The same e-prop gradient (symmetric feedback) as autograd with ``r_t.detach()``."""
    return autograd_gradients(params, x, target, mask, alpha=alpha, detach_recurrent=True)
