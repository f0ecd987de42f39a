"""Sweeps: every cell of a grid trained as one ensemble, stored so that a killed sweep resumes.

A sweep directory holds::

    manifest.json         the grid, fixed values, versions, executor, and each cell's status
                          (written when the sweep starts and when it ends)
    status.jsonl          while it runs: one line appended per finished or failed cell
    cells/<cell-id>/      one run directory per finished cell (config.json, curves.csv,
                          summary.json, params.pt), written atomically: whole or absent
    curves.csv            tidy, all finished cells: one row per network × backend × logged iteration
    summary.csv           one row per network × backend, with a ``best_lr`` flag
    figures/*.png         learning curves at the chosen lr, final-loss heatmap (plots_sweep.py)

Both tables start with ``cell`` (the cell id) and the grid keys that are not run-table columns
already (``n_hidden``, ``feedback``, …), then the run columns (tables.CURVE_FIELDS / summary).

The sweep-level tables are rebuilt from the finished cells' directories (at most every
TABLE_SECONDS while cells finish, and at the end), so they are always consistent, and a sweep
killed at any moment (SIGKILL included) and run again skips its finished cells and ends with
exactly the tables of an uninterrupted run. With the local executors a cell being trained also
checkpoints every 200 iterations (``cells/.<cell-id>.checkpoint.pt``), so a killed long cell
continues where it was, bit for bit; Dask workers may not share the sweep's file system, so
their cells restart.

Limits (``neurosim.grid``): at most MAX_CELLS cells and MAX_SWEEP_NETWORKS networks, checked
before anything is created; a damaged cell checkpoint is moved aside and the cell retrained.

Best learning rate (as the paper chose it): among the networks that differ only in lr and seed,
the lr with the fewest diverged seeds and then the lowest mean final loss over the others.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from neurosim.config import TrainConfig
from neurosim.executors import open_executor
from neurosim.fixed_backend import resolve_profile
from neurosim.grid import Cell, SweepSpec, label_text, load_sweep
from neurosim.outputs import OutputError, claim_output, remove_output
from neurosim.resources import check_run_memory
from neurosim.results import (
    checkpoint_path,
    read_csv,
    read_json,
    refuse_profile_change,
    versions,
    write_csv,
    write_json,
    write_run,
)
from neurosim.tables import CURVE_FIELDS, NOT_LR, extra_keys, mark_best_lr, mark_curves
from neurosim.training import CheckpointError, RunResult, load_checkpoint, train

Progress = Callable[[int, int], None]
TABLE_SECONDS = 30.0  # the sweep tables are rebuilt at most this often while cells finish, and at the end


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
    cell's config and its checkpoint path (None: no checkpoints). A damaged checkpoint is moved
    aside (``….damaged``, named in the meta) and the cell trains from the start."""
    import torch

    config, checkpoint = job
    start = time.perf_counter()
    meta = {}
    try:
        result = train(TrainConfig.from_dict(config), checkpoint=checkpoint and Path(checkpoint))
    except CheckpointError as err:
        aside = Path(f"{checkpoint}.damaged")
        os.replace(checkpoint, aside)
        meta["checkpoint_discarded"] = f"{err} (moved to {aside.name})"
        result = train(TrainConfig.from_dict(config), checkpoint=Path(checkpoint))
    meta.update({"seconds": time.perf_counter() - start, "worker": f"{platform.node()}:{os.getpid()}",
                 "torch_threads": torch.get_num_threads()})
    return result, meta


