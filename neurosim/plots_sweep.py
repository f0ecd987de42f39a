"""Figures of a sweep (or run) directory: learning curves at the chosen lr, final-loss heatmap.

- ``learning_curves.png``: loss vs iteration, mean ± std (shaded) over every seed at the best
  lr of each (…, gain) group, one line per gain and one panel per combination of the other
  keys that vary (task, rule, flossing, bits, …); n in the legend.
- ``le_vs_gain.png``: max Lyapunov exponent before and after training vs gain, at the best lr.
- ``final_loss_vs_gain.png`` (when the sweep has 3 or more gains): final loss at the best lr
  vs gain, mean ± std over the seeds that did not diverge, one line per rule (and other varying
  keys), one panel per task (the paper's Fig. 5 layout); log scale.
- ``final_loss_heatmap.png`` (when the sweep has ``bits``): final loss at the best lr, mean
  over the seeds that did not diverge, over gain (x) × precision (y: ``N bits`` for the
  fixed-point engine, and the float baselines by backend name), one panel per other combination.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from neurosim.errors import InputError
from neurosim.plots import by_gain, draw_band, group_curves, plot_le_vs_gain, subplots
from neurosim.results import load_run
from neurosim.sweep import load_sweep_dir
from neurosim.tables import NOT_LR, extra_keys, mark_best_lr, mark_curves, usable_loss


def plot_results(path: Path) -> list[Path]:
    """Write the figures of a sweep or run directory into ``path/figures``; their paths."""
    path = Path(path)
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
    figures = path / "figures"
    figures.mkdir(exist_ok=True)
    written = [plot_best_lr_curves(curves, figures / "learning_curves.png", keys, title=title)]
    heat = plot_final_loss_heatmap(summary, figures / "final_loss_heatmap.png", keys, title=title)
    best = [r for r in summary if r.get("best_lr") and r.get("le_before") is not None]
    if best:
        written.append(plot_le_vs_gain(best, figures / "le_vs_gain.png", title=title))
    vs_gain = plot_final_loss_vs_gain(summary, figures / "final_loss_vs_gain.png", keys, title=title)
    return written + [p for p in (vs_gain, heat) if p]


def _varying(rows: list[dict], keys) -> list[str]:
    return [k for k in keys if len({json.dumps(r.get(k)) for r in rows}) > 1]


def _panel_grid(n: int, width: float = 4.6, height: float = 3.5):
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig, axes = subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
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
    return ", ".join(f"{k}={v}" for k, v in zip(keys, values, strict=True))


def plot_best_lr_curves(curves: list[dict], path: Path, keys=NOT_LR, *, title: str = "") -> Path:
    """Training loss vs iteration at the best lr (rows flagged ``best_lr``), mean ± std over seeds."""
    rows = [r for r in curves if r.get("best_lr") and r.get("phase", "train") == "train"]
    if not rows:
        raise InputError(f"no finished training curves to plot for {path.parent.parent}")
    panel_keys = _varying(rows, [k for k in keys if k != "gain"])
    panels = _panels(rows, panel_keys)
    fig, axes = _panel_grid(len(panels))
    for ax, (values, prow) in zip(axes, panels.items(), strict=True):
        groups = group_curves(prow, key=("gain", "lr"))
        for (gain, lr), g in sorted(groups.items(), key=lambda kv: kv[0]):
            draw_band(ax, g, f"gain {gain} (lr {lr:g}, n={g['n']})")
        ax.set_title(_title(panel_keys, values) or "all", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(f"{title + ': ' if title else ''}mean ± std over seeds at the best lr", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_final_loss_vs_gain(summary: list[dict], path: Path, keys=NOT_LR, *, title: str = "") -> Path | None:
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
        ax.set_title(_title(panel_keys, values) or "all", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(f"{title + ': ' if title else ''}final loss at the best lr, mean ± std over seeds",
                 fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _precision(r: dict) -> str:
    if r.get("bits") is not None:
        return f"{r['bits']} bits"
    return str(r.get("profile") or r["backend"])


def plot_final_loss_heatmap(summary: list[dict], path: Path, keys=NOT_LR, *, title: str = "") -> Path | None:
    """Final loss at the best lr over gain × precision, when the sweep has ``bits``; else None."""
    rows = [r for r in summary if r.get("best_lr")]
    if not any(r.get("bits") is not None for r in rows):
        return None
    panel_keys = _varying(rows, [k for k in keys if k not in ("gain", "bits", "profile", "backend")])
    panels = _panels(rows, panel_keys)
    fig, axes = _panel_grid(len(panels), width=5.2, height=3.8)
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
        image = ax.imshow(np.log10(heat), aspect="auto", cmap="viridis")
        for (i, j), v in np.ndenumerate(heat):
            light = np.isnan(v) or image.norm(np.log10(v)) > 0.6  # dark text on yellow and on blank
            ax.text(j, i, "div." if np.isnan(v) else f"{v:.2g}", ha="center", va="center", fontsize=7,
                    color="k" if light else "w")
        ax.set_xticks(range(len(gains)), [f"{g:g}" for g in gains])
        ax.set_yticks(range(len(precisions)), precisions)
        ax.set_xlabel("initial gain")
        ax.set_title(_title(panel_keys, values) or "final loss", fontsize=9)
        fig.colorbar(image, ax=ax, label="log10 final loss")
    fig.suptitle(f"{title + ': ' if title else ''}final loss at the best lr, mean over seeds", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    """Save as PNG under a temporary name, then rename: a figure is whole or absent."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.png")
    try:
        fig.savefig(tmp, dpi=120)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
