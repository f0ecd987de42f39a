"""Run directories: atomic writes, tidy tables, loading.

A run directory holds ``config.json`` (the config, package versions, seed), ``curves.csv``
(one row per network × backend × logged iteration), ``summary.json`` (one row per network ×
backend), ``params.pt`` (final weights per backend) and ``figures/*.png``. A directory is
written under a temporary name beside its destination and renamed when complete, so a
reader never sees a half-written run: a directory either exists whole or not at all.
"""

from __future__ import annotations

import csv
import hashlib
import json
import pickle
import platform
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

from neurosim.config import ConfigError
from neurosim.errors import FileFormatError
from neurosim.model import Params
from neurosim.outputs import OutputError, atomic_dir, atomic_write
from neurosim.tables import CURVE_FIELDS


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
    """Rows of a tidy CSV with numbers parsed back (empty cells become None); a missing,
    undecodable or ragged file is a :class:`FileFormatError` naming it."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise FileFormatError(f"table {path} cannot be read: {_reason(err)}") from None
    if any(None in row or None in row.values() for row in rows):
        raise FileFormatError(f"table {path} is damaged: a row has more or fewer cells than the header")
    return [{k: _parse(v) for k, v in row.items()} for row in rows]


def _reason(err: Exception) -> str:
    return getattr(err, "strerror", None) or str(err)


def read_json(path: Path, what: str = "file"):
    """A JSON file; missing, undecodable or malformed JSON is a :class:`FileFormatError`."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileFormatError(f"{what} {path} not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise FileFormatError(f"{what} {path} cannot be read: {_reason(err)}") from None
    except json.JSONDecodeError as err:
        raise FileFormatError(f"{what} {path} is damaged: {err}") from None


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
              replace: bool = False, meta: dict | None = None) -> Path:
    """Write a :class:`~neurosim.training.RunResult` as a run directory, atomically; ``meta``
    (e.g. a sweep cell's timing and worker) is added to ``config.json``, with the full
    precision profile each fixed-point run used (its content and SHA-256). The caller holds
    the folder's lock (:func:`neurosim.outputs.claim_output`)."""
    with atomic_dir(out, replace=replace) as tmp:
        write_json(tmp / "config.json",
                   {"config": result.config.to_dict(), "versions": versions(),
                    "ran": result.ran, **provenance(result.profile), **(meta or {})})
        write_csv(tmp / "curves.csv", result.curves, CURVE_FIELDS)
        write_json(tmp / "summary.json", result.summary)
        torch.save({k: p._asdict() for k, p in result.params.items()}, tmp / "params.pt")
        if figures:
            (tmp / "figures").mkdir()
            figures(tmp / "figures")
    return Path(out)


def provenance(profile: dict | None) -> dict:
    """``{"profile": content, "profile_sha256": hash}`` of a fixed-point run's profile ({} in float)."""
    if profile is None:
        return {}
    return {"profile": profile, "profile_sha256": profile_hash(profile)}


def profile_hash(profile: dict) -> str:
    return hashlib.sha256(json.dumps(profile, sort_keys=True).encode()).hexdigest()


def profile_change(stored: dict | None, current: dict | None) -> str | None:
    """The first difference between two profile dicts, in words (None when equal)."""
    if stored == current:
        return None
    if stored is None or current is None:
        return "no profile recorded" if stored is None else "the run had no profile"
    for table in sorted(set(stored) | set(current)):
        a, b = stored.get(table), current.get(table)
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                if a.get(k) != b.get(k):
                    return f"{table}.{k} was {a.get(k)!r}, now {b.get(k)!r}"
        elif a != b:
            return f"{table} was {a!r}, now {b!r}"
    return "the profile differs"


def refuse_profile_change(stored: dict | None, current: dict | None, what: str, remedy: str) -> None:
    """Raise :class:`~neurosim.config.ConfigError` naming the first difference when ``what``
    (a checkpoint, a run, a sweep cell) was trained with another profile than ``current``."""
    change = profile_change(stored, current)
    if change:
        raise ConfigError(f"the precision profile changed since {what} was trained ({change}); "
                          f"restore it, or {remedy}")


def load_run(path: Path) -> dict:
    """``{"config": dict, "versions": dict, "curves": rows, "summary": rows}`` of a run dir;
    a missing, half-written or damaged one is an :class:`~neurosim.errors.InputError`."""
    path = Path(path)
    if not path.is_dir():
        raise OutputError(f"{path} is not a run directory")
    if not (path / "summary.json").is_file():
        raise OutputError(f"{path} is not a complete run directory (no summary.json)")
    cfg = read_json(path / "config.json", "run config")
    summary = read_json(path / "summary.json", "run summary")
    if (not isinstance(cfg, dict) or not isinstance(cfg.get("config"), dict) or not isinstance(summary, list)
            or not all(isinstance(r, dict) and {"backend", "gain", "seed"} <= r.keys() for r in summary)):
        raise FileFormatError(f"{path} is not a neurosim run directory (config.json or summary.json "
                              "has the wrong shape)")
    return {**cfg, "curves": read_csv(path / "curves.csv"), "summary": summary}


def load_run_params(path: Path) -> dict:
    """The trained parameters of a run directory: ``{backend name: Params}``."""
    f = Path(path) / "params.pt"
    try:
        stored = torch.load(f, weights_only=True)
        return {k: Params(**v) for k, v in stored.items()}
    except (OSError, RuntimeError, TypeError, AttributeError, EOFError, ValueError, KeyError,
            pickle.UnpicklingError) as err:
        raise OutputError(f"{f}: cannot read the run's parameters ({type(err).__name__}: {err})") from None
