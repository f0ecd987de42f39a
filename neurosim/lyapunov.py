r"""Lyapunov spectrum of the task-driven RNN by the QR method.

Equations (DESIGN.md, "Learning rules"). The trajectory is the model's own, ``h_0 = 0`` and

    h_{t+1} = α h_t + (1-α)(W_h relu(h_t) + W_x x_t),        t = 0 .. T-1

so the Jacobian of step t (the one that consumes x_t) is evaluated at the state *before* it:

    J_t = ∂h_{t+1}/∂h_t = α I + (1-α) W_h diag(f'(h_t)),     f'(h) = 1[h > 0]

(at t = 0, h_0 = 0 and J_0 = αI). Starting from k fixed orthonormal columns ``Q_0`` (see
:func:`initial_tangent`), every step takes a sign-corrected QR decomposition

    J_t Q_t = Q_{t+1} R_t,      diag(R_t) >= 0        (columns of Q flipped where R_ii < 0)
    λ_i = 1/T' Σ_{t=warmup}^{T-1} log R_t[i, i],       T' = T - warmup      (nats per step)

The tangent vectors evolve during the warm-up (they align with the leading directions) but
those steps are not averaged. λ is averaged over the B trials of the batch. ``max LE`` = λ_1.
For k = 1 the QR step is a normalisation: ``γ_t = ‖J_t q_t‖``, ``q_{t+1} = J_t q_t / γ_t``,
``λ_1 = 1/T' Σ log γ_t``.

Two stated rules, so that no exponent is a silent NaN or a drifted number:

- α must be in (0, 1). With α = 0 (dt = τ) the zero initial state gives ``J_0 = 0``: every
  tangent vector is annihilated, log 0 = -inf, and the normalised q is NaN. That is refused
  (:class:`LyapunovError`, also raised by :class:`~neurosim.config.TrainConfig` for dt = τ).
- A network whose trajectory leaves the finite float range (a float32 state that overflows,
  e.g. gain >= 1.5 over long inputs, or non-finite weights) gets λ = NaN: past an overflow the
  state is inf/NaN, ``1[h > 0]`` turns false, ``J_t`` becomes αI and λ would drift toward
  log α unnoticed. :func:`finite_trajectory` reports which networks that is.

Differentiability: the exponents are differentiable in W_h through every J_t and through the
tangent vectors Q_t (torch's QR has a backward pass). Because f = relu has f'' = 0 almost
everywhere, J_t depends on the trajectory only through the activation pattern 1[h_t > 0],
which is piecewise constant: the trajectory (and so W_x, x) carries no gradient.

Shapes: params as in :mod:`neurosim.model`, x (T, E, B, n_in); the spectrum is (E, k).
"""

from __future__ import annotations

import torch
from torch import Tensor

from neurosim.errors import InputError
from neurosim.model import Params, step


class LyapunovError(InputError):
    """The exponents are undefined for this request (α outside (0, 1))."""


def check_alpha(alpha: float) -> None:
    """Refuse α outside (0, 1): α = 0 makes J_0 = 0 at h_0 = 0 (see module docstring)."""
    if not 0 < alpha < 1:
        raise LyapunovError(f"Lyapunov exponents need 0 < alpha < 1 (0 < dt < tau), got alpha={alpha}: "
                            "with alpha = 0 the first Jacobian J_0 = alpha*I is zero and every "
                            "exponent is -inf")


def initial_tangent(N: int, k: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """Q_0 (N, k): orthonormal columns, the same for every network and every call.

    The QR of a Gaussian (N, k) matrix drawn with seed 0: a generic start. Identity columns
    would not do: a unit vector on a unit that stays silent is an eigenvector of every J_t
    (``J_t e_j = α e_j``) and would report log α instead of the leading exponent.
    """
    g = torch.Generator().manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(N, k, generator=g, dtype=torch.float64))
    return Q.to(dtype)


