"""Task registry: ``get_task(name, **kw)`` returns a sampler of ``(x, target, mask)`` batches.

Every task has ``name``, ``n_in``, ``n_out``, ``n_steps`` (of the longest trial) and
``sample(batch, rng) -> (x, target, mask)``
with shapes (T, B, n_in), (T, B, n_out), (T, B). :class:`BatchStream` stacks one stream per
ensemble member into (T, E, B, ·), so a network sees the same trials alone or in an ensemble.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from neurosim.tasks.ngym import ENV_IDS, NeurogymTask
from neurosim.tasks.romo import Romo

TASKS = ("romo", *ENV_IDS)


def get_task(name: str, *, dt: float = 0.5):
    """The task called ``name`` (one of :data:`TASKS`); ``dt`` in units of τ (Romo only)."""
    if name == "romo":
        return Romo(dt=dt)
    if name in ENV_IDS:
        return NeurogymTask(name)
    raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")


class BatchStream:
    """Per-member batch streams: member e draws from a generator seeded with ``seeds[e]``."""

    def __init__(self, task, batch: int, seeds: Sequence[int]):
        self.task, self.batch = task, batch
        self._rngs = [torch.Generator().manual_seed(int(s)) for s in seeds]

    def next(self) -> tuple[Tensor, Tensor, Tensor]:
        """x (T, E, B, n_in), target (T, E, B, n_out), mask (T, E, B); shorter trials padded."""
        parts = [self.task.sample(self.batch, rng) for rng in self._rngs]
        T = max(p[0].shape[0] for p in parts)
        return tuple(torch.stack([_pad_time(p[i], T) for p in parts], 1) for i in range(3))

    def state(self) -> list[Tensor]:
        """The generators' states: restoring them replays the same batches."""
        return [rng.get_state() for rng in self._rngs]

    def load_state(self, state: list[Tensor]) -> None:
        for rng, s in zip(self._rngs, state, strict=True):
            rng.set_state(s)


def _pad_time(a: Tensor, T: int) -> Tensor:
    """Zero-pad the leading time axis of ``a`` to length T."""
    return torch.nn.functional.pad(a, (0, 0) * (a.dim() - 1) + (0, T - a.shape[0]))
