"""Hostile use of every command: each family of bad input or broken environment is answered with
its exit code (2 bad input, 1 failure during work), one ``error:`` line on stderr, no traceback,
and nothing written — and ``--force`` never deletes anything but a neurosim output folder."""

import errno
import json
import os
import sys
from pathlib import Path

import pytest
import torch
from cli_helpers import run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hw_models.profile import PROFILE_DIR
from neurosim.results import checkpoint_path

TINY = ["--iters", "4", "--seeds", "1", "--n-hidden", "4", "--batch", "2", "--log-every", "2"]


def refused(code: int, err: str, expected: int = 2, match: str | None = None) -> str:
    """Assert one error line, the exit code and no traceback; return the line."""
    lines = err.strip().splitlines()
    assert code == expected, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    if match:
        assert match in lines[0], lines[0]
    return lines[0]


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# -- --force and protected locations ------------------------------------------------------------

@pytest.fixture(autouse=True)
def deletions_stay_in_tmp(tmp_path_factory, monkeypatch):
    """A safety net for the machine running these tests: should a guard regress, a deletion
    outside pytest's temporary folders fails the test instead of happening."""
    import shutil

    real, root = shutil.rmtree, tmp_path_factory.getbasetemp().resolve()

    def guarded(path, *a, **k):
        if not Path(path).resolve().is_relative_to(root):
            raise AssertionError(f"attempted to delete {path} outside the test folders")
        return real(path, *a, **k)

    monkeypatch.setattr(shutil, "rmtree", guarded)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A working directory holding a user's canary file, inside a fake home."""
    home = tmp_path / "home"
    work = home / "project"
    work.mkdir(parents=True)
    (work / "canary.txt").write_text("the user's work")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mpl"))  # matplotlib's font cache, not in $HOME
    monkeypatch.chdir(work)
    return work


@pytest.mark.parametrize("out", [".", "..", "./", "../project", "~"])
@pytest.mark.parametrize("command", [
    ["train", *TINY],
    ["sweep", "--grid", "gain=1.0", "--set", "iters=2", "--set", "n_hidden=4", "--set", "seeds=1",
     "--set", "batch=2", "--no-resume", "--executor", "serial"],
    ["export-spec", "--profile", "int8-stochastic", "--steps", "2", "--trials", "1"],
], ids=["train", "sweep", "export-spec"])
def test_force_never_touches_the_working_directory_its_parents_or_home(workdir, capsys, out, command):
    before = listing(workdir.parent)
    out = os.path.expanduser(out)
    code, _, err = run_cli([*command, "--out", out, "--force"], capsys)
    refused(code, err, match="output")
    assert (workdir / "canary.txt").read_text() == "the user's work"
    assert listing(workdir.parent) == before


@pytest.mark.parametrize("out", ["/", "/usr", "/etc/.."])
def test_the_root_and_its_parents_are_never_an_output(workdir, out):
    """Checked on the guard itself (never through a command that could delete them)."""
    from neurosim.outputs import OutputError, check_output, remove_output

    with pytest.raises(OutputError, match="parent of the working directory|did not write"):
        check_output(out, force=True)
    with pytest.raises(OutputError, match="refusing to delete"):
        remove_output(Path(out))


def test_force_refuses_a_folder_neurosim_did_not_write(workdir, capsys):
    mine = workdir / "results"
    mine.mkdir()
    (mine / "thesis.tex").write_text("chapter 1")
    for command in (["train", *TINY], ["export-spec", "--profile", "int16", "--steps", "2"]):
        code, _, err = run_cli([*command, "--out", "results", "--force"], capsys)
        refused(code, err, match="did not write")
    assert (mine / "thesis.tex").read_text() == "chapter 1"


