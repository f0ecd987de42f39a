"""``neurosim lyapunov``: max Lyapunov exponent vs gain, of a run directory (before and after
training) or of fresh networks; prints mean ± std over seeds and plots the paper's Figure 3."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neurosim.tables import group, mean_std

Opt = typer.Option


def lyapunov(
    run_dir: Annotated[Path | None, typer.Argument(help="a run directory; omit for fresh networks")] = None,
    gain: Annotated[list[float], Opt(help="gains of fresh networks; repeat for several")] = [  # noqa: B006
        0.2, 0.5, 1.0, 1.5, 2.0],
    seeds: Annotated[int, Opt(help="networks per gain")] = 5,
    task: Annotated[str, Opt(help="task whose inputs drive the trajectory")] = "romo",
    n_hidden: Annotated[int, Opt(help="hidden units N")] = 64,
    le_warmup: Annotated[int | None, Opt(help="steps left out of the average [default: 0; for a run "
                                             "directory, the run's own, else recomputed from its "
                                             "params]")] = None,
    plot: Annotated[Path | None, Opt(help="write the figure here (PNG) [default: no figure]")] = None,
) -> None:
    """Max LE vs gain: before/after training for a run directory, or at init for --gain."""
    from neurosim.config import TrainConfig
    from neurosim.plots import plot_le_vs_gain
    from neurosim.results import load_run, load_run_params
    from neurosim.training import initial_max_le, run_max_le

    if run_dir is not None:
        run = load_run(run_dir)
        rows = run["summary"]
        config = TrainConfig.from_dict(run["config"])
        if le_warmup is not None and le_warmup != config.le_warmup:
            rows = run_max_le(config, load_run_params(run_dir), le_warmup)
            typer.echo(f"max LE recomputed from {run_dir}/params.pt with {le_warmup} warm-up steps "
                       f"(stored: {config.le_warmup})")
    else:
        config = TrainConfig(task=task, gain=tuple(gain) if len(gain) > 1 else gain[0], seeds=seeds,
                             n_hidden=n_hidden, le_warmup=le_warmup or 0)
        rows = initial_max_le(config)
    _print_table(rows)
    if plot is not None:
        plot_le_vs_gain(rows, plot)
        typer.echo(f"figure written to {plot}")


def _print_table(rows: list[dict]) -> None:
    groups = group(rows, ("backend", "gain"))
    typer.echo(f"{'backend':<10} {'gain':>6} {'n':>3}  {'max LE before':>18}  {'max LE after':>18}")
    for (backend, gain), rs in sorted(groups.items()):
        cells = []
        for col in ("le_before", "le_after"):
            mean, std, n = mean_std(r[col] for r in rs if r.get(col) is not None)
            cells.append(f"{mean:+.3f} ± {std:.3f}" if n else "—")
        typer.echo(f"{backend:<10} {gain:>6} {len(rs):>3}  {cells[0]:>18}  {cells[1]:>18}")
