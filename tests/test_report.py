"""`neurosim train`'s terminal output (neurosim/report.py): plain loss lines in a log or a pipe,
a summary table that fits 80 columns, saturations and wraps named apart, stall fractions shown."""

import csv
import io
import re

import pytest
from cli_helpers import run_cli
from rich.console import Console

from neurosim.report import LOG_LINES, log_step, summary_table

FIXED = ["--profile", "int8-stochastic", "--iters", "40", "--seeds", "2", "--n-hidden", "8",
         "--batch", "4", "--log-every", "1"]
LINE = re.compile(r"^iteration (\d+)/40  loss (\S+) \(Adam\), (\S+) \(SGD\), (\S+) \(fixed\)$")


@pytest.mark.parametrize("total", [1, 4, 40, 199, 200, 2000, 2100, 10000, 10100, 123457])
def test_log_step_prints_at_most_20_lines_and_at_least_10_on_long_runs(total):
    k = log_step(total)
    lines = sum(1 for done in range(1, total + 1) if done % k == 0 or done == total)
    assert lines <= LOG_LINES + 1
    assert lines >= min(total, 10)
    assert str(k).strip("0") in ("1", "2", "5")  # a round step: 1, 2 or 5 × 10^n


def test_without_a_terminal_train_logs_the_loss_every_k_iterations(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, stderr = run_cli(["train", *FIXED, "--out", str(out)], capsys)
    assert code == 0 and stderr == ""  # stderr is kept for the one error line of a failure
    hits = [m for m in map(LINE.match, stdout.splitlines()) if m]
    k = log_step(40)
    assert [int(m[1]) for m in hits] == list(range(k, 41, k))
    # the last line's loss is the mean over the networks of each backend's last curve row
    with open(out / "curves.csv") as fh:
        last = [r for r in csv.DictReader(fh) if r["phase"] == "train" and r["iteration"] == "39"]
    for backend, shown in (("float-adam", hits[-1][2]), ("float-sgd", hits[-1][3]), ("fixed", hits[-1][4])):
        losses = [float(r["loss"]) for r in last if r["backend"] == backend]
        assert len(losses) == 2
        assert float(shown) == pytest.approx(sum(losses) / 2, rel=1e-3)  # printed to 4 digits


def test_train_output_fits_80_columns_and_names_what_it_counts(tmp_path, capsys):
    code, stdout, _ = run_cli(["train", *FIXED, "--gain", "0.5", "--gain", "1.5", "--out",
                               str(tmp_path / "run")], capsys)
    assert code == 0
    assert max(map(len, stdout.splitlines())) <= 80
    assert "…" not in stdout
    table = stdout[stdout.index("final loss"):]
    assert "=" not in table  # no raw key=value strings
    assert "sat." in table and "saturations" in table and "wraps" not in table
    assert "stall %" in table and "W_h/W_x/W_out" in table


def _rows(**labels) -> dict:
    base = {"backend": "fixed", "rule": "eprop", "task": "romo", "gain": 1.0, "bits": None,
            "profile": "int8-stochastic", "flossing": "off", "lr": 0.25, "seed": 0,
            "initial_loss": 0.08, "final_loss": 0.06, "diverged": False}
    return {**base, **labels}


def _printed(summary: list[dict], profile: dict | None) -> str:
    buf = io.StringIO()
    summary_table(summary, profile, Console(file=buf, width=80))
    return buf.getvalue()


def test_many_varying_labels_still_fit_80_columns_without_cut_cells():
    summary = [
        _rows(rule=rule, task=task, gain=gain, lr=lr, flossing=floss, seed=s, sat_h=3 * s, sat_eps=1,
              stall_W_h=0.25, stall_W_x=0.5, stall_W_out=1.0)
        for rule in ("bptt", "eprop") for task in ("romo", "dms") for gain in (0.5, 1.5)
        for lr in (0.125, 0.0009765625) for floss in ("off", "local100@0.01+every10") for s in (0, 1)
    ]
    text = _printed(summary, {"overflow": "saturate"})
    assert max(map(len, text.splitlines())) <= 80
    assert "…" not in text
    assert "local100" in text and "ery10" in text  # a long label folds onto more lines, not cut


def test_saturations_and_wraps_are_named_by_the_profile_overflow_rule_and_summed():
    summary = [_rows(seed=s, sat_h=5 + s, sat_eps=2, stall_W_h=0.25 * s, stall_W_x=0.0, stall_W_out=0.5)
               for s in (0, 1)] + [_rows(backend="float-sgd", profile=None)]
    wrap = _printed(summary, {"overflow": "wrap"})
    sat = _printed(summary, {"overflow": "saturate"})
    assert "wraps" in wrap and "sat" not in wrap
    assert "saturations" in sat and "wrap" not in sat
    total = (5 + 0 + 2) + (5 + 1 + 2)
    fixed_row = next(ln for ln in sat.splitlines() if ln.strip().startswith("fixed"))
    assert f" {total} " in fixed_row
    assert fixed_row.rstrip().endswith("12/0/50")  # stall % per matrix, mean over the two networks
    assert "h 11, eps 4" in sat  # per signal, largest first
    float_row = next(ln for ln in sat.splitlines() if ln.strip().startswith("float-sgd"))
    assert float_row.count("—") == 2  # a float network has no overflows and no stalls


def test_on_a_terminal_the_bar_shows_the_loss_and_stdout_gets_no_lines(monkeypatch, capsys):
    from neurosim.report import progress_bar

    monkeypatch.setenv("FORCE_COLOR", "1")  # rich takes stderr for a terminal
    with progress_bar("iteration", log_lines=True) as advance:
        advance(1, 4, {})
        advance(4, 4, {"float-sgd": 0.0412, "fixed": 0.045})
    out = capsys.readouterr()
    assert out.out == ""
    assert "loss 0.0412 (SGD), 0.045 (fixed)" in out.err
