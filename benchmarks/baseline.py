"""The straightforward way: one network at a time, nn.Linear layers, autograd through a
detached recurrent input — how the paper's code implemented e-prop. Not part of neurosim; it
is the reference point of the ``vs_plain_pytorch`` benchmark.

    h_{t+1} = α h_t + (1-α)(W_h r_t.detach() + W_x x_t),   y_t = W_out relu(h_{t+1})
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class PlainRNN(nn.Module):
    """A leaky ReLU RNN the way a PyTorch tutorial writes it, one network, (T, B, ·) tensors."""

    def __init__(self, n_in: int, n_hidden: int, n_out: int, gain: float, alpha: float):
        super().__init__()
        self.alpha = alpha
        self.W_x = nn.Linear(n_in, n_hidden, bias=False)
        self.W_h = nn.Linear(n_hidden, n_hidden, bias=False)
        self.W_out = nn.Linear(n_hidden, n_out, bias=False)
        nn.init.normal_(self.W_h.weight, std=gain / n_hidden**0.5)

    def forward(self, x: Tensor) -> Tensor:
        h = x.new_zeros(x.shape[1], self.W_h.in_features)
        ys = []
        for t in range(x.shape[0]):
            r = torch.relu(h).detach()  # e-prop: no gradient through the recurrent input
            h = self.alpha * h + (1 - self.alpha) * (self.W_h(r) + self.W_x(x[t]))
            ys.append(self.W_out(torch.relu(h)))
        return torch.stack(ys)


def plain_eprop_trainer(n_in: int, n_hidden: int, n_out: int, *, alpha: float, lr: float = 1e-3,
                        seed: int = 0):
    """A ``step(x, target, mask) -> loss`` closure training one :class:`PlainRNN` with Adam."""
    torch.manual_seed(seed)
    net = PlainRNN(n_in, n_hidden, n_out, gain=1.0, alpha=alpha)
    opt = torch.optim.Adam(net.parameters(), lr=lr)

    def step(x: Tensor, target: Tensor, mask: Tensor) -> float:
        opt.zero_grad()
        y = net(x)
        loss = 0.5 * (((y - target) ** 2).sum(-1) * mask).sum() / mask.sum().clamp_min(1)
        loss.backward()
        opt.step()
        return loss.item()

    return step