def run_sweep(grid_config: SweepSpec | Path | str, out: Path, *, executor: str = "local",
              scheduler: str | None = None, workers: int = 2, resume: bool = True, force: bool = False,
              progress: Progress | None = None,
              on_cell: Callable[[CellOutcome], None] | None = None) -> SweepResult:
    """Train every cell of a sweep into ``out`` (see module docstring).

    ``grid_config``: a :class:`SweepSpec` or a sweep TOML path (validated before anything is
    written, with the memory guard of ``train`` for every cell when the cells run on this
    machine). With ``resume`` (default) an existing sweep directory is continued: finished cells
    are kept and skipped, and a cell whose precision profile changed since is refused; without it
    a non-empty ``out`` is refused unless ``force`` replaces it. The folder is locked (before
    anything is deleted) for the whole sweep. ``progress(done, total)`` counts cells; ``on_cell``
    gets each :class:`CellOutcome`.
    """
    spec = grid_config if isinstance(grid_config, SweepSpec) else load_sweep(grid_config)
    if executor != "dask":  # the cells train here: the same memory guard as train
        for cell in spec.cells:
            check_run_memory(cell.config)
    with claim_output(out, force=force and not resume, existing_ok=resume) as out:
        if resume and out.is_dir() and any(out.iterdir()) and not (out / "manifest.json").is_file():
            raise OutputError(f"output {out} is not a sweep directory; choose another --out, or replace "
                              "it (--no-resume --force)")
        with open_executor(executor, scheduler=scheduler, workers=workers) as run:
            if out.exists() and not resume:
                remove_output(out)
            out.mkdir(parents=True, exist_ok=True)
            return _run(spec, out, run, {"kind": executor, "scheduler": scheduler, "workers": workers},
                        progress, on_cell)


def _run(spec: SweepSpec, out: Path, run, executor_info: dict, progress: Progress | None,
         on_cell: Callable[[CellOutcome], None] | None) -> SweepResult:
    """The body of :func:`run_sweep` once the directory is locked and the executor open."""
    cells_dir = out / "cells"
    cells_dir.mkdir(exist_ok=True)
    _remove_stale_temporaries(out)
    _refuse_changed_profiles(spec, cells_dir)
    tables = _Tables(out, spec)
    outcomes: dict[str, CellOutcome] = {}
    for cell in spec.cells:
        if _finished(cells_dir / cell.id, cell.config):
            checkpoint_path(cells_dir / cell.id).unlink(missing_ok=True)  # killed before removal
            outcomes[cell.id] = tables.add(cell, "resumed")
            if on_cell:
                on_cell(outcomes[cell.id])
    pending = [c for c in spec.cells if c.id not in outcomes]
    log = _StatusLog(out, spec, outcomes, executor_info)
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
            write_run(cells_dir / cell.id, result, replace=True, meta={"cell": meta, "labels": cell.labels})
            checkpoint_path(cells_dir / cell.id).unlink(missing_ok=True)
            outcomes[cell.id] = tables.add(cell, "done")
            tables.write(every=TABLE_SECONDS)
        log.append(outcomes[cell.id])
        if progress:
            progress(sum(o.status != "failed" for o in outcomes.values()), total)
        if on_cell:
            on_cell(outcomes[cell.id])
    tables.write()
    log.close(outcomes)
    return SweepResult(out, spec, [outcomes[c.id] for c in spec.cells], tables.curves, tables.summary)


def load_sweep_dir(path: Path) -> dict:
    """``{"manifest": dict, "curves": rows, "summary": rows}`` of a sweep directory."""
    path = Path(path)
    if not (path / "manifest.json").is_file():
        raise OutputError(f"{path} is not a sweep directory (no manifest.json)")
    manifest = read_json(path / "manifest.json", "sweep manifest")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("grid"), dict):
        raise OutputError(f"{path}/manifest.json is not a sweep manifest")
    return {"manifest": manifest, "curves": read_csv(path / "curves.csv"),
            "summary": read_csv(path / "summary.csv")}