def jacobian_times(W_h: Tensor, h: Tensor, Q: Tensor, alpha: float) -> Tensor:
    """``J_t Q`` for W_h (E, N, N), h_t (E, B, N), Q (E, B, N, k) → (E, B, N, k)."""
    fprime = (h > 0).to(Q.dtype).unsqueeze(-1)
    return alpha * Q + (1 - alpha) * torch.einsum("eij,ebjk->ebik", W_h, fprime * Q)


def qr_positive(A: Tensor) -> tuple[Tensor, Tensor]:
    """Sign-corrected reduced QR of A (..., N, k): ``Q`` (..., N, k) and ``diag R`` >= 0 (..., k).

    LAPACK leaves the signs of R's diagonal free; flipping the matching columns of Q makes the
    decomposition unique, so Q_t does not jump in sign from step to step.
    """
    Q, R = torch.linalg.qr(A)
    r = R.diagonal(dim1=-2, dim2=-1)
    sign = torch.where(r < 0, -1.0, 1.0).to(A.dtype).detach()
    return Q * sign.unsqueeze(-2), r * sign


def lyapunov_spectrum(
    params: Params, x: Tensor, *, alpha: float, k: int = 1, warmup: int = 0,
    detach_trajectory: bool = False, detach_tangent: bool = False,
) -> Tensor:
    """The k largest Lyapunov exponents (E, k) in nats per step; see the module docstring.

    x (T, E, B, n_in). ``detach_trajectory`` / ``detach_tangent`` cut the gradient through
    ``h_t`` / ``Q_t``; the ``local`` flossing variant uses both, leaving only J_t's explicit
    dependence on W_h. (For relu the trajectory carries no gradient anyway; the flag states
    the intent and keeps the variant right if f changes.)
    """
    T, E, B, _ = x.shape
    N = params.n_hidden
    if not 1 <= k <= N:
        raise ValueError(f"k must be in [1, {N}], got {k}")
    if not 0 <= warmup < T:
        raise ValueError(f"warmup must be in [0, {T - 1}], got {warmup}")
    check_alpha(alpha)
    h = x.new_zeros(E, B, N)
    finite = torch.isfinite(params.W_h).flatten(1).all(1)  # (E,)
    Q = initial_tangent(N, k, x.dtype).to(x.device).expand(E, B, N, k)
    total = x.new_zeros(E, B, k)
    for t in range(T):
        h_t = h.detach() if detach_trajectory else h
        Q_t = Q.detach() if detach_tangent else Q
        JQ = jacobian_times(params.W_h, h_t, Q_t, alpha)
        if k == 1:
            gamma = JQ.norm(dim=2)  # (E, B, 1)
            Q, r = JQ / gamma.unsqueeze(2), gamma
        else:
            Q, r = qr_positive(JQ)
        if t >= warmup:
            total = total + r.log()
        h = step(params, h, x[t], alpha)  # h_{t+1}: J_{t+1} is evaluated here
        finite = finite & torch.isfinite(h.detach()).flatten(1).all(1)
    lam = (total / (T - warmup)).mean(1)
    return torch.where(finite.view(E, 1), lam, torch.full_like(lam, float("nan")))


def finite_trajectory(params: Params, x: Tensor, *, alpha: float) -> Tensor:
    """(E,) bool: the network's weights and every state h_1 .. h_T along x (T, E, B, n_in) are
    finite; where False, the exponents of this module are NaN by rule."""
    with torch.no_grad():
        h = x.new_zeros(x.shape[1], x.shape[2], params.n_hidden)
        ok = torch.isfinite(params.W_h).flatten(1).all(1)
        for t in range(x.shape[0]):
            h = step(params, h, x[t], alpha)
            ok = ok & torch.isfinite(h).flatten(1).all(1)
    return ok


def max_lyapunov(params: Params, x: Tensor, *, alpha: float, warmup: int = 0) -> Tensor:
    """The largest Lyapunov exponent λ_1 (E,) in nats per step; a metric, so no gradient."""
    with torch.no_grad():
        return lyapunov_spectrum(params, x, alpha=alpha, k=1, warmup=warmup)[:, 0]
