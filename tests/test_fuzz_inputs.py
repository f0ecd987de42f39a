"""Property tests: random and malformed values thrown at the CLI options and at profile TOML
files never produce a traceback — the answer is success, or one `error:` line with exit 2 and
nothing written."""

import math

import pytest
from cli_helpers import run_cli
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hw_models.profile import PROFILE_DIR

FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
numbers = st.one_of(st.integers(-3, 40), st.floats(allow_nan=True, allow_infinity=True, width=32),
                    st.text(max_size=6))


def _check(code: int, err: str, out_dir) -> None:
    assert code in (0, 2), err
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert not out_dir.exists()
    assert "Traceback" not in err


@FUZZ
@given(
    option=st.sampled_from(["--gain", "--lr", "--iters", "--seeds", "--n-hidden", "--batch", "--bits",
                            "--dt", "--tau", "--task", "--rule", "--optimizer", "--feedback",
                            "--floss-iters", "--floss-k", "--floss-variant", "--rounding",
                            "--trace-bits", "--state-bits", "--lr-shift", "--log-every",
                            "--checkpoint-every", "--le-warmup"]),
    value=numbers,
)
def test_random_option_values_never_crash(tmp_path_factory, capsys, option, value):
    # a huge but valid iteration count is a real (endless) run, not bad input: keep runs short
    assume(not (option in ("--iters", "--floss-iters") and isinstance(value, float)
                and math.isfinite(value) and abs(value) > 40))
    tmp = tmp_path_factory.mktemp("fuzz")
    out = tmp / "run"
    text = repr(value) if isinstance(value, float) and math.isnan(value) else str(value)
    args = ["train", "--iters", "2", "--seeds", "1", "--n-hidden", "4", "--batch", "2",
            "--floss-iters", "0", option, text, "--out", str(out)]
    if option in ("--rounding", "--trace-bits", "--state-bits", "--lr-shift"):
        args += ["--bits", "8"]
    code, _, err = run_cli(args, capsys)
    _check(code, err, out)


valid_text = (PROFILE_DIR / "int8-stochastic.toml").read_text().splitlines()


@FUZZ
@given(
    line=st.integers(0, len(valid_text) - 1),
    replacement=st.one_of(st.text(max_size=20), st.sampled_from(
        ['W_h = "s8.9"', 'lr_shift = -1', 'schedule = "daily"', "[rounding]", 'bogus = 1',
         'acc = "s99.3"', 'seed = "x"', 'h = 3', '', 'weight_scale = "pow3"'])),
)
def test_mutated_profile_files_never_crash(tmp_path_factory, capsys, line, replacement):
    tmp = tmp_path_factory.mktemp("prof")
    lines = list(valid_text)
    lines[line] = replacement
    path = tmp / "mutant.toml"
    path.write_text("\n".join(lines))
    out = tmp / "run"
    code, _, err = run_cli(["train", "--profile", str(path), "--iters", "1", "--seeds", "1",
                            "--n-hidden", "4", "--batch", "2", "--out", str(out)], capsys)
    _check(code, err, out)


@pytest.mark.parametrize("text", ["", "not toml [[[", "description = 3", "\x00"])
def test_garbage_profile_files_are_refused(tmp_path, capsys, text):
    path = tmp_path / "garbage.toml"
    path.write_text(text)
    code, _, err = run_cli(["profiles", "show", str(path)], capsys)
    _check(code, err, tmp_path / "none")
    assert code == 2


keys = st.sampled_from(["task", "rule", "gain", "lr", "seeds", "n_hidden", "bits", "profile", "iters",
                        "floss_iters", "optimizer", "dt", "bogus_key", "profile_overrides"])
values = st.one_of(st.integers(-5, 50), st.floats(allow_nan=True, allow_infinity=True),
                   st.text(max_size=8), st.booleans(), st.none())
tables = st.dictionaries(keys, st.one_of(values, st.lists(values, max_size=3)), max_size=4)


@FUZZ
@given(grid=tables, fixed=tables, top=st.sampled_from([None, "grid", "fixed", "quick", "junk"]))
def test_random_sweep_configs_are_accepted_or_refused_cleanly(tmp_path_factory, grid, fixed, top):
    """Every sweep config either builds its cells or raises one InputError line, writing nothing."""
    from neurosim.errors import InputError
    from neurosim.grid import load_sweep

    data = {"grid": grid, "fixed": fixed}
    if top == "junk":
        data["junk"] = 1
    elif top is not None:
        data.pop(top, None)
    try:
        spec = load_sweep(data)
    except InputError as e:
        assert "\n" not in str(e) and str(e)
    else:
        assert len(spec.cells) >= 1
