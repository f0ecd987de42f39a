"""Where sweep cells run: local worker processes (default), an existing Dask cluster, or inline.

An executor maps one picklable function over a list of items and yields ``(index, result)`` in
the order the items finish; a cell that raised yields its exception as the result, so one bad
cell does not stop the others. Every cell trains with one torch thread (``torch.set_num_threads(1)``)
whichever executor runs it: the workers then do not fight over cores, and the numbers do not
depend on the executor (float sums are ordered the same way everywhere).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager

from neurosim.errors import InputError

EXECUTORS = ("local", "dask", "serial")
Results = Iterator[tuple[int, object]]


class ExecutorError(InputError):
    """An executor cannot be used as asked (unknown kind, no scheduler, unreachable cluster)."""


def single_threaded(fn: Callable, item):
    """``fn(item)`` with one torch thread (the setting every executor gives a cell)."""
    import torch

    torch.set_num_threads(1)
    return fn(item)


@contextmanager
def open_executor(kind: str = "local", *, scheduler: str | None = None, workers: int = 2):
    """Yield ``run(fn, items) -> iterator of (index, result or exception)``.

    ``local``: a pool of ``workers`` spawned processes; ``dask``: the Dask cluster whose scheduler
    is at ``scheduler`` (its workers need neurosim installed); ``serial``: this process, in order.
    The executor is checked (and a Dask scheduler reached) on entry, before any cell runs.
    """
    if kind not in EXECUTORS:
        raise ExecutorError(f"executor must be one of {', '.join(EXECUTORS)}; got {kind!r}")
    if kind == "dask":
        if not scheduler:
            raise ExecutorError("executor dask needs a scheduler address (--scheduler tcp://HOST:PORT)")
        with _dask(scheduler) as run:
            yield run
    elif kind == "local":
        if not isinstance(workers, int) or workers < 1:
            raise ExecutorError(f"workers must be a positive integer, got {workers!r}")
        yield lambda fn, items: _local(fn, items, workers)
    else:
        yield _serial


def _serial(fn: Callable, items: list) -> Results:
    import torch

    threads = torch.get_num_threads()
    try:
        for i, item in enumerate(items):
            try:
                yield i, single_threaded(fn, item)
            except Exception as err:  # noqa: BLE001 — recorded as the cell's failure
                yield i, err
    finally:
        torch.set_num_threads(threads)


def _local(fn: Callable, items: list, workers: int) -> Results:
    if not items:
        return
    ctx = multiprocessing.get_context("spawn")  # fork after torch has started threads can hang
    pool = ProcessPoolExecutor(min(workers, len(items)), mp_context=ctx, initializer=_worker_init,
                               initargs=(os.getpid(),))
    finished = False
    try:
        futures = {pool.submit(single_threaded, fn, item): i for i, item in enumerate(items)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in sorted(done, key=futures.get):
                err = f.exception()
                yield futures[f], err if err is not None else f.result()
        finished = True
    finally:  # interrupted: do not wait for running cells; the workers exit when we do
        pool.shutdown(wait=finished, cancel_futures=True)


def _worker_init(parent: int) -> None:
    """Worker set-up: quiet gymnasium, and exit when the sweep process dies (even by SIGKILL),
    so no orphan keeps computing a cell nobody will collect."""
    warnings.filterwarnings("ignore", module="gymnasium")

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


@contextmanager
def _dask(scheduler: str):
    from distributed import Client, as_completed

    try:
        client = Client(scheduler, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError) as err:
        raise ExecutorError(f"cannot reach the Dask scheduler at {scheduler}: {err}") from None

    def run(fn: Callable, items: list) -> Results:
        futures = [client.submit(single_threaded, fn, item, pure=False) for item in items]
        index = {f.key: i for i, f in enumerate(futures)}
        try:
            for f in as_completed(futures, loop=client.loop):
                err = f.exception()
                yield index[f.key], err if err is not None else f.result()
        finally:
            client.cancel([f for f in futures if not f.done()])

    try:
        yield run
    finally:
        client.close()
