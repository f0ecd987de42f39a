"""Interrupted work: `neurosim train` killed with SIGKILL at random points and rerun with
--resume ends exactly as an uninterrupted run, float and fixed point (stochastic rounding), both
with the cosine lr decay, whose clock the checkpoint keeps."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from neurosim.results import checkpoint_path

ARGS = ["train", "--iters", "80", "--seeds", "2", "--n-hidden", "8", "--batch", "4",
        "--log-every", "5", "--checkpoint-every", "5"]


def _cmd(out: Path, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "neurosim", *ARGS, *extra, "--out", str(out)]


def _tables(out: Path) -> tuple[str, list]:
    summary = json.loads((out / "summary.json").read_text())
    return (out / "curves.csv").read_text(), summary


@pytest.mark.slow
@pytest.mark.parametrize("extra", [["--lr-decay", "cosine"], ["--bits", "8", "--lr-decay", "cosine"]],
                         ids=["float-cosine", "fixed8-cosine"])
def test_sigkilled_train_resumes_to_identical_results(tmp_path, extra):
    reference = tmp_path / "reference"
    subprocess.run(_cmd(reference, extra), check=True, capture_output=True)
    out = tmp_path / "killed"
    rng = random.Random(0)
    kills = 0
    for _ in range(3):  # kill at a random moment after a checkpoint exists, several times
        proc = subprocess.Popen(_cmd(out, [*extra, "--resume"]), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 60
        while not checkpoint_path(out).exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.5))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        assert not out.exists() or (out / "summary.json").exists()  # never a partial run dir
    subprocess.run(_cmd(out, [*extra, "--resume"]), check=True, capture_output=True)
    assert kills >= 1
    assert _tables(out) == _tables(reference)
    assert not checkpoint_path(out).exists()


def test_resume_of_a_complete_run_does_not_redo_it(tmp_path):
    out = tmp_path / "run"
    subprocess.run(_cmd(out, []), check=True, capture_output=True)
    before = (out / "curves.csv").stat().st_mtime_ns
    subprocess.run(_cmd(out, ["--resume"]), check=True, capture_output=True)
    assert (out / "curves.csv").stat().st_mtime_ns == before
