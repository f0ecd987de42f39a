"""``neurosim export-spec``: sample the golden trials of a task, build the spec export
(:func:`hw_models.spec.build_export`) and write its folder atomically.

The split keeps hw_models free of the simulator's tasks and files: it computes an export from
arrays; this module chooses the arrays and owns the output folder (:mod:`neurosim.outputs`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from hw_models.checks import check_int
from hw_models.profile import Profile, load_profile
from hw_models.spec import SpecError, build_export, check_export
from neurosim.outputs import atomic_dir, claim_output, write_files
from neurosim.resources import task_shape
from neurosim.tasks import TASKS, get_task


def task_inputs(task: str, trials: int, steps: int | None, seed: int):
    """``trials`` trials of ``task`` (one batch, seeded), cut to ``steps`` steps, binary64:
    x (T, trials, n_in), target (T, trials, n_out), mask (T, trials)."""
    batch = get_task(task).sample(trials, torch.Generator().manual_seed(seed))
    return tuple(a.to(torch.float64)[:steps] if steps is not None else a.to(torch.float64) for a in batch)


def _check(task: str, n_hidden: int, trials: int, steps: int | None, gain: float, seed: int) -> None:
    if task not in TASKS:
        raise SpecError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if steps is not None:  # checked before `steps or ...` below turns a 0 into the whole trial
        check_int("--steps", steps, 1, error=SpecError)
    check_export(n_hidden, trials, steps or task_shape(task, 0.5)[0], gain, seed)


def spec_files(profile: str | Profile, *, n_hidden: int = 8, task: str = "romo", gain: float = 1.0,
               trials: int = 2, steps: int | None = None, seed: int = 0,
               alpha: float = 0.5) -> dict[str, str | bytes]:
    """The export's files in memory for ``trials`` trials of ``task`` (seed ``seed``)."""
    _check(task, n_hidden, trials, steps, gain, seed)
    return build_export(profile, inputs=task_inputs(task, trials, steps, seed), task=task,
                        n_hidden=n_hidden, gain=gain, seed=seed, alpha=alpha)


def export_spec(profile: str | Profile, out: str | Path, *, n_hidden: int = 8, task: str = "romo",
                gain: float = 1.0, trials: int = 2, steps: int | None = None, seed: int = 0,
                force: bool = False) -> Path:
    """Write the weight-update spec folder for ``profile`` into ``out``.

    Raises an :class:`~neurosim.errors.InputError` (ProfileError, OutputError, ExactnessError,
    SpecError) on bad input, before anything is written."""
    _check(task, n_hidden, trials, steps, gain, seed)
    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    with claim_output(out, force=force) as out:
        files = spec_files(prof, n_hidden=n_hidden, task=task, gain=gain, trials=trials, steps=steps,
                           seed=seed)
        with atomic_dir(out, replace=True) as tmp:
            write_files(tmp, files)
    return out
