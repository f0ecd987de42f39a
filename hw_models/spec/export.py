"""``export_spec``: spec.json, DATASHEET.md, golden vectors and the C model, written atomically.

Layout of the output directory::

    spec.json        the versioned document (schema: hw_models/spec_schema.json)
    DATASHEET.md     the same for people, with the cost estimate
    golden.npz       every golden array (see hw_models.spec.golden)
    golden/*.hex     the same arrays, one $readmemh file per signal
    c/               eprop_ref.h (generated), eprop_ref.c, eprop_driver.c

Everything is computed first and written into a temporary sibling directory that replaces
``out`` only when complete (:func:`neurosim.outputs.atomic_dir`), so a failure leaves nothing.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from hw_models._exactness import ExactnessError
from hw_models.checks import check_gain, check_int, check_seed
from hw_models.cost import estimate
from hw_models.errors import InputError
from hw_models.operations import all_ops, max_shift_problem
from hw_models.profile import Profile, load_profile
from hw_models.spec.c_model import c_header, c_sources
from hw_models.spec.datasheet import datasheet
from hw_models.spec.document import build_spec, golden_manifest
from hw_models.spec.golden import hex_files, run_golden
from neurosim.outputs import atomic_dir, claim_output, write_files
from neurosim.tasks import TASKS, get_task


class SpecError(InputError):
    """Bad export-spec input (sizes, task, gain); the message names the option."""


MAX_GOLDEN_VALUES = 2**28  # recorded values (each kept as int64, hex text and npz): ~8 GiB


def _check(n_hidden: int, task: str, gain: float, trials: int, steps: int | None, seed: int = 0) -> None:
    check_int("--n-hidden", n_hidden, 1, error=SpecError)
    check_int("--trials", trials, 1, error=SpecError)
    if steps is not None:
        check_int("--steps", steps, 1, error=SpecError)
    check_seed("--seed", seed, error=SpecError)
    if task not in TASKS:
        raise SpecError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    check_gain("--gain", gain, error=SpecError)
    # every step records the N x N accumulators of two matrices and the (N,) signals
    values = trials * (steps or get_task(task).n_steps) * (3 * n_hidden * n_hidden + 20 * n_hidden)
    if values > MAX_GOLDEN_VALUES:
        raise SpecError(f"golden vectors of N={n_hidden}, {trials} trials of {steps or 'all'} steps would "
                        f"record ~{values:.2g} values (limit {MAX_GOLDEN_VALUES:.2g}); use a smaller "
                        "--n-hidden, fewer --trials or --steps")


def build_export(profile: str | Profile, *, n_hidden: int = 8, task: str = "romo", gain: float = 1.0,
                 trials: int = 2, steps: int | None = None, seed: int = 0,
                 alpha: float = 0.5) -> dict[str, str | bytes]:
    """Every file of the export (relative path → text or bytes), computed in memory."""
    _check(n_hidden, task, gain, trials, steps, seed)
    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    run = run_golden(prof, n_hidden=n_hidden, task=task, gain=gain, trials=trials, steps=steps,
                     seed=seed, alpha=alpha)
    problem = max_shift_problem(all_ops(run.net, run.steps))
    if problem:
        raise ExactnessError(f"profile {prof.name!r}: {problem}; the integer reference supports right "
                             "shifts up to 62 bits (53 with stochastic rounding): use a smaller lr_shift "
                             "or narrower accumulator fraction")
    cost = estimate(prof, n_hidden, steps=run.steps, net=run.net)
    spec = build_spec(run, task=task, gain=gain, seed=seed, files=golden_manifest(run),
                      cost=cost.to_dict())
    buf = io.BytesIO()
    np.savez(buf, **run.arrays)
    files: dict[str, str | bytes] = {
        "spec.json": json.dumps(spec, indent=1, ensure_ascii=False) + "\n",
        "DATASHEET.md": datasheet(spec, cost),
        "golden.npz": buf.getvalue(),
    }
    files.update({f"golden/{name}": text for name, text in hex_files(run).items()})
    title = f"profile {prof.name}, N={n_hidden}, T={run.steps}, {run.trials} trials, seed {seed}"
    files["c/eprop_ref.h"] = c_header(run.net, steps=run.steps, trials=run.trials,
                                      network_seed=run.network_seed,
                                      title=title, floss_iters=run.floss_iters)
    files.update({f"c/{name}": text for name, text in c_sources().items()})
    return files


def export_spec(profile: str | Profile, out: str | Path, *, n_hidden: int = 8, task: str = "romo",
                gain: float = 1.0, trials: int = 2, steps: int | None = None, seed: int = 0,
                force: bool = False) -> Path:
    """Write the weight-update spec folder for ``profile`` into ``out`` (see the module docstring).

    Raises an :class:`~neurosim.errors.InputError` (ProfileError, OutputError, ExactnessError,
    SpecError) on bad input, before anything is written."""
    out = Path(out)
    _check(n_hidden, task, gain, trials, steps, seed)
    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    with claim_output(out, force=force) as out:
        files = build_export(prof, n_hidden=n_hidden, task=task, gain=gain, trials=trials, steps=steps,
                             seed=seed)
        with atomic_dir(out, replace=True) as tmp:
            write_files(tmp, files)
    return out
