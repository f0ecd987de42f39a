"""`neurosim train`: a small run writes a complete run directory; bad input exits 2 cleanly."""

import json

import pytest
from cli_helpers import run_cli

SMALL = ["--iters", "12", "--seeds", "2", "--n-hidden", "8", "--batch", "4", "--log-every", "3"]


def test_train_writes_a_complete_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = run_cli(["train", *SMALL, "--gain", "0.2", "--gain", "1.0", "--out", str(out)], capsys)
    assert code == 0, stdout
    assert {p.name for p in out.iterdir()} >= {"config.json", "curves.csv", "summary.json", "figures"}
    assert (out / "figures" / "learning_curves.png").stat().st_size > 1000
    assert (out / "figures" / "learning_curves.svg").stat().st_size > 1000
    summary = json.loads((out / "summary.json").read_text())
    assert sorted((r["gain"], r["seed"]) for r in summary) == [(0.2, 0), (0.2, 1), (1.0, 0), (1.0, 1)]
    assert json.loads((out / "config.json").read_text())["config"]["iters"] == 12
    assert "final loss" in stdout


@pytest.mark.parametrize(
    "args,word",
    [
        (["--task", "xor"], "task"),
        (["--rule", "hebb"], "rule"),
        (["--gain", "-1"], "gain"),
        (["--iters", "0"], "iters"),
        (["--n-hidden", "0"], "n_hidden"),
        (["--iters", "many"], "iters"),
        (["--optimizer", "rmsprop"], "optimizer"),
        (["--device", "tpu"], "device"),
        (["--tau", "14130"], "steps per trial"),  # found by the hypothesis test: a 5 TB trace
        (["--le-warmup", "56"], "le_warmup"),  # found by the hypothesis test: Romo has 56 steps
        (["--dt", "1", "--tau", "1"], "alpha = 0"),  # J_0 = 0: the exponents are undefined
        (["--bits", "8", "--accumulator", "sometimes"], "accumulator"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, word):
    out = tmp_path / "run"
    code, _, err = run_cli(["train", *SMALL, *args, "--out", str(out)], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and word in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_unwritable_output_is_refused_before_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_cli(["train", *SMALL, "--out", str(blocker / "run")], capsys)
    assert code == 2 and "cannot be written" in err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    code, _, err = run_cli(["train", *SMALL, "--out", str(tmp_path / "full")], capsys)
    assert code == 2 and "not empty" in err
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the no-GPU answer")
def test_cuda_without_a_gpu_is_one_line_and_exit_2(tmp_path, capsys):
    code, _, err = run_cli(["train", *SMALL, "--device", "cuda", "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and "no GPU" in err and not (tmp_path / "r").exists()
