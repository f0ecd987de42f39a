"""``neurosim sweep``, ``neurosim plot`` and ``neurosim reproduce``: typer commands over
:func:`neurosim.sweep.run_sweep`, :func:`neurosim.plots_sweep.plot_results` and
:func:`neurosim.api.reproduce_experiment`. Register them with ``app.command()(fn)``.

Bad input (an unknown grid key, an empty grid list, an invalid value, an unknown experiment,
an unusable output) raises :class:`~neurosim.errors.InputError` before any training starts,
which ``neurosim.cli.main`` answers with one line and exit code 2. Failed cells exit 1.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated

import typer

from neurosim.errors import InputError, Interrupted
from neurosim.report import progress_bar

Opt = typer.Option
Executor = Annotated[str, Opt(help="local (worker processes), dask (--scheduler) or serial (this process)")]
Scheduler = Annotated[str | None, Opt(help="Dask scheduler address, e.g. tcp://10.0.0.1:8786 "
                                         "[default: none; --executor dask needs one]")]
Workers = Annotated[int, Opt(help="local worker processes (one torch thread each)")]
Resume = Annotated[bool, Opt("--resume/--no-resume", help="continue --out, skipping finished cells")]
Force = Annotated[bool, Opt(help="with --no-resume: replace a non-empty --out")]


def sweep(
    config: Annotated[Path | None, typer.Argument(help="sweep file (TOML)")] = None,
    grid: Annotated[list[str] | None, Opt("--grid", help="KEY=V1,V2,…: a grid axis (repeat) "
                                                            "[default: the file's grid]")] = None,
    set_: Annotated[list[str] | None, Opt("--set", help="KEY=VALUE: a fixed value (repeat) "
                                                           "[default: the file's values]")] = None,
    quick: Annotated[bool, Opt(help="apply the quick table of the file")] = False,
    out: Annotated[Path | None, Opt(help="sweep directory [default: runs/sweep-NAME]")] = None,
    executor: Executor = "local",
    scheduler: Scheduler = None,
    workers: Workers = 2,
    resume: Resume = True,
    force: Force = False,
    plot: Annotated[bool, Opt("--plot/--no-plot", help="write figures when done")] = True,
) -> None:
    """Train the cartesian product of a grid, one ensemble per cell, into one sweep directory."""
    from neurosim.grid import SweepError, load_sweep, parse_assignments
    from neurosim.sweep import run_sweep

    overrides = parse_assignments(grid or [], set_ or [])
    if config is None:
        if quick:
            raise SweepError("--quick needs a sweep file with a quick table")
        name = "grid-" + hashlib.sha1(json.dumps(overrides, sort_keys=True).encode()).hexdigest()[:8]
        spec = load_sweep({}, overrides=overrides, name=name)
    else:
        spec = load_sweep(config, quick=quick, overrides=overrides)
    out = out or Path("runs") / f"sweep-{spec.name}{'-quick' if quick else ''}"
    result = _run(lambda **kw: (run_sweep(spec, out, **kw), None), executor=executor, scheduler=scheduler,
                  workers=workers, resume=resume, force=force)
    if plot:
        from neurosim.plots_sweep import plot_results

        _report_figures(plot_results(out))
    typer.echo(f"sweep written to {result.out}")


def plot(
    path: Annotated[Path, typer.Argument(help="a sweep or run directory")],
    out: Annotated[Path | None, Opt(help="folder for the figures [default: PATH/figures]")] = None,
    format: Annotated[list[str] | None, Opt("--format", help="png and/or svg; repeat for both "
                                             "[default: both]")] = None,
    start: Annotated[int, Opt("--from", help="first iteration drawn in learning curves (the paper "
                                             "draws from 200)")] = 0,
    figure: Annotated[list[str] | None, Opt("--figure", help="learning_curves, le_vs_gain, "
                                            "final_loss_vs_gain, final_loss_heatmap; repeat "
                                            "[default: all that apply]")] = None,
) -> None:
    """Learning curves at the best lr, max LE vs gain, final loss vs gain (3+ gains) and, with
    bits, a final-loss heatmap: PNG (200 dpi) and SVG."""
    from neurosim.plots import FORMATS
    from neurosim.plots_sweep import FIGURES, plot_results

    if start < 0:
        raise InputError(f"--from must be an iteration >= 0, got {start}")
    _report_figures(plot_results(path, out=out, formats=tuple(format or FORMATS), start=start,
                                 names=tuple(figure or FIGURES)))


def reproduce(
    name: Annotated[str, typer.Argument(help="fig1, fig2, … (neurosim/experiments/NAME.toml) or a path")],
    quick: Annotated[bool, Opt(help="a small CI-sized version (the quick table of the file)")] = False,
    out: Annotated[Path | None, Opt(help="sweep directory [default: runs/reproduce-NAME]")] = None,
    executor: Executor = "local",
    scheduler: Scheduler = None,
    workers: Workers = 2,
    resume: Resume = True,
    force: Force = False,
) -> None:
    """Reproduce a paper figure: run its experiment through the sweep machinery and plot it."""
    from neurosim.api import reproduce_experiment
    from neurosim.grid import experiment_path

    stem = experiment_path(name).stem
    out = out or Path("runs") / f"reproduce-{stem}{'-quick' if quick else ''}"
    result = _run(lambda **kw: reproduce_experiment(name, out, quick=quick, **kw), executor=executor,
                  scheduler=scheduler, workers=workers, resume=resume, force=force)
    typer.echo(f"{stem} reproduced in {result.out}")


def _run(call, **kw):
    """Call the API with a progress bar over cells and one line per finished cell."""
    try:
        with progress_bar("sweep cells") as advance:
            result, figures = call(progress=advance, on_cell=lambda o: typer.echo(cell_line(o)), **kw)
    except KeyboardInterrupt:
        raise Interrupted("interrupted; finished cells are kept (and a cell in training is "
                          "checkpointed): rerun the same command to resume") from None
    if figures:
        _report_figures(figures)
    if result.failed:
        typer.echo(f"error: {len(result.failed)} of {len(result.outcomes)} cells failed "
                   f"(first: {result.failed[0].error}); see {result.out / 'manifest.json'}; rerun to retry",
                   err=True)
        raise typer.Exit(1)
    return result


def cell_line(outcome) -> str:
    """One line per finished cell: its id, networks, time and lowest mean final loss."""
    c = outcome.cell
    if outcome.status == "failed":
        return f"failed  {c.id}: {outcome.error}"
    means: dict[tuple, list[float]] = {}
    for r in outcome.summary:
        if not r["diverged"]:
            means.setdefault((r["backend"], r["gain"], r["lr"]), []).append(r["final_loss"])
    best = min(means.items(), key=lambda kv: sum(kv[1]) / len(kv[1]), default=None)
    networks = len({(r["gain"], r["lr"], r["seed"]) for r in outcome.summary})
    text = f"{outcome.status:7s} {c.id}: {networks} networks"
    if outcome.status == "done":
        text += f" in {outcome.seconds:.1f} s"
    if best:
        (backend, gain, lr), vals = best
        text += f", best mean final loss {sum(vals) / len(vals):.3g} ({backend}, gain {gain}, lr {lr:g})"
    return text


def _report_figures(paths: list[Path]) -> None:
    for p in paths:
        typer.echo(f"figure {p}")
