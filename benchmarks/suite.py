"""The benchmarks. Each returns a dict with ``ratio``, ``goal``, the sizes and the raw times."""

from __future__ import annotations

import functools
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

import torch

from benchmarks.baseline import plain_eprop_trainer
from benchmarks.flops import eprop_flops, sgemm_flops
from benchmarks.timing import median_seconds, paired_medians
from neurosim.backends import FloatBackend
from neurosim.model import Params, init_params
from neurosim.rules.forward import contract
from neurosim.tasks import BatchStream, get_task

ALPHA = 0.5


@dataclass(frozen=True)
class Sizes:
    """Ensemble size E, hidden N, batch B, timed iterations, repetitions, torch threads."""

    E: int = 64
    N: int = 64
    B: int = 32
    iters: int = 3
    reps: int = 3
    threads: int = 1
    sgemm_n: int = 2048
    baseline_nets: int = 4  # networks the slow plain-PyTorch loop is timed on (per network-iteration)


def _setup(s: Sizes, optimizer: str = "adam"):
    task = get_task("romo")
    batches = [BatchStream(task, s.B, list(range(s.E))).next() for _ in range(s.iters)]
    params = init_params(task.n_in, s.N, task.n_out, 1.0, ensemble=s.E, seed=0)
    T = batches[0][0].shape[0]
    return task, batches, params, T


@functools.cache
def peak_gflops(n: int, reps: int) -> float:
    """float32 GFLOP/s of an (n, n) @ (n, n) matmul at the current thread count (measured once)."""
    a, c = torch.randn(n, n), torch.randn(n, n)
    return sgemm_flops(n) / median_seconds(lambda: a @ c, reps) / 1e9


def _ceiling(s: Sizes, T: int, n_in: int, n_out: int, seconds_per_net_iter: float) -> float:
    """The largest ratio any ensemble could reach against a baseline taking
    ``seconds_per_net_iter``: the baseline time over one network-iteration's e-prop FLOPs at
    100% of the machine's matmul peak."""
    flops = eprop_flops(1, T, s.B, s.N, n_in, n_out)["total"]
    return seconds_per_net_iter / (flops / (peak_gflops(s.sgemm_n, s.reps) * 1e9))


def _backend(params: Params, optimizer: str, E: int) -> FloatBackend:
    return FloatBackend(params, rule="eprop", alpha=ALPHA, optimizer=optimizer, lr=torch.full((E,), 1e-3))


def _member(params: Params, e: int) -> Params:
    return params.map(lambda w: w[e:e + 1].clone())


def ensemble_speedup(s: Sizes) -> dict:
    """E networks in one ensemble vs the same E trained one after another, same iterations."""
    task, batches, params, T = _setup(s)

    def ensemble():
        b = _backend(params, "adam", s.E)
        for x, y, m in batches:
            b.train_step(x, y, m)

    def one_after_another():
        for e in range(s.E):
            b = _backend(_member(params, e), "adam", 1)
            for x, y, m in batches:
                b.train_step(x[:, e:e + 1], y[:, e:e + 1], m[:, e:e + 1])

    t_ens, t_seq = paired_medians(ensemble, one_after_another, s.reps)
    n = s.E * s.iters
    return {"ratio": t_seq / t_ens, "goal": ">= 20", "E": s.E, "N": s.N, "B": s.B, "T": T,
            "ceiling": _ceiling(s, T, task.n_in, task.n_out, t_seq / n),
            "ms_per_net_iter_ensemble": 1e3 * t_ens / n, "ms_per_net_iter_sequential": 1e3 * t_seq / n}


def fixed_point_cost(s: Sizes, profile: str = "int8-stochastic") -> dict:
    """One step of the 8-bit integer engine vs the float e-prop step (SGD, as the engine)."""
    try:
        from hw_models.engine import FixedPointEngine
        from hw_models.profile import load_profile
    except ImportError:
        return {"skipped": "engine not available"}
    task, batches, params, T = _setup(s)
    x, y, m = batches[0]
    try:
        engine = FixedPointEngine(load_profile(profile), params, alpha=ALPHA, seed=0)
    except ValueError as err:  # e.g. a batch or N beyond the profile's exact range
        return {"skipped": f"engine: {err}"}
    float_b = _backend(params, "sgd", s.E)
    t_fix, t_float = paired_medians(lambda: engine.train_step(x, y, m), lambda: float_b.train_step(x, y, m),
                                    s.reps)
    t_products = median_seconds(_engine_products(s, T, task.n_in, task.n_out), s.reps)
    return {"ratio": t_fix / t_float, "goal": "<= 2", "E": s.E, "N": s.N, "B": s.B, "T": T,
            "floor": t_products / t_float, "profile": profile, "ms_engine_step": 1e3 * t_fix,
            "ms_float_step": 1e3 * t_float, "ms_engine_products": 1e3 * t_products}


