r"""Gradient flossing (Engelken, NeurIPS 2023): descend on the Lyapunov exponents' squares.

Loss per network: ``F = (1/k) Σ_{i<=k} λ_i²`` (λ from :mod:`neurosim.lyapunov`). Variants:

- ``bptt``: the gradient through the trajectory h_t, the tangent vectors and the Jacobians
  (W_h and W_x both receive gradients through h_t).
- ``local``: trajectory and tangent vectors detached; only the explicit dependence of
  ``J_t = αI + (1-α) W_h diag(f'(h_t))`` on W_h remains. For k = 1 it is a product of a
  postsynaptic and a presynaptic tangent signal times a global factor:

      γ_t = ‖J_t q_t‖,   q_{t+1} = J_t q_t / γ_t,   λ_1 = (1/T') Σ_{t>=warmup} log γ_t
      ∂λ_1/∂W_h[i,j] = (1/T') Σ_{t>=warmup} (1-α) q_{t+1,i} f'(h_{j,t}) q_{j,t} / γ_t
      ∂F/∂W_h = 2 λ_1 ∂λ_1/∂W_h

  (T' = T - warmup; q_{t+1} is the normalised vector; λ_1 and its gradient are averaged over
  the batch.) :func:`local_floss_grad_k1` computes exactly this, with no autograd: the form
  a chip runs and the fixed-point engine implements.
"""

from __future__ import annotations

import torch
from torch import Tensor

from neurosim.lyapunov import initial_tangent, jacobian_times, lyapunov_spectrum
from neurosim.model import Params, step

VARIANTS = ("local", "bptt")


def local_floss_grad_k1(params: Params, x: Tensor, *, alpha: float, warmup: int = 0) -> tuple[Tensor, Tensor]:
    """λ_1 (E,) and its local gradient ∂λ_1/∂W_h (E, N, N), by the explicit rule above."""
    T, E, B, _ = x.shape
    N = params.n_hidden
    with torch.no_grad():
        h = x.new_zeros(E, B, N)
        q = initial_tangent(N, 1, x.dtype).squeeze(-1).expand(E, B, N)
        lam = x.new_zeros(E, B)
        grad = x.new_zeros(E, N, N)
        for t in range(T):
            Jq = jacobian_times(params.W_h, h, q.unsqueeze(-1), alpha).squeeze(-1)
            gamma = Jq.norm(dim=2)  # (E, B)
            q_next = Jq / gamma.unsqueeze(-1)
            if t >= warmup:
                lam += gamma.log()
                pre = (h > 0).to(x.dtype) * q / gamma.unsqueeze(-1)  # f'(h_j) q_j / γ
                grad += (1 - alpha) * torch.bmm(q_next.transpose(1, 2), pre)
            q = q_next
            h = step(params, h, x[t], alpha)
        n = (T - warmup) * B
    return lam.sum(1) / n, grad / n


def flossing_gradients(
    params: Params, x: Tensor, *, alpha: float, k: int = 1, variant: str = "local", warmup: int = 0
) -> tuple[Tensor, Params]:
    """Flossing loss (E,) and its gradient shaped like ``params``.

    ``local`` gives W_h a gradient and zeros elsewhere; ``bptt`` differentiates everything.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown flossing variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    zeros = params.map(torch.zeros_like)
    if variant == "local" and k == 1:
        lam, dlam = local_floss_grad_k1(params, x, alpha=alpha, warmup=warmup)
        return lam**2, zeros._replace(W_h=2 * lam.view(-1, 1, 1) * dlam)
    local = variant == "local"
    with torch.enable_grad():
        p = params.map(lambda w: w.detach().requires_grad_())
        lam = lyapunov_spectrum(p, x, alpha=alpha, k=k, warmup=warmup,
                                detach_trajectory=local, detach_tangent=local)
        loss = (lam**2).mean(1)
        grads = torch.autograd.grad(loss.sum(), p, allow_unused=True)
    return loss.detach(), Params(*(g if g is not None else z for g, z in zip(grads, zeros, strict=True)))
