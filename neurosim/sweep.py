"""Sweeps: every cell of a grid trained as one ensemble, stored so that a killed sweep resumes.

A sweep directory holds::

    manifest.json         the grid, fixed values, versions, executor, and each cell's status
    cells/<cell-id>/      one run directory per finished cell (config.json, curves.csv,
                          summary.json, params.pt), written atomically: whole or absent
    curves.csv            tidy, all finished cells: one row per network × backend × logged iteration
    summary.csv           one row per network × backend, with a ``best_lr`` flag
    figures/*.png         learning curves at the chosen lr, final-loss heatmap (plots_sweep.py)

Both tables start with ``cell`` (the cell id) and the grid keys that are not run-table columns
already (``n_hidden``, ``feedback``, …), then the run columns (results.CURVE_FIELDS / summary).

The sweep-level tables are rebuilt from the finished cells' directories after every cell, so
they are always consistent, and a sweep killed at any moment (SIGKILL included) and run again
skips its finished cells and ends with exactly the tables of an uninterrupted run. With the
local executors a cell being trained also checkpoints every 200 iterations
(``cells/.<cell-id>.checkpoint.pt``), so a killed long cell continues where it was, bit for bit;
Dask workers may not share the sweep's file system, so their cells restart.

Best learning rate (as the paper chose it): among the networks that differ only in lr and seed,
the lr with the fewest diverged seeds and then the lowest mean final loss over the others.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import platform
import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from neurosim.config import TrainConfig
from neurosim.executors import open_executor
from neurosim.grid import Cell, SweepSpec, experiment_path, label_text, load_sweep
from neurosim.results import (
    CURVE_FIELDS,
    OutputError,
    check_output_dir,
    checkpoint_path,
    read_csv,
    versions,
    write_csv,
    write_json,
    write_run,
)
from neurosim.train import RunResult, train

Progress = Callable[[int, int], None]
NOT_LR = tuple(k for k in CURVE_FIELDS if k not in ("lr", "seed", "phase", "iteration", "loss"))


class SweepLockError(OutputError):
    """Another live sweep is writing to the same directory."""


@dataclass
class CellOutcome:
    """What became of one cell: ``status`` is ``done`` (trained now), ``resumed`` (found on
    disk) or ``failed`` (``error`` says why); ``seconds`` of training, ``summary`` rows."""

    cell: Cell
    status: str
    seconds: float = 0.0
    worker: str = ""
    error: str = ""
    summary: list[dict] = field(default_factory=list)


@dataclass
class SweepResult:
    """A finished (or partly failed) sweep: its directory, cells and rebuilt tables."""

    out: Path
    spec: SweepSpec
    outcomes: list[CellOutcome]
    curves: list[dict]
    summary: list[dict]

    @property
    def failed(self) -> list[CellOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


def train_cell(job: tuple[dict, str | None]) -> tuple[RunResult, dict]:
    """Train one cell (runs on a worker): the result and where/how long it ran. ``job`` is the
    cell's config and its checkpoint path (None: no checkpoints)."""
    import torch

    config, checkpoint = job
    start = time.perf_counter()
    result = train(TrainConfig.from_dict(config), checkpoint=checkpoint and Path(checkpoint))
    meta = {"seconds": time.perf_counter() - start, "worker": f"{platform.node()}:{os.getpid()}",
            "torch_threads": torch.get_num_threads()}
    return result, meta


def run_sweep(grid_config: SweepSpec | Path | str, out: Path, *, executor: str = "local",
              scheduler: str | None = None, workers: int = 2, resume: bool = True, force: bool = False,
              progress: Progress | None = None,
              on_cell: Callable[[CellOutcome], None] | None = None) -> SweepResult:
    """Train every cell of a sweep into ``out`` (see module docstring).

    ``grid_config``: a :class:`SweepSpec` or a sweep TOML path (validated before anything is
    written). With ``resume`` (default) an existing sweep directory is continued: finished cells
    are kept and skipped; without it a non-empty ``out`` is refused unless ``force`` replaces it.
    ``progress(done, total)`` counts cells; ``on_cell`` gets each :class:`CellOutcome`.
    """
    spec = grid_config if isinstance(grid_config, SweepSpec) else load_sweep(grid_config)
    out = Path(out)
    replace = _check_out(out, resume=resume, force=force)
    with open_executor(executor, scheduler=scheduler, workers=workers) as run:
        if replace:
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
        with _locked(out):
            return _run(spec, out, run, {"kind": executor, "scheduler": scheduler, "workers": workers},
                        progress, on_cell)


