"""Verdicts on the paper's three claims from tidy sweep rows: statistics and table rows.

Pure functions of summary/curve rows (dicts as in ``summary.csv``/``curves.csv``, each with an
``alpha`` column added by :mod:`neurosim.claims`). Every comparison is between two groups of
independent networks (seeds), each group at its own best task lr (the paper's choice: fewest
diverged, then lowest mean final loss; the sweep's ``best_lr`` flag). Diverged networks are
left out of loss statistics and counted. Tests are two-sided and uncorrected for the number of
comparisons (every one is listed): Mann–Whitney U for losses (skewed, heavy-tailed across
seeds; effect size the rank-biserial r = 1 - 2U/(n_a n_b) and the ratio of means) and Welch's t
for Lyapunov exponents (effect size Cohen's d with the pooled sd).

Verdict rules (stated once, applied to every row):

- Claim 1, "gain 0.2 learns markedly slower than gain 1.0": per loss measure, *reproduces* if
  gain 0.2's loss is higher with p < 0.05 and at least MARKED = 1.5x; *partly* if higher with
  p < 0.05 but by less; *does not* otherwise. A setting's verdict is over the learning-speed
  measures (loss at iterations 500, 1000, 2000): reproduces if at least two of three do,
  partly if any one is reproduces or partly, does not otherwise. Final loss is shown beside.
- Claim 2, "before training gain 0.2's max LE is far below 0; after training it sits near 0":
  far below means a mean at most FAR = 0.5 log α (half-way from 0 to the floor log α of a
  silent network) and below gain 1.0's (Welch p < 0.05); near 0 means |mean| <= NEAR = 0.1
  |log α| (partly: <= 0.25 |log α|); "small gains demand more change" means the change
  after - before is larger at 0.2 (Welch p < 0.05).
- Claim 3, "flossing improves e-prop learning, most at suboptimal gains": a flossing variant
  *improves* a loss measure if its loss is lower than without flossing with p < 0.05 (*worse*
  if higher). A setting reproduces if some variant improves the final loss or the loss at
  iteration 1000 at gain 0.2 and its improvement factor there is larger than at gain 1.0;
  partly if some variant improves at some gain; does not otherwise.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
from scipy import stats

P = 0.05
MARKED = 1.5
FAR = 0.5
NEAR, NEAR_PARTLY = 0.1, 0.25
SPEED_ITERS = (500, 1000, 2000)
WINDOW = 250  # iterations: loss "at iteration i" is the mean of the logged losses in (i - WINDOW, i]


def mwu(a: np.ndarray, b: np.ndarray) -> dict:
    """Two-sided Mann–Whitney U of a vs b: ``p``, ``r`` (rank-biserial, > 0 when a is larger)."""
    if len(a) == 0 or len(b) == 0:
        return {"test": "MWU", "p": math.nan, "r": math.nan}
    res = stats.mannwhitneyu(a, b, alternative="two-sided")
    return {"test": "MWU", "p": float(res.pvalue), "r": float(2 * res.statistic / (len(a) * len(b)) - 1)}


def welch(a: np.ndarray, b: np.ndarray) -> dict:
    """Welch's t of a vs b: ``p`` and Cohen's ``d`` = (mean a - mean b) / pooled sd."""
    if len(a) < 2 or len(b) < 2:
        return {"test": "Welch t", "p": math.nan, "d": math.nan}
    res = stats.ttest_ind(a, b, equal_var=False)
    sd = math.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2)
    return {
        "test": "Welch t",
        "p": float(res.pvalue),
        "d": float((a.mean() - b.mean()) / sd) if sd else math.nan,
    }


def best_rows(summary: list[dict], optimizer: str = "adam", **match) -> list[dict]:
    """Rows at the best lr trained with ``optimizer`` (rows without the column count as Adam,
    the default) matching ``match`` (column → value)."""
    return [
        r
        for r in summary
        if r.get("best_lr")
        and r.get("optimizer", "adam") == optimizer
        and all(r.get(k) == v for k, v in match.items())
    ]


def usable(rows: list[dict]) -> tuple[list[dict], int]:
    """Rows whose network did not diverge and has a finite final loss; and how many did not."""
    ok = [r for r in rows if not r["diverged"] and _finite(r["final_loss"])]
    return ok, len(rows) - len(ok)


def loss_at(curves: list[dict], rows: list[dict], iteration: int) -> np.ndarray:
    """Per network of ``rows`` (matched by cell, gain, lr, seed), its mean logged training
    loss over (iteration - WINDOW, iteration]; networks without a logged value are left out."""
    want = {_net(r) for r in rows}
    acc: dict[tuple, list[float]] = defaultdict(list)
    for c in curves:
        if c["phase"] == "train" and iteration - WINDOW < c["iteration"] <= iteration and _net(c) in want:
            acc[_net(c)].append(c["loss"])
    return np.array([np.mean(v) for k, v in sorted(acc.items()) if all(map(_finite, v))])


def loss_measures(curves: list[dict], rows: list[dict], iters: tuple[int, ...]) -> dict[str, np.ndarray]:
    """{"loss at iteration i": values, …, "final loss": values} for the usable networks."""
    ok, _ = usable(rows)
    out = {f"loss at it. {i}": loss_at(curves, ok, i) for i in iters}
    out["final loss"] = np.array([r["final_loss"] for r in ok])
    return out


def compare_losses(
    curves: list[dict], rows_a: list[dict], rows_b: list[dict], iters: tuple[int, ...], **labels
) -> list[dict]:
    """Group a vs group b on every loss measure: values, lrs, MWU, ``ratio`` = mean a / mean b,
    diverged counts; ``labels`` are copied into every row. Measures with no value are skipped
    (an iteration past a short run's end)."""
    a, b = loss_measures(curves, rows_a, iters), loss_measures(curves, rows_b, iters)
    return [
        {
            **labels,
            "measure": m,
            "a": a[m],
            "b": b[m],
            "lr_a": rows_a[0]["lr"],
            "lr_b": rows_b[0]["lr"],
            **mwu(a[m], b[m]),
            "ratio": a[m].mean() / b[m].mean() if len(a[m]) and len(b[m]) else math.nan,
            "diverged": (usable(rows_a)[1], usable(rows_b)[1]),
        }
        for m in a
        if len(a[m]) or len(b[m])
    ]


def claim1_rows(summary: list[dict], curves: list[dict], alpha: float, rule: str) -> list[dict]:
    """Gain 0.2 vs 1.0 (each at its best lr), one row per loss measure; [] if either is missing."""
    small = best_rows(summary, alpha=alpha, rule=rule, gain=0.2, flossing="off")
    ref = best_rows(summary, alpha=alpha, rule=rule, gain=1.0, flossing="off")
    if not small or not ref:
        return []
    rows = compare_losses(curves, small, ref, SPEED_ITERS, setting=f"α={alpha}, {rule}")
    for r in rows:
        sig = r["p"] < P and r["ratio"] > 1
        r["verdict"] = "reproduces" if sig and r["ratio"] >= MARKED else "partly" if sig else "does not"
    return rows


def claim1_verdict(rows: list[dict]) -> str:
    speed = [r["verdict"] for r in rows if r["measure"] != "final loss"]
    if not speed:
        return "not run"
    if sum(v == "reproduces" for v in speed) >= 2:
        return "reproduces"
    return "partly" if any(v != "does not" for v in speed) else "does not"


def claim2_rows(summary: list[dict], alpha: float, rule: str, suffix: str) -> list[dict]:
    """Max LE rows for one convention (``suffix`` "" raw, "_tr" transient excluded)."""
    small = best_rows(summary, alpha=alpha, rule=rule, gain=0.2, flossing="off")
    ref = best_rows(summary, alpha=alpha, rule=rule, gain=1.0, flossing="off")
    if not small or not ref:
        return []
    floor = math.log(alpha)

    def col(rows, c):
        return np.array([r[f"le_{c}{suffix}"] for r in rows if _finite(r[f"le_{c}{suffix}"])])

    setting = f"α={alpha}, {rule}, {'transient excluded' if suffix else 'raw'}"
    out = []
    a, b = col(small, "before"), col(ref, "before")
    t = welch(a, b)
    below = t["p"] < P and a.mean() < b.mean()
    far = a.mean() <= FAR * floor
    out.append(
        {
            "setting": setting,
            "measure": "LE before (0.2 vs 1.0)",
            "a": a,
            "b": b,
            **t,
            "verdict": "reproduces" if below and far else "partly" if below else "does not",
        }
    )
    for g, rows in ((0.2, small), (1.0, ref)):
        after, before = col(rows, "after"), col(rows, "before")
        t = welch(after, before)
        frac = abs(after.mean()) / abs(floor)
        out.append(
            {
                "setting": setting,
                "measure": f"LE after vs before (gain {g})",
                "a": after,
                "b": before,
                **t,
                "verdict": "reproduces" if frac <= NEAR else "partly" if frac <= NEAR_PARTLY else "does not",
                "near": frac,
            }
        )
    da, db = _change(small, suffix), _change(ref, suffix)
    t = welch(da, db)
    out.append(
        {
            "setting": setting,
            "measure": "change after − before (0.2 vs 1.0)",
            "a": da,
            "b": db,
            **t,
            "verdict": "reproduces" if t["p"] < P and da.mean() > db.mean() else "does not",
        }
    )
    return out


def claim2_verdict(rows: list[dict]) -> str:
    if not rows:
        return "not run"
    verdicts = [r["verdict"] for r in rows]
    if all(v == "reproduces" for v in verdicts):
        return "reproduces"
    return "partly" if any(v != "does not" for v in verdicts) else "does not"


def claim3_rows(summary: list[dict], curves: list[dict], alpha: float, optimizer: str = "adam") -> list[dict]:
    """Each flossing variant vs no flossing (each at its best task lr, both trained with
    ``optimizer``), per gain and measure; ``factor`` = loss without / with flossing."""
    out = []
    eprop = [
        r
        for r in summary
        if r["alpha"] == alpha and r["rule"] == "eprop" and r.get("optimizer", "adam") == optimizer
    ]
    variants = sorted({r["flossing"] for r in eprop} - {"off"})
    for g in (0.2, 1.0, 2.0):
        off = best_rows(summary, optimizer, alpha=alpha, rule="eprop", gain=g, flossing="off")
        for v in variants if off else ():
            fl = best_rows(summary, optimizer, alpha=alpha, rule="eprop", gain=g, flossing=v)
            setting = f"α={alpha}, {optimizer}, gain {g}"
            if fl:
                out += compare_losses(curves, fl, off, (1000,), setting=setting, variant=v, gain=g)
    for r in out:
        r["factor"] = 1 / r["ratio"] if r["ratio"] else math.nan
        r["verdict"] = (
            "improves" if r["p"] < P and r["factor"] > 1 else "worse" if r["p"] < P else "no difference"
        )
    return out


def claim3_verdict(rows: list[dict]) -> tuple[str, list[str]]:
    """The setting's verdict and the (variant, measure) pairs that reproduce it."""
    if not rows:
        return "not run", []
    factor = {(r["variant"], r["measure"], r["gain"]): r for r in rows}
    full = [
        f"{r['variant']} ({r['measure']})"
        for r in rows
        if r["gain"] == 0.2
        and r["verdict"] == "improves"
        and r["factor"] > factor.get((r["variant"], r["measure"], 1.0), {"factor": -math.inf})["factor"]
    ]
    if full:
        return "reproduces", full
    some = [
        f"{r['variant']} at gain {r['gain']} ({r['measure']})" for r in rows if r["verdict"] == "improves"
    ]
    return ("partly", some) if some else ("does not", [])


def _change(rows: list[dict], suffix: str) -> np.ndarray:
    """le_after - le_before per network where both are finite."""
    pairs = [(r[f"le_after{suffix}"], r[f"le_before{suffix}"]) for r in rows]
    return np.array([x - y for x, y in pairs if _finite(x) and _finite(y)])


def _net(r: dict) -> tuple:
    return (r["cell"], r["gain"], r["lr"], r["seed"], r["backend"])


def _finite(v) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)
