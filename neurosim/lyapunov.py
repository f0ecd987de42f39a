r"""Lyapunov spectrum of the task-driven RNN by the QR method.

Equations (DESIGN.md, "Learning rules"). Along the trajectory ``h_{t+1} = α h_t + (1-α)(W_h
relu(h_t) + W_x x_t)`` the Jacobian of one step is

    J_t = ∂h_{t+1}/∂h_t = α I + (1-α) W_h diag(f'(h_t)),     f'(h) = 1[h > 0]

Starting from k fixed orthonormal columns ``Q_0`` (QR of a Gaussian matrix drawn with seed 0;
a generic start, since a unit vector on a silent ReLU unit would never leave it), every step

    Q_{t+1} R_t = J_t Q_t          (QR; R's diagonal taken in absolute value)
    λ_i = 1/(T - warmup) Σ_{t >= warmup} log |R_t[i, i]|       (nats per time step)

averaged over the trials of the batch. ``max LE`` is λ_1. For k = 1 the QR step is a
normalisation: ``γ_t = ‖J_t q_t‖``, ``q_{t+1} = J_t q_t / γ_t``, ``λ_1 = mean log γ_t``.

Shapes: params as in model.py, x (T, E, B, n_in); returns (E, k). Everything is
differentiable, so gradient flossing can descend on it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from neurosim.model import Params, step


def initial_tangent(N: int, k: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """Q_0 (N, k): orthonormal columns, the same for every network and call."""
    g = torch.Generator().manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(N, k, generator=g, dtype=torch.float64))
    return Q.to(dtype)


def jacobian_times(W_h: Tensor, h: Tensor, Q: Tensor, alpha: float) -> Tensor:
    """``J_t Q`` for W_h (E, N, N), h_t (E, B, N), Q (E, B, N, k) → (E, B, N, k)."""
    fprime = (h > 0).to(Q.dtype).unsqueeze(-1)
    return alpha * Q + (1 - alpha) * torch.einsum("eij,ebjk->ebik", W_h, fprime * Q)


def lyapunov_spectrum(
    params: Params, x: Tensor, *, alpha: float, k: int = 1, warmup: int = 0,
    detach_trajectory: bool = False, detach_tangent: bool = False,
) -> Tensor:
    """The k largest Lyapunov exponents (E, k) in nats per step; see the module docstring.

    ``detach_trajectory`` / ``detach_tangent`` cut the gradient through ``h_t`` / ``Q_t``
    (the ``local`` flossing variant uses both, leaving only J_t's explicit W_h).
    """
    T, E, B, _ = x.shape
    N = params.n_hidden
    if not 1 <= k <= N:
        raise ValueError(f"k must be in [1, {N}], got {k}")
    if not 0 <= warmup < T:
        raise ValueError(f"warmup must be in [0, {T - 1}], got {warmup}")
    h = x.new_zeros(E, B, N)
    Q = initial_tangent(N, k, x.dtype).expand(E, B, N, k)
    total = x.new_zeros(E, B, k)
    for t in range(T):
        h_in = h.detach() if detach_trajectory else h
        Q_in = Q.detach() if detach_tangent else Q
        JQ = jacobian_times(params.W_h, h_in, Q_in, alpha)
        if k == 1:
            gamma = JQ.norm(dim=2)  # (E, B, 1)
            Q, log_r = JQ / gamma.unsqueeze(2), gamma.log()
        else:
            Q, R = torch.linalg.qr(JQ)
            log_r = R.diagonal(dim1=-2, dim2=-1).abs().log()
        if t >= warmup:
            total = total + log_r
        h = step(params, h, x[t], alpha)
    return (total / (T - warmup)).mean(1)


def max_lyapunov(params: Params, x: Tensor, *, alpha: float, warmup: int = 0) -> Tensor:
    """The largest Lyapunov exponent λ_1 (E,) in nats per step, no gradient."""
    with torch.no_grad():
        return lyapunov_spectrum(params, x, alpha=alpha, k=1, warmup=warmup)[:, 0]
