"""Sweep grids: a TOML file (or dict) → validated cells, each one :class:`TrainConfig`.

A sweep file has a ``[grid]`` table whose values are lists (their cartesian product is the
sweep) and a ``[fixed]`` table of single values; keys are :class:`TrainConfig` field names::

    description = "Fig. 1: Romo, BPTT and e-prop across initial gains"   # optional
    [grid]
    rule = ["bptt", "eprop"]
    gain = [0.2, 0.5, 1.0, 1.5, 2.0]
    lr   = [1e-4, 3e-4, 1e-3, 3e-3]
    [fixed]
    task  = "romo"
    seeds = 5
    [quick]            # optional: overrides for a CI-sized version (a list → grid, a value → fixed)
    gain = [0.2, 1.0]
    iters = 30

Cells that differ only in ``gain``, ``lr`` and ``seed`` train as ONE ensemble: a cell is the
product of the other grid keys, and its config carries the grid's gain and lr tuples (networks
= gains × lrs × seeds). ``seed`` values in the grid fold into runs of consecutive seeds, each
run one cell. ``bits``/``profile`` take ``"none"`` for a float-only cell. Fixed-point cells
learn at 2^-lr_shift, so the lr grid does not multiply them: they take the profile's shift
(sweep ``profile_overrides = [{lr_shift = 8}, {lr_shift = 10}]`` instead); an ``lr`` in
``[fixed]`` becomes their nearest shift.

Every cell's config is built (and a fixed-point cell's precision profile resolved) when the
spec is loaded, so an unknown key, an empty list or an invalid value anywhere in the grid is a
:class:`SweepError` naming the key before any training starts.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

from hw_models.errors import read_toml
from neurosim.config import TrainConfig
from neurosim.errors import InputError
from neurosim.resources import check_run

ENSEMBLE_KEYS = ("gain", "lr", "seed")
MAX_CELLS = 10_000  # per sweep: each cell is a directory, a process start and a table merge
MAX_SWEEP_NETWORKS = 1_000_000
NULLABLE = ("bits", "profile")  # "none" in TOML (which has no null) means None
FLOAT_KEYS = ("gain", "lr", "dt", "tau")
TOP_KEYS = ("description", "grid", "fixed", "quick")
_FIELDS = {f.name: f for f in fields(TrainConfig)}


class SweepError(InputError):
    """A sweep file or grid is invalid; the message names the key."""


@dataclass(frozen=True)
class Cell:
    """One ensemble of a sweep: ``id`` (its directory name under ``cells/``), its config, and
    the values of its non-ensemble grid keys (``labels``, extra table columns)."""

    id: str
    config: TrainConfig
    labels: dict


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: ``grid`` (key → tuple of values, file order), ``fixed`` (key → value),
    and the cells they make (built and validated on construction). Build it with
    :func:`load_sweep`, which also normalises the values ("none", ints for float fields, …)."""

    grid: dict
    fixed: dict
    name: str = "sweep"
    description: str = ""
    cells: tuple[Cell, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "cells", tuple(_build_cells(self.grid, self.fixed)))

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description,
                "grid": {k: list(v) for k, v in self.grid.items()}, "fixed": dict(self.fixed)}


def load_sweep(source: Path | str | dict, *, quick: bool = False, overrides: dict | None = None,
               name: str | None = None) -> SweepSpec:
    """Read a sweep file (or an already parsed dict), apply ``[quick]`` if asked, then
    ``overrides`` (a list → grid, a single value → fixed), and validate every cell."""
    if isinstance(source, dict):
        data, where = source, name or "sweep"
    else:
        path = Path(source)
        data = read_toml(path, "sweep", SweepError)
        where = name or path.stem
    for k in data:
        if k not in TOP_KEYS:
            raise SweepError(f"unknown key {k!r} at the top of the sweep file; "
                             f"allowed: {', '.join(TOP_KEYS)}")
    grid = _table(data, "grid")
    fixed = _table(data, "fixed")
    for k in grid:
        if k in fixed:
            raise SweepError(f"key {k!r} is in both [grid] and [fixed]")
    if quick:
        if "quick" not in data:
            raise SweepError(f"{where} has no [quick] table")
        _override(grid, fixed, _table(data, "quick"), "quick")
    if overrides:
        _override(grid, fixed, dict(overrides), "override")
    if not grid:
        raise SweepError("[grid] is empty: give at least one key with a list of values")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise SweepError("description must be a string")
    return SweepSpec({k: _grid_values(k, v) for k, v in grid.items()},
                     {k: _fixed_value(k, v) for k, v in fixed.items()}, where, description)