def _run(spec: SweepSpec, out: Path, run, executor_info: dict, progress: Progress | None,
         on_cell: Callable[[CellOutcome], None] | None) -> SweepResult:
    """The body of :func:`run_sweep` once the directory is locked and the executor open."""
    cells_dir = out / "cells"
    cells_dir.mkdir(exist_ok=True)
    _remove_stale_temporaries(out)
    tables = _Tables(out, spec)
    outcomes: dict[str, CellOutcome] = {}
    for cell in spec.cells:
        if _finished(cells_dir / cell.id, cell.config):
            checkpoint_path(cells_dir / cell.id).unlink(missing_ok=True)  # killed before removal
            outcomes[cell.id] = tables.add(cell, "resumed")
            if on_cell:
                on_cell(outcomes[cell.id])
    pending = [c for c in spec.cells if c.id not in outcomes]
    _write_manifest(out, spec, outcomes, executor_info)
    tables.write()
    total = len(spec.cells)
    if progress:
        progress(len(outcomes), total)
    same_machine = executor_info["kind"] != "dask"
    jobs = [(c.config.to_dict(), str(checkpoint_path(cells_dir / c.id)) if same_machine else None)
            for c in pending]
    for i, value in run(train_cell, jobs):
        cell = pending[i]
        if isinstance(value, BaseException):
            outcomes[cell.id] = CellOutcome(cell, "failed", error=f"{type(value).__name__}: {value}")
        else:
            result, meta = value
            write_run(cells_dir / cell.id, result, force=True, meta={"cell": meta, "labels": cell.labels})
            checkpoint_path(cells_dir / cell.id).unlink(missing_ok=True)
            outcomes[cell.id] = tables.add(cell, "done")
            tables.write()
        _write_manifest(out, spec, outcomes, executor_info)
        if progress:
            progress(sum(o.status != "failed" for o in outcomes.values()), total)
        if on_cell:
            on_cell(outcomes[cell.id])
    return SweepResult(out, spec, [outcomes[c.id] for c in spec.cells], tables.curves, tables.summary)


def reproduce_experiment(name: str, out: Path, *, quick: bool = False,
                         **run) -> tuple[SweepResult, list[Path]]:
    """Run a shipped experiment (``neurosim/experiments/NAME.toml``, or a TOML path) through
    :func:`run_sweep` (``run``: its keyword arguments), then plot it; the result and figures."""
    from neurosim.plots_sweep import plot_results

    result = run_sweep(load_sweep(experiment_path(name), quick=quick), out, **run)
    return result, ([] if result.failed else plot_results(out))


def load_sweep_dir(path: Path) -> dict:
    """``{"manifest": dict, "curves": rows, "summary": rows}`` of a sweep directory."""
    path = Path(path)
    if not (path / "manifest.json").is_file():
        raise OutputError(f"{path} is not a sweep directory (no manifest.json)")
    return {"manifest": json.loads((path / "manifest.json").read_text()),
            "curves": read_csv(path / "curves.csv"), "summary": read_csv(path / "summary.csv")}


