"""Figures from tidy rows: learning curves and max LE vs gain, every seed counted, n in the legend.

Functions take the rows of ``curves.csv`` / ``summary.json`` and a path; they never drop seeds.
Losses are spread over orders of magnitude, so a learning curve's band is the geometric mean
×/÷ the geometric standard deviation over seeds (mean ± std of log loss), which stays positive
on a log axis; the y range follows the 1st–99th percentile of what is drawn (one exploding
network does not flatten the others), and networks that diverged are counted in the legend.
Every figure is saved as PNG (FIG_DPI) and SVG, each written atomically (:func:`save`), and
titles and legends use words (:func:`describe`), never raw ``key=value``.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from matplotlib import rc_context
from matplotlib.figure import Figure

from neurosim.tables import LABELS, group, mean_std


def subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], **kw):
    """A figure and its axes, without pyplot: no backend is switched and no global figure
    registry holds it (importing or plotting changes no state of a notebook)."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kw)


FIG_DPI = 200
FORMATS = ("png", "svg")
WORDS = {"backend": {"float": "float", "float-sgd": "float SGD", "float-adam": "float Adam",
                     "fixed": "fixed point"},
         "rule": {"eprop": "e-prop", "bptt": "BPTT"}, "task": {"romo": "Romo", "2af": "2AF", "dms": "DMS"}}


def describe(key: str, value) -> str:
    """One grid or label value in words: ``gain 0.2``, ``8 bits``, ``e-prop``, ``no flossing``."""
    if key in WORDS:
        return WORDS[key].get(value, str(value))
    if value is None:
        return {"bits": "float", "profile": ""}.get(key, f"{key.replace('_', ' ')} none")
    if key == "bits":
        return f"{value} bits"
    if key == "profile" and re.fullmatch(r"bits\d+", str(value)):
        return ""  # the profile --bits derives: the bits say it
    if key == "flossing":
        m = re.fullmatch(r"(local|bptt)(\d+)(?:@([^+]+))?(?:\+every(\d+))?", str(value))
        if not m:
            return "no flossing" if str(value) == "off" else f"flossing {value}"
        variant, iters, lr, every = m.groups()
        return (f"{variant} flossing {iters} it." + (f" at lr {lr}" if lr else "")
                + (f", every {every} it." if every else ""))
    if key == "lr":
        return f"lr {value:g}" if isinstance(value, int | float) else f"lr {value}"
    if key == "profile_overrides":
        pairs = value if isinstance(value, list | tuple) else []
        return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in pairs) or "profile as shipped"
    return f"{key.replace('_', ' ')} {value}"


def describe_all(keys, values) -> str:
    """Several values in words, each said once (``float, float`` is ``float``)."""
    words = [describe(k, v) for k, v in zip(keys, values, strict=True)]
    return ", ".join(dict.fromkeys(w for w in words if w))


def save(fig, path: Path, formats: tuple[str, ...] = FORMATS) -> Path:
    """Save ``fig`` as ``path`` with each suffix of ``formats`` (PNG at FIG_DPI), each under a
    temporary name renamed into place: a figure is whole or absent. Returns the PNG (or first) path."""
    path = Path(path)
    written = []
    for fmt in formats:
        target = path.with_suffix(f".{fmt}")
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}.{fmt}")
        try:
            with rc_context({"svg.fonttype": "none"}):  # SVG text stays text: searchable, editable
                fig.savefig(tmp, dpi=FIG_DPI, format=fmt)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        written.append(target)
    return written[0]


def group_curves(rows: Iterable[dict], key=LABELS) -> dict[tuple, dict]:
    """Group curve rows by ``key``: → {key: {"iteration": (I,), "mean": (I,), "std": (I,),
    "lo": (I,), "hi": (I,), "n": int, "diverged": int}}.

    At each iteration, over the seeds that have a value there (a diverged network stops
    contributing from its divergence on): "mean" and "std" of the loss; "lo" and "hi" the
    geometric mean ÷ and × the geometric std (where every loss is positive, else mean ∓ std).
    "diverged": seeds present at the first iteration but not at the last.
    """
    by = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        by[tuple(r[k] for k in key)][r["iteration"]][r["seed"]] = r["loss"]
    out = {}
    for k, per_it in by.items():
        its = sorted(per_it)
        stats = [mean_std(per_it[i].values()) for i in its]
        lo, hi = zip(*(_geometric_band(list(per_it[i].values())) for i in its), strict=True)
        out[k] = {
            "iteration": np.array(its),
            "mean": np.array([m for m, _, _ in stats]),
            "std": np.array([s for _, s, _ in stats]),
            "lo": np.array(lo), "hi": np.array(hi),
            "n": max(n for _, _, n in stats),
            "diverged": len(set(per_it[its[0]]) - set(per_it[its[-1]])),
        }
    return out


def _geometric_band(values: list[float]) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    if v.size and np.all(np.isfinite(v)) and np.all(v > 0):
        mu, s = np.log(v).mean(), np.log(v).std()
        return float(np.exp(mu - s)), float(np.exp(mu + s))
    m, s, _ = mean_std(v)
    return m - s, m + s


