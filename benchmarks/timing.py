"""Wall-clock timing: the median of repetitions after a warm-up call."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(fn: Callable[[], object], reps: int, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``reps`` calls, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def paired_medians(a: Callable[[], object], b: Callable[[], object], reps: int) -> tuple[float, float]:
    """Median times of ``a`` and ``b``, measured alternately so load changes hit both alike."""
    a(), b()  # warm-up: first-touch allocation, MKL initialisation
    ta, tb = [], []
    for _ in range(reps):
        for fn, out in ((a, ta), (b, tb)):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb)
