"""Neurogym tasks through the real ``neurogym`` package (default settings).

``2af`` is ``PerceptualDecisionMaking-v0`` and ``dms`` is ``DelayMatchSample-v0``
(Molano-Mazón et al., NeuroGym, https://github.com/neurogym/neurogym). Trials come from the
environment's own ``new_trial``; class labels become one-hot targets over the action space
(fixation included); the mask is 1 on every step of a trial and 0 on padding.
neurogym seeds itself randomly, so each stream seeds its environment explicitly.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor

ENV_IDS = {"2af": "PerceptualDecisionMaking-v0", "dms": "DelayMatchSample-v0"}


def _make_env(env_id: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import neurogym

        return neurogym.make(env_id).unwrapped


class NeurogymTask:
    """A neurogym environment as a batch sampler: x (T, B, n_in), target (T, B, n_out), mask (T, B)."""

    def __init__(self, name: str):
        self.name = name
        self.env_id = ENV_IDS[name]
        probe = _make_env(self.env_id)
        self.n_in = int(probe.observation_space.shape[0])
        self.n_out = int(probe.action_space.n)
        self._env = probe

    @property
    def transient_steps(self) -> int:
        """Steps whose Jacobian is taken at h = 0: only J_0 (neurogym's fixation cue is an
        input from step 0, so h_1 != 0)."""
        return 1

    @property
    def n_steps(self) -> int:
        """Steps of one trial (of a seed-0 trial: the default timings are fixed)."""
        return self.sample(1, torch.Generator().manual_seed(0))[0].shape[0]

    def sample(self, batch: int, rng: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """One batch of trials, drawn from an environment seeded from ``rng``."""
        env = self._env
        env.seed(int(torch.randint(2**31 - 1, (1,), generator=rng)))
        obs, labels = [], []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(batch):
                env.new_trial()
                obs.append(np.asarray(env.ob, dtype=np.float32))
                labels.append(np.asarray(env.gt, dtype=np.int64))
        T = max(len(o) for o in obs)
        x = torch.zeros(T, batch, self.n_in)
        target = torch.zeros(T, batch, self.n_out)
        mask = torch.zeros(T, batch)
        for b, (o, g) in enumerate(zip(obs, labels, strict=True)):
            n = len(o)
            x[:n, b] = torch.from_numpy(o)
            target[torch.arange(n), b, torch.from_numpy(g)] = 1.0
            mask[:n, b] = 1.0
        return x, target, mask