@pytest.mark.parametrize("kind", ["file", "symlink-to-dir", "dangling-symlink"])
def test_a_file_or_symlink_as_out_is_refused_before_training(workdir, capsys, kind, monkeypatch):
    target = workdir / "real"
    if kind == "file":
        (workdir / "out").write_text("precious")
    else:
        if kind == "symlink-to-dir":
            target.mkdir()
            (target / "config.json").write_text("{}")
        (workdir / "out").symlink_to(target)
    _no_training(monkeypatch)
    code, _, err = run_cli(["train", *TINY, "--out", "out", "--force"], capsys)
    refused(code, err, match="out")
    assert (workdir / "out").is_symlink() or (workdir / "out").read_text() == "precious"


def _no_training(monkeypatch) -> None:
    """Make any start of training a test failure: the refusal must come first."""
    train_mod = sys.modules["neurosim.training"]  # the module: ``neurosim.training`` is also the function

    def boom(*a, **k):
        raise AssertionError("a training iteration ran before the refusal")

    monkeypatch.setattr(train_mod._Run, "iteration", boom)


# -- locations that cannot be written ------------------------------------------------------------

@pytest.mark.parametrize("out", ["/proc/neurosim-test/run", "/sys/neurosim-test/run", "/proc/self/x"])
def test_unwritable_out_fails_before_training(capsys, monkeypatch, out):
    _no_training(monkeypatch)
    code, _, err = run_cli(["train", *TINY, "--out", out], capsys)
    refused(code, err, match="cannot be written")


@pytest.mark.parametrize("name", ["a" * 300, "b" * 250, "d/" + "c" * 256])
def test_over_long_names_are_refused_before_training(tmp_path, capsys, monkeypatch, name):
    _no_training(monkeypatch)
    code, _, err = run_cli(["train", *TINY, "--out", str(tmp_path / name)], capsys)
    refused(code, err, match="too long")
    assert listing(tmp_path) == []


def test_a_second_run_on_the_same_out_is_refused_at_once(tmp_path, capsys, monkeypatch):
    from neurosim.outputs import output_lock

    out = tmp_path / "run"
    _no_training(monkeypatch)
    with output_lock(out):  # a first run holds the folder
        code, _, err = run_cli(["train", *TINY, "--out", str(out)], capsys)
    refused(code, err, match="another neurosim command")


# -- failures during work ----------------------------------------------------------------------

def test_disk_full_while_writing_exits_1_and_leaves_nothing_half_written(tmp_path, capsys, monkeypatch):
    import neurosim.results as results

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(results.torch, "save", full)
    out = tmp_path / "run"
    code, _, err = run_cli(["train", *TINY, "--out", str(out)], capsys)
    refused(code, err, expected=1, match="No space left on device")
    assert listing(tmp_path) == []  # no run, no temporary, no lock


def test_a_failed_sweep_cell_exits_1(tmp_path, capsys, monkeypatch):
    import neurosim.sweep as sweep_mod

    def broken(job):
        raise RuntimeError("node lost")

    monkeypatch.setattr(sweep_mod, "train_cell", broken)
    code, _, err = run_cli(["sweep", "--grid", "gain=1.0", "--set", "iters=2", "--set", "seeds=1",
                            "--set", "n_hidden=4", "--set", "batch=2", "--executor", "serial",
                            "--out", str(tmp_path / "s")], capsys)
    refused(code, err, expected=1, match="1 of 1 cells failed")


# -- damaged files -----------------------------------------------------------------------------

DAMAGES = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "garbage": lambda p: p.write_bytes(os.urandom(2000)),
    "empty": lambda p: p.write_bytes(b""),
    "foreign-pickle": lambda p: torch.save({"model": torch.zeros(3), "epoch": 7}, p),
    "malicious-pickle": lambda p: p.write_bytes(
        b"cos\nsystem\n(S'touch /tmp/neurosim-pwned'\ntR."),
    "directory": lambda p: (p.unlink(), p.mkdir()),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_checkpoint_is_refused_with_one_line(tmp_path, capsys, damage):
    out = tmp_path / "run"
    args = ["train", "--iters", "30", "--seeds", "1", "--n-hidden", "4", "--batch", "2",
            "--checkpoint-every", "10", "--out", str(out)]
    ckpt = checkpoint_path(out)
    _write_real_checkpoint(ckpt)
    DAMAGES[damage](ckpt)
    code, _, err = run_cli([*args, "--resume"], capsys)
    refused(code, err, match="checkpoint" if damage != "directory" else "in the way")
    assert not out.exists() and not Path("/tmp/neurosim-pwned").exists()