def parse_assignments(grid: Sequence[str] = (), fixed: Sequence[str] = ()) -> dict:
    """Command-line overrides: ``KEY=V1,V2,…`` (grid, a list) and ``KEY=V`` (fixed, a value);
    each value is read as a TOML value, else as a bare string (``rule=bptt,eprop``)."""
    out: dict = {}
    for text, is_grid in [*((g, True) for g in grid), *((f, False) for f in fixed)]:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise SweepError(f"expected KEY=VALUE, got {text!r}")
        parsed = [_parse_scalar(v.strip()) for v in value.split(",")]
        out[key.strip()] = parsed if is_grid else _parse_scalar(value.strip())
    return out


EXPERIMENT_DIR = Path(__file__).parent / "experiments"  # shipped as package data


def list_experiments() -> list[str]:
    """Names of the shipped experiments, sorted."""
    return sorted(p.stem for p in EXPERIMENT_DIR.glob("*.toml"))


def experiment_path(name: str) -> Path:
    """The file of a shipped experiment by name, or ``name`` itself if it is a file."""
    if Path(name).is_file():
        return Path(name)
    if name not in list_experiments():
        raise SweepError(f"unknown experiment {name!r}; choose one of {', '.join(list_experiments())}")
    return EXPERIMENT_DIR / f"{name}.toml"


# -- validation -------------------------------------------------------------------------------------


def _table(data: dict, name: str) -> dict:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise SweepError(f"{name} must be a table [{name}]")
    for k in table:
        _known(k, name)
    return dict(table)


def _known(key: str, where: str) -> None:
    if key not in _FIELDS:
        raise SweepError(f"unknown key {key!r} in [{where}]; known keys: {', '.join(_FIELDS)}")


def _override(grid: dict, fixed: dict, overrides: dict, where: str) -> None:
    for k, v in overrides.items():
        _known(k, where)
        grid.pop(k, None)
        fixed.pop(k, None)
        (grid if isinstance(v, list) else fixed)[k] = v


def _grid_values(key: str, values) -> tuple:
    if not isinstance(values, list):
        raise SweepError(f"[grid] {key} must be a list of values (single values go in [fixed])")
    if not values:
        raise SweepError(f"[grid] {key} is an empty list")
    out = tuple(_value(key, v, "grid") for v in values)
    if len(set(map(_freeze, out))) < len(out):
        raise SweepError(f"[grid] {key} repeats a value: {list(values)}")
    return out


def _fixed_value(key: str, value):
    if isinstance(value, list):
        raise SweepError(f"[fixed] {key} must be a single value (lists go in [grid])")
    return _value(key, value, "fixed")


def _value(key: str, v, where: str):
    """One value as TrainConfig wants it: "none" → None, ints → floats for float fields,
    an inline table → sorted (name, value) pairs for profile_overrides."""
    if key in NULLABLE and isinstance(v, str) and v.lower() == "none":
        return None
    if key in FLOAT_KEYS and isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    if key == "profile_overrides":
        if not isinstance(v, dict):
            raise SweepError(f"[{where}] profile_overrides must be a table like {{lr_shift = 8}}")
        return tuple(sorted(v.items()))
    if isinstance(v, dict | list):
        raise SweepError(f"[{where}] {key}: {v!r} is not a single value")
    return v


def _freeze(v):
    return json.dumps(v, sort_keys=True, default=str)


def _parse_scalar(text: str):
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _seed_runs(seeds: tuple[int, ...], count: int) -> list[tuple[int, int]]:
    """Networks' seeds ``s .. s+count-1`` for every ``s``, merged into (first, length) runs."""
    all_seeds = sorted({s + i for s in seeds for i in range(count)})
    runs: list[tuple[int, int]] = []
    for s in all_seeds:
        if runs and runs[-1][0] + runs[-1][1] == s:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((s, 1))
    return runs


