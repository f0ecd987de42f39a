r"""Gradient flossing (Engelken, NeurIPS 2023): descend on the Lyapunov exponents' squares.

Loss per network: ``F = (1/k) Σ_{i<=k} λ_i²`` with λ from :mod:`neurosim.lyapunov` (QR method,
``J_t = αI + (1-α) W_h diag(f'(h_t))``, T' = T - warmup averaged steps, B trials). Variants:

- ``bptt``: autograd through everything: the Jacobians J_t and the tangent vectors Q_t, which
  depend on W_h through all earlier Jacobians. The trajectory path is there too, but for
  f = relu it is zero: J_t sees h_t only through 1[h_t > 0], piecewise constant in W_h, W_x.
- ``local``: trajectory and tangent vectors detached; only the explicit dependence of J_t on
  W_h remains. For k = 1 it is a product of a postsynaptic and a presynaptic tangent signal
  times a global factor (the DESIGN.md rule, with its normalisation made exact):

      γ_t = ‖J_t q_t‖,     q_{t+1} = J_t q_t / γ_t         (q_{t+1} is the *normalised* vector)
      λ_1 = 1/(T'B) Σ_b Σ_{t=warmup}^{T-1} log γ_t
      ∂λ_1/∂W_h[i,j] = 1/(T'B) Σ_b Σ_{t=warmup}^{T-1} (1-α) q_{t+1,i} · f'(h_{j,t}) q_{j,t} / γ_t
      ∂F/∂W_h = 2 λ_1 ∂λ_1/∂W_h

  (Derivation: ∂ log γ_t / ∂(J_t q_t)_i = (J_t q_t)_i / γ_t² = q_{t+1,i} / γ_t, and
  ∂(J_t q_t)_i / ∂W_h[i,j] = (1-α) f'(h_{j,t}) q_{j,t}. DESIGN's "1/T" is 1/T', the number of
  averaged steps, and equals 1/T without warm-up.) :func:`local_floss_grad_k1` computes
  exactly this without autograd: the form a chip runs and the fixed-point engine implements.

Non-finite trajectories (the rule of :mod:`neurosim.lyapunov`): a network whose state leaves
the finite range gets λ = NaN, loss NaN and a zero flossing gradient: it is not updated.

Gradients: W_h only, in both variants. W_x and W_out get zero gradients: W_out does not enter
λ, and W_x enters only through the activation pattern, whose derivative is zero almost
everywhere (tests/test_flossing.py checks this against finite differences).
"""

from __future__ import annotations

import torch
from torch import Tensor

from neurosim.lyapunov import check_alpha, initial_tangent, jacobian_times, lyapunov_spectrum
from neurosim.model import Params, step

VARIANTS = ("local", "bptt")


def local_floss_grad_k1(
    params: Params, x: Tensor, *, alpha: float, warmup: int = 0
) -> tuple[Tensor, Tensor]:
    """λ_1 (E,) and its local gradient ∂λ_1/∂W_h (E, N, N), by the explicit rule above.

    x (T, E, B, n_in); λ_1 in nats per step. No autograd: every term is a tangent signal.
    """
    T, E, B, _ = x.shape
    N = params.n_hidden
    if not 0 <= warmup < T:
        raise ValueError(f"warmup must be in [0, {T - 1}], got {warmup}")
    check_alpha(alpha)
    with torch.no_grad():
        finite = torch.isfinite(params.W_h).flatten(1).all(1)  # (E,)
        h = x.new_zeros(E, B, N)
        q = initial_tangent(N, 1, x.dtype).to(x.device).squeeze(-1).expand(E, B, N)
        lam = x.new_zeros(E, B)
        grad = x.new_zeros(E, N, N)
        for t in range(T):
            Jq = jacobian_times(params.W_h, h, q.unsqueeze(-1), alpha).squeeze(-1)
            gamma = Jq.norm(dim=2)  # (E, B)
            q_next = Jq / gamma.unsqueeze(-1)  # postsynaptic signal q_{t+1,i}
            if t >= warmup:
                lam += gamma.log()
                pre = (h > 0).to(x.dtype) * q / gamma.unsqueeze(-1)  # f'(h_{j,t}) q_{j,t} / γ_t
                grad += (1 - alpha) * torch.bmm(q_next.transpose(1, 2), pre)  # Σ_b post ⊗ pre
            q = q_next
            h = step(params, h, x[t], alpha)
            finite = finite & torch.isfinite(h).flatten(1).all(1)
        n = (T - warmup) * B
        lam = torch.where(finite, lam.sum(1) / n, torch.full_like(lam[:, 0], float("nan")))
        grad = torch.where(finite.view(E, 1, 1), grad / n, torch.zeros_like(grad))
    return lam, grad


def flossing_gradients(
    params: Params, x: Tensor, *, alpha: float, k: int = 1, variant: str = "local",
    warmup: int = 0,
) -> tuple[Tensor, Params]:
    """Flossing loss F (E,) and dF/dparams shaped like ``params`` (W_x, W_out: zeros).

    x (T, E, B, n_in). ``local`` with k = 1 runs :func:`local_floss_grad_k1`; other cases
    use autograd through :func:`~neurosim.lyapunov.lyapunov_spectrum`.
    """
    if variant not in VARIANTS:
        raise ValueError(
            f"unknown flossing variant {variant!r}; choose one of {', '.join(VARIANTS)}"
        )
    zeros = params.map(torch.zeros_like)
    if variant == "local" and k == 1:
        lam, dlam = local_floss_grad_k1(params, x, alpha=alpha, warmup=warmup)
        return lam**2, zeros._replace(W_h=2 * lam.nan_to_num(0.0).view(-1, 1, 1) * dlam)
    local = variant == "local"
    with torch.enable_grad():
        W_h = params.W_h.detach().requires_grad_()
        lam = lyapunov_spectrum(params._replace(W_h=W_h), x, alpha=alpha, k=k, warmup=warmup,
                                detach_trajectory=local, detach_tangent=local)
        loss = (lam**2).mean(1)
        (grad,) = torch.autograd.grad(loss.nan_to_num(0.0).sum(), W_h)
    grad = torch.where(loss.isnan().view(-1, 1, 1), torch.zeros_like(grad), grad)
    return loss.detach(), zeros._replace(W_h=grad)