def _write_real_checkpoint(ckpt: Path) -> None:
    """The checkpoint of the run above after 10 of its 30 iterations."""
    from neurosim.config import TrainConfig
    from neurosim.training import _Run

    run = _Run(TrainConfig(iters=30, seeds=1, n_hidden=4, batch=2))
    for _ in range(10):
        run.iteration()
    torch.save(run.state(), ckpt)


@pytest.mark.parametrize("damage", ["missing-summary", "garbage-summary", "garbage-csv", "wrong-shape"])
@pytest.mark.parametrize("command", ["plot", "lyapunov"])
def test_plot_and_lyapunov_refuse_damaged_run_directories(tmp_path, capsys, damage, command):
    out = tmp_path / "run"
    code, _, err = run_cli(["train", *TINY, "--out", str(out)], capsys)
    assert code == 0, err
    if damage == "missing-summary":
        (out / "summary.json").unlink()
    elif damage == "garbage-summary":
        (out / "summary.json").write_bytes(b"\xff\xfe{{{")
    elif damage == "garbage-csv":
        (out / "curves.csv").write_text("backend,loss\nfloat,1,2,3\n")
    else:
        (out / "summary.json").write_text(json.dumps({"not": "a list"}))
    code, _, err = run_cli([command, str(out)], capsys)
    refused(code, err)


NOT_UTF8 = "gain = 1.0 # caf\xe9".encode("latin-1")


@pytest.mark.parametrize("command", [
    lambda p, o: ["train", *TINY, "--profile", str(p), "--out", str(o)],
    lambda p, o: ["export-spec", "--profile", str(p), "--out", str(o), "--steps", "2"],
    lambda p, o: ["cost", "--profile", str(p)],
    lambda p, o: ["profiles", "show", str(p)],
    lambda p, o: ["sweep", str(p), "--out", str(o)],
], ids=["train", "export-spec", "cost", "profiles-show", "sweep"])
@pytest.mark.parametrize("content", [NOT_UTF8, b"\xff\xfe\x00\x01", b"description = 'x'\n\x00"],
                         ids=["latin-1", "utf-16-bom", "nul"])
def test_files_that_are_not_utf8_toml_are_refused(tmp_path, capsys, command, content):
    path = tmp_path / "input.toml"
    path.write_bytes(content)
    code, _, err = run_cli(command(path, tmp_path / "out"), capsys)
    refused(code, err)
    assert not (tmp_path / "out").exists()


# -- values that cannot run --------------------------------------------------------------------

@pytest.mark.parametrize("args, match", [
    (["--seed", str(2**64)], "seed"),
    (["--seed", str(2**63 - 1)], "seed"),
    (["--threads", str(2**40)], "threads"),
    (["--threads", "100000"], "threads"),
    (["--seeds", "1000000000"], "networks"),
    (["--profile", "int16", "--batch", "100000"], "batch"),
    (["--profile", "int8-stochastic", "--batch", "5000", "--n-hidden", "512"], "batch"),
])
def test_values_beyond_what_can_run_are_refused_before_training(tmp_path, capsys, monkeypatch, args, match):
    _no_training(monkeypatch)
    code, _, err = run_cli(["train", "--iters", "2", "--out", str(tmp_path / "r"), *args], capsys)
    refused(code, err, match=match)


