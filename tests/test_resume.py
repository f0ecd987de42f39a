"""Interrupted work: `neurosim train` killed with SIGKILL after checkpoints, or stopped with
Ctrl-C, and rerun with --resume ends exactly as an uninterrupted run, float and fixed point
(stochastic rounding), both with the cosine lr decay, whose clock the checkpoint keeps."""

import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import run_cli

from hw_models.profile import PROFILE_DIR
from neurosim.results import checkpoint_path
from neurosim.training import _Run, load_checkpoint

ARGS = ["train", "--iters", "300", "--seeds", "2", "--n-hidden", "8", "--batch", "4",
        "--log-every", "5", "--checkpoint-every", "10"]


def _cmd(out: Path, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "neurosim", *ARGS, *extra, "--out", str(out)]


def _tables(out: Path) -> tuple[str, list]:
    summary = json.loads((out / "summary.json").read_text())
    return (out / "curves.csv").read_text(), summary


@pytest.mark.slow
@pytest.mark.parametrize("extra", [["--lr-decay", "cosine"], ["--bits", "8", "--lr-decay", "cosine"]],
                         ids=["float-cosine", "fixed8-cosine"])
def test_sigkilled_train_resumes_to_identical_results(tmp_path, extra):
    """Three SIGKILLs, each after the killed process itself wrote a checkpoint (not during
    interpreter start-up); the last run reports the iteration it resumed from, which is the
    last checkpoint's, and ends with the uninterrupted run's tables."""
    reference = tmp_path / "reference"
    subprocess.run(_cmd(reference, extra), check=True, capture_output=True)
    out = tmp_path / "killed"
    ckpt = checkpoint_path(out)
    rng = random.Random(0)
    reached = []
    for _ in range(3):
        before = ckpt.stat().st_mtime_ns if ckpt.exists() else None
        proc = subprocess.Popen(_cmd(out, [*extra, "--resume"]), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 60
        while not (ckpt.exists() and ckpt.stat().st_mtime_ns != before):  # this process checkpointed
            assert proc.poll() is None and time.time() < deadline, "finished before a checkpoint"
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.05))
        assert proc.poll() is None, "the run ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not out.exists()  # never a partial run dir
        reached.append(load_checkpoint(ckpt)["done"])
    assert reached == sorted(reached) and reached[0] > 0
    last = subprocess.run(_cmd(out, [*extra, "--resume"]), check=True, capture_output=True, text=True)
    assert f"resumed from the checkpoint at iteration {reached[-1]} of" in last.stdout
    assert _tables(out) == _tables(reference)
    assert not ckpt.exists()


@pytest.mark.slow
def test_ctrl_c_exits_130_with_a_resume_line_and_resumes_identically(tmp_path):
    """SIGINT (Ctrl-C) stops at a whole iteration, checkpoints it, exits 130 with the command
    that resumes; running that command ends exactly as an uninterrupted run."""
    reference = tmp_path / "reference"
    subprocess.run(_cmd(reference, []), check=True, capture_output=True)
    out = tmp_path / "interrupted"
    proc = subprocess.Popen(_cmd(out, []), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not checkpoint_path(out).exists():
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "resume with neurosim train" in lines[0] and "--resume" in lines[0], err
    assert "Traceback" not in err and not out.exists()
    stopped_at = load_checkpoint(checkpoint_path(out))["done"]
    args = shlex.split(lines[0].split("resume with ", 1)[1])[1:]
    last = subprocess.run([sys.executable, "-m", "neurosim", *args], check=True, capture_output=True,
                          text=True)
    assert f"resumed from the checkpoint at iteration {stopped_at} of" in last.stdout
    assert _tables(out) == _tables(reference)


def test_resume_of_a_complete_run_does_not_redo_it(tmp_path):
    out = tmp_path / "run"
    subprocess.run(_cmd(out, []), check=True, capture_output=True)
    before = (out / "curves.csv").stat().st_mtime_ns
    subprocess.run(_cmd(out, ["--resume"]), check=True, capture_output=True)
    assert (out / "curves.csv").stat().st_mtime_ns == before


def test_resuming_a_run_after_its_profile_file_was_edited_is_refused(tmp_path, capsys, monkeypatch):
    """A checkpoint and a finished run record the profile's content: an edited TOML file is
    named in the refusal, not silently mixed into the results."""
    profile = tmp_path / "chip.toml"
    original = (PROFILE_DIR / "int8-stochastic.toml").read_text()
    profile.write_text(original)
    out = tmp_path / "run"
    args = ["train", "--profile", str(profile), "--iters", "20", "--seeds", "1", "--n-hidden", "4",
            "--batch", "2", "--checkpoint-every", "5", "--out", str(out)]
    edited = original.replace('eps = "s8.5"', 'eps = "s8.4"')
    assert edited != original
    # a finished run
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    config = json.loads((out / "config.json").read_text())
    assert config["profile"]["formats"]["eps"] == "s8.5" and len(config["profile_sha256"]) == 64
    profile.write_text(edited)
    code, _, err = run_cli([*args, "--resume"], capsys)
    assert code == 2 and "formats.eps was 's8.5', now 's8.4'" in err, err
    # a run stopped after its checkpoint at iteration 10
    shutil.rmtree(out)
    profile.write_text(original)
    real = _Run.iteration

    def stop_at_11(run):
        if run.done == 11:
            raise SystemError("killed")
        real(run)

    monkeypatch.setattr(_Run, "iteration", stop_at_11)
    code, _, err = run_cli(args, capsys)
    assert code == 1 and "killed" in err and load_checkpoint(checkpoint_path(out))["done"] == 10
    monkeypatch.setattr(_Run, "iteration", real)
    profile.write_text(edited)
    code, _, err = run_cli([*args, "--resume"], capsys)
    assert code == 2 and "formats.eps was 's8.5', now 's8.4'" in err, err
