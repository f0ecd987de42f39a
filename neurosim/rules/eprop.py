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
leak ``α h_t`` gives exactly the filter above
(:func:`~neurosim.rules.autograd.eprop_gradients_autograd`, the tests' reference).
"""

from __future__ import annotations

import torch
from torch import Tensor

from neurosim.model import Params
from neurosim.rules.forward import contract, forward


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
    The learning signal is :func:`~neurosim.rules.forward.forward`'s direct signal; the
    contractions are single bmm's on contiguous memory; the trace filter is a recursion over
    t, one lerp per step.
    """
    with torch.no_grad():
        loss, e, ws = forward(params, x, target, mask, alpha=alpha, feedback=feedback)
        eps = _trace(ws.r, alpha, ws.act, stored_states=True)  # f'(h) is in L already
        x_e = x.expand(-1, params.ensemble, -1, -1).permute(1, 0, 2, 3)
        eps_x = _trace(x_e, alpha, torch.empty_like(x_e, memory_format=torch.contiguous_format),
                       stored_states=False)
        grads = Params(W_h=contract(ws.L, eps), W_x=contract(ws.L, eps_x), W_out=contract(e, ws.r))
    return loss, grads