@pytest.mark.parametrize("alpha_format", ["u1.0", "s1.0", "u3.0"])
def test_a_leak_the_profile_cannot_hold_is_refused(tmp_path, capsys, alpha_format):
    text = (PROFILE_DIR / "int16.toml").read_text()
    lines = [f'alpha = "{alpha_format}"' if ln.strip().startswith("alpha =") else ln
             for ln in text.splitlines()]
    path = tmp_path / "p.toml"
    path.write_text("\n".join(lines))
    code, _, err = run_cli(["train", *TINY, "--profile", str(path), "--out", str(tmp_path / "r")], capsys)
    refused(code, err, match="alpha")


@pytest.mark.parametrize("args, match", [
    (["--seed", "-1"], "seed"),
    (["--seed", str(2**70)], "seed"),
    (["--n-hidden", "100000"], "golden vectors"),
    (["--n-hidden", "4096", "--trials", "50"], "golden vectors"),
])
def test_export_spec_validates_like_train(tmp_path, capsys, args, match):
    code, _, err = run_cli(["export-spec", "--profile", "int16", "--out", str(tmp_path / "s"), *args], capsys)
    refused(code, err, match=match)
    assert listing(tmp_path) == []


@pytest.mark.parametrize("fixed, match", [
    ("seeds = 1000000000", "networks"),
    ("seed = 18446744073709551616", "seed"),
    ("threads = 99999", "threads"),
    ('profile = "int16"\nbatch = 100000', "batch"),
])
def test_sweep_files_are_validated_like_train_before_anything_is_created(tmp_path, capsys, fixed, match):
    path = tmp_path / "s.toml"
    path.write_text(f"[grid]\ngain = [1.0]\n[fixed]\niters = 2\n{fixed}\n")
    code, _, err = run_cli(["sweep", str(path), "--out", str(tmp_path / "out")], capsys)
    refused(code, err, match=match)
    assert listing(tmp_path) == ["s.toml"]


def test_a_huge_grid_is_refused_at_once(tmp_path, capsys):
    values = ", ".join(str(i) for i in range(1, 1001))
    path = tmp_path / "s.toml"
    path.write_text(f"[grid]\nn_hidden = [{values}]\nbatch = [{values}]\n")
    code, _, err = run_cli(["sweep", str(path), "--out", str(tmp_path / "out")], capsys)
    refused(code, err, match="cells")


FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(option=st.sampled_from(["--n-hidden", "--trials", "--steps", "--seed", "--gain", "--task"]),
       value=st.one_of(st.integers(-3, 40), st.integers(2**62, 2**70), st.integers(-2**70, -1),
                       st.floats(allow_nan=True, allow_infinity=True),
                       st.text(max_size=5)))
def test_export_spec_options_never_crash(tmp_path_factory, capsys, option, value):
    tmp = tmp_path_factory.mktemp("spec")
    args = ["export-spec", "--profile", "int16", "--out", str(tmp / "s"), "--trials", "1", "--steps", "2",
            option, str(value)]
    code, _, err = run_cli(args, capsys)
    assert "Traceback" not in err
    if code != 0:
        refused(code, err)
        assert not (tmp / "s").exists()


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_run_directories_follow_the_umask(tmp_path, capsys, umask):
    old = os.umask(umask)
    try:
        code, _, err = run_cli(["train", *TINY, "--out", str(tmp_path / "run")], capsys)
    finally:
        os.umask(old)
    assert code == 0, err
    assert (tmp_path / "run").stat().st_mode & 0o777 == 0o777 & ~umask
    assert (tmp_path / "run" / "summary.json").stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_killed_writes_temporaries_are_cleared_by_the_next_run(tmp_path, capsys):
    (tmp_path / ".run.tmp-abc123").mkdir()  # what a SIGKILL during the final rename leaves
    (tmp_path / ".run.tmp-abc123" / "curves.csv").write_text("half")
    code, _, err = run_cli(["train", *TINY, "--out", str(tmp_path / "run")], capsys)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
