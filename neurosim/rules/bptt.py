"""Backpropagation through time: the exact gradient of the masked MSE by autograd."""

from __future__ import annotations

import torch
from torch import Tensor

from neurosim.model import Params, masked_mse, readout, run


def bptt_gradients(
    params: Params, x: Tensor, target: Tensor, mask: Tensor, *, alpha: float
) -> tuple[Tensor, Params]:
    """Loss (E,) and its exact gradient, shaped like ``params``. Batch shapes as in model.py."""
    return autograd_gradients(params, x, target, mask, alpha=alpha, detach_recurrent=False)


def autograd_gradients(
    params: Params, x: Tensor, target: Tensor, mask: Tensor, *, alpha: float, detach_recurrent: bool
) -> tuple[Tensor, Params]:
    """Autograd of the loss; ``detach_recurrent`` cuts the gradient through ``r_t`` into W_h r_t.

    Each network's loss depends only on its own parameters, so the gradient of the summed
    loss is every network's own gradient.
    """
    with torch.enable_grad():
        p = params.map(lambda w: w.detach().requires_grad_())
        h = run(p, x, alpha, detach_recurrent=detach_recurrent)
        loss = masked_mse(readout(p, h), target, mask)
        grads = torch.autograd.grad(loss.sum(), p)
    return loss.detach(), Params(*grads)
