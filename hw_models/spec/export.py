"""``build_export``: spec.json, DATASHEET.md, golden vectors and the C model, in memory.

Layout of the output directory::

    spec.json        the versioned document (schema: hw_models/spec_schema.json)
    DATASHEET.md     the same for people, with the cost estimate
    golden.npz       every golden array (see hw_models.spec.golden)
    golden/*.hex     the same arrays, one $readmemh file per signal
    c/               eprop_ref.h (generated), eprop_ref.c, eprop_driver.c

:func:`neurosim.spec_export.export_spec` samples the task, calls :func:`build_export` and writes
the folder atomically: hw_models samples no task and writes no file.
"""

from __future__ import annotations

import io
import json

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


class SpecError(InputError):
    """Bad export-spec input (sizes, task, gain); the message names the option."""


MAX_GOLDEN_VALUES = 2**28  # recorded values (each kept as int64, hex text and npz): ~8 GiB


def check_export(n_hidden: int, trials: int, steps: int, gain: float, seed: int = 0) -> None:
    """The export's own ranges, and a bound on its size: every step records the N x N
    accumulators of two matrices and the (N,) signals."""
    check_int("--n-hidden", n_hidden, 1, error=SpecError)
    check_int("--trials", trials, 1, error=SpecError)
    check_int("--steps", steps, 1, error=SpecError)
    check_seed("--seed", seed, error=SpecError)
    check_gain("--gain", gain, error=SpecError)
    values = trials * steps * (3 * n_hidden * n_hidden + 20 * n_hidden)
    if values > MAX_GOLDEN_VALUES:
        raise SpecError(f"golden vectors of N={n_hidden}, {trials} trials of {steps} steps would record "
                        f"~{values:.2g} values (limit {MAX_GOLDEN_VALUES:.2g}); use a smaller --n-hidden, "
                        "fewer --trials or --steps")


def build_export(profile: str | Profile, *, inputs, task: str, n_hidden: int = 8, gain: float = 1.0,
                 seed: int = 0, alpha: float = 0.5) -> dict[str, str | bytes]:
    """Every file of the export (relative path → text or bytes), computed in memory, from the
    task trials ``inputs = (x, target, mask)`` (see :func:`~hw_models.spec.golden.run_golden`)
    of the task named ``task``."""
    T, trials = inputs[0].shape[:2]
    check_export(n_hidden, trials, T, gain, seed)
    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    run = run_golden(prof, inputs=inputs, n_hidden=n_hidden, gain=gain, seed=seed, alpha=alpha)
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
