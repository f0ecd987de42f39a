"""The Python API behind the commands: each CLI command is one call here."""

from __future__ import annotations

from pathlib import Path

from neurosim.config import TrainConfig
from neurosim.plots import plot_learning_curves
from neurosim.results import check_output_dir, write_run
from neurosim.train import Progress, RunResult, train


def run_training(config: TrainConfig, out: Path, *, force: bool = False,
                 progress: Progress | None = None) -> tuple[Path, RunResult]:
    """Train ``config`` and write its run directory (curves, summary, figures) to ``out``.

    The output location is checked before training starts, and the directory appears only
    once complete.
    """
    check_output_dir(out, force=force)
    result = train(config, progress=progress)

    def figures(d: Path) -> None:
        plot_learning_curves(result.curves, d / "learning_curve.png",
                             title=f"{config.task}, {config.rule}: mean ± std over seeds")

    return write_run(out, result, figures=figures, force=force), result
