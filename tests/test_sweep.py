"""Sweeps: grids fold into ensembles, bad grids fail before training, a SIGKILLed sweep resumes
to the same tables, the best lr is the paper's choice, shipped experiments are valid."""

import fcntl
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from cli_helpers import run_cli

from neurosim.errors import InputError
from neurosim.grid import SweepError, experiment_path, list_experiments, load_sweep, parse_assignments
from neurosim.outputs import lock_path
from neurosim.results import OutputError
from neurosim.sweep import run_sweep
from neurosim.tables import mark_best_lr

ROOT = Path(__file__).resolve().parents[1]
TINY = {"iters": 12, "seeds": 2, "batch": 4, "n_hidden": 8, "log_every": 4, "final_window": 4}
TINY_TOML = "\n".join(f"{k} = {v}" for k, v in TINY.items())


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    return path


def test_cells_differing_only_in_gain_lr_and_seed_train_as_one_ensemble():
    spec = load_sweep({"grid": {"rule": ["bptt", "eprop"], "gain": [0.5, 1], "lr": [1e-3, 3e-3],
                                "seed": [0, 2]}, "fixed": {"seeds": 2}})
    assert [c.config.rule for c in spec.cells] == ["bptt", "eprop"]
    for c in spec.cells:  # seeds 0,1 and 2,3 join into one run of 4
        assert (c.config.gain, c.config.lr, c.config.seed, c.config.seeds) == ((0.5, 1.0), (1e-3, 3e-3), 0, 4)
    apart = load_sweep({"grid": {"seed": [0, 10]}, "fixed": {"seeds": 2}})
    assert [(c.config.seed, c.config.seeds) for c in apart.cells] == [(0, 2), (10, 2)]
    assert len({c.id for c in spec.cells + apart.cells}) == 4


def test_fixed_point_cells_take_one_lr_and_float_cells_drop_precision_overrides():
    spec = load_sweep({"grid": {"bits": ["none", 8], "lr": [1e-3, 3e-3],
                                "profile_overrides": [{"lr_shift": 8}, {"lr_shift": 10}]}})
    float_cells = [c for c in spec.cells if c.config.bits is None]
    assert len(float_cells) == 1 and float_cells[0].config.lr == (1e-3, 3e-3)
    assert float_cells[0].config.profile_overrides == ()
    fixed = [c.config for c in spec.cells if c.config.bits == 8]
    assert [(c.lr, c.profile_overrides) for c in fixed] == [(None, (("lr_shift", 8),)),
                                                            (None, (("lr_shift", 10),))]


def test_command_line_assignments_make_grid_lists_and_fixed_values():
    got = parse_assignments(["rule=bptt,eprop", "gain=0.2,1"], ["iters=30", "bits=none"])
    assert got == {"rule": ["bptt", "eprop"], "gain": [0.2, 1], "iters": 30, "bits": "none"}
    spec = load_sweep({"grid": {"gain": [1.0]}}, overrides=got)
    assert len(spec.cells) == 2 and spec.cells[0].config.gain == (0.2, 1.0)


@pytest.mark.parametrize("text,word", [
    ("[grid]\ngian = [1.0]", "gian"),
    ("[grid]\ngain = [1.0]\n[fixed]\nitres = 3", "itres"),
    ("[grid]\ngain = []", "gain"),
    ("[grid]\ngain = [0.5, -1.0]", "gain"),
    ("[grid]\ntask = ['romo', 'xor']", "task"),
    ("[grid]\ngain = 1.0", "gain"),
    ("[grid]\nlr = [1e-3]\n[fixed]\ngain = [1.0, 2.0]", "gain"),
    ("[grid]\nrule = ['bptt', 'eprop']\n[fixed]\nbits = 8", "rule"),
    ("[grid]\nprofile = ['no-such-chip']", "profile"),
    ("[grid]\nbits = [0, 8]", "bits"),
    ("[grids]\ngain = [1.0]", "grids"),
    ("[fixed]\ngain = 1.0", "grid"),
    ("[grid]\ngain = [1.0, 1.0]", "gain"),
    ("[grid]\nle_warmup = [0, 56]", "le_warmup"),  # Romo has 56 steps
])
def test_bad_sweep_is_an_input_error_naming_the_key_and_writes_nothing(tmp_path, text, word):
    path, out = _toml(tmp_path, text), tmp_path / "out"
    with pytest.raises(SweepError, match=re.escape(word)) as err:
        run_sweep(path, out, executor="serial")
    assert isinstance(err.value, InputError) and "\n" not in str(err.value)
    assert not out.exists()


