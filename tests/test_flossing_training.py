"""Flossing inside the training loop and the `neurosim lyapunov` report."""

import numpy as np
import pytest
from cli_helpers import run_cli

from neurosim.config import TrainConfig
from neurosim.train import initial_max_le, train


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
