"""Element-wise optimisers over ensemble-stacked parameters, with one learning rate per network.

Adam (Kingma & Ba 2015, the same update and defaults as ``torch.optim.Adam``) and plain SGD.
Both act element by element, so a network updates the same alone or inside an ensemble;
``lr`` is a tensor (E,) so one ensemble can hold a whole learning-rate grid. An lr schedule
(:data:`LR_DECAYS`) scales every network's lr by the same factor of the step number; where the
lr is a shift (the fixed-point engine and its float partner) the schedule moves in powers of two
(:func:`decay_shift`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from neurosim.model import Params

OPTIMIZERS = ("adam", "sgd")
LR_DECAYS = ("none", "cosine")
MAX_DECAY_SHIFT = 6  # a power-of-two schedule stops at lr · 2^-6


def lr_factor(decay: str, step: int, total: int) -> float:
    """The lr multiplier of update ``step`` (0-based) of ``total``: 1 for ``none``; for
    ``cosine`` ``½(1 + cos(π·step/total))``, from 1 at the first update towards 0 at the last."""
    if decay == "none":
        return 1.0
    if decay == "cosine":
        return 0.5 * (1 + math.cos(math.pi * step / total))
    raise ValueError(f"unknown lr decay {decay!r}; choose one of {', '.join(LR_DECAYS)}")


def decay_shift(decay: str, step: int, total: int) -> int:
    """The schedule of a shift learning rate: the k >= 0 whose 2^-k is nearest to
    :func:`lr_factor` on a log scale (k = round(-log2 factor)), at most :data:`MAX_DECAY_SHIFT`.
    The lr of update ``step`` is then ``lr · 2^-k``: the shift grows by k."""
    factor = lr_factor(decay, step, total)
    if factor <= 2.0 ** -MAX_DECAY_SHIFT:  # also keeps log2 away from a factor of 0
        return MAX_DECAY_SHIFT
    return round(-math.log2(factor))  # < MAX_DECAY_SHIFT here


class Optimizer:
    """``step(params, grads) -> new params``; ``frozen`` (E,) bool networks are left unchanged.

    ``decay`` over ``total`` steps scales the lr per :func:`lr_factor` (``total`` is needed
    only for a decay other than ``none``), or with ``pow2`` by ``2^-``:func:`decay_shift`.
    """

    def __init__(self, kind: str, lr: Tensor, betas=(0.9, 0.999), eps: float = 1e-8, *,
                 decay: str = "none", total: int = 1, pow2: bool = False):
        if kind not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {kind!r}; choose one of {', '.join(OPTIMIZERS)}")
        lr_factor(decay, 0, total)  # validates decay
        self.kind, self.lr, self.betas, self.eps = kind, lr, betas, eps
        self.decay, self.total, self.pow2 = decay, total, pow2
        self.t = 0  # updates made: Adam's bias-correction step and the schedule's clock
        self.m: list[Tensor] | None = None
        self.v: list[Tensor] | None = None

    def step(self, params: Params, grads: Params, frozen: Tensor | None = None) -> Params:
        """One update. Tensors are (E, ...); lr broadcasts over the trailing axes."""
        if frozen is not None and frozen.any():
            keep = (~frozen).to(grads[0])  # dtype and device of the gradients
            grads = Params(*(torch.nan_to_num(g) * keep.view(-1, *[1] * (g.dim() - 1)) for g in grads))
        if self.pow2:
            factor = 2.0 ** -decay_shift(self.decay, self.t, self.total)
        else:
            factor = lr_factor(self.decay, self.t, self.total)
        self.t += 1
        if self.kind == "sgd":
            return Params(*(w - self._lr(w, factor) * g for w, g in zip(params, grads, strict=True)))
        b1, b2 = self.betas
        if self.m is None:
            self.m = [torch.zeros_like(g) for g in grads]
            self.v = [torch.zeros_like(g) for g in grads]
        c1, c2 = 1 - b1**self.t, 1 - b2**self.t
        new = []
        for k, (w, g) in enumerate(zip(params, grads, strict=True)):
            # the moments are ours alone, so they update in place; each line rounds exactly as
            # m = β1 m + (1-β1) g, v = β2 v + (1-β2) g g, w - lr m̂ / (√v̂ + eps) would
            self.m[k].mul_(b1).add_((1 - b1) * g)
            self.v[k].mul_(b2).add_((1 - b2) * g * g)
            denom = (self.v[k] / c2).sqrt_().add_(self.eps)
            new.append(w - (self._lr(w, factor) * (self.m[k] / c1)).div_(denom))  # w is never mutated
        return Params(*new)

    def _lr(self, w: Tensor, factor: float) -> Tensor:
        lr = self.lr.to(w.dtype).view(-1, *[1] * (w.dim() - 1))
        return lr if factor == 1.0 else lr * factor

    def state(self) -> dict:  # copies: the moments mutate
        return {"t": self.t, "m": _copy(self.m), "v": _copy(self.v)}

    def load_state(self, state: dict) -> None:
        self.t, self.m, self.v = state["t"], state["m"], state["v"]


def _copy(tensors: list[Tensor] | None) -> list[Tensor] | None:
    return None if tensors is None else [t.clone() for t in tensors]
