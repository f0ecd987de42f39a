"""Golden vectors: a short run of the engine with every signal recorded, as arrays and hex files.

:func:`run_golden` takes ``trials`` trials of a task (sampled by its caller), initialises one network, runs
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
    G_<W>, acc_<W>_step              (trials, T, rows, cols) per step: the gradient and the
                                     accumulator after the step's add (before an update)
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
from hw_models.fixedpoint import apply_overflow, hash32
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
from hw_models.spec.coverage import Coverage, coverage_table
from neurosim.lyapunov import initial_tangent
from neurosim.model import init_params

_F64 = torch.float64
# the golden network's generator seed is seed + RNG_SALT: both 32-bit halves non-zero and
# different, so an implementation that drops or swaps a half of the key derivation differs
RNG_SALT = (2 << 32) + 1
DIRECTED = ("saturating error: targets of ±100 on the last two steps (mask 1 there only), a large "
            "constant input: e and the gradients saturate, the weights change by many LSBs and "
            "saturate (so the next update reads what a carry accumulator kept of it)",
            "extremes: inputs and targets far beyond their formats' range (a quarter of the steps at "
            "+4× the range, a quarter at -4×, then alternating), both signs, and exact "
            "rounding ties (k + 1/2 LSB, k even and odd, both signs) of the binary64 inputs; mask 1 "
            "at every step; where x rounds stochastically, x_raw at steps 7, 16, ... is (3 + u) LSB "
            "with u the draw S0 uses there (the equality case of u < frac)",
            "saturating error again, on the saturated weights of the first: the learning signal "
            "saturates, also at neurons the gate [h > 0] switches off")


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
    network_seed: int
    directed: list[dict]  # {"trial": index, "purpose": text} of the directed trials
    coverage: list[dict]  # hw_models.spec.coverage.coverage_table rows


def directed_inputs(net: Network, T: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The directed trials (see DIRECTED): x (T, 3, n_in), target (T, 3, n_out), mask (T, 3)."""
    fx, fy = net.fmt("x"), net.fmt("y")
    big_x, big_y = 4.0 * fx.max_code * fx.lsb, 4.0 * fy.max_code * fy.lsb
    half = lambda f, k: (k + 0.5) * f.lsb  # noqa: E731  an exact binary64 tie between two codes
    cycle_x = [big_x, -big_x, half(fx, 2), half(fx, 3), -half(fx, 2), -half(fx, 3), -0.75, 0.0, 1.5]
    cycle_y = [-big_y, big_y, half(fy, 4), -half(fy, 5), half(fy, 5), -half(fy, 4), 0.0, 0.5]
    t = torch.arange(T)
    x = torch.zeros(T, 2, net.n_in, dtype=_F64)
    y = torch.zeros(T, 2, net.n_out, dtype=_F64)
    for i in range(net.n_in):
        x[:, 1, i] = torch.tensor(cycle_x, dtype=_F64)[(t + i) % len(cycle_x)]
    for o in range(net.n_out):
        y[:, 1, o] = torch.tensor(cycle_y, dtype=_F64)[(t + 3 * o) % len(cycle_y)]
        y[:, 0, o] = 100.0 * (-1) ** o
    q = T // 4  # a block of +big, then of -big: states and traces run into both ends
    x[:q, 1], x[q:2 * q, 1] = big_x, -big_x
    y[:q, 1], y[q:2 * q, 1] = -big_y, big_y
    x[:, 0] = 0.9 * fx.max_code * fx.lsb
    mask = torch.ones(T, 2, dtype=_F64)
    mask[: max(0, T - 2), 0] = 0
    return torch.cat([x, x[:, :1]], 1), torch.cat([y, y[:, :1]], 1), torch.cat([mask, mask[:, :1]], 1)


def _n_stochastic(ops: list[dict]) -> int:
    return sum(bool(op.get("stochastic")) for op in ops)


def stochastic_equality_inputs(eng: FixedPointEngine, net: Network, x: torch.Tensor, trial: int,
                               floss_iters: int) -> None:
    """Where S0 (x_t) rounds stochastically, set x[t, trial, i] = (3 + u)·2^-f_x at the steps t
    with t % 9 == 7, u being the very draw S0 will use there: the comparison u < frac meets
    its equality case. The draw counter before S0 of step t follows from the operation list
    (draw counts do not depend on values)."""
    step, upd = step_ops(net), update_ops(net)
    if not step[0].get("stochastic"):
        return
    T = x.shape[0]
    fl = floss_ops(net, T)
    per_iter = T * (_n_stochastic(fl["step"]) + _n_stochastic(step[:4])) + _n_stochastic(fl["end"])
    per_step = _n_stochastic(step) + (_n_stochastic(upd) if net.profile.schedule == "per_step" else 0)
    per_trial = T * per_step + (0 if net.profile.schedule == "per_step" else _n_stochastic(upd))
    key = int(eng.rng.keys[0])
    lsb = net.fmt("x").lsb
    for t in range(7, T, 9):
        c = floss_iters * per_iter + trial * per_trial + t * per_step
        op_key = hash32(key ^ hash32(c & 0xFFFFFFFF))
        for i in range(x.shape[-1]):
            x[t, trial, i] = (3 + hash32(op_key ^ i) * 2.0**-32) * lsb


