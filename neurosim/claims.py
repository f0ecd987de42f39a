"""``neurosim claims``: every sweep behind the paper's three claims, then the verdict tables.

The sweeps are shipped experiments (``neurosim/experiments/claims-*.toml``), run in this order
through :func:`neurosim.sweep.run_sweep` into ``OUT/<name>`` (a finished sweep is resumed, i.e.
skipped; a killed one continues):

    floss-lr     flossing's own lr: λ₁ after 100 flossing iterations over a grid (the pilot)
    a05, a08     claims 1-2: BPTT and e-prop, gains 0.2 / 1.0, α = 0.5 and 0.8
    floss-a05    claim 3 at α = 0.5: flossing pretraining at two own lrs, and interleaved
    floss-a08    claim 3 at α = 0.8
    floss-sgd-a05  claim 3 with SGD at lr 1 (the chip's optimiser), flossing at 2^-4

Then :func:`collect` reads every sweep directory there (rows get an ``alpha`` column from
their cell's config), :mod:`neurosim.verdicts` computes the statistics, and
:func:`render_markdown` writes ``OUT/claims.md`` (the tables the README quotes) beside
``OUT/figures`` (:mod:`neurosim.plots_claims`). With ``train=False`` the tables are built from
whatever cells have finished, and the report lists what is missing.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neurosim import verdicts as V
from neurosim.grid import experiment_path, load_sweep
from neurosim.results import OutputError, atomic_write
from neurosim.sweep import load_sweep_dir, run_sweep

SWEEPS = ("floss-lr", "a05", "floss-a05", "a08", "floss-a08", "floss-sgd-a05")
OPTIMIZERS = ("adam", "sgd")  # claim 3 with Adam (the paper's optimiser) and with SGD (the chip's)
ALPHAS = (0.5, 0.8)
LAMBDA2_TARGET = 0.01  # the pilot's choice: smallest floss lr with mean λ₁² below this at every gain


@dataclass
class Tables:
    """Rows of every sweep found (``alpha`` added), and per sweep its cell bookkeeping."""

    summary: list[dict] = field(default_factory=list)
    curves: list[dict] = field(default_factory=list)
    pilot: list[dict] = field(default_factory=list)
    sweeps: dict[str, dict] = field(default_factory=dict)  # name → {"cells", "done", "seconds", "networks"}
    floss_grid: dict[float, list[float]] = field(default_factory=dict)  # alpha → floss lrs of its sweep


def run_claims(out: Path, *, quick: bool = False, train: bool = True, **run) -> tuple[Path, list[Path]]:
    """Run (``train``) or just read every claims sweep under ``out``; write ``claims.md`` and
    the figures. ``run``: keyword arguments of :func:`~neurosim.sweep.run_sweep`. Returns the
    Markdown path and the figure paths."""
    from neurosim.plots_claims import plot_claims

    out = Path(out)
    specs = {name: load_sweep(experiment_path(f"claims-{name}"), quick=quick) for name in SWEEPS}
    if train:
        for name, spec in specs.items():
            run_sweep(spec, out / name, **run)
    tables = collect(out)
    if not tables.sweeps:
        raise OutputError(
            f"no claims sweep under {out} (expected {', '.join(SWEEPS)}); run without --tables-only"
        )
    md = out / "claims.md"
    text = render_markdown(tables, quick=quick)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(md, lambda fh: fh.write(text))
    return md, plot_claims(tables, out / "figures")


def collect(out: Path) -> Tables:
    """Every claims sweep directory under ``out`` that exists, as :class:`Tables`."""
    t = Tables()
    for name in SWEEPS:
        d = Path(out) / name
        if not (d / "manifest.json").is_file():
            continue
        sweep = load_sweep_dir(d)
        cells = sweep["manifest"]["cells"]
        alpha = {c["id"]: round(1 - c["config"]["dt"] / c["config"]["tau"], 6) for c in cells}
        optimizer = {c["id"]: c["config"]["optimizer"] for c in cells}
        done = [c for c in cells if c["status"] == "done"]
        t.sweeps[name] = {
            "cells": len(cells),
            "done": len(done),
            "networks": sum(c["networks"] for c in done),
            "seconds": sum(c["seconds"] or 0.0 for c in done),
        }
        rows = [{**r, "alpha": alpha[r["cell"]], "optimizer": optimizer[r["cell"]]} for r in sweep["summary"]]
        if name == "floss-lr":
            t.pilot = rows
            continue
        if name.startswith("floss-"):
            for c in cells:
                t.floss_grid.setdefault(alpha[c["id"]], [])
                if c["config"]["floss_lr"] not in t.floss_grid[alpha[c["id"]]]:
                    t.floss_grid[alpha[c["id"]]].append(c["config"]["floss_lr"])
        t.summary += rows
        t.curves += [
            {**r, "alpha": alpha[r["cell"]], "optimizer": optimizer[r["cell"]]} for r in sweep["curves"]
        ]
    return t


def pilot_choice(pilot: list[dict]) -> dict[float, float | None]:
    """Per α, flossing's lr from a pilot (rows with ``alpha``, ``flossing``, ``gain``,
    ``le_after``): the smallest lr whose mean λ₁² after flossing is <= LAMBDA2_TARGET at every
    gain; if none is, the lr with the lowest mean λ₁² over all networks among those whose
    networks all stayed finite (None if none did)."""
    by: dict[tuple, list[float]] = defaultdict(list)
    for r in pilot:
        by[(r["alpha"], _floss_lr(r["flossing"]), r["gain"])].append(r["le_after"])
    out: dict[float, float | None] = {}
    for a in sorted({k[0] for k in by}):
        lrs = sorted({k[1] for k in by if k[0] == a})
        lam2 = {lr: [float(np.mean(np.square(v))) for k, v in by.items() if k[:2] == (a, lr)] for lr in lrs}
        ok = [lr for lr in lrs if all(m <= LAMBDA2_TARGET for m in lam2[lr])]
        finite = [lr for lr in lrs if all(math.isfinite(m) for m in lam2[lr])]
        out[a] = ok[0] if ok else min(finite, key=lambda lr: np.mean(lam2[lr])) if finite else None
    return out


def render_markdown(t: Tables, *, quick: bool = False) -> str:
    """The verdict report: a summary table, one table per claim, the pilot, wall times."""
    lines = ["# The paper's claims: verdicts", ""]
    if quick:
        lines += ["**Quick (CI-sized) run: tiny networks, few seeds and iterations — not evidence.**", ""]
    c1 = {
        (a, rule): V.claim1_rows(t.summary, t.curves, a, rule) for a in ALPHAS for rule in ("bptt", "eprop")
    }
    c2 = {
        (a, rule, s): V.claim2_rows(t.summary, a, rule, s)
        for a in ALPHAS
        for rule in ("bptt", "eprop")
        for s in ("", "_tr")
    }
    c3 = {(a, o): V.claim3_rows(t.summary, t.curves, a, o) for o in OPTIMIZERS for a in ALPHAS}
    lines += _summary(c1, c2, c3)
    lines += [
        "",
        "## Claim 1: small initial gain learns markedly slower (Romo)",
        "",
        "Gain 0.2 vs gain 1.0, each at its best lr of {3e-4, 1e-3}; loss at iteration i = mean "
        f"logged loss over (i − {V.WINDOW}, i]; final = mean of the last 100 iterations. "
        f"Mann–Whitney U (two-sided), r = rank-biserial (> 0: gain 0.2 higher).",
        "",
    ]
    lines += _rows_table(
        c1, ["setting", "measure", *GROUPS, "ratio 0.2/1.0", "r", "verdict"], "gain 0.2", "gain 1.0"
    )
    lines += [
        "",
        "## Claim 2: max LE far below 0 before training at small gain, near 0 after",
        "",
        "Networks at their best lr; LE in nats per step on the probe batch, raw (every step) and with "
        "the transient excluded (the steps whose Jacobian is taken at h = 0: Romo's fixation + 1, 7 "
        f"steps at α = 0.5, 16 at α = 0.8). Far below: mean <= {V.FAR} log α; near 0: |mean| <= "
        f"{V.NEAR} |log α| (partly <= {V.NEAR_PARTLY}); 'near' column = |mean| / |log α|. Welch's t, "
        "d = Cohen's d.",
        "",
    ]
    lines += _rows_table(c2, ["setting", "measure", "A", "B", "n", "p (Welch)", "d", "near", "verdict"])
    lines += [
        "",
        "## Claim 3: flossing before (and during) training improves e-prop",
        "",
        "Each variant at its best task lr vs no flossing at its best task lr (same seeds). "
        "`local100@LR` = 100 local flossing iterations at flossing's own Adam lr LR; `+every10` = "
        "and one more after every 10th training iteration. factor = loss without / with flossing "
        "(> 1: flossing better). Mann–Whitney U, r = rank-biserial (< 0: flossing lower).",
        "",
    ]
    lines += _rows_table(
        c3, ["setting", "variant", "measure", *GROUPS, "factor", "r", "verdict"], "flossing", "no flossing"
    )
    lines += ["", "## Flossing's own lr (pilot)", ""] + _pilot(t)
    lines += ["", "## Runs", ""] + _runs(t)
    return "\n".join(lines) + "\n"


def _summary(c1, c2, c3) -> list[str]:
    rows = []
    for rule in ("bptt", "eprop"):
        rows.append(
            [
                f"1 ({rule})",
                "gain 0.2 learns markedly slower than gain 1.0",
                *(V.claim1_verdict(c1[(a, rule)]) for a in ALPHAS),
            ]
        )
    for rule in ("bptt", "eprop"):
        for s, name in (("", "raw"), ("_tr", "transient excluded")):
            rows.append(
                [
                    f"2 ({rule}, {name})",
                    "max LE far below 0 at gain 0.2 before training, near 0 after",
                    *(V.claim2_verdict(c2[(a, rule, s)]) for a in ALPHAS),
                ]
            )
    for o in OPTIMIZERS:
        cells = []
        for a in ALPHAS:
            verdict, which = V.claim3_verdict(c3[(a, o)])
            cells.append(verdict + (f": {'; '.join(which)}" if which else ""))
        statement = "100 flossing iterations improve learning, most at suboptimal gains"
        rows.append([f"3 (e-prop, {'Adam' if o == 'adam' else 'SGD lr 1'})", statement, *cells])
    return _table(["claim", "the paper's statement", "α = 0.5 (dt 0.5 τ)", "α = 0.8 (dt 0.2 τ)"], rows)


def _pilot(t: Tables) -> list[str]:
    if not t.pilot:
        return ["(not run)"]
    by: dict[tuple, list[dict]] = defaultdict(list)
    for r in t.pilot:
        by[(r["alpha"], _floss_lr(r["flossing"]), r["gain"])].append(r)
    rows = [
        [
            f"α={a}",
            f"{lr:g}",
            f"{g:g}",
            _ms(np.array([r["le_before"] for r in rs])),
            _ms(np.array([r["le_after"] for r in rs])),
            _f(float(np.mean([r["le_after"] ** 2 for r in rs]))),
            _ms(np.array([r["initial_loss"] for r in rs])),
        ]
        for (a, lr, g), rs in sorted(by.items())
    ]
    chosen = pilot_choice(t.pilot)
    text = [
        f"Rule: the smallest flossing lr with mean λ₁² <= {LAMBDA2_TARGET} at every gain after 100 "
        "iterations (else the lowest mean λ₁² among lrs whose networks all stay finite). Chosen: "
        + ", ".join(f"α={a}: {lr if lr is None else f'{lr:g}'}" for a, lr in chosen.items())
        + "; the claim-3 sweeps floss at "
        + ", ".join(f"α={a}: {', '.join(f'{x:g}' for x in lrs)}" for a, lrs in sorted(t.floss_grid.items()))
        + ".",
        "",
    ]
    return text + _table(
        [
            "α",
            "floss lr",
            "gain",
            "LE before",
            "LE after 100 floss it.",
            "mean λ₁²",
            "task loss after flossing",
        ],
        rows,
    )


def _runs(t: Tables) -> list[str]:
    rows = [
        [
            name,
            f"`neurosim sweep neurosim/experiments/claims-{name}.toml --out runs/claims/{name} --workers 1`",
            f"{s['done']}/{s['cells']}",
            str(s["networks"]),
            f"{s['seconds'] / 60:.1f} min",
        ]
        for name, s in t.sweeps.items()
    ]
    missing = [n for n in SWEEPS if n not in t.sweeps or t.sweeps[n]["done"] < t.sweeps[n]["cells"]]
    note = [f"Missing or incomplete: {', '.join(missing)}." if missing else "Every sweep is complete."]
    return (
        [
            "All of it: `neurosim claims --out runs/claims` (one worker process; `--tables-only` rebuilds "
            "this report from the finished cells). Wall time = the sum of the cells' training times.",
            "",
        ]
        + _table(["sweep", "command", "cells", "networks", "wall"], rows)
        + ["", *note]
    )


def _floss_lr(label: str) -> float:
    return float(label.split("@")[1].split("+")[0]) if "@" in label else math.nan


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *("| " + " | ".join(map(str, r)) + " |" for r in rows),
    ]


def _ms(v: np.ndarray) -> str:
    return f"{v.mean():.4g} ± {v.std(ddof=1):.2g}" if len(v) > 1 else (f"{v[0]:.4g}" if len(v) else "—")


GROUPS = ("group a", "group b", "n", "p")
CELLS = {  # table column → its text from a verdict row
    "setting": lambda r: r["setting"],
    "measure": lambda r: r["measure"],
    "variant": lambda r: r["variant"],
    "group a": lambda r: _ms(r["a"]) + (f" (lr {r['lr_a']:g})" if "lr_a" in r else ""),
    "group b": lambda r: _ms(r["b"]) + (f" (lr {r['lr_b']:g})" if "lr_b" in r else ""),
    "A": lambda r: _ms(r["a"]),
    "B": lambda r: _ms(r["b"]),
    "n": lambda r: _n(r),
    "p": lambda r: _p(r["p"]),
    "p (Welch)": lambda r: _p(r["p"]),
    "d": lambda r: _f(r["d"]),
    "near": lambda r: _f(r.get("near", math.nan)),
    "ratio 0.2/1.0": lambda r: _f(r["ratio"]),
    "factor": lambda r: _f(r["factor"]),
    "r": lambda r: _f(r["r"]),
    "verdict": lambda r: r["verdict"],
}


def _rows_table(groups: dict, columns: list[str], a: str = "A", b: str = "B") -> list[str]:
    """A Markdown table of every verdict row in ``groups`` (key → rows), one column per name;
    ``a``/``b`` head the two groups' columns."""
    rows = [[CELLS[c](r) for c in columns] for rs in groups.values() for r in rs]
    headers = {"group a": a, "group b": b, "p": "p (MWU)"}
    return _table([headers.get(c, c) for c in columns], rows)


def _n(r: dict) -> str:
    text = f"{len(r['a'])} / {len(r['b'])}"
    div = r.get("diverged", (0, 0))
    return text + (f" ({div[0]}+{div[1]} diverged)" if any(div) else "")


def _p(p: float) -> str:
    return "—" if not math.isfinite(p) else f"{p:.2g}"


def _f(x: float) -> str:
    return "—" if not math.isfinite(x) else f"{x:.3g}"
