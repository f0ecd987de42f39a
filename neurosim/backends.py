"""Backends the training loop steps: float rules with an optimiser, and the fixed-point engine.

A backend has ``name``, ``bits``, ``profile``, ``train_step(x, target, mask, frozen) -> loss (E,)``
(the loss of the outputs before the update), ``params() -> Params``, ``counters() -> dict`` and
``lr_label(lr) -> float``. With a precision (``bits`` or ``profile``) a run pairs the engine with
float SGD at the same learning rate, same seeds and batches, so the gap is precision alone.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from neurosim.config import TrainConfig
from neurosim.model import Params
from neurosim.optim import Optimizer
from neurosim.rules import gradients


class Backend(Protocol):
    name: str
    bits: int | None
    profile: str | None

    def train_step(self, x: Tensor, target: Tensor, mask: Tensor, frozen: Tensor) -> Tensor: ...
    def params(self) -> Params: ...
    def counters(self) -> dict: ...
    def lr_label(self, lr: float) -> float: ...


class FloatBackend:
    """A float learning rule (``bptt``/``eprop``) with Adam or SGD, one lr per network."""

    bits = None
    profile = None

    def __init__(self, params: Params, *, rule: str, alpha: float, optimizer: str, lr: Tensor,
                 feedback: Tensor | None = None, name: str = "float"):
        self.name, self.rule, self.alpha, self.feedback = name, rule, alpha, feedback
        self._params = params
        self.optimizer = Optimizer(optimizer, lr)

    def train_step(self, x, target, mask, frozen=None) -> Tensor:
        loss, grads = gradients(self._params, x, target, mask, rule=self.rule, alpha=self.alpha,
                                feedback=self.feedback)
        self._params = self.optimizer.step(self._params, grads, frozen)
        return loss

    def params(self) -> Params:
        return self._params

    def counters(self) -> dict:
        return {}

    def lr_label(self, lr: float) -> float:
        return lr


def random_feedback(seeds: list[int], n_hidden: int, n_out: int) -> Tensor:
    """Fixed random feedback B (E, N, n_out), ``U(±1/√N)`` like W_outᵀ, seeded per network."""
    mats = []
    for s in seeds:
        g = torch.Generator().manual_seed(10_000_019 + s)  # a stream apart from the init's
        mats.append((torch.rand(n_hidden, n_out, generator=g, dtype=torch.float64) * 2 - 1) / n_hidden**0.5)
    return torch.stack(mats).float()


def make_backends(config: TrainConfig, params: Params, alpha: float, lr: Tensor,
                  seeds: list[int]) -> list[Backend]:
    """The backends of a run: the float rule alone, or float SGD beside the fixed-point engine."""
    feedback = None
    if config.feedback == "random":
        feedback = random_feedback(seeds, params.n_hidden, params.W_out.shape[1])
    if not config.fixed_point:
        return [FloatBackend(params, rule=config.rule, alpha=alpha, optimizer=config.optimizer,
                             lr=lr, feedback=feedback)]
    from neurosim.fixed_backend import fixed_backends

    return fixed_backends(config, params, alpha, feedback)
