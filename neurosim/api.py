"""The Python API behind the commands: each CLI command is one call here."""

from __future__ import annotations

from pathlib import Path

from neurosim.config import ConfigError, TrainConfig
from neurosim.fixed_backend import resolve_profile
from neurosim.grid import experiment_path, load_sweep
from neurosim.outputs import OutputError, claim_output
from neurosim.plots import describe, plot_learning_curves
from neurosim.plots_sweep import plot_results
from neurosim.results import checkpoint_path, load_run, refuse_profile_change, write_run
from neurosim.sweep import SweepResult, run_sweep
from neurosim.training import Progress, RunResult, train


def run_training(config: TrainConfig, out: Path, *, force: bool = False, resume: bool = False,
                 checkpoint_every: int = 200, progress: Progress | None = None) -> tuple[Path, RunResult]:
    """Train ``config`` and write its run directory (curves, summary, figures) to ``out``.

    The output location is checked and locked before training starts (:mod:`neurosim.outputs`),
    the directory appears only once complete, and until then a checkpoint beside it is refreshed
    every ``checkpoint_every`` iterations (and on Ctrl-C). With ``resume`` a run killed at any
    point continues from its checkpoint and ends exactly as an uninterrupted one (a run already
    complete is loaded, not redone); a changed configuration or precision profile is refused.
    Without it an old checkpoint is discarded.
    """
    with claim_output(out, force=force, existing_ok=resume) as out:
        ckpt = checkpoint_path(out)
        if ckpt.is_dir() or ckpt.is_symlink():
            raise OutputError(f"{ckpt} is in the way of the run's checkpoint (not a file neurosim wrote); "
                              "remove it")
        if resume and out.is_dir() and any(out.iterdir()):
            return out, _completed(out, config)
        if not resume:
            ckpt.unlink(missing_ok=True)
        result = train(config, progress=progress, checkpoint=ckpt, checkpoint_every=checkpoint_every)

        def figures(d: Path) -> None:
            train_rows = [r for r in result.curves if r["phase"] == "train"]
            plot_learning_curves(train_rows, d / "learning_curves.png",
                                 title=f"{describe('task', config.task)}, {describe('rule', config.rule)}")

        write_run(out, result, figures=figures, replace=True)
        ckpt.unlink(missing_ok=True)
    return out, result


def _completed(out: Path, config: TrainConfig) -> RunResult:
    """The finished run in ``out``, if it is one of ``config`` with the same profile."""
    if not (out / "summary.json").is_file():
        raise OutputError(f"output {out} exists and is not a complete run; --resume continues only a "
                          "neurosim run (remove the folder, or choose another --out)")
    done = load_run(out)
    try:
        same = TrainConfig.from_dict(done["config"]) == config
    except (ConfigError, TypeError) as err:
        raise ConfigError(f"{out}/config.json is damaged: {err}") from None
    if not same:
        raise ConfigError(f"{out} holds a run of a different configuration")
    refuse_profile_change(done.get("profile"), _profile(config), str(out), "rerun without --resume")
    return RunResult(config, done["curves"], done["summary"], profile=done.get("profile"))


def _profile(config: TrainConfig) -> dict | None:
    return resolve_profile(config).to_dict() if config.fixed_point else None


def reproduce_experiment(name: str, out: Path, *, quick: bool = False,
                         **run) -> tuple[SweepResult, list[Path]]:
    """Run a shipped experiment (``neurosim/experiments/NAME.toml``, or a TOML path) through
    :func:`~neurosim.sweep.run_sweep` (``run``: its keyword arguments), then plot it; the result
    and figures."""
    result = run_sweep(load_sweep(experiment_path(name), quick=quick), out, **run)
    return result, ([] if result.failed else plot_results(out))
