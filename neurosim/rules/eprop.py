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

from neurosim.model import Params, loss_error, masked_mse, readout, run
from neurosim.rules.bptt import autograd_gradients


def leaky_filter(u: Tensor, alpha: float) -> Tensor:
    """``ε_{t+1} = α ε_t + (1-α) u_t`` for u (T, ...) → (ε_1 .. ε_T) (T, ...).

    One (T, T) lower-triangular matmul over the time axis instead of a Python loop.
    """
    T = u.shape[0]
    t = torch.arange(T, dtype=u.dtype)
    lag = t[:, None] - t[None, :]
    K = torch.where(lag >= 0, (1 - alpha) * alpha ** lag.clamp_min(0), torch.zeros((), dtype=u.dtype))
    return (K @ u.reshape(T, -1)).reshape(u.shape)


def _contract(post: Tensor, pre: Tensor) -> Tensor:
    """``Σ_{t,b} post_{t,e,b,i} pre_{t,e,b,j}`` for (T, E, B, I), (T, E, B, J) → (E, I, J)."""
    T, E, B, n_post = post.shape
    post_flat = post.permute(1, 3, 0, 2).reshape(E, n_post, T * B)
    return torch.bmm(post_flat, pre.permute(1, 0, 2, 3).reshape(E, T * B, -1))


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
    """
    with torch.no_grad():
        h = run(params, x, alpha)  # h_1 .. h_T
        r = torch.relu(h)
        y = readout(params, h)
        loss = masked_mse(y, target, mask)
        e = loss_error(y, target, mask)  # (T, E, B, n_out)
        B = params.W_out.transpose(1, 2) if feedback is None else feedback
        L = (h > 0).to(h.dtype) * torch.einsum("teBo,eno->teBn", e, B)
        r_prev = torch.cat([torch.zeros_like(r[:1]), r[:-1]])  # r_0 .. r_{T-1}
        grads = Params(
            W_h=_contract(L, leaky_filter(r_prev, alpha)),
            W_x=_contract(L, leaky_filter(x.expand(*h.shape[:3], -1), alpha)),
            W_out=_contract(e, r),
        )
    return loss, grads


def eprop_gradients_autograd(
    params: Params, x: Tensor, target: Tensor, mask: Tensor, *, alpha: float
) -> tuple[Tensor, Params]:
    """The same e-prop gradient (symmetric feedback) as autograd with ``r_t.detach()``."""
    return autograd_gradients(params, x, target, mask, alpha=alpha, detach_recurrent=True)
