"""Worst-case magnitudes of the engine's exact intermediate sums, and the check against 2^53.

The engine's carrier is float64: integers are exact below ``2^53``, and a sum of exact
integer products is exact whatever the summation order as long as every partial sum stays
below ``2^53``. With ``M(f)`` the largest ``|code|`` of format ``f`` and ``2^d`` the exact
left shift that aligns two terms to a common fraction, the bounds are (one per exact sum):

    I      N·M(W_h)·M(r)·2^d1 + n_in·M(W_x)·M(x)·2^d2          W_h r + W_x x
    h_mix  α_c·M(h) + β_c·M(h)                                  α h + (1-α) I
    eps    α_c·M(eps)·2^d1 + β_c·M(r)·2^d2                      α ε + (1-α) r   (same for x)
    y      N·M(W_out)·M(r)                                      W_out r
    L      n_out·M(W_out)·M(e)                                  B e   (B in W_out's format)
    G      B_batch·max(M(L)·M(eps), M(e)·M(r))                  Σ_b L ⊗ ε, Σ_b e ⊗ r
    acc    2·M(acc)                                             acc + Q(G)
    W      2·M(W)                                               W − ΔW

``α_c + β_c = 2^A`` are the leak codes. Weight fractions may differ per network (per-matrix
power-of-two scales), so ``d`` is the largest over the ensemble. ``G`` grows with the batch
size: the engine reports the largest batch that stays exact (``max_batch``).
"""

from __future__ import annotations

import math

import torch

from hw_models.errors import InputError
from hw_models.profile import Formats

LIMIT = 2.0**53


class ExactnessError(InputError):
    """A profile whose worst-case intermediate sums could exceed 2^53 (float64 not exact)."""


def _align(fa: torch.Tensor, fb: torch.Tensor) -> tuple[float, float]:
    """Largest left shifts (as powers of two) of terms a and b to their common fraction."""
    F = torch.maximum(fa, fb)
    return float(2.0 ** (F - fa).max()), float(2.0 ** (F - fb).max())


def worst_case_bounds(
    f: Formats,
    frac: dict[str, torch.Tensor],
    sizes: tuple[int, int, int],
    alpha_c: int,
    beta_c: int,
) -> dict[str, float]:
    """Bounds of every exact sum above; ``frac`` maps ``W_h``, ``W_x`` (E,) to effective
    fractions; ``sizes`` is (N, n_in, n_out). ``G`` is per batch element."""
    N, n_in, n_out = sizes
    M = {name: float(getattr(f, name).max_abs_code) for name in Formats.__dataclass_fields__}
    t = torch.as_tensor
    d1, d2 = _align(frac["W_h"] + f.r.frac, frac["W_x"] + f.x.frac)
    e1, e2 = _align(t(float(f.eps.frac)), t(float(f.r.frac)))
    x1, x2 = _align(t(float(f.eps.frac)), t(float(f.x.frac)))
    return {
        "I": N * M["W_h"] * M["r"] * d1 + n_in * M["W_x"] * M["x"] * d2,
        "h_mix": (alpha_c + beta_c) * M["h"],
        "eps": max(alpha_c * M["eps"] * e1 + beta_c * M["r"] * e2,
                   alpha_c * M["eps"] * x1 + beta_c * M["x"] * x2),
        "y": N * M["W_out"] * M["r"],
        "L": n_out * M["W_out"] * M["e"],
        "G": max(M["L"] * M["eps"], M["e"] * M["r"]),
        "acc": 2 * M["acc"],
        "W": 2 * max(M["W_h"], M["W_x"], M["W_out"]),
    }


def check_bounds(bounds: dict[str, float], where: str) -> None:
    """Raise :class:`ExactnessError` naming the first worst-case sum that reaches 2^53."""
    for name, b in bounds.items():
        if b >= LIMIT:
            raise ExactnessError(
                f"{where}: worst-case |{name}| sum is 2^{math.log2(b):.1f} >= 2^53, so the "
                "float64 carrier would not be exact; use narrower formats or a smaller network"
            )


def check_exact(bounds: dict[str, float], where: str) -> int:
    """Raise :class:`ExactnessError` if a bound reaches 2^53; return the largest exact batch."""
    check_bounds({k: v for k, v in bounds.items() if k != "G"}, where)
    max_batch = int((LIMIT - 1) // bounds["G"])
    if max_batch < 1:
        raise ExactnessError(
            f"{where}: worst-case gradient product is 2^{math.log2(bounds['G']):.1f} >= 2^53, "
            "so the float64 carrier would not be exact; use narrower formats"
        )
    return max_batch
