"""``python -m benchmarks``: run the benchmarks, print one ratio line each, optionally write JSON."""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from benchmarks import suite

BENCHMARKS = {
    "ensemble_speedup": ("ensemble speedup (sequential / ensemble time per network-iteration)",
                         suite.ensemble_speedup),
    "fixed_point_cost": ("fixed-point cost (engine step / float e-prop step)", suite.fixed_point_cost),
    "fraction_of_peak": ("fraction of peak (achieved e-prop GFLOP/s / sgemm GFLOP/s)",
                         suite.fraction_of_peak),
    "vs_plain_pytorch": ("against plain PyTorch (per-network loop / ensemble, per network-iteration)",
                         suite.vs_plain_pytorch),
}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--quick", action="store_true", help="tiny sizes (E=4, N=16, B=4, 2 iterations, 1 rep)")
    p.add_argument("--E", type=int, default=64)
    p.add_argument("--N", type=int, default=64)
    p.add_argument("--B", type=int, default=32)
    p.add_argument("--iters", type=int, default=3, help="timed training iterations per repetition")
    p.add_argument("--reps", type=int, default=3, help="repetitions; each time is their median")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (training default: 1)")
    p.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), help="run only these benchmarks")
    p.add_argument("--fig1", action="store_true", help="also time `neurosim reproduce fig1` (minutes)")
    p.add_argument("--out", type=Path, help="write the results as JSON here (default: print only)")
    return p.parse_args(argv)


def sizes(args: argparse.Namespace) -> suite.Sizes:
    if args.quick:
        return suite.Sizes(E=4, N=16, B=4, iters=2, reps=1, threads=args.threads, sgemm_n=256,
                           baseline_nets=2)
    return suite.Sizes(E=args.E, N=args.N, B=args.B, iters=args.iters, reps=args.reps, threads=args.threads)


def line(title: str, r: dict) -> str:
    if "skipped" in r:
        return f"{title}: skipped: {r['skipped']}"
    dims = f"E={r['E']} N={r['N']} B={r['B']} T={r['T']}"
    ceiling = f"; at 100% of peak it would be {r['ceiling']:.1f}x" if "ceiling" in r else ""
    floor = (f"; its float64 matrix products alone take {r['floor']:.1f}x" if "floor" in r else "")
    return f"{title}: {r['ratio']:.2f}x (goal {r['goal']}{ceiling}{floor}; {dims})"


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    s = sizes(args)
    torch.set_num_threads(s.threads)
    results: dict = {"sizes": suite.sizes_dict(s), "machine": platform.processor() or platform.machine()}
    for name, (title, fn) in BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        results[name] = r = fn(s)
        print(line(title, r), flush=True)
        if name == "fraction_of_peak":
            print(f"  e-prop {r['gflops_achieved']:.1f} GFLOP/s ({r['flops']['total'] / 1e9:.3f} GFLOP in "
                  f"{r['ms_per_iteration']:.1f} ms), sgemm n={r['sgemm_n']} {r['gflops_peak']:.1f} GFLOP/s, "
                  f"{s.threads} thread(s)")
            terms = (f"{k} {v / 1e6:.1f}M" for k, v in r["flops"].items() if k != "total")
            print("  FLOPs: " + ", ".join(terms))
    if args.fig1:
        results["fig1"] = r = suite.fig1()
        print(f"fig1 reproduction: {r['wall_s']:.1f} s wall, peak RSS {r['peak_rss_mib']:.0f} MiB "
              f"(exit {r['returncode']})")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"results written to {args.out}")
    return results


if __name__ == "__main__":
    main()
