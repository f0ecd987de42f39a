"""Flossing inside the training loop and the `neurosim lyapunov` report."""

import numpy as np
import pytest
from cli_helpers import run_cli

from neurosim.config import TrainConfig
from neurosim.training import initial_max_le, train


@pytest.mark.parametrize("profile", [None, "int16"], ids=["float", "int16"])
def test_flossing_phase_pulls_max_exponent_toward_zero(profile):
    fixed = {"profile": profile, "profile_overrides": (("lr_shift", 1),)} if profile else {"lr": 3e-3}
    config = TrainConfig(gain=0.2, seeds=5, n_hidden=32, batch=8, iters=1, floss_iters=100,
                         log_every=10, **fixed)
    result = train(config)
    rows = [r for r in result.summary if r["backend"] == ("fixed" if profile else "float")]
    before = np.mean([abs(r["le_before"]) for r in rows])
    after = np.mean([abs(r["le_after"]) for r in rows])
    assert after <= 0.5 * before, (before, after)
    phases = {r["phase"] for r in result.curves}
    assert phases == {"floss", "train"}
    assert all(r["flossing"] == "local100" for r in result.curves)


def test_initial_max_exponent_rises_with_gain():
    rows = initial_max_le(TrainConfig(gain=(0.2, 0.5, 1.0, 2.0), seeds=3, n_hidden=32))
    means = [np.mean([r["le_before"] for r in rows if r["gain"] == g]) for g in (0.2, 0.5, 1.0, 2.0)]
    assert means == sorted(means) and means[0] < -0.5  # near log α = -0.69 for the smallest gain


def test_lyapunov_command_prints_and_plots(tmp_path, capsys):
    png = tmp_path / "le.png"
    code, out, _ = run_cli(["lyapunov", "--gain", "0.2", "--gain", "1.0", "--seeds", "2",
                            "--n-hidden", "16", "--plot", str(png)], capsys)
    assert code == 0 and png.stat().st_size > 1000
    assert "max LE before" in out and "0.2" in out


def _floss_rows(result, backend="float"):
    return [(r["seed"], r["iteration"], r["loss"]) for r in result.curves
            if r["phase"] == "floss" and r["backend"] == backend]


SMALL = {"gain": 0.5, "seeds": 2, "n_hidden": 16, "batch": 4, "iters": 3, "floss_iters": 10, "log_every": 1}


def test_floss_lr_is_flossings_own_and_leaves_the_task_lr_alone():
    """Flossing at floss_lr follows the same path whatever the task lr; floss_lr = None is
    the old behaviour (flossing at the task lr)."""
    old = train(TrainConfig(lr=3e-3, **SMALL))
    same = train(TrainConfig(lr=3e-3, floss_lr=3e-3, **SMALL))
    other_task_lr = train(TrainConfig(lr=1e-4, floss_lr=3e-3, **SMALL))
    other_floss_lr = train(TrainConfig(lr=3e-3, floss_lr=1e-4, **SMALL))
    assert _floss_rows(old) == _floss_rows(same) == _floss_rows(other_task_lr)
    assert _floss_rows(other_floss_lr) != _floss_rows(old)
    assert [r["final_loss"] for r in old.summary] == [r["final_loss"] for r in same.summary]
    assert old.curves[0]["flossing"] == "local10" and same.curves[0]["flossing"] == "local10@0.003"


def test_fixed_point_floss_lr_is_the_engines_floss_shift():
    """floss_lr = 2^-3 makes the engine floss at shift 3 whatever its training lr_shift."""
    base = {**SMALL, "profile": "int16", "iters": 1}
    by_profile = train(TrainConfig(profile_overrides=(("lr_shift", 3),), **base))
    by_floss_lr = train(TrainConfig(profile_overrides=(("lr_shift", 0),), floss_lr=0.125, **base))
    assert _floss_rows(by_profile, "fixed") == _floss_rows(by_floss_lr, "fixed")
    assert _floss_rows(by_profile, "float-sgd") == _floss_rows(by_floss_lr, "float-sgd")


def test_interleaved_flossing_updates_after_every_kth_training_iteration():
    """floss_every = 4: training iterations 0..3 see the same weights as without it, the
    update after iteration 3 makes iteration 4 differ."""
    cfg = {**SMALL, "floss_iters": 0, "iters": 8, "floss_lr": 1e-2}
    plain = train(TrainConfig(**cfg))
    mixed = train(TrainConfig(floss_every=4, **cfg))
    loss = {(r["iteration"], r["seed"]): r["loss"] for r in plain.curves}
    loss_mixed = {(r["iteration"], r["seed"]): r["loss"] for r in mixed.curves}
    assert all(loss[(i, s)] == loss_mixed[(i, s)] for i in range(4) for s in (0, 1))
    assert all(loss[(4, s)] != loss_mixed[(4, s)] for s in (0, 1))
    assert mixed.curves[0]["flossing"] == "local0@0.01+every4"


@pytest.mark.parametrize(("kw", "word"), [
    ({"floss_lr": 0.0}, "floss_lr"), ({"floss_lr": -1e-3}, "floss_lr"), ({"floss_lr": "1e-3"}, "floss_lr"),
    ({"floss_lr": float("nan")}, "floss_lr"), ({"floss_lr": 0.1, "bits": 8}, "power of two"),
    ({"floss_every": -1}, "floss_every"), ({"floss_every": True}, "floss_every"),
    ({"floss_every": 2.0}, "floss_every"),
])
def test_bad_flossing_values_are_config_errors_naming_the_field(kw, word):
    from neurosim.config import ConfigError

    with pytest.raises(ConfigError, match=word):
        TrainConfig(**kw)


def test_lyapunov_of_a_run_dir_recomputes_at_another_warmup(tmp_path, capsys):
    """--le-warmup on a run directory is honoured: recomputed from params.pt, equal to the
    run's own with-transient value (Romo at dt 0.5: 7 steps), and the stored raw value at 0."""
    from neurosim.results import load_run, load_run_params
    from neurosim.training import run_max_le

    out = tmp_path / "run"
    code, _, _ = run_cli(["train", "--gain", "0.5", "--seeds", "2", "--n-hidden", "16", "--batch", "4",
                          "--iters", "5", "--out", str(out)], capsys)
    assert code == 0
    run = load_run(out)
    config, stored = TrainConfig.from_dict(run["config"]), run["summary"]
    at7 = run_max_le(config, load_run_params(out), 7)
    at0 = run_max_le(config, load_run_params(out), 0)
    assert [r["le_after"] for r in at7] == [r["le_after_tr"] for r in stored]
    assert [r["le_before"] for r in at7] == [r["le_before_tr"] for r in stored]
    assert [r["le_after"] for r in at0] == [r["le_after"] for r in stored]
    assert all(a["le_after"] != b["le_after"] for a, b in zip(at7, at0, strict=True))
    code, printed, _ = run_cli(["lyapunov", str(out), "--le-warmup", "7"], capsys)
    assert code == 0 and "recomputed" in printed
    mean7 = np.mean([r["le_after"] for r in at7])
    assert f"{mean7:+.3f}" in printed
    code, _, err = run_cli(["lyapunov", str(out), "--le-warmup", "56"], capsys)
    assert code == 2 and "le_warmup" in err
    (out / "params.pt").write_bytes(b"not a torch file")
    code, _, err = run_cli(["lyapunov", str(out), "--le-warmup", "7"], capsys)
    assert code == 2 and "params.pt" in err and len(err.strip().splitlines()) == 1
