"""Run directories: atomic writes, tidy tables, loading.

A run directory holds ``config.json`` (the config, package versions, seed), ``curves.csv``
(one row per network × backend × logged iteration), ``summary.json`` (one row per network ×
backend), ``params.pt`` (final weights per backend) and ``figures/*.png``. A directory is
written under a temporary name beside its destination and renamed when complete, so a
reader never sees a half-written run: a directory either exists whole or not at all.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
import platform
import shutil
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

from neurosim.errors import InputError
from neurosim.model import Params

CURVE_FIELDS = ("backend", "rule", "task", "gain", "bits", "profile", "flossing", "lr", "seed",
                "phase", "iteration", "loss")


class OutputError(InputError):
    """The output location cannot be used (exists and is not empty, not writable, ...)."""


def versions() -> dict[str, str]:
    """Versions of Python and the packages that determine the numbers."""
    out = {"python": platform.python_version()}
    for pkg in ("neurosim", "torch", "numpy", "neurogym", "fxpmath"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def checkpoint_path(out: Path) -> Path:
    """Where an unfinished run (or sweep cell) keeps its checkpoint: a hidden sibling of its
    directory."""
    out = Path(out)
    return out.parent / f".{out.name}.checkpoint.pt"


def check_output_dir(out: Path, *, force: bool = False) -> None:
    """Refuse an output directory that exists and is not empty (unless ``force``), or
    whose parent cannot be created or written."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise OutputError(f"output {out} exists and is not empty (use --force to replace it)")
    parent = out.resolve().parent
    existing = next(p for p in (parent, *parent.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"output {out} cannot be written: {existing} is not a writable directory")


@contextmanager
def atomic_dir(out: Path, *, force: bool = False):
    """Yield a temporary directory that replaces ``out`` only if the block succeeds."""
    out = Path(out)
    check_output_dir(out, force=force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write(path: Path, write: Callable[[io.IOBase], None], *, binary: bool = False) -> None:
    """Write a file through ``write(fh)`` into a temporary sibling, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w", newline=None if binary else "") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj) -> None:
    atomic_write(path, lambda fh: json.dump(obj, fh, indent=2, default=_json_default))


def _json_default(o):
    if isinstance(o, tuple):
        return list(o)
    if isinstance(o, torch.Tensor):
        return o.tolist()
    raise TypeError(f"cannot serialise {type(o).__name__}")


def write_csv(path: Path, rows: list[dict], fields=None) -> None:
    """A tidy CSV; columns are ``fields`` or the union of the rows' keys in first-seen order."""
    fields = list(fields or dict.fromkeys(k for r in rows for k in r))

    def write(fh):
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)

    atomic_write(path, write)


def read_csv(path: Path) -> list[dict]:
    """Rows of a tidy CSV with numbers parsed back (empty cells become None)."""
    with open(path, newline="") as fh:
        return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def _parse(v: str):
    if v == "":
        return None
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return {"True": True, "False": False}.get(v, v)


def write_run(out: Path, result, *, figures: Callable[[Path], None] | None = None,
              force: bool = False, meta: dict | None = None) -> Path:
    """Write a :class:`~neurosim.train.RunResult` as a run directory, atomically; ``meta``
    (e.g. a sweep cell's timing and worker) is added to ``config.json``."""
    with atomic_dir(out, force=force) as tmp:
        write_json(tmp / "config.json",
                   {"config": result.config.to_dict(), "versions": versions(), **(meta or {})})
        write_csv(tmp / "curves.csv", result.curves, CURVE_FIELDS)
        write_json(tmp / "summary.json", result.summary)
        torch.save({k: p._asdict() for k, p in result.params.items()}, tmp / "params.pt")
        if figures:
            (tmp / "figures").mkdir()
            figures(tmp / "figures")
    return Path(out)


def load_run(path: Path) -> dict:
    """``{"config": dict, "versions": dict, "curves": rows, "summary": rows}`` of a run dir."""
    path = Path(path)
    if not (path / "summary.json").is_file():
        raise OutputError(f"{path} is not a complete run directory (no summary.json)")
    cfg = json.loads((path / "config.json").read_text())
    return {**cfg, "curves": read_csv(path / "curves.csv"),
            "summary": json.loads((path / "summary.json").read_text())}


def load_run_params(path: Path) -> dict:
    """The trained parameters of a run directory: ``{backend name: Params}``."""
    f = Path(path) / "params.pt"
    try:
        stored = torch.load(f, weights_only=True)
        return {k: Params(**v) for k, v in stored.items()}
    except (OSError, RuntimeError, TypeError, AttributeError, EOFError, ValueError, KeyError,
            pickle.UnpicklingError) as err:
        raise OutputError(f"{f}: cannot read the run's parameters ({type(err).__name__}: {err})") from None
