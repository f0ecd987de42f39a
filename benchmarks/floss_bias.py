"""``python -m benchmarks.floss_bias``: what integer local flossing costs against float local flossing.

For each gain: E networks (seeds 0..E-1 of one ``init_params`` ensemble, N hidden units) and
one fixed input batch x (T, E, B, 2) ~ N(0, 1). Two runs of ``--iters`` flossing iterations
from the same initial weights and at the same learning rate 2^-lr_shift:

- integer: :meth:`hw_models.FixedPointEngine.floss_step` (hw_models/flossing.py, F1..F13);
- float: the local rule :func:`neurosim.rules.flossing.flossing_gradients` (IEEE sqrt and
  division), plain SGD ``W_h -= lr · ∂λ_1²/∂W_h`` in float64.

Printed per gain: the λ_1 bias of the integer estimate (F10) against the float local rule's
λ_1 on the same (quantized) weights and inputs, mean ± std over every network and iteration;
and |max LE| (QR method, :func:`neurosim.lyapunov.max_lyapunov`) before and after the
iterations for both runs, mean ± std over the E networks.
"""

from __future__ import annotations

import argparse

import torch

from hw_models import FixedPointEngine, load_profile
from hw_models.profile import apply_overrides
from neurosim.lyapunov import max_lyapunov
from neurosim.model import init_params
from neurosim.rules.flossing import flossing_gradients, local_floss_grad_k1


def study(gain: float, *, E: int, N: int, T: int, B: int, iters: int, lr_shift: int,
          profile: str) -> dict[str, torch.Tensor]:
    """Bias (E·iters,), |max LE| (E,) before, after integer and after float flossing."""
    params = init_params(2, N, 2, gain, ensemble=E, seed=0, dtype=torch.float64)
    x = torch.randn(T, E, B, 2, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    eng = FixedPointEngine(apply_overrides(load_profile(profile), lr_shift=lr_shift), params, alpha=0.5)
    start = eng.params()
    bias = []
    for _ in range(iters):
        lam_float, _ = local_floss_grad_k1(eng.params(), x, alpha=0.5)
        rec: dict = {}
        eng.floss_step(x, record=rec)
        bias.append(rec["lam"] * 2.0**-eng.profile.formats.floss_gain.frac - lam_float)  # F10's λ_1
    W = start
    for _ in range(iters):
        _, grad = flossing_gradients(W, x, alpha=0.5, variant="local")
        W = W._replace(W_h=W.W_h - 2.0**-lr_shift * grad.W_h)
    le = lambda P: max_lyapunov(P, x, alpha=0.5).abs()  # noqa: E731
    return {"bias": torch.cat(bias), "before": le(start), "integer": le(eng.params()), "float": le(W)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.floss_bias", description=__doc__)
    ap.add_argument("--gains", type=float, nargs="+", default=[0.2, 2.0])
    ap.add_argument("--E", type=int, default=5)
    ap.add_argument("--N", type=int, default=32)
    ap.add_argument("--T", type=int, default=40)
    ap.add_argument("--B", type=int, default=4)
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--lr-shift", type=int, default=1)
    ap.add_argument("--profile", default="int16")
    a = ap.parse_args(argv)
    print(f"profile {a.profile}, lr 2^-{a.lr_shift}, E={a.E} seeds, N={a.N}, T={a.T}, B={a.B}, "
          f"{a.iters} iterations; mean ± std")
    print("| gain | λ₁ bias (int − float), nats | |max LE| before | after integer | after float |")
    print("|---:|---:|---:|---:|---:|")
    for gain in a.gains:
        r = study(gain, E=a.E, N=a.N, T=a.T, B=a.B, iters=a.iters, lr_shift=a.lr_shift,
                  profile=a.profile)
        cell = lambda v: f"{float(v.mean()):.4f} ± {float(v.std()):.4f}"  # noqa: E731
        print(f"| {gain} | {cell(r['bias'])} | {cell(r['before'])} | {cell(r['integer'])} "
              f"| {cell(r['float'])} |")


if __name__ == "__main__":
    main()