def mark_best_lr(summary: list[dict], group_keys: tuple[str, ...] = NOT_LR) -> dict[tuple, float]:
    """Add ``best_lr`` (bool) to each summary row; return {group: chosen lr}.

    A group is the rows equal in ``group_keys`` (all but lr and seed); its lr is the one with the
    fewest diverged networks, then the lowest mean final loss over the others, then the smallest.
    """
    per: dict[tuple, dict[float, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in summary:
        per[tuple(r.get(k) for k in group_keys)][r["lr"]].append(r)

    def score(lr: float, rows: list[dict]) -> tuple:
        ok = [r["final_loss"] for r in rows if usable_loss(r)]
        return len(rows) - len(ok), (sum(ok) / len(ok)) if ok else math.inf, lr

    best = {g: min(by_lr.items(), key=lambda kv: score(*kv))[0] for g, by_lr in per.items()}
    for r in summary:
        r["best_lr"] = r["lr"] == best[tuple(r.get(k) for k in group_keys)]
    return best


def mark_curves(curves: list[dict], summary: list[dict], group_keys: tuple[str, ...] = NOT_LR) -> None:
    """Copy the summary's ``best_lr`` flag onto the curve rows of the same group and lr."""
    keys = (*group_keys, "lr")
    chosen = {tuple(r.get(k) for k in keys): r["best_lr"] for r in summary}
    for r in curves:
        r["best_lr"] = chosen.get(tuple(r.get(k) for k in keys), False)


def extra_keys(grid: dict) -> tuple[str, ...]:
    """Grid keys that are not already columns of the run tables (n_hidden, feedback, …)."""
    return tuple(k for k in grid if k not in (*CURVE_FIELDS, "seed"))


def usable_loss(row: dict) -> bool:
    """A summary row whose network did not diverge and has a finite final loss."""
    v = row["final_loss"]
    return not row["diverged"] and isinstance(v, int | float) and math.isfinite(v)


class _Tables:
    """The sweep tables, rebuilt in grid order from the finished cells' directories."""

    def __init__(self, out: Path, spec: SweepSpec):
        self.out, self.spec = out, spec
        self.rows: dict[str, tuple[list[dict], list[dict]]] = {}
        self.curves: list[dict] = []
        self.summary: list[dict] = []

    def add(self, cell: Cell, status: str) -> CellOutcome:
        d = self.out / "cells" / cell.id
        extra = {"cell": cell.id, **{k: label_text(cell.labels.get(k, getattr(cell.config, k)))
                                     for k in extra_keys(self.spec.grid)}}
        curves = [{**extra, **r} for r in read_csv(d / "curves.csv")]
        summary = [{**extra, **r} for r in json.loads((d / "summary.json").read_text())]
        self.rows[cell.id] = (curves, summary)
        meta = json.loads((d / "config.json").read_text()).get("cell", {})
        return CellOutcome(cell, status, meta.get("seconds", 0.0), meta.get("worker", ""), summary=summary)

    def write(self) -> None:
        done = [self.rows[c.id] for c in self.spec.cells if c.id in self.rows]
        self.summary = [dict(r) for _, s in done for r in s]
        self.curves = [dict(r) for c, _ in done for r in c]
        mark_best_lr(self.summary, NOT_LR + extra_keys(self.spec.grid))
        mark_curves(self.curves, self.summary, NOT_LR + extra_keys(self.spec.grid))
        head = ["cell", *extra_keys(self.spec.grid)]
        write_csv(self.out / "curves.csv", self.curves, [*head, *CURVE_FIELDS, "best_lr"])
        summary_fields = dict.fromkeys([*head, *(k for r in self.summary for k in r)])
        summary_fields.pop("best_lr", None)
        write_csv(self.out / "summary.csv", self.summary, [*summary_fields, "best_lr"])


def _finished(d: Path, config: TrainConfig) -> bool:
    """A cell directory exists whole (atomic) and belongs to this config."""
    try:
        stored = json.loads((d / "config.json").read_text())["config"]
        return (d / "summary.json").is_file() and TrainConfig.from_dict(stored) == config
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _check_out(out: Path, *, resume: bool, force: bool) -> bool:
    """Refuse an unusable ``out`` before anything runs; True when ``force`` will replace it."""
    if force and not resume and out.exists():
        check_output_dir(out, force=True)
        return True
    if resume and (out / "manifest.json").is_file():
        check_output_dir(out, force=True)  # only the writability checks
    elif out.exists() and out.is_dir() and any(out.iterdir()):
        hint = "" if resume else "; resume it (--resume) or replace it (--force)"
        what = "is not a sweep directory" if resume else "exists and is not empty"
        raise OutputError(f"output {out} {what}{hint}")
    else:
        check_output_dir(out)
    return False


@contextmanager
def _locked(out: Path) -> Iterator[None]:
    """An exclusive lock on the sweep directory; the kernel frees it when the process dies."""
    with open(out / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SweepLockError(f"another sweep is writing to {out}") from None
        yield


def _remove_stale_temporaries(out: Path) -> None:
    """Leftovers of writes a kill interrupted (``.name.tmp-*``): never part of a result."""
    for d in (out, out / "cells", out / "figures"):
        for p in d.glob(".*.tmp-*") if d.is_dir() else ():
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)


def _write_manifest(out: Path, spec: SweepSpec, outcomes: dict[str, CellOutcome], executor: dict) -> None:
    cells = []
    for c in spec.cells:
        o = outcomes.get(c.id)
        status = "pending" if o is None else "failed" if o.status == "failed" else "done"
        cells.append({"id": c.id, "status": status, "labels": c.labels, "networks": _networks(c.config),
                      "seconds": o.seconds if o else None, "worker": o.worker if o else None,
                      "error": o.error if o and o.error else None, "config": c.config.to_dict()})
    write_json(out / "manifest.json", {
        **spec.to_dict(), "versions": versions(), "executor": executor,
        "complete": all(c["status"] == "done" for c in cells), "cells": cells,
    })


def _networks(config: TrainConfig) -> int:
    return len(config.gains) * len(config.lrs) * config.seeds

