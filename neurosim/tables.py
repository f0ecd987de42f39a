"""The results tables' one vocabulary: which columns label a configuration, how rows group,
mean ± std over seeds with n, which final losses count, and the best learning rate.

Every table, report and figure (``results``, ``sweep``, ``report``, ``plots``, ``plots_sweep``,
``cli_lyapunov``) takes these from here, so a label column or a statistic is stated once.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

import numpy as np

LABELS = ("backend", "rule", "task", "gain", "bits", "profile", "flossing", "lr")  # a configuration
CURVE_FIELDS = (*LABELS, "seed", "phase", "iteration", "loss")  # the columns of curves.csv
NOT_LR = tuple(k for k in LABELS if k != "lr")  # a configuration up to its learning rate


def mean_std(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean, standard deviation (population, ddof 0) and count; NaNs when empty."""
    v = np.asarray(list(values), dtype=float)
    return (float(v.mean()), float(v.std()), v.size) if v.size else (math.nan, math.nan, 0)


def group(rows: Iterable[dict], keys: tuple[str, ...]) -> dict[tuple, list[dict]]:
    """Rows by their values of ``keys``, in first-seen order."""
    out: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        out[tuple(r.get(k) for k in keys)].append(r)
    return dict(out)


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
