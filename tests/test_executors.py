"""Executors: local worker processes and a real Dask cluster (worker processes over TCP) give
the tables of an in-process run byte for byte, one torch thread per cell; executor misuse is an
input error."""

import json
import os

import pytest

from neurosim.executors import ExecutorError, open_executor
from neurosim.grid import load_sweep
from neurosim.sweep import run_sweep

SPEC = {"grid": {"rule": ["bptt", "eprop"], "task": ["romo", "dms"], "gain": [0.5, 1.0], "lr": [1e-3, 3e-3]},
        "fixed": {"iters": 12, "seeds": 2, "batch": 4, "n_hidden": 8, "log_every": 4, "final_window": 4}}


def _tables(out) -> dict[str, bytes]:
    return {n: (out / n).read_bytes() for n in ("curves.csv", "summary.csv")}


def _threads(out) -> set[int]:
    return {json.loads(p.read_text())["cell"]["torch_threads"] for p in out.glob("cells/*/config.json")}


def test_local_processes_and_dask_cluster_give_identical_results(tmp_path):
    from distributed import LocalCluster

    spec = load_sweep(SPEC)
    reference = run_sweep(spec, tmp_path / "serial", executor="serial")
    assert len(reference.spec.cells) == 4 and not reference.failed
    local = run_sweep(spec, tmp_path / "local", executor="local", workers=2)
    # worker processes over TCP: jobs and results are pickled and sent, as on a real cluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, protocol="tcp://",
                      host="127.0.0.1", dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        dask = run_sweep(spec, tmp_path / "dask", executor="dask", scheduler=cluster.scheduler_address)
    assert not local.failed and not dask.failed
    assert _tables(tmp_path / "local") == _tables(tmp_path / "serial") == _tables(tmp_path / "dask")
    for kind in ("serial", "local", "dask"):
        assert _threads(tmp_path / kind) == {1}
    for result in (local, dask):  # every cell ran in another process than this one
        assert all(o.worker.split(":")[1] != str(os.getpid()) for o in result.outcomes)


@pytest.mark.parametrize("kind,kw,word", [
    ("threads", {}, "executor"),
    ("dask", {}, "scheduler"),
    ("local", {"workers": 0}, "workers"),
])
def test_executor_misuse_is_an_input_error_before_anything_is_written(tmp_path, kind, kw, word):
    out = tmp_path / "out"
    with pytest.raises(ExecutorError, match=word):
        run_sweep(load_sweep(SPEC), out, executor=kind, **kw)
    assert not out.exists()


def test_a_raising_item_is_yielded_as_its_exception_and_the_rest_run():
    with open_executor("serial") as run:
        got = dict(run(_inverse, [1, 0, 4]))
    assert got[0] == 1.0 and got[2] == 0.25 and isinstance(got[1], ZeroDivisionError)


def _inverse(x: int) -> float:
    return 1 / x
