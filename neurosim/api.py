"""The Python API behind the commands: each CLI command is one call here."""

from __future__ import annotations

from pathlib import Path

from neurosim.config import ConfigError, TrainConfig
from neurosim.plots import plot_learning_curves
from neurosim.results import check_output_dir, checkpoint_path, load_run, write_run
from neurosim.train import Progress, RunResult, train


def run_training(config: TrainConfig, out: Path, *, force: bool = False, resume: bool = False,
                 checkpoint_every: int = 200, progress: Progress | None = None) -> tuple[Path, RunResult]:
    """Train ``config`` and write its run directory (curves, summary, figures) to ``out``.

    The output location is checked before training starts, the directory appears only once
    complete, and until then a checkpoint beside it is refreshed every ``checkpoint_every``
    iterations. With ``resume`` a run killed at any point continues from its checkpoint and
    ends exactly as an uninterrupted one (a run already complete is loaded, not redone);
    without it an old checkpoint is discarded.
    """
    out, ckpt = Path(out), checkpoint_path(out)
    if resume and (out / "summary.json").is_file():
        done = load_run(out)
        if TrainConfig.from_dict(done["config"]) != config:
            raise ConfigError(f"{out} holds a run of a different configuration")
        return out, RunResult(config, done["curves"], done["summary"])
    check_output_dir(out, force=force)
    if not resume:
        ckpt.unlink(missing_ok=True)
    result = train(config, progress=progress, checkpoint=ckpt, checkpoint_every=checkpoint_every)

    def figures(d: Path) -> None:
        train_rows = [r for r in result.curves if r["phase"] == "train"]
        plot_learning_curves(train_rows, d / "learning_curve.png",
                             title=f"{config.task}, {config.rule}: mean ± std over seeds")

    write_run(out, result, figures=figures, force=force)
    ckpt.unlink(missing_ok=True)
    return out, result