def _label(k: tuple, varying: list[int]) -> str:
    return describe_all([LABELS[i] for i in varying], [k[i] for i in varying]) or "all networks"


def n_text(g: dict) -> str:
    """``n=5`` or ``n=5, 1 diverged`` for a :func:`group_curves` entry."""
    return f"n={g['n']}" + (f", {g['diverged']} diverged" if g.get("diverged") else "")


def draw_band(ax, g: dict, label: str, *, start: int = 0, style: str = "-") -> None:
    """The geometric-mean line with its ×/÷ geometric-std band, from a :func:`group_curves`
    entry, from iteration ``start`` on; the y range follows the 1st–99th percentile of all that
    is drawn on ``ax``."""
    keep = g["iteration"] >= start
    it = g["iteration"][keep]
    center = np.sqrt(g["lo"][keep] * g["hi"][keep]) if np.all(g["lo"][keep] > 0) else g["mean"][keep]
    line, = ax.plot(it, center, style, label=label, lw=1.4)
    ax.fill_between(it, g["lo"][keep], g["hi"][keep], color=line.get_color(), alpha=0.2, lw=0)
    drawn = np.concatenate([np.asarray(ln.get_ydata(), dtype=float) for ln in ax.get_lines()])
    positive = drawn[np.isfinite(drawn) & (drawn > 0)]
    if positive.size:
        ax.set_yscale("log")
        lo, hi = np.percentile(positive, [1, 99])
        ax.set_ylim(lo / 1.5, hi * 1.5)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss (masked MSE)")


BACKEND_STYLE = {"float": "-", "float-adam": "-", "float-sgd": "--", "fixed": ":"}


def plot_learning_curves(rows: list[dict], path: Path, *, title: str = "", start: int = 0,
                         formats: tuple[str, ...] = FORMATS) -> Path:
    """Loss vs iteration from iteration ``start``, geometric mean ×/÷ geometric std over seeds,
    one line per configuration (float Adam, float SGD and the engine in distinct line styles)."""
    groups = group_curves(rows)
    keys = sorted(groups, key=str)
    varying = [i for i in range(len(LABELS)) if len({k[i] for k in keys}) > 1]
    fig, ax = subplots(figsize=(6.4, 4.2))
    for k in keys:
        draw_band(ax, groups[k], f"{_label(k, varying)} ({n_text(groups[k])})", start=start,
                  style=BACKEND_STYLE.get(k[0], "-"))
    ax.set_title(title or "learning curves", fontsize=10)
    ax.legend(fontsize=7, title="geometric mean ×/÷ geometric std over seeds", title_fontsize=7)
    fig.tight_layout()
    return save(fig, path, formats)


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


def plot_le_vs_gain(rows: list[dict], path: Path, *, title: str = "",
                    formats: tuple[str, ...] = FORMATS) -> Path:
    """Max Lyapunov exponent vs initial gain, mean ± std over seeds — the paper's Figure 3.

    Before training, the networks of every backend, rule and flossing setting are the same
    initial networks (quantised, for a fixed-point backend): one dashed grey line per precision,
    each network counted once. After training, one solid coloured line per configuration that
    varies among backend, rule, flossing and bits."""
    keys = [k for k in ("backend", "rule", "flossing", "bits") if len({r.get(k) for r in rows}) > 1]
    fig, ax = subplots(figsize=(7.6, 4.2))
    initial = {(r.get("bits"), r["gain"], r["seed"]): r for r in rows if r.get("le_before") is not None}
    for i, bits in enumerate(sorted({b for b, _, _ in initial}, key=lambda b: (b is not None, b or 0))):
        stats = by_gain([r for (b, _, _), r in initial.items() if b == bits], "le_before")
        if stats is not None:
            gains, mean, std, n = stats
            ax.errorbar(gains, mean, yerr=std, fmt="o--", color=str(0.15 + 0.25 * i), capsize=3,
                        label=f"before training, {describe('bits', bits)} (n={n})")
    # float SGD partners of two precision cells at one lr are the same networks: count each once
    after = list({tuple(r.get(k) for k in (*keys, "lr", "gain", "seed")): r for r in rows}.values())
    for i, combo in enumerate(sorted({tuple(r.get(k) for k in keys) for r in after}, key=str)):
        stats = by_gain([r for r in after if tuple(r.get(k) for k in keys) == combo], "le_after")
        if stats is not None:
            gains, mean, std, n = stats
            name = describe_all(keys, combo)
            ax.errorbar(gains, mean, yerr=std, fmt="s-", color=f"C{i % 10}", capsize=3,
                        label=f"after training{', ' + name if name else ''} (n={n})")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("initial gain")
    ax.set_ylabel("max Lyapunov exponent (nats/step)")
    ax.set_title(title or "max Lyapunov exponent vs initial gain, mean ± std over seeds", fontsize=9)
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return save(fig, path, formats)