def _engine_products(s: Sizes, T: int, n_in: int, n_out: int):
    """The float64 matrix products one engine step must form, nothing else: per time step the
    three forward products (W_h r, W_out r, B e; W_x x is a broadcast multiply) and the three
    per-step gradient products (each is rounded into the accumulator before the next step, so
    they cannot be fused over time the way the float rule contracts a whole trial at once)."""
    f64 = functools.partial(torch.randn, dtype=torch.float64)
    r, L, e = f64(s.E, s.B, s.N), f64(s.E, s.B, s.N), f64(s.E, s.B, n_out)
    W_h, W_out, eps_x = f64(s.E, s.N, s.N), f64(s.E, n_out, s.N), f64(s.E, s.B, n_in)

    def products():
        for _ in range(T):
            torch.bmm(r, W_h.mT), torch.bmm(r, W_out.mT), torch.bmm(e, W_out)
            contract(L, r), contract(L, eps_x), contract(e, r)

    return products


def fraction_of_peak(s: Sizes) -> dict:
    """Achieved GFLOP/s of ensemble e-prop training vs a large float32 matmul, same threads."""
    task, batches, params, T = _setup(s)
    b = _backend(params, "adam", s.E)
    x, y, m = batches[0]
    t_step = median_seconds(lambda: b.train_step(x, y, m), s.reps * s.iters)
    flops = eprop_flops(s.E, T, s.B, s.N, task.n_in, task.n_out)
    achieved, peak = flops["total"] / t_step / 1e9, peak_gflops(s.sgemm_n, s.reps)
    return {"ratio": achieved / peak, "goal": ">= 0.3", "E": s.E, "N": s.N, "B": s.B, "T": T,
            "gflops_achieved": achieved, "gflops_peak": peak, "sgemm_n": s.sgemm_n,
            "ms_per_iteration": 1e3 * t_step, "flops": flops}


def vs_plain_pytorch(s: Sizes) -> dict:
    """A per-network nn.Linear + autograd e-prop loop vs neurosim's ensemble e-prop."""
    task, batches, params, T = _setup(s)
    k = min(s.baseline_nets, s.E)
    trainers = [plain_eprop_trainer(task.n_in, s.N, task.n_out, alpha=ALPHA, seed=e) for e in range(k)]

    def plain():
        for e, step in enumerate(trainers):
            for x, y, m in batches:
                step(x[:, e], y[:, e], m[:, e])

    def ensemble():
        b = _backend(params, "adam", s.E)
        for x, y, m in batches:
            b.train_step(x, y, m)

    t_plain, t_ens = paired_medians(plain, ensemble, s.reps)
    per_plain, per_ens = t_plain / (k * s.iters), t_ens / (s.E * s.iters)
    return {"ratio": per_plain / per_ens, "goal": ">= 30", "E": s.E, "N": s.N, "B": s.B, "T": T,
            "ceiling": _ceiling(s, T, task.n_in, task.n_out, per_plain),
            "baseline_networks": k, "ms_per_net_iter_plain": 1e3 * per_plain,
            "ms_per_net_iter_ensemble": 1e3 * per_ens}


def fig1(command: tuple[str, ...] = ("neurosim", "reproduce", "fig1")) -> dict:
    """Wall time and peak RSS (largest child process) of the full fig1 reproduction."""
    t0 = time.perf_counter()
    proc = subprocess.run(list(command), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    rss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    out = {"wall_s": wall, "peak_rss_mib": rss_kib / 1024, "returncode": proc.returncode,
           "command": " ".join(command)}
    if proc.returncode != 0:
        out["stderr_tail"] = proc.stderr[-2000:]
    return out


def sizes_dict(s: Sizes) -> dict:
    return {**asdict(s), "torch": torch.__version__, "python": sys.version.split()[0]}
