"""Resource guard: estimate a run's peak memory up front and refuse what cannot fit.

The estimate counts the large tensors of one training iteration, per network:
states, rates, traces and learning signals over the trial, (T · B · N) values each, and
the parameters with their optimiser moments, (N² + N·n_in + n_out·N) values each. BPTT is
counted at 12 such (T, B, N) tensors (an estimate from when it kept autograd's graph; its
explicit backward now reuses e-prop's buffers, so 12 is generous); e-prop about 8;
the fixed-point engine works in float64 (×2 bytes) and keeps about 14 per step. The factors
are deliberately generous: the guard is there to refuse an ensemble that would be killed for
memory, not to predict RSS to the byte.
"""

from __future__ import annotations

import functools
import os

from neurosim.config import ConfigError, TrainConfig
from neurosim.fixed_backend import check_fixed_point
from neurosim.tasks import get_task

STATE_TENSORS = {"bptt": 12, "eprop": 8, "fixed": 28}
MAX_STEPS = 20_000  # per trial: beyond it dt/tau is almost surely a typo (Romo at dt/tau = 0.0014)
FRACTION_OF_AVAILABLE = 0.8


def available_bytes() -> int:
    """Memory the system reports as available (MemAvailable), or physical memory."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def estimate_bytes(config: TrainConfig, n_steps: int, n_in: int, n_out: int) -> int:
    """Peak bytes of one iteration of ``config`` (see the module docstring)."""
    E = config.networks
    N, B = config.n_hidden, config.batch
    per_net_state = n_steps * B * N * 4 * STATE_TENSORS[config.rule]
    per_net_params = (N * N + N * n_in + n_out * N) * 4 * 4  # weights, grads, two Adam moments
    total = E * (per_net_state + per_net_params)
    if config.fixed_point:
        total += E * (n_steps * B * N * 8 * STATE_TENSORS["fixed"] + per_net_params * 2)
    return total


def check_trial(config: TrainConfig, n_steps: int) -> None:
    """Raise :class:`ConfigError` if a trial of ``n_steps`` is absurdly long or ``le_warmup``
    does not leave a step of it. Machine-independent: sweeps run it for every cell up front."""
    if n_steps > MAX_STEPS:
        raise ConfigError(f"dt/tau = {config.dt / config.tau:.3g} gives {n_steps} steps per trial, more "
                          f"than {MAX_STEPS}; use a larger dt or a smaller tau")
    if config.le_warmup >= n_steps:
        raise ConfigError(f"le_warmup must be below the trial length ({n_steps} steps of "
                          f"{config.task}), got {config.le_warmup}")


def check_memory(config: TrainConfig, n_steps: int, n_in: int, n_out: int) -> None:
    """Raise :class:`ConfigError` with the estimate if the run would not fit in this machine's
    memory (checked where the run trains: a sweep's cells may run on other machines)."""
    need, have = estimate_bytes(config, n_steps, n_in, n_out), available_bytes()
    if need > FRACTION_OF_AVAILABLE * have:
        raise ConfigError(
            f"ensemble too large: {config.networks} networks of N={config.n_hidden}, batch {config.batch}, "
            f"{n_steps} steps need about {need / 2**30:.1f} GiB, {have / 2**30:.1f} GiB available; "
            "use fewer seeds/gains/lrs, a smaller batch or a smaller network"
        )


@functools.cache
def task_shape(task: str, dt: float) -> tuple[int, int, int]:
    """``(steps per trial, n_in, n_out)`` of a task at step ``dt`` (a sampled trial for neurogym)."""
    t = get_task(task, dt=dt)
    return t.n_steps, t.n_in, t.n_out


def check_run(config: TrainConfig, *, memory: bool = True) -> None:
    """Every check a run makes before any work, in one place: ``train`` runs it, and a sweep runs
    it for every cell when it loads (``memory=False``: a Dask worker may have more memory), then
    :func:`check_run_memory` before training on this machine. Raises an InputError subclass."""
    n_steps, n_in, n_out = task_shape(config.task, config.dt / config.tau)
    check_trial(config, n_steps)
    if config.fixed_point:
        check_fixed_point(config, n_in, n_out)
    if memory:
        check_memory(config, n_steps, n_in, n_out)


def check_run_memory(config: TrainConfig) -> None:
    """The memory guard of :func:`check_run` alone (a sweep's cells passed the rest on load)."""
    check_memory(config, *task_shape(config.task, config.dt / config.tau))
