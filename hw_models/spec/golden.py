"""Golden vectors: a short run of the engine with every signal recorded, as arrays and hex files.

:func:`run_golden` samples ``trials`` trials of a task, initialises one network, runs
``floss_iters`` local-flossing iterations (:meth:`~hw_models.engine.FixedPointEngine.floss_step`,
warm-up 0) on the inputs of the first trials, then one
:meth:`~hw_models.engine.FixedPointEngine.train_step` per trial (batch 1) with ``record``. The
arrays it returns are the engine's own codes; :func:`hex_files` writes each one as a
``$readmemh``-ready file: one word per line, two's complement in the signal's word width
(binary64 bit patterns for the float inputs, 32 bits for draws, 64 for counters).

Array layout (row-major; the hex file is the same array flattened):

    x_raw, target_raw, mask          (trials, T, B, ·)  binary64 inputs of the task
    <W>_init_float, <W>_init         initial weights: float64, and codes (nearest_even)
    x, target, I, h, r, y, e, L, eps, eps_x      (trials, T, B, ·)   codes after each step
    acc_<W>, d<W>, <W>               (updates, rows, cols)  per update: accumulator used,
                                     weight change, weights after the update
    draw_<signal>                    32-bit draws of a stochastic operation, shaped like its
                                     result with a leading (trials, T) or (updates,) axis
    overflow_counts                  (trials, counters) cumulative saturations/wraps since the
                                     network was created (flossing included), after each trial
  flossing phase (before the trials):
    floss_x_raw                      (iters, T, B, n_in) binary64 inputs of the iterations
    floss_q_init_float, floss_q_init (N,) the float initial tangent and its codes (nearest_even)
    floss_<s>, s in p v gamma q pre ell x I h r    (iters, T, B, ·) codes after each step
    floss_G_q, floss_acc_q           (iters, T, N, N) per step: gradient and accumulator
    floss_Lam, floss_lam, floss_g_floss            (iters,) per iteration
    floss_dW_floss, floss_W_h        (iters, N, N) weight change and W_h after each iteration
    floss_draw_<s>                   draws of stochastic operations, (iters, T, ...) or (iters, ...)
    floss_overflow_counts            (iters, counters) cumulative, after each iteration
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hw_models._exactness import ExactnessError, check_bounds
from hw_models.engine import FixedPointEngine
from hw_models.fixedpoint import apply_overflow
from hw_models.flossing import floss_bounds, floss_where, initial_q
from hw_models.operations import (
    COUNTERS,
    FLOSS_PER_STEP,
    PER_STEP,
    WEIGHTS,
    Network,
    floss_ops,
    lam_format,
    step_ops,
    update_ops,
)
from hw_models.profile import Profile
from neurosim.lyapunov import initial_tangent
from neurosim.model import init_params
from neurosim.tasks import get_task

_F64 = torch.float64


@dataclass
class GoldenRun:
    """A recorded run: the network, its arrays (name → ndarray) and the word width of each."""

    net: Network
    arrays: dict[str, np.ndarray]
    words: dict[str, tuple[int, str]]  # name → (word bits, "twos_complement" | "binary64")
    steps: int
    trials: int
    updates: int
    losses: list[float]
    floss_iters: int
    floss_problem: str | None  # why the flossing phase is left out (iterations 0), or None


def sample_inputs(task: str, trials: int, steps: int | None, seed: int):
    """``trials`` trials of ``task`` (one batch, seeded), cut to ``steps`` steps: float64."""
    x, target, mask = (a.to(_F64) for a in get_task(task).sample(trials, torch.Generator().manual_seed(seed)))
    if steps is not None:
        x, target, mask = x[:steps], target[:steps], mask[:steps]
    return x, target, mask


def build_engine(profile: Profile, n_hidden: int, n_in: int, n_out: int, gain: float, seed: int,
                 alpha: float) -> tuple[FixedPointEngine, object]:
    """The engine of the golden run (one network, seed ``seed``) and its float initial params."""
    params = init_params(n_in, n_hidden, n_out, gain, ensemble=1, seed=seed, dtype=_F64)
    return FixedPointEngine(profile, params, alpha=alpha, seed=seed), params


def network_of(engine: FixedPointEngine, alpha: float, batch: int = 1) -> Network:
    f = engine.profile.formats
    exps = {k: int(getattr(f, k).frac - float(engine.frac[k].flatten()[0])) for k in WEIGHTS}
    N, n_in = engine.W["W_x"].shape[1:]
    return Network(engine.profile, N, n_in, engine.W["W_out"].shape[1], batch, alpha, exps)


def _floss_phase(eng: FixedPointEngine, net: Network, x: torch.Tensor, iters: int) -> dict[str, np.ndarray]:
    """``iters`` flossing iterations on x (T, iters, n_in), one trial each; the arrays."""
    T, N = x.shape[0], net.n_hidden
    ops = floss_ops(net, T)
    stoch_step = [op["result"] for op in step_ops(net)[:4] + ops["step"] if op.get("stochastic")]
    stoch_end = [op["result"] for op in ops["end"] if op.get("stochastic")]
    out: dict[str, list] = {}
    counts = []
    for k in range(iters):
        rec: dict = {}
        eng.floss_step(x[:, k:k + 1].unsqueeze(1), record=rec)
        for name in (*FLOSS_PER_STEP, "G_q", "acc_q"):
            out.setdefault(f"floss_{name}", []).append(rec[name][:, 0])
        for name in ("Lam", "lam", "g_floss", "dW_floss", "W_h"):
            out.setdefault(f"floss_{name}", []).append(rec[name][0])
        for name in stoch_step:  # shaped like the operation's result (ℓ: (B,), not (B, 1))
            d = _draws(rec[f"u_{name}"][:, 0]).reshape(T, *(net.size(k) for k in net.dims(name)))
            out.setdefault(f"floss_draw_{name}", []).append(d)
        for name in stoch_end:
            out.setdefault(f"floss_draw_{name}", []).append(_draws(rec[f"u_{name}"][0, 0]))
        c = eng.counters
        counts.append([c.get(name, 0) for name in COUNTERS])
    arrays = {"floss_x_raw": x[:, :iters].transpose(0, 1).unsqueeze(2).numpy(),
              "floss_q_init_float": initial_tangent(N, 1).view(N).numpy(),
              "floss_q_init": initial_q(N, net.fmt("q")).numpy().astype(np.int64)}
    arrays.update({name: torch.stack(parts).numpy().astype(np.int64) for name, parts in out.items()})
    arrays["floss_overflow_counts"] = np.asarray(counts, dtype=np.int64)
    return arrays


def run_golden(profile: Profile, *, n_hidden: int, task: str, gain: float, trials: int,
               steps: int | None, seed: int, alpha: float, floss_iters: int = 2) -> GoldenRun:
    """Record ``floss_iters`` flossing iterations, then ``trials`` trials (batch 1) of one
    network; see the module docstring."""
    x, target, mask = sample_inputs(task, trials, steps, seed)
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError(f"task {task!r} has mask values other than 0 and 1")
    T = x.shape[0]
    eng, params = build_engine(profile, n_hidden, x.shape[-1], target.shape[-1], gain, seed, alpha)
    net = network_of(eng, alpha)
    arrays: dict[str, np.ndarray] = {
        "x_raw": x.transpose(0, 1).unsqueeze(2).numpy(),
        "target_raw": target.transpose(0, 1).unsqueeze(2).numpy(),
        "mask": mask.transpose(0, 1).unsqueeze(2).numpy(),
    }
    for k, W in zip(WEIGHTS, params, strict=True):
        arrays[f"{k}_init_float"] = W[0].numpy()
        arrays[f"{k}_init"] = eng.W[k][0].numpy().astype(np.int64)
    problem = None
    try:
        check_bounds(floss_bounds(eng, n_hidden, 1, T), floss_where(eng, n_hidden, 1))
    except ExactnessError as err:
        problem, floss_iters = str(err), 0
    if floss_iters:
        arrays.update(_floss_phase(eng, net, x[:, [k % trials for k in range(floss_iters)]], floss_iters))
    per_trial: dict[str, list] = {}
    losses, counts = [], []
    stochastic_steps = [op["result"] for op in step_ops(net) if op.get("stochastic")]
    stochastic_updates = [op["result"] for op in update_ops(net) if op.get("stochastic")]
    for k in range(trials):
        rec: dict = {}
        loss = eng.train_step(x[:, k:k + 1].unsqueeze(1), target[:, k:k + 1].unsqueeze(1),
                              mask[:, k:k + 1].unsqueeze(1), record=rec)
        losses.append(float(loss[0]))
        for name in PER_STEP:
            per_trial.setdefault(name, []).append(rec[name][:, 0])
        for name in stochastic_steps:
            per_trial.setdefault(f"draw_{name}", []).append(_draws(rec[f"u_{name}"][:, 0]))
        for w in WEIGHTS:
            per_trial.setdefault(f"acc_{w}", []).extend(rec[f"acc_{w}"][:, 0])
            per_trial.setdefault(f"d{w}", []).extend(rec[f"d{w}"][:, 0])
            W = rec[f"{w}_before"][0]
            for dW in rec[f"d{w}"][:, 0]:  # the weights after each update: W = overflow(W - dW)
                W = apply_overflow(W - dW, getattr(profile.formats, w), profile.overflow)
                per_trial.setdefault(w, []).append(W)
            if not torch.equal(W, rec[f"{w}_after"][0]):
                raise AssertionError(f"{w} after the updates differs from the engine's")
        for name in stochastic_updates:
            per_trial.setdefault(f"draw_{name}", []).extend(_draws(rec[f"u_{name}"][:, 0]))
        c = eng.counters
        counts.append([c.get(name, 0) for name in COUNTERS])
    for name, parts in per_trial.items():
        arrays[name] = torch.stack(parts).numpy().astype(np.int64)
    arrays["overflow_counts"] = np.asarray(counts, dtype=np.int64)
    words = {}
    for name in arrays:
        base = name.removeprefix("floss_")
        if name.endswith(("_raw", "_float")) or name == "mask":
            words[name] = (64, "binary64")
        elif base.startswith("draw_"):
            words[name] = (32, "unsigned")
        elif base == "overflow_counts":
            words[name] = (64, "unsigned")
        else:
            fmt = lam_format(net, T) if base == "Lam" else net.fmt(base.removesuffix("_init"))
            words[name] = (fmt.word, "twos_complement" if fmt.signed else "unsigned")
    updates = len(arrays["dW_h"])
    return GoldenRun(net, arrays, words, T, trials, updates, losses, floss_iters, problem)


def _draws(u: torch.Tensor) -> torch.Tensor:
    """The engine's u = d · 2^-32 back to the integer draws d (exact)."""
    return (u * 2.0**32).to(torch.int64)


def hex_text(a: np.ndarray, word: int, encoding: str) -> str:
    """One hexadecimal word per line (``$readmemh``): ``a`` flattened row-major."""
    flat = a.reshape(-1)
    if encoding == "binary64":
        vals = flat.astype(np.float64).view(np.uint64).tolist()
    else:
        vals = [int(v) % 2**word for v in flat.tolist()]
    digits = (word + 3) // 4
    return "".join(f"{v:0{digits}x}\n" for v in vals)


def hex_files(run: GoldenRun) -> dict[str, str]:
    """``<name>.hex`` text of every golden array."""
    return {f"{name}.hex": hex_text(a, *run.words[name]) for name, a in run.arrays.items()}
