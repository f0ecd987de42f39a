r"""Backpropagation through time: the exact gradient of the masked MSE, by an explicit
backward recursion (no autograd).

With ``h_{t+1} = α h_t + (1-α)(W_h r_t + W_x x_t)``, ``r_t = f(h_t)``, ``y_t = W_out r_{t+1}``
and ``d_t = f'(h_t) ⊙ (W_outᵀ e_{t-1})`` the direct signal (:func:`~neurosim.rules.forward.forward`),
the adjoint ``g_t = ∂L/∂h_t`` runs backward from ``g_{T+1} = 0``:

    g_t   = d_t + α g_{t+1} + (1-α) f'(h_t) ⊙ (W_hᵀ g_{t+1})
    ∇W_h  = (1-α) Σ_t g_{t+1} r_tᵀ,   ∇W_x = (1-α) Σ_t g_{t+1} x_tᵀ,   ∇W_out = Σ_t e_t r_{t+1}ᵀ

e-prop is this with the ``W_hᵀ`` term dropped. Autograd through ``model.run`` gives the same
numbers (:func:`~neurosim.rules.autograd.bptt_gradients_autograd`, the tests' reference) at
several times the cost: its graph keeps T small tensors per op and replays them one by one.
"""

from __future__ import annotations

import torch
from torch import Tensor

from neurosim.model import Params
from neurosim.rules.forward import contract, forward


def bptt_gradients(
    params: Params, x: Tensor, target: Tensor, mask: Tensor, *, alpha: float
) -> tuple[Tensor, Params]:
    """Loss (E,) and its exact gradient, shaped like ``params``. Batch shapes as in model.py."""
    with torch.no_grad():
        loss, e, ws = forward(params, x, target, mask, alpha=alpha)
        g, act, r = ws.L, ws.act, ws.r  # g[:, t-1] = g_t, filled from t = T down, in place
        back = ws.r_t  # (E, B, N) scratch for W_hᵀ g_{t+1}
        for t in range(g.shape[1] - 2, -1, -1):
            torch.bmm(g[:, t + 1], params.W_h, out=back)
            g[:, t].add_(g[:, t + 1], alpha=alpha).addcmul_(back, act[:, t], value=1 - alpha)
        x_e = x.expand(-1, params.ensemble, -1, -1).permute(1, 0, 2, 3).contiguous()
        # g_{t+1} pairs with r_t: g_2 .. g_T with r_1 .. r_{T-1} (r_0 = 0)
        grads = Params(W_h=contract(g[:, 1:], r[:, :-1]).mul_(1 - alpha),
                       W_x=contract(g, x_e).mul_(1 - alpha), W_out=contract(e, r))
    return loss, grads
