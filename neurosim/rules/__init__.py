"""Learning rules in float: ``gradients(params, x, target, mask, *, rule, alpha, feedback)``."""

from __future__ import annotations

from torch import Tensor

from neurosim.model import Params
from neurosim.rules.autograd import bptt_gradients_autograd, eprop_gradients_autograd
from neurosim.rules.bptt import bptt_gradients
from neurosim.rules.eprop import eprop_gradients

RULES = ("bptt", "eprop")


def gradients(
    params: Params,
    x: Tensor,
    target: Tensor,
    mask: Tensor,
    *,
    rule: str,
    alpha: float,
    feedback: Tensor | None = None,
) -> tuple[Tensor, Params]:
    """Loss (E,) and gradients shaped like ``params`` for ``rule`` in :data:`RULES`.

    ``feedback`` (E, N, n_out) is e-prop's fixed random B; ``None`` is symmetric ``W_outᵀ``.
    """
    if rule == "bptt":
        if feedback is not None:
            raise ValueError("feedback applies to rule 'eprop' only")
        return bptt_gradients(params, x, target, mask, alpha=alpha)
    if rule == "eprop":
        return eprop_gradients(params, x, target, mask, alpha=alpha, feedback=feedback)
    raise ValueError(f"unknown rule {rule!r}; choose one of {', '.join(RULES)}")


__all__ = ["RULES", "gradients", "bptt_gradients", "bptt_gradients_autograd", "eprop_gradients",
           "eprop_gradients_autograd"]
