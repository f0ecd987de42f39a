"""Both rules by autograd through :func:`neurosim.model.run`: the second implementation the
tests hold the explicit ones against (and the form the paper's code used)."""

from __future__ import annotations

import torch
from torch import Tensor

from neurosim.model import Params, masked_mse, readout, run


def autograd_gradients(
    params: Params, x: Tensor, target: Tensor, mask: Tensor, *, alpha: float, detach_recurrent: bool
) -> tuple[Tensor, Params]:
    """Loss (E,) and its autograd gradient; ``detach_recurrent`` cuts the gradient through
    ``r_t`` into W_h r_t, which turns BPTT into e-prop (symmetric feedback).

    Each network's loss depends only on its own parameters, so the gradient of the summed
    loss is every network's own gradient.
    """
    with torch.enable_grad():
        p = params.map(lambda w: w.detach().requires_grad_())
        h = run(p, x, alpha, detach_recurrent=detach_recurrent)
        loss = masked_mse(readout(p, h), target, mask)
        grads = torch.autograd.grad(loss.sum(), p)
    return loss.detach(), Params(*grads)


def bptt_gradients_autograd(
    params: Params, x: Tensor, target: Tensor, mask: Tensor, *, alpha: float
) -> tuple[Tensor, Params]:
    """The exact gradient by autograd."""
    return autograd_gradients(params, x, target, mask, alpha=alpha, detach_recurrent=False)


def eprop_gradients_autograd(
    params: Params, x: Tensor, target: Tensor, mask: Tensor, *, alpha: float
) -> tuple[Tensor, Params]:
    """The e-prop gradient (symmetric feedback) as autograd with ``r_t.detach()``."""
    return autograd_gradients(params, x, target, mask, alpha=alpha, detach_recurrent=True)
