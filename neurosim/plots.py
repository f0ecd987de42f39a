"""Figures from tidy rows: learning curves (mean ± std over every seed, n in the legend).

Functions take the rows of ``curves.csv`` / ``summary.json`` and a path; they never drop seeds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from neurosim.tables import LABELS, group, mean_std


def subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], **kw):
    """A figure and its axes, without pyplot: no backend is switched and no global figure
    registry holds it (importing or plotting changes no state of a notebook)."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kw)


def group_curves(rows: Iterable[dict], key=LABELS) -> dict[tuple, dict]:
    """Group curve rows by ``key``: → {key: {"iteration": (I,), "mean": (I,), "std": (I,), "n": int}}.

    Mean and std at each iteration are over the seeds that have a value there (a diverged
    network stops contributing from its divergence on).
    """
    by = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        by[tuple(r[k] for k in key)][r["iteration"]][r["seed"]] = r["loss"]
    out = {}
    for k, per_it in by.items():
        its = sorted(per_it)
        stats = [mean_std(per_it[i].values()) for i in its]
        out[k] = {
            "iteration": np.array(its),
            "mean": np.array([m for m, _, _ in stats]),
            "std": np.array([s for _, s, _ in stats]),
            "n": max(n for _, _, n in stats),
        }
    return out


def _label(k: tuple, varying: list[int]) -> str:
    return ", ".join(f"{LABELS[i]}={k[i]}" for i in varying) or "all"


def draw_band(ax, g: dict, label: str) -> None:
    """One mean line with a shaded ± std band, from a :func:`group_curves` entry."""
    line, = ax.plot(g["iteration"], g["mean"], label=label)
    ax.fill_between(g["iteration"], g["mean"] - g["std"], g["mean"] + g["std"],
                    color=line.get_color(), alpha=0.2, lw=0)
    if np.any(np.isfinite(g["mean"]) & (g["mean"] > 0)):  # a wholly diverged curve has no log scale
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss (masked MSE)")


def plot_learning_curves(rows: list[dict], path: Path, *, title: str = "") -> Path:
    """Loss vs iteration, mean ± std (shaded) over seeds, one line per configuration."""
    groups = group_curves(rows)
    keys = sorted(groups, key=str)
    varying = [i for i in range(len(LABELS)) if len({k[i] for k in keys}) > 1]
    fig, ax = subplots(figsize=(6.4, 4.2))
    for k in keys:
        draw_band(ax, groups[k], f"{_label(k, varying)} (n={groups[k]['n']})")
    ax.set_title(title or "learning curves, mean ± std over seeds")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return Path(path)


def by_gain(rows: list[dict], col: str) -> tuple[list, np.ndarray, np.ndarray, int] | None:
    """``col`` over the rows grouped by gain: (gains sorted, mean, std, most rows per gain);
    rows without a value are left out; None when none has one."""
    pts = group((r for r in rows if r.get(col) is not None), ("gain",))
    if not pts:
        return None
    gains = sorted(g for (g,) in pts)
    stats = [mean_std(r[col] for r in pts[(g,)]) for g in gains]
    return (gains, np.array([m for m, _, _ in stats]), np.array([s for _, s, _ in stats]),
            max(n for _, _, n in stats))


def plot_le_vs_gain(rows: list[dict], path: Path, *, title: str = "") -> Path:
    """Max Lyapunov exponent vs initial gain, before (and after, where present) training:
    mean ± std over seeds at each gain, one line per configuration that varies among backend,
    rule, flossing and bits (the paper's Figure 3 layout)."""
    keys = [k for k in ("backend", "rule", "flossing", "bits") if len({r.get(k) for r in rows}) > 1]
    fig, ax = subplots(figsize=(5.6, 4.0))
    for combo in sorted({tuple(r.get(k) for k in keys) for r in rows}, key=str):
        sub = [r for r in rows if tuple(r.get(k) for k in keys) == combo]
        name = ", ".join(f"{k}={v}" for k, v in zip(keys, combo, strict=True))
        for col, style in (("le_before", "o--"), ("le_after", "s-")):
            stats = by_gain(sub, col)
            if stats is None:
                continue
            gains, mean, std, n = stats
            label = f"{name + ', ' if name else ''}{col.removeprefix('le_')} training (n={n})"
            ax.errorbar(gains, mean, yerr=std, fmt=style, capsize=3, label=label)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("initial gain")
    ax.set_ylabel("max Lyapunov exponent (nats/step)")
    ax.set_title(title or "max LE vs gain, mean ± std over seeds", fontsize=9)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return Path(path)
