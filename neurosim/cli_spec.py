"""``neurosim export-spec`` (the weight-update spec folder), ``neurosim verify-spec`` (its C
model, built and compared) and ``neurosim cost`` (memory, operations and energy of a profile).
Thin shells over :func:`neurosim.spec_export.export_spec`, :func:`hw_models.spec.verify.verify_spec` and
:func:`hw_models.cost.cost_report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Opt = typer.Option


def export_spec(
    profile: Annotated[str, Opt(help="a named profile or a TOML path")],
    out: Annotated[Path, Opt(help="output directory")],
    n_hidden: Annotated[int, Opt(help="hidden units N of the golden network; 8, not "
                                      "train's and cost's 64, keeps the golden vectors small enough "
                                      "to read and step through by hand")] = 8,
    task: Annotated[str, Opt(help="task of the golden trials: romo, 2af or dms")] = "romo",
    gain: Annotated[float, Opt(help="initial gain of W_h")] = 1.0,
    trials: Annotated[int, Opt(help="golden trials (batch 1, one update schedule each)")] = 2,
    steps: Annotated[int | None, Opt(help="cut each trial to its first STEPS steps "
                                             "[default: whole trials]")] = None,
    seed: Annotated[int, Opt(help="seed of the trials, the weights and the rounding draws")] = 0,
    force: Annotated[bool, Opt(help="replace a non-empty --out")] = False,
) -> None:
    """Write spec.json, DATASHEET.md, golden vectors and the bit-exact C model of a profile."""
    from neurosim.spec_export import export_spec as export

    path = export(profile, out, n_hidden=n_hidden, task=task, gain=gain, trials=trials, steps=steps,
                  seed=seed, force=force)
    typer.echo(f"spec written to {path} (build the C model: cd {path}/c && "
               "cc -O2 -std=c99 eprop_ref.c eprop_driver.c -lm -o eprop_ref)")


def verify_spec(
    folder: Annotated[Path, typer.Argument(help="a folder written by export-spec")],
) -> None:
    """Build the folder's C model with cc, run it on the golden inputs, compare every output:
    one verdict line per signal; exit 0 only when every signal is bit-exact, 1 on a mismatch."""
    from hw_models.spec.verify import verify_spec as verify

    verdicts = verify(folder)
    for v in verdicts:
        typer.echo(v.line())
    bad = sum(not v.ok for v in verdicts)
    typer.echo(f"verdict: {'bit-exact' if not bad else f'MISMATCH in {bad} of {len(verdicts)} signals'}")
    if bad:
        raise typer.Exit(1)


def cost(
    profile: Annotated[list[str] | None, Opt(help="a named profile or a TOML path; repeat to compare "
                                            "several [default: every shipped profile]")] = None,
    n_hidden: Annotated[int, Opt(help="hidden units N; 64 as in training (export-spec's default N = 8 "
                                      "keeps its golden files small)")] = 64,
    csv: Annotated[Path | None, Opt(help="also write the comparison, one row per profile, as CSV "
                                         "[default: none]")] = None,
    force: Annotated[bool, Opt(help="replace an existing --csv file")] = False,
) -> None:
    """Memory bits, operations per step and update, and an energy estimate (Horowitz 2014): one
    profile in detail, or a Markdown table comparing several (naming each one's dominant memory)."""
    from hw_models.cost import comparison, cost_report, cost_table_markdown
    from hw_models.spec.export import SpecError
    from neurosim.results import write_csv

    if n_hidden < 1:
        raise SpecError(f"--n-hidden must be an integer >= 1, got {n_hidden}")
    if csv is not None:
        _check_csv(csv, force)
    if profile is not None and len(profile) == 1:
        typer.echo(cost_report(profile[0], n_hidden))
    else:
        typer.echo(cost_table_markdown(n_hidden, profile))
    if csv is not None:
        from hw_models.profile import list_profiles

        write_csv(csv, comparison(profile or list_profiles(), n_hidden))
        typer.echo(f"comparison written to {csv}")


def _check_csv(path: Path, force: bool) -> None:
    """Refuse a --csv path that cannot become a new plain file before anything is computed:
    a folder, a device, a pipe or a link is never replaced (the write renames a new file over
    the path), an existing file only with ``force``."""
    import os

    from neurosim.outputs import OutputError

    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise OutputError(f"--csv {path} is not a plain file (a folder, device, pipe or link); "
                          "give a new file path")
    if path.exists() and not force:
        raise OutputError(f"--csv {path} exists; pass --force to replace it")
    if not path.parent.is_dir():
        raise OutputError(f"--csv {path}: the folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise OutputError(f"--csv {path}: the folder {path.parent} cannot be written")
