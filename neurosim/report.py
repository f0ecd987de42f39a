"""Terminal output of the CLI: progress (a rich bar on a terminal, plain log lines in a log or a
pipe) and the summary table of a training run, laid out to fit 80 columns."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from neurosim.tables import LABELS, group, mean_std

Advance = Callable[..., None]  # advance(done, total, loss=None): loss per backend name
SHORT = {"flossing": "floss", "profile": "prof."}  # headers of label columns, for 80 columns
LOG_LINES = 20  # at most this many plain progress lines per run (one more for the last iteration)
# a profile's ``overflow`` rule → (column header, what its counts are)
OVERFLOW_WORDS = {"saturate": ("sat.", "saturations"), "wrap": ("wraps", "wraps")}


def log_step(total: int, lines: int = LOG_LINES) -> int:
    """The smallest 1, 2 or 5 × 10^n iterations between plain progress lines that prints at
    most ``lines`` of them over ``total`` iterations (2000 → every 100)."""
    need = max(1, math.ceil(total / lines))
    magnitude = 10 ** math.floor(math.log10(need))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= need)


SHORT = {"float-adam": "Adam", "float-sgd": "SGD"}  # backend names in an 80-column log line


def loss_text(loss: dict[str, float] | None) -> str:
    """``loss 0.0412 (SGD), 0.0450 (fixed)``; ``flossing`` before any task loss."""
    if not loss:
        return "flossing"
    return "loss " + ", ".join(f"{v:.4g} ({SHORT.get(k, k)})" for k, v in loss.items())


@contextmanager
def progress_bar(description: str, *, log_lines: bool = False) -> Iterator[Advance]:
    """Yield ``advance(done, total, loss=None)``. On a terminal it drives a bar on stderr that
    shows the latest loss; otherwise, with ``log_lines``, it prints a plain line to stdout
    every :func:`log_step` iterations and at the last (``iteration 200/2000  loss ...``), and
    without it nothing: a log or a pipe gets no control characters, and stderr keeps only the
    one ``error:`` line of a failure."""
    console = Console(stderr=True)
    if not console.is_terminal:
        def line(done: int, total: int, loss: dict[str, float] | None = None) -> None:
            if log_lines and (done % log_step(total) == 0 or done == total):
                print(f"{description} {done}/{total}  {loss_text(loss)}", flush=True)

        yield line
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn(), TextColumn("{task.fields[loss]}"))
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=None, loss="")

        def advance(done: int, total: int, loss: dict[str, float] | None = None) -> None:
            bar.update(task, completed=done, total=total, loss=loss_text(loss) if loss is not None else "")

        yield advance


def summary_table(summary: list[dict], profile: dict | None = None,
                  console: Console | None = None) -> None:
    """Per configuration: final loss mean ± std over seeds, how far it fell (mean first loss /
    mean final loss of the networks that did not diverge), n and divergences; for fixed-point
    rows the overflow count, named by the ``profile``'s overflow rule (saturations or wraps),
    and the stall fractions (weight updates that rounded to zero) per matrix; then a legend.
    Printed on ``console`` (default: stdout); every line fits 80 columns."""
    console = console or Console()
    groups = group(summary, LABELS)
    varying = [k for i, k in enumerate(LABELS)
               if len({g[i] for g in groups if g[i] is not None}) > 1] or ["backend"]
    fixed = any(k.startswith("sat_") for r in summary for k in r)
    stalls = list(dict.fromkeys(k for r in summary for k in r if k.startswith("stall_")))
    rule = (profile or {}).get("overflow", "unknown")
    head, word = OVERFLOW_WORDS.get(rule, ("ovf.", "overflows"))
    table = Table(title="final loss, mean ± std over seeds", box=box.SIMPLE_HEAD, pad_edge=False,
                  collapse_padding=True)
    for k in varying:
        table.add_column(SHORT.get(k, k), overflow="fold")
    for col in ("loss", "fall", "n", "div", *([head, "stall %"] if fixed else [])):
        table.add_column(col, justify="right", overflow="fold")
    for key, rows in groups.items():
        kept = [r for r in rows if not r["diverged"]]
        mean, std, n = mean_std(r["final_loss"] for r in kept)
        cells = [_label(key[LABELS.index(k)]) for k in varying] + [f"{mean:.4g} ± {std:.2g}" if n else "—",
                  f"{mean_std(r['initial_loss'] for r in kept)[0] / mean:.2f}×" if n else "—",
                  str(len(rows)), str(len(rows) - n)]
        if fixed:
            cells += _overflow_cells(rows, stalls)
        table.add_row(*cells)
    console.print(table)
    legend = ("loss: mean of the last iterations; fall: first / final loss; n: networks; div: "
              "diverged (left out of loss and fall)")
    if fixed:
        legend += (f"; {head}: {word} of any signal, summed over networks (overflow rule "
                   f"{rule}); stall %: non-zero weight updates "
                   f"that rounded to zero, {'/'.join(k[6:] for k in stalls)}, mean over networks")
    console.print(legend, style="dim", highlight=False)
    if fixed:
        names = ", ".join(sorted({str(r["profile"]) for r in summary if r["profile"] is not None}))
        counts = ", ".join(f"{k} {v}" for k, v in _by_signal(summary)) or "none"
        console.print(f"profile {names}: {word} by signal: {counts}")


def _label(value) -> str:
    """A label cell: ``—`` for none (a float row's profile)."""
    return "—" if value is None else str(value)


def _overflow_cells(rows: list[dict], stalls: list[str]) -> list[str]:
    """The overflow total and the ``a/b/c`` stall percentages of one configuration's rows
    (``—`` for a float backend, which has neither)."""
    if not any(k.startswith("sat_") for k in rows[0]):
        return ["—", "—"]
    total = sum(v for r in rows for k, v in r.items() if k.startswith("sat_"))
    stall = "/".join(f"{100 * np.mean([r[k] for r in rows]):.0f}" for k in stalls if k in rows[0])
    return [str(total), stall or "—"]


def _by_signal(summary: list[dict], top: int = 6) -> list[tuple[str, int]]:
    """The ``top`` signals with the most overflows over all rows, largest first (none if none)."""
    totals: dict[str, int] = {}
    for r in summary:
        for k, v in r.items():
            if k.startswith("sat_"):
                totals[k[4:]] = totals.get(k[4:], 0) + v
    return sorted(((k, v) for k, v in totals.items() if v), key=lambda kv: -kv[1])[:top]


def _mean_final(summary: list[dict], backend: str) -> float | None:
    """Mean final loss of ``backend``'s networks that did not diverge (None if none)."""
    vals = [r["final_loss"] for r in summary if r["backend"] == backend and not r["diverged"]]
    return float(np.mean(vals)) if vals else None


def fixed_float_ratio(summary: list[dict]) -> float | None:
    """Mean final loss of the fixed-point backend over that of float SGD, if both ran."""
    fixed, sgd = _mean_final(summary, "fixed"), _mean_final(summary, "float-sgd")
    return fixed / sgd if fixed and sgd else None


def gap_lines(summary: list[dict]) -> list[str]:
    """What each gap between the backends of a fixed-point run means, in words, and which
    backends diverged: float SGD vs the engine is precision alone (same lr, seeds, batches);
    float Adam vs float SGD is the optimiser (the paper's reference vs the chip's)."""
    means = {b: _mean_final(summary, b) for b in ("float-adam", "float-sgd", "fixed")}
    lines = []
    ratio = fixed_float_ratio(summary)
    if ratio is not None:
        lines.append(f"fixed / float final loss: {ratio:.3f} (the engine vs float SGD: precision alone)")
    if means.get("float-sgd") and means.get("float-adam"):
        ratio = means["float-sgd"] / means["float-adam"]
        lines.append(f"float SGD / float Adam (the optimiser): {ratio:.2f}x the final loss")
    names = {"float-adam": "float Adam", "float-sgd": "float SGD", "fixed": "the fixed-point engine"}
    for b, name in names.items():
        rows = [r for r in summary if r["backend"] == b]
        n = sum(r["diverged"] for r in rows)
        if n:
            lines.append(f"warning: {name} diverged in {n} of {len(rows)} networks (not in its mean)")
    return lines
