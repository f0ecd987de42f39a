"""Fixed point in the training loop: float SGD and the engine side by side on the same batches."""

import json

import pytest
import torch
from cli_helpers import run_cli

from neurosim.config import TrainConfig
from neurosim.training import train


def _curve(result, backend, seed=0):
    return torch.tensor([r["loss"] for r in result.curves if r["backend"] == backend and r["seed"] == seed])


def _final(result, backend):
    rows = [r["final_loss"] for r in result.summary if r["backend"] == backend]
    return sum(rows) / len(rows)


@pytest.mark.parametrize("lr_decay", ["none", "cosine"])
def test_wide_profile_follows_float_sgd_over_the_first_iterations(lr_decay):
    common = dict(profile="float-like-24", iters=15, seeds=2, n_hidden=16, batch=8, log_every=1)
    result = train(TrainConfig(lr_decay=lr_decay, **common))
    for seed in (0, 1):
        a, b = _curve(result, "float-sgd", seed), _curve(result, "fixed", seed)
        # 24-bit words with ~20 fractional bits: quantization error ~1e-6 per weight, growing
        # over 15 SGD steps; 1e-3 relative bounds it with room and still catches any rule bug
        torch.testing.assert_close(b, a, rtol=1e-3, atol=0)
    if lr_decay == "cosine":  # the engine's shift schedule and the partner's lr fall together:
        # their weights end 100× closer to each other than to the same engine at a constant shift
        constant = train(TrainConfig(lr_decay="none", **common))
        for name in ("W_h", "W_out"):
            w_fixed, w_float = (getattr(result.params[b], name) for b in ("fixed", "float-sgd"))
            w_const = getattr(constant.params["fixed"], name)
            assert (w_fixed - w_float).norm() < 0.01 * (w_fixed - w_const).norm()


@pytest.mark.slow
def test_sixteen_bits_end_within_ten_percent_of_float_sgd():
    result = train(TrainConfig(profile="int16", gain=1.0, iters=300, seeds=3, log_every=20))
    assert abs(_final(result, "fixed") / _final(result, "float-sgd") - 1) < 0.10


@pytest.mark.slow
def test_round_to_nearest_stalls_where_stochastic_rounding_learns():
    common = dict(gain=1.0, iters=150, seeds=2, n_hidden=32, log_every=10)
    nearest = train(TrainConfig(profile="int8-nearest", **common))
    stochastic = train(TrainConfig(profile="int8-stochastic", **common))
    stall_n = [r["stall_W_h"] for r in nearest.summary if r["backend"] == "fixed"]
    stall_s = [r["stall_W_h"] for r in stochastic.summary if r["backend"] == "fixed"]
    assert min(stall_n) == 1.0  # every non-zero W_h gradient rounded to no change at all
    assert max(stall_s) < 1.0
    w_n = nearest.params["fixed"].W_h
    one_step = train(TrainConfig(profile="int8-nearest", **{**common, "iters": 1}))
    assert torch.equal(w_n, one_step.params["fixed"].W_h)
    assert not torch.equal(stochastic.params["fixed"].W_h, w_n)


def test_train_bits_writes_adam_sgd_and_engine_curves_and_says_what_each_gap_means(tmp_path, capsys):
    """The main command: float Adam (the paper's reference), float SGD at the chip's lr and the
    engine, with one line per gap; --no-adam-reference leaves Adam out."""
    out = tmp_path / "run"
    args = ["train", "--bits", "8", "--gain", "0.2", "--iters", "6", "--seeds", "2", "--n-hidden", "8",
            "--batch", "4"]
    code, stdout, _ = run_cli([*args, "--out", str(out)], capsys)
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert {r["backend"] for r in summary} == {"float-adam", "float-sgd", "fixed"}
    assert "fixed / float final loss" in stdout
    assert "precision alone" in stdout and "the optimiser" in stdout
    code, stdout, _ = run_cli([*args, "--no-adam-reference", "--out", str(tmp_path / "plain")], capsys)
    assert code == 0 and "the optimiser" not in stdout
    assert {r["backend"] for r in json.loads((tmp_path / "plain" / "summary.json").read_text())} == {
        "float-sgd", "fixed"}


@pytest.mark.parametrize(
    "args,word",
    [
        (["--bits", "0"], "bits"),
        (["--profile", "no-such-chip"], "no-such-chip"),
        (["--bits", "8", "--rounding", "sideways"], "rounding"),
        (["--bits", "8", "--rule", "bptt"], "eprop"),
    ],
)
def test_bad_precision_input_is_one_line_and_exit_2(tmp_path, capsys, args, word):
    out = tmp_path / "run"
    code, _, err = run_cli(["train", "--iters", "3", *args, "--out", str(out)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and word in err, err
    assert list(tmp_path.iterdir()) == []


def test_profile_file_with_more_fractional_than_word_bits_is_refused(tmp_path, capsys):
    _, text, _ = run_cli(["profiles", "show", "int8-stochastic"], capsys)
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('W_h = "s8.6"', 'W_h = "s8.9"'))
    args = ["train", "--iters", "3", "--profile", str(bad), "--out", str(tmp_path / "r")]
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "W_h" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_precision_overrides_work_with_a_profile_and_lr_becomes_a_shift_for_both_backends(tmp_path, capsys):
    """--trace-bits on a shipped profile resizes its traces; --lr in fixed point trains both
    backends at the nearest power of two, and config.json records what each ran."""
    from cli_helpers import run_cli

    small = ["--iters", "3", "--seeds", "1", "--n-hidden", "4", "--batch", "2"]
    out = tmp_path / "traces"
    code, _, err = run_cli(["train", "--profile", "int8-stochastic", "--trace-bits", "6", *small,
                            "--out", str(out)], capsys)
    assert code == 0, err
    ran = json.loads((out / "config.json").read_text())
    assert ran["profile"]["formats"]["eps"] == "s6.3"  # int8-stochastic's s8.5 keeps its 3 integer bits
    out = tmp_path / "lr"
    code, _, err = run_cli(["train", "--bits", "8", "--lr", "0.01", *small, "--out", str(out)], capsys)
    assert code == 0, err
    config = json.loads((out / "config.json").read_text())
    assert config["profile"]["lr_shift"] == 7 and config["config"]["lr"] == 2.0**-7
    assert {b: (r["optimizer"], r["lr"]) for b, r in config["ran"].items()} == {
        "float-adam": ("adam", 3e-4), "float-sgd": ("sgd", 2.0**-7), "fixed": ("sgd", 2.0**-7)}
    rows = json.loads((out / "summary.json").read_text())
    assert {r["lr"] for r in rows if r["backend"] != "float-adam"} == {2.0**-7}
    refused = ((["--optimizer", "adam"], "optimizer"), (["--lr", "0.01", "--lr-shift", "5"], "lr_shift"),
               (["--lr", "0.01", "--lr", "0.1"], "one"))
    for args, word in refused:
        code, _, err = run_cli(["train", "--bits", "8", *args, *small, "--out", str(tmp_path / "x")], capsys)
        assert code == 2 and word in err and not (tmp_path / "x").exists(), err
