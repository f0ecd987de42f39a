"""Backends the training loop steps: float rules with an optimiser, and the fixed-point engine.

A backend has ``name``, ``bits``, ``profile``, ``train_step(x, target, mask, frozen) -> loss (E,)``
(the loss of the outputs before the update), ``params() -> Params``, ``counters() -> dict``
(saturations per signal, (E,) each) and ``lr_label(lr) -> float``. With a precision (``bits``
or ``profile``) a run pairs the engine with float SGD at the same learning rate, same seeds and
batches, so the gap is precision alone.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from neurosim.model import Params
from neurosim.optim import Optimizer
from neurosim.rules import gradients
from neurosim.rules.flossing import flossing_gradients


class Backend(Protocol):
    name: str
    bits: int | None
    profile: str | None

    def train_step(self, x: Tensor, target: Tensor, mask: Tensor, frozen: Tensor) -> Tensor: ...
    def floss_step(self, x: Tensor, *, k: int, variant: str, warmup: int) -> Tensor: ...
    def params(self) -> Params: ...
    def counters(self) -> dict[str, Tensor]: ...
    def network_stats(self) -> dict[str, Tensor]: ...
    def lr_label(self, lr: float) -> float: ...
    def state(self) -> dict: ...
    def load_state(self, state: dict) -> None: ...


class FloatBackend:
    """A float learning rule (``bptt``/``eprop``) with Adam or SGD, one lr per network."""

    bits = None
    profile = None

    def __init__(self, params: Params, *, rule: str, alpha: float, optimizer: str, lr: Tensor,
                 feedback: Tensor | None = None, name: str = "float", lr_override: float | None = None,
                 lr_decay: str = "none", iters: int = 1, pow2_decay: bool = False,
                 floss_lr: float | None = None):
        """``lr_decay`` schedules the training lr over ``iters`` updates (in powers of two with
        ``pow2_decay``, as the engine's shift); flossing keeps its own optimiser (moments and a
        constant lr: ``floss_lr`` for every network, or each network's task lr when None)."""
        self.name, self.rule, self.alpha, self.feedback = name, rule, alpha, feedback
        self.lr_override = lr_override  # a run-wide lr that replaces the config's in the labels
        self._params = params
        self.optimizer = Optimizer(optimizer, lr, decay=lr_decay, total=iters, pow2=pow2_decay)
        self.floss_optimizer = Optimizer(optimizer, lr if floss_lr is None else torch.full_like(lr, floss_lr))

    def train_step(self, x, target, mask, frozen=None) -> Tensor:
        loss, grads = gradients(self._params, x, target, mask, rule=self.rule, alpha=self.alpha,
                                feedback=self.feedback)
        self._params = self.optimizer.step(self._params, grads, frozen)
        return loss

    def floss_step(self, x, *, k: int, variant: str, warmup: int) -> Tensor:
        """One gradient-flossing update of W_h; returns the flossing loss (E,)."""
        loss, grads = flossing_gradients(self._params, x, alpha=self.alpha, k=k, variant=variant,
                                         warmup=warmup)
        self._params = self.floss_optimizer.step(self._params, grads)
        return loss

    def params(self) -> Params:
        return self._params

    def counters(self) -> dict[str, Tensor]:
        return {}

    def network_stats(self) -> dict[str, Tensor]:
        return {}

    def lr_label(self, lr: float) -> float:
        return self.lr_override if self.lr_override is not None else lr

    def state(self) -> dict:
        return {"params": self._params, "optimizer": self.optimizer.state(),
                "floss_optimizer": self.floss_optimizer.state()}

    def load_state(self, state: dict) -> None:
        self._params = Params(*state["params"])
        self.optimizer.load_state(state["optimizer"])
        self.floss_optimizer.load_state(state["floss_optimizer"])


def random_feedback(seeds: list[int], n_hidden: int, n_out: int) -> Tensor:
    """Fixed random feedback B (E, N, n_out), ``U(±1/√N)`` like W_outᵀ, seeded per network."""
    mats = []
    for s in seeds:
        g = torch.Generator().manual_seed(10_000_019 + s)  # a stream apart from the init's
        mats.append((torch.rand(n_hidden, n_out, generator=g, dtype=torch.float64) * 2 - 1) / n_hidden**0.5)
    return torch.stack(mats).float()
