"""Terminal output of the CLI: a progress bar and the summary table (rich, on stderr/stdout)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from neurosim.tables import LABELS, group, mean_std


@contextmanager
def progress_bar(description: str) -> Iterator:
    """Yield ``advance(done, total)`` that drives a bar on stderr (nothing without a terminal:
    a log or a pipe gets no control characters and no stray blank line)."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda done, total: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance


def summary_table(summary: list[dict]) -> None:
    """Final loss mean ± std over seeds per configuration, how far the loss fell (mean first
    loss / mean final loss of the networks that did not diverge), n and divergences; with
    both a float and a fixed-point backend, the fixed/float ratio and the saturation counts."""
    groups = group(summary, LABELS)
    varying = [k for i, k in enumerate(LABELS) if len({g[i] for g in groups}) > 1] or ["backend"]
    table = Table(title="final loss (mean of the last iterations), mean ± std over seeds")
    for k in varying:
        table.add_column(k)
    for col in ("final loss", "fall", "n", "diverged", "saturations"):
        table.add_column(col, justify="right")
    for key, rows in groups.items():
        kept = [r for r in rows if not r["diverged"]]
        mean, std, n = mean_std(r["final_loss"] for r in kept)
        sats = sum(v for r in rows for k, v in r.items() if k.startswith("sat_"))
        cells = [str(key[LABELS.index(k)]) for k in varying]
        loss = f"{mean:.4g} ± {std:.2g}" if n else "—"
        fall = f"{mean_std(r['initial_loss'] for r in kept)[0] / mean:.2f}×" if n else "—"
        table.add_row(*cells, loss, fall, str(len(rows)), str(len(rows) - n), str(sats))
    console = Console()
    console.print(table)
    ratio = fixed_float_ratio(summary)
    if ratio is not None:
        console.print(f"fixed / float final loss: {ratio:.3f}")


def fixed_float_ratio(summary: list[dict]) -> float | None:
    """Mean final loss of the fixed-point backend over that of float SGD, if both ran."""
    means = {}
    for b in ("fixed", "float-sgd"):
        vals = [r["final_loss"] for r in summary if r["backend"] == b and not r["diverged"]]
        if vals:
            means[b] = float(np.mean(vals))
    return means["fixed"] / means["float-sgd"] if len(means) == 2 else None


def gap_lines(summary: list[dict]) -> list[str]:
    """What each gap between the backends of a fixed-point run means, in words, and which
    backends diverged: float SGD vs the engine is precision alone (same lr, seeds, batches);
    float Adam vs float SGD is the optimiser (the paper's reference vs the chip's)."""
    means, diverged = {}, {}
    for b in ("float-adam", "float-sgd", "fixed"):
        rows = [r for r in summary if r["backend"] == b]
        if rows:
            ok = [r["final_loss"] for r in rows if not r["diverged"]]
            means[b] = float(np.mean(ok)) if ok else None
            diverged[b] = len(rows) - len(ok)
    lines = []
    if means.get("fixed") and means.get("float-sgd"):
        ratio = means["fixed"] / means["float-sgd"]
        lines.append(f"fixed point vs float SGD (precision alone): {ratio:.2f}x the final loss")
    if means.get("float-sgd") and means.get("float-adam"):
        lines.append(f"float SGD vs float Adam (the optimiser: the chip's SGD vs the paper's Adam): "
                     f"{means['float-sgd'] / means['float-adam']:.2f}x the final loss")
    names = {"float-adam": "float Adam", "float-sgd": "float SGD", "fixed": "the fixed-point engine"}
    for b, n in diverged.items():
        if n:
            total = sum(1 for r in summary if r["backend"] == b)
            lines.append(f"warning: {names[b]} diverged in {n} of {total} networks (left out of its mean)")
    return lines
