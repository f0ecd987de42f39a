"""One training loop for every backend (float rules, fixed-point engine).

:func:`train` builds the ensemble described by a :class:`TrainConfig` (gains × lrs × seeds, one
network each), draws each seed's batches once, and steps every backend on the same batches.
It returns a :class:`RunResult` with tidy learning curves and a per-network summary; it does
not touch files (``neurosim.results`` does) and reports progress only through a callback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from neurosim.backends import Backend, make_backends
from neurosim.config import TrainConfig
from neurosim.model import Params, alpha_from, init_params
from neurosim.tasks import BatchStream, get_task

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Member:
    """One network of the ensemble."""

    gain: float
    lr: float
    seed: int


@dataclass
class RunResult:
    """What a run produced: config, tidy curve rows, one summary row per network × backend."""

    config: TrainConfig
    curves: list[dict]
    summary: list[dict]
    params: dict[str, Params] = field(default_factory=dict)


def members(config: TrainConfig) -> list[Member]:
    """The ensemble in a fixed order: gain-major, then lr, then seed."""
    return [
        Member(g, lr, config.seed + s)
        for g in config.gains
        for lr in config.lrs
        for s in range(config.seeds)
    ]


def train(config: TrainConfig, progress: Progress | None = None) -> RunResult:
    """Train the ensemble of ``config`` with every backend it names; see module docstring."""
    task = get_task(config.task, dt=config.dt / config.tau)
    alpha = alpha_from(config.dt, config.tau)
    ens = members(config)
    seeds = sorted({m.seed for m in ens})
    seed_index = torch.tensor([seeds.index(m.seed) for m in ens])
    stream = BatchStream(task, config.batch, seeds)
    params = init_params(
        task.n_in, config.n_hidden, task.n_out,
        [m.gain for m in ens], ensemble=len(ens), seed=[m.seed for m in ens],
    )
    backends = make_backends(
        config, params, alpha, torch.tensor([m.lr for m in ens]), [m.seed for m in ens]
    )
    tracker = {b.name: _Tracker(len(ens), config.final_window) for b in backends}
    curves: list[dict] = []
    for it in range(config.iters):
        x, target, mask = (a[:, seed_index] for a in stream.next())
        for b in backends:
            loss = b.train_step(x, target, mask, frozen=tracker[b.name].diverged)
            tracker[b.name].update(it, loss)
            if it % config.log_every == 0 or it == config.iters - 1:
                curves += _rows(config, ens, b, it, loss, tracker[b.name])
        if progress:
            progress(it + 1, config.iters)
    summary = [
        row for b in backends for row in _summary_rows(config, ens, b, tracker[b.name])
    ]
    return RunResult(config, curves, summary, {b.name: b.params() for b in backends})


class _Tracker:
    """Per-network divergence flags and the losses of the last ``window`` iterations."""

    def __init__(self, E: int, window: int):
        self.diverged = torch.zeros(E, dtype=torch.bool)
        self.diverged_at = [None] * E
        self.window = window
        self.recent: list[Tensor] = []

    def update(self, it: int, loss: Tensor) -> None:
        bad = ~torch.isfinite(loss) & ~self.diverged
        for e in bad.nonzero().flatten().tolist():
            self.diverged_at[e] = it
        self.diverged |= bad
        self.recent = (self.recent + [loss.detach().double()])[-self.window:]

    def final_loss(self) -> Tensor:
        return torch.stack(self.recent).mean(0)


def _labels(config: TrainConfig, m: Member, backend: Backend) -> dict:
    return {
        "backend": backend.name, "rule": config.rule, "task": config.task, "gain": m.gain,
        "bits": backend.bits, "profile": backend.profile, "flossing": config.floss_label,
        "lr": backend.lr_label(m.lr), "seed": m.seed,
    }


def _rows(config, ens, backend, it, loss, tracker) -> list[dict]:
    return [
        {**_labels(config, m, backend), "phase": "train", "iteration": it, "loss": float(loss[e])}
        for e, m in enumerate(ens)
        if not tracker.diverged[e] or tracker.diverged_at[e] == it
    ]


def _summary_rows(config, ens, backend, tracker) -> list[dict]:
    final = tracker.final_loss()
    counters = backend.counters()
    return [
        {
            **_labels(config, m, backend),
            "final_loss": float("nan") if tracker.diverged[e] else float(final[e]),
            "diverged": bool(tracker.diverged[e]),
            "diverged_at": tracker.diverged_at[e],
            **{f"sat_{k}": v for k, v in counters.items()},
        }
        for e, m in enumerate(ens)
    ]