def _build_cells(grid: dict, fixed: dict) -> list[Cell]:
    outer = [k for k in grid if k not in ENSEMBLE_KEYS]
    default = {k: f.default for k, f in _FIELDS.items()}
    points = math.prod(len(grid[k]) for k in outer)
    if points > MAX_CELLS:
        raise SweepError(f"the grid has {points} cells; at most {MAX_CELLS} (split the study into sweeps)")
    cells: list[Cell] = []
    networks = 0
    seen: set[TrainConfig] = set()
    for point in itertools.product(*(grid[k] for k in outer)):
        base = {**fixed, **dict(zip(outer, point, strict=True))}
        where = ", ".join(f"{k}={v!r}" for k, v in zip(outer, point, strict=True))
        gains = grid.get("gain", (base.get("gain", default["gain"]),))
        lrs = grid.get("lr", (base.get("lr", default["lr"]),))
        seed_values = grid.get("seed", (base.get("seed", default["seed"]),))
        count = base.get("seeds", default["seeds"])
        if not isinstance(count, int) or isinstance(count, bool) or count <= 0:
            raise SweepError(f"seeds must be a positive integer, got {count!r}")
        if len(seed_values) * count * len(gains) * len(lrs) > MAX_SWEEP_NETWORKS:
            raise SweepError(f"{len(seed_values) * count * len(gains) * len(lrs)} networks per grid point; a "
                             f"sweep trains at most {MAX_SWEEP_NETWORKS}")
        for k, v in (("seed", s) for s in seed_values):
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise SweepError(f"{k} must be an integer >= 0, got {v!r}")
        labels = dict(zip(outer, point, strict=True))
        fixed_point = base.get("bits") is not None or base.get("profile") is not None
        if not fixed_point and base.get("profile_overrides"):  # precision overrides do not apply
            base["profile_overrides"] = ()
            if "profile_overrides" in labels:
                labels["profile_overrides"] = ()
        for first, n in _seed_runs(tuple(seed_values), count):
            fixed_lr = None if "lr" in grid else base.get("lr")  # fixed point: a shift, not a grid
            kw = {**base, "gain": tuple(gains), "lr": fixed_lr if fixed_point else tuple(lrs),
                  "seed": first, "seeds": n}
            config = _config(kw, where)
            networks += config.networks
            if networks > MAX_SWEEP_NETWORKS:
                raise SweepError(f"the sweep has more than {MAX_SWEEP_NETWORKS} networks; split it")
            if config not in seen:  # float cells that differed only in precision overrides
                seen.add(config)
                cells.append(Cell(_cell_id(labels, config), config, labels))
    return cells


def _config(kw: dict, where: str) -> TrainConfig:
    """TrainConfig(**kw) plus every check a run makes before work that does not depend on the
    machine (:func:`neurosim.resources.check_run` without the memory guard)."""
    at = f" (grid cell {where})" if where else ""
    try:
        config = TrainConfig(**kw)
        if config not in _CHECKED:
            check_run(config, memory=False)
            _CHECKED.add(config)
    except InputError as err:
        raise SweepError(f"{err}{at}") from None
    except TypeError as err:  # a value of the wrong type that TrainConfig compared with a number
        raise SweepError(f"{err}{at}") from None
    return config


_CHECKED: set[TrainConfig] = set()


def _cell_id(labels: dict, config: TrainConfig) -> str:
    """A readable, stable directory name: the cell's grid values and a hash of its config."""
    digest = hashlib.sha1(json.dumps(config.to_dict(), sort_keys=True, default=list).encode()).hexdigest()
    slug = "_".join(f"{k}-{label_text(v)}" for k, v in labels.items())
    slug = re.sub(r"[^A-Za-z0-9.=_+-]+", "", slug)[:80]
    return f"{slug}_{digest[:10]}" if slug else f"cell_{digest[:10]}"


def label_text(v) -> str:
    """A grid value as a table cell / name part (profile_overrides as ``lr_shift=8``)."""
    if v is None:
        return "none"
    if isinstance(v, tuple):  # profile_overrides
        return "+".join(f"{k}={x}" for k, x in v) or "none"
    return str(v)
