"""Figures of a sweep (or run) directory: learning curves at the chosen lr, final-loss heatmap.

Each figure is written as PNG (200 dpi) and SVG (``formats``), into ``figures/`` of the
directory or a folder of the caller's choosing; ``names`` picks among them:

- ``learning_curves``: loss vs iteration, geometric mean ×/÷ geometric std over every seed at the best
  lr of each (…, gain) group, one line per gain and one panel per combination of the other
  keys that vary (task, rule, flossing, bits, …); n in the legend.
- ``le_vs_gain``: max Lyapunov exponent before and after training vs gain, at the best lr.
- ``final_loss_vs_gain`` (when the sweep has 3 or more gains): final loss at the best lr
  vs gain, mean ± std over the seeds that did not diverge, one line per rule (and other varying
  keys), one panel per task (the paper's Fig. 5 layout); log scale.
- ``final_loss_heatmap`` (when the sweep has ``bits``): final loss at the best lr, mean
  over the seeds that did not diverge, over gain (x) × precision (y: ``N bits`` for the
  fixed-point engine, and the float baselines by backend name), one panel per other
  combination, every panel on one colour scale.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.colors import Normalize

from neurosim.errors import InputError
from neurosim.outputs import check_writable
from neurosim.plots import (
    FORMATS,
    by_gain,
    describe,
    describe_all,
    draw_band,
    group_curves,
    n_text,
    plot_le_vs_gain,
    save,
    subplots,
)
from neurosim.results import load_run
from neurosim.sweep import load_sweep_dir
from neurosim.tables import NOT_LR, extra_keys, mark_best_lr, mark_curves, usable_loss

FIGURES = ("learning_curves", "le_vs_gain", "final_loss_vs_gain", "final_loss_heatmap")


def plot_results(path: Path, *, out: Path | None = None, formats: tuple[str, ...] = FORMATS,
                 start: int = 0, names: tuple[str, ...] = FIGURES) -> list[Path]:
    """Write the figures ``names`` of a sweep or run directory into ``out`` (default
    ``path/figures``) in ``formats``, learning curves from iteration ``start``; their paths."""
    path = Path(path)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise InputError(f"unknown figure {unknown[0]!r}; choose among {', '.join(FIGURES)}")
    if not formats or any(f not in FORMATS for f in formats):
        raise InputError(f"formats must be among {', '.join(FORMATS)}, got {', '.join(formats) or 'none'}")
    if (path / "manifest.json").is_file():
        tables = load_sweep_dir(path)
        curves, summary = tables["curves"], tables["summary"]
        keys = NOT_LR + extra_keys(tables["manifest"]["grid"])
        title = tables["manifest"].get("description") or tables["manifest"].get("name", "")
    elif (path / "summary.json").is_file():
        run = load_run(path)
        curves, summary, keys = run["curves"], run["summary"], NOT_LR
        mark_best_lr(summary, keys)
        mark_curves(curves, summary, keys)
        title = ""
    else:
        raise InputError(f"{path} is neither a sweep directory (manifest.json) nor a run directory "
                         "(summary.json)")
    figures = check_writable(Path(out) if out is not None else path / "figures")
    figures.mkdir(parents=True, exist_ok=True)
    best = [r for r in summary if r.get("best_lr") and r.get("le_before") is not None]
    kw = {"title": title, "formats": formats}
    draw = {
        "learning_curves": lambda p: plot_best_lr_curves(curves, p, keys, start=start, **kw),
        "le_vs_gain": lambda p: plot_le_vs_gain(best, p, **kw) if best else None,
        "final_loss_vs_gain": lambda p: plot_final_loss_vs_gain(summary, p, keys, **kw),
        "final_loss_heatmap": lambda p: plot_final_loss_heatmap(summary, p, keys, **kw),
    }
    written = [draw[n](figures / f"{n}.png") for n in FIGURES if n in names]
    return [p.with_suffix(f".{f}") for p in written if p for f in formats]


FLOSSING_KEYS = ("floss_iters", "floss_variant", "floss_k", "floss_lr", "floss_every")  # in "flossing"


def _varying(rows: list[dict], keys) -> list[str]:
    """The keys whose values differ among ``rows``, less those another varying key already says
    (the flossing label holds every flossing setting)."""
    out = [k for k in keys if len({json.dumps(r.get(k)) for r in rows}) > 1]
    return [k for k in out if not (k in FLOSSING_KEYS and "flossing" in out)]


def _panel_grid(n: int, width: float = 4.6, height: float = 3.5):
    """``n`` panels in rows of equal length (no empty slot): the widest row of at most 4 that
    divides ``n``, else one row."""
    ncols = next((c for c in (4, 3, 2) if n % c == 0 and n > c), n) if n > 3 else n
    nrows = math.ceil(n / ncols)
    fig, axes = subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    return fig, list(axes.flat[:n])


def _panels(rows: list[dict], keys: list[str]) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        out[tuple(r.get(k) for k in keys)].append(r)
    return dict(sorted(out.items(), key=lambda kv: tuple(map(_order, kv[0]))))


def _order(v) -> tuple:
    """Numbers in numeric order, then strings, then None."""
    if isinstance(v, int | float) and not isinstance(v, bool):
        return (0, v, "")
    return (2, 0, "") if v is None else (1, 0, str(v))


def _title(keys: list[str], values: tuple) -> str:
    return describe_all(keys, values)


def plot_best_lr_curves(curves: list[dict], path: Path, keys=NOT_LR, *, title: str = "", start: int = 0,
                        formats: tuple[str, ...] = FORMATS) -> Path:
    """Training loss vs iteration at the best lr (rows flagged ``best_lr``) from iteration
    ``start``, geometric mean ×/÷ geometric std over seeds."""
    rows = [r for r in curves if r.get("best_lr") and r.get("phase", "train") == "train"]
    if not rows:
        raise InputError(f"no finished training curves to plot for {path.parent.parent}")
    panel_keys = _varying(rows, [k for k in keys if k != "gain"])
    panels = _panels(rows, panel_keys)
    fig, axes = _panel_grid(len(panels))
    for ax, (values, prow) in zip(axes, panels.items(), strict=True):
        groups = group_curves(prow, key=("gain", "lr"))
        for (gain, lr), g in sorted(groups.items(), key=lambda kv: kv[0]):
            draw_band(ax, g, f"gain {gain:g} (lr {lr:g}, {n_text(g)})", start=start)
        ax.set_title(_title(panel_keys, values) or "all networks", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(f"{title + ': ' if title else ''}geometric mean ×/÷ geometric std over seeds at the "
                 f"best lr{f', from iteration {start}' if start else ''}", fontsize=10)
    fig.tight_layout()
    return save(fig, path, formats)


def plot_final_loss_vs_gain(summary: list[dict], path: Path, keys=NOT_LR, *, title: str = "",
                            formats: tuple[str, ...] = FORMATS) -> Path | None:
    """Final loss at the best lr vs gain (mean ± std over non-diverged seeds), one panel per
    task, one line per combination of the other varying keys; None with fewer than 3 gains."""
    rows = [r for r in summary if r.get("best_lr") and usable_loss(r)]
    if len({r["gain"] for r in rows}) < 3:
        return None
    panel_keys = _varying(rows, ["task"])
    line_keys = _varying(rows, [k for k in keys if k not in ("gain", "task")])
    panels = _panels(rows, panel_keys)
    fig, axes = _panel_grid(len(panels))
    for ax, (values, prow) in zip(axes, panels.items(), strict=True):
        for combo, lrow in _panels(prow, line_keys).items():
            gains, mean, std, n = by_gain(lrow, "final_loss")
            ax.errorbar(gains, mean, yerr=std, fmt="o-", capsize=3,
                        label=f"{_title(line_keys, combo) or 'final loss'} (n≤{n})")
        ax.set_yscale("log")
        ax.set_xlabel("initial gain")
        ax.set_ylabel("final loss")
        ax.set_title(_title(panel_keys, values) or "all networks", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(f"{title + ': ' if title else ''}final loss at the best lr, mean ± std over seeds",
                 fontsize=10)
    fig.tight_layout()
    return save(fig, path, formats)


def _precision(r: dict) -> str:
    if r.get("bits") is not None:
        return f"{r['bits']} bits"
    return str(r.get("profile") or describe("backend", r["backend"]))


def plot_final_loss_heatmap(summary: list[dict], path: Path, keys=NOT_LR, *, title: str = "",
                            formats: tuple[str, ...] = FORMATS) -> Path | None:
    """Final loss at the best lr over gain × precision, when the sweep has ``bits``; else None."""
    rows = [r for r in summary if r.get("best_lr")]
    if not any(r.get("bits") is not None for r in rows):
        return None
    panel_keys = _varying(rows, [k for k in keys if k not in ("gain", "bits", "profile", "backend")])
    panels = _panels(rows, panel_keys)
    fig, axes = _panel_grid(len(panels), width=5.2, height=3.8)
    finite = [r["final_loss"] for r in rows if usable_loss(r) and r["final_loss"] > 0]
    # one scale for every panel, up to the 95th percentile: one exploded cell does not wash out the rest
    norm = Normalize(*np.log10(np.percentile(finite, [0, 95]))) if finite else None
    for ax, (values, prow) in zip(axes, panels.items(), strict=True):
        gains = sorted({r["gain"] for r in prow})
        precisions = sorted({_precision(r) for r in prow},
                            key=lambda p: (0, -int(p.split()[0])) if p.endswith(" bits") else (1, p))
        losses = defaultdict(list)
        for r in prow:
            if usable_loss(r):
                losses[(_precision(r), r["gain"])].append(r["final_loss"])
        heat = np.array([[np.mean(losses[(p, g)]) if losses[(p, g)] else np.nan for g in gains]
                         for p in precisions])
        image = ax.imshow(np.log10(heat), aspect="auto", cmap="viridis", norm=norm)
        for (i, j), v in np.ndenumerate(heat):
            light = np.isnan(v) or image.norm(np.log10(v)) > 0.6  # dark text on yellow and on blank
            ax.text(j, i, "div." if np.isnan(v) else f"{v:.2g}", ha="center", va="center", fontsize=7,
                    color="k" if light else "w")
        ax.set_xticks(range(len(gains)), [f"{g:g}" for g in gains])
        ax.set_yticks(range(len(precisions)), precisions)
        ax.set_xlabel("initial gain")
        ax.set_title(_title(panel_keys, values) or "final loss", fontsize=9)
    fig.colorbar(image, ax=axes, extend="max", label="log10 final loss (one scale for every panel)")
    fig.suptitle(f"{title + ': ' if title else ''}final loss at the best lr, mean over seeds", fontsize=10)
    return save(fig, path, formats)