def test_bad_sweep_on_the_command_line_is_one_line_and_exit_2(tmp_path, capsys):
    path, out = _toml(tmp_path, "[grid]\ngain = [0.2, -1.0]"), tmp_path / "out"
    code, _, err = run_cli(["sweep", str(path), "--out", str(out), "--executor", "serial"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "gain" in err
    code, _, err = run_cli(["reproduce", "fig99", "--out", str(out)], capsys)
    assert code == 2 and "fig1" in err
    assert not out.exists()


def test_best_lr_is_lowest_mean_final_loss_over_seeds_with_fewest_divergences():
    def row(gain, lr, seed, loss, diverged=False):
        return {"backend": "float", "rule": "eprop", "task": "romo", "gain": gain, "bits": None,
                "profile": None, "flossing": "off", "lr": lr, "seed": seed,
                "final_loss": math.nan if diverged else loss, "diverged": diverged}

    rows = [row(1.0, 1e-3, 0, 0.10), row(1.0, 1e-3, 1, 0.30),  # mean 0.20
            row(1.0, 3e-3, 0, 0.05), row(1.0, 3e-3, 1, 0.40),  # mean 0.225: the best seed is not enough
            row(0.2, 1e-3, 0, 0.50), row(0.2, 1e-3, 1, 0.60),
            row(0.2, 3e-3, 0, 0.01), row(0.2, 3e-3, 1, 0.0, diverged=True)]  # a divergence disqualifies
    best = mark_best_lr(rows)
    assert sorted(best.values()) == [1e-3, 1e-3]
    assert [r["best_lr"] for r in rows] == [True, True, False, False, True, True, False, False]


DRIVER = ("import sys\nfrom neurosim.grid import load_sweep\nfrom neurosim.sweep import run_sweep\n"
          "run_sweep(load_sweep(sys.argv[1]), sys.argv[2], executor='local', workers=2)\n")
KILL_GRID = """
[grid]
rule = ["bptt", "eprop"]
n_hidden = [8, 12, 16]
gain = [0.5, 1.0]
lr = [1e-3, 3e-3]
[fixed]
iters = 40
seeds = 2
batch = 4
log_every = 5
final_window = 5
"""


def _driver(toml: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", DRIVER, str(toml), str(out)], cwd=ROOT,
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_sweep_killed_by_sigkill_resumes_to_the_tables_of_an_uninterrupted_one(tmp_path):
    toml = _toml(tmp_path, KILL_GRID)
    reference = run_sweep(toml, tmp_path / "reference", executor="serial")
    out = tmp_path / "killed"
    proc = _driver(toml, out)
    try:
        deadline = time.monotonic() + 60
        while not _finished_cells(out):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read().decode()
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the group of the driver we started, if anything is left
        except ProcessLookupError:
            pass
    finished = _finished_cells(out)
    assert 1 <= len(finished) < len(reference.spec.cells)
    metas = [json.loads((out / "cells" / n / "config.json").read_text())["cell"] for n in finished]
    workers = {int(m["worker"].split(":")[1]) for m in metas}
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers):  # orphaned workers notice and exit
        assert time.monotonic() < deadline, "worker processes outlived the killed sweep"
        time.sleep(0.1)
    manifest = json.loads((out / "manifest.json").read_text())
    assert not manifest["complete"]

    rerun = _driver(toml, out)  # the same command again
    assert rerun.wait(120) == 0, rerun.stdout.read().decode()
    for name in ("curves.csv", "summary.csv"):
        assert (out / name).read_bytes() == (tmp_path / "reference" / name).read_bytes(), name
    assert {n: t for n, t in _finished_cells(out).items() if n in finished} == finished  # not retrained
    assert json.loads((out / "manifest.json").read_text())["complete"]
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]


def _finished_cells(out: Path) -> dict[str, int]:
    """{cell id: mtime of its summary.json} of the complete cell directories (not the hidden
    temporaries a cell is written into before its rename)."""
    return {p.parent.name: p.stat().st_mtime_ns for p in out.glob("cells/*/summary.json")
            if not p.parent.name.startswith(".")}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").is_file() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_a_cell_killed_midway_continues_from_its_checkpoint(tmp_path, monkeypatch):
    """A long cell checkpoints every 200 iterations; interrupted at 300, the next run trains only
    the 200 iterations after the checkpoint and ends with the tables of an uninterrupted sweep."""
    from neurosim.training import _Run

    toml = _toml(tmp_path, "[grid]\ngain = [1.0]\n[fixed]\niters = 400\nseeds = 2\nbatch = 4\n"
                           "n_hidden = 8\nlog_every = 20\nfinal_window = 5\n")
    reference = run_sweep(toml, tmp_path / "reference", executor="serial")
    real, counted = _Run.iteration, []

    def killed_at_300(run):
        if run.done == 300:
            raise KeyboardInterrupt  # like a kill: nothing of the cell is written
        real(run)

    def counting(run):
        counted.append(run.done)
        real(run)

    out = tmp_path / "out"
    monkeypatch.setattr(_Run, "iteration", killed_at_300)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(toml, out, executor="serial")
    checkpoint = out / "cells" / f".{reference.spec.cells[0].id}.checkpoint.pt"
    assert checkpoint.is_file() and not list((out / "cells").glob("*/summary.json"))
    monkeypatch.setattr(_Run, "iteration", counting)
    run_sweep(toml, out, executor="serial")
    assert counted == list(range(200, 400)) and not checkpoint.exists()
    for name in ("curves.csv", "summary.csv"):
        assert (out / name).read_bytes() == (tmp_path / "reference" / name).read_bytes(), name


def test_failed_cell_is_recorded_and_retried_by_the_next_run(tmp_path, monkeypatch):
    import neurosim.sweep as sweep_mod

    toml = _toml(tmp_path, f"[grid]\nrule = ['bptt', 'eprop']\n[fixed]\n{TINY_TOML}")
    real = sweep_mod.train_cell

    def flaky(job):
        if job[0]["rule"] == "bptt":
            raise RuntimeError("node lost")
        return real(job)

    monkeypatch.setattr(sweep_mod, "train_cell", flaky)
    first = run_sweep(toml, tmp_path / "out", executor="serial")
    assert [o.status for o in first.outcomes] == ["failed", "done"]
    assert {r["rule"] for r in first.summary} == {"eprop"}
    cells = json.loads((tmp_path / "out" / "manifest.json").read_text())["cells"]
    assert cells[0]["status"] == "failed" and "node lost" in cells[0]["error"]
    monkeypatch.setattr(sweep_mod, "train_cell", real)
    second = run_sweep(toml, tmp_path / "out", executor="serial")
    assert [o.status for o in second.outcomes] == ["done", "resumed"]


def test_output_rules_no_resume_refuses_force_replaces_only_a_sweep_lock_excludes(tmp_path):
    toml = _toml(tmp_path, f"[grid]\ngain = [1.0]\n[fixed]\n{TINY_TOML}")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="not a sweep directory"):
        run_sweep(toml, out, executor="serial")
    with pytest.raises(OutputError, match="not empty"):
        run_sweep(toml, out, executor="serial", resume=False)
    with pytest.raises(OutputError, match="did not write"):  # --force never deletes a user's folder
        run_sweep(toml, out, executor="serial", resume=False, force=True)
    assert (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    run_sweep(toml, out, executor="serial")
    (out / "stray.txt").write_text("x")
    run_sweep(toml, out, executor="serial", resume=False, force=True)  # a sweep folder: replaced
    assert not (out / "stray.txt").exists() and (out / "summary.csv").is_file()
    with open(lock_path(out), "w") as fh:  # another live command holds the folder
        fcntl.flock(fh, fcntl.LOCK_EX)
        for kw in ({}, {"resume": False, "force": True}):
            with pytest.raises(OutputError, match="another neurosim command"):
                run_sweep(toml, out, executor="serial", **kw)
        assert (out / "summary.csv").is_file()  # the lock is taken before anything is deleted


def test_shipped_experiments_are_valid_and_quick_is_small():
    assert {"fig1", "fig2", "fig5"} <= set(list_experiments())
    for name in list_experiments():
        full, quick = load_sweep(experiment_path(name)), load_sweep(experiment_path(name), quick=True)
        assert full.description and len(full.cells) >= 2
        work = sum(len(c.config.gains) * len(c.config.lrs) * c.config.seeds * c.config.iters
                   * c.config.n_hidden for c in quick.cells)
        assert work <= 50_000, name  # networks × iterations × units of the CI-sized version
    fig1 = load_sweep(experiment_path("fig1"))
    assert fig1.grid["gain"] == (0.2, 0.5, 1.0, 1.5, 2.0) and fig1.grid["lr"] == (1e-4, 3e-4, 1e-3, 3e-3)
    assert all(c.config.seeds == 5 for c in fig1.cells)


def test_readme_sweep_example_is_a_valid_sweep():
    text = (ROOT / "experiments" / "README.md").read_text()
    block = re.search(r"```toml\n(.*?)```", text, re.S).group(1)
    assert len(load_sweep(tomllib.loads(block)).cells) > 1


def test_reproduce_quick_writes_tables_and_figures(tmp_path, capsys):
    out = tmp_path / "fig1"
    code, stdout, err = run_cli(["reproduce", "fig1", "--quick", "--out", str(out), "--executor", "serial"],
                                capsys)
    assert code == 0, err
    assert stdout.count("done ") == 2 and "learning_curves.png" in stdout
    assert (out / "figures" / "learning_curves.png").stat().st_size > 1000
    summary = (out / "summary.csv").read_text().splitlines()
    assert len(summary) == 1 + 2 * 2 * 2 * 2  # header + rules × gains × lrs × seeds
    code, stdout, _ = run_cli(["reproduce", "fig1", "--quick", "--out", str(out), "--executor", "serial"],
                              capsys)
    assert code == 0 and stdout.count("resumed ") == 2


def test_plot_draws_a_run_directory_and_a_final_loss_heatmap_over_gain_and_bits(tmp_path):
    from neurosim.api import run_training
    from neurosim.config import TrainConfig
    from neurosim.plots_sweep import plot_final_loss_heatmap, plot_results

    run_dir, _ = run_training(TrainConfig(gain=(0.5, 1.0), lr=(1e-3, 3e-3), **TINY), tmp_path / "run")
    assert [p.name for p in plot_results(run_dir)] == ["learning_curves.png", "learning_curves.svg",
                                                       "le_vs_gain.png", "le_vs_gain.svg"]
    rows = [{"backend": b, "rule": "eprop", "task": "romo", "gain": g, "bits": bits, "profile": None,
             "flossing": "off", "lr": 1e-3, "seed": s, "final_loss": 0.1 * g + s, "diverged": False,
             "best_lr": True}
            for b, bits in (("fixed", 4), ("fixed", 8), ("float-sgd", None))
            for g in (0.2, 1.0) for s in (0, 1)]
    heat = plot_final_loss_heatmap(rows, tmp_path / "heat.png")
    assert heat.stat().st_size > 1000
    assert plot_final_loss_heatmap([r for r in rows if r["bits"] is None], tmp_path / "none.png") is None
    with pytest.raises(InputError, match="neither"):
        plot_results(tmp_path)


def test_final_loss_vs_gain_draws_one_panel_per_task_and_needs_three_gains(tmp_path):
    from neurosim.plots_sweep import plot_final_loss_vs_gain

    rows = [{"backend": "float", "rule": rule, "task": task, "gain": g, "bits": None, "profile": None,
             "flossing": "off", "lr": 1e-3, "seed": s, "final_loss": 0.01 * g + 0.001 * s,
             "diverged": False, "best_lr": True}
            for task in ("romo", "dms") for rule in ("bptt", "eprop") for g in (0.2, 0.6, 1.0)
            for s in (0, 1)]
    drawn = plot_final_loss_vs_gain(rows, tmp_path / "by_gain.png")
    assert drawn.stat().st_size > 1000
    assert plot_final_loss_vs_gain([r for r in rows if r["gain"] != 0.6], tmp_path / "two.png") is None
    assert not (tmp_path / "two.png").exists()


def test_a_damaged_cell_checkpoint_is_moved_aside_and_the_cell_retrained(tmp_path):
    toml = _toml(tmp_path, f"[grid]\ngain = [1.0]\n[fixed]\n{TINY_TOML}")
    reference = run_sweep(toml, tmp_path / "reference", executor="serial")
    out = tmp_path / "out"
    run_sweep(toml, out, executor="serial")
    cell = reference.spec.cells[0].id
    shutil.rmtree(out / "cells" / cell)  # as if killed while the cell trained, its checkpoint damaged
    ckpt = out / "cells" / f".{cell}.checkpoint.pt"
    ckpt.write_bytes(b"\x80\x04 not a checkpoint")
    result = run_sweep(toml, out, executor="serial")
    assert [o.status for o in result.outcomes] == ["done"]
    meta = json.loads((out / "cells" / cell / "config.json").read_text())["cell"]
    assert "damaged" in meta["checkpoint_discarded"]
    assert (ckpt.parent / f"{ckpt.name}.damaged").is_file() and not ckpt.exists()
    for name in ("curves.csv", "summary.csv"):
        assert (out / name).read_bytes() == (tmp_path / "reference" / name).read_bytes(), name


def test_resuming_after_the_profile_file_was_edited_is_refused_naming_the_change(tmp_path, capsys):
    from hw_models.profile import PROFILE_DIR

    profile = tmp_path / "chip.toml"
    profile.write_text((PROFILE_DIR / "int8-stochastic.toml").read_text())
    toml = _toml(tmp_path, f'[grid]\ngain = [1.0]\n[fixed]\nprofile = "{profile}"\n{TINY_TOML}')
    out = tmp_path / "out"
    assert not run_sweep(toml, out, executor="serial").failed
    profile.write_text(profile.read_text().replace('W_h = "s8.6"', 'W_h = "s8.5"'))
    code, _, err = run_cli(["sweep", str(toml), "--out", str(out), "--executor", "serial"], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert "formats.W_h was 's8.6', now 's8.5'" in err


SIGINT_DRIVER = """
import sys
from neurosim.cli import main
sys.argv = ["neurosim", "sweep", sys.argv[1], "--out", sys.argv[2], "--executor", "serial", "--no-plot"]
main()
"""


@pytest.mark.slow
def test_ctrl_c_on_a_sweep_exits_130_and_the_rerun_ends_as_an_uninterrupted_sweep(tmp_path):
    toml = _toml(tmp_path, KILL_GRID)
    reference = run_sweep(toml, tmp_path / "reference", executor="serial")
    out = tmp_path / "interrupted"
    proc = subprocess.Popen([sys.executable, "-c", SIGINT_DRIVER, str(toml), str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not _finished_cells(out):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "rerun the same command to resume" in err and "Traceback" not in err
    assert len(_finished_cells(out)) < len(reference.spec.cells)
    rerun = subprocess.run([sys.executable, "-c", SIGINT_DRIVER, str(toml), str(out)], cwd=ROOT,
                           capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    for name in ("curves.csv", "summary.csv"):
        assert (out / name).read_bytes() == (tmp_path / "reference" / name).read_bytes(), name
