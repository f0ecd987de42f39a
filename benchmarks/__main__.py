"""Performance harness: ``python -m benchmarks [--quick] [--fig1] [--out results.json]``.

Every number is a ratio of two timings taken in this one run on this machine (absolute
seconds mean little on a shared, noisy machine). Each timing is the median of ``--repeats``.

1. ensemble speedup: E networks as one ensemble vs the same networks one after another
2. fixed-point cost: one 8-bit engine iteration vs one float e-prop iteration (same E, N, B)
3. fraction of peak: analytic FLOPs of an e-prop iteration / time, vs a large sgemm's rate
4. vs the straightforward way: a per-network PyTorch loop with autograd through
   ``hidden.detach()`` (how the paper implemented e-prop) vs neurosim's e-prop
5. wall time and peak RSS of ``neurosim reproduce fig1`` (full), with ``--fig1``
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from benchmarks.baseline import straightforward_eprop_iteration
from benchmarks.flops import eprop_flops
from hw_models import FixedPointEngine, derive_profile
from neurosim.backends import FloatBackend
from neurosim.model import init_params
from neurosim.rules import gradients
from neurosim.tasks import BatchStream, get_task


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall seconds of ``fn()`` over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _batch(E: int, B: int):
    return BatchStream(get_task("romo"), B, list(range(E))).next()


def bench_ensemble(E: int, N: int, B: int, repeats: int, sequential: int) -> dict:
    x, y, m = _batch(E, B)
    p = init_params(1, N, 2, 1.0, ensemble=E)
    t_ens = median_time(lambda: gradients(p, x, y, m, rule="eprop", alpha=0.5), repeats) / E
    singles = [(init_params(1, N, 2, 1.0, ensemble=1, seed=e), x[:, e:e + 1], y[:, e:e + 1], m[:, e:e + 1])
               for e in range(sequential)]
    t_seq = median_time(lambda: [gradients(*s, rule="eprop", alpha=0.5) for s in singles], repeats)
    t_seq /= sequential
    return {"name": "ensemble speedup", "E": E, "ratio": t_seq / t_ens, "goal": ">= 20",
            "detail": f"{t_seq * 1e3:.2f} ms alone vs {t_ens * 1e3:.3f} ms per network in an ensemble of {E}"}


def bench_fixed(E: int, N: int, B: int, repeats: int) -> dict:
    x, y, m = _batch(E, B)
    p = init_params(1, N, 2, 1.0, ensemble=E)
    engine = FixedPointEngine(derive_profile(8), p, alpha=0.5)
    t_float = median_time(lambda: gradients(p, x, y, m, rule="eprop", alpha=0.5), repeats)
    t_fixed = median_time(lambda: engine.train_step(x, y, m), repeats)
    return {"name": "fixed-point / float step", "E": E, "ratio": t_fixed / t_float, "goal": "<= 2",
            "detail": f"{t_fixed * 1e3:.1f} ms (8-bit engine) vs {t_float * 1e3:.1f} ms (float e-prop)"}


def bench_peak(E: int, N: int, B: int, repeats: int, size: int) -> dict:
    x, y, m = _batch(E, B)
    p = init_params(1, N, 2, 1.0, ensemble=E)
    t = median_time(lambda: gradients(p, x, y, m, rule="eprop", alpha=0.5), repeats)
    flops = eprop_flops(T=x.shape[0], E=E, B=B, N=N, n_in=1, n_out=2)
    a, b = torch.randn(size, size), torch.randn(size, size)
    t_mm = median_time(lambda: a @ b, repeats)
    peak = 2 * size**3 / t_mm
    achieved = flops / t
    return {"name": "fraction of float32 matmul peak", "E": E, "ratio": achieved / peak, "goal": ">= 0.30",
            "detail": f"{achieved / 1e9:.1f} GFLOP/s ({flops / 1e9:.2f} GFLOP per iteration) vs "
                      f"{peak / 1e9:.1f} GFLOP/s sgemm {size}² ({torch.get_num_threads()} thread)"}


def bench_straightforward(E: int, N: int, B: int, repeats: int, sequential: int) -> dict:
    x, y, m = _batch(E, B)
    ours = FloatBackend(init_params(1, N, 2, 1.0, ensemble=E), rule="eprop", alpha=0.5, optimizer="adam",
                        lr=torch.full((E,), 1e-3))
    t_ours = median_time(lambda: ours.train_step(x, y, m), repeats) / E
    nets = [straightforward_eprop_iteration(N, seed=e) for e in range(sequential)]
    t_plain = median_time(lambda: [net(x[:, e], y[:, e], m[:, e]) for e, net in enumerate(nets)], repeats)
    t_plain /= sequential
    return {"name": "vs straightforward per-network loop", "E": E, "ratio": t_plain / t_ours, "goal": ">= 30",
            "detail": f"{t_plain * 1e3:.2f} ms (nn.Linear + Adam, hidden.detach()) vs {t_ours * 1e3:.3f} ms"}


def bench_fig1() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "neurosim", "reproduce", "fig1", "--out", f"{tmp}/fig1"],
                       check=True, capture_output=True)
        wall = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB → GiB
    return {"name": "reproduce fig1 (full)", "ratio": wall / 600, "goal": "<= 1 (10 minutes)",
            "detail": f"{wall / 60:.1f} min wall, peak RSS of one process {rss:.2f} GiB (goal < 2 GiB)"}


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the harness, not the machine")
    ap.add_argument("--fig1", action="store_true", help="also time `neurosim reproduce fig1` (minutes)")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (training uses 1)")
    ap.add_argument("--out", type=Path, help="also write the results as JSON")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        E, N, B, reps, seq, size = 4, 8, 4, 1, 2, 128
    else:
        E, N, B, reps, seq, size = 64, 64, 32, args.repeats or 5, 8, 2048
    results = [
        bench_ensemble(E, N, B, reps, seq),
        bench_fixed(E, N, B, reps),
        bench_peak(E, N, B, reps, size),
        bench_straightforward(E, N, B, reps, seq),
    ]
    if args.fig1:
        results.append(bench_fig1())
    print(f"neurosim benchmarks (E={E}, N={N}, B={B}, Romo T=56, {args.threads} thread, median of {reps})")
    for r in results:
        print(f"{r['name']:<38} {r['ratio']:8.2f}  (goal {r['goal']})  {r['detail']}")
    if args.out:
        args.out.write_text(json.dumps({"E": E, "N": N, "B": B, "threads": args.threads, "results": results},
                                       indent=2))
    return results


if __name__ == "__main__":
    main()