def build_engine(profile: Profile, n_hidden: int, n_in: int, n_out: int, gain: float, seed: int,
                 alpha: float, *, init_seed: int) -> tuple[FixedPointEngine, object]:
    """The engine of the golden run (one network, generator seed ``seed``) and its float initial
    params (``init_params`` seed ``init_seed``)."""
    params = init_params(n_in, n_hidden, n_out, gain, ensemble=1, seed=init_seed, dtype=_F64)
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


def run_golden(profile: Profile, *, inputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
               n_hidden: int, gain: float, seed: int, alpha: float, floss_iters: int = 2,
               directed: bool = True) -> GoldenRun:
    """Record ``floss_iters`` flossing iterations, then the task trials of ``inputs`` and
    (``directed``) the directed trials of DIRECTED (batch 1) of one network; see the module
    docstring. ``inputs``: ``x (T, trials, n_in)``, ``target (T, trials, n_out)``, ``mask (T, trials)``,
    sampled by the caller (``neurosim.spec_export``: hw_models samples no task)."""
    x, target, mask = (torch.as_tensor(a).to(_F64) for a in inputs)
    trials = x.shape[1]
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError("the task's mask has values other than 0 and 1")
    T = x.shape[0]
    eng, params = build_engine(profile, n_hidden, x.shape[-1], target.shape[-1], gain, seed + RNG_SALT,
                               alpha, init_seed=seed)
    net = network_of(eng, alpha)
    eng.coverage = Coverage()
    problem = None
    try:
        check_bounds(floss_bounds(eng, n_hidden, 1, T), floss_where(eng, n_hidden, 1))
    except ExactnessError as err:
        problem, floss_iters = str(err), 0
    floss_x = x[:, [k % trials for k in range(floss_iters)]]  # the task's trials, not the directed
    directed_rows = []
    if directed:
        dx, dy, dm = directed_inputs(net, T)
        x, target, mask = torch.cat([x, dx], 1), torch.cat([target, dy], 1), torch.cat([mask, dm], 1)
        stochastic_equality_inputs(eng, net, x, trials + 1, floss_iters)
        directed_rows = [{"trial": trials + k, "purpose": text} for k, text in enumerate(DIRECTED)]
        trials += len(DIRECTED)
    arrays: dict[str, np.ndarray] = {
        "x_raw": x.transpose(0, 1).unsqueeze(2).numpy(),
        "target_raw": target.transpose(0, 1).unsqueeze(2).numpy(),
        "mask": mask.transpose(0, 1).unsqueeze(2).numpy(),
    }
    for k, W in zip(WEIGHTS, params, strict=True):
        arrays[f"{k}_init_float"] = W[0].numpy()
        arrays[f"{k}_init"] = eng.W[k][0].numpy().astype(np.int64)
    if floss_iters:
        arrays.update(_floss_phase(eng, net, floss_x, floss_iters))
    per_trial: dict[str, list] = {}
    losses, counts = [], []
    stochastic_steps = [op["result"] for op in step_ops(net) if op.get("stochastic")]
    stochastic_updates = [op["result"] for op in update_ops(net) if op.get("stochastic")]
    for k in range(trials):
        rec: dict = {}
        loss = eng.train_step(x[:, k:k + 1].unsqueeze(1), target[:, k:k + 1].unsqueeze(1),
                              mask[:, k:k + 1].unsqueeze(1), record=rec)
        losses.append(float(loss[0]))
        for name in (*PER_STEP, *(f"G_{w}" for w in WEIGHTS), *(f"acc_{w}_step" for w in WEIGHTS)):
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
            signal = base.removesuffix("_init").removesuffix("_step")
            fmt = lam_format(net, T) if base == "Lam" else net.fmt(signal)
            words[name] = (fmt.word, "twos_complement" if fmt.signed else "unsigned")
    updates = len(arrays["dW_h"])
    fl = floss_ops(net, T)
    ops = step_ops(net) + update_ops(net) + (fl["step"] + fl["end"] if floss_iters else [])
    table = coverage_table(net, ops, eng.coverage, eng.counters, T)
    return GoldenRun(net, arrays, words, T, trials, updates, losses, floss_iters, problem,
                     seed + RNG_SALT, directed_rows, table)


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