class _Tables:
    """The sweep tables, rebuilt in grid order from the finished cells' directories."""

    def __init__(self, out: Path, spec: SweepSpec):
        self.out, self.spec = out, spec
        self.rows: dict[str, tuple[list[dict], list[dict]]] = {}
        self.curves: list[dict] = []
        self.summary: list[dict] = []
        self.written = -math.inf

    def add(self, cell: Cell, status: str) -> CellOutcome:
        d = self.out / "cells" / cell.id
        extra = {"cell": cell.id, **{k: label_text(cell.labels.get(k, getattr(cell.config, k)))
                                     for k in extra_keys(self.spec.grid)}}
        curves = [{**extra, **r} for r in read_csv(d / "curves.csv")]
        summary = [{**extra, **r} for r in read_json(d / "summary.json", "cell summary")]
        self.rows[cell.id] = (curves, summary)
        meta = read_json(d / "config.json", "cell config").get("cell", {})
        return CellOutcome(cell, status, meta.get("seconds", 0.0), meta.get("worker", ""), summary=summary)

    def write(self, every: float = 0.0) -> None:
        """Rebuild and write both tables, unless they were written less than ``every`` s ago."""
        if time.monotonic() - self.written < every:
            return
        self.written = time.monotonic()
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


def _remove_stale_temporaries(out: Path) -> None:
    """Leftovers of writes a kill interrupted (``.name.tmp-*``): never part of a result."""
    for d in (out, out / "cells", out / "figures"):
        for p in d.glob(".*.tmp-*") if d.is_dir() else ():
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)


class _StatusLog:
    """``manifest.json`` (the grid and every cell, written when the sweep starts and when it
    ends) and ``status.jsonl`` (one line appended per finished or failed cell), so the cost of
    recording a cell does not grow with the grid; the log is for following a running (or
    killed) sweep, the manifest the record of a finished one."""

    def __init__(self, out: Path, spec: SweepSpec, outcomes: dict[str, CellOutcome], executor: dict):
        self.out, self.spec, self.executor = out, spec, executor
        self._write_manifest(outcomes)
        self.fh = open(out / "status.jsonl", "w")  # noqa: SIM115 — closed by close()

    def _write_manifest(self, outcomes: dict[str, CellOutcome]) -> None:
        cells = [{"id": c.id, "labels": c.labels, "networks": c.config.networks, "config": c.config.to_dict(),
                  **_status_fields(outcomes.get(c.id))} for c in self.spec.cells]
        write_json(self.out / "manifest.json", {
            **self.spec.to_dict(), "versions": versions(), "executor": self.executor,
            "complete": all(c["status"] == "done" for c in cells), "cells": cells,
        })

    def append(self, outcome: CellOutcome) -> None:
        self.fh.write(json.dumps({"id": outcome.cell.id, **_status_fields(outcome)}) + "\n")
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self, outcomes: dict[str, CellOutcome]) -> None:
        self.fh.close()
        self._write_manifest(outcomes)
        (self.out / "status.jsonl").unlink(missing_ok=True)


def _status_fields(o: CellOutcome | None) -> dict:
    status = "pending" if o is None else "failed" if o.status == "failed" else "done"
    return {"status": status, "seconds": o.seconds if o else None, "worker": o.worker if o else None,
            "error": o.error if o and o.error else None}


def _refuse_changed_profiles(spec: SweepSpec, cells_dir: Path) -> None:
    """A finished or checkpointed fixed-point cell trained with a profile that has changed since
    (an edited TOML file) is refused: resuming would mix two profiles' results."""
    for cell in spec.cells:
        if not cell.config.fixed_point:
            continue
        stored = None
        config_file, ckpt = cells_dir / cell.id / "config.json", checkpoint_path(cells_dir / cell.id)
        if config_file.is_file():
            stored = read_json(config_file, "cell config").get("profile")
        elif ckpt.is_file():
            try:
                stored = load_checkpoint(ckpt).get("profile")
            except CheckpointError:
                continue  # moved aside and retrained by train_cell
        else:
            continue
        refuse_profile_change(stored, resolve_profile(cell.config).to_dict(), f"cell {cell.id}",
                              "start over (--no-resume --force)")
