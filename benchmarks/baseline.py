"""The straightforward way, for comparison only: one network at a time, ``nn.Linear`` layers,
e-prop as autograd through ``hidden.detach()`` on the recurrent input, ``torch.optim.Adam`` —
as the paper's code implemented it. Not part of the package."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def straightforward_eprop_iteration(N: int, *, seed: int, alpha: float = 0.5,
                                    lr: float = 1e-3) -> Callable:
    """A closure ``step(x (T, B, 1), y (T, B, 2), m (T, B))`` doing one training iteration."""
    torch.manual_seed(seed)
    W_h, W_x, W_out = nn.Linear(N, N, bias=False), nn.Linear(1, N, bias=False), nn.Linear(N, 2, bias=False)
    params = [*W_h.parameters(), *W_x.parameters(), *W_out.parameters()]
    opt = torch.optim.Adam(params, lr=lr)

    def step(x, y, m):
        h = torch.zeros(x.shape[1], N)
        outs = []
        for t in range(x.shape[0]):
            h = alpha * h + (1 - alpha) * (W_h(torch.relu(h).detach()) + W_x(x[t]))
            outs.append(W_out(torch.relu(h)))
        out = torch.stack(outs)
        loss = 0.5 * (((out - y) ** 2).sum(-1) * m).sum() / m.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return step
