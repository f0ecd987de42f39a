"""Figures of the claims report (:mod:`neurosim.claims`): the paper's Fig. 1, 3 and 4, with
α = 0.5 beside α = 0.8.

- ``fig1_alpha.png``: loss vs iteration at each gain's best lr, mean ± std over seeds (n in the
  legend); rows BPTT / e-prop, columns α.
- ``fig3_alpha.png``: max LE before and after training vs gain (best lr), mean ± std; rows raw /
  transient excluded, columns α; one line per rule and phase; log α dotted.
- ``fig4_alpha.png``: e-prop loss vs iteration without and with each flossing variant (best task
  lr each); rows gain, columns α.

Curves are the Adam runs (the paper's optimiser); the SGD variant of claim 3 is a table only.
"""

from __future__ import annotations

import math
from pathlib import Path

from neurosim.plots import by_gain, describe, draw_band, group_curves, n_text, save, subplots

ALPHAS = (0.5, 0.8)


def plot_claims(t, figures: Path) -> list[Path]:
    """Write the three figures of a :class:`~neurosim.claims.Tables` into ``figures``."""
    figures = Path(figures)
    figures.mkdir(parents=True, exist_ok=True)
    best = {_key(r) for r in t.summary if r.get("best_lr")}
    curves = [c for c in t.curves if c["phase"] == "train" and _key(c) in best and c["optimizer"] == "adam"]
    return [
        _fig1(curves, figures / "fig1_alpha.png"),
        _fig3(t.summary, figures / "fig3_alpha.png"),
        _fig4(curves, figures / "fig4_alpha.png"),
    ]


def _key(r: dict) -> tuple:
    return (r["cell"], r["gain"], r["lr"])


def _grid(rows: list, cols: list):
    fig, axes = subplots(len(rows), len(cols), figsize=(5.0 * len(cols), 3.6 * len(rows)), squeeze=False)
    return fig, axes


def _curves(ax, rows: list[dict], label_of) -> None:
    groups = group_curves(rows, key=("flossing", "gain", "lr"))
    for k in sorted(groups, key=str):
        draw_band(ax, groups[k], f"{label_of(k)} ({n_text(groups[k])})")
    if groups:
        ax.legend(fontsize=6)
    else:
        ax.text(0.5, 0.5, "not run", ha="center", transform=ax.transAxes)


def _fig1(curves: list[dict], path: Path) -> Path:
    rules = ("bptt", "eprop")
    fig, axes = _grid(rules, ALPHAS)
    for i, rule in enumerate(rules):
        for j, a in enumerate(ALPHAS):
            sub = [c for c in curves if c["rule"] == rule and c["alpha"] == a and c["flossing"] == "off"]
            _curves(axes[i, j], sub, lambda k: f"gain {k[1]:g}, lr {k[2]:g}")
            axes[i, j].set_title(f"Fig. 1: {describe('rule', rule)}, α = {a}", fontsize=9)
    return _save(fig, path)


def _fig3(summary: list[dict], path: Path) -> Path:
    conventions = (("", "raw"), ("_tr", "transient excluded"))
    fig, axes = _grid(conventions, ALPHAS)
    for i, (suffix, name) in enumerate(conventions):
        for j, a in enumerate(ALPHAS):
            ax = axes[i, j]
            picked = [r for r in summary if r["alpha"] == a and r["flossing"] == "off"
                      and r.get("best_lr") and r["optimizer"] == "adam"]
            # both rules start from the same networks: "before" is drawn once, each network once
            initial = list({(r["gain"], r["seed"]): r for r in picked}.values())
            got = by_gain(initial, f"le_before{suffix}")
            if got:
                gains, mean, std, n = got
                ax.errorbar(gains, mean, yerr=std, fmt="o--", color="0.35", capsize=3,
                            label=f"before training, both rules (n={n})")
            for color, rule in (("C0", "bptt"), ("C3", "eprop")):
                got = by_gain([r for r in picked if r["rule"] == rule], f"le_after{suffix}")
                if got:
                    gains, mean, std, n = got
                    ax.errorbar(gains, mean, yerr=std, fmt="s-", color=color, capsize=3,
                                label=f"{describe('rule', rule)} after training (n={n})")
            ax.axhline(0, color="grey", lw=0.8)
            ax.axhline(math.log(a), color="grey", lw=0.8, ls=":")
            ax.set_xlabel("initial gain")
            ax.set_ylabel("max LE (nats/step)")
            ax.set_title(f"Fig. 3: α = {a}, {name} (dotted: log α)", fontsize=9)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=6)
            else:
                ax.text(0.5, 0.5, "not run", ha="center", transform=ax.transAxes)
    return _save(fig, path)


def _fig4(curves: list[dict], path: Path) -> Path:
    gains = (0.2, 1.0)
    fig, axes = _grid(gains, ALPHAS)
    for i, g in enumerate(gains):
        for j, a in enumerate(ALPHAS):
            sub = [c for c in curves if c["rule"] == "eprop" and c["alpha"] == a and c["gain"] == g]
            _curves(axes[i, j], sub, lambda k: f"{describe('flossing', k[0])}, lr {k[2]:g}")
            axes[i, j].set_title(f"Fig. 4: e-prop, gain {g:g}, α = {a}", fontsize=9)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    return save(fig, path)
